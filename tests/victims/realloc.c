/* SPDX-License-Identifier: MIT */
/* realloc moves bytes to the realloc's line; a failed realloc keeps the old
 * block; realloc(p, 0) frees (glibc); reallocarray checks overflow. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

int main(void)
{
	char *p = malloc(10); /* @r1 */
	p = realloc(p, 100); /* @r2 */
	p = realloc(p, 1000); /* @r3 */
	sink = p;
	char *q = malloc(50); /* @r4 */
	if (realloc(q, SIZE_MAX / 2) != NULL) /* @rfail */
		return 2;
	sink = q;
	char *z = malloc(20); /* @z */
	sink = realloc(z, 0);
	char *ra = reallocarray(NULL, 10, 30); /* @ra */
	sink = ra;
	errno = 0;
	if (reallocarray(NULL, SIZE_MAX, 2) != NULL || errno != ENOMEM)
		return 3;
	printf("realloc ok\n");
	return 0;
}
