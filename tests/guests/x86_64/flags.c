/* Flags edge cases. Each instruction runs with a chosen RFLAGS (popfq),
 * RFLAGS is captured right after it (pushfq), and the flags the SDM leaves
 * undefined for that case are masked out. Covered: add/sub/adc/sbb/cmp and
 * logic ops at the carry/overflow boundaries; inc/dec (CF untouched), neg;
 * shl/shr/sar/rol/ror/rcl/rcr/shld/shrd by counts 0, 1, 2, w-1, w, w+1, 31,
 * 32, 33, 63, 64, 65 for 8/16/32/64-bit operands, in cl and as immediates; mul/imul CF/OF; bsf/bsr
 * of 0 (ZF; the destination as the CPU leaves it); bt/bts/btr/btc on
 * registers and memory with large and negative bit offsets; div/idiv
 * results (8/16/32/64-bit, and 128/64 with a wide dividend);
 * cmpxchg success/failure; xadd.
 *
 * One line per group: its name and an FNV-1a hash of every (result, masked
 * flags) in it. With `verbose=1` on the command line (or `-v` for the host
 * build) each case is printed too, for finding which one differs.
 * Also builds as a Linux program (-DHOST): expected/flags.out is what the
 * host CPU prints. */
#ifdef HOST
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#else
#include "rt.h"
#define putchar putc
#endif

#define CF 0x001ull
#define PF 0x004ull
#define AF 0x010ull
#define ZF 0x040ull
#define SF 0x080ull
#define OF 0x800ull
#define ARITH (CF | PF | AF | ZF | SF | OF)
#define FIN0 0x002ull                   /* all arithmetic flags clear */
#define FIN1 (0x002ull | ARITH)         /* all set */

static int verbose;
static uint32_t hash;
static unsigned items;

static void mix(uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++) {
		hash ^= (uint8_t)(v >> (8 * i));
		hash *= 0x01000193u;
	}
}

static void begin(void)
{
	hash = 0x811c9dc5u;
	items = 0;
}

static void end(const char *name, int w)
{
	printf("%s/%d: %u 0x%08x\n", name, w, items, hash);
}

static void phex(uint64_t v, int w)
{
	switch (w) {
	case 8: printf("%02lx", (unsigned long)v); break;
	case 16: printf("%04lx", (unsigned long)v); break;
	case 32: printf("%08lx", (unsigned long)v); break;
	default: printf("%016lx", (unsigned long)v); break;
	}
}

/* One case: inputs a, b (printed in verbose mode), result r, flags. */
static void item(const char *name, int w, uint64_t a, uint64_t b, uint64_t r,
		 uint64_t f, uint64_t mask)
{
	mix(r);
	mix(f & mask);
	items++;
	if (!verbose)
		return;
	printf("  %s/%d ", name, w);
	phex(a, w);
	putchar(',');
	phex(b, 64);
	printf(" -> ");
	phex(r, 64);
	printf(" f %03lx/%03lx\n", (unsigned long)(f & mask), (unsigned long)mask);
}

static uint64_t truncw(uint64_t v, int w)
{
	return w == 64 ? v : v & ((1ull << w) - 1);
}

typedef uint64_t (*op2)(uint64_t a, uint64_t b, uint64_t fin, uint64_t *f);

#define RUN_FLAGS(insn) \
	"push %[fin]\n\tpopfq\n\t" insn "\n\tpushfq\n\tpop %[f]"

