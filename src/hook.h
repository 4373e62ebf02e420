/* SPDX-License-Identifier: MIT */
/*
 * hook.h - what every entry point shares (hook.c: the malloc and mmap
 * families; pyalloc.c: CPython's allocator domains; cxx.c: C++'s
 * operators; init.c their start-up, fork and exit): the functions forwarded
 * to, the per-thread guard, the bootstrap pool, and the recording path,
 * inline so that each entry point costs what it did when they were one
 * file. hook.c's opening comment says what a hook may call.
 */
#ifndef MT_HOOK_H
#define MT_HOOK_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"
#include "arch.h"
#include "blocks.h"

#define EXPORT __attribute__((visibility("default")))
#define TLS_IE __attribute__((tls_model("initial-exec")))

/* Set while this thread is in a recorded call or in memtrace's own work:
 * what it allocates meanwhile is not recorded, and a terminating signal's
 * handler (trigger.c) does not dump from it. */
extern __thread int mt__tl_busy TLS_IE MT_HIDDEN;
/* Where the outermost hook's return address sits: the stack walk starts
 * there (unwind.c checks it). */
extern __thread uintptr_t mt__tl_entry_slot TLS_IE MT_HIDDEN;
/* A block this thread's Python domain hook (pyalloc.c) has just taken out
 * of the tables and is handing to the interpreter's allocator: the free or
 * realloc hook that allocator calls for it (PYTHONMALLOC=malloc, pymalloc's
 * large blocks) skips the lookup, which would find nothing. Set only around
 * that one call, and only for a block the system owns. */
extern __thread void *mt__tl_detached TLS_IE MT_HIDDEN;

/* The functions the hooks forward to, one per row of hooks.h's tables with
 * a function of its own (init.c resolves them). */
struct mt_real {
	mt_backend_t m; /* the malloc family: the system allocator */
#define X(name, ret, params, need) ret(*name) params;
	MT_HOOKS_MMAP(X)
	MT_HOOKS_PROCESS(X)
#undef X
};
extern struct mt_real mt__real MT_HIDDEN;

/* Tracked calls go to mt__be: the system allocator (sysbe, the next in the
 * chain) or jemalloc (arena.c), chosen once in init.c's constructor.
 * Everything else goes to the system. */
#define sysbe (mt__real.m)
extern const mt_backend_t *mt__be MT_HIDDEN;
extern const mt_backend_t *mt__jebe MT_HIDDEN; /* jemalloc, once loaded */

enum { RES_NONE, RES_BUSY, RES_DONE };
enum { INIT_NONE, INIT_BUSY, INIT_READY, INIT_OFF };
extern int mt__resolve_state MT_HIDDEN, mt__init_state MT_HIDDEN;

/* init.c */
MT_HIDDEN void mt__resolve(void);
MT_HIDDEN void mt__init(void);
MT_HIDDEN void *mt__next_sym(const char *name);
/* Set while this thread runs mt__resolve: what dlsym allocates meanwhile
 * comes from the bootstrap pool. */
extern __thread int mt__tl_resolving TLS_IE MT_HIDDEN;
/* The bootstrap pool: dlsym's allocations before the real functions are
 * known, never reused nor freed; free, realloc and malloc_usable_size know
 * its blocks by their address forever after. A block has a 16-byte header
 * holding its size; the memory is zero. */
#define MT_POOL_SIZE (256u << 10)
extern char mt__pool[MT_POOL_SIZE] MT_HIDDEN;
MT_HIDDEN void *mt__pool_alloc(size_t size, size_t align);
/* The snapshot of _exit and _Exit, which run no atexit handler. */
MT_HIDDEN void mt__uexit_dump(void);
/* hook.c */
MT_HIDDEN mt_site_t *mt__python_site(int domain, int state);
/* cxx.c */
MT_HIDDEN void mt__cxx_resolve(void);

static inline bool in_pool(const void *p)
{
	return (const char *)p >= mt__pool && (const char *)p < mt__pool + MT_POOL_SIZE;
}

static inline size_t pool_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

#define ENSURE_RESOLVED()                                                                \
	do {                                                                             \
		if (MT_UNLIKELY(__atomic_load_n(&mt__resolve_state, __ATOMIC_ACQUIRE) != \
				RES_DONE))                                               \
			mt__resolve();                                                   \
	} while (0)

static inline bool tracking(void)
{
	int s = __atomic_load_n(&mt__init_state, __ATOMIC_ACQUIRE);
	if (MT_LIKELY(s == INIT_READY))
		return true;
	if (s == INIT_NONE) {
		mt__init();
		return __atomic_load_n(&mt__init_state, __ATOMIC_ACQUIRE) == INIT_READY;
	}
	return false;
}

