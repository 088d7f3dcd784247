#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-leg-add-sparse.sh: a leg added to a mostly empty pool receives
# its data, not its size.
#
# RF=2 on nodes 1 and 2 (128 MiB, 128K chunks); 2 MiB of patterns are
# written at three places, and 1 MiB written then zeroed again.  Node 3
# (a fresh store) is added live with `rmradm leg add --wait`: every chunk
# is dirty for it, and its resync fetches each one.  Expected: a chunk
# that reads as zeroes comes without its bytes (protocol.md, "Zeroes
# without payload"), so node 3 receives from its peers little more than
# the 2 MiB of data, counts the rest in its sync status's zero_chunks,
# and writes nothing where its fresh store has a hole (the store file
# stays sparse); the three legs are byte-identical, and the patterns
# read back through node 3 alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires qemu-io --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 3

size=$((128 << 20)) chunk=$((128 << 10))
nchunks=$((size / chunk)) data=$((2 << 20))
for i in 1 2 3; do node_start "$i" p 128M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=5s chunk-size=128K
uri=$(nbd_uri e)
writes=(-c "write -P 0xa1 0 512K" -c "write -P 0xb2 40M 1M"
  -c "write -P 0xc3 127M 512K" -c "write -P 0xd4 64M 1M" -c "write -z 64M 1M")
reads=(-c "read -P 0xa1 0 512K" -c "read -P 0xb2 40M 1M"
  -c "read -P 0xc3 127M 512K" -c "read -P 0 64M 1M" -c "read -P 0 1M 39M")
ok "2 MiB of patterns written, 1 MiB written and zeroed" \
  qemu-io -f raw "${writes[@]}" "${reads[@]}" "$uri"

# What node 3's sync pool receives from each peer.
peer_rx ()
{
  local total=0 i
  for i in 1 2; do
    total=$((total + $(rmradm_n 3 get \
      "rmr-client/pools/p/sessions/p@${NODE_ADDR[$i]}/bytes_received")))
  done
  echo "$total"
}
rx0=$(peer_rx)
out=$("$RMRADM" -s "$tmpdir/e.ctl" leg add p "$(node_url 3)" --member 43 \
  --wait --timeout 90 2>&1) && rc=0 || rc=$?
is "$rc" 0 "rmradm leg add --wait: node 3 added and up to date"
[[ $rc -eq 0 ]] || diag "$out"
wait_in_sync 3 30 && ok "node 3's resync ended" || not_ok "node 3's resync ended"
st=$(rmradm_n 3 get rmr-server/pools/p/sync)
done_n=$(awk '$1 == "done:" { print $2 }' <<<"$st")
zero_n=$(awk '$1 == "zero_chunks:" { print $2 }' <<<"$st")
is "$done_n" "$nchunks" "node 3 fetched every chunk ($nchunks)"
[[ "$done_n" == "$nchunks" ]] || diag "$st"
is "$zero_n" $((nchunks - data / chunk)) \
  "every chunk but the $((data / chunk)) with data came as zeroes"
rx=$(($(peer_rx) - rx0))
[[ $rx -lt $((data + (1 << 20))) ]] &&
  ok "node 3 received $rx bytes from its peers: the data, not the $size of the device" ||
  not_ok "node 3 received $rx bytes from its peers (expected about $data, not $size)"
alloc=$(($(stat -c '%b * %B' "${NODE_STORE[3]}")))
[[ $alloc -lt $((data + (4 << 20))) ]] &&
  ok "node 3's store file stays sparse ($alloc bytes allocated)" ||
  not_ok "node 3's store file stays sparse ($alloc bytes allocated, $data of data)"

for i in 1 2; do
  legs_identical "$i" 3 "$size" && ok "nodes $i and 3 hold identical data" ||
    not_ok "nodes $i and 3 hold identical data"
done
kill_pid "$NBDKIT_PID"
# shellcheck disable=SC2046
nbdkit_start m pool=p $(servers 1 2 3) timeout=5s read-policy=member:43
ok "the patterns and the zeroes read back through member 43 alone" \
  qemu-io -f raw -r "${reads[@]}" "$(nbd_uri m)"

done_testing
