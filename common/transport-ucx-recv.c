/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport's receiving side (transport-ucx.c has the whole
 * picture): the active-message callbacks, run by the process's progress
 * thread inside ucp_worker_progress (), which find the connection by the
 * reply endpoint, queue the message and wake the connection's receive
 * thread; and that thread, which hands the queue to the handler in
 * arrival order, receives rendezvous payloads straight into the
 * handler's buffer, runs the keepalive and idle timeout, and on the way
 * out closes the endpoint (completing every request on it) before
 * down ().
 *
 * Order: a message behind a rendezvous one waits in the queue until
 * that payload is in, so the handler sees a connection's messages in
 * the order they were sent, as on tcp.  The current rendezvous message
 * (cur, cur_*) belongs to the receive thread; cur_done and the queue are
 * under the connection's lock, which the callbacks take.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "error.h"
#include "transport-ucx.h"
#include "util.h"

#define RXQ_MIN 64
/* Messages a peer may queue before its preamble is done. */
#define RXQ_PREAMBLE_MAX 256

static bool
rx_push_unlocked (struct ucx_conn *c, const struct ucx_rx *e)
{
  struct ucx_rx *q;
  unsigned i, cap;

  if (!c->h && c->rx_n >= RXQ_PREAMBLE_MAX)
    return false;
  if (c->rx_n == c->rx_cap) {
    cap = c->rx_cap ? 2 * c->rx_cap : RXQ_MIN;
    q = malloc (cap * sizeof *q);
    if (!q)
      return false;
    for (i = 0; i < c->rx_n; i++)
      q[i] = c->rxq[(c->rx_head + i) % c->rx_cap];
    free (c->rxq);
    c->rxq = q;
    c->rx_cap = cap;
    c->rx_head = 0;
  }
  c->rxq[(c->rx_head + c->rx_n) % c->rx_cap] = *e;
  c->rx_n++;
  return true;
}

bool
ucx_rx_pop (struct ucx_conn *c, struct ucx_rx *e)
{
  bool got = false;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  if (c->rx_n) {
    *e = c->rxq[c->rx_head];
    c->rx_head = (c->rx_head + 1) % c->rx_cap;
    c->rx_n--;
    got = true;
  }
  c->rx_busy = got;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  return got;
}

/* A message handed to an inline handler from inside the AM callback:
 * the handler's callbacks never run concurrently, since the receive
 * thread holds nothing (rx_busy) and takes nothing from the queue until
 * a callback queues it, and callbacks come one at a time (ucx_mu).
 */
static void
deliver_inline (struct ucx_conn *c, const struct rmr_hdr *hdr, void *data,
                size_t len)
{
  void *dest = len ? c->h->payload_buf (c->opaque, hdr) : NULL;

  if (dest)
    memcpy (dest, data, len);
  c->h->message (c->opaque, hdr, dest);
}

/* UCX_AM_MSG, from inside ucp_worker_progress: queue, or hand over
 * inline (top).
 */
static ucs_status_t
am_msg_unlocked (struct ucx_conn *c, const void *header, size_t hlen,
                 void *data, size_t len, const ucp_am_recv_param_t *param)
{
  struct ucx_rx e = {0};
  bool queued, first;

  if (hlen != RMR_HDR_SIZE) {
    ucx_conn_fail (c, EPROTO, "bad message: a header of %zu bytes", hlen);
    return UCS_OK;
  }
  if (rmr_hdr_decode (header, &e.hdr) < 0) {
    ucx_conn_fail (c, EPROTO, "%s", rmr_get_error ());
    return UCS_OK;
  }
  if (e.hdr.payload_len != len) {
    ucx_conn_fail (
      c, EPROTO, "bad message: payload_len %" PRIu32 " with %zu bytes of data",
      e.hdr.payload_len, len);
    return UCS_OK;
  }
  atomic_store (&c->last_rx_ms, ucx_now_ms ());
  atomic_fetch_add (&c->base.bytes_received, RMR_HDR_SIZE + len);
  if (e.hdr.type == RMR_MSG_KEEPALIVE) {
    if (e.hdr.flags & RMR_HF_REPLY || len)
      return UCS_OK;
    e.keepalive = true;
  }
  else if (len) {
    e.data = data;
    e.rndv = param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV;
  }
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  if (c->opts.inline_handler && c->h && !c->h->batch_end && !e.keepalive &&
      !e.rndv && c->rx_n == 0 && !c->rx_busy && !atomic_load (&c->pause_req) &&
      !atomic_load (&c->shutdown_req) && !c->failed) {
    /* Nothing of this connection is ahead of it, and the receive
     * thread holds nothing: hand it over here (top of transport.h's
     * inline_handler), UCX's data used in place.
     */
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
    deliver_inline (c, &e.hdr, data, len);
    return UCS_OK;
  }
  queued = rx_push_unlocked (c, &e);
  first = c->rx_n == 1;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (!queued) {
    ucx_conn_fail (c, c->h ? ENOMEM : EPROTO,
                   c->h ? "out of memory for the receive queue"
                        : "too many messages before the preamble ended");
    return UCS_OK;
  }
  /* The receive thread drains the whole queue once woken. */
  if (first)
    ucx_wake (c);
  return e.data ? UCS_INPROGRESS : UCS_OK;
}

