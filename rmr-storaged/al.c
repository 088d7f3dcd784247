/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recent-write record of a store (DESIGN 6): an activity log of hot
 * extents, as DRBD keeps one.
 *
 * Invariant: every extent (al_extent_size bytes of the data area) that a
 * write has touched since the store was last made durable and clean is in
 * the record on the store before that write is submitted.  So after any
 * crash of the compute host (writes reached some legs and not others) or
 * a power loss of this node (acknowledged writes that were not durable),
 * every region that may differ between legs is in some member's record;
 * assemble and the hand-over resync those regions from a source member.
 *
 * An extent leaves only when every write to it has completed on every
 * leg, not just here: each client write carries its sequence number and
 * the client's horizon (every older write is done everywhere, or recorded
 * missed), and an idle extent whose newest write is older than the
 * horizon is retirable.  While none is, the record grows past its window
 * up to what a copy holds (AL_MAX_EXTENTS), and past that a write waits.
 * A pool enable settles every extent (no write in flight then).  A new
 * client numbers its writes afresh, so a horizon counts only in the era
 * of the settle it followed: a write of a departed client, parked here
 * (resync gate, room in the record) and released after the new client's
 * enable, must not bring its horizon, which in the new numbering could
 * say that writes still on their way to other legs are done everywhere
 * (their extents would leave early, and the resync's quiet rule would
 * trust it), nor its number (an extent would wait for the new numbering
 * to pass it): al_begin refuses it.  Ignoring a flush's horizon only
 * keeps extents longer.
 *
 * Cost: a write to an extent already in the record changes nothing on
 * disk (but waits, like the write that added it, while the copy that
 * first holds the extent is not durable yet).  A write to a cold extent adds it (and, when the record is full,
 * evicts the least recently used extent that has no write in flight):
 * one 4 KiB record write with the map flusher's next save (map.c), which
 * first fdatasyncs the data when an extent was evicted, so that what the
 * evicted extent's writes did is durable before the record forgets it.
 *
 * A failed flush (fdatasync) may have dropped writes this member had
 * acknowledged: the record is marked suspect (saved before the failure is
 * answered), so the hand-over treats its extents as stale here even after
 * a restart, until a pool enable took them into account.
 *
 * On disk: the format of common/alrec.h (two copies by seq, each with
 * a CRC-32C).  Neither copy valid (and not both all zero) means the
 * record is lost: the member reports it, and assemble treats all of its
 * data as possibly different.
 *
 * A member that stopped uncleanly but whose kernel did not (same boot
 * id: the daemon was killed) lost nothing it had written: only a member
 * whose machine lost power or crashed treats its record as stale for
 * itself.  Either way the extents are reported to an assemble.
 *
 * The record found at start is kept until a pool enable took it into
 * account (al_consumed), whatever happens first: every copy saved before
 * that (a clean stop, a failed flush) holds its extents too, keeps the
 * boot id it was written under (so a power loss stays one after any
 * number of restarts), and is never marked clean; a lost record is not
 * overwritten at all.  A clean stop between a compute-host crash and the
 * assemble would otherwise erase the only trace of a write that reached
 * this member alone, or of the writes a power loss took from it.
 *
 * Locking: lock protects everything in struct srv_al; the IO path holds
 * it for a hash lookup and a list move.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alrec.h"
#include "error.h"
#include "fdio.h"
#include "internal.h"
#include "util.h"

#define AL_BLOCK RMR_ALREC_BLOCK

struct al_ext {
  uint32_t extent;
  unsigned refs;      /* writes in flight */
  uint64_t need_seq;  /* the record copy that first holds it */
  uint32_t last_wseq; /* the client's newest write here (hdr.wseq) */
  bool settled;       /* no write here may still be in flight elsewhere */
  GList link;         /* in lru while refs == 0 */
};

struct srv_al {
  struct store *st;
  unsigned shift;
  unsigned capacity;

