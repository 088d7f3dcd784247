/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the live-leg decisions (common/client-legs.c, md.c
 * md_apply_members) and of what an assemble decides after a client crash
 * in the middle of a live add or delete (client-assemble.c clt_decide,
 * with the join replies the members would give: no transport).
 *
 * The interleavings pinned:
 *   - add, crash after one member persisted the table with the new
 *     member N and before the other did: the newest table wins, N is a
 *     member whose store is new (it resyncs everything), never a source;
 *   - add, crash before N was enabled anywhere: N's slot bits sit in an
 *     unused slot; the tables are unchanged;
 *   - delete of C, crash between member A (new table without C) and
 *     member B (old table with C): the assemble takes A's table, B drops
 *     C and its bits when it is enabled with it, and C coming back is
 *     refused as no member (never a source, never resurrected);
 *   - the refusals of add and remove, each with the field named;
 *   - who an assemble may go on without: a member away, or here with a
 *     replaced disk, counts against the quorum of min-legs.
 */
#undef NDEBUG

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "client.h"
#include "md.h"
#include "test-assert.h"

#define SIZE (64ULL << 20)
#define NONE RMR_MEMBER_NONE

static struct rmr_pool *
pool_new (unsigned nlegs)
{
  struct rmr_pool *pool = clt_pool_alloc ();
  unsigned i;

  snprintf (pool->cfg.pool_name, sizeof pool->cfg.pool_name, "p");
  pool->cfg.mode = RMR_MODE_AUTO;
  pool->cfg.min_legs = 1;
  pool->cfg.queue_depth = 128;
  pool->nlegs = nlegs;
  for (i = 0; i < nlegs; i++) {
    pool->legs[i].pool = pool;
    snprintf (pool->legs[i].addr_name, sizeof pool->legs[i].addr_name,
              "tcp:10.0.0.%u:7700", i + 1);
    pool->legs[i].slot = -1;
  }
  return pool;
}

static void
rep_init (struct rmr_join_rep *r, uint32_t id, uint64_t gen, uint32_t m0,
          uint32_t m1, uint32_t m2)
{
  unsigned s;

  memset (r, 0, sizeof *r);
  r->member_id = id;
  r->generation = gen;
  r->fresh = gen == 0;
  r->mapped_size = SIZE;
  r->chunk_size = gen ? 131072 : 0;
  r->queue_depth = 128;
  r->min_legs = 1;
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    r->members[s] = NONE;
  if (gen) {
    r->members[0] = m0;
    r->members[1] = m1;
    r->members[2] = m2;
  }
}

/* Add of N (43) to {41, 42}: A persisted generation 3 with N in slot 2,
 * then the client died; B is still at 2.  N's store was never enabled.
 */
static void
test_add_crash_between_members (void)
{
  struct rmr_pool *pool = pool_new (3);
  struct rmr_join_rep rep[3];
  struct rmr_enable_req en;

  rep_init (&rep[0], 41, 3, 41, 42, 43);
  rep_init (&rep[1], 42, 2, 41, 42, NONE);
  rep_init (&rep[2], 43, 0, 0, 0, 0);
  g_assert_cmpint (clt_decide (pool, rep, 7, &en), ==, 0);
  g_assert_cmpuint (en.generation, ==, 4);
  g_assert_cmpuint (en.members[2], ==, 43);
  g_assert_cmpint (pool->legs[0].slot, ==, 0);
  g_assert_cmpint (pool->legs[1].slot, ==, 1);
  /* N is a member with a new store: it resyncs all, it is no source. */
  g_assert_true (pool->legs[2].new_member);
  g_assert_false (pool->legs[2].new_slot);
  g_assert_cmpint (pool->legs[2].slot, ==, 2);
  g_assert_false (pool->legs[0].new_member || pool->legs[1].new_member);
  clt_pool_free (pool);
}

/* Add, crash before any member took the new table: N joins as a fresh
 * store of a pool it is not in (a new member again), the old members'
 * table is unchanged.
 */
