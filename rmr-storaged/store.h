/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmr-storaged's store layer (included by internal.h): the block device
 * or file that holds one member's copy of a pool, and its IO.
 */
#ifndef RMR_STORAGED_STORE_H
#define RMR_STORAGED_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "md.h"

/* store.c, store-io.c, store-file.c, store-thread.c, store-probe.c,
 * store-sync.c
 */

/* A store: the block device or regular file that holds one member's copy
 * of a pool (DESIGN 7).  The generic part (store.c) owns the superblock
 * and checks it; the backend (store-file.c, a const vtable; store-thread.c
 * where io_uring is missing) moves data, in the steps store-io.c decides.
 * Offsets given to the backend are relative to the data area.
 */
enum store_op {
  STORE_READ,
  STORE_WRITE,
  STORE_FLUSH, /* fdatasync */
  STORE_TRIM,  /* punch hole; advisory: may do nothing */
  STORE_ZERO,  /* zero range; reads back as zeroes */
};

#define STORE_F_FUA 0x1       /* write/trim/zero durable before done */
#define STORE_F_MAY_TRIM 0x2  /* zero may punch a hole */
#define STORE_F_FAST_ZERO 0x4 /* zero: -ENOTSUP unless it is cheap */

/* One IO.  The caller owns it (embedded in its request) and keeps it and
 * buf alive until done is called.  done runs on one of the backend's
 * threads with res = 0 or -errno; it must not block for long.  It may
 * submit more IO to the same store.
 */
struct store_io {
  enum store_op op;
  unsigned flags;
  void *buf;       /* READ/WRITE; see store_buf_alloc */
  uint64_t offset; /* data-area relative */
  uint32_t len;
  void (*done) (struct store_io *io, int res);
  void *opaque; /* for the caller */
  /* backend private */
  int stage;
  uint32_t done_bytes;
  uint64_t sync_ticket;  /* the step in flight syncs (store-sync.c), or 0 */
  struct store_io *next; /* queue link (store-thread.c) */
};

struct store;

struct store_ops {
  const char *name;
  /* Queue io.  Never blocks on the IO itself; it waits only as
   * back-pressure when thousands of IOs are already in flight on this
   * store (never when called from a done callback).  Returns 0 (done
   * will be called exactly once) or -errno (done will not be called):
   * -EINVAL for a range outside mapped_size or a bad op, -ENOTSUP for a
   * FAST_ZERO that would be slow (it may also come through done),
   * -ESHUTDOWN once stop has begun.
   */
  int (*submit) (struct store *st, struct store_io *io);
  /* Wait for every submitted IO to complete, stop the backend's threads,
   * release its resources (not the fds).  Not from a done callback.
   */
  void (*stop) (struct store *st);
};

enum store_state {
  STORE_OPEN,   /* attached to a server pool */
  STORE_MAPPED, /* a client maps the device */
};

struct store {
  const struct store_ops *ops; /* NULL until the backend started */
  void *backend;               /* backend private */
  char *path;                  /* as given */
  char *bdev_name;             /* basename of the device or file */
  bool is_bdev;
  int fd;                 /* buffered; holds the flock / O_EXCL */
  int dfd;                /* O_DIRECT, or -1: all IO buffered */
  uint64_t dev_size;      /* bytes */
  uint32_t block_size;    /* logical block size (smallest good IO) */
  uint32_t dio_align;     /* O_DIRECT offset and length alignment */
  uint32_t dio_mem_align; /* O_DIRECT buffer alignment (<= 4096) */
  enum store_state state;
  /* Copies of sb.data_offset and sb.mapped_size: the layout never changes
   * while the store is open, so the IO path reads these without md_lock.
   */
  uint64_t data_offset;
  uint64_t mapped_size;
  /* What fallocate refused on this store (EOPNOTSUPP), learnt on first
   * use and logged once; g_atomic, set by any IO thread.
   */
  int no_punch;
  int no_zero_range;
  /* Failed IOs (metrics), from the backends' completions. */
  atomic_uint_fast64_t io_errors;
  /* Failed syncs of the store (fdatasync, a FUA write's range sync, a
   * superblock write), wherever they came from: the kernel reports a
   * writeback error once, to whichever sync of the file comes first, so
   * a sync that succeeds says nothing of writes made before another one
   * failed (store_flush_failed, store_flush_errors).
   */
  atomic_uint_fast64_t flush_errors;
  /* The syncs in flight (store-sync.c): their tickets, under sync_lock. */
  GMutex sync_lock;
  GCond sync_cond;
  uint64_t sync_next; /* the next sync's ticket */
  GArray *syncs;      /* uint64_t tickets in flight */

