/* SPDX-License-Identifier: MIT */
/*
 * slowleak.c - a service that leaks at a known line and rate: every 10 ms
 * it keeps one 1000-byte block (@leak) and frees a 50-byte one, until its
 * stdin ends. Started bare, attached to and detached from by the tests; its
 * output must not change: "ready", then "done" (the blocks' sum is kept
 * where the compiler cannot drop the blocks).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	struct pollfd p = {0, POLLIN, 0};
	static volatile unsigned long sum;
	int r;
	printf("ready\n");
	fflush(stdout);
	while ((r = poll(&p, 1, 10)) == 0 || (r < 0 && errno == EINTR)) {
		char *b = malloc(1000); /* @leak */
		memset(b, 1, 1000);
		sum += (unsigned char)b[999];
		free(malloc(50)); /* @churn */
	}
	printf("done\n");
	return 0;
}
