/* SPDX-License-Identifier: MIT */
/*
 * cmd-report.c - `memtrace report SNAP... -o FILE`: one self-contained HTML
 * page on a series of snapshots of one process: totals over time, a flame
 * graph of live bytes, the top lines with their growth, a diff between any
 * two snapshots. The page is the template in report/ (HTML, CSS and the
 * page's own script, embedded at build time) plus one JSON block of data;
 * it loads nothing else, so it works offline and from a mail attachment.
 *
 * The data (shapes documented again at the top of report.js):
 *   strings  every function, file and module name once
 *   frames   [function, file, line, module, offset, kind]: string indices, -1
 *            for none; kind 0 native, 1 Python, 2 JIT code
 *   stacks   frame indices, outermost first; inlined calls are frames of
 *            their own; the allocator's frames at the top are cut off, as a
 *            lineno line passes over them; a stack as deep as the recording
 *            depth starts with a frame that says its callers are missing
 *   groups   the lines (or the --group-by groups) of every snapshot with
 *            their sizes and counts per snapshot and growth's verdict
 *   types    a Python program's live objects by type (the census), growth's
 *            order: [name, [size per snapshot], [count per snapshot], kind]
 *   snaps    per snapshot, in time order: identity, totals, allocator
 *            figures (as show --json) and [stack, bytes, blocks] per stack
 * Every '<' inside the JSON is written as \u003c, so no string can end the
 * script element that holds it.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "cli.h"
#include "report-assets.h"

static const char usage_text[] =
	"usage: memtrace report [OPTIONS] -o FILE SNAPSHOT...\n"
	"\n"
	"One self-contained HTML page on a series of snapshots of one process:\n"
	"memory totals over time, a flame graph of live bytes per snapshot, the\n"
	"top lines with their growth (steady or jump, as memtrace growth), and a\n"
	"diff between any two snapshots. The page loads nothing from the network\n"
	"or other files. Snapshots are put in time order.\n"
	"\n"
	"  -o, --output FILE     the page to write ('-' for standard output); written\n"
	"                        to a temporary file and renamed into place\n"
	"  -n, --limit N         the top N lines in the table (default 50; 0 for all);\n"
	"                        the diff and the flame graph always cover everything\n"
	"  -g, --group-by K      lineno (default), file, function, module or traceback\n"
	"      --cumulative      credit every frame of a stack (not with traceback)\n"
	"  -d, --domain D        heap (default), mmap or all\n"
	"      --include PAT     only stacks whose line matches PAT; repeatable\n"
	"      --exclude PAT     drop stacks whose line matches PAT; repeatable\n"
	"      --all-frames      --include/--exclude match any frame of the stack\n"
	"  -h, --help            this text\n"
	"\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot, or the\n"
	"page could not be written (nothing is left behind).\n";

/* ---- interning: strings, frames and stacks each get a dense id ---------- */

typedef struct entry {
	void *key;
	size_t len;
	int64_t id;
	UT_hash_handle hh;
} entry_t;

typedef struct interner {
	entry_t *hash;
	entry_t **byid;
	size_t n, cap;
} interner_t;

/* The id of the key's bytes, a new one the first time they are seen. */
static int64_t intern(interner_t *t, const void *key, size_t len)
{
	entry_t *e;
	HASH_FIND(hh, t->hash, key, len, e);
	if (e)
		return e->id;
	e = mt_xmalloc(sizeof(*e));
	e->key = mt_xmalloc(len);
	memcpy(e->key, key, len);
	e->len = len;
	e->id = (int64_t)t->n;
	HASH_ADD_KEYPTR(hh, t->hash, e->key, len, e);
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->byid = mt_xrealloc(t->byid, t->cap * sizeof(*t->byid));
	}
	t->byid[t->n++] = e;
	return e->id;
}

static int64_t intern_str(interner_t *t, const char *s)
{
	return s ? intern(t, s, strlen(s) + 1) : -1;
}

