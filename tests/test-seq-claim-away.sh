#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-claim-away.sh: whole-chunk writes on a member that is behind
# while its only peer is away, then a compute-host crash (RF=2; chunks of
# 64 KiB, writes of 64 KiB, so that every write covers a whole chunk).
#
#   1. node 2 (sync_start=manual) misses write B during an outage and
#      comes back with its own dirty chunks, nothing fetched yet;
#   2. node 1 is killed -9: node 2 is the only leg, and its stale chunks
#      have no source.  Whole-chunk writes to them must not be
#      acknowledged on node 2 alone: a claim would clear node 2's bit
#      while node 1 keeps its record of it, and the assemble's union of
#      the maps would give that record back: dirty on both, the write
#      readable nowhere.  They fail instead (as a partial write does);
#   3. the compute host is killed -9, node 1 comes back, and a new client
#      assembles: every chunk reads, every acknowledged write reads back,
#      the maps end clean and the legs are identical.
#
# With the argument "reconnect", part 3 keeps the client: node 2 comes
# back alone (it missed nothing acknowledged), then node 1 through it.
# The failed writes left their ranges with the client (a leg may have
# done them); node 2 is behind there itself, so node 1 must keep its
# copy there (it holds write B) rather than be made dirty too: the same
# checks follow.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

mode=${1:-assemble}
seq_init 2
# Write B and the writes of part 2: 64 KiB blocks over the second half
# of the checker's range (blocks 256..511), a journal of their own.
J2=$tmpdir/journal64
big=(--block-size 65536 --first-block 256 --blocks 256)

# ---------------------------------------------------------------------
# 1. Node 2 behind, background resync stopped.

node_start 1 p 32M
node_start 2 p 32M sync_start=manual
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s chunk-size=64K
ok "write A on both legs" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 2000 --flush-every 64
node_kill 2 KILL
ok "write B (whole chunks) while node 2 is down" \
  "$checker" write "$uri" "$J2" "${big[@]}" --writes 400 --flush-every 16
node_start 2 p 32M sync_start=manual
wait_leg_normal e 2 20
stale=$(dirty_count 2 42)
[[ "${stale:-0}" -gt 100 ]] &&
  ok "node 2 came back with $stale stale chunks of its own" ||
  not_ok "node 2 came back with stale chunks of its own (got '${stale:-}')"

# ---------------------------------------------------------------------
# 2. Node 1 away: whole-chunk writes to node 2's stale chunks.

node_kill 1 KILL
rc=0
"$checker" write "$uri" "$J2" "${big[@]}" --writes 100 --queue 1 \
  --flush-every 16 --timeout 20 >&2 || rc=$?
diag "checker status $rc with node 1 away"
acked=$(awk '$1 == "ack"' "$J2" | wc -l)
diag "writes acknowledged in journal $J2: $acked"
[[ $rc -ne 0 ]] &&
  ok "whole-chunk writes to stale chunks with no peer are refused" ||
  not_ok "whole-chunk writes to stale chunks with no peer are refused"

# ---------------------------------------------------------------------
# 3. Node 1 back: after a compute-host crash (assemble), or to the same
#    client (reconnect).

if [[ $mode == reconnect ]]; then
  wait_leg_normal e 2 30
  is "$(leg_state e 2)" normal "node 2 came back alone"
  node_start 1 p 32M
  wait_leg_normal e 1 30
  is "$(leg_state e 1)" normal "node 1 came back through node 2"
else
  kill_pid "$NBDKIT_PID" KILL
  node_start 1 p 32M
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers 1 2) timeout=3s
fi
ok "every chunk of the device reads" nbdsh -u "$uri" -c "
for off in range(0, 32 << 20, 1 << 20):
    h.pread(1 << 20, off)
"
verify "every acknowledged 4K write reads back" "$uri"
rc=0
"$checker" verify "$uri" "$J2" >&2 || rc=$?
is "$rc" 0 "every acknowledged whole-chunk write reads back"
rmradm_n 2 set rmr-server/pools/p/sync start >&2
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
wait_in_sync 1 30 && ok "node 1 resynced" || not_ok "node 1 resynced"
maps_clean 20 "every map is clean on both nodes"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" all_legs_identical "$size"
done_testing
