/* SPDX-License-Identifier: MIT */
/*
 * xalloc.c - the analyzer's memory: out of memory ends the command with one
 * line and status 2 (nothing half-written is left: outputs go through
 * output.c's temp file).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void oom(void)
{
	fputs("memtrace: out of memory\n", stderr);
	exit(MT_EXIT_INPUT);
}

void *mt_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *mt_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *mt_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return s;
}
