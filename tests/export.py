#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""memtrace export, one case per process: `export.py CASE`.

pprof decoded by protoc (exact bytes and counts at known lines, build ids,
inlined calls) and read by go tool pprof offline, collapsed stacks summing
to the totals, JSON frames equal to show's tracebacks, and bad input,
unwritable output and terminals refused.
"""
import codecs
import json
import os
import pty
import re
import resource
import stat
import subprocess
import sys
import tempfile

from mtlib import (case, check, eq, export, export_pprof, go_pprof, good_snapshot, leak_series,
                   line_of, only_snapshot, pprof_top, run, run_victim, show_json, snaps,
                   stats_by_line, victim, MANYSITES, TIMEOUT, TOOL, main)
CASE_SUITE = "preload"


PPROF_PROTO = os.environ["MT_PPROF_PROTO"]  # the build's pprof_proto option


PPROF_TYPES = [("inuse_space", "bytes"), ("inuse_objects", "count"),
               ("alloc_space", "bytes"), ("alloc_objects", "count")]


def parse_textproto(text):
    """protoc's text format as nested dicts of lists (absent fields are 0)."""
    root, stack = {}, []
    cur = root
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "}":
            cur = stack.pop()
        elif line.endswith("{"):
            child = {}
            cur.setdefault(line[:-1].strip(), []).append(child)
            stack.append(cur)
            cur = child
        else:
            key, val = line.split(":", 1)
            val = val.strip()
            if val.startswith('"'):
                val = codecs.escape_decode(val[1:-1].encode())[0].decode()
            elif val in ("true", "false"):
                val = val == "true"
            else:
                val = int(val)
            cur.setdefault(key, []).append(val)
    eq(stack, [], "balanced braces in protoc's output")
    return root


def one(msg, key, default=0):
    return msg.get(key, [default])[0]


class Pprof:
    """A profile decoded by gunzip and protoc, independent of memtrace's writer."""

    def __init__(self, path):
        gz = subprocess.run(["gunzip", "-c", path], capture_output=True, timeout=TIMEOUT)
        eq(gz.returncode, 0, f"gunzip {path}: {gz.stderr}")
        r = subprocess.run(["protoc", "--decode=perftools.profiles.Profile",
                            "--proto_path=" + os.path.dirname(PPROF_PROTO),
                            os.path.basename(PPROF_PROTO)],
                           input=gz.stdout, capture_output=True, timeout=TIMEOUT)
        eq(r.returncode, 0, f"protoc --decode of {path}: {r.stderr.decode()}")
        eq(r.stderr, b"", "protoc warnings")
        self.p = parse_textproto(r.stdout.decode())
        self.s = self.p["string_table"]
        self.funcs = {one(f, "id"): f for f in self.p.get("function", [])}
        self.locs = {one(l, "id"): l for l in self.p.get("location", [])}
        self.maps = {one(m, "id"): m for m in self.p.get("mapping", [])}
        self.samples = self.p.get("sample", [])
        for k in ("location", "function", "mapping"):
            ids = [one(x, "id") for x in self.p.get(k, [])]
            eq(ids, list(range(1, len(ids) + 1)), f"{k} ids")

    def str(self, msg, key):
        return self.s[one(msg, key)]

    def lines(self, loc_id):
        """A location's lines as (function, file, line), innermost first."""
        out = []
        for ln in self.locs[loc_id].get("line", []):
            f = self.funcs[one(ln, "function_id")]
            out.append((self.str(f, "name"), self.str(f, "filename"), one(ln, "line")))
        return out

    def leaf(self, sample):
        """The leaf's innermost line; an unsymbolized address has none."""
        return (self.lines(sample["location_id"][0]) or [("?", "", 0)])[0]

    def labels(self, sample):
        return {self.str(l, "key"): self.str(l, "str") for l in sample.get("label", [])}

    def at(self, src, tag):
        """The samples whose leaf is the @tag line."""
        path, line = line_of(src, tag)
        return [s for s in self.samples if sample_leaf_is(self, s, path, line)]


def sample_leaf_is(prof, s, path, line):
    return bool(s.get("location_id")) and prof.leaf(s)[1:] == (path, line)


