/* SPDX-License-Identifier: MIT */
/*
 * options.c - the one option parser (src/optparse.c: mt_opt_parse,
 * mt_opt_expect) value by value, the MT_OPTIONS table's invariants, and the
 * library's loader (src/options.c): MEMTRACE_* set in the environment (or
 * given as an attach's lines) land in mt__opt, and a bad value keeps the
 * default and warns once on stderr, naming the variable (fd 2 is captured
 * through a pipe to read the warnings).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "options.h"
#include "unit.h"

static int checks;

#define CHECK(cond, ...)                   \
	do {                               \
		checks++;                  \
		EXPECT(cond, __VA_ARGS__); \
	} while (0)

static const char *type_name(enum mt_opt_type t)
{
	static const char *names[] = {"INT", "LONG",   "SIZE",	  "BOOL",
				      "DIR", "SIGNAL", "SECONDS", "ALLOCATOR"};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

/* v is taken as want */
static void ok_at(int line, enum mt_opt_type t, long min, long max, const char *v, long want)
{
	long out = -12345;
	bool r = mt_opt_parse(t, min, max, v, &out);
	checks++;
	if (!r || out != want) {
		fprintf(stderr, "FAIL %s:%d: %s [%ld, %ld] '%s': %s %ld, want %ld\n", __FILE__,
			line, type_name(t), min, max, v, r ? "took" : "refused", out, want);
		failures++;
	}
}

/* v is refused, *out untouched */
static void bad_at(int line, enum mt_opt_type t, long min, long max, const char *v)
{
	long out = -12345;
	bool r = mt_opt_parse(t, min, max, v, &out);
	checks++;
	if (r || out != -12345) {
		fprintf(stderr, "FAIL %s:%d: %s [%ld, %ld] '%s': %s, out %ld, want refused\n",
			__FILE__, line, type_name(t), min, max, v, r ? "taken" : "refused", out);
		failures++;
	}
}
#define OK(t, min, max, v, want) ok_at(__LINE__, MT_OPT_##t, min, max, v, want)
#define BAD(t, min, max, v) bad_at(__LINE__, MT_OPT_##t, min, max, v)

/* the same value refused with every junk around it */
static void bad_spacing(int line, enum mt_opt_type t, long min, long max, const char *good)
{
	char buf[64];
	const char *fmts[] = {" %s", "%s ", "\t%s", "%s\n", " %s "};
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		snprintf(buf, sizeof(buf), fmts[i], good);
		bad_at(line, t, min, max, buf);
	}
}
#define BAD_SPACING(t, min, max, v) bad_spacing(__LINE__, MT_OPT_##t, min, max, v)

static void test_int(void)
{
	OK(INT, 1, MT_MAX_FRAMES, "1", 1);     /* min, inclusive */
	OK(INT, 1, MT_MAX_FRAMES, "128", 128); /* max, inclusive */
	OK(INT, 1, MT_MAX_FRAMES, "16", 16);
	BAD(INT, 1, MT_MAX_FRAMES, "0");   /* min - 1 */
	BAD(INT, 1, MT_MAX_FRAMES, "129"); /* max + 1 */
	BAD(INT, 1, MT_MAX_FRAMES, "-1");
	OK(INT, 1, MT_MAX_FRAMES, "+5", 5);
	OK(INT, 1, MT_MAX_FRAMES, "007", 7);
	BAD(INT, 1, MT_MAX_FRAMES, "-0"); /* 0 < min */
	OK(INT, 0, 2, "-0", 0);
	OK(INT, 0, 2, "+0", 0);
	OK(INT, -10, 10, "-10", -10);
	OK(INT, -10, 10, "-5", -5);
	BAD(INT, -10, 10, "-11");
	BAD(INT, 1, MT_MAX_FRAMES, "");
	BAD(INT, 1, MT_MAX_FRAMES, "-");
	BAD(INT, 1, MT_MAX_FRAMES, "+");
	BAD(INT, 1, MT_MAX_FRAMES, "--5");
	BAD(INT, 1, MT_MAX_FRAMES, "+-5");
	BAD(INT, 1, MT_MAX_FRAMES, "5x");
	BAD(INT, 1, MT_MAX_FRAMES, "0x10");
	BAD(INT, 1, MT_MAX_FRAMES, "1e2");
	BAD(INT, 1, MT_MAX_FRAMES, "1.0");
	BAD(INT, 1, MT_MAX_FRAMES, "1K"); /* no suffix but for sizes */
	BAD(INT, 1, MT_MAX_FRAMES, "1 6");
	BAD_SPACING(INT, 1, MT_MAX_FRAMES, "16");
	/* the edge of a long, both ways */
	OK(INT, LONG_MIN, LONG_MAX, "9223372036854775807", LONG_MAX);
	OK(INT, LONG_MIN, LONG_MAX, "-9223372036854775807", -LONG_MAX);
	OK(INT, LONG_MIN, LONG_MAX, "+9223372036854775807", LONG_MAX);
	BAD(INT, LONG_MIN, LONG_MAX, "9223372036854775808");
	BAD(INT, LONG_MIN, LONG_MAX, "9223372036854775810");
	BAD(INT, LONG_MIN, LONG_MAX, "18446744073709551616");
	BAD(INT, LONG_MIN, LONG_MAX, "99999999999999999999999999");
	BAD(INT, LONG_MIN, LONG_MAX, "-99999999999999999999999999");
}

