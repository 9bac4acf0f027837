#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tmux.sh BUTLER_OFFLOAD — runs the demo in a real terminal, a detached
# tmux session (which makes its own pty: no TTY needed, root is fine), and
# reads the screen with capture-pane:
#   1. a run to completion: the summary is on the screen, no digest is, the
#      digests are in ./butler-offload.sha256 and sha256sum -c accepts them;
#   2. a run that Ctrl-C stops: while it runs, the last line of the screen
#      is the progress line, every time, and it moves; after Ctrl-C the
#      cancel summary is on the screen and nothing is pending.
# The tmux server is private (its own socket, -L, in a directory of its
# own, TMUX_TMPDIR, removed at the end; no config file): the test never
# touches a user's tmux. Sanitizer reports go to files (log_path), since
# the demo's stderr is the terminal.
set -euo pipefail
demo=$1
dir=$(mktemp -d)
sock=butler-offload-test
tmx() {
  env -u TMUX TMUX_TMPDIR="$dir" tmux -L "$sock" -f "$dir/tmux.conf" "$@"
}
trap 'tmx kill-server 2> /dev/null || true; rm -rf "$dir"' EXIT

fail() {
  echo "FAIL: $*"
  for s in full cancel; do
    echo "--- screen of '$s':"
    tmx capture-pane -p -S - -t "$s" 2> /dev/null || true
  done
  exit 1
}

# The pane stays when the demo exits, to be read, with its exit status.
printf 'set -g remain-on-exit on\nset -g history-limit 5000\n' \
  > "$dir/tmux.conf"
san="log_path=$dir/sanitizer"
sanenv=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}$san"
            "UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}$san"
            "TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}$san")

# start NAME DIR ARGS...: the demo in a new 100x30 session, cwd DIR.
start() {
  local name=$1 cwd=$2
  shift 2
  tmx new-session -d -s "$name" -x 100 -y 30 -c "$cwd" \
    "${sanenv[@]}" "$demo" "$@"
}

# wait_dead NAME: waits up to 60 s for the demo to exit; sets $status.
# tmux marks a pane dead when its pty closes and has the exit status only
# once it has reaped the process; Debian's tmux uses libutempter, whose
# own SIGCHLD handler can swallow the signal, so that a dead demo stays a
# zombie (tmux/tmux#311). A SIGCHLD to our private server makes it reap.
wait_dead() {
  local server
  server=$(tmx display -p '#{pid}')
  for _ in $(seq 1 600); do
    status=$(tmx display -p -t "$1" '#{?pane_dead,#{pane_dead_status},}')
    [ -n "$status" ] && return 0
    [ "$(tmx display -p -t "$1" '#{pane_dead}')" = 1 ] \
      && kill -CHLD "$server" 2> /dev/null
    sleep 0.1
  done
  fail "'$1' still runs after 60 s"
}

no_sanitizer_reports() {
  if compgen -G "$dir/sanitizer*" > /dev/null; then
    cat "$dir"/sanitizer*
    fail "sanitizer reports"
  fi
}

# The progress line once the tree is known, e.g.
# [######------------------------]  21%  12/21 files  14.6/68719.5 MB  ...
bar='^\[[#-]+\] +[0-9]+%  [0-9]+/[0-9]+ files  [0-9.]+/[0-9.]+ [kMGTP]?B  [0-9.]+ [kMGTP]?B/s'
digest='[0-9a-f]{64}  /'

# 1. To completion. stdout is the terminal: digests go to the file.
tree=$dir/tree
mkdir -p "$tree/a/b" "$tree/with space" "$dir/run"
for i in $(seq 1 300); do printf 'file %d\n' "$i" > "$tree/a/b/f$i"; done
head -c 3000000 /dev/urandom > "$tree/with space/medium.bin"
files=$(find "$tree" -type f | wc -l)
start full "$dir/run" "$tree"
wait_dead full
screen=$(tmx capture-pane -p -S - -t full)
echo "--- screen after a full run (exit status $status):"
echo "$screen"
[ "$status" -eq 0 ] || fail "exit status $status"
grep -q "^butler-offload: $files files, .* hashed in .* s (.* files/s, .*/s)$" \
  <<< "$screen" || fail "no summary line"
