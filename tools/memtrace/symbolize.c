/* SPDX-License-Identifier: MIT */
/*
 * symbolize.c - turns recorded return addresses into file:line and function
 * names, offline, with elfutils' libdwfl: each module recorded in the
 * snapshot is reported at its recorded load address, its build id compared
 * with the recorded one (a changed file is reported once and its frames are
 * shown as module+offset, never mis-symbolized), inlined calls expanded from
 * the DWARF scopes (each unit's functions indexed once), C++ and Rust names
 * demangled (libiberty). Results are cached per address.
 *
 * Snapshots of one process share one symbolizer (reference counted): a
 * snapshot whose modules are each either one the symbolizer has, at the same
 * place with the same build id, or clear of all of them (loaded later) adds
 * those and reuses every address already looked up, so a series costs about
 * what its largest snapshot does.
 */
#define _GNU_SOURCE
#include <dwarf.h>
#include <errno.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <libiberty/demangle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#include "cli.h"

#define MAX_INLINE 16

struct mod {
	mt_snap_module_t rec; /* a copy: the snapshot may go first */
	const char *base;     /* basename for display */
	bool usable;	      /* reported to libdwfl with a matching build id */
};

struct cached {
	uint64_t addr;
	int n;
	mt_sframe_t f[MAX_INLINE];
	UT_hash_handle hh;
};

/*
 * A compilation unit's functions, indexed once: each subprogram's address
 * ranges, sorted, with its DIE's offset. Finding an address's inline chain
 * then walks one function's DIEs, not the whole unit's (dwarf_getscopes
 * does that for every address: 100,000 callsites in one big C file, the
 * sqlite3 amalgamation's shape, took seconds).
 */
struct fn_range {
	Dwarf_Addr lo, hi;
	Dwarf_Off die;
};

/* The index of the first of n entries, sorted by .lo, that starts above
 * addr (n: none); for the unit and symbol indexes. */
#define first_above(v, n, addr)                                    \
	({                                                         \
		size_t a_ = 0, b_ = (n);                           \
		while (a_ < b_) {                                  \
			size_t m_ = (a_ + b_) / 2;                 \
			if ((v)[m_].lo <= (addr))                  \
				a_ = m_ + 1;                       \
			else                                       \
				b_ = m_;                           \
		}                                                  \
		a_;                                                \
	})

struct cu_key {
	Dwarf *dbg;
	Dwarf_Off off;
};

struct cu_index {
	struct cu_key key;
	struct fn_range *v;
	size_t n, cap;
	UT_hash_handle hh;
};

/*
 * A module's symbol table, sorted once: dwfl_module_addrinfo scans the
 * whole table for every address (libLLVM's 100,000 symbols, for each of a
 * clang snapshot's 65,000 callsites: a minute). The choice is the one it
 * makes: a sized symbol holding the address (a function before anything
 * else, then global, weak, local, then the smallest), else the nearest
 * sizeless one below it.
 */
struct symr {
	GElf_Addr lo, hi; /* hi == lo: sizeless */
	const char *name;
	int rank; /* lower is better */
};

struct sym_index {
	Dwfl_Module *dm;
	struct symr *v;
	size_t n;
	UT_hash_handle hh;
};

/* A JIT's own names for its code, from the perf map it wrote
 * (/tmp/perf-PID.map: "START SIZE NAME" a line, hex; node and V8 with
 * --perf-basic-prof, Python 3.12 with -X perf, the JVM with perf-map-agent,
 * LuaJIT). Code moves and is reused: of the entries holding an address the
 * last written wins. */
struct jit_name {
	uint64_t lo, hi;
	size_t order;
	const char *name;
};

struct perf_map {
	uint32_t pid;
	bool loaded;
	struct jit_name *v;
	size_t n;
};

static char *perf_map_path(uint32_t pid)
{
	return mt_xasprintf("/tmp/perf-%u.map", pid);
}

