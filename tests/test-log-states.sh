#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-log-states.sh: what the logs say (issue 13 item 5).  Every change
# of a leg's state is one info line in nbdkit's log naming the pool, the
# member, its address and the reason (normal -> failed when a node
# stops, failed -> reconnecting and reconnecting -> normal when it is
# back); the storage daemon logs its pool's changes of state with the
# reason; and neither logs anything per IO: a thousand writes and reads
# add no line to either log; and with every leg gone, a client that
# keeps writing gets each failure back while the log gets a few lines a
# second, not one per request.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

node_start 1 p 16M 2>"$tmpdir/n1.log"
node_start 2 p 16M 2>"$tmpdir/n2.log"
nlog=$tmpdir/nbdkit.log
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) timeout=3s 2>"$nlog"
wait_leg_normal e 2 20

# No line per IO, on either side.  The start-up's own lines first: each
# node's sync pool joins its peer on first use (asking its member id
# joins it), logged on both sides; then the logs stay still.
lines () { cat "$nlog" "$tmpdir/n1.log" "$tmpdir/n2.log" | wc -l; }
for i in 1 2; do
  for s in $(rmradm_n "$i" ls rmr-client/pools/p/sessions |
    sed -n 's|.*/sessions/\([^/]*\)/member_id$|\1|p'); do
    rmradm_n "$i" get "rmr-client/pools/p/sessions/$s/member_id" >/dev/null
  done
done
_still () { local n; n=$(lines); sleep 1; [[ "$(lines)" == "$n" ]]; }
_wait_until 20 _still || diag "the logs kept growing before the IO"
before=$(lines)
nbdsh -u "$(nbd_uri e)" -c '
for i in range(1000):
    h.pwrite(b"x" * 4096, (i * 4096) % (16 << 20))
    h.pread(4096, (i * 4096) % (16 << 20))
h.flush()'
is "$(lines)" "$before" "a thousand writes and reads add no log line"

addr2=${NODE_ADDR[2]}
node_kill 2 TERM
nbdsh -u "$(nbd_uri e)" -c 'h.pwrite(b"y" * 4096, 0); h.flush()' || true
_failed () { [[ "$(leg_state e 2)" == failed ]]; }
_wait_until 15 _failed || diag "leg 2 did not fail"
_line () { grep -Eq "$1" "$nlog"; }
ok "nbdkit: one info line for the failed leg, with pool, member and reason" \
  _wait_until 5 _line \
  "^nbdkit: rmr: info: pool p: member 42 \(.*$addr2\): normal -> failed \(.+\)$"
is "$(grep -c 'member 42 .*: normal -> failed' "$nlog")" 1 \
  "... one line, however many requests met the failed leg"

node_start 2 p 16M 2>>"$tmpdir/n2.log"
wait_leg_normal e 2 30
ok "nbdkit: failed -> reconnecting, with the reason" _wait_until 5 _line \
  "^nbdkit: rmr: info: pool p: member 42 \(.*\): failed -> reconnecting \(the server answers again\)$"
ok "nbdkit: reconnecting -> normal, with the reason" _wait_until 5 _line \
  "^nbdkit: rmr: info: pool p: member 42 \(.*\): reconnecting -> normal \(.+\)$"
_storaged_line ()
{
  grep -Eq "rmr-storaged: info: pool p: [a-z_]+ -> [a-z_]+ \(.+\)$" "$1"
}
ok "rmr-storaged: its pool's changes of state, with the reason" \
  _storaged_line "$tmpdir/n1.log"
ok "... on the restarted node too" _storaged_line "$tmpdir/n2.log"

# Every leg gone while a client keeps writing: each request fails, and
# the log gets at most a few lines a second, not one per request.
node_kill 1 TERM
node_kill 2 TERM
_down () { [[ "$(leg_state e 1)" != normal && "$(leg_state e 2)" != normal ]]; }
_wait_until 15 _down || diag "the legs did not leave normal"
before=$(grep -c 'pwrite: ' "$nlog" || true)
t0=$(date +%s)
failed=$(nbdsh -u "$(nbd_uri e)" -c '
n = 0
for i in range(3000):
    try:
        h.pwrite(b"z" * 4096, (i * 4096) % (16 << 20))
    except nbd.Error:
        n += 1
print(n)')
secs=$(($(date +%s) - t0 + 2)) # the seconds it may span
is "$failed" 3000 "3000 writes with no leg left all fail"
n=$(($(grep -c 'pwrite: ' "$nlog" || true) - before))
[[ $n -ge 1 && $n -le $((5 * secs)) ]] &&
  ok "... and log at most five lines a second ($n lines in ${secs}s)" ||
  not_ok "... and log at most five lines a second ($n lines in ${secs}s)"
nbdsh -u "$(nbd_uri e)" -c 'h.pwrite(b"z" * 4096, 0)' 2>/dev/null || true
sleep 1.1
nbdsh -u "$(nbd_uri e)" -c 'h.pwrite(b"z" * 4096, 0)' 2>/dev/null || true
ok "... the rest counted in one line" \
  grep -Eq "error: [0-9]+ more failed requests in an earlier second \(not logged one by one\)$" "$nlog"
kill_pid "$NBDKIT_PID"
done_testing
