/* Resets the machine through the method named on the command line:
 * reset=kbd (0xfe to the i8042 command port 0x64) or reset=cf9 (0x06 to the
 * reset control register 0xcf9, the default). */
#include "rt.h"

int main(void)
{
	const char *method = cmdline_get("reset");

	if (method && method[0] == 'k') {
		puts("resetting via kbd\n");
		outb(0x64, 0xfe);
	} else {
		puts("resetting via cf9\n");
		outb(0xcf9, 0x06);
	}
	puts("reset did not happen\n");
	return 3;
}
