/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Wire protocol v1: header and payload round trips, and every rejection
 * path of the decoders (a malformed message must be refused with a
 * message naming the field, before anything acts on it).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "jhash.h"
#include "proto.h"
#include "util.h"

static struct rmr_hdr
sample_write (void)
{
  struct rmr_hdr h = {
    .type = RMR_MSG_WRITE,
    .flags = RMR_HF_FUA,
    .group_id = rmr_group_id ("ionos_pool"),
    .member_id = RMR_MEMBER_NONE,
    .generation = 7,
    .tag = 0x1234567890abcdefULL,
    .offset = 1 << 20,
    .length = 4096,
    .payload_len = 4096,
    .dirty_mask = 0x2,
  };
  return h;
}

static void
test_roundtrip (void)
{
  struct rmr_hdr h = sample_write (), d;
  uint8_t buf[RMR_HDR_SIZE];

  h.wseq = 0xfffffff0;
  h.horizon = 0xffffffe0;
  rmr_hdr_encode (&h, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  g_assert_cmpint (d.type, ==, h.type);
  g_assert_cmpint (d.flags, ==, h.flags);
  g_assert_cmpuint (d.group_id, ==, h.group_id);
  g_assert_cmpuint (d.member_id, ==, h.member_id);
  g_assert_cmpuint (d.generation, ==, h.generation);
  g_assert_cmpuint (d.tag, ==, h.tag);
  g_assert_cmpuint (d.offset, ==, h.offset);
  g_assert_cmpuint (d.length, ==, h.length);
  g_assert_cmpuint (d.payload_len, ==, h.payload_len);
  g_assert_cmpuint (d.dirty_mask, ==, h.dirty_mask);
  g_assert_cmpuint (d.wseq, ==, h.wseq);
  g_assert_cmpuint (d.horizon, ==, h.horizon);
  /* Serial order across the wrap. */
  g_assert_true (rmr_wseq_before (0xfffffff0, 3));
  g_assert_false (rmr_wseq_before (3, 0xfffffff0));
  g_assert_false (rmr_wseq_before (7, 7));
  /* Byte order on the wire is fixed. */
  g_assert_cmpint (memcmp (buf, "RMR1", 4), ==, 0);
  g_assert_cmpint (buf[24], ==, 0xef);
}

/* Encode h, optionally poke one byte, and expect a refusal naming what. */
static void
expect_bad (const struct rmr_hdr *h, int poke_off, uint8_t poke_val,
            const char *what)
{
  uint8_t buf[RMR_HDR_SIZE];
  struct rmr_hdr d;

  rmr_hdr_encode (h, buf);
  if (poke_off >= 0)
    buf[poke_off] = poke_val;
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, -EPROTO);
  g_assert_nonnull (rmr_get_error ());
  if (!strstr (rmr_get_error (), what))
    g_error ("error '%s' does not mention '%s'", rmr_get_error (), what);
}

