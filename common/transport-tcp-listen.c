/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The tcp transport's listener: accept, then each new connection's hello
 * and TLS handshake on a thread of its own, and only then the owner's
 * accept callback (transport.h).
 *
 * Why a thread per handshake: a TLS handshake takes round trips and a
 * peer may stall in the middle of one; on the accept thread it would
 * hold up every other peer.  The threads are bounded: at most
 * max_handshakes at once (the handshake slots, transport-impl.h); a
 * connection beyond that is answered with a BUSY hello and closed at
 * once.  Each handshake has handshake_timeout_ms in all, so 200 sockets
 * opened and left silent cost at most max_handshakes threads for that
 * long and nothing else: no session, no pool state (DESIGN 9).
 *
 * The listening side of the hello:
 *   our mode   client asks TLS     client asks none
 *   off        plaintext           plaintext
 *   on         TLS                 plaintext
 *   require    TLS                 refused (TLS_REQUIRED)
 * The mode and keys are the process's TLS configuration when the
 * listener was opened.
 *
 * Closing: the accept thread ends first, so no handshake starts any
 * more; then the slots' close (rmr_hs_close ()) stops handshakes from
 * reaching accept, shuts down the sockets of those in their hello or
 * handshake and waits until every handshake thread is done, so accept is
 * never called on a freed listener.  A thread leaves its slot before it
 * hands its connection over: the owner may free it at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "error.h"
#include "parse.h"
#include "transport-tcp.h"
#include "util.h"

struct tcp_listener {
  struct rmr_listener base; /* must be first */
  int fd;
  int wakefd;
  pthread_t thread; /* the accept thread */
  const struct rmr_tls *tls;
  char name[300];
  /* opts, accept, the connections in their hello or handshake (locking:
   * transport-impl.h).
   */
  struct rmr_hs_slots slots;
};

static void
name_of_sockaddr (const struct sockaddr *sa, char *buf, size_t n)
{
  char host[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
    inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs (in->sin_port);
    snprintf (buf, n, "tcp:%s:%u", host, port);
  }
  else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
    inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs (in6->sin6_port);
    snprintf (buf, n, "tcp:[%s]:%u", host, port);
  }
  else
    snprintf (buf, n, "tcp:?");
}

static void
send_hello (int fd, const struct rmr_hello *h)
{
  uint8_t buf[RMR_HELLO_SIZE];

  rmr_hello_encode (h, buf);
  /* 16 bytes into a fresh socket: never blocks; a failure shows later. */
  if (send (fd, buf, sizeof buf, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
  }
}

/* The hello and TLS: 0, or -errno with the reason recorded. */
static int
server_setup (struct tcp_listener *l, struct tcp_conn *c, char *identity)
{
  enum rmr_tls_mode mode = rmr_tls_mode (l->tls);
  uint64_t tmo = l->slots.opts.handshake_timeout_ms;
  uint64_t deadline = tcp_now_ms () + tmo, now;
  struct rmr_hello req, rep;
  uint8_t buf[RMR_HELLO_SIZE];
  int r;

  r = tcp_read_deadline (c->fd, buf, sizeof buf, deadline);
  if (r == -ETIMEDOUT)
    return rmr_err (ETIMEDOUT, "no hello within %" PRIu64 " ms", tmo);
  if (r < 0)
    return rmr_err (-r, "closed before its hello: %s", strerror (-r));
  if (rmr_hello_decode (buf, false, &req) < 0)
    return -EPROTO;
  rmr_hello_answer (mode, &req, &rep);
  send_hello (c->fd, &rep);
  if (rep.refusal)
    return rmr_err (EACCES, "a plaintext session, and tls=require");
  if (!(rep.flags & RMR_HELLO_TLS)) {
    tcp_conn_describe (c);
    return 0;
  }
  now = tcp_now_ms ();
  r = rmr_tls_server_handshake (l->tls, c->fd,
                                deadline > now ? deadline - now : 1,
                                c->base.peer_name, identity, &c->tls);
  if (r < 0)
    return r;
  tcp_conn_describe (c);
  return 0;
}

static void *
hs_thread (void *arg)
{
  struct tcp_conn *c = arg;
  struct tcp_listener *l = c->listener;
  char identity[RMR_TLS_ID_MAX + 1] = "";
  int r;

  r = server_setup (l, c, identity);
  rmr_hs_done (&l->slots, &c->base, r, identity);
  return NULL;
}

/* The slots' callbacks (transport-impl.h). */
static void
hs_destroy (struct rmr_conn *c)
{
  tcp_conn_destroy ((struct tcp_conn *) c);
}

static void
hs_shutdown (struct rmr_conn *c)
{
  shutdown (((struct tcp_conn *) c)->fd, SHUT_RDWR);
}

static void
refuse (struct tcp_listener *l, const char *peer, const char *reason)
{
  if (l->slots.opts.refused)
    l->slots.opts.refused (l->slots.opaque, peer, "", reason);
}

/* A new connection: into a handshake slot and thread, or refused. */
static void
start_handshake (struct tcp_listener *l, int fd,
                 const struct sockaddr_storage *ss)
{
  struct rmr_conn_opts opts = {0};
  char peer[300], reason[120];
  struct tcp_conn *c;

  name_of_sockaddr ((const struct sockaddr *) ss, peer, sizeof peer);
  /* Never closing here: close sets it only once this thread has ended. */
  if (rmr_hs_busy (&l->slots, reason, sizeof reason)) {
    struct rmr_hello rep = {.version = RMR_HELLO_VERSION,
                            .refusal = RMR_HELLO_BUSY};

    send_hello (fd, &rep);
    close (fd);
    refuse (l, peer, reason);
    return;
  }
  c = tcp_conn_new (fd, &opts);
  if (!c) {
    close (fd);
    refuse (l, peer, "out of memory for a new connection");
    return;
  }
  snprintf (c->base.peer_name, sizeof c->base.peer_name, "%s", peer);
  c->listener = l;
  if (rmr_hs_start (&l->slots, &c->base, hs_thread, reason, sizeof reason) <
      0) {
    tcp_conn_destroy (c);
    refuse (l, peer, reason);
  }
}

static void *
accept_thread (void *arg)
{
  struct tcp_listener *l = arg;
  struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN},
                        {.fd = l->wakefd, .events = POLLIN}};
  struct sockaddr_storage ss;
  socklen_t len;
  int fd;

  for (;;) {
    if (poll (p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return NULL;
    }
    if (p[1].revents)
      return NULL;
    len = sizeof ss;
    fd = accept4 (l->fd, (struct sockaddr *) &ss, &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
        usleep (100000); /* out of resources: do not spin */
      continue;
    }
    start_handshake (l, fd, &ss);
  }
}

