/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the wire decoders of common/proto.c (proto.h has
 * the byte layout): every byte a peer sends goes through these before
 * anything acts on it (DESIGN 9).
 *
 * Input layout: the first RMR_HDR_SIZE bytes are a message header
 * (zero-padded when the input is shorter); the rest, when it is long
 * enough, is given to each payload decoder whose size it reaches
 * (rmr_join_req_decode, rmr_join_rep_decode, rmr_enable_req_decode).  The
 * header is decoded twice: as given, and with the magic and the version
 * forced and wseq and horizon zeroed (they are only allowed on writes,
 * trims and zeroes), so that every per-type rule is reachable without the
 * fuzzer having to find the magic first.
 *
 * Invariants, written from proto.h's rules rather than from proto.c:
 *   - a decoder returns 0 or -EPROTO; on -EPROTO rmr_get_errno () is
 *     EPROTO and rmr_get_error () a non-empty message on one line;
 *   - an accepted header encodes back to the identical 64 bytes, has a
 *     known type, only the flags its type allows, payload_len at most
 *     RMR_MAX_PAYLOAD and by the type's payload rule (a WRITE request and
 *     a READ reply carry length bytes, JOIN and ENABLE requests and a
 *     JOIN reply their payload structures, a MAP_GET reply and a watched
 *     MAP_CLEAR reply one bit a chunk, an error reply at most
 *     RMR_ERRMSG_MAX bytes, everything else none), IO lengths in bounds,
 *     offset + length without overflow, offset/length zero where they mean
 *     nothing, a LEAVE mode known, status only on replies and an errno,
 *     dirty_mask only on writes and within RMR_MAX_MEMBERS slots (one slot
 *     for a map-get, a watched map-clear and a bitmap map-add), wseq and
 *     horizon only on write, trim and zero requests, and a group_id on
 *     every request but JOIN and KEEPALIVE;
 *   - an accepted payload encodes back to the identical bytes, decodes
 *     again to the same structure, and its fields are in range (names
 *     valid, modes and states known, chunk_size a valid power of two,
 *     queue_depth 1..RMR_MAX_QUEUE_DEPTH, sizes multiples of 512, member
 *     ids distinct, min_legs at most RMR_MAX_MEMBERS and, in an enable,
 *     at least 1).
 *
 * Built with clang -fsanitize=fuzzer, libFuzzer's main () drives it;
 * without libFuzzer, the weak main () of fuzz-main.c replays files or the
 * built-in inputs of fuzz_builtin () below (tests/fuzz/README).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "jhash.h"
#include "parse.h"
#include "proto.h"
#include "util.h"

/* The largest payload structure. */
#define PAYLOAD_MAX RMR_JOIN_REQ_SIZE

/* A refusal: -EPROTO and a one-line message set by this call. */
static void
check_failure (int r)
{
  assert (r == -EPROTO);
  fuzz_check_message (r);
}

static bool
is_valid_chunk_size (uint32_t cs)
{
  return cs >= RMR_MIN_CHUNK_SIZE && cs <= RMR_MAX_CHUNK_SIZE &&
         (cs & (cs - 1)) == 0;
}

/* Used slots of a slot table hold distinct member ids. */
static void
check_members (const uint32_t *members)
{
  for (unsigned i = 0; i < RMR_MAX_MEMBERS; i++)
    for (unsigned j = 0; j < i; j++)
      assert (members[i] == RMR_MEMBER_NONE || members[i] != members[j]);
}

/* Header ------------------------------------------------------------------ */

/* The flags a type may carry besides RMR_HF_REPLY (proto.h: FUA on write,
 * trim and zero; MAY_TRIM and FAST_ZERO on zero; WATCH on map-get and
 * map-clear; QUIESCED on leave; ZEROES on read).
 */
static uint16_t
flags_allowed (unsigned type)
{
  switch (type) {
  case RMR_MSG_WRITE:
  case RMR_MSG_TRIM: return RMR_HF_FUA;
  case RMR_MSG_ZERO: return RMR_HF_FUA | RMR_HF_MAY_TRIM | RMR_HF_FAST_ZERO;
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR: return RMR_HF_WATCH;
  case RMR_MSG_LEAVE: return RMR_HF_QUIESCED;
  case RMR_MSG_READ: return RMR_HF_ZEROES;
  default: return 0;
  }
}

