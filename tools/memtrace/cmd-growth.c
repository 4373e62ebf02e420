/* SPDX-License-Identifier: MIT */
/*
 * cmd-growth.c - `memtrace growth SNAP...`: over a series of snapshots of one
 * process, which groups grow and how steadily. A group that grew in most
 * intervals is a leak suspect ("steady"): no single interval holds more than
 * two thirds of its net growth. One whose growth came mostly in one step is a
 * "jump" (a cache filling up, a one-off load). With only two snapshots the
 * difference cannot be told: "growing". Steady growers rank first, then by
 * net growth. Rates use the snapshots' monotonic times.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace growth [OPTIONS] SNAPSHOT SNAPSHOT...\n"
	"\n"
	"Process totals over a series of snapshots of one process, then the leak\n"
	"suspects: groups whose live size grew, steady growers first:\n"
	"  #1 FILE:LINE: size=SIZE (+GROWTH), count=N (+DIFF), +RATE/s, grew in K of M intervals: "
	"steady\n"
	"Snapshots are put in time order.\n"
	"\n" MT_VIEW_HELP "\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot.\n";

typedef struct snapset {
	mt_snap_t snap;
	mt_sym_t *sym;
	mt_stats_t st;
} snapset_t;

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

static const mt_snap_t *nth(const mt_snap_t *first, size_t stride, int i)
{
	return (const mt_snap_t *)((const char *)first + (size_t)i * stride);
}

int mt_series_running(const mt_snap_t *first, size_t stride, int n)
{
	int keep = n;
	while (keep > 2 && mt_reason_final(nth(first, stride, keep - 1)->reason))
		keep--;
	return keep;
}

void mt_series_say_left(const char *cmd, const mt_snap_t *first, size_t stride, int keep, int n)
{
	for (int i = keep; i < n; i++)
		fprintf(stderr,
			"memtrace %s: left out %s, taken %s: the teardown, not the running "
			"program (memtrace leaks reads it)\n",
			cmd, nth(first, stride, i)->file,
			mt_reason_text(nth(first, stride, i)->reason));
}

int mt_snap_order(const mt_snap_t *a, const mt_snap_t *b)
{
	if (a->start_mono_ns == b->start_mono_ns)
		return a->mono_ns < b->mono_ns ? -1 : a->mono_ns > b->mono_ns;
	return a->wall_ns < b->wall_ns ? -1 : a->wall_ns > b->wall_ns;
}

static int cmp_time(const void *a, const void *b)
{
	return mt_snap_order(&((const snapset_t *)a)->snap, &((const snapset_t *)b)->snap);
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

double mt_seconds_between(const mt_snap_t *a, const mt_snap_t *b)
{
	if (a->start_mono_ns == b->start_mono_ns)
		return (double)(int64_t)(b->mono_ns - a->mono_ns) / 1e9;
	return (double)(int64_t)(b->wall_ns - a->wall_ns) / 1e9;
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

int mt_cmd_growth(int argc, char **argv)
{
	mt_view_t v;
	optind = mt_view_parse(&v, "growth", usage_text, argc, argv);
	int n = argc - optind;
	if (n < 2)
		mt_die_usage("growth", "needs two or more snapshot files, got %d", n);

	snapset_t *s = mt_xmalloc((size_t)n * sizeof(*s));
	for (int i = 0; i < n; i++)
		mt_load_or_die(argv[optind + i], &s[i].snap);
	qsort(s, (size_t)n, sizeof(*s), cmp_time);
	int all = n; /* the teardown's snapshots are read, never analysed */
	n = mt_series_running(&s[0].snap, sizeof(*s), n);
	for (int i = 0; i < n; i++) {
		s[i].sym = mt_sym_open(&s[i].snap);
		mt_stats_build(&s[i].snap, s[i].sym, &v, false, &s[i].st);
	}
	for (int i = 1; i < n; i++)
		if (s[i].snap.pid != s[0].snap.pid ||
		    s[i].snap.start_mono_ns != s[0].snap.start_mono_ns) {
			mt_warn_pair(&s[0].snap, &s[i].snap);
			break;
		}

	const mt_stats_t **stp = mt_xmalloc((size_t)n * sizeof(*stp));
	for (int i = 0; i < n; i++)
		stp[i] = &s[i].st;
	double span = mt_seconds_between(&s[0].snap, &s[n - 1].snap);
	size_t ngroups, nsus = 0;
	mt_growth_t *sus = mt_growth_series(stp, n, span, &ngroups), *g;
	while (nsus < ngroups && sus[nsus].net > 0)
		nsus++;
	size_t shown = v.limit && v.limit < nsus ? v.limit : nsus;
	const char *verdict = mt_memory_verdict(&s[0].snap, &s[n - 1].snap,
						mt_growth_every(sus, ngroups, n), n - 1);

	if (v.json) {
		printf("{\"snapshots\":[");
		for (int i = 0; i < n; i++) {
			printf(i ? ",{" : "{");
			mt_json_snap(stdout, &s[i].snap);
			printf("}");
		}
		printf("],\"verdict\":");
		mt_json_str(stdout, verdict);
		printf(",\"seconds\":%.6f,\"group_by\":\"%s\",\"domain\":\"%s\",\"growing\":%zu,"
		       "\"suspects\":[",
		       span, mt_group_name(v.group), mt_domain_name(v.domain), nsus);
		for (size_t k = 0; k < shown; k++) {
			g = &sus[k];
			char *title = mt_stat_title(g->ref);
			printf("%s{\"rank\":%zu,\"key\":", k ? "," : "", k + 1);
			mt_json_str(stdout, title);
			free(title);
			printf(",\"file\":");
			mt_json_str(stdout, g->ref->where.file);
			printf(",\"line\":%d,\"function\":", g->ref->where.line);
			mt_json_str(stdout, g->ref->where.func);
			printf(",\"size\":%" PRIu64 ",\"size_diff\":%" PRId64 ",\"count\":%" PRIu64
			       ",\"count_diff\":%" PRId64
			       ",\"rate\":%.3f,\"grew\":%d,\"intervals\":%d,"
			       "\"kind\":\"%s\",\"sizes\":[",
			       g->size[n - 1], g->net, g->count[n - 1], g->count_diff, g->rate,
			       g->grew, n - 1, mt_growth_kind(g, n));
			for (int i = 0; i < n; i++)
				printf("%s%" PRIu64, i ? "," : "", g->size[i]);
			printf("]}");
		}
		printf("]}\n");
	} else {
		char *exe = mt_printable(s[0].snap.exe);
		printf("Growth over %d snapshots of pid %u (%s), %.3f s from snapshot %u to %u\n",
		       n, s[0].snap.pid, exe, span, s[0].snap.seq, s[n - 1].snap.seq);
		free(exe);
		printf("Process totals:\n  %5s %10s %11s %9s %11s %11s %11s %6s %11s %11s\n", "seq",
		       "seconds", "heap live", "blocks", "heap peak", "mmap live", "held", "arenas",
		       "RSS", "VMS");
		for (int i = 0; i < n; i++) {
			char live[32], peak[32], mm[32], held[32], rss[32], vms[32];
			const mt_totals_t *t = &s[i].snap.totals;
			const mt_alloc_stats_t *a = &s[i].snap.alloc;
			mt_format_size(live, sizeof(live), (double)t->heap_live_bytes, false);
			mt_format_size(peak, sizeof(peak), (double)t->heap_peak_bytes, false);
			mt_format_size(mm, sizeof(mm), (double)t->mmap_live_bytes, false);
			mt_format_size(held, sizeof(held), (double)a->held, false);
			mt_format_size(rss, sizeof(rss), (double)a->rss, false);
			mt_format_size(vms, sizeof(vms), (double)a->vms, false);
			printf("  %5u %10.3f %11s %9" PRIu64 " %11s %11s %11s %6" PRIu64
			       " %11s %11s\n",
			       s[i].snap.seq, mt_snap_seconds(&s[i].snap), live, t->heap_live_count,
			       peak, mm, held, a->arenas, rss, vms);
		}
		if (s[0].snap.has_alloc && s[n - 1].snap.has_alloc)
			printf("Verdict: %s\n", verdict);
		printf("Leak suspects (%s, %s), steady growth first: %zu growing\n",
		       mt_group_plural(v.group), mt_domain_name(v.domain), nsus);
		for (size_t k = 0; k < shown; k++) {
			char size[32], diff[32], rate[32];
			g = &sus[k];
			char *title = mt_stat_title(g->ref);
			mt_format_size(size, sizeof(size), (double)g->size[n - 1], false);
			mt_format_size(diff, sizeof(diff), (double)g->net, true);
			mt_format_size(rate, sizeof(rate), g->rate, true);
			if (v.group == MT_GROUP_TYPE) /* objgraph's show_growth */
				printf("#%zu %-28s %10" PRIu64 " %+10" PRId64
				       "  (%s, %s), grew in %d of %d intervals: %s\n",
				       k + 1, title, g->count[n - 1], g->count_diff, size, diff,
				       g->grew, n - 1, mt_growth_kind(g, n));
			else
				printf("#%zu %s: size=%s (%s), count=%" PRIu64 " (%+" PRId64
				       "), %s/s, grew in %d of %d intervals: %s\n",
				       k + 1, title, size, diff, g->count[n - 1], g->count_diff,
				       rate, g->grew, n - 1, mt_growth_kind(g, n));
			free(title);
			mt_print_trace(g->ref); /* -g traceback: every frame, as show */
		}
	}

	mt_series_say_left("growth", &s[0].snap, sizeof(*s), n, all);
	mt_growth_free(sus, ngroups);
	free(stp);
	for (int i = 0; i < all; i++) {
		if (i < n) {
			mt_stats_free(&s[i].st);
			mt_sym_close(s[i].sym);
		}
		mt_snap_free(&s[i].snap);
	}
	free(s);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
