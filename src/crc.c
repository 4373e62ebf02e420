/* SPDX-License-Identifier: MIT */
/*
 * crc.c - the snapshot checksum: zlib's crc32, fed in chunks zlib's uInt
 * length can hold. zlib's crc32 neither allocates nor locks, so the library
 * may call it while dumping.
 */
#include <zlib.h>

#include "format.h"

uint32_t mt__crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}
