/* Self-modifying code with the architected maintenance sequence (dc cvau,
 * dsb ish, ic ivau, dsb ish, isb): a `mov w0, #imm; ret` stub written into
 * a buffer and called, then patched with new immediates between calls and
 * in a loop; a stub overwritten with different code; an instruction
 * patched in the code that runs right after the patching stores (no
 * branch in between, only the barriers); and a two-instruction stub whose
 * second instruction is patched while the first is unchanged. */
#include "rt.h"

static uint32_t code[64] __attribute__((aligned(64)));

#define MOVZ_W0(imm) (0x52800000u | ((uint32_t)(imm) << 5))
#define ADD_W0_W0(imm) (0x11000000u | ((uint32_t)(imm) << 10)) /* add w0, w0, #imm */
#define RET 0xd65f03c0u

static void sync_code(void *p, unsigned bytes)
{
	for (uintptr_t a = (uintptr_t)p & ~63ul; a < (uintptr_t)p + bytes; a += 64)
		__asm__ volatile("dc cvau, %0" : : "r"(a) : "memory");
	__asm__ volatile("dsb ish" ::: "memory");
	for (uintptr_t a = (uintptr_t)p & ~63ul; a < (uintptr_t)p + bytes; a += 64)
		__asm__ volatile("ic ivau, %0" : : "r"(a) : "memory");
	__asm__ volatile("dsb ish\n\tisb" ::: "memory");
}

static uint32_t call(void)
{
	return ((uint32_t(*)(void))code)();
}

/* Patches the `movz w0, #0` at label 1 (in this very code) to `movz w0,
 * #imm` and then runs it: the store, the maintenance and the patched
 * instruction are straight-line. */
static uint32_t patch_inline(uint32_t imm)
{
	uint32_t r;
	__asm__ volatile("adr x9, 1f\n\t"
			 "str %w1, [x9]\n\t"
			 "dc cvau, x9\n\t"
			 "dsb ish\n\t"
			 "ic ivau, x9\n\t"
			 "dsb ish\n\t"
			 "isb\n"
			 "1: movz w0, #0\n\t"
			 "mov %w0, w0"
			 : "=r"(r)
			 : "r"(MOVZ_W0(imm))
			 : "x0", "x9", "memory");
	return r;
}

int main(void)
{
	puts("smc: start\n");
	code[0] = MOVZ_W0(0x11);
	code[1] = RET;
	sync_code(code, 8);
	printf("stub: 0x%x\n", call());
	code[0] = MOVZ_W0(0x2222);
	sync_code(code, 4);
	printf("patched: 0x%x\n", call());

	uint32_t sum = 0;
	for (uint32_t i = 0; i < 100; i++) {
		code[0] = MOVZ_W0(i * 7);
		sync_code(code, 4);
		sum += call();
	}
	printf("loop of 100 patches: sum %u\n", sum);

	/* Different code: a sequence of adds over the old stub. */
	code[0] = MOVZ_W0(1);
	for (int i = 1; i <= 10; i++)
		code[i] = ADD_W0_W0(i);
	code[11] = RET;
	sync_code(code, 48);
	printf("rewritten: %u\n", call());
	/* Only the fifth add changes. */
	code[5] = ADD_W0_W0(100);
	sync_code(code + 5, 4);
	printf("one insn of many: %u\n", call());
	/* The ret moves earlier: the tail is no longer run. */
	code[3] = RET;
	sync_code(code + 3, 4);
	printf("early ret: %u\n", call());

	/* The image's own code (RWX with the MMU off) patched in line. */
	printf("inline: 0x%x\n", patch_inline(0x1234));
	printf("inline again: 0x%x\n", patch_inline(0xbeef));
	uint32_t s2 = 0;
	for (uint32_t i = 1; i <= 50; i++)
		s2 += patch_inline(i);
	printf("inline loop: sum %u\n", s2);
	puts("smc: done\n");
	return 0;
}
