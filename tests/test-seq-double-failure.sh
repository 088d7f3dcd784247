#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-double-failure.sh: B down, A down, B back alone (DESIGN 6,
# "sequences, not single faults").
#
# Node 2 is killed -9 and writes go on (node 1 records what member 42
# misses); then node 1 is killed -9 too, under the writes; then node 2
# ALONE returns.  It
# is outdated: the only member that knows it is down.  The pool must not
# serve node 2's stale data: a read either fails (EIO) or waits, never
# returns an older value, and the client's status names member 41 as the
# member it needs (what an administrator expects: "refuse, and say
# whom you are waiting for").  Node 1 returns: both legs come back, node
# 2 resyncs, every acknowledged write reads back (also through member 42
# alone and from node 2's store), the maps are clean and the legs
# byte-identical.  Then the same with the roles of the nodes swapped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 2

# double_failure B A: node B dies, writes go on, node A dies under them,
# B comes back alone (and must not serve), then A comes back.
double_failure ()
{
  local b=$1 a=$2 mb=$((40 + $1)) ma=$((40 + $2)) w d1 st rc out status

  # Write B goes on while node b is down, and node a dies under it.
  node_kill "$b" KILL
  start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
    --queue 16 --flush-every 64 --seconds 60 --timeout 20
  w=$BG_PID
  _wait_until 30 many "$a" "$mb" || true
  d1=$(dirty_count "$a" "$mb")
  [[ "$d1" -gt 0 ]] && ok "node $a records $d1 chunks for member $mb" ||
    not_ok "node $a records chunks for member $mb (got '$d1')"
  node_kill "$a" KILL
  sleep 1
  kill_pid "$w"
  node_start "$b" p 32M
  # Give the client time to reconnect to node b (backoff up to 5 s).
  sleep 8
  st=$(leg_state e "$b")
  [[ "$st" != normal ]] && ok "the outdated leg $b is not enabled alone ($st)" ||
    not_ok "the outdated leg $b is not enabled alone (state $st)"
  rc=0
  out=$(timeout 15 "$checker" verify "$uri" "$J" 2>&1) || rc=$?
  case $rc in
    3) ok "a read fails rather than return node $b's stale data" ;;
    124) ok "a read waits rather than return node $b's stale data" ;;
    *) not_ok "a read fails or waits rather than return node $b's stale data"
       diag "checker verify: status $rc"
       diag "$(head -n 12 <<<"$out")" ;;
  esac
  status=$(rmradm_c e status 2>&1 || true)
  grep -E "last_error:.*member[ _a-z]*[ =:]*$ma([^0-9]|\$)" <<<"$status" >&2 &&
    ok "the client's status names member $ma as needed" ||
    { not_ok "the client's status names member $ma as needed"
      diag "$(grep -E 'state|last_error' <<<"$status")"; }

  node_start "$a" p 32M
  wait_leg_normal e 1 30
  wait_leg_normal e 2 30
  is "$(leg_state e 1) $(leg_state e 2)" "normal normal" "both legs came back"
  wait_in_sync "$b" 60 && ok "node $b resynced" || not_ok "node $b resynced"
  maps_clean 20 "every map is clean on both nodes"
  verify "every acknowledged write reads back through the pool" "$uri"
  kill_pid "$NBDKIT_PID"
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers 1 2) timeout=3s read-policy=member:$mb
  verify_member "$b" "every acknowledged write reads back through member $mb"
  kill_pid "$NBDKIT_PID"
  verify "node $b's data area alone holds every acknowledged write" "STORE:$b"
  verify "node $a's data area alone holds every acknowledged write" "STORE:$a"
  ok "the legs are byte-identical" legs_identical 1 2 "$size"
}

many ()   # many NODE MEMBER
{
  [[ "$(dirty_count "$1" "$2")" -ge 128 ]]
}

node_start 1 p 32M
node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s chunk-size=64K
ok "write A on both legs" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 6000 --flush-every 64
diag "node 2 down, node 1 down, node 2 back alone"
double_failure 2 1
diag "the other way round: node 1 down, node 2 down, node 1 back alone"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s
double_failure 1 2
done_testing
