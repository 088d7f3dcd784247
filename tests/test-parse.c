/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/parse.c: every accepted form and every rejection of
 * sizes, durations, booleans, unsigned integers, pool and session names,
 * member ids and transport addresses.  Each rejection is checked for its
 * errno (-EINVAL for syntax, -ERANGE for a number out of range), for a
 * one-line message "FIELD: 'VALUE': ..." and for leaving the output alone.
 *
 * Choices pinned here: durations take whole numbers only ("0.5s" is
 * refused, "500ms" is the way to say it); a size suffix is K/M/G/T
 * optionally followed by iB or B, and "B" alone means bytes (so the
 * sectors-or-bytes syntax can give an exact byte count, "1048576B"); IPv6
 * addresses always go in brackets.
 */
#undef NDEBUG

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "error.h"
#include "parse.h"

#define SENTINEL UINT64_C (0x5a5a5a5a5a5a5a5a)

static bool
printable (const char *s)
{
  for (; *s; s++)
    if (*s < 0x20 || *s >= 0x7f)
      return false;
  return true;
}

/* The last error names the field and quotes the value (printable values
 * as they are), on one line.
 */
static void
check_message (const char *what, const char *value)
{
  const char *msg = rmr_get_error ();
  g_autofree char *prefix = NULL;

  g_assert_nonnull (msg);
  prefix = g_strdup_printf ("%s: '", what);
  g_assert_true (g_str_has_prefix (msg, prefix));
  if (value != NULL && strlen (value) < 60 && printable (value)) {
    g_autofree char *quoted = g_strdup_printf ("'%s'", value);

    g_assert_nonnull (strstr (msg, quoted));
  }
  g_assert_null (strchr (msg, '\n'));
}

static void
ok_bytes (const char *s, uint64_t expected)
{
  uint64_t v = SENTINEL;

  g_test_message ("bytes '%s'", s);
  g_assert_cmpint (rmr_parse_bytes ("size", s, &v), ==, 0);
  g_assert_cmpuint (v, ==, expected);
}

static void
bad_bytes (const char *s, int err)
{
  uint64_t v = SENTINEL;

  rmr_err_clear ();
  g_assert_cmpint (rmr_parse_bytes ("size", s, &v), ==, -err);
  g_assert_cmpint (errno, ==, err);
  g_assert_cmpint (rmr_get_errno (), ==, err);
  g_assert_cmpuint (v, ==, SENTINEL);
  check_message ("size", s);
  g_test_message ("%s", rmr_get_error ());
}

static void
test_bytes (void)
{
  ok_bytes ("0", 0);
  ok_bytes ("1", 1);
  ok_bytes ("131072", 131072);
  ok_bytes ("007", 7);
  ok_bytes ("128K", 128 * 1024);
  ok_bytes ("128k", 128 * 1024);
  ok_bytes ("128KiB", 128 * 1024);
  ok_bytes ("128kib", 128 * 1024);
  ok_bytes ("128KB", 128 * 1024);
  ok_bytes ("128kb", 128 * 1024);
  ok_bytes ("100M", 100ULL << 20);
  ok_bytes ("100MiB", 100ULL << 20);
  ok_bytes ("1G", 1ULL << 30);
  ok_bytes ("1GiB", 1ULL << 30);
  ok_bytes ("1gB", 1ULL << 30);
  ok_bytes ("2T", 2ULL << 40);
  ok_bytes ("2TiB", 2ULL << 40);
  ok_bytes ("18446744073709551615", UINT64_MAX);
  ok_bytes ("16777215T", 16777215ULL << 40);
  ok_bytes ("0K", 0);
  ok_bytes ("12B", 12);
  ok_bytes ("12b", 12);

  bad_bytes ("", EINVAL);
  bad_bytes (NULL, EINVAL);
  bad_bytes ("-1", EINVAL);
  bad_bytes ("+1", EINVAL);
  bad_bytes (" 1", EINVAL);
  bad_bytes ("1 ", EINVAL);
  bad_bytes ("1 K", EINVAL);
  bad_bytes ("0x10", EINVAL);
  bad_bytes ("abc", EINVAL);
  bad_bytes ("K", EINVAL);
  bad_bytes ("1.5G", EINVAL);
  bad_bytes ("12Q", EINVAL);
  bad_bytes ("12iB", EINVAL);
  bad_bytes ("12BB", EINVAL);
  bad_bytes ("B", EINVAL);
  bad_bytes ("12P", EINVAL);
  bad_bytes ("12Ki", EINVAL);
  bad_bytes ("12KiBx", EINVAL);
  bad_bytes ("12KK", EINVAL);
  bad_bytes ("1.5", EINVAL);
  bad_bytes ("12\n", EINVAL);
  bad_bytes ("18446744073709551616", ERANGE);
  bad_bytes ("99999999999999999999999", ERANGE);
  bad_bytes ("16777216T", ERANGE);
  bad_bytes ("17179869184G", ERANGE);
  /* Junk after an overflowing number is a syntax error first. */
  bad_bytes ("99999999999999999999999x", EINVAL);
}

