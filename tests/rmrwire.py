# SPDX-License-Identifier: LGPL-2.1-or-later
"""rmrwire: what the tests that speak rmr's wire protocol raw share
(common/proto.h is the definition; common/jhash.c the hash)."""

def jhash(key):
    # Bob Jenkins' lookup3 hashlittle, as the kernel's jhash, initval 0.
    def rot(x, k): return ((x << k) | (x >> (32 - k))) & 0xffffffff
    a = b = c = (0xdeadbeef + len(key)) & 0xffffffff
    k = key
    while len(k) > 12:
        a = (a + int.from_bytes(k[0:4], "little")) & 0xffffffff
        b = (b + int.from_bytes(k[4:8], "little")) & 0xffffffff
        c = (c + int.from_bytes(k[8:12], "little")) & 0xffffffff
        a = (a - c) & 0xffffffff; a ^= rot(c, 4);  c = (c + b) & 0xffffffff
        b = (b - a) & 0xffffffff; b ^= rot(a, 6);  a = (a + c) & 0xffffffff
        c = (c - b) & 0xffffffff; c ^= rot(b, 8);  b = (b + a) & 0xffffffff
        a = (a - c) & 0xffffffff; a ^= rot(c, 16); c = (c + b) & 0xffffffff
        b = (b - a) & 0xffffffff; b ^= rot(a, 19); a = (a + c) & 0xffffffff
        c = (c - b) & 0xffffffff; c ^= rot(b, 4);  b = (b + a) & 0xffffffff
        k = k[12:]
    if not k:
        return c
    k = k + bytes(12 - len(k))
    a = (a + int.from_bytes(k[0:4], "little")) & 0xffffffff
    b = (b + int.from_bytes(k[4:8], "little")) & 0xffffffff
    c = (c + int.from_bytes(k[8:12], "little")) & 0xffffffff
    c ^= b; c = (c - rot(b, 14)) & 0xffffffff
    a ^= c; a = (a - rot(c, 11)) & 0xffffffff
    b ^= a; b = (b - rot(a, 25)) & 0xffffffff
    c ^= b; c = (c - rot(b, 16)) & 0xffffffff
    a ^= c; a = (a - rot(c, 4)) & 0xffffffff
    b ^= a; b = (b - rot(a, 14)) & 0xffffffff
    c ^= b; c = (c - rot(b, 24)) & 0xffffffff
    return c


def hello_bytes(tls=False, version=1, refusal=0):
    # The connection preamble (common/proto.h, "hello").
    return b"RMRHELLO" + (version.to_bytes(2, "little") +
                          (1 if tls else 0).to_bytes(2, "little") +
                          refusal.to_bytes(4, "little"))


def connect(port, host="127.0.0.1", timeout=None):
    """A plaintext connection to a node, past the hello: what a client
    without keys gets.  Raises ConnectionRefusedError with the node's
    refusal code if it refuses."""
    import socket
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(hello_bytes())
    rep = b""
    while len(rep) < 16:
        chunk = s.recv(16 - len(rep))
        if not chunk:
            raise ConnectionResetError("closed during the hello")
        rep += chunk
    assert rep[:8] == b"RMRHELLO", rep
    refusal = int.from_bytes(rep[12:16], "little")
    if refusal:
        s.close()
        raise ConnectionRefusedError("hello refused: %d" % refusal)
    assert int.from_bytes(rep[10:12], "little") == 0, "TLS offered unasked"
    return s
