/* Synchronous exceptions at EL1 (MMU off) and from EL0, each taken through
 * the vector table and returned from with eret. Every event prints its
 * vector (0-3 EL1 with SP0, 4-7 EL1 with SPx, 8-11 from EL0), the full
 * ESR_EL1, ELR_EL1 relative to the faulting instruction and, where the
 * architecture defines it, FAR_EL1 relative to the buffer or instruction.
 * MMU faults are in mmu.c. */
#include "rt.h"

struct event {
	uint64_t vector, esr, far, elr, spsr;
};
static struct event ev[64];
static unsigned nev;
/* Where an EL1 exception resumes (0: the next instruction). */
volatile uint64_t recover;
static uint8_t buf[64] __attribute__((aligned(16)));
uint64_t el0_stack[64] __attribute__((aligned(16)));
extern char el0_code[], el0_back[];

static void on_trap(struct trap_frame *f)
{
	if (nev < 64)
		ev[nev++] = (struct event){ f->vector, f->esr, f->far, f->elr, f->spsr };
	if (f->vector == 8 && ESR_EC(f->esr) == 0x15 && ESR_ISS(f->esr) == 0xfff) {
		/* EL0 is done: back to EL1h, interrupts masked, at el0_back. */
		f->elr = (uint64_t)el0_back;
		f->spsr = 0x3c5;
		return;
	}
	if (f->vector >= 8) {
		if (ESR_EC(f->esr) != 0x15)
			f->elr += 4;
		return;
	}
	if (recover) {
		f->elr = recover;
		recover = 0;
	} else if (ESR_EC(f->esr) != 0x15) {
		/* svc returns to the next instruction already. */
		f->elr += 4;
	}
}

#define FAR_NONE 1
/* Print the events since the last call; `at` is the faulting instruction,
 * FAR is printed relative to `base` unless `base` is FAR_NONE. */
static unsigned shown;
static void show(const char *name, uint64_t at, uint64_t base)
{
	if (shown == nev)
		printf("%s: no exception\n", name);
	for (; shown < nev; shown++) {
		struct event *e = &ev[shown];
		printf("%s: vector %lu ec 0x%02lx esr 0x%08lx elr %+ld", name, e->vector,
		       ESR_EC(e->esr), e->esr, (int64_t)(e->elr - at));
		if (base != FAR_NONE)
			printf(" far %+ld", (int64_t)(e->far - base));
		putc('\n');
	}
}

/* One EL1 case: `insn` at label 0, resume at label 1. x1 = %[p]. */
#define CASE(name, insn, p, farbase)                                               \
	do {                                                                       \
		uint64_t at;                                                       \
		__asm__ volatile("adr x9, 1f\n\t"                                  \
				 "str x9, [%[rec]]\n\t"                            \
				 "mov x1, %[ptr]\n\t"                              \
				 "adr %[at], 0f\n"                                 \
				 "0: " insn "\n"                                   \
				 "1: str xzr, [%[rec]]"                            \
				 : [at] "=&r"(at)                                  \
				 : [rec] "r"(&recover), [ptr] "r"(p)               \
				 : "x0", "x1", "x2", "x9", "memory", "cc");        \
		show(name, at, farbase);                                           \
	} while (0)

/* EL0 code: each exception is recorded and skipped by the handler; svc
 * #0xfff returns to el0_back at EL1. */
__asm__(".text\n"
	".global el0_code, el0_back, run_el0\n"
	"el0_code:\n"
	"	mov x0, #0x11\n"
	"	svc #7\n"
	"	mrs x1, sctlr_el1\n"   /* EL1 register: UNDEFINED at EL0 */
	"	mrs x2, cntpct_el0\n"  /* CNTKCTL_EL1.EL0PCTEN = 0: EC 0x18 */
	"	msr daifset, #2\n"     /* SCTLR_EL1.UMA = 0: EC 0x18 */
	"	mrs x3, cntvct_el0\n"  /* EL0VCTEN = 1: allowed */
	"	brk #0x77\n"
	"	add x0, x0, #0x11\n"
	"	svc #0xfff\n"
	/* x0 = the value el0_code computed (stays in x0 through eret). */
	"run_el0:\n"
	"	stp x29, x30, [sp, #-16]!\n"
	"	msr sp_el0, x1\n"
	"	adr x9, el0_code\n"
	"	msr elr_el1, x9\n"
	"	mov x9, #0x3c0\n"      /* EL0t, DAIF masked */
	"	msr spsr_el1, x9\n"
	"	eret\n"
	"el0_back:\n"
	"	ldp x29, x30, [sp], #16\n"
	"	ret\n");
uint64_t run_el0(uint64_t unused, uint64_t sp0);

