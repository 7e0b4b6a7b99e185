/*
 * Loops gcc vectorizes with SSE2, for tests/gcc_sse.rs: each kernel reads
 * `in` and writes `out` (4 KiB each), `n` elements. Built position
 * independent and freestanding into a flat binary whose first words are the
 * kernels' offsets (see the Makefile). Rebuild with `make` in this folder.
 */
#include <stdint.h>

typedef void kernel(void *out, const void *in, long n);

static void saxpy(void *o, const void *i, long n) {
	float *y = o; const float *x = i;
	for (long k = 0; k < n; k++) y[k] = y[k] * 0.75f + 2.5f * x[k];
}
static void dot(void *o, const void *i, long n) {
	const double *a = i; double s = 0, t = 1;
	for (long k = 0; k < n; k++) { s += a[k] * a[n - 1 - k]; t = t < a[k] ? a[k] : t; }
	((double *)o)[0] = s; ((double *)o)[1] = t; ((double *)o)[2] = __builtin_sqrt(s < 0 ? -s : s);
}
static void ints(void *o, const void *i, long n) {
	int32_t *a = o; const int32_t *b = i;
	for (long k = 0; k < n; k++) a[k] = a[k] * 3 + b[k] - (b[k] >> 2) + ((uint32_t)b[k] >> 5);
}
static void bytes(void *o, const void *i, long n) {
	uint8_t *a = o; const uint8_t *b = i;
	for (long k = 0; k < 4 * n; k++) {
		uint8_t x = a[k] > b[k] ? a[k] : b[k], y = a[k] < b[k] ? a[k] : b[k];
		a[k] = (uint8_t)((x + y + 1) >> 1) ^ (uint8_t)(x == 7);
	}
}
static void shorts(void *o, const void *i, long n) {
	int16_t *a = o; const int16_t *b = i; int16_t m = 32767;
	for (long k = 0; k < 2 * n; k++) { a[k] = (int16_t)((a[k] * b[k]) >> 3); m = b[k] < m ? b[k] : m; }
	a[0] = m;
}
static void convert(void *o, const void *i, long n) {
	const int32_t *in = i; float *f = o; double *d = (double *)(f + 256); long *l = (long *)(d + 128);
	for (long k = 0; k < n && k < 100; k++) {
		f[k] = (float)in[k] * 0.001f;
		d[k] = (double)f[k] * 1e7;
		l[k] = (long)d[k] + (int)f[k];
	}
}
static void compare(void *o, const void *i, long n) {
	const float *a = i; int32_t *r = o; int c = 0;
	for (long k = 0; k + 1 < n; k++) {
		c += a[k] > 1.0f; c += a[k] == a[k + 1]; c += a[k] <= -2.0f;
		r[k] = a[k] < a[k + 1] ? 1 : (a[k] == a[k + 1] ? 2 : 3);
	}
	r[n] = c;
}
static void narrow(void *o, const void *i, long n) {
	const int32_t *in = i; int8_t *b = o; uint8_t *u = (uint8_t *)o + 512; float *f = (float *)((char *)o + 1024);
	const double *d = i;
	for (long k = 0; k < n; k++) { b[k] = (int8_t)in[k]; u[k] = in[k] > 255 ? 255 : (in[k] < 0 ? 0 : in[k]); }
	for (long k = 0; k < n / 2; k++) f[k] = (float)d[k];
}
static void widen(void *o, const void *i, long n) {
	const float *f = i; double *d = o;
	for (long k = 0; k < n && k < 500; k++) d[k] = f[k] * (double)f[k] - 1.0;
}
static void mul64(void *o, const void *i, long n) {
	const uint32_t *a = i; uint64_t s = 0, x = 0;
	for (long k = 0; k < n; k++) { s += (uint64_t)a[k] * a[k]; x ^= (uint64_t)a[k] << 7; }
	((uint64_t *)o)[0] = s; ((uint64_t *)o)[1] = x;
}
static void sad(void *o, const void *i, long n) {
	const uint8_t *a = i, *b = (const uint8_t *)i + 1024; int s = 0;
	for (long k = 0; k < 4 * n; k++) s += a[k] > b[k] ? a[k] - b[k] : b[k] - a[k];
	((int *)o)[0] = s;
}
static void scalar(void *o, const void *i, long n) {
	const double *d = i; double *r = o; float *f = (float *)(r + 64);
	for (long k = 0; k < n && k < 60; k++) {
		double x = d[k];
		r[k] = x < 0 ? -x : x;
		f[k] = -(float)x;
		((long *)(r + 200))[k] = (long)(x * 1e-3);
		((unsigned long *)(r + 300))[k] = (unsigned long)(x < 0 ? -x : x);
		r[400 - k] = (double)(unsigned long)((const uint64_t *)i)[k];
	}
}
static void minmax(void *o, const void *i, long n) {
	const float *a = i; const double *d = i; float lo = a[0], hi = a[0]; double dm = d[0];
	for (long k = 0; k < n; k++) { lo = a[k] < lo ? a[k] : lo; hi = a[k] > hi ? a[k] : hi; }
	for (long k = 0; k < n / 2; k++) dm = d[k] > dm ? d[k] : dm;
	((float *)o)[0] = lo; ((float *)o)[1] = hi; ((double *)o)[1] = dm;
}

__attribute__((section(".table"), used))
static kernel *const table[] = {
	saxpy, dot, ints, bytes, shorts, convert, compare, narrow, widen, mul64, sad, scalar, minmax,
};
