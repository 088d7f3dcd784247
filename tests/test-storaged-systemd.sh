#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-storaged-systemd.sh: rmr-storaged as systemd runs it (issue 13
# item 3), without systemd: a Unix datagram socket of our own stands in
# for NOTIFY_SOCKET (tests/notify-listen.py), and nbdkit is socket-
# activated by systemd-socket-activate as nbdkit-rmr@.socket would.
#   - READY=1 once the daemon listens with the config's pools attached;
#   - SIGHUP: a pool new in the file is added, its store created, and it
#     serves IO; RELOADING=1 (with MONOTONIC_USEC) then READY=1;
#   - a changed running pool and a changed [storaged] key are logged,
#     naming pool and key, and left as they are; a changed resync rate
#     is applied at once, also to the resync running;
#   - a file that no longer parses is refused with one line naming the
#     bad key, nothing changes, and the daemon goes on serving;
#   - a new pool whose store fails is undone: no half-joined pool stays;
#   - STOPPING=1 on SIGTERM; without NOTIFY_SOCKET nothing is sent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
CLUSTER_TLS=

requires /usr/bin/python3 --version
requires nbdsh --version
requires nbdkit --version
requires systemd-socket-activate --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

port=$(free_port)
ctl=$tmpdir/d.sock
conf=$tmpdir/d.conf
log=$tmpdir/d.log
nlog=$tmpdir/notify.log
listen=$(transport_url "127.0.0.1:$port")
adm () { "$RMRADM" -s "$ctl" "$@"; }

storaged_section ()
{
  printf '%s\n' "[storaged]" "listen=$listen" "control=$ctl" "$@"
}
pool_section ()
{
  printf '%s\n' "[pool $1]" "member_id=$2" "store=$tmpdir/$1.img" \
    "mapped_size=$3"
}
storaged_section >"$conf"
pool_section a 1 8M >>"$conf"

: >"$nlog"
start_bg "$tmpdir/n.pid" /usr/bin/python3 "$SRC_DIR/tests/notify-listen.py" \
  "$tmpdir/notify" "$nlog"
wait_for_socket "$tmpdir/notify" 10
NOTIFY_SOCKET=$tmpdir/notify start_bg "$tmpdir/d.pid" "${CHECKED[@]}" \
  "$RMR_STORAGED" --foreground --config "$conf" 2>"$log"
dpid=$BG_PID

_notified () { grep -q "$1" "$nlog"; }
if _wait_until 15 _notified '^READY=1'; then
  ok "READY=1 is sent"
else
  not_ok "READY=1 is sent"
  diag "notify log: $(cat "$nlog"); daemon log: $(tail -n 5 "$log")"
fi
ok "by then it listens" _port_listening 127.0.0.1 "$port"
is "$(adm get rmr-server/pools/a/state)" registered \
  "by then the config's pool has its store"

# SIGHUP: pool b is new in the file.
pool_section b 2 4M >>"$conf"
kill -HUP "$dpid"
# The pool appears (state empty) a moment before its store is attached.
_has_b () { [[ "$(adm get rmr-server/pools/b/state 2>/dev/null)" == registered ]]; }
_wait_until 15 _has_b || true
is "$(adm get rmr-server/pools/b/state 2>&1)" registered \
  "SIGHUP: the pool new in the file is joined, its store created"
ok "its store file exists" test -s "$tmpdir/b.img"
ok "SIGHUP: RELOADING=1 with MONOTONIC_USEC" \
  _wait_until 10 _notified '^RELOADING=1 MONOTONIC_USEC=[0-9]'
_ready_after_reload () { sed -n '/^RELOADING=1/,$p' "$nlog" | grep -q '^READY=1'; }
ok "then READY=1 again" _wait_until 10 _ready_after_reload
ok "the reload is logged with what it added" _wait_until 10 grep -q \
  "SIGHUP: config $conf reloaded: 1 pools added, 0 failed" "$log"

nbdkit_start e pool=b "server=$listen"
ok "the added pool serves IO" nbdsh -u "$(nbd_uri e)" \
  -c 'h.pwrite(b"reloaded" * 512, 8192); h.flush()
assert h.pread(4096, 8192) == b"reloaded" * 512'
kill_pid "$NBDKIT_PID"

# A running pool changed, a [storaged] key changed: logged, not applied.
{
  storaged_section "max_connections=99"
  pool_section a 1 16M
  pool_section b 2 4M
  echo "sync_rate=10M"
} >"$conf"
kill -HUP "$dpid"
ok "a changed running pool: one line naming the pool and its keys" \
  _wait_until 10 grep -q \
  "\[pool a\]: mapped_size changed in the config; left as it is" "$log"
ok "a changed resync rate is applied at once, logged" grep -q \
  "\[pool b\]: sync_rate=10485760 sync_min_rate=16777216 (bytes/s) applied" "$log"
