# SPDX-License-Identifier: MIT
"""What memtrace's test runners share: `import mtlib`.

Finds the build, runs programs under LD_PRELOAD=libmemtrace.so and reads
their snapshots back through `memtrace show --json`, with the checks that
print both values; the workloads, servers and exports more than one runner
uses; and the registry: `@case`, `RUNNER --list` and `RUNNER CASE`, which
runs one case in a temporary directory of its own, gone when the case
ends (MT_KEEP=1 keeps it).
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
import traceback

# meson test sets these; run directly (python3 tests/preload.py CASE) a case
# finds the build in build/ beside tests/ (MT_BUILD for another one)
SRC = os.environ.get("MT_SRC") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MT_BUILD") or os.path.join(SRC, "build")
for var, rel in (("MT_LIB", "src/libmemtrace.so"), ("MT_TOOL", "tools/memtrace/memtrace"),
                 ("MT_DEMO", "tools/memtrace/memtrace-demo"),
                 ("MT_ARENAS", "tools/memtrace/memtrace-arenas"),
                 ("MT_MANYSITES", "tools/bench/manysites"), ("MT_VICTIMS", "tests"),
                 ("MT_OWNMALLOC", "tests/libownmalloc.so")):
    os.environ.setdefault(var, os.path.join(BUILD, rel))
os.environ.setdefault("MT_SRC", SRC)


def build_option(name, default):
    """A meson option as the build was configured with it (meson-info), else
    its default."""
    try:
        with open(os.path.join(BUILD, "meson-info", "intro-buildoptions.json")) as f:
            return next(o["value"] for o in json.load(f) if o["name"] == name)
    except (OSError, ValueError, StopIteration):
        return default


if "MT_PPROF_PROTO" not in os.environ:
    os.environ["MT_PPROF_PROTO"] = build_option(
        "pprof_proto", "/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto")
LIB = os.environ["MT_LIB"]
TOOL = os.environ["MT_TOOL"]
DEMO = os.environ["MT_DEMO"]
ARENAS = os.environ["MT_ARENAS"]
MANYSITES = os.environ["MT_MANYSITES"]
JEMALLOC = {"MEMTRACE_ALLOCATOR": "jemalloc",
            "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=16384"}
VICTIMS = os.environ["MT_VICTIMS"]
TIMEOUT = 240


# The one registry: every case_NAME function of a runner is a test named
# NAME (dashes for underscores); meson asks each runner for its list
# (RUNNER --list) and registers each with its suite, timeout and the victim
# programs it needs built. A case says what differs from its runner's
# CASE_SUITE and CASE_TIMEOUT with @case.
CASE_TIMEOUT = 300


class Fail(Exception):
    pass


def case(suite=None, victims=(), timeout=None):
    def mark(fn):
        fn.suite, fn.victims, fn.timeout = suite, tuple(victims), timeout
        return fn
    return mark


def listing(cases):
    """NAME SUITE TIMEOUT VICTIMS, a line per case ("-" for none)."""
    for key, fn in cases.items():
        if key.startswith("case_") and callable(fn):
            print(key[5:].replace("_", "-"), getattr(fn, "suite", None) or cases.get("CASE_SUITE") or "-",
                  getattr(fn, "timeout", None) or cases.get("CASE_TIMEOUT", CASE_TIMEOUT),
                  ",".join(getattr(fn, "victims", ())) or "-")


def check(cond, what):
    if not cond:
        raise Fail(what)


def eq(got, want, what):
    if got != want:
        raise Fail(f"{what}: expected {want!r}, got {got!r}")


def line_of(src, tag):
    """The line number of the `@tag` marker in a victim source file."""
    path = os.path.join(SRC, "tests", "victims", src)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if re.search(r"(/\*|//) @%s\b" % re.escape(tag), line):
                return path, n
    raise Fail(f"no @{tag} in {path}")


def run(cmd, env=None, preload=True, cwd=None, dump_dir=None, input=None, timeout=TIMEOUT,
        lib=None):
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if env:
        e.update(env)
    if preload:
        e["LD_PRELOAD"] = lib or LIB
        if dump_dir is not None:
            e["MEMTRACE_DIR"] = dump_dir
    return subprocess.run(cmd, env=e, cwd=cwd, capture_output=True, timeout=timeout,
                          input=input, shell=isinstance(cmd, str))


def victim(name):
    return os.path.join(VICTIMS, "victim-" + name)


def snaps(d, pid=None):
    pat = f"memtrace.{pid}.*.snap" if pid else "memtrace.*.snap"
    return sorted(glob.glob(os.path.join(d, pat)),
                  key=lambda p: (int(p.split(".")[-3]), int(p.split(".")[-2])))


def show_json(snap, *args):
    r = subprocess.run([TOOL, "show", "--json", "-n", "0", *args, snap], capture_output=True,
                       timeout=TIMEOUT)
    check(r.returncode == 0, f"memtrace show {snap} failed: {r.stderr.decode()}")
    return json.loads(r.stdout)


def stats_by_line(js):
    return {(s["file"], s["line"]): s for s in js["stats"]}


def expect_site(js, src, tag, size, count):
    path, line = line_of(src, tag)
    got = stats_by_line(js).get((path, line))
    check(got is not None, f"no live memory reported at {path}:{line} (@{tag}); "
          f"have {[s['key'] for s in js['stats']][:12]}")
    eq((got["size"], got["count"]), (size, count), f"size and count at @{tag}")


def expect_absent(js, src, tag):
    path, line = line_of(src, tag)
    check((path, line) not in stats_by_line(js), f"@{tag} ({path}:{line}) should hold nothing")


def only_snapshot(d):
    s = snaps(d)
    eq(len(s), 1, f"snapshots in {d}")
    return s[0]


def run_victim(name, env=None):
    d = tempfile.mkdtemp(prefix="mt-test-")
    r = run([victim(name)], env=env, dump_dir=d)
    return d, r


def sums_match_totals(snap):
    """Per-callsite live sums equal the process totals, per domain."""
    for dom, key in (("heap", "heap_live_bytes"), ("mmap", "mmap_live_bytes")):
        js = show_json(snap, "--domain", dom, "--group-by", "traceback")
        eq(sum(s["size"] for s in js["stats"]), js["totals"][key], f"{dom} sites vs totals in {snap}")


def good_snapshot():
    d, r = run_victim("basic")
    eq(r.returncode, 0, "victim")
    with open(only_snapshot(d), "rb") as f:
        return d, f.read()


# ---- real programs, as more than one runner runs them -------------------

def same_as_without(cmd, env=None, cwd_factory=None, input=None):
    """Runs cmd bare and under memtrace; asserts identical status and output;
    returns the dump directory."""
    results = []
    d = tempfile.mkdtemp(prefix="mt-real-")
    for preload in (False, True):
        cwd = cwd_factory() if cwd_factory else None
        r = run(cmd, env=env, preload=preload, dump_dir=d, cwd=cwd, input=input)
        results.append(r)
    bare, traced = results
    eq(traced.returncode, bare.returncode, f"exit status of {cmd!r}")
    eq(traced.stdout, bare.stdout, f"stdout of {cmd!r}")
    # memtrace's own notes (a program that handles SIGUSR1 itself, as bash
    # does for its EXIT trap) are marked "memtrace[pid]:"; the rest is equal
    ours = [l for l in traced.stderr.splitlines(True) if l.startswith(b"memtrace[")]
    theirs = b"".join(l for l in traced.stderr.splitlines(True) if not l.startswith(b"memtrace["))
    eq(theirs, bare.stderr, f"stderr of {cmd!r}")
    check(len(ours) <= 2, f"memtrace said little: {ours!r}")
    files = snaps(d)
    check(files, f"no snapshot from {cmd!r}")
    for s in files:
        js = show_json(s)
        check(js["totals"]["heap_alloc_count"] > 0, f"{s} saw allocations")
    sums_match_totals(files[-1])
    return d, bare


def python3():
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


PY = r"""
import json, threading, collections
class Node:
    def __init__(self, i): self.i = i; self.tags = [str(i)] * 3
