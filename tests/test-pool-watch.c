/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deterministic unit test of a peer's side of a watched clear
 * (rmr-storaged/pool-io.c pool_watch with the real map.c): a watch that
 * a resyncing member R starts here begins flagged over a client write in
 * flight here, so the clear that follows keeps R's bit.
 *
 * The interleaving it pins (RF=3: R resyncs, P and Q are its peers, the
 * client counts R failed): a client write W to chunk c reaches Q first;
 * Q marks c dirty for R and is still writing.  R watches c at P and Q,
 * its read is refused by Q (W in flight there) and served by P, which
 * has not got W yet.  If W then never reaches P (P dies, or fails it),
 * Q holds the only copy, and a clean watch at Q would let R's clear drop
 * the only record that R lacks W: R would serve the old data as current.
 * Begun flagged, Q's watch keeps the bit and R fetches c again.
 *
 * Also: a write that marks after the watch began flags it (maps_mark); a
 * write outside the watched chunks, or one R gets too (a whole-chunk
 * write claiming the chunk on R), flags nothing; with no write in flight
 * every watched bit is cleared; the watch names the other members behind
 * at those chunks here, by the maps or by a write in flight, so that
 * none of them serves R; a member where a sync of the store failed
 * serves no resync read until it is handed over again.
 */
#undef NDEBUG

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "internal.h"
#include "test-map-mark.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (4 * MiB)
#define CS (64 * 1024)
#define R_SLOT 0

/* What pool-io.c needs besides the maps: not reached by these tests. */
const char *
pool_state_name (enum rmr_srv_pool_state s)
{
  return "?";
}

bool
sync_dirty_here (struct srv_sync *s, uint64_t offset, uint32_t len)
{
  return false;
}

void
sync_kick (struct srv_sync *s)
{
}

static struct tmp tmp;
static struct store *st;
static struct srv_maps *maps;
static struct srv_pool pool = {.name = "p"};
static uint32_t behind; /* pool_watch's */

/* Mark chunks [first, first + n) of R's slot, durably. */
static void
mark (uint64_t first, uint64_t n)
{
  map_mark (maps, 1u << R_SLOT, first, n);
}

/* A client write of [off, off + len) in flight here (pool_io_begin's
 * list), until write_done; missed: the slots that miss it.
 */
static void
write_begin (struct io_ctx *w, uint64_t off, uint64_t len, uint32_t missed)
{
  memset (w, 0, sizeof *w);
  w->wstart = off;
  w->wend = off + len;
  w->wmask = missed;
  g_mutex_lock (&pool.lock);
  w->wnext = pool.wlist;
  if (pool.wlist)
    pool.wlist->wprev = w;
  pool.wlist = w;
  g_mutex_unlock (&pool.lock);
}

static void
write_done (struct io_ctx *w)
{
  g_mutex_lock (&pool.lock);
  if (w->wprev)
    w->wprev->wnext = w->wnext;
  else
    pool.wlist = w->wnext;
  if (w->wnext)
    w->wnext->wprev = w->wprev;
  g_mutex_unlock (&pool.lock);
}

static void
setup (void)
{
  unsigned s;

  tmp_init (&tmp, "/tmp");
  g_assert_cmpint (store_create (tmp.path, "p", 3, MAPPED, false, &st), ==, 0);
  st->sb.chunk_size = CS;
  for (s = 0; s < RMR_MAX_MEMBERS; s++)
    st->sb.members[s].member_id = RMR_MEMBER_NONE;
  st->sb.members[R_SLOT].member_id = 1;
  st->sb.members[1].member_id = 2;
  st->sb.members[2].member_id = 3;
  g_assert_cmpint (
    maps_open (st, true, AL_DEFAULT_SHIFT, AL_DEFAULT_EXTENTS, &maps), ==, 0);
  pool.maps = maps;
  pool.al_extents = AL_DEFAULT_EXTENTS;
  pool.wlist = NULL;
}

static void
teardown (void)
{
  g_assert_null (pool.wlist);
  maps_close (maps);
  store_close (st);
  tmp_fini (&tmp);
}

/* The watched clear of chunks [first, first + 8): what it keeps. */
static uint8_t
clear_8 (uint64_t first)
{
  uint8_t kept = 0;

  maps_clear_watched (maps, R_SLOT, first, 8, &kept);
  return kept;
}

