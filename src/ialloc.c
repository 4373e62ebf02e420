/* SPDX-License-Identifier: MIT */
/*
 * ialloc.c - memtrace's private allocator. Everything memtrace keeps (callsite
 * records and their index, dump buffers) comes from here, never from the
 * allocator being profiled, so a hook can never recurse into itself and the
 * program's heap figures are not disturbed by ours.
 *
 * Size classes from 16 B to 64 KiB, powers of two and halfway between,
 * carved from 1 MiB chunks
 * mapped with the raw mmap syscall; larger requests are mapped directly. The
 * caller passes the size back to mt__ifree. One mutex; the lock
 * order is: table locks, then this one (see table.c).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "arch.h"

#define MIN_SHIFT 4
#define MAX_SHIFT 16
/* sizes 16, 24, 32, 48, 64, 96 ... 65536: at most a third wasted */
#define NCLASSES (2 * (MAX_SHIFT - MIN_SHIFT) + 1)
#define CHUNK (1u << 20)

struct free_node {
	struct free_node *next;
};

/* lock: free_lists and the chunks carved from (table.c's lock order: 6) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct free_node *free_lists[NCLASSES];

static long map_calls;

/*
 * Every mapping memtrace holds, for the leak scan (leakscan.c), which must
 * not take memtrace's own tables (they hold every block's address) for the
 * program's pointers. Open addressing by start address, 64 Ki slots; a
 * mapping that finds no slot sets `lost`, and the scan is then refused.
 */
#define OWN_SLOTS (1u << 16)
#define OWN_TOMB ((uintptr_t)1)
static struct own_map {
	uintptr_t lo, len;
} own[OWN_SLOTS];
/* the table's pages (256 entries each) that have held a mapping: a walk
 * reads those only, not the whole 1 MiB (it paged in 256 zero pages, a
 * quarter of an exact-mode /bin/true's time) */
#define OWN_PAGE_SHIFT 8
#define OWN_PAGES (OWN_SLOTS >> OWN_PAGE_SHIFT)
static uint64_t own_used[OWN_PAGES / 64];
/* own_lock: own[], own_used, own_lost; a leaf (table.c: 7) */
static int own_lock, own_lost;

static void own_lock_take(void)
{
	while (__atomic_exchange_n(&own_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&own_lock, __ATOMIC_RELAXED))
			mt__cpu_relax();
}

static void own_lock_drop(void)
{
	__atomic_store_n(&own_lock, 0, __ATOMIC_RELEASE);
}

/* A mapping's 64 KiB within its 16 MiB of address space picks the slot
 * within a 4 KiB page of the table (256 entries), a hash of that 16 MiB the
 * table page: memtrace's mappings, mostly close together, touch (page in) a
 * few pages of the table rather than one each. */
static size_t own_home(uintptr_t lo)
{
	size_t page = (size_t)((lo >> 24) * 0x9E3779B97F4A7C15ull >> 56);
	return (page << OWN_PAGE_SHIFT | ((lo >> 16) & ((1u << OWN_PAGE_SHIFT) - 1))) &
	       (OWN_SLOTS - 1);
}

void mt__own_add(void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p;
	own_lock_take();
	size_t i = own_home(lo), n = 0;
	for (; n < OWN_SLOTS && own[i].lo > OWN_TOMB; n++)
		i = (i + 1) & (OWN_SLOTS - 1);
	if (n < OWN_SLOTS) {
		own[i] = (struct own_map){lo, len};
		own_used[i >> OWN_PAGE_SHIFT >> 6] |= 1ull << ((i >> OWN_PAGE_SHIFT) & 63);
	} else
		own_lost = 1;
	own_lock_drop();
}

void mt__own_remove(void *p)
{
	uintptr_t lo = (uintptr_t)p;
	own_lock_take();
	size_t i = own_home(lo);
	for (size_t n = 0; n < OWN_SLOTS && own[i].lo; n++, i = (i + 1) & (OWN_SLOTS - 1))
		if (own[i].lo == lo) {
			own[i].lo = OWN_TOMB;
			own[i].len = 0;
			break;
		}
	own_lock_drop();
}

void mt__own_lock(void)
{
	own_lock_take();
}

void mt__own_unlock(void)
{
	own_lock_drop();
}

/* Calls fn for each of memtrace's mappings; false when some went
 * unrecorded. For the scan's child process (one thread, no lock). */
bool mt__own_foreach(void (*fn)(uintptr_t lo, uintptr_t len, void *arg), void *arg)
{
	for (size_t pg = 0; pg < OWN_PAGES; pg++) {
		if (!(own_used[pg >> 6] >> (pg & 63) & 1))
			continue;
		for (size_t i = pg << OWN_PAGE_SHIFT; i < (pg + 1) << OWN_PAGE_SHIFT; i++)
			if (own[i].lo > OWN_TOMB)
				fn(own[i].lo, own[i].len, arg);
	}
	return !own_lost;
}