struct mt_sym {
	Dwfl *dwfl;
	struct perf_map jit; /* of the first snapshot's process */
	uint64_t start_wall_ns; /* when that process started */
	struct cu_index *units;
	struct sym_index *symtabs;
	struct mod *mods; /* sorted by lo, never overlapping */
	size_t nmods;
	struct cached *cache;
	char **strings;
	size_t nstrings, capstrings;
	int refs;	/* snapshots using it */
	mt_sym_t *next; /* in open_syms */
};

static mt_sym_t *open_syms;

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &debuginfo_path,
};

/* GCC's clones of a function keep its name with a suffix (".lto_priv.0",
 * ".isra.0", ".constprop.1", ".part.0", ".cold"; " [clone .isra.0]" once
 * demangled): the function the user wrote is the name without it. */
static void strip_clone(char *name)
{
	static const char *const kinds[] = {".lto_priv.", ".isra.", ".constprop.", ".part.",
					    ".cold"};
	char *c = strstr(name, " [clone .");
	if (c) {
		*c = '\0';
		return;
	}
	for (char *dot = strchr(name, '.'); dot && dot > name; dot = strchr(dot + 1, '.'))
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (!strncmp(dot, kinds[k], strlen(kinds[k]))) {
				*dot = '\0';
				return;
			}
}

/* Keeps a copy of s for the symbolizer's lifetime. */
static const char *keep(mt_sym_t *sym, const char *s, bool demangle)
{
	char *copy = NULL;
	if (!s)
		return NULL;
	/* libiberty: C++ (_Z) and Rust, legacy (_ZN..17h<hash>E) and v0 (_R) */
	if (demangle && s[0] == '_' && (s[1] == 'Z' || s[1] == 'R'))
		copy = cplus_demangle(s, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	if (!copy)
		copy = strdup(s);
	if (!copy)
		return s;
	if (demangle)
		strip_clone(copy);
	if (sym->nstrings == sym->capstrings) {
		size_t cap = sym->capstrings ? sym->capstrings * 2 : 256;
		char **n = realloc(sym->strings, cap * sizeof(*n));
		if (!n) {
			free(copy);
			return s;
		}
		sym->strings = n;
		sym->capstrings = cap;
	}
	sym->strings[sym->nstrings++] = copy;
	return copy;
}

static int cmp_mod(const void *a, const void *b)
{
	const struct mod *x = a, *y = b;
	return x->rec.lo < y->rec.lo ? -1 : x->rec.lo > y->rec.lo;
}

static void hex(char *out, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* One warning per changed file, however many snapshots name it. */
static bool first_warning(const char *path)
{
	static char **seen;
	static size_t nseen;
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i], path) == 0)
			return false;
	seen = mt_xrealloc(seen, (nseen + 1) * sizeof(*seen));
	seen[nseen++] = mt_xasprintf("%s", path);
	return true;
}

/* Reports one of the snapshot's modules to libdwfl, checking its build id. */
static void add_module(mt_sym_t *sym, const mt_snap_module_t *m)
{
	struct mod *d = &sym->mods[sym->nmods];
	d->rec = *m;
	d->rec.path = mt_xasprintf("%s", m->path);
	const char *slash = strrchr(d->rec.path, '/');
	d->base = slash ? slash + 1 : d->rec.path;
	d->usable = false;
	sym->nmods++;
	if (m->path[0] != '/')
		return; /* the vdso */
	if (access(m->path, R_OK) != 0) {
		if (first_warning(m->path)) {
			char *shown = mt_printable(m->path);
			fprintf(stderr,
				"memtrace: warning: %s is gone (%s); its frames are shown as "
				"addresses\n",
				shown ? shown : "?", strerror(errno));
			free(shown);
		}
		return;
	}
	Dwfl_Module *dm = dwfl_report_elf(sym->dwfl, d->base, m->path, -1, m->bias, false);
	if (!dm)
		return;
	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(dm, &bits, &vaddr);
	if (m->build_id_len &&
	    (len != (int)m->build_id_len || memcmp(bits, m->build_id, m->build_id_len) != 0)) {
		char want[2 * MT_MAX_BUILD_ID + 1];
		/* memtrace's own frames are never recorded: no need to say */
		if (!strncmp(d->base, "libmemtrace.so", 14) || !first_warning(m->path))
			return;
		char *shown = mt_printable(m->path);
		hex(want, m->build_id, m->build_id_len);
		fprintf(stderr,
			"memtrace: warning: %s has changed since the snapshot (build id %s "
			"expected); its frames are shown as addresses\n",
			shown ? shown : "?", want);
		free(shown);
		return;
	}
	d->usable = true;
}

