/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport (DESIGN 10): UCX's UCP active messages.  On hosts
 * with RDMA devices UCX carries them over verbs (rc, dc, ud) through
 * rdma-core; elsewhere over its own tcp, so this same code runs in every
 * test here.
 *
 * One UCX context per process, made on first use (a process that only
 * speaks tcp never touches UCX).  Each connection has its own worker
 * (thread mode MULTI: UCX locks it, so any thread may send) and its own
 * progress thread, as a tcp connection has its receive thread; the
 * handler's callbacks come only from that thread, in order, never
 * concurrently.
 *
 * Receiving: UCX calls our active-message callback from inside
 * ucp_worker_progress (), on whatever thread progressed the worker.  The
 * callback only decodes the header and queues the message (its eager
 * data kept by UCX, UCP_AM_FLAG_PERSISTENT_DATA, or its rendezvous
 * descriptor); the progress thread then hands the queue to the handler
 * outside of any UCX callback, so a handler may send and wait.  A
 * rendezvous payload is received straight into the buffer payload_buf ()
 * returns (ucp_am_recv_data_nbx), and the messages behind it wait until
 * it is in: the handler sees the connection's messages in their order,
 * as on tcp.
 *
 * Sending: ucp_am_send_nbx () with the encoded header as the AM header
 * and the caller's iovecs as the data; payloads of UCX_RNDV_MIN and more
 * go by rendezvous, so the receiver pulls them from the caller's buffer
 * (a 1 MiB write goes to every leg from the one buffer, never copied;
 * base.zcopy_bytes_sent counts them).  A send returns once UCX is done
 * with the caller's memory (the request completed): on the progress
 * thread by progressing inline, on other threads by waiting on `cond`,
 * with a progress of their own now and then so a progress thread busy
 * in a handler cannot hold them up.  Sends never hold `lock` while in
 * UCX, and UCX's callbacks take only `lock`: no lock order to invert.
 *
 * Failures: the endpoint is opened in UCX's peer-failure error mode, so
 * a peer that dies or a link that breaks reaches ucx_ep_error (); the
 * message-level keepalive and idle timeout of transport.h run here as on
 * tcp, for a peer that is alive to UCX but silent.  Either way the
 * progress thread closes the endpoint (force: every request on it
 * completes, so no sender waits for ever), then calls down () once.  A
 * restarted node is a new UCX endpoint: nothing of the old connection is
 * reused, and its requests failed with it.
 *
 * Waking: the progress thread sleeps in epoll on the worker's event fd
 * (ucp_worker_arm) and an eventfd (queued work, pause, shutdown), never
 * busy polling.
 *
 * The preamble (ucx-auth.h) runs on the connecting thread or the
 * listener's handshake thread before the progress thread starts: they
 * progress the worker themselves.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "error.h"
#include "parse.h"
#include "transport-ucx.h"
#include "util.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define RXQ_MIN 64
/* Messages a peer may queue before its preamble is done. */
#define RXQ_PREAMBLE_MAX 256
/* How long a sender waits before it progresses the worker itself. */
#define SEND_WAIT_MS 20
#define MAX_IOV 64

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static ucp_context_h g_ctx;
static char g_ctx_err[200];

/* The connection whose progress thread (or preamble) this thread runs. */
static _Thread_local struct ucx_conn *tl_progress;

uint64_t
ucx_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wake (struct ucx_conn *c)
{
  uint64_t one = 1;

  if (write (c->wakefd, &one, sizeof one) < 0) {
    /* The counter cannot overflow in practice. */
  }
}

static void
ctx_init (void)
{
  ucp_params_t pp = {
    .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED,
    .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
    .mt_workers_shared = 1,
  };
  ucp_config_t *cfg;
  ucs_status_t st;

  /* A node restarted on its port must listen at once, not after the
   * old connections' TIME_WAIT (DESIGN 10).  A setting of UCX's tcp
   * connection manager, which ucp_config_modify () does not reach in UCX
   * 1.13: the environment, read when the first worker is made.  The
   * caller's own setting wins.
   */
  setenv ("UCX_TCP_CM_REUSEADDR", "y", 0);
  st = ucp_config_read (NULL, NULL, &cfg);
  if (st != UCS_OK) {
    snprintf (g_ctx_err, sizeof g_ctx_err, "reading UCX's configuration: %s",
              ucs_status_string (st));
    return;
  }
  st = ucp_init (&pp, cfg, &g_ctx);
  ucp_config_release (cfg);
  if (st != UCS_OK) {
    g_ctx = NULL;
    snprintf (g_ctx_err, sizeof g_ctx_err, "UCX initialisation: %s",
              ucs_status_string (st));
  }
}

int
ucx_context (ucp_context_h *out)
{
  pthread_once (&ctx_once, ctx_init);
  if (!g_ctx)
    return rmr_err (EIO, "%s", g_ctx_err);
  *out = g_ctx;
  return 0;
}

