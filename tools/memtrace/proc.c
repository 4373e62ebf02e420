/* SPDX-License-Identifier: MIT */
/*
 * proc.c - what the commands that work on a live process (attach, top,
 * allocators) read of it and of its snapshot directory: a /proc file whole,
 * whether memtrace is loaded in it, its newest snapshot, a snapshot asked
 * for on its signal; and the monotonic clock they time with.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double mt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *mt_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = mt_xmalloc(cap + 1);
	for (;;) {
		if (n == cap)
			buf = mt_xrealloc(buf, (cap *= 2) + 1);
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int mt_has_memtrace(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	char *maps = mt_slurp(path, NULL);
	if (!maps)
		return -1;
	int has = strstr(maps, "/libmemtrace.so") != NULL;
	free(maps);
	return has;
}

unsigned mt_newest_seq(const char *dir, pid_t pid)
{
	char prefix[48];
	int plen = snprintf(prefix, sizeof(prefix), "memtrace.%d.", (int)pid);
	unsigned best = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (!strncmp(e->d_name, prefix, (size_t)plen) && len > 5 &&
		    !strcmp(e->d_name + len - 5, ".snap")) {
			unsigned s = (unsigned)strtoul(e->d_name + plen, NULL, 10);
			if (s > best)
				best = s;
		}
	}
	if (d)
		closedir(d);
	return best;
}

unsigned mt_request_snapshot(const char *dir, pid_t pid, int sig, double timeout)
{
	unsigned before = mt_newest_seq(dir, pid), got = before;
	if (kill(pid, sig) != 0)
		return 0;
	for (double t0 = mt_now(); (got = mt_newest_seq(dir, pid)) == before && mt_now() - t0 < timeout;) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return got == before ? 0 : got;
}