/* The connection a message came on (its reply endpoint), or NULL: an
 * endpoint closed meanwhile, whose message is dropped.  Under ucx_mu,
 * as every UCX callback.
 */
static struct ucx_conn *
conn_of_unlocked (const ucp_am_recv_param_t *param)
{
  if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
    return NULL;
  return ucx_conn_of_ep_unlocked (param->reply_ep);
}

/* UCX_AM_MSG, on the progress thread: queue only (top). */
ucs_status_t
ucx_am_msg (void *arg, const void *header, size_t hlen, void *data, size_t len,
            const ucp_am_recv_param_t *param)
{
  struct ucx_conn *c = conn_of_unlocked (param);

  return c ? am_msg_unlocked (c, header, hlen, data, len, param) : UCS_OK;
}

/* UCX_AM_HELLO: one preamble message at a time. */
ucs_status_t
ucx_am_hello (void *arg, const void *header, size_t hlen, void *data,
              size_t len, const ucp_am_recv_param_t *param)
{
  struct ucx_conn *c = conn_of_unlocked (param);
  bool bad;

  if (!c)
    return UCS_OK;
  if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
    ucx_conn_fail (c, EPROTO, "bad hello: sent by rendezvous");
    return UCS_OK;
  }
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  bad = c->hs_got || len > sizeof c->hs_buf || c->h;
  if (!bad) {
    memcpy (c->hs_buf, data, len);
    c->hs_len = len;
    c->hs_got = true;
    pthread_cond_broadcast (&c->cond);
  }
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (bad)
    ucx_conn_fail (c, EPROTO, "bad hello: %zu bytes, or out of turn", len);
  return UCS_OK;
}

/* UCX_AM_BYE: the peer closes the connection on purpose. */
ucs_status_t
ucx_am_bye (void *arg, const void *header, size_t hlen, void *data, size_t len,
            const ucp_am_recv_param_t *param)
{
  struct ucx_conn *c = conn_of_unlocked (param);
  struct ucx_rx e = {.bye = true};
  bool now, queued = false;

  if (!c)
    return UCS_OK;
  /* What the peer sent before it is handed over first, as a tcp peer's
   * data before its FIN: behind anything queued or held (a rendezvous
   * payload still on its way, sent before the goodbye but overtaken by
   * it), the goodbye waits its turn.
   */
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  now = c->rx_n == 0 && !c->rx_busy;
  if (!now)
    queued = c->bye_queued = rx_push_unlocked (c, &e);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (now || !queued)
    ucx_conn_fail (c, ECONNRESET, "connection closed by peer");
  else
    ucx_wake (c);
  return UCS_OK;
}

/* ---- the receive thread ---- */

/* Send a keepalive (request, or the reply to req) unless one is still in
 * flight: the peer is receiving from us then anyway.
 */
static void
send_keepalive (struct ucx_conn *c, const struct rmr_hdr *req)
{
  struct rmr_hdr ka = {.type = RMR_MSG_KEEPALIVE, .member_id = RMR_MEMBER_NONE};
  ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                           .flags = UCP_AM_SEND_FLAG_REPLY};
  ucs_status_ptr_t sp;

  if (c->ka_req) {
    ucs_status_t st;
    ucx_lock ();
    st = ucp_request_check_status (c->ka_req);
    if (st != UCS_INPROGRESS)
      ucp_request_free (c->ka_req);
    ucx_unlock ();
    if (st == UCS_INPROGRESS)
      return;
    c->ka_req = NULL;
  }
  if (req) {
    ka.flags = RMR_HF_REPLY;
    ka.tag = req->tag;
  }
  rmr_hdr_encode (&ka, c->ka_hbuf);
  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  ucx_lock ();
  sp = c->ep ? ucp_am_send_nbx (c->ep, UCX_AM_MSG, c->ka_hbuf, RMR_HDR_SIZE,
                                NULL, 0, &p)
             : NULL;
  ucx_unlock ();
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_PTR (sp)) {
    c->ka_req = sp;
    ucx_kick ();
  }
  else if (!UCS_PTR_IS_ERR (sp))
    atomic_fetch_add (&c->base.bytes_sent, RMR_HDR_SIZE);
}