/* payload_len of a request or of a successful reply. */
static uint32_t
payload_expected (const struct rmr_hdr *h)
{
  bool reply = h->flags & RMR_HF_REPLY;

  switch (h->type) {
  case RMR_MSG_JOIN: return reply ? RMR_JOIN_REP_SIZE : RMR_JOIN_REQ_SIZE;
  case RMR_MSG_ENABLE: return reply ? 0 : RMR_ENABLE_REQ_SIZE;
  case RMR_MSG_READ:
    /* Zeroes without payload: no payload at all. */
    return reply && !(h->flags & RMR_HF_ZEROES) ? h->length : 0;
  case RMR_MSG_WRITE: return reply ? 0 : h->length;
  case RMR_MSG_MAP_ADD:
    /* The range form has no payload, the bitmap form one bit a chunk. */
    return reply || h->payload_len == 0 ? 0 : (h->length + 7) / 8;
  case RMR_MSG_MAP_GET: return reply ? (h->length + 7) / 8 : 0;
  case RMR_MSG_MAP_CLEAR:
    /* A watched clear's reply: the chunks kept. */
    return reply && (h->flags & RMR_HF_WATCH) ? (h->length + 7) / 8 : 0;
  default: return 0;
  }
}

static void
check_header_ok (const uint8_t *buf, const struct rmr_hdr *h)
{
  uint8_t again[RMR_HDR_SIZE];
  bool reply = h->flags & RMR_HF_REPLY;
  uint64_t end;

  rmr_hdr_encode (h, again);
  assert (memcmp (buf, again, RMR_HDR_SIZE) == 0);

  assert (h->type >= 1 && h->type <= RMR_MSG_TYPE_MAX);
  assert (strcmp (rmr_msg_type_name (h->type), "unknown") != 0);
  assert ((h->flags & ~(RMR_HF_REPLY | flags_allowed (h->type))) == 0);

  assert (h->payload_len <= RMR_MAX_PAYLOAD);
  if (reply && h->status != 0)
    assert (h->payload_len <= RMR_ERRMSG_MAX);
  else if (reply && h->type == RMR_MSG_CSUM)
    assert (h->payload_len > 0 && h->payload_len % 4 == 0 &&
            h->payload_len <= RMR_CSUM_REP_MAX (h->length));
  else if (reply && h->type == RMR_MSG_AL_GET)
    assert (h->payload_len >= RMR_AL_REP_HDR &&
            (h->payload_len - RMR_AL_REP_HDR) % 4 == 0 &&
            h->payload_len <= RMR_AL_REP_HDR + 4 * RMR_AL_MAX_EXTENTS);
  else
    assert (h->payload_len == payload_expected (h));

  switch (h->type) {
  case RMR_MSG_READ:
  case RMR_MSG_WRITE:
  case RMR_MSG_CSUM:
    assert (h->length >= 1 && h->length <= RMR_MAX_IO_SIZE);
    assert (!__builtin_add_overflow (h->offset, (uint64_t) h->length, &end));
    break;
  case RMR_MSG_TRIM:
  case RMR_MSG_ZERO:
    assert (h->length >= 1);
    assert (!__builtin_add_overflow (h->offset, (uint64_t) h->length, &end));
    break;
  case RMR_MSG_LEAVE:
    assert (h->length == 0);
    assert (h->offset == RMR_LEAVE_DISASSEMBLE ||
            h->offset == RMR_LEAVE_DELETE);
    break;
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    assert (h->length >= 1 && h->length <= RMR_MAP_MAX_CHUNKS);
    assert (reply || h->dirty_mask != 0);
    assert (reply ||
            (h->type != RMR_MSG_MAP_GET && !(h->flags & RMR_HF_WATCH) &&
             (h->type != RMR_MSG_MAP_ADD || h->payload_len == 0)) ||
            (h->dirty_mask & (h->dirty_mask - 1)) == 0);
    break;
  default: assert (h->offset == 0 && h->length == 0);
  }

  assert (reply || h->status == 0);
  assert (h->status <= 4095);
  assert ((h->dirty_mask >> RMR_MAX_MEMBERS) == 0);
  assert (h->dirty_mask == 0 || h->type == RMR_MSG_WRITE ||
          h->type == RMR_MSG_TRIM || h->type == RMR_MSG_ZERO ||
          h->type == RMR_MSG_MAP_ADD || h->type == RMR_MSG_MAP_GET ||
          h->type == RMR_MSG_MAP_CLEAR);
  assert (reply || h->group_id != 0 || h->type == RMR_MSG_JOIN ||
          h->type == RMR_MSG_KEEPALIVE);
  assert ((h->wseq == 0 && h->horizon == 0) ||
          (!reply && (h->type == RMR_MSG_WRITE || h->type == RMR_MSG_TRIM ||
                      h->type == RMR_MSG_ZERO)) ||
          (!reply && h->type == RMR_MSG_FLUSH && h->wseq == 0));
}

