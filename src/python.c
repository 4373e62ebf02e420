/* SPDX-License-Identifier: MIT */
/*
 * python.c - the Python frames of an allocation made while CPython code runs,
 * read from inside the process without touching the program's code.
 *
 * How: at start (the constructor) the interpreter's exported symbols say
 * whether this process is CPython and which version; its layout comes from
 * the table below (x86-64 offsets from each version's own headers; a unit
 * test compares them with the headers of every build present). Once the
 * interpreter is initialised, a recorded allocation asks for a pending call
 * (Py_AddPendingCall), which runs in the main thread with the GIL held, at a
 * bytecode boundary. There memtrace checks the layout against the running
 * interpreter (the thread id, every object's type along the frame chain,
 * and the line the interpreter itself gives for the running frame, through
 * reads that cannot fault), and only then switches on: it wraps the MEM
 * and OBJ allocator domains as tracemalloc does (so pymalloc's objects are
 * seen, each once), and hooks code objects' deallocation.
 *
 * Invariants:
 *  - a thread only ever reads its own frame chain (only the owning thread
 *    changes it, GIL or not), and every code object on it is alive while
 *    the frame runs;
 *  - a code object's file, name, first line and line table are copied the
 *    first time a recorded frame runs it; its deallocation retires the
 *    copy, so an address reused by a new code object gets a new id and
 *    never shows the old one's name or lines;
 *  - an interpreter whose layout is unknown or fails the check gets one
 *    warning and native frames only;
 *  - on a hook path: no stdio, no hooked malloc (copies come from ialloc.c),
 *    one mutex of memtrace's own (the code table), taken after no other.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "arch.h"
#include "pyline.h"

/* ---- the layouts: one row per version (x86-64) ---- */
enum { POS_LASTI_BYTES, POS_LASTI_UNITS, POS_INSTR_PTR };

struct layout {
	int minor;
	int ts_frame;	  /* thread state -> frame word (3.11/3.12: the cframe) */
	int cframe_cur;	  /* cframe -> current frame, -1 without a cframe */
	int ts_thread_id; /* thread state -> pthread_self() of its thread */
	int f_code, f_back, f_pos, pos_kind;
	int f_is_entry; /* -1: none (every frame is an entry up to 3.10) */
	int f_owner;	/* -1: none */
	int co_filename, co_name, co_linetable, co_firstlineno;
	int co_code;	      /* first instruction (3.11+: co_code_adaptive) */
	int co_firsttraceable; /* -1: none */
	int line_kind;
	int str_ascii, str_compact; /* sizeof PyASCIIObject, PyCompactUnicodeObject */
};

#define MT_PY_LAYOUTS(X)                                                                          \
	/* minor ts  cf  tid  code back pos kind            entry owner file name table first    \
	   code  first-traceable  lines                str */                                      \
	X(8, 24, -1, 176, 32, 24, 104, POS_LASTI_BYTES, -1, -1, 104, 112, 120, 40, -1, -1,         \
	  MT_PYLINE_LNOTAB, 48, 72)                                                                \
	X(9, 24, -1, 176, 32, 24, 104, POS_LASTI_BYTES, -1, -1, 104, 112, 120, 40, -1, -1,         \
	  MT_PYLINE_LNOTAB, 48, 72)                                                                \
	X(10, 24, -1, 176, 32, 24, 96, POS_LASTI_UNITS, -1, -1, 104, 112, 120, 40, -1, -1,         \
	  MT_PYLINE_LINETABLE, 48, 72)                                                             \
	X(11, 56, 8, 152, 32, 48, 56, POS_INSTR_PTR, 68, 69, 112, 128, 136, 72, 184, 168,          \
	  MT_PYLINE_LOCATIONS, 48, 72)                                                             \
	X(12, 56, 0, 136, 0, 8, 56, POS_INSTR_PTR, -1, 70, 112, 128, 136, 68, 192, 176,            \
	  MT_PYLINE_LOCATIONS, 40, 56)                                                             \
	X(13, 72, -1, 152, 0, 8, 56, POS_INSTR_PTR, -1, 70, 112, 128, 136, 68, 200, 184,           \
	  MT_PYLINE_LOCATIONS, 40, 56)

static const struct layout layouts[] = {
#define X(mi, ts, cf, tid, code, back, pos, kind, entry, owner, file, name, table, first, ccode, \
	  ftr, lines, sa, sc)                                                                       \
	{mi, ts, cf, tid, code, back, pos, kind, entry, owner, file, name, table, first, ccode,   \
	 ftr, lines, sa, sc},
	MT_PY_LAYOUTS(X)
#undef X
};

#define OWNER_GENERATOR 1
#define OWNER_CSTACK 3	/* 3.12+: the shim at each entry into the eval loop */
#define TP_DEALLOC 48	/* PyTypeObject.tp_dealloc, every version */
#define OB_TYPE 8
#define STR_STATE 32	/* PyASCIIObject.state */
#define STR_LENGTH 16
#define BYTES_SIZE 16
#define BYTES_DATA 32

/* The rows are consecutive minors from 3.8 on (the start-up selection
 * checks it): a row's index follows from its minor. */
#define MT_PY_ROW(minor) ((minor) - 8)

static struct layout L;
int mt__py_state MT_HIDDEN = MT_PY_OFF;
static int py_version; /* major << 8 | minor */

/* The interpreter's entry points and types, from its dynamic symbols. */
static struct {
	int (*is_initialized)(void);
	void *(*this_thread_state)(void);
	int (*add_pending_call)(int (*)(void *), void *);
	void (*get_allocator)(int, void *);
	void (*set_allocator)(int, void *);
	const char *(*get_version)(void);
	void *(*eval_get_frame)(void);
	int (*frame_get_line)(void *);
	void *(*frame_get_code)(void *); /* 3.9+ */
	void (*dec_ref)(void *);
	int (*gil_check)(void);
	void *(*getattr)(void *, const char *);
	const char *(*as_utf8)(void *);
	void (*err_clear)(void);
	void *(*import)(const char *);
	void *(*cfunction_new)(void *, void *, void *);
	void *(*call_method_obj)(void *, void *, ...);
	void *(*unicode_from)(const char *);
	void (*inc_ref)(void *);
	void *none;
	void *code_type, *unicode_type, *bytes_type, *type_type, *eval_fn;
} py;

static uintptr_t eval_lo, eval_hi;
static void (*code_dealloc_orig)(void *);

/* ---- the code table ---- */
struct pycode {
	uintptr_t obj;
	struct pycode *next; /* bucket chain of live entries */
	uint32_t id;
	int32_t first;
	uint32_t flen, nlen, tlen;
	char data[]; /* file name, function name, line table */
};

