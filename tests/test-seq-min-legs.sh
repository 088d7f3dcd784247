#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-seq-min-legs.sh: an assemble counts with the min-legs the writes
# were acknowledged under, not only with its own.
#
# RF=3 with min-legs=1: nodes 1 and 2 are killed -9, writes B go on and
# are acknowledged by node 3 alone; nbdkit is killed, node 3 stays away.
# An operator restarts nbdkit with min-legs=2: with two of three members
# back, 2 + 2 > 3 would say every write is on a member here, but B is on
# node 3 only.  The members saved the min-legs of the last enable (1), so
# the assemble refuses and names member 43.  When node 3 returns, the
# assemble goes on and every acknowledged write reads back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

checker=$SRC_DIR/tests/rmr-checker
requires /usr/bin/python3 -c 'import nbd'
requires ip -V
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN" "$checker"
make_tmpdir
cluster_init 3 net

J=$tmpdir/journal
for i in 1 2 3; do node_start "$i" p 32M; done
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=3s chunk-size=64K min-legs=1
ok "write A on every leg" \
  "$checker" write "$(nbd_uri e)" "$J" --blocks 4096 --writes 3000
node_kill 1 KILL
node_kill 2 KILL
ok "writes B acknowledged by node 3 alone (min-legs=1)" \
  "$checker" write "$(nbd_uri e)" "$J" --blocks 4096 --writes 3000
kill_pid "$NBDKIT_PID" KILL
node_kill 3
node_start 1 p 32M
node_start 2 p 32M

rc=0
# shellcheck disable=SC2046
out=$(netns_exec cli timeout 60 nbdkit -f -U "$tmpdir/x.sock" "$RMR_PLUGIN" \
  pool=p $(servers 1 2 3) timeout=3s min-legs=2 $(plugin_tls_args) 2>&1) || rc=$?
[[ $rc -ne 0 && "$out" == *"member 43 is missing and may hold the latest writes"* &&
   "$out" == *"min-legs 1"* ]] &&
  ok "min-legs=2 now: the assemble still refuses without member 43" ||
  { not_ok "min-legs=2 now: the assemble still refuses without member 43"
    diag "status $rc: $(tail -n 3 <<<"$out")"; }

node_start 3 p 32M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2 3) timeout=3s min-legs=2
ok "with member 43 back every acknowledged write reads back" \
  "$checker" verify "$(nbd_uri e)" "$J"
for i in 1 2; do
  wait_in_sync "$i" 60 && ok "node $i resynced" || not_ok "node $i resynced"
done
kill_pid "$NBDKIT_PID"
ok "legs 1 and 3 are byte-identical" legs_identical 1 3 $((32 << 20))
ok "legs 2 and 3 are byte-identical" legs_identical 2 3 $((32 << 20))
done_testing
