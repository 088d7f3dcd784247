/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client IO path (DESIGN 4).
 *
 * Writes, trims and zeroes go to every leg in state normal from the
 * caller's buffer (the same iovec is sent to every leg: no copy), and
 * complete when every one of those legs answered.  Each carries the slots
 * of the members that miss it, and a leg that fails during it is recorded
 * on the legs that did it before it completes (client-recover.c).  The
 * request succeeds when at least min_legs legs did it.
 *
 * Overlapping writes are ordered: a write waits while an overlapping one
 * is in flight, so every leg applies overlapping writes in the same order
 * and the legs never diverge silently.  The in-flight ranges are a short
 * list (bounded by the number of concurrent requests) on the writers'
 * stacks.
 *
 * Reads go to one normal leg chosen by the read policy; a leg that fails
 * a read is marked failed and the read is retried on another leg, so the
 * NBD client does not see the failure.
 *
 * Nothing on this path allocates: requests live on the caller's stack.
 * The one exception is a vectored read of several segments: a reply is
 * received into one buffer (struct clt_sub), so rmr_pool_preadv reads
 * into one of the total length and copies out.  A vectored write sends
 * the caller's iovecs to every leg as they are.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "util.h"

static int
check_range (struct rmr_pool *pool, const char *what, uint32_t count,
             uint64_t offset)
{
  uint64_t end;

  if (count == 0)
    return rmr_err (EINVAL, "%s: count 0", what);
  if ((!strcmp (what, "pread") || !strcmp (what, "pwrite")) &&
      count > RMR_MAX_IO_SIZE)
    return rmr_err (EINVAL, "%s: count %" PRIu32 " exceeds %u", what, count,
                    RMR_MAX_IO_SIZE);
  if (ADD_OVERFLOW (offset, (uint64_t) count, &end) || end > pool->size)
    return rmr_err (EINVAL,
                    "%s: offset %" PRIu64 " + count %" PRIu32
                    " beyond the device size %" PRIu64,
                    what, offset, count, pool->size);
  return 0;
}

/* Another client assembled the pool (a newer generation): this one must
 * never again acknowledge anything.
 */
static int
fenced_error (struct rmr_pool *pool, const char *what)
{
  return rmr_err (EIO,
                  "%s: pool '%s' was taken over by another client "
                  "(a newer generation than %" PRIu64 "): fenced",
                  what, pool->cfg.pool_name, pool->generation);
}

/* A horizon goes out (ov_lock held): clt_horizon_due's record. */
static void
hz_sent_unlocked (struct rmr_pool *pool, uint32_t h)
{
  pool->hz_sent = h;
  pool->hz_sends++;
}

/* Wait while range overlaps a write in flight, then add it with the
 * next write sequence number; *horizon: the oldest write in flight (every
 * older one has completed on every leg), which lets the members retire
 * record extents (rmr-storaged/al.c).
 */
static void
ov_enter (struct rmr_pool *pool, struct clt_range *r, uint32_t *horizon)
{
  struct clt_range *p;
  bool idle;

  g_mutex_lock (&pool->ov_lock);
again:
  for (p = pool->ov_head; p; p = p->next)
    if (p->start < r->end && r->start < p->end) {
      pool->ov_waiters++;
      g_cond_wait (&pool->ov_cond, &pool->ov_lock);
      pool->ov_waiters--;
      goto again;
    }
  r->seq = ++pool->wseq;
  if (r->seq == 0)
    r->seq = ++pool->wseq; /* 0 means "none" on the wire */
  r->next = pool->ov_head;
  pool->ov_head = r;
  *horizon = r->seq;
  for (p = r->next; p; p = p->next)
    if (rmr_wseq_before (p->seq, *horizon))
      *horizon = p->seq;
  hz_sent_unlocked (pool, *horizon);
  idle = pool->hz_idle;
  pool->hz_idle = false;
  g_mutex_unlock (&pool->ov_lock);
  if (idle)
    clt_horizon_kick (pool); /* once per idle spell */
}

