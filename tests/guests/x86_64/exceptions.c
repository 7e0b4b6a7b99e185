/* Exceptions that a handler resumes from: #DE (div by zero, idiv overflow),
 * #UD, #GP (non-canonical address, bad selector), #SS (non-canonical address
 * through rsp), #NM (fwait with CR0.TS), #DB (single step with TF), #PF (the
 * handler maps the page and the instruction is retried: a load, a store, an
 * instruction fetch that straddles into an unmapped page, a rep movsb that
 * runs into one half-way, a load after register writes and a cmp, whose
 * state must be there at the fault) and a software interrupt to a custom vector.
 * Every handler checks that the saved rip is the faulting instruction (or
 * the next one, for `int`), then resumes. Each line starts with its case.
 * No int3: nested KVM on the reference host cannot emulate it, nor `int n`
 * or `fwait`: `skip=softint,nm-fwait` on the command line skips those cases
 * (one line each says so), for running under that KVM. */
#include "rt.h"
#include "trap.h"

/* Whether `name` is in the comma-separated list of skip= on the command
 * line; if so, says so. */
static int skipped(const char *name)
{
	const char *s = cmdline_get("skip");
	size_t n = strlen(name);

	while (s && *s && *s != ' ') {
		if (!strncmp(s, name, n) && (s[n] == ',' || s[n] == ' ' || !s[n])) {
			printf("%s: skipped\n", name);
			return 1;
		}
		while (*s && *s != ' ' && *s != ',')
			s++;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* Set by each test right before the instruction that traps. */
static volatile uint64_t fault_rip, resume_rip;
static unsigned events;
static const char *tag = "?";   /* the case running: starts each line */

#define ARM(fault, resume) \
	"lea " fault "(%%rip), %%r11\n\t" \
	"mov %%r11, fault_rip(%%rip)\n\t" \
	"lea " resume "(%%rip), %%r11\n\t" \
	"mov %%r11, resume_rip(%%rip)\n\t"

static const char *rip_check(const struct trap_frame *f)
{
	return f->rip == fault_rip ? "ok" : "WRONG";
}

/* #DE, #UD, #GP: report and skip the instruction. */
static void on_skip(struct trap_frame *f)
{
	events++;
	printf("%s: vector %lu", tag, f->vector);
	if (f->vector == 13 || f->vector == 12)
		printf(" error 0x%lx", f->error);
	printf(" rip %s cs 0x%lx", rip_check(f), f->cs);
	printf(" if %lu\n", (f->rflags >> 9) & 1);
	f->rip = resume_rip;
}

/* Software interrupt: rip already points after `int`; return rdi + 1 in rax. */
static void on_soft(struct trap_frame *f)
{
	events++;
	printf("%s: vector 0x%lx rip %s rdi 0x%lx\n", tag, f->vector,
	       f->rip == resume_rip ? "ok" : "WRONG", f->rdi);
	f->rax = f->rdi + 1;
}

/* #NM: clear CR0.TS and retry (lazy FPU switching). */
static void on_nm(struct trap_frame *f)
{
	events++;
	printf("%s: vector 7 rip %s ts %lu\n", tag, rip_check(f),
	       (read_cr0() >> 3) & 1);
	__asm__ volatile("clts");
}

/* #DB: single step; clear TF and go on. */
static void on_db(struct trap_frame *f)
{
	uint64_t dr6;

	__asm__ volatile("mov %%db6, %0" : "=r"(dr6));
	events++;
	printf("%s: vector 1 rip %s dr6.bs %lu\n", tag, rip_check(f), (dr6 >> 14) & 1);
	f->rflags &= ~0x100ull;
}

/* #PF: map the page at cr2 (page i of the region at PF_BASE gets frame i)
 * through tables of our own, then retry. */
#define PF_BASE 0x0000400000000000ull   /* PML4 slot 128, unmapped at boot */
#define PF_PAGES 12
static uint64_t pf_pdpt[512] __attribute__((aligned(4096)));
static uint64_t pf_pd[512] __attribute__((aligned(4096)));
static uint64_t pf_pt[512] __attribute__((aligned(4096)));
static uint8_t pf_frames[PF_PAGES][4096] __attribute__((aligned(4096)));
static int pf_show_regs;

static void on_pf(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & ~0xfffull);
	uint64_t page = (cr2 - PF_BASE) >> 12;

	events++;
	printf("%s: vector 14 error 0x%lx cr2 0x%lx rip %s", tag, f->error, cr2,
	       rip_check(f));
	if (pf_show_regs == 1)
		printf(" rcx %lu rdi +0x%lx", f->rcx, (unsigned long)(f->rdi - PF_BASE));
	if (pf_show_regs == 2)
		printf(" rbx 0x%lx rsi 0x%lx rdx 0x%lx rcx 0x%lx flags 0x%lx",
		       f->rbx, f->rsi, f->rdx, f->rcx, f->rflags & 0x8d5);
	putc('\n');
	if (cr2 < PF_BASE || page >= PF_PAGES) {
		puts("unexpected #PF address\n");
		exit(0x7d);
	}
	pml4[(PF_BASE >> 39) & 511] = (uintptr_t)pf_pdpt | 3;
	pf_pdpt[(PF_BASE >> 30) & 511] = (uintptr_t)pf_pd | 3;
	pf_pd[(PF_BASE >> 21) & 511] = (uintptr_t)pf_pt | 3;
	pf_pt[page] = (uintptr_t)pf_frames[page] | 3;
	/* Leave rip alone: the access is retried and now succeeds. */
}

int main(void)
{
	uint64_t a, d, c;
	unsigned v;

	trap_init();
	for (v = 0; v < 32; v++)
		trap_set(v, on_skip);
	trap_set(1, on_db);
	trap_set(7, on_nm);
	trap_set(14, on_pf);
	trap_set(0x80, on_soft);

	/* #DE: unsigned divide by zero; rax/rdx unchanged. */
	tag = "div0";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x1234, %%eax\n\t"
			 "xor %%edx, %%edx\n\t"
			 "xor %%ecx, %%ecx\n"
			 "1:\tdiv %%ecx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("div0: resumed, eax 0x%lx edx 0x%lx\n", a, d);

	/* #DE: idiv overflow, INT_MIN / -1, 32 and 64 bits. */
	tag = "idiv32";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x80000000, %%eax\n\t"
			 "cltd\n\t"
			 "mov $-1, %%ecx\n"
			 "1:\tidiv %%ecx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("idiv32: INT_MIN/-1 resumed, eax 0x%lx edx 0x%lx\n", a, d);
	tag = "idiv64";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $1, %%eax\n\t"
			 "ror $1, %%rax\n\t"
			 "cqto\n\t"
			 "mov $-1, %%rcx\n"
			 "1:\tidiv %%rcx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("idiv64: INT_MIN/-1 resumed, rax 0x%lx rdx 0x%lx\n", a, d);
	/* #DE: 8-bit quotient overflow, 0x1000 / 2. */
	tag = "div8";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x1000, %%eax\n\t"
			 "mov $2, %%ecx\n"
			 "1:\tdivb %%cl\n"
			 "2:"
			 : "=a"(a), "=c"(c) : : "r11", "memory", "cc");
	printf("div8: overflow resumed, eax 0x%lx\n", a);

	/* #UD: ud2, then a LOCK prefix on an instruction that cannot take it. */
	tag = "ud2";
	__asm__ volatile(ARM("1f", "2f")
			 "1:\tud2\n"
			 "2:"
			 : : : "r11", "memory");
	puts("ud2: resumed\n");
	tag = "lock";
	__asm__ volatile(ARM("1f", "2f")
			 "1:\t.byte 0xf0, 0x01, 0xc0\n" /* lock add %eax, %eax */
			 "2:"
			 : : : "r11", "memory", "rax", "cc");
	puts("lock: lock add reg,reg resumed\n");

	/* #GP(0): non-canonical address. */
	tag = "gp-noncanon";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x7777, %%ebx\n\t"
			 "mov $0x8000000000000000, %%rax\n"
			 "1:\tmov (%%rax), %%rbx\n"
			 "2:"
			 : "=b"(a) : : "rax", "r11", "memory");
	printf("gp-noncanon: resumed, rbx 0x%lx\n", a);
	/* #GP(selector): a data segment selector beyond the GDT limit. */
	tag = "gp-selector";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x18, %%eax\n"
			 "1:\tmov %%eax, %%es\n"
			 "2:"
			 : : : "rax", "r11", "memory");
	puts("gp-selector: resumed\n");
	/* #SS(0), not #GP: the non-canonical address has rsp as its base. */
	tag = "ss-noncanon";
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x8000000000000000, %%rax\n"
			 "1:\tmov (%%rsp,%%rax), %%rbx\n"
			 "2:"
			 : : : "rax", "rbx", "r11", "memory");
	puts("ss-noncanon: resumed\n");

	/* #NM: fwait with CR0.MP and CR0.TS set; retried after clts. */
	if (!skipped("nm-fwait")) {
		tag = "nm-fwait";
		write_cr0(read_cr0() | 0xa);
		__asm__ volatile(ARM("1f", "1f") "1:\tfwait" : : : "r11", "memory");
		printf("nm-fwait: retried, ts %lu\n", (read_cr0() >> 3) & 1);
	}

	/* #DB: TF set by popfq traps after the instruction that follows. */
	tag = "db-step";
	__asm__ volatile(ARM("1f", "1f")
			 "pushfq\n\t"
			 "orq $0x100, (%%rsp)\n\t"
			 "popfq\n\t"
			 "mov $7, %%eax\n"
			 "1:\tnop"
			 : : : "rax", "r11", "memory", "cc");
	puts("db-step: resumed\n");

	/* #PF: read, then write, of pages that are not mapped yet. */
	pf_frames[1][0x123] = 0x5a;
	tag = "pf-read";
	__asm__ volatile(ARM("1f", "1f")
			 "mov %1, %%rax\n"
			 "1:\tmovzbl (%%rax), %%eax\n"
			 : "=&a"(a) : "r"(PF_BASE + 0x1123) : "r11", "memory");
	printf("pf-read: retried, got 0x%lx\n", a);
	tag = "pf-write";
	__asm__ volatile(ARM("1f", "1f")
			 "mov %1, %%rax\n"
			 "1:\tmovl $0xcafe, (%%rax)\n"
			 : "=&a"(a) : "r"(PF_BASE + 0x5ff8) : "r11", "memory");
	printf("pf-write: retried, frame holds 0x%x\n",
	       *(uint32_t *)&pf_frames[5][0xff8]);

	/* #PF on an instruction fetch: `mov $0x12345678, %eax; ret` at
	 * PF_BASE + 0x7ffd, its immediate split over pages 7 and 8, neither
	 * mapped. The second fault has cr2 on page 8 and rip at the start of
	 * the instruction, on page 7. */
	{
		static const uint8_t code[6] = { 0xb8, 0x78, 0x56, 0x34, 0x12, 0xc3 };
		for (v = 0; v < 6; v++)
			pf_frames[7 + (0xffd + v) / 4096][(0xffd + v) % 4096] = code[v];
	}
	tag = "pf-fetch";
	fault_rip = PF_BASE + 0x7ffd;
	__asm__ volatile("call *%1" : "=a"(a) : "r"(PF_BASE + 0x7ffd)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
			 "memory", "cc");
	printf("pf-fetch: across a page boundary retried, eax 0x%lx\n", a);

	/* #PF half-way through rep movsb: rcx/rdi show the progress. */
	{
		static const char msg[16] = "0123456789abcdef";
		uint64_t n = 16, dst = PF_BASE + 0xa000 - 5;
		const void *src = msg;

		pf_show_regs = 1;
		tag = "pf-rep";
		__asm__ volatile(ARM("1f", "1f")
				 "1:\trep movsb"
				 : "+c"(n), "+S"(src), "+D"(dst) : : "r11", "memory");
		pf_show_regs = 0;
		printf("pf-rep: retried, rcx %lu rdi +0x%lx copied %s\n",
		       n, (unsigned long)(dst - PF_BASE),
		       memcmp(pf_frames[9] + 4096 - 5, msg, 5) ||
		       memcmp(pf_frames[10], msg + 5, 11) ? "WRONG" : "ok");
	}

	/* The state at a #PF in the middle of straight-line code: what the
	 * instructions before it wrote (registers, flags from a cmp), nothing
	 * of what comes after. */
	tag = "pf-state";
	pf_show_regs = 2;
	__asm__ volatile(ARM("1f", "1f")
			 "mov $0x11, %%ebx\n\t"
			 "mov $0x22, %%esi\n\t"
			 "lea (%%rbx,%%rsi), %%edx\n\t"
			 "mov $5, %%ecx\n\t"
			 "cmp $7, %%ecx\n"
			 "1:\tmov (%%rdi), %%rax\n\t"
			 "mov $0x99, %%ebx\n\t"
			 "setc %%cl"
			 : "=a"(a), "=b"(d), "=c"(c)
			 : "D"(PF_BASE + 0xb008)
			 : "rsi", "rdx", "r11", "memory", "cc");
	pf_show_regs = 0;
	printf("pf-state: retried, rbx 0x%lx cl %lu\n", d, c & 0xff);

	/* Software interrupt to a custom vector. */
	if (skipped("softint"))
		goto done;
	tag = "softint";
	__asm__ volatile(ARM("1f", "1f")
			 "mov $0x41, %%edi\n\t"
			 "int $0x80\n"
			 "1:"
			 : "=a"(a) : : "rdi", "r11", "memory");
	printf("softint: returned rax 0x%lx\n", a);
done:

	printf("exceptions: %u events\n", events);
	return 0;
}
