#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-leg-delete.sh: deleting a leg for good, removing one for a while,
# and the refusals of live legs (issue 10).
#
# 1. The admin guide's order: a pool on nodes 1-3 through nbdkit's
#    control tree, IO, unmap_device, del_sess mode=delete of node 3's
#    session, delete_store on node 3, leave_pool, and the rest
#    reassembled (add_sess mode=assemble, pool_enable) WITHOUT force:
#    member 43 is gone from every remaining table, so the assemble does
#    not wait for it ("member 43 is missing and may hold the latest
#    writes" was the bug).
# 2. Refusals, each a clear error that changes nothing (sessions,
#    generation and member tables checked after): adding a node whose
#    store belongs to another pool, adding a node whose store has another
#    mapped_size, removing the leg that is the only up-to-date one (the
#    other's node is down).
# 3. Disassemble: node 2's leg is removed under a writer; node 1 records
#    what member 42 misses; the leg is added again, resyncs and turns up
#    to date.
# 4. Live delete under the writer: node 2's leg is deleted; member 42 is
#    gone from node 1's table with its bits; the pool is closed, node 2's
#    store deleted, and the pool reassembled on node 1 alone without
#    force.  Every acknowledged write reads back after each step.
# 5. Offline delete: nodes 2 and 3 come back with fresh stores and are
#    added live; the pool is closed and node 3's store deleted while no
#    client has the pool open.  A new nbdkit on nodes 1 and 2 refuses
#    ("member 43 is missing"), one with delete-member=43 assembles
#    without force and the members' tables lose member 43.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 5

adm ()
{
  rmradm_c e "$@"
}