static void interner_free(interner_t *t)
{
	entry_t *e, *tmp;
	HASH_ITER(hh, t->hash, e, tmp)
	{
		HASH_DEL(t->hash, e);
		free(e->key);
		free(e);
	}
	free(t->byid);
	memset(t, 0, sizeof(*t));
}

/* A frame as interned: string ids, so equal frames have equal bytes. */
typedef struct frame_key {
	int64_t func, file, line, module;
	uint64_t offset;
	int64_t kind; /* 0 native, 1 Python, 2 JIT code (no module) */
} frame_key_t;

typedef struct stack_use {
	int64_t stack;
	uint64_t bytes, count;
} stack_use_t;

typedef struct snapdata {
	mt_loaded_t *l;	   /* the snapshot, its symbols and groups (series.c) */
	stack_use_t *uses; /* by stack id, duplicates merged */
	size_t nuses;
} snapdata_t;

typedef struct report {
	interner_t strings, frames, stacks;
	mt_series_t ser;
	snapdata_t *s; /* one a snapshot of the series analysed */
	int n;
} report_t;

static int cmp_use(const void *a, const void *b)
{
	const stack_use_t *x = a, *y = b;
	return x->stack < y->stack ? -1 : x->stack > y->stack;
}

/* The live sites of one snapshot that pass the view, as interned stacks. */
static void collect_stacks(report_t *r, snapdata_t *d, const mt_view_t *v)
{
	size_t cap = 64;
	const mt_sframe_t **fr = mt_xmalloc(cap * sizeof(*fr));
	int64_t *ids = mt_xmalloc(cap * sizeof(*ids));

	d->uses = mt_xmalloc((d->l->snap.nsites + 1) * sizeof(*d->uses));
	d->nuses = 0;
	for (size_t i = 0; i < d->l->snap.nsites; i++) {
		const mt_snap_site_t *site = &d->l->snap.sites[i];
		if (!site->live_count || !mt_site_passes(v, d->l->sym, site))
			continue;
		/* from where its own code starts (frames.c): the allocator's
		 * frames cut, unless that is all; a Python site from its
		 * innermost Python frame */
		int first, skip;
		(void)mt_frames_start(d->l->sym, site, &first, &skip);
		size_t nf = 0, top = 0;
		for (int a = first; a < site->nframes; a++) {
			const mt_sframe_t *f;
			int k = mt_sym_lookup(d->l->sym, site->frames[a], &f);
			for (int j = a == first ? skip : 0; j < k; j++) {
				if (nf + 1 >= cap) {
					cap *= 2;
					fr = mt_xrealloc(fr, cap * sizeof(*fr));
					ids = mt_xrealloc(ids, cap * sizeof(*ids));
				}
				fr[nf++] = &f[j];
			}
		}
		size_t nids = 0;
		if (site->nnative >= d->l->snap.depth && d->l->snap.depth) {
			/* the recorded stack may stop short of main: say so at
			 * its root rather than pass it off as a caller-less one */
			char label[64];
			frame_key_t k = {.file = -1, .module = -1};
			snprintf(label, sizeof(label), "[callers beyond MEMTRACE_DEPTH=%u]",
				 d->l->snap.depth);
			k.func = intern_str(&r->strings, label);
			ids[nids++] = intern(&r->frames, &k, sizeof(k));
		}
		for (size_t j = nf; j-- > top;) {
			frame_key_t k;
			memset(&k, 0, sizeof(k));
			k.func = intern_str(&r->strings, fr[j]->func);
			k.file = intern_str(&r->strings, fr[j]->file);
			k.line = fr[j]->line;
			k.module = intern_str(&r->strings, fr[j]->module);
			/* the offset tells apart frames known by address only */
			k.offset = fr[j]->func ? 0 : fr[j]->offset;
			k.kind = fr[j]->python ? 1 : fr[j]->jit ? 2 : 0;
			ids[nids++] = intern(&r->frames, &k, sizeof(k));
		}
		d->uses[d->nuses++] = (stack_use_t){intern(&r->stacks, ids, nids * sizeof(*ids)),
						    site->live_bytes, site->live_count};
	}
	qsort(d->uses, d->nuses, sizeof(*d->uses), cmp_use);
	size_t out = 0;
	for (size_t i = 0; i < d->nuses; i++) {
		if (out && d->uses[out - 1].stack == d->uses[i].stack) {
			d->uses[out - 1].bytes += d->uses[i].bytes;
			d->uses[out - 1].count += d->uses[i].count;
		} else {
			d->uses[out++] = d->uses[i];
		}
	}
	d->nuses = out;
	free(fr);
	free(ids);
}

