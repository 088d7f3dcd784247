/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport (common/transport-ucx*.c, ucx-auth.c) over UCX's
 * tcp on loopback, with real processes:
 *
 * - messages with small and 1 MiB payloads both ways; a 1 MiB payload
 *   goes by rendezvous from the caller's buffer (zcopy_bytes_sent), and
 *   the connection names the transport UCX chose (path);
 * - order: a rendezvous message and the small ones sent right behind it
 *   (one send_many, so they arrive before its payload is pulled) reach
 *   the handler in the order sent;
 * - the preamble: the mode matrix (plaintext, challenge-response,
 *   refusals), a wrong key and an unknown identity refused on both
 *   sides, accept never called for them;
 * - a peer killed with SIGKILL: down () at once; a peer stopped with
 *   SIGSTOP (alive to the kernel, silent): down () by the idle timeout,
 *   and without one a send to it fails by the user timeout (15 s at
 *   least);
 * - a connection shut down while another thread streams 1 MiB sends:
 *   every send returns, none hangs (the endpoint's close completes them);
 * - churn: four threads connect, send and close 40 times each while a
 *   fifth streams.  Regression: with a UCX worker per connection, UCX
 *   1.13's shared async layer aborted (`handler->async == async')
 *   once in a few runs when workers came and went beside others.
 *
 * The peers in other processes are forked before this process touches
 * UCX (UCX does not survive fork) and serve until killed.
 *
 * The server and client at either end, here and in the peers, are the
 * echo of test-echo.c.
 */
#undef NDEBUG
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "error.h"
#include "parse.h"
#include "proto.h"
#include "test-assert.h"
#include "test-echo.h"
#include "tls.h"
#include "transport.h"

#define BIG ECHO_MAX

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static char *dir;
static char *keys;     /* client, node1 */
static char *wrong;    /* client with another key, node1 */
static char *stranger; /* mallory, node1 */

/* A free port: bind, read, close (a race with other programs is
 * possible but harmless here: the listen below would fail loudly).
 */
static unsigned
free_port (void)
{
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t len = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM, 0);
  unsigned port;

  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sa, &len), ==, 0);
  port = ntohs (sa.sin_port);
  close (fd);
  return port;
}

static void
addr_of (unsigned port, struct rmr_addr *addr)
{
  g_autofree char *s = g_strdup_printf ("ucx:127.0.0.1:%u", port);

  g_assert_cmpint (rmr_addr_parse ("t", s, addr), ==, 0);
}

static struct rmr_listener *
listen_here (struct rmr_addr *addr, const struct rmr_listen_opts *opts)
{
  struct rmr_listen_opts o = {.refused = echo_refused};
  struct rmr_listener *l;

  if (opts)
    o = *opts;
  o.refused = echo_refused;
  addr_of (free_port (), addr);
  g_assert_cmpint (rmr_listen (addr, &o, echo_accept, NULL, &l), ==, 0);
  return l;
}

/* A WRITE of len bytes of the tag's pattern from buf. */
static void
write_msg (struct rmr_conn *c, uint64_t tag, uint8_t *buf, size_t len)
{
  struct rmr_hdr h = {.type = RMR_MSG_WRITE,
                      .tag = tag,
                      .length = len,
                      .payload_len = len,
                      .member_id = RMR_MEMBER_NONE,
                      .group_id = 1};
  struct iovec iov = {.iov_base = buf, .iov_len = len};

  echo_pattern (buf, len, tag);
  g_assert_cmpint (rmr_conn_send (c, &h, &iov, 1), ==, 0);
}

