#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-stale-source.sh: a returning member never copies from a peer
# that is itself outdated (DESIGN 3: "a resync source must be up to
# date").
#
# RF=3.  Node 3 is killed -9; leg 2 is disabled at the client (its daemon
# stays up; the client tells it it left the pool, so it serves no resync
# reads; nothing on node 2 says which chunks it is outdated for, only
# member 41 records it; test-sync-watch pins the case where a peer's
# daemon does not know it was left); write B reaches node 1 only.
# Node 3 returns and resyncs: the chunks it missed are on member 41
# alone, and member 42 holds older data for them.  A resync that reads
# from any reachable peer copies A from node 2 and calls the chunk
# clean.  Expected: every acknowledged write reads back through member
# 43 alone and from node 3's store; then leg 2 is enabled again, node 2
# resyncs, the maps are clean and the legs byte-identical.
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

# ---------------------------------------------------------------------

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=3s chunk-size=64K read-policy=member:43
ok "write A on every leg" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 6000 --flush-every 64
node_kill 3 KILL
rmradm_c e set "$(leg_path e 2 enable)" 0 >&2
[[ "$(leg_state e 2)" != normal ]] && ok "leg 2 is disabled ($(leg_state e 2))" ||
  not_ok "leg 2 is disabled (state $(leg_state e 2))"
# The client tells node 2 it left: its daemon stays up, and no longer
# serves the pool (nor resync reads) as if it got the writes it misses.
st=$(rmradm_n 2 get rmr-server/pools/p/state)
[[ "$st" == registered || "$st" == no_io ]] &&
  ok "node 2's daemon is up, its pool left by the client ($st)" ||
  not_ok "node 2's daemon is up, its pool left by the client (state $st)"
ok "write B reaches node 1 only" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64
diag "node 1: $(rmradm_n 1 get rmr-server/pools/p/map_summary)"
diag "node 2: $(rmradm_n 2 get rmr-server/pools/p/map_summary)"

node_start 3 p 32M
wait_leg_normal e 3 30
wait_in_sync 3 60 && ok "node 3 came back and resynced" ||
  not_ok "node 3 came back and resynced"
diag "node 3: $(rmradm_n 3 get rmr-server/pools/p/map_summary)"
verify_member 3 "every acknowledged write reads back through member 43"
verify "node 3's data area alone holds every acknowledged write" STORE:3

rmradm_c e set "$(leg_path e 2 enable)" 1 >&2
wait_leg_normal e 2 30
is "$(leg_state e 2)" normal "leg 2 is enabled again"
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
maps_clean 20 "every map is clean on every node"
verify_member 3 "every acknowledged write still reads back through member 43"
kill_pid "$NBDKIT_PID"
for i in 1 2 3; do
  verify "node $i's data area alone holds every acknowledged write" STORE:$i
done
ok "legs 1 and 2 are byte-identical" legs_identical 1 2 "$size"
ok "legs 1 and 3 are byte-identical" legs_identical 1 3 "$size"
done_testing
