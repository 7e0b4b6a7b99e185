/* PC interrupt and timer hardware for the pit and smp guests: the 8259 PIC
 * pair, the 8254 PIT and the local APIC. Inline helpers only, so that the
 * guests that do not include it stay byte-identical. */
#ifndef MOAT_PC_H
#define MOAT_PC_H

#include "rt.h"
#include "trap.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI   0x20  /* OCW2: non-specific EOI */
#define PIC_READ_IRR 0x0a /* OCW3: the next command-port read gives IRR */
#define PIC_READ_ISR 0x0b /* OCW3: ... gives ISR */

#define PIT_CH0  0x40
#define PIT_CMD  0x43
#define PIT_HZ   1193182u

#define MSR_APIC_BASE 0x1bu
#define APIC_BASE_ENABLE (1u << 11)
#define LAPIC_BASE 0xfee00000ul

#define LAPIC_ID     0x020
#define LAPIC_SVR    0x0f0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LINT0  0x350
#define LAPIC_LINT1  0x360

#define ICR_INIT      0x00000500u
#define ICR_STARTUP   0x00000600u
#define ICR_PENDING   0x00001000u /* delivery status: send pending */
#define ICR_ASSERT    0x00004000u
#define ICR_ALL_BUT_SELF 0x000c0000u

/* A decimal key=N from the command line, or dflt if absent or not a number.
 * Saturates instead of wrapping. */
static inline uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	const char *v = cmdline_get(key);
	uint64_t n = 0;

	if (!v || *v < '0' || *v > '9')
		return dflt;
	while (*v >= '0' && *v <= '9') {
		unsigned d = (unsigned)(*v++ - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	return n;
}

/* Remaps the PIC pair: master IRQs 0-7 to vectors base..base+7, slave IRQs
 * 8-15 to base+8..base+15, slave cascaded on master IRQ 2, 8086 mode,
 * normal (not automatic) EOI. Leaves every IRQ masked. */
static inline void pic_remap(uint8_t base)
{
	outb(PIC1_CMD, 0x11);       /* ICW1: edge, cascade, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, base);      /* ICW2: vector base */
	outb(PIC2_DATA, (uint8_t)(base + 8));
	outb(PIC1_DATA, 0x04);      /* ICW3: a slave on IRQ 2 */
	outb(PIC2_DATA, 0x02);      /* ICW3: slave identity 2 */
	outb(PIC1_DATA, 0x01);      /* ICW4: 8086 mode */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
}

/* Channel 0: binary, low byte then high byte, the given mode (0-5). */
static inline void pit_ch0_program(unsigned mode, uint16_t divisor)
{
	outb(PIT_CMD, (uint8_t)(0x30 | (mode << 1)));
	outb(PIT_CH0, (uint8_t)divisor);
	outb(PIT_CH0, (uint8_t)(divisor >> 8));
}

/* Channel 0's current count through the counter-latch command. */
static inline uint16_t pit_ch0_latch(void)
{
	uint8_t lo, hi;

	outb(PIT_CMD, 0x00);
	lo = inb(PIT_CH0);
	hi = inb(PIT_CH0);
	return (uint16_t)(lo | hi << 8);
}

static inline int cpu_has_apic(void)
{
	uint32_t a = 1, b, c = 0, d;

	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return (d >> 9) & 1;
}

static inline volatile uint32_t *lapic_reg(unsigned off)
{
	return (volatile uint32_t *)(LAPIC_BASE + off);
}
static inline uint32_t lapic_read(unsigned off)
{
	return *lapic_reg(off);
}
static inline void lapic_write(unsigned off, uint32_t v)
{
	*lapic_reg(off) = v;
}

/* Makes the 2 MiB page of the boot identity map (rt/boot32.S: PML4[0] ->
 * PDPT -> 2 MiB PDEs) that holds addr uncached (PCD|PWT), for MMIO. */
static inline void map_uncached(uint64_t addr)
{
	const uint64_t m = 0x000ffffffffff000ull;
	uint64_t *pml4 = (uint64_t *)(read_cr3() & m);
	uint64_t *pdpt = (uint64_t *)(pml4[(addr >> 39) & 511] & m);
	uint64_t *pd = (uint64_t *)(pdpt[(addr >> 30) & 511] & m);

	pd[(addr >> 21) & 511] |= 0x18;
	invlpg((const volatile void *)addr);
}

#endif
