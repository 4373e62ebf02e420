/* SPDX-License-Identifier: MIT */
/*
 * arena.c - the allocators behind the hooks and their own figures.
 *
 *  - Arena tuning (MEMTRACE_ARENA_MAX): glibc's mallopt(M_ARENA_MAX) at init,
 *    before the program's threads exist; for jemalloc, "narenas" through the
 *    malloc_conf string jemalloc reads when it starts (the program's own
 *    MALLOC_CONF environment variable is read after it, and wins).
 *  - jemalloc as backing allocator (MEMTRACE_ALLOCATOR=jemalloc): Debian's
 *    libjemalloc.so.2 is dlopen'ed RTLD_LOCAL, so its malloc never becomes
 *    the program's by symbol lookup; memtrace routes tracked allocations to
 *    it and records the owner of each block in the live-block table. Blocks
 *    allocated before the switch, by memtrace's own nested calls or by anyone
 *    else are not in the table as jemalloc's, and go back to the system
 *    allocator. mallopt/malloc_trim/mallinfo2 still reach glibc: harmless.
 *  - Figures (on the dump thread, never in a signal handler): glibc's
 *    mallinfo2 (its arenas' heaps are counted in /proc/self/maps),
 *    jemalloc's stats after an "epoch" refresh, tcmalloc's and mimalloc's
 *    own; the process's figures from /proc are procstat.c's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))

/* jemalloc reads this when it starts; NULL (jemalloc's default) unless
 * memtrace loads jemalloc with an arena cap. */
EXPORT const char *malloc_conf;
static char conf_buf[64];

static mt_backend_t je;
static int je_dlopened; /* MEMTRACE_ALLOCATOR=jemalloc: loaded here, RTLD_LOCAL */
static int (*je_mallctl)(const char *, void *, size_t *, void *, size_t);
static int (*tc_property)(const char *, size_t *);
static int (*mi_info)(size_t *, size_t *, size_t *, size_t *, size_t *, size_t *, size_t *,
		      size_t *);
static int kind = -1; /* enum mt_allocator_id; -1: not looked for yet */
static int mallopt_done;
static int applied_arena_max;

static const char *const allocator_name[] = {
#define X(id, name, lib, pkg, probe, arenas, env) name,
	MT_ALLOCATORS(X)
#undef X
	"unknown",
};

void mt__arena_tune(void)
{
	if (mt__opt.arena_max <= 0)
		return;
	/* a jemalloc that starts after this (preloaded after libmemtrace.so,
	 * or linked by the program) reads the cap from malloc_conf at its
	 * first call, which comes after this one */
	mt__fmt(conf_buf, sizeof(conf_buf), "narenas:%d", mt__opt.arena_max);
	malloc_conf = conf_buf;
	if (mt__opt.allocator != MT_ALLOC_SYSTEM)
		return;
	/* glibc's, whoever serves malloc: whether it is the one that does
	 * is found later (mt__allocator_detect) */
	if (mallopt(M_ARENA_MAX, mt__opt.arena_max) == 1)
		mallopt_done = 1;
}

/*
 * Which allocator serves the program's malloc: the one whose figures the
 * snapshots carry and whose arenas a cap limits. The next malloc in the
 * chain is looked up and each known allocator's probe symbol with it: the
 * allocator is the one whose probe lives in the object malloc does. Runs
 * in the constructor (normal context: dladdr and dlsym take the loader's
 * lock, which this thread holds already there), else at the first dump.
 */
