/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport's connection setup: connect, and the preamble
 * (ucx-auth.h) of both sides' messages, run on the connecting thread or
 * a listener's handshake thread before the receive thread starts (the
 * hello callback hands them each message); and what a connection says
 * of itself (security, identity, the lanes UCX chose).
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "error.h"
#include "parse.h"
#include "transport-ucx.h"
#include "util.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000

/* ---- the preamble ---- */

int
ucx_hs_send (struct ucx_conn *c, const uint8_t *buf, size_t len,
             uint64_t deadline)
{
  struct iovec iov = {.iov_base = (void *) buf, .iov_len = len};
  struct ucx_send_wait w;
  bool closed = false;
  void *req;
  uint64_t now;
  int r;

  r = ucx_send_start (c, UCX_AM_HELLO, NULL, 0, &iov, 1, NULL, &w, &req);
  if (r < 0)
    return rmr_err (-r, "sending the hello: %s", strerror (-r));
  /* The request holds w until it completes: a forced close of the
   * endpoint completes it (with an error), so it is waited for.
   */
  while (req && !ucx_wait_flag (c, &w.done,
                                closed ? ucx_now_ms () + 100
                                       : MIN (deadline, ucx_now_ms () + 100))) {
    now = ucx_now_ms ();
    if (!closed &&
        (ucx_failed (c) || now >= deadline || atomic_load (&c->shutdown_req))) {
      ucx_ep_close (c);
      closed = true;
    }
  }
  if (req) {
    ucx_lock ();
    ucp_request_free (req);
    ucx_unlock ();
    if (w.status != UCS_OK) {
      if (ucx_failed (c))
        return rmr_err (c->err, "%s", c->reason);
      if (ucx_now_ms () >= deadline)
        return rmr_err (ETIMEDOUT, "sending the hello timed out");
      return rmr_err (ucx_errno_of (w.status), "sending the hello: %s",
                      ucs_status_string (w.status));
    }
  }
  return 0;
}

int
ucx_hs_recv (struct ucx_conn *c, uint8_t *buf, size_t cap, size_t *len,
             uint64_t deadline)
{
  uint64_t now;
  bool got;

  for (;;) {
    if (pthread_mutex_lock (&c->lock) != 0)
      abort ();
    got = c->hs_got;
    if (got) {
      *len = MIN (c->hs_len, cap);
      memcpy (buf, c->hs_buf, *len);
      c->hs_got = false;
    }
    if (pthread_mutex_unlock (&c->lock) != 0)
      abort ();
    if (got)
      return 0;
    if (ucx_failed (c))
      return rmr_err (c->err, "%s", c->reason);
    if (atomic_load (&c->shutdown_req))
      return rmr_err (ECONNABORTED, "connection closed locally");
    now = ucx_now_ms ();
    if (now >= deadline)
      return rmr_err (ETIMEDOUT, "no hello within the time limit");
    ucx_wait_flag (c, &c->hs_got, MIN (deadline, now + 100));
  }
}

/* The lanes UCX chose for the endpoint, from ucp_ep_print_info ():
 * "tcp/eth0" or "rc_mlx5/mlx5_0:1 ...", each transport/device once.
 */
static void
describe_lanes (struct ucx_conn *c, char *out, size_t n)
{
  char *text = NULL, *p, *q, *line, *save = NULL;
  size_t len = 0, used = 0;
  FILE *f;

  out[0] = '\0';
  f = open_memstream (&text, &len);
  if (!f)
    return;
  if (pthread_rwlock_rdlock (&c->ep_lock) != 0)
    abort ();
  ucx_lock ();
  if (c->ep)
    ucp_ep_print_info (c->ep, f);
  ucx_unlock ();
  pthread_rwlock_unlock (&c->ep_lock);
  fclose (f);
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    /* "#                 lane[0]:  2:tcp/eth0.0 md[1] ..." */
    p = strstr (line, "lane[");
    if (!p || !(p = strchr (p, ':')) || !(p = strchr (p + 1, ':')))
      continue;
    p++;
    q = p + strcspn (p, " .");
    if (q == p || (size_t) (q - p) >= n)
      continue;
    *q = '\0';
    if (strstr (out, p))
      continue;
    used +=
      snprintf (out + used, n - MIN (used, n), "%s%s", used ? " " : "", p);
    if (used >= n)
      break;
  }
  free (text);
}

void
ucx_conn_describe (struct ucx_conn *c, bool authenticated, const char *identity)
{
  char lanes[80];

  snprintf (c->base.security, sizeof c->base.security, "%s",
            authenticated ? "PSK challenge-response (HMAC-SHA256), "
                            "not encrypted"
                          : "plaintext");
  snprintf (c->base.identity, sizeof c->base.identity, "%s",
            authenticated ? identity : "");
  describe_lanes (c, lanes, sizeof lanes);
  snprintf (c->base.path, sizeof c->base.path, "ucx%s%s", lanes[0] ? " " : "",
            lanes);
}

/* The connecting side of the preamble (ucx-auth.h), under the process's
 * key configuration; the table of modes is tcp's (transport-tcp.c).
 */
