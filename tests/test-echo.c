/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The echo server and client shared by test-tls.c and
 * test-transport-ucx.c (what they answer and record: test-echo.h).
 *
 * A server connection is a struct sconn with its own ECHO_MAX buffer,
 * which takes a WRITE's payload and holds a READ's reply while it is
 * sent; the connection's receive thread is the only one using it, and
 * the down () it runs frees both.  Everything that several connections
 * or the test thread share is in echo_srv, under its lock; each client
 * connection's state is under its echo_client's lock.
 */
#undef NDEBUG
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "test-echo.h"

struct echo_server echo_srv;

void
echo_pattern (uint8_t *p, size_t n, uint64_t seed)
{
  size_t i;

  for (i = 0; i < n; i++)
    p[i] = (uint8_t) (seed * 131 + i * 7 + (i >> 12));
}

struct sconn {
  struct rmr_conn *conn;
  uint8_t *buf;
};

static void *
s_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct sconn *c = opaque;
  return c->buf;
}

static void
s_message (void *opaque, const struct rmr_hdr *hdr, void *payload)
{
  struct sconn *c = opaque;
  struct rmr_hdr rep = *hdr;
  struct iovec iov = {0};
  g_autofree uint8_t *want = NULL;

  g_mutex_lock (&echo_srv.lock);
  if (echo_srv.order)
    g_array_append_val (echo_srv.order, hdr->tag);
  g_mutex_unlock (&echo_srv.lock);
  rep.flags |= RMR_HF_REPLY;
  rep.wseq = rep.horizon = 0;
  rep.payload_len = 0;
  if (hdr->type == RMR_MSG_WRITE) {
    want = g_malloc (hdr->length);
    echo_pattern (want, hdr->length, hdr->tag);
    rep.status = payload && memcmp (want, payload, hdr->length) == 0 ? 0 : EIO;
  }
  else if (hdr->type == RMR_MSG_READ) {
    echo_pattern (c->buf, hdr->length, hdr->tag);
    iov.iov_base = c->buf;
    iov.iov_len = rep.payload_len = hdr->length;
  }
  rmr_conn_send (c->conn, &rep, &iov, iov.iov_len ? 1 : 0);
}

static void
s_down (void *opaque, int errnum, const char *reason)
{
  struct sconn *c = opaque;

  g_test_message ("server side down: %s", reason);
  rmr_conn_close (c->conn); /* own thread: freed on its way out */
  g_free (c->buf);
  g_free (c);
  g_mutex_lock (&echo_srv.lock);
  echo_srv.downs++;
  g_cond_broadcast (&echo_srv.cond);
  g_mutex_unlock (&echo_srv.lock);
}

static const struct rmr_conn_handler s_handler = {
  .payload_buf = s_payload_buf,
  .message = s_message,
  .down = s_down,
};

int
echo_accept (void *opaque, struct rmr_conn *conn,
             const struct rmr_conn_handler **h, void **conn_opaque)
{
  struct sconn *c = g_new0 (struct sconn, 1);

  c->conn = conn;
  c->buf = g_malloc (ECHO_MAX);
  *h = &s_handler;
  *conn_opaque = c;
  g_mutex_lock (&echo_srv.lock);
  echo_srv.accepted++;
  echo_srv.last_accepted = conn;
  g_mutex_unlock (&echo_srv.lock);
  return 0;
}

void
echo_refused (void *opaque, const char *peer, const char *identity,
              const char *reason)
{
  g_mutex_lock (&echo_srv.lock);
  if (echo_srv.refusals)
    g_ptr_array_add (echo_srv.refusals,
                     g_strdup_printf ("%s|%s", identity, reason));
  g_cond_broadcast (&echo_srv.cond);
  g_mutex_unlock (&echo_srv.lock);
}

unsigned
echo_naccepted (void)
{
  unsigned n;

  g_mutex_lock (&echo_srv.lock);
  n = echo_srv.accepted;
  g_mutex_unlock (&echo_srv.lock);
  return n;
}

unsigned
echo_nrefusals (void)
{
  unsigned n;

  g_mutex_lock (&echo_srv.lock);
  n = echo_srv.refusals ? echo_srv.refusals->len : 0;
  g_mutex_unlock (&echo_srv.lock);
  return n;
}

