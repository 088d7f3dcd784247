/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Wire protocol v1 between the RMR client (the nbdkit plugin, or a sync
 * pool inside rmr-storaged) and rmr-storaged.  docs/protocol.md describes
 * the exchanges; this header is the byte-exact definition.
 *
 * Every message is a fixed 64-byte little-endian header, followed by
 * payload_len bytes of payload:
 *
 *   off size field
 *   0   4    magic        RMR_PROTO_MAGIC ("RMR1" on the wire)
 *   4   1    version      RMR_PROTO_VERSION
 *   5   1    type         enum rmr_msg_type
 *   6   2    flags        RMR_HF_*
 *   8   4    group_id     jhash of the pool name (0 for KEEPALIVE)
 *   12  4    member_id    replies: the node's member; a sync session's
 *                         read, checksum and map requests: the member
 *                         they are meant for; else RMR_MEMBER_NONE
 *   16  8    generation   pool generation the sender believes in
 *   24  8    tag          chosen by the requester, echoed in the reply
 *   32  8    offset       IO: byte offset in the device
 *   40  4    length       IO: byte count
 *   44  4    payload_len  bytes following the header
 *   48  4    status       replies: 0 or a positive errno
 *   52  4    dirty_mask   writes: member slots that are not normal;
 *                         map messages: slots; a watch's reply: the
 *                         other slots behind there (pool_watch)
 *   56  4    wseq         write, trim, zero requests: the client's write
 *                         sequence number (serial, wraps); else 0
 *   60  4    horizon      write, trim, zero requests, and a flush (with
 *                         wseq 0): every write with an older wseq has
 *                         completed on every leg (or been recorded
 *                         missed); else 0
 *
 * A reply carries RMR_HF_REPLY, the request's type and tag.  A reply with
 * status != 0 may carry a one-line message (at most RMR_ERRMSG_MAX bytes,
 * no NUL) as payload.
 *
 * rmr_hdr_decode () checks everything that can be checked without knowing
 * the pool: magic, version, type, flags allowed for the type, reserved
 * bits, payload length rules per type, offset + length overflow.  The
 * receiver checks the rest (group_id known, generation, offset + length
 * within mapped_size).
 */
#ifndef RMR_PROTO_H
#define RMR_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "rmr/rmr.h"

#define RMR_PROTO_MAGIC 0x31524d52U /* 'R' 'M' 'R' '1' little-endian */
#define RMR_PROTO_VERSION 1
#define RMR_HDR_SIZE 64
#define RMR_ERRMSG_MAX 256
#define RMR_MAX_PAYLOAD RMR_MAX_IO_SIZE

enum rmr_msg_type {
  RMR_MSG_JOIN = 1,   /* join a pool: rmr_join_req/rmr_join_rep */
  RMR_MSG_ENABLE = 2, /* pool enable: rmr_enable_req */
  RMR_MSG_LEAVE = 3,  /* leave the pool (offset: leave mode) */
  RMR_MSG_READ = 4,
  RMR_MSG_WRITE = 5,
  RMR_MSG_FLUSH = 6,
  RMR_MSG_TRIM = 7,
  RMR_MSG_ZERO = 8,
  RMR_MSG_KEEPALIVE = 9,
  RMR_MSG_MAP_ADD = 10,   /* mark chunks dirty (see below) */
  RMR_MSG_MAP_GET = 11,   /* read one member's map as bits */
  RMR_MSG_MAP_CLEAR = 12, /* mark chunks clean */
  RMR_MSG_AL_GET = 13,    /* recent-write record: rmr_al_rep */
  RMR_MSG_CSUM = 14,      /* checksums of chunks (online verify, below) */
  RMR_MSG_TYPE_MAX = 14,
};

/* Map messages count in chunks, not bytes: offset is the first chunk,
 * length the number of chunks, dirty_mask the member slots concerned
 * (MAP_GET and a MAP_ADD with a bitmap: exactly one).  A MAP_ADD without payload marks the whole
 * range; with a payload of ceil (length / 8) bytes it marks the chunks
 * whose bits are set (LSB first).  A MAP_GET reply carries ceil (length /
 * 8) bytes of bits.  A MAP_ADD is acknowledged only once the bits are on
 * the member's store.
 */
