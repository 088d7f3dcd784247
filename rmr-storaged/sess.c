/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connections from clients and peers [rmr_srv_sess]: requests, credits,
 * replies and the control messages; the IO path itself is sess-io.c.
 *
 * Each accepted transport connection is a struct srv_conn.  Its receive
 * thread (transport) hands us every message: control messages (JOIN,
 * ENABLE, LEAVE) are handled there and answered at once; IO messages are
 * checked (pool_io_begin) and submitted to the store (sess-io.c), whose
 * completion thread sends the reply.  A write's payload is received straight into an
 * aligned buffer of its request, which goes to the store as is.
 *
 * Requests come from a per-connection free list, so the hot path does not
 * allocate once the list is warm; a buffer grows when a larger IO needs
 * it.  A bad message closes the connection (the transport logs the
 * reason through our down callback); a refused IO gets an error reply
 * with a one-line message.
 *
 * Server limits (issue 8): every pool session has the queue depth its
 * JOIN announced as credits (struct srv_credit): an IO or map request
 * holds one from admission until its request is released, just after its
 * reply went out.  The client takes a credit per request of the leg
 * (clt_sess_submit) and returns it only when the whole reply arrived, so
 * a well-behaved peer never has more on the server; the only overlap is
 * a reply sent by a completion thread that has not released its request
 * yet, which admission waits out (CREDIT_GRACE_US).  A peer still over
 * its queue depth then broke the protocol and is disconnected, logged.
 * Control messages (JOIN, ENABLE, LEAVE, AL_GET) are answered at once on
 * the receive thread and take no credit (the client counts them, so they
 * only leave it more room).  Request memory is bounded per connection:
 * the free list keeps at most free_max requests and REQ_FREE_BYTES of
 * buffers no larger than REQ_BUF_KEEP (larger ones are mmapped and
 * unmapped on release, so memory goes back after a burst), and all
 * buffers of a connection, in flight or free, stay under CONN_BUF_MAX:
 * past it the receive thread waits for memory to come back (the peer is
 * slowed down by TCP), and answers ENOMEM if none does.
 *
 * Lifetime: a srv_conn holds one reference for its receive side and one
 * per request in flight; the last reference closes the transport
 * connection and frees it.  The pool sessions (srv_psess) of a
 * connection are only touched on its receive thread (join, leave, IO
 * dispatch, down), so they need no lock of their own.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "internal.h"
#include "jhash.h"
#include "tls.h"
#include "parse.h"
#include "ratelimit.h"
#include "transport.h"
#include "util.h"

#define REQ_BUF_MIN (128 * 1024)

/* Request memory (see the top).  A buffer above REQ_BUF_KEEP is mmapped
 * and unmapped when its request is released: a malloc'd one would often
 * stay in the heap, counted in our RSS.  The free list keeps at most
 * REQ_FREE_MAX requests (fewer if the connection's queue depths add up
 * to less) and REQ_FREE_BYTES of buffers: enough to serve the default
 * queue depth of IO up to 256 KiB without allocating.  CONN_BUF_MAX lets
 * the default queue depth (128) of 2 MiB IO run without waiting.
 */
#define REQ_BUF_KEEP (1024 * 1024)
#define REQ_FREE_MAX 256
#define REQ_FREE_BYTES (32 * 1024 * 1024)
#define CONN_BUF_MAX ((size_t) 256 * 1024 * 1024)
#define CONN_BUF_WAIT_US (10 * G_TIME_SPAN_SECOND)
/* How long admission waits for a completion thread that has sent a reply
 * to release its request (microseconds after the send, unless the thread
 * is descheduled): a peer over its queue depth for longer broke the
 * protocol.
 */
#define CREDIT_GRACE_US (2 * G_TIME_SPAN_SECOND)

/* The connection whose messages this thread is handling now (its
 * receive thread), or NULL on any other thread.
 */
static __thread struct srv_conn *tl_conn;

bool
sess_on_receive_thread (const struct srv_conn *c)
{
  return tl_conn == c;
}

static GMutex g_listen_lock;
static GPtrArray *g_listeners; /* struct rmr_listener * */

