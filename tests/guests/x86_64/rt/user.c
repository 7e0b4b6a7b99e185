/* Ring 3 for the guests that need it; see user.h. */
#include "rt.h"
#include "trap.h"
#include "user.h"

#define USER_CS 0x2b
#define USER_SS 0x23
#define TSS_SEL 0x30

struct tss {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

static struct tss tss __attribute__((aligned(16)));
static uint64_t gdt[8] __attribute__((aligned(16))) = {
	0,
	0x00af9a000000ffffull,  /* 0x08 kernel code, 64-bit (as in common.S) */
	0x00cf92000000ffffull,  /* 0x10 kernel data */
	0x00cffa000000ffffull,  /* 0x18 user code, 32-bit (unused) */
	0x00cff2000000ffffull,  /* 0x20 user data */
	0x00affa000000ffffull,  /* 0x28 user code, 64-bit */
	0, 0,                   /* 0x30 TSS, filled in below */
};
static uint8_t kstack[8192] __attribute__((aligned(16)));
static uint8_t ustack[16384] __attribute__((aligned(16)));

/* #GP from ring 3: perform port I/O (in/out with dx or imm8, 8 or 32 bits). */
static void user_gp(struct trap_frame *f)
{
	const uint8_t *ip = (const uint8_t *)(uintptr_t)f->rip;
	uint16_t port = (uint16_t)f->rdx;
	unsigned len = 1;

	if ((f->cs & 3) == 3 && ip[0] >= 0xe4 && ip[0] <= 0xe7) {
		port = ip[1];
		len = 2;
	} else if ((f->cs & 3) != 3 || ip[0] < 0xec || ip[0] > 0xef) {
		printf("unexpected #GP: error 0x%lx rip 0x%lx cs 0x%lx\n",
		       f->error, f->rip, f->cs);
		exit(0x7e);
	}
	switch (ip[0] & 3) {
	case 0:
		f->rax = (f->rax & ~0xffull) | inb(port);
		break;
	case 1:
		f->rax = inl(port);
		break;
	case 2:
		outb(port, (uint8_t)f->rax);
		break;
	case 3:
		outl(port, (uint32_t)f->rax);
		break;
	}
	/* exit(): the VMM may run on for a moment (QEMU 10 does), and ring 3
	 * cannot `cli; hlt`: wait here. */
	if (port == DEBUG_EXIT_PORT && (ip[0] & 2))
		halt();
	f->rip += len;
}

void user_enter(void (*fn)(void))
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (uintptr_t)gdt };
	uint64_t cr3, *pml4, *pdpt, *pd, t = (uintptr_t)&tss;
	unsigned i;

	/* U on the path to the first GiB (2 MiB pages from boot32.S). */
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	pml4 = (uint64_t *)(uintptr_t)(cr3 & ~0xfffull);
	pml4[0] |= 4;
	pdpt = (uint64_t *)(uintptr_t)(pml4[0] & ~0xfffull);
	pdpt[0] |= 4;
	pd = (uint64_t *)(uintptr_t)(pdpt[0] & ~0xfffull);
	for (i = 0; i < 512; i++)
		pd[i] |= 4;
	__asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");

	tss.rsp0 = (uintptr_t)(kstack + sizeof(kstack));
	tss.iomap_base = sizeof(tss);   /* no I/O bitmap: IOPL decides */
	gdt[6] = (sizeof(tss) - 1) | (t & 0xffffff) << 16 |
		 0x89ull << 40 | ((t >> 24) & 0xff) << 56;
	gdt[7] = t >> 32;
	trap_set(13, user_gp);
	__asm__ volatile("lgdt %0\n\t"
			 "ltr %w1"
			 : : "m"(gdtr), "r"(TSS_SEL) : "memory");
	__asm__ volatile("mov %0, %%ds\n\t"
			 "mov %0, %%es\n\t"
			 "pushq %q0\n\t"          /* ss */
			 "pushq %1\n\t"           /* rsp, as after a call */
			 "pushq $0x2\n\t"         /* rflags: IOPL 0, IF 0 */
			 "pushq %2\n\t"           /* cs */
			 "pushq %3\n\t"           /* rip */
			 "iretq"
			 : : "r"((uint64_t)USER_SS),
			   "r"((uintptr_t)(ustack + sizeof(ustack) - 8)),
			   "r"((uint64_t)USER_CS), "r"((uintptr_t)fn)
			 : "memory");
	__builtin_unreachable();
}