  GMutex lock;         /* protects everything below */
  GHashTable *active;  /* extent -> struct al_ext */
  GQueue lru;          /* idle extents, least recent first */
  bool changed;        /* the record differs from the saved one */
  bool evicted;        /* an extent left since the last save */
  bool lost;           /* the saved record could not be read */
  bool was_clean;      /* the store was shut down cleanly */
  bool suspect;        /* a flush failed since the last enable */
  unsigned suspicions; /* al_suspect calls so far */
  struct al_waiter *wait_head, *wait_tail; /* writes waiting for room */
  uint64_t seq;                            /* of the copy in force */
  uint64_t saved_seq;                      /* the last copy known durable */
  uint32_t horizon; /* client writes older than this are done on every
                     * leg (hdr.horizon) */
  bool have_horizon;
  atomic_uint era; /* settles so far: whose numbering horizon is in */
  uint64_t writes;
  uint32_t loaded_shift; /* extent size of the record found */
  GArray *loaded;        /* extents of the record found */
  /* The record found was written under another boot and not at a clean
   * stop (a power loss), under this boot id; until consumed.
   */
  bool boot_lost;
  uint8_t loaded_boot[RMR_ALREC_BOOT_ID_LEN];
};

static gint
cmp_u32 (gconstpointer a, gconstpointer b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

  return x < y ? -1 : x > y;
}

static void
ext_free (gpointer p)
{
  g_free (p);
}

/* The extents of the record in force and of the record found at start
 * (until consumed), sorted and unique, in units of 1 << *shift: the
 * larger of the two sizes, larger still if they would not fit one copy
 * (a coarser record only resyncs more).  Returns how many (lock held).
 */
static uint32_t
collect (struct srv_al *al, uint32_t *ext, uint32_t *shift)
{
  g_autoptr (GArray) all = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  unsigned sh, i, n;
  GHashTableIter it;
  gpointer k, v;
  uint32_t e;

  sh = al->loaded->len ? MAX (al->loaded_shift, al->shift) : al->shift;
  for (i = 0; i < al->loaded->len; i++) {
    e = g_array_index (al->loaded, uint32_t, i) >> (sh - al->loaded_shift);
    g_array_append_val (all, e);
  }
  g_hash_table_iter_init (&it, al->active);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    e = ((struct al_ext *) v)->extent >> (sh - al->shift);
    g_array_append_val (all, e);
  }
  g_array_sort (all, cmp_u32);
  for (;;) {
    for (i = n = 0; i < all->len; i++) {
      e = g_array_index (all, uint32_t, i);
      if (n == 0 || e != g_array_index (all, uint32_t, n - 1))
        g_array_index (all, uint32_t, n++) = e;
    }
    g_array_set_size (all, n);
    /* AL_MAX_EXTENTS extents of 1 TiB (the format's largest) cover any
     * device up to 1000 TiB; past that a sparse record keeps only its
     * first ones.
     */
    if (n <= AL_MAX_EXTENTS || sh >= 40) {
      if (n > AL_MAX_EXTENTS) {
        g_warning ("store %s: the recent-write record does not fit one "
                   "copy even in extents of 1 TiB: %u extents are left out",
                   al->st->path, n - AL_MAX_EXTENTS);
        n = AL_MAX_EXTENTS;
      }
      break;
    }
    for (i = 0; i < n; i++)
      g_array_index (all, uint32_t, i) >>= 1;
    sh++;
  }
  memcpy (ext, all->data, n * sizeof *ext);
  *shift = sh;
  return n;
}

/* One copy of the record (lock held); clean if asked and nothing is in
 * it, and no record found at start is left to consume.
 */
static void
encode (struct srv_al *al, uint8_t *buf, bool clean)
{
  struct rmr_alrec rec = {.seq = al->seq, .writes = al->writes};
  uint32_t ext[AL_MAX_EXTENTS];
  uint32_t n = collect (al, ext, &rec.shift);

  clean = clean && n == 0 && !al->boot_lost;
  rec.flags = clean ? RMR_ALREC_F_CLEAN : al->suspect ? RMR_ALREC_F_SUSPECT : 0;
  if (clean)
    n = 0;
  if (al->boot_lost)
    memcpy (rec.boot_id, al->loaded_boot, sizeof rec.boot_id);
  else
    rmr_boot_id (rec.boot_id);
  rmr_alrec_encode (&rec, ext, n, buf);
}

