/* SPDX-License-Identifier: MIT */
/*
 * snapread.c - unit test of the snapshot reader (src/snapread.c) and the
 * record codec (src/format.c):
 *   - golden files: the fuzz corpus's snapshots (written by the library,
 *     checked against what the reader of format v1 made of the same
 *     snapshots) read to exact figures, frames and Python lines;
 *   - every v1 file refused in one line that says which version it is;
 *   - what a later minor version may do (fields appended to a record,
 *     counters to a SITE, record types, frame kinds) read by this reader;
 *   - records that do not hold their fields refused, naming the field.
 * Golden files from MT_SRC_DIR/tests/fuzz/corpus.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "snapread.h"
#include "snapmake.h"
#include "unit.h"

#define CORPUS MT_SRC_DIR "/tests/fuzz/corpus/"

static mt_snap_t load(const char *name)
{
	mt_snap_t s;
	char err[512];
	if (mt_snap_load(name, &s, err, sizeof(err)) != 0) {
		EXPECT(0, "%s: %s", name, err);
		memset(&s, 0, sizeof(s));
	}
	return s;
}

static const mt_snap_site_t *site(const mt_snap_t *s, uint32_t id)
{
	for (size_t i = 0; i < s->nsites; i++)
		if (s->sites[i].id == id)
			return &s->sites[i];
	return NULL;
}

static void golden_basic(void)
{
	mt_snap_t s = load(CORPUS "basic.snap");
	EXPECT(s.major == 2 && s.minor == 0, "version %u.%u", s.major, s.minor);
	EXPECT(s.pid == 12528 && s.ppid == 12442 && s.seq == 1, "pid %u ppid %u seq %u", s.pid,
	       s.ppid, s.seq);
	EXPECT(s.reason == MT_REASON_EXIT, "reason %u", s.reason);
	EXPECT(s.wall_ns == 1795263741444259716ull && s.start_mono_ns == 4305814204907ull,
	       "times %lu %lu", (unsigned long)s.wall_ns, (unsigned long)s.start_mono_ns);
	EXPECT(s.depth == 4 && s.page_size == 4096, "depth %u page %u", s.depth, s.page_size);
	EXPECT(!strcmp(s.exe, "/work/main/build/tests/victim-basic"), "exe %s", s.exe);
	EXPECT(s.cmdline_len > 0 && !strncmp(s.cmdline, "build/tests/vic", 15), "cmdline");
	EXPECT(s.totals.heap_live_bytes == 116441 && s.totals.heap_alloc_count == 1503 &&
		       s.totals.heap_free_count == 501 && s.totals.sites == 5,
	       "totals %lu %lu", (unsigned long)s.totals.heap_live_bytes,
	       (unsigned long)s.totals.heap_alloc_count);
	EXPECT(s.has_alloc && !strcmp(s.alloc.name, "glibc") && s.alloc.arenas == 1 &&
		       s.alloc.held == 135168 && s.alloc.in_use == 131728,
	       "allocator %s %lu", s.alloc.name, (unsigned long)s.alloc.held);
	/* written by format 1.1: the peaks came later, and are 0 */
	EXPECT(s.alloc.vms_peak == 0 && s.alloc.rss_peak == 0, "peaks");
	EXPECT(s.nmodules == 9 && s.nsites == 5, "%zu modules, %zu sites", s.nmodules, s.nsites);
	const mt_snap_site_t *a = site(&s, 1), *b = site(&s, 2), *c = site(&s, 3);
	EXPECT(a && a->live_bytes == 100000 && a->live_count == 1000 && a->alloc_count == 1000 &&
		       a->alloc_bytes == 100000 && a->peak_bytes == 100000,
	       "site 1");
	EXPECT(a && a->nframes == 4 && a->frames[0] == 94299623309716ull &&
		       a->frames[3] == 94299623309489ull && a->py_first == -1,
	       "site 1 frames");
	EXPECT(b && b->live_bytes == 0 && b->alloc_count == 500 && b->alloc_bytes == 32000,
	       "site 2: freed");
	EXPECT(c && c->live_bytes == 12345 && c->live_count == 1, "site 3");
	EXPECT(!s.scan_status && s.scan_note && !s.scan_note[0], "no leak scan");
	mt_snap_free(&s);
}

