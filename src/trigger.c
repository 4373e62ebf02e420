/* SPDX-License-Identifier: MIT */
/*
 * trigger.c - snapshots while the program runs: on a signal (MEMTRACE_SIGNAL,
 * SIGUSR1 by default) and every MEMTRACE_INTERVAL seconds.
 *
 * The signal handler does one async-signal-safe thing: it writes a byte to a
 * non-blocking pipe, saving errno. A dedicated thread, with every signal
 * blocked, sleeps in poll() on that pipe, drains it (a burst of signals is
 * one dump) and writes the snapshot while the program keeps running.
 *
 * memtrace never steals a signal: if the program already handles it at start,
 * memtrace leaves it alone; if the program installs a handler later (through
 * sigaction, signal, bsd_signal or sysv_signal, all interposed in hook.c), the
 * program's handler replaces memtrace's. Either way one warning says so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int wake[2] = {-1, -1};
static int handler_installed; /* memtrace's handler is the one in place */
static int warned;
int mt__trigger_respawn_needed;
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	(void)!write(wake[1], &c, 1); /* full pipe: a dump is already due */
	errno = saved;
}

static const char *signame(int sig)
{
	static char buf[16];
	switch (sig) {
	case SIGUSR1: return "SIGUSR1";
	case SIGUSR2: return "SIGUSR2";
	case SIGHUP: return "SIGHUP";
	case SIGPWR: return "SIGPWR";
	case SIGURG: return "SIGURG";
	case SIGWINCH: return "SIGWINCH";
	case SIGPROF: return "SIGPROF";
	case SIGVTALRM: return "SIGVTALRM";
	}
	mt__fmt(buf, sizeof(buf), "signal %d", sig);
	return buf;
}

static void warn_taken(const char *when)
{
	if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		return;
	mt__warn("the program handles %s itself (%s); its handler runs and memtrace takes no "
		 "snapshot on it: set MEMTRACE_SIGNAL to another signal, or use MEMTRACE_INTERVAL "
		 "or mt_snapshot()",
		 signame(mt__opt.signal), when);
}

static void *dump_thread(void *arg)
{
	(void)arg;
	mt__thread_untracked();
	int timeout =
		mt__opt.interval_ms > 0
			? (mt__opt.interval_ms > 0x7fffffff ? 0x7fffffff : (int)mt__opt.interval_ms)
			: -1;
	uint64_t next = mt__now_ns(CLOCK_MONOTONIC) + (uint64_t)mt__opt.interval_ms * 1000000ull;

	for (;;) {
		struct pollfd pfd = {.fd = wake[0], .events = POLLIN};
		int wait = timeout;
		if (timeout >= 0) {
			uint64_t now = mt__now_ns(CLOCK_MONOTONIC);
			wait = now >= next ? 0 : (int)((next - now + 999999) / 1000000);
		}
		int r = poll(&pfd, wake[0] >= 0 ? 1 : 0, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			char buf[256];
			while (read(wake[0], buf, sizeof(buf)) > 0)
				; /* a burst of signals is one dump */
			(void)mt__dump(MT_REASON_SIGNAL, NULL, 0);
		} else if (r == 0 && timeout >= 0) {
			(void)mt__dump(MT_REASON_INTERVAL, NULL, 0);
			next += (uint64_t)mt__opt.interval_ms * 1000000ull;
			uint64_t now = mt__now_ns(CLOCK_MONOTONIC);
			if (next < now) /* a slow dump: skip the missed ticks */
				next = now + (uint64_t)mt__opt.interval_ms * 1000000ull;
		} else if (r < 0) {
			return NULL;
		}
	}
}

/* The thread starts with every signal blocked, so the program's signals are
 * never delivered to it. */
static void start_thread(void)
{
	sigset_t all, old;
	pthread_t t;
	pthread_attr_t attr;

	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&t, &attr, dump_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r != 0)
		mt__warn("cannot start the snapshot thread (errno %d): no snapshots on signal or "
			 "timer",
			 r);
}

static bool wanted(void)
{
	return mt__opt.signal || mt__opt.interval_ms > 0;
}

void mt__trigger_init(void)
{
	if (!wanted())
		return;
	if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		mt__warn("cannot create the snapshot wake-up pipe (errno %d): no snapshots on "
			 "signal "
			 "or timer",
			 errno);
		return;
	}
	if (!real_sigaction)
		real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(
			RTLD_NEXT, "sigaction");
	if (mt__opt.signal && real_sigaction) {
		struct sigaction old, sa;
		if (real_sigaction(mt__opt.signal, NULL, &old) == 0 && old.sa_handler != SIG_DFL) {
			warn_taken("installed before memtrace started");
		} else {
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_signal;
			sa.sa_flags = SA_RESTART;
			sigemptyset(&sa.sa_mask);
			if (real_sigaction(mt__opt.signal, &sa, NULL) == 0)
				__atomic_store_n(&handler_installed, 1, __ATOMIC_RELEASE);
		}
	}
	start_thread();
}

void mt__trigger_atfork_child(void)
{
	if (wake[0] < 0)
		return;
	/* the pipe is shared with the parent: the child needs its own, now,
	 * before a signal can arrive; the thread did not survive the fork */
	close(wake[0]);
	close(wake[1]);
	if (pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0)
		wake[0] = wake[1] = -1;
	warned = 1; /* the parent said it already, if it had to */
	__atomic_store_n(&mt__trigger_respawn_needed, wake[0] >= 0, __ATOMIC_RELEASE);
}

void mt__trigger_respawn(void)
{
	if (__atomic_exchange_n(&mt__trigger_respawn_needed, 0, __ATOMIC_ACQ_REL))
		start_thread();
}

int mt__sigaction(int sig, const struct sigaction *act, struct sigaction *old,
		  int (*real)(int, const struct sigaction *, struct sigaction *))
{
	if (!real_sigaction)
		real_sigaction = real;
	if (sig != mt__opt.signal || !__atomic_load_n(&handler_installed, __ATOMIC_ACQUIRE))
		return real(sig, act, old);

	/* what the program would have seen without memtrace: the default */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);

	if (act && act->sa_handler != SIG_DFL) {
		/* the program takes the signal: its handler wins */
		__atomic_store_n(&handler_installed, 0, __ATOMIC_RELEASE);
		int r = real(sig, act, NULL);
		if (r != 0) {
			__atomic_store_n(&handler_installed, 1, __ATOMIC_RELEASE);
			return r;
		}
		if (act->sa_handler != SIG_IGN)
			warn_taken("installed while running");
	}
	if (old)
		*old = dfl;
	return 0;
}
