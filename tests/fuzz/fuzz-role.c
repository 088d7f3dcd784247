/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the storage daemon's role table
 * (rmr-storaged/role.c): which message the pool's client and a peer's
 * sync session may send (docs/protocol.md, "Roles").
 *
 * Input layout: RMR_HDR_SIZE bytes of a message header (zero-padded when
 * the input is shorter), then one byte: the role asked about (1 client,
 * 2 sync session, anything else no role).  The header is decoded with
 * rmr_hdr_decode () as given and again with the magic and version forced,
 * so that the fuzzer reaches the decision without finding the magic
 * first; what decodes is what a joined session can bring to the table.
 * The raw bytes are also put in a struct rmr_hdr without decoding, to
 * check the decision on values the decoder would refuse.
 *
 * Invariants, from the reasons for the table (issue 9) rather than from
 * role.c's table:
 *   - a refusal has a one-line reason, an allowance none; the byte's role
 *     decides as that role does, and a byte that is no role is refused;
 *   - a sync session never sends what writes data, changes the pool or
 *     hands maps over: enable, write, flush, trim, zero, map-add, al-get;
 *     the client never sends a watched map-get or map-clear (the resync's
 *     conditional clear); so no client-only or sync-only message is
 *     allowed to both roles;
 *   - each role keeps what it needs: the client its IO, enable, leave,
 *     al-get and the hand-over's map-add, map-get and map-clear; a sync
 *     session read, leave, map-get with or without watch and map-clear
 *     with it (never an unconditional clear);
 *   - join and keepalive (never after the join), type 0 and types beyond
 *     RMR_MSG_TYPE_MAX are refused to every role, and the table is never
 *     read out of bounds (ASan);
 *   - the decision depends on the role, the type and the watch flag only:
 *     not on the ids, generation, tag, range, lengths, status, dirty mask,
 *     write sequence, nor any other flag.
 *
 * Built with clang -fsanitize=fuzzer, libFuzzer's main () drives it;
 * without libFuzzer, the weak main () of fuzz-main.c replays files or the
 * built-in inputs of fuzz_builtin () below (tests/fuzz/README).
 */
#undef NDEBUG

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "internal.h"
#include "jhash.h"
#include "proto.h"
#include "util.h"

#define INPUT_SIZE (RMR_HDR_SIZE + 1)

/* The decision, with the reason's contract checked. */
static bool
decide (enum role role, const struct rmr_hdr *h)
{
  const char *why = "untouched";
  bool ok = role_allows (role, h, &why);

  if (ok)
    assert (why == NULL);
  else {
    assert (why != NULL && why[0] != '\0');
    for (const char *p = why; *p; p++)
      assert ((unsigned char) *p >= 0x20);
  }
  assert (role_allows (role, h, NULL) == ok);
  return ok;
}

/* The same decisions on h with every field the table must ignore set to
 * the values of from (another header of the input).
 */
static void
check_ignored (const struct rmr_hdr *h, const struct rmr_hdr *from, bool c,
               bool s)
{
  struct rmr_hdr o = *from;

  o.type = h->type;
  o.flags = (from->flags & ~RMR_HF_WATCH) | (h->flags & RMR_HF_WATCH);
  assert (decide (ROLE_CLIENT, &o) == c);
  assert (decide (ROLE_SYNC, &o) == s);
  memset (&o, 0, sizeof o);
  o.type = h->type;
  o.flags = h->flags & RMR_HF_WATCH;
  assert (decide (ROLE_CLIENT, &o) == c);
  assert (decide (ROLE_SYNC, &o) == s);
}

/* Any header, decoded or not. */
static void
check_any (const struct rmr_hdr *h, const struct rmr_hdr *from, uint8_t role)
{
  bool c = decide (ROLE_CLIENT, h), s = decide (ROLE_SYNC, h);
  bool r = decide ((enum role) role, h);

  if (role == ROLE_CLIENT)
    assert (r == c);
  else if (role == ROLE_SYNC)
    assert (r == s);
  else
    assert (!r);
  if (h->type == 0 || h->type > RMR_MSG_TYPE_MAX || h->type == RMR_MSG_JOIN ||
      h->type == RMR_MSG_KEEPALIVE)
    assert (!c && !s);
  check_ignored (h, from, c, s);
}

/* A header the decoder accepted. */
static void
check_decoded (const struct rmr_hdr *h)
{
  bool c = decide (ROLE_CLIENT, h), s = decide (ROLE_SYNC, h);
  bool watch = h->flags & RMR_HF_WATCH;

  assert (h->type >= 1 && h->type <= RMR_MSG_TYPE_MAX);
  switch (h->type) {
  case RMR_MSG_ENABLE:
  case RMR_MSG_WRITE:
  case RMR_MSG_FLUSH:
  case RMR_MSG_TRIM:
  case RMR_MSG_ZERO:
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_AL_GET:
    /* The client's alone. */
    assert (c && !s);
    break;
  case RMR_MSG_CSUM:
    /* A peer's verify alone. */
    assert (s && !c);
    break;
  case RMR_MSG_READ:
  case RMR_MSG_LEAVE: assert (c && s); break;
  case RMR_MSG_MAP_GET:
    /* Watched: the resync's alone; else both. */
    assert (s);
    assert (c == !watch);
    break;
  case RMR_MSG_MAP_CLEAR:
    /* Watched: the resync's alone; else the client's alone (a peer
     * clears only what it watched).
     */
    assert (c == !watch);
    assert (s == watch);
    break;
  default: assert (!c && !s);
  }
  /* Only the decoder lets watch through, on map-get and map-clear. */
  assert (!watch || h->type == RMR_MSG_MAP_GET || h->type == RMR_MSG_MAP_CLEAR);
}

