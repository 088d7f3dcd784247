/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Persistent dirty maps of a server pool (DESIGN 5, internal.h).
 *
 * Invariant: a bit that a write (or a map-add) set for a member is on the
 * store before that write is acknowledged.  maps_mark sets the bits in
 * memory and, unless the pages holding them are already saved, queues the
 * caller with the current change generation; the flusher thread writes
 * every unsaved page, fdatasyncs, and then releases every waiter whose
 * generation it covered (one sync for all the writes that came in
 * meanwhile: group commit).  The IO path never waits on a disk write
 * itself, and the receive thread never blocks.
 *
 * Clears are saved lazily (the flusher waits up to CLEAR_DELAY_MS to
 * gather them): after a crash a cleared bit may come back, which costs a
 * chunk of extra resync and nothing else.
 *
 * A store whose map cannot be written stays failed: every later mark
 * fails, so no write is acknowledged without its dirty bits.
 *
 * Watched clears (DESIGN 6).  A member resyncing chunk c first asks each
 * peer to watch (slot, c); every mark of a watched chunk (a write the
 * member missed, recorded here after the watch began) flags the watch.
 * The member's conditional clear then removes the bit only where the
 * watch is still unflagged, and reports the others as kept: a bit set
 * again after the chunk was fetched is never lost to a clear that was
 * about older data.  A chunk without a watch (never asked, or dropped)
 * is kept too: not knowing costs an extra fetch, never a write.  A watch
 * begins flagged where a client write to the chunk is in flight here
 * (pool_watch): that write may have marked the bit already, before the
 * watch, and not yet reached the member the resync fetches from.  The
 * watch also tells which other slots are dirty there (behind): a member
 * behind at c by this store's record may not know it itself (two members
 * missed the same write), and must never serve c to the resync.  Watches
 * of one slot are bounded (WATCH_MAX); when full they are all dropped,
 * which only makes the clears in progress keep their bits.
 *
 * Member states.  The superblock's state of a slot says whether this
 * store knows that member to be outdated (dirty bits for it).  A member
 * turns outdated here in the same save as its first bit, before any
 * waiter of that save is released; a failed superblock write fails those
 * waiters like a failed page write.
 *
 * Locking: lock protects the maps, the generations, the waiter queue and
 * the flags; the flusher drops it while it writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmap.h"
#include "error.h"
#include "fdio.h"
#include "internal.h"
#include "util.h"

#define CLEAR_DELAY_MS 1000
#define WATCH_MAX 16384

enum { WATCH_CLEAN = 1, WATCH_FLAGGED = 2 };

struct srv_maps {
  struct store *st;
  uint64_t nchunks;
  unsigned shift;

  GMutex lock; /* protects everything below */
  GCond cond;  /* flusher: work; maps_sync: progress */
  struct dmap *m[RMR_MAX_MEMBERS];
  uint64_t gen_changed; /* bumped by every change */
  uint64_t gen_saved;   /* every change up to here is on disk */
  uint64_t gen_marked;  /* bumped by changes that set bits */
  struct map_waiter *head, *tail;
  struct srv_al *al; /* the recent-write record, saved here too */
  GHashTable *watch[RMR_MAX_MEMBERS]; /* chunk -> WATCH_*; see above */
  /* Dirty chunks per slot, for readers that take no lock (the resync
   * gate on the IO path); written under lock after every change.
   */
  atomic_uint_fast64_t ndirty[RMR_MAX_MEMBERS];
  bool stop;
  int err; /* a failed save: the maps are unusable */
  GThread *flusher;
};

static uint64_t
page_off (const struct store *st, unsigned slot, uint32_t page)
{
  return st->sb.map_offset + slot * st->sb.map_slot_bytes +
         (uint64_t) page * RMR_MAP_PAGE_SIZE;
}

static void
count_unlocked (struct srv_maps *m, unsigned slot)
{
  atomic_store (&m->ndirty[slot], dmap_count (m->m[slot]));
}

