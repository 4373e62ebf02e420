/* SPDX-License-Identifier: MIT */
/* 10,000 short-lived threads, each allocating and freeing, each leaving one
 * block of 24 B, and one pthread key destructor that allocates at exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_key_t key;
static void *kept[10000];

static void at_thread_exit(void *p)
{
	free(p);
	void *q = malloc(8); /* @dtor_tmp */
	free(q);
}

static void *one(void *arg)
{
	long i = (long)arg;
	pthread_setspecific(key, malloc(16)); /* @keyval */
	for (int k = 0; k < 10; k++) {
		void *p = malloc(50);
		free(p);
	}
	kept[i] = malloc(24); /* @kept */
	return NULL;
}

int main(void)
{
	pthread_key_create(&key, at_thread_exit);
	for (long base = 0; base < 10000; base += 50) {
		pthread_t t[50];
		for (long i = 0; i < 50; i++)
			pthread_create(&t[i], NULL, one, (void *)(base + i));
		for (int i = 0; i < 50; i++)
			pthread_join(t[i], NULL);
	}
	printf("threads ok\n");
	return 0;
}
