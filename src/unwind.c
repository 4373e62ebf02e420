/* SPDX-License-Identifier: MIT */
/*
 * unwind.c - stack capture for every tracked allocation, with libunwind's
 * unw_backtrace (local-only). Frames that belong to libmemtrace.so itself are
 * dropped, so frame 0 is always the code that called malloc. Runs before any
 * memtrace lock is taken: libunwind may take the loader lock and allocate,
 * and those allocations come back through the hooks as untracked (hook.c's
 * per-thread guard).
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <libunwind.h>
#include <link.h>
#include <stdint.h>

#include "internal.h"

/* libmemtrace.so's executable range, found once at start. */
static uintptr_t self_lo, self_hi;

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if ((uintptr_t)info->dlpi_addr != (uintptr_t)arg)
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		uintptr_t hi = lo + ph->p_memsz;
		if (!self_lo || lo < self_lo)
			self_lo = lo;
		if (hi > self_hi)
			self_hi = hi;
	}
	return 1;
}

void mt__unwind_init(void)
{
	Dl_info info;
	uintptr_t frames[4];

	if (dladdr((void *)mt__unwind_init, &info) && info.dli_fbase)
		dl_iterate_phdr(find_self, info.dli_fbase);
	/* warm up: libunwind builds its caches and resolves its own symbols
	 * here, not inside the program's first hot allocation */
	(void)mt__unwind(frames, 4);
}

int mt__unwind(uintptr_t *frames, int max)
{
	void *buf[MT_MAX_FRAMES + 8];
	int want = max + 6;
	if (want > (int)(sizeof(buf) / sizeof(buf[0])))
		want = (int)(sizeof(buf) / sizeof(buf[0]));

	int n = unw_backtrace(buf, want);
	int skip = 0;
	while (skip < n && (uintptr_t)buf[skip] >= self_lo && (uintptr_t)buf[skip] < self_hi)
		skip++;

	int out = 0;
	for (int i = skip; i < n && out < max; i++)
		frames[out++] = (uintptr_t)buf[i];
	return out;
}
