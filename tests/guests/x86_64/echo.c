/* Serial input: prints "ready", then echoes each received byte upper-cased
 * until it reads 'q', and exits with debug-exit value 0. Used to test the
 * host-to-guest direction of the UART and, since it waits forever for input,
 * to test that Ctrl-C ends the VMM. */
#include "rt.h"

static int serial_getc(void)
{
	/* LSR bit 0: data ready. Each poll is a port read, i.e. a VM exit, not a
	 * busy loop inside the guest. */
	while (!(inb(COM1_PORT + 5) & 0x01))
		;
	return inb(COM1_PORT);
}

int main(void)
{
	puts("ready\n");
	for (;;) {
		int c = serial_getc();
		if (c == 'q')
			break;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		printf("%c", c);
	}
	puts("bye\n");
	return 0;
}