static void
test_add_crash_before_table (void)
{
  struct rmr_pool *pool = pool_new (3);
  struct rmr_join_rep rep[3];
  struct rmr_enable_req en;

  rep_init (&rep[0], 41, 2, 41, 42, NONE);
  rep_init (&rep[1], 42, 2, 41, 42, NONE);
  rep_init (&rep[2], 43, 0, 0, 0, 0);
  g_assert_cmpint (clt_decide (pool, rep, 7, &en), ==, 0);
  g_assert_true (pool->legs[2].new_member);
  g_assert_true (pool->legs[2].new_slot);
  g_assert_cmpint (pool->legs[2].slot, ==, 2);
  clt_pool_free (pool);
}

/* Delete of C (43, slot 2): A persisted generation 3 without C, B is at
 * 2 with C.  The assemble on A and B takes A's table; B drops C and its
 * bits when enabled with it.
 */
static void
test_delete_crash_between_members (void)
{
  struct rmr_pool *pool = pool_new (2);
  struct rmr_join_rep rep[2];
  struct rmr_enable_req en;
  struct rmr_sb sb;
  uint64_t ndirty[RMR_MAX_MEMBERS] = {0};
  unsigned s;

  rep_init (&rep[0], 41, 3, 41, 42, NONE);
  rep_init (&rep[1], 42, 2, 41, 42, 43);
  g_assert_cmpint (clt_decide (pool, rep, 3, &en), ==, 0);
  g_assert_cmpuint (en.members[2], ==, NONE);
  g_assert_cmpuint (en.generation, ==, 4);

  /* B's superblock: C outdated with bits, as it was. */
  memset (&sb, 0, sizeof sb);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    sb.members[s].member_id = NONE;
  sb.members[0] = (struct rmr_member_md){41, RMR_MEMBER_NORMAL, 1};
  sb.members[1] = (struct rmr_member_md){42, RMR_MEMBER_DIRTY, 2};
  sb.members[2] = (struct rmr_member_md){43, RMR_MEMBER_DIRTY, 2};
  ndirty[1] = 5;
  ndirty[2] = 100;
  g_assert_cmpuint (md_apply_members (&sb, en.members, ndirty, en.generation),
                    ==, 1u << 2);
  g_assert_cmpuint (sb.members[2].member_id, ==, NONE);
  g_assert_cmpuint (sb.members[2].state, ==, RMR_MEMBER_ABSENT);
  /* The members that stay keep their state and its generation. */
  g_assert_cmpuint (sb.members[1].state, ==, RMR_MEMBER_DIRTY);
  g_assert_cmpuint (sb.members[1].since, ==, 2);
  g_assert_cmpuint (sb.members[0].state, ==, RMR_MEMBER_NORMAL);
  clt_pool_free (pool);
}

/* C comes back after its delete (its store still holds the pool): it is
 * no member of the newest table, so the open refuses it by name.
 */
static void
test_deleted_member_refused (void)
{
  struct rmr_pool *pool = pool_new (3);
  struct rmr_join_rep rep[3];
  struct rmr_enable_req en;

  rep_init (&rep[0], 41, 3, 41, 42, NONE);
  rep_init (&rep[1], 42, 3, 41, 42, NONE);
  rep_init (&rep[2], 43, 2, 41, 42, 43);
  assert_error (clt_decide (pool, rep, 7, &en), EINVAL, "not a member");
  clt_pool_free (pool);
}

/* Offline delete (cfg.delete_members): an absent member leaves the
 * table; one that is here is refused by name; an id no longer in the
 * table is ignored (a delete repeated after a crash).
 */
static void
test_delete_at_assemble (void)
{
  struct rmr_pool *pool = pool_new (2);
  struct rmr_join_rep rep[2];
  struct rmr_enable_req en;

  rep_init (&rep[0], 41, 3, 41, 42, 43);
  rep_init (&rep[1], 42, 3, 41, 42, 43);
  pool->cfg.ndelete = 2;
  pool->cfg.delete_members[0] = 43;
  pool->cfg.delete_members[1] = 77;
  g_assert_cmpint (clt_decide (pool, rep, 3, &en), ==, 0);
  g_assert_cmpuint (en.members[2], ==, NONE);
  g_assert_cmpuint (pool->deleted_slots, ==, 1u << 2);
  g_assert_cmpuint (en.members[0], ==, 41);
  g_assert_cmpuint (en.members[1], ==, 42);

  pool->cfg.delete_members[0] = 42;
  assert_error (clt_decide (pool, rep, 3, &en), EINVAL, "delete-member");
  clt_pool_free (pool);
}

