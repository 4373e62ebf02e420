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

/* A record's fields into rec, as format.h lists them; a message naming
 * the record, the field and the offset when the record does not hold them. */
static int get_rec(struct ctx *c, uint16_t type, size_t at, size_t len, void *rec)
{
	const mt_rec_desc_t *d = mt_rec_desc(type);
	const mt_field_t *f;
	const char *why;
	size_t off;
	if (mt_rec_get(d, c->data + at, len, rec, &off, &f, &why) == 0)
		return 0;
	return fail(c, at + off, "%s record of %zu bytes: its %s field %s", d->name, len, f->name,
		    why);
}

static char *dup_field(struct ctx *c, size_t at, const mt_str_t *v)
{
	char *s = dup_str((const unsigned char *)v->p, v->len);
	if (!s)
		fail(c, at, "out of memory");
	return s;
}

/* The values of a u64s field into dst (n of them): those the file holds,
 * 0 for the rest; a later minor's extra values are left. */
static void take_u64s(const mt_u64s_t *a, uint64_t *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = i < a->n ? mt_u64s_at(a, (uint32_t)i) : 0;
}

static int parse_meta(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	mt_rec_meta_t m;
	if (get_rec(c, MT_REC_META, at, len, &m))
		return -1;
	s->pid = m.pid;
	s->ppid = m.ppid;
	s->seq = m.seq;
	s->reason = m.reason;
	s->wall_ns = m.wall_ns;
	s->mono_ns = m.mono_ns;
	s->start_wall_ns = m.start_wall_ns;
	s->start_mono_ns = m.start_mono_ns;
	s->depth = m.depth;
	s->page_size = m.page_size;
	s->sample_bytes = m.sample_mean;
	s->attach_wall_ns = m.attach_wall_ns;
	s->cmdline_len = m.cmdline.len;
	if (!(s->exe = dup_field(c, at, &m.exe)) || !(s->cmdline = dup_field(c, at, &m.cmdline)))
		return -1;
	return 0;
}

static int parse_totals(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	mt_rec_totals_t t;
	if (get_rec(c, MT_REC_TOTALS, at, len, &t))
		return -1;
	take_u64s(&t.counters, (uint64_t *)&s->totals, MT_TOTALS_N);
	return 0;
}

static int parse_alloc(struct ctx *c, mt_snap_t *s, size_t at, size_t len)
{
	mt_rec_alloc_t a;
	if (get_rec(c, MT_REC_ALLOC, at, len, &a))
		return -1;
	take_u64s(&a.figures, (uint64_t *)&s->alloc, MT_ALLOC_STATS_N);
	snprintf(s->alloc.name, sizeof(s->alloc.name), "%.*s", (int)a.allocator.len,
		 a.allocator.p);
	s->has_alloc = true;
	return 0;
}

static int parse_module(struct ctx *c, mt_snap_module_t *m, size_t at, size_t len)
{
	mt_rec_module_t r;
	if (get_rec(c, MT_REC_MODULE, at, len, &r))
		return -1;
	m->bias = r.bias;
	m->lo = r.lo;
	m->hi = r.hi;
	if (r.build_id.len > MT_MAX_BUILD_ID)
		return fail(c, at + 24, "build id of %u bytes is longer than %d", r.build_id.len,
			    MT_MAX_BUILD_ID);
	m->build_id_len = r.build_id.len;
	memcpy(m->build_id, r.build_id.p, r.build_id.len);
	if (!(m->path = dup_field(c, at, &r.path)))
		return -1;
	if (m->lo > m->hi)
		return fail(c, at, "module %s has an empty address range", m->path);
	return 0;
}

/* Where a site's counters go: MT_SITE_COUNTERS order. */
static const size_t site_counter_off[] = {
#define X(name) offsetof(mt_snap_site_t, name),
	MT_SITE_COUNTERS(X)
#undef X
};

