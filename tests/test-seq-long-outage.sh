#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-long-outage.sh [RF]: a storage node's outage longer than the
# recent-write record's window, then a compute-host crash (DESIGN 6,
# "sequences, not single faults"), with RF legs (default 2; node 2 is
# the one that goes away, the others stay).
#
# Each member's record holds one 64K extent here (al_extents=1), so the
# chunks member 42 missed during its outage are known only from the dirty
# maps of member 41 (and 43), not from any record.  The race this pins: an assemble
# that reconciles only the records (the window) and forgets the maps
# hands member 42 back as clean, and it then serves the data it had
# before its outage.
#
#   1. write A on both legs; kill -9 node 2; write B over 16 MiB (far
#      more chunks than the record holds); kill -9 nbdkit in the middle
#      of it; node 2 returns; nbdkit mode=auto assembles on every member.  Node 2's own
#      map must hold every chunk node 1 recorded; after its resync every
#      acknowledged write reads back through member 42 alone.
#   2. node 2 dies again under writes, nbdkit crashes; nbdkit cannot
#      assemble without node 2 on its own (min-legs 1: that member 41
#      records member 42 stale is no proof that member 42 took no write
#      after, so it refuses, naming member 42 and what force=1 loses; at
#      RF=3 two of three members and min-legs 1 are no quorum either, and
#      min-legs=2 on the new client alone does not change it, the writes
#      were acknowledged under min-legs 1); with force=1 it goes on,
#      write C, nbdkit crashes again, node 2 returns: the same.
#   3. (RF=3) the same outage under min-legs=2: every acknowledged write
#      is on two of the three members, so the assemble without member 42
#      goes on without force; node 2 returns and resyncs.
# At the end the maps are clean and the legs byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

rf=${1:-2}
seq_init "$rf"

AL="al_extents=1
al_extent_size=64K"

# ---------------------------------------------------------------------
# 1. Outage longer than the record, then a compute-host crash.

for i in $(all_nodes); do node_start "$i" p 32M "$AL"; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s chunk-size=128K
ok "write A on $(every legs)" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 8000 --flush-every 64

node_kill 2 KILL
start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 60 --timeout 20
w=$BG_PID
many ()
{
  [[ "$(dirty_count 1 42)" -ge 100 ]]
}
_wait_until 40 many || true
d1=$(dirty_count 1 42)
[[ "$d1" -ge 100 ]] &&
  ok "node 1 records $d1 chunks ($((d1 / 8)) MiB) missed by member 42, the record holds 64K" ||
  not_ok "node 1 records at least 100 chunks missed by member 42 (got '$d1')"
kill_pid "$NBDKIT_PID" KILL
rc=0
wait "$w" || rc=$?
is "$rc" 3 "the checker saw the compute host die"

node_start 2 p 32M "$AL
sync_start=manual"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42
is "$(rmr_states)" "$(for i in $(all_nodes); do echo normal; done)" \
  "nbdkit assembled the pool on $(every members)"
wait_leg_normal e 2 20
own_known ()
{
  [[ "$(dirty_count 2 42)" -ge "$d1" ]]
}
_wait_until 10 own_known &&
  ok "node 2's own map holds the $d1+ chunks node 1 recorded ($(dirty_count 2 42))" ||
  not_ok "node 2's own map holds the $d1+ chunks node 1 recorded (got $(dirty_count 2 42); node 1: $(dirty_count 1 42))"
rmradm_n 2 set rmr-server/pools/p/sync start >&2
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
maps_clean 20 "every map is clean on $(every nodes)"
verify_member 2 "every acknowledged write reads back through member 42 (B)"
verify "node 2's data area alone holds every acknowledged write" STORE:2

# ---------------------------------------------------------------------
# 2. Node 2 down, crash, assemble without it, write C, crash, it returns.

node_kill 2 KILL
start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 60 --timeout 20
w=$BG_PID
some ()
{
  [[ "$(dirty_count 1 42)" -ge 32 ]]
}
_wait_until 30 some || true
kill_pid "$NBDKIT_PID" KILL
wait "$w" || true
# shellcheck disable=SC2046
if try_nbdkit e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42; then
  not_ok "assemble without member 42 is refused without force"
  kill_pid "$NBDKIT_PID"
else
  log=$(tail -n 5 "$tmpdir/e.log")
  [[ "$log" == *"member 42 is missing and may hold the latest writes"* &&
     "$log" == *"force=1"* ]] &&
    ok "assemble without member 42 is refused without force, naming it" ||
    { not_ok "assemble without member 42 is refused without force, naming it"
      diag "$log"; }
fi
if [[ $rf -ge 3 ]]; then
  # The new client's min-legs=2 alone would make two of three a quorum,
  # but the writes were acknowledged under min-legs 1.
  # shellcheck disable=SC2046
  if try_nbdkit e pool=p $(servers $(all_nodes)) timeout=3s \
    read-policy=member:42 min-legs=2; then
    not_ok "with min-legs=2 on the new client alone the assemble still refuses"
    kill_pid "$NBDKIT_PID"
  else
    log=$(tail -n 5 "$tmpdir/e.log")
    [[ "$log" == *"member 42 is missing and may hold the latest writes"* &&
       "$log" == *"min-legs 1"* ]] &&
      ok "with min-legs=2 on the new client alone the assemble still refuses" ||
      { not_ok "with min-legs=2 on the new client alone the assemble still refuses"
        diag "$log"; }
  fi