static void test_long(void)
{
	const long max = 1l << 40; /* MEMTRACE_FAIL_AFTER's range */
	OK(LONG, 1, max, "1", 1);
	OK(LONG, 1, max, "1099511627776", max);
	BAD(LONG, 1, max, "0");
	BAD(LONG, 1, max, "1099511627777");
	OK(LONG, 1, max, "+5", 5);
	BAD(LONG, 1, max, "-0");
	BAD(LONG, 1, max, "-5");
	BAD(LONG, 1, max, "");
	BAD(LONG, 1, max, "1K"); /* a count, not a size */
	BAD(LONG, 1, max, "1k");
	BAD(LONG, 1, max, "12abc");
	BAD(LONG, 1, max, "1.5");
	BAD_SPACING(LONG, 1, max, "42");
	/* a row's own min, as an INT's */
	OK(LONG, 0, 10, "0", 0);
	OK(LONG, 0, 10, "-0", 0);
	OK(LONG, -10, 10, "-10", -10);
	BAD(LONG, -10, 10, "-11");
	OK(LONG, 1, LONG_MAX, "9223372036854775807", LONG_MAX);
	BAD(LONG, 1, LONG_MAX, "9223372036854775808");
	BAD(LONG, 1, LONG_MAX, "92233720368547758070");
	/* 31 characters fit the parser's buffer, 32 do not */
	OK(LONG, 1, max, "0000000000000000000000000000001", 1);
	BAD(LONG, 1, max, "00000000000000000000000000000001");
}

static void test_size(void)
{
	const long max = 1l << 30; /* MEMTRACE_SAMPLE's range */
	OK(SIZE, 1, max, "1", 1);
	OK(SIZE, 1, max, "4096", 4096);
	OK(SIZE, 1, max, "1073741824", max);
	BAD(SIZE, 1, max, "1073741825");
	BAD(SIZE, 1, max, "0");
	OK(SIZE, 1, max, "1K", 1024);
	OK(SIZE, 1, max, "1k", 1024);
	OK(SIZE, 1, max, "64K", 64 << 10);
	OK(SIZE, 1, max, "4M", 4l << 20);
	OK(SIZE, 1, max, "4m", 4l << 20);
	OK(SIZE, 1, max, "1G", 1l << 30);
	OK(SIZE, 1, max, "1g", 1l << 30);
	OK(SIZE, 1, max, "1048576K", max);
	BAD(SIZE, 1, max, "1048577K");
	OK(SIZE, 1, max, "1024M", max);
	BAD(SIZE, 1, max, "1025M");
	BAD(SIZE, 1, max, "2G");
	OK(SIZE, 1, max, "+1K", 1024);
	BAD(SIZE, 1, max, "0K");
	BAD(SIZE, 1, max, "K");
	BAD(SIZE, 1, max, "-1K");
	BAD(SIZE, 1, max, "-0");
	BAD(SIZE, 1, max, "-1");
	BAD(SIZE, 1, max, "1KB");
	BAD(SIZE, 1, max, "1KK");
	BAD(SIZE, 1, max, "1T");
	BAD(SIZE, 1, max, "1B");
	BAD(SIZE, 1, max, "1.5M");
	BAD(SIZE, 1, max, "K1");
	BAD(SIZE, 1, max, "");
	BAD_SPACING(SIZE, 1, max, "1K");
	/* a min above one unit: the suffix counts */
	OK(SIZE, 4096, max, "4K", 4096);
	BAD(SIZE, 4096, max, "3K");
	BAD(SIZE, 4096, max, "4095");
	/* no size is negative, whatever the row's min */
	OK(SIZE, 0, max, "0", 0);
	BAD(SIZE, -10, max, "-1");
	/* overflow: the multiplied value must fit in a long */
	OK(SIZE, 1, LONG_MAX, "8589934591G", 8589934591l << 30);
	BAD(SIZE, 1, LONG_MAX, "8589934592G");
	OK(SIZE, 1, LONG_MAX, "8796093022207M", 8796093022207l << 20);
	BAD(SIZE, 1, LONG_MAX, "8796093022208M");
	OK(SIZE, 1, LONG_MAX, "9007199254740991K", 9007199254740991l << 10);
	BAD(SIZE, 1, LONG_MAX, "9007199254740992K");
	OK(SIZE, 1, LONG_MAX, "9223372036854775807", LONG_MAX);
	BAD(SIZE, 1, LONG_MAX, "9223372036854775808");
	BAD(SIZE, 1, LONG_MAX, "99999999999999999999G");
}

