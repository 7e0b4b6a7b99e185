/* String instructions: rep movs{b,w,l,q} forward and backward (DF=1),
 * overlapping copies, rep stos, lods, repe/repne cmps with the mismatch
 * position, repne/repe scas (strlen), with counts 0, 1, more, and across a
 * page boundary. Each case prints the final rcx, rsi and rdi (as offsets
 * from the buffer), rax, the arithmetic flags and DF, and a checksum of the
 * buffer. Also builds as a Linux program (-DHOST): expected/strings.out is
 * what the host CPU prints. */
#ifdef HOST
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#else
#include "rt.h"
#endif

#define DF 0x400ull
#define ARITH 0x8d5ull

/* Two pages; the boundary is at offset 4096. */
static uint8_t area[8192] __attribute__((aligned(4096)));

struct st {
	uint64_t rcx, rsi, rdi, rax, fin, f;
};

#define SOP(name, insn) \
static void name(struct st *s) \
{ \
	uint64_t f; \
	__asm__ volatile("push %[fin]\n\tpopfq\n\t" insn "\n\tpushfq\n\tpop %[f]\n\tcld" \
			 : "+c"(s->rcx), "+S"(s->rsi), "+D"(s->rdi), "+a"(s->rax), \
			   [f] "=&r"(f) \
			 : [fin] "r"(s->fin) : "memory", "cc"); \
	s->f = f; \
}

SOP(movsb1, "movsb")
SOP(rep_movsb, "rep movsb")
SOP(rep_movsw, "rep movsw")
SOP(rep_movsl, "rep movsl")
SOP(rep_movsq, "rep movsq")
SOP(rep_stosb, "rep stosb")
SOP(rep_stosw, "rep stosw")
SOP(rep_stosl, "rep stosl")
SOP(rep_stosq, "rep stosq")
SOP(lodsb1, "lodsb")
SOP(lodsw1, "lodsw")
SOP(lodsl1, "lodsl")
SOP(lodsq1, "lodsq")
SOP(rep_lodsb, "rep lodsb")
SOP(repe_cmpsb, "repe cmpsb")
SOP(repne_cmpsb, "repne cmpsb")
SOP(repe_cmpsw, "repe cmpsw")
SOP(repe_cmpsl, "repe cmpsl")
SOP(repe_cmpsq, "repe cmpsq")
SOP(repne_scasb, "repne scasb")
SOP(repe_scasb, "repe scasb")
SOP(repne_scasq, "repne scasq")

