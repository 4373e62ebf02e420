/* SPDX-License-Identifier: MIT */
/* A deterministic workload for sampling: 20,000 blocks of 1000 B and
 * 200,000 blocks of 24 B stay live, 100,000 blocks of 5000 B come and go,
 * and 10,000 blocks of 100 B are grown to 2000 B by realloc. Requests too
 * large for any heap fail at once, as they do without memtrace. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *big[20000], *small[200000], *grown[10000];
void *volatile sink;

int main(void)
{
	for (int shift = 40; shift < 64; shift++) {
		size_t huge = (size_t)1 << shift;
		void *p = malloc(huge), *q = malloc(SIZE_MAX - huge);
		void *r = realloc(NULL, huge), *c = calloc(huge, 2);
		if (p || q || r || c)
			printf("%zu B granted\n", huge);
		free(p), free(q), free(r), free(c);
	}
	for (int i = 0; i < 200000; i++) {
		if (i < 20000)
			big[i] = malloc(1000); /* @big */
		small[i] = malloc(24); /* @small */
		if (i % 2 == 0) {
			void *t = malloc(5000); /* @temp */
			sink = t;
			free(t);
		}
	}
	for (int i = 0; i < 10000; i++)
		grown[i] = malloc(100); /* @grow_from */
	for (int i = 0; i < 10000; i++)
		grown[i] = realloc(grown[i], 2000); /* @grow_to */
	printf("sampled ok %d\n", big[0] != NULL && small[0] != NULL && grown[0] != NULL);
	return 0;
}
