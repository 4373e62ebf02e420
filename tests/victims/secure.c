/* SPDX-License-Identifier: MIT */
/* Linked with libmemtrace (absolute RUNPATH), made setuid by the test and
 * run by another user: under AT_SECURE memtrace must do nothing at all. */
#include <stdio.h>
#include <stdlib.h>

#include "memtrace.h"

int main(void)
{
	void *p = malloc(1000);
	int r = mt_snapshot(NULL, 0);
	printf("secure %d\n", r);
	free(p);
	return 0;
}
