#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""memtrace run, attach, top and install, one case per process:
`commands.py CASE`.

run: exit status, children, signals passed on, static and setuid commands,
the library's options as flags; attach and detach on running victims,
python3 and redis-server (a leak's rate, output unchanged, every refusal);
top without and with a terminal (tmux); meson install and pkg-config; the
man page documenting every command, option and variable.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from mtlib import (Fail, case, check, eq, expect_site, line_of, only_snapshot, python3, run,
                   show_json, snaps, start_redis, stats_by_line, stop_redis, tool, victim, LIB, SRC,
                   TIMEOUT, TOOL, main)
CASE_SUITE = "preload"


def man_text():
    with open(os.path.join(SRC, "tools", "man", "memtrace.1")) as f:
        return f.read()


@case(victims=("basic",))
def case_install():
    """meson install: library, CLI, header, pkg-config file and man pages;
    the installed memtrace run finds the installed library; a program built
    with pkg-config's flags takes snapshots through the API."""
    build = os.path.dirname(os.path.dirname(LIB))
    dest = tempfile.mkdtemp(prefix="mt-install-")
    r = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--quiet", "--destdir",
                        dest], capture_output=True, text=True, timeout=TIMEOUT)
    eq(r.returncode, 0, f"meson install: {r.stdout}{r.stderr}")
    intro = json.loads(subprocess.run(["meson", "introspect", "--buildoptions", build],
                                      capture_output=True, text=True).stdout)
    opt = {o["name"]: o["value"] for o in intro}
    prefix = dest + opt["prefix"]
    libdir = os.path.join(prefix, opt["libdir"])
    want = [os.path.join(prefix, opt["bindir"], "memtrace"), os.path.join(libdir, "libmemtrace.so"),
            os.path.join(prefix, opt["includedir"], "memtrace.h"),
            os.path.join(libdir, "pkgconfig", "memtrace.pc"),
            os.path.join(prefix, opt["mandir"], "man1", "memtrace.1"),
            os.path.join(prefix, opt["mandir"], "man3", "libmemtrace.3")]
    for w in want:
        check(os.path.isfile(w), f"{w} installed")
    exe, lib = want[0], want[1]
    # the installed memtrace, run from elsewhere, preloads the installed library
    d = tempfile.mkdtemp(prefix="mt-test-")
    e = dict(os.environ)
    e.pop("MEMTRACE_LIB", None)
    r = subprocess.run([exe, "run", "-v", "-o", d, "--", victim("basic")], capture_output=True,
                       text=True, env=e, cwd=d, timeout=TIMEOUT)
    eq(r.returncode, 0, f"installed memtrace run: {r.stderr}")
    check(f"memtrace: preloading {os.path.realpath(lib)}\n" in r.stderr, r.stderr)
    expect_site(show_json(only_snapshot(d)), "basic.c", "keep100", 100000, 1000)
    # pkg-config: build the API victim against the installed header and library
    pc = subprocess.run(["pkg-config", f"--define-variable=prefix={prefix}", "--cflags", "--libs",
                         "memtrace"], capture_output=True, text=True,
                        env=dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig")))
    eq(pc.returncode, 0, f"pkg-config: {pc.stderr}")
    check(f"-I{prefix}/" in pc.stdout and "-lmemtrace" in pc.stdout, pc.stdout)
    prog = os.path.join(d, "api")
    src = os.path.join(SRC, "tests", "victims", "api.c")
    r = subprocess.run(["cc", "-O0", "-g", "-o", prog, src, *pc.stdout.split()],
                       capture_output=True, text=True)
    eq(r.returncode, 0, f"cc with pkg-config flags: {r.stderr}")
    r = run([prog], preload=False, env={"LD_LIBRARY_PATH": libdir, "MEMTRACE_DIR": d,
                                        "MEMTRACE_AT_EXIT": "0"})
    m = re.match(rb"snapshot 0 (\S+)\n$", r.stdout)
    check(m, f"linked program's mt_snapshot: {r.stdout!r} {r.stderr!r}")
    js = show_json(m.group(1).decode())
    path, line = line_of("api.c", "api")
    eq((stats_by_line(js)[(path, line)]["size"], stats_by_line(js)[(path, line)]["count"]),
       (16000, 4), "the API victim's blocks, built with pkg-config")
    # the man pages render without a warning
    for page in want[4:]:
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                           text=True)
        eq((r.returncode, r.stderr), (0, ""), f"groff on {page}")
    shutil.rmtree(dest)


