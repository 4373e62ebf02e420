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

#include "pyline.h"
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

static int vfail(struct ctx *c, const size_t *off, const char *fmt, va_list ap)
{
	int n = off ? snprintf(c->err, c->errlen, "%s: offset %zu: ", c->path, *off)
		    : snprintf(c->err, c->errlen, "%s: ", c->path);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	return -1;
}

/* The file itself is wrong (missing, a directory): no offset to name. */
static int fail_file(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail(struct ctx *c, size_t off, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(c, &off, fmt, ap);
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

const char *mt_scan_status_text(uint32_t status)
{
	switch (status) {
#define X(name, val, text) \
	case val: return text;
		MT_SCAN_STATUS(X)
#undef X
	}
	return NULL;
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
	if (end - at >= 16)
		s->attach_wall_ns = mt__get_u64(c->data + at + 8);
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

/* ---- Python: CODE records, interned frames, the stack as shown ---- */
struct code {
	uint32_t id;
	int32_t first;
	uint8_t kind;
	char *file, *name, *table;
	size_t tlen;
	size_t off; /* of its record, for messages */
};

static int parse_python(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	if (len < 24)
		return fail(c, at, "PYTHON record of %zu bytes is too short", len);
	s->py_version = mt__get_u32(c->data + at);
	s->py_eval_lo = mt__get_u64(c->data + at + 8);
	s->py_eval_hi = mt__get_u64(c->data + at + 16);
	if (s->py_eval_lo > s->py_eval_hi)
		return fail(c, at + 8, "PYTHON record's eval loop has an empty address range");
	return 0;
}

static int parse_code(struct ctx *c, struct code *k, size_t at, size_t len)
{
	size_t end = at + len;
	memset(k, 0, sizeof(*k));
	k->off = at;
	if (len < 12)
		return fail(c, at, "CODE record of %zu bytes is too short", len);
	k->id = mt__get_u32(c->data + at);
	k->first = (int32_t)mt__get_u32(c->data + at + 4);
	k->kind = c->data[at + 8];
	if (k->id == 0 || k->id > MT_FRAME_PY_CODE_MAX)
		return fail(c, at, "CODE record with id %u, outside 1..%u", k->id,
			    MT_FRAME_PY_CODE_MAX);
	if (k->kind < MT_PYLINE_LNOTAB || k->kind > MT_PYLINE_LOCATIONS)
		return fail(c, at + 8, "CODE record %u: unknown line-table kind %u", k->id,
			    k->kind);
	at += 12;
	if (get_str(c, &at, end, &k->file, NULL) || get_str(c, &at, end, &k->name, NULL) ||
	    get_str(c, &at, end, &k->table, &k->tlen))
		return -1;
	return 0;
}

static void free_codes(struct code *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].name);
		free(v[i].table);
	}
	free(v);
}

static int cmp_code(const void *a, const void *b)
{
	uint32_t x = ((const struct code *)a)->id, y = ((const struct code *)b)->id;
	return x < y ? -1 : x > y;
}

