/* SPDX-License-Identifier: MIT */
/*
 * procstat.c - the process's own figures for a snapshot, from /proc: its
 * size and resident set and their peaks (status), and its anonymous
 * mappings (maps), among them glibc's arena heaps.
 *
 * Read on the dump thread only, never on a hook path nor in a signal
 * handler (a seccomp sandbox may trap open). Nothing here allocates through
 * malloc: the maps are read in chunks into memtrace's own mapping. A file
 * that cannot be read leaves its figures 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static uint64_t parse_u64(const char **p)
{
	uint64_t v = 0;
	while (**p == ' ')
		(*p)++;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (uint64_t)(c - 'a' + 10);
		else
			return v;
	}
}

/* Anonymous mappings from /proc/self/maps, read in chunks. A glibc arena
 * heap is a 64 MiB-aligned reservation, part read-write and the rest
 * PROT_NONE: adjacent anonymous pieces from an aligned start that add up to
 * exactly 64 MiB count as one. */
/* Whether the 64 MiB-aligned mapping at lo is the first heap of a glibc
 * arena: its heap_info's ar_ptr points just past it, into the same heap
 * (a later heap of the arena points to the first). Read softly. */
static bool arena_head(uint64_t lo)
{
	uint64_t ar = 0;
	struct iovec l = {&ar, sizeof(ar)}, r = {(void *)(uintptr_t)lo, sizeof(ar)};
	if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != (ssize_t)sizeof(ar))
		return false;
	return ar > lo && ar < lo + 256;
}

static void scan_maps(mt_alloc_stats_t *st, bool glibc_heads)
{
	const uint64_t heap = 64ull << 20;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	char *buf = mt__map(1u << 16);
	size_t have = 0;
	uint64_t run_start = 0, run_end = 0;

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		mt__unmap(buf, 1u << 16);
		return;
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, (1u << 16) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && have == 0)
			break;
		have += n > 0 ? (size_t)n : 0;
		buf[have] = '\0';
		char *nl, *line = buf;
		while ((nl = strchr(line, '\n')) || (n <= 0 && *line)) {
			if (nl)
				*nl = '\0';
			const char *p = line;
			uint64_t lo = parse_hex(&p);
			p++;
			uint64_t hi = parse_hex(&p);
			/* perms offset dev inode [path] */
			int field = 0;
			const char *path = "";
			uint64_t inode = 0;
			while (*p && field < 5) {
				while (*p == ' ')
					p++;
				field++;
				if (field == 4)
					inode = parse_u64(&p);
				else
					while (*p && *p != ' ')
						p++;
			}
			while (*p == ' ')
				p++;
			path = p;
			if (inode == 0 && (*path == '\0' || strcmp(path, "[heap]") == 0)) {
				uint64_t len = hi - lo;
				if (glibc_heads && lo % heap == 0 && arena_head(lo))
					st->arenas++;
				st->anon_maps++;
				st->anon_bytes += len;
				if (len >= (1u << 20))
					st->anon_1m++;
				if (lo % heap == 0) {
					run_start = lo;
					run_end = hi;
				} else if (run_end == lo) {
					run_end = hi;
				} else {
					run_start = run_end = 0;
				}
				if (run_end && run_end - run_start == heap) {
					st->anon_64m++;
					run_start = run_end = 0;
				}
			} else {
				run_start = run_end = 0;
			}
			if (!nl) {
				line += strlen(line);
				break;
			}
			line = nl + 1;
		}
		size_t rest = have - (size_t)(line - buf);
		memmove(buf, line, rest);
		have = rest;
		if (n <= 0)
			break;
	}
	close(fd);
	mt__unmap(buf, 1u << 16);
}

/* The size and resident set and their peaks (VmSize, VmRSS, VmPeak,
 * VmHWM) from /proc/self/status, in kB: one file where statm and status
 * were two (four system calls fewer in every snapshot; a short process's
 * at-exit snapshot is most of what memtrace costs it). */
static void sizes(mt_alloc_stats_t *st)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{"VmPeak:", offsetof(mt_alloc_stats_t, vms_peak)},
		{"VmSize:", offsetof(mt_alloc_stats_t, vms)},
		{"VmHWM:", offsetof(mt_alloc_stats_t, rss_peak)},
		{"VmRSS:", offsetof(mt_alloc_stats_t, rss)},
	};
	char buf[4096];
	if (!mt__read_file("/proc/self/status", buf, sizeof(buf)))
		return;
	for (const char *p = buf, *nl; *p; p = nl + 1) {
		const char *q = strchr(p, ':');
		for (size_t i = 0; q && i < sizeof(fields) / sizeof(fields[0]); i++) {
			if (strncmp(p, fields[i].name, strlen(fields[i].name)) != 0)
				continue;
			for (q++; *q == ' ' || *q == '\t'; q++) /* "VmPeak:\t  123 kB" */
				;
			*(uint64_t *)((char *)st + fields[i].off) = parse_u64(&q) * 1024;
			break;
		}
		if (!(nl = strchr(p, '\n')))
			break;
	}
}

void mt__proc_stats(mt_alloc_stats_t *st, bool glibc_heads)
{
	sizes(st);
	scan_maps(st, glibc_heads);
}
