#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/bench/arenas.sh [THREADS] [ROUNDS] - the arena scenario side by side:
# the threaded demo (64 threads allocating and freeing in bursts) bare, under
# memtrace with glibc's defaults, with MEMTRACE_ARENA_MAX=2, and on jemalloc
# with 2 arenas. Prints peak VMS and RSS (the kernel's VmPeak and VmHWM), the
# arena count from the at-exit snapshot, and the median run time of 3 runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-64}
rounds=${2:-300}
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
tool=$PWD/build/tools/memtrace/memtrace
demo=$PWD/build/tools/memtrace/memtrace-arenas
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-34s %10s %10s %7s %9s\n' "configuration" "VMS peak" "RSS peak" "arenas" "seconds"
one() { # label, then the command
	local label=$1; shift
	local secs=() line vms rss arenas
	for i in 1 2 3; do
		rm -rf "$work/d" && mkdir "$work/d"
		line=$("$@" 2>/dev/null | grep '^threads=')
		secs+=("$(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$line")")
	done
	vms=$(sed 's/.*vm_peak=\([0-9]*\) kB.*/\1/' <<<"$line")
	rss=$(sed 's/.*rss_peak=\([0-9]*\) kB.*/\1/' <<<"$line")
	arenas=-
	snap=$(ls "$work"/d/memtrace.*.snap 2>/dev/null | head -1 || true)
	[ -n "$snap" ] && arenas=$("$tool" show --json -n 1 "$snap" | python3 -c 'import json,sys; print(json.load(sys.stdin)["allocator"]["arenas"])')
	med=$(printf '%s\n' "${secs[@]}" | sort -n | sed -n 2p)
	printf '%-34s %7d MiB %7d MiB %7s %9s\n' "$label" $((vms / 1024)) $((rss / 1024)) "$arenas" "$med"
}
one "bare (no memtrace)" "$demo" "$threads" "$rounds"
one "memtrace, glibc defaults" "$tool" run -o "$work/d" -- "$demo" "$threads" "$rounds"
one "memtrace, MEMTRACE_ARENA_MAX=2" "$tool" run -o "$work/d" --arena-max 2 -- "$demo" "$threads" "$rounds"
one "memtrace, jemalloc, 2 arenas" "$tool" run -o "$work/d" --allocator jemalloc --arena-max 2 -- "$demo" "$threads" "$rounds"
