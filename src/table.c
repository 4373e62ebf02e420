/* SPDX-License-Identifier: MIT */
/*
 * table.c - what memtrace knows: callsites, live heap blocks, live anonymous
 * mappings, and the process totals; this file keeps the totals, reads the
 * figures for a dump (the gather: exact while threads run on) and takes
 * every lock for a fork. table.h says which file keeps the rest.
 *
 * Conceptually a table with one row per live block (pointer, requested size,
 * callsite) and one row per callsite (domain, stack, live bytes, live count,
 * cumulative count and bytes, peak live bytes).
 *
 *   callsites  (sites.c) 64 shards by stack hash, each an open-addressing
 *              index of {hash, site} under its own mutex; records are never
 *              freed, and are also reachable by id (24 bits, 0 = none)
 *              through a two-level array read lock-free.
 *   live heap  each block's meta (requested size, Python object, owner,
 *              site id) kept by address in the live-block index (blocks.h,
 *              blocks.c); heap.c says what a meta means and counts it.
 *              The owner bit says which allocator holds the block (arena.c).
 *   mappings   (mappings.c) one sorted array of regions under one mutex
 *              (mmap calls are rare and cost a syscall anyway).
 *   counters   (heap.c) per-thread blocks of per-callsite counts, written
 *              only by their thread and added up by a dump; of the heap's
 *              process totals only the live bytes (for the peak) are kept on
 *              the hot path, the counts are summed from the callsites when
 *              read.
 *
 * Every lock of the library, in the order they nest:
 *   0. attach.c's patch lock (attached only: the GOT slots it patched),
 *      taken before a dump's lock, never inside one; inside it the
 *      loader's dl_iterate_phdr lock and 7;
 *   1. snapshot.c's dump lock (one dump at a time; the dump takes what
 *      follows);
 *   2. python.c's code-object lock (init.c's fork handler takes it first);
 *   3. the callsite shards' mutexes, 0..63;
 *   4. the live-block index: its directory lock, the spans that have a
 *      table in the order they got it, the big table (spin locks,
 *      blocks.h);
 *   5. the mapping lock;
 *   6. ialloc.c's lock (memtrace's memory is allocated under 2 to 5);
 *   7. ialloc.c's own-mappings lock (spin lock): a leaf, around each
 *      mapping memtrace makes or drops, whatever else is held;
 *   8. a thread's counter block (spin lock): a leaf, taken by its thread
 *      or a dump one block at a time with nothing inside, never with 3 to
 *      7 held; a forked child clears them.
 * A fork takes 2 to 6 in that order (lock_all below); the leak scan's
 * clone (leakscan.c) takes 3 to 7. No table lock is held while calling the
 * real allocator or the unwinder.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "table.h"

/* ---- totals ---- */
mt_totals_t mt__totals;

bool mt__table_init(void)
{
	mt__heap_init();
	mt__sites_init();
	return true;
}

int mt__untracked_said;

void mt__count_untracked(void)
{
	count_untracked();
}

/* ---- the dump's gather ---- */

static struct pend *pend_tab;
static size_t pend_cap;
static int64_t pend_live;
/* The mappings at the gather, under the mapping lock: the mmap sites and
 * totals a dump writes are of that one moment (an mmap or munmap while it
 * writes changed one and not the other). */
static bool pend_mmap;
static uint64_t pend_mmap_bytes, pend_mmap_count;
static bool gathered; /* from a gather to its end: sites read frozen */

static const struct pend *pending(const mt_site_t *s)
{
	static const struct pend none;
	return pend_tab && s->id < pend_cap ? &pend_tab[s->id] : &none;
}

/* A site's figures: its own counters, what threads hold pending (p), and
 * for a mapping site the regions as the gather saw them. */
static void site_figures(const mt_site_t *s, const struct pend *p, uint64_t c[MT_SITE_NCOUNTERS])
{
	int64_t lb = LOAD(s->live_bytes) + p->bytes, lc = LOAD(s->live_count) + p->count;
	if (s->domain == MT_DOMAIN_MMAP && pend_mmap) {
		lb = p->mlive;
		lc = p->mcount;
	}
	c[MT_SITE_live_bytes] = lb > 0 ? (uint64_t)lb : 0;
	c[MT_SITE_live_count] = lc > 0 ? (uint64_t)lc : 0;
	c[MT_SITE_alloc_count] = LOAD(s->alloc_count) + (uint64_t)p->allocs;
	c[MT_SITE_alloc_bytes] = LOAD(s->alloc_bytes) + (uint64_t)p->abytes;
	c[MT_SITE_peak_bytes] = (uint64_t)LOAD(s->peak_bytes);
	if (c[MT_SITE_peak_bytes] < c[MT_SITE_live_bytes]) /* pending bytes not yet seen by the peak */
		c[MT_SITE_peak_bytes] = c[MT_SITE_live_bytes];
}

