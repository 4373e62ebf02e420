/* SPDX-License-Identifier: MIT */
/*
 * dlplug.c - a service that loads a plugin when told: prints "ready",
 * then on a line "load" dlopens libplugin.so by its bare name (found
 * through this program's RUNPATH, $ORIGIN: the search dlopen makes from
 * its caller), calls it 200 times and prints "loaded"; ends with stdin.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
	char line[64];
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (strcmp(line, "load\n"))
			continue;
		void *h = dlopen("libplugin.so", RTLD_NOW);
		void *(*keep)(void) = h ? (void *(*)(void))dlsym(h, "plugin_keep") : NULL;
		if (!keep) {
			printf("no plugin: %s\n", dlerror());
			return 1;
		}
		for (int i = 0; i < 200; i++)
			keep();
		printf("loaded\n");
		fflush(stdout);
	}
	printf("done\n");
	return 0;
}
