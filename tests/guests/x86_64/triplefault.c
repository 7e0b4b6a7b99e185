/* Loads an empty IDT (limit 0) and executes ud2: #UD -> #GP -> #DF ->
 * triple fault (shutdown). */
#include "rt.h"

struct __attribute__((packed)) idtr {
	uint16_t limit;
	uint64_t base;
};

int main(void)
{
	static const struct idtr empty = { 0, 0 };

	puts("about to triple fault\n");
	__asm__ volatile("lidt %0\n\tud2" : : "m"(empty));
	puts("still alive after ud2?!\n");
	return 0x7f;
}