static bool same_module(const mt_snap_module_t *a, const mt_snap_module_t *b)
{
	return a->bias == b->bias && a->lo == b->lo && a->hi == b->hi &&
	       a->build_id_len == b->build_id_len &&
	       memcmp(a->build_id, b->build_id, a->build_id_len) == 0 && !strcmp(a->path, b->path);
}

/* How many of snap's modules sym lacks, or -1 when one of them takes the
 * place of one sym has (another process, or a library unloaded and another
 * loaded there): then sym cannot serve snap. */
static ssize_t missing_modules(const mt_sym_t *sym, const mt_snap_t *snap)
{
	ssize_t missing = 0;
	for (size_t i = 0; i < snap->nmodules; i++) {
		const mt_snap_module_t *m = &snap->modules[i];
		bool found = false;
		for (size_t j = 0; j < sym->nmods && !found; j++) {
			const mt_snap_module_t *h = &sym->mods[j].rec;
			if (same_module(m, h))
				found = true;
			else if (m->lo < h->hi && h->lo < m->hi)
				return -1;
		}
		missing += !found;
	}
	return missing;
}

/* Adds the modules of snap that sym lacks; lookups that found no module may
 * find one now, so they are forgotten. */
static void extend(mt_sym_t *sym, const mt_snap_t *snap, size_t missing)
{
	sym->mods = mt_xrealloc(sym->mods, (sym->nmods + missing) * sizeof(*sym->mods));
	dwfl_report_begin_add(sym->dwfl);
	size_t had = sym->nmods;
	for (size_t i = 0; i < snap->nmodules; i++) {
		bool found = false;
		for (size_t j = 0; j < had && !found; j++)
			found = same_module(&snap->modules[i], &sym->mods[j].rec);
		if (!found)
			add_module(sym, &snap->modules[i]);
	}
	dwfl_report_end(sym->dwfl, NULL, NULL);
	qsort(sym->mods, sym->nmods, sizeof(*sym->mods), cmp_mod);
	struct cached *c, *tmp;
	HASH_ITER(hh, sym->cache, c, tmp)
	{
		if (!c->f[0].module) {
			HASH_DEL(sym->cache, c);
			free(c);
		}
	}
}

/* Whether a process wrote a perf map: its JIT addresses are its own. */
static bool has_perf_map(uint32_t pid)
{
	char *path = perf_map_path(pid);
	bool yes = access(path, F_OK) == 0;
	free(path);
	return yes;
}

