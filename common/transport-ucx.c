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

#define SEND_WAIT_MS 20
/* The longest ucx_ep_close () waits for UCX to finish the close. */
#define EP_CLOSE_WAIT_MS 5000
#define MAX_IOV 64

static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static ucp_context_h g_ctx;
static char g_ctx_err[200];

/* The connection whose progress thread (or preamble) this thread runs. */
_Thread_local struct ucx_conn *ucx_tl_progress;

uint64_t
ucx_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ucx_wake (struct ucx_conn *c)
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
int
ucx_errno_of (ucs_status_t st)
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

void
ucx_conn_fail (struct ucx_conn *c, int err, const char *fmt, ...)
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
  if (ucx_tl_progress != c)
    ucx_wake (c);
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
    ucx_conn_fail (c, ECONNREFUSED, "connect: Connection refused (UCX: %s)",
                   ucs_status_string (status));
  else if (status == UCS_ERR_CONNECTION_RESET ||
           status == UCS_ERR_ENDPOINT_TIMEOUT)
    ucx_conn_fail (c, ECONNRESET, "connection lost (UCX: %s)",
                   ucs_status_string (status));
  else
    ucx_conn_fail (c, ucx_errno_of (status), "connection failed: %s",
                   ucs_status_string (status));
}

bool
ucx_failed (struct ucx_conn *c)
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
  pthread_mutex_init (&c->ucx_mutex, NULL);
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
  if (set_am_handler (c, UCX_AM_HELLO, ucx_am_hello, 0) < 0 ||
      set_am_handler (c, UCX_AM_BYE, ucx_am_bye, 0) < 0 ||
      set_am_handler (c, UCX_AM_MSG, ucx_am_msg,
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
void
ucx_progress_all (struct ucx_conn *c)
{
  while (ucx_progress (c) > 0)
    ;
}

/* Sleep until the worker has events or wakefd is written, at most
 * timeout_ms (-1: no limit).  The caller progresses afterwards.
 */
unsigned
ucx_progress (struct ucx_conn *c)
{
  unsigned n;

  ucx_lock (c);
  n = ucp_worker_progress (c->worker);
  ucx_unlock (c);
  return n;
}

void
ucx_sleep_on_worker (struct ucx_conn *c, int timeout_ms)
{
  struct epoll_event ev[2];
  ucs_status_t st;
  uint64_t junk;

  ucx_lock (c);
  st = ucp_worker_arm (c->worker);
  ucx_unlock (c);
  if (st == UCS_ERR_BUSY)
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
  ucx_lock (c);
  req = ucp_ep_close_nbx (c->ep, &p);
  ucx_unlock (c);
  c->ep = NULL;
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_PTR (req)) {
    /* A forced close completes at once, as a rule; an endpoint whose
     * connection the peer rejected was seen not to (under valgrind's
     * slowness), so the wait is bounded: the worker's destruction
     * finishes what is left.
     */
    uint64_t deadline = ucx_now_ms () + EP_CLOSE_WAIT_MS;
    while (!done && ucx_now_ms () < deadline) {
      if (ucx_progress (c) == 0 && !done)
        ucx_sleep_on_worker (c, 10);
    }
    ucx_lock (c);
    ucp_request_free (req);
    ucx_unlock (c);
  }
  /* Wake every sender still waiting: its request completed. */
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  pthread_cond_broadcast (&c->cond);
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
}

/* Hand back what the queue holds (the connection is going down). */
void
ucx_rx_drain_free (struct ucx_conn *c)
{
  struct ucx_rx e;

  while (ucx_rx_pop (c, &e))
    if (e.data) {
      ucx_lock (c);
      ucp_am_data_release (c->worker, e.data);
      ucx_unlock (c);
    }
}

void
ucx_conn_destroy (struct ucx_conn *c)
{
  if (c->worker) {
    ucx_ep_close (c);
    ucx_rx_drain_free (c);
    ucx_progress_all (c);
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
  pthread_mutex_destroy (&c->ucx_mutex);
  free (c);
}

/* ---- sends ---- */

static void
send_done (void *req, ucs_status_t status, void *user_data)
{
  struct ucx_send_wait *w = user_data;
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
int
ucx_send_start (struct ucx_conn *c, unsigned id, const void *hbuf, size_t hlen,
                const struct iovec *iov, int iovcnt, ucp_dt_iov_t *dt,
                struct ucx_send_wait *w, void **req)
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
  ucx_lock (c);
  sp = ucp_am_send_nbx (c->ep, id, hbuf, hlen, buf, count, &p);
  ucx_unlock (c);
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_ERR (sp))
    return -ucx_errno_of (UCS_PTR_STATUS (sp));
  *req = UCS_PTR_IS_PTR (sp) ? sp : NULL;
  if (total >= UCX_RNDV_MIN)
    atomic_fetch_add (&c->base.zcopy_bytes_sent, total);
  atomic_fetch_add (&c->base.bytes_sent, hlen + total);
  return 0;
}

/* Wait for the n requests (NULL ones are done).  Frees them.  0, or
 * -errno if any failed.
 */
int
ucx_send_wait_for (struct ucx_conn *c, void **req, struct ucx_send_wait *w,
                   int n)
{
  bool all;
  int i, r = 0;

  for (;;) {
    all = true;
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    for (i = 0; i < n && all; i++)
      all = !req[i] || w[i].done;
    if (!all && ucx_tl_progress != c) {
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
    if (ucx_progress (c) == 0 && ucx_tl_progress == c)
      ucx_sleep_on_worker (c, 10);
    /* A failed endpoint: close it, which completes what is left. */
    if (ucx_failed (c) || atomic_load (&c->shutdown_req))
      ucx_ep_close (c);
  }
  for (i = 0; i < n; i++) {
    if (!req[i])
      continue;
    if (w[i].status != UCS_OK && r == 0)
      r = -ucx_errno_of (w[i].status);
    ucx_lock (c);
    ucp_request_free (req[i]);
    ucx_unlock (c);
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
  struct ucx_send_wait w;
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
  r = ucx_send_start (c, UCX_AM_MSG, hbuf, sizeof hbuf, iov, iovcnt, dt, &w,
                      &req);
  if (r == 0)
    r = ucx_send_wait_for (c, &req, &w, 1);
  return r < 0 ? send_fail (c, r) : 0;
}

#define MANY_BATCH 32

static int
ucx_send_many (struct rmr_conn *base, const struct rmr_msg *msgs, int n)
{
  struct ucx_conn *c = (struct ucx_conn *) base;
  uint8_t hbuf[MANY_BATCH][RMR_HDR_SIZE];
  struct ucx_send_wait w[MANY_BATCH];
  void *req[MANY_BATCH];
  int i, k, r = 0, r2;

  for (i = 0; i < n && r == 0; i += MANY_BATCH) {
    for (k = 0; k < MANY_BATCH && i + k < n; k++) {
      const struct rmr_msg *m = &msgs[i + k];
      assert (m->iov.iov_len == m->hdr.payload_len);
      rmr_hdr_encode (&m->hdr, hbuf[k]);
      r = ucx_send_start (c, UCX_AM_MSG, hbuf[k], RMR_HDR_SIZE, &m->iov,
                          m->iov.iov_len ? 1 : 0, NULL, &w[k], &req[k]);
      if (r < 0)
        break;
    }
    r2 = ucx_send_wait_for (c, req, w, k);
    if (r == 0)
      r = r2;
  }
  return r < 0 ? send_fail (c, r) : 0;
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
  r = pthread_create (&c->thread, NULL, ucx_progress_thread, c);
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
  ucx_wake (c);
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
  ucx_wake (c);
}

static void
ucx_free (struct rmr_conn *base)
{
  struct ucx_conn *c = (struct ucx_conn *) base;

  ucx_shutdown (base);
  if (c->thread_started) {
    if (ucx_tl_progress == c) {
      /* From our own down (): the thread frees on its way out. */
      atomic_store (&c->free_on_exit, true);
      return;
    }
    pthread_join (c->thread, NULL);
    c->thread_started = false;
  }
  ucx_conn_destroy (c);
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