static void
test_messages (void)
{
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct rmr_conn *c;
  struct echo_client cc;
  g_autofree uint8_t *buf = g_malloc (BIG);
  g_autofree uint8_t *want = g_malloc (BIG);
  struct rmr_hdr rd = {
    .type = RMR_MSG_READ, .member_id = RMR_MEMBER_NONE, .group_id = 1};
  uint64_t z0;
  unsigned i;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  echo_client_init (&cc);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &c), ==, 0);
  g_assert_cmpstr (c->security, ==, "plaintext");
  g_assert_true (g_str_has_prefix (c->path, "ucx"));
  g_test_message ("path: %s", c->path);

  /* Small writes and reads, one at a time. */
  for (i = 0; i < 200; i++) {
    write_msg (c, i, buf, 512 + i);
    echo_wait_replies (&cc, 2 * i + 1);
    rd.tag = 1000 + i;
    rd.length = 4096;
    g_assert_cmpint (rmr_conn_send (c, &rd, NULL, 0), ==, 0);
    echo_wait_replies (&cc, 2 * i + 2);
    echo_pattern (want, 4096, rd.tag);
    g_assert_cmpmem (cc.buf, 4096, want, 4096);
  }
  g_assert_cmpuint (cc.nbad, ==, 0);

  /* 1 MiB each way: by rendezvous, from the caller's buffer. */
  z0 = atomic_load (&c->zcopy_bytes_sent);
  for (i = 0; i < 8; i++) {
    write_msg (c, 5000 + i, buf, BIG);
    echo_wait_replies (&cc, 401 + 2 * i);
    rd.tag = 6000 + i;
    rd.length = BIG;
    g_assert_cmpint (rmr_conn_send (c, &rd, NULL, 0), ==, 0);
    echo_wait_replies (&cc, 402 + 2 * i);
    echo_pattern (want, BIG, rd.tag);
    g_assert_cmpmem (cc.buf, BIG, want, BIG);
  }
  g_assert_cmpuint (cc.nbad, ==, 0);
  g_assert_cmpuint (atomic_load (&c->zcopy_bytes_sent) - z0, ==, 8 * BIG);

  rmr_conn_close (c);
  g_assert_true (cc.down);
  echo_client_fini (&cc);
  rmr_listener_close (l);
}

/* n FLUSH messages of group 1, tags tag0, tag0 + 1, ... (no payload). */
static void
flushes (struct rmr_msg *m, unsigned n, uint64_t tag0)
{
  unsigned i;

  memset (m, 0, n * sizeof *m);
  for (i = 0; i < n; i++) {
    m[i].hdr.member_id = RMR_MEMBER_NONE;
    m[i].hdr.group_id = 1;
    m[i].hdr.tag = tag0 + i;
    m[i].hdr.type = RMR_MSG_FLUSH;
  }
}

/* A rendezvous WRITE with small FLUSHes right behind it, in one
 * send_many: the flushes arrive while the write's payload is still to
 * be pulled, and must wait for it.
 */
static void
test_order (void)
{
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct rmr_conn *c;
  struct echo_client cc;
  struct rmr_msg m[9];
  g_autofree uint8_t *buf = g_malloc (BIG);
  unsigned i, round;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  echo_client_init (&cc);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &c), ==, 0);
  g_mutex_lock (&echo_srv.lock);
  echo_srv.order = g_array_new (false, false, sizeof (uint64_t));
  g_mutex_unlock (&echo_srv.lock);
  for (round = 0; round < 20; round++) {
    flushes (m, G_N_ELEMENTS (m), round * 100);
    /* Writes at 0 and 4, the rest flushes. */
    for (i = 0; i < 8; i += 4) {
      m[i].hdr.type = RMR_MSG_WRITE;
      m[i].hdr.length = m[i].hdr.payload_len = BIG / 2;
      m[i].iov.iov_base = buf + (i ? BIG / 2 : 0);
      m[i].iov.iov_len = BIG / 2;
      echo_pattern (m[i].iov.iov_base, BIG / 2, m[i].hdr.tag);
    }
    g_assert_cmpint (rmr_conn_send_many (c, m, G_N_ELEMENTS (m)), ==, 0);
    echo_wait_replies (&cc, (round + 1) * G_N_ELEMENTS (m));
  }
  g_assert_cmpuint (cc.nbad, ==, 0);
  g_mutex_lock (&echo_srv.lock);
  g_assert_cmpuint (echo_srv.order->len, ==, 20 * G_N_ELEMENTS (m));
  for (i = 1; i < echo_srv.order->len; i++)
    g_assert_cmpuint (g_array_index (echo_srv.order, uint64_t, i - 1), <,
                      g_array_index (echo_srv.order, uint64_t, i));
  g_clear_pointer (&echo_srv.order, g_array_unref);
  g_mutex_unlock (&echo_srv.lock);
  rmr_conn_close (c);
  echo_client_fini (&cc);
  rmr_listener_close (l);
}