@case(victims=("basic",))
def case_run_options():
    """memtrace run and memtrace attach offer the library's options as
    flags, from the one table (src/options.h), and check each value with
    the library's own parser before anything starts: a bad value is one line
    naming the flag and what it must be, exit 1, no command run; good ones
    reach COMMAND."""
    with open(os.path.join(SRC, "src", "options.h")) as f:
        rows = re.findall(r'X\("(MEMTRACE_[A-Z_]+)", MT_OPT_([A-Z]+),[^"]*?"([a-z-]+)"', f.read())
    flags = {flag: (var, kind) for var, kind, flag in rows}
    check({"depth", "sample", "sample-seed", "leak-scan", "python", "interval"} <= set(flags),
          f"flags from options.h: {sorted(flags)}")
    usage = tool("run", "--help").stdout
    d = tempfile.mkdtemp(prefix="mt-test-")
    marker = os.path.join(d, "ran")
    for flag, (var, kind) in flags.items():
        check(f"--{flag} " in usage, f"run --help shows --{flag}")
        if kind == "DIR":
            continue
        r = subprocess.run([TOOL, "run", f"--{flag}", "zzz", "--", "touch", marker],
                           capture_output=True, text=True, timeout=TIMEOUT)
        eq(r.returncode, 1, f"--{flag} zzz refused: {r.stderr}")
        eq(len(r.stderr.splitlines()), 1, f"one line: {r.stderr!r}")
        check(r.stderr.startswith(f"memtrace run: --{flag} zzz: not "), r.stderr)
        check(not os.path.exists(marker), f"--{flag} zzz: the command did not run")
    r = subprocess.run([TOOL, "run", "--depth", "500", "true"], capture_output=True, text=True)
    eq((r.returncode, r.stderr), (1, "memtrace run: --depth 500: not a whole number in 1..128\n"),
       "a depth past the library's bound")
    # memtrace attach takes the same flags, checked the same way, before gdb
    attach_usage = tool("attach", "--help").stdout
    check(all(f"--{flag} " in attach_usage for flag in flags), f"attach --help: {attach_usage}")
    r = subprocess.run([TOOL, "attach", "--sample", "0", str(os.getpid())], capture_output=True,
                       text=True)
    eq((r.returncode, r.stderr),
       (1, "memtrace attach: --sample 0: not a size (K, M, G allowed) in 1..1073741824\n"),
       "attach refuses a bad value first")
    out = os.path.join(d, "snaps")
    r = subprocess.run([TOOL, "run", "-o", out, "--sample", "64K", "--sample-seed", "7",
                        "--leak-scan", "0", "--depth", "3", "--", victim("basic")],
                       capture_output=True, text=True, timeout=TIMEOUT)
    eq((r.returncode, r.stdout), (0, "basic ok\n"), r.stderr)
    js = show_json(only_snapshot(out), "--group-by", "traceback")
    eq((js["sampled"], js["sample_bytes"]), (True, 65536), "--sample reached the library")
    check(all(len(s["traceback"]) <= 3 for s in js["stats"]), "--depth 3 reached the library")
    leaks = json.loads(tool("leaks", "--json", only_snapshot(out)).stdout)
    check(leaks["scan"]["status"] != "done", f"--leak-scan 0 reached the library: {leaks['scan']}")
    shutil.rmtree(d, ignore_errors=True)


