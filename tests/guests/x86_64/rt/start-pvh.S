/* PVH entry: Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18) pointing at a
 * 32-bit entry; ebx = struct hvm_start_info *. */
#include "boot.h"

	.section .note.Xen, "a", @note
	.p2align 2
	.long 4                     /* namesz: "Xen\0" */
	.long 4                     /* descsz */
	.long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry

	.section .text.boot32, "ax"
	.code32
	.globl _start, pvh_entry
_start:
pvh_entry:
	movl $BOOT_ABI_PVH, %eax
	jmp boot32