/* The horizon now (ov_lock held): the oldest write in flight, or, with
 * none, the next sequence number (every write so far is done on every
 * leg); 0 before the first write (nothing to tell).
 */
static uint32_t
horizon_unlocked (struct rmr_pool *pool)
{
  struct clt_range *p;
  uint32_t h;

  if (pool->wseq == 0)
    return 0;
  h = pool->wseq + 1;
  if (h == 0)
    h = 1; /* as ov_enter numbers it */
  for (p = pool->ov_head; p; p = p->next)
    if (rmr_wseq_before (p->seq, h))
      h = p->seq;
  return h;
}

/* A flush's horizon.  It lets a member tell that the last writes before
 * a pause are settled, which no write would tell it (the online verify
 * compares only settled ranges; a resync fetches a chunk kept at its
 * clear only once settled).
 */
static uint32_t
ov_horizon (struct rmr_pool *pool)
{
  uint32_t h;

  g_mutex_lock (&pool->ov_lock);
  h = horizon_unlocked (pool);
  if (h)
    hz_sent_unlocked (pool, h);
  g_mutex_unlock (&pool->ov_lock);
  return h;
}

/* The members learn that a write is done on every leg only from a later
 * request's horizon.  A client that stops writing would leave its last
 * writes unsettled on the members for as long as it stays idle: an IO
 * on a member that waits for such a chunk to settle (a resync fetching
 * it again) would time out and fail the leg, and a verify would skip
 * it.  So a client idle since a look at its horizon sends it (a flush
 * from client-horizon.c's thread).
 */
enum clt_hz
clt_horizon_due (struct rmr_pool *pool)
{
  enum clt_hz r;
  uint32_t h;

  g_mutex_lock (&pool->ov_lock);
  h = horizon_unlocked (pool);
  if (atomic_load (&pool->fenced))
    r = CLT_HZ_IDLE;
  else if (pool->hz_sends != pool->hz_seen || pool->ov_head)
    r = CLT_HZ_WAIT;
  else if (h == 0 || h == pool->hz_sent)
    r = CLT_HZ_IDLE;
  else
    r = CLT_HZ_DUE;
  pool->hz_seen = pool->hz_sends;
  pool->hz_idle = r == CLT_HZ_IDLE;
  g_mutex_unlock (&pool->ov_lock);
  return r;
}

static void
ov_leave (struct rmr_pool *pool, struct clt_range *r)
{
  struct clt_range **pp;

  g_mutex_lock (&pool->ov_lock);
  for (pp = &pool->ov_head; *pp != r; pp = &(*pp)->next)
    ;
  *pp = r->next;
  if (pool->ov_waiters)
    g_cond_broadcast (&pool->ov_cond);
  g_mutex_unlock (&pool->ov_lock);
}

static bool
leg_normal (struct clt_leg *leg)
{
  return atomic_load (&leg->state) == LEG_NORMAL;
}

/* The leg to read from, among normal legs not in `tried`; NULL if none. */
static struct clt_leg *
pick_read_leg (struct rmr_pool *pool, unsigned tried)
{
  struct clt_leg *best = NULL;
  unsigned i, start, n = pool->nlegs, best_inflight = UINT32_MAX;

  /* The member named by the policy, while normal, even catching up (its
   * node fetches what it lacks): the administrator chose it.
   */
  if (pool->cfg.read_policy == RMR_READ_MEMBER)
    for (i = 0; i < n; i++)
      if (pool->legs[i].member_id == pool->cfg.read_member &&
          !(tried & 1u << i) && leg_normal (&pool->legs[i]))
        return &pool->legs[i];

  if (pool->cfg.read_policy == RMR_READ_LEAST_BUSY) {
    for (i = 0; i < n; i++) {
      struct clt_leg *leg = &pool->legs[i];
      unsigned inflight;
      if ((tried & 1u << i) || !leg_normal (leg) ||
          atomic_load (&leg->catching_up))
        continue;
      /* A racy read is fine: it is only a hint. */
      inflight = atomic_load (&leg->inflight);
      if (inflight < best_inflight) {
        best = leg;
        best_inflight = inflight;
      }
    }
    if (best)
      return best;
  }

  start = atomic_fetch_add (&pool->rr, 1);
  for (i = 0; i < n; i++) {
    unsigned j = (start + i) % n;
    if (!(tried & 1u << j) && leg_normal (&pool->legs[j]) &&
        !atomic_load (&pool->legs[j].catching_up))
      return &pool->legs[j];
  }
  /* Only a leg that catches up is left: its node fetches each chunk it
   * lacks from a peer before serving it (rmr-storaged/sync.c).
   */
  for (i = 0; i < n; i++)
    if (!(tried & 1u << i) && leg_normal (&pool->legs[i]))
      return &pool->legs[i];
  return NULL;
}

