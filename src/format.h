/* SPDX-License-Identifier: MIT */
/*
 * format.h - the memtrace snapshot format, version 1: the one spec that the
 * writer (src/snapshot.c, inside the profiled process) and the reader
 * (src/snapread.c, used by tools/memtrace) both follow.
 *
 * A snapshot is little-endian binary:
 *
 *   file header   16 bytes: "MEMTRACE" magic, u16 major, u16 minor, u32 flags
 *   records       each: u16 type, u16 flags (0), u32 len, then len bytes
 *   END record    type 0xffff, len 16: u64 file size (including this record),
 *                 u32 crc32 (zlib) of every byte before the END payload,
 *                 u32 "MTEN"
 *
 * Records, in the order the writer emits them (a reader must not rely on the
 * order except that META comes first and END last):
 *
 *   META    u32 pid, u32 ppid, u32 seq, u32 reason (mt_reason below),
 *           u64 wall_ns, u64 mono_ns (when the dump began),
 *           u64 start_wall_ns, u64 start_mono_ns (when tracking began),
 *           u32 depth (frames captured at most), u32 page_size,
 *           u32 len + exe path, u32 len + command line (NUL-separated args),
 *           (since 1.1) u64 sample mean: 0 when every allocation is recorded,
 *           else the mean bytes between samples (counters are estimates),
 *           (since 1.4) u64 attach wall_ns: when memtrace was attached to
 *           the running process (memtrace attach), 0 when it ran from the
 *           start; blocks from before an attach are not counted
 *   TOTALS  u32 n, then n u64 counters in MT_TOTALS order; a reader takes
 *           the ones it knows, so later minor versions may append
 *   MODULE  u64 bias (dlpi_addr), u64 lo, u64 hi (range of PT_LOAD
 *           segments, absolute), u32 build-id length (<= 64) + build id,
 *           u32 len + path
 *   ALLOC   (since 1.1) u32 n, then n u64 in MT_ALLOC_STATS order: the
 *           allocator's own figures and the process's memory (see below);
 *           u32 len + allocator name (MT_ALLOCATORS, or "unknown"); 1.4
 *           appends the process's peaks
 *   SITE    u32 id, u8 domain (mt_domain), u8 nframes, u16 0,
 *           MT_SITE_COUNTERS as u64 each, then nframes u64 frames: first
 *           the native ones, absolute return addresses, innermost (the
 *           allocating caller) first; memtrace's own frames are never
 *           recorded. Then (since 1.2) the Python frames of the allocating
 *           thread, innermost first, each tagged MT_FRAME_PY (below)
 *   PYTHON  (since 1.2) u32 version (major << 8 | minor), u32 0, u64 lo,
 *           u64 hi: the interpreter whose frames the sites carry, and the
 *           address range of its eval loop (_PyEval_EvalFrameDefault): a
 *           native frame in that range runs Python frames
 *   CODE    (since 1.2) u32 id, i32 first line, u8 line-table kind
 *           (pyline.h), u8 0, u16 0, u32 len + file name, u32 len +
 *           function (qualname from 3.11, name before), u32 len + line
 *           table: a code object as it was while a recorded frame ran it.
 *           Every id a SITE's Python frame names has its CODE record
 *   CENSUS  (since 1.2) u32 status (1: taken, 2: the interpreter's main
 *           thread ran no Python code while the dump waited), u32 flags
 *           (bit 0: partial, memtrace ran out of memory), u64 ns
 *           the main thread was held: the live Python objects by type
 *   OBJTYPE (since 1.2) u32 site id, u32 0, u64 objects, u64 bytes, u32 len
 *           + type name (tp_name): the live objects of one type a callsite
 *           allocated, as the census found them
 *   LEAKSCAN (since 1.3) u32 status (MT_SCAN_STATUS), u32 threads, u32
 *           threads whose stack pointer was not known, u32 0, u64 ns the
 *           scan took, u64 blocks scanned, u64 root bytes scanned, u32 len +
 *           a note (why it was not done, or what it could not see): the
 *           reachability scan of a final snapshot (leakscan.c)
 *   LEAK    (since 1.3) u32 site id, u32 0, then for each MT_LEAK_CLASSES
 *           class u64 bytes, u64 blocks: how the scan classed the live
 *           blocks of a heap callsite (sites with none have no record)
 *
 * Unknown record types are skipped by their length: a minor version may add
 * records. A different major version is refused. No record is longer than
 * MT_REC_MAX. Strings are not NUL-terminated in the file.
 */
