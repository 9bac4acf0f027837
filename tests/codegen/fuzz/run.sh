#!/bin/sh
# tests/codegen/fuzz/run.sh — build the spec-parser fuzz target with clang's
# libFuzzer, ASan and UBSan, and run it for a bounded time on a seed corpus
# made of the good and bad specs of tests/codegen and the examples.
#
#   tests/codegen/fuzz/run.sh [SECONDS] [WORKDIR]
#
# SECONDS defaults to 60; WORKDIR (default: a fresh directory under /tmp)
# keeps the build, the growing corpus and any crash-* / leak-* / timeout-*
# file. Then every spec of the corpus that butler-gen accepts is generated
# and compiled (compile_corpus.sh; at most COMPILE_MAX specs, default 200,
# in at most COMPILE_SECONDS, default 60). Exits non-zero on a crash, a
# leak, a timeout, a broken diagnostics contract (see fuzz_spec.c), an
# accepted spec whose code does not compile, or a build failure.
set -eu

secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=${2:-$(mktemp -d /tmp/butler-fuzz.XXXXXX)}
cc=${CC_FUZZ:-clang}

mkdir -p "$work/corpus" "$work/seeds"
cp "$root"/tests/codegen/ok/*.json "$root"/tests/codegen/bad/*.json \
   "$root"/tests/codegen/macros/*.json "$root"/tests/codegen/imports/*.json \
   "$work/seeds/"
for f in "$root"/examples/*/*.json; do
	[ -e "$f" ] && cp "$f" "$work/seeds/"
done

# The generator library is compiled straight from its sources so that the
# fuzzer instruments all of it; butler-gen itself, for the compile check,
# without instrumentation.
"$cc" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer \
	-I"$root/codegen" -I"$root/include" -DBUTLER_GEN_VERSION='"fuzz"' \
	"$here/fuzz_spec.c" \
	"$root"/codegen/diag.c "$root"/codegen/emit.c \
	"$root"/codegen/emit_header.c "$root"/codegen/emit_source.c \
	"$root"/codegen/gen.c "$root"/codegen/json.c "$root"/codegen/names.c \
	"$root"/codegen/sbuf.c \
	"$root"/codegen/spec.c \
	-lcjson -lm -o "$work/fuzz_spec"

echo "butler-gen fuzz: ${secs}s in $work"
cd "$work"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	./fuzz_spec -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
	-max_len=16384 -print_final_stats=1 \
	-artifact_prefix="$work/" corpus seeds

echo "butler-gen fuzz: compiling what the corpus accepts"
"$cc" -std=c11 -O1 -I"$root/codegen" -I"$root/include" \
	-DBUTLER_GEN_VERSION='"fuzz"' "$root"/codegen/main.c "$root"/codegen/diag.c "$root"/codegen/emit.c \
	"$root"/codegen/emit_header.c "$root"/codegen/emit_source.c \
	"$root"/codegen/gen.c "$root"/codegen/json.c "$root"/codegen/names.c \
	"$root"/codegen/sbuf.c "$root"/codegen/spec.c \
	-lcjson -lm -o "$work/butler-gen"
MAX=${COMPILE_MAX:-200} SECONDS_MAX=${COMPILE_SECONDS:-60} \
	"$here/compile_corpus.sh" "$work/butler-gen" "$work" seeds corpus
