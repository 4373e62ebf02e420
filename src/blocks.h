/* SPDX-License-Identifier: MIT */
/*
 * blocks.h - the live-block index: the 64-bit meta of every live heap block
 * memtrace recorded, found from the block's address. What a meta means
 * (site, owner, accounting) is heap.c's; this index only keeps it.
 *
 * A directory of spans of 256 KiB of address space (two array loads from an
 * address to its span, a directory page of 16,384 spans mapped when the
 * first block lands in its 4 GiB), each span a small open-addressing table
 * of 8-byte entries under its own spin lock, grown by doubling, never
 * shrunk; a block no span can key goes to one table of 16-byte entries
 * beside them (the big table). The hot paths (put, take, the probes) are
 * inline here, so the hooks that reach them through heap.c cost what they
 * did when this was one file; growth, the big table, the walks and the
 * locks for a fork are in blocks.c.
 *
 * Locks (after the callsite shards, before the mapping lock; table.c has
 * the whole order): the directory lock, then the spans that have a table in
 * the order they got it, then the big table. A span's first table is made
 * under the directory lock, so a walk under it misses none. No lock here is
 * held across a call out of memtrace.
 */
#ifndef MT_BLOCKS_H
#define MT_BLOCKS_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "arch.h"

/* A span is 256 KiB of address space; a block is keyed by its 8-byte granule
 * within its span (15 bits), which leaves room in one 8-byte entry for the
 * site id, the owner and Python-object bits and a 23-bit requested size. */
#define SPAN_SHIFT 18
#define GRAN_SHIFT 3
#define KEY_BITS (SPAN_SHIFT - GRAN_SHIFT)
#define VA_BITS MT_VA_BITS /* user space (arch.h) */
#define DIR_LO_BITS 14 /* spans per directory page: 4 GiB of address space */
#define DIR_HI_BITS (VA_BITS - SPAN_SHIFT - DIR_LO_BITS)
#define SPAN_MIN_LG 4 /* 16 slots: small live sets stay in cache */
/* A table is at most half full up to 1024 slots (8 KiB: probes stay short
 * where the memory does not matter), at most 70 % beyond. */
#define SPAN_ROOMY_LG 10
/* A block's meta, as the index keeps it: the requested size above
 * MT_META_SIZE_SHIFT, below it what heap.c puts there (site id, owner,
 * Python object), never all zero. */
#define MT_META_SIZE_SHIFT 26
#define META_LOW ((1ull << MT_META_SIZE_SHIFT) - 1)
/* an entry: requested size << 41 | key << 26 | the meta's low 26 bits; 0 is
 * an empty slot (site ids start at 1) */
#define E_KEY_SHIFT MT_META_SIZE_SHIFT
#define E_SIZE_SHIFT (MT_META_SIZE_SHIFT + KEY_BITS)
#define E_SIZE_MAX ((1ull << (64 - E_SIZE_SHIFT)) - 1)

struct span {
	uint64_t *slots;
	uint16_t count; /* at most 1 << KEY_BITS keys */
	uint8_t lg;	/* log2 of the slots, 0: no table yet */
	uint8_t lock;	/* spin lock: held for a probe or two, never across a call out */
	uint16_t limit; /* the most keys before the table doubles (span_limit) */
	uint16_t pad;
};

/* mt__blk_dir[hi] is a page of 1 << DIR_LO_BITS spans (256 KiB, mapped
 * when the first block lands in its 4 GiB); blocks.c lists the spans that
 * have a table, in the order they got it (the fork's lock order and every
 * walk over all blocks: a fork walks those, not every span of a page). */
extern struct span *mt__blk_dir[1u << DIR_HI_BITS] MT_HIDDEN;
extern pthread_mutex_t mt__blk_dir_lock MT_HIDDEN;

/* Blocks a span cannot key (an address not 8-byte aligned or above the
 * 47-bit user space, a requested size of 8 MiB or more): one open-addressing
 * table of {pointer, meta} under one spin lock, rarely used. */
struct heap_entry {
	uintptr_t key;
	uint64_t meta;
};

struct heap_shard {
	uint8_t lock;
	struct heap_entry *slots;
	size_t cap, count;
} __attribute__((aligned(MT_CACHELINE)));

extern struct heap_shard mt__blk_big MT_HIDDEN;

/* A test-and-test-and-set lock that yields the core after a short spin: a
 * holder preempted on a 2-core machine must not be spun against for a whole
 * time slice. */
static inline void spin_lock(uint8_t *l)
{
	for (int n = 0; __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE); n++) {
		while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
			if (++n > 64) {
				sched_yield();
				n = 0;
			} else {
				mt__cpu_relax();
			}
		}
	}
}

