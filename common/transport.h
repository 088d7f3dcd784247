/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transport interface (DESIGN 10): connect, listen, send a message
 * (header + scatter-gather payload), receive into a buffer the receiver
 * chooses, and a peer-down callback.  Implementations: tcp
 * (transport-tcp.c) and ucx (transport-ucx.c), picked by the address's
 * scheme.
 *
 * Threads: each connection has one receive thread that calls the
 * handler's functions; sends may come from any thread (serialised per
 * connection, a message is never interleaved with another).
 *
 * Every connection opens with the hello (proto.h) and, when both sides
 * have keys, an authentication with the process's pre-shared keys
 * (rmr_tls_setup ()): on tcp a TLS 1.3 handshake (tls.h), on ucx a
 * mutual challenge-response (ucx-auth.h).  connect returns only once
 * they are done, and a listener calls accept only for a connection that
 * passed them, so a refused peer never reaches a pool.
 *
 * Keepalive is handled here: a connection opened with keepalive_ms sends
 * a KEEPALIVE request when it has received nothing for that long, answers
 * the peer's KEEPALIVEs itself, and declares the peer down (ETIMEDOUT)
 * when nothing at all arrived for idle_timeout_ms.
 */
#ifndef RMR_TRANSPORT_H
#define RMR_TRANSPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto.h"
#include "rmr/rmr.h"

struct rmr_conn;

/* Called on the connection's receive thread, never concurrently for one
 * connection.
 */
struct rmr_conn_handler {
  /* A validated header arrived with hdr->payload_len > 0: return where
   * the payload goes (at least payload_len bytes, valid until message ()
   * returns), or NULL to have it discarded.
   */
  void *(*payload_buf) (void *opaque, const struct rmr_hdr *hdr);
  /* The whole message arrived (payload: the buffer returned above, or
   * NULL).  KEEPALIVEs never reach the handler.
   */
  void (*message) (void *opaque, const struct rmr_hdr *hdr, void *payload);
  /* Optional: the messages of one receive batch were all handed over
   * (the moment to send replies gathered during the batch at once).
   */
  void (*batch_end) (void *opaque);
  /* The connection broke (EOF, error, bad message, idle timeout, or
   * rmr_conn_shutdown ()): called exactly once, after which no other
   * callback comes.  reason is a one-line text.
   */
  void (*down) (void *opaque, int errnum, const char *reason);
};

struct rmr_conn_opts {
  uint64_t connect_timeout_ms; /* 0: 10 s */
  uint64_t user_timeout_ms;    /* TCP_USER_TIMEOUT; ucx: the same bound on a
                                * send without progress; 0: 30 s */
  uint64_t keepalive_ms;       /* send KEEPALIVE when idle; 0: never */
  uint64_t idle_timeout_ms;    /* down when silent; 0: never */
  /* The handler's payload_buf () and message () never block, send or
   * close (they only hand a reply over, as a client's do): a transport
   * may then call them from its own thread, with its locks held, and
   * save a thread hop per message (ucx does; tcp's receive thread calls
   * them anyway).  down () comes as usual; a handler with batch_end ()
   * is never called so (its batches would overlap).
   */
  bool inline_handler;
};

/* One message of a batch send. */
struct rmr_msg {
  struct rmr_hdr hdr;
  struct iovec iov; /* payload (iov_len == hdr.payload_len) */
};

/* A queued send (rmr_conn_send_async): one message (hdr and iov, iovcnt
 * iovecs whose lengths add up to hdr.payload_len), or, with nmsgs > 0,
 * the messages msgs[0..nmsgs).  The header, the iovecs and the payload
 * belong to the transport until done () is called: exactly once, from
 * the thread that sent it (maybe the caller's, before
 * rmr_conn_send_async returns), with 0 once the bytes were written, or
 * -errno.  done () must not block or send on the connection.
 */
struct rmr_send {
  struct rmr_hdr hdr;
  const struct iovec *iov;
  int iovcnt;
  const struct rmr_msg *msgs;
  int nmsgs;
  void (*done) (struct rmr_send *s, int err);
  struct rmr_send *next; /* the transport's */
};

/* Base of every listener, embedded first in the implementation's. */
struct rmr_listener {
  const struct rmr_transport_ops *ops;
};

/* A new connection was accepted: set *handler and *opaque for it, or
 * return -1 to refuse it (it is closed).  Called on the connection's
 * handshake thread, after its hello and TLS: several at once.
 */
typedef int (*rmr_accept_fn) (void *opaque, struct rmr_conn *conn,
                              const struct rmr_conn_handler **handler,
                              void **conn_opaque);

/* Limits of a listener (DESIGN 9): connections still in their hello or
 * TLS handshake are at most max_handshakes (more are refused at once,
 * with a BUSY hello), and each has handshake_timeout_ms to finish.
 */
