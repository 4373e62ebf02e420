/* SPDX-License-Identifier: MIT */
/*
 * cmd-allocators.c - `memtrace allocators [OPTIONS] -- CMD ARGS`: runs CMD
 * under every allocator configuration worth trying (glibc's defaults, glibc
 * with arena_max 1, 2 and the core count, jemalloc, tcmalloc and mimalloc
 * when installed), N times each, alternating, and prints one table of what
 * each did: peak VMS and RSS, wall and CPU time, arenas, live heap against
 * what the allocator held; then one line of advice with the environment
 * that deploys the best one without memtrace.
 *
 * Each run is given exactly that environment (MALLOC_ARENA_MAX, an
 * allocator preloaded) and nothing else: the kernel's figures (VmPeak, read
 * every 10 ms and at the process's exit stop; the peak RSS and CPU time
 * from wait4)
 * are those of the configuration as deployed. A profiler's slowdown moves
 * them (threads overlap differently: under memtrace jemalloc's peak RSS on
 * the 64-thread demo was 3.7 times its own), so the figures only memtrace
 * can give (the live heap's peak, what the allocator held, its arenas, and
 * which allocator really served malloc) come from one more run of each
 * configuration with libmemtrace.so preloaded, sampled; --bare leaves that
 * run out.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage_text[] =
	"usage: memtrace allocators [OPTIONS] [--] COMMAND [ARGS...]\n"
	"\n"
	"Runs COMMAND under each allocator configuration (glibc's defaults, glibc\n"
	"with arena_max 1, 2 and the core count, jemalloc, tcmalloc and mimalloc when\n"
	"installed), N times each, alternating, and prints one table: peak VMS and\n"
	"RSS, wall and CPU time (each run as deployed, without memtrace); then the\n"
	"arenas, the live heap at its peak and what the allocator held (one run more\n"
	"under memtrace, sampled); then the configuration that lowers RSS and VMS\n"
	"most and the environment that deploys it without memtrace.\n"
	"\n"
	"  -n, --runs N         runs of each configuration (default 3): medians\n"
	"      --duration SECS  end each run with SIGTERM after SECS seconds (a\n"
	"                       service); the figures are read before the end\n"
	"      --load CMD       run CMD (sh -c) against each run; the run ends when\n"
	"                       CMD does, or at --duration\n"
	"      --warmup SECS    wait before starting the load (default 0.5)\n"
	"      --only LIST      these configurations only, comma-separated, from:\n"
	"                       glibc, arena1, arena2, arenaN, jemalloc, tcmalloc,\n"
	"                       mimalloc (glibc's defaults always run: the baseline)\n"
	"      --bare           no run under memtrace: no live heap, held or arenas\n"
	"      --sample BYTES   memtrace's mean sampling interval (default 512K)\n"
	"      --json           one JSON document on stdout instead of the table\n"
	"  -h, --help           this text\n"
	"\n"
	"COMMAND's output goes to /dev/null; a run that fails is marked in the table.\n";

/* The configurations, one row each: what the table calls it, the
 * allocator (MT_ALLOCATORS' name), glibc's arena_max (0: glibc's default;
 * -1: the core count). */
static const struct config {
	const char *key, *label, *allocator;
	int arena_max;
} configs[] = {
	{"glibc", "glibc (defaults)", "glibc", 0},
	{"arena1", "glibc, arena_max=1", "glibc", 1},
	{"arena2", "glibc, arena_max=2", "glibc", 2},
	{"arenaN", "glibc, arena_max=cores", "glibc", -1},
	{"jemalloc", "jemalloc", "jemalloc", 0},
	{"tcmalloc", "tcmalloc", "tcmalloc", 0},
	{"mimalloc", "mimalloc", "mimalloc", 0},
};
#define NCONFIGS (sizeof(configs) / sizeof(configs[0]))

/* What one run measured. */
typedef struct run {
	double wall, cpu;
	uint64_t vms_peak, rss_peak;
	uint64_t arenas, live_peak, held; /* from memtrace's last snapshot */
	char seen[16];			  /* the allocator that served malloc */
	bool snap;			  /* memtrace's snapshot was read */
	bool failed;			  /* exited non-zero, or by a signal not ours */
	int status;
	bool load_failed;
} run_t;

