/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport (DESIGN 10): UCX's UCP active messages.  On hosts
 * with RDMA devices UCX carries them over verbs (rc, dc, ud) through
 * rdma-core; elsewhere over its own tcp, so this same code runs in every
 * test here.
 *
 * One UCX context and one worker per process, made on first use (a
 * process that only speaks tcp never touches UCX), with one progress
 * thread that only progresses it: it sleeps in epoll on the worker's
 * event fd (ucp_worker_arm) and a wake-up eventfd (ucx_kick), never busy
 * polling, and runs UCX's callbacks, which never block.  Every
 * connection and listener is an endpoint on that worker.  Every UCX call
 * holds ucx_mu (transport-ucx.h), so the worker is in thread mode
 * SERIALIZED.
 *
 * Why one worker: UCX 1.13's async layer keeps one table of fd handlers
 * for the whole process, while each worker queues the events it missed
 * (its context was busy) by fd number.  With a worker per connection,
 * a connection that closed left such an entry behind, the fd number
 * went to another worker's new socket, and the first worker's next
 * progress found a handler of another context: an assertion
 * (`handler->async == async`, __ucs_async_poll_missed) aborted the
 * process.  A node restarted after kill -9, while its peers reconnected,
 * died so.  One worker has one context: no handler can belong to
 * another.  (UCX fixed it upstream in 2024, PR 9942; Debian 12 has
 * 1.13.)
 *
 * Receiving: each connection has a receive thread, as on tcp, from which
 * alone the handler's callbacks come, in order, never concurrently.  The
 * active-message callbacks (transport-ucx-recv.c) find the connection by
 * the message's reply endpoint (every send carries
 * UCP_AM_SEND_FLAG_REPLY) in `eps`, queue the message (its eager data
 * kept by UCX, UCP_AM_FLAG_PERSISTENT_DATA, or its rendezvous
 * descriptor) and wake the receive thread, which hands the queue over.
 * A rendezvous payload is received straight into the buffer
 * payload_buf () returns, and the messages behind it wait until it is
 * in: the handler sees the connection's messages in the order sent.
 *
 * Sending: ucp_am_send_nbx () with the encoded header as the AM header
 * and the caller's iovecs as the data; payloads of UCX_RNDV_MIN and more
 * go by rendezvous, so the receiver pulls them from the caller's buffer
 * (a 1 MiB write goes to every leg from the one buffer, never copied;
 * base.zcopy_bytes_sent counts them).  A send returns once UCX is done
 * with the caller's memory (the request completed, signalled on `cond`
 * by the progress thread, which never waits for anyone).
 *
 * Failures: the endpoint is opened in UCX's peer-failure error mode, so
 * a peer that dies or a link that breaks reaches ucx_ep_error (); the
 * message-level keepalive and idle timeout of transport.h run here as on
 * tcp, for a peer that is alive to UCX but silent.  Either way the
 * receive thread closes the endpoint (force: every request on it
 * completes, so no sender waits for ever), then calls down () once.  A
 * peer that answers keepalives but takes no data (a rendezvous payload
 * it never pulls) is what tcp's TCP_USER_TIMEOUT catches: here a sender
 * that sees none of its requests complete for user_timeout_ms (at least
 * SEND_STALL_MIN_MS) fails the connection itself (ETIMEDOUT) and closes
 * the endpoint.  A
 * restarted node is a new UCX endpoint: nothing of the old connection is
 * reused, and its requests failed with it.
 *
 * Lifetime: a connection is in `eps` from its endpoint's creation until
 * ucx_ep_close (); UCX's callbacks (under ucx_mu) find it there or not
 * at all, so once it is out none touches it any more, but for the
 * requests it still waits for (sends, its rendezvous receive), whose
 * completion it waits for before it is freed.
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

#include <glib.h>

#include "error.h"
#include "parse.h"
#include "transport-ucx.h"
#include "util.h"

/* How long a waiting sender sleeps before it kicks the progress thread. */
#define SEND_WAIT_MS 20
/* A send that makes no progress for so long fails the connection (as
 * TCP_USER_TIMEOUT on tcp) when the options give no user_timeout_ms, and
 * never sooner than SEND_STALL_MIN_MS: progress here is a whole message
 * done (a large rendezvous payload counts only once it is all in), and a
 * busy node may hold its receive thread for seconds (sess.c: up to 10 s
 * for a payload buffer), where tcp's socket buffers would absorb it.
 */
#define SEND_STALL_MS 30000
#define SEND_STALL_MIN_MS 15000
/* The longest ucx_ep_close () waits for UCX to finish the close. */
#define EP_CLOSE_WAIT_MS 5000
#define MAX_IOV 64

