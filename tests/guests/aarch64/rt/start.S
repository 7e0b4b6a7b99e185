/* Entry for the aarch64 guests: EL1h, MMU off, x0 = DTB address (raw
 * binary under QEMU) or 0 (ELF under QEMU). Brings the CPU to a known
 * state, clears .bss and calls rt_start(x0). */
	.section .text.start, "ax"
	.global _start
_start:
	mov	x19, x0
	/* Mask every interrupt until a guest asks for them. */
	msr	daifset, #0xf
	/* SCTLR_EL1: the Armv8.0 RES1 bits (11, 20, 22, 23, 28, 29), nTWI and
	 * nTWE (wfi/wfe not trapped from EL0), SA and SA0 (SP alignment
	 * checks). MMU, caches and alignment checks off. Written explicitly
	 * so the guests do not depend on the VMM's reset value. */
	ldr	x1, =0x30d50818
	msr	sctlr_el1, x1
	/* FP/SIMD usable at EL1 and EL0 (CPACR_EL1.FPEN = 0b11). */
	mov	x1, #(3 << 20)
	msr	cpacr_el1, x1
	adr	x1, rt_vectors
	msr	vbar_el1, x1
	isb
	ldr	x1, =__stack_top
	mov	sp, x1
	/* Zero .bss; it is 16-byte aligned and sized. */
	ldr	x1, =__bss_start
	ldr	x2, =__bss_end
1:	cmp	x1, x2
	b.hs	2f
	stp	xzr, xzr, [x1], #16
	b	1b
2:	mov	x0, x19
	bl	rt_start
	/* rt_start does not return; if it does, power off. */
	mov	x0, #0
	bl	exit
3:	wfi
	b	3b
	.ltorg