/* A configuration to run, and its runs. */
typedef struct plan {
	const struct config *c;
	const char *lib; /* the allocator library to preload, "" for glibc */
	int arena_max;	 /* resolved: the core count for -1 */
	char label[48], env[64];
	run_t *runs;
	int nruns;
	run_t med;    /* medians of the runs */
	run_t traced; /* the run under memtrace */
} plan_t;

typedef struct opts {
	int runs;
	double duration, warmup;
	const char *load, *sample, *only;
	bool bare, json;
	char **argv;
	char *cmdpath, *memtrace_lib, *tmp;
} opts_t;

static void nap(double secs)
{
	struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* VmPeak of a live process in bytes; 0 once it is gone or a zombie. */
static uint64_t vm_peak(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nVmPeak:");
	return p ? strtoull(p + 8, NULL, 10) * 1024 : 0;
}

static void child_env(const opts_t *o, const plan_t *pl, const char *dir, bool traced)
{
	const char *old = getenv("LD_PRELOAD");
	char *preload = mt_xasprintf("%s%s%s%s%s", !traced ? "" : o->memtrace_lib,
				     traced && *pl->lib ? ":" : "", pl->lib,
				     old && *old && (*pl->lib || traced) ? ":" : "",
				     old && *old ? old : "");
	if (*preload)
		setenv("LD_PRELOAD", preload, 1);
	free(preload);
	if (pl->arena_max > 0) {
		char n[16];
		snprintf(n, sizeof(n), "%d", pl->arena_max);
		setenv("MALLOC_ARENA_MAX", n, 1);
	} else {
		unsetenv("MALLOC_ARENA_MAX");
	}
	if (traced) {
		char me[32];
		snprintf(me, sizeof(me), "%d", (int)getpid());
		setenv("MEMTRACE_DIR", dir, 1);
		setenv("MEMTRACE_SAMPLE", o->sample, 1);
		setenv("MEMTRACE_LEAK_SCAN", "0", 1);
		setenv("MEMTRACE_ONLY_PID", me, 1); /* the command's children: untracked */
		unsetenv("MEMTRACE_ARENA_MAX");
		unsetenv("MEMTRACE_ALLOCATOR");
		unsetenv("MEMTRACE_INTERVAL");
	}
}

/*
 * Starts a run. The command's own process is watched for its exit (when
 * watch is set) with ptrace's exit stop, where its memory is still all
 * there: VmPeak read at that stop is the run's true peak, not the last one
 * a 10 ms poll saw. PTRACE_SEIZE, so that the program sees no extra SIGTRAP
 * at exec and its own signals and stops are passed on unchanged; when
 * ptrace is refused, polling alone stands.
 */
static pid_t spawn(char **argv, const char *path, const opts_t *o, const plan_t *pl,
		   const char *dir, bool traced, bool *watched)
{
	int go[2] = {-1, -1};
	if (watched && pipe2(go, O_CLOEXEC) != 0)
		watched = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return pid;
	if (pid != 0) {
		if (watched) {
			*watched = ptrace(PTRACE_SEIZE, pid, NULL,
					  (void *)(uintptr_t)PTRACE_O_TRACEEXIT) == 0;
			close(go[0]);
			close(go[1]); /* the child goes on */
		}
		return pid;
	}
	setpgid(0, 0);
	if (watched) {
		char c;
		close(go[1]);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
	}
	if (pl)
		child_env(o, pl, dir, traced);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	execv(path, argv);
	_exit(127);
}

/* A stop of the watched process: its exit (VmPeak read, then on), a signal
 * (delivered as sent), a group stop (kept until the program is continued). */
static void on_stop(pid_t pid, int status, run_t *r)
{
	int sig = WSTOPSIG(status), event = (unsigned)status >> 16;
	if (event == PTRACE_EVENT_EXIT) {
		uint64_t v = vm_peak(pid);
		if (v > r->vms_peak)
			r->vms_peak = v;
		ptrace(PTRACE_CONT, pid, NULL, NULL);
	} else if (event == PTRACE_EVENT_STOP && (sig == SIGSTOP || sig == SIGTSTP ||
						  sig == SIGTTIN || sig == SIGTTOU)) {
		ptrace(PTRACE_LISTEN, pid, NULL, NULL); /* stopped until SIGCONT */
	} else if (event == PTRACE_EVENT_STOP) {
		ptrace(PTRACE_CONT, pid, NULL, NULL); /* continued */
	} else {
		ptrace(PTRACE_CONT, pid, NULL, (void *)(uintptr_t)sig);
	}
}

/* Ends a service: a snapshot first (under memtrace), then SIGTERM, then
 * after 10 s SIGKILL to its process group. Returns VmPeak read last. */
static uint64_t end_service(pid_t pid, const char *dir, int *ours, bool traced)
{
	uint64_t peak = vm_peak(pid);
	if (traced)
		(void)mt_request_snapshot(dir, pid, SIGUSR1, 10);
	uint64_t v = vm_peak(pid);
	if (v > peak)
		peak = v;
	*ours = SIGTERM;
	kill(pid, SIGTERM);
	return peak;
}

/* Run k of a configuration (-1: the run under memtrace). */
static void run_once(const opts_t *o, plan_t *pl, int k)
{
	bool traced = k < 0;
	run_t *r = traced ? &pl->traced : &pl->runs[k];
	memset(r, 0, sizeof(*r));
	char *dir = mt_xasprintf("%s/%s.%d", o->tmp, pl->c->key, k + 1);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "memtrace allocators: %s: %s\n", dir, strerror(errno));
		exit(MT_EXIT_USAGE);
	}
	double t0 = mt_now();
	bool watched = false;
	pid_t pid = spawn(o->argv, o->cmdpath, o, pl, dir, traced, traced ? NULL : &watched);
	pid_t load = -1;
	if (pid < 0) {
		fprintf(stderr, "memtrace allocators: fork: %s\n", strerror(errno));
		exit(MT_EXIT_USAGE);
	}
	int status = 0, ours = 0, load_status = 0;
	bool ended = false, load_started = !o->load;
	double ended_at = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	for (;;) {
		pid_t w = wait4(pid, &status, WNOHANG, &ru);
		if (w == pid && WIFSTOPPED(status) && watched) {
			on_stop(pid, status, r);
			continue;
		}
		if (w == pid)
			break;
		uint64_t v = vm_peak(pid);
		if (v > r->vms_peak)
			r->vms_peak = v;
		double t = mt_now() - t0;
		if (!load_started && t >= o->warmup) {
			char *sh[] = {"sh", "-c", (char *)o->load, NULL};
			load = spawn(sh, "/bin/sh", o, NULL, NULL, false, NULL);
			load_started = true;
		}
		if (load > 0 && waitpid(load, &load_status, WNOHANG) == load) {
			r->load_failed = !WIFEXITED(load_status) || WEXITSTATUS(load_status);
			load = 0;
		}
		bool due = (o->duration > 0 && t >= o->duration) || (o->load && load == 0);
		if (due && !ended) {
			ended_at = mt_now();
			v = end_service(pid, dir, &ours, traced);
			if (v > r->vms_peak)
				r->vms_peak = v;
			ended = true;
		}
		if (ended && mt_now() - ended_at > 10) /* SIGTERM did not end it */
			kill(-pid, SIGKILL);
		nap(0.01);
	}
	/* a service's time is until it was asked to end */
	r->wall = (ended ? ended_at : mt_now()) - t0;
	if (load > 0) {
		kill(-load, SIGTERM);
		waitpid(load, &load_status, 0);
	}
	kill(-pid, SIGKILL); /* what the command left behind */
	r->status = status;
	r->failed = WIFSIGNALED(status) ? WTERMSIG(status) != ours
					: WEXITSTATUS(status) != 0 && !ours;
	r->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	r->rss_peak = (uint64_t)ru.ru_maxrss * 1024;
	unsigned seq = traced ? mt_newest_seq(dir, pid) : 0;
	char *snap = seq ? mt_xasprintf("%s/memtrace.%d.%u.snap", dir, (int)pid, seq) : NULL;
	mt_snap_t s;
	char err[256];
	if (snap && mt_snap_load(snap, &s, err, sizeof(err)) == 0) {
		if (s.has_alloc) {
			r->snap = true;
			if (s.alloc.vms_peak > r->vms_peak)
				r->vms_peak = s.alloc.vms_peak;
			r->arenas = s.alloc.arenas;
			r->held = s.alloc.held;
			snprintf(r->seen, sizeof(r->seen), "%s", s.alloc.name);
		}
		r->live_peak = s.totals.heap_peak_bytes;
		mt_snap_free(&s);
	} else if (snap) {
		fprintf(stderr, "memtrace allocators: %s: %s\n", snap, err);
	}
	/* the run's files go: nothing is left behind */
	char *rm = mt_xasprintf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		fprintf(stderr, "memtrace allocators: cannot remove %s\n", dir);
	free(rm);
	free(snap);
	free(dir);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The medians of the runs that did not fail. */
