/* SPDX-License-Identifier: MIT */
/*
 * demo.c - a small program with a known memory profile, for the README's
 * quick start: a "session cache" that is never trimmed (the leak), a config
 * buffer, strings copied with strdup, and work buffers that are freed. It
 * takes a snapshot every 2,500 requests (mt_snapshot, weak: none without
 * memtrace), so that the report has a series to chart, rank and compare.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mt_snapshot(char *path, size_t pathlen) __attribute__((weak));

struct session {
	char id[88];
	struct session *next;
};

static struct session *cache;

static void remember_session(int i)
{
	struct session *s = malloc(sizeof(*s)); /* 96 B each, never freed */
	snprintf(s->id, sizeof(s->id), "session-%d", i);
	s->next = cache;
	cache = s;
}

static char *load_config(void)
{
	char *cfg = calloc(1, 12345);
	strcpy(cfg, "threads=4\n");
	return cfg;
}

/* Keeps the compiler from eliding the malloc/free pair below. */
char *volatile last_work;

static void handle_request(int i)
{
	char *work = malloc(4096); /* freed: does not show */
	last_work = work;
	memset(work, i, 4096);
	free(work);
	if (i % 10 == 0)
		remember_session(i);
}

int main(void)
{
	char *config = load_config();
	char *names[50];
	for (int i = 0; i < 50; i++)
		names[i] = strdup("a-name-of-31-characters-length");
	for (int i = 0; i < 10000; i++) {
		handle_request(i);
		if (i % 2500 == 2499 && i < 9999 && mt_snapshot)
			mt_snapshot(NULL, 0);
	}
	printf("demo: served 10000 requests, %zu bytes of config\n", strlen(config));
	(void)names;
	return 0;
}
