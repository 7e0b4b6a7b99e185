/* Halts with interrupts disabled after printing a line: the VMM should end the
 * run as "halted" (status 0) rather than wait forever. */
#include "rt.h"

int main(void)
{
	puts("halting\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}