mt_sym_t *mt_sym_open(const mt_snap_t *snap)
{
	for (mt_sym_t *s = open_syms; s; s = s->next) {
		if (s->jit.pid != snap->pid && (has_perf_map(s->jit.pid) || has_perf_map(snap->pid)))
			continue;
		ssize_t missing = missing_modules(s, snap);
		if (missing < 0)
			continue;
		if (missing > 0)
			extend(s, snap, (size_t)missing);
		s->refs++;
		return s;
	}
	mt_sym_t *sym = calloc(1, sizeof(*sym));
	if (!sym)
		return NULL;
	sym->mods = calloc(snap->nmodules ? snap->nmodules : 1, sizeof(*sym->mods));
	sym->dwfl = dwfl_begin(&callbacks);
	if (!sym->mods || !sym->dwfl) {
		free(sym->mods);
		if (sym->dwfl)
			dwfl_end(sym->dwfl);
		free(sym);
		return NULL;
	}
	dwfl_report_begin(sym->dwfl);
	for (size_t i = 0; i < snap->nmodules; i++)
		add_module(sym, &snap->modules[i]);
	dwfl_report_end(sym->dwfl, NULL, NULL);
	qsort(sym->mods, sym->nmods, sizeof(*sym->mods), cmp_mod);
	sym->jit.pid = snap->pid;
	sym->start_wall_ns = snap->start_wall_ns;
	sym->refs = 1;
	sym->next = open_syms;
	open_syms = sym;
	return sym;
}

static const struct mod *find_mod(const mt_sym_t *sym, uint64_t addr)
{
	size_t a = 0, b = sym->nmods;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (sym->mods[m].rec.hi <= addr)
			a = m + 1;
		else
			b = m;
	}
	if (a < sym->nmods && sym->mods[a].rec.lo <= addr)
		return &sym->mods[a];
	return NULL;
}

/* Joins a relative DWARF path with the unit's compilation directory and
 * folds "dir/../" so the same file always prints the same way. */
/* Debian builds its packages in /build/reproducible-path/SOURCE-VERSION/
 * (Python's compilation directory, say): a path there names a file of the
 * source tree, and is shown from the tree's root, Objects/listobject.c as
 * glibc's nptl/pthread_create.c is. */
#define DEBIAN_BUILD_ROOT "/build/reproducible-path/"
static const char *in_source_tree(const char *path)
{
	size_t n = strlen(DEBIAN_BUILD_ROOT);
	if (!path || strncmp(path, DEBIAN_BUILD_ROOT, n) != 0)
		return path;
	const char *slash = strchr(path + n, '/');
	return slash && slash[1] ? slash + 1 : path;
}

static const char *full_path(mt_sym_t *sym, Dwarf_Die *cu, const char *file)
{
	Dwarf_Attribute attr;
	const char *dir;
	char *joined, *out;

	if (file && file[0] == '/')
		return keep(sym, in_source_tree(file), false);
	if (!file || !cu || !dwarf_attr(cu, DW_AT_comp_dir, &attr) ||
	    !(dir = dwarf_formstring(&attr)))
		return keep(sym, file, false);
	/* a relative compilation directory (Debian's packages: "./nptl", the
	 * build root mapped to "."): the line table's name is relative to the
	 * build root already ("./nptl/pthread_create.c"), and stays relative,
	 * "nptl/pthread_create.c", not "/nptl/nptl/pthread_create.c" */
	bool rel = dir[0] != '/';
	if (rel) {
		const char *d = dir[0] == '.' && dir[1] == '/' ? dir + 2 : dir;
		const char *f = file[0] == '.' && file[1] == '/' ? file + 2 : file;
		size_t dl = strlen(d);
		if (!strncmp(f, d, dl) && f[dl] == '/')
			dir = ".";
	}
	if (asprintf(&joined, "%s/%s", dir, file) < 0)
		return keep(sym, file, false);
	out = malloc(strlen(joined) + 1);
	if (!out) {
		free(joined);
		return keep(sym, file, false);
	}
	/* component by component: "." vanishes, ".." drops the previous one */
	size_t n = 0;
	for (char *save, *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, "..")) {
			while (n > 0 && out[--n] != '/')
				;
			continue;
		}
		out[n++] = '/';
		size_t l = strlen(c);
		memcpy(out + n, c, l);
		n += l;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	if (rel && out[0] == '/')
		memmove(out, out + 1, n); /* relative it was, relative it stays */
	free(joined);
	const char *kept = keep(sym, in_source_tree(out), false);
	free(out);
	return kept;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = NULL;
	if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
	    dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
		name = dwarf_formstring(&attr);
	if (!name)
		name = dwarf_diename(die);
	if (!name && dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	return name;
}

