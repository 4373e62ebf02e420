/* SPDX-License-Identifier: MIT */
/*
 * unit.h - what every C unit test shares: EXPECT (counts a failure, says
 * where, goes on; safe from several threads) and the one stub of a library
 * function these tests do not link (unwind.c). Include it once per test
 * program.
 */
#ifndef MT_TEST_UNIT_H
#define MT_TEST_UNIT_H

#include <stdint.h>
#include <stdio.h>

static int failures;
#define EXPECT(cond, ...)                                                    \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);  \
		}                                                            \
	} while (0)

/* unwind.c is not linked here */
void mt__unwind_stats(uint64_t *fast, uint64_t *bad)
{
	*fast = *bad = 0;
}

#endif
