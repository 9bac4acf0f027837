#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sigterm.sh BUTLER_OFFLOAD — SIGTERM in the middle of a run: the demo must
# cancel what is in flight, print the cancel summary, leave no request
# pending, exit with 128 + 15, and the digests it wrote must be right.
#
# The tree holds small files and a sparse 64 GiB file (no disk space used),
# which a hasher would need minutes to read: the run is surely under way
# when the signal comes, and the demo exits well within the test's timeout
# only if the hasher busy with that file stops too.
set -euo pipefail
demo=$1
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
tree=$dir/tree

fail() { echo "FAIL: $*"; cat "$dir/err"; exit 1; }

mkdir -p "$tree/small"
for i in $(seq 1 20); do printf 'file %d\n' "$i" > "$tree/small/f$i"; done
truncate -s 64G "$tree/huge.bin"

"$demo" --in-flight 4 -o "$dir/sums" "$tree" > "$dir/out" 2> "$dir/err" &
pid=$!
# The demo flushes its digests every 100 ms: the first ones show that it
# has started (and installed its signal handlers).
for _ in $(seq 1 600); do
  [ -s "$dir/sums" ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.1
done
[ -s "$dir/sums" ] || fail "no digest within 60 s"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
cat "$dir/err"
[ "$status" -eq 143 ] || fail "exit status $status, want 143 (128 + SIGTERM)"
grep -q "^butler-offload: SIGTERM: cancelling [0-9]* requests\? in flight" \
  "$dir/err" || fail "no cancel message"
grep -q "^butler-offload: cancelled by SIGTERM after" "$dir/err" \
  || fail "no cancel summary"
grep -q "requests still pending: 0" "$dir/err" || fail "requests pending"
! grep -q "huge.bin" "$dir/sums" || fail "the huge file has a digest"
(cd / && sha256sum --quiet -c "$dir/sums") || fail "wrong digests"
echo "ok: SIGTERM after $(wc -l < "$dir/sums") digests: clean cancel"