/* UCX's status to an errno. */
static int
errno_of (ucs_status_t st)
{
  switch (st) {
  case UCS_ERR_NO_MEMORY: return ENOMEM;
  case UCS_ERR_TIMED_OUT:
  case UCS_ERR_ENDPOINT_TIMEOUT: return ETIMEDOUT;
  case UCS_ERR_UNREACHABLE: return EHOSTUNREACH;
  case UCS_ERR_REJECTED:
  case UCS_ERR_NOT_CONNECTED: return ECONNREFUSED;
  case UCS_ERR_CANCELED: return ECONNABORTED;
  case UCS_ERR_INVALID_PARAM: return EINVAL;
  case UCS_ERR_CONNECTION_RESET:
  default: return ECONNRESET;
  }
}

/* Record that the connection must end (the first reason wins). */
static void conn_fail (struct ucx_conn *c, int err, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static void
conn_fail (struct ucx_conn *c, int err, const char *fmt, ...)
{
  va_list ap;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  if (!c->failed) {
    c->failed = true;
    c->err = err;
    va_start (ap, fmt);
    vsnprintf (c->reason, sizeof c->reason, fmt, ap);
    va_end (ap);
  }
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (tl_progress != c)
    wake (c);
}

void
ucx_ep_error (void *arg, ucp_ep_h ep, ucs_status_t status)
{
  struct ucx_conn *c = arg;

  /* UCX reports a peer gone (process killed, host down) as a reset or
   * an endpoint timeout, whichever its transport saw first; a peer that
   * closed on purpose said goodbye first (am_bye).
   */
  bool setup;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  setup = !c->h;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  /* Before the preamble is done: the connect itself failed. */
  if (setup && (status == UCS_ERR_NOT_CONNECTED || status == UCS_ERR_REJECTED ||
                status == UCS_ERR_UNREACHABLE))
    conn_fail (c, ECONNREFUSED, "connect: Connection refused (UCX: %s)",
               ucs_status_string (status));
  else if (status == UCS_ERR_CONNECTION_RESET ||
           status == UCS_ERR_ENDPOINT_TIMEOUT)
    conn_fail (c, ECONNRESET, "connection lost (UCX: %s)",
               ucs_status_string (status));
  else
    conn_fail (c, errno_of (status), "connection failed: %s",
               ucs_status_string (status));
}

static bool
failed (struct ucx_conn *c)
{
  bool f;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  f = c->failed;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  return f;
}

/* Queue e (under lock).  false: out of memory or over the preamble's
 * limit.
 */
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

static bool
rx_pop (struct ucx_conn *c, struct ucx_rx *e)
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
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  return got;
}