@case(suite="cli")
def case_man_in_sync():
    """memtrace(1) documents every command, every long option of each
    command's --help and every MEMTRACE_* variable of the options table."""
    man = man_text()
    with open(os.path.join(SRC, "src", "options.h")) as f:
        names = re.findall(r'^\s*X\("(MEMTRACE_[A-Z_]+)"', f.read(), re.M)
    check(len(names) >= 10, f"options table parsed: {names}")
    for n in names:
        check(f"\n.B {n}\n" in man, f"{n} is described in memtrace.1")
    with open(os.path.join(SRC, "tools", "memtrace", "main.c")) as f:
        commands = re.findall(r'^\s*\{"([a-z]+)", mt_cmd_', f.read(), re.M)
    check(len(commands) >= 6, f"command table parsed: {commands}")
    for c in commands:
        check(f'.SS "memtrace {c} ' in man, f"memtrace {c} has a section in memtrace.1")
        usage = tool(c, "--help").stdout
        for o in sorted(set(re.findall(r"--([a-z][a-z-]+)", usage)) - {"help"}):
            check("\\-\\-" + o.replace("-", "\\-") in man,
                  f"memtrace {c} --{o} is in memtrace.1")


@case(victims=("basic",))
def case_run():
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = tool("run", "-o", d, "--", victim("basic"))
    eq(r.stdout, "basic ok\n", "the command's output")
    files = snaps(d)
    eq(len(files), 1, "one snapshot")
    eq(r.stderr, f"memtrace: snapshot {files[0]}: pid {show_json(files[0])['pid']} (the command), "
       f"{victim('basic')}, at exit\n", "the snapshot is listed, with its process")
    expect_site(show_json(files[0]), "basic.c", "keep100", 100000, 1000)
    # --no-children: the command only; a forked child and an exec'd one run
    # untracked (the fork victim's children would each write a snapshot)
    for cmd in ([victim("fork")], ["bash", "-c", f"{victim('basic')} >/dev/null; exec {victim('basic')}"]):
        for follow in (True, False):
            dn = tempfile.mkdtemp(prefix="mt-test-")
            r = tool("run", "-o", dn, *([] if follow else ["--no-children"]), "--", *cmd)
            pids = {show_json(f)["pid"] for f in snaps(dn)}
            if follow:
                check(len(pids) >= 2, f"{cmd}: children write snapshots: {pids}")
            else:
                eq(len(pids), 1, f"{cmd} --no-children: only the command's: {r.stderr}")
                check("(the command)" in r.stderr and "child of" not in r.stderr, r.stderr)
            shutil.rmtree(dn)
    r = tool("run", "-o", d, "--", "sh", "-c", "exit 7", check_rc=7)
    r = tool("run", "-o", d, "--", "no-such-command-here", check_rc=127)
    check("command not found" in r.stderr, r.stderr)
    # a static binary: a warning, and the program runs
    static = os.path.join(d, "static-true")
    src = os.path.join(d, "t.c")
    with open(src, "w") as f:
        f.write("int main(void) { return 3; }\n")
    if subprocess.run(["cc", "-static", "-o", static, src]).returncode == 0:
        r = tool("run", "-o", d, "--", static, check_rc=3)
        check("statically linked" in r.stderr, r.stderr)
    # a setuid binary to another user: a warning, the program runs, nothing
    # written; setuid to the caller itself (root's own): profiled, no warning
    suid = os.path.join(d, "suid-basic")
    shutil.copy(victim("basic"), suid)
    os.chmod(d, 0o755)
    os.chown(suid, 65534, 65534)  # nobody
    os.chmod(suid, 0o4755)
    d3 = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(d3, 0o1777)
    r = tool("run", "-o", d3, "--", suid)
    check("setuid" in r.stderr and r.stdout == "basic ok\n", r.stderr)
    eq(snaps(d3), [], "nothing written under AT_SECURE")
    if os.getuid() == 0:
        os.chown(suid, 0, 0)
        os.chmod(suid, 0o4755)
        r = tool("run", "-o", d3, "--", suid)
        check("setuid" not in r.stderr and r.stdout == "basic ok\n", r.stderr)
        eq(len(snaps(d3)), 1, "root's own setuid binary is profiled")
    # -o creates the directory; each snapshot is named with its process, the
    # children's apart; a run lists only what its own processes wrote
    new = os.path.join(tempfile.mkdtemp(prefix="mt-test-"), "a", "b")
    r = tool("run", "-o", new, "--", "sh", "-c", f"{victim('basic')}; exit 0")
    files = snaps(new)
    eq(len(files), 2, "the shell's and its child's")
    by_exe = {show_json(f)["exe"]: show_json(f) for f in files}
    top, kid = by_exe["/usr/bin/dash"], by_exe[victim("basic")]
    lines = r.stderr.splitlines()
    eq(lines, [f"memtrace: snapshot {new}/memtrace.{top['pid']}.1.snap: pid {top['pid']} "
               "(the command), /usr/bin/dash, at _exit",
               f"memtrace: snapshot {new}/memtrace.{kid['pid']}.1.snap: pid {kid['pid']}, child of "
               f"{top['pid']}, {victim('basic')}, at exit",
               f"memtrace: 1 of these from the command's children; its own: "
               f"{new}/memtrace.{top['pid']}.*.snap"], "the listing")
    r = tool("run", "-o", new, "--", "sh", "-c", "exit 0")
    eq(len(r.stderr.splitlines()), 1, f"only this run's snapshot: {r.stderr}")
    check(r.stderr.startswith(f"memtrace: snapshot {new}/") and "(the command)" in r.stderr,
          r.stderr)
    # signals sent to memtrace reach the command; memtrace dies the same way
    p = subprocess.Popen([TOOL, "run", "-o", d, "--", "sleep", "30"], stderr=subprocess.PIPE)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=30)
    eq(p.returncode, -signal.SIGTERM, "memtrace run ends as its command did")
    # SIGUSR1 to memtrace run becomes a snapshot of the command
    d2 = tempfile.mkdtemp(prefix="mt-test-")
    p = subprocess.Popen([TOOL, "run", "-o", d2, "--", victim("leak"), "1.0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.4)
    p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=30)
    eq(p.returncode, 0, "leak under run")
    eq([show_json(f)["reason"] for f in snaps(d2)], ["on signal", "at exit"], "forwarded USR1")


def start_bare(cmd):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    p = subprocess.Popen(cmd, env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", f"{cmd} started")
    return p


def wait_snapshots(d, pid, n):
    for _ in range(200):
        if len(snaps(d, pid)) >= n:
            return snaps(d, pid)
        time.sleep(0.05)
    raise Fail(f"{n} snapshots of {pid} in {d}: {snaps(d, pid)}")


@case(victims=("slowleak",))
def case_attach_growth():
    """A victim leaking 1000 B every 10 ms at a known line, started bare:
    attach, three snapshots, growth ranks the line first at its rate;
    detach; the victim runs on and prints what an unattached run prints."""
    unattached = start_bare([victim("slowleak")])
    time.sleep(0.5)
    want_out, want_err = unattached.communicate(input=b"", timeout=30)
    p = start_bare([victim("slowleak")])
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        r = tool("attach", "-o", d, str(p.pid))
        check(re.fullmatch(rf"memtrace: attached to {p.pid} \(stopped [0-9.]+ s for gdb's "
                           rf"injection\); snapshots in {re.escape(d)}: kill -USR1 {p.pid}, and "
                           rf"at exit; memtrace detach {p.pid} ends it\n", r.stderr), r.stderr)
        for i in range(1, 4):
            time.sleep(1)
            p.send_signal(signal.SIGUSR1)
            files = wait_snapshots(d, p.pid, i)
        js = show_json(files[-1])
        check(js["attach_wall_ns"] > 0, "the snapshot says memtrace was attached")
        text = tool("show", files[-1]).stdout
        check(re.search(r"^Tracking since memtrace attached at .*: blocks allocated before are "
                        r"not counted", text, re.M), text)
        out = tool("growth", *files).stdout
        path, line = line_of("slowleak.c", "leak")
        m = re.search(r"^#1 (\S+): size=.*, \+([0-9.]+) KiB/s, grew in 2 of 2 intervals: steady$",
                      out, re.M)
        check(m, out)
        eq(m.group(1), f"{path}:{line}", "the leaking line first")
        rate = float(m.group(2)) * 1024
        check(abs(rate - 100000) <= 10000, f"rate {rate:.0f} B/s, 1000 B per 10 ms")
        r = tool("detach", str(p.pid))
        check(re.fullmatch(rf"memtrace: detached from {p.pid} in [0-9.]+ s: \d+ entries put "
                           r"back; memtrace stays loaded, inert\n", r.stderr), r.stderr)
        time.sleep(0.5)
        check(p.poll() is None, "the victim runs on after the detach")
        r = tool("attach", str(p.pid), check_rc=1)
        check("has memtrace loaded already" in r.stderr, r.stderr)
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, want_out, want_err), "output as without memtrace")
    eq(len(snaps(d, p.pid)), 3, "no snapshot after the detach, not even at exit")


