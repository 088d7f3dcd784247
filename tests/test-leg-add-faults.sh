#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-leg-add-faults.sh: a leg added to an open pool, and faults while it
# resyncs (issue 10).
#
# RF=2 on nodes 1 and 2, a writer going; node 3 (fresh, resyncing slowly:
# sync_rate=2M, about 16 s for the 32 MiB) is added live.  While it
# catches up, reads through the pool never go to it (its leg's read
# counter stays put; data_state "syncing").  Then, mid-resync:
#   - the new node is killed -9 and restarted: its leg comes back through
#     the ordinary hand-over (the others kept every chunk dirty for it)
#     and goes on catching up, never counted up to date before it is;
#   - an old member (node 1) is killed -9: node 3 goes on fetching from
#     node 2 alone; node 1 comes back and resyncs what it missed.
# The race this pins: a new member taken for up to date (or a source)
# while chunks it never fetched are still dirty for it somewhere, after
# either death.  Expected: node 3 turns up to date only once every map
# is clean for it; every acknowledged write reads back through the pool
# and from every store; the three legs are byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 3

_up_to_date ()
{
  [[ "$(leg_get e "$1" data_state)" == up-to-date ]]
}

for i in 1 2; do node_start "$i" p 32M; done
node_start 3 p 32M sync_rate=2M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=5s chunk-size=128K
ok "write A on both legs" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64

start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 8 --flush-every 64 --seconds 45 --timeout 20
w=$BG_PID
sleep 1

ok "add_sess of node 3 under IO" \
  rmradm_c e set rmr-client/pools/p/add_sess \
  "sessname=new@${NODE_ADDR[3]} path=$(node_url 3)"
sleep 2
is "$(leg_get e 3 data_state)" syncing "node 3 is syncing"
left=$(leg_get e 3 resync)
[[ "${left%/*}" -gt 0 ]] && ok "node 3 has chunks left to resync ($left)" ||
  not_ok "node 3 has chunks left to resync ($left)"

# Reads while it catches up go to the others.
r0=$(leg_get e 3 reads)
nbdsh -u "$uri" -c '
for i in range(512):
    h.pread(4096, i * 65536)
'
r1=$(leg_get e 3 reads)
st=$(leg_get e 3 data_state)
if [[ "$st" == syncing ]]; then
  is "$((r1 - r0))" 0 "no read went to node 3 while it caught up"
else
  not_ok "node 3 still syncing after the reads (got $st; resync too fast to tell)"
fi

# The new node dies mid-resync and comes back.
node_kill 3 KILL
_wait_until 15 test "$(leg_state e 3)" != normal || true
ds=$(leg_get e 3 data_state)
[[ "$ds" != up-to-date ]] &&
  ok "the dead new leg is not up to date ($ds)" ||
  not_ok "the dead new leg is not up to date (got $ds)"
node_start 3 p 32M sync_rate=2M
wait_leg_normal e 3 30
is "$(leg_state e 3)" normal "node 3's leg came back"
is "$(leg_get e 3 data_state)" syncing "and goes on catching up"

# An old member dies mid-resync.
sleep 2
node_kill 1 KILL
_wait_until 60 _up_to_date 3 &&
  ok "node 3 turns up to date from node 2 alone" ||
  not_ok "node 3 turns up to date from node 2 alone ($(leg_get e 3 data_state), $(leg_get e 3 resync))"
[[ "$(dirty_count 2 43)" == 0 ]] &&
  ok "node 2 records nothing dirty for member 43 once it is up to date" ||
  not_ok "node 2 records nothing dirty for member 43 ($(dirty_count 2 43))"
node_start 1 p 32M
wait_leg_normal e 1 30
# The writer goes on until node 1 caught up too, then a little beyond
# (its --seconds 45 only bounds it).
wait_in_sync 1 40 || true

rc=0
writer_stop "$w" 2000 || rc=$?
is "$rc" 0 "the writer went on through both deaths without an error"
verify "every acknowledged write reads back through the pool" "$uri"
maps_clean 90 "every map is clean"
kill_pid "$NBDKIT_PID"
for i in 1 2 3; do
  verify "every acknowledged write is on node $i's store" "STORE:$i"
done
all_legs_identical "$size" && ok "the three legs are identical" ||
  not_ok "the three legs are identical"

done_testing
