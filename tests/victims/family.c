/* SPDX-License-Identifier: MIT */
/* calloc and the memalign family are counted at the requested size. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink[8];

int main(void)
{
	char *c = calloc(10, 100); /* @calloc */
	for (int i = 0; i < 1000; i++)
		if (c[i])
			return 2;
	sink[0] = c;
	void *pm = NULL;
	if (posix_memalign(&pm, 64, 256) != 0) /* @posix_memalign */
		return 3;
	if ((uintptr_t)pm % 64)
		return 4;
	sink[1] = pm;
	void *untouched = (void *)0x1234;
	if (posix_memalign(&untouched, 3, 16) != EINVAL || untouched != (void *)0x1234)
		return 5;
	sink[2] = aligned_alloc(128, 512); /* @aligned_alloc */
	sink[3] = memalign(32, 200); /* @memalign */
	sink[4] = valloc(300); /* @valloc */
	sink[5] = pvalloc(100); /* @pvalloc */
	if (malloc_usable_size(pm) < 256 || malloc_usable_size(NULL) != 0)
		return 6;
	/* programs may write into the slack malloc_usable_size reports */
	char *s = malloc(5); /* @slack */
	memset(s, 'x', malloc_usable_size(s));
	sink[6] = s;
	printf("family ok\n");
	return 0;
}
