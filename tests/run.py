#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""memtrace's test cases, one per process: `run.py CASE`.

Each case runs real programs under LD_PRELOAD=libmemtrace.so and checks exact
figures: known bytes and block counts at known file:line (the lines carry
`@tag` markers in tests/victims), identical output and exit status to a run
without memtrace, and the analyzer's behaviour on good and bad files.
"""
import codecs
import glob
import json
import os
import pty
import random
import re
import resource
import shutil
import stat
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from tracemalloc import _format_size  # the reference for the size format

# meson test sets these; run directly (python3 tests/run.py CASE) a case
# finds the build in build/ beside tests/ (MT_BUILD for another one)
SRC = os.environ.get("MT_SRC") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MT_BUILD") or os.path.join(SRC, "build")
for var, rel in (("MT_LIB", "src/libmemtrace.so"), ("MT_TOOL", "tools/memtrace/memtrace"),
                 ("MT_DEMO", "tools/memtrace/memtrace-demo"),
                 ("MT_ARENAS", "tools/memtrace/memtrace-arenas"),
                 ("MT_MANYSITES", "tools/bench/manysites"), ("MT_VICTIMS", "tests"),
                 ("MT_OWNMALLOC", "tests/libownmalloc.so")):
    os.environ.setdefault(var, os.path.join(BUILD, rel))
os.environ.setdefault("MT_SRC", SRC)
LIB = os.environ["MT_LIB"]
TOOL = os.environ["MT_TOOL"]
DEMO = os.environ["MT_DEMO"]
ARENAS = os.environ["MT_ARENAS"]
MANYSITES = os.environ["MT_MANYSITES"]
JEMALLOC = {"MEMTRACE_ALLOCATOR": "jemalloc",
            "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=16384"}
VICTIMS = os.environ["MT_VICTIMS"]
TIMEOUT = 240


class Fail(Exception):
    pass


# The one registry: every case_NAME function of a runner is a test named
# NAME (dashes for underscores); meson asks each runner for its list
# (RUNNER --list) and registers each with its suite, timeout and the victim
# programs it needs built. A case says what differs from its runner's
# CASE_SUITE and CASE_TIMEOUT with @case.
CASE_SUITE = "preload"
CASE_TIMEOUT = 300


def case(suite=None, victims=(), timeout=None):
    def mark(fn):
        fn.suite, fn.victims, fn.timeout = suite, tuple(victims), timeout
        return fn
    return mark


def listing(cases):
    """NAME SUITE TIMEOUT VICTIMS, a line per case ("-" for none)."""
    for key, fn in cases.items():
        if key.startswith("case_") and callable(fn):
            print(key[5:].replace("_", "-"), getattr(fn, "suite", None) or cases.get("CASE_SUITE") or "-",
                  getattr(fn, "timeout", None) or cases.get("CASE_TIMEOUT", CASE_TIMEOUT),
                  ",".join(getattr(fn, "victims", ())) or "-")


def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: expected {want!r}, got {got!r}")


def line_of(src, tag):
    """The line number of the `@tag` marker in a victim source file."""
    path = os.path.join(SRC, "tests", "victims", src)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if re.search(r"(/\*|//) @%s\b" % re.escape(tag), line):
                return path, n
    raise Fail(f"no @{tag} in {path}")


def run(cmd, env=None, preload=True, cwd=None, dump_dir=None, input=None, timeout=TIMEOUT,
        lib=None):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if env:
        e.update(env)
    if preload:
        e["LD_PRELOAD"] = lib or LIB
        if dump_dir is not None:
            e["MEMTRACE_DIR"] = dump_dir
    return subprocess.run(cmd, env=e, cwd=cwd, capture_output=True, timeout=timeout,
                          input=input, shell=isinstance(cmd, str))


def victim(name):
    return os.path.join(VICTIMS, "victim-" + name)


def snaps(d, pid=None):
    pat = f"memtrace.{pid}.*.snap" if pid else "memtrace.*.snap"
    return sorted(glob.glob(os.path.join(d, pat)),
                  key=lambda p: (int(p.split(".")[-3]), int(p.split(".")[-2])))


def show_json(snap, *args):
    r = subprocess.run([TOOL, "show", "--json", "-n", "0", *args, snap], capture_output=True,
                       timeout=TIMEOUT)
    check(r.returncode == 0, f"memtrace show {snap} failed: {r.stderr.decode()}")
    return json.loads(r.stdout)


def stats_by_line(js):
    return {(s["file"], s["line"]): s for s in js["stats"]}


def expect_site(js, src, tag, size, count):
    path, line = line_of(src, tag)
    got = stats_by_line(js).get((path, line))
    check(got is not None, f"no live memory reported at {path}:{line} (@{tag}); "
          f"have {[s['key'] for s in js['stats']][:12]}")
    eq((got["size"], got["count"]), (size, count), f"size and count at @{tag}")


def expect_absent(js, src, tag):
    path, line = line_of(src, tag)
    check((path, line) not in stats_by_line(js), f"@{tag} ({path}:{line}) should hold nothing")


def only_snapshot(d):
    s = snaps(d)
    eq(len(s), 1, f"snapshots in {d}")
    return s[0]


def run_victim(name, env=None):
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([victim(name)], env=env, dump_dir=d)
    return d, r


def sums_match_totals(snap):
    """Per-callsite live sums equal the process totals, per domain."""
    for dom, key in (("heap", "heap_live_bytes"), ("mmap", "mmap_live_bytes")):
        js = show_json(snap, "--domain", dom, "--group-by", "traceback")
        eq(sum(s["size"] for s in js["stats"]), js["totals"][key], f"{dom} sites vs totals in {snap}")


# ---- cases -------------------------------------------------------------

def case_exports():
    out = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True).stdout
    names = {l.split()[-1] for l in out.splitlines() if l.strip()}
    for sym in ["malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
                "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size", "cfree",
                "mmap", "mmap64", "munmap", "mremap", "_exit", "_Exit", "mt_snapshot",
                "mt_reset_peak"]:
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


@case(victims=("basic",))
def case_atomic_file():
    d, r = run_victim("basic")
    eq(r.returncode, 0, "exit status")
    snap = only_snapshot(d)
    eq(stat.S_IMODE(os.stat(snap).st_mode), 0o600, "snapshot mode")
    eq(sorted(os.listdir(d)), [os.path.basename(snap)], "files left in the dump directory")
    with open(snap, "rb") as f:
        data = f.read()
    eq(data[:8], b"MEMTRACE", "magic")
    eq(data[-4:], b"MTEN", "END record")


@case(suite="cli")
def case_demo():
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([DEMO], dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"demo: served 10000 requests, 10 bytes of config\n"), "demo")
    every = snaps(d)
    eq([show_json(f)["reason"] for f in every], ["on request (mt_snapshot)"] * 3 + ["at exit"],
       "three snapshots while it serves, one at exit")
    snap = every[-1]
    text = subprocess.run([TOOL, "show", snap], capture_output=True, text=True).stdout
    demo_c = os.path.join(SRC, "tools", "demo", "demo.c")
    lines = open(demo_c).read().splitlines()
    leak = next(i for i, l in enumerate(lines, 1) if "never freed" in l)
    cfg = next(i for i, l in enumerate(lines, 1) if "calloc(1, 12345)" in l)
    rows = [l for l in text.splitlines() if l.startswith(demo_c)]
    eq(rows[0], f"{demo_c}:{leak}: size=93.8 KiB, count=1000, average=96 B", "top line")
    eq(rows[1], f"{demo_c}:{cfg}: size=12.1 KiB, count=1, average=12.1 KiB", "second line")
    # the peak is never below what is live (threads' pending bytes included)
    t = show_json(snap)["totals"]
    check(t["heap_peak_bytes"] >= t["heap_live_bytes"] > 0, f"peak below live: {t}")
    # the series names the session cache as what grows, steadily
    g = json.loads(tool("growth", "--json", *every).stdout)
    top = g["suspects"][0]
    eq((top["file"], top["line"], top["trend"]), (demo_c, leak, "steady"), f"growth: {top}")


@case(victims=("basic",))
def case_options_bad_values():
    for var, val in [("MEMTRACE_DEPTH", "abc"), ("MEMTRACE_DEPTH", "-1"),
                     ("MEMTRACE_DEPTH", "99999999999"), ("MEMTRACE_DEPTH", "0"),
                     ("MEMTRACE_DEPTH", ""), ("MEMTRACE_AT_EXIT", "maybe"),
                     ("MEMTRACE_VERBOSE", "x" * 65536), ("MEMTRACE_DIR", ""),
                     ("MEMTRACE_ARENA_MAX", "0"), ("MEMTRACE_ARENA_MAX", "-1"),
                     ("MEMTRACE_ARENA_MAX", "abc"), ("MEMTRACE_ARENA_MAX", "99999999999"),
                     ("MEMTRACE_ALLOCATOR", "tcmalloc"), ("MEMTRACE_SIGNAL", "TERM"),
                     ("MEMTRACE_INTERVAL", "-2"), ("MEMTRACE_INTERVAL", "1.2345")]:
        if var == "MEMTRACE_DIR":
            # an empty directory name: warn, dump in the working directory
            d = tempfile.mkdtemp(prefix="mt-test-")
            r = run([victim("basic")], env={var: val}, cwd=d)
        else:
            d, r = run_victim("basic", env={var: val})
        eq((r.returncode, r.stdout), (0, b"basic ok\n"), f"{var}={val[:20]!r}: program unaffected")
        err = r.stderr.decode()
        eq(len(err.splitlines()), 1, f"{var}={val[:20]!r}: one warning line, got {err!r}")
        check(var in err and len(err) < 400, f"warning names {var} and is short: {err[:300]!r}")
        js = show_json(only_snapshot(d))
        expect_site(js, "basic.c", "keep100", 100000, 1000)  # defaults kept
    # a good value is taken: depth 1 keeps one frame per callsite
    d, r = run_victim("basic", env={"MEMTRACE_DEPTH": "1"})
    eq(r.stderr, b"", "no warning for a good value")
    js = show_json(only_snapshot(d), "--group-by", "traceback")
    check(all(len(s["traceback"]) == 1 for s in js["stats"]), "depth 1 records one frame")


@case(victims=("basic",))
def case_options_at_exit_off():
    d, r = run_victim("basic", env={"MEMTRACE_AT_EXIT": "0"})
    eq((r.returncode, r.stdout, r.stderr), (0, b"basic ok\n", b""), "program unaffected")
    eq(snaps(d), [], "no snapshot with MEMTRACE_AT_EXIT=0")


@case(victims=("basic",))
def case_options_dir():
    # missing directory: one warning, the program's result unchanged
    r = run([victim("basic")], env={"MEMTRACE_DIR": "/nonexistent/memtrace-dumps"})
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "missing dir: program unaffected")
    err = r.stderr.decode()
    eq(len(err.splitlines()), 1, f"missing dir: one warning, got {err!r}")
    check("/nonexistent/memtrace-dumps" in err and "no such directory" in err, err)
    # said at start: also when no snapshot is ever attempted
    r = run([victim("basic")], env={"MEMTRACE_DIR": "/nonexistent/memtrace-dumps",
                                    "MEMTRACE_AT_EXIT": "0"})
    err = r.stderr.decode()
    check(len(err.splitlines()) == 1 and "no such directory" in err, f"missing dir at start: {err!r}")
    # a directory others may write without the sticky bit is refused
    d = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(d, 0o777)
    r = run([victim("basic")], dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "unsafe dir: program unaffected")
    check(b"refused" in r.stderr, f"unsafe dir refused: {r.stderr!r}")
    eq(os.listdir(d), [], "nothing written to an unsafe dir")
    # a relative directory is anchored at the start-up directory
    d = tempfile.mkdtemp(prefix="mt-test-")
    os.mkdir(os.path.join(d, "sub"))
    r = run([victim("basic")], env={"MEMTRACE_DIR": "sub"}, cwd=d)
    eq(r.returncode, 0, "relative dir")
    eq(len(snaps(os.path.join(d, "sub"))), 1, "snapshot in the relative dir")
    # a regular file in place of the directory
    f = os.path.join(d, "file")
    open(f, "w").close()
    r = run([victim("basic")], env={"MEMTRACE_DIR": f})
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "file as dir: program unaffected")
    check(b"not a directory" in r.stderr, r.stderr)


def reader_fails(path, *must):
    r = subprocess.run([TOOL, "show", path], capture_output=True, timeout=30)
    err = r.stderr.decode(errors="replace")
    eq(r.returncode, 2, f"exit status for {path} ({err!r})")
    eq(r.stdout, b"", f"no output for {path}")
    eq(len(err.splitlines()), 1, f"one line for {path}: {err!r}")
    whole = any(m.endswith("not a snapshot file") or m.startswith("cannot open") for m in must)
    check(err.startswith(f"memtrace: {path}: " if whole else f"memtrace: {path}: offset "),
          f"message names file and offset: {err!r}")
    for m in must:
        check(m in err, f"{m!r} in {err!r}")
    return err


def good_snapshot():
    d, r = run_victim("basic")
    eq(r.returncode, 0, "victim")
    with open(only_snapshot(d), "rb") as f:
        return d, f.read()


@case(suite="cli", victims=("basic",))
def case_reader_truncated():
    d, data = good_snapshot()
    out = os.path.join(d, "cut")
    os.mkdir(out)

    def one(n):
        p = os.path.join(out, f"cut.{n}.snap")
        with open(p, "wb") as f:
            f.write(data[:n])
        reader_fails(p)
        os.unlink(p)
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(one, range(len(data))))
    print(f"{len(data)} truncations rejected")


@case(suite="cli", victims=("basic",))
def case_reader_bitflips():
    d, data = good_snapshot()
    rng = random.Random(1234)
    p = os.path.join(d, "flipped.snap")
    for i in range(300):
        b = bytearray(data)
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        with open(p, "wb") as f:
            f.write(b)
        reader_fails(p)
    print("300 bit flips rejected")


@case(suite="cli")
def case_reader_bad_files():
    d, data = good_snapshot()
    missing = os.path.join(d, "missing.snap")
    reader_fails(missing, "cannot open")
    empty = os.path.join(d, "empty.snap")
    open(empty, "w").close()
    reader_fails(empty, "empty file")
    reader_fails(d, "a directory, not a snapshot file")
    reader_fails("/dev/zero", "a device, not a snapshot file")
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    reader_fails(fifo, "a pipe, not a snapshot file")
    foreign = os.path.join(d, "foreign.snap")
    with open(foreign, "wb") as f:
        f.write(b"\x7fELF" + data[4:])
    reader_fails(foreign, "bad magic")
    future = os.path.join(d, "future.snap")
    with open(future, "wb") as f:
        f.write(data[:8] + b"\x03\x00\x00\x00" + data[12:])
    reader_fails(future, "written by format v3.0, this reader reads v2.0..v2.x")
    old = os.path.join(d, "v1.snap")
    with open(old, "wb") as f:
        f.write(data[:8] + b"\x01\x00\x04\x00" + data[12:])
    reader_fails(old, "offset 8: written by format v1.4 (memtrace before 2026-12-07), this "
                 "reader reads v2.x: take the snapshot again with this memtrace, or read it "
                 "with the memtrace that wrote it")
    short = os.path.join(d, "short.snap")
    with open(short, "wb") as f:
        f.write(b"MEMTR")
    reader_fails(short, "truncated")


@case(suite="cli", victims=("basic",))
def case_dump_records():
    """memtrace dump prints every record of a real snapshot as JSON lines,
    from the same lists the writer and the reader follow: the figures agree
    with show --json, the records tile the file, and --spec names every
    record and field of src/format.h."""
    d, data = good_snapshot()
    snap = only_snapshot(d)
    r = tool("dump", snap)
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    eq(recs[0]["record"], "META", "META first")
    eq(recs[-1]["record"], "END", "END last")
    at = 16
    for x in recs:
        eq(x["offset"], at, f"{x['record']} follows the one before")
        at += 8 + x["len"]
    eq(at, len(data), "the records and END tile the file")
    js = show_json(snap)
    meta = recs[0]
    eq((meta["pid"], meta["seq"], meta["wall_ns"]), (js["pid"], js["seq"], js["wall_ns"]),
       "META as show reads it")
    eq(meta["exe"], js["exe"], "the executable")
    tot = next(x for x in recs if x["record"] == "TOTALS")["counters"]
    eq(tot[:len(js["totals"])], list(js["totals"].values()), "TOTALS as show reads them")
    sites = [x for x in recs if x["record"] == "SITE"]
    eq(len(sites), js["totals"]["sites"], "one SITE a callsite")
    eq(sum(x["counters"][0] for x in sites if x["domain"] == 0), js["totals"]["heap_live_bytes"],
       "the sites' live bytes add up to the total")
    mods = [x for x in recs if x["record"] == "MODULE"]
    check(any(m["path"].endswith("victim-basic") and len(m["build_id"]) == 40 for m in mods),
          f"the victim's module with its build id in hex: {mods[:2]}")
    # the spec, from the lists of format.h
    with open(os.path.join(SRC, "src", "format.h")) as f:
        h = f.read()
    spec = tool("dump", "--spec").stdout
    rec_names = re.findall(r"^\s*X\(([A-Z]+), (\d+), [a-z]+,", h, re.M)
    check(len(rec_names) >= 11, f"records parsed: {rec_names}")
    nfields = 0
    for name, code in rec_names:
        check(f"\n{name} ({code}): " in spec, f"{name} in the spec")
        body = re.search(rf"#define MT_{name}_FIELDS\(F, R\)(.*?)\n\n", h, re.S).group(1)
        for kind, field in re.findall(r"F\(R, ([a-z0-9]+), ([a-z_]+),", body):
            check(re.search(rf"^ +{kind} +{field} ", spec, re.M), f"{name}.{field} in the spec")
            nfields += 1
    check(nfields >= 40, f"fields parsed: {nfields}")
    # a bad file: one line, nothing on standard output
    cut = os.path.join(d, "cut.snap")
    with open(cut, "wb") as f:
        f.write(data[:-3])
    r = tool("dump", cut, check_rc=2)
    eq(r.stdout, "", "nothing printed of a bad file")
    check(len(r.stderr.splitlines()) == 1 and "END record" in r.stderr, r.stderr)
    tool("dump", check_rc=1)
    shutil.rmtree(d)


# ---- real programs -----------------------------------------------------

def same_as_without(cmd, env=None, cwd_factory=None, input=None):
    """Runs cmd bare and under memtrace; asserts identical status and output;
    returns the dump directory."""
    results = []
    d = tempfile.mkdtemp(prefix="mt-real-")
    for preload in (False, True):
        cwd = cwd_factory() if cwd_factory else None
        r = run(cmd, env=env, preload=preload, dump_dir=d, cwd=cwd, input=input)
        results.append(r)
    bare, traced = results
    eq(traced.returncode, bare.returncode, f"exit status of {cmd!r}")
    eq(traced.stdout, bare.stdout, f"stdout of {cmd!r}")
    # memtrace's own notes (a program that handles SIGUSR1 itself, as bash
    # does for its EXIT trap) are marked "memtrace[pid]:"; the rest is equal
    ours = [l for l in traced.stderr.splitlines(True) if l.startswith(b"memtrace[")]
    theirs = b"".join(l for l in traced.stderr.splitlines(True) if not l.startswith(b"memtrace["))
    eq(theirs, bare.stderr, f"stderr of {cmd!r}")
    check(len(ours) <= 2, f"memtrace said little: {ours!r}")
    files = snaps(d)
    check(files, f"no snapshot from {cmd!r}")
    for s in files:
        js = show_json(s)
        check(js["totals"]["heap_alloc_count"] > 0, f"{s} saw allocations")
    sums_match_totals(files[-1])
    return d, bare


def python3():
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


PY = r"""
import json, threading, collections
class Node:
    def __init__(self, i): self.i = i; self.tags = [str(i)] * 3
