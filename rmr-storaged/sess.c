/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connections from clients and peers [rmr_srv_sess] and the server side
 * of the IO path.
 *
 * Each accepted transport connection is a struct srv_conn.  Its receive
 * thread (transport) hands us every message: control messages (JOIN,
 * ENABLE, LEAVE) are handled there and answered at once; IO messages are
 * checked (pool_io_begin) and submitted to the store, whose completion
 * thread sends the reply.  A write's payload is received straight into an
 * aligned buffer of its request, which goes to the store as is.
 *
 * Requests come from a per-connection free list, so the hot path does not
 * allocate once the list is warm; a buffer grows when a larger IO needs
 * it.  A bad message closes the connection (the transport logs the
 * reason through our down callback); a refused IO gets an error reply
 * with a one-line message.
 *
 * Lifetime: a srv_conn holds one reference for its receive side and one
 * per request in flight; the last reference closes the transport
 * connection and frees it.  The pool sessions (srv_psess) of a
 * connection are only touched on its receive thread (join, leave, IO
 * dispatch, down), so they need no lock of their own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "internal.h"
#include "jhash.h"
#include "parse.h"
#include "transport.h"
#include "util.h"

#define REQ_BUF_MIN (128 * 1024)
#define BATCH_MAX 64

struct srv_req {
  struct store_io io;
  struct map_waiter mw;  /* waiting for dirty bits to be saved */
  struct sync_waiter sw; /* waiting for stale chunks to resync */
  struct al_waiter aw;   /* waiting for room in the recent-write record */
  struct srv_conn *conn;
  struct srv_pool *pool; /* outlives the IO: see pool.c */
  struct io_ctx ctx;
  bool al_held; /* its extents are pinned in the recent-write record */
  struct rmr_hdr hdr;
  void *buf;
  size_t bufcap;
  struct srv_req *next;
};

struct srv_conn {
  struct rmr_conn *conn;
  atomic_int refs;

  GMutex free_lock; /* protects free_reqs */
  struct srv_req *free_reqs;

  /* Receive thread only. */
  GPtrArray *psess;    /* struct srv_psess * joined here */
  struct srv_req *cur; /* request whose payload is arriving */
  uint8_t ctlbuf[RMR_ERRMSG_MAX + RMR_JOIN_REQ_SIZE];
  /* Replies of IO completed on the receive thread during one receive
   * batch, sent together at its end (their requests kept until then).
   */
  struct rmr_msg pend[BATCH_MAX];
  struct srv_req *pend_req[BATCH_MAX];
  unsigned npend;
};

/* The connection whose messages this thread is handling now (its
 * receive thread), or NULL on any other thread.
 */
static __thread struct srv_conn *tl_conn;

static GMutex g_listen_lock;
static GPtrArray *g_listeners; /* struct rmr_listener * */

static void
conn_put (struct srv_conn *c)
{
  struct srv_req *r;

  if (atomic_fetch_sub (&c->refs, 1) != 1)
    return;
  while ((r = c->free_reqs) != NULL) {
    c->free_reqs = r->next;
    store_buf_free (r->buf);
    g_free (r);
  }
  g_ptr_array_unref (c->psess);
  g_mutex_clear (&c->free_lock);
  rmr_conn_close (c->conn);
  g_free (c);
}

static struct srv_req *
req_get (struct srv_conn *c, size_t len)
{
  struct srv_req *r;

  g_mutex_lock (&c->free_lock);
  r = c->free_reqs;
  if (r)
    c->free_reqs = r->next;
  g_mutex_unlock (&c->free_lock);
  if (!r)
    r = g_new0 (struct srv_req, 1);
  if (len > r->bufcap) {
    size_t cap = MAX (round_up (len, REQ_BUF_MIN), REQ_BUF_MIN);
    void *buf = store_buf_alloc (cap);
    if (!buf) {
      g_mutex_lock (&c->free_lock);
      r->next = c->free_reqs;
      c->free_reqs = r;
      g_mutex_unlock (&c->free_lock);
      return NULL;
    }
    store_buf_free (r->buf);
    r->buf = buf;
    r->bufcap = cap;
  }
  r->conn = c;
  atomic_fetch_add (&c->refs, 1);
  return r;
}

