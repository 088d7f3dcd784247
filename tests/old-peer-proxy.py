#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""old-peer-proxy.py PORT TARGET_PORT LOG: a storage node of the version
before, as a peer's sync session sees it: a plaintext tcp relay from
127.0.0.1:PORT to the node at 127.0.0.1:TARGET_PORT that answers what
that version's decoder refused itself:

  - a join with sync byte 3 (common/proto.h, RMR_JOIN_SYNC): refused with
    EPROTO and "bad message: join sync 3", as that version's
    rmr_join_req_decode did; a join with 2 goes through;
  - a read with the zeroes flag (0x40): that version's decoder refused the
    header, and the connection closed.

Every message is relayed whole, each way under its own lock, so a reply
made here never lands inside a relayed one.  LOG gets one line per event
(join-refused 3, join 2, zeroes-asked), flushed at once."""

import socket
import struct
import sys
import threading

HDR = "<IBBHIIQQQIIIIII"   # common/proto.h, 64 bytes
HDR_SIZE = 64
MSG_JOIN, MSG_READ = 1, 4
HF_REPLY, HF_ZEROES = 0x1, 0x40
EPROTO = 71

log_lock = threading.Lock()


def log(f, line):
    with log_lock:
        f.write(line + "\n")
        f.flush()


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def recv_msg(s):
    hdr = recv_exact(s, HDR_SIZE)
    plen = struct.unpack(HDR, hdr)[10]
    return hdr, recv_exact(s, plen) if plen else b""


def refusal(hdr, text):
    f = list(struct.unpack(HDR, hdr))
    # flags: a reply; member_id: none; payload_len, status: the refusal
    f[3], f[5], f[10], f[11] = HF_REPLY, 0xffffffff, len(text), EPROTO
    return struct.pack(HDR, *f) + text


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def relay(src, c, s, handle):
    """Messages from src to handle (hdr, payload) until it returns False
    or either side closes; then both close."""
    try:
        while handle(*recv_msg(src)):
            pass
    except (ConnectionError, OSError):
        pass
    close(c, s)


def to_node(c, s, c_lock, f):
    def handle(hdr, payload):
        h = struct.unpack(HDR, hdr)
        mtype, flags = h[2], h[3]
        join = mtype == MSG_JOIN and not flags & HF_REPLY and len(payload) > 129
        if join and payload[129] == 3:
            log(f, "join-refused 3")
            with c_lock:
                c.sendall(refusal(hdr, b"bad message: join sync 3"))
            return True
        if join:
            log(f, "join %d" % payload[129])
        if mtype == MSG_READ and flags & HF_ZEROES:
            log(f, "zeroes-asked")
            return False
        s.sendall(hdr + payload)
        return True
    relay(c, c, s, handle)


def to_peer(c, s, c_lock):
    def handle(hdr, payload):
        with c_lock:
            c.sendall(hdr + payload)
        return True
    relay(s, c, s, handle)


def serve(c, target, f):
    try:
        s = socket.create_connection(("127.0.0.1", target))
        s.sendall(recv_exact(c, 16))        # the hello, plaintext
        c.sendall(recv_exact(s, 16))
    except (ConnectionError, OSError):
        close(c)
        return
    c_lock = threading.Lock()
    threading.Thread(target=to_peer, args=(c, s, c_lock), daemon=True).start()
    to_node(c, s, c_lock, f)


def main():
    port, target, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    f = open(path, "a")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, target, f),
                         daemon=True).start()


main()
