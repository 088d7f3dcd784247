/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/jhash.c: known vectors of the Linux kernel's jhash ().
 *
 * The expected values come from two independent sources: the values
 * published with lookup3.c for hashlittle () (the kernel's jhash () is the
 * same function on little-endian hosts), and a separate reimplementation of
 * include/linux/jhash.h in Python, which reproduces the published values
 * and gives the vectors for every tail length (0-13, then several blocks).
 */
#undef NDEBUG

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "jhash.h"

static const char alphabet[] =
  "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Published with lookup3.c (driver5 of its self test). */
static void
test_published (void)
{
  const char *four = "Four score and seven years ago";

  g_assert_cmphex (rmr_jhash ("", 0, 0), ==, 0xdeadbeef);
  g_assert_cmphex (rmr_jhash (four, 30, 0), ==, 0x17770551);
  g_assert_cmphex (rmr_jhash (four, 30, 1), ==, 0xcd628161);
}

struct vector {
  size_t len;
  uint32_t h0; /* initval 0 */
  uint32_t h1; /* initval 0x12345678 */
};

/* Prefixes of the alphabet: every tail case of the switch (0-12 bytes
 * left), one block plus a tail (13, 24 exactly two blocks, 25, 36, 62).
 */
static const struct vector vectors[] = {
  {0, 0xdeadbeef, 0xf0e21567},  {1, 0x58d68708, 0x314b81af},
  {2, 0xfbb3a8df, 0x24ce3a3b},  {3, 0x0e397631, 0xccf937d5},
  {4, 0xb5f4889c, 0x0c4c8225},  {5, 0x026d72de, 0x8a62a717},
  {6, 0xd6fa502e, 0x5e6fe393},  {7, 0xb11ad4a5, 0xb558d070},
  {8, 0x2995c3be, 0xc38fe74d},  {9, 0xac6572b4, 0x509c9fc1},
  {10, 0x8bf7d2ef, 0x84dda723}, {11, 0x5f61edf8, 0xa44df88d},
  {12, 0x4012f87b, 0xfa37a632}, {13, 0x928128f9, 0xc9168e20},
  {24, 0x1b631fea, 0x61a1ef62}, {25, 0x6c29c5e2, 0xaa6f308b},
  {36, 0xed5169ac, 0x54b8128b}, {62, 0x3488fd8b, 0x457822a8},
};

static void
test_vectors (void)
{
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (vectors); i++) {
    const struct vector *v = &vectors[i];

    g_test_message ("length %zu", v->len);
    g_assert_cmphex (rmr_jhash (alphabet, v->len, 0), ==, v->h0);
    g_assert_cmphex (rmr_jhash (alphabet, v->len, 0x12345678), ==, v->h1);
  }
}

/* The hash depends on the bytes only, not on where they sit in memory,
 * and never on the bytes after the key.
 */
static void
test_alignment_and_bounds (void)
{
  uint8_t buf[128];
  size_t i, off;

  for (i = 0; i < G_N_ELEMENTS (vectors); i++) {
    const struct vector *v = &vectors[i];

    for (off = 0; off < 8; off++) {
      uint8_t *copy;

      memset (buf, 0xa5, sizeof buf);
      memcpy (buf + off, alphabet, v->len);
      g_assert_cmphex (rmr_jhash (buf + off, v->len, 0), ==, v->h0);

      /* An exact-size heap copy: ASan flags any read past the key. */
      copy = g_memdup2 (alphabet, v->len);
      g_assert_cmphex (rmr_jhash (copy, v->len, 0x12345678), ==, v->h1);
      g_free (copy);
    }
  }
}

static void
test_group_id (void)
{
  g_assert_cmphex (rmr_group_id ("pool1"), ==, 0xe7fbfbe1);
  g_assert_cmphex (rmr_group_id ("test-pool"), ==, 0x50e7e3ac);
  g_assert_cmphex (rmr_group_id ("rmr.pool_01"), ==, 0xec85997f);
  g_assert_cmphex (rmr_group_id ("a"), ==, rmr_jhash ("a", 1, 0));
  g_assert_cmphex (rmr_group_id (""), ==, 0xdeadbeef);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/jhash/published", test_published);
  g_test_add_func ("/jhash/vectors", test_vectors);
  g_test_add_func ("/jhash/alignment-and-bounds", test_alignment_and_bounds);
  g_test_add_func ("/jhash/group-id", test_group_id);
  return g_test_run ();
}