/* ---- the JSON block ----------------------------------------------------- */

/* A memory stream that cannot grow: out of memory, as mt_xmalloc does. */
static void nomem(void)
{
	fputs("memtrace: out of memory\n", stderr);
	exit(MT_EXIT_INPUT);
}

static void json_cmdline(FILE *f, const mt_snap_t *s)
{
	char *c = mt_xmalloc(s->cmdline_len + 1);
	size_t n = s->cmdline_len;
	if (n)
		memcpy(c, s->cmdline, n);
	while (n && c[n - 1] == '\0')
		n--;
	c[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (c[i] == '\0')
			c[i] = ' ';
	mt_json_str(f, c);
	free(c);
}

/* A Python program's live objects by type over the series (the census):
 * [name, [sizes], [counts], growth kind], growth's order, at most 100. */
static void write_types(FILE *f, report_t *r, const mt_view_t *v)
{
	bool any = false;
	for (int i = 0; i < r->n; i++)
		any |= r->s[i].l->snap.census == 1;
	if (!any)
		return;
	mt_view_t tv = *v;
	tv.group = MT_GROUP_TYPE;
	tv.cumulative = false;
	mt_stats_t *st = mt_xmalloc((size_t)r->n * sizeof(*st));
	const mt_stats_t **stp = mt_xmalloc((size_t)r->n * sizeof(*stp));
	for (int i = 0; i < r->n; i++) {
		mt_stats_build(&r->s[i].l->snap, r->s[i].l->sym, &tv, false, &st[i]);
		stp[i] = &st[i];
	}
	size_t ng;
	mt_growth_t *g = mt_growth_series(stp, r->n, r->ser.seconds, &ng);
	for (size_t i = 0; i < ng && i < 100; i++) {
		fprintf(f, "%s[", i ? ",\n" : "\n");
		mt_json_str(f, g[i].ref->key);
		fprintf(f, ",[");
		for (int j = 0; j < r->n; j++)
			fprintf(f, "%s%" PRIu64, j ? "," : "", g[i].size[j]);
		fprintf(f, "],[");
		for (int j = 0; j < r->n; j++)
			fprintf(f, "%s%" PRIu64, j ? "," : "", g[i].count[j]);
		fprintf(f, "],\"%s\"]", mt_growth_kind(&g[i], r->n));
	}
	mt_growth_free(g, ng);
	for (int i = 0; i < r->n; i++)
		mt_stats_free(&st[i]);
	free(st);
	free(stp);
}

static void write_data(FILE *f, report_t *r, const mt_view_t *v, const mt_growth_t *g, size_t ng)
{
	const mt_snap_t *first = &r->s[0].l->snap, *last = &r->s[r->n - 1].l->snap;
	uint64_t sampled = 0;

	for (int i = 0; i < r->n; i++)
		if (r->s[i].l->snap.sample_bytes > sampled)
			sampled = r->s[i].l->snap.sample_bytes;
	fprintf(f, "{\"version\":1,\"exe\":");
	mt_json_str(f, last->exe);
	fprintf(f, ",\"cmdline\":");
	json_cmdline(f, last);
	fprintf(f,
		",\"pid\":%u,\"mixed\":%s,\"sample_bytes\":%" PRIu64
		",\"seconds\":%.6f,\"domain\":\"%s\",\"group_by\":\"%s\",\"cumulative\":%s,"
		"\"limit\":%zu,\"verdict\":",
		last->pid, r->ser.mixed ? "true" : "false", sampled, r->ser.seconds,
		mt_domain_name(v->domain), mt_group_name(v->group),
		v->cumulative ? "true" : "false", v->limit);
	mt_json_str(f, mt_memory_verdict(first, last, mt_growth_every(g, ng, r->n), r->n - 1));

	/* groups first: they add the strings of their frames */
	char *groups = NULL;
	size_t glen = 0;
	FILE *gf = open_memstream(&groups, &glen);
	if (!gf)
		nomem();
	for (size_t i = 0; i < ng; i++) {
		const mt_stat_t *st = g[i].ref;
		char *title = mt_stat_title(st);
		fprintf(gf, "%s[", i ? ",\n" : "");
		mt_json_str(gf, title);
		free(title);
		fprintf(gf, ",%" PRId64 ",%" PRId64 ",%d,%" PRId64 ",\"%s\",%.3f,%d,[",
			intern_str(&r->strings, st->where.func),
			intern_str(&r->strings, st->where.file), st->where.line,
			intern_str(&r->strings, st->where.module), mt_growth_kind(&g[i], r->n),
			g[i].rate, g[i].grew);
		for (int j = 0; j < r->n; j++)
			fprintf(gf, "%s%" PRIu64, j ? "," : "", g[i].size[j]);
		fprintf(gf, "],[");
		for (int j = 0; j < r->n; j++)
			fprintf(gf, "%s%" PRIu64, j ? "," : "", g[i].count[j]);
		fprintf(gf, "]");
		if (st->ntrace) {
			fputc(',', gf);
			mt_json_strs(gf, st->trace, st->ntrace);
		}
		fprintf(gf, "]");
	}
	if (fclose(gf) != 0)
		nomem();

	fprintf(f, ",\n\"strings\":[");
	for (size_t i = 0; i < r->strings.n; i++) {
		fprintf(f, i ? ",\n" : "\n");
		mt_json_str(f, r->strings.byid[i]->key);
	}
	fprintf(f, "],\n\"frames\":[");
	for (size_t i = 0; i < r->frames.n; i++) {
		const frame_key_t *k = r->frames.byid[i]->key;
		fprintf(f, "%s[%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRIu64 ",%" PRId64 "]",
			i ? ",\n" : "\n", k->func, k->file, k->line, k->module, k->offset, k->kind);
	}
	fprintf(f, "],\n\"stacks\":[");
	for (size_t i = 0; i < r->stacks.n; i++) {
		const int64_t *ids = r->stacks.byid[i]->key;
		size_t n = r->stacks.byid[i]->len / sizeof(*ids);
		fprintf(f, i ? ",\n[" : "\n[");
		for (size_t j = 0; j < n; j++)
			fprintf(f, "%s%" PRId64, j ? "," : "", ids[j]);
		fprintf(f, "]");
	}
	fprintf(f, "],\n\"groups\":[\n");
	fwrite(groups, 1, glen, f);
	free(groups);
	fprintf(f, "],\n\"types\":[");
	write_types(f, r, v);
	fprintf(f, "],\n\"snaps\":[");
	for (int i = 0; i < r->n; i++) {
		const snapdata_t *d = &r->s[i];
		fprintf(f, "%s{", i ? ",\n" : "\n");
		mt_json_snap(f, &d->l->snap);
		fprintf(f, ",\"sites\":[");
		for (size_t j = 0; j < d->nuses; j++)
			fprintf(f, "%s[%" PRId64 ",%" PRIu64 ",%" PRIu64 "]", j ? "," : "",
				d->uses[j].stack, d->uses[j].bytes, d->uses[j].count);
		fprintf(f, "]}");
	}
	fprintf(f, "]}\n");
}

