/* SPDX-License-Identifier: MIT */
/*
 * fuzz_snapread.c - libFuzzer target for the snapshot reader (built by
 * tests/fuzz/run.sh with clang, ASan and UBSan; the checksum is not checked
 * in this build, so that mutations reach the parser). Every input must give
 * a snapshot or a one-line error, never a crash, a hang or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snapread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mt_snap_t s;
	char err[512];
	if (mt_snap_parse(data, size, "fuzz.snap", &s, err, sizeof(err)) == 0) {
		/* walk what was read, as the analyzer does */
		uint64_t sum = 0;
		for (size_t i = 0; i < s.nsites; i++)
			for (int j = 0; j < s.sites[i].nframes; j++) {
				const mt_pyframe_t *f = mt_snap_pyframe(s.sites[i].frames[j]);
				sum += f ? strlen(f->file) + strlen(f->func) + (uint64_t)f->line
					 : s.sites[i].frames[j];
			}
		mt_snap_use_native(&s);
		for (size_t i = 0; i < s.nsites; i++)
			for (int j = 0; j < s.sites[i].nframes; j++)
				sum += s.sites[i].frames[j];
		for (size_t i = 0; i < s.nmodules; i++)
			sum += strlen(s.modules[i].path);
		(void)sum;
		mt_snap_free(&s);
	} else if (!memchr(err, '\n', strnlen(err, sizeof(err))) && strlen(err) == 0) {
		abort(); /* a failure must say why */
	}
	return 0;
}