static void index_add(struct cu_index *ix, Dwarf_Addr lo, Dwarf_Addr hi, Dwarf_Off die)
{
	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? ix->cap * 2 : 256;
		ix->v = mt_xrealloc(ix->v, ix->cap * sizeof(*ix->v));
	}
	ix->v[ix->n++] = (struct fn_range){lo, hi, die};
}

/* Every subprogram with code under die, nested ones too. */
static void index_walk(struct cu_index *ix, Dwarf_Die *die, int depth)
{
	Dwarf_Die child;
	if (depth > 64 || dwarf_child(die, &child) != 0)
		return;
	do {
		int tag = dwarf_tag(&child);
		if (tag == DW_TAG_subprogram) {
			Dwarf_Addr base, lo, hi;
			ptrdiff_t off = 0;
			while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0)
				if (hi > lo)
					index_add(ix, lo, hi, dwarf_dieoffset(&child));
		}
		if (tag == DW_TAG_subprogram || tag == DW_TAG_namespace || tag == DW_TAG_module ||
		    tag == DW_TAG_class_type || tag == DW_TAG_structure_type ||
		    tag == DW_TAG_union_type || tag == DW_TAG_lexical_block ||
		    tag == DW_TAG_inlined_subroutine)
			index_walk(ix, &child, depth + 1);
	} while (dwarf_siblingof(&child, &child) == 0);
}

static int cmp_range(const void *a, const void *b)
{
	const struct fn_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : (x->hi > y->hi) - (x->hi < y->hi);
}

static struct cu_index *unit_index(mt_sym_t *sym, Dwarf_Die *cu)
{
	struct cu_key key = {0};
	key.dbg = dwarf_cu_getdwarf(cu->cu);
	key.off = dwarf_dieoffset(cu);
	struct cu_index *ix;
	HASH_FIND(hh, sym->units, &key, sizeof(key), ix);
	if (ix)
		return ix;
	ix = mt_xmalloc(sizeof(*ix));
	memset(ix, 0, sizeof(*ix));
	ix->key = key;
	index_walk(ix, cu, 0);
	if (ix->n > 1)
		qsort(ix->v, ix->n, sizeof(*ix->v), cmp_range);
	HASH_ADD(hh, sym->units, key, sizeof(ix->key), ix);
	return ix;
}

/* The innermost subprogram of the unit whose code holds pc, or false. */
static bool function_at(mt_sym_t *sym, Dwarf_Die *cu, Dwarf_Addr pc, Dwarf_Die *out)
{
	struct cu_index *ix = unit_index(sym, cu);
	size_t a = first_above(ix->v, ix->n, pc);
	/* ranges starting at or below pc, nearest first: the smallest that
	 * holds pc (a nested function inside its parent's range) */
	const struct fn_range *best = NULL;
	for (size_t i = a; i > 0 && a - i < 64; i--) {
		const struct fn_range *r = &ix->v[i - 1];
		if (pc < r->hi && (!best || r->hi - r->lo < best->hi - best->lo))
			best = r;
	}
	return best && dwarf_offdie(ix->key.dbg, best->die, out) != NULL;
}

/* The scopes from die down to the innermost one holding pc: path[0] is
 * die; returns how many. */
static int scope_path(Dwarf_Die *die, Dwarf_Addr pc, Dwarf_Die *path, int max)
{
	int n = 0;
	path[n++] = *die;
	while (n < max) {
		Dwarf_Die child;
		bool deeper = false;
		if (dwarf_child(&path[n - 1], &child) != 0)
			break;
		do {
			int tag = dwarf_tag(&child);
			if ((tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
			     tag == DW_TAG_try_block || tag == DW_TAG_catch_block) &&
			    dwarf_haspc(&child, pc) == 1) {
				path[n++] = child;
				deeper = true;
				break;
			}
		} while (dwarf_siblingof(&child, &child) == 0);
		if (!deeper)
			break;
	}
	return n;
}

