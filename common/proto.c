/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Wire protocol v1: encoding and validation of the message header and of
 * the control payloads (proto.h has the byte layout).
 *
 * Decoding is strict: every field that has a meaning is checked, every
 * reserved byte must be zero, and each message type has its own rules for
 * flags, lengths and payload.  A decoder never trusts a length before
 * checking it, so a malformed or hostile message is refused with a
 * message naming the field, before anything acts on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "jhash.h"
#include "md.h"
#include "parse.h"
#include "proto.h"
#include "util.h"

static const char *const type_names[] = {
  [RMR_MSG_JOIN] = "join",           [RMR_MSG_ENABLE] = "enable",
  [RMR_MSG_LEAVE] = "leave",         [RMR_MSG_READ] = "read",
  [RMR_MSG_WRITE] = "write",         [RMR_MSG_FLUSH] = "flush",
  [RMR_MSG_TRIM] = "trim",           [RMR_MSG_ZERO] = "zero",
  [RMR_MSG_KEEPALIVE] = "keepalive", [RMR_MSG_MAP_ADD] = "map-add",
  [RMR_MSG_MAP_GET] = "map-get",     [RMR_MSG_MAP_CLEAR] = "map-clear",
  [RMR_MSG_AL_GET] = "al-get",       [RMR_MSG_CSUM] = "checksum",
};

const char *
rmr_msg_type_name (unsigned type)
{
  if (type < ARRAY_SIZE (type_names) && type_names[type])
    return type_names[type];
  return "unknown";
}

static const char *const state_names[] = {
  [RMR_POOL_EMPTY] = "empty",     [RMR_POOL_REGISTERED] = "registered",
  [RMR_POOL_CREATED] = "created", [RMR_POOL_NORMAL] = "normal",
  [RMR_POOL_NO_IO] = "no_io",
};

const char *
rmr_srv_pool_state_name (unsigned state)
{
  if (state < ARRAY_SIZE (state_names))
    return state_names[state];
  return "unknown";
}

void
rmr_hdr_encode (const struct rmr_hdr *h, uint8_t *buf)
{
  put_le32 (buf + 0, RMR_PROTO_MAGIC);
  buf[4] = RMR_PROTO_VERSION;
  buf[5] = h->type;
  put_le16 (buf + 6, h->flags);
  put_le32 (buf + 8, h->group_id);
  put_le32 (buf + 12, h->member_id);
  put_le64 (buf + 16, h->generation);
  put_le64 (buf + 24, h->tag);
  put_le64 (buf + 32, h->offset);
  put_le32 (buf + 40, h->length);
  put_le32 (buf + 44, h->payload_len);
  put_le32 (buf + 48, h->status);
  put_le32 (buf + 52, h->dirty_mask);
  put_le32 (buf + 56, h->wseq);
  put_le32 (buf + 60, h->horizon);
}

/* Flags each request type may carry (besides RMR_HF_REPLY). */
static uint16_t
allowed_flags (unsigned type)
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

