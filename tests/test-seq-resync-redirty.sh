#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-resync-redirty.sh: chunks rewritten while the returning member
# fetches them, and its leg taken out and put back in the middle of its
# resync (DESIGN 6: "map clears are conditional: a bit set again after
# the chunk was fetched stays set").
#
# The race this pins: node 2 reads chunk C from node 1 for its resync;
# before it tells node 1 to clear C's bit for member 42, a new write to C
# reaches node 1 only (leg 2 disabled) and sets that bit again; an
# unconditional clear drops it, and node 2 keeps the older C for good
# while every map says clean.
#
# Node 2 resyncs at 512K/s (sync_rate) so that the writers overlap it:
# write A; leg 2 disabled (rmradm on nbdkit's control socket); write B;
# leg 2 enabled, node 2 starts its slow resync; leg 2 disabled again in
# the middle of it and write C rewrites the same chunks on node 1 only;
# leg 2 enabled; write D on both legs while the resync goes on.
# After the resync every acknowledged write reads back through member 42
# alone and from node 2's store, the maps are clean, and the legs are
# byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
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

leg2_enable ()
{
  rmradm_c e set "$(leg_path e 2 enable)" "$1" >&2
}

sync_done ()
{
  rmradm_n 2 get rmr-server/pools/p/sync | awk '$1 == "done:" { print $2 }'
}

# ---------------------------------------------------------------------

node_start 1 p 32M
node_start 2 p 32M sync_rate=512K
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s chunk-size=64K read-policy=member:42
# 1024 blocks of 4K: 64 chunks, 8 s of resync at 512K/s.
ok "write A on both legs" \
  "$checker" write "$uri" "$J" --blocks 1024 --writes 3000 --flush-every 64
leg2_enable 0
[[ "$(leg_state e 2)" != normal ]] && ok "leg 2 is disabled ($(leg_state e 2))" ||
  not_ok "leg 2 is disabled (state $(leg_state e 2))"
ok "write B on node 1 only" \
  "$checker" write "$uri" "$J" --blocks 1024 --writes 3000 --flush-every 64
d1=$(dirty_count 1 42)
[[ "$d1" -ge 60 ]] && ok "node 1 records $d1 chunks for member 42" ||
  not_ok "node 1 records the 64 chunks for member 42 (got '$d1')"

leg2_enable 1
wait_leg_normal e 2 20
started ()
{
  [[ "$(sync_done)" -ge 4 ]]
}
_wait_until 20 started && ok "node 2 resyncs slowly ($(sync_done) chunks done)" ||
  not_ok "node 2 resyncs slowly (done: '$(sync_done)')"
# Leg 2 out while node 2 still fetches: write C goes to node 1 only and
# rewrites the chunks node 2 is fetching (if its resync goes on without
# its client leg) or has fetched.
leg2_enable 0
diag "leg 2 disabled at $(sync_done) chunks done: $(leg_state e 2)"
ok "write C on node 1 only, during node 2's resync" \
  "$checker" write "$uri" "$J" --blocks 1024 --queue 8 --flush-every 64 \
  --seconds 3
diag "node 2 at $(sync_done) chunks done; node 1 records $(dirty_count 1 42)"
leg2_enable 1
wait_leg_normal e 2 20
diag "leg 2 enabled again: node 2 has $(dirty_count 2 42) stale chunks"
# And rewrites with both legs while the resync goes on (IO to a stale
# chunk fetches it first).
ok "write D on both legs during the resync" \
  "$checker" write "$uri" "$J" --blocks 1024 --queue 8 --flush-every 64 \
  --seconds 2
wait_leg_normal e 2 20
wait_in_sync 2 60 && ok "node 2 finished its resync" ||
  not_ok "node 2 finished its resync"
maps_clean 20 "every map is clean on both nodes"
verify_member 2 "every acknowledged write reads back through member 42"
kill_pid "$NBDKIT_PID"
verify "node 2's data area alone holds every acknowledged write" STORE:2
verify "node 1's data area alone holds every acknowledged write" STORE:1
ok "the legs are byte-identical" legs_identical 1 2 "$size"
done_testing
