/* SPDX-License-Identifier: MIT */
/*
 * cmd-leaks.c - `memtrace leaks SNAP`: the blocks still live in an at-exit
 * snapshot, by traceback, largest first, minus suppressions.
 *
 * Suppressions use LeakSanitizer's syntax, one `leak:PATTERN` a line: PATTERN
 * matches a frame's function, source file or module as a substring, `*` is a
 * wildcard, `^` and `$` anchor it. A user suppression matches any frame of the
 * stack. Built-in ones cover one-time libc and loader allocations (stdio
 * buffers, locale and time zone data, iconv, the loader's own tables) and
 * match only the frames of the allocation itself, inside libc or the loader.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace leaks [OPTIONS] SNAPSHOT\n"
	"\n"
	"What is still live in an at-exit SNAPSHOT, grouped by traceback:\n"
	"  Leak of BYTES bytes (SIZE) in N blocks, allocated from:\n"
	"      #0 FILE:LINE in FUNCTION\n"
	"\n"
	"      --suppressions FILE  LeakSanitizer-style leak:PATTERN lines; repeatable\n"
	"      --no-builtin         do not apply the built-in libc/loader suppressions\n"
	"  -n, --limit N            the top N leaks (default 10; 0 for all)\n"
	"  -d, --domain D           heap (default), mmap or all\n"
	"      --include/--exclude PAT, --all-frames  as in memtrace show\n"
	"      --json               machine-readable output\n"
	"  -h, --help               this text\n"
	"\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable snapshot or suppressions file.\n";

static const char *const builtin_supps[] = {
	"_IO_file_doallocate",
	"_IO_setb",
	"_nl_",
	"setlocale",
	"__tzfile_read",
	"tzset",
	"__tz_",
	"__gconv",
	"_dl_",
	"__libc_dlopen",
	"dlerror",
	"__nss_",
	"_nss_",
	"nss_",
	"__res_",
	"__resolv_",
	"ld-linux",
	"__new_exitfn",
	"__cxa_atexit",
	"__libc_alloc_buffer",
};

typedef struct supp {
	char *pat; /* as fnmatch pattern */
	char *text;
	uint64_t hits;
} supp_t;

static supp_t *supps;
static size_t nsupps, nbuiltin;

static void add_supp(const char *text)
{
	size_t len = strlen(text);
	bool start = text[0] == '^', end = len > 0 && text[len - 1] == '$';
	const char *body = text + start;
	size_t blen = len - start - end;
	char *pat = mt_xmalloc(blen + 3);
	size_t at = 0;
	if (!start)
		pat[at++] = '*';
	memcpy(pat + at, body, blen);
	at += blen;
	if (!end)
		pat[at++] = '*';
	pat[at] = '\0';
	supps = mt_xrealloc(supps, (nsupps + 1) * sizeof(*supps));
	supps[nsupps++] = (supp_t){pat, mt_xasprintf("%s", text), 0};
}

static void load_supps(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned lineno = 0;
	if (!f) {
		fprintf(stderr, "memtrace: %s: cannot open suppressions: %s\n", path,
			strerror(errno));
		exit(MT_EXIT_INPUT);
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *s = line + strspn(line, " \t");
		s[strcspn(s, "\r\n")] = '\0';
		if (!*s || *s == '#')
			continue;
		if (strncmp(s, "leak:", 5) != 0 || !s[5]) {
			char *shown = mt_printable(s);
			fprintf(stderr, "memtrace: %s:%u: not a leak:PATTERN line: '%s'\n", path,
				lineno, shown);
			exit(MT_EXIT_INPUT);
		}
		add_supp(s + 5);
	}
	fclose(f);
}

static bool match(const char *pat, const mt_sframe_t *f)
{
	return (f->func && fnmatch(pat, f->func, 0) == 0) ||
	       (f->file && fnmatch(pat, f->file, 0) == 0) ||
	       (f->module && fnmatch(pat, f->module, 0) == 0);
}

/* The suppression that covers a site, or NULL. */
static supp_t *suppressed(mt_sym_t *sym, const mt_snap_site_t *site)
{
	bool inside = true; /* still in the allocation's own libc/loader frames */
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++) {
			if (inside && !mt_is_allocator_frame(&f[j]) &&
			    !(f[j].module && strstr(f[j].module, "ld-linux")))
				inside = false;
			for (size_t k = 0; k < nsupps; k++)
				if ((k >= nbuiltin || inside) && match(supps[k].pat, &f[j]))
					return &supps[k];
		}
	}
	return NULL;
}

void mt_supps_load(bool builtin, const char *const *files, size_t nfiles)
{
	if (builtin)
		for (size_t i = 0; i < sizeof(builtin_supps) / sizeof(builtin_supps[0]); i++)
			add_supp(builtin_supps[i]);
	nbuiltin = nsupps;
	for (size_t i = 0; i < nfiles; i++)
		load_supps(files[i]);
}

bool mt_supps_match(mt_sym_t *sym, const mt_snap_site_t *site)
{
	supp_t *s = suppressed(sym, site);
	if (s)
		s->hits++;
	return s != NULL;
}