/* Connection limits (issue 9, DESIGN 9); set once before listening. */
static struct sess_limits g_limits = {
  .max_connections = SESS_DEFAULT_MAX_CONNECTIONS,
  .max_handshakes = RMR_DEFAULT_MAX_HANDSHAKES,
  .handshake_timeout_ms = RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS,
};
static atomic_uint g_nconns; /* srv_conns alive */

/* Refusals are logged at most ten a second (a scan or a flood must not
 * fill the log); the rest are counted and summed up.
 */
static struct rmr_ratelimit g_refused = RMR_RATELIMIT_INIT (10);

static void *
req_buf_alloc (size_t cap)
{
  void *p;

  if (cap <= REQ_BUF_KEEP)
    return store_buf_alloc (cap);
  /* Page aligned: enough for O_DIRECT, as store_buf_alloc. */
  p = mmap (NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
            0);
  return p == MAP_FAILED ? NULL : p;
}

static void
req_buf_free (void *buf, size_t cap)
{
  if (!buf)
    return;
  if (cap <= REQ_BUF_KEEP)
    store_buf_free (buf);
  else if (munmap (buf, cap) != 0)
    abort ();
}

static void
req_free (struct srv_req *r)
{
  req_buf_free (r->buf, r->bufcap);
  g_free (r);
}

static void
conn_put (struct srv_conn *c)
{
  struct srv_req *r;

  if (atomic_fetch_sub (&c->refs, 1) != 1)
    return;
  while ((r = c->free_reqs) != NULL) {
    c->free_reqs = r->next;
    req_free (r);
  }
  g_ptr_array_unref (c->credits);
  g_ptr_array_unref (c->psess);
  g_mutex_clear (&c->free_lock);
  g_cond_clear (&c->free_cond);
  rmr_conn_close (c->conn);
  g_free (c);
  atomic_fetch_sub (&g_nconns, 1);
}

/* Take cap bytes of the connection's buffer budget (receive thread).
 * Buffers on the free list go first; then the replies gathered in this
 * batch are sent (releasing their requests) and we wait for requests in
 * flight to come back.  -ENOMEM if none do in time.
 */
static int
buf_reserve (struct srv_conn *c, size_t cap)
{
  gint64 end = g_get_monotonic_time () + CONN_BUF_WAIT_US;
  struct srv_req *r, *drop = NULL, **pp;
  bool flushed = false;
  int ret = 0;

  g_mutex_lock (&c->free_lock);
  while (c->buf_bytes + cap > CONN_BUF_MAX) {
    if (c->free_bytes) {
      for (pp = &c->free_reqs; (r = *pp) != NULL;) {
        *pp = r->next;
        c->nfree--;
        c->free_bytes -= r->bufcap;
        c->buf_bytes -= r->bufcap;
        r->next = drop;
        drop = r;
      }
      continue;
    }
    if (!flushed) {
      flushed = true;
      g_mutex_unlock (&c->free_lock);
      sess_flush_replies (c);
      g_mutex_lock (&c->free_lock);
      continue;
    }
    c->waiters++;
    if (!g_cond_wait_until (&c->free_cond, &c->free_lock, end) &&
        c->buf_bytes + cap > CONN_BUF_MAX) {
      c->waiters--;
      ret = -ENOMEM;
      break;
    }
    c->waiters--;
  }
  if (ret == 0)
    c->buf_bytes += cap;
  g_mutex_unlock (&c->free_lock);
  while ((r = drop) != NULL) {
    drop = r->next;
    req_free (r);
  }
  return ret;
}

/* A request for the message being received, for the session of
 * c->admit (its credit is taken: the caller checked credit_admit).  On
 * the receive thread only.  NULL when memory is short.
 */