/* Replies reach the client's handler in the order the server sent
 * them, one call at a time, with their payloads: READs of BIG / 2 (their
 * replies go by rendezvous) and of 4 KiB (eager) between flushes.  With
 * inline_handler the eager ones are handed over from inside UCX's
 * callback unless something of the connection is ahead of them
 * (transport-ucx-recv.c): regression guard for an eager reply overtaking
 * a rendezvous one still on its way, or running beside it.
 */
static void
reply_order (bool inline_handler)
{
  struct rmr_conn_opts opts = {.connect_timeout_ms = 5000,
                               .inline_handler = inline_handler};
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct rmr_conn *c;
  struct echo_client cc;
  struct rmr_msg m[9];
  unsigned i, round;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  echo_client_init (&cc);
  cc.order = g_array_new (false, false, sizeof (uint64_t));
  g_assert_cmpint (echo_connect (&addr, &cc, &opts, &c), ==, 0);
  for (round = 0; round < 20; round++) {
    flushes (m, G_N_ELEMENTS (m), round * 100);
    for (i = 0; i < G_N_ELEMENTS (m); i += 2) {
      m[i].hdr.type = RMR_MSG_READ;
      m[i].hdr.length = i % 4 == 0 ? BIG / 2 : 4096;
    }
    g_assert_cmpint (rmr_conn_send_many (c, m, G_N_ELEMENTS (m)), ==, 0);
    echo_wait_replies (&cc, (round + 1) * G_N_ELEMENTS (m));
  }
  g_mutex_lock (&cc.lock);
  g_assert_cmpuint (cc.nbad, ==, 0);
  g_assert_cmpuint (cc.nconcurrent, ==, 0);
  g_assert_cmpuint (cc.order->len, ==, 20 * G_N_ELEMENTS (m));
  for (i = 1; i < cc.order->len; i++)
    g_assert_cmpuint (g_array_index (cc.order, uint64_t, i - 1), <,
                      g_array_index (cc.order, uint64_t, i));
  g_mutex_unlock (&cc.lock);
  rmr_conn_close (c);
  echo_client_fini (&cc);
  rmr_listener_close (l);
}

static void
test_reply_order (void)
{
  reply_order (false);
}

static void
test_reply_order_inline (void)
{
  reply_order (true);
}

/* Connect under the client's mode and file; expect errnum (0: success,
 * then security says so) and, on failure, msg in the error.
 */
static void
try_auth (const struct rmr_addr *addr, enum rmr_tls_mode mode, const char *file,
          int errnum, const char *msg)
{
  struct rmr_conn *c = NULL;
  struct echo_client cc;
  g_autofree uint8_t *buf = g_malloc (4096);
  int r;

  echo_set_tls (mode, file,
                file ? (file == stranger ? "mallory" : "client") : NULL);
  echo_client_init (&cc);
  r = echo_connect (addr, &cc, NULL, &c);
  if (errnum) {
    assert_error (r, errnum, msg);
  }
  else {
    g_assert_cmpint (r, ==, 0);
    g_assert_true (strstr (c->security, msg) != NULL);
    write_msg (c, 7, buf, 4096);
    echo_wait_replies (&cc, 1);
    g_assert_cmpuint (cc.nbad, ==, 0);
    rmr_conn_close (c);
  }
  echo_client_fini (&cc);
}

