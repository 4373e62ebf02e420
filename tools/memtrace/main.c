/* SPDX-License-Identifier: MIT */
/*
 * main.c - the memtrace analyzer's entry point: a table of subcommands, each
 * in its own cmd-*.c.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <getopt.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"show", mt_cmd_show, "the top callsites of a snapshot, tracemalloc style"},
	{"diff", mt_cmd_diff, "what changed between two snapshots"},
	{"growth", mt_cmd_growth, "which callsites grow over a series of snapshots: leak suspects"},
	{"leaks", mt_cmd_leaks, "what is still live at exit, by traceback, with suppressions"},
	{"check", mt_cmd_check, "fail (exit 3) when memory grows or leaks beyond a budget"},
	{"run", mt_cmd_run, "run a command under memtrace and list its snapshots"},
	{"attach", mt_cmd_attach, "load memtrace into a running process and track it from then on"},
	{"top", mt_cmd_top, "a live view of a process memtrace is in: what grows, now"},
	{"detach", mt_cmd_detach, "put back the entries memtrace attach redirected"},
	{"allocators", mt_cmd_allocators,
	 "run a command under each allocator configuration: which cures arena sprawl"},
	{"export", mt_cmd_export, "a snapshot for go tool pprof, flame graphs, or as JSON"},
	{"report", mt_cmd_report, "one HTML page: totals over time, flame graph, growth, diff"},
	{"dump", mt_cmd_dump, "a snapshot's records as JSON lines; --spec: the format"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: memtrace COMMAND [OPTIONS] ...\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'memtrace COMMAND --help' describes one command.\n"
		   "Snapshots come from LD_PRELOAD=libmemtrace.so PROGRAM, or memtrace run;\n"
		   "every command, option and MEMTRACE_* variable: man memtrace.\n");
}

static char **cmd_argv; /* the command's, for naming a bad option */

/* getopt is silenced (opterr = 0): a bad option is named here, in one
 * line, and a known one whose value is missing told apart (getopt gives
 * '?' for both: a long one's optopt is its value, a short one is known when
 * the command's option string has it). */
static void bad_option(const char *cmd)
{
	const char *arg = cmd_argv && optind > 0 ? cmd_argv[optind - 1] : "";
	bool is_long = arg[0] == '-' && arg[1] == '-';
	const char *shorts = !strcmp(cmd, "run")      ? "o:s:i:v"
			     : !strcmp(cmd, "export") ? "f:o:d:"
			     : !strcmp(cmd, "report") ? "o:n:g:d:"
						      : MT_VIEW_SHORTOPTS;
	const char *known = !is_long && optopt ? strchr(shorts, optopt) : NULL;
	int len = (int)strcspn(arg, "=");
	if (is_long && optopt)
		fprintf(stderr, "%.*s needs a value", len, arg);
	else if (known && known[1] == ':')
		fprintf(stderr, "-%c needs a value", optopt);
	else if (is_long || !optopt)
		fprintf(stderr, "unknown option '%.*s'", len, arg);
	else
		fprintf(stderr, "unknown option '-%c'", optopt);
}

void mt_die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "memtrace %s: ", cmd);
	if (!strcmp(fmt, "unknown option")) {
		bad_option(cmd);
	} else {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, " (see 'memtrace %s --help')\n", cmd);
	exit(MT_EXIT_USAGE);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return MT_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return MT_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("memtrace 0.1.0 (snapshot format v%d.%d)\n", MT_FORMAT_MAJOR,
		       MT_FORMAT_MINOR);
		return MT_EXIT_OK;
	}
	opterr = 0;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			cmd_argv = argv + 1;
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "memtrace: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return MT_EXIT_USAGE;
}
