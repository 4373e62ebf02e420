#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The analyzer's views, one case per process: `analyzer.py CASE`.

memtrace show (every view option), diff, growth and their verdicts, the
JSON equal to the text, progress on a terminal, a module gone since the
snapshot, the demo as the README runs it, and memtrace report: the page's
figures equal show's and growth's, it loads nothing, and bad input or
output is refused leaving nothing behind.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from tracemalloc import _format_size  # the reference for the size format

from mtlib import (case, check, eq, expect_absent, leak_series, line_of, only_snapshot, page_data,
                   run, run_victim, show_json, snaps, tool, victim, DEMO, MANYSITES, SRC, TIMEOUT,
                   TOOL, main)
CASE_SUITE = "preload"


@case(suite="cli")
def case_demo():
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([DEMO], dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"demo: served 10000 requests, 10 bytes of config\n"), "demo")
    every = snaps(d)
    eq([show_json(f)["reason"] for f in every], ["on request (mt_snapshot)"] * 3 + ["at exit"],
       "three snapshots while it serves, one at exit")
    snap = every[-1]
    text = subprocess.run([TOOL, "show", snap], capture_output=True, text=True).stdout
    demo_c = os.path.join(SRC, "tools", "demo", "demo.c")
    lines = open(demo_c).read().splitlines()
    leak = next(i for i, l in enumerate(lines, 1) if "never freed" in l)
    cfg = next(i for i, l in enumerate(lines, 1) if "calloc(1, 12345)" in l)
    rows = [l for l in text.splitlines() if l.startswith(demo_c)]
    eq(rows[0], f"{demo_c}:{leak}: size=93.8 KiB, count=1000, average=96 B", "top line")
    eq(rows[1], f"{demo_c}:{cfg}: size=12.1 KiB, count=1, average=12.1 KiB", "second line")
    # the peak is never below what is live (threads' pending bytes included)
    t = show_json(snap)["totals"]
    check(t["heap_peak_bytes"] >= t["heap_live_bytes"] > 0, f"peak below live: {t}")
    # the series names the session cache as what grows, steadily
    g = json.loads(tool("growth", "--json", *every).stdout)
    top = g["suspects"][0]
    eq((top["file"], top["line"], top["trend"]), (demo_c, leak, "steady"), f"growth: {top}")


@case(suite="cli", victims=("basic", "cxx"))
def case_show_views():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path, line = line_of("basic.c", "keep100")
    js = show_json(snap, "--group-by", "file")
    eq(js["stats"][0]["key"], path, "file grouping")
    check(js["stats"][0]["size"] >= 100000 + 12345, "file total")
    js = show_json(snap, "--group-by", "function")
    eq(js["stats"][0]["key"], "main", "function grouping")
    js = show_json(snap, "--group-by", "module")
    eq(js["stats"][0]["key"], victim("basic"), "module grouping")
    js = show_json(snap, "--cumulative")
    keys = [s["key"] for s in js["stats"]]
    check(f"{path}:{line}" in keys, "cumulative keeps the line")
    js = show_json(snap, "--include", "*basic.c")
    check(all(s["file"] == path for s in js["stats"]), "include by file pattern")
    js = show_json(snap, "--exclude", "*basic.c")
    check(all(s["file"] != path for s in js["stats"]), "exclude by file pattern")
    js = show_json(snap, "--include", "__libc_start_call_main", "--all-frames")
    check(any(s["key"] == f"{path}:{line}" for s in js["stats"]), "--all-frames matches a caller")
    js = show_json(snap, "--include", "__libc_start_call_main")
    eq(js["stats"], [], "without --all-frames only the line's frame is matched")
    js = show_json(snap, "--sort", "allocs")
    fpath, fline = line_of("basic.c", "freed64")
    freed = [s for s in js["stats"] if s["key"] == f"{fpath}:{fline}"]
    eq([(s["allocs"], s["size"]) for s in freed], [(500, 0)], "--sort allocs shows freed churn")
    js = show_json(snap, "--sort", "count")
    eq(js["stats"][0]["key"], f"{path}:{line}", "--sort count")
    text = tool("show", "-n", "1", snap).stdout
    check(re.search(r"^\d+ other: size=", text, re.M), "the rest summed in an 'other' line")
    r = tool("show", "--group-by", "traceback", "--cumulative", snap, check_rc=1)
    check("does not go with" in r.stderr, r.stderr)
    r = tool("show", "--limit", "x", snap, check_rc=1)
    check("--limit" in r.stderr, r.stderr)
    # C++: operator new and the std:: containers are passed over
    d, r = run_victim("cxx")
    js = show_json(only_snapshot(d), "--group-by", "function")
    check(all(not s["key"].startswith("operator new") for s in js["stats"]), js["stats"][:3])


