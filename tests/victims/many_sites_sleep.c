/* SPDX-License-Identifier: MIT */
/* Many live callsites, so a dump takes a while; then waits for signals
 * (the kill -9 test interrupts its dumps). */
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

static void __attribute__((noinline)) level(int depth, unsigned long i)
{
	if (depth == 8) {
		sink = malloc(16);
		return;
	}
	switch (i % 4) {
	case 0: level(depth + 1, i / 4); break;
	case 1: level(depth + 1, i / 4); break;
	case 2: level(depth + 1, i / 4); break;
	default: level(depth + 1, i / 4); break;
	}
	__asm__ volatile("" ::: "memory");
}

int main(void)
{
	for (unsigned long i = 0; i < 65536; i++)
		level(0, i);
	for (;;)
		pause();
}
