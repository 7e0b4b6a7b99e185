/* SSE/SSE2 arithmetic under each MXCSR rounding mode, with FTZ and DAZ off
 * and on: scalar and packed float and double add/sub/mul/div/sqrt/min/max,
 * conversions (between float and double, to and from integers, truncating
 * and rounding), compares (cmpss/cmpsd predicates, [u]comis[sd] RFLAGS).
 * Inputs sit at the edges: ties, overflow, underflow to denormals, denormal
 * inputs, signed zeros, infinities, QNaN and SNaN, invalid operations,
 * integer overflow. For each case the result bits and the MXCSR exception
 * flags (IE DE ZE OE UE PE) count, all exceptions masked. Then one
 * divide by zero with ZE unmasked: #XM (vector 19) at the divss, which the
 * handler skips; the destination keeps its value.
 *
 * The guest runs this in ring 3 (rt/user.c): nested KVM on the reference
 * host cannot emulate SSE instructions in ring 0, ring 3 runs natively.
 *
 * One line per operation: an FNV-1a hash of the results and flags under
 * the 8 configurations; `verbose=1` (host build: `-v`) prints every case too. Also
 * builds as a Linux program (-DHOST): expected/sse.out is what the host CPU
 * prints (QEMU's TCG never sets MXCSR.DE, among others). */
#ifdef HOST
#define _GNU_SOURCE                     /* REG_RIP, REG_TRAPNO */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <ucontext.h>
#else
#include "rt.h"
#include "trap.h"
#include "user.h"
#endif

typedef void (*sse_fn)(const void *a, const void *b, void *out);
void sse_ldmxcsr(const uint32_t *);
void sse_stmxcsr(uint32_t *);
void sse_xm_divss(const void *a, const void *b, void *out);
extern const char sse_xm_fault[], sse_xm_resume[];

#define OPS(X) \
	X(addss, 4) X(subss, 4) X(mulss, 4) X(divss, 4) X(sqrtss, 4) \
	X(minss, 4) X(maxss, 4) X(cvtss2sd, 4) X(cmpltss, 4) X(cmpunordss, 4) \
	X(addps, 4) X(mulps, 4) X(divps, 4) X(sqrtps, 4) X(cvtps2dq, 4) \
	X(cvttps2dq, 4) X(cvtdq2ps, 4) X(cvtps2pd, 4) X(cvtss2si, 4) \
	X(cvttss2si, 4) X(cvtsi2ss, 0) X(ucomiss, 4) X(comiss, 4) \
	X(addsd, 8) X(subsd, 8) X(mulsd, 8) X(divsd, 8) X(sqrtsd, 8) \
	X(minsd, 8) X(maxsd, 8) X(cvtsd2ss, 8) X(cmplesd, 8) X(addpd, 8) \
	X(mulpd, 8) X(divpd, 8) X(sqrtpd, 8) X(cvtpd2ps, 8) X(cvtpd2dq, 8) \
	X(cvtsd2si, 8) X(cvttsd2si, 8) X(cvtsi2sd, 0) X(ucomisd, 8) X(comisd, 8)

