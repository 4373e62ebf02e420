/* SPDX-License-Identifier: MIT */
/*
 * arenas.c - the threaded-service scenario: THREADS threads, all alive at
 * once, each allocating and freeing in bursts for ROUNDS rounds. Under
 * glibc every thread gets an arena of its own up to 8 x cores, each a 64 MiB
 * reservation: a huge VMS. Prints its peak VMS and RSS and its run time.
 * With ARENAS_HOLD set, every thread stays alive after its rounds, "holding"
 * is printed, and all end when stdin does, or after ARENAS_HOLD seconds
 * when it is a number (for pmap to read the process).
 *   arenas [THREADS [ROUNDS]]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memtrace.h"

#pragma weak mt_snapshot

static pthread_barrier_t start, held, release;
static int hold; /* ARENAS_HOLD set: all threads stay alive until stdin ends */
static int rounds = 200;

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(size_t)arg;
	void *burst[256];
	pthread_barrier_wait(&start);
	for (int r = 0; r < rounds; r++) {
		int n = 64 + rand_r(&seed) % 192;
		for (int i = 0; i < n; i++) {
			size_t size = 64 + rand_r(&seed) % 16384;
			burst[i] = malloc(size);
			memset(burst[i], r, size < 256 ? size : 256);
		}
		for (int i = 0; i < n; i++)
			free(burst[i]);
	}
	if (hold) {
		pthread_barrier_wait(&held);
		pthread_barrier_wait(&release);
	}
	return NULL;
}

static void status_line(const char *key, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	snprintf(out, cap, "?");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0) {
			char *v = line + strlen(key);
			v += strspn(v, " \t");
			v[strcspn(v, "\n")] = '\0';
			snprintf(out, cap, "%s", v);
		}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 64;
	if (argc > 2)
		rounds = atoi(argv[2]);
	if (threads < 1 || threads > 4096 || rounds < 0) {
		fprintf(stderr, "usage: arenas [THREADS 1..4096 [ROUNDS]]\n");
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	pthread_barrier_init(&start, NULL, (unsigned)threads);
	hold = getenv("ARENAS_HOLD") != NULL;
	pthread_barrier_init(&held, NULL, (unsigned)threads + 1);
	pthread_barrier_init(&release, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, (void *)(size_t)(i + 1));
	if (hold) { /* the threads and their arenas stay while stdin is open,
		     * or for ARENAS_HOLD seconds when it is a number */
		pthread_barrier_wait(&held);
		printf("holding\n");
		fflush(stdout);
		double secs = atof(getenv("ARENAS_HOLD"));
		if (secs > 0)
			usleep((useconds_t)(secs * 1e6));
		else
			while (getchar() != EOF)
				;
		pthread_barrier_wait(&release);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	char vms[64], rss[64];
	status_line("VmPeak:", vms, sizeof(vms));
	status_line("VmHWM:", rss, sizeof(rss));
	printf("threads=%d rounds=%d seconds=%.3f vm_peak=%s rss_peak=%s\n", threads, rounds,
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, vms, rss);
	if (mt_snapshot)
		mt_snapshot(NULL, 0);
	free(tid);
	return 0;
}
