/* SPDX-License-Identifier: MIT */
/*
 * cmd-show.c - `memtrace show SNAP`: process totals, then the top groups of
 * live memory in tracemalloc's Statistic format
 *   /path/main.c:19: size=97.7 KiB, count=1000, average=100 B
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace show [OPTIONS] SNAPSHOT\n"
	"\n"
	"The callsites holding the most live memory in SNAPSHOT, one line each:\n"
	"  FILE:LINE: size=SIZE, count=BLOCKS, average=SIZE\n"
	"\n"
	"  -n, --limit N       show the top N groups (default 10; 0 for all)\n"
	"  -g, --group-by K    lineno (default), file, function or traceback\n"
	"  -d, --domain D      heap (default: the malloc family), mmap (anonymous\n"
	"                      mappings) or all\n"
	"      --json          machine-readable output with exact byte counts\n"
	"  -h, --help          this text\n"
	"\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot.\n";

static const char *const group_names[] = { "lineno", "file", "function", "traceback" };
static const char *const group_plural[] = { "lines", "files", "functions", "tracebacks" };
static const char *const domain_names[] = { "heap", "mmap" };

static void print_stat_line(const mt_stat_t *st)
{
	char size[32], avg[32];
	/* traceback keys hold every frame; the line names the first */
	char *key = mt_printable(st->ntrace ? st->trace[0] : st->key);
	mt_format_size(size, sizeof(size), (double)st->size, false);
	printf("%s: size=%s, count=%" PRIu64, key ? key : "?", size, st->count);
	if (st->count) {
		mt_format_size(avg, sizeof(avg), (double)st->size / (double)st->count, false);
		printf(", average=%s", avg);
	}
	printf("\n");
	free(key);
	for (size_t i = 0; i < st->ntrace; i++) {
		char *f = mt_printable(st->trace[i]);
		printf("    %s\n", f ? f : "?");
		free(f);
	}
}

static void print_header(const mt_snap_t *s, const char *domain, int group, size_t limit,
			 size_t ngroups)
{
	char when[64] = "?", cur[32], peak[32], total[32], mcur[32], mpeak[32];
	time_t t = (time_t)(s->wall_ns / 1000000000ull);
	struct tm tm;
	char *exe = mt_printable(s->exe);

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	mt_format_size(cur, sizeof(cur), (double)s->totals.heap_live_bytes, false);
	mt_format_size(peak, sizeof(peak), (double)s->totals.heap_peak_bytes, false);
	mt_format_size(total, sizeof(total), (double)s->totals.heap_alloc_bytes, false);
	mt_format_size(mcur, sizeof(mcur), (double)s->totals.mmap_live_bytes, false);
	mt_format_size(mpeak, sizeof(mpeak), (double)s->totals.mmap_peak_bytes, false);
	printf("Snapshot %u of pid %u (%s), %s, %.3f s after start: %s\n", s->seq, s->pid,
	       mt_reason_text(s->reason), when,
	       (double)(s->mono_ns - s->start_mono_ns) / 1e9, exe ? exe : "?");
	printf("Heap: current %s in %" PRIu64 " blocks, peak %s; %" PRIu64
	       " allocations (%s) in total; mmap: current %s in %" PRIu64 " regions, peak %s; %" PRIu64
	       " callsites\n",
	       cur, s->totals.heap_live_count, peak, s->totals.heap_alloc_count, total, mcur,
	       s->totals.mmap_live_count, mpeak, s->totals.sites);
	if (s->totals.untracked_allocs)
		printf("Untracked: %" PRIu64 " allocations memtrace could not record\n",
		       s->totals.untracked_allocs);
	if (limit && limit < ngroups)
		printf("Top %zu %s of %zu (%s, by live size):\n", limit, group_plural[group], ngroups,
		       domain);
	else
		printf("All %zu %s (%s, by live size):\n", ngroups, group_plural[group], domain);
	free(exe);
}

