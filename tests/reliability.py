#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""memtrace's reliability cases, one per process: `reliability.py CASE`.

Real programs three ways (bare, memtrace on the system allocator, memtrace on
jemalloc) with identical status and output; faults (signal storms, kill -9 in
the middle of dumps, full, read-only and swapped dump directories, ulimit -f,
fork/vfork/posix_spawn from threads, 10,000 threads, environment fuzz,
AT_SECURE, memtrace's own memory running out), each bounded in time.
"""
import glob
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib as base  # noqa: E402
from mtlib import (Fail, check, eq, expect_site, line_of, only_snapshot, python3, run, run_victim,  # noqa: E402
                 show_json, snaps, sums_match_totals, tool, victim, LIB, JEMALLOC)
CASE_SUITE = "reliability"

MODES = {"system": {}, "jemalloc": JEMALLOC}
# real programs also run sampled (the estimates are checked elsewhere: here,
# the program's own behaviour and well-formed snapshots)
MATRIX = dict(MODES, sampled={"MEMTRACE_SAMPLE": "64K", "MEMTRACE_SAMPLE_SEED": "1"})


def bounded(what, cmd, timeout, **kw):
    """run(), with a hang turned into a failure that says so."""
    try:
        return run(cmd, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise Fail(f"{what}: {' '.join(map(str, cmd))[:120]} hung, killed after {timeout} s")


def three_ways(cmd, env=None, input=None, cwd_factory=None, compare=("stdout", "stderr"),
               normalize=None, timeout=base.TIMEOUT):
    """bare, then memtrace on each allocator and sampled: same exit status and
    output (after normalize, for run-dependent text such as pids); every
    snapshot parses and per-callsite sums equal the totals."""
    env = env or {}
    norm = normalize or (lambda b: b)
    bare = bounded("bare", cmd, timeout, env=env, preload=False, input=input,
                   cwd=cwd_factory() if cwd_factory else None)
    bare.stdout, bare.stderr = norm(bare.stdout), norm(bare.stderr)
    out = {}
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix=f"mt-{mode}-")
        r = bounded(mode, cmd, timeout, env=dict(env, **extra), dump_dir=d, input=input,
                    cwd=cwd_factory() if cwd_factory else None)
        r.stdout, r.stderr = norm(r.stdout), norm(r.stderr)
        eq(r.returncode, bare.returncode, f"{mode}: exit status of {cmd[:3]}")
        if "stdout" in compare:
            eq(r.stdout, bare.stdout, f"{mode}: stdout of {cmd[:3]}")
        if "stderr" in compare:
            theirs = b"".join(l for l in r.stderr.splitlines(True) if not l.startswith(b"memtrace["))
            eq(theirs, bare.stderr, f"{mode}: stderr of {cmd[:3]}")
        check(b"memtrace[" not in r.stderr or b"handles SIGUSR1 itself" in r.stderr,
              f"{mode}: memtrace said nothing unexpected: {r.stderr[-500:]!r}")
        files = snaps(d)
        check(files, f"{mode}: snapshots")
        for f in files:
            js = show_json(f)
            check(all(s["count"] >= 0 and s["size"] >= 0 for s in js["stats"]), "no negative counts")
        sums_match_totals(files[-1])
        want = "jemalloc" if mode == "jemalloc" else "glibc"
        last = show_json(files[-1])
        eq((last["allocator"]["name"], last["sampled"]), (want, mode == "sampled"),
           f"{mode}: allocator, sampled")
        out[mode] = (r, d)
    return bare, out


PY_MATRIX = r"""
import multiprocessing as mp, subprocess, sys, threading, json
def square(x): return x * x
def main():
    out = []
    ts = [threading.Thread(target=lambda k=k: out.append(sum(str(i).count("7") for i in range(20000 * k))))
          for k in range(1, 5)]
    [t.start() for t in ts]; [t.join() for t in ts]
    for method in ("fork", "spawn"):
        with mp.get_context(method).Pool(2) as pool:
            out.append(sum(pool.map(square, range(200))))
    out.append(subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                              text=True).stdout.strip())
    print(json.dumps(sorted(map(str, out))))
if __name__ == "__main__":
    main()
