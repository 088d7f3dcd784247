#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-bad-input.sh: every kind of bad input is refused with a clear
# one-line error naming what is wrong, and changes nothing: nbdkit
# parameters, pool/chunk-size/size mismatches between plugin and daemon, a
# store of another pool, create_store on a store with metadata, a server
# that is not listening, mixed fresh and used stores, and garbage or
# truncated messages on the daemon's port (the daemon keeps serving).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# Raw plaintext sockets speak to the nodes: under the tls test setup they
# take TLS and plaintext (tls=on), the plugin uses TLS.
[[ -z "$CLUSTER_TLS" ]] || cluster_tls on

requires nbdsh --version
requires python3 --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

node_start 1 p 16M "chunk_size=128K"
node_start 2 p 16M
s12=$(servers 1 2)

# nbdkit_fails DESC PATTERN ARGS...: nbdkit must exit non-zero at start-up
# with an error line matching PATTERN.
nbdkit_fails ()
{
  local desc=$1 pattern=$2 rc=0
  shift 2
  # nbdkit leaves its socket behind when .after_fork fails (where a pool
  # with ucx legs is opened).
  rm -f "$tmpdir/bad.sock"
  # shellcheck disable=SC2046 # words
  timeout 60 nbdkit -f -U "$tmpdir/bad.sock" "$RMR_PLUGIN" "$@" $(plugin_tls_args) \
    2>"$tmpdir/err" || rc=$?
  if [[ $rc -ne 0 ]] && grep -qE "$pattern" "$tmpdir/err"; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "nbdkit exit status $rc, stderr:"
    diag "$(cat "$tmpdir/err")"
  fi
}

sb ()
{
  "$RMRADM" store-info "${NODE_STORE[$1]}" | grep -E '^(generation|chunk_size):'
}
before1=$(sb 1)
before2=$(sb 2)

# shellcheck disable=SC2086
{
nbdkit_fails "unknown parameter" "unknown parameter 'colour'" pool=p $s12 colour=red
nbdkit_fails "bad size" "size" pool=p $s12 size=12xyz
nbdkit_fails "size of 0" "size" pool=p $s12 size=0
nbdkit_fails "bad chunk-size" "chunk-size: '3000'" pool=p $s12 chunk-size=3000
nbdkit_fails "bad address (port)" "server.*99999" pool=p \
  "server=$(transport_url 127.0.0.1:99999)"
nbdkit_fails "bad address (scheme)" "server.*rdma" pool=p server=rdma:1.2.3.4:5
nbdkit_fails "bad pool name" "pool.*bad/name" pool=bad/name $s12
nbdkit_fails "missing pool" "pool: missing" $s12
nbdkit_fails "missing server" "server: missing" pool=p
# shellcheck disable=SC2046
nbdkit_fails "same server twice" "given twice" pool=p $(servers 1 1)
nbdkit_fails "bad mode" "mode: 'sideways'" pool=p $s12 mode=sideways
nbdkit_fails "bad read-policy" "read-policy" pool=p $s12 read-policy=random
nbdkit_fails "min-legs above the legs" "min-legs" pool=p $s12 min-legs=3
nbdkit_fails "bad timeout" "timeout" pool=p $s12 timeout=soon
nbdkit_fails "pool name mismatch between plugin and daemon" \
  "no pool 'q' on this node" pool=q $s12
nbdkit_fails "chunk size mismatch with the daemon's config" \
  "chunk_size 65536 requested.*131072" pool=p $s12 chunk-size=64K
nbdkit_fails "size mismatch with the stores" \
  "size.*mapped_size" pool=p $s12 size=32M
nbdkit_fails "assemble on fresh stores" \
  "assemble, but no store holds pool 'p' yet" pool=p $s12 mode=assemble
free=$(free_port)
# An open waits for unreachable servers as long as timeout= (30 s by
# default) before it fails with the last error.
nbdkit_fails "a server that is not listening" \
  "$(connect_refused_re "127.0.0.1:$free")" pool=p \
  "server=$(transport_url "127.0.0.1:$free")" timeout=2s
}

is "$(sb 1)" "$before1" "store 1 unchanged by the refused starts"
is "$(sb 2)" "$before2" "store 2 unchanged by the refused starts"
is "$(rmradm_n 1 get rmr-server/pools/p/state)" registered \
  "node 1 still registered"

# Garbage, a bad hello, a truncated header and a truncated payload on the
# daemon's port: each connection is closed with a logged reason, nothing
# else.
# Raw sockets cannot speak UCX: under ucx the tcp run covers the parser.
if [[ $RMR_TEST_TRANSPORT == tcp ]]; then
  python3 - "${NODE_ADDR[1]##*:}" <<'PY'
