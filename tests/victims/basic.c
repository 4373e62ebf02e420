/* SPDX-License-Identifier: MIT */
/* Known live blocks at known lines; freed ones; free(NULL); errno rules. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *keep[1000];
void *volatile sink;

int main(void)
{
	for (int i = 0; i < 1000; i++)
		keep[i] = malloc(100); /* @keep100 */
	for (int i = 0; i < 500; i++) {
		void *p = malloc(64); /* @freed64 */
		sink = p;
		free(p);
	}
	sink = malloc(12345); /* @big */
	free(NULL);
	void *t = malloc(10); /* @errno */
	errno = 77;
	free(t);
	if (errno != 77)
		return 3;
	errno = 0;
	if (calloc(SIZE_MAX / 2, 4) != NULL || errno != ENOMEM)
		return 4;
	errno = 0;
	if (malloc(SIZE_MAX - 64) != NULL || errno != ENOMEM)
		return 5;
	printf("basic ok\n");
	return 0;
}
