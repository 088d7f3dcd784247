/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the recent-write record's save rule (rmr-storaged/al.c):
 * a write may be submitted only once a durable copy of the record holds
 * its extents.  Regression (issue 8): a second write to an extent that a
 * first write had just added went out at once, while the copy holding
 * the extent was still being saved; a crash then could leave a write on
 * one leg with no record of it anywhere.
 */
#undef NDEBUG

#include <errno.h>
#include <string.h>

#include <glib.h>

#include "alrec.h"
#include "fdio.h"
#include "internal.h"
#include "test-tmp.h"

#define MAPPED (16 * 1024 * 1024)

/* A store and its record of capacity extents of 1 MiB, in /tmp. */
struct fix {
  struct tmp t;
  struct store *st;
  struct srv_al *al;
};

static void
fix_open (struct fix *f, unsigned capacity)
{
  tmp_init (&f->t, "/tmp");
  g_assert_cmpint (store_create (f->t.path, "p", 1, MAPPED, false, &f->st), ==,
                   0);
  g_assert_cmpint (al_open (f->st, 20, capacity, &f->al), ==, 0);
}

static void
fix_close (struct fix *f)
{
  al_close (f->al);
  store_close (f->st);
  tmp_fini (&f->t);
}

static void
test_second_write_waits (void)
{
  struct al_waiter w = {0};
  struct fix f;
  uint8_t buf[4096];
  bool need, first;

  fix_open (&f, 16);

  /* First write to extent 0: the record must be saved first. */
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_true (need);
  /* The flusher encodes the copy that holds it... */
  g_assert_true (al_prepare_save (f.al, buf, &first));
  /* ...and before it is durable a second write to the same extent
   * comes: it must wait for that save too.
   */
  g_assert_cmpint (al_begin (f.al, 8192, 4096, 2, 1, al_era (f.al), &need, &w),
                   ==, 0);
  g_assert_true (need);
  al_saved (f.al, buf);
  /* Durable now: a third write goes at once. */
  g_assert_cmpint (al_begin (f.al, 16384, 4096, 3, 1, al_era (f.al), &need, &w),
                   ==, 0);
  g_assert_false (need);
  g_assert_null (al_end (f.al, 0, 4096));
  g_assert_null (al_end (f.al, 8192, 4096));
  g_assert_null (al_end (f.al, 16384, 4096));
  /* A new extent added after the encode is not covered by that copy. */
  g_assert_cmpint (
    al_begin (f.al, 1 << 20, 4096, 4, 4, al_era (f.al), &need, &w), ==, 0);
  g_assert_true (need);
  g_assert_null (al_end (f.al, 1 << 20, 4096));

  fix_close (&f);
}

/* An extent leaves only when every write to it completed on every leg
 * (issue 8): the client's horizon says which.  Record of 2 extents of
 * 1 MiB.
 */
