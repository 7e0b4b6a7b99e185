/* Test helper for QEMU only: QEMU's -kernel cannot boot a plain ELF64 (no
 * PVH note, no multiboot header), which the moat VMM boots in long mode with
 * rsi = hvm_start_info. This PVH image (linked at 4 MiB) emulates that
 * loader: it expects the raw ELF64 file at SHIM_ELF_ADDR, put there with
 *   -device loader,file=IMAGE,addr=0x800000,force-raw=on
 * copies its PT_LOAD segments to their physical addresses, and jumps to
 * e_entry in 64-bit mode (identity map of 4 GiB, interrupts off) with
 * rsi = the hvm_start_info QEMU/qboot gave us. Silent unless it fails. */
#include "rt.h"

#define SHIM_ELF_ADDR 0x800000ul

struct elf64_ehdr {
	uint8_t  e_ident[16];
	uint16_t e_type, e_machine;
	uint32_t e_version;
	uint64_t e_entry, e_phoff, e_shoff;
	uint32_t e_flags;
	uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
};

struct elf64_phdr {
	uint32_t p_type, p_flags;
	uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
};

int main(void)
{
	const uint8_t *file = (const uint8_t *)SHIM_ELF_ADDR;
	const struct elf64_ehdr *eh = (const void *)file;

	if (boot.abi != BOOT_ABI_PVH || !boot.valid) {
		puts("elf64-shim: not booted via PVH\n");
		return 0x7e;
	}
	if (memcmp(eh->e_ident, "\177ELF", 4) || eh->e_ident[4] != 2 ||
	    eh->e_machine != 62) {
		puts("elf64-shim: no ELF64 x86-64 image at 0x800000\n");
		return 0x7e;
	}
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const struct elf64_phdr *ph =
			(const void *)(file + eh->e_phoff + i * eh->e_phentsize);
		if (ph->p_type != 1 /* PT_LOAD */)
			continue;
		memcpy((void *)ph->p_paddr, file + ph->p_offset, ph->p_filesz);
		memset((void *)(ph->p_paddr + ph->p_filesz), 0,
		       ph->p_memsz - ph->p_filesz);
	}
	__asm__ volatile("cli\n\tjmp *%0" : : "r"(eh->e_entry), "S"(boot.raw));
	__builtin_unreachable();
}