static const struct code *find_code(const struct code *v, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].id == id)
			return &v[mid];
		if (v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Every Python frame read, once: (file, function, line) -> id, for the
 * life of the process, so that ids agree across snapshots. */
static struct {
	mt_pyframe_t *v;
	size_t n, cap;
	uint32_t *slot; /* index + 1, open addressing */
	size_t nslot;
} pyf;

#define PYF_ID_MASK ((1ull << 61) - 1)

static uint64_t str_hash(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h * 0x100000001b3ull;
}

static uint64_t pyf_hash(const char *file, const char *func, int line)
{
	return str_hash(str_hash(0xcbf29ce484222325ull ^ (uint64_t)(unsigned)line, file), func);
}

static bool pyf_rehash(size_t nslot)
{
	uint32_t *slot = calloc(nslot, sizeof(*slot));
	if (!slot)
		return false;
	for (size_t i = 0; i < pyf.n; i++) {
		const mt_pyframe_t *f = &pyf.v[i];
		size_t j = pyf_hash(f->file, f->func, f->line) & (nslot - 1);
		while (slot[j])
			j = (j + 1) & (nslot - 1);
		slot[j] = (uint32_t)i + 1;
	}
	free(pyf.slot);
	pyf.slot = slot;
	pyf.nslot = nslot;
	return true;
}

/* The id of a Python frame; UINT64_MAX out of memory. */
static uint64_t pyf_intern(const char *file, const char *func, int line)
{
	if (pyf.n * 2 >= pyf.nslot && !pyf_rehash(pyf.nslot ? pyf.nslot * 2 : 1024))
		return UINT64_MAX;
	size_t j = pyf_hash(file, func, line) & (pyf.nslot - 1);
	for (; pyf.slot[j]; j = (j + 1) & (pyf.nslot - 1)) {
		const mt_pyframe_t *f = &pyf.v[pyf.slot[j] - 1];
		if (f->line == line && !strcmp(f->file, file) && !strcmp(f->func, func))
			return pyf.slot[j] - 1;
	}
	mt_pyframe_t *v = grow(pyf.v, &pyf.cap, pyf.n, sizeof(*v));
	char *fc = strdup(file), *nc = strdup(func);
	if (!v || !fc || !nc) {
		if (v)
			pyf.v = v;
		free(fc);
		free(nc);
		return UINT64_MAX;
	}
	pyf.v = v;
	v[pyf.n] = (mt_pyframe_t){fc, nc, line};
	pyf.slot[j] = (uint32_t)pyf.n + 1;
	return pyf.n++;
}

const mt_pyframe_t *mt_snap_pyframe(uint64_t frame)
{
	if (!mt_frame_is_py(frame) || (frame & PYF_ID_MASK) >= pyf.n)
		return NULL;
	return &pyf.v[frame & PYF_ID_MASK];
}

void mt_snap_use_native(mt_snap_t *s)
{
	for (size_t i = 0; i < s->nsites; i++) {
		s->sites[i].frames = s->sites[i].native;
		s->sites[i].nframes = s->sites[i].nnative;
		s->sites[i].py_first = -1;
	}
}

static bool in_libc(const mt_snap_t *s, uint64_t a)
{
	for (size_t i = 0; i < s->nmodules; i++)
		if (s->modules[i].lo <= a && a < s->modules[i].hi) {
			const char *b = strrchr(s->modules[i].path, '/');
			return strncmp(b ? b + 1 : s->modules[i].path, "libc.so", 7) == 0;
		}
	return false;
}

/*
 * One site's frames as shown (snapread.h), into out. The eval loop's
 * native frames and the Python frames' runs of the eval loop (a run ends
 * at an ENTRY frame) are paired from the innermost end, which holds when
 * either stack was cut at its depth. Without an eval-loop range to pair
 * with, the Python frames follow the native frames below the interpreter.
 */
static int show_site(struct ctx *c, const mt_snap_t *s, mt_snap_site_t *st, size_t off,
		     const struct code *codes, size_t ncodes, uint64_t *out)
{
	const uint64_t *fr = st->native;
	int n = st->nframes, nn = 0;
	while (nn < n && !mt_frame_is_py(fr[nn]))
		nn++;
	st->nnative = (uint8_t)nn;
	st->py_first = -1;
	uint64_t py[MT_MAX_FRAMES];
	bool ends[MT_MAX_FRAMES];
	int np = 0;
	for (int i = nn; i < n; i++) {
		if (!mt_frame_is_py(fr[i]))
			return fail(c, off, "site %u: native frame %d after its Python frames", st->id,
				    i);
		uint32_t id = mt_frame_py_code(fr[i]);
		const struct code *k = find_code(codes, ncodes, id);
		if (!k)
			return fail(c, off, "site %u: frame %d names code %u, which has no CODE record",
				    st->id, i, id);
		bool entry = (fr[i] & MT_FRAME_PY_ENTRY) != 0;
		if (fr[i] & MT_FRAME_PY_HIDDEN) {
			py[np] = UINT64_MAX; /* not shown; it counts for its run */
			ends[np++] = entry;
			continue;
		}
		int line = mt_pyline(k->kind, (const unsigned char *)k->table, k->tlen, k->first,
				     mt_frame_py_off(fr[i]));
		uint64_t key = pyf_intern(k->file, k->name, line < 0 ? 0 : line);
		if (key == UINT64_MAX)
			return fail(c, off, "out of memory");
		py[np] = MT_FRAME_PY | key;
		ends[np++] = entry;
	}
	int m = 0;
	if (np == 0) {
		memcpy(out, fr, (size_t)nn * sizeof(*out));
		st->frames = out;
		st->nframes = (uint8_t)nn;
		return 0;
	}
	/* the interpreter's module: the one holding its eval loop */
	uint64_t ilo = 0, ihi = 0;
	for (size_t i = 0; i < s->nmodules; i++)
		if (s->py_eval_lo && s->modules[i].lo <= s->py_eval_lo &&
		    s->py_eval_lo < s->modules[i].hi)
			ilo = s->modules[i].lo, ihi = s->modules[i].hi;
	int p = 0, evals = 0;
	bool seen = false, ext = false;
	for (int i = 0; i < nn; i++) {
		uint64_t a = fr[i];
		bool eval = s->py_eval_hi > s->py_eval_lo && a > s->py_eval_lo && a <= s->py_eval_hi;
		evals += eval;
		if (eval) {
			/* one run of Python frames: up to and with its ENTRY */
			for (; p < np; p++) {
				if (py[p] != UINT64_MAX) {
					if (st->py_first < 0)
						st->py_first = m;
					out[m++] = py[p];
				}
				if (ends[p]) {
					p++;
					break;
				}
			}
			seen = true;
			continue;
		}
		bool interp = a >= ilo && a < ihi;
		if ((seen || ext) && interp)
			continue; /* the interpreter's call machinery */
		ext = ext || (!interp && ilo && !in_libc(s, a)); /* C code the interpreter called */
		if (seen && p >= np && in_libc(s, a))
			continue; /* below the outermost Python frame: the C start-up */
		if (!evals && !s->py_eval_hi && interp)
			break; /* no range to pair with: the Python frames come here */
		out[m++] = a;
	}
	for (; p < np; p++)
		if (py[p] != UINT64_MAX) {
			if (st->py_first < 0)
				st->py_first = m;
			out[m++] = py[p];
		}
	st->frames = out;
	st->nframes = (uint8_t)m;
	return 0;
}

static int show_sites(struct ctx *c, mt_snap_t *s, struct code *codes, size_t ncodes,
		      const size_t *offs, size_t nframes)
{
	if (ncodes)
		qsort(codes, ncodes, sizeof(*codes), cmp_code);
	for (size_t i = 1; i < ncodes; i++)
		if (codes[i].id == codes[i - 1].id)
			return fail(c, codes[i].off, "a second CODE record for code %u",
				    codes[i].id);
	s->ncodes = ncodes;
	s->shown = malloc((nframes ? nframes : 1) * sizeof(*s->shown));
	if (!s->shown)
		return fail(c, 0, "out of memory");
	size_t at = 0;
	for (size_t i = 0; i < s->nsites; i++) {
		mt_snap_site_t *st = &s->sites[i];
		if (show_site(c, s, st, offs[i], codes, ncodes, s->shown + at))
			return -1;
		at += st->nframes;
	}
	return 0;
}

/* A LEAK record as read: its site is found once all SITEs are in. */
struct leak {
	size_t at;
	uint32_t id;
	uint64_t v[2 * MT_LEAK_NCLASS];
};

static int site_id_cmp(const void *a, const void *b)
{
	uint32_t x = ((const mt_snap_site_t *)a)->id, y = ((const mt_snap_site_t *)b)->id;
	return x < y ? -1 : x > y;
}

static int attach_leaks(struct ctx *c, mt_snap_t *s, const struct leak *l, size_t n)
{
	if (!n)
		return 0;
	if (s->scan_status != MT_SCAN_DONE)
		return fail(c, l[0].at, "LEAK record without a LEAKSCAN record that says done");
	/* the sites by id: a sorted index, the sites stay in file order */
	mt_snap_site_t *idx = malloc(s->nsites * sizeof(*idx) + 1);
	size_t *pos = malloc(s->nsites * sizeof(*pos) + 1);
	if (!idx || !pos) {
		free(idx);
		free(pos);
		return fail(c, l[0].at, "out of memory");
	}
	for (size_t i = 0; i < s->nsites; i++) {
		idx[i] = s->sites[i];
		idx[i].frames = (const uint64_t *)(uintptr_t)i; /* its place */
	}
	qsort(idx, s->nsites, sizeof(*idx), site_id_cmp);
	for (size_t i = 0; i < s->nsites; i++)
		pos[i] = (size_t)(uintptr_t)idx[i].frames;
	int rc = 0;
	for (size_t k = 0; k < n && !rc; k++) {
		size_t lo = 0, hi = s->nsites;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (idx[mid].id < l[k].id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == s->nsites || idx[lo].id != l[k].id) {
			rc = fail(c, l[k].at, "LEAK record names site %u, which has no SITE record",
				  l[k].id);
			break;
		}
		mt_snap_site_t *st = &s->sites[pos[lo]];
		if (st->has_leak) {
			rc = fail(c, l[k].at, "a second LEAK record for site %u", l[k].id);
			break;
		}
		st->has_leak = true;
		for (int j = 0; j < MT_LEAK_NCLASS; j++) {
			st->leak_bytes[j] = l[k].v[2 * j];
			st->leak_blocks[j] = l[k].v[2 * j + 1];
		}
	}
	free(idx);
	free(pos);
	return rc;
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

	size_t at = MT_FILE_HEADER_LEN, mcap = 0, scap = 0, fcap = 0, nframes = 0, ocap = 0;
	size_t ccap = 0, ncodes = 0, *offs = NULL, tcap = 0, lcap = 0, nleaks = 0;
	struct leak *leaks = NULL;
	struct code *codes = NULL;
	bool have_meta = false;
	int rc = -1;
	while (at < tail) {
		if (tail - at < MT_REC_HEADER_LEN) {
			fail(c, at, "record header runs into the END record");
			goto out;
		}
		uint16_t type = mt__get_u16(d + at);
		uint32_t len = mt__get_u32(d + at + 4);
		size_t body = at + MT_REC_HEADER_LEN;
		if (len > MT_REC_MAX || len > tail - body) {
			fail(c, at, "record of type %u claims %u bytes, past the end", type, len);
			goto out;
		}
		if (!have_meta && type != MT_REC_META) {
			fail(c, at, "the first record is type %u, not META", type);
			goto out;
		}
		switch (type) {
		case MT_REC_META:
			if (have_meta)
				{
				fail(c, at, "a second META record");
				goto out;
			}
			if (parse_meta(c, s, body, len))
				goto out;
			have_meta = true;
			break;
		case MT_REC_TOTALS:
			if (parse_totals(c, s, body, len))
				goto out;
			break;
		case MT_REC_ALLOC:
			if (parse_alloc(c, s, body, len))
				goto out;
			break;
		case MT_REC_MODULE: {
			mt_snap_module_t *m = grow(s->modules, &mcap, s->nmodules, sizeof(*m));
			if (!m)
				{
				fail(c, at, "out of memory");
				goto out;
			}
			s->modules = m;
			memset(&m[s->nmodules], 0, sizeof(*m));
			if (parse_module(c, &m[s->nmodules++], body, len))
				goto out;
			break;
		}
		case MT_REC_SITE: {
			mt_snap_site_t *st = grow(s->sites, &scap, s->nsites, sizeof(*st));
			if (!st)
				{
				fail(c, at, "out of memory");
				goto out;
			}
			s->sites = st;
			memset(&st[s->nsites], 0, sizeof(*st));
			if (parse_site(c, &st[s->nsites], body, len))
				goto out;
			size_t *o = grow(offs, &ocap, s->nsites, sizeof(*o));
			if (!o) {
				fail(c, at, "out of memory");
				goto out;
			}
			offs = o;
			offs[s->nsites] = at;
			size_t n = st[s->nsites].nframes;
			while (nframes + n > fcap) {
				size_t ncap = fcap ? fcap * 2 : 1024;
				uint64_t *f = realloc(s->frames, ncap * sizeof(*f));
				if (!f)
					{
				fail(c, at, "out of memory");
				goto out;
			}
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
		case MT_REC_CENSUS:
			if (len < 16) {
				fail(c, at, "CENSUS record of %u bytes is too short", len);
				goto out;
			}
			s->census = mt__get_u32(d + body);
			s->census_partial = mt__get_u32(d + body + 4) & 1;
			s->census_hold_ns = mt__get_u64(d + body + 8);
			if (s->census < 1 || s->census > 2) {
				fail(c, body, "CENSUS record with unknown status %u", s->census);
				goto out;
			}
			break;
		case MT_REC_OBJTYPE: {
			mt_snap_objtype_t *o = grow(s->objtypes, &tcap, s->nobjtypes, sizeof(*o));
			if (!o) {
				fail(c, at, "out of memory");
				goto out;
			}
			s->objtypes = o;
			if (len < 28) {
				fail(c, at, "OBJTYPE record of %u bytes is too short", len);
				goto out;
			}
			o = &s->objtypes[s->nobjtypes];
			o->site = mt__get_u32(d + body);
			o->count = mt__get_u64(d + body + 8);
			o->bytes = mt__get_u64(d + body + 16);
			size_t sat = body + 24;
			char *name = NULL;
			if (get_str(c, &sat, body + len, &name, NULL))
				goto out;
			o->name = name;
			s->nobjtypes++;
			break;
		}
		case MT_REC_LEAKSCAN: {
			if (len < MT_LEAKSCAN_FIXED_LEN + 4) {
				fail(c, at, "LEAKSCAN record of %u bytes is too short", len);
				goto out;
			}
			if (s->scan_status) {
				fail(c, at, "a second LEAKSCAN record");
				goto out;
			}
			s->scan_status = mt__get_u32(d + body);
			s->scan_threads = mt__get_u32(d + body + 4);
			s->scan_no_sp = mt__get_u32(d + body + 8);
			s->scan_ns = mt__get_u64(d + body + 16);
			s->scan_blocks = mt__get_u64(d + body + 24);
			s->scan_root_bytes = mt__get_u64(d + body + 32);
			if (!mt_scan_status_text(s->scan_status)) {
				fail(c, body, "LEAKSCAN record with unknown status %u", s->scan_status);
				goto out;
			}
			size_t sat = body + MT_LEAKSCAN_FIXED_LEN;
			if (get_str(c, &sat, body + len, &s->scan_note, NULL))
				goto out;
			break;
		}
		case MT_REC_LEAK: {
			if (len < MT_LEAK_LEN) {
				fail(c, at, "LEAK record of %u bytes is too short", len);
				goto out;
			}
			struct leak *l = grow(leaks, &lcap, nleaks, sizeof(*l));
			if (!l) {
				fail(c, at, "out of memory");
				goto out;
			}
			leaks = l;
			l = &leaks[nleaks++];
			l->at = at;
			l->id = mt__get_u32(d + body);
			for (int k = 0; k < 2 * MT_LEAK_NCLASS; k++)
				l->v[k] = mt__get_u64(d + body + 8 + 8 * (size_t)k);
			break;
		}
		case MT_REC_PYTHON:
			if (parse_python(c, s, body, len))
				goto out;
			break;
		case MT_REC_CODE: {
			struct code *k = grow(codes, &ccap, ncodes, sizeof(*k));
			if (!k) {
				fail(c, at, "out of memory");
				goto out;
			}
			codes = k;
			if (parse_code(c, &codes[ncodes], body, len)) {
				free(codes[ncodes].file);
				free(codes[ncodes].name);
				free(codes[ncodes].table);
				goto out;
			}
			ncodes++;
			break;
		}
		default: break; /* a later minor version's record: skipped */
		}
		at = body + len;
	}
	if (!have_meta) {
		fail(c, at, "no META record");
		goto out;
	}
	/* no frame at all: no array (and no arithmetic on a null pointer) */
	static const uint64_t none[1];
	for (size_t i = 0; i < s->nsites; i++)
		s->sites[i].native = s->sites[i].frames =
			s->frames ? s->frames + (uintptr_t)s->sites[i].frames : none;
	if (attach_leaks(c, s, leaks, nleaks))
		goto out;
	if (!s->scan_note && !(s->scan_note = strdup(""))) {
		fail(c, at, "out of memory");
		goto out;
	}
	rc = show_sites(c, s, codes, ncodes, offs, nframes);
out:
	free_codes(codes, ncodes);
	free(offs);
	free(leaks);
	return rc;
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
		return fail_file(&c, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		fail_file(&c, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail_file(&c, "%s, not a snapshot file",
			  S_ISDIR(st.st_mode)	 ? "a directory"
			  : S_ISFIFO(st.st_mode) ? "a pipe"
			  : S_ISCHR(st.st_mode)	 ? "a device"
						 : "not a regular file");
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
	free(s->shown);
	for (size_t i = 0; i < s->nobjtypes; i++)
		free((char *)s->objtypes[i].name);
	free(s->objtypes);
	free(s->scan_note);
	free(s->exe);
	free(s->cmdline);
	free(s->file);
	memset(s, 0, sizeof(*s));
}
