/* SPDX-License-Identifier: MIT */
/*
 * cxx.c - C++'s operator new and delete, the twenty of them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "hook.h"

/* libstdc++'s call malloc and free, which are hooked: memtrace's forward to
 * them untouched. jemalloc, tcmalloc and mimalloc define their own, which
 * call no malloc: when the next operator new lives in the object that
 * serves malloc, memtrace records at this level instead (the constructor
 * decides; until then, and if it never runs, they are forwarded).
 * A throwing new is served by the allocator's nothrow one inside the
 * recorded call (no exception passes a recorded call); when that fails,
 * the throwing one runs outside it, and throws or calls the new-handler as
 * the program expects. One row per operator: its name, its parameters and
 * arguments, the size, and for each new its nothrow twin and its arguments. */
#define MT_CXX_NEW(X)                                                                     \
	X(_Znwm, (size_t n), (n), n, _ZnwmRKSt9nothrow_t, (n, &cxx_nothrow))                \
	X(_Znam, (size_t n), (n), n, _ZnamRKSt9nothrow_t, (n, &cxx_nothrow))                \
	X(_ZnwmSt11align_val_t, (size_t n, size_t al), (n, al), n,                          \
	  _ZnwmSt11align_val_tRKSt9nothrow_t, (n, al, &cxx_nothrow))                        \
	X(_ZnamSt11align_val_t, (size_t n, size_t al), (n, al), n,                          \
	  _ZnamSt11align_val_tRKSt9nothrow_t, (n, al, &cxx_nothrow))                        \
	X(_ZnwmRKSt9nothrow_t, (size_t n, const void *nt), (n, nt), n, _ZnwmRKSt9nothrow_t, \
	  (n, nt))                                                                           \
	X(_ZnamRKSt9nothrow_t, (size_t n, const void *nt), (n, nt), n, _ZnamRKSt9nothrow_t, \
	  (n, nt))                                                                           \
	X(_ZnwmSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt),        \
	  (n, al, nt), n, _ZnwmSt11align_val_tRKSt9nothrow_t, (n, al, nt))                  \
	X(_ZnamSt11align_val_tRKSt9nothrow_t, (size_t n, size_t al, const void *nt),        \
	  (n, al, nt), n, _ZnamSt11align_val_tRKSt9nothrow_t, (n, al, nt))
#define MT_CXX_DELETE(X)                                                          \
	X(_ZdlPv, (void *p), (p))                                                 \
	X(_ZdaPv, (void *p), (p))                                                 \
	X(_ZdlPvm, (void *p, size_t n), (p, n))                                   \
	X(_ZdaPvm, (void *p, size_t n), (p, n))                                   \
	X(_ZdlPvSt11align_val_t, (void *p, size_t al), (p, al))                   \
	X(_ZdaPvSt11align_val_t, (void *p, size_t al), (p, al))                   \
	X(_ZdlPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al))     \
	X(_ZdaPvmSt11align_val_t, (void *p, size_t n, size_t al), (p, n, al))     \
	X(_ZdlPvRKSt9nothrow_t, (void *p, const void *nt), (p, nt))               \
	X(_ZdaPvRKSt9nothrow_t, (void *p, const void *nt), (p, nt))               \
	X(_ZdlPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt), \
	  (p, al, nt))                                                            \
	X(_ZdaPvSt11align_val_tRKSt9nothrow_t, (void *p, size_t al, const void *nt), \
	  (p, al, nt))

static const char cxx_nothrow; /* std::nothrow_t is empty: any address will do */
static int cxx_own;	       /* the allocator's own operators: record here */

static struct {
#define X(name, params, args, size, twin, twin_args) void *(*name) params;
	MT_CXX_NEW(X)
#undef X
#define X(name, params, args) void (*name) params;
	MT_CXX_DELETE(X)
#undef X
} cxx;

/* In the constructor: the operators next in the chain, and whether they
 * are the allocator's own (in the object malloc comes from). Not in init:
 * that may run inside the program's allocator (rustc's jemalloc calls mmap
 * while starting, under its init lock), and dlsym of a name no object
 * defines mallocs its error message: through that allocator, a deadlock. */
void mt__cxx_resolve(void)
{
#define X(name, params, args, size, twin, twin_args) \
	cxx.name = (__typeof__(cxx.name))mt__next_sym(#name);
	MT_CXX_NEW(X)
#undef X
#define X(name, params, args) cxx.name = (__typeof__(cxx.name))mt__next_sym(#name);
	MT_CXX_DELETE(X)
#undef X
	(void)dlerror(); /* the names no object defines leave the program no error */
	cxx_own = cxx._Znwm && cxx._ZnwmRKSt9nothrow_t && cxx._ZnamRKSt9nothrow_t &&
		  cxx._ZnwmSt11align_val_tRKSt9nothrow_t && cxx._ZnamSt11align_val_tRKSt9nothrow_t &&
		  mt__same_object((void *)cxx._Znwm, (void *)mt__real.m.malloc);
}

/* An operator loaded after init (a C++ library dlopen'ed later) is looked
 * up at its first call and forwarded to, untracked: its malloc calls, if
 * any, are recorded below it. */
static void *cxx_next(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if (MT_UNLIKELY(!f)) {
		f = mt__next_sym(name);
		__atomic_store_n(slot, f, __ATOMIC_RELAXED);
	}
	return f;
}
#define CXX_NEXT(name) ((__typeof__(cxx.name))cxx_next((void **)&cxx.name, #name))

/* A program whose reference bound to memtrace's operator, and whose C++
 * runtime lacks it (built against a newer libstdc++): without memtrace the
 * loader would have refused to start it. Said, then the same end. */
static __attribute__((noreturn, noinline)) void cxx_missing(const char *name)
{
	static const char a[] = "memtrace: the program's C++ runtime has no ", b[] = "; aborting\n";
	(void)mt__write_all(2, a, sizeof(a) - 1);
	(void)mt__write_all(2, name, strlen(name));
	(void)mt__write_all(2, b, sizeof(b) - 1);
	abort();
}

#define X(name, params, args, size, twin, twin_args)                        \
	EXPORT void *name params                                                    \
	{                                                                           \
		ENSURE_RESOLVED();                                                  \
		__typeof__(cxx.name) next = CXX_NEXT(name);                         \
		if (MT_UNLIKELY(!next))                                             \
			cxx_missing(#name);                                         \
		if (!cxx_own || unsampled_fast(size) || !ENTER())                   \
			return next args;                                           \
		void *p = unsampled(size) ? cxx.twin twin_args                      \
					  : keep(&sysbe, cxx.twin twin_args, size, 0, 0); \
		LEAVE();                                                            \
		return p ? p : next args;                                           \
	}
MT_CXX_NEW(X)
#undef X

#define X(name, params, args)                                       \
	EXPORT void name params                                     \
	{                                                           \
		ENSURE_RESOLVED();                                  \
		if (cxx_own && p && !unrecorded(p) &&               \
		    MT_LIKELY(mt__init_state == INIT_READY)) {          \
			int saved = errno;                          \
			(void)forget(p);                            \
			errno = saved;                              \
		}                                                   \
		__typeof__(cxx.name) next = CXX_NEXT(name);         \
		if (MT_LIKELY(next))                                \
			next args;                                  \
		else /* libstdc++'s every delete is free's */       \
			mt__real.m.free(p);                             \
	}
MT_CXX_DELETE(X)
#undef X

