#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-admin-flow.sh: the admin guide's client-side flow through the
# plugin's control socket.  nbdkit starts with only control=, and rmradm
# configures it step by step:
#   create: join_pool, add_sess mode=create, sessions/S/enable,
#           pool_enable, map_device; IO with nbdsh; unmap_device with a
#           connection still open; del_sess, leave_pool;
#   assemble after a graceful leave, with a leg to an address nobody
#           listens on (pool_enable fails, nothing half-opened), then the
#           auto pool enable at map_device; the data reads back;
#   a second pool q on the same two daemons exported at the same time;
#   assemble after a compute-client crash (kill -9) in a new nbdkit,
#           auto pool enable at map_device, the data reads back;
#   pool= on the command line combined with control=;
# and bad input: unknown key, bad values, duplicate address, mixed
# modes, unknown pool, size mismatch, leave_pool or del_sess while mapped,
# unknown or unmapped export names.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nbdinfo --version
requires nbdkit --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

cluster_init 2
# Both daemons serve pool p (16M) and pool q (8M, member ids 51 and 52).
for i in 1 2; do
  node_start "$i" p 16M "
[pool q]
member_id=$((50 + i))
store=$tmpdir/q$i.img
mapped_size=8M
peers=$(node_url $((3 - i)))"
done
A1=${NODE_ADDR[1]}
A2=${NODE_ADDR[2]}
# The nodes' paths, in the transport under test (RMR_TEST_TRANSPORT).
U1=$(node_url 1)
U2=$(node_url 2)
# The guide's "ip:HOST:PORT" and bare "HOST:PORT" forms mean tcp: under
# ucx the sessions that must connect take the ucx paths instead.
if [[ $RMR_TEST_TRANSPORT == tcp ]]; then
  IP1=ip:$A1 IP2=ip:$A2 BARE1=$A1 ip_form="ip:HOST:PORT form"
else
  IP1=$U1 IP2=$U2 BARE1=$U1 ip_form="ucx:HOST:PORT"
fi

sock=$tmpdir/c.sock
ctl=$tmpdir/c.ctl

# Start nbdkit with our plugin and ARGS, serving $sock, control $ctl.
start_client ()
{
  rm -f "$sock" "$ctl"
  # shellcheck disable=SC2046 # words
  start_bg "$tmpdir/c.pid" nbdkit -f -U "$sock" "$RMR_PLUGIN" \
    control="$ctl" "$@" $(plugin_tls_args)
  NBDKIT_PID=$BG_PID
  wait_for_socket "$sock" 15
  wait_for_socket "$ctl" 15
}

adm ()
{
  "$RMRADM" -s "$ctl" "$@"
}

uri ()
{
  echo "nbd+unix:///${1:-}?socket=$sock"
}

