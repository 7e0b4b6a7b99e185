/* Multiboot v1 entry: header in the first 8 KiB (placed first in .text by
 * the linker script); eax = 0x2BADB002, ebx = multiboot_info *. */
#include "boot.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000002         /* bit 1: memory info wanted */

	.section .multiboot, "a"
	.p2align 2
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text.boot32, "ax"
	.code32
	.globl _start
_start:
	cmpl $0x2BADB002, %eax
	movl $BOOT_ABI_MULTIBOOT, %eax
	je 1f
	movl $BOOT_ABI_UNKNOWN, %eax
1:	jmp boot32