static void *map_raw(size_t size, int flags)
{
	/* MEMTRACE_FAIL_AFTER (testing): memtrace's own memory runs out */
	if (MT_UNLIKELY(mt__opt.fail_after > 0) &&
	    __atomic_add_fetch(&map_calls, 1, __ATOMIC_RELAXED) > mt__opt.fail_after)
		return NULL;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	/* sanitized unit tests: the intercepted calls, so that a range unmapped
	 * by one table and mapped again by another is not taken for a race */
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1,
		       0);
	return m == MAP_FAILED ? NULL : m;
#else
	long r = syscall(SYS_mmap, NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (r == -1)
		return NULL;
	return (void *)r;
#endif
}

static void *map_flags(size_t size, int flags)
{
	void *p = map_raw(size, flags);
	if (p)
		mt__own_add(p, size);
	return p;
}

void *mt__map(size_t size)
{
	return map_flags(size, 0);
}

void mt__unmap(void *p, size_t size)
{
	if (!p)
		return;
	mt__own_remove(p);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
	munmap(p, size);
#else
	syscall(SYS_munmap, p, size);
#endif
}

static size_t page_round(size_t n)
{
	size_t pg = mt__page_size();
	return (n + pg - 1) & ~(pg - 1);
}

static size_t class_size(int c)
{
	size_t base = (size_t)1 << (MIN_SHIFT + c / 2);
	return c % 2 ? base + base / 2 : base;
}

static int class_of(size_t size)
{
	int c = 0;
	while (class_size(c) < size)
		c++;
	return c;
}

/* A chunk carved in order: [cur, end) is what is left of it. */
struct carver {
	char *cur, *end;
	bool populate; /* map its chunks after the first with their pages in */
	int chunks;
};

/* size bytes from c, a fresh chunk when it has not that many left (the old
 * one's tail is lost: at most 64 KiB); mmap's zeroes. NULL out of memory.
 * Under lock. */
static void *carve(struct carver *c, size_t size)
{
	if ((size_t)(c->end - c->cur) < size) {
		char *chunk = map_flags(CHUNK, c->populate && c->chunks++ ? MAP_POPULATE : 0);
		if (!chunk)
			return NULL;
		c->cur = chunk;
		c->end = chunk + CHUNK;
	}
	void *p = c->cur;
	c->cur += size;
	return p;
}

/* lock: the chunk the size classes carve from */
static struct carver classes_chunk;

void *mt__ialloc(size_t size)
{
	if (size == 0)
		size = 1;
	if (size > ((size_t)1 << MAX_SHIFT))
		return size > SIZE_MAX - mt__page_size() ? NULL : mt__map(page_round(size));

	int c = class_of(size);
	size_t csize = class_size(c);
	void *p;

	pthread_mutex_lock(&lock);
	bool reused = (p = free_lists[c]) != NULL;
	if (reused)
		free_lists[c] = free_lists[c]->next;
	else
		p = carve(&classes_chunk, csize);
	pthread_mutex_unlock(&lock);
	/* a freed block is zeroed again; memory carved fresh is still mmap's
	 * zeroes, and writing them would page in all of a sparse table (a
	 * thread's 58 KiB second stack memo) before its use */
	if (reused)
		memset(p, 0, csize);
	return p;
}

/* Memory never given back (callsite records, written once and kept for
 * the process's life): carved 8-byte aligned, in order, from chunks of its
 * own, with none of a size class's rounding (a 280-byte site took a 384-byte
 * class). Zeroed: fresh from mmap. */
/* A process that filled one chunk with them makes many (a Python import
 * makes a callsite for every other allocation): its later chunks come with
 * their pages in, one system call for 256 pages where each page's first
 * write was a fault. */
static struct carver keep_chunk = {.populate = true}; /* lock */

void *mt__ialloc_keep(size_t size)
{
	size = (size + 7) & ~(size_t)7;
	if (size == 0 || size > CHUNK / 16)
		return mt__ialloc(size);
	pthread_mutex_lock(&lock);
	void *p = carve(&keep_chunk, size);
	pthread_mutex_unlock(&lock);
	return p;
}

void mt__ifree(void *p, size_t size)
{
	if (!p)
		return;
	if (size == 0)
		size = 1;
	if (size > ((size_t)1 << MAX_SHIFT)) {
		mt__unmap(p, page_round(size));
		return;
	}
	int c = class_of(size);
	struct free_node *n = p;

	pthread_mutex_lock(&lock);
	n->next = free_lists[c];
	free_lists[c] = n;
	pthread_mutex_unlock(&lock);
}

void mt__ialloc_lock(void)
{
	pthread_mutex_lock(&lock);
}

void mt__ialloc_unlock(void)
{
	pthread_mutex_unlock(&lock);
}