/* UCX_AM_MSG, from inside ucp_worker_progress: queue only (top). */
static ucs_status_t
am_msg (void *arg, const void *header, size_t hlen, void *data, size_t len,
        const ucp_am_recv_param_t *param)
{
  struct ucx_conn *c = arg;
  struct ucx_rx e = {0};
  bool queued;

  if (hlen != RMR_HDR_SIZE) {
    conn_fail (c, EPROTO, "bad message: a header of %zu bytes", hlen);
    return UCS_OK;
  }
  if (rmr_hdr_decode (header, &e.hdr) < 0) {
    conn_fail (c, EPROTO, "%s", rmr_get_error ());
    return UCS_OK;
  }
  if (e.hdr.payload_len != len) {
    conn_fail (c, EPROTO,
               "bad message: payload_len %" PRIu32 " with %zu bytes of data",
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
  queued = rx_push_unlocked (c, &e);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (!queued) {
    conn_fail (c, c->h ? ENOMEM : EPROTO,
               c->h ? "out of memory for the receive queue"
                    : "too many messages before the preamble ended");
    return UCS_OK;
  }
  if (tl_progress != c)
    wake (c);
  return e.data ? UCS_INPROGRESS : UCS_OK;
}

/* UCX_AM_HELLO: one preamble message at a time. */
static ucs_status_t
am_hello (void *arg, const void *header, size_t hlen, void *data, size_t len,
          const ucp_am_recv_param_t *param)
{
  struct ucx_conn *c = arg;
  bool bad;

  if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
    conn_fail (c, EPROTO, "bad hello: sent by rendezvous");
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
    conn_fail (c, EPROTO, "bad hello: %zu bytes, or out of turn", len);
  return UCS_OK;
}

/* UCX_AM_BYE: the peer closes the connection on purpose. */
static ucs_status_t
am_bye (void *arg, const void *header, size_t hlen, void *data, size_t len,
        const ucp_am_recv_param_t *param)
{
  conn_fail (arg, ECONNRESET, "connection closed by peer");
  return UCS_OK;
}

static int
set_am_handler (struct ucx_conn *c, unsigned id, ucp_am_recv_callback_t cb,
                uint32_t flags)
{
  ucp_am_handler_param_t hp = {
    .field_mask =
      UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
      UCP_AM_HANDLER_PARAM_FIELD_ARG | UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
    .id = id,
    .cb = cb,
    .arg = c,
    .flags = flags,
  };
  ucs_status_t st = ucp_worker_set_am_recv_handler (c->worker, &hp);

  if (st != UCS_OK)
    return rmr_err (EIO, "UCX active-message handler: %s",
                    ucs_status_string (st));
  return 0;
}

int
ucx_conn_new (const struct rmr_conn_opts *opts, struct ucx_conn **out)
{
  ucp_worker_params_t wp = {
    .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
    .thread_mode = UCS_THREAD_MODE_MULTI,
  };
  struct epoll_event ev = {.events = EPOLLIN};
  ucp_context_h ctx;
  struct ucx_conn *c;
  ucs_status_t st;
  int r;

  r = ucx_context (&ctx);
  if (r < 0)
    return r;
  c = calloc (1, sizeof *c);
  if (!c)
    return rmr_err (ENOMEM, "out of memory");
  c->base.ops = &rmr_transport_ucx;
  if (opts)
    c->opts = *opts;
  c->efd = c->wakefd = c->epfd = -1;
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->cond, NULL);
  pthread_rwlock_init (&c->ep_lock, NULL);
  st = ucp_worker_create (ctx, &wp, &c->worker);
  if (st != UCS_OK) {
    c->worker = NULL;
    ucx_conn_destroy (c);
    return rmr_err (EIO, "UCX worker: %s", ucs_status_string (st));
  }
  st = ucp_worker_get_efd (c->worker, &c->efd);
  if (st != UCS_OK) {
    c->efd = -1;
    ucx_conn_destroy (c);
    return rmr_err (EIO, "UCX worker's event fd: %s", ucs_status_string (st));
  }
  c->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (c->wakefd < 0 || c->epfd < 0 ||
      epoll_ctl (c->epfd, EPOLL_CTL_ADD, c->efd, &ev) < 0 ||
      epoll_ctl (c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev) < 0) {
    r = errno;
    ucx_conn_destroy (c);
    return rmr_err (r, "eventfd/epoll: %s", strerror (r));
  }
  if (set_am_handler (c, UCX_AM_HELLO, am_hello, 0) < 0 ||
      set_am_handler (c, UCX_AM_BYE, am_bye, 0) < 0 ||
      set_am_handler (c, UCX_AM_MSG, am_msg,
                      UCP_AM_FLAG_WHOLE_MSG | UCP_AM_FLAG_PERSISTENT_DATA) <
        0) {
    r = rmr_get_errno ();
    ucx_conn_destroy (c);
    return -r;
  }
  atomic_store (&c->last_rx_ms, ucx_now_ms ());
  *out = c;
  return 0;
}

/* Progress until nothing more happens. */
static void
progress_all (struct ucx_conn *c)
{
  while (ucp_worker_progress (c->worker) > 0)
    ;
}

/* Sleep until the worker has events or wakefd is written, at most
 * timeout_ms (-1: no limit).  The caller progresses afterwards.
 */
static void
sleep_on_worker (struct ucx_conn *c, int timeout_ms)
{
  struct epoll_event ev[2];
  uint64_t junk;

  if (ucp_worker_arm (c->worker) == UCS_ERR_BUSY)
    return; /* events pending: progress again */
  if (epoll_wait (c->epfd, ev, 2, timeout_ms) > 0 &&
      read (c->wakefd, &junk, sizeof junk) < 0) {
    /* Nothing written to wakefd: the worker woke us. */
  }
}

static void
close_done (void *req, ucs_status_t status, void *user_data)
{
  bool *done = user_data;

  *done = true;
}

void
ucx_ep_close (struct ucx_conn *c)
{
  ucp_request_param_t p = {
    .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK |
                    UCP_OP_ATTR_FIELD_USER_DATA,
    .flags = UCP_EP_CLOSE_FLAG_FORCE,
    .cb.send = close_done,
  };
  bool done = false;
  void *req;

  if (pthread_rwlock_wrlock (&c->ep_lock) != 0)
    abort ();
  if (!c->ep) {
    pthread_rwlock_unlock (&c->ep_lock);
    return;
  }
  p.user_data = &done;
  req = ucp_ep_close_nbx (c->ep, &p);
  c->ep = NULL;
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_PTR (req)) {
    while (!done) {
      if (ucp_worker_progress (c->worker) == 0 && !done)
        sleep_on_worker (c, 10);
    }
    ucp_request_free (req);
  }
  /* Wake every sender still waiting: its request completed. */
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
}

/* Hand back what the queue holds (the connection is going down). */
static void
rx_drain_free (struct ucx_conn *c)
{
  struct ucx_rx e;

  while (rx_pop (c, &e))
    if (e.data)
      ucp_am_data_release (c->worker, e.data);
}

