/* SPDX-License-Identifier: MIT */
/*
 * table_blocks.c - the live-block table's edges, one thread, exact figures:
 * blocks in many spans and directory pages, every key of one span, blocks
 * only the big table can hold (an address not 8-byte aligned or above the
 * 47-bit user space, 8 MiB or more), an address reused behind memtrace's
 * back in either table, detach and reattach, the leak scan's copy, the
 * census's walk over Python objects, and the fork's lock-all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"


static uint64_t live_count, live_bytes;

static void expect_live(uint64_t count, uint64_t bytes, int line)
{
	mt_totals_t t;
	mt__table_gather();
	mt__totals_get(&t);
	if (t.heap_live_count != count || t.heap_live_bytes != bytes) {
		fprintf(stderr, "FAIL line %d: live %llu blocks %llu B, want %llu blocks %llu B\n",
			line, (unsigned long long)t.heap_live_count,
			(unsigned long long)t.heap_live_bytes, (unsigned long long)count,
			(unsigned long long)bytes);
		failures++;
	}
}
#define EXPECT_LIVE() expect_live(live_count, live_bytes, __LINE__)

static void add(mt_site_t *s, uintptr_t p, size_t size, int owner)
{
	EXPECT(mt__heap_add((void *)p, size, s, owner), "add %#lx", (unsigned long)p);
	live_count++;
	live_bytes += size;
}

static void remove_known(uintptr_t p, size_t size)
{
	EXPECT(mt__heap_remove((void *)p), "remove %#lx", (unsigned long)p);
	live_count--;
	live_bytes -= size;
}

static size_t pyobjs;
static uint64_t pyobj_bytes;
static void visit(uintptr_t p, uint64_t size, uint32_t site, void *arg)
{
	(void)p, (void)site, (void)arg;
	pyobjs++;
	pyobj_bytes += size;
}

int main(void)
{
	mt__options_init();
	mt__sample_init();
	if (!mt__table_init())
		return 2;
	uintptr_t f1[1] = {0x1111}, f2[1] = {0x2222};
	mt_site_t *a = mt__site_get(f1, 1, MT_DOMAIN_HEAP), *b = mt__site_get(f2, 1, MT_DOMAIN_HEAP);
	EXPECT(a && b && a != b, "sites");

	/* spread over spans and directory pages, up to the top of user space */
	const uintptr_t bases[] = {0x10000, 0x555555554000, 0x7f0000000000, 0x7ffffffc0000};
	for (size_t k = 0; k < sizeof(bases) / sizeof(*bases); k++)
		for (uintptr_t i = 0; i < 1000; i++)
			add(a, bases[k] + i * 4096 + 16, 24 + (i % 5), MT_OWNER_SYSTEM);
	EXPECT_LIVE();

	/* every key of one span: 32768 blocks 8 bytes apart */
	const uintptr_t dense = 0x600000000000;
	for (uintptr_t i = 0; i < 32768; i++)
		add(b, dense + i * 8, 8, MT_OWNER_SYSTEM);
	EXPECT_LIVE();
	uint64_t meta;
	EXPECT(mt__heap_lookup((void *)(dense + 8 * 12345), &meta) && mt__meta_size(meta) == 8 &&
		       mt__meta_site(meta) == b,
	       "lookup in a full span");
	EXPECT(!mt__heap_lookup((void *)(dense + 8 * 12345 + 4), &meta), "no false hit");
	EXPECT(!mt__heap_lookup((void *)(dense + (1u << 18)), &meta), "next span empty");

	/* what only the big table holds */
	const uintptr_t odd = 0x500000000004, high = (1ull << 47) | 0x1000, huge = 0x500000100000;
	add(a, odd, 100, MT_OWNER_SYSTEM);
	add(a, high, 200, MT_OWNER_SYSTEM);
	add(a, huge, 8u << 20, MT_OWNER_JEMALLOC);
	add(a, huge + (16u << 20), (8u << 20) - 2, MT_OWNER_SYSTEM); /* the span's largest */
	EXPECT_LIVE();
	EXPECT(mt__heap_lookup((void *)huge, &meta) && mt__meta_size(meta) == 8u << 20 &&
		       mt__meta_owner(meta) == 1,
	       "a big block's size and owner");
	EXPECT(mt__heap_lookup((void *)(huge + (16u << 20)), &meta) &&
		       mt__meta_size(meta) == (8u << 20) - 2 && mt__meta_owner(meta) == 0,
	       "the largest size a span keeps");

	/* an address freed behind memtrace's back and handed out again: the
	 * old block is forgotten, in whichever table it was */
	const uintptr_t reused = 0x7f0000000000 + 16;
	EXPECT(mt__heap_add((void *)reused, 1000, b, MT_OWNER_SYSTEM), "reuse in a span");
	live_bytes = live_bytes - 24 + 1000;
	EXPECT_LIVE();
	EXPECT(mt__heap_add((void *)reused, 9u << 20, b, MT_OWNER_SYSTEM), "span to big");
	live_bytes = live_bytes - 1000 + (9u << 20);
	EXPECT_LIVE();
	EXPECT(mt__heap_add((void *)reused, 64, a, MT_OWNER_SYSTEM), "big to span");
	live_bytes = live_bytes - (9u << 20) + 64;
	EXPECT_LIVE();
	EXPECT(mt__heap_lookup((void *)reused, &meta) && mt__meta_size(meta) == 64 &&
		       mt__meta_site(meta) == a,
	       "the last block at a reused address");

	/* detach, reattach (realloc's way back), in both tables */
	const uintptr_t ways[] = {reused, odd, huge};
	for (size_t k = 0; k < 3; k++) {
		uint64_t m = mt__heap_detach((void *)ways[k]);
		EXPECT(m && !mt__heap_lookup((void *)ways[k], &meta), "detached %zu", k);
		mt__heap_reattach((void *)ways[k], m);
		EXPECT(mt__heap_lookup((void *)ways[k], &meta) && meta == m, "reattached %zu", k);
	}
	EXPECT_LIVE();

	/* the leak scan's view: every block once, with its size */
	size_t n = mt__heap_count_unlocked();
	EXPECT(n == live_count, "count %zu, want %llu", n, (unsigned long long)live_count);
	mt_scan_block_t *all = calloc(n + 1, sizeof(*all));
	size_t got = mt__heap_copy_unlocked(all, n + 1);
	uint64_t sum = 0;
	int seen_high = 0, seen_odd = 0;
	for (size_t i = 0; i < got; i++) {
		sum += all[i].meta >> MT_SCAN_SIZE_SHIFT;
		seen_high += all[i].lo == high;
		seen_odd += all[i].lo == odd;
	}
	EXPECT(got == n && sum == live_bytes && seen_high == 1 && seen_odd == 1,
	       "copy: %zu blocks, %llu B", got, (unsigned long long)sum);
	free(all);

	/* Python objects: the census's walk sees those and only those */
	for (uintptr_t i = 0; i < 3000; i++)
		add(a, 0x7e0000000000 + i * 48, 40, MT_OWNER_SYSTEM | MT_OWNER_PYOBJ);
	add(a, 0x500000000008 + 1, 56, MT_OWNER_SYSTEM | MT_OWNER_PYOBJ); /* big table */
	mt__heap_foreach_pyobj(visit, NULL);
	EXPECT(pyobjs == 3001 && pyobj_bytes == 3000 * 40 + 56, "census walk: %zu objects",
	       pyobjs);

	/* the fork's lock order, taken and given back */
	mt__table_lock_all();
	mt__table_unlock_all();

	/* and everything goes */
	for (size_t k = 0; k < sizeof(bases) / sizeof(*bases); k++)
		for (uintptr_t i = 0; i < 1000; i++)
			if (bases[k] + i * 4096 + 16 != reused)
				remove_known(bases[k] + i * 4096 + 16, 24 + (i % 5));
	remove_known(reused, 64);
	for (uintptr_t i = 0; i < 32768; i++)
		remove_known(dense + i * 8, 8);
	remove_known(odd, 100);
	remove_known(high, 200);
	remove_known(huge, 8u << 20);
	remove_known(huge + (16u << 20), (8u << 20) - 2);
	for (uintptr_t i = 0; i < 3000; i++)
		remove_known(0x7e0000000000 + i * 48, 40);
	remove_known(0x500000000008 + 1, 56);
	EXPECT(!mt__heap_remove((void *)dense), "a block removed twice");
	EXPECT_LIVE();
	EXPECT(live_count == 0 && mt__heap_count_unlocked() == 0, "empty");
	printf("%s\n", failures ? "FAILED" : "table_blocks ok");
	return failures ? 1 : 0;
}
