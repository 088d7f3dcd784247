#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-same-write.sh: two members that missed the same acknowledged
# write never take each other as the source of its chunks.
#
# RF=3, each node in its own network namespace.  Nodes 2 and 3 lose the
# client (their daemons stay up and keep their sync sessions to each
# other and to node 1); write B (4 KiB into each of 16 chunks) is
# acknowledged by node 1 alone, which records those chunks for members
# 42 and 43.  Node 2's daemon, idle, takes the bits node 1 holds for it
# (the reconcile) and resyncs them while its client link is still cut;
# node 3 the same.  Each holds the old data there, and neither has a bit
# saying the other does: only node 1's record does.  A resync that took
# the other as its source would copy A, and its clear at node 1 would
# drop the only record that it lacks B.  Expected: nodes 2 and 3 hold
# node 1's copy of every chunk before the client is back; then every
# leg is byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nft --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 3 net

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=2s chunk-size=64K
uri=$(nbd_uri e)
nchunks=16
ok "write A on every leg" nbdsh -u "$uri" \
  -c "h.pwrite(b'A' * ($nchunks << 16), 0); h.flush()"

client_block 2
client_block 3
ok "nodes 2 and 3 drop the client's packets (their daemons stay up)" true

ok "write B, acknowledged by node 1 alone" nbdsh -u "$uri" -c "
for c in range($nchunks):
    h.pwrite(b'B' * 4096, (c << 16) + 8192)
h.flush()"
is "$(leg_state e 2)" failed "the client failed leg 2"
is "$(leg_state e 3)" failed "the client failed leg 3"
is "$(dirty_count 1 42)" "$nchunks" "node 1 records the chunks for member 42"
is "$(dirty_count 1 43)" "$nchunks" "and for member 43"

# Node 2's reconcile drains node 1's bits for it (idle: within ~10 s).
_drained_42 () { [[ "$(dirty_count 1 42)" == 0 ]]; }
_wait_until 60 _drained_42 &&
  ok "node 2 resynced what node 1 held for it, its client link still cut" ||
  not_ok "node 2 resynced what node 1 held for it (left: $(dirty_count 1 42))"
_drained_43 () { [[ "$(dirty_count 1 43)" == 0 ]]; }
_wait_until 60 _drained_43 && ok "and node 3 what node 1 held for it" ||
  not_ok "and node 3 what node 1 held for it (left: $(dirty_count 1 43))"

# Each one's copy of every chunk is node 1's, never the other's.
store_extract 1 $((nchunks << 16)) "$tmpdir/n1.bin"
for i in 2 3; do
  store_extract "$i" $((nchunks << 16)) "$tmpdir/n$i.bin"
  if cmp -s "$tmpdir/n1.bin" "$tmpdir/n$i.bin"; then
    ok "node $i holds B in every chunk (taken from node 1 only)"
  else
    not_ok "node $i holds B in every chunk (taken from node 1 only)"
    diag "$(cmp -l "$tmpdir/n1.bin" "$tmpdir/n$i.bin" | wc -l) bytes differ"
  fi
done

client_unblock 2
client_unblock 3
wait_leg_normal e 2 60
wait_leg_normal e 3 60
for i in 1 2 3; do wait_in_sync "$i" 60; done
legs_identical 1 2 $((nchunks << 16)) && ok "legs 1 and 2 are identical" ||
  not_ok "legs 1 and 2 are identical"
legs_identical 1 3 $((nchunks << 16)) && ok "legs 1 and 3 are identical" ||
  not_ok "legs 1 and 3 are identical"
done_testing