void
ucx_conn_destroy (struct ucx_conn *c)
{
  if (c->worker) {
    ucx_ep_close (c);
    rx_drain_free (c);
    progress_all (c);
    ucp_worker_destroy (c->worker);
  }
  if (c->epfd >= 0)
    close (c->epfd);
  if (c->wakefd >= 0)
    close (c->wakefd);
  free (c->rxq);
  free (c->cur_scratch);
  pthread_mutex_destroy (&c->lock);
  pthread_cond_destroy (&c->cond);
  pthread_rwlock_destroy (&c->ep_lock);
  free (c);
}

/* ---- sends ---- */

struct send_wait {
  struct ucx_conn *c;
  bool done;
  ucs_status_t status;
};

static void
send_done (void *req, ucs_status_t status, void *user_data)
{
  struct send_wait *w = user_data;
  struct ucx_conn *c = w->c;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  w->done = true;
  w->status = status;
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
}

/* Start one send of id with header hbuf (hlen bytes) and data iov.
 * *req: NULL (done already), or the request to wait for with w.  The
 * memory of hbuf, iov and dt must stay until then.  -errno if it could
 * not start.
 */
static int
send_start (struct ucx_conn *c, unsigned id, const void *hbuf, size_t hlen,
            const struct iovec *iov, int iovcnt, ucp_dt_iov_t *dt,
            struct send_wait *w, void **req)
{
  ucp_request_param_t p = {
    .op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA |
                    UCP_OP_ATTR_FIELD_FLAGS,
    .cb.send = send_done,
    .user_data = w,
  };
  const void *buf = NULL;
  size_t total = 0, count = 0;
  ucs_status_ptr_t sp;
  int i;

  for (i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  if (iovcnt == 1) {
    buf = iov[0].iov_base;
    count = iov[0].iov_len;
  }
  else if (iovcnt > 1) {
    for (i = 0; i < iovcnt; i++) {
      dt[i].buffer = iov[i].iov_base;
      dt[i].length = iov[i].iov_len;
    }
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
    p.datatype = ucp_dt_make_iov ();
    buf = dt;
    count = iovcnt;
  }
  if (total >= UCX_RNDV_MIN)
    p.flags = UCP_AM_SEND_FLAG_RNDV;
  w->c = c;
  w->done = false;
  *req = NULL;

  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  if (!c->ep || atomic_load (&c->down) || atomic_load (&c->shutdown_req)) {
    pthread_rwlock_unlock (&c->ep_lock);
    return -EPIPE;
  }
  sp = ucp_am_send_nbx (c->ep, id, hbuf, hlen, buf, count, &p);
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_ERR (sp))
    return -errno_of (UCS_PTR_STATUS (sp));
  *req = UCS_PTR_IS_PTR (sp) ? sp : NULL;
  if (total >= UCX_RNDV_MIN)
    atomic_fetch_add (&c->base.zcopy_bytes_sent, total);
  atomic_fetch_add (&c->base.bytes_sent, hlen + total);
  return 0;
}

/* Wait for the n requests (NULL ones are done).  Frees them.  0, or
 * -errno if any failed.
 */
static int
send_wait (struct ucx_conn *c, void **req, struct send_wait *w, int n)
{
  bool all;
  int i, r = 0;

  for (;;) {
    all = true;
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    for (i = 0; i < n && all; i++)
      all = !req[i] || w[i].done;
    if (!all && tl_progress != c) {
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += SEND_WAIT_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait (&c->cond, &c->lock, &ts);
      for (all = true, i = 0; i < n && all; i++)
        all = !req[i] || w[i].done;
    }
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
    if (all)
      break;
    /* On the progress thread: drive it ourselves.  Elsewhere: the
     * progress thread may be busy in a handler; keep things moving.
     */
    if (ucp_worker_progress (c->worker) == 0 && tl_progress == c)
      sleep_on_worker (c, 10);
    /* A failed endpoint: close it, which completes what is left. */
    if (failed (c) || atomic_load (&c->shutdown_req))
      ucx_ep_close (c);
  }
  for (i = 0; i < n; i++) {
    if (!req[i])
      continue;
    if (w[i].status != UCS_OK && r == 0) {
      r = -errno_of (w[i].status);
    }
    ucp_request_free (req[i]);
  }
  return r;
}

static int
send_fail (struct ucx_conn *c, int r)
{
  if (r == -EPIPE)
    return rmr_err (EPIPE, "%s: send: the connection is down",
                    c->base.peer_name);
  return rmr_err (-r, "%s: send: %s", c->base.peer_name, strerror (-r));
}

