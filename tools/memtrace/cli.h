/* SPDX-License-Identifier: MIT */
/*
 * cli.h - declarations shared by the files of the memtrace analyzer, grouped
 * by the file that owns them.
 */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "snapread.h"

/* ---- main.c ---- */
/* Exit codes: 0 ok, 1 a usage error, 2 bad input (unreadable snapshot). */
enum { MT_EXIT_OK = 0, MT_EXIT_USAGE = 1, MT_EXIT_INPUT = 2 };
void mt_die_usage(const char *cmd, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* Loads a snapshot or exits with status 2 and the reader's one-line reason. */
void mt_load_or_die(const char *path, mt_snap_t *s);

/* ---- symbolize.c: offline, from the modules recorded in the snapshot ---- */
typedef struct mt_sframe {
	const char *func;   /* demangled, or NULL */
	const char *file;   /* source file, or NULL */
	int line;           /* 0 when unknown */
	const char *module; /* path of the module, or NULL */
	uint64_t offset;    /* address relative to the module's load bias */
} mt_sframe_t;

typedef struct mt_sym mt_sym_t;

mt_sym_t *mt_sym_open(const mt_snap_t *snap);
/* The source frames at a return address, innermost (inlined) first; at
 * least one. The pointer stays valid until mt_sym_close. */
int mt_sym_lookup(mt_sym_t *sym, uint64_t addr, const mt_sframe_t **out);
void mt_sym_close(mt_sym_t *sym);

/* ---- stats.c: tracemalloc-style grouping and formatting ---- */
enum mt_group { MT_GROUP_LINENO, MT_GROUP_FILE, MT_GROUP_FUNCTION, MT_GROUP_TRACEBACK };

typedef struct mt_stat {
	char *key;        /* what the line shows: "file.c:12", "func (module)" */
	mt_sframe_t where; /* the frame chosen to stand for the group */
	uint64_t size, count, allocs, alloc_bytes;
	char **trace;     /* traceback grouping: the frames, formatted */
	size_t ntrace;
} mt_stat_t;

typedef struct mt_stats {
	mt_stat_t *v;
	size_t n;
} mt_stats_t;

/* Groups the live blocks of one domain (or -1 for all). */
int mt_stats_build(const mt_snap_t *snap, mt_sym_t *sym, enum mt_group group, int domain,
		   mt_stats_t *out);
void mt_stats_sort_by_size(mt_stats_t *st);
void mt_stats_free(mt_stats_t *st);
/* tracemalloc's _format_size: "97.7 KiB", "+22.1 MiB" with sign. */
void mt_format_size(char *buf, size_t cap, double size, bool sign);
/* Writes s as a JSON string literal. */
void mt_json_str(FILE *f, const char *s);
/* Copies s for display with control characters replaced by '?'. */
char *mt_printable(const char *s);

/* ---- cmd-*.c ---- */
int mt_cmd_show(int argc, char **argv);

#endif
