/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx preamble's messages and proofs (ucx-auth.h): encoding, and
 * HMAC-SHA256 and the nonces through GnuTLS, the library the tcp side's
 * TLS uses already.  No state: the transport drives the exchange.
 */
#include <errno.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "error.h"
#include "ucx-auth.h"

static const char label_server[16] = "rmr-ucx-server";
static const char label_client[16] = "rmr-ucx-client";

size_t
rmr_ucx_c1_encode (const struct rmr_ucx_c1 *m, uint8_t *buf)
{
  size_t n = strlen (m->identity);

  rmr_hello_encode (&m->hello, buf);
  if (!(m->hello.flags & RMR_HELLO_TLS))
    return RMR_HELLO_SIZE;
  memcpy (buf + RMR_HELLO_SIZE, m->nonce, RMR_UCX_NONCE);
  buf[RMR_HELLO_SIZE + RMR_UCX_NONCE] = n;
  memcpy (buf + RMR_HELLO_SIZE + RMR_UCX_NONCE + 1, m->identity, n);
  return RMR_HELLO_SIZE + RMR_UCX_NONCE + 1 + n;
}

/* The hello every first message starts with: 1 when authentication
 * follows, 0 when the hello is the whole message, -EPROTO (recorded).
 */
static int
decode_prefix (const uint8_t *buf, size_t len, bool reply, struct rmr_hello *h)
{
  if (len < RMR_HELLO_SIZE)
    return rmr_err (EPROTO, "bad hello: %zu bytes, at least %d", len,
                    RMR_HELLO_SIZE);
  if (rmr_hello_decode (buf, reply, h) < 0)
    return -EPROTO;
  if (h->flags & RMR_HELLO_TLS)
    return 1;
  if (len != RMR_HELLO_SIZE)
    return rmr_err (EPROTO,
                    "bad hello: %zu bytes without authentication, "
                    "expected %d",
                    len, RMR_HELLO_SIZE);
  return 0;
}

int
rmr_ucx_c1_decode (const uint8_t *buf, size_t len, struct rmr_ucx_c1 *m)
{
  size_t n, i;
  int r;

  memset (m, 0, sizeof *m);
  r = decode_prefix (buf, len, false, &m->hello);
  if (r <= 0)
    return r;
  if (len < RMR_HELLO_SIZE + RMR_UCX_NONCE + 1)
    return rmr_err (EPROTO,
                    "bad hello: %zu bytes, too short for a nonce and "
                    "an identity",
                    len);
  memcpy (m->nonce, buf + RMR_HELLO_SIZE, RMR_UCX_NONCE);
  n = buf[RMR_HELLO_SIZE + RMR_UCX_NONCE];
  if (n == 0 || n > RMR_TLS_ID_MAX ||
      len != RMR_HELLO_SIZE + RMR_UCX_NONCE + 1 + n)
    return rmr_err (EPROTO, "bad hello: identity length %zu in %zu bytes", n,
                    len);
  memcpy (m->identity, buf + RMR_HELLO_SIZE + RMR_UCX_NONCE + 1, n);
  for (i = 0; i < n; i++)
    if (m->identity[i] <= ' ' || m->identity[i] > '~' || m->identity[i] == ':')
      return rmr_err (EPROTO, "bad hello: identity byte %zu is 0x%02x", i,
                      (unsigned char) m->identity[i]);
  return 0;
}

size_t
rmr_ucx_s1_encode (const struct rmr_ucx_s1 *m, uint8_t *buf)
{
  rmr_hello_encode (&m->hello, buf);
  if (!(m->hello.flags & RMR_HELLO_TLS))
    return RMR_HELLO_SIZE;
  memcpy (buf + RMR_HELLO_SIZE, m->nonce, RMR_UCX_NONCE);
  memcpy (buf + RMR_HELLO_SIZE + RMR_UCX_NONCE, m->proof, RMR_UCX_PROOF);
  return RMR_UCX_S1_MAX;
}

int
rmr_ucx_s1_decode (const uint8_t *buf, size_t len, struct rmr_ucx_s1 *m)
{
  int r;

  memset (m, 0, sizeof *m);
  r = decode_prefix (buf, len, true, &m->hello);
  if (r <= 0)
    return r;
  if (len != RMR_UCX_S1_MAX)
    return rmr_err (EPROTO,
                    "bad hello: %zu bytes with authentication, "
                    "expected %d",
                    len, RMR_UCX_S1_MAX);
  memcpy (m->nonce, buf + RMR_HELLO_SIZE, RMR_UCX_NONCE);
  memcpy (m->proof, buf + RMR_HELLO_SIZE + RMR_UCX_NONCE, RMR_UCX_PROOF);
  return 0;
}

int
rmr_ucx_nonce (uint8_t out[RMR_UCX_NONCE])
{
  int r = gnutls_rnd (GNUTLS_RND_NONCE, out, RMR_UCX_NONCE);

  if (r < 0)
    return rmr_err (EIO, "random nonce: %s", gnutls_strerror (r));
  return 0;
}

int
rmr_ucx_proof (const uint8_t *key, size_t keylen, bool server,
               const uint8_t nonce_c[RMR_UCX_NONCE],
               const uint8_t nonce_s[RMR_UCX_NONCE], const char *identity,
               uint8_t out[RMR_UCX_PROOF])
{
  uint8_t msg[16 + 2 * RMR_UCX_NONCE + RMR_TLS_ID_MAX];
  size_t n = strnlen (identity, RMR_TLS_ID_MAX);
  int r;

  memcpy (msg, server ? label_server : label_client, 16);
  memcpy (msg + 16, nonce_c, RMR_UCX_NONCE);
  memcpy (msg + 16 + RMR_UCX_NONCE, nonce_s, RMR_UCX_NONCE);
  memcpy (msg + 16 + 2 * RMR_UCX_NONCE, identity, n);
  r = gnutls_hmac_fast (GNUTLS_MAC_SHA256, key, keylen, msg,
                        16 + 2 * RMR_UCX_NONCE + n, out);
  if (r < 0)
    return rmr_err (EIO, "HMAC-SHA256: %s", gnutls_strerror (r));
  return 0;
}

bool
rmr_ucx_proof_equal (const uint8_t a[RMR_UCX_PROOF],
                     const uint8_t b[RMR_UCX_PROOF])
{
  uint8_t d = 0;
  size_t i;

  for (i = 0; i < RMR_UCX_PROOF; i++)
    d |= a[i] ^ b[i];
  return d == 0;
}