data = {i: Node(i) for i in range(50000)}
words = collections.Counter(str(i % 977) for i in range(100000))
out = []
def work(k):
    out.append(sum(len(n.tags) for n in data.values() if n.i % 4 == k))
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out), len(words), json.dumps({"n": len(data)}))
"""


def case_real_python():
    same_as_without([python3(), "-c", PY])


def case_real_python_malloc():
    d, bare = same_as_without([python3(), "-c", PY], env={"PYTHONMALLOC": "malloc"})
    main = [s for s in snaps(d)]
    js = show_json(main[-1])
    check(js["totals"]["heap_alloc_count"] > 100000, "with PYTHONMALLOC=malloc objects reach malloc")


SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'name-' || x, x * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(v) FROM t WHERE name LIKE 'name-1%';
PRAGMA integrity_check;
"""


def case_real_sqlite3():
    d, bare = same_as_without(["sqlite3", ":memory:"], input=SQL.encode())
    check(bare.stdout.endswith(b"ok\n"), bare.stdout)


GIT = r"""
set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t
export GIT_COMMITTER_EMAIL=t@example.invalid GIT_AUTHOR_DATE='2026-01-01T00:00:00Z'
export GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$PWD GIT_CONFIG_NOSYSTEM=1
git init -q -b main repo && cd repo
for i in $(seq 1 200); do echo "file $i" > f$i.txt; done
git add . && git commit -qm one
for i in $(seq 1 50); do echo "more $i" >> f$i.txt; done
git commit -qam two
git gc -q
git fsck --no-progress 2>&1
git log --format='%H %s'
git count-objects -v | grep -v size
"""


def case_real_git():
    same_as_without(["bash", "-c", GIT], cwd_factory=lambda: tempfile.mkdtemp(prefix="mt-git-"))


BASH = r"""
trap 'echo trapped $?' EXIT
f() { local s=0; for i in $(seq 1 2000); do s=$((s + i)); done; echo $s; }
f | tr 0-9 a-j
( echo subshell $BASHPID >/dev/null; echo in-subshell )
declare -A h; for i in $(seq 1 3000); do h[k$i]=$i; done; echo ${#h[@]}
echo $(echo nested $(echo deeper)) | wc -c
exit 3
"""


def case_real_bash():
    d, bare = same_as_without(["bash", "-c", BASH])
    eq(bare.returncode, 3, "bash exit status")


PERL = r"""
my %h; for my $i (1..200000) { $h{"k$i"} = [$i, "v$i"]; }
my $n = 0; for my $k (sort keys %h) { $n += $h{$k}[0] if $k =~ /7/; }
delete $h{"k$_"} for 1..100000;
print scalar(keys %h), " $n\n";
"""


def case_real_perl():
    same_as_without(["perl", "-e", PERL])


# ---- snapshots on demand and the analyzer -------------------------------

def tool(*args, check_rc=0):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=TIMEOUT)
    if check_rc is not None:
        eq(r.returncode, check_rc, f"memtrace {' '.join(args)}: {r.stderr}")
    return r


def start(cmd, d, env=None):
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    e.update(env or {})
    return subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_snapshots(d, pid, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if len(snaps(d, pid)) >= n:
            return
        time.sleep(0.01)
    raise Fail(f"expected {n} snapshots of {pid} in {d}, have {snaps(d, pid)}")


def leak_series():
    """Four SIGUSR1 snapshots of the leak victim (the fourth after its one-off
    block), plus its at-exit one."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start([victim("leak"), "2.2"], d)
    t0 = time.time()
    for i, at in enumerate((0.4, 1.0, 1.6, 1.95)):
        time.sleep(max(0, t0 + at - time.time()))
        p.send_signal(signal.SIGUSR1)
        wait_for_snapshots(d, p.pid, i + 1)
    out, err = p.communicate(timeout=TIMEOUT)
    eq(p.returncode, 0, f"leak victim exit status ({err!r})")
    check(out.startswith(b"leaked "), out)
    files = snaps(d, p.pid)
    eq(len(files), 5, "four signal snapshots and the at-exit one")
    return d, files, err


@case(suite="cli", victims=("leak",))
def case_signal_diff_growth():
    d, files, err = leak_series()
    eq(err, b"", "nothing on stderr")
    a, b, c = (show_json(f) for f in files[:3])
    for js in (a, b, c):
        eq(js["reason"], "on signal", "reason")
    path, line = line_of("leak.c", "leak")
    key = f"{path}:{line}"
    sa, sc = stats_by_line(a)[(path, line)], stats_by_line(c)[(path, line)]
    # diff: the leak line on top, with exactly the change show reports
    js = json.loads(tool("diff", "--json", files[0], files[2]).stdout)
    top = js["stats"][0]
    eq(top["key"], key, "top line of the diff")
    eq((top["size_diff"], top["count_diff"]), (sc["size"] - sa["size"], sc["count"] - sa["count"]),
       "diff of the leak line")
    text = tool("diff", files[0], files[2]).stdout
    want = (f"{key}: size={_format_size(sc['size'], False)} "
            f"({_format_size(sc['size'] - sa['size'], True)}), count={sc['count']} "
            f"(+{sc['count'] - sa['count']}), average=1000 B")
    check(want in text.splitlines(), f"{want!r} in diff text:\n{text}")
    # growth: the leak ranks first, steady, at 100,000 B/s within 10 %
    js = json.loads(tool("growth", "--json", *files[:3]).stdout)
    first = js["suspects"][0]
    eq((first["key"], first["trend"], first["rank"]), (key, "steady", 1), "first suspect")
    check(abs(first["rate"] - 100000) <= 10000, f"leak rate {first['rate']:.0f} B/s, expected 100000")
    # over all five, as the README's glob gives them: the at-exit snapshot is
    # left out, said in one line; the one-off block (after the third) is a
    # jump, the leak still ranks first
    r = tool("growth", "--json", *files)
    js = json.loads(r.stdout)
    eq(r.stderr.splitlines(),
       [f"memtrace growth: left out {files[-1]}, taken at exit: the teardown, not the running "
        "program (memtrace leaks reads it)"], "the at-exit snapshot left out")
    eq(len(js["snapshots"]), 4, "the series is the running program's")
    eq((js["suspects"][0]["key"], js["suspects"][0]["trend"]), (key, "steady"), "first of four")
    jump = [s for s in js["suspects"] if s["key"].endswith(f":{line_of('leak.c', 'jump')[1]}")]
    eq([s["trend"] for s in jump], ["jump"], "the one-off allocation is a jump")
    check(js["suspects"].index(jump[0]) > 0, "the jump ranks after the steady leak")
    text = tool("growth", *files[:3]).stdout
    check(re.search(r"^#1 " + re.escape(key) + r": .* grew in 2 of 2 intervals: steady$", text, re.M),
          text)


@case(victims=("sighandler",))
def case_signal_own_handler():
    for how in ("sigaction", "signal"):
        d = tempfile.mkdtemp(prefix="mt-test-")
        p = start([victim("sighandler"), how], d)
        eq(p.stdout.readline(), b"ready\n", "victim ready")
        for _ in range(3):
            p.send_signal(signal.SIGUSR1)
            time.sleep(0.05)
        out, err = p.communicate(timeout=TIMEOUT)
        eq((p.returncode, out), (0, b"handled 3\n"), f"{how}: the program's handler ran")
        lines = err.decode().splitlines()
        eq(len(lines), 1, f"{how}: one warning: {lines}")
        check("handles SIGUSR1 itself" in lines[0], lines[0])
        eq([show_json(f)["reason"] for f in snaps(d)], ["at exit"], f"{how}: no signal snapshot")


def case_signal_dd():
    # dd prints its transfer statistics on SIGUSR1: they must still appear
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start(["dd", "if=/dev/zero", "of=/dev/null", "bs=1k", "count=200000000"], d)
    time.sleep(0.3)
    p.send_signal(signal.SIGUSR1)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=TIMEOUT)
    check(err.count(b"records in") >= 2, f"dd reported on SIGUSR1 and at the end: {err!r}")
    check(b"handles SIGUSR1 itself" in err, "memtrace said why it takes no snapshot")


@case(victims=("leak",))
def case_signal_burst():
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start([victim("leak"), "1.5"], d)
    time.sleep(0.2)
    for _ in range(300):
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.001)
    out, err = p.communicate(timeout=TIMEOUT)
    eq((p.returncode, err), (0, b""), "a burst of signals: no crash, no noise")
    files = snaps(d, p.pid)
    check(2 <= len(files) <= 301, f"one dump per wake at most: {len(files)}")
    seqs = [int(f.split(".")[-2]) for f in files]
    eq(seqs, list(range(1, len(files) + 1)), "sequence numbers are dense")
    for f in files:
        show_json(f)
    sums_match_totals(files[-1])


@case(victims=("leak",))
def case_signal_choice():
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start([victim("leak"), "1.0"], d, env={"MEMTRACE_SIGNAL": "SIGUSR2"})
    time.sleep(0.3)
    p.send_signal(signal.SIGUSR2)
    wait_for_snapshots(d, p.pid, 1)
    p.communicate(timeout=TIMEOUT)
    eq(p.returncode, 0, "USR2 dumps instead of killing")
    eq([show_json(f)["reason"] for f in snaps(d, p.pid)], ["on signal", "at exit"], "reasons")
    # with none, SIGUSR1 keeps its default action: the program dies of it
    p = start([victim("leak"), "5"], d, env={"MEMTRACE_SIGNAL": "none"})
    time.sleep(0.3)
    p.send_signal(signal.SIGUSR1)
    p.communicate(timeout=TIMEOUT)
    eq(p.returncode, -signal.SIGUSR1, "MEMTRACE_SIGNAL=none leaves SIGUSR1 alone")
    r = run([victim("leak"), "0.1"], env={"MEMTRACE_SIGNAL": "KILL"}, dump_dir=d)
    eq(r.returncode, 0, "a refused signal name")
    check(b"MEMTRACE_SIGNAL='KILL'" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr)


@case(victims=("leak",))
def case_interval():
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([victim("leak"), "1.1"], env={"MEMTRACE_INTERVAL": "0.25"}, dump_dir=d)
    eq((r.returncode, r.stderr), (0, b""), "interval run")
    files = snaps(d)
    reasons = [show_json(f)["reason"] for f in files]
    check(4 <= reasons.count("periodic") <= 5, f"about 4 periodic snapshots in 1.1 s: {reasons}")
    eq(reasons[-1], "at exit", "last is the at-exit one")
    secs = [show_json(f)["seconds"] for f in files if show_json(f)["reason"] == "periodic"]
    for a, b in zip(secs, secs[1:]):
        check(0.15 < b - a < 0.4, f"periodic spacing {b - a:.3f} s")


@case(victims=("api",))
def case_reset_peak():
    d, r = run_victim("api")
    eq(r.returncode, 0, "exit status")
    js = show_json(snaps(d)[0])
    t = js["totals"]
    check(t["heap_peak_bytes"] < (1 << 20), f"peak after mt_reset_peak: {t['heap_peak_bytes']}")
    check(t["heap_peak_bytes"] >= t["heap_live_bytes"], "peak >= live")


@case(suite="cli", victims=("basic", "cxx"))
def case_show_views():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path, line = line_of("basic.c", "keep100")
    js = show_json(snap, "--group-by", "file")
    eq(js["stats"][0]["key"], path, "file grouping")
    check(js["stats"][0]["size"] >= 100000 + 12345, "file total")
    js = show_json(snap, "--group-by", "function")
    eq(js["stats"][0]["key"], "main", "function grouping")
    js = show_json(snap, "--group-by", "module")
    eq(js["stats"][0]["key"], victim("basic"), "module grouping")
    js = show_json(snap, "--cumulative")
    keys = [s["key"] for s in js["stats"]]
    check(f"{path}:{line}" in keys, "cumulative keeps the line")
    js = show_json(snap, "--include", "*basic.c")
    check(all(s["file"] == path for s in js["stats"]), "include by file pattern")
    js = show_json(snap, "--exclude", "*basic.c")
    check(all(s["file"] != path for s in js["stats"]), "exclude by file pattern")
    js = show_json(snap, "--include", "__libc_start_call_main", "--all-frames")
    check(any(s["key"] == f"{path}:{line}" for s in js["stats"]), "--all-frames matches a caller")
    js = show_json(snap, "--include", "__libc_start_call_main")
    eq(js["stats"], [], "without --all-frames only the line's frame is matched")
    js = show_json(snap, "--sort", "allocs")
    fpath, fline = line_of("basic.c", "freed64")
    freed = [s for s in js["stats"] if s["key"] == f"{fpath}:{fline}"]
    eq([(s["allocs"], s["size"]) for s in freed], [(500, 0)], "--sort allocs shows freed churn")
    js = show_json(snap, "--sort", "count")
    eq(js["stats"][0]["key"], f"{path}:{line}", "--sort count")
    text = tool("show", "-n", "1", snap).stdout
    check(re.search(r"^\d+ other: size=", text, re.M), "the rest summed in an 'other' line")
    r = tool("show", "--group-by", "traceback", "--cumulative", snap, check_rc=1)
    check("does not go with" in r.stderr, r.stderr)
    r = tool("show", "--limit", "x", snap, check_rc=1)
    check("--limit" in r.stderr, r.stderr)
    # C++: operator new and the std:: containers are passed over
    d, r = run_victim("cxx")
    js = show_json(only_snapshot(d), "--group-by", "function")
    check(all(not s["key"].startswith("operator new") for s in js["stats"]), js["stats"][:3])


def parse_stat_lines(text):
    return [l for l in text.splitlines()
            if re.match(r"^(#\d+ )?\S.*: size=", l) and not l.startswith("Total (")]


@case(suite="cli", victims=("leak",))
def case_json_matches_text():
    d, files, _ = leak_series()
    for args in ([], ["--group-by", "function"], ["--domain", "all"], ["--group-by", "traceback"]):
        js = show_json(files[2], *args)
        lines = parse_stat_lines(tool("show", "-n", "0", *args, files[2]).stdout)
        want = []
        for s in js["stats"]:
            line = f"{s['key']}: size={_format_size(s['size'], False)}, count={s['count']}"
            if s["count"]:
                line += f", average={_format_size(s['size'] / s['count'], False)}"
            want.append(line)
        eq(lines, want, f"show {args}: text and JSON")
    js = json.loads(tool("diff", "--json", "-n", "0", files[0], files[2]).stdout)
    lines = parse_stat_lines(tool("diff", "-n", "0", files[0], files[2]).stdout)
    want = []
    for s in js["stats"]:
        line = (f"{s['key']}: size={_format_size(s['size'], False)} "
                f"({_format_size(s['size_diff'], True)}), count={s['count']} ({s['count_diff']:+d})")
        if s["count"]:
            line += f", average={_format_size(s['size'] / s['count'], False)}"
        want.append(line)
    eq(lines, want, "diff: text and JSON")
    js = json.loads(tool("growth", "--json", "-n", "0", *files).stdout)
    lines = parse_stat_lines(tool("growth", "-n", "0", *files).stdout)
    want = [f"#{s['rank']} {s['key']}: size={_format_size(s['size'], False)} "
            f"({_format_size(s['size_diff'], True)}), count={s['count']} ({s['count_diff']:+d}), "
            f"{_format_size(s['rate'], True)}/s, grew in {s['grew']} of {s['intervals']} "
            f"intervals: {s['trend']}" for s in js["suspects"]]
    eq(lines, want, "growth: text and JSON")
    js = json.loads(tool("leaks", "--json", "-n", "0", "--show", "all", files[-1]).stdout)
    text = tool("leaks", "-n", "0", "--show", "all", files[-1]).stdout
    heads = re.findall(r"^(Direct leak of|Indirect leak of|Possible leak of|Still reachable:) "
                       r"(\d+) byte\(s\)(?: \((.*)\))? in (\d+) object", text, re.M)
    kinds = {"definite": "Direct leak of", "indirect": "Indirect leak of",
             "possible": "Possible leak of", "reachable": "Still reachable:"}

    def also(size):  # the size again, once it is not in bytes
        f = _format_size(size, False)
        return "" if f.endswith(" B") else f
    eq(heads, [(kinds[l["class"]], str(l["size"]), also(l["size"]), str(l["count"]))
               for l in js["leaks"]], "leaks: text and JSON")
    check(len(heads) >= 2, f"leaks lists the classes: {heads}")
    b = r"(?:(\d+) bytes?|[\d.]+ [KMGT]iB \((\d+) bytes\))"
    totals = re.search(rf"^Definitely lost: {b} in (\d+) blocks?; Indirectly lost: {b} in (\d+) "
                       rf"blocks?; Possibly lost: {b} in (\d+) blocks?; Still reachable: {b} in "
                       r"(\d+) blocks?", text, re.M)
    for n, word in re.findall(r"(\d+) (blocks?)\b", totals.group(0)):
        eq(word, "block" if n == "1" else "blocks", f"number agreement: {n} {word}")
    check(totals, f"the classes' totals line: {text[:600]}")
    eq([int(x) for x in totals.groups() if x is not None],
       [v for k in ("definite", "indirect", "possible", "reachable")
        for v in (js["classes"][k]["bytes"], js["classes"][k]["blocks"])], "leaks: totals, text and JSON")


@case(suite="cli", victims=("basic", "realloc"))
def case_diff_two_processes():
    d1, _ = run_victim("basic")
    d2, _ = run_victim("realloc")
    r = tool("diff", only_snapshot(d1), only_snapshot(d2))
    check("mixes two processes" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr)
    r = tool("growth", only_snapshot(d1), only_snapshot(d2))
    check("mixes two processes" in r.stderr, r.stderr)
    r = tool("diff", only_snapshot(d1), check_rc=1)
    check("needs two snapshot files" in r.stderr, r.stderr)
    r = tool("diff", only_snapshot(d1), "/nonexistent.snap", check_rc=2)
    check("/nonexistent.snap: cannot open" in r.stderr and "offset" not in r.stderr, r.stderr)


@case(suite="cli", victims=("basic",))
def case_leaks():
    """leaks: basic's blocks are held by globals at exit (still reachable,
    not leaked); listed with --show reachable; suppressions as LSan's."""
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = json.loads(tool("leaks", "--json", "-n", "0", snap).stdout)
    eq((js["scan"]["status"], js["leaked_bytes"], js["leaks"]), ("done", 0, []),
       "nothing lost: the globals hold every block")
    js = json.loads(tool("leaks", "--json", "-n", "0", "--show", "reachable", snap).stdout)
    path, line = line_of("basic.c", "keep100")
    top = js["leaks"][0]
    eq((top["class"], top["size"], top["count"]), ("reachable", 100000, 1000), "the largest block set")
    check(top["traceback"][0].startswith(f"{path}:{line} (main)"), top["traceback"][:2])
    check(any(s["builtin"] and s["pattern"] == "_IO_file_doallocate" for s in js["suppressions"]),
          f"stdout's buffer is a built-in suppression: {js['suppressions']}")
    eq(js["leaked_bytes"], 100000 + 12345, "reachable bytes: the two live blocks of main")
    nob = json.loads(tool("leaks", "--json", "--show", "all", "--no-builtin", snap).stdout)
    check(nob["leaked_bytes"] > js["leaked_bytes"], "--no-builtin shows libc's one-time blocks")
    sup = os.path.join(d, "supp.txt")
    with open(sup, "w") as f:
        f.write("# ours\nleak:basic.c\n\n")
    js = json.loads(tool("leaks", "--json", "--show", "all", "--suppressions", sup, snap).stdout)
    eq(js["leaked_bytes"], 0, "leak:basic.c suppresses main's blocks")
    text = tool("leaks", "--show", "reachable", snap).stdout
    check(re.search(r"^Still reachable: 100000 byte\(s\) \(97.7 KiB\) in 1000 object\(s\), allocated from:\n"
                    r"    #0 " + re.escape(f"{path}:{line}") + " in main$", text, re.M), text)
    text = tool("leaks", snap).stdout
    check("SUMMARY: memtrace: 0 byte(s) definitely or indirectly lost in 0 allocation(s)." in text, text)
    r = tool("leaks", "--show", "lost", snap, check_rc=1)
    check("--show: 'lost' is not definite, indirect, possible, reachable or all" in r.stderr, r.stderr)
    # no scan: every live block counts, and leaks says why
    for env, why in (({"MEMTRACE_SAMPLE": "1K"}, "not done: sampled mode records too few blocks to scan"),
                     ({"MEMTRACE_LEAK_SCAN": "0"}, "not done: MEMTRACE_LEAK_SCAN=0")):
        d2, _ = run_victim("basic", env=env)
        s2 = only_snapshot(d2)
        r = tool("leaks", "--json", s2)
        check(f"has no leak scan ({why}): every block still live counts as leaked" in r.stderr,
              f"{env}: {r.stderr}")
        js = json.loads(r.stdout)
        eq((js["scan"]["status"], js["classes"]), (why, {}), f"{env}: no classes")
        check(js["leaked_bytes"] >= 100000 + 12345 or "MEMTRACE_SAMPLE" in env,
              f"{env}: every live block: {js['leaked_bytes']}")
        shutil.rmtree(d2)
    with open(sup, "w") as f:
        f.write("nonsense\n")
    r = tool("leaks", "--suppressions", sup, snap, check_rc=2)
    check(f"{sup}:1: not a leak:PATTERN line" in r.stderr, r.stderr)


