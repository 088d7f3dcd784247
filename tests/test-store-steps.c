/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the store IO state machine (store-io.c: store_io_begin,
 * store_io_step, store_io_step_done) without any IO: a struct store that
 * is never opened, fake fds, and made-up step results drive every path:
 * O_DIRECT or RMW by alignment (never the page cache while dfd is open),
 * buffered when dfd is -1, short transfers, EINTR, FUA, flush, trim of
 * whole blocks only, the zero chain (punch -> zero range -> written
 * zeroes on the middle, RMW on the edges, sync) and FAST_ZERO refusals.
 * Linked with store-io.c alone; what it calls elsewhere is a stub that
 * aborts.
 */
#undef NDEBUG

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/uio.h>

#include <glib.h>

#include "internal.h"

#define KiB 1024
#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)
#define BASE (1 * MiB) /* data_offset */
#define FD 10
#define DFD 11

static uint8_t buf[4 * MiB] __attribute__ ((aligned (4096)));

/* Not reached: no RMW runs. */
void *
store_buf_alloc (size_t len)
{
  abort ();
}

static void
fake_store (struct store *st)
{
  memset (st, 0, sizeof *st);
  st->fd = FD;
  st->dfd = DFD;
  st->block_size = 512;
  st->dio_align = 512;
  st->dio_mem_align = 512;
  st->data_offset = BASE;
  st->mapped_size = MAPPED;
  st->path = (char *) "fake";
  store_syncs_init (st);
}

/* Every sync step counted in flight ended (store-sync.c). */
static void
fake_store_done (struct store *st)
{
  g_assert_cmpuint (st->syncs->len, ==, 0);
  store_syncs_fini (st);
}

static void
set_io (struct store_io *io, enum store_op op, unsigned flags, void *b,
        uint64_t off, uint32_t len)
{
  memset (io, 0, sizeof *io);
  io->op = op;
  io->flags = flags;
  io->buf = b;
  io->offset = off;
  io->len = len;
}

static void
assert_step (const struct store_step *s, enum store_step_kind kind, int fd,
             uint64_t off, uint64_t len)
{
  g_assert_cmpint (s->kind, ==, kind);
  g_assert_cmpint (s->fd, ==, fd);
  g_assert_cmpuint (s->off, ==, off);
  g_assert_cmpuint (s->len, ==, len);
}

