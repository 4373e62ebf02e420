/* SPDX-License-Identifier: MIT */
/* A program with its own SIGUSR1 handler (installed with sigaction, or with
 * signal() when argv[1] is "signal"): its handler must run. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "signal") == 0) {
		signal(SIGUSR1, on_usr1);
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
	}
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < 2000 && handled < 3; i++)
		usleep(1000);
	printf("handled %d\n", (int)handled);
	return 0;
}
