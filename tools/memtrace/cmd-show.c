/* SPDX-License-Identifier: MIT */
/*
 * cmd-show.c - `memtrace show SNAP`: process totals, then the top groups of
 * live memory in tracemalloc's Statistic format
 *   /path/main.c:19: size=97.7 KiB, count=1000, average=100 B
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace show [OPTIONS] SNAPSHOT\n"
	"\n"
	"The callsites holding the most live memory in SNAPSHOT, one line each:\n"
	"  FILE:LINE: size=SIZE, count=BLOCKS, average=SIZE\n"
	"\n" MT_VIEW_HELP "\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot.\n";

static void print_totals(const mt_snap_t *s)
{
	char cur[32], peak[32], total[32], mcur[32], mpeak[32];
	mt_format_size(cur, sizeof(cur), (double)s->totals.heap_live_bytes, false);
	mt_format_size(peak, sizeof(peak), (double)s->totals.heap_peak_bytes, false);
	mt_format_size(total, sizeof(total), (double)s->totals.heap_alloc_bytes, false);
	mt_format_size(mcur, sizeof(mcur), (double)s->totals.mmap_live_bytes, false);
	mt_format_size(mpeak, sizeof(mpeak), (double)s->totals.mmap_peak_bytes, false);
	printf("Heap: current %s in %" PRIu64 " block%s, peak %s; %" PRIu64
	       " allocation%s (%s) in total; mmap: current %s in %" PRIu64
	       " region%s, peak %s; %" PRIu64 " callsite%s\n",
	       cur, s->totals.heap_live_count, MT_PL(s->totals.heap_live_count), peak,
	       s->totals.heap_alloc_count, MT_PL(s->totals.heap_alloc_count), total, mcur,
	       s->totals.mmap_live_count, MT_PL(s->totals.mmap_live_count), mpeak, s->totals.sites,
	       MT_PL(s->totals.sites));
	if (s->totals.untracked_allocs)
		printf("Untracked: %" PRIu64 " allocations memtrace could not record\n",
		       s->totals.untracked_allocs);
	if (s->py_version)
		printf("Python %u.%u: %s\n", s->py_version >> 8, s->py_version & 255,
		       s->census == 1 ? "live objects by type taken (-g type)"
		       : s->census == 2 ? "no census of objects: the main thread ran no Python code "
					  "while the snapshot waited"
					: "Python frames; no census of objects (sampled, or at exit)");
	if (s->census == 1)
		printf("Census: %zu callsite and type pairs%s; the main thread was held %.1f ms\n",
		       s->nobjtypes,
		       s->census_partial ? " (partial: memtrace ran out of memory)" : "",
		       (double)s->census_hold_ns / 1e6);
}

static void print_json_stat(const mt_stat_t *x)
{
	printf("{");
	mt_json_group(stdout, x);
	printf(",\"size\":%" PRIu64 ",\"count\":%" PRIu64 ",\"allocs\":%" PRIu64
	       ",\"alloc_bytes\":%" PRIu64 "}",
	       x->size, x->count, x->allocs, x->alloc_bytes);
}

int mt_cmd_show(int argc, char **argv)
{
	mt_view_t v;
	optind = mt_view_parse(&v, "show", usage_text, argc, argv);
	if (argc - optind != 1)
		mt_die_usage("show", "needs exactly one snapshot file, got %d", argc - optind);

	mt_snap_t snap;
	mt_load_or_die(argv[optind], &snap);
	mt_sym_t *sym = mt_sym_open(&snap);
	mt_stats_t st;
	mt_stats_build(&snap, sym, &v, v.sort == MT_SORT_ALLOCS, &st);
	mt_stats_sort(&st, v.sort);
	size_t shown = v.limit && v.limit < st.n ? v.limit : st.n;

	if (v.json) {
		printf("{");
		mt_json_snap(stdout, &snap);
		printf(",\"group_by\":\"%s\",\"domain\":\"%s\",\"cumulative\":%s,\"groups\":%zu,"
		       "\"stats\":[",
		       mt_group_name(v.group), mt_domain_name(v.domain),
		       v.cumulative ? "true" : "false", st.n);
		for (size_t k = 0; k < shown; k++) {
			printf(k ? "," : "");
			print_json_stat(&st.v[k]);
		}
		printf("]}\n");
	} else {
		mt_print_snap_line(stdout, "", &snap);
		print_totals(&snap);
		mt_print_memory(stdout, &snap);
		char of[32] = "";
		if (shown < st.n)
			snprintf(of, sizeof(of), " of %zu", st.n);
		printf("%s %zu%s %s%s (%s, by %s):\n", shown < st.n ? "Top" : "All", shown, of,
		       mt_group_count(v.group, shown < st.n ? st.n : shown),
		       v.cumulative ? ", cumulative" : "", mt_domain_name(v.domain),
		       v.sort == MT_SORT_COUNT	  ? "live blocks"
		       : v.sort == MT_SORT_ALLOCS ? "allocations"
						  : "live size");
		uint64_t rest_size = 0, rest_count = 0;
		for (size_t i = 0; i < st.n; i++) {
			if (i < shown && v.group == MT_GROUP_TYPE) {
				/* objgraph's show_most_common_types, with the bytes */
				char size[32];
				mt_format_size(size, sizeof(size), (double)st.v[i].size, false);
				char *name = mt_printable(st.v[i].key);
				printf("%-32s %10" PRIu64 "  %s\n", name, st.v[i].count, size);
				free(name);
			} else if (i < shown) {
				mt_print_stat_line(&st.v[i], v.sort == MT_SORT_ALLOCS);
			} else {
				rest_size += st.v[i].size;
				rest_count += st.v[i].count;
			}
		}
		if (shown < st.n) {
			char size[32];
			mt_format_size(size, sizeof(size), (double)rest_size, false);
			printf("%zu other: size=%s, count=%" PRIu64 "\n", st.n - shown, size,
			       rest_count);
		}
	}
	mt_stats_free(&st);
	mt_sym_close(sym);
	mt_snap_free(&snap);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