static int
ucx_send (struct rmr_conn *base, const struct rmr_hdr *hdr,
          const struct iovec *iov, int iovcnt)
{
  struct ucx_conn *c = (struct ucx_conn *) base;
  uint8_t hbuf[RMR_HDR_SIZE];
  ucp_dt_iov_t dt[MAX_IOV];
  struct send_wait w;
  size_t total = 0;
  void *req;
  int i, r;

  if (iovcnt > MAX_IOV)
    return rmr_err (EINVAL, "%s: send: %d iovecs, at most %d",
                    c->base.peer_name, iovcnt, MAX_IOV);
  for (i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  assert (total == hdr->payload_len);
  rmr_hdr_encode (hdr, hbuf);
  r = send_start (c, UCX_AM_MSG, hbuf, sizeof hbuf, iov, iovcnt, dt, &w, &req);
  if (r == 0)
    r = send_wait (c, &req, &w, 1);
  return r < 0 ? send_fail (c, r) : 0;
}

#define MANY_BATCH 32

static int
ucx_send_many (struct rmr_conn *base, const struct rmr_msg *msgs, int n)
{
  struct ucx_conn *c = (struct ucx_conn *) base;
  uint8_t hbuf[MANY_BATCH][RMR_HDR_SIZE];
  struct send_wait w[MANY_BATCH];
  void *req[MANY_BATCH];
  int i, k, r = 0, r2;

  for (i = 0; i < n && r == 0; i += MANY_BATCH) {
    for (k = 0; k < MANY_BATCH && i + k < n; k++) {
      const struct rmr_msg *m = &msgs[i + k];
      assert (m->iov.iov_len == m->hdr.payload_len);
      rmr_hdr_encode (&m->hdr, hbuf[k]);
      r = send_start (c, UCX_AM_MSG, hbuf[k], RMR_HDR_SIZE, &m->iov,
                      m->iov.iov_len ? 1 : 0, NULL, &w[k], &req[k]);
      if (r < 0)
        break;
    }
    r2 = send_wait (c, req, w, k);
    if (r == 0)
      r = r2;
  }
  return r < 0 ? send_fail (c, r) : 0;
}

/* ---- the preamble ---- */

int
ucx_hs_send (struct ucx_conn *c, const uint8_t *buf, size_t len,
             uint64_t deadline)
{
  struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
  struct send_wait w;
  void *req;
  uint64_t now;
  int r;

  r = send_start (c, UCX_AM_HELLO, NULL, 0, &iov, 1, NULL, &w, &req);
  if (r < 0)
    return rmr_err (-r, "sending the hello: %s", strerror (-r));
  while (req && !w.done) {
    if (ucp_worker_progress (c->worker) > 0)
      continue;
    now = ucx_now_ms ();
    if (failed (c) || now >= deadline || atomic_load (&c->shutdown_req)) {
      ucx_ep_close (c); /* completes the request */
      continue;
    }
    sleep_on_worker (c, (int) MIN (deadline - now, 1000));
  }
  if (req) {
    ucp_request_free (req);
    if (w.status != UCS_OK) {
      if (failed (c))
        return rmr_err (c->err, "%s", c->reason);
      if (ucx_now_ms () >= deadline)
        return rmr_err (ETIMEDOUT, "sending the hello timed out");
      return rmr_err (errno_of (w.status), "sending the hello: %s",
                      ucs_status_string (w.status));
    }
  }
  return 0;
}

int
ucx_hs_recv (struct ucx_conn *c, uint8_t *buf, size_t cap, size_t *len,
             uint64_t deadline)
{
  uint64_t now;
  bool got;

  for (;;) {
    progress_all (c);
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    got = c->hs_got;
    if (got) {
      *len = MIN (c->hs_len, cap);
      memcpy (buf, c->hs_buf, *len);
      c->hs_got = false;
    }
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
    if (got)
      return 0;
    if (failed (c))
      return rmr_err (c->err, "%s", c->reason);
    if (atomic_load (&c->shutdown_req))
      return rmr_err (ECONNABORTED, "connection closed locally");
    now = ucx_now_ms ();
    if (now >= deadline)
      return rmr_err (ETIMEDOUT, "no hello within the time limit");
    sleep_on_worker (c, (int) MIN (deadline - now, 1000));
  }
}

/* The lanes UCX chose for the endpoint, from ucp_ep_print_info ():
 * "tcp/eth0" or "rc_mlx5/mlx5_0:1 ...", each transport/device once.
 */
static void
describe_lanes (struct ucx_conn *c, char *out, size_t n)
{
  char *text = NULL, *p, *q, *line, *save = NULL;
  size_t len = 0, used = 0;
  FILE *f;

  out[0] = '\0';
  f = open_memstream (&text, &len);
  if (!f)
    return;
  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  if (c->ep)
    ucp_ep_print_info (c->ep, f);
  pthread_rwlock_unlock (&c->ep_lock);
  fclose (f);
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    /* "#                 lane[0]:  2:tcp/eth0.0 md[1] ..." */
    p = strstr (line, "lane[");
    if (!p || !(p = strchr (p, ':')) || !(p = strchr (p + 1, ':')))
      continue;
    p++;
    q = p + strcspn (p, " .");
    if (q == p || (size_t) (q - p) >= n)
      continue;
    *q = '\0';
    if (strstr (out, p))
      continue;
    used +=
      snprintf (out + used, n - MIN (used, n), "%s%s", used ? " " : "", p);
    if (used >= n)
      break;
  }
  free (text);
}