pthread_mutex_t ucx_mu = PTHREAD_MUTEX_INITIALIZER;
_Thread_local struct ucx_conn *ucx_tl_recv;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char g_err[200];
static struct {
  ucp_context_h ctx;
  ucp_worker_h worker; /* NULL: the start failed (g_err) */
  int efd, wakefd, epfd;
  atomic_bool asleep; /* the progress thread armed the worker (under
                         ucx_mu) and sleeps, or is about to */
  atomic_bool stop;   /* the progress thread must end (fini) */
  pthread_t thread;
  pid_t pid;        /* the process that made it (not a forked child) */
  atomic_uint live; /* connections and listeners not yet freed */
  GHashTable *eps;  /* ucp_ep_h -> struct ucx_conn; under ucx_mu */
} g = {.efd = -1, .wakefd = -1, .epfd = -1};

uint64_t
ucx_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
write_eventfd (int fd)
{
  uint64_t one = 1;

  if (write (fd, &one, sizeof one) < 0) {
    /* The counter cannot overflow in practice. */
  }
}

void
ucx_wake (struct ucx_conn *c)
{
  write_eventfd (c->wakefd);
}

void
ucx_kick (void)
{
  if (atomic_exchange (&g.asleep, false))
    write_eventfd (g.wakefd);
}

/* The progress thread: progress, then sleep until the worker has events
 * or someone kicks.  `asleep` is set under ucx_mu before the arm: a call
 * made after our unlock sees it and kicks; one made before it is done
 * by the progress that follows, or keeps the arm from succeeding.
 */
static void *
progress_thread (void *arg)
{
  struct epoll_event ev[2];
  ucs_status_t st;
  uint64_t junk;

  for (;;) {
    ucx_lock ();
    while (ucp_worker_progress (g.worker) > 0)
      ;
    atomic_store (&g.asleep, true);
    st = ucp_worker_arm (g.worker);
    ucx_unlock ();
    if (st == UCS_ERR_BUSY) {
      atomic_store (&g.asleep, false);
      continue;
    }
    /* Armed, or the arm failed (then look again soon). */
    if (epoll_wait (g.epfd, ev, 2, st == UCS_OK ? -1 : 10) > 0 &&
        read (g.wakefd, &junk, sizeof junk) < 0) {
      /* Nothing written to wakefd: the worker woke us. */
    }
    atomic_store (&g.asleep, false);
    if (atomic_load (&g.stop))
      return NULL;
  }
}

static int
set_am_handler (unsigned id, ucp_am_recv_callback_t cb, uint32_t flags)
{
  ucp_am_handler_param_t hp = {
    .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
                  UCP_AM_HANDLER_PARAM_FIELD_CB |
                  UCP_AM_HANDLER_PARAM_FIELD_FLAGS,
    .id = id,
    .cb = cb,
    .flags = flags,
  };
  ucs_status_t st = ucp_worker_set_am_recv_handler (g.worker, &hp);

  if (st != UCS_OK) {
    snprintf (g_err, sizeof g_err, "UCX active-message handler: %s",
              ucs_status_string (st));
    return -1;
  }
  return 0;
}

static void
init (void)
{
  ucp_params_t pp = {
    .field_mask = UCP_PARAM_FIELD_FEATURES,
    .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP,
  };
  ucp_worker_params_t wp = {
    .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
    .thread_mode = UCS_THREAD_MODE_SERIALIZED,
  };
  struct epoll_event ev = {.events = EPOLLIN};
  ucp_config_t *cfg;
  ucs_status_t st;

  /* A node restarted on its port must listen at once, not after the
   * old connections' TIME_WAIT (DESIGN 10).  A setting of UCX's tcp
   * connection manager, which ucp_config_modify () does not reach in UCX
   * 1.13: the environment, read when the worker is made.  The caller's
   * own setting wins.
   */
  setenv ("UCX_TCP_CM_REUSEADDR", "y", 0);
  st = ucp_config_read (NULL, NULL, &cfg);
  if (st != UCS_OK) {
    snprintf (g_err, sizeof g_err, "reading UCX's configuration: %s",
              ucs_status_string (st));
    return;
  }
  st = ucp_init (&pp, cfg, &g.ctx);
  ucp_config_release (cfg);
  if (st != UCS_OK) {
    snprintf (g_err, sizeof g_err, "UCX initialisation: %s",
              ucs_status_string (st));
    return;
  }
  st = ucp_worker_create (g.ctx, &wp, &g.worker);
  if (st == UCS_OK)
    st = ucp_worker_get_efd (g.worker, &g.efd);
  if (st != UCS_OK) {
    snprintf (g_err, sizeof g_err, "UCX worker: %s", ucs_status_string (st));
    g.worker = NULL;
    return;
  }
  g.eps = g_hash_table_new (g_direct_hash, g_direct_equal);
  g.wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  g.epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (g.wakefd < 0 || g.epfd < 0 ||
      epoll_ctl (g.epfd, EPOLL_CTL_ADD, g.efd, &ev) < 0 ||
      epoll_ctl (g.epfd, EPOLL_CTL_ADD, g.wakefd, &ev) < 0) {
    snprintf (g_err, sizeof g_err, "eventfd/epoll: %s", strerror (errno));
    g.worker = NULL;
    return;
  }
  if (set_am_handler (UCX_AM_HELLO, ucx_am_hello, 0) < 0 ||
      set_am_handler (UCX_AM_BYE, ucx_am_bye, 0) < 0 ||
      set_am_handler (UCX_AM_MSG, ucx_am_msg,
                      UCP_AM_FLAG_WHOLE_MSG | UCP_AM_FLAG_PERSISTENT_DATA) <
        0) {
    g.worker = NULL;
    return;
  }
  if (pthread_create (&g.thread, NULL, progress_thread, NULL) != 0) {
    snprintf (g_err, sizeof g_err, "cannot start UCX's progress thread");
    g.worker = NULL;
    return;
  }
  g.pid = getpid ();
}