#define RMR_MAP_MAX_CHUNKS ((uint64_t) RMR_MAX_PAYLOAD * 8)

/* Online verify: a checksum request names a byte range (offset, length
 * as a read: 1..RMR_MAX_IO_SIZE) of whole units and carries no payload;
 * the reply carries one little-endian crc32c per unit of the range, in
 * order.  A unit is the pool's chunk, or RMR_CSUM_UNIT_MAX bytes of a
 * larger chunk; the last unit may end at the device's end.
 */
#define RMR_CSUM_UNIT_MAX (1024U * 1024)
#define RMR_CSUM_REP_MAX(length)                                               \
  (4 * (((length) + RMR_MIN_CHUNK_SIZE - 1) / RMR_MIN_CHUNK_SIZE))

/* Watched clears (resync, DESIGN 6 "Map clears are conditional").  A
 * map-get with RMR_HF_WATCH (one slot) also starts watching its chunks
 * for that slot on the member: a later mark of a watched chunk (a write
 * that the slot's member missed) flags it.  A map-clear with
 * RMR_HF_WATCH (one slot) clears only the chunks watched and not flagged
 * since; every other chunk of the range keeps its bit, and the reply
 * carries ceil (length / 8) bytes of bits: the chunks kept.  Either way
 * the watch of the range ends.
 */

/* Zeroes without payload (a resync's fetch of a chunk that holds no
 * data).  A read request with RMR_HF_ZEROES takes an answer without the
 * bytes when every byte of the range reads as zero: a successful reply
 * with RMR_HF_ZEROES carries no payload and means exactly that.  A node
 * may answer such a request with the bytes anyway; a reply with
 * RMR_HF_ZEROES to a request without it is refused by the requester.
 */

/* Header flags. */
#define RMR_HF_REPLY 0x0001
#define RMR_HF_FUA 0x0002       /* write, trim, zero */
#define RMR_HF_MAY_TRIM 0x0004  /* zero */
#define RMR_HF_FAST_ZERO 0x0008 /* zero */
#define RMR_HF_WATCH 0x0010     /* map-get, map-clear: see above */
/* leave: no write of this client is in flight on any leg */
#define RMR_HF_QUIESCED 0x0020
#define RMR_HF_ZEROES 0x0040 /* read: see above */
#define RMR_HF_ALL 0x007f

/* Leave modes (the header's offset field of a LEAVE). */
enum rmr_leave_mode {
  RMR_LEAVE_DISASSEMBLE = 0, /* keep the store and its metadata */
  RMR_LEAVE_DELETE = 1,      /* expect a delete_store */
};

struct rmr_hdr {
  uint8_t type;
  uint16_t flags;
  uint32_t group_id;
  uint32_t member_id;
  uint64_t generation;
  uint64_t tag;
  uint64_t offset;
  uint32_t length;
  uint32_t payload_len;
  uint32_t status;
  uint32_t dirty_mask;
  uint32_t wseq, horizon;
};

/* Serial-number order of write sequence numbers (RFC 1982 style). */
static inline int
rmr_wseq_before (uint32_t a, uint32_t b)
{
  return (int32_t) (a - b) < 0;
}

void rmr_hdr_encode (const struct rmr_hdr *h, uint8_t *buf);
/* 0, or -EPROTO with a message naming the bad field. */
int rmr_hdr_decode (const uint8_t *buf, struct rmr_hdr *h);

const char *rmr_msg_type_name (unsigned type);

/* JOIN request payload (RMR_JOIN_REQ_SIZE bytes):
 *   0   u8[64] pool_name (NUL padded)
 *   64  u8[64] sessname (NUL padded)
 *   128 u8     mode (enum rmr_pool_mode; AUTO: either)
 *   129 u8     sync (RMR_JOIN_SYNC: a sync pool session from a peer
 *              member; 0: a client)
 *   130 u16    flags (RMR_JOIN_REQ_F_*; others 0)
 *   132 u32    chunk_size (0: any)
 *   136 u32    queue_depth
 *   140 u32    reserved (0)
 *   144 u64    mapped_size (0: any)
 */
