/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deterministic unit test of the resync rules at RF=2 (rmr-storaged/
 * sync.c with the real map.c and store layer) against the fake peer of
 * test-sync-fake.c.  Member R resyncs from peer P:
 *   - plain: what P records for R is fetched, and cleared on both;
 *   - re-dirty (issue 8, scenario 3): a write R missed marks P right after
 *     R fetched (or a whole-chunk write claimed) the chunk: the watched
 *     clear keeps the bit on P and R, R fetches again, ends with it; but
 *     only once the chunk is quiet on R (a write R did there since the
 *     first fetch may still be on its way to P);
 *   - stale source (scenario 6): a peer R knows to be behind there never
 *     serves the chunk;
 *   - gate with the background sync stopped (scenario 2): bits a
 *     hand-over adds are fetched on demand before a read goes on;
 *   - reconcile (scenario 7): bits only P still holds for R are taken and
 *     drained, unless P is itself behind there; and not while the chunk
 *     is not quiet on R (a write R did may still be on its way to P);
 *   - a whole-chunk write while P is unreachable is no claim: it fails
 *     as a partial one does (a claim would leave P's record of R);
 *   - a background fetch refused ("write in flight, try again") while a
 *     read starts waiting for it: the read gets the on-demand retries;
 *   - a background fetch waiting for its pace while a read starts waiting
 *     for it: it goes at once, and a close does not wait for the pace;
 *   - a gate after the sync was stopped (the store is going away) fails
 *     the IO with EIO at once;
 *   - the resync's flush of the store fails: the chunk stays dirty and the
 *     recent-write record turns suspect, durably; the same when another
 *     sync of the store failed since the chunk was written (the writeback
 *     error went there);
 *   - zero chunks: a chunk P reads as zeroes comes without payload, and
 *     R writes nothing where its store has a hole (it stays sparse),
 *     zeroes where it holds older data.
 * RF=3: test-sync-watch-rf3.c.
 */
#undef NDEBUG

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "fdio.h"
#include "test-sync-fake.h"

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

/* The clear of chunk 8 is kept (a write R missed marks P right after the
 * fetch), and meanwhile R took a client write to chunk 8 that may still
 * be on its way to P (the chunk is not quiet on R).  The second fetch
 * waits until the chunk is quiet: before, P could serve the chunk without
 * R's write, and the fetch would overwrite an acknowledged write on R.
 */
/* The sync status of s holds want. */
static void
assert_status (struct srv_sync *s, const char *want)
{
  g_autoptr (GString) out = g_string_new (NULL);

  sync_status (s, out);
  if (!strstr (out->str, want))
    g_error ("sync status lacks '%s':\n%s", want, out->str);
}

static void
redirty_8_unquiet (uint64_t c)
{
  if (c != 8 || reads > 1)
    return;
  fill (pdata, 8, 0x88);
  unquiet = 8; /* hook_lock held */
  mark (&P, R_SLOT, 8);
}

static void
test_refetch_waits_for_quiet (void)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 8, 0x80);
  mark (&P, R_SLOT, 8);
  mark (&R, R_SLOT, 8);
  after_read = redirty_8_unquiet;
  s = start (false);
  g_usleep (1500000);
  assert_status (s, "kept_until_quiet: 1 ");
  g_mutex_lock (&hook_lock);
  g_assert_cmpuint (reads, ==, 1);
  unquiet = UINT64_MAX;
  g_mutex_unlock (&hook_lock);
  g_assert_true (maps_test (R.maps, R_SLOT, 8));
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (reads, ==, 2);
  g_assert_cmpuint (r_byte (8), ==, 0x88);
  g_assert_false (maps_test (P.maps, R_SLOT, 8));
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

  setup ();
  mark (&P, R_SLOT, 6);
  mark (&R, R_SLOT, 6);
  s = start (true); /* background stopped: only the claim works */
  g_assert_cmpint (gate_wait (s, &f, 6 * CS, CS, true), ==, 0);
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

/* A whole-chunk write while P is unreachable: no claim.  Claimed, R's bit
 * would go while P (which did not watch) keeps its record of R there;
 * the write would be on R alone, and an assemble's union of the maps
 * would give R its bit back: dirty on both, the write readable nowhere.
 * So it is a fetch, which has no source: the write fails as a partial
 * one does, and both bits stay.  With P back, the write claims it.
 */
