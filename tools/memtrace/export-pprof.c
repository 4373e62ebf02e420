/* SPDX-License-Identifier: MIT */
/*
 * export-pprof.c - a snapshot as pprof's profile.proto, gzip-compressed: what
 * `go tool pprof` and every other pprof reader open. The message types are
 * protobuf-c code generated at build time from Debian's copy of the upstream
 * profile.proto (meson option pprof_proto); nothing here knows the wire
 * encoding.
 *
 * One sample per callsite with four values (inuse_space, inuse_objects,
 * alloc_space, alloc_objects) and a "domain" label; one location per return
 * address, its inlined calls as several lines innermost first; the
 * allocator's own frames dropped from the leaf end (mt_frames_start), so the
 * leaf is the code that asked for memory. Every id is an index plus one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>
#include <zlib.h>

#include "cli.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile profile_t;
typedef Perftools__Profiles__ValueType value_type_t;
typedef Perftools__Profiles__Sample sample_t;
typedef Perftools__Profiles__Label label_t;
typedef Perftools__Profiles__Mapping mapping_t;
typedef Perftools__Profiles__Location location_t;
typedef Perftools__Profiles__Line line_t;
typedef Perftools__Profiles__Function function_t;

struct str_ix {
	int64_t idx;
	UT_hash_handle hh; /* keyed by the table's copy of the string */
};

struct func_key {
	int64_t name, file;
};

struct func_ix {
	struct func_key k;
	uint64_t id;
	UT_hash_handle hh;
};

/* A leaf location may have inlined allocator frames cut off: the same
 * address then stands for two locations, told apart by how many lines went. */
struct loc_key {
	uint64_t addr, skip;
};

struct loc_ix {
	struct loc_key k;
	uint64_t id;
	UT_hash_handle hh;
};

/* What every location of a mapping has, for its has_* flags. */
struct map_info {
	uint64_t lo, hi, id;
	size_t nlocs;
	bool funcs, files, lines; /* in every location */
	bool dwarf;		  /* in some: a file name, so DWARF was read */
};

/* The profile under construction; the arrays own what they point to. */
typedef struct builder {
	mt_sym_t *sym;
	char **strings;
	size_t nstrings, capstrings;
	struct str_ix *str_index;
	function_t *funcs;
	size_t nfuncs, capfuncs;
	struct func_ix *func_index;
	location_t *locs;
	size_t nlocs, caplocs;
	struct loc_ix *loc_index;
	mapping_t *maps;
	size_t nmaps;
	struct map_info *ranges; /* sorted by lo */
	sample_t *samples;
	size_t nsamples, capsamples;
} builder_t;

static void *grow(void *v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 64;
	return mt_xrealloc(v, *cap * elem);
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_len(const unsigned char *p)
{
	if (p[0] < 0x80)
		return 1;
	size_t n = 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* overlong three-byte forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0))) ||
	    (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))))
		return 0;
	return n;
}

/* The index of s in the string table. proto3 strings are UTF-8 (protoc
 * refuses anything else): other bytes and control characters become '?'. */
