/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The role table of the storage daemon (rmr-storaged/role.c), case by
 * case, as docs/protocol.md ("Roles") states it:
 *
 *   message                                        client   sync session
 *   enable, al-get, write, flush, trim, zero,      yes      no
 *   map-add
 *   read, leave                                    yes      yes
 *   map-get                                        yes      yes
 *   map-clear                                      yes      no
 *   map-get, map-clear with watch                  no       yes
 *   join, keepalive (never after the join)         no       no
 *
 * Every case is a header that the decoder accepts (encoded and decoded
 * first), so the table is checked on what the daemon can actually see;
 * then what the decision must ignore (every other field and flag), types
 * outside the table and values that are no role.
 */
#undef NDEBUG

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "internal.h"
#include "jhash.h"
#include "proto.h"
#include "util.h"

static const struct role_case {
  uint8_t type;
  uint16_t flags;
  bool client, sync; /* allowed to the client, to a sync session */
} cases[] = {
  {RMR_MSG_JOIN, 0, false, false},
  {RMR_MSG_ENABLE, 0, true, false},
  {RMR_MSG_LEAVE, 0, true, true},
  {RMR_MSG_LEAVE, RMR_HF_QUIESCED, true, true},
  {RMR_MSG_READ, 0, true, true},
  {RMR_MSG_WRITE, 0, true, false},
  {RMR_MSG_WRITE, RMR_HF_FUA, true, false},
  {RMR_MSG_FLUSH, 0, true, false},
  {RMR_MSG_TRIM, 0, true, false},
  {RMR_MSG_TRIM, RMR_HF_FUA, true, false},
  {RMR_MSG_ZERO, 0, true, false},
  {RMR_MSG_ZERO, RMR_HF_FUA | RMR_HF_MAY_TRIM | RMR_HF_FAST_ZERO, true, false},
  {RMR_MSG_KEEPALIVE, 0, false, false},
  {RMR_MSG_MAP_ADD, 0, true, false},
  {RMR_MSG_MAP_GET, 0, true, true},
  {RMR_MSG_MAP_GET, RMR_HF_WATCH, false, true},
  {RMR_MSG_MAP_CLEAR, 0, true, false},
  {RMR_MSG_MAP_CLEAR, RMR_HF_WATCH, false, true},
  {RMR_MSG_AL_GET, 0, true, false},
  {RMR_MSG_CSUM, 0, false, true},
};

/* A request of the case's type and flags that rmr_hdr_decode () accepts,
 * as decoded.
 */
static struct rmr_hdr
request (const struct role_case *rc)
{
  struct rmr_hdr h =
                   {
                     .type = rc->type,
                     .flags = rc->flags,
                     .group_id = rmr_group_id ("pool1"),
                     .member_id = 2,
                     .generation = 5,
                     .tag = 77,
                   },
                 d;
  uint8_t buf[RMR_HDR_SIZE];

  switch (rc->type) {
  case RMR_MSG_JOIN: h.payload_len = RMR_JOIN_REQ_SIZE; break;
  case RMR_MSG_ENABLE: h.payload_len = RMR_ENABLE_REQ_SIZE; break;
  case RMR_MSG_LEAVE: h.offset = RMR_LEAVE_DELETE; break;
  case RMR_MSG_READ:
  case RMR_MSG_CSUM: h.length = 4096; break;
  case RMR_MSG_WRITE: h.length = h.payload_len = 4096; break;
  case RMR_MSG_TRIM:
  case RMR_MSG_ZERO:
    h.offset = 1 << 20;
    h.length = 65536;
    h.wseq = 9;
    break;
  case RMR_MSG_KEEPALIVE: h.group_id = 0; break;
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    h.offset = 3;
    h.length = 16;
    h.dirty_mask = 0x4;
    break;
  }
  rmr_hdr_encode (&h, buf);
  g_assert_cmpint (rmr_hdr_decode (buf, &d), ==, 0);
  return d;
}