static void medians(plan_t *pl)
{
	double v[4][64];
	int n = 0;
	run_t *m = &pl->med;
	memset(m, 0, sizeof(*m));
	for (int k = 0; k < pl->nruns; k++) {
		run_t *r = &pl->runs[k];
		m->load_failed |= r->load_failed;
		if (r->failed) {
			m->failed = true;
			m->status = r->status;
			continue;
		}
		if (n >= 64)
			continue;
		v[0][n] = r->wall, v[1][n] = r->cpu, v[2][n] = (double)r->vms_peak;
		v[3][n] = (double)r->rss_peak;
		n++;
	}
	if (!n)
		return;
	for (int i = 0; i < 4; i++)
		qsort(v[i], (size_t)n, sizeof(double), cmp_double);
#define MED(i) (n % 2 ? v[i][n / 2] : (v[i][n / 2 - 1] + v[i][n / 2]) / 2)
	m->wall = MED(0), m->cpu = MED(1), m->vms_peak = (uint64_t)MED(2);
	m->rss_peak = (uint64_t)MED(3);
#undef MED
	m->failed = m->failed && n == 0;
}

/* Whether a configuration was served by the allocator it names (a program
 * linked with its own, redis-server with jemalloc, is not). */
static bool served_as_meant(const opts_t *o, const plan_t *pl)
{
	return o->bare || !pl->traced.snap || !strcmp(pl->traced.seen, pl->c->allocator);
}

