#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library's MEMTRACE_* options, one case per process: `options.py CASE`.

Bad values warn in one line and keep the default, the program unaffected;
MEMTRACE_AT_EXIT=0; the dump directory's rules (missing, unsafe, relative,
a file, one another user cannot write); sampled mode's estimates within
15 % and its bad values.
"""
import os
import re
import shutil
import sys
import tempfile

from mtlib import (case, check, eq, expect_absent, expect_site, line_of, only_snapshot, python3,
                   run, run_victim, show_json, snaps, stats_by_line, tool, victim, main)
CASE_SUITE = "preload"


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


if __name__ == "__main__":
    sys.exit(main(globals()))
