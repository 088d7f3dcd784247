#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-multiconn.sh: the export advertises multi-conn, and two NBD
# clients writing at once (disjoint halves, then each reading the other's
# half after a flush) see each other's data; the legs stay identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

node_start 1 p 32M
node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2)
uri=$(nbd_uri e)

is "$(nbdsh -u "$uri" -c 'print(h.can_multi_conn())')" True \
  "the export advertises multi-conn"

writer ()
{
  nbdsh -u "$uri" -c "
import os
M = 1024 * 1024
base = $1 * 16 * M
for i in range(256):
    h.pwrite(bytes([($1 * 7 + i) & 255]) * 65536, base + i * 65536)
h.flush()
"
}
writer 0 & w0=$!
writer 1 & w1=$!
rc=0
wait "$w0" || rc=1
wait "$w1" || rc=1
is "$rc" 0 "two clients wrote at the same time"

nbdsh -u "$uri" -c '
M = 1024 * 1024
for half in (0, 1):
    for i in range(256):
        want = bytes([(half * 7 + i) & 255]) * 65536
        assert h.pread(65536, half * 16 * M + i * 65536) == want, (half, i)
' && ok "a third client reads both halves back" ||
  not_ok "a third client reads both halves back"

kill_pid "$NBDKIT_PID"
store_extract 1 $((32 << 20)) "$tmpdir/leg1"
store_extract 2 $((32 << 20)) "$tmpdir/leg2"
ok "both legs hold the same bytes" cmp "$tmpdir/leg1" "$tmpdir/leg2"
done_testing