def build_id_of(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    check(m, f"readelf -n {path}: no build id")
    return m.group(1)


def first_load_offset(path):
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
    loads = [l.split() for l in out.splitlines() if l.strip().startswith("LOAD")]
    return min((int(l[2], 16), int(l[1], 16)) for l in loads)[1]


ALLOCATOR_FUNCS = ("malloc", "calloc", "realloc", "operator new", "operator new[]")


@case(suite="cli", victims=("basic", "export", "cxx"))
def case_export_pprof():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = show_json(snap)
    path = export_pprof(snap)
    prof = Pprof(path)
    eq(prof.s[0], "", "string_table[0]")
    eq([(prof.str(t, "type"), prof.str(t, "unit")) for t in prof.p["sample_type"]], PPROF_TYPES,
       "sample types")
    eq(prof.s[one(prof.p, "default_sample_type")], "inuse_space", "default sample type")
    pt = prof.p["period_type"][0]
    eq((prof.str(pt, "type"), prof.str(pt, "unit"), one(prof.p, "period")), ("space", "bytes", 1),
       "period of an exact snapshot")
    eq(one(prof.p, "time_nanos"), js["wall_ns"], "time_nanos is the snapshot's wall time")
    comments = [prof.s[i] for i in prof.p.get("comment", [])]
    check(any(f"pid {js['pid']}" in c for c in comments), comments)
    check(f"exe {victim('basic')}" in comments, comments)
    check(not any("sampled" in c for c in comments), comments)
    # exact figures at the known lines, the leaf being the user's line
    for tag, values in (("keep100", [100000, 1000, 100000, 1000]), ("big", [12345, 1, 12345, 1]),
                        ("freed64", [0, 0, 500 * 64, 500])):
        got = prof.at("basic.c", tag)
        eq([s["value"] for s in got], [values], f"the sample at @{tag}")
        eq(prof.labels(got[0]), {"domain": "heap"}, f"labels at @{tag}")
        eq(prof.leaf(got[0])[0], "main", f"leaf function at @{tag}")
    for s in prof.samples:
        check(prof.leaf(s)[0] not in ALLOCATOR_FUNCS, f"an allocator frame as leaf: {prof.leaf(s)}")
        # leaf first: the outermost frame is the program's entry
        outer = prof.lines(s["location_id"][-1])
        check(outer and outer[-1][0] == "_start", f"outermost frame: {outer}")
    eq(sum(s["value"][0] for s in prof.samples), js["totals"]["heap_live_bytes"],
       "inuse_space sums to the live heap")
    # the victim's mapping: path, build id, range, file offset, flags
    exe = [m for m in prof.maps.values() if prof.str(m, "filename") == victim("basic")]
    eq(len(exe), 1, "one mapping for the executable")
    m = exe[0]
    eq(one(m, "id"), 1, "the executable is mapping 1")
    eq(prof.str(m, "build_id"), build_id_of(victim("basic")), "build id")
    eq(one(m, "file_offset"), first_load_offset(victim("basic")), "file offset")
    eq(one(m, "has_functions", False), True, "the executable's frames have functions")
    loc = prof.locs[prof.at("basic.c", "keep100")[0]["location_id"][0]]
    eq(one(loc, "mapping_id"), 1, "the leaf location's mapping")
    check(one(m, "memory_start") <= one(loc, "address") < one(m, "memory_limit"),
          "the leaf address lies in the executable's mapping")
    libc = [m for m in prof.maps.values() if "libc.so" in prof.str(m, "filename")]
    eq(len(libc), 1, "libc mapped")
    eq(prof.str(libc[0], "build_id"), build_id_of(prof.str(libc[0], "filename")), "libc's build id")
    # standard output (a pipe) gets the same bytes
    r = export(snap, "--format", "pprof", "-o", "-")
    with open(path, "rb") as f:
        eq(r.stdout, f.read(), "-o - writes the same profile")
    r = export(snap, "-f", "pprof")
    with open(path, "rb") as f:
        eq(r.stdout, f.read(), "standard output is the default")
    # filters: the mmap domain of this victim is empty; --include by file
    eq(Pprof(export_pprof(snap, "--domain", "mmap")).samples, [], "--domain mmap")
    inc = Pprof(export_pprof(snap, "--include", "*basic.c"))
    check(inc.samples and all(inc.leaf(s)[1].endswith("basic.c") for s in inc.samples),
          "--include *basic.c")
    # inlined calls: one location, two lines, innermost first
    d, r = run_victim("export")
    eq((r.returncode, r.stdout), (0, b"export ok\n"), "export victim")
    prof = Pprof(export_pprof(only_snapshot(d)))
    grab, call = line_of("export.c", "grab"), line_of("export.c", "call")
    got = prof.at("export.c", "grab")
    eq([s["value"] for s in got], [[30 * 700, 30, 30 * 700, 30]], "the sample at @grab")
    eq(prof.lines(got[0]["location_id"][0]), [("new_buffer", *grab), ("main", *call)],
       "an inlined call is two lines of one location")
    check(one(prof.maps[1], "has_inline_frames", False), "has_inline_frames")
    # C++: operator new and the inlined std:: code are not the leaf
    d, r = run_victim("cxx")
    prof = Pprof(export_pprof(only_snapshot(d)))
    for tag, values in (("arr", [4000, 40]), ("obj", [5 * 48, 5]), ("vec", [4000, 1])):
        got = prof.at("cxx.cpp", tag)
        eq([s["value"][:2] for s in got], [values], f"the sample at @{tag}")
        eq(prof.leaf(got[0])[0], "main", f"leaf function at @{tag}")
    # a sampled snapshot says so
    d, r = run_victim("basic", env={"MEMTRACE_SAMPLE": "64K", "MEMTRACE_SAMPLE_SEED": "1"})
    prof = Pprof(export_pprof(only_snapshot(d)))
    eq(one(prof.p, "period"), 65536, "period of a sampled snapshot")
    comments = [prof.s[i] for i in prof.p.get("comment", [])]
    check(any(c.startswith("sampled at 65536 bytes") for c in comments), comments)


@case(suite="cli", victims=("basic", "leak"))
def case_export_pprof_go():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    path = export_pprof(snap)
    keep, freed = line_of("basic.c", "keep100"), line_of("basic.c", "freed64")
    rows = pprof_top("-lines", "-sample_index=inuse_space", path)
    eq(rows.get(f"main {keep[0]}:{keep[1]}"), (100000, 100000), f"pprof -top -lines: {rows}")
    rows = pprof_top("-lines", "-sample_index=inuse_objects", path)
    eq(rows.get(f"main {keep[0]}:{keep[1]}"), (1000, 1000), f"inuse_objects: {rows}")
    rows = pprof_top("-lines", "-sample_index=alloc_objects", path)
    eq(rows.get(f"main {freed[0]}:{freed[1]}"), (500, 500), f"alloc_objects: {rows}")
    total = show_json(snap)["totals"]["heap_live_bytes"]
    rows = pprof_top("-sample_index=inuse_space", path)
    eq(rows.get("main"), (total, total), f"all the live heap is main's: {rows}")
    raw = go_pprof("-raw", path)
    check("inuse_space/bytes[dflt] inuse_objects/count alloc_space/bytes alloc_objects/count" in raw,
          raw)
    check("domain:[heap]" in raw, raw)
    # a leak between two snapshots: -diff_base shows exactly the growth
    d, files, err = leak_series()
    a, c = files[0], files[2]
    path, line = line_of("leak.c", "leak")
    sa, sc = (stats_by_line(show_json(f))[(path, line)] for f in (a, c))
    grew, more = sc["size"] - sa["size"], sc["count"] - sa["count"]
    check(grew > 0, "the leak grew")
    pa, pc = export_pprof(a), export_pprof(c)
    rows = pprof_top("-lines", "-sample_index=inuse_space", "-diff_base", pa, pc)
    eq(rows.get(f"leak_one {path}:{line}"), (grew, grew), f"pprof -diff_base -lines: {rows}")
    rows = pprof_top("-sample_index=inuse_objects", "-diff_base", pa, pc)
    eq(rows.get("leak_one"), (more, more), f"pprof -diff_base objects: {rows}")
    top = max(rows.items(), key=lambda kv: kv[1][0])
    eq(top[0], "leak_one", "the leaking function grows most")


def collapsed(snap, *args):
    out = export(snap, "--format", "collapsed", *args).stdout.decode()
    stacks = {}
    for l in out.splitlines():
        stack, value = l.rsplit(" ", 1)
        check(stack not in stacks, f"stack {stack!r} not merged")
        check(int(value) > 0, f"zero-value stack {l!r}")
        stacks[stack] = int(value)
    eq(out.splitlines(), sorted(out.splitlines()), "lines in order")
    return stacks


def collapsed_at(stacks, src, tag, func="main"):
    path, line = line_of(src, tag)
    leaf = f"{func} ({os.path.basename(path)}:{line})"
    return {k: v for k, v in stacks.items() if k.split(";")[-1] == leaf}


@case(suite="cli", victims=("basic", "mmap", "export", "cxx"))
def case_export_collapsed():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = show_json(snap)
    t = js["totals"]
    stacks = collapsed(snap)
    got = collapsed_at(stacks, "basic.c", "keep100")
    eq(list(got.values()), [100000], "inuse_space at @keep100")
    frames = list(got)[0].split(";")
    eq((frames[0], frames[-1].split(" ")[0]), ("_start", "main"), "root first, leaf last")
    eq(collapsed_at(stacks, "basic.c", "big").popitem()[1], 12345, "@big")
    eq(collapsed_at(stacks, "basic.c", "freed64"), {}, "zero-value stacks left out")
    eq(sum(stacks.values()), t["heap_live_bytes"] + t["mmap_live_bytes"], "sum over all domains")
    for value, total in (("inuse_objects", "heap_live_count"), ("alloc_space", "heap_alloc_bytes"),
                         ("alloc_objects", "heap_alloc_count")):
        st = collapsed(snap, "--value", value, "--domain", "heap")
        eq(sum(st.values()), t[total], f"--value {value} sums to {total}")
    st = collapsed(snap, "--value", "alloc_objects")
    eq(list(collapsed_at(st, "basic.c", "freed64").values()), [500], "alloc_objects at @freed64")
    eq(list(collapsed_at(collapsed(snap, "--value", "inuse_objects"), "basic.c", "keep100")
            .values()), [1000], "inuse_objects at @keep100")
    eq(collapsed(snap, "--domain", "mmap"), {}, "no mappings in this victim")
    # mappings: per-domain sums equal the totals
    d, r = run_victim("mmap")
    snap = only_snapshot(d)
    t = show_json(snap)["totals"]
    for dom in ("heap", "mmap"):
        eq(sum(collapsed(snap, "--domain", dom).values()), t[f"{dom}_live_bytes"],
           f"{dom} stacks sum to the live {dom}")
    eq(list(collapsed_at(collapsed(snap, "--domain", "mmap"), "mmap.c", "m5").values()),
       [8192], "@m5")
    # inlined calls are frames of their own; two callsites on one line merge
    d, r = run_victim("export")
    snap = only_snapshot(d)
    stacks = collapsed(snap)
    got = collapsed_at(stacks, "export.c", "grab", func="new_buffer")
    eq(list(got.values()), [30 * 700], "@grab")
    call = line_of("export.c", "call")[1]
    eq(list(got)[0].split(";")[-2], f"main (export.c:{call})", "the inlined call's caller")
    eq(list(collapsed_at(stacks, "export.c", "twice").values()), [11 + 22],
       "two callsites of one line are one stack")
    st = collapsed(snap, "--include", "new_buffer")
    eq(list(st.values()), [30 * 700], "--include new_buffer")
    st = collapsed(snap, "--exclude", "*export.c")
    check(all("export.c" not in k.split(";")[-1] for k in st), "--exclude *export.c")
    # C++: operator new and std:: are not leaves
    d, r = run_victim("cxx")
    stacks = collapsed(only_snapshot(d), "--value", "inuse_objects")
    eq(list(collapsed_at(stacks, "cxx.cpp", "arr").values()), [40], "@arr")
    check(not any(k.split(";")[-1].startswith("operator new") for k in stacks), stacks)
    export(snap, "--format", "collapsed", "--value", "peak", check_rc=1)
    r = export(snap, "--format", "json", "--value", "inuse_space", check_rc=1)
    check(b"--value goes with --format collapsed" in r.stderr, r.stderr)


def traceback_text(f):
    """A frame as `show --group-by traceback` prints it (group.c frame_text)."""
    mod = os.path.basename(f["module"]) if f["module"] else "?"
    if f["file"] and f["line"] > 0:
        t = f"{f['file']}:{f['line']}"
    elif f["function"]:
        t = f"{mod}({f['function']})"
    else:
        t = f"{mod}(+0x{f['offset']:x})"
    if f["function"] and f["file"]:
        t += f" ({f['function']})"
    return t


def export_json(snap, *args):
    """The export, each callsite's stack read from the frames table into
    a list of frames, as a consumer does."""
    js = json.loads(export(snap, "--format", "json", *args).stdout)
    for s in js["sites"]:
        s["frames"] = [js["frames"][i] for i in s["stack"]]
    return js


def json_site_at(js, src, tag):
    path, line = line_of(src, tag)
    got = []
    for s in js["sites"]:
        user = [f for f in s["frames"] if not f["allocator"]]
        if user and (user[0]["file"], user[0]["line"]) == (path, line):
            got.append(s)
    eq(len(got), 1, f"sites at @{tag}")
    return got[0]


@case(suite="cli", victims=("basic", "cxx", "export", "mmap"))
def case_export_json():
    d, r = run_victim("basic")
    snap = only_snapshot(d)
    js = export_json(snap)
    shown = show_json(snap)
    for k in ("pid", "seq", "wall_ns", "exe", "totals", "sampled", "reason"):
        eq(js[k], shown[k], f"snapshot {k}")
    eq(js["domain"], "all", "the default domain")
    site = json_site_at(js, "basic.c", "keep100")
    eq((site["domain"], site["live_bytes"], site["live_count"], site["alloc_bytes"],
        site["alloc_count"]), ("heap", 100000, 1000, 100000, 1000), "@keep100")
    check("peak_bytes" in site, site)
    eq(site["leak"]["reachable"], {"bytes": 100000, "blocks": 1000}, "@keep100: held by a global")
    eq(sum(c["blocks"] for c in site["leak"].values()), site["live_count"], "@keep100: classes")
    site = json_site_at(js, "basic.c", "freed64")
    eq((site["live_bytes"], site["alloc_bytes"], site["alloc_count"]), (0, 32000, 500), "@freed64")
    exe = [m for m in js["modules"] if m["path"] == victim("basic")]
    eq(len(exe), 1, "the executable's module")
    eq(exe[0]["build_id"], build_id_of(victim("basic")), "build id")
    f = site["frames"][0]
    eq((f["function"], f["module"], f["inlined"], f["allocator"]),
       ("main", victim("basic"), False, False), "the first frame")
    eq(f["offset"], f["address"] - exe[0]["bias"], "offset from the load bias")
    check(exe[0]["lo"] <= f["address"] < exe[0]["hi"], "address in the module")
    check(all(g["allocator"] for g in site["frames"] if "/libc.so" in g["module"]),
          "libc's start-up frames are marked")
    eq(sum(s["live_bytes"] for s in js["sites"]), js["totals"]["heap_live_bytes"], "live sum")
    # every frame agrees with show's tracebacks, site by site
    for name, src in (("basic", snap), ("cxx", None), ("export", None), ("mmap", None)):
        if src is None:
            dd, r = run_victim(name)
            src = only_snapshot(dd)
        js = export_json(src)
        mine = {}
        for s in js["sites"]:
            if s["live_count"]:
                key = tuple(traceback_text(f) for f in s["frames"]) or ("<no frames>",)
                size, count = mine.get(key, (0, 0))
                mine[key] = (size + s["live_bytes"], count + s["live_count"])
        shown = show_json(src, "--group-by", "traceback", "--domain", "all")
        theirs = {tuple(s.get("traceback", [s["key"]])): (s["size"], s["count"])
                  for s in shown["stats"]}
        eq(mine, theirs, f"export json and show --json tracebacks of {name}")
    # inlined flags: two frames of one address
    d, r = run_victim("export")
    js = export_json(only_snapshot(d), "--domain", "heap")
    site = json_site_at(js, "export.c", "grab")
    user = [f for f in site["frames"] if not f["allocator"]]
    grab, call = line_of("export.c", "grab"), line_of("export.c", "call")
    eq([(f["function"], f["file"], f["line"], f["inlined"]) for f in user[:2]],
       [("new_buffer", *grab, True), ("main", *call, False)], "an inlined call")
    eq(user[0]["address"], user[1]["address"], "one return address")
    eq((site["live_bytes"], site["live_count"]), (21000, 30), "@grab")
    # C++: the allocator's frames come first and are marked
    d, r = run_victim("cxx")
    js = export_json(only_snapshot(d))
    site = json_site_at(js, "cxx.cpp", "arr")
    eq((site["live_bytes"], site["live_count"]), (4000, 40), "@arr")
    check(site["frames"][0]["allocator"] and site["frames"][0]["function"].startswith("operator new"),
          site["frames"][0])
    # filters
    js = export_json(only_snapshot(d), "--include", "*cxx.cpp")
    check(js["sites"] and all(any(f["file"] and f["file"].endswith("cxx.cpp") for f in s["frames"])
                              for s in js["sites"]), "--include")
    eq(export_json(only_snapshot(d), "--domain", "mmap")["sites"], [], "--domain mmap")
    # sized like the data: each frame once, the stacks as indices
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([MANYSITES, "20000", "1"], dump_dir=d, env={"MEMTRACE_AT_EXIT": "0"})
    eq(r.returncode, 0, r.stderr)
    snap = snaps(d)[0]
    text = export(snap, "--format", "json").stdout
    js = json.loads(text)
    keys = [(f["address"], f["function"], f["line"], f["inlined"]) for f in js["frames"]]
    eq(len(set(keys)), len(keys), "each frame once in the table")
    eq(len(js["sites"]), 20000, "every callsite")
    check(len(text) < 2 * os.path.getsize(snap),
          f"JSON {len(text)} B for a snapshot of {os.path.getsize(snap)} B")


@case(suite="cli", victims=("basic",))
def case_export_errors():
    d, data = good_snapshot()
    snap = only_snapshot(d)
    out = os.path.join(d, "out.pb.gz")
    # usage errors: exit 1
    for args in (["--format", "svg"], ["--bogus"], ["--domain", "disk"], []):
        r = subprocess.run([TOOL, "export", *args] + ([snap] if args else []),
                           capture_output=True, text=True, timeout=TIMEOUT)
        eq(r.returncode, 1, f"export {args}: {r.stderr}")
        check(r.stderr.splitlines()[-1].startswith("memtrace export: "), r.stderr)
    r = subprocess.run([TOOL, "export", "--help"], capture_output=True, text=True)
    eq(r.returncode, 0, "--help")
    check(r.stdout.startswith("usage: memtrace export") and "collapsed" in r.stdout, r.stdout)
    # never compressed bytes on a terminal
    master, slave = pty.openpty()
    try:
        r = subprocess.run([TOOL, "export", snap], stdout=slave, stderr=subprocess.PIPE,
                           timeout=TIMEOUT)
    finally:
        os.close(slave)
        os.close(master)
    eq(r.returncode, 1, f"pprof to a terminal: {r.stderr}")
    check(b"terminal" in r.stderr, r.stderr)
    # a corrupt or missing snapshot: exit 2, one line, nothing written
    bad = os.path.join(d, "bad.snap")
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x40]) + data[len(data) // 2 + 1:])
    before = sorted(os.listdir(d))
    for path in (bad, os.path.join(d, "missing.snap")):
        for fmt in ("pprof", "collapsed", "json"):
            r = export(path, "--format", fmt, "-o", out, check_rc=2)
            eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
            check(r.stderr.startswith(b"memtrace: "), r.stderr)
            eq(sorted(os.listdir(d)), before, "nothing written")
    # outputs that cannot be written: exit 2, one line, nothing left behind
    for target in (os.path.join(d, "no", "such", "dir", "x.pb.gz"),
                   os.path.join(snap, "x.pb.gz"),  # a file as directory
                   d):                              # a directory as the file
        r = export(snap, "-o", target, check_rc=2)
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
        check(r.stderr.startswith(b"memtrace export: cannot "), r.stderr)
        eq(sorted(os.listdir(d)), before, f"nothing left behind for {target}")
    # a write that fails half-way (a 200-byte file size limit): the old file
    # stays as it was and the temp file goes
    with open(out, "w") as f:
        f.write("old")
    before = sorted(os.listdir(d))
    for fmt in ("pprof", "collapsed", "json"):
        r = subprocess.run([TOOL, "export", "--format", fmt, "-o", out, snap], capture_output=True,
                           timeout=TIMEOUT,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200)))
        eq(r.returncode, 2, f"{fmt} past the file size limit: {r.stderr}")
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr}")
        check(b"File too large" in r.stderr, r.stderr)
        eq(sorted(os.listdir(d)), before, "no temp file left")
        with open(out) as f:
            eq(f.read(), "old", "the previous file untouched")
    # and a good export replaces it, with the mode of an ordinary new file
    export(snap, "-o", out)
    Pprof(out)
    mask = os.umask(0)
    os.umask(mask)
    eq(stat.S_IMODE(os.stat(out).st_mode), 0o666 & ~mask, "mode")
    eq(sorted(os.listdir(d)), before, "no temp file left")


if __name__ == "__main__":
    sys.exit(main(globals()))
