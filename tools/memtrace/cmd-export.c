/* SPDX-License-Identifier: MIT */
/*
 * cmd-export.c - `memtrace export`: a snapshot in the formats other tools
 * read: pprof (export-pprof.c), collapsed stacks for flame graphs, and JSON
 * with every frame of every callsite symbolized.
 *
 * OUT is written through output.c: the whole export or what it was before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace export [OPTIONS] SNAPSHOT\n"
	"\n"
	"SNAPSHOT in a format other tools read:\n"
	"  -f, --format F        pprof (default): gzip-compressed profile.proto for go\n"
	"                        tool pprof and other pprof readers, values inuse_space,\n"
	"                        inuse_objects, alloc_space, alloc_objects;\n"
	"                        collapsed: one 'outer;...;leaf VALUE' line per stack\n"
	"                        for flamegraph.pl, inferno or speedscope, each frame\n"
	"                        'function (file.c:LINE)', 'function' or\n"
	"                        'module+0xOFFSET';\n"
	"                        json: every callsite, its stack as indices into one\n"
	"                        table of symbolized frames\n"
	"  -o, --output FILE     write FILE, atomically (the whole export or nothing);\n"
	"                        default, or '-': standard output, never a terminal\n"
	"                        for pprof\n"
	"      --value V         collapsed: inuse_space (default), inuse_objects,\n"
	"                        alloc_space or alloc_objects\n"
	"  -d, --domain D        heap (the malloc family), mmap (anonymous mappings)\n"
	"                        or all (default)\n"
	"      --include PAT     only stacks whose line matches PAT (fnmatch, on the\n"
	"                        file, function or module); repeatable\n"
	"      --exclude PAT     drop stacks whose line matches PAT; repeatable\n"
	"      --all-frames      --include/--exclude match any frame of the stack\n"
	"  -h, --help            this text\n"
	"\n"
	"pprof and collapsed stacks leave out the allocator's own frames at the leaf\n"
	"end (malloc, operator new, inlined std:: containers, ...), so the leaf is the\n"
	"line that asked for memory; json keeps them, marked \"allocator\".\n"
	"\n"
	"Exit status: 0 ok, 1 bad usage, 2 unreadable or corrupt snapshot, or the\n"
	"output could not be written (nothing is left behind).\n";

enum format { FORMAT_PPROF, FORMAT_COLLAPSED, FORMAT_JSON };
enum value { VALUE_INUSE_SPACE, VALUE_INUSE_OBJECTS, VALUE_ALLOC_SPACE, VALUE_ALLOC_OBJECTS };

static const char *const format_names[] = {"pprof", "collapsed", "json"};
static const char *const value_names[] = {"inuse_space", "inuse_objects", "alloc_space",
					  "alloc_objects"};

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* ---- collapsed stacks ---- */

/* One frame's text; ';' separates frames and a line ends in " VALUE", so
 * ';' and control characters become '?' (spaces are fine). */
static char *collapsed_frame(const mt_sframe_t *f)
{
	char *t;
	if (f->func && f->file && f->line > 0)
		t = mt_xasprintf("%s (%s:%d)", f->func, mt_base_name(f->file), f->line);
	else if (f->func)
		t = mt_xasprintf("%s", f->func);
	else
		t = mt_xasprintf("%s+0x%" PRIx64, f->module ? mt_base_name(f->module) : "?",
				 f->offset);
	for (char *p = t; *p; p++)
		if (*p == ';' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return t;
}

struct stack {
	uint64_t value;
	UT_hash_handle hh; /* keyed by text */
	char text[];
};

static int cmp_stack(const void *a, const void *b)
{
	return strcmp((*(struct stack *const *)a)->text, (*(struct stack *const *)b)->text);
}

static uint64_t site_value(const mt_snap_site_t *s, enum value v)
{
	switch (v) {
	case VALUE_INUSE_SPACE: return s->live_bytes;
	case VALUE_INUSE_OBJECTS: return s->live_count;
	case VALUE_ALLOC_SPACE: return s->alloc_bytes;
	default: return s->alloc_count;
	}
}

/* Root first, as flamegraph.pl reads it; identical stacks summed, sorted. */
static void export_collapsed(FILE *out, const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v,
			     enum value which)
{
	struct stack *stacks = NULL, *st, *tmp;
	char *buf = NULL;
	size_t len = 0, cap = 0, n = 0;

	mt_progress_t pr;
	mt_progress_begin(&pr, "symbolizing", snap->file, snap->nsites, "callsites");
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		mt_progress_step(&pr, i);
		uint64_t value = site_value(site, which);
		if (!value || !mt_site_passes(v, sym, site))
			continue;
		int first, skip;
		(void)mt_frames_start(sym, site, &first, &skip);
		len = 0;
		for (int a = site->nframes - 1; a >= first; a--) {
			const mt_sframe_t *f;
			int nf = mt_sym_lookup(sym, site->frames[a], &f);
			for (int j = nf - 1; j >= (a == first ? skip : 0); j--) {
				char *t = collapsed_frame(&f[j]);
				size_t l = strlen(t);
				if (len + l + 2 > cap) {
					cap = (len + l + 2) * 2;
					buf = mt_xrealloc(buf, cap);
				}
				if (len)
					buf[len++] = ';';
				memcpy(buf + len, t, l + 1);
				len += l;
				free(t);
			}
		}
		const char *text = len ? buf : "[no frames]";
		size_t tl = strlen(text);
		HASH_FIND(hh, stacks, text, tl, st);
		if (!st) {
			st = mt_xmalloc(sizeof(*st) + tl + 1);
			memcpy(st->text, text, tl + 1);
			st->value = 0;
			HASH_ADD(hh, stacks, text[0], tl, st);
			n++;
		}
		st->value += value;
	}
	mt_progress_end(&pr);
	free(buf);

	struct stack **sorted = mt_xmalloc((n ? n : 1) * sizeof(*sorted));
	size_t k = 0;
	HASH_ITER(hh, stacks, st, tmp)
	{
		sorted[k++] = st;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_stack);
	for (k = 0; k < n; k++)
		fprintf(out, "%s %" PRIu64 "\n", sorted[k]->text, sorted[k]->value);
	free(sorted);
	HASH_ITER(hh, stacks, st, tmp)
	{
		HASH_DEL(stacks, st);
		free(st);
	}
}