static int bad (const struct rmr_hdr *h, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static int
bad (const struct rmr_hdr *h, const char *fmt, ...)
{
  char what[200];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (what, sizeof what, fmt, ap);
  va_end (ap);
  return rmr_err (EPROTO, "bad %s%s message: %s", rmr_msg_type_name (h->type),
                  h->flags & RMR_HF_REPLY ? " reply" : "", what);
}

/* Payload rules of a successful reply / of a request. */
static int
check_payload (const struct rmr_hdr *h)
{
  const bool reply = h->flags & RMR_HF_REPLY;
  uint32_t want;

  if (reply && h->status != 0) {
    if (h->payload_len > RMR_ERRMSG_MAX)
      return bad (h, "payload_len %u of an error reply exceeds %u",
                  h->payload_len, RMR_ERRMSG_MAX);
    return 0;
  }

  switch (h->type) {
  case RMR_MSG_JOIN:
    want = reply ? RMR_JOIN_REP_SIZE : RMR_JOIN_REQ_SIZE;
    break;
  case RMR_MSG_ENABLE: want = reply ? 0 : RMR_ENABLE_REQ_SIZE; break;
  case RMR_MSG_READ:
    want = reply && !(h->flags & RMR_HF_ZEROES) ? h->length : 0;
    break;
  case RMR_MSG_CSUM:
    want = 0;
    if (!reply)
      break;
    if (h->payload_len == 0 || h->payload_len % 4 ||
        h->payload_len > RMR_CSUM_REP_MAX (h->length))
      return bad (h, "payload_len %u of checksums for %u bytes", h->payload_len,
                  h->length);
    return 0;
  case RMR_MSG_WRITE: want = reply ? 0 : h->length; break;
  case RMR_MSG_MAP_ADD:
    if (!reply && h->payload_len == 0)
      return 0; /* the range form */
    want = reply ? 0 : (h->length + 7) / 8;
    break;
  case RMR_MSG_MAP_GET: want = reply ? (h->length + 7) / 8 : 0; break;
  case RMR_MSG_MAP_CLEAR:
    want = reply && (h->flags & RMR_HF_WATCH) ? (h->length + 7) / 8 : 0;
    break;
  case RMR_MSG_AL_GET:
    want = 0;
    if (!reply)
      break;
    if (h->payload_len < RMR_AL_REP_HDR ||
        (h->payload_len - RMR_AL_REP_HDR) % 4 ||
        h->payload_len > RMR_AL_REP_HDR + 4 * RMR_AL_MAX_EXTENTS)
      return bad (h, "payload_len %u of a recent-write record", h->payload_len);
    return 0;
  default: want = 0;
  }
  if (h->payload_len != want)
    return bad (h, "payload_len %u, expected %u", h->payload_len, want);
  return 0;
}

/* IO rules: length within bounds, offset + length does not overflow. */
static int
check_io (const struct rmr_hdr *h)
{
  uint64_t end;

  switch (h->type) {
  case RMR_MSG_READ:
  case RMR_MSG_WRITE:
  case RMR_MSG_CSUM:
    if (h->length == 0 || h->length > RMR_MAX_IO_SIZE)
      return bad (h, "length %u not in 1..%u", h->length, RMR_MAX_IO_SIZE);
    break;
  case RMR_MSG_TRIM:
  case RMR_MSG_ZERO:
    if (h->length == 0)
      return bad (h, "length 0");
    break;
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    if (h->length == 0 || h->length > RMR_MAP_MAX_CHUNKS)
      return bad (h, "length %u chunks not in 1..%" PRIu64, h->length,
                  RMR_MAP_MAX_CHUNKS);
    if (!(h->flags & RMR_HF_REPLY) && h->dirty_mask == 0)
      return bad (h, "dirty_mask names no member slot");
    if (!(h->flags & RMR_HF_REPLY) && !is_power_of_2 (h->dirty_mask) &&
        (h->type == RMR_MSG_MAP_GET || (h->flags & RMR_HF_WATCH) ||
         (h->type == RMR_MSG_MAP_ADD && h->payload_len)))
      return bad (h,
                  "dirty_mask 0x%x: a map-get, a watched map-clear or a "
                  "bitmap map-add names one slot",
                  h->dirty_mask);
    break;
  case RMR_MSG_LEAVE:
    if (h->length != 0)
      return bad (h, "length %u, expected 0", h->length);
    if (h->offset > RMR_LEAVE_DELETE)
      return bad (h, "leave mode %" PRIu64 " unknown", h->offset);
    return 0;
  default:
    if (h->length != 0 || h->offset != 0)
      return bad (h, "offset/length must be 0");
    return 0;
  }
  if (ADD_OVERFLOW (h->offset, (uint64_t) h->length, &end))
    return bad (h, "offset %" PRIu64 " + length %u overflows", h->offset,
                h->length);
  return 0;
}

int
rmr_hdr_decode (const uint8_t *buf, struct rmr_hdr *h)
{
  uint32_t magic = get_le32 (buf);

  memset (h, 0, sizeof *h);
  if (magic != RMR_PROTO_MAGIC)
    return rmr_err (EPROTO, "bad message: magic 0x%08x, expected 0x%08x", magic,
                    RMR_PROTO_MAGIC);
  if (buf[4] != RMR_PROTO_VERSION)
    return rmr_err (EPROTO, "bad message: protocol version %u, expected %u",
                    buf[4], RMR_PROTO_VERSION);
  h->type = buf[5];
  h->flags = get_le16 (buf + 6);
  h->group_id = get_le32 (buf + 8);
  h->member_id = get_le32 (buf + 12);
  h->generation = get_le64 (buf + 16);
  h->tag = get_le64 (buf + 24);
  h->offset = get_le64 (buf + 32);
  h->length = get_le32 (buf + 40);
  h->payload_len = get_le32 (buf + 44);
  h->status = get_le32 (buf + 48);
  h->dirty_mask = get_le32 (buf + 52);

  if (h->type == 0 || h->type > RMR_MSG_TYPE_MAX)
    return rmr_err (EPROTO, "bad message: type %u unknown", h->type);
  h->wseq = get_le32 (buf + 56);
  h->horizon = get_le32 (buf + 60);
  if ((h->wseq || h->horizon) &&
      ((h->flags & RMR_HF_REPLY) ||
       (h->type != RMR_MSG_WRITE && h->type != RMR_MSG_TRIM &&
        h->type != RMR_MSG_ZERO && (h->type != RMR_MSG_FLUSH || h->wseq))))
    return bad (h, "reserved bytes (wseq, horizon) not zero");
  if (h->flags & ~(RMR_HF_REPLY | allowed_flags (h->type)))
    return bad (h, "flags 0x%x not allowed", h->flags);
  if (h->dirty_mask >> RMR_MAX_MEMBERS)
    return bad (h, "dirty_mask 0x%x names slots beyond %u", h->dirty_mask,
                RMR_MAX_MEMBERS);
  if (h->dirty_mask && h->type != RMR_MSG_WRITE && h->type != RMR_MSG_TRIM &&
      h->type != RMR_MSG_ZERO && h->type != RMR_MSG_MAP_ADD &&
      h->type != RMR_MSG_MAP_GET && h->type != RMR_MSG_MAP_CLEAR)
    return bad (h, "dirty_mask on a message that does not write");
  if (!(h->flags & RMR_HF_REPLY) && h->status != 0)
    return bad (h, "status %u on a request", h->status);
  if (h->status > 4095)
    return bad (h, "status %u is not an errno", h->status);
  if (h->type != RMR_MSG_KEEPALIVE && h->type != RMR_MSG_JOIN &&
      h->group_id == 0 && !(h->flags & RMR_HF_REPLY))
    return bad (h, "group_id 0");
  if (h->payload_len > RMR_MAX_PAYLOAD)
    return bad (h, "payload_len %u exceeds %u", h->payload_len,
                RMR_MAX_PAYLOAD);
  if (check_io (h) < 0)
    return -EPROTO;
  return check_payload (h);
}

/* Fixed-size NUL-padded strings: the text must be NUL-terminated within
 * the field and everything after the first NUL must be NUL.
 */
static void
put_str (uint8_t *p, size_t n, const char *s)
{
  size_t len = strnlen (s, n - 1);

  memset (p, 0, n);
  memcpy (p, s, len);
}

static int
get_str (const uint8_t *p, size_t n, char *s, const char *what)
{
  size_t len = strnlen ((const char *) p, n);
  size_t i;

  if (len == n)
    return rmr_err (EPROTO, "bad message: %s not NUL-terminated", what);
  for (i = len; i < n; i++)
    if (p[i] != 0)
      return rmr_err (EPROTO, "bad message: %s has bytes after its NUL", what);
  memcpy (s, p, len + 1);
  return 0;
}

static void
put_members (uint8_t *p, const uint32_t *members)
{
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    put_le32 (p + 4 * i, members[i]);
}

/* Slot table: used slots carry distinct member ids. */
static int
get_members (const uint8_t *p, uint32_t *members)
{
  unsigned i, j;

  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    members[i] = get_le32 (p + 4 * i);
    if (members[i] == RMR_MEMBER_NONE)
      continue;
    for (j = 0; j < i; j++)
      if (members[j] == members[i])
        return rmr_err (EPROTO, "bad message: member %u in slots %u and %u",
                        members[i], j, i);
  }
  return 0;
}

