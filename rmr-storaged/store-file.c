/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file backend of a store: IO on a regular file or a block device
 * through io_uring (DESIGN 11), with one ring and one completion thread
 * per store.  If io_uring is not available (disabled by sysctl, too old a
 * kernel) it hands the store to store-thread.c, which runs the same steps
 * with plain system calls.
 *
 * The state machine (shared by both backends): an IO is a sequence of
 * steps, one system call each, and io->stage says which.
 *   READ/WRITE  RW, resubmitting the rest after a short transfer
 *               (io->done_bytes).  FUA writes carry RWF_DSYNC, which
 *               makes that one write durable (a FUA write on O_DIRECT, a
 *               range sync when buffered), so they need no second step.
 *   FLUSH       fdatasync (fd).
 *   TRIM        fallocate PUNCH_HOLE | KEEP_SIZE, then SYNC with FUA.  A
 *               store that cannot punch holes (EOPNOTSUPP) does nothing:
 *               trim is advisory.  On a block device the range is first
 *               shrunk to whole logical blocks (fallocate requires them).
 *   ZERO        ZPUNCH (with MAY_TRIM) -> ZRANGE (ZERO_RANGE | KEEP_SIZE)
 *               -> ZWRITE (write zeroes from zero_buf, piece by piece),
 *               each tried when the one before is refused with
 *               EOPNOTSUPP; then SYNC with FUA.  FAST_ZERO stops with
 *               -ENOTSUP before ZWRITE, and before ZRANGE on a block
 *               device, where the kernel may write zeroes itself.
 * What fallocate refused is remembered in st->no_punch/no_zero_range, so
 * later IOs skip it.
 *
 * O_DIRECT and the page cache: a step uses dfd only when the buffer, the
 * offset and the length are all multiples of 4096 (and of the logical
 * block size), else the buffered fd.  4096, not 512: the page cache works
 * in pages, so with page-aligned direct IO a direct and a buffered IO can
 * share a page only if they overlap byte-wise.  The kernel writes back
 * dirty pages before a direct read or write of a range and drops them
 * after a direct write, so IOs that do not overlap in time are coherent
 * whatever fd each used; IOs that overlap in both time and bytes have no
 * defined result anyway (the client orders overlapping writes, DESIGN 4).
 * Durability: fd and dfd are the same inode, so fdatasync (fd) writes
 * back its dirty pages, the metadata of extents that O_DIRECT writes
 * allocated, and flushes the device cache, covering both: FLUSH and SYNC
 * use fd only.
 *
 * The ring: submit may be called from any thread.  ring.lock serialises
 * taking an SQE and io_uring_submit; it is never held while waiting for
 * completions.  The completion thread reaps CQEs without it, runs the
 * next step of the IO (taking the lock to queue it) or calls done.
 * inflight counts IOs whose done has not returned; submitters from other
 * threads wait (back-pressure) while it is at RING_MAX_INFLIGHT, so the
 * CQ ring (RING_CQ_ENTRIES) cannot overflow; done callbacks never wait
 * (the completion thread must keep reaping) and use the spare half.
 * stop waits for inflight to reach 0, then queues a NOP tagged stop_tag
 * that ends the completion thread.
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

#include <liburing.h>

#include "internal.h"
#include "error.h"
#include "util.h"

#define DIRECT_ALIGN 4096
#define ZERO_BUF_SIZE (256 * 1024)
#define RING_SQ_ENTRIES 256
#define RING_CQ_ENTRIES 8192
#define RING_MAX_INFLIGHT (RING_CQ_ENTRIES / 2)

#define NO_PUNCH_MSG "cannot punch holes: trim does nothing"
#define NO_ZERO_RANGE_MSG "no fallocate ZERO_RANGE: zero writes zeroes"

/* Read-only zeroes for ZWRITE, aligned for O_DIRECT; in .bss, so the
 * pages are the kernel's shared zero page until something reads them.
 */
