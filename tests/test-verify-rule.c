/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The online verify's rule (rmr-storaged/verify-rule.c), case by case:
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/verify-rule/equal", test_equal);
  g_test_add_func ("/verify-rule/source", test_source);
  g_test_add_func ("/verify-rule/majority", test_majority);
  g_test_add_func ("/verify-rule/two-no-source", test_two_no_source);
  return g_test_run ();
}
