#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""memtrace in CPython, one case per process: `python.py CASE`.

tracemalloc is the oracle: the same script runs once under
`python -X tracemalloc` (which writes its own statistics) and once under the
preload (a SIGUSR1 snapshot), in the same interpreter and allocator mode, and
every known line must show the same size (2 %) and count (1 %). Every
interpreter present runs: Debian's /usr/bin/python3.11 and pyenv's 3.8 to
3.13; an absent one is skipped by name (on CI all are present).
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as base  # noqa: E402
from run import Fail, check, eq, run, show_json, snaps, tool, LIB  # noqa: E402

PYENV = os.path.expanduser("~/.pyenv/versions")


def interpreters():
    """(name, path) of every CPython to test; says which are missing."""
    found, missing = [], []
    if os.path.exists("/usr/bin/python3.11"):
        found.append(("debian-3.11", "/usr/bin/python3.11"))
    else:
        missing.append("debian-3.11")
    for minor in range(8, 14):
        hits = sorted(glob.glob(os.path.join(PYENV, f"3.{minor}.*", "bin", f"python3.{minor}")))
        hits = [h for h in hits if "t/bin" not in h]
        if hits:
            found.append((f"pyenv-3.{minor}", hits[-1]))
        else:
            missing.append(f"pyenv-3.{minor}")
    if missing:
        print(f"skipped, not installed: {', '.join(missing)}")
    check(found, "at least one CPython")
    return found


def tags(path, marks="@="):
    """{tag: line} of the '# @tag' (an allocation's line) and '# =tag' (a
    caller's) comments of a script."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.search(rf"# [{marks}]([a-z0-9_]+)", line)
            if m:
                out[m.group(1)] = n
    return out


# Allocations at known lines: instances in a list, bytes blobs, a bytearray
# per instance, a thread's list, a 3-deep call chain, a generator, a class
# body, module top level. Under tracemalloc it writes tracemalloc's view;
# under memtrace it asks for a snapshot and waits for it.
LINES = r'''
import json, os, signal, sys, threading, time, tracemalloc

class Item:
    def __init__(self, i):
        self.i = i
        self.buf = bytearray(200)  # @bytearray

def make_items(n):
    out = []
    for i in range(n):
        out.append(Item(i))  # @items
    return out

def level3(n):
    return [str(i) * 3 for i in range(n)]  # @level3

def level2(n):
    return level3(n)  # =level2

def level1(n):
    return level2(n)  # =level1

def gen(n):
    for i in range(n):
        yield (i, -i)  # @gen

class Body:
    table = [float(i) for i in range(5000)]  # @classbody

kept = []
def worker():
    kept.append([{"k": i} for i in range(3000)])  # @thread

blobs = [bytes(1000 + i % 7) for i in range(2000)]  # @blobs
chain = level1(20000)  # =chain
genned = list(gen(10000))
items = make_items(20000)
t = threading.Thread(target=worker)
t.start()
t.join()
top = {i: i * 1.5 for i in range(3000)}  # @toplevel

if tracemalloc.is_tracing():
    snap = tracemalloc.take_snapshot()
    with open(sys.argv[1], "w") as f:
        json.dump([[s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count]
                   for s in snap.statistics("lineno")], f)
else:
    d = os.environ["MEMTRACE_DIR"]
    os.kill(os.getpid(), signal.SIGUSR1)
    for _ in range(500):
        if any(n.endswith(".snap") for n in os.listdir(d)):
            break
        time.sleep(0.01)
    time.sleep(0.05)
'''


def script(d, name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def oracle(py, path, env):
    """tracemalloc's statistics('lineno') for the script: {line: (size, count)}."""
    out = path + ".tracemalloc.json"
    r = run([py, "-X", "tracemalloc=1", path, out], env=env, preload=False)
    eq(r.returncode, 0, f"{py} under tracemalloc: {r.stderr[-800:]!r}")
    with open(out) as f:
        return {line: (size, count) for file, line, size, count in json.load(f) if file == path}


def under_memtrace(py, path, env, d, args=()):
    r = run([py, path, *args], env=dict(env, MEMTRACE_AT_EXIT="0"), dump_dir=d)
    eq(r.returncode, 0, f"{py} under memtrace: {r.stderr[-800:]!r}")
    check(b"memtrace[" not in r.stderr, f"memtrace said something: {r.stderr[-800:]!r}")
    files = snaps(d)
    eq(len(files), 1, f"one snapshot in {d}")
    return files[0]


def close(a, b, rel):
    return abs(a - b) <= rel * max(a, b, 1)


