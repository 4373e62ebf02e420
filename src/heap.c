/* SPDX-License-Identifier: MIT */
/*
 * heap.c - the heap domain's figures: what a live block's meta means
 * (table.h), and the per-thread counting of the blocks recorded and freed;
 * the leak scan's view of the live blocks and the threads' stacks.
 *
 * A block is in the live-block index (blocks.h) exactly while its bytes are
 * in its site's live figures: added after the real malloc, taken out before
 * the real free. Its figures go into its thread's block first, and from
 * there into its site and the totals (below); a dump adds what the blocks
 * still hold (mt__heap_gather). The threads' blocks' spin locks are leaves
 * (table.c's lock order: 8). The hot paths (mt__heap_add, release_meta, the
 * counting fast path) use only this file's and the headers' inline code.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "arch.h"
#include "blocks.h"
#include "table.h"

/* ---- per-thread counting for the heap ----
 *
 * Threads that allocate at the same callsites would otherwise bounce the
 * sites' counter cache lines between cores on every call. Each thread adds
 * its heap counts into a block of its own (TL_SLOTS entries, direct-mapped
 * by site id), with atomic adds on lines no other thread writes; an entry
 * is flushed into its site when another site needs its place, and the
 * live-byte total into the process total every 64 KiB. Only the owner
 * writes its block, with plain stores; a dump reads every registered block
 * (mt__heap_gather) and adds what is pending, so snapshots are exact; only
 * the process peak is coarser: it may miss up to 64 KiB per thread. A
 * block's lock is taken only to change which site an entry counts for, by
 * its thread, or by a dump while it reads the block. At thread exit a
 * pthread key destructor flushes the block and frees it for the next
 * thread; later calls in that thread count straight into the sites.
 */
#define TL_LIVE_BATCH (64 << 10)

/* Addresses on the stacks of threads that have exited, the latest 1024:
 * glibc keeps such stacks mapped for reuse, and the leak scan must not
 * take their stale words for pointers. */
#define DEAD_MARKS 1024
static uintptr_t dead_marks[DEAD_MARKS];
static unsigned dead_next;

static struct tl_block *blocks; /* every block ever made; never freed */
__thread struct tl_block *mt__tl_blk __attribute__((tls_model("initial-exec")));
static __thread int tl_blk_gone __attribute__((tls_model("initial-exec")));

static void blk_destructor(void *arg);
static pthread_key_t blk_key;
static int blk_key_ok;

void mt__heap_init(void)
{
	blk_key_ok = pthread_key_create(&blk_key, blk_destructor) == 0;
}

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
		uint64_t now = ADD(mt__totals.heap_live_bytes, (uint64_t)d);
		if (d > 0)
			raise_peak(&mt__totals.heap_peak_bytes, now);
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
	mt__tl_blk = NULL;
	tl_blk_gone = 1;
	unsigned at = __atomic_fetch_add(&dead_next, 1, __ATOMIC_RELAXED) % DEAD_MARKS;
	__atomic_store_n(&dead_marks[at], (uintptr_t)__builtin_frame_address(0), __ATOMIC_RELAXED);
	__atomic_store_n(&b->stack, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
}

struct tl_block *mt__tl_block_take(void)
{
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
	mt__tl_blk = b;
	__atomic_store_n(&b->stack, (uintptr_t)__builtin_frame_address(0), __ATOMIC_RELAXED);
	if (pthread_setspecific(blk_key, b) != 0) {
		/* no destructor: count straight into the sites */
		mt__tl_blk = NULL;
		tl_blk_gone = 1;
		block_flush(b);
		__atomic_store_n(&b->in_use, 0, __ATOMIC_RELEASE);
		return NULL;
	}
	return b;
}

/* Counts straight into the site and the totals, past this thread's block
 * (none, or one a dump is reading). */
static void count_direct(mt_site_t *s, int64_t bytes, int64_t count, bool alloc)
{
	if (alloc) {
		site_alloc(s, (uint64_t)bytes, (uint64_t)count);
		raise_peak(&mt__totals.heap_peak_bytes,
			   ADD(mt__totals.heap_live_bytes, (uint64_t)bytes));
	} else {
		site_release(s, (uint64_t)-bytes, -count);
		ADD(mt__totals.heap_live_bytes, (uint64_t)bytes);
	}
}

/* The figures into this thread's entry for their site (plain stores: the
 * thread owns them), the live bytes flushed to the totals past a batch. */