#define RMR_JOIN_REQ_SIZE 152
/* The sync byte of a peer's sync session.  Its read, checksum and map
 * requests name the member they are meant for, and it learns from a
 * watch which other members are behind (protocol.md); with 3 its reads
 * may also ask for zeroes without payload (RMR_HF_ZEROES).  2 is the
 * previous version's (served: it never asks for zeroes); a peer of that
 * version refuses 3, and is joined with 2 again.  1 was an older
 * peer's, which did neither: refused, for its resync could take a
 * member that is behind as its source.
 */
#define RMR_JOIN_SYNC 3
#define RMR_JOIN_SYNC_NO_ZEROES 2
/* A probe: the member checks the request and answers as to a join, but
 * the session does not join (the pool's state, its sessions and its IO
 * are untouched).  A client learns so whether it has a leg to every
 * member before it assembles.
 */
#define RMR_JOIN_REQ_F_PROBE 0x1
struct rmr_join_req {
  char pool_name[RMR_POOL_NAME_MAX + 1];
  char sessname[RMR_SESS_NAME_MAX + 1];
  uint8_t mode;
  uint8_t sync;
  uint16_t flags;
  uint32_t chunk_size;
  uint32_t queue_depth;
  uint64_t mapped_size;
};

/* JOIN reply payload (RMR_JOIN_REP_SIZE bytes):
 *   0   u32    member_id
 *   4   u8     pool state (enum rmr_srv_pool_state)
 *   5   u8     fresh (1: the store never was in an enabled pool)
 *   6   u8     flags (RMR_JOIN_F_*)
 *   7   u8     min_legs the pool was last enabled with (0: unknown)
 *   8   u32    chunk_size (0 if fresh)
 *   12  u32    queue_depth
 *   16  u64    mapped_size
 *   24  u64    generation (persisted; 0 if fresh)
 *   32  u32    block_size (the store's logical block size)
 *   36  u32    reserved (0)
 *   40  8 x u32 members (slot table: member ids, RMR_MEMBER_NONE = empty)
 */
#define RMR_JOIN_REP_SIZE 72
#define RMR_JOIN_F_ZEROED 0x1   /* fresh store whose data reads as zeroes */
#define RMR_JOIN_F_REPLACED 0x2 /* fresh store that replaces a member's disk */
struct rmr_join_rep {
  uint32_t member_id;
  uint8_t state;
  uint8_t fresh;
  uint8_t flags;
  uint8_t min_legs;
  uint32_t chunk_size;
  uint32_t queue_depth;
  uint64_t mapped_size;
  uint64_t generation;
  uint32_t block_size;
  uint32_t members[RMR_MAX_MEMBERS];
};

/* ENABLE request payload (RMR_ENABLE_REQ_SIZE bytes): the pool_md the
 * client decided on, persisted by every member before it serves IO.
 *   0   u64    generation (new)
 *   8   u64    mapped_size
 *   16  u32    chunk_size
 *   20  u32    queue_depth
 *   24  u8     mode (CREATE or ASSEMBLE)
 *   25  u8     min_legs of the client (1..8): persisted, so that a later
 *              assemble knows on how few members a write may be
 *   26  u8[6]  reserved (0)
 *   32  8 x u32 members (slot table)
 */
#define RMR_ENABLE_REQ_SIZE 64
struct rmr_enable_req {
  uint64_t generation;
  uint64_t mapped_size;
  uint32_t chunk_size;
  uint32_t queue_depth;
  uint8_t mode;
  uint8_t min_legs;
  uint32_t members[RMR_MAX_MEMBERS];
};

/* AL_GET reply payload (RMR_AL_REP_HDR + 4 * n bytes): what a member
 * knows that may differ between legs (DESIGN 6).
 *   0   u32    flags (RMR_AL_F_*)
 *   4   u32    extent_shift (12-40): extents are 1 << shift data bytes
 *   8   u32    n
 *   12  u32    reserved (0)
 *   16  u64    writes (writes this member admitted: a tie-breaker)
 *   24  8 x u32 member states as this member knows them (enum
 *              rmr_member_state of md.h, by slot)
 *   56  n x u32 extents, ascending
 */
#define RMR_AL_REP_HDR 56
#define RMR_AL_MAX_EXTENTS 4096
#define RMR_AL_F_CLEAN 0x1 /* started after a clean stop, or new */
#define RMR_AL_F_LOST 0x2  /* its record is damaged: all may differ */
struct rmr_al_rep {
  uint32_t flags;
  uint32_t shift;
  uint32_t n;
  uint64_t writes;
  uint32_t states[RMR_MAX_MEMBERS];
  uint32_t extents[RMR_AL_MAX_EXTENTS];
};

