/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of a listener's handshake slots (common/transport-hs.c), the
 * bookkeeping both the tcp and the ucx listener use, with fake
 * connections and handshake threads that wait on a gate: the
 * max_handshakes bound and its refusal text, what the end of a handshake
 * does (accept and start, refused, destroyed), and close (every handshake
 * still running shut down, none reaching accept, close returning only
 * once every handshake thread has ended).  The real handshakes run in
 * test-tls, test-transport-ucx and the server-limits test.
 */
#undef NDEBUG

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "error.h"
#include "transport-impl.h"

#define MAX_HS 3

struct fake_conn {
  struct rmr_conn base; /* must be first */
  int r;                /* the handshake's result once the gate opens */
  bool shut, destroyed, started;
};

static struct rmr_hs_slots slots;
static struct fake_conn conns[MAX_HS + 1];

/* The gate and the counters; mu protects them all. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static int accept_result;
static unsigned n_accepted, n_refused, n_down;
static char last_refusal[200];

static void
fake_lock (void)
{
  if (pthread_mutex_lock (&mu) != 0)
    abort ();
}

static void
fake_unlock (void)
{
  if (pthread_mutex_unlock (&mu) != 0)
    abort ();
}

static int
fake_start (struct rmr_conn *base, const struct rmr_conn_handler *h,
            void *opaque)
{
  struct fake_conn *c = (struct fake_conn *) base;

  fake_lock ();
  c->started = true;
  fake_unlock ();
  return 0;
}

static const struct rmr_transport_ops fake_ops = {
  .name = "fake",
  .start = fake_start,
};

static void
fake_down (void *opaque, int errnum, const char *reason)
{
  fake_lock ();
  n_down++;
  fake_unlock ();
}

static const struct rmr_conn_handler fake_handler = {.down = fake_down};

static int
fake_accept (void *opaque, struct rmr_conn *conn,
             const struct rmr_conn_handler **handler, void **conn_opaque)
{
  g_assert_true (opaque == &slots);
  fake_lock ();
  n_accepted++;
  fake_unlock ();
  *handler = &fake_handler;
  *conn_opaque = NULL;
  return accept_result;
}

static void
fake_refused (void *opaque, const char *peer, const char *identity,
              const char *reason)
{
  g_assert_true (opaque == &slots);
  g_assert_cmpstr (identity, ==, "who");
  fake_lock ();
  n_refused++;
  snprintf (last_refusal, sizeof last_refusal, "%s: %s", peer, reason);
  fake_unlock ();
}

static void
fake_destroy (struct rmr_conn *base)
{
  struct fake_conn *c = (struct fake_conn *) base;

  fake_lock ();
  g_assert_false (c->destroyed);
  c->destroyed = true;
  fake_unlock ();
}

static void
fake_shutdown (struct rmr_conn *base)
{
  struct fake_conn *c = (struct fake_conn *) base;

  fake_lock ();
  c->shut = true;
  pthread_cond_broadcast (&cv);
  fake_unlock ();
}

/* A handshake: wait for the gate (or a shutdown), then end it. */
static void *
fake_hs_thread (void *arg)
{
  struct fake_conn *c = arg;
  int r;

  fake_lock ();
  while (!gate_open && !c->shut)
    pthread_cond_wait (&cv, &mu);
  r = c->shut ? -ECONNRESET : c->r;
  fake_unlock ();
  rmr_err_clear ();
  rmr_hs_done (&slots, &c->base, r, "who");
  return NULL;
}

static void
setup (unsigned max)
{
  struct rmr_listen_opts opts = {.max_handshakes = max,
                                 .refused = fake_refused};
  unsigned i;

  memset (conns, 0, sizeof conns);
  for (i = 0; i <= MAX_HS; i++) {
    conns[i].base.ops = &fake_ops;
    snprintf (conns[i].base.peer_name, sizeof conns[i].base.peer_name,
              "fake:%u", i);
  }
  gate_open = false;
  accept_result = 0;
  n_accepted = n_refused = n_down = 0;
  last_refusal[0] = '\0';
  g_assert_cmpint (rmr_hs_init (&slots, &opts, fake_accept, &slots,
                                fake_destroy, fake_shutdown),
                   ==, 0);
}

static void
start (unsigned i)
{
  char reason[120];

  g_assert_false (rmr_hs_busy (&slots, reason, sizeof reason));
  g_assert_cmpint (rmr_hs_start (&slots, &conns[i].base, fake_hs_thread, reason,
                                 sizeof reason),
                   ==, 0);
}

static void
open_gate (void)
{
  fake_lock ();
  gate_open = true;
  pthread_cond_broadcast (&cv);
  fake_unlock ();
}

