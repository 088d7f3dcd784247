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
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 3

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
