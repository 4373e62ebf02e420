/* SPDX-License-Identifier: MIT */
/*
 * output.c - the file a command writes (export, report): all of it or
 * nothing. A regular file, or a new one, is written to a hidden temporary
 * file in the target's directory and renamed over it once complete, so a
 * reader sees the old file or the whole new one; an existing file keeps its
 * mode, a symbolic link stays one (its target is replaced). '-' is standard
 * output; an existing path that is not a regular file (a pipe, a device) is
 * written in place, as there is nothing to rename. Any failure ends the
 * command with one line and exit status 2, the temporary file removed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

void mt_output_fail(mt_output_t *o, int err)
{
	if (o->tmp)
		unlink(o->tmp);
	char *shown = mt_printable(o->path ? o->path : "standard output");
	fprintf(stderr, "memtrace %s: cannot write %s: %s\n", o->cmd, shown, strerror(err));
	free(shown);
	exit(MT_EXIT_INPUT);
}

void mt_output_open(mt_output_t *o, const char *cmd, const char *path)
{
	struct stat st;
	mode_t mask = umask(0);

	umask(mask);
	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	/* a file size limit makes a write fail (and the temp file go), not kill */
	signal(SIGXFSZ, SIG_IGN);
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return;
	}
	o->path = path;
	mode_t mode = 0666 & ~mask;
	char *target = NULL;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			mt_output_fail(o, EISDIR);
		if (!S_ISREG(st.st_mode)) {
			if (!(o->f = fopen(path, "we")))
				mt_output_fail(o, errno);
			return;
		}
		mode = st.st_mode & 07777;
		target = realpath(path, NULL);
	}
	if (!target)
		target = mt_xasprintf("%s", path);
	char *dcopy = mt_xasprintf("%s", target), *bcopy = mt_xasprintf("%s", target);
	char *tmp = mt_xasprintf("%s/.%s.XXXXXX", dirname(dcopy), basename(bcopy));
	free(dcopy);
	free(bcopy);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		free(tmp);
		free(target);
		mt_output_fail(o, errno);
	}
	o->tmp = tmp;
	o->target = target;
	if (fchmod(fd, mode) != 0 || !(o->f = fdopen(fd, "w"))) {
		int err = errno;
		close(fd);
		mt_output_fail(o, err);
	}
}

void mt_output_commit(mt_output_t *o)
{
	errno = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		mt_output_fail(o, errno ? errno : EIO);
	if (o->f == stdout)
		return;
	if (o->tmp && fsync(fileno(o->f)) != 0) {
		int err = errno;
		fclose(o->f);
		mt_output_fail(o, err);
	}
	if (fclose(o->f) != 0)
		mt_output_fail(o, errno);
	if (o->tmp && rename(o->tmp, o->target) != 0)
		mt_output_fail(o, errno);
	free(o->tmp);
	free(o->target);
	o->tmp = o->target = NULL;
}
