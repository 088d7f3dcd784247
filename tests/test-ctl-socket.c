/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the control socket (common/ctl-socket.c): a real server on
 * a socket in a temporary directory over the fake table of
 * test-ctl-fake.h, with ctl_request () round trips, raw clients (a last
 * line without '\n', a NUL, lines at and over CTL_LINE_MAX), the log hook,
 * a second server refused, stale sockets replaced, other files refused, a
 * prompt stop with an idle client, the request timeout, and ctl_request ()
 * against servers that answer garbage or nothing.
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "ctl.h"
#include "error.h"
#include "util.h"

#include "test-ctl-fake.h"

static void
log_hook (void *opaque, const char *request, int result, const char *reply)
{
  struct fake *f = opaque;

  pthread_mutex_lock (&lock);
  f->log_calls++;
  f->log_result = result;
  pthread_mutex_unlock (&lock);
}

/* A raw client: send bytes (len), optionally half-close, read the reply. */
static char *
raw_request (const char *path, const char *data, size_t len, bool half_close)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  g_autoptr (GString) reply = g_string_new (NULL);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char buf[512];
  ssize_t r;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpuint (strlen (path), <, sizeof sa.sun_path);
  memcpy (sa.sun_path, path, strlen (path) + 1);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (send (fd, data, len, MSG_NOSIGNAL), ==, (ssize_t) len);
  if (half_close)
    shutdown (fd, SHUT_WR);
  while ((r = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (reply, buf, r);
  close (fd);
  return g_strdup (reply->str);
}

static void
test_server (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-ctl-XXXXXX", NULL);
  g_autofree char *sub = g_build_filename (dir, "run", "rmr", NULL);
  g_autofree char *sock = g_build_filename (sub, "ctl.sock", NULL);
  g_autofree char *parent = g_path_get_dirname (sub);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  g_autofree char *big = NULL;
  g_autofree char *expect = NULL;
  struct ctl_server *srv, *srv2;
  struct stat st;
  char *reply;

  fake_reset ();
  g_assert_nonnull (dir);
  srv =
    ctl_server_start_full (sock, table, ARRAY_SIZE (table), &fake, log_hook);
  g_assert_nonnull (srv);
  g_assert_cmpint (stat (sub, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 07777, ==, 0755);
  g_assert_cmpint (stat (sock, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 07777, ==, 0600);

  g_assert_cmpint (ctl_request (sock, "get pools/alpha/state", out, err), ==,
                   0);
  g_assert_cmpstr (out->str, ==, "normal\n");
  g_assert_cmpuint (err->len, ==, 0);
  pthread_mutex_lock (&lock);
  g_assert_cmpuint (fake.log_calls, ==, 1);
  g_assert_cmpint (fake.log_result, ==, 0);
  pthread_mutex_unlock (&lock);

  g_string_truncate (out, 0);
  g_assert_cmpint (ctl_request (sock, "set ctl/join_pool poolname=p", out, err),
                   ==, -1);
  g_assert_cmpstr (err->str, ==,
                   "set ctl/join_pool: missing required key 'member_id'");
  g_assert_cmpuint (out->len, ==, 0);
  pthread_mutex_lock (&lock);
  g_assert_cmpint (fake.log_result, ==, -1);
  pthread_mutex_unlock (&lock);

  g_string_truncate (err, 0);
  g_assert_cmpint (ctl_request (sock,
                                "set ctl/join_pool poolname=p "
                                "member_id=3",
                                out, err),
                   ==, 0);
  g_assert_cmpstr (out->str, ==, "");
  pthread_mutex_lock (&lock);
  g_assert_cmpstr (fake.log->str, ==, "join p 3 -");
  pthread_mutex_unlock (&lock);

  g_assert_cmpint (ctl_request (sock, "status --json", out, err), ==, 0);
  g_assert_cmpstr (out->str, ==, json_all + 3);

  /* Client-side checks of the request. */
  g_string_truncate (err, 0);
  g_assert_cmpint (ctl_request (sock, "get a\nget b", out, err), ==, -1);
  g_assert_cmpstr (err->str, ==, "request contains a newline");
  big = g_strnfill (CTL_LINE_MAX + 1, 'x');
  g_string_truncate (err, 0);
  g_assert_cmpint (ctl_request (sock, big, out, err), ==, -1);
  g_assert_cmpstr (err->str, ==, "request too long (more than 4096 bytes)");

  /* Raw clients: a last line without '\n', a NUL, a line too long. */
  reply = raw_request (sock, "get pools/beta/state", 20, true);
  g_assert_cmpstr (reply, ==, "ok\nno_io\n");
  g_free (reply);
  reply = raw_request (sock, "get pools/beta/state\nget junk\n", 30, false);
  g_assert_cmpstr (reply, ==, "ok\nno_io\n");
  g_free (reply);
  reply = raw_request (sock, "get a\0b\n", 8, false);
  g_assert_cmpstr (reply, ==, "error: request contains a NUL byte\n");
  g_free (reply);
  /* A line of exactly CTL_LINE_MAX bytes is served; one byte more is
   * refused, whether its '\n' comes or not.
   */
  g_free (big);
  big = g_strnfill (CTL_LINE_MAX + 2, 'x');
  memcpy (big, "get ", 4);
  big[CTL_LINE_MAX] = '\n';
  expect = g_strdup_printf ("error: no such attribute: %.*s\n",
                            CTL_LINE_MAX - 4, big + 4);
  reply = raw_request (sock, big, CTL_LINE_MAX + 1, false);
  g_assert_cmpstr (reply, ==, expect);
  g_free (reply);
  big[CTL_LINE_MAX] = 'x';
  big[CTL_LINE_MAX + 1] = '\n';
  reply = raw_request (sock, big, CTL_LINE_MAX + 2, false);
  g_assert_cmpstr (reply, ==,
                   "error: request too long (more than 4096 "
                   "bytes)\n");
  g_free (reply);
  big[CTL_LINE_MAX + 1] = 'x';
  reply = raw_request (sock, big, CTL_LINE_MAX + 2, true);
  g_assert_cmpstr (reply, ==,
                   "error: request too long (more than 4096 "
                   "bytes)\n");
  g_free (reply);
  /* A client that connects and says nothing before closing. */
  reply = raw_request (sock, "", 0, true);
  g_assert_cmpstr (reply, ==, "");
  g_free (reply);

  srv2 = ctl_server_start (sock, table, ARRAY_SIZE (table), &fake);
  g_assert_null (srv2);
  g_assert_cmpint (errno, ==, EADDRINUSE);
  g_assert_cmpint (rmr_get_errno (), ==, EADDRINUSE);
  g_assert_nonnull (strstr (rmr_get_error (), "another server is listening"));
  /* The refused start left the live socket alone. */
  g_string_truncate (out, 0);
  g_assert_cmpint (ctl_request (sock, "get pools/alpha/member_id", out, err),
                   ==, 0);
  g_assert_cmpstr (out->str, ==, "42\n");

  ctl_server_stop (srv);
  g_assert_cmpint (access (sock, F_OK), ==, -1);
  g_string_truncate (err, 0);
  g_assert_cmpint (ctl_request (sock, "get pools/alpha/state", out, err), ==,
                   -1);
  g_free (expect);
  expect = g_strdup_printf ("control socket %s: connect: No such file or "
                            "directory",
                            sock);
  g_assert_cmpstr (err->str, ==, expect);

  g_assert_cmpint (g_rmdir (sub), ==, 0);
  g_assert_cmpint (g_rmdir (parent), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static gpointer
garbage_server (gpointer data)
{
  int c = accept (GPOINTER_TO_INT (data), NULL, NULL);
  char buf[256];

  g_assert_cmpint (c, >=, 0);
  g_assert_cmpint (read (c, buf, sizeof buf), >, 0);
  g_assert_cmpint (write (c, "garbage\n", 8), ==, 8);
  close (c);
  return NULL;
}

static gpointer
mute_server (gpointer data)
{
  int c = accept (GPOINTER_TO_INT (data), NULL, NULL);

  g_assert_cmpint (c, >=, 0);
  close (c);
  return NULL;
}

/* Stale sockets are replaced, other files refused, an idle client does
 * not delay stop, and a silent one is answered after the timeout.
 */
static void
test_server_start_stop (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-ctl-XXXXXX", NULL);
  g_autofree char *sock = g_build_filename (dir, "ctl.sock", NULL);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GString) err = g_string_new (NULL);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  g_autofree char *expect = NULL;
  struct ctl_server *srv;
  char buf[256];
  gint64 t0;
  int fd;
  ssize_t r;

  fake_reset ();
  ctl_server_stop (NULL);

  /* A stale socket: bound, never listening, its owner gone. */
  memcpy (sa.sun_path, sock, strlen (sock) + 1);
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  close (fd);
  srv = ctl_server_start (sock, table, ARRAY_SIZE (table), &fake);
  g_assert_nonnull (srv);
  g_assert_cmpint (ctl_request (sock, "get pools/alpha/state", out, err), ==,
                   0);

  /* Stop while a client is connected and silent: prompt. */
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_usleep (100000);
  t0 = g_get_monotonic_time ();
  ctl_server_stop (srv);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC);
  close (fd);
  g_assert_cmpint (access (sock, F_OK), ==, -1);

  /* A silent client is told so after CTL_IO_TIMEOUT_MS. */
  {
    srv = ctl_server_start (sock, table, ARRAY_SIZE (table), &fake);
    g_assert_nonnull (srv);
    fd = socket (AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
    t0 = g_get_monotonic_time ();
    r = read (fd, buf, sizeof buf - 1);
    g_assert_cmpint (r, >, 0);
    buf[r] = '\0';
    g_assert_cmpstr (buf, ==, "error: timed out waiting for the request\n");
    g_assert_cmpint (g_get_monotonic_time () - t0, >=,
                     (CTL_IO_TIMEOUT_MS - 100) * 1000);
    close (fd);
    ctl_server_stop (srv);
  }

  /* Not a socket: refused, left alone. */
  g_assert_true (g_file_set_contents (sock, "data", -1, NULL));
  srv = ctl_server_start (sock, table, ARRAY_SIZE (table), &fake);
  g_assert_null (srv);
  g_assert_cmpint (errno, ==, EEXIST);
  g_assert_cmpint (access (sock, F_OK), ==, 0);
  g_assert_cmpint (g_unlink (sock), ==, 0);

  /* A path too long for sun_path, and a bad table. */
  {
    g_autofree char *lng = g_strnfill (200, 'a');

    srv = ctl_server_start (lng, table, ARRAY_SIZE (table), &fake);
    g_assert_null (srv);
    g_assert_cmpint (errno, ==, ENAMETOOLONG);
  }
  {
    static const struct ctl_cmd bad[] = {{.path = "a"}};

    srv = ctl_server_start (sock, bad, 1, &fake);
    g_assert_null (srv);
    g_assert_cmpint (errno, ==, EINVAL);
    g_assert_cmpstr (rmr_get_error (), ==,
                     "control table: a: no get, set or list");
  }

  /* A server that answers garbage: ctl_request says so. */
  {
    int lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    GThread *th;

    g_assert_cmpint (bind (lfd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
    g_assert_cmpint (listen (lfd, 1), ==, 0);
    th = g_thread_new ("garbage", garbage_server, GINT_TO_POINTER (lfd));
    g_string_truncate (err, 0);
    g_assert_cmpint (ctl_request (sock, "help", out, err), ==, -1);
    g_free (expect);
    expect = g_strdup_printf ("control socket %s: malformed reply", sock);
    g_assert_cmpstr (err->str, ==, expect);
    g_thread_join (th);

    /* And one that closes without a word. */
    th = g_thread_new ("mute", mute_server, GINT_TO_POINTER (lfd));
    g_string_truncate (err, 0);
    g_assert_cmpint (ctl_request (sock, "help", out, err), ==, -1);
    g_free (expect);
    expect = g_strdup_printf ("control socket %s: the server closed the "
                              "connection without a reply",
                              sock);
    g_assert_cmpstr (err->str, ==, expect);
    g_thread_join (th);
    close (lfd);
    g_assert_cmpint (g_unlink (sock), ==, 0);
  }

  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ctl/server", test_server);
  g_test_add_func ("/ctl/server-start-stop", test_server_start_stop);
  return g_test_run ();
}
