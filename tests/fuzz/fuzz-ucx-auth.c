/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for the ucx transport's first messages (ucx-auth.h):
 * C1, what a listener reads from anyone who connects, and S1, what a
 * connecting side reads from whatever answers, both before any proof of
 * a key.
 *
 * Input: the bytes are decoded as a C1 and as an S1, whole (the
 * transport hands a decoder one active message, of any length up to
 * RMR_UCX_C1_MAX).
 *
 * Invariants, from ucx-auth.h's layout:
 *   - a decoder returns 0 or -EPROTO with a one-line message;
 *   - an accepted message encodes back to exactly the bytes it came from
 *     (nothing ignored, nothing added);
 *   - an accepted C1 without the TLS flag is the bare hello and has no
 *     identity; with it, an identity of 1 to RMR_TLS_ID_MAX printable
 *     bytes without ':' or a space (it names a key in the key file and a
 *     line of the refusal log);
 *   - an accepted S1 is the bare hello, or the hello with the TLS flag,
 *     a nonce and a proof (RMR_UCX_S1_MAX bytes).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "ucx-auth.h"
#include "util.h"

static void
check_c1 (const uint8_t *data, size_t size)
{
  uint8_t again[RMR_UCX_C1_MAX];
  struct rmr_ucx_c1 m;
  size_t n, i;
  int r;

  r = rmr_ucx_c1_decode (data, size, &m);
  if (r < 0) {
    assert (r == -EPROTO);
    fuzz_check_message (r);
    return;
  }
  n = strlen (m.identity);
  if (!(m.hello.flags & RMR_HELLO_TLS)) {
    assert (size == RMR_HELLO_SIZE);
    assert (n == 0);
  }
  else {
    assert (n >= 1 && n <= RMR_TLS_ID_MAX);
    for (i = 0; i < n; i++)
      assert (m.identity[i] > ' ' && m.identity[i] <= '~' &&
              m.identity[i] != ':');
  }
  assert (rmr_ucx_c1_encode (&m, again) == size);
  assert (memcmp (again, data, size) == 0);
}

static void
check_s1 (const uint8_t *data, size_t size)
{
  uint8_t again[RMR_UCX_S1_MAX];
  struct rmr_ucx_s1 m;
  int r;

  r = rmr_ucx_s1_decode (data, size, &m);
  if (r < 0) {
    assert (r == -EPROTO);
    fuzz_check_message (r);
    return;
  }
  assert (size ==
          (m.hello.flags & RMR_HELLO_TLS ? RMR_UCX_S1_MAX : RMR_HELLO_SIZE));
  assert (rmr_ucx_s1_encode (&m, again) == size);
  assert (memcmp (again, data, size) == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size > RMR_UCX_C1_MAX)
    return 0; /* the transport refuses a longer hello before decoding */
  check_c1 (data, size);
  check_s1 (data, size);
  return 0;
}

void
fuzz_builtin (void)
{
  struct rmr_ucx_c1 c1 = {.hello = {.version = RMR_HELLO_VERSION}};
  struct rmr_ucx_s1 s1 = {.hello = {.version = RMR_HELLO_VERSION}};
  uint8_t buf[RMR_UCX_C1_MAX];
  size_t len;

  /* A plaintext C1 and S1, then authenticated ones, then each cut short
   * and one byte too long, and identities on the edge.
   */
  len = rmr_ucx_c1_encode (&c1, buf);
  fuzz_input (buf, len);
  fuzz_input (buf, len - 1);
  c1.hello.flags = RMR_HELLO_TLS;
  memset (c1.nonce, 0xa5, sizeof c1.nonce);
  snprintf (c1.identity, sizeof c1.identity, "client");
  len = rmr_ucx_c1_encode (&c1, buf);
  fuzz_input (buf, len);
  fuzz_input (buf, len - 1);
  fuzz_input (buf, len + 1);
  fuzz_input (buf, RMR_HELLO_SIZE + RMR_UCX_NONCE);
  buf[len - 1] = ':';
  fuzz_input (buf, len);
  buf[len - 1] = ' ';
  fuzz_input (buf, len);
  memset (c1.identity, 'x', RMR_TLS_ID_MAX);
  c1.identity[RMR_TLS_ID_MAX] = '\0';
  len = rmr_ucx_c1_encode (&c1, buf);
  fuzz_input (buf, len);
  buf[RMR_HELLO_SIZE + RMR_UCX_NONCE] = 0;
  fuzz_input (buf, RMR_HELLO_SIZE + RMR_UCX_NONCE + 1);

  len = rmr_ucx_s1_encode (&s1, buf);
  fuzz_input (buf, len);
  s1.hello.flags = RMR_HELLO_TLS;
  memset (s1.nonce, 0x5a, sizeof s1.nonce);
  memset (s1.proof, 0x3c, sizeof s1.proof);
  len = rmr_ucx_s1_encode (&s1, buf);
  fuzz_input (buf, len);
  fuzz_input (buf, len - 1);
  fuzz_input (buf, len + 1);
  s1.hello.flags = 0;
  s1.hello.refusal = RMR_HELLO_UNKNOWN_ID;
  len = rmr_ucx_s1_encode (&s1, buf);
  fuzz_input (buf, len);
  fuzz_input (buf, 0);
}
