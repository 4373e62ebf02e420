/* SPDX-License-Identifier: MIT */
/*
 * hooks.h - every C symbol libmemtrace.so interposes, once, as X-macro
 * tables. From them come the functions the hooks forward to (the backend
 * struct in internal.h, struct mt_real in hook.h), their resolution and its
 * failure message (hook.c), the symbols an attach patches (attach.c), the
 * analyzer's allocator entry points (tools/memtrace/frames.c) and the names
 * the tests expect exported (MT_HOOK_NAMES, read by tests/meson.build).
 *
 * Invariants: the entry points themselves are written by hand in hook.c,
 * each with the signature of its row here (hook.c checks each row against
 * libc's own declaration at compile time); a row's order is the order of
 * the fields it makes. Only macros: this header needs no other, and the CLI
 * may include it.
 *
 * Not here: C++'s twenty operators, whose table (cxx.c: MT_CXX_NEW,
 * MT_CXX_DELETE) pairs each throwing new with its nothrow twin and that
 * twin's arguments, a shape no other row has; and CPython's allocator
 * domains, which are installed through PyMem_SetAllocator (pyalloc.c),
 * not interposed by name.
 */
#ifndef MT_HOOKS_H
#define MT_HOOKS_H

/* A row's need: without a REQUIRED function memtrace cannot forward the
 * program's calls at all (hook.c says so and ends the process, as it
 * always has); an OPTIONAL one missing fails only its own calls. */
#define MT_REQUIRED 1
#define MT_OPTIONAL 0

/* X(name, return type, parameter types, need): the malloc family, the
 * functions of a backend (mt_backend_t: the system's, next in the chain, or
 * jemalloc's). Tracked calls go to the backend, the rest to the system. */
#define MT_HOOKS_MALLOC(X)                                             \
	X(malloc, void *, (size_t), MT_REQUIRED)                       \
	X(free, void, (void *), MT_REQUIRED)                           \
	X(calloc, void *, (size_t, size_t), MT_REQUIRED)               \
	X(realloc, void *, (void *, size_t), MT_REQUIRED)              \
	X(posix_memalign, int, (void **, size_t, size_t), MT_OPTIONAL) \
	X(aligned_alloc, void *, (size_t, size_t), MT_OPTIONAL)        \
	X(memalign, void *, (size_t, size_t), MT_OPTIONAL)             \
	X(valloc, void *, (size_t), MT_OPTIONAL)                       \
	X(pvalloc, void *, (size_t), MT_OPTIONAL)                      \
	X(malloc_usable_size, size_t, (void *), MT_OPTIONAL)

/* X(name, the row it is served through): entry points of the malloc family
 * with no function of their own to forward to. */
#define MT_HOOKS_MALLOC_ALIASES(X) \
	X(reallocarray, realloc)   \
	X(cfree, free)

/* X(name, return type, parameter types, need): the mmap family; anonymous
 * mappings are the mmap domain. Always the system's. */
#define MT_HOOKS_MMAP(X)                                                     \
	X(mmap, void *, (void *, size_t, int, int, int, off_t), MT_REQUIRED) \
	X(munmap, int, (void *, size_t), MT_REQUIRED)                        \
	X(mremap, void *, (void *, size_t, size_t, int, ...), MT_OPTIONAL)

#define MT_HOOKS_MMAP_ALIASES(X) X(mmap64, mmap)

/* X(name, return type, parameter types, need): the process's end (a
 * snapshot before it) and its signal handlers (memtrace's snapshot signal
 * stays the program's: trigger.c). */
#define MT_HOOKS_PROCESS(X)                                                                 \
	X(_exit, void, (int), MT_OPTIONAL)                                                  \
	X(_Exit, void, (int), MT_OPTIONAL)                                                  \
	X(sigaction, int, (int, const struct sigaction *, struct sigaction *), MT_OPTIONAL) \
	X(signal, sighandler_t, (int, sighandler_t), MT_OPTIONAL)                           \
	X(sysv_signal, sighandler_t, (int, sighandler_t), MT_OPTIONAL)

#define MT_HOOKS_PROCESS_ALIASES(X) X(bsd_signal, signal)

/* X(name, parameters, arguments): changes of the process's ids, around
 * which memtrace's thread steps aside (hook.c says why). Each returns int
 * and is looked up at its first call, never required. */
#define MT_ID_CHANGES(X)                                       \
	X(setuid, (uid_t u), (u))                              \
	X(setgid, (gid_t g), (g))                              \
	X(seteuid, (uid_t u), (u))                             \
	X(setegid, (gid_t g), (g))                             \
	X(setreuid, (uid_t r, uid_t e), (r, e))                \
	X(setregid, (gid_t r, gid_t e), (r, e))                \
	X(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))   \
	X(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))   \
	X(setgroups, (size_t n, const gid_t *list), (n, list)) \
	X(initgroups, (const char *user, gid_t g), (user, g))  \
	X(unshare, (int flags), (flags))                       \
	X(setns, (int fd, int nstype), (fd, nstype))

/* Every name above, separated by spaces: what libmemtrace.so must export
 * (besides include/memtrace.h's API and C++'s operators). */
#define MT_HOOK_NAME_(name, ...) name
/* clang-format off */
#define MT_HOOK_NAMES                                                           \
	MT_HOOKS_MALLOC(MT_HOOK_NAME_) MT_HOOKS_MALLOC_ALIASES(MT_HOOK_NAME_)   \
	MT_HOOKS_MMAP(MT_HOOK_NAME_) MT_HOOKS_MMAP_ALIASES(MT_HOOK_NAME_)       \
	MT_HOOKS_PROCESS(MT_HOOK_NAME_) MT_HOOKS_PROCESS_ALIASES(MT_HOOK_NAME_) \
	MT_ID_CHANGES(MT_HOOK_NAME_)
/* clang-format on */

#endif
