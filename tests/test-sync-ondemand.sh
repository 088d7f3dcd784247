#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-sync-ondemand.sh: IO to chunks that are still stale on a returning
# node, with its background sync stopped (`sync stop`): a read (the
# client cut from the node that has the data, so that it reads from the
# returning one; each node in its own netns) or a partial write waits
# while the chunk is fetched from the peer, a write
# covering whole stale chunks makes them current without a fetch; the
# data is right every time, and after `sync start` the node finishes and
# the legs are byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nft --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2 net

node_start 1 p 16M
node_start 2 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=5s chunk-size=64K
uri=$(nbd_uri e)
K=65536

nbdsh -u "$uri" -c 'h.pwrite(b"A" * (16 << 20), 0); h.flush()'
node_kill 2 KILL
# Chunks 10-19: a partial write; 30-39: whole; 50-59: partial again.
nbdsh -u "$uri" -c "
for c in list(range(10, 20)) + list(range(50, 60)):
    h.pwrite(b'B' * 4096, c * $K + 8192)
for c in range(30, 40):
    h.pwrite(b'C' * $K, c * $K)
h.flush()
"
is "$(dirty_count 1 42)" 30 "node 1 records the 30 chunks node 2 missed"

node_start 2 p 16M sync_start=manual
wait_leg_normal e 2 20
is "$(leg_state e 2)" normal "node 2 is back, its sync stopped"
is "$(dirty_count 2 42)" 30 "node 2 knows its 30 stale chunks"
rx ()
{
  rmradm_n 2 get "rmr-client/pools/p/sessions/p@${NODE_ADDR[1]}/bytes_received"
}

leg2=$(rmradm_c e ls rmr-client/pools/p/sessions |
  grep -F "@${NODE_ADDR[2]}/state")
is "$(rmradm_c e get "${leg2%/state}/data_state")" syncing \
  "the client sees node 2 syncing (it reads from node 1 while it can)"

# Reads through node 2: node 1 drops the client's packets (the nodes
# still reach each other), and the client fails its leg.
client_block 1
leg1_failed () { [[ "$(leg_state e 1)" == failed ]]; }
ok "node 1 cut from the client: its leg fails" _wait_until 20 leg1_failed
rx0=$(rx)
ok "reads of stale chunks return the current data" nbdsh -u "$uri" -c "
for c in range(10, 20):
    d = h.pread($K, c * $K)
    assert d == b'A' * 8192 + b'B' * 4096 + b'A' * ($K - 12288), c
"
rx1=$(rx)
[[ $((rx1 - rx0)) -ge $((10 * K)) ]] &&
  ok "the reads fetched those chunks from the peer ($((rx1 - rx0)) bytes)" ||
  not_ok "the reads fetched those chunks from the peer ($((rx1 - rx0)) bytes)"
is "$(rmradm_n 2 get rmr-server/pools/p/sync | grep '^dirty:')" "dirty: 20" \
  "they are current on node 2 now"
client_unblock 1
wait_leg_normal e 1 30

# Whole-chunk writes on stale chunks: no fetch.
nbdsh -u "$uri" -c "
for c in range(30, 40):
    h.pwrite(b'D' * $K, c * $K)
h.flush()
"
rx2=$(rx)
[[ $((rx2 - rx1)) -lt $K ]] &&
  ok "whole-chunk writes made their chunks current without a fetch" ||
  not_ok "whole-chunk writes fetched $((rx2 - rx1)) bytes"
ten_left ()
{
  [[ "$(rmradm_n 2 get rmr-server/pools/p/sync | grep '^dirty:')" == "dirty: 10" ]]
}
_wait_until 5 ten_left || true
is "$(rmradm_n 2 get rmr-server/pools/p/sync | grep '^dirty:')" "dirty: 10" \
  "10 stale chunks left"

# Partial writes on stale chunks: fetched first, then written.
nbdsh -u "$uri" -c "
for c in range(50, 60):
    h.pwrite(b'E' * 512, c * $K + 512)
h.flush()
"
ok "partial writes on stale chunks keep the rest of the chunk" nbdsh -u "$uri" -c "
for c in range(50, 60):
    for _ in range(2):
        d = h.pread($K, c * $K)
        assert d == (b'A' * 512 + b'E' * 512 + b'A' * 7168 + b'B' * 4096 +
                     b'A' * ($K - 12288)), c
for c in range(30, 40):
    for _ in range(2):
        assert h.pread($K, c * $K) == b'D' * $K, c
"
rmradm_n 2 set rmr-server/pools/p/sync start
wait_in_sync 2 30 && ok "sync start finishes the rest" ||
  not_ok "sync start finishes the rest"
is "$(dirty_count 1 42)" 0 "node 1's map of node 2 is clean"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((16 << 20))
done_testing