#define CODE_CHUNK 4096u
#define CODE_CHUNKS (MT_FRAME_PY_CODE_MAX / CODE_CHUNK + 1)
#define STR_MAX 1024u
#define TABLE_MAX (64u << 10)
/* The live entries, chained by the top bits of their address's hash: 512
 * buckets (a page) at first, doubled while the entries outnumber them two
 * to one, up to 1 << 17; all under code_lock. A Python start in sampled
 * mode, which copies a few dozen code objects, took 34 page faults in a
 * fixed 128 KiB array (about 60 us at this machine's 1.7 us a fault). */
#define BUCKET_BITS_MIN 9
#define BUCKET_BITS_MAX 17
static struct pycode **buckets;
static unsigned bucket_bits;
static uint32_t bucket_entries;
/* The 32 groups of addresses (by the top 5 bits of the same hash) that ever
 * had an entry: a code object's death in a group never used takes no lock
 * and reads no bucket. Set under code_lock, read without it. */
static uint32_t bucket_groups;

static inline uint64_t code_hash(uintptr_t obj)
{
	return (obj >> 4) * 0x9E3779B97F4A7C15ull;
}

static inline bool group_used(uintptr_t obj)
{
	return __atomic_load_n(&bucket_groups, __ATOMIC_ACQUIRE) >> (code_hash(obj) >> 59) & 1;
}

static inline size_t code_bucket(uintptr_t obj)
{
	return (size_t)(code_hash(obj) >> (64 - bucket_bits));
}
static struct pycode **code_chunks[CODE_CHUNKS];
static uint32_t code_next = 1; /* ids published: [1, code_next) */
static pthread_mutex_t code_lock = PTHREAD_MUTEX_INITIALIZER;

/* A Python thread's caches, allocated at its first recorded allocation
 * (static TLS is precious: a program's small thread stacks hold it, and
 * jemalloc's dlopen needs its share) and freed at its exit by a key's
 * destructor. The recent code objects and their ids, 64 sets of 2 by hashed
 * address: no lock on the common path, and no read of the shared entry (a
 * cache line per code object, every frame of every walk). A retired entry
 * is never taken for a new code object at its address: each retirement
 * bumps code_gen, and a walk that finds the generation changed empties the
 * thread's cache first. That is enough: a code object the walk meets runs
 * in one of the thread's own frames, which holds it alive, so one at a
 * retired address was made after the retirement, and ran after it (the GIL
 * orders both), before the walk began. (One way, direct-mapped by address
 * bits, had the import machinery's frozen code objects evict each other on
 * every call.) The callsites: hook.c's (python_site). */
#define TL_CODE_SET_BITS 6
#define TL_CODE_WAYS 2
#define TL_CODES (TL_CODE_WAYS << TL_CODE_SET_BITS)
/* The callsites: 64 sets of 4 (a new entry goes first, the oldest of the
 * set out). Direct-mapped, two of a loop's few dozen stacks sharing a slot
 * missed on every turn: a fifth of the churn workload's calls walked the
 * native stack a second time and looked the site up in the shared table. */
#define TL_SITES 256
#define TL_SITE_WAYS 4
static uint32_t code_gen; /* entries retired so far */
struct pytl {
	struct codeway {
		uintptr_t obj;
		uint32_t id;
	} codes[TL_CODES];
	uint32_t gen; /* code_gen when codes was last emptied */
	struct {
		uintptr_t token;
		uint64_t hash;
		void *site;
	} sites[TL_SITES];
	uintptr_t token;
};
static __thread struct pytl *tl_py __attribute__((tls_model("initial-exec")));
static __thread int tl_py_gone __attribute__((tls_model("initial-exec")));
static pthread_key_t py_key;
static bool py_key_ok;

static void pytl_destructor(void *p)
{
	tl_py = NULL;
	tl_py_gone = 1; /* later calls in this thread go without caches */
	mt__ifree(p, sizeof(struct pytl));
}

static struct pytl *pytl(void)
{
	if (MT_LIKELY(tl_py != NULL))
		return tl_py;
	if (tl_py_gone || !py_key_ok)
		return NULL;
	struct pytl *t = mt__ialloc(sizeof(*t));
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	if (pthread_setspecific(py_key, t) != 0) {
		mt__ifree(t, sizeof(*t));
		tl_py_gone = 1;
		return NULL;
	}
	tl_py = t;
	return t;
}

uintptr_t mt__py_token(void)
{
	struct pytl *t = pytl();
	return t ? (t->token += 2) | 1 : 0;
}

static inline unsigned site_set(uint64_t hash)
{
	return (unsigned)(hash >> 40) % (TL_SITES / TL_SITE_WAYS) * TL_SITE_WAYS;
}

void *mt__py_site_find(uintptr_t token, uint64_t hash)
{
	struct pytl *t = tl_py;
	if (!t)
		return NULL;
	for (unsigned i = site_set(hash), end = i + TL_SITE_WAYS; i < end; i++)
		if (t->sites[i].hash == hash && t->sites[i].token == token)
			return t->sites[i].site;
	return NULL;
}

void mt__py_site_keep(uintptr_t token, uint64_t hash, void *site)
{
	struct pytl *t = tl_py;
	if (!t)
		return;
	unsigned set = site_set(hash);
	memmove(&t->sites[set + 1], &t->sites[set], (TL_SITE_WAYS - 1) * sizeof(t->sites[0]));
	t->sites[set].token = token;
	t->sites[set].hash = hash;
	t->sites[set].site = site;
}

/* Appends s (a str object) as UTF-8, at most STR_MAX bytes; "?" when it
 * is not a compact str of this layout. */