void mt_supps_free(void)
{
	for (size_t k = 0; k < nsupps; k++) {
		free(supps[k].pat);
		free(supps[k].text);
	}
	free(supps);
	supps = NULL;
	nsupps = nbuiltin = 0;
}

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

int mt_cmd_leaks(int argc, char **argv)
{
	static const struct option opts[] = {
		MT_VIEW_LONGOPTS,
		{"suppressions", required_argument, NULL, 's'},
		{"no-builtin", no_argument, NULL, 'B'},
		{0},
	};
	mt_view_t v;
	bool use_builtin = true;
	const char **files = NULL; /* in argv */
	size_t nfiles = 0;
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

	mt_snap_t snap;
	mt_load_or_die(argv[optind], &snap);
	if (!mt_reason_final(snap.reason))
		fprintf(stderr,
			"memtrace: warning: %s was taken %s, not at exit: live blocks are not "
			"necessarily leaks\n",
			snap.file, mt_reason_text(snap.reason));
	mt_sym_t *sym = mt_sym_open(&snap);

	/* keep only unsuppressed sites, then group what is left */
	mt_snap_t kept = snap;
	kept.sites = mt_xmalloc((snap.nsites + 1) * sizeof(*kept.sites));
	kept.nsites = 0;
	uint64_t sup_bytes = 0, sup_blocks = 0, sup_sites = 0;
	for (size_t i = 0; i < snap.nsites; i++) {
		const mt_snap_site_t *site = &snap.sites[i];
		if (!site->live_count || !mt_site_passes(&v, sym, site))
			continue;
		if (mt_supps_match(sym, site)) {
			sup_bytes += site->live_bytes;
			sup_blocks += site->live_count;
			sup_sites++;
			continue;
		}
		kept.sites[kept.nsites++] = *site;
	}
	mt_stats_t st;
	mt_stats_build(&kept, sym, &v, false, &st);
	mt_stats_sort(&st, MT_SORT_SIZE);
	uint64_t bytes = 0, blocks = 0;
	for (size_t i = 0; i < st.n; i++) {
		bytes += st.v[i].size;
		blocks += st.v[i].count;
	}
	size_t shown = v.limit && v.limit < st.n ? v.limit : st.n;

	if (v.json) {
		printf("{");
		mt_json_snap(stdout, &snap);
		printf(",\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64
		       ",\"tracebacks\":%zu,"
		       "\"suppressed_bytes\":%" PRIu64 ",\"suppressed_blocks\":%" PRIu64
		       ",\"suppressed_tracebacks\":%" PRIu64 ",\"suppressions\":[",
		       bytes, blocks, st.n, sup_bytes, sup_blocks, sup_sites);
		bool first = true;
		for (size_t k = 0; k < nsupps; k++) {
			if (!supps[k].hits)
				continue;
			printf("%s{\"pattern\":", first ? "" : ",");
			mt_json_str(stdout, supps[k].text);
			printf(",\"builtin\":%s,\"hits\":%" PRIu64 "}",
			       k < nbuiltin ? "true" : "false", supps[k].hits);
			first = false;
		}
		printf("],\"leaks\":[");
		for (size_t i = 0; i < shown; i++) {
			printf("%s{\"size\":%" PRIu64 ",\"count\":%" PRIu64 ",\"traceback\":[",
			       i ? "," : "", st.v[i].size, st.v[i].count);
			for (size_t j = 0; j < st.v[i].ntrace; j++) {
				printf(j ? "," : "");
				mt_json_str(stdout, st.v[i].trace[j]);
			}
			printf("]}");
		}
		printf("]}\n");
	} else {
		char size[32], ssize[32];
		mt_print_snap_line(stdout, "", &snap);
		mt_format_size(size, sizeof(size), (double)bytes, false);
		mt_format_size(ssize, sizeof(ssize), (double)sup_bytes, false);
		printf("Leaked: %s (%" PRIu64 " bytes) in %" PRIu64 " blocks from %zu tracebacks; "
		       "suppressed: %s in %" PRIu64 " blocks from %" PRIu64 " tracebacks\n",
		       size, bytes, blocks, st.n, ssize, sup_blocks, sup_sites);
		for (size_t i = 0; i < shown; i++) {
			mt_format_size(size, sizeof(size), (double)st.v[i].size, false);
			printf("\nLeak of %" PRIu64 " bytes (%s) in %" PRIu64
			       " blocks, allocated from:\n",
			       st.v[i].size, size, st.v[i].count);
			for (size_t j = 0; j < st.v[i].ntrace; j++)
				print_frame((int)j, st.v[i].trace[j]);
		}
		if (shown < st.n)
			printf("\n... and %zu more tracebacks (--limit 0 shows all)\n",
			       st.n - shown);
		bool first = true;
		for (size_t k = 0; k < nsupps; k++) {
			if (!supps[k].hits)
				continue;
			printf("%sSuppressed %" PRIu64 " tracebacks with %sleak:%s\n",
			       first ? "\n" : "", supps[k].hits, k < nbuiltin ? "built-in " : "",
			       supps[k].text);
			first = false;
		}
	}
	mt_stats_free(&st);
	free(kept.sites);
	mt_sym_close(sym);
	mt_snap_free(&snap);
	mt_supps_free();
	free(files);
	free(v.include);
	free(v.exclude);
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
