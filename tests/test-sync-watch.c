/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deterministic unit test of the resync rules (rmr-storaged/sync.c with
 * the real map.c and store layer) against a fake peer: the sync pool's
 * calls (rmr_sync_*) are replaced below by a peer whose dirty maps are a
 * real srv_maps on its own store and whose data is a buffer, and hooks
 * let a test act at the exact point of an interleaving ("a write the
 * member missed lands right after its chunk was fetched").
 *
 * Member R (slot 0, member 1) resyncs from peer P (slot 1, member 2):
 *   - plain: what P records for R is fetched, and cleared on both;
 *   - re-dirty (issue 8, scenario 3): a write R missed marks P right after
 *     R fetched (or a whole-chunk write claimed) the chunk: the watched
 *     clear keeps the bit on P and R, R fetches again, ends with it;
 *   - stale source (scenario 6): a peer R knows to be behind there never
 *     serves the chunk;
 *   - gate with the background sync stopped (scenario 2): bits a
 *     hand-over adds are fetched on demand before a read goes on;
 *   - reconcile (scenario 7): bits only P still holds for R are taken and
 *     drained, unless P is itself behind there; and not while the chunk
 *     is not quiet on R (a write R did may still be on its way to P);
 *   - a background fetch refused ("write in flight, try again") while a
 *     read starts waiting for it: the read gets the on-demand retries;
 *   - a background fetch waiting for its pace while a read starts waiting
 *     for it: it goes at once, and a close does not wait for the pace;
 *   - a gate after the sync was stopped (the store is going away) fails
 *     the IO with EIO at once;
 *   - the resync's flush of the store fails: the chunk stays dirty and the
 *     recent-write record turns suspect, durably;
 *   - RF=3, a source's session re-pointed to a stale member between the
 *     decision and the read: the read expects the member that watched
 *     (rmr.h), never takes the stale member's answer.
 */
#undef NDEBUG

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "error.h"
#include "fdio.h"
#include "internal.h"
#include "util.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (4 * MiB)
#define CS (64 * 1024)
#define R_SLOT 0
#define P_SLOT 1
#define Q_SLOT 2

struct node {
  struct tmp tmp;
  struct store *st;
  struct srv_maps *maps;
};

static struct node R, P, Q;
static uint8_t *pdata, *qdata; /* P's and Q's data areas */
static struct srv_pool fake_pool = {.name = "p"};

/* The sync pool's peers, in the order it tries them: P alone (RF=2), or
 * Q first, then P (RF=3).
 */
static unsigned npeer;
static struct node *peer[2];
static uint8_t *peer_data[2];
static uint32_t peer_member[2];
static unsigned peer_slot[2];
/* Peer index i leads to node via[i] (i unless a test re-points it: its
 * session now leads to another node, rmr.h).
 */
static unsigned via[2];

/* Test hooks, called by the fake peer (under hook_lock). */
static GMutex hook_lock;
static void (*after_read) (uint64_t chunk);
static void (*before_read) (void);

/* The store's flush, wrapped (-Wl,--wrap=store_io_wait): the next
 * fail_flushes flushes of R's store fail with EIO.
 */
static atomic_uint fail_flushes, failed_flushes;

int __real_store_io_wait (struct store *st, enum store_op op, void *buf,
                          uint64_t off, uint32_t len);
int __wrap_store_io_wait (struct store *st, enum store_op op, void *buf,
                          uint64_t off, uint32_t len);

int
__wrap_store_io_wait (struct store *st, enum store_op op, void *buf,
                      uint64_t off, uint32_t len)
{
  /* One flusher at a time (sync.c's flushing): no race on the count. */
  if (op == STORE_FLUSH && st == R.st && atomic_load (&fail_flushes) > 0) {
    atomic_fetch_sub (&fail_flushes, 1);
    atomic_fetch_add (&failed_flushes, 1);
    return -EIO;
  }
  return __real_store_io_wait (st, op, buf, off, len);
}
static unsigned reads, watches;

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
                uint64_t first, uint64_t n, uint32_t *peers, uint32_t *members)
{
  unsigned i;

  *peers = 0;
  for (i = 0; i < RMR_MAX_MEMBERS && members; i++)
    members[i] = RMR_MEMBER_NONE;
  for (i = 0; i < npeer; i++) {
    g_assert_cmpint (maps_watch (peer[via[i]]->maps, slot, first, n, NULL), ==,
                     0);
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
static GMutex refuse_lock;
static GCond refuse_cond;
static unsigned refusals;
static bool refusing, refusal_go;

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
rmr_sync_read (struct rmr_pool *pool, uint64_t generation, uint32_t peers,
               const uint32_t *members, void *buf, uint32_t count,
               uint64_t offset, uint32_t *member)
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
static uint64_t unquiet = UINT64_MAX;

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

struct done_flag {
  struct map_waiter w;
  struct sync_waiter sw;
  GMutex lock;
  GCond cond;
  bool done;
  int err;
};

static void
flag_init (struct done_flag *f)
{
  memset (f, 0, sizeof *f);
  g_mutex_init (&f->lock);
  g_cond_init (&f->cond);
}

static void
flag_set (struct done_flag *f, int err)
{
  g_mutex_lock (&f->lock);
  f->done = true;
  f->err = err;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

static int
flag_wait (struct done_flag *f)
{
  gint64 until = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;

  g_mutex_lock (&f->lock);
  while (!f->done)
    g_assert_true (g_cond_wait_until (&f->cond, &f->lock, until));
  g_mutex_unlock (&f->lock);
  return f->err;
}

static void
map_done (struct map_waiter *w, int err)
{
  flag_set (container_of (w, struct done_flag, w), err);
}

static void
gate_done (struct sync_waiter *w, int err)
{
  flag_set (container_of (w, struct done_flag, sw), err);
}

/* Mark chunk c of slot on node n, durably. */
static void
mark (struct node *n, unsigned slot, uint64_t c)
{
  struct done_flag f;

  flag_init (&f);
  f.w.done = map_done;
  if (maps_mark (n->maps, 1u << slot, c, 1, &f.w) == 1)
    g_assert_cmpint (flag_wait (&f), ==, 0);
}

static void
fill (uint8_t *p, uint64_t c, uint8_t v)
{
  memset (p + c * CS, v, CS);
}

static uint8_t
r_byte (uint64_t c)
{
  uint8_t b = 0;

  g_assert_cmpint (rmr_pread_full (R.st->fd, &b, 1, R.st->data_offset + c * CS),
                   ==, 0);
  return b;
}

/* Wait until R's own bits are gone and its sync has nothing in hand. */
static bool
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

static struct srv_sync *
start_paced (bool stopped, uint64_t rate)
{
  struct srv_sync *s;

  g_assert_cmpint (sync_open (&fake_pool, R.st, R.maps, R_SLOT,
                              (struct rmr_pool *) &fake_pool, 1, rate, 0,
                              stopped, &s),
                   ==, 0);
  sync_set_normal (s, true, 1);
  return s;
}

static struct srv_sync *
start (bool stopped)
{
  return start_paced (stopped, 0);
}

static void
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
    peer[0] = &P, peer_data[0] = pdata, peer_member[0] = 2;
    peer_slot[0] = P_SLOT;
  }
  via[0] = 0;
  via[1] = 1;
  after_read = NULL;
  before_read = NULL;
  reads = watches = 0;
}

static void
setup (void)
{
  setup_rf (2);
}

static void
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

/* What P records for R is fetched and cleared on both. */
static void
test_plain (void)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 3, 0x33);
  mark (&P, R_SLOT, 3);
  mark (&R, R_SLOT, 3);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (3), ==, 0x33);
  /* P's clear is lazy in memory: the bit is gone at once. */
  g_assert_false (maps_test (P.maps, R_SLOT, 3));
  sync_close (s);
  teardown ();
}

