#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-rf.sh RF: a pool of RF storage nodes on loopback, exported by
# nbdkit.  Data written through the export with nbdsh and qemu-io reads
# back; after qemu-img convert of an 80 MiB random image, qemu-img compare
# passes and every store's data area (found with rmradm store-info) is
# byte-identical to the image.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

rf=${1:-2}
requires nbdsh --version
requires qemu-img --version
requires qemu-io --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

nodes=()
for ((i = 1; i <= rf; i++)); do
  node_start "$i" p 80M
  nodes+=("$i")
done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers "${nodes[@]}")
uri=$(nbd_uri e)

is "$(nbdsh -u "$uri" -c 'print(h.get_size())')" $((80 << 20)) \
  "RF=$rf: export size is the stores' mapped_size"

nbdsh -u "$uri" -c '
data = b"hello rmr " * 409 + b"rmr!!!"
h.pwrite(data, 8192)
assert h.pread(4096, 8192) == data
h.pwrite(b"\x5a" * 512, 81 * 1024 * 1024 - 512 - 1024 * 1024)
h.flush()
' && ok "RF=$rf: nbdsh write, read back" || not_ok "RF=$rf: nbdsh write, read back"

qemu-io -f raw -c "write -P 0xab 1M 3M" -c "read -P 0xab 1M 3M" "$uri" >&2 &&
  ok "RF=$rf: qemu-io pattern write and read back" ||
  not_ok "RF=$rf: qemu-io pattern write and read back"

head -c $((80 << 20)) /dev/urandom >"$tmpdir/img.raw"
ok "RF=$rf: qemu-img convert of an 80 MiB random image" \
  qemu-img convert -n -f raw -O raw "$tmpdir/img.raw" "$uri"
ok "RF=$rf: qemu-img compare passes" \
  qemu-img compare -f raw -F raw "$tmpdir/img.raw" "$uri"

for i in "${nodes[@]}"; do
  ok "RF=$rf: store of member $((40 + i)) holds exactly the image" \
    store_cmp "$i" "$tmpdir/img.raw"
done

# Every leg took every write, none was read more than needed.
for i in "${nodes[@]}"; do
  is "$(rmradm_n "$i" get rmr-server/pools/p/state)" normal \
    "RF=$rf: member $((40 + i)) is normal"
done

kill_pid "$NBDKIT_PID"
for i in "${nodes[@]}"; do
  is "$(rmradm_n "$i" get rmr-server/pools/p/state)" registered \
    "RF=$rf: member $((40 + i)) registered after nbdkit left gracefully"
done
done_testing