static void
req_put (struct srv_req *r)
{
  struct srv_conn *c = r->conn;

  g_mutex_lock (&c->free_lock);
  r->next = c->free_reqs;
  c->free_reqs = r;
  g_mutex_unlock (&c->free_lock);
  conn_put (c);
}

static void
reply (struct srv_conn *c, const struct rmr_hdr *req, int status,
       const void *payload, size_t len, uint32_t member_id)
{
  struct rmr_hdr h = {
    .type = req->type,
    .flags = RMR_HF_REPLY,
    .group_id = req->group_id,
    .member_id = member_id,
    .generation = req->generation,
    .tag = req->tag,
    .offset = req->offset,
    .length = req->length,
    .payload_len = len,
    .status = status < 0 ? -status : status,
  };
  struct iovec iov = {.iov_base = (void *) payload, .iov_len = len};

  /* A failed send means the connection is going down; its receive
   * thread tidies up.
   */
  rmr_conn_send (c->conn, &h, &iov, len ? 1 : 0);
}

static void
reply_error (struct srv_conn *c, const struct rmr_hdr *req, int status,
             const char *msg, struct srv_psess *ps)
{
  size_t len = MIN (strlen (msg), RMR_ERRMSG_MAX);

  reply (c, req, status, msg, len, ps ? ps->pool->member_id : RMR_MEMBER_NONE);
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
drop_psess (struct srv_conn *c, struct srv_psess *ps, bool graceful)
{
  pool_sess_leave (ps, graceful);
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
    reply_error (c, hdr, EPROTO, rmr_get_error (), NULL);
    return;
  }
  if (hdr->group_id != rmr_group_id (req.pool_name)) {
    reply_error (c, hdr, EPROTO, "group_id does not match the pool name", NULL);
    return;
  }
  if (find_psess (c, hdr->group_id)) {
    reply_error (c, hdr, EEXIST, "this connection joined the pool already",
                 NULL);
    return;
  }
  p = pool_find (req.pool_name);
  if (!p) {
    g_string_printf (err, "no pool '%s' on this node (join_pool first)",
                     req.pool_name);
    g_warning ("join from %s refused: %s", c->conn->peer_name, err->str);
    reply_error (c, hdr, ENOENT, err->str, NULL);
    return;
  }
  ps = g_new0 (struct srv_psess, 1);
  ps->pool = p;
  ps->conn = c;
  ps->mode = req.mode;
  ps->sync = req.sync;
  snprintf (ps->sessname, sizeof ps->sessname, "%s", req.sessname);
  snprintf (ps->peer, sizeof ps->peer, "%s", c->conn->peer_name);
  r = pool_sess_join (p, ps, &req, hdr->generation, &rep, err);
  if (r < 0) {
    g_warning ("pool %s: join of %s from %s refused: %s", p->name, req.sessname,
               c->conn->peer_name, err->str);
    reply_error (c, hdr, r, err->str, NULL);
    pool_put (p);
    g_free (ps);
    return;
  }
  g_ptr_array_add (c->psess, ps);
  rmr_join_rep_encode (&rep, buf);
  reply (c, hdr, 0, buf, sizeof buf, p->member_id);
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
    reply_error (c, hdr, EAGAIN,
                 "no recent-write record: the pool was "
                 "never enabled on this member",
                 ps);
    return;
  }
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
  reply (c, hdr, 0, buf, RMR_AL_REP_HDR + 4 * rep->n, p->member_id);
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
      reply_error (c, hdr, EPROTO, rmr_get_error (), ps);
      return;
    }
    r = pool_sess_enable (ps, &en, err);
    if (r < 0) {
      g_warning ("pool %s: enable by %s refused: %s", ps->pool->name,
                 ps->sessname, err->str);
      reply_error (c, hdr, r, err->str, ps);
      return;
    }
    reply (c, hdr, 0, NULL, 0, ps->pool->member_id);
    return;
  case RMR_MSG_AL_GET: reply_al (c, hdr, ps); return;
  case RMR_MSG_LEAVE:
    reply (c, hdr, 0, NULL, 0, ps->pool->member_id);
    drop_psess (c, ps, true);
    return;
  default: abort ();
  }
}

