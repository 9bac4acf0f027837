#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check.sh BUTLER_OFFLOAD — runs the demo on a tree of files made here and
# checks that its digests are exactly what sha256sum says about the same
# files: on stdout when stdout is not a terminal (a pipe, a file), and in
# the file --output names, also when that file lies inside the tree (it is
# then not hashed itself).
set -euo pipefail
demo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tree=$dir/tree

mkdir -p "$tree/a/b/c" "$tree/empty dir" "$tree/with space"
: > "$tree/empty"
printf 'hello\n' > "$tree/a/hello.txt"
for i in $(seq 1 200); do printf 'file %d\n' "$i" > "$tree/a/b/f$i"; done
head -c 3000000 /dev/urandom > "$tree/a/b/c/medium.bin"
head -c 25000000 /dev/urandom > "$tree/with space/big file.bin" # progress
ln -s "$tree/a/hello.txt" "$tree/a/link" # not followed, not listed
# Names sha256sum escapes: a backslash, a newline.
printf 'odd\n' > "$tree/a/back\\slash"
printf 'odd\n' > "$tree/a/new
line"
find "$tree" -type f -exec sha256sum {} + | sort > "$dir/want"

fail() { echo "FAIL: $*"; cat "$dir/err"; exit 1; }

# 1. stdout is a file: the digests go there.
"$demo" --quiet --in-flight 3 "$tree" > "$dir/out" 2> "$dir/err" \
  || fail "butler-offload exited with $?"
sort "$dir/out" > "$dir/got"
diff -u "$dir/want" "$dir/got" || fail "stdout disagrees with sha256sum"
grep -q "longest main-loop stall" "$dir/err" || fail "no stall in the summary"
grep -q "requests still pending: 0" "$dir/err" || fail "requests pending"
# Per-kind times (metrics): every file found and hashed was measured, each
# line a count and four durations (queue p50, p99, handler p50, p99).
files=$(wc -l < "$dir/want")
dur='[0-9.]+ [nmu]?s'
for kind in ui/found hasher/hash_file; do
  grep -qE "^$kind +$files( +$dur){4}\$" "$dir/err" \
    || fail "no queue and handler times for $kind ($files messages)"
done
echo "ok: $(wc -l < "$dir/got") digests on stdout match sha256sum"
cat "$dir/err"

# 2. --output inside the tree: stdout stays empty, the file is complete and
# does not list itself.
"$demo" --quiet -o "$tree/sums.sha256" "$tree" > "$dir/out" 2> "$dir/err" \
  || fail "butler-offload -o exited with $?"
[ ! -s "$dir/out" ] || fail "digests on stdout despite --output"
sort "$tree/sums.sha256" > "$dir/got"
diff -u "$dir/want" "$dir/got" || fail "--output disagrees with sha256sum"
grep -qF "digests in $tree/sums.sha256" "$dir/err" \
  || fail "the summary does not say where the digests are"
(cd / && sha256sum --quiet -c "$tree/sums.sha256") \
  || fail "sha256sum -c rejects the file"
echo "ok: --output file inside the tree: $(wc -l < "$dir/got") digests, sha256sum -c passes"
