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
import struct
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib as base  # noqa: E402
from mtlib import Fail, check, eq, run, show_json, snaps, tool, LIB  # noqa: E402
CASE_SUITE = "python"
CASE_TIMEOUT = 600

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
# body, module top level, a lambda, coroutines run as asyncio tasks. Under tracemalloc it writes tracemalloc's view;
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
lam = (lambda n: [bytes(90) for _ in range(n)])(1000)  # @lambda

import asyncio
async def coro(n):
    await asyncio.sleep(0)
    return [bytearray(150) for _ in range(n)]  # @coro
async def main():
    return await asyncio.gather(coro(500), coro(500))
cor = asyncio.run(main())

if tracemalloc.is_tracing():
    snap = tracemalloc.take_snapshot()
    with open(sys.argv[1], "w") as f:
        json.dump([[s.traceback[0].filename, s.traceback[0].lineno, s.size, s.count]
                   for s in snap.statistics("lineno")], f)
else:
    snapshot_now()
'''


# Every script asks for its snapshots one way: SIGUSR1, then a wait until
# this process has written its next one (renamed into place, complete).
SNAPSHOT_NOW = r'''
import os as _os, signal as _signal, time as _time
def _snapshots_written(d, pid):
    n = 0
    for f in _os.listdir(d):
        if f.startswith("memtrace.%d." % pid) and f.endswith(".snap"):
            n += 1
    return n
def snapshot_now():
    d, pid = _os.environ["MEMTRACE_DIR"], _os.getpid()
    want = _snapshots_written(d, pid) + 1
    _os.kill(pid, _signal.SIGUSR1)
    for _ in range(1000):
        if _snapshots_written(d, pid) >= want:
            break
        _time.sleep(0.01)
    _time.sleep(0.05)
'''


def script(d, name, text):
    """Writes a test script, snapshot_now() defined at its top."""
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(SNAPSHOT_NOW + text)
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


def snapshot_of(py, d, name, text, env):
    """Writes a script into d and runs it under memtrace: (its path, the one
    snapshot it asked for)."""
    path = script(d, name, text)
    snapd = os.path.join(d, "snaps")
    os.mkdir(snapd)
    return path, under_memtrace(py, path, env, snapd)


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
# 3,000 functions that stay alive, each recorded once: the code table grows
# (its buckets double from 512) with the entries live across it
live = []
for k in range(3000):
    ns = {}
    exec(compile("def g%d(n):\n    return [bytes(%d) for _ in range(n)]\n" % (k, 50 + k % 3),
                 "<live%d>" % k, "exec"), ns)
    live.append(ns["g%d" % k])
    kept.append(live[-1](2))
for k in range(400):
    ns = {}
    src = "def f%d(n):\n    return [bytes(%d) for _ in range(n)]\n" % (k, 40 + k % 3)
    exec(compile(src, "<gen%d>" % k, "exec"), ns)
    kept.append(ns["f%d" % k](5))
    del ns
    gc.collect()
    kept.append(long_lived(5))
snapshot_now()
'''


