/* Data-processing instructions, each issued with inline asm on every pair
 * of 14 edge-case operands. Each group prints one FNV-1a hash over its
 * results (and the NZCV flags where the instruction sets them), then a few
 * single results are printed as values, so a mismatch shows both which
 * group and what differs. */
#include "rt.h"

static const uint64_t vals[] = {
	0, 1, 2, 0x7f, 0x80, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	0x123456789abcdef0ull, 0x7fffffffffffffffull, 0x8000000000000000ull,
	0xfffffffffffffffeull, 0xffffffffffffffffull,
};
#define NV (sizeof(vals) / sizeof(vals[0]))

static uint64_t h;

static void mix(uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
}

static void begin(void)
{
	h = 0xcbf29ce484222325ull;
}

static void end(const char *name)
{
	printf("%s: 0x%016lx\n", name, h);
}

/* Two-operand instructions: r = op(a, b), flags read after. The flags are
 * preset to a pattern that depends on the pair so flag-consuming
 * instructions (adc, sbc) see both carries. */
#define BIN(name, insn)                                                            \
	do {                                                                       \
		begin();                                                           \
		for (unsigned i = 0; i < NV; i++)                                  \
			for (unsigned j = 0; j < NV; j++) {                        \
				uint64_t r, f, a = vals[i], b = vals[j];           \
				uint64_t pre = (uint64_t)((i + j) & 0xf) << 28;    \
				__asm__ volatile("msr nzcv, %3\n\t" insn "\n\tmrs %1, nzcv" \
						 : "=&r"(r), "=&r"(f)               \
						 : "r"(a), "r"(pre), "r"(b)         \
						 : "cc");                           \
				mix(r);                                            \
				mix(f);                                            \
			}                                                          \
		end(name);                                                         \
	} while (0)

/* Operands: %0 result, %2 a, %4 b (w forms: %w0 %w2 %w4). */
#define X3(op) op " %0, %2, %4"
#define W3(op) op " %w0, %w2, %w4"

/* The 16 condition codes after `cmp a, b` with csel/csinc/csinv/csneg. */
#define COND_SEL(cc)                                                               \
	do {                                                                       \
		uint64_t r1, r2, r3, r4;                                           \
		__asm__ volatile("cmp %4, %5\n\t"                                  \
				 "csel %0, %4, %5, " #cc "\n\t"                    \
				 "csinc %1, %4, %5, " #cc "\n\t"                   \
				 "csinv %2, %4, %5, " #cc "\n\t"                   \
				 "csneg %3, %4, %5, " #cc                          \
				 : "=&r"(r1), "=&r"(r2), "=&r"(r3), "=&r"(r4)      \
				 : "r"(a), "r"(b)                                  \
				 : "cc");                                          \
		mix(r1);                                                           \
		mix(r2);                                                           \
		mix(r3);                                                           \
		mix(r4);                                                           \
	} while (0)

/* ccmp/ccmn: cmp a, b, then compare (b, a) if cc holds else NZCV = 0b1010. */
#define COND_CMP(cc)                                                               \
	do {                                                                       \
		uint64_t f1, f2;                                                   \
		__asm__ volatile("cmp %2, %3\n\t"                                  \
				 "ccmp %3, %2, #10, " #cc "\n\t"                   \
				 "mrs %0, nzcv\n\t"                                \
				 "cmp %2, %3\n\t"                                  \
				 "ccmn %w3, #7, #5, " #cc "\n\t"                   \
				 "mrs %1, nzcv"                                    \
				 : "=&r"(f1), "=&r"(f2)                            \
				 : "r"(a), "r"(b)                                  \
				 : "cc");                                          \
		mix(f1);                                                           \
		mix(f2);                                                           \
	} while (0)

#define ALL_CONDS(M)                                                               \
	M(eq); M(ne); M(hs); M(lo); M(mi); M(pl); M(vs); M(vc);                    \
	M(hi); M(ls); M(ge); M(lt); M(gt); M(le); M(al); M(nv)

