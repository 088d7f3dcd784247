#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-crash-window.sh: the resync after a compute-host crash moves no
# more than the recent-write window, measured.  The stores keep a small
# record (al_extents=4, al_extent_size=1M: a 4 MiB window) while the
# checker writes all over a 256 MiB device at queue depth 4; after the
# crash and the assemble, each member receives at most what the members'
# records held, not the device.  A record holds its window plus the
# extents of writes that may still be in flight on the other leg (an
# extent leaves only once every write to it is done on every leg: the
# client's horizon lags by the writes in flight), so the bound is the
# union of 2 records of (4 + 2 x 4) extents: 24 MiB.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 2

al=$'al_extents=4\nal_extent_size=1M'
node_start 1 p 256M "$al"
node_start 2 p 256M "$al"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
start_bg "$tmpdir/w.pid" "$checker" write "$(nbd_uri e)" "$tmpdir/journal" \
  --blocks 65536 --queue 4 --seconds 60
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
[[ $moved -le $((24 << 20)) ]] &&
  ok "no more than the recent-write windows moved ($moved <= 24 MiB)" ||
  not_ok "no more than the recent-write windows moved ($moved > 24 MiB)"
[[ $moved -gt 0 ]] && ok "and something did (writes were in flight)" ||
  diag "nothing needed a resync this time"
ok "every acknowledged-and-flushed write reads back" \
  "$checker" verify "$(nbd_uri e)" "$tmpdir/journal" --strict-flushed
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((256 << 20))
done_testing