#ifndef MT_FORMAT_H
#define MT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_MAGIC "MEMTRACE"
#define MT_MAGIC_LEN 8
#define MT_END_MAGIC 0x4e45544du /* "MTEN" little-endian */
#define MT_FORMAT_MAJOR 1
#define MT_FORMAT_MINOR 4
#define MT_FILE_HEADER_LEN 16
#define MT_REC_HEADER_LEN 8
#define MT_END_PAYLOAD_LEN 16
#define MT_REC_MAX (16u << 20)
#define MT_MAX_FRAMES 128
#define MT_MAX_BUILD_ID 64

enum mt_rec_type {
	MT_REC_META = 1,
	MT_REC_TOTALS = 2,
	MT_REC_MODULE = 3,
	MT_REC_SITE = 4,
	MT_REC_ALLOC = 5,
	MT_REC_PYTHON = 6,
	MT_REC_CODE = 7,
	MT_REC_CENSUS = 8,
	MT_REC_OBJTYPE = 9,
	MT_REC_LEAKSCAN = 10,
	MT_REC_LEAK = 11,
	MT_REC_END = 0xffff,
};

/*
 * A Python frame in a SITE's frame list: bit 63 set (no user-space return
 * address has it), the CODE record's id in bits 32-60, the byte offset of
 * the instruction running (a signed 32-bit number: negative before the
 * first) in bits 0-31. ENTRY marks the outermost frame of one run of the
 * eval loop (every frame up to 3.10; is_entry in 3.11; the frame below a
 * C-stack shim from 3.12); HIDDEN a frame pushed but not started (3.12+),
 * which tracemalloc leaves out: it counts for pairing with the native
 * stack, and is not shown.
 */
#define MT_FRAME_PY (1ull << 63)
#define MT_FRAME_PY_ENTRY (1ull << 62)
#define MT_FRAME_PY_HIDDEN (1ull << 61)
#define MT_FRAME_PY_CODE_MAX ((1u << 29) - 1)

static inline uint64_t mt_frame_py(uint32_t code, int32_t off, bool entry, bool hidden)
{
	return MT_FRAME_PY | (entry ? MT_FRAME_PY_ENTRY : 0) | (hidden ? MT_FRAME_PY_HIDDEN : 0) |
	       ((uint64_t)(code & MT_FRAME_PY_CODE_MAX) << 32) | (uint32_t)off;
}
static inline bool mt_frame_is_py(uint64_t f)
{
	return (f & MT_FRAME_PY) != 0;
}
static inline uint32_t mt_frame_py_code(uint64_t f)
{
	return (uint32_t)(f >> 32) & MT_FRAME_PY_CODE_MAX;
}
static inline int32_t mt_frame_py_off(uint64_t f)
{
	return (int32_t)(uint32_t)f;
}

enum mt_domain {
	MT_DOMAIN_HEAP = 0, /* malloc family */
	MT_DOMAIN_MMAP = 1, /* anonymous mmap/mremap */
	MT_DOMAIN_COUNT
};

/* Why a snapshot was written. */
#define MT_REASONS(X)                         \
	X(EXIT, 1, "at exit")                 \
	X(UEXIT, 2, "at _exit")               \
	X(API, 3, "on request (mt_snapshot)") \
	X(SIGNAL, 4, "on signal")             \
	X(INTERVAL, 5, "periodic")            \
	X(TERM, 6, "at a terminating signal")

enum mt_reason {
#define X(name, val, text) MT_REASON_##name = val,
	MT_REASONS(X)
#undef X
};

/* Whether a snapshot is a process's last: what it still held when it ended
 * (at exit, at _exit, or at a terminating signal it left at the default). */
static inline int mt_reason_final(unsigned reason)
{
	return reason == MT_REASON_EXIT || reason == MT_REASON_UEXIT || reason == MT_REASON_TERM;
}

/* The leak scan's classes, valgrind memcheck's, in file order: the name
 * the CLI and JSON use, memcheck's words, and the heading of a report's
 * entry (LeakSanitizer's where it has one). */
#define MT_LEAK_CLASSES(X)                                          \
	X(DEFINITE, definite, "definitely lost", "Direct leak of")     \
	X(INDIRECT, indirect, "indirectly lost", "Indirect leak of")   \
	X(POSSIBLE, possible, "possibly lost", "Possible leak of")     \
	X(REACHABLE, reachable, "still reachable", "Still reachable:")

enum mt_leak_class {
#define X(up, name, text, head) MT_LEAK_##up,
	MT_LEAK_CLASSES(X)
#undef X
	MT_LEAK_NCLASS
};

/* Whether the scan was done, or why not. */
#define MT_SCAN_STATUS(X)                                                      \
	X(DONE, 1, "done")                                                     \
	X(SAMPLED, 2, "not done: sampled mode records too few blocks to scan")  \
	X(BACKEND, 3, "not done: jemalloc mode keeps its metadata among the roots") \
	X(FAILED, 4, "failed")                                                 \
	X(OFF, 5, "not done: MEMTRACE_LEAK_SCAN=0")                                 \
	X(TRACED, 6, "not done: the process is traced (its debugger would see the scan's process)")

