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
 * Cost: a write to an extent already in the record changes nothing on
 * disk.  A write to a cold extent adds it (and, when the record is full,
 * evicts the least recently used extent that has no write in flight):
 * one 4 KiB record write with the map flusher's next save (map.c), which
 * first fdatasyncs the data when an extent was evicted, so that what the
 * evicted extent's writes did is durable before the record forgets it.
 *
 * On disk: two 4 KiB copies at al_offset and al_offset + 4096, written
 * alternately by seq, each with a CRC-32C; the valid copy with the
 * highest seq is in force.  Neither valid (and not all zero) means the
 * record is lost: the member reports it, and assemble treats all of its
 * data as possibly different.
 *
 *   0  u8[8]  magic "RMRAL001"     24 u32 extent_shift
 *   8  u32    crc32c (field 0)     28 u32 flags (AL_F_CLEAN)
 *   12 u32    n                    32 u64 writes (admitted, a tie-breaker)
 *   16 u64    seq                  40 u8[40] boot id of the writer's kernel
 *                                  80 u32 extents[n]
 *
 * A member that stopped uncleanly but whose kernel did not (same boot
 * id: the daemon was killed) lost nothing it had written: only a member
 * whose machine lost power or crashed treats its record as stale for
 * itself.  Either way the extents are reported to an assemble.
 *
 * Locking: lock protects everything in struct srv_al; the IO path holds
 * it for a hash lookup and a list move.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "error.h"
#include "internal.h"
#include "util.h"

#define AL_MAGIC "RMRAL001"
#define AL_BOOT_ID 40
#define AL_BOOT_ID_LEN 40
#define AL_HDR 80
#define AL_BLOCK 4096

struct al_ext {
  uint32_t extent;
  unsigned refs;                /* writes in flight */
  GList link;                   /* in lru while refs == 0 */
};

struct srv_al {
  struct store *st;
  unsigned shift;
  unsigned capacity;

