/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The IO state machine of a store, shared by its two backends
 * (store-file.c: io_uring; store-thread.c: plain system calls): what
 * steps an IO takes, never how they are issued.
 *
 * Never mix O_DIRECT and the page cache.  When dfd >= 0 every data-area
 * IO is O_DIRECT: IO aligned for it (dio_align, dio_mem_align) goes
 * straight through dfd; the rest is read-modify-write of the whole
 * blocks around it through rmw_buf (store_rmw), still O_DIRECT.  When
 * dfd is -1 (O_DIRECT refused, or tmpfs, where it is a no-op) every IO is
 * buffered.  Mixing is not safe: the kernel does not invalidate the page
 * cache after an asynchronous O_DIRECT write to a block device
 * (block/fops.c, blkdev_direct_write: only when the write completed
 * synchronously), so a folio read in while an io_uring write was in
 * flight keeps stale data; and with large folios, a buffered IO and a
 * direct one that share no byte can still share a folio.  Seen here as
 * stale reads on a loop device about once in a hundred runs of the
 * concurrent test (tests/test-store.c).  The superblock and the map
 * regions, written buffered by other modules, lie below data_offset; a
 * folio straddling data_offset may hold stale data blocks, but nothing
 * reads data through the page cache, and writeback writes only the
 * blocks that were written.
 *
 * The state machine (shared by both backends): an IO is a sequence of
 * steps, and io->stage says which.
 *   READ/WRITE  RW: direct, buffered or RMW per step (data_step), the
 *               rest resubmitted after a short transfer (done_bytes).  FUA
 *               writes carry RWF_DSYNC (a FUA write on O_DIRECT, a range
 *               sync when buffered), so they need no second step.
 *   FLUSH       fdatasync (fd).
 *   TRIM        fallocate PUNCH_HOLE | KEEP_SIZE of the whole blocks in
 *               the range (trim is advisory), then SYNC with FUA; nothing
 *               where holes cannot be punched (EOPNOTSUPP).
 *   ZERO        the whole-block middle: ZPUNCH (with MAY_TRIM) -> ZRANGE
 *               (ZERO_RANGE | KEEP_SIZE) -> ZWRITE (zero_buf, piece by
 *               piece), each tried when the one before is refused with
 *               EOPNOTSUPP; then the partial blocks at the edges, ZHEAD
 *               and ZTAIL, by RMW; then SYNC with FUA.  FAST_ZERO stops
 *               with -ENOTSUP before ZWRITE (and before ZRANGE on a block
 *               device, where the kernel may write zeroes itself), before
 *               anything was changed.
 * "Whole blocks" are dio_align blocks when dfd >= 0, logical blocks on a
 * buffered block device (fallocate wants them), bytes on a buffered file.
 * What fallocate refused is remembered in st->no_punch/no_zero_range.
 *
 * Durability: fd and dfd are the same inode, so fdatasync (fd) covers
 * both (and the metadata of extents that O_DIRECT writes allocated):
 * FLUSH and SYNC use fd.  Their steps, and FUA writes (a range sync),
 * are counted while in flight and when they fail (store-sync.c).
 *
 *
 * Locking: none here but rmw_lock (struct store), which serialises RMW
 * steps: two RMWs of partial blocks in the same block must not
 * interleave.  An RMW and a direct IO touch the same block only if their
 * bytes overlap, and overlapping IOs in flight together have no defined
 * result anyway (the client orders overlapping writes, DESIGN 4).
 */

#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "rmr-storaged"
#endif

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "error.h"
#include "fdio.h"
#include "util.h"

#define ZERO_BUF_SIZE (256 * 1024)
#define RMW_BUF_SIZE (1024 * 1024)

#define NO_PUNCH_MSG "cannot punch holes: trim does nothing"
#define NO_ZERO_RANGE_MSG "no fallocate ZERO_RANGE: zero writes zeroes"

/* Read-only zeroes for ZWRITE, aligned for O_DIRECT (dio_mem_align <=
 * 4096); in .bss, so the pages are the kernel's shared zero page.
 */
static char zero_buf[ZERO_BUF_SIZE] __attribute__ ((aligned (4096)));

