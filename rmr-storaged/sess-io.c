/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The server side of the IO path: an admitted read, write, flush, trim,
 * zero or map message from admission (pool_io_begin, pool_map_begin) to
 * its reply.  A write goes through, in order: the resync gate (chunks
 * stale here are fetched first, sync.c), the recent-write record (its
 * extents are in a durable copy, al.c), the dirty marks of the members
 * that miss it (map.c), then the store; a request parked at any of these
 * whose client session went meanwhile is answered instead of reaching the
 * store (the pool's session epoch, pool.c).  Map messages: map-add waits
 * until the bits are on the store, a watched map-clear until the clear is.
 * The connections, requests and replies are sess.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "error.h"
#include "internal.h"
#include "ratelimit.h"
#include "util.h"

/* A failing store fails every IO in flight on it (hundreds at a queue
 * depth of 128 per session) before the client fails the leg: the first
 * few of each second are logged, the rest counted in one line, so a bad
 * disk gives a handful of lines, not one per IO.
 */
static struct rmr_ratelimit g_failed_io = RMR_RATELIMIT_INIT (5);

static void
log_failed_io (const char *msg)
{
  unsigned dropped;
  bool log = rmr_ratelimit (&g_failed_io, g_get_monotonic_time (), &dropped);

  if (dropped)
    g_warning ("%u more failed IOs in an earlier second (not logged one "
               "by one)",
               dropped);
  if (log)
    g_warning ("%s", msg);
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

/* Metrics of a client IO that ends with res (0 or -errno). */
static void
io_account (struct srv_req *r, int res)
{
  struct srv_metrics *m = &r->pool->m;
  enum srv_op op = r->hdr.type == RMR_MSG_READ    ? SRV_OP_READ
                   : r->hdr.type == RMR_MSG_FLUSH ? SRV_OP_FLUSH
                                                  : SRV_OP_WRITE;

  if (!r->ctx.client)
    return;
  atomic_fetch_sub_explicit (&m->inflight, 1, memory_order_relaxed);
  if (res < 0 && res != -ENOTSUP) {
    metrics_add (&m->errors, 1);
    return;
  }
  if (res < 0)
    return;
  if (op == SRV_OP_READ) {
    metrics_add (&m->reads, 1);
    metrics_add (&m->read_bytes, r->hdr.length);
  }
  else if (op == SRV_OP_WRITE) {
    metrics_add (&m->writes, 1);
    if (r->hdr.type == RMR_MSG_WRITE)
      metrics_add (&m->write_bytes, r->hdr.length);
  }
  metrics_hist_observe (&m->latency[op],
                        MAX (g_get_monotonic_time () - r->t0, 0));
}

/* The IO fails before it reached the store, or the store refused it:
 * undo what it holds (record extents, a claim of the resync gate, its
 * count), answer err with msg and release it.
 */
static void
io_fail (struct srv_req *r, int err, const char *msg)
{
  release_al (r);
  sync_io_done (r->ctx.sync, &r->sw, err);
  io_account (r, err);
  pool_io_end (r->pool, &r->ctx,
               r->hdr.type != RMR_MSG_READ && r->hdr.type != RMR_MSG_CSUM &&
                 r->hdr.type != RMR_MSG_FLUSH);
  sess_reply (r->conn, &r->hdr, err, msg, strlen (msg), r->pool->member_id);
  sess_req_put (r);
}

/* A checksum request's data is read: its units' crc32c replace it at
 * the start of the buffer (unit k's 4 bytes land in unit 0's bytes,
 * already summed).  Returns the reply's length.
 */
static uint32_t
csum_units (struct srv_req *r)
{
  uint64_t cs = csum_unit (maps_chunk_shift (r->ctx.maps));
  uint32_t n = 0, off, len;
  uint8_t *b = r->buf;

  for (off = 0; off < r->hdr.length; off += len, n++) {
    len = MIN (cs, r->hdr.length - off);
    uint32_t crc = rmr_crc32c (0, b + off, len);
    b[4 * n] = crc;
    b[4 * n + 1] = crc >> 8;
    b[4 * n + 2] = crc >> 16;
    b[4 * n + 3] = crc >> 24;
  }
  return 4 * n;
}

static void
io_done (struct store_io *io, int res)
{
  struct srv_req *r = (struct srv_req *) io;
  struct srv_pool *p = r->pool;
  bool is_read = r->hdr.type == RMR_MSG_READ || r->hdr.type == RMR_MSG_CSUM;
  uint32_t rlen = r->hdr.length;
  uint16_t zeroes = 0;
  char msg[RMR_ERRMSG_MAX];

  release_al (r);
  sync_io_done (r->ctx.sync, &r->sw, res);
  /* A failed write: the client fails this leg, and other legs may have
   * acknowledged it; until the client hands this member its map again it
   * is no resync source (pool.c).
   */
  if (res < 0 && res != -ENOTSUP &&
      (r->hdr.type == RMR_MSG_WRITE || r->hdr.type == RMR_MSG_TRIM ||
       r->hdr.type == RMR_MSG_ZERO))
    pool_write_failed (p);
  /* A failed flush may have dropped writes acknowledged before it: the
   * record says so, durably, before the failure is answered (al.c).
   */
  if (res < 0 && r->ctx.al &&
      (r->hdr.type == RMR_MSG_FLUSH || (r->hdr.flags & RMR_HF_FUA))) {
    al_suspect (r->ctx.al);
    if (maps_sync (r->ctx.maps) < 0)
      g_warning ("pool %s: saving the suspect record failed", p->name);
  }
  if (res >= 0 && r->hdr.type == RMR_MSG_CSUM)
    rlen = csum_units (r); /* before the end: maps live until then */
  /* A resync's fetch of zeroes: no payload (proto.h, RMR_HF_ZEROES). */
  if (res >= 0 && (r->hdr.flags & RMR_HF_ZEROES) && buf_is_zero (r->buf, rlen))
    zeroes = RMR_HF_ZEROES;
  if (zeroes)
    rlen = 0;
  io_account (r, res);
  pool_io_end (p, &r->ctx, !is_read && r->hdr.type != RMR_MSG_FLUSH);
  if (res >= 0 && sess_on_receive_thread (r->conn)) {
    /* Completed on the receive thread: the reply goes with the batch. */
    struct srv_conn *c = r->conn;
    if (c->npend == BATCH_MAX)
      sess_flush_replies (c);
    c->pend[c->npend] = (struct rmr_msg){
      .hdr = {.type = r->hdr.type,
              .flags = RMR_HF_REPLY | zeroes,
              .group_id = r->hdr.group_id,
              .member_id = p->member_id,
              .generation = r->hdr.generation,
              .tag = r->hdr.tag,
              .offset = r->hdr.offset,
              .length = r->hdr.length,
              .payload_len = is_read ? rlen : 0},
      .iov = {.iov_base = r->buf, .iov_len = is_read ? rlen : 0},
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
      log_failed_io (msg);
    sess_reply (r->conn, &r->hdr, res, msg, strlen (msg), p->member_id);
  }
  else if (zeroes)
    sess_reply_zeroes (r->conn, &r->hdr, p->member_id);
  else
    sess_reply (r->conn, &r->hdr, 0, r->buf, is_read ? rlen : 0, p->member_id);
  sess_req_put (r);
}

static enum store_op
store_op_of (uint8_t type)
{
  switch (type) {
  case RMR_MSG_READ:
  case RMR_MSG_CSUM: return STORE_READ;
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

  /* Parked (resync gate, record, map save) while its session went: the
   * client has given it up (failed or recorded missed) and may have sent
   * newer IO since; it must not land after that.
   */
  if (r->ctx.client && r->ctx.epoch != atomic_load (&r->pool->sess_epoch)) {
    snprintf (msg, sizeof msg, "pool %s: the session that sent it has left",
              r->pool->name);
    /* Not ESTALE: that would tell the client it was fenced. */
    io_fail (r, -ECANCELED, msg);
    return;
  }
  ret = pool_fault_hit (r->pool, r->io.op);
  if (ret) {
    /* As if the store had failed it: the reply goes the normal way. */
    metrics_add (&r->ctx.st->io_errors, 1);
    r->io.done (&r->io, -ret);
    return;
  }
  ret = store_submit_inline (r->ctx.st, &r->io);
  if (ret < 0) {
    snprintf (msg, sizeof msg, "store: submit: %s",
              rmr_get_error () ? rmr_get_error () : strerror (-ret));
    io_fail (r, ret, msg);
  }
}

/* The dirty bits a write carried are on disk: now the data. */
static void
io_marked (struct map_waiter *w, int err)
{
  struct srv_req *r = container_of (w, struct srv_req, mw);
  static const char msg[] = "the dirty map could not be saved";

  if (err) {
    io_fail (r, err, msg);
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
  if (r->ctx.al && r->hdr.type == RMR_MSG_FLUSH && r->hdr.horizon)
    al_horizon (r->ctx.al, r->hdr.horizon, r->ctx.al_era);
  if (r->ctx.al &&
      (r->hdr.type == RMR_MSG_WRITE || r->hdr.type == RMR_MSG_TRIM ||
       r->hdr.type == RMR_MSG_ZERO)) {
    r->aw.resume = al_resumed;
    ret = al_begin (r->ctx.al, r->hdr.offset, r->hdr.length, r->hdr.wseq,
                    r->hdr.horizon, r->ctx.al_era, &al_save, &r->aw);
    if (ret == 1)
      return; /* al_resumed goes on */
    if (ret < 0) {
      io_fail (r, ret, rmr_get_error ());
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
      io_fail (r, ret, rmr_get_error ());
      return;
    }
  }
  if (al_save) {
    r->mw.done = io_marked;
    ret = maps_save_wait (r->ctx.maps, &r->mw);
    if (ret == 1)
      return; /* io_marked goes on */
    if (ret < 0) {
      io_fail (r, ret, rmr_get_error ());
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
    io_fail (r, err, msg);
    return;
  }
  mark_and_submit (r);
}

void
sess_handle_io (struct srv_conn *c, const struct rmr_hdr *hdr,
                struct srv_psess *ps, struct srv_req *r)
{
  g_autoptr (GString) err = g_string_new (NULL);
  int ret;

  if (!r) {
    r = sess_req_get (c, hdr->type == RMR_MSG_READ || hdr->type == RMR_MSG_CSUM
                           ? hdr->length
                           : 0);
    if (!r) {
      sess_reply_error (c, hdr, ENOMEM, "out of memory for the IO buffer", ps);
      return;
    }
  }
  r->hdr = *hdr;
  r->pool = ps->pool;
  r->al_held = false; /* a request is reused: nothing held yet */
  ret = pool_io_begin (ps, hdr, &r->ctx, err);
  if (ret < 0) {
    if (!ps->sync)
      metrics_add (&ps->pool->m.errors, 1);
    sess_reply_error (c, hdr, ret, err->str, ps);
    sess_req_put (r);
    return;
  }
  if (r->ctx.client) {
    r->t0 = g_get_monotonic_time ();
    atomic_fetch_add_explicit (&r->pool->m.inflight, 1, memory_order_relaxed);
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
  /* While this member resyncs, the client's horizon counts from the
   * message's arrival, not after a wait at the gate: a fetch kept waiting
   * for the chunk to be quiet (sync-flush.c) may be what this very write
   * waits for.
   */
  if (r->ctx.al && hdr->horizon && hdr->wseq && sync_active (r->ctx.sync))
    al_horizon (r->ctx.al, hdr->horizon, r->ctx.al_era);
  r->sw.go = io_gated;
  atomic_store (&r->sw.parked, false);
  r->ctx.parked = &r->sw.parked;
  ret = sync_gate (r->ctx.sync, &r->sw, hdr->offset, hdr->length,
                   hdr->type == RMR_MSG_WRITE || hdr->type == RMR_MSG_ZERO);
  if (ret == 1)
    return; /* io_gated goes on (r may be gone already) */
  mark_and_submit (r);
}

/* Map messages ------------------------------------------------------------ */

static void
map_added (struct map_waiter *w, int err)
{
  struct srv_req *r = container_of (w, struct srv_req, mw);
  static const char msg[] = "the dirty map could not be saved";

  /* A hand-over (or any map add) for our own slot while the pool is
   * normal: the resync's idle workers would otherwise see it only at
   * their next deadline.
   */
  if (!err && r->hdr.type == RMR_MSG_MAP_ADD && r->ctx.my_slot >= 0 &&
      (r->hdr.dirty_mask & 1u << r->ctx.my_slot))
    pool_sync_kick (r->pool);
  pool_io_end (r->pool, &r->ctx, true);
  if (err)
    sess_reply (r->conn, &r->hdr, err, msg, sizeof msg - 1, r->pool->member_id);
  else if (r->hdr.type == RMR_MSG_MAP_CLEAR)
    sess_reply (r->conn, &r->hdr, 0, r->buf, (r->hdr.length + 7) / 8,
                r->pool->member_id);
  else
    sess_reply (r->conn, &r->hdr, 0, NULL, 0, r->pool->member_id);
  sess_req_put (r);
}

void
sess_handle_map (struct srv_conn *c, const struct rmr_hdr *hdr,
                 struct srv_psess *ps, struct srv_req *r)
{
  g_autoptr (GString) err = g_string_new (NULL);
  size_t nbytes = (hdr->length + 7) / 8;
  uint32_t behind = 0;
  int ret;

  if (!r) {
    r = sess_req_get (
      c,
      hdr->type == RMR_MSG_MAP_GET || (hdr->flags & RMR_HF_WATCH) ? nbytes : 0);
    if (!r) {
      sess_reply_error (c, hdr, ENOMEM, "out of memory for the map", ps);
      return;
    }
  }
  r->hdr = *hdr;
  r->pool = ps->pool;
  ret = pool_map_begin (ps, hdr, &r->ctx, err);
  if (ret < 0) {
    sess_reply_error (c, hdr, ret, err->str, ps);
    sess_req_put (r);
    return;
  }
  switch (hdr->type) {
  case RMR_MSG_MAP_GET:
    /* A watch's reply names in dirty_mask the other members behind at
     * those chunks here (pool_watch).
     */
    if ((hdr->flags & RMR_HF_WATCH) &&
        (ret =
           pool_watch (r->pool, r->ctx.maps, __builtin_ctz (hdr->dirty_mask),
                       hdr->offset, hdr->length, &behind)) < 0) {
      pool_io_end (r->pool, &r->ctx, false);
      sess_reply_error (c, hdr, ret, rmr_get_error (), ps);
      sess_req_put (r);
      return;
    }
    maps_get_bits (r->ctx.maps, __builtin_ctz (hdr->dirty_mask), hdr->offset,
                   hdr->length, r->buf);
    pool_io_end (r->pool, &r->ctx, false);
    sess_reply_mask (c, hdr, r->buf, nbytes, r->pool->member_id, behind);
    sess_req_put (r);
    return;
  case RMR_MSG_MAP_CLEAR:
    if (hdr->flags & RMR_HF_WATCH) {
      /* A resync's clear is saved before it is answered: a clear lost
       * to a crash would leave a bit saying a current member is behind
       * (it would never be a source there again, and the map would not
       * drain).
       */
      maps_clear_watched (r->ctx.maps, __builtin_ctz (hdr->dirty_mask),
                          hdr->offset, hdr->length, r->buf);
      r->mw.done = map_added;
      ret = maps_save_wait (r->ctx.maps, &r->mw);
      if (ret != 1)
        map_added (&r->mw, ret < 0 ? ret : 0);
      return;
    }
    maps_clear (r->ctx.maps, hdr->dirty_mask, hdr->offset, hdr->length);
    pool_io_end (r->pool, &r->ctx, true);
    sess_reply (c, hdr, 0, r->buf, hdr->flags & RMR_HF_WATCH ? nbytes : 0,
                r->pool->member_id);
    sess_req_put (r);
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
