/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A listener's handshake slots, the same for tcp
 * (transport-tcp-listen.c) and ucx (transport-ucx-listen.c): the bound
 * on handshakes running at once (max_handshakes, DESIGN 9), the
 * connections in them, the handshake threads' count, and closing.  The
 * contract, ownership and locking are in transport-impl.h.
 *
 * Data: conns[] has room for max_handshakes; a connection is in it from
 * rmr_hs_start () until its thread's rmr_hs_done () takes it out.
 * nthreads counts the handshake threads from their start until the very
 * end of rmr_hs_done (), after they last touched the listener: close
 * waits for nthreads == 0, and the listener may be freed then.
 *
 * Invariants (under lock): nconns <= nthreads <= max_handshakes, since
 * only the listener's one thread starts handshakes and it checks the
 * bound first (rmr_hs_busy ()).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "transport-impl.h"

int
rmr_hs_init (struct rmr_hs_slots *s, const struct rmr_listen_opts *opts,
             rmr_accept_fn accept, void *opaque,
             void (*destroy) (struct rmr_conn *c),
             void (*shutdown) (struct rmr_conn *c))
{
  *s = (struct rmr_hs_slots){0};
  if (opts)
    s->opts = *opts;
  if (!s->opts.max_handshakes)
    s->opts.max_handshakes = RMR_DEFAULT_MAX_HANDSHAKES;
  if (!s->opts.handshake_timeout_ms)
    s->opts.handshake_timeout_ms = RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS;
  s->conns = calloc (s->opts.max_handshakes, sizeof *s->conns);
  if (!s->conns)
    return -ENOMEM;
  s->accept = accept;
  s->opaque = opaque;
  s->destroy = destroy;
  s->shutdown = shutdown;
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->cond, NULL);
  return 0;
}

void
rmr_hs_fini (struct rmr_hs_slots *s)
{
  assert (s->nthreads == 0);
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->cond);
  free (s->conns);
  s->conns = NULL;
}

/* Take c out of conns[]; under lock. */
static void
remove_unlocked (struct rmr_hs_slots *s, struct rmr_conn *c)
{
  unsigned i;

  for (i = 0; i < s->nconns; i++)
    if (s->conns[i] == c) {
      s->conns[i] = s->conns[--s->nconns];
      return;
    }
  abort ();
}

bool
rmr_hs_busy (struct rmr_hs_slots *s, char *reason, size_t n)
{
  bool busy;

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  busy = s->closing || s->nthreads >= s->opts.max_handshakes;
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
  if (busy)
    snprintf (reason, n, "%u handshakes in progress already (max_handshakes)",
              s->opts.max_handshakes);
  return busy;
}

int
rmr_hs_start (struct rmr_hs_slots *s, struct rmr_conn *c,
              void *(*thread) (void *), char *reason, size_t n)
{
  pthread_attr_t attr;
  pthread_t t;
  int r;

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  s->conns[s->nconns++] = c;
  s->nthreads++;
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  r = pthread_create (&t, &attr, thread, c);
  pthread_attr_destroy (&attr);
  if (r != 0) {
    remove_unlocked (s, c);
    s->nthreads--;
  }
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
  if (r == 0)
    return 0;
  snprintf (reason, n, "cannot start a handshake thread: %s", strerror (r));
  return -r;
}

void
rmr_hs_done (struct rmr_hs_slots *s, struct rmr_conn *c, int r,
             const char *identity)
{
  const struct rmr_conn_handler *h;
  void *opaque;
  bool closing, owned = false;

  /* Out of conns[] before anything else: once the owner has c, it may
   * free it at any time, and close must not shut it down then.
   */
  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  remove_unlocked (s, c);
  closing = s->closing;
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();

  if (r < 0 && !closing && s->opts.refused)
    s->opts.refused (s->opaque, c->peer_name, identity,
                     rmr_get_error () ? rmr_get_error () : strerror (-r));
  if (r == 0 && !closing && s->accept (s->opaque, c, &h, &opaque) == 0) {
    owned = true;
    r = c->ops->start (c, h, opaque);
    if (r < 0) /* the owner's down () frees it, as for any broken one */
      h->down (opaque, -r, rmr_get_error ());
  }
  if (!owned)
    s->destroy (c);

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  s->nthreads--;
  pthread_cond_broadcast (&s->cond);
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
}

void
rmr_hs_closing (struct rmr_hs_slots *s)
{
  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  s->closing = true;
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
}

void
rmr_hs_close (struct rmr_hs_slots *s)
{
  unsigned i;

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  s->closing = true;
  for (i = 0; i < s->nconns; i++)
    s->shutdown (s->conns[i]);
  while (s->nthreads > 0)
    pthread_cond_wait (&s->cond, &s->lock);
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
}
