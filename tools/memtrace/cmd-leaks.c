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

/* What the report says: computed once, then written as text or JSON. */
typedef struct leaks {
	mt_snap_t snap;
	mt_sym_t *sym;
	bool scanned;
	unsigned show;		   /* the classes listed (a mask of 1 << MT_LEAK_*) */
	int nk;			   /* scanned: a list per class; else one of every live block */
	klass_t k[MT_LEAK_NCLASS]; /* a class's totals; its groups when listed */
	uint64_t bytes, blocks;	   /* of the classes listed */
	size_t ntrace;
	mt_suppressed_t sup;
	const mt_supp_t *supps; /* the loaded suppressions, the first nbuiltin built in */
	size_t nsupps, nbuiltin;
} leaks_t;

static bool listed(const leaks_t *L, int i)
{
	return !L->scanned || (L->show & (1u << i));
}

/* Loads the snapshot, says what it is (not final, no scan), and classes
 * the sites that count: grouping means symbolizing, so only the classes
 * listed are grouped. */
static void compute(leaks_t *L, const char *path, const mt_view_t *v)
{
	mt_load_or_die(path, &L->snap);
	const mt_snap_t *snap = &L->snap;
	L->scanned = mt_leak_scanned(snap);
	if (!mt_reason_final(snap->reason) && L->scanned)
		fprintf(stderr,
			"memtrace: note: %s was taken %s, not at exit: what was lost then is "
			"shown; the program may still free what it holds\n",
			snap->file, mt_reason_text(snap->reason));
	else if (!mt_reason_final(snap->reason))
		fprintf(stderr,
			"memtrace: warning: %s was taken %s, not at exit: live blocks are not "
			"necessarily leaks\n",
			snap->file, mt_reason_text(snap->reason));
	mt_leak_say_unscanned("leaks", snap);
	L->sym = mt_sym_open(snap);
	bool *keep = mt_xmalloc(snap->nsites + 1);
	mt_sites_kept(snap, L->sym, v, true, keep, &L->sup);
	L->nk = L->scanned ? MT_LEAK_NCLASS : 1;
	for (int i = 0; i < L->nk; i++) {
		klass_t *k = &L->k[i];
		mt_snap_t kept;
		mt_sites_of_classes(snap, keep, L->scanned ? 1u << i : 0, &kept, &k->bytes,
				    &k->blocks);
		memset(&k->st, 0, sizeof(k->st));
		if (listed(L, i)) {
			mt_stats_build(&kept, L->sym, v, false, &k->st);
			mt_stats_sort(&k->st, MT_SORT_SIZE);
			L->bytes += k->bytes;
			L->blocks += k->blocks;
			L->ntrace += k->st.n;
		}
		free(kept.sites);
	}
	free(keep);
	L->supps = mt_supps(&L->nsupps, &L->nbuiltin);
}

static size_t shown_of(const klass_t *k, const mt_view_t *v)
{
	return v->limit && v->limit < k->st.n ? v->limit : k->st.n;
}

static void write_json(const leaks_t *L, const mt_view_t *v)
{
	const mt_snap_t *snap = &L->snap;
	printf("{");
	mt_json_snap(stdout, snap);
	printf(",\"scan\":{\"status\":");
	mt_json_str(stdout, !snap->scan_status ? "none" : mt_scan_status_text(snap->scan_status));
	printf(",\"note\":");
	mt_json_str(stdout, snap->scan_note ? snap->scan_note : "");
	printf(",\"seconds\":%.6f,\"blocks\":%" PRIu64 ",\"root_bytes\":%" PRIu64
	       ",\"threads\":%u,\"threads_without_sp\":%u}",
	       snap->scan_ns / 1e9, snap->scan_blocks, snap->scan_root_bytes, snap->scan_threads,
	       snap->scan_no_sp);
	printf(",\"classes\":{");
	for (int i = 0; L->scanned && i < L->nk; i++)
		printf("%s\"%s\":{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 "}", i ? "," : "",
		       mt_leak_class_name[i], L->k[i].bytes, L->k[i].blocks);
	printf("},\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64 ",\"tracebacks\":%zu,"
	       "\"suppressed_bytes\":%" PRIu64 ",\"suppressed_blocks\":%" PRIu64
	       ",\"suppressed_tracebacks\":%" PRIu64 ",\"suppressions\":[",
	       L->bytes, L->blocks, L->ntrace, L->sup.bytes, L->sup.blocks, L->sup.sites);
	bool first = true;
	for (size_t q = 0; q < L->nsupps; q++) {
		if (!L->supps[q].hits)
			continue;
		printf("%s{\"pattern\":", first ? "" : ",");
		mt_json_str(stdout, L->supps[q].text);
		printf(",\"builtin\":%s,\"hits\":%" PRIu64 "}", q < L->nbuiltin ? "true" : "false",
		       L->supps[q].hits);
		first = false;
	}
	printf("],\"leaks\":[");
	first = true;
	for (int i = 0; i < L->nk; i++) {
		if (!listed(L, i))
			continue;
		for (size_t j = 0; j < shown_of(&L->k[i], v); j++) {
			const mt_stat_t *e = &L->k[i].st.v[j];
			printf("%s{\"class\":\"%s\",", first ? "" : ",",
			       L->scanned ? mt_leak_class_name[i] : "live");
			mt_json_group(stdout, e);
			printf(",\"size\":%" PRIu64 ",\"count\":%" PRIu64 "}", e->size, e->count);
			first = false;
		}
	}
	printf("]}\n");
}