static void print_json(const mt_snap_t *s, const mt_stats_t *st, size_t limit, const char *group,
		       const char *domain)
{
	printf("{\"file\":");
	mt_json_str(stdout, s->file);
	printf(",\"format\":\"%u.%u\",\"pid\":%u,\"ppid\":%u,\"seq\":%u,\"reason\":", s->major,
	       s->minor, s->pid, s->ppid, s->seq);
	mt_json_str(stdout, mt_reason_text(s->reason));
	printf(",\"wall_ns\":%" PRIu64 ",\"mono_ns\":%" PRIu64 ",\"start_mono_ns\":%" PRIu64
	       ",\"exe\":",
	       s->wall_ns, s->mono_ns, s->start_mono_ns);
	mt_json_str(stdout, s->exe);
	printf(",\"totals\":{");
	const uint64_t *tv = (const uint64_t *)&s->totals;
	size_t i = 0;
#define X(name) printf("%s\"" #name "\":%" PRIu64, i ? "," : "", tv[i]), i++;
	MT_TOTALS(X)
#undef X
	printf("},\"group_by\":\"%s\",\"domain\":\"%s\",\"groups\":%zu,\"stats\":[", group, domain,
	       st->n);
	for (size_t k = 0; k < st->n && (!limit || k < limit); k++) {
		const mt_stat_t *x = &st->v[k];
		printf("%s{\"key\":", k ? "," : "");
		char *key = strdup(x->key);
		char *nl = key ? strchr(key, '\n') : NULL;
		if (nl)
			*nl = '\0';
		mt_json_str(stdout, key);
		free(key);
		printf(",\"file\":");
		mt_json_str(stdout, x->where.file);
		printf(",\"line\":%d,\"function\":", x->where.line);
		mt_json_str(stdout, x->where.func);
		printf(",\"module\":");
		mt_json_str(stdout, x->where.module);
		printf(",\"size\":%" PRIu64 ",\"count\":%" PRIu64 ",\"allocs\":%" PRIu64
		       ",\"alloc_bytes\":%" PRIu64,
		       x->size, x->count, x->allocs, x->alloc_bytes);
		if (x->ntrace) {
			printf(",\"traceback\":[");
			for (size_t j = 0; j < x->ntrace; j++) {
				printf(j ? "," : "");
				mt_json_str(stdout, x->trace[j]);
			}
			printf("]");
		}
		printf("}");
	}
	printf("]}\n");
}

static int lookup_name(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v, names[i]) == 0)
			return i;
	return -1;
}

int mt_cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'n' },
		{ "group-by", required_argument, NULL, 'g' },
		{ "domain", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	size_t limit = 10;
	int group = MT_GROUP_LINENO, domain = MT_DOMAIN_HEAP, c;
	bool json = false;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "n:g:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			errno = 0;
			limit = strtoul(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-')
				mt_die_usage("show", "--limit takes a whole number, not '%s'", optarg);
			break;
		case 'g':
			group = lookup_name(optarg, group_names, 4);
			if (group < 0)
				mt_die_usage("show", "--group-by takes lineno, file, function or traceback, not '%s'",
					     optarg);
			break;
		case 'd':
			domain = strcmp(optarg, "all") == 0 ? -1 : lookup_name(optarg, domain_names, 2);
			if (domain == -1 && strcmp(optarg, "all") != 0)
				mt_die_usage("show", "--domain takes heap, mmap or all, not '%s'", optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return MT_EXIT_OK;
		default:
			mt_die_usage("show", "unknown option");
		}
	}
	if (argc - optind != 1)
		mt_die_usage("show", "needs exactly one snapshot file, got %d", argc - optind);

	mt_snap_t snap;
	mt_load_or_die(argv[optind], &snap);
	mt_sym_t *sym = mt_sym_open(&snap);
	mt_stats_t st;
	if (!sym || mt_stats_build(&snap, sym, group, domain, &st) != 0) {
		fprintf(stderr, "memtrace: out of memory while symbolizing %s\n", snap.file);
		return MT_EXIT_INPUT;
	}
	mt_stats_sort_by_size(&st);
	const char *dname = domain < 0 ? "all" : domain_names[domain];
	if (json) {
		print_json(&snap, &st, limit, group_names[group], dname);
	} else {
		print_header(&snap, dname, group, limit, st.n);
		uint64_t rest_size = 0, rest_count = 0;
		for (size_t i = 0; i < st.n; i++) {
			if (!limit || i < limit) {
				print_stat_line(&st.v[i]);
			} else {
				rest_size += st.v[i].size;
				rest_count += st.v[i].count;
			}
		}
		if (limit && st.n > limit) {
			char size[32];
			mt_format_size(size, sizeof(size), (double)rest_size, false);
			printf("%zu other: size=%s, count=%" PRIu64 "\n", st.n - limit, size, rest_count);
		}
	}
	mt_stats_free(&st);
	mt_sym_close(sym);
	mt_snap_free(&snap);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