def case_python_code_reuse():
    """Functions compiled and dropped in a loop, their code objects' memory
    reused, next to a long-lived one and 3,000 live ones made before them
    (the code table grown meanwhile): every line names its own function."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path, snap = snapshot_of(py, d, "reuse.py", CODE_REUSE, {})
        js = show_json(snap, "--group-by", "traceback")
        line = tags(path)["longlived"]
        seen, live = 0, set()
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
                g = re.match(r"<live(\d+)>$", file)
                if g:
                    k = g.group(1)
                    if func == "<module>":  # the def itself
                        check(ln == 1, f"{name}: <live{k}> shows {f}")
                        continue
                    check(ln == 2 and re.match(rf"(g{k}(\.<locals>)?\.)?(<listcomp>|g{k})$", func),
                          f"{name}: <live{k}> shows {f}")
                    live.add(k)
                if file == path and func in ("long_lived", "<listcomp>",
                                             "long_lived.<locals>.<listcomp>"):
                    eq(ln, line, f"{name}: the long-lived function's line: {f}")
        check(seen >= 400, f"{name}: frames of the generated functions: {seen}")
        eq(len(live), 3000, f"{name}: the live functions seen")
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


PROBE = r"""
#define Py_BUILD_CORE 1
#include <Python.h>
#include <stddef.h>
#include <stdio.h>
#if PY_VERSION_HEX >= 0x030b0000
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#endif
#include "frameobject.h"
#define P(name, expr) printf("%s %ld\n", name, (long)(expr))
int main(void)
{
#if PY_VERSION_HEX < 0x030b0000
	P("ts", offsetof(PyThreadState, frame));
	P("cf", -1);
	P("code", offsetof(PyFrameObject, f_code));
	P("back", offsetof(PyFrameObject, f_back));
	P("pos", offsetof(PyFrameObject, f_lasti));
	P("entry", -1);
	P("owner", -1);
	P("ccode", -1);
	P("ftr", -1);
#else
#if PY_VERSION_HEX < 0x030d0000
	P("ts", offsetof(PyThreadState, cframe));
	P("cf", offsetof(_PyCFrame, current_frame));
	P("code", offsetof(_PyInterpreterFrame, f_code));
	P("pos", offsetof(_PyInterpreterFrame, prev_instr));
#else
	P("ts", offsetof(PyThreadState, current_frame));
	P("cf", -1);
	P("code", offsetof(_PyInterpreterFrame, f_executable));
	P("pos", offsetof(_PyInterpreterFrame, instr_ptr));
#endif
	P("back", offsetof(_PyInterpreterFrame, previous));
#if PY_VERSION_HEX < 0x030c0000
	P("entry", offsetof(_PyInterpreterFrame, is_entry));
#else
	P("entry", -1);
#endif
	P("owner", offsetof(_PyInterpreterFrame, owner));
	P("ccode", offsetof(PyCodeObject, co_code_adaptive));
	P("ftr", offsetof(PyCodeObject, _co_firsttraceable));
#endif
	P("tid", offsetof(PyThreadState, thread_id));
	P("file", offsetof(PyCodeObject, co_filename));
#if PY_VERSION_HEX >= 0x030b0000
	P("name", offsetof(PyCodeObject, co_qualname));
	P("table", offsetof(PyCodeObject, co_linetable));
#elif PY_VERSION_HEX >= 0x030a0000
	P("name", offsetof(PyCodeObject, co_name));
	P("table", offsetof(PyCodeObject, co_linetable));
#else
	P("name", offsetof(PyCodeObject, co_name));
	P("table", offsetof(PyCodeObject, co_lnotab));
#endif
	P("first", offsetof(PyCodeObject, co_firstlineno));
	P("sa", sizeof(PyASCIIObject));
	P("sc", sizeof(PyCompactUnicodeObject));
	P("tp_dealloc", offsetof(PyTypeObject, tp_dealloc));
	P("ob_type", offsetof(PyObject, ob_type));
	P("bytes_data", offsetof(PyBytesObject, ob_sval));
	return 0;
}
"""


def case_python_layout():
    """The layout table in src/python.c equals what each version's own
    headers say (every pyenv build here has them, internal ones included)."""
    with open(os.path.join(base.SRC, "src", "python.c")) as f:
        src = f.read()
    table = src[src.index("#define MT_PY_LAYOUTS(X)"):src.index("static const struct layout")]
    table = re.sub(r"/\*.*?\*/", "", table, flags=re.S).replace("\\\n", " ")
    rows = {}
    for m in re.finditer(r"X\((\d+),([^)]*)\)", table):
        rows[int(m.group(1))] = [v.strip() for v in m.group(2).split(",")]
    eq(sorted(rows), [8, 9, 10, 11, 12, 13], f"layout rows parsed from src/python.c: {rows}")
    names = ["ts", "cf", "tid", "code", "back", "pos", "kind", "entry", "owner", "file", "name",
             "table", "first", "ccode", "ftr", "lines", "sa", "sc"]
    d = tempfile.mkdtemp(prefix="mt-py-")
    probe = os.path.join(d, "probe.c")  # C: not a script, no snapshot_now()
    with open(probe, "w") as f:
        f.write(PROBE)
    checked = 0
    for name, py in interpreters():
        if not name.startswith("pyenv-"):
            continue  # Debian's has no headers: its layout is checked at run time
        minor = int(name.rsplit(".", 1)[1])
        inc = glob.glob(os.path.join(os.path.dirname(os.path.dirname(py)), "include",
                                     f"python3.{minor}*"))
        check(inc, f"{name}: headers")
        exe = os.path.join(d, f"probe{minor}")
        r = subprocess.run(["gcc", f"-I{inc[0]}", f"-I{inc[0]}/internal", probe, "-o", exe],
                           capture_output=True, text=True)
        eq(r.returncode, 0, f"{name}: probe builds: {r.stderr[-500:]}")
        got = dict(l.split() for l in subprocess.run([exe], capture_output=True,
                                                     text=True).stdout.splitlines())
        row = dict(zip(names, rows[minor]))
        for k in ("ts", "cf", "tid", "code", "back", "pos", "entry", "owner", "file", "name",
                  "table", "first", "ccode", "ftr", "sa", "sc"):
            eq(int(row[k]), int(got[k]), f"3.{minor}: {k} in src/python.c against the headers")
        for k, want in (("tp_dealloc", 48), ("ob_type", 8), ("bytes_data", 32)):
            eq(int(got[k]), want, f"3.{minor}: {k}")
        checked += 1
    check(checked, "a pyenv build with headers")
    shutil.rmtree(d)


THREADS = r'''
import concurrent.futures, multiprocessing, os, signal, sys, threading, time, _thread

keep = []
def in_thread():
    keep.append([bytearray(100) for _ in range(1000)])  # @thread
def in_pool(k):
    return [bytearray(300) for _ in range(500)]  # @pool
done = threading.Event()
def raw_thread():
    keep.append([bytearray(500) for _ in range(200)])  # @rawthread
    done.set()
def from_c(arg):
    keep.append([bytearray(900) for _ in range(100)])  # @cthread
    return 0
def c_thread():
    # a thread pthread_create starts in C, calling into Python (ctypes
    # takes a thread state for it with PyGILState_Ensure)
    import ctypes
    libc = ctypes.CDLL(None)
    CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
    cb = CB(from_c)
    tid = ctypes.c_ulong()
    libc.pthread_create.argtypes = [ctypes.POINTER(ctypes.c_ulong), ctypes.c_void_p, CB,
                                    ctypes.c_void_p]
    assert libc.pthread_create(ctypes.byref(tid), None, cb, None) == 0
    libc.pthread_join.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    assert libc.pthread_join(tid, None) == 0
def child():
    data = [bytearray(700) for _ in range(300)]  # @child
    snapshot_now()

if __name__ == "__main__":
    t = threading.Thread(target=in_thread)
    t.start(); t.join()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        keep.extend(ex.map(in_pool, range(4)))
    _thread.start_new_thread(raw_thread, ())
    done.wait()
    c_thread()
    for method in ("fork", "spawn"):
        p = multiprocessing.get_context(method).Process(target=child)
        p.start(); p.join()
        assert p.exitcode == 0, p.exitcode
    snapshot_now()
'''


def case_python_threads():
    """Each thread's own Python stack: threading, a thread pool, a thread
    started by _thread, one started in C (pthread_create) that calls into
    Python; multiprocessing children (fork and spawn) profiled
    like their parent."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "threads.py", THREADS)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        r = run([py, path], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
        eq(r.returncode, 0, f"{name}: {r.stderr[-800:]!r}")
        t = tags(path, "@")
        by_pid = {}
        for f in snaps(snapd):
            by_pid.setdefault(int(f.split(".")[-3]), []).append(f)
        eq(len(by_pid), 3, f"{name}: the parent and two children wrote snapshots: {by_pid}")
        sizes = {}
        for pid, fs in by_pid.items():
            for s in show_json(fs[-1])["stats"]:
                if s["file"] == path:
                    sizes.setdefault(s["line"], []).append((s["size"], s["count"]))
        for tag, size, count in (("thread", 100, 1000), ("pool", 300, 2000),
                                 ("rawthread", 500, 200), ("cthread", 900, 100)):
            got = sizes.get(t[tag], [])
            check(any(c >= count and sz >= size * count for sz, c in got),
                  f"{name}: {tag} at line {t[tag]}: {got}")
        got = sizes.get(t["child"], [])
        eq(len([1 for sz, c in got if c >= 300 and sz >= 700 * 300]), 2,
           f"{name}: both children show their line {t['child']}: {got}")
        shutil.rmtree(d)


