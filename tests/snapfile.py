#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The snapshot file, one case per process: `snapfile.py CASE`.

What the library leaves in the dump directory (one file, mode 0600, whole:
magic to END record), and the reader's answer to a damaged file: truncated
at every byte, 300 bit flips, empty, missing, a directory, a device, a pipe,
a foreign or future format: exit 2 and one line naming the file and offset.
"""
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from mtlib import (case, check, eq, good_snapshot, only_snapshot, run_victim, show_json, tool, SRC,
                   TOOL, main)
CASE_SUITE = "preload"


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


if __name__ == "__main__":
    sys.exit(main(globals()))