struct srv_req *
sess_req_get (struct srv_conn *c, size_t len)
{
  struct srv_credit *cr = c->admit;
  struct srv_req *r;
  size_t cap;
  void *buf;

  assert (cr);
  g_mutex_lock (&c->free_lock);
  r = c->free_reqs;
  if (r) {
    c->free_reqs = r->next;
    c->nfree--;
    c->free_bytes -= r->bufcap;
  }
  g_mutex_unlock (&c->free_lock);
  if (!r) {
    r = g_try_new0 (struct srv_req, 1);
    if (!r)
      return NULL;
  }
  if (len > r->bufcap) {
    cap = MAX (round_up (len, REQ_BUF_MIN), REQ_BUF_MIN);
    /* The old buffer goes first: it counts against the budget. */
    req_buf_free (r->buf, r->bufcap);
    g_mutex_lock (&c->free_lock);
    c->buf_bytes -= r->bufcap;
    g_mutex_unlock (&c->free_lock);
    r->buf = NULL;
    r->bufcap = 0;
    if (buf_reserve (c, cap) < 0) {
      g_free (r);
      return NULL;
    }
    buf = req_buf_alloc (cap);
    if (!buf) {
      g_mutex_lock (&c->free_lock);
      c->buf_bytes -= cap;
      g_mutex_unlock (&c->free_lock);
      g_free (r);
      return NULL;
    }
    r->buf = buf;
    r->bufcap = cap;
  }
  g_mutex_lock (&c->free_lock);
  cr->inflight++;
  g_mutex_unlock (&c->free_lock);
  r->credit = cr;
  r->conn = c;
  atomic_fetch_add (&c->refs, 1);
  return r;
}

/* Release a request (its reply was sent, or there is none): its credit
 * goes back, and it is kept for the next one within the free list's
 * bounds, or freed.
 */
void
sess_req_put (struct srv_req *r)
{
  struct srv_conn *c = r->conn;
  void *buf = NULL;
  size_t cap = 0;
  bool keep;

  g_mutex_lock (&c->free_lock);
  assert (r->credit && r->credit->inflight > 0);
  r->credit->inflight--;
  r->credit = NULL;
  if (r->bufcap > REQ_BUF_KEEP || c->free_bytes + r->bufcap > REQ_FREE_BYTES) {
    buf = r->buf;
    cap = r->bufcap;
    c->buf_bytes -= cap;
    r->buf = NULL;
    r->bufcap = 0;
  }
  keep = c->nfree < c->free_max;
  if (keep) {
    r->next = c->free_reqs;
    c->free_reqs = r;
    c->nfree++;
    c->free_bytes += r->bufcap;
  }
  else
    c->buf_bytes -= r->bufcap;
  if (c->waiters)
    g_cond_broadcast (&c->free_cond);
  g_mutex_unlock (&c->free_lock);
  req_buf_free (buf, cap);
  if (!keep)
    req_free (r);
  conn_put (c);
}

static struct srv_credit *
credit_find (struct srv_conn *c, uint32_t group_id)
{
  unsigned i;

  for (i = 0; i < c->credits->len; i++) {
    struct srv_credit *cr = g_ptr_array_index (c->credits, i);
    if (cr->group_id == group_id)
      return cr;
  }
  return NULL;
}

/* A session joined with queue depth limit (receive thread). */
static void
credit_set (struct srv_conn *c, uint32_t group_id, unsigned limit)
{
  struct srv_credit *cr = credit_find (c, group_id);
  unsigned i, sum = 0;

  g_mutex_lock (&c->free_lock);
  if (!cr) {
    cr = g_new0 (struct srv_credit, 1);
    cr->group_id = group_id;
    g_ptr_array_add (c->credits, cr);
  }
  cr->limit = limit;
  for (i = 0; i < c->credits->len; i++)
    sum += ((struct srv_credit *) g_ptr_array_index (c->credits, i))->limit;
  c->free_max = MIN (sum, REQ_FREE_MAX);
  g_mutex_unlock (&c->free_lock);
}

/* May ps take one more request?  Its credits are c->admit.  If not, a
 * protocol violation: logged, the connection is shut down and whatever
 * else it sends is ignored.
 */