static void
test_write_in_flight (void)
{
  struct io_ctx w1, w2;

  setup ();
  mark (0, 8);
  /* W marked chunk 3 for R (the bit is set) and is still being written;
   * another write spans chunks 5 and 6.
   */
  write_begin (&w1, 3 * CS + 512, 4096, 1u << R_SLOT);
  write_begin (&w2, 5 * CS + CS / 2, CS, 1u << R_SLOT | 1u << 2);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 8, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 1u << 2); /* w2 misses slot 2 too */
  write_done (&w1);
  write_done (&w2);
  g_assert_cmphex (clear_8 (0), ==, 1u << 3 | 1u << 5 | 1u << 6);
  g_assert_true (maps_test (maps, R_SLOT, 3));
  g_assert_true (maps_test (maps, R_SLOT, 5));
  g_assert_true (maps_test (maps, R_SLOT, 6));
  g_assert_false (maps_test (maps, R_SLOT, 4));
  g_assert_cmpuint (maps_count (maps, R_SLOT), ==, 3);
  /* R fetches them again once the writes are done: now cleared. */
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 8, &behind), ==, 0);
  g_assert_cmphex (clear_8 (0), ==, 0);
  g_assert_cmpuint (maps_count (maps, R_SLOT), ==, 0);
  teardown ();
}

static void
test_write_after_watch (void)
{
  setup ();
  mark (8, 8);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 8, 8, &behind), ==, 0);
  mark (10, 1); /* a write R missed lands after the watch began */
  g_assert_cmphex (clear_8 (8), ==, 1u << 2);
  g_assert_true (maps_test (maps, R_SLOT, 10));
  teardown ();
}

static void
test_write_elsewhere (void)
{
  struct io_ctx w;

  setup ();
  mark (16, 8);
  /* In flight on chunk 3 and on the chunk right after the range. */
  write_begin (&w, 3 * CS, 2 * CS, 1u << R_SLOT);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 16, 8, &behind), ==, 0);
  write_done (&w);
  write_begin (&w, 24 * CS, 4096, 1u << R_SLOT);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 16, 8, &behind), ==, 0);
  write_done (&w);
  g_assert_cmphex (clear_8 (16), ==, 0);
  g_assert_cmpuint (maps_count (maps, R_SLOT), ==, 0);
  teardown ();
}

/* A write R gets too (a whole-chunk write that claims the chunk on R, or
 * any write while R is normal) does not make R behind: it flags nothing.
 * One that only another member misses neither.
 */
static void
test_write_r_gets_too (void)
{
  struct io_ctx w1, w2;

  setup ();
  mark (0, 8);
  write_begin (&w1, 2 * CS, CS, 0);
  write_begin (&w2, 4 * CS, CS, 1u << 2);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 8, &behind), ==, 0);
  write_done (&w1);
  write_done (&w2);
  g_assert_cmphex (clear_8 (0), ==, 0);
  teardown ();
}

/* The other slots behind at the watched chunks here: by the maps (two
 * members missed the same write, and the other does not know), or by a
 * client write in flight that misses them.  Not those behind elsewhere.
 */
static void
test_behind (void)
{
  struct io_ctx w;

  setup ();
  mark (0, 8);
  map_mark (maps, 1u << 2, 4, 1);
  map_mark (maps, 1u << 3, 12, 1);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 4, 1, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 1u << 2);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 4, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 0);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 16, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 1u << 2 | 1u << 3);
  /* Where this member is behind itself, its record of others may be
   * stale (a write that failed here after marking): not reported.
   */
  pool.my_slot = 2;
  map_mark (maps, 1u << 2, 12, 1);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 12, 1, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 0);
  pool.my_slot = 0;
  write_begin (&w, 6 * CS, 4096, 1u << R_SLOT | 1u << 5);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 6, 1, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 1u << 5);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 7, 1, &behind), ==, 0);
  g_assert_cmphex (behind, ==, 0);
  write_done (&w);
  teardown ();
}

/* A peer's resync read of this member (a sync session's read): served
 * while nothing failed here; refused once a sync of the store failed,
 * wherever (a client's flush, the map flusher): writes acknowledged here
 * may be gone, and the peer would take them as current.  Until the
 * client hands this member over again (an enable: flush_errors_seen).
 */
/* A read of a peer's sync session (sync), or of the enabled client. */
static int
read_as (bool sync, GString *err)
{
  struct srv_psess ps = {.pool = &pool, .sync = sync, .enabled = !sync};
  struct rmr_hdr h = {.type = RMR_MSG_READ, .generation = 1, .length = 4096};
  struct io_ctx io = {0};
  int r;

  g_string_truncate (err, 0);
  r = pool_io_begin (&ps, &h, &io, err);
  if (r == 0)
    pool_io_end (&pool, &io, false);
  return r;
}