/* dst = dst OP src */
#define BIN(op, w, T, m) \
static uint64_t op##_##w(uint64_t a, uint64_t b, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a, s = (T)b; \
	uint64_t f; \
	__asm__ volatile(RUN_FLAGS(#op " %" m "[s], %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) \
			 : [s] "r"(s), [fin] "r"(fin) : "cc"); \
	*fo = f; \
	return d; \
}
/* dst = dst OP cl */
#define SHIFT(op, w, T, m) \
static uint64_t op##_##w(uint64_t a, uint64_t c, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a; \
	uint64_t f; \
	__asm__ volatile(RUN_FLAGS(#op " %%cl, %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) \
			 : "c"(c), [fin] "r"(fin) : "cc"); \
	*fo = f; \
	return d; \
}
/* dst = shld/shrd(dst, src, cl); src is a fixed pattern */
#define DSHIFT(op, w, T, m) \
static uint64_t op##_##w(uint64_t a, uint64_t c, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a, s = (T)0x3c96e1d25a0f7b48ull; \
	uint64_t f; \
	__asm__ volatile(RUN_FLAGS(#op " %%cl, %" m "[s], %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) \
			 : [s] "r"(s), "c"(c), [fin] "r"(fin) : "cc"); \
	*fo = f; \
	return d; \
}
/* dst = OP dst */
#define UN(op, w, T, m) \
static uint64_t op##_##w(uint64_t a, uint64_t b, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a; \
	uint64_t f; \
	(void)b; \
	__asm__ volatile(RUN_FLAGS(#op " %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) : [fin] "r"(fin) : "cc"); \
	*fo = f; \
	return d; \
}
/* The same by an immediate count (the D0/D1 form for 1, C0/C1 otherwise):
 * the counts of counts[] below, one asm each. */
#define SHI(op, m, n) case n: \
	__asm__ volatile(RUN_FLAGS(#op " $" #n ", %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) : [fin] "r"(fin) : "cc"); \
	break;
#define DSHI(op, m, n) case n: \
	__asm__ volatile(RUN_FLAGS(#op " $" #n ", %" m "[s], %" m "[d]") \
			 : [d] "+r"(d), [f] "=&r"(f) : [s] "r"(s), [fin] "r"(fin) : "cc"); \
	break;
#define COUNTS(X, op, m) \
	X(op, m, 0) X(op, m, 1) X(op, m, 2) X(op, m, 7) X(op, m, 8) X(op, m, 9) \
	X(op, m, 15) X(op, m, 16) X(op, m, 17) X(op, m, 31) X(op, m, 32) \
	X(op, m, 33) X(op, m, 63) X(op, m, 64) X(op, m, 65)
#define SHIFT_IMM(op, w, T, m) \
static uint64_t op##_imm_##w(uint64_t a, uint64_t c, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a; \
	uint64_t f = 0; \
	switch (c) { COUNTS(SHI, op, m) } \
	*fo = f; \
	return d; \
}
#define DSHIFT_IMM(op, w, T, m) \
static uint64_t op##_imm_##w(uint64_t a, uint64_t c, uint64_t fin, uint64_t *fo) \
{ \
	T d = (T)a, s = (T)0x3c96e1d25a0f7b48ull; \
	uint64_t f = 0; \
	switch (c) { COUNTS(DSHI, op, m) } \
	*fo = f; \
	return d; \
}
#define ALL4(M, op) \
	M(op, 8, uint8_t, "b") M(op, 16, uint16_t, "w") \
	M(op, 32, uint32_t, "k") M(op, 64, uint64_t, "q")
#define ALL3(M, op) \
	M(op, 16, uint16_t, "w") M(op, 32, uint32_t, "k") M(op, 64, uint64_t, "q")

ALL4(BIN, add) ALL4(BIN, sub) ALL4(BIN, adc) ALL4(BIN, sbb) ALL4(BIN, cmp)
ALL4(BIN, and) ALL4(BIN, or) ALL4(BIN, xor) ALL4(BIN, test)
ALL4(SHIFT, shl) ALL4(SHIFT, shr) ALL4(SHIFT, sar) ALL4(SHIFT, rol)
ALL4(SHIFT, ror) ALL4(SHIFT, rcl) ALL4(SHIFT, rcr)
ALL3(DSHIFT, shld) ALL3(DSHIFT, shrd)
ALL4(SHIFT_IMM, shl) ALL4(SHIFT_IMM, shr) ALL4(SHIFT_IMM, sar)
ALL4(SHIFT_IMM, rol) ALL4(SHIFT_IMM, ror) ALL4(SHIFT_IMM, rcl)
ALL4(SHIFT_IMM, rcr) ALL3(DSHIFT_IMM, shld) ALL3(DSHIFT_IMM, shrd)
ALL4(UN, inc) ALL4(UN, dec) ALL4(UN, neg)

#define TABLE4(op) { op##_8, op##_16, op##_32, op##_64 }
#define TABLE3(op) { 0, op##_16, op##_32, op##_64 }
#define TABLE4I(op) { op##_imm_8, op##_imm_16, op##_imm_32, op##_imm_64 }
#define TABLE3I(op) { 0, op##_imm_16, op##_imm_32, op##_imm_64 }

static const int widths[4] = { 8, 16, 32, 64 };

/* Operand pairs at the boundaries: 0, 1, 0x0f (AF), H-1, H (sign bit), M. */
static void pairs(int w, uint64_t p[12][2])
{
	uint64_t H = 1ull << (w - 1), M = truncw(~0ull, w);
	uint64_t v[12][2] = {
		{ 0, 0 }, { 0, 1 }, { 1, 1 }, { 0x0f, 1 }, { H - 1, 1 },
		{ H - 1, 0 }, { H, 1 }, { H, M }, { M, 1 }, { M, 0 },
		{ M, M }, { H, H },
	};
	memcpy(p, v, sizeof(v));
}

static void arith(void)
{
	static const struct {
		const char *name;
		op2 fn[4];
		uint64_t fin, mask;
	} ops[] = {
		{ "add", TABLE4(add), FIN0, ARITH },
		{ "sub", TABLE4(sub), FIN0, ARITH },
		{ "adc-cf0", TABLE4(adc), FIN0, ARITH },
		{ "adc-cf1", TABLE4(adc), FIN0 | CF, ARITH },
		{ "sbb-cf0", TABLE4(sbb), FIN0, ARITH },
		{ "sbb-cf1", TABLE4(sbb), FIN0 | CF, ARITH },
		{ "cmp", TABLE4(cmp), FIN0, ARITH },
		{ "and", TABLE4(and), FIN1, ARITH & ~AF },
		{ "or", TABLE4(or), FIN1, ARITH & ~AF },
		{ "xor", TABLE4(xor), FIN1, ARITH & ~AF },
		{ "test", TABLE4(test), FIN1, ARITH & ~AF },
		{ "inc-cf0", TABLE4(inc), FIN0, ARITH },
		{ "inc-cf1", TABLE4(inc), FIN1, ARITH },
		{ "dec-cf0", TABLE4(dec), FIN0, ARITH },
		{ "dec-cf1", TABLE4(dec), FIN1, ARITH },
		{ "neg", TABLE4(neg), FIN0, ARITH },
	};
	unsigned o, i, k;

	for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (i = 0; i < 4; i++) {
			int w = widths[i];
			uint64_t p[12][2], f, r;

			pairs(w, p);
			begin();
			for (k = 0; k < 12; k++) {
				r = ops[o].fn[i](p[k][0], p[k][1], ops[o].fin, &f);
				item(ops[o].name, w, p[k][0], p[k][1], r, f,
				     ops[o].mask);
			}
			end(ops[o].name, w);
		}
	}
}

static const uint64_t counts[] = { 0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65 };
#define NCOUNTS (sizeof(counts) / sizeof(counts[0]))

enum { K_SHIFT, K_SAR, K_ROT, K_DSHIFT };

static void shifts(void)
{
	static const struct {
		const char *name;
		op2 fn[4];
		int kind;
	} ops[] = {
		{ "shl", TABLE4(shl), K_SHIFT },
		{ "shr", TABLE4(shr), K_SHIFT },
		{ "sar", TABLE4(sar), K_SAR },
		{ "rol", TABLE4(rol), K_ROT },
		{ "ror", TABLE4(ror), K_ROT },
		{ "rcl", TABLE4(rcl), K_ROT },
		{ "rcr", TABLE4(rcr), K_ROT },
		{ "shld", TABLE3(shld), K_DSHIFT },
		{ "shrd", TABLE3(shrd), K_DSHIFT },
		{ "shl-imm", TABLE4I(shl), K_SHIFT },
		{ "shr-imm", TABLE4I(shr), K_SHIFT },
		{ "sar-imm", TABLE4I(sar), K_SAR },
		{ "rol-imm", TABLE4I(rol), K_ROT },
		{ "ror-imm", TABLE4I(ror), K_ROT },
		{ "rcl-imm", TABLE4I(rcl), K_ROT },
		{ "rcr-imm", TABLE4I(rcr), K_ROT },
		{ "shld-imm", TABLE3I(shld), K_DSHIFT },
		{ "shrd-imm", TABLE3I(shrd), K_DSHIFT },
	};
	/* Two inputs: a pattern with the sign bit and bit 0 set, and its
	 * complement, with all flags clear and all set. */
	static const uint64_t vals[2] = { 0x8b31c0f10e5a7c93ull, 0x74ce3f0ef1a5836cull };
	static const uint64_t fins[2] = { FIN0, FIN1 };
	unsigned o, i, k, v;

	for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (i = 0; i < 4; i++) {
			int w = widths[i];

			if (!ops[o].fn[i])
				continue;
			begin();
			for (v = 0; v < 2; v++) {
				/* complements: their sign bits differ */
				uint64_t a = truncw(vals[v], w);
				for (k = 0; k < NCOUNTS; k++) {
					unsigned mc = counts[k] & (w == 64 ? 63 : 31);
					uint64_t mask, f, r;

					if (mc == 0)
						mask = ARITH;   /* unaffected */
					else if (ops[o].kind == K_ROT)
						mask = CF | (mc == 1 ? OF : 0);
					else
						mask = CF | PF | ZF | SF | (mc == 1 ? OF : 0);
					if (ops[o].kind == K_SHIFT && mc >= (unsigned)w)
						mask &= ~CF;
					if (ops[o].kind == K_DSHIFT && mc > (unsigned)w)
						continue;       /* result undefined */
					r = ops[o].fn[i](a, counts[k], fins[v], &f);
					item(ops[o].name, w, a, counts[k], r, f, mask);
				}
			}
			end(ops[o].name, w);
		}
	}
}

/* mul/imul: CF and OF defined, SF ZF AF PF not. */
static void mul_imul(void)
{
	static const uint64_t in[][2] = {
		{ 3, 5 }, { 0x7f, 2 }, { 0xff, 0xff }, { 0x80, 0xff },
		{ 0x7fff, 2 }, { 0x8000, 0xffff }, { 0xffff, 0xffff },
		{ 0x7fffffff, 2 }, { 0x80000000, 0xffffffff }, { 0xffffffff, 0xffffffff },
		{ 0x7fffffffffffffffull, 2 }, { 0x8000000000000000ull, ~0ull },
		{ ~0ull, ~0ull }, { 0x100000000ull, 0x100000000ull }, { 0, 0 },
	};
	unsigned i, k;

	for (i = 0; i < 4; i++) {
		int w = widths[i];
		int s;

		for (s = 0; s < 2; s++) {
			begin();
			for (k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
				uint64_t a = truncw(in[k][0], w), b = truncw(in[k][1], w);
				uint64_t lo = a, hi = 0x5555, f, fin = FIN0;

				switch (w * 2 + s) {
				case 16: { uint16_t ax = (uint8_t)a; uint8_t bb = b;
					__asm__ volatile(RUN_FLAGS("mulb %[b]") : "+a"(ax), [f] "=&r"(f) : [b] "q"(bb), [fin] "r"(fin) : "cc");
					lo = ax; break; }
				case 17: { uint16_t ax = (uint8_t)a; uint8_t bb = b;
					__asm__ volatile(RUN_FLAGS("imulb %[b]") : "+a"(ax), [f] "=&r"(f) : [b] "q"(bb), [fin] "r"(fin) : "cc");
					lo = ax; break; }
				case 32: { uint16_t x = a, d;
					__asm__ volatile(RUN_FLAGS("mulw %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"((uint16_t)b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				case 33: { uint16_t x = a, d;
					__asm__ volatile(RUN_FLAGS("imulw %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"((uint16_t)b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				case 64: { uint32_t x = a, d;
					__asm__ volatile(RUN_FLAGS("mull %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"((uint32_t)b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				case 65: { uint32_t x = a, d;
					__asm__ volatile(RUN_FLAGS("imull %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"((uint32_t)b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				case 128: { uint64_t x = a, d;
					__asm__ volatile(RUN_FLAGS("mulq %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"(b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				default: { uint64_t x = a, d;
					__asm__ volatile(RUN_FLAGS("imulq %[b]") : "+a"(x), "=d"(d), [f] "=&r"(f) : [b] "r"(b), [fin] "r"(fin) : "cc");
					lo = x; hi = d; break; }
				}
				item(s ? "imul1" : "mul1", w, a, b, lo, f, CF | OF);
				mix(hi);
			}
			end(s ? "imul1" : "mul1", w);
		}
	}
	/* two- and three-operand imul */
	for (i = 1; i < 4; i++) {
		int w = widths[i];

		begin();
		for (k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
			uint64_t a = truncw(in[k][0], w), b = truncw(in[k][1], w), f, r, r3;
			uint64_t fin = FIN0;

			if (w == 16) {
				uint16_t d = a, d3;
				__asm__ volatile(RUN_FLAGS("imul %[b], %[d]") : [d] "+r"(d), [f] "=&r"(f) : [b] "r"((uint16_t)b), [fin] "r"(fin) : "cc");
				r = d;
				__asm__ volatile("imul $-3, %[a], %[d]" : [d] "=r"(d3) : [a] "r"((uint16_t)a) : "cc");
				r3 = d3;
			} else if (w == 32) {
				uint32_t d = a, d3;
				__asm__ volatile(RUN_FLAGS("imul %[b], %[d]") : [d] "+r"(d), [f] "=&r"(f) : [b] "r"((uint32_t)b), [fin] "r"(fin) : "cc");
				r = d;
				__asm__ volatile("imul $0x12345, %[a], %[d]" : [d] "=r"(d3) : [a] "r"((uint32_t)a) : "cc");
				r3 = d3;
			} else {
				uint64_t d = a, d3;
				__asm__ volatile(RUN_FLAGS("imul %[b], %[d]") : [d] "+r"(d), [f] "=&r"(f) : [b] "r"(b), [fin] "r"(fin) : "cc");
				r = d;
				__asm__ volatile("imul $-0x7fffffff, %[a], %[d]" : [d] "=r"(d3) : [a] "r"(a) : "cc");
				r3 = d3;
			}
			item("imul2", w, a, b, r, f, CF | OF);
			mix(r3);
		}
		end("imul2", w);
	}
	/* flags of the three-operand form */
	begin();
	for (k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
		uint64_t a = in[k][0], f, d, fin = FIN0;
		__asm__ volatile(RUN_FLAGS("imul $0x40000000, %[a], %[d]") : [d] "=&r"(d), [f] "=&r"(f) : [a] "r"(a), [fin] "r"(fin) : "cc");
		item("imul3", 64, a, 0x40000000, d, f, CF | OF);
	}
	end("imul3", 64);
}

/* div/idiv results (their flags are all undefined) for dividends and
 * divisors that do not fault: unsigned with hi < divisor, signed with a
 * sign-extended dividend (not INT_MIN / -1) and a few wider ones. */
static void divide(void)
{
	static const uint64_t lo[] = { 0, 1, 7, 0x7f, 0x80, 0xff, 0x7fff, 0x8000,
		0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x123456789abcdef0ull,
		0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull };
	static const uint64_t dv[] = { 1, 2, 3, 7, 0x10, 0x7f, 0x80, 0xff, 0x7fff,
		0xfffe, 0x80000001, 0xfffffffd, 0x100000000ull, 0x7fffffffffffffffull,
		~0ull, (uint64_t)-7 };
	static const uint64_t wide[][3] = {     /* signed hi, lo, divisor (64-bit) */
		{ 0, 0x8000000000000000ull, 2 }, { 1, 0, 4 },
		{ (uint64_t)-2, 0, 8 }, { (uint64_t)-1, 1, 3 },
		{ 0x3fffffffffffffffull, 0, 0x7fffffffffffffffull },
		{ 0x12345678, 0x9abcdef012345678ull, 0x123456789ull },
	};
	unsigned i, j, k, s;

	for (s = 0; s < 2; s++) {
		for (i = 0; i < 4; i++) {
			int w = widths[i];

			begin();
			for (j = 0; j < sizeof(lo) / sizeof(lo[0]); j++) {
				for (k = 0; k < sizeof(dv) / sizeof(dv[0]); k++) {
					uint64_t a = truncw(lo[j], w), d = truncw(dv[k], w);
					uint64_t hi, q, r, H = 1ull << (w - 1);

					if (!d)
						continue;
					if (s) {
						/* sign-extend a into hi; skip INT_MIN / -1 */
						hi = (a & H) ? truncw(~0ull, w) : 0;
						if (a == H && d == truncw(~0ull, w))
							continue;
					} else {
						hi = 0;
					}
					switch (w * 2 + s) {
					case 16: { uint16_t ax = (uint16_t)(hi << 8 | a);
						__asm__ volatile("divb %1" : "+a"(ax) : "q"((uint8_t)d) : "cc");
						q = ax & 0xff; r = ax >> 8; break; }
					case 17: { uint16_t ax = (uint16_t)(hi << 8 | a);
						__asm__ volatile("idivb %1" : "+a"(ax) : "q"((uint8_t)d) : "cc");
						q = ax & 0xff; r = ax >> 8; break; }
					case 32: { uint16_t x = a, y = hi;
						__asm__ volatile("divw %2" : "+a"(x), "+d"(y) : "r"((uint16_t)d) : "cc");
						q = x; r = y; break; }
					case 33: { uint16_t x = a, y = hi;
						__asm__ volatile("idivw %2" : "+a"(x), "+d"(y) : "r"((uint16_t)d) : "cc");
						q = x; r = y; break; }
					case 64: { uint32_t x = a, y = hi;
						__asm__ volatile("divl %2" : "+a"(x), "+d"(y) : "r"((uint32_t)d) : "cc");
						q = x; r = y; break; }
					case 65: { uint32_t x = a, y = hi;
						__asm__ volatile("idivl %2" : "+a"(x), "+d"(y) : "r"((uint32_t)d) : "cc");
						q = x; r = y; break; }
					case 128: { uint64_t x = a, y = hi;
						__asm__ volatile("divq %2" : "+a"(x), "+d"(y) : "r"(d) : "cc");
						q = x; r = y; break; }
					default: { uint64_t x = a, y = hi;
						__asm__ volatile("idivq %2" : "+a"(x), "+d"(y) : "r"(d) : "cc");
						q = x; r = y; break; }
					}
					item(s ? "idiv" : "div", w, a, d, q, r, ~0ull);
				}
			}
			/* unsigned: a high half below the divisor */
			if (!s && w == 64) {
				for (k = 0; k < sizeof(dv) / sizeof(dv[0]); k++) {
					uint64_t x = 0x0123456789abcdefull, y = dv[k] - 1, d = dv[k];
					__asm__ volatile("divq %2" : "+a"(x), "+d"(y) : "r"(d) : "cc");
					item("div128", 64, dv[k] - 1, d, x, y, ~0ull);
				}
			}
			if (s && w == 64) {
				for (k = 0; k < sizeof(wide) / sizeof(wide[0]); k++) {
					uint64_t x = wide[k][1], y = wide[k][0], d = wide[k][2];
					__asm__ volatile("idivq %2" : "+a"(x), "+d"(y) : "r"(d) : "cc");
					item("idiv128", 64, wide[k][0], d, x, y, ~0ull);
				}
			}
			end(s ? "idiv" : "div", w);
		}
	}
}

/* bsf/bsr: ZF; with a zero source the destination is what the CPU leaves. */
static void bitscan(void)
{
	static const uint64_t src[] = { 0, 1, 0x80, 0x8000, 0x00f0, 0x80000000ull,
		0x100000000ull, 0x8000000000000000ull, ~0ull };
	const uint64_t init = 0xdeadbeefcafebabeull;
	unsigned k, s;
	int w;

	for (s = 0; s < 2; s++) {
		for (w = 16; w <= 64; w *= 2) {
			begin();
			for (k = 0; k < sizeof(src) / sizeof(src[0]); k++) {
				uint64_t d = init, f, fin = FIN0, x = src[k];
				switch (w * 2 + s) {
				case 32: __asm__ volatile(RUN_FLAGS("bsf %w[x], %w[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				case 33: __asm__ volatile(RUN_FLAGS("bsr %w[x], %w[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				case 64: __asm__ volatile(RUN_FLAGS("bsf %k[x], %k[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				case 65: __asm__ volatile(RUN_FLAGS("bsr %k[x], %k[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				case 128: __asm__ volatile(RUN_FLAGS("bsf %q[x], %q[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				default: __asm__ volatile(RUN_FLAGS("bsr %q[x], %q[d]") : [d] "+r"(d), [f] "=&r"(f) : [x] "r"(x), [fin] "r"(fin) : "cc"); break;
				}
				item(s ? "bsr" : "bsf", w, x, 0, d, f, ZF);
			}
			end(s ? "bsr" : "bsf", w);
		}
	}
}

/* bt/bts/btr/btc: CF = the bit, ZF unaffected, OF SF AF PF undefined. */
static uint8_t bitbuf[64] __attribute__((aligned(8)));

static uint64_t bitbuf_hash(void)
{
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned i;

	for (i = 0; i < sizeof(bitbuf); i++) {
		h ^= bitbuf[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define BTREG(insn, m) __asm__ volatile(RUN_FLAGS(insn " %" m "[o], %" m "[d]") \
	: [d] "+r"(d), [f] "=&r"(f) : [o] "r"(o), [fin] "r"(fin) : "cc")
#define BTMEM(insn, m) __asm__ volatile(RUN_FLAGS(insn " %" m "[o], (%[p])") \
	: [f] "=&r"(f) : [o] "r"(o), [p] "r"(p), [fin] "r"(fin) : "cc", "memory")

static void bittest(void)
{
	static const int64_t offs[] = { 0, 3, 17, 35, 67, 127, 200, -1, -70, -256 };
	static const char *const names[4] = { "bt", "bts", "btr", "btc" };
	unsigned k, op, v;
	int w;

	for (op = 0; op < 4; op++) {
		for (w = 16; w <= 64; w *= 2) {
			begin();
			for (v = 0; v < 2; v++) {
				uint64_t fin = v ? FIN1 : FIN0;
				for (k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
					uint64_t d = 0x8b31c0f10e5a7c93ull, f, o = (uint64_t)offs[k];
					switch (op * 100 + w) {
					case 16: BTREG("bt", "w"); break;
					case 32: BTREG("bt", "k"); break;
					case 64: BTREG("bt", "q"); break;
					case 116: BTREG("bts", "w"); break;
					case 132: BTREG("bts", "k"); break;
					case 164: BTREG("bts", "q"); break;
					case 216: BTREG("btr", "w"); break;
					case 232: BTREG("btr", "k"); break;
					case 264: BTREG("btr", "q"); break;
					case 316: BTREG("btc", "w"); break;
					case 332: BTREG("btc", "k"); break;
					default: BTREG("btc", "q"); break;
					}
					item(names[op], w, o, 0, d, f, CF | ZF);
				}
			}
			end(names[op], w);
		}
		/* memory operand, register bit offset: may reach outside the
		 * addressed word, before it too */
		for (w = 16; w <= 64; w *= 2) {
			begin();
			for (k = 0; k < sizeof(offs) / sizeof(offs[0]); k++) {
				uint8_t *p = bitbuf + 40;
				uint64_t f, fin = FIN0, o = (uint64_t)offs[k];
				unsigned i;

				if (w == 16 && (offs[k] < -256 || offs[k] > 127))
					continue;
				for (i = 0; i < sizeof(bitbuf); i++)
					bitbuf[i] = (uint8_t)(i * 37 + 11);
				switch (op * 100 + w) {
				case 16: BTMEM("btw", "w"); break;
				case 32: BTMEM("btl", "k"); break;
				case 64: BTMEM("btq", "q"); break;
				case 116: BTMEM("btsw", "w"); break;
				case 132: BTMEM("btsl", "k"); break;
				case 164: BTMEM("btsq", "q"); break;
				case 216: BTMEM("btrw", "w"); break;
				case 232: BTMEM("btrl", "k"); break;
				case 264: BTMEM("btrq", "q"); break;
				case 316: BTMEM("btcw", "w"); break;
				case 332: BTMEM("btcl", "k"); break;
				default: BTMEM("btcq", "q"); break;
				}
				item(names[op], w, o, 1, bitbuf_hash(), f, CF | ZF);
			}
			end(names[op], w);
		}
	}
	/* memory operand, immediate offset: taken modulo the width */
	begin();
	{
		uint64_t f, fin = FIN0;
		uint8_t *p = bitbuf + 40;
		unsigned i;

		for (i = 0; i < sizeof(bitbuf); i++)
			bitbuf[i] = (uint8_t)(i * 37 + 11);
		__asm__ volatile(RUN_FLAGS("btsl $35, (%[p])") : [f] "=&r"(f) : [p] "r"(p), [fin] "r"(fin) : "cc", "memory");
		item("bts-imm", 32, 35, 0, bitbuf_hash(), f, CF | ZF);
		__asm__ volatile(RUN_FLAGS("btcq $70, (%[p])") : [f] "=&r"(f) : [p] "r"(p), [fin] "r"(fin) : "cc", "memory");
		item("btc-imm", 64, 70, 0, bitbuf_hash(), f, CF | ZF);
		__asm__ volatile(RUN_FLAGS("btrw $31, (%[p])") : [f] "=&r"(f) : [p] "r"(p), [fin] "r"(fin) : "cc", "memory");
		item("btr-imm", 16, 31, 0, bitbuf_hash(), f, CF | ZF);
		__asm__ volatile(RUN_FLAGS("btl $255, (%[p])") : [f] "=&r"(f) : [p] "r"(p), [fin] "r"(fin) : "cc", "memory");
		item("bt-imm", 32, 255, 0, bitbuf_hash(), f, CF | ZF);
	}
	end("bt-imm", 0);
}

/* cmpxchg (success and failure, register and memory) and xadd. Registers
 * start with garbage in their upper halves. */
static uint64_t mem64;

#define CX_REG(m) __asm__ volatile(RUN_FLAGS("cmpxchg %" m "[s], %" m "[d]") \
	: "+a"(acc), [d] "+r"(d), [f] "=&r"(f) : [s] "r"(s), [fin] "r"(fin) : "cc")
#define CX_MEM(m) __asm__ volatile(RUN_FLAGS("cmpxchg %" m "[s], %[d]") \
	: "+a"(acc), [d] "+m"(mem64), [f] "=&r"(f) : [s] "r"(s), [fin] "r"(fin) : "cc")
#define XA_REG(m) __asm__ volatile(RUN_FLAGS("xadd %" m "[s], %" m "[d]") \
	: [s] "+r"(s), [d] "+r"(d), [f] "=&r"(f) : [fin] "r"(fin) : "cc")
#define XA_MEM(m) __asm__ volatile(RUN_FLAGS("xadd %" m "[s], %[d]") \
	: [s] "+r"(s), [d] "+m"(mem64), [f] "=&r"(f) : [fin] "r"(fin) : "cc")

static void exchange(void)
{
	static const uint64_t dv[2] = { 0x2222222280008001ull, 0x22222222ffffffffull };
	unsigned i, k, mem;

	for (mem = 0; mem < 2; mem++) {
		for (i = 0; i < 4; i++) {
			int w = widths[i];

			begin();
			for (k = 0; k < 4; k++) {
				/* k even: accumulator equals dst (success) */
				uint64_t d = dv[k / 2], s = 0x3333333312345678ull;
				uint64_t acc = (k & 1) ? 0x1111111100000005ull
						       : (0x1111111100000000ull | truncw(d, w));
				uint64_t f, fin = FIN0;

				if (w == 64 && !(k & 1))
					acc = d;
				mem64 = d;
				switch (mem * 100 + w) {
				case 8: CX_REG("b"); break;
				case 16: CX_REG("w"); break;
				case 32: CX_REG("k"); break;
				case 64: CX_REG("q"); break;
				case 108: CX_MEM("b"); break;
				case 116: CX_MEM("w"); break;
				case 132: CX_MEM("k"); break;
				default: CX_MEM("q"); break;
				}
				if (mem)
					d = mem64;
				item(mem ? "cmpxchg-mem" : "cmpxchg-reg", w, acc, s, d, f, ARITH);
				mix(acc);
			}
			end(mem ? "cmpxchg-mem" : "cmpxchg-reg", w);
		}
	}
	for (mem = 0; mem < 2; mem++) {
		for (i = 0; i < 4; i++) {
			int w = widths[i];

			begin();
			for (k = 0; k < 3; k++) {
				static const uint64_t sv[3] = { 1, 0x7fffffffffffffffull, 0x8000000080008080ull };
				uint64_t d = 0xffffffffffffffffull - k, s = sv[k], f, fin = FIN0;

				mem64 = d;
				switch (mem * 100 + w) {
				case 8: XA_REG("b"); break;
				case 16: XA_REG("w"); break;
				case 32: XA_REG("k"); break;
				case 64: XA_REG("q"); break;
				case 108: XA_MEM("b"); break;
				case 116: XA_MEM("w"); break;
				case 132: XA_MEM("k"); break;
				default: XA_MEM("q"); break;
				}
				if (mem)
					d = mem64;
				item(mem ? "xadd-mem" : "xadd-reg", w, s, 0, d, f, ARITH);
				mix(s);
			}
			end(mem ? "xadd-mem" : "xadd-reg", w);
		}
	}
}

/* Conditions: the 16 setcc/jcc conditions read right after each flag
 * producer (where a JIT fuses the two), after a jmp to another block, and
 * from every combination of CF ZF SF OF PF loaded by popfq. */
#define SET16(p) \
	"seto 0(" p ")\n\tsetno 1(" p ")\n\tsetb 2(" p ")\n\tsetae 3(" p ")\n\t" \
	"sete 4(" p ")\n\tsetne 5(" p ")\n\tsetbe 6(" p ")\n\tseta 7(" p ")\n\t" \
	"sets 8(" p ")\n\tsetns 9(" p ")\n\tsetp 10(" p ")\n\tsetnp 11(" p ")\n\t" \
	"setl 12(" p ")\n\tsetge 13(" p ")\n\tsetle 14(" p ")\n\tsetg 15(" p ")"
#define J1(c, n, reg) "j" #c " 1f\n\tmovb $0, " #n "(" reg ")\n\tjmp 2f\n1:\tmovb $1, " #n "(" reg ")\n2:\t"
/* jcc keeps no flags of its own to clobber, so the 16 can follow one another */
#define JCC16(reg) \
	J1(o, 0, reg) J1(no, 1, reg) J1(b, 2, reg) J1(ae, 3, reg) J1(e, 4, reg) \
	J1(ne, 5, reg) J1(be, 6, reg) J1(a, 7, reg) J1(s, 8, reg) J1(ns, 9, reg) \
	J1(p, 10, reg) J1(np, 11, reg) J1(l, 12, reg) J1(ge, 13, reg) \
	J1(le, 14, reg) J1(g, 15, reg)

static uint8_t cc[16];

static uint64_t cc_bits(void)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < 16; i++)
		v |= (uint64_t)(cc[i] & 1) << i;
	return v;
}

#define CC_OP(name, w, T, m, insn) \
static uint64_t cc_##name##_##w(uint64_t a, uint64_t b, int how) \
{ \
	T d = (T)a, s = (T)b; \
	uint8_t *p = cc; \
	switch (how) { \
	case 0: __asm__ volatile(insn "\n\t" SET16("%[p]") \
		: [d] "+r"(d) : [s] "r"(s), [p] "r"(p) : "cc", "memory"); break; \
	case 1: __asm__ volatile(insn "\n\tjmp 3f\n3:\t" SET16("%[p]") \
		: [d] "+r"(d) : [s] "r"(s), [p] "r"(p) : "cc", "memory"); break; \
	default: __asm__ volatile(insn "\n\t" JCC16("%[p]") \
		: [d] "+r"(d) : [s] "r"(s), [p] "r"(p) : "cc", "memory"); break; \
	} \
	return cc_bits(); \
}
#define CC3(name, insn8, insn32, insn64) \
	CC_OP(name, 8, uint8_t, "b", insn8) CC_OP(name, 32, uint32_t, "k", insn32) \
	CC_OP(name, 64, uint64_t, "q", insn64)
#define BOP(op, m) #op " %" m "[s], %" m "[d]"
#define UOP(op, m) #op " %" m "[d]"
CC3(cmp, BOP(cmp, "b"), BOP(cmp, "k"), BOP(cmp, "q"))
CC3(sub, BOP(sub, "b"), BOP(sub, "k"), BOP(sub, "q"))
CC3(add, BOP(add, "b"), BOP(add, "k"), BOP(add, "q"))
CC3(adc, "stc\n\t" BOP(adc, "b"), "stc\n\t" BOP(adc, "k"), "stc\n\t" BOP(adc, "q"))
CC3(sbb, "stc\n\t" BOP(sbb, "b"), "stc\n\t" BOP(sbb, "k"), "stc\n\t" BOP(sbb, "q"))
CC3(test, BOP(test, "b"), BOP(test, "k"), BOP(test, "q"))
CC3(and, BOP(and, "b"), BOP(and, "k"), BOP(and, "q"))
CC3(xor, BOP(xor, "b"), BOP(xor, "k"), BOP(xor, "q"))
CC3(inc, "stc\n\t" UOP(inc, "b"), "stc\n\t" UOP(inc, "k"), "stc\n\t" UOP(inc, "q"))
CC3(dec, "clc\n\t" UOP(dec, "b"), "clc\n\t" UOP(dec, "k"), "clc\n\t" UOP(dec, "q"))
CC3(neg, UOP(neg, "b"), UOP(neg, "k"), UOP(neg, "q"))
/* shift by 1: OF defined; AF is not read by any condition */
CC3(shl1, "shl $1, %b[d]", "shl $1, %k[d]", "shl $1, %q[d]")
CC3(sar1, "sar $1, %b[d]", "sar $1, %k[d]", "sar $1, %q[d]")

#define CC_TABLE(name) { #name, { cc_##name##_8, cc_##name##_32, cc_##name##_64 } }

static void conditions(void)
{
	static const struct {
		const char *name;
		uint64_t (*fn[3])(uint64_t, uint64_t, int);
	} ops[] = {
		CC_TABLE(cmp), CC_TABLE(sub), CC_TABLE(add), CC_TABLE(adc),
		CC_TABLE(sbb), CC_TABLE(test), CC_TABLE(and), CC_TABLE(xor),
		CC_TABLE(inc), CC_TABLE(dec), CC_TABLE(neg), CC_TABLE(shl1),
		CC_TABLE(sar1),
	};
	static const int w3[3] = { 8, 32, 64 };
	static const char *const hows[3] = { "setcc", "jmp-setcc", "jcc" };
	unsigned o, i, k, how, st;

	for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (i = 0; i < 3; i++) {
			uint64_t p[12][2];

			pairs(w3[i], p);
			for (how = 0; how < 3; how++) {
				char name[32];

				/* "cmp-setcc" etc. */
				size_t n1 = strlen(ops[o].name), n2 = strlen(hows[how]);
				memcpy(name, ops[o].name, n1);
				name[n1] = '-';
				memcpy(name + n1 + 1, hows[how], n2 + 1);
				begin();
				for (k = 0; k < 12; k++) {
					uint64_t r = ops[o].fn[i](p[k][0], p[k][1], how);
					item(name, w3[i], p[k][0], p[k][1], r, 0, 0);
				}
				end(name, w3[i]);
			}
		}
	}
	/* all 32 combinations of CF PF ZF SF OF */
	begin();
	for (st = 0; st < 32; st++) {
		uint64_t fin = 0x2 | ((st & 1) ? CF : 0) | ((st & 2) ? PF : 0) |
			       ((st & 4) ? ZF : 0) | ((st & 8) ? SF : 0) |
			       ((st & 16) ? OF : 0);
		uint8_t *p = cc;

		__asm__ volatile("push %[fin]\n\tpopfq\n\t" SET16("%[p]")
				 : : [fin] "r"(fin), [p] "r"(p) : "cc", "memory");
		item("popf-setcc", 0, fin, 0, cc_bits(), 0, 0);
		__asm__ volatile("push %[fin]\n\tpopfq\n\t" JCC16("%[p]")
				 : : [fin] "r"(fin), [p] "r"(p) : "cc", "memory");
		item("popf-jcc", 0, fin, 0, cc_bits(), 0, 0);
	}
	end("popf-setcc-jcc", 0);
}

#ifdef HOST
int main(int argc, char **argv)
{
	verbose = argc > 1 && !strcmp(argv[1], "-v");
#else
int main(void)
{
	const char *v = cmdline_get("verbose");

	verbose = v && *v == '1';
#endif
	arith();
	shifts();
	mul_imul();
	divide();
	bitscan();
	bittest();
	exchange();
	conditions();
	printf("flags: done\n");
	return 0;
}
