#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-overlap.sh: overlapping writes in flight are applied in the same
# order on every leg.  Two NBD connections hammer the same blocks with
# different data at the same time (each write overlapping the other's);
# afterwards the three legs are byte-identical, and reads through the
# export agree with them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 3

for i in 1 2 3; do node_start "$i" p 8M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3)
uri=$(nbd_uri e)

hammer ()
{
  nbdsh -u "$uri" -c "
import random
rnd = random.Random($1)
bufs = [bytes([($1 * 50 + k) % 256]) * 16384 for k in range(50)]
cookies = []
for n in range(3000):
    # 16 KiB at a 4 KiB step in a 256 KiB window: writes overlap.
    off = rnd.randrange(0, 60) * 4096
    cookies.append(h.aio_pwrite(bufs[n % 50], off))
    while h.aio_in_flight() >= 32:
        h.poll(-1)
        cookies = [c for c in cookies if not h.aio_command_completed(c)]
while h.aio_in_flight() > 0:
    h.poll(-1)
h.flush()
"
}
hammer 1 & p1=$!
hammer 2 & p2=$!
rc=0
wait "$p1" || rc=1
wait "$p2" || rc=1
is "$rc" 0 "two connections wrote overlapping blocks at the same time"
nbdsh -u "$uri" -c "open('$tmpdir/seen', 'wb').write(h.pread(256 << 10, 0))"
kill_pid "$NBDKIT_PID"
for i in 2 3; do
  ok "leg $i is byte-identical to leg 1" legs_identical 1 "$i" $((8 << 20))
done
ok "reads agreed with the legs" store_cmp 1 "$tmpdir/seen"
done_testing