static bool usable(const plan_t *pl)
{
	return !pl->med.failed && pl->med.vms_peak && pl->med.rss_peak;
}

/* Peak VMS and RSS as fractions of glibc's defaults', added: the lower,
 * the less memory; 2 is the defaults'. -1 when the configuration does not
 * count: failed, served by another allocator than it names, no less memory
 * in all (a sum of 2 or more), or lowering neither peak by 10 %. One peak
 * may rise while the other falls more; the advice says by how much. (A bar
 * of +25 % on either made the advice flip: the 64-thread demo's peak RSS
 * moves that much from run to run as its threads overlap.) */
static double memory_score(const opts_t *o, const plan_t *p, int i)
{
	const run_t *b = &p[0].med, *m = &p[i].med;
	if (!usable(&p[i]) || !served_as_meant(o, &p[i]))
		return -1;
	double v = (double)m->vms_peak / (double)b->vms_peak;
	double r = (double)m->rss_peak / (double)b->rss_peak;
	if (v + r >= 2 || (v > 0.90 && r > 0.90))
		return -1;
	return v + r;
}

static double cpu_cost(const plan_t *p, int i)
{
	const run_t *b = &p[0].med;
	return b->cpu > 0 ? 100 * (p[i].med.cpu / b->cpu - 1) : 0;
}

/* The advice: the configuration that lowers peak VMS and RSS most
 * (memory_score), what it does to each and its cost in CPU time said; when
 * that cost is above 25 %, also the one that lowers them most within 25 %,
 * if any. */
