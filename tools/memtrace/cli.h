/* SPDX-License-Identifier: MIT */
/*
 * cli.h - declarations shared by the files of the memtrace analyzer, grouped
 * by the file that owns them. The analyzer may use stdio and malloc freely;
 * out of memory it exits with a message (mt_x* helpers).
 */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "snapread.h"

/* ---- main.c ---- */
/* Exit codes: 0 ok, 1 a usage error, 2 bad input (unreadable snapshot),
 * 3 a budget exceeded (memtrace check). */
enum { MT_EXIT_OK = 0, MT_EXIT_USAGE = 1, MT_EXIT_INPUT = 2, MT_EXIT_BUDGET = 3 };

/* ---- locate.c: what a command starts ---- */
/* The libmemtrace.so to preload (--lib, $MEMTRACE_LIB, the
 * build's or installation's own), NULL if none; COMMAND on PATH; the library
 * `--allocator NAME` preloads after it ("" for glibc), or a usage error. */
char *mt_find_lib(const char *given);
char *mt_find_cmd(const char *cmd);
const char *mt_allocator_lib(const char *cmd, const char *name);
/* The same without the error: NULL when not installed or not known; and
 * the environment that deploys NAME without memtrace. */
const char *mt_allocator_find(const char *name);
const char *mt_allocator_env(const char *name);

/* ---- proc.c: a live process and its snapshot directory ---- */
double mt_now(void); /* monotonic seconds */
/* A file whole (NUL-terminated), or NULL with errno set. */
char *mt_slurp(const char *path, size_t *len);
/* Whether libmemtrace.so is mapped in pid: 1, 0, or -1 if its maps cannot
 * be read. */
int mt_has_memtrace(pid_t pid);
/* The highest sequence number of pid's snapshots in dir; 0: none. */
unsigned mt_newest_seq(const char *dir, pid_t pid);
/* Sends sig and waits up to timeout seconds for a newer snapshot of pid
 * in dir: its sequence number, or 0 when none came (or pid is gone). */
unsigned mt_request_snapshot(const char *dir, pid_t pid, int sig, double timeout);

/* ---- main.c ---- */
void mt_die_usage(const char *cmd, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 2, 3)));
/* --native: snapshots are loaded with their native stacks alone, as if no
 * Python frame had been recorded (for C extension authors). */
extern bool mt_native_frames;
void *mt_xmalloc(size_t n);
void *mt_xrealloc(void *p, size_t n);
char *mt_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- progress.c: progress of long work on a terminal ---- */
typedef struct mt_progress {
	const char *verb, *file, *unit;
	uint64_t total, calls;
	double last;
	bool shown;
} mt_progress_t;

/* Starts a unit of work: "VERB FILE: N% (DONE of TOTAL UNIT)"; the strings
 * must outlive the work. */
void mt_progress_begin(mt_progress_t *p, const char *verb, const char *file, uint64_t total,
		       const char *unit);
/* Cheap enough for every step: the clock is read now and then. */
void mt_progress_step(mt_progress_t *p, uint64_t done);
/* Erases the progress line, if one was shown. */
void mt_progress_end(mt_progress_t *p);

/* ---- output.c: a command's output file, all of it or nothing ---- */
typedef struct mt_output {
	const char *cmd;    /* for messages: "export" */
	const char *path;   /* NULL: standard output */
	char *tmp, *target; /* the temp file, renamed to target when complete */
	FILE *f;
} mt_output_t;

/* Opens path ('-' or NULL: standard output) for writing; exits with status
 * 2 and one line when it cannot. */
void mt_output_open(mt_output_t *o, const char *cmd, const char *path);
/* Flushes and renames into place; or exits as mt_output_fail. */
void mt_output_commit(mt_output_t *o);
/* Removes the temp file, says "memtrace CMD: cannot write PATH: reason"
 * and exits with status 2. */
void mt_output_fail(mt_output_t *o, int err) __attribute__((noreturn));

/* ---- optflags.c: the library's options (src/options.h) as flags ---- */
#define MT_OPTFLAGS_MAX 32
typedef struct mt_optflags {
	const char *values[MT_OPTFLAGS_MAX]; /* by the table's row */
} mt_optflags_t;
/* Adds the flags' getopt entries at opts[*n] on (at most MT_OPTFLAGS_MAX)
 * and their short letters to shorts (room for 2 x MT_OPTFLAGS_MAX more). */
