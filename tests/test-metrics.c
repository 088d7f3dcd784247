/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/metrics.c and the endpoint of metrics-http.c: the
 * text format (HELP/TYPE once per family, samples grouped by family,
 * label values escaped), histograms (buckets by "le", cumulative, +Inf
 * equal to _count, _sum in seconds), addresses, and one scrape over a
 * real socket (GET /metrics, 404, 405).
 */
#undef NDEBUG

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "metrics.h"
#include "test-assert.h"

static char *
render (void (*fill) (struct prom *p))
{
  GString *out = g_string_new (NULL);
  struct prom *p = prom_new ();

  fill (p);
  prom_finish (p, out);
  return g_string_free (out, FALSE);
}

static void
fill_families (struct prom *p)
{
  prom_counter (p, "a_total", "A.", (const char *[]){"pool", "x", NULL}, 1);
  prom_gauge (p, "b", "B \\ with\nnewline", NULL, 2.5);
  prom_counter (p, "a_total", "A.", (const char *[]){"pool", "y", NULL}, 3);
  prom_gauge (p, "c", "C.", (const char *[]){"pool", "a\"b\\c\nd", NULL}, 7);
}

static void
test_families (void)
{
  g_autofree char *t = render (fill_families);

  g_assert_cmpstr (t, ==,
                   "# HELP a_total A.\n"
                   "# TYPE a_total counter\n"
                   "a_total{pool=\"x\"} 1\n"
                   "a_total{pool=\"y\"} 3\n"
                   "# HELP b B \\\\ with\\nnewline\n"
                   "# TYPE b gauge\n"
                   "b 2.5\n"
                   "# HELP c C.\n"
                   "# TYPE c gauge\n"
                   "c{pool=\"a\\\"b\\\\c\\nd\"} 7\n");
}

static void
test_hist_observe (void)
{
  struct metrics_hist h;
  struct metrics_hist_snap s;

  memset (&h, 0, sizeof h);
  memset (&s, 0, sizeof s);
  metrics_hist_observe (&h, 0);        /* le 50µs */
  metrics_hist_observe (&h, 50);       /* le 50µs: bounds are inclusive */
  metrics_hist_observe (&h, 51);       /* le 100µs */
  metrics_hist_observe (&h, 10000000); /* le 10s */
  metrics_hist_observe (&h, 10000001); /* +Inf */
  metrics_hist_read (&h, &s);
  g_assert_cmpuint (s.bucket[0], ==, 2);
  g_assert_cmpuint (s.bucket[1], ==, 1);
  g_assert_cmpuint (s.bucket[METRICS_NBUCKETS - 2], ==, 1);
  g_assert_cmpuint (s.bucket[METRICS_NBUCKETS - 1], ==, 1);
  g_assert_cmpuint (s.sum_us, ==, 20000102);
}

static void
fill_hist (struct prom *p)
{
  struct metrics_hist h;
  struct metrics_hist_snap s;

  memset (&h, 0, sizeof h);
  memset (&s, 0, sizeof s);
  metrics_hist_observe (&h, 40);
  metrics_hist_observe (&h, 300);
  metrics_hist_observe (&h, 300);
  metrics_hist_observe (&h, 20000000);
  metrics_hist_read (&h, &s);
  prom_histogram (p, "lat_seconds", "L.", (const char *[]){"op", "r", NULL},
                  &s);
}

static void
test_histogram (void)
{
  g_autofree char *t = render (fill_hist);
  g_auto (GStrv) parts = g_strsplit (t, "_bucket", -1);

  g_assert_nonnull (strstr (t, "# TYPE lat_seconds histogram\n"));
  g_assert_nonnull (
    strstr (t, "lat_seconds_bucket{op=\"r\",le=\"5e-05\"} 1\n"));
  g_assert_nonnull (
    strstr (t, "lat_seconds_bucket{op=\"r\",le=\"0.00025\"} 1\n"));
  g_assert_nonnull (
    strstr (t, "lat_seconds_bucket{op=\"r\",le=\"0.0005\"} 3\n"));
  g_assert_nonnull (strstr (t, "lat_seconds_bucket{op=\"r\",le=\"10\"} 3\n"));
  g_assert_nonnull (strstr (t, "lat_seconds_bucket{op=\"r\",le=\"+Inf\"} 4\n"));
  g_assert_nonnull (strstr (t, "lat_seconds_sum{op=\"r\"} 20.000640\n"));
  g_assert_nonnull (strstr (t, "lat_seconds_count{op=\"r\"} 4\n"));
  /* One HELP, every bucket once. */
  g_assert_null (strstr (strstr (t, "# HELP") + 1, "# HELP"));
  g_assert_cmpuint (g_strv_length (parts) - 1, ==, METRICS_NBUCKETS);
}

