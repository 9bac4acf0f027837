#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/codegen/fuzz/run.sh — build the fuzz targets with clang's libFuzzer,
# ASan and UBSan, and run each for a bounded time on a seed corpus:
#
# - fuzz_spec.c, butler-gen's spec reader, on the good and bad specs of
#   tests/codegen and the examples;
# - fuzz_wire.c, the generated decoders (tests/codegen/ok/wire.json), on
#   valid frames of every message.
#
#   tests/codegen/fuzz/run.sh [SECONDS] [WORKDIR]
#
# SECONDS (default 40) is the spec reader's time, WIRE_SECONDS in the
# environment (default 20) the decoders'; WORKDIR (default: a fresh
# directory under /tmp) keeps the builds, the growing corpora (corpus/,
# wire-corpus/) and any crash-* / leak-* / timeout-* file (wire-* for the
# decoders). Then every spec of the spec corpus that butler-gen accepts is
# generated and compiled (compile_corpus.sh; at most COMPILE_MAX specs,
# default 200, in at most COMPILE_SECONDS, default 40). Exits non-zero on a
# crash, a leak, a timeout, a broken contract (see the two targets), an
# accepted spec whose code does not compile, or a build failure. The
# defaults keep the whole run near two minutes.
set -eu

secs=${1:-40}
wire_secs=${WIRE_SECONDS:-20}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=${2:-$(mktemp -d /tmp/butler-fuzz.XXXXXX)}
cc=${CC_FUZZ:-clang}
gen_sources="$root/codegen/diag.c $root/codegen/emit.c
	$root/codegen/emit_header.c $root/codegen/emit_source.c
	$root/codegen/emit_wire.c $root/codegen/gen.c $root/codegen/json.c
	$root/codegen/names.c $root/codegen/sbuf.c $root/codegen/spec.c"

mkdir -p "$work/corpus" "$work/seeds" "$work/wire-corpus" \
	"$work/wire-seeds" "$work/wire-gen" "$work/include/butler"
cp "$root"/tests/codegen/ok/*.json "$root"/tests/codegen/bad/*.json \
   "$root"/tests/codegen/macros/*.json "$root"/tests/codegen/imports/*.json \
   "$work/seeds/"
for f in "$root"/examples/*/*.json; do
	[ -e "$f" ] && cp "$f" "$work/seeds/"
done

# butler-gen itself, without instrumentation: it generates the decoders'
# code and checks the corpus compiles.
# shellcheck disable=SC2086 # gen_sources is a list of paths
"$cc" -std=c11 -O1 -I"$root/codegen" -I"$root/include" \
	-DBUTLER_GEN_VERSION='"fuzz"' "$root"/codegen/main.c $gen_sources \
	-lcjson -lm -o "$work/butler-gen"

# The generator library is compiled straight from its sources so that the
# fuzzer instruments all of it.
# shellcheck disable=SC2086
"$cc" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer \
	-I"$root/codegen" -I"$root/include" -DBUTLER_GEN_VERSION='"fuzz"' \
	"$here/fuzz_spec.c" $gen_sources \
	-lcjson -lm -o "$work/fuzz_spec"

# The decoders: wire.json's generated source, linked without the runtime
# (the codecs need none). --gc-sections drops the functions that would
# need it (sends, calls), which nothing the descriptors reach calls; lld,
# because GNU ld keeps them alive through the fuzzer's coverage sections.
# butler/version.h is made by the build from version.h.in; any version
# compiles the same.
sed 's/@PROJECT_VERSION[A-Z_]*@/0/g' "$root/include/butler/version.h.in" \
	>"$work/include/butler/version.h"
"$work/butler-gen" --out-dir "$work/wire-gen" \
	"$root/tests/codegen/ok/wire.json"
wire_flags="-std=c11 -g -O1 -fno-sanitize-recover=all
	-fno-omit-frame-pointer -ffunction-sections -fdata-sections
	-fuse-ld=lld -Wl,--gc-sections -I$root/include -I$work/include
	-I$work/wire-gen"
# shellcheck disable=SC2086 # wire_flags is a list of flags
"$cc" $wire_flags -fsanitize=address,undefined -DFUZZ_WIRE_SEEDS \
	"$here/fuzz_wire.c" "$work/wire-gen/wire.butler.c" \
	-o "$work/wire_seeds"
# shellcheck disable=SC2086
"$cc" $wire_flags -fsanitize=fuzzer,address,undefined \
	"$here/fuzz_wire.c" "$work/wire-gen/wire.butler.c" \
	-o "$work/fuzz_wire"
"$work/wire_seeds" "$work/wire-seeds"

echo "butler-gen fuzz: ${secs}s in $work"
cd "$work"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	./fuzz_spec -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
	-max_len=16384 -print_final_stats=1 \
	-artifact_prefix="$work/" corpus seeds

echo "wire decoder fuzz: ${wire_secs}s in $work"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	./fuzz_wire -max_total_time="$wire_secs" -timeout=5 \
	-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
	-artifact_prefix="$work/wire-" wire-corpus wire-seeds

echo "butler-gen fuzz: compiling what the corpus accepts"
MAX=${COMPILE_MAX:-200} SECONDS_MAX=${COMPILE_SECONDS:-40} \
	"$here/compile_corpus.sh" "$work/butler-gen" "$work" seeds corpus