static void
maybe_keepalive (struct ucx_conn *c, uint64_t now)
{
  if (!c->opts.keepalive_ms)
    return;
  if (now - atomic_load (&c->last_rx_ms) < c->opts.keepalive_ms ||
      now - c->last_ka_ms < c->opts.keepalive_ms)
    return;
  c->last_ka_ms = now;
  send_keepalive (c, NULL);
}

static void
rndv_done (void *req, ucs_status_t status, size_t length, void *user_data)
{
  struct ucx_conn *c = user_data;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  c->cur_done = true;
  c->cur_status = status;
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  ucx_wake (c);
}

/* Start receiving cur's rendezvous payload into dest (or a scratch
 * buffer when the handler discards it).  0 or -errno.
 */
static int
rndv_start (struct ucx_conn *c, void *dest)
{
  ucp_request_param_t p = {
    .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA,
    .cb.recv_am = rndv_done,
    .user_data = c,
  };
  size_t len = c->cur.hdr.payload_len;
  ucs_status_ptr_t sp;

  c->cur_dest = dest;
  if (!dest) {
    c->cur_scratch = malloc (len);
    if (!c->cur_scratch)
      return rmr_err (ENOMEM, "out of memory to discard a payload");
  }
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  c->cur_done = false;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  c->cur_active = true;
  ucx_lock ();
  sp = ucp_am_recv_data_nbx (c->worker, c->cur.data,
                             dest ? dest : c->cur_scratch, len, &p);
  ucx_unlock ();
  if (UCS_PTR_IS_ERR (sp)) {
    c->cur_active = false;
    return rmr_err (ucx_errno_of (UCS_PTR_STATUS (sp)),
                    "rendezvous receive: %s",
                    ucs_status_string (UCS_PTR_STATUS (sp)));
  }
  c->cur_req = UCS_PTR_IS_PTR (sp) ? sp : NULL;
  if (c->cur_req)
    ucx_kick ();
  else {
    c->cur_done = true;
    c->cur_status = UCS_OK;
  }
  return 0;
}

/* Hand the queued messages to the handler, in order, until the queue is
 * empty or a rendezvous payload is still on its way.  *count += messages
 * handed over.  0, or -errno (recorded) when the connection must end.
 */
static int
deliver (struct ucx_conn *c, unsigned *count)
{
  struct ucx_rx e;
  void *dest;
  bool done;
  int st, r;

  for (;;) {
    if (c->cur_active) {
      if (pthread_mutex_lock (&c->lock) != 0)
        abort ();
      done = c->cur_done;
      st = c->cur_status;
      if (pthread_mutex_unlock (&c->lock) != 0)
        abort ();
      if (!done)
        return 0;
      c->cur_active = false;
      if (c->cur_req) {
        ucx_lock ();
        ucp_request_free (c->cur_req);
        ucx_unlock ();
      }
      c->cur_req = NULL;
      free (c->cur_scratch);
      c->cur_scratch = NULL;
      if (st != UCS_OK)
        return rmr_err (ucx_errno_of (st), "receiving a payload: %s",
                        ucs_status_string (st));
      c->h->message (c->opaque, &c->cur.hdr, c->cur_dest);
      (*count)++;
      continue;
    }
    /* A failed endpoint: nothing more is handed over (nor a rendezvous
     * receive started on it); the queue is drained on the way out.
     */
    if (atomic_load (&c->shutdown_req) || atomic_load (&c->pause_req) ||
        ucx_failed (c))
      return 0;
    if (!ucx_rx_pop (c, &e))
      return 0;
    if (e.bye) {
      ucx_conn_fail (c, ECONNRESET, "connection closed by peer");
      return 0;
    }
    if (e.keepalive) {
      send_keepalive (c, &e.hdr);
      continue;
    }
    dest = e.hdr.payload_len ? c->h->payload_buf (c->opaque, &e.hdr) : NULL;
    if (e.rndv) {
      c->cur = e;
      r = rndv_start (c, dest);
      if (r < 0)
        return r;
      continue;
    }
    if (e.data) {
      if (dest)
        memcpy (dest, e.data, e.hdr.payload_len);
      ucx_lock ();
      ucp_am_data_release (c->worker, e.data);
      ucx_unlock ();
    }
    c->h->message (c->opaque, &e.hdr, dest);
    (*count)++;
  }
}

/* Whether deliver () has something to do now. */
static bool
ready (struct ucx_conn *c)
{
  bool r;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  r = c->cur_active ? c->cur_done : c->rx_n > 0;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  return r;
}

/* A local close: tell the peer (am_bye), and give what was sent a
 * moment to arrive (a flush, at most BYE_FLUSH_MS) before the endpoint
 * is closed by force, which would drop it.
 */
#define BYE_FLUSH_MS 1000