static void golden_python(void)
{
	mt_snap_t s = load(CORPUS "python.snap");
	EXPECT(s.py_version == (3 << 8 | 11), "python %x", s.py_version);
	EXPECT(s.ncodes > 0, "codes");
	/* site 236: three native frames recorded, then three Python frames;
	 * shown, the eval loop's frames give way to the Python ones */
	const mt_snap_site_t *p = site(&s, 236);
	EXPECT(p && p->nnative == 3, "site 236 native %d", p ? p->nnative : -1);
	EXPECT(p && p->py_first >= 0, "site 236 has Python frames");
	int py = 0;
	for (int i = 0; p && i < p->nframes; i++) {
		const mt_pyframe_t *f = mt_snap_pyframe(p->frames[i]);
		if (!f)
			continue;
		EXPECT(f->file && f->func && f->line > 0, "a Python frame with file and line");
		py++;
	}
	EXPECT(py == 3, "site 236: %d Python frames shown", py);
	mt_snap_use_native(&s);
	EXPECT(p && p->nframes == 3 && p->py_first == -1 && p->frames[0] == 5226931,
	       "--native: the recorded stack");
	mt_snap_free(&s);
}

static void golden_leakscan(void)
{
	mt_snap_t s = load(CORPUS "leakscan.snap");
	EXPECT(s.scan_status == MT_SCAN_DONE, "scan %u", s.scan_status);
	EXPECT(s.nsites == 10, "%zu sites", s.nsites);
	const mt_snap_site_t *a = site(&s, 1);
	EXPECT(a && a->has_leak, "site 1 classed");
	uint64_t sum = 0;
	for (int k = 0; a && k < MT_LEAK_NCLASS; k++)
		sum += a->leak_bytes[k];
	EXPECT(a && sum == a->live_bytes, "site 1's classes add up: %lu of %lu",
	       (unsigned long)sum, (unsigned long)(a ? a->live_bytes : 0));
	mt_snap_free(&s);
}

static void v1_refused(void)
{
	static const char *const v1[] = {"v1-basic", "v1-leakscan", "v1-mmap", "v1-no-frames",
					 "v1-python", "v1-realloc", "v1-uexit"};
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		char path[512], err[512];
		mt_snap_t s;
		snprintf(path, sizeof(path), CORPUS "%s.snap", v1[i]);
		int rc = mt_snap_load(path, &s, err, sizeof(err));
		EXPECT(rc == -1, "%s: read", v1[i]);
		EXPECT(strstr(err, "offset 8: written by format v1.") &&
			       strstr(err, "this reader reads v2.x") && !strchr(err, '\n'),
		       "%s: %s", v1[i], err);
	}
}

/* ---- snapshots made here, with the codec (snapmake.h) ---- */
static void meta(snapbuf_t *o)
{
	mt_rec_meta_t m = {.pid = 42, .seq = 1, .reason = MT_REASON_API, .depth = 16,
			   .exe = {"/bin/x", 6}, .cmdline = {"x\0-v", 4}};
	mt_rec_put(mt_rec_desc(MT_REC_META), &m, snap_emit, o);
}

static int parse(snapbuf_t *o, mt_snap_t *s, char *err, size_t errlen)
{
	return mt_snap_parse(o->b, o->n, "made.snap", s, err, errlen);
}

/* A record of a later minor: the fields of d and then extra u64s. */
static void put_longer(snapbuf_t *o, const mt_rec_desc_t *d, const void *rec, int extra)
{
	snapbuf_t tmp;
	tmp.n = 0;
	mt_rec_put(d, rec, snap_emit, &tmp);
	mt__put_u32(tmp.b + 4, mt__get_u32(tmp.b + 4) + 8 * (uint32_t)extra);
	snap_emit(o, tmp.b, tmp.n);
	for (int i = 0; i < extra; i++) {
		unsigned char v[8];
		mt__put_u64(v, 0x5555);
		snap_emit(o, v, 8);
	}
}

