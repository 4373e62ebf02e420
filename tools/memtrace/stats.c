/* SPDX-License-Identifier: MIT */
/*
 * stats.c - tracemalloc's statistics for native stacks: live blocks grouped
 * by the line (or file, function, whole traceback) that allocated them.
 *
 * The line that stands for a stack is the first frame outside the allocator
 * itself: frames in libc, the loader, libstdc++ and libgcc, in system headers
 * (inlined std:: containers) and in well-known allocation wrappers (operator
 * new, strdup, xmalloc, g_malloc, CPython's and SQLite's allocator functions)
 * are passed over, so a line points at the code that asked for the memory.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <inttypes.h>
#include <time.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "cli.h"
#include "hooks.h"

static const char *const runtime_modules[] = {
	"libc.so*",	"libc-*",	   "ld-linux*",	     "ld64.so*",	"libstdc++.so*",
	"libgcc_s.so*", "libmemtrace.so*", "libpthread.so*", "libjemalloc.so*", "linux-vdso.so*",
};

static const char *const wrapper_functions[] = {
/* the malloc family memtrace hooks (src/hooks.h) */
#define X(name, ...) #name,
	MT_HOOKS_MALLOC(X) MT_HOOKS_MALLOC_ALIASES(X)
#undef X
	"strdup",
	"strndup",
	"__strdup",
	"__strndup",
	"operator new*",
	"operator delete*",
	"__libc_*",
	"xmalloc",
	"xcalloc",
	"xrealloc",
	"xzalloc",
	"xstrdup",
	"xstrndup",
	"xmemdup*",
	"g_malloc*",
	"g_realloc*",
	"g_try_malloc*",
	"g_try_realloc*",
	"g_strdup*",
	"g_strndup",
	"g_memdup*",
	"PyMem_*",
	"_PyMem_*",
	"PyObject_Malloc",
	"PyObject_Calloc",
	"PyObject_Realloc",
	"_PyObject_Malloc*",
	"_PyObject_Calloc",
	"_PyObject_Realloc",
	"_PyObject_GC_*",
	"_PyObject_New*",
	"gc_alloc",
	"PyType_GenericAlloc",
	"_PyType_AllocNoTrack",
	"sqlite3Malloc*",
	"sqlite3_malloc*",
	"sqlite3MemMalloc",
	"sqlite3MemRealloc",
	"sqlite3Realloc",
	"sqlite3_realloc*",
	"sqlite3DbMalloc*",
	"sqlite3DbRealloc*",
	"Perl_safesys*",
	"ngx_alloc",
	"ngx_calloc",
	"ngx_palloc*",
	"ngx_pnalloc",
	"ngx_pcalloc",
	"ngx_memalign",
	"AllocSetAlloc",
	"AllocSetRealloc",
	"AllocSetContextCreateInternal",
	"palloc*",
	"repalloc*",
	"MemoryContextAlloc*",
	"std::allocator*",
	"std::__new_allocator*",
	"__gnu_cxx::new_allocator*",
	"std::allocator_traits*",
};

static bool match_any(const char *s, const char *const *pats, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(pats[i], s, 0) == 0)
			return true;
	return false;
}

static const char *base_name(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

/* A frame of an allocation wrapper: a function of the list, or code
 * inlined from a header (/usr/include, or glibc's own malloc headers such as
 * ld.so's include/rtld-malloc.h). */
static bool is_wrapper_frame(const mt_sframe_t *f)
{
	if (f->file && (strncmp(f->file, "/usr/include/", 13) == 0 ||
			fnmatch("*malloc*.h", base_name(f->file), 0) == 0))
		return true;
	if (f->func) {
		/* "operator new(unsigned long)" and "foo::bar(int)" match on
		 * the name before the parameter list */
		char name[512];
		size_t n = strcspn(f->func, "(");
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, f->func, n);
		name[n] = '\0';
		if (match_any(name, wrapper_functions,
			      sizeof(wrapper_functions) / sizeof(wrapper_functions[0])))
			return true;
	}
	return false;
}