ok "... and not listed as left as it is" bash -c \
  "! grep -q 'pool b.*changed in the config' '$log'"
ok "... the pool's resync runs at it" grep -q "^rate_limit: 10.5 MB/s" \
  <<<"$(adm get rmr-server/pools/b/sync)"
ok "a changed [storaged] key: named, left for a restart" grep -q \
  "\[storaged\]: max_connections changed in the config; left as it is (restart to apply)" \
  "$log"
is "$(adm get brmr-server/stores/a/mapped_size)" 16384 \
  "pool a keeps its mapped_size (8M)"

# A broken file: refused, one line naming the key, nothing changed.
cp "$conf" "$tmpdir/good.conf"
pool_section c 3 4M >>"$conf"
echo "sync_parallel=lots" >>"$conf"
before=$(grep -c "config refused" "$log" || true)
kill -HUP "$dpid"
_refused () { [[ $(grep -c "config refused" "$log") -gt $before ]]; }
if _wait_until 10 _refused; then
  line=$(grep "config refused" "$log" | tail -n 1)
  ok "a file that no longer parses is refused" true
  ok "... with one line naming the bad key" \
    grep -q "config refused, nothing changed: $conf: \[pool c\]: sync_parallel: 'lots'" \
    <<<"$line"
else
  not_ok "a file that no longer parses is refused"
  diag "$(tail -n 5 "$log")"
fi
ok "... and nothing of it is applied (no pool c)" \
  bash -c "! '$RMRADM' -s '$ctl' get rmr-server/pools/c/state"
ok "... no store c created" test ! -e "$tmpdir/c.img"
ok "the daemon still serves" _port_listening 127.0.0.1 "$port"
is "$(adm get rmr-server/pools/a/state)" registered "pool a is as it was"

# A new pool whose store cannot be made (its directory does not exist):
# undone with its peer, named, the rest goes on.
cp "$tmpdir/good.conf" "$conf"
printf '%s\n' "[pool d]" "member_id=4" "store=$tmpdir/none/d.img" \
  "mapped_size=8M" "peers=$(transport_url "127.0.0.1:$(free_port)")" >>"$conf"
pool_section e 5 4M >>"$conf"
kill -HUP "$dpid"
ok "a new pool whose store fails is named" _wait_until 10 grep -q \
  "config $conf: \[pool d\]: " "$log"
ok "... the others are added" _wait_until 10 grep -q \
  "reloaded: 1 pools added, 1 failed" "$log"
_no_d () { ! adm ls | grep -q '/pools/d/'; }
ok "... and it is undone: no pool d, server or sync side" _no_d
is "$(adm get rmr-server/pools/e/state)" registered "pool e is added"

# nbdkit socket-activated, as nbdkit-rmr@.socket starts it.
start_bg "$tmpdir/sa.pid" systemd-socket-activate -l "$tmpdir/act.sock" \
  "${CHECKED[@]}" nbdkit "$RMR_PLUGIN" pool=e "server=$listen" \
  control="$tmpdir/act.ctl"
wait_for_socket "$tmpdir/act.sock" 10
ok "socket-activated nbdkit serves the pool" \
  nbdsh -u "nbd+unix:///?socket=$tmpdir/act.sock" \
  -c 'h.pwrite(b"socket!!" * 512, 0); assert h.pread(4096, 0) == b"socket!!" * 512'
kill_pid "$BG_PID"

kill_pid "$dpid"
ok "STOPPING=1 on SIGTERM" _notified '^STOPPING=1'

# Without NOTIFY_SOCKET: nothing is sent (and it starts as before).  Its
# stderr is the journal's stream (JOURNAL_STREAM names it, as systemd
# does): each line starts with its syslog priority, without a timestamp.
: >"$nlog"
log=$tmpdir/journal.log
: >"$log"
{ storaged_section; pool_section a 1 8M; pool_section b 2 4M; } >"$conf"
stream=$(stat -c %d:%i "$log")
JOURNAL_STREAM=$stream start_bg "$tmpdir/d2.pid" \
  "${CHECKED[@]}" "$RMR_STORAGED" --foreground --config "$conf" 2>>"$log"
if ! _wait_until 15 grep -q "ready (pid $BG_PID)" "$log"; then
  diag "$(tail -n 5 "$log")"
  fail_test "the daemon did not start again"
fi
echo "colour=red" >>"$conf"
kill -HUP "$BG_PID"
_wait_until 10 grep -q "config refused" "$log" || true
kill_pid "$BG_PID"
is "$(wc -c <"$nlog")" 0 "without NOTIFY_SOCKET nothing is sent"
ok "to the journal: the priority first, no timestamp" \
  grep -qx "<6>rmr-storaged: info: ready (pid $BG_PID)" "$log"
_warn_prio () { grep -q "^<4>rmr-storaged: warning: " "$log"; }
ok "... a warning at priority 4" _warn_prio
done_testing
