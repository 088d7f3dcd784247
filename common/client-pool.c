/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client pools [rmr_clt_pool]: opening a pool (connect every leg, join,
 * decide between create and assemble, enable), leaving it, and what a
 * status display reads of it.
 *
 * Opening, in order:
 *   1. check the configuration (every bad field named);
 *   2. take a shared session to every member and JOIN the pool on it; the
 *      reply says whether the member's store is fresh or already holds the
 *      pool, with its generation, sizes and member table;
 *   3. decide: mode=create needs every store fresh, mode=assemble every
 *      store in the pool, mode=auto takes whichever holds for all of them
 *      and refuses a mix; sizes and chunk sizes must agree;
 *   4. ENABLE with the new pool_md (a new generation, the member slots),
 *      which every member persists before it serves IO.
 * Any failure leaves every joined leg again, so nothing is half-applied.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "handover.h"
#include "jhash.h"
#include "parse.h"
#include "util.h"

/* Every open pool, for rmr_threads_suspend/resume. */
static GMutex g_pools_lock;
static GList *g_pools;

void
rmr_pool_config_init (struct rmr_pool_config *cfg)
{
  memset (cfg, 0, sizeof *cfg);
  cfg->mode = RMR_MODE_AUTO;
  cfg->read_policy = RMR_READ_ROUND_ROBIN;
  cfg->read_member = RMR_MEMBER_NONE;
  cfg->min_legs = 1;
  cfg->queue_depth = RMR_DEFAULT_QUEUE_DEPTH;
  cfg->timeout_ms = RMR_DEFAULT_TIMEOUT_MS;
}

static int
check_config (const struct rmr_pool_config *cfg)
{
  char a[300], b[300];
  unsigned i, j;

  if (rmr_check_pool_name ("pool", cfg->pool_name) < 0)
    return -EINVAL;
  if (cfg->nlegs == 0)
    return rmr_err (EINVAL, "server: no server given (one per leg, 1-%u)",
                    RMR_MAX_MEMBERS);
  if (cfg->nlegs > RMR_MAX_MEMBERS)
    return rmr_err (EINVAL, "server: %u servers given, at most %u", cfg->nlegs,
                    RMR_MAX_MEMBERS);
  for (i = 0; i < cfg->nlegs; i++) {
    rmr_addr_format (&cfg->legs[i].addr, a, sizeof a);
    if (cfg->legs[i].sessname[0] &&
        rmr_check_sess_name ("sessname", cfg->legs[i].sessname) < 0)
      return -EINVAL;
    for (j = 0; j < i; j++) {
      rmr_addr_format (&cfg->legs[j].addr, b, sizeof b);
      if (strcmp (a, b) == 0)
        return rmr_err (EINVAL,
                        "server: %s given twice (one session per storage "
                        "node and pool)",
                        a);
    }
  }
  if (cfg->chunk_size && (!is_power_of_2 (cfg->chunk_size) ||
                          cfg->chunk_size < RMR_MIN_CHUNK_SIZE ||
                          cfg->chunk_size > RMR_MAX_CHUNK_SIZE))
    return rmr_err (EINVAL,
                    "chunk-size: %" PRIu32 " is not a power of two from "
                    "4K to 64M",
                    cfg->chunk_size);
  if (cfg->size % 512)
    return rmr_err (EINVAL, "size: %" PRIu64 " is not a multiple of 512",
                    cfg->size);
  if (cfg->min_legs > cfg->nlegs)
    return rmr_err (EINVAL, "min-legs: %u, but only %u servers", cfg->min_legs,
                    cfg->nlegs);
  if (cfg->ndelete > RMR_MAX_MEMBERS)
    return rmr_err (EINVAL, "delete-member: %u given, at most %u", cfg->ndelete,
                    RMR_MAX_MEMBERS);
  for (i = 0; i < cfg->ndelete; i++)
    if (cfg->delete_members[i] > RMR_MEMBER_ID_MAX)
      return rmr_err (EINVAL, "delete-member: %" PRIu32 " is not a member id",
                      cfg->delete_members[i]);
  if (cfg->queue_depth == 0 || cfg->queue_depth > RMR_MAX_QUEUE_DEPTH)
    return rmr_err (EINVAL, "queue-depth: %u not in 1-%u", cfg->queue_depth,
                    RMR_MAX_QUEUE_DEPTH);
  return 0;
}

