/* SPDX-License-Identifier: MIT */
/*
 * unwind.c - stack capture for every tracked allocation. libunwind (local
 * only) is the unwinder; in front of it sits a cache of frame sizes that
 * makes a repeated stack cost a few loads per frame instead of a DWARF
 * unwind.
 *
 * On x86-64 a return address RA_k lives at slot_k on the stack, and the next
 * one out at slot_k + d, where d is the size of the caller's frame at that
 * call site. For a function whose CFA is SP-relative at the call (no alloca,
 * no dynamic realignment), d is a property of RA_k alone. Every libunwind
 * walk records d per return address in a global table; an address seen with
 * two different d is marked variable, one whose frame is the outermost is
 * marked terminal. The fast walk starts at the exact slot of the first
 * return address outside memtrace (the hook records its own frame address;
 * memtrace is built with frame pointers), reads RA_k, looks up d, and steps;
 * it gives up to libunwind at any address not known or marked variable, or
 * when a slot would leave this thread's stack. In front of the table, a
 * per-thread memo of recent stacks (by slot and address) recognises a
 * repeated stack by reading its return addresses in place, and keeps its
 * callsite; stacks that share their first frame (every allocation through
 * operator new, or one wrapper) go on to a second memo, keyed by what their
 * stack holds at the first one's slots. Every 64th fast walk of a thread
 * (up to every 4,096th while its stacks are old and keep agreeing: see
 * CHECK_EVERY) is checked against libunwind's unw_backtrace of the same
 * stack: a difference marks the addresses involved variable (voiding every
 * memo entry) and is counted, so a stack is never silently mis-captured
 * twice.
 *
 * Code with no unwind information (JIT-compiled code, V8's builtins and
 * interpreter) defeats libunwind: it guesses a frame chain and validates
 * every word it reads with a syscall, tens of microseconds a stack, and its
 * guesses there are often wrong. The slow walk asks libunwind only whether
 * a function has unwind information; where it has none, the walk follows
 * rbp as a frame pointer itself (V8 keeps one) and hands the first frame
 * with unwind information back to libunwind. The table learns such return
 * addresses as frame-pointer steps, and learns for every other one what
 * becomes of rbp across its frame, so the fast walk knows rbp wherever a
 * frame-pointer step needs it (that a stack took one keeps it out of the
 * memo, whose slots follow from return addresses alone). A JIT frame whose
 * rbp is no frame pointer ends the stack there.
 *
 * A walk asked to end at the eval loop (MT_UNWIND_EVALS(k), or'ed into its
 * depth: a Python allocation whose Python frames are k runs of the eval
 * loop) ends at the k-th return address in the range python.c set with
 * mt__unwind_eval, the frame of the outermost run: the frames beyond it are
 * the interpreter's start-up, which no view shows and every such allocation
 * would pay to walk. The memo keeps such stacks apart from whole ones (an
 * entry holds the limit it was walked with).
 *
 * Frames of libmemtrace.so itself are dropped: frame 0 is always the code
 * that called malloc. No memtrace lock is taken: libunwind may take the
 * loader lock and allocate, and those allocations come back through the
 * hooks untracked (hook.c's per-thread guard).
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"
#include "arch.h"

/* libmemtrace.so's executable range, found once at start. */
static uintptr_t self_lo, self_hi;

/* return address -> how to find the next frame out; 2^16 entries,
 * insert-only.
 *
 * An entry's info is one word, written and read whole: the low half is the
 * step to the next return address's slot, d (slot + d), FS_FP (the frame
 * pointer's: the caller keeps rbp as its frame base, so the next slot is
 * rbp + 8 and the next rbp the word at rbp), FS_TERMINAL or FS_VARIABLE;
 * the high half (RB_*) says what becomes of rbp across the caller's frame,
 * so that a frame-pointer step further out knows it: unchanged, saved at a
 * fixed offset below the caller's CFA, or lost. FP_OK records that the
 * walk that taught the entry saw the frame-pointer relation hold; a second
 * walk seeing another d then makes the entry FS_FP instead of variable.
 * This is what JIT code and V8's builtins need, which have no unwind
 * information but keep frame pointers, and frames of variable size (V8's
 * interpreter frames, alloca) in code built with frame pointers. */
#define FS_BITS 16
#define FS_CAP (1u << FS_BITS)
#define FS_VARIABLE UINT32_MAX
#define FS_TERMINAL (UINT32_MAX - 1)
#define FS_FP (UINT32_MAX - 2)
#define FS_MAX_FRAME (1u << 20) /* a larger frame is treated as variable */

#define RB_LOST 0u  /* rbp's value further out is not known */
#define RB_SAME 1u  /* the caller leaves rbp as it found it */
#define RB_SAVED 2u /* saved at CFA - 8 * (rule >> RB_SHIFT) */
#define RB_KIND 3u
#define RB_FP_OK 4u
#define RB_SHIFT 8

struct fsize {
	uintptr_t ra;
	uint64_t info; /* size | rule << 32; 0 while being filled */
};
static struct fsize *fs_table;
static uint32_t fs_gen; /* bumped whenever a known frame size turns out wrong */

/* The periodic check: every CHECK_EVERY-th fast walk of a thread, and
 * less often while nothing is new to it. After CHECK_CALM checks in a row
 * that agreed the thread's interval doubles, up to CHECK_EVERY_MAX; a
 * stack new to the thread (a memo entry filled), a walk by libunwind (a
 * return address the table did not know) or a disagreement brings it back
 * to CHECK_EVERY. A program that repeats the stacks it has shown agree
 * stops paying for libunwind's walk and for the code it pulls into the
 * instruction cache (dict/str/tuple churn in Python 6 % of its time, C churn
 * 4 %); whatever a new stack brings is checked as often as before. */
#define CHECK_EVERY 64
#define CHECK_EVERY_MAX 4096
#define CHECK_CALM 32
/* a stack walked by frame pointers is checked this much less often (at
 * every 4,096th walk of a thread): the check is the slow walk, whose
 * libunwind part costs microseconds a stack */
#define FP_CHECK_EVERY 64

static __thread uintptr_t tl_stack_lo, tl_stack_hi __attribute__((tls_model("initial-exec")));
static __thread uint32_t tl_walks __attribute__((tls_model("initial-exec")));
/* the thread's check interval less one, beyond CHECK_EVERY's bits (0: every
 * CHECK_EVERY-th walk), and its agreeing checks since it last changed */