def case_python_lines():
    """The default view shows each known line with tracemalloc's size and
    count, on every interpreter, with pymalloc and with PYTHONMALLOC=malloc;
    the traceback view shows the 3-deep chain with its lines and names."""
    for name, py in interpreters():
        for mode, env in (("pymalloc", {}), ("malloc", {"PYTHONMALLOC": "malloc"})):
            d = tempfile.mkdtemp(prefix="mt-py-")
            path = script(d, "lines.py", LINES)
            want = oracle(py, path, env)
            snapd = os.path.join(d, "snaps")
            os.mkdir(snapd)
            snap = under_memtrace(py, path, env, snapd)
            js = show_json(snap)
            got = {s["line"]: (s["size"], s["count"]) for s in js["stats"]
                   if s["file"] == path and s["kind"] == "python"}
            for tag, line in sorted(tags(path, "@").items()):
                check(line in want, f"{name} {mode}: tracemalloc has {tag} at line {line}")
                check(line in got, f"{name} {mode}: memtrace shows {path}:{line} ({tag}); "
                      f"it shows {sorted(got)}")
                (ws, wc), (gs, gc) = want[line], got[line]
                check(close(ws, gs, 0.02) and close(wc, gc, 0.01),
                      f"{name} {mode}: {tag} at line {line}: memtrace size={gs} count={gc}, "
                      f"tracemalloc size={ws} count={wc}")
            # the text view is tracemalloc's line format
            text = tool("show", "-n", "0", snap).stdout
            line = tags(path)["blobs"]
            check(re.search(rf"^{re.escape(path)}:{line}: size=[0-9.]+ [KMG]?i?B, count=\d+, "
                            r"average=[0-9.]+ [KMG]?i?B$", text, re.M),
                  f"{name} {mode}: tracemalloc's format for the blobs line")
            # traceback: level3 <- level2 <- level1 <- <module>, exact lines
            tb = show_json(snap, "--group-by", "traceback")
            t = tags(path)
            chain = [f"{path}:{t['level3']} in level3", f"{path}:{t['level2']} in level2",
                     f"{path}:{t['level1']} in level1", f"{path}:{t['chain']} in <module>"]
            hits = [s for s in tb["stats"] if s["kind"] == "python" and s["line"] == t["level3"]]
            check(hits, f"{name} {mode}: a traceback at level3")
            best = max(hits, key=lambda s: s["size"])
            py_frames = [f for f in best["traceback"] if " in " in f]
            minor = int(name.rsplit(".", 1)[1])
            if minor >= 12:
                want_chain = chain  # comprehensions are inlined from 3.12
            else:  # the comprehension's own frame; qualified names from 3.11
                comp = "level3.<locals>.<listcomp>" if minor == 11 else "<listcomp>"
                want_chain = [chain[0].replace(" in level3", " in " + comp)] + chain
            eq(py_frames[:len(want_chain)], want_chain, f"{name} {mode}: the chain's frames")
            shutil.rmtree(d)


CODE_REUSE = r'''
import gc, os, signal, sys, time
def long_lived(n):
    return [bytearray(64) for _ in range(n)]  # @longlived
kept = []
for k in range(400):
    ns = {}
    src = "def f%d(n):\n    return [bytes(%d) for _ in range(n)]\n" % (k, 40 + k % 3)
    exec(compile(src, "<gen%d>" % k, "exec"), ns)
    kept.append(ns["f%d" % k](5))
    del ns
    gc.collect()
    kept.append(long_lived(5))
d = os.environ["MEMTRACE_DIR"]
os.kill(os.getpid(), signal.SIGUSR1)
for _ in range(500):
    if any(n.endswith(".snap") for n in os.listdir(d)):
        break
    time.sleep(0.01)
time.sleep(0.05)
'''


def case_python_code_reuse():
    """Functions compiled and dropped in a loop, their code objects' memory
    reused, next to a long-lived one: every line names its own function."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "reuse.py", CODE_REUSE)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        snap = under_memtrace(py, path, {}, snapd)
        js = show_json(snap, "--group-by", "traceback")
        line = tags(path)["longlived"]
        seen = 0
        for s in js["stats"]:
            for f in s["traceback"]:
                m = re.match(r"(.*):(\d+) in (.*)$", f)
                if not m:
                    continue
                file, ln, func = m.group(1), int(m.group(2)), m.group(3)
                g = re.match(r"<gen(\d+)>$", file)
                if g:
                    k = g.group(1)
                    check(ln == 2 and re.match(rf"(f{k}(\.<locals>)?\.)?(<listcomp>|f{k})$", func),
                          f"{name}: <gen{k}> shows {f}")
                    seen += 1
                if file == path and func in ("long_lived", "<listcomp>",
                                             "long_lived.<locals>.<listcomp>"):
                    eq(ln, line, f"{name}: the long-lived function's line: {f}")
        check(seen >= 400, f"{name}: frames of the generated functions: {seen}")
        shutil.rmtree(d)


def case_python_unknown_layout():
    """A layout that fails the check (forced): one warning, native frames
    only, the program's output unchanged, never a crash."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        cmd = [py, "-c", "import json; x=[str(i) for i in range(50000)]; print(len(json.dumps(x)))"]
        bare = run(cmd, preload=False)
        r = run(cmd, env={"MEMTRACE_PYTHON_SKEW": "8"}, dump_dir=d)
        eq((r.returncode, r.stdout), (bare.returncode, bare.stdout), f"{name}: output")
        warn = [l for l in r.stderr.decode().splitlines() if l.startswith("memtrace[")]
        eq(len(warn), 1, f"{name}: one warning: {warn}")
        check("is not the one memtrace knows" in warn[0] and "native frames only" in warn[0],
              f"{name}: the warning says why: {warn}")
        js = show_json(snaps(d)[-1])
        check(js["stats"] and all(s["kind"] == "native" for s in js["stats"]),
              f"{name}: native frames only")
        shutil.rmtree(d)


if __name__ == "__main__":
    sys.exit(base.main(globals()))
