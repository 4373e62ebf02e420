/* SPDX-License-Identifier: MIT */
/*
 * manysites.c - makes a snapshot series with many distinct callsites, for the
 * analyzer benchmark: site i is reached through 9 levels of calls whose call
 * instructions spell out i in base 4, so every i has its own stack. Each of
 * ROUNDS rounds allocates 16 more bytes at every site and takes a snapshot
 * with mt_snapshot().
 *   manysites SITES ROUNDS   (run under LD_PRELOAD=libmemtrace.so)
 */
#include <stdio.h>
#include <stdlib.h>

#include "memtrace.h"

#pragma weak mt_snapshot

void *volatile sink;

static void level(int depth, unsigned long i);

#define NEXT(k) level(depth + 1, i / 4)

static void __attribute__((noinline)) level(int depth, unsigned long i)
{
	if (depth == 9) {
		sink = malloc(16);
		return;
	}
	switch (i % 4) {
	case 0: NEXT(0); break;
	case 1: NEXT(1); break;
	case 2: NEXT(2); break;
	default: NEXT(3); break;
	}
	__asm__ volatile("" ::: "memory"); /* no tail calls: one frame per level */
}

int main(int argc, char **argv)
{
	unsigned long sites = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	int rounds = argc > 2 ? atoi(argv[2]) : 10;
	if (sites > (1ul << 18))
		sites = 1ul << 18;
	for (int r = 0; r < rounds; r++) {
		for (unsigned long i = 0; i < sites; i++)
			level(0, i);
		if (mt_snapshot) {
			char path[4096];
			if (mt_snapshot(path, sizeof(path)) == 0)
				printf("%s\n", path);
		}
	}
	return 0;
}