static bool
credit_admit (struct srv_conn *c, struct srv_psess *ps,
              const struct rmr_hdr *hdr)
{
  struct srv_credit *cr = c->admit;
  gint64 end = 0;
  unsigned inflight, limit;
  bool ok;

  g_mutex_lock (&c->free_lock);
  while (!(ok = cr->inflight < cr->limit)) {
    if (!end)
      end = g_get_monotonic_time () + CREDIT_GRACE_US;
    c->waiters++;
    if (!g_cond_wait_until (&c->free_cond, &c->free_lock, end)) {
      c->waiters--;
      ok = cr->inflight < cr->limit;
      break;
    }
    c->waiters--;
  }
  inflight = cr->inflight;
  limit = cr->limit;
  g_mutex_unlock (&c->free_lock);
  if (ok)
    return true;
  g_warning ("connection %s: session %s of pool %s sent a %s over its "
             "queue depth of %u (%u requests in flight): protocol "
             "violation, disconnecting",
             c->conn->peer_name, ps->sessname, ps->pool->name,
             rmr_msg_type_name (hdr->type), limit, inflight);
  c->violated = true;
  rmr_conn_shutdown (c->conn);
  return false;
}

/* Which role may send which message (role.c): anything else from a
 * joined session is a protocol violation, logged, and the connection is
 * closed.  Returns whether hdr may go on.
 */
static bool
check_role (struct srv_conn *c, struct srv_psess *ps, const struct rmr_hdr *hdr)
{
  if (role_allows (ps->sync ? ROLE_SYNC : ROLE_CLIENT, hdr, NULL))
    return true;
  g_warning ("connection %s: %s session %s of pool %s sent a '%s' "
             "message%s, which that role may not: protocol violation, "
             "disconnecting",
             c->conn->peer_name, ps->sync ? "sync" : "client", ps->sessname,
             ps->pool->name, rmr_msg_type_name (hdr->type),
             hdr->flags & RMR_HF_WATCH ? " (watch)" : "");
  c->violated = true;
  rmr_conn_shutdown (c->conn);
  return false;
}

static void
send_reply (struct srv_conn *c, const struct rmr_hdr *req, int status,
            const void *payload, size_t len, uint32_t member_id,
            uint32_t dirty_mask, uint16_t flags)
{
  struct rmr_hdr h = {
    .type = req->type,
    .flags = RMR_HF_REPLY | (req->flags & RMR_HF_WATCH) | flags,
    .group_id = req->group_id,
    .member_id = member_id,
    .generation = req->generation,
    .tag = req->tag,
    .offset = req->offset,
    .length = req->length,
    .payload_len = len,
    .status = status < 0 ? -status : status,
    .dirty_mask = dirty_mask,
  };
  struct iovec iov = {.iov_base = (void *) payload, .iov_len = len};

  /* A failed send means the connection is going down; its receive
   * thread tidies up.
   */
  rmr_conn_send (c->conn, &h, &iov, len ? 1 : 0);
}

void
sess_reply (struct srv_conn *c, const struct rmr_hdr *req, int status,
            const void *payload, size_t len, uint32_t member_id)
{
  send_reply (c, req, status, payload, len, member_id, 0, 0);
}

void
sess_reply_zeroes (struct srv_conn *c, const struct rmr_hdr *req,
                   uint32_t member_id)
{
  send_reply (c, req, 0, NULL, 0, member_id, 0, RMR_HF_ZEROES);
}

void
sess_reply_mask (struct srv_conn *c, const struct rmr_hdr *req,
                 const void *payload, size_t len, uint32_t member_id,
                 uint32_t dirty_mask)
{
  send_reply (c, req, 0, payload, len, member_id, dirty_mask, 0);
}

void
sess_reply_error (struct srv_conn *c, const struct rmr_hdr *req, int status,
                  const char *msg, struct srv_psess *ps)
{
  size_t len = MIN (strlen (msg), RMR_ERRMSG_MAX);

  sess_reply (c, req, status, msg, len,
              ps ? ps->pool->member_id : RMR_MEMBER_NONE);
}

static struct srv_psess *
find_psess (struct srv_conn *c, uint32_t group_id)
{
  unsigned i;

  for (i = 0; i < c->psess->len; i++) {
    struct srv_psess *ps = g_ptr_array_index (c->psess, i);
    if (ps->pool->group_id == group_id)
      return ps;
  }
  return NULL;
}

