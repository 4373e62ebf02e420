/* SPDX-License-Identifier: MIT */
/*
 * attach.c - memtrace loaded into a process that is already running
 * (`memtrace attach PID`: gdb calls dlopen, then mt_attach). Nothing of the
 * program's resolves to a dlopen'ed library, so the hooks are put in the
 * loaded objects' GOT: every relocation (JUMP_SLOT or GLOB_DAT) against one
 * of the symbols in MT_ATTACH_HOOKS gets memtrace's entry point, and the
 * value it held is kept for mt_detach to put back. Objects loaded later are
 * patched as their dlopen returns (the program's dlopen is one of the
 * entries: attach_dlopen below), and at each snapshot for any other way in.
 * The functions the hooks forward to are the program's own, looked up in
 * its global scope, where memtrace, loaded RTLD_LOCAL, is not.
 *
 * Blocks allocated before the attach are not in the table: their frees and
 * reallocs go to the allocator untracked, as for any unknown block, and the
 * snapshots say since when memtrace has tracked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "arch.h"

#define EXPORT __attribute__((visibility("default")))

int mt__attached;

/* The symbols patched: hooks.h's malloc and mmap families (malloc first:
 * mt_attach tests it); not its process family or id changes, nor C++'s
 * operators (libstdc++'s call malloc and free). */
#define MT_ATTACH_HOOKS(X)                                                          \
	MT_HOOKS_MALLOC(X) MT_HOOKS_MALLOC_ALIASES(X) MT_HOOKS_MMAP(X) MT_HOOKS_MMAP_ALIASES(X)

static void *attach_dlopen(const char *file, int mode);

/* memtrace's entry points, found in its own object at the attach; and its
 * dlopen, which only an attach puts in place (not exported: under a preload
 * every dlopen would be memtrace's) */
static struct hook {
	const char *name;
	void *ours;
} hooks[] = {
#define X(name, ...) {#name, NULL},
	MT_ATTACH_HOOKS(X)
#undef X
	{"dlopen", (void *)&attach_dlopen},
};
#define NHOOKS (sizeof(hooks) / sizeof(hooks[0]))

/* A patched slot and what it held. */
typedef struct slot {
	void **at;
	void *was;
	bool relro; /* read-only after relocation: read-only again after a write */
} slot_t;

static slot_t *slots;
static size_t nslots, cap_slots;
/* slots, nslots, cap_slots; first in table.c's lock order */
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t own_base; /* memtrace's own object: never patched */

static bool remember(void **at, void *was, bool relro)
{
	for (size_t i = 0; i < nslots; i++)
		if (slots[i].at == at)
			return true; /* patched before (a second pass after dlopen) */
	if (nslots == cap_slots) {
		size_t ncap = cap_slots ? cap_slots * 2 : 256;
		slot_t *n = mt__map(ncap * sizeof(*n));
		if (!n)
			return false;
		if (slots) {
			memcpy(n, slots, nslots * sizeof(*n));
			mt__unmap(slots, cap_slots * sizeof(*n));
		}
		slots = n;
		cap_slots = ncap;
	}
	slots[nslots++] = (slot_t){at, was, relro};
	return true;
}

static int hook_of(const char *name)
{
	for (size_t i = 0; i < NHOOKS; i++)
		if (!strcmp(name, hooks[i].name))
			return (int)i;
	return -1;
}

/* One GOT slot: memtrace's entry point if its symbol is hooked. */
static void patch_slot(void **at, const char *name, bool relro, void *arg)
{
	(void)arg;
	int h = hook_of(name);
	if (h < 0)
		return;
	void *was = *at;
	if (!hooks[h].ours || was == hooks[h].ours || !remember(at, was, relro))
		return;
	mt__got_put(at, hooks[h].ours, relro);
}

static int patch_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	const char *nm = info->dlpi_name ? info->dlpi_name : "";
	if (info->dlpi_addr == own_base || strstr(nm, "linux-vdso") || strstr(nm, "/ld-linux"))
		return 0;
	mt__got_each(info, patch_slot, NULL);
	return 0;
}

/* Whether code at p is a PLT entry: an indirect jump through a GOT slot
 * (jmp *x(%rip), after endbr64 and a bnd prefix when IBT builds it). */
static bool plt_stub(const unsigned char *p)
{
	if (!MT_ARCH_X86_64)
		return false; /* not known elsewhere: the address as found */
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		p += 4;
	if (p[0] == 0xf2)
		p++;
	return p[0] == 0xff && p[1] == 0x25;
}

struct find {
	const char *name;
	uintptr_t self; /* memtrace's own object, never the program's */
	void *found;
};

static int find_def(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct find *f = arg;
	const char *nm = info->dlpi_name ? info->dlpi_name : "";
	if (f->found || !*nm || info->dlpi_addr == f->self || strstr(nm, "linux-vdso"))
		return 0;
	void *h = dlopen(nm, RTLD_NOW | RTLD_NOLOAD);
	void *s = h ? dlsym(h, f->name) : NULL;
	Dl_info di;
	if (s && dladdr(s, &di) && (uintptr_t)di.dli_fbase == info->dlpi_addr)
		f->found = s;
	return 0;
}

/*
 * The program's own definition of a function, as its calls resolve it:
 * the global scope's (dlopen(NULL): the executable, then the libraries in
 * load order). A non-PIE executable that takes a function's address makes
 * its PLT entry the function's canonical address, and that is what the
 * global scope gives: a jump through the very GOT slot memtrace patches.
 * Then the definition is the first loaded library's that defines it.
 */