VG_KINDS = {"Leak_DefinitelyLost": "definite", "Leak_IndirectlyLost": "indirect",
            "Leak_PossiblyLost": "possible", "Leak_StillReachable": "reachable"}


def valgrind_leaks(cmd, cwd=None):
    """memcheck's loss records for cmd, bare: [(class, bytes, blocks, frames)],
    frames as (function, file, line); a definitely lost record's own bytes
    (memcheck's XML counts its indirect ones in too)."""
    import xml.etree.ElementTree as ET
    xml = tempfile.mktemp(prefix="mt-vg-", suffix=".xml")
    r = run(["valgrind", "--leak-check=full", "--show-leak-kinds=all",
             "--run-libc-freeres=no", "--run-cxx-freeres=no", "--xml=yes",
             f"--xml-file={xml}", *cmd], preload=False, cwd=cwd, timeout=600)
    check(os.path.exists(xml), f"valgrind ran: {r.stderr[-500:]!r}")
    out = []
    for e in ET.parse(xml).getroot().iter("error"):
        kind = VG_KINDS.get(e.findtext("kind"))
        if not kind:
            continue
        xw = e.find("xwhat")
        size, blocks = int(xw.findtext("leakedbytes")), int(xw.findtext("leakedblocks"))
        m = re.search(r"\(([\d,]+) direct, [\d,]+ indirect\)", xw.findtext("text"))
        if m:
            size = int(m.group(1).replace(",", ""))
        frames = [(f.findtext("fn"), f.findtext("file"), f.findtext("line"))
                  for f in e.find("stack").findall("frame")]
        out.append((kind, size, blocks, frames))
    os.unlink(xml)
    return r, out


@case(victims=("reach",))
def case_leak_classes_valgrind():
    """The leak scan classes each block as valgrind memcheck does, on a
    victim with a block of every class (reach.c): per class and line, the
    same bytes and blocks; overall the same blocks per class and the same
    bytes, but for the one block whose size depends on the loaded objects
    (the new thread's TLS vector: the preload adds TLS modules)."""
    d, r = run_victim("reach")
    eq(r.returncode, 0, f"victim-reach: {r.stderr!r}")
    js = json.loads(tool("leaks", "--json", "--show", "all", "--no-builtin", "-n", "0",
                         only_snapshot(d)).stdout)
    eq(js["scan"]["status"], "done", f"the scan: {js['scan']}")
    vr, vg = valgrind_leaks([victim("reach")])
    eq(vr.returncode, 0, f"victim-reach under valgrind: {vr.stderr[-500:]!r}")
    src = os.path.join(SRC, "tests", "victims", "reach.c")

    def ours_line(trace):
        for t in trace:
            m = re.match(re.escape(src) + r":(\d+) ", t)
            if m:
                return int(m.group(1))
        return "dtv" if any("allocate_dtv" in t for t in trace) else trace[0]

    def theirs_line(frames):
        for fn, f, line in frames:
            if f == "reach.c":
                return int(line)
        return "dtv" if any(fn == "allocate_dtv" for fn, f, line in frames) else frames[0]

    mine, theirs = {}, {}
    for l in js["leaks"]:
        k = (l["class"], ours_line(l["traceback"]))
        mine[k] = tuple(a + b for a, b in zip(mine.get(k, (0, 0)), (l["size"], l["count"])))
    for kind, size, blocks, frames in vg:
        k = (kind, theirs_line(frames))
        theirs[k] = tuple(a + b for a, b in zip(theirs.get(k, (0, 0)), (size, blocks)))
    want = {}
    for tag, kind in (("direct", "definite"), ("parent", "definite"), ("child", "indirect"),
                      ("possible", "possible"), ("thread", "definite"), ("cache", "reachable"),
                      ("stackheld", "reachable")):
        want[(kind, line_of("reach.c", tag)[1])] = None
    cycle = line_of("reach.c", "cycle")[1]
    want[("definite", cycle)] = want[("indirect", cycle)] = None
    for k in want:
        check(k in theirs, f"valgrind sees {k}: {sorted(theirs)}")
        eq(mine.get(k), theirs[k], f"{k}: memtrace against valgrind")
    # beyond the victim's lines: the TLS vector, its count only
    eq({k: v[1] for k, v in mine.items() if k[1] == "dtv"},
       {k: v[1] for k, v in theirs.items() if k[1] == "dtv"}, "the TLS vectors")
    eq(sorted(k for k in mine if k[1] != "dtv"), sorted(k for k in theirs if k[1] != "dtv"),
       "no other loss record on either side")
    for cls in ("definite", "indirect", "possible", "reachable"):
        eq(js["classes"][cls]["blocks"], sum(v[1] for k, v in theirs.items() if k[0] == cls),
           f"{cls}: blocks, memtrace against valgrind")
    text = tool("leaks", only_snapshot(d)).stdout
    path, line = line_of("reach.c", "direct")
    check(re.search(r"^Direct leak of 4400 byte\(s\) in 4 object\(s\), allocated from:\n"
                    r"    #0 " + re.escape(f"{path}:{line}") + " in lose_direct$", text, re.M), text)
    check("SUMMARY: memtrace: 5309 byte(s) definitely or indirectly lost in 10 allocation(s)." in text,
          text)
    shutil.rmtree(d)


@case(victims=("cxx",))
def case_leak_classes_real():
    """Real programs at exit: the scan's class totals against valgrind
    memcheck's on the same command. Definitely and indirectly lost agree
    exactly; possibly lost and still reachable agree to the blocks that
    hold the environment, which differs under the two tools (memcheck's
    own LD_PRELOAD and variables; perl copies %ENV), so there within 2 %
    of the blocks and bytes, or 16 bytes and 8 blocks."""
    work = tempfile.mkdtemp(prefix="mt-real-")
    subprocess.run(["git", "init", "-q", work], check=True)
    with open(os.path.join(work, "f"), "w") as f:
        f.write("x\n")
    subprocess.run(["git", "-C", work, "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                    "-q", "--allow-empty", "-m", "one"], check=True)
    progs = {
        "sqlite3": ["sqlite3", ":memory:", "create table t(a); insert into t values(1); select * from t;"],
        "perl": ["perl", "-e", "my %h = (a => 1); my @l = map { [$_] } 1..100; print scalar(@l), \"\\n\""],
        "git": ["git", "-C", work, "log", "--oneline"],
        "bash": ["bash", "-c", "a=(1 2 3); echo ${#a[@]}"],
        "victim-cxx": [victim("cxx")],  # new[], objects, std::vector, std::string
        # getpwuid's and getgrgid's buffers, bindtextdomain's binding
        "tar": ["tar", "cf", os.path.join(work, "f.tar"), "-C", work, "f"],
    }
    for name, cmd in progs.items():
        d = tempfile.mkdtemp(prefix="mt-test-")
        r = run(cmd, dump_dir=d)
        eq(r.returncode, 0, f"{name}: {r.stderr[-300:]!r}")
        js = json.loads(tool("leaks", "--json", "--show", "all", "--no-builtin", "-n", "0",
                             only_snapshot(d)).stdout)
        eq(js["scan"]["status"], "done", f"{name}: the scan: {js['scan']}")
        vr, vg = valgrind_leaks(cmd)
        eq(vr.returncode, 0, f"{name} under valgrind: {vr.stderr[-300:]!r}")
        theirs = {}
        for kind, size, blocks, frames in vg:
            b, n = theirs.get(kind, (0, 0))
            theirs[kind] = (b + size, n + blocks)
        mine = {k: (v["bytes"], v["blocks"]) for k, v in js["classes"].items()}
        for cls in ("definite", "indirect"):
            eq(mine[cls], theirs.get(cls, (0, 0)), f"{name}: {cls}, memtrace against valgrind")
        for cls in ("possible", "reachable"):
            (mb, mn), (tb, tn) = mine[cls], theirs.get(cls, (0, 0))
            check(abs(mb - tb) <= max(16, tb // 50) and abs(mn - tn) <= max(8, tn // 50),
                  f"{name}: {cls}: memtrace {mine[cls]}, valgrind {theirs.get(cls)}")
        shutil.rmtree(d)
    shutil.rmtree(work)


def case_leaks_libc_one_time():
    """What libc keeps for the process's life on the program's behalf is
    not a leak, also where no scan could tell (sampled mode, the scan off,
    an older snapshot): Debian's tar keeps getpwuid's and getgrgid's
    buffers (nss/getXXbyYY.c) and bindtextdomain's and textdomain's
    bindings; the built-in suppressions name them."""
    work = tempfile.mkdtemp(prefix="mt-test-")
    try:
        with open(os.path.join(work, "f"), "w") as f:
            f.write("x\n")
        r = run(["tar", "cf", os.path.join(work, "f.tar"), "-C", work, "f"],
                env={"MEMTRACE_LEAK_SCAN": "0"}, dump_dir=work)
        eq(r.returncode, 0, r.stderr)
        out = tool("leaks", "-n", "0", only_snapshot(work)).stdout
        for what in ("getXXbyYY", "textdomain", "bindtextdomain", "set_binding_values"):
            check(f" in {what}" not in out and f"{what}.c" not in out.split("Suppressed")[0],
                  f"{what} reported as a leak:\n{out[:1500]}")
        for pat in ("getXXbyYY.c", "set_binding_values", "textdomain"):
            check(f"with built-in leak:{pat}" in out, f"the suppression of {pat} said:\n{out[-800:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@case(suite="cli", victims=("leak", "reach"))
def case_check():
    """memtrace check: budgets on growth and on leaks, with exact figures."""
    d, files, err = leak_series()
    a, c = show_json(files[0]), show_json(files[2])
    grew = sum(s["size"] for s in c["stats"]) - sum(s["size"] for s in a["stats"])
    check(grew >= 100000, f"the leak grew {grew} B between the first and third snapshot")
    path, line = line_of("leak.c", "leak")
    r = tool("check", "--max-growth", str(grew), files[0], files[2])
    check(f"changed by {_format_size(grew, True)} (+{grew} bytes) from {files[0]} to {files[2]}, "
          f"within the budget of {_format_size(grew, False)}" in r.stdout, r.stdout)
    r = tool("check", "--max-growth", str(grew - 1), files[0], files[2], check_rc=3)
    eq(r.stdout, "", "nothing on stdout over budget")
    lines = r.stderr.splitlines()
    eq(len(lines), 1, f"one line: {r.stderr!r}")
    check(f"over the budget of {_format_size(grew - 1, False)}; most from {path}:{line} (+"
          in lines[0], lines[0])
    tool("check", "--max-growth", "1.5M", files[0], files[2])
    # filters: without the leak's file, what is left did not grow by 1 KiB
    tool("check", "--max-growth", "1K", "--exclude", "*leak.c", files[0], files[2])
    # leaks: what is live at exit after suppressions, as memtrace leaks says
    leaked = json.loads(tool("leaks", "--json", files[-1]).stdout)["leaked_bytes"]
    r = tool("check", "--max-leak", f"{leaked}B", files[-1])
    check(f"({leaked} bytes) in " in r.stdout and "definitely or indirectly lost at exit" in r.stdout,
          r.stdout)
    held = json.loads(tool("leaks", "--json", "--show", "all", files[-1]).stdout)["leaked_bytes"]
    check(held >= leaked, f"what is live ({held}) holds what is lost ({leaked})")
    r = tool("check", "--max-leak", f"{held - 1}B", "--count", "all", files[-1], check_rc=3)
    check(f"({held} bytes) in " in r.stderr and "lost or still reachable at exit" in r.stderr,
          r.stderr)
    r = tool("check", "--max-leak", str(leaked - 1), files[-1], check_rc=3)
    jpath, jline = line_of("leak.c", "jump")
    check(f"most from {jpath}:{jline} (512 KiB)" in r.stderr, r.stderr)
    sup = os.path.join(d, "supp.txt")
    with open(sup, "w") as f:
        f.write("leak:leak.c\n")
    tool("check", "--max-leak", "0", "--suppressions", sup, files[-1])
    # misuse: exit 2 for a snapshot that is not at exit, 1 for bad usage
    # a run's processes share one budget: the command and its children
    d2 = tempfile.mkdtemp(prefix="mt-test-")
    r = run(["bash", "-c", f"{victim('reach')}; {victim('reach')}"], dump_dir=d2)
    eq(r.returncode, 0, r.stderr)
    every = snaps(d2)
    lost = [json.loads(tool("leaks", "--json", f).stdout)["leaked_bytes"] for f in every]
    check(len(every) >= 2 and sorted(lost)[-2:] == [5309, 5309], f"two reach processes: {lost}")
    r = tool("check", "--max-leak", str(sum(lost)), *every)
    check(f"({sum(lost)} bytes) in " in r.stdout and f"{len(every)} snapshots" in r.stdout, r.stdout)
    r = tool("check", "--max-leak", str(sum(lost) - 1), *every, check_rc=3)
    rpath, rline = line_of("reach.c", "direct")
    check(f"most from {rpath}:{rline} (4400 B)" in r.stderr, r.stderr)
    r = tool("check", "--max-leak", "0", every[0], every[0], check_rc=2)
    check("are the same snapshot" in r.stderr, r.stderr)
    shutil.rmtree(d2)
    r = tool("check", "--max-leak", "0", files[0], check_rc=2)
    check("is not an at-exit snapshot (taken on signal)" in r.stderr, r.stderr)
    for args in (["--max-leak", "1.5Q", files[-1]], ["--max-leak", "-1", files[-1]],
                 ["--max-growth", "1M", files[0]], [files[0], files[1]],
                 ["--max-growth", "1M", "--max-leak", "0", files[0]],
                 ["--max-growth", "1M", "--suppressions", sup, files[0], files[1]],
                 ["--max-leak", "1K", "--bogus", files[-1]], ["--max-leak"], ["-Z", files[-1]]):
        r = tool("check", *args, check_rc=1)
        eq(len(r.stderr.splitlines()), 1, f"one line for {args}: {r.stderr!r}")
    for args, want in ((["--bogus"], "unknown option '--bogus'"), (["--max-leak"], "--max-leak needs a value"),
                       (["-Z"], "unknown option '-Z'")):
        r = tool("check", *args, check_rc=1)
        check(r.stderr.startswith(f"memtrace check: {want} (see"), f"{args}: {r.stderr!r}")
    bad = os.path.join(d, "bad.snap")
    with open(files[0], "rb") as f, open(bad, "wb") as g:
        g.write(f.read()[:100])
    r = tool("check", "--max-growth", "1M", bad, files[1], check_rc=2)
    check(r.stderr.startswith(f"memtrace: {bad}: offset "), r.stderr)


def man_text():
    with open(os.path.join(SRC, "tools", "man", "memtrace.1")) as f:
        return f.read()


@case(victims=("basic",))
def case_install():
    """meson install: library, CLI, header, pkg-config file and man pages;
    the installed memtrace run finds the installed library; a program built
    with pkg-config's flags takes snapshots through the API."""
    build = os.path.dirname(os.path.dirname(LIB))
    dest = tempfile.mkdtemp(prefix="mt-install-")
    r = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet", "--destdir",
                        dest], capture_output=True, text=True, timeout=TIMEOUT)
    eq(r.returncode, 0, f"meson install: {r.stdout}{r.stderr}")
    intro = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", build],
                                      capture_output=True, text=True).stdout)
    opt = {o["name"]: o["value"] for o in intro}
    prefix = dest + opt["prefix"]
    libdir = os.path.join(prefix, opt["libdir"])
    want = [os.path.join(prefix, opt["bindir"], "memtrace"), os.path.join(libdir, "libmemtrace.so"),
            os.path.join(prefix, opt["includedir"], "memtrace.h"),
            os.path.join(libdir, "pkgconfig", "memtrace.pc"),
            os.path.join(prefix, opt["mandir"], "man1", "memtrace.1"),
            os.path.join(prefix, opt["mandir"], "man3", "libmemtrace.3")]
    for w in want:
        check(os.path.isfile(w), f"{w} installed")
    exe, lib = want[0], want[1]
    # the installed memtrace, run from elsewhere, preloads the installed library
    d = tempfile.mkdtemp(prefix="mt-test-")
    e = dict(os.environ)
    e.pop("MEMTRACE_LIB", None)
    r = subprocess.run([exe, "run", "-v", "-o", d, "--", victim("basic")], capture_output=True,
                       text=True, env=e, cwd=d, timeout=TIMEOUT)
    eq(r.returncode, 0, f"installed memtrace run: {r.stderr}")
    check(f"memtrace: preloading {os.path.realpath(lib)}\n" in r.stderr, r.stderr)
    expect_site(show_json(only_snapshot(d)), "basic.c", "keep100", 100000, 1000)
    # pkg-config: build the API victim against the installed header and library
    pc = subprocess.run(["pkg-config", f"--define-variable=prefix={prefix}", "--cflags", "--libs",
                         "memtrace"], capture_output=True, text=True,
                        env=dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig")))
    eq(pc.returncode, 0, f"pkg-config: {pc.stderr}")
    check(f"-I{prefix}/" in pc.stdout and "-lmemtrace" in pc.stdout, pc.stdout)
    prog = os.path.join(d, "api")
    src = os.path.join(SRC, "tests", "victims", "api.c")
    r = subprocess.run(["cc", "-O0", "-g", "-o", prog, src, *pc.stdout.split()],
                       capture_output=True, text=True)
    eq(r.returncode, 0, f"cc with pkg-config flags: {r.stderr}")
    r = run([prog], preload=False, env={"LD_LIBRARY_PATH": libdir, "MEMTRACE_DIR": d,
                                        "MEMTRACE_AT_EXIT": "0"})
    m = re.match(rb"snapshot 0 (\S+)\n$", r.stdout)
    check(m, f"linked program's mt_snapshot: {r.stdout!r} {r.stderr!r}")
    js = show_json(m.group(1).decode())
    path, line = line_of("api.c", "api")
    eq((stats_by_line(js)[(path, line)]["size"], stats_by_line(js)[(path, line)]["count"]),
       (16000, 4), "the API victim's blocks, built with pkg-config")
    # the man pages render without a warning
    for page in want[4:]:
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                           text=True)
        eq((r.returncode, r.stderr), (0, ""), f"groff on {page}")
    shutil.rmtree(dest)


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