static char zero_buf[ZERO_BUF_SIZE] __attribute__ ((aligned (DIRECT_ALIGN)));

enum stage {
  ST_NOP,
  ST_RW,
  ST_RW_BUF, /* RW, buffered after dfd refused it */
  ST_FLUSH,
  ST_TRIM,
  ST_ZPUNCH, /* the three ZERO stages in fallback order */
  ST_ZRANGE,
  ST_ZWRITE,
  ST_SYNC, /* fdatasync after FUA trim/zero */
};

static int
pick_fd (const struct store *st, const void *buf, uint64_t off, uint64_t len,
         bool buffered)
{
  uint64_t align = MAX (st->block_size, DIRECT_ALIGN);

  if (!buffered && st->dfd >= 0 && (uintptr_t) buf % DIRECT_ALIGN == 0 &&
      off % align == 0 && len % align == 0)
    return st->dfd;
  return st->fd;
}

/* The byte range TRIM may punch: on a block device, whole logical blocks
 * inside the request (maybe none).
 */
static uint64_t
trim_range (const struct store *st, const struct store_io *io, uint64_t *off)
{
  uint64_t start = st->data_offset + io->offset;
  uint64_t end = start + io->len;

  if (st->is_bdev) {
    start = round_up (start, st->block_size);
    end &= ~(uint64_t) (st->block_size - 1);
  }
  *off = start;
  return end > start ? end - start : 0;
}

static bool
zero_aligned (const struct store *st, const struct store_io *io)
{
  return !st->is_bdev ||
         ((st->data_offset + io->offset) | io->len) % st->block_size == 0;
}

/* The first ZERO stage after `after` worth trying, or -ENOTSUP. */
static int
zero_stage (const struct store *st, const struct store_io *io, int after)
{
  bool fast = io->flags & STORE_F_FAST_ZERO;

  if (after < ST_ZPUNCH && (io->flags & STORE_F_MAY_TRIM) &&
      zero_aligned (st, io) && !g_atomic_int_get (&st->no_punch))
    return ST_ZPUNCH;
  if (after < ST_ZRANGE && zero_aligned (st, io) &&
      !g_atomic_int_get (&st->no_zero_range) && !(fast && st->is_bdev))
    return ST_ZRANGE;
  if (fast)
    return -ENOTSUP;
  return ST_ZWRITE;
}

static void
note_unsupported (struct store *st, int *flag, const char *what)
{
  if (g_atomic_int_compare_and_exchange (flag, 0, 1))
    g_message ("store %s: %s", st->path, what);
}

