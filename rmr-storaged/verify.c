/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Online verify (rmradm verify, issue 13; drbdadm verify's job, single
 * hop): this member compares every chunk with its peers by checksum, and
 * marks outdated the members that hold a different copy.
 *
 * One thread per verify walks the device in batches of up to 1 MiB: it
 * reads the batch from its own store and asks every peer, through the
 * pool's sync pool, for the crc32c of each unit of the batch (a unit is
 * the chunk, or 1 MiB of a larger chunk: proto.h), naming the member it
 * took each session for at the start: a session that leads to another
 * member by then (re-pointed, its index reused, the node replaced) is
 * refused (rmr.h) and ends the verify, never compared as the member it
 * was.  Only checksums cross the network; the compute host is not
 * involved.  Client IO goes on; the
 * walk is paced like the resync (sync-pace.c: the verify's rate, slowed
 * to sync_min_rate while clients do IO here).
 *
 * What this member knows, and when.  A client write reaches the members
 * one after the other, so two copies compared a moment apart may differ
 * only because a write landed on one member and is still on its way to
 * another (in the compute host's send queue, say).  Hence a range is
 * compared only where it is quiet on every member at its reading
 * (pool-io.c csum_admit_unlocked, the same rule here and at the peers):
 * no client write to it in flight there, and every write that member did
 * there known done on every leg (the recent-write record's horizon, which
 * every write and flush carries: al.c); a member that keeps no record
 * cannot tell, and the verify refuses.  Ranges dirty for any member in a
 * member's map (being resynced, or known to differ), stale there, or
 * after a failed write there are not comparable: skipped, and counted.
 * A unit that still differs is compared again, alone, after pauses, and
 * counts only once the very same checksums came back VERIFY_SAME times in
 * a row (verify-rule.c); one that keeps changing is skipped.
 *
 * Who is marked (verify-rule.c): the members that differ from --source;
 * without one, with three members or more, those that differ from a
 * strict majority; with two members and no source, nobody (reported
 * only).  The mark is set in this member's map, for the outdated member's
 * slot, and saved before it counts as repaired.  This member's own slot
 * is marked only while the chunk is quiet here (pool_mark_outdated, under
 * the pool's lock, so a write admitted later waits for the fetch at the
 * resync gate): no write this member did may be on its way to the member
 * it fetches from, which would otherwise overwrite it with an older copy.
 * A peer's slot is found by that peer's reconcile (sync.c), which takes
 * the bits a current peer holds for it under the same quiet rule, fetches
 * the chunk from a current member and clears the bit here.  No new
 * privilege: a peer never writes another member's map (the role table).
 *
 * Next fault.  A crash of this node mid-verify: the marks saved stay in
 * its map (its own resync goes on after the restart; a mark for a peer
 * not yet taken is dropped by the hand-over that brings this node back,
 * so verify again); the verify itself is not resumed.  A peer lost: its
 * checksum request fails and the verify stops with that error (a verify
 * compares every member of the table).  The pool leaving normal, a new
 * generation, or a client joining (an assemble or a hand-over collects
 * the maps): the verify stops before it compares or marks anything more.
 * The store removed: verify_stop runs first (pool_remove_store), and what
 * the thread reads is counted in flight until then.
 *
 * Locking: v->lock protects the progress and result below it, stop and
 * exited; the thread takes the pool's lock only through pool-io.c.
 * p->verify is set under p->lock.  The thread sets exited (and
 * broadcasts) as its very last touch of v and p; every stopper waits for
 * it, and v is freed only after it (whoever takes v->thread out joins
 * it).  The thread holds no reference of the pool: a pool is freed only
 * once its store is gone, and pool_remove_store stops the verify first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "error.h"
#include "internal.h"
#include "util.h"

#define BATCH (UINT64_C (1) << 20) /* bytes read and compared at once */
#define BUSY_TRIES 100             /* a batch not quiet: about 1 s */
#define UNIT_TRIES 10              /* a unit not quiet: about 0.1 s */
#define BUSY_US 10000
#define CONFIRM_US 100000 /* between two comparisons of a unit */
#define NFIRST 10         /* differing chunks listed */
#define PEER_TRIES 15     /* a peer session in its join back-off: 1.5 s */
#define PEER_TRY_US 100000
#define MAX_UNITS (BATCH / RMR_MIN_CHUNK_SIZE)

enum verify_state { V_RUNNING, V_DONE, V_FAILED, V_STOPPED };

struct vmember {
  uint32_t member_id;
  int peer; /* index in the sync pool, -1: this member */
  int slot; /* in the store's member table */
  uint64_t outdated;
};

struct srv_verify {
  struct srv_pool *pool;
  struct rmr_pool *peers;
  GThread *thread;
  uint64_t generation;
  unsigned shift;
  uint64_t unit, nchunks, mapped_size;
  struct vmember m[RMR_MAX_MEMBERS];
  unsigned n;
  int source;         /* index in m, -1: none */
  uint64_t last_diff; /* the thread's: the chunk counted last */
  uint32_t last_mask; /* and the members marked there */

  GMutex lock; /* protects everything below */
  GCond cond;  /* stop, exited */
  bool stop;
  bool exited;       /* the thread no longer touches v or the pool */
  unsigned stoppers; /* verify_stop calls waiting (under p->lock) */
  struct sync_pace pace;
  enum verify_state state;
  uint64_t done, checked, differing, repaired, skipped, bytes;
  uint64_t first[NFIRST];
  unsigned nfirst;
  int64_t started, finished; /* µs, monotonic */
  int64_t started_wall;      /* µs since the epoch */
  char error[RMR_ERRMSG_MAX + 200];
};

/* The checksums of one batch: crc[member][unit]. */
struct vbatch {
  uint64_t off;
  uint32_t len, nunits;
  uint32_t crc[RMR_MAX_MEMBERS][MAX_UNITS];
};

/* What sums () found. */
enum { SUMS_OK, SUMS_BUSY, SUMS_NOT_COMPARABLE };

static bool
stopping (struct srv_verify *v)
{
  bool s;

  g_mutex_lock (&v->lock);
  s = v->stop;
  g_mutex_unlock (&v->lock);
  return s;
}

/* Sleep us µs, or less if the verify is stopped; false if it is. */
static bool
pause_us (struct srv_verify *v, int64_t us)
{
  int64_t until = g_get_monotonic_time () + us;
  bool go;

  g_mutex_lock (&v->lock);
  while (!v->stop && g_cond_wait_until (&v->cond, &v->lock, until))
    ;
  go = !v->stop;
  g_mutex_unlock (&v->lock);
  return go;
}

static int fail (struct srv_verify *v, const char *fmt, ...)
  G_GNUC_PRINTF (2, 3);

static int
fail (struct srv_verify *v, const char *fmt, ...)
{
  va_list ap;

  g_mutex_lock (&v->lock);
  va_start (ap, fmt);
  g_vsnprintf (v->error, sizeof v->error, fmt, ap);
  va_end (ap);
  g_mutex_unlock (&v->lock);
  return -1;
}

/* Our own checksums of b's range into b->crc[0] (tries: how often a
 * range not quiet is tried).  SUMS_*, or -1 (stopped or failed).
 */
static int
local_sums (struct srv_verify *v, struct vbatch *b, uint8_t *buf,
            unsigned tries)
{
  g_autoptr (GString) why = g_string_new (NULL);
  struct store *st;
  uint32_t u, len;
  unsigned t;
  int r;

  for (t = 0;; t++) {
    g_string_truncate (why, 0);
    r = pool_local_begin (v->pool, v->generation, b->off, b->len, &st, why);
    if (r != -EAGAIN)
      break;
    if (t + 1 >= tries)
      return SUMS_BUSY;
    if (!pause_us (v, BUSY_US))
      return -1;
  }
  if (r == -EBUSY)
    return SUMS_NOT_COMPARABLE;
  if (r < 0)
    return fail (v, "%s", why->str);
  r = store_io_wait (st, STORE_READ, buf, b->off, b->len);
  pool_local_end (v->pool);
  if (r < 0)
    return fail (v, "reading %" PRIu32 " bytes at %" PRIu64 ": %s", b->len,
                 b->off, strerror (-r));
  for (u = 0; u < b->nunits; u++) {
    len = (uint32_t) MIN (v->unit, b->len - u * v->unit);
    b->crc[0][u] = rmr_crc32c (0, buf + u * v->unit, len);
  }
  return SUMS_OK;
}

/* The checksums of every member for b.  SUMS_*, or -1 (stopped or
 * failed).
 */
static int
sums (struct srv_verify *v, struct vbatch *b, uint8_t *buf, unsigned tries)
{
  unsigned i, t;
  int r;

  b->nunits = (uint32_t) ((b->len + v->unit - 1) / v->unit);
  r = local_sums (v, b, buf, tries);
  if (r != SUMS_OK)
    return r;
  for (i = 1; i < v->n; i++) {
    for (t = 0;; t++) {
      r = rmr_sync_csum (v->peers, v->m[i].peer, v->m[i].member_id,
                         v->generation, b->off, b->len, b->nunits, b->crc[i]);
      if (r != -EAGAIN)
        break;
      if (t + 1 >= tries)
        return SUMS_BUSY;
      if (!pause_us (v, BUSY_US))
        return -1;
    }
    if (r == -EBUSY)
      return SUMS_NOT_COMPARABLE;
    if (r < 0)
      return fail (v, "member %" PRIu32 ": %s", v->m[i].member_id,
                   rmr_get_error ());
  }
  return SUMS_OK;
}

static bool
all_equal (struct srv_verify *v, const struct vbatch *b, uint32_t u)
{
  for (unsigned i = 1; i < v->n; i++)
    if (b->crc[i][u] != b->crc[0][u])
      return false;
  return true;
}

/* A map mark waited for. */
struct mark_wait {
  struct map_waiter w;
  GMutex lock;
  GCond cond;
  bool done;
  int err;
};

static void
map_marked (struct map_waiter *w, int err)
{
  struct mark_wait *m = container_of (w, struct mark_wait, w);

  g_mutex_lock (&m->lock);
  m->err = err;
  m->done = true;
  g_cond_signal (&m->cond);
  g_mutex_unlock (&m->lock);
}

/* Mark chunk c outdated for the members in mask (indices of m), in our
 * map, saved (pool_mark_outdated; our own slot only while the chunk is
 * quiet here: tried for a while).  1 marked, 0 not now (not quiet), -1
 * stopped or failed.
 */
static int
mark_outdated (struct srv_verify *v, uint64_t c, uint32_t mask)
{
  g_autoptr (GString) why = g_string_new (NULL);
  struct mark_wait m = {.w = {.done = map_marked}};
  uint32_t slots = 0;
  unsigned i, t;
  bool held;
  int r;

  for (i = 0; i < v->n; i++)
    if (mask & 1u << i)
      slots |= 1u << v->m[i].slot;
  g_mutex_init (&m.lock);
  g_cond_init (&m.cond);
  for (t = 0;; t++) {
    g_string_truncate (why, 0);
    r = pool_mark_outdated (v->pool, v->generation, c, slots, &m.w, why);
    if ((r != -EAGAIN && r != -EBUSY) || t + 1 >= BUSY_TRIES)
      break;
    if (!pause_us (v, BUSY_US)) {
      r = -ECANCELED;
      break;
    }
  }
  held = r == 0 || r == 1; /* counted in flight by pool_mark_outdated */
  if (r == 1) {
    g_mutex_lock (&m.lock);
    while (!m.done)
      g_cond_wait (&m.cond, &m.lock);
    g_mutex_unlock (&m.lock);
    r = m.err;
  }
  g_mutex_clear (&m.lock);
  g_cond_clear (&m.cond);
  if (held)
    pool_local_end (v->pool);
  if (r == -EAGAIN || r == -EBUSY)
    return 0;
  if (r == -ECANCELED && stopping (v))
    return -1;
  if (r < 0)
    return fail (v, "marking chunk %" PRIu64 " outdated: %s", c,
                 why->len ? why->str : strerror (-r));
  if (mask & 1u) /* this member: its resync fetches the chunk now */
    pool_sync_kick (v->pool);
  return 1;
}

static void
count (struct srv_verify *v, uint64_t checked, uint64_t skipped)
{
  g_mutex_lock (&v->lock);
  v->checked += checked;
  v->skipped += skipped;
  g_mutex_unlock (&v->lock);
}

/* Unit u of b differs: compare it alone again, after pauses, until the
 * verdict (verify-rule.c): counted, and its outdated members marked, if
 * the same difference persists; skipped if it keeps changing or turns
 * not comparable.  0, or -1 (stopped or failed).
 */
static int
confirm (struct srv_verify *v, const struct vbatch *b, uint32_t u, uint8_t *buf)
{
  g_autofree struct vbatch *one = g_new0 (struct vbatch, 1);
  uint64_t c = (b->off + u * v->unit) >> v->shift;
  enum verify_verdict verdict = VERIFY_AGAIN;
  uint32_t crc[RMR_MAX_MEMBERS], mask, todo;
  struct verify_confirm vc;
  const char *rule;
  unsigned i;
  int r = 0;

  for (i = 0; i < v->n; i++)
    crc[i] = b->crc[i][u];
  verify_confirm_init (&vc, crc, v->n);
  one->off = b->off + u * v->unit;
  one->len = (uint32_t) MIN (v->unit, v->mapped_size - one->off);
  while (verdict == VERIFY_AGAIN) {
    if (!pause_us (v, CONFIRM_US))
      return -1;
    r = sums (v, one, buf, UNIT_TRIES);
    if (r < 0)
      return -1;
    if (r != SUMS_OK) {
      verdict = VERIFY_CHANGING; /* not quiet, or being resynced */
      break;
    }
    for (i = 0; i < v->n; i++)
      crc[i] = one->crc[i][0];
    verdict = verify_confirm_next (&vc, crc);
  }
  if (verdict == VERIFY_EQUAL) {
    count (v, 1, 0); /* a write was in flight */
    return 0;
  }
  if (verdict == VERIFY_CHANGING) {
    count (v, 0, 1);
    return 0;
  }
  mask = verify_outdated (crc, v->n, v->source, &rule);
  /* Units of one chunk (chunks over 1 MiB) count once; a later unit may
   * still name a member an earlier one did not.
   */
  todo = mask;
  if (c == v->last_diff)
    todo &= ~v->last_mask;
  r = 0;
  if (todo && (r = mark_outdated (v, c, todo)) < 0)
    return -1;
  if (c == v->last_diff) {
    if (r == 1)
      v->last_mask |= todo;
    count (v, 1, 0);
    return 0;
  }
  v->last_diff = c;
  v->last_mask = r == 1 ? todo : 0;
  g_message ("pool %s: verify: chunk %" PRIu64 " (offset %" PRIu64
             ") differs between members (%s)%s",
             v->pool->name, c, c << v->shift, rule,
             !mask    ? ": reported"
             : r == 1 ? ""
                      : ": not quiet here, not marked");
  g_mutex_lock (&v->lock);
  v->checked++;
  v->differing++;
  if (v->nfirst < NFIRST)
    v->first[v->nfirst++] = c << v->shift;
  if (r == 1) {
    v->repaired++;
    for (i = 0; i < v->n; i++)
      if (todo & 1u << i)
        v->m[i].outdated++;
  }
  g_mutex_unlock (&v->lock);
  return 0;
}

/* Units of b compared alone: a member refused the whole batch (a write
 * kept part of it busy, or part of it is not comparable).
 */
static int
batch_by_unit (struct srv_verify *v, const struct vbatch *b, uint8_t *buf)
{
  g_autofree struct vbatch *one = g_new0 (struct vbatch, 1);
  uint32_t u;
  int r;

  for (u = 0; u < b->nunits; u++) {
    one->off = b->off + u * v->unit;
    one->len = (uint32_t) MIN (v->unit, v->mapped_size - one->off);
    r = sums (v, one, buf, UNIT_TRIES);
    if (r < 0)
      return -1;
    if (r != SUMS_OK)
      count (v, 0, 1);
    else if (all_equal (v, one, 0))
      count (v, 1, 0);
    else if (confirm (v, one, 0, buf) < 0)
      return -1;
  }
  return 0;
}

static int
verify_batch (struct srv_verify *v, uint64_t off, uint8_t *buf,
              struct vbatch *b)
{
  uint64_t equal = 0;
  uint32_t u;
  int r;

  b->off = off;
  b->len = (uint32_t) MIN (BATCH, v->mapped_size - off);
  r = sums (v, b, buf, BUSY_TRIES);
  if (r < 0)
    return -1;
  if (r != SUMS_OK)
    return batch_by_unit (v, b, buf);
  for (u = 0; u < b->nunits; u++) {
    if (all_equal (v, b, u))
      equal++;
    else if (confirm (v, b, u, buf) < 0)
      return -1;
  }
  count (v, equal, 0);
  return 0;
}

static gpointer
verify_thread (gpointer arg)
{
  struct srv_verify *v = arg;
  struct srv_pool *p = v->pool;
  g_autofree uint8_t *buf = g_malloc (BATCH);
  g_autofree struct vbatch *b = g_new0 (struct vbatch, 1);
  enum verify_state end = V_DONE;
  uint64_t off;
  int64_t wait;

  for (off = 0; off < v->mapped_size; off += b->len) {
    g_mutex_lock (&v->lock);
    wait =
      sync_pace_take (&v->pace, MIN (BATCH, v->mapped_size - off),
                      atomic_load (&p->client_ios), g_get_monotonic_time ());
    g_mutex_unlock (&v->lock);
    if (wait > 0 && !pause_us (v, wait)) {
      end = V_STOPPED;
      break;
    }
    if (stopping (v)) {
      end = V_STOPPED;
      break;
    }
    if (verify_batch (v, off, buf, b) < 0) {
      end = stopping (v) ? V_STOPPED : V_FAILED;
      break;
    }
    g_mutex_lock (&v->lock);
    v->bytes += b->len;
    v->done = MIN ((off + b->len + (UINT64_C (1) << v->shift) - 1) >> v->shift,
                   v->nchunks);
    g_mutex_unlock (&v->lock);
  }
  g_mutex_lock (&v->lock);
  v->state = end;
  v->finished = g_get_monotonic_time ();
  g_message ("pool %s: verify %s: %" PRIu64 " units checked, %" PRIu64
             " chunks differing, %" PRIu64 " marked outdated, %" PRIu64
             " units skipped%s%s",
             p->name,
             end == V_DONE      ? "done"
             : end == V_STOPPED ? "stopped"
                                : "failed",
             v->checked, v->differing, v->repaired, v->skipped,
             end == V_FAILED ? ": " : "", end == V_FAILED ? v->error : "");
  /* The last touch of v and p: a stopper may free v from here on. */
  v->exited = true;
  g_cond_broadcast (&v->cond);
  g_mutex_unlock (&v->lock);
  return NULL;
}

/* Peer i's member if its session is up (joined now if it can be), or
 * RMR_MEMBER_NONE.
 */
static uint32_t
peer_reached (struct rmr_pool *peers, unsigned i)
{
  uint64_t size, gen;
  uint32_t cs;

  if (rmr_sync_peer_pool (peers, i, &size, &cs, &gen) < 0)
    return RMR_MEMBER_NONE;
  return rmr_sync_peer_member (peers, i);
}

/* Members to compare: this one, and every peer, which must answer. */
static int
collect_members (struct srv_verify *v, struct srv_pool *p, uint32_t source,
                 GString *err)
{
  unsigned i, k, npeers = rmr_sync_npeers (v->peers);
  uint32_t id;
  bool dup;

  v->m[0] = (struct vmember){.member_id = p->member_id, .peer = -1};
  v->n = 1;
  for (i = 0; i < npeers && v->n < RMR_MAX_MEMBERS; i++) {
    /* A session that tried a moment ago (its peer was not listening
     * yet, or just restarted) joins again once its back-off ends: wait
     * for that much.
     */
    id = peer_reached (v->peers, i);
    for (k = 0; id == RMR_MEMBER_NONE && k < PEER_TRIES; k++) {
      g_usleep (PEER_TRY_US);
      id = peer_reached (v->peers, i);
    }
    if (id == RMR_MEMBER_NONE) {
      g_string_printf (err,
                       "pool '%s': peer session %u cannot be reached: a "
                       "verify compares every member (rmradm get "
                       "rmr-client/pools/%s/sessions/*/last_error)",
                       p->name, i, p->name);
      return -1;
    }
    for (dup = false, k = 0; k < v->n; k++)
      dup |= v->m[k].member_id == id;
    if (!dup)
      v->m[v->n++] = (struct vmember){.member_id = id, .peer = (int) i};
  }
  if (v->n < 2) {
    g_string_printf (err, "pool '%s' has no peer to compare with", p->name);
    return -1;
  }
  v->source = -1;
  if (source != RMR_MEMBER_NONE) {
    for (k = 0; k < v->n && v->m[k].member_id != source; k++)
      ;
    if (k == v->n) {
      g_string_printf (err,
                       "source: member %" PRIu32 " is not a member of pool "
                       "'%s' this node reaches",
                       source, p->name);
      return -1;
    }
    v->source = (int) k;
  }
  return 0;
}

/* The slots of the members compared (lock held): every member of the
 * store's table must be one of them, or a majority of those compared
 * could be a tie of the whole.
 */
static int
collect_slots_unlocked (struct srv_verify *v, struct srv_pool *p, GString *err)
{
  unsigned i, s;
  uint32_t id;

  g_mutex_lock (&p->store->md_lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    id = p->store->sb.members[s].member_id;
    if (id == RMR_MEMBER_NONE)
      continue;
    for (i = 0; i < v->n && v->m[i].member_id != id; i++)
      ;
    if (i == v->n) {
      g_mutex_unlock (&p->store->md_lock);
      g_string_printf (err,
                       "pool '%s': member %" PRIu32 " has no sync session "
                       "here (peers=, or rmr-client/pools/%s/add_sess): a "
                       "verify compares every member",
                       p->name, id, p->name);
      return -1;
    }
  }
  for (i = 0; i < v->n; i++) {
    for (s = 0; s < RMR_MAX_MEMBERS; s++)
      if (p->store->sb.members[s].member_id == v->m[i].member_id)
        break;
    if (s == RMR_MAX_MEMBERS) {
      g_mutex_unlock (&p->store->md_lock);
      g_string_printf (err,
                       "pool '%s': member %" PRIu32 " has no slot in this "
                       "store's member table",
                       p->name, v->m[i].member_id);
      return -1;
    }
    v->m[i].slot = (int) s;
  }
  g_mutex_unlock (&p->store->md_lock);
  return 0;
}

int
verify_start (struct srv_pool *p, uint32_t source, uint64_t rate, GString *err)
{
  g_autofree struct srv_verify *v = g_new0 (struct srv_verify, 1);
  struct srv_verify *old = NULL;
  GThread *old_thread = NULL;

  v->pool = p;
  v->peers = p->peers;
  if (collect_members (v, p, source, err) < 0)
    return -1;
  g_mutex_lock (&p->lock);
  if (p->verify) {
    g_mutex_lock (&p->verify->lock);
    bool busy = !p->verify->exited || p->verify->stoppers;
    g_mutex_unlock (&p->verify->lock);
    if (busy) {
      g_string_printf (err,
                       "pool '%s': a verify is running or stopping "
                       "(rmradm verify --stop ends it)",
                       p->name);
      g_mutex_unlock (&p->lock);
      return -1;
    }
  }
  if (p->state != RMR_POOL_NORMAL || !p->maps || !p->store) {
    g_string_printf (err, "pool '%s' is %s: a verify needs it normal", p->name,
                     pool_state_name (p->state));
    g_mutex_unlock (&p->lock);
    return -1;
  }
  if (!p->al_extents) {
    g_string_printf (err,
                     "pool '%s' keeps no recent-write record (al_extents=0): "
                     "a verify could not tell a write in flight from a "
                     "difference",
                     p->name);
    g_mutex_unlock (&p->lock);
    return -1;
  }
  if (collect_slots_unlocked (v, p, err) < 0) {
    g_mutex_unlock (&p->lock);
    return -1;
  }
  v->generation = p->generation;
  v->shift = maps_chunk_shift (p->maps);
  v->unit = csum_unit (v->shift);
  v->nchunks = maps_nchunks (p->maps);
  v->mapped_size = p->store->sb.mapped_size;
  v->last_diff = UINT64_MAX;
  sync_pace_init (&v->pace, rate ? rate : p->sync_rate, p->sync_min_rate,
                  atomic_load (&p->client_ios));
  g_mutex_init (&v->lock);
  g_cond_init (&v->cond);
  v->state = V_RUNNING;
  v->started = g_get_monotonic_time ();
  v->started_wall = g_get_real_time ();
  old = p->verify;
  if (old) {
    old_thread = old->thread;
    old->thread = NULL;
  }
  v->thread = g_thread_try_new ("verify", verify_thread, v, NULL);
  if (!v->thread) {
    g_string_printf (err, "pool '%s': cannot start the verify's thread",
                     p->name);
    g_mutex_clear (&v->lock);
    g_cond_clear (&v->cond);
    if (old)
      old->thread = old_thread;
    g_mutex_unlock (&p->lock);
    return -1;
  }
  p->verify = g_steal_pointer (&v);
  g_message ("pool %s: verify started against %u members (%s)", p->name,
             p->verify->n - 1,
             source != RMR_MEMBER_NONE ? "with a source"
             : p->verify->n >= 3       ? "majority rule"
                                       : "report only");
  g_mutex_unlock (&p->lock);
  if (old_thread)
    g_thread_join (old_thread);
  verify_free (old);
  return 0;
}

void
verify_stop (struct srv_pool *p)
{
  struct srv_verify *v;
  GThread *t = NULL;

  g_mutex_lock (&p->lock);
  v = p->verify;
  if (!v) {
    g_mutex_unlock (&p->lock);
    return;
  }
  v->stoppers++; /* v stays until we are done (verify_start) */
  t = v->thread;
  v->thread = NULL;
  g_mutex_unlock (&p->lock);
  /* Every stopper waits for the thread's last touch, not only the one
   * that joins it: the store may go once verify_stop returns.
   */
  g_mutex_lock (&v->lock);
  v->stop = true;
  g_cond_broadcast (&v->cond);
  while (!v->exited)
    g_cond_wait (&v->cond, &v->lock);
  g_mutex_unlock (&v->lock);
  if (t)
    g_thread_join (t);
  g_mutex_lock (&p->lock);
  v->stoppers--;
  g_mutex_unlock (&p->lock);
}

void
verify_free (struct srv_verify *v)
{
  if (!v)
    return;
  g_assert (!v->thread);
  g_mutex_clear (&v->lock);
  g_cond_clear (&v->cond);
  g_free (v);
}

static const char *
state_name (enum verify_state s)
{
  switch (s) {
  case V_RUNNING: return "running";
  case V_DONE: return "done";
  case V_FAILED: return "failed";
  default: return "stopped";
  }
}

static void
append_time (GString *out, int64_t wall_us)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (wall_us / 1000000);
  g_autofree char *s = t ? g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ") : NULL;

  g_string_append (out, s ? s : "?");
}

