/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - writes memtrace.<pid>.<seq>.snap files (format.h) from inside
 * the profiled process, atomically: a fresh temp file in the same directory
 * (O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600), written with raw write(2), fsync,
 * rename. Readers therefore see a complete snapshot or none. No stdio, no
 * hooked malloc, no DWARF: addresses and module load addresses only, the
 * analyzer symbolizes offline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h> /* rename(2) only: no stdio stream is ever used */
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define BUF_CAP (256u << 10)
#define MAX_WARNINGS 5

/* Serializes dumps; taken before any table lock (it is never held by a
 * hook). */
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t seq_pid;
static int exiting; /* the process is ending: no more signal or timer dumps */
static unsigned seq;
static int warnings;

typedef struct writer {
	int fd;
	unsigned char *buf;
	size_t len;
	uint32_t crc;
	uint64_t total;
	uint64_t limit; /* RLIMIT_FSIZE: never provoke SIGXFSZ */
	int err;
} writer_t;

static void w_flush(writer_t *w)
{
	if (w->err || w->len == 0)
		return;
	if (w->total + w->len > w->limit) {
		w->err = -EFBIG;
		return;
	}
	w->crc = mt__crc32(w->crc, w->buf, w->len);
	int r = mt__write_all(w->fd, w->buf, w->len);
	if (r < 0)
		w->err = r;
	w->total += w->len;
	w->len = 0;
}

static void w_bytes(writer_t *w, const void *p, size_t n)
{
	const unsigned char *src = p;
	while (n > 0 && !w->err) {
		if (w->len == BUF_CAP)
			w_flush(w);
		size_t k = BUF_CAP - w->len < n ? BUF_CAP - w->len : n;
		memcpy(w->buf + w->len, src, k);
		w->len += k;
		src += k;
		n -= k;
	}
}

static void w_emit(void *arg, const void *p, size_t n)
{
	w_bytes(arg, p, n);
}

/* One record, as format.h lists its fields. */
static void w_put(writer_t *w, uint16_t type, const void *rec)
{
	mt_rec_put(mt_rec_desc(type), rec, w_emit, w);
}

static mt_str_t str_of(const char *s, size_t n)
{
	return (mt_str_t){s, (uint32_t)n};
}

static char exe_path[4096];

static void write_meta(writer_t *w, int reason, uint64_t wall, uint64_t mono)
{
	char cmd[4096];
	ssize_t elen = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
	if (elen < 0)
		elen = 0;
	exe_path[elen] = '\0';
	size_t clen = mt__read_file("/proc/self/cmdline", cmd, sizeof(cmd));
	while (clen > 0 && cmd[clen - 1] == '\0')
		clen--;

	mt_rec_meta_t m = {
		.pid = (uint32_t)getpid(),
		.ppid = (uint32_t)getppid(),
		.seq = seq,
		.reason = (uint32_t)reason,
		.wall_ns = wall,
		.mono_ns = mono,
		.start_wall_ns = mt__start_wall_ns,
		.start_mono_ns = mt__start_mono_ns,
		.depth = (uint32_t)mt__opt.depth,
		.page_size = (uint32_t)sysconf(_SC_PAGESIZE),
		.exe = str_of(exe_path, (size_t)elen),
		.cmdline = str_of(cmd, clen),
		.sample_mean = mt__sample_mean,
		.attach_wall_ns = mt__attach_wall_ns,
	};
	w_put(w, MT_REC_META, &m);
}

static void write_totals(writer_t *w)
{
	mt_totals_t t;
	mt__totals_get(&t);
	mt_rec_totals_t r = {.counters = {(const uint64_t *)&t, NULL, (uint32_t)MT_TOTALS_N}};
	w_put(w, MT_REC_TOTALS, &r);
}