/* Default session name: "CLIENTHOST@SERVERHOST:PORT" in the allowed
 * characters.
 */
void
clt_default_sessname (const struct rmr_addr *addr, char *out, size_t n)
{
  char *p;

  snprintf (out, n, "%s@%s:%u", g_get_host_name (), addr->host, addr->port);
  for (p = out; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("._@:-", *p))
      *p = '_';
}

int64_t
clt_deadline (const struct rmr_pool *pool)
{
  return g_get_monotonic_time () + (int64_t) pool->cfg.timeout_ms * 1000;
}

int
clt_leg_call (struct clt_leg *leg, struct clt_sess *s, struct rmr_hdr *hdr,
              const void *payload, size_t plen, void *rbuf, uint32_t rlen,
              uint32_t *got)
{
  return clt_leg_call_to (leg, s, RMR_MEMBER_NONE, hdr, payload, plen, rbuf,
                          rlen, got);
}

int
clt_leg_call_to (struct clt_leg *leg, struct clt_sess *s, uint32_t to,
                 struct rmr_hdr *hdr, const void *payload, size_t plen,
                 void *rbuf, uint32_t rlen, uint32_t *got)
{
  struct clt_req req;
  struct clt_sub *sub;
  struct iovec iov = {.iov_base = (void *) payload, .iov_len = plen};
  int r;

  clt_req_init (&req);
  sub = clt_req_add (&req, 0, leg);
  sub->sess = s;
  sub->rbuf = rbuf;
  sub->rlen = rlen;
  sub->any_len = got != NULL;
  sub->may_zero = hdr->type == RMR_MSG_READ && (hdr->flags & RMR_HF_ZEROES);
  hdr->group_id = leg->pool->group_id;
  hdr->member_id = to;
  hdr->payload_len = plen;
  clt_sess_submit (sub, hdr, &iov, plen ? 1 : 0);
  clt_req_wait (&req, clt_deadline (leg->pool));
  r = sub->status;
  if (r < 0)
    rmr_err (-r, "server %s: %s: %s", leg->addr_name,
             rmr_msg_type_name (hdr->type),
             sub->errmsg[0] ? sub->errmsg : strerror (-r));
  else if (got)
    *got = sub->got_len;
  hdr->member_id = sub->from;
  hdr->dirty_mask = r == 0 ? sub->rmask : 0;
  if (!sub->zeroed)
    hdr->flags &= ~RMR_HF_ZEROES;
  clt_req_clear (&req);
  return r;
}

void
clt_leg_leave_sess (struct clt_leg *leg, struct clt_sess *s,
                    enum rmr_leave_mode mode)
{
  /* The pool is closing or never opened: no write is in flight. */
  struct rmr_hdr hdr = {.type = RMR_MSG_LEAVE,
                        .flags = RMR_HF_QUIESCED,
                        .offset = mode,
                        .generation = leg->pool->generation};

  clt_leg_call (leg, s, &hdr, NULL, 0, NULL, 0, NULL);
}

void
clt_leg_leave (struct clt_leg *leg, enum rmr_leave_mode mode)
{
  if (atomic_load (&leg->state) != LEG_FAILED && leg->sess)
    clt_leg_leave_sess (leg, leg->sess, mode);
}

void
clt_leg_release (struct clt_leg *leg)
{
  if (!leg->sess)
    return;
  clt_sess_del_leg (leg->sess, leg);
  clt_sess_put (leg->sess);
  leg->sess = NULL;
}

