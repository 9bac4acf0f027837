#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# selftest.sh BUTLER_GTK_OFFLOAD SCREENSHOT.png — runs the GTK example's
# self-test under Xvfb on a tree of files made here: the application's id,
# header bar and shortcuts, the folder chooser, one run to completion
# (every digest checked against sha256sum and GChecksum, the newest row on
# screen), one run cancelled half-way, rows copied to the clipboard, a
# screenshot of the window saved to SCREENSHOT.png, then a third run and
# Quit while it is under way (nothing pending, no callback after).
set -euo pipefail
app=$1
shot=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$dir.sums" "$dir.log"' EXIT

mkdir -p "$dir/a/b/c" "$dir/empty dir" "$dir/with space"
: > "$dir/empty"
printf 'hello\n' > "$dir/a/hello.txt"
for i in $(seq 1 300); do printf 'file %d\n' "$i" > "$dir/a/b/f$i"; done
head -c 3000000 /dev/urandom > "$dir/a/b/c/medium.bin"
head -c 24000000 /dev/urandom > "$dir/with space/big file.bin" # progress
ln -s "$dir/a/hello.txt" "$dir/a/link" # not followed, not listed
find "$dir" -type f -exec sha256sum {} + > "$dir.sums"

mkdir -p "$(dirname "$shot")"
rm -f "$shot"
# Software rendering on X11 without GL; no accessibility bus under Xvfb,
# and settings (the folder chooser's) kept in memory, not in dconf.
export GDK_BACKEND=x11 GSK_RENDERER=cairo LIBGL_ALWAYS_SOFTWARE=1
export GDK_DEBUG=gl-disable GTK_A11Y=none NO_AT_BRIDGE=1
export GSETTINGS_BACKEND=memory
# Sanitizer builds: what GTK's uninstrumented libraries do is not ours.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export TSAN_OPTIONS="suppressions=$here/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
status=0
xvfb-run -a -s "-screen 0 1280x1024x24" \
  "$app" --self-test "$dir" --screenshot "$shot" --expect "$dir.sums" \
  > "$dir.log" 2>&1 || status=$?
cat "$dir.log"
if [ "$status" -ne 0 ]; then
  echo "butler-gtk-offload --self-test failed (exit $status)"; exit 1
fi
grep -q "longest main-loop stall" "$dir.log"
grep -q "requests still pending: 0" "$dir.log"
grep -q "^self-test: passed$" "$dir.log"
if [ ! -s "$shot" ]; then
  echo "no screenshot at $shot"; exit 1
fi
echo "ok: screenshot $shot ($(stat -c %s "$shot") bytes)"