static void
drop_psess (struct srv_conn *c, struct srv_psess *ps, bool graceful,
            bool quiesced)
{
  pool_sess_leave (ps, graceful, quiesced);
  g_ptr_array_remove (c->psess, ps);
  pool_put (ps->pool);
  g_free (ps);
}

static void
handle_join (struct srv_conn *c, const struct rmr_hdr *hdr,
             const uint8_t *payload)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct rmr_join_req req;
  struct rmr_join_rep rep;
  uint8_t buf[RMR_JOIN_REP_SIZE];
  struct srv_pool *p;
  struct srv_psess *ps;
  int r;

  if (rmr_join_req_decode (payload, &req) < 0) {
    sess_reply_error (c, hdr, EPROTO, rmr_get_error (), NULL);
    return;
  }
  if (hdr->group_id != rmr_group_id (req.pool_name)) {
    sess_reply_error (c, hdr, EPROTO, "group_id does not match the pool name",
                      NULL);
    return;
  }
  if (find_psess (c, hdr->group_id)) {
    sess_reply_error (c, hdr, EEXIST, "this connection joined the pool already",
                      NULL);
    return;
  }
  p = pool_find (req.pool_name);
  if (!p) {
    g_string_printf (err, "no pool '%s' on this node (join_pool first)",
                     req.pool_name);
    g_warning ("join from %s refused: %s", c->conn->peer_name, err->str);
    sess_reply_error (c, hdr, ENOENT, err->str, NULL);
    return;
  }
  if (req.flags & RMR_JOIN_REQ_F_PROBE) {
    r = pool_sess_join (p, NULL, &req, hdr->generation, &rep, err);
    pool_put (p);
    if (r < 0) {
      g_info ("pool %s: probe of %s from %s refused: %s", req.pool_name,
              req.sessname, c->conn->peer_name, err->str);
      sess_reply_error (c, hdr, r, err->str, NULL);
      return;
    }
    rmr_join_rep_encode (&rep, buf);
    sess_reply (c, hdr, 0, buf, sizeof buf, rep.member_id);
    return;
  }
  ps = g_new0 (struct srv_psess, 1);
  ps->pool = p;
  ps->conn = c;
  ps->mode = req.mode;
  ps->sync = req.sync != 0;
  snprintf (ps->sessname, sizeof ps->sessname, "%s", req.sessname);
  snprintf (ps->peer, sizeof ps->peer, "%s", c->conn->peer_name);
  r = pool_sess_join (p, ps, &req, hdr->generation, &rep, err);
  if (r < 0) {
    g_warning ("pool %s: join of %s from %s refused: %s", p->name, req.sessname,
               c->conn->peer_name, err->str);
    sess_reply_error (c, hdr, r, err->str, NULL);
    pool_put (p);
    g_free (ps);
    return;
  }
  g_ptr_array_add (c->psess, ps);
  /* The client's credits are the queue depth it asks for here (its
   * legs' queue_depth), not the store's rep.queue_depth.
   */
  credit_set (c, hdr->group_id, req.queue_depth);
  rmr_join_rep_encode (&rep, buf);
  sess_reply (c, hdr, 0, buf, sizeof buf, p->member_id);
}

/* AL_GET: this member's recent-write record and what it knows of the
 * other members, for an assemble or a hand-over.
 */
