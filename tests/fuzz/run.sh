#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/fuzz/run.sh corpus|smoke [SECONDS] - the snapshot reader under
# libFuzzer (clang, ASan, UBSan). "corpus" replays the saved corpus once
# (regression); "smoke" fuzzes for SECONDS (default 60) from it, in a copy,
# and keeps nothing. Exit 77 (skipped) when clang's fuzzer runtime is not
# installed (Debian: clang-14 libclang-rt-14-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mode=${1:-corpus}
secs=${2:-60}
cc=$(command -v clang-14 || command -v clang || true)
[ -n "$cc" ] || { echo "clang not installed: skipped"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-DMT_FUZZING=1 -I"$top/src" "$top/src/snapread.c" "$top/src/format.c" "$top/src/crc.c" \
	"$here/fuzz_snapread.c" -lz -o "$out/fuzz" 2>"$out/cc.log"; then
	if grep -q "fuzzer" "$out/cc.log"; then
		echo "clang's fuzzer runtime not installed: skipped"; exit 77
	fi
	cat "$out/cc.log" >&2
	exit 1
fi
case $mode in
corpus)
	"$out/fuzz" -runs=0 "$here"/corpus/* 2>&1 | tail -3
	echo "corpus: $(ls "$here/corpus" | wc -l) inputs replayed" ;;
smoke)
	mkdir "$out/corpus"
	cp "$here"/corpus/* "$out/corpus/"
	"$out/fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 "$out/corpus" 2>&1 | grep -E "stat::number_of_executed_units|Done|ERROR|SUMMARY" ;;
*) echo "usage: run.sh corpus|smoke [SECONDS]" >&2; exit 2 ;;
esac
