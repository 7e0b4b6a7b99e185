/* SSE/SSE2 operations for sse.c, one function each:
 *   void op(const void *a, const void *b, void *out)    (SysV: rdi, rsi, rdx)
 * xmm0 = *a, xmm1 = *b (16 bytes each, 16-aligned), then `insn xmm1, xmm0`
 * and *out = xmm0. Conversions to integers store the 64-bit result;
 * comparisons that set RFLAGS store RFLAGS. Kept in assembly so that the
 * C code stays free of SSE (the runtime is built -mgeneral-regs-only). */
	.text
	.code64

	.macro xop name, insn
	.globl sse_\name
sse_\name:
	movaps (%rdi), %xmm0
	movaps (%rsi), %xmm1
	\insn %xmm1, %xmm0
	movaps %xmm0, (%rdx)
	ret
	.endm

	/* integer result from xmm1 (b) */
	.macro iop name, insn
	.globl sse_\name
sse_\name:
	movaps (%rsi), %xmm1
	\insn %xmm1, %rax
	movq %rax, (%rdx)
	movq $0, 8(%rdx)
	ret
	.endm

	/* xmm0 = a with its low element converted from the integer *b */
	.macro cvtop name, insn
	.globl sse_\name
sse_\name:
	movaps (%rdi), %xmm0
	movq (%rsi), %rax
	\insn %rax, %xmm0
	movaps %xmm0, (%rdx)
	ret
	.endm

	/* RFLAGS after comparing a with b */
	.macro fop name, insn
	.globl sse_\name
sse_\name:
	movaps (%rdi), %xmm0
	movaps (%rsi), %xmm1
	pushq $0x2
	popfq
	\insn %xmm1, %xmm0
	pushfq
	popq %rax
	/* Only the arithmetic flags: IF in ring 3 depends on the host (a
	 * user-mode host process and nested KVM show IF=1; the guest entered
	 * ring 3 with IF=0). */
	andq $0x8d5, %rax
	movq %rax, (%rdx)
	movq $0, 8(%rdx)
	ret
	.endm

	xop addss, addss
	xop subss, subss
	xop mulss, mulss
	xop divss, divss
	xop sqrtss, sqrtss
	xop minss, minss
	xop maxss, maxss
	xop cvtss2sd, cvtss2sd
	xop cmpltss, cmpltss
	xop cmpunordss, cmpunordss
	xop addps, addps
	xop mulps, mulps
	xop divps, divps
	xop sqrtps, sqrtps
	xop cvtps2dq, cvtps2dq
	xop cvttps2dq, cvttps2dq
	xop cvtdq2ps, cvtdq2ps
	xop cvtps2pd, cvtps2pd
	iop cvtss2si, cvtss2si
	iop cvttss2si, cvttss2si
	cvtop cvtsi2ss, cvtsi2ssq
	fop ucomiss, ucomiss
	fop comiss, comiss

	xop addsd, addsd
	xop subsd, subsd
	xop mulsd, mulsd
	xop divsd, divsd
	xop sqrtsd, sqrtsd
	xop minsd, minsd
	xop maxsd, maxsd
	xop cvtsd2ss, cvtsd2ss
	xop cmplesd, cmplesd
	xop addpd, addpd
	xop mulpd, mulpd
	xop divpd, divpd
	xop sqrtpd, sqrtpd
	xop cvtpd2ps, cvtpd2ps
	xop cvtpd2dq, cvtpd2dq
	iop cvtsd2si, cvtsd2si
	iop cvttsd2si, cvttsd2si
	cvtop cvtsi2sd, cvtsi2sdq
	fop ucomisd, ucomisd
	fop comisd, comisd

	/* divss with the result stored whether or not it faulted: for an
	 * unmasked exception (#XM); the handler resumes at sse_xm_resume. */
	.globl sse_xm_divss, sse_xm_fault, sse_xm_resume
sse_xm_divss:
	movaps (%rdi), %xmm0
	movaps (%rsi), %xmm1
sse_xm_fault:
	divss %xmm1, %xmm0
sse_xm_resume:
	movaps %xmm0, (%rdx)
	ret

	.globl sse_ldmxcsr, sse_stmxcsr
sse_ldmxcsr:                        /* void sse_ldmxcsr(const uint32_t *) */
	ldmxcsr (%rdi)
	ret
sse_stmxcsr:                        /* void sse_stmxcsr(uint32_t *) */
	stmxcsr (%rdi)
	ret
	.section .note.GNU-stack, "", @progbits