/* Write every unsaved page (lock held on entry and exit, dropped while
 * writing).  Returns 0 or -errno.
 */
static int
save_unlocked (struct srv_maps *m)
{
  uint8_t *bufs = NULL, albuf[4096];
  uint64_t *offs = NULL;
  size_t n = 0, cap = 0, i;
  bool al_save, sync_first = false;
  unsigned s;
  uint32_t p;
  int r = 0;

  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    for (p = dmap_next_unsaved (m->m[s], 0); p != UINT32_MAX;
         p = dmap_next_unsaved (m->m[s], p + 1)) {
      if (n == cap) {
        cap = cap ? 2 * cap : 16;
        bufs = g_realloc (bufs, cap * RMR_MAP_PAGE_SIZE);
        offs = g_realloc (offs, cap * sizeof *offs);
      }
      dmap_page_encode (m->m[s], s, p, bufs + n * RMR_MAP_PAGE_SIZE);
      offs[n++] = page_off (m->st, s, p);
      dmap_page_saved (m->m[s], p);
    }
  al_save = al_prepare_save (m->al, albuf, &sync_first);
  if (n == 0 && !al_save)
    return 0;

  g_mutex_unlock (&m->lock);
  /* An extent left the record: the writes it held must be durable before
   * a record without it is.
   */
  if (sync_first)
    r = store_fdatasync (m->st);
  for (i = 0; i < n && r == 0; i++)
    r = rmr_pwrite_full (m->st->fd, bufs + i * RMR_MAP_PAGE_SIZE,
                         RMR_MAP_PAGE_SIZE, offs[i], 0);
  if (r == 0 && al_save)
    r = rmr_pwrite_full (m->st->fd, albuf, sizeof albuf,
                         al_copy_offset (m->al, albuf), 0);
  if (r == 0)
    r = store_fdatasync (m->st);
  if (r == 0 && al_save)
    al_saved (m->al, albuf);
  g_mutex_lock (&m->lock);
  g_free (bufs);
  g_free (offs);
  if (r < 0) {
    m->err = r;
    /* A failed fdatasync may also have dropped data writes. */
    al_suspect (m->al);
    g_critical ("store %s: writing the dirty map failed: %s; this member "
                "refuses writes that need it from now on",
                m->st->path, strerror (-r));
  }
  return r;
}

/* The superblock says, per member slot, whether this store knows that
 * member to be stale (it has dirty bits for it): assemble reads it to
 * know which members may hold data that others lack.  Saved before the
 * waiters of the same save are released; 0 or -errno.  Maps lock not
 * held.
 */
