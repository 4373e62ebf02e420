/* SPDX-License-Identifier: MIT */
/*
 * cmd-attach.c - `memtrace attach [OPTIONS] PID` and `memtrace detach PID`:
 * loads libmemtrace.so into a process that is already running and starts
 * it there (src/attach.c puts its hooks in the loaded objects' GOT), or puts
 * the process's entries back.
 *
 * The injection is gdb's (Debian's gdb, as heaptrack does): gdb stops the
 * process, calls dlopen and mt_attach in it, and lets it go. Writing our
 * own ptrace injector would mean redoing what gdb already does well: find
 * dlopen in a process without symbols of its own, make an inferior call on
 * any thread state, and restore the registers and signal state after it.
 * Every refusal is checked before gdb runs, so a refused process is never
 * stopped.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char attach_head[] =
	"usage: memtrace attach [OPTIONS] PID\n"
	"\n"
	"Loads libmemtrace.so into the running process PID (through gdb, which\n"
	"stops it for the moment of the injection) and tracks its allocations from\n"
	"then on; blocks allocated before are not counted. Snapshots as under\n"
	"memtrace run: on the signal, every interval, at exit. The options are\n"
	"memtrace run's, each value checked first:\n"
	"\n";
static const char attach_tail[] =
	"      --for SECS       detach after SECS seconds (memtrace waits till then)\n"
	"      --lib PATH       the libmemtrace.so to load\n"
	"  -h, --help           this text\n";

/* The options as the library reads them in place of the environment. */
struct lines {
	char *buf;
	size_t cap;
	int n;
};
static void put_line(const char *var, const char *value, void *arg)
{
	struct lines *l = arg;
	if (l->n >= 0 && (size_t)l->n < l->cap)
		l->n += snprintf(l->buf + l->n, l->cap - (size_t)l->n, "%s=%s\n", var, value);
}

static const char detach_usage[] =
	"usage: memtrace detach PID\n"
	"\n"
	"Puts back the entries memtrace attach redirected in PID: the process's\n"
	"allocations go where they went before, and memtrace, still loaded, stays\n"
	"inert (no further snapshot, not even at exit).\n";

static int refuse(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "memtrace %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return MT_EXIT_USAGE;
}

/* The refusals, each one line; 0 when PID can be attached to. */
static int check_target(const char *cmd, pid_t pid, bool attaching)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return refuse(cmd, "no process %d", (int)pid);
	char *maps = mt_slurp(path, NULL);
	if (!maps)
		return refuse(cmd,
			      "cannot read /proc/%d/maps (%s): the process is another user's; "
			      "run as that user or root",
			      (int)pid, strerror(errno));
	bool has_mt = strstr(maps, "/libmemtrace.so") != NULL;
	bool has_ld = strstr(maps, "/ld-linux-x86-64.so") != NULL;
	bool has_libc = strstr(maps, "/libc.so.6") != NULL;
	free(maps);
	if (!attaching) {
		if (!has_mt)
			return refuse(cmd, "process %d has no memtrace to detach", (int)pid);
		return 0;
	}
	if (has_mt)
		return refuse(cmd,
			      "process %d has memtrace loaded already (preloaded, or attached "
			      "before: a process is attached once): kill -USR1 %d writes a "
			      "snapshot if it is tracking",
			      (int)pid, (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	bool elf64 = fd >= 0 && read(fd, &eh, sizeof(eh)) == (ssize_t)sizeof(eh) &&
		     !memcmp(eh.e_ident, ELFMAG, SELFMAG);
	if (fd >= 0)
		close(fd);
	if (fd >= 0 && (!elf64 || eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64))
		return refuse(cmd, "process %d is not an x86-64 program: memtrace cannot load into it",
			      (int)pid);
	if (!has_ld)
		return refuse(cmd,
			      "process %d is statically linked: there is no loader to load "
			      "memtrace with",
			      (int)pid);
	if (!has_libc)
		return refuse(cmd, "process %d does not use glibc: memtrace needs it", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *st = mt_slurp(path, NULL);
	unsigned ruid = 0, euid = 0, rgid = 0, egid = 0;
	const char *u = st ? strstr(st, "\nUid:") : NULL, *g = st ? strstr(st, "\nGid:") : NULL;
	if (u)
		sscanf(u + 5, "%u %u", &ruid, &euid);
	if (g)
		sscanf(g + 5, "%u %u", &rgid, &egid);
	free(st);
	if (ruid != euid || rgid != egid)
		return refuse(cmd,
			      "process %d runs setuid or setgid (uid %u/%u): memtrace does not load "
			      "into a process that changed identity",
			      (int)pid, ruid, euid);
	if (geteuid() != 0 && geteuid() != euid)
		return refuse(cmd, "process %d is uid %u's: run as that user or root", (int)pid,
			      euid);
	char *scope = mt_slurp("/proc/sys/kernel/yama/ptrace_scope", NULL);
	int sc = scope ? atoi(scope) : 0;
	free(scope);
	if (geteuid() != 0 && sc >= 1)
		return refuse(cmd,
			      "ptrace is limited to a process's parent (kernel.yama.ptrace_scope=%d): "
			      "run as root, or set it to 0",
			      sc);
	return 0;
}

/* Runs gdb on pid with these commands; its output in *out. The status. */
static int run_gdb(pid_t pid, const char *const *cmds, int n, char **out, double *secs)
{
	char pidbuf[24];
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
	const char **argv = mt_xmalloc(sizeof(*argv) * (size_t)(8 + 2 * n));
	int a = 0;
	argv[a++] = "gdb";
	argv[a++] = "-nx";
	argv[a++] = "-batch";
	argv[a++] = "-q";
	argv[a++] = "-p";
	argv[a++] = pidbuf;
	for (int i = 0; i < n; i++) {
		argv[a++] = "-ex";
		argv[a++] = cmds[i];
	}
	argv[a] = NULL;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	double t0 = mt_now();
	pid_t g = fork();
	if (g == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0)
			dup2(null, 0);
		execvp("gdb", (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	size_t cap = 4096, len = 0;
	char *buf = mt_xmalloc(cap + 1);
	for (ssize_t r; (r = read(pfd[0], buf + len, cap - len)) != 0;) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		len += (size_t)r;
		if (len == cap)
			buf = mt_xrealloc(buf, (cap *= 2) + 1);
	}
	buf[len] = '\0';
	close(pfd[0]);
	int status = 0;
	while (g > 0 && waitpid(g, &status, 0) < 0 && errno == EINTR)
		;
	*secs = mt_now() - t0;
	*out = buf;
	free(argv);
	return g < 0 ? -1 : status;
}

/* The value gdb printed for its k-th expression ("$k = ..."), or NULL. */
static const char *gdb_value(const char *out, int k)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "$%d = ", k);
	const char *p = strstr(out, tag);
	return p ? p + strlen(tag) : NULL;
}

/* A C string literal for gdb: quotes and backslashes escaped, newlines as
 * \n. */
static void literal(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 4 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\', out[n++] = *s;
		else if (*s == '\n')
			out[n++] = '\\', out[n++] = 'n';
		else
			out[n++] = *s;
	}
	out[n] = '\0';
}