static int
load (struct srv_al *al)
{
  uint8_t now[RMR_ALREC_BOOT_ID_LEN];
  struct rmr_alrec rec;
  int r;

  rmr_err_clear ();
  r = rmr_alrec_read (al->st->fd, al->st->sb.al_offset, &rec, al->loaded);
  if (r == -ENODATA) {
    al->was_clean = true; /* never written: a new store */
    return 0;
  }
  if (r == -EBADMSG) {
    al->lost = true;
    g_warning ("store %s: the recent-write record is damaged (both copies): "
               "assemble will treat this member's data as possibly "
               "different everywhere",
               al->st->path);
    return 0;
  }
  if (r < 0)
    return rmr_err (-r, "store %s: %s", al->st->path, rmr_get_error ());
  al->seq = al->saved_seq = rec.seq;
  al->writes = rec.writes;
  /* Killed but the kernel kept running: what it wrote is in the page
   * cache or on the device, not lost.
   */
  rmr_boot_id (now);
  al->suspect = rec.flags & RMR_ALREC_F_SUSPECT;
  al->was_clean =
    !al->suspect && ((rec.flags & RMR_ALREC_F_CLEAN) ||
                     (now[0] && !memcmp (now, rec.boot_id, sizeof now)));
  al->boot_lost = !al->suspect && !al->was_clean;
  memcpy (al->loaded_boot, rec.boot_id, sizeof al->loaded_boot);
  al->loaded_shift = rec.shift;
  return 0;
}

int
al_open (struct store *st, unsigned shift, unsigned capacity,
         struct srv_al **out)
{
  struct srv_al *al = g_new0 (struct srv_al, 1);
  int r;

  al->st = st;
  al->shift = shift;
  al->capacity = MIN (capacity, AL_MAX_EXTENTS);
  g_mutex_init (&al->lock);
  al->active =
    g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, ext_free);
  g_queue_init (&al->lru);
  al->loaded = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  r = load (al);
  if (r < 0) {
    al_close (al);
    return r;
  }
  *out = al;
  return 0;
}

void
al_close (struct srv_al *al)
{
  if (!al)
    return;
  /* The lru links live in the extents: forget them, then free those. */
  g_queue_init (&al->lru);
  g_hash_table_unref (al->active);
  g_array_unref (al->loaded);
  g_mutex_clear (&al->lock);
  g_free (al);
}

/* May extent x leave the record?  Only when idle here and when every
 * write to it has completed on every leg: a write that reached this leg
 * but not yet another must stay recorded here, or a compute-host crash
 * right then would leave the legs different with no record of where.
 */
static bool
retirable (const struct srv_al *al, const struct al_ext *x)
{
  return x->refs == 0 &&
         (x->settled ||
          (al->have_horizon && rmr_wseq_before (x->last_wseq, al->horizon)));
}

/* Retire up to want retirable extents, least recent first (lock held);
 * returns how many left.  Any retirable extent may leave at any time.
 */
static unsigned
retire_unlocked (struct srv_al *al, unsigned want)
{
  unsigned n = 0;
  GList *l, *next;

  for (l = al->lru.head; l && n < want; l = next) {
    struct al_ext *x = l->data;
    next = l->next;
    if (!retirable (al, x))
      continue;
    g_queue_unlink (&al->lru, l);
    g_hash_table_remove (al->active, GUINT_TO_POINTER (x->extent + 1));
    al->evicted = true;
    n++;
  }
  return n;
}

/* The client's horizon only moves forward, within its era (lock held). */
static void
horizon_unlocked (struct srv_al *al, uint32_t horizon, unsigned era)
{
  if (era != atomic_load (&al->era))
    return;
  if (!al->have_horizon || rmr_wseq_before (al->horizon, horizon)) {
    al->horizon = horizon;
    al->have_horizon = true;
  }
}

void
al_horizon (struct srv_al *al, uint32_t horizon, unsigned era)
{
  g_mutex_lock (&al->lock);
  horizon_unlocked (al, horizon, era);
  g_mutex_unlock (&al->lock);
}

