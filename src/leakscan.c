/* SPDX-License-Identifier: MIT */
/*
 * leakscan.c - which of the blocks still live at the end the program can
 * still reach: a conservative scan for pointers, as valgrind memcheck and
 * LeakSanitizer do, with memcheck's four classes (format.h).
 *
 * How. The dump takes every table lock, blocks its signals and clones the
 * process without CLONE_VM (a fork that runs no atfork handler and sends
 * no SIGCHLD); then it lets the program go on. The child holds a frozen,
 * copy-on-write image of the whole address space at one instant, so the
 * program's threads need not be stopped and cannot change a block under
 * the scan; a fault in the scan kills only the child. The child reads the
 * tables and /proc/self/maps, scans, writes each callsite's figures into a
 * shared mapping and leaves with exit_group. The parent waits for it
 * (bounded) and writes the figures into the snapshot.
 *
 * Roots: every readable and writable private mapping (the loaded objects'
 * data and bss, anonymous mappings, thread stacks), except
 *   - memtrace's own memory (ialloc.c's list) and its own data segments;
 *   - glibc's heaps (the brk heap and the 64 MiB arena heaps): their blocks
 *     are scanned only when reached, their free chunks never;
 *   - a live thread's stack below its stack pointer, where it is known: the
 *     dumping thread's (its registers spilled first), and a thread blocked
 *     in a system call (/proc/self/task/TID/syscall); a running thread's
 *     whole stack is scanned;
 *   - the stacks of threads that have exited, which glibc keeps mapped for
 *     reuse (heap.c remembers an address on each);
 *   - shared and device mappings.
 * In other mappings that hold blocks (pymalloc's arenas, a large block's
 * own mapping) the words between the blocks are roots. Not seen: the
 * registers of other threads.
 *
 * Classes, by memcheck's rules: reachable through a chain of start
 * pointers (or an interior pointer memcheck's heuristics accept: stdstring,
 * length64, newarray, multipleinheritance) from the roots is "still
 * reachable"; through any chain with an interior pointer "possibly lost";
 * then each block not reached, in address order, leads a clique: what it
 * reaches that was not reached is "indirectly lost", the leader
 * "definitely lost".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "arch.h"

enum { ST_UNREACHED = 0, ST_INDIRECT, ST_POSSIBLE, ST_REACHABLE, ST_PENDING = 4 };

#define MAX_THREADS 4096
#define MAX_MARKS 8192
#define MAX_EXCL 64
#define GLIBC_HEAP (64ull << 20) /* HEAP_MAX_SIZE on 64-bit */

struct lmap {
	uintptr_t lo, hi;
	uint8_t r, w, x, shared, file, skip;
	uint8_t heap;	/* a glibc heap: blocks only */
	uintptr_t from; /* scanned from here (a stack pointer), else lo */
};

struct range {
	uintptr_t lo, hi;
};

/* What the parent finds out before the clone, and the child's answer. */
struct out {
	uint32_t status; /* MT_SCAN_*; 0 while the child runs */
	uint32_t threads, no_sp;
	uint64_t ns, blocks, root_bytes;
	char note[160];
	uint64_t sites[][2 * MT_LEAK_NCLASS]; /* by site id: bytes, blocks per class */
};

static struct {
	struct out *out;
	size_t out_len;
	uint32_t nsites;
	uintptr_t sps[MAX_THREADS];
	size_t nsps;
	uintptr_t own_sp; /* on memtrace's dump thread's stack, or 0 */
	uint32_t threads, no_sp;
	struct range excl[MAX_EXCL];
	size_t nexcl;
	uintptr_t live[MAX_MARKS], dead[MAX_MARKS];
	size_t nlive, ndead;
	int status;
	char note[160];
	bool python; /* the interpreter's object domain gave blocks: CPython */
} P;

/* ---- the child's state ---- */
#define BSIZE(b) ((b)->meta >> MT_SCAN_SIZE_SHIFT)
#define BSITE(b) ((uint32_t)((b)->meta & 0xffffff))
#define BSTATE(b) ((unsigned)((b)->meta >> 24) & 7)
static inline void set_state(mt_scan_block_t *b, unsigned st)
{
	b->meta = (b->meta & ~(7ull << 24)) | (uint64_t)st << 24;
}
static mt_scan_block_t *B;
static size_t NB;
static struct lmap *M;
static size_t NM;
static uint32_t *stk;
static size_t nstk, capstk;
static uintptr_t bmin, bmax;
static uint64_t root_bytes;
static bool stk_lost;