/* ---- JSON ---- */

static void json_frame(FILE *out, uint64_t addr, const mt_sframe_t *f, bool inlined)
{
	fprintf(out, "{\"address\":%" PRIu64 ",\"function\":", addr);
	mt_json_str(out, f->func);
	fprintf(out, ",\"file\":");
	mt_json_str(out, f->file);
	fprintf(out, ",\"line\":%d,\"module\":", f->line);
	mt_json_str(out, f->module);
	fprintf(out, ",\"offset\":%" PRIu64 ",\"kind\":\"%s\",\"inlined\":%s,\"allocator\":%s}",
		f->offset, mt_frame_kind_name(f), inlined ? "true" : "false",
		mt_is_allocator_frame(f) ? "true" : "false");
}

/* A return address's place in the frames table: its first frame (the
 * innermost inlined one) and how many there are. */
typedef struct addr_ix {
	uint64_t addr;
	uint32_t first, n;
	UT_hash_handle hh;
} addr_ix_t;

/*
 * Every frame is written once, in a table, and each callsite's stack is a
 * list of indices into it (a return address with inlined calls is several
 * consecutive entries, innermost first), as pprof shares its locations: a
 * snapshot of 50,000 callsites of 16 frames was 140 MB with every frame
 * written at every callsite.
 */
static void export_json(FILE *out, const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v)
{
	fputc('{', out);
	mt_json_snap(out, snap);
	fprintf(out, ",\"domain\":\"%s\",\"modules\":[", mt_domain_name(v->domain));
	for (size_t i = 0; i < snap->nmodules; i++) {
		const mt_snap_module_t *m = &snap->modules[i];
		fprintf(out, "%s{\"path\":", i ? "," : "");
		mt_json_str(out, m->path);
		fprintf(out,
			",\"bias\":%" PRIu64 ",\"lo\":%" PRIu64 ",\"hi\":%" PRIu64
			",\"build_id\":\"",
			m->bias, m->lo, m->hi);
		for (uint32_t j = 0; j < m->build_id_len; j++)
			fprintf(out, "%02x", m->build_id[j]);
		fprintf(out, "\"}");
	}
	/* the frames of the callsites in the view, once each */
	addr_ix_t *ix = NULL, *e, *tmp;
	uint32_t nframes = 0;
	bool *pass = mt_xmalloc((snap->nsites ? snap->nsites : 1) * sizeof(*pass));
	mt_progress_t pr;
	mt_progress_begin(&pr, "symbolizing", snap->file, snap->nsites, "callsites");
	fprintf(out, "],\"frames\":[");
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *s = &snap->sites[i];
		mt_progress_step(&pr, i);
		pass[i] = mt_site_passes(v, sym, s);
		for (int a = 0; pass[i] && a < s->nframes; a++) {
			HASH_FIND(hh, ix, &s->frames[a], sizeof(uint64_t), e);
			if (e)
				continue;
			const mt_sframe_t *f;
			int n = mt_sym_lookup(sym, s->frames[a], &f);
			e = mt_xmalloc(sizeof(*e));
			e->addr = s->frames[a];
			e->first = nframes;
			e->n = (uint32_t)n;
			HASH_ADD(hh, ix, addr, sizeof(uint64_t), e);
			for (int j = 0; j < n; j++, nframes++) {
				fputs(nframes ? ",\n" : "\n", out);
				json_frame(out, s->frames[a], &f[j], j < n - 1);
			}
		}
	}
	mt_progress_end(&pr);
	fprintf(out, "],\"sites\":[");
	bool any = false;
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *s = &snap->sites[i];
		if (!pass[i])
			continue;
		fprintf(out,
			"%s\n{\"id\":%u,\"domain\":\"%s\",\"live_bytes\":%" PRIu64
			",\"live_count\":%" PRIu64 ",\"alloc_bytes\":%" PRIu64
			",\"alloc_count\":%" PRIu64 ",\"peak_bytes\":%" PRIu64,
			any ? "," : "", s->id, mt_domain_name(s->domain), s->live_bytes,
			s->live_count, s->alloc_bytes, s->alloc_count, s->peak_bytes);
		if (s->has_leak) {
			/* the leak scan's classes of its live blocks */
			static const char *const names[] = {
#define X(up, name, text, head) #name,
				MT_LEAK_CLASSES(X)
#undef X
			};
			fputs(",\"leak\":{", out);
			for (int k = 0; k < MT_LEAK_NCLASS; k++)
				fprintf(out, "%s\"%s\":{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 "}",
					k ? "," : "", names[k], s->leak_bytes[k], s->leak_blocks[k]);
			fputs("}", out);
		}
		fputs(",\"stack\":[", out);
		any = true;
		bool first = true;
		for (int a = 0; a < s->nframes; a++) {
			HASH_FIND(hh, ix, &s->frames[a], sizeof(uint64_t), e);
			for (uint32_t j = 0; e && j < e->n; j++, first = false)
				fprintf(out, "%s%u", first ? "" : ",", e->first + j);
		}
		fprintf(out, "]}");
	}
	fprintf(out, "]}\n");
	HASH_ITER(hh, ix, e, tmp) {
		HASH_DEL(ix, e);
		free(e);
	}
	free(pass);
}

