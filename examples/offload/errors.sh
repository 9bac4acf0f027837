#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# errors.sh BUTLER_OFFLOAD CASE — the demo on a tree it cannot read, or not
# all of it:
#   missing     a directory that does not exist
#   file        a regular file instead of a directory
#   unreadable  a tree with a subdirectory and a file that may not be read
# Each case must name the path and the reason on stderr and exit 1. The
# first two start nothing and make no digests file; the third hashes the
# rest of the tree, correctly. Exits 77 (ctest: skipped) when a case cannot
# be staged on this machine.
set -euo pipefail
demo=$1
case=$2
dir=$(mktemp -d)
trap 'chmod -R u+rwX "$dir" 2>/dev/null; rm -rf "$dir"' EXIT
prefix=()

fail() { echo "FAIL: $*"; exit 1; }

# run ARGS...: the demo with a digests file in $dir; sets $status.
run() {
  status=0
  "${prefix[@]}" "$demo" --quiet -o "$dir/sums" "$@" \
    > "$dir/out" 2> "$dir/err" || status=$?
  echo "exit status $status; stderr:"
  cat "$dir/err"
}

# expect_refused PATH REASON: nothing started, one line naming PATH.
expect_refused() {
  [ "$status" -eq 1 ] || fail "exit status $status, want 1"
  [ "$(cat "$dir/err")" = "butler-offload: $1: $2" ] \
    || fail "stderr is not 'butler-offload: $1: $2'"
  [ ! -e "$dir/sums" ] || fail "a digests file was made"
  [ ! -s "$dir/out" ] || fail "something on stdout"
}

case $case in
missing)
  run "$dir/no such dir"
  expect_refused "$dir/no such dir" "No such file or directory"
  ;;
file)
  printf 'not a directory\n' > "$dir/file"
  run "$dir/file"
  expect_refused "$dir/file" "Not a directory"
  ;;
unreadable)
  tree=$dir/tree
  mkdir -p "$tree/ok" "$tree/locked/inner"
  printf 'a\n' > "$tree/ok/a"
  printf 'b\n' > "$tree/ok/b"
  printf 'hidden\n' > "$tree/locked/inner/c"
  printf 'secret\n' > "$tree/locked-file"
  (cd / && sha256sum "$tree/ok/a" "$tree/ok/b") | sort > "$dir/want"
  chmod 000 "$tree/locked" "$tree/locked-file"
  # Root reads through permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
  # and CI runs as root: drop both capabilities for the demo, so that
  # opendir() and open() fail as they would for any user. Nothing else
  # changes (same uid, same files, no namespace).
  if [ "$(id -u)" -eq 0 ]; then
    caps=-dac_override,-dac_read_search
    if ! command -v setpriv > /dev/null; then
      echo "SKIP: running as root and setpriv (util-linux) is missing"
      exit 77
    fi
    prefix=(setpriv "--inh-caps=$caps" "--bounding-set=$caps" --)
  fi
  # setpriv cannot drop them without CAP_SETPCAP (and then says nothing).
  if "${prefix[@]}" cat "$tree/locked-file" > /dev/null 2>&1; then
    echo "SKIP: a mode 000 file stays readable here, so this case cannot" \
         "be staged (as root, setpriv needs CAP_SETPCAP to drop" \
         "CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)"
    exit 77
  fi
  run "$tree"
  [ "$status" -eq 1 ] || fail "exit status $status, want 1"
  grep -qxF "butler-offload: $tree/locked: Permission denied" "$dir/err" \
    || fail "the unreadable directory is not named with its reason"
  grep -qxF "butler-offload: $tree/locked-file: Permission denied" "$dir/err" \
    || fail "the unreadable file is not named with its reason"
  grep -qF "2 entries could not be read" "$dir/err" \
    || fail "the summary does not count the errors"
  grep -q "requests still pending: 0" "$dir/err" || fail "requests pending"
  sort "$dir/sums" > "$dir/got"
  diff -u "$dir/want" "$dir/got" || fail "wrong digests for the readable files"
  ;;
*)
  fail "unknown case $case"
  ;;
esac
echo "ok: $case"