static MT_ALWAYS_INLINE void entry_add(struct tl_block *b, struct tl_entry *e, int64_t bytes,
				       int64_t count, bool alloc)
{
	OWN_ADD(e->bytes, bytes);
	OWN_ADD(e->count, count);
	if (alloc) {
		OWN_ADD(e->allocs, count);
		OWN_ADD(e->alloc_bytes, bytes);
	}
	int64_t live = OWN_ADD(b->live_bytes, bytes);
	if (MT_UNLIKELY(live >= TL_LIVE_BATCH || live <= -TL_LIVE_BATCH))
		live_flush(b);
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
	entry_add(b, e, bytes, count, alloc);
}

/* Adds a heap block's weighted figures into this thread's block: a few
 * plain stores when its entry already counts for site id. */
static inline bool heap_count_fast(uint32_t id, int64_t bytes, int64_t count, bool alloc)
{
	struct tl_block *b = mt__tl_blk;
	if (MT_UNLIKELY(!b))
		return false;
	struct tl_entry *e = &b->e[id % TL_SLOTS];
	if (MT_UNLIKELY(e->id != id)) /* ids start at 1: 0 is a free entry */
		return false;
	entry_add(b, e, bytes, count, alloc);
	return true;
}

/* Adds a heap block's weighted figures (negative for a release). */
static inline void heap_count(mt_site_t *s, int64_t bytes, int64_t count, bool alloc)
{
	if (!heap_count_fast(s->id, bytes, count, alloc))
		heap_count_slow(s, bytes, count, alloc);
}

/* ---- the dump's gather (table.c) ---- */

void mt__heap_dumping(bool on)
{
	if (on)
		__atomic_store_n(&dumping, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n(&dumping, 0, __ATOMIC_RELEASE);
}

/* A dump reads every thread's pending figures without moving them: the
 * owners keep writing without a lock prefix. */
int64_t mt__heap_gather(struct pend *tab, size_t cap)
{
	int64_t live = 0;
	for (struct tl_block *b = __atomic_load_n(&blocks, __ATOMIC_ACQUIRE); b; b = b->next) {
		blk_lock(b);
		for (int i = 0; tab && i < TL_SLOTS; i++) {
			struct tl_entry *e = &b->e[i];
			mt_site_t *s = e->site;
			if (!s || s->id >= cap)
				continue;
			struct pend *p = &tab[s->id];
			p->bytes += __atomic_load_n(&e->bytes, __ATOMIC_RELAXED);
			p->count += __atomic_load_n(&e->count, __ATOMIC_RELAXED);
			p->allocs += __atomic_load_n(&e->allocs, __ATOMIC_RELAXED);
			p->abytes += __atomic_load_n(&e->alloc_bytes, __ATOMIC_RELAXED);
		}
		live += __atomic_load_n(&b->live_bytes, __ATOMIC_RELAXED);
		blk_unlock(b);
	}
	return live;
}

void mt__heap_atfork_child(void)
{
	for (struct tl_block *b = blocks; b; b = b->next)
		b->lock = 0;
	dumping = 0; /* the parent's dump thread is not here */
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
		ADD(mt__totals.heap_live_bytes, -wbytes);
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
		count_untracked();
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
		count_untracked();
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

static MT_ALWAYS_INLINE int forget_block(void *p, int only)
{
	uint64_t meta = block_take((uintptr_t)p);
	if (!meta)
		return -1;
	int owner = mt__meta_owner(meta);
	if (only >= 0 && owner != only) {
		mt__heap_reattach(p, meta);
		return owner;
	}
	filter_add(p, -1);
	release_meta(meta);
	return owner;
}

int mt__heap_forget(void *p)
{
	return forget_block(p, -1);
}

int mt__heap_forget_own(void *p, int owner)
{
	return forget_block(p, owner);
}

bool mt__heap_remove(void *p)
{
	return mt__heap_forget(p) >= 0;
}

/* ---- the leak scan's view (leakscan.c), from its child process: one
 * thread, the parent held every table lock when it was made; and the
 * count, from the parent too, where another thread may be changing it (a
 * moment's figure, as the scan's own is) ---- */

static void count_span(struct span *sp, uintptr_t base, void *arg)
{
	(void)base;
	*(size_t *)arg += sp ? __atomic_load_n(&sp->count, __ATOMIC_RELAXED)
			     : __atomic_load_n(&mt__blk_big.count, __ATOMIC_RELAXED);
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
