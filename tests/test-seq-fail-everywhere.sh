#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-fail-everywhere.sh: a write that fails on every leg, RF=2, both
# daemons up.  Node 1 does the write but its reply is lost (its replies to
# the client are dropped); node 2's store fails it (an injected IO error).
# The write is not acknowledged, and no leg records it for the other, yet
# the legs now differ.  The client remembers the range: whichever member
# comes back first serves its own copy, the other resyncs the range from
# it, and the legs end identical (before, they stayed different, and
# reads through either member returned different data).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
source "$(dirname "${BASH_SOURCE[0]}")/seq-functions.sh"

seq_init 2

replies_drop ()
{
  netns_exec n1 nft add table inet rmrrep
  netns_exec n1 nft add chain inet rmrrep out \
    '{ type filter hook output priority 0; }'
  netns_exec n1 nft add rule inet rmrrep out ip daddr 10.199.0.100 drop
}

node_start 1 p 32M
NODE_ARGS=--enable-fault-injection node_start 2 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=2s chunk-size=64K
ok "1 MiB of 0x11 on both legs" nbdsh -u "$uri" -c "
h.pwrite(b'\x11' * (1 << 20), 0)
h.flush()
"

replies_drop
rmradm_n 2 set brmr-server/stores/p/fault 'op=write count=1 errno=EIO' >&2
ok "a write that fails on both legs is not acknowledged" nbdsh -u "$uri" -c "
try:
    h.pwrite(b'\xaa' * 65536, 0)
except nbd.Error:
    pass
else:
    raise SystemExit('acknowledged')
"
is "$(rmradm_n 2 get brmr-server/stores/p/fault)" "op=write count=0 errno=5" \
  "node 2's store failed it"
for i in 1 2; do
  [[ "$(leg_state e "$i")" != normal ]] && ok "leg $i failed" ||
    not_ok "leg $i failed"
done
netns_exec n1 nft delete table inet rmrrep

wait_leg_normal e 1 30
wait_leg_normal e 2 30
is "$(leg_state e 1)/$(leg_state e 2)" normal/normal "both legs came back"
wait_in_sync 1 30 && ok "node 1 is in sync" || not_ok "node 1 is in sync"
wait_in_sync 2 30 && ok "node 2 is in sync" || not_ok "node 2 is in sync"
maps_clean 20 "every map is clean on both nodes"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((1 << 20))
done_testing