/* The GNU build id from a module's PT_NOTE segments, if any. */
static size_t build_id(const struct dl_phdr_info *info, const unsigned char **out)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
		const unsigned char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			const unsigned char *name = p + sizeof(*n);
			const unsigned char *desc = name + ((n->n_namesz + 3) & ~3u);
			const unsigned char *next = desc + ((n->n_descsz + 3) & ~3u);
			if (next > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    memcmp(name, "GNU", 4) == 0 && n->n_descsz <= MT_MAX_BUILD_ID) {
				*out = desc;
				return n->n_descsz;
			}
			p = next;
		}
	}
	return 0;
}

static int write_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	writer_t *w = arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	const unsigned char *bid = NULL;
	(void)size;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t a = info->dlpi_addr + ph->p_vaddr;
		if (a < lo)
			lo = a;
		if (a + ph->p_memsz > hi)
			hi = a + ph->p_memsz;
	}
	if (hi == 0)
		return 0;
	const char *path = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : exe_path;
	size_t plen = strnlen(path, 4096);
	size_t blen = build_id(info, &bid);

	mt_rec_module_t m = {
		.bias = info->dlpi_addr,
		.lo = lo,
		.hi = hi,
		.build_id = str_of((const char *)bid, blen),
		.path = str_of(path, plen),
	};
	w_put(w, MT_REC_MODULE, &m);
	return 0;
}

static void write_alloc(writer_t *w)
{
	mt_alloc_stats_t st;
	mt__alloc_stats(&st);
	size_t nlen = strnlen(st.name, sizeof(st.name));
	mt_rec_alloc_t r = {
		.figures = {(const uint64_t *)&st, NULL, (uint32_t)MT_ALLOC_STATS_N},
		.allocator = str_of(st.name, nlen),
	};
	w_put(w, MT_REC_ALLOC, &r);
}

/* The code ids the written sites name: each gets its CODE record. */
static uint8_t *codes_used;
static uint32_t codes_cap;

static void write_site(const mt_site_t *s, void *arg)
{
	writer_t *w = arg;
	uint32_t id;
	int domain, n;
	const uintptr_t *frames;
	uint64_t c[MT_SITE_NCOUNTERS];

	_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "frame words are 64-bit");
	mt__site_read(s, &id, &domain, &n, &frames, c);
	mt_rec_site_t r = {
		.id = id,
		.domain = (uint8_t)domain,
		.counters = {c, NULL, MT_SITE_NCOUNTERS},
		.frames = {(const uint64_t *)frames, NULL, (uint32_t)n},
	};
	w_put(w, MT_REC_SITE, &r);
	for (int i = 0; i < n; i++) {
		uint32_t code = mt_frame_is_py(frames[i]) ? mt_frame_py_code(frames[i]) : 0;
		if (code && code < codes_cap && codes_used)
			codes_used[code / 8] |= (uint8_t)(1u << (code % 8));
	}
}

/* The interpreter, then the code objects the sites ran. A site's code id
 * is published before the site (python.c), so every one named is here. */
static void write_python(writer_t *w)
{
	uint32_t version;
	uint64_t lo, hi;
	mt__py_describe(&version, &lo, &hi);
	mt_rec_python_t py = {.version = version, .eval_lo = lo, .eval_hi = hi};
	w_put(w, MT_REC_PYTHON, &py);
	/* codes made while the sites were written are all kept: a site
	 * written may name one */
	uint32_t count = mt__py_code_count();
	for (uint32_t id = 1; id < count; id++) {
		mt_pycode_t c;
		if (id < codes_cap && codes_used && !(codes_used[id / 8] & (1u << (id % 8))))
			continue;
		if (!mt__py_code_get(id, &c))
			continue;
		mt_rec_code_t r = {
			.id = id,
			.first_line = c.first,
			.line_kind = (uint8_t)c.kind,
			.file = str_of(c.file, c.flen),
			.function = str_of(c.name, c.nlen),
			.line_table = str_of((const char *)c.table, c.tlen),
		};
		w_put(w, MT_REC_CODE, &r);
	}
}