/* Server pool states (DESIGN 3), as carried in rmr_join_rep.state. */
enum rmr_srv_pool_state {
  RMR_POOL_EMPTY = 0,
  RMR_POOL_REGISTERED = 1,
  RMR_POOL_CREATED = 2,
  RMR_POOL_NORMAL = 3,
  RMR_POOL_NO_IO = 4,
};
const char *rmr_srv_pool_state_name (unsigned state);

void rmr_join_req_encode (const struct rmr_join_req *r, uint8_t *buf);
int rmr_join_req_decode (const uint8_t *buf, struct rmr_join_req *r);
void rmr_join_rep_encode (const struct rmr_join_rep *r, uint8_t *buf);
int rmr_join_rep_decode (const uint8_t *buf, struct rmr_join_rep *r);
void rmr_enable_req_encode (const struct rmr_enable_req *r, uint8_t *buf);
/* buf holds RMR_AL_REP_HDR + 4 * r->n bytes. */
void rmr_al_rep_encode (const struct rmr_al_rep *r, uint8_t *buf);
int rmr_al_rep_decode (const uint8_t *buf, size_t len, struct rmr_al_rep *r);
int rmr_enable_req_decode (const uint8_t *buf, struct rmr_enable_req *r);

/* The connection preamble ("hello", DESIGN 9), before any message and
 * before TLS: the connecting side sends one, the listening side answers
 * one, 16 bytes each, little-endian:
 *
 *   off size field
 *   0   8    magic    "RMRHELLO"
 *   8   2    version  RMR_HELLO_VERSION
 *   10  2    flags    request: RMR_HELLO_TLS = the client has keys and
 *                     wants TLS; reply: RMR_HELLO_TLS = a TLS handshake
 *                     follows (only if the request asked for it)
 *   12  4    refusal  reply: 0, or why the session is refused (the
 *                     listener closes it after the reply); request: 0
 *
 * With RMR_HELLO_TLS in the reply both sides run a TLS 1.3 handshake
 * with pre-shared keys (tls.h) on the socket; every message after it is
 * inside TLS.  Without it the messages follow in plaintext.
 */
#define RMR_HELLO_SIZE 16
#define RMR_HELLO_VERSION 1
#define RMR_HELLO_TLS 0x1
enum rmr_hello_refusal {
  RMR_HELLO_OK = 0,
  RMR_HELLO_TLS_REQUIRED = 1, /* plaintext asked of a tls=require node */
  RMR_HELLO_BUSY = 2,         /* too many handshakes in progress */
  RMR_HELLO_UNKNOWN_ID = 3,   /* ucx: the identity is not in the key file */
  RMR_HELLO_REFUSAL_MAX = 3,
};

struct rmr_hello {
  uint16_t version;
  uint16_t flags;
  uint32_t refusal;
};

void rmr_hello_encode (const struct rmr_hello *h, uint8_t *buf);
/* reply: whether buf is a listener's answer (refusal allowed) or a
 * connecting side's request (refusal must be 0).  -EPROTO with the bad
 * field named.
 */
int rmr_hello_decode (const uint8_t *buf, bool reply, struct rmr_hello *h);
const char *rmr_hello_refusal_text (unsigned refusal);

/* The listening side's answer to a decoded request, under its TLS mode
 * (transport-tcp-listen.c has the table): TLS when both sides have keys,
 * a TLS_REQUIRED refusal for plaintext asked of a tls=require node.
 */
void rmr_hello_answer (enum rmr_tls_mode mode, const struct rmr_hello *req,
                       struct rmr_hello *rep);
/* The connecting side's verdict on a decoded reply, under its TLS mode:
 * 1 = a TLS handshake follows, 0 = plaintext, or a refusal with the
 * reason recorded: -EACCES (TLS required by one side, not offered by the
 * other), -ECONNREFUSED (busy), -EPROTO (TLS offered though not asked).
 */
int rmr_hello_verdict (enum rmr_tls_mode mode, const struct rmr_hello *rep);

#endif /* RMR_PROTO_H */