/* At exit, or when librmr is unloaded (nbdkit unloads its plugin at
 * exit, after closing its pools): when no connection or listener is left
 * (g.live), the progress thread ends before the code it runs goes away,
 * and the worker, the context and the table of endpoints are freed.  A
 * connection still alive belongs to a thread that may call UCX until the
 * process ends: then everything stays.  Not in a forked child, which has
 * no progress thread.
 */
__attribute__ ((destructor)) static void
fini (void)
{
  if (!g.worker || g.pid != getpid () ||
      pthread_equal (pthread_self (), g.thread))
    return;
  if (atomic_load (&g.live) != 0)
    return;
  atomic_store (&g.stop, true);
  write_eventfd (g.wakefd);
  pthread_join (g.thread, NULL);
  ucx_lock ();
  ucp_worker_destroy (g.worker);
  ucp_cleanup (g.ctx);
  g_hash_table_destroy (g.eps);
  g.worker = NULL;
  ucx_unlock ();
  close (g.epfd);
  close (g.wakefd);
}

int
ucx_worker (ucp_worker_h *out)
{
  pthread_once (&once, init);
  if (!g.worker)
    return rmr_err (EIO, "%s", g_err);
  if (g.pid != getpid ())
    return rmr_err (EIO, "UCX was started before this process forked "
                         "(it does not survive a fork)");
  atomic_fetch_add (&g.live, 1); /* may run under ucx_mu: no lock */
  *out = g.worker;
  return 0;
}

void
ucx_worker_put (void)
{
  unsigned before = atomic_fetch_sub (&g.live, 1);

  assert (before > 0);
}

void
ucx_ep_register_unlocked (struct ucx_conn *c)
{
  g_hash_table_insert (g.eps, c->ep, c);
}

struct ucx_conn *
ucx_conn_of_ep_unlocked (ucp_ep_h ep)
{
  return ep ? g_hash_table_lookup (g.eps, ep) : NULL;
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
  ucx_wake (c);
}

/* An endpoint failed: from inside a UCX call, under ucx_mu.  The
 * connection is found by the endpoint, never by a pointer UCX kept: an
 * endpoint closed meanwhile has none.
 */
void
ucx_ep_error (void *arg, ucp_ep_h ep, ucs_status_t status)
{
  struct ucx_conn *c = ucx_conn_of_ep_unlocked (ep);
  bool setup, bye;

  if (!c)
    return;
  /* UCX reports a peer gone (process killed, host down) as a reset or
   * an endpoint timeout, whichever its transport saw first; a peer that
   * closed on purpose said goodbye first (am_bye).
   */
  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  setup = !c->h;
  bye = c->bye_queued;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  /* The peer said goodbye and closed: what it sent before is handed
   * over first, then the goodbye ends the connection (am_bye).
   */
  if (bye)
    return;
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

int
ucx_conn_new (const struct rmr_conn_opts *opts, struct ucx_conn **out)
{
  struct ucx_conn *c;
  ucp_worker_h w;
  int r;

  r = ucx_worker (&w);
  if (r < 0)
    return r;
  c = calloc (1, sizeof *c);
  if (!c) {
    ucx_worker_put ();
    return rmr_err (ENOMEM, "out of memory");
  }
  c->base.ops = &rmr_transport_ucx;
  c->worker = w;
  if (opts)
    c->opts = *opts;
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->cond, NULL);
  pthread_rwlock_init (&c->ep_lock, NULL);
  c->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->wakefd < 0) {
    r = errno;
    ucx_conn_destroy (c);
    return rmr_err (r, "eventfd: %s", strerror (r));
  }
  atomic_store (&c->last_rx_ms, ucx_now_ms ());
  *out = c;
  return 0;
}

