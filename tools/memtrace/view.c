/* SPDX-License-Identifier: MIT */
/*
 * view.c - the options show, diff, growth and leaks share: how to group,
 * which domain, which stacks, how many lines, in which order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const group_names[] = {"lineno",    "file", "function", "module",
					  "traceback", "type"};
static const char *const group_plural[] = {"lines",	 "files", "functions", "modules",
					   "tracebacks", "types"};
static const char *const sort_names[] = {"size", "count", "allocs"};

const char *mt_group_name(enum mt_group g)
{
	return group_names[g];
}

const char *mt_group_plural(enum mt_group g)
{
	return group_plural[g];
}

const char *mt_group_count(enum mt_group g, size_t n)
{
	static char one[32];
	if (n != 1)
		return group_plural[g];
	snprintf(one, sizeof(one), "%.*s", (int)strlen(group_plural[g]) - 1, group_plural[g]);
	return one;
}

const char *mt_domain_name(int domain)
{
	return domain < 0 ? "all" : domain == MT_DOMAIN_HEAP ? "heap" : "mmap";
}

void mt_view_init(mt_view_t *v)
{
	memset(v, 0, sizeof(*v));
	v->limit = 10;
	v->domain = MT_DOMAIN_HEAP;
}

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void push(char ***v, size_t *n, const char *s)
{
	*v = mt_xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (char *)s;
}

bool mt_view_option(mt_view_t *v, const char *cmd, int c, const char *arg)
{
	char *end;
	int k;

	switch (c) {
	case 'n':
		errno = 0;
		v->limit = strtoul(arg, &end, 10);
		if (!*arg || *end || errno || arg[0] == '-')
			mt_die_usage(cmd, "--limit takes a whole number, not '%s'", arg);
		return true;
	case 'g':
		if ((k = lookup(arg, group_names, 6)) < 0)
			mt_die_usage(cmd,
				     "--group-by takes lineno, file, function, module, "
				     "traceback or type, not '%s'",
				     arg);
		v->group = (enum mt_group)k;
		return true;
	case 'd':
		if (strcmp(arg, "all") == 0)
			v->domain = -1;
		else if (strcmp(arg, "heap") == 0)
			v->domain = MT_DOMAIN_HEAP;
		else if (strcmp(arg, "mmap") == 0)
			v->domain = MT_DOMAIN_MMAP;
		else
			mt_die_usage(cmd, "--domain takes heap, mmap or all, not '%s'", arg);
		return true;
	case 'S':
		if ((k = lookup(arg, sort_names, 3)) < 0)
			mt_die_usage(cmd, "--sort takes size, count or allocs, not '%s'", arg);
		v->sort = (enum mt_sort)k;
		v->sort_set = true;
		return true;
	case 'j': v->json = true; return true;
	case 'N': mt_native_frames = true; return true;
	case 'c': v->cumulative = true; return true;
	case 'A': v->all_frames = true; return true;
	case 'I': push(&v->include, &v->ninclude, arg); return true;
	case 'X': push(&v->exclude, &v->nexclude, arg); return true;
	case 'T': push(&v->types, &v->ntypes, arg); return true;
	}
	return false;
}

void mt_view_check(mt_view_t *v, const char *cmd)
{
	if (v->cumulative && v->group == MT_GROUP_TRACEBACK)
		mt_die_usage(cmd, "--cumulative does not go with --group-by traceback");
	if (v->cumulative && v->group == MT_GROUP_TYPE)
		mt_die_usage(cmd, "--cumulative does not go with --group-by type");
	if (v->group == MT_GROUP_TYPE && !v->sort_set)
		v->sort = MT_SORT_COUNT; /* most common first, as objgraph */
}

int mt_view_parse(mt_view_t *v, const char *cmd, const char *usage, int argc, char **argv)
{
	static const struct option opts[] = {MT_VIEW_LONGOPTS, {0}};
	int c;

	mt_view_init(v);
	optind = 1;
	while ((c = getopt_long(argc, argv, MT_VIEW_SHORTOPTS, opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			exit(MT_EXIT_OK);
		}
		if (!mt_view_option(v, cmd, c, optarg))
			mt_die_usage(cmd, "unknown option");
	}
	mt_view_check(v, cmd);
	return optind;
}
