/* SPDX-License-Identifier: MIT */
/*
 * cmd-top.c - `memtrace top [OPTIONS] PID`: a live view of a process that
 * memtrace is in (preloaded or attached). Every interval it asks the
 * process for a snapshot (its snapshot signal: the process is never stopped
 * for longer than a dump), reads it, and redraws the process's totals with
 * their trend and the top lines by live size or by growth since the view
 * began, each with its rate and whether it grew in every refresh (steady) or
 * in one step (jump). Each snapshot it asked for is removed once read,
 * unless --keep; `p` asks for one more and keeps it. Files it did not ask
 * for are never touched. On a terminal: q quits, s switches the
 * order, p keeps the current snapshot. Without a terminal it prints one
 * table per refresh.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cli.h"
#include "options.h"

static const char usage_text[] =
	"usage: memtrace top [OPTIONS] PID\n"
	"\n"
	"A live view of a process memtrace is in (preloaded, or attached): every\n"
	"interval a snapshot on its signal, the process's totals with their trend,\n"
	"and the top lines by live size or by growth since the view began. On a\n"
	"terminal: q quits, s switches the order, p keeps the current snapshot.\n"
	"Without one: a table per refresh. The snapshots it asked for are removed.\n"
	"\n"
	"  -i, --interval SECS  refresh every SECS seconds (default 1)\n"
	"  -s, --signal SIG     the process's snapshot signal (default USR1)\n"
	"  -o, --dir DIR        where the process writes snapshots (default: its\n"
	"                       MEMTRACE_DIR, else its working directory)\n"
	"      --keep           keep every snapshot the view asked for\n"
	"      --count N        stop after N refreshes (default: q, ^C, or its end)\n"
	"      --by-growth      order by growth since the view began (default: size)\n" MT_VIEW_HELP;

/* A line's history over the refreshes. */
typedef struct line {
	char *key;
	uint64_t first, last, count;
	int64_t biggest_step, total_step;
	int grew, steps, seen; /* refreshes it grew in, of steps; seen this refresh */
	UT_hash_handle hh;
} line_t;

static volatile sig_atomic_t quit;
static void on_quit(int sig)
{
	(void)sig;
	quit = 1;
}

static struct termios saved_tty;
static bool raw_tty;
static void tty_restore(void)
{
	if (raw_tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		fputs("\033[?25h\n", stdout); /* the cursor back */
		fflush(stdout);
		raw_tty = false;
	}
}

/* The process's snapshot directory: its MEMTRACE_DIR, else its cwd. */
static char *process_dir(pid_t pid)
{
	char path[64], *env;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	if ((env = mt_slurp(path, &len))) {
		for (size_t i = 0; i < len; i += strlen(env + i) + 1)
			if (!strncmp(env + i, "MEMTRACE_DIR=", 13) && env[i + 13]) {
				char *d = mt_xasprintf("%s", env + i + 13);
				free(env);
				return d;
			}
		free(env);
	}
	char cwd[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)pid);
	ssize_t n = readlink(path, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return NULL;
	cwd[n] = '\0';
	return mt_xasprintf("%s", cwd);
}

static const char *trend(const line_t *l)
{
	int64_t grown = (int64_t)l->last - (int64_t)l->first;
	if (l->steps == 0 || grown == 0)
		return "flat";
	if (grown < 0)
		return "falls";
	if (l->grew == l->steps && l->steps >= 2)
		return "steady";
	if (l->steps >= 2 && (double)l->biggest_step >= 0.8 * (double)grown)
		return "jump";
	return "grows";
}

