/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The decisions of an online verify (verify.c; rmradm verify, issue 13),
 * pure, so that tests/test-verify-rule.c can spell them out case by case.
 *
 * When a difference is real (verify_confirm_*).  Checksums taken a moment
 * apart may differ only because a client write reached one member and
 * not yet the other.  A difference counts once the very same checksums
 * were seen VERIFY_SAME times in a row (no write landed on any member
 * meanwhile, and they still differ); the members agreeing at any point
 * ends it (a write was in flight); checksums still changing after
 * VERIFY_TRIES comparisons mean a unit written all the time: skipped,
 * never guessed.
 *
 * Which members are outdated (verify_outdated):
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
#include <string.h>

#include "internal.h"

uint32_t
verify_outdated (const uint32_t *crc, unsigned n, int source, const char **rule)
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

void
verify_confirm_init (struct verify_confirm *vc, const uint32_t *crc, unsigned n)
{
  *vc = (struct verify_confirm){
    .n = MIN (n, RMR_MAX_MEMBERS), .tries = 1, .same = 1};
  memcpy (vc->crc, crc, vc->n * sizeof *crc);
}

enum verify_verdict
verify_confirm_next (struct verify_confirm *vc, const uint32_t *crc)
{
  unsigned i;
  bool equal = true, same = true;

  for (i = 0; i < vc->n; i++) {
    equal &= crc[i] == crc[0];
    same &= crc[i] == vc->crc[i];
  }
  memcpy (vc->crc, crc, vc->n * sizeof *crc);
  vc->tries++;
  if (equal)
    return VERIFY_EQUAL;
  vc->same = same ? vc->same + 1 : 1;
  if (vc->same >= VERIFY_SAME)
    return VERIFY_DIFFER;
  return vc->tries >= VERIFY_TRIES ? VERIFY_CHANGING : VERIFY_AGAIN;
}
