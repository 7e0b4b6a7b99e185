/* Stage-1 translation with 4 KiB granules and 39-bit VAs (T0SZ = T1SZ =
 * 25, walks start at level 1). TTBR0 maps 0-1 GiB as Device blocks and the
 * image's 2 MiB of RAM as a Normal block (identity), plus a level-3 table
 * of test pages at VA 0x40400000; TTBR1 maps the same 2 MiB of RAM at
 * 0xffffff8000000000. Each fault prints its class, status code, WnR and
 * FAR; the handler repairs the entry (AF, AP, a new page) and the access
 * is retried. */
#include "rt.h"

#define PAGE 4096ul
#define RAM_BASE 0x40000000ul
#define TEST_VA 0x40400000ul
#define HIGH_BASE 0xffffff8000000000ul

#define D_VALID 1ul
#define D_TABLE 3ul /* table (levels 1-2) or page (level 3) */
#define D_BLOCK 1ul
#define D_AF (1ul << 10)
#define D_SH_INNER (3ul << 8)
#define D_RO (2ul << 6) /* AP[2:1] = 10: EL1 read-only */
#define D_PXN (1ul << 53)
#define D_UXN (1ul << 54)
#define D_DEVICE (0ul << 2) /* MAIR attr 0: Device-nGnRnE */
#define D_NORMAL (1ul << 2) /* MAIR attr 1: Normal WB */

static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l2[512] __attribute__((aligned(4096)));
static uint64_t l3[512] __attribute__((aligned(4096)));
static uint64_t hl1[512] __attribute__((aligned(4096)));
static uint64_t hl2[512] __attribute__((aligned(4096)));
static uint8_t pg[6][4096] __attribute__((aligned(4096)));

volatile uint64_t recover;
static uint64_t last_esr, last_far;
static int faults;

static void tlbi_all(void)
{
	__asm__ volatile("dsb ishst\n\ttlbi vmalle1\n\tdsb ish\n\tisb" ::: "memory");
}

static uint64_t page_desc(const void *pa, uint64_t attrs)
{
	return (uint64_t)pa | D_TABLE | D_AF | D_SH_INNER | D_NORMAL | attrs;
}

static void on_trap(struct trap_frame *f)
{
	uint64_t ec = ESR_EC(f->esr), fsc = f->esr & 0x3f;
	faults++;
	last_esr = f->esr;
	last_far = f->far;
	if (ec != 0x25 && ec != 0x21) {
		printf("unexpected exception: esr 0x%08lx far 0x%lx elr 0x%lx\n", f->esr, f->far,
		       f->elr);
		exit(0x7e);
	}
	uint64_t va = f->far;
	if (va >= TEST_VA && va < TEST_VA + 512 * PAGE) {
		uint64_t *e = &l3[(va - TEST_VA) / PAGE];
		if ((fsc & 0x3c) == 0x08) /* access flag fault */
			*e |= D_AF;
		else if ((fsc & 0x3c) == 0x0c) /* permission fault */
			*e &= ~(D_RO | D_PXN);
		else if ((fsc & 0x3c) == 0x04) /* translation fault */
			*e = page_desc(pg[5], 0);
		else if (recover)
			f->elr = recover;
		tlbi_all();
		return;
	}
	if (recover)
		f->elr = recover;
	else
		f->elr += 4;
}

static void report(const char *name, uint64_t base)
{
	uint64_t ec = ESR_EC(last_esr);
	if (!last_esr) {
		printf("%s: no fault\n", name);
		return;
	}
	printf("%s: ec 0x%02lx fsc 0x%02lx wnr %lu far %+ld\n", name, ec, last_esr & 0x3f,
	       ec == 0x25 ? (last_esr >> 6) & 1 : 0, (int64_t)(last_far - base));
	last_esr = 0;
	last_far = 0;
}

static uint64_t rd(uint64_t va)
{
	return *(volatile uint64_t *)va;
}

static void wr(uint64_t va, uint64_t v)
{
	*(volatile uint64_t *)va = v;
}

