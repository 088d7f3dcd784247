/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The io_uring backend of a store (DESIGN 11): one ring and one
 * completion thread per store, running the steps of store-io.c.  If
 * io_uring is not available (disabled by sysctl, too old a kernel), or
 * RMR_STORE_IO=threads asks for it (valgrind cannot follow io_uring),
 * store_file_start hands the store to store-thread.c instead.
 *
 * The ring: submit may be called from any thread.  ring.lock serialises
 * taking an SQE and io_uring_submit; it is never held while waiting for
 * completions.  The completion thread reaps CQEs without it, runs the
 * next step of the IO (taking the lock to queue it) or calls done.  An
 * RMW step is queued as a NOP and run synchronously by the completion
 * thread when the NOP completes (a rare path: only IO the client did not
 * align).  inflight counts IOs whose done has not returned; submitters
 * from other threads wait (back-pressure) while it is at
 * RING_MAX_INFLIGHT, so the CQ ring (RING_CQ_ENTRIES) cannot overflow;
 * done callbacks never wait (the completion thread must keep reaping) and
 * use the spare half.  stop waits for inflight to reach 0, then queues a
 * NOP tagged stop_tag that ends the completion thread.
 */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "rmr-storaged"
#endif

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "internal.h"
#include "error.h"
#include "util.h"

#define RING_SQ_ENTRIES 256
#define RING_CQ_ENTRIES 8192
#define RING_MAX_INFLIGHT (RING_CQ_ENTRIES / 2)

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
  case STORE_STEP_NOP:
  case STORE_STEP_RMW_READ:
  case STORE_STEP_RMW_WRITE: /* run by the completion thread */
    io_uring_prep_nop (sqe);
    break;
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
    store_io_sync_end (st, io, 0); /* never ran */
    return -ESHUTDOWN;
  }
  g_atomic_int_inc (&rg->inflight);
  ring_push_unlocked (rg, &s, io);
  g_mutex_unlock (&rg->lock);
  return 0;
}

static bool
is_rmw (const struct store_step *s)
{
  return s->kind == STORE_STEP_RMW_READ || s->kind == STORE_STEP_RMW_WRITE;
}

/* One CQE of io: run RMW steps (queued as NOPs) here, queue its next
 * step, or call done.  Returns 1 if io finished.
 */
static int
ring_complete (struct store *st, struct ring *rg, struct store_io *io, int res)
{
  struct store_step s;
  int result;

  store_io_step (st, io, &s);
  do {
    if (is_rmw (&s))
      res = store_rmw (st, &s);
    if (!store_io_step_done (st, io, res, &s, &result)) {
      if (result < 0 && result != -ENOTSUP)
        metrics_add (&st->io_errors, 1);
      io->done (io, result);
      return 1;
    }
  } while (is_rmw (&s));
  g_mutex_lock (&rg->lock);
  ring_push_unlocked (rg, &s, io);
  g_mutex_unlock (&rg->lock);
  return 0;
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
  const char *want = g_getenv ("RMR_STORE_IO");
  int r;

  r = want != NULL && strcmp (want, "threads") == 0 ? -ECANCELED
                                                    : ring_init (&rg->ring);
  if (r < 0) {
    g_free (rg);
    if (g_once_init_enter (&logged)) {
      if (r == -ECANCELED)
        g_message ("RMR_STORE_IO=threads: stores use IO threads");
      else
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
