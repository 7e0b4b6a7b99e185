/* The smallest guest: a greeting on the PL011. Built as hello.elf and, with
 * RAW_IMAGE, as hello.bin, which also checks that x0 points at a DTB (QEMU
 * passes one to raw images only). */
#include "rt.h"

int main(void)
{
	puts("Hello from moat aarch64 guest!\n");
#ifdef RAW_IMAGE
	if (dtb())
		printf("dtb: x0 points at a DTB (magic 0x%08x)\n", FDT_MAGIC);
	else
		puts("dtb: no DTB at x0\n");
#endif
	return 0;
}