void mt_optflags_add(struct option *opts, size_t *n, char *shorts);
/* Whether getopt's c is one of them: then its value is checked by the
 * library's parser (a bad one: one line naming the flag, exit 1) and kept. */
bool mt_optflags_take(mt_optflags_t *f, const char *cmd, int c, const char *arg);
/* The value given for a variable (its flag's), or NULL; every value given
 * but the directory's, as its variable. */
const char *mt_optflags_value(const mt_optflags_t *f, const char *var);
void mt_optflags_each(const mt_optflags_t *f, void (*fn)(const char *var, const char *value,
							 void *arg),
		      void *arg);
/* Their --help rows. */
void mt_optflags_usage(FILE *out);

/* ---- symbolize.c: offline, from the modules recorded in the snapshot ---- */
typedef struct mt_sframe {
	const char *func;   /* demangled, or NULL */
	const char *file;   /* source file, or NULL */
	int line;	    /* 0 when unknown */
	const char *module; /* path of the module, or NULL */
	uint64_t offset;    /* address relative to the module's load bias */
	bool python;	    /* a Python frame: func, file and line; no module */
	bool jit;	    /* code outside every module: JIT-compiled; func is
			     * "[jit]" or "[jit] NAME" from the process's perf map */
} mt_sframe_t;

typedef struct mt_sym mt_sym_t;

mt_sym_t *mt_sym_open(const mt_snap_t *snap);
/* The source frames at a return address, innermost (inlined) first; at
 * least one. The pointer stays valid until mt_sym_close. */
int mt_sym_lookup(mt_sym_t *sym, uint64_t addr, const mt_sframe_t **out);
void mt_sym_close(mt_sym_t *sym);

/* ---- view.c: the options every report shares ---- */
enum mt_group {
	MT_GROUP_LINENO,
	MT_GROUP_FILE,
	MT_GROUP_FUNCTION,
	MT_GROUP_MODULE,
	MT_GROUP_TRACEBACK,
	MT_GROUP_TYPE /* Python objects by type (the snapshot's census) */
};
enum mt_sort { MT_SORT_SIZE, MT_SORT_COUNT, MT_SORT_ALLOCS };

typedef struct mt_view {
	enum mt_group group;
	int domain; /* MT_DOMAIN_*, or -1 for all */
	bool cumulative, all_frames, json;
	char **include, **exclude, **types;
	size_t ninclude, nexclude, ntypes;
	size_t limit; /* 0: all */
	enum mt_sort sort;
	bool sort_set; /* --sort given (by type, the default is count) */
} mt_view_t;

#define MT_VIEW_SHORTOPTS "n:g:d:h"
#define MT_VIEW_LONGOPTS                                                                           \
	{"limit", required_argument, NULL, 'n'}, {"group-by", required_argument, NULL, 'g'},       \
		{"domain", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},        \
		{"cumulative", no_argument, NULL, 'c'}, {"include", required_argument, NULL, 'I'}, \
		{"exclude", required_argument, NULL, 'X'}, {"all-frames", no_argument, NULL, 'A'}, \
		{"sort", required_argument, NULL, 'S'}, {"native", no_argument, NULL, 'N'},        \
		{"include-type", required_argument, NULL, 'T'},                                    \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}
#define MT_VIEW_HELP                                                                      \
	"  -n, --limit N         the top N groups (default 10; 0 for all)\n"              \
	"  -g, --group-by K      lineno (default), file, function, module, traceback\n"   \
	"                        or type (a Python program's live objects by type)\n"    \
	"      --cumulative      credit every frame of a stack, not only the first\n"     \
	"                        outside the allocator (not with traceback)\n"            \
	"  -d, --domain D        heap (default: the malloc family), mmap (anonymous\n"    \
	"                        mappings) or all\n"                                      \
	"      --include PAT     only stacks whose line matches PAT (fnmatch, on the\n"   \
	"                        file, function or module); repeatable\n"                 \
	"      --exclude PAT     drop stacks whose line matches PAT; repeatable\n"        \
	"      --all-frames      --include/--exclude match any frame of the stack\n"      \
	"      --sort K          size (default), count, or allocs (cumulative\n"          \
	"                        allocations, freed ones included)\n"                     \
	"      --include-type PAT  only a Python program's objects of the types whose\n" \
	"                        name matches PAT (fnmatch): which lines hold them\n"    \
	"      --native          native frames only: group a Python program's memory by\n" \
	"                        its C code (the interpreter, extensions), not its lines\n" \
	"      --json            machine-readable output with exact byte counts\n"        \
	"  -h, --help            this text\n"