fi
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42 force=1
if [[ $rf -eq 2 ]]; then
  is "$(rmradm_n 1 get rmr-server/pools/p/state)" normal "the pool serves with member 41 alone"
  verify "every acknowledged write reads back from member 41" "$uri"
else
  is "$(rmradm_n 1 get rmr-server/pools/p/state) $(rmradm_n 3 get rmr-server/pools/p/state)" \
    "normal normal" "the pool serves with members 41 and 43"
  verify "every acknowledged write reads back from members 41 and 43" "$uri"
fi
start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 60 --timeout 20
w=$BG_PID
sleep 3
kill_pid "$NBDKIT_PID" KILL
rc=0
wait "$w" || rc=$?
is "$rc" 3 "the checker saw the compute host die again (write C)"
d1=$(dirty_count 1 42)
diag "node 1 records $d1 chunks for member 42"

node_start 2 p 32M "$AL
sync_start=manual"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s read-policy=member:42
wait_leg_normal e 2 20
_wait_until 10 own_known &&
  ok "node 2's own map holds the $d1+ chunks node 1 recorded ($(dirty_count 2 42))" ||
  not_ok "node 2's own map holds the $d1+ chunks node 1 recorded (got $(dirty_count 2 42); node 1: $(dirty_count 1 42))"
rmradm_n 2 set rmr-server/pools/p/sync start >&2
wait_in_sync 2 60 && ok "node 2 resynced again" || not_ok "node 2 resynced again"
maps_clean 20 "every map is clean on $(every nodes) again"
verify_member 2 "every acknowledged write reads back through member 42 (B and C)"
kill_pid "$NBDKIT_PID"
verify "node 2's data area alone holds every acknowledged write" STORE:2
verify "node 1's data area alone holds every acknowledged write" STORE:1
if [[ $rf -lt 3 ]]; then
  ok "the legs are byte-identical" legs_identical 1 2 "$size"
  done_testing
  exit 0
fi
verify "node 3's data area alone holds every acknowledged write" STORE:3
ok "the legs are byte-identical" all_legs_identical "$size"

# ---------------------------------------------------------------------
# 3. (RF=3) The same outage under min-legs=2: the assemble without
#    member 42 needs no force.

# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s min-legs=2
node_kill 2 KILL
start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
  --queue 16 --flush-every 64 --seconds 60 --timeout 20
w=$BG_PID
_wait_until 30 some || true
kill_pid "$NBDKIT_PID" KILL
rc=0
wait "$w" || rc=$?
is "$rc" 3 "the checker saw the compute host die (write D, min-legs=2)"
d1=$(dirty_count 1 42)
d3=$(dirty_count 3 42)
[[ "$d1" -ge 32 && "$d3" -ge 32 ]] &&
  ok "nodes 1 and 3 both record the chunks member 42 missed ($d1, $d3)" ||
  not_ok "nodes 1 and 3 both record the chunks member 42 missed (got '$d1', '$d3')"
# shellcheck disable=SC2046
if try_nbdkit e pool=p $(servers $(all_nodes)) timeout=3s min-legs=2; then
  ok "with min-legs=2 the assemble without member 42 goes on without force"
  is "$(rmradm_n 1 get rmr-server/pools/p/state) $(rmradm_n 3 get rmr-server/pools/p/state)" \
    "normal normal" "the pool serves with members 41 and 43 (min-legs=2)"
  verify "every acknowledged write reads back from members 41 and 43 (D)" "$uri"
  kill_pid "$NBDKIT_PID"
else
  not_ok "with min-legs=2 the assemble without member 42 goes on without force"
  diag "$(tail -n 5 "$tmpdir/e.log")"
  # Go on with force=1, to check the rest.
  # shellcheck disable=SC2046
  nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s min-legs=2 force=1
  kill_pid "$NBDKIT_PID"
fi
d1=$(dirty_count 1 42)
node_start 2 p 32M "$AL
sync_start=manual"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers $(all_nodes)) timeout=3s min-legs=2 \
  read-policy=member:42
wait_leg_normal e 2 20
_wait_until 10 own_known &&
  ok "node 2's own map holds the $d1+ chunks node 1 recorded ($(dirty_count 2 42))" ||
  not_ok "node 2's own map holds the $d1+ chunks node 1 recorded (got $(dirty_count 2 42); node 1: $(dirty_count 1 42))"
rmradm_n 2 set rmr-server/pools/p/sync start >&2
wait_in_sync 2 60 && ok "node 2 resynced (min-legs=2)" ||
  not_ok "node 2 resynced (min-legs=2)"
maps_clean 20 "every map is clean on $(every nodes) (min-legs=2)"
verify_member 2 "every acknowledged write reads back through member 42 (B, C and D)"
kill_pid "$NBDKIT_PID"
for i in $(all_nodes); do
  verify "node $i's data area alone holds every acknowledged write (D)" "STORE:$i"
done
ok "the legs are byte-identical (min-legs=2)" all_legs_identical "$size"
done_testing
