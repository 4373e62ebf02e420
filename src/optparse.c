/* SPDX-License-Identifier: MIT */
/*
 * optparse.c - the one parser of option values (options.h), shared by the
 * library, which reads MEMTRACE_* at start, and by `memtrace run`, which
 * checks its flags before it starts anything. No allocation and no stdio:
 * it runs inside the profiled program.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <strings.h>

#include "options.h"

/* Strict decimal parse of a whole string within [min, max]. */
static bool parse_long(const char *s, long min, long max, long *out)
{
	long v = 0;
	bool neg = false;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (LONG_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, long *out)
{
	static const char *yes[] = {"1", "yes", "on", "true"};
	static const char *no[] = {"0", "no", "off", "false"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, true;
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, true;
	}
	return false;
}

/* Signals a profiler may take: never the ones the kernel or a debugger
 * needs, nor those that stop or kill. */
static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2},	{"HUP", SIGHUP},   {"PWR", SIGPWR},
	{"URG", SIGURG},   {"WINCH", SIGWINCH}, {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM},
};

static bool parse_signal(const char *s, long *out)
{
	long n;
	if (strcasecmp(s, "none") == 0 || strcmp(s, "0") == 0)
		return *out = 0, true;
	if (parse_long(s, 1, 64, &n)) {
		if (n >= SIGRTMIN && n <= SIGRTMAX)
			return *out = n, true;
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (signals[i].sig == n)
				return *out = n, true;
		return false;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcasecmp(s, signals[i].name) == 0)
			return *out = signals[i].sig, true;
	return false;
}

/* "2", "0.5", "1.25": seconds with at most three decimals, as ms within
 * [min_ms, max_ms]. */
static bool parse_seconds(const char *s, long min_ms, long max_ms, long *out)
{
	long whole = 0, frac = 0, scale = 100;
	const char *dot = strchr(s, '.');
	char buf[32];
	size_t n = dot ? (size_t)(dot - s) : strlen(s);

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!parse_long(buf, 0, max_ms / 1000, &whole) || buf[0] == '-' || buf[0] == '+')
		return false;
	if (dot) {
		const char *f = dot + 1;
		if (!*f || strlen(f) > 3)
			return false;
		for (; *f; f++, scale /= 10) {
			if (*f < '0' || *f > '9')
				return false;
			frac += (*f - '0') * scale;
		}
	}
	if (whole * 1000 + frac < min_ms || whole * 1000 + frac > max_ms)
		return false;
	*out = whole * 1000 + frac;
	return true;
}

/* A count (read as parse_long reads it) or a size (K, M, G; never
 * negative) within [min, max]. */
static bool parse_amount(const char *v, bool size, long min, long max, long *out)
{
	char num[32];
	size_t len = strlen(v);
	long mult = 1, n;
	if (len == 0 || len >= sizeof(num))
		return false;
	memcpy(num, v, len + 1);
	char last = num[len - 1];
	if (size && strchr("KkMmGg", last)) {
		mult = last == 'K' || last == 'k' ? 1l << 10 : last == 'M' || last == 'm' ? 1l << 20
											: 1l << 30;
		num[--len] = '\0';
	}
	if (len == 0 || (size && num[0] == '-') || !parse_long(num, size ? 0 : min, max / mult, &n))
		return false;
	n *= mult;
	if (n < min || n > max)
		return false;
	*out = n;
	return true;
}

bool mt_opt_parse(enum mt_opt_type t, long min, long max, const char *v, long *out)
{
	switch (t) {
	case MT_OPT_INT: return parse_long(v, min, max, out);
	case MT_OPT_LONG: return parse_amount(v, false, min, max, out);
	case MT_OPT_SIZE: return parse_amount(v, true, min, max, out);
	case MT_OPT_BOOL: return parse_bool(v, out);
	case MT_OPT_SIGNAL: return parse_signal(v, out);
	case MT_OPT_SECONDS: return parse_seconds(v, min, max, out);
	case MT_OPT_ALLOCATOR:
		if (strcmp(v, "system") == 0)
			return *out = 0, true;
		if (strcmp(v, "jemalloc") == 0)
			return *out = 1, true;
		return false;
	case MT_OPT_DIR: return false;
	}
	return false;
}

const char *mt_opt_expect(enum mt_opt_type t, long min, long max, long *lo, long *hi)
{
	bool ranged = t == MT_OPT_INT || t == MT_OPT_LONG || t == MT_OPT_SIZE;
	*lo = ranged ? min : t == MT_OPT_SECONDS ? (min + 999) / 1000 : 1;
	*hi = ranged ? max : t == MT_OPT_SECONDS ? max / 1000 : 0;
	switch (t) {
	case MT_OPT_INT:
	case MT_OPT_LONG: return "a whole number";
	case MT_OPT_SIZE: return "a size (K, M, G allowed)";
	case MT_OPT_BOOL: return "0/1/yes/no/on/off/true/false";
	case MT_OPT_SIGNAL:
		return "a signal memtrace may use (USR1, USR2, HUP, PWR, URG, WINCH, PROF, VTALRM, "
		       "a real-time signal number, or none)";
	case MT_OPT_SECONDS: return "a number of seconds (at most 3 decimals)";
	case MT_OPT_ALLOCATOR: return "system or jemalloc";
	case MT_OPT_DIR: return "a directory";
	}
	return "a value";
}
