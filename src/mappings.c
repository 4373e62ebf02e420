/* SPDX-License-Identifier: MIT */
/*
 * mappings.c - the mmap domain's live figures: every anonymous mapping
 * memtrace recorded, by address, with its callsite.
 *
 * One array of regions sorted by address, never overlapping, under one
 * mutex (table.c's lock order: 5); mmap calls are rare and cost a system
 * call anyway. A munmap, a mremap or a file mapped over part of a region
 * cuts it: a hole in the middle makes two regions of one site. A region's
 * bytes are in its site's live figures and the mapping totals, as long as
 * it is in the array.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "table.h"

struct region {
	uintptr_t lo, hi;
	mt_site_t *site;
};

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;
static size_t nregions, regions_cap;

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
		ADD(mt__totals.mmap_live_bytes, -bytes);
		if (clo == r->lo && chi == r->hi) {
			site_release(r->site, 0, 1);
			ADD(mt__totals.mmap_live_count, -1);
			ADD(mt__totals.mmap_free_count, 1);
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
				ADD(mt__totals.mmap_live_count, 1);
			} else {
				site_release(tail.site, tail.hi - tail.lo, 0);
				ADD(mt__totals.mmap_live_bytes, -(tail.hi - tail.lo));
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
		ADD(mt__totals.mmap_alloc_count, 1);
		ADD(mt__totals.mmap_alloc_bytes, len);
		ADD(mt__totals.mmap_live_count, 1);
		raise_peak(&mt__totals.mmap_peak_bytes, ADD(mt__totals.mmap_live_bytes, len));
	} else {
		count_untracked();
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

/* ---- the dump's gather and the fork (table.c) ---- */

void mt__mmap_gather(struct pend *tab, size_t cap, bool *on, uint64_t *bytes, uint64_t *count)
{
	pthread_mutex_lock(&map_lock);
	for (size_t i = 0; tab && i < nregions; i++) {
		const struct region *r = &regions[i];
		if (r->site && r->site->id < cap) {
			tab[r->site->id].mlive += (int64_t)(r->hi - r->lo);
			tab[r->site->id].mcount++;
		}
	}
	*on = tab != NULL;
	*bytes = LOAD(mt__totals.mmap_live_bytes);
	*count = LOAD(mt__totals.mmap_live_count);
	pthread_mutex_unlock(&map_lock);
}

void mt__mmap_lock(void)
{
	pthread_mutex_lock(&map_lock);
}

void mt__mmap_unlock(void)
{
	pthread_mutex_unlock(&map_lock);
}
