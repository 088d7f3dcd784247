#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-fio.sh: fio through its nbd engine with verify=crc32c on a
# 2-leg pool (random writes of mixed sizes, then verification of every
# block), and the legs' data areas are identical afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires fio --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
fio --enghelp 2>/dev/null | grep -qw nbd || skip_all "fio has no nbd engine"
make_tmpdir

node_start 1 p 64M
node_start 2 p 64M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2)

ok "fio randwrite with verify=crc32c through the nbd engine" \
  fio --name=verify --ioengine=nbd --uri="$(nbd_uri e)" --rw=randwrite \
    --bsrange=4k-256k --iodepth=16 --size=48M --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --output="$tmpdir/fio.out"
grep -q "err= 0" "$tmpdir/fio.out" && ok "fio reports no error" ||
  { not_ok "fio reports no error"; cat "$tmpdir/fio.out" >&2; }

kill_pid "$NBDKIT_PID"
store_extract 1 $((64 << 20)) "$tmpdir/leg1"
store_extract 2 $((64 << 20)) "$tmpdir/leg2"
ok "both legs hold the same 64 MiB" cmp "$tmpdir/leg1" "$tmpdir/leg2"
done_testing
