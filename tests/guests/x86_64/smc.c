/* Self-modifying code. Code blobs (position-independent, below) are copied
 * into a writable and executable buffer and run there:
 *  - a `mov $imm32, %eax; ret` function whose immediate is patched between
 *    calls, several times;
 *  - the same buffer overwritten with different code (by C stores and by
 *    `rep movsb`);
 *  - an instruction that straddles a page boundary, patched on its second
 *    page only;
 *  - code patched through a second virtual mapping of its page (the way
 *    JITs with W^X double mappings do), run through either mapping;
 *  - a loop that patches the instruction right after a `jmp` to it (the
 *    architecturally portable way), and one that patches the very next
 *    instruction with no branch in between (real CPUs since the P6 see the
 *    new bytes; so must an emulator).
 * Also builds as a Linux program (-DHOST, `make check-host`), which prints
 * what the host CPU computes: expected/smc.out. */
#ifdef HOST
#define _GNU_SOURCE                     /* memfd_create */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#else
#include "rt.h"
#endif

__asm__(".pushsection .rodata\n"
	/* uint32_t f(void) { return 0x11111111; } */
	".globl blob_imm, blob_imm_end\n"
	"blob_imm:\n\t"
	".byte 0xb8\n\t.long 0x11111111\n\t"
	"ret\n"
	"blob_imm_end:\n"
	/* uint32_t f(uint32_t x) { return x * 3 + 1; } */
	".globl blob_mul3, blob_mul3_end\n"
	"blob_mul3:\n\t"
	"lea 1(%rdi,%rdi,2), %eax\n\t"
	"ret\n"
	"blob_mul3_end:\n"
	/* uint32_t f(uint32_t x) { return ~x; } */
	".globl blob_not, blob_not_end\n"
	"blob_not:\n\t"
	"mov %edi, %eax\n\t"
	"not %eax\n\t"
	"ret\n"
	"blob_not_end:\n"
	/* uint32_t f(uint32_t n): for i < n, patch the imm32 of the mov at 3:
	 * with i * 0x9e3779b1, jmp to it, and fold what it loaded. */
	".globl blob_patch_jmp, blob_patch_jmp_end\n"
	"blob_patch_jmp:\n\t"
	"xor %r8d, %r8d\n\t"
	"xor %ecx, %ecx\n"
	"1:\t"
	"lea 3f(%rip), %rdx\n\t"
	"imul $0x9e3779b1, %ecx, %esi\n\t"
	"mov %esi, 1(%rdx)\n\t"
	"jmp 3f\n"
	"3:\t.byte 0xb8\n\t.long 0\n\t"
	"imul $31, %r8d, %r8d\n\t"
	"add %eax, %r8d\n\t"
	"inc %ecx\n\t"
	"cmp %edi, %ecx\n\t"
	"jb 1b\n\t"
	"mov %r8d, %eax\n\t"
	"ret\n"
	"blob_patch_jmp_end:\n"
	/* The same without the jmp: the store patches the next instruction. */
	".globl blob_patch_next, blob_patch_next_end\n"
	"blob_patch_next:\n\t"
	"xor %r8d, %r8d\n\t"
	"xor %ecx, %ecx\n"
	"1:\t"
	"lea 3f(%rip), %rdx\n\t"
	"imul $0x9e3779b1, %ecx, %esi\n\t"
	"mov %esi, 1(%rdx)\n"
	"3:\t.byte 0xb8\n\t.long 0\n\t"
	"imul $31, %r8d, %r8d\n\t"
	"add %eax, %r8d\n\t"
	"inc %ecx\n\t"
	"cmp %edi, %ecx\n\t"
	"jb 1b\n\t"
	"mov %r8d, %eax\n\t"
	"ret\n"
	"blob_patch_next_end:\n"
	".popsection");

extern const uint8_t blob_imm[], blob_imm_end[], blob_mul3[], blob_mul3_end[],
	blob_not[], blob_not_end[], blob_patch_jmp[], blob_patch_jmp_end[],
	blob_patch_next[], blob_patch_next_end[];

typedef uint32_t (*fn0)(void);
typedef uint32_t (*fn1)(uint32_t);