static int
check_chunk_size (uint32_t cs, bool zero_ok)
{
  if (cs == 0 && zero_ok)
    return 0;
  if (!is_power_of_2 (cs) || cs < RMR_MIN_CHUNK_SIZE || cs > RMR_MAX_CHUNK_SIZE)
    return rmr_err (EPROTO, "bad message: chunk_size %u", cs);
  return 0;
}

void
rmr_join_req_encode (const struct rmr_join_req *r, uint8_t *buf)
{
  memset (buf, 0, RMR_JOIN_REQ_SIZE);
  put_str (buf, 64, r->pool_name);
  put_str (buf + 64, 64, r->sessname);
  buf[128] = r->mode;
  buf[129] = r->sync;
  put_le16 (buf + 130, r->flags);
  put_le32 (buf + 132, r->chunk_size);
  put_le32 (buf + 136, r->queue_depth);
  put_le64 (buf + 144, r->mapped_size);
}

int
rmr_join_req_decode (const uint8_t *buf, struct rmr_join_req *r)
{
  memset (r, 0, sizeof *r);
  if (get_str (buf, 64, r->pool_name, "pool_name") < 0 ||
      get_str (buf + 64, 64, r->sessname, "sessname") < 0)
    return -EPROTO;
  if (rmr_check_pool_name ("pool_name", r->pool_name) < 0 ||
      rmr_check_sess_name ("sessname", r->sessname) < 0) {
    char why[300];
    snprintf (why, sizeof why, "%s", rmr_get_error ());
    return rmr_err (EPROTO, "bad message: %s", why);
  }
  r->mode = buf[128];
  r->sync = buf[129];
  r->flags = get_le16 (buf + 130);
  r->chunk_size = get_le32 (buf + 132);
  r->queue_depth = get_le32 (buf + 136);
  r->mapped_size = get_le64 (buf + 144);
  if (r->mode > RMR_MODE_ASSEMBLE)
    return rmr_err (EPROTO, "bad message: join mode %u", r->mode);
  if (r->sync == 1)
    return rmr_err (EPROTO,
                    "bad message: join sync 1: a sync session of an older "
                    "rmr-storaged (it does not name the member it reads "
                    "from, nor learn which members are behind): upgrade it");
  if (r->sync > RMR_JOIN_SYNC)
    return rmr_err (EPROTO, "bad message: join sync %u", r->sync);
  if (r->flags & ~RMR_JOIN_REQ_F_PROBE)
    return rmr_err (EPROTO, "bad message: join flags 0x%x", r->flags);
  if (r->sync && r->flags)
    return rmr_err (EPROTO, "bad message: a sync session's join is no probe");
  if (get_le32 (buf + 140))
    return rmr_err (EPROTO, "bad message: join reserved bytes not zero");
  if (check_chunk_size (r->chunk_size, true) < 0)
    return -EPROTO;
  if (r->queue_depth == 0 || r->queue_depth > RMR_MAX_QUEUE_DEPTH)
    return rmr_err (EPROTO, "bad message: queue_depth %u", r->queue_depth);
  if (r->mapped_size % 512)
    return rmr_err (
      EPROTO, "bad message: mapped_size %" PRIu64 " not a multiple of 512",
      r->mapped_size);
  return 0;
}