static void write_census(writer_t *w, int status)
{
	mt_rec_census_t r = {
		.status = (uint32_t)status,
		.flags = mt__py_census_partial() ? 1 : 0,
		.hold_ns = mt__py_census_hold_ns(),
	};
	w_put(w, MT_REC_CENSUS, &r);
	size_t at = 0;
	uint32_t site;
	const char *name;
	uint64_t count, bytes;
	while (status == MT_CENSUS_DONE && mt__py_census_next(&at, &site, &name, &count, &bytes)) {
		size_t n = strnlen(name, 255);
		mt_rec_objtype_t o = {
			.site = site, .objects = count, .bytes = bytes, .type = str_of(name, n)};
		w_put(w, MT_REC_OBJTYPE, &o);
	}
}

/* The leak scan's note and each heap callsite's classes (a final
 * snapshot's; none when no scan was asked for). */
static void write_leaks(writer_t *w)
{
	mt_leak_info_t li;
	mt__leak_scan_info(&li);
	if (!li.status)
		return;
	size_t n = strnlen(li.note, sizeof(li.note));
	mt_rec_leakscan_t r = {
		.status = (uint32_t)li.status,
		.threads = li.threads,
		.threads_no_sp = li.no_sp,
		.ns = li.ns,
		.blocks = li.blocks,
		.root_bytes = li.root_bytes,
		.note = str_of(li.note, n),
	};
	w_put(w, MT_REC_LEAKSCAN, &r);
	for (uint32_t id = 1, end = mt__site_id_end(); id < end; id++) {
		const uint64_t *v = mt__leak_site(id);
		if (!v)
			continue;
		mt_rec_leak_t l = {.site = id, .classes = {v, NULL, 2 * MT_LEAK_NCLASS}};
		w_put(w, MT_REC_LEAK, &l);
	}
}

static void write_end(writer_t *w)
{
	unsigned char b[16];

	mt__put_u16(b, MT_REC_END);
	mt__put_u16(b + 2, 0);
	mt__put_u32(b + 4, MT_END_PAYLOAD_LEN);
	mt__put_u64(b + 8, w->total + w->len + 16 + 8);
	w_bytes(w, b, 16);
	w_flush(w);
	/* the checksum covers every byte before its own field */
	mt__put_u32(b, w->crc);
	mt__put_u32(b + 4, MT_END_MAGIC);
	w_bytes(w, b, 8);
	w_flush(w);
}

/* The snapshot directory, resolved once at start: a symlink given then is
 * followed then; one put in its place later is refused (O_NOFOLLOW), so
 * nothing is ever written outside the directory chosen at start. */
static char dir_real[4096];

/* Opens the directory afresh (a descriptor kept open could be closed and
 * reused by the program): one we own, or a sticky one such as /tmp;
 * refused when others may write it without the sticky bit. */
