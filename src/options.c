/* SPDX-License-Identifier: MIT */
/*
 * options.c - every MEMTRACE_* variable in one table, read once at start
 * with secure_getenv. A bad value warns once on stderr and keeps the
 * default: the program runs on, unaffected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

mt_options_t mt__opt;

enum opt_type { OPT_INT, OPT_BOOL, OPT_DIR };

struct opt {
	const char *name;
	enum opt_type type;
	long def, min, max;
	size_t off;
	const char *help;
};

#define OFF(f) offsetof(mt_options_t, f)

static const struct opt table[] = {
	{ "MEMTRACE_DIR", OPT_DIR, 0, 0, 0, OFF(dir),
	  "snapshot directory (default: the working directory at start)" },
	{ "MEMTRACE_DEPTH", OPT_INT, 16, 1, MT_MAX_FRAMES, OFF(depth),
	  "frames recorded per callsite" },
	{ "MEMTRACE_AT_EXIT", OPT_BOOL, 1, 0, 1, OFF(at_exit),
	  "write a snapshot when the process exits" },
	{ "MEMTRACE_VERBOSE", OPT_BOOL, 0, 0, 1, OFF(verbose),
	  "print the active options at start" },
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
	static const char *yes[] = { "1", "yes", "on", "true" };
	static const char *no[] = { "0", "no", "off", "false" };
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
		const char *v = secure_getenv(o->name);
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
				mt__warn("%s='%s' is not a usable directory name; using the working directory",
					 o->name, clip(v, shown, sizeof(shown)));
			set_default_dir();
			break;
		case OPT_INT:
			if (v && !parse_long(v, o->min, o->max, &n)) {
				mt__warn("%s='%s' is not a whole number in %ld..%ld; using %ld", o->name,
					 clip(v, shown, sizeof(shown)), o->min, o->max, o->def);
				n = o->def;
			}
			*(int *)field = (int)n;
			break;
		case OPT_BOOL:
			if (v && !parse_bool(v, &n)) {
				mt__warn("%s='%s' is not 0/1/yes/no/on/off/true/false; using %ld", o->name,
					 clip(v, shown, sizeof(shown)), o->def);
				n = o->def;
			}
			*(bool *)field = n != 0;
			break;
		}
	}

	if (mt__opt.verbose) {
		mt__warn("options: MEMTRACE_DIR=%s MEMTRACE_DEPTH=%d MEMTRACE_AT_EXIT=%d",
			 mt__opt.dir, mt__opt.depth, (int)mt__opt.at_exit);
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
			mt__warn("  %s: %s", table[i].name, table[i].help);
	}
}
