/* SPDX-License-Identifier: MIT */
/* plugin.c - libplugin.so, dlopen'ed by dlplug after memtrace attached:
 * each call keeps one 1000-byte block (@plugin). */
#include <stdlib.h>
#include <string.h>

void *plugin_keep(void)
{
	char *p = malloc(1000); /* @plugin */
	if (p)
		memset(p, 2, 1000);
	return p;
}
