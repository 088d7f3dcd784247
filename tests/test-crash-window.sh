#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-crash-window.sh: the resync after a compute-host crash moves no
# more than the recent-write window, measured.  The stores keep a small
# record (al_extents=4, al_extent_size=1M: a 4 MiB window) while the
# checker writes all over a 48 MiB device; after the crash and the
# assemble, each member receives at most what the members' records held
# (the union of 2 records: 8 MiB), not the device.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 2

al=$'al_extents=4\nal_extent_size=1M'
node_start 1 p 48M "$al"
node_start 2 p 48M "$al"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
start_bg "$tmpdir/w.pid" "$checker" write "$(nbd_uri e)" "$tmpdir/journal" \
  --blocks 12288 --queue 16 --seconds 60
wpid=$BG_PID
sleep 2
kill_pid "$NBDKIT_PID" KILL
wait "$wpid" || true

rx ()
{
  local i=$1 j=$((3 - $1))
  rmradm_n "$i" get "rmr-client/pools/p/sessions/p@${NODE_ADDR[$j]}/bytes_received"
}
r1=$(rx 1) r2=$(rx 2)
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
both ()
{
  _in_sync 1 && _in_sync 2
}
_wait_until 60 both && ok "the members resynced" || not_ok "the members resynced"
moved=$(( $(rx 1) - r1 + $(rx 2) - r2 ))
diag "resync after the crash moved $moved bytes (window 4 MiB per member)"
[[ $moved -le $((8 << 20)) ]] &&
  ok "no more than the recent-write windows moved ($moved <= 8 MiB)" ||
  not_ok "no more than the recent-write windows moved ($moved > 8 MiB)"
[[ $moved -gt 0 ]] && ok "and something did (writes were in flight)" ||
  diag "nothing needed a resync this time"
ok "every acknowledged-and-flushed write reads back" \
  "$checker" verify "$(nbd_uri e)" "$tmpdir/journal" --strict-flushed
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((48 << 20))
done_testing
