/* 4-level paging with 4 KiB pages, on page tables of the guest's own:
 * CR0.WP write faults, NX (EFER.NXE) instruction-fetch faults, accessed and
 * dirty bits set by the CPU, a user page used from ring 0, invlpg after a
 * remap, a CR3 reload, not-present faults at the PTE and PDPTE levels, a
 * read-only PDE over a writable PTE, a 2 MiB page; then, in ring 3 (rt/user.c), faults
 * with the U/S bit in the error code: supervisor pages read and written,
 * a not-present page, an NX user page fetched. Prints one line per result. */
#include "rt.h"
#include "trap.h"
#include "user.h"

#define P  0x1ull
#define W  0x2ull
#define U  0x4ull
#define A  0x20ull
#define D  0x40ull
#define PS 0x80ull
#define NX (1ull << 63)

static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));
static uint64_t pt0[512] __attribute__((aligned(4096)));   /* 0-2 MiB identity */
static uint64_t pt1[512] __attribute__((aligned(4096)));   /* test pages at T */
static uint64_t pt2[512] __attribute__((aligned(4096)));   /* under a read-only PDE */
static uint8_t frames[6][4096] __attribute__((aligned(4096)));

#define T 0x200000ull                   /* pd[1] -> pt1 */
#define T2 0x400000ull                  /* pd[2] -> pt2 (read-only PDE) */
#define VA(i) ((volatile uint8_t *)(uintptr_t)(T + 0x1000 * (i)))
#define FRAME(i) ((uintptr_t)frames[i])

static volatile uint64_t fault_rip, resume_rip;
#define ARM(fault, resume) \
	"lea " fault "(%%rip), %%r11\n\t" \
	"mov %%r11, fault_rip(%%rip)\n\t" \
	"lea " resume "(%%rip), %%r11\n\t" \
	"mov %%r11, resume_rip(%%rip)\n\t"

enum { FIX_SKIP, FIX_WRITABLE, FIX_EXEC, FIX_MAP };
static int fix;
static unsigned faults;

static void on_pf(struct trap_frame *f)
{
	uint64_t cr2 = read_cr2();
	unsigned i = (cr2 - T) >> 12;

	faults++;
	printf("  #PF error 0x%lx cr2 0x%lx rip %s\n", f->error, cr2,
	       f->rip == fault_rip ? "ok" : "WRONG");
	switch (fix) {
	case FIX_SKIP:
		f->rip = resume_rip;
		return;
	case FIX_WRITABLE:
		pt1[i] |= W;
		break;
	case FIX_EXEC:
		pt1[i] &= ~NX;
		break;
	case FIX_MAP:
		pt1[i] = FRAME(3) | P | W;
		break;
	}
	invlpg((void *)(uintptr_t)cr2);
}

static uint8_t rd(volatile uint8_t *p)
{
	uint8_t v;
	__asm__ volatile(ARM("1f", "1f") "1:\tmovb (%1), %0"
			 : "=q"(v) : "r"(p) : "r11", "memory");
	return v;
}

static void wr(volatile uint8_t *p, uint8_t v)
{
	__asm__ volatile(ARM("1f", "1f") "1:\tmovb %1, (%0)"
			 : : "r"(p), "q"(v) : "r11", "memory");
}

static unsigned ad(uint64_t e)
{
	return (unsigned)(e & (A | D));
}

static void user_part(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	printf("ring %u\n", cs & 3);
	fix = FIX_SKIP;
	/* supervisor page: read 0x5 (P|U), write 0x7 (P|W|U) */
	__asm__ volatile(ARM("1f", "2f") "1:\tmovb (%0), %%al\n2:"
			 : : "r"(VA(0)) : "rax", "r11", "memory");
	__asm__ volatile(ARM("1f", "2f") "1:\tmovb $1, (%0)\n2:"
			 : : "r"(VA(0)) : "r11", "memory");
	puts("user: supervisor page read and write skipped\n");
	/* not present: 0x4 (U) */
	__asm__ volatile(ARM("1f", "2f") "1:\tmovb (%0), %%al\n2:"
			 : : "r"(VA(10)) : "rax", "r11", "memory");
	puts("user: not-present read skipped\n");
	/* a user page is fine */
	printf("user: user page read 0x%x\n", rd(VA(5)));
	/* NX user page: a fetch faults with 0x15 (P|U|I/D); the handler
	 * clears NX and the call is retried. */
	{
		uint32_t r;

		fix = FIX_EXEC;
		fault_rip = T + 0x9000;
		__asm__ volatile("call *%1" : "=a"(r) : "r"(T + 0x9000)
				 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10",
				 "r11", "memory", "cc");
		printf("user: nx page call retried, returned 0x%x\n", r);
	}
	printf("paging: %u faults\n", faults);
	exit(0);
}

