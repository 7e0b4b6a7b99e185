/* A polling virtio-mmio (version 2) driver for the virt board's 32
 * transport slots (0x0a000000 + n * 0x200). QEMU fills the slots from the
 * top and moat from slot 0, so the devices are listed by type and nothing
 * printed depends on a slot or an address. virtio-rng: one 64-byte buffer.
 * virtio-blk: capacity, read sector 0, write and read back sector 1, GET_ID,
 * and a read past the end (IOERR). One queue of 8 entries per device, in
 * .bss; completions are found by polling the used ring with a deadline.
 *
 * The MMU is off, so every access is Device memory: registers are read and
 * written 32 bits at a time (the transport requires it), ring fields are
 * naturally aligned, and buffers are copied a byte at a time. */
#include "rt.h"

#define VIRTIO_BASE 0x0a000000ul
#define VIRTIO_STRIDE 0x200ul
#define VIRTIO_SLOTS 32

/* Transport registers (virtio 1.x, 4.2.2). */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEVICE_FEATURES 0x010
#define R_DEVICE_FEATURES_SEL 0x014
#define R_DRIVER_FEATURES 0x020
#define R_DRIVER_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC_LOW 0x080
#define R_QUEUE_DESC_HIGH 0x084
#define R_QUEUE_DRIVER_LOW 0x090
#define R_QUEUE_DRIVER_HIGH 0x094
#define R_QUEUE_DEVICE_LOW 0x0a0
#define R_QUEUE_DEVICE_HIGH 0x0a4
#define R_CONFIG_GENERATION 0x0fc
#define R_CONFIG 0x100

#define VIRTIO_MAGIC 0x74726976u /* "virt" */

#define S_ACKNOWLEDGE 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_FAILED 128u

#define ID_NET 1
#define ID_BLK 2
#define ID_CONSOLE 3
#define ID_RNG 4

#define QSIZE 8
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_GET_ID 8
#define BLK_SECTOR 512
#define BLK_ID_BYTES 20

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[QSIZE];
	uint16_t used_event;
};

struct used_elem {
	uint32_t id;
	uint32_t len;
};

struct used {
	uint16_t flags;
	uint16_t idx;
	struct used_elem ring[QSIZE];
	uint16_t avail_event;
};

/* The split virtqueue's three parts, with the spec's alignments. */
struct vq {
	struct desc desc[QSIZE] __attribute__((aligned(16)));
	struct avail avail __attribute__((aligned(2)));
	struct used used __attribute__((aligned(4)));
	uint16_t next_avail;
	uint16_t last_used;
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct vq rng_vq, blk_vq;
static uint8_t rng_buf[64];
static struct blk_hdr blk_req;
static uint8_t blk_data[BLK_SECTOR];
static uint8_t blk_pattern[BLK_SECTOR];
static volatile uint8_t blk_status;

#define DMB(o) __asm__ volatile("dmb " #o ::: "memory")

static uint32_t rd(uint64_t base, uint32_t off)
{
	return mmio_read32(base + off);
}

static void wr(uint64_t base, uint32_t off, uint32_t v)
{
	mmio_write32(base + off, v);
}

static const char *type_name(uint32_t id)
{
	switch (id) {
	case ID_NET: return "net";
	case ID_BLK: return "blk";
	case ID_CONSOLE: return "console";
	case ID_RNG: return "rng";
	default: return NULL;
	}
}

/* The status handshake up to (not including) DRIVER_OK: reset, ACKNOWLEDGE,
 * DRIVER, VERSION_1 (feature 32) only, FEATURES_OK read back; then queue 0
 * with QSIZE entries and QueueReady. Returns 0 or prints why not. */
static int setup(uint64_t base, const char *name, struct vq *q)
{
	uint32_t st;
	int i;

	wr(base, R_STATUS, 0);
	for (i = 0; i < 1000 && rd(base, R_STATUS) != 0; i++)
		;
	if (rd(base, R_STATUS) != 0) {
		printf("%s: reset did not complete\n", name);
		return -1;
	}
	wr(base, R_STATUS, S_ACKNOWLEDGE);
	wr(base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER);

	wr(base, R_DEVICE_FEATURES_SEL, 1);
	if (!(rd(base, R_DEVICE_FEATURES) & 1)) {
		printf("%s: VIRTIO_F_VERSION_1 not offered\n", name);
		wr(base, R_STATUS, S_FAILED);
		return -1;
	}
	wr(base, R_DRIVER_FEATURES_SEL, 0);
	wr(base, R_DRIVER_FEATURES, 0);
	wr(base, R_DRIVER_FEATURES_SEL, 1);
	wr(base, R_DRIVER_FEATURES, 1);
	wr(base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	st = rd(base, R_STATUS);
	if (!(st & S_FEATURES_OK)) {
		printf("%s: FEATURES_OK not kept (status 0x%x)\n", name, st);
		wr(base, R_STATUS, S_FAILED);
		return -1;
	}

	wr(base, R_QUEUE_SEL, 0);
	if (rd(base, R_QUEUE_READY) != 0) {
		printf("%s: queue 0 ready before set-up\n", name);
		wr(base, R_STATUS, S_FAILED);
		return -1;
	}
	if (rd(base, R_QUEUE_NUM_MAX) < QSIZE) {
		printf("%s: queue 0 max %u < %u\n", name, rd(base, R_QUEUE_NUM_MAX), QSIZE);
		wr(base, R_STATUS, S_FAILED);
		return -1;
	}
	memset(q, 0, sizeof(*q));
	wr(base, R_QUEUE_NUM, QSIZE);
	wr(base, R_QUEUE_DESC_LOW, (uint32_t)(uintptr_t)q->desc);
	wr(base, R_QUEUE_DESC_HIGH, (uint32_t)((uintptr_t)q->desc >> 32));
	wr(base, R_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)&q->avail);
	wr(base, R_QUEUE_DRIVER_HIGH, (uint32_t)((uintptr_t)&q->avail >> 32));
	wr(base, R_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)&q->used);
	wr(base, R_QUEUE_DEVICE_HIGH, (uint32_t)((uintptr_t)&q->used >> 32));
	/* The ring memory must be zero before the device may look at it. */
	DSB(sy);
	wr(base, R_QUEUE_READY, 1);
	return 0;
}