data = {i: Node(i) for i in range(50000)}
words = collections.Counter(str(i % 977) for i in range(100000))
out = []
def work(k):
    out.append(sum(len(n.tags) for n in data.values() if n.i % 4 == k))
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out), len(words), json.dumps({"n": len(data)}))
"""


SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'name-' || x, x * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(v) FROM t WHERE name LIKE 'name-1%';
PRAGMA integrity_check;
"""


GIT = r"""
set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t
export GIT_COMMITTER_EMAIL=t@example.invalid GIT_AUTHOR_DATE='2026-01-01T00:00:00Z'
export GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' HOME=$PWD GIT_CONFIG_NOSYSTEM=1
git init -q -b main repo && cd repo
for i in $(seq 1 200); do echo "file $i" > f$i.txt; done
git add . && git commit -qm one
for i in $(seq 1 50); do echo "more $i" >> f$i.txt; done
git commit -qam two
git gc -q
git fsck --no-progress 2>&1
git log --format='%H %s'
git count-objects -v | grep -v size
"""


BASH = r"""
trap 'echo trapped $?' EXIT
f() { local s=0; for i in $(seq 1 2000); do s=$((s + i)); done; echo $s; }
f | tr 0-9 a-j
( echo subshell $BASHPID >/dev/null; echo in-subshell )
declare -A h; for i in $(seq 1 3000); do h[k$i]=$i; done; echo ${#h[@]}
echo $(echo nested $(echo deeper)) | wc -c
exit 3
"""