static void test_bool(void)
{
	const char *yes[] = {"1",  "yes", "YES",  "Yes",  "yEs", "on",
			     "ON", "On",  "true", "TRUE", "True"};
	const char *no[] = {"0", "no", "NO", "No", "off", "OFF", "Off", "false", "FALSE", "False"};
	const char *bad[] = {"",     "2",      "-1", "+1",  "01",    "00",   "y",
			     "n",    "t",      "f",  "tru", "truee", "yess", "of",
			     "offf", "enable", "ja", "1.0", "none",  "nope", "0x1"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		OK(BOOL, 0, 1, yes[i], 1);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		OK(BOOL, 0, 1, no[i], 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		BAD(BOOL, 0, 1, bad[i]);
	BAD_SPACING(BOOL, 0, 1, "yes");
	BAD_SPACING(BOOL, 0, 1, "1");
}

static void test_dir(void)
{
	/* a directory is not parsed here: options.c takes it as it is */
	BAD(DIR, 0, 0, "/tmp");
	BAD(DIR, 0, 0, "snaps");
	BAD(DIR, 0, 0, "");
}

static void test_signal(void)
{
	char buf[32];
	static const struct {
		const char *name;
		int sig;
	} may[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2},    {"HUP", SIGHUP},
		   {"PWR", SIGPWR},   {"URG", SIGURG},	    {"WINCH", SIGWINCH},
		   {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}};
	for (size_t i = 0; i < sizeof(may) / sizeof(may[0]); i++) {
		OK(SIGNAL, 0, 0, may[i].name, may[i].sig);
		snprintf(buf, sizeof(buf), "SIG%s", may[i].name);
		OK(SIGNAL, 0, 0, buf, may[i].sig);
		snprintf(buf, sizeof(buf), "%d", may[i].sig);
		OK(SIGNAL, 0, 0, buf, may[i].sig);
	}
	OK(SIGNAL, 0, 0, "usr1", SIGUSR1);
	OK(SIGNAL, 0, 0, "sigusr2", SIGUSR2);
	OK(SIGNAL, 0, 0, "SigUsr2", SIGUSR2);
	OK(SIGNAL, 0, 0, "none", 0);
	OK(SIGNAL, 0, 0, "NONE", 0);
	OK(SIGNAL, 0, 0, "None", 0);
	OK(SIGNAL, 0, 0, "0", 0);
	snprintf(buf, sizeof(buf), "+%d", SIGUSR1);
	OK(SIGNAL, 0, 0, buf, SIGUSR1);
	/* real-time signals by number, the whole range the C library leaves */
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++) {
		snprintf(buf, sizeof(buf), "%d", s);
		OK(SIGNAL, 0, 0, buf, s);
	}
	snprintf(buf, sizeof(buf), "%d", SIGRTMIN - 1); /* glibc's own */
	BAD(SIGNAL, 0, 0, buf);
	snprintf(buf, sizeof(buf), "%d", SIGRTMAX + 1);
	BAD(SIGNAL, 0, 0, buf);
	/* never one that kills, stops, or the kernel or a debugger needs */
	static const struct {
		const char *name;
		int sig;
	} refused[] = {
		{"KILL", SIGKILL}, {"STOP", SIGSTOP}, {"SEGV", SIGSEGV},    {"TERM", SIGTERM},
		{"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ABRT", SIGABRT},    {"BUS", SIGBUS},
		{"FPE", SIGFPE},   {"ILL", SIGILL},   {"TRAP", SIGTRAP},    {"CHLD", SIGCHLD},
		{"CONT", SIGCONT}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},    {"TTOU", SIGTTOU},
		{"ALRM", SIGALRM}, {"PIPE", SIGPIPE}, {"SYS", SIGSYS},	    {"XCPU", SIGXCPU},
		{"XFSZ", SIGXFSZ}, {"IO", SIGIO},     {"STKFLT", SIGSTKFLT}};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		BAD(SIGNAL, 0, 0, refused[i].name);
		snprintf(buf, sizeof(buf), "SIG%s", refused[i].name);
		BAD(SIGNAL, 0, 0, buf);
		snprintf(buf, sizeof(buf), "%d", refused[i].sig);
		BAD(SIGNAL, 0, 0, buf);
	}
	const char *bad[] = {"",      "SIG", "USR3", "SIGSIGUSR1", "SIGRTMIN", "RTMIN+1",
			     "-10",   "-0",  "00",   "65",	   "100",      "USR",
			     "USR1x", "10x", "0x0A", "nonee",	   "1.0",      "SIG10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		BAD(SIGNAL, 0, 0, bad[i]);
	BAD_SPACING(SIGNAL, 0, 0, "USR1");
	BAD_SPACING(SIGNAL, 0, 0, "10");
	BAD_SPACING(SIGNAL, 0, 0, "none");
}

static void test_seconds(void)
{
	const long max = 1000000000; /* MEMTRACE_INTERVAL's range, in ms */
	OK(SECONDS, 0, max, "0", 0);
	OK(SECONDS, 0, max, "1", 1000);
	OK(SECONDS, 0, max, "2", 2000);
	OK(SECONDS, 0, max, "0.5", 500);
	OK(SECONDS, 0, max, "1.25", 1250);
	OK(SECONDS, 0, max, "1.123", 1123);
	OK(SECONDS, 0, max, "0.001", 1);
	OK(SECONDS, 0, max, "0.010", 10);
	OK(SECONDS, 0, max, "0.0", 0);
	OK(SECONDS, 0, max, "0.000", 0);
	OK(SECONDS, 0, max, "007", 7000);
	OK(SECONDS, 0, max, "999999.999", 999999999);
	OK(SECONDS, 0, max, "1000000", max); /* max, inclusive */
	OK(SECONDS, 0, max, "1000000.000", max);
	BAD(SECONDS, 0, max, "1000000.001"); /* max + 1 ms */
	BAD(SECONDS, 0, max, "1000000.5");
	BAD(SECONDS, 0, max, "1000001");
	BAD(SECONDS, 0, max, "1.1234"); /* 4 decimals */
	BAD(SECONDS, 0, max, "0.0001");
	BAD(SECONDS, 0, max, "1.0000");
	BAD(SECONDS, 0, max, "-1");
	BAD(SECONDS, 0, max, "-0");
	BAD(SECONDS, 0, max, "-0.5");
	BAD(SECONDS, 0, max, "+1");
	BAD(SECONDS, 0, max, "+0.5");
	BAD(SECONDS, 0, max, "1.");
	BAD(SECONDS, 0, max, ".5");
	BAD(SECONDS, 0, max, ".");
	BAD(SECONDS, 0, max, "");
	BAD(SECONDS, 0, max, "abc");
	BAD(SECONDS, 0, max, "1s");
	BAD(SECONDS, 0, max, "1.5s");
	BAD(SECONDS, 0, max, "1,5");
	BAD(SECONDS, 0, max, "1.2.3");
	BAD(SECONDS, 0, max, "1.-5");
	BAD(SECONDS, 0, max, "1.+5");
	BAD(SECONDS, 0, max, "1. 5");
	BAD(SECONDS, 0, max, "1e3");
	BAD(SECONDS, 0, max, "0x10");
	BAD(SECONDS, 0, max, "99999999999999999999");
	BAD_SPACING(SECONDS, 0, max, "1.5");
	/* a row's own bounds, in ms */
	OK(SECONDS, 0, 5000, "5", 5000);
	OK(SECONDS, 0, 5000, "4.999", 4999);
	BAD(SECONDS, 0, 5000, "5.001");
	BAD(SECONDS, 0, 5000, "6");
	OK(SECONDS, 1500, 5000, "1.5", 1500);
	BAD(SECONDS, 1500, 5000, "1.499");
	BAD(SECONDS, 1500, 5000, "0");
}

