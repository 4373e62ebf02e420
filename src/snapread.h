/* SPDX-License-Identifier: MIT */
/*
 * snapread.h - reads a snapshot file (format.h) into memory, checking every
 * byte against the spec: a bad file yields one message naming the file, the
 * byte offset and the reason, never a crash, a hang or an allocation sized
 * from an untrusted field. Used by tools/memtrace; not part of the library.
 */
#ifndef MT_SNAPREAD_H
#define MT_SNAPREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

typedef struct mt_snap_module {
	uint64_t bias, lo, hi;
	uint32_t build_id_len;
	unsigned char build_id[MT_MAX_BUILD_ID];
	char *path;
} mt_snap_module_t;

/*
 * A site's frames as the analyzer shows them: native return addresses and
 * Python frames, innermost first, in one list. Where the eval loop ran
 * Python code, its native frames are replaced by the Python frames they
 * were running, and the interpreter's own call machinery between and
 * above them is left out; the native frames of C code (an extension, the
 * allocator's callers) stay where they ran. A Python frame there is
 * MT_FRAME_PY with an id for mt_snap_pyframe (the same file, function and
 * line have the same id in every snapshot read). `native` keeps the
 * recorded native stack alone.
 */
typedef struct mt_snap_site {
	uint32_t id;
	uint8_t domain, nframes;
#define X(name) uint64_t name;
	MT_SITE_COUNTERS(X) /* those the file holds; 0 for the others */
#undef X
	const uint64_t *frames; /* points into frame storage owned by the snap */
	int py_first;		/* index of the innermost Python frame, -1: none */
	uint8_t nnative;
	const uint64_t *native;
	bool has_leak; /* the leak scan classed its blocks */
	uint64_t leak_bytes[MT_LEAK_NCLASS], leak_blocks[MT_LEAK_NCLASS];
} mt_snap_site_t;

/* A Python frame: file name as the interpreter has it, function (the
 * qualified name from 3.11), line (0 when the table has none). */
typedef struct mt_pyframe {
	const char *file, *func;
	int line;
} mt_pyframe_t;


/* The live Python objects of one type a callsite allocated. */
typedef struct mt_snap_objtype {
	uint32_t site;	  /* a SITE id */
	const char *name; /* the type's tp_name */
	uint64_t count, bytes;
} mt_snap_objtype_t;

typedef struct mt_snap {
	char *file; /* the path it was read from */
	uint16_t major, minor;
	uint32_t pid, ppid, seq, reason;
	uint64_t wall_ns, mono_ns, start_wall_ns, start_mono_ns;
	uint32_t depth, page_size;
	uint64_t sample_bytes; /* 0: exact; else counters are estimates */
	uint64_t attach_wall_ns; /* memtrace attach's time; 0: tracked from the start */
	char *exe;
	char *cmdline; /* args separated by NUL */
	size_t cmdline_len;
	mt_totals_t totals;
	bool has_alloc; /* the allocator's figures */
	mt_alloc_stats_t alloc;
	size_t nmodules;
	mt_snap_module_t *modules;
	size_t nsites;
	mt_snap_site_t *sites;
	uint64_t *frames, *shown; /* as recorded; as shown (sites point here) */
	uint32_t py_version;	  /* major << 8 | minor, 0: no Python */
	uint64_t py_eval_lo, py_eval_hi;
	size_t ncodes; /* CODE records */
	uint32_t census;	 /* 0: no census; 1: taken; 2: not taken in time */
	uint64_t census_hold_ns; /* how long the census held the main thread */
	bool census_partial;	 /* it ran out of memory: objects left out */
	size_t nobjtypes;
	mt_snap_objtype_t *objtypes;
	/* the leak scan of a final snapshot (0: none recorded) */
	uint32_t scan_status; /* MT_SCAN_* */
	uint32_t scan_threads, scan_no_sp;
	uint64_t scan_ns, scan_blocks, scan_root_bytes;
	char *scan_note; /* "" when none */
} mt_snap_t;

/* Loads path into *s. Returns 0, or -1 with a one-line message in err
 * ("PATH: offset N: reason"). On failure *s holds nothing to free. */
int mt_snap_load(const char *path, mt_snap_t *s, char *err, size_t errlen);
/* The same from memory: name stands for the file in messages. */
int mt_snap_parse(const void *data, size_t size, const char *name, mt_snap_t *s, char *err,
		  size_t errlen);
void mt_snap_free(mt_snap_t *s);
/* Each record of a snapshot as read, in file order: its offset, type, its
 * description and fields (NULL for a type this reader does not know), and
 * last the END record (type MT_REC_END, no fields). The file is checked as
 * mt_snap_load checks it, and fn sees nothing of a file that fails. */
typedef void (*mt_snap_rec_fn)(void *arg, size_t off, uint16_t type, const mt_rec_desc_t *d,
			       const void *rec, uint32_t len);
int mt_snap_each_record(const char *path, mt_snap_rec_fn fn, void *arg, char *err,
			size_t errlen);
/* The Python frame behind a frame word of a site, NULL for a native one. */
const mt_pyframe_t *mt_snap_pyframe(uint64_t frame);
/* Makes every site's frames its native stack alone (for views of the
 * native code, --native). */
void mt_snap_use_native(mt_snap_t *s);
/* The text for a reason code ("at exit", ...). */
const char *mt_reason_text(uint32_t reason);
/* The text for a leak scan status ("done", "not done: ..."). */
const char *mt_scan_status_text(uint32_t status);

#endif