static __thread uint32_t tl_check_more __attribute__((tls_model("initial-exec")));
static __thread uint32_t tl_check_calm __attribute__((tls_model("initial-exec")));

/* The walks of this thread between two checks, less one (a mask of
 * tl_walks' low bits). */
static inline uint32_t check_mask(void)
{
	return (CHECK_EVERY - 1) | tl_check_more;
}

/* Something new to this thread: its next checks come at CHECK_EVERY again. */
static inline void check_soon(void)
{
	tl_check_more = 0;
	tl_check_calm = 0;
}

/* A check that agreed: after CHECK_CALM of them, half as many checks. */
static inline void check_calm(void)
{
	if (++tl_check_calm < CHECK_CALM || tl_check_more == CHECK_EVERY_MAX - CHECK_EVERY)
		return;
	tl_check_calm = 0;
	tl_check_more = (tl_check_more << 1) | CHECK_EVERY;
}

/* The eval loop's return addresses: (eval_lo, eval_lo + eval_len], set once
 * before any walk asks for them (0: none, no walk ends early). */
static uintptr_t eval_lo, eval_len;

void mt__unwind_eval(uintptr_t lo, uintptr_t hi)
{
	if (hi > lo) {
		eval_lo = lo;
		eval_len = hi - lo;
	}
}

/* A walk's limit: its depth, and the eval-loop frame it ends at (0: none). */
#define LIM_DEPTH(lim) ((lim) & (MT_UNWIND_EVALS(1) - 1))
#define LIM_EVALS(lim) ((lim) >> 8)

static inline bool in_eval(uintptr_t ra)
{
	return ra - eval_lo - 1 < eval_len;
}

/* Whether return address ra ends a walk that has *evals eval-loop frames
 * still to pass (0: it ends at none): the last of them does. Every walk
 * ends by this one rule. */
static inline bool ends_walk(uintptr_t ra, int *evals)
{
	return *evals && in_eval(ra) && --*evals == 0;
}

/* How many eval-loop frames the walk is still to pass, frames[0..n) taken. */
static int evals_left(const uintptr_t *frames, int n, int lim)
{
	int k = LIM_EVALS(lim);
	for (int i = 0; k && i < n; i++)
		k -= in_eval(frames[i]);
	return k;
}

/* A walk by libunwind cut as the fast walk cuts it (the frames a slow walk
 * took by frame pointers were not counted as it went). */
static int cut_walk(const uintptr_t *frames, int n, int lim)
{
	int k = LIM_EVALS(lim);
	for (int i = 0; i < n; i++)
		if (ends_walk(frames[i], &k))
			return i + 1;
	return n;
}

/* written at each periodic check: a line of their own, away from what
 * every walk reads (fs_table, fs_gen, self_lo/hi) */
static struct {
	uint64_t fast_walks, mismatches;
} __attribute__((aligned(MT_CACHELINE))) stats;
#define fast_walks stats.fast_walks
#define mismatches stats.mismatches

static inline bool in_self(uintptr_t a)
{
	return a >= self_lo && a < self_hi;
}

/* Where a return address may sit: FS_PROBES slots from its home, then as
 * many from a second place its hash picks. The home keeps neighbours
 * together: 64 slots (1 KiB of the table) for each 4 KiB of code, the
 * address's 16-byte unit within the code page picking one, and code pages
 * side by side in the address space side by side in the table (it wraps
 * every 4 MiB of code). A short process that learns a few hundred
 * addresses then touches (pages in) one page of the table per four
 * neighbouring pages of code it calls from, not a page per address: the
 * interpreter of a Python program paged in 380 KiB of the 1 MiB table this
 * way, 844 KiB with a hashed page per code page, all of it with a hashed
 * slot per address. Code denser with calls than its 64 slots hold (V8's
 * JIT code) goes on at the hashed place, so a run of such pages does not
 * pile up into its neighbours' slots. Insert-only, filled in this order:
 * an empty slot on the way ends a lookup. */
#define FS_PROBES 16

static inline size_t fs_home(uintptr_t ra)
{
	return (size_t)(((ra >> 6) & ~(uintptr_t)63) | ((ra >> 4) & 63));
}

static inline size_t fs_hashed(uintptr_t ra)
{
	return (size_t)((ra * 0x9e3779b97f4a7c15ull) >> (64 - FS_BITS));
}

static inline size_t fs_slot(uintptr_t ra, size_t n)
{
	size_t at = n < FS_PROBES ? fs_home(ra) + n : fs_hashed(ra) + n - FS_PROBES;
	return at & (FS_CAP - 1);
}

/* Relaxed loads: an entry's address never changes once set, and an info
 * read early (0, not yet filled) only sends the walk to libunwind. The
 * home's probes, then the hashed place's (fs_slot's order), each a loop of
 * its own: a lookup, nearly always found in its home's first slots, does
 * not compute the hash. */
static inline uint64_t fs_get(const struct fsize *t, uintptr_t ra)
{
	size_t at = fs_home(ra);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t n = 0; n < FS_PROBES; n++) {
			size_t i = (at + n) & (FS_CAP - 1);
			uintptr_t k = __atomic_load_n(&t[i].ra, __ATOMIC_RELAXED);
			if (k == ra)
				return __atomic_load_n(&t[i].info, __ATOMIC_RELAXED);
			if (!k)
				return 0;
		}
		at = fs_hashed(ra);
	}
	return 0;
}

/* What one more walk saw of ra, merged with what was known: another d
 * makes the entry FS_FP when both walks saw the frame-pointer relation,
 * else variable for good; another rbp rule makes rbp lost. */
static uint64_t fs_merge(uint64_t old, uint32_t size, uint32_t rule)
{
	uint32_t osize = (uint32_t)old, orule = (uint32_t)(old >> 32);
	if (osize == FS_VARIABLE || size == FS_VARIABLE)
		return FS_VARIABLE;
	bool fp_ok = (orule & rule & RB_FP_OK) != 0;
	if (osize == FS_FP)
		return rule & RB_FP_OK ? old : FS_VARIABLE;
	if (osize != size)
		return fp_ok && osize != FS_TERMINAL && size != FS_TERMINAL
			       ? FS_FP | (uint64_t)RB_FP_OK << 32
			       : FS_VARIABLE;
	if ((orule & ~RB_FP_OK) != (rule & ~RB_FP_OK))
		orule = RB_LOST;
	return (uint64_t)size | (uint64_t)((orule & ~RB_FP_OK) | (fp_ok ? RB_FP_OK : 0)) << 32;
}

