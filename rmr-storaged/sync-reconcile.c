/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The resync's reconcile (sync.c): when this member's own bits run out,
 * it asks every reachable peer for the peer's bits of our slot and takes
 * those where the peer is itself current there (its own bit clear at the
 * peer): bits a peer kept (a watched clear), never got cleared (it was
 * away), or that its online verify set (verify.c).  They are fetched and
 * cleared again, so every map drains, and a bit only a peer knew of is
 * never ignored.
 *
 * What it may not know yet: a write this member did to the chunk may
 * still be on its way to the peer it will fetch from.  So a bit is taken
 * only where the chunk is quiet here (pool_take_quiet); from the take on,
 * writes to the chunk wait for the fetch (sync_gate).  A peer is asked by
 * the member it was taken for: a session that leads to another member by
 * then answers ECANCELED (rmr.h), and the reconcile counts it missed.
 */
#include <errno.h>

#include "internal.h"
#include "util.h"

#define RECONCILE_CHUNKS (128 * 1024)

int
store_member_slot (struct store *st, uint32_t member)
{
  int k;

  g_mutex_lock (&st->md_lock);
  for (k = 0; k < RMR_MAX_MEMBERS; k++)
    if (st->sb.members[k].member_id == member)
      break;
  g_mutex_unlock (&st->md_lock);
  return k < RMR_MAX_MEMBERS ? k : -1;
}

uint64_t
sync_reconcile (struct srv_pool *pool, struct rmr_pool *peers, struct store *st,
                struct srv_maps *maps, int slot, uint64_t n, uint64_t gen,
                bool *missed)
{
  uint64_t c, len, k, added = 0;
  unsigned i, npeers = rmr_sync_npeers (peers);
  int pslot;
  g_autofree uint8_t *ours = g_malloc (RECONCILE_CHUNKS / 8);
  g_autofree uint8_t *theirs = g_malloc (RECONCILE_CHUNKS / 8);
  g_autofree uint8_t *have = g_malloc (RECONCILE_CHUNKS / 8);
  uint32_t member;

  for (i = 0; i < npeers; i++) {
    member = rmr_sync_peer_member (peers, i);
    if (member == RMR_MEMBER_NONE) {
      *missed = true;
      continue;
    }
    pslot = store_member_slot (st, member);
    if (pslot < 0 || pslot == slot)
      continue;
    for (c = 0; c < n; c += len) {
      bool any = false;
      len = MIN (n - c, RECONCILE_CHUNKS);
      if (rmr_sync_map_get (peers, i, member, gen, (unsigned) slot, c, len,
                            ours) < 0) {
        *missed = true;
        break;
      }
      for (k = 0; k < (len + 7) / 8 && !any; k++)
        any = ours[k] != 0;
      if (!any)
        continue;
      /* Only where the peer is current itself: a peer behind there
       * cannot be a source, and what it says of us is older than what we
       * know.
       */
      if (rmr_sync_map_get (peers, i, member, gen, pslot, c, len, theirs) < 0) {
        *missed = true;
        break;
      }
      for (k = 0; k < (len + 7) / 8; k++)
        ours[k] &= ~theirs[k];
      /* Taken only where no write we did may still be on its way to the
       * member we will fetch from (pool_take_quiet): the others wait for
       * a later reconcile.
       */
      maps_get_bits (maps, (unsigned) slot, c, len, have);
      pool_take_quiet (pool, maps, (unsigned) slot, c, len, ours);
      for (k = 0; k < (len + 7) / 8; k++)
        added += __builtin_popcount (ours[k] & ~have[k]);
    }
  }
  return added;
}
