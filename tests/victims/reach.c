/* SPDX-License-Identifier: MIT */
/* What is live at exit, in each of memcheck's classes, at known lines:
 *   definitely lost  4 x 1100 B at @direct; a 48 B parent at @parent;
 *                    one of the cycle's two 64 B nodes at @cycle; 333 B
 *                    lost in a thread that has exited, at @thread
 *   indirectly lost  the parent's two 200 B children at @child; the
 *                    cycle's other node
 *   possibly lost    100 B pointed to only in its middle, at @possible
 *   still reachable  a 200,000 B cache held by a global, at @cache; 777 B
 *                    held only on the stack of a thread still blocked at
 *                    exit, at @stackheld
 * The lost pointers are scrubbed from the stack before main returns (a
 * stale copy below a later frame would be taken for a pointer, by
 * memcheck as by memtrace). */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct parent {
	char *kids[2];
	char pad[32];
};
struct node {
	struct node *other;
	char pad[56];
};

char *cache;
char *middle;
static sem_t held_ready, never;

static __attribute__((noinline)) void lose_direct(void)
{
	for (int i = 0; i < 4; i++) {
		char *p = malloc(1100); /* @direct */
		memset(p, 1, 1100);
		p = NULL;
	}
}

static __attribute__((noinline)) void lose_tree(void)
{
	struct parent *t = malloc(sizeof(*t)); /* @parent */
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 2; i++) {
		t->kids[i] = malloc(200); /* @child */
		memset(t->kids[i], 2, 200);
	}
	t = NULL;
}

static __attribute__((noinline)) struct node *node(void)
{
	struct node *n = malloc(sizeof(*n)); /* @cycle */
	memset(n, 0, sizeof(*n));
	return n;
}

static __attribute__((noinline)) void lose_cycle(void)
{
	struct node *a = node(), *b = node();
	a->other = b;
	b->other = a;
	a = b = NULL;
}

static __attribute__((noinline)) void keep_middle(void)
{
	char *p = malloc(100); /* @possible */
	memset(p, 0, 100);
	middle = p + 40;
}

static void *leaker(void *arg)
{
	(void)arg;
	char *volatile p = malloc(333); /* @thread */
	memset(p, 3, 333);
	p = NULL;
	return NULL;
}

static void *holder(void *arg)
{
	(void)arg;
	char *volatile p = malloc(777); /* @stackheld */
	memset(p, 4, 777);
	sem_post(&held_ready);
	while (sem_wait(&never) != 0)
		;
	return (void *)p;
}

static __attribute__((noinline)) void scrub(void)
{
	volatile char junk[64 << 10];
	memset((char *)junk, 0, sizeof(junk));
}

int main(void)
{
	pthread_t t;
	sem_init(&held_ready, 0, 0);
	sem_init(&never, 0, 0);
	cache = malloc(200000); /* @cache */
	memset(cache, 0, 200000);
	lose_direct();
	lose_tree();
	lose_cycle();
	keep_middle();
	pthread_create(&t, NULL, leaker, NULL);
	pthread_join(t, NULL);
	pthread_create(&t, NULL, holder, NULL);
	while (sem_wait(&held_ready) != 0)
		;
	usleep(20000); /* the holder asleep in its wait */
	scrub();
	return 0;
}
