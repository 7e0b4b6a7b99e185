/* Starts the application processors the architecture's way and has every
 * CPU count into shared memory.
 *
 * The BSP copies the real-mode trampoline (smp-tramp.S) to AP_TRAMP_BASE,
 * then, through the local APIC's ICR, sends INIT to every AP, waits 10 ms,
 * and sends STARTUP (vector = the trampoline's page) twice, 200 us apart
 * (the SDM's MP initialisation; delays timed by polling PIT channel 0). Each
 * AP comes up in real mode, reaches 64-bit mode on the BSP's page tables,
 * takes a stack by ticket and checks in. When all have (or after timeout=MS,
 * default 1000), the BSP releases them and every CPU, the BSP included, does
 * `lock xadd` on one counter iterations=M times (default 1000000).
 *
 * Command line: cpus=N (default 1, at most MAX_CPUS; the APs are the first
 * N-1 APIC IDs other than the BSP's), iterations=M, timeout=MS, racy=1 (a
 * second phase with plain mov/add/mov increments, which lose updates on real
 * SMP), ipi=all (INIT/STARTUP with the all-excluding-self shorthand instead
 * of one IPI per AP; CPUs beyond cpus=N then start too but only park),
 * verbose=1 (first a line with the BSP's APIC ID and the microseconds from
 * the INIT IPI until the last AP checked in).
 *
 * Prints `smp: N cpus, count C` (C = N*M) and with racy=1 `smp: racy count
 * R`. Exit codes: 0 ok, 2 an AP did not start, 3 a count is wrong, 4 bad
 * cpus=, 5 no usable local APIC or the trampoline page is in use, 6 the ICR
 * stays busy, 7 the PIT does not count. */
#include "rt.h"
#include "trap.h"
#include "pc.h"
#include "smp.h"

extern const char ap_tramp_start[], ap_tramp_end[], ap_tramp_cr3[];

/* Used by ap_entry64 (smp-tramp.S). */
struct {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed)) ap_idtr;
uint32_t ap_ticket;
uint8_t ap_stacks[(MAX_CPUS - 1) << AP_STACK_SHIFT] __attribute__((aligned(16)));

static uint8_t target[256];            /* APIC IDs the BSP starts */
static volatile uint8_t started[256];  /* APIC IDs that checked in */
static volatile uint32_t phase;        /* 1: atomic, 2: racy, 3: park */
static volatile uint32_t done1, done2;
static volatile uint64_t counter, racy;
static uint64_t iterations;

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static void count_atomic(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t one = 1;
		__asm__ volatile("lock xaddq %0, %1"
				 : "+r"(one), "+m"(counter) : : "memory");
	}
}

/* Load, add, store: an update another CPU makes in between is lost. */
static void count_racy(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		__asm__ volatile("movq %0, %%rax\n\t"
				 "addq $1, %%rax\n\t"
				 "movq %%rax, %0"
				 : "+m"(racy) : : "rax", "memory");
}

static void wait_phase(uint32_t p)
{
	while (phase < p)
		cpu_relax();
}

/* Called by ap_entry64 on the AP's own stack; returning parks the AP. */
__attribute__((used)) void ap_main(uint32_t ticket)
{
	uint32_t id = lapic_read(LAPIC_ID) >> 24;

	(void)ticket;
	started[id] = 1;
	if (!target[id])
		return;
	wait_phase(1);
	count_atomic(iterations);
	__asm__ volatile("lock incl %0" : "+m"(done1) : : "memory");
	wait_phase(2);
	if (phase != 2)
		return;
	count_racy(iterations);
	__asm__ volatile("lock incl %0" : "+m"(done2) : : "memory");
}

/* Time from PIT channel 0, free-running in mode 2 with divisor 65536: the
 * caller polls often enough (a period is 55 ms) and sums the count's
 * decrease. A counter that never changes ends the run. */
static uint16_t pit_last;
static uint64_t pit_elapsed;
static uint32_t pit_still;

static void pit_clock_start(void)
{
	pit_ch0_program(2, 0);
	pit_last = pit_ch0_latch();
	pit_elapsed = 0;
	pit_still = 0;
}

static uint64_t pit_clock_us(void)
{
	uint16_t now = pit_ch0_latch();

	if (now == pit_last) {
		if (++pit_still > 10000000) {
			printf("smp: pit not counting\n");
			exit(7);
		}
	} else {
		pit_still = 0;
	}
	pit_elapsed += (uint16_t)(pit_last - now);
	pit_last = now;
	return pit_elapsed * 1000000 / PIT_HZ;
}

static void delay_us(uint64_t us)
{
	uint64_t end = pit_clock_us() + us;

	while (pit_clock_us() < end)
		;
}

static void icr_wait(void)
{
	for (uint32_t i = 0; i < 1000000; i++)
		if (!(lapic_read(LAPIC_ICR_LO) & ICR_PENDING))
			return;
	printf("smp: icr stays busy\n");
	exit(6);
}

