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
 * That thread is started only when it is first needed: at start only for
 * MEMTRACE_INTERVAL, otherwise at the first signal. Until then the process
 * has exactly the threads the program made (unshare(CLONE_NEWUSER) needs a
 * single-threaded caller; debuggers and /proc/self/task see no guest). The
 * handler starts the thread itself when the thread it interrupted holds no
 * lock pthread_create could need: it is outside memtrace's hooks (so
 * outside malloc) and either outside libc and ld.so altogether or blocked
 * in an interrupted system call (an idle program: poll, sleep, a futex
 * wait), where glibc holds none of its stack-cache or TLS locks. Otherwise
 * it leaves the start to the next tracked allocation of any thread; the
 * byte in the pipe is waiting, so the snapshot follows at once.
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
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

static int wake[2] = {-1, -1};
static int handler_installed; /* memtrace's handler is the one in place */
static int released;	      /* memtrace detach: no more snapshots */
static int warned;
int mt__trigger_start_needed;
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

/* The dump thread: none, being started, running. Reset in a forked child. */
enum { THREAD_NONE, THREAD_STARTING, THREAD_RUNNING, THREAD_LEAVING };
static int thread_state = THREAD_NONE;
static pthread_t thread_id; /* joinable: mt__trigger_park waits for its end */
static pid_t thread_tid;     /* its kernel id, for the end of that wait */
static int park_wanted;	    /* the thread is to end at its next wake-up */
static pid_t owner_pid; /* the process the thread is for (not a vfork child) */
/* libc's and ld.so's code, where an interrupted thread may hold their locks */
static uintptr_t libc_lo, libc_hi, ld_lo, ld_hi;

static bool start_thread(void);

#if defined(__x86_64__)
/* Whether the interrupted thread is safely outside glibc's internals: in
 * code of its own (or of any other library), or in a blocking system call
 * the signal interrupted (the kernel reports -EINTR in rax past the syscall
 * instruction, or, for a call it restarts, rewinds rip onto it with the call
 * number back in rax). A system call that completed (an munmap under the
 * stack-cache lock) is neither. */
static bool interrupted_safely(const void *ucv)
{
	const ucontext_t *uc = ucv;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	long ax = (long)uc->uc_mcontext.gregs[REG_RAX];
	uintptr_t lo = libc_lo, hi = libc_hi;
	if (ip < lo || ip >= hi) {
		lo = ld_lo;
		hi = ld_hi;
	}
	if (ip < lo || ip >= hi)
		return libc_hi != 0 && ld_hi != 0; /* neither libc nor ld.so */
	if (ip < lo + 2 || ip + 2 > hi)
		return false; /* no room for the instruction either side */
	const unsigned char *at = (const unsigned char *)ip;
	if (ax == -EINTR && at[-2] == 0x0f && at[-1] == 0x05)
		return true;
	return at[0] == 0x0f && at[1] == 0x05 && ax >= 0 && ax < 1024;
}
#else
static bool interrupted_safely(const void *ucv)
{
	(void)ucv;
	return false; /* the next tracked allocation starts it */
}
#endif

/* The retry: a one-shot POSIX timer (a kernel timer, no thread) that sends
 * memtrace's own signal, marked, 10 ms after a signal found the program
 * where the thread could not be started; up to RETRY_MAX times per process,
 * after which only an allocation starts it. Made at start with raw system
 * calls, again in a forked child (timers are not inherited). */
#define RETRY_MARK 0x6d74 /* "mt" */
#define RETRY_MAX 100
static int retry_timer = -1;
static int retries;

/* A kernel timer that sends sig marked as a retry; -1 if none. Raw system
 * calls: async-signal-safe, no allocation, no thread. */
static int timer_make(int sig)
{
	struct sigevent ev;
	int id;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = sig;
	ev.sigev_value.sival_int = RETRY_MARK;
	return syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) == 0 ? id : -1;
}

/* Fires timer once, 10 ms from now; false if it cannot. */
static bool timer_in_10ms(int timer)
{
	struct itimerspec in10ms = {{0, 0}, {0, 10 * 1000 * 1000}};
	return timer >= 0 && syscall(SYS_timer_settime, timer, 0, &in10ms, NULL) == 0;
}

static void retry_make(void)
{
	retry_timer = timer_make(mt__opt.signal);
	retries = 0;
}