static int
save_states (struct srv_maps *m)
{
  struct store *st = m->st;
  uint64_t count[RMR_MAX_MEMBERS];
  bool changed = false;
  unsigned s;
  int r = 0;

  g_mutex_lock (&m->lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    count[s] = dmap_count (m->m[s]);
  g_mutex_unlock (&m->lock);

  g_mutex_lock (&st->md_lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    uint32_t want = count[s] ? RMR_MEMBER_DIRTY : RMR_MEMBER_NORMAL;
    if (st->sb.members[s].member_id == RMR_MEMBER_NONE ||
        st->sb.members[s].state == want)
      continue;
    st->sb.members[s].state = want;
    st->sb.members[s].since = st->sb.generation;
    changed = true;
  }
  if (changed && (r = store_write_sb_unlocked (st)) < 0)
    g_critical ("store %s: saving member states: %s; this member refuses "
                "writes that need its metadata from now on",
                st->path, rmr_get_error ());
  g_mutex_unlock (&st->md_lock);
  return r;
}

static gpointer
flusher (gpointer arg)
{
  struct srv_maps *m = arg;
  struct map_waiter *done, *w;
  uint64_t g;
  int err;

  g_mutex_lock (&m->lock);
  while (!m->stop || m->gen_changed != m->gen_saved) {
    if (m->gen_changed == m->gen_saved) {
      g_cond_wait (&m->cond, &m->lock);
      continue;
    }
    /* Only clears pending: gather them for a while. */
    if (!m->head && !m->stop && m->gen_marked <= m->gen_saved) {
      gint64 until = g_get_monotonic_time () + CLEAR_DELAY_MS * 1000;
      while (!m->head && !m->stop &&
             g_cond_wait_until (&m->cond, &m->lock, until))
        ;
    }
    g = m->gen_changed;
    if (!m->err && save_unlocked (m) == 0) {
      g_mutex_unlock (&m->lock);
      int r = save_states (m);
      g_mutex_lock (&m->lock);
      if (r < 0)
        m->err = r;
    }
    m->gen_saved = MAX (m->gen_saved, g);
    err = m->err;
    /* Release the waiters this save covered, in order. */
    done = NULL;
    while (m->head && m->head->need <= g) {
      w = m->head;
      m->head = w->next;
      w->next = done;
      done = w;
    }
    if (!m->head)
      m->tail = NULL;
    g_cond_broadcast (&m->cond);
    g_mutex_unlock (&m->lock);
    /* done is in reverse order: reverse it back. */
    {
      struct map_waiter *ordered = NULL;
      while (done) {
        w = done;
        done = w->next;
        w->next = ordered;
        ordered = w;
      }
      while (ordered) {
        w = ordered;
        ordered = w->next;
        w->done (w, err);
      }
    }
    g_mutex_lock (&m->lock);
  }
  g_mutex_unlock (&m->lock);
  return NULL;
}

/* Zero the whole map region of a fresh pool, so that whatever the device
 * held before never reads as map pages.
 */
static int
load (struct srv_maps *m)
{
  uint8_t *buf = g_malloc (RMR_MAP_PAGE_SIZE);
  unsigned s;
  uint32_t p;
  int r = 0;

  for (s = 0; s < RMR_MAX_MEMBERS && r == 0; s++)
    for (p = 0; p < dmap_npages (m->m[s]); p++) {
      r = rmr_pread_full (m->st->fd, buf, RMR_MAP_PAGE_SIZE,
                          page_off (m->st, s, p));
      if (r < 0) {
        rmr_err (-r, "store %s: reading the dirty map: %s", m->st->path,
                 strerror (-r));
        break;
      }
      if (dmap_page_decode (m->m[s], s, p, buf) == -EBADMSG)
        g_warning ("store %s: %s", m->st->path, rmr_get_error ());
    }
  g_free (buf);
  return r;
}

int
maps_open (struct store *st, bool fresh, unsigned al_shift, unsigned al_extents,
           struct srv_maps **out)
{
  struct srv_maps *m;
  unsigned s;
  int r;

  if (!is_power_of_2 (st->sb.chunk_size))
    return rmr_err (EINVAL, "store %s: no chunk size yet", st->path);
  m = g_new0 (struct srv_maps, 1);
  m->st = st;
  m->shift = log_2_bits (st->sb.chunk_size);
  m->nchunks = (st->sb.mapped_size + st->sb.chunk_size - 1) >> m->shift;
  g_mutex_init (&m->lock);
  g_cond_init (&m->cond);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    m->watch[s] = g_hash_table_new (g_direct_hash, g_direct_equal);
    if (!(m->m[s] = dmap_new (m->nchunks))) {
      r = rmr_err (ENOMEM, "dirty map: out of memory");
      goto fail;
    }
  }
  /* A store whose pool was never enabled holds the map region as
   * store_create left it, zeroed: all clean, as the new maps are.
   */
  if (!fresh && (r = load (m)) < 0)
    goto fail;
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    count_unlocked (m, s);
  if ((r = al_open (st, al_shift, al_extents, &m->al)) < 0)
    goto fail;
  m->flusher = g_thread_new ("map-flusher", flusher, m);
  *out = m;
  return 0;

fail:
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    dmap_free (m->m[s]);
    if (m->watch[s])
      g_hash_table_unref (m->watch[s]);
  }
  g_mutex_clear (&m->lock);
  g_cond_clear (&m->cond);
  g_free (m);
  return r;
}

