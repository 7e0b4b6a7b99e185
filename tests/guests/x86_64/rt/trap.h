/* Optional runtime part: a 64-bit IDT whose 256 gates all lead to C
 * handlers (rt/trap.c, rt/trap-stubs.S). Linked only into the guests that
 * use it (see TRAP_OBJS in the Makefile). */
#ifndef MOAT_TRAP_H
#define MOAT_TRAP_H

#include <stdint.h>

/* What the common stub saves, in memory order from the frame pointer up. A
 * handler may change any field; the stub restores all of them and returns
 * with iretq (so changing rip resumes elsewhere, leaving it retries). */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector;
	uint64_t error;           /* 0 for vectors without an error code */
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*trap_handler)(struct trap_frame *);

/* Loads an IDT with interrupt gates (DPL 3, so `int n` works) for all 256
 * vectors. Vectors without a handler print one line and exit(0x7e). */
void trap_init(void);
void trap_set(unsigned vector, trap_handler h);

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}
static inline uint64_t read_cr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}
static inline void write_cr0(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory");
}
static inline void write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}
static inline void write_cr4(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory");
}
static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v),
			 "d"((uint32_t)(v >> 32)) : "memory");
}
static inline void invlpg(const volatile void *p)
{
	__asm__ volatile("invlpg (%0)" : : "r"(p) : "memory");
}

#define MSR_EFER 0xc0000080u
#define EFER_NXE (1u << 11)
#define CR0_WP   (1u << 16)

#endif