static void
ok_sob (const char *s, uint64_t expected)
{
  uint64_t v = SENTINEL;

  g_test_message ("sectors-or-bytes '%s'", s);
  g_assert_cmpint (rmr_parse_sectors_or_bytes ("mapped_size", s, &v), ==, 0);
  g_assert_cmpuint (v, ==, expected);
}

static void
bad_sob (const char *s, int err)
{
  uint64_t v = SENTINEL;

  rmr_err_clear ();
  g_assert_cmpint (rmr_parse_sectors_or_bytes ("mapped_size", s, &v), ==, -err);
  g_assert_cmpuint (v, ==, SENTINEL);
  check_message ("mapped_size", s);
  g_test_message ("%s", rmr_get_error ());
}

/* A bare integer counts 512-byte sectors, a suffix means bytes. */
static void
test_sectors_or_bytes (void)
{
  ok_sob ("204800", 100ULL << 20);
  ok_sob ("0", 0);
  ok_sob ("1", 512);
  ok_sob ("100M", 100ULL << 20);
  ok_sob ("1K", 1024);
  ok_sob ("1GiB", 1ULL << 30);
  ok_sob ("1048576B", 1ULL << 20);
  ok_sob ("512b", 512);
  ok_sob ("0B", 0);
  ok_sob ("36028797018963967", 36028797018963967ULL * 512);

  bad_sob ("", EINVAL);
  bad_sob ("-1", EINVAL);
  bad_sob ("1x", EINVAL);
  bad_sob ("36028797018963968", ERANGE); /* * 512 overflows */
  bad_sob ("18446744073709551616", ERANGE);
  /* A suffix means bytes, which must be whole sectors. */
  bad_sob ("1000B", EINVAL);
  g_assert_nonnull (strstr (rmr_get_error (), "multiple of 512"));
  bad_sob ("513B", EINVAL);
  bad_sob ("1B", EINVAL);
  bad_sob ("0.5K", EINVAL);
  bad_sob ("18446744073709551615B", EINVAL);
}

