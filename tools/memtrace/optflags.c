/* SPDX-License-Identifier: MIT */
/*
 * optflags.c - the library's options (src/options.h) as the flags of
 * `memtrace run` and `memtrace attach`: their getopt entries, their --help
 * rows, and each value checked by the library's own parser (optparse.c)
 * before anything starts, so that a value the library would warn about and
 * drop inside the program is refused here, naming the flag.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

struct flag_row {
	const char *var, *flag, *meta, *help;
	enum mt_opt_type type;
	long def, min, max;
	int letter;
};
#define ROW(name, type, def, min, max, field, flag, letter, meta, help) \
	{name, flag, meta, help, type, def, min, max, letter},
static const struct flag_row rows[] = {MT_OPTIONS(ROW)};
#undef ROW
#define NROWS (sizeof(rows) / sizeof(rows[0]))
_Static_assert(NROWS <= MT_OPTFLAGS_MAX, "MT_OPTFLAGS_MAX covers every option");

/* getopt's value for a row without a short letter */
#define FLAG_BASE 1000

void mt_optflags_add(struct option *opts, size_t *n, char *shorts)
{
	size_t ns = strlen(shorts);
	for (size_t i = 0; i < NROWS; i++) {
		if (!rows[i].flag)
			continue;
		opts[(*n)++] = (struct option){rows[i].flag, required_argument, NULL,
					       rows[i].letter ? rows[i].letter
							      : FLAG_BASE + (int)i};
		if (rows[i].letter) {
			shorts[ns++] = (char)rows[i].letter;
			shorts[ns++] = ':';
		}
	}
	shorts[ns] = '\0';
}

bool mt_optflags_take(mt_optflags_t *f, const char *cmd, int c, const char *arg)
{
	size_t i = 0;
	while (i < NROWS && !(rows[i].flag && (c == rows[i].letter || c == FLAG_BASE + (int)i)))
		i++;
	if (i == NROWS)
		return false;
	const struct flag_row *o = &rows[i];
	long n;
	if (o->type != MT_OPT_DIR && !mt_opt_parse(o->type, o->min, o->max, arg, &n)) {
		long lo, hi;
		const char *what = mt_opt_expect(o->type, o->min, o->max, &lo, &hi);
		fprintf(stderr, "memtrace %s: --%s %s: not %s", cmd, o->flag, arg, what);
		if (lo <= hi)
			fprintf(stderr, " in %ld..%ld", lo, hi);
		fputs("\n", stderr);
		exit(MT_EXIT_USAGE);
	}
	f->values[i] = arg;
	return true;
}

const char *mt_optflags_value(const mt_optflags_t *f, const char *var)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(rows[i].var, var) == 0)
			return f->values[i];
	return NULL;
}

void mt_optflags_each(const mt_optflags_t *f, void (*fn)(const char *var, const char *value,
							 void *arg),
		      void *arg)
{
	for (size_t i = 0; i < NROWS; i++)
		if (f->values[i] && rows[i].type != MT_OPT_DIR)
			fn(rows[i].var, f->values[i], arg);
}

/* One flag's --help row: the flag, then its help wrapped at 79 columns
 * under the 24th. */
static void usage_row(FILE *out, const struct flag_row *o)
{
	char head[64], text[512];
	if (o->letter)
		snprintf(head, sizeof(head), "  -%c, --%s %s", o->letter, o->flag, o->meta);
	else
		snprintf(head, sizeof(head), "      --%s %s", o->flag, o->meta);
	if (o->def && (o->type == MT_OPT_INT || o->type == MT_OPT_LONG || o->type == MT_OPT_BOOL))
		snprintf(text, sizeof(text), "%s (default %ld)", o->help, o->def);
	else
		snprintf(text, sizeof(text), "%s", o->help);
	int col = fprintf(out, "%-22s", head);
	if (col > 22) {
		fputs("\n", out);
		col = 0;
	}
	for (const char *w = text; *w;) {
		size_t n = strcspn(w, " ");
		if (col > 22 && col + 1 + (int)n > 79) {
			fputs("\n", out);
			col = 0;
		}
		col += col == 0 ? fprintf(out, "%23s", "") : fprintf(out, " ");
		col += fprintf(out, "%.*s", (int)n, w);
		w += n;
		w += strspn(w, " ");
	}
	fputs("\n", out);
}

void mt_optflags_usage(FILE *out)
{
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].flag)
			usage_row(out, &rows[i]);
}
