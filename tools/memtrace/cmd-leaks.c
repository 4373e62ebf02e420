/* SPDX-License-Identifier: MIT */
/*
 * cmd-leaks.c - `memtrace leaks SNAP`: what an at-exit snapshot's leak scan
 * found lost (definitely and indirectly by default, as LeakSanitizer
 * reports), by traceback, largest first, minus suppressions. A snapshot
 * without a scan (sampled, older, not final) counts every live block.
 * Suppressions (LeakSanitizer's syntax) and the classes: filter.c.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace leaks [OPTIONS] SNAPSHOT\n"
	"\n"
	"What an at-exit SNAPSHOT's leak scan found, grouped by traceback:\n"
	"  Direct leak of BYTES byte(s) (SIZE) in N object(s), allocated from:\n"
	"      #0 FILE:LINE in FUNCTION\n"
	"The scan classes each block live at exit as valgrind memcheck does:\n"
	"definite (no pointer to it), indirect (pointed to only from lost\n"
	"blocks), possible (only pointers into its middle), reachable.\n"
	"\n"
	"      --show CLASSES       which to list: definite,indirect (default),\n"
	"                           possible, reachable, or all\n"
	"      --suppressions FILE  LeakSanitizer-style leak:PATTERN lines; repeatable\n"
	"      --no-builtin         do not apply the built-in libc/loader suppressions\n"
	"  -n, --limit N            the top N leaks (default 10; 0 for all)\n"
	"  -d, --domain D           heap (default), mmap or all\n"
	"      --include/--exclude PAT, --all-frames  as in memtrace show\n"
	"      --json               machine-readable output\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable snapshot or suppressions file.\n";

static void print_frame(int i, const char *text)
{
	char *t = mt_printable(text);
	/* "file:line (func)" becomes "file:line in func" */
	char *paren = strstr(t, " (");
	if (paren && t[strlen(t) - 1] == ')') {
		t[strlen(t) - 1] = '\0';
		*paren = '\0';
		printf("    #%d %s in %s\n", i, t, paren + 2);
	} else {
		printf("    #%d %s\n", i, t);
	}
	free(t);
}

static void bytes_text(char *out, size_t cap, uint64_t bytes)
{
	char size[32];
	mt_format_size(size, sizeof(size), (double)bytes, false);
	size_t n = strlen(size);
	if (n > 2 && !strcmp(size + n - 2, " B"))
		snprintf(out, cap, "%" PRIu64 " byte%s", bytes, MT_PL(bytes));
	else
		snprintf(out, cap, "%s (%" PRIu64 " bytes)", size, bytes);
}

/* One class's groups, as shown. */
typedef struct klass {
	mt_stats_t st;
	uint64_t bytes, blocks;
} klass_t;

/* A class's totals, and its groups when it is listed (grouping means
 * symbolizing: not for the classes only counted). */
static void build_class(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v,
			const bool *keep, unsigned mask, bool listed, klass_t *k)
{
	mt_snap_t kept = *snap;
	kept.sites = mt_xmalloc((snap->nsites + 1) * sizeof(*kept.sites));
	kept.nsites = 0;
	k->bytes = k->blocks = 0;
	for (size_t i = 0; i < snap->nsites; i++) {
		if (!keep[i])
			continue;
		mt_snap_site_t s = mt_leak_site(snap, &snap->sites[i], mask);
		if (!s.live_count)
			continue;
		kept.sites[kept.nsites++] = s;
		k->bytes += s.live_bytes;
		k->blocks += s.live_count;
	}
	memset(&k->st, 0, sizeof(k->st));
	if (listed) {
		mt_stats_build(&kept, sym, v, false, &k->st);
		mt_stats_sort(&k->st, MT_SORT_SIZE);
	}
	free(kept.sites);
}

