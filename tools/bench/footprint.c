/* SPDX-License-Identifier: MIT */
/*
 * footprint.c - N live blocks of 32 B spread over SITES callsites (distinct
 * stacks through 10 levels of base-4 call sites, up to 4^10), then one pass of churn over
 * them timed per operation. With HOLDUP set, a second thread keeps
 * allocating and freeing and reports the longest single malloc+free while
 * the main thread asks for a snapshot (mt_snapshot) every 100 ms.
 *   footprint N SITES [HOLDUP]
 * Prints: ns_per_op=... rss_kb=... max_stall_us=...
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memtrace.h"

#pragma weak mt_snapshot

static void **blocks;
static unsigned long nsites;
static volatile int stop;
static double max_stall;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void level(int depth, unsigned long site, unsigned long i);
#define NEXT level(depth + 1, site / 4, i)
static void __attribute__((noinline)) level(int depth, unsigned long site, unsigned long i)
{
	if (depth == 10) {
		blocks[i] = malloc(32);
		return;
	}
	switch (site % 4) {
	case 0: NEXT; break;
	case 1: NEXT; break;
	case 2: NEXT; break;
	default: NEXT; break;
	}
	__asm__ volatile("" ::: "memory");
}

static void *staller(void *arg)
{
	(void)arg;
	while (!stop) {
		double t = now();
		void *p = malloc(64);
		free(p);
		double d = now() - t;
		if (d > max_stall)
			max_stall = d;
	}
	return NULL;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	nsites = argc > 2 ? strtoul(argv[2], NULL, 10) : 50000;
	int holdup = argc > 3;
	if (nsites < 1 || nsites > (1ul << 20))
		nsites = 1ul << 20;
	blocks = calloc(n, sizeof(*blocks));
	for (unsigned long i = 0; i < n; i++)
		level(0, i % nsites, i);
	double t0 = now();
	for (unsigned long i = 0; i < n; i++) {
		free(blocks[i]);
		level(0, i % nsites, i);
	}
	double per = (now() - t0) / (double)n * 1e9;
	long rss = rss_kb();
	if (holdup) {
		pthread_t t;
		pthread_create(&t, NULL, staller, NULL);
		usleep(100000);
		for (int k = 0; k < 5; k++) {
			if (mt_snapshot)
				mt_snapshot(NULL, 0);
			usleep(100000);
		}
		stop = 1;
		pthread_join(t, NULL);
	}
	printf("ns_per_op=%.1f rss_kb=%ld max_stall_us=%.0f\n", per, rss, max_stall * 1e6);
	return 0;
}
