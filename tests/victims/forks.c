/* SPDX-License-Identifier: MIT */
/* fork from a threaded program, vfork + exec, posix_spawn, while two
 * threads allocate. */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static volatile int stop;

static void *churn(void *arg)
{
	(void)arg;
	while (!stop) {
		void *p = malloc(100);
		free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	int ok = 0;
	for (int i = 0; i < 20; i++) {
		pid_t c = fork();
		if (c == 0) {
			void *p = malloc(1000);
			free(p);
			_exit(7);
		}
		int st;
		waitpid(c, &st, 0);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 7;
	}
	for (int i = 0; i < 20; i++) {
		pid_t c = vfork();
		if (c == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(c, &st, 0);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	for (int i = 0; i < 20; i++) {
		pid_t c;
		char *args[] = { "true", NULL };
		if (posix_spawn(&c, "/bin/true", NULL, NULL, args, environ) == 0) {
			int st;
			waitpid(c, &st, 0);
			ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
		}
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("forks ok %d\n", ok);
	return ok == 60 ? 0 : 1;
}
