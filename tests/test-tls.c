/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hello and TLS with pre-shared keys (common/tls.c, the tcp
 * transport's setup; DESIGN 9), over real loopback sockets in one
 * process: the TLS configuration is process-wide and a listener keeps
 * the one it was opened with, so the test sets the server's up, listens,
 * then sets the client's and connects.
 *
 * - the key file: every malformed line refused, naming the line;
 * - the mode matrix: off/on/require on each side gives plaintext, TLS or
 *   a refusal, as transport-tcp.c and transport-tcp-listen.c say;
 * - a wrong key and an unknown identity: refused during the handshake,
 *   the listener's refused () names the identity, accept is never called;
 * - messages with small and 1 MiB payloads both ways through TLS (the
 *   send staging, the receive of a payload straight into its buffer, the
 *   records GnuTLS holds decrypted);
 * - a silent socket: refused after the handshake timeout; more silent
 *   sockets than max_handshakes: the next connect is refused as busy;
 * - clients gone by the time they are accepted: each connection goes
 *   down at once and is freed once, by its own receive thread.
 *
 * The server and client at either end are the echo of test-echo.c.
 *
 * Regressions:
 * - key updates while requests and replies stream both ways: GnuTLS keeps
 *   state of both directions together, and a key update run beside the
 *   other direction's thread broke the session (and could reuse a nonce)
 *   before every GnuTLS call took the session's lock (tls.c);
 * - a peer that stops in the middle of a large payload: the receive
 *   thread blocked in recv () for good, the idle timeout never fired and
 *   close could not stop it; now it polls between pieces.
 */
#undef NDEBUG
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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
#include "transport-tcp.h"
#include "transport.h"

#define BIG ECHO_MAX

static char *dir;
static char *keys;     /* client, node1 */
static char *wrong;    /* client with another key */
static char *stranger; /* mallory only */
static char *bad_file; /* the malformed ones, one after the other */

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

/* A listener on a free loopback port with the current configuration. */
static struct rmr_listener *
listen_any (struct rmr_addr *addr, const struct rmr_listen_opts *opts)
{
  struct rmr_listener *l;
  unsigned i;

  for (i = 0; i < 100; i++) {
    g_assert_cmpint (rmr_addr_parse ("t", "tcp:127.0.0.1:1", addr), ==, 0);
    addr->port = 20000 + g_random_int_range (0, 30000);
    if (rmr_listen (addr, opts, echo_accept, NULL, &l) == 0)
      return l;
  }
  g_assert_not_reached ();
}

static void
test_key_file (void)
{
  static const struct {
    const char *text, *error;
    int errnum;
  } bad[] = {
    {"client " K1 "\n", "line 1: no ':'", EINVAL},
    {"# c\n\nclient:" K1 "0\n", "line 3: key of 'client' has an odd", EINVAL},
    {"client:0011\n", "line 1: key of 'client' is 2 bytes; 16 to 512", EINVAL},
    {"client:" K1 "\nclient:" K2 "\n", "line 2: username 'client' appears",
     EINVAL},
    {"cli ent:" K1 "\n", "line 1: bad username", EINVAL},
    {":" K1 "\n", "line 1: bad username", EINVAL},
    {"client:" K1 "zz\n", "line 1: key of 'client' is not hex", EINVAL},
    {"# nothing\n", "no keys", EINVAL},
    {"node1:" K1 "\n", "no key for username 'client'", ENOKEY},
  };
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *f = echo_write_file (dir, "bad.psk", bad[i].text);
    assert_error (rmr_tls_setup (RMR_TLS_REQUIRE, f, "client"), bad[i].errnum,
                  bad[i].error);
  }
  assert_error (rmr_tls_setup (RMR_TLS_REQUIRE, "/nonexistent/k.psk", "c"),
                ENOENT, "key file /nonexistent/k.psk");
  assert_error (rmr_tls_setup (RMR_TLS_ON, NULL, "c"), EINVAL,
                "tls=on: needs a key file");
  assert_error (rmr_tls_setup (RMR_TLS_REQUIRE, keys, "a:b"), EINVAL,
                "tls username 'a:b'");
  /* A failed setup changed nothing: still off. */
  g_assert_cmpint (rmr_tls_mode (rmr_tls_current ()), ==, RMR_TLS_OFF);
}

