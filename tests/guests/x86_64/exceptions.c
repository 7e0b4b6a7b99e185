/* Exceptions that a handler resumes from: #DE (div by zero, idiv overflow),
 * #UD, #GP (non-canonical address, bad selector), #PF (handler maps the
 * page and the instruction is retried) and a software interrupt to a custom
 * vector. Every handler checks that the saved rip is the faulting
 * instruction (or the next one, for `int`), then resumes. One line per event.
 * No int3: nested KVM on the reference host cannot emulate it, nor `int n`:
 * with `softint=no` on the command line the software interrupt is skipped
 * (one line says so), for running under that KVM. */
#include "rt.h"
#include "trap.h"

/* Set by each test right before the instruction that traps. */
static volatile uint64_t fault_rip, resume_rip;
static unsigned events;

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
	printf("vector %lu", f->vector);
	if (f->vector == 13)
		printf(" error 0x%lx", f->error);
	printf(" rip %s cs 0x%lx", rip_check(f), f->cs);
	printf(" if %lu\n", (f->rflags >> 9) & 1);
	f->rip = resume_rip;
}

/* Software interrupt: rip already points after `int`; return rdi + 1 in rax. */
static void on_soft(struct trap_frame *f)
{
	events++;
	printf("vector 0x%lx rip %s rdi 0x%lx\n", f->vector,
	       f->rip == resume_rip ? "ok" : "WRONG", f->rdi);
	f->rax = f->rdi + 1;
}

/* #PF: map the page at cr2 through tables of our own, then retry. */
#define PF_BASE 0x0000400000000000ull   /* PML4 slot 128, unmapped at boot */
static uint64_t pf_pdpt[512] __attribute__((aligned(4096)));
static uint64_t pf_pd[512] __attribute__((aligned(4096)));
static uint64_t pf_pt[512] __attribute__((aligned(4096)));
static uint8_t pf_frames[2][4096] __attribute__((aligned(4096)));
static unsigned pf_next;

static void on_pf(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & ~0xfffull);

	events++;
	printf("vector 14 error 0x%lx cr2 0x%lx rip %s\n", f->error, cr2,
	       rip_check(f));
	if (cr2 - PF_BASE >= (2ull << 20) || pf_next >= 2) {
		puts("unexpected #PF address\n");
		exit(0x7d);
	}
	pml4[(PF_BASE >> 39) & 511] = (uintptr_t)pf_pdpt | 3;
	pf_pdpt[(PF_BASE >> 30) & 511] = (uintptr_t)pf_pd | 3;
	pf_pd[(PF_BASE >> 21) & 511] = (uintptr_t)pf_pt | 3;
	pf_pt[(cr2 >> 12) & 511] = (uintptr_t)pf_frames[pf_next++] | 3;
	/* Leave rip alone: the access is retried and now succeeds. */
}

int main(void)
{
	uint64_t a, d, c;
	unsigned v;

	trap_init();
	for (v = 0; v < 32; v++)
		trap_set(v, on_skip);
	trap_set(14, on_pf);
	trap_set(0x80, on_soft);

	/* #DE: unsigned divide by zero; rax/rdx unchanged. */
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x1234, %%eax\n\t"
			 "xor %%edx, %%edx\n\t"
			 "xor %%ecx, %%ecx\n"
			 "1:\tdiv %%ecx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("div by zero: resumed, eax 0x%lx edx 0x%lx\n", a, d);

	/* #DE: idiv overflow, INT_MIN / -1, 32 and 64 bits. */
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x80000000, %%eax\n\t"
			 "cltd\n\t"
			 "mov $-1, %%ecx\n"
			 "1:\tidiv %%ecx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("idiv32 INT_MIN/-1: resumed, eax 0x%lx edx 0x%lx\n", a, d);
	__asm__ volatile(ARM("1f", "2f")
			 "mov $1, %%eax\n\t"
			 "ror $1, %%rax\n\t"
			 "cqto\n\t"
			 "mov $-1, %%rcx\n"
			 "1:\tidiv %%rcx\n"
			 "2:"
			 : "=a"(a), "=d"(d), "=c"(c) : : "r11", "memory", "cc");
	printf("idiv64 INT_MIN/-1: resumed, rax 0x%lx rdx 0x%lx\n", a, d);
	/* #DE: 8-bit quotient overflow, 0x1000 / 2. */
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x1000, %%eax\n\t"
			 "mov $2, %%ecx\n"
			 "1:\tdivb %%cl\n"
			 "2:"
			 : "=a"(a), "=c"(c) : : "r11", "memory", "cc");
	printf("div8 overflow: resumed, eax 0x%lx\n", a);

	/* #UD: ud2, then a LOCK prefix on an instruction that cannot take it. */
	__asm__ volatile(ARM("1f", "2f")
			 "1:\tud2\n"
			 "2:"
			 : : : "r11", "memory");
	puts("ud2: resumed\n");
	__asm__ volatile(ARM("1f", "2f")
			 "1:\t.byte 0xf0, 0x01, 0xc0\n" /* lock add %eax, %eax */
			 "2:"
			 : : : "r11", "memory", "rax", "cc");
	puts("lock add reg,reg: resumed\n");

	/* #GP(0): non-canonical address. */
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x7777, %%ebx\n\t"
			 "mov $0x8000000000000000, %%rax\n"
			 "1:\tmov (%%rax), %%rbx\n"
			 "2:"
			 : "=b"(a) : : "rax", "r11", "memory");
	printf("non-canonical load: resumed, rbx 0x%lx\n", a);
	/* #GP(selector): a data segment selector beyond the GDT limit. */
	__asm__ volatile(ARM("1f", "2f")
			 "mov $0x18, %%eax\n"
			 "1:\tmov %%eax, %%es\n"
			 "2:"
			 : : : "rax", "r11", "memory");
	puts("bad selector: resumed\n");

	/* #PF: read, then write, of pages that are not mapped yet. */
	pf_frames[0][0x123] = 0x5a;
	__asm__ volatile(ARM("1f", "1f")
			 "mov %1, %%rax\n"
			 "1:\tmovzbl (%%rax), %%eax\n"
			 : "=&a"(a) : "r"(PF_BASE + 0x1123) : "r11", "memory");
	printf("#PF read: retried, got 0x%lx\n", a);
	__asm__ volatile(ARM("1f", "1f")
			 "mov %1, %%rax\n"
			 "1:\tmovl $0xcafe, (%%rax)\n"
			 : "=&a"(a) : "r"(PF_BASE + 0x5ff8) : "r11", "memory");
	printf("#PF write: retried, frame holds 0x%x\n",
	       *(uint32_t *)&pf_frames[1][0xff8]);

	/* Software interrupt to a custom vector. */
	if (cmdline_get("softint") && !strncmp(cmdline_get("softint"), "no", 2)) {
		puts("int 0x80: skipped (softint=no)\n");
		goto done;
	}
	__asm__ volatile(ARM("1f", "1f")
			 "mov $0x41, %%edi\n\t"
			 "int $0x80\n"
			 "1:"
			 : "=a"(a) : : "rdi", "r11", "memory");
	printf("int 0x80: returned rax 0x%lx\n", a);
done:

	printf("exceptions: %u events\n", events);
	return 0;
}