/* The frames of an inline chain: scopes innermost first (inlined
 * subroutines, lexical blocks, up to the subprogram), file and line those
 * of pc; each outer frame is where the inner one was inlined. */
static int chain_frames(mt_sym_t *sym, Dwarf_Die *cu, Dwarf_Die *scopes, int ns, const char *file,
			int line, mt_sframe_t *f, int max, const mt_sframe_t *proto)
{
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	if (ns > 0)
		dwarf_getsrcfiles(cu, &files, &nfiles);
	int n = 0;
	for (int i = 0; i < ns && n < max; i++) {
		int tag = dwarf_tag(&scopes[i]);
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		f[n] = *proto;
		f[n].func = keep(sym, die_name(&scopes[i]), true);
		f[n].file = full_path(sym, cu, file);
		f[n].line = line;
		n++;
		if (tag == DW_TAG_subprogram)
			break;
		Dwarf_Attribute attr;
		Dwarf_Word v;
		file = NULL;
		line = 0;
		if (dwarf_attr(&scopes[i], DW_AT_call_file, &attr) &&
		    dwarf_formudata(&attr, &v) == 0 && files && v < nfiles)
			file = dwarf_filesrc(files, v, NULL, NULL);
		if (dwarf_attr(&scopes[i], DW_AT_call_line, &attr) && dwarf_formudata(&attr, &v) == 0)
			line = (int)v;
	}
	return n;
}

/* The chain from the unit's function index; -1 when no function of the
 * unit holds pc. */
static int inline_chain(mt_sym_t *sym, Dwarf_Die *cu, Dwarf_Addr pc, const char *file, int line,
			mt_sframe_t *f, int max, const mt_sframe_t *proto)
{
	Dwarf_Die fn, path[64];
	if (!function_at(sym, cu, pc, &fn))
		return -1;
	int np = scope_path(&fn, pc, path, 64);
	for (int i = 0; i < np / 2; i++) { /* innermost first */
		Dwarf_Die t = path[i];
		path[i] = path[np - 1 - i];
		path[np - 1 - i] = t;
	}
	return chain_frames(sym, cu, path, np, file, line, f, max, proto);
}