/* A read into buf; what names the call in errors. */
static int
read_into (struct rmr_pool *pool, const char *what, void *buf, uint32_t count,
           uint64_t offset)
{
  char last[RMR_ERRMSG_MAX + 400] = "no leg is in state normal";
  struct clt_leg *leg;
  struct clt_req req;
  struct clt_sub *sub;
  unsigned tried = 0;
  int r;

  if (check_range (pool, what, count, offset) < 0)
    return -EINVAL;
  if (atomic_load (&pool->fenced))
    return fenced_error (pool, what);
  clt_gate_enter (pool);
  while ((leg = pick_read_leg (pool, tried)) != NULL) {
    struct rmr_hdr hdr = {.type = RMR_MSG_READ,
                          .group_id = pool->group_id,
                          .member_id = RMR_MEMBER_NONE,
                          .generation = pool->generation,
                          .offset = offset,
                          .length = count};
    int64_t t0 = g_get_monotonic_time ();
    tried |= 1u << (leg - pool->legs);
    clt_req_init (&req);
    sub = clt_req_add (&req, 0, leg);
    sub->rbuf = buf;
    sub->rlen = count;
    clt_sess_submit (sub, &hdr, NULL, 0);
    clt_req_wait (&req, clt_deadline (pool));
    r = sub->status;
    if (r == 0) {
      atomic_fetch_add (&leg->reads, 1);
      metrics_add (&leg->read_bytes, count);
      metrics_hist_observe (&leg->latency[CLT_OP_READ],
                            MAX (sub->t_done - t0, 0));
      clt_req_clear (&req);
      clt_gate_leave (pool);
      return 0;
    }
    snprintf (last, sizeof last, "%s: %s", leg->addr_name,
              sub->errmsg[0] ? sub->errmsg : strerror (-r));
    metrics_add (&leg->errors, 1);
    clt_leg_fail (leg, last);
    clt_req_clear (&req);
    if (r == -ESTALE) {
      atomic_store (&pool->fenced, true);
      break;
    }
  }
  if (atomic_load (&pool->fenced)) {
    clt_gate_leave (pool);
    return fenced_error (pool, what);
  }
  clt_gate_leave (pool);
  return rmr_err (EIO, "%s: no leg could serve the read (last: %s)", what,
                  last);
}

int
rmr_pool_pread (struct rmr_pool *pool, void *buf, uint32_t count,
                uint64_t offset, unsigned flags)
{
  return read_into (pool, "pread", buf, count, offset);
}

/* The legs in state normal now, as a mask of leg indexes. */
static unsigned
normal_legs (struct rmr_pool *pool)
{
  unsigned i, m = 0;

  for (i = 0; i < pool->nlegs; i++)
    if (leg_normal (&pool->legs[i]))
      m |= 1u << i;
  return m;
}

/* Member slots that miss a write sent to the legs in legs. */
static uint32_t
missing_slots (struct rmr_pool *pool, unsigned legs)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    if (pool->md.members[i] != RMR_MEMBER_NONE)
      mask |= 1u << i;
  for (i = 0; i < pool->nlegs; i++)
    if ((legs & 1u << i) && pool->legs[i].slot >= 0)
      mask &= ~(1u << pool->legs[i].slot);
  return mask;
}