void
ucx_conn_describe (struct ucx_conn *c, bool authenticated, const char *identity)
{
  char lanes[80];

  snprintf (c->base.security, sizeof c->base.security, "%s",
            authenticated ? "PSK challenge-response (HMAC-SHA256), "
                            "not encrypted"
                          : "plaintext");
  snprintf (c->base.identity, sizeof c->base.identity, "%s",
            authenticated ? identity : "");
  describe_lanes (c, lanes, sizeof lanes);
  snprintf (c->base.path, sizeof c->base.path, "ucx%s%s", lanes[0] ? " " : "",
            lanes);
}

/* The connecting side of the preamble (ucx-auth.h), under the process's
 * key configuration; the table of modes is tcp's (transport-tcp.c).
 */
static int
client_preamble (struct ucx_conn *c, uint64_t deadline)
{
  const struct rmr_tls *t = rmr_tls_current ();
  enum rmr_tls_mode mode = rmr_tls_mode (t);
  struct rmr_ucx_c1 c1 = {.hello = {.version = RMR_HELLO_VERSION}};
  struct rmr_ucx_s1 s1;
  uint8_t buf[RMR_UCX_C1_MAX], want[RMR_UCX_PROOF], proof[RMR_UCX_PROOF];
  const uint8_t *key = NULL;
  size_t len, keylen = 0;
  int r;

  if (mode != RMR_TLS_OFF) {
    c1.hello.flags |= RMR_HELLO_TLS;
    snprintf (c1.identity, sizeof c1.identity, "%s", rmr_tls_username (t));
    if (rmr_tls_key (t, c1.identity, &key, &keylen) < 0)
      return rmr_err (ENOKEY, "no key for our identity '%s'", c1.identity);
    r = rmr_ucx_nonce (c1.nonce);
    if (r < 0)
      return r;
  }
  len = rmr_ucx_c1_encode (&c1, buf);
  r = ucx_hs_send (c, buf, len, deadline);
  if (r < 0)
    return r;
  r = ucx_hs_recv (c, buf, sizeof buf, &len, deadline);
  if (r == -ETIMEDOUT)
    return rmr_err (ETIMEDOUT, "no hello from the node in time (not an "
                               "rmr-storaged listening on ucx:?)");
  if (r < 0) {
    rmr_err_prefix ("during the hello: ");
    return r;
  }
  if (rmr_ucx_s1_decode (buf, len, &s1) < 0)
    return -EPROTO;
  r = rmr_hello_verdict (mode, &s1.hello);
  if (r <= 0) {
    if (r == 0)
      ucx_conn_describe (c, false, "");
    return r;
  }
  r = rmr_ucx_proof (key, keylen, true, c1.nonce, s1.nonce, c1.identity, want);
  if (r < 0)
    return r;
  if (!rmr_ucx_proof_equal (want, s1.proof))
    return rmr_err (EACCES,
                    "the node's proof does not match: it holds another key "
                    "for identity '%s' (check both tls-psk key files)",
                    c1.identity);
  r =
    rmr_ucx_proof (key, keylen, false, c1.nonce, s1.nonce, c1.identity, proof);
  if (r < 0)
    return r;
  r = ucx_hs_send (c, proof, sizeof proof, deadline);
  if (r < 0)
    return r;
  ucx_conn_describe (c, true, c1.identity);
  return 0;
}

static int
connect_one (struct ucx_conn *c, const struct addrinfo *ai)
{
  ucp_ep_params_t ep = {
    .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                  UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER,
    .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
    .sockaddr = {.addr = ai->ai_addr, .addrlen = ai->ai_addrlen},
    .err_mode = UCP_ERR_HANDLING_MODE_PEER,
    .err_handler = {.cb = ucx_ep_error, .arg = c},
  };
  ucs_status_t st;

  st = ucp_ep_create (c->worker, &ep, &c->ep);
  if (st != UCS_OK) {
    c->ep = NULL;
    return rmr_err (errno_of (st), "connect: %s", ucs_status_string (st));
  }
  return 0;
}

