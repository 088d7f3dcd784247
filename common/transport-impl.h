/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside the transports: what the tcp and the ucx implementations share
 * (one copy, so their limits and lifetimes cannot drift apart).  Not
 * used outside transport-*.c.
 */
#ifndef RMR_TRANSPORT_IMPL_H
#define RMR_TRANSPORT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

/* transport-hs.c: a listener's handshake slots (DESIGN 9).
 *
 * Every accepted connection runs its hello and authentication on a
 * detached handshake thread of its own; at most opts.max_handshakes run
 * at once.  The listener's own thread (tcp's accept thread, ucx's
 * connection-request callback) checks rmr_hs_busy () and then
 * rmr_hs_start (); only that one thread calls them, so nothing can take
 * the slot it saw free in between.  The handshake thread ends with
 * rmr_hs_done (), which hands the connection to the owner's accept
 * callback or destroys it.  rmr_hs_close () shuts down the handshakes
 * still running and waits for every handshake thread to end, so accept
 * is never called on a freed listener.
 *
 * Ownership: a connection in conns[] belongs to its handshake thread; the
 * listener may only shut it down (shutdown (), under lock).  The thread
 * takes it out of conns[] before anything else, because once the owner
 * has it, the owner may free it at any time.  A connection never handed
 * over is destroyed by the thread (destroy ()).
 *
 * Locking: lock protects conns, nconns, nthreads and closing; cond is
 * signalled when nthreads goes down.  No function here calls into UCX,
 * so rmr_hs_busy () and rmr_hs_start () may run inside a UCX callback
 * under ucx_mu (transport-ucx.h).  Lock order: ucx_mu, then lock; and
 * lock, then a connection's shutdown (only after no more connection
 * requests can come).
 */
struct rmr_hs_slots {
  /* Set by rmr_hs_init, constant after. */
  struct rmr_listen_opts opts; /* defaults filled in */
  rmr_accept_fn accept;
  void *opaque; /* accept's and opts.refused's */
  /* Free a connection that was never handed over (no thread of its own
   * runs, no UCX callback can reach it any more).
   */
  void (*destroy) (struct rmr_conn *c);
  /* Break a connection in its handshake, from rmr_hs_close (). */
  void (*shutdown) (struct rmr_conn *c);

  pthread_mutex_t lock;    /* protects: conns, nconns, nthreads, closing */
  pthread_cond_t cond;     /* nthreads went down */
  struct rmr_conn **conns; /* in their hello or handshake */
  unsigned nconns;
  unsigned nthreads; /* handshake threads alive (>= nconns, <= the max) */
  bool closing;      /* no more handshakes reach accept */
};

/* Copy opts (may be NULL) with the defaults filled in, and allocate the
 * slots: 0 or -ENOMEM (nothing to undo then).
 */
int rmr_hs_init (struct rmr_hs_slots *s, const struct rmr_listen_opts *opts,
                 rmr_accept_fn accept, void *opaque,
                 void (*destroy) (struct rmr_conn *c),
                 void (*shutdown) (struct rmr_conn *c));
/* After rmr_hs_close (), or when no handshake ever started. */
void rmr_hs_fini (struct rmr_hs_slots *s);

/* Whether a new connection must be refused: the listener is closing, or
 * max_handshakes handshakes run already.  If so, reason (n bytes) gets
 * the text for opts.refused.
 */
bool rmr_hs_busy (struct rmr_hs_slots *s, char *reason, size_t n);
/* Put c in a slot and start thread (c) for its handshake, detached: 0,
 * or -errno with c out of the slot again (the caller still owns c) and
 * reason (n bytes) set for opts.refused.
 */
int rmr_hs_start (struct rmr_hs_slots *s, struct rmr_conn *c,
                  void *(*thread) (void *), char *reason, size_t n);
/* The end of c's handshake thread, r being the handshake's result (0,
 * or -errno with the reason recorded) and identity what the peer
 * presented: out of its slot; then, unless the listener is closing,
 * refused () (r < 0) or accept () and the connection's start; c
 * destroyed unless the owner took it; the thread counted out.  The
 * thread must not touch c or the listener afterwards.
 */
void rmr_hs_done (struct rmr_hs_slots *s, struct rmr_conn *c, int r,
                  const char *identity);
/* Closing: no handshake reaches accept from now on (idempotent). */
void rmr_hs_closing (struct rmr_hs_slots *s);
/* Closing, shut down every connection still in its handshake, and wait
 * until every handshake thread has ended.
 */
void rmr_hs_close (struct rmr_hs_slots *s);

/* transport.c */

/* The receive thread's poll timeout in ms (-1: none) for a connection
 * with opts that last received at last_rx_ms (ms clock of now): wake
 * for the next keepalive or the idle timeout, whichever comes first.
 */
int rmr_conn_poll_timeout (const struct rmr_conn_opts *opts,
                           uint64_t last_rx_ms, uint64_t now);

#endif /* RMR_TRANSPORT_IMPL_H */