/* Scenario 3: right after R fetched chunk 5 from P, a write that R misses
 * (the client counts R not normal) lands on P and is recorded there.
 */
static void
redirty_5 (uint64_t c)
{
  struct done_flag f;

  if (c != 5 || reads > 1)
    return;
  fill (pdata, 5, 0x77);
  flag_init (&f);
  f.w.done = map_done;
  if (maps_mark (P.maps, 1u << R_SLOT, 5, 1, &f.w) == 1)
    g_assert_cmpint (flag_wait (&f), ==, 0);
}

static void
test_redirty_after_fetch (void)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 5, 0x55);
  mark (&P, R_SLOT, 5);
  mark (&R, R_SLOT, 5);
  after_read = redirty_5;
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (reads, >=, 2);
  g_assert_cmpuint (r_byte (5), ==, 0x77); /* the missed write is here */
  g_assert_false (maps_test (P.maps, R_SLOT, 5));
  sync_close (s);
  teardown ();
}

/* The same for a whole-chunk write that claims chunk 6 (no fetch): a
 * write R misses after the claim keeps the chunk dirty, and R fetches it.
 */
static void
test_redirty_after_claim (void)
{
  g_autofree uint8_t *buf = g_malloc (CS);
  struct done_flag f, m;
  struct srv_sync *s;
  int r;

  setup ();
  mark (&P, R_SLOT, 6);
  mark (&R, R_SLOT, 6);
  s = start (true); /* background stopped: only the claim works */
  flag_init (&f);
  f.sw.go = gate_done;
  r = sync_gate (s, &f.sw, 6 * CS, CS, true);
  if (r == 1)
    g_assert_cmpint (flag_wait (&f), ==, 0);
  g_assert_cmpuint (f.sw.claimed, ==, 1);
  g_assert_cmpuint (watches, ==, 1);
  /* The claiming write lands on R; then one R misses lands on P. */
  memset (buf, 0x61, CS);
  g_assert_cmpint (
    rmr_pwrite_full (R.st->fd, buf, CS, R.st->data_offset + 6 * CS, 0), ==, 0);
  fill (pdata, 6, 0x62);
  flag_init (&m);
  m.w.done = map_done;
  if (maps_mark (P.maps, 1u << R_SLOT, 6, 1, &m.w) == 1)
    g_assert_cmpint (flag_wait (&m), ==, 0);
  sync_io_done (s, &f.sw, 0);
  sync_command (s, true);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (6), ==, 0x62);
  g_assert_false (maps_test (P.maps, R_SLOT, 6));
  sync_close (s);
  teardown ();
}

