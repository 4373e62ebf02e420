/* SPDX-License-Identifier: MIT */
/*
 * memory.c - the allocator's figures and the process's memory, and what
 * they say: how much the allocator holds beyond the live heap, how both
 * moved between two snapshots, and the one-sentence verdict (a leak: the
 * live heap grows; fragmentation: held grows, live flat; arena sprawl).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *sz(char *buf, double v, bool sign)
{
	mt_format_size(buf, 32, v, sign);
	return buf;
}

/* Whether the named allocator has arenas (MT_ALLOCATORS); an unknown one
 * has none memtrace can count. */
static bool has_arenas(const char *name)
{
#define X(id, nm, lib, pkg, probe, arenas, env)      \
	if (!strcmp(name, nm))             \
		return arenas;
	MT_ALLOCATORS(X)
#undef X
	return false;
}

/* "allocator glibc holds 284 KiB in 2 arenas (capped at 2)"; an allocator
 * that gives no figure of its own is named and left at that. */
static void allocator_phrase(char *out, size_t cap, const mt_alloc_stats_t *m)
{
	char held[32], arenas[80] = "";
	if (!m->held) {
		snprintf(out, cap, "allocator %s (no figures of its own)", m->name);
		return;
	}
	if (has_arenas(m->name)) {
		int n = snprintf(arenas, sizeof(arenas), " in %" PRIu64 " arena%s", m->arenas,
				 MT_PL(m->arenas));
		if (m->arena_max)
			snprintf(arenas + n, sizeof(arenas) - (size_t)n, " (capped at %" PRIu64 ")",
				 m->arena_max);
	}
	snprintf(out, cap, "allocator %s holds %s%s", m->name, sz(held, (double)m->held, false),
		 arenas);
}

void mt_print_memory(FILE *f, const mt_snap_t *s)
{
	char a[32], b[32], c[32], d[32], al[160];
	const mt_alloc_stats_t *m = &s->alloc;
	if (!s->has_alloc)
		return;
	allocator_phrase(al, sizeof(al), m);
	fprintf(f, "Memory: live heap %s in %" PRIu64 " block%s; %s; RSS %s, VMS %s\n",
		sz(a, (double)s->totals.heap_live_bytes, false), s->totals.heap_live_count,
		MT_PL(s->totals.heap_live_count), al, sz(c, (double)m->rss, false),
		sz(d, (double)m->vms, false));
	int64_t over = (int64_t)m->held - (int64_t)s->totals.heap_live_bytes;
	char beyond[160];
	if (!m->held)
		snprintf(beyond, sizeof(beyond), "unknown (the allocator says nothing)");
	else if (over >= 0)
		snprintf(beyond, sizeof(beyond),
			 "%s held beyond the live heap (fragmentation, free lists, caches)",
			 sz(a, (double)over, false));
	else /* a sampled estimate above what the allocator holds: no size below zero */
		snprintf(beyond, sizeof(beyond),
			 "none measured: the %slive heap is %s above what the allocator holds",
			 s->sample_bytes ? "estimated " : "", sz(a, (double)-over, false));
	char heaps[48] = ""; /* glibc's 64 MiB arena heaps: another allocator's are not */
	if (!strcmp(m->name, "glibc"))
		snprintf(heaps, sizeof(heaps), ", %" PRIu64 " 64 MiB arena heap%s", m->anon_64m,
			 MT_PL(m->anon_64m));
	fprintf(f,
		"Overhead: %s; "
		"%" PRIu64 " anonymous mapping%s (%s), %" PRIu64 " of them 1 MiB or more%s\n",
		beyond, m->anon_maps, MT_PL(m->anon_maps), sz(b, (double)m->anon_bytes, false),
		m->anon_1m, heaps);
}

const char *mt_memory_verdict(const mt_snap_t *a, const mt_snap_t *b, size_t every, int intervals)
{
	static char buf[160];
	if (!a->has_alloc || !b->has_alloc)
		return NULL;
	double live = (double)b->totals.heap_live_bytes - (double)a->totals.heap_live_bytes;
	double held = (double)b->alloc.held - (double)a->alloc.held;
	double arenas = (double)b->alloc.arenas - (double)a->alloc.arenas;
	double base = (double)(b->alloc.held > a->alloc.held ? b->alloc.held : a->alloc.held);
	/* a change in the totals matters above 64 KiB and 2 % of what the
	 * allocator holds; a line's steady growth matters at any size */
	double floor = base * 0.02 > 65536 ? base * 0.02 : 65536;
	if (arenas > 0 && held > floor && held > 2 * (live > 0 ? live : 0))
		return "arena sprawl: the allocator added arenas and holds far more than the live "
		       "heap grew ('memtrace allocators -- CMD' measures each cure)";
	if (live > floor)
		return "the live heap grew: look for leaks among the growing lines";
	if (every) {
		snprintf(buf, sizeof(buf),
			 "%zu %s in every one of the %d intervals: leak suspects, however small "
			 "the growth",
			 every, every == 1 ? "line grew" : "lines grew", intervals);
		return buf;
	}
	if (live < -floor)
		return "the live heap fell: memory was given back";
	if (held > floor)
		return "the allocator holds more while the live heap stayed flat: fragmentation "
		       "or allocator caches, not a leak";
	if (held < -floor)
		return "memory went down";
	return "no significant change";
}

void mt_print_memory_diff(FILE *f, const mt_snap_t *a, const mt_snap_t *b)
{
	char x[32], y[32], z[32], w[32], u[32], v[32], q[32], r[32], held[128] = "";
	if (!a->has_alloc || !b->has_alloc)
		return;
	if (!b->alloc.held)
		snprintf(held, sizeof(held), "%s gives no figures of its own", b->alloc.name);
	else if (has_arenas(b->alloc.name))
		snprintf(held, sizeof(held), "%s holds %s (%s) in %" PRIu64 " arenas (%+" PRId64 ")",
			 b->alloc.name, sz(z, (double)b->alloc.held, false),
			 sz(w, (double)b->alloc.held - (double)a->alloc.held, true), b->alloc.arenas,
			 (int64_t)(b->alloc.arenas - a->alloc.arenas));
	else
		snprintf(held, sizeof(held), "%s holds %s (%s)", b->alloc.name,
			 sz(z, (double)b->alloc.held, false),
			 sz(w, (double)b->alloc.held - (double)a->alloc.held, true));
	fprintf(f, "Memory: live heap %s (%s); %s; RSS %s (%s), VMS %s (%s)\n",
		sz(x, (double)b->totals.heap_live_bytes, false),
		sz(y, (double)b->totals.heap_live_bytes - (double)a->totals.heap_live_bytes, true),
		held, sz(u, (double)b->alloc.rss, false),
		sz(v, (double)b->alloc.rss - (double)a->alloc.rss, true),
		sz(q, (double)b->alloc.vms, false),
		sz(r, (double)b->alloc.vms - (double)a->alloc.vms, true));
	fprintf(f, "Verdict: %s\n", mt_memory_verdict(a, b, 0, 1));
}