/* The table change on the stores: a member added while the pool is open
 * is outdated where its bits are (they were marked before), a member of
 * a new table without bits is normal.
 */
static void
test_apply_members_add (void)
{
  struct rmr_sb sb;
  uint32_t members[RMR_MAX_MEMBERS];
  uint64_t ndirty[RMR_MAX_MEMBERS] = {0};
  unsigned s;

  memset (&sb, 0, sizeof sb);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    sb.members[s].member_id = members[s] = NONE;
  sb.members[0] = (struct rmr_member_md){41, RMR_MEMBER_NORMAL, 1};
  members[0] = 41;
  members[1] = 43;
  members[2] = 44;
  ndirty[1] = 512;
  g_assert_cmpuint (md_apply_members (&sb, members, ndirty, 5), ==, 0);
  g_assert_cmpuint (sb.members[1].member_id, ==, 43);
  g_assert_cmpuint (sb.members[1].state, ==, RMR_MEMBER_DIRTY);
  g_assert_cmpuint (sb.members[1].since, ==, 5);
  g_assert_cmpuint (sb.members[2].state, ==, RMR_MEMBER_NORMAL);
  g_assert_cmpuint (sb.members[0].since, ==, 1);
}

static void
test_add_verdict (void)
{
  uint32_t members[RMR_MAX_MEMBERS];
  struct clt_leg_view lv[2] = {{41, "tcp:a", true}, {42, "tcp:b", true}};
  struct rmr_join_rep rep;
  unsigned s;
  int slot;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    members[s] = NONE;
  members[0] = 41;
  members[2] = 42; /* slot 1 freed by a delete */
  rep_init (&rep, 43, 0, 0, 0, 0);
  g_assert_cmpint (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), ==, 0);
  g_assert_cmpint (slot, ==, 1);

  rep.mapped_size = SIZE / 2;
  assert_error (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), EINVAL,
    "mapped_size");
  rep.mapped_size = SIZE;

  rep.member_id = 42; /* a leg already */
  assert_error (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), EEXIST,
    "already");

  rep_init (&rep, 45, 7, 41, 45, NONE); /* used, not in the table */
  assert_error (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), EINVAL,
    "not a member");

  members[5] = 46; /* a disassembled member coming back */
  rep_init (&rep, 46, 7, 41, 42, 46);
  g_assert_cmpint (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), ==, 1);
  g_assert_cmpint (slot, ==, 5);
  rep.fresh = 1; /* ... with a fresh store: a replaced disk */
  assert_error (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), EEXIST,
    "replace");

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    members[s] = 60 + s;
  rep_init (&rep, 43, 0, 0, 0, 0);
  assert_error (
    clt_leg_add_verdict (members, lv, 2, SIZE, &rep, "tcp:c", &slot), ENOSPC,
    "members");
}

static void
test_remove_verdict (void)
{
  struct clt_leg_view lv[3] = {
    {41, "tcp:a", true}, {42, "tcp:b", false}, {43, "tcp:c", false}};

  assert_error (clt_leg_remove_verdict (lv, 1, 1, 0), EBUSY, "last leg");
  assert_error (clt_leg_remove_verdict (lv, 3, 1, 3), ENOENT, "no such leg");
  /* The only up-to-date leg may not go; the others may. */
  assert_error (clt_leg_remove_verdict (lv, 3, 1, 0), EBUSY, "up to date");
  g_assert_cmpint (clt_leg_remove_verdict (lv, 3, 1, 1), ==, 0);
  g_assert_cmpint (clt_leg_remove_verdict (lv, 3, 1, 2), ==, 0);
  /* min-legs 3: no leg may go. */
  assert_error (clt_leg_remove_verdict (lv, 3, 3, 1), EBUSY, "min-legs");
  lv[1].uptodate = true;
  g_assert_cmpint (clt_leg_remove_verdict (lv, 3, 2, 0), ==, 0);
}

/* A write that reached some legs and that no leg could record (every
 * map-add failed) leaves the legs different where nobody knows it: the
 * client keeps the range (pool->pending) and every member that comes back
 * through a normal one takes it (handover.c).  A member removed with
 * mode disassemble stays in the table without a leg: it was failed at
 * that write too, so it may hold what the others lack or lack what they
 * hold.  The range may be forgotten only when every member of the table
 * was handed it, not when every remaining leg is normal: else R, added
 * again (a reconnect, client-legs.c kind 1), is handed no bit there and
 * the legs differ for good (a read returns one leg's bytes or the
 * other's).
 */
