/* SPDX-License-Identifier: MIT */
/*
 * cmd-leaks.c - `memtrace leaks SNAP`: what an at-exit snapshot's leak scan
 * found lost (definitely and indirectly by default, as LeakSanitizer
 * reports), by traceback, largest first, minus suppressions. A snapshot
 * without a scan (sampled, older, not final) counts every live block.
 *
 * Suppressions use LeakSanitizer's syntax, one `leak:PATTERN` a line: PATTERN
 * matches a frame's function, source file or module as a substring, `*` is a
 * wildcard, `^` and `$` anchor it. A user suppression matches any frame of the
 * stack. Built-in ones cover one-time libc and loader allocations (stdio
 * buffers, locale and time zone data, iconv, the loader's own tables, the
 * getXXbyYY buffers of getpwuid and its kin, text domain bindings) and
 * match only the frames of the allocation itself, inside libc or the loader.
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
	/* the buffers getpwuid, getgrnam, gethostbyname and the rest keep for
	 * the process's life, and their getpwent cousins */
	"getXXbyYY.c",
	"getXXent.c",
	/* bindtextdomain and textdomain keep the domain's binding */
	"set_binding_values",
	"textdomain",
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

static const char *const class_name[] = {
#define X(up, name, text, head) #name,
	MT_LEAK_CLASSES(X)
#undef X
};
static const char *const class_text[] = {
#define X(up, name, text, head) text,
	MT_LEAK_CLASSES(X)
#undef X
};
static const char *const class_head[] = {
#define X(up, name, text, head) head,
	MT_LEAK_CLASSES(X)
#undef X
};

unsigned mt_leak_classes(const char *cmd, const char *opt, const char *list)
{
	unsigned mask = 0;
	char *copy = mt_xasprintf("%s", list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int i = 0; i < MT_LEAK_NCLASS; i++)
			if (strcmp(t, class_name[i]) == 0)
				k = i;
		if (strcmp(t, "all") == 0)
			mask |= (1u << MT_LEAK_NCLASS) - 1;
		else if (k >= 0)
			mask |= 1u << k;
		else
			mt_die_usage(cmd, "%s: '%s' is not definite, indirect, possible, reachable or all",
				     opt, t);
	}
	free(copy);
	if (!mask)
		mt_die_usage(cmd, "%s needs at least one class", opt);
	return mask;
}

bool mt_leak_scanned(const mt_snap_t *s)
{
	return s->scan_status == MT_SCAN_DONE;
}

mt_snap_site_t mt_leak_site(const mt_snap_t *s, const mt_snap_site_t *site, unsigned mask)
{
	mt_snap_site_t out = *site;
	if (!mt_leak_scanned(s))
		return out;
	out.live_bytes = out.live_count = 0;
	for (int k = 0; k < MT_LEAK_NCLASS; k++)
		if (mask & (1u << k)) {
			out.live_bytes += site->leak_bytes[k];
			out.live_count += site->leak_blocks[k];
		}
	return out;
}

const char *mt_leak_mask_text(unsigned mask)
{
	static char buf[128];
	size_t at = 0;
	int n = 0, seen = 0;
	for (int k = 0; k < MT_LEAK_NCLASS; k++)
		n += (mask >> k) & 1;
	buf[0] = '\0';
	for (int k = 0; k < MT_LEAK_NCLASS; k++) {
		if (!(mask & (1u << k)))
			continue;
		const char *sep = !seen ? "" : seen == n - 1 ? " or " : ", ";
		/* "definitely or indirectly lost": the shared word once */
		const char *t = class_text[k];
		const char *sp = strchr(t, ' ');
		bool lost = sp && strcmp(sp, " lost") == 0;
		int next_lost = 0;
		for (int j = k + 1; j < MT_LEAK_NCLASS; j++)
			if (mask & (1u << j)) {
				const char *u = strchr(class_text[j], ' ');
				next_lost = u && strcmp(u, " lost") == 0;
				break;
			}
		int len = lost && next_lost ? (int)(sp - t) : (int)strlen(t);
		at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%.*s", sep, len, t);
		seen++;
	}
	return buf;
}

void mt_leak_say_unscanned(const char *cmd, const mt_snap_t *s)
{
	if (!mt_reason_final(s->reason) || mt_leak_scanned(s))
		return;
	const char *why = !s->scan_status ? "it has none" : mt_scan_status_text(s->scan_status);
	fprintf(stderr,
		"memtrace %s: warning: %s has no leak scan (%s%s%s): every block still live "
		"counts as leaked, caches too\n",
		cmd, s->file, why, s->scan_note && s->scan_note[0] ? ": " : "",
		s->scan_note ? s->scan_note : "");
}

/* "4400 bytes" below 10 KiB (where tracemalloc's size is in bytes too),
 * "196 KiB (200777 bytes)" above: the exact figure once. */
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
			       class_name[i], k[i].bytes, k[i].blocks);
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
				printf("%s{\"class\":\"%s\",\"size\":%" PRIu64 ",\"count\":%" PRIu64
				       ",\"traceback\":[",
				       first ? "" : ",", scanned ? class_name[i] : "live", e->size,
				       e->count);
				for (size_t t = 0; t < e->ntrace; t++) {
					printf(t ? "," : "");
					mt_json_str(stdout, e->trace[t]);
				}
				printf("]}");
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
				       toupper((unsigned char)class_text[i][0]), class_text[i] + 1, text,
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
				       scanned ? class_head[i] : "Leak of", e->size, in_bytes ? "" : " (",
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