static void test_allocator(void)
{
	OK(ALLOCATOR, 0, 0, "system", MT_ALLOC_SYSTEM);
	OK(ALLOCATOR, 0, 0, "jemalloc", MT_ALLOC_JEMALLOC);
	const char *bad[] = {"",      "System", "SYSTEM",  "Jemalloc", "JEMALLOC", "tcmalloc",
			     "glibc", "je",	"systemx", "0",	       "1",	   "mimalloc"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		BAD(ALLOCATOR, 0, 0, bad[i]);
	BAD_SPACING(ALLOCATOR, 0, 0, "system");
	BAD_SPACING(ALLOCATOR, 0, 0, "jemalloc");
}

static void test_expect(void)
{
	static const struct {
		enum mt_opt_type t;
		long min, max;
		const char *what;
		long lo, hi; /* lo > hi: no range said */
	} rows[] = {
		{MT_OPT_INT, 1, 128, "a whole number", 1, 128},
		{MT_OPT_LONG, 1, 1l << 40, "a whole number", 1, 1l << 40},
		{MT_OPT_SIZE, 1, 1l << 30, "a size (K, M, G allowed)", 1, 1l << 30},
		{MT_OPT_BOOL, 0, 1, "0/1/yes/no/on/off/true/false", 1, 0},
		{MT_OPT_DIR, 0, 0, "a directory", 1, 0},
		{MT_OPT_SIGNAL, 0, 0,
		 "a signal memtrace may use (USR1, USR2, HUP, PWR, URG, WINCH, PROF, VTALRM, a "
		 "real-time signal number, or none)",
		 1, 0},
		{MT_OPT_SECONDS, 0, 1000000000, "a number of seconds (at most 3 decimals)", 0,
		 1000000},
		{MT_OPT_SECONDS, 1500, 5999, "a number of seconds (at most 3 decimals)", 2, 5},
		{MT_OPT_ALLOCATOR, 0, 0, "system or jemalloc", 1, 0},
	};
	bool seen[MT_OPT_ALLOCATOR + 1] = {false};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		long lo = -7, hi = -7;
		const char *what = mt_opt_expect(rows[i].t, rows[i].min, rows[i].max, &lo, &hi);
		seen[rows[i].t] = true;
		CHECK(what && strcmp(what, rows[i].what) == 0, "expect %s: '%s'",
		      type_name(rows[i].t), what ? what : "(null)");
		CHECK(lo == rows[i].lo && hi == rows[i].hi,
		      "expect %s [%ld, %ld]: %ld..%ld, want %ld..%ld", type_name(rows[i].t),
		      rows[i].min, rows[i].max, lo, hi, rows[i].lo, rows[i].hi);
	}
	/* every type has its own words, none the fallback */
	for (int t = MT_OPT_INT; t <= MT_OPT_ALLOCATOR; t++) {
		long lo, hi;
		const char *what = mt_opt_expect((enum mt_opt_type)t, 0, 0, &lo, &hi);
		CHECK(seen[t], "type %s has an expected description here",
		      type_name((enum mt_opt_type)t));
		CHECK(what && *what && strcmp(what, "a value") != 0, "expect %s: '%s'",
		      type_name((enum mt_opt_type)t), what ? what : "(null)");
	}
}

/* ---- the table ---- */

struct row {
	const char *name;
	enum mt_opt_type type;
	long def, min, max;
	size_t off, size;
	const char *flag;
	int letter;
	const char *meta, *help;
};
#define ROW(name, type, def, min, max, field, flag, letter, meta, help) \
	{name,                                                          \
	 type,                                                          \
	 def,                                                           \
	 min,                                                           \
	 max,                                                           \
	 offsetof(mt_options_t, field),                                 \
	 sizeof(((mt_options_t *)0)->field),                            \
	 flag,                                                          \
	 letter,                                                        \
	 meta,                                                          \
	 help},
static const struct row table[] = {MT_OPTIONS(ROW)};
#undef ROW
#define NROWS (sizeof(table) / sizeof(table[0]))

static bool numeric(enum mt_opt_type t)
{
	return t == MT_OPT_INT || t == MT_OPT_LONG || t == MT_OPT_SIZE || t == MT_OPT_SECONDS;
}