void mt_view_init(mt_view_t *v);
/* Reads the shared options of a report command (--help prints usage and
 * exits); returns the index of the first operand. */
int mt_view_parse(mt_view_t *v, const char *cmd, const char *usage, int argc, char **argv);
/* Takes one of the shared options; false if c is not one of them. */
bool mt_view_option(mt_view_t *v, const char *cmd, int c, const char *arg);
/* Checks combinations once all options are read. */
void mt_view_check(mt_view_t *v, const char *cmd);
const char *mt_group_name(enum mt_group g);
const char *mt_group_plural(enum mt_group g);
/* The group's noun for n of them: "1 line", "2 lines". */
const char *mt_group_count(enum mt_group g, size_t n);
const char *mt_domain_name(int domain);

/*
 * The analyzer is a pipeline, one file a stage, and the commands (cmd-*.c)
 * only read their options and call the stages in order:
 *   series.c  load: a snapshot, a series in time order, the mixed-process warning
 *   frames.c  frames: one rule for the allocator's frames and a stack's own start
 *   filter.c  filter: the view's domain and patterns, suppressions, leak classes
 *   group.c   group: tracemalloc's statistics
 *   growth.c, memory.c  compute: growth over a series; the allocator's figures
 *   emit.c    emit: one text and one JSON form per shape
 * No command calls into another.
 */

/* ---- series.c: load ---- */
/* Loads a snapshot or exits with status 2 and the reader's one-line reason. */
void mt_load_or_die(const char *path, mt_snap_t *s);
/* Warns when two snapshots do not make a series of one process. */
void mt_warn_pair(const mt_snap_t *a, const mt_snap_t *b);

typedef struct mt_stat mt_stat_t;
struct mt_stat {
	char *key;	   /* what the line shows: "file.c:12", "module(func)" */
	mt_sframe_t where; /* the frame chosen to stand for the group */
	uint64_t size, count, allocs, alloc_bytes;
	char **trace; /* traceback grouping: the frames, formatted */
	size_t ntrace;
};

typedef struct mt_stats {
	mt_stat_t *v;
	size_t n, cap;
	struct mt_group_ix *index; /* key -> position (group.c) */
} mt_stats_t;


/* A snapshot loaded with its symbols and its groups. */
typedef struct mt_loaded {
	mt_snap_t snap;
	mt_sym_t *sym;
	mt_stats_t st;
} mt_loaded_t;

/* A series of snapshots in time order: all read, the first n analysed (the
 * running program's), each grouped by the view. */
typedef struct mt_series {
	mt_loaded_t *s;
	int n, all;
	const mt_stats_t **stats; /* n: &s[i].st */
	double seconds;		  /* from the first to the last analysed */
	bool mixed;		  /* they are not all of one process (warned) */
} mt_series_t;

/* Loads, orders, groups (with_dead: as mt_stats_build) and warns once when
 * the snapshots mix processes; a bad file ends the command (exit 2). */
void mt_series_load(mt_series_t *s, char **paths, int n, const mt_view_t *v, bool with_dead);
/* One line on stderr for each snapshot the series left out: once the
 * command's output is written. */
void mt_series_say_left_out(const char *cmd, const mt_series_t *s);
void mt_series_free(mt_series_t *s);

/* ---- frames.c: the frames of a stack ---- */
const char *mt_base_name(const char *path);
bool mt_is_allocator_frame(const mt_sframe_t *f);
/* Where a site's own code starts once the allocator's and the runtime's
 * frames are dropped from its leaf end: the first return address kept and
 * how many of its inlined frames, innermost first, go; a Python site starts
 * at its innermost Python frame. False (0, 0: the stack kept whole) for a
 * stack of such frames only. */
bool mt_frames_start(mt_sym_t *sym, const mt_snap_site_t *site, int *first, int *skip);
/* The frame that stands for a stack: what a lineno line names. */
mt_sframe_t mt_pick_frame(mt_sym_t *sym, const mt_snap_site_t *site);
/* Every frame of a site, inlined calls expanded, innermost first; the
 * pointers stay valid until mt_sym_close, out's array is reused. */