static void later_minor(void)
{
	snapbuf_t *o = malloc(sizeof(*o));
	snap_begin(o, 7);
	mt_rec_meta_t m = {.pid = 42, .seq = 3, .reason = MT_REASON_SIGNAL,
			   .exe = {"/bin/x", 6}, .sample_mean = 0, .attach_wall_ns = 9};
	put_longer(o, mt_rec_desc(MT_REC_META), &m, 2); /* two fields of 2.7 */
	uint64_t tot[MT_TOTALS_N + 3];
	for (size_t i = 0; i < MT_TOTALS_N + 3; i++)
		tot[i] = 100 + i;
	mt_rec_totals_t t = {.counters = {tot, NULL, MT_TOTALS_N + 3}};
	mt_rec_put(mt_rec_desc(MT_REC_TOTALS), &t, snap_emit, o);
	/* an unknown record between known ones */
	unsigned char unk[8 + 5] = {200, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5};
	snap_emit(o, unk, sizeof(unk));
	uint64_t c[MT_SITE_NCOUNTERS + 2] = {10, 1, 3, 30, 20, 777, 888};
	uint64_t fr[] = {0x401000, 0x402000,
			 MT_FRAME_PY | (3ull << MT_FRAME_KIND_SHIFT) | 12345}; /* kind 3 */
	mt_rec_site_t st = {.id = 5, .domain = MT_DOMAIN_HEAP,
			    .counters = {c, NULL, MT_SITE_NCOUNTERS + 2},
			    .frames = {fr, NULL, 3}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, o);
	snap_finish(o);

	mt_snap_t s;
	char err[512] = "";
	int rc = parse(o, &s, err, sizeof(err));
	EXPECT(rc == 0, "a later minor's snapshot: %s", err);
	if (rc == 0) {
		EXPECT(s.minor == 7 && s.pid == 42 && s.seq == 3 && s.attach_wall_ns == 9,
		       "META with two more fields");
		EXPECT(s.totals.heap_live_bytes == 100 &&
			       s.totals.unwind_mismatches == 100 + MT_TOTALS_N - 1,
		       "TOTALS: the known counters, the rest left");
		EXPECT(s.nsites == 1 && s.sites[0].live_bytes == 10 && s.sites[0].peak_bytes == 20,
		       "SITE with two more counters");
		EXPECT(s.sites[0].nframes == 2 && s.sites[0].frames[1] == 0x402000 &&
			       s.sites[0].nnative == 2,
		       "a frame of an unknown kind left out: %d frames", s.sites[0].nframes);
		mt_snap_free(&s);
	}
	free(o);
}

/* A SITE written with fewer counters than this reader knows (a writer of
 * 2.0 read by a later reader): the missing ones are 0. */
static void fewer_counters(void)
{
	snapbuf_t *o = malloc(sizeof(*o));
	snap_begin(o, 0);
	meta(o);
	uint64_t c[] = {64, 1};
	mt_rec_site_t st = {.id = 1, .counters = {c, NULL, 2}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, o);
	snap_finish(o);
	mt_snap_t s;
	char err[512] = "";
	EXPECT(parse(o, &s, err, sizeof(err)) == 0, "fewer counters: %s", err);
	if (s.nsites == 1)
		EXPECT(s.sites[0].live_bytes == 64 && s.sites[0].live_count == 1 &&
			       s.sites[0].alloc_count == 0 && s.sites[0].nframes == 0,
		       "the missing counters are 0");
	mt_snap_free(&s);
	free(o);
}

/* The made snapshot with one record's length cut by cut bytes (the rest
 * follows as a record of its own would not: the whole file is rebuilt). */
static void expect_refused(const char *what, void (*make)(snapbuf_t *), const char *want)
{
	snapbuf_t *o = malloc(sizeof(*o));
	snap_begin(o, 0);
	make(o);
	snap_finish(o);
	mt_snap_t s;
	char err[512] = "";
	int rc = parse(o, &s, err, sizeof(err));
	EXPECT(rc == -1 && strstr(err, want), "%s: rc %d, \"%s\", wanted \"%s\"", what, rc, err,
	       want);
	if (rc == 0)
		mt_snap_free(&s);
	free(o);
}

static void short_meta(snapbuf_t *o)
{
	snapbuf_t tmp;
	tmp.n = 0;
	meta(&tmp);
	/* ends inside the exe string's length */
	size_t keep = 8 + 4 * 4 + 8 * 4 + 4 * 2 + 2;
	mt__put_u32(tmp.b + 4, (uint32_t)(keep - 8));
	snap_emit(o, tmp.b, keep);
}

static void long_string(snapbuf_t *o)
{
	snapbuf_t tmp;
	tmp.n = 0;
	meta(&tmp);
	/* the exe string claims more than the record holds */
	mt__put_u32(tmp.b + 8 + 56, 1000);
	snap_emit(o, tmp.b, tmp.n);
}

static void too_many_frames(snapbuf_t *o)
{
	meta(o);
	static uint64_t fr[MT_MAX_FRAMES + 1];
	for (int i = 0; i <= MT_MAX_FRAMES; i++)
		fr[i] = 0x1000 + (uint64_t)i;
	uint64_t c[MT_SITE_NCOUNTERS] = {0};
	mt_rec_site_t st = {.id = 9, .counters = {c, NULL, MT_SITE_NCOUNTERS},
			    .frames = {fr, NULL, MT_MAX_FRAMES + 1}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, o);
}

