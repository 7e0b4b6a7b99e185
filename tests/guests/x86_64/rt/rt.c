/* Tiny freestanding runtime for moat x86-64 test guests: serial console,
 * printf subset, debug-exit, boot-info parsing. */
#include "rt.h"

struct boot_info boot;

/* ---- string helpers (gcc may emit calls to these) ---- */

void *memset(void *d, int c, size_t n)
{
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp <= sp || dp >= sp + n)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

/* ---- serial console ---- */

void putc(char c)
{
	/* LSR bit 5: transmit holding register empty. */
	while (!(inb(COM1_PORT + 5) & 0x20))
		;
	outb(COM1_PORT, (uint8_t)c);
}

void write(const char *s, size_t n)
{
	while (n--)
		putc(*s++);
}

void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

/* ---- printf subset ---- */

static int emit_num(uint64_t v, int neg, unsigned base, int upper,
		    int width, int zero, int left)
{
	char buf[24];
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0, len, out = 0;

	do {
		buf[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + (neg ? 1 : 0);
	if (!left && !zero)
		for (; width > len; width--, out++)
			putc(' ');
	if (neg) {
		putc('-');
		out++;
	}
	if (!left && zero)
		for (; width > len; width--, out++)
			putc('0');
	while (n) {
		putc(buf[--n]);
		out++;
	}
	if (left)
		for (; width > len; width--, out++)
			putc(' ');
	return out;
}

int vprintf(const char *fmt, va_list ap)
{
	int out = 0;

	for (; *fmt; fmt++) {
		int zero = 0, left = 0, width = 0, lng = 0;

		if (*fmt != '%') {
			putc(*fmt);
			out++;
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = 1;
			else if (*fmt == '-')
				left = 1;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			out += emit_num(u, v < 0, 10, 0, width, zero, left);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, unsigned long)
					 : va_arg(ap, unsigned int);
			out += emit_num(v, 0, *fmt == 'u' ? 10 : 16, *fmt == 'X',
					width, zero, left);
			break;
		}
		case 'p':
			puts("0x");
			out += 2 + emit_num((uintptr_t)va_arg(ap, void *), 0, 16,
					    0, width, zero, left);
			break;
		case 'c':
			putc((char)va_arg(ap, int));
			out++;
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			int len;
			if (!s)
				s = "(null)";
			len = (int)strlen(s);
			if (!left)
				for (; width > len; width--, out++)
					putc(' ');
			puts(s);
			out += len;
			if (left)
				for (; width > len; width--, out++)
					putc(' ');
			break;
		}
		case '%':
			putc('%');
			out++;
			break;
		case '\0':
			return out;
		default:
			putc('%');
			putc(*fmt);
			out += 2;
			break;
		}
	}
	return out;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}

/* ---- exit ---- */

void halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

void exit(uint32_t code)
{
	outl(DEBUG_EXIT_PORT, code);
	halt();
}

/* ---- boot info ---- */

const char *boot_abi_name(uint32_t abi)
{
	switch (abi) {
	case BOOT_ABI_PVH:
		return "pvh";
	case BOOT_ABI_MULTIBOOT:
		return "multiboot";
	case BOOT_ABI_ELF64:
		return "elf64";
	default:
		return "unknown";
	}
}

static inline const void *phys(uint64_t a)
{
	return (const void *)(uintptr_t)a;
}

static void parse_hvm_start_info(uint64_t pa)
{
	const struct hvm_start_info *si = phys(pa);
	uint32_t i;

	if (!pa)
		return;
	boot.magic = si->magic;
	if (si->magic != HVM_START_MAGIC)
		return;
	boot.valid = 1;
	boot.version = si->version;
	boot.flags = si->flags;
	if (si->cmdline_paddr)
		boot.cmdline = phys(si->cmdline_paddr);
	boot.nr_modules = si->nr_modules;
	if (si->nr_modules && si->modlist_paddr) {
		const struct hvm_modlist_entry *m = phys(si->modlist_paddr);
		for (i = 0; i < si->nr_modules && i < BOOT_MAX_MODULES; i++) {
			boot.modules[i].addr = m[i].paddr;
			boot.modules[i].size = m[i].size;
			boot.modules[i].cmdline =
				m[i].cmdline_paddr ? phys(m[i].cmdline_paddr) : NULL;
		}
	}
	if (si->version >= 1 && si->memmap_paddr) {
		const struct hvm_memmap_table_entry *e = phys(si->memmap_paddr);
		boot.has_memmap = 1;
		boot.nr_mem = si->memmap_entries;
		for (i = 0; i < si->memmap_entries && i < BOOT_MAX_MEM; i++) {
			boot.mem[i].addr = e[i].addr;
			boot.mem[i].size = e[i].size;
			boot.mem[i].type = e[i].type;
		}
	}
}

