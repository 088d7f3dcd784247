/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tcp transport's sends: a queue with one sender at a time.
 *
 * Any thread may send.  A send joins the connection's queue; the thread
 * that finds nobody sending becomes the sender and writes the queue, its
 * own messages and those that other threads queued meanwhile, with as few
 * sendmsg () calls as the iovec limit allows, until the queue is empty.
 * A thread that finds a sender at work does not wait for it: an
 * asynchronous send (rmr_conn_send_async) returns at once and hears of
 * its message through done (); a synchronous one (rmr_conn_send) sleeps
 * until done () was called.  Under load (nbdkit's threads all writing to
 * the same legs) one sendmsg () carries several requests, one TCP
 * segment and one wake-up of the node, and no thread sleeps on a lock
 * to send.  With one thread the cost is as before: one sendmsg () per
 * message.
 *
 * Invariants:
 * - Order: messages go out in the order their sends were queued (the
 *   queue is a FIFO and there is one sender).  A caller that needs one
 *   message after another queues the second after the first returned.
 * - The bytes of a message are written whole and never interleaved with
 *   another's: only the sender writes to the socket.
 * - A message's header, iovecs and payload are read only by the sender,
 *   only before its done (); so a caller may free them in done ().
 * - A failed write is sticky (send_err): the stream has lost its framing,
 *   so every later send fails at once with the same error, and the
 *   receive thread reports the connection down as usual.
 * - done () runs with no lock held; it may queue nothing on this
 *   connection (the sender would then never finish).
 *
 * Locking: send_lock protects the queue, sending and send_err; the
 * socket and TLS's send side belong to the thread that set sending.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "error.h"
#include "futex.h"
#include "transport-tcp.h"
#include "util.h"

/* One sendmsg () carries at most SQ_IOV iovecs and SQ_HDRS headers. */
#define SQ_IOV 128
#define SQ_HDRS 32
#define MAX_IOV 64 /* iovecs of one message's payload */

struct sq_batch {
  struct iovec v[SQ_IOV];
  int nv;
  uint8_t h[SQ_HDRS][RMR_HDR_SIZE];
  int nh;
};

/* Send the whole of iov (modified), retrying partial writes. */
static int
send_all (int fd, struct iovec *iov, int iovcnt, int flags, size_t *sent)
{
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = iovcnt};
  ssize_t n;

  while (msg.msg_iovlen > 0) {
    n = sendmsg (fd, &msg, MSG_NOSIGNAL | flags);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    *sent += n;
    flags = 0; /* once started, finish the message */
    while (n > 0 && msg.msg_iovlen > 0) {
      if ((size_t) n >= msg.msg_iov->iov_len) {
        n -= msg.msg_iov->iov_len;
        msg.msg_iov++;
        msg.msg_iovlen--;
      }
      else {
        msg.msg_iov->iov_base = (char *) msg.msg_iov->iov_base + n;
        msg.msg_iov->iov_len -= n;
        n = 0;
      }
    }
  }
  return 0;
}

/* Write whole messages (iov may be modified): through TLS, or straight
 * to the socket.  The sender only.  On failure the reason is recorded
 * (with the peer's name).
 */
static int
conn_write (struct tcp_conn *c, struct iovec *iov, int iovcnt, int flags)
{
  size_t sent = 0;
  int r;

  if (atomic_load (&c->down) || atomic_load (&c->shutdown_req))
    return rmr_err (EPIPE, "%s: send: connection closed", c->base.peer_name);
  if (c->tls)
    r = rmr_tls_send (c->tls, iov, iovcnt, &sent);
  else
    r = send_all (c->fd, iov, iovcnt, flags, &sent);
  atomic_fetch_add (&c->base.bytes_sent, sent);
  if (r == -EAGAIN && sent == 0 && (flags & MSG_DONTWAIT))
    return r; /* nothing written: a try, not a failure */
  if (r < 0 && c->tls) {
    rmr_err_prefix ("%s: ", c->base.peer_name);
    return r;
  }
  if (r < 0)
    return rmr_err (-r, "%s: send: %s", c->base.peer_name, strerror (-r));
  return 0;
}

