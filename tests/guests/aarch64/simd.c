/* Advanced SIMD: first simple loops that gcc -O3 vectorises (the code a
 * compiled guest runs), then single instructions in inline asm on fixed
 * registers: v0-v3 and v4-v7 are loaded with ld1 from two 64-byte inputs,
 * the instruction runs, and v0 is stored with st1 and printed (high then
 * low 64 bits), with FPSR.QC for the saturating ones. */
#include "rt.h"

#define N 64
static uint8_t a8[N], b8[N], c8[N];
static int16_t a16[N], b16[N], c16[N];
static uint32_t a32[N], b32[N], c32[N];
static int32_t s32[N];
static float af[N], bf[N], cf[N];
static uint8_t in1[64] __attribute__((aligned(16)));
static uint8_t in2[64] __attribute__((aligned(16)));
static uint8_t out[64] __attribute__((aligned(16)));

static uint32_t fnv(const void *p, unsigned n)
{
	const uint8_t *b = p;
	uint32_t h = 0x811c9dc5u;
	for (unsigned i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x01000193u;
	}
	return h;
}

/* Kept out of line so each loop is vectorised on its own. */
#define LOOP __attribute__((noinline))
LOOP static void add32(void) { for (int i = 0; i < N; i++) c32[i] = a32[i] + b32[i]; }
LOOP static void mul32(void) { for (int i = 0; i < N; i++) s32[i] = (int32_t)a32[i] * (int32_t)b32[i]; }
LOOP static void min8(void) { for (int i = 0; i < N; i++) c8[i] = a8[i] < b8[i] ? a8[i] : b8[i]; }
LOOP static void max16(void) { for (int i = 0; i < N; i++) c16[i] = a16[i] > b16[i] ? a16[i] : b16[i]; }
LOOP static void sel16(void) { for (int i = 0; i < N; i++) c16[i] = a16[i] == b16[i] ? 0x55 : a16[i] - b16[i]; }
LOOP static void absdiff8(void) { for (int i = 0; i < N; i++) c8[i] = a8[i] > b8[i] ? a8[i] - b8[i] : b8[i] - a8[i]; }
LOOP static void shift32(void) { for (int i = 0; i < N; i++) c32[i] = (a32[i] >> 3) ^ (b32[i] << 5); }
LOOP static void widen(void) { for (int i = 0; i < N; i++) c32[i] = (uint32_t)(uint16_t)a16[i] * (uint16_t)b16[i]; }
LOOP static void narrow(void) { for (int i = 0; i < N; i++) c8[i] = (uint8_t)(a32[i] >> 8); }
LOOP static void clamp8(void) { for (int i = 0; i < N; i++) { unsigned s = a8[i] + b8[i]; c8[i] = s > 255 ? 255 : s; } }
LOOP static void fma_f(void) { for (int i = 0; i < N; i++) cf[i] = af[i] * bf[i] + cf[i]; }
LOOP static void fdiv_f(void) { for (int i = 0; i < N; i++) cf[i] = af[i] / bf[i]; }
LOOP static void f2i(void) { for (int i = 0; i < N; i++) s32[i] = (int32_t)af[i]; }
LOOP static uint32_t sum32(void) { uint32_t s = 0; for (int i = 0; i < N; i++) s += a32[i]; return s; }
LOOP static uint8_t umax8(void) { uint8_t m = 0; for (int i = 0; i < N; i++) m = a8[i] > m ? a8[i] : m; return m; }
LOOP static int16_t smin16(void) { int16_t m = 0x7fff; for (int i = 0; i < N; i++) m = a16[i] < m ? a16[i] : m; return m; }
LOOP static int64_t dot16(void) { int64_t s = 0; for (int i = 0; i < N; i++) s += (int32_t)a16[i] * b16[i]; return s; }
LOOP static float fsum(void) { float s = 0; for (int i = 0; i < N; i++) s += af[i] * bf[i]; return s; }
LOOP static void rev8(void) { for (int i = 0; i < N; i++) c8[i] = a8[N - 1 - i]; }
LOOP static void interleave(void) { for (int i = 0; i < N / 2; i++) { c16[2 * i] = a16[i]; c16[2 * i + 1] = b16[i]; } }
LOOP static void deinterleave(void) { for (int i = 0; i < N / 2; i++) { c32[i] = a32[2 * i] + a32[2 * i + 1]; } }

static uint32_t seed = 0x2545f491u;
static uint32_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return seed;
}

static void init(void)
{
	for (int i = 0; i < N; i++) {
		a8[i] = (uint8_t)rnd();
		b8[i] = (uint8_t)rnd();
		a16[i] = (int16_t)rnd();
		b16[i] = (int16_t)(i & 7 ? rnd() : (uint32_t)a16[i]);
		a32[i] = rnd();
		b32[i] = rnd();
		af[i] = (float)(int32_t)(rnd() >> 8) / 4096.0f;
		bf[i] = (float)((int32_t)(rnd() >> 12) | 1) / 256.0f;
		cf[i] = (float)i * 0.5f;
	}
	for (int i = 0; i < 64; i++) {
		in1[i] = (uint8_t)(i * 7 + 0x81);
		in2[i] = (uint8_t)(i < 32 ? 63 - i * 2 : i * 13);
	}
}