/* RF=3, the client counts B (slot 1) failed; a write W goes to A (slot
 * 0) and C (slot 2) with B's slot in its dirty mask, and fails on A.
 * The map-add to C names A and B again: B, resyncing meanwhile, may
 * have fetched the chunk from A before W got there and cleared the bit C
 * had set for it (its watch at C began after that mark); marked again,
 * C's bit for B stays or comes back.
 */
static void
test_record_missed_names_missing (void)
{
  struct rmr_pool *pool = pool_new (3);

  pool->legs[0].slot = 0;
  pool->legs[1].slot = 1;
  pool->legs[2].slot = 2;
  g_assert_cmphex (clt_missed_slots (pool, 1u << 0, 1u << 1), ==, 0x3);
  g_assert_cmphex (clt_missed_slots (pool, 1u << 0 | 1u << 2, 1u << 1), ==,
                   0x7);
  /* Nothing failed: nothing to record (the write carried its mask). */
  g_assert_cmphex (clt_missed_slots (pool, 0, 1u << 1), ==, 0);
  /* A failed leg without a slot (never joined) records nothing. */
  pool->legs[0].slot = -1;
  g_assert_cmphex (clt_missed_slots (pool, 1u << 0, 1u << 1), ==, 0);
  clt_pool_free (pool);
}

static void
test_pending_kept_for_removed_member (void)
{
  struct rmr_pool *pool = pool_new (2);
  unsigned s;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    pool->md.members[s] = NONE;
  pool->md.members[0] = 41;
  pool->md.members[1] = 42;
  pool->md.members[2] = 43; /* R: disassembled, no leg */
  pool->legs[0].member_id = 41;
  pool->legs[0].slot = 0;
  pool->legs[1].member_id = 42;
  pool->legs[1].slot = 1;
  atomic_store (&pool->legs[0].state, LEG_NORMAL);
  atomic_store (&pool->legs[1].state, LEG_NORMAL);
  g_assert_false (clt_pending_may_clear (pool));
  /* R deleted (out of the table): nobody else to hand it to. */
  pool->md.members[2] = NONE;
  g_assert_true (clt_pending_may_clear (pool));
  /* A leg not normal keeps it too. */
  atomic_store (&pool->legs[1].state, LEG_FAILED);
  g_assert_false (clt_pending_may_clear (pool));
  clt_pool_free (pool);
}

/* Who an assemble may go on without (clt_assemble_absent).  A member
 * whose disk was replaced is here with nothing: its old disk may have
 * held writes the others lack (it was the one leg left when the compute
 * host died) and it will never come back, so it counts as absent for the
 * quorum, and without one the assemble is refused until force=1, as for
 * a member that is away.
 */
