/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Failures and recovery on the client (DESIGN 4-5).
 *
 * Recording what a member missed.  Every write carries the slots of the
 * members that will not get it (clt_dirty_mask: legs not normal, members
 * without a leg); the members that do get it save those chunks as dirty
 * for them before completing.  A leg that fails during a write did not
 * get it either, and the members that did were not told: before the
 * write completes they are sent an explicit map-add for the failed slots
 * (clt_record_missed), so no acknowledged write depends on a member that
 * does not know it is stale.  The map-add names again the slots the
 * write's dirty mask named: a member resyncing meanwhile may have fetched
 * the chunk from a failed leg that never got the write, and cleared the
 * bits the others had set for it before its watch began; marked again,
 * they stay (a watch still open is flagged, a clear done is undone).
 *
 * A member whose store is fresh when it comes back had its disk replaced
 * (rmr-storaged/replace.c): every normal member saves every chunk dirty
 * for it, then it is enabled, then handed over as any other; with no
 * normal member it waits.
 *
 * Coming back.  One reconnect thread per pool retries failed legs with
 * exponential backoff (100 ms to 5 s): a new transport session, a join
 * (state reconnecting), then the hand-over with IO frozen (handover.c:
 * what the member missed, from every normal member's maps, or a refusal
 * when it missed writes and no member that has them is normal); then the
 * member is enabled at the pool's generation and the leg turns normal.
 * IO is thawed; the storage nodes resync the chunks among themselves.
 *
 * The IO gate is a counter of requests in flight and a frozen flag:
 * entering is two atomic operations while the pool is not frozen.
 *
 * Locking: reconn_lock serialises reconnects (thread and admin);
 * legs_lock guards the swap of a leg's session against status readers;
 * thread_lock guards the thread's stop and kick flags.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "handover.h"
#include "parse.h"
#include "util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define POLL_MS 1000 /* legs catching up: progress and end */

void
clt_gate_enter (struct rmr_pool *pool)
{
  for (;;) {
    atomic_fetch_add (&pool->active, 1);
    if (!atomic_load (&pool->frozen))
      return;
    /* Frozen: step back out and wait for the thaw. */
    clt_gate_leave (pool);
    g_mutex_lock (&pool->gate_lock);
    while (atomic_load (&pool->frozen))
      g_cond_wait (&pool->gate_cond, &pool->gate_lock);
    g_mutex_unlock (&pool->gate_lock);
  }
}

void
clt_gate_leave (struct rmr_pool *pool)
{
  if (atomic_fetch_sub (&pool->active, 1) == 1 && atomic_load (&pool->frozen)) {
    g_mutex_lock (&pool->gate_lock);
    g_cond_broadcast (&pool->gate_cond);
    g_mutex_unlock (&pool->gate_lock);
  }
}

void
clt_freeze (struct rmr_pool *pool)
{
  atomic_store (&pool->frozen, true);
  g_mutex_lock (&pool->gate_lock);
  while (atomic_load (&pool->active) > 0)
    g_cond_wait (&pool->gate_cond, &pool->gate_lock);
  g_mutex_unlock (&pool->gate_lock);
}

void
clt_thaw (struct rmr_pool *pool)
{
  g_mutex_lock (&pool->gate_lock);
  atomic_store (&pool->frozen, false);
  g_cond_broadcast (&pool->gate_cond);
  g_mutex_unlock (&pool->gate_lock);
}

uint32_t
clt_dirty_mask (struct rmr_pool *pool)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    if (pool->md.members[i] != RMR_MEMBER_NONE)
      mask |= 1u << i;
  for (i = 0; i < pool->nlegs; i++)
    if (pool->legs[i].slot >= 0 &&
        atomic_load (&pool->legs[i].state) == LEG_NORMAL)
      mask &= ~(1u << pool->legs[i].slot);
  return mask;
}

/* Every leg normal, and every member of the table has one: a member
 * removed with mode disassemble (client-legs.c) stays in the table
 * without a leg and is handed the ranges when it is added again.
 */
