/* SPDX-License-Identifier: MIT */
/*
 * pyalloc.c - CPython's MEM and OBJ allocator domains, wrapped as
 * tracemalloc wraps them (python.c installs these once the interpreter's
 * layout checks out): each wrapper records the block and forwards to the
 * interpreter's own allocator, pymalloc or malloc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include "internal.h"
#include "hook.h"

/* The interpreter's own allocator (pymalloc) stays: each wrapper records
 * the block and forwards to it. What pymalloc asks of malloc or mmap
 * underneath runs with mt__tl_busy set, so no block is counted twice. The
 * blocks are the system's (their owner for the jemalloc backend). */
static mt_pyalloc_t py_saved[3];

/* What a domain's blocks are: objects (OBJ) or buffers (MEM). */
static inline int py_owner(const mt_pyalloc_t *d)
{
	return d == &py_saved[2] ? MT_OWNER_SYSTEM | MT_OWNER_PYOBJ : MT_OWNER_SYSTEM;
}

static __attribute__((noinline)) void *py_malloc_slow(void *ctx, size_t size)
{
	const mt_pyalloc_t *d = ctx;
	if (mt__sample_mean && !mt__tl_busy && mt__init_state == INIT_READY && unsampled(size))
		return d->malloc(d->ctx, size);
	if (!ENTER())
		return d->malloc(d->ctx, size);
	void *p = d->malloc(d->ctx, size);
	if (p)
		record_heap(p, size, py_owner(d));
	LEAVE();
	return p;
}

/* As malloc: an unsampled call costs one counter update and a jump. */
static void *py_malloc(void *ctx, size_t size)
{
	const mt_pyalloc_t *d = ctx;
	if (unsampled_fast(size))
		return d->malloc(d->ctx, size);
	return py_malloc_slow(ctx, size);
}

static void *py_calloc(void *ctx, size_t n, size_t size)
{
	const mt_pyalloc_t *d = ctx;
	if ((n && size > SIZE_MAX / n) || !ENTER())
		return d->calloc(d->ctx, n, size);
	void *p = d->calloc(d->ctx, n, size);
	if (p && !unsampled(n * size))
		record_heap(p, n * size, py_owner(d));
	LEAVE();
	return p;
}

/* Takes a block the domain is about to free or move out of the tables: 0
 * when it was not tracked, or when another allocator (jemalloc) owns it: a
 * block from before the domains were wrapped, which the nested hook must
 * still find, to hand it to its owner. */
static uint64_t py_detach(void *p, bool *foreign)
{
	uint64_t meta = unrecorded(p) ? 0 : mt__heap_detach(p);
	*foreign = meta && mt__meta_owner(meta) != MT_OWNER_SYSTEM;
	if (*foreign) {
		mt__heap_reattach(p, meta);
		return 0;
	}
	return meta;
}

static void *py_realloc(void *ctx, void *p, size_t size)
{
	const mt_pyalloc_t *d = ctx;
	if (!p)
		return py_malloc(ctx, size);
	if (mt__init_state != INIT_READY || (unrecorded(p) && unsampled_fast(size)) || !ENTER())
		return d->realloc(d->ctx, p, size);
	bool foreign;
	uint64_t meta = py_detach(p, &foreign);
	if (!foreign)
		mt__tl_detached = p;
	void *q = d->realloc(d->ctx, p, size);
	int saved = errno;
	mt__tl_detached = NULL;
	if (foreign) {
		/* the nested hook moved it, tracked, with its owner */
	} else if (q) {
		mt__heap_release(meta);
		if (!unsampled(size))
			record_heap(q, size, py_owner(d));
	} else if (meta) {
		mt__heap_reattach(p, meta);
	}
	errno = saved;
	LEAVE();
	return q;
}

static __attribute__((noinline)) void py_free_slow(void *ctx, void *p)
{
	const mt_pyalloc_t *d = ctx;
	if (p && mt__init_state == INIT_READY) {
		prefetch_header(p);
		int saved = errno, busy = guard_enter();
		/* as py_detach, in one call */
		int owner = unrecorded(p) ? -1 : mt__heap_forget_own(p, MT_OWNER_SYSTEM);
		guard_leave(busy);
		errno = saved;
		if (owner <= MT_OWNER_SYSTEM) {
			/* what the allocator's free hook would look up again */
			mt__tl_detached = p;
			d->free(d->ctx, p);
			mt__tl_detached = NULL;
			return;
		}
	}
	d->free(d->ctx, p);
}

static void py_free(void *ctx, void *p)
{
	const mt_pyalloc_t *d = ctx;
	if (unrecorded(p)) {
		d->free(d->ctx, p);
		return;
	}
	py_free_slow(ctx, p);
}

mt_pyalloc_t *mt__py_domain_saved(int d)
{
	return &py_saved[d];
}

void mt__py_domain_ours(int d, mt_pyalloc_t *out)
{
	*out = (mt_pyalloc_t){&py_saved[d], py_malloc, py_calloc, py_realloc, py_free};
}