#define DECL(name, size) void sse_##name(const void *, const void *, void *);
OPS(DECL)
#define ENTRY(name, size) { #name, sse_##name, size },
static const struct {
	const char *name;
	sse_fn fn;
	int size;               /* element size of the inputs; 0: integer b */
} ops[] = { OPS(ENTRY) };
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* (a, b) pairs of floats, as bits. */
static const uint32_t fpairs[][2] = {
	{ 0x3f800000, 0x40400000 },     /* 1, 3: inexact quotient */
	{ 0x3f800000, 0x33800000 },     /* 1 + 2^-24: a tie */
	{ 0x3f800001, 0x33800000 },     /* (1 + ulp) + 2^-24: the other tie */
	{ 0x7f7fffff, 0x40000000 },     /* FLT_MAX, 2: overflow */
	{ 0x00800000, 0x3e99999a },     /* FLT_MIN, 0.3: tiny, inexact */
	{ 0x00000001, 0x3f800000 },     /* smallest denormal, 1 */
	{ 0x807fffff, 0x00400000 },     /* denormals, both */
	{ 0x80000000, 0x00000000 },     /* -0, +0 */
	{ 0x7f800000, 0xff800000 },     /* +inf, -inf */
	{ 0x7fc00001, 0x3f800000 },     /* QNaN, 1 */
	{ 0x3f800000, 0x7f800001 },     /* 1, SNaN */
	{ 0xffc00002, 0x7fa00003 },     /* -QNaN, SNaN: which one wins */
	{ 0xbf800000, 0xbf800000 },     /* -1, -1: sqrt invalid */
	{ 0x40200000, 0xc0200000 },     /* 2.5, -2.5: integer rounding */
	{ 0x5f000000, 0xdf000001 },     /* 2^63, -(2^63 + ulp): int64 edges */
	{ 0x4f000000, 0xcf000000 },     /* 2^31, -2^31: int32 edges */
};
/* (a, b) pairs of doubles. */
static const uint64_t dpairs[][2] = {
	{ 0x3ff0000000000000ull, 0x4008000000000000ull },  /* 1, 3 */
	{ 0x3ff0000000000000ull, 0x3ca0000000000000ull },  /* 1 + 2^-53 */
	{ 0x3ff0000000000001ull, 0x3ca0000000000000ull },
	{ 0x7fefffffffffffffull, 0x4000000000000000ull },  /* DBL_MAX, 2 */
	{ 0x0010000000000000ull, 0x3fd3333333333333ull },  /* DBL_MIN, 0.3 */
	{ 0x0000000000000001ull, 0x3ff0000000000000ull },
	{ 0x800fffffffffffffull, 0x0008000000000000ull },
	{ 0x8000000000000000ull, 0x0000000000000000ull },
	{ 0x7ff0000000000000ull, 0xfff0000000000000ull },
	{ 0x7ff8000000000001ull, 0x3ff0000000000000ull },
	{ 0x3ff0000000000000ull, 0x7ff0000000000001ull },
	{ 0xfff8000000000002ull, 0x7ff4000000000003ull },
	{ 0xbff0000000000000ull, 0xbff0000000000000ull },
	{ 0x4004000000000000ull, 0xc004000000000000ull },  /* 2.5, -2.5 */
	{ 0x43e0000000000000ull, 0xc3e0000000000001ull },  /* 2^63, beyond -2^63 */
	{ 0x36a0000000000000ull, 0x3810000000000000ull },  /* -> float: tiny */
};
/* int64 sources for cvtsi2ss/sd: 2^53 + 1 and 2^24 + 1 round, and others */
static const uint64_t ints[] = {
	0, 1, (uint64_t)-1, 0x20000000000001ull, 0x1000001, 0x7fffffffffffffffull,
	0x8000000000000000ull, 0xfffffffffeffffffull, 0x123456789abcdefull,
	0x1000003, 0x20000000000003ull, (uint64_t)-3, 3, 5, 0x7fffff7f, 0xffffff7f,
};
#define NPAIRS 16

static int verbose;
static uint32_t hash;

static void mix(uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++) {
		hash ^= (uint8_t)(v >> (8 * i));
		hash *= 0x01000193u;
	}
}

struct vec {
	uint64_t q[2];
} __attribute__((aligned(16)));

/* Vector k: lane i holds pair (k + i) % NPAIRS, so lane 0 is pair k and the
 * packed forms see every pair. */
static void inputs(int size, unsigned k, struct vec *a, struct vec *b)
{
	unsigned i;

	if (size == 4) {
		uint32_t *pa = (uint32_t *)a->q, *pb = (uint32_t *)b->q;
		for (i = 0; i < 4; i++) {
			pa[i] = fpairs[(k + i) % NPAIRS][0];
			pb[i] = fpairs[(k + i) % NPAIRS][1];
		}
	} else if (size == 8) {
		for (i = 0; i < 2; i++) {
			a->q[i] = dpairs[(k + i) % NPAIRS][0];
			b->q[i] = dpairs[(k + i) % NPAIRS][1];
		}
	} else {
		/* integer source: a is a float/double vector to merge into */
		a->q[0] = dpairs[k][0];
		a->q[1] = dpairs[(k + 1) % NPAIRS][0];
		b->q[0] = ints[k];
		b->q[1] = 0;
	}
}