static int
sq_flush (struct tcp_conn *c, struct sq_batch *b)
{
  int r = 0;

  if (b->nv > 0)
    r = conn_write (c, b->v, b->nv, 0);
  b->nv = b->nh = 0;
  return r;
}

static int
sq_add (struct tcp_conn *c, struct sq_batch *b, const struct rmr_hdr *hdr,
        const struct iovec *iov, int iovcnt)
{
  int i, r;

  if (b->nh == SQ_HDRS || b->nv + 1 + iovcnt > SQ_IOV) {
    r = sq_flush (c, b);
    if (r < 0)
      return r;
  }
  rmr_hdr_encode (hdr, b->h[b->nh]);
  b->v[b->nv].iov_base = b->h[b->nh++];
  b->v[b->nv++].iov_len = RMR_HDR_SIZE;
  for (i = 0; i < iovcnt; i++)
    if (iov[i].iov_len)
      b->v[b->nv++] = iov[i];
  return 0;
}

/* Write one queued send into the batch (flushing it when full). */
static int
sq_add_send (struct tcp_conn *c, struct sq_batch *b, const struct rmr_send *s)
{
  int i, r = 0;

  if (!s->nmsgs)
    return sq_add (c, b, &s->hdr, s->iov, s->iovcnt);
  for (i = 0; i < s->nmsgs && r == 0; i++)
    r = sq_add (c, b, &s->msgs[i].hdr, &s->msgs[i].iov,
                s->msgs[i].iov.iov_len ? 1 : 0);
  return r;
}

/* Called by the sender with send_lock held: write everything queued,
 * round by round, until the queue is empty; then stop being the sender
 * and release send_lock.
 */
static void
sq_run (struct tcp_conn *c)
{
  struct sq_batch b;
  struct rmr_send *list, *s, *next;
  int r;

  for (;;) {
    list = c->sq_head;
    c->sq_head = NULL;
    c->sq_tail = &c->sq_head;
    if (!list)
      break;
    r = c->send_err;
    pthread_mutex_unlock (&c->send_lock);

    b.nv = b.nh = 0;
    for (s = list; s && r == 0; s = s->next)
      r = sq_add_send (c, &b, s);
    if (r == 0)
      r = sq_flush (c, &b);

    pthread_mutex_lock (&c->send_lock);
    if (r < 0 && !c->send_err) {
      c->send_err = r;
      snprintf (c->send_errmsg, sizeof c->send_errmsg, "%s",
                rmr_get_error () ? rmr_get_error () : strerror (-r));
    }
    pthread_mutex_unlock (&c->send_lock);
    for (s = list; s; s = next) {
      next = s->next;
      s->done (s, r);
    }
    pthread_mutex_lock (&c->send_lock);
  }
  c->sending = false;
  pthread_mutex_unlock (&c->send_lock);
}

/* A bad send is the caller's mistake, refused before it is queued. */
static int
check_send (struct tcp_conn *c, const struct rmr_send *s)
{
  size_t total = 0;
  int i;

  if (s->nmsgs) {
    for (i = 0; i < s->nmsgs; i++)
      assert (s->msgs[i].iov.iov_len == s->msgs[i].hdr.payload_len);
    return 0;
  }
  if (s->iovcnt < 0 || s->iovcnt > MAX_IOV)
    return rmr_err (EINVAL, "%s: send: %d iovecs, at most %d",
                    c->base.peer_name, s->iovcnt, MAX_IOV);
  for (i = 0; i < s->iovcnt; i++)
    total += s->iov[i].iov_len;
  assert (total == s->hdr.payload_len);
  return 0;
}

