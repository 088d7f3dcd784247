#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-failure-kill.sh RF: kill -9 one storage node of an RF-leg pool
# (each node in its own network namespace) under a verifying write load.
# The load goes on without an error; the survivors' map_summary lists the
# chunks the dead node missed; the node is restarted from its config, the
# client reconnects it and hands it its map, and it resyncs by itself
# from its peers; every map reaches 0 dirty, the legs' data areas are
# byte-identical, and fio's verification reads back every write.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

rf=${1:-2}
requires fio --version
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init "$rf" net

for ((i = 1; i <= rf; i++)); do node_start "$i" p 64M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(seq 1 "$rf")) timeout=3s

# About 8 s of 4K random writes (rate limited), then a full verify.
fio --name=load --ioengine=nbd --uri="$(nbd_uri e)" --rw=randwrite \
  --bs=4k --size=48M --iodepth=8 --rate_iops=1500 --verify=crc32c \
  --verify_fatal=1 --do_verify=1 --output="$tmpdir/fio.out" &
fio_pid=$!
sleep 2
node_kill 2 KILL
ok "node 2 killed with SIGKILL during the load" true
sleep 1.5
d=$(dirty_count 1 42)
[[ "${d:-0}" -gt 0 ]] && ok "node 1 records $d chunks dirty for member 42" ||
  not_ok "node 1 records chunks dirty for member 42 (got '${d:-}')"
is "$(leg_state e 2)" failed "the client sees the leg failed"
node_start 2 p 64M
rc=0
wait "$fio_pid" || rc=$?
is "$rc" 0 "the write load and its verification ran without an error"
grep -q "err= 0" "$tmpdir/fio.out" || cat "$tmpdir/fio.out" >&2

wait_leg_normal e 2 20
is "$(leg_state e 2)" normal "the client reconnected node 2"
wait_in_sync 2 60 && ok "node 2 resynced by itself" ||
  not_ok "node 2 resynced by itself"
for ((i = 1; i <= rf; i++)); do
  for ((j = 1; j <= rf; j++)); do
    is "$(dirty_count "$i" $((40 + j)))" 0 \
      "node $i: member $((40 + j)) 0 dirty"
  done
done
kill_pid "$NBDKIT_PID"
for ((i = 2; i <= rf; i++)); do
  ok "leg $i is byte-identical to leg 1" legs_identical 1 "$i" $((64 << 20))
done
done_testing