static void note(const char *fmt, const char *arg)
{
	mt__fmt(P.note, sizeof(P.note), fmt, arg);
}

/* ---- sorting: LSD radix on the address, 16 bits a pass ---- */

/* A few blocks (every short-lived process's final snapshot): a heap sort in
 * place, where the radix sort's 256 KiB of counts, cleared each pass, cost
 * more than the rest of the scan. */
#define SMALL_SORT 4096
static void sift(mt_scan_block_t *v, size_t at, size_t n)
{
	for (size_t c; (c = 2 * at + 1) < n; at = c) {
		if (c + 1 < n && v[c + 1].lo > v[c].lo)
			c++;
		if (v[at].lo >= v[c].lo)
			return;
		mt_scan_block_t t = v[at];
		v[at] = v[c];
		v[c] = t;
	}
}

static void heap_sort(mt_scan_block_t *v, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(v, i, n);
	for (size_t end = n; end-- > 1;) {
		mt_scan_block_t t = v[0];
		v[0] = v[end];
		v[end] = t;
		sift(v, 0, end);
	}
}

static bool sort_blocks(void)
{
	if (NB < 2)
		return true;
	if (NB <= SMALL_SORT) {
		heap_sort(B, NB);
		return true;
	}
	mt_scan_block_t *tmp = mt__map(NB * sizeof(*B));
	uint32_t *count = mt__map(65536 * sizeof(uint32_t));
	if (!tmp || !count) {
		mt__unmap(tmp, NB * sizeof(*B));
		mt__unmap(count, 65536 * sizeof(uint32_t));
		return false;
	}
	uintptr_t all = 0;
	for (size_t i = 0; i < NB; i++)
		all |= B[i].lo;
	mt_scan_block_t *src = B, *dst = tmp;
	for (int shift = 0; shift < 64; shift += 16) {
		if (!(all >> shift))
			break;
		memset(count, 0, 65536 * sizeof(uint32_t));
		for (size_t i = 0; i < NB; i++)
			count[(src[i].lo >> shift) & 0xffff]++;
		uint32_t sum = 0;
		for (size_t k = 0; k < 65536; k++) {
			uint32_t c = count[k];
			count[k] = sum;
			sum += c;
		}
		for (size_t i = 0; i < NB; i++)
			dst[count[(src[i].lo >> shift) & 0xffff]++] = src[i];
		mt_scan_block_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != B)
		memcpy(B, src, NB * sizeof(*B));
	mt__unmap(tmp, NB * sizeof(*B));
	mt__unmap(count, 65536 * sizeof(uint32_t));
	return true;
}