def parse_stat_lines(text):
    return [l for l in text.splitlines()
            if re.match(r"^(#\d+ )?\S.*: size=", l) and not l.startswith("Total (")]


@case(suite="cli", victims=("leak",))
def case_json_matches_text():
    d, files, _ = leak_series()
    for args in ([], ["--group-by", "function"], ["--domain", "all"], ["--group-by", "traceback"]):
        js = show_json(files[2], *args)
        lines = parse_stat_lines(tool("show", "-n", "0", *args, files[2]).stdout)
        want = []
        for s in js["stats"]:
            line = f"{s['key']}: size={_format_size(s['size'], False)}, count={s['count']}"
            if s["count"]:
                line += f", average={_format_size(s['size'] / s['count'], False)}"
            want.append(line)
        eq(lines, want, f"show {args}: text and JSON")
    js = json.loads(tool("diff", "--json", "-n", "0", files[0], files[2]).stdout)
    lines = parse_stat_lines(tool("diff", "-n", "0", files[0], files[2]).stdout)
    want = []
    for s in js["stats"]:
        line = (f"{s['key']}: size={_format_size(s['size'], False)} "
                f"({_format_size(s['size_diff'], True)}), count={s['count']} ({s['count_diff']:+d})")
        if s["count"]:
            line += f", average={_format_size(s['size'] / s['count'], False)}"
        want.append(line)
    eq(lines, want, "diff: text and JSON")
    js = json.loads(tool("growth", "--json", "-n", "0", *files).stdout)
    lines = parse_stat_lines(tool("growth", "-n", "0", *files).stdout)
    want = [f"#{s['rank']} {s['key']}: size={_format_size(s['size'], False)} "
            f"({_format_size(s['size_diff'], True)}), count={s['count']} ({s['count_diff']:+d}), "
            f"{_format_size(s['rate'], True)}/s, grew in {s['grew']} of {s['intervals']} "
            f"intervals: {s['trend']}" for s in js["suspects"]]
    eq(lines, want, "growth: text and JSON")
    js = json.loads(tool("leaks", "--json", "-n", "0", "--show", "all", files[-1]).stdout)
    text = tool("leaks", "-n", "0", "--show", "all", files[-1]).stdout
    heads = re.findall(r"^(Direct leak of|Indirect leak of|Possible leak of|Still reachable:) "
                       r"(\d+) byte\(s\)(?: \((.*)\))? in (\d+) object", text, re.M)
    kinds = {"definite": "Direct leak of", "indirect": "Indirect leak of",
             "possible": "Possible leak of", "reachable": "Still reachable:"}

    def also(size):  # the size again, once it is not in bytes
        f = _format_size(size, False)
        return "" if f.endswith(" B") else f
    eq(heads, [(kinds[l["class"]], str(l["size"]), also(l["size"]), str(l["count"]))
               for l in js["leaks"]], "leaks: text and JSON")
    check(len(heads) >= 2, f"leaks lists the classes: {heads}")
    b = r"(?:(\d+) bytes?|[\d.]+ [KMGT]iB \((\d+) bytes\))"
    totals = re.search(rf"^Definitely lost: {b} in (\d+) blocks?; Indirectly lost: {b} in (\d+) "
                       rf"blocks?; Possibly lost: {b} in (\d+) blocks?; Still reachable: {b} in "
                       r"(\d+) blocks?", text, re.M)
    for n, word in re.findall(r"(\d+) (blocks?)\b", totals.group(0)):
        eq(word, "block" if n == "1" else "blocks", f"number agreement: {n} {word}")
    check(totals, f"the classes' totals line: {text[:600]}")
    eq([int(x) for x in totals.groups() if x is not None],
       [v for k in ("definite", "indirect", "possible", "reachable")
        for v in (js["classes"][k]["bytes"], js["classes"][k]["blocks"])], "leaks: totals, text and JSON")


