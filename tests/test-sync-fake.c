/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fake sync pool of the resync's unit tests (test-sync-fake.h): the sync
 * pool's calls (rmr_sync_*) answered by fake peers whose dirty maps are
 * real srv_maps on their own stores and whose data is a buffer, the
 * store's flush wrapped to fail on demand, and the helpers the tests
 * share.
 */
#undef NDEBUG

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "fdio.h"
#include "test-map-mark.h"
#include "test-sync-fake.h"

struct node R, P, Q;
uint8_t *pdata, *qdata; /* P's and Q's data areas */
struct srv_pool fake_pool = {.name = "p"};

/* The sync pool's peers, in the order it tries them: P alone (RF=2), or
 * Q first, then P (RF=3).
 */
unsigned npeer;
struct node *peer[2];
uint8_t *peer_data[2];
uint32_t peer_member[2];
unsigned peer_slot[2];
/* Peer index i leads to node via[i] (i unless a test re-points it: its
 * session now leads to another node, rmr.h).
 */
unsigned via[2];

/* Test hooks, called by the fake peer (under hook_lock). */
GMutex hook_lock;
void (*after_read) (uint64_t chunk);
void (*before_read) (void);

/* The store's flush, wrapped (-Wl,--wrap=store_io_wait): the next
 * fail_flushes flushes of R's store fail with EIO.
 */
atomic_uint fail_flushes, failed_flushes, fail_elsewhere, fail_late;

int __real_store_io_wait (struct store *st, enum store_op op, void *buf,
                          uint64_t off, uint32_t len);
int __wrap_store_io_wait (struct store *st, enum store_op op, void *buf,
                          uint64_t off, uint32_t len);

/* The other sync in flight of fail_late: it fails 200 ms after the
 * resync's own flush returned.
 */
static _Atomic uint64_t late_ticket;

static gpointer
end_late (gpointer arg)
{
  uint64_t t = GPOINTER_TO_SIZE (arg);

  g_usleep (200000);
  store_sync_end (R.st, t, -EIO);
  return NULL;
}

int
__wrap_store_io_wait (struct store *st, enum store_op op, void *buf,
                      uint64_t off, uint32_t len)
{
  /* One flusher at a time (sync.c's flushing): no race on the count. */
  int r;

  if (op == STORE_FLUSH && st == R.st && atomic_load (&fail_flushes) > 0) {
    atomic_fetch_sub (&fail_flushes, 1);
    atomic_fetch_add (&failed_flushes, 1);
    return -EIO;
  }
  r = __real_store_io_wait (st, op, buf, off, len);
  if (op == STORE_WRITE && st == R.st && atomic_load (&fail_elsewhere) > 0) {
    atomic_fetch_sub (&fail_elsewhere, 1);
    store_flush_failed (st);
  }
  if (op == STORE_WRITE && st == R.st && atomic_load (&fail_late) > 0) {
    atomic_fetch_sub (&fail_late, 1);
    atomic_store (&late_ticket, store_sync_begin (st));
  }
  if (op == STORE_FLUSH && st == R.st && atomic_load (&late_ticket)) {
    uint64_t t = atomic_exchange (&late_ticket, 0);
    if (t)
      g_thread_unref (g_thread_new ("late", end_late, GSIZE_TO_POINTER (t)));
  }
  return r;
}
unsigned reads, watches;
unsigned away;

static void
node_init (struct node *n, uint32_t member)
{
  unsigned s;

  tmp_init (&n->tmp, "/tmp");
  g_assert_cmpint (
    store_create (n->tmp.path, "p", member, MAPPED, false, &n->st), ==, 0);
  n->st->sb.chunk_size = CS;
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    n->st->sb.members[s].member_id = RMR_MEMBER_NONE;
  n->st->sb.members[R_SLOT].member_id = 1;
  n->st->sb.members[P_SLOT].member_id = 2;
  n->st->sb.members[Q_SLOT].member_id = 3;
  g_assert_cmpint (
    maps_open (n->st, true, AL_DEFAULT_SHIFT, AL_DEFAULT_EXTENTS, &n->maps), ==,
    0);
}

static void
node_fini (struct node *n)
{
  maps_close (n->maps);
  store_close (n->st);
  tmp_fini (&n->tmp);
}

/* The fake sync pool. */

unsigned
rmr_sync_npeers (struct rmr_pool *pool)
{
  return npeer;
}

uint32_t
rmr_sync_peer_member (struct rmr_pool *pool, unsigned i)
{
  return i < npeer ? peer_member[via[i]] : RMR_MEMBER_NONE;
}