@case(victims=("basic",))
def case_run_options():
    """memtrace run and memtrace attach offer the library's options as
    flags, from the one table (src/options.h), and check each value with
    the library's own parser before anything starts: a bad value is one line
    naming the flag and what it must be, exit 1, no command run; good ones
    reach COMMAND."""
    with open(os.path.join(SRC, "src", "options.h")) as f:
        rows = re.findall(r'X\("(MEMTRACE_[A-Z_]+)", MT_OPT_([A-Z]+),[^"]*?"([a-z-]+)"', f.read())
    flags = {flag: (var, kind) for var, kind, flag in rows}
    check({"depth", "sample", "sample-seed", "leak-scan", "python", "interval"} <= set(flags),
          f"flags from options.h: {sorted(flags)}")
    usage = tool("run", "--help").stdout
    d = tempfile.mkdtemp(prefix="mt-test-")
    marker = os.path.join(d, "ran")
    for flag, (var, kind) in flags.items():
        check(f"--{flag} " in usage, f"run --help shows --{flag}")
        if kind == "DIR":
            continue
        r = subprocess.run([TOOL, "run", f"--{flag}", "zzz", "--", "touch", marker],
                           capture_output=True, text=True, timeout=TIMEOUT)
        eq(r.returncode, 1, f"--{flag} zzz refused: {r.stderr}")
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr!r}")
        check(r.stderr.startswith(f"memtrace run: --{flag} zzz: not "), r.stderr)
        check(not os.path.exists(marker), f"--{flag} zzz: the command did not run")
    r = subprocess.run([TOOL, "run", "--depth", "500", "true"], capture_output=True, text=True)
    eq((r.returncode, r.stderr), (1, "memtrace run: --depth 500: not a whole number in 1..128\n"),
       "a depth past the library's bound")
    # memtrace attach takes the same flags, checked the same way, before gdb
    attach_usage = tool("attach", "--help").stdout
    check(all(f"--{flag} " in attach_usage for flag in flags), f"attach --help: {attach_usage}")
    r = subprocess.run([TOOL, "attach", "--sample", "0", str(os.getpid())], capture_output=True,
                       text=True)
    eq((r.returncode, r.stderr),
       (1, "memtrace attach: --sample 0: not a size (K, M, G allowed) in 1..1073741824\n"),
       "attach refuses a bad value first")
    out = os.path.join(d, "snaps")
    r = subprocess.run([TOOL, "run", "-o", out, "--sample", "64K", "--sample-seed", "7",
                        "--leak-scan", "0", "--depth", "3", "--", victim("basic")],
                       capture_output=True, text=True, timeout=TIMEOUT)
    eq((r.returncode, r.stdout), (0, "basic ok\n"), r.stderr)
    js = show_json(only_snapshot(out), "--group-by", "traceback")
    eq((js["sampled"], js["sample_bytes"]), (True, 65536), "--sample reached the library")
    check(all(len(s["traceback"]) <= 3 for s in js["stats"]), "--depth 3 reached the library")
    leaks = json.loads(tool("leaks", "--json", only_snapshot(out)).stdout)
    check(leaks["scan"]["status"] != "done", f"--leak-scan 0 reached the library: {leaks['scan']}")
    shutil.rmtree(d, ignore_errors=True)


@case(suite="cli")
def case_man_in_sync():
    """memtrace(1) documents every command, every long option of each
    command's --help and every MEMTRACE_* variable of the options table."""
    man = man_text()
    with open(os.path.join(SRC, "src", "options.h")) as f:
        names = re.findall(r'^\s*X\("(MEMTRACE_[A-Z_]+)"', f.read(), re.M)
    check(len(names) >= 10, f"options table parsed: {names}")
    for n in names:
        check(f"\n.B {n}\n" in man, f"{n} is described in memtrace.1")
    with open(os.path.join(SRC, "tools", "memtrace", "main.c")) as f:
        commands = re.findall(r'^\s*\{"([a-z]+)", mt_cmd_', f.read(), re.M)
    check(len(commands) >= 6, f"command table parsed: {commands}")
    for c in commands:
        check(f'.SS "memtrace {c} ' in man, f"memtrace {c} has a section in memtrace.1")
        usage = tool(c, "--help").stdout
        for o in sorted(set(re.findall(r"--([a-z][a-z-]+)", usage)) - {"help"}):
            check("\\-\\-" + o.replace("-", "\\-") in man,
                  f"memtrace {c} --{o} is in memtrace.1")


@case(suite="cli", victims=("basic", "leak"))
def case_views_text_details():
    """show --sort allocs prints the allocations the order is by, and growth
    -g traceback prints every frame of a suspect, as show does."""
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path, line = line_of("basic.c", "freed64")
    out = tool("show", "--sort", "allocs", "-n", "0", snap).stdout
    check(re.search(rf"^{re.escape(path)}:{line}: size=0 B, count=0, allocs=500 \(31.2 KiB in total\)$",
                    out, re.M), f"show --sort allocs: {out}")
    d, files, err = leak_series()
    running = files[:4]
    out = tool("growth", "-g", "traceback", "-n", "1", *running).stdout
    js = json.loads(tool("show", "--json", "-g", "traceback", "-n", "0", running[-1]).stdout)
    path, line = line_of("leak.c", "leak")
    tb = next(s["traceback"] for s in js["stats"] if s["file"] == path and s["line"] == line)
    body = out.split("Leak suspects", 1)[1].splitlines()[2:2 + len(tb)]
    eq([l.strip() for l in body], tb, f"growth -g traceback's frames: {out}")


@case(suite="cli", victims=("basic",))
def case_progress():
    """Symbolizing a large snapshot shows progress on a terminal, erased at
    the end; nothing when stderr is not a terminal or the work is quick."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([MANYSITES, "100000", "1"], dump_dir=d, env={"MEMTRACE_AT_EXIT": "0"})
    eq(r.returncode, 0, f"manysites: {r.stderr!r}")
    big = snaps(d)[0]
    small_dir, _ = run_victim("basic")
    small = only_snapshot(small_dir)

    def on_tty(cmd, env):
        e = dict(os.environ, **env)
        e.pop("LD_PRELOAD", None)
        r = subprocess.run(["script", "-qfec", " ".join(cmd) + " >/dev/null", "/dev/null"],
                           capture_output=True, env=e, timeout=TIMEOUT)
        eq(r.returncode, 0, f"{cmd} under script: {r.stderr!r}")
        return r.stdout.decode()

    name = os.path.basename(big)
    out = on_tty([TOOL, "show", "-g", "traceback", big], {"MEMTRACE_PROGRESS": "auto"})
    check(re.search(r"\rmemtrace: symbolizing " + re.escape(name) +
                    r": \d+% \(\d+ of 100\d\d\d callsites\)\x1b\[K", out), repr(out[:300]))
    check(out.endswith("\r\x1b[K"), f"the progress line is erased at the end: {out[-40:]!r}")
    eq(on_tty([TOOL, "show", small], {}), "", "a quick command shows no progress")
    eq(on_tty([TOOL, "show", "-g", "traceback", big], {"MEMTRACE_PROGRESS": "never"}), "",
       "MEMTRACE_PROGRESS=never")
    r = subprocess.run([TOOL, "show", "-g", "traceback", big], capture_output=True, text=True,
                       timeout=TIMEOUT)
    eq(r.stderr, "", "no progress when stderr is not a terminal")
    r = subprocess.run([TOOL, "show", small], capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, MEMTRACE_PROGRESS="always"))
    sname = os.path.basename(small)
    n = show_json(small)["totals"]["sites"]
    eq(r.stderr.splitlines(), [f"memtrace: symbolizing {sname}: 0% (0 of {n} callsites)",
                               f"memtrace: symbolizing {sname}: 100% ({n} of {n} callsites)"],
       "MEMTRACE_PROGRESS=always, one line per update off a terminal")
    r = subprocess.run([TOOL, "show", small], capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, MEMTRACE_PROGRESS="loud"))
    eq(r.stderr, "memtrace: warning: MEMTRACE_PROGRESS is auto, never or always, not 'loud'; "
       "using auto\n", "a bad MEMTRACE_PROGRESS")


@case(victims=("basic",))
def case_run():
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = tool("run", "-o", d, "--", victim("basic"))
    eq(r.stdout, "basic ok\n", "the command's output")
    files = snaps(d)
    eq(len(files), 1, "one snapshot")
    eq(r.stderr, f"memtrace: snapshot {files[0]}: pid {show_json(files[0])['pid']} (the command), "
       f"{victim('basic')}, at exit\n", "the snapshot is listed, with its process")
    expect_site(show_json(files[0]), "basic.c", "keep100", 100000, 1000)
    # --no-children: the command only; a forked child and an exec'd one run
    # untracked (the fork victim's children would each write a snapshot)
    for cmd in ([victim("fork")], ["bash", "-c", f"{victim('basic')} >/dev/null; exec {victim('basic')}"]):
        for follow in (True, False):
            dn = tempfile.mkdtemp(prefix="mt-test-")
            r = tool("run", "-o", dn, *([] if follow else ["--no-children"]), "--", *cmd)
            pids = {show_json(f)["pid"] for f in snaps(dn)}
            if follow:
                check(len(pids) >= 2, f"{cmd}: children write snapshots: {pids}")
            else:
                eq(len(pids), 1, f"{cmd} --no-children: only the command's: {r.stderr}")
                check("(the command)" in r.stderr and "child of" not in r.stderr, r.stderr)
            shutil.rmtree(dn)
    r = tool("run", "-o", d, "--", "sh", "-c", "exit 7", check_rc=7)
    r = tool("run", "-o", d, "--", "no-such-command-here", check_rc=127)
    check("command not found" in r.stderr, r.stderr)
    # a static binary: a warning, and the program runs
    static = os.path.join(d, "static-true")
    src = os.path.join(d, "t.c")
    with open(src, "w") as f:
        f.write("int main(void) { return 3; }\n")
    if subprocess.run(["cc", "-static", "-o", static, src]).returncode == 0:
        r = tool("run", "-o", d, "--", static, check_rc=3)
        check("statically linked" in r.stderr, r.stderr)
    # a setuid binary to another user: a warning, the program runs, nothing
    # written; setuid to the caller itself (root's own): profiled, no warning
    suid = os.path.join(d, "suid-basic")
    shutil.copy(victim("basic"), suid)
    os.chmod(d, 0o755)
    os.chown(suid, 65534, 65534)  # nobody
    os.chmod(suid, 0o4755)
    d3 = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(d3, 0o1777)
    r = tool("run", "-o", d3, "--", suid)
    check("setuid" in r.stderr and r.stdout == "basic ok\n", r.stderr)
    eq(snaps(d3), [], "nothing written under AT_SECURE")
    if os.getuid() == 0:
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        r = tool("run", "-o", d3, "--", suid)
        check("setuid" not in r.stderr and r.stdout == "basic ok\n", r.stderr)
        eq(len(snaps(d3)), 1, "root's own setuid binary is profiled")
    # -o creates the directory; each snapshot is named with its process, the
    # children's apart; a run lists only what its own processes wrote
    new = os.path.join(tempfile.mkdtemp(prefix="mt-test-"), "a", "b")
    r = tool("run", "-o", new, "--", "sh", "-c", f"{victim('basic')}; exit 0")
    files = snaps(new)
    eq(len(files), 2, "the shell's and its child's")
    by_exe = {show_json(f)["exe"]: show_json(f) for f in files}
    top, kid = by_exe["/usr/bin/dash"], by_exe[victim("basic")]
    lines = r.stderr.splitlines()
    eq(lines, [f"memtrace: snapshot {new}/memtrace.{top['pid']}.1.snap: pid {top['pid']} "
               "(the command), /usr/bin/dash, at _exit",
               f"memtrace: snapshot {new}/memtrace.{kid['pid']}.1.snap: pid {kid['pid']}, child of "
               f"{top['pid']}, {victim('basic')}, at exit",
               f"memtrace: 1 of these from the command's children; its own: "
               f"{new}/memtrace.{top['pid']}.*.snap"], "the listing")
    r = tool("run", "-o", new, "--", "sh", "-c", "exit 0")
    eq(len(r.stderr.splitlines()), 1, f"only this run's snapshot: {r.stderr}")
    check(r.stderr.startswith(f"memtrace: snapshot {new}/") and "(the command)" in r.stderr,
          r.stderr)
    # signals sent to memtrace reach the command; memtrace dies the same way
    p = subprocess.Popen([TOOL, "run", "-o", d, "--", "sleep", "30"], stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    eq(p.returncode, -signal.SIGTERM, "memtrace run ends as its command did")
    # SIGUSR1 to memtrace run becomes a snapshot of the command
    d2 = tempfile.mkdtemp(prefix="mt-test-")
    p = subprocess.Popen([TOOL, "run", "-o", d2, "--", victim("leak"), "1.0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.4)
    p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=30)
    eq(p.returncode, 0, "leak under run")
    eq([show_json(f)["reason"] for f in snaps(d2)], ["on signal", "at exit"], "forwarded USR1")


# ---- allocator control -------------------------------------------------

def alloc_of(snap):
    js = show_json(snap)
    check("allocator" in js, f"{snap} has the allocator's figures")
    return js["allocator"]


def case_arena_cap():
    res = {}
    for label, env in (("default", {}), ("capped", {"MEMTRACE_ARENA_MAX": "2"})):
        d = tempfile.mkdtemp(prefix="mt-test-")
        r = run([ARENAS, "24", "20"], env=env, dump_dir=d)
        eq((r.returncode, r.stderr), (0, b""), f"{label} run")
        res[label] = alloc_of(snaps(d)[0])
    dflt, cap = res["default"], res["capped"]
    check(dflt["arenas"] > 4, f"24 threads get several glibc arenas: {dflt['arenas']}")
    eq((cap["arenas"], cap["arena_max"]), (2, 2), "MEMTRACE_ARENA_MAX=2 caps glibc at 2 arenas")
    eq(dflt["arena_max"], 0, "no cap by default")
    # each arena beyond the main one reserves a 64 MiB heap
    check(dflt["anon_64m"] >= dflt["arenas"] - 1 and cap["anon_64m"] <= 1,
          f"64 MiB heaps: {dflt['anon_64m']} vs {cap['anon_64m']}")
    saved = dflt["vms"] - cap["vms"]
    want = (dflt["arenas"] - cap["arenas"]) * (64 << 20)
    check(0.8 * want <= saved <= 1.2 * want + (64 << 20),
          f"VMS lower by about the arenas' reservations: {saved >> 20} MiB for {want >> 20} MiB")
    text = tool("show", snaps(d)[0]).stdout
    check(re.search(r"^Memory: live heap .* allocator glibc holds .* in 2 arenas \(capped at 2\); "
                    r"RSS .*, VMS ", text, re.M), text)
    check(re.search(r"^Overhead: .* held beyond the live heap", text, re.M), text)


@case(victims=("switch",))
def case_jemalloc_switch():
    d, r = run_victim("switch", env=JEMALLOC)
    eq((r.returncode, r.stdout, r.stderr), (0, b"switch ok done\n", b""), "switch victim")
    js = show_json(only_snapshot(d))
    eq(js["allocator"]["name"], "jemalloc", "allocator")
    expect_absent(js, "switch.c", "new")
    expect_absent(js, "switch.c", "moved")
    # without static TLS room: one warning, the system allocator, the program runs
    d, r = run_victim("switch", env={"MEMTRACE_ALLOCATOR": "jemalloc"})
    eq((r.returncode, r.stdout), (0, b"switch ok done\n"), "jemalloc not loadable")
    eq(len(r.stderr.splitlines()), 1, r.stderr)
    check(b"memtrace run --allocator jemalloc" in r.stderr, r.stderr)
    eq(show_json(only_snapshot(d))["allocator"]["name"], "glibc", "fell back to glibc")


@case(victims=("cxx",))
def case_jemalloc_real_programs():
    d, _ = same_as_without([python3(), "-c", PY], env=dict(JEMALLOC, PYTHONMALLOC="malloc"))
    eq(alloc_of(snaps(d)[-1])["name"], "jemalloc", "python3 ran on jemalloc")
    d, bare = same_as_without(["sqlite3", ":memory:"], input=SQL.encode(), env=JEMALLOC)
    check(bare.stdout.endswith(b"ok\n"), bare.stdout)
    eq(alloc_of(snaps(d)[-1])["name"], "jemalloc", "sqlite3 ran on jemalloc")
    d, _ = same_as_without([victim("cxx")], env=JEMALLOC)
    js = show_json(snaps(d)[-1])
    eq(js["allocator"]["name"], "jemalloc", "C++ ran on jemalloc")
    expect_site(js, "cxx.cpp", "arr", 4000, 40)
    # memtrace run sets it all up
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = tool("run", "-o", d, "--allocator", "jemalloc", "--arena-max", "2", "--", ARENAS, "8", "5")
    a = alloc_of(snaps(d)[0])
    eq((a["name"], a["arena_max"]), ("jemalloc", 2), "memtrace run --allocator jemalloc")


# the allocators a preload can put behind memtrace (MT_ALLOCATORS), with
# the library that brings each
ALLOC_LIBS = {"jemalloc": "libjemalloc.so.2", "tcmalloc": "libtcmalloc_minimal.so.4",
              "mimalloc": "libmimalloc.so.2"}


def behind(lib, d, **extra):
    """The environment that runs a program under memtrace with lib after it."""
    return dict(extra, LD_PRELOAD=f"{LIB} {lib}", MEMTRACE_DIR=d)


# ---- memtrace attach: a process that is already running ------------------

def start_bare(cmd):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    p = subprocess.Popen(cmd, env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", f"{cmd} started")
    return p


def wait_snapshots(d, pid, n):
    for _ in range(200):
        if len(snaps(d, pid)) >= n:
            return snaps(d, pid)
        time.sleep(0.05)
    raise Fail(f"{n} snapshots of {pid} in {d}: {snaps(d, pid)}")


@case(victims=("slowleak",))
def case_attach_growth():
    """A victim leaking 1000 B every 10 ms at a known line, started bare:
    attach, three snapshots, growth ranks the line first at its rate;
    detach; the victim runs on and prints what an unattached run prints."""
    unattached = start_bare([victim("slowleak")])
    time.sleep(0.5)
    want_out, want_err = unattached.communicate(input=b"", timeout=30)
    p = start_bare([victim("slowleak")])
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        r = tool("attach", "-o", d, str(p.pid))
        check(re.fullmatch(rf"memtrace: attached to {p.pid} \(stopped [0-9.]+ s for gdb's "
                           rf"injection\); snapshots in {re.escape(d)}: kill -USR1 {p.pid}, and "
                           rf"at exit; memtrace detach {p.pid} ends it\n", r.stderr), r.stderr)
        for i in range(1, 4):
            time.sleep(1)
            p.send_signal(signal.SIGUSR1)
            files = wait_snapshots(d, p.pid, i)
        js = show_json(files[-1])
        check(js["attach_wall_ns"] > 0, "the snapshot says memtrace was attached")
        text = tool("show", files[-1]).stdout
        check(re.search(r"^Tracking since memtrace attached at .*: blocks allocated before are "
                        r"not counted", text, re.M), text)
        out = tool("growth", *files).stdout
        path, line = line_of("slowleak.c", "leak")
        m = re.search(r"^#1 (\S+): size=.*, \+([0-9.]+) KiB/s, grew in 2 of 2 intervals: steady$",
                      out, re.M)
        check(m, out)
        eq(m.group(1), f"{path}:{line}", "the leaking line first")
        rate = float(m.group(2)) * 1024
        check(abs(rate - 100000) <= 10000, f"rate {rate:.0f} B/s, 1000 B per 10 ms")
        r = tool("detach", str(p.pid))
        check(re.fullmatch(rf"memtrace: detached from {p.pid} in [0-9.]+ s: \d+ entries put "
                           r"back; memtrace stays loaded, inert\n", r.stderr), r.stderr)
        time.sleep(0.5)
        check(p.poll() is None, "the victim runs on after the detach")
        r = tool("attach", str(p.pid), check_rc=1)
        check("has memtrace loaded already" in r.stderr, r.stderr)
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, want_out, want_err), "output as without memtrace")
    eq(len(snaps(d, p.pid)), 3, "no snapshot after the detach, not even at exit")


@case(victims=("dlplug",))
def case_attach_dlopen():
    """A library the program dlopens after the attach, by a bare name its
    RUNPATH ($ORIGIN) finds: every block it allocates is seen (its entries
    are patched as its dlopen returns), and dlopen still finds it through
    the program's own search path."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start_bare([victim("dlplug")])
    try:
        tool("attach", "-o", d, str(p.pid))
        p.stdin.write(b"load\n")
        p.stdin.flush()
        eq(p.stdout.readline(), b"loaded\n", "the plugin loaded through its RUNPATH")
        p.send_signal(signal.SIGUSR1)
        files = wait_snapshots(d, p.pid, 1)
        js = show_json(files[-1])
        expect_site(js, "plugin.c", "plugin", 200 * 1000, 200)
        tool("detach", str(p.pid))
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, b"done\n", b""), "dlplug's output")


