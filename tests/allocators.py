#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Allocator control, one case per process: `allocators.py CASE`.

MEMTRACE_ARENA_MAX, the jemalloc backend, jemalloc, tcmalloc, mimalloc or a
program's own allocator behind memtrace (named, measured, the program's
output unchanged), no glibc arena under jemalloc (pmap), memtrace
allocators' advice and VMS figures against pmap, and RSS and VMS against
/proc.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from mtlib import (case, check, eq, expect_absent, expect_site, free_port, only_snapshot, python3,
                   run, run_victim, same_as_without, show_json, snaps, start_redis, stop_redis,
                   sums_match_totals, tool, victim, ARENAS, JEMALLOC, LIB, PY, SQL, TOOL, main)
CASE_SUITE = "preload"


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
        # memtrace's figure is the kernel's VmPeak; that the kernel's own
        # VmPeak, read just after pmap, can stand below what pmap summed
        # (CI saw 642 MiB against 658 once, under load) is the kernel's
        # accounting, not memtrace's: the floor is the lower of the two
        check(got >= 0.99 * min(total, peak) and abs(got - peak) <= 0.10 * peak,
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


if __name__ == "__main__":
    sys.exit(main(globals()))
