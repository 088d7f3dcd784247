#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-power-loss.sh: storage nodes whose machines lose power, for real
# (DESIGN 6, "storage node power loss").  Node 1's store is on a disk
# with a volatile write cache (tests/volatile-fs): what it wrote and did
# not make durable (fdatasync, FUA) is gone in a cut, and it comes back
# with a new boot id (tests/with-boot-id).  Writes here are acknowledged
# without flushes, so most of what member 41 acknowledged before a cut is
# gone from its store afterwards, and its peers never recorded those
# writes as missed (member 41 had done them).  Only its own recent-write
# record knows where they were, and only if it treats that record as
# stale for itself after a new boot.  The race this pins: a member that
# trusts its record after a power loss (as after a mere kill) comes back
# "current" and serves the older data its disk kept.
#
#   1. node 1 loses power after writes (none during its outage: only
#      its own record knows what it lost); the client and node 2 go on.
#      It comes back; every acknowledged write reads back through member
#      41 alone, and from its data area.
#   2. node 1 loses power and the compute host crashes at the same time;
#      node 1 comes back, is stopped cleanly and started again (its
#      record, not yet read by any client, must survive that); the next
#      nbdkit assembles: the same.
#   3. node 2 is killed, the writes go on to node 1 alone, and node 1
#      loses power; node 2 comes back first, then node 1.  Node 1's record
#      says it may have lost writes, and its map says node 2 missed
#      writes, in the same chunks: node 1 is the best copy of those and
#      keeps them: when node 2 left, node 1 made every write node 2 can
#      hold durable (the client's departure barrier).  Waiting there for
#      node 2 left them dirty for both, and every IO to them failed, for
#      ever.  The pool serves again, every
#      flushed write survives, the legs end byte-identical.
#   4. every machine loses power at once (each disk keeps a different
#      half of its cache): every flushed write survives, through the pool
#      and through each member, and the legs end byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/power.sh"

seq_init 2
power_init
power_disk 1
power_disk 2

# cached_ok I DESC: ok DESC if node I's disk holds pages not yet durable.
cached_ok ()
{
  local cached
  cached=$(cat "$tmpdir/disk-$1/.power")
  [[ "${cached#cached }" -gt 0 ]] &&
    ok "$2 (${cached#cached } pages not yet durable)" ||
    not_ok "$2 (expected pages not yet durable, got '$cached')"
}

# cut_lost I DESC: power_cut I, and ok DESC if its disk lost pages.
cut_lost ()
{
  cached_ok "$1" "$2"
  power_cut "$1"
}

writer ()
{
  start_bg "$tmpdir/w.pid" "$checker" write "$uri" "$J" --blocks 4096 \
    --queue 16 --seconds 60 --timeout 20 "$@"
  w=$BG_PID
}

# settled AFTER N: both nodes resynced and every map clean AFTER (a
# description), and every flushed write reads back through member 41
# (nbdkit e reads from it), in sequence N.
settled ()
{
  local i
  for i in 1 2; do
    wait_in_sync "$i" 60 && ok "node $i resynced after $1" ||
      not_ok "node $i resynced after $1"
  done
  maps_clean 20 "every map is clean on both nodes after $1"
  verify_member 1 "every flushed write reads back through member 41 ($2)" \
    --strict-flushed
}

acked ()
{
  [[ $(_acks) -ge $1 ]]
}

# Node 1's record holds the whole device (it never evicts an extent, so
# nothing makes its writes durable but a flush), node 2's one 64K extent:
# what node 1 loses in a cut is mostly outside node 2's record.
AL1="al_extents=64
al_extent_size=1M"
AL2="al_extents=1
al_extent_size=64K"
node_start 1 p 32M "$AL1"
node_start 2 p 32M "$AL2"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s read-policy=member:41
ok "write A on both legs, flushed" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 4000 --flush-every 64

# ---------------------------------------------------------------------
# 1. Node 1 loses power; the client goes on with node 2.

ok "write B on both legs, never flushed" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 3000 --flush-every 0 \
  --no-final-flush