/* Send one request and wait for its reply. */
static struct rmr_hdr
roundtrip (struct rmr_conn *conn, struct echo_client *cc, uint8_t type,
           uint32_t len, uint64_t tag)
{
  struct rmr_hdr h = {.type = type,
                      .group_id = 1,
                      .member_id = RMR_MEMBER_NONE,
                      .tag = tag,
                      .length = len};
  g_autofree uint8_t *data = NULL;
  struct iovec iov = {0};
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  if (type == RMR_MSG_WRITE) {
    data = g_malloc (len);
    echo_pattern (data, len, tag);
    iov.iov_base = data;
    iov.iov_len = h.payload_len = len;
  }
  g_mutex_lock (&cc->lock);
  cc->got = false;
  g_mutex_unlock (&cc->lock);
  g_assert_cmpint (rmr_conn_send (conn, &h, &iov, iov.iov_len ? 1 : 0), ==, 0);
  g_mutex_lock (&cc->lock);
  while (!cc->got && !cc->down)
    g_assert_true (g_cond_wait_until (&cc->cond, &cc->lock, end));
  g_assert_false (cc->down);
  h = cc->rep;
  g_mutex_unlock (&cc->lock);
  return h;
}

/* Writes and reads of several sizes; every byte checked. */
static void
exchange (struct rmr_conn *conn, struct echo_client *cc)
{
  static const uint32_t sizes[] = {512, 4096, 16384, 16385, 65536 + 3, BIG};
  g_autofree uint8_t *want = g_malloc (BIG);
  struct rmr_hdr rep;
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (sizes); i++) {
    rep = roundtrip (conn, cc, RMR_MSG_WRITE, sizes[i], 100 + i);
    g_assert_cmpuint (rep.status, ==, 0);
    rep = roundtrip (conn, cc, RMR_MSG_READ, sizes[i], 200 + i);
    g_assert_cmpuint (rep.status, ==, 0);
    echo_pattern (want, sizes[i], 200 + i);
    g_assert_true (memcmp (want, cc->buf, sizes[i]) == 0);
  }
}

static void
test_matrix (void)
{
  /* [server][client]: 0 plaintext, 1 TLS, 2 refused. */
  static const int expect[3][3] = {{0, 0, 2}, {0, 1, 1}, {2, 1, 1}};
  enum rmr_tls_mode s, c;

  for (s = RMR_TLS_OFF; s <= RMR_TLS_REQUIRE; s++)
    for (c = RMR_TLS_OFF; c <= RMR_TLS_REQUIRE; c++) {
      struct rmr_listen_opts lo = {.refused = echo_refused};
      struct rmr_listener *l;
      struct rmr_conn *conn = NULL;
      struct rmr_addr addr;
      struct echo_client cc;
      int r;

      g_test_message ("server tls=%s, client tls=%s", rmr_tls_mode_name (s),
                      rmr_tls_mode_name (c));
      echo_set_tls (s, keys, "node1");
      l = listen_any (&addr, &lo);
      echo_set_tls (c, keys, "client");
      echo_client_init (&cc);
      r = echo_connect (&addr, &cc, NULL, &conn);
      if (expect[s][c] == 2) {
        if (c == RMR_TLS_REQUIRE)
          assert_error (r, EACCES, "offers no TLS");
        else
          assert_error (r, EACCES, "requires TLS");
      }
      else {
        g_assert_cmpint (r, ==, 0);
        if (expect[s][c] == 1) {
          g_assert_nonnull (strstr (conn->security, "TLS1.3"));
          g_assert_cmpstr (conn->identity, ==, "client");
        }
        else
          g_assert_cmpstr (conn->security, ==, "plaintext");
        exchange (conn, &cc);
        rmr_conn_close (conn);
      }
      rmr_listener_close (l);
      echo_client_fini (&cc);
    }
}

/* A wrong key and an unknown identity: refused in the handshake, with
 * the identity logged, and never accepted.
 */
