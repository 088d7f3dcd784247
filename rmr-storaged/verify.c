/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Online verify (rmradm verify, issue 13; drbdadm verify's job, single
 * hop): this member compares every chunk with its peers by checksum, and
 * marks outdated the members that hold a different copy.
 *
 * One thread per verify walks the device in batches of up to 1 MiB: it
 * reads the batch from its own store and asks every peer, through the
 * pool's sync pool, for the crc32c of each unit of the batch (a unit is
 * the chunk, or 1 MiB of a larger chunk: proto.h).  Only checksums cross
 * the network; the compute host is not involved.  Client IO goes on; the
 * walk is paced like the resync (sync-pace.c: the verify's rate, slowed
 * to sync_min_rate while clients do IO here).
 *
 * What this member knows, and when.  A client write reaches the members
 * one after the other, so two checksums taken a moment apart may differ
 * only because the write landed on one member and not yet on the other.
 * Hence:
 *   - a batch is read here only while no client write to it is in flight
 *     here, and a peer refuses (EAGAIN) while one is in flight there
 *     (pool_local_begin, pool_io_begin); refused for long, the units are
 *     skipped, never guessed;
 *   - chunks dirty for any member in this member's map are being resynced
 *     (or are known to differ): skipped, and counted;
 *   - a unit that differs is compared again, alone, after pauses, and
 *     counts only once the very same checksums were seen VERIFY_SAME
 *     times in a row (verify-rule.c): no write landed on any member
 *     meanwhile, and the members still differ.  A write in flight
 *     completes on every leg within the client's IO timeout or fails the
 *     leg (the survivors then record the chunk dirty: skipped), so such a
 *     difference is in the data.  A unit whose checksums keep changing (a
 *     unit written all the time) is skipped after VERIFY_TRIES, and
 *     counted so.
 * A false verdict still loses nothing: marking a member outdated only
 * makes it fetch the chunk again from a member current there (sync.c
 * chooses the source by the maps, not by the verify), so the worst a
 * race can do is an extra resync of one chunk.
 *
 * Who is marked (verify-rule.c): the members that differ from --source;
 * without one, with three members or more, those that differ from a
 * strict majority; with two members and no source, nobody (reported
 * only).  The mark is set in this member's map, for the outdated member's
 * slot, and saved before it counts as repaired: this member's own slot
 * makes its resync fetch the chunk at once (pool_sync_kick); a peer's
 * slot is found by that peer's reconcile (sync.c), which takes the bits
 * a current peer holds for it, fetches the chunk from a current member
 * and clears the bit here.  No new privilege: a peer never writes
 * another member's map (the role table).
 *
 * Next fault.  A crash of this node mid-verify: the marks saved stay in
 * its map (the resync goes on after the restart); the verify itself is
 * not resumed.  A peer lost: its checksum request fails and the verify
 * stops with that error (a verify compares every member).  The pool
 * leaving normal or a new generation: the verify stops (pool_local_begin)
 * before it compares anything more.  The store removed: verify_stop runs
 * first (pool_remove_store), and what the thread reads is counted in
 * flight until then.
 *
 * Locking: v->lock protects the progress and result below it and stop;
 * the thread takes the pool's lock only through pool_local_begin/_end.
 * p->verify is set and taken under p->lock; whoever takes v->thread out
 * joins it, once.  The thread holds no reference of the pool: a pool is
 * freed only once its store is gone, and pool_remove_store stops (joins)
 * the verify first.
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
#define BUSY_TRIES 100             /* a write in flight: about 1 s */
#define BUSY_US 10000
#define CONFIRM_US 100000 /* between two comparisons of a unit */
#define NFIRST 10         /* differing chunks listed */
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
  int source; /* index in m, -1: none */
  uint32_t all_slots;
  uint64_t last_diff; /* the thread's: the chunk counted last */

  GMutex lock; /* protects everything below */
  GCond cond;  /* stop */
  bool stop;
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
  bool skip[MAX_UNITS];
};

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

/* Is chunk c dirty for any member here (being resynced, or known to
 * differ)?
 */
static bool
dirty_anywhere (struct srv_verify *v, struct srv_maps *maps, uint64_t c)
{
  for (unsigned s = 0; s < RMR_MAX_MEMBERS; s++)
    if ((v->all_slots & 1u << s) && maps_test (maps, s, c))
      return true;
  return false;
}

/* Our own checksums of b's range into b->crc[0], and the units to skip.
 * 0, 1 (busy: a client write stayed in flight), -1 (stopped or failed).
 */
