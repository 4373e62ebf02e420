/* SPDX-License-Identifier: MIT */
/*
 * sample.c - Poisson sampling by bytes (MEMTRACE_SAMPLE), as jemalloc and
 * tcmalloc do: the program's allocated bytes are a line on which sample
 * points fall at exponentially distributed gaps of mean R. An allocation of
 * s bytes holds a point with probability p = 1 - exp(-s/R); it is then
 * recorded with weight 1/p, so the counted bytes (s/p) and blocks (1/p) are
 * unbiased estimates of the true ones. Unsampled calls touch nothing but a
 * per-thread byte counter.
 *
 * The logarithm and exp(x) - 1 it needs are its own (mt__log, mt__expm1):
 * libm's would load libm.so into every process, about 58 us of CPU each, and
 * a build runs hundreds (tests/unit/sample.c checks them against libm).
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "internal.h"

uint64_t mt__sample_mean;
static uint64_t seed;

__thread int64_t mt__tl_sample_left __attribute__((tls_model("initial-exec")));
#define tl_left mt__tl_sample_left
static __thread uint64_t tl_rng __attribute__((tls_model("initial-exec")));
static uint64_t thread_no;

void mt__sample_init(void)
{
	mt__sample_mean = mt__opt.sample_bytes;
	seed = mt__opt.sample_seed ? (uint64_t)mt__opt.sample_seed
				   : mt__now_ns(CLOCK_MONOTONIC) | 1;
}

/* splitmix64's finalizer: nearby seeds give unrelated streams */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* xorshift64*: a thread's stream, seeded from the seed and a thread number
 * (with MEMTRACE_SAMPLE_SEED the first thread's draws are reproducible). */
static double uniform(void)
{
	if (!tl_rng)
		tl_rng = mix(seed + 0x9e3779b97f4a7c15ull *
					    __atomic_add_fetch(&thread_no, 1, __ATOMIC_RELAXED)) |
			 1;
	tl_rng ^= tl_rng >> 12;
	tl_rng ^= tl_rng << 25;
	tl_rng ^= tl_rng >> 27;
	uint64_t r = tl_rng * 0x2545f4914f6cdd1dull;
	return ((double)(r >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
}

#define LN2 0.69314718055994530942

/* ln x for a finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), then
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716, whose odd series
 * to s^23 is exact to a few units in the last place. */
double mt__log(double x)
{
	uint64_t b;
	memcpy(&b, &x, sizeof(b));
	int e = (int)((b >> 52) & 0x7ff);
	if (e == 0) { /* subnormal: scale into the normal range */
		x *= 18014398509481984.0; /* 2^54 */
		memcpy(&b, &x, sizeof(b));
		e = (int)((b >> 52) & 0x7ff) - 54;
	}
	e -= 1023;
	b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
	double m;
	memcpy(&m, &b, sizeof(m));
	if (m > 1.41421356237309504880) {
		m *= 0.5;
		e++;
	}
	double s = (m - 1) / (m + 1), s2 = s * s, t = 0;
	for (int k = 23; k >= 3; k -= 2)
		t = (t + 1.0 / k) * s2;
	return 2 * s * (1 + t) + e * LN2;
}

/* e^x - 1, accurate near 0 as well: a Taylor series for |x| < 1/2, else
 * e^x by x = k ln 2 + r, |r| <= ln 2 / 2, and the series of e^r. */
double mt__expm1(double x)
{
	if (x < -745)
		return -1;
	if (x > -0.5 && x < 0.5) {
		double t = 0;
		for (int k = 18; k >= 1; k--)
			t = x / k * (1 + t);
		return t;
	}
	double kf = x / LN2 + (x < 0 ? -0.5 : 0.5);
	int k = (int)kf;
	/* ln 2 in two parts (k times the first is exact): r keeps its bits */
	double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10, t = 0;
	for (int n = 18; n >= 1; n--)
		t = r / n * (1 + t);
	double er = 1 + t; /* e^r */
	/* 2^k as a double (k within [-1075, 1024] here) */
	while (k > 1000) {
		er *= 0x1p1000;
		k -= 1000;
	}
	while (k < -1000) {
		er *= 0x1p-1000;
		k += 1000;
	}
	uint64_t b = (uint64_t)(k + 1023) << 52;
	double p2;
	memcpy(&p2, &b, sizeof(p2));
	return er * p2 - 1;
}

static int64_t gap(void)
{
	double g = -mt__log(uniform()) * (double)mt__sample_mean;
	return g < 1 ? 1 : g > 4e18 ? (int64_t)4e18 : (int64_t)g;
}

bool mt__sample_slow(size_t size)
{
	if (MT_UNLIKELY(tl_rng == 0)) {
		tl_left = gap(); /* a thread's first gap is drawn, not zero */
		if ((uint64_t)tl_left > size) {
			tl_left -= (int64_t)size;
			return false;
		}
	}
	/* The block holds a sample point (one or several: one sample). The
	 * points are a Poisson process, so the next one lies a fresh gap past
	 * the block's end: one draw, whatever the size. */
	tl_left = gap();
	return true;
}

void mt__sample_weight_slow(uint64_t size, uint64_t *wbytes, uint64_t *wcount)
{
	double p = -mt__expm1(-(double)size / (double)mt__sample_mean);
	if (p <= 0) {
		*wbytes = size;
		*wcount = 1;
		return;
	}
	*wbytes = (uint64_t)((double)size / p + 0.5);
	*wcount = (uint64_t)(1.0 / p + 0.5);
}