EVAL_END = r'''
import ctypes
keep = []
for i in range(300):
    keep.append(bytearray(1111))  # @onerun
class Item:
    def __init__(self):
        self.buf = bytearray(3333)  # @init
items = [Item() for i in range(40)]
libc = ctypes.CDLL(None)
CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
def cmp(a, b):
    for i in range(50):
        keep.append(bytearray(2222))  # @tworuns
    return 0
cb = CMP(cmp)
pair = (ctypes.c_int * 2)(2, 1)
libc.qsort(pair, 2, ctypes.sizeof(ctypes.c_int), cb)  # =qsort
snapshot_now()
'''


def case_python_eval_end():
    """The native stack of a Python allocation ends at the eval-loop frame
    of its outermost run of Python frames (the interpreter's start-up beyond
    it is not walked): one eval-loop frame for a stack of one run, as many as
    the Python frames say entered the eval loop from C for every site whose
    Python walk was complete; a callback that C code outside the interpreter
    (ctypes, libffi, libc's qsort) called keeps the native frames beyond its
    run's eval frame, and the traceback shows them between the callback's
    line and its caller's. On every interpreter present."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path, snap = snapshot_of(py, d, "evalend.py", EVAL_END, {})
        recs = [json.loads(l) for l in tool("dump", snap).stdout.splitlines()]
        ev = [r for r in recs if r["record"] == "PYTHON"]
        eq(len(ev), 1, f"{name}: one PYTHON record")
        lo, hi = ev[0]["eval_lo"], ev[0]["eval_hi"]
        check(0 < lo < hi, f"{name}: the eval loop's range is known: {ev[0]}")

        def site(size, count):
            """The native frames of the site holding count blocks of size."""
            hits = [r for r in recs if r["record"] == "SITE" and r["domain"] == 0 and
                    r["counters"][1] == count and r["counters"][0] == size * count]
            eq(len(hits), 1, f"{name}: one site of {count} blocks of {size} B")
            return [f for f in hits[0]["frames"] if not f >> 63]

        one = site(1112, 300)
        evals = [i for i, f in enumerate(one) if lo < f <= hi]
        eq(evals, [len(one) - 1], f"{name}: one run: the native stack ends at its eval-loop "
           f"frame, the only one: {[hex(f) for f in one]}")
        # every site: as many eval-loop frames as runs, the last one last
        depth, seen = 16, 0
        for r in recs:
            if r["record"] != "SITE":
                continue
            py = [f for f in r["frames"] if f >> 63]
            nat = [f for f in r["frames"] if not f >> 63]
            if not py or len(py) >= depth or not py[-1] >> 58 & 1 or len(nat) >= depth:
                continue
            runs = sum(f >> 58 & 1 for f in py)
            evals = [i for i, f in enumerate(nat) if lo < f <= hi]
            eq((len(evals), evals[-1] if evals else None), (runs, len(nat) - 1),
               f"{name}: site {r['id']}: {runs} runs, native {[hex(f) for f in nat]}")
            seen += runs > 1
        check(seen, f"{name}: a site of more than one run was checked")
        two = site(2223, 50)
        evals = [i for i, f in enumerate(two) if lo < f <= hi]
        check(evals and evals[0] < len(two) - 1,
              f"{name}: two runs: the walk goes on past the callback's eval-loop frame: "
              f"{[hex(f) for f in two]}")
        t = tags(path)
        tb = [s["traceback"] for s in show_json(snap, "--group-by", "traceback")["stats"]
              if s["line"] == t["tworuns"]]
        check(tb, f"{name}: the callback's line {t['tworuns']} in the traceback view")
        tb = tb[0]
        inner = tb.index(f"{path}:{t['tworuns']} in cmp")
        outer = tb.index(f"{path}:{t['qsort']} in <module>")
        between = tb[inner + 1:outer]
        check(between and not any(f.startswith(path) for f in between),
              f"{name}: native frames between the callback and its caller: {tb}")
        shutil.rmtree(d)


NUMPY = r'''
import os, signal, time
import numpy as np


a = np.zeros(10**6)  # @zeros
snapshot_now()
'''


def case_python_numpy():
    """np.zeros(10**6) shows at its line, numpy's native frames in the
    traceback (Debian's python3-numpy)."""
    py = "/usr/bin/python3.11"
    r = subprocess.run([py, "-c", "import numpy"], capture_output=True)
    check(r.returncode == 0, "python3-numpy is installed (tools/dev.sh test installs it)")
    d = tempfile.mkdtemp(prefix="mt-py-")
    path, snap = snapshot_of(py, d, "np.py", NUMPY, {})
    line = tags(path)["zeros"]
    top = show_json(snap)["stats"][0]
    eq((top["file"], top["line"], top["kind"]), (path, line, "python"), f"the biggest: {top}")
    check(8000000 <= top["size"] < 8100000, f"its size: {top['size']}")
    tb = show_json(snap, "--group-by", "traceback")["stats"][0]["traceback"]
    i = tb.index(f"{path}:{line} in <module>")
    check(tb[:i] and all(f.startswith("_multiarray_umath.") for f in tb[:i]),
          f"numpy's native frames, and only they, below the line: {tb}")
    native = show_json(snap, "--native")["stats"][0]
    eq(native["kind"], "native", f"--native groups by native frames: {native}")
    shutil.rmtree(d)


SERVICE = r'''
import concurrent.futures, os, signal, time
cache = {}
def handle(req):
    scratch = [str(req) * 10 for _ in range(50)]
    if req not in cache:
        cache[req] = bytearray(2000)  # @cache
    return len(scratch)
req = 0
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    for round in range(5):
        list(pool.map(handle, range(req, req + 2000)))
        req += 2000
        snapshot_now()
'''


def case_python_service():
    """A thread pool serving requests with a cache that never evicts:
    diff and growth over SIGUSR1 snapshots put the cache's line first,
    steady."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "service.py", SERVICE)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        r = run([py, path], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
        eq(r.returncode, 0, f"{name}: {r.stderr[-800:]!r}")
        files = snaps(snapd)
        eq(len(files), 5, f"{name}: five snapshots")
        line = tags(path)["cache"]
        out = tool("diff", files[0], files[-1]).stdout
        lines = out.splitlines()
        first = lines[next(i for i, l in enumerate(lines) if l.startswith("Top ")) + 1]
        check(first.startswith(f"{path}:{line}: size="), f"{name}: diff's first line: {out}")
        g = json.loads(tool("growth", "--json", *files).stdout)
        top = g["suspects"][0]
        eq((top["file"], top["line"], top["trend"]), (path, line, "steady"),
           f"{name}: growth's first suspect: {top}")
        shutil.rmtree(d)


def records(data):
    """(type, offset, body) of every record of a snapshot."""
    out, at = [], 16
    while at < len(data):
        t, _, n = struct.unpack_from("<HHI", data, at)
        out.append((t, at, data[at + 8:at + 8 + n]))
        at += 8 + n
    return out


def format_version():
    """The format's major and minor version, as src/format.h defines them."""
    with open(os.path.join(base.SRC, "src", "format.h")) as f:
        h = f.read()
    return tuple(int(re.search(rf"#define MT_FORMAT_{k} (\d+)", h).group(1))
                 for k in ("MAJOR", "MINOR"))


def rebuild(recs):
    """A snapshot from records (the END one rewritten: size and checksum)."""
    head = b"MEMTRACE" + struct.pack("<HHI", *format_version(), 0)
    body = b"".join(struct.pack("<HHI", t, 0, len(b)) + b for t, _, b in recs if t != 0xffff)
    size = len(head) + len(body) + 8 + 16
    pre = head + body + struct.pack("<HHI", 0xffff, 0, 16) + struct.pack("<Q", size)
    return pre + struct.pack("<II", zlib.crc32(pre), 0x4e45544d)


def case_python_bad_input():
    """A damaged CODE record, and a frame naming a code with no record: one
    line naming the file, offset and reason, exit 2. A script deleted since
    still shows its file:line (the analyzer never reads the .py)."""
    py = "/usr/bin/python3.11"
    d = tempfile.mkdtemp(prefix="mt-py-")
    path = script(d, "lines.py", LINES)
    line = tags(path)["blobs"]
    snapd = os.path.join(d, "snaps")
    os.mkdir(snapd)
    snap = under_memtrace(py, path, {}, snapd)
    os.unlink(path)
    js = show_json(snap)
    check(any(s["file"] == path and s["line"] == line for s in js["stats"]),
          "the deleted script's lines still show")
    data = open(snap, "rb").read()
    eq(rebuild(records(data)), data, "the test's own writer reproduces the file")
    recs = records(data)
    codes = [r for r in recs if r[0] == 7]
    check(codes, "CODE records")
    t, off, b = codes[0]
    # a bad line-table kind
    bad = [(t2, o2, (b2[:8] + b"\x09" + b2[9:]) if o2 == off else b2) for t2, o2, b2 in recs]
    out = os.path.join(d, "bad-kind.snap")
    open(out, "wb").write(rebuild(bad))
    r = tool("show", out, check_rc=2)
    eq(r.stderr.strip(), f"memtrace: {out}: offset {off + 8 + 8}: CODE record "
       f"{struct.unpack_from('<I', b)[0]}: unknown line-table kind 9", "bad kind")
    # a string that runs past its record
    cut = [(t2, o2, b2[:14] if o2 == off else b2) for t2, o2, b2 in recs]
    out = os.path.join(d, "cut.snap")
    open(out, "wb").write(rebuild(cut))
    r = tool("show", out, check_rc=2)
    eq(r.stderr.strip(), f"memtrace: {out}: offset {off + 8 + 9}: CODE record of 14 bytes: its file "
       "field runs past the record", "a cut CODE record")
    # every CODE record gone: a Python frame names a missing code
    out = os.path.join(d, "gone.snap")
    open(out, "wb").write(rebuild([r for r in recs if r[0] != 7]))
    r = tool("show", out, check_rc=2)
    check(re.fullmatch(rf"memtrace: {re.escape(out)}: offset \d+: site \d+: frame \d+ names code "
                       r"\d+, which has no CODE record", r.stderr.strip()),
          f"a missing code: {r.stderr}")
    shutil.rmtree(d)


def case_python_export():
    """pprof (go tool pprof -top shows the Python lines), collapsed stacks
    (`make_items (lines.py:12)`) and JSON carry the Python frames."""
    py = "/usr/bin/python3.11"
    d = tempfile.mkdtemp(prefix="mt-py-")
    path, snap = snapshot_of(py, d, "lines.py", LINES, {})
    t = tags(path)
    js = {(s["file"], s["line"]): s for s in show_json(snap)["stats"]}
    want_size = js[(path, t["bytearray"])]["size"]
    pb = base.export_pprof(snap)
    rows = base.pprof_top("-lines", "-sample_index=inuse_space", pb)
    key = f"Item.__init__ {path}:{t['bytearray']}"
    eq(rows.get(key, (0, 0))[0], want_size, f"pprof -top -lines: {rows}")
    rows = base.pprof_top("-sample_index=inuse_space", pb)
    check("make_items" in rows and "level3.<locals>.<listcomp>" in rows, f"pprof -top: {rows}")
    col = base.export(snap, "--format", "collapsed").stdout.decode()
    want = f"Item.__init__ (lines.py:{t['bytearray']})"
    leaf = [l for l in col.splitlines() if l.rsplit(" ", 1)[0].endswith(want)]
    eq(sum(int(l.rsplit(" ", 1)[1]) for l in leaf), want_size,
       f"collapsed stacks ending at {want}")
    check(any(f"make_items (lines.py:{t['items']});{want}" in l for l in leaf), f"{leaf[:3]}")
    text = base.export(snap, "--format", "json").stdout.decode()
    check(json.dumps(path) in text and "make_items" in text, "the JSON export names Python frames")
    shutil.rmtree(d)


TYPES = r'''
import collections, gc, json, os, signal, sys, time
class SomeClass:
    def __init__(self, i):
        self.i = i
        self.peer = None
class Other:
    __slots__ = ("x",)
    def __init__(self, x):
        self.x = x
sys.path.append("/usr/lib/python3/dist-packages")  # Debian's python3-objgraph
import objgraph
def typestats():
    return objgraph.typestats(shortnames=False)
kept, others, oracle = [], [], []
time.sleep(0.05)  # memtrace's domain wrappers in place (the first milliseconds)
for step in range(3):
    for i in range(20000 * (step + 1)):
        a, b = SomeClass(i), SomeClass(i)  # @some
        a.peer, b.peer = b, a
        kept.append(a)
    others.extend(Other(i) for i in range(1000))
    t = typestats()
    grew = dict((n, d) for n, _, d in objgraph.growth(limit=None, shortnames=False))
    oracle.append({k: t["__main__." + k] for k in ("SomeClass", "Other")})
    oracle[-1].update({"+" + k: grew.get("__main__." + k, 0) for k in ("SomeClass", "Other")})
    snapshot_now()
with open(sys.argv[1], "w") as f:
    json.dump(oracle, f)
'''


def case_python_types():
    """show -g type counts SomeClass exactly as objgraph (Debian's
    python3-objgraph) does in the same process at the same moment, growth -g
    type gives exactly its show_growth increments, and --include-type names the line that
    allocates them; on every interpreter, with and without
    PYTHONMALLOC=malloc."""
    for name, py in interpreters():
        for mode, env in (("pymalloc", {}), ("malloc", {"PYTHONMALLOC": "malloc"})):
            d = tempfile.mkdtemp(prefix="mt-py-")
            path = script(d, "census.py", TYPES)
            snapd = os.path.join(d, "snaps")
            os.mkdir(snapd)
            out = os.path.join(d, "oracle.json")
            r = run([py, path, out], env=dict(env, MEMTRACE_AT_EXIT="0"), dump_dir=snapd)
            eq(r.returncode, 0, f"{name} {mode}: {r.stderr[-800:]!r}")
            oracle = json.load(open(out))
            files = snaps(snapd)
            eq(len(files), 3, f"{name} {mode}: three snapshots")
            for i, f in enumerate(files):
                js = show_json(f, "--group-by", "type")
                eq(js["python"]["census"], "taken", f"{name} {mode}: the census")
                got = {s["key"]: s["count"] for s in js["stats"]}
                for t in ("SomeClass", "Other"):
                    eq(got.get("__main__." + t), oracle[i][t],
                       f"{name} {mode}: {t} in snapshot {i + 1}")
            # show_growth's increments (a dict per instance up to 3.10 grows
            # as much: the ranking is by growth, as objgraph's)
            g = json.loads(tool("growth", "--json", "-g", "type", "-n", "0", *files).stdout)
            by = {x["key"].replace("__main__.", ""): x for x in g["suspects"]}
            for t in ("SomeClass", "Other"):
                eq((by[t]["count_diff"], by[t]["trend"]),
                   (oracle[1]["+" + t] + oracle[2]["+" + t], "steady"),
                   f"{name} {mode}: growth of {t} (objgraph's show_growth increments)")
            check(g["suspects"][0]["key"] in ("__main__.SomeClass", "builtins.dict"),
                  f"{name} {mode}: growth's first: {g['suspects'][0]}")
            diff = tool("diff", "-g", "type", files[1], files[2]).stdout
            want = oracle[2]["SomeClass"] - oracle[1]["SomeClass"]
            check(re.search(rf"^__main__\.SomeClass: size=.*, count={oracle[2]['SomeClass']} \(\+{want}\)",
                            diff, re.M), f"{name} {mode}: diff -g type: {diff}")
            if mode == "pymalloc":
                # the report's types table: the same counts, growth's order
                page = tool("report", "-o", "-", *files).stdout
                types = {t[0]: t for t in base.page_data(page)["types"]}
                eq((types["__main__.SomeClass"][2], types["__main__.SomeClass"][3]),
                   ([o["SomeClass"] for o in oracle], "steady"), f"{name}: the report's types")
            # objgraph's formats: most common first, and show_growth's line
            text = tool("show", "-g", "type", files[2]).stdout
            check(re.search(rf"^__main__\.SomeClass +{oracle[2]['SomeClass']}  [0-9.]+ [KMG]iB$",
                            text, re.M),
                  f"{name} {mode}: show -g type: {text}")
            text = tool("growth", "-g", "type", "-n", "0", *files).stdout
            inc = oracle[2]["SomeClass"] - oracle[0]["SomeClass"]
            check(re.search(rf"^#\d+ __main__\.SomeClass +{oracle[2]['SomeClass']} +\+{inc}  \(",
                            text, re.M),
                  f"{name} {mode}: growth -g type: {text}")
            js = show_json(files[2], "--include-type", "*.SomeClass")
            line = tags(path)["some"]
            top = js["stats"][0]
            eq((top["file"], top["line"], top["count"]), (path, line, oracle[2]["SomeClass"]),
               f"{name} {mode}: --include-type SomeClass: the line that makes them")
            shutil.rmtree(d)


STORM = r'''
import os, signal, threading, time
class Kept:
    pass
time.sleep(0.05)  # memtrace's domain wrappers in place (the first milliseconds)
kept = [Kept() for _ in range(5000)]
stop = False
def churn():
    while not stop:
        junk = [Kept() for _ in range(2000)]
        junk = {i: str(i) for i in range(500)}
        del junk
t = threading.Thread(target=churn)
t.start()
for k in range(25):
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(0.03)
time.sleep(0.5)
stop = True
t.join()
'''


def case_python_types_storm():
    """A thread creating and freeing objects while snapshots come in a
    storm: no crash, the program's output and status unchanged, and every
    census that was taken counts at least the 5000 objects kept."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "storm.py", STORM)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        r = run([py, path], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
        eq(r.returncode, 0, f"{name}: {r.stderr[-800:]!r}")
        files = snaps(snapd)
        check(len(files) >= 5, f"{name}: snapshots in the storm: {len(files)}")
        taken = 0
        for f in files:
            js = show_json(f, "--group-by", "type")
            if js["python"]["census"] != "taken":
                continue
            taken += 1
            got = {s["key"]: s["count"] for s in js["stats"]}
            check(got.get("__main__.Kept", 0) >= 5000, f"{name}: Kept in {f}: {got}")
        check(taken >= len(files) // 2, f"{name}: censuses taken: {taken} of {len(files)}")
        shutil.rmtree(d)


API = r'''
import ctypes, os, sys, time
class SomeClass:
    pass
time.sleep(0.05)
kept = [SomeClass() for _ in range(3000)]
for loader in (ctypes.PyDLL, ctypes.CDLL):
    f = loader(sys.argv[1]).mt_snapshot
    f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    t = time.monotonic()
    assert f(None, 0) == 0
    print(round(time.monotonic() - t, 3))
'''


def case_python_types_api():
    """mt_snapshot() from Python: through ctypes.PyDLL (the GIL held) the
    census runs in the calling thread; through ctypes.CDLL from the main
    thread (the GIL released, the main thread in C) the snapshot comes at
    once, saying it has no census, rather than waiting for a pending call
    that cannot run."""
    py = "/usr/bin/python3.11"
    d = tempfile.mkdtemp(prefix="mt-py-")
    path = script(d, "api.py", API)
    snapd = os.path.join(d, "snaps")
    os.mkdir(snapd)
    r = run([py, path, LIB], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
    eq(r.returncode, 0, f"{r.stderr[-800:]!r}")
    took = [float(x) for x in r.stdout.split()]
    check(took[1] < 0.3, f"the CDLL call did not wait for the census: {took}")
    a, b = snaps(snapd)
    ja, jb = show_json(a, "--group-by", "type"), show_json(b, "--group-by", "type")
    eq((ja["python"]["census"],
        {s["key"]: s["count"] for s in ja["stats"]}.get("__main__.SomeClass")),
       ("taken", 3000), "PyDLL: the census, in the calling thread")
    eq((jb["python"]["census"], jb["stats"]), ("late", []), "CDLL: no census")
    r = tool("show", "-g", "type", b)
    check("has no census of Python objects (the main thread ran no Python code" in r.stderr,
          f"-g type says why: {r.stderr}")
    shutil.rmtree(d)



AT_EXIT = r'''
import atexit, threading, time
class Held:
    pass
time.sleep(0.05)
held = [Held() for _ in range(4000)]  # @held
stop, parked = threading.Event(), threading.Semaphore(0)
def spin():
    while not stop.is_set():
        junk = [str(i) for i in range(100)]
        b = bytearray(5000)
    parked.release()
    threading.Event().wait()  # parked for good, without the GIL
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
def own():
    stop.set()
    for _ in range(4):
        parked.acquire()
    print("program's own atexit ran")
atexit.register(own)
time.sleep(0.05)
'''


def case_python_at_exit():
    """The at-exit snapshot is taken from Python's atexit, after the
    program's own handlers and before the interpreter is finalised: it
    holds the program's objects and their census (one written after
    Py_Finalize holds none), with daemon threads alive.

    The program parks its daemon threads in its own atexit handler:
    CPython 3.10 itself crashes (SIGSEGV in take_gil, on the freed
    interpreter) when daemon threads wait for the GIL and anything delays
    the exit by 5 ms after finalisation; bare, with a 50 ms C atexit
    handler, 20 runs in 20 crashed, and a loaded CI machine did it once
    to this case by preemption alone. memtrace writes nothing after
    finalisation, which this case checks by the census."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "atexit_.py", AT_EXIT)
        line = tags(path)["held"]
        for k in range(2):
            snapd = os.path.join(d, f"snaps{k}")
            os.mkdir(snapd)
            r = run([py, path], dump_dir=snapd)
            eq((r.returncode, r.stdout), (0, b"program's own atexit ran\n"),
               f"{name}: run {k}: {r.stderr[-500:]!r}")
        f = snaps(snapd)
        eq(len(f), 1, f"{name}: the at-exit snapshot")
        js = show_json(f[0], "--group-by", "type")
        eq((js["reason"], js["python"]["census"]), ("at exit", "taken"), f"{name}: {js['python']}")
        got = {s["key"]: s["count"] for s in js["stats"]}
        eq(got.get("__main__.Held"), 4000, f"{name}: the program's objects at exit")
        lines = {(s["file"], s["line"]): s["count"] for s in show_json(f[0])["stats"]}
        check(lines.get((path, line), 0) >= 4000, f"{name}: line {line} at exit")
        shutil.rmtree(d)



