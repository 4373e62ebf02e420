/* SPDX-License-Identifier: MIT */
/* A library constructor that allocates before main. */
#include <stdlib.h>

void *ctor_blocks[3];

__attribute__((constructor)) static void early(void)
{
	for (int i = 0; i < 3; i++)
		ctor_blocks[i] = malloc(333); /* @ctor */
}
