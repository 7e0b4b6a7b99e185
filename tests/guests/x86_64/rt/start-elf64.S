/* Plain ELF64 entry: already in 64-bit long mode on identity-mapped page
 * tables built by the loader; rsi = struct hvm_start_info *. Sets a stack,
 * clears .bss, loads our GDT and continues at long_entry. */
#include "boot.h"

	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cli
	cld
	movl $__stack_top, %esp
	movq %rsi, boot_ptr(%rip)
	movl $BOOT_ABI_ELF64, boot_abi(%rip)

	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $3, %ecx
	xorl %eax, %eax
	rep stosq

	lgdt gdt_desc(%rip)
	pushq $GDT_CODE64
	pushq $long_entry
	lretq