enum stage {
  ST_NOP,
  ST_RW,
  ST_FLUSH,
  ST_TRIM,
  ST_ZPUNCH, /* the ZERO stages, in this order */
  ST_ZRANGE,
  ST_ZWRITE,
  ST_ZHEAD,
  ST_ZTAIL,
  ST_SYNC, /* fdatasync after FUA trim/zero */
};

/* The unit of fallocate and of direct IO (see the top). */
static uint64_t
block_align (const struct store *st)
{
  if (st->dfd >= 0)
    return st->dio_align;
  return st->is_bdev ? st->block_size : 1;
}

/* The whole blocks of a TRIM or ZERO: start in *off, returns the length
 * (0: none).
 */
static uint64_t
middle (const struct store *st, const struct store_io *io, uint64_t *off)
{
  uint64_t a = block_align (st);
  uint64_t start = st->data_offset + io->offset;
  uint64_t end = (start + io->len) & ~(a - 1);

  start = round_up (start, a);
  *off = start;
  return end > start ? end - start : 0;
}

/* The partial blocks of a ZERO: the head edge before the middle, the
 * tail edge after it; with no middle, the head edge is all of it.
 */
static uint64_t
edge (const struct store *st, const struct store_io *io, bool tail,
      uint64_t *off)
{
  uint64_t start = st->data_offset + io->offset;
  uint64_t end = start + io->len;
  uint64_t moff, mlen = middle (st, io, &moff);

  if (mlen == 0) {
    *off = start;
    return tail ? 0 : io->len;
  }
  *off = tail ? moff + mlen : start;
  return tail ? end - (moff + mlen) : moff - start;
}

/* A transfer of [off, off + len) from or to buf (WRITE: NULL means
 * zeroes; len must then be at most ZERO_BUF_SIZE unless it is RMW).
 */
static void
data_step (const struct store *st, struct store_step *s, bool write, void *buf,
           uint64_t off, uint64_t len)
{
  const void *b = buf ? buf : zero_buf;

  s->off = off;
  s->len = len;
  if (st->dfd >= 0 && ((uintptr_t) b % st->dio_mem_align != 0 ||
                       (off | len) % st->dio_align != 0)) {
    s->kind = write ? STORE_STEP_RMW_WRITE : STORE_STEP_RMW_READ;
    s->fd = st->dfd;
    s->buf = buf;
    s->len = MIN (len, RMW_BUF_SIZE); /* the rest in the next step */
    return;
  }
  s->kind = write ? STORE_STEP_WRITE : STORE_STEP_READ;
  s->fd = st->dfd >= 0 ? st->dfd : st->fd;
  s->buf = buf ? buf : zero_buf;
  assert (buf != NULL || len <= ZERO_BUF_SIZE);
}

/* The first ZERO middle stage after `after` worth trying, or -ENOTSUP. */
static int
zero_stage (const struct store *st, const struct store_io *io, int after)
{
  bool fast = io->flags & STORE_F_FAST_ZERO;

  if (after < ST_ZPUNCH && (io->flags & STORE_F_MAY_TRIM) &&
      !g_atomic_int_get (&st->no_punch))
    return ST_ZPUNCH;
  if (after < ST_ZRANGE && !g_atomic_int_get (&st->no_zero_range) &&
      !(fast && st->is_bdev))
    return ST_ZRANGE;
  if (fast)
    return -ENOTSUP;
  return ST_ZWRITE;
}

/* The ZERO edge stage after `after`, or ST_SYNC when none is left. */
static int
edge_stage (const struct store *st, const struct store_io *io, int after)
{
  uint64_t off;

  if (after < ST_ZHEAD && edge (st, io, false, &off) > 0)
    return ST_ZHEAD;
  if (after < ST_ZTAIL && edge (st, io, true, &off) > 0)
    return ST_ZTAIL;
  return ST_SYNC;
}

static void
note_unsupported (struct store *st, int *flag, const char *what)
{
  if (g_atomic_int_compare_and_exchange (flag, 0, 1))
    g_message ("store %s: %s", st->path, what);
}

/* A step that syncs the file is counted while in flight (store-sync.c):
 * once, however often the step is built again before it completes.
 */