static void
test_retire_after_horizon (void)
{
  struct al_waiter w = {0};
  struct fix f;
  uint8_t buf[4096];
  bool need, first;
  unsigned e;

  fix_open (&f, 2);
  /* Writes 1 and 2 done here, not yet on the other leg (horizon 1). */
  for (e = 0; e < 2; e++) {
    g_assert_cmpint (al_begin (f.al, (uint64_t) e << 20, 4096, e + 1, 1,
                               al_era (f.al), &need, &w),
                     ==, 0);
    g_assert_null (al_end (f.al, (uint64_t) e << 20, 4096));
  }
  g_assert_true (al_prepare_save (f.al, buf, &first));
  al_saved (f.al, buf);
  /* Write 3 to a cold extent: neither may leave, the record grows. */
  g_assert_cmpint (
    al_begin (f.al, 2 << 20, 4096, 3, 1, al_era (f.al), &need, &w), ==, 0);
  g_assert_null (al_end (f.al, 2 << 20, 4096));
  g_assert_cmpuint (al_count (f.al), ==, 3);
  /* Writes 1 and 2 are done everywhere (horizon 3): they leave. */
  g_assert_cmpint (
    al_begin (f.al, 3 << 20, 4096, 4, 3, al_era (f.al), &need, &w), ==, 0);
  g_assert_null (al_end (f.al, 3 << 20, 4096));
  g_assert_cmpuint (al_count (f.al), ==, 2);
  /* A pool enable settles everything: they may all leave. */
  al_consumed (f.al, al_suspicions (f.al));
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
      g_assert_cmpint (al_begin (f.al, off, 4096, step[e].wseq, step[e].horizon,
                                 al_era (f.al), &need, &w),
                       ==, 0);
      g_assert_null (al_end (f.al, off, 4096));
      g_assert_cmpuint (al_count (f.al), ==, step[e].count);
    }
  }

  fix_close (&f);
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
  struct fix f;
  uint8_t buf[4096];
  bool need, first;

  fix_open (&f, 16);
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_null (al_end (f.al, 0, 4096));
  al_suspect (f.al);
  al_info (f.al, &info);
  g_assert_false (info.clean);
  g_assert_cmpuint (info.extents->len, ==, 1);
  g_array_unref (info.extents);
  /* A clean leave (everything settled) keeps a suspect record. */
  al_settle (f.al);
  g_assert_cmpint (al_mark_clean (f.al), ==, 0);
  g_assert_cmpuint (al_count (f.al), ==, 1);
  /* Saved, then the daemon restarts (same boot): still suspect. */
  g_assert_true (al_prepare_save (f.al, buf, &first));
  g_assert_cmpint (
    rmr_pwrite_full (f.st->fd, buf, sizeof buf, al_copy_offset (f.al, buf), 0),
    ==, 0);
  al_close (f.al);
  g_assert_cmpint (al_open (f.st, 20, 16, &f.al), ==, 0);
  al_info (f.al, &info);
  g_assert_false (info.clean);
  g_assert_cmpuint (info.extents->len, ==, 1);
  g_array_unref (info.extents);
  /* The hand-over's enable took it into account. */
  al_consumed (f.al, al_suspicions (f.al));
  al_info (f.al, &info);
  g_assert_true (info.clean);
  g_array_unref (info.extents);

  /* The next client reads the record (AL_GET: clean), then a flush
   * fails before its enable: the enable does not clear what the client
   * never saw.
   */
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_null (al_end (f.al, 0, 4096));
  {
    unsigned seen = al_suspicions (f.al);
    al_suspect (f.al);
    al_consumed (f.al, seen);
  }
  al_info (f.al, &info);
  g_assert_false (info.clean);
  g_assert_cmpuint (info.extents->len, ==, 1);
  g_array_unref (info.extents);
  fix_close (&f);
}

/* What the online verify and the reconcile ask (al_settled): a range is
 * settled when every write this member did there is done on every leg.
 */
static void
test_settled (void)
{
  struct al_waiter w = {0};
  struct fix f;
  bool need;

  fix_open (&f, 16);
  /* Nothing written: settled. */
  g_assert_true (al_settled (f.al, 0, 4 << 20));
  /* Write 1 in flight here: not settled. */
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_false (al_settled (f.al, 0, 4096));
  /* Done here, maybe not on the other leg yet (horizon 1): not settled,
   * also as part of a larger range; the next extent is.
   */
  g_assert_null (al_end (f.al, 0, 4096));
  g_assert_false (al_settled (f.al, 0, 2 << 20));
  g_assert_true (al_settled (f.al, 1 << 20, 1 << 20));
  /* Write 2 elsewhere brings horizon 2: write 1 is done everywhere. */
  g_assert_cmpint (
    al_begin (f.al, 5 << 20, 4096, 2, 2, al_era (f.al), &need, &w), ==, 0);
  g_assert_true (al_settled (f.al, 0, 4096));
  g_assert_false (al_settled (f.al, 5 << 20, 4096));
  g_assert_null (al_end (f.al, 5 << 20, 4096));
  /* Nothing in flight at the client any more: a flush's horizon 3. */
  al_horizon (f.al, 3, al_era (f.al));
  g_assert_true (al_settled (f.al, 5 << 20, 4096));
  /* An older horizon does not move it back. */
  g_assert_cmpint (
    al_begin (f.al, 6 << 20, 4096, 3, 3, al_era (f.al), &need, &w), ==, 0);
  g_assert_null (al_end (f.al, 6 << 20, 4096));
  al_horizon (f.al, 2, al_era (f.al));
  g_assert_false (al_settled (f.al, 6 << 20, 4096));
  al_horizon (f.al, 4, al_era (f.al));
  g_assert_true (al_settled (f.al, 6 << 20, 4096));
  /* A pool enable settles what is left. */
  al_consumed (f.al, al_suspicions (f.al));
  g_assert_true (al_settled (f.al, 0, MAPPED));
  fix_close (&f);
}

