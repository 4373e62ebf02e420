/* SPDX-License-Identifier: MIT */
/*
 * hook.c - the entry points libmemtrace.so exports in place of the malloc
 * family and the mmap family, and those around signals, id changes, _exit
 * and the public API; init.c has their start-up, fork and exit handling;
 * pyalloc.c wraps CPython's allocator domains and cxx.c C++'s operators,
 * all through hook.h's recording path. What follows holds for all three.
 *
 * Invariants:
 *  - every call is forwarded to the next allocator in the chain (RTLD_NEXT),
 *    whose results, errno and realloc(p, 0) semantics the program sees as is;
 *  - only the outermost call of a thread is recorded (mt__tl_busy): allocations
 *    made by memtrace itself, libunwind or libc helpers it calls are not;
 *  - dlsym's own allocations during start-up come from a static pool
 *    (init.c) that free/realloc/malloc_usable_size recognise forever after;
 *  - a block is removed from the tables before the real free and added after
 *    the real malloc, so an address reused by another thread is never lost;
 *  - under AT_SECURE (setuid/setgid) nothing is tracked or written.
 *
 * What a hook may call. A hook runs wherever the program allocates: inside
 * libc with libc's locks held (pthread_getattr_np allocates under the
 * thread's own lock, dlopen under the loader's, fork's handlers under
 * theirs), in signal handlers, in threads with tiny stacks. So a recorded
 * call makes no call that allocates through the program's allocator state
 * or takes a lock the program may hold, except these, each safe for the
 * reason given:
 *  - memtrace's own mutexes (table.c, ialloc.c), never held across a call
 *    out of memtrace, in the order table.c documents;
 *  - raw system calls: mmap/munmap (ialloc.c), gettid and getpid (unwind.c,
 *    once per thread), write(2) for a bounded number of warnings;
 *    clock_gettime through the vDSO; pthread_self reads a register;
 *  - libunwind's local walk, only when the frame-size walk cannot tell:
 *    its memory comes from its own mmap pools, and it takes only the
 *    loader's dl_iterate_phdr lock, which is recursive (a program inside a
 *    dl_iterate_phdr callback or dlopen may allocate); where another user of
 *    libunwind exists every signal is masked around the walk
 *    (pthread_sigmask: a system call), so no signal handler unwinds inside
 *    it, and libunwind's own sigprocmask calls do nothing meanwhile
 *    (unwind.c says how the other user is found);
 *  - pthread_setspecific for memtrace's two thread-exit keys, once per
 *    thread: it takes no lock, and the block it may calloc for a key past
 *    the first 32 comes back here untracked and goes to the system;
 *  - pthread_create of the snapshot thread, once, only after a signal asked
 *    for it (trigger.c says where it is safe).
 * Not: pthread_getattr_np (the thread's lock: it hung the JVM), stdio,
 * /proc reads (a seccomp sandbox may trap open), malloc_info; dladdr and
 * memtrace's own module walks run at start and on the dump thread. The
 * first call's initialisation (mt__init, init.c) runs once, before the program's
 * threads exist in every case seen, and may use more (secure_getenv,
 * dladdr, pthread_key_create, pthread_atfork).
 */
#define _GNU_SOURCE
/* mmap and mmap64 are both defined here: no 64-bit-offset renaming */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memtrace.h"
#include "internal.h"
#include "hook.h"
#include "arch.h"

__thread int mt__tl_busy TLS_IE;
__thread uintptr_t mt__tl_entry_slot TLS_IE;
__thread void *mt__tl_detached TLS_IE;

/* ---- the per-thread guard, for the rest of memtrace ---- */

void mt__thread_untracked(void)
{
	mt__tl_busy = 1;
}

bool mt__thread_idle(void)
{
	return mt__tl_busy == 0;
}

int mt__thread_busy_swap(int busy)
{
	int old = mt__tl_busy;
	mt__tl_busy = busy;
	return old;
}

/* Each row of hooks.h redeclared: the compiler refuses a row whose type is
 * not the one libc declares for its name (nor, below, an entry point's). */
#define X(name, ret, params, need) ret name params;
MT_HOOKS_MALLOC(X)
MT_HOOKS_MMAP(X)
MT_HOOKS_PROCESS(X)
#undef X

/* ---- recording ---- */

