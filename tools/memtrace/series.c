/* SPDX-License-Identifier: MIT */
/*
 * series.c - loading: a snapshot (a bad one ends the command with the
 * reader's one line, exit 2), a series of them in time order (monotonic
 * times within a process, wall clock across), the teardown's final
 * snapshots left out of a running program's series, and the one warning
 * when snapshots mix two processes or run backwards.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool mt_native_frames;

void mt_load_or_die(const char *path, mt_snap_t *s)
{
	char err[1024];
	if (mt_snap_load(path, s, err, sizeof(err)) != 0) {
		char *shown = mt_printable(err);
		fprintf(stderr, "memtrace: %s\n", shown ? shown : err);
		free(shown);
		exit(MT_EXIT_INPUT);
	}
	if (mt_native_frames)
		mt_snap_use_native(s);
}

/* Time order: monotonic within a process, wall clock across. */
static int cmp_loaded(const void *pa, const void *pb)
{
	const mt_snap_t *a = &((const mt_loaded_t *)pa)->snap, *b = &((const mt_loaded_t *)pb)->snap;
	if (a->start_mono_ns == b->start_mono_ns)
		return a->mono_ns < b->mono_ns ? -1 : a->mono_ns > b->mono_ns;
	return a->wall_ns < b->wall_ns ? -1 : a->wall_ns > b->wall_ns;
}

/* Seconds from a to b: monotonic within a process, wall clock across. */
static double seconds_between(const mt_snap_t *a, const mt_snap_t *b)
{
	if (a->start_mono_ns == b->start_mono_ns)
		return (double)(int64_t)(b->mono_ns - a->mono_ns) / 1e9;
	return (double)(int64_t)(b->wall_ns - a->wall_ns) / 1e9;
}

/* Warns when two snapshots do not make a series of one process. */
void mt_warn_pair(const mt_snap_t *a, const mt_snap_t *b)
{
	if (a->pid != b->pid || a->start_mono_ns != b->start_mono_ns) {
		char *ea = mt_printable(a->exe), *eb = mt_printable(b->exe);
		fprintf(stderr,
			"memtrace: warning: %s is from pid %u (%s) but %s is from pid %u (%s): "
			"the comparison mixes two processes\n",
			a->file, a->pid, ea, b->file, b->pid, eb);
		free(ea);
		free(eb);
	} else if (b->mono_ns < a->mono_ns) {
		fprintf(stderr,
			"memtrace: warning: %s was taken before %s: the changes run backwards\n",
			b->file, a->file);
	}
}

void mt_series_load(mt_series_t *s, char **paths, int n, const mt_view_t *v, bool with_dead)
{
	s->all = n;
	s->s = mt_xmalloc((size_t)n * sizeof(*s->s));
	memset(s->s, 0, (size_t)n * sizeof(*s->s));
	for (int i = 0; i < n; i++)
		mt_load_or_die(paths[i], &s->s[i].snap);
	qsort(s->s, (size_t)n, sizeof(*s->s), cmp_loaded);
	/* the teardown's snapshots (final ones at the end: at exit, at a
	 * terminating signal) are read, never analysed, while two others
	 * remain */
	s->n = n;
	while (s->n > 2 && mt_reason_final(s->s[s->n - 1].snap.reason))
		s->n--;
	s->stats = mt_xmalloc((size_t)s->n * sizeof(*s->stats));
	for (int i = 0; i < s->n; i++) {
		s->s[i].sym = mt_sym_open(&s->s[i].snap);
		mt_stats_build(&s->s[i].snap, s->s[i].sym, v, with_dead, &s->s[i].st);
		s->stats[i] = &s->s[i].st;
	}
	for (int i = 1; i < s->n && !s->mixed; i++)
		if (s->s[i].snap.pid != s->s[0].snap.pid ||
		    s->s[i].snap.start_mono_ns != s->s[0].snap.start_mono_ns) {
			mt_warn_pair(&s->s[0].snap, &s->s[i].snap);
			s->mixed = true;
		}
	s->seconds = seconds_between(&s->s[0].snap, &s->s[s->n - 1].snap);
}

void mt_series_say_left_out(const char *cmd, const mt_series_t *s)
{
	for (int i = s->n; i < s->all; i++)
		fprintf(stderr,
			"memtrace %s: left out %s, taken %s: the teardown, not the running "
			"program (memtrace leaks reads it)\n",
			cmd, s->s[i].snap.file, mt_reason_text(s->s[i].snap.reason));
}

void mt_series_free(mt_series_t *s)
{
	for (int i = 0; i < s->all; i++) {
		if (i < s->n) {
			mt_stats_free(&s->s[i].st);
			mt_sym_close(s->s[i].sym);
		}
		mt_snap_free(&s->s[i].snap);
	}
	free(s->s);
	free(s->stats);
	memset(s, 0, sizeof(*s));
}