static int64_t intern(builder_t *b, const char *s)
{
	struct str_ix *e;
	char *copy = mt_printable(s);
	for (unsigned char *p = (unsigned char *)copy; *p;) {
		size_t n = utf8_len(p);
		if (n == 0) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
	HASH_FIND_STR(b->str_index, copy, e);
	if (e) {
		free(copy);
		return e->idx;
	}
	b->strings = grow(b->strings, &b->capstrings, b->nstrings, sizeof(*b->strings));
	e = mt_xmalloc(sizeof(*e));
	e->idx = (int64_t)b->nstrings;
	b->strings[b->nstrings++] = copy;
	HASH_ADD_KEYPTR(hh, b->str_index, copy, strlen(copy), e);
	return e->idx;
}

static uint64_t function(builder_t *b, const mt_sframe_t *f)
{
	struct func_key k = {intern(b, f->func ? f->func : "??"),
			     intern(b, f->file ? f->file : "")};
	struct func_ix *e;
	HASH_FIND(hh, b->func_index, &k, sizeof(k), e);
	if (e)
		return e->id;
	b->funcs = grow(b->funcs, &b->capfuncs, b->nfuncs, sizeof(*b->funcs));
	function_t *fn = &b->funcs[b->nfuncs++];
	*fn = (function_t)PERFTOOLS__PROFILES__FUNCTION__INIT;
	fn->id = b->nfuncs;
	/* the symbolizer keeps only the demangled name */
	fn->name = fn->system_name = k.name;
	fn->filename = k.file;
	e = mt_xmalloc(sizeof(*e));
	e->k = k;
	e->id = fn->id;
	HASH_ADD(hh, b->func_index, k, sizeof(e->k), e);
	return e->id;
}

static struct map_info *find_map(const builder_t *b, uint64_t addr)
{
	size_t lo = 0, hi = b->nmaps;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (b->ranges[m].hi <= addr)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < b->nmaps && b->ranges[lo].lo <= addr ? &b->ranges[lo] : NULL;
}

/* The location of a return address whose `skip` innermost inlined frames
 * are the allocator's. A frame with neither function nor file gets no line:
 * a pprof reader shows its address, or symbolizes it itself. */
static uint64_t location(builder_t *b, uint64_t addr, int skip)
{
	struct loc_key k = {addr, (uint64_t)skip};
	struct loc_ix *e;
	HASH_FIND(hh, b->loc_index, &k, sizeof(k), e);
	if (e)
		return e->id;

	const mt_sframe_t *f;
	int n = mt_sym_lookup(b->sym, addr, &f);
	line_t **lines = mt_xmalloc((size_t)n * sizeof(*lines));
	size_t nlines = 0;
	bool funcs = true, files = true, linenos = true, dwarf = false;
	for (int j = skip; j < n; j++) {
		funcs = funcs && f[j].func;
		files = files && f[j].file;
		dwarf = dwarf || f[j].file;
		linenos = linenos && f[j].line > 0;
		if (!f[j].func && !f[j].file)
			continue;
		line_t *l = mt_xmalloc(sizeof(*l));
		*l = (line_t)PERFTOOLS__PROFILES__LINE__INIT;
		l->function_id = function(b, &f[j]);
		l->line = f[j].line;
		lines[nlines++] = l;
	}

	b->locs = grow(b->locs, &b->caplocs, b->nlocs, sizeof(*b->locs));
	location_t *loc = &b->locs[b->nlocs++];
	*loc = (location_t)PERFTOOLS__PROFILES__LOCATION__INIT;
	loc->id = b->nlocs;
	loc->address = mt_frame_is_py(addr) ? 0 : addr; /* a Python frame: its lines alone */
	loc->line = lines;
	loc->n_line = nlines;
	struct map_info *m = find_map(b, addr);
	if (m) {
		loc->mapping_id = m->id;
		m->funcs = (m->nlocs == 0 || m->funcs) && funcs;
		m->files = (m->nlocs == 0 || m->files) && files;
		m->lines = (m->nlocs == 0 || m->lines) && linenos;
		m->dwarf = m->dwarf || dwarf;
		m->nlocs++;
	}
	e = mt_xmalloc(sizeof(*e));
	e->k = k;
	e->id = loc->id;
	HASH_ADD(hh, b->loc_index, k, sizeof(e->k), e);
	return e->id;
}

/* The file offset mapped at the module's lowest address: that of its first
 * PT_LOAD segment; 0 when the file cannot be read. */
static uint64_t first_load_offset(const char *path)
{
	uint64_t off = 0, vaddr = UINT64_MAX;
	int fd = path[0] == '/' ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return 0;
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t n;
	if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;
			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD &&
			    ph.p_vaddr < vaddr) {
				vaddr = ph.p_vaddr;
				off = ph.p_offset;
			}
		}
	}
	elf_end(e);
	close(fd);
	return off;
}

