/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the recent-write record's save rule (rmr-storaged/al.c):
 * a write may be submitted only once a durable copy of the record holds
 * its extents.  Regression (issue 8): a second write to an extent that a
 * first write had just added went out at once, while the copy holding
 * the extent was still being saved; a crash then could leave a write on
 * one leg with no record of it anywhere.
 */
#undef NDEBUG

#include <glib.h>

#include "fdio.h"
#include "internal.h"
#include "test-tmp.h"

#define MAPPED (16 * 1024 * 1024)

static void
test_second_write_waits (void)
{
  struct al_waiter w = {0};
  struct store *st;
  struct srv_al *al;
  struct tmp t;
  uint8_t buf[4096];
  bool need, first;

  tmp_init (&t, "/tmp");
  g_assert_cmpint (store_create (t.path, "p", 1, MAPPED, &st), ==, 0);
  g_assert_cmpint (al_open (st, 20, 16, &al), ==, 0);

  /* First write to extent 0: the record must be saved first. */
  g_assert_cmpint (al_begin (al, 0, 4096, 1, 1, &need, &w), ==, 0);
  g_assert_true (need);
  /* The flusher encodes the copy that holds it... */
  g_assert_true (al_prepare_save (al, buf, &first));
  /* ...and before it is durable a second write to the same extent
   * comes: it must wait for that save too.
   */
  g_assert_cmpint (al_begin (al, 8192, 4096, 2, 1, &need, &w), ==, 0);
  g_assert_true (need);
  al_saved (al, buf);
  /* Durable now: a third write goes at once. */
  g_assert_cmpint (al_begin (al, 16384, 4096, 3, 1, &need, &w), ==, 0);
  g_assert_false (need);
  g_assert_null (al_end (al, 0, 4096));
  g_assert_null (al_end (al, 8192, 4096));
  g_assert_null (al_end (al, 16384, 4096));
  /* A new extent added after the encode is not covered by that copy. */
  g_assert_cmpint (al_begin (al, 1 << 20, 4096, 4, 4, &need, &w), ==, 0);
  g_assert_true (need);
  g_assert_null (al_end (al, 1 << 20, 4096));

  al_close (al);
  store_close (st);
  tmp_fini (&t);
}

/* An extent leaves only when every write to it completed on every leg
 * (issue 8): the client's horizon says which.  Record of 2 extents of
 * 1 MiB.
 */
static void
test_retire_after_horizon (void)
{
  struct al_waiter w = {0};
  struct store *st;
  struct srv_al *al;
  struct tmp t;
  uint8_t buf[4096];
  bool need, first;
  unsigned e;

  tmp_init (&t, "/tmp");
  g_assert_cmpint (store_create (t.path, "p", 1, MAPPED, &st), ==, 0);
  g_assert_cmpint (al_open (st, 20, 2, &al), ==, 0);
  /* Writes 1 and 2 done here, not yet on the other leg (horizon 1). */
  for (e = 0; e < 2; e++) {
    g_assert_cmpint (
      al_begin (al, (uint64_t) e << 20, 4096, e + 1, 1, &need, &w), ==, 0);
    g_assert_null (al_end (al, (uint64_t) e << 20, 4096));
  }
  g_assert_true (al_prepare_save (al, buf, &first));
  al_saved (al, buf);
  /* Write 3 to a cold extent: neither may leave, the record grows. */
  g_assert_cmpint (al_begin (al, 2 << 20, 4096, 3, 1, &need, &w), ==, 0);
  g_assert_null (al_end (al, 2 << 20, 4096));
  g_assert_cmpuint (al_count (al), ==, 3);
  /* Writes 1 and 2 are done everywhere (horizon 3): they leave. */
  g_assert_cmpint (al_begin (al, 3 << 20, 4096, 4, 3, &need, &w), ==, 0);
  g_assert_null (al_end (al, 3 << 20, 4096));
  g_assert_cmpuint (al_count (al), ==, 2);
  /* A pool enable settles everything: they may all leave. */
  al_consumed (al);
  /* Across the wrap of the sequence numbers, the same rule. */
  {
    static const struct {
      uint32_t wseq, horizon;
      unsigned count;
    } step[] = {
      {0xfffffffe, 0xfffffffe, 2}, /* a settled one leaves */
      {0xffffffff, 0xfffffffe, 2}, /* the other settled one */
      {1, 0xffffffff, 2},          /* 0xfffffffe is done */
      {2, 0xffffffff, 3},          /* 0xffffffff and 1 are not */
      {3, 2, 2},                   /* both are now */
    };
    for (e = 0; e < G_N_ELEMENTS (step); e++) {
      uint64_t off = (uint64_t) (4 + e) << 20;
      g_assert_cmpint (
        al_begin (al, off, 4096, step[e].wseq, step[e].horizon, &need, &w), ==,
        0);
      g_assert_null (al_end (al, off, 4096));
      g_assert_cmpuint (al_count (al), ==, step[e].count);
    }
  }

  al_close (al);
  store_close (st);
  tmp_fini (&t);
}

/* Scenario 5: a flush failed here.  The record turns suspect: it is
 * reported unclean (the hand-over resyncs its extents here), a clean leave
 * does not drop it, a restart of the daemon on the same boot keeps it
 * suspect (it is saved), and only a pool enable (the hand-over took it
 * into account) clears it.
 */
static void
test_suspect_after_failed_flush (void)
{
  struct al_waiter w = {0};
  struct al_info info;
  struct store *st;
  struct srv_al *al;
  struct tmp t;
  uint8_t buf[4096];
  bool need, first;

  tmp_init (&t, "/tmp");
  g_assert_cmpint (store_create (t.path, "p", 1, MAPPED, &st), ==, 0);
  g_assert_cmpint (al_open (st, 20, 16, &al), ==, 0);
  g_assert_cmpint (al_begin (al, 0, 4096, 1, 1, &need, &w), ==, 0);
  g_assert_null (al_end (al, 0, 4096));
  al_suspect (al);
  al_info (al, &info);
  g_assert_false (info.clean);
  g_assert_cmpuint (info.extents->len, ==, 1);
  g_array_unref (info.extents);
  /* A clean leave (everything settled) keeps a suspect record. */
  al_settle (al);
  g_assert_cmpint (al_mark_clean (al), ==, 0);
  g_assert_cmpuint (al_count (al), ==, 1);
  /* Saved, then the daemon restarts (same boot): still suspect. */
  g_assert_true (al_prepare_save (al, buf, &first));
  g_assert_cmpint (
    rmr_pwrite_full (st->fd, buf, sizeof buf, al_copy_offset (al, buf), 0), ==,
    0);
  al_close (al);
  g_assert_cmpint (al_open (st, 20, 16, &al), ==, 0);
  al_info (al, &info);
  g_assert_false (info.clean);
  g_assert_cmpuint (info.extents->len, ==, 1);
  g_array_unref (info.extents);
  /* The hand-over's enable took it into account. */
  al_consumed (al);
  al_info (al, &info);
  g_assert_true (info.clean);
  g_array_unref (info.extents);

  al_close (al);
  store_close (st);
  tmp_fini (&t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_ERROR);
  g_test_add_func ("/al/second-write-waits", test_second_write_waits);
  g_test_add_func ("/al/retire-after-horizon", test_retire_after_horizon);
  g_test_add_func ("/al/suspect-after-failed-flush",
                   test_suspect_after_failed_flush);
  return g_test_run ();
}