/* Member slots of the legs in legs. */
static uint32_t
slots_of (struct rmr_pool *pool, unsigned legs)
{
  uint32_t mask = 0;
  unsigned i;

  for (i = 0; i < pool->nlegs; i++)
    if ((legs & 1u << i) && pool->legs[i].slot >= 0)
      mask |= 1u << pool->legs[i].slot;
  return mask;
}

/* Send hdr (+ iov) to the legs in legs and wait.  *ok gets the legs that
 * did it, *failed those that failed (now marked failed), *fast_refused
 * those that refused a fast zero; last the last failure.
 */
static void
fanout (struct rmr_pool *pool, struct rmr_hdr *tmpl, const struct iovec *iov,
        int iovcnt, unsigned legs, unsigned *ok, unsigned *failed,
        unsigned *fast_refused, char *last, size_t lastlen)
{
  const enum clt_op op =
    tmpl->type == RMR_MSG_FLUSH ? CLT_OP_FLUSH : CLT_OP_WRITE;
  struct clt_req req;
  int64_t t0 = g_get_monotonic_time ();
  unsigned i;

  *ok = *failed = *fast_refused = 0;
  clt_req_init (&req);
  for (i = 0; i < pool->nlegs; i++)
    if (legs & 1u << i)
      clt_req_add (&req, i, &pool->legs[i]);
  for (i = 0; i < pool->nlegs; i++)
    if (req.sub[i].req) {
      struct rmr_hdr hdr = *tmpl;
      clt_sess_submit (&req.sub[i], &hdr, iov, iovcnt);
    }
  clt_req_wait (&req, clt_deadline (pool));

  for (i = 0; i < pool->nlegs; i++) {
    struct clt_sub *sub = &req.sub[i];
    if (!sub->req)
      continue;
    if (sub->status == 0) {
      *ok |= 1u << i;
      if (op == CLT_OP_WRITE) /* flushes have their histogram only */
        atomic_fetch_add (&sub->leg->writes, 1);
      if (tmpl->type == RMR_MSG_WRITE)
        metrics_add (&sub->leg->write_bytes, tmpl->length);
      metrics_hist_observe (&sub->leg->latency[op], MAX (sub->t_done - t0, 0));
    }
    else if (sub->status == -ENOTSUP && (tmpl->flags & RMR_HF_FAST_ZERO))
      *fast_refused |= 1u << i;
    else {
      snprintf (last, lastlen, "%s: %s", sub->leg->addr_name,
                sub->errmsg[0] ? sub->errmsg : strerror (-sub->status));
      *failed |= 1u << i;
      metrics_add (&sub->leg->errors, 1);
      clt_leg_fail (sub->leg, last);
      if (sub->status == -ESTALE)
        atomic_store (&pool->fenced, true);
    }
  }
  clt_req_clear (&req);
}

void
clt_outdated_clear (struct rmr_pool *pool, uint32_t mask)
{
  unsigned s;

  g_mutex_lock (&pool->barrier_lock);
  atomic_fetch_and (&pool->outdated, ~mask);
  atomic_fetch_add (&pool->dep_clears, 1);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (mask & 1u << s)
      pool->dep_synced[s] = 0;
  atomic_fetch_and (&pool->dep_tried, ~mask);
  g_mutex_unlock (&pool->barrier_lock);
}

uint32_t
clt_dep_proven (struct rmr_pool *pool, int slot)
{
  uint32_t m = 0, out;
  unsigned s;

  if (slot < 0)
    return 0;
  g_mutex_lock (&pool->barrier_lock);
  out = atomic_load (&pool->outdated);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if ((out & 1u << s) && (pool->dep_synced[s] & 1u << slot))
      m |= 1u << s;
  g_mutex_unlock (&pool->barrier_lock);
  return m;
}

static int replicatev_ok (struct rmr_pool *pool, const char *what, uint8_t type,
                          const struct iovec *iov, int iovcnt, uint32_t count,
                          uint64_t offset, unsigned flags, uint32_t *ok_slots,
                          uint32_t *gone);

