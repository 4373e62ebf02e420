/* SPDX-License-Identifier: MIT */
/*
 * got.c - a loaded object's GOT slots, by the symbol each is bound to: what
 * attach.c patches in a running process, and what unwind.c patches in
 * libunwind (its sigprocmask) at start; and the libraries it needs (how
 * unwind.c finds another user of libunwind). Reads the object's own dynamic
 * section through the loader's program headers; writes a slot with its page
 * made writable for the moment when RELRO made it read-only.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "arch.h"

void mt__got_put(void **at, void *v, bool relro)
{
	size_t pg = mt__page_size();
	uintptr_t page = (uintptr_t)at & ~(uintptr_t)(pg - 1);
	if (relro && mprotect((void *)page, pg, PROT_READ | PROT_WRITE) != 0)
		return;
	__atomic_store_n(at, v, __ATOMIC_RELEASE);
	if (relro)
		(void)mprotect((void *)page, pg, PROT_READ);
}

uintptr_t mt__dyn_ptr(uintptr_t base, uintptr_t v)
{
	return v < base ? v + base : v;
}

static void relocs_each(uintptr_t base, const ElfW(Rela) *r, size_t bytes, const ElfW(Sym) *sym,
			const char *str, uintptr_t relro_lo, uintptr_t relro_hi, mt_got_fn fn,
			void *arg)
{
	for (size_t i = 0; i < bytes / sizeof(*r); i++) {
		unsigned type = ELF64_R_TYPE(r[i].r_info);
		if (type != MT_R_JUMP_SLOT && type != MT_R_GLOB_DAT)
			continue;
		void **at = (void **)(base + r[i].r_offset);
		bool relro = (uintptr_t)at >= relro_lo && (uintptr_t)at < relro_hi;
		fn(at, str + sym[ELF64_R_SYM(r[i].r_info)].st_name, relro, arg);
	}
}

/* The object's dynamic section, NULL if it has none. */
static const ElfW(Dyn) *dyn_of(const struct dl_phdr_info *info)
{
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			return (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	return NULL;
}

bool mt__dyn_needs(const struct dl_phdr_info *info, const char *part)
{
	const ElfW(Dyn) *dyn = dyn_of(info);
	const char *str = NULL;
	for (const ElfW(Dyn) *d = dyn; d && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_STRTAB)
			str = (const char *)mt__dyn_ptr(info->dlpi_addr, d->d_un.d_ptr);
	for (const ElfW(Dyn) *d = dyn; d && str && d->d_tag != DT_NULL; d++)
		if (d->d_tag == DT_NEEDED && strstr(str + d->d_un.d_val, part))
			return true;
	return false;
}

void mt__got_each(const struct dl_phdr_info *info, mt_got_fn fn, void *arg)
{
	uintptr_t base = info->dlpi_addr;
	const ElfW(Dyn) *dyn = dyn_of(info);
	uintptr_t relro_lo = 0, relro_hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = base + ph->p_vaddr;
			relro_hi = relro_lo + ph->p_memsz;
		}
	}
	if (!dyn)
		return;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const ElfW(Rela) *rela = NULL, *jmprel = NULL;
	size_t relasz = 0, pltrelsz = 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		switch (dyn->d_tag) {
		case DT_SYMTAB: sym = (const ElfW(Sym) *)mt__dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_STRTAB: str = (const char *)mt__dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_RELA: rela = (const ElfW(Rela) *)mt__dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_RELASZ: relasz = dyn->d_un.d_val; break;
		case DT_JMPREL: jmprel = (const ElfW(Rela) *)mt__dyn_ptr(base, dyn->d_un.d_ptr); break;
		case DT_PLTRELSZ: pltrelsz = dyn->d_un.d_val; break;
		}
	}
	if (!sym || !str)
		return;
	if (jmprel)
		relocs_each(base, jmprel, pltrelsz, sym, str, relro_lo, relro_hi, fn, arg);
	if (rela)
		relocs_each(base, rela, relasz, sym, str, relro_lo, relro_hi, fn, arg);
}