static void
test_uint (void)
{
  uint64_t v = SENTINEL;

  g_assert_cmpint (rmr_parse_uint ("queue_depth", "128", 1, 4096, &v), ==, 0);
  g_assert_cmpuint (v, ==, 128);
  g_assert_cmpint (rmr_parse_uint ("x", "1", 1, 4096, &v), ==, 0);
  g_assert_cmpuint (v, ==, 1);
  g_assert_cmpint (rmr_parse_uint ("x", "4096", 1, 4096, &v), ==, 0);
  g_assert_cmpuint (v, ==, 4096);
  g_assert_cmpint (
    rmr_parse_uint ("x", "18446744073709551615", 0, UINT64_MAX, &v), ==, 0);
  g_assert_cmpuint (v, ==, UINT64_MAX);

  v = SENTINEL;
  g_assert_cmpint (rmr_parse_uint ("queue_depth", "0", 1, 4096, &v), ==,
                   -ERANGE);
  check_message ("queue_depth", "0");
  g_assert_nonnull (strstr (rmr_get_error (), "1 to 4096"));
  g_assert_cmpint (rmr_parse_uint ("queue_depth", "4097", 1, 4096, &v), ==,
                   -ERANGE);
  g_assert_cmpint (
    rmr_parse_uint ("x", "18446744073709551616", 0, UINT64_MAX, &v), ==,
    -ERANGE);
  g_assert_cmpint (rmr_parse_uint ("x", "", 0, 10, &v), ==, -EINVAL);
  check_message ("x", "");
  g_assert_cmpint (rmr_parse_uint ("x", NULL, 0, 10, &v), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_uint ("x", "-1", 0, 10, &v), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_uint ("x", "+1", 0, 10, &v), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_uint ("x", "1K", 0, 10000, &v), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_uint ("x", "1 ", 0, 10, &v), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_uint ("x", "0x1", 0, 10, &v), ==, -EINVAL);
  g_assert_cmpuint (v, ==, SENTINEL);
}

static void
test_bool (void)
{
  static const char *const yes[] = {"1",    "y",    "Y",  "yes", "YES",
                                    "true", "True", "on", "ON"};
  static const char *const no[] = {"0",     "n",     "N",   "no", "No",
                                   "false", "FALSE", "off", "Off"};
  static const char *const bad[] = {"",     "2",    "yess", "tru", "o",
                                    " yes", "yes ", "nope", "-1",  "enable"};
  size_t i;
  bool b;

  for (i = 0; i < G_N_ELEMENTS (yes); i++) {
    b = false;
    g_assert_cmpint (rmr_parse_bool ("sync", yes[i], &b), ==, 0);
    g_assert_true (b);
  }
  for (i = 0; i < G_N_ELEMENTS (no); i++) {
    b = true;
    g_assert_cmpint (rmr_parse_bool ("sync", no[i], &b), ==, 0);
    g_assert_false (b);
  }
  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    b = true;
    g_assert_cmpint (rmr_parse_bool ("sync", bad[i], &b), ==, -EINVAL);
    g_assert_true (b);
    check_message ("sync", bad[i]);
  }
  g_assert_cmpint (rmr_parse_bool ("sync", NULL, &b), ==, -EINVAL);
}

static void
ok_duration (const char *s, uint64_t expected)
{
  uint64_t v = SENTINEL;

  g_test_message ("duration '%s'", s);
  g_assert_cmpint (rmr_parse_duration_ms ("timeout", s, &v), ==, 0);
  g_assert_cmpuint (v, ==, expected);
}

static void
bad_duration (const char *s, int err)
{
  uint64_t v = SENTINEL;

  rmr_err_clear ();
  g_assert_cmpint (rmr_parse_duration_ms ("timeout", s, &v), ==, -err);
  g_assert_cmpuint (v, ==, SENTINEL);
  check_message ("timeout", s);
  g_test_message ("%s", rmr_get_error ());
}

static void
test_duration (void)
{
  ok_duration ("30s", 30000);
  ok_duration ("30S", 30000);
  ok_duration ("500ms", 500);
  ok_duration ("500MS", 500);
  ok_duration ("2m", 120000);
  ok_duration ("10", 10000);
  ok_duration ("0", 0);
  ok_duration ("0ms", 0);
  ok_duration ("86400", 86400000);
  ok_duration ("1440m", 86400000);
  ok_duration ("86400000ms", 86400000);

  bad_duration ("", EINVAL);
  bad_duration (NULL, EINVAL);
  bad_duration ("s", EINVAL);
  bad_duration ("-1s", EINVAL);
  bad_duration (" 1s", EINVAL);
  bad_duration ("1 s", EINVAL);
  bad_duration ("0.5s", EINVAL); /* whole numbers only */
  bad_duration ("1,5s", EINVAL);
  bad_duration ("1h", EINVAL);
  bad_duration ("1sec", EINVAL);
  bad_duration ("1mss", EINVAL);
  bad_duration ("86401", ERANGE); /* more than a day */
  bad_duration ("1441m", ERANGE);
  bad_duration ("86400001ms", ERANGE);
  bad_duration ("18446744073709551615m", ERANGE);
  bad_duration ("99999999999999999999999", ERANGE);
}