def case_attach_python():
    """Debian's python3 (non-PIE: the executable's PLT entries are the
    functions' addresses, so memtrace must look past them for the real ones)
    attached to while it keeps a bytearray(1000) every 10 ms: its Python line
    grows at that rate, the output is unchanged."""
    script = ("import sys, select\nkeep = []\nprint('ready', flush=True)\n"
              "while not select.select([sys.stdin], [], [], 0.01)[0]:\n"
              "    keep.append(bytearray(1000))\nprint('done', len(keep) > 0)\n")
    p = subprocess.Popen([python3(), "-c", script], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    check(p.stdout.readline() == b"ready\n", "python3 started")
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        # --for: attached for 3.5 s, snapshots every second, then detached
        r = tool("attach", "-o", d, "-i", "1", "--for", "3.5", str(p.pid))
        check(f"memtrace: detached from {p.pid}" in r.stderr, r.stderr)
        files = wait_snapshots(d, p.pid, 3)[:3]
        n = len(snaps(d, p.pid))
        time.sleep(1.5)
        eq(len(snaps(d, p.pid)), n, "no snapshot once --for ended")
        js = show_json(files[-1])
        eq(js["allocator"]["name"], "glibc", "python3's malloc is glibc's, found past its PLT")
        out = tool("growth", *files).stdout
        # the Python line, as under a preload: the domains wrapped by a
        # pending call the interpreter runs with the GIL
        m = re.search(r"^#1 <string>:5: .*, \+([0-9.]+) KiB/s, grew in 2 of 2 intervals: "
                      r"steady$", out, re.M)
        check(m, out)
        rate = float(m.group(1)) * 1024
        check(abs(rate - 100000) <= 15000, f"rate {rate:.0f} B/s, 1000 B per 10 ms")
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, b"done True\n", b""), "python3's output")


@case(victims=("slowleak",))
def case_top():
    """memtrace top on a victim leaking at a known line: without a terminal,
    one table per refresh, the line first and steady; in tmux, the line
    rises to the top within a few refreshes, s orders by growth, p keeps a
    snapshot, q quits; nothing else is left behind. On an attached process
    too; refused on one memtrace is not in."""
    path, line = line_of("slowleak.c", "leak")
    d = tempfile.mkdtemp(prefix="mt-test-")
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    p = subprocess.Popen([victim("slowleak")], env=e, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", "victim")
    try:
        r = tool("top", "--count", "3", "-i", "0.5", str(p.pid))
        tables = r.stdout.split("memtrace top: pid ")[1:]
        eq(len(tables), 3, r.stdout)
        last = tables[-1].splitlines()
        at = last.index("Top lines by live size:")
        check(re.fullmatch(rf"\s*\S+ KiB\s+\d+\s+\+\S+ KiB\s+\+\S+ KiB\s+steady\s+"
                           rf"{re.escape(path)}:{line}", last[at + 2]), tables[-1])
        eq(snaps(d), [], "the view's snapshots are removed")
        if not shutil.which("tmux"):
            raise Fail("tmux is needed for the live view's test (Debian package tmux)")
        sock = os.path.join(d, "tmux.sock")
        tm = ["tmux", "-S", sock]
        subprocess.run(tm + ["new-session", "-d", "-x", "160", "-y", "40",
                             f"{TOOL} top -i 0.5 {p.pid}"], check=True, timeout=30)
        screen = ""
        for _ in range(40):  # a few refreshes
            time.sleep(0.25)
            screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True,
                                    text=True, timeout=30).stdout
            rows = screen.splitlines()
            if "Top lines by live size:" in rows and rows[rows.index(
                    "Top lines by live size:") + 2].endswith(f"steady  {path}:{line}"):
                break
        else:
            raise Fail(f"the leaking line at the top, steady: {screen}")
        subprocess.run(tm + ["send-keys", "s"], check=True, timeout=30)
        time.sleep(0.5)
        screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True, text=True,
                                timeout=30).stdout
        check("Top lines by growth since the view began:" in screen, screen)
        subprocess.run(tm + ["send-keys", "p"], check=True, timeout=30)
        kept = None
        for _ in range(40):
            time.sleep(0.25)
            screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True,
                                    text=True, timeout=30).stdout
            m = re.search(r"^kept: (\S+)$", screen, re.M)
            if m:
                kept = m.group(1)
                break
        check(kept and os.path.exists(kept), f"p keeps a snapshot: {screen}")
        subprocess.run(tm + ["send-keys", "q"], check=True, timeout=30)
        for _ in range(40):
            time.sleep(0.25)
            if subprocess.run(tm + ["has-session"], capture_output=True).returncode != 0:
                break
        else:
            raise Fail("q quits the view")
        eq(snaps(d), [kept], "only the kept snapshot is left")
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out), (0, b"done\n"), "the victim under the view")
    # on an attached process, and refused on a bare one
    q = start_bare([victim("slowleak")])
    try:
        r = tool("top", "--count", "1", str(q.pid), check_rc=1)
        eq(r.stderr, f"memtrace top: process {q.pid} has no memtrace: start it with memtrace "
           f"run, or memtrace attach {q.pid} first\n", "refused")
        d2 = tempfile.mkdtemp(prefix="mt-test-")
        tool("attach", "-o", d2, str(q.pid))
        r = tool("top", "--count", "2", "-o", d2, str(q.pid))
        check(f"{path}:{line}" in r.stdout.split("memtrace top: pid ")[-1], r.stdout)
        eq(snaps(d2), [], "the view's snapshots are removed")
    finally:
        q.communicate(input=b"", timeout=30)


@case(victims=("slowleak", "static"))
def case_attach_refusals():
    """Each refusal is one line, exit 1, and the process goes on untouched."""
    gone = subprocess.run(["true"])
    r = tool("attach", "999999999", check_rc=1)
    check("not a process id" in r.stderr or "no process" in r.stderr, r.stderr)
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = tool("attach", str(dead.pid), check_rc=1)
    eq(r.stderr, f"memtrace attach: no process {dead.pid}\n", "a pid that is gone")
    r = tool("attach", "abc", check_rc=1)
    check("'abc' is not a process id" in r.stderr, r.stderr)
    # preloaded already
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=tempfile.mkdtemp(prefix="mt-test-"))
    p = subprocess.Popen([victim("slowleak")], env=e, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", "preloaded victim")
    r = tool("attach", str(p.pid), check_rc=1)
    check(re.fullmatch(rf"memtrace attach: process {p.pid} has memtrace loaded already .*\n",
                       r.stderr), r.stderr)
    p.communicate(input=b"", timeout=30)
    eq(p.returncode, 0, "the preloaded victim")
    # static, setuid-like (ids changed), nothing to detach
    cases = (([victim("static")], "is statically linked: there is no loader"),
             ([python3(), "-c", "import os, sys; os.setresuid(0, 65534, 0); print('ready'); "
               "sys.stdout.flush(); sys.stdin.read()"], "runs setuid or setgid"))
    for cmd, want in cases:
        p = start_bare(cmd)
        r = tool("attach", str(p.pid), check_rc=1)
        eq(len(r.stderr.splitlines()), 1, r.stderr)
        check(want in r.stderr, r.stderr)
        out, _ = p.communicate(input=b"", timeout=30)
        eq(p.returncode, 0, f"{cmd[0]} untouched")
    p = start_bare([victim("slowleak")])
    r = tool("detach", str(p.pid), check_rc=1)
    eq(r.stderr, f"memtrace detach: process {p.pid} has no memtrace to detach\n", r.stderr)
    # another user's process, for a memtrace that is not root
    x = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(x, 0o755)
    shutil.copy(TOOL, os.path.join(x, "memtrace"))
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        os.path.join(x, "memtrace"), "attach", str(p.pid)], capture_output=True,
                       text=True, timeout=60)
    eq(r.returncode, 1, r.stderr)
    check(re.fullmatch(rf"memtrace attach: (cannot read /proc/{p.pid}/maps .*another user's|"
                       rf"process {p.pid} is uid 0's).*\n", r.stderr), r.stderr)
    out, _ = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out), (0, b"done\n"), "untouched by the refusals")


def case_attach_redis():
    """redis-server, started bare: attached while redis-benchmark runs, no
    request fails, snapshots while it serves, detached; it answers on."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    srv, port = start_redis(d, {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    try:
        bench = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n",
                                  "200000", "-c", "10", "-t", "set,get", "-d", "500", "-q"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.3)
        r = tool("attach", "-o", d, "-i", "0.5", str(srv.pid))
        check(f"attached to {srv.pid}" in r.stderr, r.stderr)
        files = wait_snapshots(d, srv.pid, 2)
        out, err = bench.communicate(timeout=300)
        eq(bench.returncode, 0, f"redis-benchmark: {err!r}")
        check(out.count(b"requests per second") == 2, f"both tests ran: {out!r}")
        js = show_json(files[-1])
        check(js["totals"]["heap_alloc_count"] > 1000, "redis's allocations since the attach")
        eq(js["allocator"]["name"], "jemalloc", "redis's own jemalloc")
        tool("detach", str(srv.pid))
        n = len(snaps(d, srv.pid))
        time.sleep(1.2)
        eq(len(snaps(d, srv.pid)), n, "no snapshot after the detach")
        r = subprocess.run(["redis-cli", "-p", str(port), "set", "k", "v"], capture_output=True,
                           timeout=10)
        eq(r.stdout, b"OK\n", "redis answers after the detach")
    finally:
        stop_redis(srv, port)
    eq(srv.returncode, 0, "redis-server exit status")


def case_snapshot_dir_other_user():
    """A process that drops to another user (as nginx's workers do) cannot
    write into a root-only directory: the warning says the one-line fix,
    and with it applied the snapshot is written."""
    check(os.geteuid() == 0, "this case changes user, so it needs root (as CI runs)")
    prog = ("import os; os.setgid(65534); os.setuid(65534); "
            "x = [bytes(100) for _ in range(1000)]; print('ok')")
    d = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(d, 0o755)
    r = run([python3(), "-c", prog], dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"ok\n"), r.stderr)
    check(re.search(rb"^memtrace\[\d+\]: cannot write a snapshot in .*: (refused|permission denied)"
                    rb".*; for uid 65534 too, make it writable by all and sticky, as /tmp is: "
                    rb"chmod 1777 " + re.escape(d.encode()) + rb"$", r.stderr, re.M), r.stderr)
    eq(snaps(d), [], "nothing written")
    os.chmod(d, 0o1777)
    r = run([python3(), "-c", prog], dump_dir=d)
    eq((r.returncode, r.stdout, r.stderr), (0, b"ok\n", b""), "sticky directory")
    files = snaps(d)
    eq(len(files), 1, "the snapshot of the process that changed user")
    eq(os.stat(files[0]).st_uid, 65534, "written as the new user")


@case(victims=("basic",))
def case_allocator_detected():
    """Whichever allocator serves malloc is the one the snapshot names and
    measures; a cap is claimed only where it took; an allocator memtrace
    does not know is named unknown, with no figure of glibc's."""
    for name, lib in ALLOC_LIBS.items():
        d = tempfile.mkdtemp(prefix="mt-test-")
        r = run([ARENAS, "8", "20"], env=behind(lib, d, MEMTRACE_ARENA_MAX="2"), preload=False)
        eq(r.returncode, 0, f"{name}: {r.stderr!r}")
        a = alloc_of(snaps(d)[-1])
        eq(a["name"], name, "the allocator behind the hooks")
        check(a["held"] > 1 << 20, f"{name} says what it holds: {a['held']}")
        if name != "mimalloc":  # a release mimalloc counts no allocated bytes
            check(a["in_use"] > 0, f"{name} says what is in use: {a['in_use']}")
        text = tool("show", snaps(d)[-1]).stdout
        check(re.search(rf"^Memory: .*; allocator {name} holds ", text, re.M), text)
        check("none measured" not in text and "64 MiB arena heap" not in text, text)
        if name == "jemalloc":  # narenas through malloc_conf, read by jemalloc at its start
            eq((a["arena_max"], a["arenas"], r.stderr), (2, 2, b""), "jemalloc capped at 2")
            check(" in 2 arenas (capped at 2);" in text, text)
        else:
            eq(a["arena_max"], 0, f"{name}: no cap claimed")
            check(b"has no arenas to cap" in r.stderr, r.stderr)
            check("capped" not in text and " arenas" not in text.split("Overhead")[0], text)
    # a program's own allocator, which memtrace does not know
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([victim("basic")], env=behind(os.environ["MT_OWNMALLOC"], d, MEMTRACE_ARENA_MAX="2"),
            preload=False)
    eq(r.returncode, 0, f"own allocator: {r.stderr!r}")
    check(b"not an allocator memtrace knows" in r.stderr, r.stderr)
    js = show_json(snaps(d)[-1])
    a = js["allocator"]
    eq((a["name"], a["held"], a["in_use"], a["arena_max"]), ("unknown", 0, 0, 0),
       "no figure claimed for an unknown allocator")
    check(js["totals"]["heap_alloc_count"] > 0, "its allocations were still seen")
    text = tool("show", snaps(d)[-1]).stdout
    check(re.search(r"^Memory: .*; allocator unknown \(no figures of its own\); RSS ", text, re.M),
          text)
    check(re.search(r"^Overhead: unknown \(the allocator says nothing\); ", text, re.M), text)
    # redis-server links jemalloc itself: the snapshot says so
    d = tempfile.mkdtemp(prefix="mt-test-")
    srv, port = start_redis(d, dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d))
    try:
        for i in range(200):
            subprocess.run(["redis-cli", "-p", str(port), "set", f"k{i}", "v" * 4000],
                           capture_output=True, timeout=5)
    finally:
        stop_redis(srv, port)
    a = alloc_of(snaps(d, srv.pid)[-1])
    eq(a["name"], "jemalloc", "redis-server's own jemalloc")
    check(a["held"] > 1 << 20 and a["in_use"] > 800 << 10,
          f"jemalloc's figures for redis: held {a['held']}, in use {a['in_use']}")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_redis(d, env):
    """redis-server on a free port of 127.0.0.1, its files in d, once it
    answers: (the process, its port)."""
    port = free_port()
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                            "", "--appendonly", "no", "--dir", d], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                          timeout=5).stdout == b"PONG\n":
            break
        time.sleep(0.05)
    return srv, port