/* ---- the page ----------------------------------------------------------- */

static void put_html_text(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
		}
	}
}

/* The template with its @@NAME@@ markers filled in. */
static void write_page(FILE *f, const char *title, const char *json, size_t jlen)
{
	const char *t = (const char *)mt_report_html, *end = t + mt_report_html_len;
	while (t < end) {
		const char *m = strstr(t, "@@");
		if (!m || m >= end) {
			fwrite(t, 1, (size_t)(end - t), f);
			break;
		}
		fwrite(t, 1, (size_t)(m - t), f);
		if (!strncmp(m, "@@TITLE@@", 9)) {
			put_html_text(f, title);
			t = m + 9;
		} else if (!strncmp(m, "@@CSS@@", 7)) {
			fwrite(mt_report_css, 1, mt_report_css_len, f);
			t = m + 7;
		} else if (!strncmp(m, "@@JS@@", 6)) {
			fwrite(mt_report_js, 1, mt_report_js_len, f);
			t = m + 6;
		} else if (!strncmp(m, "@@DATA@@", 8)) {
			for (size_t i = 0; i < jlen; i++)
				if (json[i] == '<')
					fputs("\\u003c", f);
				else
					fputc(json[i], f);
			t = m + 8;
		} else {
			fwrite(m, 1, 2, f);
			t = m + 2;
		}
	}
}

