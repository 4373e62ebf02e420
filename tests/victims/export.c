/* SPDX-License-Identifier: MIT */
/* Ground truth for memtrace export: an allocation inside a function inlined
 * into main (always_inline: inlined even at -O0), so one return address
 * stands for two source frames, @grab in new_buffer called at @call; and two
 * callsites on one line (@twice) that symbolize to one stack. */
#include <stdio.h>
#include <stdlib.h>

static void *keep[32];

static inline __attribute__((always_inline)) void *new_buffer(size_t n)
{
	return malloc(n); /* @grab */
}

int main(void)
{
	for (int i = 0; i < 30; i++)
		keep[i] = new_buffer(700); /* @call */
	keep[30] = malloc(11), keep[31] = malloc(22); /* @twice */
	printf("export ok\n");
	return 0;
}