/* Records what a libunwind walk saw. */
static void fs_put(uintptr_t ra, uint32_t size, uint32_t rule)
{
	if (!fs_table || !ra)
		return;
	uint64_t info = (uint64_t)size | (uint64_t)rule << 32;
	for (size_t n = 0; n < 2 * FS_PROBES; n++) {
		size_t i = fs_slot(ra, n);
		uintptr_t k = __atomic_load_n(&fs_table[i].ra, __ATOMIC_ACQUIRE);
		if (!k && __atomic_compare_exchange_n(&fs_table[i].ra, &k, ra, false,
						      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&fs_table[i].info, info, __ATOMIC_RELEASE);
			return;
		}
		if (k == ra) {
			uint64_t old = __atomic_load_n(&fs_table[i].info, __ATOMIC_ACQUIRE);
			if (old == 0 || old == info)
				return;
			/* a frame-pointer step through code without unwind
			 * information is not a guess: it replaces what libunwind's
			 * own guesses there taught */
			uint64_t now = size == FS_FP ? info : fs_merge(old, size, rule);
			if (now == old)
				return;
			__atomic_store_n(&fs_table[i].info, now, __ATOMIC_RELEASE);
			if ((uint32_t)now != (uint32_t)old)
				__atomic_add_fetch(&fs_gen, 1, __ATOMIC_RELEASE);
			return;
		}
	}
	/* the neighbourhood is full: this address stays uncached */
}

/* This thread's stack, once: the fast walk reads only inside it.
 *
 * No libc call may find it: pthread_getattr_np takes the thread's own lock
 * and allocates under it (the JVM, Rust's std and Ruby call it, and their
 * realloc comes back here on the same thread: a deadlock), and for the main
 * thread it reads /proc/self/maps through stdio. What glibc guarantees
 * instead, read without a lock, a call or a syscall beyond gettid:
 *  - the main thread's stack ends at __libc_stack_end (the stack pointer
 *    at process entry; only argv, the environment and auxv lie above) and
 *    may reach RLIMIT_STACK below it, which the kernel keeps free of other
 *    mappings (read once, at start);
 *  - any other thread's descriptor, pthread_self(), sits at the top of its
 *    stack block, also for a stack the program supplied, so its whole stack
 *    lies below it in one mapping. How far down is not known without the
 *    descriptor's internals: the default stack size is assumed, and a
 *    deeper frame only sends the walk to libunwind.
 * A stack pointer in neither shape (a raw clone, a coroutine stack seen
 * first) leaves the bounds unknown: every walk of that thread is
 * libunwind's. */
static uintptr_t main_lo, main_hi;
static uintptr_t thread_stack_guess = 8u << 20;

static void stack_limits_init(void)
{
	struct rlimit rl;
	uintptr_t lim = 8u << 20;
	if (getrlimit(RLIMIT_STACK, &rl) == 0)
		lim = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1ull << 30)
			      ? (uintptr_t)1 << 30
			      : (uintptr_t)rl.rlim_cur;
	if (lim < (64u << 10))
		lim = 64u << 10;
	/* glibc's default thread stack is RLIMIT_STACK, 32 MiB when unlimited */
	thread_stack_guess = lim >= (1u << 30) ? 32u << 20 : lim;
	main_hi = (uintptr_t)__libc_stack_end & ~(uintptr_t)7;
	main_lo = main_hi > lim ? main_hi - lim : 0;
}

static bool stack_bounds(void)
{
	if (tl_stack_hi)
		return tl_stack_hi != 1;
	tl_stack_hi = 1; /* unknown, unless found below */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if ((pid_t)syscall(SYS_gettid) == getpid()) {
		if (main_hi && sp >= main_lo && sp < main_hi) {
			tl_stack_lo = main_lo;
			tl_stack_hi = main_hi;
		}
		/* a child forked by another thread: its stack is that thread's,
		 * and its descriptor still tops it */
	}
	if (tl_stack_hi == 1) {
		uintptr_t self = (uintptr_t)pthread_self() & ~(uintptr_t)7;
		if (sp < self && self - sp < thread_stack_guess &&
		    !(main_hi && sp >= main_lo && sp < main_hi)) {
			tl_stack_lo = self - thread_stack_guess;
			tl_stack_hi = self;
		}
	}
	return tl_stack_hi != 1;
}

/* The slot of the first return address outside memtrace, by our own frame
 * pointers. 0 if it cannot be found. */
static uintptr_t first_slot(void)
{
	const uintptr_t lo = tl_stack_lo, hi = tl_stack_hi - 16;
	uintptr_t *fp = __builtin_frame_address(0);
	for (int i = 0; i < 16; i++) {
		uintptr_t f = (uintptr_t)fp;
		if (f < lo || f > hi || (f & 7))
			return 0;
		if (!in_self(fp[1]))
			return mt__frame_ra_slot(f);
		fp = (uintptr_t *)fp[0];
	}
	return 0;
}

/* A memo of this thread's recent stacks, set-associative by the slot and
 * value of the first return address. An entry holds a stack a table walk
 * took: its return addresses and the slot of each. Finding the same return
 * addresses at the same slots is finding the same stack (each slot follows
 * from the addresses below it), so a hit reads the stack in place, a few
 * instructions per frame and no dependent loads; a stack that matches only
 * its first frames reads those from the memo and the rest from the table.
 * An entry is valid while no frame size it used has been found wrong since
 * (fs_gen). Each entry also keeps one word for the caller (the callsite, in
 * hook.c). 7 KiB per thread, from the private allocator rather than static
 * TLS (threads with small stacks), freed at thread exit. */
#define MEMO_SETS 8
#define MEMO_WAYS 4
#define MEMO_DEPTH 16
struct memo {
	uintptr_t slot0; /* 0: empty */
	uint32_t gen;
	uint32_t used; /* tl_walks at the last use: the least recent goes */
	uint8_t n;
	uint16_t lim; /* the walk's limit (its depth, MT_UNWIND_EVALS) */
	void *tag;
	uint64_t key; /* in the second memo: what it is filed under */
	uintptr_t ra[MEMO_DEPTH];
	uint32_t off[MEMO_DEPTH]; /* slot of ra[k] - slot0 */
};
#define MEMO_BYTES (MEMO_SETS * MEMO_WAYS * sizeof(struct memo))
/* The second memo: made at a thread's first stack that shares its first
 * frame with another one, 58 KiB. */
#define ALT_SET_BITS 6
#define ALT_BYTES ((1u << ALT_SET_BITS) * MEMO_WAYS * sizeof(struct memo))