"""


def py_matrix_file():
    # a file: spawn workers import __main__ by path, which -c does not have
    path = os.path.join(tempfile.mkdtemp(prefix="mt-py-"), "matrix.py")
    with open(path, "w") as f:
        f.write(PY_MATRIX)
    return path


def case_matrix_python():
    three_ways([python3(), py_matrix_file()])


def case_matrix_python_malloc():
    three_ways([python3(), py_matrix_file()], env={"PYTHONMALLOC": "malloc"})


def case_matrix_bash():
    three_ways(["bash", "-c", base.BASH])


def case_matrix_sqlite3():
    bare, _ = three_ways(["sqlite3", ":memory:"], input=base.SQL.replace("100000", "300000").encode())
    check(bare.stdout.endswith(b"ok\n"), bare.stdout)


def case_matrix_git():
    three_ways(["bash", "-c", base.GIT], cwd_factory=lambda: tempfile.mkdtemp(prefix="mt-git-"))


def case_matrix_perl():
    three_ways(["perl", "-e", base.PERL])


def case_matrix_gcc():
    d = tempfile.mkdtemp(prefix="mt-gcc-")
    src = os.path.join(os.environ["MT_SRC"], "src", "heap.c")  # the largest C file of the tables
    objs = {}
    for mode in ("bare",) + tuple(MATRIX):
        o = os.path.join(d, f"{mode}.o")
        cmd = ["gcc", "-O2", "-c", "-I" + os.path.join(os.environ["MT_SRC"], "src"),
               "-I/usr/include/x86_64-linux-gnu", src, "-o", o]
        r = run(cmd, preload=mode != "bare", env=MATRIX.get(mode, {}),
                dump_dir=tempfile.mkdtemp(prefix="mt-gcc-"))
        eq(r.returncode, 0, f"gcc under {mode}: {r.stderr[-300:]!r}")
        objs[mode] = open(o, "rb").read()
    for mode in MATRIX:
        eq(objs[mode], objs["bare"], f"identical object file ({mode})")


def case_matrix_redis():
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix=f"mt-redis-{mode}-")
        srv, port = base.start_redis(d, dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, **extra))
        try:
            bench = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n",
                                      "20000", "-c", "10", "-t", "set,get,lpush,lpop", "-q"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(0.3)
            srv.send_signal(signal.SIGUSR1)  # a snapshot while it serves
            out, err = bench.communicate(timeout=120)
            eq(bench.returncode, 0, f"{mode}: redis-benchmark: {err!r}")
            check(out.count(b"requests per second") == 4, f"{mode}: all four tests ran: {out!r}")
            r = subprocess.run(["redis-cli", "-p", str(port), "info", "stats"], capture_output=True,
                               timeout=10)
            check(b"total_commands_processed" in r.stdout, "redis still answers")
            for _ in range(100):
                if snaps(d, srv.pid):
                    break
                time.sleep(0.05)
            files = snaps(d, srv.pid)
            check(files, f"{mode}: a SIGUSR1 snapshot of redis-server")
            js = show_json(files[0])
            eq(js["reason"], "on signal", "reason")
            check(js["totals"]["heap_alloc_count"] > 10000, "redis's allocations were seen")
        finally:
            base.stop_redis(srv, port)
        eq(srv.returncode, 0, f"{mode}: redis-server exit status")


# ---- hosts that hung or broke under the preload -----------------------------
# A hang here is a failure after HANG seconds, never the suite's timeout.
HANG = 120


@base.case(victims=("hosts",))
def case_host_getattr():
    # the JVM's pattern: a thread's first allocation inside pthread_getattr_np
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix="mt-getattr-")
        r = bounded(mode, [victim("hosts"), "getattr", "16"], 30, env=extra, dump_dir=d)
        eq((r.returncode, r.stdout, r.stderr), (0, b"getattr ok 16\n", b""), mode)
        if mode != "sampled":
            expect_site(show_json(only_snapshot(d)), "hosts.c", "getattr", 1600, 16)


@base.case(victims=("hosts",))
def case_host_dlerror():
    """memtrace's own lookups (the allocator's probes, C++ operators absent
    from a C program) leave dlerror() as the program would find it."""
    for mode, extra in MATRIX.items():
        r = bounded(mode, [victim("hosts"), "dlerror"], 30, env=extra)
        eq((r.returncode, r.stdout, r.stderr),
           (0, b"start clean\nmissing said\nfound clean\n", b""), mode)


@base.case(victims=("unwsig",))
def case_host_unwind_signals():
    """memtrace masks every signal once around each libunwind walk of its own
    and makes libunwind's own sigprocmask calls do nothing meanwhile (a
    patched GOT slot). A program that unwinds with libunwind in a SIGPROF
    handler, while it allocates from 4,096 stacks new to memtrace, must see
    its handler run and unwind, and keep the signal mask it set."""
    want = b"mask kept\nhandler ran\nunwound yes\n"
    bare = bounded("bare", [victim("unwsig")], HANG, preload=False)
    eq((bare.returncode, bare.stdout, bare.stderr), (0, want, b""), "bare")
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix="mt-unwsig-")
        r = bounded(mode, [victim("unwsig")], HANG, env=extra, dump_dir=d)
        eq((r.returncode, r.stdout, r.stderr), (0, want, b""), mode)
        if mode != "sampled":
            # the 4,096 stacks were recorded, each its own callsite
            sites = show_json(only_snapshot(d))["totals"]["sites"]
            check(sites >= 4096, f"{mode}: {sites} callsites, not the 4,096 stacks and more")


def sigprocmask_calls(cmd, dump_dir, env=None):
    """How many rt_sigprocmask system calls cmd makes under exact memtrace,
    as strace counts them (every process and thread)."""
    if not shutil.which("strace"):
        raise Fail("strace is needed to count system calls (Debian package strace)")
    out = os.path.join(dump_dir, "strace.txt")
    r = bounded("strace", ["strace", "-f", "-qq", "-c", "-e", "trace=rt_sigprocmask", "-o", out,
                           "-E", "LD_PRELOAD=" + LIB, *cmd], HANG, env=env, preload=False,
                dump_dir=dump_dir)
    eq(r.returncode, 0, f"{cmd[0]} under strace: {r.stderr.decode()[-300:]}")
    with open(out) as f:
        m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?rt_sigprocmask$", f.read(),
                      re.M)
    return int(m.group(1)) if m else 0


@base.case(victims=("unwsig",))
def case_host_unwind_mask():
    """memtrace masks signals around its libunwind walks only where a
    signal handler could unwind inside one: when another user of libunwind
    exists. A program linked with libunwind is found at start, one that
    reaches it by dlopen at its first call (MEMTRACE_VERBOSE says which);
    an exact-mode Python start, whose interpreter does not use libunwind,
    makes no rt_sigprocmask call for them (3,526 when every walk masked)."""
    d = tempfile.mkdtemp(prefix="mt-unwmask-")
    env = {"MEMTRACE_DIR": d, "MEMTRACE_AT_EXIT": "0", "MEMTRACE_VERBOSE": "1"}
    py = "/usr/bin/python3.11"
    if not os.path.exists(py):
        raise Fail(f"{py} is needed (Debian package python3.11)")
    linked = b"libunwind is used by the program: memtrace's walks mask signals"
    called = b"libunwind is called outside memtrace's walks: they mask signals"
    r = bounded("linked", [victim("unwsig")], HANG, env=env)
    eq((r.returncode, r.stdout), (0, b"mask kept\nhandler ran\nunwound yes\n"), "linked")
    check(linked in r.stderr, f"linked: no word of masking: {r.stderr.decode()[-400:]}")
    # by dlopen (ctypes), then more imports: more new stacks to walk
    script = ("import ctypes\nu = ctypes.CDLL('libunwind.so.8')\nb = (ctypes.c_void_p * 32)()\n"
              "assert u.unw_backtrace(b, 32) > 3\nimport email.parser, http.client\n")
    r = bounded("dlopen", [py, "-c", script], HANG, env=env)
    eq(r.returncode, 0, f"dlopen: {r.stderr.decode()[-400:]}")
    check(called in r.stderr, f"dlopen: no word of masking: {r.stderr.decode()[-400:]}")
    r = bounded("python", [py, "-c", "import email.parser, http.client"], HANG, env=env)
    check(linked not in r.stderr and called not in r.stderr,
          f"python: masks though nothing else uses libunwind: {r.stderr.decode()[-400:]}")
    n = sigprocmask_calls([py, "-c", "import email.parser, http.client"], d, env)
    check(n <= 16, f"a Python start: {n} rt_sigprocmask calls (memtrace masked its walks)")
    print(f"python start: {n} rt_sigprocmask calls")


@base.case(victims=("hosts",))
def case_host_single_thread():
    """No thread of memtrace's until the first snapshot signal, which an idle
    or a spinning program answers at once, and one caught inside libc's code
    soon after; then one thread more."""
    for how, before in (("sleep", 1), ("join", 1), ("spin", 1), ("libc", 1)):
        for mode, extra in MATRIX.items():
            d = tempfile.mkdtemp(prefix="mt-idle-")
            e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, **extra)
            p = subprocess.Popen([victim("hosts"), "idle", how], env=e, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            try:
                first = p.stdout.readline()
                eq(first, b"tasks %d\n" % before, f"{how}, {mode}: threads before any signal")
                t0 = time.time()
                p.send_signal(signal.SIGUSR1)
                while not snaps(d, p.pid) and time.time() - t0 < 2:
                    time.sleep(0.01)
                took = time.time() - t0
                check(snaps(d, p.pid), f"{how}, {mode}: no snapshot 2 s after the signal")
                check(p.poll() is None, f"{how}, {mode}: answered while the program waits")
                out, err = p.communicate(timeout=30)
            finally:
                p.kill()
            # join: the program's own sleeper thread is gone by then
            eq((p.returncode, out, err), (0, b"tasks 2\n", b""), f"{how}, {mode}: afterwards")
            eq(len(snaps(d, p.pid)), 2, f"{how}, {mode}: the signal's and the exit's snapshots")
            if mode != "sampled":
                expect_site(show_json(snaps(d, p.pid)[0]), "hosts.c", "idle", 4096, 1)
            print(f"{how} {mode}: snapshot {took * 1000:.0f} ms after the signal")
    # no signal, no thread: a program that never asks stays as it was
    r = run([victim("hosts"), "idle", "sleep"], dump_dir=tempfile.mkdtemp(prefix="mt-idle-"))
    eq(r.stdout, b"tasks 1\ntasks 1\n", "no snapshot asked for: single-threaded throughout")


def case_host_unshare():
    # unshare(CLONE_NEWUSER) needs a single-threaded process
    three_ways(["unshare", "-U", "-r", "id", "-u"], timeout=HANG)


IDS_PY = """
import os, signal, time
time.sleep(0.35)
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
x = [bytearray(1000) for _ in range(1000)]
time.sleep(0.35)
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.2)
print(os.getuid(), len(x))
"""


def case_host_setpriv():
    """A change of ids runs on every thread (glibc's SIGSETXID) and aborts
    the process if one thread fails: setpriv gives its capabilities to its
    own thread only, so memtrace's thread (there from the start with
    MEMTRACE_INTERVAL) failed it and setpriv died of SIGABRT; unshare -U
    refused the process. memtrace's thread now ends before such a call and
    comes back after it, with the new ids, its snapshots going on."""
    check(os.geteuid() == 0, "needs root (setpriv changes ids)")
    setpriv = ["setpriv", "--reuid", "65534", "--regid", "65534", "--init-groups", "id", "-u"]
    unshare = ["unshare", "-U", "-r", "id", "-u"]
    bare = bounded("bare setpriv", setpriv, HANG, preload=False)
    eq((bare.returncode, bare.stdout), (0, b"65534\n"), "setpriv without memtrace")
    # setns into a user namespace wants one thread too: nsenter joins one
    # that a bare process holds
    holder = subprocess.Popen(["unshare", "-U", "-r", "sleep", "60"])
    d = tempfile.mkdtemp(prefix="mt-setpriv-")
    os.chmod(d, 0o755)
    # where uid 65534 can load it after setpriv's exec, wherever the build
    # is (a checkout in a 0700 directory, as mktemp -d makes, is not: ld.so
    # then skips the preload with a note, and `id` writes no snapshot)
    lib = shutil.copy(LIB, os.path.join(d, "libmemtrace.so"))
    try:
        time.sleep(0.3)
        sleeper = subprocess.run(["pgrep", "-P", str(holder.pid)], capture_output=True, text=True)
        target = sleeper.stdout.split()[0] if sleeper.stdout.split() else str(holder.pid)
        nsenter = ["nsenter", "-t", target, "-U", "--preserve-credentials", "id", "-u"]
        eq(bounded("bare nsenter", nsenter, HANG, preload=False).returncode, 0, "nsenter bare")
        for mode, extra in MATRIX.items():
            for interval in (None, "0.05"):
                env = dict(extra, **({"MEMTRACE_INTERVAL": interval} if interval else {}))
                for cmd, want in ((setpriv, b"65534\n"), (unshare, b"0\n"), (nsenter, b"0\n")):
                    out = tempfile.mkdtemp(dir=d)
                    os.chmod(out, 0o1777)  # the program writes as nobody after the change
                    r = bounded(f"{cmd[0]} ({mode})", cmd, HANG, env=env, dump_dir=out,
                                lib=lib)
                    eq((r.returncode, r.stdout), (0, want),
                       f"{cmd[0]} under memtrace, {mode}, interval {interval}: {r.stderr[-300:]!r}")
                    check(b"memtrace[" not in r.stderr, f"memtrace said: {r.stderr[-300:]!r}")
                    check(b"cannot be preloaded" not in r.stderr, f"ld.so said: {r.stderr!r}")
                    check(snaps(out), f"{cmd[0]} ({mode}): its snapshots")
        # again and again: pthread_join returns a moment before the kernel
        # takes the thread out of the process, and unshare counted it
        # (EINVAL about once in 200 runs on a loaded machine)
        refused = []
        for k in range(100):
            out = tempfile.mkdtemp(dir=d)
            r = bounded("unshare, again", unshare, HANG, env={"MEMTRACE_INTERVAL": "0.05"},
                        dump_dir=out, lib=lib)
            if (r.returncode, r.stdout) != (0, b"0\n"):
                refused.append((k, r.returncode, r.stderr[-100:]))
            shutil.rmtree(out)
        eq(refused, [], "100 unshare -U under memtrace with its thread running")
        # one process through the change: the snapshots go on, written by
        # the new thread as the new user
        out = tempfile.mkdtemp(dir=d)
        os.chmod(out, 0o1777)
        r = bounded("a Python program changing its ids",
                    ["/usr/bin/python3", "-c", IDS_PY], HANG,
                    env={"MEMTRACE_INTERVAL": "0.1"}, dump_dir=out)
        eq((r.returncode, r.stdout), (0, b"65534 1000\n"), f"the program's own answer: {r.stderr!r}")
        seen = []
        for f in snaps(out):
            js = show_json(f)
            seen.append((os.stat(f).st_uid, js["reason"]))
        check((0, "periodic") in seen, f"a periodic snapshot before the change: {seen}")
        check((65534, "periodic") in seen, f"a periodic snapshot after the change: {seen}")
        check((65534, "on signal") in seen, f"a snapshot on a signal after the change: {seen}")
        print("snapshots (owner, reason):", seen)
    finally:
        holder.kill()
        holder.wait()
        shutil.rmtree(d, ignore_errors=True)


@base.case(victims=("hosts",))
def case_host_leak_scan():
    """The leak scan at exit does not show in a host that watches its
    children: no SIGCHLD reaches its handler, its thread in wait() reaps
    nothing, with SIGCHLD ignored (SA_NOCLDWAIT) as well; a thread spinning
    in its own code does not stop it; the output and status are as
    without memtrace, and the scan finds the lost blocks."""
    for how in ("handler", "nocldwait"):
        outs = {}
        for preload in (False, True):
            d = tempfile.mkdtemp(prefix="mt-rel-")
            rfd, wfd = os.pipe()
            e = dict(os.environ)
            e.pop("LD_PRELOAD", None)
            if preload:
                e.update(LD_PRELOAD=LIB, MEMTRACE_DIR=d)
            p = subprocess.Popen([victim("hosts"), "children", how, str(wfd)], env=e,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(wfd,))
            os.close(wfd)
            out, err = p.communicate(timeout=60)
            seen = b""
            while True:
                chunk = os.read(rfd, 4096)
                if not chunk:
                    break
                seen += chunk
            os.close(rfd)
            outs[preload] = (p.returncode, out, seen.split(b"|")[-1])
            if preload:
                js = json.loads(tool("leaks", "--json", "-n", "0", only_snapshot(d)).stdout)
                eq(js["scan"]["status"], "done", f"{how}: {js['scan']}")
                eq(js["classes"]["definite"]["blocks"] >= 95, True,
                   f"{how}: the lost blocks: {js['classes']}")
                check(js["scan"]["threads_without_sp"] >= 1, f"{how}: the spinner: {js['scan']}")
            shutil.rmtree(d)
        eq(outs[True], outs[False], f"{how}: status, output and what the program saw after its work")
        eq(outs[True][2], b"", f"{how}: nothing after the program's own end")
        check(b"|" in seen, f"{how}: the program's own report: {seen!r}")


@base.case(victims=("hosts",))
def case_host_leak_scan_faults():
    """Pages that fault when read do not stop the scan: a guard page inside
    a writable mapping (MADV_GUARD_INSTALL, where the kernel has it) and a
    file mapping past its file's end (SIGBUS); the pointers around them are
    found, the lost block is lost."""
    d = tempfile.mkdtemp(prefix="mt-rel-")
    r = run([victim("hosts"), "guards", os.path.join(d, "one-byte")], dump_dir=d)
    eq(r.returncode, 0, f"{r.stderr!r}")
    js = json.loads(tool("leaks", "--json", "-n", "0", "--show", "all", only_snapshot(d)).stdout)
    eq(js["scan"]["status"], "done", f"the scan ({r.stdout!r}): {js['scan']}")
    path, held = line_of("hosts.c", "guarded")
    _, lost = line_of("hosts.c", "guardlost")
    got = {}
    for l in js["leaks"]:
        if l["traceback"][0].startswith(f"{path}:"):
            got[(l["class"], int(l["traceback"][0].split(":")[1].split()[0]))] = (l["size"], l["count"])
    eq(got.get(("definite", lost)), (4321, 1), f"the lost block: {got}")
    eq(sum(v[1] for k, v in got.items() if k[0] == "reachable"), 3, f"the held blocks: {got}")
    print(f"host-leak-scan-faults: {r.stdout.decode().strip()}")
    shutil.rmtree(d)


@base.case(victims=("hosts",))
def case_host_no_arena():
    """memtrace's dump thread allocates nothing from the program's
    allocator: an idle single-threaded program keeps one glibc arena and
    its held bytes through two signal snapshots (the thread's malloc_info
    FILE once made glibc give it a second arena: held doubled, 64 MiB more
    address space, read as the allocator's growth)."""
    d = tempfile.mkdtemp(prefix="mt-rel-")
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    p = subprocess.Popen([victim("hosts"), "idle", "sleep"], env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    for _ in range(2):
        time.sleep(0.5)
        p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=30)
    eq(p.returncode, 0, err)
    files = snaps(d)
    eq(len(files), 3, f"two signal snapshots and the exit one: {files}")
    figs = [show_json(f)["allocator"] for f in files]
    eq([a["arenas"] for a in figs], [1, 1, 1], f"one arena throughout: {figs}")
    eq(len({a["held"] for a in figs}), 1, f"held unchanged: {[a['held'] for a in figs]}")
    eq([a["anon_64m"] for a in figs], [0, 0, 0], "no 64 MiB arena heap")
    shutil.rmtree(d)


@base.case(victims=("hosts",))
def case_host_term():
    """A terminating signal left at its default (systemctl stop's SIGTERM,
    SIGINT, SIGHUP): a final snapshot, then the same end as without
    memtrace; a program's own handler runs as without memtrace."""
    def end(how, sig, preload, env=None, d=None):
        e = dict(os.environ, **(env or {}))
        e.pop("LD_PRELOAD", None)
        if preload:
            e.update(LD_PRELOAD=LIB, MEMTRACE_DIR=d)
        # the defaults, whatever this runner inherited (nohup ignores SIGHUP)
        p = subprocess.Popen([victim("hosts"), "term", how], env=e, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=lambda: [
                                 signal.signal(s, signal.SIG_DFL)
                                 for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)])
        try:
            eq(p.stdout.readline(), b"ready\n", f"{how}: started")
            t0 = time.time()
            p.send_signal(sig)
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise Fail(f"{how}, signal {sig}: still running 10 s after it")
        finally:
            p.kill()
        return p.returncode, out, err, time.time() - t0

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        for how in ("pause", "own", "busy"):
            bare = end(how, sig, False)
            for mode, extra in MATRIX.items():
                d = tempfile.mkdtemp(prefix="mt-term-")
                got = end(how, sig, True, extra, d)
                what = f"{signal.Signals(sig).name}, {how}, {mode}"
                eq(got[:3], bare[:3], f"{what}: status and output as without memtrace")
                files = snaps(d)
                eq(len(files), 1, f"{what}: one final snapshot")
                js = show_json(files[0])
                own = how == "own" and sig == signal.SIGTERM
                eq(js["reason"], "at _exit" if own else "at a terminating signal", what)
                if mode != "sampled":
                    expect_site(js, "hosts.c", "term", 100000, 100)
                check(got[3] < 1.0, f"{what}: ended {got[3]:.2f} s after the signal")
                if how == "busy":
                    print(f"{what}: ended {got[3] * 1000:.0f} ms after the signal")
    # a busy allocator, again and again: the signal often lands while the
    # program holds one of memtrace's table locks outside a recorded call
    # (a free) or an arena lock inside libc; the final dump must not wait
    # on it (it did: 3 s, then the end with no snapshot, about once in 40
    # runs on a loaded machine)
    lost = []
    for k in range(40):
        d = tempfile.mkdtemp(prefix="mt-term-")
        got = end("busy", (signal.SIGTERM, signal.SIGINT)[k % 2], True, None, d)
        if len(snaps(d)) != 1 or got[3] > 1.0:
            lost.append((k, os.listdir(d), round(got[3], 2)))
        shutil.rmtree(d)
    eq(lost, [], "40 busy ends: each with its final snapshot, within a second")
    # a signal the program was started ignoring (nohup) stays ignored: the
    # process lives on, as without memtrace
    for preload in (False, True):
        d = tempfile.mkdtemp(prefix="mt-term-")
        e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d) if preload else \
            {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        p = subprocess.Popen(["nohup", victim("hosts"), "term", "pause"], env=e,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            eq(p.stdout.readline(), b"ready\n", "nohup: started")
            p.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            eq(p.poll(), None, f"nohup, {'memtrace' if preload else 'bare'}: alive after SIGHUP")
        finally:
            p.kill()
            p.wait()
        eq(snaps(d), [], "nohup: no snapshot for an ignored signal")
        shutil.rmtree(d)
    # what the program sees: the default, and its own handler once set
    code = ("import signal\nprint(signal.getsignal(signal.SIGTERM))\n"
            "signal.signal(signal.SIGTERM, lambda *a: None)\nprint(signal.getsignal(signal.SIGTERM))")
    bare = run(["/usr/bin/python3", "-c", code], preload=False)
    r = run(["/usr/bin/python3", "-c", code], dump_dir=tempfile.mkdtemp(prefix="mt-term-"))
    eq(r.stdout.split(b"\n")[0], bare.stdout.split(b"\n")[0], "the program sees the default")
    check(b"lambda" in r.stdout.split(b"\n")[1], r.stdout)


def gdb_normalize(b):
    b = re.sub(rb"process \d+", b"process N", b)
    b = re.sub(rb"LWP \d+", b"LWP N", b)
    return re.sub(rb"0x[0-9a-f]+", b"0xADDR", b)


@base.case(victims=("hosts",))
def case_host_gdb():
    # the debuggee's threads and output as without memtrace (the preload is
    # in gdb and, through its environment, in the debuggee)
    cmd = ["gdb", "-nx", "-batch", "-ex", "set startup-with-shell off", "-ex", "break hosts_break",
           "-ex", "run", "-ex", "info threads", "-ex", "continue", "--args", victim("hosts"), "gdb"]
    bare, _ = three_ways(cmd, normalize=gdb_normalize, timeout=HANG)
    check(b"gdb ok" in bare.stdout and bare.stdout.count(b"LWP N") == 1, bare.stdout)


JAVA = r"""
import java.util.*;
import java.util.concurrent.*;
public class Threads {
    public static void main(String[] a) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Integer>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            final int k = t;
            fs.add(pool.submit(() -> {
                Map<String, int[]> m = new HashMap<>();
                for (int i = 0; i < 20000; i++) m.put("k" + (i % 5000) + k, new int[16]);
                return m.size();
            }));
        }
        int sum = 0;
        for (Future<Integer> f : fs) sum += f.get();
        pool.shutdown();
        System.out.println("java ok " + sum);
    }
}
"""


def java_bin(name):
    path = shutil.which(name)
    if not path:
        raise Fail(f"{name} is not installed (Debian: openjdk-17-jdk-headless)")
    return path


def case_host_java():
    three_ways([java_bin("java"), "-version"], timeout=HANG)
    d = tempfile.mkdtemp(prefix="mt-java-")
    with open(os.path.join(d, "Threads.java"), "w") as f:
        f.write(JAVA)
    r = run([java_bin("javac"), "Threads.java"], preload=False, cwd=d)
    eq(r.returncode, 0, f"javac: {r.stderr!r}")
    bare, _ = three_ways([java_bin("java"), "-Xmx256m", "-cp", d, "Threads"], timeout=HANG)
    eq(bare.stdout, b"java ok 40000\n", "the Java program's own answer")


RUBY = r"""
q = Queue.new
ts = 4.times.map { |k| Thread.new { s = 0; 20000.times { |i| s += (("x" * (i % 50)) + k.to_s).size }; q << s } }
ts.each(&:join)
puts "ruby ok #{4.times.map { q.pop }.sum}"
"""


def case_host_ruby():
    ruby = shutil.which("ruby")
    check(ruby, "ruby is not installed (Debian: ruby)")
    bare, _ = three_ways([ruby, "-e", RUBY], timeout=HANG)
    check(bare.stdout.startswith(b"ruby ok "), bare.stdout)


RUST = r"""
use std::sync::mpsc;
use std::thread;
fn main() {
    let (tx, rx) = mpsc::channel();
    let hs: Vec<_> = (0..4).map(|k| {
        let tx = tx.clone();
        thread::Builder::new().name(format!("w{}", k)).spawn(move || {
            let v: Vec<String> = (0..20000).map(|i| format!("{}-{}", k, i)).collect();
            tx.send(v.iter().map(|s| s.len()).sum::<usize>()).unwrap();
        }).unwrap()
    }).collect();
    for h in hs { h.join().unwrap(); }
    drop(tx);
    println!("rust ok {}", rx.iter().sum::<usize>());
}
"""


def rustcs():
    """Debian's rustc and the machine's own (rustup), if either is there: a
    newer standard library calls pthread_getattr_np in every thread."""
    found = {}
    for c in ("/usr/bin/rustc", os.path.expanduser("~/.cargo/bin/rustc"), shutil.which("rustc")):
        if c and os.access(c, os.X_OK):
            v = run([c, "--version"], preload=False).stdout.strip()
            if v:
                found.setdefault(v, c)
    check(found, "rustc is not installed (Debian: rustc)")
    return sorted(found.items())


def case_host_rust():
    for version, rustc in rustcs():
        d = tempfile.mkdtemp(prefix="mt-rust-")
        src = os.path.join(d, "threads.rs")
        with open(src, "w") as f:
            f.write(RUST)
        binaries = {}
        for mode in ("bare",) + tuple(MATRIX):
            out = os.path.join(d, f"threads-{mode}")
            r = bounded(f"{version.decode()} under {mode}", [rustc, "-O", "-o", out, src], HANG,
                        preload=mode != "bare", env=MATRIX.get(mode, {}),
                        dump_dir=tempfile.mkdtemp(prefix="mt-rustc-"))
            eq(r.returncode, 0, f"rustc under {mode}: {r.stderr[-300:]!r}")
            binaries[mode] = open(out, "rb").read()
        for mode in MATRIX:
            eq(binaries[mode] == binaries["bare"], True, f"identical binary from rustc under {mode}")
        bare, _ = three_ways([os.path.join(d, "threads-bare")], timeout=HANG)
        check(bare.stdout.startswith(b"rust ok "), bare.stdout)
        print(f"{version.decode()}: compiles and runs as without memtrace")


def case_host_node_workers():
    node = shutil.which("node") or shutil.which("nodejs")
    check(node, "node is not installed (Debian: nodejs)")
    js = ("const {Worker}=require('worker_threads');let n=0,t=0;"
          "for(let k=0;k<3;k++){const w=new Worker(`const {parentPort}=require('worker_threads');"
          "let a=[];for(let i=0;i<20000;i++)a.push({i,s:'x'.repeat(i%40)});"
          "parentPort.postMessage(a.length)`,{eval:true});"
          "w.on('message',m=>{t+=m;if(++n==3)console.log('node ok '+t)})}")
    bare, _ = three_ways([node, "-e", js], timeout=HANG)
    eq(bare.stdout, b"node ok 60000\n", "node's own answer")


NODE_BUFFERS = """
let keep = [];
for (let r = 0; r < 5; r++)
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(1000);
    if (i % 100 == 0) keep.push(b);
  }
console.log(keep.length);
"""


def case_host_node_jit():
    """Stacks through V8's interpreter, builtins and compiled code, which
    have no unwind information but keep frame pointers: memtrace's own walk
    serves nearly every one (libunwind's guesses there cost tens of
    microseconds a stack: node ran 50 to 100 times slower), the frames of
    code made at run time read [jit], and the walk comes out of the JIT into
    the C++ that entered it, to main."""
    node = shutil.which("node") or shutil.which("nodejs")
    check(node, "node is not installed (Debian: nodejs)")
    d = tempfile.mkdtemp(prefix="mt-jit-")
    try:
        script = os.path.join(d, "buffers.js")
        with open(script, "w") as f:
            f.write(NODE_BUFFERS)
        for mode, env in MODES.items():
            out = os.path.join(d, mode)
            os.mkdir(out)
            r = bounded(f"node under memtrace ({mode})", [node, script], HANG,
                        env=dict(env, MEMTRACE_DEPTH="64"), dump_dir=out)
            eq((r.returncode, r.stdout), (0, b"1000\n"), f"node's own answer ({mode})")
            # freed ones too: node frees its buffers at exit
            js = show_json(only_snapshot(out), "--group-by", "traceback", "--sort", "allocs")
            t = js["totals"]
            walked = t["heap_alloc_count"] + t["mmap_alloc_count"]
            check(t["fast_unwinds"] >= 0.9 * walked,
                  f"{mode}: {t['fast_unwinds']} of {walked} stacks took the fast walk")
            eq(t["unwind_mismatches"], 0, f"{mode}: fast walks that disagreed")
            bufs = [s for s in js["stats"]
                    if s["traceback"] and "NodeArrayBufferAllocator::Allocate" in s["traceback"][0]]
            allocs = sum(s["allocs"] for s in bufs)
            check(allocs >= 100000, f"{mode}: {allocs} Buffer allocations found, 100000 made")
            for s in bufs:
                tb = s["traceback"]
                check(not any(f.startswith("?(") for f in tb), f"{mode}: an unnamed frame: {tb}")
                if s["allocs"] >= 1000:
                    check(any(f == "[jit]" or "Builtins_InterpreterEntryTrampoline" in f for f in tb),
                          f"{mode}: no JS frame in a Buffer stack: {tb}")
                    check(any("Builtins_JSEntry" in f for f in tb) and
                          any("node::Start" in f for f in tb),
                          f"{mode}: the walk did not come out of the JIT to node::Start: {tb}")
            print(f"{mode}: {t['fast_unwinds']} of {walked} stacks by the fast walk, "
                  f"{allocs} Buffer allocations in {len(bufs)} stacks")
        # with V8's perf map (/tmp/perf-PID.map), JIT frames have its names
        out = os.path.join(d, "perfmap")
        os.mkdir(out)
        r = bounded("node --perf-basic-prof under memtrace", [node, "--perf-basic-prof", script],
                    HANG, env={"MEMTRACE_DEPTH": "64"}, dump_dir=out)
        snap = only_snapshot(out)
        pid = int(os.path.basename(snap).split(".")[1])
        try:
            eq((r.returncode, r.stdout), (0, b"1000\n"), "node's own answer (perf map)")
            js = show_json(snap, "--group-by", "traceback", "--sort", "allocs")
            named = {f for s in js["stats"] for f in s["traceback"] if f.startswith("[jit] ")}
            check(any("buffers.js" in f for f in named),
                  f"a JIT frame named from the perf map, at buffers.js: {sorted(named)[:5]}")
            print("JIT frames named from the perf map:", sorted(named)[:3])
        finally:
            if os.path.exists(f"/tmp/perf-{pid}.map"):
                os.unlink(f"/tmp/perf-{pid}.map")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def case_host_numpy():
    # Debian's interpreter, whose numpy is Debian's python3-numpy
    code = ("import numpy as np, threading\n"
            "out = []\n"
            "def w(k): out.append(float(np.linalg.norm(np.arange(200000.0) * k)))\n"
            "ts = [threading.Thread(target=w, args=(k,)) for k in range(1, 5)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n"
            "print('numpy ok', len(out), round(sum(out)))\n")
    r = run(["/usr/bin/python3", "-c", "import numpy"], preload=False)
    eq(r.returncode, 0, f"numpy for /usr/bin/python3 (Debian: python3-numpy): {r.stderr[-200:]!r}")
    bare, _ = three_ways(["/usr/bin/python3", "-c", code], timeout=HANG)
    check(bare.stdout.startswith(b"numpy ok 4 "), bare.stdout)


# ---- faults ---------------------------------------------------------------

@base.case(victims=("storm",))
def case_fault_signal_storm():
    d = tempfile.mkdtemp(prefix="mt-storm-")
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    p = subprocess.Popen([victim("storm"), "10"], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.3)  # a signal before memtrace has started keeps its default action
    sent = 0
    end = time.time() + 10
    while p.poll() is None and time.time() < end + 20:
        try:
            os.kill(p.pid, signal.SIGUSR1)
            sent += 1
        except ProcessLookupError:
            break
        time.sleep(0.001)
    out, err = p.communicate(timeout=60)
    eq((p.returncode, out, err), (0, b"storm ok 1\n", b""), f"after {sent} signals")
    files = snaps(d, p.pid)
    check(len(files) >= 10, f"snapshots written during the storm: {len(files)}")
    eq([int(f.split(".")[-2]) for f in files], list(range(1, len(files) + 1)), "dense sequence")
    for f in files:
        js = show_json(f, "--domain", "all")
        check(all(s["count"] >= 0 for s in js["stats"]), f"{f}: counts")
    # each snapshot taken while the four threads ran is a consistent cut:
    # its callsites sum to its totals, heap and mmap (25 of them, spread)
    for f in files[::max(1, len(files) // 25)] + files[-1:]:
        sums_match_totals(f)
    eq(glob.glob(os.path.join(d, ".memtrace.*")), [], "no temp file left")
    print(f"{sent} signals, {len(files)} snapshots")


@base.case(victims=("many_sites_sleep",))
def case_fault_kill9():
    d = tempfile.mkdtemp(prefix="mt-kill-")
    rng = random.Random(99)
    killed_mid_dump = 0
    for i in range(30):
        e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, MEMTRACE_AT_EXIT="0")
        p = subprocess.Popen([victim("many_sites_sleep")], env=e, stderr=subprocess.PIPE)
        time.sleep(0.25)
        p.send_signal(signal.SIGUSR1)
        time.sleep(rng.uniform(0, 0.05))
        p.kill()
        p.wait(timeout=30)
        killed_mid_dump += bool(glob.glob(os.path.join(d, f".memtrace.{p.pid}.*.tmp")))
    for f in snaps(d):
        show_json(f)  # every final name holds a complete snapshot
    print(f"30 kills, {len(snaps(d))} complete snapshots, {killed_mid_dump} dumps cut short")
    check(killed_mid_dump > 0, "some kills landed in the middle of a dump")
    # a short process does not read the directory (a build's thousands of
    # snapshots would cost each process a read of all of them) ...
    left = sorted(glob.glob(os.path.join(d, ".memtrace.*.tmp")))
    r = run([victim("basic")], dump_dir=d)
    eq(r.returncode, 0, "next run")
    eq(sorted(glob.glob(os.path.join(d, ".memtrace.*.tmp"))), left, "a short process sweeps nothing")
    # ... the next one whose dump thread writes a snapshot sweeps the temp
    # files of the dead processes, after that snapshot
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, MEMTRACE_AT_EXIT="0")
    p = subprocess.Popen([victim("many_sites_sleep")], env=e, stderr=subprocess.PIPE)
    try:
        time.sleep(0.25)
        p.send_signal(signal.SIGUSR1)
        end = time.time() + 10
        while time.time() < end and (not snaps(d, p.pid) or
                                     glob.glob(os.path.join(d, ".memtrace.*.tmp"))):
            time.sleep(0.02)
        eq(len(snaps(d, p.pid)), 1, "the sweeper's own snapshot")
        eq(glob.glob(os.path.join(d, ".memtrace.*.tmp")), [], "leftover temp files swept")
    finally:
        p.kill()
        p.wait()


def mounted_tmpfs(size, mode=0o755):
    d = tempfile.mkdtemp(prefix="mt-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode:o}", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        raise Fail(f"cannot mount a tmpfs for the test: {r.stderr!r}")
    return d


@base.case(victims=("many_sites_sleep", "basic"))
def case_fault_dir():
    # full: a dump that does not fit fails cleanly; an older one stays intact
    d = mounted_tmpfs("64k")
    try:
        with open(os.path.join(d, "memtrace.1.1.snap"), "wb") as f:
            f.write(b"an older snapshot")
        p = subprocess.Popen([victim("many_sites_sleep")], stderr=subprocess.PIPE,
                             env=dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, MEMTRACE_AT_EXIT="0"))
        time.sleep(0.3)
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        check(p.poll() is None, "still running after a failed dump")
        p.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        p.kill()
        _, err = p.communicate(timeout=30)
        check(b"no space left on device" in err, err)
        eq(len(err.splitlines()), 2, f"one warning per failed dump: {err!r}")
        eq(sorted(os.listdir(d)), ["memtrace.1.1.snap"], "nothing left but the older file")
        eq(open(os.path.join(d, "memtrace.1.1.snap"), "rb").read(), b"an older snapshot", "intact")
        # read-only
        subprocess.run(["mount", "-o", "remount,ro", d], check=True)
        r = run([victim("basic")], dump_dir=d)
        eq((r.returncode, r.stdout), (0, b"basic ok\n"), "read-only dir: program unaffected")
        check(b"read-only file system" in r.stderr, r.stderr)
    finally:
        subprocess.run(["umount", d])
    # replaced by a symlink while running: refused, nothing written outside
    top = tempfile.mkdtemp(prefix="mt-swap-")
    dump, elsewhere = os.path.join(top, "dump"), os.path.join(top, "elsewhere")
    os.mkdir(dump)
    os.mkdir(elsewhere)
    p = subprocess.Popen([victim("many_sites_sleep")], stderr=subprocess.PIPE,
                         env=dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=dump, MEMTRACE_AT_EXIT="0"))
    time.sleep(0.3)
    os.rename(dump, dump + ".old")
    os.symlink(elsewhere, dump)
    p.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    p.kill()
    _, err = p.communicate(timeout=30)
    eq(os.listdir(elsewhere), [], "nothing written through the symlink")
    check(b"replaced by a symbolic link" in err, err)
    # ulimit -f: no SIGXFSZ death, the program's status unchanged
    d = tempfile.mkdtemp(prefix="mt-fsize-")
    r = run(["bash", "-c", f"ulimit -f 2; exec {victim('many_sites_sleep')} & pid=$!; sleep 0.3; "
             f"kill -USR1 $pid; sleep 0.5; kill -TERM $pid; wait $pid; echo status $?"], dump_dir=d)
    eq(r.stdout, b"status 143\n", "the program died of the SIGTERM it was sent, not of SIGXFSZ")
    check(b"file size limit" in r.stderr, r.stderr)
    eq(os.listdir(d), [], "no partial file")


@base.case(victims=("forks",))
def case_fault_fork_threads():
    d, r = run_victim("forks")
    eq((r.returncode, r.stdout), (0, b"forks ok 60\n"), f"forks: {r.stderr!r}")
    # the parent's own file; none from the fork children (they _exit); one
    # from each /bin/true that vfork+exec and posix_spawn started (40)
    exes = [show_json(f)["exe"] for f in snaps(d)]
    eq(exes.count(victim("forks")), 1, "one snapshot of the program itself")
    eq(sum(os.path.basename(e) == "true" for e in exes), 40, "the exec'd /bin/true runs")
    eq(len(exes), 41, "nothing else")
    d2, r = run_victim("forks", env=JEMALLOC)
    eq((r.returncode, r.stdout), (0, b"forks ok 60\n"), f"forks on jemalloc: {r.stderr!r}")


@base.case(victims=("manythreads",))
def case_fault_many_threads():
    for mode, extra in MODES.items():
        d, r = run_victim("manythreads", env=extra)
        eq((r.returncode, r.stdout, r.stderr), (0, b"threads ok\n", b""), f"{mode}: 10,000 threads")
        js = show_json(only_snapshot(d))
        expect_site(js, "manythreads.c", "kept", 10000 * 24, 10000)
        base.expect_absent(js, "manythreads.c", "keyval")  # freed by the key destructor
        base.expect_absent(js, "manythreads.c", "dtor_tmp")


@base.case(victims=("basic",))
def case_fault_env_fuzz():
    names = ["MEMTRACE_DIR", "MEMTRACE_DEPTH", "MEMTRACE_AT_EXIT", "MEMTRACE_VERBOSE",
             "MEMTRACE_SIGNAL", "MEMTRACE_INTERVAL", "MEMTRACE_ARENA_MAX", "MEMTRACE_ALLOCATOR",
             "MEMTRACE_SAMPLE", "MEMTRACE_SAMPLE_SEED", "MEMTRACE_FAIL_AFTER"]
    values = ["", "-1", "99999999999999999999", "abc", "x" * 65536]
    tried = 0
    for name in names:
        for val in values:
            d = tempfile.mkdtemp(prefix="mt-env-")
            r = run([victim("basic")], env={name: val}, dump_dir=None if name == "MEMTRACE_DIR" else d,
                    cwd=d)
            tried += 1
            eq((r.returncode, r.stdout), (0, b"basic ok\n"), f"{name}={val[:12]!r}: program unaffected")
            if name == "MEMTRACE_DIR" and val not in ("", "x" * 65536):
                # a legal relative name that does not exist: one warning at
                # the dump, nothing written anywhere
                eq(len(r.stderr.splitlines()), 1, r.stderr)
                check(b"no such directory" in r.stderr, r.stderr)
                eq(os.listdir(d), [], "nothing written")
                continue
            lines = r.stderr.decode().splitlines()
            eq(len(lines), 1, f"{name}={val[:12]!r}: one warning, got {lines}")
            check(name in lines[0] and len(lines[0]) < 400, lines[0][:200])
            js = show_json(only_snapshot(d))
            expect_site(js, "basic.c", "keep100", 100000, 1000)
    print(f"{tried} bad values, one warning each, defaults kept")


@base.case(victims=("secure",))
def case_fault_at_secure():
    work = tempfile.mkdtemp(prefix="mt-suid-")
    os.chmod(work, 0o755)
    exe = os.path.join(work, "secure")
    shutil.copy(victim("secure"), exe)
    os.chown(exe, 0, 0)
    os.chmod(exe, 0o4755)
    d = tempfile.mkdtemp(prefix="mt-suid-dump-")
    os.chmod(d, 0o1777)
    nob = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", exe],
                         env=dict(os.environ, MEMTRACE_DIR=d, MEMTRACE_VERBOSE="1",
                                  MEMTRACE_DEPTH="abc"), capture_output=True, timeout=60)
    eq((nob.returncode, nob.stdout, nob.stderr), (0, b"secure -38\n", b""),
       "setuid run by another user: mt_snapshot says ENOSYS, nothing printed")
    eq(os.listdir(d), [], "nothing written under AT_SECURE")
    # the same binary without the setuid bit tracks as usual
    os.chmod(exe, 0o755)
    r = subprocess.run([exe], env=dict(os.environ, MEMTRACE_DIR=d), capture_output=True, timeout=60)
    eq((r.returncode, r.stdout), (0, b"secure 0\n"), "without setuid it tracks")


