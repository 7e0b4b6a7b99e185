/* Prints what the boot ABI handed over, one fact per line. */
#include "rt.h"

static void print_text(const char *s, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		char c = s[i];
		putc(c >= 0x20 && c < 0x7f ? c : '.');
	}
}

int main(void)
{
	uint32_t i;

	printf("abi: %s\n", boot_abi_name(boot.abi));
	printf("magic: 0x%08x\n", boot.magic);
	if (!boot.valid) {
		puts("bootinfo: invalid\n");
		return 1;
	}
	if (boot.abi == BOOT_ABI_MULTIBOOT) {
		printf("flags: 0x%08x\n", boot.flags);
		if (boot.flags & 1) {
			printf("mem_lower: %u KiB\n", boot.mem_lower_kib);
			printf("mem_upper: %u KiB\n", boot.mem_upper_kib);
		}
	} else {
		printf("version: %u\n", boot.version);
		printf("flags: 0x%08x\n", boot.flags);
	}
	printf("cmdline: %s\n", boot.cmdline ? boot.cmdline : "(none)");
	printf("modules: %u\n", boot.nr_modules);
	for (i = 0; i < boot.nr_modules && i < BOOT_MAX_MODULES; i++) {
		const struct boot_module *m = &boot.modules[i];
		printf("module%u: size=%lu first=", i, (unsigned long)m->size);
		print_text((const char *)(uintptr_t)m->addr,
			   m->size < 16 ? m->size : 16);
		putc('\n');
	}
	if (boot.has_memmap) {
		printf("memmap: %u entries\n", boot.nr_mem);
		for (i = 0; i < boot.nr_mem && i < BOOT_MAX_MEM; i++) {
			const struct boot_mem *e = &boot.mem[i];
			if (e->size)
				printf("mem: 0x%016lx-0x%016lx type %u\n",
				       (unsigned long)e->addr,
				       (unsigned long)(e->addr + e->size - 1),
				       e->type);
			else
				printf("mem: 0x%016lx (empty) type %u\n",
				       (unsigned long)e->addr, e->type);
		}
	} else {
		puts("memmap: (none)\n");
	}
	puts("bootinfo: done\n");
	return 0;
}