static void retry_arm(void)
{
	if (__atomic_add_fetch(&retries, 1, __ATOMIC_RELAXED) <= RETRY_MAX)
		(void)timer_in_10ms(retry_timer);
}

static void retry_drop(void)
{
	if (retry_timer >= 0)
		(void)syscall(SYS_timer_delete, retry_timer);
	retry_timer = -1;
}

/* Whether a delivery is one of memtrace's own timer retries. */
static bool is_retry(const siginfo_t *si)
{
	return si && si->si_code == SI_TIMER && si->si_value.sival_int == RETRY_MARK;
}

/* From a handler: starts the dump thread if the interrupted thread is
 * where that is safe; its allocations meanwhile are memtrace's own. */
static bool start_from_handler(const void *uc)
{
	if (!mt__thread_idle() || getpid() != owner_pid || !interrupted_safely(uc))
		return false;
	int busy = mt__thread_busy_swap(1);
	bool started = start_thread();
	mt__thread_busy_swap(busy);
	return started;
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	bool retry = is_retry(si);
	char c = (char)sig;
	if (!retry)
		(void)!write(wake[1], &c, 1); /* full pipe: a dump is already due */
	if (__atomic_load_n(&thread_state, __ATOMIC_ACQUIRE) == THREAD_NONE &&
	    !start_from_handler(uc)) {
		__atomic_store_n(&mt__trigger_start_needed, 1, __ATOMIC_RELEASE);
		retry_arm();
	}
	errno = saved;
}

/* ---- the end a terminating signal brings ----
 * SIGTERM (systemctl stop), SIGINT and SIGHUP left at their default action
 * would end the process with no snapshot at all. memtrace holds them while
 * the program does (the program's own handler, now or later, replaces
 * memtrace's silently, and sigaction reports the default as before): the
 * dump thread writes a final snapshot, then the signal ends the process as
 * it would have, same status. Where the signal lands inside memtrace (a
 * hook, or table work on a free or an munmap) or inside libc away from a
 * system call (the dump would wait on a lock the interrupted thread holds:
 * a span's, an arena's), or where the thread cannot be started safely, the
 * end is put off: the next tracked
 * allocation or a 10 ms timer carrying the same signal tries again, for at
 * most 200 ms, after which the signal ends the process without a
 * snapshot. The wait for the dump itself is bounded (3 s). */
static const int term_sigs[] = {SIGTERM, SIGINT, SIGHUP};
#define TERM_N (sizeof(term_sigs) / sizeof(term_sigs[0]))
#define TERM_TRIES 20
static int term_held[TERM_N]; /* memtrace's handler is the one in place */
static int term_pending;      /* the signal whose end is put off */
static int term_tries;
static int term_timer = -1;
static int final_wanted; /* the dump thread's next snapshot is the last */
static int done_pipe[2] = {-1, -1};

static int *held_flag(int sig)
{
	if (sig == mt__opt.signal)
		return &handler_installed;
	for (size_t i = 0; i < TERM_N; i++)
		if (term_sigs[i] == sig)
			return &term_held[i];
	return NULL;
}

bool mt__trigger_holds(int sig)
{
	int *held = sig ? held_flag(sig) : NULL;
	return held && __atomic_load_n(held, __ATOMIC_ACQUIRE);
}

/* The signal's own end: its default action, raised again (it stays blocked
 * until the handler returns, when it is delivered). */
static struct sigaction default_action(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	return dfl;
}

static void term_end(int sig)
{
	struct sigaction dfl = default_action();
	int *held = held_flag(sig);
	if (held)
		__atomic_store_n(held, 0, __ATOMIC_RELEASE);
	if (real_sigaction)
		real_sigaction(sig, &dfl, NULL);
	raise(sig);
}

/* Asks the running dump thread for the final snapshot and waits for it. */
static void final_snapshot(void)
{
	char c = 'F';
	__atomic_store_n(&final_wanted, 1, __ATOMIC_RELEASE);
	(void)!write(wake[1], &c, 1);
	struct pollfd pfd = {.fd = done_pipe[0], .events = POLLIN};
	uint64_t end = mt__now_ns(CLOCK_MONOTONIC) + 3000000000ull;
	for (;;) {
		uint64_t now = mt__now_ns(CLOCK_MONOTONIC);
		if (now >= end || poll(&pfd, 1, (int)((end - now) / 1000000 + 1)) > 0 ||
		    (errno != EINTR && errno != EAGAIN))
			return;
	}
}