static void test_table(void)
{
	char buf[32];
	long n;
	CHECK(NROWS == 17, "%zu rows", NROWS);
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *o = &table[i];
		CHECK(strncmp(o->name, "MEMTRACE_", 9) == 0 && o->name[9], "row %zu: %s", i,
		      o->name);
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(o->name, table[j].name) != 0 && o->off != table[j].off,
			      "%s and %s: one variable, one field", o->name, table[j].name);
		CHECK(o->help && *o->help, "%s has its help", o->name);
		CHECK(!o->flag || (o->meta && *o->meta), "%s: a flag has its value's name",
		      o->name);
		/* the field is what options.c writes through its cast */
		size_t want = o->type == MT_OPT_DIR    ? sizeof(mt__opt.dir)
			      : o->type == MT_OPT_BOOL ? sizeof(bool)
			      : o->type == MT_OPT_INT || o->type == MT_OPT_SIGNAL ||
					      o->type == MT_OPT_ALLOCATOR
				      ? sizeof(int)
				      : sizeof(long);
		CHECK(o->size == want, "%s: field of %zu bytes, its type writes %zu", o->name,
		      o->size, want);
		if (numeric(o->type)) {
			CHECK(o->min <= o->max, "%s: min %ld <= max %ld", o->name, o->min, o->max);
			/* the default is in range, or 0 meaning unset where no value
			 * may be 0 (min 1): then the warning says "ignored" */
			CHECK((o->def >= o->min && o->def <= o->max) || (o->def == 0 && o->min > 0),
			      "%s: default %ld in [%ld, %ld] or unset", o->name, o->def, o->min,
			      o->max);
			if (o->def == 0 && o->min > 0)
				CHECK(!mt_opt_parse(o->type, o->min, o->max, "0", &n),
				      "%s: 0 is unset and no value", o->name);
			if (o->type == MT_OPT_INT)
				CHECK(o->min >= INT_MIN && o->max <= INT_MAX, "%s fits an int",
				      o->name);
			/* the default, written out, reads back */
			if (o->def >= o->min && o->def <= o->max) {
				if (o->type == MT_OPT_SECONDS)
					snprintf(buf, sizeof(buf), "%ld.%03ld", o->def / 1000,
						 o->def % 1000);
				else
					snprintf(buf, sizeof(buf), "%ld", o->def);
				n = -1;
				CHECK(mt_opt_parse(o->type, o->min, o->max, buf, &n) && n == o->def,
				      "%s: default '%s' reads back: %ld", o->name, buf, n);
			}
		} else if (o->type == MT_OPT_BOOL) {
			CHECK((o->def == 0 || o->def == 1) && o->min == 0 && o->max == 1,
			      "%s: bool %ld in [%ld, %ld]", o->name, o->def, o->min, o->max);
		} else if (o->type == MT_OPT_SIGNAL) {
			snprintf(buf, sizeof(buf), "%ld", o->def);
			n = -1;
			CHECK(mt_opt_parse(o->type, o->min, o->max, buf, &n) && n == o->def,
			      "%s: default signal %ld is one memtrace may take", o->name, o->def);
		} else if (o->type == MT_OPT_ALLOCATOR) {
			CHECK(o->def == MT_ALLOC_SYSTEM || o->def == MT_ALLOC_JEMALLOC,
			      "%s: default %ld", o->name, o->def);
		}
	}
}

/* ---- the loader ---- */

static char cwd[4096];

/* Runs mt__options_init with exactly the given MEMTRACE_* set (NULL
 * terminated name, value pairs; the others unset), its stderr into out. */
static void load(char *out, size_t cap, const char *const *env)
{
	int p[2], saved;
	size_t len = 0;
	for (size_t i = 0; i < NROWS; i++)
		unsetenv(table[i].name);
	for (; env && env[0]; env += 2)
		setenv(env[0], env[1], 1);
	fflush(stderr);
	if (pipe2(p, O_CLOEXEC) || (saved = dup(2)) < 0 || dup2(p[1], 2) < 0) {
		perror("capture");
		exit(2);
	}
	close(p[1]);
	memset(&mt__opt, 0x5a, sizeof(mt__opt)); /* no field keeps a value by chance */
	mt__options_init();
	dup2(saved, 2);
	close(saved);
	for (ssize_t r; len + 1 < cap && (r = read(p[0], out + len, cap - 1 - len)) > 0;)
		len += (size_t)r;
	out[len] = '\0';
	close(p[0]);
}

static long field_of(const struct row *o)
{
	const char *f = (const char *)&mt__opt + o->off;
	switch (o->type) {
	case MT_OPT_INT:
	case MT_OPT_SIGNAL:
	case MT_OPT_ALLOCATOR: return *(const int *)f;
	case MT_OPT_LONG:
	case MT_OPT_SIZE:
	case MT_OPT_SECONDS: return *(const long *)f;
	case MT_OPT_BOOL: return *(const bool *)f;
	case MT_OPT_DIR: break;
	}
	return 0;
}

static const struct row *row_of(const char *name)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	fprintf(stderr, "no row %s\n", name);
	exit(2);
}

/* every field at its default but the one named (NULL: all) */
static void others_default(int line, const char *but)
{
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *o = &table[i];
		if (but && strcmp(o->name, but) == 0)
			continue;
		checks++;
		bool good = o->type == MT_OPT_DIR ? strcmp(mt__opt.dir, cwd) == 0
						  : field_of(o) == o->def;
		if (!good) {
			fprintf(stderr,
				"FAIL %s:%d: %s not at its default (%ld, want %ld) with %s set\n",
				__FILE__, line, o->name, field_of(o), o->def,
				but ? but : "nothing");
			failures++;
		}
	}
}

static int lines_in(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* NAME=v taken as want, no word on stderr (but the options in force when
 * MEMTRACE_VERBOSE is on), nothing else moved */
static void load_ok(int line, const char *name, const char *v, long want)
{
	char err[8192];
	const char *env[] = {name, v, NULL};
	const struct row *o = row_of(name);
	load(err, sizeof(err), env);
	checks += 2;
	if (field_of(o) != want) {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s' gave %ld, want %ld\n", __FILE__, line, name,
			v, field_of(o), want);
		failures++;
	}
	if (strcmp(name, "MEMTRACE_VERBOSE") == 0 && want ? lines_in(err) != 1 + (int)NROWS
							  : *err != '\0') {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s' said: %s", __FILE__, line, name, v, err);
		failures++;
	}
	others_default(line, name);
}

