/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bringing a pool up (DESIGN 5, 6): joining the members, create or
 * assemble, and after a crash making every leg agree again.
 *
 * Joining waits for members: a member that cannot be reached yet is tried
 * again until the timeout; a member that answers with a refusal ends the
 * open at once (a configuration error).  Create needs every member; an
 * assemble goes on once min-legs members joined and the others had their
 * chance, and the absent ones are recorded dirty for everything written
 * while they are away.
 *
 * Assemble after a crash.  Each member reports its recent-write record
 * (the extents that may differ between legs: writes that reached some
 * legs and not others when the compute host died, or that a member
 * acknowledged without making them durable before it lost power) and which
 * members it knows to be stale.  The plan orders the members as sources:
 * first one that no one records as stale (ties: the newest generation,
 * then the most writes), then the others.  handover.c gives every member
 * the union of every member's maps and makes the chunks of the records
 * dirty for all but one source per chunk, before the pool is enabled; the
 * members then resync those chunks among themselves.  A member that is
 * absent may hold writes the others lack unless min-legs puts every
 * write on a member here: assemble refuses, naming it, unless forced
 * (what members here record of it is no proof: see clt_assemble_plan).
 *
 * Members deleted at this open (cfg.delete_members, the offline
 * del_sess mode=delete): each must be away; it leaves the member table
 * the enable persists (the members drop its bits), so it no longer
 * counts for the quorum above.  Invariant: a delete never drops the only
 * current copy, so the source must then be a member nobody records as
 * stale, exactly as when a member is away; failing that the assemble is
 * refused.  An id no longer in the newest table is ignored: after a
 * client crash between two members' table changes (a live delete,
 * client-legs.c) the newest table already lacks it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "error.h"
#include "md.h"
#include "util.h"

#define JOIN_RETRY_MS 200
/* Once enough members joined, the others get this long to answer. */
#define JOIN_GRACE_MS 2000
#define MARK_CHUNKS (128 * 1024)

static uint64_t
nchunks_of (const struct rmr_pool *pool)
{
  return (pool->size + pool->chunk_size - 1) >> log_2_bits (pool->chunk_size);
}

/* A refusal by the member (it answered), as opposed to a member that
 * could not be reached: refusals are configuration errors.
 */
bool
clt_is_refusal (int r)
{
  return r != -ECONNREFUSED && r != -ETIMEDOUT && r != -EHOSTUNREACH &&
         r != -ENETUNREACH && r != -ECONNRESET && r != -ECONNABORTED &&
         r != -ENOTCONN && r != -EPIPE && r != -EBUSY;
}

int
clt_join_all (struct rmr_pool *pool, struct rmr_join_rep *rep, unsigned *joined)
{
  int64_t start = g_get_monotonic_time (), enough_at = 0, now;
  int64_t deadline = start + (int64_t) pool->cfg.timeout_ms * 1000;
  char why[RMR_MAX_MEMBERS][300];
  unsigned i, n = 0;
  int r;

  *joined = 0;
  memset (why, 0, sizeof why);
  for (;;) {
    for (i = 0; i < pool->nlegs; i++) {
      if (*joined & 1u << i)
        continue;
      r = clt_leg_join_new (&pool->legs[i], &rep[i]);
      if (r == 0) {
        *joined |= 1u << i;
        n++;
        continue;
      }
      snprintf (why[i], sizeof why[i], "%s", rmr_get_error ());
      if (clt_is_refusal (r))
        return r; /* the message says which server, why */
    }
    if (n == pool->nlegs)
      return 0;
    now = g_get_monotonic_time ();
    if (pool->cfg.mode != RMR_MODE_CREATE && n >= pool->cfg.min_legs) {
      if (!enough_at)
        enough_at = now;
      if (now - enough_at >= JOIN_GRACE_MS * 1000)
        return 0; /* assemble without the others */
    }
    if (now >= deadline)
      break;
    g_usleep (JOIN_RETRY_MS * 1000);
  }

  {
    g_autoptr (GString) missing = g_string_new (NULL);
    for (i = 0; i < pool->nlegs; i++)
      if (!(*joined & 1u << i))
        g_string_append_printf (missing, "%s%s", missing->len ? "; " : "",
                                why[i]);
    return rmr_err (ETIMEDOUT,
                    "pool '%s': %u of %u servers joined within %" PRIu64
                    " ms, %s; missing: %s",
                    pool->cfg.pool_name, n, pool->nlegs, pool->cfg.timeout_ms,
                    pool->cfg.mode == RMR_MODE_CREATE ? "create needs them all"
                                                      : "fewer than min-legs",
                    missing->str);
  }
}