adm_fails ()
{
  local desc=$1 pat=$2 out rc=0
  shift 2
  out=$(adm "$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 ]] && grep -qE -- "$pat" <<<"$out"; then
    ok "$desc"
    diag "error: $out"
  else
    not_ok "$desc"
    diag "rmradm $* -> status $rc: $out"
    diag "expected a failure matching: $pat"
  fi
}

sess ()
{
  echo "s$1@${NODE_ADDR[$1]}"
}

nsess ()
{
  adm ls rmr-client/pools/p/sessions | grep -c /state
}

members ()
{
  rmradm_n "$1" get rmr-server/pools/p/members |
    grep -o 'member [0-9]*' | awk '{ print $2 }' | xargs
}

gen ()
{
  rmradm_n "$1" get rmr-server/pools/p/generation
}

store_name ()
{
  rmradm_n "$1" ls brmr-server/stores | grep /state | head -1 |
    sed 's|brmr-server/stores/||; s|/state.*||'
}

# open_pool MODE NODES...: join_pool, add_sess, enable (create), pool_enable
# and map_device, all through the control tree.
open_pool ()
{
  local mode=$1 i
  shift
  adm set rmr-client/ctl/join_pool poolname=p
  for i in "$@"; do
    adm set rmr-client/pools/p/add_sess \
      "sessname=$(sess "$i") path=$(node_url "$i") mode=$mode"
    [[ $mode == create ]] &&
      adm set "rmr-client/pools/p/sessions/$(sess "$i")/enable" 1
  done
  adm set rmr-client/pools/p/pool_enable 1 &&
    adm set brmr-client/ctl/map_device pool=p
}

# The guide's graceful exit on the client: every session deleted
# (disassemble; the last one closes the pool), then leave_pool.
leave_all ()
{
  local s
  for s in $(adm ls rmr-client/pools/p/sessions |
    sed -n 's|^rmr-client/pools/p/sessions/\([^/]*\)/state$|\1|p'); do
    adm set "rmr-client/pools/p/sessions/$s/del_sess" mode=disassemble ||
      return 1
  done
  adm set rmr-client/pools/p/leave_pool 1
}

close_pool ()
{
  adm set brmr-client/ctl/devices/p/unmap_device 1 && leave_all
}

_uptodate ()
{
  [[ "$(leg_get e "$1" data_state)" == up-to-date ]]
}

for i in 1 2 3; do node_start "$i" p 32M; done
node_start 4 q 32M
node_start 5 p 16M
nbdkit_start e timeout=5s

# ---------------------------------------------------------------------
# 1. The guide's order.
ok "pool p created on nodes 1-3 and mapped" open_pool create 1 2 3
ok "write A" "$checker" write "$uri" "$J" --blocks 4096 --writes 3000 \
  --flush-every 64
ok "unmap_device" adm set brmr-client/ctl/devices/p/unmap_device 1
ok "del_sess mode=delete of node 3's session" \
  adm set "rmr-client/pools/p/sessions/$(sess 3)/del_sess" mode=delete
ok "delete_store on node 3" \
  rmradm_n 3 set "brmr-server/stores/$(store_name 3)/delete_store" 1
ok "del_sess of the rest and leave_pool" leave_all
is "$(members 1)" "41 42" "node 1's member table: 41 42"
is "$(members 2)" "41 42" "node 2's member table: 41 42"
out=$(open_pool assemble 1 2 2>&1) && rc=0 || rc=$?
is "$rc" 0 "the rest reassembles without force"
[[ $rc -eq 0 ]] || diag "$out"
verify "every acknowledged write reads back after the delete" "$uri"

# ---------------------------------------------------------------------
# 2. Refusals: nothing changes.
g1=$(gen 1)
adm_fails "adding a node whose store belongs to another pool refused" \
  "no pool 'p'" set rmr-client/pools/p/add_sess \
  "sessname=$(sess 4) path=$(node_url 4)"
adm_fails "adding a node whose store has another mapped_size refused" \
  "size" set rmr-client/pools/p/add_sess \
  "sessname=$(sess 5) path=$(node_url 5)"
is "$(nsess) $(gen 1) $(members 1) $(members 2)" "2 $g1 41 42 41 42" \
  "nothing changed: 2 sessions, generation, member tables"
is "$(rmradm_n 5 get rmr-server/pools/p/state) $(rmradm_n 4 get rmr-server/pools/q/state)" \
  "registered registered" "the refused nodes' pools are as before"

start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 40 --timeout 20
w=$BG_PID
sleep 1

node_kill 2 KILL
_wait_until 15 test "$(leg_state e 2)" != normal || true
adm_fails "removing the only up-to-date leg refused" \
  "no remaining leg is up to date" \
  set "rmr-client/pools/p/sessions/$(sess 1)/del_sess" mode=disassemble
is "$(nsess) $(leg_state e 1)" "2 normal" \
  "nothing changed: 2 sessions, node 1's leg normal"
node_start 2 p 32M
wait_leg_normal e 2 30
wait_in_sync 2 60 && ok "node 2 came back and resynced" ||
  not_ok "node 2 came back and resynced"

# ---------------------------------------------------------------------
# 3. Disassemble and come back.
ok "del_sess mode=disassemble of node 2's leg under IO" \
  adm set "rmr-client/pools/p/sessions/$(sess 2)/del_sess" mode=disassemble
is "$(nsess)" 1 "one session left"
sleep 2
d=$(dirty_count 1 42)
[[ "${d:-0}" -gt 0 ]] &&
  ok "node 1 records what member 42 misses ($d chunks)" ||
  not_ok "node 1 records what member 42 misses (got '$d')"
is "$(members 1)" "41 42" "member 42 stays in node 1's table"
ok "add_sess of node 2 again (a member coming back)" \
  adm set rmr-client/pools/p/add_sess \
  "sessname=$(sess 2) path=$(node_url 2)"
wait_leg_normal e 2 30
_wait_until 60 _uptodate 2 && ok "node 2 turns up to date" ||
  not_ok "node 2 turns up to date ($(leg_get e 2 data_state))"

# ---------------------------------------------------------------------
# 4. Live delete under the writer, then reopen on node 1 alone.
ok "del_sess mode=delete of node 2's leg under IO" \
  adm set "rmr-client/pools/p/sessions/$(sess 2)/del_sess" mode=delete
is "$(members 1)" 41 "member 42 is gone from node 1's table"
# The writer goes on after the delete (its --seconds 40 only bounds it).
rc=0
writer_stop "$w" 2000 || rc=$?
is "$rc" 0 "the writer went on without an error"
grep -q "member 42" <(rmradm_n 1 get rmr-server/pools/p/map_summary) &&
  not_ok "node 1 keeps no bits for member 42" ||
  ok "node 1 keeps no bits for member 42"
verify "every acknowledged write reads back through the pool" "$uri"
ok "unmap and leave_pool" close_pool
ok "delete_store on node 2" \
  rmradm_n 2 set "brmr-server/stores/$(store_name 2)/delete_store" 1
out=$(open_pool assemble 1 2>&1) && rc=0 || rc=$?
is "$rc" 0 "the pool reassembles on node 1 alone without force"
[[ $rc -eq 0 ]] || diag "$out"
verify "every acknowledged write reads back after the live delete" "$uri"
verify "every acknowledged write is on node 1's store" "STORE:1"

# ---------------------------------------------------------------------
# 5. Offline delete (delete-member at the assemble).
for i in 2 3; do
  node_kill "$i"
  node_start "$i" p 32M
  ok "add_sess of node $i (a fresh store again)" \
    adm set rmr-client/pools/p/add_sess \
    "sessname=$(sess "$i") path=$(node_url "$i")"
done
for i in 2 3; do
  _wait_until 60 _uptodate "$i" && ok "node $i turns up to date" || {
    not_ok "node $i turns up to date ($(leg_get e "$i" data_state))"
    node_diag "$i"
  }
done
ok "unmap and leave_pool" close_pool
kill_pid "$NBDKIT_PID"
ok "delete_store on node 3" \
  rmradm_n 3 set "brmr-server/stores/$(store_name 3)/delete_store" 1
# shellcheck disable=SC2046
if try_nbdkit f pool=p $(servers 1 2) timeout=5s; then
  not_ok "an assemble without member 43 is refused without delete-member"
  kill_pid "$NBDKIT_PID"
else
  grep -q "member 43 is missing" "$tmpdir/f.log" &&
    ok "an assemble without member 43 is refused without delete-member" ||
    { not_ok "the refusal names member 43"; diag "$(tail -3 "$tmpdir/f.log")"; }
fi
# shellcheck disable=SC2046
if try_nbdkit g pool=p $(servers 1 2) timeout=5s delete-member=43; then
  ok "delete-member=43: the pool assembles on nodes 1 and 2 without force"
  is "$(members 1) / $(members 2)" "41 42 / 41 42" \
    "member 43 is gone from both tables"
  verify "every acknowledged write reads back" "$(nbd_uri g)"
  kill_pid "$NBDKIT_PID"
else
  not_ok "delete-member=43: the pool assembles on nodes 1 and 2 without force"
  diag "$(tail -3 "$tmpdir/g.log")"
fi

done_testing
