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
