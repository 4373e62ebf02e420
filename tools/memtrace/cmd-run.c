/* SPDX-License-Identifier: MIT */
/*
 * cmd-run.c - `memtrace run [OPTIONS] -- CMD ARGS`: runs CMD with
 * libmemtrace.so preloaded, forwards the signals sent to memtrace, exits as
 * CMD did, and lists the snapshots it wrote. Says plainly when CMD cannot be
 * profiled: a static binary, a setuid one, or one with its own malloc.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef MT_LIBDIR /* set by meson */
#define MT_LIBDIR "/usr/local/lib"
#define MT_LIBDIR_FROM_BIN "../lib"
#define MT_BUILD_DIR ""
#define MT_BUILD_LIB ""
#endif

static const char usage_head[] =
	"usage: memtrace run [OPTIONS] [--] COMMAND [ARGS...]\n"
	"\n"
	"Runs COMMAND under memtrace (LD_PRELOAD=libmemtrace.so) and lists the\n"
	"snapshots written. Signals sent to memtrace go to COMMAND; memtrace exits\n"
	"as COMMAND did. Each option below sets its MEMTRACE_* variable, checked\n"
	"here first (memtrace(1) has them all):\n"
	"\n";
static const char usage_tail[] =
	"      --allocator A    the allocator behind COMMAND's allocations: glibc\n"
	"                       (system, the default), jemalloc, tcmalloc or mimalloc\n"
	"                       (preloaded after libmemtrace.so)\n"
	"      --lib PATH       the libmemtrace.so to use (default: $MEMTRACE_LIB, or\n"
	"                       the one of memtrace's own build or installation)\n"
	"      --no-children    profile COMMAND only: the processes it starts run\n"
	"                       untracked and write no snapshot\n"
	"  -v, --verbose        say which library is preloaded\n"
	"  -h, --help           this text\n";

static void usage(FILE *out)
{
	fputs(usage_head, out);
	mt_optflags_usage(out);
	fputs(usage_tail, out);
}

static void put_env(const char *var, const char *value, void *arg)
{
	(void)arg;
	setenv(var, value, 1);
}

static pid_t child;

static void forward(int sig, siginfo_t *info, void *ctx)
{
	(void)ctx;
	/* a terminal's ^C already reached the whole process group */
	if (child > 0 && (info->si_code == SI_USER || info->si_code == SI_QUEUE))
		kill(child, sig);
}

/* Why COMMAND cannot be profiled, or NULL when it can (as far as we see). */
static const char *inspect(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return NULL; /* exec will say what is wrong */
	/* only a change of identity makes the loader secure (AT_SECURE): root
	 * running its own setuid-root binary is profiled as any other */
	if (((st.st_mode & S_ISUID) && st.st_uid != getuid()) ||
	    ((st.st_mode & S_ISGID) && st.st_gid != getgid()))
		return "it is setuid/setgid to another user or group: the loader ignores "
		       "LD_PRELOAD for it and memtrace stays inert by design; no snapshot will be "
		       "written";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	const char *why = NULL;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t nph = 0;
	if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &nph) == 0) {
		bool interp = false;
		for (size_t i = 0; i < nph; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
				interp = true;
		}
		if (!interp)
			why = "it is statically linked: there is nothing to preload into; no "
			      "snapshot "
			      "will be written";
		Elf_Scn *scn = NULL;
		bool own_malloc = false, own_mmap = false;
		while (!why && (scn = elf_nextscn(e, scn))) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM)
				continue;
			Elf_Data *data = elf_getdata(scn, NULL);
			size_t count = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
			for (size_t i = 0; data && i < count; i++) {
				GElf_Sym sym;
				if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF)
					continue;
				const char *name = elf_strptr(e, sh.sh_link, sym.st_name);
				if (name && (!strcmp(name, "malloc") || !strcmp(name, "free")))
					own_malloc = true;
				if (name && !strcmp(name, "mmap"))
					own_mmap = true;
			}
		}
		/* the executable comes first in symbol lookup, before the
		 * preload: every library's malloc binds to its own */
		if (!why && own_malloc)
			why = own_mmap
				      ? "it defines its own malloc, free and mmap (an allocator "
					"linked in), which come before memtrace's in symbol lookup: "
					"no allocation of the program or its libraries will reach "
					"memtrace; snapshots will be empty"
				      : "it defines its own malloc and free (an allocator linked in, "
					"as rustc's jemalloc), which come before memtrace's in symbol "
					"lookup: no heap allocation of the program or its libraries "
					"will reach memtrace; snapshots will show its mmap calls only";
	}
	if (e)
		elf_end(e);
	close(fd);
	return why;
}

