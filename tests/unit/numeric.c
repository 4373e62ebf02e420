/* SPDX-License-Identifier: MIT */
/*
 * numeric.c - unit test of the library's own numerics, which stand in for
 * libraries it does not load into every process: the snapshot checksum
 * (crc.c) against zlib's crc32, on buffers of every length to 64 bytes and
 * random ones to 1 MiB, whole and in pieces at every alignment; the
 * sampler's ln and e^x - 1 (sample.c) against libm's log and expm1 over
 * their whole useful range, within 4 units in the last place.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"
#include "unit.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void crc(void)
{
	static unsigned char buf[1 << 20];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)next();
	EXPECT(mt__crc32(0, buf, 0) == 0, "empty");
	for (size_t len = 1; len <= 64; len++)
		for (size_t off = 0; off < 8; off++)
			EXPECT(mt__crc32(0, buf + off, len) == crc32(0, buf + off, (uInt)len),
			       "%zu bytes at +%zu", len, off);
	for (int k = 0; k < 200; k++) {
		size_t len = next() % sizeof(buf), off = next() % 8;
		if (off + len > sizeof(buf))
			len = sizeof(buf) - off;
		uint32_t want = (uint32_t)crc32(0, buf + off, (uInt)len);
		EXPECT(mt__crc32(0, buf + off, len) == want, "%zu bytes", len);
		/* in pieces, as the writer feeds it */
		size_t cut = len ? next() % len : 0;
		uint32_t c = mt__crc32(0, buf + off, cut);
		EXPECT(mt__crc32(c, buf + off + cut, len - cut) == want, "%zu + %zu bytes", cut,
		       len - cut);
	}
	EXPECT(mt__crc32(0, "123456789", 9) == 0xcbf43926u, "the check value");
}

static double ulps(double got, double want)
{
	if (got == want)
		return 0;
	return fabs(got - want) / fabs(nextafter(want, INFINITY) - want);
}

static void logs(void)
{
	double worst = 0;
	int n = 0;
	/* the sampler's draws: (0, 1], every scale down to 2^-53 and below */
	for (int k = 0; k < 2000000; k++, n++) {
		double u = ((double)(next() >> 11) + 1.0) / 9007199254740993.0;
		double e = ulps(mt__log(u), log(u));
		if (e > worst)
			worst = e;
		EXPECT(e <= 4, "log(%.17g): %.17g, libm %.17g", u, mt__log(u), log(u));
	}
	static const double edge[] = {1.0, 0.5, 2.0, 0.7071067811865476, 1.4142135623730951,
				      1e-300, 4.9e-324, 2.2250738585072014e-308, 1e300, 3.0};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++, n++) {
		/* at 1 the result is 0: no ulps of 0 to measure, the distance is */
		if (edge[i] == 1.0)
			EXPECT(mt__log(1.0) == 0, "log(1): %.17g", mt__log(1.0));
		else
			EXPECT(ulps(mt__log(edge[i]), log(edge[i])) <= 4, "log(%.17g): %.17g, libm %.17g",
			       edge[i], mt__log(edge[i]), log(edge[i]));
	}
	printf("log: %d values, worst %.1f ulp\n", n, worst);
}

static void expm1s(void)
{
	double worst = 0;
	int n = 0;
	/* -size/R: every ratio a sampled allocation meets, and around 0 */
	for (int k = 0; k < 2000000; k++, n++) {
		double x = -ldexp((double)(next() >> 11) / 9007199254740992.0, (int)(next() % 80) - 60);
		if (k % 2)
			x = -x * 0.01;
		double e = ulps(mt__expm1(x), expm1(x));
		if (e > worst)
			worst = e;
		EXPECT(e <= 4, "expm1(%.17g): %.17g, libm %.17g", x, mt__expm1(x), expm1(x));
	}
	EXPECT(mt__expm1(0) == 0 && mt__expm1(-800) == -1 && mt__expm1(-40) == expm1(-40.0),
	       "edges: %.17g %.17g", mt__expm1(0), mt__expm1(-800));
	printf("expm1: %d values, worst %.1f ulp\n", n, worst);
}

int main(void)
{
	crc();
	logs();
	expm1s();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	else
		printf("numeric: all passed\n");
	return failures != 0;
}
