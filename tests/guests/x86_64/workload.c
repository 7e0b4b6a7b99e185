/* A compute-bound workload in the spirit of CoreMark's kernels: linked-list
 * walking and reversal, integer matrix multiply, a digit-parsing state
 * machine and CRC-16, repeated `iterations=N` times (command line; default
 * 1000). It prints one checksum line, so a translator that gets anything
 * wrong shows it. Built for the guest and for the host (-DHOST, argv[1] = N),
 * so benches/vs-qemu.sh can compare moat's TCG, QEMU's TCG and native speed on
 * the same C code. */
#ifdef HOST
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#else
#include "rt.h"
#endif

#define LIST 64
#define MAT 12

struct node {
	struct node *next;
	uint32_t value;
};

static struct node nodes[LIST];
static int32_t ma[MAT][MAT], mb[MAT][MAT], mc[MAT][MAT];
static const char input[] = "12345,-678,9.25e3,+42,0x1f,777,-0.5,abc,31337,8e-2,";

static uint16_t crc16(uint16_t crc, uint32_t value, int bytes)
{
	for (int i = 0; i < bytes; i++) {
		crc ^= (uint8_t)(value >> (8 * i));
		for (int b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

static struct node *list_reverse(struct node *head)
{
	struct node *prev = 0;
	while (head) {
		struct node *next = head->next;
		head->next = prev;
		prev = head;
		head = next;
	}
	return prev;
}

static uint32_t list_work(uint32_t seed)
{
	struct node *head = &nodes[0];
	for (int i = 0; i < LIST; i++) {
		nodes[i].next = i + 1 < LIST ? &nodes[i + 1] : 0;
		seed = seed * 1103515245u + 12345u;
		nodes[i].value = seed >> 8;
	}
	head = list_reverse(head);
	uint32_t sum = 0, max = 0;
	for (struct node *n = head; n; n = n->next) {
		sum += n->value ^ (sum << 3);
		if (n->value > max)
			max = n->value;
	}
	head = list_reverse(head);
	return sum ^ max ^ head->value;
}

static uint32_t matrix_work(uint32_t seed)
{
	for (int i = 0; i < MAT; i++)
		for (int j = 0; j < MAT; j++) {
			seed = seed * 1664525u + 1013904223u;
			ma[i][j] = (int32_t)(seed >> 20) - 2048;
			mb[i][j] = (int32_t)(seed & 0xfff) - 2048;
		}
	for (int i = 0; i < MAT; i++)
		for (int j = 0; j < MAT; j++) {
			int32_t acc = 0;
			for (int k = 0; k < MAT; k++)
				acc += ma[i][k] * mb[k][j];
			mc[i][j] = acc;
		}
	uint32_t h = 0;
	for (int i = 0; i < MAT; i++)
		for (int j = 0; j < MAT; j++)
			h = (h * 31) ^ (uint32_t)(mc[i][j] >> 2);
	return h;
}

enum state { START, INT, FRAC, EXP, HEX, BAD };

static uint32_t state_work(void)
{
	uint32_t counts[6] = { 0 };
	enum state s = START;
	for (const char *p = input; *p; p++) {
		char c = *p;
		if (c == ',') {
			counts[s]++;
			s = START;
			continue;
		}
		switch (s) {
		case START:
			s = (c >= '0' && c <= '9') || c == '+' || c == '-' ? INT : BAD;
			break;
		case INT:
			if (c == '.')
				s = FRAC;
			else if (c == 'e')
				s = EXP;
			else if (c == 'x')
				s = HEX;
			else if (c < '0' || c > '9')
				s = BAD;
			break;
		case FRAC:
			if (c == 'e')
				s = EXP;
			else if (c < '0' || c > '9')
				s = BAD;
			break;
		case EXP:
			if ((c < '0' || c > '9') && c != '-' && c != '+')
				s = BAD;
			break;
		case HEX:
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				s = BAD;
			break;
		case BAD:
			break;
		}
	}
	uint32_t h = 0;
	for (int i = 0; i < 6; i++)
		h = h * 7 + counts[i];
	return h;
}

static uint32_t run(uint32_t iterations)
{
	uint16_t crc = 0;
	for (uint32_t i = 0; i < iterations; i++) {
		crc = crc16(crc, list_work(i), 4);
		crc = crc16(crc, matrix_work(i * 7 + 1), 4);
		crc = crc16(crc, state_work() + i, 4);
	}
	return crc;
}

#ifdef HOST
int main(int argc, char **argv)
{
	uint32_t iterations = argc > 1 ? (uint32_t)strtoul(argv[1], 0, 10) : 1000;
	printf("workload: %u iterations, crc 0x%04x\n", iterations, run(iterations));
	return 0;
}
#else
int main(void)
{
	const char *v = cmdline_get("iterations");
	uint32_t iterations = 1000;
	if (v && *v >= '0' && *v <= '9') {
		iterations = 0;
		while (*v >= '0' && *v <= '9')
			iterations = iterations * 10 + (uint32_t)(*v++ - '0');
	}
	printf("workload: %u iterations, crc 0x%04x\n", iterations, run(iterations));
	return 0;
}
#endif
