/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hand-over (DESIGN 6, "One owner for hand-over"): the one place
 * where the client decides what a member missed, gives it to the
 * members, and decides whether a member may serve at all.  Used by the
 * reconnect of a failed leg (client-recover.c) and by an assemble after a
 * crash (client-pool.c, with the plan of client-assemble.c).
 *
 * What each member knows.  A member's dirty map holds, per member slot,
 * the chunks that member missed while this member recorded them: marks
 * carried by writes (the client's dirty_mask), map-adds after a leg
 * failed mid-write, and what earlier hand-overs gave it.  Each member
 * sees only the writes it received, and clears are saved lazily and
 * may come back after a crash: a set bit may be stale (an extra fetch),
 * a missing bit on one member may be present on another.  So the dirty
 * set of a member is the union over every reachable member's map of its
 * slot (and, after a power loss, its own recent-write record); no single
 * member's map, and no record alone (it only covers its window), is ever
 * taken as the whole truth.
 *
 * Reconnect of member R (IO frozen):
 *   - every map slot of every normal member is read; R's maps of the other
 *     members are replaced by that union (so R knows which peers are
 *     behind where, and forgets a bit whose clear it missed), and its own
 *     slot gets the union ORed in, plus the chunks of its recent-write
 *     record if R stopped uncleanly or an open went on without it (its
 *     generation is older: no assemble read that record, and a write of
 *     the crashed client may have reached R alone), by ho_record_bits:
 *     with normal members, where one of them is current (else R keeps
 *     the chunk: the normal members are behind there, R's copy is the
 *     best there is);
 *     with none, every chunk of the record waits for a member that may
 *     be current (IO to it fails with EIO meanwhile), unless every other
 *     member left while R was normal and R made every write it may hold
 *     durable then (the departure barrier, client-io.c): R's data holds
 *     all that those members can have, and R keeps the chunk.  (R's own
 *     map of a member away proves nothing: a bit in it says the member
 *     missed a write there once, not that it lacks the writes R lost; it
 *     may have caught up and taken newer ones before it went.)  Without
 *     that, a chunk dirty in R's record and for a member away ended dirty
 *     for both once that member was back, and never readable.
 *     The bits for R's own slot that only the client knows (its record's,
 *     and the ranges a write left different with nobody to record them)
 *     are given to the normal members first: a resync of such a chunk
 *     already under way on R (its daemon ran on) clears R's own bit only
 *     if no watching peer kept a bit for it, and a peer keeps only what
 *     it holds;
 *   - if no member is normal and R missed acknowledged writes since it
 *     was last handed its map (the client's `outdated` mask: set when a
 *     request is acknowledged without R, cleared by a hand-over from a
 *     normal member), nobody reachable can tell R what it missed: R is
 *     refused, naming the members that hold the writes (force is for an
 *     open only: a new client with force=1 takes the decision);
 *   - a member that did not miss anything may come back alone: its own
 *     bits (chunks it is resyncing, and its record if it stopped
 *     uncleanly) are fetched by its gate, or fail with EIO while no peer
 *     has them, never served stale.
 *
 * Assemble (no client alive before, nothing frozen yet): the same union
 * of every present member's maps, for every slot, given to every present
 * member; then the chunks of the recent-write records are made dirty for
 * every member but one source per chunk: the preferred source (the
 * plan's) where it is current, else the next member in the plan's order
 * that is current there (ho_assemble_bits).
 *
 * Adding bits is always safe; clearing is done only by the resync of the
 * member itself (watched clears, rmr-storaged/sync.c), so nothing here
 * clears a bit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "handover.h"
#include "util.h"

/* Chunks per map-get of a hand-over (16 KiB of bits). */
#define HO_CHUNKS (128 * 1024)

static inline bool
bit (const uint8_t *b, uint64_t c)
{
  return b[c / 8] & 1 << (c % 8);
}

static inline void
set_bit (uint8_t *b, uint64_t c)
{
  b[c / 8] |= 1 << (c % 8);
}

uint64_t
ho_assemble_bits (uint64_t nchunks, const uint8_t *al,
                  uint8_t *const umap[RMR_MAX_MEMBERS],
                  uint8_t *const unclean[RMR_MAX_MEMBERS], const int *order,
                  unsigned norder, uint32_t absent, uint64_t *lossy)
{
  uint64_t c, nosource = 0;
  unsigned i, s;
  int src;

  *lossy = 0;
  for (c = 0; c < nchunks; c++) {
    if (!bit (al, c))
      continue;
    src = -1;
    for (i = 0; i < norder && src < 0; i++)
      if (!bit (umap[order[i]], c) &&
          !(unclean && unclean[order[i]] && bit (unclean[order[i]], c)))
        src = order[i];
    /* Every current member here may have lost a write there (power loss
     * or a failed flush everywhere): one of them must be the source, or
     * the chunk could never be read again.
     */
    for (i = 0; i < norder && src < 0; i++)
      if (!bit (umap[order[i]], c)) {
        src = order[i];
        ++*lossy;
      }
    if (src < 0) {
      /* Every member here is behind there: the data is on a member that
       * is away (or lost); keep what the maps say.
       */
      nosource++;
      continue;
    }
    for (i = 0; i < norder; i++)
      if (order[i] != src)
        set_bit (umap[order[i]], c);
    for (s = 0; s < RMR_MAX_MEMBERS; s++)
      if (absent & 1u << s)
        set_bit (umap[s], c);
  }
  return nosource;
}

uint64_t
ho_record_bits (uint64_t nchunks, const uint8_t *rec,
                uint8_t *const umap[RMR_MAX_MEMBERS], uint32_t normal,
                uint32_t used, uint32_t proven, int self)
{
  uint64_t c, lossy = 0;
  unsigned s;

  for (c = 0; c < nchunks; c++) {
    bool may = false;
    if (!bit (rec, c))
      continue;
    for (s = 0; s < RMR_MAX_MEMBERS && !may; s++)
      if ((int) s != self)
        may = normal ? (normal & 1u << s) && !bit (umap[s], c)
                     : (used & ~proven & 1u << s) != 0;
    if (may)
      set_bit (umap[self], c);
    else
      lossy++;
  }
  return lossy;
}

bool
ho_may_enable_alone (uint32_t outdated, int slot)
{
  return !(outdated & 1u << slot);
}

uint64_t
ho_nchunks (const struct rmr_pool *pool)
{
  return (pool->size + pool->chunk_size - 1) >> log_2_bits (pool->chunk_size);
}

int
ho_collect (struct rmr_pool *pool, struct clt_leg *from, struct clt_sess *s,
            int slot, uint8_t *bits)
{
  uint64_t nchunks = ho_nchunks (pool), c, n, i;
  g_autofree uint8_t *page = g_malloc ((HO_CHUNKS + 7) / 8);
  int r;

  for (c = 0; c < nchunks; c += n) {
    struct rmr_hdr hdr = {.type = RMR_MSG_MAP_GET,
                          .generation = pool->generation,
                          .offset = c,
                          .dirty_mask = 1u << slot};
    n = MIN (nchunks - c, HO_CHUNKS);
    hdr.length = n;
    r = clt_leg_call (from, s, &hdr, NULL, 0, page, (n + 7) / 8, NULL);
    if (r < 0)
      return r;
    /* c is a multiple of 8: whole bytes. */
    for (i = 0; i < (n + 7) / 8; i++)
      bits[c / 8 + i] |= page[i];
  }
  return 0;
}

/* Clear every chunk of slot in leg's map (session s). */
static int
ho_clear_slot (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s,
               unsigned slot)
{
  uint64_t nchunks = ho_nchunks (pool), c, len;
  int r;

  for (c = 0; c < nchunks; c += len) {
    struct rmr_hdr hdr = {.type = RMR_MSG_MAP_CLEAR,
                          .generation = pool->generation,
                          .offset = c,
                          .dirty_mask = 1u << slot};
    len = MIN (nchunks - c, RMR_MAP_MAX_CHUNKS);
    hdr.length = len;
    r = clt_leg_call (leg, s, &hdr, NULL, 0, NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The used member slots of the pool. */
static uint32_t
used_slots (const struct rmr_pool *pool)
{
  uint32_t m = 0;
  unsigned s;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (pool->md.members[s] != RMR_MEMBER_NONE)
      m |= 1u << s;
  return m;
}

/* The members (ids, ", "-separated) of the legs in legs. */
static void
name_legs (struct rmr_pool *pool, unsigned legs, GString *out)
{
  unsigned i;

  for (i = 0; i < pool->nlegs; i++)
    if (legs & 1u << i)
      g_string_append_printf (out, "%s%" PRIu32, out->len ? ", " : "",
                              pool->legs[i].member_id);
}

/* Read every slot's union of the normal members' maps into u, add the
 * returning member's record where a normal member can give it, and give
 * it all to the member (see ho_reconnect).
 */
static int
reconnect_give (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s,
                unsigned normal, uint32_t used, struct ho_union *u,
                uint64_t *ndirty)
{
  uint64_t nchunks = ho_nchunks (pool), c, lossy = 0;
  size_t nbytes = (nchunks + 7) / 8 + 8;
  g_autofree struct rmr_al_rep *al = g_new0 (struct rmr_al_rep, 1);
  g_autofree uint8_t *rec = NULL;
  g_autofree uint8_t *known = NULL;
  unsigned i, slot;
  uint32_t normal_slots = 0;
  bool extra = false;
  int r;

  for (slot = 0; slot < RMR_MAX_MEMBERS; slot++) {
    u->umap[slot] = g_malloc0 (nbytes);
    if (!(used & 1u << slot))
      continue;
    for (i = 0; i < pool->nlegs; i++) {
      struct clt_leg *from = &pool->legs[i];
      if (!(normal & 1u << i))
        continue;
      r = ho_collect (pool, from, from->sess, slot, u->umap[slot]);
      if (r < 0) {
        /* That member failed now: the others know it is stale. */
        clt_leg_fail (from, rmr_get_error ());
        return r;
      }
    }
  }

  /* What the normal members hold for the member itself, before the bits
   * only the client knows (its record's, the pending ranges') join.
   */
  known = g_memdup2 (u->umap[leg->slot], nbytes);

  /* A member that lost power (or whose flush failed) may have lost
   * writes it had acknowledged but not made durable: what its recent-
   * write record holds is stale there too (DESIGN 6), wherever another
   * member may be current (ho_record_bits).  So is the record of a
   * member that an open went on without (missed_open), clean or not: a
   * write of the crashed client may have reached it alone, and the
   * assemble, which never read that record, made the others the source.
   */
  for (i = 0; i < pool->nlegs; i++)
    if ((normal & 1u << i) && pool->legs[i].slot >= 0)
      normal_slots |= 1u << pool->legs[i].slot;
  r = clt_al_get (leg, s, al);
  if (r < 0)
    return r;
  if (!(al->flags & RMR_AL_F_CLEAN) || leg->missed_open) {
    rec = g_malloc0 (nbytes);
    clt_al_to_bits (pool, al, rec);
    lossy = ho_record_bits (nchunks, rec, u->umap, normal_slots, used,
                            clt_dep_proven (pool, leg->slot), leg->slot);
    if (lossy)
      g_warning ("pool %s: member %" PRIu32 " stopped uncleanly or missed "
                 "an open, and no other member can hold newer data for "
                 "%" PRIu64 " chunks of its record: it keeps them (a write "
                 "acknowledged there and not flushed may be lost)",
                 pool->cfg.pool_name, leg->member_id, lossy);
  }

  /* Ranges a write left different on the legs with nobody to record it
   * (client-recover.c): this member takes them from a normal one, where
   * one is current.  Where none is (the normal members are behind there
   * themselves: the write failed on the last leg because that leg had no
   * source for the chunk), this member's copy is the best there is, and
   * may hold an acknowledged write no other has: it keeps it, and the
   * others fetch it from there (ho_record_bits).
   */
  if (normal) {
    g_autofree uint8_t *pend = g_malloc0 (nbytes);
    bool any = false;
    g_mutex_lock (&pool->pending_lock);
    for (i = 0; i < pool->pending->len; i++) {
      const struct clt_range *p =
        &g_array_index (pool->pending, struct clt_range, i);
      for (c = p->start; c < p->end && c < nchunks; c++)
        pend[c / 8] |= 1 << (c % 8);
      any = true;
    }
    g_mutex_unlock (&pool->pending_lock);
    if (any && ho_record_bits (nchunks, pend, u->umap, normal_slots, used, 0,
                               leg->slot))
      g_message ("pool %s: member %" PRIu32 " keeps its copy of chunks a "
                 "failed write left different, where no normal member is "
                 "current",
                 pool->cfg.pool_name, leg->member_id);
  }

  /* Those bits go to the normal members first, for the member's slot:
   * a resync of the chunk already under way on the member (its daemon
   * ran on) clears its own bit only if no watching peer kept its bit,
   * and a peer keeps one only if it holds it.  Given to the member
   * alone, such a bit could be cleared by that resync, on the strength
   * of a fetch made before the write it stands for.
   */
  for (c = 0; c < nbytes; c++) {
    u->umap[leg->slot][c] &= ~known[c]; /* the extra bits, for a moment */
    extra = extra || u->umap[leg->slot][c];
  }
  for (i = 0; i < pool->nlegs && extra; i++) {
    struct clt_leg *to = &pool->legs[i];
    if (!(normal & 1u << i))
      continue;
    r = clt_send_bits (pool, to, to->sess, leg->slot, u->umap[leg->slot], NULL);
    if (r < 0) {
      clt_leg_fail (to, rmr_get_error ());
      return r;
    }
  }
  for (c = 0; c < nbytes; c++)
    u->umap[leg->slot][c] |= known[c];

  for (slot = 0; slot < RMR_MAX_MEMBERS; slot++) {
    uint64_t nd;
    if (!(used & 1u << slot))
      continue;
    /* What the member knew of the others is replaced by what the normal
     * members know: they recorded every write it recorded while both
     * were normal, and got the maps of every hand-over since, while a
     * clear it missed (away, or lost with a crash) would leave it
     * believing a current peer behind for good.  Its own slot is only
     * added to: bits it keeps (resync not done) stay.
     */
    if ((int) slot != leg->slot && normal) {
      r = ho_clear_slot (pool, leg, s, slot);
      if (r < 0)
        return r;
    }
    r = clt_send_bits (pool, leg, s, slot, u->umap[slot], &nd);
    if (r < 0)
      return r;
    if ((int) slot == leg->slot)
      *ndirty = nd;
  }
  return 0;
}

int
ho_reconnect (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s,
              bool *from_peers, uint64_t *ndirty)
{
  uint32_t used = used_slots (pool);
  unsigned i, normal = 0, holders = 0;
  int r;

  *ndirty = 0;
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *l = &pool->legs[i];
    if (l == leg)
      continue;
    if (atomic_load (&l->state) == LEG_NORMAL)
      normal |= 1u << i;
    else if (l->slot >= 0 && !(atomic_load (&pool->outdated) & 1u << l->slot))
      holders |= 1u << i;
  }
  *from_peers = normal != 0;

  if (!normal &&
      !ho_may_enable_alone (atomic_load (&pool->outdated), leg->slot)) {
    g_autoptr (GString) who = g_string_new (NULL);
    name_legs (pool, holders, who);
    return rmr_err (EAGAIN,
                    "member %" PRIu32 " missed acknowledged writes and no "
                    "member that has them is reachable: waiting for member "
                    "%s (restarting the client with force=1 would serve its "
                    "older data)",
                    leg->member_id, who->len ? who->str : "(none known)");
  }

  {
    struct ho_union u = {{NULL}};
    r = reconnect_give (pool, leg, s, normal, used, &u, ndirty);
    ho_union_free (&u);
    if (r < 0)
      return r;
  }
  if (*ndirty)
    g_info ("pool %s: member %" PRIu32 " is handed %" PRIu64 " dirty chunks",
            pool->cfg.pool_name, leg->member_id, *ndirty);
  return 0;
}

int
ho_assemble_prepare (struct rmr_pool *pool, unsigned joined,
                     const struct clt_plan *plan, struct ho_union *u)
{
  uint64_t nchunks = ho_nchunks (pool), nosource, lossy;
  size_t nbytes = (nchunks + 7) / 8 + 8;
  uint32_t used = used_slots (pool);
  unsigned i, s;
  int r = 0;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    u->umap[s] = g_malloc0 (nbytes);
  for (s = 0; s < RMR_MAX_MEMBERS && r == 0; s++) {
    if (!(used & 1u << s))
      continue;
    for (i = 0; i < pool->nlegs && r == 0; i++)
      if ((joined & 1u << i) && !pool->legs[i].new_member)
        r =
          ho_collect (pool, &pool->legs[i], pool->legs[i].sess, s, u->umap[s]);
  }
  if (r < 0)
    return r;
  nosource = ho_assemble_bits (nchunks, plan->bits, u->umap, plan->unclean,
                               plan->order, plan->norder, plan->absent, &lossy);
  if (lossy)
    g_warning ("pool %s: %" PRIu64 " chunks were in the records of every "
               "member that stopped uncleanly (power loss or a failed "
               "flush): a write acknowledged there may be lost",
               pool->cfg.pool_name, lossy);
  if (nosource)
    g_warning ("pool %s: %" PRIu64 " chunks of the recent-write records are "
               "behind on every member here: they wait for a member that is "
               "away",
               pool->cfg.pool_name, nosource);
  return 0;
}

int
ho_assemble_give (struct rmr_pool *pool, unsigned give,
                  const struct ho_union *u)
{
  uint32_t used = used_slots (pool);
  unsigned i, s;
  int r;

  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (!(used & 1u << s))
      continue;
    for (i = 0; i < pool->nlegs; i++)
      if (give & 1u << i) {
        r = clt_send_bits (pool, &pool->legs[i], pool->legs[i].sess, s,
                           u->umap[s], NULL);
        if (r < 0)
          return r;
      }
  }
  return 0;
}

uint64_t
ho_union_count (const struct rmr_pool *pool, const struct ho_union *u, int slot)
{
  uint64_t nchunks = ho_nchunks (pool), c, n = 0;

  if (slot < 0 || !u->umap[slot])
    return 0;
  for (c = 0; c < nchunks; c++)
    n += bit (u->umap[slot], c);
  return n;
}

void
ho_union_free (struct ho_union *u)
{
  unsigned s;

  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    g_free (u->umap[s]);
    u->umap[s] = NULL;
  }
}
