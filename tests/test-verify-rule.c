/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The online verify's decisions (rmr-storaged/verify-rule.c), case by
 * case.  When a difference is real, interleavings with client writes:
 *   - a write in flight between two members: the next comparison agrees;
 *   - a unit written all the time: checksums change every comparison,
 *     skipped after VERIFY_TRIES, never counted;
 *   - a difference in the data: the same checksums VERIFY_SAME times;
 *   - written a while, then still different and stable: counted, the
 *     count of same restarting at each change;
 *   - one member's checksum changes alone (a write landed there only,
 *     the other member not yet): the run of same restarts.
 * Which members are outdated:
 *   - equal checksums: nothing outdated, no rule;
 *   - a source: every member that differs from it, whatever the majority
 *     says (the operator named the good copy), the source never;
 *   - three members or more and no source: the minority against a strict
 *     majority; no strict majority (1-1-1, 2-2): nothing, "no majority";
 *   - two members and no source: nothing, "no source" (report only).
 */
#undef NDEBUG

#include <glib.h>

#include "internal.h"

static void
test_equal (void)
{
  const uint32_t c[] = {7, 7, 7};
  const char *rule = "x";

  g_assert_cmpuint (verify_outdated (c, 3, -1, &rule), ==, 0);
  g_assert_null (rule);
  g_assert_cmpuint (verify_outdated (c, 3, 1, &rule), ==, 0);
  g_assert_null (rule);
  g_assert_cmpuint (verify_outdated (c, 1, -1, NULL), ==, 0);
}

static void
test_source (void)
{
  const uint32_t two[] = {1, 2};
  const uint32_t three[] = {5, 9, 9};
  const char *rule;

  g_assert_cmpuint (verify_outdated (two, 2, 0, &rule), ==, 0x2);
  g_assert_cmpstr (rule, ==, "source");
  g_assert_cmpuint (verify_outdated (two, 2, 1, &rule), ==, 0x1);
  /* The source against the majority: the source wins. */
  g_assert_cmpuint (verify_outdated (three, 3, 0, &rule), ==, 0x6);
  g_assert_cmpstr (rule, ==, "source");
  g_assert_cmpuint (verify_outdated (three, 3, 2, &rule), ==, 0x1);
}

static void
test_majority (void)
{
  const uint32_t one_bad[] = {4, 4, 8};
  const uint32_t first_bad[] = {3, 4, 4, 4};
  const uint32_t all_differ[] = {1, 2, 3};
  const uint32_t split[] = {1, 1, 2, 2};
  const uint32_t five[] = {6, 6, 6, 1, 2};
  const char *rule;

  g_assert_cmpuint (verify_outdated (one_bad, 3, -1, &rule), ==, 0x4);
  g_assert_cmpstr (rule, ==, "majority");
  g_assert_cmpuint (verify_outdated (first_bad, 4, -1, &rule), ==, 0x1);
  g_assert_cmpuint (verify_outdated (five, 5, -1, &rule), ==, 0x18);
  g_assert_cmpuint (verify_outdated (all_differ, 3, -1, &rule), ==, 0);
  g_assert_cmpstr (rule, ==, "no majority");
  /* Half is no majority. */
  g_assert_cmpuint (verify_outdated (split, 4, -1, &rule), ==, 0);
  g_assert_cmpstr (rule, ==, "no majority");
}

static void
test_two_no_source (void)
{
  const uint32_t c[] = {1, 2};
  const char *rule;

  g_assert_cmpuint (verify_outdated (c, 2, -1, &rule), ==, 0);
  g_assert_cmpstr (rule, ==, "no source");
  /* A source index out of range counts as none. */
  g_assert_cmpuint (verify_outdated (c, 2, 5, &rule), ==, 0);
  g_assert_cmpstr (rule, ==, "no source");
}

static void
test_confirm_write_in_flight (void)
{
  struct verify_confirm vc;
  const uint32_t first[] = {1, 2}, later[] = {2, 2};

  verify_confirm_init (&vc, first, 2);
  g_assert_cmpint (verify_confirm_next (&vc, later), ==, VERIFY_EQUAL);
}

static void
test_confirm_changing (void)
{
  struct verify_confirm vc;
  uint32_t crc[2] = {1, 2};
  unsigned t;

  verify_confirm_init (&vc, crc, 2);
  for (t = 2; t < VERIFY_TRIES; t++) {
    crc[0] += 10;
    crc[1] += 10;
    g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_AGAIN);
  }
  crc[0] += 10;
  crc[1] += 10;
  g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_CHANGING);
}

static void
test_confirm_stable (void)
{
  struct verify_confirm vc;
  const uint32_t crc[3] = {5, 5, 6};
  unsigned t;

  verify_confirm_init (&vc, crc, 3);
  for (t = 2; t < VERIFY_SAME; t++)
    g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_AGAIN);
  g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_DIFFER);
}

static void
test_confirm_written_then_stable (void)
{
  struct verify_confirm vc;
  uint32_t a[2] = {1, 2}, b[2] = {3, 4};
  unsigned t;

  verify_confirm_init (&vc, a, 2);
  g_assert_cmpint (verify_confirm_next (&vc, b), ==, VERIFY_AGAIN);
  for (t = 2; t < VERIFY_SAME; t++)
    g_assert_cmpint (verify_confirm_next (&vc, b), ==, VERIFY_AGAIN);
  g_assert_cmpint (verify_confirm_next (&vc, b), ==, VERIFY_DIFFER);
}

static void
test_confirm_one_member_moves (void)
{
  struct verify_confirm vc;
  uint32_t crc[2] = {1, 2};

  verify_confirm_init (&vc, crc, 2);
  g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_AGAIN);
  /* A write lands on member 1 alone: not the same difference, the run
   * starts again from this one.
   */
  crc[1] = 9;
  for (unsigned t = 1; t < VERIFY_SAME; t++)
    g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_AGAIN);
  g_assert_cmpint (verify_confirm_next (&vc, crc), ==, VERIFY_DIFFER);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/verify-rule/equal", test_equal);
  g_test_add_func ("/verify-rule/source", test_source);
  g_test_add_func ("/verify-rule/majority", test_majority);
  g_test_add_func ("/verify-rule/two-no-source", test_two_no_source);
  g_test_add_func ("/verify-rule/confirm-write-in-flight",
                   test_confirm_write_in_flight);
  g_test_add_func ("/verify-rule/confirm-changing", test_confirm_changing);
  g_test_add_func ("/verify-rule/confirm-stable", test_confirm_stable);
  g_test_add_func ("/verify-rule/confirm-written-then-stable",
                   test_confirm_written_then_stable);
  g_test_add_func ("/verify-rule/confirm-one-member-moves",
                   test_confirm_one_member_moves);
  return g_test_run ();
}
