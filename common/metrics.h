/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Metrics (issue 13): counters and latency histograms cheap enough for
 * the IO path, the one renderer of the Prometheus text format (version
 * 0.0.4), and an HTTP endpoint serving /metrics (metrics-http.c).
 *
 * The IO path only touches relaxed atomics: a counter is one
 * atomic_fetch_add, a latency observation three (its bucket, the sum and
 * nothing else: the count is the sum of the buckets).  No lock, no
 * allocation.  Rendering happens on a scrape: the process walks its
 * objects and calls prom_counter () etc. in any order; samples of one
 * family are kept together and printed under one # HELP / # TYPE.
 */
#ifndef RMR_METRICS_H
#define RMR_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

/* Latency buckets, upper bounds in µs (1-2.5-5 steps from 50µs to 10s);
 * one more bucket counts what is above the last (+Inf).
 */
#define METRICS_NBUCKETS 18
extern const uint64_t metrics_bucket_us[METRICS_NBUCKETS - 1];

struct metrics_hist {
  atomic_uint_fast64_t bucket[METRICS_NBUCKETS]; /* not cumulative */
  atomic_uint_fast64_t sum_us;
};

/* Record one observation of us microseconds (relaxed atomics). */
void metrics_hist_observe (struct metrics_hist *h, uint64_t us);

/* Add src's current values to dst (a snapshot, or several series summed).
 * dst is not shared.
 */
struct metrics_hist_snap {
  uint64_t bucket[METRICS_NBUCKETS];
  uint64_t sum_us;
};
void metrics_hist_read (const struct metrics_hist *h,
                        struct metrics_hist_snap *dst);

/* A relaxed increment, for counters read only by scrapes. */
static inline void
metrics_add (atomic_uint_fast64_t *c, uint64_t v)
{
  atomic_fetch_add_explicit (c, v, memory_order_relaxed);
}

/* The text format --------------------------------------------------------- */

/* A scrape being written.  Labels are a NULL-terminated array of name,
 * value pairs: (const char *[]){"pool", "p1", "member", "2", NULL}; the
 * values are escaped (\\, \", \n) here.  help is a constant string.  A
 * family keeps the type and help of its first sample; mixing types in one
 * family is a bug (assert).
 */
struct prom;
struct prom *prom_new (void);
void prom_counter (struct prom *p, const char *name, const char *help,
                   const char *const *labels, uint64_t v);
void prom_gauge (struct prom *p, const char *name, const char *help,
                 const char *const *labels, double v);
/* name without a suffix: name_bucket{le=...} (cumulative, with +Inf),
 * name_sum (seconds) and name_count.
 */
void prom_histogram (struct prom *p, const char *name, const char *help,
                     const char *const *labels,
                     const struct metrics_hist_snap *h);
/* The text of every family in the order of its first sample, appended to
 * out; p is freed.
 */
void prom_finish (struct prom *p, GString *out);

/* The HTTP endpoint (metrics-http.c) -------------------------------------- */

/* Fill out with the process's metrics (the text format).  Called on the
 * server's thread, one scrape at a time.
 */
typedef void (*metrics_render_fn) (void *opaque, GString *out);

/* Check an address "tcp:HOST:PORT" or "tcp:[V6]:PORT" (HOST: an IPv4 or
 * IPv6 address or a name).  0, or -EINVAL with a one-line message naming
 * what (error.h).
 */
int metrics_addr_check (const char *what, const char *addr);

/* Who may scrape (metrics-access.c): HTTPS with tls_cert and tls_key
 * (PEM files), HTTP basic authentication against the USER:PASSWORD lines
 * of the file auth; each NULL: off.  sep spells the settings' names in
 * errors: '_' (metrics_tls_cert, a config key) or '-' (a parameter).
 */
struct metrics_access {
  const char *tls_cert;
  const char *tls_key;
  const char *auth;
  char sep;
};
/* The files of a, read and checked (a NULL: nothing).  0, or -EINVAL
 * with a one-line message naming what and the setting.
 */
int metrics_access_check (const char *what, const struct metrics_access *a);
struct metrics_creds;
int metrics_creds_load (const char *what, const struct metrics_access *a,
                        struct metrics_creds **out);
void metrics_creds_free (struct metrics_creds *c);
const char *metrics_creds_cert (const struct metrics_creds *c); /* or NULL */
const char *metrics_creds_key (const struct metrics_creds *c);
bool metrics_creds_auth (const struct metrics_creds *c);
/* The same certificate, key and users with their passwords (a reload
 * that changes nothing).
 */
bool metrics_creds_equal (const struct metrics_creds *a,
                          const struct metrics_creds *b);
/* May user with password scrape?  Always, without an auth file. */
bool metrics_creds_allow (const struct metrics_creds *c, const char *user,
                          const char *password);

/* Listen on addr (as above) and serve GET /metrics with render's text
 * (404 for another path, 405 for another method, 401 without the
 * credentials creds ask for) from libmicrohttpd's own thread, over HTTPS
 * if creds have a certificate.  creds (loaded before: at start, with the
 * paths and rights the process had then; NULL: anyone, plain HTTP) are
 * the server's from now on, also when it fails.  NULL with errno set
 * and a message naming what on failure (a bad address, the port in
 * use).
 */
struct metrics_http;
struct metrics_http *metrics_http_start (const char *what, const char *addr,
                                         struct metrics_creds *creds,
                                         metrics_render_fn render,
                                         void *opaque);
/* Serve with creds from now on (owned, also on failure): a renewed
 * certificate, a rotated password.  The listening socket stays open
 * throughout; a connection the old server had open is closed (a scraper
 * connects again).  1 if creds differ from the ones served (a new HTTP
 * server serves them), 0 if they do not (nothing changed), -errno with a
 * message if the new server did not start: the old one goes on.
 */
int metrics_http_reload (struct metrics_http *h, struct metrics_creds *creds);
/* Stop and free; NULL allowed. */
void metrics_http_stop (struct metrics_http *h);

#endif /* RMR_METRICS_H */
