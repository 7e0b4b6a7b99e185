/* Application-processor start-up code for smp.c.
 *
 * ap_tramp_start..ap_tramp_end is copied by the BSP to AP_TRAMP_BASE (a
 * page below 1 MiB), and a STARTUP IPI starts the AP there in real mode
 * with CS = AP_TRAMP_BASE >> 4, IP = 0. So the 16- and 32-bit code uses
 * only offsets from ap_tramp_start and addresses at AP_TRAMP_BASE, never
 * its own link address. It loads a GDT of its own (the image's GDT has no
 * 32-bit code segment), enters protected mode, turns on PAE, the BSP's page
 * tables (ap_tramp_cr3, written by the BSP into the copy), EFER.LME and
 * paging, and jumps to ap_entry64 in the image, which is identity-mapped. */
#include "boot.h"
#include "smp.h"

#define TRAMP(sym) (AP_TRAMP_BASE + ((sym) - ap_tramp_start))

	.section .rodata.ap_tramp, "a"
	.code16
	.globl ap_tramp_start, ap_tramp_end, ap_tramp_cr3
ap_tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_desc - ap_tramp_start   /* ds-relative */
	movl %cr0, %eax
	orl $0x1, %eax              /* CR0.PE */
	movl %eax, %cr0
	ljmpl $0x18, $TRAMP(tramp_pm32)

	.code32
tramp_pm32:
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $0x20, %eax             /* CR4.PAE */
	movl %eax, %cr4
	movl TRAMP(ap_tramp_cr3), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx      /* EFER */
	rdmsr
	orl $0x100, %eax            /* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000001, %eax       /* CR0.PG | CR0.PE */
	movl %eax, %cr0
	/* Compatibility mode now; this far jump enters 64-bit mode. */
	ljmpl $GDT_CODE64, $ap_entry64

	/* Same selectors as the image's GDT (rt/common.S) for 0x08 and 0x10,
	 * so ap_entry64 can switch to that one without reloading CS. */
	.p2align 3
tramp_gdt:
	.quad 0                     /* 0x00 null */
	.quad 0x00af9a000000ffff    /* 0x08 64-bit code */
	.quad 0x00cf92000000ffff    /* 0x10 flat data */
	.quad 0x00cf9a000000ffff    /* 0x18 flat 32-bit code */
tramp_gdt_end:
tramp_gdt_desc:
	.word tramp_gdt_end - tramp_gdt - 1
	.long TRAMP(tramp_gdt)
	.p2align 2
ap_tramp_cr3:
	.long 0
ap_tramp_end:

	.section .text.ap_entry, "ax"
	.code64
	/* In 64-bit mode on the trampoline's GDT, no stack yet (rsp is what
	 * INIT left). Each AP takes a ticket that picks its stack; a ticket
	 * beyond the stacks parks the AP. */
	.globl ap_entry64
ap_entry64:
	lgdt gdt_desc(%rip)
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	lidt ap_idtr(%rip)
	movl $1, %eax
	lock xaddl %eax, ap_ticket(%rip)
	cmpl $(MAX_CPUS - 1), %eax
	jae ap_park
	movl %eax, %edi
	leal 1(%rax), %eax
	shll $AP_STACK_SHIFT, %eax
	leaq ap_stacks(%rip), %rsp
	addq %rax, %rsp
	xorl %ebp, %ebp
	call ap_main
ap_park:
	cli
	hlt
	jmp ap_park