  GMutex lock;                  /* protects everything below */
  GHashTable *active;           /* extent -> struct al_ext */
  GQueue lru;                   /* idle extents, least recent first */
  bool changed;                 /* the record differs from the saved one */
  bool evicted;                 /* an extent left since the last save */
  bool lost;                    /* the saved record could not be read */
  bool was_clean;               /* the store was shut down cleanly */
  struct al_waiter *wait_head, *wait_tail; /* writes waiting for room */
  uint64_t seq;                 /* of the copy in force */
  uint64_t writes;
  uint32_t loaded_shift;        /* extent size of the record found */
  GArray *loaded;               /* extents of the record found */
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

/* This kernel's boot id (a UUID), NUL padded. */
static void
boot_id (uint8_t *out)
{
  g_autofree char *text = NULL;

  memset (out, 0, AL_BOOT_ID_LEN);
  if (g_file_get_contents ("/proc/sys/kernel/random/boot_id", &text, NULL,
                           NULL))
    memcpy (out, g_strstrip (text), MIN (strlen (text), AL_BOOT_ID_LEN));
}

static void
encode (struct srv_al *al, uint8_t *buf, bool clean)
{
  GHashTableIter it;
  gpointer k, v;
  uint32_t n = 0;

  memset (buf, 0, AL_BLOCK);
  memcpy (buf, AL_MAGIC, 8);
  put_le64 (buf + 16, al->seq);
  put_le32 (buf + 24, al->shift);
  put_le32 (buf + 28, clean ? AL_F_CLEAN : 0);
  put_le64 (buf + 32, al->writes);
  boot_id (buf + AL_BOOT_ID);
  if (!clean) {
    g_hash_table_iter_init (&it, al->active);
    while (g_hash_table_iter_next (&it, &k, &v))
      put_le32 (buf + AL_HDR + 4 * n++, ((struct al_ext *) v)->extent);
  }
  put_le32 (buf + 12, n);
  put_le32 (buf + 8, rmr_crc32c (0, buf, AL_BLOCK));
}

/* Decode one copy: 0, -ENODATA (all zero: never written), -EBADMSG. */
static int
decode (const uint8_t *buf, uint64_t *seq, uint32_t *shift, uint32_t *flags,
        uint64_t *writes, uint8_t *boot, GArray *extents)
{
  uint8_t copy[AL_BLOCK];
  uint32_t n, i;

  for (i = 0; i < AL_BLOCK && !buf[i]; i++)
    ;
  if (i == AL_BLOCK)
    return -ENODATA;
  memcpy (copy, buf, AL_BLOCK);
  put_le32 (copy + 8, 0);
  n = get_le32 (buf + 12);
  if (memcmp (buf, AL_MAGIC, 8) != 0 ||
      rmr_crc32c (0, copy, AL_BLOCK) != get_le32 (buf + 8) ||
      n > (AL_BLOCK - AL_HDR) / 4 || get_le32 (buf + 24) < 12 ||
      get_le32 (buf + 24) > 40 || (get_le32 (buf + 28) & ~AL_F_CLEAN))
    return -EBADMSG;
  *seq = get_le64 (buf + 16);
  *shift = get_le32 (buf + 24);
  *flags = get_le32 (buf + 28);
  *writes = get_le64 (buf + 32);
  memcpy (boot, buf + AL_BOOT_ID, AL_BOOT_ID_LEN);
  g_array_set_size (extents, 0);
  for (i = 0; i < n; i++) {
    uint32_t e = get_le32 (buf + AL_HDR + 4 * i);
    g_array_append_val (extents, e);
  }
  return 0;
}

static int
load (struct srv_al *al)
{
  g_autofree uint8_t *buf = g_malloc (2 * AL_BLOCK);
  g_autoptr (GArray) e0 = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  g_autoptr (GArray) e1 = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  uint64_t s0 = 0, s1 = 0, w0 = 0, w1 = 0;
  uint32_t sh0 = 0, sh1 = 0, f0 = 0, f1 = 0;
  uint8_t b0[AL_BOOT_ID_LEN], b1[AL_BOOT_ID_LEN], now[AL_BOOT_ID_LEN];
  ssize_t r;
  int r0, r1;

  r = pread (al->st->fd, buf, 2 * AL_BLOCK, al->st->sb.al_offset);
  if (r < 0)
    return rmr_err (errno, "store %s: reading the recent-write record: %s",
                    al->st->path, strerror (errno));
  if (r < 2 * AL_BLOCK)
    memset (buf + r, 0, 2 * AL_BLOCK - r);
  r0 = decode (buf, &s0, &sh0, &f0, &w0, b0, e0);
  r1 = decode (buf + AL_BLOCK, &s1, &sh1, &f1, &w1, b1, e1);
  if (r0 == -ENODATA && r1 == -ENODATA) {
    al->was_clean = true;       /* never written: a new store */
    return 0;
  }
  if (r0 < 0 && r1 < 0) {
    al->lost = true;
    g_warning ("store %s: the recent-write record is damaged (both copies): "
               "assemble will treat this member's data as possibly "
               "different everywhere", al->st->path);
    return 0;
  }
  if (r1 == 0 && (r0 < 0 || s1 > s0)) {
    s0 = s1, sh0 = sh1, f0 = f1, w0 = w1;
    memcpy (b0, b1, sizeof b0);
    g_array_set_size (e0, 0);
    g_array_append_vals (e0, e1->data, e1->len);
  }
  al->seq = s0;
  al->writes = w0;
  /* Killed but the kernel kept running: what it wrote is in the page
   * cache or on the device, not lost.
   */
  boot_id (now);
  al->was_clean = (f0 & AL_F_CLEAN) || (now[0] && !memcmp (now, b0, sizeof now));
  al->loaded_shift = sh0;
  g_array_append_vals (al->loaded, e0->data, e0->len);
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
  al->active = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                      ext_free);
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

/* Would the extents of [first, last] fit now (lock held)?  The record
 * may hold capacity extents; idle ones can leave.  A write larger than
 * the whole record fits when nothing else is pinned.
 */
static bool
fits_unlocked (struct srv_al *al, uint32_t first, uint32_t last)
{
  unsigned size = g_hash_table_size (al->active), idle = al->lru.length;
  unsigned need = 0;
  uint32_t e;

  for (e = first; e <= last; e++)
    if (!g_hash_table_lookup (al->active, GUINT_TO_POINTER (e + 1)))
      need++;
  return size - idle + need <= al->capacity || size == idle;
}

int
al_begin (struct srv_al *al, uint64_t off, uint32_t len, bool *need_save,
          struct al_waiter *w)
{
  uint32_t e, first = off >> al->shift, last = (off + len - 1) >> al->shift;
  struct al_ext *x;

