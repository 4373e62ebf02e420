/* SPDX-License-Identifier: MIT */
/*
 * table_threads.c - the live-block and callsite tables under concurrency,
 * built as an ordinary program (so ASan, UBSan and TSan can watch them):
 * threads record blocks at shared and private callsites, free each other's
 * blocks, split and unmap mappings; the figures must add up exactly.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define THREADS 4
#define BLOCKS 20000

static pthread_barrier_t barrier;
static char arena[THREADS][BLOCKS][16]; /* addresses for the fake blocks */


static void *worker(void *arg)
{
	long t = (long)arg;
	uintptr_t shared[2] = {0x1000, 0x2000}, own[2] = {0x3000 + (uintptr_t)t, 0x4000};
	mt_site_t *s_shared = mt__site_get(shared, 2, MT_DOMAIN_HEAP);
	mt_site_t *s_own = mt__site_get(own, 2, MT_DOMAIN_HEAP);
	EXPECT(s_shared && s_own, "site creation");
	for (int i = 0; i < BLOCKS; i++)
		EXPECT(mt__heap_add(arena[t][i], 10 + (size_t)(i % 7), i % 2 ? s_shared : s_own,
				    MT_OWNER_SYSTEM),
		       "add");
	/* many distinct stacks at once */
	for (int i = 0; i < 500; i++) {
		uintptr_t f[3] = {0x5000, (uintptr_t)i, (uintptr_t)t};
		EXPECT(mt__site_get(f, 3, MT_DOMAIN_HEAP) == mt__site_get(f, 3, MT_DOMAIN_HEAP),
		       "dedup");
	}
	pthread_barrier_wait(&barrier);
	/* free the next thread's blocks, half of them */
	long o = (t + 1) % THREADS;
	for (int i = 0; i < BLOCKS; i += 2)
		EXPECT(mt__heap_remove(arena[o][i]), "remove %ld/%d", o, i);
	/* mappings: add, split by a hole, remove */
	uintptr_t m[1] = {0x6000};
	mt_site_t *s_map = mt__site_get(m, 1, MT_DOMAIN_MMAP);
	char *base = (char *)(uintptr_t)(0x7f0000000000ull + (uint64_t)t * (1ull << 32));
	for (int i = 0; i < 200; i++) {
		char *p = base + (size_t)i * 65536;
		mt__mmap_add(p, 16384, s_map);
		mt__mmap_remove(p + 4096, 4096);
		mt__mmap_remove(p, 16384);
	}
	return NULL;
}

int main(void)
{
	mt__options_init();
	mt__sample_init();
	if (!mt__table_init())
		return 2;
	pthread_t th[THREADS];
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (long t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	mt__table_gather();

	mt_totals_t tot;
	mt__totals_get(&tot);
	uint64_t want_blocks = THREADS * BLOCKS / 2, want_bytes = 0;
	for (long t = 0; t < THREADS; t++)
		for (int i = 1; i < BLOCKS; i += 2)
			want_bytes += 10 + (uint64_t)(i % 7);
	EXPECT(tot.heap_live_count == want_blocks, "live blocks %llu, want %llu",
	       (unsigned long long)tot.heap_live_count, (unsigned long long)want_blocks);
	EXPECT(tot.heap_live_bytes == want_bytes, "live bytes %llu, want %llu",
	       (unsigned long long)tot.heap_live_bytes, (unsigned long long)want_bytes);
	EXPECT(tot.heap_alloc_count == THREADS * BLOCKS, "allocations %llu",
	       (unsigned long long)tot.heap_alloc_count);
	EXPECT(tot.mmap_live_bytes == 0 && tot.mmap_live_count == 0,
	       "mappings all gone: %llu B, %llu", (unsigned long long)tot.mmap_live_bytes,
	       (unsigned long long)tot.mmap_live_count);
	EXPECT(tot.mmap_alloc_count == THREADS * 200, "mappings made %llu",
	       (unsigned long long)tot.mmap_alloc_count);
	for (long t = 0; t < THREADS; t++)
		for (int i = 1; i < BLOCKS; i += 2)
			EXPECT(mt__heap_remove(arena[t][i]), "final remove");
	mt__table_gather();
	mt__totals_get(&tot);
	EXPECT(tot.heap_live_count == 0 && tot.heap_live_bytes == 0, "empty at the end");
	printf("%s\n", failures ? "FAILED" : "table_threads ok");
	return failures ? 1 : 0;
}