bool mt_is_allocator_frame(const mt_sframe_t *f)
{
	if (f->module && match_any(base_name(f->module), runtime_modules,
				   sizeof(runtime_modules) / sizeof(runtime_modules[0])))
		return true;
	return is_wrapper_frame(f);
}

/* The frame that stands for a stack in lineno/file/function views: the
 * first outside the allocator and the runtime; for a stack wholly inside
 * them (the loader mapping a library before main, libc's own buffers), the
 * first that is not a wrapper, so that ld.so's loading shows as
 * elf/dl-load.c and not as the malloc of its include/rtld-malloc.h. */
mt_sframe_t mt_pick_frame(mt_sym_t *sym, const mt_snap_site_t *site)
{
	const mt_sframe_t *first = NULL;
	if (site->py_first >= 0) {
		/* made while Python code ran: its innermost Python line */
		mt_sym_lookup(sym, site->frames[site->py_first], &first);
		return *first;
	}
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		if (!first)
			first = &f[0];
		for (int j = 0; j < n; j++)
			if (!mt_is_allocator_frame(&f[j]))
				return f[j];
	}
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++)
			if (!is_wrapper_frame(&f[j]))
				return f[j];
	}
	if (first)
		return *first;
	return (mt_sframe_t){0};
}

static char *frame_text(const mt_sframe_t *f, enum mt_group g)
{
	const char *mod = f->module ? base_name(f->module) : "?";

	if (f->jit)
		return mt_xasprintf("%s", f->func);
	switch (g) {
	case MT_GROUP_FILE: return mt_xasprintf("%s", f->file ? f->file : mod);
	case MT_GROUP_MODULE:
		return mt_xasprintf("%s", f->module ? f->module : f->python ? f->file : "?");
	case MT_GROUP_FUNCTION:
		return f->func ? mt_xasprintf("%s", f->func)
			       : mt_xasprintf("%s(+0x%llx)", mod, (unsigned long long)f->offset);
	default:
		if (f->file && f->line > 0)
			return mt_xasprintf("%s:%d", f->file, f->line);
		if (f->func)
			return mt_xasprintf("%s(%s)", mod, f->func);
		return mt_xasprintf("%s(+0x%llx)", mod, (unsigned long long)f->offset);
	}
}

/* Every frame of a site, inlined calls expanded, innermost first. */
typedef struct frames {
	const mt_sframe_t **v;
	size_t n, cap;
} frames_t;

static void all_frames(mt_sym_t *sym, const mt_snap_site_t *site, frames_t *out)
{
	out->n = 0;
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++) {
			if (out->n == out->cap) {
				out->cap = out->cap ? out->cap * 2 : 64;
				out->v = mt_xrealloc(out->v, out->cap * sizeof(*out->v));
			}
			out->v[out->n++] = &f[j];
		}
	}
}

static bool frame_matches(const char *pat, const mt_sframe_t *f)
{
	const char *cands[] = {f->file, f->file ? base_name(f->file) : NULL, f->func, f->module,
			       f->module ? base_name(f->module) : NULL};
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (cands[i] && fnmatch(pat, cands[i], 0) == 0)
			return true;
	return false;
}

static bool any_matches(char **pats, size_t npats, const mt_sframe_t *where, const frames_t *fr,
			bool all)
{
	for (size_t p = 0; p < npats; p++) {
		if (frame_matches(pats[p], where))
			return true;
		for (size_t i = 0; all && i < fr->n; i++)
			if (frame_matches(pats[p], fr->v[i]))
				return true;
	}
	return false;
}

bool mt_site_passes(const mt_view_t *v, mt_sym_t *sym, const mt_snap_site_t *site)
{
	static frames_t fr;
	if (v->domain >= 0 && site->domain != v->domain)
		return false;
	if (!v->ninclude && !v->nexclude)
		return true;
	mt_sframe_t where = mt_pick_frame(sym, site);
	if (v->all_frames)
		all_frames(sym, site, &fr);
	else
		fr.n = 0;
	if (v->ninclude && !any_matches(v->include, v->ninclude, &where, &fr, v->all_frames))
		return false;
	if (v->nexclude && any_matches(v->exclude, v->nexclude, &where, &fr, v->all_frames))
		return false;
	return true;
}