def stop_redis(srv, port):
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True,
                   timeout=10)
    srv.wait(timeout=30)


def held_process(cmd, env):
    """Starts the arena demo holding its threads; returns (proc, pmap total
    in bytes, glibc 64 MiB heaps seen in pmap)."""
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    e.pop("MALLOC_ARENA_MAX", None)
    e.update(env, ARENAS_HOLD="1")
    p = subprocess.Popen(cmd, env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stdout.readline()
    check(line == b"holding\n", f"{cmd}: {line!r}")
    out = subprocess.run(["pmap", "-x", str(p.pid)], capture_output=True, text=True,
                         timeout=30).stdout
    maps = []
    total = None
    for l in out.splitlines():
        f = l.split()
        if len(f) >= 6 and re.fullmatch(r"[0-9a-f]{16}", f[0]):
            maps.append((int(f[0], 16), int(f[1]) * 1024, f[4], " ".join(f[5:])))
        elif l.startswith("total kB"):
            total = int(f[2]) * 1024
    heaps = 0
    for i, (lo, size, mode, name) in enumerate(maps):
        # glibc's heap: 64 MiB-aligned anonymous memory, rw then no access,
        # 64 MiB in all
        if lo % (64 << 20) or not mode.startswith("rw") or name != "[ anon ]":
            continue
        end, j = lo + size, i + 1
        while j < len(maps) and maps[j][0] == end and maps[j][2].startswith("---"):
            end += maps[j][1]
            j += 1
        heaps += end - lo == 64 << 20 and j > i + 1
    return p, total, heaps


def end_held(p):
    out, err = p.communicate(input=b"", timeout=60)
    eq(p.returncode, 0, f"arena demo: {err!r}")
    return out


def case_jemalloc_no_glibc_arena():
    """Under jemalloc, memtrace makes no glibc arena: the 64-thread demo's
    VMS is jemalloc's own within 10 %, and pmap shows no glibc heap."""
    # two rounds: every thread allocates (where memtrace once made each a
    # glibc arena), and the peak does not depend on how a profiler's
    # slowdown makes the threads' bursts overlap; jemalloc's own VMS still
    # moves from run to run: the most of three runs
    cmd = [ARENAS, "64", "2"]
    bare_total = 0
    for _ in range(3):
        p, total, bare_heaps = held_process(cmd, {"LD_PRELOAD": "libjemalloc.so.2"})
        end_held(p)
        eq(bare_heaps, 0, "jemalloc alone: no glibc heap")
        bare_total = max(bare_total, total)
    p, glibc_total, glibc_heaps = held_process(cmd, {})
    end_held(p)
    check(glibc_heaps >= 4, f"the oracle sees glibc's heaps when they are there: {glibc_heaps}")
    d = tempfile.mkdtemp(prefix="mt-test-")
    for label, env in (("preloaded after memtrace", behind("libjemalloc.so.2", d)),
                       ("MEMTRACE_ALLOCATOR=jemalloc", dict(JEMALLOC, LD_PRELOAD=LIB,
                                                            MEMTRACE_DIR=d))):
        p, total, heaps = held_process(cmd, env)
        end_held(p)
        eq(heaps, 0, f"{label}: glibc heaps in pmap")
        check(total <= 1.10 * bare_total,
              f"{label}: VMS {total >> 20} MiB, jemalloc alone {bare_total >> 20} MiB")
        eq(alloc_of(snaps(d)[-1])["name"], "jemalloc", label)


@case(victims=("cxx",))
def case_allocator_backends_real():
    """python3, sqlite3 and a C++ program on each allocator: the same output
    under memtrace as on the allocator alone, and the snapshot names it."""
    progs = (("python3", [python3(), "-c", PY], None, {"PYTHONMALLOC": "malloc"}),
             ("sqlite3", ["sqlite3", ":memory:"], SQL.encode(), {}),
             ("cxx", [victim("cxx")], None, {}))
    for name, lib in ALLOC_LIBS.items():
        for prog, cmd, stdin, extra in progs:
            d = tempfile.mkdtemp(prefix="mt-test-")
            bare = run(cmd, env=dict(extra, LD_PRELOAD=lib), preload=False, input=stdin)
            traced = run(cmd, env=behind(lib, d, **extra), preload=False, input=stdin)
            what = f"{prog} on {name}"
            eq((traced.returncode, traced.stdout, traced.stderr),
               (bare.returncode, bare.stdout, bare.stderr), what)
            eq(bare.returncode, 0, f"{what}: {bare.stderr!r}")
            js = show_json(snaps(d)[-1])
            eq(js["allocator"]["name"], name, what)
            if prog == "cxx":
                expect_site(js, "cxx.cpp", "arr", 4000, 40)
            sums_match_totals(snaps(d)[-1])


def case_allocators_command():
    """memtrace allocators on the 64-thread demo: every configuration runs,
    each on the allocator it names; the advice is a cure that lowers VMS,
    and the VMS figures are pmap's within 10 %."""
    held = ["env", "ARENAS_HOLD=1", ARENAS, "64", "100"]  # all threads alive at the end
    r = tool("allocators", "--json", "-n", "3", "--", *held)
    js = json.loads(r.stdout)
    rows = {c["key"]: c for c in js["configurations"]}
    eq(sorted(rows), sorted(["glibc", "arena1", "arena2", "jemalloc", "tcmalloc", "mimalloc"]),
       "configurations on a 2-core machine with all three allocators installed"
       if os.cpu_count() <= 2 else "configurations")
    for k, c in rows.items():
        eq((c["failed"], c["served_by"]), (False, c["allocator"]), k)
        check(c["vms_peak"] > 0 and c["rss_peak"] > 0 and c["cpu_s"] > 0, f"{k}: {c}")
    eq(rows["arena1"]["env"], "MALLOC_ARENA_MAX=1", "arena1's deploy line")
    eq(rows["jemalloc"]["env"], "LD_PRELOAD=libjemalloc.so.2", "jemalloc's deploy line")
    eq((rows["arena1"]["memtrace"]["arenas"], rows["arena2"]["memtrace"]["arenas"]), (1, 2),
       "the caps as memtrace counted the arenas")
    check(rows["glibc"]["memtrace"]["arenas"] > 4, f"{rows['glibc']['memtrace']}")
    adv = js["advice"]
    check(adv["key"] in ("arena1", "arena2", "jemalloc", "tcmalloc"), f"advice: {adv}")
    eq(adv["env"], rows[adv["key"]]["env"], "the advice deploys the configuration it names")
    check(rows[adv["key"]]["vms_peak"] < 0.6 * rows["glibc"]["vms_peak"], f"{adv}")
    check(adv["text"].endswith(f"deploy it without memtrace: {adv['env']} COMMAND"), adv["text"])
    # the VMS figures against the very runs: each holds its threads for 2 s
    # at the end, and pmap reads it then, and the kernel's own VmPeak. pmap
    # is a floor, not the peak: an arena's extra heaps, made while 32
    # threads' bursts shared it, are unmapped when their blocks are freed
    # (a run measured 642 MiB at the peak and 580 MiB held)
    cmd = [TOOL, "allocators", "--json", "-n", "1", "--bare", "--only", "arena2,jemalloc",
           "--", "env", "ARENAS_HOLD=2", ARENAS, "64", "100"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen, totals = set(), []
    while proc.poll() is None and len(totals) < 3:
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid in seen:
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")
                with open(f"/proc/{pid}/status") as f:
                    threads = int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))
            except (OSError, AttributeError):
                continue
            if exe == ARENAS and threads == 65:  # all 64 alive, holding
                time.sleep(0.3)
                out = subprocess.run(["pmap", "-x", pid], capture_output=True, text=True,
                                     timeout=30).stdout
                total = [l for l in out.splitlines() if l.startswith("total kB")]
                try:
                    with open(f"/proc/{pid}/status") as f:
                        peak = int(re.search(r"^VmPeak:\s+(\d+) kB", f.read(), re.M).group(1))
                except (OSError, AttributeError):
                    continue
                if total:
                    seen.add(pid)
                    totals.append((int(total[0].split()[2]) * 1024, peak * 1024))
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    eq(proc.returncode, 0, err)
    runs = [c["each"][0]["vms_peak"] for c in json.loads(out)["configurations"]]
    eq(len(totals), 3, f"pmap read each of the three runs: {totals}")
    for key, got, (total, peak) in zip(("glibc", "arena2", "jemalloc"), runs, totals):
        check(got >= 0.99 * total and abs(got - peak) <= 0.10 * peak,
              f"{key}: VMS peak {got >> 20} MiB; of the same run, pmap {total >> 20} MiB "
              f"held, the kernel's VmPeak {peak >> 20} MiB")
    # the table, and only the configurations asked for
    r = tool("allocators", "-n", "3", "--only", "arena2,jemalloc", "--", *held)
    lines = r.stdout.splitlines()
    check(lines[0].startswith("memtrace allocators: 3 runs of each configuration"), lines[0])
    eq([l.split("  ")[0] for l in lines[2:5]], ["glibc (defaults)", "glibc, arena_max=2", "jemalloc"],
       r.stdout)
    check(re.fullmatch(r"Advice: (glibc, arena_max=2|jemalloc) lowers peak VMS by \d+ % .*"
                       r"deploy it without memtrace: (MALLOC_ARENA_MAX=2|LD_PRELOAD=libjemalloc.so.2)"
                       r" COMMAND", lines[5]), r.stdout)
    eq(len(lines), 6, r.stdout)
    for args, want in ((["--only", "bogus", "--", "true"], "no configuration 'bogus'"),
                       (["--runs", "0", "--", "true"], "--runs takes 1 to 64"),
                       ([], "needs a command")):
        r = tool("allocators", *args, check_rc=1)
        eq(len(r.stderr.splitlines()), 1, r.stderr)
        check(want in r.stderr, r.stderr)


def case_allocators_redis():
    """memtrace allocators on redis-server with redis-benchmark as the load:
    every run serves the load; the glibc rows are redis's own jemalloc, and
    the advice says so."""
    port = free_port()
    r = tool("allocators", "--json", "-n", "1", "--duration", "20", "--load",
             f"redis-benchmark -h 127.0.0.1 -p {port} -n 20000 -c 10 -t set,get -q",
             "--", "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no")
    js = json.loads(r.stdout)
    for c in js["configurations"]:
        eq((c["failed"], c["load_failed"]), (False, False), c["key"])
        check(c["wall_s"] < 19, f"{c['key']}: the run ended with the load: {c['wall_s']}")
        want = "jemalloc" if c["allocator"] == "glibc" else c["allocator"]
        eq(c["served_by"], want, c["key"])
    check(js["advice"]["text"].startswith("the program links its own allocator, jemalloc"),
          js["advice"]["text"])


@case(victims=("figures",))
def case_alloc_figures():
    d, r = run_victim("figures")
    eq(r.returncode, 0, f"figures victim: {r.stderr!r}")
    path, rss0, rss1, vms0, vms1 = r.stdout.split()
    a = alloc_of(path.decode())
    for name, got, lo, hi in (("rss", a["rss"], int(rss0), int(rss1)),
                              ("vms", a["vms"], int(vms0), int(vms1))):
        want = (lo + hi) / 2 * 1024
        check(abs(got - want) <= 0.1 * want, f"{name}: snapshot {got}, /proc says {want:.0f}")
    # the peaks (VmPeak, VmHWM) are at least the figures of the moment
    check(a["vms_peak"] >= a["vms"] > 0 and a["rss_peak"] >= a["rss"] > 0,
          f"peaks: VMS {a['vms_peak']} >= {a['vms']}, RSS {a['rss_peak']} >= {a['rss']}")
    check(a["held"] >= 48 << 20, f"glibc holds the 48 MiB: {a['held']}")
    check(a["in_use"] >= 48 << 20, f"glibc counts the 48 MiB in use: {a['in_use']}")


@case(suite="cli", victims=("leak",))
def case_memory_verdict():
    d, files, _ = leak_series()
    js = json.loads(tool("diff", "--json", files[0], files[2]).stdout)
    check(js["verdict"].startswith("the live heap grew"), js["verdict"])
    text = tool("diff", files[0], files[2]).stdout
    check(re.search(r"^Memory: live heap .* \(\+.*\); glibc holds .* arenas \([+-]\d+\); RSS .*VMS",
                    text, re.M), text)
    check("Verdict: the live heap grew" in text, text)
    text = tool("growth", *files).stdout
    check(re.search(r"^\s+seq\s+seconds\s+heap live\s+blocks\s+heap peak\s+mmap live\s+held\s+"
                    r"arenas\s+RSS\s+VMS$", text, re.M), text)


@case(suite="cli", victims=("basic",))
def case_deleted_exe():
    """A module gone since the snapshot (a deleted or rebuilt-elsewhere
    program): said once, its frames shown as addresses, exit 0."""
    d = tempfile.mkdtemp(prefix="mt-gone-")
    exe = os.path.join(d, "gone")
    shutil.copy(victim("basic"), exe)
    r = run([exe], dump_dir=d)
    eq(r.returncode, 0, r.stderr)
    snap = only_snapshot(d)
    os.unlink(exe)
    for cmd in (["show"], ["leaks"]):
        r = tool(*cmd, snap)
        eq(r.stderr, f"memtrace: warning: {exe} is gone (No such file or directory); its frames "
           "are shown as addresses\n", f"{cmd[0]}: one line")
        check(re.search(r"^gone\(\+0x[0-9a-f]+\): size=97.7 KiB", r.stdout, re.M) or cmd[0] != "show",
              r.stdout)


@case(suite="cli", victims=("verdicts",))
def case_verdict_evidence():
    """The verdict follows the evidence: a line that grew in every interval
    is a leak suspect however small; a fall is a fall."""
    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "slow", "2.2"], env={"MEMTRACE_INTERVAL": "0.5"}, dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts slow ok\n"), r.stderr)
    series = [f for f in snaps(d) if show_json(f)["reason"] == "periodic"]
    eq(len(series), 4, "periodic snapshots")
    js = json.loads(tool("growth", "--json", *series).stdout)
    path, line = line_of("verdicts.c", "slow")
    top = js["suspects"][0]
    eq((top["file"], top["line"], top["trend"], top["grew"]), (path, line, "steady", 3),
       "the slow leak ranks first, grown in every interval")
    check(top["size_diff"] < 65536, f"under the old threshold: {top['size_diff']}")
    eq(js["verdict"], "1 line grew in every one of the 3 intervals: leak suspects, however "
       "small the growth", "growth's verdict")
    text = tool("growth", *series).stdout
    check("Verdict: 1 line grew in every one of the 3 intervals" in text, text)
    check("not a leak" not in text, text)
    html = os.path.join(d, "report.html")
    tool("report", "-o", html, *series)
    page = page_data(open(html).read())
    eq(page["verdict"], js["verdict"], "the report's verdict is growth's")

    # a program that frees at exit, through the README's glob: the at-exit
    # snapshot is its teardown, left out, and the leak still shows
    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "slow", "2.2", "tidy"], env={"MEMTRACE_INTERVAL": "0.5"},
            dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts slow ok\n"), r.stderr)
    every = snaps(d)
    expect_absent(show_json(every[-1]), "verdicts.c", "slow")  # freed at exit
    r = tool("growth", "--json", *every)
    js = json.loads(r.stdout)
    eq(len(js["snapshots"]), len(every) - 1, "the at-exit snapshot left out")
    check("left out" in r.stderr and every[-1] in r.stderr, r.stderr)
    top = js["suspects"][0]
    eq((top["file"], top["line"], top["trend"]), (path, line, "steady"), "the leak, not 'shrinking'")
    check(js["verdict"].endswith("leak suspects, however small the growth"), js["verdict"])
    tool("report", "-o", html, *every)
    page = page_data(open(html).read())
    eq(len(page["snaps"]), len(every) - 1, "the report's series")

    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "fall", "2.2"], env={"MEMTRACE_INTERVAL": "0.5"}, dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts fall ok\n"), r.stderr)
    series = [f for f in snaps(d) if show_json(f)["reason"] == "periodic"]
    first, last = show_json(series[0])["totals"], show_json(series[-1])["totals"]
    check(first["heap_live_bytes"] - last["heap_live_bytes"] >= 1500 * 1024,
          f"the cache was freed: {first['heap_live_bytes']} -> {last['heap_live_bytes']}")
    js = json.loads(tool("growth", "--json", *series).stdout)
    check(js["verdict"].startswith("the live heap fell"), js["verdict"])
    js = json.loads(tool("diff", "--json", series[0], series[-1]).stdout)
    check(js["verdict"].startswith("the live heap fell"), js["verdict"])


# ---- the HTML report -----------------------------------------------------