/* The index of the first block starting above p (NB: none). */
static inline size_t first_above(uintptr_t p)
{
	size_t lo = 0, hi = NB;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (B[mid].lo <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The block holding address p, or -1. */
static inline long block_of(uintptr_t p)
{
	if (p < bmin || p >= bmax)
		return -1;
	size_t i = first_above(p);
	if (i == 0)
		return -1;
	const mt_scan_block_t *b = &B[i - 1];
	uint64_t size = BSIZE(b);
	if (p - b->lo < size || (size == 0 && p == b->lo))
		return (long)(i - 1);
	return -1;
}

/* ---- the mappings ---- */
static const struct lmap *map_of(uintptr_t p)
{
	size_t lo = 0, hi = NM;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (M[mid].hi <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < NM && M[lo].lo <= p ? &M[lo] : NULL;
}

static uintptr_t hex(const char **s)
{
	uintptr_t v = 0;
	for (;; (*s)++) {
		char c = **s;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v << 4 | (uintptr_t)d;
	}
}

/* Reads a /proc file whole into memory of its own: its length, or -1. */
static ssize_t slurp(const char *path, char **buf, size_t *cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (;;) {
		if (len + 4096 > *cap) {
			size_t ncap = *cap ? *cap * 2 : 1u << 16;
			char *n = mt__map(ncap);
			if (!n) {
				close(fd);
				return -1;
			}
			if (*buf) {
				memcpy(n, *buf, len);
				mt__unmap(*buf, *cap);
			}
			*buf = n;
			*cap = ncap;
		}
		ssize_t r = read(fd, *buf + len, *cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	(*buf)[len] = '\0';
	return (ssize_t)len;
}

static bool read_maps(void)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len = slurp("/proc/self/maps", &buf, &cap);
	if (len < 0) {
		note("cannot read /proc/self/maps", NULL);
		return false;
	}
	size_t lines = 0;
	for (ssize_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	/* buf stays mapped while the scan runs: its mapping is among those
	 * read, and memtrace's own, so it is left out, not read unmapped */
	M = mt__map((lines + 1) * sizeof(*M));
	if (!M)
		return false;
	for (const char *s = buf; *s;) {
		const char *end = strchr(s, '\n');
		if (!end)
			end = s + strlen(s);
		struct lmap m = {0};
		m.lo = hex(&s);
		if (*s == '-')
			s++;
		m.hi = hex(&s);
		if (*s == ' ' && end - s > 5) {
			m.r = s[1] == 'r';
			m.w = s[2] == 'w';
			m.x = s[3] == 'x';
			m.shared = s[4] == 's';
			s += 5;
			/* offset, device, inode, then the path */
			for (int f = 0; f < 3 && s < end; f++) {
				while (s < end && *s == ' ')
					s++;
				const char *t = s;
				while (s < end && *s != ' ')
					s++;
				if (f == 2)
					m.file = !(s - t == 1 && *t == '0');
			}
			while (s < end && *s == ' ')
				s++;
			if (end - s >= 6 && !strncmp(s, "[heap]", 6))
				m.heap = 1;
			if (m.file && end - s >= 5 && !strncmp(s, "/dev/", 5))
				m.skip = 1; /* a device: reading it may do things */
			m.from = m.lo;
			if (m.hi > m.lo)
				M[NM++] = m;
		}
		s = *end ? end + 1 : end;
	}
	return true;
}

/* A glibc arena heap: 64 MiB aligned, starting with its heap_info
 * {ar_ptr, prev, size, mprotect_size}, the arena and the sizes plausible. */
static bool glibc_heap(const struct lmap *m)
{
	if (m->file || (m->lo & (GLIBC_HEAP - 1)) || m->hi - m->lo > GLIBC_HEAP || !m->r || !m->w)
		return false;
	const uintptr_t *h = (const uintptr_t *)m->lo;
	uintptr_t ar = h[0], size = h[2], mprot = h[3];
	const struct lmap *am = map_of(ar);
	return am && am->w && size <= mprot && mprot <= GLIBC_HEAP &&
	       size >= m->hi - m->lo - mt__page_size() && (size & (mt__page_size() - 1)) == 0;
}

static void classify_maps(void)
{
	for (size_t i = 0; i < NM; i++) {
		struct lmap *m = &M[i];
		if (!m->r || !m->w || m->shared)
			m->skip = 1;
		else if (!m->heap)
			m->heap = glibc_heap(m);
	}
	/* dead thread stacks: a remembered address, no live thread in them */
	for (size_t i = 0; i < P.ndead; i++) {
		struct lmap *m = (struct lmap *)map_of(P.dead[i]);
		if (m && !m->heap)
			m->skip |= 2;
	}
	for (size_t i = 0; i < P.nlive; i++) {
		struct lmap *m = (struct lmap *)map_of(P.live[i]);
		if (m)
			m->skip &= (uint8_t)~2;
	}
	if (P.own_sp) {
		struct lmap *m = (struct lmap *)map_of(P.own_sp);
		if (m)
			m->skip = 1;
	}
	for (size_t i = 0; i < P.nsps; i++) {
		struct lmap *m = (struct lmap *)map_of(P.sps[i]);
		if (m) {
			m->skip &= (uint8_t)~2;
			if (P.sps[i] > m->from)
				m->from = P.sps[i] & ~(uintptr_t)7;
		}
	}
}

/* ---- marking ---- */
static void push(size_t i)
{
	if (BSTATE(&B[i]) & ST_PENDING)
		return;
	if (nstk == capstk) {
		size_t ncap = capstk ? capstk * 2 : 1u << 16;
		uint32_t *n = mt__map(ncap * sizeof(*n));
		if (!n) {
			stk_lost = true;
			return;
		}
		if (stk) {
			memcpy(n, stk, nstk * sizeof(*n));
			mt__unmap(stk, capstk * sizeof(*stk));
		}
		stk = n;
		capstk = ncap;
	}
	set_state(&B[i], BSTATE(&B[i]) | ST_PENDING);
	stk[nstk++] = (uint32_t)i;
}

/* Two function pointers among the first 20 words at p: a vtable. */
static bool is_vtable(uintptr_t p)
{
	if ((p & 7) || p < 4096)
		return false;
	const struct lmap *m = map_of(p);
	if (!m || !m->file || !m->r)
		return false;
	int fns = 0;
	for (uintptr_t q = p; q + 8 <= m->hi && q < p + 20 * 8; q += 8) {
		uintptr_t fn = *(const uintptr_t *)q;
		if (!fn)
			continue;
		const struct lmap *f = map_of(fn);
		if (!f || !f->file || !f->x)
			return false;
		if (++fns == 2)
			return true;
	}
	return false;
}

/* A CPython object at p: ob_type, its type and so on reach, within three
 * steps, a type that is its own type (PyType_Type), every word read from a
 * readable mapping. */
static bool is_pyobject(uintptr_t p)
{
	uintptr_t t = p;
	for (int i = 0; i < 4; i++) {
		const struct lmap *m = (t & 7) ? NULL : map_of(t);
		if (!m || !m->r || t + 16 > m->hi)
			return false;
		uintptr_t next = *(const uintptr_t *)(t + 8);
		if (i > 0 && next == t)
			return true;
		t = next;
	}
	return false;
}

/* memcheck's heuristics: an interior pointer p to block b taken for a
 * start pointer. */
static bool memcheck_heuristic(uintptr_t p, const mt_scan_block_t *b)
{
	const uint64_t *w = (const uint64_t *)b->lo;
	uint64_t size = BSIZE(b);
	if (size >= 24 && p == b->lo + 24 && 24 + w[1] + 1 == size && w[0] <= w[1])
		return true; /* stdstring: length, capacity, refcount, chars */
	if (size >= 8 && p == b->lo + 8) {
		if (w[0] > 0 && size - 8 == w[0])
			return true; /* length64 */
		if (w[0] > 0 && (size - 8) % w[0] == 0)
			return true; /* newarray */
	}
	if (!(p & 7) && p + 8 <= b->lo + size && size >= 8) {
		uintptr_t inner = *(const uintptr_t *)p, first = w[0];
		if (!(inner & 7) && inner >= 4096 && !(first & 7) && first >= 4096 &&
		    is_vtable(inner) && is_vtable(first))
			return true; /* multipleinheritance */
	}
	return false;
}

/* CPython's: where the interpreter points into its own blocks. Only in
 * CPython (its object domain gave blocks), so no C program's pointer
 * counts; any block there, since with PYTHONMALLOC=malloc the objects made
 * before memtrace wrapped the domains came through malloc. */
static bool python_heuristic(uintptr_t p, const mt_scan_block_t *b)
{
	uint64_t size = BSIZE(b), off = p - b->lo;
	/* an object past what its allocation puts before it: the collector's
	 * 16-byte header and, from 3.11, the managed dict's (3.12: and weak
	 * references') two words */
	if ((off == 16 || off == 32) && off + 16 <= size && is_pyobject(p))
		return true;
	/* the collector's links point at its header, after those two words */
	if (off == 16 && off + 32 <= size && is_pyobject(p + 16))
		return true;
	/* 3.11 and 3.12 keep an object's attribute values in an array after a
	 * prefix whose last byte is the prefix's size; 3.12 points at it less
	 * one (_PyDictOrValues_SetValues), the low bits saying "values" */
	uintptr_t v = (p & 7) == 7 ? p + 1 : p;
	return !(v & 7) && v > b->lo && v - b->lo <= 256 && v < b->lo + size &&
	       *(const uint8_t *)(v - 1) == v - b->lo;
}

static bool heuristic(uintptr_t p, const mt_scan_block_t *b)
{
	return (P.python && python_heuristic(p, b)) || memcheck_heuristic(p, b);
}

static inline void reach(uintptr_t p, bool prior_definite)
{
	long j = block_of(p);
	if (j < 0)
		return;
	mt_scan_block_t *b = &B[j];
	unsigned st = BSTATE(b) & 3;
	if (st == ST_REACHABLE)
		return;
	bool start = p == b->lo || heuristic(p, b);
	if (start && prior_definite) {
		set_state(b, (BSTATE(b) & ST_PENDING) | ST_REACHABLE);
		push((size_t)j);
	} else if (st == ST_UNREACHED) {
		set_state(b, (BSTATE(b) & ST_PENDING) | ST_POSSIBLE);
		push((size_t)j);
	}
}

static inline void reach_clique(uintptr_t p, size_t leader)
{
	long j = block_of(p);
	if (j < 0 || (size_t)j == leader || (BSTATE(&B[j]) & 3) != ST_UNREACHED)
		return;
	set_state(&B[j], (BSTATE(&B[j]) & ST_PENDING) | ST_INDIRECT);
	push((size_t)j);
}

/* The aligned words wholly inside [lo, hi). */
static void scan_words(uintptr_t lo, uintptr_t hi, bool definite, long leader)
{
	lo = (lo + 7) & ~(uintptr_t)7;
	hi &= ~(uintptr_t)7;
	for (uintptr_t a = lo; a < hi; a += 8) {
		uintptr_t v = *(const uintptr_t *)a;
		if (v < bmin || v >= bmax)
			continue;
		if (leader < 0)
			reach(v, definite);
		else
			reach_clique(v, (size_t)leader);
	}
}

/* Roots are read in place: a page that faults (a file mapping past its
 * file's end, a guard region) gets a zero page from on_fault. */
static void scan_pages(uintptr_t lo, uintptr_t hi)
{
	root_bytes += hi - lo;
	scan_words(lo, hi, true, -1);
}

/* Only the pages the program ever wrote can hold its pointers: a page
 * neither present nor swapped out (/proc/self/pagemap bits 63 and 62) is
 * one it never touched (zero, or as the file has it), and is skipped; the
 * untouched rest of a thread's 8 MiB stack, a reserved heap. */
static int pagemap_fd = -2;

static void scan_root(uintptr_t lo, uintptr_t hi)
{
	if (hi <= lo)
		return;
	if (pagemap_fd == -2)
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	const uintptr_t pg = mt__page_size();
	if (pagemap_fd < 0 || hi - lo <= 16 * pg) {
		scan_pages(lo, hi);
		return;
	}
	static uint64_t ent[512];
	uintptr_t run = 0; /* start of the current run of touched pages, 0: none */
	for (uintptr_t page = lo & ~(pg - 1); page < hi;) {
		size_t n = (size_t)((hi - page + pg - 1) / pg);
		if (n > 512)
			n = 512;
		ssize_t got = pread(pagemap_fd, ent, n * 8, (off_t)(page / pg * 8));
		if (got < 8) {
			/* unreadable: the rest as it is */
			scan_pages(run ? run : page > lo ? page : lo, hi);
			return;
		}
		n = (size_t)got / 8;
		for (size_t k = 0; k < n; k++, page += pg) {
			bool touched = (ent[k] >> 62) & 3;
			if (touched && !run)
				run = page > lo ? page : lo;
			else if (!touched && run) {
				scan_pages(run, page);
				run = 0;
			}
		}
	}
	if (run)
		scan_pages(run, hi);
}

static void drain(long leader)
{
	while (nstk) {
		size_t i = stk[--nstk];
		set_state(&B[i], BSTATE(&B[i]) & 3);
		bool definite = BSTATE(&B[i]) != ST_POSSIBLE;
		scan_words(B[i].lo, B[i].lo + BSIZE(&B[i]), definite, leader);
	}
}

/* [lo, hi) minus memtrace's own ranges, as roots. */
static struct range *own;
static size_t nown, capown;

static void own_add(uintptr_t lo, uintptr_t len, void *arg)
{
	(void)arg;
	if (nown < capown)
		own[nown++] = (struct range){lo, lo + len};
}

static int range_cmp_sort(void)
{
	/* insertion sort: a few thousand ranges at most, mostly in order */
	for (size_t i = 1; i < nown; i++) {
		struct range r = own[i];
		size_t j = i;
		for (; j > 0 && own[j - 1].lo > r.lo; j--)
			own[j] = own[j - 1];
		own[j] = r;
	}
	return 0;
}

static void scan_minus_own(uintptr_t lo, uintptr_t hi)
{
	/* the first own range that ends above lo */
	size_t a = 0, b = nown;
	while (a < b) {
		size_t mid = (a + b) / 2;
		if (own[mid].hi <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (size_t k = a; k < nown && own[k].lo < hi && lo < hi; k++) {
		if (own[k].lo > lo)
			scan_root(lo, own[k].lo);
		if (own[k].hi > lo)
			lo = own[k].hi;
	}
	if (lo < hi)
		scan_root(lo, hi);
}

/* The roots of one mapping: all of it from `from`, or, where it holds
 * blocks and is not a glibc heap, the words between them. */
static void scan_map(const struct lmap *m)
{
	if (m->skip)
		return;
	if (m->heap)
		return;
	size_t a = m->from ? first_above(m->from - 1) : 0; /* the first at or above from */
	uintptr_t at = m->from;
	for (size_t k = a; k < NB && B[k].lo < m->hi; k++) {
		scan_minus_own(at, B[k].lo);
		uintptr_t end = B[k].lo + (BSIZE(&B[k]) ? BSIZE(&B[k]) : 1);
		if (end > at)
			at = end;
	}
	scan_minus_own(at, m->hi);
}

/* A page that faults when read (a guard region inside a writable mapping,
 * a file mapping past its file's end) holds no pointer: the child, whose
 * memory is its own copy, maps a zero page there and reads on. */
static unsigned long faults;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	uintptr_t pg = mt__page_size(), page = (uintptr_t)si->si_addr & ~(pg - 1);
	if (++faults > 4096 || syscall(SYS_mmap, page, pg, PROT_READ,
				       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -1)
		syscall(SYS_exit_group, 3);
}

static void child(void)
{
	uint64_t t0 = mt__now_ns(CLOCK_MONOTONIC);
	struct out *o = P.out;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigset_t faults_only;
	sigemptyset(&faults_only);
	sigaddset(&faults_only, SIGSEGV);
	sigaddset(&faults_only, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &faults_only, NULL);
	size_t cap = mt__heap_count_unlocked();
	B = mt__map((cap + 1) * sizeof(*B));
	capown = 1u << 16;
	own = mt__map(capown * sizeof(*own));
	if (!B || !own) {
		note("out of memory for the scan", NULL);
		goto fail;
	}
	NB = mt__heap_copy_unlocked(B, cap);
	if (!sort_blocks()) {
		note("out of memory for the scan", NULL);
		goto fail;
	}
	for (size_t i = 0; i < NB && !P.python; i++)
		P.python = (B[i].meta & MT_SCAN_PYOBJ) != 0;
	bmin = NB ? B[0].lo : 1;
	bmax = NB ? B[NB - 1].lo + BSIZE(&B[NB - 1]) + 1 : 0;
	if (!read_maps())
		goto fail;
	/* memtrace's mappings as the maps were read (the child's own too);
	 * mapped later (the mark stack) is not among the maps */
	if (!mt__own_foreach(own_add, NULL)) {
		note("memtrace's own memory was not all recorded", NULL);
		goto fail;
	}
	for (size_t i = 0; i < P.nexcl && nown < capown; i++)
		own[nown++] = P.excl[i];
	range_cmp_sort();
	classify_maps();

	for (size_t i = 0; i < NM; i++)
		scan_map(&M[i]);
	drain(-1);
	for (size_t i = 0; i < NB; i++)
		if ((BSTATE(&B[i]) & 3) == ST_UNREACHED) {
			push(i);
			drain((long)i);
		}
	if (stk_lost) {
		note("out of memory for the mark stack", NULL);
		goto fail;
	}
	static const int cls[4] = {MT_LEAK_DEFINITE, MT_LEAK_INDIRECT, MT_LEAK_POSSIBLE,
				   MT_LEAK_REACHABLE};
	for (size_t i = 0; i < NB; i++) {
		uint32_t s = BSITE(&B[i]);
		if (s >= P.nsites)
			continue;
		int c = cls[BSTATE(&B[i]) & 3];
		o->sites[s][2 * c] += BSIZE(&B[i]);
		o->sites[s][2 * c + 1]++;
	}
	o->blocks = NB;
	o->root_bytes = root_bytes;
	o->ns = mt__now_ns(CLOCK_MONOTONIC) - t0;
	memcpy(o->note, P.note, sizeof(o->note));
	__atomic_store_n(&o->status, MT_SCAN_DONE, __ATOMIC_RELEASE);
	syscall(SYS_exit_group, 0);
fail:
	memcpy(o->note, P.note, sizeof(o->note));
	__atomic_store_n(&o->status, MT_SCAN_FAILED, __ATOMIC_RELEASE);
	syscall(SYS_exit_group, 1);
}

/* ---- the parent's side ---- */

/* Our own object's writable segments: its tables are not the program's. */
static int own_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (!mt__phdr_holds(info, (uintptr_t)arg))
		return 0;
	for (int i = 0; i < info->dlpi_phnum && P.nexcl < MAX_EXCL; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		uintptr_t pg = mt__page_size();
		uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(pg - 1);
		uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + pg - 1) & ~(pg - 1);
		P.excl[P.nexcl++] = (struct range){lo, hi};
	}
	return 1;
}

struct thread_walk {
	pid_t me;
	int retries;
};

/* One entry of /proc/self/task: a thread, and its stack pointer when it is
 * blocked in a system call. */
static bool thread_seen(int fd, const char *name, void *arg)
{
	struct thread_walk *w = arg;
	(void)fd;
	if (name[0] < '0' || name[0] > '9')
		return true;
	P.threads++;
	long tid = 0;
	for (const char *p = name; *p >= '0' && *p <= '9'; p++)
		tid = tid * 10 + (*p - '0');
	if (tid == w->me)
		return true;
	char path[64], line[256];
	mt__fmt(path, sizeof(path), "/proc/self/task/%ld/syscall", tid);
	/* "running" may be a thread on its way into a wait: again, a
	 * millisecond later, twice at most, eight times in all */
	ssize_t len = -1;
	for (int tries = 0; tries < 3; tries++) {
		if (tries && w->retries++ >= 8)
			break;
		int sfd = open(path, O_RDONLY | O_CLOEXEC);
		len = sfd >= 0 ? read(sfd, line, sizeof(line) - 1) : -1;
		if (sfd >= 0)
			close(sfd);
		if (len < 7 || strncmp(line, "running", 7) != 0 || tries == 2)
			break;
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	if (len <= 0) {
		P.no_sp++;
		return true;
	}
	line[len] = '\0';
	/* "nr a1 .. a6 sp pc", or "-1 sp pc": the one before last */
	const char *f[10];
	int nf = 0;
	for (char *p = line; *p && nf < 10;) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (!*p)
			break;
		f[nf++] = p;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	if (nf < 3 || strncmp(f[0], "running", 7) == 0) {
		P.no_sp++;
		return true;
	}
	const char *sp = f[nf - 2];
	if (sp[0] == '0' && sp[1] == 'x')
		sp += 2;
	uintptr_t v = hex(&sp);
	if (v &&
	    P.nsps < MAX_THREADS - 1) /* a place kept for the dumping thread's */
		P.sps[P.nsps++] = v;
	else
		P.no_sp++;
	return true;
}

/* The threads, and the stack pointers of those blocked in a system call. */
static void find_threads(void)
{
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct thread_walk w = {(pid_t)syscall(SYS_gettid), 0};
	mt__dir_each(fd, thread_seen, &w);
	close(fd);
}

static struct out *result;
static size_t result_len;
uintptr_t mt__scan_from;

/* Scans; the figures are then read with mt__leak_site. */
static __attribute__((noinline)) int scan_from_here(void)
{
	/* the callee-saved registers onto the stack, which is scanned from
	 * here up: a pointer the program kept in one is seen */
	__builtin_unwind_init();
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	if (mt__in_dump_thread())
		P.own_sp = sp; /* memtrace's thread: its stack is not the program's */
	else if (mt__scan_from > sp && mt__scan_from - sp < (8u << 20))
		P.sps[P.nsps++] = mt__scan_from;
	else
		P.sps[P.nsps++] = sp;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	mt__table_lock_all();
	mt__own_lock();
	long pid = syscall(SYS_clone, 0ul, NULL, NULL, NULL, 0ul);
	if (pid == 0) {
		mt__own_unlock(); /* this process's only thread holds them all */
		child();	  /* never returns */
	}
	int e = errno;
	mt__own_unlock();
	mt__table_unlock_all();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		mt__fmt(P.note, sizeof(P.note), "cannot clone the scan's process (errno %d)", e);
		return -1;
	}
	/* bounded: a scan stuck on some mapping does not keep the exit; a
	 * pidfd wakes us when it ends, else a 1 ms poll */
	struct timespec ms = {0, 1000000};
	int st = 0;
	long waited = 0, limit = mt__opt.leak_scan_timeout * 1000;
	int pfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	uint64_t t0 = mt__now_ns(CLOCK_MONOTONIC);
	for (;;) {
		pid_t r = (pid_t)wait4((pid_t)pid, &st, WNOHANG | __WALL, NULL);
		if (r == (pid_t)pid || (r < 0 && errno == ECHILD))
			break;
		if (pfd >= 0) {
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			(void)poll(&p, 1, 100);
			waited = (long)((mt__now_ns(CLOCK_MONOTONIC) - t0) / 1000000);
		} else {
			nanosleep(&ms, NULL);
			waited++;
		}
		if (waited >= limit) {
			kill((pid_t)pid, SIGKILL);
			while (wait4((pid_t)pid, &st, __WALL, NULL) < 0 && errno == EINTR)
				;
			mt__fmt(P.note, sizeof(P.note), "the scan took more than %ld s; stopped",
				mt__opt.leak_scan_timeout);
			if (pfd >= 0)
				close(pfd);
			return -1;
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (__atomic_load_n(&P.out->status, __ATOMIC_ACQUIRE) != MT_SCAN_DONE) {
		if (P.out->note[0])
			memcpy(P.note, P.out->note, sizeof(P.note));
		else if (WIFSIGNALED(st))
			mt__fmt(P.note, sizeof(P.note), "the scan's process died of signal %d",
				WTERMSIG(st));
		else
			mt__fmt(P.note, sizeof(P.note), "the scan's process ended early");
		return -1;
	}
	return 0;
}

/* Under gdb or strace the clone would be reported to the tracer (a new
 * "thread"): no scan then. */
static bool traced(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *t = strstr(buf, "\nTracerPid:");
	if (!t)
		return false;
	for (t += 11; *t == ' ' || *t == '\t'; t++)
		;
	return *t && *t != '0';
}

void mt__leak_scan(void)
{
	mt__leak_scan_done();
	/* the arrays are read only up to their counts: clearing all 165 KiB
	 * (first-touch faults at every process's exit) is not needed */
	P.out = NULL;
	P.out_len = 0;
	P.nsites = 0;
	P.nsps = P.nexcl = P.nlive = P.ndead = 0;
	P.own_sp = 0;
	P.threads = P.no_sp = 0;
	P.status = 0;
	P.note[0] = '\0';
	if (!mt__opt.leak_scan) {
		P.status = MT_SCAN_OFF;
		return;
	}
	if (mt__sample_mean) {
		P.status = MT_SCAN_SAMPLED;
		return;
	}
	if (mt__opt.allocator == MT_ALLOC_JEMALLOC) {
		P.status = MT_SCAN_BACKEND;
		return;
	}
	if (traced()) {
		P.status = MT_SCAN_TRACED;
		return;
	}
	if (mt__heap_count_unlocked() == 0) {
		/* no live block: nothing can be lost, and every class is empty
		 * (the scan's process cost an exact-mode /bin/true 1.3 ms) */
		P.status = MT_SCAN_DONE;
		return;
	}
	P.status = MT_SCAN_FAILED;
	P.nsites = mt__site_id_end();
	size_t len = sizeof(struct out) + (size_t)P.nsites * sizeof(result->sites[0]);
	len = (len + mt__page_size() - 1) & ~(mt__page_size() - 1);
	long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	if (r == -1) {
		note("out of memory for the scan's figures", NULL);
		return;
	}
	P.out = (struct out *)r;
	mt__own_add(P.out, len);
	dl_iterate_phdr(own_object, (void *)(uintptr_t)&mt__leak_scan);
	P.nlive = mt__stack_marks(P.live, MAX_MARKS, P.dead, MAX_MARKS, &P.ndead);
	find_threads();
	if (scan_from_here() == 0) {
		P.status = MT_SCAN_DONE;
		result = P.out;
		result_len = len;
		return;
	}
	mt__own_remove(P.out);
	syscall(SYS_munmap, P.out, len);
	P.out = NULL;
}

void mt__leak_scan_info(mt_leak_info_t *i)
{
	memset(i, 0, sizeof(*i));
	i->status = P.status;
	i->threads = P.threads;
	i->no_sp = P.no_sp;
	if (result) {
		i->ns = result->ns;
		i->blocks = result->blocks;
		i->root_bytes = result->root_bytes;
	}
	mt__fmt(i->note, sizeof(i->note), "%s", P.note);
}

const uint64_t *mt__leak_site(uint32_t id)
{
	if (!result || id >= P.nsites)
		return NULL;
	const uint64_t *v = result->sites[id];
	for (int k = 0; k < 2 * MT_LEAK_NCLASS; k++)
		if (v[k])
			return v;
	return NULL;
}

void mt__leak_scan_done(void)
{
	P.status = 0;
	if (!result)
		return;
	mt__own_remove(result);
	syscall(SYS_munmap, result, result_len);
	result = NULL;
}