/* Create: every store fresh. */
static int
decide_create (struct rmr_pool *pool, const struct rmr_join_rep *rep,
               unsigned joined, struct rmr_enable_req *en)
{
  const struct rmr_pool_config *cfg = &pool->cfg;
  unsigned i, nzeroed = 0;

  if (cfg->mode == RMR_MODE_ASSEMBLE)
    return rmr_err (EINVAL,
                    "mode: assemble, but no store holds pool '%s' yet "
                    "(use mode=create or mode=auto)",
                    cfg->pool_name);
  en->mode = RMR_MODE_CREATE;
  en->generation = 1;
  en->chunk_size = cfg->chunk_size ? cfg->chunk_size : RMR_DEFAULT_CHUNK_SIZE;
  for (i = 0; i < pool->nlegs; i++) {
    en->members[i] = rep[i].member_id;
    pool->legs[i].slot = i;
    nzeroed += !!(rep[i].flags & RMR_JOIN_F_ZEROED);
  }
  /* Stores not known to read as zeroes may differ: the first leg is
   * authoritative and the others sync everything from it (DESIGN 5).
   */
  if (nzeroed < pool->nlegs)
    for (i = 1; i < pool->nlegs; i++)
      pool->legs[i].new_member = true;
  return 0;
}

int
clt_decide (struct rmr_pool *pool, const struct rmr_join_rep *rep,
            unsigned joined, struct rmr_enable_req *en)
{
  const struct rmr_pool_config *cfg = &pool->cfg;
  unsigned i, j, k, nfresh = 0, njoined = 0, first = 0, best = 0;
  uint64_t maxgen = 0;

  for (i = 0; i < pool->nlegs; i++) {
    if (!(joined & 1u << i))
      continue;
    if (!njoined++)
      first = i;
    nfresh += rep[i].fresh;
    for (j = 0; j < i; j++)
      if ((joined & 1u << j) && rep[j].member_id == rep[i].member_id)
        return rmr_err (
          EINVAL, "server: %s and %s are both member %" PRIu32 " of pool '%s'",
          pool->legs[j].addr_name, pool->legs[i].addr_name, rep[i].member_id,
          cfg->pool_name);
    if (rep[i].mapped_size != rep[first].mapped_size)
      return rmr_err (EINVAL,
                      "size: the stores disagree: %s has mapped_size %" PRIu64
                      ", %s has %" PRIu64,
                      pool->legs[first].addr_name, rep[first].mapped_size,
                      pool->legs[i].addr_name, rep[i].mapped_size);
    if (njoined == 1 || rep[i].generation > maxgen) {
      maxgen = rep[i].generation;
      best = i;
    }
  }
  if (cfg->size && cfg->size != rep[first].mapped_size)
    return rmr_err (EINVAL,
                    "size: %" PRIu64 " given, but the stores' mapped_size "
                    "is %" PRIu64,
                    cfg->size, rep[first].mapped_size);

  memset (en, 0, sizeof *en);
  for (i = 0; i < RMR_MAX_MEMBERS; i++)
    en->members[i] = RMR_MEMBER_NONE;
  en->mapped_size = rep[first].mapped_size;
  en->queue_depth = cfg->queue_depth;
  en->min_legs = cfg->min_legs ? cfg->min_legs : 1;

  if (nfresh == njoined) {
    g_autoptr (GString) repl = g_string_new (NULL);
    for (i = 0; i < pool->nlegs; i++)
      if ((joined & 1u << i) && (rep[i].flags & RMR_JOIN_F_REPLACED))
        g_string_append_printf (repl, "%s%" PRIu32, repl->len ? ", " : "",
                                rep[i].member_id);
    /* A replacement disk joins a pool that holds data: with no store
     * here holding it, creating the pool would found it on disks that
     * hold nothing, and each replacement would then wait for a source
     * that is not there (replace.c, 3).
     */
    if (repl->len)
      return rmr_err (
        ENXIO,
        "pool '%s': no store here holds the pool, and the "
        "store of member %s is a replaced disk: bring back a "
        "member with the pool's data (or, to start anew "
        "without it, delete_store every store and create the pool anew)",
        cfg->pool_name, repl->str);
    if (njoined < pool->nlegs)
      return rmr_err (EINVAL,
                      "mode: every store that answered is fresh, but not "
                      "every server answered: a pool is created on all of "
                      "its members (is pool '%s' new?)",
                      cfg->pool_name);
    return decide_create (pool, rep, joined, en);
  }
  if (cfg->mode == RMR_MODE_CREATE)
    return rmr_err (EEXIST,
                    "mode=create, but %s already holds pool '%s' "
                    "(generation %" PRIu64 "; use mode=assemble or "
                    "mode=auto)",
                    pool->legs[best].addr_name, cfg->pool_name, maxgen);

  /* Assemble: the member table of the most recent store is the pool's. */
  en->mode = RMR_MODE_ASSEMBLE;
  en->generation = maxgen + 1;
  en->chunk_size = rep[best].chunk_size;
  en->queue_depth = rep[best].queue_depth;
  if (cfg->chunk_size && cfg->chunk_size != en->chunk_size)
    return rmr_err (EINVAL,
                    "chunk-size: %" PRIu32 " given, but pool '%s' has %" PRIu32,
                    cfg->chunk_size, cfg->pool_name, en->chunk_size);
  memcpy (en->members, rep[best].members, sizeof en->members);
  /* Members deleted at this open (offline del_sess mode=delete): out of
   * the table; clt_assemble_plan then wants a source nobody records as
   * stale, as with a member away.
   */
  pool->deleted_slots = 0;
  for (k = 0; k < cfg->ndelete; k++) {
    for (i = 0; i < pool->nlegs; i++)
      if ((joined & 1u << i) && rep[i].member_id == cfg->delete_members[k])
        return rmr_err (EINVAL,
                        "delete-member: member %" PRIu32 " is here (server "
                        "%s): remove its session instead",
                        cfg->delete_members[k], pool->legs[i].addr_name);
    for (j = 0; j < RMR_MAX_MEMBERS; j++)
      if (en->members[j] == cfg->delete_members[k]) {
        en->members[j] = RMR_MEMBER_NONE;
        pool->deleted_slots |= 1u << j;
      }
  }
  for (i = 0; i < pool->nlegs; i++) {
    if (!(joined & 1u << i))
      continue;
    pool->legs[i].slot = -1;
    for (j = 0; j < RMR_MAX_MEMBERS; j++)
      if (en->members[j] == rep[i].member_id)
        pool->legs[i].slot = j;
    if (rep[i].fresh) {
      /* A fresh store joins a pool that holds data: a new member (or a
       * member whose disk was replaced) that must resync everything.
       */
      pool->legs[i].new_member = true;
      pool->legs[i].new_slot = pool->legs[i].slot < 0;
      for (j = 0; j < RMR_MAX_MEMBERS && pool->legs[i].slot < 0; j++)
        if (en->members[j] == RMR_MEMBER_NONE) {
          en->members[j] = rep[i].member_id;
          pool->legs[i].slot = j;
        }
      if (pool->legs[i].slot < 0)
        return rmr_err (ENOSPC,
                        "server: %s cannot join pool '%s': it has "
                        "%u members already",
                        pool->legs[i].addr_name, cfg->pool_name,
                        RMR_MAX_MEMBERS);
      continue;
    }
    if (rep[i].chunk_size != en->chunk_size)
      return rmr_err (EINVAL,
                      "chunk-size: the stores disagree: %s has %" PRIu32
                      ", %s has %" PRIu32,
                      pool->legs[best].addr_name, en->chunk_size,
                      pool->legs[i].addr_name, rep[i].chunk_size);
    if (pool->legs[i].slot < 0)
      return rmr_err (
        EINVAL,
        "server: %s is member %" PRIu32 ", which is not a member of pool '%s'",
        pool->legs[i].addr_name, rep[i].member_id, cfg->pool_name);
  }
  return 0;
}

