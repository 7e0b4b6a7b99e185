/* The EL1 virtual timer through the GICv2: the distributor and CPU
 * interface are set up for PPI 11 (INTID 27), CNTV_TVAL is programmed for
 * 10 ms (CNTFRQ / 100) and the CPU waits with wfi, IRQs masked; after each
 * wake it unmasks IRQs for one instruction window so the interrupt is taken
 * there, acknowledged (GICC_IAR) and completed (GICC_EOIR). It prints the
 * tick count and whether every wake brought exactly one tick, the IAR
 * value, the timer's ISTATUS and that at least 10 ms of counter passed per
 * tick. `ticks=N` in the bootargs (raw image) changes the count (at most
 * 1000). */
#include "rt.h"

#define GICD_CTLR 0x000
#define GICD_TYPER 0x004
#define GICD_ISENABLER0 0x100
#define GICD_ICENABLER0 0x180
#define GICD_IPRIORITYR 0x400
#define GICC_CTLR 0x000
#define GICC_PMR 0x004
#define GICC_IAR 0x00c
#define GICC_EOIR 0x010
#define VTIMER_INTID 27

static volatile unsigned ticks, bad_iar, bad_status, spurious;
static volatile uint32_t last_iar;
static uint64_t tval;

static void on_trap(struct trap_frame *f)
{
	if (VEC_KIND(f->vector) != VEC_IRQ) {
		printf("unexpected exception: vector %lu esr 0x%08lx elr 0x%lx\n", f->vector,
		       f->esr, f->elr);
		exit(0x7e);
	}
	uint32_t iar = mmio_read32(GICC_BASE + GICC_IAR);
	uint32_t id = iar & 0x3ff;
	if (id == 1023) {
		spurious++;
		return;
	}
	last_iar = iar;
	if (id != VTIMER_INTID)
		bad_iar++;
	/* ISTATUS (bit 2) must be set while the timer condition holds. */
	if (!(READ_SYSREG(cntv_ctl_el0) & 4))
		bad_status++;
	ticks++;
	/* Reload: the condition clears, so the level interrupt drops. */
	WRITE_SYSREG(cntv_tval_el0, tval);
	ISB();
	mmio_write32(GICC_BASE + GICC_EOIR, iar);
}

int main(void)
{
	trap_set(on_trap);
	puts("timer: start\n");
	uint64_t n = bootarg_u64("ticks", 20);
	if (n > 1000)
		n = 1000;
	uint64_t frq = READ_SYSREG(cntfrq_el0);
	if (!frq) {
		puts("timer: CNTFRQ_EL0 is 0\n");
		return 1;
	}
	tval = frq / 100;
	printf("timer: gicd typer itlines %u\n", (mmio_read32(GICD_BASE + GICD_TYPER) & 0x1f) >= 1);

	mmio_write32(GICD_BASE + GICD_CTLR, 1);
	/* Priority 0xa0 for INTID 27: byte 27 of IPRIORITYR. */
	uint32_t pr = mmio_read32(GICD_BASE + GICD_IPRIORITYR + 24);
	pr = (pr & ~0xff000000u) | 0xa0000000u;
	mmio_write32(GICD_BASE + GICD_IPRIORITYR + 24, pr);
	mmio_write32(GICD_BASE + GICD_ISENABLER0, 1u << VTIMER_INTID);
	printf("timer: isenabler0 bit %u\n",
	       (mmio_read32(GICD_BASE + GICD_ISENABLER0) >> VTIMER_INTID) & 1);
	mmio_write32(GICC_BASE + GICC_PMR, 0xf0);
	mmio_write32(GICC_BASE + GICC_CTLR, 1);

	WRITE_SYSREG(cntv_tval_el0, tval);
	WRITE_SYSREG(cntv_ctl_el0, 1); /* enabled, not masked */
	ISB();
	uint64_t start = READ_SYSREG(cntvct_el0);
	unsigned wakes = 0, bad_wakes = 0;
	while (ticks < n && wakes < 10 * n) {
		unsigned before = ticks;
		__asm__ volatile("wfi\n\t"
				 "msr daifclr, #2\n\t"
				 "isb\n\t"
				 "msr daifset, #2" ::: "memory");
		wakes++;
		if (ticks != before + 1)
			bad_wakes++;
	}
	uint64_t elapsed = READ_SYSREG(cntvct_el0) - start;
	WRITE_SYSREG(cntv_ctl_el0, 2); /* disabled, masked */
	mmio_write32(GICD_BASE + GICD_ICENABLER0, 1u << VTIMER_INTID);

	printf("timer: %u ticks\n", ticks);
	printf("timer: wakes %s\n", bad_wakes ? "bad" : "ok");
	if (bad_wakes)
		printf("timer: %u wakes, %u without exactly one tick\n", wakes, bad_wakes);
	printf("timer: iar 0x%x, bad %u, istatus %s\n", last_iar, bad_iar,
	       bad_status ? "bad" : "ok");
	printf("timer: elapsed %s\n", elapsed >= n * tval ? "ok" : "short");
	return 0;
}
