/* Scalar floating point: every operation below runs on all pairs (or
 * triples a, b, a) of 14 edge-case inputs under 7 FPCR settings (the four
 * rounding modes, FZ, DN, and RZ|FZ|DN), with FPSR cleared before each
 * case. One line per operation and setting: an FNV-1a hash of the result
 * bits and FPSR of every case. Then single cases printed as bit patterns.
 * All operations are inline asm on fixed registers, so the compiler's own
 * FP code (none at -O2 here) cannot change what is tested. */
#include "rt.h"

static const uint64_t dv[] = {
	0x3ff0000000000000ull, /* 1.0 */
	0x3fd5555555555555ull, /* ~1/3 */
	0xc004000000000000ull, /* -2.5 */
	0x0010000000000000ull, /* min normal */
	0x0000000000000001ull, /* min denormal */
	0x800fffffffffffffull, /* -max denormal */
	0x7fefffffffffffffull, /* max */
	0x7ff0000000000000ull, /* +inf */
	0x8000000000000000ull, /* -0 */
	0x7ff8000000000001ull, /* qNaN */
	0x7ff0000000000002ull, /* sNaN */
	0x4340000000000001ull, /* 2^53 + 2 */
	0x43e0000000000000ull, /* 2^63 */
	0xc1e0000000200000ull, /* -2^31 - 1 */
};
static const uint32_t sv[] = {
	0x3f800000, 0x3eaaaaab, 0xc0200000, 0x00800000, 0x00000001, 0x807fffff, 0x7f7fffff,
	0x7f800000, 0x80000000, 0x7fc00001, 0x7f800002, 0x4b800001, 0x5f000000, 0xcf000001,
};
#define NV 14

static const struct {
	const char *name;
	uint64_t fpcr;
} cfg[] = {
	{ "rn", 0 },
	{ "rp", 1ul << 22 },
	{ "rm", 2ul << 22 },
	{ "rz", 3ul << 22 },
	{ "fz", 1ul << 24 },
	{ "dn", 1ul << 25 },
	{ "rz+fz+dn", (3ul << 22) | (1ul << 24) | (1ul << 25) },
};

static uint32_t h;
static void mix(uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x01000193u;
	}
}

/* %1, %2, %3 go to d1, d2, d3 (or s1..s3, or x for the integer inputs);
 * the result comes back from d0/x0 as bits; FPSR is read right after. */
#define OP(fn, insn)                                                               \
	static uint64_t fn(uint64_t a, uint64_t b, uint64_t c, uint64_t *fpsr)     \
	{                                                                          \
		uint64_t r, f;                                                     \
		__asm__ volatile("msr fpsr, xzr\n\t"                               \
				 "fmov d1, %2\n\tfmov d2, %3\n\tfmov d3, %4\n\t"   \
				 "movi d0, #0\n\t" insn "\n\t"                      \
				 "fmov %0, d0\n\t"                                 \
				 "mrs %1, fpsr"                                    \
				 : "=&r"(r), "=&r"(f)                              \
				 : "r"(a), "r"(b), "r"(c)                          \
				 : "v0", "v1", "v2", "v3", "x9", "cc");            \
		*fpsr = f;                                                         \
		return r;                                                          \
	}