/* The departure barrier.  A write was just done without the members of
 * slots gone: before it is acknowledged, once for each departure, every
 * write issued so far completes (each one that was in flight to them,
 * which they may hold), and then the legs left flush, making all of
 * those durable; their slots are recorded in dep_synced.  So a member
 * whose power goes later, and that comes back with no member normal,
 * holds durably every write the departed members can have: where its
 * record and its map of them meet, it is the best copy (handover.c).
 * Without the barrier a member that left might hold a write the one
 * back lost, and the chunk could only wait, dirty for both.  A failed
 * barrier records nothing (those chunks wait, as before); one during
 * which a departed member came back and left again records nothing
 * either (dep_clears).  Other writers do not wait for a barrier in
 * progress: their acknowledgement changes nothing it proves.
 */
static void
dep_barrier (struct rmr_pool *pool, uint32_t gone)
{
  struct clt_range *p;
  uint32_t upto, ok = 0, unused;
  unsigned s, clears;
  bool busy;
  int r;

  /* A member handed over since (back to normal) is no longer gone; if it
   * left again before this, the writes in flight to it then are older
   * than upto, read below.
   */
  g_mutex_lock (&pool->barrier_lock);
  gone &= atomic_load (&pool->outdated);
  gone &= ~atomic_fetch_or (&pool->dep_tried, gone);
  clears = atomic_load (&pool->dep_clears);
  g_mutex_unlock (&pool->barrier_lock);
  if (!gone)
    return;

  g_mutex_lock (&pool->ov_lock);
  upto = pool->wseq;
  do {
    busy = false;
    for (p = pool->ov_head; p && !busy; p = p->next)
      busy = !rmr_wseq_before (upto, p->seq);
    if (busy) {
      pool->ov_waiters++;
      g_cond_wait (&pool->ov_cond, &pool->ov_lock);
      pool->ov_waiters--;
    }
  } while (busy);
  g_mutex_unlock (&pool->ov_lock);

  r = replicatev_ok (pool, "flush", RMR_MSG_FLUSH, NULL, 0, 0, 0, 0, &ok,
                     &unused);
  g_mutex_lock (&pool->barrier_lock);
  if (r == 0 && atomic_load (&pool->dep_clears) == clears) {
    for (s = 0; s < RMR_MAX_MEMBERS; s++)
      if (gone & atomic_load (&pool->outdated) & 1u << s)
        pool->dep_synced[s] = ok;
  }
  else if (r == 0)
    /* A hand-over went by: the next write done without them tries again
     * (a failed flush does not: the writes fail too).
     */
    atomic_fetch_and (&pool->dep_tried,
                      ~(gone & atomic_load (&pool->outdated)));
  g_mutex_unlock (&pool->barrier_lock);
  if (r < 0)
    g_info ("pool %s: the flush after members left failed (%s): a member "
            "back alone from a power loss waits for them",
            pool->cfg.pool_name, rmr_get_error ());
}

/* Replicate a request; a write's payload is iov (count bytes in all). */
static int
replicatev (struct rmr_pool *pool, const char *what, uint8_t type,
            const struct iovec *iov, int iovcnt, uint32_t count,
            uint64_t offset, unsigned flags)
{
  uint32_t ok, gone;
  int r;

  r = replicatev_ok (pool, what, type, iov, iovcnt, count, offset, flags, &ok,
                     &gone);
  if (r == 0 && (gone & ~atomic_load (&pool->dep_tried)))
    dep_barrier (pool, gone);
  return r;
}

/* replicatev; *ok_slots: the member slots of the legs that did it, and
 * for a write *gone those that did not: read inside the gate (a live leg
 * change renumbers the legs).
 */