int
clt_al_get (struct clt_leg *leg, struct clt_sess *s, struct rmr_al_rep *al)
{
  g_autofree uint8_t *buf = g_malloc (RMR_AL_REP_HDR + 4 * RMR_AL_MAX_EXTENTS);
  struct rmr_hdr hdr = {.type = RMR_MSG_AL_GET,
                        .generation = leg->pool->generation};
  uint32_t got = 0;
  int r;

  /* The reply's length varies: receive up to the largest, then decode
   * what came (the transport checks it against the header).
   */
  r = clt_leg_call (leg, s, &hdr, NULL, 0, buf,
                    RMR_AL_REP_HDR + 4 * RMR_AL_MAX_EXTENTS, &got);
  if (r == 0 && rmr_al_rep_decode (buf, got, al) < 0) {
    rmr_err_prefix ("server %s: ", leg->addr_name);
    r = -EPROTO;
  }
  return r;
}

/* OR the extents of a record (or everything, if it was lost) into a
 * bitmap of chunks.
 */
void
clt_al_to_bits (const struct rmr_pool *pool, const struct rmr_al_rep *al,
                uint8_t *bits)
{
  uint64_t n = nchunks_of (pool), c, first, last;
  unsigned cshift = log_2_bits (pool->chunk_size), i;

  if (al->flags & RMR_AL_F_LOST) {
    for (c = 0; c < n; c++)
      bits[c / 8] |= 1 << (c % 8);
    return;
  }
  for (i = 0; i < al->n; i++) {
    uint64_t off = (uint64_t) al->extents[i] << al->shift;
    if (off >= pool->size)
      continue;
    first = off >> cshift;
    last = MIN (pool->size, off + (UINT64_C (1) << al->shift)) - 1;
    last >>= cshift;
    for (c = first; c <= last; c++)
      bits[c / 8] |= 1 << (c % 8);
  }
}

