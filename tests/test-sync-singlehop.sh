#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-sync-singlehop.sh: the resync is one hop, measured.  While a
# returning node resyncs, the compute host's nbdkit moves no resync bytes
# (its transport byte counters grow by far less than the data synced),
# and the bytes the returning node receives from its peer are about the
# dirty chunks times chunk_size, not the device size.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2 net

size=$((64 << 20)) chunk=$((64 << 10)) nchunks=100
node_start 1 p 64M
node_start 2 p 64M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K timeout=3s
uri=$(nbd_uri e)
nbdsh -u "$uri" -c "h.zero($size, 0); h.flush()"
node_kill 2 KILL
# One 4K write into each of 100 distinct chunks.
nbdsh -u "$uri" -c "
for c in range($nchunks):
    h.pwrite(bytes([c + 1]) * 4096, c * 5 * $chunk)
h.flush()
"
is "$(dirty_count 1 42)" "$nchunks" "$nchunks chunks are dirty for member 42"

node_start 2 p 64M sync_start=manual
wait_leg_normal e 2 20

# The client's traffic on both legs, before and after the resync.
client_bytes ()
{
  local total=0 p v
  for p in $(rmradm_c e ls rmr-client/pools/p/sessions | grep -E '/bytes_(sent|received)$'); do
    v=$(rmradm_c e get "$p")
    total=$((total + v))
  done
  echo "$total"
}
peer_rx ()
{
  rmradm_n 2 get "rmr-client/pools/p/sessions/p@${NODE_ADDR[1]}/bytes_received"
}
c0=$(client_bytes)
r0=$(peer_rx)
[[ $c0 -gt $((nchunks * 4096)) ]] &&
  ok "the client's byte counters are read ($c0 so far)" ||
  not_ok "the client's byte counters are read ($c0 so far)"
rmradm_n 2 set rmr-server/pools/p/sync start
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
c1=$(client_bytes)
r1=$(peer_rx)
synced=$((nchunks * chunk))
diag "client bytes during the resync: $((c1 - c0)); node 2 received $((r1 - r0)); dirty data $synced; device $size"
[[ $((c1 - c0)) -lt $((synced / 20)) ]] &&
  ok "the compute host moved no resync bytes ($((c1 - c0)) < 5% of $synced)" ||
  not_ok "the compute host moved $((c1 - c0)) bytes during a resync of $synced"
[[ $((r1 - r0)) -ge $synced && $((r1 - r0)) -le $((synced * 11 / 10)) ]] &&
  ok "node 2 received dirty chunks x chunk_size ($((r1 - r0)) ~ $synced)" ||
  not_ok "node 2 received $((r1 - r0)) bytes for $synced of dirty chunks"
[[ $((r1 - r0)) -lt $((size / 8)) ]] &&
  ok "far less than the device size" || not_ok "far less than the device size"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 "$size"
done_testing