struct rmr_listen_opts {
  unsigned max_handshakes;       /* 0: RMR_DEFAULT_MAX_HANDSHAKES */
  uint64_t handshake_timeout_ms; /* 0: RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS */
  /* Optional, called on the listener's threads: a connection was refused
   * before accept (peer address, the TLS identity it presented or "",
   * a one-line reason).
   */
  void (*refused) (void *opaque, const char *peer, const char *identity,
                   const char *reason);
};
#define RMR_DEFAULT_MAX_HANDSHAKES 32
#define RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000

struct rmr_transport_ops {
  const char *name;
  int (*connect) (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
                  struct rmr_conn **out);
  int (*listen) (const struct rmr_addr *addr,
                 const struct rmr_listen_opts *opts, rmr_accept_fn accept,
                 void *opaque, struct rmr_listener **out);
  void (*listener_close) (struct rmr_listener *l);
  int (*start) (struct rmr_conn *c, const struct rmr_conn_handler *h,
                void *opaque);
  int (*send) (struct rmr_conn *c, const struct rmr_hdr *hdr,
               const struct iovec *iov, int iovcnt);
  int (*send_many) (struct rmr_conn *c, const struct rmr_msg *msgs, int n);
  /* Optional: without it rmr_conn_send_async sends at once. */
  void (*send_async) (struct rmr_conn *c, struct rmr_send *s);
  void (*pause) (struct rmr_conn *c);
  int (*resume) (struct rmr_conn *c);
  void (*shutdown) (struct rmr_conn *c);
  void (*free) (struct rmr_conn *c);
};

/* Base of every connection, embedded first in the implementation's. */
struct rmr_conn {
  const struct rmr_transport_ops *ops;
  struct rmr_addr peer;
  char peer_name[300]; /* "tcp:127.0.0.1:7700" */
  /* Set before the connection is handed over, constant after: */
  char security[112]; /* "plaintext" or the TLS session ("TLS1.3 ...") */
  char identity[129]; /* TLS identity: the peer's (accepted), ours
                         (connected); "" in plaintext */
  char path[96];      /* how the bytes travel: "tcp", or "ucx" and the
                         transports UCX chose ("ucx tcp/eth0") */
  atomic_uint_fast64_t bytes_sent;
  atomic_uint_fast64_t bytes_received;
  /* Payload bytes sent straight from the caller's buffers by rendezvous
   * (ucx; on tcp every send is from the caller's buffers).
   */
  atomic_uint_fast64_t zcopy_bytes_sent;
};

/* Connect to addr (any transport kind); the receive thread starts with
 * handler and opaque.  -errno with a message naming the address.
 */
int rmr_conn_connect (const struct rmr_addr *addr,
                      const struct rmr_conn_opts *opts,
                      const struct rmr_conn_handler *handler, void *opaque,
                      struct rmr_conn **out);

/* Listen on addr; accept is called for each new connection that passed
 * its hello and TLS handshake.  opts may be NULL (defaults).
 */
int rmr_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
                rmr_accept_fn accept, void *opaque, struct rmr_listener **out);
void rmr_listener_close (struct rmr_listener *l);

/* Send one message: header (payload_len must equal the iov total) and
 * payload, atomically with respect to other sends.  Blocks while the
 * socket is full.  -EPIPE etc. once the connection is down.
 */
int rmr_conn_send (struct rmr_conn *c, const struct rmr_hdr *hdr,
                   const struct iovec *iov, int iovcnt);

/* Send n messages with as few system calls as possible (in order, each
 * whole).  Same errors as rmr_conn_send.
 */
int rmr_conn_send_many (struct rmr_conn *c, const struct rmr_msg *msgs, int n);

/* Queue s for sending (struct rmr_send): in order with every other send
 * of the connection, without waiting for a thread that sends meanwhile
 * (on tcp, that thread sends s with its own messages, in one sendmsg ()
 * where they fit).  A failed send does not break the connection by
 * itself; done () says so and the caller decides.
 */
void rmr_conn_send_async (struct rmr_conn *c, struct rmr_send *s);

/* Stop the receive thread (the connection stays), and start it again:
 * around fork ().
 */
void rmr_conn_pause (struct rmr_conn *c);
int rmr_conn_resume (struct rmr_conn *c);

/* Break the connection: down () will be called on the receive thread. */
void rmr_conn_shutdown (struct rmr_conn *c);

/* Shut down, wait for the receive thread to end (down () has run), free.
 * Must not be called from the connection's own receive thread.
 */
void rmr_conn_close (struct rmr_conn *c);

extern const struct rmr_transport_ops rmr_transport_tcp;
extern const struct rmr_transport_ops rmr_transport_ucx;

#endif /* RMR_TRANSPORT_H */