static int by_size(const void *a, const void *b)
{
	const line_t *x = *(line_t *const *)a, *y = *(line_t *const *)b;
	if (x->last != y->last)
		return x->last > y->last ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int by_growth(const void *a, const void *b)
{
	const line_t *x = *(line_t *const *)a, *y = *(line_t *const *)b;
	int64_t gx = (int64_t)x->last - (int64_t)x->first, gy = (int64_t)y->last - (int64_t)y->first;
	if (gx != gy)
		return gx > gy ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* Folds a refresh's groups into the lines' histories. */
static void fold(line_t **lines, const mt_stats_t *st, bool first)
{
	line_t *l, *tmp;
	HASH_ITER(hh, *lines, l, tmp)
		l->seen = 0;
	for (size_t i = 0; i < st->n; i++) {
		const mt_stat_t *s = &st->v[i];
		HASH_FIND_STR(*lines, s->key, l);
		if (!l) {
			l = mt_xmalloc(sizeof(*l));
			memset(l, 0, sizeof(*l));
			l->key = mt_xasprintf("%s", s->key);
			l->first = first ? s->size : 0; /* a line new since the view began grew */
			l->last = l->first;
			HASH_ADD_KEYPTR(hh, *lines, l->key, strlen(l->key), l);
		}
		l->seen = 1;
		if (!first)
			l->steps++;
		int64_t step = (int64_t)s->size - (int64_t)l->last;
		if (step > 0)
			l->grew++, l->total_step += step;
		if (step > l->biggest_step)
			l->biggest_step = step;
		l->last = s->size;
		l->count = s->count;
	}
	HASH_ITER(hh, *lines, l, tmp)
		if (!l->seen && !first) { /* gone: all freed */
			l->steps++;
			l->last = 0;
			l->count = 0;
		}
}

typedef struct frame {
	pid_t pid;
	const char *exe, *dir;
	int refresh;
	double secs, interval;
	const mt_snap_t *a, *b, *prev;
	bool growth, tty;
	size_t limit;
	const char *note;
} frame_t;

static void size_str(char *buf, double v, bool sign)
{
	mt_format_size(buf, 32, v, sign);
}

static void draw(const frame_t *f, line_t *lines)
{
	char x[32], y[32], z[32], w[32], u[32], v[32], q[32], r[32];
	FILE *o = stdout;
	if (f->tty)
		fputs("\033[H\033[2J", o);
	fprintf(o, "memtrace top: pid %d %s, refresh %d (every %.3g s), %.1f s since the view began%s\n",
		(int)f->pid, f->exe, f->refresh, f->interval, f->secs,
		f->tty ? (f->growth ? "   [q quit, s sort: growth, p keep]"
				    : "   [q quit, s sort: size, p keep]")
		       : "");
	const mt_totals_t *t = &f->b->totals;
	double live = (double)t->heap_live_bytes;
	double since = live - (double)f->a->totals.heap_live_bytes;
	double last = f->prev ? live - (double)f->prev->totals.heap_live_bytes : 0;
	size_str(x, live, false);
	size_str(y, since, true);
	size_str(z, f->secs > 0 ? since / f->secs : 0, true);
	size_str(w, last, true);
	fprintf(o, "Heap live %s in %" PRIu64 " blocks: %s since the view began (%s/s), %s in the last refresh\n",
		x, t->heap_live_count, y, z, w);
	if (f->b->has_alloc) {
		const mt_alloc_stats_t *m = &f->b->alloc, *m0 = &f->a->alloc;
		size_str(x, (double)m->held, false);
		size_str(y, (double)m->held - (double)m0->held, true);
		size_str(u, (double)m->rss, false);
		size_str(v, (double)m->rss - (double)m0->rss, true);
		size_str(q, (double)m->vms, false);
		size_str(r, (double)m->vms - (double)m0->vms, true);
		if (m->held)
			fprintf(o, "Allocator %s holds %s (%s); ", m->name, x, y);
		fprintf(o, "RSS %s (%s), VMS %s (%s)\n", u, v, q, r);
	}
	size_t n = HASH_COUNT(lines), k = 0;
	line_t **v_ = mt_xmalloc((n ? n : 1) * sizeof(*v_)), *l, *tmp;
	HASH_ITER(hh, lines, l, tmp)
		v_[k++] = l;
	qsort(v_, n, sizeof(*v_), f->growth ? by_growth : by_size);
	fprintf(o, "\nTop lines by %s:\n", f->growth ? "growth since the view began" : "live size");
	fprintf(o, "%10s %8s %11s %11s  %-6s  %s\n", "size", "count", "growth", "rate/s", "trend",
		"line");
	size_t shown = 0;
	for (size_t i = 0; i < n && (!f->limit || shown < f->limit); i++) {
		l = v_[i];
		if (!l->last && l->last == l->first)
			continue;
		int64_t g = (int64_t)l->last - (int64_t)l->first;
		size_str(x, (double)l->last, false);
		size_str(y, (double)g, true);
		size_str(z, f->secs > 0 ? (double)g / f->secs : 0, true);
		char *key = mt_printable(l->key);
		fprintf(o, "%10s %8" PRIu64 " %11s %11s  %-6s  %s\n", x, l->count, y, z, trend(l),
			key);
		free(key);
		shown++;
	}
	if (f->note)
		fprintf(o, "\n%s\n", f->note);
	if (!f->tty)
		fputc('\n', o);
	fflush(o);
	free(v_);
}

int mt_cmd_top(int argc, char **argv)
{
	static const struct option opts[] = {
		{"interval", required_argument, NULL, 'i'},
		{"signal", required_argument, NULL, 's'},
		{"dir", required_argument, NULL, 'o'},
		{"keep", no_argument, NULL, 'K'},
		{"count", required_argument, NULL, 'C'},
		{"by-growth", no_argument, NULL, 'G'},
		MT_VIEW_LONGOPTS,
		{0},
	};
	mt_view_t view;
	double interval = 1;
	const char *dir_opt = NULL, *sig_name = "USR1";
	bool keep = false, growth = false;
	long count = 0;
	int c;
	mt_view_init(&view);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+i:s:o:" MT_VIEW_SHORTOPTS, opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'i':
			interval = strtod(optarg, &end);
			if (end == optarg || *end || !(interval >= 0.1) || interval > 3600)
				mt_die_usage("top", "--interval takes 0.1 to 3600 seconds, not '%s'",
					     optarg);
			break;
		case 's': sig_name = optarg; break;
		case 'o': dir_opt = optarg; break;
		case 'K': keep = true; break;
		case 'G': growth = true; break;
		case 'C':
			count = strtol(optarg, &end, 10);
			if (end == optarg || *end || count < 1)
				mt_die_usage("top", "--count takes a number of refreshes, not '%s'",
					     optarg);
			break;
		case 'h': fputs(usage_text, stdout); return MT_EXIT_OK;
		default:
			if (!mt_view_option(&view, "top", c, optarg))
				mt_die_usage("top", "unknown option");
		}
	}
	mt_view_check(&view, "top");
	if (optind != argc - 1)
		mt_die_usage("top", "needs exactly one process id");
	char *end;
	long pidl = strtol(argv[optind], &end, 10);
	if (end == argv[optind] || *end || pidl <= 0 || pidl > INT_MAX)
		mt_die_usage("top", "'%s' is not a process id", argv[optind]);
	pid_t pid = (pid_t)pidl;
	/* the library's own parser and its list of signals memtrace may take */
	long sigl = 0, lo, hi;
	if (!mt_opt_parse(MT_OPT_SIGNAL, 0, 0, sig_name, &sigl))
		mt_die_usage("top", "--signal takes %s, not '%s'",
			     mt_opt_expect(MT_OPT_SIGNAL, 0, 0, &lo, &hi), sig_name);
	if (sigl == 0)
		mt_die_usage("top", "--signal none: top asks for each snapshot by a signal");
	int sig = (int)sigl;
	if (kill(pid, 0) != 0 && errno == ESRCH) {
		fprintf(stderr, "memtrace top: no process %d\n", (int)pid);
		return MT_EXIT_USAGE;
	}
	if (mt_has_memtrace(pid) <= 0) {
		fprintf(stderr,
			"memtrace top: process %d has no memtrace: start it with memtrace run, or "
			"memtrace attach %d first\n",
			(int)pid, (int)pid);
		return MT_EXIT_USAGE;
	}
	char *dir = dir_opt ? realpath(dir_opt, NULL) : process_dir(pid);
	if (!dir) {
		fprintf(stderr, "memtrace top: cannot tell where %d writes snapshots; use --dir\n",
			(int)pid);
		return MT_EXIT_USAGE;
	}

	frame_t f = {.pid = pid, .dir = dir, .interval = interval, .growth = growth,
		     .limit = view.limit ? view.limit : 10, .tty = isatty(STDOUT_FILENO) &&
								  isatty(STDIN_FILENO)};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quit;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (f.tty && tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
		struct termios t = saved_tty;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 0;
		t.c_cc[VTIME] = 0;
		raw_tty = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
		atexit(tty_restore);
		fputs("\033[?25l", stdout); /* no cursor while it redraws */
	}

	mt_snap_t first, prev, cur;
	bool have_first = false, have_prev = false;
	mt_sym_t *sym = NULL;
	line_t *lines = NULL;
	double t0 = mt_now();
	int status = MT_EXIT_OK;
	char note[PATH_MAX + 64] = "";
	for (int refresh = 1; !quit && (!count || refresh <= count); refresh++) {
		unsigned got = mt_request_snapshot(dir, pid, sig, 10);
		if (!got) {
			if (kill(pid, 0) != 0 && have_first)
				break; /* it ended */
			if (kill(pid, 0) != 0) {
				fprintf(stderr, "memtrace top: cannot signal %d: %s\n", (int)pid,
					strerror(errno));
				status = MT_EXIT_USAGE;
				break;
			}
			tty_restore();
			fprintf(stderr,
				"memtrace top: no snapshot of %d appeared in %s within 10 s: give "
				"its directory with --dir, and its signal with --signal\n",
				(int)pid, dir);
			status = MT_EXIT_USAGE;
			break;
		}
		char *path = mt_xasprintf("%s/memtrace.%d.%u.snap", dir, (int)pid, got), err[256];
		int lr = mt_snap_load(path, &cur, err, sizeof(err));
		if (!keep)
			unlink(path); /* read: the file is not needed any more */
		if (lr != 0) {
			tty_restore();
			fprintf(stderr, "memtrace top: %s: %s\n", path, err);
			free(path);
			status = MT_EXIT_INPUT;
			break;
		}
		if (!sym)
			sym = mt_sym_open(&cur);
		mt_stats_t st;
		mt_stats_build(&cur, sym, &view, false, &st);
		fold(&lines, &st, !have_first);
		mt_stats_free(&st);
		f.refresh = refresh;
		f.secs = mt_now() - t0;
		f.a = have_first ? &first : &cur;
		f.b = &cur;
		f.prev = have_prev ? &prev : have_first ? &first : NULL;
		f.exe = cur.exe ? cur.exe : "?";
		f.note = *note ? note : NULL;
		draw(&f, lines);
		if (have_prev)
			mt_snap_free(&prev);
		if (!have_first) {
			first = cur; /* the baseline, kept; the symbols refer to it */
			have_first = true;
			have_prev = false;
		} else {
			prev = cur;
			have_prev = true;
		}
		/* wait for the next refresh, answering keys */
		for (double w = mt_now(); !quit && mt_now() - w < interval;) {
			struct pollfd p = {STDIN_FILENO, POLLIN, 0};
			int left = (int)((interval - (mt_now() - w)) * 1000) + 1;
			if (!raw_tty) {
				struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
				nanosleep(&ts, NULL);
				continue;
			}
			if (poll(&p, 1, left) <= 0)
				continue;
			char k;
			if (read(STDIN_FILENO, &k, 1) != 1)
				continue;
			if (k == 'q')
				quit = 1;
			else if (k == 's')
				f.growth = !f.growth;
			else if (k == 'p') { /* one more snapshot, kept */
				unsigned k2 = mt_request_snapshot(dir, pid, sig, 10);
				if (k2)
					snprintf(note, sizeof(note), "kept: %s/memtrace.%d.%u.snap",
						 dir, (int)pid, k2);
				else
					snprintf(note, sizeof(note),
						 "no snapshot came within 10 s");
			}
			if (k == 's' || k == 'p') {
				f.note = *note ? note : NULL;
				draw(&f, lines);
			}
		}
		free(path);
	}
	tty_restore();
	line_t *l, *tmp;
	HASH_ITER(hh, lines, l, tmp) {
		HASH_DEL(lines, l);
		free(l->key);
		free(l);
	}
	if (have_prev)
		mt_snap_free(&prev);
	if (sym)
		mt_sym_close(sym);
	if (have_first)
		mt_snap_free(&first);
	free(dir);
	return status;
}
