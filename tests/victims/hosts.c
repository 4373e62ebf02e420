/* SPDX-License-Identifier: MIT */
/* What a host must be able to do with memtrace inside it (reliability.py's
 * host cases):
 *   hosts getattr N  N threads whose first allocation happens inside
 *                    pthread_getattr_np, under the thread's own lock (the
 *                    JVM's, Rust's and Ruby's pattern), then 100 bytes each
 *   hosts idle HOW   says how many threads it has, waits 3 s (HOW: sleep,
 *                    join on a sleeping thread, spin in its own code without
 *                    allocating, libc: 0.5 s inside memset, then sleep), says
 *                    it again; a snapshot signal sent while it waits must be
 *                    answered at once
 *   hosts gdb        stops at hosts_break for a debugger, then exits
 *   hosts children HOW FD  a program that watches its children while the
 *                    leak scan runs at exit: a SIGCHLD handler (HOW: handler;
 *                    or nocldwait: SIGCHLD ignored, children reaped by the
 *                    kernel) that writes 'C' to FD, a thread in wait()
 *                    that writes 'W' for any child it reaps, a thread that
 *                    spins; one child of its own, reaped before the end;
 *                    100 blocks lost, then "done"
 *   hosts guards FILE  pages the leak scan must read past: a guard page
 *                    (MADV_GUARD_INSTALL, Linux 6.13) between two pages that
 *                    each hold a pointer to a block, and a private writable
 *                    mapping of FILE (one byte) two pages long, a pointer on
 *                    its first page, its second past the end (SIGBUS); three
 *                    blocks of 4321 bytes held only there, one lost
 *   hosts dlerror    a program that reads dlerror() before any dl call of
 *                    its own: memtrace's lookups of names no object defines
 *                    must leave it no error; then a C++-free dlsym that fails
 *                    and one that does not, as a program checks them
 *   hosts term HOW   keeps 100 blocks of 1000 bytes, says "ready" and waits
 *                    for its end (HOW: pause; own: its own SIGTERM handler
 *                    says so and exits 7; busy: allocates and frees without
 *                    end, so a signal mostly lands inside malloc or free) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static void *first_in_getattr(void *arg)
{
	pthread_attr_t attr;
	size_t size = 0;
	(void)arg;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstacksize(&attr, &size);
		pthread_attr_destroy(&attr);
	}
	char *p = malloc(100); /* @getattr */
	if (p)
		memset(p, (int)(size & 0x7f), 100);
	return p;
}

static int tasks(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (double end = now() + 3; now() < end;) /* EINTR-proof */
		usleep(100000);
	return NULL;
}

static volatile unsigned long spun;
void *term_kept[100];

static void own_term(int sig)
{
	static const char msg[] = "own handler\n";
	(void)sig;
	(void)!write(1, msg, sizeof(msg) - 1);
	_exit(7);
}

__attribute__((noinline)) void hosts_break(void)
{
	__asm__ volatile("" ::: "memory");
}

static int report_fd = 3;

static volatile int got_chld, got_wait;

static void on_child(int sig)
{
	(void)sig;
	got_chld = 1;
	(void)!write(report_fd, "C", 1);
}

static void *waiter(void *arg)
{
	(void)arg;
	for (;;) {
		if (wait(NULL) > 0) {
			got_wait = 1;
			(void)!write(report_fd, "W", 1);
		}
		else
			usleep(1000);
	}
	return NULL;
}

static volatile unsigned long spins;
static void *spinner(void *arg)
{
	(void)arg;
	for (;;)
		spins++;
	return NULL;
}

static int children(const char *how)
{
	struct sigaction sa = {0};
	sa.sa_handler = !strcmp(how, "nocldwait") ? SIG_IGN : on_child;
	sa.sa_flags = !strcmp(how, "nocldwait") ? SA_NOCLDWAIT : 0;
	sigaction(SIGCHLD, &sa, NULL);
	pid_t kid = fork();
	if (kid == 0)
		_exit(0);
	pthread_t t;
	pthread_create(&t, NULL, waiter, NULL);
	pthread_create(&t, NULL, spinner, NULL);
	/* our own child gone and seen (SIGCHLD ignored: reaped by the kernel) */
	bool ign = !strcmp(how, "nocldwait");
	for (int i = 0; i < 5000 && !ign && !(got_chld && got_wait); i++)
		usleep(1000);
	usleep(50000);
	for (int i = 0; i < 100; i++) {
		char *volatile p = malloc(777); /* @children */
		memset(p, 1, 777);
	}
	(void)!write(report_fd, "|", 1); /* what comes after is the scan's doing */
	printf("done\n");
	return 0;
}

