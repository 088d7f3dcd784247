/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the disk-replacement decisions (rmr-storaged/replace.c):
 * which size a replacement gets (or why it is refused), that a
 * replacement refuses to found a pool, that a replacement disk must be
 * empty, and that settling saves every chunk dirty for the member before
 * the flag goes (again after a crash between the two).
 */
#undef NDEBUG

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "internal.h"
#include "md.h"
#include "test-assert.h"
#include "test-tmp.h"

#define MAPPED (16 * 1024 * 1024)
#define CHUNK (64 * 1024)
#define NCHUNKS (MAPPED / CHUNK)

static void
known_pool (struct replace_known *k)
{
  memset (k, 0, sizeof *k);
  k->known = true;
  k->mapped_size = MAPPED;
  k->chunk_size = CHUNK;
  k->generation = 3;
  snprintf (k->from, sizeof k->from, "from its store /x, generation 3");
}

static void
test_decide_size (void)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct replace_known k;
  uint64_t size = 0;

  known_pool (&k);
  /* Given and matching, or not given: the pool's. */
  g_assert_cmpint (replace_decide (&k, "p", MAPPED, &size, err), ==, 0);
  g_assert_cmpuint (size, ==, MAPPED);
  size = 0;
  g_assert_cmpint (replace_decide (&k, "p", 0, &size, err), ==, 0);
  g_assert_cmpuint (size, ==, MAPPED);

  /* A different size: refused, one line naming mapped_size, size kept. */
  size = 7;
  g_assert_cmpint (replace_decide (&k, "p", MAPPED - 512, &size, err), ==,
                   -EINVAL);
  g_assert_cmpuint (size, ==, 7);
  g_assert_true (g_str_has_prefix (err->str, "mapped_size: "));
  g_assert_null (strchr (err->str, '\n'));
  g_assert_nonnull (strstr (err->str, "32768"));

  /* Nothing known (another pool's name, or no peer answering): refused,
   * whatever size is given.
   */
  memset (&k, 0, sizeof k);
  g_string_truncate (err, 0);
  g_assert_cmpint (replace_decide (&k, "q", MAPPED, &size, err), ==, -ENXIO);
  g_assert_true (g_str_has_prefix (err->str, "mapped_size: "));
  g_assert_nonnull (strstr (err->str, "'q'"));
  g_string_truncate (err, 0);
  g_assert_cmpint (replace_decide (&k, "q", 0, &size, err), ==, -ENXIO);
  g_assert_cmpuint (size, ==, 7);
}

static void
test_join_check (void)
{
  g_autoptr (GString) err = g_string_new (NULL);

  g_assert_cmpint (
    replace_join_check (RMR_SB_F_REPLACED, RMR_MODE_CREATE, "p", 42, err), ==,
    -EINVAL);
  g_assert_true (g_str_has_prefix (err->str, "mode=create"));
  g_assert_cmpint (
    replace_join_check (RMR_SB_F_REPLACED, RMR_MODE_ASSEMBLE, "p", 42, err), ==,
    0);
  g_assert_cmpint (
    replace_join_check (RMR_SB_F_REPLACED, RMR_MODE_AUTO, "p", 42, err), ==, 0);
  g_assert_cmpint (
    replace_join_check (RMR_SB_F_ZEROED, RMR_MODE_CREATE, "p", 42, err), ==, 0);
}

static void
test_joins_data (void)
{
  /* A create: every store new, the client decides the initial sync.  A
   * create is always generation 1 (client-assemble.c decide_create).
   */
  g_assert_false (
    replace_joins_data (0, 0, RMR_MODE_CREATE, RMR_MODE_CREATE, 1));
  g_assert_false (
    replace_joins_data (0, RMR_SB_F_ZEROED, RMR_MODE_CREATE, RMR_MODE_AUTO, 1));
  /* An assemble with a new store in it, and a reconnect of one (its
   * session joined with mode=assemble, the pool_md says create).
   */
  g_assert_true (
    replace_joins_data (0, 0, RMR_MODE_ASSEMBLE, RMR_MODE_AUTO, 5));
  g_assert_true (replace_joins_data (0, RMR_SB_F_ZEROED, RMR_MODE_CREATE,
                                     RMR_MODE_ASSEMBLE, 5));
  /* A store that held the pool is no new member... */
  g_assert_false (
    replace_joins_data (4, 0, RMR_MODE_ASSEMBLE, RMR_MODE_ASSEMBLE, 5));
  /* ...unless it is a replacement that has yet to settle. */
  g_assert_true (replace_joins_data (4, RMR_SB_F_REPLACED, RMR_MODE_CREATE,
                                     RMR_MODE_CREATE, 4));
}

