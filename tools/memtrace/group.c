/* SPDX-License-Identifier: MIT */
/*
 * group.c - tracemalloc's statistics: live blocks grouped by the line (or
 * file, function, module, whole traceback, or a Python object's type) that
 * allocated them, each group standing for the sites whose frame
 * (frames.c) gives the same key; sorted as tracemalloc sorts them.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <inttypes.h>
#include <time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>



#include "cli.h"

static char *frame_text(const mt_sframe_t *f, enum mt_group g)
{
	const char *mod = f->module ? mt_base_name(f->module) : "?";

	if (f->jit)
		return mt_xasprintf("%s", f->func);
	switch (g) {
	case MT_GROUP_FILE: return mt_xasprintf("%s", f->file ? f->file : mod);
	case MT_GROUP_MODULE:
		return mt_xasprintf("%s", f->module ? f->module : f->python ? f->file : "?");
	case MT_GROUP_FUNCTION:
		return f->func ? mt_xasprintf("%s", f->func)
			       : mt_xasprintf("%s(+0x%llx)", mod, (unsigned long long)f->offset);
	default:
		if (f->file && f->line > 0)
			return mt_xasprintf("%s:%d", f->file, f->line);
		if (f->func)
			return mt_xasprintf("%s(%s)", mod, f->func);
		return mt_xasprintf("%s(+0x%llx)", mod, (unsigned long long)f->offset);
	}
}

struct mt_group_ix {
	size_t idx;
	UT_hash_handle hh;
};

static mt_stat_t *group_for(mt_stats_t *out, char *key, const mt_sframe_t *where)
{
	struct mt_group_ix *g;
	HASH_FIND_STR(out->index, key, g);
	if (g) {
		free(key);
		return &out->v[g->idx];
	}
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 256;
		out->v = mt_xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	mt_stat_t *st = &out->v[out->n];
	memset(st, 0, sizeof(*st));
	st->key = key;
	st->where = *where;
	g = mt_xmalloc(sizeof(*g));
	g->idx = out->n++;
	HASH_ADD_KEYPTR(hh, out->index, st->key, strlen(st->key), g);
	return st;
}

static void credit(mt_stat_t *st, const mt_snap_site_t *site)
{
	st->size += site->live_bytes;
	st->count += site->live_count;
	st->allocs += site->alloc_count;
	st->alloc_bytes += site->alloc_bytes;
}

/* The census's entries (objects by type) in site order, for lookups. */
static int cmp_objtype_site(const void *a, const void *b)
{
	uint32_t x = (*(const mt_snap_objtype_t *const *)a)->site;
	uint32_t y = (*(const mt_snap_objtype_t *const *)b)->site;
	return x < y ? -1 : x > y;
}

static bool type_wanted(const mt_view_t *v, const char *name)
{
	if (!v->ntypes)
		return true;
	for (size_t i = 0; i < v->ntypes; i++)
		if (fnmatch(v->types[i], name, 0) == 0)
			return true;
	return false;
}

/* A site's census entries: [*lo, *hi) of the sorted index. */
static void objtypes_of(const mt_snap_objtype_t **ix, size_t n, uint32_t site, size_t *lo,
			size_t *hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (ix[m]->site < site)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	for (*hi = a; *hi < n && ix[*hi]->site == site; (*hi)++)
		;
}

