/* SPDX-License-Identifier: MIT */
/*
 * group.c - unit test of the analyzer's stages from a snapshot to its
 * groups (tools/memtrace: series.c's reader, symbolize.c, frames.c,
 * filter.c, group.c, growth.c, emit.c): a snapshot made here with the
 * record codec, whose callsites are Python stacks of known code objects
 * (CODE records carry file, function and first line, so no binary has to
 * be found), grouped by line, function, file, traceback and type, with
 * --cumulative, the domain, include/exclude patterns, dead sites and every
 * sort; and a series of three made the same way for growth. Every figure
 * is exact and follows from the sites below.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pyline.h"
#include "snapmake.h"
#include "unit.h"

/* The stage library calls the CLI's usage exit on a bad option. */
void mt_die_usage(const char *cmd, const char *fmt, ...)
{
	fprintf(stderr, "usage error in %s: %s\n", cmd, fmt);
	exit(1);
}

#define REC(type, ...)                                                  \
	do {                                                            \
		mt_rec_##type##_t r_ = {__VA_ARGS__};                   \
		mt_rec_put(mt_rec_desc(mt_rec_type_of_##type), &r_, snap_emit, o); \
	} while (0)
enum {
#define X(up, code, low, what) mt_rec_type_of_##low = code,
	MT_RECORDS(X)
#undef X
};

static mt_str_t S(const char *s)
{
	return (mt_str_t){s, (uint32_t)strlen(s)};
}

/* Code objects: app.py's build (line 10), main (30), other (40); lib.py's
 * helper (5). An empty line table: every offset is the first line. */
static const struct {
	const char *file, *func;
	int line;
} codes[] = {{NULL, NULL, 0},
	     {"/srv/app.py", "build", 10},
	     {"/srv/app.py", "main", 30},
	     {"/srv/app.py", "other", 40},
	     {"/srv/lib.py", "helper", 5}};

/* A site: its id, domain, live bytes and blocks, allocations in total,
 * and its Python stack (code ids, innermost first, 0-terminated). */
typedef struct site_spec {
	uint32_t id;
	uint8_t domain;
	uint64_t live, count, allocs;
	uint32_t stack[4];
} site_spec_t;

static const site_spec_t sites[] = {
	{1, MT_DOMAIN_HEAP, 100, 1, 1, {1, 2}},	   /* build <- main */
	{2, MT_DOMAIN_HEAP, 50, 2, 4, {1, 3}},	   /* build <- other */
	{3, MT_DOMAIN_HEAP, 7, 7, 9, {2}},	   /* main */
	{4, MT_DOMAIN_HEAP, 0, 0, 5, {4, 1, 2}},   /* helper <- build <- main: all freed */
	{5, MT_DOMAIN_MMAP, 4096, 1, 1, {1, 2}},   /* a mapping, from build */
	{6, MT_DOMAIN_HEAP, 1000, 10, 10, {4, 3}}, /* helper <- other */
};
#define NSITES (sizeof(sites) / sizeof(sites[0]))

/* Writes a snapshot; scale multiplies the live figures of sites 1 and 6
 * (a series). Returns its path. */
static char *make_snapshot(const char *dir, unsigned seq, uint64_t scale)
{
	static snapbuf_t ob;
	snapbuf_t *o = &ob;
	snap_begin(o, MT_FORMAT_MINOR);
	REC(meta, .pid = 4242, .seq = seq, .reason = MT_REASON_SIGNAL,
	    .mono_ns = 1000000000ull * seq, .start_mono_ns = 1, .wall_ns = 5000000000ull * seq,
	    .depth = 16, .exe = S("/usr/bin/python3"));
	REC(python, .version = 3 << 8 | 11);
	for (uint32_t c = 1; c < sizeof(codes) / sizeof(codes[0]); c++)
		REC(code, .id = c, .first_line = codes[c].line, .line_kind = MT_PYLINE_LNOTAB,
		    .file = S(codes[c].file), .function = S(codes[c].func), .line_table = S(""));
	for (size_t i = 0; i < NSITES; i++) {
		const site_spec_t *p = &sites[i];
		uint64_t k = p->id == 1 || p->id == 6 ? scale : 1;
		uint64_t c[MT_SITE_NCOUNTERS] = {p->live * k, p->count * k, p->allocs * k,
						 p->live * k + 1, p->live * k};
		uint64_t fr[4];
		uint32_t n = 0;
		for (; n < 4 && p->stack[n]; n++)
			fr[n] = mt_frame_py(p->stack[n], 0, p->stack[n + 1] == 0 || n == 3, false);
		REC(site, .id = p->id, .domain = p->domain,
		    .counters = {c, NULL, MT_SITE_NCOUNTERS}, .frames = {fr, NULL, n});
	}
	REC(census, .status = 1);
	REC(objtype, .site = 1, .objects = 1, .bytes = 100, .type = S("builtins.dict"));
	REC(objtype, .site = 2, .objects = 2, .bytes = 50, .type = S("builtins.dict"));
	REC(objtype, .site = 6, .objects = 10, .bytes = 1000, .type = S("app.Node"));
	snap_finish(o);
	char *path = mt_xasprintf("%s/memtrace.4242.%u.snap", dir, seq);
	FILE *f = fopen(path, "wb");
	EXPECT(f && fwrite(o->b, 1, o->n, f) == o->n && fclose(f) == 0, "write %s", path);
	return path;
}

typedef struct want {
	const char *key;
	uint64_t size, count;
} want_t;

/* Groups the snapshot by the view and compares with want, in order. */
static void expect_groups(const char *what, const char *path, mt_view_t *v, bool with_dead,
			  const want_t *want, size_t nwant)
{
	mt_snap_t snap;
	mt_load_or_die(path, &snap);
	mt_sym_t *sym = mt_sym_open(&snap);
	mt_stats_t st;
	mt_stats_build(&snap, sym, v, with_dead, &st);
	mt_stats_sort(&st, v->sort);
	EXPECT(st.n == nwant, "%s: %zu groups, want %zu", what, st.n, nwant);
	for (size_t i = 0; i < st.n && i < nwant; i++) {
		char *title = mt_stat_title(&st.v[i]);
		EXPECT(!strcmp(title, want[i].key) && st.v[i].size == want[i].size &&
			       st.v[i].count == want[i].count,
		       "%s: group %zu is '%s' %lu/%lu, want '%s' %lu/%lu", what, i, title,
		       (unsigned long)st.v[i].size, (unsigned long)st.v[i].count, want[i].key,
		       (unsigned long)want[i].size, (unsigned long)want[i].count);
		EXPECT(mt_stats_find(&st, st.v[i].key) == &st.v[i], "%s: %s found by key", what,
		       title);
		free(title);
	}
	mt_stats_free(&st);
	mt_sym_close(sym);
	mt_snap_free(&snap);
}

#define W(...) ((const want_t[]){__VA_ARGS__})
#define N(...) (sizeof((const want_t[]){__VA_ARGS__}) / sizeof(want_t))
#define GROUPS(what, path, v, dead, ...) expect_groups(what, path, v, dead, W(__VA_ARGS__), N(__VA_ARGS__))

static void views(const char *path)
{
	mt_view_t v;
	mt_view_init(&v);
	/* lineno: the innermost Python line; site 1 and 2 share build's */
	GROUPS("lineno", path, &v, false, {"/srv/lib.py:5", 1000, 10}, {"/srv/app.py:10", 150, 3},
	       {"/srv/app.py:30", 7, 7});
	v.sort = MT_SORT_COUNT;
	GROUPS("lineno by count", path, &v, false, {"/srv/lib.py:5", 1000, 10},
	       {"/srv/app.py:30", 7, 7}, {"/srv/app.py:10", 150, 3});
	v.sort = MT_SORT_ALLOCS; /* allocations in total: the freed site counts */
	GROUPS("lineno by allocs, dead sites too", path, &v, true, {"/srv/lib.py:5", 1000, 10},
	       {"/srv/app.py:30", 7, 7}, {"/srv/app.py:10", 150, 3});
	v.sort = MT_SORT_SIZE;
	v.group = MT_GROUP_FUNCTION;
	GROUPS("function", path, &v, false, {"helper", 1000, 10}, {"build", 150, 3},
	       {"main", 7, 7});
	v.group = MT_GROUP_FILE;
	GROUPS("file", path, &v, false, {"/srv/lib.py", 1000, 10}, {"/srv/app.py", 157, 10});
	v.group = MT_GROUP_TRACEBACK;
	GROUPS("traceback", path, &v, false, {"/srv/lib.py:5 in helper", 1000, 10},
	       {"/srv/app.py:10 in build", 100, 1}, {"/srv/app.py:10 in build", 50, 2},
	       {"/srv/app.py:30 in main", 7, 7});
	v.group = MT_GROUP_LINENO;
	v.cumulative = true; /* every frame of a stack credited once */
	GROUPS("cumulative", path, &v, false, {"/srv/app.py:40", 1050, 12},
	       {"/srv/lib.py:5", 1000, 10}, {"/srv/app.py:10", 150, 3},
	       {"/srv/app.py:30", 107, 8});
	v.cumulative = false;
	v.domain = MT_DOMAIN_MMAP;
	GROUPS("mmap", path, &v, false, {"/srv/app.py:10", 4096, 1});
	v.domain = -1;
	GROUPS("all domains", path, &v, false, {"/srv/app.py:10", 4246, 4},
	       {"/srv/lib.py:5", 1000, 10}, {"/srv/app.py:30", 7, 7});
	v.domain = MT_DOMAIN_HEAP;
	char *inc[] = {"build"}, *exc[] = {"lib.py"};
	v.include = inc, v.ninclude = 1;
	GROUPS("--include build", path, &v, false, {"/srv/app.py:10", 150, 3});
	v.all_frames = true; /* helper <- build <- main is freed: nothing more */
	GROUPS("--include build --all-frames", path, &v, false, {"/srv/app.py:10", 150, 3});
	v.include = NULL, v.ninclude = 0, v.all_frames = false;
	v.exclude = exc, v.nexclude = 1;
	GROUPS("--exclude lib.py", path, &v, false, {"/srv/app.py:10", 150, 3},
	       {"/srv/app.py:30", 7, 7});
	char *exc_other[] = {"other"};
	v.exclude = exc_other, v.all_frames = true;
	GROUPS("--exclude other --all-frames", path, &v, false, {"/srv/app.py:10", 100, 1},
	       {"/srv/app.py:30", 7, 7});
	v.exclude = NULL, v.nexclude = 0, v.all_frames = false;
	v.group = MT_GROUP_TYPE; /* the census: by type, sorted by size */
	GROUPS("type", path, &v, false, {"app.Node", 1000, 10}, {"builtins.dict", 150, 3});
	v.group = MT_GROUP_LINENO;
	char *types[] = {"builtins.*"};
	v.types = types, v.ntypes = 1;
	GROUPS("--include-type builtins.*", path, &v, false, {"/srv/app.py:10", 150, 3});
}

/* A series: sites 1 and 6 grow by their size each snapshot. */
static void growth(const char *dir)
{
	char *paths[3];
	for (unsigned i = 0; i < 3; i++)
		paths[2 - i] = make_snapshot(dir, i + 1, i + 1); /* given out of order */
	mt_view_t v;
	mt_view_init(&v);
	mt_series_t s;
	mt_series_load(&s, paths, 3, &v, false);
	EXPECT(s.n == 3 && s.all == 3, "series of %d of %d", s.n, s.all);
	EXPECT(s.s[0].snap.seq == 1 && s.s[2].snap.seq == 3, "in time order");
	EXPECT(s.seconds == 2.0, "2 s apart on the monotonic clock: %f", s.seconds);
	size_t ng;
	mt_growth_t *g = mt_growth_series(s.stats, s.n, s.seconds, &ng);
	EXPECT(ng == 3, "%zu groups", ng);
	EXPECT(ng >= 2 && !strcmp(g[0].ref->key, "/srv/lib.py:5") && g[0].net == 2000 &&
		       g[0].grew == 2 && g[0].steady && g[0].rate == 1000.0 &&
		       !strcmp(mt_growth_kind(&g[0], 3), "steady"),
	       "lib.py:5 first: +%ld, grew %d", (long)g[0].net, g[0].grew);
	EXPECT(ng >= 2 && !strcmp(g[1].ref->key, "/srv/app.py:10") && g[1].net == 200 &&
		       g[1].count_diff == 2,
	       "app.py:10 second: +%ld", (long)g[1].net);
	EXPECT(ng >= 3 && !strcmp(mt_growth_kind(&g[2], 3), "flat"), "app.py:30 flat");
	EXPECT(mt_growth_every(g, ng, 3) == 2, "two grew in every interval");
	mt_growth_free(g, ng);
	mt_series_free(&s);
	for (int i = 0; i < 3; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
}

int main(void)
{
	char dir[] = "/tmp/mt-unit-group-XXXXXX";
	if (!mkdtemp(dir))
		return 2;
	char *path = make_snapshot(dir, 1, 1);
	views(path);
	unlink(path);
	free(path);
	growth(dir);
	rmdir(dir);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("group: all passed\n");
	return failures != 0;
}