/* The directory's snapshot files, as name and inode: a dump is a rename,
 * so a file this run wrote is a new name or a new inode under an old one. */
typedef struct seen {
	char **names;
	ino_t *inos;
	int n;
} seen_t;

static bool is_snapshot_name(const char *nm)
{
	size_t len = strlen(nm);
	return !strncmp(nm, "memtrace.", 9) && len > 14 && !strcmp(nm + len - 5, ".snap");
}

static void seen_read(const char *dir, seen_t *s)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, versionsort);
	s->n = 0;
	s->names = mt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(*s->names));
	s->inos = mt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(*s->inos));
	for (int i = 0; i < n; i++) {
		struct stat st;
		char *p = mt_xasprintf("%s/%s", dir, names[i]->d_name);
		if (is_snapshot_name(names[i]->d_name) && lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			s->names[s->n] = mt_xasprintf("%s", names[i]->d_name);
			s->inos[s->n++] = st.st_ino;
		}
		free(p);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
}

static void seen_free(seen_t *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->names[i]);
	free(s->names);
	free(s->inos);
}

/* The snapshots this run's processes wrote, one line each: the process
 * (pid, its parent, the executable) and when; those of the command itself
 * (top, the process memtrace started) are the ones for check and leaks. */
static void list_snapshots(const char *dir, const seen_t *before, pid_t top)
{
	seen_t after;
	seen_read(dir, &after);
	int found = 0, mine = 0;
	for (int i = 0; i < after.n; i++) {
		bool old = false;
		for (int j = 0; j < before->n && !old; j++)
			old = before->inos[j] == after.inos[i] &&
			      !strcmp(before->names[j], after.names[i]);
		if (old)
			continue;
		char *p = mt_xasprintf("%s/%s", dir, after.names[i]), err[512];
		mt_snap_t sn;
		if (mt_snap_load(p, &sn, err, sizeof(err)) != 0) {
			fprintf(stderr, "memtrace: snapshot %s (unreadable: %s)\n", p, err);
		} else {
			char *exe = mt_printable(sn.exe);
			bool is_top = sn.pid == (uint32_t)top;
			char who[48] = " (the command)";
			if (!is_top)
				snprintf(who, sizeof(who), ", child of %u", sn.ppid);
			fprintf(stderr, "memtrace: snapshot %s: pid %u%s, %s, %s\n", p, sn.pid, who,
				exe, mt_reason_text(sn.reason));
			mine += is_top;
			free(exe);
			mt_snap_free(&sn);
		}
		found++;
		free(p);
	}
	seen_free(&after);
	if (!found)
		fprintf(stderr, "memtrace: no snapshot was written in %s\n", dir);
	else if (found > mine)
		fprintf(stderr,
			"memtrace: %d of these from the command's children; its own: "
			"%s/memtrace.%d.*.snap\n",
			found - mine, dir, (int)top);
}

/* mkdir -p, for the directory the run asked for. */
static int make_dir(const char *dir)
{
	char *p = mt_xasprintf("%s", dir);
	int r = 0;
	for (char *q = p + 1; *q && r == 0; q++) {
		if (*q != '/')
			continue;
		*q = 0;
		if (mkdir(p, 0777) != 0 && errno != EEXIST)
			r = -1;
		*q = '/';
	}
	if (r == 0 && mkdir(p, 0777) != 0 && errno != EEXIST)
		r = -1;
	free(p);
	return r;
}