/* role's decision on h, with the reason's contract checked. */
static bool
decide (enum role role, const struct rmr_hdr *h)
{
  const char *why = "untouched";
  bool ok = role_allows (role, h, &why);

  if (ok)
    g_assert_null (why);
  else {
    g_assert_nonnull (why);
    g_assert_cmpuint (strlen (why), >, 0);
    g_assert_null (strchr (why, '\n'));
  }
  /* The same without asking why. */
  g_assert_true (role_allows (role, h, NULL) == ok);
  return ok;
}

static void
test_table (void)
{
  bool seen[RMR_MSG_TYPE_MAX + 1] = {false};

  for (size_t i = 0; i < ARRAY_SIZE (cases); i++) {
    struct rmr_hdr h = request (&cases[i]);

    g_test_message ("%s flags 0x%x: client %d, sync %d",
                    rmr_msg_type_name (h.type), h.flags, cases[i].client,
                    cases[i].sync);
    g_assert_true (decide (ROLE_CLIENT, &h) == cases[i].client);
    g_assert_true (decide (ROLE_SYNC, &h) == cases[i].sync);
    seen[h.type] = true;
  }
  /* A new message type needs its line above. */
  for (unsigned t = 1; t <= RMR_MSG_TYPE_MAX; t++)
    g_assert_true (seen[t]);
}

/* What sess.c logs for a refusal names the message and the watch flag;
 * the reasons say which rule refused.
 */
static void
test_reasons (void)
{
  struct rmr_hdr h;
  const char *why;

  h = request (&cases[1]); /* enable */
  g_assert_false (role_allows (ROLE_SYNC, &h, &why));
  g_assert_cmpstr (why, ==, "only the pool's client sends it");
  h = request (&cases[15]); /* map-get with watch */
  g_assert_cmpint (h.flags, ==, RMR_HF_WATCH);
  g_assert_false (role_allows (ROLE_CLIENT, &h, &why));
  g_assert_cmpstr (why, ==, "a flag only a sync session sets");
  h = request (&cases[0]); /* join */
  g_assert_false (role_allows (ROLE_CLIENT, &h, &why));
  g_assert_cmpstr (why, ==, "no joined session sends this type");
}

/* Only the type and the watch flag count: not the ids, the generation,
 * the range, the lengths, the dirty mask, the write sequence, nor any
 * other flag (not even RMR_HF_REPLY: sess.c drops replies before).
 */
static void
test_ignored_fields (void)
{
  for (size_t i = 0; i < ARRAY_SIZE (cases); i++) {
    struct rmr_hdr h = request (&cases[i]), other;

    memset (&other, 0xff, sizeof other);
    other.type = h.type;
    other.flags = (uint16_t) ~RMR_HF_WATCH | (h.flags & RMR_HF_WATCH);
    g_assert_true (decide (ROLE_CLIENT, &other) == cases[i].client);
    g_assert_true (decide (ROLE_SYNC, &other) == cases[i].sync);
    memset (&other, 0, sizeof other);
    other.type = h.type;
    other.flags = h.flags & RMR_HF_WATCH;
    g_assert_true (decide (ROLE_CLIENT, &other) == cases[i].client);
    g_assert_true (decide (ROLE_SYNC, &other) == cases[i].sync);
  }
}

/* Types the decoder refuses, and values that are no role, are refused
 * (and read nothing outside the table: ASan, valgrind).
 */
static void
test_outside (void)
{
  struct rmr_hdr h = request (&cases[4]); /* read: allowed to both */
  const unsigned types[] = {0, RMR_MSG_TYPE_MAX + 1, 200, 255};
  const unsigned roles[] = {0, 3, 4, 255};

  for (size_t i = 0; i < ARRAY_SIZE (types); i++) {
    h.type = types[i];
    g_assert_false (decide (ROLE_CLIENT, &h));
    g_assert_false (decide (ROLE_SYNC, &h));
  }
  h.type = RMR_MSG_READ;
  for (size_t i = 0; i < ARRAY_SIZE (roles); i++)
    g_assert_false (decide ((enum role) roles[i], &h));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/role/table", test_table);
  g_test_add_func ("/role/reasons", test_reasons);
  g_test_add_func ("/role/ignored-fields", test_ignored_fields);
  g_test_add_func ("/role/outside", test_outside);
  return g_test_run ();
}