/* Send the replies gathered during a receive batch, then release their
 * requests (the read replies' payloads are their buffers).
 */
static void
flush_replies (struct srv_conn *c)
{
  unsigned i, n = c->npend;

  if (!n)
    return;
  c->npend = 0;
  /* A failed send means the connection is going down. */
  rmr_conn_send_many (c->conn, c->pend, n);
  for (i = 0; i < n; i++)
    req_put (c->pend_req[i]);
}

static void
conn_batch_end (void *opaque)
{
  struct srv_conn *c = opaque;

  flush_replies (c);
  tl_conn = NULL;
}

/* The write is done (or refused): unpin its extents, and let writes
 * that waited for room in the record go on.
 */
static void
release_al (struct srv_req *r)
{
  struct al_waiter *w, *next;

  if (!r->al_held)
    return;
  r->al_held = false;
  for (w = al_end (r->ctx.al, r->hdr.offset, r->hdr.length); w; w = next) {
    next = w->next;
    w->resume (w);
  }
}

static void
io_done (struct store_io *io, int res)
{
  struct srv_req *r = (struct srv_req *) io;
  struct srv_pool *p = r->pool;
  bool is_read = r->hdr.type == RMR_MSG_READ;
  char msg[RMR_ERRMSG_MAX];

  release_al (r);
  sync_io_done (r->ctx.sync, &r->sw, res);
  pool_io_end (p, !is_read && r->hdr.type != RMR_MSG_FLUSH);
  if (res >= 0 && tl_conn == r->conn) {
    /* Completed on the receive thread: the reply goes with the batch. */
    struct srv_conn *c = r->conn;
    if (c->npend == BATCH_MAX)
      flush_replies (c);
    c->pend[c->npend] = (struct rmr_msg){
      .hdr = {.type = r->hdr.type,
              .flags = RMR_HF_REPLY,
              .group_id = r->hdr.group_id,
              .member_id = p->member_id,
              .generation = r->hdr.generation,
              .tag = r->hdr.tag,
              .offset = r->hdr.offset,
              .length = r->hdr.length,
              .payload_len = is_read ? r->hdr.length : 0},
      .iov = {.iov_base = r->buf, .iov_len = is_read ? r->hdr.length : 0},
    };
    c->pend_req[c->npend++] = r;
    return;
  }
  if (res < 0) {
    snprintf (msg, sizeof msg,
              "pool %s: member %" PRIu32 ": %s of %" PRIu32 " bytes at %" PRIu64
              ": %s",
              p->name, p->member_id, rmr_msg_type_name (r->hdr.type),
              r->hdr.length, r->hdr.offset, strerror (-res));
    if (res != -ENOTSUP)
      g_warning ("%s", msg);
    reply (r->conn, &r->hdr, res, msg, strlen (msg), p->member_id);
  }
  else
    reply (r->conn, &r->hdr, 0, r->buf, is_read ? r->hdr.length : 0,
           p->member_id);
  req_put (r);
}

static enum store_op
store_op_of (uint8_t type)
{
  switch (type) {
  case RMR_MSG_READ: return STORE_READ;
  case RMR_MSG_WRITE: return STORE_WRITE;
  case RMR_MSG_FLUSH: return STORE_FLUSH;
  case RMR_MSG_TRIM: return STORE_TRIM;
  default: return STORE_ZERO;
  }
}