#ifdef HOST
static uint8_t *code, *alias;
#else
static uint8_t code_buf[3 * 4096] __attribute__((aligned(4096)));
static uint8_t *const code = code_buf;
static uint8_t *alias;
#endif

static void put(size_t off, const uint8_t *start, const uint8_t *end)
{
	volatile uint8_t *d = code + off;
	const uint8_t *s;

	for (s = start; s < end; s++)
		*d++ = *s;
}

static void patch32(size_t off, uint32_t v)
{
	volatile uint8_t *d = code + off;

	d[0] = (uint8_t)v;
	d[1] = (uint8_t)(v >> 8);
	d[2] = (uint8_t)(v >> 16);
	d[3] = (uint8_t)(v >> 24);
}

static void patch32_at(uint8_t *base, size_t off, uint32_t v)
{
	volatile uint8_t *d = base + off;

	d[0] = (uint8_t)v;
	d[1] = (uint8_t)(v >> 8);
	d[2] = (uint8_t)(v >> 16);
	d[3] = (uint8_t)(v >> 24);
}

static void copy_rep_movsb(size_t off, const uint8_t *start, const uint8_t *end)
{
	void *d = code + off;
	const void *s = start;
	size_t n = (size_t)(end - start);

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

int main(void)
{
	unsigned i;
	uint32_t sum;

#ifdef HOST
	{
		int fd = memfd_create("smc", 0);

		if (fd < 0 || ftruncate(fd, 3 * 4096))
			return 1;
		code = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_SHARED, fd, 0);
		alias = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_SHARED, fd, 0);
		if (code == MAP_FAILED || alias == MAP_FAILED)
			return 1;
	}
#else
	{
		/* PML4 slot 1 = slot 0: everything again at +512 GiB */
		uint64_t cr3, *pml4;

		__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
		pml4 = (uint64_t *)(uintptr_t)(cr3 & ~0xfffull);
		pml4[1] = pml4[0];
		alias = (uint8_t *)((uintptr_t)code + (1ull << 39));
	}
#endif
	/* Patch an immediate between calls. */
	put(0, blob_imm, blob_imm_end);
	printf("imm: 0x%08x\n", ((fn0)code)());
	patch32(1, 0x22222222);
	printf("imm patched: 0x%08x\n", ((fn0)code)());
	sum = 0;
	for (i = 0; i < 5; i++) {
		patch32(1, 0x1000 * i + 0x33);
		sum = sum * 31 + ((fn0)code)();
	}
	printf("imm patched in a loop: 0x%08x\n", sum);

	/* Overwrite with different code. */
	put(0, blob_mul3, blob_mul3_end);
	printf("mul3(5): 0x%08x\n", ((fn1)code)(5));
	put(0, blob_not, blob_not_end);
	printf("not(5): 0x%08x\n", ((fn1)code)(5));
	copy_rep_movsb(0, blob_mul3, blob_mul3_end);
	printf("rep movsb, mul3(7): 0x%08x\n", ((fn1)code)(7));

	/* An instruction across a page boundary: b8 at 0xfff, imm32 on the
	 * next page; patch only the next page. */
	put(4095, blob_imm, blob_imm_end);
	printf("straddling: 0x%08x\n", ((fn0)(code + 4095))());
	patch32(4096, 0x44444444);
	printf("straddling, 2nd page patched: 0x%08x\n",
	       ((fn0)(code + 4095))());

	/* Two mappings of one page: patch through one, run through the other. */
	put(8192, blob_imm, blob_imm_end);
	printf("alias: 0x%08x\n", ((fn0)(code + 8192))());
	patch32_at(alias, 8193, 0x55555555);
	printf("alias, patched through the alias: 0x%08x\n",
	       ((fn0)(code + 8192))());
	printf("alias, run through the alias: 0x%08x\n", ((fn0)(alias + 8192))());
	patch32_at(code, 8193, 0x66666666);
	printf("alias, patched through the original: 0x%08x\n",
	       ((fn0)(alias + 8192))());

	/* Code that patches itself. */
	put(8192, blob_patch_jmp, blob_patch_jmp_end);
	printf("patch then jmp: 0x%08x\n", ((fn1)(code + 8192))(10));
	put(8192, blob_patch_next, blob_patch_next_end);
	printf("patch next insn: 0x%08x\n", ((fn1)(code + 8192))(10));
	return 0;
}
