#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/model/run.sh — checks the Promela models of butler's concurrency
# protocols with spin (README.md beside this file says what each proves).
#
#   tests/model/run.sh [-v] [-k] [PATTERN]
#
# Every run below is `spin -a` + `gcc -O2 pan.c` + `./pan`, exhaustive (no
# bitstate hashing). A run that expects `ok` passes when pan reports
# "errors: 0" after a complete search (no "max search depth too small", no
# out-of-memory); a run that expects `violation` (a mutant: the protocol
# with one piece broken, or a witness of a known bug in the C code) passes
# when pan finds one ("errors: 1" or more). PATTERN (an extended regular
# expression) selects runs by name; -k keeps the work directory; -v prints
# the counterexample of an `ok` run that failed and of every violation.
# Exit status: 0 all passed, 1 some failed, 77 spin or gcc missing (ctest
# counts that as skipped).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
keep=0 verbose=0 pattern=
while [ $# -gt 0 ]; do
  case $1 in
    -k) keep=1 ;;
    -v) verbose=1 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) pattern=$1 ;;
  esac
  shift
done

for tool in spin gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "model: $tool is not installed (Debian package: $tool); skipped" >&2
    exit 77
  fi
done

# name | model | spin -D flags | pan mode | expect | why
#   pan mode: safety  (-DSAFETY; assertions, invalid end states)
#             live    (-a -f: the model's ltl formula under weak fairness)
#   why: for an expected violation, text that pan's report must contain (the
#        assertion or "acceptance cycle"), so a mutant fails for its reason
# Names: mut-* break one piece of the protocol on purpose (the former bug-*
# runs are mut-* now: the C code before its fix, README.md "Bugs found");
# fix-* the fixes one by one; plain stop runs carry every fix main has.
# The plain runs are the default seq_cst publish; asym-* the release-store
# publish with membarrier() of BUTLER_MEMBARRIER=1. When a fix lands in
# butler/, its fix-* flags join the plain runs' and its old-code run
# becomes a mut-* run.
# Sizes: wakeup 2 producers x 2 records + 1 answer node; tickets one call
# with up to NPROG progress messages; stop 2 servers, 1 outside message,
# HOPS forwards between the servers.
RUNS='
wakeup           | wakeup  |                                   | safety | ok
wakeup-live      | wakeup  | -DLIVE -DNMSG=1                   | live   | ok
asym-wakeup-membarrier | wakeup | -DRELEASE_STORE -DMEMBARRIER  | safety | ok
mut-wakeup-release-no-membarrier | wakeup | -DRELEASE_STORE    | safety | violation | consumed==
mut-wakeup-no-recheck     | wakeup | -DMUT_NO_RECHECK          | safety | violation | consumed==
mut-wakeup-keep-scheduled | wakeup | -DMUT_NO_CLEAR_SCHEDULED  | safety | violation | consumed==
mut-wakeup-check-first    | wakeup | -DMUT_CHECK_BEFORE_CLEAR  | safety | violation | consumed==
mut-wakeup-announce-first | wakeup | -DMUT_ANNOUNCE_FIRST      | safety | violation | consumed==
mut-wakeup-post-claim-first | wakeup | -DMUT_POST_CLAIM_FIRST  | safety | violation | consumed==
mut-wakeup-ack-late       | wakeup | -DMUT_ACK_AFTER_PROCESS   | safety | violation | consumed==
mut-wakeup-live-no-recheck | wakeup | -DLIVE -DNMSG=1 -DMUT_NO_RECHECK | live | violation | acceptance cycle

tickets          | tickets |                                   | safety | ok
tickets-progress2| tickets | -DNPROG=2                         | safety | ok
tickets-live     | tickets | -DLIVE                            | live   | ok
tickets-wait     | tickets | -DWAIT                            | safety | ok
tickets-wait-live| tickets | -DWAIT -DLIVE                     | live   | ok
mut-tickets-loser-keeps-reply | tickets | -DMUT_LOSER_KEEPS_REPLY | safety | violation | !(reply_in_ticket)
mut-tickets-no-park       | tickets | -DMUT_NO_PARK            | safety | violation | (progress_seen==progress_sent)
mut-tickets-early-keeps-parked | tickets | -DMUT_EARLY_KEEPS_PARKED | safety | violation | !(reply_in_ticket)
mut-tickets-no-ended-check | tickets | -DMUT_NO_ENDED_CHECK    | safety | violation | refs>1
mut-tickets-progress-after-end | tickets | -DMUT_PROGRESS_AFTER_END | safety | violation | (cb_runs==0)
mut-tickets-wait-no-give-up | tickets | -DWAIT -DMUT_WAIT_NO_GIVE_UP | safety | violation | waiter_alive
mut-tickets-wait-no-cas   | tickets | -DWAIT -DMUT_ANSWER_NO_CAS | safety | violation | waiter_alive
mut-tickets-wait-live-no-signal | tickets | -DWAIT -DLIVE -DMUT_WAIT_NO_SIGNAL | live | violation | acceptance cycle