static __thread struct memo *tl_memo __attribute__((tls_model("initial-exec")));
static __thread struct memo *tl_alt __attribute__((tls_model("initial-exec")));
/* 1: no memo for this thread (gone at exit, or none could be made) */
static __thread int tl_memo_off __attribute__((tls_model("initial-exec")));
static __thread int tl_alt_off __attribute__((tls_model("initial-exec")));
static pthread_key_t memo_key;
static bool memo_key_ok;

/* Runs in the exiting thread, which still has its own tl_alt. */
static void memo_destructor(void *m)
{
	tl_memo = NULL;
	tl_memo_off = 1; /* later allocations of this thread walk the table */
	mt__ifree(m, MEMO_BYTES);
	if (tl_alt)
		mt__ifree(tl_alt, ALT_BYTES);
	tl_alt = NULL;
	tl_alt_off = 1;
}

static struct memo *memo_make(void)
{
	if (tl_memo_off || !memo_key_ok)
		return NULL;
	tl_memo_off = 1;
	struct memo *m = mt__ialloc(MEMO_BYTES); /* zeroed */
	if (!m)
		return NULL;
	if (pthread_setspecific(memo_key, m) != 0) {
		mt__ifree(m, MEMO_BYTES);
		return NULL;
	}
	tl_memo_off = 0;
	return tl_memo = m;
}

/* The entry for a stack whose first return address ra sits at slot, walked
 * to the limit lim: the one holding it, or the least recently used of its
 * set, emptied. NULL when the thread has no memo. */
static inline struct memo *memo_of(uintptr_t slot, uintptr_t ra, int lim)
{
	struct memo *m = tl_memo;
	if (MT_UNLIKELY(!m) && !(m = memo_make()))
		return NULL;
	struct memo *set = &m[(((slot ^ ra) * 0x9e3779b97f4a7c15ull) >> 61) * MEMO_WAYS];
	struct memo *old = set;
	for (int i = 0; i < MEMO_WAYS; i++) {
		if (set[i].slot0 == slot && set[i].ra[0] == ra && set[i].lim == lim)
			return &set[i];
		if (set[i].used < old->used)
			old = &set[i];
	}
	old->slot0 = 0;
	return old;
}

/* Walks on from frame n at slot by the frame-size table, into frames and,
 * below MEMO_DEPTH, into e (if not NULL), to the limit lim (a depth, and
 * maybe an eval-loop frame). From frame 0 it also follows rbp
 * (its value at the allocating call is what the hook's own frame saved,
 * below slot0), which frame-pointer steps need; from a later frame rbp is
 * not known. -1 when the table cannot tell, -3 when only rbp was missing.
 * A stack that took a frame-pointer step is not one the memo may keep (its
 * slots follow from rbp's values as well as from the return addresses):
 * *fp is set for it. */
#define WALK_NEEDS_RBP (-3)
static int table_walk(uintptr_t slot0, uintptr_t slot, uintptr_t *frames, int n, int lim,
		      struct memo *e, bool *fp)
{
	const int max = LIM_DEPTH(lim);
	int evals = LIM_EVALS(lim) ? evals_left(frames, n, lim) : 0;
	const struct fsize *t = fs_table;
	const uintptr_t hi = tl_stack_hi - 8;
	bool rbp_ok = n == 0;
	uintptr_t rbp = rbp_ok ? *(const uintptr_t *)(slot0 - 8) : 0;
	while (n < max) {
		if (slot > hi)
			return -1;
		uintptr_t ra = *(const uintptr_t *)slot;
		bool last = ends_walk(ra, &evals);
		uint64_t info = last ? FS_TERMINAL : fs_get(t, ra);
		uint32_t d = (uint32_t)info, rule = (uint32_t)(info >> 32);
		if (d == 0 || d == FS_VARIABLE)
			return -1;
		frames[n] = ra;
		if (e && n < MEMO_DEPTH) {
			e->ra[n] = ra;
			e->off[n] = (uint32_t)(slot - slot0);
		}
		n++;
		if (d == FS_TERMINAL)
			break;
		if (d == FS_FP) {
			/* the caller's frame base: its return address above it,
			 * the rbp of its own caller at it */
			if (!rbp_ok)
				return WALK_NEEDS_RBP;
			if (rbp < slot || rbp > hi - 8 || (rbp & 7))
				return -1;
			*fp = true;
			slot = rbp + 8;
			rbp = *(const uintptr_t *)rbp;
			continue;
		}
		uintptr_t next = slot + d;
		switch (rule & RB_KIND) {
		case RB_SAME:
			break;
		case RB_SAVED: {
			uintptr_t at = next + 8 - 8 * (uintptr_t)(rule >> RB_SHIFT);
			if (at < slot + 8 || at > hi)
				rbp_ok = false;
			else
				rbp = *(const uintptr_t *)at;
			break;
		}
		default:
			rbp_ok = false;
		}
		slot = next;
	}
	return n;
}

/* Whether the stack holds e's return addresses at e's slots: then it is
 * e's stack (each slot follows from the addresses below it). */
static MT_ALWAYS_INLINE bool memo_same(const struct memo *e, uintptr_t slot0)
{
	uintptr_t diff = 0;
#pragma GCC unroll 4
	for (int i = 0; i < e->n; i++)
		diff |= *(const uintptr_t *)(slot0 + e->off[i]) ^ e->ra[i];
	return !diff;
}

/* A hit: the stack entry e holds, n frames. */
static MT_ALWAYS_INLINE int memo_hit(struct memo *e, int n, uintptr_t *frames, void ***tag)
{
	if (tag) {
		*tag = &e->tag;
		if (e->tag)
			return n;
	}
	memcpy(frames, e->ra, (size_t)n * sizeof(*frames));
	return n;
}

/* Walks on from frame k at slot by the table into entry e (its first k
 * frames in place, its n zero), and makes it a stack. */
static int memo_fill(struct memo *e, uintptr_t slot0, uintptr_t slot, uintptr_t *frames, int k,
		     int lim, void ***tag, bool *fp)
{
	int n = table_walk(slot0, slot, frames, k, lim, e, fp);
	check_soon();
	if (n < 0 || *fp) {
		e->slot0 = 0;
		return n;
	}
	e->n = (uint8_t)n;
	e->lim = (uint16_t)lim;
	if (tag)
		*tag = &e->tag;
	return n;
}

