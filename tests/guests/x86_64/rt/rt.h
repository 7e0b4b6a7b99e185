/* Tiny freestanding runtime for moat x86-64 test guests. */
#ifndef MOAT_RT_H
#define MOAT_RT_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>

/* Which boot ABI handed control to the runtime (see the rt/start-*.S files). */
#define BOOT_ABI_UNKNOWN   0 /* multiboot entry reached without 0x2BADB002 in eax */
#define BOOT_ABI_PVH       1 /* 32-bit PVH entry, ebx = struct hvm_start_info * */
#define BOOT_ABI_MULTIBOOT 2 /* 32-bit multiboot v1 entry, ebx = multiboot_info * */
#define BOOT_ABI_ELF64     3 /* 64-bit ELF entry, rsi = struct hvm_start_info * */

#define HVM_START_MAGIC 0x336ec578u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u

#define COM1_PORT  0x3f8
#define DEBUG_EXIT_PORT 0xf4

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;    /* version >= 1 */
	uint32_t memmap_entries;  /* version >= 1 */
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Boot facts, normalised across the three ABIs by rt_start(). */
#define BOOT_MAX_MODULES 8
#define BOOT_MAX_MEM     32

struct boot_module {
	uint64_t addr;
	uint64_t size;
	const char *cmdline;      /* NULL if none */
};

struct boot_mem {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct boot_info {
	uint32_t abi;             /* BOOT_ABI_* */
	uint64_t raw;             /* physical address handed over in ebx/rsi */
	uint32_t magic;           /* hvm_start_info.magic, or eax for multiboot */
	uint32_t version;         /* hvm_start_info.version (pvh/elf64) */
	uint32_t flags;           /* hvm_start_info.flags or multiboot_info.flags */
	int      valid;           /* magic matched, fields below are meaningful */
	uint32_t mem_lower_kib;   /* multiboot only (flags bit 0) */
	uint32_t mem_upper_kib;
	const char *cmdline;      /* NULL if none */
	uint32_t nr_modules;      /* as reported; at most BOOT_MAX_MODULES stored */
	struct boot_module modules[BOOT_MAX_MODULES];
	int      has_memmap;
	uint32_t nr_mem;          /* as reported; at most BOOT_MAX_MEM stored */
	struct boot_mem mem[BOOT_MAX_MEM];
};

extern struct boot_info boot;

const char *boot_abi_name(uint32_t abi);

/* Port I/O */
static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Serial console (COM1, polled). No CR is added before LF. */
void putc(char c);
void puts(const char *s);          /* no newline appended */
void write(const char *s, size_t n);

/* printf subset: %s %c %d %i %u %x %X %p %%, flags '0' '-', width,
 * length modifiers l, ll, z. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* Ends the VM via the isa-debug-exit port (host status (code << 1) | 1);
 * falls back to cli; hlt forever. */
__attribute__((noreturn)) void exit(uint32_t code);
__attribute__((noreturn)) void halt(void);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

/* Returns the value of "key=" in the kernel command line (pointer into the
 * command line, ends at a space or NUL), or NULL. */
const char *cmdline_get(const char *key);

/* Provided by each program. The return value is passed to exit(). */
int main(void);

#endif