static void
test_addr (void)
{
  g_assert_cmpint (metrics_addr_check ("metrics", "tcp:127.0.0.1:9100"), ==, 0);
  g_assert_cmpint (metrics_addr_check ("metrics", "tcp:[::1]:9100"), ==, 0);
  assert_error (metrics_addr_check ("metrics", "127.0.0.1:9100"), EINVAL,
                "metrics");
  assert_error (metrics_addr_check ("metrics", "ucx:127.0.0.1:9100"), EINVAL,
                "metrics");
  assert_error (metrics_addr_check ("metrics", "tcp:127.0.0.1:0"), ERANGE,
                "metrics");
  assert_error (metrics_addr_check ("metrics", "tcp:127.0.0.1"), EINVAL,
                "metrics");
}

static void
render_cb (void *opaque, GString *out)
{
  g_string_append (out, "x 1\n");
}

/* One HTTP/1.0 request to port; the whole answer. */
static char *
http (uint16_t port, const char *req)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons (port)};
  GString *out = g_string_new (NULL);
  char buf[4096];
  ssize_t n;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  a.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &a, sizeof a), ==, 0);
  g_assert_cmpint (write (fd, req, strlen (req)), ==, (ssize_t) strlen (req));
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (out, buf, n);
  close (fd);
  return g_string_free (out, FALSE);
}

/* The answer to req on port holds want. */
static void
assert_answer (uint16_t port, const char *req, const char *want)
{
  g_autofree char *a = http (port, req);

  if (!strstr (a, want))
    g_error ("%s -> %s (wanted '%s')", req, a, want);
}

/* A server on a free port from first on (a few tried), with creds read
 * from a (NULL: open); its address in addr, the port in *port.
 */
static struct metrics_http *
start_free (const struct metrics_access *a, uint16_t first, char *addr,
            size_t n, uint16_t *port)
{
  struct metrics_http *h = NULL;
  struct metrics_creds *c = NULL;

  for (*port = first; *port < first + 100 && !h; (*port)++) {
    snprintf (addr, n, "tcp:127.0.0.1:%u", *port);
    if (a)
      g_assert_cmpint (metrics_creds_load ("metrics", a, &c), ==, 0);
    h = metrics_http_start ("metrics", addr, c, render_cb, NULL);
  }
  g_assert_nonnull (h);
  (*port)--;
  return h;
}

static void
test_http (void)
{
  struct metrics_http *h, *busy;
  char addr[64];
  uint16_t port;
  g_autofree char *ok = NULL;

  h = start_free (NULL, 39100, addr, sizeof addr, &port);
  busy = metrics_http_start ("metrics", addr, NULL, render_cb, NULL);
  g_assert_null (busy);
  g_assert_cmpint (errno, ==, EADDRINUSE);
  g_assert_nonnull (strstr (rmr_get_error (), "metrics"));

  ok = http (port, "GET /metrics HTTP/1.0\r\n\r\n");
  g_assert_true (g_str_has_prefix (ok, "HTTP/1.0 200") ||
                 g_str_has_prefix (ok, "HTTP/1.1 200"));
  g_assert_nonnull (strstr (ok, "text/plain; version=0.0.4"));
  g_assert_true (g_str_has_suffix (ok, "\r\n\r\nx 1\n"));
  assert_answer (port, "GET /other HTTP/1.0\r\n\r\n", " 404 ");
  assert_answer (port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
                 " 405 ");
  metrics_http_stop (h);
}