static struct memo *alt_make(void)
{
	if (tl_alt_off)
		return NULL;
	tl_alt_off = 1;
	if (!(tl_alt = mt__ialloc(ALT_BYTES))) /* zeroed */
		return NULL;
	tl_alt_off = 0;
	return tl_alt;
}

/* A thread whose stacks of one shape outnumber the second memo (1,000
 * callsites in turn) misses it at nearly every call, and a miss costs the
 * key, the probe and the entry's copies on top of the table walk: where
 * fewer than one call in eight hit over ALT_TRIAL calls, the next ALT_SKIP
 * go straight to the table (about 200 instructions a call fewer), then the
 * memo is tried again. */
#define ALT_TRIAL 256
#define ALT_SKIP 4096
static __thread uint32_t tl_alt_tries __attribute__((tls_model("initial-exec")));
static __thread uint32_t tl_alt_hits __attribute__((tls_model("initial-exec")));
static __thread uint32_t tl_alt_skip __attribute__((tls_model("initial-exec")));

/* A stack that starts as e's (a valid entry) does but differs from frame k
 * on: looked up in the second memo under the addresses it now holds at e's
 * slots (for stacks of the same shape, its own return addresses), and on a
 * miss walked by the table from frame k into the least recently used way.
 * A hit is checked in place against the entry's own slots, so the key only
 * decides where to look, never what is found. -1 when the table cannot
 * tell. */
static __attribute__((noinline)) int alt_walk(struct memo *e, uintptr_t slot0, int k,
					      uintptr_t *frames, int lim, uint32_t gen, void ***tag,
					      bool *fp)
{
	struct memo *alt = tl_alt;
	if (!alt && !(alt = alt_make()))
		return -2;
	if (tl_alt_skip) {
		tl_alt_skip--;
		memcpy(frames, e->ra, (size_t)k * sizeof(*frames));
		return table_walk(slot0, slot0 + e->off[k], frames, k, lim, NULL, fp);
	}
	if (++tl_alt_tries == ALT_TRIAL) {
		if (tl_alt_hits * 8 < ALT_TRIAL)
			tl_alt_skip = ALT_SKIP;
		tl_alt_tries = tl_alt_hits = 0;
	}
	uint64_t key = slot0;
	for (int i = 0; i < e->n; i++)
		key = ((key << 7) | (key >> 57)) ^ *(const uintptr_t *)(slot0 + e->off[i]);
	key *= 0x9e3779b97f4a7c15ull;
	struct memo *set = &alt[(key >> (64 - ALT_SET_BITS)) * MEMO_WAYS], *old = set;
	for (int w = 0; w < MEMO_WAYS; w++) {
		struct memo *a = &set[w];
		if (a->key == key && a->slot0 == slot0 && a->gen == gen && a->lim == lim &&
		    memo_same(a, slot0)) {
			a->used = tl_walks;
			tl_alt_hits++;
			return memo_hit(a, a->n, frames, tag);
		}
		if (a->used < old->used)
			old = a;
	}
	struct memo *a = old;
	a->slot0 = slot0;
	a->key = key;
	a->gen = gen;
	a->used = tl_walks;
	a->tag = NULL;
	a->n = 0;
	memcpy(a->ra, e->ra, (size_t)k * sizeof(a->ra[0]));
	memcpy(a->off, e->off, (size_t)k * sizeof(a->off[0]));
	memcpy(frames, e->ra, (size_t)k * sizeof(*frames));
	return memo_fill(a, slot0, slot0 + e->off[k], frames, k, lim, tag, fp);
}

/* Negative: the fast walk cannot tell (WALK_NEEDS_RBP: not from the
 * memo's frames on); else the number of frames, with *tag (if tag is not
 * NULL) set when the memo holds exactly this stack, and *fp when it took a
 * frame-pointer step. frames is filled unless **tag is not NULL. */
static MT_ALWAYS_INLINE int fast_walk(uintptr_t slot0, uintptr_t *frames, int lim, void ***tag,
				      bool *fp)
{
	if (slot0 > tl_stack_hi - 8)
		return -1;
	uintptr_t ra0 = *(const uintptr_t *)slot0;
	struct memo *e = memo_of(slot0, ra0, lim);
	if (!e)
		return table_walk(slot0, slot0, frames, 0, lim, NULL, fp);
	e->used = tl_walks;
	uint32_t gen = __atomic_load_n(&fs_gen, __ATOMIC_ACQUIRE);
	int k = 0;
	/* memo_of found it by its slot, first address and limit */
	if (e->slot0 == slot0 && e->gen == gen) {
		/* the slots were inside this thread's stack when the entry
		 * was made, and the stack has not moved */
		/* one pass: the whole stack (a hit), or where it parts from
		 * the entry's */
		int n = e->n;
		while (k < n && *(const uintptr_t *)(slot0 + e->off[k]) == e->ra[k])
			k++;
		if (k == n)
			return memo_hit(e, n, frames, tag);
		/* e stays: it is what the second memo's keys are read by */
		int m = alt_walk(e, slot0, k, frames, lim, gen, tag, fp);
		if (m != -2)
			return m;
		memcpy(frames, e->ra, (size_t)k * sizeof(*frames));
	} else {
		e->slot0 = slot0;
	}
	e->tag = NULL;
	e->n = 0; /* partly rewritten: not a stack until complete */
	e->gen = gen;
	uintptr_t slot = k ? slot0 + e->off[k] : slot0;
	if (LIM_DEPTH(lim) > MEMO_DEPTH) {
		e->slot0 = 0;
		return table_walk(slot0, slot, frames, k, lim, NULL, fp);
	}
	return memo_fill(e, slot0, slot, frames, k, lim, tag, fp);
}

/* Whether libunwind knows how to leave the function that ip returns into:
 * JIT code (outside every loaded object) and V8's builtins have no unwind
 * information, and libunwind's guesses there (a frame chain it validates
 * word by word with syscalls, or worse) are both slow and wrong. */
static bool has_unwind_info(uintptr_t ip)
{
	/* the table knows it for an address walked before: a frame-pointer
	 * step was taught for code without, a size or "variable" by libunwind,
	 * which read the code's own information */
	uint32_t known = (uint32_t)fs_get(fs_table, ip);
	if (known == FS_FP)
		return false;
	if (known && known != FS_TERMINAL)
		return true;
	unw_proc_info_t pi;
	return unw_get_proc_info_by_ip(unw_local_addr_space, ip - 1, &pi, NULL) == 0;
}

