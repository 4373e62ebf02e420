/* SPDX-License-Identifier: MIT */
/*
 * memtrace.h - the public API of libmemtrace.so, the memtrace heap profiler.
 *
 * The library is normally preloaded (LD_PRELOAD=libmemtrace.so ./app) and
 * needs no code change. A program that wants to take snapshots itself links
 * with -lmemtrace, or declares these functions weak and checks them against
 * NULL so that it runs unchanged without the profiler:
 *
 *     #pragma weak mt_snapshot
 *     if (mt_snapshot) mt_snapshot(NULL, 0);
 */
#ifndef MEMTRACE_H
#define MEMTRACE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMTRACE_VERSION_MAJOR 0
#define MEMTRACE_VERSION_MINOR 1

/*
 * Writes a snapshot now, as memtrace.<pid>.<seq>.snap in MEMTRACE_DIR,
 * atomically (a reader sees the whole file or none). When path is not NULL,
 * the file's full name is stored there, NUL-terminated and cut to pathlen.
 * Returns 0, or a negative errno: -ENOSYS when memtrace is not tracking (for
 * instance in a setuid program), -EPERM/-ENOENT/-ENOSPC... when the
 * directory refuses the file. Safe to call from any thread, not from a
 * signal handler.
 */
int mt_snapshot(char *path, size_t pathlen);

/* Sets the recorded peak (heap and mappings) to the current live size. */
void mt_reset_peak(void);

#ifdef __cplusplus
}
#endif

#endif
