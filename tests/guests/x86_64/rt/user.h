/* Optional runtime part (rt/user.c): run a function in ring 3. */
#ifndef MOAT_USER_H
#define MOAT_USER_H

/* Marks the boot identity map of the first GiB user-accessible, loads a GDT
 * with user segments and a TSS (exceptions from ring 3 go to the IDT of
 * trap_init(), which must have been called, on a stack of their own), and
 * enters fn in ring 3 (CS 0x2b, SS 0x23) with IOPL 0. Port I/O from ring 3
 * then raises #GP, and the #GP handler installed here performs the `in` or
 * `out` and resumes after it: the serial console and exit() keep working,
 * the same way under every accelerator (nested KVM on the reference host
 * ignores IOPL 3 in ring 3). fn must not return: it ends with exit(). */
__attribute__((noreturn)) void user_enter(void (*fn)(void));

#endif
