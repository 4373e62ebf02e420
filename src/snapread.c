/* SPDX-License-Identifier: MIT */
/*
 * snapread.c - the snapshot reader. The whole file is read (it must be a
 * regular file: FIFOs and devices are refused before any read), its END
 * record and checksum are verified first, then records are parsed with every
 * length checked against what remains. Arrays grow with what is actually
 * read, never from counts in the file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapread.h"

#define MAX_FILE ((uint64_t)4 << 30)
#ifndef MT_FUZZING
#define MT_FUZZING 0
#endif

struct ctx {
	const char *path;
	const unsigned char *data;
	size_t size;
	char *err;
	size_t errlen;
};

static int fail(struct ctx *c, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, c->errlen, "%s: offset %zu: ", c->path, off);
	if (n < 0 || (size_t)n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

const char *mt_reason_text(uint32_t reason)
{
	switch (reason) {
#define X(name, val, text) \
	case val: return text;
		MT_REASONS(X)
#undef X
	}
	return "for an unknown reason";
}

static void *grow(void *p, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return p;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *q = realloc(p, ncap * elem);
	if (!q)
		return NULL;
	*cap = ncap;
	return q;
}

static char *dup_str(const unsigned char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* A length-prefixed string at *at within a record ending at end. */
static int get_str(struct ctx *c, size_t *at, size_t end, char **out, size_t *len)
{
	if (end - *at < 4)
		return fail(c, *at, "record too short for a string length");
	uint32_t n = mt__get_u32(c->data + *at);
	if (n > end - *at - 4)
		return fail(c, *at, "string of %u bytes runs past its record", n);
	*out = dup_str(c->data + *at + 4, n);
	if (!*out)
		return fail(c, *at, "out of memory");
	if (len)
		*len = n;
	*at += 4 + n;
	return 0;
}

static int parse_meta(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	size_t end = at + len;
	if (len < 4 * 4 + 8 * 4 + 4 * 2)
		return fail(c, at, "META record of %zu bytes is too short", len);
	const unsigned char *p = c->data + at;
	s->pid = mt__get_u32(p);
	s->ppid = mt__get_u32(p + 4);
	s->seq = mt__get_u32(p + 8);
	s->reason = mt__get_u32(p + 12);
	s->wall_ns = mt__get_u64(p + 16);
	s->mono_ns = mt__get_u64(p + 24);
	s->start_wall_ns = mt__get_u64(p + 32);
	s->start_mono_ns = mt__get_u64(p + 40);
	s->depth = mt__get_u32(p + 48);
	s->page_size = mt__get_u32(p + 52);
	at += 56;
	if (get_str(c, &at, end, &s->exe, NULL) ||
	    get_str(c, &at, end, &s->cmdline, &s->cmdline_len))
		return -1;
	if (end - at >= 8)
		s->sample_bytes = mt__get_u64(c->data + at);
	return 0;
}

static int parse_totals(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	if (len < 4)
		return fail(c, at, "TOTALS record too short");
	uint32_t n = mt__get_u32(c->data + at);
	if ((uint64_t)n * 8 != len - 4)
		return fail(c, at, "TOTALS record holds %zu bytes for %u counters", len - 4, n);
	uint64_t *dst = (uint64_t *)&s->totals;
	for (uint32_t i = 0; i < n && i < MT_TOTALS_N; i++)
		dst[i] = mt__get_u64(c->data + at + 4 + 8 * i);
	return 0;
}

static int parse_alloc(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	size_t end = at + len;
	if (len < 4)
		return fail(c, at, "ALLOC record too short");
	uint32_t n = mt__get_u32(c->data + at);
	if ((uint64_t)n * 8 > len - 4)
		return fail(c, at, "ALLOC record holds %zu bytes for %u figures", len - 4, n);
	uint64_t *dst = (uint64_t *)&s->alloc;
	for (uint32_t i = 0; i < n && i < MT_ALLOC_STATS_N; i++)
		dst[i] = mt__get_u64(c->data + at + 4 + 8 * i);
	at += 4 + 8 * (size_t)n;
	char *name = NULL;
	size_t nlen = 0;
	if (get_str(c, &at, end, &name, &nlen))
		return -1;
	snprintf(s->alloc.name, sizeof(s->alloc.name), "%s", name);
	free(name);
	s->has_alloc = true;
	return 0;
}