static int
replicatev_ok (struct rmr_pool *pool, const char *what, uint8_t type,
               const struct iovec *iov, int iovcnt, uint32_t count,
               uint64_t offset, unsigned flags, uint32_t *ok_slots,
               uint32_t *gone)
{
  struct rmr_hdr hdr = {.type = type,
                        .group_id = pool->group_id,
                        .member_id = RMR_MEMBER_NONE,
                        .offset = offset,
                        .length = count};
  struct clt_range range = {.start = offset, .end = offset + count};
  char last[RMR_ERRMSG_MAX + 400] = "no leg is in state normal";
  const bool writes = type != RMR_MSG_FLUSH;
  unsigned legs, ok, failed, refused, ok2, failed2, refused2;

  *ok_slots = *gone = 0;

  if (writes && check_range (pool, what, count, offset) < 0)
    return -EINVAL;
  if (atomic_load (&pool->fenced))
    return fenced_error (pool, what);
  if (flags & RMR_IO_FUA)
    hdr.flags |= RMR_HF_FUA;
  if (flags & RMR_IO_MAY_TRIM)
    hdr.flags |= RMR_HF_MAY_TRIM;
  if (flags & RMR_IO_FAST_ZERO)
    hdr.flags |= RMR_HF_FAST_ZERO;
  if (type == RMR_MSG_WRITE)
    hdr.payload_len = count;

  clt_gate_enter (pool);
  /* Read inside the gate: a live leg change (client-legs.c) moves the
   * generation with IO frozen, and a request built before it would be
   * refused as stale (and the pool taken for fenced).
   */
  hdr.generation = pool->generation;
  if (writes) {
    ov_enter (pool, &range, &hdr.horizon);
    hdr.wseq = range.seq;
  }
  else
    hdr.horizon = ov_horizon (pool);
  /* One snapshot decides both where the write goes and who misses it. */
  legs = normal_legs (pool);
  if (writes)
    hdr.dirty_mask = missing_slots (pool, legs);
  fanout (pool, &hdr, iov, type == RMR_MSG_WRITE ? iovcnt : 0, legs, &ok,
          &failed, &refused, last, sizeof last);
  if (refused && !ok && !failed) {
    if (writes)
      ov_leave (pool, &range);
    clt_gate_leave (pool);
    return rmr_err (ENOTSUP, "zero: the stores cannot zero fast");
  }
  if (refused) {
    /* Some legs zeroed, others refused to do it fast: the legs must not
     * differ, so the refusing ones zero the slow way.
     */
    hdr.flags &= ~RMR_HF_FAST_ZERO;
    fanout (pool, &hdr, NULL, 0, refused, &ok2, &failed2, &refused2, last,
            sizeof last);
    ok |= ok2;
    failed |= failed2;
  }
  /* Legs that failed during this write were not in its dirty mask: the
   * legs that did it record it for them before it completes.
   */
  if (writes && failed && ok)
    ok = clt_record_missed (pool, ok, failed, hdr.dirty_mask, offset, count);
  /* Failed on every leg: not acknowledged, but some leg may have done it
   * (its reply was lost), and no leg records it for the others.  The
   * first member back alone serves its copy; the others resync the range
   * from it.
   */
  else if (writes && failed && !ok)
    clt_remember_range (pool, offset, count);
  /* Done without them: the members that did not do it cannot come back
   * on their own (handover.c); a flush that failed on a leg may have
   * lost that leg's earlier writes.  Inside the gate, so that a hand-over
   * (IO frozen) sees it.
   */
  if (ok && writes) {
    *gone = missing_slots (pool, ok);
    atomic_fetch_or (&pool->outdated, *gone);
  }
  else if (ok && failed)
    atomic_fetch_or (&pool->outdated, slots_of (pool, failed));
  *ok_slots = slots_of (pool, ok);
  if (writes)
    ov_leave (pool, &range);
  clt_gate_leave (pool);

  /* Fenced during this request: it is not acknowledged, whatever some
   * legs did (the new client's assemble reconciles them).
   */
  if (atomic_load (&pool->fenced))
    return fenced_error (pool, what);
  if ((unsigned) __builtin_popcount (ok) < pool->cfg.min_legs)
    return rmr_err (EIO,
                    "%s: %d of %u legs completed, min-legs is %u "
                    "(last failure: %s)",
                    what, __builtin_popcount (ok), pool->nlegs,
                    pool->cfg.min_legs, last);
  return 0;
}

static int
replicate (struct rmr_pool *pool, const char *what, uint8_t type,
           const void *buf, uint32_t count, uint64_t offset, unsigned flags)
{
  struct iovec iov = {.iov_base = (void *) buf, .iov_len = count};

  return replicatev (pool, what, type, &iov, 1, count, offset, flags);
}