void
maps_close (struct srv_maps *m)
{
  unsigned s;

  if (!m)
    return;
  g_mutex_lock (&m->lock);
  m->stop = true;
  g_cond_broadcast (&m->cond);
  g_mutex_unlock (&m->lock);
  g_thread_join (m->flusher);
  al_close (m->al);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    dmap_free (m->m[s]);
    g_hash_table_unref (m->watch[s]);
  }
  g_mutex_clear (&m->lock);
  g_cond_clear (&m->cond);
  g_free (m);
}

static int queue_unlocked (struct srv_maps *m, bool changed,
                           struct map_waiter *w);

#define CHUNK_KEY(c) ((gpointer) (uintptr_t) (c))

uint64_t
maps_count_fast (struct srv_maps *m, unsigned slot)
{
  return atomic_load (&m->ndirty[slot]);
}

/* Chunks [first, first + n) of slot were marked: flag their watches.
 * Lock held.
 */
static void
flag_watches_unlocked (struct srv_maps *m, unsigned slot, uint64_t first,
                       uint64_t n, const uint8_t *bits)
{
  GHashTable *h = m->watch[slot];
  GHashTableIter it;
  gpointer k, v;
  uint64_t i;

  if (g_hash_table_size (h) == 0)
    return;
  if (!bits && n <= g_hash_table_size (h)) {
    for (i = 0; i < n; i++)
      if (g_hash_table_lookup (h, CHUNK_KEY (first + i)))
        g_hash_table_insert (h, CHUNK_KEY (first + i),
                             GINT_TO_POINTER (WATCH_FLAGGED));
    return;
  }
  g_hash_table_iter_init (&it, h);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    uint64_t c = (uintptr_t) k;
    if (c < first || c - first >= n)
      continue;
    if (bits && !(bits[(c - first) / 8] & 1 << ((c - first) % 8)))
      continue;
    g_hash_table_iter_replace (&it, GINT_TO_POINTER (WATCH_FLAGGED));
  }
}

int
maps_watch (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n,
            const uint8_t *flagged, uint32_t *behind)
{
  GHashTable *h;
  uint64_t i;
  unsigned s;

  if (slot >= RMR_MAX_MEMBERS || n == 0 || first >= m->nchunks ||
      n > m->nchunks - first || n > WATCH_MAX)
    return rmr_err (EINVAL,
                    "map: watch of chunks %" PRIu64 "+%" PRIu64
                    " beyond %" PRIu64 " or more than %u",
                    first, n, m->nchunks, WATCH_MAX);
  g_mutex_lock (&m->lock);
  h = m->watch[slot];
  if (g_hash_table_size (h) + n > WATCH_MAX) {
    /* Leftovers of a member that went away mid-resync: its clears in
     * progress keep their bits (an extra fetch each).
     */
    g_info ("store %s: dropping %u watches of slot %u", m->st->path,
            g_hash_table_size (h), slot);
    g_hash_table_remove_all (h);
  }
  for (i = 0; i < n; i++)
    g_hash_table_insert (
      h, CHUNK_KEY (first + i),
      GINT_TO_POINTER (flagged && flagged[i / 8] & 1u << (i % 8)
                         ? WATCH_FLAGGED
                         : WATCH_CLEAN));
  for (s = 0; s < RMR_MAX_MEMBERS && behind; s++)
    if (s != slot && dmap_any (m->m[s], first, n))
      *behind |= 1u << s;
  g_mutex_unlock (&m->lock);
  return 0;
}

