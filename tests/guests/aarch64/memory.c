/* Loads and stores: every size and signedness, the addressing modes
 * (offset, pre/post-index, register offset with extend and shift, pairs,
 * unscaled, literal), exclusives and acquire/release, then the LSE atomics.
 * The MMU stays off, so all data accesses are Device memory and aligned.
 * cortex-a57 (Armv8.0) has no LSE: ID_AA64ISAR0_EL1.Atomic reads 0 and
 * each LSE instruction is UNDEFINED (EC 0); the handler reports that and
 * skips it. With `-cpu max` they run (expected/memory-max.out). */
#include "rt.h"

static uint8_t buf[256] __attribute__((aligned(16)));
uint64_t lit_x = 0xfedcba9876543210ull;

static void fill(void)
{
	for (int i = 0; i < 256; i++)
		buf[i] = (uint8_t)(i * 0x11 + 0x70);
}

static void dump(const char *name, unsigned off, unsigned n)
{
	uint64_t *p = (uint64_t *)(buf + off);
	printf("%s:", name);
	for (unsigned i = 0; i < n; i++)
		printf(" %016lx", p[i]);
	putc('\n');
}

static int undefs;
static void on_trap(struct trap_frame *f)
{
	if (ESR_EC(f->esr) == 0 && f->vector == 4) {
		/* UNDEFINED at EL1: skip the instruction, mark the result. */
		undefs++;
		f->x[0] = 0xdeadull;
		f->elr += 4;
		return;
	}
	printf("unexpected exception: vector %lu esr 0x%08lx far 0x%lx\n", f->vector, f->esr,
	       f->far);
	exit(0x7e);
}

/* An LSE instruction on buf: x1 = &buf[off], x2/x3 operands, x0 result.
 * x0 is preset so an UNDEFINED instruction shows as 0xdead. */
#define LSE(name, insn, off, v2, v3)                                               \
	do {                                                                       \
		register uint64_t x0 __asm__("x0") = 0;                            \
		register uint64_t x1 __asm__("x1") = (uint64_t)(buf + (off));      \
		register uint64_t x2 __asm__("x2") = (v2);                         \
		register uint64_t x3 __asm__("x3") = (v3);                         \
		int u = undefs;                                                    \
		__asm__ volatile(".arch_extension lse\n\t" insn                    \
				 : "+r"(x0), "+r"(x2), "+r"(x3)                    \
				 : "r"(x1)                                         \
				 : "x4", "x5", "x6", "x7", "memory");              \
		if (undefs != u)                                                   \
			printf("%s: undefined\n", name);                           \
		else                                                               \
			printf("%s: x0 %016lx x2 %016lx x3 %016lx mem %016lx\n",   \
			       name, x0, x2, x3, *(uint64_t *)(buf + ((off) & ~7u)));    \
	} while (0)