/* The total length of a vectored request's segments, checked as the
 * header says (rmr_pool_preadv): 0 or -EINVAL.  *single: the one segment
 * with a length, if only one has.
 */
static int
iov_total (const char *what, const struct iovec *iov, int iovcnt,
           uint32_t *count, const struct iovec **single)
{
  size_t total = 0;
  int i, nonempty = 0;

  if (iovcnt < 1 || iovcnt > RMR_MAX_IOVCNT)
    return rmr_err (EINVAL, "%s: iovcnt %d is not in 1..%d", what, iovcnt,
                    RMR_MAX_IOVCNT);
  if (iov == NULL)
    return rmr_err (EINVAL, "%s: iov is NULL", what);
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len == 0)
      continue;
    if (iov[i].iov_base == NULL)
      return rmr_err (EINVAL, "%s: iov[%d] has a length and no base", what, i);
    if (ADD_OVERFLOW (total, iov[i].iov_len, &total) || total > RMR_MAX_IO_SIZE)
      return rmr_err (EINVAL, "%s: the segments exceed %u bytes", what,
                      RMR_MAX_IO_SIZE);
    nonempty++;
    *single = &iov[i];
  }
  if (total == 0)
    return rmr_err (EINVAL, "%s: count 0", what);
  if (nonempty > 1)
    *single = NULL;
  *count = total;
  return 0;
}

int
rmr_pool_preadv (struct rmr_pool *pool, const struct iovec *iov, int iovcnt,
                 uint64_t offset, unsigned flags)
{
  const struct iovec *single;
  g_autofree char *bounce = NULL;
  uint32_t count, done;
  int i, r;

  if (iov_total ("preadv", iov, iovcnt, &count, &single) < 0 ||
      check_range (pool, "preadv", count, offset) < 0)
    return -EINVAL;
  if (single)
    return read_into (pool, "preadv", single->iov_base, count, offset);

  /* The transport receives a reply into one buffer (struct clt_sub). */
  bounce = g_try_malloc (count);
  if (!bounce)
    return rmr_err (ENOMEM, "preadv: no buffer of %" PRIu32 " bytes", count);
  r = read_into (pool, "preadv", bounce, count, offset);
  if (r < 0)
    return r;
  for (i = 0, done = 0; i < iovcnt; i++) {
    if (iov[i].iov_len == 0)
      continue;
    memcpy (iov[i].iov_base, bounce + done, iov[i].iov_len);
    done += iov[i].iov_len;
  }
  return 0;
}

int
rmr_pool_pwritev (struct rmr_pool *pool, const struct iovec *iov, int iovcnt,
                  uint64_t offset, unsigned flags)
{
  const struct iovec *single;
  uint32_t count;

  if (iov_total ("pwritev", iov, iovcnt, &count, &single) < 0)
    return -EINVAL;
  return replicatev (pool, "pwritev", RMR_MSG_WRITE, iov, iovcnt, count, offset,
                     flags & RMR_IO_FUA);
}

int
rmr_pool_pwrite (struct rmr_pool *pool, const void *buf, uint32_t count,
                 uint64_t offset, unsigned flags)
{
  return replicate (pool, "pwrite", RMR_MSG_WRITE, buf, count, offset,
                    flags & RMR_IO_FUA);
}

int
rmr_pool_flush (struct rmr_pool *pool, unsigned flags)
{
  return replicate (pool, "flush", RMR_MSG_FLUSH, NULL, 0, 0, 0);
}

int
rmr_pool_trim (struct rmr_pool *pool, uint32_t count, uint64_t offset,
               unsigned flags)
{
  return replicate (pool, "trim", RMR_MSG_TRIM, NULL, count, offset,
                    flags & RMR_IO_FUA);
}

int
rmr_pool_zero (struct rmr_pool *pool, uint32_t count, uint64_t offset,
               unsigned flags)
{
  return replicate (pool, "zero", RMR_MSG_ZERO, NULL, count, offset, flags);
}