static void
check_header (const uint8_t *buf)
{
  struct rmr_hdr h;
  int r;

  rmr_err_clear ();
  r = rmr_hdr_decode (buf, &h);
  if (r == 0)
    check_header_ok (buf, &h);
  else
    check_failure (r);
}

/* Payloads ---------------------------------------------------------------- */

static void
check_join_req (const uint8_t *buf)
{
  struct rmr_join_req r, again;
  uint8_t enc[RMR_JOIN_REQ_SIZE];
  int e;

  rmr_err_clear ();
  e = rmr_join_req_decode (buf, &r);
  if (e != 0) {
    check_failure (e);
    return;
  }
  rmr_join_req_encode (&r, enc);
  assert (memcmp (buf, enc, RMR_JOIN_REQ_SIZE) == 0);
  assert (rmr_join_req_decode (enc, &again) == 0);
  assert (memcmp (&r, &again, sizeof r) == 0);

  assert (rmr_check_pool_name ("pool_name", r.pool_name) == 0);
  assert (rmr_check_sess_name ("sessname", r.sessname) == 0);
  assert (r.mode <= RMR_MODE_ASSEMBLE);
  assert (r.sync == 0 || r.sync == RMR_JOIN_SYNC ||
          r.sync == RMR_JOIN_SYNC_NO_ZEROES);
  assert (r.chunk_size == 0 || is_valid_chunk_size (r.chunk_size));
  assert (r.queue_depth >= 1 && r.queue_depth <= RMR_MAX_QUEUE_DEPTH);
  assert (r.mapped_size % 512 == 0);
}

static void
check_join_rep (const uint8_t *buf)
{
  struct rmr_join_rep r, again;
  uint8_t enc[RMR_JOIN_REP_SIZE];
  int e;

  rmr_err_clear ();
  e = rmr_join_rep_decode (buf, &r);
  if (e != 0) {
    check_failure (e);
    return;
  }
  rmr_join_rep_encode (&r, enc);
  assert (memcmp (buf, enc, RMR_JOIN_REP_SIZE) == 0);
  assert (rmr_join_rep_decode (enc, &again) == 0);
  assert (memcmp (&r, &again, sizeof r) == 0);

  assert (r.member_id != RMR_MEMBER_NONE);
  assert (r.state <= RMR_POOL_NO_IO);
  assert (strcmp (rmr_srv_pool_state_name (r.state), "unknown") != 0);
  assert (r.fresh <= 1);
  assert (r.min_legs <= RMR_MAX_MEMBERS);
  assert (is_valid_chunk_size (r.chunk_size) || (r.fresh && r.chunk_size == 0));
  assert (r.mapped_size > 0 && r.mapped_size % 512 == 0);
  assert (r.block_size >= 512 && r.block_size <= 65536 &&
          (r.block_size & (r.block_size - 1)) == 0);
  check_members (r.members);
}