int
al_begin (struct srv_al *al, uint64_t off, uint32_t len, uint32_t wseq,
          uint32_t horizon, unsigned era, bool *need_save, struct al_waiter *w)
{
  uint32_t e, first = off >> al->shift, last = (off + len - 1) >> al->shift;
  unsigned size, idle, need = 0;
  struct al_ext *x;

  *need_save = false;
  g_mutex_lock (&al->lock);
  /* Admitted before a settle: its client has left (a new one enabled,
   * numbering afresh), and it must not land; its number on an extent
   * would keep that extent from leaving for as long as the new
   * numbering stays behind it.
   */
  if (era != atomic_load (&al->era)) {
    g_mutex_unlock (&al->lock);
    return rmr_err (ECANCELED, "the session that sent it has left");
  }
  if (wseq)
    horizon_unlocked (al, horizon, era);
  size = g_hash_table_size (al->active);
  idle = al->lru.length;
  for (e = first; e <= last; e++)
    if (!g_hash_table_lookup (al->active, GUINT_TO_POINTER (e + 1)))
      need++;
  /* Room: the extents pinned by writes in flight never exceed the
   * window (a write larger than the whole record goes alone); idle
   * extents leave when retirable, and while they cannot the record
   * grows up to what one copy holds.
   */
  if (size + need > al->capacity) {
    size -= retire_unlocked (al, size + need - al->capacity);
    idle = al->lru.length;
  }
  if ((size - idle + need > al->capacity && size != idle) ||
      size + need > AL_MAX_EXTENTS) {
    /* This one waits for a write to finish, so the record never holds
     * more than its window (or than a copy holds).
     */
    w->next = NULL;
    if (al->wait_tail)
      al->wait_tail->next = w;
    else
      al->wait_head = w;
    al->wait_tail = w;
    g_mutex_unlock (&al->lock);
    return 1;
  }
  al->writes++;
  for (e = first; e <= last; e++) {
    x = g_hash_table_lookup (al->active, GUINT_TO_POINTER (e + 1));
    if (x) {
      if (x->refs++ == 0)
        g_queue_unlink (&al->lru, &x->link);
      x->settled = false;
      x->last_wseq = wseq;
      /* Added by another write whose save is not done yet: this one
       * waits for it too.
       */
      if (x->need_seq > al->saved_seq)
        *need_save = true;
      continue;
    }
    x = g_new0 (struct al_ext, 1);
    x->extent = e;
    x->refs = 1;
    x->last_wseq = wseq;
    x->need_seq = al->seq + 1; /* the next al_prepare_save */
    x->link.data = x;
    g_hash_table_insert (al->active, GUINT_TO_POINTER (e + 1), x);
    al->changed = true;
    *need_save = true;
  }
  g_mutex_unlock (&al->lock);
  return 0;
}

struct al_waiter *
al_end (struct srv_al *al, uint64_t off, uint32_t len)
{
  struct al_waiter *woken = NULL;
  uint32_t e, first, last;
  struct al_ext *x;
  bool idle = false;

  if (len == 0)
    return NULL;
  first = off >> al->shift;
  last = (off + len - 1) >> al->shift;
  g_mutex_lock (&al->lock);
  for (e = first; e <= last; e++) {
    x = g_hash_table_lookup (al->active, GUINT_TO_POINTER (e + 1));
    if (x && x->refs > 0 && --x->refs == 0) {
      g_queue_push_tail_link (&al->lru, &x->link);
      idle = true;
    }
  }
  /* An extent became idle: the waiting writes try again, in order. */
  if (idle && al->wait_head) {
    woken = al->wait_head;
    al->wait_head = al->wait_tail = NULL;
  }
  g_mutex_unlock (&al->lock);
  return woken;
}

bool
al_prepare_save (struct srv_al *al, uint8_t *buf, bool *sync_data_first)
{
  bool r;

  g_mutex_lock (&al->lock);
  /* A lost record stays lost (damaged) until consumed: no write comes
   * before that, only a failed flush's mark, which lost covers.
   */
  r = al->changed && !al->lost;
  *sync_data_first = al->evicted;
  if (r) {
    al->seq++;
    encode (al, buf, false);
    al->changed = al->evicted = false;
  }
  g_mutex_unlock (&al->lock);
  return r;
}

void
al_saved (struct srv_al *al, const uint8_t *buf)
{
  g_mutex_lock (&al->lock);
  al->saved_seq = MAX (al->saved_seq, get_le64 (buf + 16));
  g_mutex_unlock (&al->lock);
}

uint64_t
al_copy_offset (struct srv_al *al, const uint8_t *buf)
{
  return al->st->sb.al_offset + (get_le64 (buf + 16) % 2) * AL_BLOCK;
}