/* Scenario 6: R knows P is behind at chunk 9 (its map of P's slot): P
 * must not be the source, although P does not know it itself.
 */
static void
test_stale_source (void)
{
  struct srv_sync *s;
  uint8_t want;

  setup ();
  fill (pdata, 9, 0x99);
  mark (&R, R_SLOT, 9);
  mark (&R, P_SLOT, 9);
  want = r_byte (9);
  s = start (false);
  g_usleep (500000);
  g_assert_true (maps_test (R.maps, R_SLOT, 9));
  g_assert_cmpuint (r_byte (9), ==, want);
  g_assert_cmpuint (reads, ==, 0);
  /* P caught up (its bit goes): now it serves. */
  maps_clear (R.maps, 1u << P_SLOT, 9, 1);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  sync_close (s);
  teardown ();
}

/* Scenario 2: background sync stopped, a hand-over adds R's bit for
 * chunk 12 (maps_or_bits): a read of it waits for an on-demand fetch.
 */
static void
test_gate_with_sync_stopped (void)
{
  uint8_t bits[2] = {0};
  struct done_flag f;
  struct srv_sync *s;
  int r;

  setup ();
  fill (pdata, 12, 0xcc);
  s = start (true);
  bits[12 / 8] |= 1 << (12 % 8);
  g_assert_cmpint (maps_or_bits (R.maps, R_SLOT, 0, 16, bits, NULL), ==, 0);
  g_assert_true (sync_dirty_here (s, 12 * CS, 4096));
  flag_init (&f);
  f.sw.go = gate_done;
  r = sync_gate (s, &f.sw, 12 * CS + 4096, 4096, false);
  g_assert_cmpint (r, ==, 1);
  g_assert_cmpint (flag_wait (&f), ==, 0);
  g_assert_cmpuint (r_byte (12), ==, 0xcc);
  sync_close (s);
  teardown ();
}

