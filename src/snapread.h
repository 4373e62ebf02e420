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

typedef struct mt_snap_site {
	uint32_t id;
	uint8_t domain, nframes;
	uint64_t live_bytes, live_count, alloc_count, alloc_bytes, peak_bytes;
	const uint64_t *frames; /* points into frame storage owned by the snap */
} mt_snap_site_t;

typedef struct mt_snap {
	char *file; /* the path it was read from */
	uint16_t major, minor;
	uint32_t pid, ppid, seq, reason;
	uint64_t wall_ns, mono_ns, start_wall_ns, start_mono_ns;
	uint32_t depth, page_size;
	uint64_t sample_bytes; /* 0: exact; else counters are estimates */
	char *exe;
	char *cmdline; /* args separated by NUL */
	size_t cmdline_len;
	mt_totals_t totals;
	bool has_alloc; /* format 1.1: the allocator's figures */
	mt_alloc_stats_t alloc;
	size_t nmodules;
	mt_snap_module_t *modules;
	size_t nsites;
	mt_snap_site_t *sites;
	uint64_t *frames;
} mt_snap_t;

/* Loads path into *s. Returns 0, or -1 with a one-line message in err
 * ("PATH: offset N: reason"). On failure *s holds nothing to free. */
int mt_snap_load(const char *path, mt_snap_t *s, char *err, size_t errlen);
/* The same from memory: name stands for the file in messages. */
int mt_snap_parse(const void *data, size_t size, const char *name, mt_snap_t *s, char *err,
		  size_t errlen);
void mt_snap_free(mt_snap_t *s);
/* The text for a reason code ("at exit", ...). */
const char *mt_reason_text(uint32_t reason);

#endif
