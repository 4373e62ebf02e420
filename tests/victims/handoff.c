/* SPDX-License-Identifier: MIT */
/* A slow walk that goes on by the frame-size table (unwind.c, slow_walk_in).
 * One allocation teaches the table the chain main -> c1 .. c6 -> deep ->
 * learn; then 64 leaves, each called once through the same call site in
 * deep, allocate: each of those stacks starts with a return address the
 * table has never seen (into the leaf), so libunwind walks it, and from
 * deep's frame on the table knows the rest. (The first leaf's stack also
 * passes main's loop call site, new then: the table's walk stops there and
 * libunwind goes on.) Every block must show the whole chain, each frame
 * once, at its line. */
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;
static void *kept[65];

#define LEAF(k)                                              \
	static void __attribute__((noinline)) leaf##k(void) \
	{                                                    \
		kept[k] = malloc(24 + k);                    \
		sink = kept[k];                              \
	}
LEAF(0) /* @leaf0 */
LEAF(1) /* @leaf1 */
LEAF(2) /* @leaf2 */
LEAF(3) /* @leaf3 */
LEAF(4) /* @leaf4 */
LEAF(5) /* @leaf5 */
LEAF(6) /* @leaf6 */
LEAF(7) /* @leaf7 */
LEAF(8) /* @leaf8 */
LEAF(9) /* @leaf9 */
LEAF(10) /* @leaf10 */
LEAF(11) /* @leaf11 */
LEAF(12) /* @leaf12 */
LEAF(13) /* @leaf13 */
LEAF(14) /* @leaf14 */
LEAF(15) /* @leaf15 */
LEAF(16) /* @leaf16 */
LEAF(17) /* @leaf17 */
LEAF(18) /* @leaf18 */
LEAF(19) /* @leaf19 */
LEAF(20) /* @leaf20 */
LEAF(21) /* @leaf21 */
LEAF(22) /* @leaf22 */
LEAF(23) /* @leaf23 */
LEAF(24) /* @leaf24 */
LEAF(25) /* @leaf25 */
LEAF(26) /* @leaf26 */
LEAF(27) /* @leaf27 */
LEAF(28) /* @leaf28 */
LEAF(29) /* @leaf29 */
LEAF(30) /* @leaf30 */
LEAF(31) /* @leaf31 */
LEAF(32) /* @leaf32 */
LEAF(33) /* @leaf33 */
LEAF(34) /* @leaf34 */
LEAF(35) /* @leaf35 */
LEAF(36) /* @leaf36 */
LEAF(37) /* @leaf37 */
LEAF(38) /* @leaf38 */
LEAF(39) /* @leaf39 */
LEAF(40) /* @leaf40 */
LEAF(41) /* @leaf41 */
LEAF(42) /* @leaf42 */
LEAF(43) /* @leaf43 */
LEAF(44) /* @leaf44 */
LEAF(45) /* @leaf45 */
LEAF(46) /* @leaf46 */
LEAF(47) /* @leaf47 */
LEAF(48) /* @leaf48 */
LEAF(49) /* @leaf49 */
LEAF(50) /* @leaf50 */
LEAF(51) /* @leaf51 */
LEAF(52) /* @leaf52 */
LEAF(53) /* @leaf53 */
LEAF(54) /* @leaf54 */
LEAF(55) /* @leaf55 */
LEAF(56) /* @leaf56 */
LEAF(57) /* @leaf57 */
LEAF(58) /* @leaf58 */
LEAF(59) /* @leaf59 */
LEAF(60) /* @leaf60 */
LEAF(61) /* @leaf61 */
LEAF(62) /* @leaf62 */
LEAF(63) /* @leaf63 */

static void __attribute__((noinline)) learn(void)
{
	kept[64] = malloc(8); /* @learn */
}

static void (*const table[65])(void) = {
	leaf0, leaf1, leaf2, leaf3, leaf4, leaf5, leaf6, leaf7,
	leaf8, leaf9, leaf10, leaf11, leaf12, leaf13, leaf14, leaf15,
	leaf16, leaf17, leaf18, leaf19, leaf20, leaf21, leaf22, leaf23,
	leaf24, leaf25, leaf26, leaf27, leaf28, leaf29, leaf30, leaf31,
	leaf32, leaf33, leaf34, leaf35, leaf36, leaf37, leaf38, leaf39,
	leaf40, leaf41, leaf42, leaf43, leaf44, leaf45, leaf46, leaf47,
	leaf48, leaf49, leaf50, leaf51, leaf52, leaf53, leaf54, leaf55,
	leaf56, leaf57, leaf58, leaf59, leaf60, leaf61, leaf62, leaf63,
	learn,
};

static void __attribute__((noinline)) deep(int k)
{
	table[k](); /* @deep */
	__asm__ volatile("" ::: "memory");
}

#define LINK(name, next)                                     \
	static void __attribute__((noinline)) name(int k)   \
	{                                                    \
		next(k);                                     \
		__asm__ volatile("" ::: "memory");           \
	}
LINK(c6, deep) /* @c6 */
LINK(c5, c6) /* @c5 */
LINK(c4, c5) /* @c4 */
LINK(c3, c4) /* @c3 */
LINK(c2, c3) /* @c2 */
LINK(c1, c2) /* @c1 */

int main(void)
{
	c1(64);
	for (int k = 0; k < 64; k++) {
		c1(k); /* @main */
		__asm__ volatile("" ::: "memory");
	}
	printf("handoff ok\n");
	return 0;
}
