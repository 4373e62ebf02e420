#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The snapshot file, one case per process: `snapfile.py CASE`.

What the library leaves in the dump directory (one file, mode 0600, whole:
magic to END record), and the reader's answer to a damaged file: truncated
at every byte, 300 bit flips, empty, missing, a directory, a device, a pipe,
a foreign or future format: exit 2 and one line naming the file and offset.
"""
import os
import random
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from mtlib import case, check, eq, good_snapshot, only_snapshot, run_victim, TOOL, main
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
    reader_fails(future, "written by format v3.0, this reader reads v1.0..v1.x")
    short = os.path.join(d, "short.snap")
    with open(short, "wb") as f:
        f.write(b"MEMTR")
    reader_fails(short, "truncated")


if __name__ == "__main__":
    sys.exit(main(globals()))
