/* Linker script template (run through cpp -P; -DPVH adds the PT_NOTE).
 * One RWX PT_LOAD that starts with the ELF and program headers at
 * LOAD_ADDR (--defsym, normally 1 MiB), so images stay small. */
OUTPUT_FORMAT("elf64-x86-64")
OUTPUT_ARCH(i386:x86-64)
ENTRY(_start)

PHDRS
{
	image PT_LOAD FILEHDR PHDRS FLAGS(7);
#ifdef PVH
	note PT_NOTE FLAGS(4);
#endif
}

SECTIONS
{
	. = LOAD_ADDR + SIZEOF_HEADERS;
#ifdef PVH
	.note.Xen : ALIGN(4) { KEEP(*(.note.Xen)) } :image :note
#endif
	/* .multiboot first: the header must be in the first 8 KiB. */
	.text : ALIGN(16) {
		KEEP(*(.multiboot))
		*(.text.boot32)
		*(.text.entry)
		*(.text .text.*)
	} :image
	.rodata : ALIGN(16) { *(.rodata .rodata.*) } :image
	.data : ALIGN(16) { *(.data .data.*) } :image
	.bss (NOLOAD) : ALIGN(4096) {
		__bss_start = .;
		*(.bss.pagetables)
		*(.bss .bss.*)
		*(COMMON)
		. = ALIGN(16);
		__bss_end = .;
		*(.stack)
		. = ALIGN(16);
		__stack_top = .;
	} :image
	/DISCARD/ : {
		*(.comment)
		*(.note.*)
		*(.eh_frame*)
		*(.debug*)
	}
}