/* Hand an admitted IO to its store. */
static void
submit_io (struct srv_req *r)
{
  char msg[RMR_ERRMSG_MAX];
  int ret;

  ret = pool_fault_hit (r->pool, r->io.op);
  if (ret) {
    /* As if the store had failed it: the reply goes the normal way. */
    r->io.done (&r->io, -ret);
    return;
  }
  ret = store_submit_inline (r->ctx.st, &r->io);
  if (ret < 0) {
    release_al (r);
    sync_io_done (r->ctx.sync, &r->sw, ret);
    pool_io_end (r->pool, false);
    snprintf (msg, sizeof msg, "store: submit: %s",
              rmr_get_error () ? rmr_get_error () : strerror (-ret));
    reply (r->conn, &r->hdr, ret, msg, strlen (msg), r->pool->member_id);
    req_put (r);
  }
}

/* The dirty bits a write carried are on disk: now the data. */
static void
io_marked (struct map_waiter *w, int err)
{
  struct srv_req *r = container_of (w, struct srv_req, mw);
  static const char msg[] = "the dirty map could not be saved";

  if (err) {
    release_al (r);
    sync_io_done (r->ctx.sync, &r->sw, err);
    pool_io_end (r->pool, true);
    reply (r->conn, &r->hdr, err, msg, sizeof msg - 1, r->pool->member_id);
    req_put (r);
    return;
  }
  submit_io (r);
}

/* Members that are not normal miss this write: their dirty bits are
 * saved before the write may complete (DESIGN 4).  Our own slot in the
 * mask would be nonsense (we are writing it) and is ignored.
 */
static void mark_and_submit (struct srv_req *r);

/* Room in the recent-write record: try again from the start. */
static void
al_resumed (struct al_waiter *w)
{
  mark_and_submit (container_of (w, struct srv_req, aw));
}

static void
mark_and_submit (struct srv_req *r)
{
  uint32_t mask = r->hdr.dirty_mask;
  uint64_t first, last;
  bool al_save = false;
  int ret;

  /* The recent-write record holds the extents before the write goes. */
  r->al_held = false;
  if (r->ctx.al &&
      (r->hdr.type == RMR_MSG_WRITE || r->hdr.type == RMR_MSG_TRIM ||
       r->hdr.type == RMR_MSG_ZERO)) {
    r->aw.resume = al_resumed;
    ret = al_begin (r->ctx.al, r->hdr.offset, r->hdr.length, &al_save, &r->aw);
    if (ret == 1)
      return; /* al_resumed goes on */
    if (ret < 0) {
      const char *msg = rmr_get_error ();
      pool_io_end (r->pool, true);
      sync_io_done (r->ctx.sync, &r->sw, ret);
      reply (r->conn, &r->hdr, ret, msg, strlen (msg), r->pool->member_id);
      req_put (r);
      return;
    }
    r->al_held = true;
  }

  if (r->ctx.my_slot >= 0)
    mask &= ~(1u << r->ctx.my_slot);
  if (mask) {
    unsigned shift = maps_chunk_shift (r->ctx.maps);
    first = r->hdr.offset >> shift;
    last = (r->hdr.offset + r->hdr.length - 1) >> shift;
    r->mw.done = io_marked;
    ret = maps_mark (r->ctx.maps, mask, first, last - first + 1, &r->mw);
    if (ret == 1)
      return; /* io_marked goes on */
    if (ret < 0) {
      const char *msg = rmr_get_error ();
      release_al (r);
      pool_io_end (r->pool, true);
      sync_io_done (r->ctx.sync, &r->sw, ret);
      reply (r->conn, &r->hdr, ret, msg, strlen (msg), r->pool->member_id);
      req_put (r);
      return;
    }
  }
  if (al_save) {
    r->mw.done = io_marked;
    ret = maps_save_wait (r->ctx.maps, &r->mw);
    if (ret == 1)
      return; /* io_marked goes on */
    if (ret < 0) {
      const char *msg = rmr_get_error ();
      release_al (r);
      pool_io_end (r->pool, true);
      sync_io_done (r->ctx.sync, &r->sw, ret);
      reply (r->conn, &r->hdr, ret, msg, strlen (msg), r->pool->member_id);
      req_put (r);
      return;
    }
  }
  submit_io (r);
}