/* Until every handshake thread has ended (without closing). */
static void
wait_idle (void)
{
  if (pthread_mutex_lock (&slots.lock) != 0)
    abort ();
  while (slots.nthreads > 0)
    pthread_cond_wait (&slots.cond, &slots.lock);
  g_assert_cmpuint (slots.nconns, ==, 0);
  if (pthread_mutex_unlock (&slots.lock) != 0)
    abort ();
}

static void
test_defaults (void)
{
  g_assert_cmpint (rmr_hs_init (&slots, NULL, fake_accept, &slots, fake_destroy,
                                fake_shutdown),
                   ==, 0);
  g_assert_cmpuint (slots.opts.max_handshakes, ==, RMR_DEFAULT_MAX_HANDSHAKES);
  g_assert_cmpuint (slots.opts.handshake_timeout_ms, ==,
                    RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS);
  rmr_hs_close (&slots);
  rmr_hs_fini (&slots);
}

/* max_handshakes at once, then busy with the text the refusals log; a
 * slot comes free once its thread has ended.
 */
static void
test_busy (void)
{
  char reason[120];
  unsigned i;

  setup (MAX_HS);
  for (i = 0; i < MAX_HS; i++)
    start (i);
  g_assert_true (rmr_hs_busy (&slots, reason, sizeof reason));
  g_assert_cmpstr (reason, ==,
                   "3 handshakes in progress already (max_handshakes)");
  open_gate ();
  wait_idle ();
  g_assert_false (rmr_hs_busy (&slots, reason, sizeof reason));
  g_assert_cmpuint (n_accepted, ==, MAX_HS);
  for (i = 0; i < MAX_HS; i++) {
    g_assert_true (conns[i].started);
    g_assert_false (conns[i].destroyed);
  }
  rmr_hs_close (&slots);
  rmr_hs_fini (&slots);
}

/* The end of a handshake: failed (refused, destroyed), accepted and
 * started (the owner's), refused by the owner (destroyed).
 */
static void
test_done (void)
{
  setup (MAX_HS);
  conns[0].r = -EACCES;
  start (0);
  open_gate ();
  wait_idle ();
  g_assert_cmpuint (n_refused, ==, 1);
  g_assert_cmpstr (last_refusal, ==, "fake:0: Permission denied");
  g_assert_cmpuint (n_accepted, ==, 0);
  g_assert_true (conns[0].destroyed);

  start (1);
  wait_idle ();
  g_assert_cmpuint (n_accepted, ==, 1);
  g_assert_true (conns[1].started);
  g_assert_false (conns[1].destroyed);

  accept_result = -1;
  start (2);
  wait_idle ();
  g_assert_cmpuint (n_accepted, ==, 2);
  g_assert_false (conns[2].started);
  g_assert_true (conns[2].destroyed);
  g_assert_cmpuint (n_refused, ==, 1);
  g_assert_cmpuint (n_down, ==, 0);
  rmr_hs_close (&slots);
  rmr_hs_fini (&slots);
}

/* Close shuts down every handshake still running and waits for their
 * threads; none reaches accept or refused, each is destroyed, and no
 * new one is let in.
 */
static void
test_close (void)
{
  char reason[120];
  unsigned i;

  setup (MAX_HS);
  for (i = 0; i < MAX_HS; i++)
    start (i);
  rmr_hs_close (&slots);
  g_assert_cmpuint (slots.nthreads, ==, 0);
  for (i = 0; i < MAX_HS; i++) {
    g_assert_true (conns[i].shut);
    g_assert_true (conns[i].destroyed);
  }
  g_assert_cmpuint (n_accepted, ==, 0);
  g_assert_cmpuint (n_refused, ==, 0);
  g_assert_true (rmr_hs_busy (&slots, reason, sizeof reason));
  rmr_hs_fini (&slots);
}

/* closing alone (ucx sets it before its UCP listener goes): busy, and a
 * handshake that ends then does not reach accept.
 */
static void
test_closing (void)
{
  char reason[120];

  setup (MAX_HS);
  start (0);
  rmr_hs_closing (&slots);
  g_assert_true (rmr_hs_busy (&slots, reason, sizeof reason));
  open_gate ();
  wait_idle ();
  g_assert_cmpuint (n_accepted, ==, 0);
  g_assert_cmpuint (n_refused, ==, 0);
  g_assert_true (conns[0].destroyed);
  g_assert_false (conns[0].shut);
  rmr_hs_close (&slots);
  rmr_hs_fini (&slots);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/transport-hs/defaults", test_defaults);
  g_test_add_func ("/transport-hs/busy", test_busy);
  g_test_add_func ("/transport-hs/done", test_done);
  g_test_add_func ("/transport-hs/close", test_close);
  g_test_add_func ("/transport-hs/closing", test_closing);
  return g_test_run ();
}