static int open_dir(void)
{
	struct stat st;
	int fd = open(dir_real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct stat lst;
		if ((e == ENOTDIR || e == ELOOP) && lstat(dir_real, &lst) == 0 &&
		    S_ISLNK(lst.st_mode))
			return -ELOOP;
		return -e;
	}
	if (fstat(fd, &st) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	bool sticky = st.st_mode & S_ISVTX;
	if (((st.st_mode & (S_IWOTH | S_IWGRP)) && !sticky) ||
	    (st.st_uid != geteuid() && !sticky)) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

static const char *errname(int e)
{
	switch (e) {
	case ENOENT: return "no such directory";
	case ENOTDIR: return "not a directory";
	case ELOOP: return "refused: replaced by a symbolic link since start";
	case EPERM:
		return "refused: owned by another user or writable by others without the sticky "
		       "bit";
	case EACCES: return "permission denied";
	case ENOSPC: return "no space left on device";
	case EFBIG: return "file size limit (ulimit -f) reached";
	case EROFS: return "read-only file system";
	case EDQUOT: return "disk quota exceeded";
	case ENOMEM: return "out of memory";
	default: return "I/O error";
	}
}

static int said_missing; /* the directory was missing at start, and said so */

static void warn_dump(const char *what, int err)
{
	if (warnings >= MAX_WARNINGS || (said_missing && err == -ENOENT))
		return;
	warnings++;
	/* a process that changed user (a server's workers, setpriv) meets a
	 * directory it may not write: the fix goes in the message */
	char hint[160] = "";
	if (err == -EPERM || err == -EACCES)
		mt__fmt(hint, sizeof(hint),
			"; for uid %d too, make it writable by all and sticky, as /tmp is: "
			"chmod 1777 %s",
			(int)geteuid(), mt__opt.dir);
	mt__warn("cannot write a snapshot in %s: %s (%s, errno %d)%s%s", mt__opt.dir,
		 errname(-err), what, -err, hint,
		 warnings == MAX_WARNINGS ? "; further failures are not reported" : "");
}

int mt__dump(int reason, char *path, size_t pathlen)
{
	char final[4300];
	writer_t w = {.fd = -1, .limit = UINT64_MAX};
	int dfd = -1;
	struct rlimit rl;
	int err;

	/* attached: objects dlopen'ed since the last snapshot get the hooks */
	if (reason == MT_REASON_SIGNAL || reason == MT_REASON_INTERVAL || reason == MT_REASON_API)
		mt__attach_patch();
	uint64_t wall = mt__now_ns(CLOCK_REALTIME), mono = mt__now_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&dump_lock);
	if (exiting && (reason == MT_REASON_SIGNAL || reason == MT_REASON_INTERVAL)) {
		pthread_mutex_unlock(&dump_lock);
		return -ESHUTDOWN;
	}
	pid_t pid = getpid();
	if (pid != seq_pid) {
		seq_pid = pid;
		seq = 0;
	}
	seq++;

	dfd = open_dir();
	if (dfd < 0) {
		err = dfd;
		warn_dump("directory check", err);
		goto out;
	}
	char name[128], tmp[128];
	mt__fmt(name, sizeof(name), "memtrace.%d.%u.snap", (int)pid, seq);
	mt__fmt(final, sizeof(final), "%s/%s", dir_real, name);
	w.buf = mt__map(BUF_CAP);
	if (!w.buf) {
		err = -ENOMEM;
		warn_dump("buffer", err);
		goto out;
	}
	for (int attempt = 0; attempt < 16 && w.fd < 0; attempt++) {
		mt__fmt(tmp, sizeof(tmp), ".memtrace.%d.%u.%x.tmp", (int)pid, seq,
			(unsigned)(mt__now_ns(CLOCK_MONOTONIC) ^ (uint64_t)attempt * 2654435761u));
		w.fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (w.fd < 0 && errno != EEXIST)
			break;
	}
	if (w.fd < 0) {
		err = -errno;
		warn_dump("create", err);
		goto out;
	}
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		w.limit = rl.rlim_cur;

	if (mt__opt.leak_scan == 2 || mt_reason_final((unsigned)reason))
		mt__leak_scan(); /* before the counters: close to the same moment */
	int census = mt__py_census(); /* before the counters: the same moment */
	mt__table_gather();
	unsigned char hdr[MT_FILE_HEADER_LEN] = {0};
	memcpy(hdr, MT_MAGIC, MT_MAGIC_LEN);
	mt__put_u16(hdr + 8, MT_FORMAT_MAJOR);
	mt__put_u16(hdr + 10, MT_FORMAT_MINOR);
	w_bytes(&w, hdr, sizeof(hdr));
	write_meta(&w, reason, wall, mono);
	write_totals(&w);
	write_alloc(&w);
	dl_iterate_phdr(write_module, &w);
	/* out of memory for the bitmap, every code is written */
	codes_cap = mt__py_code_count();
	size_t used_len = (codes_cap + 7) / 8;
	codes_used = codes_cap > 1 ? mt__map(used_len) : NULL;
	mt__sites_foreach(write_site, &w);
	mt__table_gather_end();
	if (mt__py_code_count() > 1)
		write_python(&w);
	if (census != MT_CENSUS_NONE)
		write_census(&w, census);
	if (codes_used)
		mt__unmap(codes_used, used_len);
	write_leaks(&w);
	mt__leak_scan_done();
	mt__scan_from = 0;
	write_end(&w);

	/* A final snapshot is on the exiting program's path, and fsync there
	 * was an eighth of a short process's CPU (cmake and shell scripts run
	 * hundreds): it goes to disk with the kernel's writeback instead. A
	 * power cut in the seconds after can lose it or leave it empty, never
	 * torn (the reader says which); snapshots of a running program, written
	 * by memtrace's thread, are synced as before. */
	bool sync = !mt_reason_final((unsigned)reason);
	err = w.err;
	if (!err && sync && fsync(w.fd) != 0 && errno != EINVAL)
		err = -errno;
	if (close(w.fd) != 0 && !err && errno != EINTR)
		err = -errno;
	if (!err && renameat(dfd, tmp, dfd, name) != 0)
		err = -errno;
	if (err) {
		unlinkat(dfd, tmp, 0);
		warn_dump("write", err);
		goto out;
	}
	if (sync)
		(void)fsync(dfd); /* the rename itself survives a crash */
	if (path && pathlen)
		mt__fmt(path, pathlen, "%s", final);
	if (mt__opt.verbose)
		mt__warn("wrote %s", final);
out:
	if (err)
		seq--; /* the next dump reuses the number: names stay dense */
	if (dfd >= 0)
		close(dfd);
	mt__unmap(w.buf, BUF_CAP);
	pthread_mutex_unlock(&dump_lock);
	return err;
}

/* At exit: waits for a dump under way to finish and stops later signal and
 * timer dumps, so that no dump is cut short by the end of the process. */
void mt__snapshot_exiting(void)
{
	pthread_mutex_lock(&dump_lock);
	exiting = 1;
	pthread_mutex_unlock(&dump_lock);
}

void mt__snapshot_init(void)
{
	seq_pid = getpid();
	if (!realpath(mt__opt.dir, dir_real)) {
		if (errno == ENOENT) {
			/* said now, not first at the exit: the run is still young */
			mt__warn("cannot write snapshots in %s: no such directory (checked again at "
				 "each snapshot)",
				 mt__opt.dir);
			said_missing = 1;
		}
		mt__fmt(dir_real, sizeof(dir_real), "%s", mt__opt.dir);
	}
}

/* A temp file of a process that no longer exists, ours: removed. */
static bool sweep_one(int dfd, const char *name, void *arg)
{
	(void)arg;
	size_t len = strlen(name);
	if (strncmp(name, ".memtrace.", 10) != 0 || len < 15 || strcmp(name + len - 4, ".tmp") != 0)
		return true;
	long pid = 0;
	const char *p = name + 10;
	for (; *p >= '0' && *p <= '9' && pid < 1 << 30; p++)
		pid = pid * 10 + (*p - '0');
	struct stat st;
	if (*p != '.' || pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
		return true;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    st.st_uid == geteuid())
		unlinkat(dfd, name, 0);
	return true;
}

/* Removes the temp files of dumps that a killed process left behind: only
 * ours (same user), only regular files named as memtrace names them, only
 * of processes that no longer exist. Run on the dump thread, once per
 * process, after its first snapshot: never at start or exit, where a
 * directory of thousands of snapshots (a build's) would cost every short
 * process a read of all of it. Raw getdents64: no malloc, so the thread
 * never gets an arena of the program's allocator. */
void mt__snapshot_sweep_once(void)
{
	static int swept_by;
	if (__atomic_load_n(&swept_by, __ATOMIC_RELAXED) == seq_pid)
		return;
	int dfd = open_dir();
	if (dfd < 0)
		return;
	__atomic_store_n(&swept_by, seq_pid, __ATOMIC_RELAXED);
	mt__dir_each(dfd, sweep_one, NULL);
	close(dfd);
}

void mt__snapshot_atfork_child(void)
{
	pthread_mutex_init(&dump_lock, NULL);
	exiting = 0;
	seq_pid = getpid();
	seq = 0;
	warnings = 0;
}
