/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the store layer of rmr-storaged (store.c, store-io.c,
 * store-file.c, store-thread.c) on real files: a file in /tmp (O_DIRECT, with RMW for
 * what is not aligned), the same without O_DIRECT, one in /dev/shm
 * (tmpfs: buffered, no fallocate ZERO_RANGE), the thread fallback
 * backend (also with io_uring refused by seccomp), and a loop device when
 * run as root.
 *
 * Each IO battery checks data end to end: what a read returns and what
 * the underlying file holds at data_offset (pread on a separate fd),
 * with aligned and unaligned offsets, lengths and buffers, many IOs in
 * flight from several threads, FUA, flush, trim, zero (with and without
 * MAY_TRIM and FAST_ZERO).  Creating and opening stores is
 * test-store-open.c's.
 *
 * Regression: the concurrent battery on a loop device read stale data
 * about once in a hundred runs while aligned IO went O_DIRECT through
 * io_uring and unaligned IO buffered: the kernel does not invalidate the
 * page cache after an asynchronous O_DIRECT write to a block device, so
 * folios read in meanwhile (readahead, large folios) stayed stale.  The
 * store no longer mixes the two (store-io.c).  A race: the loop case
 * runs LOOP_ROUNDS rounds, which catch the old mixing code in about one
 * run in fifteen (and stayed clean over hundreds of runs of the new);
 * test-store-steps pins the rule itself deterministically (no buffered
 * step while dfd is open).
 */
#undef NDEBUG

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "error.h"
#include "internal.h"
#include "test-assert.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)

/* Synchronous IO over the asynchronous interface. */

struct waiter {
  GMutex lock;
  GCond cond;
  int pending;
};

struct tio {
  struct store_io io;
  struct waiter *w;
  int res;
};

static void
tio_done (struct store_io *io, int res)
{
  struct tio *t = io->opaque;

  t->res = res;
  g_mutex_lock (&t->w->lock);
  t->w->pending--;
  g_cond_broadcast (&t->w->cond);
  g_mutex_unlock (&t->w->lock);
}

/* Submit; on a submit error res is set and nothing is pending. */
static void
tio_submit (struct store *st, struct waiter *w, struct tio *t, enum store_op op,
            unsigned flags, void *buf, uint64_t off, uint32_t len)
{
  int r;

  memset (t, 0, sizeof *t);
  t->io.op = op;
  t->io.flags = flags;
  t->io.buf = buf;
  t->io.offset = off;
  t->io.len = len;
  t->io.done = tio_done;
  t->io.opaque = t;
  t->w = w;
  g_mutex_lock (&w->lock);
  w->pending++;
  g_mutex_unlock (&w->lock);
  r = store_submit (st, &t->io);
  if (r < 0) {
    t->res = r;
    g_mutex_lock (&w->lock);
    w->pending--;
    g_mutex_unlock (&w->lock);
  }
}

static void
wait_all (struct waiter *w)
{
  g_mutex_lock (&w->lock);
  while (w->pending > 0)
    g_cond_wait (&w->cond, &w->lock);
  g_mutex_unlock (&w->lock);
}

static int
do_io (struct store *st, enum store_op op, unsigned flags, void *buf,
       uint64_t off, uint32_t len)
{
  struct waiter w = {0};
  struct tio t;

  g_mutex_init (&w.lock);
  g_cond_init (&w.cond);
  tio_submit (st, &w, &t, op, flags, buf, off, len);
  wait_all (&w);
  g_cond_clear (&w.cond);
  g_mutex_clear (&w.lock);
  return t.res;
}

/* Deterministic contents: byte i of a fill with seed s. */
static void
fill (uint8_t *p, size_t len, uint32_t seed)
{
  uint32_t x = seed * 2654435761u + 1;
  size_t i;

  for (i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = x;
  }
}

static bool
all_zero (const uint8_t *p, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++)
    if (p[i])
      return false;
  return true;
}

/* The test's own view of the store: a shadow of the data area, and a raw
 * fd on the underlying file (for a loop device: its backing file, read
 * after a FLUSH).
 */