/* A member added live (common/client-legs.c) to a pool this client
 * created: the new store joined with mode=auto, and the enable of step 4
 * carries the pool's md, whose mode is still "create", in generation
 * G+1 >= 2.  Those are the arguments of a create (above) but for the
 * generation: if the store is not taken for a member without the data,
 * it is enabled with a clean map of its own slot and its own state
 * "up to date" (md_apply_members with no maps), and until the hand-over
 * gives it its bits only the old members' step-2 marks say otherwise.
 * A client crash there, the one marked member away and an old member
 * that was failed during the add (so unmarked) present: the assemble's
 * plan finds nobody recording N stale, prefers N's newer generation as
 * the source, and the union of the maps has no bit for N: the empty
 * store serves every chunk, and the records' chunks are "resynced" from
 * it onto the good member.
 */
static void
test_joins_data_live_add (void)
{
  g_assert_true (replace_joins_data (0, 0, RMR_MODE_CREATE, RMR_MODE_AUTO, 2));
  g_assert_true (
    replace_joins_data (0, RMR_SB_F_ZEROED, RMR_MODE_CREATE, RMR_MODE_AUTO, 7));
}

/* The superblock as on the disk now. */
static void
read_disk_sb (const char *path, struct rmr_sb *sb)
{
  struct store *st;

  g_assert_cmpint (store_open (path, "p", 42, MAPPED, 0, &st), ==, 0);
  *sb = st->sb;
  store_close (st);
}

static void
test_disk_must_be_empty (void)
{
  struct store *st = NULL;
  struct rmr_sb sb;
  struct tmp t;

  tmp_init (&t, "/tmp");
  g_assert_cmpint (
    store_create_replacement (t.path, "p", 42, MAPPED, false, &st), ==, 0);
  /* Marked a replacement from its first write, and never "zeroed": it
   * must not pass for a fresh store of a new pool.
   */
  g_assert_true (st->sb.flags & RMR_SB_F_REPLACED);
  g_assert_false (st->sb.flags & RMR_SB_F_ZEROED);
  g_assert_cmpuint (st->sb.generation, ==, 0);
  store_close (st);
  read_disk_sb (t.path, &sb);
  g_assert_true (sb.flags & RMR_SB_F_REPLACED);

  /* A disk with rmr metadata (of any pool, this one too) is refused, and
   * stays as it was.
   */
  assert_error (store_create_replacement (t.path, "p", 42, MAPPED, false, &st),
                EEXIST, "clear it first");
  assert_error (store_create_replacement (t.path, "q", 1, MAPPED, true, &st),
                EEXIST, "clear it first");
  read_disk_sb (t.path, &sb);
  g_assert_cmpstr (sb.pool_name, ==, "p");
  g_assert_true (sb.flags & RMR_SB_F_REPLACED);
  tmp_fini (&t);
}

/* A replacement as the first pool enable leaves it: generation and
 * member table written, flag still set (pool.c, before replace_settle).
 */
static struct store *
enabled_replacement (const char *path)
{
  struct store *st;

  g_assert_cmpint (store_create_replacement (path, "p", 42, MAPPED, false, &st),
                   ==, 0);
  g_mutex_lock (&st->md_lock);
  st->sb.generation = 5;
  st->sb.chunk_size = CHUNK;
  st->sb.queue_depth = 32;
  st->sb.members[0] = (struct rmr_member_md){41, RMR_MEMBER_NORMAL, 5};
  st->sb.members[1] = (struct rmr_member_md){42, RMR_MEMBER_NORMAL, 5};
  g_assert_cmpint (store_write_sb_unlocked (st), ==, 0);
  g_mutex_unlock (&st->md_lock);
  return st;
}