bool
clt_pending_may_clear (struct rmr_pool *pool)
{
  bool all = true;

  for (unsigned i = 0; i < pool->nlegs; i++)
    all &= atomic_load (&pool->legs[i].state) == LEG_NORMAL;
  return all && clt_dirty_mask (pool) == 0;
}

static void
kick (struct rmr_pool *pool)
{
  g_mutex_lock (&pool->thread_lock);
  pool->kick = true;
  g_cond_signal (&pool->thread_cond);
  g_mutex_unlock (&pool->thread_lock);
}

static void
set_last_error (struct clt_leg *leg, const char *why)
{
  g_mutex_lock (&leg->pool->thread_lock);
  snprintf (leg->last_error, sizeof leg->last_error, "%s", why ? why : "");
  g_mutex_unlock (&leg->pool->thread_lock);
}

void
clt_leg_log_state (const struct clt_leg *leg, enum clt_leg_state from,
                   enum clt_leg_state to, const char *why)
{
  char member[16] = "?";

  if (leg->member_id != RMR_MEMBER_NONE)
    snprintf (member, sizeof member, "%" PRIu32, leg->member_id);
  g_message ("%spool %s: member %s (%s): %s -> %s%s%s%s",
             leg->pool->sync ? "sync " : "", leg->pool->cfg.pool_name, member,
             leg->addr_name, clt_leg_state_name (from), clt_leg_state_name (to),
             why && *why ? " (" : "", why && *why ? why : "",
             why && *why ? ")" : "");
}

void
clt_leg_fail (struct clt_leg *leg, const char *why)
{
  int old = atomic_exchange (&leg->state, LEG_FAILED);

  if (old == LEG_FAILED)
    return;
  metrics_add (&leg->failures, 1);
  clt_leg_log_state (leg, old, LEG_FAILED, why);
  if (why)
    set_last_error (leg, why);
  /* Legs that never joined (pool still opening) are not reconnected. */
  if (old != LEG_CREATED)
    kick (leg->pool);
}

uint32_t
clt_missed_slots (struct rmr_pool *pool, unsigned failed_legs, uint32_t missing)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < pool->nlegs; i++)
    if ((failed_legs & 1u << i) && pool->legs[i].slot >= 0)
      mask |= 1u << pool->legs[i].slot;
  return mask ? mask | missing : 0;
}

unsigned
clt_record_missed (struct rmr_pool *pool, unsigned ok_legs,
                   unsigned failed_legs, uint32_t missing, uint64_t offset,
                   uint64_t len)
{
  unsigned shift = log_2_bits (pool->chunk_size), i, done = 0;
  uint64_t first = offset >> shift, last = (offset + len - 1) >> shift;
  uint32_t mask = clt_missed_slots (pool, failed_legs, missing);
  struct clt_req req;

  if (!mask)
    return ok_legs;

  /* One range map-add per leg that wrote (a write spans few chunks). */
  clt_req_init (&req);
  for (i = 0; i < pool->nlegs; i++)
    if (ok_legs & 1u << i)
      clt_req_add (&req, i, &pool->legs[i]);
  for (i = 0; i < pool->nlegs; i++)
    if (ok_legs & 1u << i) {
      struct rmr_hdr hdr = {.type = RMR_MSG_MAP_ADD,
                            .group_id = pool->group_id,
                            .member_id = RMR_MEMBER_NONE,
                            .generation = pool->generation,
                            .offset = first,
                            .length = last - first + 1,
                            .dirty_mask = mask};
      clt_sess_submit (&req.sub[i], &hdr, NULL, 0);
    }
  clt_req_wait (&req, clt_deadline (pool));
  for (i = 0; i < pool->nlegs; i++)
    if (ok_legs & 1u << i) {
      if (req.sub[i].status == 0)
        done |= 1u << i;
      else {
        clt_leg_fail (&pool->legs[i], req.sub[i].errmsg);
        if (req.sub[i].status == -ESTALE)
          atomic_store (&pool->fenced, true);
      }
    }
  clt_req_clear (&req);
  /* Nobody could record it: the write fails, but the legs that did it and
   * those that did not now differ.
   */
  if (!done)
    clt_remember_range (pool, offset, len);
  return done;
}