static inline void spin_unlock(uint8_t *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* blocks.c */
MT_HIDDEN struct span *mt__blk_dir_page(size_t hi);
MT_HIDDEN bool mt__blk_span_grow(struct span *sp);
/* A span's first table, and its place in the walks' list; both locks (the
 * directory's, the span's) held. False: neither. */
MT_HIDDEN bool mt__blk_span_first(struct span *sp, uintptr_t p);
MT_HIDDEN void mt__blk_span_delete_at(struct span *sp, size_t i);
MT_HIDDEN uint64_t mt__blk_big_take(uintptr_t p);
MT_HIDDEN uint64_t mt__blk_big_put(uintptr_t p, uint64_t meta);
/* p's meta in the big table, 0 when it has none. */
MT_HIDDEN uint64_t mt__blk_big_get(uintptr_t p);
/* Every block of one table, under its lock (held by the caller):
 * fn(p, meta, arg); sp NULL: the big table. */
MT_HIDDEN void mt__blk_foreach_in(struct span *sp, uintptr_t base,
				  void (*fn)(uintptr_t, uint64_t, void *), void *arg);
/* Every span that has a table, then the big table: fn(span, base, arg),
 * fn(NULL, 0, arg) last. */
MT_HIDDEN void mt__blk_foreach_table(void (*fn)(struct span *, uintptr_t, void *), void *arg);
/* The fork's: the directory lock and every table's lock, in order. */
MT_HIDDEN void mt__blk_lock_all(void);
MT_HIDDEN void mt__blk_unlock_all(void);

/* Spans. Whether an address has a span (8-byte aligned, in user space),
 * and whether a block there can be kept in it: */
static inline bool span_addr(uintptr_t p)
{
	return !(p & ((1u << GRAN_SHIFT) - 1)) && !(p >> VA_BITS);
}

static inline bool span_keyed(uintptr_t p, uint64_t size)
{
	return span_addr(p) && size < E_SIZE_MAX;
}

static inline uint32_t span_key(uintptr_t p)
{
	return (uint32_t)(p >> GRAN_SHIFT) & ((1u << KEY_BITS) - 1);
}

static inline uint32_t entry_key(uint64_t e)
{
	return (uint32_t)(e >> E_KEY_SHIFT) & ((1u << KEY_BITS) - 1);
}

static inline uint64_t entry_meta(uint64_t e)
{
	return (e >> E_SIZE_SHIFT) << MT_META_SIZE_SHIFT | (e & META_LOW);
}

/* Neighbouring blocks are neighbours in the table: the 256-byte region's
 * hash plus its 16-byte granule, so allocation order walks the table
 * sequentially instead of missing the cache at every call. */
static inline size_t span_home(uint32_t key, unsigned lg)
{
	uint32_t h = ((key >> 5) * 0x9e3779b1u) >> (32 - lg);
	return (h + ((key >> 1) & 15)) & ((1u << lg) - 1);
}

/* p's span; NULL when its page is not made (make: make it, NULL when out of
 * memory). */
static MT_ALWAYS_INLINE struct span *span_of(uintptr_t p, bool make)
{
	size_t hi = p >> (SPAN_SHIFT + DIR_LO_BITS);
	struct span *d = __atomic_load_n(&mt__blk_dir[hi], __ATOMIC_ACQUIRE);
	if (MT_UNLIKELY(!d) && (!make || !(d = mt__blk_dir_page(hi))))
		return NULL;
	return &d[(p >> SPAN_SHIFT) & ((1u << DIR_LO_BITS) - 1)];
}

static inline size_t span_cap(unsigned lg)
{
	return (size_t)1 << lg;
}

/* A table is at most half full up to SPAN_ROOMY_LG, 70 % beyond: the most
 * keys a table of 1 << lg slots takes (kept in the span, so that a put
 * compares, not multiplies). */
static inline uint16_t span_limit(unsigned lg)
{
	return (uint16_t)(span_cap(lg) * (lg <= SPAN_ROOMY_LG ? 5 : 7) / 10);
}

/* Index of key's entry, or of the empty slot where it would go. */
static MT_ALWAYS_INLINE size_t span_find(const struct span *sp, uint32_t key)
{
	size_t mask = span_cap(sp->lg) - 1, i = span_home(key, sp->lg);
	uint64_t e;
	MT_ASSERT(__atomic_load_n(&sp->lock, __ATOMIC_RELAXED)); /* the span's lock held */
	while ((e = sp->slots[i]) && entry_key(e) != key)
		i = (i + 1) & mask;
	return i;
}

/* p's meta, taken out of its span; 0 when the span has none. */
static MT_ALWAYS_INLINE uint64_t span_take(uintptr_t p)
{
	struct span *sp = span_of(p, false);
	uint64_t meta = 0;
	/* a span without a table is never locked outside the dir lock */
	if (!sp || !__atomic_load_n(&sp->lg, __ATOMIC_ACQUIRE))
		return 0;
	spin_lock(&sp->lock);
	{
		size_t i = span_find(sp, span_key(p));
		uint64_t e = sp->slots[i];
		if (e) {
			meta = entry_meta(e);
			/* nothing after it to shift back: no call */
			size_t next = (i + 1) & (span_cap(sp->lg) - 1);
			if (!sp->slots[next]) {
				sp->slots[i] = 0;
				sp->count--;
			} else {
				mt__blk_span_delete_at(sp, i);
			}
		}
	}
	spin_unlock(&sp->lock);
	return meta;
}

/* Puts a block in its span: the meta it replaces (0: none), or ~0 when it
 * cannot be kept. */
static MT_ALWAYS_INLINE uint64_t span_put(uintptr_t p, uint64_t meta)
{
	struct span *sp = span_of(p, true);
	uint64_t stale = 0;
	uint32_t key = span_key(p);
	if (MT_UNLIKELY(!sp))
		return ~0ull;
	if (MT_UNLIKELY(!__atomic_load_n(&sp->lg, __ATOMIC_ACQUIRE))) {
		/* a span's first table is made under the dir lock, which the
		 * fork holds while it locks every span that has one */
		pthread_mutex_lock(&mt__blk_dir_lock);
		spin_lock(&sp->lock);
		bool ok = sp->lg || mt__blk_span_first(sp, p);
		spin_unlock(&sp->lock);
		pthread_mutex_unlock(&mt__blk_dir_lock);
		if (!ok)
			return ~0ull;
	}
	spin_lock(&sp->lock);
	if (sp->count + 1u > sp->limit && !mt__blk_span_grow(sp)) {
		spin_unlock(&sp->lock);
		return ~0ull;
	}
	size_t i = span_find(sp, key);
	uint64_t e = sp->slots[i];
	if (e)
		stale = entry_meta(e); /* freed behind our back: forget it */
	else
		sp->count++;
	MT_ASSERT(sp->count <= span_limit(sp->lg));
	sp->slots[i] = (meta >> MT_META_SIZE_SHIFT) << E_SIZE_SHIFT | (uint64_t)key << E_KEY_SHIFT |
		       (meta & META_LOW);
	/* the entry packs the meta whole, and is never an empty slot's 0 */
	MT_ASSERT((meta & META_LOW) && entry_meta(sp->slots[i]) == meta &&
		  entry_key(sp->slots[i]) == key);
	spin_unlock(&sp->lock);
	return stale;
}

/* Puts a block in whichever table keys it: what it replaces, as span_put. */
static MT_ALWAYS_INLINE uint64_t block_put(uintptr_t p, uint64_t meta)
{
	if (MT_LIKELY(span_keyed(p, meta >> MT_META_SIZE_SHIFT))) {
		uint64_t stale = span_put(p, meta);
		/* a block the big table held at this address was freed behind
		 * our back too */
		if (!stale && MT_UNLIKELY(__atomic_load_n(&mt__blk_big.count, __ATOMIC_RELAXED)))
			stale = mt__blk_big_take(p);
		return stale;
	}
	uint64_t stale = mt__blk_big_put(p, meta);
	if (!stale && span_addr(p))
		stale = span_take(p);
	return stale;
}

static MT_ALWAYS_INLINE uint64_t block_take(uintptr_t p)
{
	uint64_t meta = 0;
	if (MT_LIKELY(span_addr(p)))
		meta = span_take(p);
	if (!meta)
		meta = mt__blk_big_take(p);
	return meta;
}

/* Starts loading the slot where a block at p will be put, without the
 * span's lock (a table growing meanwhile only makes it a useless load; a
 * prefetch never faults): the hooks call it as soon as the allocator
 * returns, so that the cache miss overlaps the stack walk instead of
 * stalling the put after it. Only once the tables together outgrow a
 * core's L2 (mt__blk_prefetch, set for good): below that the put rarely
 * misses, and the address costs some 30 instructions a call. */
#define SPAN_PREFETCH_BYTES (1u << 20)
extern int mt__blk_prefetch MT_HIDDEN;
static MT_ALWAYS_INLINE void span_prefetch(uintptr_t p)
{
	if (!__atomic_load_n(&mt__blk_prefetch, __ATOMIC_RELAXED) || !span_addr(p))
		return;
	const struct span *sp = span_of(p, false);
	if (!sp)
		return;
	unsigned lg = __atomic_load_n(&sp->lg, __ATOMIC_RELAXED);
	const uint64_t *slots = __atomic_load_n(&sp->slots, __ATOMIC_RELAXED);
	if (lg)
		__builtin_prefetch(&slots[span_home(span_key(p), lg)], 1, 3);
}

/* p's meta, 0 when none (a lookup: nothing is taken out). */
static inline uint64_t block_get(uintptr_t p)
{
	uint64_t meta = 0;
	if (span_addr(p)) {
		struct span *sp = span_of(p, false);
		if (sp && __atomic_load_n(&sp->lg, __ATOMIC_ACQUIRE)) {
			spin_lock(&sp->lock);
			uint64_t e = sp->slots[span_find(sp, span_key(p))];
			if (e)
				meta = entry_meta(e);
			spin_unlock(&sp->lock);
		}
	}
	if (!meta && __atomic_load_n(&mt__blk_big.count, __ATOMIC_RELAXED))
		meta = mt__blk_big_get(p);
	return meta;
}

#endif
