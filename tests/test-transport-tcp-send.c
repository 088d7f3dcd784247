/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the tcp transport's send queue (common/transport-tcp-send.c)
 * on one end of a socketpair, the test reading the other end itself:
 * - a send queued while another thread is the sender returns at once,
 *   and the sender writes it after its own, in queue order, each done ()
 *   called once with 0;
 * - messages of several threads sending at once arrive whole, each
 *   thread's in its order, nothing lost or doubled;
 * - a failed write fails the messages of its round and every later send
 *   at once with the same error (the stream lost its framing);
 * - a non-blocking send (keepalive) gives up while another thread sends.
 * No receive thread runs: the connection is only a sender here.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "error.h"
#include "proto.h"
#include "transport-tcp.h"
#include "util.h"

/* A connection on one end of a socketpair; *peer: the other end. */
static struct tcp_conn *
pair_conn (int *peer, int sndbuf)
{
  struct tcp_conn *c;
  int sv[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==,
                   0);
  if (sndbuf) {
    g_assert_cmpint (
      setsockopt (sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), ==, 0);
    g_assert_cmpint (
      setsockopt (sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf), ==, 0);
  }
  c = tcp_conn_new (sv[0], NULL);
  g_assert_nonnull (c);
  snprintf (c->base.peer_name, sizeof c->base.peer_name, "pair");
  *peer = sv[1];
  return c;
}

static void
read_exact (int fd, void *p, size_t n)
{
  ssize_t k;

  while (n > 0) {
    k = read (fd, p, n);
    g_assert_cmpint (k, >, 0);
    p = (char *) p + k;
    n -= k;
  }
}

/* Read one message from the peer end: its header, and its payload into
 * buf (at most max bytes).
 */
static void
read_msg (int fd, struct rmr_hdr *hdr, void *buf, size_t max)
{
  uint8_t h[RMR_HDR_SIZE];

  read_exact (fd, h, sizeof h);
  g_assert_cmpint (rmr_hdr_decode (h, hdr), ==, 0);
  g_assert_cmpuint (hdr->payload_len, <=, max);
  read_exact (fd, buf, hdr->payload_len);
}

/* A WRITE of len bytes, or a FLUSH for 0. */
static struct rmr_hdr
write_hdr (uint64_t tag, uint32_t len)
{
  struct rmr_hdr h = {.type = len ? RMR_MSG_WRITE : RMR_MSG_FLUSH,
                      .group_id = 1,
                      .member_id = RMR_MEMBER_NONE,
                      .tag = tag,
                      .length = len,
                      .payload_len = len};
  return h;
}

/* An asynchronous send and what its done () saw. */
struct probe {
  struct rmr_send s;
  struct iovec iov;
  atomic_int calls;
  int err;
};

static void
probe_done (struct rmr_send *s, int err)
{
  struct probe *p = container_of (s, struct probe, s);

  p->err = err;
  atomic_fetch_add (&p->calls, 1);
}

static void
probe_init (struct probe *p, uint64_t tag, void *payload, uint32_t len)
{
  memset (p, 0, sizeof *p);
  p->iov.iov_base = payload;
  p->iov.iov_len = len;
  p->s.hdr = write_hdr (tag, len);
  p->s.iov = &p->iov;
  p->s.iovcnt = len ? 1 : 0;
  p->s.done = probe_done;
}

/* A sync send of a large message on a thread: it becomes the sender and
 * blocks while the peer does not read.
 */
struct big_send {
  struct tcp_conn *c;
  uint8_t *payload;
  uint32_t len;
  int r;
  char msg[RMR_ERRMSG_MAX]; /* its error, if it failed */
};

static void *
big_send_thread (void *arg)
{
  struct big_send *b = arg;
  struct rmr_hdr h = write_hdr (1, b->len);
  struct iovec iov = {.iov_base = b->payload, .iov_len = b->len};

  b->r = tcp_send (&b->c->base, &h, &iov, 1);
  if (b->r < 0)
    snprintf (b->msg, sizeof b->msg, "%s", rmr_get_error ());
  return NULL;
}

static bool
is_sending (struct tcp_conn *c)
{
  bool s;

  pthread_mutex_lock (&c->send_lock);
  s = c->sending;
  pthread_mutex_unlock (&c->send_lock);
  return s;
}

#define BIG (1024 * 1024)