PERL = r"""
my %h; for my $i (1..200000) { $h{"k$i"} = [$i, "v$i"]; }
my $n = 0; for my $k (sort keys %h) { $n += $h{$k}[0] if $k =~ /7/; }
delete $h{"k$_"} for 1..100000;
print scalar(keys %h), " $n\n";
"""


# ---- snapshots on demand and the analyzer -------------------------------

def tool(*args, check_rc=0):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=TIMEOUT)
    if check_rc is not None:
        eq(r.returncode, check_rc, f"memtrace {' '.join(args)}: {r.stderr}")
    return r


def start(cmd, d, env=None):
    e = dict(os.environ, LD_PRELOAD=LIB, MEMTRACE_DIR=d)
    e.update(env or {})
    return subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_snapshots(d, pid, n, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if len(snaps(d, pid)) >= n:
            return
        time.sleep(0.01)
    raise Fail(f"expected {n} snapshots of {pid} in {d}, have {snaps(d, pid)}")


def leak_series():
    """Four SIGUSR1 snapshots of the leak victim (the fourth after its one-off
    block), plus its at-exit one."""
    d = tempfile.mkdtemp(prefix="mt-test-")
    p = start([victim("leak"), "2.2"], d)
    t0 = time.time()
    for i, at in enumerate((0.4, 1.0, 1.6, 1.95)):
        time.sleep(max(0, t0 + at - time.time()))
        p.send_signal(signal.SIGUSR1)
        wait_for_snapshots(d, p.pid, i + 1)
    out, err = p.communicate(timeout=TIMEOUT)
    eq(p.returncode, 0, f"leak victim exit status ({err!r})")
    check(out.startswith(b"leaked "), out)
    files = snaps(d, p.pid)
    eq(len(files), 5, "four signal snapshots and the at-exit one")
    return d, files, err


# ---- redis-server, started and stopped ----------------------------------

def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_redis(d, env):
    """redis-server on a free port of 127.0.0.1, its files in d, once it
    answers: (the process, its port)."""
    port = free_port()
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                            "", "--appendonly", "no", "--dir", d], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                          timeout=5).stdout == b"PONG\n":
            break
        time.sleep(0.05)
    return srv, port