static void
test_bad_keys (void)
{
  struct rmr_listen_opts lo = {.refused = echo_refused};
  struct rmr_listener *l;
  struct rmr_conn *conn = NULL;
  struct rmr_addr addr;
  struct echo_client cc;
  unsigned n0 = echo_nrefusals (), a0;

  echo_set_tls (RMR_TLS_REQUIRE, keys, "node1");
  l = listen_any (&addr, &lo);
  a0 = echo_naccepted ();
  echo_client_init (&cc);

  echo_set_tls (RMR_TLS_REQUIRE, wrong, "client");
  assert_error (echo_connect (&addr, &cc, NULL, &conn), EACCES,
                "the node refused our TLS key (identity 'client'");
  g_assert_nonnull (strstr (echo_refusal (n0 + 1),
                            "client|TLS identity 'client' "
                            "with a wrong key"));

  echo_set_tls (RMR_TLS_ON, stranger, "mallory");
  assert_error (echo_connect (&addr, &cc, NULL, &conn), EACCES,
                "refused our TLS key (identity 'mallory'");
  g_assert_cmpstr (echo_refusal (n0 + 2), ==,
                   "mallory|unknown TLS identity "
                   "'mallory'");

  /* Plaintext to a tls=require node. */
  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  assert_error (echo_connect (&addr, &cc, NULL, &conn), EACCES, "requires TLS");
  g_assert_cmpstr (echo_refusal (n0 + 3), ==,
                   "|a plaintext session, and "
                   "tls=require");

  g_assert_cmpuint (echo_naccepted (), ==, a0);

  /* And the right key still gets in. */
  echo_set_tls (RMR_TLS_REQUIRE, keys, "client");
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &conn), ==, 0);
  exchange (conn, &cc);
  rmr_conn_close (conn);
  rmr_listener_close (l);
  echo_client_fini (&cc);
}

static int
raw_connect (const struct rmr_addr *addr)
{
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons (addr->port)};
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  inet_pton (AF_INET, "127.0.0.1", &sin.sin_addr);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  return fd;
}

/* Silent sockets hold handshake slots only until the deadline; beyond
 * max_handshakes a connect is refused as busy at once.
 */
static void
test_limits (void)
{
  struct rmr_listen_opts lo = {
    .refused = echo_refused, .max_handshakes = 3, .handshake_timeout_ms = 600};
  struct rmr_listener *l;
  struct rmr_conn *conn = NULL;
  struct rmr_addr addr;
  struct echo_client cc;
  unsigned n0 = echo_nrefusals (), i;
  int fds[3];
  gint64 t0;

  echo_set_tls (RMR_TLS_REQUIRE, keys, "node1");
  l = listen_any (&addr, &lo);
  echo_set_tls (RMR_TLS_REQUIRE, keys, "client");
  echo_client_init (&cc);
  for (i = 0; i < 3; i++)
    fds[i] = raw_connect (&addr);
  g_usleep (100000); /* let the listener take them */
  assert_error (echo_connect (&addr, &cc, NULL, &conn), ECONNREFUSED,
                "too many handshakes");
  g_assert_nonnull (strstr (echo_refusal (n0 + 1), "max_handshakes"));

  /* The silent ones go at the deadline; then a client gets in. */
  t0 = g_get_monotonic_time ();
  for (i = 0; i < 3; i++)
    g_assert_nonnull (
      strstr (echo_refusal (n0 + 2 + i), "no hello within 600 ms"));
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 5 * G_TIME_SPAN_SECOND);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &conn), ==, 0);
  exchange (conn, &cc);
  rmr_conn_close (conn);
  for (i = 0; i < 3; i++)
    close (fds[i]);

  /* A listener closed with handshakes in progress waits for them. */
  fds[0] = raw_connect (&addr);
  g_usleep (50000);
  rmr_listener_close (l);
  close (fds[0]);
  echo_client_fini (&cc);
}

/* Key updates on both sides while the client streams writes and the
 * replies stream back.  Each is started where GnuTLS starts its own, on
 * the sending side (as the connection's sender, between two messages),
 * while that session's receive thread receives; the peer's receive
 * thread takes it in while its sender sends.  Without the
 * session lock this failed two runs in three.
 */
struct rekey {
  struct tcp_conn *a, *b;
  gint stop;
  unsigned n;
};

static void
rekey (struct tcp_conn *c)
{
  while (!tcp_sender_claim (c))
    g_usleep (100);
  g_assert_cmpint (rmr_tls_key_update (c->tls), ==, 0);
  tcp_sender_release (c, 0);
}

static gpointer
rekey_thread (gpointer opaque)
{
  struct rekey *k = opaque;

  while (!g_atomic_int_get (&k->stop)) {
    rekey (k->a);
    rekey (k->b);
    k->n++;
    g_usleep (300000); /* GnuTLS refuses more than a few a second */
  }
  return NULL;
}