int
rmr_sync_watch (struct rmr_pool *pool, uint64_t generation, unsigned slot,
                uint64_t first, uint64_t n, uint32_t *peers, uint32_t *members,
                uint32_t *behind)
{
  unsigned i;

  *peers = 0;
  *behind = 0;
  for (i = 0; i < RMR_MAX_MEMBERS && members; i++)
    members[i] = RMR_MEMBER_NONE;
  for (i = 0; i < npeer; i++) {
    if (away & 1u << i)
      continue; /* unreachable: it neither watches nor answers */
    g_assert_cmpint (
      maps_watch (peer[via[i]]->maps, slot, first, n, NULL, behind), ==, 0);
    *peers |= 1u << i;
    if (members)
      members[i] = peer_member[via[i]];
  }
  g_mutex_lock (&hook_lock);
  watches++;
  g_mutex_unlock (&hook_lock);
  return 0;
}

/* The peer's "a write to that range is in flight here; try again"
 * (pool.c): the next `refusals` reads are refused.  The first refusal
 * waits until the test let it go (refusal_go), so that the test can act
 * while the fetch is being refused.
 */
GMutex refuse_lock;
GCond refuse_cond;
unsigned refusals;
bool refusing, refusal_go;

static bool
refuse_reads (uint64_t c)
{
  bool refuse;

  g_mutex_lock (&refuse_lock);
  refuse = refusals > 0;
  if (refuse) {
    refusals--;
    if (!refusing) {
      refusing = true;
      g_cond_broadcast (&refuse_cond);
      while (!refusal_go)
        g_cond_wait (&refuse_cond, &refuse_lock);
    }
  }
  g_mutex_unlock (&refuse_lock);
  return refuse;
}

int
rmr_sync_read_sparse (struct rmr_pool *pool, uint64_t generation,
                      uint32_t peers, const uint32_t *members, void *buf,
                      uint32_t count, uint64_t offset, uint32_t *member,
                      int *zeroes)
{
  uint64_t c = offset / CS;
  unsigned i, n;

  if (refuse_reads (c))
    return rmr_err (EAGAIN, "member 2: a write to that range is in flight "
                            "here; try again");
  g_mutex_lock (&hook_lock);
  if (before_read)
    before_read ();
  g_mutex_unlock (&hook_lock);
  for (i = 0; i < npeer; i++) {
    /* A peer refuses what it is behind on itself (pool.c,
     * sync_dirty_here).
     */
    g_mutex_lock (&hook_lock);
    n = via[i];
    g_mutex_unlock (&hook_lock);
    if (!(peers & 1u << i) || maps_test (peer[n]->maps, peer_slot[n], c))
      continue;
    /* Another member answering there than the one chosen: refused as
     * client-sync.c's call does.
     */
    if (members && members[i] != peer_member[n])
      continue;
    g_mutex_lock (&hook_lock);
    memcpy (buf, peer_data[n] + offset, count);
    reads++;
    if (after_read)
      after_read (c);
    g_mutex_unlock (&hook_lock);
    if (member)
      *member = peer_member[n];
    /* Zeroes without payload, as sess-io.c answers them. */
    if (zeroes)
      *zeroes = buf_is_zero (buf, count);
    return 0;
  }
  return rmr_err (EAGAIN, "no peer could serve chunk %" PRIu64, c);
}

int
rmr_sync_clear_watched (struct rmr_pool *pool, uint64_t generation,
                        unsigned slot, uint64_t first, uint64_t n,
                        uint32_t peers, const uint32_t *members, uint8_t *kept)
{
  uint8_t k[64];
  unsigned i, j;

  g_assert_cmpuint ((n + 7) / 8, <=, sizeof k);
  memset (kept, 0, (n + 7) / 8);
  for (i = 0; i < npeer; i++)
    if (peers & 1u << i) {
      if (members && members[i] != peer_member[via[i]]) {
        memset (kept, 0xff, (n + 7) / 8); /* as client-sync.c: kept */
        continue;
      }
      maps_clear_watched (peer[via[i]]->maps, slot, first, n, k);
      for (j = 0; j < (n + 7) / 8; j++)
        kept[j] |= k[j];
    }
  return 0;
}

int
rmr_sync_map_get (struct rmr_pool *pool, unsigned i, uint32_t member,
                  uint64_t generation, unsigned slot, uint64_t first,
                  uint64_t n, uint8_t *bits)
{
  if (member != RMR_MEMBER_NONE && member != peer_member[via[i]])
    return rmr_err (ECANCELED, "peer %u answered as member %" PRIu32, i,
                    peer_member[via[i]]);
  maps_get_bits (peer[via[i]]->maps, slot, first, n, bits);
  return 0;
}

/* No client write is in flight on R in these tests. */
bool
pool_writes_overlap (struct srv_pool *p, uint64_t off, uint64_t len)
{
  return false;
}

/* The reconcile's take (pool-io.c): every chunk is quiet on R but
 * `unquiet` (a write R did there may still be on its way to P).
 */
uint64_t unquiet = UINT64_MAX;

/* The quiet rule of a chunk fetched again (sync-flush.c): the same. */
bool
pool_quiet (struct srv_pool *p, uint64_t off, uint64_t len)
{
  bool r;

  g_mutex_lock (&hook_lock);
  r = unquiet == UINT64_MAX || unquiet < off / CS ||
      unquiet > (off + len - 1) / CS;
  g_mutex_unlock (&hook_lock);
  return r;
}

