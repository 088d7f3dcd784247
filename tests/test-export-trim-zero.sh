#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-trim-zero.sh: trim, write zeroes (with and without
# may-trim, and fast zero) and FUA writes are replicated: the ranges read
# back as zeroes through the export and in every leg's data area.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

for i in 1 2 3; do node_start "$i" p 16M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3)

nbdsh -u "$(nbd_uri e)" -c '
M = 1024 * 1024
h.pwrite(b"\xff" * (16 * M), 0, nbd.CMD_FLAG_FUA)
h.trim(M, 1 * M)
h.zero(M, 3 * M)
h.zero(M, 5 * M, nbd.CMD_FLAG_NO_HOLE)
h.zero(4096 * 3, 7 * M + 512)
if h.can_fast_zero():
    try:
        h.zero(M, 9 * M, nbd.CMD_FLAG_FAST_ZERO)
    except nbd.Error as e:
        assert e.errnum == errno.ENOTSUP, e
        h.zero(M, 9 * M)
else:
    h.zero(M, 9 * M)
h.flush()
# Trim may keep data (it is advisory); zeroes must read as zeroes.
for off in (3 * M, 5 * M, 9 * M):
    assert h.pread(M, off) == bytes(M), off
assert h.pread(4096 * 3, 7 * M + 512) == bytes(4096 * 3)
assert h.pread(512, 7 * M) == b"\xff" * 512
assert h.pread(M, 11 * M) == b"\xff" * M
' -c 'import errno' 2>&1 >&2 && ok "trim, zero, fast zero through the export" ||
  not_ok "trim, zero, fast zero through the export"

kill_pid "$NBDKIT_PID"
for i in 1 2 3; do
  store_extract "$i" $((16 << 20)) "$tmpdir/leg$i"
done
for i in 2 3; do
  ok "leg $i is byte-identical to leg 1" cmp "$tmpdir/leg1" "$tmpdir/leg$i"
done
zeroes=$(python3 - "$tmpdir/leg1" <<'PY'
import sys
M = 1 << 20
d = open(sys.argv[1], "rb").read()
ok = all(d[o:o + M] == bytes(M) for o in (3 * M, 5 * M, 9 * M))
ok = ok and d[7 * M + 512:7 * M + 512 + 12288] == bytes(12288)
print("zeroes" if ok else "data")
PY
)
is "$zeroes" zeroes "zeroed ranges are zero in the stores"
done_testing
