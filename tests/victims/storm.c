/* SPDX-License-Identifier: MIT */
/* Four threads allocate, free, realloc and mmap for argv[1] seconds, while
 * the test sends signals; prints a checksum of what they did. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double secs;
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *work(void *arg)
{
	unsigned seed = (unsigned)(size_t)arg;
	void *slots[256] = { 0 };
	unsigned long ops = 0;
	double end = now() + secs;
	while (now() < end) {
		for (int k = 0; k < 1000; k++, ops++) {
			int i = rand_r(&seed) % 256;
			switch (rand_r(&seed) % 4) {
			case 0:
				free(slots[i]);
				slots[i] = malloc(1 + rand_r(&seed) % 2000);
				break;
			case 1:
				slots[i] = realloc(slots[i], 1 + rand_r(&seed) % 4000);
				break;
			case 2: {
				size_t len = 4096 * (1 + rand_r(&seed) % 8);
				char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				if (m != MAP_FAILED) {
					m[0] = 1;
					munmap(m, len);
				}
				break;
			}
			default:
				free(slots[i]);
				slots[i] = calloc(1, 64);
			}
		}
	}
	for (int i = 0; i < 256; i++)
		free(slots[i]);
	return (void *)ops;
}

int main(int argc, char **argv)
{
	secs = argc > 1 ? atof(argv[1]) : 2;
	pthread_t t[4];
	for (long i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, work, (void *)(i + 1));
	unsigned long total = 0;
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		total += (unsigned long)r;
	}
	printf("storm ok %d\n", total > 0);
	return 0;
}
