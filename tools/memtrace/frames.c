/* SPDX-License-Identifier: MIT */
/*
 * frames.c - one rule for the frames of a stack, everywhere: which frames
 * are the allocator's and the runtime's, where a stack's own code starts
 * (mt_frames_start: every view, export and report trims a stack there), the
 * frame that stands for a stack (mt_pick_frame: what a lineno line names),
 * and every frame of a stack with its inlined calls (mt_site_frames).
 *
 * The line that stands for a stack is the first frame outside the allocator
 * itself: frames in libc, the loader, libstdc++ and libgcc, in system headers
 * (inlined std:: containers) and in well-known allocation wrappers (operator
 * new, strdup, xmalloc, g_malloc, CPython's and SQLite's allocator functions)
 * are passed over, so a line points at the code that asked for the memory.
 * A stack made while Python code ran starts at its innermost Python frame.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

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

const char *mt_base_name(const char *p)
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
			fnmatch("*malloc*.h", mt_base_name(f->file), 0) == 0))
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
	if (f->module && match_any(mt_base_name(f->module), runtime_modules,
				   sizeof(runtime_modules) / sizeof(runtime_modules[0])))
		return true;
	return is_wrapper_frame(f);
}

bool mt_frames_start(mt_sym_t *sym, const mt_snap_site_t *site, int *first, int *skip)
{
	if (site->py_first >= 0) {
		/* made while Python code ran: from its innermost Python frame
		 * (--native keeps the C frames) */
		*first = site->py_first;
		*skip = 0;
		return true;
	}
	for (int i = 0; i < site->nframes; i++) {
		const mt_sframe_t *f;
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++)
			if (!mt_is_allocator_frame(&f[j])) {
				*first = i;
				*skip = j;
				return true;
			}
	}
	*first = *skip = 0;
	return false;
}

/* The frame that stands for a stack in lineno/file/function views: where
 * its own code starts; for a stack wholly inside the allocator and the
 * runtime (the loader mapping a library before main, libc's own buffers),
 * the first frame that is not a wrapper, so that ld.so's loading shows as
 * elf/dl-load.c and not as the malloc of its include/rtld-malloc.h. */
mt_sframe_t mt_pick_frame(mt_sym_t *sym, const mt_snap_site_t *site)
{
	const mt_sframe_t *f;
	int first, skip;
	if (mt_frames_start(sym, site, &first, &skip)) {
		mt_sym_lookup(sym, site->frames[first], &f);
		return f[skip];
	}
	for (int i = 0; i < site->nframes; i++) {
		int n = mt_sym_lookup(sym, site->frames[i], &f);
		for (int j = 0; j < n; j++)
			if (!is_wrapper_frame(&f[j]))
				return f[j];
	}
	if (site->nframes) {
		mt_sym_lookup(sym, site->frames[0], &f);
		return f[0];
	}
	return (mt_sframe_t){0};
}

/* Every frame of a site, inlined calls expanded, innermost first. */
void mt_site_frames(mt_sym_t *sym, const mt_snap_site_t *site, mt_frames_t *out)
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
