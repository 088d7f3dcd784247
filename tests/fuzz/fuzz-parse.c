/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the user-input parsers (common/parse.c).
 *
 * The input, cut at its first NUL, is given as a string to every parser
 * of parse.h.  Invariants checked:
 *   - a parser returns 0, -EINVAL or -ERANGE (rmr_check_* only 0 or
 *     -EINVAL); on failure it leaves the output alone and records a
 *     one-line message that starts with the field name;
 *   - what is accepted is in range: sizes from the sectors syntax are
 *     multiples of 512, durations at most one day, names 1-63 bytes of the
 *     allowed characters, member ids at most RMR_MEMBER_ID_MAX, ports
 *     non-zero, hosts non-empty;
 *   - a parsed number printed in decimal parses back to itself, and an
 *     address printed by rmr_addr_format () parses back to the same
 *     address; formatting into any smaller buffer stays NUL-terminated;
 *   - metrics_addr_check () accepts only tcp: addresses that parse.
 *
 * Built with clang -fsanitize=fuzzer, libFuzzer's main () drives it;
 * without libFuzzer, the weak main () of fuzz-main.c replays files or the
 * built-in inputs of fuzz_builtin () below (tests/fuzz/README).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "fuzz.h"
#include "metrics.h"
#include "parse.h"
#include "util.h"

#define SENTINEL UINT64_C (0x5a5a5a5a5a5a5a5a)

/* A failure: the errno, and the message naming the field on one line. */
static void
check_failure (int r, const char *what, bool range_ok)
{
  const char *msg = rmr_get_error ();

  assert (r == -EINVAL || (range_ok && r == -ERANGE));
  assert (rmr_get_errno () == -r);
  assert (msg != NULL);
  assert (strncmp (msg, what, strlen (what)) == 0);
  assert (msg[strlen (what)] == ':');
  assert (strchr (msg, '\n') == NULL);
}

static void
check_decimal_round_trip (uint64_t v)
{
  char text[32];
  uint64_t again = SENTINEL;

  snprintf (text, sizeof text, "%" PRIu64, v);
  assert (rmr_parse_bytes ("again", text, &again) == 0);
  assert (again == v);
}

static void
check_name (int r, const char *what, const char *s, const char *extra)
{
  size_t i, len = strlen (s);

  if (r < 0) {
    check_failure (r, what, false);
    return;
  }
  assert (r == 0);
  assert (len >= 1 && len <= 63);
  for (i = 0; i < len; i++) {
    char c = s[i];

    assert ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
            (c >= 'A' && c <= 'Z') || strchr (extra, c) != NULL);
  }
}