/* A background fetch is refused by the peer ("a write to that range is
 * in flight here; try again") while a read now waits for the chunk: the
 * read must get the retries of an on-demand fetch, not EIO.  Before, the
 * background fetch gave up at once and failed the waiting read, so the
 * client failed the leg and reconnected it (test-leg-add-faults saw the
 * leg bounce).
 */
static void
test_refused_background_fetch (void)
{
  struct done_flag f;
  struct srv_sync *s;
  int r;

  setup ();
  fill (pdata, 5, 0x55);
  mark (&R, R_SLOT, 5);
  g_mutex_lock (&refuse_lock);
  refusals = 3;
  refusing = refusal_go = false;
  g_mutex_unlock (&refuse_lock);
  s = start (false);
  /* The background worker is in its first (refused) read of chunk 5. */
  g_mutex_lock (&refuse_lock);
  while (!refusing)
    g_cond_wait (&refuse_cond, &refuse_lock);
  g_mutex_unlock (&refuse_lock);
  flag_init (&f);
  f.sw.go = gate_done;
  r = sync_gate (s, &f.sw, 5 * CS, 4096, false);
  g_assert_cmpint (r, ==, 1);
  g_mutex_lock (&refuse_lock);
  refusal_go = true;
  g_cond_broadcast (&refuse_cond);
  g_mutex_unlock (&refuse_lock);
  g_assert_cmpint (flag_wait (&f), ==, 0);
  g_assert_cmpuint (r_byte (5), ==, 0x55);
  sync_close (s);
  teardown ();
}

/* The background waits for its pace (sync_rate 1 byte/s: the second
 * fetch would start in 18 hours) when a read starts waiting for that very
 * chunk: the read is served at once, not after the pace; and a close
 * while the background waits returns at once too.
 */
static void
test_paced_background_fetch (void)
{
  struct done_flag f;
  struct srv_sync *s;
  gint64 t;
  int r;

  setup ();
  fill (pdata, 3, 0x33);
  fill (pdata, 4, 0x44);
  fill (pdata, 6, 0x66);
  mark (&R, R_SLOT, 3);
  mark (&R, R_SLOT, 4);
  mark (&R, R_SLOT, 6);
  s = start_paced (false, 1);
  /* Chunk 3 goes at once (the bucket starts full), and is cleared. */
  t = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (maps_test (R.maps, R_SLOT, 3) && g_get_monotonic_time () < t)
    g_usleep (10000);
  g_assert_false (maps_test (R.maps, R_SLOT, 3));
  g_usleep (100000); /* the worker took chunk 4 and waits for the pace */
  g_mutex_lock (&hook_lock);
  g_assert_cmpuint (reads, ==, 1);
  g_mutex_unlock (&hook_lock);
  flag_init (&f);
  f.sw.go = gate_done;
  r = sync_gate (s, &f.sw, 4 * CS, 4096, false);
  g_assert_cmpint (r, ==, 1);
  g_assert_cmpint (flag_wait (&f), ==, 0);
  g_assert_cmpuint (r_byte (4), ==, 0x44);
  /* Chunk 6 is left to the background, which waits for the pace. */
  g_usleep (100000);
  g_assert_true (maps_test (R.maps, R_SLOT, 6));
  t = g_get_monotonic_time ();
  sync_close (s);
  g_assert_cmpint (g_get_monotonic_time () - t, <, 5 * G_TIME_SPAN_SECOND);
  teardown ();
}

/* The store goes away (pool_remove_store): the sync is stopped while IO
 * admitted before still holds it; a gate then fails that IO with EIO at
 * once (nobody would fetch its chunk), and the object stays valid until
 * the close.
 */
static void
test_gate_after_stop (void)
{
  struct done_flag f;
  struct srv_sync *s;

  setup ();
  fill (pdata, 7, 0x77);
  mark (&R, R_SLOT, 7);
  s = start (true);
  sync_stop (s);
  sync_stop (s); /* again: nothing more */
  flag_init (&f);
  f.sw.go = gate_done;
  g_assert_cmpint (sync_gate (s, &f.sw, 7 * CS, 4096, false), ==, 1);
  g_assert_cmpint (flag_wait (&f), ==, -EIO);
  g_assert_cmpuint (r_byte (7), !=, 0x77);
  sync_io_done (s, &f.sw, -EIO);
  sync_close (s);
  teardown ();
}