static int parse_module(struct ctx *c, mt_snap_module_t *m, size_t at, size_t len)
{
	size_t end = at + len;
	if (len < 8 * 3 + 4)
		return fail(c, at, "MODULE record too short");
	const unsigned char *p = c->data + at;
	m->bias = mt__get_u64(p);
	m->lo = mt__get_u64(p + 8);
	m->hi = mt__get_u64(p + 16);
	m->build_id_len = mt__get_u32(p + 24);
	at += 28;
	if (m->build_id_len > MT_MAX_BUILD_ID || m->build_id_len > end - at)
		return fail(c, at - 4, "build id of %u bytes is longer than %d or its record",
			    m->build_id_len, MT_MAX_BUILD_ID);
	memcpy(m->build_id, c->data + at, m->build_id_len);
	at += m->build_id_len;
	if (get_str(c, &at, end, &m->path, NULL))
		return -1;
	if (m->lo > m->hi)
		return fail(c, at, "module %s has an empty address range", m->path);
	return 0;
}

static int parse_site(struct ctx *c, mt_snap_site_t *st, size_t at, size_t len)
{
	if (len < MT_SITE_FIXED_LEN)
		return fail(c, at, "SITE record too short");
	const unsigned char *p = c->data + at;
	st->id = mt__get_u32(p);
	st->domain = p[4];
	st->nframes = p[5];
	if (st->domain >= MT_DOMAIN_COUNT)
		return fail(c, at + 4, "unknown domain %u", st->domain);
	if (st->nframes > MT_MAX_FRAMES)
		return fail(c, at + 5, "%u frames, more than %d", st->nframes, MT_MAX_FRAMES);
	if (len != MT_SITE_FIXED_LEN + 8 * (size_t)st->nframes)
		return fail(c, at, "SITE record of %zu bytes for %u frames", len, st->nframes);
	st->live_bytes = mt__get_u64(p + 8);
	st->live_count = mt__get_u64(p + 16);
	st->alloc_count = mt__get_u64(p + 24);
	st->alloc_bytes = mt__get_u64(p + 32);
	st->peak_bytes = mt__get_u64(p + 40);
	st->frames = NULL;
	return 0;
}

static int parse(struct ctx *c, mt_snap_t *s)
{
	const unsigned char *d = c->data;
	size_t size = c->size;

	if (size < MT_MAGIC_LEN && memcmp(d, MT_MAGIC, size) == 0)
		return fail(c, size, "truncated: %zu bytes, shorter than the file header", size);
	if (size < MT_MAGIC_LEN || memcmp(d, MT_MAGIC, MT_MAGIC_LEN) != 0)
		return fail(c, 0, "not a memtrace snapshot (bad magic)");
	if (size < MT_FILE_HEADER_LEN)
		return fail(c, size, "truncated: %zu bytes, shorter than the file header", size);
	s->major = mt__get_u16(d + 8);
	s->minor = mt__get_u16(d + 10);
	if (s->major != MT_FORMAT_MAJOR)
		return fail(c, 8, "written by format v%u.%u, this reader reads v%d.0..v%d.x",
			    s->major, s->minor, MT_FORMAT_MAJOR, MT_FORMAT_MAJOR);

	size_t end_rec = MT_REC_HEADER_LEN + MT_END_PAYLOAD_LEN;
	if (size < MT_FILE_HEADER_LEN + end_rec)
		return fail(c, size, "truncated: no END record (file is %zu bytes)", size);
	size_t tail = size - end_rec;
	const unsigned char *e = d + tail;
	if (mt__get_u16(e) != MT_REC_END || mt__get_u32(e + 4) != MT_END_PAYLOAD_LEN ||
	    mt__get_u32(e + 20) != MT_END_MAGIC || mt__get_u64(e + 8) != size)
		return fail(
			c, tail,
			"truncated or unfinished: the file does not end with a valid END record");
	uint32_t crc = mt__crc32(0, d, size - 8);
	/* the fuzzer skips the checksum, so that its mutations reach the parser */
	if (!MT_FUZZING && crc != mt__get_u32(e + 16))
		return fail(c, size - 8,
			    "checksum mismatch (crc32 %08x, file says %08x): the file is corrupt",
			    crc, mt__get_u32(e + 16));

	size_t at = MT_FILE_HEADER_LEN, mcap = 0, scap = 0, fcap = 0, nframes = 0;
	bool have_meta = false;
	while (at < tail) {
		if (tail - at < MT_REC_HEADER_LEN)
			return fail(c, at, "record header runs into the END record");
		uint16_t type = mt__get_u16(d + at);
		uint32_t len = mt__get_u32(d + at + 4);
		size_t body = at + MT_REC_HEADER_LEN;
		if (len > MT_REC_MAX || len > tail - body)
			return fail(c, at, "record of type %u claims %u bytes, past the end", type,
				    len);
		if (!have_meta && type != MT_REC_META)
			return fail(c, at, "the first record is type %u, not META", type);
		switch (type) {
		case MT_REC_META:
			if (have_meta)
				return fail(c, at, "a second META record");
			if (parse_meta(c, s, body, len))
				return -1;
			have_meta = true;
			break;
		case MT_REC_TOTALS:
			if (parse_totals(c, s, body, len))
				return -1;
			break;
		case MT_REC_ALLOC:
			if (parse_alloc(c, s, body, len))
				return -1;
			break;
		case MT_REC_MODULE: {
			mt_snap_module_t *m = grow(s->modules, &mcap, s->nmodules, sizeof(*m));
			if (!m)
				return fail(c, at, "out of memory");
			s->modules = m;
			memset(&m[s->nmodules], 0, sizeof(*m));
			if (parse_module(c, &m[s->nmodules++], body, len))
				return -1;
			break;
		}
		case MT_REC_SITE: {
			mt_snap_site_t *st = grow(s->sites, &scap, s->nsites, sizeof(*st));
			if (!st)
				return fail(c, at, "out of memory");
			s->sites = st;
			if (parse_site(c, &st[s->nsites], body, len))
				return -1;
			size_t n = st[s->nsites].nframes;
			while (nframes + n > fcap) {
				size_t ncap = fcap ? fcap * 2 : 1024;
				uint64_t *f = realloc(s->frames, ncap * sizeof(*f));
				if (!f)
					return fail(c, at, "out of memory");
				s->frames = f;
				fcap = ncap;
			}
			for (size_t i = 0; i < n; i++)
				s->frames[nframes + i] =
					mt__get_u64(d + body + MT_SITE_FIXED_LEN + 8 * i);
			/* frames are linked after the loop: the array may still move */
			st[s->nsites].frames = (const uint64_t *)(uintptr_t)nframes;
			nframes += n;
			s->nsites++;
			break;
		}
		default: break; /* a later minor version's record: skipped */
		}
		at = body + len;
	}
	if (!have_meta)
		return fail(c, at, "no META record");
	/* no frame at all: no array (and no arithmetic on a null pointer) */
	static const uint64_t none[1];
	for (size_t i = 0; i < s->nsites; i++)
		s->sites[i].frames = s->frames ? s->frames + (uintptr_t)s->sites[i].frames : none;
	return 0;
}