enum mt_scan_status {
#define X(name, val, text) MT_SCAN_##name = val,
	MT_SCAN_STATUS(X)
#undef X
};

#define MT_LEAKSCAN_FIXED_LEN (4 * 4 + 3 * 8)
#define MT_LEAK_LEN (8 + 16 * MT_LEAK_NCLASS)

/* Process totals, in file order. */
#define MT_TOTALS(X)        \
	X(heap_live_bytes)  \
	X(heap_live_count)  \
	X(heap_peak_bytes)  \
	X(heap_alloc_count) \
	X(heap_alloc_bytes) \
	X(heap_free_count)  \
	X(mmap_live_bytes)  \
	X(mmap_live_count)  \
	X(mmap_peak_bytes)  \
	X(mmap_alloc_count) \
	X(mmap_alloc_bytes) \
	X(mmap_free_count)  \
	X(sites)            \
	X(untracked_allocs) \
	X(fast_unwinds)     \
	X(unwind_mismatches)

typedef struct mt_totals {
#define X(name) uint64_t name;
	MT_TOTALS(X)
#undef X
} mt_totals_t;

#define MT_TOTALS_N (sizeof(mt_totals_t) / sizeof(uint64_t))

/* The allocator's figures and the process's memory, in file order. Bytes
 * unless named otherwise; a figure the allocator cannot give is 0. */
#define MT_ALLOC_STATS(X)                                            \
	X(arenas, "arenas in use")                                   \
	X(arena_max, "arena cap memtrace applied (0: none)")         \
	X(held, "bytes the allocator holds from the system")         \
	X(in_use, "bytes allocated, by the allocator's count")       \
	X(resident, "bytes the allocator keeps resident (jemalloc)")      \
	X(rss, "process resident set size")                          \
	X(vms, "process virtual size")                               \
	X(anon_maps, "anonymous mappings")                           \
	X(anon_bytes, "bytes in anonymous mappings")                 \
	X(anon_64m, "64 MiB regions (glibc arena heaps) among them") \
	X(anon_1m, "anonymous mappings of 1 MiB or more")                 \
	X(vms_peak, "process virtual size at its peak (VmPeak, since 1.4)") \
	X(rss_peak, "process resident set size at its peak (VmHWM, since 1.4)")

/* The allocators memtrace knows behind its hooks, one row each: the name
 * the ALLOC record carries, the library a preload puts after libmemtrace.so
 * ("" for glibc, the system's) and its Debian package, the symbol that says
 * an object is that allocator and reads its figures, whether it has arenas
 * a cap limits (glibc arena_max, jemalloc narenas), and the environment
 * that deploys it without memtrace. A program whose malloc is none of these
 * is "unknown": its figures are left out, never guessed. */
#define MT_ALLOCATORS(X)                                                                    \
	X(GLIBC, "glibc", "", "libc6", "mallinfo2", 1, "")                                  \
	X(JEMALLOC, "jemalloc", "libjemalloc.so.2", "libjemalloc2", "mallctl", 1,           \
	  "LD_PRELOAD=libjemalloc.so.2")                                                    \
	X(TCMALLOC, "tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4",         \
	  "MallocExtension_GetNumericProperty", 0, "LD_PRELOAD=libtcmalloc_minimal.so.4")   \
	X(MIMALLOC, "mimalloc", "libmimalloc.so.2", "libmimalloc2.0", "mi_process_info", 0, \
	  "LD_PRELOAD=libmimalloc.so.2")

enum mt_allocator_id {
#define X(id, name, lib, pkg, probe, arenas, env) MT_ALLOCATOR_##id,
	MT_ALLOCATORS(X)
#undef X
	MT_ALLOCATOR_UNKNOWN
};

typedef struct mt_alloc_stats {
#define X(name, text) uint64_t name;
	MT_ALLOC_STATS(X)
#undef X
	char name[16];
} mt_alloc_stats_t;

#define MT_ALLOC_STATS_N ((sizeof(mt_alloc_stats_t) - 16) / sizeof(uint64_t))

/* Per-callsite counters, in file order. Sizes are as the program asked. */
#define MT_SITE_COUNTERS(X) \
	X(live_bytes)       \
	X(live_count)       \
	X(alloc_count)      \
	X(alloc_bytes)      \
	X(peak_bytes)

#define MT_SITE_FIXED_LEN (8 + 8 * 5)

/* The zlib crc32 polynomial; both sides use this one implementation. */
uint32_t mt__crc32(uint32_t crc, const void *buf, size_t len);

/* Little-endian stores and loads (x86-64 and aarch64 are little-endian). */
static inline void mt__put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}
static inline void mt__put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void mt__put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t mt__get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t mt__get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t mt__get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