static uint32_t copy_str(const char *o, char *out)
{
	static const char unknown[] = "?";
	if (!o || *(void *const *)(o + OB_TYPE) != py.unicode_type)
		goto bad;
	uint32_t state = *(const uint32_t *)(o + STR_STATE);
	int64_t len = *(const int64_t *)(o + STR_LENGTH);
	unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
	if (!compact || len < 0)
		goto bad;
	const unsigned char *d =
		(const unsigned char *)o + (ascii ? L.str_ascii : L.str_compact);
	uint32_t n = 0;
	for (int64_t i = 0; i < len; i++) {
		uint32_t c = kind == 1 ? d[i] : kind == 2 ? ((const uint16_t *)d)[i]
				 : kind == 4	      ? ((const uint32_t *)d)[i]
						      : '?';
		unsigned char b[4];
		int k;
		if (c < 0x80)
			b[0] = (unsigned char)c, k = 1;
		else if (c < 0x800)
			b[0] = (unsigned char)(0xc0 | c >> 6), b[1] = (unsigned char)(0x80 | (c & 63)),
			k = 2;
		else if (c < 0x10000)
			b[0] = (unsigned char)(0xe0 | c >> 12),
			b[1] = (unsigned char)(0x80 | ((c >> 6) & 63)),
			b[2] = (unsigned char)(0x80 | (c & 63)), k = 3;
		else
			b[0] = (unsigned char)(0xf0 | ((c >> 18) & 7)),
			b[1] = (unsigned char)(0x80 | ((c >> 12) & 63)),
			b[2] = (unsigned char)(0x80 | ((c >> 6) & 63)),
			b[3] = (unsigned char)(0x80 | (c & 63)), k = 4;
		if (n + (uint32_t)k > STR_MAX)
			break;
		memcpy(out + n, b, (size_t)k);
		n += (uint32_t)k;
	}
	return n;
bad:
	memcpy(out, unknown, 1);
	return 1;
}

/* The line table of a code object (a bytes object), or none. */
static uint32_t table_of(const char *co, const unsigned char **t)
{
	const char *b = *(const char *const *)(co + L.co_linetable);
	*t = NULL;
	if (!b || *(void *const *)(b + OB_TYPE) != py.bytes_type)
		return 0;
	int64_t n = *(const int64_t *)(b + BYTES_SIZE);
	if (n < 0 || n > (int64_t)TABLE_MAX)
		return 0;
	*t = (const unsigned char *)b + BYTES_DATA;
	return (uint32_t)n;
}

/* Doubles the buckets; under code_lock. Out of memory, they stay (the
 * chains grow longer). */
static void buckets_grow(void)
{
	unsigned bits = bucket_bits + 1;
	struct pycode **nb = mt__ialloc(sizeof(*nb) << bits); /* zeroed */
	if (!nb)
		return;
	for (size_t i = 0; i < (size_t)1 << bucket_bits; i++)
		for (struct pycode *e = buckets[i], *next; e; e = next) {
			next = e->next;
			size_t b = (size_t)(code_hash(e->obj) >> (64 - bits));
			e->next = nb[b];
			nb[b] = e;
		}
	mt__ifree(buckets, sizeof(*buckets) << bucket_bits);
	buckets = nb;
	bucket_bits = bits;
}

/* Creates the entry of a live code object; under code_lock. */
static struct pycode *code_new(const char *co)
{
	char name[STR_MAX + 4], file[STR_MAX + 4];
	uint32_t flen = copy_str(*(const char *const *)(co + L.co_filename), file);
	uint32_t nlen = copy_str(*(const char *const *)(co + L.co_name), name);
	const unsigned char *t;
	uint32_t tlen = table_of(co, &t);
	uint32_t id = code_next;
	if (id > MT_FRAME_PY_CODE_MAX)
		return NULL;
	struct pycode **chunk = code_chunks[id / CODE_CHUNK];
	if (!chunk) {
		chunk = mt__ialloc(CODE_CHUNK * sizeof(*chunk));
		if (!chunk)
			return NULL;
		__atomic_store_n(&code_chunks[id / CODE_CHUNK], chunk, __ATOMIC_RELEASE);
	}
	struct pycode *e = mt__ialloc(sizeof(*e) + flen + nlen + tlen);
	if (!e)
		return NULL;
	e->obj = (uintptr_t)co;
	e->id = id;
	e->first = *(const int32_t *)(co + L.co_firstlineno);
	e->flen = flen;
	e->nlen = nlen;
	e->tlen = tlen;
	memcpy(e->data, file, flen);
	memcpy(e->data + flen, name, nlen);
	if (tlen)
		memcpy(e->data + flen + nlen, t, tlen);
	if (bucket_entries >= 2u << bucket_bits && bucket_bits < BUCKET_BITS_MAX)
		buckets_grow();
	size_t b = code_bucket(e->obj);
	e->next = buckets[b];
	buckets[b] = e;
	bucket_entries++;
	__atomic_fetch_or(&bucket_groups, 1u << (code_hash(e->obj) >> 59), __ATOMIC_RELEASE);
	__atomic_store_n(&chunk[id % CODE_CHUNK], e, __ATOMIC_RELEASE);
	__atomic_store_n(&code_next, id + 1, __ATOMIC_RELEASE);
	return e;
}

/* A code object's set in a thread's cache: the address hashed, since code
 * objects of one size class sit at strides that a plain bit field maps to
 * a few sets. */
static inline unsigned code_set(const char *co)
{
	return (unsigned)(((uintptr_t)co * 0x9E3779B97F4A7C15ull) >> (64 - TL_CODE_SET_BITS)) *
	       TL_CODE_WAYS;
}

/* The id of a code object run by one of this thread's frames, from the
 * shared table (and into the thread's cache t, if any); 0 when the table is
 * full or out of memory. Out of line: the walk's loop stays free of calls. */
static __attribute__((noinline)) uint32_t code_id_slow(const char *co, struct pytl *t)
{
	struct pycode *e;
	pthread_mutex_lock(&code_lock);
	for (e = group_used((uintptr_t)co) ? buckets[code_bucket((uintptr_t)co)] : NULL; e;
	     e = e->next)
		if (e->obj == (uintptr_t)co)
			break;
	if (!e)
		e = code_new(co);
	pthread_mutex_unlock(&code_lock);
	if (!e)
		return 0;
	if (t) {
		/* the newest first, the older one out: two code objects of
		 * one set that alternate (a caller and its callee) both stay */
		unsigned set = code_set(co);
		t->codes[set + 1] = t->codes[set];
		t->codes[set].obj = (uintptr_t)co;
		t->codes[set].id = e->id;
	}
	return e->id;
}

/* The id of a code object run by one of this thread's frames: the
 * thread's cache t (NULL: none; its generation checked by the walk), else
 * the shared table. */
static MT_ALWAYS_INLINE uint32_t code_id(const char *co, struct pytl *t)
{
	if (MT_LIKELY(t != NULL)) {
		const struct codeway *w = &t->codes[code_set(co)];
		if (w[0].obj == (uintptr_t)co)
			return w[0].id;
		if (w[1].obj == (uintptr_t)co)
			return w[1].id;
	}
	return code_id_slow(co, t);
}

/* The thread's cache of code objects, emptied if an entry was retired
 * since it was last (above). */