static void
test_auth (void)
{
  struct rmr_addr on, req, off;
  struct rmr_listener *l_on, *l_req, *l_off;
  unsigned a0, n0, i;
  const char *r1;

  g_mutex_lock (&echo_srv.lock);
  echo_srv.refusals = g_ptr_array_new_with_free_func (g_free);
  g_mutex_unlock (&echo_srv.lock);
  /* A listener keeps the configuration it was opened with. */
  echo_set_tls (RMR_TLS_ON, keys, "node1");
  l_on = listen_here (&on, NULL);
  echo_set_tls (RMR_TLS_REQUIRE, keys, "node1");
  l_req = listen_here (&req, NULL);
  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l_off = listen_here (&off, NULL);

  a0 = echo_naccepted ();
  try_auth (&on, RMR_TLS_OFF, NULL, 0, "plaintext");
  try_auth (&on, RMR_TLS_ON, keys, 0, "PSK challenge-response");
  try_auth (&req, RMR_TLS_REQUIRE, keys, 0, "PSK challenge-response");
  try_auth (&off, RMR_TLS_ON, keys, 0, "plaintext");
  g_assert_cmpuint (echo_naccepted (), ==, a0 + 4);

  n0 = 0;
  try_auth (&req, RMR_TLS_OFF, NULL, EACCES, "requires TLS");
  r1 = echo_refusal (++n0);
  g_assert_true (strstr (r1, "tls=require") != NULL);
  /* Refused by the client: the node accepted a plaintext session. */
  try_auth (&off, RMR_TLS_REQUIRE, keys, EACCES, "offers no TLS");
  /* The wrong key: the node's proof does not match ours, we never send
   * one; the node sees the connection close in its preamble.
   */
  try_auth (&req, RMR_TLS_REQUIRE, wrong, EACCES, "proof does not match");
  try_auth (&req, RMR_TLS_REQUIRE, stranger, EACCES,
            "does not know this side's identity");
  /* The wrong key's refusal (the client closed during the preamble) and
   * mallory's, in either order.
   */
  echo_refusal (n0 + 2);
  g_mutex_lock (&echo_srv.lock);
  for (i = n0; i < echo_srv.refusals->len; i++)
    if (strstr (echo_srv.refusals->pdata[i],
                "mallory|unknown identity 'mallory'"))
      break;
  g_assert_cmpuint (i, <, echo_srv.refusals->len);
  g_mutex_unlock (&echo_srv.lock);
  g_assert_cmpuint (echo_naccepted (), ==, a0 + 5);

  rmr_listener_close (l_on);
  rmr_listener_close (l_req);
  rmr_listener_close (l_off);
  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  g_mutex_lock (&echo_srv.lock);
  g_clear_pointer (&echo_srv.refusals, g_ptr_array_unref);
  g_mutex_unlock (&echo_srv.lock);
}

/* The peers in other processes (main forks them first). */
static pid_t peer_pid[2];
static unsigned peer_port[2];

static void
serve_forever (unsigned port)
{
  struct rmr_addr addr;
  struct rmr_listener *l;

  addr_of (port, &addr);
  if (rmr_listen (&addr, NULL, echo_accept, NULL, &l) < 0) {
    fprintf (stderr, "peer: %s\n", rmr_get_error ());
    _exit (1);
  }
  for (;;)
    pause ();
}

static void
start_peers (void)
{
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (peer_pid); i++) {
    peer_port[i] = free_port ();
    peer_pid[i] = fork ();
    g_assert_cmpint (peer_pid[i], >=, 0);
    if (peer_pid[i] == 0) {
      /* Gone with us, even if we abort. */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      serve_forever (peer_port[i]);
    }
  }
}

static void
stop_peers (void)
{
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (peer_pid); i++)
    if (peer_pid[i] > 0) {
      kill (peer_pid[i], SIGKILL);
      waitpid (peer_pid[i], NULL, 0);
      peer_pid[i] = 0;
    }
}

/* Connect to peer i, retrying while it starts. */
static void
connect_peer (unsigned i, struct echo_client *cc, const struct rmr_conn_opts *o,
              struct rmr_conn **c)
{
  struct rmr_addr addr;
  unsigned k;

