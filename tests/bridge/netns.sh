#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/bridge/netns.sh — two hubs in two network namespaces of one machine,
# joined by a veth pair, exchanging messages and requests over the bridge
# (TCP between the namespaces' own addresses, 10.213.x; nothing of the
# machine's network is touched). The client is also shown refusing the
# same address without allow-remote (only loopback by default).
#
#   tests/bridge/netns.sh BRIDGE_PEER
#
# Needs root and iproute2 (ip netns); exits 77 (skipped) without them.
set -euo pipefail

peer=$1
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip (iproute2)"

tag=$$
na=butler-bridge-a-$tag nb=butler-bridge-b-$tag
va=bta$tag vb=btb$tag
work=$(mktemp -d /tmp/butler-bridge-netns.XXXXXX)
worker_pid=

cleanup() {
	[ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
	ip netns del "$na" 2>/dev/null || true
	ip netns del "$nb" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# Runs a command in namespace $1's network only: nsenter, not `ip netns
# exec`, which also makes a mount namespace with "/" a slave, and that
# fails where "/" is not a mount point (a chroot).
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$@"
}

ip netns add "$na" 2>/dev/null || skip "cannot create network namespaces here"
ip netns add "$nb"
ip link add "$va" netns "$na" type veth peer name "$vb" netns "$nb"
ip -n "$na" addr add 10.213.0.1/24 dev "$va"
ip -n "$nb" addr add 10.213.0.2/24 dev "$vb"
for ns in "$na" "$nb"; do ip -n "$ns" link set lo up; done
ip -n "$na" link set "$va" up
ip -n "$nb" link set "$vb" up

head -c 32 /dev/urandom | base64 >"$work/secret"
chmod 600 "$work/secret"

# The worker in namespace b, on its own address (nsenter itself, not
# in_ns: a function run in the background is a subshell, and the kill
# below would reach that, not the worker).
nsenter --net="/run/netns/$nb" "$peer" worker tcp://10.213.0.2:7411 "$work/secret" \
	remote >"$work/worker.out" 2>"$work/worker.err" &
worker_pid=$!
for _ in $(seq 100); do
	grep -q '^ready' "$work/worker.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ready tcp://10.213.0.2:7411' "$work/worker.out" || {
	echo "worker did not start:"; cat "$work/worker.out" "$work/worker.err"
	exit 1
}

# Not loopback: refused unless allowed.
if in_ns "$na" "$peer" client tcp://10.213.0.2:7411 "$work/secret" \
	1 >"$work/refused.out" 2>&1; then
	echo "client used a non-loopback address without allow-remote"
	exit 1
fi
grep -q "is not a loopback address" "$work/refused.out" || {
	echo "no loopback refusal:"; cat "$work/refused.out"; exit 1
}

# The client in namespace a: messages and requests, all answered.
in_ns "$na" "$peer" client tcp://10.213.0.2:7411 "$work/secret" \
	2000 remote | tee "$work/client.out"
grep -q '^client: 2000 notes, 2000 calls answered$' "$work/client.out"

kill -TERM "$worker_pid"
wait "$worker_pid"
worker_pid=
if grep -E 'Sanitizer|runtime error' "$work/worker.err"; then
	exit 1
fi
echo "netns: two namespaces exchanged 2000 messages and 2000 requests"