/* Frame-pointer steps from a frame at ip (sp, rbp bp) in code without
 * unwind information, which must keep rbp as its frame base (V8's code
 * does): its caller's return address is at bp + 8, its caller's rbp at bp.
 * Each step is taught to the table; the frames go into frames. Stops,
 * false, at a frame pointer outside this thread's stack or at depth; true
 * with *ip, *sp, *bp the first frame that has unwind information again,
 * not yet in frames, for libunwind to go on from. */
static bool fp_steps(uintptr_t *ipp, uintptr_t *spp, uintptr_t *bpp, uintptr_t *frames, int *n,
		     int max)
{
	uintptr_t ip = *ipp, sp = *spp, bp = *bpp;
	const uintptr_t hi = tl_stack_hi;
	for (;;) {
		if (hi == 1 || (bp & 7) || bp < sp || bp > hi - 16) {
			/* code that uses rbp for something else (HotSpot's
			 * compiled code, say): the fast walk ends the stack here
			 * too, rather than ask libunwind each time */
			if (!fs_get(fs_table, ip))
				fs_put(ip, FS_TERMINAL, 0);
			return false;
		}
		uintptr_t next = *(const uintptr_t *)mt__frame_ra_slot(bp);
		fs_put(ip, FS_FP, RB_FP_OK);
		ip = next;
		sp = mt__frame_caller_sp(bp);
		bp = *(const uintptr_t *)bp;
		if (!ip || in_self(ip))
			return false;
		if (has_unwind_info(ip)) {
			*ipp = ip;
			*spp = sp;
			*bpp = bp;
			return true;
		}
		if (*n >= max)
			return false;
		frames[(*n)++] = ip;
	}
}

/* Where libunwind has this frame's rbp: the address of the word that holds
 * it (in local unwinding a register not yet saved by any frame lies in the
 * context, memory too), 0 if not known. */
static uintptr_t rbp_home(unw_cursor_t *c)
{
	unw_save_loc_t sl;
	if (unw_get_save_loc(c, MT_UNW_FP, &sl) != 0 || sl.type != UNW_SLT_MEMORY)
		return 0;
	return (uintptr_t)sl.u.addr;
}

/* What became of rbp across the frame from sp0 (rbp at home0) to sp1 (rbp
 * at home1), as an RB_* rule: libunwind read it from the same place (the
 * frame did not touch it), from a word inside the frame, or elsewhere. */
static uint32_t rbp_rule(uintptr_t sp0, uintptr_t home0, uintptr_t sp1, uintptr_t home1)
{
	if (!home1)
		return RB_LOST;
	if (home1 == home0)
		return RB_SAME;
	if (home1 >= sp0 && home1 < sp1 && !((sp1 - home1) & 7) && (sp1 - home1) / 8 < (1u << 24))
		return RB_SAVED | (uint32_t)((sp1 - home1) / 8) << RB_SHIFT;
	return RB_LOST;
}

/* The most times one slow walk tries to go on by the table (slow_walk_in). */
#define HANDOFF_TRIES 3

/* libunwind's walk to the limit lim, teaching the frame-size table as it
 * goes: per return address, the step to the next slot and what becomes of
 * rbp. Through code without unwind information it steps by frame pointers
 * itself, then starts libunwind again from the first frame it can read. A
 * walk that ends at an eval-loop frame takes no step beyond it: libunwind's
 * steps are most of a slow walk's cost, and the interpreter's start-up
 * beyond is a third of a Python stack's frames. With handoff, the rest of a
 * stack goes to the table's walk once libunwind is past the frames the
 * table did not know (below). */
static __attribute__((noinline)) int slow_walk_in(uintptr_t *frames, int lim, bool handoff)
{
	const int max = LIM_DEPTH(lim);
	int evals = LIM_EVALS(lim);
	int tries = handoff ? HANDOFF_TRIES : 0;
	unw_context_t uc, again;
	unw_cursor_t c;
	uintptr_t prev_ra = 0, prev_sp = 0, prev_bp = 0, prev_home = 0;
	int n = 0;
	bool bounds = stack_bounds();

	if (unw_getcontext(&uc) != 0 || unw_init_local(&c, &uc) != 0)
		return 0;
	for (;;) {
		unw_word_t ip = 0, sp = 0, bp = 0;
		unw_get_reg(&c, UNW_REG_IP, &ip);
		unw_get_reg(&c, UNW_REG_SP, &sp);
		unw_get_reg(&c, MT_UNW_FP, &bp);
		uintptr_t home = rbp_home(&c);
		bool sig = unw_is_signal_frame(&c) > 0;
		if (ip && !in_self(ip)) {
			/* ip is a return address stored just below sp */
			bool plain = !sig && sp >= 8 && *(const uintptr_t *)(sp - 8) == ip;
			if (prev_ra) {
				uintptr_t d = sp - prev_sp;
				bool ok = plain && sp > prev_sp && d < FS_MAX_FRAME;
				/* the caller's frame is rbp-based here: its CFA is
				 * rbp + 16 and its caller's rbp lies at rbp */
				bool fp = ok && prev_bp && sp == prev_bp + 16 && home == prev_bp;
				fs_put(prev_ra, ok ? (uint32_t)d : FS_VARIABLE,
				       rbp_rule(prev_sp, prev_home, sp, home) | (fp ? RB_FP_OK : 0));
			}
			if (n >= max)
				break;
			frames[n++] = ip;
			if (ends_walk(ip, &evals))
				break;
			/* Past what sent the walk here (most often a frame or two
			 * the table had not seen), the rest of the stack may be
			 * one the table knows: it goes on from this frame's slot
			 * as a fast walk would, not by libunwind to the limit
			 * (a Python start took 840 slow walks of 18 steps, 28 k
			 * instructions each, 29 % of its instructions). From the
			 * second frame on only: the table walk knows rbp only at
			 * the hook's own frame. A walk it cannot finish goes on
			 * by libunwind from here. */
			if (tries && n >= 2 && plain && !sig && bounds) {
				uint32_t d = (uint32_t)fs_get(fs_table, ip);
				if (d && d != FS_VARIABLE && d != FS_FP && d != FS_TERMINAL) {
					bool fp = false;
					tries--;
					int m = table_walk(0, sp - 8, frames, n - 1, lim, NULL, &fp);
					/* short of that it left frames[n - 1] as
					 * it was: ip, read at its slot */
					if (m >= n)
						return m;
				}
			}
			prev_ra = plain ? ip : 0;
			if (!plain)
				fs_put(ip, FS_VARIABLE, 0);
			prev_sp = sp;
			prev_bp = bp;
			prev_home = home;
			if (plain && bounds && !has_unwind_info(ip)) {
				uintptr_t i = ip, s = sp, b = bp;
				if (!fp_steps(&i, &s, &b, frames, &n, max))
					break;
				again = uc;
				MT_UC_PC(&again) = i;
				MT_UC_SP(&again) = s;
				MT_UC_FP(&again) = b;
				if (unw_init_local(&c, &again) != 0)
					break;
				prev_ra = 0;
				continue;
			}
		}
		if (unw_step(&c) <= 0) {
			if (prev_ra && n < max)
				fs_put(prev_ra, FS_TERMINAL, 0);
			break;
		}
	}
	return n;
}

