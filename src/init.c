/* SPDX-License-Identifier: MIT */
/*
 * init.c - the hooks' life around the program's: start-up (the functions
 * forwarded to resolved, with a bootstrap pool for dlsym's own
 * allocations; the tables, options and threads set up once), the fork
 * handlers and the snapshot at exit. The entry points are hook.c's.
 *
 * Invariants: mt__resolve runs once per process and mt__init at most once,
 * each guarded by its state (hook.h), before the program's threads exist
 * in every case seen; what they may call beyond a hook's is in hook.c's
 * opening comment. A pool block is never reused nor freed (hook.h tells
 * the hooks one). The fork handlers take the tables' locks in table.c's
 * order; one snapshot at most is written at exit, by exit() or _exit().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "memtrace.h"
#include "internal.h"
#include "hook.h"
#include "arch.h"

__thread int mt__tl_resolving TLS_IE;

struct mt_real mt__real;
const mt_backend_t *mt__be = &sysbe;
const mt_backend_t *mt__jebe;

int mt__resolve_state = RES_NONE;
int mt__init_state = INIT_NONE;
static pid_t main_pid;
static int exit_dumped;

uint64_t mt__start_wall_ns, mt__start_mono_ns;

/* ---- the bootstrap pool: dlsym's calloc before the real one is known ---- */
char mt__pool[MT_POOL_SIZE] __attribute__((aligned(64)));
static size_t pool_used;