int
al_mark_clean (struct srv_al *al)
{
  uint8_t *buf = g_malloc (AL_BLOCK);
  int e = 0;

  /* A failed flush: a later good one does not bring back what it lost
   * (the kernel reports a writeback error once), so the record stays
   * until a hand-over took it into account; so does a lost one.
   */
  g_mutex_lock (&al->lock);
  if (al->suspect || al->lost) {
    g_mutex_unlock (&al->lock);
    g_free (buf);
    return 0;
  }
  g_mutex_unlock (&al->lock);
  /* The data first, then a record that says nothing is in flight. */
  e = -store_fdatasync (al->st);
  if (e)
    al_suspect (al);
  g_mutex_lock (&al->lock);
  /* Idle extents leave the record (their writes are durable now), but
   * not one a write may still be in flight to on another leg.
   */
  retire_unlocked (al, UINT_MAX);
  al->seq++;
  encode (al, buf, g_hash_table_size (al->active) == 0);
  g_mutex_unlock (&al->lock);
  if (!e)
    e =
      -rmr_pwrite_full (al->st->fd, buf, AL_BLOCK, al_copy_offset (al, buf), 0);
  if (!e)
    e = -store_fdatasync (al->st);
  if (!e)
    al_saved (al, buf);
  g_free (buf);
  return e ? rmr_err (e, "store %s: saving a clean recent-write record: %s",
                      al->st->path, strerror (e))
           : 0;
}

/* What may differ between legs, as this member knows: the record it
 * found at start (until a pool enable consumed it) and the extents of
 * the record in force, in the larger of the two extent sizes.
 */
void
al_info (struct srv_al *al, struct al_info *info)
{
  uint32_t ext[AL_MAX_EXTENTS], n, sh;

  g_mutex_lock (&al->lock);
  info->clean = al->was_clean;
  info->lost = al->lost;
  info->writes = al->writes;
  n = collect (al, ext, &sh);
  g_mutex_unlock (&al->lock);
  info->shift = sh;
  info->extents = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  g_array_append_vals (info->extents, ext, n);
}

void
al_suspect (struct srv_al *al)
{
  g_mutex_lock (&al->lock);
  if (!al->suspect)
    g_warning ("store %s: a flush failed: the recent writes here may be "
               "lost; they are resynced when this member comes back",
               al->st->path);
  al->suspect = true;
  al->suspicions++;
  al->was_clean = false;
  al->changed = true;
  g_mutex_unlock (&al->lock);
}

static void
settle_unlocked (struct srv_al *al)
{
  GHashTableIter it;
  gpointer k, v;

  g_hash_table_iter_init (&it, al->active);
  while (g_hash_table_iter_next (&it, &k, &v))
    ((struct al_ext *) v)->settled = true;
  al->have_horizon = false;
  atomic_fetch_add (&al->era, 1);
}

void
al_settle (struct srv_al *al)
{
  g_mutex_lock (&al->lock);
  settle_unlocked (al);
  g_mutex_unlock (&al->lock);
}

unsigned
al_era (struct srv_al *al)
{
  return atomic_load (&al->era);
}

unsigned
al_suspicions (struct srv_al *al)
{
  unsigned n;

  g_mutex_lock (&al->lock);
  n = al->suspicions;
  g_mutex_unlock (&al->lock);
  return n;
}

void
al_consumed (struct srv_al *al, unsigned seen)
{
  g_mutex_lock (&al->lock);
  /* An enable: no write is in flight (a hand-over freezes IO; an
   * assemble reconciled the records), and a new client numbers its
   * writes afresh.
   */
  settle_unlocked (al);
  if (al->loaded->len || al->lost || al->boot_lost)
    al->changed = true; /* the next save forgets them */
  g_array_set_size (al->loaded, 0);
  al->lost = false;
  al->boot_lost = false;
  /* A flush that failed after the client read the record: what it may
   * have lost is not in the client's decision; still suspect here.
   */
  if (al->suspect && al->suspicions == seen) {
    al->suspect = false;
    al->changed = true;
  }
  al->was_clean = !al->suspect;
  g_mutex_unlock (&al->lock);
}

bool
al_settled (struct srv_al *al, uint64_t off, uint64_t len)
{
  uint32_t e, first, last;
  struct al_ext *x;
  bool ok = true;

  if (len == 0)
    return true;
  first = off >> al->shift;
  last = (off + len - 1) >> al->shift;
  g_mutex_lock (&al->lock);
  for (e = first; e <= last && ok; e++) {
    x = g_hash_table_lookup (al->active, GUINT_TO_POINTER (e + 1));
    ok = !x || retirable (al, x);
  }
  g_mutex_unlock (&al->lock);
  return ok;
}

unsigned
al_count (struct srv_al *al)
{
  unsigned n;

  g_mutex_lock (&al->lock);
  n = g_hash_table_size (al->active);
  g_mutex_unlock (&al->lock);
  return n;
}