OP(fadd_d, "fadd d0, d1, d2")
OP(fsub_d, "fsub d0, d1, d2")
OP(fmul_d, "fmul d0, d1, d2")
OP(fdiv_d, "fdiv d0, d1, d2")
OP(fnmul_d, "fnmul d0, d1, d2")
OP(fmax_d, "fmax d0, d1, d2")
OP(fmin_d, "fmin d0, d1, d2")
OP(fmaxnm_d, "fmaxnm d0, d1, d2")
OP(fminnm_d, "fminnm d0, d1, d2")
OP(fabd_d, "fabd d0, d1, d2")
OP(fmadd_d, "fmadd d0, d1, d2, d3")
OP(fmsub_d, "fmsub d0, d1, d2, d3")
OP(fnmadd_d, "fnmadd d0, d1, d2, d3")
OP(fnmsub_d, "fnmsub d0, d1, d2, d3")
OP(fsqrt_d, "fsqrt d0, d1")
OP(fabs_d, "fabs d0, d1")
OP(fneg_d, "fneg d0, d1")
OP(frintn_d, "frintn d0, d1")
OP(frintp_d, "frintp d0, d1")
OP(frintm_d, "frintm d0, d1")
OP(frintz_d, "frintz d0, d1")
OP(frinta_d, "frinta d0, d1")
OP(frintx_d, "frintx d0, d1")
OP(frinti_d, "frinti d0, d1")
OP(fcvtzs_xd, "fcvtzs x9, d1\n\tfmov d0, x9")
OP(fcvtzu_xd, "fcvtzu x9, d1\n\tfmov d0, x9")
OP(fcvtzs_wd, "fcvtzs w9, d1\n\tfmov d0, x9")
OP(fcvtns_xd, "fcvtns x9, d1\n\tfmov d0, x9")
OP(fcvtas_wd, "fcvtas w9, d1\n\tfmov d0, x9")
OP(fcvtms_xd, "fcvtms x9, d1\n\tfmov d0, x9")
OP(fcvtpu_wd, "fcvtpu w9, d1\n\tfmov d0, x9")
OP(fcvtzs_fixed, "fcvtzs x9, d1, #8\n\tfmov d0, x9")
OP(scvtf_dx, "fmov x9, d1\n\tscvtf d0, x9")
OP(ucvtf_dx, "fmov x9, d1\n\tucvtf d0, x9")
OP(scvtf_sw, "fmov x9, d1\n\tscvtf s0, w9")
OP(ucvtf_fixed, "fmov x9, d1\n\tucvtf d0, x9, #16")
OP(fcvt_sd, "fcvt s0, d1")
OP(fcvt_hd, "fcvt h0, d1")
OP(fcmp_d, "fcmp d1, d2\n\tmrs x9, nzcv\n\tfmov d0, x9")
OP(fcmpe_d, "fcmpe d1, d2\n\tmrs x9, nzcv\n\tfmov d0, x9")
OP(fcmp_zero, "fcmp d1, #0.0\n\tmrs x9, nzcv\n\tfmov d0, x9")
OP(fccmp_d, "fcmp d1, d2\n\tfccmp d2, d1, #3, lt\n\tmrs x9, nzcv\n\tfmov d0, x9")
OP(fcsel_d, "fcmp d1, d2\n\tfcsel d0, d1, d2, gt")
/* Single precision: the low 32 bits of the inputs. */
OP(fadd_s, "fadd s0, s1, s2")
OP(fmul_s, "fmul s0, s1, s2")
OP(fdiv_s, "fdiv s0, s1, s2")
OP(fsqrt_s, "fsqrt s0, s1")
OP(fmadd_s, "fmadd s0, s1, s2, s3")
OP(fmaxnm_s, "fmaxnm s0, s1, s2")
OP(frintx_s, "frintx s0, s1")
OP(fcvt_ds, "fcvt d0, s1")
OP(fcvt_hs, "fcvt h0, s1")
OP(fcvt_sh, "fcvt s0, h1")
OP(fcvtzs_ws, "fcvtzs w9, s1\n\tfmov d0, x9")
OP(fcvtzu_xs, "fcvtzu x9, s1\n\tfmov d0, x9")
OP(fcmpe_s, "fcmpe s1, s2\n\tmrs x9, nzcv\n\tfmov d0, x9")

typedef uint64_t (*opfn)(uint64_t, uint64_t, uint64_t, uint64_t *);
static const struct {
	const char *name;
	opfn fn;
	int single;
} ops[] = {
#define D(n) { #n, n, 0 }
#define S(n) { #n, n, 1 }
	D(fadd_d), D(fsub_d), D(fmul_d), D(fdiv_d), D(fnmul_d), D(fmax_d), D(fmin_d),
	D(fmaxnm_d), D(fminnm_d), D(fabd_d), D(fmadd_d), D(fmsub_d), D(fnmadd_d),
	D(fnmsub_d), D(fsqrt_d), D(fabs_d), D(fneg_d), D(frintn_d), D(frintp_d),
	D(frintm_d), D(frintz_d), D(frinta_d), D(frintx_d), D(frinti_d), D(fcvtzs_xd),
	D(fcvtzu_xd), D(fcvtzs_wd), D(fcvtns_xd), D(fcvtas_wd), D(fcvtms_xd),
	D(fcvtpu_wd), D(fcvtzs_fixed), D(scvtf_dx), D(ucvtf_dx), D(scvtf_sw),
	D(ucvtf_fixed), D(fcvt_sd), D(fcvt_hd), D(fcmp_d), D(fcmpe_d), D(fcmp_zero),
	D(fccmp_d), D(fcsel_d),
	S(fadd_s), S(fmul_s), S(fdiv_s), S(fsqrt_s), S(fmadd_s), S(fmaxnm_s),
	S(frintx_s), S(fcvt_ds), S(fcvt_hs), S(fcvt_sh), S(fcvtzs_ws), S(fcvtzu_xs),
	S(fcmpe_s),
};

