/* SPDX-License-Identifier: MIT */
/* reachable N: N live blocks at exit for the leak scan's benchmark: half in
 * an array a global holds (still reachable), a quarter in a list whose head
 * is dropped (one definitely lost, the rest indirectly), a quarter dropped
 * one by one (definitely lost). */
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *next;
	char pad[40];
};
void **volatile held;
struct node *volatile list;

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	void **arr = malloc((size_t)(n / 2) * sizeof(*arr));
	for (long i = 0; i < n / 2; i++) {
		arr[i] = malloc(64);
		memset(arr[i], 0, 64);
	}
	held = arr;
	struct node *head = NULL;
	for (long i = 0; i < n / 4; i++) {
		struct node *x = malloc(sizeof(*x));
		memset(x, 0, sizeof(*x));
		x->next = head;
		head = x;
	}
	list = head;
	list = NULL;
	for (long i = 0; i < n / 4; i++) {
		char *volatile p = malloc(32);
		memset(p, 0, 32);
	}
	return 0;
}
