/* SPDX-License-Identifier: MIT */
/*
 * blocks.c - the live-block index's cold half (blocks.h has the design and
 * the hot paths): making directory pages and span tables, the big table,
 * the walks over every block (the leak scan's copy, the Python census) and
 * the fork's locks.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "internal.h"
#include "blocks.h"

struct span *mt__blk_dir[1u << DIR_HI_BITS];
int mt__blk_prefetch;
/* the slots of every span's table, in 8-byte words */
static size_t span_slots_total;
pthread_mutex_t mt__blk_dir_lock = PTHREAD_MUTEX_INITIALIZER;
/* The spans that have a table, in the order they got it: every walk over
 * all blocks and the fork's lock order. Chunks that never move (a walk
 * reads them without the lock), appended to under the directory lock. */
#define MADE_CHUNK 4096
#define MADE_CHUNKS 4096 /* 16 M spans: 4 TiB of address space */
struct made {
	struct span *sp;
	uintptr_t base;
};
static struct made *made[MADE_CHUNKS];
static size_t nmade;
struct heap_shard mt__blk_big;

/* The big table: one open-addressing table. Neighbouring blocks share cache
 * lines: the hash (Fibonacci, one multiply) is of the 256-byte region, the
 * home slot adds the 16-byte granule within it. */
static inline uint64_t ptr_hash(uintptr_t p)
{
	return (uint64_t)(p >> 8) * 0x9e3779b97f4a7c15ull;
}

static inline size_t home_slot(uintptr_t key, uint64_t h, size_t cap)
{
	return (size_t)((h >> 24) + ((key >> 4) & 15)) & (cap - 1);
}

/* Doubles the big table; false (table unchanged) when out of memory. */
static bool big_grow(struct heap_shard *sh)
{
	size_t cap = sh->cap ? sh->cap * 2 : 16;
	struct heap_entry *t = mt__map(cap * sizeof(*t));
	if (!t)
		return false;
	for (size_t i = 0; i < sh->cap; i++) {
		uintptr_t k = sh->slots[i].key;
		if (!k)
			continue;
		size_t j = home_slot(k, ptr_hash(k), cap);
		while (t[j].key)
			j = (j + 1) & (cap - 1);
		t[j] = sh->slots[i];
	}
	mt__unmap(sh->slots, sh->cap * sizeof(*t));
	sh->slots = t;
	sh->cap = cap;
	return true;
}

/* Index of p's entry, or of the empty slot where it would go. */
static size_t big_find(const struct heap_shard *sh, uintptr_t p)
{
	size_t i = home_slot(p, ptr_hash(p), sh->cap);
	while (sh->slots[i].key && sh->slots[i].key != p)
		i = (i + 1) & (sh->cap - 1);
	return i;
}