static void
test_pool_name (void)
{
  char name[80];
  int c;

  g_assert_cmpint (rmr_check_pool_name ("pool_name", "pool1"), ==, 0);
  g_assert_cmpint (rmr_check_pool_name ("pool_name", "a"), ==, 0);
  g_assert_cmpint (rmr_check_pool_name ("pool_name", "A.b_c-9"), ==, 0);
  g_assert_cmpint (rmr_check_pool_name ("pool_name", "-"), ==, 0);

  memset (name, 'x', sizeof name);
  name[63] = '\0';
  g_assert_cmpint (rmr_check_pool_name ("pool_name", name), ==, 0);
  name[63] = 'x';
  name[64] = '\0';
  g_assert_cmpint (rmr_check_pool_name ("pool_name", name), ==, -EINVAL);
  check_message ("pool_name", name);

  g_assert_cmpint (rmr_check_pool_name ("pool_name", ""), ==, -EINVAL);
  check_message ("pool_name", "");
  g_assert_cmpint (rmr_check_pool_name ("pool_name", NULL), ==, -EINVAL);

  /* Every byte outside [A-Za-z0-9._-] is refused. */
  for (c = 1; c < 256; c++) {
    bool good = g_ascii_isalnum (c) || c == '.' || c == '_' || c == '-';

    name[0] = 'p';
    name[1] = c;
    name[2] = '\0';
    g_assert_cmpint (rmr_check_pool_name ("pool_name", name), ==,
                     good ? 0 : -EINVAL);
    if (!good)
      check_message ("pool_name", name);
  }
}

static void
test_sess_name (void)
{
  char name[80];
  int c;

  g_assert_cmpint (rmr_check_sess_name ("sessname", "clt1@srv1:7700"), ==, 0);
  g_assert_cmpint (rmr_check_sess_name ("sessname", "a.b_c-d"), ==, 0);

  memset (name, 's', sizeof name);
  name[63] = '\0';
  g_assert_cmpint (rmr_check_sess_name ("sessname", name), ==, 0);
  name[63] = 's';
  name[64] = '\0';
  g_assert_cmpint (rmr_check_sess_name ("sessname", name), ==, -EINVAL);
  check_message ("sessname", name);
  g_assert_cmpint (rmr_check_sess_name ("sessname", ""), ==, -EINVAL);

  for (c = 1; c < 256; c++) {
    bool good = g_ascii_isalnum (c) || (c != 0 && strchr ("._@:-", c));

    name[0] = c;
    name[1] = '\0';
    g_assert_cmpint (rmr_check_sess_name ("sessname", name), ==,
                     good ? 0 : -EINVAL);
  }
}

static void
test_member_id (void)
{
  uint32_t id = 12345;

  g_assert_cmpint (rmr_parse_member_id ("member_id", "0", &id), ==, 0);
  g_assert_cmpuint (id, ==, 0);
  g_assert_cmpint (rmr_parse_member_id ("member_id", "7", &id), ==, 0);
  g_assert_cmpuint (id, ==, 7);
  g_assert_cmpint (rmr_parse_member_id ("member_id", "4294967294", &id), ==, 0);
  g_assert_cmpuint (id, ==, RMR_MEMBER_ID_MAX);

  id = 12345;
  /* RMR_MEMBER_NONE marks an empty slot: never a valid id. */
  g_assert_cmpint (rmr_parse_member_id ("member_id", "4294967295", &id), ==,
                   -ERANGE);
  check_message ("member_id", "4294967295");
  g_assert_cmpint (rmr_parse_member_id ("member_id", "4294967296", &id), ==,
                   -ERANGE);
  g_assert_cmpint (rmr_parse_member_id ("member_id", "", &id), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_member_id ("member_id", "-1", &id), ==, -EINVAL);
  g_assert_cmpint (rmr_parse_member_id ("member_id", "one", &id), ==, -EINVAL);
  g_assert_cmpuint (id, ==, 12345);
}