void *mt__attach_sym(const char *name)
{
	void *g = dlopen(NULL, RTLD_NOW | RTLD_NOLOAD);
	void *s = g ? dlsym(g, name) : NULL;
	Dl_info di;
	if (!s || !dladdr(s, &di) || !plt_stub(s))
		return s;
	struct find f = {name, 0, NULL};
	if (!dladdr((void *)&mt__attach_sym, &di))
		return NULL;
	f.self = (uintptr_t)di.dli_fbase;
	dl_iterate_phdr(find_def, &f);
	return f.found;
}

/* Patches every loaded object not patched yet: at the attach, and before
 * each snapshot (objects dlopen'ed since). */
void mt__attach_patch(void)
{
	if (!__atomic_load_n(&mt__attached, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&patch_lock);
	dl_iterate_phdr(patch_object, NULL);
	pthread_mutex_unlock(&patch_lock);
}

/* The caller's own search path for a bare name: glibc's dlopen looks in the
 * calling object's DT_RPATH or DT_RUNPATH first, and the caller it sees is
 * memtrace's wrapper. So the wrapper looks there itself ($ORIGIN expanded)
 * and hands dlopen the path found; everything else in the search (the
 * executable's RPATH, LD_LIBRARY_PATH, the cache, the default directories)
 * is the same for any caller. NULL when the caller's path has nothing. */
static char *caller_path(const char *file, const void *caller, char *out, size_t cap)
{
	Dl_info di;
	struct link_map *lm = NULL;
	if (!file || strchr(file, '/') ||
	    !dladdr1(caller, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm || !lm->l_ld)
		return NULL;
	const char *str = NULL;
	uintptr_t off = 0;
	for (const ElfW(Dyn) *d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_STRTAB)
			str = (const char *)mt__dyn_ptr(lm->l_addr, d->d_un.d_ptr);
		else if (d->d_tag == DT_RUNPATH || (d->d_tag == DT_RPATH && !off))
			off = d->d_un.d_val;
	}
	if (!str || !off)
		return NULL;
	char origin[4096];
	if (*lm->l_name) {
		mt__fmt(origin, sizeof(origin), "%s", lm->l_name);
	} else { /* the executable */
		ssize_t n = readlink("/proc/self/exe", origin, sizeof(origin) - 1);
		origin[n > 0 ? n : 0] = '\0';
	}
	char *slash = strrchr(origin, '/');
	if (slash)
		*slash = '\0';
	for (const char *p = str + off; *p;) {
		size_t n = strcspn(p, ":"), o = 0;
		for (size_t i = 0; i < n && o + 1 < cap;) {
			if (!strncmp(p + i, "$ORIGIN", 7) || !strncmp(p + i, "${ORIGIN}", 9)) {
				o += mt__fmt(out + o, cap - o, "%s", origin);
				i += p[i + 1] == '{' ? 9 : 7;
			} else {
				out[o++] = p[i++];
			}
		}
		out[o < cap ? o : cap - 1] = '\0';
		mt__fmt(out + strlen(out), cap - strlen(out), "/%s", file);
		if (access(out, R_OK) == 0)
			return out;
		p += n + (p[n] == ':');
	}
	return NULL;
}

/* The program's dlopen, while attached: the object and its dependencies
 * get memtrace's entries as soon as they are loaded. */
static void *attach_dlopen(const char *file, int mode)
{
	static void *(*real_dlopen)(const char *, int);
	char path[4096];
	if (!real_dlopen)
		real_dlopen = (void *(*)(const char *, int))mt__attach_sym("dlopen");
	if (!real_dlopen)
		return NULL;
	const char *found = caller_path(file, __builtin_return_address(0), path, sizeof(path));
	void *h = real_dlopen(found ? found : file, mode);
	if (h)
		mt__attach_patch();
	return h;
}

/*
 * Called by `memtrace attach` (through gdb) once the library is loaded:
 * opts is the options as "MEMTRACE_NAME=value" lines, read in place of the
 * environment. Returns 0, or a negative number when memtrace cannot attach
 * (-1 already attached or preloaded, -2 could not start).
 */
EXPORT int mt_attach(const char *opts)
{
	Dl_info di;
	if (__atomic_load_n(&mt__attached, __ATOMIC_ACQUIRE) || mt__preloaded())
		return -1;
	if (!dladdr((void *)&mt_attach, &di) || !di.dli_fname)
		return -2;
	own_base = (uintptr_t)di.dli_fbase;
	void *self = dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	for (size_t i = 0; self && i < NHOOKS; i++)
		if (!hooks[i].ours)
			hooks[i].ours = dlsym(self, hooks[i].name);
	if (!self || !hooks[0].ours)
		return -2;
	mt__options_source(opts);
	if (!mt__attach_start())
		return -2;
	__atomic_store_n(&mt__attached, 1, __ATOMIC_RELEASE);
	mt__attach_patch();
	return 0;
}

/* Puts every patched slot back (one memtrace's hook still holds): the
 * program's calls go where they went before; memtrace stays loaded, its
 * tracking off. Returns the slots restored. */
EXPORT int mt_detach(void)
{
	int n = 0;
	if (!__atomic_load_n(&mt__attached, __ATOMIC_ACQUIRE))
		return -1;
	pthread_mutex_lock(&patch_lock);
	__atomic_store_n(&mt__attached, 0, __ATOMIC_RELEASE);
	for (size_t i = 0; i < nslots; i++) {
		for (size_t h = 0; h < NHOOKS; h++)
			if (*slots[i].at == hooks[h].ours) {
				mt__got_put(slots[i].at, slots[i].was, slots[i].relro);
				n++;
			}
	}
	nslots = 0;
	pthread_mutex_unlock(&patch_lock);
	mt__attach_stop();
	return n;
}