static int cmp_symr(const void *a, const void *b)
{
	const struct symr *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static struct sym_index *symbols(mt_sym_t *sym, Dwfl_Module *dm)
{
	struct sym_index *ix;
	HASH_FIND_PTR(sym->symtabs, &dm, ix);
	if (ix)
		return ix;
	ix = mt_xmalloc(sizeof(*ix));
	memset(ix, 0, sizeof(*ix));
	ix->dm = dm;
	int n = dwfl_module_getsymtab(dm);
	if (n > 0)
		ix->v = mt_xmalloc((size_t)n * sizeof(*ix->v));
	for (int i = 1; i < n; i++) {
		GElf_Sym gs;
		GElf_Addr addr;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(dm, i, &gs, &addr, &shndx, NULL, NULL);
		int type = GELF_ST_TYPE(gs.st_info), bind = GELF_ST_BIND(gs.st_info);
		if (!name || !*name || shndx == SHN_UNDEF || shndx == SHN_ABS ||
		    type == STT_SECTION || type == STT_FILE || type == STT_TLS)
			continue;
		int rank = (type == STT_FUNC || type == STT_GNU_IFUNC ? 0 : 4) +
			   (bind == STB_GLOBAL ? 0
			    : bind == STB_WEAK ? 1
					       : 2);
		ix->v[ix->n++] = (struct symr){addr, addr + gs.st_size, name, rank};
	}
	if (ix->n > 1)
		qsort(ix->v, ix->n, sizeof(*ix->v), cmp_symr);
	HASH_ADD_PTR(sym->symtabs, dm, ix);
	return ix;
}

/* The symbol naming pc, by dwfl_module_addrinfo's choice; NULL: none. */
static const char *symbol_at(mt_sym_t *sym, Dwfl_Module *dm, GElf_Addr pc)
{
	struct sym_index *ix = symbols(sym, dm);
	size_t a = first_above(ix->v, ix->n, pc);
	const struct symr *best = NULL, *near = NULL;
	bool ended = false; /* a sized symbol ended between a label and pc */
	for (size_t i = a; i > 0 && a - i < 256; i--) {
		const struct symr *r = &ix->v[i - 1];
		if (r->hi == r->lo) {
			if (!near && !ended)
				near = r; /* the nearest sizeless symbol below */
			continue;
		}
		if (pc >= r->hi) {
			ended = true; /* it excludes the labels below its end */
			continue;
		}
		if (!best || r->rank < best->rank ||
		    (r->rank == best->rank && r->hi - r->lo < best->hi - best->lo))
			best = r;
	}
	return best ? best->name : near ? near->name : NULL;
}

/* Expands pc into its inline chain, innermost first. */
static int expand_inlines(mt_sym_t *sym, Dwfl_Module *dm, Dwarf_Addr pc, const char *file, int line,
			  mt_sframe_t *f, int max, const mt_sframe_t *proto)
{
	Dwarf_Addr bias = 0;
	Dwarf_Die *cu = dwfl_module_addrdie(dm, pc, &bias);
	Dwarf_Die *scopes = NULL;
	int n = 0;

	if (!cu)
		return 0;
	int fast = inline_chain(sym, cu, pc - bias, file, line, f, max, proto);
	if (fast >= 0)
		return fast; /* else: no function of the unit holds pc */
	/* dwarf_getscopes follows an inlined call into its abstract origin;
	 * the physical nesting of the innermost scope is the inline chain */
	int ns = dwarf_getscopes(cu, pc - bias, &scopes);
	if (ns > 0) {
		Dwarf_Die inner = scopes[0];
		free(scopes);
		scopes = NULL;
		ns = dwarf_getscopes_die(&inner, &scopes);
	}
	n = chain_frames(sym, cu, scopes, ns, file, line, f, max, proto);
	free(scopes);
	return n;
}

static int cmp_jit(const void *a, const void *b)
{
	const struct jit_name *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : x->order < y->order ? -1 : 1;
}

/* Reads the process's perf map, if it wrote one while it ran (a file older
 * than the process is another's, of a pid since reused). */
static void perf_map_load(mt_sym_t *sym)
{
	struct perf_map *pm = &sym->jit;
	pm->loaded = true;
	char *path = perf_map_path(pm->pid);
	struct stat st;
	FILE *f = NULL;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_mtime + 1 >= sym->start_wall_ns / 1000000000ull)
		f = fopen(path, "re");
	free(path);
	if (!f)
		return;
	size_t cap = 0;
	char *line = NULL;
	size_t len = 0;
	while (getline(&line, &len, f) > 0) {
		char *end;
		uint64_t lo = strtoull(line, &end, 16);
		if (end == line || *end != ' ')
			continue;
		char *p = end + 1;
		uint64_t size = strtoull(p, &end, 16);
		if (end == p || *end != ' ' || !size)
			continue;
		char *name = end + 1;
		name[strcspn(name, "\n")] = '\0';
		if (pm->n == cap) {
			cap = cap ? cap * 2 : 1024;
			pm->v = mt_xrealloc(pm->v, cap * sizeof(*pm->v));
		}
		char *label = mt_xasprintf("[jit] %s", name);
		pm->v[pm->n] = (struct jit_name){lo, lo + size, pm->n, keep(sym, label, false)};
		free(label);
		pm->n++;
	}
	free(line);
	fclose(f);
	if (pm->n > 1)
		qsort(pm->v, pm->n, sizeof(*pm->v), cmp_jit);
}

