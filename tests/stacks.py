#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Stacks and their symbols, one case per process: `stacks.py CASE`.

The frame-size cache against libunwind (the same blocks per path), the
loader's own lines for dlopen's allocations, Debian's optimized python3.11
frame by frame against addr2line -i (inlined calls expanded), and 500
functions of one big compilation unit each at its lines.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from mtlib import (case, check, eq, expect_site, line_of, only_snapshot, run, run_victim, show_json,
                   victim, SRC, TOOL, main)
CASE_SUITE = "preload"


def case_onefile_symbols():
    """Callsites in one big compilation unit (tools/bench/onefile.py: the
    sqlite3 amalgamation's shape; the symbolizer indexes each unit's
    functions once): 500 functions, each allocating at 4 lines, 2 of them
    through an always-inlined helper, called from 5 callers: every line
    with its 5 blocks, and the helper's inline chain (helper at its line,
    then the function at the line it was inlined into)."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    src = os.path.join(d, "onefile.c")
    with open(src, "w") as f:
        f.write(subprocess.run([sys.executable, os.path.join(SRC, "tools", "bench", "onefile.py"),
                                "500", "1"], capture_output=True, text=True, check=True).stdout)
    exe = os.path.join(d, "onefile")
    subprocess.run(["gcc", "-O1", "-g", "-fno-omit-frame-pointer", "-o", exe, src], check=True)
    marks = {}
    with open(src) as f:
        for n, line in enumerate(f, 1):
            m = re.search(r"/\* @([a-z0-9.]+) \*/", line)
            if m:
                marks[m.group(1)] = n
    snapd = os.path.join(d, "snaps")
    os.mkdir(snapd)
    r = run([exe], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
    eq(r.returncode, 0, r.stderr)
    snap = only_snapshot(snapd)
    js = show_json(snap, "-n", "0")
    got = {(s["file"], s["line"]): s["count"] for s in js["stats"]}
    for i in range(500):
        for j in (0, 1):
            eq(got.get((src, marks[f"f{i}.{j}"])), 5, f"f{i} line {j}")
    eq(got.get((src, marks["helper"])), 500 * 2 * 5, "the helper's line, inlined 1000 times")
    tb = show_json(snap, "-n", "0", "-g", "traceback")["stats"]
    chains = {tuple(s["traceback"][:2]) for s in tb if s["traceback"][0].startswith(f"{src}:{marks['helper']} ")}
    for i in (0, 249, 499):
        for j in (2, 3):
            want = (f"{src}:{marks['helper']} (helper)", f"{src}:{marks[f'f{i}.{j}']} (f{i})")
            check(want in chains, f"f{i} line {j}: the inline chain {want}")
    eq(len(chains), 1000, "one chain per inlined call")
    shutil.rmtree(d)


@case(victims=("dlplug",))
def case_loader_lines():
    """A stack wholly inside the loader and libc (dlopen's own allocations,
    cut at MEMTRACE_DEPTH=3, as the default depth cuts a dlopen from deep in
    a program) is shown at the loader's line that allocates (elf/dl-*.c), not
    at the malloc inlined from ld.so's include/rtld-malloc.h, which merged
    every one of them into two lines."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        r = run([victim("dlplug")], env={"MEMTRACE_DEPTH": "3"}, dump_dir=d, input=b"load\n")
        eq((r.returncode, r.stdout), (0, b"ready\nloaded\ndone\n"), "the victim's output")
        snap = only_snapshot(d)
        tb = show_json(snap, "--group-by", "traceback")
        check(any(f.startswith("include/rtld-malloc.h") for s in tb["stats"] for f in s["traceback"]),
              "ld.so's malloc frames named (Debian's libc6-dbg: tools/dev.sh test installs it)")
        files = [s["file"] or "" for s in show_json(snap)["stats"]]
        check(not any(f.endswith("rtld-malloc.h") for f in files), f"an inlined malloc shown: {files}")
        check("elf/dl-object.c" in files, f"the loader's own lines: {files}")
        expect_site(show_json(snap), "plugin.c", "plugin", 200 * 1000, 200)
    finally:
        shutil.rmtree(d, ignore_errors=True)


