#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/dev.sh demo|test - the README's quick start: installs what is missing
# (Debian 12, as root or through sudo), builds with meson, then runs the demo
# under the profiler ending in its report, or the whole test suite ending in
# "N passed, N failed". Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-}
case $what in
demo|test) ;;
*) echo "usage: tools/dev.sh demo|test" >&2; exit 1 ;;
esac

packages=(meson ninja-build pkg-config gcc g++ binutils libunwind-dev uthash-dev libdw-dev
          libelf-dev zlib1g-dev libjemalloc-dev libiberty-dev python3
          protobuf-c-compiler libprotobuf-c-dev golang-github-google-pprof-dev)
[ "$what" = test ] && packages+=(sqlite3 git perl coreutils util-linux redis-server redis-tools
                                 clang-14 libclang-rt-14-dev time groff-base
                                 protobuf-compiler golang-go chromium python3-websocket
                                 openjdk-17-jdk-headless ruby rustc nodejs gdb python3-numpy
                                 python3-objgraph valgrind libtcmalloc-minimal4 libmimalloc2.0 libc6-dbg python3.11-dbg
                                 procps tmux strace)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "installing: ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

if [ "$what" = demo ]; then
	dir=build/demo-snapshots
	rm -rf "$dir" && mkdir -p "$dir"
	echo "\$ LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$dir build/tools/memtrace/memtrace-demo"
	LD_PRELOAD="$PWD/build/src/libmemtrace.so" MEMTRACE_DIR="$dir" build/tools/memtrace/memtrace-demo
	mapfile -t snaps < <(ls -v "$dir"/memtrace.*.snap)
	echo "\$ build/tools/memtrace/memtrace report -o build/demo-report.html $dir/memtrace.*.snap"
	build/tools/memtrace/memtrace report -o build/demo-report.html "${snaps[@]}"
	echo "(open build/demo-report.html in a browser: chart, flame graph, growth, diff)"
	echo "\$ build/tools/memtrace/memtrace show ${snaps[-1]}"
	exec build/tools/memtrace/memtrace show "${snaps[-1]}"
fi

# The whole suite on the normal build; then the CLI and unit tests again with
# ASan+UBSan, and the unit tests with TSan (the preloaded library itself is
# never sanitized: it runs inside other programs).
status=0
meson test -C build --num-processes "$(nproc)" --print-errorlogs || status=$?
for san in "asan address,undefined cli unit" "tsan thread unit"; do
	set -- $san
	dir=build-$1 sanitize=$2
	shift 2
	[ -f "$dir/build.ninja" ] || meson setup "$dir" -Dsanitize="$sanitize" >/dev/null
	ninja -C "$dir" >/dev/null
	suites=()
	for s in "$@"; do suites+=(--suite "$s"); done
	meson test -C "$dir" --num-processes "$(nproc)" --print-errorlogs "${suites[@]}" || status=$?
done
python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
	build-tsan/meson-logs/testlog.json <<'PY'
import json, sys
res = [json.loads(l)["result"] for f in sys.argv[1:] for l in open(f) if l.strip()]
ok = sum(r in ("OK", "EXPECTEDFAIL") for r in res)
skipped = sum(r == "SKIP" for r in res)
failed = len(res) - ok - skipped
print(f"{ok} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $status