int
clt_send_bits (struct rmr_pool *pool, struct clt_leg *leg, struct clt_sess *s,
               int slot, const uint8_t *bits, uint64_t *ndirty)
{
  uint64_t n = nchunks_of (pool), c, len, i;
  int r;

  if (ndirty)
    *ndirty = 0;
  for (c = 0; c < n; c += len) {
    bool any = false;
    len = MIN (n - c, MARK_CHUNKS);
    for (i = 0; i < (len + 7) / 8; i++)
      if (bits[c / 8 + i]) {
        any = true;
        if (ndirty)
          *ndirty += __builtin_popcount (bits[c / 8 + i]);
      }
    if (!any)
      continue;
    struct rmr_hdr hdr = {.type = RMR_MSG_MAP_ADD,
                          .generation = pool->generation,
                          .offset = c,
                          .length = len,
                          .dirty_mask = 1u << slot};
    r = clt_leg_call (leg, s, &hdr, bits + c / 8, (len + 7) / 8, NULL, 0, NULL);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Is leg a a better source than leg b: not recorded stale, then the
 * newest generation, then the most writes.
 */
static bool
better (const struct rmr_join_rep *rep, const struct rmr_al_rep *al,
        const bool *stale, const struct rmr_pool *pool, unsigned a, unsigned b)
{
  bool sa = stale[pool->legs[a].slot], sb = stale[pool->legs[b].slot];

  if (sa != sb)
    return !sa;
  if (rep[a].generation != rep[b].generation)
    return rep[a].generation > rep[b].generation;
  return al[a].writes > al[b].writes;
}

/* The members of the pool that an assemble goes on without: those not
 * here, and those whose store is new (a replaced disk holds none of the
 * pool's writes).  Going on without
 * one is safe only when every acknowledged write reached min-legs
 * members, so that with N - min-legs + 1 members here each write is on
 * one of them.  What a member here records of the absent one does not
 * make it safe: that record may be older than what the absent member
 * did after (this member may itself have been failed since, and not
 * know it), so it is no proof that the absent member holds nothing
 * newer (DESIGN 6; DRBD asks the same of a lone node).  A member here
 * with a replaced disk counts as a member without its writes: its old
 * disk may have held writes no member here has (this member was failed,
 * the other took writes alone, then the compute host died), and it
 * will not come back, so without a quorum the assemble is refused as
 * for an absent member, and force=1 is the operator's decision to go on
 * without them.
 *
 * Returns 0 with *absent the slots of the members not here (recorded
 * dirty for what is written meanwhile), or -ENXIO naming a member whose
 * writes may be lost: one away before a replaced disk, since bringing
 * it back may make the quorum.
 */
int
clt_assemble_absent (const char *pool_name, const uint32_t *members,
                     const struct clt_presence *pr, unsigned min_legs,
                     bool force, uint32_t *absent)
{
  const bool *present = pr->present, *newslot = pr->newslot;
  const bool *replaced = pr->replaced, *stale = pr->stale;
  unsigned s, nmembers = 0, npresent = 0;
  bool quorum;

  *absent = 0;
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (members[s] == RMR_MEMBER_NONE || newslot[s])
      continue;
    nmembers++;
    npresent += present[s];
  }
  quorum = npresent + min_legs >= nmembers + 1;
  /* Members away first: bringing one back may make the quorum that a
   * replaced disk needs, so a refusal names them before any replaced
   * disk (which only force=1 gets past).
   */
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (members[s] == RMR_MEMBER_NONE || present[s] || newslot[s] ||
        replaced[s])
      continue;
    if (!quorum && !force)
      return rmr_err (ENXIO,
                      "pool '%s': member %" PRIu32 " is missing and may hold "
                      "the latest writes (%u of %u members here, min-legs %u: "
                      "a write may be on it alone%s): bring it back, or "
                      "assemble with force=1 (writes only it holds are lost)",
                      pool_name, members[s], npresent, nmembers, min_legs,
                      stale[s] ? "; a member here records it stale, but that "
                                 "record may be older than what it did since"
                               : "");
    if (!quorum)
      g_warning ("pool %s: force: assembling without member %" PRIu32
                 "; writes only it holds are lost",
                 pool_name, members[s]);
    *absent |= 1u << s;
  }
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (members[s] == RMR_MEMBER_NONE || !replaced[s] || quorum)
      continue;
    if (!force)
      return rmr_err (ENXIO,
                      "pool '%s': member %" PRIu32 " has a new store (a "
                      "replaced disk) and its old disk may have held the "
                      "latest writes (%u of %u members here with their "
                      "data, min-legs %u: a write may have been on it "
                      "alone): assemble with force=1 to go on without "
                      "them (writes only its old disk held are lost)",
                      pool_name, members[s], npresent, nmembers, min_legs);
    g_warning ("pool %s: force: member %" PRIu32 " has a new store (a "
               "replaced disk): writes only its old disk held are lost",
               pool_name, members[s]);
  }
  return 0;
}

