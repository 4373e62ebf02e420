#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tools/bench/overhead.py - memtrace's overhead, side by side in one run.

Each workload runs bare, under memtrace exact (default depth), under memtrace
sampled (MEMTRACE_SAMPLE=512K) and under heaptrack (Debian's package), the
modes alternating, REPS times each; the table gives medians of wall and CPU
time (user + sys of the whole process tree) as ratios to bare, and peak RSS.
Then: 2-thread throughput against 1 thread, memtrace's bytes per live
allocation, how long a dump holds up an allocating thread, how close sampled
mode's live-byte estimates come to exact mode's on churn, and how time per
operation scales with live blocks and with callsites.

  python3 tools/bench/overhead.py [--reps N] [--quick] [--no-scaling|--only-scaling]
                                  [--only-accuracy] [--only-python] [--only-jit]
"""
import argparse
import json
import math
import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, "build")
LIB = os.path.join(B, "src", "libmemtrace.so")
BENCH = os.path.join(B, "tools", "bench")
TOOL = os.path.join(B, "tools", "memtrace", "memtrace")
SAMPLE = 512 * 1024

PY = r"""
class Node:
    __slots__ = ("k", "v", "kids")
    def __init__(self, k, v): self.k, self.v, self.kids = k, v, []
total = 0
for r in range(6):
    d = {}
    for i in range(60000):
        n = Node("k%d" % i, [i, str(i), {"x": i}])
        d[n.k] = n
        if i % 3: d["k%d" % (i // 2)].kids.append(n)
    total += sum(len(n.kids) + len(n.v[1]) for n in d.values())
print(total)
"""

# Allocation-dense Python (issue 14): the circular-reference leak, a
# dict/str/tuple churn keeping one in a hundred, allocations 30 frames down.
PY_LEAK = r"""
class Node:
    def __init__(self, i):
        self.i = i
        self.peer = None
keep = []
for i in range(100000):
    a, b = Node(i), Node(i)
    a.peer, b.peer = b, a
    keep.append(a)
blob = list(range(10**6))
print(len(keep), len(blob))
"""

PY_CHURN = r"""
kept = []
for i in range(300000):
    d = {"id": i, "name": "n%d" % i, "tags": ("a", str(i), i * 2)}
    s = ",".join(d["tags"][:2])
    t = (d, s, [i, i + 1])
    if i % 100 == 0:
        kept.append(t)
print(len(kept))
"""

PY_DEEP = r"""
def down(n, acc):
    if n == 0:
        return [str(acc), (acc, acc + 1), {"k": acc}]
    return down(n - 1, acc)
kept = []
for i in range(60000):
    r = down(30, i)
    if i % 50 == 0:
        kept.append(r)
print(len(kept))
"""

SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000)
INSERT INTO t SELECT x, 'name-' || x, x * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_v ON t(v);
SELECT count(*), sum(v) FROM t WHERE name LIKE 'name-1%';
"""

# JIT stacks (issue 21): every allocation below V8's interpreter and
# compiled code, which have no unwind information
NODE_BUF = r"""
let keep = [];
for (let r = 0; r < 30; r++)
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(1000);
    if (i % 100 == 0) keep.push(b);
  }
console.log(keep.length);
"""

NODE_WORKERS = r"""
const {Worker} = require('worker_threads');
let n = 0, t = 0;
for (let k = 0; k < 4; k++) {
  const w = new Worker(`const {parentPort} = require('worker_threads');
    let a = [];
    for (let i = 0; i < 200000; i++) { a.push({i, s: 'x'.repeat(i % 40)}); if (a.length > 5000) a = []; }
    const b = []; for (let i = 0; i < 20000; i++) b.push(Buffer.alloc(100 + i % 900));
    parentPort.postMessage(b.length)`, {eval: true});
  w.on('message', m => { t += m; if (++n == 4) console.log('node ok ' + t); });
}
"""


def node_workloads():
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        print("node not found (apt-get install nodejs): its rows are left out")
        return []
    d = tempfile.mkdtemp(prefix="mt-bench-")
    rows = []
    for name, text in (("node Buffer.alloc 30 x 20000", NODE_BUF),
                       ("node 4 worker_threads", NODE_WORKERS)):
        f = os.path.join(d, name.split()[1].replace(".", "") + ".js")
        with open(f, "w") as out:
            out.write(text)
        rows.append((name, [node, f], None, {}))
    return rows


def run(cmd, env, cwd, stdin=None):
    """Wall, CPU (user + sys, the whole tree) and peak RSS (KiB) of cmd, as
    GNU time sees them: its own small process forks the command, so the
    peak RSS is the command's, not this script's."""
    out = os.path.join(cwd, "time.out")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", out, *cmd], env=env, cwd=cwd,
                       input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        return None
    m = open(out).read().split()[-1]
    # CPU in microseconds from the kernel (time(1) prints hundredths)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, int(m)


def modes(have_heaptrack):
    m = ["bare", "exact", "sampled"]
    return m + (["heaptrack"] if have_heaptrack else [])


def command(mode, cmd, work):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if mode in ("exact", "sampled"):
        env["LD_PRELOAD"] = LIB
        env["MEMTRACE_DIR"] = work
        env["MEMTRACE_AT_EXIT"] = "0"  # the run, not the final dump
        if mode == "sampled":
            env["MEMTRACE_SAMPLE"] = str(SAMPLE)
    if mode == "heaptrack":
        out = os.path.join(work, "ht")
        for f in os.listdir(work):
            if f.startswith("ht"):
                os.unlink(os.path.join(work, f))
        cmd = ["heaptrack", "-o", out, *cmd]
    return cmd, env


def bench(workloads, reps, have_ht):
    rows = []
    for name, cmd, stdin, extra in workloads:
        res = {m: [] for m in modes(have_ht)}
        work = tempfile.mkdtemp(prefix="mt-bench-")
        for _ in range(reps):
            for m in modes(have_ht):
                c, env = command(m, cmd, work)
                env.update(extra)
                res[m].append(run(c, env, work, stdin))
        shutil.rmtree(work, ignore_errors=True)
        med = {m: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                   max(x[2] for x in v)) for m, v in res.items() if v and None not in v}
        rows.append((name, med))
        bw, bc, _ = med["bare"]
        for m in modes(have_ht):
            if m not in med:
                print(f"{name:<38} {m:<10} failed", flush=True)
                continue
            w, c, rss = med[m]
            print(f"{name:<38} {m:<10} {w:8.3f} {c:8.3f} {w / bw:9.2f}x {c / bc:9.2f}x "
                  f"{rss / 1024:9.1f}", flush=True)
        if "heaptrack" in med and "exact" in med:
            # issue 16's targets: CPU at most 0.6 of heaptrack's, wall at most its
            print(f"{name:<38} {'exact/ht':<10} CPU {med['exact'][1] / med['heaptrack'][1]:.2f} "
                  f"of heaptrack's, wall {med['exact'][0] / med['heaptrack'][0]:.2f}", flush=True)
    return rows


START_TIMES = 20


def python_bench(a):
    """The Python workloads: bare (the default allocator, pymalloc),
    tracemalloc, heaptrack, memtrace exact and sampled with Python frames,
    and memtrace exact with PYTHONMALLOC=malloc (the other way to see
    pymalloc's objects). Ratios are CPU against bare."""
    py = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else shutil.which("python3")
    have_ht = shutil.which("heaptrack") is not None
    d = tempfile.mkdtemp(prefix="mt-bench-")
    loads = []
    # each measurement of the start is 20 starts in a row (one start is 0.01 s
    # of CPU, and single starts moved its ratios by 0.2 between runs)
    for name, text, times in (("objects (the existing one)", PY, 1),
                              ("circular-reference leak", PY_LEAK, 1),
                              ("dict/str/tuple churn", PY_CHURN, 1), ("30 frames deep", PY_DEEP, 1),
                              ("start-up (an empty script)", "pass\n", START_TIMES)):
        path = os.path.join(d, name.split()[0].replace("/", "-").strip("-") + ".py")
        with open(path, "w") as f:
            f.write(text)
        loads.append((name, path, times))
    pmodes = ["bare", "tracemalloc", "exact", "sampled", "exact+malloc"]
    pmodes += ["heaptrack"] if have_ht else []
    print(f"\nPython ({py}), median of {a.reps} runs each, modes alternating; CPU ratio to "
          f"bare (the default allocator); maxRSS ratio; a start-up run is {START_TIMES} starts")
    print(f"{'workload':<28} " + " ".join(f"{m:>13}" for m in pmodes[1:]))
    for name, path, times in loads:
        res = {m: [] for m in pmodes}
        work = tempfile.mkdtemp(prefix="mt-bench-")
        for _ in range(a.reps):
            for m in pmodes:
                cmd = [py, path]
                base = m.split("+")[0]
                c, env = command(base if base in ("exact", "sampled", "heaptrack") else "bare",
                                 cmd, work)
                if m == "tracemalloc":
                    c = [py, "-X", "tracemalloc=1", path]
                if m == "exact+malloc":
                    env["PYTHONMALLOC"] = "malloc"
                rs = [run(c, env, work) for _ in range(times)]
                res[m].append(None if None in rs else
                              (sum(x[0] for x in rs), sum(x[1] for x in rs), max(x[2] for x in rs)))
        shutil.rmtree(work, ignore_errors=True)
        med = {m: (statistics.median(x[1] for x in v), max(x[2] for x in v))
               for m, v in res.items() if v and None not in v}
        bc, brss = med["bare"]
        cells = []
        for m in pmodes[1:]:
            cells.append(f"{med[m][0] / bc:5.2f}x {med[m][1] / brss:4.1f}R" if m in med
                         else f"{'failed':>13}")
        print(f"{name:<28} " + " ".join(f"{c:>13}" for c in cells), flush=True)
    # what capturing the Python stack costs per recorded allocation: the
    # same allocations recorded (PYTHONMALLOC=malloc), frames on and off
    path = loads[2][1]
    work = tempfile.mkdtemp(prefix="mt-bench-")
    cpu = {0: [], 1: []}
    for _ in range(max(a.reps, 5)):
        for on in (0, 1):
            c, env = command("exact", [py, path], work)
            env.update(PYTHONMALLOC="malloc", MEMTRACE_PYTHON=str(on))
            cpu[on].append(run(c, env, work)[1])
    c, env = command("exact", [py, path], work)
    env.update(PYTHONMALLOC="malloc", MEMTRACE_AT_EXIT="1")
    subprocess.run(c, env=env, stdout=subprocess.DEVNULL)
    snap = sorted(f for f in os.listdir(work) if f.endswith(".snap"))[-1]
    js = json.loads(subprocess.run([TOOL, "show", "--json", os.path.join(work, snap)],
                                   capture_output=True, text=True).stdout)
    allocs = js["totals"]["heap_alloc_count"]
    delta = statistics.median(cpu[1]) - statistics.median(cpu[0])
    print(f"Python frames: {delta * 1e9 / allocs:.0f} ns per recorded allocation "
          f"({allocs} allocations, churn, PYTHONMALLOC=malloc, frames on against off)")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(d, ignore_errors=True)


def footprint(args):
    env = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=tempfile.mkdtemp(prefix="mt-bench-"),
               MEMTRACE_AT_EXIT="0")
    bare = dict(os.environ)
    bare.pop("LD_PRELOAD", None)
    exe = os.path.join(BENCH, "footprint")

    def one(e, *a):
        out = subprocess.run([exe, *map(str, a)], env=e, capture_output=True, text=True,
                             check=True).stdout
        return dict(kv.split("=") for kv in out.split())
    return one, env, bare


def scaling(a, one, env, bare):
    """Time per free+malloc as live blocks and callsites grow."""
    print("\ntime per free+malloc, ns (bare / memtrace exact):")
    for live in ([1000, 100000, 1000000] if a.quick else [1000, 100000, 1000000, 10000000]):
        b, t = one(bare, live, 1000), one(env, live, 1000)
        print(f"  {live:>9} live blocks, 1000 callsites: {float(b['ns_per_op']):7.1f} / "
              f"{float(t['ns_per_op']):7.1f}")
    for sites in [10, 1000, 100000] + ([] if a.quick else [1000000]):
        live = max(300000, sites)  # every callsite holds a block
        b, t = one(bare, live, sites), one(env, live, sites)
        print(f"  {live:>9} live blocks, {sites:>7} callsites: {float(b['ns_per_op']):7.1f} / "
              f"{float(t['ns_per_op']):7.1f}")



def live_by_line(cmd, extra):
    """Live bytes per file:line in the at-exit snapshot of cmd under memtrace."""
    work = tempfile.mkdtemp(prefix="mt-bench-")
    env = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=work, **extra)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    snap = [f for f in os.listdir(work) if f.endswith(".snap")]
    js = json.loads(subprocess.run([TOOL, "show", "--json", "-n", "0", os.path.join(work, snap[0])],
                                   check=True, capture_output=True).stdout)
    shutil.rmtree(work, ignore_errors=True)
    return {s["key"].rsplit("/", 1)[-1]: s["size"] for s in js["stats"]}


