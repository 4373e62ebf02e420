/* SPDX-License-Identifier: MIT */
/*
 * churn.c - the allocation-heavy workload of the benchmark: OPS malloc/free
 * operations per thread on random sizes 8..512 B, a live window of 4096
 * blocks per thread (or WINDOW), one realloc in eight, every call made
 * through ten levels of (non-inlined) functions. The two ways at each level call the
 * same function with the same arguments, and the compiler merges them: the
 * program has two distinct allocating stacks (malloc and realloc), not the
 * few dozen the levels suggest. Built with -DCHURN_PATHS (the churn-paths
 * benchmark), the two ways stay apart and the six levels the operation
 * number chooses give 64 call paths: 128 distinct allocating stacks.
 *   churn [OPS [THREADS [WINDOW [keep]]]]      prints a checksum
 * With "keep" the window stays allocated at exit, for the at-exit snapshot
 * (the sampling accuracy check of the benchmark).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a cache line each: the threads' counters must not share one */
typedef struct {
	uint64_t ops, seed, sum, window;
	void **live;
} __attribute__((aligned(64))) work_t;

static int keep;

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void __attribute__((noinline)) op(work_t *w, uint64_t i)
{
	uint64_t r = next(&w->seed);
	size_t slot = r % w->window, size = 8 + (r >> 20) % 505;
	if (w->live[slot] && (r >> 40) % 8 == 0) {
		char *p = realloc(w->live[slot], size);
		p[0] = (char)i;
		w->live[slot] = p;
		return;
	}
	free(w->live[slot]);
	char *p = malloc(size);
	p[0] = (char)i;
	w->sum += (uintptr_t)p & 0xff;
	w->live[slot] = p;
}

/* ten levels, two ways each: the path depends on the operation number */
#ifdef CHURN_PATHS
/* an instruction after one of the calls keeps the two calls apart */
#define LEVEL(n, next_a, next_b)                                              \
	static void __attribute__((noinline)) n(work_t *w, uint64_t i, int k) \
	{                                                                     \
		if ((i >> k) & 1) {                                           \
			next_a(w, i, k + 1);                                  \
			__asm__ volatile("nop" ::: "memory");                 \
		} else {                                                      \
			next_b(w, i, k + 1);                                  \
		}                                                             \
		__asm__ volatile("" ::: "memory");                            \
	}
#else
#define LEVEL(n, next_a, next_b)                                              \
	static void __attribute__((noinline)) n(work_t *w, uint64_t i, int k) \
	{                                                                     \
		if ((i >> k) & 1)                                             \
			next_a(w, i, k + 1);                                  \
		else                                                          \
			next_b(w, i, k + 1);                                  \
		__asm__ volatile("" ::: "memory");                            \
	}
#endif
static void __attribute__((noinline)) leaf(work_t *w, uint64_t i, int k)
{
	(void)k;
	op(w, i);
	__asm__ volatile("" ::: "memory");
}
LEVEL(l9, leaf, leaf)
LEVEL(l8, l9, l9)
LEVEL(l7, l8, l8)
LEVEL(l6, l7, l7)
LEVEL(l5, l6, l6)
LEVEL(l4, l5, l5)
LEVEL(l3, l4, l4)
LEVEL(l2, l3, l3)
LEVEL(l1, l2, l2)
LEVEL(l0, l1, l1)

static void *run(void *arg)
{
	work_t *w = arg;
	for (uint64_t i = 0; i < w->ops; i++)
		l0(w, i % 64, 0);
	for (uint64_t i = 0; i < w->window && !keep; i++)
		free(w->live[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t ops = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	uint64_t window = argc > 3 ? strtoull(argv[3], NULL, 10) : 4096;
	keep = argc > 4 && strcmp(argv[4], "keep") == 0;
	if (threads < 1 || threads > 64 || window < 1 || window > (1ull << 28))
		return 1;
	work_t *w = aligned_alloc(64, (size_t)threads * sizeof(*w));
	if (!w)
		return 1;
	memset(w, 0, (size_t)threads * sizeof(*w));
	pthread_t t[64];
	for (int i = 0; i < threads; i++) {
		w[i].ops = ops / (uint64_t)threads;
		w[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		w[i].window = window;
		if (!(w[i].live = calloc(window, sizeof(void *))))
			return 1;
		pthread_create(&t[i], NULL, run, &w[i]);
	}
	uint64_t sum = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		sum += w[i].sum;
	}
	printf("churn %llu ops, %d threads, checksum %llu\n", (unsigned long long)ops, threads,
	       (unsigned long long)sum);
	for (int i = 0; i < threads && !keep; i++)
		free(w[i].live);
	free(w);
	return 0;
}