static int read_all(struct ctx *c, int fd, size_t size, unsigned char *buf)
{
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(c, got, "read error: %s", strerror(errno));
		if (n == 0)
			return fail(c, got, "file shrank while being read");
		got += (size_t)n;
	}
	return 0;
}

int mt_snap_load(const char *path, mt_snap_t *s, char *err, size_t errlen)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen};
	struct stat st;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fail(&c, 0, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		fail(&c, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(&c, 0, "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > MAX_FILE) {
		fail(&c, 0, "%lld bytes is larger than a snapshot can be", (long long)st.st_size);
		goto out;
	}
	if (st.st_size == 0) {
		fail(&c, 0, "empty file");
		goto out;
	}
	c.size = (size_t)st.st_size;
	unsigned char *buf = malloc(c.size);
	if (!buf) {
		fail(&c, 0, "out of memory for %zu bytes", c.size);
		goto out;
	}
	c.data = buf;
	if (read_all(&c, fd, c.size, buf) == 0 && parse(&c, s) == 0) {
		s->file = strdup(path);
		rc = s->file ? 0 : fail(&c, 0, "out of memory");
	}
	free(buf);
	if (rc != 0)
		mt_snap_free(s);
out:
	close(fd);
	return rc;
}

int mt_snap_parse(const void *data, size_t size, const char *name, mt_snap_t *s, char *err,
		  size_t errlen)
{
	struct ctx c = {.path = name, .err = err, .errlen = errlen, .data = data, .size = size};
	memset(s, 0, sizeof(*s));
	if (size == 0)
		return fail(&c, 0, "empty file");
	if (parse(&c, s) != 0 || !(s->file = strdup(name))) {
		mt_snap_free(s);
		return -1;
	}
	return 0;
}

void mt_snap_free(mt_snap_t *s)
{
	for (size_t i = 0; i < s->nmodules; i++)
		free(s->modules[i].path);
	free(s->modules);
	free(s->sites);
	free(s->frames);
	free(s->exe);
	free(s->cmdline);
	free(s->file);
	memset(s, 0, sizeof(*s));
}
