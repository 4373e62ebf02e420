/* SPDX-License-Identifier: MIT */
/* Four threads allocate; each frees blocks another thread allocated. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define T 4
#define N 1000

static void *kept[T][N];
static void *handoff[T][N];
static pthread_barrier_t barrier;

static void *work(void *arg)
{
	long t = (long)arg;
	for (int i = 0; i < N; i++) {
		kept[t][i] = malloc(32); /* @thr */
		handoff[t][i] = malloc(16); /* @xfer */
	}
	pthread_barrier_wait(&barrier);
	long other = (t + 1) % T;
	for (int i = 0; i < N; i++)
		free(handoff[other][i]);
	return NULL;
}

int main(void)
{
	pthread_t th[T];
	pthread_barrier_init(&barrier, NULL, T);
	for (long t = 0; t < T; t++)
		pthread_create(&th[t], NULL, work, (void *)t);
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	printf("threads ok\n");
	return 0;
}