static bool
flushed (void *req)
{
  ucs_status_t st;

  ucx_lock ();
  st = ucp_request_check_status (req);
  ucx_unlock ();
  return st != UCS_INPROGRESS;
}

static void
say_goodbye (struct ucx_conn *c)
{
  ucp_request_param_t p = {.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
                           .flags = UCP_AM_SEND_FLAG_REPLY};
  ucp_request_param_t pf = {.op_attr_mask = 0};
  uint64_t deadline = ucx_now_ms () + BYE_FLUSH_MS;
  ucs_status_ptr_t bye = NULL, fl = NULL;

  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  if (c->ep && !ucx_failed (c)) {
    ucx_lock ();
    bye = ucp_am_send_nbx (c->ep, UCX_AM_BYE, NULL, 0, NULL, 0, &p);
    fl = ucp_ep_flush_nbx (c->ep, &pf);
    ucx_unlock ();
  }
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_PTR (fl))
    ucx_kick ();
  while (UCS_PTR_IS_PTR (fl) && !flushed (fl) && ucx_now_ms () < deadline &&
         !ucx_failed (c))
    g_usleep (1000);
  /* Freed requests still in flight complete when the endpoint closes. */
  ucx_lock ();
  if (UCS_PTR_IS_PTR (bye))
    ucp_request_free (bye);
  if (UCS_PTR_IS_PTR (fl))
    ucp_request_free (fl);
  ucx_unlock ();
}

/* Sleep until the connection's wakefd is written, at most timeout_ms
 * (-1: no limit).
 */
static void
sleep_on_wakefd (struct ucx_conn *c, int timeout_ms)
{
  struct pollfd p = {.fd = c->wakefd, .events = POLLIN};
  uint64_t junk;

  if (poll (&p, 1, timeout_ms) > 0 &&
      read (c->wakefd, &junk, sizeof junk) < 0) {
    /* Spurious: the flags say why we were woken. */
  }
}

void *
ucx_recv_thread (void *arg)
{
  struct ucx_conn *c = arg;
  char reason[700] = "";
  unsigned count;
  uint64_t now, last;
  int err = 0;

  ucx_tl_recv = c;
  c->last_ka_ms = ucx_now_ms ();
  for (;;) {
    if (atomic_load (&c->shutdown_req)) {
      err = ECONNABORTED;
      snprintf (reason, sizeof reason, "%s: connection closed locally",
                c->base.peer_name);
      break;
    }
    if (atomic_load (&c->pause_req))
      return NULL;
    count = 0;
    if (deliver (c, &count) < 0) {
      err = rmr_get_errno ();
      snprintf (reason, sizeof reason, "%s: %s", c->base.peer_name,
                rmr_get_error ());
      break;
    }
    if (count && c->h->batch_end)
      c->h->batch_end (c->opaque);
    if (ucx_failed (c)) {
      if (pthread_mutex_lock (&c->lock) != 0)
        abort ();
      err = c->err;
      snprintf (reason, sizeof reason, "%s: %s", c->base.peer_name, c->reason);
      if (pthread_mutex_unlock (&c->lock) != 0)
        abort ();
      break;
    }
    now = ucx_now_ms ();
    last = atomic_load (&c->last_rx_ms);
    if (c->opts.idle_timeout_ms && now - last >= c->opts.idle_timeout_ms) {
      err = ETIMEDOUT;
      snprintf (reason, sizeof reason,
                "%s: peer silent for %" PRIu64 " ms (keepalive timeout)",
                c->base.peer_name, now - last);
      break;
    }
    maybe_keepalive (c, now);
    if (count)
      continue;
    if (!ready (c)) {
      last = atomic_load (&c->last_rx_ms);
      sleep_on_wakefd (c, rmr_conn_poll_timeout (&c->opts, last, now));
    }
  }

  /* Every later send fails at once and every waiting one completes;
   * then tell the owner.
   */
  atomic_store (&c->down, true);
  if (err == ECONNABORTED)
    say_goodbye (c);
  ucx_ep_close (c);
  if (c->cur_active) {
    /* Completed (with an error at worst) by the endpoint's close. */
    ucx_wait_flag (c, &c->cur_done, 0);
    ucx_lock ();
    if (c->cur_req)
      ucp_request_free (c->cur_req);
    ucx_unlock ();
    c->cur_req = NULL;
    c->cur_active = false;
  }
  if (c->ka_req) {
    ucx_lock ();
    ucp_request_free (c->ka_req);
    ucx_unlock ();
    c->ka_req = NULL;
  }
  ucx_rx_drain_free (c);
  c->h->down (c->opaque, err ? err : EIO, reason);
  if (atomic_load (&c->free_on_exit)) {
    pthread_detach (pthread_self ());
    c->thread_started = false;
    ucx_tl_recv = NULL;
    ucx_conn_destroy (c);
  }
  return NULL;
}
