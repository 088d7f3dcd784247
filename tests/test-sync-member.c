/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of who answers a sync pool's call (common/client-sync.c),
 * over real loopback sockets against fake peers: each peer answers a join
 * as its member, and reads, checksums and map requests with its member in
 * every byte, the way a storage node puts its member in each reply.
 *
 * A sync pool's index is no lasting name for a member (rmr.h): the resync
 * decides on a member (from its watch), the verify on the member of each
 * session at its start, and the call comes later.  In between:
 *   - add_sess of the same name points the index at another node;
 *   - del_sess frees the index and the next add_sess takes it;
 *   - the node at the address is replaced by another member.
 * In each, an answer from a member the caller did not choose is refused
 * (ECANCELED; a read tries the next peer and ends in EAGAIN), never taken
 * as the chosen member's: a resync would fetch from a member that may be
 * behind, a verify would blame the wrong member.
 */
#undef NDEBUG

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <glib.h>

#include "error.h"
#include "parse.h"
#include "proto.h"
#include "rmr/rmr.h"
#include "transport.h"

#define CS (64 * 1024)
#define GEN 7

struct fpeer {
  atomic_uint member; /* what it answers as */
  struct rmr_addr addr;
  struct rmr_listener *l;
};

struct fconn {
  struct fpeer *peer;
  struct rmr_conn *conn;
  uint8_t buf[2 * CS];
};

/* The member_id of the last request a fake peer got: the member the
 * caller addressed it to (a node refuses another's, sess.c).
 */
static atomic_uint last_to;

static void *
f_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct fconn *c = opaque;
  return hdr->payload_len <= sizeof c->buf ? c->buf : NULL;
}

static void
f_message (void *opaque, const struct rmr_hdr *hdr, void *payload)
{
  struct fconn *c = opaque;
  uint32_t m = atomic_load (&c->peer->member);
  struct rmr_hdr rep = *hdr;
  struct rmr_join_rep jr = {.member_id = m,
                            .state = RMR_POOL_NORMAL,
                            .chunk_size = CS,
                            .queue_depth = 8,
                            .mapped_size = 16 * CS,
                            .generation = GEN,
                            .block_size = 4096};
  struct iovec iov = {.iov_base = c->buf};
  unsigned i;

  if (hdr->type != RMR_MSG_JOIN)
    atomic_store (&last_to, hdr->member_id);
  rep.flags |= RMR_HF_REPLY;
  rep.wseq = rep.horizon = 0;
  rep.member_id = m;
  /* A watch's reply names the other slots behind there: slot 6 here. */
  if (hdr->type == RMR_MSG_MAP_GET && (hdr->flags & RMR_HF_WATCH))
    rep.dirty_mask = hdr->dirty_mask | 1u << 6;
  else
    rep.dirty_mask = 0;
  switch (hdr->type) {
  case RMR_MSG_JOIN:
    for (i = 0; i < RMR_MAX_MEMBERS; i++)
      jr.members[i] = RMR_MEMBER_NONE;
    jr.members[0] = 1;
    jr.members[1] = m;
    rmr_join_rep_encode (&jr, c->buf);
    iov.iov_len = RMR_JOIN_REP_SIZE;
    break;
  case RMR_MSG_READ: iov.iov_len = hdr->length; break;
  case RMR_MSG_CSUM: iov.iov_len = 4 * ((hdr->length + CS - 1) / CS); break;
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    iov.iov_len = hdr->flags & RMR_HF_WATCH || hdr->type == RMR_MSG_MAP_GET
                    ? (hdr->length + 7) / 8
                    : 0;
    break;
  default: break;
  }
  g_assert_cmpuint (iov.iov_len, <=, sizeof c->buf);
  if (hdr->type != RMR_MSG_JOIN)
    memset (c->buf, (int) m, iov.iov_len);
  rep.payload_len = (uint32_t) iov.iov_len;
  rmr_conn_send (c->conn, &rep, &iov, iov.iov_len ? 1 : 0);
}

static void
f_down (void *opaque, int errnum, const char *reason)
{
  struct fconn *c = opaque;

  rmr_conn_close (c->conn); /* own thread: freed on its way out */
  g_free (c);
}

static const struct rmr_conn_handler f_handler = {
  .payload_buf = f_payload_buf,
  .message = f_message,
  .down = f_down,
};

static int
f_accept (void *opaque, struct rmr_conn *conn,
          const struct rmr_conn_handler **h, void **conn_opaque)
{
  struct fconn *c = g_new0 (struct fconn, 1);

  c->peer = opaque;
  c->conn = conn;
  *h = &f_handler;
  *conn_opaque = c;
  return 0;
}

static void
peer_start (struct fpeer *p, uint32_t member)
{
  struct rmr_listen_opts lo = {0};
  unsigned i;

  atomic_store (&p->member, member);
  for (i = 0; i < 100; i++) {
    g_assert_cmpint (rmr_addr_parse ("t", "tcp:127.0.0.1:1", &p->addr), ==, 0);
    p->addr.port = (uint16_t) (20000 + g_random_int_range (0, 30000));
    if (rmr_listen (&p->addr, &lo, f_accept, p, &p->l) == 0)
      return;
  }
  g_assert_not_reached ();
}

