/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ucx transport's connection preamble: the hello (proto.h) and, when
 * both sides have keys, a mutual challenge-response with the pre-shared
 * keys of the TLS configuration (tls.h).  TLS cannot wrap UCX (it has no
 * byte stream to run over, and RDMA writes bypass any record layer), so
 * on ucx the key authenticates the peer at connect and nothing more:
 * what follows is neither encrypted nor integrity-protected (README,
 * "Security").
 *
 * Three messages, little-endian, each one UCX active message:
 *
 *   C1 (connecting side)  hello (16) [nonce_c (32) idlen (1) identity]
 *   S1 (listening side)   hello (16) [nonce_s (32) proof_s (32)]
 *   C2 (connecting side)  proof_c (32)
 *
 * The bracketed parts are there when the hello's RMR_HELLO_TLS flag is
 * ("authenticate"; the same table of modes as tcp's TLS decides it).
 * proof_X = HMAC-SHA256 (key of identity, label_X || nonce_c || nonce_s
 * || identity), with different labels for the two sides so neither proof
 * can be reflected back.  The connecting side checks proof_s before it
 * sends proof_c, so a node without our key learns nothing it could use;
 * the listening side checks proof_c before the connection reaches a
 * pool.  An identity the node does not know gets S1 with the refusal
 * RMR_HELLO_UNKNOWN_ID.
 */
#ifndef RMR_UCX_AUTH_H
#define RMR_UCX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "tls.h"

#define RMR_UCX_NONCE 32
#define RMR_UCX_PROOF 32
#define RMR_UCX_C1_MAX (RMR_HELLO_SIZE + RMR_UCX_NONCE + 1 + RMR_TLS_ID_MAX)
#define RMR_UCX_S1_MAX (RMR_HELLO_SIZE + RMR_UCX_NONCE + RMR_UCX_PROOF)

struct rmr_ucx_c1 {
  struct rmr_hello hello;
  uint8_t nonce[RMR_UCX_NONCE];
  char identity[RMR_TLS_ID_MAX + 1];
};

struct rmr_ucx_s1 {
  struct rmr_hello hello;
  uint8_t nonce[RMR_UCX_NONCE];
  uint8_t proof[RMR_UCX_PROOF];
};

/* Encode into buf (RMR_UCX_C1_MAX / RMR_UCX_S1_MAX bytes): the length. */
size_t rmr_ucx_c1_encode (const struct rmr_ucx_c1 *m, uint8_t *buf);
size_t rmr_ucx_s1_encode (const struct rmr_ucx_s1 *m, uint8_t *buf);
/* Decode len bytes: 0, or -EPROTO naming the bad field. */
int rmr_ucx_c1_decode (const uint8_t *buf, size_t len, struct rmr_ucx_c1 *m);
int rmr_ucx_s1_decode (const uint8_t *buf, size_t len, struct rmr_ucx_s1 *m);

/* Fresh random nonce: 0 or -errno. */
int rmr_ucx_nonce (uint8_t out[RMR_UCX_NONCE]);

/* proof of the listening side (server) or the connecting side: 0 or
 * -errno (GnuTLS refused).
 */
int rmr_ucx_proof (const uint8_t *key, size_t keylen, bool server,
                   const uint8_t nonce_c[RMR_UCX_NONCE],
                   const uint8_t nonce_s[RMR_UCX_NONCE], const char *identity,
                   uint8_t out[RMR_UCX_PROOF]);

/* Constant-time comparison of two proofs. */
bool rmr_ucx_proof_equal (const uint8_t a[RMR_UCX_PROOF],
                          const uint8_t b[RMR_UCX_PROOF]);

#endif /* RMR_UCX_AUTH_H */