  addr_of (peer_port[i], &addr);
  for (k = 0; k < 100; k++) {
    if (echo_connect (&addr, cc, o, c) == 0)
      return;
    g_usleep (50000);
  }
  g_assert_not_reached ();
}

static void
test_peer_killed (void)
{
  struct rmr_conn_opts o = {
    .connect_timeout_ms = 2000, .keepalive_ms = 500, .idle_timeout_ms = 3000};
  g_autofree uint8_t *buf = g_malloc (BIG);
  struct rmr_conn *c;
  struct echo_client cc;
  double t;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  echo_client_init (&cc);
  connect_peer (0, &cc, &o, &c);
  write_msg (c, 1, buf, BIG);
  echo_wait_replies (&cc, 1);
  g_assert_cmpint (kill (peer_pid[0], SIGKILL), ==, 0);
  waitpid (peer_pid[0], NULL, 0);
  peer_pid[0] = 0;
  t = echo_wait_down (&cc, 2.0);
  g_test_message ("killed peer: down after %.3f s: %s", t, cc.down_reason);
  /* The kernel closed its sockets: UCX reports it, well before the
   * keepalive's idle timeout.
   */
  g_assert_cmpfloat (t, <, 2.0);
  g_assert_cmpint (cc.down_err, ==, ECONNRESET);
  g_assert_true (strstr (cc.down_reason, "connection lost") != NULL);
  rmr_conn_close (c);
  echo_client_fini (&cc);
}

static void
test_peer_silent (void)
{
  struct rmr_conn_opts o = {
    .connect_timeout_ms = 2000, .keepalive_ms = 200, .idle_timeout_ms = 1500};
  g_autofree uint8_t *buf = g_malloc (4096);
  struct rmr_conn *c;
  struct echo_client cc;
  double t;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  echo_client_init (&cc);
  connect_peer (1, &cc, &o, &c);
  write_msg (c, 1, buf, 4096);
  echo_wait_replies (&cc, 1);
  /* Idle but alive: keepalives keep it up for several timeouts. */
  g_usleep (3 * G_TIME_SPAN_SECOND);
  g_assert_false (cc.down);
  g_assert_cmpint (kill (peer_pid[1], SIGSTOP), ==, 0);
  t = echo_wait_down (&cc, 5.0);
  g_test_message ("stopped peer: down after %.3f s: %s", t, cc.down_reason);
  g_assert_cmpint (cc.down_err, ==, ETIMEDOUT);
  g_assert_true (strstr (cc.down_reason, "keepalive timeout") != NULL);
  g_assert_cmpfloat (t, <, 3.0);
  kill (peer_pid[1], SIGCONT);
  rmr_conn_close (c);
  echo_client_fini (&cc);
}

struct blocked_send {
  struct rmr_conn *c;
  uint8_t *buf;
  int r;
  atomic_bool back;
};

static gpointer
send_big (gpointer arg)
{
  struct blocked_send *b = arg;
  struct rmr_hdr h = {.type = RMR_MSG_WRITE,
                      .tag = 2,
                      .length = BIG,
                      .payload_len = BIG,
                      .member_id = RMR_MEMBER_NONE,
                      .group_id = 1};
  struct iovec iov = {.iov_base = b->buf, .iov_len = BIG};

  b->r = rmr_conn_send (b->c, &h, &iov, 1);
  atomic_store (&b->back, true);
  return NULL;
}

/* A peer that takes no data, with no keepalive to notice it (as one
 * that answers keepalives but never pulls a rendezvous payload): the
 * send fails after user_timeout_ms without progress (but never before
 * 15 s: SEND_STALL_MIN_MS), as tcp's does by TCP_USER_TIMEOUT, and the
 * connection goes down with it.
 */