/* "[jit] NAME" from the perf map, else "[jit]". */
static const char *jit_name(mt_sym_t *sym, uint64_t pc)
{
	struct perf_map *pm = &sym->jit;
	if (!pm->loaded)
		perf_map_load(sym);
	size_t lo = first_above(pm->v, pm->n, pc);
	const struct jit_name *best = NULL;
	for (size_t i = lo; i > 0 && lo - i < 64; i--) {
		const struct jit_name *e = &pm->v[i - 1];
		if (pc < e->hi && (!best || e->order > best->order))
			best = e;
	}
	return best ? best->name : "[jit]";
}

int mt_sym_lookup(mt_sym_t *sym, uint64_t addr, const mt_sframe_t **out)
{
	struct cached *c;
	HASH_FIND(hh, sym->cache, &addr, sizeof(addr), c);
	if (c) {
		*out = c->f;
		return c->n;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		static mt_sframe_t none;
		*out = &none;
		return 1;
	}
	c->addr = addr;

	const mt_pyframe_t *py = mt_snap_pyframe(addr);
	if (py) {
		c->f[0] = (mt_sframe_t){
			.func = py->func, .file = py->file, .line = py->line, .python = true};
		c->n = 1;
		HASH_ADD(hh, sym->cache, addr, sizeof(c->addr), c);
		*out = c->f;
		return c->n;
	}
	const struct mod *m = find_mod(sym, addr);
	mt_sframe_t proto = {0};
	/* a return address: the call is the instruction before it */
	Dwarf_Addr pc = addr ? addr - 1 : 0;
	if (m) {
		proto.module = m->rec.path;
		proto.offset = addr - m->rec.bias;
	}
	Dwfl_Module *dm = m && m->usable ? dwfl_addrmodule(sym->dwfl, pc) : NULL;
	if (dm) {
		const char *file = NULL;
		int line = 0;
		Dwfl_Line *l = dwfl_module_getsrc(dm, pc);
		if (l)
			file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
		c->n = expand_inlines(sym, dm, pc, file, line, c->f, MAX_INLINE, &proto);
		if (c->n == 0) {
			c->f[0] = proto;
			c->f[0].func = keep(sym, symbol_at(sym, dm, pc), true);
			Dwarf_Addr bias;
			c->f[0].file = full_path(sym, dwfl_module_addrdie(dm, pc, &bias), file);
			c->f[0].line = line;
			c->n = 1;
		}
	} else {
		c->f[0] = proto;
		if (!m && addr) {
			/* no loaded object holds it: code made at run time */
			c->f[0].jit = true;
			c->f[0].func = jit_name(sym, pc);
		}
		c->n = 1;
	}
	HASH_ADD(hh, sym->cache, addr, sizeof(c->addr), c);
	*out = c->f;
	return c->n;
}

void mt_sym_close(mt_sym_t *sym)
{
	struct cached *c, *tmp;
	if (!sym || --sym->refs > 0)
		return;
	for (mt_sym_t **p = &open_syms; *p; p = &(*p)->next)
		if (*p == sym) {
			*p = sym->next;
			break;
		}
	HASH_ITER(hh, sym->cache, c, tmp)
	{
		HASH_DEL(sym->cache, c);
		free(c);
	}
	free(sym->jit.v);
	struct cu_index *u, *utmp;
	HASH_ITER(hh, sym->units, u, utmp)
	{
		HASH_DEL(sym->units, u);
		free(u->v);
		free(u);
	}
	struct sym_index *t, *ttmp;
	HASH_ITER(hh, sym->symtabs, t, ttmp)
	{
		HASH_DEL(sym->symtabs, t);
		free(t->v);
		free(t);
	}
	if (sym->dwfl)
		dwfl_end(sym->dwfl);
	for (size_t i = 0; i < sym->nstrings; i++)
		free(sym->strings[i]);
	free(sym->strings);
	for (size_t i = 0; i < sym->nmods; i++)
		free(sym->mods[i].rec.path);
	free(sym->mods);
	free(sym);
}
