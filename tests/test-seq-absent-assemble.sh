#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-absent-assemble.sh: a member an assemble went on without
# comes back through its recent-write record.
#
# RF=3, min-legs=2.  Nodes 2 and 3 drop the client's packets; write W
# reaches node 1 alone and is never acknowledged; the compute host
# crashes.  Nodes 2 and 3 restart (W never reached them), node 1 is
# stopped.  The next nbdkit assembles with nodes 2 and 3 (two of three,
# min-legs 2: every acknowledged write is on one of them) and makes them
# the source of everything: it never read node 1's record, the only one
# that names W's extent.  When node 1 comes back, its daemon says its
# record is clean (it stopped cleanly, on the same boot), so before the
# fix the hand-over ignored it: node 1 kept W and nodes 2 and 3 did not,
# with no dirty bit anywhere, and reads of that block depended on the
# leg.  A member that missed an open has its record's chunks taken from
# the others (recorded on them too, before it is given them); the legs
# end byte-identical.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

requires nbdsh --version
requires nft --version
seq_init 3

for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=10s min-legs=2
ok "write A on every leg (the first 16 MiB)" \
  "$checker" write "$uri" "$J" --blocks 4096 --writes 2000

# W, far from A: in no member's record but node 1's.
woff=$((24 << 20))
client_block 2
client_block 3
start_bg "$tmpdir/w.pid" nbdsh -u "$uri" -c "
h.aio_pwrite(b'W' * 65536, $woff)
import time
time.sleep(60)"
wpid=$BG_PID
_on_node1 ()
{
  store_extract 1 $((woff + 65536)) "$tmpdir/n1.bin"
  [[ "$(tail -c 65536 "$tmpdir/n1.bin" | tr -d W | wc -c)" -eq 0 ]]
}
ok "write W reaches node 1 alone, unacknowledged" _wait_until 5 _on_node1
kill_pid "$NBDKIT_PID" KILL
node_kill 2 KILL
node_kill 3 KILL
node_kill 1 TERM
kill_pid "$wpid" KILL
client_unblock 2
client_unblock 3
legs_identical 1 2 "$size" >&2 && not_ok "node 1 alone holds W" ||
  ok "node 1 alone holds W"

node_start 2 p 32M
node_start 3 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=10s min-legs=2
wait_leg_normal e 2 30
wait_leg_normal e 3 30
is "$(leg_state e 2) $(leg_state e 3)" "normal normal" \
  "nbdkit assembles with nodes 2 and 3 (node 1 is away)"
ok "every acknowledged write reads back" "$checker" verify "$uri" "$J"

# Node 1 back with its background resync stopped, so that what the
# hand-over recorded stays to be seen: W's chunks, dirty for member 41
# on node 1 and, before node 1 is given them, on the members that serve
# them (a resync already under way on node 1 clears its own bit only if
# no watching peer holds one).
d2=$(dirty_count 2 41)
d3=$(dirty_count 3 41)
node_start 1 p 32M sync_start=manual
wait_leg_normal e 1 30
is "$(leg_state e 1)" normal "node 1 comes back"
_more () { [[ "$(dirty_count 2 41)" -gt "$d2" && "$(dirty_count 3 41)" -gt "$d3" ]]; }
ok "nodes 2 and 3 record W's chunks for member 41 ($d2, $d3 before)" \
  _wait_until 10 _more
rmradm_n 1 set rmr-server/pools/p/sync start >&2
for i in 1 2 3; do
  wait_in_sync "$i" 60 && ok "node $i resynced" || not_ok "node $i resynced"
done
maps_clean 20 "every map is clean on every node"
kill_pid "$NBDKIT_PID"
ok "the legs end byte-identical" all_legs_identical "$size"
done_testing
