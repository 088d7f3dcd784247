/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deterministic unit test of the resync rules at RF=3 (rmr-storaged/
 * sync.c with the real map.c and store layer) against the fake peers of
 * test-sync-fake.c: member R resyncs from Q (tried first) and P.
 *   - stale source (scenario 6): Q is behind at a chunk and does not
 *     know it, R does: R never takes the chunk from Q;
 *   - stale source that nobody told R (two members missed the same
 *     write): only P knows Q is behind; P's watch says so, and R never
 *     takes the chunk from Q;
 *   - re-dirty on the peer that was not the source: both watches flagged,
 *     R fetches again;
 *   - a whole-chunk write while Q is away is fetched from P, not
 *     claimed;
 *   - a source's session re-pointed to a stale member between the
 *     decision and the read: the read expects the member that watched
 *     (rmr.h), never takes the stale member's answer.
 */
#undef NDEBUG

#include <string.h>

#include "test-sync-fake.h"

/* RF=3, scenario 6: peer Q (tried first) is behind at chunk 9 and does
 * not know it (its own map is clean there); R knows (the hand-over gave
 * it P's map of Q's slot).  R must take chunk 9 from P, never from Q.
 */
static void
test_rf3_stale_source (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 9, 0x99); /* write B reached P only */
  fill (qdata, 9, 0x11); /* Q holds A */
  mark (&P, R_SLOT, 9);
  mark (&P, Q_SLOT, 9);
  mark (&R, R_SLOT, 9);
  mark (&R, Q_SLOT, 9);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  g_assert_false (maps_test (P.maps, R_SLOT, 9));
  /* What R knows of Q stays for Q's own resync. */
  g_assert_true (maps_test (P.maps, Q_SLOT, 9));
  sync_close (s);
  teardown ();
}

/* RF=3, a stale source through a session that changed: R decided on P
 * (peer index 1, current at chunk 9) from its watch, and before the read
 * index 1's session leads to Q (re-pointed by add_sess, or the index
 * freed and taken again), which is behind there and does not know it.
 * The read expects the member that watched: Q's answer is refused, the
 * chunk stays dirty, never Q's data; once index 1 leads to P again, P's.
 */
static unsigned repoints;

static void
repoint_1_to_q (void)
{
  if (via[1] == 1 && repoints++ == 0)
    via[1] = 0;
}

static void
test_rf3_repointed_source (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 9, 0x99);
  fill (qdata, 9, 0x11);
  mark (&P, Q_SLOT, 9);
  mark (&R, R_SLOT, 9);
  mark (&R, Q_SLOT, 9);
  repoints = 0;
  before_read = repoint_1_to_q;
  s = start (false);
  g_usleep (500000);
  g_assert_cmpuint (repoints, >=, 1);
  g_assert_true (maps_test (R.maps, R_SLOT, 9));
  g_assert_cmpuint (r_byte (9), !=, 0x11);
  g_assert_cmpuint (reads, ==, 0);
  g_mutex_lock (&hook_lock);
  via[1] = 1;
  g_mutex_unlock (&hook_lock);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  sync_close (s);
  teardown ();
}

/* RF=3, scenario 3 on the peer that was not the source: R fetched chunk 5
 * from Q; a write R misses lands on P and Q right after.  P's and Q's
 * watches are flagged: R keeps the bit and fetches again.
 */
static void
redirty_5_both (uint64_t c)
{
  if (c != 5 || reads > 1)
    return;
  fill (pdata, 5, 0x77);
  fill (qdata, 5, 0x77);
  g_mutex_unlock (&hook_lock); /* mark () waits for the flushers */
  mark (&P, R_SLOT, 5);
  mark (&Q, R_SLOT, 5);
  g_mutex_lock (&hook_lock);
}

static void
test_rf3_redirty (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 5, 0x55);
  fill (qdata, 5, 0x55);
  mark (&P, R_SLOT, 5);
  mark (&Q, R_SLOT, 5);
  mark (&R, R_SLOT, 5);
  after_read = redirty_5_both;
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (reads, >=, 2);
  g_assert_cmpuint (r_byte (5), ==, 0x77);
  g_assert_false (maps_test (P.maps, R_SLOT, 5));
  g_assert_false (maps_test (Q.maps, R_SLOT, 5));
  sync_close (s);
  teardown ();
}

/* RF=3, a whole-chunk write while Q is unreachable: not a claim (Q keeps
 * its record of R there, which an assemble would give back to R) but a
 * fetch from P, which watched; then the write goes.
 */
static void
test_rf3_claim_with_one_away (void)
{
  struct done_flag f;
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 6, 0x66);
  mark (&P, R_SLOT, 6);
  mark (&Q, R_SLOT, 6);
  mark (&R, R_SLOT, 6);
  away = 1u << 0; /* Q */
  s = start (true);
  g_assert_cmpint (gate_wait (s, &f, 6 * CS, CS, true), ==, 0);
  g_assert_cmpuint (f.sw.claimed, ==, 0);
  g_assert_cmpuint (reads, ==, 1);
  g_assert_cmpuint (r_byte (6), ==, 0x66);
  sync_close (s);
  teardown ();
}

/* RF=3, two members missed the same write: write W reached P only; the
 * client counted R and Q failed, so W's dirty mask named both, and P
 * recorded chunk 9 for R and for Q.  R learns of its own bit (the
 * hand-over), never of Q's; Q's own map is clean there.  Q's data is
 * older, and Q is the peer tried first.  P's watch names Q behind there:
 * R takes chunk 9 from P, and Q's bit at P stays for Q's own resync.
 */
static void
test_rf3_unknown_stale_source (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 9, 0x99);
  fill (qdata, 9, 0x11);
  mark (&P, R_SLOT, 9);
  mark (&P, Q_SLOT, 9);
  mark (&R, R_SLOT, 9);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  g_assert_false (maps_test (P.maps, R_SLOT, 9));
  g_assert_true (maps_test (P.maps, Q_SLOT, 9));
  sync_close (s);
  teardown ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A failed fetch is logged as a warning: expected here. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_ERROR);
  g_test_add_func ("/sync-watch/rf3/stale-source", test_rf3_stale_source);
  g_test_add_func ("/sync-watch/rf3/unknown-stale-source",
                   test_rf3_unknown_stale_source);
  g_test_add_func ("/sync-watch/rf3/redirty", test_rf3_redirty);
  g_test_add_func ("/sync-watch/rf3/claim-with-one-away",
                   test_rf3_claim_with_one_away);
  g_test_add_func ("/sync-watch/rf3/repointed-source",
                   test_rf3_repointed_source);
  return g_test_run ();
}