static void
test_rekey (void)
{
  struct rmr_listen_opts lo = {.refused = echo_refused};
  struct rmr_listener *l;
  struct rmr_conn *conn = NULL;
  struct rmr_addr addr;
  struct echo_client cc;
  struct rekey k = {0};
  g_autofree uint8_t *data = g_malloc (8192);
  gint64 end;
  GThread *t;
  unsigned i, n = 60000;

  echo_set_tls (RMR_TLS_REQUIRE, keys, "node1");
  l = listen_any (&addr, &lo);
  echo_set_tls (RMR_TLS_REQUIRE, keys, "client");
  echo_client_init (&cc);
  g_assert_cmpint (echo_connect (&addr, &cc, NULL, &conn), ==, 0);
  exchange (conn, &cc); /* the server side is accepted by now */
  g_mutex_lock (&echo_srv.lock);
  k.b = (struct tcp_conn *) echo_srv.last_accepted;
  g_mutex_unlock (&echo_srv.lock);
  k.a = (struct tcp_conn *) conn;
  cc.nrep = cc.nbad = 0;
  t = g_thread_new ("rekey", rekey_thread, &k);
  for (i = 0; i < n; i++) {
    struct rmr_hdr h = {.type = RMR_MSG_WRITE,
                        .group_id = 1,
                        .member_id = RMR_MEMBER_NONE,
                        .tag = i,
                        .length = 8192,
                        .payload_len = 8192};
    struct iovec iov = {.iov_base = data, .iov_len = 8192};

    echo_pattern (data, 8192, i);
    if (rmr_conn_send (conn, &h, &iov, 1) != 0)
      g_error ("write %u: %s", i, rmr_get_error ());
  }
  end = g_get_monotonic_time () + 60 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&cc.lock);
  while (cc.nrep < n && !cc.down)
    g_assert_true (g_cond_wait_until (&cc.cond, &cc.lock, end));
  g_assert_false (cc.down);
  g_assert_cmpuint (cc.nbad, ==, 0);
  g_mutex_unlock (&cc.lock);
  g_atomic_int_set (&k.stop, 1);
  g_thread_join (t);
  g_test_message ("%u key updates on each side during %u writes", k.n, n);
  g_assert_cmpuint (k.n, >, 0);
  exchange (conn, &cc);
  rmr_conn_close (conn);
  rmr_listener_close (l);
  echo_client_fini (&cc);
}

/* Clients that close as soon as they are connected: the server's receive
 * thread goes down at once and s_down closes the connection from that
 * thread, at times before the handshake thread that started it is back
 * from pthread_create.  tcp_free took such a call for one from another
 * thread (c->thread not yet stored, thread_started not yet set) and freed
 * the connection under its receive thread: a heap-use-after-free in
 * recv_thread that the asan setup caught in the bad-input test.  A race:
 * many rounds, and a hit shows under ASan.
 */
static void
test_close_at_once (void)
{
  struct rmr_listen_opts lo = {.max_handshakes = 1000};
  struct rmr_listener *l;
  struct rmr_conn *conn;
  struct rmr_addr addr;
  struct echo_client cc;
  gint64 end = g_get_monotonic_time () + 30 * G_TIME_SPAN_SECOND;
  unsigned a0, d0, i, n = 1000;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  l = listen_any (&addr, &lo);
  echo_client_init (&cc);
  g_mutex_lock (&echo_srv.lock);
  a0 = echo_srv.accepted;
  d0 = echo_srv.downs;
  g_mutex_unlock (&echo_srv.lock);
  for (i = 0; i < n; i++) {
    g_assert_cmpint (echo_connect (&addr, &cc, NULL, &conn), ==, 0);
    rmr_conn_close (conn);
  }
  g_mutex_lock (&echo_srv.lock);
  while (echo_srv.accepted - a0 < n || echo_srv.downs - d0 < n)
    g_assert_true (g_cond_wait_until (&echo_srv.cond, &echo_srv.lock, end));
  g_assert_cmpuint (echo_srv.accepted - a0, ==, n);
  g_assert_cmpuint (echo_srv.downs - d0, ==, n);
  g_mutex_unlock (&echo_srv.lock);
  rmr_listener_close (l);
  echo_client_fini (&cc);
}

/* A fake node: answers the hello, then the first request's reply header
 * with 1 MiB announced, 100 KiB of it, and nothing more.
 */
