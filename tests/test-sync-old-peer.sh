#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-sync-old-peer.sh: a node resyncs from a peer of the version before
# (a rolling upgrade), which knows neither the sync byte 3 nor reads that
# take zeroes without payload (protocol.md).
#
# Node 2 reaches node 1 through tests/old-peer-proxy.py, which answers
# as that version did: a sync 3 join refused with EPROTO, a read with the
# zeroes flag a closed connection.  Node 2 is killed -9, misses a data
# write and a zero write, and comes back.  Expected: its sync session
# joins node 1 again with sync 2, its resync never asks that peer for
# zeroes and ends, every chunk having come with its bytes (zero_chunks
# 0), and the legs are identical.  Plaintext tcp only (the proxy reads
# the messages).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

[[ "$RMR_TEST_TRANSPORT" == tcp && "${RMR_TEST_TLS:-}" != 1 ]] ||
  skip_all "the proxy relays plaintext tcp"
requires qemu-io --version
requires /usr/bin/python3 --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

size=$((64 << 20))
log=$tmpdir/proxy.log
: >"$log"
pport=$(free_port)
node_start 1 p 64M
start_bg "$tmpdir/proxy.pid" /usr/bin/python3 \
  "$SRC_DIR/tests/old-peer-proxy.py" "$pport" "${NODE_ADDR[1]##*:}" "$log"
wait_for_port 127.0.0.1 "$pport" 10
# node2_start: node 2, whose peer node 1 is the proxy.
node1=${NODE_ADDR[1]}
node2_start ()
{
  NODE_ADDR[1]=127.0.0.1:$pport
  node_start 2 p 64M
  NODE_ADDR[1]=$node1
}
node2_start
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=5s chunk-size=128K
uri=$(nbd_uri e)
ok "a pattern written on both legs" qemu-io -f raw -c "write -P 0xa1 0 1M" "$uri"

node_kill 2 KILL
ok "node 2 down: a data write and a zero write it misses" \
  qemu-io -f raw -c "write -P 0xb2 8M 1M" -c "write -P 0xc3 16M 1M" \
  -c "write -z 16M 1M" "$uri"
node2_start
wait_leg_normal e 2 30
wait_in_sync 2 60 && ok "node 2 resynced from the peer of the version before" ||
  not_ok "node 2 resynced from the peer of the version before"
st=$(rmradm_n 2 get rmr-server/pools/p/sync)
is "$(awk '$1 == "zero_chunks:" { print $2 }' <<<"$st")" 0 \
  "every chunk came with its bytes"
grep -q "^join-refused 3$" "$log" && ok "a sync 3 join was refused by it" ||
  not_ok "a sync 3 join was refused by it"
grep -q "^join 2$" "$log" && ok "and node 2 joined it again with sync 2" ||
  not_ok "and node 2 joined it again with sync 2"
grep -q "^zeroes-asked$" "$log" && not_ok "never asked it for zeroes" ||
  ok "never asked it for zeroes"
legs_identical 1 2 "$size" && ok "nodes 1 and 2 hold identical data" ||
  not_ok "nodes 1 and 2 hold identical data"
ok "the patterns and the zeroes read back" \
  qemu-io -f raw -r -c "read -P 0xa1 0 1M" -c "read -P 0xb2 8M 1M" \
  -c "read -P 0 16M 1M" "$uri"

done_testing