@base.case(victims=("threads", "basic"))
def case_fault_internal_oom():
    bare = run([victim("threads")], preload=False)
    for n in (1, 2, 4, 8, 16, 32, 64, 128, 512):
        d = tempfile.mkdtemp(prefix="mt-oom-")
        r = run([victim("threads")], env={"MEMTRACE_FAIL_AFTER": str(n)}, dump_dir=d)
        eq((r.returncode, r.stdout), (bare.returncode, bare.stdout), f"fail after {n}: program unaffected")
        # degraded and said so: the tables gave up tracking, or a snapshot
        # could not get its buffer (which request fails first depends on
        # the threads' timing), or the snapshots are there
        check(b"out of memory for memtrace's own tables" in r.stderr or
              (b"cannot write a snapshot" in r.stderr and b"out of memory" in r.stderr) or
              snaps(d), f"fail after {n}: degraded and said so: {r.stderr!r}")
        for f in snaps(d):
            show_json(f)
    # basic under heavy failure: its results are unchanged
    r = run([victim("basic")], env={"MEMTRACE_FAIL_AFTER": "3"},
            dump_dir=tempfile.mkdtemp(prefix="mt-oom-"))
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "errno and calloc checks still pass")


if __name__ == "__main__":
    sys.exit(base.main(globals()))