void
store_io_step (struct store *st, struct store_io *io, struct store_step *s)
{
  memset (s, 0, sizeof *s);
  s->fd = st->fd;
  switch ((enum stage) io->stage) {
  case ST_NOP: s->kind = STORE_STEP_NOP; break;
  case ST_RW:
  case ST_RW_BUF:
    s->kind = io->op == STORE_READ ? STORE_STEP_READ : STORE_STEP_WRITE;
    s->buf = (char *) io->buf + io->done_bytes;
    s->off = st->data_offset + io->offset + io->done_bytes;
    s->len = io->len - io->done_bytes;
    s->fd = pick_fd (st, s->buf, s->off, s->len, io->stage == ST_RW_BUF);
    if (io->op == STORE_WRITE && (io->flags & STORE_F_FUA))
      s->mode = RWF_DSYNC;
    break;
  case ST_FLUSH:
  case ST_SYNC: s->kind = STORE_STEP_FSYNC; break;
  case ST_TRIM:
    s->kind = STORE_STEP_FALLOCATE;
    s->mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    s->len = trim_range (st, io, &s->off);
    break;
  case ST_ZPUNCH:
  case ST_ZRANGE:
    s->kind = STORE_STEP_FALLOCATE;
    s->mode =
      (io->stage == ST_ZPUNCH ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
      FALLOC_FL_KEEP_SIZE;
    s->off = st->data_offset + io->offset;
    s->len = io->len;
    break;
  case ST_ZWRITE:
    s->kind = STORE_STEP_WRITE;
    s->buf = zero_buf;
    s->off = st->data_offset + io->offset + io->done_bytes;
    s->len = MIN (io->len - io->done_bytes, ZERO_BUF_SIZE);
    s->fd = pick_fd (st, s->buf, s->off, s->len, false);
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
  switch (io->op) {
  case STORE_READ:
  case STORE_WRITE:
    if (io->buf == NULL && io->len > 0)
      return -EINVAL;
    stage = io->len > 0 ? ST_RW : ST_NOP;
    break;
  case STORE_FLUSH: stage = ST_FLUSH; break;
  case STORE_TRIM:
    stage = g_atomic_int_get (&st->no_punch) || trim_range (st, io, &off) == 0
              ? ST_NOP
              : ST_TRIM;
    break;
  case STORE_ZERO:
    stage = io->len > 0 ? zero_stage (st, io, ST_NOP) : ST_NOP;
    if (stage < 0)
      return stage;
    break;
  default: return -EINVAL;
  }
  io->stage = stage;
  store_io_step (st, io, s);
  return 0;
}

/* After a step that changed data: SYNC for FUA, else finished. */
static bool
modified (struct store_io *io, int *result)
{
  if (io->flags & STORE_F_FUA) {
    io->stage = ST_SYNC;
    return true;
  }
  *result = 0;
  return false;
}

static bool
step_done (struct store *st, struct store_io *io, int res, int *result)
{
  int next;

  if (res == -EINTR || res == -EAGAIN)
    return true; /* the same step again */
  switch ((enum stage) io->stage) {
  case ST_RW:
  case ST_ZWRITE:
  case ST_RW_BUF:
    if (res == -EINVAL && io->stage == ST_RW && st->dfd >= 0) {
      struct store_step s;

      /* The device wants more alignment than we judged: go buffered. */
      store_io_step (st, io, &s);
      if (s.fd == st->dfd) {
        io->stage = ST_RW_BUF;
        return true;
      }
    }
    if (res <= 0) {
      *result = res < 0 ? res : -EIO; /* 0: past the end of the file */
      return false;
    }
    io->done_bytes += res;
    if (io->done_bytes < io->len)
      return true;
    if (io->stage == ST_ZWRITE)
      return modified (io, result);
    *result = 0;
    return false;
  case ST_TRIM:
    if (res == -EOPNOTSUPP) {
      note_unsupported (st, &st->no_punch, NO_PUNCH_MSG);
      *result = 0;
      return false;
    }
    break;
  case ST_ZPUNCH:
  case ST_ZRANGE:
    if (res != -EOPNOTSUPP)
      break;
    if (io->stage == ST_ZPUNCH)
      note_unsupported (st, &st->no_punch, NO_PUNCH_MSG);
    else
      note_unsupported (st, &st->no_zero_range, NO_ZERO_RANGE_MSG);
    next = zero_stage (st, io, io->stage);
    if (next < 0) {
      *result = next;
      return false;
    }
    io->stage = next;
    io->done_bytes = 0;
    return true;
  case ST_NOP:
  case ST_FLUSH:
  case ST_SYNC: *result = res; return false;
  default: abort ();
  }
  /* TRIM, ZPUNCH, ZRANGE with a result other than EOPNOTSUPP. */
  if (res < 0) {
    *result = res;
    return false;
  }
  return modified (io, result);
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

/* The io_uring backend. */

struct ring {
  struct io_uring ring;
  GThread *thread;
  GMutex lock;  /* protects the SQ side of ring, stopping */
  GCond cond;   /* inflight went down (with lock) */
  int inflight; /* atomic: IOs whose done has not returned */
  int waiters;  /* atomic: threads waiting on cond */
  bool stopping;
};

/* user_data of the NOP that ends the completion thread. */
static char stop_tag;

/* The ring whose completion thread this is, if any. */
static __thread struct ring *completing;

static void
ring_push_unlocked (struct ring *rg, const struct store_step *s, void *data)
{
  struct io_uring_sqe *sqe;
  int r;

  /* Every push submits before it unlocks, so the SQ ring is empty. */
  sqe = io_uring_get_sqe (&rg->ring);
  if (sqe == NULL)
    abort ();
  switch (s->kind) {
  case STORE_STEP_NOP: io_uring_prep_nop (sqe); break;
  case STORE_STEP_READ:
    io_uring_prep_read (sqe, s->fd, s->buf, s->len, s->off);
    break;
  case STORE_STEP_WRITE:
    io_uring_prep_write (sqe, s->fd, s->buf, s->len, s->off);
    sqe->rw_flags = s->mode;
    break;
  case STORE_STEP_FSYNC:
    io_uring_prep_fsync (sqe, s->fd, IORING_FSYNC_DATASYNC);
    break;
  case STORE_STEP_FALLOCATE:
    io_uring_prep_fallocate (sqe, s->fd, s->mode, s->off, s->len);
    break;
  default: abort ();
  }
  io_uring_sqe_set_data (sqe, data);

  while (io_uring_sq_ready (&rg->ring) > 0) {
    r = io_uring_submit (&rg->ring);
    if (r >= 0 || r == -EINTR)
      continue;
    if (r != -EAGAIN && r != -EBUSY && r != -ENOMEM)
      abort ();
    /* The kernel is short of resources: let completions drain.  The
     * SQE stays queued; whoever holds the lock next submits it.
     */
    g_mutex_unlock (&rg->lock);
    g_usleep (100);
    g_mutex_lock (&rg->lock);
  }
}

static int
ring_submit (struct store *st, struct store_io *io)
{
  struct ring *rg = st->backend;
  struct store_step s;
  int r;

  r = store_io_begin (st, io, &s);
  if (r < 0)
    return r;
  g_mutex_lock (&rg->lock);
  if (completing != rg &&
      g_atomic_int_get (&rg->inflight) >= RING_MAX_INFLIGHT) {
    /* waiters first, then inflight: the completion thread decrements
     * inflight, then reads waiters, so one of us sees the other.
     */
    g_atomic_int_inc (&rg->waiters);
    while (g_atomic_int_get (&rg->inflight) >= RING_MAX_INFLIGHT &&
           !rg->stopping)
      g_cond_wait (&rg->cond, &rg->lock);
    g_atomic_int_add (&rg->waiters, -1);
  }
  if (rg->stopping) {
    g_mutex_unlock (&rg->lock);
    return -ESHUTDOWN;
  }
  g_atomic_int_inc (&rg->inflight);
  ring_push_unlocked (rg, &s, io);
  g_mutex_unlock (&rg->lock);
  return 0;
}

/* One CQE of io: queue its next step, or call done.  Returns 1 if io
 * finished.
 */
static int
ring_complete (struct store *st, struct ring *rg, struct store_io *io, int res)
{
  struct store_step s;
  int result;

  if (store_io_step_done (st, io, res, &s, &result)) {
    g_mutex_lock (&rg->lock);
    ring_push_unlocked (rg, &s, io);
    g_mutex_unlock (&rg->lock);
    return 0;
  }
  io->done (io, result);
  return 1;
}

static gpointer
ring_thread (gpointer arg)
{
  struct store *st = arg;
  struct ring *rg = st->backend;
  struct io_uring_cqe *cqe;
  bool stop = false;
  int r;

  completing = rg;
  while (!stop) {
    int finished = 0;

    r = io_uring_wait_cqe (&rg->ring, &cqe);
    if (r == -EINTR || r == -EAGAIN)
      continue;
    if (r < 0)
      abort ();
    do {
      void *data = io_uring_cqe_get_data (cqe);
      int res = cqe->res;

      /* Seen before the IO's next step is queued, so the CQ has room. */
      io_uring_cqe_seen (&rg->ring, cqe);
      if (data == &stop_tag)
        stop = true;
      else
        finished += ring_complete (st, rg, data, res);
    } while (io_uring_peek_cqe (&rg->ring, &cqe) == 0);

    if (finished > 0) {
      g_atomic_int_add (&rg->inflight, -finished);
      if (g_atomic_int_get (&rg->waiters) > 0) {
        g_mutex_lock (&rg->lock);
        g_cond_broadcast (&rg->cond);
        g_mutex_unlock (&rg->lock);
      }
    }
  }
  return NULL;
}

static void
ring_stop (struct store *st)
{
  struct ring *rg = st->backend;
  struct store_step s = {.kind = STORE_STEP_NOP};

  assert (completing != rg);
  g_mutex_lock (&rg->lock);
  rg->stopping = true;
  g_cond_broadcast (&rg->cond); /* back-pressure waiters give up */
  g_atomic_int_inc (&rg->waiters);
  while (g_atomic_int_get (&rg->inflight) > 0)
    g_cond_wait (&rg->cond, &rg->lock);
  g_atomic_int_add (&rg->waiters, -1);
  ring_push_unlocked (rg, &s, &stop_tag);
  g_mutex_unlock (&rg->lock);

  g_thread_join (rg->thread);
  io_uring_queue_exit (&rg->ring);
  g_cond_clear (&rg->cond);
  g_mutex_clear (&rg->lock);
  g_free (rg);
  st->backend = NULL;
  st->ops = NULL;
}

const struct store_ops store_file_ops = {
  .name = "io_uring",
  .submit = ring_submit,
  .stop = ring_stop,
};

/* Set up a ring that can run every step kind; -errno if not. */
static int
ring_init (struct io_uring *ring)
{
  static const int ops[] = {IORING_OP_NOP, IORING_OP_READ, IORING_OP_WRITE,
                            IORING_OP_FSYNC, IORING_OP_FALLOCATE};
  struct io_uring_params p = {
    .flags = IORING_SETUP_CQSIZE,
    .cq_entries = RING_CQ_ENTRIES,
  };
  struct io_uring_probe *probe;
  size_t i;
  int r;

  r = io_uring_queue_init_params (RING_SQ_ENTRIES, ring, &p);
  if (r < 0)
    return r;
  probe = io_uring_get_probe_ring (ring);
  for (i = 0; i < ARRAY_SIZE (ops); i++)
    if (probe == NULL || !io_uring_opcode_supported (probe, ops[i]))
      r = -EOPNOTSUPP;
  io_uring_free_probe (probe);
  if (r == 0 &&
      (p.cq_entries < RING_CQ_ENTRIES || !(p.features & IORING_FEAT_NODROP)))
    r = -EOPNOTSUPP;
  if (r < 0)
    io_uring_queue_exit (ring);
  return r;
}

int
store_file_start (struct store *st)
{
  static gsize logged;
  struct ring *rg = g_new0 (struct ring, 1);
  g_autoptr (GError) err = NULL;
  int r;

  r = ring_init (&rg->ring);
  if (r < 0) {
    g_free (rg);
    if (g_once_init_enter (&logged)) {
      g_message ("io_uring not available (%s): stores use IO threads",
                 g_strerror (-r));
      g_once_init_leave (&logged, 1);
    }
    return store_thread_start (st);
  }
  g_mutex_init (&rg->lock);
  g_cond_init (&rg->cond);
  st->backend = rg;
  rg->thread = g_thread_try_new ("store-uring", ring_thread, st, &err);
  if (rg->thread == NULL) {
    io_uring_queue_exit (&rg->ring);
    g_cond_clear (&rg->cond);
    g_mutex_clear (&rg->lock);
    g_free (rg);
    st->backend = NULL;
    return rmr_err (EAGAIN, "store %s: starting the IO thread: %s", st->path,
                    err->message);
  }
  st->ops = &store_file_ops;
  return 0;
}