static void
test_peer_takes_no_data (void)
{
  struct rmr_conn_opts o = {.connect_timeout_ms = 2000,
                            .user_timeout_ms = 1000};
  struct blocked_send b = {.buf = g_malloc0 (BIG)};
  struct echo_client cc;
  GThread *t;
  gint64 t0;
  double secs;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  echo_client_init (&cc);
  connect_peer (1, &cc, &o, &b.c);
  write_msg (b.c, 1, b.buf, BIG);
  echo_wait_replies (&cc, 1);
  g_assert_cmpint (kill (peer_pid[1], SIGSTOP), ==, 0);
  t0 = g_get_monotonic_time ();
  t = g_thread_new ("send", send_big, &b);
  while (!atomic_load (&b.back) &&
         g_get_monotonic_time () - t0 < 30 * G_TIME_SPAN_SECOND)
    g_usleep (10000);
  secs = (g_get_monotonic_time () - t0) / 1e6;
  g_test_message ("a send to a stopped peer returned after %.3f s", secs);
  g_assert_true (atomic_load (&b.back));
  g_thread_join (t);
  g_assert_cmpint (b.r, ==, -ETIMEDOUT);
  g_assert_cmpfloat (secs, >=, 14.9);
  echo_wait_down (&cc, 5.0);
  g_assert_cmpint (cc.down_err, ==, ETIMEDOUT);
  g_assert_nonnull (strstr (cc.down_reason, "made no progress"));
  kill (peer_pid[1], SIGCONT);
  rmr_conn_close (b.c);
  echo_client_fini (&cc);
  g_free (b.buf);
}

struct streamer {
  struct rmr_conn *c;
  uint8_t *buf;
  unsigned sent, failed;
};

static gpointer
stream (gpointer arg)
{
  struct streamer *s = arg;
  struct rmr_hdr h = {.type = RMR_MSG_WRITE,
                      .length = BIG,
                      .payload_len = BIG,
                      .member_id = RMR_MEMBER_NONE,
                      .group_id = 1};
  struct iovec iov = {.iov_base = s->buf, .iov_len = BIG};

  for (;;) {
    h.tag = s->sent;
    if (rmr_conn_send (s->c, &h, &iov, 1) < 0) {
      s->failed++;
      return NULL;
    }
    s->sent++;
  }
}

static void
test_shutdown_under_sends (void)
{
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct streamer s[2] = {0};
  GThread *t[2];
  struct echo_client cc;
  struct rmr_conn *c;
  unsigned i;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  echo_client_init (&cc);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &c), ==, 0);
  for (i = 0; i < 2; i++) {
    s[i].c = c;
    s[i].buf = g_malloc0 (BIG);
    t[i] = g_thread_new ("stream", stream, &s[i]);
  }
  g_usleep (300000);
  rmr_conn_shutdown (c);
  for (i = 0; i < 2; i++) {
    g_thread_join (t[i]);
    g_assert_cmpuint (s[i].failed, ==, 1);
    g_test_message ("streamer %u: %u sent before the shutdown", i, s[i].sent);
    g_free (s[i].buf);
  }
  echo_wait_down (&cc, 5.0);
  rmr_conn_close (c);
  echo_client_fini (&cc);
  rmr_listener_close (l);
}

struct churner {
  const struct rmr_addr *addr;
  unsigned done;
};

static gpointer
churn (gpointer arg)
{
  struct churner *ch = arg;
  g_autofree uint8_t *buf = g_malloc (BIG);
  struct rmr_conn *c;
  struct echo_client cc;
  unsigned i;

  for (i = 0; i < 40; i++) {
    echo_client_init (&cc);
    g_assert_cmpint (echo_connect (ch->addr, &cc, NULL, &c), ==, 0);
    write_msg (c, i, buf, i % 2 ? 4096 : BIG);
    echo_wait_replies (&cc, 1);
    rmr_conn_close (c);
    echo_client_fini (&cc);
    ch->done++;
  }
  return NULL;
}

/* A client that sends and closes at once (a goodbye behind its sends):
 * the server's handler gets every message sent before the goodbye, then
 * down (), as a tcp peer's data before its FIN.  Regression guard: the
 * goodbye set the connection failed on arrival, and the messages still
 * queued behind the receive thread were dropped.
 */