static int advise(const opts_t *o, plan_t *p, int np, char *out, size_t cap)
{
	const run_t *b = &p[0].med;
	int best = -1, cheap = -1;
	char own[160] = "";
	if (!usable(&p[0])) {
		snprintf(out, cap, "no advice: the run under glibc's defaults failed");
		return -1;
	}
	if (!served_as_meant(o, &p[0]))
		snprintf(own, sizeof(own),
			 "the program links its own allocator, %s: glibc's settings do not "
			 "reach it, and the rest are measured against it. ",
			 p[0].traced.seen);
	for (int i = 1; i < np; i++) {
		double sc = memory_score(o, p, i);
		if (sc < 0)
			continue;
		if (best < 0 || sc < memory_score(o, p, best) - 1e-9)
			best = i;
		if (cpu_cost(p, i) <= 25 && (cheap < 0 || sc < memory_score(o, p, cheap) - 1e-9))
			cheap = i;
	}
	if (best < 0) {
		snprintf(out, cap,
			 "%skeep %s: no configuration lowers peak VMS or RSS by 10 %% "
			 "or more and the two together",
			 own, *own ? "it" : "glibc's defaults");
		return -1;
	}
	const run_t *m = &p[best].med;
	char v0[32], v1[32], r0[32], r1[32], alt[200] = "";
	mt_format_size(v0, sizeof(v0), (double)b->vms_peak, false);
	mt_format_size(v1, sizeof(v1), (double)m->vms_peak, false);
	mt_format_size(r0, sizeof(r0), (double)b->rss_peak, false);
	mt_format_size(r1, sizeof(r1), (double)m->rss_peak, false);
	double dv = 100 * (1 - (double)m->vms_peak / (double)b->vms_peak);
	double dr = 100 * (1 - (double)m->rss_peak / (double)b->rss_peak);
	if (cpu_cost(p, best) > 25 && cheap >= 0 && cheap != best) {
		const run_t *c = &p[cheap].med;
		snprintf(alt, sizeof(alt),
			 " (at under 25 %% more time: %s, VMS %+.0f %%, RSS %+.0f %%, CPU %+.0f %%, "
			 "with %s)",
			 p[cheap].label, -100 * (1 - (double)c->vms_peak / (double)b->vms_peak),
			 -100 * (1 - (double)c->rss_peak / (double)b->rss_peak), cpu_cost(p, cheap),
			 p[cheap].env);
	}
	snprintf(out, cap,
		 "%s%s %s peak VMS by %.0f %% (%s to %s) and %s peak RSS by %.0f %% (%s to %s), "
		 "at %+.0f %% CPU time%s; deploy it without memtrace: %s COMMAND",
		 own, p[best].label, dv >= 0 ? "lowers" : "raises", fabs(dv), v0, v1,
		 dr >= 0 ? "lowers" : "raises", fabs(dr), r0, r1, cpu_cost(p, best), alt,
		 p[best].env);
	return best;
}

static const char *size_or_dash(char *buf, uint64_t v, bool have)
{
	if (!have)
		return "-";
	mt_format_size(buf, 32, (double)v, false);
	return buf;
}

static void print_table(const opts_t *o, plan_t *p, int np, const char *advice)
{
	char a[32], b[32], c[32], d[32];
	printf("memtrace allocators: %d run%s of each configuration as deployed (medians)%s\n",
	       o->runs, MT_PL(o->runs),
	       o->bare ? "" : "; arenas, live peak and held from one more under memtrace");
	printf("%-24s %10s %10s %8s %8s %6s %10s %10s  %s\n", "configuration", "VMS peak",
	       "RSS peak", "wall s", "CPU s", "arenas", "live peak", "held", "note");
	for (int i = 0; i < np; i++) {
		const run_t *m = &p[i].med, *t = &p[i].traced;
		char note[96] = "";
		if (m->failed && WIFSIGNALED(m->status))
			snprintf(note, sizeof(note), "failed: signal %d", WTERMSIG(m->status));
		else if (m->failed)
			snprintf(note, sizeof(note), "failed: exit %d", WEXITSTATUS(m->status));
		else if (!served_as_meant(o, &p[i]))
			snprintf(note, sizeof(note), "served by %s (linked by the program)", t->seen);
		if (m->load_failed)
			snprintf(note + strlen(note), sizeof(note) - strlen(note), "%sthe load failed",
				 *note ? "; " : "");
		char arenas[16] = "-";
		if (t->snap && (!strcmp(t->seen, "glibc") || !strcmp(t->seen, "jemalloc")))
			snprintf(arenas, sizeof(arenas), "%" PRIu64, t->arenas);
		printf("%-24s %10s %10s %8.2f %8.2f %6s %10s %10s  %s\n", p[i].label,
		       size_or_dash(a, m->vms_peak, m->vms_peak), size_or_dash(b, m->rss_peak, true),
		       m->wall, m->cpu, arenas, size_or_dash(c, t->live_peak, t->snap),
		       size_or_dash(d, t->held, t->snap && t->held), note);
	}
	printf("Advice: %s\n", advice);
}

