/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The online verify of a storage node (verify.c, the thread and its
 * control; verify-rule.c, its pure decisions).  Included by internal.h.
 */
#ifndef RMR_STORAGED_VERIFY_H
#define RMR_STORAGED_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "proto.h"
#include "util.h"

struct srv_pool;

/* The checksum unit of a pool with chunks of 1 << shift bytes: the chunk,
 * or RMR_CSUM_UNIT_MAX bytes of a larger one (proto.h).
 */
static inline uint64_t
csum_unit (unsigned shift)
{
  return MIN (UINT64_C (1) << shift, (uint64_t) RMR_CSUM_UNIT_MAX);
}

/* Of n members' checksums of one unit (index 0..n-1), the members to mark
 * outdated: those that differ from member `source` (an index, or -1 for
 * none); without a source, with three members or more, those that differ
 * from a strict majority.  0 when every checksum is the same, and when
 * no member can be named (two members and no source, or no majority):
 * the difference is reported only.  *rule (if not NULL) says which rule
 * decided: "source", "majority", "no majority" or "no source".
 */
uint32_t verify_outdated (const uint32_t *crc, unsigned n, int source,
                          const char **rule);

/* Confirming a difference (verify.c): the same checksums must be seen
 * VERIFY_SAME times in a row, within VERIFY_TRIES comparisons.
 */
#define VERIFY_SAME 3
#define VERIFY_TRIES 8
struct verify_confirm {
  uint32_t crc[RMR_MAX_MEMBERS]; /* the last comparison's */
  unsigned n, tries, same;
};
enum verify_verdict {
  VERIFY_AGAIN,   /* compare once more (after a pause) */
  VERIFY_EQUAL,   /* the members agree: a write was in flight */
  VERIFY_DIFFER,  /* the same difference VERIFY_SAME times: in the data */
  VERIFY_CHANGING /* still changing after VERIFY_TRIES: skipped */
};
/* Start with the comparison that differed, then feed every later one. */
void verify_confirm_init (struct verify_confirm *vc, const uint32_t *crc,
                          unsigned n);
enum verify_verdict verify_confirm_next (struct verify_confirm *vc,
                                         const uint32_t *crc);

struct srv_verify;
/* Start an online verify of p against its peers (source: a member id, or
 * RMR_MEMBER_NONE; rate: bytes/s, 0: the pool's sync_rate).  Refused
 * (-1, err) while one runs, unless the pool is normal, or when a peer
 * cannot be reached.  No lock held.
 */
int verify_start (struct srv_pool *p, uint32_t source, uint64_t rate,
                  GString *err);
/* Stop a running verify and wait for its thread; the result stays.  No
 * lock held.
 */
void verify_stop (struct srv_pool *p);
/* Progress and result as "key: value" lines, and the one-line summary
 * ("last verify: ..."); p->lock held or not (takes the verify's own).
 */
void verify_status (struct srv_verify *v, GString *out);
void verify_summary (struct srv_verify *v, GString *out);
/* Stopped first (verify_stop); NULL allowed. */
void verify_free (struct srv_verify *v);

#endif