void
rmr_join_rep_encode (const struct rmr_join_rep *r, uint8_t *buf)
{
  memset (buf, 0, RMR_JOIN_REP_SIZE);
  put_le32 (buf, r->member_id);
  buf[4] = r->state;
  buf[5] = r->fresh;
  buf[6] = r->flags;
  buf[7] = r->min_legs;
  put_le32 (buf + 8, r->chunk_size);
  put_le32 (buf + 12, r->queue_depth);
  put_le64 (buf + 16, r->mapped_size);
  put_le64 (buf + 24, r->generation);
  put_le32 (buf + 32, r->block_size);
  put_members (buf + 40, r->members);
}

int
rmr_join_rep_decode (const uint8_t *buf, struct rmr_join_rep *r)
{
  memset (r, 0, sizeof *r);
  r->member_id = get_le32 (buf);
  r->state = buf[4];
  r->fresh = buf[5];
  r->flags = buf[6];
  r->chunk_size = get_le32 (buf + 8);
  r->queue_depth = get_le32 (buf + 12);
  r->mapped_size = get_le64 (buf + 16);
  r->generation = get_le64 (buf + 24);
  r->block_size = get_le32 (buf + 32);
  if (r->member_id == RMR_MEMBER_NONE)
    return rmr_err (EPROTO, "bad message: join reply without member_id");
  if (r->state > RMR_POOL_NO_IO)
    return rmr_err (EPROTO, "bad message: pool state %u", r->state);
  if (r->fresh > 1)
    return rmr_err (EPROTO, "bad message: fresh %u", r->fresh);
  r->min_legs = buf[7];
  if (r->min_legs > RMR_MAX_MEMBERS)
    return rmr_err (EPROTO, "bad message: join reply min_legs %u", r->min_legs);
  if (get_le32 (buf + 36))
    return rmr_err (EPROTO, "bad message: join reply reserved bytes");
  if (r->flags & ~(RMR_JOIN_F_ZEROED | RMR_JOIN_F_REPLACED) ||
      (r->flags && !r->fresh))
    return rmr_err (EPROTO, "bad message: join reply flags 0x%x", r->flags);
  if (check_chunk_size (r->chunk_size, r->fresh) < 0)
    return -EPROTO;
  if (r->mapped_size == 0 || r->mapped_size % 512)
    return rmr_err (EPROTO, "bad message: mapped_size %" PRIu64,
                    r->mapped_size);
  if (!is_power_of_2 (r->block_size) || r->block_size < 512 ||
      r->block_size > 65536)
    return rmr_err (EPROTO, "bad message: block_size %u", r->block_size);
  return get_members (buf + 40, r->members);
}