void
clt_remember_range (struct rmr_pool *pool, uint64_t offset, uint64_t len)
{
  unsigned shift = log_2_bits (pool->chunk_size);
  struct clt_range r = {.start = offset >> shift,
                        .end = ((offset + len - 1) >> shift) + 1};

  unsigned i;

  g_mutex_lock (&pool->pending_lock);
  /* The same range again (a write retried while the legs are down) adds
   * nothing.
   */
  for (i = 0; i < pool->pending->len; i++) {
    const struct clt_range *p =
      &g_array_index (pool->pending, struct clt_range, i);
    if (p->start <= r.start && r.end <= p->end)
      break;
  }
  if (i == pool->pending->len)
    g_array_append_val (pool->pending, r);
  g_mutex_unlock (&pool->pending_lock);
}

/* The hand-over (IO frozen): map of the returning leg from every normal
 * leg, to the returning leg, enable, normal.  A member added to the open
 * pool that was not handed its map yet (new_member, client-legs.c) is
 * enabled first: its store has no map before its first enable.  That is
 * safe because every other member already records every chunk dirty
 * for it, and it is done only while a normal member can hand it that.
 */
int
clt_handover (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s)
{
  uint8_t en[RMR_ENABLE_REQ_SIZE];
  struct rmr_hdr hdr = {.type = RMR_MSG_ENABLE};
  struct clt_sess *old;
  uint64_t ndirty;
  bool from_peers;
  int r;

  rmr_enable_req_encode (&pool->md, en);
  hdr.generation = pool->generation;
  if (leg->new_member) {
    /* A fresh store: a member added to the open pool (client-legs.c)
     * that was not enabled yet, or a member whose disk was replaced.
     * Either holds nothing.  Every normal member saves every chunk dirty
     * for it before it is enabled (it takes map bits only once enabled,
     * and marks itself dirty for everything then:
     * rmr-storaged/replace.c); the hand-over below gives it that union.
     * For an added member the bits are there already (set before it
     * entered the table): saving them again changes nothing.
     */
    unsigned i, li = leg - pool->legs, normal = 0;
    for (i = 0; i < pool->nlegs; i++)
      if (i != li && atomic_load (&pool->legs[i].state) == LEG_NORMAL)
        normal |= 1u << i;
    if (!normal)
      return rmr_err (EAGAIN,
                      "member %" PRIu32 " has a new store (a new member or "
                      "a replaced disk) and resyncs from an up-to-date "
                      "member: waiting for one to be normal",
                      leg->member_id);
    r = clt_mark_new_members (pool, normal | 1u << li, normal);
    if (r == 0)
      r = clt_leg_call (leg, s, &hdr, en, sizeof en, NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  r = ho_reconnect (pool, leg, s, &from_peers, &ndirty);
  if (r < 0)
    return r;
  if (!leg->new_member) {
    r = clt_leg_call (leg, s, &hdr, en, sizeof en, NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  leg->new_member = false;

  /* No request is in flight: the leg's session can change hands. */
  g_mutex_lock (&pool->legs_lock);
  old = leg->sess;
  leg->sess = s;
  g_mutex_unlock (&pool->legs_lock);
  if (old && old != s) {
    clt_sess_del_leg (old, leg);
    clt_sess_put (old);
  }
  else if (old == s)
    clt_sess_put (s); /* the extra reference of the reconnect */
  /* It knows all it missed now (or the admin forced it in). */
  if (from_peers)
    clt_outdated_clear (pool, 1u << leg->slot);
  /* Handed chunks it lacks: it resyncs them, and is up to date only
   * once every member records it clean (clt_legs_poll_unlocked).  Until
   * then reads go to a current leg if there is one.
   */
  if (ndirty)
    clt_leg_catch_up (leg, ndirty);
  atomic_store (&leg->state, LEG_NORMAL);
  clt_leg_log_state (leg, LEG_RECONNECTING, LEG_NORMAL,
                     from_peers
                       ? "handed its dirty map"
                       : "enabled with no normal member to hand it a map");
  if (clt_pending_may_clear (pool)) {
    g_mutex_lock (&pool->pending_lock);
    g_array_set_size (pool->pending, 0);
    g_mutex_unlock (&pool->pending_lock);
  }
  leg->backoff_ms = 0;
  set_last_error (leg, NULL);
  return 0;
}

/* One reconnect attempt of a failed leg (reconn_lock held). */
int
clt_reconnect_unlocked (struct rmr_pool *pool, struct clt_leg *leg)
{
  struct rmr_join_rep rep;
  struct clt_sess *s;
  int r;

  r = clt_sess_get (&leg->addr, pool->cfg.timeout_ms, &s);
  if (r < 0)
    return r;
  if (s == leg->sess) {
    /* The connection survived (an IO error failed the leg): leave the
     * pool on it first, so that the join starts afresh.
     */
    struct rmr_hdr lv = {.type = RMR_MSG_LEAVE, .generation = pool->generation};
    clt_leg_call (leg, s, &lv, NULL, 0, NULL, 0, NULL);
  }
  else
    clt_sess_add_leg (s, leg);
  r = clt_leg_join (leg, s, &rep);
  if (r == -ESTALE)
    atomic_store (&pool->fenced, true);
  if (r == 0 && leg->member_id == RMR_MEMBER_NONE) {
    /* A leg absent when the pool was opened: its member, in the table. */
    int slot = -1;
    for (unsigned j = 0; j < RMR_MAX_MEMBERS; j++)
      if (pool->md.members[j] == rep.member_id)
        slot = j;
    if (slot < 0)
      r = rmr_err (EINVAL,
                   "server %s: member %" PRIu32 " is not a member "
                   "of pool '%s'",
                   leg->addr_name, rep.member_id, pool->cfg.pool_name);
    else {
      leg->member_id = rep.member_id;
      leg->slot = slot;
      leg->block_size = rep.block_size;
    }
  }
  if (r == 0 && rep.member_id != leg->member_id)
    r = rmr_err (EINVAL, "server %s: now member %" PRIu32 ", was %" PRIu32,
                 leg->addr_name, rep.member_id, leg->member_id);
  if (r == 0 && rep.generation > pool->generation) {
    atomic_store (&pool->fenced, true);
    r = rmr_err (ESTALE,
                 "server %s: pool generation %" PRIu64 " is newer "
                 "than ours (%" PRIu64 "): another client took the pool over",
                 leg->addr_name, rep.generation, pool->generation);
  }
  /* A fresh store (no chunk size yet) for a member: a replaced disk. */
  if (r == 0 && (rep.mapped_size != pool->size ||
                 (rep.chunk_size != pool->chunk_size && !rep.fresh)))
    r = rmr_err (EINVAL, "server %s: its store no longer matches the pool",
                 leg->addr_name);
  if (r == 0) {
    leg->new_member = rep.fresh;
    leg->missed_open = rep.generation < pool->generation;
  }
  if (r == 0) {
    atomic_store (&leg->state, LEG_RECONNECTING);
    clt_leg_log_state (leg, LEG_FAILED, LEG_RECONNECTING,
                       "the server answers again");
    clt_freeze (pool);
    r = clt_handover (pool, leg, s);
    clt_thaw (pool);
    if (r == 0)
      return 0;
  }
  /* Failed: the leg stays failed, on its old session. */
  if (atomic_exchange (&leg->state, LEG_FAILED) == LEG_RECONNECTING)
    clt_leg_log_state (leg, LEG_RECONNECTING, LEG_FAILED, rmr_get_error ());
  if (s != leg->sess)
    clt_sess_del_leg (s, leg);
  clt_sess_put (s);
  return r;
}

int
clt_reconnect (struct rmr_pool *pool, unsigned i, const struct rmr_addr *addr)
{
  int r;

  /* The index is read under reconn_lock: a leg removed meanwhile
   * (client-legs.c) moves the legs after it down.
   */
  g_mutex_lock (&pool->reconn_lock);
  if (i >= pool->nlegs)
    r = rmr_err (ENOENT, "no such leg %u", i);
  else
    r = clt_reconnect_leg_locked (pool, &pool->legs[i], addr);
  g_mutex_unlock (&pool->reconn_lock);
  return r;
}

int
clt_reconnect_leg_locked (struct rmr_pool *pool, struct clt_leg *leg,
                          const struct rmr_addr *addr)
{
  struct rmr_addr old_addr;
  int r;

  old_addr = leg->addr;
  if (addr) {
    /* A new address must at least answer before the leg leaves the
     * one it has: a typo must not cost a working leg.
     */
    struct clt_sess *probe;
    r = clt_sess_get (addr, pool->cfg.timeout_ms, &probe);
    if (r < 0) {
      rmr_err_prefix ("path: ");
      return r;
    }
    clt_sess_put (probe);
    leg->addr = *addr;
    rmr_addr_format (addr, leg->addr_name, sizeof leg->addr_name);
  }
  if (atomic_load (&leg->state) == LEG_NORMAL && !addr)
    r = 0;
  else {
    if (atomic_load (&leg->state) == LEG_NORMAL)
      clt_leg_fail (leg, "reconnect to a new address");
    r = clt_reconnect_unlocked (pool, leg);
    if (r < 0) {
      set_last_error (leg, rmr_get_error ());
      if (addr) {
        /* The new address did not take: back to the old one, which the
         * reconnect thread keeps trying.
         */
        leg->addr = old_addr;
        rmr_addr_format (&old_addr, leg->addr_name, sizeof leg->addr_name);
        kick (pool);
      }
    }
  }
  return r;
}

static gpointer
reconnect_thread (gpointer arg)
{
  struct rmr_pool *pool = arg;
  int64_t now, wake;
  unsigned i;

  g_mutex_lock (&pool->thread_lock);
  while (!pool->stop) {
    pool->kick = false;
    g_mutex_unlock (&pool->thread_lock);

    now = g_get_monotonic_time ();
    wake = now + (int64_t) BACKOFF_MAX_MS * 1000;
    g_mutex_lock (&pool->reconn_lock);
    for (i = 0; i < pool->nlegs; i++) {
      struct clt_leg *leg = &pool->legs[i];
      if (atomic_load (&leg->state) != LEG_FAILED ||
          atomic_load (&leg->disabled))
        continue;
      if (leg->next_try > now) {
        wake = MIN (wake, leg->next_try);
        continue;
      }
      if (clt_reconnect_unlocked (pool, leg) < 0) {
        set_last_error (leg, rmr_get_error () ? rmr_get_error ()
                                              : "reconnect failed");
        leg->backoff_ms = leg->backoff_ms
                            ? MIN (leg->backoff_ms * 2, BACKOFF_MAX_MS)
                            : BACKOFF_MIN_MS;
        leg->next_try =
          g_get_monotonic_time () + (int64_t) leg->backoff_ms * 1000;
        wake = MIN (wake, leg->next_try);
      }
    }
    if (clt_legs_poll_unlocked (pool))
      wake = MIN (wake, g_get_monotonic_time () + POLL_MS * 1000);
    g_mutex_unlock (&pool->reconn_lock);

    g_mutex_lock (&pool->thread_lock);
    while (!pool->stop && !pool->kick &&
           g_cond_wait_until (&pool->thread_cond, &pool->thread_lock, wake))
      ;
  }
  g_mutex_unlock (&pool->thread_lock);
  return NULL;
}

int
clt_recover_start (struct rmr_pool *pool)
{
  pool->stop = false;
  pool->reconn_thread =
    g_thread_try_new ("rmr-reconnect", reconnect_thread, pool, NULL);
  if (!pool->reconn_thread)
    return rmr_err (EAGAIN, "cannot start the reconnect thread");
  return clt_horizon_start (pool);
}

void
clt_recover_stop (struct rmr_pool *pool)
{
  clt_horizon_stop (pool);
  if (!pool->reconn_thread)
    return;
  g_mutex_lock (&pool->thread_lock);
  pool->stop = true;
  g_cond_signal (&pool->thread_cond);
  g_mutex_unlock (&pool->thread_lock);
  g_thread_join (pool->reconn_thread);
  pool->reconn_thread = NULL;
}