/* The chunks of the IO are current here (or could not be made so). */
static void
io_gated (struct sync_waiter *w, int err)
{
  struct srv_req *r = container_of (w, struct srv_req, sw);
  char msg[RMR_ERRMSG_MAX];

  if (err) {
    snprintf (msg, sizeof msg,
              "pool %s: member %" PRIu32 " is stale there "
              "and no peer could resync it",
              r->pool->name, r->pool->member_id);
    pool_io_end (r->pool, r->hdr.type != RMR_MSG_READ);
    reply (r->conn, &r->hdr, err, msg, strlen (msg), r->pool->member_id);
    req_put (r);
    return;
  }
  mark_and_submit (r);
}

static void
handle_io (struct srv_conn *c, const struct rmr_hdr *hdr, struct srv_psess *ps,
           struct srv_req *r)
{
  g_autoptr (GString) err = g_string_new (NULL);
  int ret;

  if (!r) {
    r = req_get (c, hdr->type == RMR_MSG_READ ? hdr->length : 0);
    if (!r) {
      reply_error (c, hdr, ENOMEM, "out of memory for the IO buffer", ps);
      return;
    }
  }
  r->hdr = *hdr;
  r->pool = ps->pool;
  ret = pool_io_begin (ps, hdr, &r->ctx, err);
  if (ret < 0) {
    reply_error (c, hdr, ret, err->str, ps);
    req_put (r);
    return;
  }
  memset (&r->io, 0, sizeof r->io);
  r->io.op = store_op_of (hdr->type);
  r->io.buf = r->buf;
  r->io.offset = hdr->offset;
  r->io.len = hdr->length;
  r->io.done = io_done;
  r->io.opaque = r;
  if (hdr->flags & RMR_HF_FUA)
    r->io.flags |= STORE_F_FUA;
  if (hdr->flags & RMR_HF_MAY_TRIM)
    r->io.flags |= STORE_F_MAY_TRIM;
  if (hdr->flags & RMR_HF_FAST_ZERO)
    r->io.flags |= STORE_F_FAST_ZERO;

  /* Chunks this member is itself stale for are fetched from a peer
   * first (or claimed by a write covering them whole).
   */
  r->sw.go = io_gated;
  ret = sync_gate (r->ctx.sync, &r->sw, hdr->offset, hdr->length,
                   hdr->type == RMR_MSG_WRITE || hdr->type == RMR_MSG_ZERO);
  if (ret == 1)
    return; /* io_gated goes on */
  mark_and_submit (r);
}

/* Map messages ------------------------------------------------------------ */

static void
map_added (struct map_waiter *w, int err)
{
  struct srv_req *r = container_of (w, struct srv_req, mw);
  static const char msg[] = "the dirty map could not be saved";

  pool_io_end (r->pool, true);
  if (err)
    reply (r->conn, &r->hdr, err, msg, sizeof msg - 1, r->pool->member_id);
  else
    reply (r->conn, &r->hdr, 0, NULL, 0, r->pool->member_id);
  req_put (r);
}

static void
handle_map (struct srv_conn *c, const struct rmr_hdr *hdr, struct srv_psess *ps,
            struct srv_req *r)
{
  g_autoptr (GString) err = g_string_new (NULL);
  size_t nbytes = (hdr->length + 7) / 8;
  int ret;

  if (!r) {
    r = req_get (c, hdr->type == RMR_MSG_MAP_GET ? nbytes : 0);
    if (!r) {
      reply_error (c, hdr, ENOMEM, "out of memory for the map", ps);
      return;
    }
  }
  r->hdr = *hdr;
  r->pool = ps->pool;
  ret = pool_map_begin (ps, hdr, &r->ctx, err);
  if (ret < 0) {
    reply_error (c, hdr, ret, err->str, ps);
    req_put (r);
    return;
  }
  switch (hdr->type) {
  case RMR_MSG_MAP_GET:
    maps_get_bits (r->ctx.maps, __builtin_ctz (hdr->dirty_mask), hdr->offset,
                   hdr->length, r->buf);
    pool_io_end (r->pool, false);
    reply (c, hdr, 0, r->buf, nbytes, r->pool->member_id);
    req_put (r);
    return;
  case RMR_MSG_MAP_CLEAR:
    maps_clear (r->ctx.maps, hdr->dirty_mask, hdr->offset, hdr->length);
    pool_io_end (r->pool, true);
    reply (c, hdr, 0, NULL, 0, r->pool->member_id);
    req_put (r);
    return;
  default: break;
  }
  r->mw.done = map_added;
  if (hdr->payload_len == 0)
    ret = maps_mark (r->ctx.maps, hdr->dirty_mask, hdr->offset, hdr->length,
                     &r->mw);
  else /* one slot: the decoder checked */
    ret = maps_or_bits (r->ctx.maps, __builtin_ctz (hdr->dirty_mask),
                        hdr->offset, hdr->length, r->buf, &r->mw);
  if (ret == 1)
    return;
  map_added (&r->mw, ret < 0 ? ret : 0);
}