grep -qF "butler-offload: digests in butler-offload.sha256; check them with sha256sum -c butler-offload.sha256" \
  <<< "$screen" || fail "the summary does not name the digests file"
grep -q "^longest main-loop stall: " <<< "$screen" || fail "no stall line"
grep -q "^hasher  " <<< "$screen" || fail "no hub statistics"
grep -qE "^hasher/hash_file +$files( +[0-9.]+ [nmu]?s){4}$" <<< "$screen" \
  || fail "no queue and handler times per message kind"
grep -q "^requests still pending: 0$" <<< "$screen" || fail "requests pending"
! grep -qE "$digest" <<< "$screen" || fail "digests on the screen"
! grep -qE '^\[[#-]+\]|^scanning' <<< "$screen" || fail "a progress line is left"
[ "$(wc -l < "$dir/run/butler-offload.sha256")" -eq "$files" ] \
  || fail "butler-offload.sha256 does not list $files files"
(cd "$dir/run" && sha256sum --quiet -c butler-offload.sha256) \
  || fail "sha256sum -c rejects butler-offload.sha256"
no_sanitizer_reports
echo "ok: full run: summary on the screen, $files digests in the file"

# 2. Ctrl-C. A sparse 64 GiB file keeps the hashers busy for minutes.
tree2=$dir/tree2
mkdir -p "$tree2"
for i in $(seq 1 20); do printf 'file %d\n' "$i" > "$tree2/f$i"; done
truncate -s 64G "$tree2/huge.bin"
start cancel "$dir" -o "$dir/sums" "$tree2"
last_line() { tmx capture-pane -p -t cancel | grep -v '^$' | tail -n 1; }
for _ in $(seq 1 600); do
  grep -qE "$bar" <<< "$(last_line)" && break
  sleep 0.1
done
first=$(last_line)
grep -qE "$bar" <<< "$first" || fail "no progress line within 60 s"
echo "--- progress line: $first"
# Steady: whenever the screen is read, its last line is the progress line,
# the only one, and no digest is on the screen.
for _ in 1 2 3 4 5; do
  sleep 0.2
  screen=$(tmx capture-pane -p -t cancel)
  grep -qE "$bar" <<< "$(grep -v '^$' <<< "$screen" | tail -n 1)" \
    || fail "the last line is not the progress line"
  [ "$(grep -cE '^\[[#-]+\]' <<< "$screen")" -eq 1 ] \
    || fail "more than one progress line"
  ! grep -qE "$digest" <<< "$screen" || fail "digests on the screen"
done
# Live: the line changes (the big file's bytes count as they are hashed).
for _ in $(seq 1 300); do
  [ "$(last_line)" != "$first" ] && break
  sleep 0.1
done
[ "$(last_line)" != "$first" ] || fail "the progress line did not change in 30 s"
echo "--- progress line later: $(last_line)"
tmx send-keys -t cancel C-c
wait_dead cancel
screen=$(tmx capture-pane -p -S - -t cancel)
echo "--- screen after Ctrl-C (exit status $status):"
echo "$screen"
[ "$status" -eq 130 ] || fail "exit status $status, want 130 (128 + SIGINT)"
grep -q "^butler-offload: SIGINT: cancelling [0-9]* requests\? in flight, dropping [0-9]* files\? not asked for$" \
  <<< "$screen" || fail "no cancel message"
grep -q "^butler-offload: cancelled by SIGINT after" <<< "$screen" \
  || fail "no cancel summary"
grep -q "^requests still pending: 0$" <<< "$screen" || fail "requests pending"
! grep -q "huge.bin" "$dir/sums" || fail "the huge file has a digest"
(cd / && sha256sum --quiet -c "$dir/sums") || fail "wrong digests"
no_sanitizer_reports
echo "ok: Ctrl-C: steady progress line, clean cancel summary"