int mt_cmd_run(int argc, char **argv)
{
	enum { OPT_LIB = 'L', OPT_ALLOCATOR = 'm', OPT_NO_CHILDREN = 'C' };
	struct option opts[MT_OPTFLAGS_MAX + 6];
	char shorts[2 * MT_OPTFLAGS_MAX + 8] = "+vh";
	size_t no = 0;
	mt_optflags_add(opts, &no, shorts);
	opts[no++] = (struct option){"lib", required_argument, NULL, OPT_LIB};
	opts[no++] = (struct option){"allocator", required_argument, NULL, OPT_ALLOCATOR};
	opts[no++] = (struct option){"verbose", no_argument, NULL, 'v'};
	opts[no++] = (struct option){"no-children", no_argument, NULL, OPT_NO_CHILDREN};
	opts[no++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[no] = (struct option){0};

	mt_optflags_t flags = {{0}};
	const char *lib = NULL, *allocator = NULL;
	bool verbose = false, no_children = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (c) {
		case OPT_LIB: lib = optarg; break;
		case OPT_ALLOCATOR: allocator = mt_allocator_lib("run", optarg); break;
		case 'v': verbose = true; break;
		case OPT_NO_CHILDREN: no_children = true; break;
		case 'h': usage(stdout); return MT_EXIT_OK;
		default:
			if (!mt_optflags_take(&flags, "run", c, optarg))
				mt_die_usage("run", "unknown option");
		}
	}
	const char *dir = mt_optflags_value(&flags, "MEMTRACE_DIR");
	if (optind >= argc)
		mt_die_usage("run", "needs a command to run");

	char *libpath = mt_find_lib(lib);
	if (!libpath) {
		fprintf(stderr,
			"memtrace: cannot find libmemtrace.so%s%s; use --lib PATH or "
			"MEMTRACE_LIB\n",
			lib ? " at " : "", lib ? lib : "");
		return MT_EXIT_USAGE;
	}
	if (verbose)
		fprintf(stderr, "memtrace: preloading %s\n", libpath);
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, ".");
	if (dir && make_dir(dir) != 0) {
		fprintf(stderr, "memtrace: snapshot directory %s: %s\n", dir, strerror(errno));
		return MT_EXIT_USAGE;
	}
	char *absdir = dir ? realpath(dir, NULL) : mt_xasprintf("%s", cwd);
	if (!absdir) {
		fprintf(stderr, "memtrace: snapshot directory %s: %s\n", dir, strerror(errno));
		return MT_EXIT_USAGE;
	}
	char *cmdpath = mt_find_cmd(argv[optind]);
	if (!cmdpath) {
		fprintf(stderr, "memtrace: %s: command not found\n", argv[optind]);
		return 127;
	}
	const char *why = inspect(cmdpath);
	if (why)
		fprintf(stderr, "memtrace: warning: cannot profile %s: %s\n", cmdpath, why);

	const char *old = getenv("LD_PRELOAD");
	char *preload = mt_xasprintf("%s%s%s%s%s", libpath, allocator && *allocator ? ":" : "",
				     allocator ? allocator : "", old && *old ? ":" : "",
				     old && *old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
	mt_optflags_each(&flags, put_env, NULL);
	setenv("MEMTRACE_DIR", absdir, 1);

	static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = forward;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
		sigaction(fwd[i], &sa, NULL);

	seen_t before;
	seen_read(absdir, &before);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "memtrace: fork: %s\n", strerror(errno));
		return MT_EXIT_USAGE;
	}
	if (child == 0) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
			sigaction(fwd[i], &dfl, NULL);
		if (no_children) {
			char me[32];
			snprintf(me, sizeof(me), "%d", (int)getpid());
			setenv("MEMTRACE_ONLY_PID", me, 1);
		}
		execv(cmdpath, argv + optind);
		fprintf(stderr, "memtrace: cannot run %s: %s\n", cmdpath, strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	list_snapshots(absdir, &before, child);
	seen_free(&before);
	free(libpath);
	free(absdir);
	free(cmdpath);
	free(preload);
	if (WIFSIGNALED(status)) {
		/* die the same way, so a shell sees what it would have seen */
		int s = WTERMSIG(status);
		signal(s, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, s);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		raise(s);
		return 128 + s;
	}
	return WEXITSTATUS(status);
}