static void *
conn_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct srv_conn *c = opaque;

  if (hdr->flags & RMR_HF_REPLY)
    return NULL; /* we sent no request: discard */
  if (hdr->type == RMR_MSG_WRITE || hdr->type == RMR_MSG_MAP_ADD) {
    c->cur = req_get (c, hdr->payload_len);
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
  if (hdr->flags & RMR_HF_REPLY)
    return;
  if (hdr->type == RMR_MSG_JOIN) {
    handle_join (c, hdr, payload);
    return;
  }
  ps = find_psess (c, hdr->group_id);
  if (!ps) {
    reply_error (c, hdr, ENOTCONN, "not joined to this pool", NULL);
    if (cur)
      req_put (cur);
    return;
  }
  switch (hdr->type) {
  case RMR_MSG_ENABLE:
  case RMR_MSG_LEAVE:
  case RMR_MSG_AL_GET: handle_control (c, hdr, ps, payload); return;
  case RMR_MSG_WRITE:
    if (!cur) {
      reply_error (c, hdr, ENOMEM, "out of memory for the IO buffer", ps);
      return;
    }
    handle_io (c, hdr, ps, cur);
    return;
  case RMR_MSG_MAP_ADD:
  case RMR_MSG_MAP_GET:
  case RMR_MSG_MAP_CLEAR:
    if (hdr->payload_len && !cur) {
      reply_error (c, hdr, ENOMEM, "out of memory for the map", ps);
      return;
    }
    handle_map (c, hdr, ps, cur);
    return;
  default: handle_io (c, hdr, ps, NULL);
  }
}

static void
conn_down (void *opaque, int errnum, const char *reason)
{
  struct srv_conn *c = opaque;

  flush_replies (c);
  tl_conn = NULL;
  if (c->cur) {
    req_put (c->cur);
    c->cur = NULL;
  }
  if (errnum == EPROTO)
    g_warning ("connection %s closed: %s", c->conn->peer_name, reason);
  else
    g_info ("connection %s closed: %s", c->conn->peer_name, reason);
  while (c->psess->len)
    drop_psess (c, g_ptr_array_index (c->psess, 0), false);
  conn_put (c);
}

static const struct rmr_conn_handler conn_handler = {
  .payload_buf = conn_payload_buf,
  .message = conn_message,
  .batch_end = conn_batch_end,
  .down = conn_down,
};

static int
on_accept (void *opaque, struct rmr_conn *conn,
           const struct rmr_conn_handler **h, void **conn_opaque)
{
  struct srv_conn *c = g_new0 (struct srv_conn, 1);

  c->conn = conn;
  atomic_store (&c->refs, 1);
  g_mutex_init (&c->free_lock);
  c->psess = g_ptr_array_new ();
  *h = &conn_handler;
  *conn_opaque = c;
  g_info ("connection from %s", conn->peer_name);
  return 0;
}

int
sess_listen (const struct rmr_addr *addr)
{
  struct rmr_listener *l;
  char name[300];
  int r;

  r = rmr_listen (addr, on_accept, NULL, &l);
  if (r < 0)
    return r;
  rmr_addr_format (addr, name, sizeof name);
  g_message ("listening on %s", name);
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