static void
test_settle (void)
{
  struct srv_maps *m;
  struct store *st;
  struct rmr_sb sb;
  struct tmp t;

  tmp_init (&t, "/tmp");
  st = enabled_replacement (t.path);
  g_assert_cmpint (maps_open (st, true, 22, 16, &m), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, 0);
  /* Not in the member table: refused, flag kept. */
  assert_error (replace_settle (st, m, -1), EINVAL, "member table");
  g_assert_true (st->sb.flags & RMR_SB_F_REPLACED);

  g_assert_cmpint (replace_settle (st, m, 1), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, NCHUNKS);
  g_assert_cmpuint (maps_count (m, 0), ==, 0);
  g_assert_false (st->sb.flags & RMR_SB_F_REPLACED);
  /* Settled once: a second call changes nothing. */
  maps_clear (m, 1u << 1, 0, 10);
  g_assert_cmpint (replace_settle (st, m, 1), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, NCHUNKS - 10);
  maps_mark (m, 1u << 1, 0, 10, NULL);
  g_assert_cmpint (maps_sync (m), ==, 0);
  maps_close (m);
  store_close (st);

  /* On the disk: the flag gone, the member inconsistent (dirty), every
   * chunk dirty in its slot.
   */
  read_disk_sb (t.path, &sb);
  g_assert_false (sb.flags & RMR_SB_F_REPLACED);
  g_assert_cmpuint (sb.members[1].state, ==, RMR_MEMBER_DIRTY);
  g_assert_cmpuint (sb.members[0].state, ==, RMR_MEMBER_NORMAL);
  g_assert_cmpint (store_open (t.path, "p", 42, MAPPED, 0, &st), ==, 0);
  g_assert_cmpint (maps_open (st, false, 22, 16, &m), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, NCHUNKS);
  maps_close (m);
  store_close (st);
  tmp_fini (&t);
}

/* A crash after the resync began but with the flag still on the disk
 * (the superblock write that clears it never happened): settling again
 * marks everything again.  Never fewer bits than the truth.
 */
static void
test_settle_after_crash (void)
{
  struct srv_maps *m;
  struct store *st;
  struct tmp t;

  tmp_init (&t, "/tmp");
  st = enabled_replacement (t.path);
  g_assert_cmpint (maps_open (st, true, 22, 16, &m), ==, 0);
  /* Some bits, as if part of a first settle and a resync happened. */
  maps_mark (m, 1u << 1, 0, 100, NULL);
  maps_clear (m, 1u << 1, 0, 50);
  g_assert_cmpint (maps_sync (m), ==, 0);
  maps_close (m);
  store_close (st);

  g_assert_cmpint (store_open (t.path, "p", 42, MAPPED, 0, &st), ==, 0);
  g_assert_true (st->sb.flags & RMR_SB_F_REPLACED);
  g_assert_cmpint (maps_open (st, false, 22, 16, &m), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, 50);
  g_assert_cmpint (replace_settle (st, m, 1), ==, 0);
  g_assert_cmpuint (maps_count (m, 1), ==, NCHUNKS);
  maps_close (m);
  store_close (st);
  tmp_fini (&t);
}

/* A store that is no replacement is left alone. */
static void
test_settle_not_replaced (void)
{
  struct srv_maps *m;
  struct store *st;
  struct tmp t;

  tmp_init (&t, "/tmp");
  g_assert_cmpint (store_create (t.path, "p", 42, MAPPED, false, &st), ==, 0);
  g_mutex_lock (&st->md_lock);
  st->sb.chunk_size = CHUNK;
  st->sb.generation = 1;
  st->sb.members[0] = (struct rmr_member_md){42, RMR_MEMBER_NORMAL, 1};
  g_assert_cmpint (store_write_sb_unlocked (st), ==, 0);
  g_mutex_unlock (&st->md_lock);
  g_assert_cmpint (maps_open (st, true, 22, 16, &m), ==, 0);
  g_assert_cmpint (replace_settle (st, m, 0), ==, 0);
  g_assert_cmpuint (maps_count (m, 0), ==, 0);
  maps_close (m);
  store_close (st);
  tmp_fini (&t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/replace/decide-size", test_decide_size);
  g_test_add_func ("/replace/join-check", test_join_check);
  g_test_add_func ("/replace/joins-data", test_joins_data);
  g_test_add_func ("/replace/joins-data-live-add", test_joins_data_live_add);
  g_test_add_func ("/replace/disk-must-be-empty", test_disk_must_be_empty);
  g_test_add_func ("/replace/settle", test_settle);
  g_test_add_func ("/replace/settle-after-crash", test_settle_after_crash);
  g_test_add_func ("/replace/settle-not-replaced", test_settle_not_replaced);
  return g_test_run ();
}