struct env {
  struct store *st;
  uint8_t *shadow; /* the first SHADOW bytes of the data area */
  int raw;
  unsigned rounds; /* of the concurrent battery */
};
#define SHADOW (16 * MiB)

static void
check_range (struct env *e, uint64_t off, uint32_t len)
{
  g_autofree uint8_t *raw = g_malloc (len);
  uint8_t *buf = store_buf_alloc (len);
  ssize_t r;

  g_assert_nonnull (buf);
  g_assert_cmpint (do_io (e->st, STORE_READ, 0, buf, off, len), ==, 0);
  g_assert_true (memcmp (buf, e->shadow + off, len) == 0);
  g_assert_cmpint (do_io (e->st, STORE_FLUSH, 0, NULL, 0, 0), ==, 0);
  r = pread (e->raw, raw, len, e->st->data_offset + off);
  g_assert_cmpint (r, ==, len);
  g_assert_true (memcmp (raw, e->shadow + off, len) == 0);
  store_buf_free (buf);
}

static void
write_shadow (struct env *e, unsigned flags, uint64_t off, uint32_t len,
              uint32_t seed, size_t buf_skew)
{
  uint8_t *buf = store_buf_alloc (len + buf_skew);

  g_assert_nonnull (buf);
  fill (buf + buf_skew, len, seed);
  g_assert_cmpint (do_io (e->st, STORE_WRITE, flags, buf + buf_skew, off, len),
                   ==, 0);
  memcpy (e->shadow + off, buf + buf_skew, len);
  store_buf_free (buf);
}

/* Round trips, aligned and not. */
static void
battery_rw (struct env *e)
{
  static const struct {
    uint64_t off;
    uint32_t len;
    size_t skew;
  } cases[] = {
    {0, 4096, 0},
    {8192, 65536, 0},
    {1 * MiB, 1 * MiB, 0},
    {512, 512, 0}, /* sector aligned, not page aligned */
    {1, 3, 0},
    {4095, 4097, 0},
    {12345, 100001, 0},
    {3 * MiB - 7, 14, 0},
    {4 * MiB, 8192, 1},    /* aligned range, unaligned buffer */
    {5 * MiB, 4 * MiB, 0}, /* big */
  };
  uint8_t one = 0x5a, buf[1];
  size_t i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    write_shadow (e, 0, cases[i].off, cases[i].len, 100 + i, cases[i].skew);
    check_range (e, cases[i].off, cases[i].len);
  }
  /* Neighbours of the odd writes untouched. */
  check_range (e, 0, 6 * MiB);

  /* FUA and FLUSH. */
  write_shadow (e, STORE_F_FUA, 2 * MiB, 4096, 7, 0);
  write_shadow (e, STORE_F_FUA, 2 * MiB + 5000, 333, 8, 0);
  g_assert_cmpint (do_io (e->st, STORE_FLUSH, 0, NULL, 0, 0), ==, 0);
  check_range (e, 2 * MiB, 8192);

  /* Zero length; out of range (submit refuses, done never called). */
  g_assert_cmpint (do_io (e->st, STORE_READ, 0, buf, 0, 0), ==, 0);
  g_assert_cmpint (do_io (e->st, STORE_WRITE, 0, &one, MAPPED - 1, 1), ==, 0);
  g_assert_cmpint (do_io (e->st, STORE_READ, 0, buf, MAPPED - 1, 1), ==, 0);
  g_assert_cmpint (buf[0], ==, one);
  g_assert_cmpint (do_io (e->st, STORE_READ, 0, buf, MAPPED, 1), ==, -EINVAL);
  g_assert_cmpint (do_io (e->st, STORE_WRITE, 0, buf, MAPPED - 1, 2), ==,
                   -EINVAL);
  g_assert_cmpint (do_io (e->st, STORE_ZERO, 0, NULL, UINT64_MAX - 1, 4), ==,
                   -EINVAL);
  g_assert_cmpint (do_io (e->st, STORE_READ, 0, NULL, 0, 1), ==, -EINVAL);
}

