/* 64-bit GDT, boot variables, stack, and the common 64-bit landing code. */
#include "boot.h"

	.section .rodata.gdt, "a"
	.p2align 3
	.globl gdt
gdt:
	.quad 0                     /* 0x00 null */
	.quad 0x00af9a000000ffff    /* 0x08 64-bit code, DPL0, readable */
	.quad 0x00cf92000000ffff    /* 0x10 flat data, DPL0, writable */
gdt_end:
	.p2align 3
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt                   /* lgdt in 32-bit mode reads the low 4 bytes */

	/* In .data, not .bss: written before .bss is cleared. */
	.section .data.boot, "aw"
	.p2align 3
	.globl boot_abi, boot_ptr
boot_ptr:
	.quad 0
boot_abi:
	.long 0

	.section .stack, "aw", @nobits
	.p2align 4
	.skip STACK_SIZE

	.section .text.entry, "ax"
	.code64
	/* Reached in 64-bit mode with CS = GDT_CODE64, our GDT loaded. */
	.globl long_entry
long_entry:
	movl $GDT_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl $__stack_top, %esp     /* zero-extends into rsp */
	xorl %ebp, %ebp
	movl boot_abi(%rip), %edi
	movq boot_ptr(%rip), %rsi
	call rt_start
1:	cli
	hlt
	jmp 1b