static int
local_sums (struct srv_verify *v, struct vbatch *b, uint8_t *buf)
{
  g_autoptr (GString) why = g_string_new (NULL);
  struct srv_maps *maps;
  struct store *st;
  uint32_t u, len;
  int r, tries;

  for (tries = 0;; tries++) {
    r = pool_local_begin (v->pool, v->generation, b->off, b->len, &st, &maps,
                          why);
    if (r != -EAGAIN)
      break;
    if (tries == BUSY_TRIES)
      return 1;
    if (!pause_us (v, BUSY_US))
      return -1;
  }
  if (r < 0)
    return fail (v, "%s", why->str);
  for (u = 0; u < b->nunits; u++)
    b->skip[u] = dirty_anywhere (v, maps, (b->off + u * v->unit) >> v->shift);
  r = store_io_wait (st, STORE_READ, buf, b->off, b->len);
  pool_local_end (v->pool);
  if (r < 0)
    return fail (v, "reading %" PRIu32 " bytes at %" PRIu64 ": %s", b->len,
                 b->off, strerror (-r));
  for (u = 0; u < b->nunits; u++) {
    len = (uint32_t) MIN (v->unit, b->len - u * v->unit);
    b->crc[0][u] = rmr_crc32c (0, buf + u * v->unit, len);
  }
  return 0;
}

/* The checksums of every member for b.  0; 1: busy (a member refused
 * for long: try the units alone, or skip); -1: stopped or failed.
 */