/* A file in dir with text; its path (freed by the caller). */
static char *
write_file (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

/* The access settings: the auth file's lines, the pair of TLS files,
 * and the errors naming the setting as the caller spells it.
 */
static void
test_access (void)
{
  g_autofree char *dir = g_dir_make_tmp ("rmr-metrics-XXXXXX", NULL);
  g_autofree char *good = write_file (
    dir, "good", "# scrapers\nprom:s3cret\n\n  ops:a:b\r\nsp: x \n  \n");
  g_autofree char *bad = write_file (dir, "bad", "prom:s3cret\nnocolon\n");
  g_autofree char *empty = write_file (dir, "empty", "# nobody\n");
  g_autofree char *nopw = write_file (dir, "nopw", "prom:\n");
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  struct metrics_access a = {.auth = good, .sep = '_'};
  struct metrics_creds *c;

  g_assert_cmpint (metrics_creds_load ("cfg", &a, &c), ==, 0);
  g_assert_true (metrics_creds_auth (c));
  g_assert_null (metrics_creds_cert (c));
  g_assert_true (metrics_creds_allow (c, "prom", "s3cret"));
  g_assert_true (metrics_creds_allow (c, "ops", "a:b")); /* the first ':' */
  g_assert_true (metrics_creds_allow (c, "sp", " x "));  /* as written */
  g_assert_false (metrics_creds_allow (c, "sp", "x"));
  g_assert_false (metrics_creds_allow (c, "ops", "s3cret")); /* prom's */
  g_assert_false (metrics_creds_allow (c, "prom", "s3cre"));
  g_assert_false (metrics_creds_allow (c, "prom", "s3cret!"));
  g_assert_false (metrics_creds_allow (c, "prom", "a:b"));
  g_assert_false (metrics_creds_allow (c, "nobody", "s3cret"));
  g_assert_false (metrics_creds_allow (c, NULL, NULL));
  g_assert_false (metrics_creds_allow (c, "prom", ""));
  metrics_creds_free (c);

  a.auth = bad;
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "metrics_auth: '");
  g_assert_nonnull (
    strstr (rmr_get_error (), "line 2: expected USER:PASSWORD"));
  a.auth = empty;
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "no USER:PASSWORD");
  a.auth = nopw;
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "line 1");
  a.auth = dir;
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "not a regular file");
  a.auth = missing;
  a.sep = '-';
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "cfg: metrics-auth");
  a = (struct metrics_access){.tls_cert = good, .sep = '_'};
  assert_error (metrics_access_check ("cfg", &a), EINVAL,
                "metrics_tls_key: needed with metrics_tls_cert");
  a = (struct metrics_access){.tls_key = good, .sep = '_'};
  assert_error (metrics_access_check ("cfg", &a), EINVAL,
                "metrics_tls_cert: needed with metrics_tls_key");
  a = (struct metrics_access){.tls_cert = good, .tls_key = good, .sep = '_'};
  assert_error (metrics_access_check ("cfg", &a), EINVAL, "metrics_tls_cert '");
  /* Nothing set: anyone may scrape. */
  g_assert_cmpint (metrics_creds_load ("cfg", NULL, &c), ==, 0);
  g_assert_true (metrics_creds_allow (c, NULL, NULL));
  metrics_creds_free (c);
  g_assert_cmpint (metrics_access_check ("cfg", NULL), ==, 0);
  for (const char *const *f =
         (const char *const[]){good, bad, empty, nopw, NULL};
       *f; f++)
    g_unlink (*f);
  g_rmdir (dir);
}

/* With an auth file: 401 and a Basic challenge without the right
 * credentials (whatever the path), the metrics with them.
 */
