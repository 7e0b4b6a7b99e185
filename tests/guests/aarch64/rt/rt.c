/* Console, printf subset, PSCI power-off, exception dispatch and a small
 * DTB reader for the aarch64 guests. Compiled with -mgeneral-regs-only. */
#include "rt.h"

uint64_t boot_x0;
static trap_fn trap_handler;

#define UART_DR 0x00
#define UART_FR 0x18
#define UART_FR_TXFF (1u << 5)

void putc(char c)
{
	/* The PL011 is used as QEMU leaves it (enabled); no set-up. */
	while (mmio_read32(PL011_BASE + UART_FR) & UART_FR_TXFF)
		;
	mmio_write32(PL011_BASE + UART_DR, (uint8_t)c);
}

void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

void exit(int code)
{
	/* Status is reported on the serial line only; QEMU ends with 0 on
	 * SYSTEM_OFF whatever the code. */
	(void)code;
	register uint64_t x0 __asm__("x0") = PSCI_SYSTEM_OFF;
	__asm__ volatile("hvc #0" : "+r"(x0) : : "x1", "x2", "x3", "memory");
	for (;;)
		__asm__ volatile("wfi");
}

void trap_set(trap_fn fn)
{
	trap_handler = fn;
}

void trap_dispatch(struct trap_frame *f)
{
	if (trap_handler) {
		trap_handler(f);
		return;
	}
	printf("unexpected exception: vector %lu esr 0x%08lx far 0x%lx elr 0x%lx\n",
	       (unsigned long)f->vector, (unsigned long)f->esr, (unsigned long)f->far,
	       (unsigned long)f->elr);
	exit(0x7e);
}

void rt_start(uint64_t x0)
{
	boot_x0 = x0;
	exit(main());
}

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
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
			return 0;
	}
	return 0;
}

/* printf: %s %c %d %i %u %x %X %p %%, flags 0, - and +, width, l/ll/z. */
static void emit_num(uint64_t v, unsigned base, int upper, int neg, int width, char pad, int left,
		     char sign)
{
	char tmp[24];
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	if (neg)
		sign = '-';
	int len = n + (sign != 0);
	if (sign && pad == '0')
		putc(sign);
	if (!left)
		for (int i = len; i < width; i++)
			putc(pad);
	if (sign && pad != '0')
		putc(sign);
	while (n)
		putc(tmp[--n]);
	if (left)
		for (int i = len; i < width; i++)
			putc(' ');
}

int printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc(*fmt);
			continue;
		}
		fmt++;
		char pad = ' ', sign = 0;
		int left = 0, width = 0, lng = 0;
		for (;; fmt++) {
			if (*fmt == '0')
				pad = '0';
			else if (*fmt == '+')
				sign = '+';
			else if (*fmt == '-')
				left = 1;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng = 1;
			fmt++;
		}
		if (left)
			pad = ' ';
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			emit_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, 0, v < 0, width, pad, left, sign);
			break;
		}
		case 'u':
			emit_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, 0, width, pad, left,
				 0);
			break;
		case 'x':
		case 'X':
			emit_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, *fmt == 'X', 0,
				 width, pad, left, 0);
			break;
		case 'p':
			puts("0x");
			emit_num((uint64_t)va_arg(ap, void *), 16, 0, 0, width, pad, left, 0);
			break;
		case 'c':
			putc((char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = (int)strlen(s);
			if (!left)
				for (int i = len; i < width; i++)
					putc(' ');
			puts(s);
			if (left)
				for (int i = len; i < width; i++)
					putc(' ');
			break;
		}
		case '%':
			putc('%');
			break;
		case 0:
			fmt--;
			break;
		default:
			putc('%');
			putc(*fmt);
		}
	}
	va_end(ap);
	return 0;
}

/* DTB: big-endian, read bytewise (the MMU is off, so unaligned or not,
 * every access is Device memory and must be naturally aligned). */
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const void *dtb(void)
{
	/* QEMU's RAM is 0x40000000 up; anything outside a sane window is not a
	 * DTB (and must not be dereferenced). */
	if (boot_x0 < 0x40000000ul || boot_x0 >= 0x140000000ul || (boot_x0 & 7))
		return NULL;
	const uint8_t *p = (const uint8_t *)boot_x0;
	return be32(p) == FDT_MAGIC ? p : NULL;
}

#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

const char *dtb_bootargs(void)
{
	const uint8_t *d = dtb();
	if (!d)
		return NULL;
	uint32_t total = be32(d + 4), off_struct = be32(d + 8), off_strings = be32(d + 12);
	uint32_t size_struct = be32(d + 36);
	if (total > (1u << 24) || off_struct >= total || off_strings >= total ||
	    size_struct > total - off_struct)
		return NULL;
	const uint8_t *p = d + off_struct, *end = p + size_struct;
	int depth = 0, in_chosen = 0;
	while (p + 4 <= end) {
		uint32_t tok = be32(p);
		p += 4;
		if (tok == FDT_BEGIN_NODE) {
			const char *name = (const char *)p;
			size_t n = 0;
			while (p + n < end && p[n])
				n++;
			depth++;
			in_chosen = depth == 2 && n == 6 && !strncmp(name, "chosen", 6);
			p += (n + 4) & ~3ul;
		} else if (tok == FDT_END_NODE) {
			depth--;
			in_chosen = 0;
		} else if (tok == FDT_PROP) {
			if (p + 8 > end)
				return NULL;
			uint32_t len = be32(p), nameoff = be32(p + 4);
			p += 8;
			if (len > (uint32_t)(end - p))
				return NULL;
			if (in_chosen && nameoff < total - off_strings &&
			    !strncmp((const char *)d + off_strings + nameoff, "bootargs", 9) && len &&
			    p[len - 1] == 0)
				return (const char *)p;
			p += (len + 3) & ~3u;
		} else if (tok == FDT_NOP) {
			continue;
		} else {
			break;
		}
	}
	return NULL;
}

uint64_t bootarg_u64(const char *key, uint64_t def)
{
	const char *s = dtb_bootargs();
	size_t k = strlen(key);
	if (!s)
		return def;
	while (*s) {
		while (*s == ' ')
			s++;
		if (!strncmp(s, key, k) && s[k] == '=') {
			const char *q = s + k + 1;
			uint64_t v = 0;
			int any = 0;
			while (*q >= '0' && *q <= '9' && v < 1000000000000ull) {
				v = v * 10 + (uint64_t)(*q++ - '0');
				any = 1;
			}
			return any ? v : def;
		}
		while (*s && *s != ' ')
			s++;
	}
	return def;
}