/* A SITE's fields into st; its frames (in the file's bytes) into *frames. */
static int parse_site(struct ctx *c, mt_snap_site_t *st, size_t at, size_t len,
		      mt_u64s_t *frames)
{
	mt_rec_site_t r;
	if (get_rec(c, MT_REC_SITE, at, len, &r))
		return -1;
	st->id = r.id;
	st->domain = r.domain;
	if (st->domain >= MT_DOMAIN_COUNT)
		return fail(c, at + 4, "unknown domain %u", st->domain);
	if (r.frames.n > MT_MAX_FRAMES)
		return fail(c, at, "site %u has %u frames, more than %d", st->id, r.frames.n,
			    MT_MAX_FRAMES);
	for (size_t i = 0; i < MT_SITE_NCOUNTERS; i++)
		*(uint64_t *)((char *)st + site_counter_off[i]) =
			i < r.counters.n ? mt_u64s_at(&r.counters, (uint32_t)i) : 0;
	st->nframes = (uint8_t)r.frames.n;
	st->frames = NULL;
	*frames = r.frames;
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
	mt_rec_python_t r;
	if (get_rec(c, MT_REC_PYTHON, at, len, &r))
		return -1;
	s->py_version = r.version;
	s->py_eval_lo = r.eval_lo;
	s->py_eval_hi = r.eval_hi;
	if (s->py_eval_lo > s->py_eval_hi)
		return fail(c, at + 4, "PYTHON record's eval loop has an empty address range");
	return 0;
}