static void
ok_addr (const char *s, enum rmr_transport_kind kind, const char *host,
         unsigned port, const char *canonical)
{
  struct rmr_addr a, b;
  char text[300];

  g_test_message ("address '%s'", s);
  memset (&a, 0xa5, sizeof a);
  g_assert_cmpint (rmr_addr_parse ("server", s, &a), ==, 0);
  g_assert_cmpint (a.kind, ==, kind);
  g_assert_cmpstr (a.host, ==, host);
  g_assert_cmpuint (a.port, ==, port);

  /* The canonical text parses back to the same address. */
  rmr_addr_format (&a, text, sizeof text);
  g_assert_cmpstr (text, ==, canonical);
  g_assert_cmpint (rmr_addr_parse ("server", text, &b), ==, 0);
  g_assert_cmpint (b.kind, ==, a.kind);
  g_assert_cmpstr (b.host, ==, a.host);
  g_assert_cmpuint (b.port, ==, a.port);
}

static void
bad_addr (const char *s, int err)
{
  struct rmr_addr a;

  memset (&a, 0xa5, sizeof a);
  rmr_err_clear ();
  g_assert_cmpint (rmr_addr_parse ("server", s, &a), ==, -err);
  g_assert_cmpuint (a.port, ==, 0xa5a5);
  check_message ("server", s);
  g_test_message ("%s", rmr_get_error ());
}

