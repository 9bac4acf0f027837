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
# Needs root, iproute2 and util-linux (unshare, nsenter); exits 77
# (skipped) without them.
set -euo pipefail

peer=$1
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no ip (iproute2)"

tag=$$
va=bta$tag vb=btb$tag
work=$(mktemp -d /tmp/butler-bridge-netns.XXXXXX)
worker_pid= holder_a= holder_b=

# Each namespace is held by a sleeping process of its own (unshare --net)
# and entered through /proc/PID/ns/net: no named namespaces, so nothing is
# mounted under /run/netns (`ip netns add` mounts there, and `ip netns
# exec` makes "/" a slave, which fails where "/" is no mount point: a
# chroot). The namespaces go when their holders do.
cleanup() {
	[ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true
	[ -n "$holder_a" ] && kill "$holder_a" 2>/dev/null || true
	[ -n "$holder_b" ] && kill "$holder_b" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

command -v unshare >/dev/null && command -v nsenter >/dev/null \
	|| skip "no unshare/nsenter (util-linux)"
unshare --net sleep 600 &
holder_a=$!
unshare --net sleep 600 &
holder_b=$!
# Wait until both have entered their namespace.
for _ in $(seq 100); do
	[ "$(readlink /proc/$holder_a/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] \
		&& [ "$(readlink /proc/$holder_b/ns/net 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] \
		&& break
	sleep 0.05
done
kill -0 "$holder_a" 2>/dev/null && kill -0 "$holder_b" 2>/dev/null \
	|| skip "cannot create network namespaces here"
ns_a=/proc/$holder_a/ns/net ns_b=/proc/$holder_b/ns/net
# Runs a command in a namespace's network only.
in_a() { nsenter --net="$ns_a" "$@"; }
in_b() { nsenter --net="$ns_b" "$@"; }

ip link add "$va" netns "$holder_a" type veth peer name "$vb" netns "$holder_b"
in_a ip addr add 10.213.0.1/24 dev "$va"
in_b ip addr add 10.213.0.2/24 dev "$vb"
in_a ip link set lo up
in_b ip link set lo up
in_a ip link set "$va" up
in_b ip link set "$vb" up

head -c 32 /dev/urandom | base64 >"$work/secret"
chmod 600 "$work/secret"

# The worker in namespace b, on its own address (nsenter itself, not
# in_b: a function run in the background is a subshell, and the kill
# below would reach that, not the worker).
nsenter --net="$ns_b" "$peer" worker tcp://10.213.0.2:7411 "$work/secret" \
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
if in_a "$peer" client tcp://10.213.0.2:7411 "$work/secret" \
	1 >"$work/refused.out" 2>&1; then
	echo "client used a non-loopback address without allow-remote"
	exit 1
fi
grep -q "is not a loopback address" "$work/refused.out" || {
	echo "no loopback refusal:"; cat "$work/refused.out"; exit 1
}

# The client in namespace a: messages and requests, all answered.
in_a "$peer" client tcp://10.213.0.2:7411 "$work/secret" \
	2000 remote | tee "$work/client.out"
grep -q '^client: 2000 notes, 2000 calls answered$' "$work/client.out"

kill -TERM "$worker_pid"
wait "$worker_pid"
worker_pid=
if grep -E 'Sanitizer|runtime error' "$work/worker.err"; then
	exit 1
fi
echo "netns: two namespaces exchanged 2000 messages and 2000 requests"