static void set_fpcr(uint64_t v)
{
	__asm__ volatile("msr fpcr, %0\n\tisb" : : "r"(v));
}

static void one(const char *what, opfn fn, uint64_t fpcr, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t f;
	set_fpcr(fpcr);
	uint64_t r = fn(a, b, c, &f);
	set_fpcr(0);
	printf("%s: 0x%016lx fpsr 0x%08lx\n", what, r, f);
}

int main(void)
{
	puts("fp: start\n");
	for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
		for (unsigned c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
			h = 0x811c9dc5u;
			set_fpcr(cfg[c].fpcr);
			for (unsigned i = 0; i < NV; i++)
				for (unsigned j = 0; j < NV; j++) {
					uint64_t a = ops[o].single ? sv[i] : dv[i];
					uint64_t b = ops[o].single ? sv[j] : dv[j];
					uint64_t f, r = ops[o].fn(a, b, a, &f);
					mix(r);
					mix(f);
				}
			set_fpcr(0);
			printf("%s %s: 0x%08x\n", ops[o].name, cfg[c].name, h);
		}
	}

	one("1/3 rn", fdiv_d, 0, dv[0], 0x4008000000000000ull, 0);
	one("1/3 rp", fdiv_d, 1ul << 22, dv[0], 0x4008000000000000ull, 0);
	one("1/3 rm", fdiv_d, 2ul << 22, dv[0], 0x4008000000000000ull, 0);
	one("1/3 rz", fdiv_d, 3ul << 22, dv[0], 0x4008000000000000ull, 0);
	one("0/0", fdiv_d, 0, 0, 0, 0);
	one("1/0", fdiv_d, 0, dv[0], 0, 0);
	one("max*2", fmul_d, 0, dv[6], 0x4000000000000000ull, 0);
	one("max*2 rz", fmul_d, 3ul << 22, dv[6], 0x4000000000000000ull, 0);
	one("minnorm/3", fdiv_d, 0, dv[3], 0x4008000000000000ull, 0);
	one("minnorm/3 fz", fdiv_d, 1ul << 24, dv[3], 0x4008000000000000ull, 0);
	one("denorm+0 fz", fadd_d, 1ul << 24, dv[5], 0, 0);
	one("snan+1", fadd_d, 0, dv[10], dv[0], 0);
	one("1+qnan", fadd_d, 0, dv[0], dv[9], 0);
	one("qnan+snan", fadd_d, 0, dv[9], dv[10], 0);
	one("qnan+1 dn", fadd_d, 1ul << 25, dv[9], dv[0], 0);
	one("fmadd fused", fmadd_d, 0, 0x3ff0000000000001ull, 0x3ff0000000000001ull,
	    0xbff0000000000002ull);
	one("fcvtzs 2^63", fcvtzs_xd, 0, dv[12], 0, 0);
	one("fcvtzs/32 -2^31-1", fcvtzs_wd, 0, dv[13], 0, 0);
	one("fcvtzu -2.5", fcvtzu_xd, 0, dv[2], 0, 0);
	one("fcmp qnan", fcmp_d, 0, dv[9], dv[0], 0);
	one("fcmpe qnan", fcmpe_d, 0, dv[9], dv[0], 0);
	one("fcmp -0,0", fcmp_d, 0, dv[8], 0, 0);
	one("frinta 2.5", frinta_d, 0, 0x4004000000000000ull, 0, 0);
	one("frintn 2.5", frintn_d, 0, 0x4004000000000000ull, 0, 0);
	one("frintx 2.5 rp", frintx_d, 1ul << 22, 0x4004000000000000ull, 0, 0);
	one("fcvt_hd 65520", fcvt_hd, 0, 0x40effe0000000000ull, 0, 0);
	one("fcvt_hd 65520 ahp", fcvt_hd, 1ul << 26, 0x40effe0000000000ull, 0, 0);
	one("fmin -0,0", fmin_d, 0, dv[8], 0, 0);
	one("fmaxnm qnan,1", fmaxnm_d, 0, dv[9], dv[0], 0);
	one("fsqrt -1", fsqrt_d, 0, 0xbff0000000000000ull, 0, 0);
	uint64_t fpcr;
	set_fpcr(0xffffffff);
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	set_fpcr(0);
	printf("fpcr writable bits: 0x%08lx\n", fpcr);
	puts("fp: done\n");
	return 0;
}
