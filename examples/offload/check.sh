#!/usr/bin/env bash
# check.sh BUTLER_OFFLOAD — runs the demo on a tree of files made here and
# checks that its output is exactly what sha256sum says about the same files.
set -euo pipefail
demo=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

mkdir -p "$dir/a/b/c" "$dir/empty dir" "$dir/with space"
: > "$dir/empty"
printf 'hello\n' > "$dir/a/hello.txt"
for i in $(seq 1 200); do printf 'file %d\n' "$i" > "$dir/a/b/f$i"; done
head -c 3000000 /dev/urandom > "$dir/a/b/c/medium.bin"
head -c 25000000 /dev/urandom > "$dir/with space/big file.bin"  # > 4 MiB: progress
ln -s "$dir/a/hello.txt" "$dir/a/link"          # not followed, not listed

"$demo" --quiet --in-flight 3 "$dir" > "$dir.out" 2> "$dir.err" || {
  echo "butler-offload failed:"; cat "$dir.err"; exit 1; }
find "$dir" -type f -exec sha256sum {} + | sort > "$dir.want"
sort "$dir.out" > "$dir.got"
if ! diff -u "$dir.want" "$dir.got"; then
  echo "butler-offload disagrees with sha256sum"; exit 1
fi
grep -q "longest main-loop stall" "$dir.err"
grep -q "requests still pending: 0" "$dir.err"
echo "ok: $(wc -l < "$dir.got") files match sha256sum"
cat "$dir.err"
rm -f "$dir.out" "$dir.err" "$dir.want" "$dir.got"
