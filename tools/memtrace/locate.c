/* SPDX-License-Identifier: MIT */
/*
 * locate.c - where the things a command starts are: the libmemtrace.so to
 * preload (--lib, $MEMTRACE_LIB, the build tree's, the installation's own),
 * the library of each allocator memtrace knows (MT_ALLOCATORS) and the
 * environment that deploys it, and a command on PATH. Used by run,
 * allocators and attach.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static bool readable(const char *p)
{
	return p && access(p, R_OK) == 0;
}

/* The library to preload: --lib, $MEMTRACE_LIB, the build tree's when this
 * memtrace is the build tree's, the installation's own (found from where
 * this memtrace is, so a DESTDIR or moved prefix works), the configured
 * libdir. NULL when none is readable. */
char *mt_find_lib(const char *given)
{
	char self[PATH_MAX];
	if (given)
		return readable(given) ? realpath(given, NULL) : NULL;
	const char *env = getenv("MEMTRACE_LIB");
	if (env && *env)
		return readable(env) ? realpath(env, NULL) : NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		char *build = realpath(MT_BUILD_DIR, NULL);
		bool in_build = build && strcmp(build, self) == 0;
		free(build);
		if (in_build && readable(MT_BUILD_LIB))
			return mt_xasprintf("%s", MT_BUILD_LIB);
		if (MT_LIBDIR_FROM_BIN[0]) {
			char *p = mt_xasprintf("%s/%s/libmemtrace.so", self, MT_LIBDIR_FROM_BIN);
			char *r = readable(p) ? realpath(p, NULL) : NULL;
			free(p);
			if (r)
				return r;
		}
	}
	char *p = mt_xasprintf("%s/libmemtrace.so", MT_LIBDIR);
	if (readable(p))
		return p;
	free(p);
	return NULL;
}

static const struct allocator_row {
	const char *name, *lib, *pkg, *env;
} allocator_rows[] = {
#define X(id, nm, lib, pkg, probe, arenas, env) {nm, lib, pkg, env},
	MT_ALLOCATORS(X)
#undef X
};

static const struct allocator_row *allocator_row(const char *name)
{
	if (!strcmp(name, "system"))
		name = "glibc";
	for (size_t i = 0; i < sizeof(allocator_rows) / sizeof(allocator_rows[0]); i++)
		if (!strcmp(name, allocator_rows[i].name))
			return &allocator_rows[i];
	return NULL;
}

const char *mt_allocator_env(const char *name)
{
	const struct allocator_row *r = allocator_row(name);
	return r ? r->env : "";
}

/* The library to preload for allocator NAME: beside libc's, or in the
 * usual library directories. */
const char *mt_allocator_find(const char *name)
{
	const struct allocator_row *r = allocator_row(name);
	if (!r)
		return NULL;
	if (!*r->lib)
		return "";
	Dl_info di;
	char dir[PATH_MAX] = "/usr/lib";
	if (dladdr((void *)&fopen, &di) && di.dli_fname && strrchr(di.dli_fname, '/')) {
		snprintf(dir, sizeof(dir), "%s", di.dli_fname);
		*strrchr(dir, '/') = '\0';
	}
	const char *dirs[] = {dir, "/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/usr/lib"};
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		char *p = mt_xasprintf("%s/%s", dirs[d], r->lib);
		if (readable(p))
			return p;
		free(p);
	}
	return NULL;
}

const char *mt_allocator_lib(const char *cmd, const char *name)
{
	const struct allocator_row *r = allocator_row(name);
	if (!r)
		mt_die_usage(cmd,
			     "--allocator takes glibc, jemalloc, tcmalloc or mimalloc, not '%s'",
			     name);
	const char *lib = mt_allocator_find(name);
	if (!lib)
		mt_die_usage(cmd, "--allocator %s: %s is not installed (Debian package %s)", name,
			     r->lib, r->pkg);
	return lib;
}

char *mt_find_cmd(const char *cmd)
{
	if (strchr(cmd, '/'))
		return mt_xasprintf("%s", cmd);
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	char *copy = mt_xasprintf("%s", path), *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = mt_xasprintf("%s/%s", *d ? d : ".", cmd);
		if (access(p, X_OK) == 0) {
			free(copy);
			return p;
		}
		free(p);
	}
	free(copy);
	return NULL;
}