typedef struct mt_frames {
	const mt_sframe_t **v;
	size_t n, cap;
} mt_frames_t;
void mt_site_frames(mt_sym_t *sym, const mt_snap_site_t *site, mt_frames_t *out);

/* ---- filter.c: which sites a report keeps ---- */
/* Whether a site is in the view's domain and passes its filters. */
bool mt_site_passes(const mt_view_t *v, mt_sym_t *sym, const mt_snap_site_t *site);
/* LeakSanitizer-style suppressions: loads the built-in libc/loader ones
 * (when builtin) and the leak:PATTERN lines of each file; exits with
 * status 2 on a bad file. */
void mt_supps_load(bool builtin, const char *const *files, size_t nfiles);
/* Whether a loaded suppression covers the site; counts the hit. */
bool mt_supps_match(mt_sym_t *sym, const mt_snap_site_t *site);
typedef struct mt_supp {
	char *pat; /* as fnmatch pattern */
	char *text;
	uint64_t hits;
} mt_supp_t;
/* The loaded suppressions, the first nbuiltin of them built in. */
const mt_supp_t *mt_supps(size_t *n, size_t *nbuiltin);
void mt_supps_free(void);
/* The leak classes (MT_LEAK_CLASSES): name, memcheck's words, a report's
 * heading. */
extern const char *const mt_leak_class_name[], *const mt_leak_class_text[],
	*const mt_leak_class_head[];
/* The leak classes a --show/--count list names ("definite,indirect",
 * "all"), as a mask of 1 << MT_LEAK_*; exits with status 1 on a bad one. */
unsigned mt_leak_classes(const char *cmd, const char *opt, const char *list);
#define MT_LEAK_DEFAULT ((1u << MT_LEAK_DEFINITE) | (1u << MT_LEAK_INDIRECT))
/* Whether the snapshot holds a leak scan's classes. */
bool mt_leak_scanned(const mt_snap_t *s);
/* A site whose live figures are those of the classes in mask (with a
 * scan; as they are without one). */
mt_snap_site_t mt_leak_site(const mt_snap_t *s, const mt_snap_site_t *site, unsigned mask);
/* "definitely or indirectly lost" for a mask. Valid until the next call. */
const char *mt_leak_mask_text(unsigned mask);
/* One stderr line when a final snapshot has no scan, saying why: every
 * live block is then counted. */
void mt_leak_say_unscanned(const char *cmd, const mt_snap_t *s);
/* What suppressions took out of a report. */
typedef struct mt_suppressed {
	uint64_t bytes, blocks, sites;
} mt_suppressed_t;
/* Marks in keep (one per site) the sites a leak report or budget counts:
 * live, in the view and, when suppress, covered by no suppression (each
 * match counts as the suppression's hit; what they took goes to *sup). */
void mt_sites_kept(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v, bool suppress,
		   bool *keep, mt_suppressed_t *sup);
/* snap with the kept sites alone, each with the figures of the leak
 * classes in mask (mask 0: all its live blocks), those left with none
 * dropped; their sums in *bytes and *blocks. Only kept->sites is new: free
 * it alone. */
void mt_sites_of_classes(const mt_snap_t *snap, const bool *keep, unsigned mask, mt_snap_t *kept,
			 uint64_t *bytes, uint64_t *blocks);

/* ---- group.c: tracemalloc's statistics ---- */
/* Groups the sites of a snapshot: live ones, or all when with_dead. */
void mt_stats_build(const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v, bool with_dead,
		    mt_stats_t *out);
mt_stat_t *mt_stats_find(const mt_stats_t *st, const char *key);
void mt_stats_sort(mt_stats_t *st, enum mt_sort sort);
void mt_stats_free(mt_stats_t *st);

/* ---- growth.c: a series of groups ---- */
/* One group's live size over a series of snapshots. */
typedef struct mt_growth {
	const mt_stat_t *ref;	 /* the group in the latest snapshot that has it */
	uint64_t *size, *count;	 /* one per snapshot, 0 where the group is absent */
	int64_t net, count_diff; /* last minus first */
	double rate;		 /* net bytes per second over the series */
	int grew;		 /* intervals in which the size went up */
	bool steady;		 /* no interval holds more than 2/3 of the growth */
} mt_growth_t;

