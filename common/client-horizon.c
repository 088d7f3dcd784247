/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The idle horizon: one thread per pool sends a client's horizon when
 * the client stopped sending requests (docs/protocol.md, "Write sequence
 * and horizon").
 *
 * Why: a member learns that a write is done on every leg only from a
 * later request's horizon.  A client that stops writing would leave its
 * last writes unsettled on the members for as long as it stays idle: a
 * resyncing member's IO that waits for such a chunk to settle (a chunk
 * whose clear a peer kept is fetched again only then, rmr-storaged/
 * sync-flush.c) gives up after about 1.4 s and fails the leg, and a
 * verify skips the chunk.
 *
 * How: the thread looks at the horizon (client-io.c clt_horizon_due)
 * every HZ_LOOK_MS while requests go out or writes are in flight, every
 * HZ_CATCH_UP_MS while a leg catches up; a look that finds nothing sent
 * since the one before and a horizon the members were not sent sends a
 * flush, which carries it.  An idle client's thread sleeps until its next
 * write kicks it (once per idle spell), or a leg starts catching up.  A
 * busy client sends no extra flush; an idle one at most one per spell.
 *
 * Its own thread, not the reconnect thread's: that one blocks in
 * reconnect attempts to an unreachable host and under reconn_lock for
 * whole hand-overs, longer than a resyncing member waits.
 *
 * Locking: hz_lock protects hz_stop and hz_kick.  The flush takes the IO
 * gate as any request does; nothing that freezes the gate waits for this
 * thread, and a stop waits for at most one flush (its deadline).
 */
#include <errno.h>
#include <stdbool.h>

#include "client.h"
#include "error.h"

#define HZ_LOOK_MS 1000
#define HZ_CATCH_UP_MS 200

static bool
catching_up (struct rmr_pool *pool)
{
  unsigned i;

  for (i = 0; i < pool->nlegs; i++)
    if (atomic_load (&pool->legs[i].catching_up))
      return true;
  return false;
}

static gpointer
horizon_thread (gpointer arg)
{
  struct rmr_pool *pool = arg;
  enum clt_hz hz;
  int64_t wake;

  g_mutex_lock (&pool->hz_lock);
  while (!pool->hz_stop) {
    pool->hz_kick = false;
    g_mutex_unlock (&pool->hz_lock);

    hz = clt_horizon_due (pool);
    /* A leg that fails the flush is failed as by any flush; the error
     * is for nobody (the leg's state and log say it).
     */
    if (hz == CLT_HZ_DUE)
      (void) rmr_pool_flush (pool, 0);
    wake =
      hz == CLT_HZ_IDLE
        ? INT64_MAX
        : g_get_monotonic_time () +
            (int64_t) (catching_up (pool) ? HZ_CATCH_UP_MS : HZ_LOOK_MS) * 1000;

    g_mutex_lock (&pool->hz_lock);
    while (!pool->hz_stop && !pool->hz_kick) {
      if (wake == INT64_MAX)
        g_cond_wait (&pool->hz_cond, &pool->hz_lock);
      else if (!g_cond_wait_until (&pool->hz_cond, &pool->hz_lock, wake))
        break;
    }
  }
  g_mutex_unlock (&pool->hz_lock);
  return NULL;
}

void
clt_horizon_kick (struct rmr_pool *pool)
{
  g_mutex_lock (&pool->hz_lock);
  pool->hz_kick = true;
  g_cond_signal (&pool->hz_cond);
  g_mutex_unlock (&pool->hz_lock);
}

int
clt_horizon_start (struct rmr_pool *pool)
{
  pool->hz_stop = false;
  pool->hz_thread =
    g_thread_try_new ("rmr-horizon", horizon_thread, pool, NULL);
  if (!pool->hz_thread)
    return rmr_err (EAGAIN, "cannot start the horizon thread");
  return 0;
}

void
clt_horizon_stop (struct rmr_pool *pool)
{
  if (!pool->hz_thread)
    return;
  g_mutex_lock (&pool->hz_lock);
  pool->hz_stop = true;
  g_cond_signal (&pool->hz_cond);
  g_mutex_unlock (&pool->hz_lock);
  g_thread_join (pool->hz_thread);
  pool->hz_thread = NULL;
}