static void
test_absent_verdict (void)
{
  uint32_t members[RMR_MAX_MEMBERS], absent;
  struct clt_presence pr;
  unsigned s;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    members[s] = NONE;
  members[0] = 41;
  members[1] = 42;
  memset (&pr, 0, sizeof pr);
  pr.present[0] = pr.present[1] = true;
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 1, false, &absent),
                   ==, 0);
  g_assert_cmpuint (absent, ==, 0);

  /* RF=2, min-legs 1: 42 replaced. */
  pr.present[1] = false;
  pr.replaced[1] = true;
  assert_error (clt_assemble_absent ("p", members, &pr, 1, false, &absent),
                ENXIO, "member 42 has a new store");
  assert_error (clt_assemble_absent ("p", members, &pr, 1, false, &absent),
                ENXIO, "force=1");
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING,
                         "*force: member 42 has a new store*lost");
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 1, true, &absent),
                   ==, 0);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (absent, ==, 0); /* here: not recorded absent */
  /* min-legs 2: every write reached 41 too. */
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 2, false, &absent),
                   ==, 0);

  /* 42 away (not replaced): refused, then absent with force. */
  pr.replaced[1] = false;
  assert_error (clt_assemble_absent ("p", members, &pr, 1, false, &absent),
                ENXIO, "member 42 is missing");
  g_test_expect_message (NULL, G_LOG_LEVEL_WARNING,
                         "*force: assembling without member 42*");
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 1, true, &absent),
                   ==, 0);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (absent, ==, 1u << 1);

  /* RF=3, min-legs 2: one replaced is within the quorum; one replaced
   * and one away is not.
   */
  members[2] = 43;
  pr.present[1] = true;
  pr.present[2] = false;
  pr.replaced[2] = true;
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 2, false, &absent),
                   ==, 0);
  g_assert_cmpuint (absent, ==, 0);
  pr.present[1] = false;
  assert_error (clt_assemble_absent ("p", members, &pr, 2, false, &absent),
                ENXIO, "member 42 is missing");
  /* The same with the replaced disk in the lower slot: the refusal still
   * names the member away, whose return makes the quorum (2 + 2 >= 4),
   * not only force=1.
   */
  pr.replaced[1] = true;
  pr.replaced[2] = false;
  assert_error (clt_assemble_absent ("p", members, &pr, 2, false, &absent),
                ENXIO, "member 43 is missing");
  pr.present[2] = true;
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 2, false, &absent),
                   ==, 0);
  g_assert_cmpuint (absent, ==, 0);
  pr.replaced[1] = false;
  pr.present[2] = false;
  /* A member being added (new slot) is no member yet: it counts for
   * nothing either way.
   */
  pr.present[1] = true;
  pr.replaced[2] = false;
  pr.newslot[2] = true;
  g_assert_cmpint (clt_assemble_absent ("p", members, &pr, 1, false, &absent),
                   ==, 0);
  g_assert_cmpuint (absent, ==, 0);
}

/* Both disks of an RF=2 pool replaced (add_store mode=replace) while no
 * client was up: every store answers fresh, and one that is a
 * replacement must not let the pool be created on it (its data is
 * nowhere here), whatever the mode; without the flag it is a create.
 */
static void
test_all_replaced_refused (void)
{
  struct rmr_pool *pool = pool_new (2);
  struct rmr_join_rep rep[2];
  struct rmr_enable_req en;

  rep_init (&rep[0], 41, 0, 0, 0, 0);
  rep_init (&rep[1], 42, 0, 0, 0, 0);
  rep[0].flags = RMR_JOIN_F_REPLACED;
  rep[1].flags = RMR_JOIN_F_REPLACED;
  assert_error (clt_decide (pool, rep, 3, &en), ENXIO,
                "store of member 41, 42 is a replaced disk");
  pool->cfg.mode = RMR_MODE_ASSEMBLE;
  assert_error (clt_decide (pool, rep, 3, &en), ENXIO, "replaced disk");
  /* One replaced, the other a store formatted anew (a config file). */
  pool->cfg.mode = RMR_MODE_AUTO;
  rep[0].flags = 0;
  assert_error (clt_decide (pool, rep, 3, &en), ENXIO,
                "store of member 42 is a replaced disk");
  rep[1].flags = RMR_JOIN_F_ZEROED;
  g_assert_cmpint (clt_decide (pool, rep, 3, &en), ==, 0);
  g_assert_cmpuint (en.mode, ==, RMR_MODE_CREATE);
  g_assert_cmpuint (en.generation, ==, 1);
  clt_pool_free (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/legs/add-crash-between-members",
                   test_add_crash_between_members);
  g_test_add_func ("/legs/add-crash-before-table", test_add_crash_before_table);
  g_test_add_func ("/legs/delete-crash-between-members",
                   test_delete_crash_between_members);
  g_test_add_func ("/legs/deleted-member-refused", test_deleted_member_refused);
  g_test_add_func ("/legs/delete-at-assemble", test_delete_at_assemble);
  g_test_add_func ("/legs/apply-members-add", test_apply_members_add);
  g_test_add_func ("/legs/record-missed-names-missing",
                   test_record_missed_names_missing);
  g_test_add_func ("/legs/add-verdict", test_add_verdict);
  g_test_add_func ("/legs/remove-verdict", test_remove_verdict);
  g_test_add_func ("/legs/pending-kept-for-removed-member",
                   test_pending_kept_for_removed_member);
  g_test_add_func ("/legs/absent-verdict", test_absent_verdict);
  g_test_add_func ("/legs/all-replaced-refused", test_all_replaced_refused);
  return g_test_run ();
}