/* Units counted, in chunks (a chunk over 1 MiB has several units). */
static uint64_t
chunks_of (const struct srv_verify *v, uint64_t units, bool round_up)
{
  uint64_t per = (UINT64_C (1) << v->shift) / v->unit;

  return round_up ? (units + per - 1) / per : units / per;
}

void
verify_summary (struct srv_verify *v, GString *out)
{
  if (!v) {
    g_string_append (out, "last verify: never\n");
    return;
  }
  g_mutex_lock (&v->lock);
  g_string_append (out, "last verify: ");
  append_time (out, v->started_wall);
  g_string_append_printf (out,
                          ", %s, %" PRIu64 " chunks checked, %" PRIu64
                          " differing, %" PRIu64 " marked outdated\n",
                          state_name (v->state),
                          chunks_of (v, v->checked, false), v->differing,
                          v->repaired);
  g_mutex_unlock (&v->lock);
}

void
verify_status (struct srv_verify *v, GString *out)
{
  int64_t now = g_get_monotonic_time (), secs;
  uint64_t rate;
  unsigned i;

  verify_summary (v, out);
  if (!v)
    return;
  g_mutex_lock (&v->lock);
  secs = ((v->state == V_RUNNING ? now : v->finished) - v->started) / 1000000;
  rate = secs > 0 ? v->bytes / (uint64_t) secs : v->bytes;
  g_string_append_printf (out, "state: %s\n", state_name (v->state));
  g_string_append (out, "rule: ");
  if (v->source >= 0)
    g_string_append_printf (out, "source member %" PRIu32 "\n",
                            v->m[v->source].member_id);
  else
    g_string_append (out, v->n >= 3 ? "majority\n" : "report only\n");
  g_string_append (out, "members:");
  for (i = 0; i < v->n; i++)
    g_string_append_printf (out, " %" PRIu32, v->m[i].member_id);
  g_string_append_printf (
    out,
    "\ndone: %" PRIu64 "\ntotal: %" PRIu64 "\nchecked: %" PRIu64
    "\ndiffering: %" PRIu64 "\nrepaired: %" PRIu64 "\nskipped: %" PRIu64 "\n",
    v->done, v->nchunks, chunks_of (v, v->checked, false), v->differing,
    v->repaired, chunks_of (v, v->skipped, true));
  g_string_append (out, "outdated:");
  for (i = 0; i < v->n; i++)
    if (v->m[i].outdated)
      g_string_append_printf (out, " member %" PRIu32 ": %" PRIu64 " chunks;",
                              v->m[i].member_id, v->m[i].outdated);
  if (out->str[out->len - 1] == ';')
    g_string_truncate (out, out->len - 1);
  else
    g_string_append (out, " none");
  g_string_append (out, "\nfirst:");
  for (i = 0; i < v->nfirst; i++)
    g_string_append_printf (out, " %" PRIu64, v->first[i]);
  if (!v->nfirst)
    g_string_append (out, " none");
  g_string_append_printf (out, "\nrate: %.1f MB/s\n", rate / 1e6);
  if (v->state == V_RUNNING && rate > 0)
    g_string_append_printf (out, "eta: %" PRIu64 "s\n",
                            (v->mapped_size - MIN (v->bytes, v->mapped_size)) /
                              rate);
  else
    g_string_append (out, "eta: -\n");
  g_string_append_printf (out, "elapsed: %" PRId64 "s\n", secs);
  if (v->error[0])
    g_string_append_printf (out, "error: %s\n", v->error);
  g_mutex_unlock (&v->lock);
}
