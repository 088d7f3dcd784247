#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-resync-redirty.sh [RF]: chunks rewritten while the returning
# member fetches them, and its leg taken out and put back in the middle
# of its resync (DESIGN 6: "map clears are conditional: a bit set again
# after the chunk was fetched stays set"); with RF legs (default 2; at
# RF=3 node 3 stays up and takes every write node 1 takes).
#
# The race this pins: node 2 reads chunk C from node 1 (or 3) for its
# resync; before it tells its peers to clear C's bit for member 42, a new
# write to C reaches node 1 (and 3) only (leg 2 disabled) and sets that
# bit again; an unconditional clear drops it, and node 2 keeps the older
# C for good while every map says clean.
#
# Node 2 resyncs at 512K/s (sync_rate) so that the writers overlap it:
# write A; leg 2 disabled (rmradm on nbdkit's control socket); write B;
# leg 2 enabled, node 2 starts its slow resync; leg 2 disabled again in
# the middle of it and write C rewrites the same chunks on node 1 (and
# 3) only;
# leg 2 enabled; write D on both legs while the resync goes on.
# After the resync every acknowledged write reads back through member 42
# alone and from every node's store, the maps are clean, and the legs are
# byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

rf=${1:-2}
seq_init "$rf"

# ---------------------------------------------------------------------
# Helpers of this test

leg2_enable ()
{
  rmradm_c e set "$(leg_path e 2 enable)" "$1" >&2
}

sync_field ()
{
  rmradm_n 2 get rmr-server/pools/p/sync | awk -v k="$1:" '$1 == k { print $2 }'
}

sync_done ()
{
  rmradm_n 2 get rmr-server/pools/p/sync | awk '$1 == "done:" { print $2 }'
}

# ---------------------------------------------------------------------

node_start 1 p 32M
node_start 2 p 32M sync_rate=512K
for ((i = 3; i <= rf; i++)); do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=64K read-policy=member:42
# 1024 blocks of 4K: 64 chunks, 8 s of resync at 512K/s.
ok "write A on $(every legs)" \
  "$checker" write "$uri" "$J" --blocks 1024 --writes 3000 --flush-every 64
if [[ $rf -eq 2 ]]; then others="node 1"; else others="nodes 1 and 3"; fi
leg2_enable 0
[[ "$(leg_state e 2)" != normal ]] && ok "leg 2 is disabled ($(leg_state e 2))" ||
  not_ok "leg 2 is disabled (state $(leg_state e 2))"
ok "write B on $others only" \
  "$checker" write "$uri" "$J" --blocks 1024 --writes 3000 --flush-every 64
for i in $(all_nodes); do
  [[ $i -eq 2 ]] && continue
  d1=$(dirty_count "$i" 42)
  [[ "$d1" -ge 60 ]] && ok "node $i records $d1 chunks for member 42" ||
    not_ok "node $i records the 64 chunks for member 42 (got '$d1')"
done

leg2_enable 1
wait_leg_normal e 2 20
started ()
{
  [[ "$(sync_done)" -ge 4 ]]
}
_wait_until 20 started && ok "node 2 resyncs slowly ($(sync_done) chunks done)" ||
  not_ok "node 2 resyncs slowly (done: '$(sync_done)')"
# Leg 2 out while node 2 still fetches: write C goes to node 1 (and 3)
# only and
# rewrites the chunks node 2 is fetching (if its resync goes on without
# its client leg) or has fetched.
leg2_enable 0
diag "leg 2 disabled at $(sync_done) chunks done: $(leg_state e 2)"
ok "write C on $others only, during node 2's resync" \
  "$checker" write "$uri" "$J" --blocks 1024 --queue 8 --flush-every 64 \
  --seconds 3
diag "node 2 at $(sync_done) chunks done; node 1 records $(dirty_count 1 42)"
[[ $rf -ge 3 ]] && diag "node 3 records $(dirty_count 3 42)"
leg2_enable 1
wait_leg_normal e 2 20
diag "leg 2 enabled again: node 2 has $(dirty_count 2 42) stale chunks"
# And rewrites with both legs while the resync goes on (IO to a stale
# chunk fetches it first).
# Node 2 sees the client's IO (its resync would slow to sync_min_rate).
"$checker" write "$uri" "$J" --blocks 1024 --queue 8 --flush-every 64 \
  --seconds 2 &
writer=$!
busy ()
{
  [[ "$(sync_field clients)" == busy ]]
}
_wait_until 2 busy && ok "node 2 counts its clients busy during write D" ||
  not_ok "node 2 counts its clients busy during write D ($(sync_field clients))"
wait "$writer" && ok "write D on $(every legs) during the resync" ||
  not_ok "write D on $(every legs) during the resync"
sleep 0.3
sync_field clients >/dev/null # the IO of write D, seen now
sleep 0.3
is "$(sync_field clients)" idle "and idle once the writer stopped"
wait_leg_normal e 2 20
wait_in_sync 2 60 && ok "node 2 finished its resync" ||
  not_ok "node 2 finished its resync"
maps_clean 20 "every map is clean on $(every nodes)"
verify_member 2 "every acknowledged write reads back through member 42"
kill_pid "$NBDKIT_PID"
verify "node 2's data area alone holds every acknowledged write" STORE:2
for i in $(all_nodes); do
  [[ $i -eq 2 ]] ||
    verify "node $i's data area alone holds every acknowledged write" "STORE:$i"
done
ok "the legs are byte-identical" all_legs_identical "$size"
done_testing