static void
test_goodbye_after_sends (void)
{
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct rmr_conn *c;
  struct echo_client cc;
  struct rmr_msg m[32];
  unsigned round, downs;
  gint64 end;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  for (round = 0; round < 20; round++) {
    g_mutex_lock (&echo_srv.lock);
    echo_srv.order = g_array_new (false, false, sizeof (uint64_t));
    downs = echo_srv.downs;
    g_mutex_unlock (&echo_srv.lock);
    echo_client_init (&cc);
    g_assert_cmpint (echo_connect (&addr, &cc, NULL, &c), ==, 0);
    flushes (m, G_N_ELEMENTS (m), 0);
    g_assert_cmpint (rmr_conn_send_many (c, m, G_N_ELEMENTS (m)), ==, 0);
    rmr_conn_close (c);
    echo_client_fini (&cc);
    end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
    g_mutex_lock (&echo_srv.lock);
    while (echo_srv.downs == downs)
      g_assert_true (g_cond_wait_until (&echo_srv.cond, &echo_srv.lock, end));
    g_assert_cmpuint (echo_srv.order->len, ==, G_N_ELEMENTS (m));
    g_clear_pointer (&echo_srv.order, g_array_unref);
    g_mutex_unlock (&echo_srv.lock);
  }
  rmr_listener_close (l);
}

static void
test_churn (void)
{
  struct rmr_addr addr;
  struct rmr_listener *l;
  struct churner ch[4];
  struct streamer st = {0};
  struct echo_client cc;
  GThread *t[4], *ts;
  unsigned i;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_here (&addr, NULL);
  echo_client_init (&cc);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &st.c), ==, 0);
  st.buf = g_malloc0 (BIG);
  ts = g_thread_new ("stream", stream, &st);
  for (i = 0; i < G_N_ELEMENTS (t); i++) {
    ch[i].addr = &addr;
    ch[i].done = 0;
    t[i] = g_thread_new ("churn", churn, &ch[i]);
  }
  for (i = 0; i < G_N_ELEMENTS (t); i++) {
    g_thread_join (t[i]);
    g_assert_cmpuint (ch[i].done, ==, 40);
  }
  rmr_conn_shutdown (st.c);
  g_thread_join (ts);
  g_test_message ("churn: 160 connections; the streamer sent %u", st.sent);
  rmr_conn_close (st.c);
  g_free (st.buf);
  echo_client_fini (&cc);
  rmr_listener_close (l);
}

int
main (int argc, char **argv)
{
  int r;

  /* Everything on one host: UCX's tcp, not shared memory, so a peer's
   * failure is seen as a remote host's would be (as tests/cluster.sh).
   */
  g_setenv ("UCX_TLS", "tcp", false);
  /* Before anything touches UCX in this process. */
  start_peers ();
  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("rmr-ucx-XXXXXX", NULL);
  keys = echo_write_file (dir, "keys.psk", "client:" K1 "\nnode1:" K2 "\n");
  wrong = echo_write_file (dir, "wrong.psk", "client:" K2 "\nnode1:" K2 "\n");
  stranger = echo_write_file (dir, "stranger.psk", "mallory:" K1 "\n");
  g_test_add_func ("/ucx/messages", test_messages);
  g_test_add_func ("/ucx/order", test_order);
  g_test_add_func ("/ucx/reply-order", test_reply_order);
  g_test_add_func ("/ucx/reply-order-inline", test_reply_order_inline);
  g_test_add_func ("/ucx/auth", test_auth);
  g_test_add_func ("/ucx/peer-killed", test_peer_killed);
  g_test_add_func ("/ucx/peer-silent", test_peer_silent);
  g_test_add_func ("/ucx/peer-takes-no-data", test_peer_takes_no_data);
  g_test_add_func ("/ucx/shutdown-under-sends", test_shutdown_under_sends);
  g_test_add_func ("/ucx/goodbye-after-sends", test_goodbye_after_sends);
  g_test_add_func ("/ucx/churn", test_churn);
  r = g_test_run ();
  stop_peers ();
  rmr_tls_cleanup ();
  g_unlink (keys);
  g_unlink (wrong);
  g_unlink (stranger);
  g_rmdir (dir);
  return r;
}