/* The scan's line and the classes' totals, or the one total without one. */
static void write_text_totals(const leaks_t *L)
{
	const mt_snap_t *snap = &L->snap;
	char ssize[32], text[64];
	mt_format_size(ssize, sizeof(ssize), (double)L->sup.bytes, false);
	if (!L->scanned) {
		bytes_text(text, sizeof(text), L->bytes);
		printf("Leaked: %s in %" PRIu64 " block%s from %zu traceback%s; "
		       "suppressed: %s in %" PRIu64 " block%s from %" PRIu64 " traceback%s\n",
		       text, L->blocks, MT_PL(L->blocks), L->ntrace, MT_PL(L->ntrace), ssize,
		       L->sup.blocks, MT_PL(L->sup.blocks), L->sup.sites, MT_PL(L->sup.sites));
		return;
	}
	char roots[32];
	mt_format_size(roots, sizeof(roots), (double)snap->scan_root_bytes, false);
	printf("Leak scan: %" PRIu64 " block%s, %s of roots, %u thread%s", snap->scan_blocks,
	       MT_PL(snap->scan_blocks), roots, snap->scan_threads, MT_PL(snap->scan_threads));
	if (snap->scan_no_sp)
		printf(" (%u running: whole stacks read)", snap->scan_no_sp);
	printf(", in %.1f ms\n", snap->scan_ns / 1e6);
	for (int i = 0; i < L->nk; i++) {
		bytes_text(text, sizeof(text), L->k[i].bytes);
		printf("%s%c%s: %s in %" PRIu64 " block%s", i ? "; " : "",
		       toupper((unsigned char)mt_leak_class_text[i][0]), mt_leak_class_text[i] + 1,
		       text, L->k[i].blocks, MT_PL(L->k[i].blocks));
	}
	printf("; suppressed: %s in %" PRIu64 " block%s from %" PRIu64 " traceback%s\n", ssize,
	       L->sup.blocks, MT_PL(L->sup.blocks), L->sup.sites, MT_PL(L->sup.sites));
}

/* LeakSanitizer's report: an entry a traceback, the suppressions that hit,
 * the summary. */
static void write_text(const leaks_t *L, const mt_view_t *v)
{
	mt_print_snap_line(stdout, "", &L->snap);
	write_text_totals(L);
	size_t more = 0;
	for (int i = 0; i < L->nk; i++) {
		if (!listed(L, i))
			continue;
		size_t shown = shown_of(&L->k[i], v);
		more += L->k[i].st.n - shown;
		for (size_t j = 0; j < shown; j++) {
			const mt_stat_t *e = &L->k[i].st.v[j];
			char size[32];
			mt_format_size(size, sizeof(size), (double)e->size, false);
			size_t sl = strlen(size);
			bool in_bytes = sl > 2 && !strcmp(size + sl - 2, " B");
			/* LeakSanitizer's words; the size in KiB or MiB once it is not in bytes */
			printf("\n%s %" PRIu64 " byte(s)%s%s%s in %" PRIu64
			       " object(s), allocated from:\n",
			       L->scanned ? mt_leak_class_head[i] : "Leak of", e->size,
			       in_bytes ? "" : " (", in_bytes ? "" : size, in_bytes ? "" : ")",
			       e->count);
			for (size_t t = 0; t < e->ntrace; t++)
				print_frame((int)t, e->trace[t]);
		}
	}
	if (more)
		printf("\n... and %zu more traceback%s (--limit 0 shows all)\n", more, MT_PL(more));
	bool first = true;
	for (size_t q = 0; q < L->nsupps; q++) {
		if (!L->supps[q].hits)
			continue;
		printf("%sSuppressed %" PRIu64 " traceback%s with %sleak:%s\n", first ? "\n" : "",
		       L->supps[q].hits, MT_PL(L->supps[q].hits), q < L->nbuiltin ? "built-in " : "",
		       L->supps[q].text);
		first = false;
	}
	if (L->scanned)
		printf("\nSUMMARY: memtrace: %" PRIu64 " byte(s) %s in %" PRIu64 " allocation(s).\n",
		       L->bytes, mt_leak_mask_text(L->show), L->blocks);
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
	leaks_t L;
	bool use_builtin = true;
	const char **files = NULL; /* in argv */
	size_t nfiles = 0;
	int c;

	memset(&L, 0, sizeof(L));
	L.show = MT_LEAK_DEFAULT;
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
			L.show = mt_leak_classes("leaks", "--show", optarg);
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
	compute(&L, argv[optind], &v);
	if (v.json)
		write_json(&L, &v);
	else
		write_text(&L, &v);
	for (int i = 0; i < L.nk; i++)
		mt_stats_free(&L.k[i].st);
	mt_sym_close(L.sym);
	mt_snap_free(&L.snap);
	mt_supps_free();
	free(files);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