static gpointer
stall_server (gpointer opaque)
{
  int lfd = GPOINTER_TO_INT (opaque), fd;
  uint8_t buf[RMR_HDR_SIZE];
  g_autofree uint8_t *body = g_malloc0 (100 * 1024);
  struct rmr_hello hello = {.version = RMR_HELLO_VERSION};
  struct rmr_hdr h;

  fd = accept (lfd, NULL, NULL);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (recv (fd, buf, RMR_HELLO_SIZE, MSG_WAITALL), ==,
                   RMR_HELLO_SIZE);
  rmr_hello_encode (&hello, buf);
  g_assert_cmpint (send (fd, buf, RMR_HELLO_SIZE, 0), ==, RMR_HELLO_SIZE);
  g_assert_cmpint (recv (fd, buf, RMR_HDR_SIZE, MSG_WAITALL), ==, RMR_HDR_SIZE);
  g_assert_cmpint (rmr_hdr_decode (buf, &h), ==, 0);
  h.flags |= RMR_HF_REPLY;
  h.payload_len = h.length;
  rmr_hdr_encode (&h, buf);
  g_assert_cmpint (send (fd, buf, RMR_HDR_SIZE, 0), ==, RMR_HDR_SIZE);
  g_assert_cmpint (send (fd, body, 100 * 1024, 0), ==, 100 * 1024);
  return GINT_TO_POINTER (fd); /* kept open, silent */
}

static void
test_stall (void)
{
  struct sockaddr_in sin = {.sin_family = AF_INET};
  socklen_t len = sizeof sin;
  struct rmr_conn_opts opts = {.idle_timeout_ms = 1000};
  struct rmr_hdr h = {.type = RMR_MSG_READ,
                      .group_id = 1,
                      .member_id = RMR_MEMBER_NONE,
                      .tag = 1,
                      .length = BIG};
  struct rmr_conn *conn;
  struct rmr_addr addr;
  struct echo_client cc;
  GThread *t;
  gint64 t0, end;
  int lfd, fd;

  echo_set_tls (RMR_TLS_OFF, NULL, NULL);
  lfd = socket (AF_INET, SOCK_STREAM, 0);
  inet_pton (AF_INET, "127.0.0.1", &sin.sin_addr);
  g_assert_cmpint (bind (lfd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  g_assert_cmpint (listen (lfd, 1), ==, 0);
  g_assert_cmpint (getsockname (lfd, (struct sockaddr *) &sin, &len), ==, 0);
  g_assert_cmpint (rmr_addr_parse ("t", "tcp:127.0.0.1:1", &addr), ==, 0);
  addr.port = ntohs (sin.sin_port);
  t = g_thread_new ("stall", stall_server, GINT_TO_POINTER (lfd));
  echo_client_init (&cc);
  g_assert_cmpint (
    rmr_conn_connect (&addr, &opts, &echo_client_handler, &cc, &conn), ==, 0);
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (rmr_conn_send (conn, &h, NULL, 0), ==, 0);
  end = t0 + 10 * G_TIME_SPAN_SECOND;
  g_mutex_lock (&cc.lock);
  while (!cc.down)
    g_assert_true (g_cond_wait_until (&cc.cond, &cc.lock, end));
  g_assert_cmpint (cc.down_err, ==, ETIMEDOUT);
  g_mutex_unlock (&cc.lock);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 5 * G_TIME_SPAN_SECOND);
  rmr_conn_close (conn);
  fd = GPOINTER_TO_INT (g_thread_join (t));
  close (fd);
  close (lfd);
  echo_client_fini (&cc);
}

int
main (int argc, char **argv)
{
  int r;

  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("rmr-tls-XXXXXX", NULL);
  g_assert_nonnull (dir);
  keys = echo_write_file (dir, "keys.psk", "client:" K1 "\nnode1:" K2 "\n");
  wrong = echo_write_file (dir, "wrong.psk", "client:" K2 "\n");
  stranger = echo_write_file (dir, "stranger.psk",
                              "# psktool -u mallory\nmallory:" K1 "\n");
  echo_srv.refusals = g_ptr_array_new_with_free_func (g_free);
  bad_file = g_build_filename (dir, "bad.psk", NULL);

  g_test_add_func ("/tls/key-file", test_key_file);
  g_test_add_func ("/tls/matrix", test_matrix);
  g_test_add_func ("/tls/bad-keys", test_bad_keys);
  g_test_add_func ("/tls/limits", test_limits);
  g_test_add_func ("/tls/rekey", test_rekey);
  g_test_add_func ("/tls/stall", test_stall);
  g_test_add_func ("/tls/close-at-once", test_close_at_once);
  r = g_test_run ();

  g_unlink (keys);
  g_unlink (wrong);
  g_unlink (stranger);
  g_unlink (bad_file);
  g_rmdir (dir);
  return r;
}