void mt__allocator_detect(void)
{
	static const char *const probe[] = {
#define X(id, name, lib, pkg, probe, arenas, env) probe,
		MT_ALLOCATORS(X)
#undef X
	};
	void *sym = NULL;
	if (kind >= 0)
		return;
	if (je_dlopened) {
		kind = MT_ALLOCATOR_JEMALLOC;
		return;
	}
	/* preloaded: the next in the chain; attached (dlopen'ed, not in the
	 * global scope): the program's own, in the global scope */
	bool pre = mt__preloaded();
	void *m = pre ? dlsym(RTLD_NEXT, "malloc") : mt__attach_sym("malloc");
	int k = MT_ALLOCATOR_UNKNOWN;
	for (int i = 0; m && i < MT_ALLOCATOR_UNKNOWN; i++) {
		void *s = pre ? dlsym(RTLD_NEXT, probe[i]) : mt__attach_sym(probe[i]);
		if (s && mt__same_object(s, m)) {
			k = i;
			sym = s;
			break;
		}
	}
	(void)dlerror(); /* the probes not found leave the program no error */
	if (k == MT_ALLOCATOR_JEMALLOC)
		je_mallctl = (__typeof__(je_mallctl))sym;
	else if (k == MT_ALLOCATOR_TCMALLOC)
		tc_property = (__typeof__(tc_property))sym;
	else if (k == MT_ALLOCATOR_MIMALLOC)
		mi_info = (__typeof__(mi_info))sym;
	int cap = mt__opt.arena_max;
	if (cap > 0 && mt__opt.allocator == MT_ALLOC_SYSTEM) {
		unsigned n = 0;
		size_t sz = sizeof(n);
		if (k == MT_ALLOCATOR_GLIBC && mallopt_done)
			applied_arena_max = cap;
		else if (k == MT_ALLOCATOR_GLIBC)
			mt__warn("mallopt(M_ARENA_MAX, %d) failed: the arena count is not capped",
				 cap);
		else if (k == MT_ALLOCATOR_JEMALLOC &&
			 je_mallctl("opt.narenas", &n, &sz, NULL, 0) == 0 && n == (unsigned)cap)
			applied_arena_max = cap;
		else if (k == MT_ALLOCATOR_JEMALLOC)
			mt__warn("jemalloc started before memtrace with %u arenas: "
				 "MEMTRACE_ARENA_MAX=%d cannot apply; set MALLOC_CONF=narenas:%d",
				 n, cap, cap);
		else if (k == MT_ALLOCATOR_UNKNOWN)
			mt__warn("MEMTRACE_ARENA_MAX=%d: the program's malloc is not an allocator "
				 "memtrace knows (glibc, jemalloc, tcmalloc, mimalloc); nothing is "
				 "capped",
				 cap);
		else
			mt__warn("MEMTRACE_ARENA_MAX=%d: %s has no arenas to cap; nothing is capped",
				 cap, allocator_name[k]);
	}
	__atomic_store_n(&kind, k, __ATOMIC_RELEASE);
}

/* jemalloc has no pvalloc: a page-aligned block of whole pages. */
static void *je_pvalloc(size_t size)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *p = NULL;
	if (size > SIZE_MAX - pg) {
		errno = ENOMEM;
		return NULL;
	}
	size = size ? (size + pg - 1) & ~(pg - 1) : pg;
	int r = je.posix_memalign(&p, pg, size);
	if (r) {
		errno = r;
		return NULL;
	}
	return p;
}

const mt_backend_t *mt__jemalloc_load(void)
{
	if (mt__opt.arena_max > 0) {
		mt__fmt(conf_buf, sizeof(conf_buf), "narenas:%d", mt__opt.arena_max);
		malloc_conf = conf_buf;
	}
	/* already in the process (preloaded after memtrace, or linked by the
	 * program), else loaded here: that needs static TLS room, which
	 * `memtrace run --allocator jemalloc` provides through GLIBC_TUNABLES */
	void *h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	bool preloaded = h != NULL;
	if (!h)
		h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		mt__warn("MEMTRACE_ALLOCATOR=jemalloc: cannot load libjemalloc.so.2 (%s); the "
			 "system "
			 "allocator stays. Run the program with 'memtrace run --allocator "
			 "jemalloc', or "
			 "set GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384",
			 why ? why : "unknown error");
		malloc_conf = NULL;
		return NULL;
	}
#define SYM(f) (je.f = (__typeof__(je.f))dlsym(h, #f))
	if (!SYM(malloc) || !SYM(free) || !SYM(calloc) || !SYM(realloc) || !SYM(posix_memalign) ||
	    !SYM(aligned_alloc) || !SYM(memalign) || !SYM(valloc) || !SYM(malloc_usable_size)) {
		mt__warn("MEMTRACE_ALLOCATOR=jemalloc: libjemalloc.so.2 lacks the malloc family; "
			 "the "
			 "system allocator stays");
		malloc_conf = NULL;
		return NULL;
	}
