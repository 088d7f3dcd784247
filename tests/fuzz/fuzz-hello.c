/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the connection preamble, the hello (proto.h): the
 * first bytes any peer sends, before TLS and before any authentication
 * (DESIGN 9), and the decisions both sides take on it.
 *
 * Input layout: byte 0 picks the listener's TLS mode and byte 1 the
 * connecting side's (each modulo 3: off, on, require); the next
 * RMR_HELLO_SIZE bytes are decoded as a request (what a listener reads)
 * and as a reply (what a connecting side reads), zero-padded when short.
 *
 * Invariants, from proto.h's rules:
 *   - a decoder returns 0 or -EPROTO with a one-line message;
 *   - an accepted hello has version RMR_HELLO_VERSION, only the TLS flag,
 *     no refusal in a request, a known refusal in a reply and never a
 *     refusal that offers TLS, and encodes back to the identical bytes;
 *   - the listener's answer to an accepted request is itself an accepted
 *     reply; it offers TLS only to a request that asked and only when the
 *     listener has keys; a tls=require listener never lets plaintext in
 *     (it answers TLS or a refusal);
 *   - the connecting side's verdict on any accepted reply: TLS only if it
 *     has keys and the reply offered it; a tls=require side never goes on
 *     in plaintext; a refusal is never a success;
 *   - end to end, a listener and a connecting side that both have keys
 *     agree on TLS; if either requires TLS, the session is TLS or refused.
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "proto.h"
#include "util.h"

static void
check_accepted (const uint8_t *buf, const struct rmr_hello *h, bool reply)
{
  uint8_t again[RMR_HELLO_SIZE];

  assert (h->version == RMR_HELLO_VERSION);
  assert ((h->flags & ~RMR_HELLO_TLS) == 0);
  if (reply) {
    assert (h->refusal <= RMR_HELLO_REFUSAL_MAX);
    assert (!(h->refusal && (h->flags & RMR_HELLO_TLS)));
  }
  else
    assert (h->refusal == 0);
  rmr_hello_encode (h, again);
  assert (memcmp (again, buf, RMR_HELLO_SIZE) == 0);
}

/* The connecting side's verdict on a reply it accepted. */
static int
verdict (enum rmr_tls_mode mode, const struct rmr_hello *rep)
{
  int r = rmr_hello_verdict (mode, rep);

  if (r < 0) {
    assert (r == -EACCES || r == -ECONNREFUSED || r == -EPROTO);
    fuzz_check_message (r);
    assert (rep->refusal || mode == RMR_TLS_REQUIRE ||
            (mode == RMR_TLS_OFF && (rep->flags & RMR_HELLO_TLS)));
    return r;
  }
  assert (r == 0 || r == 1);
  assert (rep->refusal == 0);
  if (r == 1)
    assert (mode != RMR_TLS_OFF && (rep->flags & RMR_HELLO_TLS));
  else
    assert (mode != RMR_TLS_REQUIRE && !(rep->flags & RMR_HELLO_TLS));
  return r;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t buf[RMR_HELLO_SIZE] = {0}, enc[RMR_HELLO_SIZE];
  enum rmr_tls_mode lmode, cmode;
  struct rmr_hello req, rep, ans, mine;
  int r;

  if (size < 2)
    return 0;
  lmode = data[0] % 3;
  cmode = data[1] % 3;
  memcpy (buf, data + 2, MIN (size - 2, sizeof buf));

  /* What the listener reads. */
  r = rmr_hello_decode (buf, false, &req);
  if (r < 0) {
    assert (r == -EPROTO);
    fuzz_check_message (r);
  }
  else {
    check_accepted (buf, &req, false);
    rmr_hello_answer (lmode, &req, &ans);
    rmr_hello_encode (&ans, enc);
    assert (rmr_hello_decode (enc, true, &rep) == 0);
    check_accepted (enc, &rep, true);
    assert (rep.refusal == RMR_HELLO_OK ||
            rep.refusal == RMR_HELLO_TLS_REQUIRED);
    if (rep.flags & RMR_HELLO_TLS)
      assert ((req.flags & RMR_HELLO_TLS) && lmode != RMR_TLS_OFF);
    if (lmode == RMR_TLS_REQUIRE)
      assert ((rep.flags & RMR_HELLO_TLS) || rep.refusal);
    if (lmode != RMR_TLS_OFF && (req.flags & RMR_HELLO_TLS))
      assert (rep.flags & RMR_HELLO_TLS);
  }

  /* What a connecting side reads. */
  r = rmr_hello_decode (buf, true, &rep);
  if (r < 0) {
    assert (r == -EPROTO);
    fuzz_check_message (r);
  }
  else {
    check_accepted (buf, &rep, true);
    verdict (cmode, &rep);
  }

  /* End to end: the request this side would send, the listener's answer,
   * this side's verdict.
   */
  memset (&mine, 0, sizeof mine);
  mine.version = RMR_HELLO_VERSION;
  if (cmode != RMR_TLS_OFF)
    mine.flags = RMR_HELLO_TLS;
  rmr_hello_answer (lmode, &mine, &ans);
  r = verdict (cmode, &ans);
  if (lmode != RMR_TLS_OFF && cmode != RMR_TLS_OFF)
    assert (r == 1);
  if (lmode == RMR_TLS_REQUIRE || cmode == RMR_TLS_REQUIRE)
    assert (r == 1 || r < 0);
  if (lmode == RMR_TLS_OFF && cmode == RMR_TLS_OFF)
    assert (r == 0);
  return 0;
}

void
fuzz_builtin (void)
{
  static const uint8_t modes[][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 2},
                                     {2, 0}, {1, 2}, {2, 1}};
  static const uint8_t bodies[][RMR_HELLO_SIZE] = {
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 0, 0, 0, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 1, 0, 0, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 0, 0, 1, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 0, 0, 2, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 1, 0, 1, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 2, 0, 0, 0, 0, 0, 0, 0},
    {'R', 'M', 'R', 'H', 'E', 'L', 'L', 'O', 1, 0, 2, 0, 0, 0, 0, 0},
    {'R', 'M', 'R', '1', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
  };
  uint8_t in[2 + RMR_HELLO_SIZE];
  size_t i, j;

  for (i = 0; i < ARRAY_SIZE (modes); i++)
    for (j = 0; j < ARRAY_SIZE (bodies); j++) {
      in[0] = modes[i][0];
      in[1] = modes[i][1];
      memcpy (in + 2, bodies[j], RMR_HELLO_SIZE);
      fuzz_input (in, sizeof in);
    }
  fuzz_input (in, 5); /* short */
}
