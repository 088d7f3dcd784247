/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the store IO state machine (store-file.c: store_io_begin,
 * store_io_step, store_io_step_done) without any IO: a struct store that
 * is never opened, fake fds, and made-up step results drive every path:
 * O_DIRECT or buffered by alignment, short transfers, EINTR, the
 * EINVAL-from-O_DIRECT retry, FUA, flush, trim on files and block
 * devices, the zero fallback chain (punch -> zero range -> written
 * zeroes -> sync) and FAST_ZERO refusals.  Linked with store-file.c
 * alone; the other backend is a stub that aborts.
 */
#undef NDEBUG

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/falloc.h>
#include <sys/uio.h>

#include <glib.h>

#include "internal.h"

#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)

static uint8_t buf[3 * 4096] __attribute__ ((aligned (4096)));

/* store_file_start's fallback: never reached here. */
int
store_thread_start (struct store *st)
{
  abort ();
}

static void
test_steps (void)
{
  struct store st = {
    .fd = 10,
    .dfd = 11,
    .block_size = 512,
    .data_offset = 1 * MiB,
    .mapped_size = MAPPED,
    .path = (char *) "fake",
  };
  struct store_io io = {.op = STORE_READ, .buf = buf, .len = 3 * 4096};
  struct store_step s;
  int res;

  /* Aligned: O_DIRECT; a short read resubmits the rest, still direct. */
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_READ);
  g_assert_cmpint (s.fd, ==, 11);
  g_assert_cmpuint (s.off, ==, 1 * MiB);
  g_assert_cmpuint (s.len, ==, 3 * 4096);
  g_assert_true (store_io_step_done (&st, &io, 4096, &s, &res));
  g_assert_true (s.buf == buf + 4096);
  g_assert_cmpuint (s.off, ==, 1 * MiB + 4096);
  g_assert_cmpuint (s.len, ==, 2 * 4096);
  g_assert_cmpint (s.fd, ==, 11);
  /* A short direct transfer that breaks alignment goes buffered. */
  g_assert_true (store_io_step_done (&st, &io, 100, &s, &res));
  g_assert_cmpint (s.fd, ==, 10);
  g_assert_true (store_io_step_done (&st, &io, -EINTR, &s, &res));
  g_assert_cmpuint (s.len, ==, 2 * 4096 - 100);
  g_assert_false (store_io_step_done (&st, &io, 2 * 4096 - 100, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* EOF is -EIO; errors pass through; EINVAL from dfd retries buffered. */
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, -EIO);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_true (store_io_step_done (&st, &io, -EINVAL, &s, &res));
  g_assert_cmpint (s.fd, ==, 10);
  g_assert_cmpuint (s.len, ==, 3 * 4096);
  g_assert_false (store_io_step_done (&st, &io, -EINVAL, &s, &res));
  g_assert_cmpint (res, ==, -EINVAL);

  /* Sector-aligned is not enough for O_DIRECT (page-cache coherence);
   * neither is an unaligned buffer.
   */
  io.offset = 512;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.fd, ==, 10);
  io.offset = 0;
  io.buf = buf + 512;
  io.len = 4096;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.fd, ==, 10);

  /* FUA write: one step with RWF_DSYNC. */
  io.op = STORE_WRITE;
  io.flags = STORE_F_FUA;
  io.buf = buf;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);
  g_assert_cmpint (s.mode, ==, RWF_DSYNC);
  g_assert_false (store_io_step_done (&st, &io, 4096, &s, &res));
  g_assert_cmpint (res, ==, 0);

  /* FLUSH: fdatasync on the buffered fd (same inode as dfd). */
  io.op = STORE_FLUSH;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_FSYNC);
  g_assert_cmpint (s.fd, ==, 10);
  g_assert_false (store_io_step_done (&st, &io, -EIO, &s, &res));
  g_assert_cmpint (res, ==, -EIO);

  /* TRIM with FUA: punch, sync.  EOPNOTSUPP: success, learnt. */
  io.op = STORE_TRIM;
  io.offset = 100;
  io.len = 1000;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_FALLOCATE);
  g_assert_cmpint (s.mode, ==, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  g_assert_cmpuint (s.off, ==, 1 * MiB + 100);
  g_assert_cmpuint (s.len, ==, 1000);
  g_assert_true (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (s.kind, ==, STORE_STEP_FSYNC);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);
  /* On a block device only whole blocks: here none. */
  st.is_bdev = true;
  io.len = 300;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_NOP);
  io.len = 2000;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpuint (s.off, ==, 1 * MiB + 512);
  g_assert_cmpuint (s.len, ==, 1536);
  g_assert_false (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (res, ==, 0);
  g_assert_true (st.no_punch);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_NOP);
  st.is_bdev = false;
  st.no_punch = 0;

  /* ZERO: punch -> zero range -> written zeroes in pieces -> sync. */
  io.op = STORE_ZERO;
  io.flags = STORE_F_MAY_TRIM | STORE_F_FUA;
  io.offset = 4096;
  io.len = 600 * 1024 + 5;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.mode, ==, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  g_assert_true (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (s.kind, ==, STORE_STEP_FALLOCATE);
  g_assert_cmpint (s.mode, ==, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
  g_assert_true (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);
  g_assert_cmpint (s.fd, ==, 11); /* aligned piece of zero_buf */
  g_assert_cmpuint (s.off, ==, 1 * MiB + 4096);
  g_assert_cmpuint (s.len, ==, 256 * 1024);
  g_assert_true (store_io_step_done (&st, &io, 256 * 1024, &s, &res));
  g_assert_cmpuint (s.len, ==, 256 * 1024);
  g_assert_true (store_io_step_done (&st, &io, 256 * 1024, &s, &res));
  g_assert_cmpuint (s.len, ==, 88 * 1024 + 5);
  g_assert_cmpint (s.fd, ==, 10); /* unaligned tail */
  g_assert_true (store_io_step_done (&st, &io, 88 * 1024 + 5, &s, &res));
  g_assert_cmpint (s.kind, ==, STORE_STEP_FSYNC);
  g_assert_false (store_io_step_done (&st, &io, 0, &s, &res));
  g_assert_cmpint (res, ==, 0);
  /* Learnt: straight to written zeroes; FAST_ZERO refused at once. */
  g_assert_true (st.no_punch && st.no_zero_range);
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);
  io.flags |= STORE_F_FAST_ZERO;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -ENOTSUP);
  /* FAST_ZERO found out late: -ENOTSUP through done. */
  st.no_zero_range = 0;
  io.flags = STORE_F_FAST_ZERO;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.mode, ==, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
  g_assert_false (store_io_step_done (&st, &io, -EOPNOTSUPP, &s, &res));
  g_assert_cmpint (res, ==, -ENOTSUP);
  /* A block device: ZERO_RANGE may be slow there, so FAST_ZERO needs
   * MAY_TRIM; unaligned zeroes are written.
   */
  st.no_punch = st.no_zero_range = 0;
  st.is_bdev = true;
  io.len = 4096;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -ENOTSUP);
  io.flags = STORE_F_FAST_ZERO | STORE_F_MAY_TRIM;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.mode, ==, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  io.flags = 0;
  io.offset = 4097;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, 0);
  g_assert_cmpint (s.kind, ==, STORE_STEP_WRITE);

  /* Range checks. */
  io.op = STORE_READ;
  io.offset = MAPPED - 4096;
  io.len = 8192;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
  io.op = 42;
  io.offset = 0;
  g_assert_cmpint (store_io_begin (&st, &io, &s), ==, -EINVAL);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/steps", test_steps);
  return g_test_run ();
}
