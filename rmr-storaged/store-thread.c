/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fallback backend of a store, for hosts without io_uring (disabled
 * by sysctl, or a kernel too old): a few worker threads per store run
 * the steps of store-io.c's state machine with plain system calls
 * (pread, pwritev2, fdatasync, fallocate, store_rmw), so O_DIRECT, RMW,
 * short transfers, FUA, trim and zero behave exactly as with io_uring,
 * only slower.
 *
 * Data structures: a FIFO of submitted IOs linked through io->next (no
 * allocation per IO), taken by POOL_THREADS workers; each worker runs one
 * IO from its first step to done.
 *
 * Locking: pool.lock protects the queue, inflight and stopping.  Workers
 * drop it while they run an IO.  stop sets stopping (submit refuses from
 * then on), waits for inflight to reach 0, then wakes the workers, which
 * exit once the queue is empty, and joins them.
 */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "rmr-storaged"
#endif

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"
#include "error.h"
#include "util.h"

#define POOL_THREADS 4

struct pool {
  GMutex lock; /* protects head, tail, inflight, stopping */
  GCond work;  /* the queue is not empty, or stopping */
  GCond idle;  /* inflight reached 0 */
  struct store_io *head, *tail;
  unsigned inflight; /* submitted, done not returned yet */
  bool stopping;
  unsigned nthreads;
  GThread *threads[POOL_THREADS];
};

static int
exec_step (struct store *st, const struct store_step *s)
{
  struct iovec iov;
  ssize_t r;

  switch (s->kind) {
  case STORE_STEP_NOP: return 0;
  case STORE_STEP_READ: r = pread (s->fd, s->buf, s->len, s->off); break;
  case STORE_STEP_WRITE:
    iov.iov_base = s->buf;
    iov.iov_len = s->len;
    r = pwritev2 (s->fd, &iov, 1, s->off, s->mode);
    break;
  case STORE_STEP_FSYNC: r = fdatasync (s->fd); break;
  case STORE_STEP_RMW_READ:
  case STORE_STEP_RMW_WRITE: return store_rmw (st, s);
  case STORE_STEP_FALLOCATE:
    r = fallocate (s->fd, s->mode, s->off, s->len);
    break;
  default: abort ();
  }
  /* The kernel caps one transfer below 2 GiB, so r fits an int. */
  return r < 0 ? -errno : (int) r;
}

static void
run_io (struct store *st, struct store_io *io)
{
  struct store_step s;
  int result;

  store_io_step (st, io, &s);
  while (store_io_step_done (st, io, exec_step (st, &s), &s, &result))
    ;
  if (result < 0 && result != -ENOTSUP)
    metrics_add (&st->io_errors, 1);
  io->done (io, result);
}

/* Reads and writes of a store without O_DIRECT are copies to and from
 * the page cache (tmpfs, or a file system that refuses O_DIRECT): doing
 * them in the caller's thread costs less than two thread hand-offs.
 */
int
store_submit_inline (struct store *st, struct store_io *io)
{
  struct store_step s;
  int r;

  if (st->dfd >= 0 || (io->op != STORE_READ && io->op != STORE_WRITE) ||
      (io->flags & STORE_F_FUA))
    return store_submit (st, io);
  r = store_io_begin (st, io, &s);
  if (r < 0)
    return r;
  run_io (st, io);
  return 0;
}

static gpointer
pool_thread (gpointer arg)
{
  struct store *st = arg;
  struct pool *p = st->backend;
  struct store_io *io;

  g_mutex_lock (&p->lock);
  for (;;) {
    while (p->head == NULL && !p->stopping)
      g_cond_wait (&p->work, &p->lock);
    io = p->head;
    if (io == NULL)
      break;
    p->head = io->next;
    if (p->head == NULL)
      p->tail = NULL;
    g_mutex_unlock (&p->lock);

    run_io (st, io);

    g_mutex_lock (&p->lock);
    if (--p->inflight == 0 && p->stopping) /* pool_stop waits */
      g_cond_broadcast (&p->idle);
  }
  g_mutex_unlock (&p->lock);
  return NULL;
}

