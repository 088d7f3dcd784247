/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dirty maps: set/clear/test against a plain reference bitmap, page
 * allocation and release, the admin guide's summary, bit export and OR,
 * and the on-disk page encoding (round trip, and a damaged page taken as
 * all dirty, never as clean).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "dmap.h"
#include "util.h"

static void
check_against (const struct dmap *m, const uint8_t *ref, uint64_t n)
{
  uint64_t i, count = 0, next = 0;

  for (i = 0; i < n; i++) {
    bool want = ref[i];
    g_assert_cmpint (dmap_test (m, i), ==, want);
    count += want;
    if (want) {
      g_assert_cmpuint (dmap_next (m, next), ==, i);
      next = i + 1;
    }
  }
  g_assert_cmpuint (dmap_next (m, next), ==, DMAP_NONE);
  g_assert_cmpuint (dmap_count (m), ==, count);
}

static void
test_random_ops (void)
{
  const uint64_t n = 3 * DMAP_PAGE_BITS + 1234;
  struct dmap *m = dmap_new (n);
  uint8_t *ref = g_malloc0 (n);
  GRand *rnd = g_rand_new_with_seed (42);
  unsigned round;

  for (round = 0; round < 2000; round++) {
    uint64_t first = g_rand_int_range (rnd, 0, n + 10);
    uint64_t len = g_rand_int_range (rnd, 0, round % 10 == 0 ? 70000 : 200);
    bool set = g_rand_boolean (rnd);
    int64_t changed, expect = 0;
    uint64_t i;

    for (i = first; i < first + len && i < n; i++)
      if (ref[i] != set) {
        expect++;
        ref[i] = set;
      }
    changed =
      set ? dmap_set_range (m, first, len) : dmap_clear_range (m, first, len);
    g_assert_cmpint (changed, ==, expect);
    if (round % 100 == 0)
      check_against (m, ref, n);
  }
  check_against (m, ref, n);
  g_assert_true (dmap_any (m, 0, n) == (dmap_count (m) > 0));
  dmap_clear_all (m);
  g_assert_cmpuint (dmap_count (m), ==, 0);
  g_rand_free (rnd);
  g_free (ref);
  dmap_free (m);
}

static void
test_summary (void)
{
  struct dmap *m = dmap_new (800);
  static const uint64_t chunks[] = {12,  28,  80,  87,  93,  95,  116, 125,
                                    142, 340, 388, 402, 431, 435, 436, 437,
                                    453, 457, 486, 523, 531, 536, 554, 661,
                                    694, 745, 746, 750, 753, 755, 799};
  g_autoptr (GString) s = g_string_new (NULL);
  unsigned i;

  dmap_summary (m, 30, s);
  g_assert_cmpstr (s->str, ==, "[] 0/800 dirty");
  for (i = 0; i < G_N_ELEMENTS (chunks); i++)
    dmap_set_range (m, chunks[i], 1);
  g_string_truncate (s, 0);
  dmap_summary (m, 30, s);
  g_assert_cmpstr (s->str, ==,
                   "[12 28 80 87 93 95 116 125 142 340 388 402 431 435 436 "
                   "437 453 457 486 523 531 536 554 661 694 745 746 750 753 "
                   "755] 31/800 dirty");
  /* Ranges are clipped to the map. */
  g_assert_cmpint (dmap_set_range (m, 790, 100), ==, 9);
  g_assert_false (dmap_test (m, 800));
  g_assert_cmpint (dmap_set_range (m, 5000, 1), ==, 0);
  dmap_free (m);
}

static void
test_bits (void)
{
  struct dmap *m = dmap_new (100000), *o = dmap_new (100000);
  static uint8_t bits[(40000 + 7) / 8];

  dmap_set_range (m, 3, 5);
  dmap_set_range (m, 33000, 70); /* across a page boundary */
  dmap_set_range (m, 99999, 1);
  dmap_get_bits (m, 0, 40000, bits);
  g_assert_cmpint (bits[0], ==, 0xf8);
  g_assert_cmpint (dmap_or_bits (o, 0, 40000, bits), ==, 75);
  g_assert_cmpint (dmap_or_bits (o, 0, 40000, bits), ==, 0);
  dmap_get_bits (m, 60000, 40000, bits);
  g_assert_cmpint (dmap_or_bits (o, 60000, 40000, bits), ==, 1);
  g_assert_true (dmap_test (o, 99999));
  g_assert_true (dmap_test (o, 32639) == dmap_test (m, 32639));
  g_assert_cmpuint (dmap_count (o), ==, dmap_count (m));
  g_assert_true (dmap_any (o, 33069, 1));
  g_assert_false (dmap_any (o, 33070, 1000));
  dmap_free (m);
  dmap_free (o);
}

