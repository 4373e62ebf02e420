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
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "cli.h"

static const char *const runtime_modules[] = {
	"libc.so*", "libc-*", "ld-linux*", "ld64.so*", "libstdc++.so*", "libgcc_s.so*",
	"libmemtrace.so*", "libpthread.so*", "libjemalloc.so*", "linux-vdso.so*",
};

static const char *const wrapper_functions[] = {
	"malloc", "calloc", "realloc", "reallocarray", "free", "strdup", "strndup",
	"__strdup", "__strndup", "aligned_alloc", "posix_memalign", "memalign", "valloc",
	"operator new*", "operator delete*", "__libc_*", "xmalloc", "xcalloc", "xrealloc",
	"xzalloc", "xstrdup", "xstrndup", "xmemdup*", "g_malloc*", "g_realloc*",
	"g_try_malloc*", "g_try_realloc*", "g_strdup*", "g_strndup", "g_memdup*",
	"PyMem_*", "_PyMem_*", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc",
	"_PyObject_Malloc*", "_PyObject_Calloc", "_PyObject_Realloc", "_PyObject_GC_*",
	"_PyObject_New*", "gc_alloc", "PyType_GenericAlloc", "_PyType_AllocNoTrack",
	"sqlite3Malloc*", "sqlite3_malloc*", "sqlite3MemMalloc", "sqlite3MemRealloc",
	"sqlite3Realloc", "sqlite3_realloc*", "sqlite3DbMalloc*", "sqlite3DbRealloc*",
	"Perl_safesys*", "std::allocator*", "std::__new_allocator*",
	"__gnu_cxx::new_allocator*", "std::allocator_traits*",
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

static bool is_allocator_frame(const mt_sframe_t *f)
{
	if (f->module &&
	    match_any(base_name(f->module), runtime_modules,
		      sizeof(runtime_modules) / sizeof(runtime_modules[0])))
		return true;
	if (f->file && strncmp(f->file, "/usr/include/", 13) == 0)
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

/* The frame that stands for a stack in lineno/file/function views. */
static mt_sframe_t pick_frame(mt_sym_t *sym, const mt_snap_site_t *site)
{
	const mt_sframe_t *first = NULL;
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		if (!first)
			first = &f[0];
		for (int j = 0; j < n; j++)
			if (!is_allocator_frame(&f[j]))
				return f[j];
	}
	if (first)
		return *first;
	return (mt_sframe_t){ 0 };
}

static char *frame_text(const mt_sframe_t *f, enum mt_group g)
{
	char *s = NULL;
	const char *mod = f->module ? base_name(f->module) : "?";
	int r;

	switch (g) {
	case MT_GROUP_FILE:
		r = asprintf(&s, "%s", f->file ? f->file : mod);
		break;
	case MT_GROUP_FUNCTION:
		r = f->func ? asprintf(&s, "%s", f->func) : asprintf(&s, "%s(+0x%llx)", mod,
								 (unsigned long long)f->offset);
		break;
	default:
		if (f->file && f->line > 0)
			r = asprintf(&s, "%s:%d", f->file, f->line);
		else if (f->func)
			r = asprintf(&s, "%s(%s)", mod, f->func);
		else
			r = asprintf(&s, "%s(+0x%llx)", mod, (unsigned long long)f->offset);
		break;
	}
	return r < 0 ? NULL : s;
}

struct group {
	mt_stat_t st;
	UT_hash_handle hh;
};

/* The full traceback, one formatted frame per inline-expanded frame. */
static int traceback(mt_sym_t *sym, const mt_snap_site_t *site, mt_stat_t *st, char **key)
{
	size_t cap = 0, klen = 0;
	*key = NULL;
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++) {
			char *line = frame_text(&f[j], MT_GROUP_LINENO), *withfn = NULL;
			if (!line)
				return -1;
			if (f[j].func && f[j].file && asprintf(&withfn, "%s (%s)", line, f[j].func) >= 0) {
				free(line);
				line = withfn;
			}
			if (st->ntrace == cap) {
				cap = cap ? cap * 2 : 8;
				char **t = realloc(st->trace, cap * sizeof(*t));
				if (!t)
					return free(line), -1;
				st->trace = t;
			}
			st->trace[st->ntrace++] = line;
			size_t ll = strlen(line);
			char *k = realloc(*key, klen + ll + 2);
			if (!k)
				return -1;
			*key = k;
			memcpy(k + klen, line, ll);
			klen += ll;
			k[klen++] = '\n';
			k[klen] = '\0';
		}
	}
	if (!*key)
		*key = strdup("<no frames>");
	return *key ? 0 : -1;
}

static void stat_clear(mt_stat_t *st)
{
	free(st->key);
	for (size_t i = 0; i < st->ntrace; i++)
		free(st->trace[i]);
	free(st->trace);
}

int mt_stats_build(const mt_snap_t *snap, mt_sym_t *sym, enum mt_group group, int domain,
		   mt_stats_t *out)
{
	struct group *groups = NULL, *g, *tmp;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < snap->nsites && rc == 0; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		mt_stat_t st = { 0 };
		char *key;

		if (site->live_count == 0 || (domain >= 0 && site->domain != domain))
			continue;
		st.where = pick_frame(sym, site);
		if (group == MT_GROUP_TRACEBACK) {
			if (traceback(sym, site, &st, &key) != 0) {
				stat_clear(&st);
				free(key);
				rc = -1;
				break;
			}
		} else {
			key = frame_text(&st.where, group);
			if (!key) {
				rc = -1;
				break;
			}
		}
		HASH_FIND_STR(groups, key, g);
		if (!g) {
			g = calloc(1, sizeof(*g));
			if (!g) {
				free(key);
				stat_clear(&st);
				rc = -1;
				break;
			}
			g->st = st;
			g->st.key = key;
			HASH_ADD_KEYPTR(hh, groups, g->st.key, strlen(g->st.key), g);
		} else {
			free(key);
			stat_clear(&st);
		}
		g->st.size += site->live_bytes;
		g->st.count += site->live_count;
		g->st.allocs += site->alloc_count;
		g->st.alloc_bytes += site->alloc_bytes;
	}

	size_t n = HASH_COUNT(groups);
	out->v = calloc(n ? n : 1, sizeof(*out->v));
	if (!out->v)
		rc = -1;
	HASH_ITER(hh, groups, g, tmp)
	{
		HASH_DEL(groups, g);
		if (out->v)
			out->v[out->n++] = g->st;
		else
			stat_clear(&g->st);
		free(g);
	}
	return rc;
}

static int cmp_size(const void *a, const void *b)
{
	const mt_stat_t *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(y->key, x->key); /* tracemalloc: then the traceback, reversed */
}

void mt_stats_sort_by_size(mt_stats_t *st)
{
	qsort(st->v, st->n, sizeof(*st->v), cmp_size);
}

void mt_stats_free(mt_stats_t *st)
{
	for (size_t i = 0; i < st->n; i++)
		stat_clear(&st->v[i]);
	free(st->v);
	memset(st, 0, sizeof(*st));
}

void mt_format_size(char *buf, size_t cap, double size, bool sign)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
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
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
