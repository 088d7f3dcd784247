/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resync's pace (rmr-storaged/sync-pace.c) on a clock of its own:
 *   - sync_rate alone is a token bucket (waits add up to bytes/rate);
 *   - unlimited and idle clients: never a wait;
 *   - client IO between two fetches slows the resync to sync_min_rate at
 *     once, and for PACE_BUSY_US after the last IO seen, then full speed;
 *   - the lower of the two rates holds when both are set;
 *   - sync_min_rate 0 never slows;
 *   - no credit saved while idle, no debt kept from a busy spell;
 *   - a look (rmradm sync) notes IO the same way;
 *   - the IO count at open does not count as client IO.
 */
#undef NDEBUG

#include <glib.h>

#include "internal.h"

#define MB (UINT64_C (1) << 20)
#define CHUNK (UINT64_C (1) << 20)

/* µs a chunk takes at rate. */
static int64_t
per_chunk (uint64_t rate)
{
  return (int64_t) (CHUNK * 1000000 / rate);
}

static void
test_rate_alone (void)
{
  struct sync_pace sp;
  int64_t t = 1000000;

  sync_pace_init (&sp, 100 * MB, 0, 7);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 7, t), ==, 0);
  /* Three workers at once: each waits one chunk longer. */
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 7, t), ==, per_chunk (100 * MB));
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 7, t), ==,
                   2 * per_chunk (100 * MB));
  /* Client IO does not matter without a min rate. */
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 99, t), ==,
                   3 * per_chunk (100 * MB));
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 100 * MB);
}

static void
test_unlimited_idle (void)
{
  struct sync_pace sp;
  int64_t t = 1000000;

  sync_pace_init (&sp, 0, 64 * MB, 5);
  for (int i = 0; i < 100; i++)
    g_assert_cmpint (sync_pace_take (&sp, CHUNK, 5, t + i), ==, 0);
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 0);
}

static void
test_busy_then_idle (void)
{
  struct sync_pace sp;
  int64_t t = 1000000, w;

  sync_pace_init (&sp, 0, 64 * MB, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 0, t), ==, 0);
  /* A client IO since: this fetch starts now, the next one waits. */
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1, t), ==, 0);
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 64 * MB);
  w = sync_pace_take (&sp, CHUNK, 1, t);
  g_assert_cmpint (w, ==, per_chunk (64 * MB));
  /* No more IO: still busy until PACE_BUSY_US after the last seen. */
  t += w;
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1, t), ==, per_chunk (64 * MB));
  g_assert_cmpuint (sync_pace_rate (&sp, 1000000 + PACE_BUSY_US - 1), ==,
                    64 * MB);
  /* Past the window: full speed, no debt from the busy spell. */
  t = 1000000 + PACE_BUSY_US;
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1, t), ==, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1, t), ==, 0);
  /* IO again: slow at once, from now (no credit from the idle spell). */
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 2, t + 10), ==, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 2, t + 10), ==,
                   per_chunk (64 * MB));
}

static void
test_lower_of_two (void)
{
  struct sync_pace sp;
  int64_t t = 1000000;

  sync_pace_init (&sp, 32 * MB, 64 * MB, 0);
  sync_pace_take (&sp, CHUNK, 1, t);
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 32 * MB);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 2, t), ==, per_chunk (32 * MB));
  sync_pace_init (&sp, 200 * MB, 64 * MB, 0);
  sync_pace_take (&sp, CHUNK, 1, t);
  g_assert_cmpuint (sync_pace_rate (&sp, t), ==, 64 * MB);
  g_assert_cmpuint (sync_pace_rate (&sp, t + PACE_BUSY_US), ==, 200 * MB);
}

static void
test_min_rate_off (void)
{
  struct sync_pace sp;
  int64_t t = 1000000;

  sync_pace_init (&sp, 0, 0, 0);
  for (uint64_t i = 1; i < 100; i++)
    g_assert_cmpint (sync_pace_take (&sp, CHUNK, i, t), ==, 0);
}

/* What `rmradm sync` shows: a look notes IO like a fetch does. */
static void
test_note (void)
{
  struct sync_pace sp;

  sync_pace_init (&sp, 0, 64 * MB, 10);
  g_assert_false (sync_pace_note (&sp, 10, 100));
  g_assert_true (sync_pace_note (&sp, 11, 200));
  g_assert_true (sync_pace_note (&sp, 11, 200 + PACE_BUSY_US - 1));
  g_assert_false (sync_pace_note (&sp, 11, 200 + PACE_BUSY_US));
  /* and the next fetch runs at full speed then. */
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 11, 200 + PACE_BUSY_US), ==, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 11, 200 + PACE_BUSY_US), ==, 0);
}

static void
test_open_count_not_busy (void)
{
  struct sync_pace sp;

  /* The pool served a million IOs before the sync opened. */
  sync_pace_init (&sp, 0, 64 * MB, 1000000);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1000000, 5), ==, 0);
  g_assert_cmpint (sync_pace_take (&sp, CHUNK, 1000000, 5), ==, 0);
  g_assert_cmpuint (sync_pace_rate (&sp, 5), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sync-pace/rate-alone", test_rate_alone);
  g_test_add_func ("/sync-pace/unlimited-idle", test_unlimited_idle);
  g_test_add_func ("/sync-pace/busy-then-idle", test_busy_then_idle);
  g_test_add_func ("/sync-pace/lower-of-two", test_lower_of_two);
  g_test_add_func ("/sync-pace/min-rate-off", test_min_rate_off);
  g_test_add_func ("/sync-pace/note", test_note);
  g_test_add_func ("/sync-pace/open-count-not-busy", test_open_count_not_busy);
  return g_test_run ();
}