/* NAME=v keeps the default and warns exactly once: one line, naming it */
static void load_bad(int line, const char *name, const char *v)
{
	char err[8192], head[256], want[1024], range[64] = "";
	const char *env[] = {name, v, NULL};
	const struct row *o = row_of(name);
	long lo, hi;
	load(err, sizeof(err), env);
	const char *what = mt_opt_expect(o->type, o->min, o->max, &lo, &hi);
	if (lo <= hi)
		snprintf(range, sizeof(range), " in %ld..%ld", lo, hi);
	snprintf(head, sizeof(head), "memtrace[%d]: %s='", (int)getpid(), name);
	snprintf(want, sizeof(want), "%s%.68s%s' is not %s%s; %s\n", head, v,
		 strlen(v) > 68 ? "..." : "", what, range,
		 o->def || o->type == MT_OPT_BOOL ? "the default stays" : "ignored");
	checks += 4;
	if (field_of(o) != o->def) {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s' gave %ld, want the default %ld\n", __FILE__,
			line, name, v, field_of(o), o->def);
		failures++;
	}
	if (lines_in(err) != 1 || strncmp(err, head, strlen(head)) != 0) {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s': want one line naming it, got: %s\n",
			__FILE__, line, name, v, err);
		failures++;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s' said:\n  %s want:\n  %s", __FILE__, line,
			name, v, err, want);
		failures++;
	}
	if (strlen(err) > 300) {
		fprintf(stderr, "FAIL %s:%d: %s: a warning of %zu bytes\n", __FILE__, line, name,
			strlen(err));
		failures++;
	}
	others_default(line, name);
}
#define LOAD_OK(name, v, want) load_ok(__LINE__, name, v, want)
#define LOAD_BAD(name, v) load_bad(__LINE__, name, v)

/* the exact warning, written out, for one of each kind */
static void load_says(int line, const char *name, const char *v, const char *says)
{
	char err[8192], want[1024];
	const char *env[] = {name, v, NULL};
	load(err, sizeof(err), env);
	snprintf(want, sizeof(want), "memtrace[%d]: %s\n", (int)getpid(), says);
	checks++;
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "FAIL %s:%d: %s='%.80s' said:\n  %s want:\n  %s", __FILE__, line,
			name, v, err, want);
		failures++;
	}
}
#define LOAD_SAYS(name, v, says) load_says(__LINE__, name, v, says)

static void test_loader_rows(void)
{
	char v[64];
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *o = &table[i];
		switch (o->type) {
		case MT_OPT_INT:
		case MT_OPT_LONG:
		case MT_OPT_SIZE:
			snprintf(v, sizeof(v), "%ld", o->min);
			LOAD_OK(o->name, v, o->min);
			snprintf(v, sizeof(v), "%ld", o->max);
			LOAD_OK(o->name, v, o->max);
			snprintf(v, sizeof(v), "%ld", o->min - 1);
			LOAD_BAD(o->name, v);
			snprintf(v, sizeof(v), "%ld", o->max + 1);
			LOAD_BAD(o->name, v);
			LOAD_BAD(o->name, "12abc");
			LOAD_BAD(o->name, "");
			snprintf(v, sizeof(v), " %ld", o->min);
			LOAD_BAD(o->name, v);
			LOAD_BAD(o->name, "9223372036854775808");
			break;
		case MT_OPT_SECONDS:
			snprintf(v, sizeof(v), "%ld", o->min / 1000);
			LOAD_OK(o->name, v, o->min);
			snprintf(v, sizeof(v), "%ld.%03ld", o->max / 1000, o->max % 1000);
			LOAD_OK(o->name, v, o->max);
			LOAD_OK(o->name, "1.5", 1500);
			LOAD_OK(o->name, "0.25", 250);
			snprintf(v, sizeof(v), "%ld.%03ld", (o->max + 1) / 1000,
				 (o->max + 1) % 1000);
			LOAD_BAD(o->name, v);
			LOAD_BAD(o->name, "-1");
			LOAD_BAD(o->name, "1.2345");
			LOAD_BAD(o->name, "soon");
			LOAD_BAD(o->name, "");
			break;
		case MT_OPT_BOOL:
			LOAD_OK(o->name, "yes", 1);
			LOAD_OK(o->name, "TRUE", 1);
			LOAD_OK(o->name, "off", 0);
			LOAD_OK(o->name, "0", 0);
			LOAD_BAD(o->name, "maybe");
			LOAD_BAD(o->name, "2");
			LOAD_BAD(o->name, "");
			break;
		case MT_OPT_SIGNAL:
			LOAD_OK(o->name, "USR2", SIGUSR2);
			LOAD_OK(o->name, "sighup", SIGHUP);
			LOAD_OK(o->name, "none", 0);
			snprintf(v, sizeof(v), "%d", SIGRTMIN + 1);
			LOAD_OK(o->name, v, SIGRTMIN + 1);
			LOAD_BAD(o->name, "KILL");
			LOAD_BAD(o->name, "SIGSTOP");
			LOAD_BAD(o->name, "11");
			LOAD_BAD(o->name, "");
			break;
		case MT_OPT_ALLOCATOR:
			LOAD_OK(o->name, "jemalloc", MT_ALLOC_JEMALLOC);
			LOAD_OK(o->name, "system", MT_ALLOC_SYSTEM);
			LOAD_BAD(o->name, "tcmalloc");
			LOAD_BAD(o->name, "");
			break;
		case MT_OPT_DIR: break;
		}
	}
}

