/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The /metrics endpoint (metrics.h) over libmicrohttpd: a well-kept HTTP
 * server (keep-alive, chunking, limits, slow clients) rather than a parser
 * of our own.  We bind the listening socket ourselves, so a bad address
 * or a port in use is a one-line error at start, and hand it to MHD,
 * whose one internal thread polls it and answers the scrapes one at a
 * time (MHD_USE_INTERNAL_POLLING_THREAD): the render callback never runs
 * twice at once.
 *
 * GET /metrics: 200, "text/plain; version=0.0.4"; another path: 404;
 * another method: 405 with "Allow: GET"; without the credentials an auth
 * file asks for (metrics-access.c), 401 with a Basic challenge, whatever
 * the path.  With a certificate, HTTPS only.
 *
 * A reload (metrics_http_reload: a renewed certificate, a rotated
 * password) starts a second MHD daemon with the new credentials on the
 * same listening socket (non-blocking: whichever daemon loses an accept
 * gets EAGAIN), then makes the first stop accepting (MHD_quiesce_daemon)
 * and stops it: the port never closes, and a second daemon that does not
 * start leaves the first serving.  Each daemon answers with its own
 * credentials (struct served); render is called under render_lock, so
 * it never runs twice at once even while the two overlap.  MHD_USE_AUTO:
 * epoll, not select (which refuses a socket numbered 1024 or more, and a
 * reload's new one may be, on a node with many stores and sessions).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "error.h"
#include "metrics.h"
#include "parse.h"

struct metrics_http;

/* One MHD daemon and the credentials it answers with.  It listens on a
 * duplicate of the socket: MHD closes it when it stops, unless it was
 * quiesced first, which hands it back to us.
 */
struct served {
  struct MHD_Daemon *d;
  struct metrics_creds *creds;
  struct metrics_http *h;
  int fd;
  bool quiesced;
};

struct metrics_http {
  struct served *s; /* NULL after a reload whose server did not start */
  int fd;           /* the listening socket, ours */
  int family;
  char *what, *addr;
  metrics_render_fn render;
  void *opaque;
  GMutex render_lock;
};

#define REALM "rmr metrics"

/* Whether the request carries credentials the auth file allows.  The
 * Authorization header is decoded here, into a buffer wiped after the
 * compare (libmicrohttpd's own copy would keep the password).
 */
static bool
allowed (struct served *s, struct MHD_Connection *conn)
{
  const char *v;
  char *buf, *dec, *colon;
  size_t size;
  gsize len = 0;
  bool ok;

  if (!metrics_creds_auth (s->creds))
    return true;
  v = MHD_lookup_connection_value (conn, MHD_HEADER_KIND,
                                   MHD_HTTP_HEADER_AUTHORIZATION);
  if (!v || g_ascii_strncasecmp (v, "Basic ", 6) != 0)
    return false;
  /* Decoded in place: never longer than the text, so room for a NUL. */
  buf = g_strdup (v + 6);
  size = strlen (buf) + 1;
  dec = (char *) g_base64_decode_inplace (buf, &len);
  dec[len] = '\0';
  colon = memchr (dec, ':', len);
  if (colon)
    *colon = '\0';
  ok = colon && strlen (dec) == (size_t) (colon - dec) &&
       metrics_creds_allow (s->creds, dec, colon + 1);
  explicit_bzero (buf, size);
  g_free (buf);
  return ok;
}

int
metrics_addr_check (const char *what, const char *addr)
{
  struct rmr_addr a;

  if (!addr || strncasecmp (addr, "tcp:", 4) != 0) {
    char shown[64];
    size_t i;

    /* One printable line whatever the value holds, as parse.c does. */
    for (i = 0; addr && addr[i] && i < sizeof shown - 4; i++)
      shown[i] = addr[i] >= 0x20 && addr[i] < 0x7f ? addr[i] : '?';
    if (addr && addr[i])
      memcpy (&shown[i], "...", 3), i += 3;
    shown[i] = '\0';
    return rmr_err (EINVAL, "%s: '%s': expected tcp:ADDR:PORT", what, shown);
  }
  return rmr_addr_parse (what, addr, &a);
}

static enum MHD_Result
reply (struct MHD_Connection *conn, unsigned status, const char *text)
{
  struct MHD_Response *r = MHD_create_response_from_buffer (
    strlen (text), (void *) text, MHD_RESPMEM_PERSISTENT);
  enum MHD_Result ret;

  if (!r)
    return MHD_NO;
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header (r, MHD_HTTP_HEADER_ALLOW, "GET");
  if (status == MHD_HTTP_UNAUTHORIZED) /* with the Basic challenge */
    ret = MHD_queue_basic_auth_fail_response (conn, REALM, r);
  else
    ret = MHD_queue_response (conn, status, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
answer (void *cls, struct MHD_Connection *conn, const char *url,
        const char *method, const char *version, const char *upload_data,
        size_t *upload_data_size, void **con_cls)
{
  struct served *s = cls;
  struct metrics_http *h = s->h;
  struct MHD_Response *r;
  enum MHD_Result ret;
  GString *out;
  size_t len;

  if (!allowed (s, conn))
    return reply (conn, MHD_HTTP_UNAUTHORIZED, "unauthorized\n");
  if (strcmp (method, MHD_HTTP_METHOD_GET) != 0)
    return reply (conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
  if (strcmp (url, "/metrics") != 0)
    return reply (conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
  out = g_string_new (NULL);
  g_mutex_lock (&h->render_lock);
  h->render (h->opaque, out);
  g_mutex_unlock (&h->render_lock);
  len = out->len;
  r = MHD_create_response_from_buffer_with_free_callback (
    len, g_string_free (out, FALSE), g_free);
  if (!r)
    return MHD_NO;
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE,
                           "text/plain; version=0.0.4; charset=utf-8");
  ret = MHD_queue_response (conn, MHD_HTTP_OK, r);
  MHD_destroy_response (r);
  return ret;
}

/* A listening socket on addr: the fd, or -errno with a message. */
static int
listen_on (const char *what, const char *addr, int *family)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *res = NULL, *ai;
  struct rmr_addr a;
  char port[8];
  int r, fd = -1, one = 1, err = 0;

  if ((r = metrics_addr_check (what, addr)) < 0)
    return r;
  rmr_addr_parse (what, addr, &a);
  snprintf (port, sizeof port, "%u", a.port);
  r = getaddrinfo (a.host, port, &hints, &res);
  if (r != 0)
    return rmr_err (EINVAL, "%s: '%s': %s", what, addr, gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next) {
    fd =
      socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind (fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen (fd, 16) == 0) {
      *family = ai->ai_family;
      break;
    }
    err = errno;
    close (fd);
    fd = -1;
  }
  freeaddrinfo (res);
  if (fd < 0)
    return rmr_err (err ? err : EADDRNOTAVAIL, "%s: '%s': listen: %s", what,
                    addr, strerror (err ? err : EADDRNOTAVAIL));
  return fd;
}

/* Anyone who reaches a port beyond loopback reads the metrics. */
static void
warn_open (const char *what, const char *addr, const struct metrics_creds *c)
{
  struct rmr_addr a;

  if (metrics_creds_auth (c) || rmr_addr_parse (what, addr, &a) < 0 ||
      g_str_has_prefix (a.host, "127.") || strcmp (a.host, "::1") == 0 ||
      strcmp (a.host, "localhost") == 0)
    return;
  g_warning ("%s: '%s' without authentication: anyone who reaches it reads "
             "the pools' names, states and counters (set an auth file, or "
             "listen where only the monitoring host reaches)",
             what, addr);
}

/* An MHD daemon on h's socket answering with creds (owned, also on
 * failure).  NULL with a message if it does not start.
 */
static struct served *
serve (struct metrics_http *h, struct metrics_creds *creds)
{
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC;
  struct served *s = g_new0 (struct served, 1);

  if (h->family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (metrics_creds_cert (creds))
    flags |= MHD_USE_TLS;
  s->creds = creds;
  s->h = h;
  s->fd = fcntl (h->fd, F_DUPFD_CLOEXEC, 0);
  if (s->fd < 0) {
    rmr_err (errno, "%s: '%s': %s", h->what, h->addr, strerror (errno));
    metrics_creds_free (creds);
    g_free (s);
    return NULL;
  }
  /* The port argument is ignored with MHD_OPTION_LISTEN_SOCKET; the TLS
   * options only count with MHD_USE_TLS.
   */
  struct MHD_OptionItem tls[] = {
    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) metrics_creds_cert (creds)},
    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) metrics_creds_key (creds)},
    {MHD_OPTION_END, 0, NULL}};
  s->d = MHD_start_daemon (
    flags, 0, NULL, NULL, answer, s, MHD_OPTION_LISTEN_SOCKET,
    (MHD_socket) s->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 16,
    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_ARRAY,
    (flags & MHD_USE_TLS) ? tls : &tls[2], MHD_OPTION_END);
  if (!s->d) {
    close (s->fd);
    metrics_creds_free (creds);
    g_free (s);
    rmr_err (EIO, "%s: '%s': the HTTP server did not start", h->what, h->addr);
    return NULL;
  }
  return s;
}

