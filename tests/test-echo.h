/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The echo server and client of the transport tests (test-tls.c over tcp,
 * test-transport-ucx.c over ucx), in one place so that a fix to one
 * reaches both.  test-echo.c is compiled into each of those programs.
 *
 * The server: echo_accept () as a listener's accept function (its opaque
 * unused), echo_refused () as its rmr_listen_opts.refused.  It answers
 * - a WRITE: status 0 if the payload is echo_pattern () of the tag, EIO
 *   if not;
 * - a READ: length bytes of the tag's pattern;
 * - anything else (a FLUSH): at once, status 0 and no payload.
 * Each reply is the request's header with RMR_HF_REPLY set and wseq and
 * horizon cleared.  A server connection is the server's own: its down ()
 * closes it and frees it on its receive thread.  What the server saw is
 * in echo_srv.
 *
 * The client: echo_client_handler with a struct echo_client (set up by
 * echo_client_init ()) as the connection's opaque; echo_connect () opens
 * one so.  Reply payloads land in the echo_client's buf.
 *
 * Payloads are at most ECHO_MAX bytes on either side.
 */
#ifndef RMR_TEST_ECHO_H
#define RMR_TEST_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "proto.h"
#include "tls.h"
#include "transport.h"

#define ECHO_MAX (1024 * 1024)

/* What the server side saw.  lock protects every field after cond; cond
 * is broadcast on each refusal and each server connection's down ().  A
 * static GMutex and GCond need no init, so the zeroed global is ready.
 */
struct echo_server {
  GMutex lock;
  GCond cond;
  GPtrArray *refusals; /* char *: "identity|reason"; NULL: not kept */
  unsigned accepted;   /* connections echo_accept () took */
  unsigned downs;      /* server connections whose down () ran */
  /* The last accepted connection: valid while its client keeps it up. */
  struct rmr_conn *last_accepted;
  GArray *order; /* uint64_t: tags in the order the server got them;
                    NULL: not kept */
};
extern struct echo_server echo_srv;

/* n bytes of the pattern of seed (a message's tag) at p. */
void echo_pattern (uint8_t *p, size_t n, uint64_t seed);

int echo_accept (void *opaque, struct rmr_conn *conn,
                 const struct rmr_conn_handler **h, void **conn_opaque);
/* Adds "identity|reason" to echo_srv.refusals if it is set. */
void echo_refused (void *opaque, const char *peer, const char *identity,
                   const char *reason);

/* echo_srv.accepted and the number of refusals kept, read under lock. */
unsigned echo_naccepted (void);
unsigned echo_nrefusals (void);

/* Wait up to 10 s for the n-th refusal (from 1) and return its text,
 * owned by echo_srv.refusals (valid until that is freed).
 */
const char *echo_refusal (unsigned n);

/* The client side of one connection: the calls of echo_client_handler
 * fill it.  lock protects every field after cond; cond is broadcast on
 * each reply and on down ().
 */
struct echo_client {
  GMutex lock;
  GCond cond;
  struct rmr_hdr rep;  /* the last reply */
  bool got;            /* a reply came since the caller cleared this */
  unsigned nrep, nbad; /* replies, and those with a non-zero status */
  bool down;
  int down_err;
  char down_reason[400];
  uint8_t *buf; /* ECHO_MAX bytes: where reply payloads land */
  /* Kept when order is set (by the test, before the first send): the
   * tags of the replies in the order the handler got them, READ replies
   * whose payload is not the tag's pattern counted in nbad, and calls of
   * the handler that overlapped another (nconcurrent; must stay 0).
   */
  GArray *order; /* uint64_t */
  unsigned nconcurrent;
  bool in_message;
};

extern const struct rmr_conn_handler echo_client_handler;

/* Zero cc, set up its lock and cond, allocate its buf; echo_client_fini ()
 * frees them.  cc must outlive the connection it serves.
 */
void echo_client_init (struct echo_client *cc);
void echo_client_fini (struct echo_client *cc);

/* rmr_conn_connect () with echo_client_handler and cc; opts NULL: a
 * 5 s connect timeout and the defaults.
 */
int echo_connect (const struct rmr_addr *addr, struct echo_client *cc,
                  const struct rmr_conn_opts *opts, struct rmr_conn **out);

/* Wait up to 10 s until cc has n replies; fails the test if it goes
 * down first.
 */
void echo_wait_replies (struct echo_client *cc, unsigned n);
/* Wait up to limit seconds for cc's down (), which must come; return the
 * seconds it took.
 */
double echo_wait_down (struct echo_client *cc, double limit);

/* Write text to dir/name; the path, which the caller frees. */
char *echo_write_file (const char *dir, const char *name, const char *text);
/* rmr_tls_setup (), which must succeed. */
void echo_set_tls (enum rmr_tls_mode mode, const char *file, const char *user);

#endif /* RMR_TEST_ECHO_H */
