/* SPDX-License-Identifier: MIT */
/*
 * format.h - the memtrace snapshot format, version 2: the one spec that the
 * writer (src/snapshot.c, inside the profiled process), the reader
 * (src/snapread.c, used by tools/memtrace) and `memtrace dump` (every
 * record as JSON, and this spec as text with --spec) all follow. Each
 * record's fields are one list below (MT_RECORDS and its MT_*_FIELDS): the
 * writer encodes, the reader decodes and the dump prints from that list and
 * nothing else (src/format.c).
 *
 * A snapshot is little-endian binary:
 *
 *   file header   16 bytes: "MEMTRACE" magic, u16 major, u16 minor, u32 flags
 *   records       each: u16 type, u16 flags (0), u32 len, then len bytes:
 *                 the record's fields in the order of its list, packed
 *   END record    type 0xffff, len 16: u64 file size (including this record),
 *                 u32 crc32 (zlib) of every byte before the END payload,
 *                 u32 "MTEN"
 *
 * Field kinds: u8, u32, i32, u64 as they say; str: u32 length, then that
 * many bytes of text (not NUL-terminated); bin: the same, of bytes that are
 * no text; u64s: u32 count, then that many u64.
 *
 * Versions. A minor version may append fields to the end of any record
 * (each field names the minor that added it: a reader takes a record that
 * ends before such a field as holding 0 or "" there, and skips bytes past
 * the fields it knows), append values to a u64s field (a SITE's counters,
 * the TOTALS: a reader takes the ones it knows), add record types (skipped
 * by their length) and add frame kinds (below). Anything else is a new
 * major version; a reader refuses a major it does not know, with one line
 * saying which versions it reads. Version 1 (memtrace 0.1 before
 * 2026-12-07) is refused by this reader: its SITE record had fixed-size
 * counters and a frame count that could not grow.
 *
 * META comes first and END last; a reader relies on no other order. No
 * record is longer than MT_REC_MAX.
 */
#ifndef MT_FORMAT_H
#define MT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_MAGIC "MEMTRACE"
#define MT_MAGIC_LEN 8
#define MT_END_MAGIC 0x4e45544du /* "MTEN" little-endian */
#define MT_FORMAT_MAJOR 2
#define MT_FORMAT_MINOR 0
#define MT_FILE_HEADER_LEN 16
#define MT_REC_HEADER_LEN 8
#define MT_END_PAYLOAD_LEN 16
#define MT_REC_MAX (16u << 20)
#define MT_MAX_FRAMES 128
#define MT_MAX_BUILD_ID 64


/*
 * A frame word in a SITE's frames, tagged by its kind. Bit 63 clear: a
 * native return address (no user-space address has it). Bit 63 set: an
 * interpreter frame, its kind in bits 59-62:
 *
 *   kind 0, Python: the CODE record's id in bits 32-56, the byte offset of
 *   the instruction running (a signed 32-bit number: negative before the
 *   first) in bits 0-31. ENTRY (bit 58) marks the outermost frame of one
 *   run of the eval loop (every frame up to 3.10; is_entry in 3.11; the
 *   frame below a C-stack shim from 3.12); HIDDEN (bit 57) a frame pushed
 *   but not started (3.12+), which tracemalloc leaves out: it counts for
 *   pairing with the native stack, and is not shown.
 *
 * A later minor version may add kinds; a reader leaves out the frames of a
 * kind it does not know. A site's native frames come first, innermost (the
 * allocating caller) first, then its interpreter frames, innermost first;
 * memtrace's own frames are never recorded.
 */
#define MT_FRAME_PY (1ull << 63)
#define MT_FRAME_KIND_SHIFT 59
#define MT_FRAME_KIND_MASK (15ull << MT_FRAME_KIND_SHIFT)
#define MT_FRAME_KIND_PY 0
#define MT_FRAME_PY_ENTRY (1ull << 58)
#define MT_FRAME_PY_HIDDEN (1ull << 57)
#define MT_FRAME_PY_CODE_MAX ((1u << 25) - 1)

