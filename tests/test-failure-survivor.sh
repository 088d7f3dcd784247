#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-failure-survivor.sh: the survivor crashes right after it
# acknowledged writes that dirtied chunks for a member that was already
# down.  The dirty bits were on its store before the acknowledgement, so
# after both come back (survivor first) those chunks are still known
# dirty, the other member gets them in its hand-over and resyncs them,
# and every acknowledged write reads back from both legs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2 net

node_start 1 p 32M
node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K timeout=3s
uri=$(nbd_uri e)
nbdsh -u "$uri" -c 'h.pwrite(b"0" * (32 << 20), 0); h.flush()'

node_kill 2 KILL
# Acknowledged writes (each one waited for), then the survivor dies at
# once: no clean shutdown, no later save.
nbdsh -u "$uri" -c '
for c in range(0, 480, 12):
    h.pwrite(bytes([65 + c % 26]) * 4096, c * 65536)
'
node_kill 1 KILL
ok "both storage nodes are down" true

node_start 1 p 32M
is "$(dirty_count 1 42)" 40 "after its crash node 1 still knows the 40 chunks"
wait_leg_normal e 1 20
is "$(leg_state e 1)" normal "node 1 is back"
node_start 2 p 32M
wait_leg_normal e 2 20
is "$(leg_state e 2)" normal "node 2 is back"
wait_in_sync 2 30 && ok "node 2 resynced the 40 chunks" ||
  not_ok "node 2 resynced the 40 chunks"
ok "every acknowledged write reads back (from both legs)" nbdsh -u "$uri" -c '
for c in range(0, 480, 12):
    for _ in range(2):
        assert h.pread(4096, c * 65536) == bytes([65 + c % 26]) * 4096, c
'
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((32 << 20))
done_testing