static void
test_read_write (void)
{
  struct store st;
  struct store_io io;
  struct store_step s;
  int res;

  fake_store (&st);

  /* Aligned: O_DIRECT; a short read resubmits the rest, still direct;
   * a rest that is not aligned goes RMW (never the buffered fd).
   */
  set_io (&io, STORE_READ, 0, buf, 0, 3 * 4096);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_READ, DFD, BASE, 3 * 4096);
  g_assert_true (store_io_step_done (&st, &io, 4096, &s, &res));
  assert_step (&s, STORE_STEP_READ, DFD, BASE + 4096, 2 * 4096);
  g_assert_true (s.buf == buf + 4096);
  g_assert_true (store_io_step_done (&st, &io, 100, &s, &res));
  assert_step (&s, STORE_STEP_RMW_READ, DFD, BASE + 4196, 2 * 4096 - 100);
  g_assert_true (s.buf == buf + 4196);
  g_assert_true (store_io_step_done (&st, &io, -EINTR, &s, &res));
  assert_step (&s, STORE_STEP_RMW_READ, DFD, BASE + 4196, 2 * 4096 - 100);
  g_assert_false (store_io_step_done (&st, &io, 2 * 4096 - 100, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* EOF is -EIO; errors pass through. */
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, -EIO);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_false (store_io_step_done (&st, &io, -EINVAL, &s, &res));
  g_assert_cmpint (res, ==, -EINVAL);

  /* dio_align is the unit: 512-aligned is direct; an odd offset, length
   * or buffer is RMW.
   */
  set_io (&io, STORE_WRITE, 0, buf, 512, 1024);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_WRITE, DFD, BASE + 512, 1024);
  set_io (&io, STORE_WRITE, 0, buf, 100, 1024);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 100, 1024);
  set_io (&io, STORE_WRITE, 0, buf, 0, 1000);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE, 1000);
  set_io (&io, STORE_READ, 0, buf + 1, 0, 4096);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_RMW_READ, DFD, BASE, 4096);

  /* A big RMW goes in pieces of the bounce buffer. */
  set_io (&io, STORE_WRITE, 0, buf, 1, 3 * MiB);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 1, 1 * MiB);
  g_assert_true (store_io_step_done (&st, &io, 1 * MiB, &s, &res));
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 1 + MiB, 1 * MiB);
  g_assert_true (s.buf == buf + MiB);
  g_assert_true (store_io_step_done (&st, &io, 1 * MiB, &s, &res));
  g_assert_false (store_io_step_done (&st, &io, 1 * MiB, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* FUA: RWF_DSYNC on the write itself, direct or RMW; no second step. */
  set_io (&io, STORE_WRITE, STORE_F_FUA, buf, 0, 4096);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);
  g_assert_cmpint (s.mode, ==, RWF_DSYNC);
  g_assert_false (store_io_step_done (&st, &io, 4096, &s, &res));
  g_assert_cmpint (res, ==, 0);
  set_io (&io, STORE_WRITE, STORE_F_FUA, buf, 3, 4);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_RMW_WRITE);
  g_assert_cmpint (s.mode, ==, RWF_DSYNC);
  g_assert_cmpuint (st.syncs->len, ==, 1); /* a FUA write syncs */
  store_io_sync_end (&st, &io, 0);         /* not run here */

  /* Without dfd everything is buffered, aligned or not. */
  st.dfd = -1;
  set_io (&io, STORE_WRITE, 0, buf + 1, 3, 5);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_WRITE, FD, BASE + 3, 5);
  set_io (&io, STORE_READ, 0, buf, 0, 4096);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_READ, FD, BASE, 4096);
  st.dfd = DFD;

  /* FLUSH: fdatasync on the buffered fd (the same inode as dfd). */
  set_io (&io, STORE_FLUSH, 0, NULL, 0, 0);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FSYNC, FD, 0, 0);
  g_assert_cmpuint (st.syncs->len, ==, 1);
  g_assert_false (store_io_step_done (&st, &io, -EIO, &s, &res));
  g_assert_cmpint (res, ==, -EIO);
  g_assert_cmpuint (store_flush_errors (&st), ==, 1); /* counted */

  /* Zero length; out of range; bad op; no buffer. */
  set_io (&io, STORE_READ, 0, buf, 0, 0);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_NOP);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);
  set_io (&io, STORE_READ, 0, buf, MAPPED - 4096, 8192);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
  set_io (&io, STORE_ZERO, 0, NULL, UINT64_MAX - 1, 4);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
  set_io (&io, 42, 0, buf, 0, 512);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
  set_io (&io, STORE_WRITE, 0, NULL, 0, 512);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
  fake_store_done (&st);
}

static void
test_trim (void)
{
  const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  struct store st;
  struct store_io io;
  struct store_step s;
  int res;

  fake_store (&st);

  /* Whole blocks only (partial ones would go through the page cache);
   * FUA adds a sync.
   */
  set_io (&io, STORE_TRIM, STORE_F_FUA, NULL, 100, 2000);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 512, 1536);
  g_assert_cmpint (s.mode, ==, punch);
  g_assert_true (store_io_step_done (&st, &io, 0, &s, &res));
  assert_step (&s, STORE_STEP_FSYNC, FD, 0, 0);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);
  set_io (&io, STORE_TRIM, 0, NULL, 100, 300);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_NOP);

  /* Buffered file: all of it; buffered block device: logical blocks. */
  st.dfd = -1;
  set_io (&io, STORE_TRIM, 0, NULL, 100, 300);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 100, 300);
  st.is_bdev = true;
  set_io (&io, STORE_TRIM, 0, NULL, 100, 2000);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 512, 1536);

  /* EOPNOTSUPP: success, learnt, and later trims do nothing. */
  g_assert_false (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (res, ==, 0);
  g_assert_true (st.no_punch);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_NOP);
  /* Other errors are errors. */
  st.no_punch = 0;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_false (store_io_step_done (&st, &io, -EIO, &s, &res));
  g_assert_cmpint (res, ==, -EIO);
  fake_store_done (&st);
}

