/* SPDX-License-Identifier: MIT */
/* mt_snapshot through a weak reference: works with and without memtrace. */
#include <stdio.h>
#include <stdlib.h>

#include "memtrace.h"

#pragma weak mt_snapshot
void *volatile sink;

int main(void)
{
	for (int i = 0; i < 4; i++)
		sink = malloc(4000); /* @api */
	if (mt_snapshot) {
		char path[4096];
		int r = mt_snapshot(path, sizeof(path));
		printf("snapshot %d %s\n", r, r == 0 ? path : "-");
	} else {
		printf("no memtrace\n");
	}
	return 0;
}