int
tcp_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
            rmr_accept_fn accept, void *opaque, struct rmr_listener **out)
{
  struct addrinfo hints = {
    .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC, .ai_flags = AI_PASSIVE};
  struct addrinfo *res;
  struct tcp_listener *l;
  char port[8];
  int r, fd, one = 1;

  l = calloc (1, sizeof *l);
  if (!l)
    return rmr_err (ENOMEM, "out of memory");
  if (rmr_hs_init (&l->slots, opts, accept, opaque, hs_destroy, hs_shutdown) <
      0) {
    free (l);
    return rmr_err (ENOMEM, "out of memory");
  }
  l->base.ops = &rmr_transport_tcp;
  l->tls = rmr_tls_current ();
  l->wakefd = fd = -1;
  rmr_addr_format (addr, l->name, sizeof l->name);
  snprintf (port, sizeof port, "%u", addr->port);
  r = getaddrinfo (addr->host, port, &hints, &res);
  if (r != 0) {
    rmr_err (EADDRNOTAVAIL, "listen %s: cannot resolve: %s", l->name,
             gai_strerror (r));
    rmr_hs_fini (&l->slots);
    free (l);
    return -EADDRNOTAVAIL;
  }
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    goto err;
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (res->ai_family == AF_INET6)
    setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind (fd, res->ai_addr, res->ai_addrlen) < 0 || listen (fd, 128) < 0)
    goto err;
  freeaddrinfo (res);
  res = NULL;
  l->fd = fd;
  l->wakefd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (l->wakefd < 0)
    goto err;
  r = pthread_create (&l->thread, NULL, accept_thread, l);
  if (r != 0) {
    errno = r;
    goto err;
  }
  *out = &l->base;
  return 0;

err:
  r = errno;
  if (res)
    freeaddrinfo (res);
  if (fd >= 0)
    close (fd);
  if (l->wakefd >= 0)
    close (l->wakefd);
  rmr_err (r, "listen %s: %s", l->name, strerror (r));
  rmr_hs_fini (&l->slots);
  free (l);
  return -r;
}

void
tcp_listener_close (struct rmr_listener *base)
{
  struct tcp_listener *l = (struct tcp_listener *) base;

  tcp_wake (l->wakefd);
  pthread_join (l->thread, NULL);
  rmr_hs_close (&l->slots);
  close (l->fd);
  close (l->wakefd);
  rmr_hs_fini (&l->slots);
  free (l);
}