/* multiboot_info offsets */
#define MBI_FLAGS       0
#define MBI_MEM_LOWER   4
#define MBI_MEM_UPPER   8
#define MBI_CMDLINE     16
#define MBI_MODS_COUNT  20
#define MBI_MODS_ADDR   24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR   48

static inline uint32_t rd32(const uint8_t *p, unsigned off)
{
	return *(const uint32_t *)(p + off);
}

static void parse_multiboot_info(uint64_t pa)
{
	const uint8_t *mbi = phys(pa);
	uint32_t flags, i;

	boot.magic = MULTIBOOT_BOOTLOADER_MAGIC;
	if (!pa)
		return;
	boot.valid = 1;
	flags = boot.flags = rd32(mbi, MBI_FLAGS);
	if (flags & (1u << 0)) {
		boot.mem_lower_kib = rd32(mbi, MBI_MEM_LOWER);
		boot.mem_upper_kib = rd32(mbi, MBI_MEM_UPPER);
	}
	if ((flags & (1u << 2)) && rd32(mbi, MBI_CMDLINE))
		boot.cmdline = phys(rd32(mbi, MBI_CMDLINE));
	if (flags & (1u << 3)) {
		const uint32_t *m = phys(rd32(mbi, MBI_MODS_ADDR));
		boot.nr_modules = rd32(mbi, MBI_MODS_COUNT);
		for (i = 0; i < boot.nr_modules && i < BOOT_MAX_MODULES; i++) {
			/* {mod_start, mod_end, string, reserved} */
			boot.modules[i].addr = m[4 * i];
			boot.modules[i].size = m[4 * i + 1] - m[4 * i];
			boot.modules[i].cmdline =
				m[4 * i + 2] ? phys(m[4 * i + 2]) : NULL;
		}
	}
	if (flags & (1u << 6)) {
		uint32_t len = rd32(mbi, MBI_MMAP_LENGTH);
		const uint8_t *p = phys(rd32(mbi, MBI_MMAP_ADDR));
		const uint8_t *end = p + len;

		boot.has_memmap = 1;
		/* {u32 size, u64 addr, u64 len, u32 type}; size excludes itself */
		while (p + 24 <= end) {
			uint32_t sz = rd32(p, 0);
			if (boot.nr_mem < BOOT_MAX_MEM) {
				struct boot_mem *e = &boot.mem[boot.nr_mem];
				e->addr = *(const uint64_t *)(p + 4);
				e->size = *(const uint64_t *)(p + 12);
				e->type = rd32(p, 20);
			}
			boot.nr_mem++;
			p += sz + 4;
		}
	}
}

const char *cmdline_get(const char *key)
{
	const char *s = boot.cmdline;
	size_t kl = strlen(key);

	if (!s)
		return NULL;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!strncmp(s, key, kl) && s[kl] == '=')
			return s + kl + 1;
		while (*s && *s != ' ')
			s++;
	}
	return NULL;
}

/* Called from the 64-bit entry code with the ABI and the boot pointer. */
__attribute__((noreturn, used)) void rt_start(uint32_t abi, uint64_t info)
{
	boot.abi = abi;
	boot.raw = info;
	if (abi == BOOT_ABI_PVH || abi == BOOT_ABI_ELF64)
		parse_hvm_start_info(info);
	else if (abi == BOOT_ABI_MULTIBOOT)
		parse_multiboot_info(info);
	exit((uint32_t)main());
}
