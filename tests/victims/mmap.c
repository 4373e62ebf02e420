/* SPDX-License-Identifier: MIT */
/* Anonymous mappings: partial munmap, full munmap, mremap, file mappings. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1u << 20)

int main(void)
{
	char *m1 = mmap(NULL, MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @m1 */
	munmap(m1 + MB / 2, MB / 2);
	char *m2 = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @m2 */
	munmap(m2, 65536);
	char *m3 = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @m3 */
	char *m4 = mremap(m3, 8192, 16384, MREMAP_MAYMOVE); /* @m4 */
	char *m5 = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); /* @m5 */
	munmap(m5 + 4096, 4096); /* a hole: two regions remain */
	int fd = open("/proc/self/exe", O_RDONLY);
	char *f = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0); /* @file */
	if (m1 == MAP_FAILED || m4 == MAP_FAILED || f == MAP_FAILED)
		return 2;
	m1[0] = m4[0] = 1;
	printf("mmap ok\n");
	return 0;
}