static int
ucx_connect (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
             struct rmr_conn **out)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
  struct addrinfo *res, *ai;
  char port[8], name[300];
  uint64_t tmo = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                  : DEFAULT_CONNECT_TIMEOUT_MS;
  uint64_t deadline = ucx_now_ms () + tmo;
  struct ucx_conn *c = NULL;
  int r = -EHOSTUNREACH;

  rmr_addr_format (addr, name, sizeof name);
  snprintf (port, sizeof port, "%u", addr->port);
  r = getaddrinfo (addr->host, port, &hints, &res);
  if (r != 0)
    return rmr_err (EHOSTUNREACH, "%s: cannot resolve host: %s", name,
                    gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next) {
    r = ucx_conn_new (opts, &c);
    if (r < 0)
      break;
    c->base.peer = *addr;
    snprintf (c->base.peer_name, sizeof c->base.peer_name, "%s", name);
    tl_progress = c;
    r = connect_one (c, ai);
    if (r == 0)
      r = client_preamble (c, deadline);
    tl_progress = NULL;
    if (r == 0)
      break;
    ucx_conn_destroy (c);
    c = NULL;
    if (r != -ECONNRESET && r != -EHOSTUNREACH && r != -ECONNREFUSED)
      break; /* a refusal or a timeout: the next address will not do */
  }
  freeaddrinfo (res);
  if (r < 0) {
    rmr_err_prefix ("%s: ", name);
    return r;
  }
  *out = &c->base;
  return 0;
}

/* ---- the progress thread ---- */

/* Send a keepalive (request, or the reply to req) unless one is still in
 * flight: the peer is receiving from us then anyway.
 */
static void
send_keepalive (struct ucx_conn *c, const struct rmr_hdr *req)
{
  struct rmr_hdr ka = {.type = RMR_MSG_KEEPALIVE, .member_id = RMR_MEMBER_NONE};
  ucp_request_param_t p = {.op_attr_mask = 0};
  ucs_status_ptr_t sp;

  if (c->ka_req) {
    if (ucp_request_check_status (c->ka_req) == UCS_INPROGRESS)
      return;
    ucp_request_free (c->ka_req);
    c->ka_req = NULL;
  }
  if (req) {
    ka.flags = RMR_HF_REPLY;
    ka.tag = req->tag;
  }
  rmr_hdr_encode (&ka, c->ka_hbuf);
  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  sp = c->ep ? ucp_am_send_nbx (c->ep, UCX_AM_MSG, c->ka_hbuf, RMR_HDR_SIZE,
                                NULL, 0, &p)
             : NULL;
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_PTR (sp))
    c->ka_req = sp;
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
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  if (tl_progress != c)
    wake (c);
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
  sp = ucp_am_recv_data_nbx (c->worker, c->cur.data,
                             dest ? dest : c->cur_scratch, len, &p);
  if (UCS_PTR_IS_ERR (sp)) {
    c->cur_active = false;
    return rmr_err (errno_of (UCS_PTR_STATUS (sp)), "rendezvous receive: %s",
                    ucs_status_string (UCS_PTR_STATUS (sp)));
  }
  c->cur_req = UCS_PTR_IS_PTR (sp) ? sp : NULL;
  if (!c->cur_req) {
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
      if (c->cur_req)
        ucp_request_free (c->cur_req);
      c->cur_req = NULL;
      free (c->cur_scratch);
      c->cur_scratch = NULL;
      if (st != UCS_OK)
        return rmr_err (errno_of (st), "receiving a payload: %s",
                        ucs_status_string (st));
      c->h->message (c->opaque, &c->cur.hdr, c->cur_dest);
      (*count)++;
      continue;
    }
    if (atomic_load (&c->shutdown_req) || atomic_load (&c->pause_req))
      return 0;
    if (!rx_pop (c, &e))
      return 0;
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
      ucp_am_data_release (c->worker, e.data);
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

static int
poll_timeout (struct ucx_conn *c, uint64_t now)
{
  uint64_t t = UINT64_MAX;

  if (c->opts.keepalive_ms)
    t = MIN (t, c->opts.keepalive_ms / 2 + 1);
  if (c->opts.idle_timeout_ms) {
    uint64_t deadline = atomic_load (&c->last_rx_ms) + c->opts.idle_timeout_ms;
    t = MIN (t, deadline > now ? deadline - now : 0);
  }
  return t == UINT64_MAX ? -1 : (int) MIN (t, 1000000);
}

/* A local close: tell the peer (am_bye), and give what was sent a
 * moment to arrive (a flush, at most BYE_FLUSH_MS) before the endpoint
 * is closed by force, which would drop it.
 */
#define BYE_FLUSH_MS 1000

static void
say_goodbye (struct ucx_conn *c)
{
  ucp_request_param_t p = {.op_attr_mask = 0};
  uint64_t deadline = ucx_now_ms () + BYE_FLUSH_MS;
  ucs_status_ptr_t bye = NULL, fl = NULL;

  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  if (c->ep && !failed (c)) {
    bye = ucp_am_send_nbx (c->ep, UCX_AM_BYE, NULL, 0, NULL, 0, &p);
    fl = ucp_ep_flush_nbx (c->ep, &p);
  }
  pthread_rwlock_unlock (&c->ep_lock);
  while (UCS_PTR_IS_PTR (fl) &&
         ucp_request_check_status (fl) == UCS_INPROGRESS &&
         ucx_now_ms () < deadline && !failed (c))
    if (ucp_worker_progress (c->worker) == 0)
      sleep_on_worker (c, 10);
  /* Freed requests still in flight complete when the endpoint closes. */
  if (UCS_PTR_IS_PTR (bye))
    ucp_request_free (bye);
  if (UCS_PTR_IS_PTR (fl))
    ucp_request_free (fl);
}

