/* SPDX-License-Identifier: MIT */
/*
 * cmd-diff.c - `memtrace diff OLD NEW`: what changed between two snapshots,
 * in tracemalloc's StatisticDiff format and order
 *   /path/main.c:19: size=293 KiB (+195 KiB), count=3000 (+2000), average=100 B
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace diff [OPTIONS] OLD NEW\n"
	"\n"
	"How live memory changed from snapshot OLD to snapshot NEW, per group:\n"
	"  FILE:LINE: size=SIZE (+DIFF), count=BLOCKS (+DIFF), average=SIZE\n"
	"sorted as tracemalloc's compare_to: by the size of the change first.\n"
	"Groups only in OLD show as size=0 B (-SIZE).\n"
	"\n" MT_VIEW_HELP "\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot.\n";

typedef struct diff {
	const mt_stat_t *ref; /* the NEW group, or the OLD one if gone */
	uint64_t size, count;
	int64_t size_diff, count_diff, allocs_diff;
} diff_t;

static uint64_t mag(int64_t v)
{
	return v < 0 ? -(uint64_t)v : (uint64_t)v;
}

static int cmp_u(uint64_t a, uint64_t b)
{
	return a > b ? -1 : a < b;
}

/* tracemalloc: (|size_diff|, size, |count_diff|, count, traceback), reversed */
static int cmp_size(const void *a, const void *b)
{
	const diff_t *x = a, *y = b;
	int c = cmp_u(mag(x->size_diff), mag(y->size_diff));
	if (!c)
		c = cmp_u(x->size, y->size);
	if (!c)
		c = cmp_u(mag(x->count_diff), mag(y->count_diff));
	if (!c)
		c = cmp_u(x->count, y->count);
	return c ? c : strcmp(y->ref->key, x->ref->key);
}

static int cmp_count(const void *a, const void *b)
{
	const diff_t *x = a, *y = b;
	int c = cmp_u(mag(x->count_diff), mag(y->count_diff));
	if (!c)
		c = cmp_u(x->count, y->count);
	return c ? c : cmp_size(a, b);
}

static int cmp_allocs(const void *a, const void *b)
{
	const diff_t *x = a, *y = b;
	int c = cmp_u(mag(x->allocs_diff), mag(y->allocs_diff));
	return c ? c : cmp_size(a, b);
}

static void print_line(const diff_t *d)
{
	char size[32], sdiff[32], avg[32];
	char *key = mt_stat_title(d->ref);
	mt_format_size(size, sizeof(size), (double)d->size, false);
	mt_format_size(sdiff, sizeof(sdiff), (double)d->size_diff, true);
	printf("%s: size=%s (%s), count=%" PRIu64 " (%+" PRId64 ")", key, size, sdiff, d->count,
	       d->count_diff);
	if (d->count) {
		mt_format_size(avg, sizeof(avg), (double)d->size / (double)d->count, false);
		printf(", average=%s", avg);
	}
	printf("\n");
	free(key);
	mt_print_trace(d->ref);
}

