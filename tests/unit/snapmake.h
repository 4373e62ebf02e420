/* SPDX-License-Identifier: MIT */
/*
 * snapmake.h - a snapshot made in memory for the C unit tests, with the
 * library's own record encoder (format.c): snap_begin writes the file
 * header, mt_rec_put(desc, &rec, snap_emit, buf) each record, snap_finish
 * the END record with the file's size and zlib's CRC-32 (an oracle apart
 * from crc.c). Include it once per test program.
 */
#ifndef MT_TEST_SNAPMAKE_H
#define MT_TEST_SNAPMAKE_H

#include <string.h>
#include <zlib.h>

#include "format.h"

typedef struct snapbuf {
	unsigned char b[1 << 16];
	size_t n;
} snapbuf_t;

static void snap_emit(void *arg, const void *p, size_t n)
{
	snapbuf_t *o = arg;
	if (o->n + n <= sizeof(o->b))
		memcpy(o->b + o->n, p, n);
	o->n += n;
}

static void snap_begin(snapbuf_t *o, uint16_t minor)
{
	unsigned char h[16] = "MEMTRACE";
	o->n = 0;
	mt__put_u16(h + 8, MT_FORMAT_MAJOR);
	mt__put_u16(h + 10, minor);
	memset(h + 12, 0, 4);
	snap_emit(o, h, 16);
}

static void snap_finish(snapbuf_t *o)
{
	unsigned char e[24];
	mt__put_u16(e, MT_REC_END);
	mt__put_u16(e + 2, 0);
	mt__put_u32(e + 4, MT_END_PAYLOAD_LEN);
	mt__put_u64(e + 8, o->n + 24);
	snap_emit(o, e, 16);
	mt__put_u32(e + 16, (uint32_t)crc32(0, o->b, (uInt)o->n));
	mt__put_u32(e + 20, MT_END_MAGIC);
	snap_emit(o, e + 16, 8);
}

#endif