int
clt_leg_join (struct clt_leg *leg, struct clt_sess *s, struct rmr_join_rep *rep)
{
  struct rmr_pool *pool = leg->pool;
  struct rmr_join_req jr = {0};
  struct rmr_hdr hdr = {.type = RMR_MSG_JOIN, .generation = pool->generation};
  uint8_t req_buf[RMR_JOIN_REQ_SIZE], rep_buf[RMR_JOIN_REP_SIZE];
  int r;

  snprintf (jr.pool_name, sizeof jr.pool_name, "%s", pool->cfg.pool_name);
  snprintf (jr.sessname, sizeof jr.sessname, "%s", leg->sessname);
  /* A member added to the open pool joins with a fresh store. */
  jr.mode = !pool->generation ? pool->cfg.mode
            : leg->new_member ? RMR_MODE_AUTO
                              : RMR_MODE_ASSEMBLE;
  jr.chunk_size = pool->generation ? pool->chunk_size : pool->cfg.chunk_size;
  jr.queue_depth = pool->cfg.queue_depth;
  jr.mapped_size = pool->generation ? pool->size : pool->cfg.size;
  jr.flags = pool->probe ? RMR_JOIN_REQ_F_PROBE : 0;
  rmr_join_req_encode (&jr, req_buf);
  r = clt_leg_call (leg, s, &hdr, req_buf, sizeof req_buf, rep_buf,
                    sizeof rep_buf, NULL);
  if (r < 0)
    return r;
  if (rmr_join_rep_decode (rep_buf, rep) < 0) {
    rmr_err_prefix ("server %s: join reply: ", leg->addr_name);
    return -EPROTO;
  }
  return 0;
}

int
clt_leg_join_new (struct clt_leg *leg, struct rmr_join_rep *rep)
{
  struct rmr_pool *pool = leg->pool;
  int r;

  r = clt_sess_get (&leg->addr, MIN (pool->cfg.timeout_ms, 5000), &leg->sess);
  if (r < 0) {
    leg->sess = NULL;
    rmr_err_prefix ("server ");
    return r;
  }
  clt_sess_add_leg (leg->sess, leg);
  r = clt_leg_join (leg, leg->sess, rep);
  if (r < 0) {
    clt_leg_release (leg);
    return r;
  }
  leg->member_id = rep->member_id;
  leg->block_size = rep->block_size;
  atomic_store (&leg->state, LEG_CREATED);
  return 0;
}