static MT_ALWAYS_INLINE mt_site_t *current_site(int domain)
{
	uintptr_t frames[MT_MAX_FRAMES];
	void **tag;
	if (MT_UNLIKELY(__atomic_load_n(&mt__trigger_start_needed, __ATOMIC_RELAXED)))
		mt__trigger_start(); /* a signal asked for the dump thread */
	int py = __atomic_load_n(&mt__py_state, __ATOMIC_RELAXED);
	if (MT_UNLIKELY(py != MT_PY_OFF))
		return mt__python_site(domain, py);
	/* a heap stack seen lately by this thread: its callsite, no lookup */
	int n = mt__unwind(frames, mt__opt.depth, mt__tl_entry_slot,
			   domain == MT_DOMAIN_HEAP ? &tag : NULL);
	if (domain == MT_DOMAIN_HEAP && tag && *tag)
		return *tag;
	mt_site_t *s = mt__site_get(frames, n, domain);
	if (!s)
		mt__count_untracked();
	else if (domain == MT_DOMAIN_HEAP && tag)
		*tag = s;
	return s;
}

/* Records a new block; false when it could not be (it goes untracked). */
static MT_ALWAYS_INLINE bool record_heap(void *p, size_t size, int owner)
{
	int saved = errno;
	span_prefetch((uintptr_t)p);
	mt_site_t *s = current_site(MT_DOMAIN_HEAP);
	bool ok = s && mt__heap_add(p, size, s, owner);
	errno = saved;
	return ok;
}

/* Enter/leave a recorded call: only the outermost call of a thread. The
 * hooks are built with frame pointers: the caller's return address is just
 * above the hook's frame address. */
#define ENTER()                                             \
	(!mt__tl_busy && tracking() && (mt__tl_busy = 1) && \
	 (mt__tl_entry_slot = mt__frame_ra_slot((uintptr_t)__builtin_frame_address(0))))
#define LEAVE() (mt__tl_busy = 0)

/* ---- backends: tracked calls go to `be`, everything else to the system */

static inline int owner_of_be(const mt_backend_t *b)
{
	return b == &sysbe ? MT_OWNER_SYSTEM : MT_OWNER_JEMALLOC;
}

static inline const mt_backend_t *be_of_owner(int owner)
{
	return owner == MT_OWNER_JEMALLOC && mt__jebe ? mt__jebe : &sysbe;
}

/* A block from a tracked call: recorded, or, when it cannot be and the
 * backend is not the system one, handed back and served by the system
 * untracked, so that no jemalloc block ever goes unrecorded. */
static MT_ALWAYS_INLINE void *keep(const mt_backend_t *b, void *p, size_t size, size_t copy,
				   int zero)
{
	if (!p || record_heap(p, size, owner_of_be(b)) || b == &sysbe)
		return p;
	void *q = mt__real.m.malloc(size ? size : 1);
	if (q) {
		if (zero)
			memset(q, 0, size);
		else if (copy)
			memcpy(q, p, copy);
	}
	b->free(p);
	return q;
}

/* Sampling mode: a block the filter says was never recorded needs no table
 * lookup on free or realloc. */
static inline bool unrecorded(const void *p)
{
	return mt__sample_mean && !mt__maybe_recorded(p);
}

/* Sampling mode: most calls skip recording, after one counter update. */
static inline bool unsampled(size_t size)
{
	return mt__sample_mean && !mt__sample_next(size);
}

/* The hooks' fast test: sampling, outside memtrace, and size bytes short of
 * this thread's next sample point, which then comes size bytes nearer. False
 * (nothing counted) where the common path must decide. The mean is set, and
 * the counter positive, only once the real functions are resolved. */
static MT_ALWAYS_INLINE bool unsampled_fast(size_t size)
{
	if (!mt__sample_mean || (uint64_t)mt__tl_sample_left <= size || mt__tl_busy)
		return false;
	mt__tl_sample_left -= (int64_t)size;
	return true;
}

/* Around table work on a path that records nothing (a free, an munmap):
 * the thread counts as inside memtrace meanwhile. A terminating signal's
 * handler (trigger.c) waits for a final dump only when its thread is not:
 * interrupted while holding a span's lock, it waited 3 s for a dump stuck
 * on that lock, then ended the process with no snapshot. */
static inline int guard_enter(void)
{
	int busy = mt__tl_busy;
	mt__tl_busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return busy;
}

static inline void guard_leave(int busy)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	mt__tl_busy = busy;
}

/* Starts loading the system allocator's header of a block about to be
 * freed (the 16 bytes below it, glibc's chunk header), before memtrace's
 * table lookup: on a large heap both miss the cache, and this way the two
 * misses overlap instead of following each other. A prefetch never faults:
 * any pointer will do. */
static inline void prefetch_header(const void *p)
{
	__builtin_prefetch((const char *)p - 16, 1, 3);
}

/* Forgets a block and returns the backend that owns it (errno is the
 * caller's to keep: both callers keep it around the real free too). */
static inline const mt_backend_t *forget(void *p)
{
	int busy = guard_enter();
	int owner = mt__heap_forget(p);
	guard_leave(busy);
	return be_of_owner(owner);
}

#endif
