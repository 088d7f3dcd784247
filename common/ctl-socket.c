/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control socket (ctl.h, DESIGN 8): the Unix socket server that reads
 * one request line per connection, answers it through ctl_dispatch ()
 * (ctl-dispatch.c) and closes; and the client, ctl_request (), that sends
 * one line and collects the reply.
 *
 * Both sides use non-blocking sockets with a deadline per exchange
 * (CTL_IO_TIMEOUT_MS on the server, CTL_CLIENT_TIMEOUT_MS on the client),
 * so a silent or slow peer cannot hold the server thread for long.
 *
 * Locking: a server has one thread that answers one connection at a time,
 * so the handlers of one server never run concurrently with each other;
 * they take their own locks against the rest of the process.  struct
 * ctl_server is written before the thread starts and only read afterwards;
 * stop is signalled through an eventfd that the thread polls together with
 * the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl-internal.h"
#include "error.h"
#include "util.h"

/* Socket helpers --------------------------------------------------------- */

static int64_t
now_ms (void)
{
  struct timespec ts;

  if (clock_gettime (CLOCK_MONOTONIC, &ts) == -1)
    abort ();
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
fill_sockaddr (const char *path, struct sockaddr_un *sa)
{
  size_t len = strlen (path);

  if (len == 0)
    return rmr_err (EINVAL, "control socket: empty path");
  if (len >= sizeof sa->sun_path)
    return rmr_err (ENAMETOOLONG,
                    "control socket %s: path too long (at most %zu bytes)",
                    path, sizeof sa->sun_path - 1);
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy (sa->sun_path, path, len + 1);
  return 0;
}

/* Wait until fd is ready for events or the deadline passes; wake_fd (or
 * -1) interrupts.  Returns 1 ready, 0 timed out or woken, -1 error.
 */
static int
wait_fd (int fd, short events, int wake_fd, int64_t deadline)
{
  for (;;) {
    struct pollfd p[2] = {
      {.fd = fd, .events = events},
      {.fd = wake_fd, .events = POLLIN},
    };
    int64_t left = deadline - now_ms ();
    int r;

    if (left <= 0)
      return 0;
    r = poll (p, wake_fd >= 0 ? 2 : 1, (int) MIN (left, INT32_MAX));
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (wake_fd >= 0 && p[1].revents)
      return 0;
    if (p[0].revents)
      return 1;
  }
}

/* Send all of buf on a non-blocking socket before the deadline. */
static int
send_all (int fd, const char *buf, size_t len, int wake_fd, int64_t deadline)
{
  while (len > 0) {
    ssize_t r = send (fd, buf, len, MSG_NOSIGNAL);

    if (r == -1) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
      r = wait_fd (fd, POLLOUT, wake_fd, deadline);
      if (r == 0)
        errno = ETIMEDOUT;
      if (r <= 0)
        return -1;
      continue;
    }
    buf += r;
    len -= r;
  }
  return 0;
}

/* Server ----------------------------------------------------------------- */

struct ctl_server {
  char *path;
  const struct ctl_cmd *table;
  size_t n;
  void *opaque;
  ctl_log_fn log;
  int fd;      /* listening socket */
  int wake_fd; /* eventfd: written by stop */
  dev_t dev;   /* the socket file we created */
  ino_t ino;
  GThread *thread;
};

/* Read one request line (without its '\n') into line; returns 0, or -1
 * with the error reply in reply, or -2 when there is nothing to answer
 * (peer gone, server stopping).
 */
