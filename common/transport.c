/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Transport-independent entry points: pick the implementation by the
 * address's kind and forward through its vtable (transport.h); and the
 * receive threads' poll timeout, the same for every transport
 * (transport-impl.h).
 */
#include <errno.h>

#include "error.h"
#include "transport-impl.h"
#include "transport.h"
#include "util.h"

static const struct rmr_transport_ops *
ops_for (enum rmr_transport_kind kind)
{
  switch (kind) {
  case RMR_TRANSPORT_TCP: return &rmr_transport_tcp;
  case RMR_TRANSPORT_UCX: return &rmr_transport_ucx;
  default: return NULL;
  }
}

int
rmr_conn_connect (const struct rmr_addr *addr, const struct rmr_conn_opts *opts,
                  const struct rmr_conn_handler *handler, void *opaque,
                  struct rmr_conn **out)
{
  const struct rmr_transport_ops *ops = ops_for (addr->kind);
  struct rmr_conn *c;
  int r;

  if (!ops)
    return rmr_err (EPROTONOSUPPORT, "unknown transport %d", (int) addr->kind);
  r = ops->connect (addr, opts, &c);
  if (r < 0)
    return r;
  r = ops->start (c, handler, opaque);
  if (r < 0) {
    ops->free (c);
    return r;
  }
  *out = c;
  return 0;
}

int
rmr_listen (const struct rmr_addr *addr, const struct rmr_listen_opts *opts,
            rmr_accept_fn accept, void *opaque, struct rmr_listener **out)
{
  const struct rmr_transport_ops *ops = ops_for (addr->kind);

  if (!ops)
    return rmr_err (EPROTONOSUPPORT, "unknown transport %d", (int) addr->kind);
  return ops->listen (addr, opts, accept, opaque, out);
}

void
rmr_listener_close (struct rmr_listener *l)
{
  if (l)
    l->ops->listener_close (l);
}

int
rmr_conn_send (struct rmr_conn *c, const struct rmr_hdr *hdr,
               const struct iovec *iov, int iovcnt)
{
  return c->ops->send (c, hdr, iov, iovcnt);
}

int
rmr_conn_send_many (struct rmr_conn *c, const struct rmr_msg *msgs, int n)
{
  return c->ops->send_many (c, msgs, n);
}

void
rmr_conn_send_async (struct rmr_conn *c, struct rmr_send *s)
{
  int r;

  if (c->ops->send_async) {
    c->ops->send_async (c, s);
    return;
  }
  r = s->nmsgs ? c->ops->send_many (c, s->msgs, s->nmsgs)
               : c->ops->send (c, &s->hdr, s->iov, s->iovcnt);
  s->done (s, r);
}

void
rmr_conn_pause (struct rmr_conn *c)
{
  c->ops->pause (c);
}

int
rmr_conn_resume (struct rmr_conn *c)
{
  return c->ops->resume (c);
}

void
rmr_conn_shutdown (struct rmr_conn *c)
{
  c->ops->shutdown (c);
}

void
rmr_conn_close (struct rmr_conn *c)
{
  if (c)
    c->ops->free (c);
}

int
rmr_conn_poll_timeout (const struct rmr_conn_opts *opts, uint64_t last_rx_ms,
                       uint64_t now)
{
  uint64_t t = UINT64_MAX;

  if (opts->keepalive_ms)
    t = MIN (t, opts->keepalive_ms / 2 + 1);
  if (opts->idle_timeout_ms) {
    uint64_t deadline = last_rx_ms + opts->idle_timeout_ms;
    t = MIN (t, deadline > now ? deadline - now : 0);
  }
  return t == UINT64_MAX ? -1 : (int) MIN (t, 1000000);
}