int main(void)
{
	unsigned i;
	uint32_t r;

	trap_init();
	trap_set(14, on_pf);
	for (i = 0; i < 6; i++)
		memset(frames[i], 0x10 * (i + 1), 4096);

	/* Identity-map 4 KiB pages 1..511 (page 0 stays unmapped). U is set on
	 * the upper levels so that a PTE alone decides user/supervisor. */
	pml4[0] = (uintptr_t)pdpt | P | W | U;
	pdpt[0] = (uintptr_t)pd | P | W | U;
	pd[0] = (uintptr_t)pt0 | P | W;
	pd[1] = (uintptr_t)pt1 | P | W | U;
	pd[2] = (uintptr_t)pt2 | P | U;         /* read-only PDE */
	for (i = 1; i < 512; i++)
		pt0[i] = (0x1000ull * i) | P | W;
	write_cr3((uintptr_t)pml4);
	printf("own page tables: cr3 %s\n",
	       read_cr3() == (uintptr_t)pml4 ? "ok" : "WRONG");

	/* Read-only page: writable from ring 0 while CR0.WP=0; with WP=1 a
	 * write faults with P|W (0x3); the handler sets W and the write is
	 * retried. */
	pt1[0] = FRAME(0) | P;
	pt1[1] = FRAME(1) | P;
	write_cr0(read_cr0() & ~(uint64_t)CR0_WP);
	wr(VA(1), 0x91);
	printf("ro page, WP=0: write ok, frame 0x%x\n", frames[1][0]);
	write_cr0(read_cr0() | CR0_WP);
	printf("ro page, WP=1: read 0x%x\n", rd(VA(0)));
	fix = FIX_WRITABLE;
	wr(VA(0), 0x99);
	printf("ro page, WP=1: write retried, frame 0x%x\n", frames[0][0]);

	/* NX: data reads are fine, a fetch faults with P|I/D (0x11); the
	 * handler clears NX and the call is retried. */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	frames[2][0] = 0xb8;                    /* mov $0x77, %eax */
	frames[2][1] = 0x77;
	frames[2][2] = frames[2][3] = frames[2][4] = 0;
	frames[2][5] = 0xc3;                    /* ret */
	pt1[2] = FRAME(2) | P | W | NX;
	printf("nx page: read 0x%x\n", rd(VA(2)));
	fix = FIX_EXEC;
	fault_rip = T + 0x2000;
	__asm__ volatile("call *%1" : "=a"(r) : "r"(T + 0x2000)
			 : "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
			 "memory", "cc");
	printf("nx page: call retried, returned 0x%x\n", r);

	/* Accessed and dirty bits. */
	pt1[3] = FRAME(3) | P | W;
	pt1[4] = FRAME(4) | P | W;
	printf("fresh pte: a/d 0x%x\n", ad(pt1[3]));
	rd(VA(3));
	printf("after read: a/d 0x%x\n", ad(pt1[3]));
	wr(VA(3), 1);
	printf("after write: a/d 0x%x\n", ad(pt1[3]));
	wr(VA(4), 1);
	printf("write only: a/d 0x%x\n", ad(pt1[4]));
	pt1[3] &= ~(A | D);
	invlpg(VA(3));
	rd(VA(3));
	printf("cleared, invlpg, read: a/d 0x%x\n", ad(pt1[3]));
	printf("upper levels accessed: pml4e %u pdpte %u pde %u\n",
	       !!(pml4[0] & A), !!(pdpt[0] & A), !!(pd[1] & A));

	/* A user page used from ring 0 (no SMAP). */
	pt1[5] = FRAME(5) | P | W | U;
	wr(VA(5), 0x55);
	printf("user page from ring 0: read 0x%x\n", rd(VA(5)));

	/* Remap to another frame: invlpg, then a CR3 reload. */
	pt1[6] = FRAME(0) | P | W;
	printf("remap: before 0x%x\n", rd(VA(6)));
	pt1[6] = FRAME(1) | P | W;
	invlpg(VA(6));
	printf("remap: after invlpg 0x%x\n", rd(VA(6)));
	pt1[6] = FRAME(2) | P | W;
	write_cr3(read_cr3());
	printf("remap: after cr3 reload 0x%x\n", rd(VA(6)));

	/* Not present: a read and a write at the PTE level (the handler maps
	 * frame 3), then at the PDPTE level (skipped). */
	fix = FIX_MAP;
	printf("not present read: 0x%x\n", rd(VA(7)));
	wr(VA(8), 0x38);
	printf("not present write: retried, frame 0x%x\n", frames[3][0]);
	fix = FIX_SKIP;
	__asm__ volatile(ARM("1f", "2f") "mov $0x40000010, %%eax\n"
			 "1:\tmovl (%%rax), %%eax\n"
			 "2:"
			 : : : "rax", "r11", "memory");
	puts("pdpte not present: skipped\n");

	/* A 2 MiB page (PDE with PS) at VA 6 MiB -> PA 4 MiB, seen through a
	 * 4 KiB mapping of PA 4 MiB + 4 KiB as well; its PDE's A/D bits. */
	pd[3] = 0x400000ull | P | W | PS;
	pt1[11] = 0x401000ull | P | W;
	printf("2m page: pde a/d 0x%x\n", ad(pd[3]));
	*(volatile uint32_t *)(uintptr_t)(0x600000 + 0x1234) = 0x22223333;
	printf("2m page: written, seen through the 4k alias 0x%x\n",
	       *(volatile uint32_t *)(uintptr_t)(T + 0xb000 + 0x234));
	*(volatile uint32_t *)(uintptr_t)(T + 0xb000 + 0x238) = 0x44445555;
	printf("2m page: 4k alias written, read 0x%x\n",
	       *(volatile uint32_t *)(uintptr_t)(0x600000 + 0x1238));
	printf("2m page: pde a/d 0x%x\n", ad(pd[3]));

	/* A read-only PDE wins over a writable PTE. */
	pt2[0] = FRAME(4) | P | W;
	printf("ro pde: read 0x%x\n", rd((volatile uint8_t *)T2));
	__asm__ volatile(ARM("1f", "2f")
			 "1:\tmovb $1, (%0)\n"
			 "2:"
			 : : "r"(T2) : "r11", "memory");
	puts("ro pde: write skipped\n");

	/* Ring 3: everything at 0-2 MiB becomes user-accessible (the image,
	 * its stacks); the test pages keep their U bits. */
	for (i = 1; i < 512; i++)
		pt0[i] |= U;
	pd[0] |= U;
	pt1[9] = FRAME(2) | P | W | U | NX;
	write_cr3(read_cr3());
	user_enter(user_part);
}
