/* SPDX-License-Identifier: MIT */
/*
 * options.h - every MEMTRACE_* variable, once. The library reads them at
 * start (options.c), `memtrace run` offers the ones with a flag and refuses
 * a bad value up front (tools/memtrace/cmd-run.c), and memtrace(1) is
 * checked against this list: one table and one parser (optparse.c) for all.
 */
#ifndef MT_OPTIONS_H
#define MT_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum mt_opt_type {
	MT_OPT_INT,
	MT_OPT_LONG,
	MT_OPT_SIZE,	  /* bytes, K, M, G allowed */
	MT_OPT_BOOL,
	MT_OPT_DIR,	  /* a path, taken as it is */
	MT_OPT_SIGNAL,	  /* a name or number memtrace may take, or none */
	MT_OPT_SECONDS,	  /* seconds with at most 3 decimals, kept as ms */
	MT_OPT_ALLOCATOR, /* system or jemalloc */
};

/*
 * X(variable, type, default, min, max, mt_options_t field,
 *   memtrace run's long flag (NULL: none), its short letter (0: none),
 *   the flag's value name, help)
 * MEMTRACE_VERBOSE has no flag: `memtrace run -v` says what it preloads;
 * run's own --allocator and --no-children set MEMTRACE_ALLOCATOR's
 * neighbours and MEMTRACE_ONLY_PID; the testing ones have none.
 */
#define MT_OPTIONS(X)                                                                              \
	X("MEMTRACE_DIR", MT_OPT_DIR, 0, 0, 0, dir, "dir", 'o', "DIR",                             \
	  "snapshot directory (default: the working directory at start)")                           \
	X("MEMTRACE_DEPTH", MT_OPT_INT, 16, 1, MT_MAX_FRAMES, depth, "depth", 0, "N",                         \
	  "frames recorded per callsite")                                                            \
	X("MEMTRACE_AT_EXIT", MT_OPT_BOOL, 1, 0, 1, at_exit, "at-exit", 0, "0|1",                   \
	  "write a snapshot when the process exits or a terminating signal ends it")                \
	X("MEMTRACE_VERBOSE", MT_OPT_BOOL, 0, 0, 1, verbose, NULL, 0, NULL,                         \
	  "print the options in force at start")                                                    \
	X("MEMTRACE_SIGNAL", MT_OPT_SIGNAL, SIGUSR1, 0, 0, signal, "signal", 's', "SIG",                 \
	  "signal that writes a snapshot: a name (USR1, SIGUSR2), a number, or none")               \
	X("MEMTRACE_INTERVAL", MT_OPT_SECONDS, 0, 0, 1000000000, interval_ms, "interval", 'i',      \
	  "SECS", "write a snapshot every this many seconds (decimals allowed; 0: never)")          \
	X("MEMTRACE_ARENA_MAX", MT_OPT_INT, 0, 1, 1024, arena_max, "arena-max", 0, "N",             \
	  "cap the allocator's arenas (glibc arena_max, jemalloc narenas); unset: leave")           \
	X("MEMTRACE_SAMPLE", MT_OPT_SIZE, 0, 1, 1l << 30, sample_bytes, "sample", 0, "SIZE",        \
	  "sample: record one allocation per this many bytes on average (K, M, G); unset: exact")   \
	X("MEMTRACE_SAMPLE_SEED", MT_OPT_LONG, 0, 1, 1l << 62, sample_seed, "sample-seed", 0, "N",  \
	  "seed of the sampling draws, for reproducible runs; unset: random")                       \
	X("MEMTRACE_FAIL_AFTER", MT_OPT_LONG, 0, 1, 1l << 40, fail_after, NULL, 0, NULL,            \
	  "testing: memtrace's own memory requests fail after this many")                           \
	X("MEMTRACE_PYTHON", MT_OPT_BOOL, 1, 0, 1, python, "python", 0, "0|1",                      \
	  "in CPython (3.8 to 3.13): record each allocation's Python frames too")                   \
	X("MEMTRACE_PYTHON_PYMALLOC", MT_OPT_BOOL, 1, 0, 1, python_domains, "python-pymalloc", 0,   \
	  "0|1", "in CPython: record the objects pymalloc serves (the MEM and OBJ domains)")        \
	X("MEMTRACE_PYTHON_SKEW", MT_OPT_LONG, 0, 1, 4096, python_skew, NULL, 0, NULL,              \
	  "testing: shift the Python layout's offsets (memtrace's check must refuse it)")          \
	X("MEMTRACE_LEAK_SCAN", MT_OPT_INT, 1, 0, 2, leak_scan, "leak-scan", 0, "0|1|2",            \
	  "scan for pointers and class the live blocks as valgrind does (exact mode): 1 at the "    \
	  "end (exit, _exit, a terminating signal), 2 in every snapshot, 0 never")                  \
	X("MEMTRACE_LEAK_SCAN_TIMEOUT", MT_OPT_LONG, 60, 1, 3600, leak_scan_timeout,                \
	  "leak-scan-timeout", 0, "SECS",                                                           \
	  "seconds the leak scan may take before it is stopped (the snapshot is written without)")  \
	X("MEMTRACE_ONLY_PID", MT_OPT_LONG, 0, 1, 1l << 30, only_pid, NULL, 0, NULL,                \
	  "profile only the process of this pid; its children run untracked (memtrace run "        \
	  "--no-children sets it)")                                                                 \
	X("MEMTRACE_ALLOCATOR", MT_OPT_ALLOCATOR, 0, 0, 0, allocator, NULL, 0, NULL,                \
	  "the allocator behind the program's allocations: system or jemalloc")

/* Parses v as a value of type t within [min, max] (ms for seconds; a
 * signal number; 0 system, 1 jemalloc): true and *out, else false. A
 * directory is not parsed here. No allocation, no stdio: the library
 * runs it inside the program. */
bool mt_opt_parse(enum mt_opt_type t, long min, long max, const char *v, long *out);

/* What a value of type t must be, for a message: "a whole number",
 * "a size (K, M, G allowed)", ...; with the range to say after it in *lo..*hi
 * (min..max, or whole seconds for a duration), or *lo > *hi for none. */
const char *mt_opt_expect(enum mt_opt_type t, long min, long max, long *lo, long *hi);

#endif
