/* SPDX-License-Identifier: MIT */
/* Two series whose verdict was untrue (run for argv[2] seconds, paced by
 * the monotonic clock):
 *   verdicts slow  leaks 70 bytes every 10 ms at @slow (7 KB/s), far under
 *                  any size threshold, and nothing else; with a third
 *                  argument "tidy" it frees them all before it exits
 *   verdicts fall  holds a 1.5 MiB cache of 1,500 blocks at @cache and
 *                  frees it at half time; nothing grows */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *volatile sink;
static void *cache[1500];
static void *kept[100000];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int slow = argc > 1 && !strcmp(argv[1], "slow");
	double secs = argc > 2 ? atof(argv[2]) : 2.0, t0 = now(), t;
	long done = 0;
	int freed = 0;
	if (!slow)
		for (int i = 0; i < 1500; i++)
			cache[i] = malloc(1024); /* @cache */
	while ((t = now() - t0) < secs) {
		if (slow)
			for (long due = (long)(t / 0.01); done < due; done++)
				kept[done] = malloc(70); /* @slow */
		if (!slow && !freed && t >= secs / 2) {
			for (int i = 0; i < 1500; i++)
				free(cache[i]);
			freed = 1;
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
	if (argc > 3 && !strcmp(argv[3], "tidy"))
		for (long i = 0; i < done; i++)
			free(kept[i]);
	printf("verdicts %s ok\n", slow ? "slow" : "fall");
	return 0;
}