void mt_stats_build(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v, bool with_dead,
		    mt_stats_t *out)
{
	mt_frames_t fr = {0};
	mt_progress_t pr;

	memset(out, 0, sizeof(*out));
	const mt_snap_objtype_t **ix = NULL;
	bool by_type = v->group == MT_GROUP_TYPE || v->ntypes;
	if (by_type) {
		static bool said;
		if (snap->census != 1 && !said) {
			said = true;
			fprintf(stderr,
				"memtrace: warning: %s has no census of Python objects (%s); "
				"its types are not known\n",
				snap->file,
				snap->census == 2 ? "the main thread ran no Python code while the "
						    "snapshot waited"
				: snap->py_version ? "sampled, or taken at exit"
						   : "not a Python process, or no Python frames");
		}
		ix = mt_xmalloc((snap->nobjtypes + 1) * sizeof(*ix));
		for (size_t i = 0; i < snap->nobjtypes; i++)
			ix[i] = &snap->objtypes[i];
		qsort(ix, snap->nobjtypes, sizeof(*ix), cmp_objtype_site);
	}
	mt_progress_begin(&pr, "symbolizing", snap->file, snap->nsites, "callsites");
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		mt_progress_step(&pr, i);
		/* by type the census stands alone: taken a moment before the
		 * counters, it may count objects the site has freed since */
		if ((site->live_count == 0 && !with_dead && !by_type) ||
		    !mt_site_passes(v, sym, site))
			continue;
		/* by type: the census's objects stand for the site's blocks */
		mt_snap_site_t typed = *site;
		if (by_type) {
			size_t lo, hi;
			objtypes_of(ix, snap->nobjtypes, site->id, &lo, &hi);
			typed.live_bytes = typed.live_count = 0;
			for (size_t k = lo; k < hi; k++) {
				if (!type_wanted(v, ix[k]->name))
					continue;
				if (v->group == MT_GROUP_TYPE) {
					mt_sframe_t where = {.func = ix[k]->name, .python = true};
					mt_stat_t *st = group_for(out, mt_xasprintf("%s", ix[k]->name),
								  &where);
					st->size += ix[k]->bytes;
					st->count += ix[k]->count;
				}
				typed.live_bytes += ix[k]->bytes;
				typed.live_count += ix[k]->count;
			}
			if (v->group == MT_GROUP_TYPE || !typed.live_count)
				continue;
			typed.alloc_count = typed.alloc_bytes = 0;
			site = &typed;
		}

		if (v->group == MT_GROUP_TRACEBACK) {
			mt_site_frames(sym, site, &fr);
			size_t klen = 0;
			char **trace = mt_xmalloc((fr.n ? fr.n : 1) * sizeof(*trace));
			for (size_t j = 0; j < fr.n; j++) {
				char *t = frame_text(fr.v[j], MT_GROUP_LINENO);
				if (fr.v[j]->func && fr.v[j]->file) {
					char *w = mt_xasprintf(fr.v[j]->python ? "%s in %s" : "%s (%s)",
							       t, fr.v[j]->func);
					free(t);
					t = w;
				}
				trace[j] = t;
				klen += strlen(t) + 1;
			}
			char *key = mt_xmalloc(klen + 16);
			key[0] = '\0';
			for (size_t j = 0, at = 0; j < fr.n; j++) {
				size_t l = strlen(trace[j]);
				memcpy(key + at, trace[j], l);
				at += l;
				key[at++] = '\n';
				key[at] = '\0';
			}
			if (!fr.n)
				strcpy(key, "<no frames>");
			mt_sframe_t where = mt_pick_frame(sym, site);
			size_t before = out->n;
			mt_stat_t *st = group_for(out, key, &where);
			if (out->n > before) {
				st->trace = trace;
				st->ntrace = fr.n;
			} else {
				for (size_t j = 0; j < fr.n; j++)
					free(trace[j]);
				free(trace);
			}
			credit(st, site);
		} else if (v->cumulative) {
			/* every distinct frame of the stack, credited once */
			mt_site_frames(sym, site, &fr);
			size_t *seen = mt_xmalloc((fr.n ? fr.n : 1) * sizeof(*seen));
			size_t nseen = 0;
			for (size_t j = 0; j < fr.n; j++) {
				/* indices, not pointers: group_for may move the array */
				size_t idx = (size_t)(group_for(out, frame_text(fr.v[j], v->group),
								fr.v[j]) -
						      out->v);
				bool dup = false;
				for (size_t k = 0; k < nseen && !dup; k++)
					dup = seen[k] == idx;
				if (dup)
					continue;
				seen[nseen++] = idx;
				credit(&out->v[idx], site);
			}
			free(seen);
		} else {
			mt_sframe_t where = mt_pick_frame(sym, site);
			credit(group_for(out, frame_text(&where, v->group), &where), site);
		}
	}
	mt_progress_end(&pr);
	free(fr.v);
	free(ix);
}

mt_stat_t *mt_stats_find(const mt_stats_t *st, const char *key)
{
	struct mt_group_ix *g;
	HASH_FIND_STR(st->index, key, g);
	return g ? &st->v[g->idx] : NULL;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a > b ? -1 : a < b;
}

static int cmp_size(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->size, y->size);
	if (!c)
		c = cmp_u64(x->count, y->count);
	return c ? c : strcmp(y->key, x->key);
}

static int cmp_count(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->count, y->count);
	if (!c)
		c = cmp_u64(x->size, y->size);
	return c ? c : strcmp(y->key, x->key);
}

static int cmp_allocs(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->allocs, y->allocs);
	if (!c)
		c = cmp_u64(x->alloc_bytes, y->alloc_bytes);
	return c ? c : strcmp(y->key, x->key);
}

/* Sorting moves entries: the index is rebuilt for the new positions. */
void mt_stats_sort(mt_stats_t *st, enum mt_sort sort)
{
	struct mt_group_ix *g, *tmp;
	if (st->n > 1) /* none: no array at all */
		qsort(st->v, st->n, sizeof(*st->v),
		      sort == MT_SORT_COUNT    ? cmp_count
		      : sort == MT_SORT_ALLOCS ? cmp_allocs
					       : cmp_size);
	HASH_ITER(hh, st->index, g, tmp)
	{
		HASH_DEL(st->index, g);
		free(g);
	}
	for (size_t i = 0; i < st->n; i++) {
		g = mt_xmalloc(sizeof(*g));
		g->idx = i;
		HASH_ADD_KEYPTR(hh, st->index, st->v[i].key, strlen(st->v[i].key), g);
	}
}

void mt_stats_free(mt_stats_t *st)
{
	struct mt_group_ix *g, *tmp;
	HASH_ITER(hh, st->index, g, tmp)
	{
		HASH_DEL(st->index, g);
		free(g);
	}
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].key);
		for (size_t j = 0; j < st->v[i].ntrace; j++)
			free(st->v[i].trace[j]);
		free(st->v[i].trace);
	}
	free(st->v);
	memset(st, 0, sizeof(*st));
}