/* Backward-shift deletion: linear probing without tombstones. */
static void big_delete_at(struct heap_shard *sh, size_t i)
{
	size_t mask = sh->cap - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		uintptr_t k = sh->slots[j].key;
		if (!k)
			break;
		size_t home = home_slot(k, ptr_hash(k), sh->cap);
		/* move j back to i unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			sh->slots[i] = sh->slots[j];
			i = j;
		}
	}
	sh->slots[i].key = 0;
	sh->slots[i].meta = 0;
	sh->count--;
}

/* p's meta in the big table, taken out; 0 when it has none. */
uint64_t mt__blk_big_take(uintptr_t p)
{
	uint64_t meta = 0;
	if (!__atomic_load_n(&mt__blk_big.count, __ATOMIC_RELAXED))
		return 0;
	spin_lock(&mt__blk_big.lock);
	if (mt__blk_big.cap) {
		size_t i = big_find(&mt__blk_big, p);
		if (mt__blk_big.slots[i].key) {
			meta = mt__blk_big.slots[i].meta;
			big_delete_at(&mt__blk_big, i);
		}
	}
	spin_unlock(&mt__blk_big.lock);
	return meta;
}

/* Puts p in the big table; the meta it replaces (0: none), or ~0 when out of
 * memory. */
uint64_t mt__blk_big_put(uintptr_t p, uint64_t meta)
{
	uint64_t stale = 0;
	spin_lock(&mt__blk_big.lock);
	if ((mt__blk_big.count + 1) * 10 > mt__blk_big.cap * 7 && !big_grow(&mt__blk_big)) {
		spin_unlock(&mt__blk_big.lock);
		return ~0ull;
	}
	size_t i = big_find(&mt__blk_big, p);
	if (mt__blk_big.slots[i].key)
		stale = mt__blk_big.slots[i].meta;
	else
		__atomic_store_n(&mt__blk_big.count, mt__blk_big.count + 1, __ATOMIC_RELAXED);
	mt__blk_big.slots[i].key = p;
	mt__blk_big.slots[i].meta = meta;
	spin_unlock(&mt__blk_big.lock);
	return stale;
}

struct span *mt__blk_dir_page(size_t hi)
{
	struct span *d = __atomic_load_n(&mt__blk_dir[hi], __ATOMIC_ACQUIRE);
	if (d)
		return d;
	pthread_mutex_lock(&mt__blk_dir_lock);
	d = mt__blk_dir[hi];
	if (!d && (d = mt__map(sizeof(struct span) << DIR_LO_BITS)))
		__atomic_store_n(&mt__blk_dir[hi], d, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mt__blk_dir_lock);
	return d;
}

/* Doubles a span's table; false (table unchanged) when out of memory. */
bool mt__blk_span_grow(struct span *sp)
{
	MT_ASSERT(__atomic_load_n(&sp->lock, __ATOMIC_RELAXED)); /* the span's lock held */
	unsigned lg = sp->lg ? sp->lg + 1u : SPAN_MIN_LG;
	size_t cap = span_cap(lg), mask = cap - 1;
	/* zeroed; from ialloc.c's classes up to 64 KiB (a span's table is one
	 * of thousands: they must not each be a mapping), mapped beyond */
	uint64_t *t = mt__ialloc(cap * sizeof(*t));
	if (!t)
		return false;
	for (size_t i = 0; sp->lg && i < span_cap(sp->lg); i++) {
		uint64_t e = sp->slots[i];
		if (!e)
			continue;
		size_t j = span_home(entry_key(e), lg);
		while (t[j])
			j = (j + 1) & mask;
		t[j] = e;
	}
	if (sp->lg)
		mt__ifree(sp->slots, span_cap(sp->lg) * sizeof(*t));
	/* atomic stores: whether a span has a table (lg) is read without its
	 * lock (span_take, span_put) */
	__atomic_store_n(&sp->slots, t, __ATOMIC_RELAXED);
	sp->limit = span_limit(lg);
	size_t total = __atomic_add_fetch(&span_slots_total, cap - (sp->lg ? cap / 2 : 0),
					  __ATOMIC_RELAXED);
	if (total * sizeof(*t) > SPAN_PREFETCH_BYTES)
		__atomic_store_n(&mt__blk_prefetch, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&sp->lg, (uint8_t)lg, __ATOMIC_RELEASE);
	return true;
}

/* Backward-shift deletion: linear probing without tombstones. */
void mt__blk_span_delete_at(struct span *sp, size_t i)
{
	MT_ASSERT(__atomic_load_n(&sp->lock, __ATOMIC_RELAXED) && sp->slots[i] && sp->count);
	size_t mask = span_cap(sp->lg) - 1, j = i;
	for (;;) {
		j = (j + 1) & mask;
		uint64_t e = sp->slots[j];
		if (!e)
			break;
		size_t home = span_home(entry_key(e), sp->lg);
		/* move j back to i unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			sp->slots[i] = e;
			i = j;
		}
	}
	sp->slots[i] = 0;
	sp->count--;
}

void mt__blk_foreach_in(struct span *sp, uintptr_t base, void (*fn)(uintptr_t, uint64_t, void *),
			void *arg)
{
	if (!sp) {
		for (size_t j = 0; j < mt__blk_big.cap; j++)
			if (mt__blk_big.slots[j].key)
				fn(mt__blk_big.slots[j].key, mt__blk_big.slots[j].meta, arg);
		return;
	}
	for (size_t j = 0; sp->lg && j < span_cap(sp->lg); j++) {
		uint64_t e = sp->slots[j];
		if (e)
			fn(base | (uintptr_t)entry_key(e) << GRAN_SHIFT, entry_meta(e), arg);
	}
}

bool mt__blk_span_first(struct span *sp, uintptr_t p)
{
	size_t c = nmade / MADE_CHUNK;
	if (c >= MADE_CHUNKS)
		return false;
	if (!made[c]) {
		struct made *m = mt__map(MADE_CHUNK * sizeof(*m));
		if (!m)
			return false;
		__atomic_store_n(&made[c], m, __ATOMIC_RELEASE);
	}
	if (!mt__blk_span_grow(sp))
		return false;
	made[c][nmade % MADE_CHUNK] = (struct made){sp, p & ~(((uintptr_t)1 << SPAN_SHIFT) - 1)};
	__atomic_store_n(&nmade, nmade + 1, __ATOMIC_RELEASE);
	return true;
}

void mt__blk_foreach_table(void (*fn)(struct span *, uintptr_t, void *), void *arg)
{
	size_t n = __atomic_load_n(&nmade, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < n; i++) {
		const struct made *m =
			&__atomic_load_n(&made[i / MADE_CHUNK], __ATOMIC_ACQUIRE)[i % MADE_CHUNK];
		fn(m->sp, m->base, arg);
	}
	fn(NULL, 0, arg);
}

uint64_t mt__blk_big_get(uintptr_t p)
{
	uint64_t meta = 0;
	spin_lock(&mt__blk_big.lock);
	if (mt__blk_big.cap) {
		size_t i = big_find(&mt__blk_big, p);
		if (mt__blk_big.slots[i].key)
			meta = mt__blk_big.slots[i].meta;
	}
	spin_unlock(&mt__blk_big.lock);
	return meta;
}

static void lock_table(struct span *sp, uintptr_t base, void *arg)
{
	(void)base, (void)arg;
	spin_lock(sp ? &sp->lock : &mt__blk_big.lock);
}

static void unlock_table(struct span *sp, uintptr_t base, void *arg)
{
	(void)base, (void)arg;
	spin_unlock(sp ? &sp->lock : &mt__blk_big.lock);
}

void mt__blk_lock_all(void)
{
	/* no span gets a page or a table while the dir lock is held */
	pthread_mutex_lock(&mt__blk_dir_lock);
	mt__blk_foreach_table(lock_table, NULL);
}

void mt__blk_unlock_all(void)
{
	mt__blk_foreach_table(unlock_table, NULL);
	pthread_mutex_unlock(&mt__blk_dir_lock);
}