void mt__table_gather_end(void)
{
	pend_mmap = false;
	gathered = false;
	mt__heap_dumping(false);
}

void mt__table_gather(void)
{
	mt__heap_dumping(true);
	size_t n = mt__site_id_end();
	mt__unmap(pend_tab, pend_cap * sizeof(*pend_tab));
	pend_cap = n + 64; /* sites made while this runs read as none pending */
	pend_tab = mt__map(pend_cap * sizeof(*pend_tab));
	if (!pend_tab)
		pend_cap = 0;
	pend_live = mt__heap_gather(pend_tab, pend_cap);
	mt__mmap_gather(pend_tab, pend_cap, &pend_mmap, &pend_mmap_bytes, &pend_mmap_count);
	/* every site's figures, once: the totals are their sums and the SITE
	 * records these, so a snapshot adds up while threads run on (a count
	 * made straight into a site while the dump writes shows next time) */
	for (uint32_t id = 1; pend_tab && id < pend_cap && id < n; id++) {
		mt_site_t *st = site_by_id(id);
		if (st) {
			site_figures(st, &pend_tab[id], pend_tab[id].c);
			pend_tab[id].frozen = true;
		}
	}
	gathered = pend_tab != NULL;
}

/* ---- reading ---- */

static void sum_heap_site(const mt_site_t *s, void *arg)
{
	mt_totals_t *t = arg;
	if (s->domain != MT_DOMAIN_HEAP)
		return;
	uint32_t id;
	int domain, n;
	const uintptr_t *frames;
	uint64_t c[MT_SITE_NCOUNTERS];
	mt__site_read(s, &id, &domain, &n, &frames, c);
	if (gathered) /* in a dump: the live bytes too are the sites' sum */
		t->heap_live_bytes += c[MT_SITE_live_bytes];
	t->heap_live_count += c[MT_SITE_live_count];
	t->heap_alloc_count += c[MT_SITE_alloc_count];
	t->heap_alloc_bytes += c[MT_SITE_alloc_bytes];
}

void mt__totals_get(mt_totals_t *t)
{
	const uint64_t *src = (const uint64_t *)&mt__totals;
	uint64_t *dst = (uint64_t *)t;
	for (size_t i = 0; i < MT_TOTALS_N; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	if (gathered)
		t->heap_live_bytes = 0; /* the sites' sum, below */
	else
		t->heap_live_bytes += (uint64_t)pend_live;
	if (pend_mmap) {
		t->mmap_live_bytes = pend_mmap_bytes;
		t->mmap_live_count = pend_mmap_count;
		if (t->mmap_peak_bytes < t->mmap_live_bytes)
			t->mmap_peak_bytes = t->mmap_live_bytes;
	}
	mt__sites_foreach(sum_heap_site, t);
	/* the peak misses what threads have pending, the live figure not */
	raise_peak(&mt__totals.heap_peak_bytes, t->heap_live_bytes);
	if (t->heap_peak_bytes < t->heap_live_bytes)
		t->heap_peak_bytes = t->heap_live_bytes;
	t->heap_free_count = t->heap_alloc_count - t->heap_live_count;
	mt__unwind_stats(&t->fast_unwinds, &t->unwind_mismatches);
}

void mt__reset_peak(void)
{
	__atomic_store_n(&mt__totals.heap_peak_bytes, LOAD(mt__totals.heap_live_bytes),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&mt__totals.mmap_peak_bytes, LOAD(mt__totals.mmap_live_bytes),
			 __ATOMIC_RELAXED);
}

void mt__site_read(const mt_site_t *s, uint32_t *id, int *domain, int *nframes,
		   const uintptr_t **frames, uint64_t c[MT_SITE_NCOUNTERS])
{
	*id = s->id;
	*domain = s->domain;
	*nframes = s->nframes;
	*frames = s->frames;
	const struct pend *p = pending(s);
	if (gathered && p->frozen)
		memcpy(c, p->c, sizeof(p->c));
	else if (gathered)
		memset(c, 0, MT_SITE_NCOUNTERS * sizeof(*c)); /* made after the gather: next time */
	else
		site_figures(s, p, c);
}

/* ---- fork ---- */

void mt__table_lock_all(void)
{
	mt__sites_lock_all();
	mt__blk_lock_all();
	mt__mmap_lock();
	mt__ialloc_lock();
}

void mt__table_atfork_child(void)
{
	mt__heap_atfork_child();
}

void mt__table_unlock_all(void)
{
	mt__ialloc_unlock();
	mt__mmap_unlock();
	mt__blk_unlock_all();
	mt__sites_unlock_all();
}