static struct fpeer P, Q;

static void
assert_error_has (const char *want)
{
  const char *e = rmr_get_error ();

  if (!e || !strstr (e, want))
    g_error ("error '%s' does not say '%s'", e ? e : "(none)", want);
}

/* Each call with the member it expects: 0 and that member's bytes, or
 * ECANCELED naming who answered.
 */
static void
expect_answers (struct rmr_pool *sp, uint32_t at0, uint32_t other)
{
  uint32_t crc[2], members[RMR_MAX_MEMBERS], by[RMR_MAX_MEMBERS], member;
  g_autofree uint8_t *buf = g_malloc0 (CS);
  uint8_t bits[2];
  g_autofree char *msg =
    g_strdup_printf ("answered as member %u, not %u", at0, other);
  uint32_t peers, behind;
  unsigned i;

  g_assert_cmpint (rmr_sync_csum (sp, 0, at0, GEN, 0, 2 * CS, 2, crc), ==, 0);
  g_assert_cmpuint (crc[0], ==, at0 * 0x01010101u);
  g_assert_cmpint (rmr_sync_csum (sp, 0, other, GEN, 0, 2 * CS, 2, crc), ==,
                   -ECANCELED);
  assert_error_has (msg);

  g_assert_cmpint (rmr_sync_map_get (sp, 0, at0, GEN, 1, 0, 16, bits), ==, 0);
  g_assert_cmpuint (atomic_load (&last_to), ==, at0);
  g_assert_cmpint (rmr_sync_map_get (sp, 0, other, GEN, 1, 0, 16, bits), ==,
                   -ECANCELED);
  assert_error_has (msg);
  g_assert_cmpuint (atomic_load (&last_to), ==, other);
  g_assert_cmpint (
    rmr_sync_map_get (sp, 0, RMR_MEMBER_NONE, GEN, 1, 0, 16, bits), ==, 0);
  g_assert_cmpuint (atomic_load (&last_to), ==, RMR_MEMBER_NONE);

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    members[i] = RMR_MEMBER_NONE;
  members[0] = other;
  g_assert_cmpint (rmr_sync_read (sp, GEN, 1, members, buf, CS, 0, &member), ==,
                   -EAGAIN);
  assert_error_has (msg);
  members[0] = at0;
  g_assert_cmpint (rmr_sync_read (sp, GEN, 1, members, buf, CS, 0, &member), ==,
                   0);
  g_assert_cmpuint (member, ==, at0);
  g_assert_cmpuint (buf[0], ==, at0);
  g_assert_cmpuint (buf[CS - 1], ==, at0);

  /* The watch names who watched: the member a read and the clear then
   * expect.  A clear answered by another member keeps every chunk.
   */
  g_assert_cmpint (rmr_sync_watch (sp, GEN, 0, 0, 1, &peers, by, &behind), ==,
                   0);
  g_assert_cmpuint (peers, ==, 1);
  g_assert_cmphex (behind, ==, 1u << 6);
  g_assert_cmpuint (by[0], ==, at0);
  g_assert_cmpuint (by[1], ==, RMR_MEMBER_NONE);
  g_assert_cmpint (rmr_sync_clear_watched (sp, GEN, 0, 0, 16, 1, by, bits), ==,
                   0);
  g_assert_cmpuint (bits[0], ==, at0);
  by[0] = other;
  g_assert_cmpint (rmr_sync_clear_watched (sp, GEN, 0, 0, 16, 1, by, bits), ==,
                   -ECANCELED);
  assert_error_has (msg);
  g_assert_cmpuint (bits[0], ==, 0xff);
  g_assert_cmpuint (bits[1], ==, 0xff);
}

static void
test_who_answers (void)
{
  struct rmr_pool *sp = rmr_sync_pool_new ("p", 5000);

  g_assert_nonnull (sp);
  g_assert_cmpint (rmr_sync_pool_add_sess (sp, "s0", &P.addr, 1), ==, 0);
  g_assert_cmpuint (rmr_sync_peer_member (sp, 0), ==, 2);
  expect_answers (sp, 2, 3);

  g_test_message ("add_sess of the same name points index 0 at Q");
  g_assert_cmpint (rmr_sync_pool_add_sess (sp, "s0", &Q.addr, 1), ==, 0);
  expect_answers (sp, 3, 2);

  g_test_message ("del_sess, and the next add_sess takes index 0 (P)");
  g_assert_cmpint (rmr_sync_pool_del_sess (sp, "s0"), ==, 0);
  g_assert_cmpint (rmr_sync_pool_add_sess (sp, "s1", &P.addr, 1), ==, 0);
  g_assert_cmpuint (rmr_sync_npeers (sp), ==, 1);
  expect_answers (sp, 2, 3);

  g_test_message ("P's node replaced at the same address by member 4");
  atomic_store (&P.member, 4);
  expect_answers (sp, 4, 2);

  rmr_sync_pool_close (sp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  peer_start (&P, 2);
  peer_start (&Q, 3);
  g_test_add_func ("/sync-member/who-answers", test_who_answers);
  return g_test_run ();
}