static void term_retry(int sig)
{
	if (__atomic_add_fetch(&term_tries, 1, __ATOMIC_RELAXED) > TERM_TRIES) {
		term_end(sig); /* no snapshot, as without memtrace */
		return;
	}
	__atomic_store_n(&term_pending, sig, __ATOMIC_RELEASE);
	__atomic_store_n(&mt__trigger_start_needed, 1, __ATOMIC_RELEASE);
	if (term_timer < 0)
		term_timer = timer_make(sig);
	if (!timer_in_10ms(term_timer))
		term_end(sig); /* nothing would come back: end now */
}

static void on_term(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	if (is_retry(si) && !__atomic_load_n(&term_pending, __ATOMIC_ACQUIRE))
		goto out; /* a late timer: the end came another way */
	if (getpid() != owner_pid) {
		term_end(sig); /* a vfork child: touch nothing of the parent's */
		goto out;
	}
	/* the dump would wait on a lock the interrupted code holds: inside
	 * memtrace (tl_busy), or inside libc away from a system call (an
	 * allocator arena's, which the dump's mallinfo2 takes) */
	if (!mt__thread_idle() || !interrupted_safely(uc)) {
		term_retry(sig);
		goto out;
	}
	if (__atomic_load_n(&thread_state, __ATOMIC_ACQUIRE) != THREAD_RUNNING &&
	    (!start_from_handler(uc) ||
	     __atomic_load_n(&thread_state, __ATOMIC_ACQUIRE) != THREAD_RUNNING)) {
		term_retry(sig);
		goto out;
	}
	__atomic_store_n(&term_pending, 0, __ATOMIC_RELEASE);
	final_snapshot();
	term_end(sig);
out:
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

static __thread int tl_dump_thread __attribute__((tls_model("initial-exec")));

bool mt__in_dump_thread(void)
{
	return tl_dump_thread != 0;
}

static void *dump_thread(void *arg)
{
	(void)arg;
	tl_dump_thread = 1;
	__atomic_store_n(&thread_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	mt__thread_untracked();
	int timeout =
		mt__opt.interval_ms > 0
			? (mt__opt.interval_ms > 0x7fffffff ? 0x7fffffff : (int)mt__opt.interval_ms)
			: -1;
	uint64_t next = mt__now_ns(CLOCK_MONOTONIC) + (uint64_t)mt__opt.interval_ms * 1000000ull;

	for (;;) {
		struct pollfd pfd = {.fd = wake[0], .events = POLLIN};
		if (__atomic_load_n(&released, __ATOMIC_ACQUIRE))
			timeout = -1; /* detached: the thread sleeps on, writes nothing */
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
			bool asked = false;
			ssize_t got;
			while ((got = read(wake[0], buf, sizeof(buf))) > 0) /* a burst is one dump */
				for (ssize_t i = 0; i < got; i++)
					asked |= buf[i] != 'P';
			if (__atomic_load_n(&park_wanted, __ATOMIC_ACQUIRE)) {
				/* a snapshot asked for meanwhile is the next
				 * thread's to write */
				if (asked)
					(void)!write(wake[1], "S", 1);
				return NULL;
			}
			if (!asked || __atomic_load_n(&released, __ATOMIC_ACQUIRE))
				continue;
			if (__atomic_load_n(&final_wanted, __ATOMIC_ACQUIRE)) {
				(void)mt__dump(MT_REASON_TERM, NULL, 0);
				char c = 'D';
				(void)!write(done_pipe[1], &c, 1);
				return NULL; /* the process is ending */
			}
			(void)mt__dump(MT_REASON_SIGNAL, NULL, 0);
			mt__snapshot_sweep_once();
		} else if (r == 0 && timeout >= 0 && !__atomic_load_n(&released, __ATOMIC_ACQUIRE)) {
			(void)mt__dump(MT_REASON_INTERVAL, NULL, 0);
			mt__snapshot_sweep_once();
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
 * never delivered to it. At most one is started per process; false when
 * none could be (the next tracked allocation tries again). */
static bool start_thread(void)
{
	int expect = THREAD_NONE;
	if (!__atomic_compare_exchange_n(&thread_state, &expect, THREAD_STARTING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return true;
	sigset_t all, old;
	pthread_t t;
	pthread_attr_t attr;

	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&t, &attr, dump_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (r == 0) {
		thread_id = t;
		__atomic_store_n(&thread_state, THREAD_RUNNING, __ATOMIC_RELEASE);
		return true;
	}
	__atomic_store_n(&thread_state, THREAD_NONE, __ATOMIC_RELEASE);
	if (r != EAGAIN) {
		static int said;
		if (!__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED))
			mt__warn("cannot start the snapshot thread (errno %d): no snapshots on "
				 "signal or timer",
				 r);
	}
	return r != EAGAIN; /* out of threads for now: try again later */
}

static bool wanted(void)
{
	return mt__opt.signal || mt__opt.interval_ms > 0 || mt__opt.at_exit;
}

/* memtrace's handler for sig, unless the program has one: true when put. */
static bool hold(int sig, void (*handler)(int, siginfo_t *, void *))
{
	struct sigaction old, sa;
	if (real_sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return real_sigaction(sig, &sa, NULL) == 0;
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
		if (hold(mt__opt.signal, on_signal))
			__atomic_store_n(&handler_installed, 1, __ATOMIC_RELEASE);
		else
			warn_taken("installed before memtrace started");
	}
	if (mt__opt.at_exit && real_sigaction && pipe2(done_pipe, O_NONBLOCK | O_CLOEXEC) == 0) {
		for (size_t i = 0; i < TERM_N; i++)
			if (term_sigs[i] != mt__opt.signal && hold(term_sigs[i], on_term))
				__atomic_store_n(&term_held[i], 1, __ATOMIC_RELEASE);
	}
	owner_pid = getpid();
	uintptr_t lo, hi;
	if (mt__module_text((void *)real_sigaction, &lo, &hi)) {
		libc_lo = lo;
		libc_hi = hi;
	}
	if (mt__module_text(&__libc_stack_end, &lo, &hi)) { /* ld.so's */
		ld_lo = lo;
		ld_hi = hi;
	}
	if (mt__opt.interval_ms > 0) /* a snapshot is due from the start */
		start_thread();
	else if (__atomic_load_n(&handler_installed, __ATOMIC_ACQUIRE))
		retry_make();
}

void mt__trigger_release(void)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	if (!real_sigaction)
		return;
	if (__atomic_exchange_n(&handler_installed, 0, __ATOMIC_ACQ_REL))
		real_sigaction(mt__opt.signal, &dfl, NULL);
	for (size_t i = 0; i < TERM_N; i++)
		if (__atomic_exchange_n(&term_held[i], 0, __ATOMIC_ACQ_REL))
			real_sigaction(term_sigs[i], &dfl, NULL);
	__atomic_store_n(&released, 1, __ATOMIC_RELEASE);
	if (wake[1] >= 0) /* the thread, if waiting on its timer, sees it now */
		(void)!write(wake[1], "R", 1);
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
	owner_pid = getpid();
	__atomic_store_n(&thread_state, THREAD_NONE, __ATOMIC_RELEASE);
	if (done_pipe[0] >= 0) {
		close(done_pipe[0]);
		close(done_pipe[1]);
		if (pipe2(done_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
			done_pipe[0] = done_pipe[1] = -1;
	}
	term_timer = -1; /* timers are not inherited */
	term_pending = term_tries = 0;
	if (retry_timer >= 0)
		retry_make(); /* the parent's is not the child's */
	/* a timer runs on in the child; a signal starts the thread itself */
	__atomic_store_n(&mt__trigger_start_needed, wake[0] >= 0 && mt__opt.interval_ms > 0,
			 __ATOMIC_RELEASE);
}

/* Before a change of the process's ids (hook.c): glibc makes every thread
 * take the change and aborts the process if one fails, which memtrace's
 * thread does where the program changed its own thread's capabilities
 * first (setpriv keeps CAP_SETGID on its main thread only); and
 * unshare(CLONE_NEWUSER) refuses a process with a second thread. So the
 * thread ends first, the caller waiting until the kernel has seen it go
 * (pthread_join: a thread glibc still counts would take part). A dump under
 * way is finished first; a snapshot asked for meanwhile stays in the pipe.
 * True when there was a thread to end. */
bool mt__trigger_park(void)
{
	int expect = THREAD_RUNNING;
	if (getpid() != owner_pid || mt__in_dump_thread())
		return false;
	if (!__atomic_compare_exchange_n(&thread_state, &expect, THREAD_LEAVING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* another thread's change is ending it: its end is this one's */
		while (__atomic_load_n(&thread_state, __ATOMIC_ACQUIRE) == THREAD_LEAVING)
			sched_yield();
		return false;
	}
	__atomic_store_n(&park_wanted, 1, __ATOMIC_RELEASE);
	(void)!write(wake[1], "P", 1);
	(void)pthread_join(thread_id, NULL);
	/* pthread_join returns when the kernel clears the thread's id, a
	 * moment before it leaves the thread group: unshare(CLONE_NEWUSER)
	 * still counted it (EINVAL, about once in 200 runs on a loaded
	 * machine). It is gone when no signal can be sent to it; 1 s at most */
	pid_t tid = __atomic_exchange_n(&thread_tid, 0, __ATOMIC_ACQ_REL);
	uint64_t until = mt__now_ns(CLOCK_MONOTONIC) + 1000000000ull;
	while (tid > 0 && syscall(SYS_tgkill, getpid(), tid, 0) == 0 &&
	       mt__now_ns(CLOCK_MONOTONIC) < until)
		sched_yield();
	__atomic_store_n(&park_wanted, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&thread_state, THREAD_NONE, __ATOMIC_RELEASE);
	return true;
}

/* After the change: a new thread, made by the caller and so with its ids
 * and capabilities, when a timer needs one or a snapshot is waiting;
 * otherwise the next signal starts one, as at start. */
void mt__trigger_unpark(bool parked)
{
	if (!parked)
		return;
	struct pollfd pfd = {.fd = wake[0], .events = POLLIN};
	if (mt__opt.interval_ms > 0 || (wake[0] >= 0 && poll(&pfd, 1, 0) > 0))
		if (!start_thread())
			__atomic_store_n(&mt__trigger_start_needed, 1, __ATOMIC_RELEASE);
}

void mt__trigger_start(void)
{
	if (!__atomic_exchange_n(&mt__trigger_start_needed, 0, __ATOMIC_ACQ_REL))
		return;
	if (!start_thread()) {
		__atomic_store_n(&mt__trigger_start_needed, 1, __ATOMIC_RELEASE);
		return;
	}
	/* a terminating signal put off: no memtrace lock is held here */
	int sig = __atomic_exchange_n(&term_pending, 0, __ATOMIC_ACQ_REL);
	if (sig && __atomic_load_n(&thread_state, __ATOMIC_ACQUIRE) == THREAD_RUNNING) {
		sigset_t one, old;
		sigemptyset(&one);
		sigaddset(&one, sig);
		pthread_sigmask(SIG_BLOCK, &one, &old); /* no second end meanwhile */
		final_snapshot();
		term_end(sig);
		pthread_sigmask(SIG_SETMASK, &old, NULL); /* delivered: the end */
	} else if (sig) {
		__atomic_store_n(&term_pending, sig, __ATOMIC_RELEASE);
		__atomic_store_n(&mt__trigger_start_needed, 1, __ATOMIC_RELEASE);
	}
}

int mt__sigaction(int sig, const struct sigaction *act, struct sigaction *old,
		  int (*real)(int, const struct sigaction *, struct sigaction *))
{
	if (!real_sigaction)
		real_sigaction = real;
	int *held = held_flag(sig);
	if (!held || !__atomic_load_n(held, __ATOMIC_ACQUIRE))
		return real(sig, act, old);

	/* what the program would have seen without memtrace: the default */
	struct sigaction dfl = default_action();

	if (act && act->sa_handler != SIG_DFL) {
		/* the program takes the signal: its handler wins, and no
		 * retry of memtrace's may reach it */
		__atomic_store_n(held, 0, __ATOMIC_RELEASE);
		if (held == &handler_installed)
			retry_drop();
		int r = real(sig, act, NULL);
		if (r != 0) {
			__atomic_store_n(held, 1, __ATOMIC_RELEASE);
			return r;
		}
		if (held == &handler_installed && act->sa_handler != SIG_IGN)
			warn_taken("installed while running");
	}
	if (old)
		*old = dfl;
	return 0;
}
