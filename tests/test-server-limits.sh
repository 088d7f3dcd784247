#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-server-limits.sh: the daemon's per-connection limits (issue 8,
# item 5), spoken in raw protocol by a sync session (which may read).
#
# - A session that keeps more requests in flight than the queue depth it
#   joined with is disconnected, with a warning naming the peer, the
#   session and the limit; the daemon goes on serving other clients.
# - A session that keeps exactly its queue depth in flight, sending the
#   next request the moment a reply arrives, is never disconnected: the
#   reply leaves the daemon just before its request is released, and the
#   daemon must not count that request against the next one.
# - After a burst of 32 MiB reads (request buffers of 32 MiB) the daemon's
#   RSS falls back while the connection stays open (before, the free list
#   kept every buffer until the connection closed), and during a burst of
#   more than its buffer budget (CONN_BUF_MAX, 256 MiB) the peak RSS stays
#   near that budget: the daemon waits for memory instead of allocating.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
# Raw plaintext sockets speak to the nodes: under the tls test setup they
# take TLS and plaintext (tls=on), the plugin uses TLS.
[[ -z "$CLUSTER_TLS" ]] || cluster_tls on
# Every check is a raw session on a plaintext tcp socket (rmrwire.py): no
# raw socket speaks UCX.
[[ $RMR_TEST_TRANSPORT == tcp ]] ||
  skip_all "raw protocol sessions need a tcp socket (no raw socket speaks UCX)"

requires nbdsh --version
requires python3 --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

# The daemon's log is ours to grep.
node_start 1 p 64M 2>"$tmpdir/n1.log"
port=${NODE_ADDR[1]##*:}
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1)
uri=$(nbd_uri e)
nbdsh -u "$uri" -c 'h.pwrite(b"x" * 1048576, 0); h.flush()'

cat >"$tmpdir/raw.py" <<'PY'
import os, socket, struct, sys, time

sys.path.insert(0, os.environ["SRC_DIR"] + "/tests")
from rmrwire import connect, jhash  # noqa: E402

HDR = "<IBBHIIQQQIIII8x"
GID = jhash(b"p")

def hdr(type, gen, tag, off, length, plen=0):
    return struct.pack(HDR, 0x31524d52, 1, type, 0, GID, 0xffffffff, gen,
                       tag, off, length, plen, 0, 0)

