/* SPDX-License-Identifier: MIT */
/* Stacks the frame-size cache must not confuse: a caller with a variable
 * frame (alloca of changing size) reached from two different functions, and
 * deep recursion, and 64 paths of one depth that share their first frames
 * (the second memo), walked by the main thread and three others that then
 * exit. Each allocation's traceback must be exact. */
#include <alloca.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;

static void __attribute__((noinline)) leaf(char *buf)
{
	sink = malloc(48); /* @leaf */
	buf[0] = 1;
}

static void __attribute__((noinline)) varframe(int n)
{
	char *buf = alloca((size_t)n);
	memset(buf, 0, (size_t)n);
	leaf(buf);
	__asm__ volatile("" ::: "memory");
}

static void __attribute__((noinline)) from_a(int n)
{
	varframe(n); /* @from_a */
	__asm__ volatile("" ::: "memory");
}

static void __attribute__((noinline)) from_b(int n)
{
	varframe(n); /* @from_b */
	__asm__ volatile("" ::: "memory");
}

static void __attribute__((noinline)) recurse(int depth)
{
	if (depth == 0) {
		sink = malloc(16); /* @deep */
		return;
	}
	recurse(depth - 1);
	__asm__ volatile("" ::: "memory");
}

/* six levels, two ways each: path p takes way a where its bit is set */
static void __attribute__((noinline)) ways(int depth, unsigned p)
{
	if (depth == 0) {
		sink = malloc(24); /* @paths */
		return;
	}
	if (p & 1)
		ways(depth - 1, p >> 1); /* @way_a */
	else
		ways(depth - 1, p >> 1); /* @way_b */
	__asm__ volatile("" ::: "memory");
}

/* every path 50 times, in a scattered order */
static void *all_paths(void *arg)
{
	for (unsigned i = 0; i < 64 * 50; i++)
		ways(6, (i * 37) % 64);
	return arg;
}

int main(void)
{
	for (int i = 0; i < 3000; i++) {
		if (i % 3 == 0)
			from_a(16 + (i % 7) * 64);
		else
			from_b(16 + (i % 5) * 128);
	}
	for (int i = 0; i < 500; i++)
		recurse(40);
	all_paths(NULL);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t[i], NULL, all_paths, NULL) != 0)
			return 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("frames ok\n");
	return 0;
}
