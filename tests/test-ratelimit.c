/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/ratelimit.c: the first per_second events of each
 * second are logged, the rest counted and reported once with the first
 * event of a later second, and a quiet gap loses no count.  Times are
 * given by the test, so every case is exact.
 */
#undef NDEBUG

#include <glib.h>

#include "ratelimit.h"

#define SEC ((gint64) G_USEC_PER_SEC)

/* n events at now; how many were to be logged; *dropped the sum. */
static unsigned
burst (struct rmr_ratelimit *rl, gint64 now, unsigned n, unsigned *dropped)
{
  unsigned i, logged = 0, d;

  *dropped = 0;
  for (i = 0; i < n; i++) {
    if (rmr_ratelimit (rl, now, &d))
      logged++;
    *dropped += d;
  }
  return logged;
}

static void
test_first_of_each_second (void)
{
  static struct rmr_ratelimit rl = RMR_RATELIMIT_INIT (5);
  unsigned dropped;

  g_assert_cmpuint (burst (&rl, 100 * SEC, 3, &dropped), ==, 3);
  g_assert_cmpuint (dropped, ==, 0);
  /* Later in the same second: two more, then none. */
  g_assert_cmpuint (burst (&rl, 100 * SEC + SEC / 2, 1000, &dropped), ==, 2);
  g_assert_cmpuint (dropped, ==, 0);
  /* The next second: its first event reports the 998 not logged. */
  g_assert_cmpuint (burst (&rl, 101 * SEC, 1, &dropped), ==, 1);
  g_assert_cmpuint (dropped, ==, 998);
  g_assert_cmpuint (burst (&rl, 101 * SEC + 1, 10, &dropped), ==, 4);
  g_assert_cmpuint (dropped, ==, 0);
}

static void
test_quiet_gap (void)
{
  static struct rmr_ratelimit rl = RMR_RATELIMIT_INIT (1);
  unsigned dropped;

  g_assert_cmpuint (burst (&rl, 5 * SEC, 7, &dropped), ==, 1);
  /* An hour of silence: the six are still reported, once. */
  g_assert_cmpuint (burst (&rl, 3605 * SEC, 1, &dropped), ==, 1);
  g_assert_cmpuint (dropped, ==, 6);
  g_assert_cmpuint (burst (&rl, 3606 * SEC, 1, &dropped), ==, 1);
  g_assert_cmpuint (dropped, ==, 0);
}

static void
test_none_logged (void)
{
  static struct rmr_ratelimit rl = RMR_RATELIMIT_INIT (0);
  unsigned dropped;

  /* per_second 0 logs nothing, and still counts. */
  g_assert_cmpuint (burst (&rl, 1 * SEC, 4, &dropped), ==, 0);
  g_assert_cmpuint (burst (&rl, 2 * SEC, 1, &dropped), ==, 0);
  g_assert_cmpuint (dropped, ==, 4);
}

struct hammer {
  struct rmr_ratelimit *rl;
  unsigned logged;
};

static gpointer
hammer_thread (gpointer opaque)
{
  struct hammer *h = opaque;
  unsigned dropped;

  h->logged = burst (h->rl, 42 * SEC, 10000, &dropped);
  g_assert_cmpuint (dropped, ==, 0);
  return NULL;
}

/* Threads at once: the limit holds across them, and no event is lost
 * from the count.
 */
static void
test_threads (void)
{
  static struct rmr_ratelimit rl = RMR_RATELIMIT_INIT (5);
  struct hammer h[4];
  GThread *t[4];
  unsigned i, logged = 0, dropped;

  for (i = 0; i < 4; i++) {
    h[i].rl = &rl;
    t[i] = g_thread_new ("hammer", hammer_thread, &h[i]);
  }
  for (i = 0; i < 4; i++) {
    g_thread_join (t[i]);
    logged += h[i].logged;
  }
  g_assert_cmpuint (logged, ==, 5);
  g_assert_cmpuint (burst (&rl, 43 * SEC, 1, &dropped), ==, 1);
  g_assert_cmpuint (dropped, ==, 40000 - 5);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ratelimit/first-of-each-second",
                   test_first_of_each_second);
  g_test_add_func ("/ratelimit/quiet-gap", test_quiet_gap);
  g_test_add_func ("/ratelimit/none-logged", test_none_logged);
  g_test_add_func ("/ratelimit/threads", test_threads);
  return g_test_run ();
}
