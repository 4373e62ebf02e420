/* SPDX-License-Identifier: MIT */
/*
 * sites.c - callsites: one record per (domain, stack), made on first sight
 * and never freed, found by stack from the hooks and by id from a block's
 * meta (table.h).
 *
 * 64 shards by stack hash, each an open-addressing index of {hash, site}
 * read without a lock and added to under its own mutex (table.c's lock
 * order: 3); in front of them a per-thread cache in the thread's block. Ids are 24
 * bits (0 = none), published in a two-level array read lock-free. A site's
 * frames never change once made; its counts are written with atomic adds.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "table.h"

#define SITE_SHARDS 64

/* A shard's index: open addressing on the stack hash, each slot the hash
 * and the site, so a probe reads no site record until the hashes agree
 * (uthash's chained buckets cost a cache miss per record on the chain: at
 * 100,000 callsites, half of every tracked call). Stacks with one 64-bit
 * hash sit in neighbouring slots and are told apart by their frames. */
struct site_slot {
	uint64_t hash;
	mt_site_t *site; /* written last, with release: a reader that sees it
			  * sees the hash and the whole record */
};

/* Read without the shard's lock: a thread whose cache misses finds a known
 * stack here with no lock taken (at 1,000 callsites and more, nearly every
 * call). Only the lock holder adds, into empty slots; a full index is
 * copied into one twice its size, published whole, and the old one kept
 * (a reader may still be probing it: it is at most half full, so its probe
 * ends, and it misses only sites added since, which the locked lookup
 * then finds). What is kept adds up to less than the live index. */
struct site_index {
	uint32_t cap; /* a power of two; at most half full */
	struct site_slot slot[];
};

struct site_shard {
	pthread_mutex_t lock;
	struct site_index *idx; /* NULL until the shard's first site */
	uint32_t count;
} __attribute__((aligned(MT_CACHELINE)));

static struct site_shard site_shards[SITE_SHARDS];
mt_site_t **mt__site_ids[ID_CHUNKS];
static uint32_t next_id = 1;

void mt__sites_init(void)
{
	for (int i = 0; i < SITE_SHARDS; i++)
		pthread_mutex_init(&site_shards[i].lock, NULL);
}

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
	mt_site_t ***slot = &mt__site_ids[id / ID_CHUNK];
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
	ADD(mt__totals.sites, 1);
	return true;
}

static mt_site_t *site_lookup(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			      int domain);
static mt_site_t *site_find(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			    int domain);

/* The thread's callsite cache (table.h), NULL without a block. */
static struct site_cache *my_sites(void)
{
	struct tl_block *b = my_block();
	return b ? b->sites : NULL;
}

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
	s = site_find(sh, h, frames, n, domain);
	if (!s)
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

/* A known stack's site from the published index, no lock: NULL when not
 * there (yet). */
static mt_site_t *site_find(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			    int domain)
{
	const struct site_index *x = __atomic_load_n(&sh->idx, __ATOMIC_ACQUIRE);
	if (!x)
		return NULL;
	uint32_t mask = x->cap - 1;
	for (uint32_t i = site_home(h, x->cap);; i = (i + 1) & mask) {
		mt_site_t *s = __atomic_load_n(&x->slot[i].site, __ATOMIC_ACQUIRE);
		if (!s)
			return NULL;
		if (__atomic_load_n(&x->slot[i].hash, __ATOMIC_RELAXED) == h &&
		    same_site(s, frames, n, domain))
			return s;
	}
}

static void slot_put(struct site_slot *sl, uint64_t h, mt_site_t *s)
{
	__atomic_store_n(&sl->hash, h, __ATOMIC_RELAXED);
	__atomic_store_n(&sl->site, s, __ATOMIC_RELEASE);
}

/* Publishes an index twice the size (the shard's lock held); false (index
 * unchanged) when out of memory. The old one stays (above). */
static bool site_idx_grow(struct site_shard *sh)
{
	struct site_index *old = sh->idx;
	uint32_t cap = old ? old->cap * 2 : 64;
	struct site_index *t = mt__ialloc_keep(sizeof(*t) + (size_t)cap * sizeof(t->slot[0]));
	if (!t)
		return false;
	memset(t->slot, 0, (size_t)cap * sizeof(t->slot[0]));
	t->cap = cap;
	for (uint32_t i = 0; old && i < old->cap; i++) {
		if (!old->slot[i].site)
			continue;
		uint32_t j = site_home(old->slot[i].hash, cap);
		while (t->slot[j].site)
			j = (j + 1) & (cap - 1);
		t->slot[j] = old->slot[i];
	}
	__atomic_store_n(&sh->idx, t, __ATOMIC_RELEASE);
	return true;
}

static mt_site_t *site_lookup(struct site_shard *sh, uint64_t h, const uintptr_t *frames, int n,
			      int domain)
{
	mt_site_t *s = NULL;
	uint32_t i = 0;

	pthread_mutex_lock(&sh->lock);
	/* again, with adding held off: another thread may have added it */
	if ((s = site_find(sh, h, frames, n, domain)))
		goto out;
	struct site_index *x = sh->idx;
	if (!x || (sh->count + 1) * 2 > x->cap) {
		if (!site_idx_grow(sh))
			goto out; /* out of memory: the allocation goes untracked */
		x = sh->idx;
	}
	for (i = site_home(h, x->cap); x->slot[i].site; i = (i + 1) & (x->cap - 1))
		;
	s = mt__ialloc_keep(sizeof(*s) + (size_t)n * sizeof(*frames)); /* kept for good */
	if (!s)
		goto out;
	s->hash = h;
	s->domain = (uint8_t)domain;
	s->nframes = (uint8_t)n;
	memcpy(s->frames, frames, (size_t)n * sizeof(*frames));
	if (!publish_id(s)) {
		/* more callsites than ids: the allocation goes untracked (the
		 * record's memory stays, as every site's does) */
		s = NULL;
		goto out;
	}
	slot_put(&x->slot[i], h, s);
	sh->count++;
out:
	pthread_mutex_unlock(&sh->lock);
	return s;
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

uint32_t mt__site_id_end(void)
{
	return __atomic_load_n(&next_id, __ATOMIC_ACQUIRE);
}

/* ---- fork ---- */

void mt__sites_lock_all(void)
{
	for (int i = 0; i < SITE_SHARDS; i++)
		pthread_mutex_lock(&site_shards[i].lock);
}

void mt__sites_unlock_all(void)
{
	for (int i = SITE_SHARDS - 1; i >= 0; i--)
		pthread_mutex_unlock(&site_shards[i].lock);
}
