/* Several CPUs on the virt board, started the Arm way: the boot CPU calls
 * PSCI CPU_ON for each of the others (cpus=N on the command line, raw
 * image), every CPU adds to one counter with ldaxr/stlxr `iterations` times
 * (default 100000), each secondary then turns itself off with CPU_OFF, and
 * the boot CPU waits for AFFINITY_INFO to report each one off before it
 * prints the total. Also checks PSCI's answers to starting a CPU that is on
 * and one that does not exist. */
#include "rt.h"

#define PSCI_CPU_OFF 0x84000002u
#define PSCI_CPU_ON 0xc4000003u
#define PSCI_AFFINITY_INFO 0xc4000004u
#define MAX_CPUS 8

static volatile uint64_t counter;
static volatile uint64_t started;
static uint64_t iterations;
uint8_t stacks[MAX_CPUS][4096] __attribute__((aligned(16), used));

void secondary_entry(void);
void secondary_main(uint64_t cpu);

static int64_t psci(uint64_t fn, uint64_t a, uint64_t b, uint64_t c)
{
	register uint64_t x0 __asm__("x0") = fn;
	register uint64_t x1 __asm__("x1") = a;
	register uint64_t x2 __asm__("x2") = b;
	register uint64_t x3 __asm__("x3") = c;
	__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
	return (int64_t)x0;
}

/* An atomic add with the exclusives (no LSE on cortex-a57). */
static void add(volatile uint64_t *p, uint64_t n)
{
	uint64_t v, fail;
	__asm__ volatile("1: ldaxr %0, [%2]\n"
			 "   add %0, %0, %3\n"
			 "   stlxr %w1, %0, [%2]\n"
			 "   cbnz %w1, 1b\n"
			 : "=&r"(v), "=&r"(fail)
			 : "r"(p), "r"(n)
			 : "memory");
}

/* Entered by CPU_ON at EL1h, MMU off, x0 = context = the CPU's index: the
 * same set-up as the boot CPU's start, a stack of its own, then C. */
__asm__(".global secondary_entry\n"
	"secondary_entry:\n"
	"	msr daifset, #0xf\n"
	"	ldr x1, =0x30d50818\n"
	"	msr sctlr_el1, x1\n"
	"	mov x1, #(3 << 20)\n"
	"	msr cpacr_el1, x1\n"
	"	adr x1, rt_vectors\n"
	"	msr vbar_el1, x1\n"
	"	isb\n"
	"	ldr x1, =stacks\n"
	"	add x1, x1, x0, lsl #12\n"
	"	add sp, x1, #4096\n"
	"	bl secondary_main\n"
	"2:	wfi\n"
	"	b 2b\n"
	".ltorg\n");

void secondary_main(uint64_t cpu)
{
	(void)cpu;
	add(&started, 1);
	for (uint64_t i = 0; i < iterations; i++)
		add(&counter, 1);
	psci(PSCI_CPU_OFF, 0, 0, 0);
}

int main(void)
{
	uint64_t cpus = bootarg_u64("cpus", 1);
	iterations = bootarg_u64("iterations", 100000);
	if (cpus < 1 || cpus > MAX_CPUS) {
		printf("smp: cpus=%lu not in 1..%d\n", (unsigned long)cpus, MAX_CPUS);
		exit(1);
	}
	for (uint64_t cpu = 1; cpu < cpus; cpu++) {
		int64_t ret = psci(PSCI_CPU_ON, cpu, (uint64_t)secondary_entry, cpu);
		printf("cpu_on %lu: %ld\n", (unsigned long)cpu, (long)ret);
	}
	/* The boot CPU is on: ALREADY_ON (-4). No CPU 64: INVALID_PARAMETERS (-2). */
	printf("cpu_on 0: %ld\n", (long)psci(PSCI_CPU_ON, 0, (uint64_t)secondary_entry, 0));
	printf("cpu_on 64: %ld\n", (long)psci(PSCI_CPU_ON, 64, (uint64_t)secondary_entry, 0));
	for (uint64_t i = 0; i < iterations; i++)
		add(&counter, 1);
	for (uint64_t cpu = 1; cpu < cpus; cpu++) {
		/* AFFINITY_INFO: 0 on, 1 off, 2 on pending. */
		uint64_t polls = 0;
		while (psci(PSCI_AFFINITY_INFO, cpu, 0, 0) != 1) {
			if (++polls == 50000000) {
				printf("smp: cpu %lu did not turn off\n", (unsigned long)cpu);
				exit(1);
			}
		}
	}
	printf("smp: %lu cpus started, %lu cpus, count %lu\n", (unsigned long)started + 1,
	       (unsigned long)cpus, (unsigned long)counter);
	exit(0);
}
