/* Exits with the debug-exit value given as exit=N (decimal) on the kernel
 * command line, default 42. */
#include "rt.h"

int main(void)
{
	const char *v = cmdline_get("exit");
	uint32_t code = 42;

	if (v && *v >= '0' && *v <= '9') {
		code = 0;
		while (*v >= '0' && *v <= '9')
			code = code * 10 + (uint32_t)(*v++ - '0');
	}
	printf("exiting with %u\n", code);
	return (int)code;
}
