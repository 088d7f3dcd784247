/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside the ucx transport: the connection struct and what its files
 * share: transport-ucx.c (the worker and its progress thread,
 * connections, sends, the vtable), transport-ucx-recv.c (the
 * active-message callbacks, the receive thread),
 * transport-ucx-setup.c (connect, the preamble), transport-ucx-listen.c
 * (the listener).  Not used outside them.
 */
#ifndef RMR_TRANSPORT_UCX_H
#define RMR_TRANSPORT_UCX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>

#include <ucp/api/ucp.h>

#include "tls.h"
#include "transport-impl.h"
#include "transport.h"
#include "ucx-auth.h"

/* Active message ids: the preamble (ucx-auth.h), then rmr messages (the
 * AM header is the encoded struct rmr_hdr, the AM data its payload).
 */
#define UCX_AM_HELLO 1
#define UCX_AM_MSG 2
#define UCX_AM_BYE 3 /* no data: the sender closes the connection */

/* A payload of at least this many bytes goes by rendezvous: the receiver
 * pulls it from the sender's buffer into its destination (RDMA read or
 * write on verbs hosts, zero-copy sendmsg on UCX's tcp), no bounce copy
 * on either side.
 */
#define UCX_RNDV_MIN (64 * 1024)

/* One received message waiting for its turn (messages are handed to the
 * handler in the order they arrived, a rendezvous one once its payload
 * is in).
 */
struct ucx_rx {
  struct rmr_hdr hdr;
  void *data;     /* eager: UCX's persistent data; rndv: its descriptor */
  bool rndv;      /* data is a rendezvous descriptor */
  bool keepalive; /* a KEEPALIVE request to answer (no data) */
  bool bye;       /* the peer's goodbye: down once what came before is
                     handed over */
};

struct ucx_conn {
  struct rmr_conn base; /* must be first */
  ucp_worker_h worker;  /* the process's (ucx_worker ()) */
  ucp_ep_h ep;          /* NULL once closed (under ep_lock, write) */
  int wakefd;           /* eventfd: the receive thread has work */
  struct rmr_conn_opts opts;
  struct rmr_listener *listener; /* accepted: whose handshake it is in */

  /* Readers: sends starting on ep; writer: closing it. */
  pthread_rwlock_t ep_lock;

  pthread_mutex_t lock; /* protects: the fields down to `reason` */
  pthread_cond_t cond;  /* a send or receive completed, a hello came, the
                           endpoint failed or closed */
  struct ucx_rx *rxq;   /* ring of rx_cap */
  unsigned rx_head, rx_n, rx_cap;
  uint8_t hs_buf[RMR_UCX_C1_MAX]; /* one preamble message */
  size_t hs_len;
  bool hs_got;
  bool cur_done; /* the rendezvous receive of cur finished */
  int cur_status;
  bool rx_busy;    /* the receive thread holds a message of the queue or
                  a rendezvous one: no message is handed over inline
                  (opts.inline_handler) until it is done */
  bool bye_queued; /* the peer's goodbye waits in rxq: the endpoint's
                      failure that follows it is no news */
  bool failed;     /* the endpoint failed (err, reason) */
  int err;
  char reason[300];

  const struct rmr_conn_handler *h;
  void *opaque;
  pthread_t thread;
  bool thread_started;
  atomic_bool pause_req;
  atomic_bool shutdown_req;
  atomic_bool down;
  atomic_bool free_on_exit;
  atomic_uint_fast64_t last_rx_ms;

  /* Receive thread only. */
  struct ucx_rx cur; /* a rendezvous message being received */
  bool cur_active;
  void *cur_dest;
  void *cur_scratch; /* cur's payload is discarded into this */
  void *cur_req;
  uint64_t last_ka_ms;
  void *ka_req; /* a keepalive in flight (its header: ka_hbuf) */
  uint8_t ka_hbuf[RMR_HDR_SIZE];
};

/* The connection whose receive thread this thread is. */
extern _Thread_local struct ucx_conn *ucx_tl_recv;

/* Held around every UCX call of the process (ucx_lock ()), so the
 * worker runs in UCX's thread mode SERIALIZED: UCX's own lock in mode
 * MULTI is a spinlock, and on a host with fewer cores than threads
 * (nbdkit's, the daemons') a thread preempted while holding it left the
 * others spinning out their time slices (4K IO with 32 in flight ran at
 * a twentieth of tcp's rate).  UCX's callbacks run under it (they come
 * only from inside UCX calls) and never take it.  Order: a connection's
 * ep_lock, then ucx_mu, then a connection's lock.  It also protects the
 * table of endpoints (ucx_ep_register_unlocked).
 */
extern pthread_mutex_t ucx_mu;

static inline void
ucx_lock (void)
{
  if (pthread_mutex_lock (&ucx_mu) != 0)
    abort ();
}

static inline void
ucx_unlock (void)
{
  if (pthread_mutex_unlock (&ucx_mu) != 0)
    abort ();
}

/* The process's UCX worker, made with its progress thread on first use:
 * 0 or -errno.
 */