BYTEARRAYS = """
keep = []
for i in range(2000):
    b = bytearray(100)
    b.extend(b"x" * 500)
    keep.append(b)
print(len(keep))
"""


def case_native_inlines():
    """Debian's optimized python3.11 (LTO; its debug info from
    python3.11-dbg) under memtrace: every frame memtrace reports at each of
    the interpreter's return addresses, inlined calls expanded, is what
    binutils' addr2line -i says there (GCC's clone suffixes, which memtrace
    drops, and LTO's '<artificial>' file, for which memtrace has the real
    one, aside). The bytearray grown by extend() shows at
    Objects/bytearrayobject.c:233, the line of PyByteArray_Resize that calls
    PyObject_Realloc, files named from the source tree's root."""
    exe = "/usr/bin/python3.11"
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        script = os.path.join(d, "bytearrays.py")
        with open(script, "w") as f:
            f.write(BYTEARRAYS)
        r = run([exe, script], env={"PYTHONMALLOC": "malloc"}, dump_dir=d)
        eq((r.returncode, r.stdout), (0, b"2000\n"), f"the script's own answer: {r.stderr[-300:]!r}")
        snap = only_snapshot(d)
        native = show_json(snap, "--native")
        top = {(s["file"], s["line"]): s["count"] for s in native["stats"]}
        check(("Objects/bytearrayobject.c", 233) in top,
              "the interpreter's own lines (Debian: python3.11-dbg, tools/dev.sh test installs it); "
              f"have {list(top)[:8]}")
        check(top[("Objects/bytearrayobject.c", 233)] >= 2000, f"blocks at bytearrayobject.c:233: {top}")
        out = os.path.join(d, "all.json")
        r = subprocess.run([TOOL, "export", "-f", "json", "-o", out, snap], capture_output=True)
        eq(r.returncode, 0, r.stderr)
        js = json.load(open(out))
        ours = {}
        for f in js["frames"]:
            if f["module"] == exe:
                ours.setdefault(f["address"], []).append(
                    (f["function"], os.path.basename(f["file"] or ""), f["line"]))
        addrs = sorted(ours)
        a2l = subprocess.run(["addr2line", "-a", "-i", "-f", "-e", exe] + [hex(a - 1) for a in addrs],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        theirs, cur, i = {}, None, 0
        while i < len(a2l) and a2l[i]:
            if a2l[i].startswith("0x"):
                cur = int(a2l[i], 16) + 1
                theirs[cur] = []
                i += 1
                continue
            func = re.sub(r"(\.(constprop|isra|part|lto_priv)\.\d+)+$|\.cold$", "", a2l[i])
            file, _, line = a2l[i + 1].rpartition(":")
            line = line.split()[0] if line else "0"
            theirs[cur].append((func, os.path.basename(file), int(line) if line.isdigit() else 0))
            i += 2

        def same(o, t):
            return len(o) == len(t) and all(
                a[0] == b[0] and a[2] == b[2] and
                (a[1] == b[1] or b[1] == "<artificial>" or (b[1], a[1]) == ("??", ""))
                for a, b in zip(o, t))
        differ = [(hex(a), ours[a], theirs.get(a)) for a in addrs if not same(ours[a], theirs.get(a, []))]
        inlined = sum(len(v) > 1 for v in ours.values())
        check(len(addrs) >= 1000 and inlined >= 100,
              f"{len(addrs)} addresses, {inlined} with inlined calls")
        eq(differ[:5], [], f"frames unlike addr2line's, of {len(addrs)}")
        print(f"{len(addrs)} return addresses in python3.11, {inlined} with inlined calls: "
              "all as addr2line -i gives them")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@case(victims=("frames",))
def case_unwind_cache():
    d, r = run_victim("frames")
    eq((r.returncode, r.stdout), (0, b"frames ok\n"), "frames victim")
    js = show_json(only_snapshot(d), "--group-by", "traceback")

    def blocks_by_path(leaf, marks):
        """Blocks per path to the line tagged leaf: a path is the marks
        (name: tag) of the lines its traceback passes, innermost first."""
        at = {name: "%s:%s " % line_of("frames.c", tag) for name, tag in marks.items()}
        first = "%s:%s " % line_of("frames.c", leaf)
        got = {}
        for s in js["stats"]:
            tb = s["traceback"]
            if tb and tb[0].startswith(first):
                path = "".join(n for t in tb for n, a in at.items() if t.startswith(a))
                got[path] = got.get(path, 0) + s["count"]
        return got
    eq(blocks_by_path("leaf", {"a": "from_a", "b": "from_b"}), {"a": 1000, "b": 2000},
       "blocks per caller through a variable frame")
    expect_site(show_json(only_snapshot(d)), "frames.c", "deep", 500 * 16, 500)
    # 64 stacks of one depth sharing their first frames: each its own, in
    # the main thread and in three others
    eq(blocks_by_path("paths", {"a": "way_a", "b": "way_b"}),
       {f"{p:06b}".replace("1", "a").replace("0", "b"): 4 * 50 for p in range(64)},
       "4 x 50 blocks on each of the 64 paths, told by their ways")
    t = js["totals"]
    check(t["fast_unwinds"] > 0, "the frame-size cache served some stacks")
    eq(t["unwind_mismatches"], 0, "no fast walk disagreed with libunwind")
    # the cache changes no figure: every stack also checked with the cache
    # bypassed would give the same (the exact tests above run with it on)


@case(victims=("recheck",))
def case_unwind_recheck():
    """The check against libunwind thins out while a thread repeats stacks
    that agreed, and comes soon again for a stack new to it: a wrong stack
    that the frame-size table reads after a long calm (recheck.c) is caught
    within one interval of 64 walks, and the blocks after it stand at their
    true line."""
    d, r = run_victim("recheck")
    eq((r.returncode, r.stdout), (0, b"recheck ok\n"), "recheck victim")
    js = show_json(only_snapshot(d), "--group-by", "traceback")
    leaf = "%s:%s " % line_of("recheck.c", "leaf")
    calm = "%s:%s " % line_of("recheck.c", "calm")
    poisoned = "%s:%s " % line_of("recheck.c", "poisoned")
    got = {"calm": 0, "poisoned": 0}
    for s in js["stats"]:
        tb = s["traceback"]
        if not tb or not tb[0].startswith(leaf):
            continue
        for name, at in (("calm", calm), ("poisoned", poisoned)):
            if any(t.startswith(at) for t in tb):
                got[name] += s["count"]
    t = js["totals"]
    check(t["unwind_mismatches"] >= 1, f"the check caught the wrong stack: {t['unwind_mismatches']}")
    check(got["calm"] <= 64 and got["calm"] + got["poisoned"] == 3000,
          f"at most 64 of the 3000 kept blocks read wrong before the check: {got}")


@case(victims=("handoff",))
def case_unwind_handoff():
    """A slow walk goes on by the frame-size table once past the frames it
    did not know (handoff.c): 64 stacks, each new only in its first frame,
    each show the whole chain once, at its lines."""
    d, r = run_victim("handoff")
    eq((r.returncode, r.stdout), (0, b"handoff ok\n"), "handoff victim")
    js = show_json(only_snapshot(d), "--group-by", "traceback")
    chain = ["deep", "c6", "c5", "c4", "c3", "c2", "c1", "main"]
    path = line_of("handoff.c", "main")[0]
    got = {}
    for s in js["stats"]:
        ours = [t for t in s["traceback"] if t.startswith(path + ":")]
        if ours:
            got[ours[0].split(" ")[0]] = (s["count"], [t.split(" ")[0] for t in ours[1:]])
    want_tail = ["%s:%s" % line_of("handoff.c", tag) for tag in chain]
    for k in range(64):
        leaf = "%s:%s" % line_of("handoff.c", f"leaf{k}")
        eq(got.get(leaf), (1, want_tail), f"leaf{k}'s block and its chain")
    eq(js["totals"]["unwind_mismatches"], 0, "no fast walk disagreed with libunwind")


if __name__ == "__main__":
    sys.exit(main(globals()))
