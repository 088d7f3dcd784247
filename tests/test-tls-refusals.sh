#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-tls-refusals.sh: RF=2 with tls=require on both nodes (DESIGN 9,
# issue 9).  While the real client writes and reads back without a
# pause, every intruder is refused before it reaches a pool, and nothing
# changes: each node's pool state, generation, member states, maps and
# sessions are what they were, and the writer sees no error.
#   - nbdkit in plaintext (tls=off), with the right identity and a wrong
#     key, with an identity the nodes do not know;
#   - raw sockets: a JOIN with no hello at all; after a plaintext hello,
#     a JOIN, an ENABLE with a higher generation, a sync JOIN and read,
#     and a map clear (the hello is refused: TLS required);
#   - 200 connections opened and left idle: at most max_handshakes are
#     served a handshake, each until handshake_timeout; the others are
#     refused as busy; afterwards a leg reconnects with its key at once.
# Each refusal is logged with the peer and the identity it presented.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# TLS, its refusals and raw plaintext sockets are tcp's.
[[ $RMR_TEST_TRANSPORT == tcp ]] ||
  skip_all "TLS is tcp only; ucx authenticates with the same key file by" \
    "challenge-response (test-ucx-auth)"

requires nbdsh --version
requires /usr/bin/python3 -c 'import nbd'
requires psktool --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2
cluster_tls require

NODE_ARGS="--handshake-timeout 3s --max-handshakes 16"
node_start 1 p 16M 2>"$tmpdir/n1.log"
node_start 2 p 16M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K
uri=$(nbd_uri e)

# The real client's writer: 64 KiB blocks, each read back, a flush every
# 16; any error ends it with status 1.  It stops when $tmpdir/stop exists.
/usr/bin/python3 - "$uri" "$tmpdir/stop" >"$tmpdir/writer.out" 2>&1 <<'PY' &
import os, sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
n = 0
while not os.path.exists(sys.argv[2]):
    data = (b"%08d" % n) * 8192
    off = (n % 128) * 65536
    h.pwrite(data, off)
    if h.pread(65536, off) != data:
        sys.exit("block %d read back wrong" % n)
    if n % 16 == 15:
        h.flush()
    n += 1
print("writes", n)
PY
writer=$!

snapshot ()
{
  local i a
  for i in 1 2; do
    for a in state generation members member_states map_summary sessions; do
      echo "node $i $a: $(rmradm_n "$i" get "rmr-server/pools/p/$a")"
    done
  done
}
sleep 1
before=$(snapshot)

# nbdkit that must not get in: the open fails, naming why.
intruder ()
{
  local desc=$1 pattern=$2 rc=0
  shift 2
  # shellcheck disable=SC2046
  timeout 60 nbdkit -f -U "$tmpdir/bad.sock" "$RMR_PLUGIN" pool=p \
    $(servers 1 2) timeout=2s "$@" 2>"$tmpdir/err" || rc=$?
  if [[ $rc -ne 0 ]] && grep -qE "$pattern" "$tmpdir/err"; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "nbdkit exit status $rc, stderr:"
    diag "$(cat "$tmpdir/err")"
  fi
}

psktool -u client -p "$tmpdir/wrong.psk" >/dev/null
psktool -u mallory -p "$tmpdir/mallory.psk" >/dev/null
intruder "a plaintext client is refused" "requires TLS" tls=off
intruder "a client with a wrong key is refused" \
  "refused our TLS key \(identity 'client'" \
  "tls-psk=$tmpdir/wrong.psk" tls-username=client
intruder "an unknown identity is refused" \
  "refused our TLS key \(identity 'mallory'" \
  "tls-psk=$tmpdir/mallory.psk" tls-username=mallory