int ucx_worker (ucp_worker_h *out);
/* Each successful ucx_worker () is matched by one ucx_worker_put () when
 * its connection or listener is freed (fini () frees the worker only
 * when none is left).
 */
void ucx_worker_put (void);
/* Make sure the progress thread runs UCX's progress soon: after a call
 * that left a request in flight (it may be asleep on the worker's event
 * fd, which not every kind of pending work writes).
 */
void ucx_kick (void);
/* Every endpoint's connection, for UCX's callbacks, which find the
 * connection by the endpoint (reply endpoint, error handler): register
 * once the endpoint exists; ucx_ep_close () removes it.  Under ucx_mu.
 */
void ucx_ep_register_unlocked (struct ucx_conn *c);
struct ucx_conn *ucx_conn_of_ep_unlocked (ucp_ep_h ep);

uint64_t ucx_now_ms (void);
/* Write c's wakefd (its receive thread polls it). */
void ucx_wake (struct ucx_conn *c);
/* UCX's status to an errno. */
int ucx_errno_of (ucs_status_t st);
/* Record that the connection must end (the first reason wins) and wake
 * whoever waits on it.
 */
void ucx_conn_fail (struct ucx_conn *c, int err, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
bool ucx_failed (struct ucx_conn *c);
/* Wait on c->cond until *flag (read under c->lock), at most until
 * deadline (ms of ucx_now_ms; 0: no limit).  Whether it came.
 */
bool ucx_wait_flag (struct ucx_conn *c, const bool *flag, uint64_t deadline);

/* One send in flight (transport-ucx.c). */
struct ucx_send_wait {
  struct ucx_conn *c;
  bool done;
  ucs_status_t status;
};
/* Start one send of AM id with header hbuf (hlen bytes) and data iov
 * (dt: room for iovcnt entries when iovcnt > 1).  *req: NULL (done
 * already), or the request to wait for with w; the memory of hbuf, iov
 * and dt must stay until then.  -errno if it could not start.
 */
int ucx_send_start (struct ucx_conn *c, unsigned id, const void *hbuf,
                    size_t hlen, const struct iovec *iov, int iovcnt,
                    ucp_dt_iov_t *dt, struct ucx_send_wait *w, void **req);
/* Wait for n started sends and free their requests: 0, or -errno if any
 * failed.
 */
int ucx_send_wait_for (struct ucx_conn *c, void **req, struct ucx_send_wait *w,
                       int n);

/* transport-ucx-recv.c: the active-message callbacks (they only queue),
 * the queue, the receive thread.
 */
ucs_status_t ucx_am_msg (void *arg, const void *header, size_t hlen, void *data,
                         size_t len, const ucp_am_recv_param_t *param);
ucs_status_t ucx_am_hello (void *arg, const void *header, size_t hlen,
                           void *data, size_t len,
                           const ucp_am_recv_param_t *param);
ucs_status_t ucx_am_bye (void *arg, const void *header, size_t hlen, void *data,
                         size_t len, const ucp_am_recv_param_t *param);
bool ucx_rx_pop (struct ucx_conn *c, struct ucx_rx *e);
/* Hand back to UCX what the queue holds (the connection is going down). */
void ucx_rx_drain_free (struct ucx_conn *c);
void *ucx_recv_thread (void *arg);

/* transport-ucx-setup.c */
int ucx_connect (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
                 struct rmr_conn **out);
/* A new connection (no endpoint yet), or -errno. */
int ucx_conn_new (const struct rmr_conn_opts *opts, struct ucx_conn **out);
/* Free a connection whose thread never started (or ended). */
void ucx_conn_destroy (struct ucx_conn *c);
int ucx_conn_start (struct rmr_conn *base, const struct rmr_conn_handler *h,
                    void *opaque);
/* The error handler for endpoints of c (ucp_ep_params_t). */
void ucx_ep_error (void *arg, ucp_ep_h ep, ucs_status_t status);
/* Preamble: send one message / wait for the next, before deadline (ms
 * of ucx_now_ms).  0 or -errno with the reason recorded (no peer name).
 */
int ucx_hs_send (struct ucx_conn *c, const uint8_t *buf, size_t len,
                 uint64_t deadline);
int ucx_hs_recv (struct ucx_conn *c, uint8_t *buf, size_t cap, size_t *len,
                 uint64_t deadline);
/* Once the preamble is done: base.security, base.identity, base.path. */
void ucx_conn_describe (struct ucx_conn *c, bool authenticated,
                        const char *identity);
/* Close the endpoint now (force), completing every request on it. */
void ucx_ep_close (struct ucx_conn *c);
/* The same from inside a UCX callback (under ucx_mu): does not wait. */
void ucx_ep_close_unlocked (struct ucx_conn *c);
/* "ucx:HOST:PORT" of a socket address. */
void ucx_name_of_sockaddr (const struct sockaddr *sa, char *buf, size_t n);

int ucx_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
                rmr_accept_fn accept, void *opaque, struct rmr_listener **out);
void ucx_listener_close (struct rmr_listener *l);

#endif /* RMR_TRANSPORT_UCX_H */
