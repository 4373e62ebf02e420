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
#include <uthash.h>

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

typedef struct series {
	char *key;
	const mt_stat_t *ref; /* the group in the latest snapshot that has it */
	uint64_t *size, *count;
	int64_t net, count_diff;
	double rate;
	int grew, shrank;
	uint64_t max_step;
	bool steady;
	UT_hash_handle hh;
} series_t;

typedef struct snapset {
	mt_snap_t snap;
	mt_sym_t *sym;
	mt_stats_t st;
} snapset_t;

static const char *kind(const series_t *g, int n)
{
	return n <= 2 ? "growing" : g->steady ? "steady" : "jump";
}

static int cmp_time(const void *a, const void *b)
{
	const snapset_t *x = a, *y = b;
	if (x->snap.start_mono_ns == y->snap.start_mono_ns)
		return x->snap.mono_ns < y->snap.mono_ns ? -1 : x->snap.mono_ns > y->snap.mono_ns;
	return x->snap.wall_ns < y->snap.wall_ns ? -1 : x->snap.wall_ns > y->snap.wall_ns;
}

static int cmp_suspect(const void *a, const void *b)
{
	const series_t *x = *(series_t *const *)a, *y = *(series_t *const *)b;
	if (x->steady != y->steady)
		return x->steady ? -1 : 1;
	if (x->net != y->net)
		return x->net > y->net ? -1 : 1;
	return strcmp(x->key, y->key);
}

static double seconds_between(const mt_snap_t *a, const mt_snap_t *b)
{
	if (a->start_mono_ns == b->start_mono_ns)
		return (double)(int64_t)(b->mono_ns - a->mono_ns) / 1e9;
	return (double)(int64_t)(b->wall_ns - a->wall_ns) / 1e9;
}

int mt_cmd_growth(int argc, char **argv)
{
	mt_view_t v;
	optind = mt_view_parse(&v, "growth", usage_text, argc, argv);
	int n = argc - optind;
	if (n < 2)
		mt_die_usage("growth", "needs two or more snapshot files, got %d", n);

	snapset_t *s = mt_xmalloc((size_t)n * sizeof(*s));
	for (int i = 0; i < n; i++) {
		mt_load_or_die(argv[optind + i], &s[i].snap);
		s[i].sym = mt_sym_open(&s[i].snap);
		mt_stats_build(&s[i].snap, s[i].sym, &v, false, &s[i].st);
	}
	qsort(s, (size_t)n, sizeof(*s), cmp_time);
	for (int i = 1; i < n; i++)
		if (s[i].snap.pid != s[0].snap.pid ||
		    s[i].snap.start_mono_ns != s[0].snap.start_mono_ns) {
			mt_warn_pair(&s[0].snap, &s[i].snap);
			break;
		}

	/* one series per group, zero where a snapshot lacks it */
	series_t *all = NULL, *g, *tmp;
	size_t ngroups = 0;
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < s[i].st.n; k++) {
			const mt_stat_t *st = &s[i].st.v[k];
			HASH_FIND_STR(all, st->key, g);
			if (!g) {
				g = mt_xmalloc(sizeof(*g));
				memset(g, 0, sizeof(*g));
				g->key = st->key;
				g->size = mt_xmalloc((size_t)n * sizeof(*g->size));
				g->count = mt_xmalloc((size_t)n * sizeof(*g->count));
				memset(g->size, 0, (size_t)n * sizeof(*g->size));
				memset(g->count, 0, (size_t)n * sizeof(*g->count));
				HASH_ADD_KEYPTR(hh, all, g->key, strlen(g->key), g);
				ngroups++;
			}
			g->ref = st;
			g->size[i] = st->size;
			g->count[i] = st->count;
		}
	}
	double span = seconds_between(&s[0].snap, &s[n - 1].snap);
	series_t **sus = mt_xmalloc((ngroups + 1) * sizeof(*sus));
	size_t nsus = 0;
	HASH_ITER(hh, all, g, tmp)
	{
		g->net = (int64_t)(g->size[n - 1] - g->size[0]);
		g->count_diff = (int64_t)(g->count[n - 1] - g->count[0]);
		g->rate = span > 0 ? (double)g->net / span : 0;
		for (int i = 1; i < n; i++) {
			g->grew += g->size[i] > g->size[i - 1];
			g->shrank += g->size[i] < g->size[i - 1];
			if (g->size[i] > g->size[i - 1] &&
			    g->size[i] - g->size[i - 1] > g->max_step)
				g->max_step = g->size[i] - g->size[i - 1];
		}
		g->steady = g->net > 0 && n > 2 && g->max_step * 3 <= (uint64_t)g->net * 2;
		if (g->net > 0)
			sus[nsus++] = g;
	}
	qsort(sus, nsus, sizeof(*sus), cmp_suspect);
	size_t shown = v.limit && v.limit < nsus ? v.limit : nsus;

	if (v.json) {
		printf("{\"snapshots\":[");
		for (int i = 0; i < n; i++) {
			printf(i ? ",{" : "{");
			mt_json_snap(stdout, &s[i].snap);
			printf("}");
		}
		printf("],\"verdict\":");
		mt_json_str(stdout, mt_memory_verdict(&s[0].snap, &s[n - 1].snap));
		printf(",\"seconds\":%.6f,\"group_by\":\"%s\",\"domain\":\"%s\",\"growing\":%zu,"
		       "\"suspects\":[",
		       span, mt_group_name(v.group), mt_domain_name(v.domain), nsus);
		for (size_t k = 0; k < shown; k++) {
			g = sus[k];
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
			       g->grew, n - 1, kind(g, n));
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
			printf("Verdict: %s\n", mt_memory_verdict(&s[0].snap, &s[n - 1].snap));
		printf("Leak suspects (%s, %s), steady growth first: %zu growing\n",
		       mt_group_plural(v.group), mt_domain_name(v.domain), nsus);
		for (size_t k = 0; k < shown; k++) {
			char size[32], diff[32], rate[32];
			g = sus[k];
			char *title = mt_stat_title(g->ref);
			mt_format_size(size, sizeof(size), (double)g->size[n - 1], false);
			mt_format_size(diff, sizeof(diff), (double)g->net, true);
			mt_format_size(rate, sizeof(rate), g->rate, true);
			printf("#%zu %s: size=%s (%s), count=%" PRIu64 " (%+" PRId64
			       "), %s/s, grew in %d of %d intervals: %s\n",
			       k + 1, title, size, diff, g->count[n - 1], g->count_diff, rate,
			       g->grew, n - 1, kind(g, n));
			free(title);
		}
	}

	HASH_ITER(hh, all, g, tmp)
	{
		HASH_DEL(all, g);
		free(g->size);
		free(g->count);
		free(g);
	}
	free(sus);
	for (int i = 0; i < n; i++) {
		mt_stats_free(&s[i].st);
		mt_sym_close(s[i].sym);
		mt_snap_free(&s[i].snap);
	}
	free(s);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
