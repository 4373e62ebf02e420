/* SPDX-License-Identifier: MIT */
/*
 * crc.c - the snapshot checksum: CRC-32 as zlib computes it (the reflected
 * polynomial 0xedb88320, initial and final inversion), eight bytes a step
 * with eight tables (slicing-by-8). It is its own code, not zlib's crc32,
 * because the library is loaded into every process of a build: loading
 * libz.so for this one function cost each process about 55 us of CPU, more
 * than the checksum of its snapshot (tests/unit/crc.c checks the two agree).
 * No allocation and no lock: the tables are made at the first call, the
 * same values whichever thread makes them.
 */
#include <stdbool.h>
#include <string.h>

#include "format.h"

static uint32_t tab[8][256];
static bool made;

static void make_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
	__atomic_store_n(&made, true, __ATOMIC_RELEASE);
}

uint32_t mt__crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	if (!__atomic_load_n(&made, __ATOMIC_ACQUIRE))
		make_tables();
	crc = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				     (uint32_t)p[3] << 24);
		crc = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^ tab[5][(lo >> 16) & 0xff] ^
		      tab[4][lo >> 24] ^ tab[3][p[4]] ^ tab[2][p[5]] ^ tab[1][p[6]] ^ tab[0][p[7]];
	}
	while (len--)
		crc = tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
