#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-initial-sync.sh: a pool created on fresh stores needs no initial
# sync (nothing is dirty, nothing moves between the nodes); a leg whose
# store is fresh joining a pool that already holds data joins with every
# chunk dirty and syncs all of it from its peers, after which the three
# legs are byte-identical and reads through it are right.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 3

node_start 1 p 16M
node_start 2 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=256K
for i in 1 2; do
  is "$(rmradm_n "$i" get rmr-server/pools/p/sync | grep '^dirty:')" "dirty: 0" \
    "fresh pool: nothing to sync on node $i"
done
head -c $((16 << 20)) /dev/urandom >"$tmpdir/data"
ok "16 MiB written" nbdcopy "$tmpdir/data" "$(nbd_uri e)"
for i in 1 2; do
  # reads: chunks fetched (map messages of the idle reconcile are not)
  is "$(rmradm_n "$i" get "rmr-client/pools/p/sessions/p@${NODE_ADDR[$((3 - i))]}/reads")" 0 \
    "node $i fetched nothing from its peer"
done
kill_pid "$NBDKIT_PID"

# A third node with a fresh store joins the pool.
node_start 3 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3)
is "$(rmradm_n 3 get rmr-server/pools/p/state)" normal "node 3 joined the pool"
is "$(rmradm_n 3 get rmr-server/pools/p/members | wc -l)" 3 \
  "the pool has three members now"
wait_in_sync 3 60 && ok "node 3 synced every chunk by itself" ||
  not_ok "node 3 synced every chunk by itself"
for i in 1 2 3; do
  for m in 41 42 43; do
    is "$(dirty_count "$i" "$m")" 0 "node $i: member $m clean"
  done
done
ok "reads through the export are right" nbdsh -u "$(nbd_uri e)" -c "
d = open('$tmpdir/data', 'rb').read()
for off in range(0, 16 << 20, 1 << 20):
    for _ in range(3):
        assert h.pread(1 << 20, off) == d[off:off + (1 << 20)], off
"
kill_pid "$NBDKIT_PID"
ok "leg 3 holds the data" store_cmp 3 "$tmpdir/data"
ok "leg 3 is byte-identical to leg 1" legs_identical 1 3 $((16 << 20))
done_testing
