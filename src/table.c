/* SPDX-License-Identifier: MIT */
/*
 * table.c - what memtrace knows: callsites, live heap blocks, live anonymous
 * mappings, and the process totals.
 *
 * Conceptually a table with one row per live block (pointer, requested size,
 * callsite) and one row per callsite (domain, stack, live bytes, live count,
 * cumulative count and bytes, peak live bytes).
 *
 *   callsites  64 shards by stack hash, each an open-addressing index of
 *              {hash, site} under its own mutex; records are never freed,
 *              and are also reachable by id (24 bits, 0 = none) through a
 *              two-level array read lock-free.
 *   live heap  each block's meta (requested size, Python object, owner,
 *              site id) kept by address in the live-block index (blocks.h,
 *              blocks.c); this file says what a meta means and counts it.
 *              The owner bit says which allocator holds the block (arena.c).
 *   mappings   one sorted array of regions under one mutex (mmap calls are
 *              rare and cost a syscall anyway).
 *   counters   per-thread blocks of per-callsite counts, written only by
 *              their thread and added up by a dump; of the heap's process
 *              totals only the live bytes (for the peak) are kept on the hot
 *              path, the counts are summed from the callsites when read.
 *
 * Every lock of the library, in the order they nest:
 *   0. attach.c's patch lock (attached only: the GOT slots it patched),
 *      taken before a dump's lock, never inside one; inside it the
 *      loader's dl_iterate_phdr lock and 7;
 *   1. snapshot.c's dump lock (one dump at a time; the dump takes what
 *      follows);
 *   2. python.c's code-object lock (hook.c's fork handler takes it first);
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
#include <sched.h>
#include <stdint.h>
#include <string.h>

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

/* ---- callsite state ---- */
#define SITE_SHARDS 64
#define ID_BITS 24
/* A live block's meta (blocks.h keeps it): requested size << 26 | Python
 * object << 25 | owner << 24 | site id */
#define SIZE_SHIFT MT_META_SIZE_SHIFT
#define OWNER_BIT (1ull << ID_BITS)
#define PYOBJ_BIT (1ull << (ID_BITS + 1)) /* a Python object (the OBJ domain) */
#define SIZE_MAX_PACKED ((1ull << (64 - SIZE_SHIFT)) - 1)
_Static_assert(ID_BITS + 2 == MT_META_SIZE_SHIFT,
	       "the meta's low bits: site id, owner, Python object");
#define ID_CHUNK 4096
#define ID_CHUNKS ((1u << ID_BITS) / ID_CHUNK)

/* A shard's index: open addressing on the stack hash, each slot the hash
 * and the site, so a probe reads no site record until the hashes agree
 * (uthash's chained buckets cost a cache miss per record on the chain: at
 * 100,000 callsites, half of every tracked call). Stacks with one 64-bit
 * hash sit in neighbouring slots and are told apart by their frames. */
struct site_slot {
	uint64_t hash;
	mt_site_t *site;
};

struct site_shard {
	pthread_mutex_t lock;
	struct site_slot *idx; /* NULL until the shard's first site */
	uint32_t cap, count;   /* at most half full */
} __attribute__((aligned(MT_CACHELINE)));

static struct site_shard site_shards[SITE_SHARDS];
static mt_site_t **id_chunks[ID_CHUNKS];
static uint32_t next_id = 1;

/* ---- mapping state ---- */
struct region {
	uintptr_t lo, hi;
	mt_site_t *site;
};

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;
static size_t nregions, regions_cap;

/* ---- totals ---- */
static mt_totals_t totals;

