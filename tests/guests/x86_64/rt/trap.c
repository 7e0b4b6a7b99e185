/* 64-bit IDT and C-level dispatch; see trap.h. */
#include "rt.h"
#include "trap.h"

#define GDT_CODE64 0x08

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

extern const char trap_stubs[];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler handlers[256];

static void trap_unexpected(struct trap_frame *f)
{
	printf("unexpected trap: vector %lu error 0x%lx rip 0x%lx cr2 0x%lx\n",
	       f->vector, f->error, f->rip, read_cr2());
	exit(0x7e);
}

__attribute__((used)) void trap_dispatch(struct trap_frame *f)
{
	trap_handler h = handlers[f->vector & 0xff];

	(h ? h : trap_unexpected)(f);
}

void trap_set(unsigned vector, trap_handler h)
{
	handlers[vector & 0xff] = h;
}

void trap_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uintptr_t)idt };
	unsigned i;

	for (i = 0; i < 256; i++) {
		uint64_t a = (uintptr_t)trap_stubs + 16 * i;
		idt[i].off_lo = (uint16_t)a;
		idt[i].sel = GDT_CODE64;
		idt[i].ist = 0;
		idt[i].type_attr = 0xee; /* present, DPL 3, 64-bit interrupt gate */
		idt[i].off_mid = (uint16_t)(a >> 16);
		idt[i].off_hi = (uint32_t)(a >> 32);
		idt[i].zero = 0;
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));
}
