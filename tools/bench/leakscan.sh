#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/bench/leakscan.sh [N...] - the leak scan at exit on N live blocks
# (default 1 M and 4 M; tools/bench/reachable.c): the scan's own time, as
# the snapshot records it, and the process's wall time with and without the
# scan, side by side, with the classes found (each line must read: a quarter
# of the blocks plus one lost, definite or indirect, half plus one held).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tool=build/tools/memtrace/memtrace
wall() { local s=$(date +%s.%N); "$@" >/dev/null; python3 -c "print(f'{$(date +%s.%N) - $s:.2f}')"; }
for n in "${@:-1000000 4000000}"; do
	for n1 in $n; do
		rm -f "$dir"/*
		off=$(wall env LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$dir MEMTRACE_LEAK_SCAN=0 build/tools/bench/reachable "$n1")
		rm -f "$dir"/*
		on=$(wall env LD_PRELOAD=$PWD/build/src/libmemtrace.so MEMTRACE_DIR=$dir build/tools/bench/reachable "$n1")
		$tool leaks --json -n 1 "$dir"/memtrace.*.snap | python3 -c "
import json, sys
j = json.load(sys.stdin); c = j['classes']; s = j['scan']
print(f'{$n1:>9} blocks: scan {s[\"seconds\"] * 1e3:7.1f} ms (target < 1000 ms at 1 M); process {$on} s with it, {$off} s without;',
      ', '.join(f'{k} {v[\"blocks\"]}' for k, v in c.items()))"
	done
done