static void print_json(const opts_t *o, plan_t *p, int np, int best, const char *advice)
{
	printf("{\"command\":[");
	for (int i = 0; o->argv[i]; i++) {
		printf(i ? "," : "");
		mt_json_str(stdout, o->argv[i]);
	}
	printf("],\"runs\":%d,\"configurations\":[", o->runs);
	for (int i = 0; i < np; i++) {
		const run_t *m = &p[i].med, *t = &p[i].traced;
		printf("%s{\"key\":", i ? "," : "");
		mt_json_str(stdout, p[i].c->key);
		printf(",\"label\":");
		mt_json_str(stdout, p[i].label);
		printf(",\"env\":");
		mt_json_str(stdout, p[i].env);
		printf(",\"allocator\":");
		mt_json_str(stdout, p[i].c->allocator);
		printf(",\"served_by\":");
		if (t->snap)
			mt_json_str(stdout, t->seen);
		else
			printf("null");
		printf(",\"failed\":%s,\"load_failed\":%s,\"vms_peak\":%" PRIu64
		       ",\"rss_peak\":%" PRIu64 ",\"wall_s\":%.3f,\"cpu_s\":%.3f",
		       m->failed ? "true" : "false", m->load_failed ? "true" : "false", m->vms_peak,
		       m->rss_peak, m->wall, m->cpu);
		if (t->snap)
			printf(",\"memtrace\":{\"arenas\":%" PRIu64 ",\"live_peak\":%" PRIu64
			       ",\"held\":%" PRIu64 ",\"vms_peak\":%" PRIu64 ",\"rss_peak\":%" PRIu64
			       ",\"failed\":%s}",
			       t->arenas, t->live_peak, t->held, t->vms_peak, t->rss_peak,
			       t->failed ? "true" : "false");
		printf(",\"each\":[");
		for (int k = 0; k < p[i].nruns; k++)
			printf("%s{\"vms_peak\":%" PRIu64 ",\"rss_peak\":%" PRIu64
			       ",\"wall_s\":%.3f,\"cpu_s\":%.3f}",
			       k ? "," : "", p[i].runs[k].vms_peak, p[i].runs[k].rss_peak,
			       p[i].runs[k].wall, p[i].runs[k].cpu);
		printf("]}");
	}
	printf("],\"advice\":{\"key\":");
	if (best >= 0)
		mt_json_str(stdout, p[best].c->key);
	else
		printf("null");
	printf(",\"env\":");
	if (best >= 0)
		mt_json_str(stdout, p[best].env);
	else
		printf("null");
	printf(",\"text\":");
	mt_json_str(stdout, advice);
	printf("}}\n");
}

static bool wanted(const char *only, const char *key)
{
	if (!only || !strcmp(key, "glibc"))
		return true;
	size_t n = strlen(key);
	for (const char *p = only; (p = strstr(p, key)); p += n)
		if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

static double parse_secs(const char *opt, const char *v)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end || !(d >= 0) || d > 86400)
		mt_die_usage("allocators", "%s takes seconds (0 to 86400), not '%s'", opt, v);
	return d;
}