import os, socket, struct, sys
sys.path.insert(0, os.environ["SRC_DIR"] + "/tests")
from rmrwire import connect, hello_bytes  # noqa: E402
port = int(sys.argv[1])
def send(data, eof=False, raw=False):
    if raw:
        s = socket.create_connection(("127.0.0.1", port))
    else:
        s = connect(port)
    s.sendall(data)
    if eof:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(5)
    try:
        s.recv(100)          # the daemon closes the connection
    except ConnectionResetError:
        pass                 # closed with our bytes unread: a reset
    except socket.timeout:
        sys.exit("daemon kept a bad connection open")
    s.close()
send(b"GET / HTTP/1.0\r\n\r\n" + b"\0" * 64, raw=True)   # no hello
send(hello_bytes(version=7), raw=True)           # a hello of another version
send(hello_bytes(refusal=1), raw=True)           # a request with a refusal
send(b"RMRHELLO", eof=True, raw=True)            # truncated hello
send(b"GET / HTTP/1.0\r\n\r\n" + b"\0" * 64)
send(b"RMR1\x01", eof=True)   # truncated header, then EOF
hdr = struct.pack("<IBBHIIQQQIIII8x", 0x31524d52, 1, 5, 0, 1, 0xffffffff,
                  1, 7, 0, 4096, 4096, 0, 0)
s = connect(port)
s.sendall(hdr + b"x" * 100)   # a write whose payload never completes
s.close()
send(struct.pack("<IBBHIIQQQIIII8x", 0x31524d52, 1, 4, 0, 1, 0xffffffff,
                 1, 7, 0, 1 << 30, 0, 0, 0))   # read of 1 GiB: refused
PY
  ok "garbage and truncated messages were sent"
  sleep 0.5
  ok "node 1 survives them" kill -0 "${NODE_PID[1]}"
else
  skip "garbage and truncated messages were sent" "raw wire messages need tcp"
  skip "node 1 survives them" "raw wire messages need tcp"
fi

# shellcheck disable=SC2086
nbdkit_start e pool=p $s12
ok "node 1 still serves a real client" \
  nbdsh -u "$(nbd_uri e)" -c 'h.pwrite(b"x" * 512, 0); assert h.pread(512, 0) == b"x" * 512'
kill_pid "$NBDKIT_PID"

# Mixed stores: node 3 is fresh, nodes 1 and 2 hold the pool now; a fresh
# store may join them (test-initial-sync), but not with mode=create.
node_start 3 p 16M
# shellcheck disable=SC2046
nbdkit_fails "mode=create on a mix of fresh and used stores" \
  "mode=create, but" pool=p $(servers 1 2 3) mode=create
# shellcheck disable=SC2086
nbdkit_fails "mode=create on stores that hold the pool" \
  "mode=create, but" pool=p $s12 mode=create

# Control interface: create_store on a store with metadata, a store of
# another pool, unknown keys.
cp "${NODE_STORE[1]}" "$tmpdir/copy.img"
sum=$(md5sum <"$tmpdir/copy.img")
rmradm_n 3 set rmr-server/ctl/join_pool 'poolname=other member_id=9' >&2
out=$(rmradm_n 3 set brmr-server/ctl/create_store \
  "device=$tmpdir/copy.img pool=other mapped_size=16M" 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"has rmr metadata"* ]] &&
  ok "create_store refuses a store with metadata" ||
  { not_ok "create_store refuses a store with metadata"; diag "$out"; }
is "$(md5sum <"$tmpdir/copy.img")" "$sum" "the refused store is unchanged"
out=$(rmradm_n 3 set brmr-server/ctl/add_store \
  "device=$tmpdir/copy.img pool=other" 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"'p'"* ]] &&
  ok "add_store refuses a store of another pool, naming it" ||
  { not_ok "add_store refuses a store of another pool, naming it"; diag "$out"; }
out=$(rmradm_n 3 set rmr-server/ctl/join_pool 'poolname=x member_id=1 colour=red' 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"unknown key 'colour'"* ]] &&
  ok "join_pool refuses an unknown key" ||
  { not_ok "join_pool refuses an unknown key"; diag "$out"; }
is "$(rmradm_n 3 ls rmr-server/pools | grep -c '/x' || true)" 0 \
  "the refused join_pool created nothing"

# A daemon whose config names a store of another pool does not start.
cat >"$tmpdir/wrong.conf" <<EOF
[storaged]
listen=$(transport_url "127.0.0.1:$(free_port)")
control=$tmpdir/wrong.sock
[pool zzz]
member_id=41
store=$tmpdir/copy.img
mapped_size=16M
EOF
out=$("$RMR_STORAGED" --config "$tmpdir/wrong.conf" --foreground 2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"pool 'p'"* ]] &&
  ok "the daemon refuses to start on a store of another pool" ||
  { not_ok "the daemon refuses to start on a store of another pool"; diag "$out"; }
is "$(md5sum <"$tmpdir/copy.img")" "$sum" "and leaves that store unchanged"
done_testing
