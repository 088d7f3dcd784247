#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-flush-fail.sh: a flush that fails on one leg.
#
# A failed flush (fsync EIO) means the writes that leg acknowledged since
# its last good flush may be gone from it: the kernel may have dropped
# the dirty pages.  So the leg is failed (or the member itself records
# them stale), and those writes must be recorded as missed by that
# member and resynced when it returns; nobody may count them as safe on
# it.
#
# Here: write A with the checker (ends with a good flush on both legs);
# then writes W (4K in 32 chunks) acknowledged by both legs; one fault
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

checker=$SRC_DIR/tests/rmr-checker
requires nbdsh --version
requires /usr/bin/python3 -c 'import nbd'
requires ip -V
requires nbdkit --filter=offset null --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 2 net

size=$((32 << 20))
J=$tmpdir/journal
uri=$(nbd_uri e)

# ---------------------------------------------------------------------
# Helpers (the same in every test-seq-*.sh)

# leg_path NAME I ATTR: nbdkit NAME's control path of leg I's ATTR.
leg_path ()
{
  local s
  s=$(rmradm_c "$1" ls rmr-client/pools/p/sessions |
    grep -F "@${NODE_ADDR[$2]}/state" | head -1)
  [[ -n "$s" ]] && echo "${s%/state}/$3"
}

leg_get ()
{
  rmradm_c "$1" get "$(leg_path "$1" "$2" "$3")"
}

# try_nbdkit NAME ARGS: like nbdkit_start, but returns 1 (and leaves the
# output in $tmpdir/NAME.log) if nbdkit exits instead of serving.
try_nbdkit ()
{
  local name=$1
  shift
  rm -f "$tmpdir/$name.sock" "$tmpdir/$name.ctl"
  # shellcheck disable=SC2016 # for the inner bash
  start_bg "$tmpdir/$name.pid" bash -c 'exec 2> >(tee "$0" >&2); exec "$@"' \
    "$tmpdir/$name.log" ip netns exec "$(netns_name cli)" \
    nbdkit -f -U "$tmpdir/$name.sock" "$RMR_PLUGIN" "$@" \
    control="$tmpdir/$name.ctl"
  NBDKIT_PID=$BG_PID
  _wait_until 30 _serving_or_gone "$name"
  [[ -S "$tmpdir/$name.sock" ]] && _is_ours_alive "$NBDKIT_PID"
}

_serving_or_gone ()
{
  [[ -S "$tmpdir/$1.sock" ]] || ! _is_ours_alive "$NBDKIT_PID"
}

# verify DESC URI|STORE:I: the checker's verify of journal $J, through
# the pool or offline on node I's data area (nbdkit's file plugin, read
# only); its report goes to the TAP log when it fails.
verify ()
{
  local desc=$1 what=$2 out rc=0 off
  if [[ "$what" == STORE:* ]]; then
    off=$(store_data_offset "${what#STORE:}")
    out=$(nbdkit -r -U - --filter=offset file "${NODE_STORE[${what#STORE:}]}" \
      offset="$off" range="$size" \
      --run "'$checker' verify \"\$uri\" '$J'" 2>&1) || rc=$?
  else
    out=$(timeout 120 "$checker" verify "$what" "$J" 2>&1) || rc=$?
  fi
  if [[ $rc -eq 0 ]]; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "checker verify: status $rc"
    diag "$(head -n 25 <<<"$out")"
  fi
}

# Every node's map_summary: 0 dirty for every member.
_maps_clean ()
{
  local i out
  for ((i = 1; i <= CLUSTER_N; i++)); do
    out=$(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>/dev/null) ||
      return 1
    grep -q 'dirty$' <<<"$out" || return 1
    grep 'dirty$' <<<"$out" | grep -qv ' 0/[0-9]* dirty$' && return 1
  done
  return 0
}

maps_clean ()   # maps_clean SECS DESC
{
  local i
  if _wait_until "$1" _maps_clean; then
    ok "$2"
  else
    not_ok "$2"
    for ((i = 1; i <= CLUSTER_N; i++)); do
      diag "node $i after $1 s: $(rmradm_n "$i" get rmr-server/pools/p/map_summary 2>&1)"
    done
  fi
}


# verify_member I DESC: the checker's verify through nbdkit e started with
# read-policy=member:(40+I): leg I must be normal and serve the reads.
verify_member ()
{
  local i=$1 desc=$2 r0 r1
  wait_leg_normal e "$i" 20
  r0=$(leg_get e "$i" reads)
  verify "$desc" "$uri"
  r1=$(leg_get e "$i" reads)
  [[ "$(leg_get e "$i" state)" == normal && $((r1 - r0)) -gt 0 ]] &&
    ok "member $((40 + i)) served those reads ($((r1 - r0)))" ||
    not_ok "member $((40 + i)) served those reads (reads $r0 -> $r1, state $(leg_get e "$i" state))"
}

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
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s chunk-size=64K
ok "write A on both legs, flushed" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64
store_extract 2 "$size" "$tmpdir/flushed2"
ok "writes W acknowledged on both legs, not flushed" nbdsh -u "$uri" -c '
for k in range(32):
    h.pwrite(bytes([k + 1]) * 4096, (16 << 20) + k * 262144 + 8192)
'
rmradm_n 2 set brmr-server/stores/p/fault 'op=any count=1 errno=EIO' >&2
rc=0
nbdsh -u "$uri" -c 'h.flush()' >&2 || rc=$?
diag "the flush returned status $rc to the NBD client"
is "$(rmradm_n 2 get brmr-server/stores/p/fault)" "op=any count=0 errno=5" \
  "the fault took node 2's flush"
# Either the client failed the leg (and member 41 records W's chunks for
# member 42), or node 2 itself recorded them stale: what matters is that
# W's chunks are known stale somewhere before node 2 is trusted again.
le=$(leg_get e 2 last_error)
k1=$(dirty_count 1 42)
k2=$(dirty_count 2 42)
[[ -n "$le" || "$k1" -ge 32 || "$k2" -ge 32 ]] &&
  ok "the failed flush is not taken as durable on node 2 (last_error '$le'; stale for 42: $k1 on node 1, $k2 on node 2)" ||
  not_ok "the failed flush is not taken as durable on node 2 (leg $(leg_state e 2), no last_error, no chunk recorded stale for member 42)"
diag "node 1: $(rmradm_n 1 get rmr-server/pools/p/map_summary)"
diag "node 2: $(rmradm_n 2 get rmr-server/pools/p/map_summary)"

# The pages of W on node 2 are gone with its failed flush.
node_kill 2 KILL
off=$(store_data_offset 2)
dd if="$tmpdir/flushed2" of="${NODE_STORE[2]}" bs=1M oflag=seek_bytes \
  seek="$off" conv=notrunc status=none
node_start 2 p 32M
wait_leg_normal e 2 20
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
maps_clean 20 "every map is clean on both nodes"
kill_pid "$NBDKIT_PID"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s read-policy=member:42
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
ok "the legs are byte-identical" legs_identical 1 2 "$size"
done_testing
