/* Freestanding runtime for the aarch64 test guests (QEMU `virt` map). */
#ifndef MOAT_A64_RT_H
#define MOAT_A64_RT_H

#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>

#define PL011_BASE 0x09000000ul
#define GICD_BASE  0x08000000ul
#define GICC_BASE  0x08010000ul
#define PSCI_SYSTEM_OFF 0x84000008ul
#define FDT_MAGIC 0xd00dfeedu

/* Saved by rt/vectors.S on every exception; the layout is fixed there. */
struct trap_frame {
	uint64_t x[31];
	uint64_t elr;
	uint64_t spsr;
	uint64_t esr;
	uint64_t far;
	uint64_t vector; /* 0-15: the entry's index in the table */
};

/* Vector indexes: the group (sp0, spx, lower a64, lower a32) times 4 plus
 * the kind (sync, irq, fiq, serror). */
#define VEC_KIND(v) ((v) & 3)
#define VEC_GROUP(v) ((v) >> 2)
#define VEC_SYNC 0
#define VEC_IRQ 1

#define ESR_EC(e) (((e) >> 26) & 0x3f)
#define ESR_ISS(e) ((e) & 0x1ffffff)

/* A handler for every exception; without one, an exception prints
 * `unexpected exception: ...` and powers off. */
typedef void (*trap_fn)(struct trap_frame *f);
void trap_set(trap_fn fn);

/* The address x0 held at entry (the DTB under QEMU for a raw image). */
extern uint64_t boot_x0;

int main(void);
void exit(int code) __attribute__((noreturn));
void putc(char c);
void puts(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The DTB from x0, if x0 points at one (magic checked); else NULL. */
const void *dtb(void);
/* /chosen/bootargs from the DTB, or NULL. */
const char *dtb_bootargs(void);
/* A decimal `key=N` token from the bootargs; `def` if absent. */
uint64_t bootarg_u64(const char *key, uint64_t def);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);

static inline uint32_t mmio_read32(uint64_t a)
{
	return *(volatile uint32_t *)a;
}

static inline void mmio_write32(uint64_t a, uint32_t v)
{
	*(volatile uint32_t *)a = v;
}

#define READ_SYSREG(r) ({ uint64_t __v; __asm__ volatile("mrs %0, " #r : "=r"(__v)); __v; })
#define WRITE_SYSREG(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((uint64_t)(v)) : "memory")
#define ISB() __asm__ volatile("isb" ::: "memory")
#define DSB(o) __asm__ volatile("dsb " #o ::: "memory")

#endif