/* TRIM [off, off + len) and record in the shadow what it zeroes. */
static void
trim (struct env *e, unsigned flags, uint64_t off, uint32_t len)
{
  struct store *st = e->st;
  uint64_t a = st->dfd >= 0 ? st->dio_align : st->is_bdev ? st->block_size : 1;
  uint64_t start = st->data_offset + off, end = start + len;

  g_assert_cmpint (do_io (st, STORE_TRIM, flags, NULL, off, len), ==, 0);
  start = (start + a - 1) / a * a;
  end = end / a * a;
  if (!st->no_punch && end > start)
    memset (e->shadow + start - st->data_offset, 0, end - start);
}

/* Trim and zero: what reads back, and neighbours untouched. */
static void
battery_trim_zero (struct env *e)
{
  struct store *st = e->st;
  bool bdev = st->is_bdev;
  uint64_t off = 8 * MiB;
  int r;

  /* TRIM is advisory; here it punches the whole blocks (of O_DIRECT, or
   * of a buffered block device) in the range: they read back as zeroes,
   * partial blocks keep their data.
   */
  write_shadow (e, 0, off, 1 * MiB, 21, 0);
  trim (e, 0, off, 256 * 1024);
  trim (e, STORE_F_FUA, off + 300032, 1000);
  trim (e, 0, off + 400001, 5000);
  trim (e, 0, off + 600001, 100);
  check_range (e, off, 1 * MiB);

  /* ZERO without MAY_TRIM (ZERO_RANGE, or written zeroes on tmpfs), with
   * it (punch), unaligned, FUA; more than one zero_buf.
   */
  off = 9 * MiB;
  write_shadow (e, 0, off, 3 * MiB, 22, 0);
  g_assert_cmpint (do_io (st, STORE_ZERO, 0, NULL, off, 1 * MiB), ==, 0);
  memset (e->shadow + off, 0, 1 * MiB);
  g_assert_cmpint (
    do_io (st, STORE_ZERO, STORE_F_MAY_TRIM, NULL, off + 1 * MiB, 512 * 1024),
    ==, 0);
  memset (e->shadow + off + 1 * MiB, 0, 512 * 1024);
  g_assert_cmpint (
    do_io (st, STORE_ZERO, STORE_F_FUA, NULL, off + 1 * MiB + 600001, 77777),
    ==, 0);
  memset (e->shadow + off + 1 * MiB + 600001, 0, 77777);
  g_assert_cmpint (do_io (st, STORE_ZERO, STORE_F_MAY_TRIM | STORE_F_FUA, NULL,
                          off + 2 * MiB + 3, 5000),
                   ==, 0);
  memset (e->shadow + off + 2 * MiB + 3, 0, 5000);
  check_range (e, off, 3 * MiB);

  /* FAST_ZERO: cheap (fallocate) or -ENOTSUP with the data untouched.
   * Without MAY_TRIM it is cheap only where ZERO_RANGE works: a file on
   * a filesystem that has it; never on a block device.
   */
  off = 12 * MiB;
  write_shadow (e, 0, off, 1 * MiB, 23, 0);
  r = do_io (st, STORE_ZERO, STORE_F_FAST_ZERO, NULL, off, 64 * 1024);
  if (bdev || st->no_zero_range)
    g_assert_cmpint (r, ==, -ENOTSUP);
  else {
    g_assert_cmpint (r, ==, 0);
    memset (e->shadow + off, 0, 64 * 1024);
  }
  /* Once learnt, refused at submit; the same answer either way. */
  r = do_io (st, STORE_ZERO, STORE_F_FAST_ZERO, NULL, off + 128 * 1024, 4096);
  if (bdev || st->no_zero_range)
    g_assert_cmpint (r, ==, -ENOTSUP);
  else {
    g_assert_cmpint (r, ==, 0);
    memset (e->shadow + off + 128 * 1024, 0, 4096);
  }
  r = do_io (st, STORE_ZERO, STORE_F_FAST_ZERO | STORE_F_MAY_TRIM, NULL,
             off + 256 * 1024, 64 * 1024);
  if (st->no_punch && (bdev || st->no_zero_range))
    g_assert_cmpint (r, ==, -ENOTSUP);
  else {
    g_assert_cmpint (r, ==, 0);
    memset (e->shadow + off + 256 * 1024, 0, 64 * 1024);
  }
  check_range (e, off, 1 * MiB);
}

