#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""onefile.py N [ROUNDS] > big.c - a C program with N functions in one file,
the shape of the sqlite3 amalgamation: each allocates at 4 lines, two of
them through an always-inlined helper (an inline chain), and is called
through 5 callers, so 20 N callsites; ROUNDS times over, one block each,
then an mt_snapshot() (weak: none without memtrace). The analyzer's
benchmark (analyzer.sh) and a test (stacks.py, onefile-symbols) build it."""
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
out = ["#include <stdlib.h>", "#include <string.h>",
       "int mt_snapshot(char *path, unsigned long pathlen) __attribute__((weak));",
       "static void *volatile sink;",
       "static inline __attribute__((always_inline)) void *helper(size_t n) {",
       "\tvoid *p = malloc(n); /* @helper */",
       "\tmemset(p, 0, 8);",
       "\treturn p;",
       "}"]
for i in range(n):
    out.append(f"__attribute__((noinline)) void f{i}(int w) {{")
    for j in range(4):
        size = 16 + (i * 4 + j) % 200
        call = f"helper({size})" if j >= 2 else f"malloc({size})"
        out.append(f"\tif (w == {j}) {{ sink = {call}; return; }} /* @f{i}.{j} */")
    out.append("}")
out.append("typedef void (*fn)(int);")
out.append("static fn table[] = {" + ",".join(f"f{i}" for i in range(n)) + "};")
for c in range(5):
    out.append(f"__attribute__((noinline)) void caller{c}(int i, int w) {{ table[i](w); }}")
out.append("static void (*callers[])(int, int) = {caller0, caller1, caller2, caller3, caller4};")
out.append("int main(void) {")
out.append(f"\tfor (int r = 0; r < {rounds}; r++) {{")
out.append(f"\t\tfor (int c = 0; c < 5; c++) for (int i = 0; i < {n}; i++) for (int w = 0; w < 4; w++)")
out.append("\t\t\tcallers[c](i, w);")
out.append("\t\tif (mt_snapshot) mt_snapshot(0, 0);")
out.append("\t}")
out.append("\treturn 0;")
out.append("}")
print("\n".join(out))
