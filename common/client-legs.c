/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Live legs (issue 10): adding a leg to an open pool, removing one, and
 * deleting a member for good, all under IO.  They reuse the two
 * mechanisms the pool already has: the marks of a fresh store joining an
 * assembled pool (every chunk dirty for the new member, as
 * clt_mark_new_members does at open), and the hand-over of a returning
 * leg with IO frozen (clt_freeze, clt_handover, handover.c).
 *
 * Add of member N (fresh store), in this order:
 *   1. N joins (its node checks the pool name, mapped_size and chunk
 *      size; a refusal is the error and nothing changed anywhere).
 *   2. Every normal member persists every chunk dirty for N's slot
 *      (MAP_ADD, acknowledged once on its store).  N is in nobody's table
 *      yet, so these bits mean nothing until step 3; writes go on, and
 *      whatever they write is covered by those bits.
 *   3. IO frozen (no request in flight).  Every normal member persists
 *      the member table with N in a new generation G+1 (a pool enable of
 *      the enabled client): N's state there is DIRTY, saved with the
 *      table, because its bits are already on the store (md.c
 *      md_apply_members).
 *   4. N is enabled at G+1 and handed the union of the normal members'
 *      maps (clt_handover: every chunk for itself), its leg turns normal
 *      and IO is thawed: from now on every write goes to N as well.
 *   5. N resyncs from its peers through the storage nodes' sync pools.
 *      The client reads from it only when no other leg can (its node
 *      fetches a chunk it lacks before serving it) until every normal
 *      member says N is clean (AL_GET states, polled by the reconnect
 *      thread): then it is "up-to-date".
 *
 * Invariants of the recovery decisions:
 *   - N enters a member table only on stores that already hold every
 *     chunk dirty for it (2 before 3), so no assemble can take N as a
 *     source: with N in the table, its slot is dirty everywhere in the
 *     union of the maps until N's own resync clears it.
 *   - N is never skipped by a write that is not recorded for it: before
 *     step 4 everything is dirty for it; after, it is a normal leg.
 *   - A client crash between 3 on member A and 3 on member B leaves A at
 *     G+1 (table with N) and B at G: the next assemble takes the newest
 *     table (A's) and both hold N's bits (step 2), so N resyncs fully.
 *     A crash before 3 leaves bits in an unused slot: a later member in
 *     that slot resyncs a few chunks more, nothing else.
 *   - Once one ENABLE of step 3 was sent, the new table may be persisted
 *     somewhere: the client commits to G+1 whatever else fails; a member
 *     that failed step 3 is a failed leg and takes the new table when it
 *     reconnects (hand-over, then enable at G+1).  N failing in step 4
 *     stays a failed leg marked new_member: its reconnect enables it
 *     first, then hands it its map, and only while a normal member can.
 *   - N dies mid-resync: a failed leg like any other; the others still
 *     hold its bits.  An old member dies mid-resync: N fetches the chunk
 *     from another current peer, or waits for one; it never serves a
 *     chunk it lacks.
 *
 * Remove of leg R (IO frozen; refused when R is the last leg, when fewer
 * than min-legs legs would remain, or when no remaining leg is up to
 * date: normal, not catching up, and recorded dirty by no normal member
 * including R):
 *   - disassemble: R leaves (its store keeps its data, metadata and
 *     table), the client drops the leg.  R stays in the member table, so
 *     every later write carries its slot in the dirty mask and the
 *     members record what it misses (persisted before acknowledgement).
 *   - delete: every normal remaining member persists the table without R
 *     in a new generation and drops R's bits; then R leaves with mode
 *     delete.  A crash between two members leaves the newest table
 *     without R: the next assemble takes it (newest generation wins), a
 *     member at the older generation then gets it too, and R, if it
 *     joins again, is refused as not a member; it is never a source.
 *     Deleting never drops the only current copy: some remaining member
 *     is up to date.
 *
 * Locking: everything here runs under reconn_lock (no reconnect or other
 * admin change at the same time); the leg table changes only with IO
 * frozen and under legs_lock (status readers).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "handover.h"
#include "md.h"
#include "parse.h"
#include "util.h"

int
clt_mark_all (struct rmr_pool *pool, struct clt_leg *leg, int slot)
{
  uint64_t nchunks = ho_nchunks (pool), c, len;
  int r;

  for (c = 0; c < nchunks; c += len) {
    struct rmr_hdr hdr = {.type = RMR_MSG_MAP_ADD,
                          .generation = pool->generation,
                          .offset = c,
                          .dirty_mask = 1u << slot};
    len = MIN (nchunks - c, RMR_MAP_MAX_CHUNKS);
    hdr.length = len;
    r = clt_leg_call (leg, leg->sess, &hdr, NULL, 0, NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  return 0;
}

int
clt_leg_add_verdict (const uint32_t members[RMR_MAX_MEMBERS],
                     const struct clt_leg_view *legs, unsigned nlegs,
                     uint64_t size, const struct rmr_join_rep *rep,
                     const char *addr, int *slot)
{
  unsigned i, s;
  int in_table = -1;

  *slot = -1;
  for (i = 0; i < nlegs; i++)
    if (legs[i].member_id == rep->member_id)
      return rmr_err (EEXIST,
                      "server %s is member %" PRIu32 ", which leg %u (%s) "
                      "already is",
                      addr, rep->member_id, i, legs[i].addr);
  if (rep->mapped_size != size)
    return rmr_err (EINVAL,
                    "server %s: mapped_size %" PRIu64 " of its store, but the "
                    "pool's is %" PRIu64,
                    addr, rep->mapped_size, size);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (members[s] == rep->member_id)
      in_table = s;
  if (!rep->fresh) {
    if (in_table < 0)
      return rmr_err (EINVAL,
                      "server %s: its store holds pool data (generation "
                      "%" PRIu64 ") as member %" PRIu32 ", which is not a "
                      "member of the pool (a deleted member, or another "
                      "pool of that name: delete_store and create_store "
                      "it first)",
                      addr, rep->generation, rep->member_id);
    *slot = in_table;
    return 1; /* a member of the table coming back */
  }
  if (in_table >= 0)
    return rmr_err (EEXIST,
                    "server %s: member %" PRIu32 " is in the pool's member "
                    "table already, with a fresh store (a replaced disk "
                    "comes back with add_store mode=replace)",
                    addr, rep->member_id);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (members[s] == RMR_MEMBER_NONE) {
      *slot = s;
      return 0;
    }
  return rmr_err (ENOSPC, "server %s: the pool has %u members already", addr,
                  RMR_MAX_MEMBERS);
}

int
clt_leg_remove_verdict (const struct clt_leg_view *legs, unsigned nlegs,
                        unsigned min_legs, unsigned i)
{
  unsigned j, n = 0;

  if (i >= nlegs)
    return rmr_err (ENOENT, "leg %u: no such leg", i);
  if (nlegs == 1)
    return rmr_err (EBUSY,
                    "leg %u (member %" PRIu32 "): the pool's last leg "
                    "(leave_pool closes the pool)",
                    i, legs[i].member_id);
  if (nlegs - 1 < min_legs)
    return rmr_err (EBUSY,
                    "leg %u (member %" PRIu32 "): %u legs would remain, "
                    "below min-legs %u",
                    i, legs[i].member_id, nlegs - 1, min_legs);
  for (j = 0; j < nlegs; j++)
    if (j != i && legs[j].uptodate)
      n++;
  if (!n)
    return rmr_err (EBUSY,
                    "leg %u (member %" PRIu32 "): no remaining leg is up to "
                    "date (normal and recorded dirty by no member): it may "
                    "hold the only current copy; wait for the resync",
                    i, legs[i].member_id);
  return 0;
}

/* The state of every normal leg's view of every slot (AL_GET); a leg
 * that cannot answer says DIRTY for every slot (unknown is not clean).
 */
static void
views (struct rmr_pool *pool, uint32_t states[][RMR_MAX_MEMBERS],
       unsigned *normal)
{
  g_autofree struct rmr_al_rep *al = g_new0 (struct rmr_al_rep, 1);
  unsigned i, s;

  *normal = 0;
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    for (s = 0; s < RMR_MAX_MEMBERS; s++)
      states[i][s] = RMR_MEMBER_DIRTY;
    if (atomic_load (&leg->state) != LEG_NORMAL)
      continue;
    *normal |= 1u << i;
    if (clt_al_get (leg, leg->sess, al) == 0)
      memcpy (states[i], al->states, sizeof states[i]);
  }
}

/* Is the member of slot clean in every normal leg's view? */
static bool
clean_everywhere (const struct rmr_pool *pool,
                  uint32_t states[][RMR_MAX_MEMBERS], unsigned normal, int slot)
{
  unsigned i;

  for (i = 0; i < pool->nlegs; i++)
    if ((normal & 1u << i) && states[i][slot] != RMR_MEMBER_NORMAL)
      return false;
  return true;
}

void
clt_leg_catch_up (struct clt_leg *leg, uint64_t n)
{
  atomic_store (&leg->resync_total, n);
  atomic_store (&leg->resync_left, n);
  atomic_store (&leg->catching_up, true);
  clt_horizon_kick (leg->pool); /* its shorter look (client-horizon.c) */
}

bool
clt_legs_poll_unlocked (struct rmr_pool *pool)
{
  uint32_t states[RMR_MAX_MEMBERS][RMR_MAX_MEMBERS];
  uint64_t nchunks = ho_nchunks (pool), c, left;
  unsigned i, normal;
  bool any = false, asked = false;

  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    if (!atomic_load (&leg->catching_up))
      continue;
    any = true;
    if (atomic_load (&leg->state) != LEG_NORMAL || leg->slot < 0)
      continue;
    {
      g_autofree uint8_t *bits = g_malloc0 ((nchunks + 7) / 8 + 8);
      if (ho_collect (pool, leg, leg->sess, leg->slot, bits) < 0)
        continue; /* a failed leg: the IO path fails it */
      for (c = 0, left = 0; c < (nchunks + 7) / 8; c++)
        left += __builtin_popcount (bits[c]);
      atomic_store (&leg->resync_left, left);
    }
    if (left)
      continue;
    if (!asked) {
      views (pool, states, &normal);
      asked = true;
    }
    if (clean_everywhere (pool, states, normal, leg->slot))
      atomic_store (&leg->catching_up, false);
  }
  return any;
}

/* The legs as the pure decisions see them; uptodate needs the members'
 * views (AL_GET) when ask is set.
 */
static void
leg_views (struct rmr_pool *pool, struct clt_leg_view *lv, bool ask)
{
  uint32_t states[RMR_MAX_MEMBERS][RMR_MAX_MEMBERS];
  unsigned i, normal = 0;

  if (ask)
    views (pool, states, &normal);
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    lv[i].member_id = leg->member_id;
    lv[i].addr = leg->addr_name;
    lv[i].uptodate = ask && (normal & 1u << i) && leg->slot >= 0 &&
                     !leg->new_member && !atomic_load (&leg->catching_up) &&
                     !(atomic_load (&pool->outdated) & 1u << leg->slot) &&
                     clean_everywhere (pool, states, normal, leg->slot);
  }
}

