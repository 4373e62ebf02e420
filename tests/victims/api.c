/* SPDX-License-Identifier: MIT */
/* mt_snapshot through a weak reference: works with and without memtrace. */
#include <stdio.h>
#include <stdlib.h>

#include "memtrace.h"

#pragma weak mt_snapshot
#pragma weak mt_reset_peak
void *volatile sink;

int main(void)
{
	for (int i = 0; i < 4; i++)
		sink = malloc(4000); /* @api */
	void *big = malloc(1 << 20); /* the peak, gone before the snapshot */
	sink = big;
	free(big);
	if (mt_reset_peak)
		mt_reset_peak();
	if (mt_snapshot) {
		char path[4096];
		int r = mt_snapshot(path, sizeof(path));
		printf("snapshot %d %s\n", r, r == 0 ? path : "-");
	} else {
		printf("no memtrace\n");
	}
	return 0;
}
