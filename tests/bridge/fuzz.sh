#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bridge/fuzz.sh — build the bridge's frame-parser fuzz target
# (fuzz_frame.c, with servers/bridge/frame.c alone) with clang's
# libFuzzer, ASan and UBSan, and run it for a bounded time on a seed corpus
# of valid frames of every type.
#
#   tests/bridge/fuzz.sh [SECONDS] [WORKDIR]
#
# SECONDS defaults to 15; WORKDIR (default: a fresh directory under /tmp)
# keeps the build, the growing corpus (frame-corpus/) and any crash-*,
# leak-* or timeout-* file (prefixed frame-). Exits non-zero on a crash, a
# leak, a timeout, a broken contract (see fuzz_frame.c) or a build failure.
set -eu

secs=${1:-15}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${2:-$(mktemp -d /tmp/butler-frame-fuzz.XXXXXX)}
cc=${CC_FUZZ:-clang}

mkdir -p "$work/frame-corpus" "$work/frame-seeds"
flags="-std=c11 -g -O1 -fno-sanitize-recover=all -fno-omit-frame-pointer
	-I$root/servers/bridge -I$root/include"
# shellcheck disable=SC2086 # flags is a list of flags
"$cc" $flags -fsanitize=address,undefined -DFUZZ_FRAME_SEEDS \
	"$here/fuzz_frame.c" "$root/servers/bridge/frame.c" \
	-o "$work/frame_seeds"
# shellcheck disable=SC2086
"$cc" $flags -fsanitize=fuzzer,address,undefined \
	"$here/fuzz_frame.c" "$root/servers/bridge/frame.c" \
	-o "$work/fuzz_frame"
"$work/frame_seeds" "$work/frame-seeds"

echo "bridge frame fuzz: ${secs}s in $work"
cd "$work"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	./fuzz_frame -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 \
	-max_len=70000 -print_final_stats=1 \
	-artifact_prefix="$work/frame-" frame-corpus frame-seeds