static int
serve_read (struct ctl_server *srv, int c, GString *line, GString *reply)
{
  int64_t deadline = now_ms () + CTL_IO_TIMEOUT_MS;
  g_autofree char *buf = g_malloc (CTL_LINE_MAX + 2);
  size_t len = 0;

  for (;;) {
    char *nl = memchr (buf, '\n', len);
    ssize_t r;

    if (nl) {
      len = nl - buf;
      break;
    }
    if (len == CTL_LINE_MAX + 2) {
      ctl_reply_errorf (reply, "request too long (more than %d bytes)",
                        CTL_LINE_MAX);
      return -1;
    }
    r = read (c, buf + len, CTL_LINE_MAX + 2 - len);
    if (r == 0) {
      if (len == 0)
        return -2;
      break; /* a last line without '\n' */
    }
    if (r == -1) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -2;
      r = wait_fd (c, POLLIN, srv->wake_fd, deadline);
      if (r == -1)
        return -2;
      if (r == 0) {
        if (now_ms () < deadline)
          return -2; /* stopping */
        ctl_reply_errorf (reply, "timed out waiting for the request");
        return -1;
      }
      continue;
    }
    len += r;
  }
  if (memchr (buf, '\0', len)) {
    ctl_reply_errorf (reply, "request contains a NUL byte");
    return -1;
  }
  g_string_append_len (line, buf, len);
  return 0;
}

static void
serve_one (struct ctl_server *srv, int c)
{
  g_autoptr (GString) line = g_string_new (NULL);
  g_autoptr (GString) reply = g_string_new (NULL);
  int r;

  r = serve_read (srv, c, line, reply);
  if (r == -2)
    return;
  if (r == 0)
    r = ctl_dispatch (srv->table, srv->n, srv->opaque, line->str, reply);
  if (srv->log)
    srv->log (srv->opaque, line->str, r, reply->str);
  /* The peer may be gone; nothing to do about a failed send. */
  (void) send_all (c, reply->str, reply->len, srv->wake_fd,
                   now_ms () + CTL_IO_TIMEOUT_MS);
}

static bool
server_stopping (struct ctl_server *srv)
{
  struct pollfd p = {.fd = srv->wake_fd, .events = POLLIN};

  return poll (&p, 1, 0) == 1;
}

static gpointer
server_thread (gpointer data)
{
  struct ctl_server *srv = data;

  for (;;) {
    struct pollfd p[2] = {
      {.fd = srv->fd, .events = POLLIN},
      {.fd = srv->wake_fd, .events = POLLIN},
    };
    int c;

    if (poll (p, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      g_usleep (100000); /* ENOMEM: transient */
      continue;
    }
    if (p[1].revents)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    c = accept4 (srv->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c == -1) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM)
        g_usleep (100000); /* do not spin while out of descriptors */
      continue;
    }
    serve_one (srv, c);
    close (c);
    if (server_stopping (srv))
      break;
  }
  return NULL;
}

/* Is a server listening on the socket at path?  1 yes, 0 no (stale), -1
 * error (message set).
 */
static int
socket_is_live (const char *path, const struct sockaddr_un *sa)
{
  CLEANUP_CLOSE int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd == -1)
    return rmr_err (errno, "control socket %s: socket: %s", path,
                    g_strerror (errno));
  if (connect (fd, (const struct sockaddr *) sa, sizeof *sa) == 0)
    return 1;
  if (errno == ECONNREFUSED)
    return 0;
  return rmr_err (errno, "control socket %s: connect: %s", path,
                  g_strerror (errno));
}

static void
server_free (struct ctl_server *srv)
{
  if (srv->fd >= 0)
    close (srv->fd);
  if (srv->wake_fd >= 0)
    close (srv->wake_fd);
  g_free (srv->path);
  g_free (srv);
}

static void
server_unlink (struct ctl_server *srv)
{
  struct stat st;

  if (stat (srv->path, &st) == 0 && st.st_dev == srv->dev &&
      st.st_ino == srv->ino)
    unlink (srv->path);
}

