#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-metadata.sh: crash-safe metadata.  A damaged copy of a superblock
# is never used: the other copy is; both copies damaged gives a clear
# refusal to attach the store (nothing changed on it), never garbage
# data.  A damaged recent-write record makes assemble treat that member's
# data as possibly different everywhere (a full resync), and a damaged
# dirty-map page counts as every chunk of it dirty: both cost resync,
# never data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

node_start 1 p 16M
node_start 2 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
head -c $((16 << 20)) /dev/urandom >"$tmpdir/data"
nbdcopy "$tmpdir/data" "$(nbd_uri e)"
kill_pid "$NBDKIT_PID"

garble ()     # garble FILE OFFSET LEN
{
  dd if=/dev/urandom of="$1" bs=1 seek="$2" count="$3" conv=notrunc status=none
}
info ()
{
  "$RMRADM" store-info "${NODE_STORE[$1]}" | awk -v k="$2:" '$1 == k { print $2 }'
}

# One superblock copy.
node_kill 1
is "$(info 1 clean_shutdown)" yes "store-info: a clean stop is recorded"
used=$(info 1 superblock_copy)
garble "${NODE_STORE[1]}" $((used * 4096 + 200)) 16
is "$(info 1 superblock_copy)" $((1 - used)) "a damaged copy is passed over"
node_start 1 p 16M
is "$(rmradm_n 1 get rmr-server/pools/p/state)" registered \
  "the store attaches with the other copy"

# Both copies.
node_kill 1
garble "${NODE_STORE[1]}" $((4096 + 200)) 16
garble "${NODE_STORE[1]}" 200 16
sum=$(md5sum <"${NODE_STORE[1]}")
out=$("$RMR_STORAGED" --config "$tmpdir/n1.conf" --foreground 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"damaged rmr metadata"* ]] &&
  ok "both copies damaged: a clear refusal" ||
  { not_ok "both copies damaged: a clear refusal"; diag "$out"; }
is "$(md5sum <"${NODE_STORE[1]}")" "$sum" "and the store is left as it was"
# Put a good superblock back from node 2's (same pool, other member) to
# go on: the test of refusals is done.
rm -f "${NODE_STORE[1]}"
node_start 1 p 16M
# A new store at RF=2, min-legs 1: its old disk may have held writes node
# 2 lacks, so the assemble needs the operator's force=1
# (test-replace.sh checks the refusal).
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K force=1
_wait_until 60 _in_sync 1 || true
is "$(rmradm_n 1 get rmr-server/pools/p/sync | grep '^total:')" "total: 256" \
  "a replaced store resyncs everything (256 chunks)"
ok "and holds the data again" nbdsh -u "$(nbd_uri e)" -c "
d = open('$tmpdir/data', 'rb').read()
for off in range(0, 16 << 20, 1 << 20):
    for _ in range(2):
        assert h.pread(1 << 20, off) == d[off:off + (1 << 20)], off
"
kill_pid "$NBDKIT_PID"

# The recent-write record of node 2, both copies.
node_kill 2
al=$(info 2 al_offset)
garble "${NODE_STORE[2]}" $((al + 100)) 16
garble "${NODE_STORE[2]}" $((al + 4096 + 100)) 16
is "$(info 2 recent_write_record)" damaged "store-info: a damaged record"
node_start 2 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
both ()
{
  _in_sync 1 && _in_sync 2
}
_wait_until 60 both && ok "a lost recent-write record: the pool resyncs" ||
  not_ok "a lost recent-write record: the pool resyncs"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((16 << 20))
ok "and hold the data" store_cmp 1 "$tmpdir/data"

# Killed with the pool open: store-info shows the extents written.
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
nbdcopy "$tmpdir/data" "$(nbd_uri e)"
node_kill 1 KILL
is "$(info 1 clean_shutdown)" no "store-info: a kill is not a clean stop"
ok "store-info: the record holds the extents written" \
  test "$(info 1 recent_write_extents)" -gt 0
node_start 1 p 16M
_wait_until 60 both || true
kill_pid "$NBDKIT_PID"

# A dirty-map page of node 1 (member 42's slot).
node_kill 1
map=$(info 1 map_offset) slot=$(info 1 map_slot_bytes)
garble "${NODE_STORE[1]}" $((map + slot + 64)) 8
node_start 1 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
_wait_until 60 both && ok "a damaged map page: its chunks resync" ||
  not_ok "a damaged map page: its chunks resync"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((16 << 20))
ok "and hold the data" store_cmp 2 "$tmpdir/data"
done_testing