def page_data(html):
    """The JSON block of a report page."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    check(m, "a data block in the page")
    return json.loads(m.group(1))


def loads_nothing(html):
    """No URL to fetch, no element or call that would fetch one."""
    check("default-src 'none'" in html, "the page's Content-Security-Policy forbids loading")
    text = re.sub(r'<a\s[^>]*href="[^"]*"', "", html)
    check(not re.search(r"https?://", text, re.I), re.findall(r".{40}https?://.{40}", text))
    for pat in (r"<link\b", r"\bsrc\s*=", r"url\(", r"@import", r"\bfetch\(", r"XMLHttpRequest",
                r"WebSocket", r"EventSource", r"sendBeacon", r"\bimport\(", r"<iframe", r"<img",
                r"<object", r"<embed", r"\.src\b"):
        check(not re.search(pat, html, re.I), f"{pat} in the page")


@case(suite="cli", victims=("leak", "basic"))
def case_report_cli():
    d, files, _ = leak_series()
    try:
        report_cli(d, files)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def report_cli(d, files):
    r = tool("report", "--help")
    check("-o, --output FILE" in r.stdout and "usage: memtrace report" in r.stdout, r.stdout)
    out = os.path.join(d, "out")
    os.mkdir(out)
    page = os.path.join(out, "r.html")
    # bad usage: 1
    for args in ([], [files[0]], ["-o", page], ["-g", "nope", "-o", page, files[0]]):
        r = tool("report", *args, check_rc=1)
        eq(len(r.stderr.splitlines()), 1, f"one line for report {args}: {r.stderr!r}")
    tool("report", "--json", "-o", page, files[0], check_rc=1)  # not for a page
    # a bad snapshot: 2, one line naming it, nothing written
    bad = os.path.join(d, "bad.snap")
    with open(bad, "wb") as f:
        f.write(b"MTSNAP? not really")
    r = tool("report", "-o", page, files[0], bad, check_rc=2)
    eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr!r}")
    check(r.stderr.startswith(f"memtrace: {bad}"), r.stderr)
    eq(os.listdir(out), [], "nothing written for a bad snapshot")
    # an unwritable page: 2, one line, nothing left behind
    before = sorted(os.listdir(d))
    for target in (os.path.join(d, "missing", "r.html"), os.path.join(files[0], "r.html"),
                   "/proc/memtrace-report.html", out):
        r = tool("report", "-o", target, *files, check_rc=2)
        eq(r.stderr.splitlines(), [r.stderr.strip()], f"one line for -o {target}")
        check(r.stderr.startswith(f"memtrace report: cannot write {target}: "), r.stderr)
        eq(sorted(os.listdir(d)), before, f"nothing left after -o {target}")
        eq(os.listdir(out), [], f"nothing left in {out}")

    # the page: whole, world-readable as the umask allows, the same on stdout
    tool("report", "-o", page, *files)
    mask = os.umask(0)
    os.umask(mask)
    eq(os.stat(page).st_mode & 0o777, 0o666 & ~mask, "mode of the page")
    eq(os.listdir(out), ["r.html"], "only the page in its directory")
    with open(page) as f:
        html = f.read()
    eq(tool("report", "-o", "-", *files).stdout, html, "the page on standard output")
    with open("/dev/full", "w") as full:
        r = subprocess.run([TOOL, "report", "-o", "-", *files], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=TIMEOUT)
    eq((r.returncode, r.stderr), (2, "memtrace report: cannot write standard output: No space left on "
                                     "device\n"), "a full standard output")
    # a symbolic link stays one, its file is replaced with the same mode; a
    # pipe is written in place
    link, real = os.path.join(d, "link.html"), os.path.join(d, "real.html")
    with open(real, "w") as f:
        f.write("old")
    os.chmod(real, 0o600)
    os.symlink("real.html", link)
    tool("report", "-o", link, *files)
    check(os.path.islink(link), "the link is still a link")
    eq(os.stat(real).st_mode & 0o777, 0o600, "mode of the replaced page")
    with open(real) as f:
        eq(f.read(), html, "the page through the link")
    fifo = os.path.join(d, "pipe")
    os.mkfifo(fifo)
    with ThreadPoolExecutor(1) as ex:
        got = ex.submit(lambda: open(fifo).read())
        tool("report", "-o", fifo, *files)
        eq(got.result(timeout=TIMEOUT), html, "the page through a pipe")
    check(stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe is still a pipe")
    check(html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), "a whole page")
    loads_nothing(html)

    # its data: the figures of show and growth, exactly
    data = page_data(html)
    eq(len(data["snaps"]), len(files) - 1, "snapshots in the page: the at-exit one left out")
    groups = {g[0]: g for g in data["groups"]}
    for i, f in enumerate(files[:-1]):
        js = show_json(f)
        eq(data["snaps"][i]["seq"], js["seq"], "snapshots in time order")
        for s in js["stats"]:
            eq((groups[s["key"]][8][i], groups[s["key"]][9][i]), (s["size"], s["count"]),
               f"{s['key']} in snapshot {js['seq']}")
        eq(sum(g[8][i] for g in data["groups"]), js["totals"]["heap_live_bytes"], "groups' sum")
        eq(sum(u[1] for u in data["snaps"][i]["sites"]), js["totals"]["heap_live_bytes"],
           "the flame graph's bytes")
    growth = json.loads(tool("growth", "--json", "-n", "0", *files).stdout)
    for s in growth["suspects"]:
        g = groups[s["key"]]
        eq((g[5], g[7], round(g[6])), (s["trend"], s["grew"], round(s["rate"])),
           f"growth of {s['key']}")
    eq(data["verdict"], growth["verdict"], "verdict")
    # stacks: outermost first, down to the line that asked, malloc cut off
    path, line = line_of("leak.c", "leak")
    frames = [(data["strings"][f[0]] if f[0] >= 0 else None,
               data["strings"][f[1]] if f[1] >= 0 else None, f[2]) for f in data["frames"]]
    leaf = {frames[s[-1]] for s in data["stacks"]}
    check(("leak_one", path, line) in leaf, f"a stack ending at leak_one, {path}:{line}: {leaf}")
    check(all(f[0] not in ("malloc", "__libc_malloc") for f in frames), "no allocator frame")
    # the views apply: --include keeps only matching lines
    r = tool("report", "--include", "*nothing-matches*", "-o", "-", *files)
    eq(page_data(r.stdout)["groups"], [], "groups with a filter that matches nothing")

    # a program path that tries to close the script and the title
    odd = os.path.join(d, "<", "script><!--")
    os.makedirs(odd)
    exe = os.path.join(odd, "v<b>&'\"")
    shutil.copy(victim("basic"), exe)
    d2 = os.path.join(d, "snaps")
    os.mkdir(d2)
    r = run([exe], dump_dir=d2)
    eq(r.returncode, 0, f"{exe}: {r.stderr}")
    html = tool("report", "-o", "-", only_snapshot(d2)).stdout
    eq(len(re.findall(r"</script", html, re.I)), 2, "only the page's own script elements close")
    eq(page_data(html)["exe"], exe, "the program's path, intact")
    check("<title>memtrace report: v&lt;b&gt;&amp;'&quot; (pid" in html, "the title, escaped")
    loads_nothing(html.replace(exe, ""))


# ---- performance modes ---------------------------------------------------

@case(victims=("sampled",))
def case_sampling():
    env = {"MEMTRACE_SAMPLE": "64K", "MEMTRACE_SAMPLE_SEED": "7"}
    d, r = run_victim("sampled", env=env)
    # absurd sizes (up to 2^63 and SIZE_MAX - 2^40) failed at once, no hang
    eq((r.returncode, r.stdout, r.stderr), (0, b"sampled ok 1\n", b""), "sampled run")
    snap = only_snapshot(d)
    js = show_json(snap)
    eq((js["sampled"], js["sample_bytes"]), (True, 65536), "the snapshot says it is sampled")
    # an estimate may pass what the allocator holds: never a size below zero
    for seed in ("7", "8", "9"):
        ds, _ = run_victim("basic", env={"MEMTRACE_SAMPLE": "1M", "MEMTRACE_SAMPLE_SEED": seed})
        over = [l for l in tool("show", only_snapshot(ds)).stdout.splitlines() if l.startswith("Overhead:")]
        check(over and "-" not in over[0].split(";")[0], f"seed {seed}: {over}")
        shutil.rmtree(ds)
    by = stats_by_line(js)
    for tag, size, count in (("big", 20000 * 1000, 20000), ("small", 200000 * 24, 200000),
                             ("grow_to", 10000 * 2000, 10000)):
        got = by.get(line_of("sampled.c", tag))
        check(got, f"@{tag} sampled at all")
        check(abs(got["size"] - size) <= 0.15 * size, f"@{tag}: estimated {got['size']} B, true {size}")
        check(abs(got["count"] - count) <= 0.15 * count,
              f"@{tag}: estimated {got['count']} blocks, true {count}")
    expect_absent(js, "sampled.c", "temp")
    expect_absent(js, "sampled.c", "grow_from")
    live = 20000 * 1000 + 200000 * 24 + 10000 * 2000
    check(abs(js["totals"]["heap_live_bytes"] - live) <= 0.15 * live, "estimated live heap")
    text = tool("show", snap).stdout
    check("Sampled: one allocation per 64.0 KiB on average" in text, text)
    check("A line's size has a standard error of about sqrt(64.0 KiB x size): +/-100 % at 64.0 KiB, "
          "+/-10 % at 6400 KiB\n" in text, text)
    # the same seed, the same estimates
    d2, _ = run_victim("sampled", env=env)
    eq([(s["key"], s["size"]) for s in show_json(only_snapshot(d2))["stats"] if "sampled.c" in s["key"]],
       [(s["key"], s["size"]) for s in js["stats"] if "sampled.c" in s["key"]], "reproducible")


@case(victims=("sampled",))
def case_sampling_options():
    for val in ("0", "-5", "abc", "2T", "99999999999G"):
        d, r = run_victim("sampled", env={"MEMTRACE_SAMPLE": val})
        eq((r.returncode, len(r.stderr.splitlines())), (0, 1), f"MEMTRACE_SAMPLE={val}: one warning")
        check(b"MEMTRACE_SAMPLE" in r.stderr, r.stderr)
        js = show_json(only_snapshot(d))
        eq(js["sampled"], False, "exact mode kept")
        expect_site(js, "sampled.c", "big", 20000 * 1000, 20000)
    d, r = run_victim("sampled", env={"MEMTRACE_SAMPLE": "1M", "MEMTRACE_ALLOCATOR": "jemalloc"})
    eq(r.returncode, 0, "sampling with jemalloc asked for")
    check(b"does not go with MEMTRACE_SAMPLE" in r.stderr, r.stderr)


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


# ---- memtrace export ----------------------------------------------------

PPROF_PROTO = os.environ.get("MT_PPROF_PROTO",
                             "/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto")
PPROF_TYPES = [("inuse_space", "bytes"), ("inuse_objects", "count"),
               ("alloc_space", "bytes"), ("alloc_objects", "count")]


def parse_textproto(text):
    """protoc's text format as nested dicts of lists (absent fields are 0)."""
    root, stack = {}, []
    cur = root
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            cur = stack.pop()
        elif line.endswith("{"):
            child = {}
            cur.setdefault(line[:-1].strip(), []).append(child)
            stack.append(cur)
            cur = child
        else:
            key, val = line.split(":", 1)
            val = val.strip()
            if val.startswith('"'):
                val = codecs.escape_decode(val[1:-1].encode())[0].decode()
            elif val in ("true", "false"):
                val = val == "true"
            else:
                val = int(val)
            cur.setdefault(key, []).append(val)
    eq(stack, [], "balanced braces in protoc's output")
    return root


def one(msg, key, default=0):
    return msg.get(key, [default])[0]


class Pprof:
    """A profile decoded by gunzip and protoc, independent of memtrace's writer."""

    def __init__(self, path):
        gz = subprocess.run(["gunzip", "-c", path], capture_output=True, timeout=TIMEOUT)
        eq(gz.returncode, 0, f"gunzip {path}: {gz.stderr}")
        r = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                            "--proto_path=" + os.path.dirname(PPROF_PROTO),
                            os.path.basename(PPROF_PROTO)],
                           input=gz.stdout, capture_output=True, timeout=TIMEOUT)
        eq(r.returncode, 0, f"protoc --decode of {path}: {r.stderr.decode()}")
        eq(r.stderr, b"", "protoc warnings")
        self.p = parse_textproto(r.stdout.decode())
        self.s = self.p["string_table"]
        self.funcs = {one(f, "id"): f for f in self.p.get("function", [])}
        self.locs = {one(l, "id"): l for l in self.p.get("location", [])}
        self.maps = {one(m, "id"): m for m in self.p.get("mapping", [])}
        self.samples = self.p.get("sample", [])
        for k in ("location", "function", "mapping"):
            ids = [one(x, "id") for x in self.p.get(k, [])]
            eq(ids, list(range(1, len(ids) + 1)), f"{k} ids")

    def str(self, msg, key):
        return self.s[one(msg, key)]

    def lines(self, loc_id):
        """A location's lines as (function, file, line), innermost first."""
        out = []
        for ln in self.locs[loc_id].get("line", []):
            f = self.funcs[one(ln, "function_id")]
            out.append((self.str(f, "name"), self.str(f, "filename"), one(ln, "line")))
        return out

    def leaf(self, sample):
        """The leaf's innermost line; an unsymbolized address has none."""
        return (self.lines(sample["location_id"][0]) or [("?", "", 0)])[0]

    def labels(self, sample):
        return {self.str(l, "key"): self.str(l, "str") for l in sample.get("label", [])}

    def at(self, src, tag):
        """The samples whose leaf is the @tag line."""
        path, line = line_of(src, tag)
        return [s for s in self.samples if sample_leaf_is(self, s, path, line)]


def sample_leaf_is(prof, s, path, line):
    return bool(s.get("location_id")) and prof.leaf(s)[1:] == (path, line)


