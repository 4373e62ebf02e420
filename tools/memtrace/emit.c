/* SPDX-License-Identifier: MIT */
/*
 * emit.c - the analyzer's output, one text and one JSON form per shape: a
 * size as tracemalloc prints it, a snapshot's identity line and its JSON
 * members, a group's tracemalloc line with its traceback, and a group's
 * identity in JSON (key, file, line, function, module, kind, traceback:
 * the same fields in show, diff, growth and leaks).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void mt_format_size(char *buf, size_t cap, double size, bool sign)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	for (int u = 0; u < 5; u++) {
		if (fabs(size) < 100 && u != 0) {
			snprintf(buf, cap, sign ? "%+.1f %s" : "%.1f %s", size, units[u]);
			return;
		}
		if (fabs(size) < 10 * 1024 || u == 4) {
			snprintf(buf, cap, sign ? "%+.0f %s" : "%.0f %s", size, units[u]);
			return;
		}
		size /= 1024;
	}
}

char *mt_printable(const char *s)
{
	char *d = strdup(s ? s : "");
	for (char *p = d; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return d;
}

void mt_json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

char *mt_stat_title(const mt_stat_t *st)
{
	char *t = mt_printable(st->ntrace ? st->trace[0] : st->key);
	char *nl = strchr(t, '\n');
	if (nl)
		*nl = '\0';
	return t;
}

double mt_snap_seconds(const mt_snap_t *s)
{
	return (double)(s->mono_ns - s->start_mono_ns) / 1e9;
}

void mt_print_snap_line(FILE *f, const char *label, const mt_snap_t *s)
{
	char when[64] = "?";
	time_t t = (time_t)(s->wall_ns / 1000000000ull);
	struct tm tm;
	char *exe = mt_printable(s->exe);

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(f, "%sSnapshot %u of pid %u (%s), %s, %.3f s after %s: %s\n", label, s->seq,
		s->pid, mt_reason_text(s->reason), when, mt_snap_seconds(s),
		s->attach_wall_ns ? "the attach" : "start", exe);
	if (s->attach_wall_ns) {
		char since[64] = "?";
		time_t a = (time_t)(s->attach_wall_ns / 1000000000ull);
		if (gmtime_r(&a, &tm))
			strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		fprintf(f,
			"%sTracking since memtrace attached at %s: blocks allocated before are not "
			"counted; growth is growth since then\n",
			label, since);
	}
	if (s->sample_bytes) {
		char rate[32], ten[32];
		mt_format_size(rate, sizeof(rate), (double)s->sample_bytes, false);
		mt_format_size(ten, sizeof(ten), 100.0 * (double)s->sample_bytes, false);
		fprintf(f,
			"%sSampled: one allocation per %s on average, weighted by 1/p: sizes and "
			"counts below are estimates\n",
			label, rate);
		/* Poisson sampling by bytes: B bytes in blocks much smaller than R
		 * hold about B/R samples of weight about R each */
		fprintf(f,
			"%sA line's size has a standard error of about sqrt(%s x size): "
			"+/-100 %% at %s, +/-10 %% at %s\n",
			label, rate, rate, ten);
	}
	free(exe);
}

void mt_json_snap(FILE *f, const mt_snap_t *s)
{
	fprintf(f, "\"file\":");
	mt_json_str(f, s->file);
	fprintf(f, ",\"format\":\"%u.%u\",\"pid\":%u,\"ppid\":%u,\"seq\":%u,\"reason\":", s->major,
		s->minor, s->pid, s->ppid, s->seq);
	mt_json_str(f, mt_reason_text(s->reason));
	fprintf(f,
		",\"wall_ns\":%" PRIu64 ",\"mono_ns\":%" PRIu64 ",\"start_mono_ns\":%" PRIu64
		",\"seconds\":%.6f,\"sampled\":%s,\"sample_bytes\":%" PRIu64
		",\"attach_wall_ns\":%" PRIu64 ",\"exe\":",
		s->wall_ns, s->mono_ns, s->start_mono_ns, mt_snap_seconds(s),
		s->sample_bytes ? "true" : "false", s->sample_bytes, s->attach_wall_ns);
	char *exe = mt_printable(s->exe);
	mt_json_str(f, exe);
	free(exe);
	fprintf(f, ",\"totals\":{");
	const uint64_t *tv = (const uint64_t *)&s->totals;
	size_t i = 0;
#define X(name) fprintf(f, "%s\"" #name "\":%" PRIu64, i ? "," : "", tv[i]), i++;
	MT_TOTALS(X)
#undef X
	fprintf(f, "}");
	fprintf(f, ",\"python\":");
	if (s->py_version)
		fprintf(f, "{\"version\":\"%u.%u\",\"census\":%s,\"census_hold_ns\":%" PRIu64 "}",
			s->py_version >> 8, s->py_version & 255,
			s->census == 1 ? "\"taken\"" : s->census == 2 ? "\"late\"" : "null",
			s->census_hold_ns);
	else
		fprintf(f, "null");
	if (s->has_alloc) {
		fprintf(f, ",\"allocator\":{\"name\":");
		mt_json_str(f, s->alloc.name);
		const uint64_t *av = (const uint64_t *)&s->alloc;
		i = 0;
#define X(name, text) fprintf(f, ",\"" #name "\":%" PRIu64, av[i]), i++;
		MT_ALLOC_STATS(X)
#undef X
		fprintf(f, "}");
	}
}


void mt_print_stat_line(const mt_stat_t *st, bool allocs)
{
	char size[32], avg[32];
	char *key = mt_stat_title(st);
	mt_format_size(size, sizeof(size), (double)st->size, false);
	printf("%s: size=%s, count=%" PRIu64, key, size, st->count);
	if (st->count) {
		mt_format_size(avg, sizeof(avg), (double)st->size / (double)st->count, false);
		printf(", average=%s", avg);
	}
	if (allocs) { /* --sort allocs: what the order is by */
		mt_format_size(size, sizeof(size), (double)st->alloc_bytes, false);
		printf(", allocs=%" PRIu64 " (%s in total)", st->allocs, size);
	}
	printf("\n");
	free(key);
	mt_print_trace(st);
}

void mt_print_trace(const mt_stat_t *st)
{
	for (size_t i = 0; i < st->ntrace; i++) {
		char *f = mt_printable(st->trace[i]);
		printf("    %s\n", f);
		free(f);
	}
}


void mt_json_group(FILE *f, const mt_stat_t *x)
{
	char *title = mt_stat_title(x);
	fprintf(f, "\"key\":");
	mt_json_str(f, title);
	free(title);
	fprintf(f, ",\"file\":");
	mt_json_str(f, x->where.file);
	fprintf(f, ",\"line\":%d,\"function\":", x->where.line);
	mt_json_str(f, x->where.func);
	fprintf(f, ",\"module\":");
	mt_json_str(f, x->where.module);
	fprintf(f, ",\"kind\":\"%s\"", mt_frame_kind_name(&x->where));
	if (x->ntrace) {
		fprintf(f, ",\"traceback\":");
		mt_json_strs(f, x->trace, x->ntrace);
	}
}

void mt_json_strs(FILE *f, char *const *v, size_t n)
{
	fputc('[', f);
	for (size_t j = 0; j < n; j++) {
		if (j)
			fputc(',', f);
		mt_json_str(f, v[j]);
	}
	fputc(']', f);
}

const char *mt_frame_kind_name(const mt_sframe_t *f)
{
	return f->python ? "python" : f->jit ? "jit" : "native";
}