/* One ENABLE of pool->md on leg (its session). */
static int
enable_one (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s)
{
  uint8_t buf[RMR_ENABLE_REQ_SIZE];
  struct rmr_hdr hdr = {.type = RMR_MSG_ENABLE,
                        .generation = pool->md.generation};

  rmr_enable_req_encode (&pool->md, buf);
  return clt_leg_call (leg, s, &hdr, buf, sizeof buf, NULL, 0, NULL);
}

/* Step 3 (IO frozen): the new table on every normal leg but skip; a leg
 * that fails it is failed (it takes the table when it reconnects).  The
 * client is committed to the new generation from the first send.
 */
static void
enable_table (struct rmr_pool *pool, const struct rmr_enable_req *en,
              const struct clt_leg *skip)
{
  unsigned i;
  int r;

  pool->md = *en;
  pool->generation = en->generation;
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    if (leg == skip || atomic_load (&leg->state) != LEG_NORMAL)
      continue;
    r = enable_one (pool, leg, leg->sess);
    if (r == -ESTALE)
      atomic_store (&pool->fenced, true); /* another client took over */
    if (r < 0)
      clt_leg_fail (leg, rmr_get_error ());
  }
}

static void
leave (struct clt_leg *leg, enum rmr_leave_mode mode)
{
  /* IO is frozen: no write of this client is in flight there. */
  struct rmr_hdr hdr = {.type = RMR_MSG_LEAVE,
                        .flags = RMR_HF_QUIESCED,
                        .offset = mode,
                        .generation = leg->pool->generation};

  if (leg->sess && atomic_load (&leg->state) != LEG_FAILED)
    clt_leg_call (leg, leg->sess, &hdr, NULL, 0, NULL, 0, NULL);
}