/* Which of memtrace's own uses of libunwind this thread is in (the
 * masking, below slow_walk_in). */
/* PASS: libunwind masks for itself; QUIET: libunwind's masking does
 * nothing (memtrace masked, or no other user of libunwind exists) */
#define UNW_OWN_NONE 0
#define UNW_OWN_PASS 1
#define UNW_OWN_QUIET 2
static __thread int tl_unw_own __attribute__((tls_model("initial-exec")));
static int unw_others; /* another user of libunwind may exist (below) */

/* unw_backtrace (libunwind's per-address trace cache), memtrace's frames
 * dropped: for checking the fast walk, which it should match exactly. It
 * finds nearly every frame in its cache and masks no signal then, so it is
 * left to mask for itself (below): masking around it would cost two system
 * calls a check where it costs none (0.1 s of a 0.15 s Python churn). */
static int backtrace_walk(uintptr_t *frames, int max)
{
	void *buf[MT_MAX_FRAMES + 8];
	int want = max + 6 > (int)(sizeof(buf) / sizeof(buf[0]))
			   ? (int)(sizeof(buf) / sizeof(buf[0]))
			   : max + 6;
	int own = tl_unw_own;
	/* with another user of libunwind about, libunwind masks for itself
	 * on the rare lookups its cache misses (masking around every check
	 * cost more); the last slow walk's answer, not a fresh look at the
	 * loaded objects (a dl_iterate_phdr at every check was 0.15 % of a
	 * Python churn's instructions and more of its cache misses) */
	tl_unw_own = __atomic_load_n(&unw_others, __ATOMIC_ACQUIRE) ? UNW_OWN_PASS : UNW_OWN_QUIET;
	int n = unw_backtrace(buf, want), skip = 0, out = 0;
	tl_unw_own = own;
	while (skip < n && in_self((uintptr_t)buf[skip]))
		skip++;
	for (int i = skip; i < n && out < max; i++)
		frames[out++] = (uintptr_t)buf[i];
	return out;
}

/*
 * libunwind masks every signal around each lookup of a function's unwind
 * information (its dl_iterate_phdr) and around each of its locks, so that a
 * signal handler that unwinds on the same thread never meets its state half
 * made: two system calls each time, some sixty a walk. A Python start under
 * exact mode made 53,714 of them, 55 ms of its 76 ms over bare here (each
 * walk teaches the table, so they are the first walks of each stack, and a
 * process with many stacks pays them at every start). libunwind's own calls
 * do nothing during memtrace's slow walks: its GOT slot for sigprocmask is
 * patched at start (got.c), no other caller in the process is touched, and
 * outside memtrace's walks the call goes on to libc's. Without the patch
 * (libunwind linked another way) libunwind masks as before.
 *
 * The hazard libunwind's masking guards against needs a second user of
 * libunwind in the process: a signal handler that unwinds on a thread whose
 * walk it interrupted. memtrace masks every signal once around each slow
 * walk (the same guarantee, held longer) when there may be one:
 *  - an object other than memtrace and libunwind needs libunwind (a program
 *    or library linked with it: gperftools' profiler, the test
 *    host-unwind-signals); checked at start and again before a slow walk
 *    whenever objects were loaded since (dl_iterate_phdr's dlpi_adds);
 *  - libunwind asked for sigprocmask outside memtrace's walks (a program
 *    that found libunwind by dlsym or through another library, from its
 *    first call on).
 * Otherwise a slow walk costs no system call for the mask: a Python start
 * under exact mode made 3,526 of them (1,763 slow walks), 2 per walk. What
 * is left open: a program that reaches libunwind only by dlsym and makes
 * its very first call from a signal handler that lands inside a walk of
 * memtrace's on the same thread; an object loaded since memtrace's last
 * slow walk whose handler unwinds inside the periodic check's walk. The
 * price of masking: a fault inside a masked walk (a stack libunwind
 * misreads) would end the process at once, where unmasked it could reach
 * the program's own SIGSEGV handler first.
 */
static bool unw_patched;
static unsigned long long unw_adds = ~0ull; /* dlpi_adds at the last scan */

static int unw_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (tl_unw_own == UNW_OWN_QUIET) {
		/* memtrace's walk, masked or with no other user about: what
		 * libunwind would save is what it would restore */
		if (old)
			sigfillset(old);
		return 0;
	}
	if (tl_unw_own == UNW_OWN_NONE && !__atomic_load_n(&unw_others, __ATOMIC_RELAXED))
		__atomic_store_n(&unw_others, 1, __ATOMIC_RELEASE); /* someone else unwinds */
	return sigprocmask(how, set, old);
}

static void unw_patch_slot(void **at, const char *name, bool relro, void *arg)
{
	(void)arg;
	if (strcmp(name, "sigprocmask") == 0) {
		mt__got_put(at, (void *)&unw_sigprocmask, relro);
		unw_patched = *at == (void *)&unw_sigprocmask;
	}
}

/* libunwind's own object: the one holding the code of unw_init_local. */
static int unw_patch_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t fn = (uintptr_t)arg;
	if (!mt__phdr_holds(info, fn))
		return 0;
	if (in_self(fn)) /* linked into memtrace itself */
		return 1;
	mt__got_each(info, unw_patch_slot, NULL);
	return 1;
}

/* An object that needs libunwind (a DT_NEEDED naming it): read from its
 * dynamic section alone, a few entries. Reading every object's relocations
 * and symbols instead (a GOT naming libunwind's API) cost a large program
 * about 1 ms at every start (cmake --version under exact memtrace: 19.15
 * ms that way, 18.21 ms this way, bare 10.54). An object that reaches
 * libunwind without needing it (dlsym, or a dependency's dependency) is
 * caught at its first call (unw_sigprocmask). */
