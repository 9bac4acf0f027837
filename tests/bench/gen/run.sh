#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/bench/gen/run.sh — how fast butler-gen is on a large spec.
#
#   tests/bench/gen/run.sh BUTLER_GEN [MESSAGES] [SERVERS] [RUNS]
#
# Writes a spec with MESSAGES messages (default 1000) and SERVERS servers
# (default 100) that uses every field type, nesting and requests; times
# RUNS (default 10) generations and reports the best and the median; then
# compiles the generated source once at -O0 and once at -O2, with the
# project's warnings as errors, and reports those times and sizes.
# Not a timed test: it prints figures, and fails only if something breaks.
set -eu

gen=${1:?usage: run.sh BUTLER_GEN [MESSAGES] [SERVERS] [RUNS]}
n_msgs=${2:-1000}
n_srvs=${3:-100}
runs=${4:-10}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cc=${CC:-cc}
work=$(mktemp -d /tmp/butler-genbench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The spec: message i has 4..8 fields cycling through every type; every
# tenth nests the message before it; every seventh is a request answered by
# the next one. Server j accepts 10 messages, 10 apart, so every message is
# accepted by one server.
awk -v M="$n_msgs" -v S="$n_srvs" 'BEGIN {
	split("bool i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 string bytes buf ptr", t, " ")
	print "{\n  \"butler\": 1,\n  \"app\": \"big\",\n  \"messages\": {"
	for (i = 0; i < M; i++) {
		nf = 4 + i % 5
		printf "    \"m%d\": { \"fields\": {", i
		for (f = 0; f < nf; f++)
			printf "%s \"f%d\": \"%s\"", f ? "," : "", f, t[1 + (i + f) % 15]
		if (i % 10 == 9)
			printf ", \"inner\": \"m%d\"", i - 1
		printf " }"
		if (i % 7 == 0 && i + 1 < M)
			printf ", \"reply\": \"m%d\"", i + 1
		printf " }%s\n", i + 1 < M ? "," : ""
	}
	print "  },\n  \"servers\": {"
	per = int(M / S)
	for (j = 0; j < S; j++) {
		printf "    \"s%d\": { \"accepts\": [", j
		for (k = 0; k < per; k++)
			printf "%s\"m%d\"", k ? ", " : "", j + k * S
		printf "], \"instances\": %d }%s\n", 1 + j % 4, j + 1 < S ? "," : ""
	}
	print "  }\n}"
}' > "$work/big.json"

now_ns() { date +%s%N; }
ms() { echo "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

times=""
i=0
while [ "$i" -lt "$runs" ]; do
	rm -rf "$work/out"
	t0=$(now_ns)
	"$gen" --out-dir "$work/out" "$work/big.json"
	t1=$(now_ns)
	times="$times $((t1 - t0))"
	i=$((i + 1))
done
sorted=$(echo $times | tr ' ' '\n' | sort -n)
best=$(echo "$sorted" | head -1)
median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")

flags="-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wswitch-enum -Werror"
compile() {
	t0=$(now_ns)
	$cc $flags "$1" -I"$root/include" -I"$work/out" \
		-c "$work/out/big.butler.c" -o "$work/big$1.o"
	t1=$(now_ns)
	echo $((t1 - t0))
}
c0=$(compile -O0)
c2=$(compile -O2)

spec_kb=$(( $(wc -c < "$work/big.json") / 1024 ))
h_kb=$(( $(wc -c < "$work/out/big.butler.h") / 1024 ))
c_kb=$(( $(wc -c < "$work/out/big.butler.c") / 1024 ))
h_lines=$(wc -l < "$work/out/big.butler.h")
c_lines=$(wc -l < "$work/out/big.butler.c")

echo "butler-gen on $n_msgs messages, $n_srvs servers (spec ${spec_kb} KiB)"
echo "  generate:  best $(ms "$best") ms, median $(ms "$median") ms of $runs runs"
echo "  output:    header ${h_kb} KiB / $h_lines lines, source ${c_kb} KiB / $c_lines lines"
echo "  compile:   $cc -O0 $(ms "$c0") ms, -O2 $(ms "$c2") ms (-Werror, clean)"
