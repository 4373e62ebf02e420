/* SPDX-License-Identifier: MIT */
/*
 * options.c - every MEMTRACE_* variable in one table, read once at start
 * with secure_getenv. A bad value warns once on stderr and keeps the
 * default: the program runs on, unaffected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

mt_options_t mt__opt;

enum opt_type {
	OPT_INT,
	OPT_LONG,
	OPT_SIZE,
	OPT_BOOL,
	OPT_DIR,
	OPT_SIGNAL,
	OPT_SECONDS,
	OPT_ALLOCATOR
};

struct opt {
	const char *name;
	enum opt_type type;
	long def, min, max;
	size_t off;
	const char *help;
};

#define OFF(f) offsetof(mt_options_t, f)

static const struct opt table[] = {
	{"MEMTRACE_DIR", OPT_DIR, 0, 0, 0, OFF(dir),
	 "snapshot directory (default: the working directory at start)"},
	{"MEMTRACE_DEPTH", OPT_INT, 16, 1, MT_MAX_FRAMES, OFF(depth),
	 "frames recorded per callsite"},
	{"MEMTRACE_AT_EXIT", OPT_BOOL, 1, 0, 1, OFF(at_exit),
	 "write a snapshot when the process exits or a terminating signal ends it"},
	{"MEMTRACE_VERBOSE", OPT_BOOL, 0, 0, 1, OFF(verbose), "print the active options at start"},
	{"MEMTRACE_SIGNAL", OPT_SIGNAL, SIGUSR1, 0, 0, OFF(signal),
	 "signal that writes a snapshot: a name (USR1, SIGUSR2), a number, or none"},
	{"MEMTRACE_INTERVAL", OPT_SECONDS, 0, 0, 1000000000, OFF(interval_ms),
	 "write a snapshot every this many seconds (decimals allowed; 0: never)"},
	{"MEMTRACE_ARENA_MAX", OPT_INT, 0, 1, 1024, OFF(arena_max),
	 "cap the allocator's arenas (glibc arena_max, jemalloc narenas); unset: leave"},
	{"MEMTRACE_SAMPLE", OPT_SIZE, 0, 1, 1l << 30, OFF(sample_bytes),
	 "sample: record one allocation per this many bytes on average (K, M, G); unset: exact"},
	{"MEMTRACE_SAMPLE_SEED", OPT_LONG, 0, 1, 1l << 62, OFF(sample_seed),
	 "seed of the sampling draws, for reproducible runs; unset: random"},
	{"MEMTRACE_FAIL_AFTER", OPT_LONG, 0, 1, 1l << 40, OFF(fail_after),
	 "testing: memtrace's own memory requests fail after this many"},
	{"MEMTRACE_PYTHON", OPT_BOOL, 1, 0, 1, OFF(python),
	 "in CPython (3.8 to 3.13): record each allocation's Python frames too"},
	{"MEMTRACE_PYTHON_PYMALLOC", OPT_BOOL, 1, 0, 1, OFF(python_domains),
	 "in CPython: record the objects pymalloc serves (the MEM and OBJ domains)"},
	{"MEMTRACE_PYTHON_SKEW", OPT_LONG, 0, 1, 4096, OFF(python_skew),
	 "testing: shift the Python layout's offsets (memtrace's check must refuse it)"},
	{"MEMTRACE_LEAK_SCAN", OPT_INT, 1, 0, 2, OFF(leak_scan),
	 "scan for pointers and class the live blocks as valgrind does (exact mode): 1 at the end "
	 "(exit, _exit, a terminating signal), 2 in every snapshot, 0 never"},
	{"MEMTRACE_LEAK_SCAN_TIMEOUT", OPT_LONG, 60, 1, 3600, OFF(leak_scan_timeout),
	 "seconds the leak scan may take before it is stopped (the snapshot is written without)"},
	{"MEMTRACE_ONLY_PID", OPT_LONG, 0, 1, 1l << 30, OFF(only_pid),
	 "profile only the process of this pid; its children run untracked (memtrace run "
	 "--no-children sets it)"},
	{"MEMTRACE_ALLOCATOR", OPT_ALLOCATOR, MT_ALLOC_SYSTEM, 0, 0, OFF(allocator),
	 "the allocator behind the program's allocations: system or jemalloc"},
};

/* Strict decimal parse of a whole string within [min, max]. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	long v = 0;
	bool neg = false;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (LONG_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, long *out)
{
	static const char *yes[] = {"1", "yes", "on", "true"};
	static const char *no[] = {"0", "no", "off", "false"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, true;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, true;
	}
	return false;
}

/* Shows at most 64 bytes of a bad value, so a huge one cannot flood stderr. */
static const char *clip(const char *v, char *buf, size_t cap)
{
	size_t n = strnlen(v, cap - 4);
	memcpy(buf, v, n);
	if (v[n])
		memcpy(buf + n, "...", 4);
	else
		buf[n] = '\0';
	return buf;
}