static void
test_rejections (void)
{
  struct rmr_hdr h = sample_write (), b;

  expect_bad (&h, 0, 'X', "magic");
  expect_bad (&h, 4, 2, "version");
  expect_bad (&h, 5, 0, "type");
  expect_bad (&h, 5, 200, "type");
  b = h;
  b.type = RMR_MSG_FLUSH;
  b.flags = 0;
  b.length = 0;
  b.offset = 0;
  b.payload_len = 0;
  b.dirty_mask = 0;
  /* A flush carries a horizon (proto.h), never a write sequence. */
  expect_bad (&b, 56, 1, "reserved");
  {
    uint8_t buf[RMR_HDR_SIZE];
    struct rmr_hdr d;
    b.horizon = 77;
    rmr_hdr_encode (&b, buf);
    g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
    g_assert_cmpuint (d.horizon, ==, 77);
    b.horizon = 0;
  }
  b.type = RMR_MSG_READ;
  b.length = 4096;
  expect_bad (&b, 60, 1, "reserved");
  /* A checksum request has no payload; its reply 4 bytes per unit. */
  b = h;
  b.type = RMR_MSG_CSUM;
  b.flags = 0;
  b.dirty_mask = 0;
  b.wseq = b.horizon = 0;
  b.length = 65536;
  expect_bad (&b, -1, 0, "payload_len");
  b.flags = RMR_HF_REPLY;
  b.payload_len = 6;
  expect_bad (&b, -1, 0, "payload_len");
  b.payload_len = 4 * 17; /* 65536 bytes hold at most 16 units of 4K */
  expect_bad (&b, -1, 0, "payload_len");

  b = h;
  b.flags |= RMR_HF_FAST_ZERO;
  expect_bad (&b, -1, 0, "flags");
  b = h;
  b.dirty_mask = 1u << 8;
  expect_bad (&b, -1, 0, "dirty_mask");
  b = h;
  b.payload_len = 100;
  expect_bad (&b, -1, 0, "payload_len");
  b = h;
  b.length = b.payload_len = 0;
  expect_bad (&b, -1, 0, "length");
  b = h;
  b.length = b.payload_len = RMR_MAX_IO_SIZE + 1;
  expect_bad (&b, -1, 0, "exceeds");
  b = h;
  b.offset = UINT64_MAX - 10;
  expect_bad (&b, -1, 0, "overflows");
  b = h;
  b.status = 5;
  expect_bad (&b, -1, 0, "status");
  b = h;
  b.group_id = 0;
  expect_bad (&b, -1, 0, "group_id");

  b = h;
  b.type = RMR_MSG_READ;
  b.payload_len = 0;
  b.flags = RMR_HF_FUA;
  b.dirty_mask = 0;
  expect_bad (&b, -1, 0, "flags");
  b.flags = 0;
  b.payload_len = 5;
  expect_bad (&b, -1, 0, "payload_len");
  b.flags = RMR_HF_REPLY;
  b.payload_len = 10;
  expect_bad (&b, -1, 0, "payload_len"); /* read reply: payload = length */
  b.status = 5;
  b.payload_len = RMR_ERRMSG_MAX + 1;
  expect_bad (&b, -1, 0, "error reply");
  b.status = 5000;
  b.payload_len = 0;
  expect_bad (&b, -1, 0, "errno");
  /* Zeroes without payload: only a read's, and then no payload at all. */
  b.status = 0;
  b.flags = RMR_HF_REPLY | RMR_HF_ZEROES;
  b.payload_len = b.length;
  expect_bad (&b, -1, 0, "payload_len");
  b = h;
  b.flags = RMR_HF_ZEROES;
  expect_bad (&b, -1, 0, "flags"); /* not on a write */

  b = h;
  b.type = RMR_MSG_FLUSH;
  b.length = b.payload_len = 0;
  b.flags = 0;
  b.dirty_mask = 0;
  b.offset = 1;
  expect_bad (&b, -1, 0, "offset");
  b = h;
  b.type = RMR_MSG_READ;
  b.dirty_mask = 1;
  b.flags = 0;
  b.payload_len = 0;
  expect_bad (&b, -1, 0, "dirty_mask");
  b = h;
  b.type = RMR_MSG_LEAVE;
  b.length = b.payload_len = 0;
  b.flags = 0;
  b.dirty_mask = 0;
  b.offset = 9;
  expect_bad (&b, -1, 0, "leave mode");
  b = h;
  b.type = RMR_MSG_JOIN;
  b.payload_len = 3;
  b.flags = 0;
  b.dirty_mask = 0;
  b.length = 0;
  b.offset = 0;
  expect_bad (&b, -1, 0, "payload_len");
}

static void
test_valid_types (void)
{
  struct rmr_hdr b = {.group_id = 1, .member_id = RMR_MEMBER_NONE}, d;
  uint8_t buf[RMR_HDR_SIZE];

  b.type = RMR_MSG_KEEPALIVE;
  b.group_id = 0;
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  b.type = RMR_MSG_ZERO;
  b.group_id = 1;
  b.length = UINT32_MAX;
  b.flags = RMR_HF_FUA | RMR_HF_MAY_TRIM | RMR_HF_FAST_ZERO;
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  b.type = RMR_MSG_READ;
  b.flags = RMR_HF_REPLY;
  b.length = 512;
  b.payload_len = 512;
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  b.status = EIO;
  b.payload_len = 20; /* error reply with a message */
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  /* A read that takes zeroes without payload, and such an answer. */
  b.status = 0;
  b.flags = RMR_HF_ZEROES;
  b.payload_len = 0;
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  b.flags = RMR_HF_REPLY | RMR_HF_ZEROES;
  rmr_hdr_encode (&b, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.flags, ==, RMR_HF_REPLY | RMR_HF_ZEROES);
  g_assert_cmpstr (rmr_msg_type_name (RMR_MSG_ZERO), ==, "zero");
  g_assert_cmpstr (rmr_msg_type_name (99), ==, "unknown");
}

