/* SPDX-License-Identifier: MIT */
/*
 * sample.c - Poisson sampling by bytes (MEMTRACE_SAMPLE), as jemalloc and
 * tcmalloc do: the program's allocated bytes are a line on which sample
 * points fall at exponentially distributed gaps of mean R. An allocation of
 * s bytes holds a point with probability p = 1 - exp(-s/R); it is then
 * recorded with weight 1/p, so the counted bytes (s/p) and blocks (1/p) are
 * unbiased estimates of the true ones. Unsampled calls touch nothing but a
 * per-thread byte counter.
 */
#include <math.h>
#include <stdint.h>
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

static int64_t gap(void)
{
	double g = -log(uniform()) * (double)mt__sample_mean;
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
	double p = -expm1(-(double)size / (double)mt__sample_mean);
	if (p <= 0) {
		*wbytes = size;
		*wcount = 1;
		return;
	}
	*wbytes = (uint64_t)llround((double)size / p);
	*wcount = (uint64_t)llround(1.0 / p);
}