/* The raw bytes, as a struct, without any check. */
static void
raw_header (const uint8_t *buf, struct rmr_hdr *h)
{
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
  h->wseq = get_le32 (buf + 56);
  h->horizon = get_le32 (buf + 60);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t buf[INPUT_SIZE], rev[RMR_HDR_SIZE];
  struct rmr_hdr h, raw, other;
  uint8_t role;

  memset (buf, 0, sizeof buf);
  memcpy (buf, data, MIN (size, sizeof buf));
  role = buf[RMR_HDR_SIZE];

  /* The fields to swap in, from the header's bytes backwards. */
  for (size_t i = 0; i < RMR_HDR_SIZE; i++)
    rev[i] = buf[RMR_HDR_SIZE - 1 - i];
  raw_header (rev, &other);

  raw_header (buf, &raw);
  check_any (&raw, &other, role);

  if (rmr_hdr_decode (buf, &h) == 0) {
    check_decoded (&h);
    check_any (&h, &other, role);
  }
  put_le32 (buf, RMR_PROTO_MAGIC);
  buf[4] = RMR_PROTO_VERSION;
  if (rmr_hdr_decode (buf, &h) == 0) {
    check_decoded (&h);
    check_any (&h, &other, role);
  }
  return 0;
}

/* Built-in inputs ----------------------------------------------------------- */

/* h encoded, then the role byte. */
static void
message (const struct rmr_hdr *h, uint8_t role)
{
  uint8_t buf[INPUT_SIZE];

  rmr_hdr_encode (h, buf);
  buf[RMR_HDR_SIZE] = role;
  fuzz_input (buf, sizeof buf);
}

void
fuzz_builtin (void)
{
  const uint32_t gid = rmr_group_id ("pool1");
  /* One request of each type the decoder accepts, with its flags. */
  const struct rmr_hdr reqs[] = {
    {.type = RMR_MSG_JOIN, .payload_len = RMR_JOIN_REQ_SIZE},
    {.type = RMR_MSG_ENABLE, .payload_len = RMR_ENABLE_REQ_SIZE},
    {.type = RMR_MSG_LEAVE, .flags = RMR_HF_QUIESCED},
    {.type = RMR_MSG_READ, .length = 4096},
    {.type = RMR_MSG_READ, .flags = RMR_HF_ZEROES, .length = 4096},
    {.type = RMR_MSG_WRITE,
     .flags = RMR_HF_FUA,
     .length = 4096,
     .payload_len = 4096,
     .dirty_mask = 0x2,
     .wseq = 5,
     .horizon = 4},
    {.type = RMR_MSG_FLUSH},
    {.type = RMR_MSG_TRIM, .length = 4096},
    {.type = RMR_MSG_ZERO,
     .flags = RMR_HF_FUA | RMR_HF_MAY_TRIM | RMR_HF_FAST_ZERO,
     .length = 4096},
    {.type = RMR_MSG_KEEPALIVE},
    {.type = RMR_MSG_MAP_ADD, .length = 8, .dirty_mask = 0x3},
    {.type = RMR_MSG_MAP_GET, .length = 8, .dirty_mask = 0x1},
    {.type = RMR_MSG_MAP_GET,
     .flags = RMR_HF_WATCH,
     .length = 8,
     .dirty_mask = 0x1},
    {.type = RMR_MSG_MAP_CLEAR, .length = 8, .dirty_mask = 0x3},
    {.type = RMR_MSG_MAP_CLEAR,
     .flags = RMR_HF_WATCH,
     .length = 8,
     .dirty_mask = 0x1},
    {.type = RMR_MSG_AL_GET},
  };
  struct rmr_hdr h;

  for (size_t i = 0; i < ARRAY_SIZE (reqs); i++)
    for (uint8_t role = 0; role <= 3; role++) {
      h = reqs[i];
      h.group_id = h.type == RMR_MSG_KEEPALIVE ? 0 : gid;
      h.member_id = 2;
      h.generation = 3;
      h.tag = i;
      message (&h, role);
    }
  /* Flags the decoder refuses (watch on a read, on a map-add), a reply,
   * types outside the table; unchecked in the raw struct.
   */
  h = (struct rmr_hdr){.type = RMR_MSG_READ,
                       .flags = RMR_HF_WATCH,
                       .group_id = gid,
                       .length = 4096};
  message (&h, ROLE_CLIENT);
  h = (struct rmr_hdr){.type = RMR_MSG_MAP_ADD,
                       .flags = RMR_HF_WATCH,
                       .group_id = gid,
                       .length = 8,
                       .dirty_mask = 1};
  message (&h, ROLE_SYNC);
  h = (struct rmr_hdr){.type = RMR_MSG_WRITE,
                       .flags = RMR_HF_REPLY,
                       .group_id = gid,
                       .length = 4096};
  message (&h, ROLE_SYNC);
  h = (struct rmr_hdr){.type = 0, .group_id = gid};
  message (&h, ROLE_CLIENT);
  h.type = RMR_MSG_TYPE_MAX + 1;
  message (&h, ROLE_SYNC);
  h.type = 0xff;
  h.flags = 0xffff;
  message (&h, 0xff);
  FUZZ_INPUT_LITERAL ("");
  FUZZ_INPUT_LITERAL ("RMR1\x01\x04");
}