static int
pool_submit (struct store *st, struct store_io *io)
{
  struct pool *p = st->backend;
  struct store_step s;
  int r;

  /* Validates io and sets its first stage; the worker redoes the step. */
  r = store_io_begin (st, io, &s);
  if (r < 0)
    return r;
  io->next = NULL;
  g_mutex_lock (&p->lock);
  if (p->stopping) {
    g_mutex_unlock (&p->lock);
    store_io_sync_end (st, io, 0); /* never ran */
    return -ESHUTDOWN;
  }
  if (p->tail)
    p->tail->next = io;
  else
    p->head = io;
  p->tail = io;
  p->inflight++;
  g_cond_signal (&p->work);
  g_mutex_unlock (&p->lock);
  return 0;
}

static void
pool_free (struct pool *p)
{
  g_cond_clear (&p->idle);
  g_cond_clear (&p->work);
  g_mutex_clear (&p->lock);
  g_free (p);
}

static void
pool_stop (struct store *st)
{
  struct pool *p = st->backend;
  unsigned i;

  g_mutex_lock (&p->lock);
  p->stopping = true;
  while (p->inflight > 0)
    g_cond_wait (&p->idle, &p->lock);
  g_cond_broadcast (&p->work);
  g_mutex_unlock (&p->lock);
  for (i = 0; i < p->nthreads; i++)
    g_thread_join (p->threads[i]);
  pool_free (p);
  st->backend = NULL;
  st->ops = NULL;
}

const struct store_ops store_thread_ops = {
  .name = "threads",
  .submit = pool_submit,
  .stop = pool_stop,
};

int
store_thread_start (struct store *st)
{
  struct pool *p = g_new0 (struct pool, 1);
  g_autoptr (GError) err = NULL;

  g_mutex_init (&p->lock);
  g_cond_init (&p->work);
  g_cond_init (&p->idle);
  st->backend = p;
  st->ops = &store_thread_ops;
  for (p->nthreads = 0; p->nthreads < POOL_THREADS; p->nthreads++) {
    p->threads[p->nthreads] =
      g_thread_try_new ("store-io", pool_thread, st, &err);
    if (p->threads[p->nthreads] == NULL)
      break;
  }
  if (p->nthreads == 0) {
    pool_free (p);
    st->backend = NULL;
    st->ops = NULL;
    return rmr_err (EAGAIN, "store %s: starting the IO threads: %s", st->path,
                    err->message);
  }
  return 0;
}

/* Synchronous store IO (internal.h). */
struct sync_io {
  struct store_io io;
  GMutex lock;
  GCond cond;
  bool done;
  int res;
};

static void
sync_io_done_cb (struct store_io *io, int res)
{
  struct sync_io *s = container_of (io, struct sync_io, io);

  g_mutex_lock (&s->lock);
  s->res = res;
  s->done = true;
  g_cond_signal (&s->cond);
  g_mutex_unlock (&s->lock);
}

int
store_io_wait (struct store *st, enum store_op op, void *buf, uint64_t off,
               uint32_t len)
{
  struct sync_io s = {.io = {.op = op,
                             .buf = buf,
                             .offset = off,
                             .len = len,
                             .done = sync_io_done_cb}};
  int r;

  g_mutex_init (&s.lock);
  g_cond_init (&s.cond);
  r = store_submit (st, &s.io);
  if (r == 0) {
    g_mutex_lock (&s.lock);
    while (!s.done)
      g_cond_wait (&s.cond, &s.lock);
    g_mutex_unlock (&s.lock);
    r = s.res;
  }
  g_mutex_clear (&s.lock);
  g_cond_clear (&s.cond);
  return r;
}

int
store_zero_wait (struct store *st, uint64_t off, uint32_t len)
{
  off_t start = (off_t) (st->data_offset + off), d;

  if (!st->is_bdev) {
    d = lseek (st->fd, start, SEEK_DATA);
    if ((d < 0 && errno == ENXIO) || (d >= 0 && d >= start + (off_t) len))
      return 0;
  }
  return store_io_wait (st, STORE_ZERO, NULL, off, len);
}