const char *
echo_refusal (unsigned n)
{
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  const char *r;

  g_mutex_lock (&echo_srv.lock);
  g_assert_nonnull (echo_srv.refusals);
  while (echo_srv.refusals->len < n)
    g_assert_true (g_cond_wait_until (&echo_srv.cond, &echo_srv.lock, end));
  r = echo_srv.refusals->pdata[n - 1];
  g_mutex_unlock (&echo_srv.lock);
  return r;
}

static void *
c_payload_buf (void *opaque, const struct rmr_hdr *hdr)
{
  struct echo_client *c = opaque;
  return c->buf;
}

static void
c_message (void *opaque, const struct rmr_hdr *hdr, void *payload)
{
  struct echo_client *c = opaque;
  g_autofree uint8_t *want = NULL;
  bool bad = hdr->status != 0;

  g_mutex_lock (&c->lock);
  if (c->order) {
    if (c->in_message)
      c->nconcurrent++;
    c->in_message = true;
  }
  g_mutex_unlock (&c->lock);
  if (c->order && !bad && hdr->type == RMR_MSG_READ) {
    /* Outside the lock: a second call meanwhile is what nconcurrent
     * catches.
     */
    want = g_malloc (hdr->length);
    echo_pattern (want, hdr->length, hdr->tag);
    bad = !payload || hdr->payload_len != hdr->length ||
          memcmp (want, payload, hdr->length) != 0;
  }
  g_mutex_lock (&c->lock);
  c->rep = *hdr;
  c->got = true;
  c->nrep++;
  if (bad)
    c->nbad++;
  if (c->order) {
    g_array_append_val (c->order, hdr->tag);
    c->in_message = false;
  }
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static void
c_down (void *opaque, int errnum, const char *reason)
{
  struct echo_client *c = opaque;

  g_mutex_lock (&c->lock);
  c->down = true;
  c->down_err = errnum;
  snprintf (c->down_reason, sizeof c->down_reason, "%s", reason);
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

const struct rmr_conn_handler echo_client_handler = {
  .payload_buf = c_payload_buf,
  .message = c_message,
  .down = c_down,
};

void
echo_client_init (struct echo_client *cc)
{
  memset (cc, 0, sizeof *cc);
  g_mutex_init (&cc->lock);
  g_cond_init (&cc->cond);
  cc->buf = g_malloc (ECHO_MAX);
}

void
echo_client_fini (struct echo_client *cc)
{
  g_free (cc->buf);
  g_clear_pointer (&cc->order, g_array_unref);
  g_mutex_clear (&cc->lock);
  g_cond_clear (&cc->cond);
}

int
echo_connect (const struct rmr_addr *addr, struct echo_client *cc,
              const struct rmr_conn_opts *opts, struct rmr_conn **out)
{
  struct rmr_conn_opts o = {.connect_timeout_ms = 5000};

  if (opts)
    o = *opts;
  return rmr_conn_connect (addr, &o, &echo_client_handler, cc, out);
}

void
echo_wait_replies (struct echo_client *cc, unsigned n)
{
  gint64 end = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  g_mutex_lock (&cc->lock);
  while (cc->nrep < n && !cc->down)
    g_assert_true (g_cond_wait_until (&cc->cond, &cc->lock, end));
  if (cc->down)
    g_error ("connection down: %s", cc->down_reason);
  g_mutex_unlock (&cc->lock);
}

double
echo_wait_down (struct echo_client *cc, double limit)
{
  gint64 start = g_get_monotonic_time ();
  gint64 end = start + (gint64) (limit * G_TIME_SPAN_SECOND);

  g_mutex_lock (&cc->lock);
  while (!cc->down)
    if (!g_cond_wait_until (&cc->cond, &cc->lock, end))
      break;
  g_assert_true (cc->down);
  g_mutex_unlock (&cc->lock);
  return (g_get_monotonic_time () - start) / 1e6;
}

char *
echo_write_file (const char *dir, const char *name, const char *text)
{
  char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

void
echo_set_tls (enum rmr_tls_mode mode, const char *file, const char *user)
{
  g_assert_cmpint (rmr_tls_setup (mode, file, user), ==, 0);
}