static int
client_preamble (struct ucx_conn *c, uint64_t deadline)
{
  const struct rmr_tls *t = rmr_tls_current ();
  enum rmr_tls_mode mode = rmr_tls_mode (t);
  struct rmr_ucx_c1 c1 = {.hello = {.version = RMR_HELLO_VERSION}};
  struct rmr_ucx_s1 s1;
  uint8_t buf[RMR_UCX_C1_MAX], want[RMR_UCX_PROOF], proof[RMR_UCX_PROOF];
  const uint8_t *key = NULL;
  size_t len, keylen = 0;
  int r;

  if (mode != RMR_TLS_OFF) {
    c1.hello.flags |= RMR_HELLO_TLS;
    snprintf (c1.identity, sizeof c1.identity, "%s", rmr_tls_username (t));
    if (rmr_tls_key (t, c1.identity, &key, &keylen) < 0)
      return rmr_err (ENOKEY, "no key for our identity '%s'", c1.identity);
    r = rmr_ucx_nonce (c1.nonce);
    if (r < 0)
      return r;
  }
  len = rmr_ucx_c1_encode (&c1, buf);
  r = ucx_hs_send (c, buf, len, deadline);
  if (r < 0)
    return r;
  r = ucx_hs_recv (c, buf, sizeof buf, &len, deadline);
  if (r == -ETIMEDOUT)
    return rmr_err (ETIMEDOUT, "no hello from the node in time (not an "
                               "rmr-storaged listening on ucx:?)");
  if (r < 0) {
    rmr_err_prefix ("during the hello: ");
    return r;
  }
  if (rmr_ucx_s1_decode (buf, len, &s1) < 0)
    return -EPROTO;
  r = rmr_hello_verdict (mode, &s1.hello);
  if (r <= 0) {
    if (r == 0)
      ucx_conn_describe (c, false, "");
    return r;
  }
  r = rmr_ucx_proof (key, keylen, true, c1.nonce, s1.nonce, c1.identity, want);
  if (r < 0)
    return r;
  if (!rmr_ucx_proof_equal (want, s1.proof))
    return rmr_err (EACCES,
                    "the node's proof does not match: it holds another key "
                    "for identity '%s' (check both tls-psk key files)",
                    c1.identity);
  r =
    rmr_ucx_proof (key, keylen, false, c1.nonce, s1.nonce, c1.identity, proof);
  if (r < 0)
    return r;
  r = ucx_hs_send (c, proof, sizeof proof, deadline);
  if (r < 0)
    return r;
  ucx_conn_describe (c, true, c1.identity);
  return 0;
}

static int
connect_one (struct ucx_conn *c, const struct addrinfo *ai)
{
  ucp_ep_params_t ep = {
    .field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                  UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                  UCP_EP_PARAM_FIELD_ERR_HANDLER,
    .flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
    .sockaddr = {.addr = ai->ai_addr, .addrlen = ai->ai_addrlen},
    .err_mode = UCP_ERR_HANDLING_MODE_PEER,
    .err_handler = {.cb = ucx_ep_error},
  };
  ucs_status_t st;

  ucx_lock ();
  st = ucp_ep_create (c->worker, &ep, &c->ep);
  if (st == UCS_OK)
    ucx_ep_register_unlocked (c);
  ucx_unlock ();
  ucx_kick ();
  if (st != UCS_OK) {
    c->ep = NULL;
    return rmr_err (ucx_errno_of (st), "connect: %s", ucs_status_string (st));
  }
  return 0;
}

int
ucx_connect (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
             struct rmr_conn **out)
{
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
  struct addrinfo *res, *ai;
  char port[8], name[300];
  uint64_t tmo = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                  : DEFAULT_CONNECT_TIMEOUT_MS;
  uint64_t deadline = ucx_now_ms () + tmo;
  struct ucx_conn *c = NULL;
  int r = -EHOSTUNREACH;

  rmr_addr_format (addr, name, sizeof name);
  snprintf (port, sizeof port, "%u", addr->port);
  r = getaddrinfo (addr->host, port, &hints, &res);
  if (r != 0)
    return rmr_err (EHOSTUNREACH, "%s: cannot resolve host: %s", name,
                    gai_strerror (r));
  for (ai = res; ai; ai = ai->ai_next) {
    r = ucx_conn_new (opts, &c);
    if (r < 0)
      break;
    c->base.peer = *addr;
    snprintf (c->base.peer_name, sizeof c->base.peer_name, "%s", name);
    r = connect_one (c, ai);
    if (r == 0)
      r = client_preamble (c, deadline);
    if (r == 0)
      break;
    ucx_conn_destroy (c);
    c = NULL;
    if (r != -ECONNRESET && r != -EHOSTUNREACH && r != -ECONNREFUSED)
      break; /* a refusal or a timeout: the next address will not do */
  }
  freeaddrinfo (res);
  if (r == -ECONNREFUSED && strchr (addr->host, ':')) {
    /* transport-ucx-listen.c: ipv6_unsupported (). */
    char why[400];
    snprintf (why, sizeof why, "%s", rmr_get_error ());
    return rmr_err (ECONNREFUSED,
                    "%s: %s (IPv6 over UCX's tcp needs "
                    "UCX_TCP_AF_PRIO=inet6,inet on both sides)",
                    name, why);
  }
  if (r < 0) {
    rmr_err_prefix ("%s: ", name);
    return r;
  }
  *out = &c->base;
  return 0;
}

void
ucx_name_of_sockaddr (const struct sockaddr *sa, char *buf, size_t n)
{
  char host[INET6_ADDRSTRLEN] = "?";

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
    inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
    snprintf (buf, n, "ucx:%s:%u", host, ntohs (in->sin_port));
  }
  else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
    inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof host);
    snprintf (buf, n, "ucx:[%s]:%u", host, ntohs (in6->sin6_port));
  }
  else
    snprintf (buf, n, "ucx:?");
}