def build_id_of(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    check(m, f"readelf -n {path}: no build id")
    return m.group(1)


def first_load_offset(path):
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
    loads = [l.split() for l in out.splitlines() if l.strip().startswith("LOAD")]
    return min((int(l[2], 16), int(l[1], 16)) for l in loads)[1]


def export(snap, *args, check_rc=0):
    r = subprocess.run([TOOL, "export", *args, snap], capture_output=True, timeout=TIMEOUT)
    if check_rc is not None:
        eq(r.returncode, check_rc, f"memtrace export {' '.join(args)}: {r.stderr.decode()}")
    if check_rc == 0:
        eq(r.stderr, b"", f"memtrace export {' '.join(args)}: stderr")
    return r


def export_pprof(snap, *args):
    out = snap + ".pb.gz"
    export(snap, "--format", "pprof", "-o", out, *args)
    return out


ALLOCATOR_FUNCS = ("malloc", "calloc", "realloc", "operator new", "operator new[]")


@case(suite="cli", victims=("basic", "export", "cxx"))
def case_export_pprof():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = show_json(snap)
    path = export_pprof(snap)
    prof = Pprof(path)
    eq(prof.s[0], "", "string_table[0]")
    eq([(prof.str(t, "type"), prof.str(t, "unit")) for t in prof.p["sample_type"]], PPROF_TYPES,
       "sample types")
    eq(prof.s[one(prof.p, "default_sample_type")], "inuse_space", "default sample type")
    pt = prof.p["period_type"][0]
    eq((prof.str(pt, "type"), prof.str(pt, "unit"), one(prof.p, "period")), ("space", "bytes", 1),
       "period of an exact snapshot")
    eq(one(prof.p, "time_nanos"), js["wall_ns"], "time_nanos is the snapshot's wall time")
    comments = [prof.s[i] for i in prof.p.get("comment", [])]
    check(any(f"pid {js['pid']}" in c for c in comments), comments)
    check(f"exe {victim('basic')}" in comments, comments)
    check(not any("sampled" in c for c in comments), comments)
    # exact figures at the known lines, the leaf being the user's line
    for tag, values in (("keep100", [100000, 1000, 100000, 1000]), ("big", [12345, 1, 12345, 1]),
                        ("freed64", [0, 0, 500 * 64, 500])):
        got = prof.at("basic.c", tag)
        eq([s["value"] for s in got], [values], f"the sample at @{tag}")
        eq(prof.labels(got[0]), {"domain": "heap"}, f"labels at @{tag}")
        eq(prof.leaf(got[0])[0], "main", f"leaf function at @{tag}")
    for s in prof.samples:
        check(prof.leaf(s)[0] not in ALLOCATOR_FUNCS, f"an allocator frame as leaf: {prof.leaf(s)}")
        # leaf first: the outermost frame is the program's entry
        outer = prof.lines(s["location_id"][-1])
        check(outer and outer[-1][0] == "_start", f"outermost frame: {outer}")
    eq(sum(s["value"][0] for s in prof.samples), js["totals"]["heap_live_bytes"],
       "inuse_space sums to the live heap")
    # the victim's mapping: path, build id, range, file offset, flags
    exe = [m for m in prof.maps.values() if prof.str(m, "filename") == victim("basic")]
    eq(len(exe), 1, "one mapping for the executable")
    m = exe[0]
    eq(one(m, "id"), 1, "the executable is mapping 1")
    eq(prof.str(m, "build_id"), build_id_of(victim("basic")), "build id")
    eq(one(m, "file_offset"), first_load_offset(victim("basic")), "file offset")
    eq(one(m, "has_functions", False), True, "the executable's frames have functions")
    loc = prof.locs[prof.at("basic.c", "keep100")[0]["location_id"][0]]
    eq(one(loc, "mapping_id"), 1, "the leaf location's mapping")
    check(one(m, "memory_start") <= one(loc, "address") < one(m, "memory_limit"),
          "the leaf address lies in the executable's mapping")
    libc = [m for m in prof.maps.values() if "libc.so" in prof.str(m, "filename")]
    eq(len(libc), 1, "libc mapped")
    eq(prof.str(libc[0], "build_id"), build_id_of(prof.str(libc[0], "filename")), "libc's build id")
    # standard output (a pipe) gets the same bytes
    r = export(snap, "--format", "pprof", "-o", "-")
    with open(path, "rb") as f:
        eq(r.stdout, f.read(), "-o - writes the same profile")
    r = export(snap, "-f", "pprof")
    with open(path, "rb") as f:
        eq(r.stdout, f.read(), "standard output is the default")
    # filters: the mmap domain of this victim is empty; --include by file
    eq(Pprof(export_pprof(snap, "--domain", "mmap")).samples, [], "--domain mmap")
    inc = Pprof(export_pprof(snap, "--include", "*basic.c"))
    check(inc.samples and all(inc.leaf(s)[1].endswith("basic.c") for s in inc.samples),
          "--include *basic.c")
    # inlined calls: one location, two lines, innermost first
    d, r = run_victim("export")
    eq((r.returncode, r.stdout), (0, b"export ok\n"), "export victim")
    prof = Pprof(export_pprof(only_snapshot(d)))
    grab, call = line_of("export.c", "grab"), line_of("export.c", "call")
    got = prof.at("export.c", "grab")
    eq([s["value"] for s in got], [[30 * 700, 30, 30 * 700, 30]], "the sample at @grab")
    eq(prof.lines(got[0]["location_id"][0]), [("new_buffer", *grab), ("main", *call)],
       "an inlined call is two lines of one location")
    check(one(prof.maps[1], "has_inline_frames", False), "has_inline_frames")
    # C++: operator new and the inlined std:: code are not the leaf
    d, r = run_victim("cxx")
    prof = Pprof(export_pprof(only_snapshot(d)))
    for tag, values in (("arr", [4000, 40]), ("obj", [5 * 48, 5]), ("vec", [4000, 1])):
        got = prof.at("cxx.cpp", tag)
        eq([s["value"][:2] for s in got], [values], f"the sample at @{tag}")
        eq(prof.leaf(got[0])[0], "main", f"leaf function at @{tag}")
    # a sampled snapshot says so
    d, r = run_victim("basic", env={"MEMTRACE_SAMPLE": "64K", "MEMTRACE_SAMPLE_SEED": "1"})
    prof = Pprof(export_pprof(only_snapshot(d)))
    eq(one(prof.p, "period"), 65536, "period of a sampled snapshot")
    comments = [prof.s[i] for i in prof.p.get("comment", [])]
    check(any(c.startswith("sampled at 65536 bytes") for c in comments), comments)


def go_pprof(*args):
    """go tool pprof, offline: a private HOME and caches, no proxy, no symbolization."""
    check(shutil.which("go"), "go not found: apt-get install golang-go (tools/dev.sh test does)")
    home = tempfile.mkdtemp(prefix="mt-go-")
    env = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"),
               GOPATH=os.path.join(home, "go"), GOENV="off", GOFLAGS="", GOPROXY="off",
               GOTOOLCHAIN="local", PPROF_TMPDIR=home, PPROF_BINARY_PATH=home)
    r = subprocess.run(["go", "tool", "pprof", "-symbolize=none", *args], env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    eq(r.returncode, 0, f"go tool pprof {' '.join(args)}: {r.stderr}")
    return r.stdout


def pprof_top(*args):
    """-top rows as {name: (flat, cum)}, values in bytes or counts."""
    rows = {}
    for line in go_pprof("-top", "-unit=B", "-nodecount=1000", *args).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and re.fullmatch(r"-?\d+B?", parts[0]) and parts[1].endswith("%"):
            rows[parts[5]] = (int(parts[0].rstrip("B")), int(parts[3].rstrip("B")))
    return rows


@case(suite="cli", victims=("basic", "leak"))
def case_export_pprof_go():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path = export_pprof(snap)
    keep, freed = line_of("basic.c", "keep100"), line_of("basic.c", "freed64")
    rows = pprof_top("-lines", "-sample_index=inuse_space", path)
    eq(rows.get(f"main {keep[0]}:{keep[1]}"), (100000, 100000), f"pprof -top -lines: {rows}")
    rows = pprof_top("-lines", "-sample_index=inuse_objects", path)
    eq(rows.get(f"main {keep[0]}:{keep[1]}"), (1000, 1000), f"inuse_objects: {rows}")
    rows = pprof_top("-lines", "-sample_index=alloc_objects", path)
    eq(rows.get(f"main {freed[0]}:{freed[1]}"), (500, 500), f"alloc_objects: {rows}")
    total = show_json(snap)["totals"]["heap_live_bytes"]
    rows = pprof_top("-sample_index=inuse_space", path)
    eq(rows.get("main"), (total, total), f"all the live heap is main's: {rows}")
    raw = go_pprof("-raw", path)
    check("inuse_space/bytes[dflt] inuse_objects/count alloc_space/bytes alloc_objects/count" in raw,
          raw)
    check("domain:[heap]" in raw, raw)
    # a leak between two snapshots: -diff_base shows exactly the growth
    d, files, err = leak_series()
    a, c = files[0], files[2]
    path, line = line_of("leak.c", "leak")
    sa, sc = (stats_by_line(show_json(f))[(path, line)] for f in (a, c))
    grew, more = sc["size"] - sa["size"], sc["count"] - sa["count"]
    check(grew > 0, "the leak grew")
    pa, pc = export_pprof(a), export_pprof(c)
    rows = pprof_top("-lines", "-sample_index=inuse_space", "-diff_base", pa, pc)
    eq(rows.get(f"leak_one {path}:{line}"), (grew, grew), f"pprof -diff_base -lines: {rows}")
    rows = pprof_top("-sample_index=inuse_objects", "-diff_base", pa, pc)
    eq(rows.get("leak_one"), (more, more), f"pprof -diff_base objects: {rows}")
    top = max(rows.items(), key=lambda kv: kv[1][0])
    eq(top[0], "leak_one", "the leaking function grows most")


def collapsed(snap, *args):
    out = export(snap, "--format", "collapsed", *args).stdout.decode()
    stacks = {}
    for l in out.splitlines():
        stack, value = l.rsplit(" ", 1)
        check(stack not in stacks, f"stack {stack!r} not merged")
        check(int(value) > 0, f"zero-value stack {l!r}")
        stacks[stack] = int(value)
    eq(out.splitlines(), sorted(out.splitlines()), "lines in order")
    return stacks


def collapsed_at(stacks, src, tag, func="main"):
    path, line = line_of(src, tag)
    leaf = f"{func} ({os.path.basename(path)}:{line})"
    return {k: v for k, v in stacks.items() if k.split(";")[-1] == leaf}


@case(suite="cli", victims=("basic", "mmap", "export", "cxx"))
def case_export_collapsed():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = show_json(snap)
    t = js["totals"]
    stacks = collapsed(snap)
    got = collapsed_at(stacks, "basic.c", "keep100")
    eq(list(got.values()), [100000], "inuse_space at @keep100")
    frames = list(got)[0].split(";")
    eq((frames[0], frames[-1].split(" ")[0]), ("_start", "main"), "root first, leaf last")
    eq(collapsed_at(stacks, "basic.c", "big").popitem()[1], 12345, "@big")
    eq(collapsed_at(stacks, "basic.c", "freed64"), {}, "zero-value stacks left out")
    eq(sum(stacks.values()), t["heap_live_bytes"] + t["mmap_live_bytes"], "sum over all domains")
    for value, total in (("inuse_objects", "heap_live_count"), ("alloc_space", "heap_alloc_bytes"),
                         ("alloc_objects", "heap_alloc_count")):
        st = collapsed(snap, "--value", value, "--domain", "heap")
        eq(sum(st.values()), t[total], f"--value {value} sums to {total}")
    st = collapsed(snap, "--value", "alloc_objects")
    eq(list(collapsed_at(st, "basic.c", "freed64").values()), [500], "alloc_objects at @freed64")
    eq(list(collapsed_at(collapsed(snap, "--value", "inuse_objects"), "basic.c", "keep100")
            .values()), [1000], "inuse_objects at @keep100")
    eq(collapsed(snap, "--domain", "mmap"), {}, "no mappings in this victim")
    # mappings: per-domain sums equal the totals
    d, r = run_victim("mmap")
    snap = only_snapshot(d)
    t = show_json(snap)["totals"]
    for dom in ("heap", "mmap"):
        eq(sum(collapsed(snap, "--domain", dom).values()), t[f"{dom}_live_bytes"],
           f"{dom} stacks sum to the live {dom}")
    eq(list(collapsed_at(collapsed(snap, "--domain", "mmap"), "mmap.c", "m5").values()),
       [8192], "@m5")
    # inlined calls are frames of their own; two callsites on one line merge
    d, r = run_victim("export")
    snap = only_snapshot(d)
    stacks = collapsed(snap)
    got = collapsed_at(stacks, "export.c", "grab", func="new_buffer")
    eq(list(got.values()), [30 * 700], "@grab")
    call = line_of("export.c", "call")[1]
    eq(list(got)[0].split(";")[-2], f"main (export.c:{call})", "the inlined call's caller")
    eq(list(collapsed_at(stacks, "export.c", "twice").values()), [11 + 22],
       "two callsites of one line are one stack")
    st = collapsed(snap, "--include", "new_buffer")
    eq(list(st.values()), [30 * 700], "--include new_buffer")
    st = collapsed(snap, "--exclude", "*export.c")
    check(all("export.c" not in k.split(";")[-1] for k in st), "--exclude *export.c")
    # C++: operator new and std:: are not leaves
    d, r = run_victim("cxx")
    stacks = collapsed(only_snapshot(d), "--value", "inuse_objects")
    eq(list(collapsed_at(stacks, "cxx.cpp", "arr").values()), [40], "@arr")
    check(not any(k.split(";")[-1].startswith("operator new") for k in stacks), stacks)
    export(snap, "--format", "collapsed", "--value", "peak", check_rc=1)
    r = export(snap, "--format", "json", "--value", "inuse_space", check_rc=1)
    check(b"--value goes with --format collapsed" in r.stderr, r.stderr)


def traceback_text(f):
    """A frame as `show --group-by traceback` prints it (group.c frame_text)."""
    mod = os.path.basename(f["module"]) if f["module"] else "?"
    if f["file"] and f["line"] > 0:
        t = f"{f['file']}:{f['line']}"
    elif f["function"]:
        t = f"{mod}({f['function']})"
    else:
        t = f"{mod}(+0x{f['offset']:x})"
    if f["function"] and f["file"]:
        t += f" ({f['function']})"
    return t


def export_json(snap, *args):
    """The export, each callsite's stack read from the frames table into
    a list of frames, as a consumer does."""
    js = json.loads(export(snap, "--format", "json", *args).stdout)
    for s in js["sites"]:
        s["frames"] = [js["frames"][i] for i in s["stack"]]
    return js


def json_site_at(js, src, tag):
    path, line = line_of(src, tag)
    got = []
    for s in js["sites"]:
        user = [f for f in s["frames"] if not f["allocator"]]
        if user and (user[0]["file"], user[0]["line"]) == (path, line):
            got.append(s)
    eq(len(got), 1, f"sites at @{tag}")
    return got[0]


@case(suite="cli", victims=("basic", "cxx", "export", "mmap"))
def case_export_json():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = export_json(snap)
    shown = show_json(snap)
    for k in ("pid", "seq", "wall_ns", "exe", "totals", "sampled", "reason"):
        eq(js[k], shown[k], f"snapshot {k}")
    eq(js["domain"], "all", "the default domain")
    site = json_site_at(js, "basic.c", "keep100")
    eq((site["domain"], site["live_bytes"], site["live_count"], site["alloc_bytes"],
        site["alloc_count"]), ("heap", 100000, 1000, 100000, 1000), "@keep100")
    check("peak_bytes" in site, site)
    eq(site["leak"]["reachable"], {"bytes": 100000, "blocks": 1000}, "@keep100: held by a global")
    eq(sum(c["blocks"] for c in site["leak"].values()), site["live_count"], "@keep100: classes")
    site = json_site_at(js, "basic.c", "freed64")
    eq((site["live_bytes"], site["alloc_bytes"], site["alloc_count"]), (0, 32000, 500), "@freed64")
    exe = [m for m in js["modules"] if m["path"] == victim("basic")]
    eq(len(exe), 1, "the executable's module")
    eq(exe[0]["build_id"], build_id_of(victim("basic")), "build id")
    f = site["frames"][0]
    eq((f["function"], f["module"], f["inlined"], f["allocator"]),
       ("main", victim("basic"), False, False), "the first frame")
    eq(f["offset"], f["address"] - exe[0]["bias"], "offset from the load bias")
    check(exe[0]["lo"] <= f["address"] < exe[0]["hi"], "address in the module")
    check(all(g["allocator"] for g in site["frames"] if "/libc.so" in g["module"]),
          "libc's start-up frames are marked")
    eq(sum(s["live_bytes"] for s in js["sites"]), js["totals"]["heap_live_bytes"], "live sum")
    # every frame agrees with show's tracebacks, site by site
    for name, src in (("basic", snap), ("cxx", None), ("export", None), ("mmap", None)):
        if src is None:
            dd, r = run_victim(name)
            src = only_snapshot(dd)
        js = export_json(src)
        mine = {}
        for s in js["sites"]:
            if s["live_count"]:
                key = tuple(traceback_text(f) for f in s["frames"]) or ("<no frames>",)
                size, count = mine.get(key, (0, 0))
                mine[key] = (size + s["live_bytes"], count + s["live_count"])
        shown = show_json(src, "--group-by", "traceback", "--domain", "all")
        theirs = {tuple(s.get("traceback", [s["key"]])): (s["size"], s["count"])
                  for s in shown["stats"]}
        eq(mine, theirs, f"export json and show --json tracebacks of {name}")
    # inlined flags: two frames of one address
    d, r = run_victim("export")
    js = export_json(only_snapshot(d), "--domain", "heap")
    site = json_site_at(js, "export.c", "grab")
    user = [f for f in site["frames"] if not f["allocator"]]
    grab, call = line_of("export.c", "grab"), line_of("export.c", "call")
    eq([(f["function"], f["file"], f["line"], f["inlined"]) for f in user[:2]],
       [("new_buffer", *grab, True), ("main", *call, False)], "an inlined call")
    eq(user[0]["address"], user[1]["address"], "one return address")
    eq((site["live_bytes"], site["live_count"]), (21000, 30), "@grab")
    # C++: the allocator's frames come first and are marked
    d, r = run_victim("cxx")
    js = export_json(only_snapshot(d))
    site = json_site_at(js, "cxx.cpp", "arr")
    eq((site["live_bytes"], site["live_count"]), (4000, 40), "@arr")
    check(site["frames"][0]["allocator"] and site["frames"][0]["function"].startswith("operator new"),
          site["frames"][0])
    # filters
    js = export_json(only_snapshot(d), "--include", "*cxx.cpp")
    check(js["sites"] and all(any(f["file"] and f["file"].endswith("cxx.cpp") for f in s["frames"])
                              for s in js["sites"]), "--include")
    eq(export_json(only_snapshot(d), "--domain", "mmap")["sites"], [], "--domain mmap")
    # sized like the data: each frame once, the stacks as indices
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([MANYSITES, "20000", "1"], dump_dir=d, env={"MEMTRACE_AT_EXIT": "0"})
    eq(r.returncode, 0, r.stderr)
    snap = snaps(d)[0]
    text = export(snap, "--format", "json").stdout
    js = json.loads(text)
    keys = [(f["address"], f["function"], f["line"], f["inlined"]) for f in js["frames"]]
    eq(len(set(keys)), len(keys), "each frame once in the table")
    eq(len(js["sites"]), 20000, "every callsite")
    check(len(text) < 2 * os.path.getsize(snap),
          f"JSON {len(text)} B for a snapshot of {os.path.getsize(snap)} B")


@case(suite="cli", victims=("basic",))
def case_export_errors():
    d, data = good_snapshot()
    snap = only_snapshot(d)
    out = os.path.join(d, "out.pb.gz")
    # usage errors: exit 1
    for args in (["--format", "svg"], ["--bogus"], ["--domain", "disk"], []):
        r = subprocess.run([TOOL, "export", *args] + ([snap] if args else []),
                           capture_output=True, text=True, timeout=TIMEOUT)
        eq(r.returncode, 1, f"export {args}: {r.stderr}")
        check(r.stderr.splitlines()[-1].startswith("memtrace export: "), r.stderr)
    r = subprocess.run([TOOL, "export", "--help"], capture_output=True, text=True)
    eq(r.returncode, 0, "--help")
    check(r.stdout.startswith("usage: memtrace export") and "collapsed" in r.stdout, r.stdout)
    # never compressed bytes on a terminal
    master, slave = pty.openpty()
    try:
        r = subprocess.run([TOOL, "export", snap], stdout=slave, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    finally:
        os.close(slave)
        os.close(master)
    eq(r.returncode, 1, f"pprof to a terminal: {r.stderr}")
    check(b"terminal" in r.stderr, r.stderr)
    # a corrupt or missing snapshot: exit 2, one line, nothing written
    bad = os.path.join(d, "bad.snap")
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x40]) + data[len(data) // 2 + 1:])
    before = sorted(os.listdir(d))
    for path in (bad, os.path.join(d, "missing.snap")):
        for fmt in ("pprof", "collapsed", "json"):
            r = export(path, "--format", fmt, "-o", out, check_rc=2)
            eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
            check(r.stderr.startswith(b"memtrace: "), r.stderr)
            eq(sorted(os.listdir(d)), before, "nothing written")
    # outputs that cannot be written: exit 2, one line, nothing left behind
    for target in (os.path.join(d, "no", "such", "dir", "x.pb.gz"),
                   os.path.join(snap, "x.pb.gz"),  # a file as directory
                   d):                              # a directory as the file
        r = export(snap, "-o", target, check_rc=2)
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
        check(r.stderr.startswith(b"memtrace export: cannot "), r.stderr)
        eq(sorted(os.listdir(d)), before, f"nothing left behind for {target}")
    # a write that fails half-way (a 200-byte file size limit): the old file
    # stays as it was and the temp file goes
    with open(out, "w") as f:
        f.write("old")
    before = sorted(os.listdir(d))
    for fmt in ("pprof", "collapsed", "json"):
        r = subprocess.run([TOOL, "export", "--format", fmt, "-o", out, snap], capture_output=True,
                           timeout=TIMEOUT,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200)))
        eq(r.returncode, 2, f"{fmt} past the file size limit: {r.stderr}")
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
        check(b"File too large" in r.stderr, r.stderr)
        eq(sorted(os.listdir(d)), before, "no temp file left")
        with open(out) as f:
            eq(f.read(), "old", "the previous file untouched")
    # and a good export replaces it, with the mode of an ordinary new file
    export(snap, "-o", out)
    Pprof(out)
    mask = os.umask(0)
    os.umask(mask)
    eq(stat.S_IMODE(os.stat(out).st_mode), 0o666 & ~mask, "mode")
    eq(sorted(os.listdir(d)), before, "no temp file left")


def main(cases=None):
    """Runs the case named by argv[1] among `cases` (a module's globals);
    --list lists them."""
    name = sys.argv[1]
    if name == "--list":
        listing(cases or globals())
        return 0
    fn = (cases or globals()).get("case_" + name.replace("-", "_"))
    if not fn:
        print(f"unknown case {name}", file=sys.stderr)
        return 2
    if not os.path.exists(LIB):
        print(f"no {LIB}: build first (meson setup build && ninja -C build), or set MT_BUILD",
              file=sys.stderr)
        return 2
    # every directory the case makes lies in one of its own, removed when
    # it passes (kept, and named, when it fails); other users may pass
    # through it to the directories a case opens to them
    root = tempfile.mkdtemp(prefix=f"mt-{name}-")
    os.chmod(root, 0o755)
    tempfile.tempdir = root
    try:
        fn()
    except Fail as e:
        print(f"FAIL {name}: {e} (its files: {root})", file=sys.stderr)
        return 1
    finally:
        tempfile.tempdir = None
    shutil.rmtree(root, ignore_errors=True)
    print(f"PASS {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