/* Many IOs in flight from several threads: each thread owns a region and
 * submits batches of writes to disjoint ranges in it, aligned and not
 * mixed in one batch, then batches of reads, checked against the shadow.
 */
#define THREADS 4
#define BATCH 24
#define ROUNDS 12
#define LOOP_ROUNDS 120 /* where the kernel bug was */
#define REGION (2 * MiB)
#define SLOT ((REGION / BATCH) & ~4095)

struct worker {
  struct env *e;
  unsigned id;
};

/* Say where and how a read differs from what was written, and fail. */
static void
report_mismatch (unsigned id, unsigned round, uint64_t base, uint64_t off,
                 uint32_t len, const uint8_t *got, const uint8_t *want)
{
  uint32_t first = 0, last = len, differ = 0, i;

  while (got[first] == want[first])
    first++;
  for (i = first; i < len; i++)
    if (got[i] != want[i]) {
      differ++;
      last = i;
    }
  /* g_error: on stderr, which a trapped subprocess passes on. */
  g_error ("thread %u round %u: read [%" PRIu64 ", +%" PRIu32 ") of the "
           "region at %" PRIu64 " differs from %" PRIu64
           " (page offset %" PRIu64 ") to %" PRIu64 ", %" PRIu32
           " bytes, got %s at the first",
           id, round, off, len, base, off + first, (base + off + first) % 4096,
           off + last, differ, got[first] == 0 ? "a zero" : "data");
}

static gpointer
worker_thread (gpointer arg)
{
  struct worker *wk = arg;
  struct env *e = wk->e;
  uint64_t base = 32 * MiB + wk->id * REGION; /* outside the shadow */
  g_autofree uint8_t *mine = g_malloc0 (REGION);
  g_autoptr (GRand) rnd = g_rand_new_with_seed (wk->id + 1);
  struct waiter w = {0};
  struct tio t[BATCH];
  uint8_t *buf[BATCH];
  uint32_t len[BATCH];
  uint64_t off[BATCH];
  unsigned round, i;

  g_mutex_init (&w.lock);
  g_cond_init (&w.cond);
  for (i = 0; i < BATCH; i++)
    buf[i] = store_buf_alloc (SLOT);
  /* Start from zeroes in the region. */
  for (i = 0; i < BATCH; i++)
    tio_submit (e->st, &w, &t[i], STORE_ZERO, 0, NULL, base + i * SLOT, SLOT);
  wait_all (&w);
  for (i = 0; i < BATCH; i++)
    g_assert_cmpint (t[i].res, ==, 0);

  for (round = 0; round < e->rounds; round++) {
    for (i = 0; i < BATCH; i++) {
      bool aligned = g_rand_boolean (rnd);
      uint32_t max = SLOT;

      off[i] = i * SLOT;
      if (aligned)
        len[i] = 4096 * g_rand_int_range (rnd, 1, SLOT / 4096 + 1);
      else {
        off[i] += g_rand_int_range (rnd, 0, 4000);
        max = SLOT - (off[i] - i * SLOT);
        len[i] = g_rand_int_range (rnd, 1, max + 1);
      }
      fill (buf[i], len[i], wk->id * 100000 + round * 1000 + i);
      memcpy (mine + off[i], buf[i], len[i]);
      tio_submit (e->st, &w, &t[i], STORE_WRITE, i % 5 == 0 ? STORE_F_FUA : 0,
                  buf[i], base + off[i], len[i]);
    }
    wait_all (&w);
    for (i = 0; i < BATCH; i++)
      g_assert_cmpint (t[i].res, ==, 0);

    for (i = 0; i < BATCH; i++) {
      bool aligned = g_rand_boolean (rnd);

      off[i] =
        (aligned ? 4096 : 1) *
        g_rand_int_range (rnd, 0, (REGION - SLOT) / (aligned ? 4096 : 1));
      if (aligned)
        len[i] = 4096 * g_rand_int_range (rnd, 1, SLOT / 4096 + 1);
      else
        len[i] = g_rand_int_range (rnd, 1, SLOT + 1);
      tio_submit (e->st, &w, &t[i], STORE_READ, 0, buf[i], base + off[i],
                  len[i]);
    }
    wait_all (&w);
    for (i = 0; i < BATCH; i++) {
      g_assert_cmpint (t[i].res, ==, 0);
      if (memcmp (buf[i], mine + off[i], len[i]) != 0)
        report_mismatch (wk->id, round, base, off[i], len[i], buf[i],
                         mine + off[i]);
    }
  }
  for (i = 0; i < BATCH; i++)
    store_buf_free (buf[i]);
  g_cond_clear (&w.cond);
  g_mutex_clear (&w.lock);
  return NULL;
}

