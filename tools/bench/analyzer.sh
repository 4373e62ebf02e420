#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/bench/analyzer.sh [SITES] [ROUNDS] - how fast the analyzer is on big
# snapshots: a series of ROUNDS snapshots with SITES callsites each (default
# 100,000 and 10), then the wall time of show, diff and growth on them.
set -euo pipefail
cd "$(dirname "$0")/../.."
sites=${1:-100000}
rounds=${2:-10}
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$dir MEMTRACE_DEPTH=16 \
	build/tools/bench/manysites "$sites" "$rounds" >/dev/null
mapfile -t snaps < <(ls -v "$dir"/memtrace.*.snap | grep -v "\.$((rounds + 1))\.snap")
tool=build/tools/memtrace/memtrace
echo "snapshots: ${#snaps[@]} of $(du -h "${snaps[-1]}" | cut -f1) each, $($tool show --json -n 1 "${snaps[-1]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["sites"])') callsites"
t() { local s=$(date +%s.%N); "$@" >/dev/null; python3 -c "print(f'{$(date +%s.%N) - $s:.2f}')"; }
echo "show   (1 snapshot, lines):      $(t $tool show "${snaps[-1]}") s   (target < 2 s)"
echo "show   (1 snapshot, tracebacks): $(t $tool show -g traceback "${snaps[-1]}") s"
echo "diff   (2 snapshots):            $(t $tool diff "${snaps[0]}" "${snaps[-1]}") s   (target < 2 s)"
echo "growth (${#snaps[@]} snapshots):           $(t $tool growth "${snaps[@]}") s   (target < 5 s)"

# One large C file (the sqlite3 amalgamation's shape): 100,000 callsites
# over 20,000 return addresses in one compilation unit, 10 snapshots.
gcc -O1 -g -fno-omit-frame-pointer -o "$dir/onefile" -x c <(python3 tools/bench/onefile.py 5000 10)
one=$dir/one
mkdir "$one"
LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$one MEMTRACE_AT_EXIT=0 "$dir/onefile"
mapfile -t ones < <(ls -v "$one"/memtrace.*.snap)
echo "one file: ${#ones[@]} snapshots of $(du -h "${ones[-1]}" | cut -f1) each, $($tool show --json -n 1 "${ones[-1]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["sites"])') callsites"
echo "show   (1 snapshot, lines):      $(t $tool show "${ones[-1]}") s   (target < 1.5 s)"
echo "diff   (2 snapshots):            $(t $tool diff "${ones[0]}" "${ones[-1]}") s"
echo "growth (${#ones[@]} snapshots):           $(t $tool growth "${ones[@]}") s   (target < 3 s)"
echo "report (${#ones[@]} snapshots):           $(t $tool report -o "$dir/r.html" "${ones[@]}") s"

# A real big snapshot: clang compiling C++ (libLLVM and libclang without
# debug information: names from their symbol tables, 100,000 symbols each).
if command -v clang++-14 >/dev/null; then
	cl=$dir/clang
	mkdir "$cl"
	printf '#include <iostream>\n#include <map>\n#include <regex>\n#include <string>\n#include <vector>\nint main() { std::map<std::string, std::vector<int>> m; std::regex r("a+b"); m["x"].push_back(1); std::cout << m.size() << std::regex_match("aab", r); }\n' >"$dir/big.cpp"
	LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$cl clang++-14 -O1 -g -c "$dir/big.cpp" -o "$dir/big.o" 2>/dev/null
	c=$(ls "$cl"/memtrace.*.snap | head -1)
	echo "clang: 1 snapshot of $(du -h "$c" | cut -f1), $($tool show --json -n 1 "$c" | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["sites"])') callsites (targets: every command < 3 s)"
	echo "show -g traceback: $(t $tool show -g traceback "$c") s, leaks: $(t $tool leaks "$c") s, report: $(t $tool report -o "$dir/c.html" "$c") s"
	echo "export collapsed: $(t $tool export -f collapsed -o /dev/null "$c") s, pprof: $(t $tool export -o "$dir/c.pb.gz" "$c") s, json: $(t $tool export -f json -o "$dir/c.json" "$c") s ($(du -h "$dir/c.json" | cut -f1))"
fi