static void
test_join (void)
{
  struct rmr_join_req r = {.pool_name = "ionos_pool",
                           .sessname = "psrv0@stg-rmr0",
                           .mode = RMR_MODE_CREATE,
                           .chunk_size = 131072,
                           .queue_depth = 128,
                           .mapped_size = 204800 * 512},
                      d;
  uint8_t buf[RMR_JOIN_REQ_SIZE];

  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, 0);
  g_assert_cmpstr (d.pool_name, ==, "ionos_pool");
  g_assert_cmpstr (d.sessname, ==, "psrv0@stg-rmr0");
  g_assert_cmpuint (d.chunk_size, ==, 131072);
  g_assert_cmpuint (d.mapped_size, ==, 204800 * 512);

  rmr_join_req_encode (&r, buf);
  buf[63] = 'x'; /* no NUL in the name field */
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  rmr_join_req_encode (&r, buf);
  buf[40] = 'x'; /* junk after the NUL */
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  rmr_join_req_encode (&r, buf);
  buf[2] = '/'; /* bad pool name character */
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  r.chunk_size = 3000;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  g_assert_nonnull (strstr (rmr_get_error (), "chunk_size"));
  r.chunk_size = 0;
  r.queue_depth = 0;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  r.queue_depth = 1;
  r.mode = 9;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  r.mode = 0;
  r.mapped_size = 1000;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  r.mapped_size = 0;

  /* The probe flag: carried; an unknown flag, or a probing sync session,
   * refused naming it.
   */
  r.flags = RMR_JOIN_REQ_F_PROBE;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.flags, ==, RMR_JOIN_REQ_F_PROBE);
  r.flags = 0x4;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  g_assert_nonnull (strstr (rmr_get_error (), "join flags 0x4"));
  r.flags = RMR_JOIN_REQ_F_PROBE;
  r.sync = RMR_JOIN_SYNC;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  g_assert_nonnull (strstr (rmr_get_error (), "probe"));

  /* A sync session: carried; an older peer's (sync 1) refused, saying
   * what to do.
   */
  r.flags = 0;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.sync, ==, RMR_JOIN_SYNC);
  r.sync = 1;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
  g_assert_nonnull (strstr (rmr_get_error (), "join sync 1"));
  g_assert_nonnull (strstr (rmr_get_error (), "upgrade"));
  /* The version before's (2: never asks for zeroes) is served. */
  r.sync = RMR_JOIN_SYNC_NO_ZEROES;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.sync, ==, 2);
  r.sync = RMR_JOIN_SYNC + 1;
  rmr_join_req_encode (&r, buf);
  g_assert_cmpint (rmr_join_req_decode (buf, &d), ==, -EPROTO);
}

static void
test_join_rep_enable (void)
{
  struct rmr_join_rep r = {.member_id = 42,
                           .state = RMR_POOL_REGISTERED,
                           .fresh = 1,
                           .queue_depth = 128,
                           .mapped_size = 1 << 20,
                           .block_size = 512},
                      d;
  struct rmr_enable_req e = {.generation = 3,
                             .mapped_size = 1 << 20,
                             .chunk_size = 65536,
                             .queue_depth = 64,
                             .mode = RMR_MODE_ASSEMBLE,
                             .min_legs = 2},
                        de;
  uint8_t buf[RMR_JOIN_REP_SIZE], ebuf[RMR_ENABLE_REQ_SIZE];
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    r.members[i] = e.members[i] = RMR_MEMBER_NONE;
  r.members[0] = e.members[0] = 42;
  r.members[1] = e.members[1] = 43;
  r.min_legs = 1;
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.members[1], ==, 43);
  g_assert_cmpuint (d.min_legs, ==, 1);
  g_assert_cmpuint (d.members[2], ==, RMR_MEMBER_NONE);
  r.flags = RMR_JOIN_F_REPLACED;
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, 0);
  g_assert_cmpuint (d.flags, ==, RMR_JOIN_F_REPLACED);
  r.flags = 0x4; /* unknown */
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, -EPROTO);
  r.flags = 0;
  r.members[2] = 42; /* the same member in two slots */
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, -EPROTO);
  r.members[2] = RMR_MEMBER_NONE;
  r.block_size = 1000;
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, -EPROTO);
  r.block_size = 512;
  r.fresh = 0; /* a pool in use needs a chunk size */
  rmr_join_rep_encode (&r, buf);
  g_assert_cmpint (rmr_join_rep_decode (buf, &d), ==, -EPROTO);

  rmr_enable_req_encode (&e, ebuf);
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, 0);
  g_assert_cmpuint (de.generation, ==, 3);
  g_assert_cmpuint (de.members[0], ==, 42);
  g_assert_cmpuint (de.min_legs, ==, 2);
  e.min_legs = 0; /* every client has one */
  rmr_enable_req_encode (&e, ebuf);
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, -EPROTO);
  e.min_legs = 9;
  rmr_enable_req_encode (&e, ebuf);
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, -EPROTO);
  e.min_legs = 2;
  e.generation = 0;
  rmr_enable_req_encode (&e, ebuf);
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, -EPROTO);
  e.generation = 3;
  e.mode = RMR_MODE_AUTO;
  rmr_enable_req_encode (&e, ebuf);
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, -EPROTO);
  e.mode = RMR_MODE_CREATE;
  rmr_enable_req_encode (&e, ebuf);
  ebuf[30] = 1;
  g_assert_cmpint (rmr_enable_req_decode (ebuf, &de), ==, -EPROTO);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/proto/roundtrip", test_roundtrip);
  g_test_add_func ("/proto/rejections", test_rejections);
  g_test_add_func ("/proto/valid-types", test_valid_types);
  g_test_add_func ("/proto/join", test_join);
  g_test_add_func ("/proto/join-reply-enable", test_join_rep_enable);
  return g_test_run ();
}