static void
sync_begin (struct store *st, struct store_io *io)
{
  if (!io->sync_ticket)
    io->sync_ticket = store_sync_begin (st);
}

void
store_io_sync_end (struct store *st, struct store_io *io, int res)
{
  if (io->sync_ticket) {
    store_sync_end (st, io->sync_ticket, res);
    io->sync_ticket = 0;
  }
}

void
store_io_step (struct store *st, struct store_io *io, struct store_step *s)
{
  uint64_t off, len;

  memset (s, 0, sizeof *s);
  s->fd = st->fd;
  switch ((enum stage) io->stage) {
  case ST_NOP: s->kind = STORE_STEP_NOP; break;
  case ST_RW:
    data_step (st, s, io->op == STORE_WRITE, (char *) io->buf + io->done_bytes,
               st->data_offset + io->offset + io->done_bytes,
               io->len - io->done_bytes);
    if (io->op == STORE_WRITE && (io->flags & STORE_F_FUA)) {
      s->mode = RWF_DSYNC;
      sync_begin (st, io);
    }
    break;
  case ST_FLUSH:
  case ST_SYNC:
    s->kind = STORE_STEP_FSYNC;
    sync_begin (st, io);
    break;
  case ST_TRIM:
  case ST_ZPUNCH:
  case ST_ZRANGE:
    s->kind = STORE_STEP_FALLOCATE;
    s->mode =
      (io->stage == ST_ZRANGE ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) |
      FALLOC_FL_KEEP_SIZE;
    s->len = middle (st, io, &s->off);
    break;
  case ST_ZWRITE:
    len = middle (st, io, &off);
    data_step (st, s, true, NULL, off + io->done_bytes,
               MIN (len - io->done_bytes, ZERO_BUF_SIZE));
    break;
  case ST_ZHEAD:
  case ST_ZTAIL:
    len = edge (st, io, io->stage == ST_ZTAIL, &off);
    data_step (st, s, true, NULL, off + io->done_bytes,
               MIN (len - io->done_bytes, ZERO_BUF_SIZE));
    break;
  default: abort ();
  }
}

int
store_io_begin (struct store *st, struct store_io *io, struct store_step *s)
{
  uint64_t end, off;
  int stage;

  if (io->op != STORE_FLUSH &&
      (ADD_OVERFLOW (io->offset, io->len, &end) || end > st->mapped_size))
    return -EINVAL;
  io->done_bytes = 0;
  io->sync_ticket = 0;
  switch (io->op) {
  case STORE_READ:
  case STORE_WRITE:
    if (io->buf == NULL && io->len > 0)
      return -EINVAL;
    stage = io->len > 0 ? ST_RW : ST_NOP;
    break;
  case STORE_FLUSH: stage = ST_FLUSH; break;
  case STORE_TRIM:
    stage = g_atomic_int_get (&st->no_punch) || middle (st, io, &off) == 0
              ? ST_NOP
              : ST_TRIM;
    break;
  case STORE_ZERO:
    if (io->len == 0)
      stage = ST_NOP;
    else if (middle (st, io, &off) > 0)
      stage = zero_stage (st, io, ST_NOP);
    else
      stage = edge_stage (st, io, ST_NOP);
    if (stage < 0)
      return stage;
    break;
  default: return -EINVAL;
  }
  io->stage = stage;
  store_io_step (st, io, s);
  return 0;
}

/* Go to stage `next`, where ST_SYNC means: sync if FUA, else finished. */
static bool
next_stage (struct store_io *io, int next, int *result)
{
  io->done_bytes = 0;
  if (next == ST_SYNC && !(io->flags & STORE_F_FUA)) {
    *result = 0;
    return false;
  }
  io->stage = next;
  return true;
}

/* A transfer step returned res: more of the same stage to do? */
static bool
transfer_done (struct store_io *io, int res, uint64_t len, int *result)
{
  if (res <= 0) {
    *result = res < 0 ? res : -EIO; /* 0: past the end of the file */
    return false;
  }
  io->done_bytes += res;
  *result = 0;
  return io->done_bytes < len;
}