static void
battery_concurrent (struct env *e)
{
  struct worker wk[THREADS];
  GThread *th[THREADS];
  unsigned i;

  for (i = 0; i < THREADS; i++) {
    wk[i].e = e;
    wk[i].id = i;
    th[i] = g_thread_new ("worker", worker_thread, &wk[i]);
  }
  for (i = 0; i < THREADS; i++)
    g_thread_join (th[i]);
}

/* Everything on an open store whose first SHADOW bytes the test may
 * overwrite; raw_path is the file to check data_offset in.
 */
static void
battery (struct store *st, const char *raw_path, unsigned rounds)
{
  struct env e = {.st = st, .rounds = rounds};
  uint8_t *buf = store_buf_alloc (SHADOW);

  g_assert_nonnull (buf);
  e.raw = open (raw_path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (e.raw, >=, 0);
  /* Learn what is there now. */
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf, 0, SHADOW), ==, 0);
  e.shadow = g_memdup2 (buf, SHADOW);
  store_buf_free (buf);

  battery_rw (&e);
  battery_trim_zero (&e);
  battery_concurrent (&e);
  check_range (&e, 0, SHADOW);

  close (e.raw);
  g_free (e.shadow);
}

/* Errors. */

/* IO on a file in base.  mode: 0 as opened (tmpfs: buffered, elsewhere
 * O_DIRECT and RMW), 1 with dfd dropped (what a filesystem that refuses
 * O_DIRECT gets), 2 on the thread fallback backend.
 */
static void
run_io_test (const char *base, int mode)
{
  struct store *st = NULL;
  uint8_t *buf = store_buf_alloc (SHADOW), *buf2 = store_buf_alloc (SHADOW);
  struct tmp t;

  tmp_init (&t, base);
  g_assert_cmpint (store_create (t.path, "io", 1, MAPPED, false, &st), ==, 0);
  if (mode == 1 && st->dfd >= 0) {
    close (st->dfd);
    st->dfd = -1;
  }
  if (mode == 2) {
    st->ops->stop (st);
    g_assert_cmpint (store_thread_start (st), ==, 0);
    g_assert_true (st->ops == &store_thread_ops);
  }
  g_test_message ("%s: backend %s, %s", base, st->ops->name,
                  st->dfd >= 0 ? "O_DIRECT" : "buffered");
  battery (st, t.path, ROUNDS);
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf, 0, SHADOW), ==, 0);
  g_assert_false (all_zero (buf, SHADOW));
  store_close (st);

  /* The data survives close and open. */
  g_assert_cmpint (store_open (t.path, "io", 1, MAPPED, 0, &st), ==, 0);
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf2, 0, SHADOW), ==, 0);
  g_assert_true (memcmp (buf, buf2, SHADOW) == 0);
  store_close (st);
  store_buf_free (buf);
  store_buf_free (buf2);
  tmp_fini (&t);
}

static void
test_io_tmp (void)
{
  run_io_test (g_get_tmp_dir (), 0);
}

static void
test_io_shm (void)
{
  run_io_test ("/dev/shm", 0);
}

static void
test_io_buffered (void)
{
  run_io_test (g_get_tmp_dir (), 1);
}

static void
test_io_threads (void)
{
  run_io_test (g_get_tmp_dir (), 2);
}

/* The data area of a file may end inside a block of dio_align (4096
 * without STATX_DIOALIGN): RMW of its last bytes reads past the end of
 * the file, which is zeroes, not an error.
 */