static void
check_enable_req (const uint8_t *buf)
{
  struct rmr_enable_req r, again;
  uint8_t enc[RMR_ENABLE_REQ_SIZE];
  int e;

  rmr_err_clear ();
  e = rmr_enable_req_decode (buf, &r);
  if (e != 0) {
    check_failure (e);
    return;
  }
  rmr_enable_req_encode (&r, enc);
  assert (memcmp (buf, enc, RMR_ENABLE_REQ_SIZE) == 0);
  assert (rmr_enable_req_decode (enc, &again) == 0);
  assert (memcmp (&r, &again, sizeof r) == 0);

  assert (r.generation != 0);
  assert (r.mapped_size > 0 && r.mapped_size % 512 == 0);
  assert (is_valid_chunk_size (r.chunk_size));
  assert (r.queue_depth >= 1 && r.queue_depth <= RMR_MAX_QUEUE_DEPTH);
  assert (r.mode == RMR_MODE_CREATE || r.mode == RMR_MODE_ASSEMBLE);
  assert (r.min_legs >= 1 && r.min_legs <= RMR_MAX_MEMBERS);
  check_members (r.members);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t hdr[RMR_HDR_SIZE];
  const uint8_t *rest = data + MIN (size, (size_t) RMR_HDR_SIZE);
  size_t rest_len = size - (rest - data);

  /* As given. */
  memset (hdr, 0, sizeof hdr);
  memcpy (hdr, data, MIN (size, sizeof hdr));
  check_header (hdr);

  /* Magic and version forced, wseq and horizon zeroed: the per-type
   * rules.
   */
  put_le32 (hdr, RMR_PROTO_MAGIC);
  hdr[4] = RMR_PROTO_VERSION;
  memset (hdr + 56, 0, 8);
  check_header (hdr);

  if (rest_len >= RMR_JOIN_REQ_SIZE)
    check_join_req (rest);
  if (rest_len >= RMR_JOIN_REP_SIZE)
    check_join_rep (rest);
  if (rest_len >= RMR_ENABLE_REQ_SIZE)
    check_enable_req (rest);
  return 0;
}

/* Built-in inputs ----------------------------------------------------------- */

/* A header followed by len bytes of payload. */
static void
message (const struct rmr_hdr *h, const void *payload, size_t len)
{
  uint8_t buf[RMR_HDR_SIZE + PAYLOAD_MAX + 8];

  assert (len <= sizeof buf - RMR_HDR_SIZE);
  rmr_hdr_encode (h, buf);
  if (len)
    memcpy (buf + RMR_HDR_SIZE, payload, len);
  fuzz_input (buf, RMR_HDR_SIZE + len);
}

