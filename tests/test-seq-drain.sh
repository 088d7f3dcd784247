#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-drain.sh: a crash during a resync (DESIGN 6), and the dirty
# maps drain.
#
# RF=3.  Node 3 misses writes and comes back resyncing slowly
# (sync_rate=1M); in the middle of its resync node 2 (one of its sources,
# and a holder of bits about member 43) is killed -9, writes go on, and
# node 2 is restarted.  The race this pins: bits that node 3's clears
# could not reach on node 2 (or bits about member 42 set while node 3
# fetched) stay set for ever, so some map never reads clean and the next
# failure resyncs, or trusts, the wrong chunks.  Expected: within a
# bounded time (45 s, for about 10 s of resync) map_summary shows 0
# dirty for every member on every node, every acknowledged write reads
# back from every store, and the legs are byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 3

# ---------------------------------------------------------------------
# Helpers of this test

sync_done ()
{
  rmradm_n 3 get rmr-server/pools/p/sync | awk '$1 == "done:" { print $2 }'
}

# ---------------------------------------------------------------------

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=3s chunk-size=64K
# 2048 blocks of 4K: 128 chunks, 8 s of resync at 1M/s.
ok "write A on every leg" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 4000 --flush-every 64
node_kill 3 KILL
ok "write B while node 3 is down" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 4000 --flush-every 64
diag "node 1 records $(dirty_count 1 43) chunks for member 43"
node_start 3 p 32M sync_rate=1M
wait_leg_normal e 3 30
started ()
{
  [[ "$(sync_done)" -ge 8 ]]
}
_wait_until 20 started && ok "node 3 resyncs slowly ($(sync_done) chunks done)" ||
  not_ok "node 3 resyncs slowly (done: '$(sync_done)')"
# Handed what it missed, it is no up-to-date leg for the client (a
# remove of another leg counts on that) until every member says so.
is "$(leg_get e 3 data_state)" syncing "the client sees node 3's leg syncing"
node_kill 2 KILL
diag "node 2 killed at $(sync_done) chunks done"
ok "write C while node 2 is down and node 3 resyncs" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 1500 --flush-every 64
node_start 2 p 32M
wait_leg_normal e 2 30
is "$(leg_state e 1) $(leg_state e 2) $(leg_state e 3)" "normal normal normal" \
  "every leg is back"
maps_clean 45 "within 45 s every map on every node is clean"
uptodate () { [[ "$(leg_get e 3 data_state)" == up-to-date ]]; }
ok "the client sees node 3's leg up to date" _wait_until 10 uptodate
for i in 1 2 3; do
  wait_in_sync "$i" 10 && ok "node $i's resync is idle" ||
    not_ok "node $i's resync is idle: $(rmradm_n "$i" get rmr-server/pools/p/sync | head -n 4)"
done
verify "every acknowledged write reads back through the pool" "$uri"
kill_pid "$NBDKIT_PID"
for i in 1 2 3; do
  verify "node $i's data area alone holds every acknowledged write" STORE:$i
done
ok "legs 1 and 2 are byte-identical" legs_identical 1 2 "$size"
ok "legs 1 and 3 are byte-identical" legs_identical 1 3 "$size"
done_testing