/* Drop leg i from the table (IO frozen); later legs move down. */
static void
drop_leg (struct rmr_pool *pool, unsigned i)
{
  unsigned j;

  g_mutex_lock (&pool->legs_lock);
  clt_leg_release (&pool->legs[i]);
  for (j = i + 1; j < pool->nlegs; j++) {
    struct clt_sess *s = pool->legs[j].sess;
    if (s)
      clt_sess_del_leg (s, &pool->legs[j]);
    memcpy (&pool->legs[j - 1], &pool->legs[j], sizeof pool->legs[j]);
    pool->cfg.legs[j - 1] = pool->cfg.legs[j];
    if (s)
      clt_sess_add_leg (s, &pool->legs[j - 1]);
  }
  pool->nlegs--;
  pool->cfg.nlegs = pool->nlegs;
  memset (&pool->legs[pool->nlegs], 0, sizeof pool->legs[0]);
  g_mutex_unlock (&pool->legs_lock);
}

static int
leg_add_unlocked (struct rmr_pool *pool, const struct rmr_leg_config *lc)
{
  struct clt_leg_view lv[RMR_MAX_MEMBERS];
  struct rmr_join_rep rep;
  struct rmr_enable_req en;
  struct clt_leg *leg;
  char a[300];
  unsigned i, n = pool->nlegs;
  int slot, kind, r;

  if (pool->sync)
    return rmr_err (EINVAL, "a sync pool has no live legs");
  if (atomic_load (&pool->fenced))
    return rmr_err (ESTALE, "pool '%s' was taken over by another client",
                    pool->cfg.pool_name);
  if (n == RMR_MAX_MEMBERS)
    return rmr_err (ENOSPC, "pool '%s' has %u legs already",
                    pool->cfg.pool_name, RMR_MAX_MEMBERS);
  if (lc->sessname[0] && rmr_check_sess_name ("sessname", lc->sessname) < 0)
    return -EINVAL;
  rmr_addr_format (&lc->addr, a, sizeof a);
  for (i = 0; i < n; i++)
    if (strcmp (a, pool->legs[i].addr_name) == 0)
      return rmr_err (EEXIST,
                      "path: leg %u goes to %s already (one leg per storage "
                      "node)",
                      i, a);

  leg = &pool->legs[n]; /* not counted in nlegs until committed */
  memset (leg, 0, sizeof *leg);
  leg->pool = pool;
  leg->addr = lc->addr;
  snprintf (leg->addr_name, sizeof leg->addr_name, "%s", a);
  if (lc->sessname[0])
    snprintf (leg->sessname, sizeof leg->sessname, "%s", lc->sessname);
  else
    clt_default_sessname (&lc->addr, leg->sessname, sizeof leg->sessname);
  leg->member_id = RMR_MEMBER_NONE;
  leg->slot = -1;
  leg->queue_depth = pool->cfg.queue_depth;
  leg->new_member = true; /* joins with mode auto: a fresh store */
  atomic_store (&leg->state, LEG_FAILED);

  r = clt_leg_join_new (leg, &rep);
  if (r < 0)
    goto out_clear;
  if (lc->check_member && rep.member_id != lc->member_id) {
    r = rmr_err (EINVAL,
                 "member_id: %" PRIu32 " expected, but server %s is member "
                 "%" PRIu32,
                 lc->member_id, leg->addr_name, rep.member_id);
    goto out_leave;
  }
  leg_views (pool, lv, false);
  kind = clt_leg_add_verdict (pool->md.members, lv, n, pool->size, &rep,
                              leg->addr_name, &slot);
  if (kind < 0) {
    r = kind;
    goto out_leave;
  }
  leg->slot = slot;
  if (leg->block_size > pool->block_size) {
    r = rmr_err (EINVAL,
                 "server %s: its store's block size %" PRIu32 " is larger "
                 "than the pool's %" PRIu32,
                 leg->addr_name, leg->block_size, pool->block_size);
    goto out_leave;
  }

  if (kind == 1) {
    /* A member of the table coming back (removed with mode disassemble):
     * the reconnect of a failed leg, hand-over and all.
     */
    leg->new_member = false;
    atomic_store (&leg->state, LEG_FAILED);
    clt_leg_catch_up (leg, ho_nchunks (pool));
    g_mutex_lock (&pool->legs_lock);
    pool->cfg.legs[n] = *lc;
    pool->nlegs = pool->cfg.nlegs = n + 1;
    g_mutex_unlock (&pool->legs_lock);
    if (clt_reconnect_unlocked (pool, leg) < 0)
      clt_leg_fail (leg, rmr_get_error ()); /* the thread retries */
    return n;
  }

  /* 2: every normal member records every chunk dirty for the new slot. */
  for (i = 0; i < n; i++)
    if (atomic_load (&pool->legs[i].state) == LEG_NORMAL &&
        (r = clt_mark_all (pool, &pool->legs[i], slot)) < 0) {
      rmr_err_prefix ("marking the new member dirty: ");
      goto out_leave;
    }

  /* 3: the new table, IO frozen. */
  clt_freeze (pool);
  en = pool->md;
  en.members[slot] = rep.member_id;
  en.generation = pool->generation + 1;
  enable_table (pool, &en, leg);
  atomic_store (&leg->state, LEG_RECONNECTING);
  clt_leg_log_state (leg, LEG_FAILED, LEG_RECONNECTING,
                     "a new member, resyncing everything");
  clt_leg_catch_up (leg, ho_nchunks (pool));
  atomic_fetch_or (&pool->outdated, 1u << slot);
  g_mutex_lock (&pool->legs_lock);
  pool->cfg.legs[n] = *lc;
  pool->nlegs = pool->cfg.nlegs = n + 1;
  g_mutex_unlock (&pool->legs_lock);
  /* 4: enable the new member, hand it its map, normal. */
  /* The hand-over takes the session with a reference of its own, as a
   * reconnect's.
   */
  clt_sess_ref (leg->sess);
  r = clt_handover (pool, leg, leg->sess);
  if (r < 0) {
    clt_sess_put (leg->sess);
    clt_leg_fail (leg, rmr_get_error ()); /* reconnected later */
  }
  clt_thaw (pool);
  return n;

out_leave:
  leave (leg, RMR_LEAVE_DISASSEMBLE);
  clt_leg_release (leg);
out_clear:
  memset (leg, 0, sizeof *leg);
  return r;
}