static int
sums (struct srv_verify *v, struct vbatch *b, uint8_t *buf)
{
  unsigned i;
  int r, tries;

  b->nunits = (uint32_t) ((b->len + v->unit - 1) / v->unit);
  r = local_sums (v, b, buf);
  if (r != 0)
    return r;
  for (i = 1; i < v->n; i++) {
    for (tries = 0;; tries++) {
      r = rmr_sync_csum (v->peers, v->m[i].peer, v->generation, b->off, b->len,
                         b->nunits, b->crc[i]);
      if (r != -EAGAIN)
        break;
      if (tries == BUSY_TRIES)
        return 1;
      if (!pause_us (v, BUSY_US))
        return -1;
    }
    if (r < 0)
      return fail (v, "member %" PRIu32 ": %s", v->m[i].member_id,
                   rmr_get_error ());
  }
  return 0;
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
 * map, saved.  0 or -1.
 */
static int
mark_outdated (struct srv_verify *v, uint64_t c, uint32_t mask)
{
  g_autoptr (GString) why = g_string_new (NULL);
  struct mark_wait m = {.w = {.done = map_marked}};
  struct srv_maps *maps;
  struct store *st;
  uint32_t slots = 0;
  unsigned i;
  int r;

  for (i = 0; i < v->n; i++)
    if (mask & 1u << i)
      slots |= 1u << v->m[i].slot;
  r = pool_local_begin (v->pool, v->generation, 0, 0, &st, &maps, why);
  if (r < 0)
    return fail (v, "%s", why->str);
  g_mutex_init (&m.lock);
  g_cond_init (&m.cond);
  r = maps_mark (maps, slots, c, 1, &m.w);
  if (r == 1) {
    g_mutex_lock (&m.lock);
    while (!m.done)
      g_cond_wait (&m.cond, &m.lock);
    g_mutex_unlock (&m.lock);
    r = m.err;
  }
  g_mutex_clear (&m.lock);
  g_cond_clear (&m.cond);
  pool_local_end (v->pool);
  if (r < 0)
    return fail (v, "marking chunk %" PRIu64 " outdated: %s", c,
                 rmr_get_error () ? rmr_get_error () : strerror (-r));
  if (mask & 1u) /* this member: its resync fetches the chunk now */
    pool_sync_kick (v->pool);
  return 0;
}

/* Unit u of b differs: compare it alone again, after pauses, until the
 * verdict (verify-rule.c): counted, and its outdated members marked, if
 * the same difference persists; skipped if it keeps changing.
 */
static int
confirm (struct srv_verify *v, const struct vbatch *b, uint32_t u, uint8_t *buf)
{
  g_autofree struct vbatch *one = g_new0 (struct vbatch, 1);
  uint64_t c = (b->off + u * v->unit) >> v->shift;
  enum verify_verdict verdict = VERIFY_AGAIN;
  uint32_t crc[RMR_MAX_MEMBERS], mask;
  struct verify_confirm vc;
  const char *rule;
  unsigned i;
  int r;

  for (i = 0; i < v->n; i++)
    crc[i] = b->crc[i][u];
  verify_confirm_init (&vc, crc, v->n);
  one->off = b->off + u * v->unit;
  one->len = (uint32_t) MIN (v->unit, v->mapped_size - one->off);
  while (verdict == VERIFY_AGAIN) {
    if (!pause_us (v, CONFIRM_US))
      return -1;
    r = sums (v, one, buf);
    if (r < 0)
      return -1;
    if (r == 1 || one->skip[0]) {
      verdict = VERIFY_CHANGING; /* busy, or being resynced */
      break;
    }
    for (i = 0; i < v->n; i++)
      crc[i] = one->crc[i][0];
    verdict = verify_confirm_next (&vc, crc);
  }
  if (verdict == VERIFY_EQUAL)
    return 0; /* a write was in flight */
  if (verdict == VERIFY_CHANGING) {
    g_mutex_lock (&v->lock);
    v->skipped++;
    g_mutex_unlock (&v->lock);
    return 0;
  }
  mask = verify_outdated (crc, v->n, v->source, &rule);
  if (c == v->last_diff)
    return 0; /* another unit of a chunk already counted */
  v->last_diff = c;
  g_message ("pool %s: verify: chunk %" PRIu64 " (offset %" PRIu64
             ") differs between members (%s)%s",
             v->pool->name, c, c << v->shift, rule, mask ? "" : ": reported");
  if (mask && mark_outdated (v, c, mask) < 0)
    return -1;
  g_mutex_lock (&v->lock);
  v->differing++;
  if (v->nfirst < NFIRST)
    v->first[v->nfirst++] = c << v->shift;
  if (mask) {
    v->repaired++;
    for (i = 0; i < v->n; i++)
      if (mask & 1u << i)
        v->m[i].outdated++;
  }
  g_mutex_unlock (&v->lock);
  return 0;
}

/* Units of b compared alone: a member refused the whole batch for long
 * (a write kept part of it busy).
 */
static int
batch_by_unit (struct srv_verify *v, const struct vbatch *b, uint8_t *buf)
{
  g_autofree struct vbatch *one = g_new0 (struct vbatch, 1);
  uint64_t checked = 0, skipped = 0;
  uint32_t u;
  int r;

  for (u = 0; u < b->nunits; u++) {
    one->off = b->off + u * v->unit;
    one->len = (uint32_t) MIN (v->unit, v->mapped_size - one->off);
    r = sums (v, one, buf);
    if (r < 0)
      return -1;
    if (r == 1 || one->skip[0]) {
      skipped++;
      continue;
    }
    checked++;
    if (!all_equal (v, one, 0) && confirm (v, one, 0, buf) < 0)
      return -1;
  }
  g_mutex_lock (&v->lock);
  v->checked += checked;
  v->skipped += skipped;
  g_mutex_unlock (&v->lock);
  return 0;
}

static int
verify_batch (struct srv_verify *v, uint64_t off, uint8_t *buf,
              struct vbatch *b)
{
  uint64_t checked = 0, skipped = 0;
  uint32_t u;
  int r;

  b->off = off;
  b->len = (uint32_t) MIN (BATCH, v->mapped_size - off);
  r = sums (v, b, buf);
  if (r < 0)
    return -1;
  if (r == 1)
    return batch_by_unit (v, b, buf);
  for (u = 0; u < b->nunits; u++) {
    if (b->skip[u]) {
      skipped++;
      continue;
    }
    checked++;
    if (!all_equal (v, b, u) && confirm (v, b, u, buf) < 0)
      return -1;
  }
  g_mutex_lock (&v->lock);
  v->checked += checked;
  v->skipped += skipped;
  g_mutex_unlock (&v->lock);
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
  g_mutex_unlock (&v->lock);
  g_message ("pool %s: verify %s: %" PRIu64 " chunks checked, %" PRIu64
             " differing, %" PRIu64 " marked outdated, %" PRIu64 " skipped%s%s",
             p->name,
             end == V_DONE      ? "done"
             : end == V_STOPPED ? "stopped"
                                : "failed",
             v->checked, v->differing, v->repaired, v->skipped,
             end == V_FAILED ? ": " : "", end == V_FAILED ? v->error : "");
  return NULL;
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
    id = rmr_sync_peer_member (v->peers, i);
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

/* Slots of the members compared, and every slot in use (lock held). */
static int
collect_slots_unlocked (struct srv_verify *v, struct srv_pool *p, GString *err)
{
  unsigned i, s;

  g_mutex_lock (&p->store->md_lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (p->store->sb.members[s].member_id != RMR_MEMBER_NONE)
      v->all_slots |= 1u << s;
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
    bool running = p->verify->state == V_RUNNING;
    g_mutex_unlock (&p->verify->lock);
    if (running) {
      g_string_printf (err,
                       "pool '%s': a verify is running (rmradm verify "
                       "--stop ends it)",
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
  v->thread = g_thread_new ("verify", verify_thread, v);
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
  if (v) {
    g_mutex_lock (&v->lock);
    v->stop = true;
    g_cond_broadcast (&v->cond);
    g_mutex_unlock (&v->lock);
    t = v->thread;
    v->thread = NULL;
  }
  g_mutex_unlock (&p->lock);
  if (t)
    g_thread_join (t);
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
                          state_name (v->state), v->checked, v->differing,
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
    v->done, v->nchunks, v->checked, v->differing, v->repaired, v->skipped);
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