static void
builtin_headers (uint32_t gid)
{
  struct rmr_hdr h;
  static const struct rmr_hdr io[] = {
    {.type = RMR_MSG_READ, .offset = 0, .length = 4096},
    {.type = RMR_MSG_WRITE,
     .flags = RMR_HF_FUA,
     .offset = 1 << 20,
     .length = 4096,
     .payload_len = 4096,
     .dirty_mask = 0x2},
    {.type = RMR_MSG_WRITE,
     .length = RMR_MAX_IO_SIZE,
     .payload_len = RMR_MAX_IO_SIZE},
    {.type = RMR_MSG_WRITE,
     .length = RMR_MAX_IO_SIZE + 1,
     .payload_len = RMR_MAX_IO_SIZE + 1},
    {.type = RMR_MSG_WRITE, .length = 512, .payload_len = 511},
    {.type = RMR_MSG_READ, .offset = UINT64_MAX - 4096, .length = 4096},
    {.type = RMR_MSG_READ, .offset = UINT64_MAX - 4095, .length = 4096},
    {.type = RMR_MSG_TRIM, .offset = 4096, .length = UINT32_MAX},
    {.type = RMR_MSG_ZERO,
     .flags = RMR_HF_FUA | RMR_HF_MAY_TRIM | RMR_HF_FAST_ZERO,
     .length = 65536},
    {.type = RMR_MSG_ZERO, .length = 0},
    {.type = RMR_MSG_FLUSH},
    {.type = RMR_MSG_FLUSH, .flags = RMR_HF_FUA},
    {.type = RMR_MSG_LEAVE, .offset = RMR_LEAVE_DELETE},
    {.type = RMR_MSG_LEAVE, .offset = 2},
    {.type = RMR_MSG_READ, .length = 4096, .dirty_mask = 1},
    {.type = RMR_MSG_WRITE,
     .length = 8,
     .payload_len = 8,
     .dirty_mask = 1u << RMR_MAX_MEMBERS},
  };

  for (size_t i = 0; i < ARRAY_SIZE (io); i++) {
    h = io[i];
    h.group_id = gid;
    h.generation = 3;
    h.tag = i;
    message (&h, NULL, 0);
    /* Its successful reply, and an error reply with a message. */
    h.flags |= RMR_HF_REPLY;
    h.payload_len = h.type == RMR_MSG_READ ? h.length : 0;
    message (&h, NULL, 0);
    h.status = EIO;
    h.payload_len = 9;
    message (&h, "disk fell", 9);
  }

  /* Flags and fields added after the first version of this target, each
   * accepted where proto.h allows it.  The first: a LEAVE reply with
   * QUIESCED, the first crash of the kept-corpus run (issue 9, part 6: a
   * stale invariant here, not a decoder bug).
   */
  h = (struct rmr_hdr){.type = RMR_MSG_LEAVE,
                       .flags = RMR_HF_REPLY | RMR_HF_QUIESCED,
                       .group_id = 0xe7fbfbe1,
                       .member_id = 45,
                       .generation = 0x300};
  message (&h, NULL, 0);
  h.flags = RMR_HF_QUIESCED;
  message (&h, NULL, 0);
  h = (struct rmr_hdr){.type = RMR_MSG_MAP_GET,
                       .flags = RMR_HF_WATCH,
                       .group_id = gid,
                       .offset = 5,
                       .length = 20,
                       .dirty_mask = 0x4};
  message (&h, NULL, 0);
  h.flags |= RMR_HF_REPLY;
  h.payload_len = 3;
  message (&h, "\xff\x0f\x01", 3);
  h.type = RMR_MSG_MAP_CLEAR; /* the watched clear's reply: chunks kept */
  message (&h, "\x00\x10\x00", 3);
  h.flags = RMR_HF_WATCH;
  h.payload_len = 0;
  message (&h, NULL, 0);
  h.dirty_mask = 0x6; /* a watched clear names one slot */
  message (&h, NULL, 0);
  h.flags = 0; /* an unwatched one may name several */
  message (&h, NULL, 0);
  h = (struct rmr_hdr){.type = RMR_MSG_WRITE,
                       .group_id = gid,
                       .length = 512,
                       .payload_len = 512,
                       .wseq = 0xfffffffe,
                       .horizon = 0xfffffff0};
  message (&h, NULL, 0);
  h.type = RMR_MSG_READ; /* wseq on a read */
  h.payload_len = 0;
  message (&h, NULL, 0);
  /* A read that takes zeroes without payload, and such an answer. */
  h = (struct rmr_hdr){.type = RMR_MSG_READ,
                       .flags = RMR_HF_ZEROES,
                       .group_id = gid,
                       .length = 4096};
  message (&h, NULL, 0);
  h.flags = RMR_HF_REPLY | RMR_HF_ZEROES;
  message (&h, NULL, 0);
  h.payload_len = 4096; /* zeroes with a payload */
  message (&h, NULL, 0);

  h = (struct rmr_hdr){.type = RMR_MSG_KEEPALIVE, .member_id = RMR_MEMBER_NONE};
  message (&h, NULL, 0);
  h.status = 4096;
  h.flags = RMR_HF_REPLY;
  message (&h, NULL, 0);
  h = (struct rmr_hdr){.type = RMR_MSG_READ, .length = 4096};
  message (&h, NULL, 0); /* group_id 0 */
  h = (struct rmr_hdr){.type = RMR_MSG_ENABLE,
                       .group_id = gid,
                       .flags = RMR_HF_REPLY,
                       .status = ENOSPC,
                       .payload_len = RMR_ERRMSG_MAX + 1};
  message (&h, NULL, 0);
  h.payload_len = RMR_MAX_PAYLOAD + 1;
  message (&h, NULL, 0);
}