/* Signals a profiler may take: never the ones the kernel or a debugger
 * needs, nor those that stop or kill. */
static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2},	{"HUP", SIGHUP},   {"PWR", SIGPWR},
	{"URG", SIGURG},   {"WINCH", SIGWINCH}, {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM},
};

static bool parse_signal(const char *s, long *out)
{
	long n;
	if (strcasecmp(s, "none") == 0 || strcmp(s, "0") == 0)
		return *out = 0, true;
	if (parse_long(s, 1, 64, &n)) {
		if (n >= SIGRTMIN && n <= SIGRTMAX)
			return *out = n, true;
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (signals[i].sig == n)
				return *out = n, true;
		return false;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcasecmp(s, signals[i].name) == 0)
			return *out = signals[i].sig, true;
	return false;
}

/* "2", "0.5", "1.25": seconds with at most three decimals, as ms. */
static bool parse_seconds(const char *s, long max_ms, long *out)
{
	long whole = 0, frac = 0, scale = 100;
	const char *dot = strchr(s, '.');
	char buf[32];
	size_t n = dot ? (size_t)(dot - s) : strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!parse_long(buf, 0, max_ms / 1000, &whole) || buf[0] == '-' || buf[0] == '+')
		return false;
	if (dot) {
		const char *f = dot + 1;
		if (!*f || strlen(f) > 3)
			return false;
		for (; *f; f++, scale /= 10) {
			if (*f < '0' || *f > '9')
				return false;
			frac += (*f - '0') * scale;
		}
	}
	*out = whole * 1000 + frac;
	return true;
}

static char source[4096]; /* the attach's options, "NAME=value" lines */
static bool have_source;

void mt__options_source(const char *lines)
{
	mt__fmt(source, sizeof(source), "%s", lines ? lines : "");
	have_source = true;
}

/* An option's value: the attach's lines when given (the process's
 * environment is the program's, never read then), else the environment. */
static const char *value_of(const char *name)
{
	static char v[1024];
	if (!have_source)
		return secure_getenv(name);
	size_t n = strlen(name);
	for (const char *p = source; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > n && !strncmp(p, name, n) && p[n] == '=') {
			size_t vl = len - n - 1 < sizeof(v) - 1 ? len - n - 1 : sizeof(v) - 1;
			memcpy(v, p + n + 1, vl); /* mt__fmt has no %.*s */
			v[vl] = '\0';
			return v;
		}
		p += len + (nl != NULL);
	}
	return NULL;
}

static void set_default_dir(void)
{
	if (!getcwd(mt__opt.dir, sizeof(mt__opt.dir)))
		strcpy(mt__opt.dir, ".");
}

