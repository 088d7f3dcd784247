#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-fencing.sh: two nbdkit processes on the same pool.  The second
# one's assemble starts a new generation and fences the first: from then
# on the first returns EIO for every new request, never a silent success,
# nothing it sends reaches any store, and it cannot disturb the second
# (its reconnects are refused as stale), nor change the member table
# behind its back (a live leg add or delete of the fenced client is
# refused and leaves every member's generation and table as they were).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 3

node_start 1 p 16M
node_start 2 p 16M
node_start 3 p 16M   # a fresh store, for a live add
# shellcheck disable=SC2046
nbdkit_start old pool=p $(servers 1 2) timeout=3s
old=$NBDKIT_PID
ok "the first client writes" nbdsh -u "$(nbd_uri old)" \
  -c 'h.pwrite(b"A" * 4096, 0); h.flush()'
g1=$(rmradm_n 1 get rmr-server/pools/p/generation)

# shellcheck disable=SC2046
nbdkit_start new pool=p $(servers 1 2) timeout=3s
is "$(rmradm_n 1 get rmr-server/pools/p/generation)" $((g1 + 1)) \
  "the second client assembled a new generation"

out=$(nbdsh -u "$(nbd_uri old)" -c '
import errno
for off in (4096, 8192, 12288):
    try:
        h.pwrite(b"Z" * 4096, off)
        print("write succeeded")
    except nbd.Error as e:
        print("write failed", e.errnum == errno.EIO)
try:
    h.pread(4096, 0)
    print("read succeeded")
except nbd.Error as e:
    print("read failed", e.errnum == errno.EIO)
' 2>&1)
diag "$out"
[[ "$out" != *succeeded* && $(grep -c "failed True" <<<"$out") -eq 4 ]] &&
  ok "the fenced client fails every new request with EIO" ||
  not_ok "the fenced client fails every new request with EIO"

ok "the second client works and sees none of the fenced client's writes" \
  nbdsh -u "$(nbd_uri new)" -c '
assert h.pread(4096, 0) == b"A" * 4096
for off in (4096, 8192, 12288):
    assert h.pread(4096, off) != b"Z" * 4096, off
h.pwrite(b"B" * 4096, 16384)
h.flush()
'
sleep 4      # the fenced client's reconnect thread tries meanwhile
ok "the fenced client's attempts do not disturb it" nbdsh -u "$(nbd_uri new)" \
  -c 'assert h.pread(4096, 16384) == b"B" * 4096; h.pwrite(b"C" * 4096, 0)'
is "$(rmradm_c old get "rmr-client/pools/p/sessions/$(rmradm_c old ls rmr-client/pools/p/sessions | grep -m1 /last_error | cut -d/ -f5)/state")" \
  failed "the fenced client's legs stay failed"
g2=$(rmradm_n 1 get rmr-server/pools/p/generation)
out=$(rmradm_c old set rmr-client/pools/p/add_sess \
  "sessname=x path=$(node_url 3)" 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"taken over"* ]] &&
  ok "the fenced client cannot add a leg" ||
  not_ok "the fenced client cannot add a leg (status $rc: $out)"
s1=$(rmradm_c old ls rmr-client/pools/p/sessions | grep -m1 /state | cut -d/ -f5)
out=$(rmradm_c old set "rmr-client/pools/p/sessions/$s1/del_sess" mode=delete \
  2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"taken over"* ]] &&
  ok "the fenced client cannot delete a leg" ||
  not_ok "the fenced client cannot delete a leg (status $rc: $out)"
is "$(rmradm_n 1 get rmr-server/pools/p/generation) \
$(rmradm_n 2 get rmr-server/pools/p/generation) \
$(rmradm_n 1 get rmr-server/pools/p/members | grep -c member)" \
  "$g2 $g2 2" "the members' generation and table are unchanged"
is "$(rmradm_n 3 get rmr-server/pools/p/state)" registered \
  "the node it tried to add is untouched"
kill_pid "$old"
kill_pid "$NBDKIT_PID"
for i in 1 2; do
  store_extract "$i" 16384 "$tmpdir/head$i"
  ok "store $i never got the fenced writes" \
    /usr/bin/python3 -c "d = open('$tmpdir/head$i', 'rb').read(); assert b'Z' * 4096 not in d"
done
done_testing