void
rmr_al_rep_encode (const struct rmr_al_rep *r, uint8_t *buf)
{
  unsigned i;

  memset (buf, 0, RMR_AL_REP_HDR);
  put_le32 (buf, r->flags);
  put_le32 (buf + 4, r->shift);
  put_le32 (buf + 8, r->n);
  put_le64 (buf + 16, r->writes);
  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    put_le32 (buf + 24 + 4 * i, r->states[i]);
  for (i = 0; i < r->n; i++)
    put_le32 (buf + RMR_AL_REP_HDR + 4 * i, r->extents[i]);
}

int
rmr_al_rep_decode (const uint8_t *buf, size_t len, struct rmr_al_rep *r)
{
  unsigned i;

  if (len < RMR_AL_REP_HDR)
    return rmr_err (EPROTO, "bad message: recent-write record too short");
  r->flags = get_le32 (buf);
  r->shift = get_le32 (buf + 4);
  r->n = get_le32 (buf + 8);
  r->writes = get_le64 (buf + 16);
  if (r->flags & ~(RMR_AL_F_CLEAN | RMR_AL_F_LOST))
    return rmr_err (EPROTO, "bad message: recent-write flags 0x%x", r->flags);
  if (r->shift < 12 || r->shift > 40)
    return rmr_err (EPROTO, "bad message: extent shift %u", r->shift);
  if (get_le32 (buf + 12) || r->n > RMR_AL_MAX_EXTENTS ||
      len != RMR_AL_REP_HDR + 4 * (size_t) r->n)
    return rmr_err (EPROTO, "bad message: %u extents in %zu bytes", r->n, len);
  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    r->states[i] = get_le32 (buf + 24 + 4 * i);
    if (r->states[i] > RMR_MEMBER_DIRTY)
      return rmr_err (EPROTO, "bad message: member state %u", r->states[i]);
  }
  for (i = 0; i < r->n; i++) {
    r->extents[i] = get_le32 (buf + RMR_AL_REP_HDR + 4 * i);
    if (i && r->extents[i] <= r->extents[i - 1])
      return rmr_err (EPROTO, "bad message: extents not ascending");
  }
  return 0;
}

void
rmr_enable_req_encode (const struct rmr_enable_req *r, uint8_t *buf)
{
  memset (buf, 0, RMR_ENABLE_REQ_SIZE);
  put_le64 (buf, r->generation);
  put_le64 (buf + 8, r->mapped_size);
  put_le32 (buf + 16, r->chunk_size);
  put_le32 (buf + 20, r->queue_depth);
  buf[24] = r->mode;
  buf[25] = r->min_legs;
  put_members (buf + 32, r->members);
}