/* The assemble plan: the member slots to mark dirty for the chunks in
 * bits, once the pool is enabled.
 */
int
clt_assemble_plan (struct rmr_pool *pool, const struct rmr_join_rep *rep,
                   unsigned joined, struct clt_plan *plan)
{
  const struct rmr_enable_req *en = &pool->md;
  g_autofree struct rmr_al_rep *al =
    g_new0 (struct rmr_al_rep, RMR_MAX_MEMBERS);
  struct clt_presence pr;
  bool *present = pr.present, *stale = pr.stale;
  unsigned i, s;
  unsigned min_legs;
  int src = -1;
  int r;

  memset (plan, 0, sizeof *plan);
  memset (&pr, 0, sizeof pr);
  plan->bits = g_malloc0 ((nchunks_of (pool) + 7) / 8 + 8);
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    if (!(joined & 1u << i) || leg->new_member)
      continue;
    r = clt_al_get (leg, leg->sess, &al[i]);
    if (r < 0)
      return r;
    present[leg->slot] = true;
    for (s = 0; s < RMR_MAX_MEMBERS; s++)
      if (al[i].states[s] == RMR_MEMBER_DIRTY)
        stale[s] = true;
    clt_al_to_bits (pool, &al[i], plan->bits);
    if (!(al[i].flags & RMR_AL_F_CLEAN)) {
      plan->unclean[leg->slot] = g_malloc0 ((nchunks_of (pool) + 7) / 8 + 8);
      clt_al_to_bits (pool, &al[i], plan->unclean[leg->slot]);
    }
  }
  /* Members whose store is new: a member being added (a new slot), or a
   * replaced disk.
   */
  for (i = 0; i < pool->nlegs; i++) {
    if (!(joined & 1u << i) || !pool->legs[i].new_member)
      continue;
    if (pool->legs[i].new_slot)
      pr.newslot[pool->legs[i].slot] = true;
    else
      pr.replaced[pool->legs[i].slot] = true;
  }
  /* Writes were acknowledged under the min-legs of the clients before
   * this one, saved on the members at each enable: the lowest of those
   * here and ours is what a write is sure to have reached.  (An assemble
   * that went on without a member under a min-legs was safe under the
   * lowest one before it, or forced.)
   */
  min_legs = pool->cfg.min_legs;
  for (i = 0; i < pool->nlegs; i++)
    if ((joined & 1u << i) && !pool->legs[i].new_member && rep[i].min_legs &&
        rep[i].min_legs < min_legs)
      min_legs = rep[i].min_legs;
  r = clt_assemble_absent (pool->cfg.pool_name, en->members, &pr, min_legs,
                           pool->cfg.force, &plan->absent);
  if (r < 0)
    return r;

  /* The source: a member nobody records as stale; the newest generation,
   * then the most writes.  With every member here (none absent) a member
   * recorded stale somewhere is still the source where it is current:
   * the per-chunk choice of handover.c uses the maps of all of them.
   */
  for (i = 0; i < pool->nlegs; i++) {
    struct clt_leg *leg = &pool->legs[i];
    if (!(joined & 1u << i) || leg->new_member)
      continue;
    if (stale[leg->slot] && !pool->cfg.force &&
        (plan->absent || pool->deleted_slots))
      continue;
    if (src < 0 || better (rep, al, stale, pool, i, src))
      src = i;
  }
  if (src < 0) {
    g_autoptr (GString) who = g_string_new (NULL);
    for (i = 0; i < pool->nlegs; i++)
      if (joined & 1u << i)
        g_string_append_printf (who, "%s%" PRIu32, who->len ? ", " : "",
                                pool->legs[i].member_id);
    return rmr_err (ENXIO,
                    "pool '%s': every member here (%s) is recorded stale by "
                    "another: the current data is on a missing %smember; "
                    "bring it back, or assemble with force",
                    pool->cfg.pool_name, who->str,
                    pool->deleted_slots ? "or deleted " : "");
  }
  plan->source = src;
  /* The order of sources per chunk (handover.c): the chosen source, then
   * the others by the same preference.
   */
  {
    unsigned taken = 0;
    int next = src;
    while (next >= 0) {
      plan->order[plan->norder++] = pool->legs[next].slot;
      taken |= 1u << next;
      next = -1;
      for (i = 0; i < pool->nlegs; i++) {
        if (!(joined & 1u << i) || pool->legs[i].new_member ||
            (taken & 1u << i))
          continue;
        if (next < 0 || better (rep, al, stale, pool, i, next))
          next = i;
      }
    }
  }
  return 0;
}

