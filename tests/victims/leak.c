/* SPDX-License-Identifier: MIT */
/* Leaks 1000 bytes every 10 ms of wall time (100,000 B/s) at @leak for
 * argv[1] seconds, paced by the monotonic clock so signals that cut a sleep
 * short change nothing; @jump takes 512 KiB once, at 80% of the run; @churn
 * allocates and frees. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void *volatile sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void leak_one(void)
{
	sink = malloc(1000); /* @leak */
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0, t0 = now(), t;
	long done = 0, jumped = 0;
	while ((t = now() - t0) < secs) {
		long due = (long)(t / 0.01);
		for (; done < due; done++)
			leak_one();
		if (!jumped && t >= secs * 0.8) {
			sink = malloc(512 * 1024); /* @jump */
			jumped = 1;
		}
		void *p = malloc(64); /* @churn */
		sink = p;
		free(p);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	printf("leaked %ld\n", done);
	return 0;
}