static void
check_addr (const char *s)
{
  struct rmr_addr a, b;
  char text[300], small[300];
  size_t n, len;
  int r;

  memset (&a, 0xa5, sizeof a);
  r = rmr_addr_parse ("server", s, &a);
  if (r < 0) {
    struct rmr_addr untouched;

    check_failure (r, "server", true);
    memset (&untouched, 0xa5, sizeof untouched);
    assert (memcmp (&a, &untouched, sizeof a) == 0);
    return;
  }
  assert (r == 0);
  assert (a.kind == RMR_TRANSPORT_TCP || a.kind == RMR_TRANSPORT_UCX);
  assert (a.port != 0);
  assert (a.host[0] != '\0');
  assert (memchr (a.host, '\0', sizeof a.host) != NULL);

  rmr_addr_format (&a, text, sizeof text);
  len = strlen (text);
  memset (&b, 0, sizeof b);
  r = rmr_addr_parse ("again", text, &b);
  assert (r == 0);
  assert (a.kind == b.kind && a.port == b.port);
  assert (strcmp (a.host, b.host) == 0);

  /* Truncation: a prefix of the full text, always terminated. */
  for (n = 1; n <= len + 1; n++) {
    memset (small, 'z', sizeof small);
    rmr_addr_format (&a, small, n);
    assert (strlen (small) == MIN (n - 1, len));
    assert (memcmp (small, text, strlen (small)) == 0);
    assert (small[n] == 'z');
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *s;
  uint64_t v;
  uint32_t id;
  bool b;
  int r;

  s = malloc (size + 1);
  assert (s != NULL);
  memcpy (s, data, size);
  s[size] = '\0';

  v = SENTINEL;
  r = rmr_parse_bytes ("size", s, &v);
  if (r < 0) {
    check_failure (r, "size", true);
    assert (v == SENTINEL);
  }
  else {
    assert (r == 0);
    check_decimal_round_trip (v);
  }

  v = SENTINEL;
  r = rmr_parse_sectors_or_bytes ("mapped_size", s, &v);
  if (r < 0) {
    check_failure (r, "mapped_size", true);
    assert (v == SENTINEL);
  }
  else {
    uint64_t bytes;

    assert (r == 0);
    assert (v % 512 == 0);
    /* A suffixed size means the same bytes in both syntaxes. */
    if (rmr_parse_bytes ("size", s, &bytes) == 0 &&
        strspn (s, "0123456789") != strlen (s))
      assert (bytes == v);
  }

  v = SENTINEL;
  r = rmr_parse_uint ("count", s, 0, UINT64_MAX, &v);
  if (r < 0) {
    check_failure (r, "count", true);
    assert (v == SENTINEL);
  }
  else {
    check_decimal_round_trip (v);
    v = SENTINEL;
    r = rmr_parse_uint ("queue_depth", s, 1, 4096, &v);
    if (r == 0)
      assert (v >= 1 && v <= 4096);
    else
      assert (r == -ERANGE && v == SENTINEL);
  }

  b = true;
  r = rmr_parse_bool ("sync", s, &b);
  if (r < 0) {
    check_failure (r, "sync", false);
    assert (b);
  }

  v = SENTINEL;
  r = rmr_parse_duration_ms ("timeout", s, &v);
  if (r < 0) {
    check_failure (r, "timeout", true);
    assert (v == SENTINEL);
  }
  else
    assert (v <= 24 * 60 * 60 * 1000);

  check_name (rmr_check_pool_name ("pool_name", s), "pool_name", s, "._-");
  check_name (rmr_check_sess_name ("sessname", s), "sessname", s, "._@:-");

  id = 12345;
  r = rmr_parse_member_id ("member_id", s, &id);
  if (r < 0) {
    check_failure (r, "member_id", true);
    assert (id == 12345);
  }
  else
    assert (id <= RMR_MEMBER_ID_MAX);

  check_addr (s);

  /* metrics= (metrics-http.c): only tcp addresses, which parse. */
  r = metrics_addr_check ("metrics", s);
  if (r < 0)
    check_failure (r, "metrics", true);
  else {
    struct rmr_addr a;
    assert (strncasecmp (s, "tcp:", 4) == 0);
    assert (rmr_addr_parse ("metrics", s, &a) == 0);
  }

  free (s);
  return 0;
}

void
fuzz_builtin (void)
{
  static const char *const inputs[] = {
    "",
    "0",
    "131072",
    "128K",
    "1GiB",
    "1048576B",
    "1000B",
    "18446744073709551615",
    "18446744073709551616",
    "36028797018963968",
    "16777216T",
    "-1",
    "1.5G",
    "yes",
    "off",
    "30s",
    "500ms",
    "2m",
    "0.5s",
    "86401",
    "pool1",
    "clt1@srv1:7700",
    "4294967294",
    "4294967295",
    "tcp:127.0.0.1:7700",
    "tcp:[::1]:7700",
    "tcp:[fe80::1%eth0]:7700",
    "ucx:host:1",
    "ip:10.0.0.1",
    "ip:10.0.0.1:7701",
    "ip:[::1]",
    "localhost:7700",
    "[::1]:7700",
    "tcp:127.0.0.1:0",
    "tcp:127.0.0.1:65536",
    "tcp:[::1:7700",
    "tcp:::1]:7700",
    "tcp::7700",
    "udp:host:7700",
    "fe80::1",
    "tcp:10.0.0.256:7700",
  };
  size_t i;

  for (i = 0; i < ARRAY_SIZE (inputs); i++)
    fuzz_input (inputs[i], strlen (inputs[i]));
}