void
pool_take_quiet (struct srv_pool *p, struct srv_maps *maps, unsigned slot,
                 uint64_t first, uint64_t n, uint8_t *bits)
{
  g_mutex_lock (&hook_lock);
  if (unquiet >= first && unquiet < first + n)
    bits[(unquiet - first) / 8] &= ~(1u << ((unquiet - first) % 8));
  g_mutex_unlock (&hook_lock);
  maps_or_bits (maps, slot, first, n, bits, NULL);
}

/* Helpers. */

void
flag_init (struct done_flag *f)
{
  memset (f, 0, sizeof *f);
  g_mutex_init (&f->lock);
  g_cond_init (&f->cond);
}

void
flag_set (struct done_flag *f, int err)
{
  g_mutex_lock (&f->lock);
  f->done = true;
  f->err = err;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

int
flag_wait (struct done_flag *f)
{
  gint64 until = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  g_mutex_lock (&f->lock);
  while (!f->done)
    g_assert_true (g_cond_wait_until (&f->cond, &f->lock, until));
  g_mutex_unlock (&f->lock);
  return f->err;
}

void
map_done (struct map_waiter *w, int err)
{
  flag_set (container_of (w, struct done_flag, w), err);
}

void
gate_done (struct sync_waiter *w, int err)
{
  flag_set (container_of (w, struct done_flag, sw), err);
}

void
mark (struct node *n, unsigned slot, uint64_t c)
{
  map_mark (n->maps, 1u << slot, c, 1);
}

void
fill (uint8_t *p, uint64_t c, uint8_t v)
{
  memset (p + c * CS, v, CS);
}

uint8_t
r_byte (uint64_t c)
{
  uint8_t b = 0;

  g_assert_cmpint (rmr_pread_full (R.st->fd, &b, 1, R.st->data_offset + c * CS),
                   ==, 0);
  return b;
}

/* Wait until R's own bits are gone and its sync has nothing in hand. */
int
gate_wait (struct srv_sync *s, struct done_flag *f, uint64_t offset,
           uint32_t len, bool write)
{
  flag_init (f);
  f->sw.go = gate_done;
  return sync_gate (s, &f->sw, offset, len, write) == 1 ? flag_wait (f) : 0;
}

bool
wait_clean (struct srv_sync *s, unsigned secs)
{
  gint64 until = g_get_monotonic_time () + secs * G_TIME_SPAN_SECOND;
  g_autoptr (GString) st = g_string_new (NULL);

  while (g_get_monotonic_time () < until) {
    g_string_truncate (st, 0);
    if (maps_count (R.maps, R_SLOT) == 0 && sync_status (s, st) &&
        !sync_dirty_here (s, 0, MAPPED))
      return true;
    g_usleep (20000);
  }
  return false;
}

struct srv_sync *
start_parallel (bool stopped, uint64_t rate, unsigned parallel)
{
  struct srv_sync *s;

  g_assert_cmpint (sync_open (&fake_pool, R.st, R.maps, R_SLOT,
                              (struct rmr_pool *) &fake_pool, parallel, rate, 0,
                              stopped, &s),
                   ==, 0);
  sync_set_normal (s, true, 1);
  return s;
}

struct srv_sync *
start_paced (bool stopped, uint64_t rate)
{
  return start_parallel (stopped, rate, 1);
}

struct srv_sync *
start (bool stopped)
{
  return start_paced (stopped, 0);
}

void
setup_rf (unsigned rf)
{
  node_init (&R, 1);
  node_init (&P, 2);
  pdata = g_malloc0 (MAPPED);
  npeer = rf - 1;
  if (rf == 3) {
    node_init (&Q, 3);
    qdata = g_malloc0 (MAPPED);
    peer[0] = &Q, peer_data[0] = qdata, peer_member[0] = 3;
    peer_slot[0] = Q_SLOT;
    peer[1] = &P, peer_data[1] = pdata, peer_member[1] = 2;
    peer_slot[1] = P_SLOT;
  }
  else {
    /* RF=2: the table holds R and P only. */
    R.st->sb.members[Q_SLOT].member_id = RMR_MEMBER_NONE;
    P.st->sb.members[Q_SLOT].member_id = RMR_MEMBER_NONE;
    peer[0] = &P, peer_data[0] = pdata, peer_member[0] = 2;
    peer_slot[0] = P_SLOT;
  }
  via[0] = 0;
  via[1] = 1;
  after_read = NULL;
  before_read = NULL;
  reads = watches = 0;
  away = 0;
}

void
setup (void)
{
  setup_rf (2);
}

void
teardown (void)
{
  node_fini (&R);
  node_fini (&P);
  g_free (pdata);
  if (npeer == 2) {
    node_fini (&Q);
    g_free (qdata);
  }
}