int
rmr_pool_leg_add (struct rmr_pool *pool, const struct rmr_leg_config *lc)
{
  int r;

  g_mutex_lock (&pool->reconn_lock);
  r = leg_add_unlocked (pool, lc);
  g_mutex_unlock (&pool->reconn_lock);
  return r;
}

int
rmr_pool_leg_remove (struct rmr_pool *pool, unsigned i,
                     enum rmr_leg_remove_mode mode)
{
  struct clt_leg_view lv[RMR_MAX_MEMBERS];
  struct clt_leg *leg;
  int slot, r;

  if (mode != RMR_LEG_DISASSEMBLE && mode != RMR_LEG_DELETE)
    return rmr_err (EINVAL, "mode: %d is not disassemble or delete", mode);
  if (atomic_load (&pool->fenced))
    return rmr_err (ESTALE, "pool '%s' was taken over by another client",
                    pool->cfg.pool_name);
  g_mutex_lock (&pool->reconn_lock);
  if (i >= pool->nlegs) {
    g_mutex_unlock (&pool->reconn_lock);
    return rmr_err (ENOENT, "leg %u: no such leg", i);
  }
  /* Frozen first: no write can make a member stale while we look. */
  clt_freeze (pool);
  leg_views (pool, lv, true);
  r = clt_leg_remove_verdict (lv, pool->nlegs, pool->cfg.min_legs, i);
  if (r < 0) {
    clt_thaw (pool);
    g_mutex_unlock (&pool->reconn_lock);
    return r;
  }
  leg = &pool->legs[i];
  slot = leg->slot;
  if (mode == RMR_LEG_DELETE && slot >= 0) {
    struct rmr_enable_req en = pool->md;
    en.members[slot] = RMR_MEMBER_NONE;
    en.generation = pool->generation + 1;
    enable_table (pool, &en, leg);
    clt_outdated_clear (pool, 1u << slot);
  }
  else if (slot >= 0)
    atomic_fetch_or (&pool->outdated, 1u << slot);
  leave (leg,
         mode == RMR_LEG_DELETE ? RMR_LEAVE_DELETE : RMR_LEAVE_DISASSEMBLE);
  drop_leg (pool, i);
  clt_thaw (pool);
  g_mutex_unlock (&pool->reconn_lock);
  return 0;
}