int mt_cmd_diff(int argc, char **argv)
{
	mt_view_t v;
	optind = mt_view_parse(&v, "diff", usage_text, argc, argv);
	if (argc - optind != 2)
		mt_die_usage("diff", "needs two snapshot files, OLD and NEW; got %d",
			     argc - optind);

	mt_snap_t snap[2];
	mt_sym_t *sym[2];
	mt_stats_t st[2];
	for (int i = 0; i < 2; i++) {
		mt_load_or_die(argv[optind + i], &snap[i]);
		sym[i] = mt_sym_open(&snap[i]);
		mt_stats_build(&snap[i], sym[i], &v, v.sort == MT_SORT_ALLOCS, &st[i]);
	}
	mt_warn_pair(&snap[0], &snap[1]);

	diff_t *d = mt_xmalloc((st[0].n + st[1].n + 1) * sizeof(*d));
	size_t n = 0;
	int64_t total_size = 0, total_count = 0;
	uint64_t new_size = 0, new_count = 0;
	for (size_t i = 0; i < st[1].n; i++) {
		const mt_stat_t *now = &st[1].v[i], *was = mt_stats_find(&st[0], now->key);
		d[n++] = (diff_t){now,
				  now->size,
				  now->count,
				  (int64_t)(now->size - (was ? was->size : 0)),
				  (int64_t)(now->count - (was ? was->count : 0)),
				  (int64_t)(now->allocs - (was ? was->allocs : 0))};
	}
	for (size_t i = 0; i < st[0].n; i++) {
		const mt_stat_t *was = &st[0].v[i];
		if (!mt_stats_find(&st[1], was->key))
			d[n++] = (diff_t){was,
					  0,
					  0,
					  -(int64_t)was->size,
					  -(int64_t)was->count,
					  -(int64_t)was->allocs};
	}
	for (size_t i = 0; i < n; i++) {
		total_size += d[i].size_diff;
		total_count += d[i].count_diff;
		new_size += d[i].size;
		new_count += d[i].count;
	}
	qsort(d, n, sizeof(*d),
	      v.sort == MT_SORT_COUNT	 ? cmp_count
	      : v.sort == MT_SORT_ALLOCS ? cmp_allocs
					 : cmp_size);
	size_t shown = v.limit && v.limit < n ? v.limit : n;
	double secs = (double)((int64_t)(snap[1].mono_ns - snap[0].mono_ns)) / 1e9;
	if (snap[0].start_mono_ns != snap[1].start_mono_ns)
		secs = (double)((int64_t)(snap[1].wall_ns - snap[0].wall_ns)) / 1e9;

	if (v.json) {
		printf("{\"old\":{");
		mt_json_snap(stdout, &snap[0]);
		printf("},\"new\":{");
		mt_json_snap(stdout, &snap[1]);
		printf("},\"verdict\":");
		mt_json_str(stdout, mt_memory_verdict(&snap[0], &snap[1], 0, 1));
		printf(",\"seconds\":%.6f,\"group_by\":\"%s\",\"domain\":\"%s\",\"cumulative\":%s,"
		       "\"size\":%" PRIu64 ",\"size_diff\":%" PRId64 ",\"count\":%" PRIu64
		       ",\"count_diff\":%" PRId64 ",\"groups\":%zu,\"stats\":[",
		       secs, mt_group_name(v.group), mt_domain_name(v.domain),
		       v.cumulative ? "true" : "false", new_size, total_size, new_count,
		       total_count, n);
		for (size_t i = 0; i < shown; i++) {
			printf("%s{", i ? "," : "");
			mt_json_group(stdout, d[i].ref);
			printf(",\"size\":%" PRIu64 ",\"size_diff\":%" PRId64 ",\"count\":%" PRIu64
			       ",\"count_diff\":%" PRId64 ",\"allocs_diff\":%" PRId64 "}",
			       d[i].size, d[i].size_diff, d[i].count, d[i].count_diff,
			       d[i].allocs_diff);
		}
		printf("]}\n");
	} else {
		char size[32], sdiff[32];
		mt_print_snap_line(stdout, "Old: ", &snap[0]);
		mt_print_snap_line(stdout, "New: ", &snap[1]);
		mt_format_size(size, sizeof(size), (double)new_size, false);
		mt_format_size(sdiff, sizeof(sdiff), (double)total_size, true);
		printf("Total (%s): size=%s (%s), count=%" PRIu64 " (%+" PRId64 ") in %.3f s\n",
		       mt_domain_name(v.domain), size, sdiff, new_count, total_count, secs);
		mt_print_memory_diff(stdout, &snap[0], &snap[1]);
		char of[32] = "";
		if (shown < n)
			snprintf(of, sizeof(of), " of %zu", n);
		printf("%s %zu%s %s%s by change:\n", shown < n ? "Top" : "All", shown, of,
		       mt_group_count(v.group, shown < n ? n : shown), v.cumulative ? ", cumulative" : "");
		for (size_t i = 0; i < shown; i++)
			print_line(&d[i]);
	}
	free(d);
	for (int i = 0; i < 2; i++) {
		mt_stats_free(&st[i]);
		mt_sym_close(sym[i]);
		mt_snap_free(&snap[i]);
	}
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