#define V(name, insn)                                                              \
	do {                                                                       \
		uint64_t qc;                                                       \
		__asm__ volatile("msr fpsr, xzr\n\t"                               \
				 "ld1 {v0.16b-v3.16b}, [%1]\n\t"                   \
				 "ld1 {v4.16b-v7.16b}, [%2]\n\t" insn "\n\t"        \
				 "st1 {v0.16b}, [%3]\n\t"                          \
				 "mrs %0, fpsr"                                    \
				 : "=r"(qc)                                        \
				 : "r"(in1), "r"(in2), "r"(out)                    \
				 : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7",  \
				   "x9", "memory");                                \
		printf("%-10s %016lx%016lx qc %lu\n", name, ((uint64_t *)out)[1],   \
		       ((uint64_t *)out)[0], (qc >> 27) & 1);                      \
	} while (0)

int main(void)
{
	puts("simd: start\n");
	init();
	add32(); printf("loop add32: 0x%08x\n", fnv(c32, sizeof c32));
	mul32(); printf("loop mul32: 0x%08x\n", fnv(s32, sizeof s32));
	min8(); printf("loop min8: 0x%08x\n", fnv(c8, sizeof c8));
	max16(); printf("loop max16: 0x%08x\n", fnv(c16, sizeof c16));
	sel16(); printf("loop sel16: 0x%08x\n", fnv(c16, sizeof c16));
	absdiff8(); printf("loop absdiff8: 0x%08x\n", fnv(c8, sizeof c8));
	shift32(); printf("loop shift32: 0x%08x\n", fnv(c32, sizeof c32));
	widen(); printf("loop widen: 0x%08x\n", fnv(c32, sizeof c32));
	narrow(); printf("loop narrow: 0x%08x\n", fnv(c8, sizeof c8));
	clamp8(); printf("loop clamp8: 0x%08x\n", fnv(c8, sizeof c8));
	fma_f(); printf("loop fma_f: 0x%08x\n", fnv(cf, sizeof cf));
	fdiv_f(); printf("loop fdiv_f: 0x%08x\n", fnv(cf, sizeof cf));
	f2i(); printf("loop f2i: 0x%08x\n", fnv(s32, sizeof s32));
	printf("loop sum32: 0x%08x\n", sum32());
	printf("loop umax8: 0x%02x\n", umax8());
	printf("loop smin16: %d\n", smin16());
	printf("loop dot16: %ld\n", (long)dot16());
	float fs = fsum();
	uint32_t fsb;
	memcpy(&fsb, &fs, 4);
	printf("loop fsum: 0x%08x\n", fsb);
	rev8(); printf("loop rev8: 0x%08x\n", fnv(c8, sizeof c8));
	interleave(); printf("loop interleave: 0x%08x\n", fnv(c16, sizeof c16));
	deinterleave(); printf("loop deinterleave: 0x%08x\n", fnv(c32, 4 * N / 2));

	V("ld1/st1", "mov v0.16b, v3.16b");
	V("add.4s", "add v0.4s, v0.4s, v4.4s");
	V("sub.2d", "sub v0.2d, v0.2d, v4.2d");
	V("mul.8h", "mul v0.8h, v0.8h, v4.8h");
	V("mla.4s", "mla v0.4s, v1.4s, v4.4s");
	V("mul-elem", "mul v0.4s, v1.4s, v4.s[3]");
	V("umin.16b", "umin v0.16b, v0.16b, v4.16b");
	V("smax.8h", "smax v0.8h, v0.8h, v4.8h");
	V("cmgt.16b", "cmgt v0.16b, v0.16b, v4.16b");
	V("cmhi.4s", "cmhi v0.4s, v0.4s, v4.4s");
	V("cmeq0.8h", "cmeq v0.8h, v4.8h, #0");
	V("cmtst.16b", "cmtst v0.16b, v0.16b, v4.16b");
	V("bsl", "bsl v0.16b, v1.16b, v4.16b");
	V("bif", "bif v0.16b, v1.16b, v4.16b");
	V("eor/orn", "eor v0.16b, v0.16b, v4.16b\n\torn v0.16b, v0.16b, v5.16b");
	V("dup.4s", "dup v0.4s, v4.s[2]");
	V("dup-gpr", "mov x9, #0x1234\n\tdup v0.8h, w9");
	V("ins", "ins v0.s[1], v4.s[3]\n\tmov x9, #0x77\n\tins v0.b[15], w9");
	V("umov/smov", "smov x9, v0.b[0]\n\tumov w10, v0.h[7]\n\tadd x9, x9, x10\n\tins v0.d[0], x9");
	V("ext", "ext v0.16b, v0.16b, v4.16b, #5");
	V("zip1.16b", "zip1 v0.16b, v0.16b, v4.16b");
	V("zip2.8h", "zip2 v0.8h, v0.8h, v4.8h");
	V("uzp1.4s", "uzp1 v0.4s, v0.4s, v4.4s");
	V("uzp2.16b", "uzp2 v0.16b, v0.16b, v4.16b");
	V("trn1.8h", "trn1 v0.8h, v0.8h, v4.8h");
	V("tbl1", "tbl v0.16b, {v4.16b}, v0.16b");
	V("tbl2", "movi v8.16b, #0x1f\n\tand v9.16b, v0.16b, v8.16b\n\ttbl v0.16b, {v4.16b, v5.16b}, v9.16b");
	V("tbx1", "movi v8.16b, #0x13\n\ttbx v0.16b, {v4.16b}, v8.16b");
	V("addv.16b", "addv b0, v0.16b");
	V("umaxv.8h", "umaxv h0, v0.8h");
	V("sminv.4s", "sminv s0, v0.4s");
	V("uaddlv.16b", "uaddlv h0, v0.16b");
	V("addp.4s", "addp v0.4s, v0.4s, v4.4s");
	V("cnt", "cnt v0.16b, v0.16b");
	V("rev64.8h", "rev64 v0.8h, v0.8h");
	V("rev32.16b", "rev32 v0.16b, v0.16b");
	V("shl/ushr", "shl v0.4s, v0.4s, #3\n\tushr v1.4s, v4.4s, #29\n\torr v0.16b, v0.16b, v1.16b");
	V("sshr.8h", "sshr v0.8h, v0.8h, #5");
	V("sri/sli", "sri v0.8h, v4.8h, #4\n\tsli v0.8h, v5.8h, #12");
	V("ushl", "ushl v0.16b, v0.16b, v4.16b");
	V("sshl.4s", "sshl v0.4s, v0.4s, v4.4s");
	V("ushll", "ushll v0.8h, v0.8b, #2");
	V("sxtl2", "sxtl2 v0.4s, v0.8h");
	V("xtn", "xtn v0.8b, v0.8h\n\txtn2 v0.16b, v4.8h");
	V("shrn", "shrn v0.8b, v0.8h, #3");
	V("rshrn", "rshrn v0.4h, v0.4s, #9");
	V("sqxtn", "sqxtn v0.8b, v0.8h");
	V("uqxtn", "uqxtn v0.4h, v4.4s");
	V("sqadd.16b", "sqadd v0.16b, v0.16b, v4.16b");
	V("uqsub.8h", "uqsub v0.8h, v0.8h, v4.8h");
	V("uqadd-noqc", "movi v8.16b, #1\n\tuqadd v0.16b, v8.16b, v8.16b");
	V("sqdmulh", "sqdmulh v0.8h, v0.8h, v4.8h");
	V("umull", "umull v0.4s, v0.4h, v4.4h");
	V("smull2", "smull2 v0.2d, v0.4s, v4.4s");
	V("uabd", "uabd v0.16b, v0.16b, v4.16b");
	V("saba", "saba v0.8h, v1.8h, v4.8h");
	V("movi/mvni", "movi v0.4s, #0xab, lsl #8\n\tmvni v1.8h, #0x12\n\tadd v0.8h, v0.8h, v1.8h");
	V("ld1r", "ld1r {v0.8h}, [%2]");
	V("ld1-lane", "ld1 {v0.s}[2], [%2]");
	V("ld2", "ld2 {v0.8h, v1.8h}, [%1]\n\teor v0.16b, v0.16b, v1.16b");
	V("ld3", "ld3 {v0.16b, v1.16b, v2.16b}, [%1]\n\tadd v0.16b, v0.16b, v2.16b");
	V("ld4", "ld4 {v0.4s, v1.4s, v2.4s, v3.4s}, [%2]\n\tadd v0.4s, v0.4s, v3.4s");
	V("st2", "st2 {v0.16b, v1.16b}, [%3]\n\tldr q0, [%3, #16]");
	V("st4", "st4 {v0.4h, v1.4h, v2.4h, v3.4h}, [%3]\n\tldr q0, [%3, #16]");
	V("ld1-post", "mov x9, %1\n\tld1 {v0.16b, v1.16b}, [x9], #32\n\tld1 {v0.8h}, [x9]");
	V("fadd.4s", "fadd v0.4s, v0.4s, v4.4s");
	V("fmul.2d", "fmul v0.2d, v0.2d, v4.2d");
	V("fmla-elem", "fmla v0.4s, v1.4s, v4.s[1]");
	V("fmaxnm.4s", "fmaxnm v0.4s, v0.4s, v4.4s");
	V("faddp", "faddp v0.4s, v0.4s, v4.4s");
	V("fcmge.4s", "fcmge v0.4s, v0.4s, v4.4s");
	V("fcvtzs.4s", "fcvtzs v0.4s, v0.4s");
	V("scvtf.4s", "scvtf v0.4s, v4.4s");
	V("fcvtn", "fcvtn v0.2s, v4.2d");
	V("frecpe", "frecpe v0.4s, v4.4s");
	V("frsqrte", "frsqrte v0.4s, v4.4s");
	V("urecpe", "urecpe v0.4s, v4.4s");
	V("fabs/fneg", "fabs v0.4s, v0.4s\n\tfneg v0.2d, v0.2d");
	puts("simd: done\n");
	return 0;
}