static int parse_code(struct ctx *c, struct code *k, size_t at, size_t len)
{
	mt_rec_code_t r;
	memset(k, 0, sizeof(*k));
	k->off = at;
	if (get_rec(c, MT_REC_CODE, at, len, &r))
		return -1;
	k->id = r.id;
	k->first = r.first_line;
	k->kind = r.line_kind;
	if (k->id == 0 || k->id > MT_FRAME_PY_CODE_MAX)
		return fail(c, at, "CODE record with id %u, outside 1..%u", k->id,
			    MT_FRAME_PY_CODE_MAX);
	if (k->kind < MT_PYLINE_LNOTAB || k->kind > MT_PYLINE_LOCATIONS)
		return fail(c, at + 8, "CODE record %u: unknown line-table kind %u", k->id,
			    k->kind);
	if (!(k->file = dup_field(c, at, &r.file)) || !(k->name = dup_field(c, at, &r.function)) ||
	    !(k->table = dup_field(c, at, &r.line_table)))
		return -1;
	k->tlen = r.line_table.len;
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
	while (nn < n && !mt_frame_is_tagged(fr[nn]))
		nn++;
	st->nnative = (uint8_t)nn;
	st->py_first = -1;
	uint64_t py[MT_MAX_FRAMES];
	bool ends[MT_MAX_FRAMES];
	int np = 0;
	for (int i = nn; i < n; i++) {
		if (!mt_frame_is_tagged(fr[i]))
			return fail(c, off, "site %u: native frame %d after its interpreter frames",
				    st->id, i);
		if (!mt_frame_is_py(fr[i]))
			continue; /* a kind a later minor added: left out */
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
	if (s->major == 1 && MT_FORMAT_MAJOR == 2)
		return fail(c, 8,
			    "written by format v%u.%u (memtrace before 2026-12-07), this reader "
			    "reads v2.x: take the snapshot again with this memtrace, or read it "
			    "with the memtrace that wrote it",
			    s->major, s->minor);
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
			if (have_meta) {
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
			if (!m) {
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
			if (!st) {
				fail(c, at, "out of memory");
				goto out;
			}
			s->sites = st;
			memset(&st[s->nsites], 0, sizeof(*st));
			mt_u64s_t fr = {0};
			if (parse_site(c, &st[s->nsites], body, len, &fr))
				goto out;
			size_t *o = grow(offs, &ocap, s->nsites, sizeof(*o));
			if (!o) {
				fail(c, at, "out of memory");
				goto out;
			}
			offs = o;
			offs[s->nsites] = at;
			while (nframes + fr.n > fcap) {
				size_t ncap = fcap ? fcap * 2 : 1024;
				uint64_t *f = realloc(s->frames, ncap * sizeof(*f));
				if (!f) {
					fail(c, at, "out of memory");
					goto out;
				}
				s->frames = f;
				fcap = ncap;
			}
			if (fr.n) /* none: maybe no array yet */
				take_u64s(&fr, s->frames + nframes, fr.n);
			/* frames are linked after the loop: the array may still move */
			st[s->nsites].frames = (const uint64_t *)(uintptr_t)nframes;
			nframes += fr.n;
			s->nsites++;
			break;
		}
		case MT_REC_CENSUS: {
			mt_rec_census_t r;
			if (get_rec(c, type, body, len, &r))
				goto out;
			s->census = r.status;
			s->census_partial = r.flags & 1;
			s->census_hold_ns = r.hold_ns;
			if (s->census < 1 || s->census > 2) {
				fail(c, body, "CENSUS record with unknown status %u", s->census);
				goto out;
			}
			break;
		}
		case MT_REC_OBJTYPE: {
			mt_snap_objtype_t *o = grow(s->objtypes, &tcap, s->nobjtypes, sizeof(*o));
			if (!o) {
				fail(c, at, "out of memory");
				goto out;
			}
			s->objtypes = o;
			mt_rec_objtype_t r;
			if (get_rec(c, type, body, len, &r))
				goto out;
			o = &s->objtypes[s->nobjtypes];
			o->site = r.site;
			o->count = r.objects;
			o->bytes = r.bytes;
			if (!(o->name = dup_field(c, body, &r.type)))
				goto out;
			s->nobjtypes++;
			break;
		}
		case MT_REC_LEAKSCAN: {
			mt_rec_leakscan_t r;
			if (get_rec(c, type, body, len, &r))
				goto out;
			if (s->scan_status) {
				fail(c, at, "a second LEAKSCAN record");
				goto out;
			}
			s->scan_status = r.status;
			s->scan_threads = r.threads;
			s->scan_no_sp = r.threads_no_sp;
			s->scan_ns = r.ns;
			s->scan_blocks = r.blocks;
			s->scan_root_bytes = r.root_bytes;
			if (!mt_scan_status_text(s->scan_status)) {
				fail(c, body, "LEAKSCAN record with unknown status %u", s->scan_status);
				goto out;
			}
			if (!(s->scan_note = dup_field(c, body, &r.note)))
				goto out;
			break;
		}
		case MT_REC_LEAK: {
			mt_rec_leak_t r;
			if (get_rec(c, type, body, len, &r))
				goto out;
			if (r.classes.n < 2 * MT_LEAK_NCLASS) {
				fail(c, body + 4, "LEAK record of site %u holds %u values for %d classes",
				     r.site, r.classes.n, MT_LEAK_NCLASS);
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
			l->id = r.site;
			take_u64s(&r.classes, l->v, 2 * MT_LEAK_NCLASS);
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

/* The whole file into a buffer of c->size bytes at c->data (the caller
 * frees it): a regular file, not empty, not larger than a snapshot can be. */
static int load_file(struct ctx *c, const char *path)
{
	struct stat st;
	int rc = -1;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fail_file(c, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) != 0) {
		fail_file(c, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail_file(c, "%s, not a snapshot file",
			  S_ISDIR(st.st_mode)	 ? "a directory"
			  : S_ISFIFO(st.st_mode) ? "a pipe"
			  : S_ISCHR(st.st_mode)	 ? "a device"
						 : "not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > MAX_FILE) {
		fail(c, 0, "%lld bytes is larger than a snapshot can be", (long long)st.st_size);
		goto out;
	}
	if (st.st_size == 0) {
		fail(c, 0, "empty file");
		goto out;
	}
	c->size = (size_t)st.st_size;
	unsigned char *buf = malloc(c->size);
	if (!buf) {
		fail(c, 0, "out of memory for %zu bytes", c->size);
		goto out;
	}
	c->data = buf;
	rc = read_all(c, fd, c->size, buf);
	if (rc) {
		free(buf);
		c->data = NULL;
	}
out:
	close(fd);
	return rc;
}

int mt_snap_load(const char *path, mt_snap_t *s, char *err, size_t errlen)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen};
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (load_file(&c, path))
		return -1;
	if (parse(&c, s) == 0) {
		s->file = strdup(path);
		rc = s->file ? 0 : fail(&c, 0, "out of memory");
	}
	free((void *)c.data);
	if (rc != 0)
		mt_snap_free(s);
	return rc;
}

int mt_snap_each_record(const char *path, mt_snap_rec_fn fn, void *arg, char *err,
			size_t errlen)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen};
	mt_snap_t s;

	memset(&s, 0, sizeof(s));
	if (load_file(&c, path))
		return -1;
	int rc = parse(&c, &s);
	mt_snap_free(&s);
	/* checked whole: every record below decodes */
	for (size_t at = MT_FILE_HEADER_LEN; rc == 0 && at < c.size;) {
		uint16_t type = mt__get_u16(c.data + at);
		uint32_t len = mt__get_u32(c.data + at + 4);
		const mt_rec_desc_t *d = mt_rec_desc(type);
		mt_rec_any_t rec;
		size_t bad;
		const mt_field_t *f;
		const char *why;
		if (d && mt_rec_get(d, c.data + at + MT_REC_HEADER_LEN, len, &rec, &bad, &f, &why))
			d = NULL;
		fn(arg, at, type, d, d ? &rec : NULL, len);
		at += MT_REC_HEADER_LEN + len;
	}
	free((void *)c.data);
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