void
clt_plan_clear (struct clt_plan *plan)
{
  unsigned s;

  g_free (plan->bits);
  plan->bits = NULL;
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    g_free (plan->unclean[s]);
    plan->unclean[s] = NULL;
  }
}

int
clt_mark_new_members (struct rmr_pool *pool, unsigned joined, unsigned on)
{
  uint64_t nchunks = nchunks_of (pool), c, len;
  unsigned n, k;
  int r;

  for (n = 0; n < pool->nlegs; n++) {
    struct clt_leg *nl = &pool->legs[n];
    if (!(joined & 1u << n) || !nl->new_member)
      continue;
    for (k = 0; k < pool->nlegs; k++) {
      if (!(joined & on & 1u << k))
        continue;
      for (c = 0; c < nchunks; c += len) {
        struct rmr_hdr hdr = {.type = RMR_MSG_MAP_ADD,
                              .generation = pool->generation,
                              .offset = c,
                              .dirty_mask = 1u << nl->slot};
        len = MIN (nchunks - c, RMR_MAP_MAX_CHUNKS);
        hdr.length = len;
        r = clt_leg_call (&pool->legs[k], pool->legs[k].sess, &hdr, NULL, 0,
                          NULL, 0, NULL);
        if (r < 0)
          return r;
      }
    }
  }
  return 0;
}
