#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/codegen/fuzz/compile_corpus.sh — the other half of the fuzz
# contract: every spec butler-gen accepts generates C that compiles with
# -Wall -Wextra -Werror. Runs butler-gen on each file of the given corpus
# directories, and compiles the output of each one it accepts; stops after
# MAX accepted specs or SECONDS seconds, whichever comes first (CI runs it
# after the bounded fuzz run, on its corpus).
#
#   tests/codegen/fuzz/compile_corpus.sh BUTLER_GEN WORKDIR DIR...
#
# Environment: CC (default cc), MAX (default 200), SECONDS_MAX (default 60).
# A spec whose output does not compile is copied to WORKDIR/compile-fail-*
# with the compiler's messages beside it, and the exit status is 1.
set -eu

gen=$1
work=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cc=${CC:-cc}
max=${MAX:-200}
limit=${SECONDS_MAX:-60}

mkdir -p "$work/compile" "$work/include/butler"
# butler/version.h is made by the build from version.h.in; any version
# compiles the same.
sed 's/@PROJECT_VERSION[A-Z_]*@/0/g' "$root/include/butler/version.h.in" \
	>"$work/include/butler/version.h"
start=$(date +%s)
seen=0 accepted=0 failed=0
for dir in "$@"; do
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		[ "$accepted" -lt "$max" ] || break 2
		[ $(($(date +%s) - start)) -lt "$limit" ] || break 2
		seen=$((seen + 1))
		# A fixed name: the corpus's own names (hashes) would do, but
		# a name is not what is being tested.
		out="$work/compile/out"
		rm -rf "$out" && mkdir -p "$out"
		cp "$f" "$out/spec.json"
		"$gen" --out-dir "$out" "$out/spec.json" >/dev/null 2>&1 || continue
		accepted=$((accepted + 1))
		if ! "$cc" -std=c11 -Wall -Wextra -Werror -c \
			-I"$root/include" -I"$work/include" -I"$out" \
			"$out/spec.butler.c" \
			-o "$out/spec.o" >"$out/cc.log" 2>&1; then
			failed=$((failed + 1))
			name=compile-fail-$(basename "$f")
			cp "$f" "$work/$name.json"
			cp "$out/cc.log" "$work/$name.log"
			echo "compile_corpus: $f: the generated code does not compile:"
			head -20 "$out/cc.log"
		fi
	done
done
echo "compile_corpus: $seen inputs, $accepted accepted and compiled," \
     "$failed failed ($(($(date +%s) - start))s)"
[ "$accepted" -gt 0 ] || { echo "compile_corpus: nothing was accepted"; exit 1; }
[ "$failed" -eq 0 ]