static void
test_addr (void)
{
  char longhost[300];
  g_autofree char *s = NULL;

  ok_addr ("tcp:127.0.0.1:7700", RMR_TRANSPORT_TCP, "127.0.0.1", 7700,
           "tcp:127.0.0.1:7700");
  ok_addr ("TCP:127.0.0.1:1", RMR_TRANSPORT_TCP, "127.0.0.1", 1,
           "tcp:127.0.0.1:1");
  ok_addr ("tcp:[::1]:7700", RMR_TRANSPORT_TCP, "::1", 7700, "tcp:[::1]:7700");
  ok_addr ("tcp:[fe80::1%eth0]:7701", RMR_TRANSPORT_TCP, "fe80::1%eth0", 7701,
           "tcp:[fe80::1%eth0]:7701");
  ok_addr ("ucx:host:1", RMR_TRANSPORT_UCX, "host", 1, "ucx:host:1");
  ok_addr ("ucx:[2001:db8::2]:65535", RMR_TRANSPORT_UCX, "2001:db8::2", 65535,
           "ucx:[2001:db8::2]:65535");
  ok_addr ("ip:10.0.0.1", RMR_TRANSPORT_TCP, "10.0.0.1", RMR_DEFAULT_PORT,
           "tcp:10.0.0.1:7700");
  ok_addr ("ip:10.0.0.1:7701", RMR_TRANSPORT_TCP, "10.0.0.1", 7701,
           "tcp:10.0.0.1:7701");
  ok_addr ("ip:[::1]", RMR_TRANSPORT_TCP, "::1", RMR_DEFAULT_PORT,
           "tcp:[::1]:7700");
  ok_addr ("ip:[::1]:7702", RMR_TRANSPORT_TCP, "::1", 7702, "tcp:[::1]:7702");
  ok_addr ("ip:storage-1.example.com", RMR_TRANSPORT_TCP,
           "storage-1.example.com", 7700, "tcp:storage-1.example.com:7700");
  ok_addr ("localhost:7700", RMR_TRANSPORT_TCP, "localhost", 7700,
           "tcp:localhost:7700");
  ok_addr ("10.1.2.3:80", RMR_TRANSPORT_TCP, "10.1.2.3", 80, "tcp:10.1.2.3:80");
  ok_addr ("[::1]:7700", RMR_TRANSPORT_TCP, "::1", 7700, "tcp:[::1]:7700");
  ok_addr ("node_2:07700", RMR_TRANSPORT_TCP, "node_2", 7700,
           "tcp:node_2:7700");

  /* Ports. */
  bad_addr ("tcp:127.0.0.1:0", ERANGE);
  bad_addr ("tcp:127.0.0.1:65536", ERANGE);
  bad_addr ("tcp:127.0.0.1:99999999999999999999999", ERANGE);
  bad_addr ("tcp:127.0.0.1:abc", EINVAL);
  bad_addr ("tcp:127.0.0.1:-1", EINVAL);
  bad_addr ("tcp:127.0.0.1:+1", EINVAL);
  bad_addr ("tcp:127.0.0.1:77 ", EINVAL);
  bad_addr ("tcp:127.0.0.1:", EINVAL);
  bad_addr ("tcp:127.0.0.1", EINVAL); /* tcp: needs a port */
  bad_addr ("ucx:host", EINVAL);
  bad_addr ("tcp:[::1]", EINVAL);
  bad_addr ("ip:10.0.0.1:0", ERANGE);
  bad_addr ("ip:10.0.0.1:", EINVAL);
  bad_addr ("localhost", EINVAL); /* bare form needs a port */

  /* Hosts. */
  bad_addr ("", EINVAL);
  bad_addr (NULL, EINVAL);
  bad_addr ("tcp::7700", EINVAL);
  bad_addr ("tcp:[]:7700", EINVAL);
  bad_addr (":7700", EINVAL);
  bad_addr ("ip:", EINVAL);
  bad_addr ("ip:[]", EINVAL);
  bad_addr ("tcp:[::1:7700", EINVAL); /* unbalanced brackets */
  bad_addr ("tcp:::1]:7700", EINVAL);
  bad_addr ("tcp:host]:7700", EINVAL);
  bad_addr ("tcp:[::1]]:7700", EINVAL);
  bad_addr ("tcp:[::1]7700", EINVAL);
  bad_addr ("tcp:[::1]:", EINVAL);
  bad_addr ("tcp:[127.0.0.1]:7700", EINVAL); /* brackets are for IPv6 */
  bad_addr ("tcp:[::1%]:7700", EINVAL);
  bad_addr ("tcp:[::1%e/th]:7700", EINVAL);
  bad_addr ("tcp:[zz::1]:7700", EINVAL);
  bad_addr ("tcp:::1:7700", EINVAL); /* IPv6 without brackets */
  bad_addr ("::1:7700", EINVAL);
  bad_addr ("ip:::1", EINVAL);
  bad_addr ("ip:fe80::1", EINVAL);
  bad_addr ("tcp:10.0.0.256:7700", EINVAL);
  bad_addr ("tcp:1.2.3:7700", EINVAL);
  bad_addr ("tcp:ho st:7700", EINVAL);
  bad_addr ("tcp:ho/st:7700", EINVAL);
  bad_addr (" tcp:host:7700", EINVAL);
  bad_addr ("tcp:host:7700\n", EINVAL);

  /* Schemes. */
  bad_addr ("udp:host:7700", EINVAL);
  g_assert_nonnull (strstr (rmr_get_error (), "unknown transport 'udp'"));
  bad_addr ("rdma:[::1]:7700", EINVAL);
  bad_addr ("tcp6:host:7700", EINVAL);
  bad_addr ("a b:c:d", EINVAL);
  g_assert_nonnull (strstr (rmr_get_error (), "not an address"));
  bad_addr ("fe80::1", EINVAL);
  g_assert_nonnull (strstr (rmr_get_error (), "brackets"));

  /* Host length: 255 bytes fit in struct rmr_addr, 256 do not. */
  memset (longhost, 'h', sizeof longhost);
  longhost[255] = '\0';
  s = g_strdup_printf ("tcp:%s:7700", longhost);
  {
    struct rmr_addr a;
    char text[300];

    g_assert_cmpint (rmr_addr_parse ("server", s, &a), ==, 0);
    g_assert_cmpuint (strlen (a.host), ==, 255);
    rmr_addr_format (&a, text, sizeof text);
    g_assert_cmpstr (text, ==, s);
  }
  g_free (s);
  longhost[255] = 'h';
  longhost[256] = '\0';
  s = g_strdup_printf ("tcp:%s:7700", longhost);
  bad_addr (s, EINVAL);
}