static uint64_t at_s1e1r(uint64_t va)
{
	uint64_t par;
	__asm__ volatile("at s1e1r, %1\n\tisb\n\tmrs %0, par_el1" : "=r"(par) : "r"(va));
	return par;
}

static void show_par(const char *name, uint64_t va)
{
	uint64_t par = at_s1e1r(va);
	if (par & 1)
		printf("%s: par fault fst 0x%02lx\n", name, (par >> 1) & 0x3f);
	else
		printf("%s: par pa 0x%lx attr 0x%02lx sh %lu\n", name, par & 0xfffffffff000ul,
		       par >> 56, (par >> 7) & 3);
}

int main(void)
{
	trap_set(on_trap);
	puts("mmu: start\n");

	l1[0] = 0x0 | D_BLOCK | D_AF | D_DEVICE | D_PXN | D_UXN;
	l1[1] = (uint64_t)l2 | D_TABLE;
	l2[0] = RAM_BASE | D_BLOCK | D_AF | D_SH_INNER | D_NORMAL;
	l2[2] = (uint64_t)l3 | D_TABLE;
	l3[0] = page_desc(pg[0], 0);
	l3[1] = page_desc(pg[1], 0) & ~D_AF;
	l3[2] = page_desc(pg[2], D_RO);
	/* l3[3]: invalid */
	l3[4] = page_desc(pg[0], 0);
	l3[5] = (uint64_t)pg[3] | D_TABLE | D_AF | D_DEVICE;
	l3[6] = page_desc(pg[4], D_PXN);
	l3[7] = page_desc(pg[0], 0);
	hl1[0] = (uint64_t)hl2 | D_TABLE;
	hl2[0] = RAM_BASE | D_BLOCK | D_AF | D_SH_INNER | D_NORMAL;
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 4096; j += 8)
			*(uint64_t *)&pg[i][j] = 0x1111111111111111ul * (i + 1) + j;

	WRITE_SYSREG(mair_el1, 0xff00);
	uint64_t tcr = 25 | (1ul << 8) | (1ul << 10) | (3ul << 12) | (25ul << 16) | (1ul << 24) |
		       (1ul << 26) | (3ul << 28) | (2ul << 30) | (2ul << 32);
	WRITE_SYSREG(tcr_el1, tcr);
	WRITE_SYSREG(ttbr0_el1, (uint64_t)l1);
	WRITE_SYSREG(ttbr1_el1, (uint64_t)hl1);
	DSB(sy);
	ISB();
	uint64_t sctlr = READ_SYSREG(sctlr_el1);
	WRITE_SYSREG(sctlr_el1, sctlr | 1 | (1 << 2) | (1 << 12));
	ISB();
	printf("mmu: on, sctlr.m %lu\n", READ_SYSREG(sctlr_el1) & 1);

	/* TTBR1: the high alias of the image's RAM. */
	static volatile uint64_t probe = 0x5eed;
	uint64_t high = HIGH_BASE + ((uint64_t)&probe - RAM_BASE);
	printf("ttbr1 read: 0x%lx\n", rd(high));
	wr(high, 0xbeef);
	printf("ttbr1 write seen low: 0x%lx\n", (uint64_t)probe);

	/* Aliases: pages 0 and 4 map the same frame. */
	wr(TEST_VA + 0x10, 0xa11a5);
	printf("alias: 0x%lx\n", rd(TEST_VA + 4 * PAGE + 0x10));

	/* Faults, each repaired by the handler and retried. */
	uint64_t v = rd(TEST_VA + PAGE + 8);
	report("access-flag read", TEST_VA + PAGE);
	printf("access-flag read value: 0x%lx\n", v);
	wr(TEST_VA + 2 * PAGE + 0x18, 0x77);
	report("permission write", TEST_VA + 2 * PAGE);
	printf("permission write value: 0x%lx\n", rd(TEST_VA + 2 * PAGE + 0x18));
	v = rd(TEST_VA + 3 * PAGE + 0x20);
	report("translation l3 read", TEST_VA + 3 * PAGE);
	printf("translation l3 value: 0x%lx\n", v);

	/* Unrepaired translation faults at levels 1 and 2: skipped. */
	__asm__ volatile("adr x9, 1f\n\tstr x9, [%0]\n\tldr x9, [%1]\n1:\tstr xzr, [%0]"
			 : : "r"(&recover), "r"(0x80000000ul) : "x9", "memory");
	report("translation l1 read", 0x80000000ul);
	__asm__ volatile("adr x9, 1f\n\tstr x9, [%0]\n\tstr x9, [%1]\n1:\tstr xzr, [%0]"
			 : : "r"(&recover), "r"(0x40600008ul) : "x9", "memory");
	report("translation l2 write", 0x40600000ul);

	/* Execute-never: a function copied to a PXN page; the handler clears
	 * PXN and the branch is retried. */
	uint32_t *code = (uint32_t *)pg[4];
	code[0] = 0x528000e0; /* mov w0, #7 */
	code[1] = 0xd65f03c0; /* ret */
	__asm__ volatile("dc cvau, %0\n\tdsb ish\n\tic ivau, %0\n\tdsb ish\n\tisb"
			 : : "r"(code) : "memory");
	int (*fn)(void) = (int (*)(void))(TEST_VA + 6 * PAGE);
	int r = fn();
	report("pxn fetch", TEST_VA + 6 * PAGE);
	printf("pxn fetch result: %d\n", r);

	/* TLB maintenance: remap page 7 to another frame. */
	printf("remap before: 0x%lx\n", rd(TEST_VA + 7 * PAGE));
	l3[7] = page_desc(pg[1], 0);
	__asm__ volatile("dsb ishst\n\ttlbi vae1, %0\n\tdsb ish\n\tisb"
			 : : "r"((TEST_VA + 7 * PAGE) >> 12) : "memory");
	printf("remap after tlbi vae1: 0x%lx\n", rd(TEST_VA + 7 * PAGE));
	l3[7] = page_desc(pg[2], 0);
	tlbi_all();
	printf("remap after tlbi vmalle1: 0x%lx\n", rd(TEST_VA + 7 * PAGE));

	/* Address translation instruction. */
	show_par("at mapped", TEST_VA + 4 * PAGE + 0x123);
	show_par("at device", TEST_VA + 5 * PAGE);
	show_par("at unmapped l3", TEST_VA + 8 * PAGE);
	show_par("at unmapped l1", 0x80000000ul);

	/* Misaligned accesses with the MMU on: Normal memory allows them with
	 * SCTLR_EL1.A = 0; Device memory always faults (Arm ARM; QEMU does
	 * not, see README); SCTLR_EL1.A = 1 makes Normal fault too. */
	uint64_t u;
	__asm__ volatile("ldr %0, [%1]" : "=r"(u) : "r"(TEST_VA + 4 * PAGE + 3));
	printf("normal unaligned: 0x%lx (faults %d)\n", u, faults);
	__asm__ volatile("adr x9, 1f\n\tstr x9, [%1]\n\tldr %0, [%2]\n1:\tstr xzr, [%1]"
			 : "=&r"(u) : "r"(&recover), "r"(TEST_VA + 5 * PAGE + 4) : "x9", "memory");
	report("device unaligned", TEST_VA + 5 * PAGE);
	WRITE_SYSREG(sctlr_el1, READ_SYSREG(sctlr_el1) | 2);
	ISB();
	__asm__ volatile("adr x9, 1f\n\tstr x9, [%1]\n\tldr %w0, [%2]\n1:\tstr xzr, [%1]"
			 : "=&r"(u) : "r"(&recover), "r"(TEST_VA + 4 * PAGE + 2) : "x9", "memory");
	report("a1 normal unaligned", TEST_VA + 4 * PAGE);
	WRITE_SYSREG(sctlr_el1, READ_SYSREG(sctlr_el1) & ~2ul);
	ISB();

	WRITE_SYSREG(sctlr_el1, sctlr);
	ISB();
	printf("mmu: off again, sctlr.m %lu; done\n", READ_SYSREG(sctlr_el1) & 1);
	return 0;
}