static pid_t parse_pid(const char *cmd, const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v <= 0 || v > INT_MAX)
		mt_die_usage(cmd, "'%s' is not a process id", s);
	return (pid_t)v;
}

static int do_detach(pid_t pid)
{
	static const char *const cmds[] = {"call (int)mt_detach()"};
	char *out = NULL;
	double secs = 0;
	int st = run_gdb(pid, cmds, 1, &out, &secs);
	const char *v = out ? gdb_value(out, 1) : NULL;
	int n = v ? atoi(v) : -2;
	if (st != 0 || !v || n < 0) {
		const char *line = out && *out ? out : "no output\n";
		fprintf(stderr, "memtrace detach: %s%.*s",
			n == -1 ? "process was not attached by memtrace; gdb said: " : "gdb failed: ",
			(int)strcspn(line, "\n"), line);
		fputc('\n', stderr);
		free(out);
		return MT_EXIT_USAGE;
	}
	fprintf(stderr,
		"memtrace: detached from %d in %.2f s: %d entr%s put back; memtrace stays loaded, "
		"inert\n",
		(int)pid, secs, n, n == 1 ? "y" : "ies");
	free(out);
	return MT_EXIT_OK;
}

int mt_cmd_detach(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(detach_usage, stdout);
		return MT_EXIT_OK;
	}
	if (argc != 2)
		mt_die_usage("detach", "needs exactly one process id");
	pid_t pid = parse_pid("detach", argv[1]);
	int r = check_target("detach", pid, false);
	return r ? r : do_detach(pid);
}

static volatile sig_atomic_t stop_waiting;
static void on_int(int sig)
{
	(void)sig;
	stop_waiting = 1;
}