static void
test_addr_format (void)
{
  struct rmr_addr a;
  char buf[32];

  memset (&a, 0, sizeof a);
  a.kind = RMR_TRANSPORT_TCP;
  memcpy (a.host, "127.0.0.1", sizeof "127.0.0.1");
  a.port = 7700;

  /* Truncated, always NUL-terminated. */
  memset (buf, 'z', sizeof buf);
  rmr_addr_format (&a, buf, 8);
  g_assert_cmpstr (buf, ==, "tcp:127");
  g_assert_cmpint (buf[8], ==, 'z');
  rmr_addr_format (&a, buf, 1);
  g_assert_cmpstr (buf, ==, "");
  buf[0] = 'z';
  rmr_addr_format (&a, buf, 0);
  g_assert_cmpint (buf[0], ==, 'z');

  /* A host filling the whole array without a NUL is not overread. */
  memset (a.host, 'h', sizeof a.host);
  {
    char big[300];

    rmr_addr_format (&a, big, sizeof big);
    g_assert_cmpuint (strlen (big), ==, 4 + sizeof a.host + 5);
  }
}

/* Whatever the bytes, the message stays on one line and short. */
static void
test_message_sanitised (void)
{
  char s[400];
  const char *msg;
  uint64_t v;

  memset (s, '\n', sizeof s);
  s[sizeof s - 1] = '\0';
  g_assert_cmpint (rmr_parse_bytes ("size", s, &v), ==, -EINVAL);
  msg = rmr_get_error ();
  g_assert_null (strchr (msg, '\n'));
  g_assert_cmpuint (strlen (msg), <, 200);
  g_assert_true (g_str_has_prefix (msg, "size: '????"));
  g_assert_nonnull (strstr (msg, "...'"));

  g_assert_cmpint (rmr_check_pool_name ("pool_name", "a\tb"), ==, -EINVAL);
  msg = rmr_get_error ();
  g_assert_cmpstr (msg, ==,
                   "pool_name: 'a?b': invalid byte 0x09 (allowed: A-Z a-z "
                   "0-9 . _ -)");
  g_assert_cmpint (rmr_check_pool_name ("pool_name", "a/b"), ==, -EINVAL);
  g_assert_cmpstr (rmr_get_error (), ==,
                   "pool_name: 'a/b': invalid character '/' (allowed: A-Z "
                   "a-z 0-9 . _ -)");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/parse/bytes", test_bytes);
  g_test_add_func ("/parse/sectors-or-bytes", test_sectors_or_bytes);
  g_test_add_func ("/parse/uint", test_uint);
  g_test_add_func ("/parse/bool", test_bool);
  g_test_add_func ("/parse/duration", test_duration);
  g_test_add_func ("/parse/pool-name", test_pool_name);
  g_test_add_func ("/parse/sess-name", test_sess_name);
  g_test_add_func ("/parse/member-id", test_member_id);
  g_test_add_func ("/parse/addr", test_addr);
  g_test_add_func ("/parse/addr-format", test_addr_format);
  g_test_add_func ("/parse/message-sanitised", test_message_sanitised);
  return g_test_run ();
}
