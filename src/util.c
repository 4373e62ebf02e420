/* SPDX-License-Identifier: MIT */
/*
 * util.c - the small libc replacements every hook path may use: a raw write
 * loop and a tiny formatter. No stdio, no malloc, nothing that can take a
 * lock the host might hold.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int mt__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static size_t put_str(char *buf, size_t cap, size_t at, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t cap, size_t at, unsigned long long v, int base, int neg)
{
	char tmp[32];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % (unsigned)base];
		v /= (unsigned)base;
	} while (v);
	if (neg && at + 1 < cap)
		buf[at++] = '-';
	while (n > 0 && at + 1 < cap)
		buf[at++] = tmp[--n];
	return at;
}

size_t mt__vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
	size_t at = 0;

	if (cap == 0)
		return 0;
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			if (at + 1 < cap)
				buf[at++] = *f;
			continue;
		}
		f++;
		int longs = 0;
		while (*f == 'l') {
			longs++;
			f++;
		}
		switch (*f) {
		case 's': at = put_str(buf, cap, at, va_arg(ap, const char *)); break;
		case 'd': {
			long long v = longs > 1 ? va_arg(ap, long long)
				      : longs	? va_arg(ap, long)
						: va_arg(ap, int);
			at = put_num(buf, cap, at,
				     v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10,
				     v < 0);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = longs > 1 ? va_arg(ap, unsigned long long)
					       : longs	 ? va_arg(ap, unsigned long)
							 : va_arg(ap, unsigned);
			at = put_num(buf, cap, at, v, *f == 'x' ? 16 : 10, 0);
			break;
		}
		case '%':
			if (at + 1 < cap)
				buf[at++] = '%';
			break;
		default:
			if (!*f)
				f--;
			break;
		}
	}
	buf[at] = '\0';
	return at;
}

size_t mt__fmt(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = mt__vfmt(buf, cap, fmt, ap);
	va_end(ap);
	return n;
}

void mt__warn(const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	size_t n = mt__fmt(buf, sizeof(buf) - 1, "memtrace[%d]: ", (int)getpid());
	va_list ap;

	va_start(ap, fmt);
	n += mt__vfmt(buf + n, sizeof(buf) - 1 - n, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	(void)mt__write_all(2, buf, n);
	errno = saved;
}

size_t mt__read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	if (fd < 0 || cap == 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len;
}

uint64_t mt__now_ns(int clock)
{
	struct timespec ts;
	if (clock_gettime(clock, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The loaded object one of whose segments holds an address, by
 * dl_iterate_phdr: dladdr would also scan the object's whole symbol table
 * for the nearest name (a tenth of memtrace's start-up, seven calls into
 * libc's 3,000 symbols), which nothing here needs. */
struct obj_find {
	uintptr_t addr, lo, hi; /* lo, hi: its executable segments */
	const void *id;		/* its program headers: one per object */
};

bool mt__phdr_holds(const struct dl_phdr_info *info, uintptr_t addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && addr >= a && addr < a + ph->p_memsz)
			return true;
	}
	return false;
}

static int obj_of(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct obj_find *f = arg;
	if (!mt__phdr_holds(info, f->addr))
		return 0;
	uintptr_t lo = 0, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		uintptr_t a = info->dlpi_addr + ph->p_vaddr, e = a + ph->p_memsz;
		if (!lo || a < lo)
			lo = a;
		if (e > hi)
			hi = e;
	}
	f->id = info->dlpi_phdr;
	f->lo = lo;
	f->hi = hi;
	return 1;
}

static bool object_of(const void *addr, struct obj_find *f)
{
	*f = (struct obj_find){.addr = (uintptr_t)addr};
	return dl_iterate_phdr(obj_of, f) != 0;
}

bool mt__module_text(const void *addr, uintptr_t *lo, uintptr_t *hi)
{
	struct obj_find f;
	if (!object_of(addr, &f) || !f.hi)
		return false;
	*lo = f.lo;
	*hi = f.hi;
	return true;
}

bool mt__same_object(const void *a, const void *b)
{
	struct obj_find x, y;
	return object_of(a, &x) && object_of(b, &y) && x.id == y.id;
}

void mt__dir_each(int fd, bool (*fn)(int fd, const char *name, void *arg), void *arg)
{
	char buf[4096];
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (long at = 0; at < n;) {
			const struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (const void *)(buf + at);
			at += d->reclen;
			if (!fn(fd, d->name, arg))
				return;
		}
	}
}
