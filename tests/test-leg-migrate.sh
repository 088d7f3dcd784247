#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-leg-migrate.sh [RF]: migrate a device to a new storage node with a
# writer going (seed 001, "add a leg on the new node, let it sync, remove
# the leg on the old node"; issue 10).
#
# RF=2: nodes 1 and 2 hold pool p; the acknowledged-write checker writes
# under all of this: node 3 (a fresh store) is added as a leg through
# the control tree (add_sess on the mapped pool) and resyncs from its
# peers while the writes go on (it serves no read meanwhile: its
# data_state is "syncing"); once it is up to date the original leg of
# node 1 is removed for good (rmradm leg remove --mode delete).  The race this
# pins: a write acknowledged between the marks and the switch to the new
# member table, or a chunk fetched by node 3 before a write it missed,
# would be lost on node 3 alone, and a verify through node 3 alone
# would see an older value.
#
# RF=3 -> 2 -> 3: nodes 1-3 hold pool p; under the writes node 1's leg is
# removed (del_sess mode=delete), then node 4 is added with rmradm leg add
# --member 44 --wait (a wrong --member is refused first, nothing changed)
# and turns up to date.
#
# Either way: every acknowledged write reads back through the pool and
# through each remaining leg alone (read-policy=member: in a second
# nbdkit, which opens the pool on the remaining legs without force: the
# deleted member is gone from every table; and offline from each
# remaining store's data area), the dirty maps of the remaining nodes are
# clean, member 41 is in none of them, and their data areas identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

rf=${1:-2}
seq_init $((rf + 1))

# The client's session name of node I's leg (NODE_ADDR).
sess_of ()
{
  local s
  s=$(rmradm_c e ls rmr-client/pools/p/sessions |
    grep -F "${NODE_ADDR[$1]}/state" | head -1)
  s=${s%/state*}
  echo "${s##*/}"
}

data_state ()
{
  leg_get e "$1" data_state
}

_up_to_date ()
{
  [[ "$(data_state "$1")" == up-to-date ]]
}

# Verify through leg I alone: nbdkit "m" reading only from member 40+I,
# and offline from node I's data area.
verify_alone ()
{
  local i=$1 rest
  rest=$(servers "${remaining_nodes[@]}")
  # shellcheck disable=SC2086 # words
  nbdkit_start m pool=p $rest timeout=5s read-policy=member:$((40 + i))
  verify "every acknowledged write reads back through member $((40 + i)) alone" \
    "$(nbd_uri m)"
  kill_pid "$NBDKIT_PID"
  verify "every acknowledged write is on node $i's store" "STORE:$i"
}

# The remaining nodes' maps clean.
_remaining_clean ()
{
  local i out
  for i in "${remaining_nodes[@]}"; do
    out=$(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>/dev/null) ||
      return 1
    grep 'dirty$' <<<"$out" | grep -qv ' 0/[0-9]* dirty$' && return 1
  done
  return 0
}

for ((i = 1; i <= rf; i++)); do node_start "$i" p 32M; done
new=$((rf + 1))
node_start "$new" p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(seq 1 "$rf")) timeout=5s chunk-size=128K
ok "write A on every leg" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64

start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 25 --timeout 20
w=$BG_PID
sleep 2

if [[ $rf -eq 2 ]]; then
  # --- add node 3 through the control tree, under IO ---
  ok "add_sess of node 3 on the mapped pool" \
    rmradm_c e set rmr-client/pools/p/add_sess \
    "sessname=new@${NODE_ADDR[3]} path=$(node_url 3)"
  st=$(leg_get e 3 state)
  is "$st" normal "the new leg is normal at once (writes go to it)"
  ds=$(data_state 3)
  [[ "$ds" == syncing || "$ds" == up-to-date ]] &&
    ok "the new leg's data_state is $ds" ||
    not_ok "the new leg's data_state is syncing (got $ds)"
  _wait_until 60 _up_to_date 3 && ok "node 3 turns up to date" ||
    { not_ok "node 3 turns up to date"; rmradm_c e status >&2 || true; }
  # Reads went to the others while it caught up (a read goes to a
  # catching-up leg only if no other leg can serve).
  ok "its members list member 43 on node 1" \
    grep -qw 43 <(rmradm_n 1 get rmr-server/pools/p/members)
  # --- remove node 1's leg for good, under IO ---
  ok "leg remove of member 41 (delete)" \
    "$RMRADM" -s "$tmpdir/e.ctl" leg remove p 41 --mode delete
  remaining_nodes=(2 3)
else
  # --- remove node 1's leg first: RF 3 -> 2 ---
  ok "del_sess of node 1's leg on the mapped pool (delete)" \
    rmradm_c e set "rmr-client/pools/p/sessions/$(sess_of 1)/del_sess" \
    mode=delete
  is "$(rmradm_c e ls rmr-client/pools/p/sessions | grep -c /state)" 2 \
    "two legs left"
  # --- add node 4 with the rmradm verb, --wait ---
  g=$(rmradm_n 2 get rmr-server/pools/p/generation)
  out=$("$RMRADM" -s "$tmpdir/e.ctl" leg add p "$(node_url 4)" \
    --member 45 2>&1) && rc=0 || rc=$?
  [[ $rc -ne 0 && "$out" == *"member_id: 45 expected"* ]] &&
    ok "leg add --member 45 of member 44 refused" ||
    not_ok "leg add --member 45 of member 44 refused (status $rc: $out)"
  is "$(rmradm_c e ls rmr-client/pools/p/sessions | grep -c /state) \
$(rmradm_n 2 get rmr-server/pools/p/generation)" "2 $g" \
    "nothing changed: two legs, the same generation"
  out=$("$RMRADM" -s "$tmpdir/e.ctl" leg add p "$(node_url 4)" \
    --member 44 --wait --timeout 90 2>&1) && rc=0 || rc=$?
  is "$rc" 0 "rmradm leg add --wait: node 4 added and up to date"
  grep -q "up to date" <<<"$out" && ok "rmradm says it is up to date" ||
    { not_ok "rmradm says it is up to date"; diag "$out"; }
  is "$(data_state 4)" up-to-date "node 4's data_state is up-to-date"
  remaining_nodes=(2 3 4)
fi
is "$(rmradm_c e ls rmr-client/pools/p/sessions | grep -c /state)" "$rf" \
  "$rf legs in the end"

# The writer goes on after the migration (its --seconds 25 only bounds it).
rc=0
writer_stop "$w" 2000 || rc=$?
is "$rc" 0 "the writer went on through the migration without an error"
ok "flush" "$checker" write "$uri" "$J" --blocks 4096 --writes 200 --flush-every 16

verify "every acknowledged write reads back through the pool" "$uri"
_wait_until 60 _remaining_clean && ok "the remaining nodes' maps are clean" ||
  { not_ok "the remaining nodes' maps are clean"
    for i in "${remaining_nodes[@]}"; do
      diag "node $i: $(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>&1)"
    done; }
kill_pid "$NBDKIT_PID"
for i in "${remaining_nodes[@]}"; do
  verify_alone "$i"
done
for i in "${remaining_nodes[@]:1}"; do
  legs_identical "${remaining_nodes[0]}" "$i" "$size" &&
    ok "nodes ${remaining_nodes[0]} and $i hold identical data" ||
    not_ok "nodes ${remaining_nodes[0]} and $i hold identical data"
done
for i in "${remaining_nodes[@]}"; do
  grep -qw 41 <(rmradm_n "$i" get rmr-server/pools/p/members) &&
    not_ok "member 41 is gone from node $i's member table" ||
    ok "member 41 is gone from node $i's member table"
done

done_testing