static void
test_claim_needs_every_watcher (void)
{
  struct done_flag f;
  struct srv_sync *s;

  setup ();
  mark (&P, R_SLOT, 6);
  mark (&R, R_SLOT, 6);
  away = 1u << 0;
  s = start (true);
  g_assert_cmpint (gate_wait (s, &f, 6 * CS, CS, true), ==, -EIO);
  g_assert_cmpuint (f.sw.claimed, ==, 0);
  g_assert_cmpuint (reads, ==, 0);
  g_assert_true (maps_test (R.maps, R_SLOT, 6));
  g_assert_true (maps_test (P.maps, R_SLOT, 6));

  away = 0;
  g_assert_cmpint (gate_wait (s, &f, 6 * CS, CS, true), ==, 0);
  g_assert_cmpuint (f.sw.claimed, ==, 1);
  g_assert_cmpuint (reads, ==, 0);
  sync_io_done (s, &f.sw, 0);
  sync_command (s, true);
  g_assert_true (wait_clean (s, 10));
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

/* A background paced at 1 byte/s over chunks 3, 4 (and 6 if with6),
 * filled from P: chunk 3 goes at once (the bucket starts full) and is
 * cleared, then the worker takes chunk 4 and waits for the pace (the
 * next fetch would start in 18 hours).
 */
static struct srv_sync *
start_paced_waiting (bool with6)
{
  struct srv_sync *s;
  gint64 t;

  fill (pdata, 3, 0x33);
  fill (pdata, 4, 0x44);
  mark (&R, R_SLOT, 3);
  mark (&R, R_SLOT, 4);
  if (with6) {
    fill (pdata, 6, 0x66);
    mark (&R, R_SLOT, 6);
  }
  s = start_paced (false, 1);
  t = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (maps_test (R.maps, R_SLOT, 3) && g_get_monotonic_time () < t)
    g_usleep (10000);
  g_assert_false (maps_test (R.maps, R_SLOT, 3));
  g_usleep (100000);
  return s;
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
  s = start_paced_waiting (true);
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

/* The rate changes while the background waits for its pace (sync_rate 1
 * byte/s: the next fetch would start in 18 hours): a config reload lifts
 * the limit (sync_set_rate), and the waiting worker takes the pace again
 * at the new rate and goes at once; the debt of the old rate is gone.
 */
static void
test_paced_rate_change (void)
{
  struct srv_sync *s;

  setup ();
  s = start_paced_waiting (false);
  g_assert_true (maps_test (R.maps, R_SLOT, 4));
  /* The status says what the resync waits for. */
  assert_status (s, "in_hand: 1 (oldest: chunk 4, fetching: waiting for "
                    "the pace, for ");
  assert_status (s, "last_chunk_synced: ");
  sync_set_rate (s, 0, 0);
  g_assert_true (wait_clean (s, 5));
  g_assert_cmpuint (r_byte (4), ==, 0x44);
  sync_close (s);
  teardown ();
}

/* Every worker waits for the pace (1 byte/s, two workers) right after
 * the first chunk was synced, within FLUSH_MS of the sync's start: that
 * chunk is still made durable and cleared within a flush's delay, not
 * after the pace (18 hours).
 */
static void
test_paced_flush_while_waiting (void)
{
  struct srv_sync *s;
  gint64 t;

  setup ();
  fill (pdata, 3, 0x33);
  fill (pdata, 4, 0x44);
  fill (pdata, 6, 0x66);
  mark (&R, R_SLOT, 3);
  mark (&R, R_SLOT, 4);
  mark (&R, R_SLOT, 6);
  s = start_parallel (false, 1, 2);
  t = g_get_monotonic_time () + 5 * G_TIME_SPAN_SECOND;
  while (maps_count (R.maps, R_SLOT) > 2 && g_get_monotonic_time () < t)
    g_usleep (10000);
  g_assert_cmpuint (maps_count (R.maps, R_SLOT), ==, 2);
  assert_status (s, "fetching: waiting for the pace");
  sync_close (s);
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

/* R's record says writes may be lost (suspect). */
static void
assert_record_suspect (void)
{
  struct al_info info = {0};

  al_info (maps_al (R.maps), &info);
  g_assert_false (info.clean);
  if (info.extents)
    g_array_unref (info.extents);
}

/* Chunk 7 is resynced with one flush fault set (*fault = 1): the fault
 * is used up, the chunk stays dirty through it and is fetched again,
 * and ends current and clean.  Returns the sync, still open.
 */
static struct srv_sync *
resync_through (atomic_uint *fault)
{
  struct srv_sync *s;

  setup ();
  fill (pdata, 7, 0x77);
  mark (&R, R_SLOT, 7);
  mark (&P, R_SLOT, 7);
  atomic_store (fault, 1);
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (atomic_load (fault), ==, 0);
  g_assert_cmpuint (reads, >=, 2);
  g_assert_cmpuint (r_byte (7), ==, 0x77);
  g_assert_false (maps_test (P.maps, R_SLOT, 7));
  return s;
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

  atomic_store (&failed_flushes, 0);
  s = resync_through (&fail_flushes);
  g_assert_cmpuint (atomic_load (&failed_flushes), ==, 1);
  assert_record_suspect ();
  sync_close (s);
  /* Durably: the record read again says so. */
  maps_close (R.maps);
  g_assert_cmpint (
    maps_open (R.st, false, AL_DEFAULT_SHIFT, AL_DEFAULT_EXTENTS, &R.maps), ==,
    0);
  assert_record_suspect ();
  teardown ();
}

/* Another sync of R's store fails after the fetched chunk was written
 * (a client's flush, the map flusher took the writeback error); the
 * resync's own flush then succeeds, and says nothing of that write.  The
 * chunk stays dirty and is fetched again; the record turns suspect.
 */
static void
test_flush_fails_elsewhere (void)
{
  struct srv_sync *s = resync_through (&fail_elsewhere);

  assert_record_suspect ();
  sync_close (s);
  teardown ();
}

/* The same when that other sync was still in flight as the resync's own
 * flush returned, and counts its failure only later: the resync waits for
 * it before it decides.
 */
static void
test_flush_fails_late (void)
{
  struct srv_sync *s = resync_through (&fail_late);

  sync_close (s);
  teardown ();
}

/* Whether R's store holds no data block in chunk c (a hole). */
static bool
r_hole (uint64_t c)
{
  off_t at = (off_t) (R.st->data_offset + c * CS);
  off_t d = lseek (R.st->fd, at, SEEK_DATA);

  return (d < 0 && errno == ENXIO) || (d >= 0 && d >= at + CS);
}

static void
test_zero_chunks (void)
{
  g_autoptr (GString) st = g_string_new (NULL);
  g_autofree uint8_t *old = g_malloc (CS);
  uint64_t zeroed = atomic_load (&fake_pool.m.resync_zero_chunks);
  struct srv_sync *s;

  setup ();
  /* Chunk 2: zeroes on P, older data on R; chunk 4: zeroes on P, a hole
   * on R; chunk 6: data on P.
   */
  memset (old, 0x55, CS);
  g_assert_cmpint (
    rmr_pwrite_full (R.st->fd, old, CS, R.st->data_offset + 2 * CS, 0), ==, 0);
  g_assert_true (r_hole (4));
  fill (pdata, 6, 0x66);
  for (uint64_t c = 2; c <= 6; c += 2) {
    mark (&P, R_SLOT, c);
    mark (&R, R_SLOT, c);
  }
  s = start (false);
  g_assert_true (wait_clean (s, 10));
  g_assert_cmpuint (r_byte (2), ==, 0);
  g_assert_cmpuint (r_byte (4), ==, 0);
  g_assert_true (r_hole (4));
  g_assert_cmpuint (r_byte (6), ==, 0x66);
  sync_status (s, st);
  g_assert_nonnull (strstr (st->str, "zero_chunks: 2\n"));
  g_assert_cmpuint (atomic_load (&fake_pool.m.resync_zero_chunks) - zeroed, ==,
                    2);
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
  g_test_add_func ("/sync-watch/claim-needs-every-watcher",
                   test_claim_needs_every_watcher);
  g_test_add_func ("/sync-watch/refetch-waits-for-quiet",
                   test_refetch_waits_for_quiet);
  g_test_add_func ("/sync-watch/stale-source", test_stale_source);
  g_test_add_func ("/sync-watch/gate-with-sync-stopped",
                   test_gate_with_sync_stopped);
  g_test_add_func ("/sync-watch/reconcile", test_reconcile);
  g_test_add_func ("/sync-watch/reconcile-not-quiet", test_reconcile_not_quiet);
  g_test_add_func ("/sync-watch/gate-after-stop", test_gate_after_stop);
  g_test_add_func ("/sync-watch/paced-rate-change", test_paced_rate_change);
  g_test_add_func ("/sync-watch/paced-flush-while-waiting",
                   test_paced_flush_while_waiting);
  g_test_add_func ("/sync-watch/paced-background-fetch",
                   test_paced_background_fetch);
  g_test_add_func ("/sync-watch/refused-background-fetch",
                   test_refused_background_fetch);
  g_test_add_func ("/sync-watch/flush-fails", test_flush_fails);
  g_test_add_func ("/sync-watch/flush-fails-elsewhere",
                   test_flush_fails_elsewhere);
  g_test_add_func ("/sync-watch/flush-fails-late", test_flush_fails_late);
  g_test_add_func ("/sync-watch/zero-chunks", test_zero_chunks);
  return g_test_run ();
}
