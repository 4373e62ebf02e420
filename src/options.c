/* SPDX-License-Identifier: MIT */
/*
 * options.c - every MEMTRACE_* variable in one table, read once at start
 * with secure_getenv. A bad value warns once on stderr and keeps the
 * default: the program runs on, unaffected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "options.h"

mt_options_t mt__opt;

struct opt {
	const char *name;
	enum mt_opt_type type;
	long def, min, max;
	size_t off;
	const char *help;
};

#define OFF(f) offsetof(mt_options_t, f)
#define ROW(name, type, def, min, max, field, flag, letter, meta, help) \
	{name, type, def, min, max, OFF(field), help},
static const struct opt table[] = {MT_OPTIONS(ROW)};
#undef ROW

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

/* MEMTRACE_DIR: a relative one is anchored at the start-up directory, so a
 * later chdir does not move the dumps. */
static void read_dir(const struct opt *o, const char *v)
{
	char shown[72];
	if (v && *v && *v != '/' && strlen(v) < sizeof(mt__opt.dir) - 1) {
		set_default_dir();
		size_t len = strlen(mt__opt.dir);
		if (len + 1 + strlen(v) < sizeof(mt__opt.dir)) {
			mt__opt.dir[len] = '/';
			strcpy(mt__opt.dir + len + 1, v);
			return;
		}
	} else if (v && *v == '/' && strlen(v) < sizeof(mt__opt.dir)) {
		strcpy(mt__opt.dir, v);
		return;
	}
	if (v)
		mt__warn("%s='%s' is not a usable directory name; using the working directory",
			 o->name, clip(v, shown, sizeof(shown)));
	set_default_dir();
}

void mt__options_init(void)
{
	char shown[72];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct opt *o = &table[i];
		char *field = (char *)&mt__opt + o->off;
		const char *v = value_of(o->name);
		long n = o->def;

		if (o->type == MT_OPT_DIR) {
			read_dir(o, v);
			continue;
		}
		if (v && !mt_opt_parse(o->type, o->min, o->max, v, &n)) {
			long lo, hi;
			const char *what = mt_opt_expect(o->type, o->min, o->max, &lo, &hi);
			char range[64] = "";
			if (lo <= hi)
				mt__fmt(range, sizeof(range), " in %ld..%ld", lo, hi);
			mt__warn("%s='%s' is not %s%s; %s", o->name, clip(v, shown, sizeof(shown)),
				 what, range, o->def || o->type == MT_OPT_BOOL ? "the default stays" : "ignored");
			n = o->def;
		}
		switch (o->type) {
		case MT_OPT_INT:
		case MT_OPT_SIGNAL:
		case MT_OPT_ALLOCATOR: *(int *)field = (int)n; break;
		case MT_OPT_LONG:
		case MT_OPT_SIZE:
		case MT_OPT_SECONDS: *(long *)field = n; break;
		case MT_OPT_BOOL: *(bool *)field = n != 0; break;
		case MT_OPT_DIR: break;
		}
	}

	if (mt__opt.verbose) {
		mt__warn("options in force (MEMTRACE_VERBOSE=1):");
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
			const struct opt *o = &table[i];
			const char *field = (const char *)&mt__opt + o->off;
			char val[4200];
			switch (o->type) {
			case MT_OPT_DIR: mt__fmt(val, sizeof(val), "%s", mt__opt.dir); break;
			case MT_OPT_INT:
			case MT_OPT_SIGNAL: mt__fmt(val, sizeof(val), "%d", *(const int *)field); break;
			case MT_OPT_ALLOCATOR:
				mt__fmt(val, sizeof(val), "%s",
					*(const int *)field == MT_ALLOC_JEMALLOC ? "jemalloc" : "system");
				break;
			case MT_OPT_LONG:
			case MT_OPT_SIZE: mt__fmt(val, sizeof(val), "%ld", *(const long *)field); break;
			case MT_OPT_SECONDS:
				mt__fmt(val, sizeof(val), "%ld ms", *(const long *)field);
				break;
			case MT_OPT_BOOL: mt__fmt(val, sizeof(val), "%d", *(const bool *)field); break;
			}
			mt__warn("  %s=%s (%s)", o->name, val, o->help);
		}
	}
}
