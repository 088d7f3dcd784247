/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the idle horizon (common/client-io.c clt_horizon_due):
 * when a client stops writing, the members would never learn that its
 * last writes are done on every leg (only a later request's horizon tells
 * them), and an IO on a member that waits for such a chunk to settle (a
 * resync fetching a chunk again, rmr-storaged/sync-flush.c) fails after
 * about 1.4 s and fails the leg.  A thread (client-horizon.c) looks at
 * the horizon and sends a flush, which carries it, once a look finds
 * nothing sent since the one before.
 *
 * Driven through the real IO path on a pool with no leg: every request
 * fails (no leg is normal), but writes are numbered and horizons given
 * and recorded as usual.  The interleavings pinned:
 *   - before any write nothing is due (there is no horizon to tell),
 *     and an idle client is looked at rarely (CLT_HZ_IDLE) until its next
 *     write kicks the thread, once;
 *   - a write done, the client idle: the first look waits (a request went
 *     out since the last look), the next says due;
 *   - the flush sends it: one more look soon (it went out), then idle;
 *   - a write between two looks puts it off again (the writes carry the
 *     horizon while they keep coming; no flush in a busy client);
 *   - a write in flight whose own number is the horizon sent: looked at
 *     again soon, due once it completed (not idle: nothing would wake
 *     the thread when it completes);
 *   - a fenced pool: idle (nothing may be sent);
 *   - sequence numbers wrap past 0 (0 means none on the wire).
 */
#undef NDEBUG

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "client.h"

#define SIZE (1ULL << 20)

static struct rmr_pool *
pool_new (void)
{
  struct rmr_pool *pool = clt_pool_alloc ();

  snprintf (pool->cfg.pool_name, sizeof pool->cfg.pool_name, "p");
  pool->cfg.min_legs = 1;
  pool->size = SIZE;
  return pool;
}

static void
write_one (struct rmr_pool *pool)
{
  char buf[512] = {0};

  /* No leg: refused, after it was numbered and its horizon given. */
  g_assert_cmpint (rmr_pool_pwrite (pool, buf, sizeof buf, 0, 0), ==, -EIO);
}

static void
test_idle (void)
{
  struct rmr_pool *pool = pool_new ();

  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  write_one (pool);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  /* Still due until something sends it. */
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  g_assert_cmpint (rmr_pool_flush (pool, 0), ==, -EIO);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  /* Idle: the next write wakes the thread to look (once). */
  pool->hz_kick = false;
  write_one (pool);
  g_assert_true (pool->hz_kick);
  pool->hz_kick = false;
  write_one (pool);
  g_assert_false (pool->hz_kick);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  clt_pool_free (pool);
}

static void
test_busy (void)
{
  struct rmr_pool *pool = pool_new ();
  int i;

  for (i = 0; i < 5; i++) {
    write_one (pool);
    g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  }
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  /* A flush of the client's own between looks sends it too. */
  g_assert_cmpint (rmr_pool_flush (pool, 0), ==, -EIO);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  clt_pool_free (pool);
}

/* A write still in flight whose own number is the horizon sent: the look
 * must not call the client idle (the horizon moves when it completes,
 * and nothing would wake the thread then).
 */
static void
test_in_flight (void)
{
  struct rmr_pool *pool = pool_new ();
  struct clt_range r = {.start = 0, .end = 512};

  write_one (pool);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  g_assert_cmpint (rmr_pool_flush (pool, 0), ==, -EIO);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  /* As ov_enter leaves it: numbered, on the list, its horizon sent. */
  r.seq = ++pool->wseq;
  pool->ov_head = &r;
  pool->hz_sent = r.seq;
  pool->hz_sends++;
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  pool->ov_head = NULL; /* it completed */
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  clt_pool_free (pool);
}

/* A fenced pool sends nothing: the look calls it idle. */
static void
test_fenced (void)
{
  struct rmr_pool *pool = pool_new ();

  write_one (pool);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  atomic_store (&pool->fenced, true);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  clt_pool_free (pool);
}

static void
test_wrap (void)
{
  struct rmr_pool *pool = pool_new ();

  pool->wseq = UINT32_MAX - 1;
  write_one (pool); /* numbered UINT32_MAX: the next horizon is 1 */
  g_assert_cmpuint (pool->wseq, ==, UINT32_MAX);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  g_assert_cmpint (rmr_pool_flush (pool, 0), ==, -EIO);
  g_assert_cmpuint (pool->hz_sent, ==, 1);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_IDLE);
  write_one (pool); /* numbered 1, past 0 */
  g_assert_cmpuint (pool->wseq, ==, 1);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_WAIT);
  g_assert_cmpint (clt_horizon_due (pool), ==, CLT_HZ_DUE);
  clt_pool_free (pool);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/client-horizon/idle", test_idle);
  g_test_add_func ("/client-horizon/busy", test_busy);
  g_test_add_func ("/client-horizon/in-flight", test_in_flight);
  g_test_add_func ("/client-horizon/fenced", test_fenced);
  g_test_add_func ("/client-horizon/wrap", test_wrap);
  return g_test_run ();
}