  /* IO not aligned for O_DIRECT goes through rmw_buf (store-io.c). */
  GMutex rmw_lock; /* protects rmw_buf and serialises RMW */
  void *rmw_buf;   /* allocated on first use; store_buf_free */

  GMutex md_lock;   /* protects sb and superblock writes */
  struct rmr_sb sb; /* the superblock in force */
};

/* Buffers for READ/WRITE: aligned for O_DIRECT (4096).  free with
 * store_buf_free.  NULL with errno set on failure.
 */
void *store_buf_alloc (size_t len);
void store_buf_free (void *buf);

/* Format a store for a pool (create_store): path is a block device or a
 * regular file (created sparse with mode 0600, or extended, to
 * md_store_bytes (mapped_size) if smaller; a file created here is removed
 * again if create fails).  Refuses, before writing anything: (-ELOOP) a
 * symbolic link, (-EBUSY) a device another process or store holds,
 * (-EEXIST) a device whose rmr superblock it recognises, valid or damaged,
 * even with force, (-EMEDIUMTYPE) one with a foreign signature (file
 * system, partition table, RAID, LVM, swap...: the message names it;
 * callers add how to go on) unless force, and (-ENOSPC) a block device
 * too small.  force wipes the foreign signatures (store_wipe_foreign).
 * Zeroes the metadata area, writes a fresh superblock (md_init) to both
 * copies and opens the store; the data area is left as it is.  Messages
 * through error.h.
 */
int store_create (const char *path, const char *pool_name, uint32_t member_id,
                  uint64_t mapped_size, bool force, struct store **out);

/* The same for a disk replacing a member's store (add_store
 * mode=replace, replace.c): refuses any rmr metadata ("clear it first"),
 * and marks the superblock RMR_SB_F_REPLACED instead of ZEROED.
 */
int store_create_replacement (const char *path, const char *pool_name,
                              uint32_t member_id, uint64_t mapped_size,
                              bool force, struct store **out);

/* Open a store that has metadata (add_store mode=add): checks that the
 * superblock belongs to pool_name and member_id (member_id
 * RMR_MEMBER_NONE: any) and, when mapped_size is not 0, that it matches;
 * chunk_size likewise when not 0 (a store whose superblock has chunk_size
 * 0, the pool never created, matches any).  -ENODATA if the device has no
 * rmr metadata; -EBADMSG if it is damaged; -EBUSY if another process
 * holds it; -ELOOP for a symbolic link; -EINVAL with a message naming the
 * mismatch (also for a device shorter than its metadata says).
 */
int store_open (const char *path, const char *pool_name, uint32_t member_id,
                uint64_t mapped_size, uint32_t chunk_size, struct store **out);

/* Persist a changed superblock (st->sb, under md_lock held by caller).
 * The layout fields must not change.  On failure sb.seq is restored, so
 * a retry rewrites the copy that failed, never the last good one.
 */
int store_write_sb_unlocked (struct store *st);

/* The syncs of a store (store-sync.c).  fdatasync (st->fd), counted:
 * 0 or -errno.  Every sync of a store's fd goes through it, or through
 * store_sync_begin/end around it (the store IO path, superblock writes).
 */
int store_fdatasync (struct store *st);
void store_syncs_init (struct store *st);
void store_syncs_fini (struct store *st);
uint64_t store_sync_begin (struct store *st);
/* res < 0 (but EINTR, EAGAIN): counted in flush_errors. */
void store_sync_end (struct store *st, uint64_t ticket, int res);
/* Wait until every sync that began before this call ended (false: one
 * did not within a few seconds).  Then store_flush_errors counts every
 * failure of those.
 */
bool store_syncs_wait (struct store *st);
static inline void
store_flush_failed (struct store *st)
{
  atomic_fetch_add (&st->flush_errors, 1);
}
/* The count of failed syncs so far: sampled before a write, and compared
 * after the flush that makes it durable, it says whether a writeback
 * error of that write may have gone to another sync.
 */
static inline uint64_t
store_flush_errors (struct store *st)
{
  return atomic_load (&st->flush_errors);
}

/* Wipe the superblock (delete_store); takes md_lock. */
int store_wipe (struct store *st);

/* Stop the backend and close; NULL allowed. */
void store_close (struct store *st);

