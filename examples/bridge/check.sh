#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/bridge/check.sh — the example's smoke test: the same binary
# all-local, then as a worker process and a client process joined by a
# bridge (deploy.json's layout, over ipc:// in a directory of its own so
# that parallel runs do not meet).
#
#   examples/bridge/check.sh BRIDGE_DEMO
set -euo pipefail

demo=$1
work=$(mktemp -d /tmp/butler-bridge-demo.XXXXXX)
worker=
cleanup() {
	[ -n "$worker" ] && kill "$worker" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

"$demo" 4 | tee "$work/local.out"
grep -q '^client: 4 jobs, 4 digests right, progress seen, hashed by pid [0-9]* (this process), 8 notes counted there$' "$work/local.out"

head -c 32 /dev/urandom | base64 >"$work/demo.secret"
chmod 600 "$work/demo.secret"
cat >"$work/deploy.json" <<JSON
{
  "bridge": 1,
  "secret_file": "demo.secret",
  "nodes": {
    "worker": { "listen": ["ipc://$work/worker.sock"], "servers": ["hasher"] },
    "client": {}
  }
}
JSON
"$demo" --config "$work/deploy.json" --node worker >"$work/worker.out" \
	2>"$work/worker.err" &
worker=$!
for _ in $(seq 100); do
	grep -q '^worker: ready' "$work/worker.out" 2>/dev/null && break
	sleep 0.1
done
"$demo" --config "$work/deploy.json" --node client 8 | tee "$work/client.out"
grep -q '^client: 8 jobs, 8 digests right, progress seen, hashed by pid [0-9]* (another process), 16 notes counted there$' "$work/client.out"
kill -TERM "$worker"
wait "$worker"
worker=
cat "$work/worker.out"
grep -q '^worker: 8 jobs, 16 notes$' "$work/worker.out"
if grep -E 'Sanitizer|runtime error' "$work/worker.err"; then exit 1; fi
