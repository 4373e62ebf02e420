/* SPDX-License-Identifier: MIT */
/*
 * victim-unwsig: a program that uses libunwind itself, from a SIGPROF
 * handler firing at every profiling tick, while it allocates from 4,096
 * distinct stacks (each one new to memtrace: a libunwind walk of its own
 * with every signal masked), and keeps SIGUSR2 blocked throughout. It says
 * whether its handler ran and unwound, and whether its signal mask is the
 * one it set: memtrace patches libunwind's calls to sigprocmask, which must
 * still work for the program's own use of libunwind, and must leave the
 * program's mask as it was.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static volatile long ticks, frames_seen;

static void on_prof(int sig)
{
	(void)sig;
	void *b[64];
	int n = unw_backtrace(b, 64);
	ticks++;
	frames_seen += n;
}

static void *pa(int d, unsigned bits);
static void *pb(int d, unsigned bits);

static __attribute__((noinline)) void *leaf(size_t n)
{
	return malloc(n);
}

/* one stack per value of bits: a chain of d calls, each through pa or pb */
static __attribute__((noinline)) void *pa(int d, unsigned bits)
{
	void *p = d ? ((bits & 1) ? pa : pb)(d - 1, bits >> 1) : leaf(24);
	__asm__ volatile("" ::: "memory");
	return p;
}

static __attribute__((noinline)) void *pb(int d, unsigned bits)
{
	void *p = d ? ((bits & 1) ? pa : pb)(d - 1, bits >> 1) : leaf(40);
	__asm__ volatile("" ::: "memory");
	return p;
}

int main(void)
{
	sigset_t usr2, now;
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_prof;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_PROF, &it, NULL);
	for (int round = 0; round < 5000 && ticks < 50; round++)
		for (unsigned bits = 0; bits < 4096; bits++)
			free(pa(12, bits));
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_PROF, &off, NULL);
	sigprocmask(SIG_BLOCK, NULL, &now);
	int kept = sigismember(&now, SIGUSR2) && !sigismember(&now, SIGPROF) &&
		   !sigismember(&now, SIGINT) && !sigismember(&now, SIGTERM);
	printf("mask %s\n", kept ? "kept" : "changed");
	printf("handler %s\n", ticks >= 20 ? "ran" : "did not run");
	printf("unwound %s\n", ticks && frames_seen / ticks >= 3 ? "yes" : "no");
	return 0;
}
