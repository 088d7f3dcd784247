/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/crc32c.c: the standard check value, the iSCSI test
 * vectors (RFC 3720 appendix B.4), continuation, and agreement with a
 * bit-at-a-time reference over every length and alignment around the
 * 8-byte steps of the slice-by-8 loop.
 */
#undef NDEBUG

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "crc32c.h"

/* Bit-at-a-time CRC-32C straight from the definition, sharing nothing with
 * the table-driven code under test.
 */
static uint32_t
crc32c_bitwise (uint32_t crc, const uint8_t *p, size_t len)
{
  uint32_t c = ~crc;
  size_t i;
  int j;

  for (i = 0; i < len; i++) {
    c ^= p[i];
    for (j = 0; j < 8; j++)
      c = (c >> 1) ^ (c & 1 ? 0x82f63b78U : 0);
  }
  return ~c;
}

static void
test_check_value (void)
{
  g_assert_cmphex (rmr_crc32c (0, "123456789", 9), ==, 0xe3069283);
  g_assert_cmphex (rmr_crc32c (0, "", 0), ==, 0);
  g_assert_cmphex (rmr_crc32c (0, NULL, 0), ==, 0);
  /* Continuing over nothing changes nothing. */
  g_assert_cmphex (rmr_crc32c (0xe3069283, "", 0), ==, 0xe3069283);
}

static void
test_iscsi_vectors (void)
{
  uint8_t buf[32];
  unsigned i;

  memset (buf, 0, sizeof buf);
  g_assert_cmphex (rmr_crc32c (0, buf, 32), ==, 0x8a9136aa);
  memset (buf, 0xff, sizeof buf);
  g_assert_cmphex (rmr_crc32c (0, buf, 32), ==, 0x62a8ab43);
  for (i = 0; i < 32; i++)
    buf[i] = i;
  g_assert_cmphex (rmr_crc32c (0, buf, 32), ==, 0x46dd794e);
  for (i = 0; i < 32; i++)
    buf[i] = 31 - i;
  g_assert_cmphex (rmr_crc32c (0, buf, 32), ==, 0x113fdb5c);
}

/* Splitting the input anywhere and continuing gives the one-shot CRC. */
static void
test_incremental (void)
{
  uint8_t buf[300];
  uint32_t whole;
  size_t i, j;

  for (i = 0; i < sizeof buf; i++)
    buf[i] = i * 7 + 3;
  whole = rmr_crc32c (0, buf, sizeof buf);
  g_assert_cmphex (whole, ==, crc32c_bitwise (0, buf, sizeof buf));

  for (i = 0; i <= sizeof buf; i++) {
    uint32_t c = rmr_crc32c (0, buf, i);

    c = rmr_crc32c (c, buf + i, sizeof buf - i);
    g_assert_cmphex (c, ==, whole);
  }

  /* Three pieces, and a byte at a time. */
  for (i = 0; i <= 40; i++)
    for (j = i; j <= 40; j++) {
      uint32_t c = rmr_crc32c (0, buf, i);

      c = rmr_crc32c (c, buf + i, j - i);
      c = rmr_crc32c (c, buf + j, sizeof buf - j);
      g_assert_cmphex (c, ==, whole);
    }
  {
    uint32_t c = 0;

    for (i = 0; i < sizeof buf; i++)
      c = rmr_crc32c (c, buf + i, 1);
    g_assert_cmphex (c, ==, whole);
  }
}

/* Every length 0-100 at every offset 0-15: the main loop, the tail loop
 * and unaligned word reads.  The copy sits at the end of an exact-size
 * allocation so ASan catches a read past the buffer.
 */
static void
test_unaligned (void)
{
  GRand *rand = g_rand_new_with_seed (12345);
  uint8_t src[100];
  size_t len, off, i;

  for (i = 0; i < sizeof src; i++)
    src[i] = g_rand_int (rand);

  for (len = 0; len <= sizeof src; len++)
    for (off = 0; off < 16; off++) {
      uint8_t *mem = g_malloc (off + len + 1);
      uint32_t seed = g_rand_int (rand);

      memcpy (mem + off, src, len);
      g_assert_cmphex (rmr_crc32c (0, mem + off, len), ==,
                       crc32c_bitwise (0, src, len));
      g_assert_cmphex (rmr_crc32c (seed, mem + off, len), ==,
                       crc32c_bitwise (seed, src, len));
      g_free (mem);
    }
  g_rand_free (rand);
}

/* A 4 KiB block, the size the metadata checksums cover. */
static void
test_block (void)
{
  GRand *rand = g_rand_new_with_seed (4096);
  uint8_t *buf = g_malloc (4096);
  size_t i;

  for (i = 0; i < 4096; i++)
    buf[i] = g_rand_int (rand);
  g_assert_cmphex (rmr_crc32c (0, buf, 4096), ==,
                   crc32c_bitwise (0, buf, 4096));
  g_free (buf);
  g_rand_free (rand);
}

static gpointer
thread_crc (gpointer data)
{
  return GUINT_TO_POINTER (rmr_crc32c (0, "123456789", 9));
}

/* Concurrent first use: the tables are built once and the result is the
 * same in every thread (run under TSan to check the publication).
 */
static void
test_threads (void)
{
  GThread *t[4];
  unsigned i;

  for (i = 0; i < G_N_ELEMENTS (t); i++)
    t[i] = g_thread_new ("crc", thread_crc, NULL);
  for (i = 0; i < G_N_ELEMENTS (t); i++)
    g_assert_cmphex (GPOINTER_TO_UINT (g_thread_join (t[i])), ==, 0xe3069283);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  /* First, so that the threads test may be the one building the tables
   * when run alone (-p /crc32c/threads).
   */
  g_test_add_func ("/crc32c/threads", test_threads);
  g_test_add_func ("/crc32c/check-value", test_check_value);
  g_test_add_func ("/crc32c/iscsi-vectors", test_iscsi_vectors);
  g_test_add_func ("/crc32c/incremental", test_incremental);
  g_test_add_func ("/crc32c/unaligned", test_unaligned);
  g_test_add_func ("/crc32c/block", test_block);
  return g_test_run ();
}
