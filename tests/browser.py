#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""browser.py CASE - the page `memtrace report` writes, in headless Chromium.

Drives Debian's chromium through the DevTools protocol over a websocket
(python3-websocket; run with Debian's /usr/bin/python3) and checks what a user
sees: no script errors, no request but the file itself, one chart point per
snapshot, the leak victim's leaking function in the flame graph at its exact
share of the live bytes, zoom, search, hover tooltips, sorting, and the diff's
exact byte change at the leaking line. Saves a screenshot of the whole page
(report.png in the test build directory) for people to look at.

Chromium runs in its own process group with a throwaway profile directory;
both are gone when the case ends, whatever happens. Exits 77 (skipped) when
chromium or python3-websocket is not installed (tools/dev.sh installs both).
"""
import base64
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mtlib as base  # noqa: E402
from mtlib import Fail, check, eq, leak_series, line_of, show_json, tool  # noqa: E402
from tracemalloc import _format_size  # noqa: E402
CASE_SUITE = "cli"

try:
    import websocket
except ImportError:
    websocket = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUT_DIR = os.environ["MT_VICTIMS"]  # the tests' build directory
WIDTH, HEIGHT = 1280, 900


def die_with_parent():
    # in the child before exec: chromium gets SIGKILL if this script dies
    # without cleaning up (killed by a timeout)
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


class Chromium:
    """One headless browser with one page, spoken to over the DevTools
    protocol: commands wait for their answer, events are kept in order."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="mt-chromium-")
        self.proc = None
        self.ws = None
        self.events = []
        self.next_id = 0
        self.session = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self):
        self.log = open(os.path.join(self.tmp, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--disable-default-apps",
             "--disable-breakpad", "--disable-crash-reporter", "--hide-scrollbars",
             "--mute-audio", f"--window-size={WIDTH},{HEIGHT}",
             f"--user-data-dir={os.path.join(self.tmp, 'profile')}",
             "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True,
            preexec_fn=die_with_parent)
        port_file = os.path.join(self.tmp, "profile", "DevToolsActivePort")
        end = time.time() + 60
        lines = []
        while time.time() < end:
            if self.proc.poll() is not None:
                raise Fail(f"chromium exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with open(port_file) as f:
                    lines = f.read().split()
            except FileNotFoundError:
                pass
            if len(lines) >= 2:
                break
            time.sleep(0.05)
        check(len(lines) >= 2, f"no DevToolsActivePort from chromium: {self.log_text()}")
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{lines[0]}{lines[1]}", timeout=60,
                                              suppress_origin=True)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def log_text(self):
        try:
            with open(os.path.join(self.tmp, "chromium.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def send(self, method, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise Fail(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def wait_event(self, method, timeout=30):
        end = time.time() + timeout
        seen = 0
        while time.time() < end:
            for m in self.events[seen:]:
                if m["method"] == method:
                    return m
            seen = len(self.events)
            self.ws.settimeout(max(0.1, end - time.time()))
            try:
                m = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            finally:
                self.ws.settimeout(60)
            if "method" in m:
                self.events.append(m)
        raise Fail(f"no {method} within {timeout} s")

    def js(self, expr):
        """The value of a JavaScript expression (awaited if a promise)."""
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise Fail(f"script failed: {expr[:200]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def settle(self):
        # two animation frames: rendering after an event has happened
        self.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def mouse(self, kind, x, y, **extra):
        self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def click(self, x, y):
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, button="left", clickCount=1)
        self.mouse("mouseReleased", x, y, button="left", clickCount=1)
        self.settle()

    def close(self):
        try:
            if self.ws:
                self.ws.close()
        except Exception:
            pass
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            # helpers (zygote, renderer, GPU) that left the group's leader
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def center(b, selector):
    """The middle of the first element matching selector, in CSS pixels."""
    r = b.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
        if (!e) return null; e.scrollIntoView({{block: 'center'}});
        const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
    check(r is not None, f"nothing on the page matches {selector}")
    return r


@base.case(victims=("leak",))
def case_report_browser():
    d, files, _ = leak_series()
    try:
        check_page(d, files)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@base.case(victims=("leak",))
def case_report_one_snapshot():
    """A report of one snapshot says why it has no chart (four dots once)
    and shows no comparison; the table's ties sort in natural order."""
    d, files, _ = leak_series()
    try:
        page = os.path.join(d, "one.html")
        tool("report", "-o", page, files[0])
        b = Chromium()
        try:
            for domain in ("Page", "Runtime"):
                b.send(domain + ".enable")
            b.send("Page.navigate", url="file://" + page)
            b.wait_event("Page.loadEventFired")
            b.settle()
            text = b.js("document.getElementById('chart').textContent")
            check(text.startswith("One snapshot: memory over time needs two or more"), text)
            eq(b.js("document.querySelectorAll('#chart circle, #chart path').length"), 0,
               "no points drawn")
            eq(b.js("document.getElementById('diff').hidden"), True, "no comparison")
            errors = [m for m in b.events if m["method"] == "Runtime.exceptionThrown"]
            eq(errors, [], "errors in the page")
        finally:
            b.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def check_page(d, files):
    page = os.path.join(d, "report.html")
    tool("report", "-o", page, *files)
    # the page is the running program's: the at-exit snapshot is left out
    files = [f for f in files if show_json(f)["reason"] != "at exit"]
    url = "file://" + page
    first, last = show_json(files[0]), show_json(files[-1])
    path, line = line_of("leak.c", "leak")
    key = f"{path}:{line}"
    leak = {js["seq"]: next(s for s in js["stats"] if s["key"] == key) for js in (first, last)}
    total = last["totals"]["heap_live_bytes"]
    leak_bytes = leak[last["seq"]]["size"]
    share = leak_bytes / total

    b = Chromium()
    try:
        b.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
               deviceScaleFactor=1, mobile=False)
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(domain + ".enable")
        b.send("Page.navigate", url=url)
        b.wait_event("Page.loadEventFired")
        b.settle()

        # the chart: four series, one point per snapshot, axes in KiB/MiB
        n = len(files)
        series = b.js("""[...document.querySelectorAll('#chart path.series')].map(p =>
            [p.dataset.series, (p.getAttribute('d').match(/[ML]/g) || []).length,
             p.getAttribute('d')])""")
        eq(sorted(s[0] for s in series), ["held", "live", "mmap", "rss"], "chart series")
        for name, points, _ in series:
            eq(points, n, f"points of the {name} series")
        live_d = next(s[2] for s in series if s[0] == "live")
        ys = [float(p.split()[1]) for p in live_d[1:].split(" L")]
        check(all(a > b_ for a, b_ in zip(ys, ys[1:])), f"the live heap line rises: {live_d}")
        ticks = b.js("[...document.querySelectorAll('#chart .tick text')].map(t => t.textContent)")
        check(any(t.endswith(" KiB") or t.endswith(" MiB") for t in ticks), f"axis labels {ticks}")
        # hover over the last snapshot: the tooltip gives its live heap
        x, y = b.js("""(() => { const c = [...document.querySelectorAll('#chart circle.pt')]
            .filter(c => c.dataset.series === 'live').pop(); c.scrollIntoView({block: 'center'});
            const r = c.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
        b.mouse("mouseMoved", x - 2, y)
        b.settle()
        tip = b.js("document.getElementById('tip').hidden ? null : document.getElementById('tip').innerText")
        check(tip and f"#{last['seq']}" in tip and _format_size(total, False) in tip,
              f"chart tooltip at the last snapshot: {tip!r}")

        # the flame graph: the leaking function at its share of live bytes
        sel = '#fg .fg-node[data-name="leak_one"]:not(.anc)'
        node = b.js(f"""(() => {{ const e = document.querySelector('{sel}'), fg =
            document.getElementById('fg'); if (!e) return null;
            return [e.getBoundingClientRect().width, fg.clientWidth, +e.dataset.bytes]; }})()""")
        check(node is not None, "a leak_one frame in the flame graph")
        width, full, node_bytes = node
        eq(node_bytes, leak_bytes, "bytes of the leak_one frame")
        check(abs(width / full - share) < 0.004,
              f"leak_one is {width / full:.4f} of the width, holds {share:.4f} of the bytes")
        fx, fy = center(b, sel)
        b.mouse("mouseMoved", fx, fy)
        b.settle()
        tip = b.js("document.getElementById('tip').hidden ? null : document.getElementById('tip').innerText")
        check(tip and "leak_one" in tip and key in tip, f"flame tooltip names {key}: {tip!r}")
        # callers above, allocator frames cut: leak_one is a leaf under main
        chain = b.js(f"""(() => {{ const e = document.querySelector('{sel}');
            const r = e.getBoundingClientRect(); return [...document.querySelectorAll('#fg .fg-node')]
            .filter(n => {{ const q = n.getBoundingClientRect(); return q.left <= r.left + 0.5 &&
            q.right >= r.right - 0.5; }}).sort((a, b) => a.offsetTop - b.offsetTop)
            .map(n => n.dataset.name); }})()""")
        check(chain[-1] == "leak_one" and chain[-2] == "main" and "malloc" not in chain,
              f"the stack down to leak_one: {chain}")

        # click: zoom in, leak_one spans the whole width; reset: back
        b.click(fx, fy)
        zoomed = b.js(f"""(() => {{ const e = document.querySelector('{sel}');
            return [e.getBoundingClientRect().width, document.getElementById('fg').clientWidth,
            document.getElementById('fg-reset').disabled]; }})()""")
        check(abs(zoomed[0] - zoomed[1]) <= 1, f"zoomed leak_one is {zoomed[0]} of {zoomed[1]} px")
        eq(zoomed[2], False, "reset enabled while zoomed")
        b.click(*center(b, "#fg-reset"))
        width = b.js(f"document.querySelector('{sel}').getBoundingClientRect().width")
        check(abs(width / full - share) < 0.004, "reset zoom restores the full graph")

        # search: typed into the box, the frame is highlighted with its share
        b.js("document.getElementById('fg-search').focus()")
        b.send("Input.insertText", text="leak_one")
        b.settle()
        hit = b.js(f"""(() => {{ const i = document.getElementById('fg-match');
            return [document.querySelector('{sel}').classList.contains('match'),
            +i.dataset.bytes, i.textContent,
            document.querySelectorAll('#fg .fg-node.match').length]; }})()""")
        eq(hit[0], True, "leak_one highlighted by the search")
        eq(hit[1], leak_bytes, "matched bytes")
        eq(hit[3], 1, "frames highlighted")
        want = f"{share * 100:.1f}%" if share >= 0.1 else f"{share * 100:.2f}%"
        check(want in hit[2], f"match share {want} in {hit[2]!r}")

        # the top lines: the leak is steady; sorting by change puts the
        # one-off 512 KiB block first
        row = b.js(f"""(() => {{ const r = [...document.querySelectorAll('#top-table tbody tr')]
            .find(r => r.dataset.key === {json.dumps(key)}); return r ?
            r.querySelector('.badge').textContent : null; }})()""")
        eq(row, "steady", f"growth of {key} in the table")
        jump = f"{path}:{line_of('leak.c', 'jump')[1]}"
        order = "[...document.querySelectorAll('#top-table tbody tr')].map(r => r.dataset.key)"
        b.click(*center(b, '#top-table th[data-col="rate"]'))
        eq(b.js(order)[:1], [jump], "first line by rate")
        b.click(*center(b, '#top-table th[data-col="kind"]'))
        eq(b.js(order)[:1], [key], "first line by growth (steady first)")

        # the diff between first and last: the exact growth at the leak line
        eq(b.js("[document.getElementById('diff-a').value, document.getElementById('diff-b').value]"),
           ["0", str(n - 1)], "the diff compares the first and the last snapshot")
        growth = leak[last["seq"]]["size"] - leak[first["seq"]]["size"]
        row = b.js(f"""(() => {{ const r = [...document.querySelectorAll('#diff-table tbody tr')]
            .find(r => r.dataset.key === {json.dumps(key)}); return r ? [+r.dataset.sizeDiff,
            r.querySelector('td.sd').textContent, r.querySelector('td.sd').title] : null; }})()""")
        check(row is not None, f"{key} in the diff")
        eq(row[0], growth, "size change at the leak line")
        eq(row[1], _format_size(growth, True), "size change as shown")
        eq(row[2], f"+{growth:,} bytes", "exact change in the cell's title")
        top = b.js("document.querySelector('#diff-table tbody tr').dataset.key")
        eq(top, jump, "the diff's first line (largest change)")
        # another pair, picked in the selects
        mid = show_json(files[1])
        b.js("(() => { const s = document.getElementById('diff-b'); s.value = '1';"
             " s.dispatchEvent(new Event('change')); })()")
        want = next(s for s in mid["stats"] if s["key"] == key)["size"] - leak[first["seq"]]["size"]
        got = b.js(f"""+[...document.querySelectorAll('#diff-table tbody tr')]
            .find(r => r.dataset.key === {json.dumps(key)}).dataset.sizeDiff""")
        eq(got, want, "size change from the first to the second snapshot")
        b.js("(() => { const s = document.getElementById('diff-b'); s.value = String("
             f"{n - 1}); s.dispatchEvent(new Event('change')); }})()")
        b.js("document.getElementById('fg-search').blur(); window.scrollTo(0, 0)")
        b.mouse("mouseMoved", 1, 1)
        b.settle()

        # the picture: the whole page
        h = b.js("Math.ceil(document.documentElement.scrollHeight)")
        b.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=h, deviceScaleFactor=1,
               mobile=False)
        b.settle()
        shot = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(os.path.join(OUT_DIR, "report.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))

        # nothing went wrong, nothing was fetched
        errors = []
        for m in b.events:
            p = m.get("params", {})
            if m["method"] == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"])
            elif m["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(p.get("args"))
            elif m["method"] == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(p["entry"])
        eq(errors, [], "errors in the page")
        urls = [m["params"]["request"]["url"] for m in b.events
                if m["method"] == "Network.requestWillBeSent"]
        eq([u for u in urls if u != url], [], "requests the page made besides itself")
    finally:
        b.close()


def main():
    if sys.argv[1:] == ["--list"]:
        return base.main(globals())
    if websocket is None or not os.access(CHROMIUM, os.X_OK):
        print("SKIP: needs chromium and python3-websocket (Debian packages; run with "
              "/usr/bin/python3)", file=sys.stderr)
        return 77
    # meson's timeout sends SIGTERM: unwind, so the browser and the
    # temporary directories go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    return base.main(globals())


if __name__ == "__main__":
    sys.exit(main())