struct mt_group_ix {
	size_t idx;
	UT_hash_handle hh;
};

static mt_stat_t *group_for(mt_stats_t *out, char *key, const mt_sframe_t *where)
{
	struct mt_group_ix *g;
	HASH_FIND_STR(out->index, key, g);
	if (g) {
		free(key);
		return &out->v[g->idx];
	}
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 256;
		out->v = mt_xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	mt_stat_t *st = &out->v[out->n];
	memset(st, 0, sizeof(*st));
	st->key = key;
	st->where = *where;
	g = mt_xmalloc(sizeof(*g));
	g->idx = out->n++;
	HASH_ADD_KEYPTR(hh, out->index, st->key, strlen(st->key), g);
	return st;
}

static void credit(mt_stat_t *st, const mt_snap_site_t *site)
{
	st->size += site->live_bytes;
	st->count += site->live_count;
	st->allocs += site->alloc_count;
	st->alloc_bytes += site->alloc_bytes;
}

/* The census's entries (objects by type) in site order, for lookups. */
static int cmp_objtype_site(const void *a, const void *b)
{
	uint32_t x = (*(const mt_snap_objtype_t *const *)a)->site;
	uint32_t y = (*(const mt_snap_objtype_t *const *)b)->site;
	return x < y ? -1 : x > y;
}

static bool type_wanted(const mt_view_t *v, const char *name)
{
	if (!v->ntypes)
		return true;
	for (size_t i = 0; i < v->ntypes; i++)
		if (fnmatch(v->types[i], name, 0) == 0)
			return true;
	return false;
}

/* A site's census entries: [*lo, *hi) of the sorted index. */
static void objtypes_of(const mt_snap_objtype_t **ix, size_t n, uint32_t site, size_t *lo,
			size_t *hi)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (ix[m]->site < site)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	for (*hi = a; *hi < n && ix[*hi]->site == site; (*hi)++)
		;
}