static uint64_t one(uint64_t a, uint64_t b)
{
	uint64_t r;
	__asm__ volatile("udiv %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
	return r;
}

int main(void)
{
	puts("integer: start\n");

	BIN("add", X3("add"));
	BIN("adds", X3("adds"));
	BIN("adds/32", W3("adds"));
	BIN("sub", X3("sub"));
	BIN("subs", X3("subs"));
	BIN("subs/32", W3("subs"));
	BIN("adc", X3("adc"));
	BIN("adcs", X3("adcs"));
	BIN("adcs/32", W3("adcs"));
	BIN("sbc", X3("sbc"));
	BIN("sbcs", X3("sbcs"));
	BIN("sbcs/32", W3("sbcs"));
	BIN("negs", "negs %0, %4");
	BIN("ngcs", "ngcs %0, %4");
	BIN("add-lsl", "add %0, %2, %4, lsl #7");
	BIN("subs-asr", "subs %0, %2, %4, asr #63");
	BIN("adds-lsr/32", "adds %w0, %w2, %w4, lsr #31");
	BIN("add-uxtb", "add %0, %2, %w4, uxtb");
	BIN("add-sxth-2", "add %0, %2, %w4, sxth #2");
	BIN("subs-sxtw-4", "subs %0, %2, %w4, sxtw #4");
	BIN("add-uxtx-3", "add %0, %2, %4, uxtx #3");
	BIN("add-imm", "add %0, %2, #0xfff");
	BIN("adds-imm-lsl12", "adds %0, %2, #0xabc, lsl #12");
	BIN("subs-imm/32", "subs %w0, %w2, #1");
	BIN("cmn", "cmn %2, %4\n\tmov %0, xzr");

	BIN("and", X3("and"));
	BIN("ands", X3("ands"));
	BIN("ands/32", W3("ands"));
	BIN("orr", X3("orr"));
	BIN("eor", X3("eor"));
	BIN("bic", X3("bic"));
	BIN("bics", X3("bics"));
	BIN("orn", X3("orn"));
	BIN("eon", X3("eon"));
	BIN("orr-ror", "orr %0, %2, %4, ror #13");
	BIN("and-imm", "and %0, %2, #0x00ff00ff00ff00ff");
	BIN("ands-imm", "ands %0, %2, #0xfffffffffffffff0");
	BIN("eor-imm/32", "eor %w0, %w2, #0x55555555");
	BIN("orr-imm", "orr %0, %2, #0x3ffc0");
	BIN("tst", "tst %2, %4\n\tmov %0, xzr");

	BIN("lslv", X3("lsl"));
	BIN("lsrv", X3("lsr"));
	BIN("asrv", X3("asr"));
	BIN("rorv", X3("ror"));
	BIN("lslv/32", W3("lsl"));
	BIN("lsrv/32", W3("lsr"));
	BIN("asrv/32", W3("asr"));
	BIN("rorv/32", W3("ror"));
	BIN("lsl-imm", "lsl %0, %2, #13");
	BIN("asr-imm/32", "asr %w0, %w2, #7");
	BIN("ror-imm", "ror %0, %2, #60");

	BIN("ubfx", "ubfx %0, %2, #5, #17");
	BIN("sbfx", "sbfx %0, %2, #28, #8");
	BIN("sbfx/32", "sbfx %w0, %w2, #1, #31");
	BIN("bfi", "mov %0, %4\n\tbfi %0, %2, #12, #20");
	BIN("bfxil", "mov %0, %4\n\tbfxil %0, %2, #40, #24");
	BIN("ubfiz", "ubfiz %0, %2, #60, #4");
	BIN("sbfiz/32", "sbfiz %w0, %w2, #3, #9");
	BIN("sxtb", "sxtb %0, %w2");
	BIN("sxth/32", "sxth %w0, %w2");
	BIN("sxtw", "sxtw %0, %w2");
	BIN("uxth", "uxth %w0, %w2");
	BIN("extr", "extr %0, %2, %4, #23");
	BIN("extr/32", "extr %w0, %w2, %w4, #5");

	BIN("clz", "clz %0, %2");
	BIN("clz/32", "clz %w0, %w2");
	BIN("cls", "cls %0, %2");
	BIN("cls/32", "cls %w0, %w2");
	BIN("rbit", "rbit %0, %2");
	BIN("rbit/32", "rbit %w0, %w2");
	BIN("rev", "rev %0, %2");
	BIN("rev/32", "rev %w0, %w2");
	BIN("rev16", "rev16 %0, %2");
	BIN("rev32", "rev32 %0, %2");

	BIN("mul", X3("mul"));
	BIN("mul/32", W3("mul"));
	BIN("madd", "madd %0, %2, %4, %2");
	BIN("msub", "msub %0, %2, %4, %4");
	BIN("madd/32", "madd %w0, %w2, %w4, %w2");
	BIN("smulh", X3("smulh"));
	BIN("umulh", X3("umulh"));
	BIN("smaddl", "smaddl %0, %w2, %w4, %2");
	BIN("umaddl", "umaddl %0, %w2, %w4, %4");
	BIN("smsubl", "smsubl %0, %w2, %w4, %4");
	BIN("umsubl", "umsubl %0, %w2, %w4, %2");
	BIN("udiv", X3("udiv"));
	BIN("sdiv", X3("sdiv"));
	BIN("udiv/32", W3("udiv"));
	BIN("sdiv/32", W3("sdiv"));

	begin();
	for (unsigned i = 0; i < NV; i++)
		for (unsigned j = 0; j < NV; j++) {
			uint64_t a = vals[i], b = vals[j];
			ALL_CONDS(COND_SEL);
		}
	end("csel/csinc/csinv/csneg");
	begin();
	for (unsigned i = 0; i < NV; i++)
		for (unsigned j = 0; j < NV; j++) {
			uint64_t a = vals[i], b = vals[j];
			ALL_CONDS(COND_CMP);
		}
	end("ccmp/ccmn");

	/* Single results, printed as values. */
	uint64_t r, f;
	printf("udiv 7/0: %lu\n", one(7, 0));
	__asm__ volatile("sdiv %0, %1, %2" : "=r"(r) : "r"(0x8000000000000000ull), "r"(-1ll));
	printf("sdiv min/-1: 0x%016lx\n", r);
	__asm__ volatile("sdiv %w0, %w1, %w2" : "=r"(r) : "r"(-7), "r"(0));
	printf("sdiv/32 -7/0: 0x%016lx\n", r);
	__asm__ volatile("adds %0, %2, %3\n\tmrs %1, nzcv"
			 : "=r"(r), "=r"(f)
			 : "r"(0x7fffffffffffffffull), "r"(1ull)
			 : "cc");
	printf("adds max+1: 0x%016lx nzcv 0x%lx\n", r, f >> 28);
	__asm__ volatile("subs %w0, %w2, %w3\n\tmrs %1, nzcv"
			 : "=r"(r), "=r"(f)
			 : "r"(0), "r"(1)
			 : "cc");
	printf("subs/32 0-1: 0x%016lx nzcv 0x%lx\n", r, f >> 28);
	__asm__ volatile("umulh %0, %1, %1" : "=r"(r) : "r"(0xffffffffffffffffull));
	printf("umulh -1*-1: 0x%016lx\n", r);
	__asm__ volatile("smulh %0, %1, %2" : "=r"(r) : "r"(0x8000000000000000ull), "r"(3ull));
	printf("smulh min*3: 0x%016lx\n", r);
	__asm__ volatile("rbit %0, %1" : "=r"(r) : "r"(0x123456789abcdef0ull));
	printf("rbit: 0x%016lx\n", r);
	__asm__ volatile("cls %0, %1" : "=r"(r) : "r"(0xfff0000000000000ull));
	printf("cls: %lu\n", r);
	__asm__ volatile("extr %0, %1, %2, #8" : "=r"(r) : "r"(0x1122334455667788ull), "r"(0x99aabbccddeeff00ull));
	printf("extr: 0x%016lx\n", r);
	__asm__ volatile("movz %0, #0x1234, lsl #48\n\tmovk %0, #0x5678, lsl #16\n\tmovk %0, #0x9abc"
			 : "=&r"(r));
	printf("movz/movk: 0x%016lx\n", r);
	__asm__ volatile("movn %w0, #0x1234, lsl #16" : "=r"(r));
	printf("movn/32: 0x%016lx\n", r);
	__asm__ volatile("movn %0, #0x1234, lsl #32" : "=r"(r));
	printf("movn: 0x%016lx\n", r);

	/* adr and adrp: PC-relative, so the values depend only on the link
	 * address (0x40080000). */
	uint64_t a1, a2, a3;
	__asm__ volatile("0: adr %0, 0b\n\t"
			 "adr %1, 0b + 0x1234\n\t"
			 "adrp %2, 0b + 0x12345678"
			 : "=r"(a1), "=r"(a2), "=r"(a3));
	printf("adr: +0x%lx, adrp page delta 0x%lx, adrp low bits 0x%lx\n", a2 - a1,
	       a3 - (a1 & ~(uint64_t)0xfff), a3 & 0xfff);
	extern char __image_start[];
	__asm__ volatile("adrp %0, __image_start" : "=r"(r));
	printf("adrp __image_start: 0x%lx (ok %d)\n", r, r == (uint64_t)__image_start);

	puts("integer: done\n");
	return 0;
}