/* The series of every group in st[0..n-1], the stats of n snapshots in time
 * order spanning `seconds`, ranked as growth ranks them: groups that grew
 * first (steady before jumps, then by net growth), then the rest. The refs
 * point into st, valid while st is. Free with mt_growth_free. */
mt_growth_t *mt_growth_series(const mt_stats_t *const *st, int n, double seconds, size_t *count);
/* How many of a series' groups grew in every one of its n - 1 intervals
 * (0 for fewer than three snapshots). */
size_t mt_growth_every(const mt_growth_t *g, size_t ng, int n);
/* "steady", "jump", "growing" (two snapshots cannot tell), "flat" or
 * "shrinking". */
const char *mt_growth_kind(const mt_growth_t *g, int n);
void mt_growth_free(mt_growth_t *g, size_t count);

/* ---- memory.c: the allocator's figures ---- */
/* "Memory: live heap ...; allocator glibc holds ... in N arenas; RSS ...,
 * VMS ..." and an "Overhead:" line. */
void mt_print_memory(FILE *f, const mt_snap_t *s);
/* How those figures moved, and what that suggests: a leak (live heap
 * grows), fragmentation (held grows, live flat) or arena sprawl. */
void mt_print_memory_diff(FILE *f, const mt_snap_t *a, const mt_snap_t *b);
/* What the totals and the lines say, in one sentence (NULL without the
 * allocator's figures): `every` lines grew in every one of `intervals`
 * intervals (0 for a single pair). Valid until the next call. */
const char *mt_memory_verdict(const mt_snap_t *a, const mt_snap_t *b, size_t every, int intervals);

/* ---- emit.c: text and JSON ---- */
/* tracemalloc's _format_size: "97.7 KiB", "+22.1 MiB" with sign. */
void mt_format_size(char *buf, size_t cap, double size, bool sign);
/* Writes s as a JSON string literal (NULL as null). */
void mt_json_str(FILE *f, const char *s);
/* Writes n strings as a JSON array of them. */
void mt_json_strs(FILE *f, char *const *v, size_t n);
/* Copies s for display with control characters replaced by '?'. */
char *mt_printable(const char *s);
/* The first line of a group's key (a traceback key holds every frame). */
char *mt_stat_title(const mt_stat_t *st);
/* "Snapshot 3 of pid 42 (on signal), <date>, 1.5 s after start: /bin/x" */
void mt_print_snap_line(FILE *f, const char *label, const mt_snap_t *s);
/* The snapshot's identity and totals as JSON members (no braces). */
void mt_json_snap(FILE *f, const mt_snap_t *s);
double mt_snap_seconds(const mt_snap_t *s);
/* A group's tracemalloc line; with allocs, its allocations in total too. */
void mt_print_stat_line(const mt_stat_t *st, bool allocs);
/* A traceback group's frames, one indented line each (nothing otherwise). */
void mt_print_trace(const mt_stat_t *st);
/* A group's identity as JSON members (no braces): key, file, line,
 * function, module, kind and, grouped by traceback, traceback; every
 * command that lists groups gives these, then its own figures. */
void mt_json_group(FILE *f, const mt_stat_t *x);
/* "python", "jit" or "native". */
const char *mt_frame_kind_name(const mt_sframe_t *f);

/* "s" unless n is one: "1 block", "2 blocks". */
#define MT_PL(n) ((n) == 1 ? "" : "s")

/* ---- export-pprof.c ---- */
/* Writes the sites of snap that pass v as a gzip-compressed pprof profile to
 * f. Write errors are left in ferror(f); returns -1 only if zlib cannot
 * start (out of memory). */
int mt_export_pprof(FILE *f, const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v);

/* ---- the commands: cmd-*.c ---- */
int mt_cmd_top(int argc, char **argv);
int mt_cmd_allocators(int argc, char **argv);
int mt_cmd_attach(int argc, char **argv);
int mt_cmd_detach(int argc, char **argv);
int mt_cmd_show(int argc, char **argv);
int mt_cmd_diff(int argc, char **argv);
int mt_cmd_growth(int argc, char **argv);
int mt_cmd_leaks(int argc, char **argv);
int mt_cmd_run(int argc, char **argv);
int mt_cmd_check(int argc, char **argv);
int mt_cmd_export(int argc, char **argv);
int mt_cmd_report(int argc, char **argv);
int mt_cmd_dump(int argc, char **argv);

#endif