# Raw sockets.  Each prints what the node did with it.
out=$(/usr/bin/python3 - "${NODE_ADDR[1]##*:}" 2>&1 <<'PY'
import os, socket, struct, sys
sys.path.insert(0, os.environ["SRC_DIR"] + "/tests")
from rmrwire import hello_bytes, jhash  # noqa: E402
port = int(sys.argv[1])
HDR = "<IBBHIIQQQIIII8x"
def hdr(type, gid, gen, tag, off, length, plen, mask, flags=0):
    return struct.pack(HDR, 0x31524d52, 1, type, flags, gid, 0xffffffff,
                       gen, tag, off, length, plen, 0, mask)
gid = jhash(b"p")
join = (b"p".ljust(64, b"\0") + b"intruder".ljust(64, b"\0") +
        struct.pack("<BBHIIIQ", 0, 2, 0, 0, 16, 0, 0))
sync_join = (b"p".ljust(64, b"\0") + b"intruder".ljust(64, b"\0") +
             struct.pack("<BBHIIIQ", 1, 2, 0, 0, 16, 0, 0))
enable = struct.pack("<QQIIB7x", 99, 16 << 20, 65536, 128, 2) + \
    struct.pack("<8I", *([0xffffffff] * 8))
attacks = {
    "join without hello": hdr(1, gid, 0, 1, 0, 0, len(join), 0) + join,
    "join": hello_bytes() + hdr(1, gid, 0, 1, 0, 0, len(join), 0) + join,
    "enable": hello_bytes() + hdr(2, gid, 99, 2, 0, 0, len(enable), 0) +
    enable,
    "sync read": hello_bytes() +
    hdr(1, gid, 0, 1, 0, 0, len(sync_join), 0) + sync_join +
    hdr(4, gid, 1, 2, 0, 65536, 0, 0),
    "map clear": hello_bytes() + hdr(12, gid, 1, 3, 0, 256, 0, 1),
}
for name, data in attacks.items():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    if got[:8] == b"RMRHELLO":
        refusal = int.from_bytes(got[12:16], "little")
        print("%s: hello refusal %d, %d bytes after" %
              (name, refusal, len(got) - 16))
    else:
        print("%s: closed, %d bytes" % (name, len(got)))
PY
)
diag "$out"
[[ "$out" == *"join without hello: closed, 0 bytes"* ]] &&
  ok "a JOIN without a hello: closed, unanswered" ||
  not_ok "a JOIN without a hello: closed, unanswered"
for a in join enable "sync read" "map clear"; do
  [[ "$out" == *"$a: hello refusal 1, 0 bytes after"* ]] &&
    ok "a plaintext $a: refused at the hello (TLS required), unanswered" ||
    not_ok "a plaintext $a: refused at the hello (TLS required), unanswered"
done

# 200 idle connections: hold them past the handshake timeout.
out=$(/usr/bin/python3 - "${NODE_ADDR[1]##*:}" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
time.sleep(4.5)
busy = closed = 0
for s in socks:
    s.settimeout(0.5)
    try:
        got = s.recv(16)
        if len(got) == 16 and int.from_bytes(got[12:16], "little") == 2:
            busy += 1
        elif got == b"":
            closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
    s.close()
print("busy %d closed %d" % (busy, closed))
PY
)
diag "200 idle connections: $out"
if [[ "$out" =~ busy\ ([0-9]+)\ closed\ ([0-9]+) ]] &&
  ((BASH_REMATCH[1] >= 184 && BASH_REMATCH[1] + BASH_REMATCH[2] == 200)); then
  ok "200 idle connections: all but max_handshakes refused busy, the rest timed out"
else
  not_ok "200 idle connections: all but max_handshakes refused busy, the rest timed out"
fi

after=$(snapshot)
if [[ "$after" == "$before" ]]; then
  ok "pool state, generation, members, maps and sessions unchanged"
else
  not_ok "pool state, generation, members, maps and sessions unchanged"
  diag "before: $before"
  diag "after: $after"
fi

# A leg reconnects with its key at once.
sess=$(rmradm_c e ls rmr-client/pools/p/sessions | grep -F "${NODE_ADDR[1]}/state")
sess=${sess%/state}
ok "the client's leg to node 1 reconnects through TLS" \
  rmradm_c e set "$sess/reconnect" 1
wait_leg_normal e 1 15
is "$(leg_state e 1)" normal "and is normal"
sec=$(rmradm_c e get "$sess/security")
[[ "$sec" == "TLS1.3 ECDHE-PSK AES-"*"GCM ("*")" ]] &&
  ok "its security attribute names the TLS session: $sec" ||
  not_ok "its security attribute names the TLS session: $sec"

touch "$tmpdir/stop"
rc=0
wait "$writer" || rc=$?
diag "$(cat "$tmpdir/writer.out")"
is "$rc" 0 "the real client's writes and reads went on without an error"

log=$(cat "$tmpdir/n1.log")
for pat in "refused connection from tcp:127.0.0.1:[0-9]+: a plaintext session, and tls=require" \
  "refused connection from tcp:127.0.0.1:[0-9]+ \(TLS identity 'client'\): TLS identity 'client' with a wrong key" \
  "refused connection from tcp:127.0.0.1:[0-9]+ \(TLS identity 'mallory'\): unknown TLS identity 'mallory'" \
  "refused connection from tcp:127.0.0.1:[0-9]+: bad hello: magic" \
  "refused connection from tcp:127.0.0.1:[0-9]+: 16 handshakes in progress already" \
  "refused connection from tcp:127.0.0.1:[0-9]+: no hello within 3000 ms" \
  "more connections refused in the last second"; do
  [[ "$log" =~ $pat ]] && ok "logged: $pat" || not_ok "logged: $pat"
done
done_testing
