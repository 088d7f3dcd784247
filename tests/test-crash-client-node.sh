#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-crash-client-node.sh: the compute host and one storage node die
# together (kill -9) under the workload checker.
#   RF=3, min-legs=2: every write reached two members, so the two that
#   are left hold every write: the pool comes back with them by itself;
#   the third returns later, is handed what it missed and resyncs.
#   RF=2, min-legs=1: the member that is left cannot know whether the
#   missing one holds writes it lacks: assemble refuses and names it;
#   with force=1 it goes on, and the missing member resyncs when back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 3 net

crash_both ()   # crash_both NODE: checker load, then nbdkit and NODE die
{
  start_bg "$tmpdir/w.pid" "$checker" write "$(nbd_uri e)" "$tmpdir/j" \
    --blocks 4096 --queue 16 --flush-every 32 --seconds 60
  local w=$BG_PID
  sleep 1.5
  kill -KILL "$NBDKIT_PID" "${NODE_PID[$1]}"
  kill_pid "$NBDKIT_PID" KILL
  node_kill "$1" KILL
  wait "$w" || true
}

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) min-legs=2 timeout=3s chunk-size=64K
crash_both 3
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) min-legs=2 timeout=3s chunk-size=64K
is "$(rmradm_n 1 get rmr-server/pools/p/state)" normal \
  "RF=3 min-legs=2: the pool came back with the two members left"
ok "every acknowledged-and-flushed write reads back" \
  "$checker" verify "$(nbd_uri e)" "$tmpdir/j" --strict-flushed
ok "writes go on without member 43" \
  "$checker" write "$(nbd_uri e)" "$tmpdir/j" --blocks 4096 --writes 2000
d=$(dirty_count 1 43)
[[ "${d:-0}" -gt 0 ]] && ok "member 41 records $d chunks for the missing member" ||
  not_ok "member 41 records chunks for the missing member (got '${d:-}')"
node_start 3 p 32M
wait_leg_normal e 3 30
wait_in_sync 3 60 && ok "member 43 came back and resynced" ||
  not_ok "member 43 came back and resynced"
ok "every acknowledged write reads back" \
  "$checker" verify "$(nbd_uri e)" "$tmpdir/j"
kill_pid "$NBDKIT_PID"
ok "legs 1 and 3 are byte-identical" legs_identical 1 3 $((32 << 20))
ok "legs 1 and 2 are byte-identical" legs_identical 1 2 $((32 << 20))

# RF=2: pool q on nodes 1 and 2 only (a second pool of the same daemons
# would do too; a new cluster keeps it simple).
rm -f "$tmpdir/j"
for i in 1 2 3; do node_kill "$i"; rm -f "${NODE_STORE[$i]}"; done
CLUSTER_N=2
node_start 1 p 32M
node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s chunk-size=64K
crash_both 2
rc=0
# shellcheck disable=SC2046
out=$(netns_exec cli timeout 60 nbdkit -f -U "$tmpdir/x.sock" "$RMR_PLUGIN" \
  pool=p $(servers 1 2) timeout=3s $(plugin_tls_args) 2>&1) || rc=$?
[[ $rc -ne 0 && "$out" == *"member 42 is missing and may hold the latest writes"* ]] &&
  ok "RF=2: assemble without member 42 is refused, naming it" ||
  { not_ok "RF=2: assemble without member 42 is refused, naming it"; diag "$out"; }
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s force=1
is "$(rmradm_n 1 get rmr-server/pools/p/state)" normal "force=1 goes on"
ok "every acknowledged-and-flushed write reads back" \
  "$checker" verify "$(nbd_uri e)" "$tmpdir/j" --strict-flushed
node_start 2 p 32M
wait_leg_normal e 2 30
wait_in_sync 2 60 && ok "member 42 came back and resynced" ||
  not_ok "member 42 came back and resynced"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((32 << 20))
done_testing
