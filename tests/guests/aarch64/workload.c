/* A compute-bound benchmark guest: per iteration, a sieve over a small
 * bitmap, a 16x16 integer matrix product, a shell sort of 96 words, a
 * byte-wise CRC-32 and a binary-search sweep, all folded into one
 * checksum. The count is `iterations=N` from the DTB's bootargs (the raw
 * image under QEMU; an ELF has no DTB there), else 200. */
#include "rt.h"

#define MAT 16
#define SORTN 96
static uint32_t ma[MAT][MAT], mb[MAT][MAT], mc[MAT][MAT];
static uint32_t arr[SORTN];
static uint8_t sieve[1024];
static uint32_t crc_table[256];

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1664525u + 1013904223u;
	return *s;
}

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, unsigned n, uint32_t c)
{
	c = ~c;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static uint32_t primes(void)
{
	uint32_t count = 0;
	memset(sieve, 1, sizeof sieve);
	for (uint32_t i = 2; i < sizeof sieve; i++) {
		if (!sieve[i])
			continue;
		count++;
		for (uint32_t j = i * i; j < sizeof sieve; j += i)
			sieve[j] = 0;
	}
	return count;
}

static uint32_t matmul(uint32_t seed)
{
	for (int i = 0; i < MAT; i++)
		for (int j = 0; j < MAT; j++) {
			ma[i][j] = lcg(&seed) >> 20;
			mb[i][j] = lcg(&seed) >> 22;
		}
	for (int i = 0; i < MAT; i++)
		for (int j = 0; j < MAT; j++) {
			uint32_t s = 0;
			for (int k = 0; k < MAT; k++)
				s += ma[i][k] * mb[k][j];
			mc[i][j] = s;
		}
	return crc32((const uint8_t *)mc, sizeof mc, 0);
}

static uint32_t sort_search(uint32_t seed)
{
	for (int i = 0; i < SORTN; i++)
		arr[i] = lcg(&seed) % 100000;
	for (int gap = SORTN / 2; gap > 0; gap /= 2)
		for (int i = gap; i < SORTN; i++) {
			uint32_t v = arr[i];
			int j = i;
			for (; j >= gap && arr[j - gap] > v; j -= gap)
				arr[j] = arr[j - gap];
			arr[j] = v;
		}
	uint32_t found = 0;
	for (uint32_t key = 0; key < 100000; key += 997) {
		int lo = 0, hi = SORTN - 1;
		while (lo <= hi) {
			int mid = (lo + hi) / 2;
			if (arr[mid] < key)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		found = found * 31 + (uint32_t)lo;
	}
	return found ^ arr[0] ^ arr[SORTN - 1];
}

int main(void)
{
	uint64_t n = bootarg_u64("iterations", 200);
	uint32_t sum = 0;
	crc_init();
	for (uint64_t it = 0; it < n; it++) {
		uint32_t seed = (uint32_t)it * 2654435761u;
		sum = sum * 33 + primes();
		sum ^= matmul(seed);
		sum += sort_search(seed ^ sum);
	}
	printf("workload: %lu iterations, checksum 0x%08x\n", n, sum);
	return 0;
}