static void driver_ok(uint64_t base)
{
	wr(base, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

/* Makes the chain starting at descriptor `head` available, notifies queue
 * 0, and polls the used ring for up to a second of the virtual counter.
 * Returns the used length, or -1 on timeout. */
static int64_t submit(uint64_t base, struct vq *q, uint16_t head)
{
	uint64_t freq = READ_SYSREG(cntfrq_el0);
	uint64_t start = READ_SYSREG(cntvct_el0);
	struct used_elem e;

	q->avail.ring[q->next_avail % QSIZE] = head;
	/* The ring entry before the index that publishes it. */
	DMB(sy);
	q->next_avail++;
	q->avail.idx = q->next_avail;
	/* The index before the notification. */
	DSB(sy);
	wr(base, R_QUEUE_NOTIFY, 0);

	for (;;) {
		if (*(volatile uint16_t *)&q->used.idx != q->last_used)
			break;
		if (freq == 0 || READ_SYSREG(cntvct_el0) - start > freq)
			return -1;
	}
	/* The used index before the element and the buffers it covers. */
	DMB(sy);
	e = q->used.ring[q->last_used % QSIZE];
	q->last_used++;
	wr(base, R_INTERRUPT_ACK, rd(base, R_INTERRUPT_STATUS));
	if (e.id != head)
		printf("virtio: used id %u, expected %u\n", e.id, head);
	return e.len;
}

static void set_desc(struct vq *q, int i, void *addr, uint32_t len, uint16_t flags)
{
	q->desc[i].addr = (uint64_t)(uintptr_t)addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = (uint16_t)(flags & DESC_F_NEXT ? i + 1 : 0);
}

static void test_rng(uint64_t base)
{
	int64_t n;
	int nonzero = 0;
	size_t i;

	if (setup(base, "rng", &rng_vq))
		return;
	driver_ok(base);
	memset(rng_buf, 0, sizeof(rng_buf));
	set_desc(&rng_vq, 0, rng_buf, sizeof(rng_buf), DESC_F_WRITE);
	n = submit(base, &rng_vq, 0);
	if (n < 0) {
		puts("rng: no completion\n");
		return;
	}
	printf("rng: %lld bytes\n", (long long)n);
	for (i = 0; i < sizeof(rng_buf); i++)
		nonzero |= rng_buf[i];
	puts(nonzero ? "rng: not all zero\n" : "rng: all zero\n");
}

/* One three-descriptor request: header, `len` bytes at `data` (written by
 * the device if `dev_writes`), status byte. Returns the status, or -1. */
static int blk_request(uint64_t base, uint32_t type, uint64_t sector, void *data, uint32_t len,
		       int dev_writes)
{
	blk_req.type = type;
	blk_req.reserved = 0;
	blk_req.sector = sector;
	blk_status = 0xff;
	set_desc(&blk_vq, 0, &blk_req, sizeof(blk_req), DESC_F_NEXT);
	set_desc(&blk_vq, 1, data, len, DESC_F_NEXT | (dev_writes ? DESC_F_WRITE : 0));
	set_desc(&blk_vq, 2, (void *)&blk_status, 1, DESC_F_WRITE);
	if (submit(base, &blk_vq, 0) < 0)
		return -1;
	return blk_status;
}

static uint64_t blk_capacity(uint64_t base)
{
	uint32_t gen, lo = 0, hi = 0;
	int i;

	/* A 64-bit field read in two halves: retry if the config changed. */
	for (i = 0; i < 100; i++) {
		gen = rd(base, R_CONFIG_GENERATION);
		lo = rd(base, R_CONFIG);
		hi = rd(base, R_CONFIG + 4);
		if (rd(base, R_CONFIG_GENERATION) == gen)
			break;
	}
	return (uint64_t)hi << 32 | lo;
}

static void test_blk(uint64_t base)
{
	uint64_t cap;
	uint8_t id[BLK_ID_BYTES + 1];
	int s, i;

	if (setup(base, "blk", &blk_vq))
		return;
	driver_ok(base);
	cap = blk_capacity(base);
	printf("blk: capacity %llu sectors\n", (unsigned long long)cap);

	memset(blk_data, 0, sizeof(blk_data));
	s = blk_request(base, BLK_T_IN, 0, blk_data, BLK_SECTOR, 1);
	if (s != 0) {
		printf("blk: read sector 0 status %d\n", s);
	} else {
		puts("blk: sector 0:");
		for (i = 0; i < 16; i++)
			printf(" %02x", blk_data[i]);
		puts("\n");
	}

	for (i = 0; i < BLK_SECTOR; i++)
		blk_pattern[i] = (uint8_t)(i * 7 + 0x5a);
	memcpy(blk_data, blk_pattern, BLK_SECTOR);
	s = blk_request(base, BLK_T_OUT, 1, blk_data, BLK_SECTOR, 0);
	if (s != 0) {
		printf("blk: write sector 1 status %d\n", s);
	} else {
		memset(blk_data, 0, sizeof(blk_data));
		s = blk_request(base, BLK_T_IN, 1, blk_data, BLK_SECTOR, 1);
		if (s != 0) {
			printf("blk: read back sector 1 status %d\n", s);
		} else {
			for (i = 0; i < BLK_SECTOR && blk_data[i] == blk_pattern[i]; i++)
				;
			if (i == BLK_SECTOR)
				puts("blk: write ok\n");
			else
				printf("blk: write mismatch at byte %d: %02x, expected %02x\n", i,
				       blk_data[i], blk_pattern[i]);
		}
	}

	memset(blk_data, 0, sizeof(blk_data));
	s = blk_request(base, BLK_T_GET_ID, 0, blk_data, BLK_ID_BYTES, 1);
	if (s != 0) {
		printf("blk: get id status %d\n", s);
	} else {
		/* Up to 20 bytes, NUL-padded only if shorter. */
		for (i = 0; i < BLK_ID_BYTES && blk_data[i]; i++)
			id[i] = blk_data[i];
		id[i] = 0;
		printf("blk: serial %s\n", (const char *)id);
	}

	s = blk_request(base, BLK_T_IN, cap, blk_data, BLK_SECTOR, 1);
	printf("blk: past end status %d\n", s);
}

int main(void)
{
	uint64_t base[VIRTIO_SLOTS];
	uint32_t type[VIRTIO_SLOTS];
	int n = 0, i, j;

	for (i = 0; i < VIRTIO_SLOTS; i++) {
		uint64_t b = VIRTIO_BASE + (uint64_t)i * VIRTIO_STRIDE;
		uint32_t id, ver;

		if (rd(b, R_MAGIC) != VIRTIO_MAGIC)
			continue;
		id = rd(b, R_DEVICE_ID);
		if (id == 0)
			continue;
		ver = rd(b, R_VERSION);
		if (ver != 2) {
			printf("virtio: %s: version %u, not 2; skipped\n",
			       type_name(id) ? type_name(id) : "device", ver);
			continue;
		}
		/* Insertion by type, so the order does not depend on slots. */
		for (j = n; j > 0 && type[j - 1] > id; j--) {
			type[j] = type[j - 1];
			base[j] = base[j - 1];
		}
		type[j] = id;
		base[j] = b;
		n++;
	}

	for (i = 0; i < n; i++) {
		if (type_name(type[i]))
			printf("virtio: %s\n", type_name(type[i]));
		else
			printf("virtio: type %u\n", type[i]);
	}
	for (i = 0; i < n; i++) {
		if (type[i] == ID_BLK)
			test_blk(base[i]);
		else if (type[i] == ID_RNG)
			test_rng(base[i]);
	}
	printf("virtio: %d devices\n", n);
	return 0;
}