@case(suite="cli", victims=("basic", "realloc"))
def case_diff_two_processes():
    d1, _ = run_victim("basic")
    d2, _ = run_victim("realloc")
    r = tool("diff", only_snapshot(d1), only_snapshot(d2))
    check("mixes two processes" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr)
    r = tool("growth", only_snapshot(d1), only_snapshot(d2))
    check("mixes two processes" in r.stderr, r.stderr)
    r = tool("diff", only_snapshot(d1), check_rc=1)
    check("needs two snapshot files" in r.stderr, r.stderr)
    r = tool("diff", only_snapshot(d1), "/nonexistent.snap", check_rc=2)
    check("/nonexistent.snap: cannot open" in r.stderr and "offset" not in r.stderr, r.stderr)


@case(suite="cli", victims=("basic", "leak"))
def case_views_text_details():
    """show --sort allocs prints the allocations the order is by, and growth
    -g traceback prints every frame of a suspect, as show does."""
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path, line = line_of("basic.c", "freed64")
    out = tool("show", "--sort", "allocs", "-n", "0", snap).stdout
    check(re.search(rf"^{re.escape(path)}:{line}: size=0 B, count=0, allocs=500 \(31.2 KiB in total\)$",
                    out, re.M), f"show --sort allocs: {out}")
    d, files, err = leak_series()
    running = files[:4]
    out = tool("growth", "-g", "traceback", "-n", "1", *running).stdout
    js = json.loads(tool("show", "--json", "-g", "traceback", "-n", "0", running[-1]).stdout)
    path, line = line_of("leak.c", "leak")
    tb = next(s["traceback"] for s in js["stats"] if s["file"] == path and s["line"] == line)
    body = out.split("Leak suspects", 1)[1].splitlines()[2:2 + len(tb)]
    eq([l.strip() for l in body], tb, f"growth -g traceback's frames: {out}")


