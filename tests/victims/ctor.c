/* SPDX-License-Identifier: MIT */
/* Links libctor.so, whose constructor allocates before main runs. */
#include <stdio.h>

extern void *ctor_blocks[3];

int main(void)
{
	printf("ctor ok %d\n", ctor_blocks[2] != NULL);
	return 0;
}
