/* SPDX-License-Identifier: MIT */
/* Under MEMTRACE_ALLOCATOR=jemalloc: blocks from before the switch (a library
 * constructor) and from glibc directly go back to glibc; blocks move between
 * allocators on realloc; mallopt/malloc_trim/mallinfo2 do not crash. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *ctor_blocks[3];
extern void *__libc_malloc(size_t);

int main(void)
{
	/* a block glibc made without memtrace seeing it */
	char *direct = __libc_malloc(100);
	strcpy(direct, "direct");
	if (malloc_usable_size(direct) < 100)
		return 2;
	free(direct);
	/* blocks from the constructor, before the switch */
	if (malloc_usable_size(ctor_blocks[0]) < 333)
		return 3;
	memset(ctor_blocks[1], 'x', 333);
	char *moved = realloc(ctor_blocks[1], 5000); /* @moved */
	for (int i = 0; i < 333; i++)
		if (moved[i] != 'x')
			return 4;
	free(ctor_blocks[0]);
	/* new blocks, across the family */
	char *a = malloc(1000); /* @new */
	void *b = NULL;
	if (posix_memalign(&b, 4096, 8192) || ((size_t)b & 4095))
		return 5;
	char *c = aligned_alloc(64, 640);
	char *d = calloc(100, 10);
	for (int i = 0; i < 1000; i++)
		if (d[i])
			return 6;
	a = realloc(a, 3000); /* @grown */
	if (malloc_usable_size(a) < 3000)
		return 7;
	mallopt(M_TRIM_THRESHOLD, 1 << 20);
	malloc_trim(0);
	struct mallinfo2 mi = mallinfo2();
	(void)mi;
	free(b);
	free(c);
	free(d);
	free(realloc(malloc(10), 0));
	printf("switch ok %s\n", direct == NULL ? "?" : "done");
	free(moved);
	free(a);
	return 0;
}
