/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Parsing of user input (parse.h): sizes, durations, booleans, names and
 * transport addresses, shared by the daemon, rmradm and the plugin.
 *
 * Every parser is strict: the whole string must match, with no leading or
 * trailing spaces, no signs, no base prefixes (strtoull accepts all of
 * those, so numbers are scanned here digit by digit with overflow checks).
 * A syntax error is -EINVAL, a well-formed number out of range -ERANGE.
 * Outputs are written only on success.
 *
 * Each error is one line, "FIELD: 'VALUE': what is wrong", recorded with
 * rmr_err (); the value is quoted with control and non-ASCII bytes shown
 * as '?' and cut after SHOW_MAX bytes, so a message never spans lines
 * whatever the input was.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "parse.h"
#include "util.h"

#define SHOW_MAX 80
#define DURATION_MAX_MS (24ULL * 60 * 60 * 1000)

/* Record "what: 'value': problem" and return -errnum. */
static int __attribute__ ((format (printf, 4, 5)))
parse_err (int errnum, const char *what, const char *s, const char *fmt, ...)
{
  char shown[SHOW_MAX + 4], problem[256];
  size_t i;
  va_list ap;

  if (s == NULL)
    s = "";
  for (i = 0; s[i] != '\0' && i < SHOW_MAX; i++)
    shown[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  if (s[i] != '\0') {
    memcpy (&shown[i], "...", 3);
    i += 3;
  }
  shown[i] = '\0';

  va_start (ap, fmt);
  vsnprintf (problem, sizeof problem, fmt, ap);
  va_end (ap);
  return rmr_err (errnum, "%s: '%s': %s", what, shown, problem);
}

static bool
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

static bool
is_alnum (char c)
{
  return is_digit (c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Scan the decimal digits at *p (at least one), advancing *p past them.
 * Returns 0, -EINVAL if there is no digit, or -ERANGE if the number does
 * not fit in 64 bits (all its digits are still consumed, so the caller
 * can report junk after it as a syntax error first).
 */
static int
scan_u64 (const char **p, uint64_t *v)
{
  const char *s = *p;
  uint64_t n = 0;
  bool overflow = false;

  if (!is_digit (*s))
    return -EINVAL;
  for (; is_digit (*s); s++) {
    if (MUL_OVERFLOW (n, 10, &n) || ADD_OVERFLOW (n, (uint64_t) (*s - '0'), &n))
      overflow = true;
  }
  *p = s;
  if (overflow)
    return -ERANGE;
  *v = n;
  return 0;
}

/* Parse "N", "NB" or "N{K|M|G|T}[iB|B]" (case-insensitive).  *suffixed
 * says whether any suffix was given: the control syntax reads a bare
 * number as sectors, and "B" alone is the way to give an exact byte
 * count there ("1048576B"), beyond the K/M/G/T forms of parse.h.
 */
static int
parse_size (const char *what, const char *s, uint64_t *bytes, bool *suffixed)
{
  static const char units[] = "kmgt";
  const char *p = s, *u;
  uint64_t n, mult = 1;
  int r;

  if (s == NULL || *s == '\0')
    return parse_err (EINVAL, what, s, "empty size");
  r = scan_u64 (&p, &n);
  if (r == -EINVAL)
    return parse_err (EINVAL, what, s,
                      "not a size (expected digits with an optional K, M, "
                      "G or T suffix, such as 131072, 128K or 1GiB)");

  if (*p == '.' || *p == ',')
    return parse_err (EINVAL, what, s,
                      "fractions are not supported (use a smaller unit, such "
                      "as 1536M)");
  *suffixed = *p != '\0';
  if (strcasecmp (p, "b") == 0)
    mult = 1;
  else if (*p != '\0') {
    char c = *p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p;

    u = strchr (units, c);
    if (u == NULL)
      return parse_err (EINVAL, what, s,
                        "unknown suffix (expected B, or K, M, G or T "
                        "optionally followed by iB or B)");
    mult = UINT64_C (1) << (10 * (u - units + 1));
    p++;
    if (strcasecmp (p, "") != 0 && strcasecmp (p, "ib") != 0 &&
        strcasecmp (p, "b") != 0)
      return parse_err (EINVAL, what, s,
                        "junk after the suffix (expected nothing, iB or B)");
  }
  if (r == -ERANGE || MUL_OVERFLOW (n, mult, &n))
    return parse_err (ERANGE, what, s, "too large (does not fit in 64 bits)");
  *bytes = n;
  return 0;
}

int
rmr_parse_bytes (const char *what, const char *s, uint64_t *bytes)
{
  bool suffixed;

  return parse_size (what, s, bytes, &suffixed);
}

int
rmr_parse_sectors_or_bytes (const char *what, const char *s, uint64_t *bytes)
{
  uint64_t n;
  bool suffixed;
  int r;

  r = parse_size (what, s, &n, &suffixed);
  if (r < 0)
    return r;
  if (suffixed) {
    if (n % 512 != 0)
      return parse_err (EINVAL, what, s,
                        "not a multiple of 512 bytes (a bare number counts "
                        "512-byte sectors)");
  }
  else if (MUL_OVERFLOW (n, 512, &n))
    return parse_err (ERANGE, what, s,
                      "too large (in 512-byte sectors, over 64 bits of "
                      "bytes)");
  *bytes = n;
  return 0;
}

int
rmr_parse_uint (const char *what, const char *s, uint64_t min, uint64_t max,
                uint64_t *v)
{
  const char *p = s;
  uint64_t n = 0;
  int r;

  if (s == NULL || *s == '\0')
    return parse_err (EINVAL, what, s, "empty number");
  r = scan_u64 (&p, &n);
  if (r == -EINVAL || *p != '\0')
    return parse_err (EINVAL, what, s, "not an unsigned decimal integer");
  if (r == -ERANGE || n < min || n > max)
    return parse_err (ERANGE, what, s,
                      "out of range (expected %" PRIu64 " to %" PRIu64 ")", min,
                      max);
  *v = n;
  return 0;
}

int
rmr_parse_bool (const char *what, const char *s, bool *b)
{
  static const char *const yes[] = {"1", "y", "yes", "true", "on"};
  static const char *const no[] = {"0", "n", "no", "false", "off"};
  size_t i;

  if (s == NULL)
    return parse_err (EINVAL, what, s, "empty boolean");
  for (i = 0; i < ARRAY_SIZE (yes); i++) {
    if (strcasecmp (s, yes[i]) == 0) {
      *b = true;
      return 0;
    }
    if (strcasecmp (s, no[i]) == 0) {
      *b = false;
      return 0;
    }
  }
  return parse_err (EINVAL, what, s,
                    "not a boolean (expected yes/no, true/false, on/off, "
                    "y/n or 1/0)");
}

/* Durations are whole numbers of their unit; a fraction such as "0.5s" is
 * refused with a hint to use a smaller unit, so that every accepted value
 * is exact.
 */
int
rmr_parse_duration_ms (const char *what, const char *s, uint64_t *ms)
{
  const char *p = s;
  uint64_t n = 0, mult;
  int r;

  if (s == NULL || *s == '\0')
    return parse_err (EINVAL, what, s, "empty duration");
  r = scan_u64 (&p, &n);
  if (r == -EINVAL)
    return parse_err (EINVAL, what, s,
                      "not a duration (expected digits with an optional "
                      "unit ms, s or m, such as 30s or 500ms)");
  if (*p == '.' || *p == ',')
    return parse_err (EINVAL, what, s,
                      "fractions are not supported (use a smaller unit, "
                      "such as 500ms)");

  if (*p == '\0' || strcasecmp (p, "s") == 0)
    mult = 1000;
  else if (strcasecmp (p, "ms") == 0)
    mult = 1;
  else if (strcasecmp (p, "m") == 0)
    mult = 60 * 1000;
  else
    return parse_err (EINVAL, what, s, "unknown unit (expected ms, s or m)");

  if (r == -ERANGE || MUL_OVERFLOW (n, mult, &n) || n > DURATION_MAX_MS)
    return parse_err (ERANGE, what, s, "too long (at most one day)");
  *ms = n;
  return 0;
}

/* A name of 1 to max bytes from [A-Za-z0-9] and the characters in extra. */
static int
check_name (const char *what, const char *name, size_t max, const char *extra,
            const char *allowed)
{
  size_t i, len;

  if (name == NULL || *name == '\0')
    return parse_err (EINVAL, what, name, "empty name");
  len = strlen (name);
  if (len > max)
    return parse_err (EINVAL, what, name, "too long (%zu bytes, at most %zu)",
                      len, max);
  for (i = 0; i < len; i++) {
    unsigned char c = name[i];

    if (!is_alnum (c) && strchr (extra, c) == NULL) {
      if (c >= 0x20 && c < 0x7f)
        return parse_err (EINVAL, what, name,
                          "invalid character '%c' (allowed: %s)", c, allowed);
      return parse_err (EINVAL, what, name, "invalid byte 0x%02x (allowed: %s)",
                        c, allowed);
    }
  }
  return 0;
}

int
rmr_check_pool_name (const char *what, const char *name)
{
  /* Pool names are path components of the control tree. */
  if (name && (strcmp (name, ".") == 0 || strcmp (name, "..") == 0))
    return rmr_err (EINVAL, "%s: '%s' is not a valid pool name", what, name);
  return check_name (what, name, RMR_POOL_NAME_MAX, "._-", "A-Z a-z 0-9 . _ -");
}

int
rmr_check_sess_name (const char *what, const char *name)
{
  return check_name (what, name, RMR_SESS_NAME_MAX, "._@:-",
                     "A-Z a-z 0-9 . _ @ : -");
}

int
rmr_parse_member_id (const char *what, const char *s, uint32_t *id)
{
  uint64_t v;
  int r;

  r = rmr_parse_uint (what, s, 0, RMR_MEMBER_ID_MAX, &v);
  if (r < 0)
    return r;
  *id = v;
  return 0;
}

/* Check a host: an IPv6 address (the text between brackets, with an
 * optional %zone), or a name or IPv4 address.  A host made only of digits
 * and dots must be a valid dotted IPv4 address, so that "10.0.0.256" is
 * refused here and not by a resolver much later.
 */
static int
check_host (const char *what, const char *s, const char *host, size_t len,
            bool v6, struct rmr_addr *addr)
{
  char buf[sizeof addr->host];
  struct in6_addr a6;
  struct in_addr a4;
  const char *zone;
  size_t i;

  if (len == 0)
    return parse_err (EINVAL, what, s, "empty host");
  if (len >= sizeof buf)
    return parse_err (EINVAL, what, s, "host too long (at most %zu bytes)",
                      sizeof buf - 1);
  memcpy (buf, host, len);
  buf[len] = '\0';

  if (v6) {
    zone = strchr (buf, '%');
    if (zone != NULL) {
      if (zone[1] == '\0')
        return parse_err (EINVAL, what, s, "empty IPv6 zone after '%%'");
      for (i = 1; zone[i] != '\0'; i++)
        if (!is_alnum (zone[i]) && strchr ("._-", zone[i]) == NULL)
          return parse_err (EINVAL, what, s, "invalid IPv6 zone");
      buf[zone - buf] = '\0';
    }
    if (inet_pton (AF_INET6, buf, &a6) != 1)
      return parse_err (EINVAL, what, s, "not an IPv6 address in brackets");
    memcpy (addr->host, host, len);
    addr->host[len] = '\0';
    return 0;
  }

  for (i = 0; i < len; i++) {
    if (!is_alnum (buf[i]) && strchr (".-_", buf[i]) == NULL)
      return parse_err (EINVAL, what, s, "invalid character in host");
  }
  if (strspn (buf, "0123456789.") == len && inet_pton (AF_INET, buf, &a4) != 1)
    return parse_err (EINVAL, what, s, "not a valid IPv4 address");
  memcpy (addr->host, buf, len + 1);
  return 0;
}

static int
parse_port (const char *what, const char *s, const char *p, uint16_t *port)
{
  uint64_t n = 0;
  int r;

  if (*p == '\0')
    return parse_err (EINVAL, what, s, "empty port");
  r = scan_u64 (&p, &n);
  if (r == -EINVAL || *p != '\0')
    return parse_err (EINVAL, what, s, "port is not a decimal number");
  if (r == -ERANGE || n < 1 || n > 65535)
    return parse_err (ERANGE, what, s, "port out of range (1 to 65535)");
  *port = n;
  return 0;
}

/* Parse "HOST:PORT", "[V6]:PORT" and, when port_optional, "HOST" and
 * "[V6]".  An IPv6 address is always in brackets, even without a port:
 * "ip:::1:7701" would be ambiguous.
 */
static int
parse_host_port (const char *what, const char *s, const char *p,
                 bool port_optional, struct rmr_addr *addr)
{
  const char *close, *colon;
  int r;

  if (*p == '[') {
    close = strchr (p, ']');
    if (close == NULL)
      return parse_err (EINVAL, what, s, "'[' without a closing ']'");
    r = check_host (what, s, p + 1, close - p - 1, true, addr);
    if (r < 0)
      return r;
    if (close[1] == '\0') {
      if (!port_optional)
        return parse_err (EINVAL, what, s, "missing port (HOST:PORT)");
      addr->port = RMR_DEFAULT_PORT;
      return 0;
    }
    if (close[1] != ':')
      return parse_err (EINVAL, what, s, "expected ':PORT' after ']'");
    return parse_port (what, s, close + 2, &addr->port);
  }

  if (strchr (p, ']') != NULL)
    return parse_err (EINVAL, what, s, "']' without an opening '['");

  colon = strchr (p, ':');
  if (colon == NULL) {
    if (!port_optional)
      return parse_err (EINVAL, what, s, "missing port (HOST:PORT)");
    addr->port = RMR_DEFAULT_PORT;
    return check_host (what, s, p, strlen (p), false, addr);
  }
  if (strchr (colon + 1, ':') != NULL)
    return parse_err (EINVAL, what, s,
                      "IPv6 addresses go in brackets: tcp:[::1]:7700");
  r = check_host (what, s, p, colon - p, false, addr);
  if (r < 0)
    return r;
  return parse_port (what, s, colon + 1, &addr->port);
}

/* An IPv6 address, or one followed by ":PORT", without brackets. */
static bool
looks_like_ipv6 (const char *s)
{
  char buf[INET6_ADDRSTRLEN + 8];
  struct in6_addr a6;
  char *colon;
  size_t len = strlen (s);

  if (len >= sizeof buf)
    return false;
  memcpy (buf, s, len + 1);
  if (inet_pton (AF_INET6, buf, &a6) == 1)
    return true;
  colon = strrchr (buf, ':');
  if (colon == NULL)
    return false;
  *colon = '\0';
  return inet_pton (AF_INET6, buf, &a6) == 1;
}

int
rmr_addr_parse (const char *what, const char *s, struct rmr_addr *addr)
{
  struct rmr_addr a;
  const char *colon;
  size_t n;
  int r;

  memset (&a, 0, sizeof a);
  if (s == NULL || *s == '\0')
    return parse_err (EINVAL, what, s, "empty address");

  a.kind = RMR_TRANSPORT_TCP;
  colon = strchr (s, ':');
  n = colon ? (size_t) (colon - s) : 0;
  if (colon && n == 3 && strncasecmp (s, "tcp", 3) == 0)
    r = parse_host_port (what, s, colon + 1, false, &a);
  else if (colon && n == 3 && strncasecmp (s, "ucx", 3) == 0) {
    a.kind = RMR_TRANSPORT_UCX;
    r = parse_host_port (what, s, colon + 1, false, &a);
  }
  else if (colon && n == 2 && strncasecmp (s, "ip", 2) == 0)
    r = parse_host_port (what, s, colon + 1, true, &a);
  else if (*s == '[' || colon == NULL || strchr (colon + 1, ':') == NULL)
    r = parse_host_port (what, s, s, false, &a);
  else {
    /* Two colons or more: "WORD:X:Y" with an unknown WORD, an IPv6
     * address without brackets, or neither.
     */
    size_t i;

    if (looks_like_ipv6 (s))
      return parse_err (EINVAL, what, s,
                        "IPv6 addresses go in brackets: tcp:[::1]:7700");
    for (i = 0; i < n && is_alnum (s[i]); i++)
      ;
    if (n > 0 && i == n && !is_digit (s[0]) && n <= 16)
      return parse_err (EINVAL, what, s,
                        "unknown transport '%.*s' (expected tcp, ucx or ip)",
                        (int) n, s);
    return parse_err (EINVAL, what, s,
                      "not an address (expected tcp:HOST:PORT, "
                      "ucx:HOST:PORT, ip:HOST[:PORT] or HOST:PORT)");
  }
  if (r < 0)
    return r;
  *addr = a;
  return 0;
}

void
rmr_addr_format (const struct rmr_addr *addr, char *buf, size_t n)
{
  const char *scheme = addr->kind == RMR_TRANSPORT_UCX ? "ucx" : "tcp";
  int hlen = strnlen (addr->host, sizeof addr->host);
  bool v6 = memchr (addr->host, ':', hlen) != NULL;

  if (n == 0)
    return;
  snprintf (buf, n, v6 ? "%s:[%.*s]:%u" : "%s:%.*s:%u", scheme, hlen,
            addr->host, (unsigned) addr->port);
}

bool
rmr_addr_is_loopback (const struct rmr_addr *addr)
{
  struct in_addr a4;
  struct in6_addr a6;

  if (strcmp (addr->host, "localhost") == 0)
    return true;
  if (inet_pton (AF_INET, addr->host, &a4) == 1)
    return (ntohl (a4.s_addr) >> 24) == 127;
  if (inet_pton (AF_INET6, addr->host, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK (&a6);
  return false;
}