static void
test_http_auth (void)
{
  g_autofree char *dir = g_dir_make_tmp ("rmr-metrics-XXXXXX", NULL);
  g_autofree char *auth = write_file (dir, "auth", "prom:s3cret\n");
  g_autofree char *good = g_base64_encode ((const guchar *) "prom:s3cret", 11);
  g_autofree char *wrong = g_base64_encode ((const guchar *) "prom:s3crex", 11);
  g_autofree char *req_good = NULL, *req_wrong = NULL;
  g_autofree char *none = NULL, *bad = NULL, *ok = NULL;
  struct metrics_access a = {.auth = auth, .sep = '_'};
  struct metrics_http *h;
  char addr[64];
  uint16_t port;

  h = start_free (&a, 39200, addr, sizeof addr, &port);
  req_good = g_strdup_printf (
    "GET /metrics HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", good);
  req_wrong = g_strdup_printf (
    "GET /metrics HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", wrong);
  none = http (port, "GET /metrics HTTP/1.0\r\n\r\n");
  g_assert_nonnull (strstr (none, " 401 "));
  g_assert_nonnull (strstr (none, "WWW-Authenticate: Basic realm="));
  g_assert_null (strstr (none, "x 1"));
  bad = http (port, req_wrong);
  g_assert_nonnull (strstr (bad, " 401 "));
  g_assert_null (strstr (bad, "x 1"));
  assert_answer (port, "GET /other HTTP/1.0\r\n\r\n", " 401 ");
  assert_answer (port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
                 " 401 ");
  assert_answer (port,
                 "GET /metrics HTTP/1.0\r\nAuthorization: Bearer "
                 "cHJvbTpzM2NyZXQ=\r\n\r\n",
                 " 401 ");
  /* "proms3cret": no colon */
  assert_answer (port,
                 "GET /metrics HTTP/1.0\r\nAuthorization: Basic "
                 "cHJvbXMzY3JldA==\r\n\r\n",
                 " 401 ");
  ok = http (port, req_good);
  g_assert_nonnull (strstr (ok, " 200 "));
  g_assert_true (g_str_has_suffix (ok, "\r\n\r\nx 1\n"));
  metrics_http_stop (h);
  g_unlink (auth);
  g_rmdir (dir);
}

/* Basic credentials as a request header line's value. */
static char *
basic_req (const char *userpass)
{
  g_autofree char *b64 =
    g_base64_encode ((const guchar *) userpass, strlen (userpass));

  return g_strdup_printf (
    "GET /metrics HTTP/1.0\r\nAuthorization: Basic %s\r\n\r\n", b64);
}

/* A reload: the same files change nothing; a rotated password serves at
 * once on the same port, the old one no more; a server without auth
 * gets it.
 */
static void
test_http_reload (void)
{
  g_autofree char *dir = g_dir_make_tmp ("rmr-metrics-XXXXXX", NULL);
  g_autofree char *auth = write_file (dir, "auth", "prom:one\n");
  g_autofree char *one = basic_req ("prom:one");
  g_autofree char *two = basic_req ("prom:two");
  struct metrics_access a = {.auth = auth, .sep = '_'};
  struct metrics_creds *c;
  struct metrics_http *h;
  char addr[64];
  uint16_t port;

  h = start_free (&a, 39300, addr, sizeof addr, &port);
  assert_answer (port, one, " 200 ");
  g_assert_cmpint (metrics_creds_load ("metrics", &a, &c), ==, 0);
  g_assert_cmpint (metrics_http_reload (h, c), ==, 0); /* unchanged */
  assert_answer (port, one, " 200 ");
  g_assert_true (g_file_set_contents (auth, "prom:two\n", -1, NULL));
  g_assert_cmpint (metrics_creds_load ("metrics", &a, &c), ==, 0);
  g_assert_cmpint (metrics_http_reload (h, c), ==, 1);
  assert_answer (port, two, " 200 ");
  assert_answer (port, one, " 401 ");
  /* To no authentication and back, on the same socket throughout. */
  g_assert_cmpint (metrics_creds_load ("metrics", NULL, &c), ==, 0);
  g_assert_cmpint (metrics_http_reload (h, c), ==, 1);
  assert_answer (port, "GET /metrics HTTP/1.0\r\n\r\n", " 200 ");
  g_assert_cmpint (metrics_creds_load ("metrics", &a, &c), ==, 0);
  g_assert_cmpint (metrics_http_reload (h, c), ==, 1);
  assert_answer (port, "GET /metrics HTTP/1.0\r\n\r\n", " 401 ");
  assert_answer (port, two, " 200 ");
  metrics_http_stop (h);
  g_unlink (auth);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/families", test_families);
  g_test_add_func ("/metrics/hist-observe", test_hist_observe);
  g_test_add_func ("/metrics/histogram", test_histogram);
  g_test_add_func ("/metrics/addr", test_addr);
  g_test_add_func ("/metrics/http", test_http);
  g_test_add_func ("/metrics/access", test_access);
  g_test_add_func ("/metrics/http-auth", test_http_auth);
  g_test_add_func ("/metrics/http-reload", test_http_reload);
  return g_test_run ();
}