static MT_ALWAYS_INLINE struct pytl *pytl_fresh(void)
{
	struct pytl *t = pytl();
	uint32_t gen = __atomic_load_n(&code_gen, __ATOMIC_ACQUIRE);
	if (MT_LIKELY(t != NULL) && MT_UNLIKELY(t->gen != gen)) {
		memset(t->codes, 0, sizeof(t->codes));
		t->gen = gen;
	}
	return t;
}

/* PyCode_Type's tp_dealloc, wrapped: the entry of a dying code object is
 * retired before the interpreter frees it. Runs with the GIL held. */
static void code_dealloc(void *co)
{
	if (!group_used((uintptr_t)co)) {
		/* set under code_lock when this object's entry was made, before
		 * the interpreter could free it (the GIL orders the two) */
		code_dealloc_orig(co);
		return;
	}
	pthread_mutex_lock(&code_lock);
	for (struct pycode **p = &buckets[code_bucket((uintptr_t)co)]; *p; p = &(*p)->next)
		if ((*p)->obj == (uintptr_t)co) {
			__atomic_add_fetch(&code_gen, 1, __ATOMIC_RELEASE);
			*p = (*p)->next;
			bucket_entries--;
			break;
		}
	pthread_mutex_unlock(&code_lock);
	code_dealloc_orig(co);
}

/* ---- the walk ---- */

static inline const char *first_frame(const char *ts)
{
	const char *f = *(const char *const *)(ts + L.ts_frame);
	if (L.cframe_cur >= 0 && f)
		f = *(const char *const *)(f + L.cframe_cur);
	return f;
}

/* The walk for one row of the layouts (a constant: each version gets a
 * loop of its own, its offsets and branches folded in; the row is the
 * running interpreter's, which the start-up check compared with it). */
static MT_ALWAYS_INLINE int walk(const char *f, uint64_t *out, int max, const int row)
{
	const struct layout *l = &layouts[row];
	const void *code_type = py.code_type;
	struct pytl *t = pytl_fresh();
	int n = 0;
	for (int steps = 0; f && n < max && steps < 4096; steps++) {
		/* 3.12+: a shim frame at each entry into the eval loop */
		if (l->f_owner >= 0 && f[l->f_owner] == OWNER_CSTACK) {
			if (n)
				out[n - 1] |= MT_FRAME_PY_ENTRY;
			f = *(const char *const *)(f + l->f_back);
			continue;
		}
		const char *co = *(const char *const *)(f + l->f_code);
		if (MT_UNLIKELY(!co || *(void *const *)(co + OB_TYPE) != code_type))
			break;
		int off;
		switch (l->pos_kind) {
		case POS_LASTI_BYTES: off = *(const int *)(f + l->f_pos); break;
		case POS_LASTI_UNITS: off = *(const int *)(f + l->f_pos) * 2; break;
		default: off = (int)(*(const char *const *)(f + l->f_pos) - (co + l->co_code));
		}
		bool hidden = l->minor >= 12 && f[l->f_owner] != OWNER_GENERATOR &&
			      off < 2 * *(const int *)(co + l->co_firsttraceable);
		bool entry = l->f_is_entry < 0 ? l->minor <= 10 : f[l->f_is_entry] != 0;
		uint32_t id = code_id(co, t);
		if (MT_UNLIKELY(!id))
			break;
		out[n++] = mt_frame_py(id, off, entry, hidden);
		f = *(const char *const *)(f + l->f_back);
	}
	return n;
}

int mt__py_frames(uint64_t *out, int max)
{
	if (!py.is_initialized()) {
		/* finalising: thread states are being freed; frames stay off for
		 * good, so no thread reads one later */
		__atomic_store_n(&mt__py_state, MT_PY_OFF, __ATOMIC_RELEASE);
		return 0;
	}
	const char *ts = py.this_thread_state();
	if (!ts)
		return 0;
	const char *f = first_frame(ts);
	switch (MT_PY_ROW(L.minor)) {
#define X(mi, ...)                                                 \
	case MT_PY_ROW(mi):                                        \
		return walk(f, out, max, MT_PY_ROW(mi));
		MT_PY_LAYOUTS(X)
#undef X
	}
	return 0;
}

/* ---- start-up: the check, then the switch ---- */

/* Reads that may meet unmapped memory: process_vm_readv on this process,
 * which fails where a load would fault. The pid is read once per batch of
 * reads by the caller (soft_pid): a getpid per read was half of the system
 * calls of a Python start under sampled memtrace. */
static pid_t soft_pid;