  *need_save = false;
  g_mutex_lock (&al->lock);
  if (!fits_unlocked (al, first, last)) {
    /* Every slot is pinned by writes in flight: this one waits for one
     * to finish, so the record never holds more than its window.
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
      continue;
    }
    /* A cold extent: an idle extent leaves if the record is full. */
    if (g_hash_table_size (al->active) >= al->capacity) {
      GList *old = g_queue_pop_head_link (&al->lru);
      if (old) {
        struct al_ext *victim = old->data;
        g_hash_table_remove (al->active, GUINT_TO_POINTER (victim->extent + 1));
        al->evicted = true;
      }
    }
    x = g_new0 (struct al_ext, 1);
    x->extent = e;
    x->refs = 1;
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
  r = al->changed;
  *sync_data_first = al->evicted;
  if (r) {
    al->seq++;
    encode (al, buf, false);
    al->changed = al->evicted = false;
  }
  g_mutex_unlock (&al->lock);
  return r;
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
  ssize_t r;
  int e = 0;

  /* The data first, then a record that says nothing is in flight. */
  if (fdatasync (al->st->fd) < 0)
    e = errno;
  g_mutex_lock (&al->lock);
  /* Idle extents leave the record (their writes are durable now). */
  while (!g_queue_is_empty (&al->lru)) {
    struct al_ext *x = g_queue_pop_head_link (&al->lru)->data;
    g_hash_table_remove (al->active, GUINT_TO_POINTER (x->extent + 1));
  }
  al->seq++;
  encode (al, buf, g_hash_table_size (al->active) == 0);
  g_mutex_unlock (&al->lock);
  if (!e) {
    r = pwrite (al->st->fd, buf, AL_BLOCK, al_copy_offset (al, buf));
    if (r != AL_BLOCK || fdatasync (al->st->fd) < 0)
      e = r < 0 ? errno : EIO;
  }
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
  GHashTableIter it;
  gpointer k, v;
  unsigned sh, i;
  uint32_t e, prev = UINT32_MAX;
  g_autoptr (GArray) all = g_array_new (FALSE, FALSE, sizeof (uint32_t));

  g_mutex_lock (&al->lock);
  info->clean = al->was_clean;
  info->lost = al->lost;
  info->writes = al->writes;
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
  g_mutex_unlock (&al->lock);

  g_array_sort (all, cmp_u32);
  info->shift = sh;
  info->extents = g_array_new (FALSE, FALSE, sizeof (uint32_t));
  for (i = 0; i < all->len; i++) {
    e = g_array_index (all, uint32_t, i);
    if (e != prev)
      g_array_append_val (info->extents, e);
    prev = e;
  }
}

void
al_consumed (struct srv_al *al)
{
  g_mutex_lock (&al->lock);
  g_array_set_size (al->loaded, 0);
  al->was_clean = true;
  al->lost = false;
  g_mutex_unlock (&al->lock);
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