#define ADD(x, v) __atomic_add_fetch(&(x), (v), __ATOMIC_RELAXED)
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static void raise_peak(uint64_t *peak, uint64_t now)
{
	uint64_t old = LOAD(*peak);
	while (now > old && !__atomic_compare_exchange_n(peak, &old, now, true, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
}

static void blk_destructor(void *arg);
static pthread_key_t blk_key;
static int blk_key_ok;

bool mt__table_init(void)
{
	blk_key_ok = pthread_key_create(&blk_key, blk_destructor) == 0;
	for (int i = 0; i < SITE_SHARDS; i++)
		pthread_mutex_init(&site_shards[i].lock, NULL);
	return true;
}

/* ---- callsites ---- */

/* Two independent multiply lanes: half the latency of one serial chain. */
static uint64_t stack_hash(const uintptr_t *frames, int n, int domain)
{
	uint64_t a = 0x9e3779b97f4a7c15ull ^ (uint64_t)(n * 2 + domain), b = 0xc2b2ae3d27d4eb4full;
	int i = 0;
	for (; i + 1 < n; i += 2) {
		a = (a ^ frames[i]) * 0xff51afd7ed558ccdull;
		b = (b ^ frames[i + 1]) * 0xc4ceb9fe1a85ec53ull;
	}
	if (i < n)
		a = (a ^ frames[i]) * 0xff51afd7ed558ccdull;
	uint64_t h = a ^ (b >> 29) ^ (a >> 32);
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h ? h : 1;
}

static bool publish_id(mt_site_t *s)
{
	uint32_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	if (id >= (1u << ID_BITS))
		return false;
	mt_site_t ***slot = &id_chunks[id / ID_CHUNK];
	mt_site_t **chunk = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!chunk) {
		mt_site_t **fresh = mt__map(ID_CHUNK * sizeof(*fresh));
		if (!fresh)
			return false;
		if (__atomic_compare_exchange_n(slot, &chunk, fresh, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			chunk = fresh;
		else
			mt__unmap(fresh, ID_CHUNK * sizeof(*fresh));
	}
	s->id = id;
	__atomic_store_n(&chunk[id % ID_CHUNK], s, __ATOMIC_RELEASE);
	ADD(totals.sites, 1);
	return true;
}

static mt_site_t *site_by_id(uint32_t id)
{
	MT_ASSERT(id < (1u << ID_BITS));
	mt_site_t **chunk = __atomic_load_n(&id_chunks[id / ID_CHUNK], __ATOMIC_ACQUIRE);
	return chunk ? __atomic_load_n(&chunk[id % ID_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

static mt_site_t *site_lookup(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			      int domain);

/* A per-thread direct-mapped cache in front of the shards (in the thread's
 * block, below): a hot path finds its callsite without a lock. Entries are
 * verified frame by frame, so two stacks with one hash are never merged.
 * Not in static TLS: 4 KiB of it per thread left too little of glibc's
 * surplus for a library dlopen'ed later (memtrace's own, at an attach). */
#define TL_CACHE 256
struct site_cache {
	uint64_t hash;
	mt_site_t *site;
};
static struct site_cache *my_sites(void);

static inline bool same_site(const mt_site_t *s, const uintptr_t *frames, int n, int domain)
{
	return s->domain == domain && s->nframes == n &&
	       memcmp(s->frames, frames, (size_t)n * sizeof(*frames)) == 0;
}

mt_site_t *mt__site_get(const uintptr_t *frames, int n, int domain)
{
	uint64_t h = stack_hash(frames, n, domain);
	struct site_shard *sh = &site_shards[h % SITE_SHARDS];
	mt_site_t *s;
	unsigned slot = (unsigned)(h >> 32) % TL_CACHE;

	struct site_cache *tl_sites = my_sites();
	s = tl_sites ? tl_sites[slot].site : NULL;
	if (s && tl_sites[slot].hash == h && same_site(s, frames, n, domain))
		return s;
	s = site_lookup(sh, h, frames, n, domain);
	if (s && tl_sites) {
		tl_sites[slot].hash = h;
		tl_sites[slot].site = s;
	}
	return s;
}

/* The shard's low bits chose the shard: the slot starts from the others. */
static inline uint32_t site_home(uint64_t h, uint32_t cap)
{
	return (uint32_t)(h >> 6) & (cap - 1);
}

/* Doubles a shard's index; false (index unchanged) when out of memory. */
static bool site_idx_grow(struct site_shard *sh)
{
	uint32_t cap = sh->cap ? sh->cap * 2 : 64;
	struct site_slot *t = mt__ialloc((size_t)cap * sizeof(*t)); /* zeroed */
	if (!t)
		return false;
	for (uint32_t i = 0; i < sh->cap; i++) {
		if (!sh->idx[i].site)
			continue;
		uint32_t j = site_home(sh->idx[i].hash, cap);
		while (t[j].site)
			j = (j + 1) & (cap - 1);
		t[j] = sh->idx[i];
	}
	mt__ifree(sh->idx, (size_t)sh->cap * sizeof(*t));
	sh->idx = t;
	sh->cap = cap;
	return true;
}

static mt_site_t *site_lookup(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			      int domain)
{
	mt_site_t *s = NULL;
	uint32_t i = 0;

	pthread_mutex_lock(&sh->lock);
	if (sh->cap) {
		for (i = site_home(h, sh->cap); sh->idx[i].site; i = (i + 1) & (sh->cap - 1))
			if (sh->idx[i].hash == h && same_site(sh->idx[i].site, frames, n, domain)) {
				s = sh->idx[i].site;
				goto out;
			}
	}
	if ((sh->count + 1) * 2 > sh->cap) {
		if (!site_idx_grow(sh))
			goto out; /* out of memory: the allocation goes untracked */
		for (i = site_home(h, sh->cap); sh->idx[i].site; i = (i + 1) & (sh->cap - 1))
			;
	}
	s = mt__ialloc(sizeof(*s) + (size_t)n * sizeof(*frames));
	if (!s)
		goto out;
	s->hash = h;
	s->domain = (uint8_t)domain;
	s->nframes = (uint8_t)n;
	memcpy(s->frames, frames, (size_t)n * sizeof(*frames));
	if (!publish_id(s)) {
		/* more callsites than ids: the allocation goes untracked */
		mt__ifree(s, sizeof(*s) + (size_t)n * sizeof(*frames));
		s = NULL;
		goto out;
	}
	sh->idx[i].hash = h;
	sh->idx[i].site = s;
	sh->count++;
out:
	pthread_mutex_unlock(&sh->lock);
	return s;
}

static void site_alloc(mt_site_t *s, uint64_t size, uint64_t count)
{
	ADD(s->alloc_count, count);
	ADD(s->alloc_bytes, size);
	ADD(s->live_count, (int64_t)count);
	raise_peak((uint64_t *)&s->peak_bytes, (uint64_t)ADD(s->live_bytes, (int64_t)size));
}

/* Takes bytes and blocks off a site's live figures (blocks may be negative
 * when a mapping splits in two). */
static void site_release(mt_site_t *s, uint64_t size, int64_t blocks)
{
	ADD(s->live_bytes, -(int64_t)size);
	ADD(s->live_count, -blocks);
}

/* ---- per-thread counting for the heap ----
 *
 * Threads that allocate at the same callsites would otherwise bounce the
 * sites' counter cache lines between cores on every call. Each thread adds
 * its heap counts into a block of its own (64 entries, direct-mapped by site
 * id), with atomic adds on lines no other thread writes; an entry is flushed
 * into its site when another site needs its place, and the live-byte total
 * into the process total every 64 KiB. Only the owner writes its block, with
 * plain stores; a dump reads every registered block (mt__table_gather) and
 * adds what is pending, so snapshots are exact; only the process peak is
 * coarser: it may miss up to 64 KiB per thread. A block's lock is taken only
 * to change which site an entry counts for, by its thread, or by a dump
 * while it reads the block. At
 * thread exit a pthread key destructor flushes the block and frees it for the
 * next thread; later calls in that thread count straight into the sites.
 */
#define TL_SLOTS 64
#define TL_LIVE_BATCH (64 << 10)

struct tl_entry {
	mt_site_t *site;
	uint32_t id; /* site's id: a free finds its entry without the site */
	int64_t bytes, count, allocs, alloc_bytes;
};

struct tl_block {
	struct tl_entry e[TL_SLOTS];
	struct site_cache sites[TL_CACHE]; /* cleared when its thread ends */
	int64_t live_bytes;
	int lock, in_use;
	uintptr_t stack; /* an address on its thread's stack (the leak scan) */
	struct tl_block *next;
} __attribute__((aligned(MT_CACHELINE)));

/* Addresses on the stacks of threads that have exited, the latest 1024:
 * glibc keeps such stacks mapped for reuse, and the leak scan must not
 * take their stale words for pointers. */
#define DEAD_MARKS 1024
static uintptr_t dead_marks[DEAD_MARKS];
static unsigned dead_next;

static struct tl_block *blocks; /* every block ever made; never freed */
static __thread struct tl_block *tl_blk __attribute__((tls_model("initial-exec")));
static __thread int tl_blk_gone __attribute__((tls_model("initial-exec")));

static void blk_lock(struct tl_block *b)
{
	while (__atomic_exchange_n(&b->lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&b->lock, __ATOMIC_RELAXED))
			mt__cpu_relax();
}

static void blk_unlock(struct tl_block *b)
{
	__atomic_store_n(&b->lock, 0, __ATOMIC_RELEASE);
}

/* Moves an entry's counts into its site; the block's lock is held. */
/* Only the owning thread writes its block's figures: plain stores (relaxed
 * atomics, so that a dump may read them at any time), no lock prefix. */
#define OWN_ADD(x, v)                                                             \
	({                                                                        \
		__typeof__(x) n_ = __atomic_load_n(&(x), __ATOMIC_RELAXED) + (v); \
		__atomic_store_n(&(x), n_, __ATOMIC_RELAXED);                     \
		n_;                                                               \
	})
#define OWN_TAKE(x)                                                         \
	({                                                                  \
		__typeof__(x) v_ = __atomic_load_n(&(x), __ATOMIC_RELAXED); \
		__atomic_store_n(&(x), 0, __ATOMIC_RELAXED);                \
		v_;                                                         \
	})

/* Moves an entry's counts into its site: the owning thread only, with the
 * block's lock held. */
static void entry_flush(struct tl_entry *e)
{
	mt_site_t *s = e->site;
	if (!s)
		return;
	int64_t bytes = OWN_TAKE(e->bytes);
	int64_t count = OWN_TAKE(e->count);
	int64_t allocs = OWN_TAKE(e->allocs);
	int64_t abytes = OWN_TAKE(e->alloc_bytes);
	if (allocs)
		ADD(s->alloc_count, (uint64_t)allocs);
	if (abytes)
		ADD(s->alloc_bytes, (uint64_t)abytes);
	if (count)
		ADD(s->live_count, count);
	if (bytes) {
		int64_t now = ADD(s->live_bytes, bytes);
		if (bytes > 0 && now > 0)
			raise_peak((uint64_t *)&s->peak_bytes, (uint64_t)now);
	}
}

/*
 * While a dump writes (from mt__table_gather to mt__table_gather_end), what
 * it gathered as pending must stay pending: a flush into the sites or the
 * totals then would be counted twice (a site read after it holds the
 * flushed figures, and the dump adds what it gathered). So flushes wait:
 * an entry to switch counts straight into its site instead, the live batch
 * grows on, a thread that exits waits for the dump to end. Checked under
 * the block's lock, which the gather takes after raising the flag.
 */
static int dumping;

static inline bool dump_on(void)
{
	return __atomic_load_n(&dumping, __ATOMIC_ACQUIRE) != 0;
}

/* The block's live batch into the totals: the owning thread only. */
static void live_flush_locked(struct tl_block *b)
{
	int64_t d = OWN_TAKE(b->live_bytes);
	if (d) {
		uint64_t now = ADD(totals.heap_live_bytes, (uint64_t)d);
		if (d > 0)
			raise_peak(&totals.heap_peak_bytes, now);
	}
}

static void live_flush(struct tl_block *b)
{
	blk_lock(b);
	if (!dump_on())
		live_flush_locked(b);
	blk_unlock(b);
}

/* Every entry and the live batch: a thread leaving its block. */
static void block_flush(struct tl_block *b)
{
	for (;;) {
		blk_lock(b);
		if (!dump_on())
			break;
		blk_unlock(b);
		sched_yield(); /* a dump is reading: at most its few milliseconds */
	}
	for (int i = 0; i < TL_SLOTS; i++)
		entry_flush(&b->e[i]);
	live_flush_locked(b);
	blk_unlock(b);
}

static void blk_destructor(void *arg)
{
	struct tl_block *b = arg;
	block_flush(b);
	blk_lock(b);
	for (int i = 0; i < TL_SLOTS; i++) {
		b->e[i].site = NULL;
		b->e[i].id = 0;
	}
	blk_unlock(b);
	memset(b->sites, 0, sizeof(b->sites));
	tl_blk = NULL;
	tl_blk_gone = 1;
	unsigned at = __atomic_fetch_add(&dead_next, 1, __ATOMIC_RELAXED) % DEAD_MARKS;
	__atomic_store_n(&dead_marks[at], (uintptr_t)__builtin_frame_address(0), __ATOMIC_RELAXED);
	__atomic_store_n(&b->stack, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
}

static struct tl_block *my_block(void)
{
	if (MT_LIKELY(tl_blk != NULL))
		return tl_blk;
	if (tl_blk_gone || !blk_key_ok)
		return NULL;
	struct tl_block *b;
	for (b = __atomic_load_n(&blocks, __ATOMIC_ACQUIRE); b; b = b->next) {
		int free_ = 0;
		if (__atomic_compare_exchange_n(&b->in_use, &free_, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			break;
	}
	if (!b) {
		b = mt__ialloc(sizeof(*b));
		if (!b)
			return NULL;
		memset(b->sites, 0, sizeof(b->sites));
		b->in_use = 1;
		b->next = __atomic_load_n(&blocks, __ATOMIC_RELAXED);
		while (!__atomic_compare_exchange_n(&blocks, &b->next, b, true, __ATOMIC_RELEASE,
						    __ATOMIC_RELAXED))
			;
	}
	tl_blk = b;
	__atomic_store_n(&b->stack, (uintptr_t)__builtin_frame_address(0), __ATOMIC_RELAXED);
	if (pthread_setspecific(blk_key, b) != 0) {
		/* no destructor: count straight into the sites */
		tl_blk = NULL;
		tl_blk_gone = 1;
		block_flush(b);
		__atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
		return NULL;
	}
	return b;
}

static struct site_cache *my_sites(void)
{
	struct tl_block *b = my_block();
	return b ? b->sites : NULL;
}

/* Counts straight into the site and the totals, past this thread's block
 * (none, or one a dump is reading). */
static void count_direct(mt_site_t *s, int64_t bytes, int64_t count, bool alloc)
{
	if (alloc) {
		site_alloc(s, (uint64_t)bytes, (uint64_t)count);
		raise_peak(&totals.heap_peak_bytes, ADD(totals.heap_live_bytes, (uint64_t)bytes));
	} else {
		site_release(s, (uint64_t)-bytes, -count);
		ADD(totals.heap_live_bytes, (uint64_t)bytes);
	}
}

/* heap_count without this thread's block, or to switch the block's entry
 * to another site. */
static __attribute__((noinline)) void heap_count_slow(mt_site_t *s, int64_t bytes, int64_t count,
						      bool alloc)
{
	struct tl_block *b = my_block();
	if (!b) {
		count_direct(s, bytes, count, alloc);
		return;
	}
	struct tl_entry *e = &b->e[s->id % TL_SLOTS];
	if (e->site != s) {
		blk_lock(b);
		if (dump_on()) {
			/* the entry's pending figures are the dump's now */
			blk_unlock(b);
			count_direct(s, bytes, count, alloc);
			return;
		}
		entry_flush(e);
		e->site = s;
		e->id = s->id;
		blk_unlock(b);
	}
	OWN_ADD(e->bytes, bytes);
	OWN_ADD(e->count, count);
	if (alloc) {
		OWN_ADD(e->allocs, count);
		OWN_ADD(e->alloc_bytes, bytes);
	}
	int64_t live = OWN_ADD(b->live_bytes, bytes);
	if (live >= TL_LIVE_BATCH || live <= -TL_LIVE_BATCH)
		live_flush(b);
}

/* Adds a heap block's weighted figures into this thread's block: a few
 * plain stores when its entry already counts for site id. */
static inline bool heap_count_fast(uint32_t id, int64_t bytes, int64_t count, bool alloc)
{
	struct tl_block *b = tl_blk;
	if (MT_UNLIKELY(!b))
		return false;
	struct tl_entry *e = &b->e[id % TL_SLOTS];
	if (MT_UNLIKELY(e->id != id)) /* ids start at 1: 0 is a free entry */
		return false;
	OWN_ADD(e->bytes, bytes);
	OWN_ADD(e->count, count);
	if (alloc) {
		OWN_ADD(e->allocs, count);
		OWN_ADD(e->alloc_bytes, bytes);
	}
	int64_t live = OWN_ADD(b->live_bytes, bytes);
	if (MT_UNLIKELY(live >= TL_LIVE_BATCH || live <= -TL_LIVE_BATCH))
		live_flush(b);
	return true;
}

/* Adds a heap block's weighted figures (negative for a release). */
static inline void heap_count(mt_site_t *s, int64_t bytes, int64_t count, bool alloc)
{
	if (!heap_count_fast(s->id, bytes, count, alloc))
		heap_count_slow(s, bytes, count, alloc);
}

/* What threads still hold, per site id, as a dump last gathered it (under
 * snapshot.c's dump lock): added when a site is read. Temporary memory, so
 * that callsite records stay small. */
struct pend {
	int64_t bytes, count, allocs, abytes;
	int64_t mlive, mcount; /* an mmap site's live figures at the gather */
	uint64_t c[MT_SITE_NCOUNTERS];	       /* the site's figures as the dump writes them */
	bool frozen;
};
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

/* A dump reads every thread's pending figures without moving them: the
 * owners keep writing without a lock prefix. */
void mt__table_gather_end(void)
{
	pend_mmap = false;
	gathered = false;
	__atomic_store_n(&dumping, 0, __ATOMIC_RELEASE);
}

void mt__table_gather(void)
{
	int64_t live = 0;
	__atomic_store_n(&dumping, 1, __ATOMIC_SEQ_CST);
	size_t n = __atomic_load_n(&next_id, __ATOMIC_ACQUIRE);
	mt__unmap(pend_tab, pend_cap * sizeof(*pend_tab));
	pend_cap = n + 64; /* sites made while this runs read as none pending */
	pend_tab = mt__map(pend_cap * sizeof(*pend_tab));
	if (!pend_tab)
		pend_cap = 0;
	for (struct tl_block *b = __atomic_load_n(&blocks, __ATOMIC_ACQUIRE); b; b = b->next) {
		blk_lock(b);
		for (int i = 0; pend_tab && i < TL_SLOTS; i++) {
			struct tl_entry *e = &b->e[i];
			mt_site_t *s = e->site;
			if (!s || s->id >= pend_cap)
				continue;
			struct pend *p = &pend_tab[s->id];
			p->bytes += __atomic_load_n(&e->bytes, __ATOMIC_RELAXED);
			p->count += __atomic_load_n(&e->count, __ATOMIC_RELAXED);
			p->allocs += __atomic_load_n(&e->allocs, __ATOMIC_RELAXED);
			p->abytes += __atomic_load_n(&e->alloc_bytes, __ATOMIC_RELAXED);
		}
		live += __atomic_load_n(&b->live_bytes, __ATOMIC_RELAXED);
		blk_unlock(b);
	}
	pend_live = live;
	pthread_mutex_lock(&map_lock);
	for (size_t i = 0; pend_tab && i < nregions; i++) {
		const struct region *r = &regions[i];
		if (r->site && r->site->id < pend_cap) {
			pend_tab[r->site->id].mlive += (int64_t)(r->hi - r->lo);
			pend_tab[r->site->id].mcount++;
		}
	}
	pend_mmap = pend_tab != NULL;
	pend_mmap_bytes = LOAD(totals.mmap_live_bytes);
	pend_mmap_count = LOAD(totals.mmap_live_count);
	pthread_mutex_unlock(&map_lock);
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

void mt__count_untracked(void)
{
	static int said;
	if (ADD(totals.untracked_allocs, 1) == 1 &&
	    !__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
		mt__warn(
			"out of memory for memtrace's own tables: from now on some allocations are "
			"not tracked (snapshots count them as untracked); the program is "
			"unaffected");
}

/* ---- live heap blocks ---- */

uint64_t mt__meta_size(uint64_t meta)
{
	return meta >> SIZE_SHIFT;
}

int mt__meta_owner(uint64_t meta)
{
	return (meta & OWNER_BIT) ? 1 : 0;
}

struct pyobj_walk {
	void (*fn)(uintptr_t p, uint64_t size, uint32_t site, void *arg);
	void *arg;
	struct heap_entry *buf;
	size_t cap, n;
};

static void pyobj_copy(uintptr_t p, uint64_t meta, void *arg)
{
	struct pyobj_walk *w = arg;
	if ((meta & PYOBJ_BIT) && w->n < w->cap) {
		w->buf[w->n].key = p;
		w->buf[w->n].meta = meta;
		w->n++;
	}
}

static void pyobj_span(struct span *sp, uintptr_t base, void *arg)
{
	struct pyobj_walk *w = arg;
	uint8_t *lock = sp ? &sp->lock : &mt__blk_big.lock;
	size_t count;
	w->n = 0;
	spin_lock(lock);
	count = sp ? sp->count : mt__blk_big.count;
	if (count > w->cap) {
		size_t want = count * 2 > 256 ? count * 2 : 256;
		spin_unlock(lock);
		if (w->buf)
			mt__ifree(w->buf, w->cap * sizeof(*w->buf));
		w->buf = mt__ialloc(want * sizeof(*w->buf));
		w->cap = w->buf ? want : 0;
		spin_lock(lock);
	}
	mt__blk_foreach_in(sp, base, pyobj_copy, w);
	spin_unlock(lock);
	for (size_t j = 0; j < w->n; j++) {
		/* the blocks are random: their cache misses overlap */
		if (j + 8 < w->n)
			__builtin_prefetch((const void *)(w->buf[j + 8].key + 8), 0, 0);
		w->fn(w->buf[j].key, w->buf[j].meta >> SIZE_SHIFT,
		      (uint32_t)(w->buf[j].meta & ((1u << ID_BITS) - 1)), w->arg);
	}
}

void mt__heap_foreach_pyobj(void (*fn)(uintptr_t p, uint64_t size, uint32_t site, void *arg),
			    void *arg)
{
	/* a table's objects are copied out under its lock and visited after:
	 * fn may look blocks up (another table's lock, or this one's) */
	struct pyobj_walk w = {fn, arg, NULL, 0, 0};
	mt__blk_foreach_table(pyobj_span, &w);
	if (w.buf)
		mt__ifree(w.buf, w.cap * sizeof(*w.buf));
}

/* Sampling mode: a counting filter over recorded blocks' addresses, so that
 * free() of the many unsampled blocks skips the table. */
uint8_t mt__filter[1u << MT_FILTER_BITS];

void mt__filter_pin(const void *p)
{
	__atomic_store_n(&mt__filter[mt__filter_slot(p)], 255, __ATOMIC_RELAXED);
}

static void filter_add(const void *p, int d)
{
	if (!mt__sample_mean)
		return;
	uint8_t *f = &mt__filter[mt__filter_slot(p)];
	uint8_t old = __atomic_load_n(f, __ATOMIC_RELAXED);
	/* a saturated counter stays set: a false "maybe", never a miss */
	while (old != 255 && !__atomic_compare_exchange_n(f, &old, (uint8_t)(old + d), true,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static MT_ALWAYS_INLINE void release_meta(uint64_t meta)
{
	uint64_t size = meta >> SIZE_SHIFT, wbytes, wcount;
	uint32_t id = (uint32_t)(meta & ((1u << ID_BITS) - 1));
	mt__sample_weight(size, &wbytes, &wcount);
	if (heap_count_fast(id, -(int64_t)wbytes, -(int64_t)wcount, false))
		return;
	mt_site_t *s = site_by_id(id);
	if (s)
		heap_count_slow(s, -(int64_t)wbytes, -(int64_t)wcount, false);
	else
		ADD(totals.heap_live_bytes, -wbytes);
}

bool mt__heap_add(void *p, size_t size, mt_site_t *site, int owner)
{
	uintptr_t key = (uintptr_t)p;
	uint64_t sz = size > SIZE_MAX_PACKED ? SIZE_MAX_PACKED : size;
	uint64_t meta = sz << SIZE_SHIFT | ((owner & 1) ? OWNER_BIT : 0) |
			((owner & MT_OWNER_PYOBJ) ? PYOBJ_BIT : 0) | site->id;
	MT_ASSERT(site->id > 0 && site->id < (1u << ID_BITS)); /* 0: no site */

	uint64_t stale = block_put(key, meta);
	if (MT_UNLIKELY(stale == ~0ull)) {
		mt__count_untracked();
		return false;
	}
	if (stale)
		release_meta(stale);
	else
		filter_add(p, 1);
	uint64_t wbytes, wcount;
	mt__sample_weight(sz, &wbytes, &wcount);
	heap_count(site, (int64_t)wbytes, (int64_t)wcount, true);
	return true;
}

void mt__heap_prefetch(const void *p)
{
	block_prefetch((uintptr_t)p);
}

uint64_t mt__heap_detach(void *p)
{
	uint64_t meta = block_take((uintptr_t)p);
	if (meta)
		filter_add(p, -1);
	return meta;
}

void mt__heap_release(uint64_t meta)
{
	if (meta)
		release_meta(meta);
}

void mt__heap_reattach(void *p, uint64_t meta)
{
	if (!meta)
		return;
	/* the entry was taken out a moment ago, so the table has room (a span
	 * never shrinks); out of memory, the block is forgotten */
	uint64_t stale = block_put((uintptr_t)p, meta);
	if (stale == ~0ull) {
		release_meta(meta);
		mt__count_untracked();
	} else if (stale) {
		release_meta(stale);
	} else {
		filter_add(p, 1);
	}
}

bool mt__heap_lookup(void *p, uint64_t *meta)
{
	*meta = block_get((uintptr_t)p);
	return *meta != 0;
}

mt_site_t *mt__meta_site(uint64_t meta)
{
	return site_by_id((uint32_t)(meta & ((1u << ID_BITS) - 1)));
}

bool mt__heap_remove(void *p)
{
	uint64_t meta = mt__heap_detach(p);
	mt__heap_release(meta);
	return meta != 0;
}

/* ---- anonymous mappings ---- */

/* First region whose end lies above lo. */
static size_t region_first_above(uintptr_t lo)
{
	size_t a = 0, b = nregions;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (regions[m].hi <= lo)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

static bool region_insert_at(size_t i, struct region r)
{
	if (nregions == regions_cap) {
		size_t cap = regions_cap ? regions_cap * 2 : 256;
		struct region *n = mt__ialloc(cap * sizeof(*n));
		if (!n)
			return false;
		if (regions)
			memcpy(n, regions, nregions * sizeof(*n));
		mt__ifree(regions, regions_cap * sizeof(*n));
		regions = n;
		regions_cap = cap;
	}
	memmove(&regions[i + 1], &regions[i], (nregions - i) * sizeof(*regions));
	regions[i] = r;
	nregions++;
	return true;
}

/* Removes [lo, hi) from the tracked regions; map_lock held. Returns the
 * site of the first region it touched, NULL if none. */
static mt_site_t *regions_cut(uintptr_t lo, uintptr_t hi)
{
	mt_site_t *first = NULL;
	size_t i = region_first_above(lo);

	while (i < nregions && regions[i].lo < hi) {
		struct region *r = &regions[i];
		uintptr_t clo = r->lo > lo ? r->lo : lo;
		uintptr_t chi = r->hi < hi ? r->hi : hi;
		uint64_t bytes = chi - clo;

		if (!first)
			first = r->site;
		site_release(r->site, bytes, 0);
		ADD(totals.mmap_live_bytes, -bytes);
		if (clo == r->lo && chi == r->hi) {
			site_release(r->site, 0, 1);
			ADD(totals.mmap_live_count, -1);
			ADD(totals.mmap_free_count, 1);
			memmove(r, r + 1, (nregions - i - 1) * sizeof(*r));
			nregions--;
			continue;
		}
		if (clo == r->lo) {
			r->lo = chi;
		} else if (chi == r->hi) {
			r->hi = clo;
		} else {
			/* a hole in the middle: one region becomes two */
			struct region tail = {chi, r->hi, r->site};
			r->hi = clo;
			if (region_insert_at(i + 1, tail)) {
				site_release(tail.site, 0, -1);
				ADD(totals.mmap_live_count, 1);
			} else {
				site_release(tail.site, tail.hi - tail.lo, 0);
				ADD(totals.mmap_live_bytes, -(tail.hi - tail.lo));
			}
		}
		i++;
	}
	return first;
}

void mt__mmap_add(void *p, size_t len, mt_site_t *site)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len;

	if (len == 0 || hi < lo)
		return;
	pthread_mutex_lock(&map_lock);
	regions_cut(lo, hi);
	if (region_insert_at(region_first_above(lo), (struct region){lo, hi, site})) {
		site_alloc(site, len, 1);
		ADD(totals.mmap_alloc_count, 1);
		ADD(totals.mmap_alloc_bytes, len);
		ADD(totals.mmap_live_count, 1);
		raise_peak(&totals.mmap_peak_bytes, ADD(totals.mmap_live_bytes, len));
	} else {
		mt__count_untracked();
	}
	pthread_mutex_unlock(&map_lock);
}

mt_site_t *mt__mmap_detach(void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p;
	mt_site_t *first = NULL;

	if (len == 0 || lo + len < lo)
		return NULL;
	pthread_mutex_lock(&map_lock);
	if (nregions)
		first = regions_cut(lo, lo + len);
	pthread_mutex_unlock(&map_lock);
	return first;
}

void mt__mmap_remove(void *p, size_t len)
{
	(void)mt__mmap_detach(p, len);
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
	const uint64_t *src = (const uint64_t *)&totals;
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
	raise_peak(&totals.heap_peak_bytes, t->heap_live_bytes);
	if (t->heap_peak_bytes < t->heap_live_bytes)
		t->heap_peak_bytes = t->heap_live_bytes;
	t->heap_free_count = t->heap_alloc_count - t->heap_live_count;
	mt__unwind_stats(&t->fast_unwinds, &t->unwind_mismatches);
}

void mt__reset_peak(void)
{
	__atomic_store_n(&totals.heap_peak_bytes, LOAD(totals.heap_live_bytes), __ATOMIC_RELAXED);
	__atomic_store_n(&totals.mmap_peak_bytes, LOAD(totals.mmap_live_bytes), __ATOMIC_RELAXED);
}

void mt__sites_foreach(void (*fn)(const mt_site_t *, void *), void *arg)
{
	uint32_t n = __atomic_load_n(&next_id, __ATOMIC_ACQUIRE);
	if (n > (1u << ID_BITS))
		n = 1u << ID_BITS;
	for (uint32_t id = 1; id < n; id++) {
		mt_site_t *s = site_by_id(id);
		if (s)
			fn(s, arg);
	}
}

const uintptr_t *mt__site_frames(const mt_site_t *s, int *n)
{
	*n = s->nframes;
	return s->frames;
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

/* ---- the leak scan's view (leakscan.c), from its child process: one
 * thread, the parent held every table lock when it was made ---- */

uint32_t mt__site_id_end(void)
{
	return __atomic_load_n(&next_id, __ATOMIC_ACQUIRE);
}

static void count_span(struct span *sp, uintptr_t base, void *arg)
{
	(void)base;
	*(size_t *)arg += sp ? sp->count : mt__blk_big.count;
}

size_t mt__heap_count_unlocked(void)
{
	size_t n = 0;
	mt__blk_foreach_table(count_span, &n);
	return n;
}

struct scan_copy {
	mt_scan_block_t *out;
	size_t cap, n;
};

static void scan_copy_one(uintptr_t p, uint64_t meta, void *arg)
{
	struct scan_copy *c = arg;
	uint64_t size = meta >> SIZE_SHIFT;
	if (c->n >= c->cap)
		return;
	c->out[c->n].lo = p;
	c->out[c->n].meta = (size < MT_SCAN_SIZE_MAX ? size : MT_SCAN_SIZE_MAX) << MT_SCAN_SIZE_SHIFT |
			    ((meta & PYOBJ_BIT) ? MT_SCAN_PYOBJ : 0) | (meta & ((1u << ID_BITS) - 1));
	c->n++;
}

static void scan_copy_span(struct span *sp, uintptr_t base, void *arg)
{
	mt__blk_foreach_in(sp, base, scan_copy_one, arg);
}

size_t mt__heap_copy_unlocked(mt_scan_block_t *out, size_t cap)
{
	struct scan_copy c = {out, cap, 0};
	mt__blk_foreach_table(scan_copy_span, &c);
	return c.n;
}

size_t mt__stack_marks(uintptr_t *live, size_t live_cap, uintptr_t *dead, size_t dead_cap,
		       size_t *ndead)
{
	size_t n = 0, d = 0;
	for (struct tl_block *b = blocks; b; b = b->next)
		if (b->in_use && b->stack && n < live_cap)
			live[n++] = b->stack;
	for (size_t i = 0; i < DEAD_MARKS && d < dead_cap; i++)
		if (dead_marks[i])
			dead[d++] = dead_marks[i];
	*ndead = d;
	return n;
}

/* ---- fork ---- */

void mt__table_lock_all(void)
{
	for (int i = 0; i < SITE_SHARDS; i++)
		pthread_mutex_lock(&site_shards[i].lock);
	mt__blk_lock_all();
	pthread_mutex_lock(&map_lock);
	mt__ialloc_lock();
}

void mt__table_atfork_child(void)
{
	for (struct tl_block *b = blocks; b; b = b->next)
		b->lock = 0;
	dumping = 0; /* the parent's dump thread is not here */
}

void mt__table_unlock_all(void)
{
	mt__ialloc_unlock();
	pthread_mutex_unlock(&map_lock);
	mt__blk_unlock_all();
	for (int i = SITE_SHARDS - 1; i >= 0; i--)
		pthread_mutex_unlock(&site_shards[i].lock);
}