static void
reply_al (struct srv_conn *c, const struct rmr_hdr *hdr, struct srv_psess *ps)
{
  struct srv_pool *p = ps->pool;
  g_autofree struct rmr_al_rep *rep = g_new0 (struct rmr_al_rep, 1);
  g_autofree uint8_t *buf = NULL;
  struct al_info info = {0};
  unsigned i;

  g_mutex_lock (&p->lock);
  if (!p->maps) {
    g_mutex_unlock (&p->lock);
    sess_reply_error (c, hdr, EAGAIN,
                      "no recent-write record: the pool was "
                      "never enabled on this member",
                      ps);
    return;
  }
  /* Before the record is read: a failure in between is kept. */
  if (!ps->sync)
    pool_mark_seen_unlocked (p, ps);
  al_info (maps_al (p->maps), &info);
  g_mutex_lock (&p->store->md_lock);
  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    rep->states[i] = p->store->sb.members[i].state;
  g_mutex_unlock (&p->store->md_lock);
  g_mutex_unlock (&p->lock);

  rep->flags =
    (info.clean ? RMR_AL_F_CLEAN : 0) | (info.lost ? RMR_AL_F_LOST : 0);
  rep->shift = info.shift;
  rep->writes = info.writes;
  if (info.extents->len > RMR_AL_MAX_EXTENTS)
    rep->flags |= RMR_AL_F_LOST; /* too many to tell: all may differ */
  else
    for (i = 0; i < info.extents->len; i++)
      rep->extents[rep->n++] = g_array_index (info.extents, uint32_t, i);
  g_array_unref (info.extents);
  buf = g_malloc (RMR_AL_REP_HDR + 4 * rep->n);
  rmr_al_rep_encode (rep, buf);
  sess_reply (c, hdr, 0, buf, RMR_AL_REP_HDR + 4 * rep->n, p->member_id);
}

static void
handle_control (struct srv_conn *c, const struct rmr_hdr *hdr,
                struct srv_psess *ps, const uint8_t *payload)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct rmr_enable_req en;
  int r;

  switch (hdr->type) {
  case RMR_MSG_ENABLE:
    if (rmr_enable_req_decode (payload, &en) < 0) {
      sess_reply_error (c, hdr, EPROTO, rmr_get_error (), ps);
      return;
    }
    r = pool_sess_enable (ps, &en, err);
    if (r < 0) {
      g_warning ("pool %s: enable by %s refused: %s", ps->pool->name,
                 ps->sessname, err->str);
      sess_reply_error (c, hdr, r, err->str, ps);
      return;
    }
    sess_reply (c, hdr, 0, NULL, 0, ps->pool->member_id);
    return;
  case RMR_MSG_AL_GET: reply_al (c, hdr, ps); return;
  case RMR_MSG_LEAVE: {
    /* Gone before the reply: a peer whose del_sess returned may count
     * on this pool having no session of it (the admin guide's next step
     * is leave_pool here).
     */
    uint32_t member_id = ps->pool->member_id;
    drop_psess (c, ps, true, hdr->flags & RMR_HF_QUIESCED);
    sess_reply (c, hdr, 0, NULL, 0, member_id);
    return;
  }
  default: abort ();
  }
}

/* Send the replies gathered during a receive batch, then release their
 * requests (the read replies' payloads are their buffers).
 */
void
sess_flush_replies (struct srv_conn *c)
{
  unsigned i, n = c->npend;

  if (!n)
    return;
  c->npend = 0;
  /* A failed send means the connection is going down. */
  rmr_conn_send_many (c->conn, c->pend, n);
  for (i = 0; i < n; i++)
    sess_req_put (c->pend_req[i]);
}

static void
conn_batch_end (void *opaque)
{
  struct srv_conn *c = opaque;

  sess_flush_replies (c);
  tl_conn = NULL;
}

/* A sync session's read, checksum and map messages name the member they
 * are meant for (member_id; RMR_MEMBER_NONE: any): the peer chose this
 * member, and acting as another (its session re-pointed, its index
 * reused, a node replaced at the same address) could clear a bit by a
 * watch of an earlier fetch, or serve data the peer did not choose.
 * Refused with ECANCELED before anything is done.  Returns whether hdr
 * may go on.
 */
static bool
check_addressee (struct srv_conn *c, struct srv_psess *ps,
                 const struct rmr_hdr *hdr)
{
  char msg[160];

  if (!ps->sync || hdr->member_id == RMR_MEMBER_NONE ||
      hdr->member_id == ps->pool->member_id ||
      (hdr->type != RMR_MSG_READ && hdr->type != RMR_MSG_CSUM &&
       hdr->type != RMR_MSG_MAP_GET && hdr->type != RMR_MSG_MAP_CLEAR))
    return true;
  snprintf (msg, sizeof msg,
            "member_id %" PRIu32 ": addressed to another member; this is "
            "member %" PRIu32,
            hdr->member_id, ps->pool->member_id);
  sess_reply_error (c, hdr, ECANCELED, msg, ps);
  return false;
}