static void
test_queued_behind_sender (void)
{
  struct big_send b = {.len = BIG};
  struct probe p[3];
  struct rmr_hdr hdr;
  uint8_t small[3][512], *buf;
  pthread_t t;
  int peer, i;

  b.c = pair_conn (&peer, 64 * 1024);
  b.payload = g_malloc (BIG);
  buf = g_malloc (BIG);
  memset (b.payload, 0xab, BIG);
  g_assert_cmpint (pthread_create (&t, NULL, big_send_thread, &b), ==, 0);
  /* The thread is the sender until the peer reads 1 MiB. */
  while (!is_sending (b.c))
    g_usleep (1000);
  g_usleep (50 * 1000);
  g_assert_true (is_sending (b.c));

  for (i = 0; i < 3; i++) {
    memset (small[i], i + 1, sizeof small[i]);
    probe_init (&p[i], 10 + i, small[i], sizeof small[i]);
    tcp_send_async (&b.c->base, &p[i].s);
    /* Returned without waiting for the sender, and not sent yet. */
    g_assert_cmpint (atomic_load (&p[i].calls), ==, 0);
  }

  read_msg (peer, &hdr, buf, BIG);
  g_assert_cmpuint (hdr.tag, ==, 1);
  g_assert_cmpint (buf[0], ==, 0xab);
  g_assert_cmpint (buf[BIG - 1], ==, 0xab);
  for (i = 0; i < 3; i++) {
    read_msg (peer, &hdr, buf, BIG);
    g_assert_cmpuint (hdr.tag, ==, 10 + i);
    g_assert_cmpuint (hdr.payload_len, ==, sizeof small[i]);
    g_assert_cmpint (memcmp (buf, small[i], sizeof small[i]), ==, 0);
  }
  pthread_join (t, NULL);
  g_assert_cmpint (b.r, ==, 0);
  /* The sender wrote the queued ones before it stopped being it. */
  for (i = 0; i < 3; i++) {
    g_assert_cmpint (atomic_load (&p[i].calls), ==, 1);
    g_assert_cmpint (p[i].err, ==, 0);
  }
  g_assert_false (is_sending (b.c));
  g_assert_null (b.c->sq_head);

  tcp_conn_destroy (b.c);
  close (peer);
  g_free (b.payload);
  g_free (buf);
}

#define THREADS 6
#define PER_THREAD 300

struct many_arg {
  struct tcp_conn *c;
  unsigned id;
};

/* Odd messages synchronous, even ones asynchronous (waited for at the
 * end), payload lengths varying, each a pattern of its tag.
 */
static void *
many_thread (void *arg)
{
  struct many_arg *a = arg;
  struct probe *p = g_new0 (struct probe, PER_THREAD);
  uint8_t (*pay)[300] = g_malloc (PER_THREAD * 300);
  unsigned i;

  for (i = 0; i < PER_THREAD; i++) {
    uint64_t tag = (uint64_t) a->id << 32 | i;
    uint32_t len = (i * 37) % 300;
    memset (pay[i], (int) (tag * 7 + a->id), len);
    if (i % 2) {
      struct rmr_hdr h = write_hdr (tag, len);
      struct iovec iov = {.iov_base = pay[i], .iov_len = len};
      g_assert_cmpint (tcp_send (&a->c->base, &h, &iov, len ? 1 : 0), ==, 0);
    }
    else
      tcp_send_async (&a->c->base,
                      (probe_init (&p[i], tag, pay[i], len), &p[i].s));
  }
  for (i = 0; i < PER_THREAD; i += 2) {
    while (atomic_load (&p[i].calls) == 0)
      g_usleep (100);
    g_assert_cmpint (atomic_load (&p[i].calls), ==, 1);
    g_assert_cmpint (p[i].err, ==, 0);
  }
  g_free (p);
  g_free (pay);
  return NULL;
}