int mt_cmd_attach(int argc, char **argv)
{
	struct option opts[MT_OPTFLAGS_MAX + 4];
	char shorts[2 * MT_OPTFLAGS_MAX + 8] = "+h";
	size_t no = 0;
	mt_optflags_add(opts, &no, shorts);
	opts[no++] = (struct option){"for", required_argument, NULL, 'f'};
	opts[no++] = (struct option){"lib", required_argument, NULL, 'L'};
	opts[no++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[no] = (struct option){0};
	mt_optflags_t flags = {{0}};
	const char *lib = NULL;
	double for_secs = -1;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (c) {
		case 'L': lib = optarg; break;
		case 'f': {
			char *end;
			for_secs = strtod(optarg, &end);
			if (end == optarg || *end || !(for_secs > 0) || for_secs > 1e7)
				mt_die_usage("attach", "--for takes seconds, not '%s'", optarg);
			break;
		}
		case 'h':
			fputs(attach_head, stdout);
			mt_optflags_usage(stdout);
			fputs(attach_tail, stdout);
			return MT_EXIT_OK;
		default:
			if (!mt_optflags_take(&flags, "attach", c, optarg))
				mt_die_usage("attach", "unknown option");
		}
	}
	const char *dir = mt_optflags_value(&flags, "MEMTRACE_DIR");
	if (optind != argc - 1)
		mt_die_usage("attach", "needs exactly one process id");
	pid_t pid = parse_pid("attach", argv[optind]);
	int r = check_target("attach", pid, true);
	if (r)
		return r;
	char *libpath = mt_find_lib(lib);
	if (!libpath)
		return refuse("attach", "cannot find libmemtrace.so%s%s; use --lib PATH",
			      lib ? " at " : "", lib ? lib : "");
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, "/");
	char *absdir = realpath(dir ? dir : cwd, NULL);
	struct stat sb;
	if (!absdir || stat(absdir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return refuse("attach", "snapshot directory %s: %s", dir ? dir : cwd,
			      absdir ? "not a directory" : strerror(errno));
	if (access("/usr/bin/gdb", X_OK) != 0 && system("command -v gdb >/dev/null 2>&1") != 0)
		return refuse("attach", "needs gdb to load memtrace into a process (Debian "
					"package gdb)");

	/* the options, as the library reads them in place of the environment */
	char lines[8192];
	struct lines l = {lines, sizeof(lines), snprintf(lines, sizeof(lines), "MEMTRACE_DIR=%s\n", absdir)};
	mt_optflags_each(&flags, put_line, &l);
	char lit_lib[PATH_MAX * 2 + 8], lit_opts[sizeof(lines) * 2];
	literal(lit_lib, sizeof(lit_lib), libpath);
	literal(lit_opts, sizeof(lit_opts), lines);
	char *c1 = mt_xasprintf("call (void *)dlopen(\"%s\", 2)", lit_lib);
	char *c3 = mt_xasprintf("call (int)mt_attach(\"%s\")", lit_opts);
	const char *cmds[] = {c1, "call (char *)dlerror()", c3};
	char *out = NULL;
	double secs = 0;
	int st = run_gdb(pid, cmds, 3, &out, &secs);
	const char *h = out ? gdb_value(out, 1) : NULL;
	const char *v = out ? gdb_value(out, 3) : NULL;
	int ok = v ? atoi(v) : -3;
	if (st != 0 || !h || strstr(h, "0x0\n") == h + strlen("(void *) ") || ok != 0) {
		const char *why = out && strstr(out, "ptrace: ") ? strstr(out, "ptrace: ") : NULL;
		const char *err = out ? gdb_value(out, 2) : NULL;
		if (why)
			fprintf(stderr, "memtrace attach: gdb cannot attach to %d: %.*s\n", (int)pid,
				(int)strcspn(why + 8, "\n"), why + 8);
		else if (h && strncmp(h, "(void *) 0x0\n", 13) == 0 && err)
			fprintf(stderr, "memtrace attach: dlopen failed in %d: %.*s\n", (int)pid,
				(int)strcspn(err, "\n"), err);
		else if (ok == -1)
			fprintf(stderr, "memtrace attach: process %d has memtrace already\n",
				(int)pid);
		else
			fprintf(stderr, "memtrace attach: could not start memtrace in %d: %.*s\n",
				(int)pid, (int)strcspn(out ? out : "", "\n"), out ? out : "");
		free(out);
		return MT_EXIT_USAGE;
	}
	const char *interval = mt_optflags_value(&flags, "MEMTRACE_INTERVAL");
	const char *sig = mt_optflags_value(&flags, "MEMTRACE_SIGNAL");
	char every[64] = "";
	if (interval)
		snprintf(every, sizeof(every), ", every %s s", interval);
	fprintf(stderr,
		"memtrace: attached to %d (stopped %.2f s for gdb's injection); snapshots in %s: "
		"kill -%s %d%s, and at exit; memtrace detach %d ends it\n",
		(int)pid, secs, absdir, sig ? sig : "USR1", (int)pid, every, (int)pid);
	free(out);
	free(c1);
	free(c3);
	free(libpath);
	free(absdir);
	if (for_secs < 0)
		return MT_EXIT_OK;
	signal(SIGINT, on_int);
	signal(SIGTERM, on_int);
	for (double t0 = mt_now(); !stop_waiting && mt_now() - t0 < for_secs;) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return MT_EXIT_OK; /* it ended: its at-exit snapshot is written */
	}
	return do_detach(pid);
}
