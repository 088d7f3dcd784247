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
  if (sync_first && fdatasync (m->st->fd) < 0)
    r = -errno;
  for (i = 0; i < n && r == 0; i++)
    r = rmr_pwrite_full (m->st->fd, bufs + i * RMR_MAP_PAGE_SIZE,
                         RMR_MAP_PAGE_SIZE, offs[i], 0);
  if (r == 0 && al_save)
    r = rmr_pwrite_full (m->st->fd, albuf, sizeof albuf,
                         al_copy_offset (m->al, albuf), 0);
  if (r == 0 && fdatasync (m->st->fd) < 0)
    r = -errno;
  g_mutex_lock (&m->lock);
  g_free (bufs);
  g_free (offs);
  if (r < 0) {
    m->err = r;
    g_critical ("store %s: writing the dirty map failed: %s; this member "
                "refuses writes that need it from now on",
                m->st->path, strerror (-r));
  }
  return r;
}

/* The superblock says, per member slot, whether this store knows that
 * member to be stale (it has dirty bits for it): assemble reads it to
 * know which members may hold data that others lack.  Saved before the
 * waiters of the same save are released.  Maps lock not held.
 */
static void
save_states (struct srv_maps *m)
{
  struct store *st = m->st;
  uint64_t count[RMR_MAX_MEMBERS];
  bool changed = false;
  unsigned s;

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
    changed = true;
  }
  if (changed && store_write_sb_unlocked (st) < 0)
    g_critical ("store %s: saving member states: %s", st->path,
                rmr_get_error ());
  g_mutex_unlock (&st->md_lock);
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
      save_states (m);
      g_mutex_lock (&m->lock);
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
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    if (!(m->m[s] = dmap_new (m->nchunks))) {
      r = rmr_err (ENOMEM, "dirty map: out of memory");
      goto fail;
    }
  /* A store whose pool was never enabled holds the map region as
   * store_create left it, zeroed: all clean, as the new maps are.
   */
  if (!fresh && (r = load (m)) < 0)
    goto fail;
  if ((r = al_open (st, al_shift, al_extents, &m->al)) < 0)
    goto fail;
  m->flusher = g_thread_new ("map-flusher", flusher, m);
  *out = m;
  return 0;

fail:
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    dmap_free (m->m[s]);
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
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    dmap_free (m->m[s]);
  g_mutex_clear (&m->lock);
  g_cond_clear (&m->cond);
  g_free (m);
}

static int queue_unlocked (struct srv_maps *m, bool changed,
                           struct map_waiter *w);

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
    if (mask & 1u << s)
      changed |= dmap_clear_range (m->m[s], first, n) > 0;
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
  g = m->gen_changed;
  m->gen_marked = g; /* no clear delay for this one */
  g_cond_broadcast (&m->cond);
  while (m->gen_saved < g && !m->err)
    g_cond_wait (&m->cond, &m->lock);
  r = m->err;
  g_mutex_unlock (&m->lock);
  return r;
}
