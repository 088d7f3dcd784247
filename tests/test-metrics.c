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

static void
test_http (void)
{
  struct metrics_http *h = NULL;
  struct metrics_http *busy;
  char addr[64];
  uint16_t port;
  g_autofree char *ok = NULL, *nf = NULL, *na = NULL;

  /* A free port: try a few. */
  for (port = 39100; port < 39200 && !h; port++) {
    snprintf (addr, sizeof addr, "tcp:127.0.0.1:%u", port);
    h = metrics_http_start ("metrics", addr, render_cb, NULL);
  }
  g_assert_nonnull (h);
  port--;
  busy = metrics_http_start ("metrics", addr, render_cb, NULL);
  g_assert_null (busy);
  g_assert_cmpint (errno, ==, EADDRINUSE);
  g_assert_nonnull (strstr (rmr_get_error (), "metrics"));

  ok = http (port, "GET /metrics HTTP/1.0\r\n\r\n");
  g_assert_true (g_str_has_prefix (ok, "HTTP/1.0 200") ||
                 g_str_has_prefix (ok, "HTTP/1.1 200"));
  g_assert_nonnull (strstr (ok, "text/plain; version=0.0.4"));
  g_assert_true (g_str_has_suffix (ok, "\r\n\r\nx 1\n"));
  nf = http (port, "GET /other HTTP/1.0\r\n\r\n");
  g_assert_nonnull (strstr (nf, " 404 "));
  na = http (port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
  g_assert_nonnull (strstr (na, " 405 "));
  metrics_http_stop (h);
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
  return g_test_run ();
}
