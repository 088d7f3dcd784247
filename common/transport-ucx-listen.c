/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport's listener: a UCP listener on the process's worker
 * (transport-ucx.c), whose connection requests come on its progress
 * thread; each becomes a connection, an endpoint on that worker, whose
 * preamble (ucx-auth.h) runs on a handshake thread of its own; only then
 * the owner's accept callback (transport.h), as on tcp.
 *
 * Limits, as tcp's listener and kept by the same handshake slots
 * (transport-impl.h, DESIGN 9): at most max_handshakes connections in
 * their preamble at once (more are rejected at once:
 * ucp_listener_reject, the peer's connect fails), each with
 * handshake_timeout_ms in all.  The slots take no UCX lock, so the
 * connection-request callback, under ucx_mu, may use them.
 *
 * The listening side of the preamble, under the process's key
 * configuration when the listener was opened (tcp's table):
 *   our mode   client asks auth    client asks none
 *   off        plaintext           plaintext
 *   on         challenge-response  plaintext
 *   require    challenge-response  refused (TLS_REQUIRED)
 * An identity the key file does not know: refused (UNKNOWN_ID); a
 * client proof that does not match: the connection is closed.
 *
 * Closing: the slots' closing flag (rmr_hs_closing ()) stops new
 * requests and keeps handshakes from reaching accept; then the UCP
 * listener goes, so no request comes any more; then those in their
 * preamble are shut down, and close waits until every handshake thread
 * is done (rmr_hs_close ()).  A handshake thread leaves its slot before
 * it hands its connection over.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "parse.h"
#include "transport-ucx.h"
#include "util.h"

struct ucx_listener {
  struct rmr_listener base; /* must be first */
  ucp_worker_h worker;
  ucp_listener_h ul; /* under ucx_mu */
  const struct rmr_tls *tls;
  char name[300];
  /* opts, accept, the connections in their preamble (locking:
   * transport-impl.h).
   */
  struct rmr_hs_slots slots;
};

static void
refuse (struct ucx_listener *l, const char *peer, const char *identity,
        const char *reason)
{
  if (l->slots.opts.refused)
    l->slots.opts.refused (l->slots.opaque, peer, identity, reason);
}

/* The preamble: 0, or -errno with the reason recorded.  identity gets
 * what the peer presented (for the log).
 */
static int
server_preamble (struct ucx_listener *l, struct ucx_conn *c, char *identity)
{
  enum rmr_tls_mode mode = rmr_tls_mode (l->tls);
  uint64_t deadline = ucx_now_ms () + l->slots.opts.handshake_timeout_ms;
  struct rmr_ucx_c1 c1;
  struct rmr_ucx_s1 s1 = {0};
  uint8_t buf[RMR_UCX_C1_MAX], want[RMR_UCX_PROOF];
  const uint8_t *key = NULL;
  size_t len, keylen = 0;
  int r;

  r = ucx_hs_recv (c, buf, sizeof buf, &len, deadline);
  if (r == -ETIMEDOUT)
    return rmr_err (ETIMEDOUT, "no hello within %" PRIu64 " ms",
                    l->slots.opts.handshake_timeout_ms);
  if (r < 0)
    return r;
  if (rmr_ucx_c1_decode (buf, len, &c1) < 0)
    return -EPROTO;
  snprintf (identity, RMR_TLS_ID_MAX + 1, "%s", c1.identity);
  rmr_hello_answer (mode, &c1.hello, &s1.hello);
  if (s1.hello.flags & RMR_HELLO_TLS) {
    if (rmr_tls_key (l->tls, c1.identity, &key, &keylen) < 0) {
      s1.hello.flags = 0;
      s1.hello.refusal = RMR_HELLO_UNKNOWN_ID;
    }
    else if ((r = rmr_ucx_nonce (s1.nonce)) < 0 ||
             (r = rmr_ucx_proof (key, keylen, true, c1.nonce, s1.nonce,
                                 c1.identity, s1.proof)) < 0)
      return r;
  }
  len = rmr_ucx_s1_encode (&s1, buf);
  r = ucx_hs_send (c, buf, len, deadline);
  if (r < 0)
    return r;
  if (s1.hello.refusal == RMR_HELLO_TLS_REQUIRED)
    return rmr_err (EACCES, "a plaintext session, and tls=require");
  if (s1.hello.refusal == RMR_HELLO_UNKNOWN_ID)
    return rmr_err (EACCES, "unknown identity '%s' (not in the key file)",
                    c1.identity);
  if (!(s1.hello.flags & RMR_HELLO_TLS)) {
    ucx_conn_describe (c, false, "");
    return 0;
  }
  r = ucx_hs_recv (c, buf, sizeof buf, &len, deadline);
  if (r < 0)
    return r;
  if (len != RMR_UCX_PROOF)
    return rmr_err (EPROTO, "bad proof: %zu bytes, expected %d", len,
                    RMR_UCX_PROOF);
  r = rmr_ucx_proof (key, keylen, false, c1.nonce, s1.nonce, c1.identity, want);
  if (r < 0)
    return r;
  if (!rmr_ucx_proof_equal (want, buf))
    return rmr_err (EACCES, "wrong key for identity '%s'", c1.identity);
  ucx_conn_describe (c, true, c1.identity);
  return 0;
}

static void *
hs_thread (void *arg)
{
  struct ucx_conn *c = arg;
  struct ucx_listener *l = (struct ucx_listener *) c->listener;
  char identity[RMR_TLS_ID_MAX + 1] = "";
  int r;

  r = server_preamble (l, c, identity);
  rmr_hs_done (&l->slots, &c->base, r, identity);
  return NULL;
}

/* The slots' callbacks (transport-impl.h); shutdown is the vtable's. */
static void
hs_destroy (struct rmr_conn *c)
{
  ucx_conn_destroy ((struct ucx_conn *) c);
}

/* Whether UCX's own tcp would carry a connection from an IPv6 address.
 * In UCX 1.13 its tcp transport gives each device one address, IPv4
 * first unless UCX_TCP_AF_PRIO says inet6 first; the accepting side then
 * cannot reach an IPv6 peer's address back, ucp_ep_create () fails, and
 * UCX corrupts its heap on that failure (seen here: an abort in
 * ucp_worker_destroy (), or later at a thread's exit).  Such a request
 * is refused before UCX tries.
 */
static bool
ipv6_unsupported (void)
{
  const char *tls = getenv ("UCX_TLS");
  const char *prio = getenv ("UCX_TCP_AF_PRIO");
  bool tcp = !tls || !*tls || strstr (tls, "tcp") || strstr (tls, "all");

  return tcp && !(prio && strncmp (prio, "inet6", 5) == 0);
}

/* A connection request, from inside the worker's progress (under
 * ucx_mu: no UCX call here may lock it again).
 */
static void
on_conn_request (ucp_conn_request_h req, void *arg)
{
  struct ucx_listener *l = arg;
  ucp_conn_request_attr_t attr = {.field_mask =
                                    UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ADDR};
  ucp_ep_params_t ep = {
    .field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST |
                  UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER,
    .conn_request = req,
    .err_mode = UCP_ERR_HANDLING_MODE_PEER,
    .err_handler = {.cb = ucx_ep_error},
  };
  char peer[300] = "ucx:?", reason[160];
  struct ucx_conn *c;
  ucs_status_t st;
  int r;

  if (ucp_conn_request_query (req, &attr) == UCS_OK)
    ucx_name_of_sockaddr ((const struct sockaddr *) &attr.client_address, peer,
                          sizeof peer);
  if (attr.client_address.ss_family == AF_INET6 && ipv6_unsupported ()) {
    ucp_listener_reject (l->ul, req);
    refuse (l, peer, "",
            "IPv6 over UCX's tcp transport needs UCX_TCP_AF_PRIO=inet6,inet "
            "on both sides (UCX 1.13)");
    return;
  }
  if (rmr_hs_busy (&l->slots, reason, sizeof reason)) {
    ucp_listener_reject (l->ul, req);
    refuse (l, peer, "", reason);
    return;
  }
  r = ucx_conn_new (NULL, &c);
  if (r < 0) {
    ucp_listener_reject (l->ul, req);
    refuse (l, peer, "", rmr_get_error ());
    return;
  }
  snprintf (c->base.peer_name, sizeof c->base.peer_name, "%s", peer);
  c->listener = &l->base;
  st = ucp_ep_create (c->worker, &ep, &c->ep);
  if (st != UCS_OK) {
    c->ep = NULL;
    ucx_conn_destroy (c); /* no endpoint: no UCX call */
    snprintf (reason, sizeof reason, "accepting: %s", ucs_status_string (st));
    refuse (l, peer, "", reason);
    return;
  }
  ucx_ep_register_unlocked (c);
  if (rmr_hs_start (&l->slots, &c->base, hs_thread, reason, sizeof reason) <
      0) {
    ucx_ep_close_unlocked (c);
    ucx_conn_destroy (c); /* its endpoint closed: no UCX call */
    refuse (l, peer, "", reason);
  }
}

static void
listener_free (struct ucx_listener *l)
{
  if (l->ul) {
    ucx_lock ();
    ucp_listener_destroy (l->ul);
    ucx_unlock ();
  }
  rmr_hs_fini (&l->slots);
  free (l);
  ucx_worker_put ();
}

int
ucx_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
            rmr_accept_fn accept, void *opaque, struct rmr_listener **out)
{
  struct addrinfo hints = {
    .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = AI_PASSIVE};
  ucp_listener_params_t lp = {
    .field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
                  UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
  };
  struct addrinfo *res = NULL;
  struct ucx_listener *l;
  ucp_worker_h w;
  ucs_status_t st;
  char port[8];
  int r;

  r = ucx_worker (&w);
  if (r < 0)
    return r;
  l = calloc (1, sizeof *l);
  if (!l) {
    ucx_worker_put ();
    return rmr_err (ENOMEM, "out of memory");
  }
  l->base.ops = &rmr_transport_ucx;
  l->worker = w;
  if (rmr_hs_init (&l->slots, opts, accept, opaque, hs_destroy,
                   rmr_transport_ucx.shutdown) < 0) {
    free (l);
    ucx_worker_put ();
    return rmr_err (ENOMEM, "out of memory");
  }
  l->tls = rmr_tls_current ();
  rmr_addr_format (addr, l->name, sizeof l->name);
  snprintf (port, sizeof port, "%u", addr->port);
  r = getaddrinfo (addr->host, port, &hints, &res);
  if (r != 0) {
    rmr_err (EADDRNOTAVAIL, "listen %s: cannot resolve: %s", l->name,
             gai_strerror (r));
    listener_free (l);
    return -EADDRNOTAVAIL;
  }
  lp.sockaddr.addr = res->ai_addr;
  lp.sockaddr.addrlen = res->ai_addrlen;
  lp.conn_handler.cb = on_conn_request;
  lp.conn_handler.arg = l;
  ucx_lock ();
  st = ucp_listener_create (l->worker, &lp, &l->ul);
  ucx_unlock ();
  ucx_kick ();
  freeaddrinfo (res);
  if (st != UCS_OK) {
    l->ul = NULL;
    rmr_err (st == UCS_ERR_BUSY ? EADDRINUSE : EIO, "listen %s: %s", l->name,
             st == UCS_ERR_BUSY ? "address in use" : ucs_status_string (st));
    r = rmr_get_errno ();
    listener_free (l);
    return -r;
  }
  *out = &l->base;
  return 0;
}

void
ucx_listener_close (struct rmr_listener *base)
{
  struct ucx_listener *l = (struct ucx_listener *) base;

  rmr_hs_closing (&l->slots);
  /* No connection request comes after this: they come only from inside
   * the worker's progress, under ucx_mu.
   */
  ucx_lock ();
  ucp_listener_destroy (l->ul);
  l->ul = NULL;
  ucx_unlock ();
  rmr_hs_close (&l->slots);
  listener_free (l);
}
