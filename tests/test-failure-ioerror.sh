#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-failure-ioerror.sh: an IO error on one store (test-only fault
# injection, refused unless the daemon runs with --enable-fault-injection)
# fails only that leg: the NBD client sees no error, the other leg
# records what the failed one misses, the failed leg comes back on its
# own and resyncs, and the legs end byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

node_start 1 p 32M
out=$(rmradm_n 1 set brmr-server/stores/p/fault 'op=write' 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"--enable-fault-injection"* ]] &&
  ok "fault injection is refused without --enable-fault-injection" ||
  { not_ok "fault injection is refused without --enable-fault-injection"; diag "$out"; }
NODE_ARGS=--enable-fault-injection node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=5s
uri=$(nbd_uri e)

nbdsh -u "$uri" -c 'h.pwrite(b"\x11" * (4 << 20), 0); h.flush()'
ok "a bad fault request is refused" \
  bash -c "! '$RMRADM' -s '${NODE_CTL[2]}' set brmr-server/stores/p/fault op=sideways"
rmradm_n 2 set brmr-server/stores/p/fault 'op=write count=1 errno=EIO' >&2
is "$(rmradm_n 2 get brmr-server/stores/p/fault)" "op=write count=1 errno=5" \
  "one write error armed on node 2"

ok "writes go on without an error while a leg fails" nbdsh -u "$uri" -c '
for i in range(64):
    h.pwrite(bytes([i]) * 65536, i * 262144)
h.flush()
'
is "$(rmradm_n 2 get brmr-server/stores/p/fault)" "op=write count=0 errno=5" \
  "the fault fired once"
wait_leg_normal e 2 20
is "$(leg_state e 1)" normal "leg 1 never failed"
is "$(leg_state e 2)" normal "leg 2 came back by itself"
wait_in_sync 2 30 && ok "node 2 resynced what it missed" ||
  not_ok "node 2 resynced what it missed"
ok "every write reads back" nbdsh -u "$uri" -c '
for i in range(64):
    assert h.pread(65536, i * 262144) == bytes([i]) * 65536, i
'
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((32 << 20))
done_testing
