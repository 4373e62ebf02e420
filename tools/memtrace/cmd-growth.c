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

int mt_cmd_growth(int argc, char **argv)
{
	mt_view_t v;
	optind = mt_view_parse(&v, "growth", usage_text, argc, argv);
	int n = argc - optind;
	if (n < 2)
		mt_die_usage("growth", "needs two or more snapshot files, got %d", n);

	mt_series_t ser;
	mt_series_load(&ser, argv + optind, n, &v, false);
	const mt_loaded_t *s = ser.s;
	n = ser.n;
	double span = ser.seconds;
	size_t ngroups, nsus = 0;
	mt_growth_t *sus = mt_growth_series(ser.stats, n, span, &ngroups), *g;
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
			printf("%s{\"rank\":%zu,", k ? "," : "", k + 1);
			mt_json_group(stdout, g->ref);
			printf(",\"size\":%" PRIu64 ",\"size_diff\":%" PRId64 ",\"count\":%" PRIu64
			       ",\"count_diff\":%" PRId64
			       ",\"rate\":%.3f,\"grew\":%d,\"intervals\":%d,"
			       "\"trend\":\"%s\",\"sizes\":[",
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

	mt_series_say_left_out("growth", &ser);
	mt_growth_free(sus, ngroups);
	mt_series_free(&ser);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