static void
test_pages (void)
{
  const uint64_t n = 2 * DMAP_PAGE_BITS + 10;
  struct dmap *m = dmap_new (n), *r = dmap_new (n);
  uint8_t buf[RMR_MAP_PAGE_SIZE];
  uint32_t p;

  g_assert_cmpuint (dmap_npages (m), ==, 3);
  g_assert_cmpuint (dmap_next_unsaved (m, 0), ==, UINT32_MAX);
  dmap_set_range (m, 7, 1);
  dmap_set_range (m, 2 * DMAP_PAGE_BITS + 9, 1);
  g_assert_cmpuint (dmap_next_unsaved (m, 0), ==, 0);
  g_assert_cmpuint (dmap_next_unsaved (m, 1), ==, 2);

  for (p = 0; p < 3; p++) {
    dmap_page_encode (m, 5, p, buf);
    g_assert_cmpint (dmap_page_decode (r, 5, p, buf), ==, 0);
    dmap_page_saved (m, p);
  }
  g_assert_cmpuint (dmap_next_unsaved (m, 0), ==, UINT32_MAX);
  g_assert_cmpuint (dmap_count (r), ==, 2);
  g_assert_true (dmap_test (r, 7));
  g_assert_true (dmap_test (r, 2 * DMAP_PAGE_BITS + 9));

  /* A never written page (all zero) is clean. */
  memset (buf, 0, sizeof buf);
  g_assert_cmpint (dmap_page_decode (r, 5, 0, buf), ==, 0);
  g_assert_false (dmap_test (r, 7));

  /* Damage of any kind: the page's chunks are all dirty. */
  dmap_page_encode (m, 5, 1, buf);
  buf[100] ^= 1;
  g_assert_cmpint (dmap_page_decode (r, 5, 1, buf), ==, -EBADMSG);
  g_assert_nonnull (strstr (rmr_get_error (), "checksum"));
  g_assert_cmpuint (dmap_count (r), ==, DMAP_PAGE_BITS + 1);
  g_assert_cmpuint (dmap_next_unsaved (r, 0), ==, 1);
  dmap_page_encode (m, 5, 1, buf);
  g_assert_cmpint (dmap_page_decode (r, 4, 1, buf), ==, -EBADMSG);
  g_assert_nonnull (strstr (rmr_get_error (), "slot"));
  dmap_page_encode (m, 5, 0, buf);
  g_assert_cmpint (dmap_page_decode (r, 5, 1, buf), ==, -EBADMSG);
  g_assert_nonnull (strstr (rmr_get_error (), "page number"));
  /* The last page: only its 10 valid chunks become dirty. */
  dmap_page_encode (m, 5, 2, buf);
  buf[20] ^= 0xff;
  g_assert_cmpint (dmap_page_decode (r, 5, 2, buf), ==, -EBADMSG);
  g_assert_cmpuint (dmap_count (r), ==, DMAP_PAGE_BITS + 10);
  g_assert_cmpint (dmap_page_decode (r, 5, 3, buf), ==, -EINVAL);
  dmap_free (m);
  dmap_free (r);
}

static void
test_empty (void)
{
  struct dmap *m = dmap_new (0);
  g_autoptr (GString) s = g_string_new (NULL);

  g_assert_nonnull (m);
  g_assert_cmpint (dmap_set_range (m, 0, 10), ==, 0);
  g_assert_cmpuint (dmap_next (m, 0), ==, DMAP_NONE);
  dmap_summary (m, 30, s);
  g_assert_cmpstr (s->str, ==, "[] 0/0 dirty");
  dmap_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dmap/random-ops", test_random_ops);
  g_test_add_func ("/dmap/summary", test_summary);
  g_test_add_func ("/dmap/bits", test_bits);
  g_test_add_func ("/dmap/pages", test_pages);
  g_test_add_func ("/dmap/empty", test_empty);
  return g_test_run ();
}