void
tcp_send_async (struct rmr_conn *base, struct rmr_send *s)
{
  struct tcp_conn *c = (struct tcp_conn *) base;
  int r = check_send (c, s);

  if (r < 0) {
    s->done (s, r);
    return;
  }
  pthread_mutex_lock (&c->send_lock);
  if (c->send_err) {
    r = c->send_err;
    pthread_mutex_unlock (&c->send_lock);
    s->done (s, r);
    return;
  }
  s->next = NULL;
  *c->sq_tail = s;
  c->sq_tail = &s->next;
  if (c->sending) {
    pthread_mutex_unlock (&c->send_lock);
    return;
  }
  c->sending = true;
  sq_run (c);
}

/* A synchronous send waits for its done (). */
struct sync_send {
  struct rmr_send s;
  atomic_uint finished;
  int err;
};

static void
sync_done (struct rmr_send *s, int err)
{
  struct sync_send *ss = container_of (s, struct sync_send, s);

  ss->err = err;
  atomic_store (&ss->finished, 1);
  rmr_futex_wake (&ss->finished);
}

static int
sync_send (struct tcp_conn *c, struct sync_send *ss)
{
  ss->s.done = sync_done;
  atomic_init (&ss->finished, 0);
  tcp_send_async (&c->base, &ss->s);
  while (!atomic_load (&ss->finished))
    rmr_futex_wait (&ss->finished, 0, NULL);
  if (ss->err == 0)
    return 0;
  /* The reason was recorded in the sender's thread. */
  pthread_mutex_lock (&c->send_lock);
  if (c->send_err)
    rmr_err (-ss->err, "%s", c->send_errmsg);
  pthread_mutex_unlock (&c->send_lock);
  return ss->err;
}

int
tcp_send (struct rmr_conn *base, const struct rmr_hdr *hdr,
          const struct iovec *iov, int iovcnt)
{
  struct sync_send ss = {.s = {.hdr = *hdr, .iov = iov, .iovcnt = iovcnt}};

  return sync_send ((struct tcp_conn *) base, &ss);
}

int
tcp_send_many (struct rmr_conn *base, const struct rmr_msg *msgs, int n)
{
  struct sync_send ss = {.s = {.msgs = msgs, .nmsgs = n}};

  if (n <= 0)
    return 0;
  return sync_send ((struct tcp_conn *) base, &ss);
}

/* A TLS record cannot be sent in part without blocking the session for
 * the rest, so a send that must not block only starts when the socket
 * has room.
 */
static bool
writable_now (int fd)
{
  struct pollfd p = {.fd = fd, .events = POLLOUT};

  return poll (&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

bool
tcp_sender_claim (struct tcp_conn *c)
{
  bool ok;

  pthread_mutex_lock (&c->send_lock);
  ok = !c->sending && !c->send_err;
  if (ok)
    c->sending = true;
  pthread_mutex_unlock (&c->send_lock);
  return ok;
}

void
tcp_sender_release (struct tcp_conn *c, int r)
{
  pthread_mutex_lock (&c->send_lock);
  if (r < 0 && r != -EAGAIN && !c->send_err) {
    c->send_err = r;
    snprintf (c->send_errmsg, sizeof c->send_errmsg, "%s",
              rmr_get_error () ? rmr_get_error () : strerror (-r));
  }
  sq_run (c); /* what others queued meanwhile */
}

int
tcp_send_nowait (struct tcp_conn *c, const struct rmr_hdr *hdr)
{
  uint8_t hbuf[RMR_HDR_SIZE];
  struct iovec v = {.iov_base = hbuf, .iov_len = sizeof hbuf};
  int r = -EAGAIN;

  /* Someone sends (the peer hears from us anyway), or nobody can. */
  if (!tcp_sender_claim (c))
    return -EAGAIN;
  rmr_hdr_encode (hdr, hbuf);
  if (!c->tls || writable_now (c->fd))
    r = conn_write (c, &v, 1, MSG_DONTWAIT);
  tcp_sender_release (c, r);
  return r;
}