/* Reads n bytes at src: false if they are not all mapped. */
static bool safe_read(void *dst, const void *src, size_t n)
{
	struct iovec local = {dst, n}, remote = {(void *)src, n};
	return process_vm_readv(soft_pid, &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* Several fields of one object (or of a few) in one system call: each read
 * is {dst, base + off, size}, skipped when its offset is negative (a field
 * this version has not). False if any cannot be read. */
struct soft {
	void *dst;
	const char *base;
	int off;
	size_t size;
};

#define SOFT_MAX 6
static bool soft_reads(const struct soft *r, int n)
{
	struct iovec local[SOFT_MAX], remote[SOFT_MAX];
	size_t total = 0;
	int k = 0;
	for (int i = 0; i < n && k < SOFT_MAX; i++) {
		if (r[i].off < 0)
			continue;
		if (!r[i].base)
			return false;
		local[k] = (struct iovec){r[i].dst, r[i].size};
		remote[k] = (struct iovec){(void *)(r[i].base + r[i].off), r[i].size};
		total += r[i].size;
		k++;
	}
	return !k || process_vm_readv(soft_pid, local, (unsigned long)k, remote, (unsigned long)k,
				      0) == (ssize_t)total;
}

static bool safe_ptr(const void *base, int off, const char **out)
{
	return off >= 0 && safe_read(out, (const char *)base + off, sizeof(*out));
}

/* Checks the layout against the running interpreter, from its main thread
 * with the GIL held: NULL, or what failed. Each frame costs three system
 * calls: the frame's fields, its code object's, the types of the code
 * object's strings. */
static const char *check_layout(void)
{
	const char *ts = py.this_thread_state(), *f = NULL, *co = NULL, *fname = NULL, *name = NULL,
		   *lt = NULL;
	unsigned long tid;
	soft_pid = getpid();
	if (!ts)
		return "no thread state";
	if (!safe_read(&tid, ts + L.ts_thread_id, sizeof(tid)) || tid != (unsigned long)pthread_self())
		return "the thread state's thread id";
	if (!safe_ptr(ts, L.ts_frame, &f))
		return "the thread state's frame";
	if (L.cframe_cur >= 0 && f && !safe_ptr(f, L.cframe_cur, &f))
		return "the current frame";
	if (!f)
		return "no frame";
	const char *inner = NULL, *inner_code = NULL;
	int inner_off = 0;
	for (int depth = 0; f && depth < 256; depth++) {
		char owner = 0;
		const char *back = NULL, *ip = NULL;
		int lasti = 0, ft = 0;
		bool by_ptr = L.pos_kind == POS_INSTR_PTR;
		struct soft fr[] = {
			{&owner, f, L.f_owner, 1},
			{&back, f, L.f_back, sizeof(back)},
			{&co, f, L.f_code, sizeof(co)},
			{by_ptr ? (void *)&ip : (void *)&lasti, f, L.f_pos,
			 by_ptr ? sizeof(ip) : sizeof(lasti)},
		};
		if (!soft_reads(fr, 4))
			return "a frame's fields";
		if (L.f_owner >= 0 && owner == OWNER_CSTACK) {
			f = back;
			continue;
		}
		void *cot = NULL, *t[3] = {NULL, NULL, NULL};
		struct soft cr[] = {
			{&cot, co, OB_TYPE, sizeof(cot)},
			{&fname, co, L.co_filename, sizeof(fname)},
			{&name, co, L.co_name, sizeof(name)},
			{&lt, co, L.co_linetable, sizeof(lt)},
			{&ft, co, L.co_firsttraceable, sizeof(ft)},
		};
		if (!co || !soft_reads(cr, 5) || cot != py.code_type)
			return "a frame's code object";
		struct soft tr[] = {
			{&t[0], fname, OB_TYPE, sizeof(t[0])},
			{&t[1], name, OB_TYPE, sizeof(t[1])},
			{&t[2], lt, OB_TYPE, sizeof(t[2])},
		};
		if (!soft_reads(tr, 3) || t[0] != py.unicode_type || t[1] != py.unicode_type)
			return "a code object's names";
		if (t[2] != py.bytes_type)
			return "a code object's line table";
		if (!inner) {
			inner_off = by_ptr ? (int)(ip - (co + L.co_code))
					   : L.pos_kind == POS_LASTI_UNITS ? lasti * 2 : lasti;
			if (inner_off >= 2 * ft || L.co_firsttraceable < 0) {
				inner = f;
				inner_code = co;
			}
		}
		f = back;
	}
	if (!inner)
		return "no running frame";

	/* the interpreter's own answer for the running frame */
	void *fo = py.eval_get_frame();
	if (!fo)
		return "no frame object";
	if (L.minor <= 10 && fo != inner)
		return "the running frame";
	if (py.frame_get_code) {
		void *c = py.frame_get_code(fo);
		if (py.dec_ref && c)
			py.dec_ref(c);
		if (c != inner_code)
			return "the running frame's code object";
	}
	const unsigned char *t;
	uint32_t tlen = table_of(inner_code, &t);
	int line = mt_pyline(L.line_kind, t, tlen, *(const int32_t *)(inner_code + L.co_firstlineno),
			     inner_off);
	int want = py.frame_get_line(fo);
	if (line != want)
		return "the running frame's line";
	return NULL;
}

enum { DOMAIN_MEM = 1, DOMAIN_OBJ = 2 };

/* The at-exit snapshot from Python's own atexit, registered first so that
 * it runs after the program's handlers: the interpreter is still whole
 * (its objects, the census; an exit snapshot taken after Py_Finalize holds
 * nothing of the program's), and no slow C atexit handler runs after
 * finalisation (CPython 3.10 crashes then when daemon threads run). */
struct methoddef {
	const char *name;
	void *(*fn)(void *, void *);
	int flags;
	const char *doc;
};

static void *at_exit_py(void *self, void *args)
{
	(void)self;
	(void)args;
	mt__scan_from = mt__frame_caller_sp((uintptr_t)__builtin_frame_address(0));
	mt__exit_dump();
	py.inc_ref(py.none);
	return py.none;
}

static void register_at_exit(void)
{
	static struct methoddef def = {"memtrace_snapshot_at_exit", at_exit_py, 0x0004 /* METH_NOARGS */,
				       NULL};
	if (!mt__opt.at_exit || !py.import || !py.cfunction_new || !py.call_method_obj ||
	    !py.unicode_from || !py.inc_ref || !py.none || !py.dec_ref || !py.err_clear)
		return;
	void *mod = py.import("atexit");
	void *fn = mod ? py.cfunction_new(&def, NULL, NULL) : NULL;
	void *name = fn ? py.unicode_from("register") : NULL;
	void *r = name ? py.call_method_obj(mod, name, fn, NULL) : NULL;
	if (!r)
		py.err_clear(); /* the C atexit handler still writes it */
	void *refs[] = {r, name, fn, mod};
	for (size_t i = 0; i < 4; i++)
		if (refs[i])
			py.dec_ref(refs[i]);
}

static int install(void *arg)
{
	(void)arg;
	int busy = mt__thread_busy_swap(1);
	const char *why = check_layout();
	if (why) {
		mt__warn("python %d.%d: its memory layout is not the one memtrace knows (%s); "
			 "native frames only",
			 py_version >> 8, py_version & 255, why);
		__atomic_store_n(&mt__py_state, MT_PY_OFF, __ATOMIC_RELEASE);
		mt__thread_busy_swap(busy);
		return 0;
	}
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (dladdr1(py.eval_fn, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
		eval_lo = (uintptr_t)py.eval_fn;
		eval_hi = eval_lo + sym->st_size;
		mt__unwind_eval(eval_lo, eval_hi);
	}
	bucket_bits = BUCKET_BITS_MIN;
	buckets = mt__ialloc(sizeof(*buckets) << bucket_bits);
	if (!buckets) {
		__atomic_store_n(&mt__py_state, MT_PY_OFF, __ATOMIC_RELEASE);
		mt__thread_busy_swap(busy);
		return 0;
	}
	void **slot = (void **)((char *)py.code_type + TP_DEALLOC);
	code_dealloc_orig = *slot;
	*slot = (void *)code_dealloc;
	if (mt__opt.python_domains) {
		for (int d = DOMAIN_MEM; d <= DOMAIN_OBJ; d++) {
			mt_pyalloc_t *saved = mt__py_domain_saved(d), ours;
			py.get_allocator(d, saved);
			mt__py_domain_ours(d, &ours);
			py.set_allocator(d, &ours);
		}
	}
	__atomic_store_n(&mt__py_state, MT_PY_ON, __ATOMIC_RELEASE);
	register_at_exit();
	if (mt__opt.verbose)
		mt__warn("python %d.%d: Python frames on", py_version >> 8, py_version & 255);
	mt__thread_busy_swap(busy);
	return 0;
}

void mt__py_poll(void)
{
	if (!py.is_initialized())
		return;
	int expect = MT_PY_WAIT;
	if (!__atomic_compare_exchange_n(&mt__py_state, &expect, MT_PY_PENDING, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	if (py.add_pending_call(install, NULL) != 0)
		__atomic_store_n(&mt__py_state, MT_PY_WAIT, __ATOMIC_RELEASE); /* full: later */
}

#define SYM(field, name) (*(void **)&py.field = dlsym(RTLD_DEFAULT, name))

void mt__python_init(void)
{
	if (!mt__opt.python)
		return;
	if (!SYM(is_initialized, "Py_IsInitialized") || !SYM(get_version, "Py_GetVersion"))
		return; /* not a Python process */
	SYM(this_thread_state, "PyGILState_GetThisThreadState");
	SYM(add_pending_call, "Py_AddPendingCall");
	SYM(get_allocator, "PyMem_GetAllocator");
	SYM(set_allocator, "PyMem_SetAllocator");
	SYM(eval_get_frame, "PyEval_GetFrame");
	SYM(frame_get_line, "PyFrame_GetLineNumber");
	SYM(frame_get_code, "PyFrame_GetCode");
	SYM(dec_ref, "Py_DecRef");
	SYM(gil_check, "PyGILState_Check");
	SYM(getattr, "PyObject_GetAttrString");
	SYM(as_utf8, "PyUnicode_AsUTF8");
	SYM(err_clear, "PyErr_Clear");
	SYM(import, "PyImport_ImportModule");
	SYM(cfunction_new, "PyCFunction_NewEx");
	SYM(call_method_obj, "PyObject_CallMethodObjArgs");
	SYM(unicode_from, "PyUnicode_FromString");
	SYM(inc_ref, "Py_IncRef");
	py.none = dlsym(RTLD_DEFAULT, "_Py_NoneStruct");
	py.code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	py.unicode_type = dlsym(RTLD_DEFAULT, "PyUnicode_Type");
	py.bytes_type = dlsym(RTLD_DEFAULT, "PyBytes_Type");
	py.type_type = dlsym(RTLD_DEFAULT, "PyType_Type");
	py.eval_fn = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");

	const char *v = py.get_version();
	int major = 0, minor = 0;
	for (; *v >= '0' && *v <= '9'; v++)
		major = major * 10 + (*v - '0');
	if (*v == '.')
		for (v++; *v >= '0' && *v <= '9'; v++)
			minor = minor * 10 + (*v - '0');
	py_version = major << 8 | (minor & 255);
	const struct layout *l = NULL;
	for (size_t i = 0; major == 3 && i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			l = &layouts[i];
	if (!l || strstr(py.get_version(), "free-threading")) {
		mt__warn("python %d.%d%s: not a build memtrace reads (3.8 to 3.13, with the GIL); "
			 "native frames only",
			 major, minor, l ? " free-threading" : "");
		return;
	}
	if (!py.this_thread_state || !py.add_pending_call || !py.get_allocator ||
	    !py.set_allocator || !py.eval_get_frame || !py.frame_get_line || !py.code_type ||
	    !py.unicode_type || !py.bytes_type || !py.type_type || !py.eval_fn) {
		mt__warn("python %d.%d: the interpreter does not export what memtrace reads; "
			 "native frames only",
			 major, minor);
		return;
	}
	if (l != &layouts[MT_PY_ROW(l->minor)]) {
		mt__warn("python %d.%d: memtrace's layout table is out of order; native frames only",
			 major, minor);
		return;
	}
	L = *l;
	py_key_ok = pthread_key_create(&py_key, pytl_destructor) == 0;
	if (mt__opt.python_skew) { /* testing: a layout that is wrong */
		L.ts_frame += (int)mt__opt.python_skew;
		L.f_code += (int)mt__opt.python_skew;
	}
	__atomic_store_n(&mt__py_state, MT_PY_WAIT, __ATOMIC_RELEASE);
}

/* ---- the objects' types, for a snapshot ----
 *
 * A dump asks the main thread for a pending call and waits for it (at most
 * CENSUS_WAIT_MS): with the GIL held no Python object can be freed, so every
 * block the OBJ domain recorded can be read. Its type is the word after the
 * object's refcount, the object starting after the GC header and 3.11+'s
 * pre-header when its type has them; a candidate type is trusted only when
 * it lies in a loaded module or is itself a live object, its own type is
 * `type` (or a metaclass whose type is), and its flags put the object where
 * it was read. Per callsite and type: objects and bytes.
 */
#define CENSUS_WAIT_MS 500
#define TP_NAME 24
#define TP_BASICSIZE 32
#define TP_FLAGS 168
#define TPF_HAVE_GC (1ul << 14)
#define TPF_HEAPTYPE (1ul << 9)
#define TPF_MANAGED_DICT (1ul << 4)   /* 3.11+ */
#define TPF_MANAGED_WEAKREF (1ul << 3) /* 3.12+ */
#define TYPE_NAME_MAX 96
#define MAX_RANGES 512

enum { CENSUS_IDLE, CENSUS_ASKED, CENSUS_RUNNING, CENSUS_DONE, CENSUS_LATE };

struct tinfo {
	uintptr_t type; /* 0: empty slot */
	int off;	/* where its objects start in their block; -1: not a type */
	char name[TYPE_NAME_MAX];
};

struct cens {
	uintptr_t type;
	uint32_t site;
	uint64_t count, bytes;
};

static struct {
	int state;
	struct tinfo *types; /* open addressing */
	size_t ntypes_cap, ntypes;
	struct cens *v; /* open addressing by (site, type) */
	size_t cap, n;
	uint64_t hold_ns;
	uintptr_t lo[MAX_RANGES], hi[MAX_RANGES];
	int nranges;
	bool full; /* out of memory: the census is partial */
} C;

static int add_range(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	for (int i = 0; i < info->dlpi_phnum && C.nranges < MAX_RANGES; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD) {
			C.lo[C.nranges] = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
			C.hi[C.nranges++] =
				info->dlpi_addr + info->dlpi_phdr[i].p_vaddr + info->dlpi_phdr[i].p_memsz;
		}
	return 0;
}

/* Whether memory at t can be read: a loaded module's, or inside a live
 * object of the OBJ domain (a heap type: its block starts 16 bytes before). */
static bool readable_type(uintptr_t t)
{
	if (t < 4096 || (t & 7))
		return false;
	/* no t + 200 here: a word near 2^64 (a negative number in an object)
	 * wraps around and passed for readable */
	for (int i = 0; i < C.nranges; i++)
		if (C.lo[i] <= t && t < C.hi[i] && C.hi[i] - t >= 200)
			return true;
	uint64_t meta;
	return mt__heap_lookup((void *)(t - 16), &meta) &&
	       mt__meta_size(meta) >= 16 + TP_FLAGS + sizeof(unsigned long);
}

static bool is_type(uintptr_t t, int depth)
{
	if (!readable_type(t))
		return false;
	uintptr_t m = *(const uintptr_t *)(t + OB_TYPE);
	if (m == (uintptr_t)py.type_type)
		return true;
	return depth < 2 && is_type(m, depth + 1); /* a metaclass */
}

static size_t type_slot(uintptr_t t)
{
	size_t mask = C.ntypes_cap - 1, j = (size_t)((t >> 3) * 0x9E3779B97F4A7C15ull >> 40) & mask;
	for (; C.types[j].type; j = (j + 1) & mask)
		if (C.types[j].type == t)
			break;
	return j;
}

static bool types_grow(void)
{
	size_t cap = C.ntypes_cap * 2, oldcap = C.ntypes_cap;
	struct tinfo *old = C.types, *v = mt__map(cap * sizeof(*v));
	if (!v)
		return false;
	C.types = v;
	C.ntypes_cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].type)
			C.types[type_slot(old[i].type)] = old[i];
	mt__unmap(old, oldcap * sizeof(*old));
	return true;
}

/* A type already seen, or NULL. */
static struct tinfo *type_find(uintptr_t t)
{
	struct tinfo *ti = &C.types[type_slot(t)];
	return ti->type == t && t ? ti : NULL;
}

/* Checks a candidate and keeps it when it is a type: NULL when not (what
 * is not a type is not kept: such words are as many as the objects). */
/* A class's name as objgraph prints it with shortnames=False (module.Name),
 * from the interpreter itself: the census holds the GIL. */
static bool class_name(uintptr_t t, char *out, size_t cap)
{
	if (!py.getattr || !py.as_utf8 || !py.err_clear)
		return false;
	void *m = py.getattr((void *)t, "__module__");
	void *q = m ? py.getattr((void *)t, "__name__") : NULL;
	const char *ms = m && q ? py.as_utf8(m) : NULL;
	const char *qs = ms ? py.as_utf8(q) : NULL;
	bool ok = ms && qs;
	if (ok)
		mt__fmt(out, cap, "%s.%s", ms, qs);
	if (q && py.dec_ref)
		py.dec_ref(q);
	if (m && py.dec_ref)
		py.dec_ref(m);
	if (!ok)
		py.err_clear();
	return ok;
}

static struct tinfo *type_info(uintptr_t t)
{
	struct tinfo *ti = type_find(t);
	if (ti || !is_type(t, 0))
		return ti;
	if ((C.ntypes + 1) * 2 > C.ntypes_cap && !types_grow()) {
		C.full = true; /* the object goes uncounted: the census says so */
		return NULL;
	}
	ti = &C.types[type_slot(t)];
	ti->type = t;
	ti->off = -1;
	C.ntypes++;
	unsigned long flags = *(const unsigned long *)(t + TP_FLAGS);
	bool managed = (L.minor >= 11 && (flags & TPF_MANAGED_DICT)) ||
		       (L.minor >= 12 && (flags & TPF_MANAGED_WEAKREF));
	const char *name = *(const char *const *)(t + TP_NAME);
	char buf[TYPE_NAME_MAX];
	memset(buf, 0, sizeof(buf));
	if (!((flags & TPF_HEAPTYPE) && class_name(t, buf, sizeof(buf)))) {
		/* the name may be anywhere: read it the way that cannot fault,
		 * never across a page the string may not reach */
		for (size_t got = 0; name && got < sizeof(buf) - 1;) {
			uintptr_t a = (uintptr_t)name + got;
			size_t pg = mt__page_size(), chunk = pg - (a & (pg - 1));
			if (chunk > 16)
				chunk = 16;
			if (chunk > sizeof(buf) - 1 - got)
				chunk = sizeof(buf) - 1 - got;
			if (!safe_read(buf + got, (const void *)a, chunk) || memchr(buf + got, 0, chunk))
				break;
			got += chunk;
		}
	}
	buf[sizeof(buf) - 1] = '\0';
	if (!(flags & TPF_HEAPTYPE) && buf[0] && !strchr(buf, '.')) {
		/* a built-in type: objgraph's builtins.dict */
		char bare[TYPE_NAME_MAX];
		memcpy(bare, buf, sizeof(bare));
		mt__fmt(buf, sizeof(buf), "builtins.%s", bare);
	}
	size_t len = strnlen(buf, sizeof(buf)); /* a longer name is cut, not refused */
	if (!len)
		return ti;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			return ti;
	memcpy(ti->name, buf, len + 1);
	ti->off = ((flags & TPF_HAVE_GC) ? 16 : 0) + (managed ? 16 : 0);
	return ti;
}

static size_t cens_home(uint32_t site, uintptr_t type, size_t cap)
{
	return (size_t)((((uint64_t)site * 0x9E3779B97F4A7C15ull) ^ (type >> 3) * 0xff51afd7ed558ccdull) >>
			20) &
	       (cap - 1);
}

/* Twice the room, the entries moved over; false out of memory. */
static bool census_grow(void)
{
	size_t cap = C.cap * 2;
	struct cens *v = mt__map(cap * sizeof(*v));
	if (!v)
		return false;
	for (size_t i = 0; i < C.cap; i++) {
		if (!C.v[i].type)
			continue;
		size_t j = cens_home(C.v[i].site, C.v[i].type, cap);
		while (v[j].type)
			j = (j + 1) & (cap - 1);
		v[j] = C.v[i];
	}
	mt__unmap(C.v, C.cap * sizeof(*C.v));
	C.v = v;
	C.cap = cap;
	return true;
}

static void census_add(uint32_t site, uintptr_t type, uint64_t size)
{
	size_t mask = C.cap - 1;
	size_t j = cens_home(site, type, C.cap);
	for (; C.v[j].type; j = (j + 1) & mask)
		if (C.v[j].site == site && C.v[j].type == type) {
			C.v[j].count++;
			C.v[j].bytes += size;
			return;
		}
	if ((C.n + 1) * 10 > C.cap * 7) {
		if (!census_grow()) {
			C.full = true; /* the census says it is partial */
			return;
		}
		census_add(site, type, size);
		return;
	}
	C.v[j] = (struct cens){type, site, 1, size};
	C.n++;
}

static void census_visit(uintptr_t p, uint64_t size, uint32_t site, void *arg)
{
	(void)arg;
	static const int offs[] = {0, 16, 32};
	/* a type seen already first (one probe each), then the candidates */
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < 3; k++) {
			int off = offs[k];
			if (size < (uint64_t)off + 16)
				continue;
			uintptr_t t = *(const uintptr_t *)(p + (uintptr_t)off + OB_TYPE);
			struct tinfo *ti = pass ? type_info(t) : type_find(t);
			if (ti && ti->off == off &&
			    *(const int64_t *)(t + TP_BASICSIZE) <= (int64_t)(size - (uint64_t)off)) {
				census_add(site, t, size);
				return;
			}
		}
}

static bool census_tables(void)
{
	if (!C.types) {
		C.ntypes_cap = 1u << 14;
		C.types = mt__map(C.ntypes_cap * sizeof(*C.types));
	}
	if (!C.v) {
		C.cap = 1u << 16;
		C.v = mt__map(C.cap * sizeof(*C.v));
	}
	if (!C.types || !C.v)
		return false;
	memset(C.types, 0, C.ntypes_cap * sizeof(*C.types));
	memset(C.v, 0, C.cap * sizeof(*C.v));
	C.ntypes = C.n = 0;
	C.full = false;
	return true;
}

static int census_run(void *arg)
{
	(void)arg;
	int expect = CENSUS_ASKED;
	if (!py.is_initialized()) {
		/* finalising (pending calls are run one last time): objects are
		 * going, the dump goes without a census */
		__atomic_compare_exchange_n(&C.state, &expect, CENSUS_LATE, false, __ATOMIC_ACQ_REL,
					    __ATOMIC_ACQUIRE);
		return 0;
	}
	if (!__atomic_compare_exchange_n(&C.state, &expect, CENSUS_RUNNING, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return 0; /* the dump gave up waiting */
	int busy = mt__thread_busy_swap(1);
	uint64_t t0 = mt__now_ns(CLOCK_MONOTONIC);
	soft_pid = getpid();
	C.nranges = 0;
	dl_iterate_phdr(add_range, NULL);
	if (census_tables())
		mt__heap_foreach_pyobj(census_visit, NULL);
	C.hold_ns = mt__now_ns(CLOCK_MONOTONIC) - t0;
	mt__thread_busy_swap(busy);
	__atomic_store_n(&C.state, CENSUS_DONE, __ATOMIC_RELEASE);
	return 0;
}

bool mt__py_census_partial(void)
{
	return C.full;
}

int mt__py_census(void)
{
	/* sampled: too few objects, and types, are recorded to read them */
	if (__atomic_load_n(&mt__py_state, __ATOMIC_ACQUIRE) != MT_PY_ON || !py.is_initialized() ||
	    mt__sample_mean || !mt__opt.python_domains)
		return MT_CENSUS_NONE;
	__atomic_store_n(&C.state, CENSUS_ASKED, __ATOMIC_RELEASE);
	if (py.gil_check && py.this_thread_state() && py.gil_check() == 1) {
		/* a snapshot from a thread that holds the GIL (the API called
		 * through ctypes.PyDLL): the census runs here */
		census_run(NULL);
		return MT_CENSUS_DONE;
	}
	if (getpid() == (pid_t)syscall(SYS_gettid)) {
		/* the main thread itself, in C: no pending call can run */
		__atomic_store_n(&C.state, CENSUS_IDLE, __ATOMIC_RELEASE);
		return MT_CENSUS_LATE;
	}
	if (py.add_pending_call(census_run, NULL) != 0) {
		__atomic_store_n(&C.state, CENSUS_IDLE, __ATOMIC_RELEASE);
		return MT_CENSUS_LATE;
	}
	struct timespec ms = {0, 1000000};
	for (int i = 0; i < CENSUS_WAIT_MS; i++) {
		if (__atomic_load_n(&C.state, __ATOMIC_ACQUIRE) == CENSUS_DONE)
			return MT_CENSUS_DONE;
		nanosleep(&ms, NULL);
	}
	int expect = CENSUS_ASKED;
	if (__atomic_compare_exchange_n(&C.state, &expect, CENSUS_LATE, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return MT_CENSUS_LATE; /* the main thread runs no Python code now */
	while (__atomic_load_n(&C.state, __ATOMIC_ACQUIRE) != CENSUS_DONE)
		nanosleep(&ms, NULL); /* running: it ends */
	return MT_CENSUS_DONE;
}

uint64_t mt__py_census_hold_ns(void)
{
	return C.hold_ns;
}

bool mt__py_census_next(size_t *at, uint32_t *site, const char **name, uint64_t *count,
			uint64_t *bytes)
{
	for (; C.v && *at < C.cap; (*at)++) {
		const struct cens *e = &C.v[*at];
		if (!e->type)
			continue;
		struct tinfo *ti = type_find(e->type);
		(*at)++;
		*site = e->site;
		*name = ti ? ti->name : "?";
		*count = e->count;
		*bytes = e->bytes;
		return true;
	}
	return false;
}

/* ---- for the snapshot ---- */

void mt__py_describe(uint32_t *version, uint64_t *lo, uint64_t *hi)
{
	*version = (uint32_t)py_version;
	*lo = eval_lo;
	*hi = eval_hi;
}

uint32_t mt__py_code_count(void)
{
	return __atomic_load_n(&code_next, __ATOMIC_ACQUIRE);
}

bool mt__py_code_get(uint32_t id, mt_pycode_t *out)
{
	struct pycode **chunk = id ? __atomic_load_n(&code_chunks[id / CODE_CHUNK], __ATOMIC_ACQUIRE)
				   : NULL;
	struct pycode *e = chunk ? __atomic_load_n(&chunk[id % CODE_CHUNK], __ATOMIC_ACQUIRE) : NULL;
	if (!e)
		return false;
	out->first = e->first;
	out->kind = L.line_kind;
	out->file = e->data;
	out->flen = e->flen;
	out->name = e->data + e->flen;
	out->nlen = e->nlen;
	out->table = (const unsigned char *)e->data + e->flen + e->nlen;
	out->tlen = e->tlen;
	return true;
}

void mt__py_lock(void)
{
	pthread_mutex_lock(&code_lock);
}

void mt__py_unlock(void)
{
	pthread_mutex_unlock(&code_lock);
}

void mt__py_atfork_child(void)
{
	pthread_mutex_init(&code_lock, NULL);
}