static void fill(void)
{
	uint64_t *w = (uint64_t *)area, x = 0x9e3779b97f4a7c15ull;
	unsigned i;

	for (i = 0; i < sizeof(area) / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
}

static uint32_t sum(void)
{
	const uint64_t *w = (const uint64_t *)area;
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned i;

	for (i = 0; i < sizeof(area) / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Runs one case on a freshly filled buffer; prep (if any) adjusts it. */
static void run(const char *name, void (*op)(struct st *), uint64_t count,
		long src, long dst, int df, void (*prep)(void))
{
	struct st s;
	uintptr_t base = (uintptr_t)area;

	fill();
	if (prep)
		prep();
	s.rcx = count;
	s.rsi = base + src;
	s.rdi = base + dst;
	s.rax = 0x1122334455667788ull;
	s.fin = 0x2 | (df ? DF : 0);
	op(&s);
	printf("%-12s n=%lu: rcx 0x%lx rsi +%ld rdi +%ld rax 0x%lx f %03lx sum %08x\n",
	       name, (unsigned long)count, (unsigned long)s.rcx,
	       (long)(s.rsi - base), (long)(s.rdi - base), (unsigned long)s.rax,
	       (unsigned long)(s.f & (ARITH | DF)), sum());
}

/* cmps: the two ranges (at 100 and 4090) agree on their first 10 bytes. */
static void prep_cmp(void)
{
	memcpy(area + 4090, area + 100, 10);
}
static void prep_cmp_all(void)
{
	memcpy(area + 4090, area + 100, 64);
}
/* scas: 23 'x' then a NUL at 4080 (crosses into the next page? no: the
 * string at 4080 runs to 4103, across the boundary). */
static void prep_str(void)
{
	memset(area + 4080, 'x', 23);
	area[4080 + 23] = 0;
}

int main(void)
{
	static const struct {
		const char *name;
		void (*op)(struct st *);
		int size;
	} movs[] = {
		{ "rep movsb", rep_movsb, 1 }, { "rep movsw", rep_movsw, 2 },
		{ "rep movsl", rep_movsl, 4 }, { "rep movsq", rep_movsq, 8 },
	}, stos[] = {
		{ "rep stosb", rep_stosb, 1 }, { "rep stosw", rep_stosw, 2 },
		{ "rep stosl", rep_stosl, 4 }, { "rep stosq", rep_stosq, 8 },
	}, lods[] = {
		{ "lodsb", lodsb1, 1 }, { "lodsw", lodsw1, 2 },
		{ "lodsl", lodsl1, 4 }, { "lodsq", lodsq1, 8 },
	};
	unsigned i;

	for (i = 0; i < 4; i++) {
		long z = movs[i].size, n = 37;
		run(movs[i].name, movs[i].op, 0, 100, 300, 0, 0);
		run(movs[i].name, movs[i].op, 1, 100, 300, 0, 0);
		run(movs[i].name, movs[i].op, n, 100, 300, 0, 0);
		/* backward: rsi/rdi start at the last element */
		run(movs[i].name, movs[i].op, n, 100 + (n - 1) * z, 300 + (n - 1) * z, 1, 0);
		run(movs[i].name, movs[i].op, 0, 100, 300, 1, 0);
		/* across the page boundary, source and destination */
		run(movs[i].name, movs[i].op, 40, 4096 - 13, 200, 0, 0);
		run(movs[i].name, movs[i].op, 40, 200, 4096 - 7, 0, 0);
		run(movs[i].name, movs[i].op, 40, 4096 + 3, 4096 - 5 + 39 * z, 1, 0);
		/* overlapping, by one byte and by three, both directions */
		run(movs[i].name, movs[i].op, 20, 500, 501, 0, 0);
		run(movs[i].name, movs[i].op, 20, 501, 500, 0, 0);
		run(movs[i].name, movs[i].op, 20, 500 + 19 * z, 503 + 19 * z, 1, 0);
		run(movs[i].name, movs[i].op, 20, 503 + 19 * z, 500 + 19 * z, 1, 0);
	}
	run("movsb", movsb1, 5, 100, 300, 0, 0);
	run("movsb", movsb1, 5, 100, 300, 1, 0);

	for (i = 0; i < 4; i++) {
		long z = stos[i].size;
		run(stos[i].name, stos[i].op, 0, 0, 300, 0, 0);
		run(stos[i].name, stos[i].op, 1, 0, 300, 0, 0);
		run(stos[i].name, stos[i].op, 37, 0, 300, 0, 0);
		run(stos[i].name, stos[i].op, 37, 0, 300 + 36 * z, 1, 0);
		run(stos[i].name, stos[i].op, 40, 0, 4096 - 11, 0, 0);
		run(stos[i].name, stos[i].op, 40, 0, 4096 + 9, 1, 0);
	}

	for (i = 0; i < 4; i++) {
		run(lods[i].name, lods[i].op, 3, 4094, 0, 0, 0);
		run(lods[i].name, lods[i].op, 3, 4094, 0, 1, 0);
	}
	run("rep lodsb", rep_lodsb, 0, 100, 0, 0, 0);
	run("rep lodsb", rep_lodsb, 5, 100, 0, 0, 0);
	run("rep lodsb", rep_lodsb, 5, 4098, 0, 1, 0);

	run("repe cmpsb", repe_cmpsb, 0, 100, 4090, 0, prep_cmp);
	run("repe cmpsb", repe_cmpsb, 1, 100, 4090, 0, prep_cmp);
	run("repe cmpsb", repe_cmpsb, 64, 100, 4090, 0, prep_cmp);
	run("repe cmpsb", repe_cmpsb, 64, 100, 4090, 0, prep_cmp_all);
	run("repe cmpsb", repe_cmpsb, 64, 163, 4153, 1, prep_cmp);
	run("repne cmpsb", repne_cmpsb, 64, 100, 4090, 0, prep_cmp);
	run("repne cmpsb", repne_cmpsb, 64, 120, 4110, 0, prep_cmp);
	run("repe cmpsw", repe_cmpsw, 32, 100, 4090, 0, prep_cmp);
	run("repe cmpsl", repe_cmpsl, 16, 100, 4090, 0, prep_cmp);
	run("repe cmpsq", repe_cmpsq, 8, 100, 4090, 0, prep_cmp);
	run("repe cmpsq", repe_cmpsq, 8, 100, 4090, 0, prep_cmp_all);

	/* strlen: repne scasb for al = 0 from rcx = -1 */
	{
		struct st s;
		uintptr_t base = (uintptr_t)area;

		fill();
		prep_str();
		s.rcx = ~0ull;
		s.rsi = 0;
		s.rdi = base + 4080;
		s.rax = 0;
		s.fin = 0x2;
		repne_scasb(&s);
		printf("strlen %lu: rcx 0x%lx rdi +%ld f %03lx\n",
		       (unsigned long)(~s.rcx - 1), (unsigned long)s.rcx,
		       (long)(s.rdi - base), (unsigned long)(s.f & (ARITH | DF)));
	}
	run("repne scasb", repne_scasb, 0, 0, 4080, 0, prep_str);
	run("repne scasb", repne_scasb, 10, 0, 4080, 0, prep_str);
	/* al = 0x88: the prepared bytes are not 0x88 */
	run("repe scasb", repe_scasb, 64, 0, 4080, 0, prep_str);
	run("repne scasq", repne_scasq, 64, 0, 64, 0, 0);
	return 0;
}
