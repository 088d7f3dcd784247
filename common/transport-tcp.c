/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tcp transport: our own sockets, IPv4 and IPv6.
 *
 * Each connection has one receive thread.  It polls the socket and an
 * eventfd (for pause and shutdown), reads as much as the socket holds into
 * a receive buffer, and walks the messages in it: small payloads are
 * copied out of the buffer into the handler's destination, the rest of a
 * large payload is read straight into the destination (so a 1 MiB read
 * reply lands in the caller's buffer with no intermediate copy).
 *
 * Sends come from any thread, through the connection's send queue
 * (transport-tcp-send.c): one sender at a time writes the headers and
 * the callers' iovecs of every queued message (a write's payload goes to
 * every leg from the same buffer, never copied).
 *
 * Setup (transport.h): connect sends the hello and reads the node's,
 * then runs the TLS handshake if the node offered it; the listening side
 * is transport-tcp-listen.c.  With TLS, sends and receives go through
 * the session (tls.h): a send encrypts from the caller's buffers into
 * records (one copy, which encryption needs anyway), a receive decrypts
 * into the receive buffer or straight into a large payload's
 * destination; the receive loop drains records GnuTLS already holds
 * before it polls the socket again.
 *
 * Dead peers: TCP_USER_TIMEOUT bounds how long sent data may stay
 * unacknowledged, TCP keepalive probes an idle link, and the message-level
 * keepalive (transport.h) catches a peer whose kernel answers but whose
 * process does not.
 *
 * Locking: send_lock protects the send queue (transport-tcp-send.c);
 * its sender owns writing to fd and the TLS session's send side.  The
 * receive buffer and the keepalive clocks belong to the receive thread.
 * Flags shared between threads are atomics.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "error.h"
#include "parse.h"
#include "transport-tcp.h"
#include "util.h"

#define RBUF_SIZE (256 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_USER_TIMEOUT_MS 30000

uint64_t
tcp_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
tcp_wake (int efd)
{
  uint64_t one = 1;

  if (write (efd, &one, sizeof one) < 0) {
    /* The counter cannot overflow in practice; nothing to do. */
  }
}