def accuracy(a):
    """Sampled estimates (MEMTRACE_SAMPLE=512K, seeds 1..5) of the top lines'
    live bytes against exact mode's, on churn's live window kept to the at-exit
    snapshot. An unbiased sampler's estimate of B live bytes in blocks much
    smaller than the mean R has a relative standard error of about sqrt(R/B):
    the spec's 4096-block window (about 1 MiB) holds two samples' worth."""
    churn = os.path.join(BENCH, "churn")
    big = 262144 if a.quick else 1048576
    print(f"\nsampled ({SAMPLE // 1024}K, seeds 1-5) against exact: live bytes per line at exit, "
          "churn 1 thread, window kept")
    for window, ops in ((4096, 2000000), (big, 3 * big)):
        cmd = [churn, str(ops), "1", str(window), "keep"]
        exact = live_by_line(cmd, {})
        runs = [live_by_line(cmd, {"MEMTRACE_SAMPLE": str(SAMPLE), "MEMTRACE_SAMPLE_SEED": str(k)})
                for k in range(1, 6)]
        top = sorted(exact, key=lambda k: -exact[k])[:3]
        for line in top:
            b = exact[line]
            errs = [r.get(line, 0) / b - 1 for r in runs]
            mean = sum(r.get(line, 0) for r in runs) / len(runs) / b - 1
            print(f"  window {window:>7} {line:<12} exact {b / 2**20:8.2f} MiB; sampled "
                  f"{' '.join(f'{e:+.0%}' for e in errs)} (median |error| "
                  f"{statistics.median(abs(e) for e in errs):.1%}, mean of 5 {mean:+.1%}; "
                  f"expected sd {math.sqrt(SAMPLE / b):.0%})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--only-scaling", action="store_true",
                    help="only the scaling with live blocks and callsites")
    ap.add_argument("--only-python", action="store_true",
                    help="only the Python workloads (tracemalloc, heaptrack, memtrace)")
    ap.add_argument("--only-accuracy", action="store_true",
                    help="only sampled mode's estimates against exact mode's")
    ap.add_argument("--only-jit", action="store_true",
                    help="only the JIT workloads (node)")
    a = ap.parse_args()
    subprocess.run(["ninja", "-C", B], check=True, stdout=subprocess.DEVNULL)
    if a.only_scaling:
        scaling(a, *footprint(a))
        return
    if a.only_accuracy:
        accuracy(a)
        return
    if a.only_python:
        python_bench(a)
        return
    have_ht = shutil.which("heaptrack") is not None
    if not have_ht:
        print("heaptrack not found (apt-get install heaptrack): its column is left out")
    header = (f"{'workload':<38} {'mode':<10} {'wall s':>8} {'cpu s':>8} {'wall/bare':>10} "
              f"{'cpu/bare':>10} {'maxRSS MiB':>10}")
    if a.only_jit:
        print(f"median of {a.reps} runs each, modes alternating; CPU = user + sys of the process tree")
        print(header)
        bench(node_workloads(), a.reps, have_ht)
        return
    ops = 2000000 if a.quick else 10000000
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
    churn = os.path.join(BENCH, "churn")
    # a file, not -c: heaptrack records the command line in its line-based
    # trace and fails on one with newlines
    pyfile = os.path.join(tempfile.mkdtemp(prefix="mt-bench-"), "objects.py")
    with open(pyfile, "w") as f:
        f.write(PY)
    workloads = [
        (f"C churn {ops // 1000000}M ops, 1 thread", [churn, str(ops), "1"], None, {}),
        (f"C churn {ops // 1000000}M ops, 2 threads", [churn, str(ops), "2"], None, {}),
        (f"C churn {ops // 1000000}M ops, 4 threads", [churn, str(ops), "4"], None, {}),
        (f"C churn {ops // 1000000}M ops, 8 threads", [churn, str(ops), "8"], None, {}),
        # large heaps: every free's lookup misses the cache
        ("C churn, window of 1 M blocks", [churn, str(3 * 10**6), "1", str(10**6)], None, {}),
    ] + ([] if a.quick else [
        ("C churn, window of 10 M blocks", [churn, str(2 * 10**7), "1", str(10**7)], None, {}),
    ]) + [
        # the same work from 128 distinct stacks instead of 2
        (f"C churn {ops // 1000000}M ops, 64 paths", [churn + "-paths", str(ops), "1"], None, {}),
        ("Python objects (PYTHONMALLOC=malloc)", [py, pyfile], None, {"PYTHONMALLOC": "malloc"}),
        ("sqlite3 300k rows, 2 indexes", ["sqlite3", ":memory:"], SQL.encode(), {}),
        ("C++ map/string/vector", [os.path.join(BENCH, "cxxload"), "10" if a.quick else "40"], None, {}),
        # a process's fixed cost: memtrace's start and its final snapshot
        ("200 short processes (/bin/true)", ["sh", "-c", "for i in $(seq 200); do /bin/true; done"],
         None, {}),
    ] + node_workloads()
    print(f"median of {a.reps} runs each, modes alternating; CPU = user + sys of the process tree")
    print(header)
    rows = bench(workloads, a.reps, have_ht)

    med = dict(rows)
    c1 = med[workloads[0][0]]
    c2 = med[workloads[1][0]]
    print()
    for m in modes(have_ht):
        if m in c1 and m in c2:
            print(f"2 threads vs 1, same total ops, {m:<9}: {c1[m][0] / c2[m][0]:.2f}x the throughput")
    if have_ht and "heaptrack" in c1:
        for m in ("exact", "sampled"):
            print(f"churn 1 thread: memtrace {m} is {c1['heaptrack'][1] / c1[m][1]:.1f}x "
                  f"less CPU than heaptrack")

    one, env, bare = footprint(a)
    n = 200000 if a.quick else 1000000
    print()
    for sites in (1, 50000):
        b, t = one(bare, n, sites), one(env, n, sites)
        extra = (int(t["rss_kb"]) - int(b["rss_kb"])) * 1024
        print(f"{n} live blocks of 32 B in {sites} callsites: RSS +{extra / 2**20:.1f} MiB under "
              f"memtrace, {extra / n:.1f} bytes per live block, callsite tables included")
    h = one(env, n, 50000, "holdup")
    print(f"dump of {n} live blocks in 50000 callsites: an allocating thread was held up "
          f"{float(h['max_stall_us']) / 1000:.2f} ms at most")
    accuracy(a)
    python_bench(a)
    if a.no_scaling:
        return
    scaling(a, *footprint(a))

if __name__ == "__main__":
    sys.exit(main())