static void
test_many_threads (void)
{
  struct many_arg a[THREADS];
  pthread_t t[THREADS];
  unsigned next[THREADS] = {0}, i, n;
  struct rmr_hdr hdr;
  uint8_t buf[300];
  int peer;
  struct tcp_conn *c = pair_conn (&peer, 0);

  for (i = 0; i < THREADS; i++) {
    a[i].c = c;
    a[i].id = i;
    g_assert_cmpint (pthread_create (&t[i], NULL, many_thread, &a[i]), ==, 0);
  }
  for (n = 0; n < THREADS * PER_THREAD; n++) {
    unsigned id, seq;
    read_msg (peer, &hdr, buf, sizeof buf);
    id = hdr.tag >> 32;
    seq = hdr.tag & 0xffffffff;
    g_assert_cmpuint (id, <, THREADS);
    g_assert_cmpuint (seq, ==, next[id]); /* each thread's in its order */
    next[id]++;
    g_assert_cmpuint (hdr.payload_len, ==, (seq * 37) % 300);
    for (i = 0; i < hdr.payload_len; i++)
      g_assert_cmpint (buf[i], ==, (uint8_t) (hdr.tag * 7 + id));
  }
  for (i = 0; i < THREADS; i++) {
    pthread_join (t[i], NULL);
    g_assert_cmpuint (next[i], ==, PER_THREAD);
  }
  tcp_conn_destroy (c);
  close (peer);
}

static void
test_sticky_error (void)
{
  struct big_send b = {.len = BIG};
  struct probe p[2];
  uint8_t small[100] = {0};
  struct rmr_hdr h = write_hdr (5, 0);
  pthread_t t;
  int peer;

  b.c = pair_conn (&peer, 64 * 1024);
  b.payload = g_malloc0 (BIG);
  g_assert_cmpint (pthread_create (&t, NULL, big_send_thread, &b), ==, 0);
  while (!is_sending (b.c))
    g_usleep (1000);
  probe_init (&p[0], 2, small, sizeof small);
  tcp_send_async (&b.c->base, &p[0].s);
  /* The peer goes away with 1 MiB unread: the sender's write fails. */
  close (peer);
  pthread_join (t, NULL);
  g_assert_cmpint (b.r, ==, -EPIPE);
  g_assert_nonnull (strstr (b.msg, "pair: send:"));
  /* The message queued behind it failed in the same round, once. */
  g_assert_cmpint (atomic_load (&p[0].calls), ==, 1);
  g_assert_cmpint (p[0].err, ==, -EPIPE);

  /* Every later send fails at once, with the same error. */
  probe_init (&p[1], 3, small, sizeof small);
  tcp_send_async (&b.c->base, &p[1].s);
  g_assert_cmpint (atomic_load (&p[1].calls), ==, 1);
  g_assert_cmpint (p[1].err, ==, -EPIPE);
  rmr_err_clear ();
  g_assert_cmpint (tcp_send (&b.c->base, &h, NULL, 0), ==, -EPIPE);
  g_assert_nonnull (strstr (rmr_get_error (), "pair: send:"));
  g_assert_cmpint (tcp_send_nowait (b.c, &h), ==, -EAGAIN);

  tcp_conn_destroy (b.c);
  g_free (b.payload);
}

static void
test_nowait_while_sending (void)
{
  struct big_send b = {.len = BIG};
  struct rmr_hdr ka = {.type = RMR_MSG_KEEPALIVE, .member_id = RMR_MEMBER_NONE};
  struct rmr_hdr hdr;
  uint8_t *buf = g_malloc (BIG);
  pthread_t t;
  int peer;

  b.c = pair_conn (&peer, 64 * 1024);
  b.payload = g_malloc0 (BIG);
  g_assert_cmpint (pthread_create (&t, NULL, big_send_thread, &b), ==, 0);
  while (!is_sending (b.c))
    g_usleep (1000);
  g_assert_cmpint (tcp_send_nowait (b.c, &ka), ==, -EAGAIN);
  read_msg (peer, &hdr, buf, BIG);
  pthread_join (t, NULL);
  /* Idle again: the keepalive goes out now. */
  g_assert_cmpint (tcp_send_nowait (b.c, &ka), ==, 0);
  read_msg (peer, &hdr, buf, BIG);
  g_assert_cmpint (hdr.type, ==, RMR_MSG_KEEPALIVE);

  tcp_conn_destroy (b.c);
  close (peer);
  g_free (b.payload);
  g_free (buf);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tcp-send/queued-behind-sender", test_queued_behind_sender);
  g_test_add_func ("/tcp-send/many-threads", test_many_threads);
  g_test_add_func ("/tcp-send/sticky-error", test_sticky_error);
  g_test_add_func ("/tcp-send/nowait-while-sending", test_nowait_while_sending);
  return g_test_run ();
}