static void *
conn_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct srv_conn *c = opaque;
  struct srv_psess *ps;

  if (hdr->flags & RMR_HF_REPLY || c->violated)
    return NULL; /* we sent no request, or we are closing: discard */
  if (hdr->type == RMR_MSG_WRITE || hdr->type == RMR_MSG_MAP_ADD) {
    /* Admission comes before the buffer; not joined: refused. */
    ps = find_psess (c, hdr->group_id);
    if (!ps)
      return NULL;
    /* A message its role may not send takes no credit and no buffer:
     * discarded as it arrives, then refused (conn_message, check_role).
     */
    if (!role_allows (ps->sync ? ROLE_SYNC : ROLE_CLIENT, hdr, NULL))
      return NULL;
    c->admit = credit_find (c, hdr->group_id);
    if (!credit_admit (c, ps, hdr))
      return NULL;
    c->cur = sess_req_get (c, hdr->payload_len);
    return c->cur ? c->cur->buf : NULL;
  }
  if (hdr->payload_len <= sizeof c->ctlbuf)
    return c->ctlbuf;
  return NULL;
}

static void
conn_message (void *opaque, const struct rmr_hdr *hdr, void *payload)
{
  struct srv_conn *c = opaque;
  struct srv_req *cur = c->cur;
  struct srv_psess *ps;

  c->cur = NULL;
  tl_conn = c; /* until conn_batch_end */
  if (hdr->flags & RMR_HF_REPLY || c->violated) {
    if (cur)
      sess_req_put (cur);
    return;
  }
  if (hdr->type == RMR_MSG_JOIN) {
    handle_join (c, hdr, payload);
    return;
  }
  ps = find_psess (c, hdr->group_id);
  if (!ps) {
    sess_reply_error (c, hdr, ENOTCONN, "not joined to this pool", NULL);
    if (cur)
      sess_req_put (cur);
    return;
  }
  if (!check_role (c, ps, hdr) || !check_addressee (c, ps, hdr)) {
    if (cur)
      sess_req_put (cur);
    return;
  }
  /* IO and map messages hold a credit of their session (see the top);
   * a write's or map-add's was taken with its buffer.
   */
  c->admit = credit_find (c, hdr->group_id);
  assert (c->admit);
  if (!cur && hdr->type != RMR_MSG_ENABLE && hdr->type != RMR_MSG_LEAVE &&
      hdr->type != RMR_MSG_AL_GET && !credit_admit (c, ps, hdr))
    return;
  switch (hdr->type) {
  case RMR_MSG_ENABLE:
  case RMR_MSG_LEAVE:
  case RMR_MSG_AL_GET: handle_control (c, hdr, ps, payload); return;
  case RMR_MSG_WRITE:
    if (!cur) {
      sess_reply_error (c, hdr, ENOMEM, "out of memory for the IO buffer", ps);
      return;
    }
    sess_handle_io (c, hdr, ps, cur);
    return;
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    if (hdr->payload_len && !cur) {
      sess_reply_error (c, hdr, ENOMEM, "out of memory for the map", ps);
      return;
    }
    sess_handle_map (c, hdr, ps, cur);
    return;
  default: sess_handle_io (c, hdr, ps, NULL);
  }
}

static void
conn_down (void *opaque, int errnum, const char *reason)
{
  struct srv_conn *c = opaque;

  sess_flush_replies (c);
  tl_conn = NULL;
  if (c->cur) {
    sess_req_put (c->cur);
    c->cur = NULL;
  }
  if (errnum == EPROTO)
    g_warning ("connection %s closed: %s", c->conn->peer_name, reason);
  else
    g_info ("connection %s closed: %s", c->conn->peer_name, reason);
  while (c->psess->len)
    drop_psess (c, g_ptr_array_index (c->psess, 0), false, false);
  conn_put (c);
}

static const struct rmr_conn_handler conn_handler = {
  .payload_buf = conn_payload_buf,
  .message = conn_message,
  .batch_end = conn_batch_end,
  .down = conn_down,
};

