/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which members an online verify marks outdated for a unit whose
 * checksums differ (verify.c; the rule of rmradm verify, issue 13).
 *
 * Only the decision lives here, pure, so that tests/test-verify-rule.c
 * can spell it out case by case:
 *   - a source named by the operator is right: every member whose
 *     checksum differs from the source's is outdated there;
 *   - without a source, with three members or more, a strict majority
 *     (more than half of the members compared) is right and the others
 *     are outdated;
 *   - otherwise (two members and no source, or no strict majority) no
 *     member can be named: the difference is reported, nothing marked.
 *     Guessing would risk overwriting the good copy with the bad one.
 * A member marked outdated fetches the unit's chunk again from a member
 * current there (sync.c), so a wrong verdict costs a resync, never data
 * a member holds current.
 */
#include "internal.h"

uint32_t
verify_outdated (const uint32_t *crc, unsigned n, int source,
                 const char **rule)
{
  uint32_t mask = 0, want;
  unsigned i, j, votes;
  bool differ = false;

  if (rule)
    *rule = NULL;
  for (i = 1; i < n; i++)
    differ |= crc[i] != crc[0];
  if (!differ)
    return 0;
  if (source >= 0 && (unsigned) source < n) {
    if (rule)
      *rule = "source";
    for (i = 0; i < n; i++)
      if (crc[i] != crc[source])
        mask |= 1u << i;
    return mask;
  }
  if (n < 3) {
    if (rule)
      *rule = "no source";
    return 0;
  }
  for (i = 0; i < n; i++) {
    want = crc[i];
    for (votes = 0, j = 0; j < n; j++)
      votes += crc[j] == want;
    if (2 * votes > n) {
      if (rule)
        *rule = "majority";
      for (j = 0; j < n; j++)
        if (crc[j] != want)
          mask |= 1u << j;
      return mask;
    }
  }
  if (rule)
    *rule = "no majority";
  return 0;
}