int main(void)
{
	uint64_t b = (uint64_t)buf;
	trap_set(on_trap);
	puts("exceptions: start\n");

	CASE("svc", "svc #0x123", b, FAR_NONE);
	CASE("brk", "brk #0x42", b, FAR_NONE);
	CASE("udf", "udf #0x5a", b, FAR_NONE);
	CASE("mrs-el2", "mrs x0, ttbr0_el2", b, FAR_NONE);
	CASE("msr-el3", "msr scr_el3, xzr", b, FAR_NONE);

	/* Registers survive an exception round trip. */
	{
		uint64_t r19 = 0x1919, r28 = 0x2828, r0 = 0xa0;
		__asm__ volatile("mov x19, %0\n\tmov x28, %1\n\tmov x0, %2\n\t"
				 "svc #1\n\t"
				 "mov %0, x19\n\tmov %1, x28\n\tmov %2, x0"
				 : "+r"(r19), "+r"(r28), "+r"(r0)
				 :
				 : "x0", "x19", "x28", "memory");
		printf("svc: registers kept %d (spsr 0x%lx)\n",
		       r19 == 0x1919 && r28 == 0x2828 && r0 == 0xa0, ev[nev - 1].spsr);
		shown = nev;
	}

	/* FP/SIMD disabled (CPACR_EL1.FPEN = 0): EC 0x07. */
	WRITE_SYSREG(cpacr_el1, 0);
	ISB();
	CASE("fp-trap", "fmov d0, x1", b, FAR_NONE);
	WRITE_SYSREG(cpacr_el1, 3 << 20);
	ISB();
	CASE("fp-enabled", "fmov d0, x1", b, FAR_NONE);

	/* MMU off: data accesses are Device, so misaligned ones fault even
	 * with SCTLR_EL1.A = 0. */
	CASE("ldr-unaligned", "ldr x0, [x1, #1]", b, b);
	CASE("str-unaligned", "str w0, [x1, #2]", b, b);
	CASE("ldp-unaligned", "ldp x0, x2, [x1]", b + 4, b);
	CASE("ldxr-unaligned", "ldxr w0, [x1, #0]", b + 2, b);
	CASE("ldrb-ok", "ldrb w0, [x1, #3]", b, b);
	uint64_t sctlr = READ_SYSREG(sctlr_el1);
	WRITE_SYSREG(sctlr_el1, sctlr | 2);
	ISB();
	CASE("a1-ldrh-unaligned", "ldrh w0, [x1, #1]", b, b);
	CASE("a1-ldr-ok", "ldr w0, [x1, #4]", b, b);
	WRITE_SYSREG(sctlr_el1, sctlr);
	ISB();

	/* PC alignment: FAR and ELR hold the misaligned target. */
	{
		__asm__ volatile("adr x9, 1f\n\t"
				 "str x9, [%[rec]]\n\t"
				 "add x9, %[buf], #2\n\t"
				 "br x9\n"
				 "1: str xzr, [%[rec]]"
				 :
				 : [rec] "r"(&recover), [buf] "r"(buf)
				 : "x9", "memory");
		/* ELR and FAR are the misaligned target, buf + 2. */
		show("pc-align", b, b);
	}

	/* SP alignment (SCTLR_EL1.SA): at EL1t with a misaligned SP_EL0; the
	 * exception goes to the "current EL with SP0" vector. */
	{
		uint64_t at;
		__asm__ volatile("adr x9, 1f\n\t"
				 "str x9, [%[rec]]\n\t"
				 "mov x10, sp\n\t"
				 "msr spsel, #0\n\t"
				 "add x9, %[stk], #8\n\t"
				 "mov sp, x9\n\t"
				 "adr %[at], 0f\n"
				 "0: ldr x0, [sp]\n"
				 "1: msr spsel, #1\n\t"
				 "mov sp, x10\n\t"
				 "str xzr, [%[rec]]"
				 : [at] "=&r"(at)
				 : [rec] "r"(&recover), [stk] "r"(el0_stack)
				 : "x0", "x9", "x10", "memory");
		show("sp-align", at, FAR_NONE);
	}

	/* An access to a physical address where the board has nothing: QEMU
	 * virt raises a synchronous external abort (DFSC 0x10). */
	CASE("unassigned", "ldr w0, [x1]", 0x0b000000ul, 0x0b000000ul);

	/* EL0: eret down, then the exceptions from there (vector 8). */
	WRITE_SYSREG(cntkctl_el1, 2);
	ISB();
	uint64_t r = run_el0(0, (uint64_t)(el0_stack + 64));
	for (; shown < nev; shown++) {
		struct event *e = &ev[shown];
		printf("el0: vector %lu ec 0x%02lx esr 0x%08lx elr el0_code%+ld spsr 0x%lx\n",
		       e->vector, ESR_EC(e->esr), e->esr, (int64_t)(e->elr - (uint64_t)el0_code),
		       e->spsr);
	}
	printf("el0: returned x0 0x%lx, now at EL%lu\n", r, (READ_SYSREG(currentel) >> 2) & 3);

	puts("exceptions: done\n");
	return 0;
}