static inline uint64_t mt_frame_py(uint32_t code, int32_t off, bool entry, bool hidden)
{
	return MT_FRAME_PY | (entry ? MT_FRAME_PY_ENTRY : 0) | (hidden ? MT_FRAME_PY_HIDDEN : 0) |
	       ((uint64_t)(code & MT_FRAME_PY_CODE_MAX) << 32) | (uint32_t)off;
}
/* An interpreter frame (bit 63), of any kind. */
static inline bool mt_frame_is_tagged(uint64_t f)
{
	return (f & MT_FRAME_PY) != 0;
}
static inline unsigned mt_frame_kind(uint64_t f)
{
	return (unsigned)((f & MT_FRAME_KIND_MASK) >> MT_FRAME_KIND_SHIFT);
}
/* A Python frame: tagged, of kind 0. */
static inline bool mt_frame_is_py(uint64_t f)
{
	return (f & (MT_FRAME_PY | MT_FRAME_KIND_MASK)) == MT_FRAME_PY;
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
	X(vms_peak, "process virtual size at its peak (VmPeak)") \
	X(rss_peak, "process resident set size at its peak (VmHWM)")

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


enum mt_site_counter {
#define X(name) MT_SITE_##name,
	MT_SITE_COUNTERS(X)
#undef X
	MT_SITE_NCOUNTERS
};

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


/* ---- the records ---- */

/* A str field: bytes, not NUL-terminated. Written from the process's own
 * strings; read, it points into the file's bytes (valid while they are). */
typedef struct mt_str {
	const char *p;
	uint32_t len;
} mt_str_t;

/* A u64s field: written from v; read, raw points at n little-endian u64 in
 * the file's bytes (mt_u64s_at reads either). */
typedef struct mt_u64s {
	const uint64_t *v;
	const unsigned char *raw;
	uint32_t n;
} mt_u64s_t;

static inline uint64_t mt_u64s_at(const mt_u64s_t *a, uint32_t i)
{
	return a->raw ? mt__get_u64(a->raw + 8 * (size_t)i) : a->v[i];
}

/* Field kinds: X(kind, bytes before its data); MT_F_CTYPE_<kind> (below)
 * is the C type a record's struct holds it as. */
#define MT_FIELD_KINDS(X) \
	X(u8, 1)          \
	X(u32, 4)         \
	X(i32, 4)         \
	X(u64, 8)         \
	X(str, 4)         \
	X(bin, 4)         \
	X(u64s, 4)

enum mt_field_kind {
#define X(kind, fixed) MT_F_##kind,
	MT_FIELD_KINDS(X)
#undef X
};

/*
 * The records: X(NAME, type code, struct name, what one holds). Each
 * record's fields are MT_<NAME>_FIELDS(F, R): F(R, kind, name, minor, what)
 * in file order, where minor is the version that appended the field (0:
 * there since 2.0). The reader refuses a record too short for its minor-0
 * fields and takes the rest as present or not.
 */
#define MT_RECORDS(X)                                                                    \
	X(META, 1, meta, "the process and the moment: always the first record")         \
	X(TOTALS, 2, totals, "the process's totals")                                    \
	X(MODULE, 3, module, "a loaded object (dl_iterate_phdr): one per object")       \
	X(SITE, 4, site, "a callsite (a deduplicated stack): one per callsite")         \
	X(ALLOC, 5, alloc, "the allocator's own figures and the process's memory")      \
	X(PYTHON, 6, python, "the CPython interpreter whose frames the sites carry")     \
	X(CODE, 7, code,                                                                 \
	  "a Python code object as it was while a recorded frame ran it; every code a "  \
	  "SITE's frame names has one")                                                  \
	X(CENSUS, 8, census, "the live Python objects by type: the census's status")    \
	X(OBJTYPE, 9, objtype,                                                           \
	  "the live objects of one type a callsite allocated, as the census found them") \
	X(LEAKSCAN, 10, leakscan, "the reachability scan of a final snapshot (leakscan.c)") \
	X(LEAK, 11, leak, "how the scan classed one heap callsite's live blocks (sites with none " \
	  "have no record)")

#define MT_META_FIELDS(F, R)                                                               \
	F(R, u32, pid, 0, "process id")                                                     \
	F(R, u32, ppid, 0, "parent process id")                                             \
	F(R, u32, seq, 0, "the snapshot's number in its process, from 1")                  \
	F(R, u32, reason, 0, "why it was written (MT_REASONS)")                             \
	F(R, u64, wall_ns, 0, "when the dump began, CLOCK_REALTIME ns")                     \
	F(R, u64, mono_ns, 0, "when the dump began, CLOCK_MONOTONIC ns")                    \
	F(R, u64, start_wall_ns, 0, "when tracking began, CLOCK_REALTIME ns")               \
	F(R, u64, start_mono_ns, 0, "when tracking began, CLOCK_MONOTONIC ns")              \
	F(R, u32, depth, 0, "native frames captured at most")                               \
	F(R, u32, page_size, 0, "the system's page size")                                   \
	F(R, str, exe, 0, "the executable's path")                                          \
	F(R, str, cmdline, 0, "the command line, arguments separated by NUL")               \
	F(R, u64, sample_mean, 0,                                                           \
	  "0 when every allocation is recorded, else the mean bytes between samples "       \
	  "(the counters are estimates)")                                                   \
	F(R, u64, attach_wall_ns, 0,                                                        \
	  "when memtrace attach loaded memtrace into the running process, 0 when it ran "   \
	  "from the start (blocks from before an attach are not counted)")

#define MT_TOTALS_FIELDS(F, R) F(R, u64s, counters, 0, "MT_TOTALS, in that order")

#define MT_MODULE_FIELDS(F, R)                                                  \
	F(R, u64, bias, 0, "load bias (dlpi_addr)")                              \
	F(R, u64, lo, 0, "lowest address of its PT_LOAD segments")              \
	F(R, u64, hi, 0, "end of its PT_LOAD segments")                          \
	F(R, bin, build_id, 0, "its GNU build id (at most MT_MAX_BUILD_ID bytes)") \
	F(R, str, path, 0, "its path")

#define MT_SITE_FIELDS(F, R)                                                           \
	F(R, u32, id, 0, "the callsite's id, unique in the snapshot, never 0")          \
	F(R, u8, domain, 0, "0: the malloc family, 1: anonymous mmap/mremap")          \
	F(R, u64s, counters, 0, "MT_SITE_COUNTERS, in that order")                     \
	F(R, u64s, frames, 0, "frame words (MT_FRAME_*), at most MT_MAX_FRAMES")

#define MT_ALLOC_FIELDS(F, R)                                          \
	F(R, u64s, figures, 0, "MT_ALLOC_STATS, in that order")         \
	F(R, str, allocator, 0, "MT_ALLOCATORS' name, or \"unknown\"")

#define MT_PYTHON_FIELDS(F, R)                                                        \
	F(R, u32, version, 0, "major << 8 | minor")                                    \
	F(R, u64, eval_lo, 0, "start of the eval loop (_PyEval_EvalFrameDefault)")     \
	F(R, u64, eval_hi, 0, "its end: a native frame in that range runs Python frames")

#define MT_CODE_FIELDS(F, R)                                                      \
	F(R, u32, id, 0, "the id frames name, 1 to MT_FRAME_PY_CODE_MAX")          \
	F(R, i32, first_line, 0, "co_firstlineno")                                 \
	F(R, u8, line_kind, 0, "the line table's format (pyline.h)")               \
	F(R, str, file, 0, "co_filename")                                          \
	F(R, str, function, 0, "co_qualname from 3.11, co_name before")            \
	F(R, bin, line_table, 0, "the line table, as the interpreter has it")

#define MT_CENSUS_FIELDS(F, R)                                                          \
	F(R, u32, status, 0,                                                             \
	  "1: taken, 2: the interpreter's main thread ran no Python code while the dump " \
	  "waited")                                                                      \
	F(R, u32, flags, 0, "bit 0: partial, memtrace ran out of memory")               \
	F(R, u64, hold_ns, 0, "how long the census held the main thread")

#define MT_OBJTYPE_FIELDS(F, R)                         \
	F(R, u32, site, 0, "the SITE's id")              \
	F(R, u64, objects, 0, "live objects of the type") \
	F(R, u64, bytes, 0, "their bytes")                \
	F(R, str, type, 0, "the type's tp_name")

#define MT_LEAKSCAN_FIELDS(F, R)                                                   \
	F(R, u32, status, 0, "MT_SCAN_STATUS")                                      \
	F(R, u32, threads, 0, "threads whose stacks were roots")                    \
	F(R, u32, threads_no_sp, 0, "threads whose stack pointer was not known")    \
	F(R, u64, ns, 0, "how long the scan took")                                  \
	F(R, u64, blocks, 0, "blocks scanned")                                      \
	F(R, u64, root_bytes, 0, "root bytes scanned")                              \
	F(R, str, note, 0, "why it was not done, or what it could not see")

#define MT_LEAK_FIELDS(F, R)                    \
	F(R, u32, site, 0, "the SITE's id")      \
	F(R, u64s, classes, 0,                   \
	  "for each MT_LEAK_CLASSES class, in that order: bytes, then blocks")

/* The type codes; END (0xffff) frames the file and is no record of the list. */
enum mt_rec_type {
#define X(up, code, low, what) MT_REC_##up = code,
	MT_RECORDS(X)
#undef X
	MT_REC_END = 0xffff,
};

/* One struct per record, mt_rec_meta_t ...: each kind's C type. */
#define MT_F_CTYPE_u8 uint8_t
#define MT_F_CTYPE_u32 uint32_t
#define MT_F_CTYPE_i32 int32_t
#define MT_F_CTYPE_u64 uint64_t
#define MT_F_CTYPE_str mt_str_t
#define MT_F_CTYPE_bin mt_str_t
#define MT_F_CTYPE_u64s mt_u64s_t
#define MT_F_MEMBER(R, kind, name, minor, what) MT_F_CTYPE_##kind name;
#define X(up, code, low, what) \
	typedef struct mt_rec_##low { MT_##up##_FIELDS(MT_F_MEMBER, ) } mt_rec_##low##_t;
MT_RECORDS(X)
#undef X

/* Room for any record's struct. */
typedef union mt_rec_any {
#define X(up, code, low, what) mt_rec_##low##_t low;
	MT_RECORDS(X)
#undef X
} mt_rec_any_t;

typedef struct mt_field {
	const char *name, *what;
	uint8_t kind, minor;
	uint16_t off; /* in the record's struct */
} mt_field_t;

typedef struct mt_rec_desc {
	const char *name, *what;
	uint16_t type;
	uint16_t nfields;
	const mt_field_t *fields;
	size_t size; /* of its struct */
} mt_rec_desc_t;

/* format.c: every record's description, in MT_RECORDS order. */
extern const mt_rec_desc_t mt_rec_descs[];
extern const size_t mt_rec_ndescs;
/* The description of a type code; NULL for END and unknown types. */
const mt_rec_desc_t *mt_rec_desc(uint16_t type);
/* The payload length of a record (without its 8-byte header). */
size_t mt_rec_len(const mt_rec_desc_t *d, const void *rec);
/* Writes a record, header and payload, through emit. No allocation and no
 * stdio: the library writes its snapshots with it. */
void mt_rec_put(const mt_rec_desc_t *d, const void *rec,
		void (*emit)(void *arg, const void *p, size_t n), void *arg);
/* Reads a record's payload of len bytes into *rec (strings and arrays point
 * into p). Returns 0, or -1 with *at the failing field's offset in the
 * payload, *field its description and *why one of "too short",
 * "runs past the record". */
int mt_rec_get(const mt_rec_desc_t *d, const unsigned char *p, size_t len, void *rec,
	       size_t *at, const mt_field_t **field, const char **why);
/* A field of a record struct. */
static inline const void *mt_rec_field(const void *rec, const mt_field_t *f)
{
	return (const char *)rec + f->off;
}

#endif
