/* SPDX-License-Identifier: MIT */
/* Allocates and touches 48 MiB, takes a snapshot, and prints the kernel's
 * own view of its memory right after, for comparison. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memtrace.h"

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

void *volatile keep[48];

int main(void)
{
	for (int i = 0; i < 48; i++) {
		keep[i] = malloc(1 << 20);
		memset(keep[i], i, 1 << 20);
	}
	long rss0 = status_kb("VmRSS:"), vms0 = status_kb("VmSize:");
	char path[4096];
	if (mt_snapshot(path, sizeof(path)) != 0)
		return 2;
	long rss1 = status_kb("VmRSS:"), vms1 = status_kb("VmSize:");
	printf("%s %ld %ld %ld %ld\n", path, rss0, rss1, vms0, vms1);
	return 0;
}
