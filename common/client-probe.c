/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A pool's legs before it opens: probing before an assemble
 * (rmr_pool_probe: is there a leg to every member?) and holding a
 * create-mode leg joined (rmr_leg_hold).
 *
 * The admin guide adds an assembled pool's sessions one by one and
 * enables the pool by itself "after all legs are successfully
 * assembled".  Only the members know who belongs to the pool (their
 * member tables), so after each added session the caller asks every leg
 * with a probe join (RMR_JOIN_REQ_F_PROBE): the member checks the request
 * as for a join and answers with its table, but nothing joins, so the
 * pool's state and its IO are untouched (a real join would stop the
 * pool's IO until an enable).
 *
 * Complete means: every leg answered, and every member of the newest
 * table (the highest generation among the answers: a member that missed
 * a later enable may hold an old table) has a leg.  The decision of the
 * assemble itself (sources, what may differ, fencing) stays with
 * rmr_pool_open (); a probe only says when to try it, so a wrong "complete"
 * costs a refused open, never data.
 *
 * A hold is the guide's session enable in create mode: the leg joins at
 * once (the member's pool turns `created`, and an error in the session's
 * configuration shows at the step that made it), in a pool of its own
 * with that one leg.  While held, the member takes no other client's join
 * (the fencing of a join until its enable).  rmr_pool_open () cannot reuse
 * the held join, so the caller releases every hold first (a graceful
 * leave: the fresh store goes back to `registered`) and the open joins
 * again; nothing is written between the two.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "util.h"

/* A probe asks members that should be up: it waits less than an open. */
#define PROBE_TIMEOUT_MS 5000

static int
check_complete (const struct rmr_pool *pool, const struct rmr_join_rep *rep)
{
  unsigned i, j, newest = 0;

  for (i = 1; i < pool->nlegs; i++)
    if (rep[i].generation > rep[newest].generation)
      newest = i;
  for (j = 0; j < RMR_MAX_MEMBERS; j++) {
    uint32_t m = rep[newest].members[j];
    if (m == RMR_MEMBER_NONE)
      continue;
    for (i = 0; i < pool->nlegs; i++)
      if (rep[i].member_id == m)
        break;
    if (i == pool->nlegs)
      return rmr_err (EAGAIN,
                      "pool '%s': member %" PRIu32 " has no session yet",
                      pool->cfg.pool_name, m);
  }
  return 0;
}

int
rmr_pool_probe (const struct rmr_pool_config *cfg)
{
  struct rmr_join_rep rep[RMR_MAX_MEMBERS];
  struct rmr_pool *pool;
  unsigned i;
  int r = 0;

  if (cfg->mode != RMR_MODE_ASSEMBLE)
    return rmr_err (EINVAL, "mode: a probe is for mode=assemble");
  pool = clt_pool_from_config (cfg);
  if (!pool)
    return -errno;
  pool->probe = true;
  pool->cfg.timeout_ms = MIN (pool->cfg.timeout_ms, PROBE_TIMEOUT_MS);
  for (i = 0; i < pool->nlegs && r == 0; i++) {
    r = clt_leg_join_new (&pool->legs[i], &rep[i]);
    if (r == 0)
      clt_leg_release (&pool->legs[i]);
    else if (clt_is_refusal (r))
      rmr_err_prefix ("session %s: ", pool->legs[i].sessname);
    else {
      rmr_err_prefix ("session %s: not reachable yet: ",
                      pool->legs[i].sessname);
      r = -EAGAIN;
    }
  }
  if (r == 0)
    r = check_complete (pool, rep);
  clt_pool_free (pool);
  return r;
}

struct rmr_leg_hold {
  struct rmr_pool *pool; /* one leg, joined */
};

struct rmr_leg_hold *
rmr_leg_hold (const struct rmr_pool_config *cfg, unsigned i)
{
  struct rmr_pool_config one;
  struct rmr_join_rep rep;
  struct rmr_leg_hold *h;
  struct rmr_pool *pool;
  int r;

  if (i >= cfg->nlegs) {
    rmr_err (EINVAL, "leg %u: the pool has %u legs", i, cfg->nlegs);
    return NULL;
  }
  if (cfg->mode != RMR_MODE_CREATE) {
    rmr_err (EINVAL, "mode: only a create-mode leg is held");
    return NULL;
  }
  one = *cfg;
  one.legs[0] = cfg->legs[i];
  one.nlegs = 1;
  pool = clt_pool_from_config (&one);
  if (!pool)
    return NULL;
  r = clt_leg_join_new (&pool->legs[0], &rep);
  if (r < 0) {
    rmr_err_prefix ("session %s: ", pool->legs[0].sessname);
    clt_pool_free (pool);
    errno = -r;
    return NULL;
  }
  h = g_new0 (struct rmr_leg_hold, 1);
  h->pool = pool;
  return h;
}

void
rmr_leg_unhold (struct rmr_leg_hold *h)
{
  if (!h)
    return;
  clt_leg_leave (&h->pool->legs[0], RMR_LEAVE_DISASSEMBLE);
  clt_leg_release (&h->pool->legs[0]);
  clt_pool_free (h->pool);
  g_free (h);
}