void mt__options_init(void)
{
	char shown[72];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct opt *o = &table[i];
		char *field = (char *)&mt__opt + o->off;
		const char *v = value_of(o->name);
		long n = o->def;

		switch (o->type) {
		case OPT_DIR:
			if (v && *v && *v != '/' && strlen(v) < sizeof(mt__opt.dir) - 1) {
				/* relative: anchor at the start-up directory, so a
				 * later chdir does not move the dumps */
				set_default_dir();
				size_t len = strlen(mt__opt.dir);
				if (len + 1 + strlen(v) < sizeof(mt__opt.dir)) {
					mt__opt.dir[len] = '/';
					strcpy(mt__opt.dir + len + 1, v);
					break;
				}
			} else if (v && *v == '/' && strlen(v) < sizeof(mt__opt.dir)) {
				strcpy(mt__opt.dir, v);
				break;
			}
			if (v)
				mt__warn("%s='%s' is not a usable directory name; using the "
					 "working directory",
					 o->name, clip(v, shown, sizeof(shown)));
			set_default_dir();
			break;
		case OPT_INT:
			if (v && !parse_long(v, o->min, o->max, &n)) {
				if (o->def)
					mt__warn("%s='%s' is not a whole number in %ld..%ld; using "
						 "%ld",
						 o->name, clip(v, shown, sizeof(shown)), o->min,
						 o->max, o->def);
				else
					mt__warn("%s='%s' is not a whole number in %ld..%ld; "
						 "ignored",
						 o->name, clip(v, shown, sizeof(shown)), o->min,
						 o->max);
				n = o->def;
			}
			*(int *)field = (int)n;
			break;
		case OPT_LONG:
		case OPT_SIZE: {
			char num[32];
			size_t len = v ? strlen(v) : 0;
			long mult = 1;
			bool ok = v && len > 0 && len < sizeof(num);
			if (ok) {
				memcpy(num, v, len + 1);
				char last = num[len - 1];
				if (o->type == OPT_SIZE &&
				    (last == 'K' || last == 'k' || last == 'M' || last == 'm' ||
				     last == 'G' || last == 'g')) {
					mult = last == 'K' || last == 'k'   ? 1l << 10
					       : last == 'M' || last == 'm' ? 1l << 20
									    : 1l << 30;
					num[--len] = '\0';
				}
				ok = len > 0 && parse_long(num, 1, o->max / mult, &n) &&
				     num[0] != '-';
				n *= mult;
			}
			if (v && (!ok || n < o->min || n > o->max)) {
				mt__warn("%s='%s' is not a %s in %ld..%ld; ignored", o->name,
					 clip(v, shown, sizeof(shown)),
					 o->type == OPT_SIZE ? "size (K, M, G allowed)"
							     : "whole number",
					 o->min, o->max);
				n = o->def;
			}
			*(long *)field = n;
			break;
		}
		case OPT_ALLOCATOR:
			if (v && strcmp(v, "system") == 0)
				n = MT_ALLOC_SYSTEM;
			else if (v && strcmp(v, "jemalloc") == 0)
				n = MT_ALLOC_JEMALLOC;
			else if (v)
				mt__warn("%s='%s' is not system or jemalloc; using system", o->name,
					 clip(v, shown, sizeof(shown)));
			*(int *)field = (int)n;
			break;
		case OPT_SIGNAL:
			if (v && !parse_signal(v, &n)) {
				mt__warn("%s='%s' is not a signal memtrace may use (USR1, USR2, "
					 "HUP, PWR, URG, "
					 "WINCH, PROF, VTALRM, a real-time signal number, or "
					 "none); using USR1",
					 o->name, clip(v, shown, sizeof(shown)));
				n = o->def;
			}
			*(int *)field = (int)n;
			break;
		case OPT_SECONDS:
			if (v && !parse_seconds(v, o->max, &n)) {
				mt__warn("%s='%s' is not a number of seconds (at most 3 decimals) "
					 "in 0..%ld; "
					 "no periodic snapshots",
					 o->name, clip(v, shown, sizeof(shown)), o->max / 1000);
				n = o->def;
			}
			*(long *)field = n;
			break;
		case OPT_BOOL:
			if (v && !parse_bool(v, &n)) {
				mt__warn("%s='%s' is not 0/1/yes/no/on/off/true/false; using %ld",
					 o->name, clip(v, shown, sizeof(shown)), o->def);
				n = o->def;
			}
			*(bool *)field = n != 0;
			break;
		}
	}

	if (mt__opt.verbose) {
		mt__warn("options: MEMTRACE_DIR=%s MEMTRACE_DEPTH=%d MEMTRACE_AT_EXIT=%d "
			 "MEMTRACE_SIGNAL=%d MEMTRACE_INTERVAL=%ldms MEMTRACE_ARENA_MAX=%d "
			 "MEMTRACE_ALLOCATOR=%s",
			 mt__opt.dir, mt__opt.depth, (int)mt__opt.at_exit, mt__opt.signal,
			 mt__opt.interval_ms, mt__opt.arena_max,
			 mt__opt.allocator == MT_ALLOC_JEMALLOC ? "jemalloc" : "system");
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
			mt__warn("  %s: %s", table[i].name, table[i].help);
	}
}
