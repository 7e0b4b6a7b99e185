#include "rt.h"

int main(void)
{
	puts("Hello from moat guest!\n");
	return 0;
}
