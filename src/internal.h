/* SPDX-License-Identifier: MIT */
/*
 * internal.h - declarations shared between the files of libmemtrace.so,
 * grouped under the file that owns them. Nothing here is installed.
 *
 * Data flow: hook.c, pyalloc.c, cxx.c (entry points; hook.h; init.c their
 * start, fork and exit) -> unwind.c (stack) -> the table: sites.c
 * (callsites), heap.c (live blocks, per-thread counters; blocks.h the
 * index), mappings.c, table.c (totals, the dump's gather; table.h) ->
 * snapshot.c (dump file). options.c is read once
 * at start; ialloc.c is the private allocator every hook path uses; util.c has
 * the stdio-free helpers.
 */
#ifndef MT_INTERNAL_H
#define MT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "format.h"
#include "hooks.h"

#define MT_HIDDEN __attribute__((visibility("hidden")))
#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MT_CACHELINE 64
/* Hot-path helpers the compiler would otherwise call: a call's register
 * saves cost as much as their bodies. */
#define MT_ALWAYS_INLINE inline __attribute__((always_inline))
/* An invariant a comment states, checked where MT_DEBUG_ASSERTS is defined
 * (the unit tests' build: tests/meson.build); elsewhere, the library above
 * all, nothing: cond is not evaluated, and no check ever ends the host. */
