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
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as base  # noqa: E402
from run import (Fail, check, eq, expect_site, line_of, only_snapshot, python3, run, run_victim,  # noqa: E402
                 show_json, snaps, sums_match_totals, tool, victim, LIB, JEMALLOC)

MODES = {"system": {}, "jemalloc": JEMALLOC}
# real programs also run sampled (the estimates are checked elsewhere: here,
# the program's own behaviour and well-formed snapshots)
MATRIX = dict(MODES, sampled={"MEMTRACE_SAMPLE": "64K", "MEMTRACE_SAMPLE_SEED": "1"})


def three_ways(cmd, env=None, input=None, cwd_factory=None, compare=("stdout", "stderr")):
    """bare, then memtrace on each allocator and sampled: same exit status and
    output; every snapshot parses and per-callsite sums equal the totals."""
    env = env or {}
    bare = run(cmd, env=env, preload=False, input=input, cwd=cwd_factory() if cwd_factory else None)
    out = {}
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix=f"mt-{mode}-")
        r = run(cmd, env=dict(env, **extra), dump_dir=d, input=input,
                cwd=cwd_factory() if cwd_factory else None)
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
    src = os.path.join(os.environ["MT_SRC"], "src", "table.c")
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def case_matrix_redis():
    for mode, extra in MATRIX.items():
        d = tempfile.mkdtemp(prefix=f"mt-redis-{mode}-")
        port = free_port()
        env = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d, **extra)
        srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", d],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                  timeout=5).stdout == b"PONG\n":
                    break
                time.sleep(0.05)
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
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True,
                           timeout=10)
            srv.wait(timeout=30)
        eq(srv.returncode, 0, f"{mode}: redis-server exit status")


# ---- faults ---------------------------------------------------------------

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
    sums_match_totals(files[-1])
    eq(glob.glob(os.path.join(d, ".memtrace.*")), [], "no temp file left")
    print(f"{sent} signals, {len(files)} snapshots")


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
    # the next start cleans up the temp files of the dead processes
    r = run([victim("basic")], dump_dir=d)
    eq(r.returncode, 0, "next run")
    eq(glob.glob(os.path.join(d, ".memtrace.*.tmp")), [], "leftover temp files cleaned at start")


def mounted_tmpfs(size, mode=0o755):
    d = tempfile.mkdtemp(prefix="mt-tmpfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode:o}", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        raise Fail(f"cannot mount a tmpfs for the test: {r.stderr!r}")
    return d


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


def case_fault_many_threads():
    for mode, extra in MODES.items():
        d, r = run_victim("manythreads", env=extra)
        eq((r.returncode, r.stdout, r.stderr), (0, b"threads ok\n", b""), f"{mode}: 10,000 threads")
        js = show_json(only_snapshot(d))
        expect_site(js, "manythreads.c", "kept", 10000 * 24, 10000)
        base.expect_absent(js, "manythreads.c", "keyval")  # freed by the key destructor
        base.expect_absent(js, "manythreads.c", "dtor_tmp")


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


def case_fault_internal_oom():
    bare = run([victim("threads")], preload=False)
    for n in (1, 2, 4, 8, 16, 32, 64, 128, 512):
        d = tempfile.mkdtemp(prefix="mt-oom-")
        r = run([victim("threads")], env={"MEMTRACE_FAIL_AFTER": str(n)}, dump_dir=d)
        eq((r.returncode, r.stdout), (bare.returncode, bare.stdout), f"fail after {n}: program unaffected")
        check(b"out of memory for memtrace's own tables" in r.stderr or snaps(d),
              f"fail after {n}: degraded and said so: {r.stderr!r}")
        for f in snaps(d):
            show_json(f)
    # basic under heavy failure: its results are unchanged
    r = run([victim("basic")], env={"MEMTRACE_FAIL_AFTER": "3"},
            dump_dir=tempfile.mkdtemp(prefix="mt-oom-"))
    eq((r.returncode, r.stdout), (0, b"basic ok\n"), "errno and calloc checks still pass")


if __name__ == "__main__":
    sys.exit(base.main(globals()))
