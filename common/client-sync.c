/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Sync pools (rmr.h): the client pool a storage node uses to read the
 * chunks it missed directly from its peers, one hop, without the compute
 * host [the kernel's rmr-client pool with sync=y].
 *
 * A sync pool is a struct rmr_pool with sync set: its legs are the peers.
 * A leg joins with the sync flag on first use; a leg that fails is joined
 * again on a later use, at most every RETRY_MS, and by the pool's rejoin
 * thread, which tries every failed leg each REJOIN_MS (at once when a leg
 * fails or is added; every REFUSED_MS while the peer answers with a
 * refusal; with every leg normal it sleeps until one of those): a peer
 * that comes back shows normal within seconds, not only once this node
 * happens to need a chunk from it (issue 10: a session stayed failed,
 * "connection closed by peer", for a minute after its peer was
 * restarted).  No create, no assemble, no enable, no dirty mask: a sync
 * pool only reads and clears bits.
 *
 * Locking: legs_lock protects the legs array (add, del) and each leg's
 * session pointer; a reader takes a reference on the session before it
 * uses it, so a leg may be re-joined meanwhile.  reconn_lock serialises
 * joins.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "jhash.h"
#include "parse.h"
#include "util.h"

#define RETRY_MS 500
#define REJOIN_MS 1000
#define REFUSED_MS 5000

static int join_leg_unlocked (struct rmr_pool *pool, struct clt_leg *leg,
                              bool *refused);

/* Join every failed leg again, until the pool closes (see above). */
static gpointer
rejoin_thread (gpointer arg)
{
  struct rmr_pool *pool = arg;
  unsigned i, n;
  bool pending;

  g_mutex_lock (&pool->thread_lock);
  while (!pool->stop) {
    pool->kick = false;
    pending = false;
    g_mutex_unlock (&pool->thread_lock);
    n = rmr_sync_npeers (pool);
    for (i = 0; i < n; i++) {
      struct clt_leg *leg = &pool->legs[i];
      if (atomic_load (&leg->disabled) ||
          atomic_load (&leg->state) == LEG_NORMAL)
        continue;
      g_mutex_lock (&pool->reconn_lock);
      if (!atomic_load (&leg->disabled) &&
          atomic_load (&leg->state) != LEG_NORMAL) {
        bool refused = false;
        /* A peer that answers no (its pool has no store yet, say) is
         * asked again less often: each refusal is logged over there.
         */
        if (join_leg_unlocked (pool, leg, &refused) < 0 && refused)
          leg->next_try = g_get_monotonic_time () + REFUSED_MS * 1000;
        pending |= atomic_load (&leg->state) != LEG_NORMAL;
      }
      g_mutex_unlock (&pool->reconn_lock);
    }
    g_mutex_lock (&pool->thread_lock);
    if (pending) {
      int64_t wake = g_get_monotonic_time () + REJOIN_MS * 1000;
      while (!pool->stop && !pool->kick &&
             g_cond_wait_until (&pool->thread_cond, &pool->thread_lock, wake))
        ;
    }
    else {
      /* Every leg normal: nothing to do until one fails or is added
       * (both kick), not a wake-up a second per pool.
       */
      while (!pool->stop && !pool->kick)
        g_cond_wait (&pool->thread_cond, &pool->thread_lock);
    }
  }
  g_mutex_unlock (&pool->thread_lock);
  return NULL;
}

struct rmr_pool *
rmr_sync_pool_new (const char *pool_name, uint64_t timeout_ms)
{
  struct rmr_pool *pool;

  if (rmr_check_pool_name ("poolname", pool_name) < 0)
    return NULL;
  pool = clt_pool_alloc ();
  rmr_pool_config_init (&pool->cfg);
  snprintf (pool->cfg.pool_name, sizeof pool->cfg.pool_name, "%s", pool_name);
  if (timeout_ms)
    pool->cfg.timeout_ms = timeout_ms;
  pool->sync = true;
  pool->group_id = rmr_group_id (pool_name);
  pool->reconn_thread =
    g_thread_try_new ("rmr-sync-rejoin", rejoin_thread, pool, NULL);
  if (!pool->reconn_thread) {
    clt_pool_free (pool);
    rmr_err (EAGAIN, "cannot start the sync pool's rejoin thread");
    return NULL;
  }
  return pool;
}

void
rmr_sync_pool_close (struct rmr_pool *pool)
{
  unsigned i;

  if (!pool)
    return;
  clt_recover_stop (pool); /* the rejoin thread */
  for (i = 0; i < pool->nlegs; i++)
    clt_leg_release (&pool->legs[i]);
  clt_pool_free (pool);
}

int
rmr_sync_pool_add_sess (struct rmr_pool *pool, const char *sessname,
                        const struct rmr_addr *addr, int check)
{
  struct clt_leg *leg = NULL;
  bool refused = false;
  unsigned i;
  int r;

  if (rmr_check_sess_name ("sessname", sessname) < 0)
    return -EINVAL;
  g_mutex_lock (&pool->reconn_lock);
  g_mutex_lock (&pool->legs_lock);
  for (i = 0; i < pool->nlegs; i++)
    if (strcmp (pool->legs[i].sessname, sessname) == 0)
      leg = &pool->legs[i];
  for (i = 0; i < pool->nlegs && !leg; i++)
    if (atomic_load (&pool->legs[i].disabled)) {
      leg = &pool->legs[i]; /* a deleted slot */
      leg->sessname[0] = '\0';
    }
  if (!leg) {
    if (pool->nlegs == RMR_MAX_MEMBERS) {
      g_mutex_unlock (&pool->legs_lock);
      g_mutex_unlock (&pool->reconn_lock);
      return rmr_err (ENOSPC,
                      "sessname: a sync pool has at most %u "
                      "sessions",
                      RMR_MAX_MEMBERS);
    }
    leg = &pool->legs[pool->nlegs++];
    memset (leg, 0, sizeof *leg);
    leg->pool = pool;
    leg->slot = -1;
    leg->member_id = RMR_MEMBER_NONE;
    leg->queue_depth = pool->cfg.queue_depth;
    snprintf (leg->sessname, sizeof leg->sessname, "%s", sessname);
  }
  else {
    clt_leg_release (leg); /* re-pointed or reused: join again */
    snprintf (leg->sessname, sizeof leg->sessname, "%s", sessname);
    leg->member_id = RMR_MEMBER_NONE;
  }
  atomic_store (&leg->disabled, false);
  leg->addr = *addr;
  rmr_addr_format (addr, leg->addr_name, sizeof leg->addr_name);
  atomic_store (&leg->state, LEG_FAILED);
  leg->next_try = 0;
  g_mutex_unlock (&pool->legs_lock);
  if (check && join_leg_unlocked (pool, leg, &refused) < 0 && refused) {
    /* The peer answered no (another pool, no store...): not added. */
    r = -errno;
    rmr_err_prefix ("path: ");
    g_mutex_lock (&pool->legs_lock);
    atomic_store (&leg->disabled, true);
    leg->sessname[0] = '\0';
    g_mutex_unlock (&pool->legs_lock);
    g_mutex_unlock (&pool->reconn_lock);
    return r;
  }
  g_mutex_unlock (&pool->reconn_lock);
  /* Not joined yet (or not any more): the rejoin thread's business. */
  g_mutex_lock (&pool->thread_lock);
  pool->kick = true;
  g_cond_signal (&pool->thread_cond);
  g_mutex_unlock (&pool->thread_lock);
  return 0;
}

int
rmr_sync_pool_del_sess (struct rmr_pool *pool, const char *sessname)
{
  unsigned i;

  g_mutex_lock (&pool->reconn_lock);
  g_mutex_lock (&pool->legs_lock);
  for (i = 0; i < pool->nlegs; i++)
    if (strcmp (pool->legs[i].sessname, sessname) == 0)
      break;
  if (i == pool->nlegs) {
    g_mutex_unlock (&pool->legs_lock);
    g_mutex_unlock (&pool->reconn_lock);
    return rmr_err (ENOENT, "no such session '%s'", sessname);
  }
  /* Leave first, so that when del_sess returns a peer that answers has
   * no session of ours (the admin guide's next step may be leave_pool
   * there), also when the leg failed on an error while its connection
   * stayed up (connections are shared between pools).  A peer that does
   * not answer in time has the connection cut (clt_req_wait) and loses
   * the session with it.  Network calls are made under reconn_lock,
   * never legs_lock (as a join).
   */
  {
    struct clt_sess *s = pool->legs[i].sess;
    if (s)
      clt_sess_ref (s);
    g_mutex_unlock (&pool->legs_lock);
    if (s && !s->down)
      clt_leg_leave_sess (&pool->legs[i], s, RMR_LEAVE_DISASSEMBLE);
    if (s)
      clt_sess_put (s);
    g_mutex_lock (&pool->legs_lock);
  }
  /* Requests may still point at the leg: it stays, marked deleted. */
  clt_leg_release (&pool->legs[i]);
  atomic_store (&pool->legs[i].state, LEG_FAILED);
  atomic_store (&pool->legs[i].disabled, true);
  pool->legs[i].sessname[0] = '\0';
  g_mutex_unlock (&pool->legs_lock);
  g_mutex_unlock (&pool->reconn_lock);
  return 0;
}

/* Join a failed leg again if its time has come (reconn_lock held).
 * *refused (if not NULL) tells a refusal by the peer from a peer that
 * could not be reached.
 */
static int
join_leg_unlocked (struct rmr_pool *pool, struct clt_leg *leg, bool *refused)
{
  struct rmr_join_req jr = {0};
  struct rmr_join_rep rep;
  struct rmr_hdr hdr = {.type = RMR_MSG_JOIN};
  uint8_t req_buf[RMR_JOIN_REQ_SIZE], rep_buf[RMR_JOIN_REP_SIZE];
  struct clt_sess *s;
  int r;

  if (g_get_monotonic_time () < leg->next_try)
    return rmr_err (EAGAIN, "%s: %s", leg->addr_name,
                    leg->last_error[0] ? leg->last_error : "retry later");
  leg->next_try = g_get_monotonic_time () + RETRY_MS * 1000;
  r = clt_sess_get (&leg->addr, pool->cfg.timeout_ms, &s);
  if (r < 0)
    goto fail;
  clt_sess_add_leg (s, leg);
  snprintf (jr.pool_name, sizeof jr.pool_name, "%s", pool->cfg.pool_name);
  snprintf (jr.sessname, sizeof jr.sessname, "%s", leg->sessname);
  jr.mode = RMR_MODE_AUTO;
  jr.sync = RMR_JOIN_SYNC;
  jr.queue_depth = pool->cfg.queue_depth;
  rmr_join_req_encode (&jr, req_buf);
  r = clt_leg_call (leg, s, &hdr, req_buf, sizeof req_buf, rep_buf,
                    sizeof rep_buf, NULL);
  /* A peer of the version before refuses sync 3 (proto.h): joined with
   * 2, and its reads never ask for zeroes.
   */
  if (r == -EPROTO && !s->down) {
    jr.sync = RMR_JOIN_SYNC_NO_ZEROES;
    rmr_join_req_encode (&jr, req_buf);
    hdr = (struct rmr_hdr){.type = RMR_MSG_JOIN};
    r = clt_leg_call (leg, s, &hdr, req_buf, sizeof req_buf, rep_buf,
                      sizeof rep_buf, NULL);
  }
  if (r == 0 && rmr_join_rep_decode (rep_buf, &rep) < 0)
    r = -EPROTO;
  if (r < 0 && refused)
    *refused = !s->down;
  if (r < 0) {
    clt_sess_del_leg (s, leg);
    clt_sess_put (s);
    goto fail;
  }
  g_mutex_lock (&pool->legs_lock);
  clt_leg_release (leg);
  leg->sess = s;
  leg->member_id = rep.member_id;
  leg->peer_size = rep.mapped_size;
  leg->peer_chunk_size = rep.chunk_size;
  leg->peer_generation = rep.generation;
  atomic_store (&leg->zeroes, jr.sync == RMR_JOIN_SYNC);
  if (atomic_exchange (&leg->state, LEG_NORMAL) != LEG_NORMAL)
    clt_leg_log_state (leg, LEG_FAILED, LEG_NORMAL,
                       jr.sync == RMR_JOIN_SYNC
                         ? "joined"
                         : "joined (a peer of the version before: its "
                           "reads send every byte)");
  leg->last_error[0] = '\0';
  g_mutex_unlock (&pool->legs_lock);
  return 0;

fail:
  snprintf (leg->last_error, sizeof leg->last_error, "%s",
            rmr_get_error () ? rmr_get_error () : strerror (-r));
  return r;
}

/* Leg i's session with a reference, joining it first if needed; NULL if
 * it cannot be used now.
 */
static struct clt_sess *
use_leg (struct rmr_pool *pool, unsigned i)
{
  struct clt_leg *leg = &pool->legs[i];
  struct clt_sess *s = NULL;

  if (atomic_load (&leg->disabled))
    return NULL;
  if (atomic_load (&leg->state) != LEG_NORMAL) {
    g_mutex_lock (&pool->reconn_lock);
    /* Deleted meanwhile (del_sess holds reconn_lock): not joined again. */
    if (!atomic_load (&leg->disabled) &&
        atomic_load (&leg->state) != LEG_NORMAL)
      join_leg_unlocked (pool, leg, NULL);
    g_mutex_unlock (&pool->reconn_lock);
  }
  g_mutex_lock (&pool->legs_lock);
  if (atomic_load (&leg->state) == LEG_NORMAL && leg->sess) {
    s = leg->sess;
    clt_sess_ref (s);
  }
  g_mutex_unlock (&pool->legs_lock);
  return s;
}

/* One request on leg i, waited for.  expect: the member the caller took
 * leg i for (RMR_MEMBER_NONE: any).  A leg's index is no lasting name:
 * del_sess frees it for the next add_sess, add_sess of the same name
 * points it elsewhere, and a node replaced at the same address joins as
 * another member.  An answer from another member is refused (ECANCELED):
 * a resync must never read from, and a verify never compare with, a
 * member it did not choose.
 */
static int
call (struct rmr_pool *pool, unsigned i, uint32_t expect, struct rmr_hdr *hdr,
      void *rbuf, uint32_t rlen, char *why, size_t whylen)
{
  struct clt_leg *leg = &pool->legs[i];
  struct clt_sess *s = use_leg (pool, i);
  int r;

  if (atomic_load (&leg->disabled))
    return -ENOENT;
  if (!s) {
    snprintf (why, whylen, "%s: %s", leg->addr_name, leg->last_error);
    return -ENOTCONN;
  }
  /* Addressed to the member expected: another refuses before it acts
   * (sess.c), and its answer is refused here too (below).
   */
  r = clt_leg_call_to (leg, s, expect, hdr, NULL, 0, rbuf, rlen, NULL);
  if (r < 0)
    snprintf (why, whylen, "%s", rmr_get_error ());
  /* A refusal (the peer is dirty there, or not normal; for a checksum
   * request also busy, canceled or without a record: pool-io.c) is no
   * failure of the connection; anything else is.
   */
  if (r < 0 && r != -EAGAIN && r != -ESTALE && r != -EINVAL && r != -EBUSY &&
      r != -ECANCELED && r != -EOPNOTSUPP)
    clt_leg_fail (leg, why);
  clt_sess_put (s);
  if (r == 0 && expect != RMR_MEMBER_NONE && hdr->member_id != expect) {
    snprintf (why, whylen,
              "%s: peer session %u answered as member %" PRIu32 ", not %" PRIu32
              " (its session changed)",
              leg->addr_name, i, hdr->member_id, expect);
    r = -ECANCELED;
  }
  return r;
}

unsigned
rmr_sync_npeers (struct rmr_pool *pool)
{
  unsigned n;

  g_mutex_lock (&pool->legs_lock);
  n = pool->nlegs;
  g_mutex_unlock (&pool->legs_lock);
  return n;
}

uint32_t
rmr_sync_peer_member (struct rmr_pool *pool, unsigned i)
{
  uint32_t m = RMR_MEMBER_NONE;
  struct clt_sess *s;

  if (i >= rmr_sync_npeers (pool))
    return m;
  /* Known once the leg joined: join it now if it never did (a peer we
   * never had to read from yet).
   */
  if (pool->legs[i].member_id == RMR_MEMBER_NONE && (s = use_leg (pool, i)))
    clt_sess_put (s);
  g_mutex_lock (&pool->legs_lock);
  if (!atomic_load (&pool->legs[i].disabled))
    m = pool->legs[i].member_id;
  g_mutex_unlock (&pool->legs_lock);
  return m;
}

int
rmr_sync_peer_pool (struct rmr_pool *pool, unsigned i, uint64_t *mapped_size,
                    uint32_t *chunk_size, uint64_t *generation)
{
  struct clt_leg *leg;
  struct clt_sess *s;

  if (i >= rmr_sync_npeers (pool))
    return rmr_err (ENOENT, "no such peer %u", i);
  leg = &pool->legs[i];
  s = use_leg (pool, i);
  if (!s)
    return rmr_err (ENOTCONN, "%s: %s", leg->addr_name,
                    leg->last_error[0] ? leg->last_error : "not reachable");
  g_mutex_lock (&pool->legs_lock);
  *mapped_size = leg->peer_size;
  *chunk_size = leg->peer_chunk_size;
  *generation = leg->peer_generation;
  g_mutex_unlock (&pool->legs_lock);
  clt_sess_put (s);
  return 0;
}

/* A map message on peer i (rbuf: its reply bits, or NULL).  *member:
 * on entry the member expected (as call's expect), on return the member
 * that answered; *mask: on entry the request's slots, on return the
 * reply's (a watch's: the other members behind there).
 */
static int
map_call (struct rmr_pool *pool, unsigned i, uint32_t *member, uint8_t type,
          uint16_t flags, uint64_t generation, uint32_t *mask, uint64_t first,
          uint64_t n, void *rbuf, char *why, size_t whylen)
{
  struct rmr_hdr hdr = {.type = type,
                        .flags = flags,
                        .generation = generation,
                        .offset = first,
                        .length = n,
                        .dirty_mask = *mask};
  int r;

  r = call (pool, i, *member, &hdr, rbuf, rbuf ? (n + 7) / 8 : 0, why, whylen);
  *member = hdr.member_id;
  *mask = r == 0 ? hdr.dirty_mask : 0;
  return r;
}

int
rmr_sync_watch (struct rmr_pool *pool, uint64_t generation, unsigned slot,
                uint64_t first, uint64_t n, uint32_t *peers, uint32_t *members,
                uint32_t *behind)
{
  char why[RMR_ERRMSG_MAX + 400];
  g_autofree uint8_t *bits = g_malloc ((n + 7) / 8);
  unsigned i, nlegs = rmr_sync_npeers (pool);
  uint32_t m, mask;

  *peers = 0;
  *behind = 0;
  for (i = 0; i < RMR_MAX_MEMBERS && members; i++)
    members[i] = RMR_MEMBER_NONE;
  for (i = 0; i < nlegs; i++) {
    m = RMR_MEMBER_NONE;
    mask = 1u << slot;
    if (map_call (pool, i, &m, RMR_MSG_MAP_GET, RMR_HF_WATCH, generation, &mask,
                  first, n, bits, why, sizeof why) < 0)
      continue;
    *peers |= 1u << i;
    *behind |= mask & ~(1u << slot);
    if (members)
      members[i] = m;
  }
  return 0;
}

int
rmr_sync_map_get (struct rmr_pool *pool, unsigned i, uint32_t member,
                  uint64_t generation, unsigned slot, uint64_t first,
                  uint64_t n, uint8_t *bits)
{
  char why[RMR_ERRMSG_MAX + 400] = "";
  uint32_t mask = 1u << slot;
  int r;

  r = map_call (pool, i, &member, RMR_MSG_MAP_GET, 0, generation, &mask, first,
                n, bits, why, sizeof why);
  if (r < 0)
    return rmr_err (-r, "map-get: %s", why);
  return 0;
}

int
rmr_sync_read (struct rmr_pool *pool, uint64_t generation, uint32_t peers,
               const uint32_t *members, void *buf, uint32_t count,
               uint64_t offset, uint32_t *member)
{
  return rmr_sync_read_sparse (pool, generation, peers, members, buf, count,
                               offset, member, NULL);
}

int
rmr_sync_read_sparse (struct rmr_pool *pool, uint64_t generation,
                      uint32_t peers, const uint32_t *members, void *buf,
                      uint32_t count, uint64_t offset, uint32_t *member,
                      int *zeroes)
{
  char why[RMR_ERRMSG_MAX + 400] = "no peer session";
  unsigned i, n, start;
  int r;

  n = rmr_sync_npeers (pool);
  start = atomic_fetch_add (&pool->rr, 1);
  for (i = 0; i < n; i++) {
    unsigned j = (start + i) % n;
    struct rmr_hdr hdr = {.type = RMR_MSG_READ,
                          .flags = zeroes && atomic_load (&pool->legs[j].zeroes)
                                     ? RMR_HF_ZEROES
                                     : 0,
                          .generation = generation,
                          .offset = offset,
                          .length = count};
    if (!(peers & 1u << j))
      continue;
    r = call (pool, j, members ? members[j] : RMR_MEMBER_NONE, &hdr, buf, count,
              why, sizeof why);
    if (r == 0) {
      atomic_fetch_add (&pool->legs[j].reads, 1);
      if (member)
        *member = hdr.member_id;
      if (zeroes)
        *zeroes = (hdr.flags & RMR_HF_ZEROES) != 0;
      return 0;
    }
  }
  return rmr_err (EAGAIN,
                  "sync read of %" PRIu32 " bytes at %" PRIu64
                  ": no peer could serve it (last: %s)",
                  count, offset, why);
}

int
rmr_sync_csum (struct rmr_pool *pool, unsigned i, uint32_t member,
               uint64_t generation, uint64_t offset, uint32_t count,
               uint32_t nchunks, uint32_t *crc)
{
  char why[RMR_ERRMSG_MAX + 400] = "";
  struct rmr_hdr hdr = {.type = RMR_MSG_CSUM,
                        .generation = generation,
                        .offset = offset,
                        .length = count};
  uint8_t *b = (uint8_t *) crc;
  uint32_t k;
  int r;

  if (i >= rmr_sync_npeers (pool))
    return rmr_err (ENOENT, "no such peer %u", i);
  r = call (pool, i, member, &hdr, crc, 4 * nchunks, why, sizeof why);
  if (r < 0)
    return rmr_err (-r, "checksums: %s", why);
  for (k = 0; k < nchunks; k++, b += 4)
    crc[k] = b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16 |
             (uint32_t) b[3] << 24;
  return 0;
}

int
rmr_sync_clear_watched (struct rmr_pool *pool, uint64_t generation,
                        unsigned slot, uint64_t first, uint64_t n,
                        uint32_t peers, const uint32_t *members, uint8_t *kept)
{
  char why[RMR_ERRMSG_MAX + 400] = "";
  g_autofree uint8_t *bits = g_malloc ((n + 7) / 8);
  unsigned i, nlegs = rmr_sync_npeers (pool);
  uint64_t k;
  int r, ret = 0;

  memset (kept, 0, (n + 7) / 8);
  for (i = 0; i < nlegs; i++) {
    /* Only the member that watched: another answering there now (its
     * session changed) may hold a watch of an earlier fetch that failed.
     */
    uint32_t m = members ? members[i] : RMR_MEMBER_NONE, mask = 1u << slot;
    if (!(peers & 1u << i))
      continue;
    r = map_call (pool, i, &m, RMR_MSG_MAP_CLEAR, RMR_HF_WATCH, generation,
                  &mask, first, n, bits, why, sizeof why);
    if (r < 0) {
      /* Not known whether it saw the chunks written again: keep. */
      memset (kept, 0xff, (n + 7) / 8);
      ret = rmr_err (-r, "map-clear: %s", why);
      continue;
    }
    for (k = 0; k < (n + 7) / 8; k++)
      kept[k] |= bits[k];
  }
  return ret;
}
