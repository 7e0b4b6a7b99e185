/* Small integer workload with checksums. Builds both as a guest (with the
 * runtime) and as a Linux user program (-DHOST, `make check-host`) so the
 * expected output is computed by the host CPU as well.
 * Total work is kept well below 200k guest instructions. */
#ifdef HOST
#include <stdio.h>
#include <stdint.h>
#else
#include "rt.h"
#endif

#define N 256

static uint8_t buf[N];
static uint32_t words[64];
static uint8_t sieve[2000];

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t fnv1a(const uint8_t *p, unsigned n)
{
	uint32_t h = 0x811c9dc5u;
	while (n--) {
		h ^= *p++;
		h *= 0x01000193u;
	}
	return h;
}

static uint32_t crc32(const uint8_t *p, unsigned n)
{
	uint32_t c = 0xffffffffu;
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

int main(void)
{
	uint32_t s = 0x12345678u, h;
	uint64_t s64 = 42, acc64 = 0;
	unsigned i, j, primes = 0;
	uint32_t sdiv = 0;

	/* xorshift32: 1000 steps, fill a byte buffer on the way */
	for (i = 0; i < 1000; i++) {
		uint32_t x = xorshift32(&s);
		if (i < N)
			buf[i] = (uint8_t)(x >> 24);
	}
	printf("xorshift32: 0x%08x\n", s);

	printf("fnv1a: 0x%08x\n", fnv1a(buf, N));
	printf("crc32-check: 0x%08x\n", crc32((const uint8_t *)"123456789", 9));
	printf("crc32: 0x%08x\n", crc32(buf, N));

	/* insertion sort of 64 words, then fold order-sensitively */
	for (i = 0; i < 64; i++)
		words[i] = xorshift32(&s);
	for (i = 1; i < 64; i++) {
		uint32_t v = words[i];
		for (j = i; j > 0 && words[j - 1] > v; j--)
			words[j] = words[j - 1];
		words[j] = v;
	}
	h = 0;
	for (i = 0; i < 64; i++)
		h = (h << 5 | h >> 27) ^ words[i];
	printf("sort: 0x%08x min=0x%08x max=0x%08x\n", h, words[0], words[63]);

	/* 64-bit multiply/shift mixing */
	for (i = 0; i < 500; i++)
		acc64 ^= splitmix64(&s64) + i;
	printf("splitmix64: 0x%016lx\n", (unsigned long)acc64);

	/* signed/unsigned division and remainder */
	for (i = 1; i < 200; i++) {
		int32_t a = (int32_t)(words[i & 63] ^ (i * 2654435761u));
		sdiv += (uint32_t)(a / (int32_t)(i * 7 - 500) + a % (int32_t)(i + 3));
	}
	printf("divmod: 0x%08x\n", sdiv);

	/* sieve of Eratosthenes below 2000 */
	for (i = 2; i < 2000; i++) {
		if (sieve[i])
			continue;
		primes++;
		for (j = i * i; j < 2000; j += i)
			sieve[j] = 1;
	}
	printf("primes<2000: %u\n", primes);
	return 0;
}