int mt_cmd_leaks(int argc, char **argv)
{
	static const struct option opts[] = {
		MT_VIEW_LONGOPTS,
		{"suppressions", required_argument, NULL, 's'},
		{"no-builtin", no_argument, NULL, 'B'},
		{"show", required_argument, NULL, 'K'},
		{0},
	};
	mt_view_t v;
	bool use_builtin = true;
	const char **files = NULL; /* in argv */
	size_t nfiles = 0;
	unsigned show = MT_LEAK_DEFAULT;
	int c;

	mt_view_init(&v);
	v.group = MT_GROUP_TRACEBACK;
	optind = 1;
	while ((c = getopt_long(argc, argv, MT_VIEW_SHORTOPTS, opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return MT_EXIT_OK;
		} else if (c == 's') {
			files = mt_xrealloc(files, (nfiles + 1) * sizeof(*files));
			files[nfiles++] = optarg;
		} else if (c == 'B') {
			use_builtin = false;
		} else if (c == 'K') {
			show = mt_leak_classes("leaks", "--show", optarg);
		} else if (!mt_view_option(&v, "leaks", c, optarg)) {
			mt_die_usage("leaks", "unknown option");
		}
	}
	if (v.group != MT_GROUP_TRACEBACK || v.cumulative || v.sort != MT_SORT_SIZE)
		mt_die_usage("leaks", "reports tracebacks by size: --group-by, --cumulative and "
				      "--sort do not apply");
	if (argc - optind != 1)
		mt_die_usage("leaks", "needs exactly one snapshot file, got %d", argc - optind);
	mt_supps_load(use_builtin, files, nfiles);
	size_t nsupps, nbuiltin;
	const mt_supp_t *supps = mt_supps(&nsupps, &nbuiltin);

	mt_snap_t snap;
	mt_load_or_die(argv[optind], &snap);
	if (!mt_reason_final(snap.reason) && mt_leak_scanned(&snap))
		fprintf(stderr,
			"memtrace: note: %s was taken %s, not at exit: what was lost then is "
			"shown; the program may still free what it holds\n",
			snap.file, mt_reason_text(snap.reason));
	else if (!mt_reason_final(snap.reason))
		fprintf(stderr,
			"memtrace: warning: %s was taken %s, not at exit: live blocks are not "
			"necessarily leaks\n",
			snap.file, mt_reason_text(snap.reason));
	mt_leak_say_unscanned("leaks", &snap);
	bool scanned = mt_leak_scanned(&snap);
	mt_sym_t *sym = mt_sym_open(&snap);

	/* the sites that count: in the view, not suppressed */
	bool *keep = mt_xmalloc(snap.nsites + 1);
	uint64_t sup_bytes = 0, sup_blocks = 0, sup_sites = 0;
	for (size_t i = 0; i < snap.nsites; i++) {
		const mt_snap_site_t *site = &snap.sites[i];
		keep[i] = false;
		if (!site->live_count || !mt_site_passes(&v, sym, site))
			continue;
		if (mt_supps_match(sym, site)) {
			sup_bytes += site->live_bytes;
			sup_blocks += site->live_count;
			sup_sites++;
			continue;
		}
		keep[i] = true;
	}
	/* scanned: one list per class; else one of every live block */
	int nk = scanned ? MT_LEAK_NCLASS : 1;
	klass_t k[MT_LEAK_NCLASS];
	uint64_t bytes = 0, blocks = 0;
	size_t ntrace = 0;
	for (int i = 0; i < nk; i++) {
		bool listed = !scanned || (show & (1u << i));
		build_class(&snap, sym, &v, keep, scanned ? 1u << i : 0, listed, &k[i]);
		if (listed) {
			bytes += k[i].bytes;
			blocks += k[i].blocks;
			ntrace += k[i].st.n;
		}
	}

	if (v.json) {
		printf("{");
		mt_json_snap(stdout, &snap);
		printf(",\"scan\":{\"status\":");
		mt_json_str(stdout, !snap.scan_status ? "none" : mt_scan_status_text(snap.scan_status));
		printf(",\"note\":");
		mt_json_str(stdout, snap.scan_note ? snap.scan_note : "");
		printf(",\"seconds\":%.6f,\"blocks\":%" PRIu64 ",\"root_bytes\":%" PRIu64
		       ",\"threads\":%u,\"threads_without_sp\":%u}",
		       snap.scan_ns / 1e9, snap.scan_blocks, snap.scan_root_bytes, snap.scan_threads,
		       snap.scan_no_sp);
		printf(",\"classes\":{");
		for (int i = 0; scanned && i < nk; i++)
			printf("%s\"%s\":{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 "}", i ? "," : "",
			       mt_leak_class_name[i], k[i].bytes, k[i].blocks);
		printf("},\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64
		       ",\"tracebacks\":%zu,"
		       "\"suppressed_bytes\":%" PRIu64 ",\"suppressed_blocks\":%" PRIu64
		       ",\"suppressed_tracebacks\":%" PRIu64 ",\"suppressions\":[",
		       bytes, blocks, ntrace, sup_bytes, sup_blocks, sup_sites);
		bool first = true;
		for (size_t q = 0; q < nsupps; q++) {
			if (!supps[q].hits)
				continue;
			printf("%s{\"pattern\":", first ? "" : ",");
			mt_json_str(stdout, supps[q].text);
			printf(",\"builtin\":%s,\"hits\":%" PRIu64 "}",
			       q < nbuiltin ? "true" : "false", supps[q].hits);
			first = false;
		}
		printf("],\"leaks\":[");
		first = true;
		for (int i = 0; i < nk; i++) {
			if (scanned && !(show & (1u << i)))
				continue;
			size_t shown = v.limit && v.limit < k[i].st.n ? v.limit : k[i].st.n;
			for (size_t j = 0; j < shown; j++) {
				const mt_stat_t *e = &k[i].st.v[j];
				printf("%s{\"class\":\"%s\",", first ? "" : ",",
				       scanned ? mt_leak_class_name[i] : "live");
				mt_json_group(stdout, e);
				printf(",\"size\":%" PRIu64 ",\"count\":%" PRIu64 "}", e->size,
				       e->count);
				first = false;
			}
		}
		printf("]}\n");
	} else {
		char size[32], ssize[32];
		mt_print_snap_line(stdout, "", &snap);
		if (scanned) {
			char roots[32];
			mt_format_size(roots, sizeof(roots), (double)snap.scan_root_bytes, false);
			printf("Leak scan: %" PRIu64 " block%s, %s of roots, %u thread%s", snap.scan_blocks,
			       MT_PL(snap.scan_blocks), roots, snap.scan_threads, MT_PL(snap.scan_threads));
			if (snap.scan_no_sp)
				printf(" (%u running: whole stacks read)", snap.scan_no_sp);
			printf(", in %.1f ms\n", snap.scan_ns / 1e6);
			for (int i = 0; i < nk; i++) {
				char text[64];
				bytes_text(text, sizeof(text), k[i].bytes);
				printf("%s%c%s: %s in %" PRIu64 " block%s", i ? "; " : "",
				       toupper((unsigned char)mt_leak_class_text[i][0]), mt_leak_class_text[i] + 1, text,
				       k[i].blocks, MT_PL(k[i].blocks));
			}
			mt_format_size(ssize, sizeof(ssize), (double)sup_bytes, false);
			printf("; suppressed: %s in %" PRIu64 " block%s from %" PRIu64 " traceback%s\n",
			       ssize, sup_blocks, MT_PL(sup_blocks), sup_sites, MT_PL(sup_sites));
		} else {
			char text[64];
			bytes_text(text, sizeof(text), bytes);
			mt_format_size(ssize, sizeof(ssize), (double)sup_bytes, false);
			printf("Leaked: %s in %" PRIu64 " block%s from %zu traceback%s; "
			       "suppressed: %s in %" PRIu64 " block%s from %" PRIu64 " traceback%s\n",
			       text, blocks, MT_PL(blocks), ntrace, MT_PL(ntrace), ssize, sup_blocks,
			       MT_PL(sup_blocks), sup_sites, MT_PL(sup_sites));
		}
		size_t more = 0;
		for (int i = 0; i < nk; i++) {
			if (scanned && !(show & (1u << i)))
				continue;
			size_t shown = v.limit && v.limit < k[i].st.n ? v.limit : k[i].st.n;
			more += k[i].st.n - shown;
			for (size_t j = 0; j < shown; j++) {
				const mt_stat_t *e = &k[i].st.v[j];
				mt_format_size(size, sizeof(size), (double)e->size, false);
				size_t sl = strlen(size);
				bool in_bytes = sl > 2 && !strcmp(size + sl - 2, " B");
				/* LeakSanitizer's words; the size in KiB or MiB once it is not in bytes */
				printf("\n%s %" PRIu64 " byte(s)%s%s%s in %" PRIu64
				       " object(s), allocated from:\n",
				       scanned ? mt_leak_class_head[i] : "Leak of", e->size, in_bytes ? "" : " (",
				       in_bytes ? "" : size, in_bytes ? "" : ")", e->count);
				for (size_t t = 0; t < e->ntrace; t++)
					print_frame((int)t, e->trace[t]);
			}
		}
		if (more)
			printf("\n... and %zu more traceback%s (--limit 0 shows all)\n", more, MT_PL(more));
		bool first = true;
		for (size_t q = 0; q < nsupps; q++) {
			if (!supps[q].hits)
				continue;
			printf("%sSuppressed %" PRIu64 " traceback%s with %sleak:%s\n",
			       first ? "\n" : "", supps[q].hits, MT_PL(supps[q].hits),
			       q < nbuiltin ? "built-in " : "", supps[q].text);
			first = false;
		}
		if (scanned)
			printf("\nSUMMARY: memtrace: %" PRIu64 " byte(s) %s in %" PRIu64
			       " allocation(s).\n",
			       bytes, mt_leak_mask_text(show), blocks);
	}
	for (int i = 0; i < nk; i++)
		mt_stats_free(&k[i].st);
	free(keep);
	mt_sym_close(sym);
	mt_snap_free(&snap);
	mt_supps_free();
	free(files);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
