/* Timer interrupts from the 8254 PIT through the 8259 PIC pair.
 *
 * Remaps the PICs (master vectors 0x20-0x27, slave 0x28-0x2f), unmasks only
 * IRQ 0, runs PIT channel 0 in mode 2 at 100 Hz and halts with `sti; hlt`
 * until ticks=N (default 50) timer interrupts have arrived. Then masks the
 * PIC and prints what proves they were real:
 *   pit: N ticks
 *   pit: wakes ok   every return from hlt saw exactly one new tick, taken
 *                   at the hlt (the saved rip is right after it)
 *   pit: isr ok     in the handler the master's ISR (OCW3 0x0b) has bit 0
 *                   set before the EOI and clear after it
 *   pit: latch ok   after each wake, channel 0's latched count is within
 *                   0..divisor and, read until it changes, goes down (or
 *                   wraps, less often than it goes down)
 * A failing check prints its counts instead of `ok`; the exit value is a
 * mask: 2 wakes, 4 isr, 8 latch; 16 if the IMR does not read back.
 * verbose=1 adds a line with the raw counts first.
 *
 * If CPUID and the APIC base MSR say there is an enabled local APIC, its
 * LINT0 is set to ExtINT (and LINT1 to NMI), the virtual-wire mode a PC
 * BIOS leaves behind, since with a masked LINT0 (the reset state) the PIC's
 * interrupts do not reach the CPU. lapic=0 on the command line skips that. */
#include "rt.h"
#include "trap.h"
#include "pc.h"

#define VECTOR_BASE 0x20
#define DIVISOR 11932   /* 1193182 Hz / 11932 = 100.0 Hz */

/* One halt with interrupts enabled; the handler returns to pit_woke. */
void sti_hlt(void);
extern const char pit_woke[];
__asm__(".text\n"
	".globl sti_hlt, pit_woke\n"
	"sti_hlt:\n\t"
	"sti\n\t"
	"hlt\n"
	"pit_woke:\n\t"
	"cli\n\t"
	"ret\n");

static volatile uint32_t ticks;
static uint32_t isr_unset, isr_kept, rip_wrong;

static void on_tick(struct trap_frame *f)
{
	uint8_t isr;

	outb(PIC1_CMD, PIC_READ_ISR);
	isr = inb(PIC1_CMD);
	isr_unset += !(isr & 1);
	outb(PIC1_CMD, PIC_EOI);
	/* The OCW3 read selection stays: this is the ISR again. */
	isr = inb(PIC1_CMD);
	isr_kept += isr & 1;
	outb(PIC1_CMD, PIC_READ_IRR);
	rip_wrong += f->rip != (uintptr_t)pit_woke;
	ticks++;
}

static void virtual_wire(void)
{
	const char *v = cmdline_get("lapic");

	if ((v && *v == '0') || !cpu_has_apic() ||
	    !(rdmsr(MSR_APIC_BASE) & APIC_BASE_ENABLE) ||
	    (rdmsr(MSR_APIC_BASE) & ~0xfffull) != LAPIC_BASE)
		return;
	map_uncached(LAPIC_BASE);
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100);
	lapic_write(LAPIC_LINT0, 0x700);  /* ExtINT, edge, unmasked */
	lapic_write(LAPIC_LINT1, 0x400);  /* NMI */
}

int main(void)
{
	uint64_t want = cmdline_u64("ticks", 50);
	uint32_t wakes = 0, wakes_bad = 0;
	uint32_t out_of_range = 0, frozen = 0, down = 0, wraps = 0;
	uint8_t imr1, imr2;
	int rc = 0;

	if (want < 1 || want > 1000000)
		want = 50;
	trap_init();
	trap_set(VECTOR_BASE, on_tick);
	virtual_wire();
	pic_remap(VECTOR_BASE);
	pit_ch0_program(2, DIVISOR);
	outb(PIC1_DATA, 0xfe);
	imr1 = inb(PIC1_DATA);
	imr2 = inb(PIC2_DATA);
	if (imr1 != 0xfe || imr2 != 0xff) {
		printf("pit: imr bad 0x%x 0x%x\n", imr1, imr2);
		return 16;
	}

	while (ticks < want) {
		uint32_t before = ticks;
		uint16_t c1, c2;
		uint32_t i;

		sti_hlt();
		wakes++;
		wakes_bad += ticks - before != 1;

		c1 = pit_ch0_latch();
		c2 = c1;
		for (i = 0; i < 100000 && c2 == c1; i++)
			c2 = pit_ch0_latch();
		out_of_range += (c1 > DIVISOR) + (c2 > DIVISOR);
		if (c2 == c1)
			frozen++;
		else if (c2 < c1)
			down++;
		else
			wraps++;
	}
	outb(PIC1_DATA, 0xff);

	if (cmdline_u64("verbose", 0))
		printf("pit: %u wakes, latch %u down %u wraps %u frozen, "
		       "%u out of range\n", wakes, down, wraps, frozen,
		       out_of_range);
	printf("pit: %u ticks\n", ticks);
	if (!wakes_bad && !rip_wrong) {
		printf("pit: wakes ok\n");
	} else {
		printf("pit: wakes bad: %u wakes, %u without exactly one tick, "
		       "%u ticks not at the hlt\n", wakes, wakes_bad, rip_wrong);
		rc |= 2;
	}
	if (!isr_unset && !isr_kept) {
		printf("pit: isr ok\n");
	} else {
		printf("pit: isr bad: bit 0 clear in %u handlers, set after "
		       "EOI in %u\n", isr_unset, isr_kept);
		rc |= 4;
	}
	if (!out_of_range && !frozen && down > wraps) {
		printf("pit: latch ok\n");
	} else {
		printf("pit: latch bad: %u out of range, %u frozen, %u down, "
		       "%u wraps\n", out_of_range, frozen, down, wraps);
		rc |= 8;
	}
	return rc;
}