static void ipi(uint32_t dest, uint32_t lo)
{
	icr_wait();
	lapic_write(LAPIC_ICR_HI, dest << 24);
	lapic_write(LAPIC_ICR_LO, lo);
	icr_wait();
}

static void ipi_targets(int all, uint32_t lo)
{
	if (all) {
		ipi(0, lo | ICR_ALL_BUT_SELF);
		return;
	}
	for (uint32_t id = 0; id < 256; id++)
		if (target[id])
			ipi(id, lo);
}

static int overlaps(uint64_t a, uint64_t n, uint64_t b, uint64_t m)
{
	return a < b + m && b < a + n;
}

int main(void)
{
	uint64_t ncpus = cmdline_u64("cpus", 1);
	uint64_t timeout_ms = cmdline_u64("timeout", 1000);
	int want_racy = cmdline_u64("racy", 0) != 0;
	const char *ipi_mode = cmdline_get("ipi");
	int ipi_all = ipi_mode && !strncmp(ipi_mode, "all", 3);
	int verbose = cmdline_u64("verbose", 0) != 0;
	uint64_t t0;
	uint32_t bsp = 0, naps = (uint32_t)ncpus - 1, missing = 0;
	size_t tramp_size = (size_t)(ap_tramp_end - ap_tramp_start);

	iterations = cmdline_u64("iterations", 1000000);
	trap_init();
	if (ncpus < 1 || ncpus > MAX_CPUS) {
		printf("smp: cpus=%lu not in 1..%u\n", ncpus, MAX_CPUS);
		return 4;
	}
	if (cpu_has_apic() && (rdmsr(MSR_APIC_BASE) & APIC_BASE_ENABLE)) {
		if ((rdmsr(MSR_APIC_BASE) & ~0xfffull) != LAPIC_BASE) {
			printf("smp: local APIC not at 0x%lx\n", LAPIC_BASE);
			return 5;
		}
		map_uncached(LAPIC_BASE);
		bsp = lapic_read(LAPIC_ID) >> 24;
	} else if (ncpus > 1) {
		printf("smp: no local APIC\n");
		return 5;
	}

	if (naps) {
		/* The trampoline page must not hold what the runtime still reads
		 * (the command line was parsed above, but say so anyway). */
		if (overlaps(boot.raw, sizeof(struct hvm_start_info),
			     AP_TRAMP_BASE, 0x1000) ||
		    (boot.cmdline &&
		     overlaps((uintptr_t)boot.cmdline, strlen(boot.cmdline) + 1,
			      AP_TRAMP_BASE, 0x1000))) {
			printf("smp: trampoline page 0x%x in use\n", AP_TRAMP_BASE);
			return 5;
		}
		__asm__ volatile("sidt %0" : "=m"(ap_idtr));
		for (uint32_t id = 0, n = 0; id < 256 && n < naps; id++)
			if (id != bsp) {
				target[id] = 1;
				n++;
			}
		memcpy((void *)AP_TRAMP_BASE, ap_tramp_start, tramp_size);
		*(volatile uint32_t *)(AP_TRAMP_BASE + (ap_tramp_cr3 - ap_tramp_start)) =
			(uint32_t)read_cr3();

		/* Software-enable the local APIC (spurious vector 0xff). */
		lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1ff);
		pit_clock_start();
		t0 = pit_clock_us();
		ipi_targets(ipi_all, ICR_INIT | ICR_ASSERT);
		delay_us(10000);
		ipi_targets(ipi_all, ICR_STARTUP | AP_SIPI_VECTOR);
		delay_us(200);
		ipi_targets(ipi_all, ICR_STARTUP | AP_SIPI_VECTOR);
		delay_us(200);

		for (uint64_t end = pit_clock_us() + timeout_ms * 1000;;) {
			uint32_t n = 0;
			for (uint32_t id = 0; id < 256; id++)
				n += target[id] && started[id];
			if (n == naps || pit_clock_us() >= end)
				break;
		}
		if (verbose)
			printf("smp: bsp apic id %u, aps in after %lu us\n", bsp,
			       pit_clock_us() - t0);
		for (uint32_t id = 0; id < 256; id++) {
			if (target[id] && !started[id]) {
				printf("smp: cpu %u did not start\n", id);
				missing++;
			}
		}
		if (missing) {
			phase = 3;
			return 2;
		}
	}

	phase = 1;
	count_atomic(iterations);
	while (done1 < naps)
		cpu_relax();
	printf("smp: %lu cpus, count %lu\n", ncpus, counter);
	if (counter != ncpus * iterations) {
		phase = 3;
		return 3;
	}
	if (!want_racy) {
		phase = 3;
		return 0;
	}
	phase = 2;
	count_racy(iterations);
	while (done2 < naps)
		cpu_relax();
	phase = 3;
	printf("smp: racy count %lu\n", racy);
	return racy <= ncpus * iterations ? 0 : 3;
}
