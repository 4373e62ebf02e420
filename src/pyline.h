/* SPDX-License-Identifier: MIT */
/*
 * pyline.h - CPython's three line-table formats, decoded as the interpreter
 * itself maps an instruction's byte offset to a source line (PyCode_Addr2Line
 * in each version). One decoder for both sides: the library checks a running
 * interpreter's layout with it before trusting it, the analyzer turns a
 * snapshot's Python frames into lines with it. No allocation, no state:
 * every read stays inside [table, table + len).
 */
#ifndef MT_PYLINE_H
#define MT_PYLINE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Which table a CODE record carries (its `kind` byte). */
enum mt_pyline_kind {
	MT_PYLINE_LNOTAB = 1,	 /* 3.8, 3.9: co_lnotab (byte incr, signed line incr) */
	MT_PYLINE_LINETABLE = 2, /* 3.10: co_linetable, PEP 626 (byte length, line delta) */
	MT_PYLINE_LOCATIONS = 3, /* 3.11+: PEP 657 location table */
};

/* 3.11+: a 6-bit varint starting at t[*i]; stops at the table's end. */
static inline unsigned mt__pyline_varint(const unsigned char *t, size_t len, size_t *i)
{
	unsigned v = 0, shift = 0;
	while (*i < len && shift < 30) {
		unsigned b = t[(*i)++];
		v |= (b & 63u) << shift;
		shift += 6;
		if (!(b & 64))
			break;
	}
	return v;
}

/*
 * The line of the instruction at byte offset `off` of a code object whose
 * first line is `first`. A negative offset (a frame pushed but not started)
 * is the first line, as in CPython. Returns -1 where the table says "no
 * line" or does not cover the offset (tracemalloc prints such lines as 0).
 */
static inline int mt_pyline(int kind, const unsigned char *t, size_t len, int first, int off)
{
	if (off < 0)
		return first;
	/* 64-bit sums throughout: a damaged table (or first line) may add up
	 * past an int; such a line is none */
	if (kind == MT_PYLINE_LNOTAB) {
		long long line = first, addr = 0;
		for (size_t i = 0; i + 1 < len; i += 2) {
			addr += t[i];
			if (addr > off)
				break;
			line += (signed char)t[i + 1];
		}
		return line < INT_MIN || line > INT_MAX ? -1 : (int)line;
	}
	if (kind == MT_PYLINE_LINETABLE) {
		long long line = first, start = 0;
		for (size_t i = 0; i + 1 < len; i += 2) {
			long long end = start + t[i];
			int delta = (signed char)t[i + 1];
			long long cur = -1;
			if (delta != -128) {
				line += delta;
				cur = line;
			}
			if (start <= off && off < end)
				return cur < INT_MIN || cur > INT_MAX ? -1 : (int)cur;
			start = end;
		}
		return -1;
	}
	if (kind == MT_PYLINE_LOCATIONS) {
		long long line = first, start = 0;
		size_t i = 0;
		while (i < len) {
			unsigned b = t[i];
			if (!(b & 128))
				return -1; /* not at an entry's first byte: damaged */
			int code = (int)((b >> 3) & 15), delta = 0;
			long long end = start + 2 * (long long)((b & 7) + 1);
			size_t j = i + 1;
			if (code == 13 || code == 14) {
				unsigned u = mt__pyline_varint(t, len, &j);
				delta = (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
			} else if (code >= 10 && code <= 12) {
				delta = code - 10;
			}
			line += delta;
			if (start <= off && off < end)
				return code == 15 || line < INT_MIN || line > INT_MAX ? -1 : (int)line;
			start = end;
			/* the next entry starts at the next byte with bit 7 set */
			for (i++; i < len && !(t[i] & 128); i++)
				;
		}
		return -1;
	}
	return -1;
}

#endif