/* Scenario 7: P still holds bits for R that R no longer has (a clear P
 * never got): R takes them where P is current and drains them; where P
 * is behind itself (chunk 14), they are not taken.
 */
static void
test_reconcile (void)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 13, 0xdd);
  mark (&P, R_SLOT, 13);
  mark (&P, R_SLOT, 14);
  mark (&P, P_SLOT, 14);
  s = start (false);
  g_usleep (300000);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (13), ==, 0xdd);
  g_assert_false (maps_test (P.maps, R_SLOT, 13));
  g_assert_false (maps_test (R.maps, R_SLOT, 14));
  sync_close (s);
  teardown ();
}

/* A bit only P holds for R (an online verify on P found R's copy of
 * chunk 13 different) while a write R did to chunk 13 may still be on its
 * way to P: R must not take it (its fetch from P would overwrite that
 * write with P's older copy); once the chunk is quiet on R, a later
 * reconcile takes it and R ends with P's copy.
 */
static void
test_reconcile_not_quiet (void)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 13, 0xd1);
  mark (&P, R_SLOT, 13);
  g_mutex_lock (&hook_lock);
  unquiet = 13;
  g_mutex_unlock (&hook_lock);
  s = start (false);
  g_usleep (1000000);
  g_assert_false (maps_test (R.maps, R_SLOT, 13));
  g_assert_cmpuint (r_byte (13), !=, 0xd1);
  g_assert_true (maps_test (P.maps, R_SLOT, 13));
  g_mutex_lock (&hook_lock);
  unquiet = UINT64_MAX;
  g_mutex_unlock (&hook_lock);
  /* The next reconcile (RECONCILE_IDLE_MS) takes and drains it. */
  for (int i = 0; i < 150 && maps_test (P.maps, R_SLOT, 13); i++)
    g_usleep (100000);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (13), ==, 0xd1);
  g_assert_false (maps_test (P.maps, R_SLOT, 13));
  sync_close (s);
  teardown ();
}

/* RF=3, scenario 6: peer Q (tried first) is behind at chunk 9 and does
 * not know it (its own map is clean there); R knows (the hand-over gave
 * it P's map of Q's slot).  R must take chunk 9 from P, never from Q.
 */
static void
test_rf3_stale_source (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 9, 0x99); /* write B reached P only */
  fill (qdata, 9, 0x11); /* Q holds A */
  mark (&P, R_SLOT, 9);
  mark (&P, Q_SLOT, 9);
  mark (&R, R_SLOT, 9);
  mark (&R, Q_SLOT, 9);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  g_assert_false (maps_test (P.maps, R_SLOT, 9));
  /* What R knows of Q stays for Q's own resync. */
  g_assert_true (maps_test (P.maps, Q_SLOT, 9));
  sync_close (s);
  teardown ();
}

/* RF=3, a stale source through a session that changed: R decided on P
 * (peer index 1, current at chunk 9) from its watch, and before the read
 * index 1's session leads to Q (re-pointed by add_sess, or the index
 * freed and taken again), which is behind there and does not know it.
 * The read expects the member that watched: Q's answer is refused, the
 * chunk stays dirty, never Q's data; once index 1 leads to P again, P's.
 */
static unsigned repoints;

static void
repoint_1_to_q (void)
{
  if (via[1] == 1 && repoints++ == 0)
    via[1] = 0;
}

static void
test_rf3_repointed_source (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 9, 0x99);
  fill (qdata, 9, 0x11);
  mark (&P, Q_SLOT, 9);
  mark (&R, R_SLOT, 9);
  mark (&R, Q_SLOT, 9);
  repoints = 0;
  before_read = repoint_1_to_q;
  s = start (false);
  g_usleep (500000);
  g_assert_cmpuint (repoints, >=, 1);
  g_assert_true (maps_test (R.maps, R_SLOT, 9));
  g_assert_cmpuint (r_byte (9), !=, 0x11);
  g_assert_cmpuint (reads, ==, 0);
  g_mutex_lock (&hook_lock);
  via[1] = 1;
  g_mutex_unlock (&hook_lock);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (9), ==, 0x99);
  sync_close (s);
  teardown ();
}