static void
test_tail (void)
{
  const uint64_t size = 1 * MiB + 512;
  struct store *st = NULL;
  uint8_t *buf = store_buf_alloc (8192), expect[700];
  struct stat stb;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  g_assert_cmpint (store_create (t.path, "tail", 1, size, false, &st), ==, 0);
  g_assert_cmpint (stat (t.path, &stb), ==, 0);
  g_assert_cmpuint (stb.st_size % 4096, !=, 0);
  if (st->dfd >= 0)
    st->dio_align = 4096; /* always valid: a multiple of the real one */
  fill (expect, sizeof expect, 9);
  g_assert_cmpint (do_io (st, STORE_WRITE, 0, expect, size - 700, 700), ==, 0);
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf, size - 700, 700), ==, 0);
  g_assert_true (memcmp (buf, expect, 700) == 0);
  g_assert_cmpint (do_io (st, STORE_ZERO, 0, NULL, size - 300, 300), ==, 0);
  memset (expect + 400, 0, 300);
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf, size - 700, 700), ==, 0);
  g_assert_true (memcmp (buf, expect, 700) == 0);
  store_close (st);
  g_assert_cmpint (store_open (t.path, "tail", 1, size, 0, &st), ==, 0);
  g_assert_cmpint (do_io (st, STORE_READ, 0, buf, size - 700, 700), ==, 0);
  g_assert_true (memcmp (buf, expect, 700) == 0);
  store_close (st);
  store_buf_free (buf);
  tmp_fini (&t);
}

/* A loop device: O_EXCL, BLKGETSIZE64, fallocate on a block device, a
 * foreign signature found and wiped on it.
 */

static bool
run (const char *cmd, char **out)
{
  g_autofree char *err = NULL;
  g_autoptr (GError) gerr = NULL;
  int status;

  if (!g_spawn_command_line_sync (cmd, out, &err, &status, &gerr)) {
    g_test_message ("%s: %s", cmd, gerr->message);
    return false;
  }
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_test_message ("%s: %s", cmd, err);
    return false;
  }
  return true;
}

/* The body, in a subprocess, so that the parent detaches the device
 * whatever happens here.
 */
static void
loop_body (const char *dev, const char *backing)
{
  struct store *st = NULL, *st2 = NULL;

  g_test_message ("loop device %s", dev);
  assert_error (store_create (dev, "lp", 2, MAPPED + 1 * MiB, false, &st),
                ENOSPC, "pool needs");
  /* A partition table on the device (libblkid through the O_EXCL fd):
   * refused, then wiped by force (and the kernel asked to re-read it).
   */
  {
    uint8_t mbr[512] = {0};
    int fd = open (dev, O_WRONLY);

    mbr[446 + 4] = 0x83;      /* Linux */
    mbr[446 + 8 + 1] = 0x08;  /* from LBA 2048 */
    mbr[446 + 12 + 1] = 0x08; /* 2048 sectors */
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    g_assert_cmpint (fd, >=, 0);
    g_assert_cmpint (pwrite (fd, mbr, sizeof mbr, 0), ==, sizeof mbr);
    g_assert_cmpint (fsync (fd), ==, 0);
    close (fd);
  }
  assert_error (store_create (dev, "lp", 2, MAPPED, false, &st), EMEDIUMTYPE,
                "holds a dos partition table");
  g_assert_cmpint (store_create (dev, "lp", 2, MAPPED, true, &st), ==, 0);
  g_assert_true (st->is_bdev);
  g_assert_cmpuint (st->block_size, ==, 512);
  g_assert_cmpuint (st->dev_size, ==, md_store_bytes (MAPPED));
  g_assert_cmpstr (st->bdev_name, ==, dev + strlen ("/dev/"));
  assert_error (store_open (dev, "lp", 2, 0, 0, &st2), EBUSY,
                "in use by another pool or process");
  battery (st, backing, LOOP_ROUNDS);
  store_close (st);

  /* A link in /dev to the device (as udev's /dev/disk/by-id/...) is
   * followed, to the device itself; the same link elsewhere is refused.
   */
  {
    g_autofree char *devlink =
      g_strdup_printf ("/dev/rmr-test-%d", (int) getpid ());
    g_autofree char *tmplink = g_strdup_printf ("%s.link", backing);

    g_assert_cmpint (symlink (dev, devlink), ==, 0);
    g_assert_cmpint (symlink (dev, tmplink), ==, 0);
    g_assert_cmpint (store_open (devlink, "lp", 2, MAPPED, 0, &st), ==, 0);
    g_assert_true (st->is_bdev);
    g_assert_cmpstr (st->bdev_name, ==, dev + strlen ("/dev/"));
    assert_error (store_open (dev, "lp", 2, 0, 0, &st2), EBUSY,
                  "in use by another pool or process");
    store_close (st);
    assert_error (store_open (tmplink, "lp", 2, MAPPED, 0, &st), ELOOP,
                  "is a symbolic link");
    unlink (devlink);
    unlink (tmplink);
  }

  g_assert_cmpint (store_open (dev, "lp", 2, MAPPED, 0, &st), ==, 0);
  assert_error (store_create (backing, "lp", 2, MAPPED, false, &st2), EEXIST,
                "use add_store");
  g_assert_cmpint (store_wipe (st), ==, 0);
  store_close (st);
  assert_error (store_open (dev, "lp", 2, 0, 0, &st), ENODATA,
                "no rmr metadata");
}

