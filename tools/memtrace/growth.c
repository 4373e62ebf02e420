/* SPDX-License-Identifier: MIT */
/*
 * growth.c - one group's live size over a series of snapshots: how much it
 * grew, how fast and how steadily. A group that grew in most intervals is
 * a leak suspect ("steady"): no single interval holds more than two thirds
 * of its net growth. One whose growth came mostly in one step is a "jump"
 * (a cache filling up, a one-off load). With only two snapshots the
 * difference cannot be told: "growing". Steady growers rank first, then by
 * net growth.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *mt_growth_kind(const mt_growth_t *g, int n)
{
	if (g->net <= 0)
		return g->net ? "shrinking" : "flat";
	return n <= 2 ? "growing" : g->steady ? "steady" : "jump";
}

size_t mt_growth_every(const mt_growth_t *g, size_t ng, int n)
{
	size_t k = 0;
	for (size_t i = 0; n >= 3 && i < ng; i++)
		k += g[i].net > 0 && g[i].grew == n - 1;
	return k;
}

/* growers first, steady ones before jumps, then by net growth */
static int cmp_rank(const void *a, const void *b)
{
	const mt_growth_t *x = a, *y = b;
	if ((x->net > 0) != (y->net > 0))
		return x->net > 0 ? -1 : 1;
	if (x->steady != y->steady)
		return x->steady ? -1 : 1;
	if (x->net != y->net)
		return x->net > y->net ? -1 : 1;
	return strcmp(x->ref->key, y->ref->key);
}

mt_growth_t *mt_growth_series(const mt_stats_t *const *st, int n, double seconds, size_t *count)
{
	size_t cap = 0, ng = 0;
	for (int i = 0; i < n; i++)
		cap += st[i]->n;
	mt_growth_t *all = mt_xmalloc((cap + 1) * sizeof(*all));

	/* one series per group, zero where a snapshot lacks it; a group is
	 * new in snapshot i when no earlier snapshot has its key */
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < st[i]->n; k++) {
			const char *key = st[i]->v[k].key;
			bool seen = false;
			for (int j = 0; j < i && !seen; j++)
				seen = mt_stats_find(st[j], key) != NULL;
			if (seen)
				continue;
			mt_growth_t *g = &all[ng++];
			memset(g, 0, sizeof(*g));
			g->size = mt_xmalloc((size_t)n * sizeof(*g->size));
			g->count = mt_xmalloc((size_t)n * sizeof(*g->count));
			for (int j = 0; j < n; j++) {
				const mt_stat_t *x =
					j == i ? &st[i]->v[k] : mt_stats_find(st[j], key);
				g->size[j] = x ? x->size : 0;
				g->count[j] = x ? x->count : 0;
				if (x)
					g->ref = x;
			}
			uint64_t max_step = 0;
			g->net = (int64_t)(g->size[n - 1] - g->size[0]);
			g->count_diff = (int64_t)(g->count[n - 1] - g->count[0]);
			g->rate = seconds > 0 ? (double)g->net / seconds : 0;
			for (int j = 1; j < n; j++) {
				if (g->size[j] <= g->size[j - 1])
					continue;
				g->grew++;
				if (g->size[j] - g->size[j - 1] > max_step)
					max_step = g->size[j] - g->size[j - 1];
			}
			g->steady = g->net > 0 && n > 2 && max_step * 3 <= (uint64_t)g->net * 2;
		}
	}
	qsort(all, ng, sizeof(*all), cmp_rank);
	*count = ng;
	return all;
}

void mt_growth_free(mt_growth_t *g, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(g[i].size);
		free(g[i].count);
	}
	free(g);
}