void
maps_clear_watched (struct srv_maps *m, unsigned slot, uint64_t first,
                    uint64_t n, uint8_t *kept)
{
  GHashTable *h = m->watch[slot];
  bool changed = false;
  uint64_t i;

  memset (kept, 0, (n + 7) / 8);
  g_mutex_lock (&m->lock);
  for (i = 0; i < n; i++) {
    gpointer k = CHUNK_KEY (first + i);
    if (GPOINTER_TO_INT (g_hash_table_lookup (h, k)) == WATCH_CLEAN)
      changed |= dmap_clear_range (m->m[slot], first + i, 1) > 0;
    else if (dmap_test (m->m[slot], first + i))
      kept[i / 8] |= 1 << (i % 8);
    g_hash_table_remove (h, k);
  }
  count_unlocked (m, slot);
  if (changed) {
    m->gen_changed++;
    g_cond_broadcast (&m->cond);
  }
  g_mutex_unlock (&m->lock);
}

struct srv_al *
maps_al (struct srv_maps *m)
{
  return m->al;
}

int
maps_save_wait (struct srv_maps *m, struct map_waiter *w)
{
  int r;

  g_mutex_lock (&m->lock);
  if (m->err) {
    g_mutex_unlock (&m->lock);
    return rmr_err (EIO, "the metadata of this store cannot be saved");
  }
  r = queue_unlocked (m, true, w);
  g_mutex_unlock (&m->lock);
  return r;
}

int
maps_mark_clean (struct srv_maps *m)
{
  int r = maps_sync (m);

  return r < 0 ? r : al_mark_clean (m->al);
}

uint64_t
maps_nchunks (const struct srv_maps *m)
{
  return m->nchunks;
}

unsigned
maps_chunk_shift (const struct srv_maps *m)
{
  return m->shift;
}

/* After a change (or none): queue w unless everything up to the last
 * change is on disk.  Conservative: a waiter may also wait for changes
 * that are not its own, never for fewer.  Lock held.
 */
static int
queue_unlocked (struct srv_maps *m, bool changed, struct map_waiter *w)
{
  if (changed) {
    m->gen_changed++;
    m->gen_marked = m->gen_changed;
  }
  if (m->gen_saved >= m->gen_changed)
    return 0;
  if (!w) {
    g_cond_broadcast (&m->cond); /* saved with the next save */
    return 0;
  }
  w->need = m->gen_changed;
  w->next = NULL;
  if (m->tail)
    m->tail->next = w;
  else
    m->head = w;
  m->tail = w;
  g_cond_broadcast (&m->cond);
  return 1;
}

int
maps_mark (struct srv_maps *m, uint32_t mask, uint64_t first, uint64_t n,
           struct map_waiter *w)
{
  bool changed = false;
  unsigned s;
  int64_t c;
  int r;

  if (n == 0 || first >= m->nchunks || n > m->nchunks - first)
    return rmr_err (EINVAL,
                    "map: chunks %" PRIu64 "+%" PRIu64 " beyond %" PRIu64,
                    first, n, m->nchunks);
  g_mutex_lock (&m->lock);
  if (m->err) {
    g_mutex_unlock (&m->lock);
    return rmr_err (EIO, "map: the dirty map of this store cannot be saved");
  }
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (mask & 1u << s) {
      c = dmap_set_range (m->m[s], first, n);
      if (c < 0) {
        g_mutex_unlock (&m->lock);
        return -ENOMEM;
      }
      changed |= c > 0;
      count_unlocked (m, s);
      flag_watches_unlocked (m, s, first, n, NULL);
    }
  r = queue_unlocked (m, changed, w);
  g_mutex_unlock (&m->lock);
  return r;
}

int
maps_or_bits (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n,
              const uint8_t *bits, struct map_waiter *w)
{
  int64_t c;
  int r;

  if (slot >= RMR_MAX_MEMBERS || n == 0 || first >= m->nchunks ||
      n > m->nchunks - first)
    return rmr_err (EINVAL,
                    "map: chunks %" PRIu64 "+%" PRIu64 " beyond %" PRIu64,
                    first, n, m->nchunks);
  g_mutex_lock (&m->lock);
  if (m->err) {
    g_mutex_unlock (&m->lock);
    return rmr_err (EIO, "map: the dirty map of this store cannot be saved");
  }
  c = dmap_or_bits (m->m[slot], first, n, bits);
  if (c < 0) {
    g_mutex_unlock (&m->lock);
    return -ENOMEM;
  }
  count_unlocked (m, slot);
  flag_watches_unlocked (m, slot, first, n, bits);
  r = queue_unlocked (m, c > 0, w);
  g_mutex_unlock (&m->lock);
  return r;
}