static void
test_failed_flush_no_source (void)
{
  g_autoptr (GString) err = g_string_new (NULL);

  setup ();
  pool.state = RMR_POOL_NORMAL;
  pool.generation = 1;
  pool.store = st;
  pool.my_slot = 2;
  pool.flush_errors_seen = store_flush_errors (st);
  g_assert_cmpint (read_as (true, err), ==, 0);
  g_assert_cmpint (read_as (false, err), ==, 0);
  store_flush_failed (st);
  g_assert_cmpint (read_as (true, err), ==, -EAGAIN);
  g_assert_nonnull (strstr (err->str, "flush fail"));
  /* Nor does the client read or write here (it may not know: a map save
   * or the resync's flush failed): it fails the leg and hands it over.
   */
  g_assert_cmpint (read_as (false, err), ==, -EIO);
  g_assert_nonnull (strstr (err->str, "may be lost"));
  pool.flush_errors_seen = store_flush_errors (st); /* handed over */
  g_assert_cmpint (read_as (true, err), ==, 0);
  g_assert_cmpint (read_as (false, err), ==, 0);
  pool.store = NULL;
  teardown ();
}

/* The quiet rule of a chunk fetched again (sync-flush.c): a client write
 * in flight to it here makes it not quiet, but not one parked at the
 * resync's gate, which waits for that very fetch.
 */
static void
test_quiet_parked (void)
{
  atomic_bool parked = false;
  struct io_ctx w;

  setup ();
  g_assert_true (pool_quiet (&pool, 3 * CS, CS));
  write_begin (&w, 3 * CS + 512, 4096, 0);
  w.parked = &parked;
  g_assert_false (pool_quiet (&pool, 3 * CS, CS));
  g_assert_true (pool_quiet (&pool, 4 * CS, CS));
  atomic_store (&parked, true);
  g_assert_true (pool_quiet (&pool, 3 * CS, CS));
  write_done (&w);
  teardown ();
}

/* Without a record (al_extents=0) nothing tells when a write done here
 * is on every leg: no chunk is quiet, and the reconcile takes no bit (a
 * fetch then could overwrite a write still on its way to the source).
 */
static void
test_no_record_never_quiet (void)
{
  uint8_t bits[1] = {0x18};

  setup ();
  pool.al_extents = 0;
  g_assert_false (pool_quiet (&pool, 3 * CS, CS));
  pool_take_quiet (&pool, maps, R_SLOT, 0, 8, bits);
  g_assert_cmphex (bits[0], ==, 0);
  g_assert_false (maps_any (maps, R_SLOT, 0, 8));
  pool.al_extents = AL_DEFAULT_EXTENTS;
  bits[0] = 0x18;
  pool_take_quiet (&pool, maps, R_SLOT, 0, 8, bits);
  g_assert_cmphex (bits[0], ==, 0x18);
  g_assert_true (maps_any (maps, R_SLOT, 3, 1));
  teardown ();
}

static void
test_bad_range (void)
{
  setup ();
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, MAPPED / CS, 1, &behind),
                   ==, -EINVAL);
  g_assert_cmpint (
    pool_watch (&pool, maps, R_SLOT, 0, MAPPED / CS + 1, &behind), ==, -EINVAL);
  g_assert_cmpint (pool_watch (&pool, maps, R_SLOT, 0, 0, &behind), ==,
                   -EINVAL);
  teardown ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pool-watch/write-in-flight", test_write_in_flight);
  g_test_add_func ("/pool-watch/write-after-watch", test_write_after_watch);
  g_test_add_func ("/pool-watch/write-elsewhere", test_write_elsewhere);
  g_test_add_func ("/pool-watch/write-r-gets-too", test_write_r_gets_too);
  g_test_add_func ("/pool-watch/behind", test_behind);
  g_test_add_func ("/pool-watch/failed-flush-no-source",
                   test_failed_flush_no_source);
  g_test_add_func ("/pool-watch/quiet-parked", test_quiet_parked);
  g_test_add_func ("/pool-watch/no-record-never-quiet",
                   test_no_record_never_quiet);
  g_test_add_func ("/pool-watch/bad-range", test_bad_range);
  return g_test_run ();
}
