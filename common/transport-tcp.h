/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inside the tcp transport: the connection struct and what the
 * connection code (transport-tcp.c) and the listener
 * (transport-tcp-listen.c) share.  Not used outside those two files.
 */
#ifndef RMR_TRANSPORT_TCP_H
#define RMR_TRANSPORT_TCP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tls.h"
#include "transport-impl.h"
#include "transport.h"

struct tcp_listener;

struct tcp_conn {
  struct rmr_conn base; /* must be first */
  int fd;
  int wakefd;
  struct rmr_conn_opts opts;
  struct rmr_tls_sess *tls;      /* NULL: plaintext */
  struct tcp_listener *listener; /* accepted: whose handshake it is in */

  /* The send queue (transport-tcp-send.c), under send_lock; the thread
   * that set sending owns writing to fd and tls's send side.
   */
  pthread_mutex_t send_lock;
  struct rmr_send *sq_head, **sq_tail;
  bool sending;
  int send_err; /* sticky: -errno of the write that failed */
  char send_errmsg[RMR_ERRMSG_MAX];

  const struct rmr_conn_handler *h;
  void *opaque;
  pthread_t thread;
  bool thread_started; /* thread exists and is not joined */
  atomic_bool pause_req;
  atomic_bool shutdown_req;
  atomic_bool down;         /* down () was called */
  atomic_bool free_on_exit; /* freed by its own thread */

  /* Receive thread only. */
  uint8_t *rbuf;
  size_t rlen;
  uint64_t last_rx_ms;
  uint64_t last_ka_ms;
};

uint64_t tcp_now_ms (void);
void tcp_wake (int efd);
struct tcp_conn *tcp_conn_new (int fd, const struct rmr_conn_opts *opts);
void tcp_conn_destroy (struct tcp_conn *c);
int tcp_conn_start (struct rmr_conn *base, const struct rmr_conn_handler *h,
                    void *opaque);
/* Once the hello (and TLS) are done: base.security and base.identity. */
void tcp_conn_describe (struct tcp_conn *c);
/* Read exactly n bytes from the blocking socket fd before deadline (ms
 * of tcp_now_ms): 0, -ETIMEDOUT, -ECONNRESET at end of stream, -errno.
 */
int tcp_read_deadline (int fd, uint8_t *p, size_t n, uint64_t deadline);

int tcp_send (struct rmr_conn *base, const struct rmr_hdr *hdr,
              const struct iovec *iov, int iovcnt);
int tcp_send_many (struct rmr_conn *base, const struct rmr_msg *msgs, int n);
void tcp_send_async (struct rmr_conn *base, struct rmr_send *s);
/* A send that never blocks (keepalives from the receive thread): -EAGAIN
 * when another thread sends or the socket is full.
 */
int tcp_send_nowait (struct tcp_conn *c, const struct rmr_hdr *hdr);
/* Become the sender (true), if nobody is and no write failed; the
 * socket's and TLS's send side are then the caller's until
 * tcp_sender_release, which records r (-errno, -EAGAIN: nothing) as the
 * connection's send error and sends what was queued meanwhile.
 */
bool tcp_sender_claim (struct tcp_conn *c);
void tcp_sender_release (struct tcp_conn *c, int r);

int tcp_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
                rmr_accept_fn accept, void *opaque, struct rmr_listener **out);
void tcp_listener_close (struct rmr_listener *l);

#endif /* RMR_TRANSPORT_TCP_H */