# adm_fails DESC PATTERN ARGS...: rmradm ARGS fails with a message
# matching PATTERN (grep -E).
adm_fails ()
{
  local desc=$1 pat=$2 out rc=0
  shift 2
  out=$(adm "$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 ]] && grep -qE -- "$pat" <<<"$out"; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "rmradm $* -> status $rc: $out"
    diag "expected a failure matching: $pat"
  fi
}

srv_state ()
{
  rmradm_n "$1" get "rmr-server/pools/$2/state"
}

_both_no_io ()
{
  [[ "$(srv_state 1 "$1") $(srv_state 2 "$1")" == "no_io no_io" ]]
}

_no_connection ()
{
  [[ "$(adm get "rmr-client/pools/$1/connections")" == 0 ]]
}

# Pattern writer and checker: 64K at OFF filled with the byte B.
nbd_write ()
{
  nbdsh -u "$1" -c "
h.pwrite(bytes([$3]) * 65536, $2)
h.flush()
"
}

nbd_check ()
{
  nbdsh -u "$1" -c "
assert h.pread(65536, $2) == bytes([$3]) * 65536
"
}

# ---------------------------------------------------------------------
# 1. Create flow.  Pool options without pool= are the defaults of the
# pools configured through the socket: a short timeout makes an
# unreachable leg fail fast (section 3).
start_client timeout=5s

is "$(adm ls rmr-client/pools; adm ls brmr-client/ctl/devices)" "" \
  "nbdkit with only control=: no pool, no device"
if nbdsh -u "$(uri)" -c 'pass' 2>/dev/null; then
  not_ok "a connection before any map_device is refused"
else
  ok "a connection before any map_device is refused"
fi

adm_fails "join_pool: unknown key refused" "colour" \
  set rmr-client/ctl/join_pool 'poolname=p colour=red'
adm_fails "join_pool: bad pool name refused" "poolname" \
  set rmr-client/ctl/join_pool 'poolname=a/b'
adm_fails "join_pool: chunk_size not a power of two refused" "chunk_size" \
  set rmr-client/ctl/join_pool 'poolname=p chunk_size=100000'
ok "join_pool poolname=p chunk_size=65536" \
  adm set rmr-client/ctl/join_pool 'poolname=p chunk_size=65536'
adm_fails "join_pool: the same pool twice refused" "exists already" \
  set rmr-client/ctl/join_pool 'poolname=p'
is "$(adm get rmr-client/pools/p/state)" joined "pool p is joined"
is "$(adm ls rmr-client/pools/p/sessions)" "" "pool p has no session yet"

ok "add_sess s1 mode=create" \
  adm set rmr-client/pools/p/add_sess "sessname=s1 path=$U1 mode=create"
adm_fails "add_sess: unknown key refused" "colour" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$U2 colour=red"
adm_fails "add_sess: bad path refused" "path" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$(transport_url nowhere)"
adm_fails "add_sess: bad mode refused" "mode" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$U2 mode=fast"
adm_fails "add_sess: a second session to the same node refused" \
  "already" set rmr-client/pools/p/add_sess "sessname=s9 path=$BARE1"
adm_fails "add_sess: the same session name twice refused" "already" \
  set rmr-client/pools/p/add_sess "sessname=s1 path=$U2"
adm_fails "add_sess: a mode other than the other sessions' refused" \
  "mode=create" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$U2 mode=assemble"
adm_fails "add_sess to an unknown pool refused" "no such pool" \
  set rmr-client/pools/zz/add_sess "sessname=s9 path=$U2"
# At most 8 legs (the pool's members); nothing connects before enable.
adm set rmr-client/ctl/join_pool 'poolname=z'
for ((k = 1; k <= 8; k++)); do
  adm set rmr-client/pools/z/add_sess "sessname=z$k path=$(transport_url "127.0.0.$k:1")"
done
adm_fails "add_sess: a ninth session refused" "at most 8" \
  set rmr-client/pools/z/add_sess "sessname=z9 path=$(transport_url 127.0.0.9:1)"
adm_fails "leave_pool with sessions refused (the guide's deletion rule 1)" \
  "still has 8 sessions .z1 z2 .*del_sess" set rmr-client/pools/z/leave_pool 1
for ((k = 1; k <= 8; k++)); do
  adm set rmr-client/pools/z/sessions/z$k/del_sess mode=delete >/dev/null
done
ok "leave_pool of a pool never enabled, once its sessions are deleted" \
  adm set rmr-client/pools/z/leave_pool 1
ok "add_sess s2 ($ip_form) mode=create" \
  adm set rmr-client/pools/p/add_sess "sessname=s2 path=$IP2 mode=create"
is "$(adm get rmr-client/pools/p/sessions/s2/path)" "$U2" \
  "session path in canonical form"
is "$(adm get rmr-client/pools/p/sessions/s1/state)" created \
  "session state created before the pool is enabled"
is "$(adm get rmr-client/pools/p/sessions/s1/enable)" 0 \
  "a create-mode session starts not enabled"

adm_fails "pool_enable refused while a create session is not enabled" \
  "s1.*not enabled" set rmr-client/pools/p/pool_enable 1
adm_fails "map_device refused while a create session is not enabled" \
  "not enabled" set brmr-client/ctl/map_device 'pool=p'
adm_fails "enable: bad value refused" "expected 1 or 0" \
  set rmr-client/pools/p/sessions/s1/enable yes
ok "sessions/s1/enable 1" adm set rmr-client/pools/p/sessions/s1/enable 1
ok "sessions/s2/enable 1" adm set rmr-client/pools/p/sessions/s2/enable 1
is "$(adm get rmr-client/pools/p/sessions/s1/enable)" 1 "s1 enabled"
is "$(srv_state 1 p) $(srv_state 2 p)" "created created" \
  "an enabled create-mode session joined: the members' pools are created"
ok "sessions/s2/enable 0 releases the join" \
  adm set rmr-client/pools/p/sessions/s2/enable 0
is "$(srv_state 2 p)" registered "member 42 registered again"
ok "sessions/s2/enable 1 again" adm set rmr-client/pools/p/sessions/s2/enable 1
is "$(srv_state 2 p)" created "member 42 created again"

ok "pool_enable 1 opens the pool" adm set rmr-client/pools/p/pool_enable 1
is "$(adm get rmr-client/pools/p/state)" enabled "pool p is enabled"
is "$(adm get rmr-client/pools/p/sessions/s1/state) \
$(adm get rmr-client/pools/p/sessions/s2/state)" "normal normal" \
  "both sessions normal"
is "$(adm get rmr-client/pools/p/sessions/s1/member_id) \
$(adm get rmr-client/pools/p/sessions/s2/member_id)" "41 42" \
  "member ids of the sessions"
is "$(srv_state 1 p) $(srv_state 2 p)" "normal normal" \
  "both server pools normal"
is "$(adm get rmr-client/pools/p/chunk_size)" 65536 "chunk_size as joined"
ok "status --json is valid JSON" \
  /usr/bin/python3 -c 'import json, sys; json.load(sys.stdin)' \
  <<<"$(adm status --json)"
gen1=$(adm get rmr-client/pools/p/generation)
# On an enabled pool add_sess adds a live leg (issue 10): a node that
# cannot be reached is an error naming it, and nothing changes.
adm_fails "add_sess of an unreachable node to an enabled pool fails" \
  "127.0.0.1:1" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$(transport_url 127.0.0.1:1)"
is "$(adm ls rmr-client/pools/p/sessions | grep -c /state)" 2 \
  "still two sessions"
is "$(adm ls brmr-client/ctl/devices)" "" "no device before map_device"

adm_fails "map_device: size mismatch refused" "size.*32768" \
  set brmr-client/ctl/map_device 'pool=p size=1000'
adm_fails "map_device: bad size refused" "size" \
  set brmr-client/ctl/map_device 'pool=p size=12X'
adm_fails "map_device of an unknown pool refused" "no such pool 'zz'" \
  set brmr-client/ctl/map_device 'pool=zz'
adm_fails "map_device: missing pool= refused" "pool" \
  set brmr-client/ctl/map_device 'size=32768'
ok "map_device pool=p size=32768" \
  adm set brmr-client/ctl/map_device 'pool=p size=32768'
adm_fails "map_device twice refused" "mapped already" \
  set brmr-client/ctl/map_device 'pool=p'
is "$(adm get brmr-client/ctl/devices/p/state)" ready "device p ready"
is "$(adm get brmr-client/ctl/devices/p/size)" 32768 "device p: 32768 sectors"
is "$(adm get brmr-client/ctl/devices/p/block/size)" 32768 \
  "device p: block/size as in the guide"

is "$(nbdsh -u "$(uri p)" -c 'print(h.get_size())')" $((16 << 20)) \
  "export p: 16 MiB"
ok "export p: write and flush" nbd_write "$(uri p)" 0 0x41
ok "export p: write at the end" nbd_write "$(uri p)" $((16 * 1048576 - 65536)) 0x42
ok "export p: reads back" nbd_check "$(uri p)" 0 0x41
ok "default export is p" nbd_check "$(uri)" $((16 * 1048576 - 65536)) 0x42
if nbdsh -u "$(uri zz)" -c 'pass' 2>/dev/null; then
  not_ok "an unknown export name is refused"
else
  ok "an unknown export name is refused"
fi

adm_fails "leave_pool refused while mapped" "mapped: unmap it first" \
  set rmr-client/pools/p/leave_pool 1

# A connection open across unmap_device goes on until it disconnects.
nbdsh -u "$(uri p)" -c "
import os, time
open('$tmpdir/ready', 'w').close()
for i in range(300):
    if os.path.exists('$tmpdir/go'):
        break
    time.sleep(0.1)
h.pwrite(b'\x43' * 65536, 65536)
h.flush()
assert h.pread(65536, 65536) == b'\x43' * 65536
" &
held=$!
wait_for_file "$tmpdir/ready" 15
is "$(adm get rmr-client/pools/p/connections)" 1 "one connection open"
out=$(adm set brmr-client/ctl/devices/p/unmap_device 1)
ok "unmap_device 1"
ok "unmap_device says a connection stays open" \
  grep -q "1 open connection" <<<"$out"
is "$(adm ls brmr-client/ctl/devices)" "" "no device after unmap"
if nbdsh -u "$(uri p)" -c 'pass' 2>/dev/null; then
  not_ok "a new connection to an unmapped pool is refused"
else
  ok "a new connection to an unmapped pool is refused"
fi
adm_fails "leave_pool refused while a connection is open" \
  "1 NBD connection" set rmr-client/pools/p/leave_pool 1
touch "$tmpdir/go"
rc=0
wait "$held" || rc=$?
is "$rc" 0 "the connection open across unmap did its IO"
# nbdkit runs .close a moment after the client went.
ok "no connection left" _wait_until 10 _no_connection p

adm_fails "del_sess: bad mode refused" "mode" \
  set rmr-client/pools/p/sessions/s2/del_sess mode=gone
adm_fails "del_sess of an unknown session refused" "no such session" \
  set rmr-client/pools/p/sessions/zz/del_sess mode=disassemble
# On an enabled pool del_sess removes the leg live (issue 10): the pool
# stays open on the other; its member leaves gracefully.
ok "del_sess s2 mode=disassemble after unmap" \
  adm set rmr-client/pools/p/sessions/s2/del_sess mode=disassemble
is "$(adm get rmr-client/pools/p/state)" enabled \
  "the pool stays enabled after del_sess of one leg"
is "$(adm ls rmr-client/pools/p/sessions | grep -c /state)" 1 \
  "one session left"
is "$(srv_state 2 p)" registered "member 2 left gracefully"
out=$(adm set rmr-client/pools/p/sessions/s1/del_sess mode=delete)
is "$out" "pool 'p' closed: its last leg left it gracefully" \
  "del_sess of the last leg of an unmapped pool closes it (the guide's order)"
is "$(adm get rmr-client/pools/p/state)" joined "pool p joined, no session"
ok "leave_pool 1" adm set rmr-client/pools/p/leave_pool 1
is "$(srv_state 1 p) $(srv_state 2 p)" "registered registered" \
  "both members left gracefully"
is "$(adm ls rmr-client/pools)" "" "pool p forgotten"

# ---------------------------------------------------------------------
# 2. Assemble, in the same nbdkit.
ok "join_pool p again" adm set rmr-client/ctl/join_pool 'poolname=p'
out=$(adm set rmr-client/pools/p/add_sess "sessname=s1 path=$U1 mode=assemble")
is "$out" "pool 'p' waits for more sessions: pool 'p': member 42 has no session yet" \
  "add_sess s1 mode=assemble: the pool waits for member 42"
is "$(adm get rmr-client/pools/p/state)" joined "pool p joined with one leg"
is "$(srv_state 1 p)" registered "the probe changed nothing on member 41"
is "$(adm get rmr-client/pools/p/sessions/s1/enable)" 1 \
  "an assemble session needs no enable"
adm_fails "add_sess: create beside assemble sessions refused" \
  "mode=assemble" \
  set rmr-client/pools/p/add_sess "sessname=s9 path=$(transport_url 127.0.0.1:1) mode=create"
out=$(adm set rmr-client/pools/p/add_sess "sessname=s2 path=$U2 mode=assemble")
is "$out" "every member has a session: pool 'p' enabled" \
  "add_sess s2 mode=assemble: every member has a session, the pool enables"
is "$(adm get rmr-client/pools/p/state)" enabled \
  "the guide's automatic pool enable after a complete assemble"
ok "map_device maps the assembled pool" \
  adm set brmr-client/ctl/map_device 'pool=p size=16M'
is "$(adm get rmr-client/pools/p/state)" enabled "pool p enabled"
is "$(adm get rmr-client/pools/p/chunk_size)" 65536 \
  "assembled pool keeps its chunk size"
gen2=$(adm get rmr-client/pools/p/generation)
ok "a new generation ($gen1 -> $gen2)" test "$gen2" -gt "$gen1"
ok "data of the create flow reads back" nbd_check "$(uri p)" 0 0x41
ok "data written across unmap reads back" nbd_check "$(uri p)" 65536 0x43

# ---------------------------------------------------------------------
# 3. A second pool on the same daemons, exported at the same time; first
# with a leg to an address nobody listens on.
badport=$(free_port)
ok "join_pool q" adm set rmr-client/ctl/join_pool 'poolname=q'
ok "add_sess q1" \
  adm set rmr-client/pools/q/add_sess "sessname=q1 path=$U1 mode=create"
ok "add_sess to an address nobody listens on" \
  adm set rmr-client/pools/q/add_sess \
  "sessname=bad path=$(transport_url "127.0.0.1:$badport") mode=create"
adm set rmr-client/pools/q/sessions/q1/enable 1
adm_fails "enable of a session nobody answers fails, naming the address" \
  "session bad: .*127.0.0.1:$badport" \
  set rmr-client/pools/q/sessions/bad/enable 1
is "$(adm get rmr-client/pools/q/sessions/bad/enable)" 0 \
  "the unreachable session stays not enabled"
adm_fails "pool_enable refused while that session is not enabled" \
  "bad.*not enabled" set rmr-client/pools/q/pool_enable 1
is "$(adm get rmr-client/pools/q/state)" joined \
  "the pool stays joined after the refused pool_enable"
is "$(srv_state 1 q)" created "member 51 holds q1's join, nothing more"
ok "del_sess of the unreachable leg (pool not enabled)" \
  adm set rmr-client/pools/q/sessions/bad/del_sess mode=delete
ok "add_sess q2" \
  adm set rmr-client/pools/q/add_sess "sessname=q2 path=$U2 mode=create"
adm set rmr-client/pools/q/sessions/q2/enable 1
ok "map_device q (create flow, no explicit pool_enable)" \
  adm set brmr-client/ctl/map_device 'pool=q size=16384'
is "$(adm ls brmr-client/ctl/devices | grep -c /state)" 2 "two devices"
is "$(adm get rmr-client/pools/q/last_error)" "" "last_error cleared"
is "$(adm get rmr-client/pools/q/sessions/q1/member_id)" 51 \
  "q's leg to node 1 is member 51"
exports=$(nbdinfo --list "$(uri)" | sed -n 's/^export="\(.*\)":$/\1/p' |
  sort | tr '\n' ' ')
is "$exports" "p q " "both pools listed as exports"
is "$(nbdsh -u "$(uri q)" -c 'print(h.get_size())')" $((8 << 20)) \
  "export q: 8 MiB"
ok "export q: write" nbd_write "$(uri q)" 0 0x71
ok "export p: write" nbd_write "$(uri p)" 131072 0x44
ok "export q: reads back" nbd_check "$(uri q)" 0 0x71
ok "export p: not touched by q" nbd_check "$(uri p)" 0 0x41
ok "export p: reads back" nbd_check "$(uri p)" 131072 0x44
ok "default export is still p" nbd_check "$(uri)" 131072 0x44
is "$(adm get brmr-client/ctl/devices/p/alias) $(adm get brmr-client/ctl/devices/q/alias)" \
  "brmr0 brmr1" "the guide's device names: p is brmr0, q is brmr1"
is "$(adm get brmr-client/ctl/devices/brmr1/block/size)" 16384 \
  "devices/brmr1/block/size answers for q"
ok "export brmr1 is q" nbd_check "$(uri brmr1)" 0 0x71
adm_fails "no device brmr2" "no such device: brmr2" \
  get brmr-client/ctl/devices/brmr2/state
ok "unmap q by its alias (devices/brmr1/unmap_device)" \
  adm set brmr-client/ctl/devices/brmr1/unmap_device 1
# nbdkit runs .close a moment after the nbd_check client went.
ok "no connection left on q" _wait_until 10 _no_connection q
adm_fails "leave_pool q with sessions refused" "still has 2 sessions" \
  set rmr-client/pools/q/leave_pool 1
ok "del_sess q2 (enabled, unmapped)" \
  adm set rmr-client/pools/q/sessions/q2/del_sess mode=disassemble
ok "del_sess q1" adm set rmr-client/pools/q/sessions/q1/del_sess mode=disassemble
ok "leave_pool q" adm set rmr-client/pools/q/leave_pool 1
is "$(srv_state 1 q) $(srv_state 2 q)" "registered registered" \
  "q's members left gracefully"
is "$(adm ls rmr-client/pools | grep -c '^rmr-client/pools/[^/]*/state$')" 1 \
  "pool p remains"

# ---------------------------------------------------------------------
# 4. Compute client crash: the guide's assemble in a new nbdkit.
kill_pid "$NBDKIT_PID" KILL
ok "server pools no_io after the client crash (the guide's check)" \
  _wait_until 15 _both_no_io p

start_client
ok "join_pool 'poolname=p chunk_size=65536'" \
  adm set rmr-client/ctl/join_pool 'poolname=p chunk_size=65536'
ok "add_sess s1 mode=assemble" \
  adm set rmr-client/pools/p/add_sess "sessname=s1 path=$IP1 mode=assemble"
ok "add_sess s2 mode=assemble" \
  adm set rmr-client/pools/p/add_sess "sessname=s2 path=$IP2 mode=assemble"
ok "map_device 'pool=p size=32768' enables the pool" \
  adm set brmr-client/ctl/map_device 'pool=p size=32768'
is "$(adm get rmr-client/pools/p/sessions/s1/state) \
$(adm get rmr-client/pools/p/sessions/s2/state)" "normal normal" \
  "both sessions normal after assemble"
is "$(srv_state 1 p) $(srv_state 2 p)" "normal normal" \
  "both server pools normal again"
ok "data reads back after the crash (1)" nbd_check "$(uri p)" 0 0x41
ok "data reads back after the crash (2)" nbd_check "$(uri p)" 131072 0x44
ok "data reads back after the crash (3)" \
  nbd_check "$(uri p)" $((16 * 1048576 - 65536)) 0x42
kill_pid "$NBDKIT_PID"
is "$(srv_state 1 p) $(srv_state 2 p)" "registered registered" \
  "nbdkit's exit closes its pools gracefully"

# ---------------------------------------------------------------------
# 5. pool= on the command line, with control=: mapped from the start.
start_client pool=p server="$U1" server="$U2"
is "$(adm get rmr-client/pools/p/state)" enabled \
  "command-line pool enabled from the start"
is "$(adm get brmr-client/ctl/devices/p/state)" ready \
  "command-line pool mapped from the start"
ok "command-line pool: data reads back" nbd_check "$(uri)" 131072 0x44
ok "join_pool q beside the command-line pool" \
  adm set rmr-client/ctl/join_pool 'poolname=q'
adm set rmr-client/pools/q/add_sess "sessname=q1 path=$U1 mode=assemble" >&2
adm set rmr-client/pools/q/add_sess "sessname=q2 path=$U2 mode=assemble" >&2
ok "map_device q beside the command-line pool" \
  adm set brmr-client/ctl/map_device 'pool=q'
ok "export q: data reads back" nbd_check "$(uri q)" 0 0x71
ok "default export is the command-line pool" \
  nbd_check "$(uri)" 131072 0x44
kill_pid "$NBDKIT_PID"

done_testing