void
maps_clear (struct srv_maps *m, uint32_t mask, uint64_t first, uint64_t n)
{
  bool changed = false;
  unsigned s;

  g_mutex_lock (&m->lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (mask & 1u << s) {
      changed |= dmap_clear_range (m->m[s], first, n) > 0;
      count_unlocked (m, s);
    }
  if (changed) {
    m->gen_changed++;
    g_cond_broadcast (&m->cond);
  }
  g_mutex_unlock (&m->lock);
}

void
maps_get_bits (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n,
               uint8_t *bits)
{
  g_mutex_lock (&m->lock);
  dmap_get_bits (m->m[slot], first, n, bits);
  g_mutex_unlock (&m->lock);
}

bool
maps_test (struct srv_maps *m, unsigned slot, uint64_t chunk)
{
  bool r;

  g_mutex_lock (&m->lock);
  r = dmap_test (m->m[slot], chunk);
  g_mutex_unlock (&m->lock);
  return r;
}

bool
maps_any (struct srv_maps *m, unsigned slot, uint64_t first, uint64_t n)
{
  bool r;

  g_mutex_lock (&m->lock);
  r = dmap_any (m->m[slot], first, n);
  g_mutex_unlock (&m->lock);
  return r;
}

uint64_t
maps_count (struct srv_maps *m, unsigned slot)
{
  uint64_t r;

  g_mutex_lock (&m->lock);
  r = dmap_count (m->m[slot]);
  g_mutex_unlock (&m->lock);
  return r;
}

uint64_t
maps_next (struct srv_maps *m, unsigned slot, uint64_t from)
{
  uint64_t r;

  g_mutex_lock (&m->lock);
  r = dmap_next (m->m[slot], from);
  g_mutex_unlock (&m->lock);
  return r;
}

void
maps_summary (struct srv_maps *m, const struct rmr_member_md *members,
              GString *out)
{
  unsigned s;

  g_mutex_lock (&m->lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (members[s].member_id == RMR_MEMBER_NONE)
      continue;
    g_string_append_printf (out, "member %" PRIu32 ": ", members[s].member_id);
    dmap_summary (m->m[s], 30, out);
    g_string_append_c (out, '\n');
  }
  g_mutex_unlock (&m->lock);
}

void
maps_dump (struct srv_maps *m, const struct rmr_member_md *members,
           GString *out)
{
  unsigned s;
  uint64_t c;

  g_mutex_lock (&m->lock);
  for (s = 0; s < RMR_MAX_MEMBERS; s++) {
    if (members[s].member_id == RMR_MEMBER_NONE)
      continue;
    g_string_append_printf (out, "member %" PRIu32 ":", members[s].member_id);
    for (c = dmap_next (m->m[s], 0); c != DMAP_NONE;
         c = dmap_next (m->m[s], c + 1))
      g_string_append_printf (out, " %" PRIu64, c);
    g_string_append_printf (out, "\n");
  }
  g_mutex_unlock (&m->lock);
}

int
maps_sync (struct srv_maps *m)
{
  uint64_t g;
  int r;

  g_mutex_lock (&m->lock);
  /* A save even if no page changed: the record may have. */
  g = ++m->gen_changed;
  m->gen_marked = g; /* no clear delay for this one */
  g_cond_broadcast (&m->cond);
  while (m->gen_saved < g && !m->err)
    g_cond_wait (&m->cond, &m->lock);
  r = m->err;
  g_mutex_unlock (&m->lock);
  return r;
}