void mt_stats_build(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v, bool with_dead,
		    mt_stats_t *out)
{
	frames_t fr = {0};
	mt_progress_t pr;

	memset(out, 0, sizeof(*out));
	const mt_snap_objtype_t **ix = NULL;
	bool by_type = v->group == MT_GROUP_TYPE || v->ntypes;
	if (by_type) {
		static bool said;
		if (snap->census != 1 && !said) {
			said = true;
			fprintf(stderr,
				"memtrace: warning: %s has no census of Python objects (%s); "
				"its types are not known\n",
				snap->file,
				snap->census == 2 ? "the main thread ran no Python code while the "
						    "snapshot waited"
				: snap->py_version ? "sampled, or taken at exit"
						   : "not a Python process, or no Python frames");
		}
		ix = mt_xmalloc((snap->nobjtypes + 1) * sizeof(*ix));
		for (size_t i = 0; i < snap->nobjtypes; i++)
			ix[i] = &snap->objtypes[i];
		qsort(ix, snap->nobjtypes, sizeof(*ix), cmp_objtype_site);
	}
	mt_progress_begin(&pr, "symbolizing", snap->file, snap->nsites, "callsites");
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		mt_progress_step(&pr, i);
		/* by type the census stands alone: taken a moment before the
		 * counters, it may count objects the site has freed since */
		if ((site->live_count == 0 && !with_dead && !by_type) ||
		    !mt_site_passes(v, sym, site))
			continue;
		/* by type: the census's objects stand for the site's blocks */
		mt_snap_site_t typed = *site;
		if (by_type) {
			size_t lo, hi;
			objtypes_of(ix, snap->nobjtypes, site->id, &lo, &hi);
			typed.live_bytes = typed.live_count = 0;
			for (size_t k = lo; k < hi; k++) {
				if (!type_wanted(v, ix[k]->name))
					continue;
				if (v->group == MT_GROUP_TYPE) {
					mt_sframe_t where = {.func = ix[k]->name, .python = true};
					mt_stat_t *st = group_for(out, mt_xasprintf("%s", ix[k]->name),
								  &where);
					st->size += ix[k]->bytes;
					st->count += ix[k]->count;
				}
				typed.live_bytes += ix[k]->bytes;
				typed.live_count += ix[k]->count;
			}
			if (v->group == MT_GROUP_TYPE || !typed.live_count)
				continue;
			typed.alloc_count = typed.alloc_bytes = 0;
			site = &typed;
		}

		if (v->group == MT_GROUP_TRACEBACK) {
			all_frames(sym, site, &fr);
			size_t klen = 0;
			char **trace = mt_xmalloc((fr.n ? fr.n : 1) * sizeof(*trace));
			for (size_t j = 0; j < fr.n; j++) {
				char *t = frame_text(fr.v[j], MT_GROUP_LINENO);
				if (fr.v[j]->func && fr.v[j]->file) {
					char *w = mt_xasprintf(fr.v[j]->python ? "%s in %s" : "%s (%s)",
							       t, fr.v[j]->func);
					free(t);
					t = w;
				}
				trace[j] = t;
				klen += strlen(t) + 1;
			}
			char *key = mt_xmalloc(klen + 16);
			key[0] = '\0';
			for (size_t j = 0, at = 0; j < fr.n; j++) {
				size_t l = strlen(trace[j]);
				memcpy(key + at, trace[j], l);
				at += l;
				key[at++] = '\n';
				key[at] = '\0';
			}
			if (!fr.n)
				strcpy(key, "<no frames>");
			mt_sframe_t where = mt_pick_frame(sym, site);
			size_t before = out->n;
			mt_stat_t *st = group_for(out, key, &where);
			if (out->n > before) {
				st->trace = trace;
				st->ntrace = fr.n;
			} else {
				for (size_t j = 0; j < fr.n; j++)
					free(trace[j]);
				free(trace);
			}
			credit(st, site);
		} else if (v->cumulative) {
			/* every distinct frame of the stack, credited once */
			all_frames(sym, site, &fr);
			size_t *seen = mt_xmalloc((fr.n ? fr.n : 1) * sizeof(*seen));
			size_t nseen = 0;
			for (size_t j = 0; j < fr.n; j++) {
				/* indices, not pointers: group_for may move the array */
				size_t idx = (size_t)(group_for(out, frame_text(fr.v[j], v->group),
								fr.v[j]) -
						      out->v);
				bool dup = false;
				for (size_t k = 0; k < nseen && !dup; k++)
					dup = seen[k] == idx;
				if (dup)
					continue;
				seen[nseen++] = idx;
				credit(&out->v[idx], site);
			}
			free(seen);
		} else {
			mt_sframe_t where = mt_pick_frame(sym, site);
			credit(group_for(out, frame_text(&where, v->group), &where), site);
		}
	}
	mt_progress_end(&pr);
	free(fr.v);
	free(ix);
}

mt_stat_t *mt_stats_find(const mt_stats_t *st, const char *key)
{
	struct mt_group_ix *g;
	HASH_FIND_STR(st->index, key, g);
	return g ? &st->v[g->idx] : NULL;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a > b ? -1 : a < b;
}

static int cmp_size(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->size, y->size);
	if (!c)
		c = cmp_u64(x->count, y->count);
	return c ? c : strcmp(y->key, x->key);
}

static int cmp_count(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->count, y->count);
	if (!c)
		c = cmp_u64(x->size, y->size);
	return c ? c : strcmp(y->key, x->key);
}

static int cmp_allocs(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	int c = cmp_u64(x->allocs, y->allocs);
	if (!c)
		c = cmp_u64(x->alloc_bytes, y->alloc_bytes);
	return c ? c : strcmp(y->key, x->key);
}

/* Sorting moves entries: the index is rebuilt for the new positions. */
void mt_stats_sort(mt_stats_t *st, enum mt_sort sort)
{
	struct mt_group_ix *g, *tmp;
	if (st->n > 1) /* none: no array at all */
		qsort(st->v, st->n, sizeof(*st->v),
		      sort == MT_SORT_COUNT    ? cmp_count
		      : sort == MT_SORT_ALLOCS ? cmp_allocs
					       : cmp_size);
	HASH_ITER(hh, st->index, g, tmp)
	{
		HASH_DEL(st->index, g);
		free(g);
	}
	for (size_t i = 0; i < st->n; i++) {
		g = mt_xmalloc(sizeof(*g));
		g->idx = i;
		HASH_ADD_KEYPTR(hh, st->index, st->v[i].key, strlen(st->v[i].key), g);
	}
}