int mt_cmd_allocators(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"runs", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"load", required_argument, NULL, 'l'},
		{"warmup", required_argument, NULL, 'w'},
		{"only", required_argument, NULL, 'O'},
		{"bare", no_argument, NULL, 'b'},
		{"sample", required_argument, NULL, 'S'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	opts_t o = {.runs = 3, .warmup = 0.5, .sample = "512K"};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+n:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (end == optarg || *end || n < 1 || n > 64)
				mt_die_usage("allocators", "--runs takes 1 to 64, not '%s'", optarg);
			o.runs = (int)n;
			break;
		}
		case 'd': o.duration = parse_secs("--duration", optarg); break;
		case 'w': o.warmup = parse_secs("--warmup", optarg); break;
		case 'l': o.load = optarg; break;
		case 'O': o.only = optarg; break;
		case 'b': o.bare = true; break;
		case 'S': o.sample = optarg; break;
		case 'j': o.json = true; break;
		case 'h': fputs(usage_text, stdout); return MT_EXIT_OK;
		default: mt_die_usage("allocators", "unknown option");
		}
	}
	if (optind >= argc)
		mt_die_usage("allocators", "needs a command to run");
	if (o.only)
		for (const char *p = o.only; *p;) {
			size_t n = strcspn(p, ",");
			bool known = false;
			for (size_t i = 0; i < NCONFIGS; i++)
				known |= strlen(configs[i].key) == n && !strncmp(configs[i].key, p, n);
			if (!known)
				mt_die_usage("allocators", "--only: no configuration '%.*s'", (int)n, p);
			p += n + (p[n] == ',');
		}
	o.argv = argv + optind;
	o.cmdpath = mt_find_cmd(o.argv[0]);
	if (!o.cmdpath) {
		fprintf(stderr, "memtrace allocators: %s: command not found\n", o.argv[0]);
		return 127;
	}
	if (!o.bare && !(o.memtrace_lib = mt_find_lib(NULL))) {
		fprintf(stderr, "memtrace allocators: cannot find libmemtrace.so; set MEMTRACE_LIB "
				"or use --bare\n");
		return MT_EXIT_USAGE;
	}
	char tmpl[] = "/tmp/memtrace-allocators.XXXXXX";
	if (!mkdtemp(tmpl)) {
		fprintf(stderr, "memtrace allocators: cannot make a directory in /tmp: %s\n",
			strerror(errno));
		return MT_EXIT_USAGE;
	}
	o.tmp = tmpl;

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	plan_t plans[NCONFIGS];
	int np = 0;
	for (size_t i = 0; i < NCONFIGS; i++) {
		const struct config *cf = &configs[i];
		if (!wanted(o.only, cf->key))
			continue;
		int am = cf->arena_max < 0 ? (int)cores : cf->arena_max;
		if (cf->arena_max < 0 && am <= 2)
			continue; /* the same as arena_max 1 or 2 on this machine */
		const char *lib = mt_allocator_find(cf->allocator);
		if (!lib) {
			if (o.only && strstr(o.only, cf->key))
				fprintf(stderr, "memtrace allocators: %s is not installed; left out\n",
					cf->key);
			continue;
		}
		plan_t *pl = &plans[np++];
		memset(pl, 0, sizeof(*pl));
		pl->c = cf;
		pl->lib = lib;
		pl->arena_max = am;
		if (cf->arena_max < 0)
			snprintf(pl->label, sizeof(pl->label), "glibc, arena_max=%d", am);
		else
			snprintf(pl->label, sizeof(pl->label), "%s", cf->label);
		if (am > 0)
			snprintf(pl->env, sizeof(pl->env), "MALLOC_ARENA_MAX=%d", am);
		else
			snprintf(pl->env, sizeof(pl->env), "%s", mt_allocator_env(cf->allocator));
		pl->runs = mt_xmalloc((size_t)o.runs * sizeof(run_t));
	}

	mt_progress_t prog;
	static char what[256];
	snprintf(what, sizeof(what), "%s under %d configurations", o.argv[0], np);
	int total = np * (o.runs + !o.bare), done = 0;
	mt_progress_begin(&prog, "running", what, (uint64_t)total, "runs");
	for (int k = o.bare ? 0 : -1; k < o.runs; k++)
		for (int i = 0; i < np; i++) {
			run_once(&o, &plans[i], k);
			plans[i].nruns = k + 1;
			mt_progress_step(&prog, (uint64_t)++done);
		}
	mt_progress_end(&prog);
	rmdir(o.tmp);
	for (int i = 0; i < np; i++)
		medians(&plans[i]);
	char advice[512];
	int best = advise(&o, plans, np, advice, sizeof(advice));
	if (o.json)
		print_json(&o, plans, np, best, advice);
	else
		print_table(&o, plans, np, advice);
	for (int i = 0; i < np; i++)
		free(plans[i].runs);
	free(o.cmdpath);
	free(o.memtrace_lib);
	return plans[0].med.failed ? MT_EXIT_INPUT : MT_EXIT_OK;
}
