#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-manual-sync.sh [RF]: a member with its background resync
# stopped (sync_start=manual) keeps its own dirty chunks through a
# compute-host crash and an IO error on a peer, and never serves them
# stale; with RF legs (default 2; at RF=3 node 3 is a plain member that
# stays up).
#
#   1. node 2 (sync_start=manual) misses writes during an outage, comes
#      back with its own dirty bits and no background resync; then
#      nbdkit is killed -9 during writes and assembles again.
#   2. one injected write error on node 1 (fault injection), while node
#      2 still has stale chunks: node 1 misses that write and must get
#      that chunk back, although its peer node 2 is not up to date
#      everywhere (at RF=2 its only peer).  Then reads through member 42
#      alone must return every acknowledged write: its stale chunks are
#      fetched on demand from member 41 (or 43), never served from node
#      2's old data.
#   3. sync start on node 2: the maps end clean, every acknowledged
#      write reads back through each member alone and from each store,
#      and the legs are byte-identical (every node's, at RF=3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

rf=${1:-2}
seq_init "$rf"

# ---------------------------------------------------------------------
# 1. Own dirty bits, background resync stopped, compute-host crash.

NODE_ARGS=--enable-fault-injection node_start 1 p 32M
node_start 2 p 32M sync_start=manual
for ((i = 3; i <= rf; i++)); do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=64K
ok "write A on $(every legs)" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 6000 --flush-every 64
node_kill 2 KILL
ok "write B while node 2 is down" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 3000 --flush-every 64
d1=$(dirty_count 1 42)
diag "node 1 records $d1 chunks for member 42"
node_start 2 p 32M sync_start=manual
wait_leg_normal e 2 20
handed ()
{
  [[ "$(dirty_count 2 42)" -ge "$d1" ]]
}
_wait_until 10 handed &&
  ok "node 2 came back with its $d1 stale chunks, background resync stopped" ||
  not_ok "node 2 came back with its $d1 stale chunks (got $(dirty_count 2 42))"
diag "node 2 sync: $(rmradm_n 2 get rmr-server/pools/p/sync | head -n 4)"

start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 60 --timeout 20
w=$BG_PID
sleep 2
kill_pid "$NBDKIT_PID" KILL
rc=0
wait "$w" || rc=$?
is "$rc" 3 "the checker saw the compute host die"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42
own=$(dirty_count 2 42)
[[ "${own:-0}" -gt 0 ]] &&
  ok "after the assemble node 2 still has $own stale chunks of its own" ||
  not_ok "after the assemble node 2 still has stale chunks of its own (got '${own:-}')"

# ---------------------------------------------------------------------
# 2. One write error on node 1.

rmradm_n 1 set brmr-server/stores/p/fault 'op=write count=1 errno=EIO' >&2
# A write that fails on both legs (node 2 could not fetch its stale chunk
# while node 1 refused) is an availability matter, not data safety: the
# journal records it as failed, and verify allows either value there.
rc=0
"$checker" write "$uri" "$J" --blocks 4096 --writes 200 --queue 1 \
  --flush-every 64 >&2 || rc=$?
[[ $rc -eq 0 || $rc -eq 1 ]] && ok "writes go on while node 1 fails one" ||
  not_ok "writes go on while node 1 fails one (checker status $rc)"
[[ $rc -eq 0 ]] || diag "note: some writes failed with EIO (see the nbdkit log)"
is "$(rmradm_n 1 get brmr-server/stores/p/fault)" "op=write count=0 errno=5" \
  "the fault fired once on node 1"
wait_leg_normal e 1 20
is "$(leg_state e 1)" normal "leg 1 came back by itself"
diag "node 1 sync: $(rmradm_n 1 get rmr-server/pools/p/sync | head -n 4)"
diag "node 1: $(rmradm_n 1 get rmr-server/pools/p/map_summary)"
own=$(dirty_count 2 42)
verify_member 2 "reads through member 42 return every acknowledged write (on demand)"
left=$(dirty_count 2 42)
# How node 2 served them (fetch and keep, or read through) is not data
# safety; test-sync-ondemand.sh checks the fetch.
diag "node 2's stale chunks: $own before the reads, $left after"

# ---------------------------------------------------------------------
# 3. Background resync on: everything converges.

rmradm_n 2 set rmr-server/pools/p/sync start >&2
wait_in_sync 2 60 && ok "node 2 resynced after sync start" ||
  not_ok "node 2 resynced after sync start"
wait_in_sync 1 30 && ok "node 1 resynced the chunk it missed" ||
  not_ok "node 1 resynced the chunk it missed"
for ((i = 3; i <= rf; i++)); do
  wait_in_sync "$i" 30 && ok "node $i is in sync" || not_ok "node $i is in sync"
done
maps_clean 20 "every map is clean on $(every nodes)"
verify_member 2 "every acknowledged write reads back through member 42"
kill_pid "$NBDKIT_PID"
for i in $(all_nodes); do
  [[ $i -eq 2 ]] && continue
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s \
    read-policy=member:$((40 + i))
  verify_member "$i" "every acknowledged write reads back through member $((40 + i))"
  kill_pid "$NBDKIT_PID"
done
for i in $(all_nodes); do
  verify "node $i's data area alone holds every acknowledged write" "STORE:$i"
done
ok "the legs are byte-identical" all_legs_identical "$size"
done_testing
