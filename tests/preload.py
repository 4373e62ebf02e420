#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Victim programs under the preload, one case per process: `preload.py CASE`.

Known bytes and block counts at known file:line (the lines carry `@tag`
markers in tests/victims) for each way a program gets memory: the malloc
family, realloc's chains and failures, C++ new, threads freeing each other's
blocks, fork, a library constructor, anonymous mappings, _exit, and the
mt_snapshot and mt_reset_peak API; and what the library exports.
"""
import os
import re
import subprocess
import sys
import tempfile

from mtlib import (case, check, eq, expect_absent, expect_site, line_of, only_snapshot, run,
                   run_victim, show_json, snaps, sums_match_totals, victim, LIB, SRC, TIMEOUT,
                   TOOL, main)
CASE_SUITE = "preload"


def case_exports():
    out = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True).stdout
    names = {l.split()[-1] for l in out.splitlines() if l.strip()}
    # every symbol of the library's hook tables (src/hooks.h: meson's
    # MT_HOOK_NAMES, or the header expanded here when run directly)
    hooks = os.environ.get("MT_HOOK_NAMES") or subprocess.run(
        ["cc", "-E", "-P", "-I", os.path.join(SRC, "src"), "-"], input='#include "hooks.h"\nMT_HOOK_NAMES\n',
        capture_output=True, text=True, check=True).stdout
    hooks = hooks.replace('"', " ").split()
    check(len(hooks) >= 30 and "malloc" in hooks and "mremap" in hooks, f"hook table read: {hooks}")
    for sym in hooks + ["mt_snapshot", "mt_reset_peak"]:
        check(sym in names, f"{sym} is not exported by {LIB}")
    private = [n for n in names if n.startswith("mt__") or n.startswith("uthash")]
    eq(private, [], "internal symbols exported")
    # static TLS is carved from every thread's stack and shared with what a
    # program dlopens: 11 KiB of it made node's worker threads fail with
    # EINVAL under the jemalloc backend (per-thread caches belong on the heap)
    segs = subprocess.run(["readelf", "-lW", LIB], capture_output=True, text=True).stdout
    tls = [int(l.split()[5], 16) for l in segs.splitlines() if l.split()[:1] == ["TLS"]]
    eq(len(tls), 1, f"one TLS segment: {segs}")
    check(tls[0] <= 4608, f"static TLS of {tls[0]} bytes, more than 4.5 KiB")


@case(suite="cli", victims=("basic",))
def case_basic():
    d, r = run_victim("basic")
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "exit status and output")
    eq(r.stderr, b"", "stderr")
    snap = only_snapshot(d)
    js = show_json(snap)
    expect_site(js, "basic.c", "keep100", 100000, 1000)
    expect_site(js, "basic.c", "big", 12345, 1)
    expect_absent(js, "basic.c", "freed64")
    expect_absent(js, "basic.c", "errno")
    sums_match_totals(snap)
    # the text view is tracemalloc's Statistic format
    text = subprocess.run([TOOL, "show", snap], capture_output=True, text=True).stdout
    path, line = line_of("basic.c", "keep100")
    check(f"{path}:{line}: size=97.7 KiB, count=1000, average=100 B\n" in text, text)


@case(victims=("realloc",))
def case_realloc():
    d, r = run_victim("realloc")
    eq((r.returncode, r.stdout), (0, b"realloc ok\n"), "exit status and output")
    js = show_json(only_snapshot(d))
    expect_site(js, "realloc.c", "r3", 1000, 1)
    expect_absent(js, "realloc.c", "r1")
    expect_absent(js, "realloc.c", "r2")
    expect_site(js, "realloc.c", "r4", 50, 1)   # a failed realloc keeps the block
    expect_absent(js, "realloc.c", "rfail")
    expect_absent(js, "realloc.c", "z")         # realloc(p, 0) freed it
    expect_site(js, "realloc.c", "ra", 300, 1)


@case(victims=("family",))
def case_family():
    d, r = run_victim("family")
    eq((r.returncode, r.stdout), (0, b"family ok\n"), "exit status and output")
    js = show_json(only_snapshot(d))
    for tag, size in [("calloc", 1000), ("posix_memalign", 256), ("aligned_alloc", 512),
                      ("memalign", 200), ("valloc", 300), ("pvalloc", 100), ("slack", 5)]:
        expect_site(js, "family.c", tag, size, 1)


@case(victims=("cxx",))
def case_cxx():
    d, r = run_victim("cxx")
    eq((r.returncode, r.stdout), (0, b"cxx ok 1000 200\n"), "exit status and output")
    js = show_json(only_snapshot(d))
    expect_site(js, "cxx.cpp", "arr", 4000, 40)
    expect_site(js, "cxx.cpp", "obj", 5 * 48, 5)
    expect_site(js, "cxx.cpp", "vec", 4000, 1)
    # the std::string object (32 B) and its 201-byte buffer, both for this line
    expect_site(js, "cxx.cpp", "str", 32 + 201, 2)


@case(victims=("threads",))
def case_threads():
    d, r = run_victim("threads")
    eq((r.returncode, r.stdout), (0, b"threads ok\n"), "exit status and output")
    snap = only_snapshot(d)
    js = show_json(snap)
    expect_site(js, "threads.c", "thr", 4 * 1000 * 32, 4000)
    expect_absent(js, "threads.c", "xfer")
    sums_match_totals(snap)


@case(victims=("fork",))
def case_fork():
    d = tempfile.mkdtemp(prefix="mt-test-")
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    p = subprocess.Popen([victim("fork")], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=TIMEOUT)
    eq(p.returncode, 0, f"exit status ({err!r})")
    m = re.fullmatch(rb"fork ok (\d+) (\d+)\n", out)
    check(m, f"output {out!r}")
    child, child2 = int(m.group(1)), int(m.group(2))
    eq([os.path.basename(s) for s in snaps(d)],
       sorted([f"memtrace.{p.pid}.1.snap", f"memtrace.{child}.1.snap"],
              key=lambda n: int(n.split(".")[1])), "snapshot files")
    parent = show_json(snaps(d, p.pid)[0])
    eq(parent["pid"], p.pid, "parent snapshot pid")
    expect_site(parent, "fork.c", "parent", 1110, 10)
    expect_absent(parent, "fork.c", "child")
    expect_absent(parent, "fork.c", "child2")
    kid = show_json(snaps(d, child)[0])
    eq((kid["pid"], kid["ppid"]), (child, p.pid), "child snapshot pid and ppid")
    expect_site(kid, "fork.c", "child", 7 * 222, 7)
    expect_site(kid, "fork.c", "parent", 1110, 10)  # inherited, still live in the child


@case(victims=("ctor",))
def case_ctor():
    d, r = run_victim("ctor")
    eq((r.returncode, r.stdout), (0, b"ctor ok 1\n"), "exit status and output")
    js = show_json(only_snapshot(d))
    expect_site(js, "libctor.c", "ctor", 999, 3)


@case(victims=("mmap",))
def case_mmap():
    d, r = run_victim("mmap")
    eq((r.returncode, r.stdout), (0, b"mmap ok\n"), "exit status and output")
    snap = only_snapshot(d)
    js = show_json(snap, "--domain", "mmap")
    expect_site(js, "mmap.c", "m1", 512 * 1024, 1)
    expect_absent(js, "mmap.c", "m2")
    expect_absent(js, "mmap.c", "m3")
    expect_site(js, "mmap.c", "m4", 16384, 1)
    expect_site(js, "mmap.c", "m5", 8192, 2)
    expect_absent(js, "mmap.c", "file")
    eq(js["totals"]["mmap_peak_bytes"] >= 1024 * 1024, True, "mmap peak covers the 1 MiB map")
    eq(show_json(snap)["stats"] and True, True, "heap view still works")
    sums_match_totals(snap)


@case(victims=("uexit",))
def case_uexit():
    d, r = run_victim("uexit")
    eq(r.returncode, 0, "exit status")
    js = show_json(only_snapshot(d))
    eq(js["reason"], "at _exit", "reason")
    expect_site(js, "uexit.c", "uexit", 385, 5)


@case(victims=("api",))
def case_api():
    d, r = run_victim("api")
    eq(r.returncode, 0, "exit status")
    m = re.fullmatch(rb"snapshot 0 (\S+)\n", r.stdout)
    check(m, f"output {r.stdout!r}")
    path = m.group(1).decode()
    eq(os.path.basename(path), f"memtrace.{path.split('.')[-3]}.1.snap", "first snapshot name")
    files = snaps(d)
    eq(len(files), 2, "API snapshot plus the at-exit one")
    eq(files[0], path, "API snapshot path")
    js = show_json(path)
    eq(js["reason"], "on request (mt_snapshot)", "reason")
    expect_site(js, "api.c", "api", 16000, 4)
    eq(show_json(files[1])["seq"], 2, "at-exit snapshot seq")
    # without memtrace the weak reference is NULL and the program still runs
    r = run([victim("api")], preload=False)
    eq((r.returncode, r.stdout), (0, b"no memtrace\n"), "run without memtrace")


@case(victims=("api",))
def case_reset_peak():
    d, r = run_victim("api")
    eq(r.returncode, 0, "exit status")
    js = show_json(snaps(d)[0])
    t = js["totals"]
    check(t["heap_peak_bytes"] < (1 << 20), f"peak after mt_reset_peak: {t['heap_peak_bytes']}")
    check(t["heap_peak_bytes"] >= t["heap_live_bytes"], "peak >= live")


if __name__ == "__main__":
    sys.exit(main(globals()))