int
rmr_enable_req_decode (const uint8_t *buf, struct rmr_enable_req *r)
{
  unsigned i;

  memset (r, 0, sizeof *r);
  r->generation = get_le64 (buf);
  r->mapped_size = get_le64 (buf + 8);
  r->chunk_size = get_le32 (buf + 16);
  r->queue_depth = get_le32 (buf + 20);
  r->mode = buf[24];
  r->min_legs = buf[25];
  if (r->min_legs < 1 || r->min_legs > RMR_MAX_MEMBERS)
    return rmr_err (EPROTO, "bad message: enable min_legs %u", r->min_legs);
  for (i = 26; i < 32; i++)
    if (buf[i])
      return rmr_err (EPROTO, "bad message: enable reserved bytes");
  if (r->generation == 0)
    return rmr_err (EPROTO, "bad message: enable generation 0");
  if (r->mapped_size == 0 || r->mapped_size % 512)
    return rmr_err (EPROTO, "bad message: enable mapped_size %" PRIu64,
                    r->mapped_size);
  if (check_chunk_size (r->chunk_size, false) < 0)
    return -EPROTO;
  if (r->queue_depth == 0 || r->queue_depth > RMR_MAX_QUEUE_DEPTH)
    return rmr_err (EPROTO, "bad message: enable queue_depth %u",
                    r->queue_depth);
  if (r->mode != RMR_MODE_CREATE && r->mode != RMR_MODE_ASSEMBLE)
    return rmr_err (EPROTO, "bad message: enable mode %u", r->mode);
  return get_members (buf + 32, r->members);
}

static const uint8_t hello_magic[8] = {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O'};

void
rmr_hello_encode (const struct rmr_hello *h, uint8_t *buf)
{
  memcpy (buf, hello_magic, sizeof hello_magic);
  put_le16 (buf + 8, h->version);
  put_le16 (buf + 10, h->flags);
  put_le32 (buf + 12, h->refusal);
}

int
rmr_hello_decode (const uint8_t *buf, bool reply, struct rmr_hello *h)
{
  if (memcmp (buf, hello_magic, sizeof hello_magic) != 0)
    return rmr_err (EPROTO, "bad hello: magic is not RMRHELLO (not an rmr "
                            "peer, or an older version)");
  h->version = get_le16 (buf + 8);
  h->flags = get_le16 (buf + 10);
  h->refusal = get_le32 (buf + 12);
  if (h->version != RMR_HELLO_VERSION)
    return rmr_err (EPROTO, "bad hello: version %u (this side speaks %u)",
                    h->version, RMR_HELLO_VERSION);
  if (h->flags & ~RMR_HELLO_TLS)
    return rmr_err (EPROTO, "bad hello: unknown flags 0x%x", h->flags);
  if (reply ? h->refusal > RMR_HELLO_REFUSAL_MAX : h->refusal != 0)
    return rmr_err (EPROTO, "bad hello: refusal %u", h->refusal);
  if (reply && h->refusal && (h->flags & RMR_HELLO_TLS))
    return rmr_err (EPROTO, "bad hello: a refusal that offers TLS");
  return 0;
}

void
rmr_hello_answer (enum rmr_tls_mode mode, const struct rmr_hello *req,
                  struct rmr_hello *rep)
{
  rep->version = RMR_HELLO_VERSION;
  rep->flags = 0;
  rep->refusal = RMR_HELLO_OK;
  if ((req->flags & RMR_HELLO_TLS) && mode != RMR_TLS_OFF)
    rep->flags = RMR_HELLO_TLS;
  else if (mode == RMR_TLS_REQUIRE)
    rep->refusal = RMR_HELLO_TLS_REQUIRED;
}

int
rmr_hello_verdict (enum rmr_tls_mode mode, const struct rmr_hello *rep)
{
  if (rep->refusal)
    return rmr_err (rep->refusal == RMR_HELLO_BUSY ? ECONNREFUSED : EACCES,
                    "refused: %s", rmr_hello_refusal_text (rep->refusal));
  if (!(rep->flags & RMR_HELLO_TLS)) {
    if (mode == RMR_TLS_REQUIRE)
      return rmr_err (EACCES, "the node offers no TLS (it has no keys) and "
                              "this side has tls=require");
    return 0;
  }
  if (mode == RMR_TLS_OFF)
    return rmr_err (EPROTO, "bad hello: TLS offered, not asked for");
  return 1;
}

const char *
rmr_hello_refusal_text (unsigned refusal)
{
  switch (refusal) {
  case RMR_HELLO_OK: return "accepted";
  case RMR_HELLO_TLS_REQUIRED:
    return "the node requires TLS (tls=require) and this side offered "
           "none: configure a tls-psk key file";
  case RMR_HELLO_BUSY:
    return "the node has too many handshakes in progress; retry later";
  case RMR_HELLO_UNKNOWN_ID:
    return "the node does not know this side's identity (it is not in "
           "the node's tls-psk key file)";
  default: return "refused";
  }
}