/* A write of a client that has left, parked here until after the new
 * client's enable, brings a horizon in the old client's numbering: it
 * must not make the new client's writes look done on every leg.
 */
static void
test_departed_horizon (void)
{
  struct al_waiter w = {0};
  struct fix f;
  unsigned old_era;
  bool need;

  fix_open (&f, 16);
  /* The old client's write 5000, admitted here, then parked. */
  old_era = al_era (f.al);
  /* The old client goes, a new one enables: numbering from 1. */
  al_consumed (f.al, al_suspicions (f.al));
  g_assert_cmpuint (al_era (f.al), !=, old_era);
  /* New write 1, done here, maybe not on the other leg. */
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_null (al_end (f.al, 0, 4096));
  g_assert_false (al_settled (f.al, 0, 4096));
  /* The parked write is released: refused, its horizon 5001 and its
   * number 5000 left out of the record.
   */
  g_assert_cmpint (
    al_begin (f.al, 8 << 20, 4096, 5000, 5001, old_era, &need, &w), ==,
    -ECANCELED);
  g_assert_true (al_settled (f.al, 8 << 20, 4096));
  g_assert_false (al_settled (f.al, 0, 4096));
  al_horizon (f.al, 5001, old_era);
  g_assert_false (al_settled (f.al, 0, 4096));
  /* ...and the new client's own horizon still moves it. */
  al_horizon (f.al, 2, al_era (f.al));
  g_assert_true (al_settled (f.al, 0, 4096));
  fix_close (&f);
}

/* Save what the record would save now (the map flusher's part). */
static void
save_now (struct fix *f)
{
  uint8_t buf[4096];
  bool first;

  g_assert_true (al_prepare_save (f->al, buf, &first));
  g_assert_cmpint (rmr_pwrite_full (f->st->fd, buf, sizeof buf,
                                    al_copy_offset (f->al, buf), 0),
                   ==, 0);
  al_saved (f->al, buf);
}

/* The daemon stops (cleanly or not) and starts again on the store. */
static void
restart (struct fix *f, bool clean)
{
  if (clean)
    g_assert_cmpint (al_mark_clean (f->al), ==, 0);
  al_close (f->al);
  g_assert_cmpint (al_open (f->st, 20, 16, &f->al), ==, 0);
}

/* What the member would tell an assemble: clean?, extents. */
static void
check_info (struct fix *f, bool clean, unsigned nextents)
{
  struct al_info info;

  al_info (f->al, &info);
  g_assert_cmpint (info.clean, ==, clean);
  g_assert_cmpuint (info.extents->len, ==, nextents);
  g_array_unref (info.extents);
}

/* The compute host crashed with writes in flight here (extents 0 and 3),
 * the daemon was killed and restarted, then stopped cleanly before any
 * assemble: the record found at start must survive the clean stop, or
 * a write that reached this member alone is in no record anywhere.
 */