#define MT_STR_(x) #x
#define MT_STR(x) MT_STR_(x)
#ifdef MT_DEBUG_ASSERTS
#define MT_ASSERT(cond) \
	(MT_LIKELY(cond) ? (void)0 : mt__assert_fail(__FILE__ ":" MT_STR(__LINE__) ": " #cond))
#else
#define MT_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

/* ---- options.c ---- */
typedef struct mt_options {
	char dir[4096];	   /* MEMTRACE_DIR: absolute snapshot directory */
	int depth;	   /* MEMTRACE_DEPTH: frames captured per callsite */
	bool at_exit;	   /* MEMTRACE_AT_EXIT: dump when the process exits */
	bool verbose;	   /* MEMTRACE_VERBOSE: print the active options */
	int signal;	   /* MEMTRACE_SIGNAL: dump on this signal, 0 for none */
	long interval_ms;  /* MEMTRACE_INTERVAL: periodic dumps, 0 for none */
	int arena_max;	   /* MEMTRACE_ARENA_MAX: cap the allocator's arenas, 0: leave */
	int allocator;	   /* MEMTRACE_ALLOCATOR: MT_ALLOC_SYSTEM or MT_ALLOC_JEMALLOC */
	long sample_bytes; /* MEMTRACE_SAMPLE: mean bytes between samples, 0: exact */
	long sample_seed;  /* MEMTRACE_SAMPLE_SEED: 0 for a random seed */
	long fail_after;   /* MEMTRACE_FAIL_AFTER (testing): own mmaps fail after N */
	bool python;	   /* MEMTRACE_PYTHON: record CPython's frames */
	bool python_domains; /* MEMTRACE_PYTHON_PYMALLOC: see pymalloc's blocks */
	long python_skew;  /* MEMTRACE_PYTHON_SKEW (testing): a wrong layout */
	int leak_scan;	   /* MEMTRACE_LEAK_SCAN: 1 at the end, 2 in every snapshot, 0 never */
	long leak_scan_timeout; /* MEMTRACE_LEAK_SCAN_TIMEOUT: seconds the scan may take */
	long only_pid;	   /* MEMTRACE_ONLY_PID: profile this process only, 0: all */
} mt_options_t;

enum { MT_ALLOC_SYSTEM = 0, MT_ALLOC_JEMALLOC = 1 };

extern mt_options_t mt__opt MT_HIDDEN;
/* Reads MEMTRACE_* once; bad values warn once each and keep the default. */
MT_HIDDEN void mt__options_init(void);

/* ---- ialloc.c: the private allocator (mmap-backed, never the hooked one) */
MT_HIDDEN void *mt__ialloc(size_t size);
MT_HIDDEN void mt__ifree(void *p, size_t size);
/* Zeroed memory that is never freed, packed with no size-class rounding. */
MT_HIDDEN void *mt__ialloc_keep(size_t size);
/* Raw anonymous mapping; NULL on failure. */
MT_HIDDEN void *mt__map(size_t size);
MT_HIDDEN void mt__unmap(void *p, size_t size);
MT_HIDDEN void mt__ialloc_lock(void);
MT_HIDDEN void mt__ialloc_unlock(void);
/* memtrace's own mappings, for the leak scan: all of mt__map's, and any
 * other added here */
MT_HIDDEN void mt__own_add(void *p, size_t len);
MT_HIDDEN void mt__own_remove(void *p);
MT_HIDDEN bool mt__own_foreach(void (*fn)(uintptr_t lo, uintptr_t len, void *arg), void *arg);
MT_HIDDEN void mt__own_lock(void);
MT_HIDDEN void mt__own_unlock(void);

/* ---- leakscan.c: the reachability scan of a final snapshot ---- */
/* A live block as the scan sees it, 16 bytes: its address, and size << 28
 * | Python object << 27 | scan state << 24 | site id. */
typedef struct mt_scan_block {
	uintptr_t lo;
	uint64_t meta;
} mt_scan_block_t;
#define MT_SCAN_PYOBJ (1ull << 27) /* from the interpreter's object domain */
#define MT_SCAN_SIZE_SHIFT 28
#define MT_SCAN_SIZE_MAX ((1ull << (64 - MT_SCAN_SIZE_SHIFT)) - 1)
typedef struct mt_leak_info {
	int status; /* MT_SCAN_*, 0: no scan for this dump */
	uint32_t threads, no_sp;
	uint64_t ns, blocks, root_bytes;
	char note[160];
} mt_leak_info_t;
/* Scans (a child process does it; the tables' locks are taken for the
 * clone only). Then mt__leak_scan_info and mt__leak_site tell, until
 * mt__leak_scan_done. */
MT_HIDDEN void mt__leak_scan(void);
/* Where the dumping thread's stack is read from (its frames above
 * memtrace's), set by the exit paths; 0: from the scan's own frame. */
extern uintptr_t mt__scan_from MT_HIDDEN;
/* Whether this is memtrace's dump thread (trigger.c). */
MT_HIDDEN bool mt__in_dump_thread(void);
MT_HIDDEN void mt__leak_scan_info(mt_leak_info_t *i);
/* A site's 2 * MT_LEAK_NCLASS figures (bytes, blocks per class), NULL
 * when it has none. */
MT_HIDDEN const uint64_t *mt__leak_site(uint32_t id);
MT_HIDDEN void mt__leak_scan_done(void);
/* sites.c and heap.c, for the scan's child (one thread; the parent held
 * the locks); the count also for the parent, as a moment's figure */
MT_HIDDEN uint32_t mt__site_id_end(void);
MT_HIDDEN size_t mt__heap_count_unlocked(void);
MT_HIDDEN size_t mt__heap_copy_unlocked(mt_scan_block_t *out, size_t cap);
/* Addresses on the stacks of live threads (the count returned) and of
 * exited ones (*ndead). */
MT_HIDDEN size_t mt__stack_marks(uintptr_t *live, size_t live_cap, uintptr_t *dead,
				 size_t dead_cap, size_t *ndead);

/* ld.so's: the stack pointer at process entry, the top of the main
 * thread's stack (glibc's own pthread_getattr_np reads it). */
extern void *__libc_stack_end;

/* ---- util.c: stdio-free helpers, safe on hook paths ---- */
/* Writes all of buf, retrying EINTR and short writes; 0 or -errno. */
MT_HIDDEN int mt__write_all(int fd, const void *buf, size_t len);
#ifdef MT_DEBUG_ASSERTS
/* MT_ASSERT's failure: says which, then stops the (test) program. */
static inline __attribute__((noreturn, cold)) void mt__assert_fail(const char *what)
{
	static const char a[] = "memtrace: assertion failed: ";
	size_t n = 0;
	while (what[n])
		n++;
	(void)mt__write_all(2, a, sizeof(a) - 1);
	(void)mt__write_all(2, what, n);
	(void)mt__write_all(2, "\n", 1);
	__builtin_trap();
}
#endif
/* Formats a warning line "memtrace: ..." onto stderr with write(2). Supports
 * %s, %d, %u, %lu, %llu, %x, %%; nothing else. */
MT_HIDDEN void mt__warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
MT_HIDDEN size_t mt__vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
MT_HIDDEN size_t mt__fmt(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
MT_HIDDEN uint64_t mt__now_ns(int clock);
/* Reads a small file (/proc) into buf, NUL-terminated; its length, 0 on
 * failure. */
MT_HIDDEN size_t mt__read_file(const char *path, char *buf, size_t cap);
/* Calls fn(fd, name, arg) for each entry of the open directory fd, by raw
 * getdents64 (no opendir: no malloc), until fn returns false or the
 * directory ends (or cannot be read). */
MT_HIDDEN void mt__dir_each(int fd, bool (*fn)(int fd, const char *name, void *arg), void *arg);
/* The executable range of the loaded object holding addr; at start only
 * (dladdr and dl_iterate_phdr take the loader's lock). */
MT_HIDDEN bool mt__module_text(const void *addr, uintptr_t *lo, uintptr_t *hi);
/* Whether one of a loaded object's segments (a dl_iterate_phdr entry)
 * holds addr. */
struct dl_phdr_info;
MT_HIDDEN bool mt__phdr_holds(const struct dl_phdr_info *info, uintptr_t addr);

/* ---- unwind.c ---- */
/* Captures up to max return addresses of the caller of the hook, memtrace's
 * own frames removed; with MT_UNWIND_EVALS(k) or'ed into max, up to and
 * with the k-th one in the range mt__unwind_eval set (the eval loop). Takes
 * no memtrace lock. Returns the count. hint is
 * where the hook's own return address probably sits (0 if unknown); it is
 * checked, and the walk looks for the first one outside memtrace itself
 * when it is not one. With tag
 * not NULL, *tag is set to NULL or to a word of this thread's that stays
 * attached to exactly this stack (the same return addresses at the same
 * stack slots): the caller may store a pointer there (the callsite), and
 * finds it again the next time this stack is taken, in which case frames is
 * left unfilled. The word is valid until the thread's next call. */
MT_HIDDEN int mt__unwind(uintptr_t *frames, int max, uintptr_t hint, void ***tag);
#define MT_UNWIND_EVALS(k) ((k) << 8) /* k at most 255; max at most 255 */
/* The eval loop's return addresses, (lo, hi]: set once, before the first
 * walk that ends there. */
MT_HIDDEN void mt__unwind_eval(uintptr_t lo, uintptr_t hi);
MT_HIDDEN void mt__unwind_init(void);
/* Stacks taken by the frame-size cache (about), and how many of its
 * periodic checks against libunwind disagreed. */
MT_HIDDEN void mt__unwind_stats(uint64_t *fast, uint64_t *mismatched);

/* ---- sites.c: callsites ---- */
typedef struct mt_site mt_site_t;

/* The callsite for this stack in this domain, created on first sight. NULL
 * when the tables are out of memory (the allocation goes untracked). */
MT_HIDDEN mt_site_t *mt__site_get(const uintptr_t *frames, int n, int domain);
/* Calls fn for every callsite; counters are read without stopping writers. */
MT_HIDDEN void mt__sites_foreach(void (*fn)(const mt_site_t *, void *), void *arg);
/* A callsite's frames (they never change once made). */
MT_HIDDEN const uintptr_t *mt__site_frames(const mt_site_t *s, int *n);

/* ---- heap.c: live heap blocks and their counting ---- */
/* Heap: record a new live block, forget a freed one (returns false when
 * memtrace never saw the pointer). */
MT_HIDDEN bool mt__heap_add(void *p, size_t size, mt_site_t *site, int owner);
/* Which allocator a detached entry's block belongs to (MT_OWNER_*). */
MT_HIDDEN int mt__meta_owner(uint64_t meta);
/* The size a detached or looked-up entry's block was asked with. */
MT_HIDDEN uint64_t mt__meta_size(uint64_t meta);
MT_HIDDEN bool mt__heap_remove(void *p);
/* A freed block forgotten in one call (detach and release): its owner
 * (MT_OWNER_*), or -1 when memtrace never saw the pointer. _own: only a
 * block of that owner; one another allocator owns stays tracked (its
 * owner is returned). */
MT_HIDDEN int mt__heap_forget(void *p);
MT_HIDDEN int mt__heap_forget_own(void *p, int owner);
/* realloc's three steps: take the entry out (0: unknown pointer), then
 * either release its counters (the block is gone) or put it back. */
MT_HIDDEN uint64_t mt__heap_detach(void *p);
MT_HIDDEN void mt__heap_release(uint64_t meta);
MT_HIDDEN void mt__heap_reattach(void *p, uint64_t meta);
/* In sampling mode: false when p is surely not a recorded block (a
 * counting filter read without a lock); true when it may be. Inline: every
 * free of an unsampled block asks. */
#define MT_FILTER_BITS 16
extern uint8_t mt__filter[1u << MT_FILTER_BITS] MT_HIDDEN;
/* The 16-byte granule within 1 MiB: neighbouring blocks share filter
 * lines (a hash scattered them: a cache miss per free), and a collision
 * only costs a table lookup. */
static inline size_t mt__filter_slot(const void *p)
{
	return (size_t)((uintptr_t)p >> 4) & ((1u << MT_FILTER_BITS) - 1);
}
static inline bool mt__maybe_recorded(const void *p)
{
	return __atomic_load_n(&mt__filter[mt__filter_slot(p)], __ATOMIC_RELAXED) != 0;
}
/* Marks p "maybe recorded" for good (a saturated counter): the bootstrap
 * pool's blocks, which free() must never hand to the system. */
MT_HIDDEN void mt__filter_pin(const void *p);
/* The entry of a live block, left in place; false when not tracked. */
MT_HIDDEN bool mt__heap_lookup(void *p, uint64_t *meta);
/* Calls fn for every live block marked MT_OWNER_PYOBJ (with the GIL held,
 * none of them can go meanwhile), no table lock held during the call. */
MT_HIDDEN void mt__heap_foreach_pyobj(void (*fn)(uintptr_t p, uint64_t size, uint32_t site,
						 void *arg),
				      void *arg);
/* The callsite an entry was recorded at (NULL if unknown). */
MT_HIDDEN mt_site_t *mt__meta_site(uint64_t meta);

/* ---- mappings.c: anonymous mappings ---- */
/* Add a region, remove any tracked bytes in a range. */
MT_HIDDEN void mt__mmap_add(void *p, size_t len, mt_site_t *site);
MT_HIDDEN void mt__mmap_remove(void *p, size_t len);
/* As mt__mmap_remove; returns the site that held the first bytes removed. */
MT_HIDDEN mt_site_t *mt__mmap_detach(void *p, size_t len);

/* ---- table.c: totals, reading, the dump's gather, fork ---- */
MT_HIDDEN bool mt__table_init(void);
MT_HIDDEN void mt__count_untracked(void);
MT_HIDDEN void mt__totals_get(mt_totals_t *t);
MT_HIDDEN void mt__reset_peak(void);
MT_HIDDEN void mt__site_read(const mt_site_t *s, uint32_t *id, int *domain, int *nframes,
			     const uintptr_t **frames, uint64_t counters[MT_SITE_NCOUNTERS]);
/* Fork: take every table lock in order, release in parent, reset in child. */
MT_HIDDEN void mt__table_lock_all(void);
MT_HIDDEN void mt__table_unlock_all(void);
MT_HIDDEN void mt__table_atfork_child(void);
/* Gathers every thread's pending heap counts for the callsites' readers:
 * a dump calls it first (under its lock), so what it writes is exact. */
MT_HIDDEN void mt__table_gather(void);
/* The dump has read every site: threads may move their figures again. */
MT_HIDDEN void mt__table_gather_end(void);

/* ---- snapshot.c ---- */
/* Writes the next snapshot; 0 or -errno. path (may be NULL) gets its name. */
MT_HIDDEN int mt__dump(int reason, char *path, size_t pathlen);
MT_HIDDEN void mt__snapshot_init(void);
/* Removes temp files left by killed processes in the snapshot directory:
 * the dump thread, once per process, after its first snapshot. */
MT_HIDDEN void mt__snapshot_sweep_once(void);
/* The process is exiting: waits for a dump under way, refuses new signal
 * and timer dumps (the at-exit one still goes). */
MT_HIDDEN void mt__snapshot_exiting(void);
MT_HIDDEN void mt__snapshot_atfork_child(void);

/* ---- arena.c: the allocators behind the hooks, and their figures ---- */
/* A malloc family. The system one is the next in the chain (RTLD_NEXT);
 * jemalloc is dlopen'ed privately, so it serves only what memtrace routes
 * to it: tracked allocations, whose owner the live-block table records. */
typedef struct mt_backend {
#define X(name, ret, params, need) ret(*name) params;
	MT_HOOKS_MALLOC(X)
#undef X
} mt_backend_t;

enum { MT_OWNER_SYSTEM = 0, MT_OWNER_JEMALLOC = 1 };
/* Or'ed into mt__heap_add's owner: the block is a Python object (the OBJ
 * domain), freed only with the GIL held. */
#define MT_OWNER_PYOBJ 2

/* Caps the system allocator's arenas (MEMTRACE_ARENA_MAX); at init, before
 * the program's threads exist. */
MT_HIDDEN void mt__arena_tune(void);
/* Loads jemalloc as the backend for tracked allocations; NULL on failure
 * (one warning: the system allocator stays). */
MT_HIDDEN const mt_backend_t *mt__jemalloc_load(void);
/* Finds which allocator serves the program's malloc (MT_ALLOCATORS) and
 * whether the arena cap took; in the constructor, else at the first dump. */
MT_HIDDEN void mt__allocator_detect(void);
/* Whether two addresses lie in one loaded object (util.c; dl_iterate_phdr:
 * not on a hook path). */
MT_HIDDEN bool mt__same_object(const void *a, const void *b);
/* The allocator's own figures, gathered on the dump thread. */
MT_HIDDEN void mt__alloc_stats(mt_alloc_stats_t *st);

/* ---- procstat.c: the process's figures from /proc ---- */
/* Adds the process's size and resident set, their peaks and its anonymous
 * mappings to st (glibc_heads: count glibc's arena heaps among them, into
 * st->arenas); on the dump thread. */
MT_HIDDEN void mt__proc_stats(mt_alloc_stats_t *st, bool glibc_heads);

/* ---- sample.c: Poisson sampling by bytes ---- */
extern uint64_t mt__sample_mean MT_HIDDEN; /* 0: exact mode */
MT_HIDDEN void mt__sample_init(void);
/* Whether this thread's next allocation of size bytes is sampled: one
 * subtraction inline, the draw out of line. The bytes left to the next
 * sample point are never negative (0 before a thread's first draw), and are
 * compared unsigned, so that no size, however absurd, overflows them. */
extern __thread int64_t mt__tl_sample_left MT_HIDDEN __attribute__((tls_model("initial-exec")));
MT_HIDDEN bool mt__sample_slow(size_t size);
/* ln x (x > 0) and e^x - 1, to a few units in the last place: libm's own,
 * without loading libm into every process. */
MT_HIDDEN double mt__log(double x);
MT_HIDDEN double mt__expm1(double x);
static inline bool mt__sample_next(size_t size)
{
	int64_t left = mt__tl_sample_left;
	if (MT_LIKELY((uint64_t)left > size)) {
		mt__tl_sample_left = left - (int64_t)size;
		return false;
	}
	return mt__sample_slow(size);
}
/* A recorded block's weight: estimated bytes (size/p) and blocks (1/p);
 * size and 1 in exact mode. */
MT_HIDDEN void mt__sample_weight_slow(uint64_t size, uint64_t *wbytes, uint64_t *wcount);
static inline void mt__sample_weight(uint64_t size, uint64_t *wbytes, uint64_t *wcount)
{
	if (MT_LIKELY(!mt__sample_mean)) {
		*wbytes = size;
		*wcount = 1;
		return;
	}
	mt__sample_weight_slow(size, wbytes, wcount);
}

/* ---- got.c: a loaded object's GOT slots ---- */
typedef void (*mt_got_fn)(void **at, const char *name, bool relro, void *arg);
/* Every GOT slot (JUMP_SLOT or GLOB_DAT) of one loaded object, with the
 * symbol it is bound to and whether RELRO made it read-only. */
MT_HIDDEN void mt__got_each(const struct dl_phdr_info *info, mt_got_fn fn, void *arg);
/* Writes a slot (made writable for the moment when relro). */
MT_HIDDEN void mt__got_put(void **at, void *v, bool relro);
/* An address a dynamic section gives: absolute once the loader adjusted
 * it, else relative to the object's base. */
MT_HIDDEN uintptr_t mt__dyn_ptr(uintptr_t base, uintptr_t v);
/* Whether one of a loaded object's DT_NEEDED names contains part. */
MT_HIDDEN bool mt__dyn_needs(const struct dl_phdr_info *info, const char *part);

/* ---- attach.c: loaded into a running process (memtrace attach) ---- */
extern int mt__attached MT_HIDDEN; /* the GOT hooks are in place */
MT_HIDDEN void mt__attach_patch(void);
/* The program's own definition of a function (its global scope's, past a
 * non-PIE executable's PLT entry). */
MT_HIDDEN void *mt__attach_sym(const char *name);
/* init.c: whether memtrace is in the global scope (preloaded or linked);
 * its start and end when attached. */
MT_HIDDEN bool mt__preloaded(void);
MT_HIDDEN bool mt__attach_start(void);
MT_HIDDEN void mt__attach_stop(void);
extern uint64_t mt__attach_wall_ns MT_HIDDEN; /* 0: tracked from the start */
/* options.c: the options as "NAME=value" lines, read in place of the
 * environment (the attach's; the string must stay). */
MT_HIDDEN void mt__options_source(const char *lines);

/* ---- trigger.c: snapshots on signal and on a timer ---- */
/* Installs the signal handler (unless the program has its own); starts the
 * dump thread only for MEMTRACE_INTERVAL, else at the first signal. Called
 * once tracking is ready. */
MT_HIDDEN void mt__trigger_init(void);
/* Gives back the signals memtrace holds (the attach's end). */
MT_HIDDEN void mt__trigger_release(void);
/* In a forked child: a fresh wake-up pipe now, the thread on first need. */
MT_HIDDEN void mt__trigger_atfork_child(void);
/* Starts the dump thread that a signal (or a fork under a timer) asked for
 * but could not start where it arrived; from a tracked allocation. */
MT_HIDDEN void mt__trigger_start(void);
/* around a change of the process's ids or user namespace (hook.c): memtrace's
 * thread ends before, and starts again after if needed */
MT_HIDDEN bool mt__trigger_park(void);
MT_HIDDEN void mt__trigger_unpark(bool parked);
extern int mt__trigger_start_needed MT_HIDDEN;
/* Whether memtrace's handler is in place for sig (the snapshot signal, or a
 * terminating one the program leaves at its default). */
MT_HIDDEN bool mt__trigger_holds(int sig);
/* The program's sigaction, with memtrace's signal handled as the program
 * would see it without memtrace. */
MT_HIDDEN int mt__sigaction(int sig, const struct sigaction *act, struct sigaction *old,
			    int (*real)(int, const struct sigaction *, struct sigaction *));

/* ---- python.c: CPython's frames ---- */
enum { MT_PY_OFF, MT_PY_WAIT, MT_PY_PENDING, MT_PY_ON };
/* OFF: not Python, or not a layout memtrace trusts; WAIT: the interpreter
 * is not initialised yet; PENDING: the check is queued; ON: frames. */
extern int mt__py_state MT_HIDDEN;
/* At start (the constructor): finds the interpreter and its layout. */
MT_HIDDEN void mt__python_init(void);
/* From a recorded allocation while WAIT: queues the check once the
 * interpreter is initialised. */
MT_HIDDEN void mt__py_poll(void);
/* The calling thread's Python frames, innermost first, as MT_FRAME_PY
 * words; at most max; 0 outside Python code. */
MT_HIDDEN int mt__py_frames(uint64_t *out, int max);
/* This thread's cache of Python callsites (hook.c): a fresh token (odd) to
 * stand for a native stack, 0 without a cache; the callsite kept for a
 * token and a hash of Python frames (NULL: none; the caller verifies). */
MT_HIDDEN uintptr_t mt__py_token(void);
MT_HIDDEN void *mt__py_site_find(uintptr_t token, uint64_t hash);
MT_HIDDEN void mt__py_site_keep(uintptr_t token, uint64_t hash, void *site);
typedef struct mt_pycode {
	int32_t first;
	int kind;
	const char *file, *name;
	const unsigned char *table;
	uint32_t flen, nlen, tlen;
} mt_pycode_t;
/* For the snapshot: the interpreter's version and eval-loop range; the
 * code table (ids below the count; entries never change once made). */
MT_HIDDEN void mt__py_describe(uint32_t *version, uint64_t *lo, uint64_t *hi);
MT_HIDDEN uint32_t mt__py_code_count(void);
MT_HIDDEN bool mt__py_code_get(uint32_t id, mt_pycode_t *out);
/* The dump's census of live Python objects by callsite and type, taken by
 * the main thread in a pending call (GIL held) while the dump waits. */
enum { MT_CENSUS_NONE = 0, MT_CENSUS_DONE = 1, MT_CENSUS_LATE = 2 };
MT_HIDDEN int mt__py_census(void);
MT_HIDDEN uint64_t mt__py_census_hold_ns(void);
/* Whether the last census ran out of memory and left objects out. */
MT_HIDDEN bool mt__py_census_partial(void);
/* The census's entries one by one (*at from 0); false at the end. */
MT_HIDDEN bool mt__py_census_next(size_t *at, uint32_t *site, const char **name,
				  uint64_t *count, uint64_t *bytes);
MT_HIDDEN void mt__py_lock(void);
MT_HIDDEN void mt__py_unlock(void);
MT_HIDDEN void mt__py_atfork_child(void);

/* ---- pyalloc.c ---- */
/* CPython's PyMemAllocatorEx, the same layout 3.4 to 3.13. */
typedef struct mt_pyalloc {
	void *ctx;
	void *(*malloc)(void *, size_t);
	void *(*calloc)(void *, size_t, size_t);
	void *(*realloc)(void *, void *, size_t);
	void (*free)(void *, void *);
} mt_pyalloc_t;
/* The Python allocator domain d (1 MEM, 2 OBJ): where the interpreter's
 * own allocator is saved, and the wrapper that records and forwards to it. */
MT_HIDDEN mt_pyalloc_t *mt__py_domain_saved(int d);
MT_HIDDEN void mt__py_domain_ours(int d, mt_pyalloc_t *out);

/* ---- hook.c ---- */
/* Marks the calling thread as memtrace's own: nothing it allocates is
 * tracked. */
MT_HIDDEN void mt__thread_untracked(void);
/* Whether the calling thread is outside memtrace's hooks (and so outside
 * the allocator); async-signal-safe. */
MT_HIDDEN bool mt__thread_idle(void);
/* Sets the calling thread's hook depth, returning the old one: at 1,
 * nothing it allocates is tracked. */
MT_HIDDEN int mt__thread_busy_swap(int busy);

/* ---- init.c: start-up, fork and exit ---- */
/* The at-exit snapshot, once (atexit; in CPython its own atexit, before
 * the interpreter is finalised). */
MT_HIDDEN void mt__exit_dump(void);
/* Time tracking began (wall and monotonic, ns). */
extern uint64_t mt__start_wall_ns MT_HIDDEN, mt__start_mono_ns MT_HIDDEN;

#endif