struct ctl_server *
ctl_server_start_full (const char *path, const struct ctl_cmd *table, size_t n,
                       void *opaque, ctl_log_fn log)
{
  g_autoptr (GString) terr = g_string_new (NULL);
  g_autofree char *dir = NULL;
  g_autoptr (GError) gerr = NULL;
  g_autofree char *tmp = NULL;
  struct ctl_server *srv;
  struct sockaddr_un sa, ta;
  const char *bound;
  struct stat st;
  int e;

  if (fill_sockaddr (path, &sa) < 0)
    return NULL;
  if (ctl_table_check (table, n, terr) == -1) {
    rmr_err (EINVAL, "control table: %s", terr->str);
    return NULL;
  }

  dir = g_path_get_dirname (path);
  if (g_mkdir_with_parents (dir, 0755) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: mkdir %s: %s", path, dir, g_strerror (e));
    return NULL;
  }

  if (lstat (path, &st) == 0) {
    if (!S_ISSOCK (st.st_mode)) {
      rmr_err (EEXIST, "control socket %s: exists and is not a socket", path);
      return NULL;
    }
    switch (socket_is_live (path, &sa)) {
    case 1:
      rmr_err (EADDRINUSE,
               "control socket %s: another server is listening on it", path);
      return NULL;
    case 0:
      if (unlink (path) == -1 && errno != ENOENT) {
        e = errno;
        rmr_err (e, "control socket %s: removing the stale socket: %s", path,
                 g_strerror (e));
        return NULL;
      }
      break;
    default: return NULL;
    }
  }
  else if (errno != ENOENT) {
    e = errno;
    rmr_err (e, "control socket %s: %s", path, g_strerror (e));
    return NULL;
  }

  srv = g_new0 (struct ctl_server, 1);
  srv->path = g_strdup (path);
  srv->table = table;
  srv->n = n;
  srv->opaque = opaque;
  srv->log = log;
  srv->wake_fd = -1;
  srv->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (srv->fd == -1) {
    e = errno;
    rmr_err (e, "control socket %s: socket: %s", path, g_strerror (e));
    goto err;
  }
  /* The socket appears at path only once it listens: bound under a
   * temporary name beside it, then renamed (a client that sees the path
   * can connect; a bare bind would refuse it until listen ()).  A path
   * too long for the temporary name is bound directly.
   */
  tmp = g_strdup_printf ("%s.%d", path, (int) getpid ());
  if (fill_sockaddr (tmp, &ta) < 0) {
    g_free (tmp);
    tmp = NULL;
    ta = sa;
    rmr_err_clear ();
  }
  bound = tmp ? tmp : path;
  if (tmp)
    unlink (tmp);
  if (bind (srv->fd, (struct sockaddr *) &ta, sizeof ta) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: bind: %s", bound, g_strerror (e));
    goto err;
  }
  if (stat (bound, &st) == -1) {
    e = errno;
    rmr_err (e, "control socket %s: %s", bound, g_strerror (e));
    goto err_unlink_bound;
  }
  srv->dev = st.st_dev;
  srv->ino = st.st_ino;
  /* Before listen (): nobody can connect while the mode is still wider. */
  if (chmod (bound, 0600) == -1 || listen (srv->fd, 16) == -1 ||
      (tmp && rename (tmp, path) == -1)) {
    e = errno;
    rmr_err (e, "control socket %s: %s", path, g_strerror (e));
    goto err_unlink_bound;
  }
  srv->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (srv->wake_fd == -1) {
    e = errno;
    rmr_err (e, "control socket %s: eventfd: %s", path, g_strerror (e));
    goto err_unlink;
  }
  srv->thread = g_thread_try_new ("rmr-ctl", server_thread, srv, &gerr);
  if (srv->thread == NULL) {
    rmr_err (EAGAIN, "control socket %s: starting the thread: %s", path,
             gerr->message);
    goto err_unlink;
  }
  return srv;

err_unlink:
  server_unlink (srv);
  goto err;
err_unlink_bound:
  unlink (bound);
err:
  e = errno;
  server_free (srv);
  errno = e;
  return NULL;
}

