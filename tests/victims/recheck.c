/* SPDX-License-Identifier: MIT */
/* The periodic check against libunwind after a long calm. The main thread
 * repeats one stack 200,000 times (its checks grow rare), then reaches
 * malloc through a frame whose size changed (alloca) and whose old-size
 * slot holds a return address the frame-size table knows, with room for
 * the same again above it: a buffer filled with the first stack's return
 * address into main. The table's walk then reads a plausible, wrong stack
 * (main at @calm, over and over). The stack is new to the thread, so the
 * check must come soon: at most one check interval of blocks may be
 * mis-captured before it, the rest must stand at @poisoned. */
#include <alloca.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;
static void *kept[3000];
static uintptr_t calm_ra;

static void __attribute__((noinline)) leaf(uintptr_t *buf, int keep)
{
	void *p = malloc(40); /* @leaf */
	if (keep >= 0)
		kept[keep] = p;
	else
		free(p);
	sink = buf;
}

static void __attribute__((noinline)) varframe(int words, int keep)
{
	uintptr_t *buf = alloca((size_t)words * sizeof(*buf));
	uintptr_t ra = (uintptr_t)__builtin_return_address(0);
	if (keep < 0)
		calm_ra = ra;
	for (int i = 0; i < words; i++)
		buf[i] = keep < 0 ? 0 : calm_ra;
	leaf(buf, keep);
	__asm__ volatile("" ::: "memory");
}

int main(void)
{
	for (int i = 0; i < 200000; i++) {
		varframe(8, -1); /* @calm */
		__asm__ volatile("" ::: "memory");
	}
	for (int i = 0; i < 3000; i++) {
		varframe(1024, i); /* @poisoned */
		__asm__ volatile("" ::: "memory");
	}
	printf("recheck ok\n");
	return 0;
}