#undef SYM
	je.pvalloc = je_pvalloc;
	je_dlopened = 1;
	je_mallctl = (int (*)(const char *, void *, size_t *, void *, size_t))dlsym(h, "mallctl");
	if (mt__opt.arena_max > 0) {
		unsigned n = 0;
		size_t sz = sizeof(n);
		if (preloaded && je_mallctl && je_mallctl("opt.narenas", &n, &sz, NULL, 0) == 0 &&
		    n != (unsigned)mt__opt.arena_max)
			mt__warn("jemalloc started before memtrace with %u arenas: "
				 "MEMTRACE_ARENA_MAX=%d "
				 "cannot apply; set MALLOC_CONF=narenas:%d",
				 n, mt__opt.arena_max, mt__opt.arena_max);
		else
			applied_arena_max = mt__opt.arena_max;
	}
	return &je;
}

/* mallinfo2 sums every arena and allocates nothing. The arenas are the
 * main one and one per first heap in the maps (procstat.c): no malloc_info,
 * whose FILE (fmemopen) was a malloc on the dump thread, and a thread's
 * first malloc makes glibc give it an arena of its own: memtrace's would
 * have counted as the program's. */
static void glibc_stats(mt_alloc_stats_t *st)
{
	struct mallinfo2 mi = mallinfo2();
	st->held = mi.arena + mi.hblkhd;
	st->in_use = mi.uordblks + mi.hblkhd;
	st->arenas = 1;
}

static void jemalloc_stats(mt_alloc_stats_t *st)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch), v;
	unsigned narenas;
	if (!je_mallctl)
		return;
	je_mallctl("epoch", &epoch, &sz, &epoch, sz);
	sz = sizeof(v);
	if (je_mallctl("stats.mapped", &v, &sz, NULL, 0) == 0)
		st->held = v;
	sz = sizeof(v);
	if (je_mallctl("stats.allocated", &v, &sz, NULL, 0) == 0)
		st->in_use = v;
	sz = sizeof(v);
	if (je_mallctl("stats.resident", &v, &sz, NULL, 0) == 0)
		st->resident = v;
	sz = sizeof(narenas);
	if (je_mallctl("opt.narenas", &narenas, &sz, NULL, 0) == 0)
		st->arenas = narenas; /* the automatic ones; not the huge-block arena */
}

/* gperftools' MallocExtension properties: held is what its page heap has
 * from the system less what it gave back (unmapped). */
static void tcmalloc_stats(mt_alloc_stats_t *st)
{
	size_t heap = 0, unmapped = 0, used = 0;
	if (!tc_property)
		return;
	if (tc_property("generic.current_allocated_bytes", &used))
		st->in_use = used;
	if (tc_property("generic.heap_size", &heap)) {
		(void)tc_property("tcmalloc.pageheap_unmapped_bytes", &unmapped);
		st->held = heap > unmapped ? heap - unmapped : 0;
	}
}

/* mimalloc says what it has committed from the system; a release build
 * keeps no count of allocated bytes, so in_use stays unknown (0). */
static void mimalloc_stats(mt_alloc_stats_t *st)
{
	size_t elapsed, user, sys, rss, peak_rss, commit = 0, peak_commit, faults;
	if (!mi_info)
		return;
	mi_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
	st->held = commit;
}

void mt__alloc_stats(mt_alloc_stats_t *st)
{
	memset(st, 0, sizeof(*st));
	mt__allocator_detect();
	int k = __atomic_load_n(&kind, __ATOMIC_ACQUIRE);
	mt__fmt(st->name, sizeof(st->name), "%s", allocator_name[k]);
	if (k == MT_ALLOCATOR_GLIBC)
		glibc_stats(st);
	else if (k == MT_ALLOCATOR_JEMALLOC)
		jemalloc_stats(st);
	else if (k == MT_ALLOCATOR_TCMALLOC)
		tcmalloc_stats(st);
	else if (k == MT_ALLOCATOR_MIMALLOC)
		mimalloc_stats(st);
	st->arena_max = (uint64_t)applied_arena_max;
	mt__proc_stats(st, k == MT_ALLOCATOR_GLIBC);
}
