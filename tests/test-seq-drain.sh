#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-drain.sh: a crash during a resync (DESIGN 6), and the dirty
# maps drain.
#
# RF=3.  Node 3 misses writes and comes back resyncing slowly
# (sync_rate=1M); in the middle of its resync node 2 (one of its sources,
# and a holder of bits about member 43) is killed -9, writes go on, and
# node 2 is restarted.  The race this pins: bits that node 3's clears
# could not reach on node 2 (or bits about member 42 set while node 3
# fetched) stay set for ever, so some map never reads clean and the next
# failure resyncs, or trusts, the wrong chunks.  Expected: within a
# bounded time (45 s, for about 10 s of resync) map_summary shows 0
# dirty for every member on every node, every acknowledged write reads
# back from every store, and the legs are byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires ip -V
requires nbdkit --filter=offset null --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 3 net

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

sync_done ()
{
  rmradm_n 3 get rmr-server/pools/p/sync | awk '$1 == "done:" { print $2 }'
}

# ---------------------------------------------------------------------

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=3s chunk-size=64K
# 2048 blocks of 4K: 128 chunks, 8 s of resync at 1M/s.
ok "write A on every leg" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 4000 --flush-every 64
node_kill 3 KILL
ok "write B while node 3 is down" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 4000 --flush-every 64
diag "node 1 records $(dirty_count 1 43) chunks for member 43"
node_start 3 p 32M sync_rate=1M
wait_leg_normal e 3 30
started ()
{
  [[ "$(sync_done)" -ge 8 ]]
}
_wait_until 20 started && ok "node 3 resyncs slowly ($(sync_done) chunks done)" ||
  not_ok "node 3 resyncs slowly (done: '$(sync_done)')"
node_kill 2 KILL
diag "node 2 killed at $(sync_done) chunks done"
ok "write C while node 2 is down and node 3 resyncs" \
  "$checker" write "$uri" "$J" --blocks 2048 --writes 1500 --flush-every 64
node_start 2 p 32M
wait_leg_normal e 2 30
is "$(leg_state e 1) $(leg_state e 2) $(leg_state e 3)" "normal normal normal" \
  "every leg is back"
maps_clean 45 "within 45 s every map on every node is clean"
for i in 1 2 3; do
  wait_in_sync "$i" 10 && ok "node $i's resync is idle" ||
    not_ok "node $i's resync is idle: $(rmradm_n "$i" get rmr-server/pools/p/sync | head -n 4)"
done
verify "every acknowledged write reads back through the pool" "$uri"
kill_pid "$NBDKIT_PID"
for i in 1 2 3; do
  verify "node $i's data area alone holds every acknowledged write" STORE:$i
done
ok "legs 1 and 2 are byte-identical" legs_identical 1 2 "$size"
ok "legs 1 and 3 are byte-identical" legs_identical 1 3 "$size"
done_testing