bool
ucx_wait_flag (struct ucx_conn *c, const bool *flag, uint64_t deadline)
{
  struct timespec ts;
  uint64_t now, ms;
  bool got;

  if (pthread_mutex_lock (&c->lock) != 0)
    abort ();
  while (!*flag) {
    now = ucx_now_ms ();
    if (deadline && now >= deadline)
      break;
    ms = deadline ? MIN (deadline - now, SEND_WAIT_MS) : SEND_WAIT_MS;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long) ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    if (pthread_cond_timedwait (&c->cond, &c->lock, &ts) == ETIMEDOUT)
      ucx_kick ();
  }
  got = *flag;
  if (pthread_mutex_unlock (&c->lock) != 0)
    abort ();
  return got;
}

/* One forced close in flight.  It may outlive its connection: a close
 * not finished in EP_CLOSE_WAIT_MS is abandoned, and its callback,
 * whenever it comes, frees it.  Under close_mu, with close_cond.
 */
struct close_wait {
  bool done;
  bool abandoned;
};
static pthread_mutex_t close_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t close_cond = PTHREAD_COND_INITIALIZER;

static void
close_done (void *req, ucs_status_t status, void *user_data)
{
  struct close_wait *w = user_data;

  if (pthread_mutex_lock (&close_mu) != 0)
    abort ();
  w->done = true;
  if (w->abandoned)
    free (w);
  else
    pthread_cond_broadcast (&close_cond);
  if (pthread_mutex_unlock (&close_mu) != 0)
    abort ();
}

/* Take c's endpoint out of `eps` and start its forced close: the request
 * to wait for (with w), or NULL when it is done or w is NULL (UCX then
 * frees it on completion).  Under ucx_mu and ep_lock (write), c->ep set.
 */
static void *
close_start_unlocked (struct ucx_conn *c, struct close_wait *w)
{
  ucp_request_param_t p = {
    .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
    .flags = UCP_EP_CLOSE_FLAG_FORCE,
  };
  void *req;

  if (w) {
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    p.cb.send = close_done;
    p.user_data = w;
  }
  g_hash_table_remove (g.eps, c->ep);
  req = ucp_ep_close_nbx (c->ep, &p);
  c->ep = NULL;
  if (!UCS_PTR_IS_PTR (req))
    return NULL;
  if (!w) {
    ucp_request_free (req);
    return NULL;
  }
  return req;
}

void
ucx_ep_close_unlocked (struct ucx_conn *c)
{
  if (c->ep)
    close_start_unlocked (c, NULL);
}

void
ucx_ep_close (struct ucx_conn *c)
{
  struct close_wait *w;
  struct timespec ts;
  void *req;

  if (pthread_rwlock_wrlock (&c->ep_lock) != 0)
    abort ();
  if (!c->ep) {
    pthread_rwlock_unlock (&c->ep_lock);
    return;
  }
  w = calloc (1, sizeof *w);
  ucx_lock ();
  req = close_start_unlocked (c, w);
  if (req)
    ucp_request_free (req); /* released by UCX once complete */
  ucx_unlock ();
  pthread_rwlock_unlock (&c->ep_lock);
  if (req) {
    /* A forced close completes at once, as a rule; an endpoint whose
     * connection the peer rejected was seen not to (under valgrind's
     * slowness), so the wait is bounded.
     */
    uint64_t deadline = ucx_now_ms () + EP_CLOSE_WAIT_MS;
    if (pthread_mutex_lock (&close_mu) != 0)
      abort ();
    while (!w->done && ucx_now_ms () < deadline) {
      /* Kicked now and then: not every step of a close writes the
       * worker's event fd.
       */
      ucx_kick ();
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += SEND_WAIT_MS * 1000000L;
      ts.tv_sec += ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
      pthread_cond_timedwait (&close_cond, &close_mu, &ts);
    }
    w->abandoned = !w->done;
    if (!w->abandoned)
      free (w);
    if (pthread_mutex_unlock (&close_mu) != 0)
      abort ();
  }
  else
    free (w);
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
      ucx_lock ();
      ucp_am_data_release (c->worker, e.data);
      ucx_unlock ();
    }
}