stop-outside     | stop | -DNOUT=2 -DHOPS=0 -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY -DFIX_ENOMEM | safety | ok
stop-io-call     | stop | -DNOUT=1 -DHOPS=0 -DIO_CALL -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY -DFIX_ENOMEM | safety | ok
stop-live        | stop | -DNOUT=1 -DHOPS=0 -DIO_CALL -DLIVE -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY -DFIX_ENOMEM | live  | ok
stop-quiet-no-straggler | stop | -DNOUT=1 -DHOPS=2 -DQUIET_PROP -DNO_STRAGGLE -DFIX_INSIDE_NO_WAIT | safety | ok
mut-stop-straggle-mutual | stop | -DNOUT=1 -DHOPS=2 -DNO_STRAGGLE | safety | violation | (stop_done&&released)
mut-stop-straggle-self   | stop | -DNOUT=1 -DHOPS=1 -DSELF_SEND -DNO_STRAGGLE | safety | violation | (stop_done&&released)
mut-stop-quiet-straggler | stop | -DNOUT=1 -DHOPS=2 -DQUIET_PROP -DFIX_INSIDE_NO_WAIT | safety | violation | (owed==0)
mut-stop-quiet-io-call   | stop | -DNOUT=1 -DHOPS=1 -DQUIET_PROP -DNO_STRAGGLE -DIO_CALL -DFIX_INSIDE_NO_WAIT | safety | violation | (owed==0)
mut-stop-enomem-hangs    | stop | -DNOUT=1 -DHOPS=2 -DNO_STRAGGLE -DENOMEM -DFIX_INSIDE_NO_WAIT | safety | violation | (stop_done&&released)
fix-stop                 | stop | -DNOUT=1 -DHOPS=2 -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | safety | ok
fix-stop-self            | stop | -DNOUT=1 -DHOPS=1 -DSELF_SEND -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | safety | ok
fix-stop-live            | stop | -DNOUT=1 -DHOPS=1 -DLIVE -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | live | ok
fix-stop-quiet-straggler | stop | -DNOUT=1 -DHOPS=2 -DQUIET_PROP -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | safety | ok
fix-stop-quiet-io-call   | stop | -DNOUT=1 -DHOPS=1 -DQUIET_PROP -DIO_CALL -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY | safety | ok
fix-stop-enomem          | stop | -DNOUT=1 -DHOPS=2 -DENOMEM -DFIX_ENOMEM -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | safety | ok
asym-stop-release        | stop | -DNOUT=1 -DHOPS=2 -DRELEASE_STORE -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY -DFIX_ENOMEM -DQUIET_MEMBARRIER | safety | ok
asym-stop-release-quiet  | stop | -DNOUT=1 -DHOPS=2 -DRELEASE_STORE -DQUIET_PROP -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DQUIET_MEMBARRIER | safety | ok
asym-stop-outside        | stop | -DNOUT=2 -DHOPS=0 -DRELEASE_STORE -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DFIX_CALL_BUSY -DFIX_ENOMEM -DQUIET_MEMBARRIER | safety | ok
mut-asym-stop-finish-no-barrier | stop | -DNOUT=2 -DHOPS=0 -DRELEASE_STORE -DMUT_FINISH_NO_BARRIER | safety | violation | counted
mut-stop-release-no-quiet-membarrier | stop | -DNOUT=1 -DHOPS=2 -DRELEASE_STORE -DQUIET_PROP -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER | safety | violation | (owed==0)
mut-stop-publish-after-unlock | stop | -DNOUT=1 -DHOPS=2 -DQUIET_PROP -DNO_STRAGGLE -DFIX_INSIDE_NO_WAIT -DMUT_PUBLISH_AFTER_UNLOCK | safety | violation | (owed==0)
mut-stop-try-quiet-unlocked   | stop | -DNOUT=1 -DHOPS=2 -DQUIET_PROP -DNO_STRAGGLE -DFIX_INSIDE_NO_WAIT -DMUT_TRY_QUIET_UNLOCKED | safety | violation | (owed==0)
mut-stop-quiet-ignores-calls  | stop | -DNOUT=1 -DHOPS=1 -DQUIET_PROP -DNO_STRAGGLE -DIO_CALL -DFIX_INSIDE_NO_WAIT -DFIX_CALL_BUSY -DMUT_QUIET_IGNORES_CALLS | safety | violation | (owed==0)
mut-stop-no-wake         | stop | -DNOUT=1 -DHOPS=2 -DFIX_INSIDE_NO_WAIT -DMUT_NO_WAKE | safety | violation | (stop_done&&released)
mut-stop-live-no-wake    | stop | -DNOUT=1 -DHOPS=1 -DLIVE -DFIX_INSIDE_NO_WAIT -DMUT_NO_WAKE | live | violation | acceptance cycle
mut-stop-fix-no-ring     | stop | -DNOUT=1 -DHOPS=2 -DFIX_INSIDE_NO_WAIT -DFIX_STRAGGLER -DMUT_FIX_NO_RING | safety | violation | (stop_done&&released)
mut-stop-no-straggle     | stop | -DNOUT=2 -DHOPS=0 -DMUT_NO_STRAGGLE | safety | violation | counted
mut-stop-ring-no-users   | stop | -DNOUT=2 -DHOPS=0 -DMUT_RING_NO_USERS | safety | violation | !(fd_gone
mut-stop-no-straggle-no-release | stop | -DNOUT=2 -DHOPS=0 -DMUT_NO_STRAGGLE -DMUT_NO_RELEASE -DNO_COUNTED | safety | violation | (tail[0]==head[0])
'

work=$(mktemp -d "${TMPDIR:-/tmp}/butler-model.XXXXXX")
if [ "$keep" = 1 ]; then
  echo "model: work directory $work"
else
  trap 'rm -rf "$work"' EXIT
fi

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; printf '%s' "${s%"${s##*[![:space:]]}"}"; }

passed=0 failed=0 failures=()
printf '%-36s %-9s %-9s %12s %8s\n' run expect result states seconds
while IFS='|' read -r name model defs mode expect why; do
  name=$(trim "$name")
  [ -z "$name" ] && continue
  model=$(trim "$model") defs=$(trim "$defs") mode=$(trim "$mode")
  expect=$(trim "$expect") why=$(trim "${why:-}")
  if [ -n "$pattern" ] && ! [[ $name =~ $pattern ]]; then
    continue
  fi
  dir=$work/$name
  mkdir -p "$dir"
  cp "$here/$model.pml" "$dir/"
  case $mode in
    safety) cc_flags=(-DSAFETY) pan_flags=() ;;
    live) cc_flags=(-DNFAIR=4) pan_flags=(-a -f) ;;
    *) echo "model: $name: unknown mode $mode" >&2; exit 1 ;;
  esac
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # defs is a list of -D flags
  if ! (cd "$dir" && spin -a $defs "$model.pml" >spin.log 2>&1); then
    result=spin-error
  elif ! (cd "$dir" && gcc -O2 -w -DMEMLIM=6144 "${cc_flags[@]}" \
            -o pan pan.c >gcc.log 2>&1); then
    result=gcc-error
  else
    (cd "$dir" && ./pan -m100000 "${pan_flags[@]}" >pan.log 2>&1)
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$dir/pan.log" | tail -1)
    if [ -z "$errors" ]; then
      result=no-verdict
    elif [ "$errors" = 0 ]; then
      if grep -q -e 'max search depth too small' -e 'out of memory' \
          -e 'memory limit' "$dir/pan.log"; then
        result=incomplete
      else
        result=ok
      fi
    elif [ -n "$why" ] && ! grep -q -F -e "$why" "$dir/pan.log"; then
      result=other-violation
    else
      result=violation
    fi
  fi
  end=$(date +%s.%N)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$dir/pan.log" 2>/dev/null | tail -1)
  printf '%-36s %-9s %-9s %12s %8.1f\n' "$name" "$expect" "$result" \
    "${states:--}" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
  if [ "$result" = "$expect" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
  if [[ $result == *violation ]] && { [ "$verbose" = 1 ] || [ "$expect" = ok ]; }; then
    grep -e 'assertion violated' -e 'acceptance cycle' -e 'invalid end state' \
      "$dir/pan.log" | head -3 | sed 's/^/    /'
    # shellcheck disable=SC2086
    (cd "$dir" && spin -t $defs -p -g "$model.pml" 2>&1 | tail -60 | sed 's/^/    /')
  elif [ "$result" != "$expect" ]; then
    tail -20 "$dir/pan.log" "$dir/spin.log" "$dir/gcc.log" 2>/dev/null | sed 's/^/    /'
  fi
  # Each run's pan is big; only the logs are kept with -k.
  rm -f "$dir/pan" "$dir"/pan.[bchmpt]
done <<<"$RUNS"

if [ ${#failures[@]} -gt 0 ]; then
  echo "model: failed: ${failures[*]}"
fi
echo "model: $passed passed, $failed failed"
[ "$failed" = 0 ]
