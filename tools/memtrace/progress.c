/* SPDX-License-Identifier: MIT */
/*
 * progress.c - progress of long work, on one line of stderr redrawn at most
 * ten times a second and erased when the work is done:
 *   memtrace: symbolizing memtrace.42.3.snap: 45% (45000 of 100000 callsites)
 * MEMTRACE_PROGRESS=auto (the default) shows it only on a terminal, and only
 * once the command has worked for a quarter of a second, so quick commands
 * and pipes see nothing; never hides it; always shows it from the start of
 * each piece of work to its end (100%), one line each update when stderr is
 * not a terminal.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum mode { AUTO, NEVER, ALWAYS };

static enum mode mode = -1;
static bool tty;
static double first_begin = -1; /* when this command began its first work */

static void read_mode(void)
{
	const char *e = getenv("MEMTRACE_PROGRESS");
	tty = isatty(STDERR_FILENO) && !(getenv("TERM") && !strcmp(getenv("TERM"), "dumb"));
	mode = AUTO;
	if (!e || !*e || !strcmp(e, "auto"))
		return;
	if (!strcmp(e, "never"))
		mode = NEVER;
	else if (!strcmp(e, "always"))
		mode = ALWAYS;
	else
		fprintf(stderr,
			"memtrace: warning: MEMTRACE_PROGRESS is auto, never or always, not "
			"'%s'; using auto\n",
			e);
}

static void draw(mt_progress_t *p, uint64_t done)
{
	unsigned pct = p->total ? (unsigned)(done * 100 / p->total) : 100;
	fprintf(stderr, "%smemtrace: %s %s: %u%% (%llu of %llu %s)%s", tty ? "\r" : "", p->verb,
		p->file ? p->file : "", pct, (unsigned long long)done, (unsigned long long)p->total,
		p->unit, tty ? "\033[K" : "\n");
	fflush(stderr);
	p->shown = true;
}

void mt_progress_begin(mt_progress_t *p, const char *verb, const char *file, uint64_t total,
		       const char *unit)
{
	if ((int)mode < 0)
		read_mode();
	if (first_begin < 0)
		first_begin = mt_now();
	const char *base = file ? strrchr(file, '/') : NULL;
	*p = (mt_progress_t){verb, base ? base + 1 : file, unit, total, 0, mt_now(), false};
	if (mode == ALWAYS)
		draw(p, 0);
}

void mt_progress_step(mt_progress_t *p, uint64_t done)
{
	if (mode == NEVER || (mode == AUTO && !tty))
		return;
	if (mode == AUTO && ++p->calls % 256)
		return; /* the clock is read every 256 steps */
	double t = mt_now();
	if ((mode == AUTO && t - first_begin < 0.25) || t - p->last < 0.1)
		return;
	p->last = t;
	draw(p, done);
}

void mt_progress_end(mt_progress_t *p)
{
	if (mode == ALWAYS) {
		draw(p, p->total);
		if (tty)
			fputs("\n", stderr);
	} else if (p->shown) {
		fputs("\r\033[K", stderr); /* erase the line: the report follows */
		fflush(stderr);
	}
}