static void *
progress_thread (void *arg)
{
  struct ucx_conn *c = arg;
  char reason[700] = "";
  unsigned count;
  uint64_t now, last;
  int err = 0;

  tl_progress = c;
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
    progress_all (c);
    count = 0;
    if (deliver (c, &count) < 0) {
      err = rmr_get_errno ();
      snprintf (reason, sizeof reason, "%s: %s", c->base.peer_name,
                rmr_get_error ());
      break;
    }
    if (count && c->h->batch_end)
      c->h->batch_end (c->opaque);
    if (failed (c)) {
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
      continue; /* the handler may have queued sends: progress first */
    if (!ready (c))
      sleep_on_worker (c, poll_timeout (c, now));
  }

  /* Every later send fails at once and every waiting one completes;
   * then tell the owner.
   */
  atomic_store (&c->down, true);
  if (err == ECONNABORTED)
    say_goodbye (c);
  ucx_ep_close (c);
  if (c->cur_active) {
    while (!c->cur_done)
      if (ucp_worker_progress (c->worker) == 0)
        sleep_on_worker (c, 10);
    if (c->cur_req)
      ucp_request_free (c->cur_req);
    c->cur_req = NULL;
    c->cur_active = false;
  }
  if (c->ka_req) {
    ucp_request_free (c->ka_req);
    c->ka_req = NULL;
  }
  rx_drain_free (c);
  c->h->down (c->opaque, err ? err : EIO, reason);
  if (atomic_load (&c->free_on_exit)) {
    pthread_detach (pthread_self ());
    c->thread_started = false;
    tl_progress = NULL;
    ucx_conn_destroy (c);
  }
  return NULL;
}

int
ucx_conn_start (struct rmr_conn *base, const struct rmr_conn_handler *h,
                void *opaque)
{
  struct ucx_conn *c = (struct ucx_conn *) base;
  int r;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  c->h = h;
  c->opaque = opaque;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  atomic_store (&c->pause_req, false);
  c->thread_started = true;
  r = pthread_create (&c->thread, NULL, progress_thread, c);
  if (r != 0) {
    c->thread_started = false;
    return rmr_err (r, "%s: cannot start the progress thread: %s",
                    base->peer_name, strerror (r));
  }
  return 0;
}

static void
ucx_pause (struct rmr_conn *base)
{
  struct ucx_conn *c = (struct ucx_conn *) base;

  if (!c->thread_started)
    return;
  atomic_store (&c->pause_req, true);
  wake (c);
  pthread_join (c->thread, NULL);
  c->thread_started = false;
}

static int
ucx_resume (struct rmr_conn *base)
{
  struct ucx_conn *c = (struct ucx_conn *) base;

  if (c->thread_started || atomic_load (&c->down))
    return 0;
  return ucx_conn_start (base, c->h, c->opaque);
}

static void
ucx_shutdown (struct rmr_conn *base)
{
  struct ucx_conn *c = (struct ucx_conn *) base;

  atomic_store (&c->shutdown_req, true);
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  wake (c);
}

static void
ucx_free (struct rmr_conn *base)
{
  struct ucx_conn *c = (struct ucx_conn *) base;

  ucx_shutdown (base);
  if (c->thread_started) {
    if (tl_progress == c) {
      /* From our own down (): the thread frees on its way out. */
      atomic_store (&c->free_on_exit, true);
      return;
    }
    pthread_join (c->thread, NULL);
    c->thread_started = false;
  }
  ucx_conn_destroy (c);
}

void
ucx_name_of_sockaddr (const struct sockaddr *sa, char *buf, size_t n)
{
  char host[INET6_ADDRSTRLEN] = "?";

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
    inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
    snprintf (buf, n, "ucx:%s:%u", host, ntohs (in->sin_port));
  }
  else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
    inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf (buf, n, "ucx:[%s]:%u", host, ntohs (in6->sin6_port));
  }
  else
    snprintf (buf, n, "ucx:?");
}

const struct rmr_transport_ops rmr_transport_ucx = {
  .name = "ucx",
  .connect = ucx_connect,
  .listen = ucx_listen,
  .listener_close = ucx_listener_close,
  .start = ucx_conn_start,
  .send = ucx_send,
  .send_many = ucx_send_many,
  .pause = ucx_pause,
  .resume = ucx_resume,
  .shutdown = ucx_shutdown,
  .free = ucx_free,
};