struct ctl_server *
ctl_server_start (const char *path, const struct ctl_cmd *table, size_t n,
                  void *opaque)
{
  return ctl_server_start_full (path, table, n, opaque, NULL);
}

void
ctl_server_stop (struct ctl_server *srv)
{
  uint64_t one = 1;

  if (srv == NULL)
    return;
  if (write (srv->wake_fd, &one, sizeof one) != sizeof one)
    abort (); /* an eventfd write of 1 cannot fail */
  g_thread_join (srv->thread);
  server_unlink (srv);
  server_free (srv);
}

/* Client ----------------------------------------------------------------- */

int
ctl_request (const char *path, const char *line, GString *out, GString *err)
{
  g_autoptr (GString) reply = g_string_new (NULL);
  g_autoptr (GString) req = NULL;
  CLEANUP_CLOSE int fd = -1;
  struct sockaddr_un sa;
  int64_t deadline;
  char buf[4096];

  if (strlen (line) > CTL_LINE_MAX) {
    g_string_append_printf (err, "request too long (more than %d bytes)",
                            CTL_LINE_MAX);
    return -1;
  }
  if (strchr (line, '\n')) {
    g_string_append (err, "request contains a newline");
    return -1;
  }
  if (fill_sockaddr (path, &sa) < 0) {
    g_string_append (err, rmr_get_error ());
    return -1;
  }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd == -1) {
    g_string_append_printf (err, "control socket %s: socket: %s", path,
                            g_strerror (errno));
    return -1;
  }
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) == -1) {
    g_string_append_printf (err, "control socket %s: connect: %s", path,
                            g_strerror (errno));
    return -1;
  }
  if (fcntl (fd, F_SETFL, O_NONBLOCK) == -1) {
    g_string_append_printf (err, "control socket %s: fcntl: %s", path,
                            g_strerror (errno));
    return -1;
  }

  deadline = now_ms () + CTL_CLIENT_TIMEOUT_MS;
  req = g_string_new (line);
  g_string_append_c (req, '\n');
  /* A server that refused the request early may have closed already:
   * its reply, if any, is still to be read.
   */
  if (send_all (fd, req->str, req->len, -1, deadline) == -1 && errno != EPIPE &&
      errno != ECONNRESET) {
    g_string_append_printf (err, "control socket %s: send: %s", path,
                            g_strerror (errno));
    return -1;
  }
  shutdown (fd, SHUT_WR);

  for (;;) {
    ssize_t r = read (fd, buf, sizeof buf);

    if (r == 0)
      break;
    if (r > 0) {
      if (reply->len + r > CTL_REPLY_MAX) {
        g_string_append_printf (err, "control socket %s: reply too large",
                                path);
        return -1;
      }
      g_string_append_len (reply, buf, r);
      continue;
    }
    if (errno == EINTR)
      continue;
    /* A server that closes without reading all we sent resets the
     * connection after its reply (which is read first): the end.
     */
    if (errno == ECONNRESET)
      break;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      r = wait_fd (fd, POLLIN, -1, deadline);
      if (r == 1)
        continue;
      if (r == 0)
        errno = ETIMEDOUT;
    }
    g_string_append_printf (err, "control socket %s: receive: %s", path,
                            g_strerror (errno));
    return -1;
  }

  if (g_str_has_prefix (reply->str, "ok\n")) {
    g_string_append_len (out, reply->str + 3, reply->len - 3);
    return 0;
  }
  if (g_str_has_prefix (reply->str, "error: ")) {
    g_string_erase (reply, 0, strlen ("error: "));
    ctl_err_one_line (reply);
    g_string_append_len (err, reply->str, reply->len);
    return -1;
  }
  if (reply->len == 0)
    g_string_append_printf (err,
                            "control socket %s: the server closed the "
                            "connection without a reply",
                            path);
  else
    g_string_append_printf (err, "control socket %s: malformed reply", path);
  return -1;
}