def recv_exact(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionResetError("EOF")
        got += k
    return buf

def recv_msg(s):
    f = struct.unpack(HDR, recv_exact(s, 64))
    return f, recv_exact(s, f[10])

def join(port, sessname, qd):
    s = connect(port)
    payload = (b"p".ljust(64, b"\0") + sessname.encode().ljust(64, b"\0") +
               struct.pack("<BBHIIIQ", 0, 2, 0, 0, qd, 0, 0))
    s.sendall(hdr(1, 0, 1, 0, 0, len(payload)) + payload)
    f, p = recv_msg(s)
    assert f[11] == 0, ("join refused", bytes(p))
    return s, struct.unpack_from("<Q", p, 24)[0]

def read(gen, tag, length):
    return hdr(4, gen, tag, 0, length)

def rss(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024   # MiB
    raise KeyError(field)

cmd, port = sys.argv[1], int(sys.argv[2])

if cmd == "flood":
    # Queue depth 4, then 16 reads of 16 MiB without reading a reply.
    s, gen = join(port, "flood", 4)
    s.sendall(b"".join(read(gen, 100 + i, 16 << 20) for i in range(16)))
    # Not reading: the first reply fills the socket, the others stay in
    # flight.  The daemon waits 2 s for credits, then disconnects.
    time.sleep(6)
    s.settimeout(20)
    try:
        while s.recv(1 << 20):
            pass
        print("closed")
    except ConnectionResetError:
        print("closed")
    except socket.timeout:
        print("still open after 26 s")

elif cmd == "window":
    # Queue depth 4, kept full: a new read as soon as a reply arrives.
    qd, total = 4, 4000
    s, gen = join(port, "window", qd)
    sent = done = bad = 0
    while sent < qd:
        s.sendall(read(gen, sent, 4096)); sent += 1
    while done < total:
        f, p = recv_msg(s)
        done += 1
        if f[11] != 0:
            bad += 1
        if sent < total:
            s.sendall(read(gen, sent, 4096)); sent += 1
    print("window %d replies %d errors" % (done, bad))

elif cmd == "burst":
    # n reads of 32 MiB at once (queue depth n), all replies read, the
    # connection kept open: RSS before, peak and after (MiB).
    pid, n = int(sys.argv[3]), int(sys.argv[4])
    s, gen = join(port, "burst", n)
    time.sleep(0.2)
    before = rss(pid, "VmRSS")
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")                    # reset VmHWM
    s.sendall(b"".join(read(gen, i, 32 << 20) for i in range(n)))
    bad = 0
    for i in range(n):
        f, p = recv_msg(s)
        if f[11] != 0:
            bad += 1
            print("reply status %d: %s" % (f[11], bytes(p)), file=sys.stderr)
    peak = rss(pid, "VmHWM")
    time.sleep(0.5)
    after = rss(pid, "VmRSS")
    print("burst %d errors before %d peak %d after %d" %
          (bad, before, peak, after))
    s.close()
PY

# 1. More than the queue depth in flight: disconnected, logged.
out=$(python3 "$tmpdir/raw.py" flood "$port")
is "$out" closed "a session over its queue depth is disconnected"
_wait_until 10 grep -q "protocol violation" "$tmpdir/n1.log" || true
line=$(grep "protocol violation" "$tmpdir/n1.log" | head -1)
diag "$line"
[[ "$line" == *"warning: connection tcp:127.0.0.1:"*"session flood of pool p"*"queue depth of 4"* ]] &&
  ok "the daemon logs why, naming the peer, the session and the limit" ||
  { not_ok "the daemon logs why, naming the peer, the session and the limit"
    diag "$(tail -20 "$tmpdir/n1.log")"; }
ok "the daemon survives" kill -0 "${NODE_PID[1]}"
ok "and serves other clients" \
  nbdsh -u "$uri" -c 'h.pwrite(b"y" * 4096, 0); assert h.pread(4096, 0) == b"y" * 4096'

# 2. Exactly the queue depth in flight, refilled at once: never refused.
out=$(python3 "$tmpdir/raw.py" window "$port")
is "$out" "window 4000 replies 0 errors" \
  "a session at its queue depth is served (4000 reads)"
is "$(grep -c "protocol violation" "$tmpdir/n1.log")" 1 \
  "and not taken for a violation"

# 3. Memory after a burst of 32 MiB buffers, and during one over budget.
if [[ ${#CHECKED[@]} -gt 0 ]]; then
  skip "RSS falls back after a burst" "RSS means nothing under valgrind"
  skip "peak RSS bounded by the buffer budget" "under valgrind"
else
  out=$(python3 "$tmpdir/raw.py" burst "$port" "${NODE_PID[1]}" 6)
  diag "$out"
  read -r _ bad _ _ before _ peak _ after <<<"$out"
  [[ $bad -eq 0 && $peak -ge $((before + 64)) && $after -le $((before + 32)) ]] &&
    ok "RSS falls back after a burst of 6 x 32 MiB reads, connection open" ||
    not_ok "RSS falls back after a burst of 6 x 32 MiB reads, connection open"
  out=$(python3 "$tmpdir/raw.py" burst "$port" "${NODE_PID[1]}" 16)
  diag "$out"
  read -r _ bad _ _ before _ peak _ after <<<"$out"
  [[ $bad -eq 0 && $peak -le $((before + 256 + 64)) && $after -le $((before + 32)) ]] &&
    ok "16 x 32 MiB reads at once: served, peak RSS within the 256 MiB budget" ||
    not_ok "16 x 32 MiB reads at once: served, peak RSS within the 256 MiB budget"
fi
ok "node 1 still serves" \
  nbdsh -u "$uri" -c 'assert h.pread(4096, 0) == b"y" * 4096'
done_testing