def stop_redis(srv, port):
    subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True,
                   timeout=10)
    srv.wait(timeout=30)


# ---- the report's data and memtrace export ------------------------------

def page_data(html):
    """The JSON block of a report page."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    check(m, "a data block in the page")
    return json.loads(m.group(1))


def export(snap, *args, check_rc=0):
    r = subprocess.run([TOOL, "export", *args, snap], capture_output=True, timeout=TIMEOUT)
    if check_rc is not None:
        eq(r.returncode, check_rc, f"memtrace export {' '.join(args)}: {r.stderr.decode()}")
    if check_rc == 0:
        eq(r.stderr, b"", f"memtrace export {' '.join(args)}: stderr")
    return r


def export_pprof(snap, *args):
    out = snap + ".pb.gz"
    export(snap, "--format", "pprof", "-o", out, *args)
    return out


def go_pprof(*args):
    """go tool pprof, offline: a private HOME and caches, no proxy, no symbolization."""
    check(shutil.which("go"), "go not found: apt-get install golang-go (tools/dev.sh test does)")
    home = tempfile.mkdtemp(prefix="mt-go-")
    env = dict(os.environ, HOME=home, GOCACHE=os.path.join(home, "cache"),
               GOPATH=os.path.join(home, "go"), GOENV="off", GOFLAGS="", GOPROXY="off",
               GOTOOLCHAIN="local", PPROF_TMPDIR=home, PPROF_BINARY_PATH=home)
    r = subprocess.run(["go", "tool", "pprof", "-symbolize=none", *args], env=env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    eq(r.returncode, 0, f"go tool pprof {' '.join(args)}: {r.stderr}")
    return r.stdout


def pprof_top(*args):
    """-top rows as {name: (flat, cum)}, values in bytes or counts."""
    rows = {}
    for line in go_pprof("-top", "-unit=B", "-nodecount=1000", *args).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and re.fullmatch(r"-?\d+B?", parts[0]) and parts[1].endswith("%"):
            rows[parts[5]] = (int(parts[0].rstrip("B")), int(parts[3].rstrip("B")))
    return rows


# ---- the runner: RUNNER --list, RUNNER CASE -----------------------------

class Terminated(BaseException):
    """SIGTERM, as meson sends it at a case's timeout: unwinds the case, so
    that its directory goes too (meson's SIGKILL follows 0.5 s later)."""


def terminated(signum, frame):
    raise Terminated()


def main(cases=None):
    """Runs the case named by argv[1] among `cases` (a module's globals);
    --list lists them."""
    name = sys.argv[1]
    if name == "--list":
        listing(cases or globals())
        return 0
    fn = (cases or globals()).get("case_" + name.replace("-", "_"))
    if not fn:
        print(f"unknown case {name}", file=sys.stderr)
        return 2
    if not os.path.exists(LIB):
        print(f"no {LIB}: build first (meson setup build && ninja -C build), or set MT_BUILD",
              file=sys.stderr)
        return 2
    # every directory the case makes lies in one of its own, removed when
    # the case ends, however it ends (MT_KEEP=1 keeps it, and names it);
    # other users may pass through it to the directories a case opens to
    # them
    keep = os.environ.get("MT_KEEP") == "1"
    root = tempfile.mkdtemp(prefix=f"mt-{name}-")
    os.chmod(root, 0o755)
    tempfile.tempdir = root
    files = f"its files: {root}" if keep else "its files removed; MT_KEEP=1 keeps them"
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # browser.py has its own
        signal.signal(signal.SIGTERM, terminated)
    try:
        fn()
    except Fail as e:
        print(f"FAIL {name}: {e} ({files})", file=sys.stderr)
        return 1
    except Terminated:
        print(f"FAIL {name}: ended by SIGTERM ({files})", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print(f"FAIL {name}: an error in the case ({files})", file=sys.stderr)
        return 1
    finally:
        tempfile.tempdir = None
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"PASS {name}" + (f" ({files})" if keep else ""))
    return 0