static void
builtin_payloads (uint32_t gid)
{
  uint8_t p[PAYLOAD_MAX];
  struct rmr_hdr h = {.group_id = gid, .member_id = RMR_MEMBER_NONE};
  struct rmr_join_req jq = {
    .pool_name = "pool1",
    .sessname = "clt1@srv1:7700",
    .mode = RMR_MODE_AUTO,
    .chunk_size = RMR_DEFAULT_CHUNK_SIZE,
    .queue_depth = 128,
    .mapped_size = 1 << 30,
  };
  struct rmr_join_rep jp = {
    .member_id = 2,
    .state = RMR_POOL_NORMAL,
    .chunk_size = RMR_DEFAULT_CHUNK_SIZE,
    .queue_depth = 128,
    .mapped_size = 1 << 30,
    .generation = 5,
    .block_size = 4096,
    .min_legs = 2,
  };
  struct rmr_enable_req en = {
    .generation = 6,
    .mapped_size = 1 << 30,
    .chunk_size = RMR_DEFAULT_CHUNK_SIZE,
    .queue_depth = 128,
    .mode = RMR_MODE_CREATE,
    .min_legs = 2,
  };

  for (unsigned i = 0; i < RMR_MAX_MEMBERS; i++)
    jp.members[i] = en.members[i] = i < 3 ? i + 1 : RMR_MEMBER_NONE;

  h.type = RMR_MSG_JOIN;
  h.payload_len = RMR_JOIN_REQ_SIZE;
  rmr_join_req_encode (&jq, p);
  message (&h, p, RMR_JOIN_REQ_SIZE);
  jq.sync = RMR_JOIN_SYNC;
  jq.mode = RMR_MODE_ASSEMBLE;
  jq.chunk_size = 0;
  rmr_join_req_encode (&jq, p);
  message (&h, p, RMR_JOIN_REQ_SIZE);
  jq.sync = RMR_JOIN_SYNC_NO_ZEROES; /* a peer of the version before */
  rmr_join_req_encode (&jq, p);
  message (&h, p, RMR_JOIN_REQ_SIZE);
  jq.sync = RMR_JOIN_SYNC;
  rmr_join_req_encode (&jq, p);
  message (&h, p, RMR_JOIN_REQ_SIZE);
  p[70] = '/'; /* sessname */
  message (&h, p, RMR_JOIN_REQ_SIZE);
  rmr_join_req_encode (&jq, p);
  p[63] = 'x'; /* pool_name without its NUL */
  message (&h, p, RMR_JOIN_REQ_SIZE);

  h.flags = RMR_HF_REPLY;
  h.member_id = 2;
  h.payload_len = RMR_JOIN_REP_SIZE;
  rmr_join_rep_encode (&jp, p);
  message (&h, p, RMR_JOIN_REP_SIZE);
  jp.fresh = 1;
  jp.chunk_size = 0;
  jp.members[3] = 2; /* twice */
  rmr_join_rep_encode (&jp, p);
  message (&h, p, RMR_JOIN_REP_SIZE);

  h.type = RMR_MSG_ENABLE;
  h.flags = 0;
  h.payload_len = RMR_ENABLE_REQ_SIZE;
  rmr_enable_req_encode (&en, p);
  message (&h, p, RMR_ENABLE_REQ_SIZE);
  en.min_legs = 0; /* 1..RMR_MAX_MEMBERS */
  rmr_enable_req_encode (&en, p);
  message (&h, p, RMR_ENABLE_REQ_SIZE);
  en.min_legs = RMR_MAX_MEMBERS + 1;
  rmr_enable_req_encode (&en, p);
  message (&h, p, RMR_ENABLE_REQ_SIZE);
  en.min_legs = RMR_MAX_MEMBERS;
  en.mode = RMR_MODE_AUTO;
  rmr_enable_req_encode (&en, p);
  message (&h, p, RMR_ENABLE_REQ_SIZE);
}

void
fuzz_builtin (void)
{
  uint32_t gid = rmr_group_id ("pool1");
  uint8_t zero[RMR_HDR_SIZE + PAYLOAD_MAX];

  memset (zero, 0, sizeof zero);
  fuzz_input (zero, 0);
  fuzz_input (zero, 10);
  fuzz_input (zero, RMR_HDR_SIZE);
  fuzz_input (zero, sizeof zero);
  FUZZ_INPUT_LITERAL ("RMR1\x01");
  builtin_headers (gid);
  builtin_payloads (gid);
}