static void
test_zero (void)
{
  const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  const int zrange = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
  const uint32_t len = 600 * KiB + 5; /* [100, 614505) */
  const uint64_t mid = 614400 - 512;  /* [512, 614400) */
  struct store st;
  struct store_io io;
  struct store_step s;
  int res;

  fake_store (&st);

  /* The whole chain: middle punch -> zero range -> written zeroes in
   * pieces (direct: aligned), then the edges by RMW, then sync.
   */
  set_io (&io, STORE_ZERO, STORE_F_MAY_TRIM | STORE_F_FUA, NULL, 100, len);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 512, mid);
  g_assert_cmpint (s.mode, ==, punch);
  g_assert_true (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 512, mid);
  g_assert_cmpint (s.mode, ==, zrange);
  g_assert_true (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  assert_step (&s, STORE_STEP_WRITE, DFD, BASE + 512, 256 * KiB);
  g_assert_true (store_io_step_done (&st, &io, 256 * KiB, &s, &res));
  assert_step (&s, STORE_STEP_WRITE, DFD, BASE + 512 + 256 * KiB, 256 * KiB);
  g_assert_true (store_io_step_done (&st, &io, 256 * KiB, &s, &res));
  assert_step (&s, STORE_STEP_WRITE, DFD, BASE + 512 + 512 * KiB,
               mid - 512 * KiB);
  g_assert_true (store_io_step_done (&st, &io, mid - 512 * KiB, &s, &res));
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 100, 412);
  g_assert_null (s.buf);
  g_assert_true (store_io_step_done (&st, &io, 412, &s, &res));
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 614400, 105);
  g_assert_true (store_io_step_done (&st, &io, 105, &s, &res));
  assert_step (&s, STORE_STEP_FSYNC, FD, 0, 0);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* Learnt: straight to written zeroes; FAST_ZERO refused at once. */
  g_assert_true (st.no_punch && st.no_zero_range);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);
  io.flags |= STORE_F_FAST_ZERO;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -ENOTSUP);

  /* FAST_ZERO found out late: -ENOTSUP through done, before the edges
   * were touched.
   */
  st.no_zero_range = 0;
  set_io (&io, STORE_ZERO, STORE_F_FAST_ZERO, NULL, 100, len);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.mode, ==, zrange);
  g_assert_false (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (res, ==, -ENOTSUP);

  /* Success of the middle goes to the edges; no FUA, no sync. */
  st.no_punch = st.no_zero_range = 0;
  set_io (&io, STORE_ZERO, 0, NULL, 100, len);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_true (store_io_step_done (&st, &io, 0, &s, &res));
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 100, 412);
  g_assert_true (store_io_step_done (&st, &io, 412, &s, &res));
  g_assert_false (store_io_step_done (&st, &io, 105, &s, &res));
  g_assert_cmpint (res, ==, 0);
  /* An error in an edge is the result. */
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_true (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_false (store_io_step_done (&st, &io, -EIO, &s, &res));
  g_assert_cmpint (res, ==, -EIO);

  /* Within one block: no middle, one RMW edge (even for FAST_ZERO). */
  set_io (&io, STORE_ZERO, STORE_F_FAST_ZERO, NULL, 100, 200);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_RMW_WRITE, DFD, BASE + 100, 200);
  g_assert_false (store_io_step_done (&st, &io, 200, &s, &res));
  g_assert_cmpint (res, ==, 0);
  /* Aligned: no edges. */
  set_io (&io, STORE_ZERO, 0, NULL, 512, 1024);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 512, 1024);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* A block device: ZERO_RANGE may write zeroes in the kernel, so
   * FAST_ZERO needs MAY_TRIM (a punch there never falls back).
   */
  st.is_bdev = true;
  set_io (&io, STORE_ZERO, STORE_F_FAST_ZERO, NULL, 0, 4096);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -ENOTSUP);
  io.flags = STORE_F_FAST_ZERO | STORE_F_MAY_TRIM;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.mode, ==, punch);
  st.is_bdev = false;

  /* A buffered file zeroes any range with fallocate, no edges. */
  st.dfd = -1;
  set_io (&io, STORE_ZERO, 0, NULL, 100, 200);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  assert_step (&s, STORE_STEP_FALLOCATE, FD, BASE + 100, 200);
  g_assert_true (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  assert_step (&s, STORE_STEP_WRITE, FD, BASE + 100, 200);
  fake_store_done (&st);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/steps/read-write", test_read_write);
  g_test_add_func ("/store/steps/trim", test_trim);
  g_test_add_func ("/store/steps/zero", test_zero);
  return g_test_run ();
}