void
ucx_conn_destroy (struct ucx_conn *c)
{
  if (c->worker) {
    ucx_ep_close (c);
    /* A receive thread paused (or never resumed) may have left a
     * rendezvous receive or a keepalive in flight: UCX holds c through
     * them until they complete, which the close brings about.
     */
    if (c->cur_active) {
      ucx_wait_flag (c, &c->cur_done, 0);
      c->cur_active = false;
    }
    ucx_lock ();
    if (c->cur_req)
      ucp_request_free (c->cur_req);
    if (c->ka_req)
      ucp_request_free (c->ka_req);
    ucx_unlock ();
    c->cur_req = c->ka_req = NULL;
    ucx_rx_drain_free (c);
    ucx_worker_put ();
  }
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
  /* The receiver finds the connection by the reply endpoint. */
  p.flags = UCP_AM_SEND_FLAG_REPLY;
  if (total >= UCX_RNDV_MIN)
    p.flags |= UCP_AM_SEND_FLAG_RNDV;
  w->c = c;
  w->done = false;
  *req = NULL;

  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  if (!c->ep || atomic_load (&c->down) || atomic_load (&c->shutdown_req)) {
    pthread_rwlock_unlock (&c->ep_lock);
    return -EPIPE;
  }
  ucx_lock ();
  sp = ucp_am_send_nbx (c->ep, id, hbuf, hlen, buf, count, &p);
  ucx_unlock ();
  pthread_rwlock_unlock (&c->ep_lock);
  if (UCS_PTR_IS_ERR (sp))
    return -ucx_errno_of (UCS_PTR_STATUS (sp));
  *req = UCS_PTR_IS_PTR (sp) ? sp : NULL;
  if (*req)
    ucx_kick ();
  if (total >= UCX_RNDV_MIN)
    atomic_fetch_add (&c->base.zcopy_bytes_sent, total);
  atomic_fetch_add (&c->base.bytes_sent, hlen + total);
  return 0;
}

/* Wait for the n requests (NULL ones are done).  Frees them.  0, or
 * -errno if any failed.
 */
/* How many of the n requests are done (c->lock held). */
static int
sends_done_unlocked (void **req, const struct ucx_send_wait *w, int n)
{
  int i, k = 0;

  for (i = 0; i < n; i++)
    k += !req[i] || w[i].done;
  return k;
}

int
ucx_send_wait_for (struct ucx_conn *c, void **req, struct ucx_send_wait *w,
                   int n)
{
  const uint64_t stall =
    MAX (c->opts.user_timeout_ms ? c->opts.user_timeout_ms : SEND_STALL_MS,
         SEND_STALL_MIN_MS);
  uint64_t moved = ucx_now_ms ();
  struct timespec ts;
  int i, r = 0, done, before = -1;

  for (;;) {
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    done = sends_done_unlocked (req, w, n);
    if (done < n) {
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += SEND_WAIT_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      if (pthread_cond_timedwait (&c->cond, &c->lock, &ts) == ETIMEDOUT)
        ucx_kick ();
      done = sends_done_unlocked (req, w, n);
    }
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
    if (done == n)
      break;
    if (done != before) {
      before = done;
      moved = ucx_now_ms ();
    }
    else if (ucx_now_ms () - moved >= stall && !ucx_failed (c))
      ucx_conn_fail (c, ETIMEDOUT,
                     "a send made no progress for %" PRIu64
                     " ms (the peer takes no data)",
                     stall);
    /* A failed or closing endpoint: close it, which completes what is
     * left.
     */
    if (ucx_failed (c) || atomic_load (&c->shutdown_req))
      ucx_ep_close (c);
  }
  for (i = 0; i < n; i++) {
    if (!req[i])
      continue;
    if (w[i].status != UCS_OK && r == 0)
      r = -ucx_errno_of (w[i].status);
    ucx_lock ();
    ucp_request_free (req[i]);
    ucx_unlock ();
  }
  /* Ended by the close of a failed connection: why it failed. */
  if (r < 0) {
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    if (c->failed && c->err)
      r = -c->err;
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
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
  r = pthread_create (&c->thread, NULL, ucx_recv_thread, c);
  if (r != 0) {
    c->thread_started = false;
    atomic_store (&c->pause_req, true); /* no inline delivery either */
    return rmr_err (r, "%s: cannot start the receive thread: %s",
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
  /* An inline delivery (opts.inline_handler) runs under ucx_mu: once
   * we had it, none is running and none starts.
   */
  ucx_lock ();
  ucx_unlock ();
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
    if (ucx_tl_recv == c) {
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