/* A Python process: the interpreter's frames follow the native ones in the
 * callsite's stack. The native stack alone cannot name the callsite (one
 * eval-loop stack runs every Python line), so a thread running Python code
 * keeps, in the unwinder's tag word of a native stack, a token (odd: site
 * pointers are even) that stands for that native stack while the unwinder
 * holds it, and finds the callsite in a cache keyed by the token and the
 * Python frames, verified frame by frame. A miss walks the native stack
 * again, whole. */
static inline uint64_t py_hash(const uint64_t *f, int m, uintptr_t token)
{
	uint64_t h = (uint64_t)token * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < m; i++)
		h = (h ^ f[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* How many runs of the eval loop Python frames f[0..m) are (each ends at a
 * frame that entered the eval loop from C), when the walk reached the
 * outermost (m short of its limit, and the last frame entered from C); 0
 * when it cannot tell. The native stack then holds as many eval-loop frames
 * (each run's, in the same order), and what lies beyond the outermost run's
 * is the interpreter's own start-up, or the C code that called into Python
 * first (a thread started in C, an embedding program): the same for every
 * allocation of the thread, and no view shows the interpreter's (frames.c).
 * The native walk ends there; the C code between runs (an extension that
 * called back into Python) is walked and kept. */
static inline int eval_runs(const uint64_t *f, int m, int depth)
{
	int runs = 0;
	if (m == 0 || m >= depth || !(f[m - 1] & MT_FRAME_PY_ENTRY))
		return 0;
	for (int i = 0; i < m; i++)
		runs += (f[i] & MT_FRAME_PY_ENTRY) != 0;
	return runs;
}

__attribute__((noinline)) mt_site_t *mt__python_site(int domain, int state)
{
	uintptr_t frames[MT_MAX_FRAMES];
	uint64_t pyf[MT_MAX_FRAMES];
	void **tag = NULL;
	int depth = mt__opt.depth, m = 0, n, lim;
	bool heap = domain == MT_DOMAIN_HEAP;
	if (state == MT_PY_WAIT)
		mt__py_poll();
	else if (state == MT_PY_ON)
		m = mt__py_frames(pyf, depth);
	lim = depth | MT_UNWIND_EVALS(eval_runs(pyf, m, depth));
	n = mt__unwind(frames, lim, mt__tl_entry_slot, heap ? &tag : NULL);
	uintptr_t held = tag ? (uintptr_t)*tag : 0;
	if (!m && held && !(held & 1))
		return (mt_site_t *)held; /* a native-only stack seen lately */
	uint64_t h = 0;
	if (m && (held & 1)) {
		h = py_hash(pyf, m, held);
		mt_site_t *s = mt__py_site_find(held, h);
		int sn;
		const uintptr_t *sf = s ? mt__site_frames(s, &sn) : NULL;
		if (s && sn >= m) {
			/* a few words: inline, not a call to memcmp */
			uint64_t diff = 0;
			for (int i = 0; i < m; i++)
				diff |= sf[sn - m + i] ^ pyf[i];
			if (!diff)
				return s;
		}
	}
	if (held) {
		/* frames were left unfilled: the tag named the stack */
		n = mt__unwind(frames, lim, mt__tl_entry_slot, NULL);
	}
	if (m > MT_MAX_FRAMES - n)
		m = MT_MAX_FRAMES - n;
	memcpy(frames + n, pyf, (size_t)m * sizeof(*pyf));
	mt_site_t *s = mt__site_get(frames, n + m, domain);
	if (!s) {
		mt__count_untracked();
		return NULL;
	}
	if (!tag)
		return s;
	if (!m) {
		*tag = s;
		return s;
	}
	if (!(held & 1)) {
		held = mt__py_token();
		*tag = (void *)held; /* NULL without a cache: no token */
		if (!held)
			return s;
	}
	mt__py_site_keep(held, py_hash(frames + n, m, held), s);
	return s;
}

/* ---- the malloc family ---- */

/* The hooks' common paths are out of line so that the sampling fast paths
 * before them stay small: no frame, no saved registers. */
static __attribute__((noinline)) void *malloc_slow(size_t size)
{
	if (MT_UNLIKELY(mt__resolve_state != RES_DONE)) {
		if (mt__tl_resolving)
			return mt__pool_alloc(size, 16);
		mt__resolve();
	}
	if (mt__sample_mean && !mt__tl_busy && mt__init_state == INIT_READY && unsampled(size))
		return mt__real.m.malloc(size);
	if (!ENTER())
		return mt__real.m.malloc(size);
	const mt_backend_t *b = mt__be;
	void *p = keep(b, b->malloc(size), size, 0, 0);
	LEAVE();
	return p;
}

EXPORT void *malloc(size_t size)
{
	/* sampling: an unsampled call costs one counter update, no more */
	if (unsampled_fast(size))
		return mt__real.m.malloc(size);
	return malloc_slow(size);
}


static __attribute__((noinline)) void free_slow(void *p)
{
	if (!p || in_pool(p))
		return;
	ENSURE_RESOLVED();
	if (p == mt__tl_detached) {
		/* the Python domain's hook took it out already */
		mt__tl_detached = NULL;
		mt__real.m.free(p);
		return;
	}
	if (MT_LIKELY(mt__init_state == INIT_READY) && !unrecorded(p)) {
		prefetch_header(p);
		int saved = errno;
		forget(p)->free(p);
		errno = saved;
		return;
	}
	mt__real.m.free(p);
}

EXPORT void free(void *p)
{
	/* sampling: a block the filter says was never recorded goes straight
	 * to the system (the mean is set only once the real functions are
	 * resolved; the pool's blocks are pinned in the filter, never sent) */
	if (unrecorded(p)) {
		mt__real.m.free(p);
		return;
	}
	free_slow(p);
}

EXPORT void cfree(void *p)
{
	free(p);
}

EXPORT void *calloc(size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	if (MT_UNLIKELY(mt__resolve_state != RES_DONE)) {
		if (mt__tl_resolving)
			return mt__pool_alloc(n * size, 16);
		mt__resolve();
	}
	if (!ENTER())
		return mt__real.m.calloc(n, size);
	const mt_backend_t *b = mt__be;
	void *p = unsampled(n * size) ? b->calloc(n, size)
				      : keep(b, b->calloc(n, size), n * size, 0, 1);
	LEAVE();
	return p;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* realloc semantics are the owning allocator's: on failure the old block
 * stays live (and tracked); a NULL result for size 0 means it was freed. A
 * block moves from the system to jemalloc by malloc, copy and free. */
static void *do_realloc(void *p, size_t size)
{
	if (in_pool(p)) {
		void *q = malloc(size);
		if (q)
			memcpy(q, p, min_size(pool_size(p), size));
		return q;
	}
	ENSURE_RESOLVED();
	if (!p)
		return malloc(size);
	if (!ENTER()) {
		if (mt__init_state != INIT_READY)
			return mt__real.m.realloc(p, size);
		/* nested (from inside memtrace or libc under a hook): the
		 * block's owner still decides, and a tracked block stays so;
		 * a block the Python domain's hook took out is the system's */
		uint64_t meta = 0;
		if (p == mt__tl_detached)
			mt__tl_detached = NULL;
		else
			meta = mt__heap_detach(p);
		const mt_backend_t *ob = meta ? be_of_owner(mt__meta_owner(meta)) : &sysbe;
		void *q = ob->realloc(p, size);
		int saved = errno;
		if (q || size == 0) {
			mt_site_t *site = meta ? mt__meta_site(meta) : NULL;
			mt__heap_release(meta);
			if (q && meta &&
			    !(site && mt__heap_add(q, size, site, mt__meta_owner(meta))) &&
			    ob != &sysbe) {
				void *r = mt__real.m.malloc(size);
				if (r)
					memcpy(r, q, min_size(ob->malloc_usable_size(q), size));
				ob->free(q);
				q = r;
			}
		} else {
			mt__heap_reattach(p, meta);
		}
		errno = saved;
		return q;
	}

	uint64_t meta = unrecorded(p) ? 0 : mt__heap_detach(p);
	const mt_backend_t *ob = meta ? be_of_owner(mt__meta_owner(meta)) : &sysbe;
	const mt_backend_t *nb = mt__be;
	void *q;
	int saved;
	if (ob == nb) {
		q = nb->realloc(p, size);
		saved = errno;
		if (q || size == 0) {
			mt__heap_release(meta);
			if (!unsampled(size))
				q = keep(nb, q, size, size, 0);
		} else {
			mt__heap_reattach(p, meta);
		}
	} else if (size == 0) {
		mt__heap_release(meta);
		ob->free(p);
		q = NULL;
		saved = errno;
	} else {
		q = nb->malloc(size);
		saved = errno;
		if (q) {
			memcpy(q, p, min_size(ob->malloc_usable_size(p), size));
			mt__heap_release(meta);
			ob->free(p);
			q = keep(nb, q, size, size, 0);
		} else {
			mt__heap_reattach(p, meta);
		}
	}
	errno = saved;
	LEAVE();
	return q;
}

EXPORT void *realloc(void *p, size_t size)
{
	/* sampling: a block never recorded (or NULL) that stays unsampled at
	 * its new size goes straight to the system, as in malloc and free */
	if (unrecorded(p) && unsampled_fast(size))
		return mt__real.m.realloc(p, size);
	return do_realloc(p, size);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	if (n && size > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(p, n * size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	ENSURE_RESOLVED();
	if (!ENTER())
		return mt__real.m.posix_memalign(out, align, size);
	const mt_backend_t *b = mt__be;
	void *p = NULL;
	int r = b->posix_memalign(&p, align, size);
	if (r == 0) {
		if (unsampled(size) || record_heap(p, size, owner_of_be(b)) || b == &sysbe) {
			*out = p;
		} else {
			b->free(p);
			r = mt__real.m.posix_memalign(out, align, size);
		}
	}
	LEAVE();
	return r;
}

/* The aligned family: a block that cannot be recorded is allocated again
 * by the system (alignment and size are what matter, not the content). */
#define ALIGNED_HOOK(name, params, args, size_expr)                                             \
	EXPORT void *name params                                                                \
	{                                                                                       \
		ENSURE_RESOLVED();                                                              \
		if (!mt__real.m.name) {                                                             \
			errno = ENOMEM;                                                         \
			return NULL;                                                            \
		}                                                                               \
		if (!ENTER())                                                                   \
			return mt__real.m.name args;                                                \
		const mt_backend_t *b = mt__be;                                                     \
		void *p = b->name args;                                                         \
		if (p && !unsampled(size_expr) && !record_heap(p, size_expr, owner_of_be(b)) && \
		    b != &sysbe) {                                                              \
			b->free(p);                                                             \
			p = mt__real.m.name args;                                                   \
		}                                                                               \
		LEAVE();                                                                        \
		return p;                                                                       \
	}

ALIGNED_HOOK(aligned_alloc, (size_t align, size_t size), (align, size), size)
ALIGNED_HOOK(memalign, (size_t align, size_t size), (align, size), size)
ALIGNED_HOOK(valloc, (size_t size), (size), size)
ALIGNED_HOOK(pvalloc, (size_t size), (size), size)

EXPORT size_t malloc_usable_size(void *p)
{
	uint64_t meta;
	if (!p)
		return 0;
	if (in_pool(p))
		return pool_size(p);
	ENSURE_RESOLVED();
	if (mt__jebe && mt__init_state == INIT_READY) {
		int busy = guard_enter();
		bool found = mt__heap_lookup(p, &meta);
		guard_leave(busy);
		if (found && mt__meta_owner(meta) == MT_OWNER_JEMALLOC)
			return mt__jebe->malloc_usable_size(p);
	}
	return mt__real.m.malloc_usable_size ? mt__real.m.malloc_usable_size(p) : 0;
}

/* ---- the mmap family: anonymous mappings are the mmap domain ---- */

static size_t page_round(size_t n)
{
	size_t pg = mt__page_size();
	return n > SIZE_MAX - pg ? n : (n + pg - 1) & ~(pg - 1);
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	ENSURE_RESOLVED();
	if (!ENTER())
		return mt__real.mmap(addr, len, prot, flags, fd, off);
	void *p = mt__real.mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED) {
		int saved = errno;
		if (flags & MAP_ANONYMOUS) {
			mt_site_t *s = current_site(MT_DOMAIN_MMAP);
			if (s)
				mt__mmap_add(p, page_round(len), s);
		} else if (flags & MAP_FIXED) {
			mt__mmap_remove(p, page_round(len)); /* a file now covers it */
		}
		errno = saved;
	}
	LEAVE();
	return p;
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

EXPORT int munmap(void *addr, size_t len)
{
	ENSURE_RESOLVED();
	/* forget first: once unmapped, another thread may map the range anew */
	if (len && !((uintptr_t)addr & (mt__page_size() - 1)) && mt__init_state == INIT_READY) {
		int saved = errno, busy = guard_enter();
		mt__mmap_remove(addr, page_round(len));
		guard_leave(busy);
		errno = saved;
	}
	return mt__real.munmap(addr, len);
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	ENSURE_RESOLVED();
	if (!ENTER())
		return mt__real.mremap(old, old_len, new_len, flags, new_addr);
	mt_site_t *was = mt__mmap_detach(old, page_round(old_len));
	void *p = mt__real.mremap(old, old_len, new_len, flags, new_addr);
	int saved = errno;
	if (was) {
		/* like realloc: the bytes now belong to the mremap caller */
		mt_site_t *s = p != MAP_FAILED ? current_site(MT_DOMAIN_MMAP) : was;
		if (s)
			mt__mmap_add(p != MAP_FAILED ? p : old,
				     page_round(p != MAP_FAILED ? new_len : old_len), s);
	}
	errno = saved;
	LEAVE();
	return p;
}

/* ---- signals: memtrace's snapshot signal stays the program's (trigger.c) */

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	ENSURE_RESOLVED();
	return mt__sigaction(sig, act, old, mt__real.sigaction);
}

static sighandler_t via_sigaction(int sig, sighandler_t h, int flags, bool mask_self)
{
	struct sigaction act, old;
	memset(&act, 0, sizeof(act));
	act.sa_handler = h;
	act.sa_flags = flags;
	sigemptyset(&act.sa_mask);
	if (mask_self)
		sigaddset(&act.sa_mask, sig);
	if (mt__sigaction(sig, &act, &old, mt__real.sigaction) != 0)
		return SIG_ERR;
	return old.sa_handler;
}

EXPORT sighandler_t signal(int sig, sighandler_t h)
{
	ENSURE_RESOLVED();
	if (!mt__trigger_holds(sig))
		return mt__real.signal(sig, h);
	return via_sigaction(sig, h, SA_RESTART, true); /* glibc's BSD semantics */
}

EXPORT sighandler_t bsd_signal(int sig, sighandler_t h)
{
	return signal(sig, h);
}

EXPORT sighandler_t sysv_signal(int sig, sighandler_t h)
{
	ENSURE_RESOLVED();
	if (!mt__trigger_holds(sig) || !mt__real.sysv_signal)
		return mt__real.sysv_signal ? mt__real.sysv_signal(sig, h) : SIG_ERR;
	return via_sigaction(sig, h, SA_RESETHAND | SA_NODEFER, false);
}

/* ---- changes of the process's ids: memtrace's thread steps aside ----
 * glibc runs a change of user or group ids on every thread of the process
 * (its SIGSETXID) and aborts the process if one thread fails, as memtrace's
 * does after the program gave capabilities to its own thread alone
 * (setpriv --reuid ... --init-groups did); unshare(CLONE_NEWUSER) and
 * setns into a user namespace refuse a process with a second thread.
 * Around each of these calls memtrace's thread, if there is one, ends and
 * starts again (trigger.c). initgroups is here because glibc's own call to
 * setgroups inside it passes no hook. The calls are hooks.h's MT_ID_CHANGES. */
#define X(name, params, args)                                                \
	EXPORT int name params                                               \
	{                                                                    \
		static int(*next) params;                                    \
		int(*fn) params = __atomic_load_n(&next, __ATOMIC_ACQUIRE);  \
		if (!fn) {                                                   \
			fn = (int(*) params)mt__next_sym(#name);                 \
			if (!fn) {                                           \
				errno = ENOSYS;                              \
				return -1;                                   \
			}                                                    \
			__atomic_store_n(&next, fn, __ATOMIC_RELEASE);       \
		}                                                            \
		bool parked = mt__trigger_park();                            \
		int ret = fn args, saved = errno;                            \
		mt__trigger_unpark(parked);                                  \
		errno = saved;                                               \
		return ret;                                                  \
	}
MT_ID_CHANGES(X)
#undef X

/* ---- process exit ---- */

EXPORT void _exit(int status)
{
	mt__scan_from = mt__frame_caller_sp((uintptr_t)__builtin_frame_address(0));
	mt__uexit_dump();
	ENSURE_RESOLVED();
	mt__real._exit(status);
	__builtin_unreachable();
}

EXPORT void _Exit(int status)
{
	mt__scan_from = mt__frame_caller_sp((uintptr_t)__builtin_frame_address(0));
	mt__uexit_dump();
	ENSURE_RESOLVED();
	mt__real._Exit(status);
	__builtin_unreachable();
}

/* ---- the public API (include/memtrace.h) ---- */

EXPORT int mt_snapshot(char *path, size_t pathlen)
{
	if (!tracking())
		return -ENOSYS;
	/* the caller's frames */
	mt__scan_from = mt__frame_caller_sp((uintptr_t)__builtin_frame_address(0));
	mt__tl_busy++;
	int r = mt__dump(MT_REASON_API, path, pathlen);
	mt__tl_busy--;
	return r;
}

EXPORT void mt_reset_peak(void)
{
	if (tracking())
		mt__reset_peak();
}
