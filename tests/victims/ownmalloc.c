/* SPDX-License-Identifier: MIT */
/*
 * ownmalloc.c - libownmalloc.so, an allocator memtrace does not know: the
 * malloc family on a bump pointer through mmap'ed 1 MiB chunks, free a
 * no-op. Preloaded after libmemtrace.so it serves the program's malloc, as a
 * program's own allocator would; snapshots must name it "unknown" and
 * claim no figure or cap of glibc's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK (1u << 20)
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cur, *end;

static void *bump(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > CHUNK / 2 || align > 4096)
		return NULL;
	pthread_mutex_lock(&lock);
	uintptr_t p = ((uintptr_t)cur + 16 + align - 1) & ~(uintptr_t)(align - 1);
	if (!cur || p + size > (uintptr_t)end) {
		char *c = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		cur = c;
		end = c + CHUNK;
		p = ((uintptr_t)cur + 16 + align - 1) & ~(uintptr_t)(align - 1);
	}
	cur = (char *)(p + size);
	pthread_mutex_unlock(&lock);
	((size_t *)p)[-1] = size;
	return (void *)p;
}

void *malloc(size_t n) { void *p = bump(n, 16); if (!p) errno = ENOMEM; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b)
{
	if (b && a > SIZE_MAX / b)
		return NULL;
	return malloc(a * b); /* fresh mmap'ed memory is zero */
}
size_t malloc_usable_size(void *p) { return p ? ((size_t *)p)[-1] : 0; }
void *realloc(void *p, size_t n)
{
	void *q = malloc(n);
	if (q && p)
		memcpy(q, p, malloc_usable_size(p) < n ? malloc_usable_size(p) : n);
	return q;
}
int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = bump(n, align);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}
void *aligned_alloc(size_t align, size_t n) { return bump(n, align); }
void *memalign(size_t align, size_t n) { return bump(n, align); }
void *valloc(size_t n) { return bump(n, 4096); }
void *pvalloc(size_t n) { return bump((n + 4095) & ~(size_t)4095, 4096); }