static int
enable_all (struct rmr_pool *pool, const struct rmr_enable_req *en,
            unsigned joined)
{
  uint8_t buf[RMR_ENABLE_REQ_SIZE];
  unsigned i;
  int r;

  rmr_enable_req_encode (en, buf);
  for (i = 0; i < pool->nlegs; i++) {
    if (!(joined & 1u << i))
      continue;
    struct rmr_hdr hdr = {.type = RMR_MSG_ENABLE, .generation = en->generation};
    r = clt_leg_call (&pool->legs[i], pool->legs[i].sess, &hdr, buf, sizeof buf,
                      NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  for (i = 0; i < pool->nlegs; i++)
    if (joined & 1u << i) {
      int old = atomic_exchange (&pool->legs[i].state, LEG_NORMAL);
      if (old != LEG_NORMAL)
        clt_leg_log_state (&pool->legs[i], old, LEG_NORMAL, "pool enabled");
    }
  return 0;
}

struct rmr_pool *
clt_pool_alloc (void)
{
  struct rmr_pool *pool = g_new0 (struct rmr_pool, 1);

  g_mutex_init (&pool->ov_lock);
  g_cond_init (&pool->ov_cond);
  g_mutex_init (&pool->gate_lock);
  g_cond_init (&pool->gate_cond);
  g_mutex_init (&pool->reconn_lock);
  g_mutex_init (&pool->legs_lock);
  g_mutex_init (&pool->thread_lock);
  g_cond_init (&pool->thread_cond);
  g_mutex_init (&pool->hz_lock);
  g_cond_init (&pool->hz_cond);
  g_mutex_init (&pool->pending_lock);
  g_mutex_init (&pool->barrier_lock);
  pool->pending = g_array_new (FALSE, FALSE, sizeof (struct clt_range));
  return pool;
}

void
clt_pool_free (struct rmr_pool *pool)
{
  g_mutex_clear (&pool->ov_lock);
  g_cond_clear (&pool->ov_cond);
  g_mutex_clear (&pool->gate_lock);
  g_cond_clear (&pool->gate_cond);
  g_mutex_clear (&pool->reconn_lock);
  g_mutex_clear (&pool->legs_lock);
  g_mutex_clear (&pool->thread_lock);
  g_cond_clear (&pool->thread_cond);
  g_mutex_clear (&pool->hz_lock);
  g_cond_clear (&pool->hz_cond);
  g_mutex_clear (&pool->pending_lock);
  g_mutex_clear (&pool->barrier_lock);
  g_array_unref (pool->pending);
  g_free (pool);
}

struct rmr_pool *
clt_pool_from_config (const struct rmr_pool_config *cfg)
{
  struct rmr_pool *pool;
  unsigned i;

  if (check_config (cfg) < 0)
    return NULL;
  pool = clt_pool_alloc ();
  pool->cfg = *cfg;
  if (pool->cfg.min_legs == 0)
    pool->cfg.min_legs = 1;
  if (pool->cfg.timeout_ms == 0)
    pool->cfg.timeout_ms = RMR_DEFAULT_TIMEOUT_MS;
  pool->group_id = rmr_group_id (cfg->pool_name);
  pool->nlegs = cfg->nlegs;
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    leg->pool = pool;
    leg->addr = cfg->legs[i].addr;
    rmr_addr_format (&leg->addr, leg->addr_name, sizeof leg->addr_name);
    if (cfg->legs[i].sessname[0])
      snprintf (leg->sessname, sizeof leg->sessname, "%s",
                cfg->legs[i].sessname);
    else
      clt_default_sessname (&leg->addr, leg->sessname, sizeof leg->sessname);
    leg->member_id = RMR_MEMBER_NONE;
    leg->slot = -1;
    leg->queue_depth = pool->cfg.queue_depth;
    atomic_store (&leg->state, LEG_FAILED);
  }
  return pool;
}

struct rmr_pool *
rmr_pool_open (const struct rmr_pool_config *cfg)
{
  struct rmr_join_rep rep[RMR_MAX_MEMBERS];
  struct clt_plan plan = {0};
  struct ho_union u = {{NULL}};
  struct rmr_enable_req en;
  unsigned joined = 0, old_legs = 0;
  struct rmr_pool *pool;
  char saved[512];
  unsigned i;
  int r;

  pool = clt_pool_from_config (cfg);
  if (!pool)
    return NULL;

  if (clt_join_all (pool, rep, &joined) < 0 ||
      clt_decide (pool, rep, joined, &en) < 0)
    goto fail;
  pool->generation = en.generation;
  pool->size = en.mapped_size;
  pool->chunk_size = en.chunk_size;
  pool->block_size = 512;
  for (i = 0; i < pool->nlegs; i++)
    pool->block_size = MAX (pool->block_size, pool->legs[i].block_size);
  pool->md = en;
  /* An assemble reads what may differ and gives every member what it
   * missed before any member is enabled, so that no resync starts with
   * half the picture (handover.c).  Fresh stores (new members) take map
   * bits only once enabled: the others learn first that they hold
   * nothing.
   */
  for (i = 0; i < pool->nlegs; i++)
    if ((joined & 1u << i) && !pool->legs[i].new_member)
      old_legs |= 1u << i;
  if (en.mode == RMR_MODE_ASSEMBLE &&
      (clt_assemble_plan (pool, rep, joined, &plan) < 0 ||
       ho_assemble_prepare (pool, joined, &plan, &u) < 0 ||
       ho_assemble_give (pool, old_legs, &u) < 0 ||
       clt_mark_new_members (pool, joined, old_legs) < 0))
    goto fail;
  /* Members away now miss whatever is written next (set before the
   * reconnect thread may hand one its map).
   */
  g_mutex_lock (&pool->barrier_lock);
  atomic_store (&pool->outdated, plan.absent);
  memset (pool->dep_synced, 0, sizeof pool->dep_synced);
  atomic_store (&pool->dep_tried, 0);
  g_mutex_unlock (&pool->barrier_lock);
  if (enable_all (pool, &en, joined) < 0 ||
      clt_mark_new_members (pool, joined,
                            en.mode == RMR_MODE_ASSEMBLE ? joined & ~old_legs
                                                         : joined) < 0 ||
      (en.mode == RMR_MODE_ASSEMBLE &&
       ho_assemble_give (pool, joined & ~old_legs, &u) < 0))
    goto fail;
  /* A member handed chunks it missed catches up (client-legs.c). */
  for (i = 0; i < pool->nlegs && en.mode == RMR_MODE_ASSEMBLE; i++) {
    struct clt_leg *leg = &pool->legs[i];
    uint64_t n = !(joined & 1u << i) ? 0
                 : leg->new_member   ? ho_nchunks (pool)
                                     : ho_union_count (pool, &u, leg->slot);
    if (n)
      clt_leg_catch_up (leg, n);
  }
  for (i = 0; i < pool->nlegs; i++)
    pool->legs[i].new_member = false;
  /* force is for this open only: a later refusal (an outdated member
   * coming back alone) takes a new decision, a new open with force.
   */
  pool->cfg.force = false;
  /* Only now: the reconnect thread takes absent legs (new_member set by
   * their join) and polls the legs that catch up.
   */
  if (clt_recover_start (pool) < 0)
    goto fail;
  ho_union_free (&u);
  clt_plan_clear (&plan);
  g_mutex_lock (&g_pools_lock);
  g_pools = g_list_prepend (g_pools, pool);
  g_mutex_unlock (&g_pools_lock);
  return pool;

fail:
  r = errno;
  clt_plan_clear (&plan);
  ho_union_free (&u);
  snprintf (saved, sizeof saved, "%s",
            rmr_get_error () ? rmr_get_error () : "failed");
  for (i = 0; i < pool->nlegs; i++) {
    if (pool->legs[i].sess && atomic_load (&pool->legs[i].state) == LEG_CREATED)
      clt_leg_leave (&pool->legs[i], RMR_LEAVE_DISASSEMBLE);
    clt_leg_release (&pool->legs[i]);
  }
  clt_pool_free (pool);
  rmr_err (r, "%s", saved);
  return NULL;
}

void
rmr_pool_close (struct rmr_pool *pool)
{
  char saved[512];
  unsigned i;

  if (!pool)
    return;
  /* A failing leave must not replace an error the caller still reads. */
  snprintf (saved, sizeof saved, "%s",
            rmr_get_error () ? rmr_get_error () : "");
  g_mutex_lock (&g_pools_lock);
  g_pools = g_list_remove (g_pools, pool);
  g_mutex_unlock (&g_pools_lock);
  clt_recover_stop (pool);
  for (i = 0; i < pool->nlegs; i++) {
    clt_leg_leave (&pool->legs[i], RMR_LEAVE_DISASSEMBLE);
    clt_leg_release (&pool->legs[i]);
  }
  clt_pool_free (pool);
  if (saved[0])
    rmr_err (rmr_get_errno (), "%s", saved);
}

const char *
rmr_pool_name (const struct rmr_pool *pool)
{
  return pool->cfg.pool_name;
}

uint64_t
rmr_pool_size (const struct rmr_pool *pool)
{
  return pool->size;
}

uint32_t
rmr_pool_chunk_size (const struct rmr_pool *pool)
{
  return pool->chunk_size;
}

uint32_t
rmr_pool_block_size (const struct rmr_pool *pool)
{
  return pool->block_size;
}

uint64_t
rmr_pool_generation (const struct rmr_pool *pool)
{
  return pool->generation;
}

unsigned
rmr_pool_nlegs (const struct rmr_pool *pool)
{
  return pool->nlegs;
}

int
rmr_pool_leg_info (struct rmr_pool *pool, unsigned i, struct rmr_leg_info *info)
{
  struct clt_leg *leg;

  /* legs_lock: a live leg removal (client-legs.c) moves the legs. */
  g_mutex_lock (&pool->legs_lock);
  if (i >= pool->nlegs) {
    g_mutex_unlock (&pool->legs_lock);
    return rmr_err (ENOENT, "leg %u: no such leg", i);
  }
  leg = &pool->legs[i];
  memset (info, 0, sizeof *info);
  snprintf (info->sessname, sizeof info->sessname, "%s", leg->sessname);
  snprintf (info->addr, sizeof info->addr, "%s", leg->addr_name);
  info->member_id = leg->member_id;
  info->state = clt_leg_state_name (atomic_load (&leg->state));
  if (leg->sess) {
    info->bytes_sent = atomic_load (&leg->sess->conn->bytes_sent);
    info->bytes_received = atomic_load (&leg->sess->conn->bytes_received);
    snprintf (info->security, sizeof info->security, "%s",
              leg->sess->conn->security);
    snprintf (info->transport, sizeof info->transport, "%s",
              leg->sess->conn->path);
    info->zcopy_bytes_sent = atomic_load (&leg->sess->conn->zcopy_bytes_sent);
  }
  info->inflight = atomic_load (&leg->inflight);
  info->reads = atomic_load (&leg->reads);
  info->writes = atomic_load (&leg->writes);
  info->enabled = !atomic_load (&leg->disabled);
  info->data_state =
    leg->slot >= 0 && (atomic_load (&pool->outdated) & 1u << leg->slot)
      ? "outdated"
    : atomic_load (&leg->catching_up) ? "syncing"
                                      : "up-to-date";
  if (atomic_load (&leg->catching_up)) {
    info->resync_left = atomic_load (&leg->resync_left);
    info->resync_total = atomic_load (&leg->resync_total);
  }
  g_mutex_lock (&pool->thread_lock);
  snprintf (info->last_error, sizeof info->last_error, "%s", leg->last_error);
  g_mutex_unlock (&pool->thread_lock);
  g_mutex_unlock (&pool->legs_lock);
  return 0;
}

int
rmr_pool_leg_set_enabled (struct rmr_pool *pool, unsigned i, int enabled)
{
  struct clt_leg *leg;
  int r = 0;

  /* Under reconn_lock: a leg removed meanwhile moves the others down. */
  g_mutex_lock (&pool->reconn_lock);
  if (i >= pool->nlegs) {
    g_mutex_unlock (&pool->reconn_lock);
    return rmr_err (ENOENT, "leg %u: no such leg", i);
  }
  leg = &pool->legs[i];
  atomic_store (&leg->disabled, !enabled);
  if (!enabled) {
    clt_leg_fail (leg, "disabled by the administrator");
    /* Its node leaves the pool too: it must not go on serving resync
     * reads (or resyncing) as if it got the writes it now misses.
     */
    if (leg->sess && !leg->sess->down) {
      struct rmr_hdr hdr = {.type = RMR_MSG_LEAVE,
                            .generation = pool->generation};
      clt_leg_call (leg, leg->sess, &hdr, NULL, 0, NULL, 0, NULL);
    }
  }
  else if (atomic_load (&leg->state) != LEG_NORMAL)
    r = clt_reconnect_leg_locked (pool, leg, NULL);
  g_mutex_unlock (&pool->reconn_lock);
  return r;
}

int
rmr_pool_leg_reconnect (struct rmr_pool *pool, unsigned i,
                        const struct rmr_addr *addr)
{
  if (i < pool->nlegs && atomic_load (&pool->legs[i].disabled))
    return rmr_err (EPERM, "leg %u: disabled (enable it first)", i);
  return clt_reconnect (pool, i, addr);
}

int
rmr_pool_enable (struct rmr_pool *pool)
{
  unsigned i;
  int r = 0;

  for (i = 0; i < pool->nlegs; i++)
    if (!atomic_load (&pool->legs[i].disabled) &&
        atomic_load (&pool->legs[i].state) != LEG_NORMAL &&
        clt_reconnect (pool, i, NULL) < 0)
      r = -errno;
  return r;
}

int
rmr_threads_suspend (void)
{
  GList *l;

  g_mutex_lock (&g_pools_lock);
  for (l = g_pools; l; l = l->next)
    clt_recover_stop (l->data);
  g_mutex_unlock (&g_pools_lock);
  return clt_threads_suspend ();
}

int
rmr_threads_resume (void)
{
  GList *l;
  int r = clt_threads_resume ();

  g_mutex_lock (&g_pools_lock);
  for (l = g_pools; l; l = l->next)
    if (clt_recover_start (l->data) < 0)
      r = -EAGAIN;
  g_mutex_unlock (&g_pools_lock);
  return r;
}