static inline int
store_submit (struct store *st, struct store_io *io)
{
  return st->ops->submit (st, io);
}

/* Like store_submit, but a read or write of a store without O_DIRECT
 * runs in the calling thread (done is called before it returns): a copy
 * to or from the page cache is cheaper than two thread hand-offs.
 */
int store_submit_inline (struct store *st, struct store_io *io);
/* One IO, waited for (a resync worker, the online verify): 0 or -errno. */
int store_io_wait (struct store *st, enum store_op op, void *buf, uint64_t off,
                   uint32_t len);
/* Make [off, off + len) read as zeroes, waited for (a resync's fetch of
 * zeroes): nothing where the file has a hole there already (a sparse
 * store stays sparse), else a zero range, which keeps the blocks (a
 * later write there cannot fail for want of space).  The hole is asked
 * of SEEK_DATA, which counts data still in the page cache on the file
 * systems a store lives on (ext4, xfs, btrfs, tmpfs); block devices
 * always get the zero range.
 */
int store_zero_wait (struct store *st, uint64_t off, uint32_t len);

/* store-file.c: the io_uring backend for files and block devices; one
 * ring, one completion thread per store.  store_file_start falls back to
 * store-thread.c when io_uring is not available (logged once per
 * process).  Returns 0 or -errno (message).
 */
extern const struct store_ops store_file_ops;
int store_file_start (struct store *st);

/* store-io.c: the state machine both backends run.  An IO is a sequence
 * of steps, one system call each (short transfers resubmit the rest, FUA
 * trim/zero end with an fdatasync, a zero the filesystem cannot do with
 * fallocate writes zeroes), except the RMW steps, which a backend runs
 * synchronously with store_rmw on one of its threads.  While dfd is open
 * no data-area step uses the page cache: IO not aligned for O_DIRECT is
 * RMW through dfd.  Private to the store files.
 */
enum store_step_kind {
  STORE_STEP_NOP,       /* completes with 0 */
  STORE_STEP_READ,      /* pread (fd, buf, len, off) */
  STORE_STEP_WRITE,     /* pwritev2 (fd, buf, len, off, mode) */
  STORE_STEP_FSYNC,     /* fdatasync (fd) */
  STORE_STEP_FALLOCATE, /* fallocate (fd, mode, off, len) */
  STORE_STEP_RMW_READ,  /* store_rmw: read through rmw_buf */
  STORE_STEP_RMW_WRITE, /* store_rmw: write (buf NULL: zeroes) */
};

struct store_step {
  enum store_step_kind kind;
  int fd;
  int mode; /* FALLOCATE mode, or WRITE RWF_* flags */
  void *buf;
  uint64_t off; /* absolute in the file or device */
  uint64_t len;
};

/* Run an RMW step: O_DIRECT IO of the whole dio_align blocks around
 * [off, off + len) through rmw_buf, under rmw_lock.  Returns len or
 * -errno.
 */
int store_rmw (struct store *st, const struct store_step *s);

/* Validate io and set it to its first step (filled in *step); -errno
 * without side effects on the store if io cannot be queued.
 */
int store_io_begin (struct store *st, struct store_io *io,
                    struct store_step *step);
/* The step io is at, again (for a backend that did not keep it). */
void store_io_step (struct store *st, struct store_io *io,
                    struct store_step *step);
/* A sync step of io ended with res, or never ran (res 0): no longer
 * counted in flight (store-sync.c).  Done by store_io_step_done.
 */
void store_io_sync_end (struct store *st, struct store_io *io, int res);
/* The step io was at returned res (bytes, 0 or -errno): true with the
 * next step in *step, or false with the final result in *result.
 */
bool store_io_step_done (struct store *st, struct store_io *io, int res,
                         struct store_step *step, int *result);

/* store-thread.c: the fallback backend, a few threads doing the steps
 * with plain system calls.
 */
extern const struct store_ops store_thread_ops;
int store_thread_start (struct store *st);

/* store-probe.c: foreign signatures (libblkid) on a store being created,
 * read and wiped through st->fd.  Check: 0 if there is none, -EMEDIUMTYPE
 * with "store PATH: holds an ext4 file system" (every one found, if
 * several), or -errno if the device cannot be read.  Wipe: erase each
 * one (wipefs -a), logged; 0 or -errno.  Both do nothing on an empty file.
 */
int store_check_foreign (struct store *st);
int store_wipe_foreign (struct store *st);

#endif
