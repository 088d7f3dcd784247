/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Client sessions [rmr_clt_sess]: one transport connection per storage
 * node, shared by every pool of the process (legs of several pools to the
 * same node are multiplexed on it by group_id), and the tag table that
 * matches replies to the sub-requests waiting for them.
 *
 * Lifetime: g_sessions maps the canonical address to a session; a leg
 * takes a reference (clt_sess_get) and drops it (clt_sess_put).  A
 * session whose connection went down stays in the map until its last
 * reference goes, but clt_sess_get replaces it with a fresh connection
 * for new users.
 *
 * Locking: g_sess_lock protects g_sessions and the refcounts; a session's
 * lock protects its tag table, its credits (legs' inflight) and its down
 * state.  Order: g_sess_lock before a session's lock.  Requests take no
 * lock (client.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "error.h"
#include "futex.h"
#include "parse.h"
#include "util.h"

/* A request still pending this long after its late connections were
 * shut down is reported (clt_req_wait), and again each time as long.
 */
#define SHUT_WARN_MS 30000

static GMutex g_sess_lock;
static GHashTable *g_sessions; /* key -> struct clt_sess */

const char *
clt_leg_state_name (enum clt_leg_state s)
{
  switch (s) {
  case LEG_CREATED: return "created";
  case LEG_NORMAL: return "normal";
  case LEG_FAILED: return "failed";
  case LEG_RECONNECTING: return "reconnecting";
  }
  return "unknown";
}

void
clt_req_init (struct clt_req *req)
{
  memset (req, 0, sizeof *req);
}

void
clt_req_clear (struct clt_req *req)
{
}

struct clt_sub *
clt_req_add (struct clt_req *req, unsigned i, struct clt_leg *leg)
{
  struct clt_sub *sub = &req->sub[i];

  sub->req = req;
  sub->leg = leg;
  sub->sess = leg->sess;
  sub->done = false;
  sub->any_len = false;
  sub->may_zero = false;
  sub->zeroed = false;
  sub->got_len = 0;
  sub->from = RMR_MEMBER_NONE;
  sub->rmask = 0;
  sub->status = 0;
  sub->errmsg[0] = '\0';
  atomic_fetch_add (&req->pending, 1);
  return sub;
}

void
clt_sub_complete (struct clt_sub *sub, int status, const char *msg)
{
  struct clt_req *req = sub->req;

  if (msg)
    snprintf (sub->errmsg, sizeof sub->errmsg, "%s", msg);
  sub->status = status;
  sub->t_done = g_get_monotonic_time ();
  sub->done = true;
  /* After the last decrement the request may be gone: the wake-up goes
   * to its address only, which is harmless if nobody waits there.
   */
  if (atomic_fetch_sub (&req->pending, 1) == 1)
    rmr_futex_wake (&req->pending);
}

void
clt_req_wait (struct clt_req *req, int64_t deadline)
{
  struct timespec tmo;
  unsigned p, i;
  int64_t left, shut = 0;

  while ((p = atomic_load (&req->pending)) != 0) {
    if (deadline == 0) {
      rmr_futex_wait (&req->pending, p, NULL);
      continue;
    }
    left = deadline - g_get_monotonic_time ();
    if (left > 0) {
      tmo.tv_sec = left / 1000000;
      tmo.tv_nsec = left % 1000000 * 1000;
      rmr_futex_wait (&req->pending, p, &tmo);
      continue;
    }
    /* Deadline passed: the late legs' connections are broken, which
     * fails every request on them (from their receive threads).  That
     * is the transport's promise; should it not keep it, the wait (which
     * must go on: the transport may still write into the reply buffers)
     * says so every SHUT_WARN_MS instead of hanging silently.
     */
    for (i = 0; i < RMR_MAX_MEMBERS; i++) {
      struct clt_sub *sub = &req->sub[i];
      if (sub->req != req || atomic_load (&sub->done) || !sub->sess)
        continue;
      if (shut)
        g_warning ("a request to %s is still pending %" PRId64
                   " s after its connection was shut down",
                   sub->sess->conn->peer_name, shut * SHUT_WARN_MS / 1000);
      else
        rmr_conn_shutdown (sub->sess->conn);
    }
    shut++;
    deadline = g_get_monotonic_time () + SHUT_WARN_MS * 1000;
  }
}

/* Look up the sub waiting for tag; NULL if none (a stale or bogus reply). */
static struct clt_sub *
slot_lookup_unlocked (struct clt_sess *s, uint64_t tag)
{
  uint32_t i = tag & 0xffffffff, seq = tag >> 32;

  if (i >= CLT_NSLOTS || !s->slots[i].sub || s->slots[i].seq != seq)
    return NULL;
  return s->slots[i].sub;
}

static void
slot_release_unlocked (struct clt_sess *s, uint32_t i)
{
  struct clt_sub *sub = s->slots[i].sub;

  sub->leg->inflight--;
  s->slots[i].sub = NULL;
  s->slots[i].next_free = s->free_head;
  s->free_head = i;
  if (s->waiters)
    g_cond_broadcast (&s->cond);
}

static void *
sess_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct clt_sess *s = opaque;
  struct clt_sub *sub;
  void *buf = NULL;

  g_mutex_lock (&s->lock);
  sub = slot_lookup_unlocked (s, hdr->tag);
  if (sub) {
    if (hdr->status != 0)
      buf = sub->errmsg; /* at most RMR_ERRMSG_MAX, checked */
    else if (hdr->payload_len == sub->rlen ||
             (sub->any_len && hdr->payload_len <= sub->rlen))
      buf = sub->rbuf;
  }
  g_mutex_unlock (&s->lock);
  return buf;
}

static void
sess_message (void *opaque, const struct rmr_hdr *hdr, void *payload)
{
  struct clt_sess *s = opaque;
  struct clt_sub *sub;
  int status;

  if (!(hdr->flags & RMR_HF_REPLY))
    return; /* servers send no requests to clients */
  g_mutex_lock (&s->lock);
  sub = slot_lookup_unlocked (s, hdr->tag);
  if (sub)
    slot_release_unlocked (s, hdr->tag & 0xffffffff);
  g_mutex_unlock (&s->lock);
  if (!sub)
    return;

  status = -(int) hdr->status;
  sub->got_len = hdr->payload_len;
  sub->from = hdr->member_id;
  sub->rmask = hdr->dirty_mask;
  if (status != 0 && payload == sub->errmsg) {
    sub->errmsg[hdr->payload_len] = '\0';
    clt_sub_complete (sub, status, NULL);
  }
  else if (status == 0 && (hdr->flags & RMR_HF_ZEROES)) {
    /* Zeroes without payload (proto.h): only where they were asked for. */
    if (!sub->may_zero) {
      clt_sub_complete (sub, -EPROTO,
                        "zeroes answered to a read that did not ask for them");
      return;
    }
    memset (sub->rbuf, 0, sub->rlen);
    sub->got_len = sub->rlen;
    sub->zeroed = true;
    clt_sub_complete (sub, 0, NULL);
  }
  else if (status == 0 && hdr->payload_len != sub->rlen &&
           !(sub->any_len && hdr->payload_len <= sub->rlen))
    clt_sub_complete (sub, -EPROTO, "reply with an unexpected payload length");
  else
    clt_sub_complete (sub, status, NULL);
}

static void
sess_down (void *opaque, int errnum, const char *reason)
{
  struct clt_sess *s = opaque;
  struct clt_sub *sub;
  unsigned i;

  g_mutex_lock (&s->lock);
  s->down = true;
  snprintf (s->down_reason, sizeof s->down_reason, "%s", reason);
  for (i = 0; i < s->legs->len; i++)
    clt_leg_fail (g_ptr_array_index (s->legs, i), reason);
  /* Lock order session -> request allows completing under our lock. */
  for (i = 0; i < CLT_NSLOTS; i++)
    if ((sub = s->slots[i].sub) != NULL) {
      slot_release_unlocked (s, i);
      clt_sub_complete (sub, -errnum, reason);
    }
  g_cond_broadcast (&s->cond);
  g_mutex_unlock (&s->lock);
}

static const struct rmr_conn_handler sess_handler = {
  .payload_buf = sess_payload_buf,
  .message = sess_message,
  .down = sess_down,
};

static void
sess_free (struct clt_sess *s)
{
  rmr_conn_close (s->conn);
  g_ptr_array_unref (s->legs);
  g_free (s->slots);
  g_mutex_clear (&s->lock);
  g_cond_clear (&s->cond);
  g_free (s);
}

int
clt_sess_get (const struct rmr_addr *addr, uint64_t timeout_ms,
              struct clt_sess **out)
{
  struct rmr_conn_opts opts = {
    .connect_timeout_ms = MIN (timeout_ms, 10000),
    .user_timeout_ms = timeout_ms,
    .keepalive_ms = MAX (timeout_ms / 4, 250),
    .idle_timeout_ms = timeout_ms,
    .inline_handler = true, /* sess_payload_buf, sess_message */
  };
  struct clt_sess *s;
  char key[300];
  unsigned i;
  int r;

  rmr_addr_format (addr, key, sizeof key);
  g_mutex_lock (&g_sess_lock);
  if (!g_sessions)
    g_sessions = g_hash_table_new (g_str_hash, g_str_equal);
  s = g_hash_table_lookup (g_sessions, key);
  if (s && !s->down) {
    s->refs++;
    g_mutex_unlock (&g_sess_lock);
    *out = s;
    return 0;
  }
  if (s) /* down: its users keep it until put */
    g_hash_table_remove (g_sessions, key);

  s = g_new0 (struct clt_sess, 1);
  snprintf (s->key, sizeof s->key, "%s", key);
  s->addr = *addr;
  g_mutex_init (&s->lock);
  g_cond_init (&s->cond);
  s->legs = g_ptr_array_new ();
  s->slots = g_new0 (struct clt_slot, CLT_NSLOTS);
  for (i = 0; i < CLT_NSLOTS; i++)
    s->slots[i].next_free = i + 1 < CLT_NSLOTS ? (int) i + 1 : -1;
  s->free_head = 0;
  r = rmr_conn_connect (addr, &opts, &sess_handler, s, &s->conn);
  if (r < 0) {
    g_mutex_unlock (&g_sess_lock);
    s->conn = NULL;
    g_ptr_array_unref (s->legs);
    g_free (s->slots);
    g_free (s);
    return r;
  }
  s->refs = 1;
  g_hash_table_insert (g_sessions, s->key, s);
  g_mutex_unlock (&g_sess_lock);
  *out = s;
  return 0;
}

void
clt_sess_ref (struct clt_sess *s)
{
  g_mutex_lock (&g_sess_lock);
  s->refs++;
  g_mutex_unlock (&g_sess_lock);
}

void
clt_sess_put (struct clt_sess *s)
{
  bool last;

  g_mutex_lock (&g_sess_lock);
  last = --s->refs == 0;
  /* A session that went down may be out of the table already, or the
   * table gone with the last session in it (nothing left at unload).
   */
  if (last && g_sessions && g_hash_table_lookup (g_sessions, s->key) == s)
    g_hash_table_remove (g_sessions, s->key);
  if (g_sessions && g_hash_table_size (g_sessions) == 0)
    g_clear_pointer (&g_sessions, g_hash_table_unref);
  g_mutex_unlock (&g_sess_lock);
  if (last)
    sess_free (s);
}

void
clt_sess_add_leg (struct clt_sess *s, struct clt_leg *leg)
{
  g_mutex_lock (&s->lock);
  g_ptr_array_add (s->legs, leg);
  g_mutex_unlock (&s->lock);
}

void
clt_sess_del_leg (struct clt_sess *s, struct clt_leg *leg)
{
  g_mutex_lock (&s->lock);
  g_ptr_array_remove (s->legs, leg);
  g_mutex_unlock (&s->lock);
}

/* The session's transport has written a sub's request (or failed to). */
static void
sub_sent (struct rmr_send *snd, int err)
{
  struct clt_sub *sub = container_of (snd, struct clt_sub, snd);
  struct clt_req *req = sub->req;

  /* The slot is in the table: breaking the connection makes its receive
   * thread fail it (and every other request on it).
   */
  if (err < 0)
    rmr_conn_shutdown (sub->sess->conn);
  if (atomic_fetch_sub (&req->pending, 1) == 1)
    rmr_futex_wake (&req->pending);
}

void
clt_sess_submit (struct clt_sub *sub, struct rmr_hdr *hdr,
                 const struct iovec *iov, int iovcnt)
{
  struct clt_leg *leg = sub->leg;
  struct clt_sess *s = sub->sess;
  char msg[700];
  int i;

  g_mutex_lock (&s->lock);
  while (!s->down && (s->free_head < 0 || leg->inflight >= leg->queue_depth)) {
    s->waiters++;
    g_cond_wait (&s->cond, &s->lock);
    s->waiters--;
  }
  if (s->down) {
    snprintf (msg, sizeof msg, "%s", s->down_reason);
    g_mutex_unlock (&s->lock);
    clt_sub_complete (sub, -ENOTCONN, msg);
    return;
  }
  i = s->free_head;
  s->free_head = s->slots[i].next_free;
  s->slots[i].sub = sub;
  s->slots[i].seq++;
  hdr->tag = (uint64_t) s->slots[i].seq << 32 | (uint32_t) i;
  leg->inflight++;
  g_mutex_unlock (&s->lock);

  /* Queued: a thread sending on the session meanwhile sends it with its
   * own (transport-tcp-send.c); the caller's wait covers the send.
   */
  sub->snd = (struct rmr_send){
    .hdr = *hdr, .iov = iov, .iovcnt = iovcnt, .done = sub_sent};
  atomic_fetch_add (&sub->req->pending, 1);
  rmr_conn_send_async (s->conn, &sub->snd);
}

int
clt_threads_suspend (void)
{
  GHashTableIter it;
  gpointer k, v;

  g_mutex_lock (&g_sess_lock);
  if (g_sessions) {
    g_hash_table_iter_init (&it, g_sessions);
    while (g_hash_table_iter_next (&it, &k, &v))
      rmr_conn_pause (((struct clt_sess *) v)->conn);
  }
  g_mutex_unlock (&g_sess_lock);
  return 0;
}

int
clt_threads_resume (void)
{
  GHashTableIter it;
  gpointer k, v;
  int r = 0;

  g_mutex_lock (&g_sess_lock);
  if (g_sessions) {
    g_hash_table_iter_init (&it, g_sessions);
    while (g_hash_table_iter_next (&it, &k, &v))
      if (rmr_conn_resume (((struct clt_sess *) v)->conn) < 0)
        r = -errno;
  }
  g_mutex_unlock (&g_sess_lock);
  return r;
}
