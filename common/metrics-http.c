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
 */
#include <errno.h>
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

struct metrics_http {
  struct MHD_Daemon *d;
  struct metrics_creds *creds;
  metrics_render_fn render;
  void *opaque;
};

#define REALM "rmr metrics"

/* Whether the request carries credentials the auth file allows.  The
 * Authorization header is decoded here, into a buffer wiped after the
 * compare (libmicrohttpd's own copy would keep the password).
 */
static bool
allowed (struct metrics_http *h, struct MHD_Connection *conn)
{
  const char *v;
  char *buf, *dec, *colon;
  size_t size;
  gsize len = 0;
  bool ok;

  if (!metrics_creds_auth (h->creds))
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
       metrics_creds_allow (h->creds, dec, colon + 1);
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
  struct metrics_http *h = cls;
  struct MHD_Response *r;
  enum MHD_Result ret;
  GString *out;
  size_t len;

  if (!allowed (h, conn))
    return reply (conn, MHD_HTTP_UNAUTHORIZED, "unauthorized\n");
  if (strcmp (method, MHD_HTTP_METHOD_GET) != 0)
    return reply (conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
  if (strcmp (url, "/metrics") != 0)
    return reply (conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
  out = g_string_new (NULL);
  h->render (h->opaque, out);
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
    fd = socket (ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
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

struct metrics_http *
metrics_http_start (const char *what, const char *addr,
                    struct metrics_creds *creds, metrics_render_fn render,
                    void *opaque)
{
  struct metrics_http *h;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD;
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
  if (family == AF_INET6)
    flags |= MHD_USE_IPv6;
  if (metrics_creds_cert (creds))
    flags |= MHD_USE_TLS;
  h = g_new0 (struct metrics_http, 1);
  h->creds = creds;
  h->render = render;
  h->opaque = opaque;
  /* The port argument is ignored with MHD_OPTION_LISTEN_SOCKET; the TLS
   * options only count with MHD_USE_TLS.
   */
  struct MHD_OptionItem tls[] = {
    {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *) metrics_creds_cert (creds)},
    {MHD_OPTION_HTTPS_MEM_KEY, 0, (void *) metrics_creds_key (creds)},
    {MHD_OPTION_END, 0, NULL}};
  h->d = MHD_start_daemon (
    flags, 0, NULL, NULL, answer, h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
    MHD_OPTION_CONNECTION_LIMIT, (unsigned) 16, MHD_OPTION_CONNECTION_TIMEOUT,
    (unsigned) 10, MHD_OPTION_ARRAY, (flags & MHD_USE_TLS) ? tls : &tls[2],
    MHD_OPTION_END);
  if (!h->d) {
    close (fd);
    metrics_creds_free (creds);
    g_free (h);
    rmr_err (EIO, "%s: '%s': the HTTP server did not start", what, addr);
    return NULL;
  }
  warn_open (what, addr, creds);
  return h;
}

void
metrics_http_stop (struct metrics_http *h)
{
  if (!h)
    return;
  MHD_stop_daemon (h->d); /* closes the listening socket */
  metrics_creds_free (h->creds);
  g_free (h);
}