static int cmp_range(const void *a, const void *b)
{
	const struct map_info *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void add_mappings(builder_t *b, const mt_snap_t *snap)
{
	elf_version(EV_CURRENT);
	b->nmaps = snap->nmodules;
	b->maps = mt_xmalloc((b->nmaps ? b->nmaps : 1) * sizeof(*b->maps));
	b->ranges = mt_xmalloc((b->nmaps ? b->nmaps : 1) * sizeof(*b->ranges));
	/* in the snapshot's order: the executable first, as pprof expects */
	for (size_t i = 0; i < snap->nmodules; i++) {
		const mt_snap_module_t *m = &snap->modules[i];
		char id[2 * MT_MAX_BUILD_ID + 1];
		for (uint32_t j = 0; j < m->build_id_len; j++)
			sprintf(id + 2 * j, "%02x", m->build_id[j]);
		id[2 * m->build_id_len] = '\0';
		mapping_t *mp = &b->maps[i];
		*mp = (mapping_t)PERFTOOLS__PROFILES__MAPPING__INIT;
		mp->id = i + 1;
		mp->memory_start = m->lo;
		mp->memory_limit = m->hi;
		mp->file_offset = first_load_offset(m->path);
		mp->filename = intern(b, m->path);
		mp->build_id = intern(b, id);
		b->ranges[i] = (struct map_info){.lo = m->lo, .hi = m->hi, .id = i + 1};
	}
	qsort(b->ranges, b->nmaps, sizeof(*b->ranges), cmp_range);
}

static void add_sample(builder_t *b, const mt_snap_site_t *site, label_t **label)
{
	int first, skip;
	(void)mt_frames_start(b->sym, site, &first, &skip);
	b->samples = grow(b->samples, &b->capsamples, b->nsamples, sizeof(*b->samples));
	sample_t *s = &b->samples[b->nsamples++];
	*s = (sample_t)PERFTOOLS__PROFILES__SAMPLE__INIT;
	s->location_id =
		mt_xmalloc((size_t)(site->nframes ? site->nframes : 1) * sizeof(*s->location_id));
	for (int i = first; i < site->nframes; i++)
		s->location_id[s->n_location_id++] =
			location(b, site->frames[i], i == first ? skip : 0);
	s->value = mt_xmalloc(4 * sizeof(*s->value));
	s->n_value = 4;
	s->value[0] = (int64_t)site->live_bytes;
	s->value[1] = (int64_t)site->live_count;
	s->value[2] = (int64_t)site->alloc_bytes;
	s->value[3] = (int64_t)site->alloc_count;
	s->label = label;
	s->n_label = 1;
}

/* protobuf-c's output sink: each packed piece goes through deflate to f. */
typedef struct gz_sink {
	ProtobufCBuffer base;
	z_stream z;
	FILE *f;
	unsigned char out[1 << 16];
} gz_sink_t;

static void gz_drain(gz_sink_t *g, int flush)
{
	int r;
	do {
		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		r = deflate(&g->z, flush);
		size_t n = sizeof(g->out) - g->z.avail_out;
		if (n)
			fwrite(g->out, 1, n, g->f); /* errors stay in ferror(f) */
	} while (g->z.avail_out == 0 || (flush == Z_FINISH && r == Z_OK));
}

static void gz_append(ProtobufCBuffer *buf, size_t len, const uint8_t *data)
{
	gz_sink_t *g = (gz_sink_t *)buf;
	while (len) {
		uInt n = len > (1u << 30) ? 1u << 30 : (uInt)len;
		g->z.next_in = (Bytef *)data;
		g->z.avail_in = n;
		gz_drain(g, Z_NO_FLUSH);
		data += n;
		len -= n;
	}
}

static void free_builder(builder_t *b)
{
	struct str_ix *s, *stmp;
	struct func_ix *f, *ftmp;
	struct loc_ix *l, *ltmp;
	HASH_ITER(hh, b->str_index, s, stmp)
	{
		HASH_DEL(b->str_index, s);
		free(s);
	}
	HASH_ITER(hh, b->func_index, f, ftmp)
	{
		HASH_DEL(b->func_index, f);
		free(f);
	}
	HASH_ITER(hh, b->loc_index, l, ltmp)
	{
		HASH_DEL(b->loc_index, l);
		free(l);
	}
	for (size_t i = 0; i < b->nstrings; i++)
		free(b->strings[i]);
	for (size_t i = 0; i < b->nlocs; i++) {
		for (size_t j = 0; j < b->locs[i].n_line; j++)
			free(b->locs[i].line[j]);
		free(b->locs[i].line);
	}
	for (size_t i = 0; i < b->nsamples; i++) {
		free(b->samples[i].location_id);
		free(b->samples[i].value);
	}
	free(b->strings);
	free(b->funcs);
	free(b->locs);
	free(b->maps);
	free(b->ranges);
	free(b->samples);
}

/* An array of pointers to each element of v, as protobuf-c wants them. */
static void **pointers(void *v, size_t n, size_t elem)
{
	void **p = mt_xmalloc((n ? n : 1) * sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = (char *)v + i * elem;
	return p;
}

int mt_export_pprof(FILE *f, const mt_snap_t *snap, mt_sym_t *sym, const mt_view_t *v)
{
	builder_t b = {.sym = sym};
	profile_t prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	intern(&b, ""); /* string_table[0] must be "" */

	static const char *const types[4][2] = {{"inuse_space", "bytes"},
						{"inuse_objects", "count"},
						{"alloc_space", "bytes"},
						{"alloc_objects", "count"}};
	value_type_t vt[4], *vtp[4], period_type = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	for (int i = 0; i < 4; i++) {
		vt[i] = (value_type_t)PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
		vt[i].type = intern(&b, types[i][0]);
		vt[i].unit = intern(&b, types[i][1]);
		vtp[i] = &vt[i];
	}
	prof.sample_type = vtp;
	prof.n_sample_type = 4;
	prof.default_sample_type = vt[0].type;
	period_type.type = intern(&b, "space");
	period_type.unit = intern(&b, "bytes");
	prof.period_type = &period_type;
	/* exact counts are a sampling period of one byte */
	prof.period = snap->sample_bytes ? (int64_t)snap->sample_bytes : 1;
	prof.time_nanos = (int64_t)snap->wall_ns;
	prof.duration_nanos = (int64_t)(snap->mono_ns - snap->start_mono_ns);

	label_t labels[MT_DOMAIN_COUNT], *label_p[MT_DOMAIN_COUNT];
	for (int d = 0; d < MT_DOMAIN_COUNT; d++) {
		labels[d] = (label_t)PERFTOOLS__PROFILES__LABEL__INIT;
		labels[d].key = intern(&b, "domain");
		labels[d].str = intern(&b, mt_domain_name(d));
		label_p[d] = &labels[d];
	}

	add_mappings(&b, snap);
	size_t nsites = 0;
	mt_progress_t pr;
	mt_progress_begin(&pr, "symbolizing", snap->file, snap->nsites, "callsites");
	for (size_t i = 0; i < snap->nsites; i++) {
		const mt_snap_site_t *site = &snap->sites[i];
		mt_progress_step(&pr, i);
		if ((!site->live_count && !site->alloc_count) || site->domain >= MT_DOMAIN_COUNT ||
		    !mt_site_passes(v, sym, site))
			continue;
		add_sample(&b, site, &label_p[site->domain]);
		nsites++;
	}
	mt_progress_end(&pr);
	for (size_t i = 0; i < b.nmaps; i++) {
		struct map_info *m = &b.ranges[i];
		mapping_t *mp = &b.maps[m->id - 1];
		mp->has_functions = m->nlocs && m->funcs;
		mp->has_filenames = m->nlocs && m->files;
		mp->has_line_numbers = m->nlocs && m->lines;
		/* wherever DWARF was read, its inlined calls were expanded */
		mp->has_inline_frames = m->dwarf;
	}

	char *cmdline = mt_xmalloc(snap->cmdline_len + 1);
	for (size_t i = 0; i < snap->cmdline_len; i++)
		cmdline[i] = snap->cmdline[i] ? snap->cmdline[i] : ' ';
	cmdline[snap->cmdline_len] = '\0';
	char *comments[] = {
		mt_xasprintf("memtrace snapshot %u of pid %u (%s), %.3f s after start", snap->seq,
			     snap->pid, mt_reason_text(snap->reason), mt_snap_seconds(snap)),
		mt_xasprintf("pid %u, parent %u", snap->pid, snap->ppid),
		mt_xasprintf("exe %s", snap->exe),
		mt_xasprintf("command line: %s", cmdline),
		mt_xasprintf("%zu callsites of %zu, domain %s", nsites, snap->nsites,
			     mt_domain_name(v->domain)),
		snap->sample_bytes ? mt_xasprintf("sampled at %" PRIu64 " bytes: one allocation "
						  "per %" PRIu64 " bytes on average, values are "
						  "estimates",
						  snap->sample_bytes, snap->sample_bytes)
				   : NULL,
	};
	int64_t comment_ix[sizeof(comments) / sizeof(comments[0])];
	for (size_t i = 0; i < sizeof(comments) / sizeof(comments[0]); i++) {
		if (comments[i])
			comment_ix[prof.n_comment++] = intern(&b, comments[i]);
		free(comments[i]);
	}
	free(cmdline);
	prof.comment = comment_ix;

	prof.mapping = (mapping_t **)pointers(b.maps, b.nmaps, sizeof(*b.maps));
	prof.n_mapping = b.nmaps;
	prof.location = (location_t **)pointers(b.locs, b.nlocs, sizeof(*b.locs));
	prof.n_location = b.nlocs;
	prof.function = (function_t **)pointers(b.funcs, b.nfuncs, sizeof(*b.funcs));
	prof.n_function = b.nfuncs;
	prof.sample = (sample_t **)pointers(b.samples, b.nsamples, sizeof(*b.samples));
	prof.n_sample = b.nsamples;
	prof.string_table = b.strings;
	prof.n_string_table = b.nstrings;

	/* gzip (windowBits 16 + 15), as pprof readers expect */
	gz_sink_t *g = mt_xmalloc(sizeof(*g));
	memset(g, 0, sizeof(*g));
	g->base.append = gz_append;
	g->f = f;
	int rc = deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + 15, 8,
			      Z_DEFAULT_STRATEGY);
	if (rc == Z_OK) {
		perftools__profiles__profile__pack_to_buffer(&prof, &g->base);
		gz_drain(g, Z_FINISH);
		deflateEnd(&g->z);
	}
	free(g);
	free(prof.mapping);
	free(prof.location);
	free(prof.function);
	free(prof.sample);
	free_builder(&b);
	return rc == Z_OK ? 0 : -1;
}