/* 16-byte header holding the size; the memory is zero and never reused. */
void *mt__pool_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > MT_POOL_SIZE || align > 4096)
		return NULL;
	size_t old = __atomic_load_n(&pool_used, __ATOMIC_RELAXED), start, end;
	do {
		start = (old + 16 + align - 1) & ~(align - 1);
		end = start + size;
		if (end > MT_POOL_SIZE)
			return NULL;
	} while (!__atomic_compare_exchange_n(&pool_used, &old, end, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	*(size_t *)(mt__pool + start - 16) = size;
	mt__filter_pin(mt__pool + start); /* free() sends it to free_slow */
	return mt__pool + start;
}

/* ---- start-up ---- */

/* dlopen'ed (memtrace attach): nothing starts until mt_attach says so. A
 * call to memtrace's malloc before it (gdb allocates the strings it passes
 * with the malloc it finds first, memtrace's) is forwarded untracked, to
 * the program's own. */
static int dlopened, attach_starting;

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

/* The function a hook forwards to: the next in the chain when preloaded;
 * attached, the program's own (attach.c). */
void *mt__next_sym(const char *name)
{
	return dlopened ? mt__attach_sym(name) : dlsym(RTLD_NEXT, name);
}

/* Looks up the function of each row, in table order. Without a REQUIRED one
 * nothing can be forwarded: the process ends, saying which; an OPTIONAL one
 * missing fails only its own entry point's calls. */
void mt__resolve(void)
{
	int expect = RES_NONE;
	if (!__atomic_compare_exchange_n(&mt__resolve_state, &expect, RES_BUSY, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&mt__resolve_state, __ATOMIC_ACQUIRE) != RES_DONE)
			sched_yield();
		return;
	}
	mt__tl_resolving = 1;
	const char *missing = NULL;
#define X(name, ret, params, need)                            \
	mt__real.m.name = (ret(*) params)mt__next_sym(#name); \
	if (need && !mt__real.m.name && !missing)              \
		missing = #name;
	MT_HOOKS_MALLOC(X)
#undef X
#define X(name, ret, params, need)                          \
	mt__real.name = (ret(*) params)mt__next_sym(#name); \
	if (need && !mt__real.name && !missing)              \
		missing = #name;
	MT_HOOKS_MMAP(X)
	MT_HOOKS_PROCESS(X)
#undef X
	mt__tl_resolving = 0;
	if (missing) {
		static const char a[] = "memtrace: cannot find the real ", b[] = "; aborting\n";
		(void)mt__write_all(2, a, sizeof(a) - 1);
		(void)mt__write_all(2, missing, strlen(missing));
		(void)mt__write_all(2, b, sizeof(b) - 1);
		abort(); /* nothing can be forwarded: there is no safe way on */
	}
	__atomic_store_n(&mt__resolve_state, RES_DONE, __ATOMIC_RELEASE);
}

void mt__init(void)
{
	if (dlopened && !attach_starting)
		return;
	int expect = INIT_NONE;
	if (!__atomic_compare_exchange_n(&mt__init_state, &expect, INIT_BUSY, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return; /* another thread is on it: this call goes untracked */

	mt__tl_busy++;
	main_pid = getpid();
	if (getauxval(AT_SECURE)) {
		__atomic_store_n(&mt__init_state, INIT_OFF, __ATOMIC_RELEASE);
		mt__tl_busy--;
		return;
	}
	mt__start_wall_ns = mt__now_ns(CLOCK_REALTIME);
	mt__start_mono_ns = mt__now_ns(CLOCK_MONOTONIC);
	mt__options_init();
	if (mt__opt.only_pid && getpid() != (pid_t)mt__opt.only_pid) {
		/* a child of the one process to profile (run --no-children) */
		__atomic_store_n(&mt__init_state, INIT_OFF, __ATOMIC_RELEASE);
		mt__tl_busy--;
		return;
	}
	mt__snapshot_init();
	if (!mt__table_init()) {
		mt__warn("cannot set up tables; tracking is off");
		__atomic_store_n(&mt__init_state, INIT_OFF, __ATOMIC_RELEASE);
		mt__tl_busy--;
		return;
	}
	mt__unwind_init();
	mt__sample_init();
	mt__arena_tune();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(mt__exit_dump); /* also ends signal and timer dumps cleanly */
	__atomic_store_n(&mt__init_state, INIT_READY, __ATOMIC_RELEASE);
	mt__tl_busy--;
}

/* Whether memtrace is in the global scope (LD_PRELOAD, or linked): the
 * symbol lookup that makes the program's calls memtrace's. A library that
 * gdb dlopen'ed for `memtrace attach` is not, and waits for mt_attach. */
static void *global_scope(void)
{
	/* the main program's handle: dlsym on it searches the global scope
	 * only (RTLD_DEFAULT would search memtrace's own local scope too) */
	return dlopen(NULL, RTLD_NOW | RTLD_NOLOAD);
}

bool mt__preloaded(void)
{
	void *g = global_scope();
	bool in = g && dlsym(g, "mt_attach") != NULL;
	(void)dlerror(); /* not found (attached) leaves the program no error */
	return in;
}

uint64_t mt__attach_wall_ns;

/* The attach (attach.c): the start a preload has at its first call and
 * in its constructor, the functions forwarded to being the program's own
 * (next_sym). In a running interpreter, Python's allocator domains are
 * wrapped as under a preload: by a pending call, which the interpreter's
 * own thread runs with the GIL held. */
bool mt__attach_start(void)
{
	ENSURE_RESOLVED();
	mt__tl_busy++;
	attach_starting = 1;
	if (!tracking()) {
		mt__tl_busy--;
		return false;
	}
	mt__attach_wall_ns = mt__start_wall_ns;
	mt__allocator_detect();
	mt__trigger_init();
	mt__python_init();
	(void)dlerror();
	mt__tl_busy--;
	return true;
}

/* The detach: tracking off, no snapshot at exit, the signals given back. */
void mt__attach_stop(void)
{
	mt__opt.at_exit = 0;
	__atomic_store_n(&mt__init_state, INIT_OFF, __ATOMIC_RELEASE);
	mt__trigger_release();
}

/* Runs after libc is initialised (it is our dependency), so the signal
 * handler is installed here rather than at the first malloc. */
__attribute__((constructor)) static void mt_ctor(void)
{
	if (!mt__preloaded()) {
		dlopened = 1; /* by `memtrace attach`: mt_attach starts it */
		return;
	}
	ENSURE_RESOLVED();
	if (mt__tl_busy || !tracking())
		return;
	mt__tl_busy++;
	/* the switch to jemalloc: what was allocated before stays the
	 * system's, and goes back to it (the owner bit in the table) */
	if (mt__opt.allocator == MT_ALLOC_JEMALLOC && mt__sample_mean)
		mt__warn("MEMTRACE_ALLOCATOR=jemalloc does not go with MEMTRACE_SAMPLE (unsampled "
			 "blocks would have no known owner); the system allocator stays");
	else if (mt__opt.allocator == MT_ALLOC_JEMALLOC && (mt__jebe = mt__jemalloc_load()))
		__atomic_store_n(&mt__be, mt__jebe, __ATOMIC_RELEASE);
	mt__allocator_detect();
	mt__cxx_resolve();
	mt__trigger_init();
	mt__python_init();
	(void)dlerror(); /* memtrace's lookups of names no object defines (a C
			  * program's Python and C++ symbols) leave no error for
			  * the program's own dlerror() */
	mt__tl_busy--;
}

/* ---- fork ---- */

/* The code table's lock comes before the tables' (python.c). */
static void atfork_prepare(void)
{
	if (mt__init_state == INIT_READY) {
		mt__py_lock();
		mt__table_lock_all();
	}
}

static void atfork_parent(void)
{
	if (mt__init_state == INIT_READY) {
		mt__table_unlock_all();
		mt__py_unlock();
	}
}

static void atfork_child(void)
{
	if (mt__init_state == INIT_READY) {
		mt__table_unlock_all();
		mt__table_atfork_child();
		mt__py_atfork_child();
	}
	mt__snapshot_atfork_child();
	mt__trigger_atfork_child();
	if (mt__init_state == INIT_READY && mt__opt.only_pid && getpid() != (pid_t)mt__opt.only_pid) {
		/* memtrace run --no-children: this child runs untracked and
		 * writes nothing */
		__atomic_store_n(&exit_dumped, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&mt__init_state, INIT_OFF, __ATOMIC_RELEASE);
	}
}

/* ---- process exit ---- */

/*
 * Where the leak scan starts reading this thread's stack at exit: above
 * exit()'s own frame, which holds libc's state and, in the words its frames
 * never write, stale words of the program's returned calls (memcheck skips
 * those as undefined; a scan cannot tell them from pointers). The return
 * address into exit() is found above our frame; exit()'s frame (glibc:
 * `sub $N, %rsp`, then the call) is skipped with it. Else: from our caller.
 */
static uintptr_t exit_caller_sp(void)
{
	uintptr_t here = mt__frame_caller_sp((uintptr_t)__builtin_frame_address(0));
	const unsigned char *fn = (const unsigned char *)(uintptr_t)&exit;
	size_t frame = 0, at = 0;
	if (MT_ARCH_X86_64 && fn[0] == 0xf3 && fn[1] == 0x0f && fn[2] == 0x1e && fn[3] == 0xfa)
		at = 4; /* endbr64 */
	if (MT_ARCH_X86_64 && fn[at] == 0x48 && fn[at + 1] == 0x83 && fn[at + 2] == 0xec)
		frame = fn[at + 3]; /* sub $imm8, %rsp */
	for (uintptr_t a = here; a < here + (16u << 10); a += 8) {
		uintptr_t v = *(const uintptr_t *)a;
		if (v > (uintptr_t)fn && v < (uintptr_t)fn + 64)
			return a + 8 + frame;
	}
	return here;
}

void mt__exit_dump(void)
{
	/* the leak scan reads this thread's stack from exit()'s caller up:
	 * memtrace's own frames and exit()'s hold stale words, not the
	 * program's pointers */
	if (!mt__scan_from)
		mt__scan_from = exit_caller_sp();
	mt__snapshot_exiting();
	if (!mt__opt.at_exit || __atomic_exchange_n(&exit_dumped, 1, __ATOMIC_ACQ_REL))
		return;
	if (getpid() != main_pid)
		main_pid = getpid(); /* a forked child writes its own pid's file */
	mt__tl_busy++;
	(void)mt__dump(MT_REASON_EXIT, NULL, 0);
	mt__tl_busy--;
}

/* _exit and _Exit (hook.c): no atexit handler runs */
void mt__uexit_dump(void)
{
	/* a vfork child shares the parent's memory: touch nothing there */
	if (mt__init_state != INIT_READY || getpid() != main_pid)
		return;
	mt__snapshot_exiting();
	if (!mt__opt.at_exit)
		return;
	if (__atomic_exchange_n(&exit_dumped, 1, __ATOMIC_ACQ_REL))
		return;
	mt__tl_busy++;
	(void)mt__dump(MT_REASON_UEXIT, NULL, 0);
	mt__tl_busy--;
}
