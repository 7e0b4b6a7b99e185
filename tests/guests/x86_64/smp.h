/* Constants shared by smp.c and smp-tramp.S. */
#ifndef MOAT_SMP_H
#define MOAT_SMP_H

/* Where the BSP copies the real-mode trampoline: a page below 1 MiB that
 * neither moat (boot structures in 0-0x9000) nor QEMU/qboot (start info
 * and command line, checked at run time) use. The STARTUP IPI vector is its
 * page number. */
#define AP_TRAMP_BASE 0x9000
#define AP_SIPI_VECTOR (AP_TRAMP_BASE >> 12)

#define MAX_CPUS 16
#define AP_STACK_SHIFT 12   /* 4 KiB per AP */

#endif