cut_lost 1 "node 1 loses power after writes"
node_start 1 p 32M "$AL1"
wait_leg_normal e 1 20
wait_in_sync 1 60 && ok "node 1 resynced" || not_ok "node 1 resynced"
maps_clean 20 "every map is clean on both nodes"
verify_member 1 "every acknowledged write reads back through member 41"
verify "node 1's data area holds every acknowledged write" STORE:1

# ---------------------------------------------------------------------
# 2. Node 1 loses power and the compute host crashes, together.

writer --flush-every 0
_wait_until 30 acked $(($(_acks) + 3000)) || true
kill_pid "$NBDKIT_PID" KILL
cut_lost 1 "node 1 loses power as the compute host crashes"
rc=0
wait "$w" || rc=$?
is "$rc" 3 "the checker saw the compute host die"
node_start 1 p 32M "$AL1"
# A clean stop and start before the assemble: the record found after
# the power loss must come through it, whole and still of the old boot.
node_kill 1 TERM
node_start 1 p 32M "$AL1"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s read-policy=member:41
is "$(rmr_states)" "normal
normal" "nbdkit assembled the pool on both members"
wait_in_sync 1 60 && ok "node 1 resynced after the assemble" ||
  not_ok "node 1 resynced after the assemble"
maps_clean 20 "every map is clean on both nodes after the assemble"
verify_member 1 "every acknowledged write reads back through member 41 (2)"
verify "node 1's data area holds every acknowledged write (2)" STORE:1
verify "node 2's data area holds every acknowledged write (2)" STORE:2

# ---------------------------------------------------------------------
# 3. Node 2 killed, then node 1 loses power: a lone survivor's power loss.
#    Writes acknowledged by node 1 alone and not yet flushed may be gone.

writer --flush-every 64
_wait_until 30 acked $(($(_acks) + 1000)) || true
node_kill 2 KILL
_wait_until 30 acked $(($(_acks) + 2000)) || true
d=$(dirty_count 1 42)
[[ "$d" -gt 0 ]] && ok "node 1 records $d chunks missed by member 42" ||
  not_ok "node 1 records chunks missed by member 42 (got '$d')"
# (Its disk may hold nothing to lose: with a member away every write
# marks a map page, saved with an fdatasync.  The record is stale for it
# all the same: a new boot.)
power_cut 1
kill_pid "$w" TERM
wait "$w" || true
node_start 2 p 32M "$AL2"
node_start 1 p 32M "$AL1"
wait_leg_normal e 1 20
wait_leg_normal e 2 20
ok "writes go on after both are back" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 1000 --timeout 30
settled "the lone power loss" 3
ok "the legs are byte-identical after the lone power loss" \
  legs_identical 1 2 "$size"

# ---------------------------------------------------------------------
# 4. Every machine loses power at once.  Acknowledged writes not covered
#    by a flush may be gone (NBD promises nothing for them); flushed ones
#    may not, and the legs must agree again.

writer --flush-every 2000
_wait_until 30 acked $(($(_acks) + 3000)) || true
power_blackout "$NBDKIT_PID" 1 2
# Node 2's one-extent record makes its writes durable as it goes: its
# disk may hold nothing to lose.
cached_ok 1 "node 1 loses power with every other machine"
diag "node 2's disk: $(cat "$tmpdir/disk-2/.power")"
for i in 1 2; do power_cut "$i" "$i"; done
wait "$w" || true
node_start 1 p 32M "$AL1"
node_start 2 p 32M "$AL2"
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s read-policy=member:41
is "$(rmr_states)" "normal
normal" "nbdkit assembled the pool on both members after the blackout"
verify "every flushed write reads back through the pool" "$uri" --strict-flushed
settled "the blackout" 4
kill_pid "$NBDKIT_PID"
for i in 1 2; do
  verify "node $i's data area holds every flushed write (4)" "STORE:$i" \
    --strict-flushed
done
ok "the legs are byte-identical" legs_identical 1 2 "$size"
done_testing
