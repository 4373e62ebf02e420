/* SPDX-License-Identifier: MIT */
/* A child that exits writes its own pid's snapshot; one that _exits writes
 * none; the parent's snapshot never holds the children's blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void)
{
	for (int i = 0; i < 10; i++)
		sink = malloc(111); /* @parent */
	fflush(stdout);
	pid_t a = fork();
	if (a == 0) {
		for (int i = 0; i < 7; i++)
			sink = malloc(222); /* @child */
		exit(0);
	}
	pid_t b = fork();
	if (b == 0) {
		sink = malloc(333); /* @child2 */
		_exit(0);
	}
	int st1, st2;
	waitpid(a, &st1, 0);
	waitpid(b, &st2, 0);
	printf("fork ok %d %d\n", (int)a, (int)b);
	return WEXITSTATUS(st1) | WEXITSTATUS(st2);
}