/* ---- the command ---- */

int mt_cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, NULL, 'f'},
		{"output", required_argument, NULL, 'o'},
		{"value", required_argument, NULL, 'V'},
		{"domain", required_argument, NULL, 'd'},
		{"include", required_argument, NULL, 'I'},
		{"exclude", required_argument, NULL, 'X'},
		{"all-frames", no_argument, NULL, 'A'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	enum format format = FORMAT_PPROF;
	int value = -1, c, k;
	const char *path = NULL;
	mt_view_t v;

	mt_view_init(&v);
	v.domain = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:o:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(usage_text, stdout); exit(MT_EXIT_OK);
		case 'f':
			if ((k = lookup(optarg, format_names, 3)) < 0)
				mt_die_usage("export",
					     "--format takes pprof, collapsed or json, not '%s'",
					     optarg);
			format = (enum format)k;
			break;
		case 'o': path = optarg; break;
		case 'V':
			if ((value = lookup(optarg, value_names, 4)) < 0)
				mt_die_usage("export",
					     "--value takes inuse_space, inuse_objects, "
					     "alloc_space or alloc_objects, not '%s'",
					     optarg);
			break;
		case 'd':
		case 'I':
		case 'X':
		case 'A': mt_view_option(&v, "export", c, optarg); break;
		default: mt_die_usage("export", "unknown option");
		}
	}
	if (argc - optind != 1)
		mt_die_usage("export", "needs exactly one snapshot file, got %d", argc - optind);
	if (value >= 0 && format != FORMAT_COLLAPSED)
		mt_die_usage("export", "--value goes with --format collapsed (pprof and json carry "
				       "all four values)");
	bool to_stdout = !path || strcmp(path, "-") == 0;
	if (format == FORMAT_PPROF && to_stdout && isatty(STDOUT_FILENO))
		mt_die_usage("export", "will not write compressed pprof data to a terminal: use -o "
				       "FILE or a pipe");

	mt_snap_t snap;
	mt_load_or_die(argv[optind], &snap);
	mt_sym_t *sym = mt_sym_open(&snap);
	if (!sym) {
		fputs("memtrace export: cannot start the symbolizer\n", stderr);
		exit(MT_EXIT_INPUT);
	}
	mt_output_t out;
	mt_output_open(&out, "export", path);
	switch (format) {
	case FORMAT_PPROF:
		if (mt_export_pprof(out.f, &snap, sym, &v) != 0)
			mt_output_fail(&out, ENOMEM);
		break;
	case FORMAT_COLLAPSED:
		export_collapsed(out.f, &snap, sym, &v, value < 0 ? VALUE_INUSE_SPACE : value);
		break;
	case FORMAT_JSON: export_json(out.f, &snap, sym, &v); break;
	}
	mt_output_commit(&out);
	mt_sym_close(sym);
	mt_snap_free(&snap);
	free(v.include);
	free(v.exclude);
	return MT_EXIT_OK;
}
