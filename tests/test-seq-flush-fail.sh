#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-flush-fail.sh [RF]: a flush that fails on one leg, with RF
# legs (default 2; the flush fails on node 2, the other nodes take it).
#
# A failed flush (fsync EIO) means the writes that leg acknowledged since
# its last good flush may be gone from it: the kernel may have dropped
# the dirty pages.  So the leg is failed (or the member itself records
# them stale), and those writes must be recorded as missed by that
# member and resynced when it returns; nobody may count them as safe on
# it.
#
# Here: write A with the checker (ends with a good flush on both legs);
# then writes W (4K in 32 chunks) acknowledged by every leg; one fault
# (op=any count=1, fault injection) on node 2 takes the next IO there,
# the flush.  To model the pages the failed fsync dropped, node 2 is
# killed -9 and its data area is put back as it was at its last good
# flush (W gone), then it returns (background resync stopped until then,
# so that nothing repairs W before it is lost).  Expected: node 2
# resyncs W's chunks; every write, A and W, reads back through member 42
# alone and from node 2's store; the maps are clean; the legs are
# byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

requires nbdsh --version
rf=${1:-2}
seq_init "$rf"

# ---------------------------------------------------------------------
# Helpers of this test

# W: 32 writes of 4K, one per 256K, in the second half (the checker uses
# the first 16 MiB).
W_CHECK='
for k in range(32):
    d = h.pread(4096, (16 << 20) + k * 262144 + 8192)
    assert d == bytes([k + 1]) * 4096, "W %d at %d: got %r" % (k, (16 << 20) + k * 262144 + 8192, d[:8])
'

# ---------------------------------------------------------------------

node_start 1 p 32M
NODE_ARGS=--enable-fault-injection node_start 2 p 32M sync_start=manual
for ((i = 3; i <= rf; i++)); do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=64K
ok "write A on $(every legs), flushed" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64
store_extract 2 "$size" "$tmpdir/flushed2"
# W, the fault and the flush in one go: a client idle for a second sends
# its horizon with a flush of its own (client-horizon.c), which would
# make W durable on node 2 before the fault (the store put back below
# would then model a loss that cannot happen).
rc=0
RMRADM_BIN=$RMRADM CTL2=${NODE_CTL[2]} nbdsh -u "$uri" -c '
import os, subprocess, sys
for k in range(32):
    h.pwrite(bytes([k + 1]) * 4096, (16 << 20) + k * 262144 + 8192)
subprocess.run([os.environ["RMRADM_BIN"], "-s", os.environ["CTL2"], "set",
                "brmr-server/stores/p/fault", "op=any count=1 errno=EIO"],
               check=True, stdout=sys.stderr)
try:
    h.flush()
except nbd.Error as e:
    print("flush: %s" % e, file=sys.stderr)
    sys.exit(3)
' >&2 || rc=$?
ok "writes W acknowledged on $(every legs)" test "$rc" -eq 0 -o "$rc" -eq 3
diag "the flush returned status $rc to the NBD client (3: an error)"
is "$(rmradm_n 2 get brmr-server/stores/p/fault)" "op=any count=0 errno=5" \
  "the fault took node 2's flush"
# Either the client failed the leg (and member 41, and 43, records W's
# chunks for member 42), or node 2 itself recorded them stale: what
# matters is that W's chunks are known stale somewhere before node 2 is
# trusted again.
le=$(leg_get e 2 last_error)
k1=$(dirty_count 1 42)
k2=$(dirty_count 2 42)
k3=0
[[ $rf -ge 3 ]] && k3=$(dirty_count 3 42)
[[ -n "$le" || "$k1" -ge 32 || "$k2" -ge 32 || "$k3" -ge 32 ]] &&
  ok "the failed flush is not taken as durable on node 2 (last_error '$le'; stale for 42: $k1 on node 1, $k2 on node 2$([[ $rf -ge 3 ]] && echo ", $k3 on node 3"))" ||
  not_ok "the failed flush is not taken as durable on node 2 (leg $(leg_state e 2), no last_error, no chunk recorded stale for member 42)"
for i in $(all_nodes); do
  diag "node $i: $(rmradm_n "$i" get rmr-server/pools/p/map_summary)"
done

# The pages of W on node 2 are gone with its failed flush.
node_kill 2 KILL
off=$(store_data_offset 2)
dd if="$tmpdir/flushed2" of="${NODE_STORE[2]}" bs=1M oflag=seek_bytes \
  seek="$off" conv=notrunc status=none
node_start 2 p 32M
wait_leg_normal e 2 20
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
maps_clean 20 "every map is clean on $(every nodes)"
kill_pid "$NBDKIT_PID"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42
wait_leg_normal e 2 20
r0=$(leg_get e 2 reads)
out=$(nbdsh -u "$uri" -c "$W_CHECK" 2>&1) && rc=0 || rc=$?
r1=$(leg_get e 2 reads)
[[ $rc -eq 0 && $((r1 - r0)) -ge 32 ]] &&
  ok "W, acknowledged before the failed flush, reads back through member 42" ||
  { not_ok "W, acknowledged before the failed flush, reads back through member 42"
    diag "reads by member 42: $((r1 - r0)); $(tail -n 3 <<<"$out")"; }
verify_member 2 "every acknowledged write of A reads back through member 42"
kill_pid "$NBDKIT_PID"
verify "node 2's data area alone holds A" STORE:2
ok "the legs are byte-identical" all_legs_identical "$size"
done_testing