static void test_loader(void)
{
	char err[16384], want[8192];
	const char *none[] = {NULL};

	/* nothing set: every default, not a word */
	load(err, sizeof(err), none);
	CHECK(*err == '\0', "nothing set, yet: %s", err);
	others_default(__LINE__, NULL);
	CHECK(mt__opt.depth == 16 && mt__opt.at_exit && !mt__opt.verbose &&
		      mt__opt.signal == SIGUSR1 && mt__opt.interval_ms == 0 &&
		      mt__opt.arena_max == 0 && mt__opt.sample_bytes == 0 &&
		      mt__opt.leak_scan == 1 && mt__opt.leak_scan_timeout == 60 &&
		      mt__opt.allocator == MT_ALLOC_SYSTEM && mt__opt.python &&
		      mt__opt.python_domains,
	      "the documented defaults");

	test_loader_rows();

	/* the words, written out, once for each kind */
	LOAD_SAYS("MEMTRACE_DEPTH", "0",
		  "MEMTRACE_DEPTH='0' is not a whole number in 1..128; the default stays");
	LOAD_SAYS(
		"MEMTRACE_SAMPLE", "lots",
		"MEMTRACE_SAMPLE='lots' is not a size (K, M, G allowed) in 1..1073741824; ignored");
	LOAD_SAYS("MEMTRACE_INTERVAL", "1.2345",
		  "MEMTRACE_INTERVAL='1.2345' is not a number of seconds (at most 3 decimals) in "
		  "0..1000000; ignored");
	LOAD_SAYS(
		"MEMTRACE_AT_EXIT", "maybe",
		"MEMTRACE_AT_EXIT='maybe' is not 0/1/yes/no/on/off/true/false; the default stays");
	LOAD_SAYS("MEMTRACE_VERBOSE", "2",
		  "MEMTRACE_VERBOSE='2' is not 0/1/yes/no/on/off/true/false; the default stays");
	LOAD_SAYS(
		"MEMTRACE_SIGNAL", "KILL",
		"MEMTRACE_SIGNAL='KILL' is not a signal memtrace may use (USR1, USR2, HUP, PWR, "
		"URG, WINCH, PROF, VTALRM, a real-time signal number, or none); the default stays");
	LOAD_SAYS("MEMTRACE_ALLOCATOR", "tcmalloc",
		  "MEMTRACE_ALLOCATOR='tcmalloc' is not system or jemalloc; ignored");
	LOAD_SAYS("MEMTRACE_DIR", "",
		  "MEMTRACE_DIR='' is not a usable directory name; using the working directory");

	/* a huge bad value is shown clipped to 64 bytes and ... */
	char huge[5000];
	memset(huge, '7', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	LOAD_BAD("MEMTRACE_DEPTH", huge);
	LOAD_SAYS("MEMTRACE_DEPTH", huge,
		  "MEMTRACE_DEPTH='"
		  "77777777777777777777777777777777777777777777777777777777777777777777"
		  "...' is not a whole number in 1..128; the default stays");

	/* several at once: each good one taken, each bad one a line of its own,
	 * in the table's order */
	const char *many[] = {"MEMTRACE_SIGNAL",
			      "SIGSEGV",
			      "MEMTRACE_DEPTH",
			      "32",
			      "MEMTRACE_SAMPLE",
			      "64K",
			      "MEMTRACE_LEAK_SCAN",
			      "3",
			      "MEMTRACE_INTERVAL",
			      "2.5",
			      "MEMTRACE_AT_EXIT",
			      "nah",
			      "MEMTRACE_PYTHON",
			      "off",
			      NULL};
	load(err, sizeof(err), many);
	CHECK(mt__opt.depth == 32 && mt__opt.sample_bytes == 65536 && mt__opt.interval_ms == 2500 &&
		      !mt__opt.python,
	      "the good ones taken: depth %d sample %ld interval %ld python %d", mt__opt.depth,
	      mt__opt.sample_bytes, mt__opt.interval_ms, mt__opt.python);
	CHECK(mt__opt.signal == SIGUSR1 && mt__opt.leak_scan == 1 && mt__opt.at_exit,
	      "the bad ones at their defaults: signal %d leak_scan %d at_exit %d", mt__opt.signal,
	      mt__opt.leak_scan, mt__opt.at_exit);
	CHECK(lines_in(err) == 3, "three warnings: %s", err);
	const char *
		at = strstr(err, "MEMTRACE_AT_EXIT='nah'"),
	       *sig = strstr(err, "MEMTRACE_SIGNAL='SIGSEGV'"),
	       *scan = strstr(
		       err,
		       "MEMTRACE_LEAK_SCAN='3' is not a whole number in 0..2; the default stays\n");
	CHECK(at && sig && scan && at < sig && sig < scan, "in the table's order: %s", err);
	CHECK(!strstr(err, "DEPTH") && !strstr(err, "SAMPLE") && !strstr(err, "INTERVAL") &&
		      !strstr(err, "PYTHON"),
	      "no word on the good ones: %s", err);

	/* MEMTRACE_DIR: absolute as it is, relative under the start-up directory */
	const char *abs[] = {"MEMTRACE_DIR", "/tmp/mt-unit/snaps", NULL};
	load(err, sizeof(err), abs);
	CHECK(strcmp(mt__opt.dir, "/tmp/mt-unit/snaps") == 0 && !*err, "absolute dir: %s %s",
	      mt__opt.dir, err);
	others_default(__LINE__, "MEMTRACE_DIR");
	const char *rel[] = {"MEMTRACE_DIR", "snaps/x", NULL};
	load(err, sizeof(err), rel);
	snprintf(want, sizeof(want), "%s/snaps/x", cwd);
	CHECK(strcmp(mt__opt.dir, want) == 0 && !*err, "relative dir: %s, want %s %s", mt__opt.dir,
	      want, err);
	static char path[5000];
	memset(path, 'd', sizeof(path));
	path[0] = '/';
	path[4095] = '\0'; /* 4095 bytes and its nul: the most the field holds */
	const char *longest[] = {"MEMTRACE_DIR", path, NULL};
	load(err, sizeof(err), longest);
	CHECK(strcmp(mt__opt.dir, path) == 0 && !*err, "a 4095-byte dir: %zu bytes %s",
	      strlen(mt__opt.dir), err);
	path[4095] = 'd';
	path[4096] = '\0';
	load(err, sizeof(err), longest);
	CHECK(strcmp(mt__opt.dir, cwd) == 0 && lines_in(err) == 1 &&
		      strstr(err, "MEMTRACE_DIR='/ddd") &&
		      strstr(err,
			     "...' is not a usable directory name; using the working directory\n"),
	      "a 4096-byte dir: %s", err);
	memset(path, 'd', 4096 - strlen(cwd) - 1); /* relative: cwd/ddd... is 4096 with its nul */
	path[4096 - strlen(cwd) - 1] = '\0';
	const char *rel_long[] = {"MEMTRACE_DIR", path, NULL};
	load(err, sizeof(err), rel_long);
	CHECK(strcmp(mt__opt.dir, cwd) == 0 && lines_in(err) == 1 &&
		      strstr(err, "is not a usable directory name"),
	      "a relative dir too long under %s: %s", cwd, err);
	path[4096 - strlen(cwd) - 2] = '\0';
	load(err, sizeof(err), rel_long);
	CHECK(strlen(mt__opt.dir) == 4095 && !*err, "a relative dir just fitting: %zu %s",
	      strlen(mt__opt.dir), err);

	/* MEMTRACE_VERBOSE: a heading, then every option with its value */
	const char *verbose[] = {
		"MEMTRACE_VERBOSE", "1", "MEMTRACE_INTERVAL", "0.5", "MEMTRACE_ALLOCATOR",
		"jemalloc",	    NULL};
	load(err, sizeof(err), verbose);
	CHECK(lines_in(err) == 1 + (int)NROWS, "verbose: %d lines: %s", lines_in(err), err);
	snprintf(want, sizeof(want), "memtrace[%d]: options in force (MEMTRACE_VERBOSE=1):\n",
		 (int)getpid());
	CHECK(strncmp(err, want, strlen(want)) == 0, "verbose heading: %s", err);
	CHECK(strstr(err, "]:   MEMTRACE_DEPTH=16 (frames recorded per callsite)\n") &&
		      strstr(err, "]:   MEMTRACE_INTERVAL=500 ms (") &&
		      strstr(err, "]:   MEMTRACE_ALLOCATOR=jemalloc (") &&
		      strstr(err, "]:   MEMTRACE_VERBOSE=1 (") &&
		      strstr(err, "]:   MEMTRACE_AT_EXIT=1 ("),
	      "verbose values: %s", err);
	snprintf(want, sizeof(want), "]:   MEMTRACE_DIR=%s (", cwd);
	CHECK(strstr(err, want), "verbose dir: %s", err);

	/* an attach's lines: the environment is the program's, never read */
	mt__options_source("MEMTRACE_DEPTH=7\nMEMTRACE_SIGNAL=USR2\nMEMTRACE_AT_EXIT=nope\n"
			   "MEMTRACE_PYTHON_PYMALLOC=0\nMEMTRACE_SAMPLE=\nMEMTRACE_INTERVAL=3");
	const char *program[] = {
		"MEMTRACE_DEPTH", "5", "MEMTRACE_PYTHON", "0", "MEMTRACE_ARENA_MAX", "4", NULL};
	load(err, sizeof(err), program);
	CHECK(mt__opt.depth == 7 && mt__opt.signal == SIGUSR2 && mt__opt.interval_ms == 3000,
	      "the lines taken: depth %d signal %d interval %ld", mt__opt.depth, mt__opt.signal,
	      mt__opt.interval_ms);
	CHECK(!mt__opt.python_domains && mt__opt.python,
	      "MEMTRACE_PYTHON_PYMALLOC=0 is not MEMTRACE_PYTHON: %d %d", mt__opt.python_domains,
	      mt__opt.python);
	CHECK(mt__opt.arena_max == 0, "the environment unread: arena_max %d", mt__opt.arena_max);
	CHECK(mt__opt.at_exit && mt__opt.sample_bytes == 0, "bad lines keep the default");
	CHECK(lines_in(err) == 2 && strstr(err, "MEMTRACE_AT_EXIT='nope' is not") &&
		      strstr(err, "MEMTRACE_SAMPLE='' is not a size"),
	      "the bad lines warned: %s", err);
	mt__options_source(NULL); /* none: every default */
	load(err, sizeof(err), program);
	CHECK(*err == '\0', "empty lines, no word: %s", err);
	others_default(__LINE__, NULL);
}

int main(void)
{
	if (!getcwd(cwd, sizeof(cwd)))
		return 2;
	test_int();
	test_long();
	test_size();
	test_bool();
	test_dir();
	test_signal();
	test_seconds();
	test_allocator();
	test_expect();
	test_table();
	test_loader();
	printf("%s: %d checks, %d failed\n", failures ? "FAILED" : "options ok", checks, failures);
	return failures ? 1 : 0;
}