static void
on_refused (void *opaque, const char *peer, const char *identity,
            const char *reason)
{
  unsigned dropped;
  bool log = rmr_ratelimit (&g_refused, g_get_monotonic_time (), &dropped);

  if (dropped)
    g_warning ("%u more connections refused in the last second (not logged "
               "one by one)",
               dropped);
  if (!log)
    return;
  if (*identity)
    g_warning ("refused connection from %s (TLS identity '%s'): %s", peer,
               identity, reason);
  else
    g_warning ("refused connection from %s: %s", peer, reason);
}

static int
on_accept (void *opaque, struct rmr_conn *conn,
           const struct rmr_conn_handler **h, void **conn_opaque)
{
  struct srv_conn *c;
  char reason[80];

  if (atomic_fetch_add (&g_nconns, 1) >= g_limits.max_connections) {
    atomic_fetch_sub (&g_nconns, 1);
    snprintf (reason, sizeof reason, "%u connections open (max_connections)",
              g_limits.max_connections);
    on_refused (NULL, conn->peer_name, conn->identity, reason);
    return -1;
  }
  c = g_new0 (struct srv_conn, 1);
  c->conn = conn;
  atomic_store (&c->refs, 1);
  g_mutex_init (&c->free_lock);
  g_cond_init (&c->free_cond);
  c->credits = g_ptr_array_new_with_free_func (g_free);
  c->psess = g_ptr_array_new ();
  *h = &conn_handler;
  *conn_opaque = c;
  if (*conn->identity)
    g_info ("connection from %s (TLS identity '%s', %s)", conn->peer_name,
            conn->identity, conn->security);
  else
    g_info ("connection from %s (%s)", conn->peer_name, conn->security);
  return 0;
}

void
sess_set_limits (const struct sess_limits *limits)
{
  g_limits = *limits;
}

int
sess_listen (const struct rmr_addr *addr)
{
  struct rmr_listener *l;
  char name[300];
  int r;

  struct rmr_listen_opts opts = {
    .max_handshakes = g_limits.max_handshakes,
    .handshake_timeout_ms = g_limits.handshake_timeout_ms,
    .refused = on_refused,
  };
  const struct rmr_tls *tls = rmr_tls_current ();

  r = rmr_listen (addr, &opts, on_accept, NULL, &l);
  if (r < 0)
    return r;
  rmr_addr_format (addr, name, sizeof name);
  g_message ("listening on %s (tls=%s%s%s)", name,
             rmr_tls_mode_name (rmr_tls_mode (tls)),
             rmr_tls_mode (tls) != RMR_TLS_OFF ? ", identity " : "",
             rmr_tls_username (tls));
  if (!rmr_addr_is_loopback (addr)) {
    if (rmr_tls_mode (tls) == RMR_TLS_OFF)
      g_warning ("listening on %s without TLS keys: anyone who can reach "
                 "this port can take over every pool of this node (set "
                 "tls_psk)",
                 name);
    else if (rmr_tls_mode (tls) == RMR_TLS_ON)
      g_warning ("listening on %s with tls=on: plaintext sessions are "
                 "accepted too, and anyone who can reach this port can take "
                 "over every pool of this node (set tls=require)",
                 name);
    if (addr->kind == RMR_TRANSPORT_UCX)
      g_warning ("listening on %s: ucx sessions are authenticated with the "
                 "keys but never encrypted: anyone on the fabric can read "
                 "them (use ucx on a trusted network, tcp with TLS "
                 "elsewhere)",
                 name);
  }
  g_mutex_lock (&g_listen_lock);
  if (!g_listeners)
    g_listeners = g_ptr_array_new ();
  g_ptr_array_add (g_listeners, l);
  g_mutex_unlock (&g_listen_lock);
  return 0;
}

void
sess_stop_listeners (void)
{
  unsigned i;

  g_mutex_lock (&g_listen_lock);
  for (i = 0; g_listeners && i < g_listeners->len; i++)
    rmr_listener_close (g_ptr_array_index (g_listeners, i));
  if (g_listeners)
    g_ptr_array_set_size (g_listeners, 0);
  g_mutex_unlock (&g_listen_lock);
}