static void counters_past(snapbuf_t *o)
{
	meta(o);
	snapbuf_t tmp;
	tmp.n = 0;
	uint64_t c[MT_SITE_NCOUNTERS] = {0};
	mt_rec_site_t st = {.id = 9, .counters = {c, NULL, MT_SITE_NCOUNTERS}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, &tmp);
	mt__put_u32(tmp.b + 8 + 5, 1u << 30); /* the counters' count */
	snap_emit(o, tmp.b, tmp.n);
}

static void site_first(snapbuf_t *o)
{
	uint64_t c[MT_SITE_NCOUNTERS] = {0};
	mt_rec_site_t st = {.id = 1, .counters = {c, NULL, MT_SITE_NCOUNTERS}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, o);
	meta(o);
}

static void leak_short(snapbuf_t *o)
{
	meta(o);
	uint64_t c[MT_SITE_NCOUNTERS] = {0};
	mt_rec_site_t st = {.id = 1, .counters = {c, NULL, MT_SITE_NCOUNTERS}};
	mt_rec_put(mt_rec_desc(MT_REC_SITE), &st, snap_emit, o);
	mt_rec_leakscan_t ls = {.status = MT_SCAN_DONE};
	mt_rec_put(mt_rec_desc(MT_REC_LEAKSCAN), &ls, snap_emit, o);
	uint64_t v[3] = {1, 2, 3};
	mt_rec_leak_t l = {.site = 1, .classes = {v, NULL, 3}};
	mt_rec_put(mt_rec_desc(MT_REC_LEAK), &l, snap_emit, o);
}

/* The codec alone: a field a later minor appended is optional, one of
 * 2.0 is not. */
static void codec_minor_fields(void)
{
	typedef struct {
		uint32_t a;
		uint64_t b;
	} rec_t;
	static const mt_field_t fields[] = {
		{"a", "", MT_F_u32, 0, offsetof(rec_t, a)},
		{"b", "", MT_F_u64, 1, offsetof(rec_t, b)},
	};
	const mt_rec_desc_t d = {"TEST", "", 99, 2, fields, sizeof(rec_t)};
	unsigned char p[12];
	mt__put_u32(p, 7);
	mt__put_u64(p + 4, 9);
	rec_t r;
	size_t at;
	const mt_field_t *f;
	const char *why;
	EXPECT(mt_rec_get(&d, p, 12, &r, &at, &f, &why) == 0 && r.a == 7 && r.b == 9, "whole");
	EXPECT(mt_rec_get(&d, p, 4, &r, &at, &f, &why) == 0 && r.a == 7 && r.b == 0,
	       "without the 2.1 field");
	EXPECT(mt_rec_get(&d, p, 8, &r, &at, &f, &why) == -1 && at == 4 && f == &fields[1] &&
		       !strcmp(why, "too short"),
	       "cut inside the 2.1 field");
	EXPECT(mt_rec_get(&d, p, 2, &r, &at, &f, &why) == -1 && at == 0 && f == &fields[0],
	       "cut inside a 2.0 field");
	EXPECT(mt_rec_len(&d, &r) == 12, "length");
}

/* Every record of the list: a description, unique type codes, field
 * offsets inside its struct. */
static void table_invariants(void)
{
	for (size_t i = 0; i < mt_rec_ndescs; i++) {
		const mt_rec_desc_t *d = &mt_rec_descs[i];
		EXPECT(mt_rec_desc(d->type) == d, "%s: its code finds it", d->name);
		EXPECT(d->nfields > 0 && d->what && d->what[0], "%s: fields and a description",
		       d->name);
		for (size_t j = 0; j < d->nfields; j++)
			EXPECT(d->fields[j].off < d->size && d->fields[j].what[0],
			       "%s.%s: inside its struct, described", d->name, d->fields[j].name);
	}
	EXPECT(mt_rec_desc(MT_REC_END) == NULL && mt_rec_desc(0) == NULL, "END is no record");
}

int main(void)
{
	golden_basic();
	golden_python();
	golden_leakscan();
	v1_refused();
	later_minor();
	fewer_counters();
	expect_refused("a META cut in a string's length", short_meta,
		       "META record of 58 bytes: its exe field too short");
	expect_refused("a string past its record", long_string,
		       "its exe field runs past the record");
	expect_refused("129 frames", too_many_frames, "site 9 has 129 frames, more than 128");
	expect_refused("counters past the record", counters_past,
		       "SITE record of 53 bytes: its counters field runs past the record");
	expect_refused("a SITE before META", site_first, "the first record is type 4, not META");
	expect_refused("a LEAK of 3 values", leak_short,
		       "LEAK record of site 1 holds 3 values for 4 classes");
	codec_minor_fields();
	table_invariants();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("snapread: all passed\n");
	return failures != 0;
}