/* Stop accepting on s's socket. */
static void
quiesce (struct served *s)
{
  if (s)
    s->quiesced = MHD_quiesce_daemon (s->d) != MHD_INVALID_SOCKET;
}

/* Stop s and free it with its creds and its socket. */
static void
unserve (struct served *s)
{
  if (!s)
    return;
  MHD_stop_daemon (s->d);
  if (s->quiesced)
    close (s->fd);
  metrics_creds_free (s->creds);
  g_free (s);
}

struct metrics_http *
metrics_http_start (const char *what, const char *addr,
                    struct metrics_creds *creds, metrics_render_fn render,
                    void *opaque)
{
  struct metrics_http *h;
  int fd, family = AF_INET;

  if (!creds && metrics_creds_load (what, NULL, &creds) < 0) {
    errno = ENOMEM;
    return NULL;
  }
  fd = listen_on (what, addr, &family);
  if (fd < 0) {
    metrics_creds_free (creds);
    errno = -fd;
    return NULL;
  }
  h = g_new0 (struct metrics_http, 1);
  h->fd = fd;
  h->family = family;
  h->what = g_strdup (what);
  h->addr = g_strdup (addr);
  h->render = render;
  h->opaque = opaque;
  g_mutex_init (&h->render_lock);
  h->s = serve (h, creds);
  if (!h->s) {
    metrics_http_stop (h);
    errno = EIO;
    return NULL;
  }
  warn_open (what, addr, h->s->creds);
  return h;
}

int
metrics_http_reload (struct metrics_http *h, struct metrics_creds *creds)
{
  struct served *old = h->s, *s;

  if (old && metrics_creds_equal (old->creds, creds)) {
    metrics_creds_free (creds);
    return 0;
  }
  s = serve (h, creds);
  if (!s)
    return -EIO; /* the old one goes on */
  h->s = s;
  quiesce (old);
  unserve (old);
  warn_open (h->what, h->addr, s->creds);
  return 1;
}

void
metrics_http_stop (struct metrics_http *h)
{
  if (!h)
    return;
  quiesce (h->s);
  unserve (h->s);
  close (h->fd);
  g_mutex_clear (&h->render_lock);
  g_free (h->what);
  g_free (h->addr);
  g_free (h);
}