void mt_stats_free(mt_stats_t *st)
{
	struct mt_group_ix *g, *tmp;
	HASH_ITER(hh, st->index, g, tmp)
	{
		HASH_DEL(st->index, g);
		free(g);
	}
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].key);
		for (size_t j = 0; j < st->v[i].ntrace; j++)
			free(st->v[i].trace[j]);
		free(st->v[i].trace);
	}
	free(st->v);
	memset(st, 0, sizeof(*st));
}

void mt_format_size(char *buf, size_t cap, double size, bool sign)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	for (int u = 0; u < 5; u++) {
		if (fabs(size) < 100 && u != 0) {
			snprintf(buf, cap, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
			return;
		}
		if (fabs(size) < 10 * 1024 || u == 4) {
			snprintf(buf, cap, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
			return;
		}
		size /= 1024;
	}
}

char *mt_printable(const char *s)
{
	char *d = strdup(s ? s : "");
	for (char *p = d; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return d;
}

void mt_json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

char *mt_stat_title(const mt_stat_t *st)
{
	char *t = mt_printable(st->ntrace ? st->trace[0] : st->key);
	char *nl = strchr(t, '\n');
	if (nl)
		*nl = '\0';
	return t;
}

double mt_snap_seconds(const mt_snap_t *s)
{
	return (double)(s->mono_ns - s->start_mono_ns) / 1e9;
}

void mt_print_snap_line(FILE *f, const char *label, const mt_snap_t *s)
{
	char when[64] = "?";
	time_t t = (time_t)(s->wall_ns / 1000000000ull);
	struct tm tm;
	char *exe = mt_printable(s->exe);

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(f, "%sSnapshot %u of pid %u (%s), %s, %.3f s after %s: %s\n", label, s->seq,
		s->pid, mt_reason_text(s->reason), when, mt_snap_seconds(s),
		s->attach_wall_ns ? "the attach" : "start", exe);
	if (s->attach_wall_ns) {
		char since[64] = "?";
		time_t a = (time_t)(s->attach_wall_ns / 1000000000ull);
		if (gmtime_r(&a, &tm))
			strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		fprintf(f,
			"%sTracking since memtrace attached at %s: blocks allocated before are not "
			"counted; growth is growth since then\n",
			label, since);
	}
	if (s->sample_bytes) {
		char rate[32], ten[32];
		mt_format_size(rate, sizeof(rate), (double)s->sample_bytes, false);
		mt_format_size(ten, sizeof(ten), 100.0 * (double)s->sample_bytes, false);
		fprintf(f,
			"%sSampled: one allocation per %s on average, weighted by 1/p: sizes and "
			"counts below are estimates\n",
			label, rate);
		/* Poisson sampling by bytes: B bytes in blocks much smaller than R
		 * hold about B/R samples of weight about R each */
		fprintf(f,
			"%sA line's size has a standard error of about sqrt(%s x size): "
			"+/-100 %% at %s, +/-10 %% at %s\n",
			label, rate, rate, ten);
	}
	free(exe);
}

void mt_json_snap(FILE *f, const mt_snap_t *s)
{
	fprintf(f, "\"file\":");
	mt_json_str(f, s->file);
	fprintf(f, ",\"format\":\"%u.%u\",\"pid\":%u,\"ppid\":%u,\"seq\":%u,\"reason\":", s->major,
		s->minor, s->pid, s->ppid, s->seq);
	mt_json_str(f, mt_reason_text(s->reason));
	fprintf(f,
		",\"wall_ns\":%" PRIu64 ",\"mono_ns\":%" PRIu64 ",\"start_mono_ns\":%" PRIu64
		",\"seconds\":%.6f,\"sampled\":%s,\"sample_bytes\":%" PRIu64
		",\"attach_wall_ns\":%" PRIu64 ",\"exe\":",
		s->wall_ns, s->mono_ns, s->start_mono_ns, mt_snap_seconds(s),
		s->sample_bytes ? "true" : "false", s->sample_bytes, s->attach_wall_ns);
	char *exe = mt_printable(s->exe);
	mt_json_str(f, exe);
	free(exe);
	fprintf(f, ",\"totals\":{");
	const uint64_t *tv = (const uint64_t *)&s->totals;
	size_t i = 0;
#define X(name) fprintf(f, "%s\"" #name "\":%" PRIu64, i ? "," : "", tv[i]), i++;
	MT_TOTALS(X)
#undef X
	fprintf(f, "}");
	fprintf(f, ",\"python\":");
	if (s->py_version)
		fprintf(f, "{\"version\":\"%u.%u\",\"census\":%s,\"census_hold_ns\":%" PRIu64 "}",
			s->py_version >> 8, s->py_version & 255,
			s->census == 1 ? "\"taken\"" : s->census == 2 ? "\"late\"" : "null",
			s->census_hold_ns);
	else
		fprintf(f, "null");
	if (s->has_alloc) {
		fprintf(f, ",\"allocator\":{\"name\":");
		mt_json_str(f, s->alloc.name);
		const uint64_t *av = (const uint64_t *)&s->alloc;
		i = 0;
#define X(name, text) fprintf(f, ",\"" #name "\":%" PRIu64, av[i]), i++;
		MT_ALLOC_STATS(X)
#undef X
		fprintf(f, "}");
	}
}

static const char *sz(char *buf, double v, bool sign)
{
	mt_format_size(buf, 32, v, sign);
	return buf;
}

/* Whether the named allocator has arenas (MT_ALLOCATORS); an unknown one
 * has none memtrace can count. */
static bool has_arenas(const char *name)
{
#define X(id, nm, lib, pkg, probe, arenas, env)      \
	if (!strcmp(name, nm))             \
		return arenas;
	MT_ALLOCATORS(X)
#undef X
	return false;
}

/* "allocator glibc holds 284 KiB in 2 arenas (capped at 2)"; an allocator
 * that gives no figure of its own is named and left at that. */
static void allocator_phrase(char *out, size_t cap, const mt_alloc_stats_t *m)
{
	char held[32], arenas[80] = "";
	if (!m->held) {
		snprintf(out, cap, "allocator %s (no figures of its own)", m->name);
		return;
	}
	if (has_arenas(m->name)) {
		int n = snprintf(arenas, sizeof(arenas), " in %" PRIu64 " arena%s", m->arenas,
				 MT_PL(m->arenas));
		if (m->arena_max)
			snprintf(arenas + n, sizeof(arenas) - (size_t)n, " (capped at %" PRIu64 ")",
				 m->arena_max);
	}
	snprintf(out, cap, "allocator %s holds %s%s", m->name, sz(held, (double)m->held, false),
		 arenas);
}

void mt_print_memory(FILE *f, const mt_snap_t *s)
{
	char a[32], b[32], c[32], d[32], al[160];
	const mt_alloc_stats_t *m = &s->alloc;
	if (!s->has_alloc)
		return;
	allocator_phrase(al, sizeof(al), m);
	fprintf(f, "Memory: live heap %s in %" PRIu64 " block%s; %s; RSS %s, VMS %s\n",
		sz(a, (double)s->totals.heap_live_bytes, false), s->totals.heap_live_count,
		MT_PL(s->totals.heap_live_count), al, sz(c, (double)m->rss, false),
		sz(d, (double)m->vms, false));
	int64_t over = (int64_t)m->held - (int64_t)s->totals.heap_live_bytes;
	char beyond[160];
	if (!m->held)
		snprintf(beyond, sizeof(beyond), "unknown (the allocator says nothing)");
	else if (over >= 0)
		snprintf(beyond, sizeof(beyond),
			 "%s held beyond the live heap (fragmentation, free lists, caches)",
			 sz(a, (double)over, false));
	else /* a sampled estimate above what the allocator holds: no size below zero */
		snprintf(beyond, sizeof(beyond),
			 "none measured: the %slive heap is %s above what the allocator holds",
			 s->sample_bytes ? "estimated " : "", sz(a, (double)-over, false));
	char heaps[48] = ""; /* glibc's 64 MiB arena heaps: another allocator's are not */
	if (!strcmp(m->name, "glibc"))
		snprintf(heaps, sizeof(heaps), ", %" PRIu64 " 64 MiB arena heap%s", m->anon_64m,
			 MT_PL(m->anon_64m));
	fprintf(f,
		"Overhead: %s; "
		"%" PRIu64 " anonymous mapping%s (%s), %" PRIu64 " of them 1 MiB or more%s\n",
		beyond, m->anon_maps, MT_PL(m->anon_maps), sz(b, (double)m->anon_bytes, false),
		m->anon_1m, heaps);
}

const char *mt_memory_verdict(const mt_snap_t *a, const mt_snap_t *b, size_t every, int intervals)
{
	static char buf[160];
	if (!a->has_alloc || !b->has_alloc)
		return NULL;
	double live = (double)b->totals.heap_live_bytes - (double)a->totals.heap_live_bytes;
	double held = (double)b->alloc.held - (double)a->alloc.held;
	double arenas = (double)b->alloc.arenas - (double)a->alloc.arenas;
	double base = (double)(b->alloc.held > a->alloc.held ? b->alloc.held : a->alloc.held);
	/* a change in the totals matters above 64 KiB and 2 % of what the
	 * allocator holds; a line's steady growth matters at any size */
	double floor = base * 0.02 > 65536 ? base * 0.02 : 65536;
	if (arenas > 0 && held > floor && held > 2 * (live > 0 ? live : 0))
		return "arena sprawl: the allocator added arenas and holds far more than the live "
		       "heap grew ('memtrace allocators -- CMD' measures each cure)";
	if (live > floor)
		return "the live heap grew: look for leaks among the growing lines";
	if (every) {
		snprintf(buf, sizeof(buf),
			 "%zu %s in every one of the %d intervals: leak suspects, however small "
			 "the growth",
			 every, every == 1 ? "line grew" : "lines grew", intervals);
		return buf;
	}
	if (live < -floor)
		return "the live heap fell: memory was given back";
	if (held > floor)
		return "the allocator holds more while the live heap stayed flat: fragmentation "
		       "or allocator caches, not a leak";
	if (held < -floor)
		return "memory went down";
	return "no significant change";
}

void mt_print_memory_diff(FILE *f, const mt_snap_t *a, const mt_snap_t *b)
{
	char x[32], y[32], z[32], w[32], u[32], v[32], q[32], r[32], held[128] = "";
	if (!a->has_alloc || !b->has_alloc)
		return;
	if (!b->alloc.held)
		snprintf(held, sizeof(held), "%s gives no figures of its own", b->alloc.name);
	else if (has_arenas(b->alloc.name))
		snprintf(held, sizeof(held), "%s holds %s (%s) in %" PRIu64 " arenas (%+" PRId64 ")",
			 b->alloc.name, sz(z, (double)b->alloc.held, false),
			 sz(w, (double)b->alloc.held - (double)a->alloc.held, true), b->alloc.arenas,
			 (int64_t)(b->alloc.arenas - a->alloc.arenas));
	else
		snprintf(held, sizeof(held), "%s holds %s (%s)", b->alloc.name,
			 sz(z, (double)b->alloc.held, false),
			 sz(w, (double)b->alloc.held - (double)a->alloc.held, true));
	fprintf(f, "Memory: live heap %s (%s); %s; RSS %s (%s), VMS %s (%s)\n",
		sz(x, (double)b->totals.heap_live_bytes, false),
		sz(y, (double)b->totals.heap_live_bytes - (double)a->totals.heap_live_bytes, true),
		held, sz(u, (double)b->alloc.rss, false),
		sz(v, (double)b->alloc.rss - (double)a->alloc.rss, true),
		sz(q, (double)b->alloc.vms, false),
		sz(r, (double)b->alloc.vms - (double)a->alloc.vms, true));
	fprintf(f, "Verdict: %s\n", mt_memory_verdict(a, b, 0, 1));
}
