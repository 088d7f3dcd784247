#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-failure-link.sh: cut the network link of one storage node (in its
# own namespace) for longer than the client's timeout, under a verifying
# write load, then restore it.  The load goes on without an error while
# the node is unreachable; when the link is back the client reconnects the
# node by itself, hands it its map, and the node resyncs from its peer;
# the maps reach 0 dirty and the legs are byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires fio --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2 net

node_start 1 p 64M
node_start 2 p 64M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=2s

fio --name=load --ioengine=nbd --uri="$(nbd_uri e)" --rw=randwrite \
  --bs=4k --size=48M --iodepth=8 --rate_iops=1200 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --output="$tmpdir/fio.out" &
fio_pid=$!
sleep 1.5
node_cut 2
ok "node 2's link is down" true
sleep 4
is "$(leg_state e 2)" failed "the client failed the unreachable leg"
d=$(dirty_count 1 42)
[[ "${d:-0}" -gt 0 ]] && ok "node 1 records $d chunks dirty for member 42" ||
  not_ok "node 1 records chunks dirty for member 42 (got '${d:-}')"
node_restore 2
ok "node 2's link is up again" true
rc=0
wait "$fio_pid" || rc=$?
is "$rc" 0 "the write load and its verification ran without an error"
grep -q "err= 0" "$tmpdir/fio.out" || cat "$tmpdir/fio.out" >&2

wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "the client reconnected node 2 by itself"
wait_in_sync 2 60 && ok "node 2 resynced by itself" ||
  not_ok "node 2 resynced by itself"
is "$(dirty_count 1 42)" 0 "node 1: member 42 is clean again"
is "$(dirty_count 2 42)" 0 "node 2: member 42 is clean again"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((64 << 20))
done_testing