static void
set_sockopts (int fd, const struct rmr_conn_opts *opts)
{
  int one = 1;
  unsigned ut =
    opts->user_timeout_ms ? opts->user_timeout_ms : DEFAULT_USER_TIMEOUT_MS;
  int idle = MAX (1, (int) (ut / 3000));
  int intvl = MAX (1, (int) (ut / 6000));
  int cnt = 3;

  /* Errors are ignored on purpose: a kernel without one of these options
   * still carries the data, only detects a dead peer later.
   */
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt (fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut);
  setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

struct tcp_conn *
tcp_conn_new (int fd, const struct rmr_conn_opts *opts)
{
  struct tcp_conn *c = calloc (1, sizeof *c);

  if (!c)
    return NULL;
  c->rbuf = malloc (RBUF_SIZE);
  c->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (!c->rbuf || c->wakefd < 0) {
    free (c->rbuf);
    if (c->wakefd >= 0)
      close (c->wakefd);
    free (c);
    return NULL;
  }
  c->base.ops = &rmr_transport_tcp;
  c->fd = fd;
  if (opts)
    c->opts = *opts;
  pthread_mutex_init (&c->send_lock, NULL);
  c->sq_tail = &c->sq_head;
  set_sockopts (fd, &c->opts);
  return c;
}

/* Connect to one resolved address with a deadline. */
static int
connect_one (const struct addrinfo *ai, uint64_t timeout_ms)
{
  int fd, err = 0;
  socklen_t len = sizeof err;
  struct pollfd p;

  fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
               ai->ai_protocol);
  if (fd < 0)
    return -errno;
  if (connect (fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS) {
      err = errno;
      close (fd);
      return -err;
    }
    p.fd = fd;
    p.events = POLLOUT;
    if (poll (&p, 1, timeout_ms) <= 0) {
      close (fd);
      return -ETIMEDOUT;
    }
    if (getsockopt (fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
      close (fd);
      return -(err ? err : EIO);
    }
  }
  /* Back to blocking: sends block while the socket is full; the receive
   * thread reads with MSG_DONTWAIT after poll.
   */
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

void
tcp_conn_describe (struct tcp_conn *c)
{
  snprintf (c->base.security, sizeof c->base.security, "%s",
            c->tls ? rmr_tls_describe (c->tls) : "plaintext");
  snprintf (c->base.identity, sizeof c->base.identity, "%s",
            c->tls ? rmr_tls_identity (c->tls) : "");
  snprintf (c->base.path, sizeof c->base.path, "tcp");
}

int
tcp_read_deadline (int fd, uint8_t *p, size_t n, uint64_t deadline)
{
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  uint64_t now;
  ssize_t k;
  int r;

  while (n > 0) {
    now = tcp_now_ms ();
    if (now >= deadline)
      return -ETIMEDOUT;
    r = poll (&pfd, 1, (int) MIN (deadline - now, 1000000));
    if (r < 0 && errno != EINTR)
      return -errno;
    if (r <= 0)
      continue;
    k = recv (fd, p, n, MSG_DONTWAIT);
    if (k == 0)
      return -ECONNRESET;
    if (k < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      return -errno;
    }
    p += k;
    n -= k;
  }
  return 0;
}

/* The connecting side of the hello (proto.h), then TLS if the node
 * offered it, all within timeout_ms.  Which side wants what:
 *   our mode   node: no keys      node: keys (on)   node: require
 *   off        plaintext          plaintext         refused
 *   on         plaintext          TLS               TLS
 *   require    refused (by us)    TLS               TLS
 */
static int
client_hello (struct tcp_conn *c, uint64_t timeout_ms)
{
  const struct rmr_tls *t = rmr_tls_current ();
  enum rmr_tls_mode mode = rmr_tls_mode (t);
  struct rmr_hello req = {.version = RMR_HELLO_VERSION}, rep;
  uint64_t deadline = tcp_now_ms () + timeout_ms, now;
  const char *name = c->base.peer_name;
  uint8_t buf[RMR_HELLO_SIZE];
  int r;

  if (mode != RMR_TLS_OFF)
    req.flags |= RMR_HELLO_TLS;
  rmr_hello_encode (&req, buf);
  if (send (c->fd, buf, sizeof buf, MSG_NOSIGNAL) != (ssize_t) sizeof buf)
    return rmr_err (errno ? errno : EIO, "%s: sending the hello: %m", name);
  r = tcp_read_deadline (c->fd, buf, sizeof buf, deadline);
  if (r == -ETIMEDOUT)
    return rmr_err (ETIMEDOUT,
                    "%s: no hello from the node within %" PRIu64
                    " ms (not an rmr-storaged?)",
                    name, timeout_ms);
  if (r < 0)
    return rmr_err (-r,
                    "%s: connection closed during the hello: %s (an "
                    "rmr-storaged of another version, or at its limits?)",
                    name, strerror (-r));
  if (rmr_hello_decode (buf, true, &rep) < 0) {
    rmr_err_prefix ("%s: ", name);
    return -EPROTO;
  }
  r = rmr_hello_verdict (mode, &rep);
  if (r < 0) {
    rmr_err_prefix ("%s: ", name);
    return r;
  }
  if (r == 0) {
    tcp_conn_describe (c);
    return 0;
  }
  now = tcp_now_ms ();
  r = rmr_tls_client_handshake (t, c->fd, deadline > now ? deadline - now : 1,
                                name, &c->tls);
  if (r < 0)
    return r;
  tcp_conn_describe (c);
  return 0;
}

static int
tcp_connect (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
             struct rmr_conn **out)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
  struct addrinfo *res, *ai;
  char port[8], name[300];
  uint64_t tmo = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                  : DEFAULT_CONNECT_TIMEOUT_MS;
  struct tcp_conn *c;
  int r, fd = -ECONNREFUSED;

  rmr_addr_format (addr, name, sizeof name);
  snprintf (port, sizeof port, "%u", addr->port);
  r = getaddrinfo (addr->host, port, &hints, &res);
  if (r != 0)
    return rmr_err (EHOSTUNREACH, "%s: cannot resolve host: %s", name,
                    gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next) {
    fd = connect_one (ai, tmo);
    if (fd >= 0)
      break;
  }
  freeaddrinfo (res);
  if (fd < 0)
    return rmr_err (-fd, "%s: connect: %s", name, strerror (-fd));

  c = tcp_conn_new (fd, opts);
  if (!c) {
    close (fd);
    return rmr_err (ENOMEM, "%s: out of memory", name);
  }
  c->base.peer = *addr;
  snprintf (c->base.peer_name, sizeof c->base.peer_name, "%s", name);
  r = client_hello (c, tmo);
  if (r < 0) {
    tcp_conn_destroy (c);
    return r;
  }
  *out = &c->base;
  return 0;
}

/* Read exactly n bytes into p, or discard them if p is NULL: the rest of
 * a large payload.  The socket is not blocked on: between pieces the
 * thread polls with the same checks as the receive loop (a shutdown, the
 * idle timeout), so a peer that stops in the middle of a payload (or of
 * a TLS record) cannot hold this thread.  -errno with the reason
 * recorded (no peer name: the caller adds it).
 */
static int
recv_exact (struct tcp_conn *c, uint8_t *p, size_t n)
{
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  uint8_t scratch[4096];
  uint64_t now;
  ssize_t r;

  while (n > 0) {
    size_t want = p ? n : MIN (n, sizeof scratch);
    if (c->tls)
      r = rmr_tls_recv (c->tls, p ? p : scratch, want);
    else {
      r = recv (c->fd, p ? p : scratch, want, MSG_DONTWAIT);
      if (r < 0)
        r = errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
    }
    if (r != -EAGAIN && r <= 0 && atomic_load (&c->shutdown_req))
      return rmr_err (ECONNABORTED, "connection closed locally");
    if (r == 0)
      return rmr_err (ECONNRESET, "connection closed by peer");
    if (r == -EAGAIN) {
      if (atomic_load (&c->shutdown_req))
        return rmr_err (ECONNABORTED, "connection closed locally");
      now = tcp_now_ms ();
      if (c->opts.idle_timeout_ms &&
          now - c->last_rx_ms >= c->opts.idle_timeout_ms)
        return rmr_err (ETIMEDOUT,
                        "peer silent for %" PRIu64
                        " ms in the middle of a message",
                        now - c->last_rx_ms);
      if (poll (&pfd, 1, 1000) < 0 && errno != EINTR)
        return rmr_err (errno, "poll: %m");
      continue;
    }
    if (r < 0)
      return c->tls ? r : rmr_err (-r, "receive: %s", strerror (-r));
    atomic_fetch_add (&c->base.bytes_received, r);
    c->last_rx_ms = tcp_now_ms ();
    if (p)
      p += r;
    n -= r;
  }
  return 0;
}

static void
keepalive_reply (struct tcp_conn *c, const struct rmr_hdr *req)
{
  struct rmr_hdr rep = {.type = RMR_MSG_KEEPALIVE,
                        .flags = RMR_HF_REPLY,
                        .tag = req->tag,
                        .member_id = RMR_MEMBER_NONE};

  /* If the socket is full the peer is receiving from us anyway, which
   * keeps it from timing out: skip rather than block this thread.
   */
  tcp_send_nowait (c, &rep);
}

/* Walk the complete messages in rbuf.  Returns 0 to go on, or -errno
 * (with the reason in the error buffer) when the connection must end.
 */
static int
process (struct tcp_conn *c)
{
  size_t pos = 0;
  struct rmr_hdr hdr;
  uint8_t *dest;
  size_t avail;
  int r;

  while (c->rlen - pos >= RMR_HDR_SIZE) {
    if (rmr_hdr_decode (c->rbuf + pos, &hdr) < 0)
      return -EPROTO;
    if (hdr.type == RMR_MSG_KEEPALIVE) {
      pos += RMR_HDR_SIZE;
      if (!(hdr.flags & RMR_HF_REPLY))
        keepalive_reply (c, &hdr);
      continue;
    }
    avail = c->rlen - pos - RMR_HDR_SIZE;
    dest = NULL;
    if (hdr.payload_len > 0)
      dest = c->h->payload_buf (c->opaque, &hdr);
    if (avail >= hdr.payload_len) {
      if (dest)
        memcpy (dest, c->rbuf + pos + RMR_HDR_SIZE, hdr.payload_len);
      pos += RMR_HDR_SIZE + hdr.payload_len;
    }
    else {
      /* The rest of the payload is still on the wire: read it straight
       * into its destination.  The buffer is then empty.
       */
      if (dest && avail)
        memcpy (dest, c->rbuf + pos + RMR_HDR_SIZE, avail);
      r = recv_exact (c, dest ? dest + avail : NULL, hdr.payload_len - avail);
      if (r < 0)
        return r;
      pos = c->rlen = 0;
    }
    c->h->message (c->opaque, &hdr, dest);
  }
  if (c->h->batch_end)
    c->h->batch_end (c->opaque);
  if (pos > 0) {
    memmove (c->rbuf, c->rbuf + pos, c->rlen - pos);
    c->rlen -= pos;
  }
  return 0;
}

static void
maybe_keepalive (struct tcp_conn *c, uint64_t now)
{
  struct rmr_hdr ka = {.type = RMR_MSG_KEEPALIVE, .member_id = RMR_MEMBER_NONE};

  if (!c->opts.keepalive_ms)
    return;
  if (now - c->last_rx_ms < c->opts.keepalive_ms ||
      now - c->last_ka_ms < c->opts.keepalive_ms)
    return;
  c->last_ka_ms = now;
  tcp_send_nowait (c, &ka);
}

/* The connection whose receive thread this is: tcp_free, called from the
 * thread's own down (), leaves the freeing to the thread.  Not c->thread,
 * which pthread_create may store only after the thread runs (a peer
 * refused at once goes down that soon).
 */
static _Thread_local struct tcp_conn *recv_thread_conn;

static void *
recv_thread (void *arg)
{
  struct tcp_conn *c = arg;
  struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
                        {.fd = c->wakefd, .events = POLLIN}};
  int err = 0, tmo;
  char reason[600] = "";
  uint64_t now, junk;
  ssize_t n;

  recv_thread_conn = c;
  c->last_rx_ms = c->last_ka_ms = tcp_now_ms ();
  for (;;) {
    if (atomic_load (&c->shutdown_req)) {
      err = ECONNABORTED;
      snprintf (reason, sizeof reason, "%s: connection closed locally",
                c->base.peer_name);
      break;
    }
    if (atomic_load (&c->pause_req))
      return NULL;
    now = tcp_now_ms ();
    if (c->opts.idle_timeout_ms &&
        now - c->last_rx_ms >= c->opts.idle_timeout_ms &&
        !(c->tls && rmr_tls_pending (c->tls) > 0)) {
      err = ETIMEDOUT;
      snprintf (reason, sizeof reason,
                "%s: peer silent for %" PRIu64 " ms (keepalive timeout)",
                c->base.peer_name, now - c->last_rx_ms);
      break;
    }
    maybe_keepalive (c, now);
    tmo = rmr_conn_poll_timeout (&c->opts, c->last_rx_ms, now);
    if (c->tls && rmr_tls_pending (c->tls) > 0) {
      /* A record is decrypted already: the socket may have nothing. */
      p[0].revents = POLLIN;
      p[1].revents = 0;
    }
    else if (poll (p, 2, tmo) < 0 && errno != EINTR) {
      err = errno;
      snprintf (reason, sizeof reason, "%s: poll: %s", c->base.peer_name,
                strerror (err));
      break;
    }
    if (p[1].revents & POLLIN) {
      if (read (c->wakefd, &junk, sizeof junk) < 0) {
        /* Spurious: the flags above say why we were woken. */
      }
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    if (c->tls) {
      n = rmr_tls_recv (c->tls, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
      if (n == -EAGAIN)
        continue;
      if (n < 0) {
        errno = -n;
        n = -1;
      }
    }
    else
      n = recv (c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0 && atomic_load (&c->shutdown_req))
      continue; /* reported as closed locally above */
    if (n == 0) {
      err = ECONNRESET;
      snprintf (reason, sizeof reason, "%s: connection closed by peer",
                c->base.peer_name);
      break;
    }
    if (n < 0) {
      err = errno;
      snprintf (reason, sizeof reason, "%s: receive: %s", c->base.peer_name,
                c->tls && rmr_get_error () ? rmr_get_error () : strerror (err));
      break;
    }
    atomic_fetch_add (&c->base.bytes_received, n);
    c->rlen += n;
    c->last_rx_ms = tcp_now_ms ();
    if (process (c) < 0) {
      err = rmr_get_errno ();
      snprintf (reason, sizeof reason, "%s: %s", c->base.peer_name,
                rmr_get_error () ? rmr_get_error () : "receive failed");
      break;
    }
  }

  /* Make every later send fail at once, then tell the owner. */
  shutdown (c->fd, SHUT_RDWR);
  atomic_store (&c->down, true);
  c->h->down (c->opaque, err ? err : EIO, reason);
  if (atomic_load (&c->free_on_exit)) {
    pthread_detach (pthread_self ());
    c->thread_started = false;
    tcp_conn_destroy (c);
  }
  return NULL;
}

int
tcp_conn_start (struct rmr_conn *base, const struct rmr_conn_handler *h,
                void *opaque)
{
  struct tcp_conn *c = (struct tcp_conn *) base;
  int r;

  c->h = h;
  c->opaque = opaque;
  atomic_store (&c->pause_req, false);
  /* Before the thread runs: it may go down, free c and clear this before
   * pthread_create returns.
   */
  c->thread_started = true;
  r = pthread_create (&c->thread, NULL, recv_thread, c);
  if (r != 0) {
    c->thread_started = false;
    return rmr_err (r, "%s: cannot start receive thread: %s", base->peer_name,
                    strerror (r));
  }
  return 0;
}

static void
tcp_pause (struct rmr_conn *base)
{
  struct tcp_conn *c = (struct tcp_conn *) base;

  if (!c->thread_started)
    return;
  atomic_store (&c->pause_req, true);
  tcp_wake (c->wakefd);
  pthread_join (c->thread, NULL);
  c->thread_started = false;
}

static int
tcp_resume (struct rmr_conn *base)
{
  struct tcp_conn *c = (struct tcp_conn *) base;

  if (c->thread_started || atomic_load (&c->down))
    return 0;
  return tcp_conn_start (base, c->h, c->opaque);
}

static void
tcp_shutdown (struct rmr_conn *base)
{
  struct tcp_conn *c = (struct tcp_conn *) base;

  atomic_store (&c->shutdown_req, true);
  /* Wakes a receive blocked in the middle of a payload, and a sender
   * blocked on a full socket.
   */
  shutdown (c->fd, SHUT_RDWR);
  tcp_wake (c->wakefd);
}

void
tcp_conn_destroy (struct tcp_conn *c)
{
  rmr_tls_sess_free (c->tls);
  close (c->fd);
  close (c->wakefd);
  assert (c->sq_head == NULL && !c->sending);
  pthread_mutex_destroy (&c->send_lock);
  free (c->rbuf);
  free (c);
}

static void
tcp_free (struct rmr_conn *base)
{
  struct tcp_conn *c = (struct tcp_conn *) base;

  tcp_shutdown (base);
  if (c->thread_started) {
    if (recv_thread_conn == c) {
      /* Called from our own down (): the thread frees on its way out. */
      atomic_store (&c->free_on_exit, true);
      return;
    }
    pthread_join (c->thread, NULL);
  }
  tcp_conn_destroy (c);
}

const struct rmr_transport_ops rmr_transport_tcp = {
  .name = "tcp",
  .connect = tcp_connect,
  .listen = tcp_listen,
  .listener_close = tcp_listener_close,
  .start = tcp_conn_start,
  .send = tcp_send,
  .send_many = tcp_send_many,
  .send_async = tcp_send_async,
  .pause = tcp_pause,
  .resume = tcp_resume,
  .shutdown = tcp_shutdown,
  .free = tcp_free,
};