int main(void)
{
	uint64_t a, b, c, d, p;
	trap_set(on_trap);
	puts("memory: start\n");

	fill();
	__asm__ volatile("ldrb %w0, [%4, #0x10]\n\t"
			 "ldrh %w1, [%4, #0x12]\n\t"
			 "ldr %w2, [%4, #0x14]\n\t"
			 "ldr %3, [%4, #0x18]"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(buf));
	printf("ldr b/h/w/x: %lx %lx %lx %lx\n", a, b, c, d);
	__asm__ volatile("ldrsb %w0, [%4, #0x11]\n\t"
			 "ldrsb %1, [%4, #0x11]\n\t"
			 "ldrsh %w2, [%4, #0x12]\n\t"
			 "ldrsh %3, [%4, #0x12]"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(buf));
	printf("ldrsb/ldrsh w,x: %lx %lx %lx %lx\n", a, b, c, d);
	__asm__ volatile("ldrsw %0, [%2, #0x14]\n\t"
			 "ldrsw %1, [%2, #0x4]"
			 : "=&r"(a), "=&r"(b)
			 : "r"(buf));
	printf("ldrsw: %lx %lx\n", a, b);

	__asm__ volatile("strb %w1, [%0, #1]\n\t"
			 "strh %w1, [%0, #2]\n\t"
			 "str %w1, [%0, #4]\n\t"
			 "str %1, [%0, #8]\n\t"
			 "str xzr, [%0, #16]\n\t"
			 "strb wzr, [%0, #24]"
			 :
			 : "r"(buf), "r"(0x1122334455667788ull)
			 : "memory");
	dump("str b/h/w/x/xzr", 0, 4);

	fill();
	p = (uint64_t)buf + 0x40;
	__asm__ volatile("ldr %1, [%0, #8]!\n\t"
			 "ldr %w2, [%0], #-12\n\t"
			 "ldrh %w3, [%0, #-2]!"
			 : "+r"(p), "=&r"(a), "=&r"(b), "=&r"(c));
	printf("pre/post ldr: base +0x%lx values %lx %lx %lx\n", p - (uint64_t)buf, a, b, c);
	p = (uint64_t)buf + 0x80;
	__asm__ volatile("str %1, [%0, #-16]!\n\t"
			 "strh %w1, [%0], #0x22\n\t"
			 "strb %w1, [%0, #1]!"
			 : "+r"(p)
			 : "r"(0xa1a2a3a4a5a6a7a8ull)
			 : "memory");
	printf("pre/post str: base +0x%lx\n", p - (uint64_t)buf);
	dump("pre/post str mem", 0x70, 4);

	fill();
	__asm__ volatile("ldr %0, [%4, %5, lsl #3]\n\t"
			 "ldrh %w1, [%4, %w6, uxtw #1]\n\t"
			 "ldrsb %2, [%4, %w7, sxtw]\n\t"
			 "ldr %w3, [%4, %5, lsl #2]"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(buf + 0x80), "r"(3ull), "r"(5u), "r"(-3))
			 ;
	printf("register offset: %lx %lx %lx %lx\n", a, b, c, d);
	/* uxtw ignores bits 63:32 of the index register; sxtw sign-extends. */
	__asm__ volatile("ldr %w0, [%2, %w3, sxtw #2]\n\t"
			 "ldrb %w1, [%2, %w4, uxtw]"
			 : "=&r"(a), "=&r"(b)
			 : "r"(buf + 0x80), "r"(0xfffffffeffffffffull), "r"(0xffffffff00000009ull));
	printf("extend index: %lx %lx\n", a, b);
	fill();
	__asm__ volatile("str %w1, [%0, %2, lsl #2]\n\t"
			 "strh %w1, [%0, %w3, sxtw #1]"
			 :
			 : "r"(buf + 0x80), "r"(0x55aa55aau), "r"(2ull), "r"(-2)
			 : "memory");
	dump("register offset str", 0x78, 3);

	fill();
	__asm__ volatile("ldp %0, %1, [%4, #0x20]\n\t"
			 "ldp %w2, %w3, [%4, #0x28]"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(buf));
	printf("ldp x,w: %lx %lx %lx %lx\n", a, b, c, d);
	__asm__ volatile("ldpsw %0, %1, [%2, #0x8]" : "=&r"(a), "=&r"(b) : "r"(buf));
	printf("ldpsw: %lx %lx\n", a, b);
	p = (uint64_t)buf + 0x40;
	__asm__ volatile("ldp %1, %2, [%0, #-16]!\n\t"
			 "stp %2, %1, [%0], #48\n\t"
			 "stp %w1, %w2, [%0, #-8]!"
			 : "+r"(p), "=&r"(a), "=&r"(b)
			 :
			 : "memory");
	printf("ldp/stp index: base +0x%lx values %lx %lx\n", p - (uint64_t)buf, a, b);
	dump("ldp/stp index mem", 0x30, 6);
	__asm__ volatile("stnp %2, %3, [%4, #0x90]\n\t"
			 "ldnp %0, %1, [%4, #0x90]"
			 : "=&r"(a), "=&r"(b)
			 : "r"(0x0123ull), "r"(0x4567ull), "r"(buf)
			 : "memory");
	printf("ldnp/stnp: %lx %lx\n", a, b);

	fill();
	__asm__ volatile("ldur %0, [%4, #-8]\n\t"
			 "ldursh %w1, [%4, #-2]\n\t"
			 "ldurb %w2, [%4, #15]\n\t"
			 "ldursw %3, [%4, #-240]"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
			 : "r"(buf + 0x100 - 0x10));
	printf("ldur: %lx %lx %lx %lx\n", a, b, c, d);
	__asm__ volatile("stur %1, [%0, #-24]\n\t"
			 "sturh %w1, [%0, #-26]\n\t"
			 "sturb %w1, [%0, #-29]"
			 :
			 : "r"(buf + 0x40), "r"(0xc1c2c3c4c5c6c7c8ull)
			 : "memory");
	dump("stur mem", 0x20, 2);

	__asm__ volatile("ldr %0, 1f\n\t"
			 "ldr %w1, 1f\n\t"
			 "ldrsw %2, 1f + 4\n\t"
			 "ldr %3, =0x0badc0ffee0ddf00d\n\t"
			 "b 2f\n\t"
			 ".balign 8\n"
			 "1: .quad 0x89abcdef01234567\n"
			 "2:\n\t"
			 ".pushsection .rodata\n\t.ltorg\n\t.popsection"
			 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d));
	printf("literal: %lx %lx %lx %lx\n", a, b, c, d);
	__asm__ volatile("adrp %0, lit_x\n\tldr %0, [%0, :lo12:lit_x]" : "=r"(a));
	printf("adrp+lo12: %lx\n", a);
	__asm__ volatile("prfm pldl1keep, [%0]\n\tprfm pstl2strm, [%0, #64]" : : "r"(buf));

	/* Exclusives: a store-exclusive after a load-exclusive of the same
	 * address succeeds (status 0); after clrex it must fail (1). */
	fill();
	uint64_t s1, s2;
	__asm__ volatile("ldxr %0, [%4]\n\t"
			 "add %0, %0, #1\n\t"
			 "stxr %w2, %0, [%4]\n\t"
			 "ldxr %1, [%4]\n\t"
			 "clrex\n\t"
			 "stxr %w3, %1, [%4]"
			 : "=&r"(a), "=&r"(b), "=&r"(s1), "=&r"(s2)
			 : "r"(buf + 0x20)
			 : "memory");
	printf("ldxr/stxr: %lx status %lu, after clrex status %lu\n", a, s1, s2);
	__asm__ volatile("ldaxr %w0, [%3]\n\t"
			 "eor %w0, %w0, #0xff\n\t"
			 "stlxr %w2, %w0, [%3]\n\t"
			 "ldar %1, [%3]"
			 : "=&r"(a), "=&r"(b), "=&r"(s1)
			 : "r"(buf + 0x28)
			 : "memory");
	printf("ldaxr/stlxr/ldar: %lx %lx status %lu\n", a, b, s1);
	__asm__ volatile("ldxrb %w0, [%4]\n\t"
			 "stxrb %w2, %w5, [%4]\n\t"
			 "add x9, %4, #2\n\t"
			 "ldxrh %w1, [x9]\n\t"
			 "stlxrh %w3, %w5, [x9]"
			 : "=&r"(a), "=&r"(b), "=&r"(s1), "=&r"(s2)
			 : "r"(buf + 0x30), "r"(0xabcdu)
			 : "x9", "memory");
	printf("ldxrb/ldxrh: %lx %lx status %lu %lu\n", a, b, s1, s2);
	__asm__ volatile("ldxp %0, %1, [%3]\n\t"
			 "stxp %w2, %1, %0, [%3]"
			 : "=&r"(a), "=&r"(b), "=&r"(s1)
			 : "r"(buf + 0x40)
			 : "memory");
	printf("ldxp/stxp: %lx %lx status %lu\n", a, b, s1);
	__asm__ volatile("stlr %1, [%0]\n\t"
			 "add x9, %0, #8\n\tstlrb %w1, [x9]\n\t"
			 "add x9, %0, #10\n\tstlrh %w1, [x9]"
			 : : "r"(buf + 0x48), "r"(0x1234567890abcdefull) : "x9", "memory");
	dump("exclusive mem", 0x20, 6);

	/* LSE (Armv8.1). */
	uint64_t isar0 = READ_SYSREG(id_aa64isar0_el1);
	printf("lse: ID_AA64ISAR0_EL1.Atomic = %lu\n", (isar0 >> 20) & 0xf);
	fill();
	LSE("ldadd", "ldadd x2, x0, [x1]", 0x00, 0x10, 0);
	LSE("ldaddal/32", "ldaddal w2, w0, [x1]", 0x08, 0xffffffff, 0);
	LSE("ldclr", "ldclr x2, x0, [x1]", 0x10, 0xff00ff00ff00ff00ull, 0);
	LSE("ldeor", "ldeor x2, x0, [x1]", 0x18, 0xffffffffffffffffull, 0);
	LSE("ldset", "ldset x2, x0, [x1]", 0x20, 0x8000000000000001ull, 0);
	LSE("ldsmax", "ldsmax x2, x0, [x1]", 0x28, 0x1ull, 0);
	LSE("ldumin/8", "lduminb w2, w0, [x1]", 0x30, 0x5, 0);
	LSE("swp", "swp x2, x0, [x1]", 0x38, 0x0123456789abcdefull, 0);
	LSE("swpal/16", "swpalh w2, w0, [x1]", 0x40, 0xbeef, 0);
	LSE("cas hit", "ldr x3, [x1]\n\tmov x0, x3\n\tcas x0, x2, [x1]", 0x48, 0x77, 0);
	LSE("cas miss", "mov x0, #1\n\tcas x0, x2, [x1]", 0x50, 0x88, 0);
	LSE("casal/32", "ldr w0, [x1]\n\tcasal w0, w2, [x1]", 0x58, 0x99, 0);
	LSE("casp", "ldp x4, x5, [x1]\n\tmov x0, x4\n\tmov x6, #0x1111\n\tmov x7, #0x2222\n\t"
	    "casp x4, x5, x6, x7, [x1]\n\tldp x2, x3, [x1]", 0x60, 0, 0);
	printf("memory: done (%d undefined)\n", undefs);
	return 0;
}