static void
test_loop (void)
{
  g_autofree char *cmd = NULL, *dev = NULL;
  struct tmp t;

  if (g_test_subprocess ()) {
    loop_body (g_getenv ("RMR_TEST_LOOP_DEV"), g_getenv ("RMR_TEST_LOOP_FILE"));
    return;
  }
  if (geteuid () != 0) {
    g_test_skip ("not root: no loop device");
    return;
  }
  tmp_init (&t, g_get_tmp_dir ());
  g_assert_cmpint (g_file_set_contents (t.path, "", 0, NULL), ==, TRUE);
  g_assert_cmpint (truncate (t.path, md_store_bytes (MAPPED)), ==, 0);
  cmd = g_strdup_printf ("losetup -f --show %s", t.path);
  if (!run (cmd, &dev)) {
    tmp_fini (&t);
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_test_fail_printf ("losetup failed under CI=true");
    else
      g_test_skip ("losetup unavailable");
    return;
  }
  g_strstrip (dev);
  g_setenv ("RMR_TEST_LOOP_DEV", dev, TRUE);
  g_setenv ("RMR_TEST_LOOP_FILE", t.path, TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);

  g_free (cmd);
  cmd = g_strdup_printf ("losetup -d %s", dev);
  g_assert_true (run (cmd, NULL));
  tmp_fini (&t);
  g_test_trap_assert_passed ();
}

/* Back-pressure: with the completion thread stalled in a done callback,
 * a submitter stops at the ring's limit instead of overflowing the CQ,
 * and goes on once it drains; done callbacks chain more IO meanwhile.
 */
#define BP_TOTAL 10000
#define BP_CHAIN 50

struct bp {
  struct store *st;
  struct tio *t;
  GMutex lock;
  GCond cond;
  bool open; /* the gate */
  int submitted, done, chained;
  uint8_t *buf;
};

static void
bp_done (struct store_io *io, int res)
{
  struct bp *bp = io->opaque;

  g_assert_cmpint (res, ==, 0);
  g_mutex_lock (&bp->lock);
  while (!bp->open)
    g_cond_wait (&bp->cond, &bp->lock);
  bp->done++;
  if (io == &bp->t[0].io && bp->chained < BP_CHAIN) {
    /* Resubmit from done: must not wait, must not deadlock. */
    bp->chained++;
    g_mutex_unlock (&bp->lock);
    g_assert_cmpint (store_submit (bp->st, io), ==, 0);
    return;
  }
  g_cond_broadcast (&bp->cond);
  g_mutex_unlock (&bp->lock);
}

static gpointer
bp_submitter (gpointer arg)
{
  struct bp *bp = arg;
  int i;

  for (i = 0; i < BP_TOTAL; i++) {
    struct store_io *io = &bp->t[i].io;

    io->op = STORE_READ;
    io->buf = bp->buf;
    io->offset = (i % 1024) * 512;
    io->len = 512;
    io->done = bp_done;
    io->opaque = bp;
    g_assert_cmpint (store_submit (bp->st, io), ==, 0);
    g_atomic_int_inc (&bp->submitted);
  }
  return NULL;
}

