/* SPDX-License-Identifier: MIT */
/* A program that leaves through _exit still gets its snapshot. */
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

int main(void)
{
	for (int i = 0; i < 5; i++)
		sink = malloc(77); /* @uexit */
	_exit(0);
}