@case(victims=("dlplug",))
def case_attach_dlopen():
    """A library the program dlopens after the attach, by a bare name its
    RUNPATH ($ORIGIN) finds: every block it allocates is seen (its entries
    are patched as its dlopen returns), and dlopen still finds it through
    the program's own search path."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start_bare([victim("dlplug")])
    try:
        tool("attach", "-o", d, str(p.pid))
        p.stdin.write(b"load\n")
        p.stdin.flush()
        eq(p.stdout.readline(), b"loaded\n", "the plugin loaded through its RUNPATH")
        p.send_signal(signal.SIGUSR1)
        files = wait_snapshots(d, p.pid, 1)
        js = show_json(files[-1])
        expect_site(js, "plugin.c", "plugin", 200 * 1000, 200)
        tool("detach", str(p.pid))
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, b"done\n", b""), "dlplug's output")


def case_attach_python():
    """Debian's python3 (non-PIE: the executable's PLT entries are the
    functions' addresses, so memtrace must look past them for the real ones)
    attached to while it keeps a bytearray(1000) every 10 ms: its Python line
    grows at that rate, the output is unchanged."""
    script = ("import sys, select\nkeep = []\nprint('ready', flush=True)\n"
              "while not select.select([sys.stdin], [], [], 0.01)[0]:\n"
              "    keep.append(bytearray(1000))\nprint('done', len(keep) > 0)\n")
    p = subprocess.Popen([python3(), "-c", script], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    check(p.stdout.readline() == b"ready\n", "python3 started")
    d = tempfile.mkdtemp(prefix="mt-test-")
    try:
        # --for: attached for 3.5 s, snapshots every second, then detached
        r = tool("attach", "-o", d, "-i", "1", "--for", "3.5", str(p.pid))
        check(f"memtrace: detached from {p.pid}" in r.stderr, r.stderr)
        files = wait_snapshots(d, p.pid, 3)[:3]
        n = len(snaps(d, p.pid))
        time.sleep(1.5)
        eq(len(snaps(d, p.pid)), n, "no snapshot once --for ended")
        js = show_json(files[-1])
        eq(js["allocator"]["name"], "glibc", "python3's malloc is glibc's, found past its PLT")
        out = tool("growth", *files).stdout
        # the Python line, as under a preload: the domains wrapped by a
        # pending call the interpreter runs with the GIL
        m = re.search(r"^#1 <string>:5: .*, \+([0-9.]+) KiB/s, grew in 2 of 2 intervals: "
                      r"steady$", out, re.M)
        check(m, out)
        rate = float(m.group(1)) * 1024
        check(abs(rate - 100000) <= 15000, f"rate {rate:.0f} B/s, 1000 B per 10 ms")
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out, err), (0, b"done True\n", b""), "python3's output")


@case(victims=("slowleak",))
def case_top():
    """memtrace top on a victim leaking at a known line: without a terminal,
    one table per refresh, the line first and steady; in tmux, the line
    rises to the top within a few refreshes, s orders by growth, p keeps a
    snapshot, q quits; nothing else is left behind. On an attached process
    too; refused on one memtrace is not in."""
    path, line = line_of("slowleak.c", "leak")
    d = tempfile.mkdtemp(prefix="mt-test-")
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    p = subprocess.Popen([victim("slowleak")], env=e, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", "victim")
    try:
        r = tool("top", "--count", "3", "-i", "0.5", str(p.pid))
        tables = r.stdout.split("memtrace top: pid ")[1:]
        eq(len(tables), 3, r.stdout)
        last = tables[-1].splitlines()
        at = last.index("Top lines by live size:")
        check(re.fullmatch(rf"\s*\S+ KiB\s+\d+\s+\+\S+ KiB\s+\+\S+ KiB\s+steady\s+"
                           rf"{re.escape(path)}:{line}", last[at + 2]), tables[-1])
        eq(snaps(d), [], "the view's snapshots are removed")
        if not shutil.which("tmux"):
            raise Fail("tmux is needed for the live view's test (Debian package tmux)")
        sock = os.path.join(d, "tmux.sock")
        tm = ["tmux", "-S", sock]
        subprocess.run(tm + ["new-session", "-d", "-x", "160", "-y", "40",
                             f"{TOOL} top -i 0.5 {p.pid}"], check=True, timeout=30)
        screen = ""
        for _ in range(40):  # a few refreshes
            time.sleep(0.25)
            screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True,
                                    text=True, timeout=30).stdout
            rows = screen.splitlines()
            if "Top lines by live size:" in rows and rows[rows.index(
                    "Top lines by live size:") + 2].endswith(f"steady  {path}:{line}"):
                break
        else:
            raise Fail(f"the leaking line at the top, steady: {screen}")
        subprocess.run(tm + ["send-keys", "s"], check=True, timeout=30)
        time.sleep(0.5)
        screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True, text=True,
                                timeout=30).stdout
        check("Top lines by growth since the view began:" in screen, screen)
        subprocess.run(tm + ["send-keys", "p"], check=True, timeout=30)
        kept = None
        for _ in range(40):
            time.sleep(0.25)
            screen = subprocess.run(tm + ["capture-pane", "-p"], capture_output=True,
                                    text=True, timeout=30).stdout
            m = re.search(r"^kept: (\S+)$", screen, re.M)
            if m:
                kept = m.group(1)
                break
        check(kept and os.path.exists(kept), f"p keeps a snapshot: {screen}")
        subprocess.run(tm + ["send-keys", "q"], check=True, timeout=30)
        for _ in range(40):
            time.sleep(0.25)
            if subprocess.run(tm + ["has-session"], capture_output=True).returncode != 0:
                break
        else:
            raise Fail("q quits the view")
        eq(snaps(d), [kept], "only the kept snapshot is left")
    finally:
        out, err = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out), (0, b"done\n"), "the victim under the view")
    # on an attached process, and refused on a bare one
    q = start_bare([victim("slowleak")])
    try:
        r = tool("top", "--count", "1", str(q.pid), check_rc=1)
        eq(r.stderr, f"memtrace top: process {q.pid} has no memtrace: start it with memtrace "
           f"run, or memtrace attach {q.pid} first\n", "refused")
        d2 = tempfile.mkdtemp(prefix="mt-test-")
        tool("attach", "-o", d2, str(q.pid))
        r = tool("top", "--count", "2", "-o", d2, str(q.pid))
        check(f"{path}:{line}" in r.stdout.split("memtrace top: pid ")[-1], r.stdout)
        eq(snaps(d2), [], "the view's snapshots are removed")
    finally:
        q.communicate(input=b"", timeout=30)


@case(victims=("slowleak", "static"))
def case_attach_refusals():
    """Each refusal is one line, exit 1, and the process goes on untouched."""
    gone = subprocess.run(["true"])
    r = tool("attach", "999999999", check_rc=1)
    check("not a process id" in r.stderr or "no process" in r.stderr, r.stderr)
    dead = subprocess.Popen(["true"])
    dead.wait()
    r = tool("attach", str(dead.pid), check_rc=1)
    eq(r.stderr, f"memtrace attach: no process {dead.pid}\n", "a pid that is gone")
    r = tool("attach", "abc", check_rc=1)
    check("'abc' is not a process id" in r.stderr, r.stderr)
    # preloaded already
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=tempfile.mkdtemp(prefix="mt-test-"))
    p = subprocess.Popen([victim("slowleak")], env=e, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    check(p.stdout.readline() == b"ready\n", "preloaded victim")
    r = tool("attach", str(p.pid), check_rc=1)
    check(re.fullmatch(rf"memtrace attach: process {p.pid} has memtrace loaded already .*\n",
                       r.stderr), r.stderr)
    p.communicate(input=b"", timeout=30)
    eq(p.returncode, 0, "the preloaded victim")
    # static, setuid-like (ids changed), nothing to detach
    cases = (([victim("static")], "is statically linked: there is no loader"),
             ([python3(), "-c", "import os, sys; os.setresuid(0, 65534, 0); print('ready'); "
               "sys.stdout.flush(); sys.stdin.read()"], "runs setuid or setgid"))
    for cmd, want in cases:
        p = start_bare(cmd)
        r = tool("attach", str(p.pid), check_rc=1)
        eq(len(r.stderr.splitlines()), 1, r.stderr)
        check(want in r.stderr, r.stderr)
        out, _ = p.communicate(input=b"", timeout=30)
        eq(p.returncode, 0, f"{cmd[0]} untouched")
    p = start_bare([victim("slowleak")])
    r = tool("detach", str(p.pid), check_rc=1)
    eq(r.stderr, f"memtrace detach: process {p.pid} has no memtrace to detach\n", r.stderr)
    # another user's process, for a memtrace that is not root
    x = tempfile.mkdtemp(prefix="mt-test-")
    os.chmod(x, 0o755)
    shutil.copy(TOOL, os.path.join(x, "memtrace"))
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        os.path.join(x, "memtrace"), "attach", str(p.pid)], capture_output=True,
                       text=True, timeout=60)
    eq(r.returncode, 1, r.stderr)
    check(re.fullmatch(rf"memtrace attach: (cannot read /proc/{p.pid}/maps .*another user's|"
                       rf"process {p.pid} is uid 0's).*\n", r.stderr), r.stderr)
    out, _ = p.communicate(input=b"", timeout=30)
    eq((p.returncode, out), (0, b"done\n"), "untouched by the refusals")


def case_attach_redis():
    """redis-server, started bare: attached while redis-benchmark runs, no
    request fails, snapshots while it serves, detached; it answers on."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    srv, port = start_redis(d, {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    try:
        bench = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n",
                                  "200000", "-c", "10", "-t", "set,get", "-d", "500", "-q"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.3)
        r = tool("attach", "-o", d, "-i", "0.5", str(srv.pid))
        check(f"attached to {srv.pid}" in r.stderr, r.stderr)
        files = wait_snapshots(d, srv.pid, 2)
        out, err = bench.communicate(timeout=300)
        eq(bench.returncode, 0, f"redis-benchmark: {err!r}")
        check(out.count(b"requests per second") == 2, f"both tests ran: {out!r}")
        js = show_json(files[-1])
        check(js["totals"]["heap_alloc_count"] > 1000, "redis's allocations since the attach")
        eq(js["allocator"]["name"], "jemalloc", "redis's own jemalloc")
        tool("detach", str(srv.pid))
        n = len(snaps(d, srv.pid))
        time.sleep(1.2)
        eq(len(snaps(d, srv.pid)), n, "no snapshot after the detach")
        r = subprocess.run(["redis-cli", "-p", str(port), "set", "k", "v"], capture_output=True,
                           timeout=10)
        eq(r.stdout, b"OK\n", "redis answers after the detach")
    finally:
        stop_redis(srv, port)
    eq(srv.returncode, 0, "redis-server exit status")


if __name__ == "__main__":
    sys.exit(main(globals()))
