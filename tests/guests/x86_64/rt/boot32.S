/* 32-bit protected-mode entry shared by the PVH and multiboot start files.
 * In: eax = BOOT_ABI_*, ebx = boot info physical address. Flat segments,
 * paging off, interrupts off. Builds an identity map of the first 4 GiB with
 * 2 MiB pages, enters long mode and jumps to long_entry. */
#include "boot.h"

	.section .bss.pagetables, "aw", @nobits
	.p2align 12
pml4:	.skip 0x1000
pdpt:	.skip 0x1000
pd:	.skip 0x4000                /* 4 page directories: 4 GiB */

	.section .text.boot32, "ax"
	.code32
	.globl boot32
boot32:
	cli
	cld
	movl $__stack_top, %esp
	movl %eax, boot_abi
	movl %ebx, boot_ptr
	movl $0, boot_ptr + 4

	/* Clear .bss (includes the page tables, not the stack). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl

	/* PML4[0] -> PDPT, PDPT[0..3] -> PD 0..3 */
	movl $(pdpt + 0x3), pml4
	movl $(pd + 0x3), pdpt
	movl $(pd + 0x1003), pdpt + 8
	movl $(pd + 0x2003), pdpt + 16
	movl $(pd + 0x3003), pdpt + 24
	/* PD entries: 2 MiB pages, present | writable | PS */
	movl $pd, %edi
	movl $0x83, %eax
	movl $2048, %ecx
1:	movl %eax, (%edi)
	addl $0x200000, %eax
	addl $8, %edi
	loop 1b

	movl %cr4, %eax
	orl $0x20, %eax             /* CR4.PAE */
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx      /* EFER */
	rdmsr
	orl $0x100, %eax            /* EFER.LME */
	wrmsr
	lgdt gdt_desc
	movl %cr0, %eax
	orl $0x80000001, %eax       /* CR0.PG | CR0.PE */
	movl %eax, %cr0
	ljmp $GDT_CODE64, $long_entry