static void
test_clean_stop_keeps_found_record (void)
{
  struct al_waiter w = {0};
  struct fix f;
  bool need;

  fix_open (&f, 16);
  g_assert_cmpint (al_begin (f.al, 0, 4096, 1, 1, al_era (f.al), &need, &w), ==,
                   0);
  g_assert_cmpint (
    al_begin (f.al, 3 << 20, 4096, 2, 1, al_era (f.al), &need, &w), ==, 0);
  save_now (&f);
  restart (&f, false); /* kill -9: same boot */
  check_info (&f, true, 2);
  restart (&f, true); /* a clean stop, no assemble yet */
  check_info (&f, true, 2);
  restart (&f, true); /* and another */
  check_info (&f, true, 2);
  /* An enable took it into account: the next clean stop forgets it. */
  al_consumed (f.al, al_suspicions (f.al));
  restart (&f, true);
  check_info (&f, true, 0);
  fix_close (&f);
}

/* A record of another boot (a power loss here) stays one of another
 * boot across clean stops and restarts until an enable took it into
 * account, with its extents; a failed flush's save keeps them too.
 */
static void
test_power_loss_survives_restarts (void)
{
  struct rmr_alrec rec = {.seq = 7, .shift = 20, .writes = 9};
  uint32_t ext[] = {1, 5};
  uint8_t buf[4096];
  struct fix f;

  fix_open (&f, 16);
  al_close (f.al);
  memcpy (rec.boot_id, "another-boot", 12);
  rmr_alrec_encode (&rec, ext, 2, buf);
  g_assert_cmpint (
    rmr_pwrite_full (f.st->fd, buf, sizeof buf, f.st->sb.al_offset + 4096, 0),
    ==, 0);
  g_assert_cmpint (al_open (f.st, 20, 16, &f.al), ==, 0);
  check_info (&f, false, 2);
  restart (&f, true);
  check_info (&f, false, 2);
  restart (&f, false);
  check_info (&f, false, 2);
  al_suspect (f.al);
  save_now (&f);
  restart (&f, false);
  check_info (&f, false, 2);
  al_consumed (f.al, al_suspicions (f.al));
  save_now (&f);
  restart (&f, true);
  check_info (&f, true, 0);
  fix_close (&f);
}

/* A damaged record (both copies) stays damaged until consumed: a clean
 * stop or a failed flush before any assemble must not replace it with a
 * valid record that says less.
 */
static void
test_lost_record_stays_lost (void)
{
  g_autofree uint8_t *junk = g_malloc (8192);
  struct al_info info;
  uint8_t buf[4096];
  struct fix f;
  bool first;

  fix_open (&f, 16);
  al_close (f.al);
  memset (junk, 0x5a, 8192);
  g_assert_cmpint (
    rmr_pwrite_full (f.st->fd, junk, 8192, f.st->sb.al_offset, 0), ==, 0);
  g_assert_cmpint (al_open (f.st, 20, 16, &f.al), ==, 0);
  al_info (f.al, &info);
  g_assert_true (info.lost);
  g_array_unref (info.extents);
  al_suspect (f.al);
  g_assert_false (al_prepare_save (f.al, buf, &first));
  restart (&f, true);
  al_info (f.al, &info);
  g_assert_true (info.lost);
  g_array_unref (info.extents);
  al_consumed (f.al, al_suspicions (f.al));
  save_now (&f);
  restart (&f, true);
  al_info (f.al, &info);
  g_assert_false (info.lost);
  g_assert_true (info.clean);
  g_array_unref (info.extents);
  fix_close (&f);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_ERROR);
  g_test_add_func ("/al/second-write-waits", test_second_write_waits);
  g_test_add_func ("/al/retire-after-horizon", test_retire_after_horizon);
  g_test_add_func ("/al/settled", test_settled);
  g_test_add_func ("/al/departed-horizon", test_departed_horizon);
  g_test_add_func ("/al/suspect-after-failed-flush",
                   test_suspect_after_failed_flush);
  g_test_add_func ("/al/clean-stop-keeps-found-record",
                   test_clean_stop_keeps_found_record);
  g_test_add_func ("/al/power-loss-survives-restarts",
                   test_power_loss_survives_restarts);
  g_test_add_func ("/al/lost-record-stays-lost", test_lost_record_stays_lost);
  return g_test_run ();
}