static const char *const rc_names[4] = { "nearest", "down", "up", "zero" };

static void run_all(void)
{
	unsigned rc, fz, o, k;

	for (o = 0; o < NOPS; o++) {
		hash = 0x811c9dc5u;
		for (fz = 0; fz < 2; fz++) {
			for (rc = 0; rc < 4; rc++) {
				uint32_t base = 0x1f80 | rc << 13 | (fz ? 0x8040 : 0);

				for (k = 0; k < NPAIRS; k++) {
					struct vec a, b, r;
					uint32_t m = base, after;

					inputs(ops[o].size, k, &a, &b);
					sse_ldmxcsr(&m);
					ops[o].fn(&a, &b, &r);
					sse_stmxcsr(&after);
					mix(r.q[0]);
					mix(r.q[1]);
					mix(after);
					if (verbose)
						printf("  %s %s %08x: a %016lx%016lx b %016lx%016lx -> %016lx%016lx mxcsr %04x\n",
						       ops[o].name, rc_names[rc], base,
						       (unsigned long)a.q[1], (unsigned long)a.q[0],
						       (unsigned long)b.q[1], (unsigned long)b.q[0],
						       (unsigned long)r.q[1], (unsigned long)r.q[0], after);
				}
			}
		}
		printf("%s: 0x%08x\n", ops[o].name, hash);
	}
}

/* The trap as the handler sees it: the same line from the guest's IDT
 * handler and from the host's SIGFPE handler. */
static void xm_report(uint64_t vector, uint64_t rip)
{
	printf("xm: vector %lu rip %s\n", (unsigned long)vector,
	       rip == (uintptr_t)sse_xm_fault ? "ok" : "WRONG");
}

static void xm_test(void)
{
	struct vec a = { { 0x3f800000, 0 } }, b = { { 0, 0 } }, r = { { 0, 0 } };
	uint32_t m = 0x1f80 & ~0x200u, after;   /* ZM clear: #XM on divide by 0 */

	sse_ldmxcsr(&m);
	sse_xm_divss(&a, &b, &r);
	sse_stmxcsr(&after);
	m = 0x1f80;
	sse_ldmxcsr(&m);
	printf("xm: resumed, xmm0 %016lx mxcsr %04x\n", (unsigned long)r.q[0], after);
}

#ifdef HOST
static void on_sigfpe(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	(void)sig;
	(void)si;
	xm_report(uc->uc_mcontext.gregs[REG_TRAPNO], uc->uc_mcontext.gregs[REG_RIP]);
	uc->uc_mcontext.gregs[REG_RIP] = (uintptr_t)sse_xm_resume;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	verbose = argc > 1 && !strcmp(argv[1], "-v");
	puts("sse: ring 3");
	run_all();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigfpe;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGFPE, &sa, NULL);
	fflush(stdout);
	xm_test();
	puts("sse: done");
	return 0;
}
#else
static void on_xm(struct trap_frame *f)
{
	xm_report(f->vector, f->rip);
	f->rip = (uintptr_t)sse_xm_resume;
}

static void user_main(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	printf("sse: ring %u\n", cs & 3);
	run_all();
	xm_test();
	puts("sse: done\n");
	exit(0);
}

int main(void)
{
	const char *v = cmdline_get("verbose");

	verbose = v && *v == '1';
	trap_init();
	trap_set(19, on_xm);
	/* CR0.EM = 0, CR0.MP = 1; CR4.OSFXSR | CR4.OSXMMEXCPT */
	write_cr0((read_cr0() & ~4ull) | 2);
	write_cr4(read_cr4() | 0x600);
	user_enter(user_main);
}
#endif
