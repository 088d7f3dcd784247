#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-crash-client.sh RF: kill -9 the compute host's nbdkit while the
# workload checker writes, several rounds with different timing.  The
# storage nodes turn no_io (the client vanished without leaving); nbdkit
# restarted with mode=auto assembles the pool by itself (a new
# generation), the members resync what may differ among themselves, every
# acknowledged-and-flushed write reads back, and reading the whole device
# through each leg alone (read-policy=member:ID) gives the same bytes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

rf=${1:-2}
checker=$SRC_DIR/tests/rmr-checker
requires nbdcopy --version
requires /usr/bin/python3 -c 'import nbd'
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init "$rf" net

size=$((32 << 20))
for ((i = 1; i <= rf; i++)); do node_start "$i" p 32M; done
nodes=$(seq 1 "$rf")
# shellcheck disable=SC2046,SC2086
srv=$(servers $nodes)

gen ()
{
  rmradm_n 1 get rmr-server/pools/p/generation
}

all_in_sync ()
{
  local i
  for i in $nodes; do _in_sync "$i" || return 1; done
}

for delay in 1.2 2.1 0.7; do
  # shellcheck disable=SC2086
  nbdkit_start e pool=p $srv timeout=3s chunk-size=64K
  g0=$(gen)
  start_bg "$tmpdir/w.pid" "$checker" write "$(nbd_uri e)" "$tmpdir/journal" \
    --blocks 6144 --queue 16 --flush-every 48 --seconds 60
  wpid=$BG_PID
  sleep "$delay"
  kill_pid "$NBDKIT_PID" KILL
  rc=0
  wait "$wpid" || rc=$?
  is "$rc" 3 "round $delay: the checker saw the compute host die"
  _wait_until 10 test "$(rmradm_n 1 get rmr-server/pools/p/state)" = no_io || true
  # shellcheck disable=SC2086 # nodes: words
  is "$(rmr_states)" "$(printf 'no_io\n%.0s' $nodes | head -c -1)" \
    "round $delay: every member waits for an assemble (no_io)"

  # shellcheck disable=SC2086
  nbdkit_start e pool=p $srv timeout=3s chunk-size=64K
  is "$(gen)" $((g0 + 1)) "round $delay: the pool assembled a new generation"
  _wait_until 60 all_in_sync &&
    ok "round $delay: the members resynced what may differ" ||
    not_ok "round $delay: the members resynced what may differ"
  ok "round $delay: every acknowledged-and-flushed write reads back" \
    "$checker" verify "$(nbd_uri e)" "$tmpdir/journal" --strict-flushed
  kill_pid "$NBDKIT_PID"
done

# The whole device through each leg alone.
for i in $nodes; do
  # shellcheck disable=SC2086
  nbdkit_start e pool=p $srv read-policy=member:$((40 + i))
  nbdcopy "$(nbd_uri e)" "$tmpdir/through$i"
  kill_pid "$NBDKIT_PID"
done
for i in $nodes; do
  [[ $i -eq 1 ]] && continue
  ok "reading through member $((40 + i)) alone gives the bytes of member 41" \
    cmp "$tmpdir/through1" "$tmpdir/through$i"
done
ok "the device holds $((size >> 20)) MiB" test "$(stat -c %s "$tmpdir/through1")" -eq "$size"
done_testing