static int unw_user_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (mt__phdr_holds(info, (uintptr_t)&mt__unwind_init) ||
	    mt__phdr_holds(info, (uintptr_t)&unw_init_local))
		return 0; /* memtrace, libunwind */
	if (!mt__dyn_needs(info, "libunwind"))
		return 0;
	*(const char **)arg = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "the program";
	return 1;
}

static int loaded_adds(struct dl_phdr_info *info, size_t size, void *arg)
{
	*(unsigned long long *)arg =
		size >= offsetof(struct dl_phdr_info, dlpi_subs) ? info->dlpi_adds : 0;
	return 1;
}

/* Whether a slow walk must mask signals (above): the objects scanned again
 * when any were loaded since the last scan. */
static bool unw_must_mask(void)
{
	static int said;
	if (__atomic_load_n(&unw_others, __ATOMIC_ACQUIRE)) {
		if (mt__opt.verbose && !__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
			mt__warn("libunwind is called outside memtrace's walks: they mask signals");
		return true;
	}
	unsigned long long adds = 0;
	dl_iterate_phdr(loaded_adds, &adds);
	if (adds == __atomic_load_n(&unw_adds, __ATOMIC_RELAXED) && adds)
		return false;
	const char *user = NULL;
	if (dl_iterate_phdr(unw_user_object, &user)) { /* an object uses libunwind */
		__atomic_store_n(&said, 1, __ATOMIC_RELAXED);
		if (mt__opt.verbose)
			mt__warn("libunwind is used by %s: memtrace's walks mask signals", user);
		__atomic_store_n(&unw_others, 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&unw_adds, adds, __ATOMIC_RELAXED);
	return __atomic_load_n(&unw_others, __ATOMIC_ACQUIRE) != 0;
}

/* A slow walk to the limit lim, every signal masked once around it when
 * another user of libunwind may exist (above). handoff: it may go on by
 * the table once past the frames the table did not know (a check of the
 * table's walks must not). */
static int slow_walk(uintptr_t *frames, int lim, bool handoff)
{
	if (!unw_patched)
		return slow_walk_in(frames, lim, handoff);
	bool mask = unw_must_mask();
	sigset_t all, old;
	if (mask) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
	}
	int own = tl_unw_own;
	tl_unw_own = UNW_OWN_QUIET;
	int n = slow_walk_in(frames, lim, handoff);
	tl_unw_own = own;
	if (mask)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n;
}

void mt__unwind_init(void)
{
	uintptr_t frames[4];

	stack_limits_init();
	(void)mt__module_text((void *)mt__unwind_init, &self_lo, &self_hi);
	fs_table = mt__map(FS_CAP * sizeof(*fs_table));
	memo_key_ok = pthread_key_create(&memo_key, memo_destructor) == 0;
	/* per-thread caches: no global lock, no signal masking per step */
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	dl_iterate_phdr(unw_patch_object, (void *)&unw_init_local);
	/* warm up: libunwind builds its caches and resolves its own symbols
	 * here, not inside the program's first hot allocation; sampled, the
	 * first sample does it (most short processes never take one, and
	 * the walk was a quarter of memtrace's start) */
	if (!mt__opt.sample_bytes)
		(void)mt__unwind(frames, 4, 0, NULL);
}

/* The fast walk; a stack whose frames the memo held only in part and which
 * then needed rbp is walked once more by the table from frame 0. */
static MT_ALWAYS_INLINE int fast_or_table_walk(uintptr_t slot, uintptr_t *frames, int lim,
					       void ***tag, bool *fp)
{
	int n = fast_walk(slot, frames, lim, tag, fp);
	if (MT_UNLIKELY(n == WALK_NEEDS_RBP))
		n = table_walk(slot, slot, frames, 0, lim, NULL, fp);
	return n;
}

/* The slow walk, cut where the limit says. */
static int slow_walk_to(uintptr_t *frames, int lim)
{
	check_soon();
	return cut_walk(frames, slow_walk(frames, lim, true), lim);
}

/* The periodic check: the fast walk, then the same stack by libunwind's own
 * cached backtrace. */
static __attribute__((noinline)) int checked_walk(uintptr_t slot, uintptr_t *frames, int lim)
{
	bool fp = false;
	int max = LIM_DEPTH(lim);
	int n = fast_or_table_walk(slot, frames, lim, NULL, &fp);
	if (n < 0)
		return slow_walk_to(frames, lim);
	__atomic_add_fetch(&fast_walks, check_mask() + 1, __ATOMIC_RELAXED);
	if (fp && (tl_walks / CHECK_EVERY) % FP_CHECK_EVERY)
		return n;
	/* through code without unwind information libunwind's own backtrace
	 * guesses: a stack that took frame-pointer steps is checked against
	 * the walk that taught them */
	uintptr_t check[MT_MAX_FRAMES];
	int m = cut_walk(check, fp ? slow_walk(check, lim, false) : backtrace_walk(check, max), lim);
	bool same = m == n;
	for (int i = 0; same && i < n; i++)
		same = check[i] == frames[i];
	if (same) {
		check_calm();
		return n;
	}
	check_soon();
	__atomic_add_fetch(&mismatches, 1, __ATOMIC_RELAXED);
	/* marks them variable: every memo entry made with their sizes is void
	 * (fs_gen) */
	for (int i = 0; i < n; i++)
		fs_put(frames[i], FS_VARIABLE, 0);
	for (int i = 0; i < m; i++)
		frames[i] = check[i];
	return m;
}

int mt__unwind(uintptr_t *frames, int lim, uintptr_t hint, void ***tag)
{
	if (tag)
		*tag = NULL;
	if (MT_LIKELY(fs_table != NULL) && stack_bounds()) {
		uintptr_t slot = hint >= tl_stack_lo && hint <= tl_stack_hi - 8 && !(hint & 7) &&
						 !in_self(*(const uintptr_t *)hint)
					 ? hint
					 : first_slot();
		if (slot && MT_LIKELY(++tl_walks & check_mask())) {
			bool fp = false;
			int n = fast_or_table_walk(slot, frames, lim, tag, &fp);
			if (n >= 0)
				return n;
		} else if (slot) {
			return checked_walk(slot, frames, lim);
		}
	}
	return slow_walk_to(frames, lim);
}

void mt__unwind_stats(uint64_t *fast, uint64_t *bad)
{
	*fast = __atomic_load_n(&fast_walks, __ATOMIC_RELAXED);
	*bad = __atomic_load_n(&mismatches, __ATOMIC_RELAXED);
}