@case(suite="cli", victims=("basic",))
def case_progress():
    """Symbolizing a large snapshot shows progress on a terminal, erased at
    the end; nothing when stderr is not a terminal or the work is quick."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([MANYSITES, "100000", "1"], dump_dir=d, env={"MEMTRACE_AT_EXIT": "0"})
    eq(r.returncode, 0, f"manysites: {r.stderr!r}")
    big = snaps(d)[0]
    small_dir, _ = run_victim("basic")
    small = only_snapshot(small_dir)

    def on_tty(cmd, env):
        e = dict(os.environ, **env)
        e.pop("LD_PRELOAD", None)
        r = subprocess.run(["script", "-qfec", " ".join(cmd) + " >/dev/null", "/dev/null"],
                           capture_output=True, env=e, timeout=TIMEOUT)
        eq(r.returncode, 0, f"{cmd} under script: {r.stderr!r}")
        return r.stdout.decode()

    name = os.path.basename(big)
    out = on_tty([TOOL, "show", "-g", "traceback", big], {"MEMTRACE_PROGRESS": "auto"})
    check(re.search(r"\rmemtrace: symbolizing " + re.escape(name) +
                    r": \d+% \(\d+ of 100\d\d\d callsites\)\x1b\[K", out), repr(out[:300]))
    check(out.endswith("\r\x1b[K"), f"the progress line is erased at the end: {out[-40:]!r}")
    eq(on_tty([TOOL, "show", small], {}), "", "a quick command shows no progress")
    eq(on_tty([TOOL, "show", "-g", "traceback", big], {"MEMTRACE_PROGRESS": "never"}), "",
       "MEMTRACE_PROGRESS=never")
    r = subprocess.run([TOOL, "show", "-g", "traceback", big], capture_output=True, text=True,
                       timeout=TIMEOUT)
    eq(r.stderr, "", "no progress when stderr is not a terminal")
    r = subprocess.run([TOOL, "show", small], capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, MEMTRACE_PROGRESS="always"))
    sname = os.path.basename(small)
    n = show_json(small)["totals"]["sites"]
    eq(r.stderr.splitlines(), [f"memtrace: symbolizing {sname}: 0% (0 of {n} callsites)",
                               f"memtrace: symbolizing {sname}: 100% ({n} of {n} callsites)"],
       "MEMTRACE_PROGRESS=always, one line per update off a terminal")
    r = subprocess.run([TOOL, "show", small], capture_output=True, text=True, timeout=TIMEOUT,
                       env=dict(os.environ, MEMTRACE_PROGRESS="loud"))
    eq(r.stderr, "memtrace: warning: MEMTRACE_PROGRESS is auto, never or always, not 'loud'; "
       "using auto\n", "a bad MEMTRACE_PROGRESS")


@case(suite="cli", victims=("leak",))
def case_memory_verdict():
    d, files, _ = leak_series()
    js = json.loads(tool("diff", "--json", files[0], files[2]).stdout)
    check(js["verdict"].startswith("the live heap grew"), js["verdict"])
    text = tool("diff", files[0], files[2]).stdout
    check(re.search(r"^Memory: live heap .* \(\+.*\); glibc holds .* arenas \([+-]\d+\); RSS .*VMS",
                    text, re.M), text)
    check("Verdict: the live heap grew" in text, text)
    text = tool("growth", *files).stdout
    check(re.search(r"^\s+seq\s+seconds\s+heap live\s+blocks\s+heap peak\s+mmap live\s+held\s+"
                    r"arenas\s+RSS\s+VMS$", text, re.M), text)


@case(suite="cli", victims=("basic",))
def case_deleted_exe():
    """A module gone since the snapshot (a deleted or rebuilt-elsewhere
    program): said once, its frames shown as addresses, exit 0."""
    d = tempfile.mkdtemp(prefix="mt-gone-")
    exe = os.path.join(d, "gone")
    shutil.copy(victim("basic"), exe)
    r = run([exe], dump_dir=d)
    eq(r.returncode, 0, r.stderr)
    snap = only_snapshot(d)
    os.unlink(exe)
    for cmd in (["show"], ["leaks"]):
        r = tool(*cmd, snap)
        eq(r.stderr, f"memtrace: warning: {exe} is gone (No such file or directory); its frames "
           "are shown as addresses\n", f"{cmd[0]}: one line")
        check(re.search(r"^gone\(\+0x[0-9a-f]+\): size=97.7 KiB", r.stdout, re.M) or cmd[0] != "show",
              r.stdout)


@case(suite="cli", victims=("verdicts",))
def case_verdict_evidence():
    """The verdict follows the evidence: a line that grew in every interval
    is a leak suspect however small; a fall is a fall."""
    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "slow", "2.2"], env={"MEMTRACE_INTERVAL": "0.5"}, dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts slow ok\n"), r.stderr)
    series = [f for f in snaps(d) if show_json(f)["reason"] == "periodic"]
    eq(len(series), 4, "periodic snapshots")
    js = json.loads(tool("growth", "--json", *series).stdout)
    path, line = line_of("verdicts.c", "slow")
    top = js["suspects"][0]
    eq((top["file"], top["line"], top["trend"], top["grew"]), (path, line, "steady", 3),
       "the slow leak ranks first, grown in every interval")
    check(top["size_diff"] < 65536, f"under the old threshold: {top['size_diff']}")
    eq(js["verdict"], "1 line grew in every one of the 3 intervals: leak suspects, however "
       "small the growth", "growth's verdict")
    text = tool("growth", *series).stdout
    check("Verdict: 1 line grew in every one of the 3 intervals" in text, text)
    check("not a leak" not in text, text)
    html = os.path.join(d, "report.html")
    tool("report", "-o", html, *series)
    page = page_data(open(html).read())
    eq(page["verdict"], js["verdict"], "the report's verdict is growth's")

    # a program that frees at exit, through the README's glob: the at-exit
    # snapshot is its teardown, left out, and the leak still shows
    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "slow", "2.2", "tidy"], env={"MEMTRACE_INTERVAL": "0.5"},
            dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts slow ok\n"), r.stderr)
    every = snaps(d)
    expect_absent(show_json(every[-1]), "verdicts.c", "slow")  # freed at exit
    r = tool("growth", "--json", *every)
    js = json.loads(r.stdout)
    eq(len(js["snapshots"]), len(every) - 1, "the at-exit snapshot left out")
    check("left out" in r.stderr and every[-1] in r.stderr, r.stderr)
    top = js["suspects"][0]
    eq((top["file"], top["line"], top["trend"]), (path, line, "steady"), "the leak, not 'shrinking'")
    check(js["verdict"].endswith("leak suspects, however small the growth"), js["verdict"])
    tool("report", "-o", html, *every)
    page = page_data(open(html).read())
    eq(len(page["snaps"]), len(every) - 1, "the report's series")

    d = tempfile.mkdtemp(prefix="mt-verdict-")
    r = run([victim("verdicts"), "fall", "2.2"], env={"MEMTRACE_INTERVAL": "0.5"}, dump_dir=d)
    eq((r.returncode, r.stdout), (0, b"verdicts fall ok\n"), r.stderr)
    series = [f for f in snaps(d) if show_json(f)["reason"] == "periodic"]
    first, last = show_json(series[0])["totals"], show_json(series[-1])["totals"]
    check(first["heap_live_bytes"] - last["heap_live_bytes"] >= 1500 * 1024,
          f"the cache was freed: {first['heap_live_bytes']} -> {last['heap_live_bytes']}")
    js = json.loads(tool("growth", "--json", *series).stdout)
    check(js["verdict"].startswith("the live heap fell"), js["verdict"])
    js = json.loads(tool("diff", "--json", series[0], series[-1]).stdout)
    check(js["verdict"].startswith("the live heap fell"), js["verdict"])


def loads_nothing(html):
    """No URL to fetch, no element or call that would fetch one."""
    check("default-src 'none'" in html, "the page's Content-Security-Policy forbids loading")
    text = re.sub(r'<a\s[^>]*href="[^"]*"', "", html)
    check(not re.search(r"https?://", text, re.I), re.findall(r".{40}https?://.{40}", text))
    for pat in (r"<link\b", r"\bsrc\s*=", r"url\(", r"@import", r"\bfetch\(", r"XMLHttpRequest",
                r"WebSocket", r"EventSource", r"sendBeacon", r"\bimport\(", r"<iframe", r"<img",
                r"<object", r"<embed", r"\.src\b"):
        check(not re.search(pat, html, re.I), f"{pat} in the page")


@case(suite="cli", victims=("leak", "basic"))
def case_report_cli():
    d, files, _ = leak_series()
    try:
        report_cli(d, files)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def report_cli(d, files):
    r = tool("report", "--help")
    check("-o, --output FILE" in r.stdout and "usage: memtrace report" in r.stdout, r.stdout)
    out = os.path.join(d, "out")
    os.mkdir(out)
    page = os.path.join(out, "r.html")
    # bad usage: 1
    for args in ([], [files[0]], ["-o", page], ["-g", "nope", "-o", page, files[0]]):
        r = tool("report", *args, check_rc=1)
        eq(len(r.stderr.splitlines()), 1, f"one line for report {args}: {r.stderr!r}")
    tool("report", "--json", "-o", page, files[0], check_rc=1)  # not for a page
    # a bad snapshot: 2, one line naming it, nothing written
    bad = os.path.join(d, "bad.snap")
    with open(bad, "wb") as f:
        f.write(b"MTSNAP? not really")
    r = tool("report", "-o", page, files[0], bad, check_rc=2)
    eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr!r}")
    check(r.stderr.startswith(f"memtrace: {bad}"), r.stderr)
    eq(os.listdir(out), [], "nothing written for a bad snapshot")
    # an unwritable page: 2, one line, nothing left behind
    before = sorted(os.listdir(d))
    for target in (os.path.join(d, "missing", "r.html"), os.path.join(files[0], "r.html"),
                   "/proc/memtrace-report.html", out):
        r = tool("report", "-o", target, *files, check_rc=2)
        eq(r.stderr.splitlines(), [r.stderr.strip()], f"one line for -o {target}")
        check(r.stderr.startswith(f"memtrace report: cannot write {target}: "), r.stderr)
        eq(sorted(os.listdir(d)), before, f"nothing left after -o {target}")
        eq(os.listdir(out), [], f"nothing left in {out}")

    # the page: whole, world-readable as the umask allows, the same on stdout
    tool("report", "-o", page, *files)
    mask = os.umask(0)
    os.umask(mask)
    eq(os.stat(page).st_mode & 0o777, 0o666 & ~mask, "mode of the page")
    eq(os.listdir(out), ["r.html"], "only the page in its directory")
    with open(page) as f:
        html = f.read()
    eq(tool("report", "-o", "-", *files).stdout, html, "the page on standard output")
    with open("/dev/full", "w") as full:
        r = subprocess.run([TOOL, "report", "-o", "-", *files], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=TIMEOUT)
    eq((r.returncode, r.stderr), (2, "memtrace report: cannot write standard output: No space left on "
                                     "device\n"), "a full standard output")
    # a symbolic link stays one, its file is replaced with the same mode; a
    # pipe is written in place
    link, real = os.path.join(d, "link.html"), os.path.join(d, "real.html")
    with open(real, "w") as f:
        f.write("old")
    os.chmod(real, 0o600)
    os.symlink("real.html", link)
    tool("report", "-o", link, *files)
    check(os.path.islink(link), "the link is still a link")
    eq(os.stat(real).st_mode & 0o777, 0o600, "mode of the replaced page")
    with open(real) as f:
        eq(f.read(), html, "the page through the link")
    fifo = os.path.join(d, "pipe")
    os.mkfifo(fifo)
    with ThreadPoolExecutor(1) as ex:
        got = ex.submit(lambda: open(fifo).read())
        tool("report", "-o", fifo, *files)
        eq(got.result(timeout=TIMEOUT), html, "the page through a pipe")
    check(stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe is still a pipe")
    check(html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>"), "a whole page")
    loads_nothing(html)

    # its data: the figures of show and growth, exactly
    data = page_data(html)
    eq(len(data["snaps"]), len(files) - 1, "snapshots in the page: the at-exit one left out")
    groups = {g[0]: g for g in data["groups"]}
    for i, f in enumerate(files[:-1]):
        js = show_json(f)
        eq(data["snaps"][i]["seq"], js["seq"], "snapshots in time order")
        for s in js["stats"]:
            eq((groups[s["key"]][8][i], groups[s["key"]][9][i]), (s["size"], s["count"]),
               f"{s['key']} in snapshot {js['seq']}")
        eq(sum(g[8][i] for g in data["groups"]), js["totals"]["heap_live_bytes"], "groups' sum")
        eq(sum(u[1] for u in data["snaps"][i]["sites"]), js["totals"]["heap_live_bytes"],
           "the flame graph's bytes")
    growth = json.loads(tool("growth", "--json", "-n", "0", *files).stdout)
    for s in growth["suspects"]:
        g = groups[s["key"]]
        eq((g[5], g[7], round(g[6])), (s["trend"], s["grew"], round(s["rate"])),
           f"growth of {s['key']}")
    eq(data["verdict"], growth["verdict"], "verdict")
    # stacks: outermost first, down to the line that asked, malloc cut off
    path, line = line_of("leak.c", "leak")
    frames = [(data["strings"][f[0]] if f[0] >= 0 else None,
               data["strings"][f[1]] if f[1] >= 0 else None, f[2]) for f in data["frames"]]
    leaf = {frames[s[-1]] for s in data["stacks"]}
    check(("leak_one", path, line) in leaf, f"a stack ending at leak_one, {path}:{line}: {leaf}")
    check(all(f[0] not in ("malloc", "__libc_malloc") for f in frames), "no allocator frame")
    # the views apply: --include keeps only matching lines
    r = tool("report", "--include", "*nothing-matches*", "-o", "-", *files)
    eq(page_data(r.stdout)["groups"], [], "groups with a filter that matches nothing")

    # a program path that tries to close the script and the title
    odd = os.path.join(d, "<", "script><!--")
    os.makedirs(odd)
    exe = os.path.join(odd, "v<b>&'\"")
    shutil.copy(victim("basic"), exe)
    d2 = os.path.join(d, "snaps")
    os.mkdir(d2)
    r = run([exe], dump_dir=d2)
    eq(r.returncode, 0, f"{exe}: {r.stderr}")
    html = tool("report", "-o", "-", only_snapshot(d2)).stdout
    eq(len(re.findall(r"</script", html, re.I)), 2, "only the page's own script elements close")
    eq(page_data(html)["exe"], exe, "the program's path, intact")
    check("<title>memtrace report: v&lt;b&gt;&amp;'&quot; (pid" in html, "the title, escaped")
    loads_nothing(html.replace(exe, ""))


if __name__ == "__main__":
    sys.exit(main(globals()))