int mt_cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"limit", required_argument, NULL, 'n'},
		{"group-by", required_argument, NULL, 'g'},
		{"domain", required_argument, NULL, 'd'},
		{"cumulative", no_argument, NULL, 'c'},
		{"include", required_argument, NULL, 'I'},
		{"exclude", required_argument, NULL, 'X'},
		{"all-frames", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *output = NULL;
	mt_view_t v;
	int c;

	mt_view_init(&v);
	v.limit = 50;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:n:g:d:h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage_text, stdout);
			return MT_EXIT_OK;
		}
		if (c == 'o')
			output = optarg;
		else if (c == '?' || !mt_view_option(&v, "report", c, optarg))
			mt_die_usage("report", "unknown option");
	}
	mt_view_check(&v, "report");
	int n = argc - optind;
	if (n < 1)
		mt_die_usage("report", "needs one or more snapshot files");
	if (!output || !*output)
		mt_die_usage("report",
			     "needs -o FILE, the page to write ('-' for standard output)");

	report_t r;
	memset(&r, 0, sizeof(r));
	mt_series_load(&r.ser, argv + optind, n, &v, false);
	r.n = n = r.ser.n;
	r.s = mt_xmalloc((size_t)n * sizeof(*r.s));
	memset(r.s, 0, (size_t)n * sizeof(*r.s));
	for (int i = 0; i < n; i++) {
		r.s[i].l = &r.ser.s[i];
		collect_stacks(&r, &r.s[i], &v);
	}
	size_t ng;
	mt_growth_t *g = mt_growth_series(r.ser.stats, n, r.ser.seconds, &ng);

	char *json = NULL;
	size_t jlen = 0;
	FILE *jf = open_memstream(&json, &jlen);
	if (!jf)
		nomem();
	write_data(jf, &r, &v, g, ng);
	if (fclose(jf) != 0)
		nomem();

	const char *exe = r.s[n - 1].l->snap.exe;
	const char *slash = exe ? strrchr(exe, '/') : NULL;
	char *title = mt_xasprintf("memtrace report: %s (pid %u)",
				   slash ? slash + 1
				   : exe ? exe
					 : "?",
				   r.s[n - 1].l->snap.pid);
	mt_output_t out;
	mt_output_open(&out, "report", output);
	write_page(out.f, title, json, jlen);
	mt_output_commit(&out);
	mt_series_say_left_out("report", &r.ser);

	free(title);
	free(json);
	mt_growth_free(g, ng);
	for (int i = 0; i < n; i++)
		free(r.s[i].uses);
	free(r.s);
	mt_series_free(&r.ser);
	interner_free(&r.strings);
	interner_free(&r.frames);
	interner_free(&r.stacks);
	free(v.include);
	free(v.exclude);
	return MT_EXIT_OK;
}
