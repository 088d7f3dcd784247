#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-double-failure.sh [RF]: B down, A down, B back alone (DESIGN 6,
# "sequences, not single faults"), with RF legs (default 2).
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
#
# At RF=3 the third node C is the last one up: node 2 is killed -9,
# writes go on, node 1 is killed -9, writes go on (acknowledged by node 3
# alone, min-legs 1), node 3 is killed -9 under them; node 2 returns
# alone and must not serve (a read fails or waits, its leg's last_error
# names member 43, the one that holds every write); node 1 returns too:
# still outdated, the same; node 3 returns: every leg comes back, nodes
# 1 and 2 resync, every acknowledged write reads back (through each of
# them alone too, and from every store), the maps are clean and the legs
# byte-identical.  Then the same with node 1 down, node 3 down, node 2
# the last one up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

rf=${1:-2}
seq_init "$rf"

# no_stale_read N NEED: a read through the pool fails or waits rather
# than return node N's stale data; the client's status names member NEED
# as needed.
no_stale_read ()
{
  local n=$1 need=$2 rc out status
  rc=0
  out=$(timeout 15 "$checker" verify "$uri" "$J" 2>&1) || rc=$?
  case $rc in
    3) ok "a read fails rather than return node $n's stale data" ;;
    124) ok "a read waits rather than return node $n's stale data" ;;
    *) not_ok "a read fails or waits rather than return node $n's stale data"
       diag "checker verify: status $rc"
       diag "$(head -n 12 <<<"$out")" ;;
  esac
  status=$(rmradm_c e status 2>&1 || true)
  grep -E "last_error:.*member[ _a-z]*[ =:]*$need([^0-9]|\$)" <<<"$status" >&2 &&
    ok "the client's status names member $need as needed" ||
    { not_ok "the client's status names member $need as needed"
      diag "$(grep -E 'state|last_error' <<<"$status")"; }
}

# leg_waits_for I NEED: leg I is not normal and its last_error names
# member NEED as the one it waits for.
leg_waits_for ()
{
  local i=$1 need=$2 st le
  st=$(leg_state e "$i")
  le=$(leg_get e "$i" last_error 2>&1 || true)
  [[ "$st" != normal ]] &&
    grep -Eq "waiting for member ([0-9]+, )*$need([^0-9]|\$)" <<<"$le" &&
    ok "leg $i ($st) waits for member $need" ||
    { not_ok "leg $i waits for member $need"
      diag "state $st, last_error: $le"; }
}

# _tried I: the client's leg I is normal, or its last reconnect got as
# far as the hand-over's refusal.
_tried ()
{
  [[ "$(leg_state e "$1")" == normal ||
     "$(leg_get e "$1" last_error)" == *"waiting for member"* ]]
}

# double_failure B A [C]: node B dies, writes go on, node A dies under
# them, B comes back alone (and must not serve), then A comes back.
# With C (RF=3): after A, writes go on on C alone and C dies under them;
# B comes back alone, then A (neither may serve: both missed writes only
# C has), then C.
double_failure ()
{
  local b=$1 a=$2 c=${3:-} mb=$((40 + $1)) ma=$((40 + $2)) mc w d1 st i
  local need=$ma
  [[ -n "$c" ]] && mc=$((40 + c)) && need=$mc

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
  if [[ -n "$c" ]]; then
    # Writes go on on node c alone, and node c dies under them.
    _wait_until 30 many "$c" "$ma" || true
    d1=$(dirty_count "$c" "$ma")
    [[ "$d1" -gt 0 ]] && ok "node $c alone takes writes, records $d1 chunks for member $ma" ||
      not_ok "node $c alone takes writes, records chunks for member $ma (got '$d1')"
    node_kill "$c" KILL
  fi
  sleep 1
  kill_pid "$w"
  node_start "$b" p 32M
  # Until the client has tried node b again (backoff up to 5 s).
  _wait_until 10 _tried "$b" || true
  st=$(leg_state e "$b")
  [[ "$st" != normal ]] && ok "the outdated leg $b is not enabled alone ($st)" ||
    not_ok "the outdated leg $b is not enabled alone (state $st)"
  no_stale_read "$b" "$need"
  if [[ -n "$c" ]]; then
    leg_waits_for "$b" "$mc"
    # Node a returns: it missed the writes of node c alone too.
    node_start "$a" p 32M
    # Until the client has tried node a again (backoff up to 5 s).
    _wait_until 10 _tried "$a" || true
    st=$(leg_state e "$a")
    [[ "$st" != normal ]] && ok "the outdated leg $a is not enabled either ($st)" ||
      not_ok "the outdated leg $a is not enabled either (state $st)"
    no_stale_read "$a" "$mc"
    leg_waits_for "$a" "$mc"
    leg_waits_for "$b" "$mc"
    node_start "$c" p 32M
  else
    node_start "$a" p 32M
  fi
  for i in $(all_nodes); do wait_leg_normal e "$i" 30; done
  is "$(for i in $(all_nodes); do leg_state e "$i"; done | xargs)" \
    "$(for i in $(all_nodes); do echo normal; done | xargs)" \
    "$([[ $rf -eq 2 ]] && echo "both legs came back" || echo "every leg came back")"
  wait_in_sync "$b" 60 && ok "node $b resynced" || not_ok "node $b resynced"
  if [[ -n "$c" ]]; then
    wait_in_sync "$a" 60 && ok "node $a resynced" || not_ok "node $a resynced"
  fi
  maps_clean 20 "every map is clean on $(every nodes)"
  verify "every acknowledged write reads back through the pool" "$uri"
  kill_pid "$NBDKIT_PID"
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:$mb
  verify_member "$b" "every acknowledged write reads back through member $mb"
  kill_pid "$NBDKIT_PID"
  if [[ -n "$c" ]]; then
    # shellcheck disable=SC2046
    nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:$ma
    verify_member "$a" "every acknowledged write reads back through member $ma"
    kill_pid "$NBDKIT_PID"
  fi
  verify "node $b's data area alone holds every acknowledged write" "STORE:$b"
  verify "node $a's data area alone holds every acknowledged write" "STORE:$a"
  [[ -z "$c" ]] ||
    verify "node $c's data area alone holds every acknowledged write" "STORE:$c"
  ok "the legs are byte-identical" all_legs_identical "$size"
}

many ()   # many NODE MEMBER
{
  [[ "$(dirty_count "$1" "$2")" -ge 128 ]]
}

for i in $(all_nodes); do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=64K
ok "write A on $(every legs)" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 6000 --flush-every 64
if [[ $rf -eq 2 ]]; then
  diag "node 2 down, node 1 down, node 2 back alone"
  double_failure 2 1
  diag "the other way round: node 1 down, node 2 down, node 1 back alone"
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers 1 2) timeout=3s
  double_failure 1 2
else
  diag "node 2 down, node 1 down, node 3 down, node 2 back alone, node 1, node 3"
  double_failure 2 1 3
  diag "the other way round: node 1 down, node 3 down, node 2 down, node 1 back alone, node 3, node 2"
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s
  double_failure 1 3 2
fi
done_testing