static void
test_backpressure (void)
{
  struct bp bp = {0};
  struct tmp t;
  GThread *th;
  int stalled;

  tmp_init (&t, g_get_tmp_dir ());
  g_assert_cmpint (store_create (t.path, "bp", 1, MAPPED, false, &bp.st), ==,
                   0);
  g_mutex_init (&bp.lock);
  g_cond_init (&bp.cond);
  bp.t = g_new0 (struct tio, BP_TOTAL);
  bp.buf = store_buf_alloc (512);
  th = g_thread_new ("submitter", bp_submitter, &bp);
  g_usleep (G_USEC_PER_SEC / 2);
  stalled = g_atomic_int_get (&bp.submitted);
  g_test_message ("%s: %d of %d submitted while completions stall",
                  bp.st->ops->name, stalled, BP_TOTAL);
  if (bp.st->ops == &store_file_ops)
    g_assert_cmpint (stalled, <, BP_TOTAL);
  g_mutex_lock (&bp.lock);
  bp.open = true;
  g_cond_broadcast (&bp.cond);
  g_mutex_unlock (&bp.lock);
  g_thread_join (th);
  g_mutex_lock (&bp.lock);
  while (bp.done < BP_TOTAL + BP_CHAIN)
    g_cond_wait (&bp.cond, &bp.lock);
  g_mutex_unlock (&bp.lock);
  store_close (bp.st);
  g_assert_cmpint (bp.done, ==, BP_TOTAL + BP_CHAIN);
  store_buf_free (bp.buf);
  g_free (bp.t);
  g_cond_clear (&bp.cond);
  g_mutex_clear (&bp.lock);
  tmp_fini (&t);
}

/* Without io_uring (seccomp makes io_uring_setup fail, as the
 * io_uring_disabled sysctl would) the store falls back to threads.
 */
static void
test_no_io_uring (void)
{
  if (g_test_subprocess ()) {
    struct sock_filter filter[] = {
      BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
      BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {G_N_ELEMENTS (filter), filter};
    struct store *st = NULL;
    struct tmp t;

    g_unsetenv ("RMR_STORE_IO"); /* set under valgrind */
    g_assert_cmpint (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ==, 0);
    g_assert_cmpint (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), ==, 0);
    tmp_init (&t, g_get_tmp_dir ());
    g_assert_cmpint (store_create (t.path, "nu", 1, MAPPED, false, &st), ==, 0);
    g_assert_true (st->ops == &store_thread_ops);
    battery (st, t.path, ROUNDS);
    store_close (st);
    tmp_fini (&t);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*io_uring not available (Operation not "
                             "permitted): stores use IO threads*");
}

/* RMR_STORE_IO=threads chooses the thread backend, and says so. */
static void
test_threads_asked (void)
{
  if (g_test_subprocess ()) {
    struct store *st = NULL;
    struct tmp t;

    g_setenv ("RMR_STORE_IO", "threads", TRUE);
    tmp_init (&t, g_get_tmp_dir ());
    g_assert_cmpint (store_create (t.path, "ta", 1, MAPPED, false, &st), ==, 0);
    g_assert_true (st->ops == &store_thread_ops);
    store_close (st);
    tmp_fini (&t);
    return;
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*RMR_STORE_IO=threads: stores use IO threads*");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/io/tmp", test_io_tmp);
  g_test_add_func ("/store/io/shm", test_io_shm);
  g_test_add_func ("/store/io/buffered", test_io_buffered);
  g_test_add_func ("/store/io/threads", test_io_threads);
  g_test_add_func ("/store/io/tail", test_tail);
  g_test_add_func ("/store/io/backpressure", test_backpressure);
  g_test_add_func ("/store/io/no-io-uring", test_no_io_uring);
  g_test_add_func ("/store/io/threads-asked", test_threads_asked);
  g_test_add_func ("/store/io/loop", test_loop);
  return g_test_run ();
}
