/* SPDX-License-Identifier: MIT */
/*
 * table.h - what the table's files share (table.c has the design and the
 * lock order): a callsite record, what a live block's meta holds, the
 * process totals, the thread's block (its counters are heap.c's, its
 * callsite cache sites.c's) and what a dump gathers. The helpers the hot
 * paths reach across files (a site by id, a site's counts, the thread's
 * block) are inline here, so that a tracked call costs what it did when
 * the table was one file.
 *
 *   sites.c     callsites: the shards, their index, the ids
 *   heap.c      live heap blocks (the index is blocks.h's) and per-thread
 *               counting, the leak scan's view of both
 *   mappings.c  live anonymous mappings
 *   table.c     totals, reading, the dump's gather, fork
 */
#ifndef MT_TABLE_H
#define MT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "arch.h"
#include "blocks.h"

struct mt_site {
	uint64_t hash;
	uint32_t id;
	uint8_t domain, nframes;
	int64_t live_bytes, live_count;
	uint64_t alloc_count, alloc_bytes;
	int64_t peak_bytes;
	uintptr_t frames[];
};

/* A live block's meta (blocks.h keeps it): requested size << 26 | Python
 * object << 25 | owner << 24 | site id */
#define ID_BITS 24
#define SIZE_SHIFT MT_META_SIZE_SHIFT
#define OWNER_BIT (1ull << ID_BITS)
#define PYOBJ_BIT (1ull << (ID_BITS + 1)) /* a Python object (the OBJ domain) */
#define SIZE_MAX_PACKED ((1ull << (64 - SIZE_SHIFT)) - 1)
_Static_assert(ID_BITS + 2 == MT_META_SIZE_SHIFT,
	       "the meta's low bits: site id, owner, Python object");

/* ---- the process totals (table.c) ---- */
extern mt_totals_t mt__totals MT_HIDDEN;

#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static inline void raise_peak(uint64_t *peak, uint64_t now)
{
	uint64_t old = LOAD(*peak);
	while (now > old && !__atomic_compare_exchange_n(peak, &old, now, true, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
}

/* Counts an allocation the tables had no room for, warning the first time
 * (mt__count_untracked, table.c). Inline: mt__heap_add's own code, as when
 * the table was one file, or its hot path loses two instructions to the
 * layout of the cold one. */
extern int mt__untracked_said MT_HIDDEN;
static inline void count_untracked(void)
{
	if (ADD(mt__totals.untracked_allocs, 1) == 1 &&
	    !__atomic_exchange_n(&mt__untracked_said, 1, __ATOMIC_RELAXED))
		mt__warn(
			"out of memory for memtrace's own tables: from now on some allocations are "
			"not tracked (snapshots count them as untracked); the program is "
			"unaffected");
}

/* ---- callsites (sites.c) ---- */
/* Every site by id: a two-level array read lock-free; a chunk, once
 * published, never moves, nor does a site once in it. */
#define ID_CHUNK 4096
#define ID_CHUNKS ((1u << ID_BITS) / ID_CHUNK)
extern mt_site_t **mt__site_ids[ID_CHUNKS] MT_HIDDEN;

static inline mt_site_t *site_by_id(uint32_t id)
{
	MT_ASSERT(id < (1u << ID_BITS));
	mt_site_t **chunk = __atomic_load_n(&mt__site_ids[id / ID_CHUNK], __ATOMIC_ACQUIRE);
	return chunk ? __atomic_load_n(&chunk[id % ID_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

MT_HIDDEN void mt__sites_init(void);
/* The shards' mutexes, 0..63 (the fork; table.c's lock order: 3). */
MT_HIDDEN void mt__sites_lock_all(void);
MT_HIDDEN void mt__sites_unlock_all(void);

static inline void site_alloc(mt_site_t *s, uint64_t size, uint64_t count)
{
	ADD(s->alloc_count, count);
	ADD(s->alloc_bytes, size);
	ADD(s->live_count, (int64_t)count);
	raise_peak((uint64_t *)&s->peak_bytes, (uint64_t)ADD(s->live_bytes, (int64_t)size));
}

/* Takes bytes and blocks off a site's live figures (blocks may be negative
 * when a mapping splits in two). */
static inline void site_release(mt_site_t *s, uint64_t size, int64_t blocks)
{
	ADD(s->live_bytes, -(int64_t)size);
	ADD(s->live_count, -blocks);
}

/* ---- the thread's block (heap.c makes it) ----
 * A per-thread direct-mapped cache of callsites (sites.c) lives in it: a
 * hot path finds its callsite without a lock. Entries are verified frame by
 * frame, so two stacks with one hash are never merged. Not in static TLS:
 * 4 KiB of it per thread left too little of glibc's surplus for a library
 * dlopen'ed later (memtrace's own, at an attach). */
#define TL_SLOTS 128
#define TL_CACHE 256

struct tl_entry {
	mt_site_t *site;
	uint32_t id; /* site's id: a free finds its entry without the site */
	int64_t bytes, count, allocs, alloc_bytes;
};

struct site_cache {
	uint64_t hash;
	mt_site_t *site;
};

struct tl_block {
	struct tl_entry e[TL_SLOTS];
	struct site_cache sites[TL_CACHE]; /* cleared when its thread ends */
	int64_t live_bytes;
	int lock, in_use;
	uintptr_t stack; /* an address on its thread's stack (the leak scan) */
	struct tl_block *next;
} __attribute__((aligned(MT_CACHELINE)));

/* The calling thread's block, NULL before its first and after its end. */
extern __thread struct tl_block *mt__tl_blk MT_HIDDEN __attribute__((tls_model("initial-exec")));
/* Takes a block for the calling thread: NULL once it has ended, or out of
 * memory (it then counts straight into the sites). */
MT_HIDDEN struct tl_block *mt__tl_block_take(void);

static inline struct tl_block *my_block(void)
{
	if (MT_LIKELY(mt__tl_blk != NULL))
		return mt__tl_blk;
	return mt__tl_block_take();
}

MT_HIDDEN void mt__heap_init(void);

/* ---- the dump's gather (table.c), from heap.c's and mappings.c's ---- */
/* What threads still hold, per site id, as a dump last gathered it (under
 * snapshot.c's dump lock): added when a site is read. Temporary memory, so
 * that callsite records stay small. */
struct pend {
	int64_t bytes, count, allocs, abytes;
	int64_t mlive, mcount; /* an mmap site's live figures at the gather */
	uint64_t c[MT_SITE_NCOUNTERS]; /* the site's figures as the dump writes them */
	bool frozen;
};
/* From now until mt__heap_dumping(false), what the threads hold pending
 * stays pending (heap.c says why). */
MT_HIDDEN void mt__heap_dumping(bool on);
/* Adds every thread's pending counts into tab (cap entries, by site id;
 * NULL: none) and returns the live bytes their batches hold. */
MT_HIDDEN int64_t mt__heap_gather(struct pend *tab, size_t cap);
/* Fills tab's mapping figures and the mapping totals under the mapping
 * lock: *on says whether they were taken. */
MT_HIDDEN void mt__mmap_gather(struct pend *tab, size_t cap, bool *on, uint64_t *bytes,
			       uint64_t *count);

/* ---- fork (table.c takes every lock in order) ---- */
MT_HIDDEN void mt__mmap_lock(void);
MT_HIDDEN void mt__mmap_unlock(void);
/* In a forked child: the threads' blocks unlocked, no dump under way. */
MT_HIDDEN void mt__heap_atfork_child(void);

#endif