/* The resync's flush of R's store fails: the chunk stays dirty (fetched
 * again, cleared after a flush that worked), and R's recent-write record
 * turns suspect, durably: writes acknowledged here before that flush may
 * be gone although later flushes work (the kernel reports a writeback
 * error once), as after a client's failed flush.
 */
static void
test_flush_fails (void)
{
  struct srv_sync *s;
  struct al_info info = {0};

  setup ();
  fill (pdata, 7, 0x77);
  mark (&R, R_SLOT, 7);
  mark (&P, R_SLOT, 7);
  atomic_store (&failed_flushes, 0);
  atomic_store (&fail_flushes, 1);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (atomic_load (&failed_flushes), ==, 1);
  g_assert_cmpuint (reads, >=, 2);
  g_assert_cmpuint (r_byte (7), ==, 0x77);
  g_assert_false (maps_test (P.maps, R_SLOT, 7));
  al_info (maps_al (R.maps), &info);
  g_assert_false (info.clean);
  if (info.extents)
    g_array_unref (info.extents);
  sync_close (s);
  /* Durably: the record read again says so. */
  maps_close (R.maps);
  g_assert_cmpint (
    maps_open (R.st, false, AL_DEFAULT_SHIFT, AL_DEFAULT_EXTENTS, &R.maps), ==,
    0);
  al_info (maps_al (R.maps), &info);
  g_assert_false (info.clean);
  if (info.extents)
    g_array_unref (info.extents);
  teardown ();
}

/* RF=3, scenario 3 on the peer that was not the source: R fetched chunk 5
 * from Q; a write R misses lands on P and Q right after.  P's and Q's
 * watches are flagged: R keeps the bit and fetches again.
 */
static void
redirty_5_both (uint64_t c)
{
  if (c != 5 || reads > 1)
    return;
  fill (pdata, 5, 0x77);
  fill (qdata, 5, 0x77);
  g_mutex_unlock (&hook_lock); /* mark () waits for the flushers */
  mark (&P, R_SLOT, 5);
  mark (&Q, R_SLOT, 5);
  g_mutex_lock (&hook_lock);
}

static void
test_rf3_redirty (void)
{
  struct srv_sync *s;

  setup_rf (3);
  fill (pdata, 5, 0x55);
  fill (qdata, 5, 0x55);
  mark (&P, R_SLOT, 5);
  mark (&Q, R_SLOT, 5);
  mark (&R, R_SLOT, 5);
  after_read = redirty_5_both;
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (reads, >=, 2);
  g_assert_cmpuint (r_byte (5), ==, 0x77);
  g_assert_false (maps_test (P.maps, R_SLOT, 5));
  g_assert_false (maps_test (Q.maps, R_SLOT, 5));
  sync_close (s);
  teardown ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A failed fetch is logged as a warning: expected here. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_ERROR);
  g_test_add_func ("/sync-watch/plain", test_plain);
  g_test_add_func ("/sync-watch/redirty-after-fetch", test_redirty_after_fetch);
  g_test_add_func ("/sync-watch/redirty-after-claim", test_redirty_after_claim);
  g_test_add_func ("/sync-watch/stale-source", test_stale_source);
  g_test_add_func ("/sync-watch/gate-with-sync-stopped",
                   test_gate_with_sync_stopped);
  g_test_add_func ("/sync-watch/reconcile", test_reconcile);
  g_test_add_func ("/sync-watch/reconcile-not-quiet", test_reconcile_not_quiet);
  g_test_add_func ("/sync-watch/gate-after-stop", test_gate_after_stop);
  g_test_add_func ("/sync-watch/paced-background-fetch",
                   test_paced_background_fetch);
  g_test_add_func ("/sync-watch/refused-background-fetch",
                   test_refused_background_fetch);
  g_test_add_func ("/sync-watch/flush-fails", test_flush_fails);
  g_test_add_func ("/sync-watch/rf3/stale-source", test_rf3_stale_source);
  g_test_add_func ("/sync-watch/rf3/redirty", test_rf3_redirty);
  g_test_add_func ("/sync-watch/rf3/repointed-source",
                   test_rf3_repointed_source);
  return g_test_run ();
}