static bool
step_done (struct store *st, struct store_io *io, int res, int *result)
{
  uint64_t off, len;
  int next;

  store_io_sync_end (st, io, res);
  if (res == -EINTR || res == -EAGAIN)
    return true; /* the same step again */
  switch ((enum stage) io->stage) {
  case ST_RW: return transfer_done (io, res, io->len, result);
  case ST_ZWRITE:
  case ST_ZHEAD:
  case ST_ZTAIL:
    len = io->stage == ST_ZWRITE ? middle (st, io, &off)
                                 : edge (st, io, io->stage == ST_ZTAIL, &off);
    if (transfer_done (io, res, len, result))
      return true;
    if (*result < 0)
      return false;
    return next_stage (io, edge_stage (st, io, io->stage), result);
  case ST_TRIM:
    if (res == -EOPNOTSUPP) {
      note_unsupported (st, &st->no_punch, NO_PUNCH_MSG);
      *result = 0;
      return false;
    }
    if (res < 0) {
      *result = res;
      return false;
    }
    return next_stage (io, ST_SYNC, result);
  case ST_ZPUNCH:
  case ST_ZRANGE:
    if (res == -EOPNOTSUPP) {
      if (io->stage == ST_ZPUNCH)
        note_unsupported (st, &st->no_punch, NO_PUNCH_MSG);
      else
        note_unsupported (st, &st->no_zero_range, NO_ZERO_RANGE_MSG);
      next = zero_stage (st, io, io->stage);
      if (next < 0) {
        *result = next;
        return false;
      }
      return next_stage (io, next, result);
    }
    if (res < 0) {
      *result = res;
      return false;
    }
    return next_stage (io, edge_stage (st, io, ST_ZWRITE), result);
  case ST_NOP:
  case ST_FLUSH:
  case ST_SYNC: *result = res; return false;
  default: abort ();
  }
}

bool
store_io_step_done (struct store *st, struct store_io *io, int res,
                    struct store_step *s, int *result)
{
  if (!step_done (st, io, res, result))
    return false;
  store_io_step (st, io, s);
  return true;
}

/* One piece of an RMW: the blocks [start, start + n) hold the bytes
 * [start + from, start + from + cnt) of the transfer, at p.
 */
static int
rmw_piece (struct store *st, const struct store_step *s, uint64_t start,
           uint64_t n, uint64_t from, uint64_t cnt, char *p)
{
  uint8_t *b = st->rmw_buf;
  uint64_t a = st->dio_align, tail = (from + cnt) & ~(a - 1);
  int r;

  if (s->kind == STORE_STEP_RMW_READ) {
    r = rmr_pread_full (s->fd, b, n, start);
    if (r == 0)
      memcpy (p, b + from, cnt);
    return r;
  }
  /* Only the partial first and last blocks need their old contents. */
  if (from != 0 && (r = rmr_pread_full (s->fd, b, a, start)) < 0)
    return r;
  if ((from + cnt) % a != 0 && !(tail == 0 && from != 0) &&
      (r = rmr_pread_full (s->fd, b + tail, a, start + tail)) < 0)
    return r;
  if (p)
    memcpy (b + from, p, cnt);
  else
    memset (b + from, 0, cnt);
  return rmr_pwrite_full (s->fd, b, n, start, s->mode);
}

int
store_rmw (struct store *st, const struct store_step *s)
{
  uint64_t a = st->dio_align, pos = s->off, end = s->off + s->len;
  int r = 0;

  assert (s->kind == STORE_STEP_RMW_READ || s->kind == STORE_STEP_RMW_WRITE);
  g_mutex_lock (&st->rmw_lock);
  if (st->rmw_buf == NULL)
    st->rmw_buf = store_buf_alloc (RMW_BUF_SIZE);
  if (st->rmw_buf == NULL)
    r = -ENOMEM;
  while (r == 0 && pos < end) {
    uint64_t start = pos & ~(a - 1);
    uint64_t stop = MIN (round_up (end, a), start + RMW_BUF_SIZE);
    uint64_t cnt = MIN (end, stop) - pos;
    char *p = s->buf ? (char *) s->buf + (pos - s->off) : NULL;

    r = rmw_piece (st, s, start, stop - start, pos - start, cnt, p);
    pos += cnt;
  }
  g_mutex_unlock (&st->rmw_lock);
  return r < 0 ? r : (int) s->len;
}