static int guards(const char *file)
{
	/* three writable pages between two inaccessible ones: a mapping of its
	 * own, small enough to be read whole (no pagemap pass) */
	char *area = mmap(NULL, 5 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || mprotect(area + 4096, 3 * 4096, PROT_READ | PROT_WRITE) != 0)
		return 2;
	char **anon = (char **)(area + 4096);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1)
		return 2;
	char **fmap = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fmap == MAP_FAILED)
		return 2;
	anon[0] = malloc(4321); /* @guarded */
	anon[2 * 4096 / sizeof(char *)] = malloc(4321); /* @guarded */
	fmap[0] = malloc(4321); /* @guarded */
	char *volatile lost = malloc(4321); /* @guardlost */
	memset(lost, 0, 4321);
	lost = NULL;
	int g = madvise((char *)anon + 4096, 4096, 102 /* MADV_GUARD_INSTALL */);
	printf("guard %s\n", g == 0 ? "installed" : "not supported");
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!strcmp(what, "guards") && argc > 2)
		return guards(argv[2]);
	if (!strcmp(what, "children") && argc > 3) {
		report_fd = atoi(argv[3]);
		return children(argv[2]);
	}
	if (!strcmp(what, "dlerror")) {
		const char *e = dlerror();
		printf("start %s\n", e ? e : "clean");
		void *h = dlopen(NULL, RTLD_NOW);
		(void)dlerror();
		void *none = dlsym(h, "no_such_symbol_here");
		e = dlerror();
		printf("missing %s\n", none == NULL && e ? "said" : "silent");
		void *m = dlsym(h, "malloc");
		e = dlerror();
		printf("found %s\n", m && !e ? "clean" : "error");
		return 0;
	}
	if (!strcmp(what, "getattr")) {
		int n = argc > 2 ? atoi(argv[2]) : 1;
		pthread_t t[64];
		if (n < 1 || n > 64)
			return 2;
		for (int i = 0; i < n; i++)
			pthread_create(&t[i], NULL, first_in_getattr, NULL);
		int got = 0;
		for (int i = 0; i < n; i++) {
			void *p = NULL;
			pthread_join(t[i], &p);
			got += p != NULL;
		}
		printf("getattr ok %d\n", got);
		return 0;
	}
	if (!strcmp(what, "idle") && argc > 2) {
		void *keep = malloc(4096); /* @idle */
		size_t big = 64u << 20;
		char *buf = !strcmp(argv[2], "libc") ? malloc(big) : NULL;
		printf("tasks %d\n", tasks());
		fflush(stdout);
		if (!strcmp(argv[2], "sleep")) {
			/* a handled signal ends a sleep early (EINTR), as in
			 * any program with a handler */
			for (double end = now() + 3; now() < end;)
				usleep(100000);
		} else if (!strcmp(argv[2], "join")) {
			pthread_t t;
			pthread_create(&t, NULL, sleeper, NULL);
			pthread_join(t, NULL);
		} else if (buf) {
			/* the signal lands in libc's code, not in a system call */
			for (double end = now() + 0.5; now() < end;)
				memset(buf, (int)spun++, big);
			for (double end = now() + 2.5; now() < end;)
				usleep(100000);
		} else if (!strcmp(argv[2], "spin")) {
			double end = now() + 3;
			while (now() < end)
				for (int i = 0; i < 1000000; i++)
					spun++;
		} else {
			return 2;
		}
		printf("tasks %d\n", tasks());
		free(buf);
		free(keep);
		return 0;
	}
	if (!strcmp(what, "term") && argc > 2) {
		for (int i = 0; i < 100; i++)
			term_kept[i] = malloc(1000); /* @term */
		if (!strcmp(argv[2], "own"))
			signal(SIGTERM, own_term);
		printf("ready\n");
		fflush(stdout);
		if (!strcmp(argv[2], "busy"))
			for (;;)
				free(malloc(64 + (spun++ & 1023)));
		for (;;)
			pause();
	}
	if (!strcmp(what, "gdb")) {
		void *p = malloc(64);
		hosts_break();
		free(p);
		printf("gdb ok\n");
		return 0;
	}
	return 2;
}