WORDS = r'''
import struct
# objects whose words look like pointers near 2**64 (negative numbers):
# the census reads each object's candidate type words
bufs = [bytearray(struct.pack("<8Q", *([0xFFFFFFFFFFFFFF78] * 8))) for _ in range(1000)]  # @words
snapshot_now()
print("ok")
'''


def case_python_census_words():
    """The census reads a word of every live object as a candidate type: a
    word near 2**64 (a negative number) once wrapped around the bounds check
    and was dereferenced (SIGSEGV, seen in CI in python-types and
    python-at-exit). Now the process runs on and the census is taken."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "words.py", WORDS)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        r = run([py, path], env={"MEMTRACE_AT_EXIT": "0"}, dump_dir=snapd)
        eq((r.returncode, r.stdout), (0, b"ok\n"), f"{name}: {r.stderr[-300:]!r}")
        js = show_json(snaps(snapd)[0], "--group-by", "type")
        eq(js["python"]["census"], "taken", f"{name}: the census")
        shutil.rmtree(d)


LEAKS = r'''
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
cache = [bytearray(3000) for _ in range(100)]  # @cache
class Node:
    def __init__(self):
        self.other = None
def cycle():
    a, b = Node(), Node()  # @cycle
    a.other, b.other = b, a
def lose():
    for _ in range(100):
        libc.malloc(5000)  # @lost
class Session:
    def __init__(self, i):
        self.id = i
        self.payload = bytearray(700)  # @payload
sessions = {i: Session(i) for i in range(300)}  # @sessions
import gc
gc.disable()
for _ in range(100):
    cycle()
lose()
'''


def case_python_leaks():
    """The leak scan in a Python program: the interpreter's state, a cache
    and uncollected reference cycles are not lost (the at-exit snapshot is
    taken before finalisation; the collector's lists hold the cycles); the
    C-level leak (malloc through ctypes, the address dropped) is, at the
    Python line that made it: all of the 100 blocks but the few whose
    address a stale word of the interpreter's C stack still holds (a scan
    cannot tell those from pointers, memcheck skips them as undefined).
    A cache of instances holding bytearrays is still reachable, not
    "possibly lost": CPython points past the collector's header and the
    managed dict's words, and into the attribute values after their
    prefix (without its rules: 17 MiB of a 30,000-entry cache possibly
    lost, and the whole of this one)."""
    for name, py in interpreters():
        d = tempfile.mkdtemp(prefix="mt-py-")
        path = script(d, "leaks.py", LEAKS)
        t = tags(path)
        snapd = os.path.join(d, "snaps")
        os.mkdir(snapd)
        r = run([py, path], dump_dir=snapd)
        eq(r.returncode, 0, f"{name}: {r.stderr[-500:]!r}")
        f = snaps(snapd)
        eq(len(f), 1, f"{name}: the at-exit snapshot")
        js = json.loads(tool("leaks", "--json", "-n", "0", "--no-builtin", f[0]).stdout)
        eq(js["scan"]["status"], "done", f"{name}: {js['scan']}")
        lost = js["classes"]["definite"]
        eq((lost["bytes"], js["classes"]["indirect"]), (lost["blocks"] * 5000, {"bytes": 0, "blocks": 0}),
           f"{name}: lost: malloc(5000) blocks and nothing else")
        check(95 <= lost["blocks"] <= 100, f"{name}: lost: {lost['blocks']} of the 100 blocks")
        where = [l for l in js["leaks"] if l["class"] == "definite"]
        check(all(any(x.startswith(f"{path}:{t['lost']} ") for x in l["traceback"]) for l in where),
              f"{name}: the lost blocks name line {t['lost']}: {where}")
        js = json.loads(tool("leaks", "--json", "-n", "0", "--no-builtin", "--show", "all",
                             f[0]).stdout)

        def at(tag, cls):
            return sum(l["count"] for l in js["leaks"] if l["class"] == cls and
                       any(x.startswith(f"{path}:{t[tag]} ") for x in l["traceback"]))
        for tag in ("cache", "cycle", "payload", "sessions"):
            eq(at(tag, "possible") + at(tag, "definite") + at(tag, "indirect"), 0,
               f"{name}: nothing at @{tag} lost or possibly lost")
        # each Session: its bytearray and buffer, and (by version) the
        # instance, its attribute values, its dict
        check(at("payload", "reachable") >= 600,
              f"{name}: the bytearrays still reachable: {at('payload', 'reachable')}")
        check(js["classes"]["possible"]["bytes"] < 64 * 1024,
              f"{name}: possibly lost: {js['classes']['possible']}")
        shutil.rmtree(d)


if __name__ == "__main__":
    sys.exit(base.main(globals()))
