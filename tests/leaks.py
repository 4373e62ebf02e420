#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Leaks, one case per process: `leaks.py CASE`.

memtrace leaks' classes against valgrind memcheck on a victim with a block
of every class and on real programs, suppressions (built-in and LSan's
format), what libc keeps for the process's life, and memtrace check's
budgets on growth and on leaks.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from tracemalloc import _format_size  # the reference for the size format

from mtlib import (case, check, eq, leak_series, line_of, only_snapshot, run, run_victim, show_json,
                   snaps, tool, victim, SRC, main)
CASE_SUITE = "preload"


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
    # nothing live at exit: nothing can be lost; the scan's process is not
    # started, and the scan record says no block was scanned
    d3 = tempfile.mkdtemp(prefix="mt-true-")
    eq(run(["true"], dump_dir=d3).returncode, 0, "true under memtrace")
    s3 = only_snapshot(d3)
    eq(show_json(s3)["totals"]["heap_live_count"], 0, "true: no live block at exit")
    js = json.loads(tool("leaks", "--json", "--show", "all", s3).stdout)
    eq((js["scan"]["status"], js["leaked_bytes"], js["leaks"]), ("done", 0, []),
       "true: the scan is done, and finds nothing")
    eq({k: v["blocks"] for k, v in js["classes"].items()},
       {"definite": 0, "indirect": 0, "possible": 0, "reachable": 0}, "true: every class empty")
    rec = [json.loads(l) for l in tool("dump", s3).stdout.splitlines() if '"LEAKSCAN"' in l]
    eq([(r["status"], r["blocks"], r["root_bytes"]) for r in rec], [(1, 0, 0)],
       "true: the scan record: done, no block, no root scanned")
    shutil.rmtree(d3)
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


if __name__ == "__main__":
    sys.exit(main(globals()))
