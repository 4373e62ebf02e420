/* SPDX-License-Identifier: MIT */
/*
 * cmd-dump.c - memtrace dump: a snapshot's records as they are in the file,
 * one JSON object a line, and with --spec the format itself. Both come from
 * the record lists of src/format.h and nothing else: a field added there is
 * dumped and described here with no change to this file.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A str field as a JSON string, every byte kept (a NUL as \u0000). */
static void json_bytes(FILE *f, const mt_str_t *s)
{
	fputc('"', f);
	for (uint32_t i = 0; i < s->len; i++) {
		unsigned char c = (unsigned char)s->p[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A record's fields as JSON members (",\"name\":value" each). */
static void json_record(FILE *f, const mt_rec_desc_t *d, const void *rec)
{
	for (const mt_field_t *fl = d->fields; fl < d->fields + d->nfields; fl++) {
		const void *v = mt_rec_field(rec, fl);
		fprintf(f, ",\"%s\":", fl->name);
		switch (fl->kind) {
		case MT_F_u8: fprintf(f, "%u", *(const uint8_t *)v); break;
		case MT_F_u32: fprintf(f, "%" PRIu32, *(const uint32_t *)v); break;
		case MT_F_i32: fprintf(f, "%" PRId32, *(const int32_t *)v); break;
		case MT_F_u64: fprintf(f, "%" PRIu64, *(const uint64_t *)v); break;
		case MT_F_str: json_bytes(f, v); break;
		case MT_F_bin: {
			const mt_str_t *s = v;
			fputc('"', f);
			for (uint32_t i = 0; i < s->len; i++)
				fprintf(f, "%02x", (unsigned char)s->p[i]);
			fputc('"', f);
			break;
		}
		case MT_F_u64s: {
			const mt_u64s_t *a = v;
			fputc('[', f);
			for (uint32_t i = 0; i < a->n; i++)
				fprintf(f, "%s%" PRIu64, i ? "," : "", mt_u64s_at(a, i));
			fputc(']', f);
			break;
		}
		}
	}
}

static void dump_record(void *arg, size_t off, uint16_t type, const mt_rec_desc_t *d,
			const void *rec, uint32_t len)
{
	FILE *f = arg;
	if (type == MT_REC_END)
		fprintf(f, "{\"record\":\"END\",\"offset\":%zu,\"len\":%" PRIu32 "}\n", off, len);
	else if (!d)
		fprintf(f, "{\"record\":%u,\"offset\":%zu,\"len\":%" PRIu32 ",\"known\":false}\n",
			type, off, len);
	else {
		fprintf(f, "{\"record\":\"%s\",\"offset\":%zu,\"len\":%" PRIu32, d->name, off, len);
		json_record(f, d, rec);
		fputs("}\n", f);
	}
}

/* text from column at on, words wrapped at 100 columns, continued at col */
static void wrapped(FILE *f, const char *text, int at, int col)
{
	bool first = true;
	while (*text) {
		int n = (int)strcspn(text, " ");
		if (!first && at + 1 + n > 100) {
			fprintf(f, "\n%*s", col, "");
			at = col;
		} else if (!first) {
			fputc(' ', f);
			at++;
		}
		first = false;
		fprintf(f, "%.*s", n, text);
		at += n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

static const char *const kind_names[] = {
#define X(kind, fixed) #kind,
	MT_FIELD_KINDS(X)
#undef X
};

/* The values a u64s field holds, by the list that names them. */
static void spec_values(FILE *f, const mt_rec_desc_t *d, const mt_field_t *fl)
{
	char buf[1024] = "", *sep = "";
	size_t n = 0;
#define ADD(name) n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", sep, name), sep = ", "
	if (d->type == MT_REC_TOTALS) {
#define X(name) ADD(#name);
		MT_TOTALS(X)
#undef X
	} else if (d->type == MT_REC_SITE && !strcmp(fl->name, "counters")) {
#define X(name) ADD(#name);
		MT_SITE_COUNTERS(X)
#undef X
	} else if (d->type == MT_REC_ALLOC) {
#define X(name, text) ADD(#name);
		MT_ALLOC_STATS(X)
#undef X
	} else if (d->type == MT_REC_LEAK) {
#define X(up, name, text, head) ADD(#name);
		MT_LEAK_CLASSES(X)
#undef X
	} else {
		ADD("frame words: bit 63 clear, a native return address; set, an interpreter "
		    "frame of the kind in bits 59-62 (0: Python)");
	}
#undef ADD
	fprintf(f, "%31s", "");
	wrapped(f, buf, 31, 31);
}

/* The format's records and fields, from format.h's lists. */
static void print_format_spec(FILE *f)
{
	fprintf(f, "memtrace snapshot format %d.%d (src/format.h)\n", MT_FORMAT_MAJOR,
		MT_FORMAT_MINOR);
	for (size_t i = 0; i < mt_rec_ndescs; i++) {
		const mt_rec_desc_t *d = &mt_rec_descs[i];
		int at = fprintf(f, "\n%s (%u): ", d->name, d->type) - 1;
		wrapped(f, d->what, at, 0);
		for (const mt_field_t *fl = d->fields; fl < d->fields + d->nfields; fl++) {
			char since[16] = "";
			if (fl->minor)
				snprintf(since, sizeof(since), " (since %d.%u)", MT_FORMAT_MAJOR,
					 fl->minor);
			char what[512];
			snprintf(what, sizeof(what), "%s%s", fl->what, since);
			fprintf(f, "%-8s%-6s%-17s", "", kind_names[fl->kind], fl->name);
			wrapped(f, what, 31, 31);
			if (fl->kind == MT_F_u64s)
				spec_values(f, d, fl);
		}
	}
}

static const char usage[] = "usage: memtrace dump SNAP\n"
			    "       memtrace dump --spec\n"
			    "\n"
			    "Prints every record of a snapshot as it is in the file, one JSON object\n"
			    "a line (record, offset, len, then its fields as src/format.h names\n"
			    "them; bin fields in hex, u64s as arrays of numbers); --spec prints the\n"
			    "format's records and fields instead.\n";

int mt_cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {{"spec", no_argument, NULL, 's'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	bool spec = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 's')
			spec = true;
		else if (c == 'h') {
			fputs(usage, stdout);
			return MT_EXIT_OK;
		} else
			mt_die_usage("dump", "unknown option");
	}
	if (spec) {
		if (optind != argc)
			mt_die_usage("dump", "--spec takes no snapshot");
		print_format_spec(stdout);
		return MT_EXIT_OK;
	}
	if (argc - optind != 1)
		mt_die_usage("dump", "one snapshot expected");
	char err[512];
	if (mt_snap_each_record(argv[optind], dump_record, stdout, err, sizeof(err))) {
		char *shown = mt_printable(err);
		fprintf(stderr, "memtrace: %s\n", shown ? shown : err);
		free(shown);
		return MT_EXIT_INPUT;
	}
	return fflush(stdout) == 0 ? MT_EXIT_OK : MT_EXIT_INPUT;
}
