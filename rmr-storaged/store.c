/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stores: opening, formatting and checking the device or file that holds
 * one member's copy of a pool (DESIGN 7).  The data path is the backend's
 * (store-file.c); this file owns everything around it: exclusive access,
 * sizes, the superblock (common/md.c) and its checks.
 *
 * Data structures: struct store (internal.h), allocated here with g_new0
 * and freed by store_close, which also stops the backend and closes the
 * fds.
 *
 * Safety (issue 9): the path itself must name the store; a symbolic link
 * is refused (lstat, then O_NOFOLLOW on every open, so a link swapped in
 * meanwhile is refused too), on create and on open alike: a store is
 * known by its path (pool_find_store_path, the config), and a link can
 * be re-pointed under a running daemon's feet.  The one exception is a
 * link in /dev to a block device in /dev (udev's /dev/disk/by-id/...,
 * /dev/mapper/...): only root makes those, and they are how an
 * administrator names a disk so that a reboot does not swap it for
 * another; the device it leads to is opened, by its real path.  store_create formats
 * nothing that holds rmr metadata (EEXIST) or a foreign signature
 * (EMEDIUMTYPE, store-probe.c) unless forced, and then only the latter.
 *
 * Exclusive access: a block device is opened with O_EXCL on fd (the
 * kernel then refuses a second exclusive open and a mount); a regular
 * file gets flock (LOCK_EX | LOCK_NB) on fd.  Both last as long as fd is
 * open, so two daemons, or two stores in one daemon, never attach the
 * same device, whatever path names it (a hard link, "/tmp//x"; a loop
 * device over a store's file is another device, and not caught).  dfd
 * is a second, O_DIRECT open of the same inode (checked with fstat),
 * with its alignment from statx (STATX_DIOALIGN).  The store runs
 * buffered with dfd = -1 where O_DIRECT is refused (EINVAL: tmpfs
 * before Linux 6.6) or pointless (tmpfs since, which buffers it anyway).
 * store-io.c never mixes the two on the data area.
 *
 * Invariants once store_create/store_open returned a store:
 *   dev_size >= data_offset + mapped_size, data_offset is a multiple of
 *   block_size; data_offset and mapped_size equal st->sb's and never
 *   change; st->ops is the running backend.
 *
 * Locking: md_lock (in struct store) protects sb and the superblock
 * writes; store_write_sb_unlocked expects the caller to hold it,
 * store_wipe takes it.  Creation and opening run before the store is
 * shared, so they take no lock.
 */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "rmr-storaged"
#endif

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"
#include "error.h"
#include "fdio.h"
#include "util.h"

#define STORE_BUF_ALIGN 4096

void *
store_buf_alloc (size_t len)
{
  void *p;
  int r;

  r = posix_memalign (&p, STORE_BUF_ALIGN, len ? len : STORE_BUF_ALIGN);
  if (r != 0) {
    errno = r;
    return NULL;
  }
  return p;
}

void
store_buf_free (void *buf)
{
  free (buf);
}

static struct store *
store_new (const char *path)
{
  struct store *st = g_new0 (struct store, 1);

  st->fd = -1;
  st->dfd = -1;
  st->path = g_strdup (path);
  st->bdev_name = g_path_get_basename (path);
  g_mutex_init (&st->rmw_lock);
  g_mutex_init (&st->md_lock);
  store_syncs_init (st);
  return st;
}

void
store_close (struct store *st)
{
  if (st == NULL)
    return;
  if (st->ops)
    st->ops->stop (st);
  if (st->dfd >= 0)
    close (st->dfd);
  if (st->fd >= 0)
    close (st->fd);
  store_buf_free (st->rmw_buf);
  g_mutex_clear (&st->rmw_lock);
  g_mutex_clear (&st->md_lock);
  store_syncs_fini (st);
  g_free (st->path);
  g_free (st->bdev_name);
  g_free (st);
}

static void
store_closep (struct store **stp)
{
  store_close (*stp);
}
#define CLEANUP_STORE __attribute__ ((cleanup (store_closep)))

/* With dfd open: learn the alignment O_DIRECT needs (statx, Linux >= 6.1;
 * else the logical block size of a device, 4096 for a file), or give up
 * O_DIRECT where it brings nothing (tmpfs, whose O_DIRECT is buffered
 * internally) or where our buffers could not satisfy it.
 */
static void
direct_setup (struct store *st)
{
  struct statx stx;
  struct statfs sfs;
  const char *why = NULL;

  st->dio_align = st->is_bdev ? st->block_size : 4096;
  st->dio_mem_align = st->is_bdev ? 512 : 4096;
  if (statx (st->dfd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
      (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0) {
    st->dio_align =
      MAX (stx.stx_dio_offset_align, st->is_bdev ? st->block_size : 1);
    st->dio_mem_align = MAX (stx.stx_dio_mem_align, 1);
  }
  if (!st->is_bdev && fstatfs (st->dfd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC)
    why = "tmpfs buffers O_DIRECT anyway";
  else if (!is_power_of_2 (st->dio_align) || st->dio_align > 65536 ||
           !is_power_of_2 (st->dio_mem_align) || st->dio_mem_align > 4096)
    why = "unusual O_DIRECT alignment";
  if (why) {
    g_message ("store %s: %s: using buffered IO", st->path, why);
    close (st->dfd);
    st->dfd = -1;
  }
  else if (!st->is_bdev && st->dio_align > st->block_size)
    st->block_size = st->dio_align;
}

/* A link is refused; the message says where it leads, if anywhere. */
static int
symlink_err (const char *path)
{
  char *real = realpath (path, NULL); /* malloc'd */
  int r;

  if (real == NULL)
    return rmr_err (ELOOP, "store %s: is a symbolic link; give the real path",
                    path);
  r = rmr_err (ELOOP, "store %s: is a symbolic link; give the real path (%s)",
               path, real);
  free (real);
  return r;
}

/* A link in /dev to a block device in /dev: its real path (malloc'd);
 * any other link: NULL.
 */
static char *
dev_link_target (const char *path)
{
  struct stat stb;
  char *real;

  if (strncmp (path, "/dev/", 5) != 0)
    return NULL;
  real = realpath (path, NULL);
  if (real && (strncmp (real, "/dev/", 5) != 0 || stat (real, &stb) < 0 ||
               !S_ISBLK (stb.st_mode))) {
    free (real);
    real = NULL;
  }
  return real;
}

/* An open that failed with e: ELOOP under O_NOFOLLOW is the last
 * component being a link (else a loop in the directories above it).
 */
static int
open_err (const char *path, int e)
{
  struct stat lstb;

  if (e == ELOOP && lstat (path, &lstb) == 0 && S_ISLNK (lstb.st_mode))
    return symlink_err (path);
  return rmr_err (e, "store %s: %s", path, g_strerror (e));
}

/* Open fd (exclusively) and dfd, and learn the size and block size.
 * *created tells whether this call created the file (so the caller may
 * remove it again on a later failure).
 */
static int
open_dev (struct store *st, bool create, bool *created)
{
  const int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW;
  const char *path = st->path; /* in messages: as the admin named it */
  const char *opath = path;    /* opened: path, or where a /dev link leads */
  CLEANUP_FREE char *real = NULL;
  struct stat stb, dstb;
  bool is_bdev = false, exists;
  int e;

  *created = false;
  exists = lstat (path, &stb) == 0;
  if (exists) {
    if (S_ISLNK (stb.st_mode)) {
      real = dev_link_target (path);
      if (!real)
        return symlink_err (path);
      opath = real;
      if (lstat (opath, &stb) < 0)
        return open_err (path, errno);
    }
    is_bdev = S_ISBLK (stb.st_mode);
  }
  if (is_bdev) {
    st->fd = open (opath, flags | O_EXCL);
    if (st->fd < 0 && errno == EBUSY)
      return rmr_err (EBUSY,
                      "store %s: in use by another pool or process "
                      "(or mounted)",
                      path);
  }
  else if (create && !exists && strncmp (path, "/dev/", 5) == 0 &&
           strncmp (path, "/dev/shm/", 9) != 0)
    /* A mistyped device name; as a file it would live in RAM. */
    return rmr_err (ENOENT,
                    "store %s: no such device (a missing path in "
                    "/dev is never created as a file)",
                    path);
  else if (create) {
    /* O_EXCL: never through a link, not even a dangling one. */
    st->fd = open (path, flags | O_CREAT | O_EXCL, 0600);
    if (st->fd >= 0)
      *created = true;
    else if (errno == EEXIST)
      st->fd = open (path, flags);
  }
  else
    st->fd = open (path, flags);
  if (st->fd < 0)
    return open_err (path, errno);

  if (fstat (st->fd, &stb) < 0) {
    e = errno;
    return rmr_err (e, "store %s: fstat: %s", path, g_strerror (e));
  }
  if (!S_ISBLK (stb.st_mode) && !S_ISREG (stb.st_mode))
    return rmr_err (EINVAL, "store %s: not a block device or regular file",
                    path);
  if (!!S_ISBLK (stb.st_mode) != is_bdev)
    return rmr_err (EAGAIN, "store %s: replaced while opening", path);
  st->is_bdev = is_bdev;
  if (real) { /* the kernel's name, not the link's */
    g_free (st->bdev_name);
    st->bdev_name = g_path_get_basename (real);
  }

  if (is_bdev) {
    uint64_t size;
    int bs;

    if (ioctl (st->fd, BLKGETSIZE64, &size) < 0 ||
        ioctl (st->fd, BLKSSZGET, &bs) < 0) {
      e = errno;
      return rmr_err (e, "store %s: reading the device size: %s", path,
                      g_strerror (e));
    }
    if (bs < 512 || !is_power_of_2 (bs) || bs > RMR_DATA_ALIGN)
      return rmr_err (EINVAL, "store %s: unsupported logical block size %d",
                      path, bs);
    st->dev_size = size;
    st->block_size = bs;
  }
  else {
    if (flock (st->fd, LOCK_EX | LOCK_NB) < 0) {
      e = errno;
      *created = false; /* someone else has it now: leave it */
      if (e == EWOULDBLOCK)
        return rmr_err (EBUSY, "store %s: in use by another pool or process",
                        path);
      return rmr_err (e, "store %s: flock: %s", path, g_strerror (e));
    }
    st->dev_size = stb.st_size;
    /* The smallest IO we advertise; more if O_DIRECT needs more. */
    st->block_size = 512;
  }

  st->dfd = open (opath, flags | O_DIRECT);
  if (st->dfd < 0) {
    e = errno;
    if (e == ELOOP)
      return open_err (path, e);
    if (e != EINVAL)
      return rmr_err (e, "store %s: opening with O_DIRECT: %s", path,
                      g_strerror (e));
    g_message ("store %s: O_DIRECT refused (tmpfs?): using buffered IO", path);
  }
  else if (fstat (st->dfd, &dstb) < 0 || dstb.st_dev != stb.st_dev ||
           dstb.st_ino != stb.st_ino || dstb.st_rdev != stb.st_rdev)
    return rmr_err (EAGAIN, "store %s: replaced while opening", path);
  else
    direct_setup (st);
  return 0;
}

/* Read the superblock, or -ENODATA for a device too small to hold one
 * (a file just created).
 */
static int
read_sb (struct store *st, struct rmr_sb *sb)
{
  if (st->dev_size < 2 * RMR_SB_SIZE)
    return -ENODATA;
  return md_read (st->fd, sb, NULL);
}

/* Zero [off, off + len) of the device, synchronously, through fd: a hole
 * in a file, BLKZEROOUT on a block device, written zeroes where neither
 * works.
 */
static int
zero_sync (struct store *st, uint64_t off, uint64_t len)
{
  g_autofree char *zeroes = NULL;
  const size_t zlen = 64 * 1024;
  int e;

  if (st->is_bdev) {
    uint64_t range[2] = {off, len};

    if (ioctl (st->fd, BLKZEROOUT, range) == 0)
      return 0;
  }
  else if (fallocate (st->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
                      len) == 0)
    return 0;

  zeroes = g_malloc0 (zlen);
  for (; len > 0; off += MIN (len, zlen), len -= MIN (len, zlen)) {
    e = rmr_pwrite_full (st->fd, zeroes, MIN (len, zlen), off, 0);
    if (e < 0)
      return rmr_err (-e, "store %s: zeroing the metadata area: %s", st->path,
                      g_strerror (-e));
  }
  return 0;
}

/* The part of store_create after the device is open.  Nothing is
 * written before every check passed.
 */
static int
format_store (struct store *st, struct rmr_sb *sb, bool force, bool replace)
{
  g_autofree char *msg = NULL;
  struct rmr_sb old;
  uint64_t need;
  int r, e;

  r = read_sb (st, &old);
  if (r == 0 && replace)
    return rmr_err (EEXIST,
                    "device: %s has rmr metadata of pool '%s' member "
                    "%" PRIu32 "; a replacement disk must be empty: clear it "
                    "first (delete_store, or wipefs -a)",
                    st->path, old.pool_name, old.member_id);
  if (r == 0)
    return rmr_err (EEXIST,
                    "store %s: has rmr metadata of pool '%s' "
                    "member %" PRIu32 "; use add_store",
                    st->path, old.pool_name, old.member_id);
  if (r == -EBADMSG) {
    msg = g_strdup (rmr_get_error ());
    return rmr_err (EEXIST,
                    "store %s: has damaged rmr metadata: %s; "
                    "wipe it first",
                    st->path, msg ? msg : "unknown");
  }
  if (r != -ENODATA) {
    rmr_err_prefix ("store %s: reading metadata: ", st->path);
    return r;
  }
  if (!force) {
    r = store_check_foreign (st);
    if (r < 0)
      return r;
  }

  need = md_store_bytes (sb->mapped_size);
  assert (need == sb->data_offset + sb->mapped_size);
  if (st->dev_size < need && st->is_bdev)
    return rmr_err (ENOSPC,
                    "store %s: device is %" PRIu64 " bytes, "
                    "pool needs %" PRIu64 " (mapped_size + metadata)",
                    st->path, st->dev_size, need);
  if (sb->data_offset % st->block_size != 0)
    return rmr_err (EINVAL,
                    "store %s: block size %" PRIu32 " does not "
                    "divide the data offset",
                    st->path, st->block_size);
  /* Checked: from here on the device is ours.  Forced, first remove what
   * the check would have refused, where its owners would look for it.
   */
  if (force) {
    r = store_wipe_foreign (st);
    if (r < 0)
      return r;
  }
  if (st->dev_size < need) {
    if (ftruncate (st->fd, need) < 0) {
      e = errno;
      return rmr_err (e,
                      "store %s: cannot extend the file to %" PRIu64
                      " bytes (mapped_size + metadata): %s",
                      st->path, need, g_strerror (e));
    }
    st->dev_size = need;
  }
  st->data_offset = sb->data_offset;
  st->mapped_size = sb->mapped_size;

  r = store_file_start (st);
  if (r < 0)
    return r;

  /* Stale bytes in the map and recent-write regions of a reused device
   * must not be mistaken for ours.
   */
  r = zero_sync (st, 0, sb->data_offset);
  if (r < 0)
    return r;
  /* A data area known to read as zeroes lets a pool created on such
   * stores skip the initial sync (DESIGN 5).  Only the cheap ways count:
   * a punched file, a device that zeroes by unmapping; otherwise the
   * pool's first leg will be authoritative.
   */
  /* A replacement holds none of the pool's data, zeroes or not: it is
   * marked so, and resyncs everything (replace.c).
   */
  if (replace)
    sb->flags |= RMR_SB_F_REPLACED;
  else if (fallocate (st->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      sb->data_offset, sb->mapped_size) == 0)
    sb->flags |= RMR_SB_F_ZEROED;
  /* Both copies, so the store never depends on one. */
  st->sb = *sb;
  r = md_write (st->fd, &st->sb);
  if (r == 0)
    r = md_write (st->fd, &st->sb);
  if (r < 0) {
    msg = g_strdup (rmr_get_error ());
    md_wipe (st->fd); /* nothing half-applied; best effort */
    return rmr_err (-r, "store %s: writing metadata: %s", st->path,
                    msg ? msg : g_strerror (-r));
  }
  return 0;
}

static int
create (const char *path, const char *pool_name, uint32_t member_id,
        uint64_t mapped_size, bool force, bool replace, struct store **out)
{
  struct store *st CLEANUP_STORE = NULL;
  struct rmr_sb sb;
  bool created;
  int r;

  if (member_id > RMR_MEMBER_ID_MAX)
    return rmr_err (EINVAL, "store %s: member_id %" PRIu32 " out of range",
                    path, member_id);
  r = md_init (&sb, pool_name, member_id, mapped_size);
  if (r < 0) {
    rmr_err_prefix ("store %s: ", path);
    return r;
  }

  st = store_new (path);
  r = open_dev (st, true, &created);
  if (r == 0)
    r = format_store (st, &sb, force, replace);
  if (r < 0) {
    /* Still holding the flock: nobody else has opened it meanwhile. */
    if (created)
      unlink (path);
    return r;
  }
  st->state = STORE_OPEN;
  g_message ("store %s: created for pool '%s' member %" PRIu32 ", %" PRIu64
             " bytes (%s, %s)%s",
             path, st->sb.pool_name, member_id, mapped_size, st->ops->name,
             st->dfd >= 0 ? "O_DIRECT" : "buffered",
             replace ? ", replacing the member's disk" : "");
  *out = g_steal_pointer (&st);
  return 0;
}

int
store_create (const char *path, const char *pool_name, uint32_t member_id,
              uint64_t mapped_size, bool force, struct store **out)
{
  return create (path, pool_name, member_id, mapped_size, force, false, out);
}

int
store_create_replacement (const char *path, const char *pool_name,
                          uint32_t member_id, uint64_t mapped_size, bool force,
                          struct store **out)
{
  return create (path, pool_name, member_id, mapped_size, force, true, out);
}

int
store_open (const char *path, const char *pool_name, uint32_t member_id,
            uint64_t mapped_size, uint32_t chunk_size, struct store **out)
{
  struct store *st CLEANUP_STORE = NULL;
  struct rmr_sb sb;
  uint64_t end;
  bool created;
  int r;

  if (pool_name == NULL)
    pool_name = "";
  st = store_new (path);
  r = open_dev (st, false, &created);
  if (r < 0)
    return r;
  assert (!created);

  r = read_sb (st, &sb);
  if (r == -ENODATA)
    return rmr_err (ENODATA, "store %s: no rmr metadata; use create_store",
                    path);
  if (r == -EBADMSG) {
    rmr_err_prefix ("store %s: damaged rmr metadata: ", path);
    return r;
  }
  if (r < 0) {
    rmr_err_prefix ("store %s: reading metadata: ", path);
    return r;
  }

  if (strcmp (sb.pool_name, pool_name) != 0)
    return rmr_err (EINVAL, "store %s: belongs to pool '%s', not '%s'", path,
                    sb.pool_name, pool_name);
  if (member_id != RMR_MEMBER_NONE && sb.member_id != member_id)
    return rmr_err (EINVAL,
                    "store %s: is member %" PRIu32 " of pool '%s', "
                    "not member %" PRIu32,
                    path, sb.member_id, sb.pool_name, member_id);
  if (mapped_size != 0 && sb.mapped_size != mapped_size)
    return rmr_err (EINVAL,
                    "store %s: mapped_size is %" PRIu64 " bytes, "
                    "not %" PRIu64,
                    path, sb.mapped_size, mapped_size);
  if (chunk_size != 0 && sb.chunk_size != 0 && sb.chunk_size != chunk_size)
    return rmr_err (EINVAL, "store %s: chunk_size is %" PRIu32 ", not %" PRIu32,
                    path, sb.chunk_size, chunk_size);
  if (ADD_OVERFLOW (sb.data_offset, sb.mapped_size, &end) || end > st->dev_size)
    return rmr_err (EINVAL,
                    "store %s: device is %" PRIu64 " bytes, its "
                    "metadata says %" PRIu64 " (data_offset + mapped_size)",
                    path, st->dev_size, end);
  if (sb.data_offset % st->block_size != 0)
    return rmr_err (EINVAL,
                    "store %s: block size %" PRIu32 " does not "
                    "divide the data offset",
                    path, st->block_size);

  st->sb = sb;
  st->data_offset = sb.data_offset;
  st->mapped_size = sb.mapped_size;
  r = store_file_start (st);
  if (r < 0)
    return r;
  st->state = STORE_OPEN;
  g_message ("store %s: opened: pool '%s' member %" PRIu32 ", %" PRIu64
             " bytes, generation %" PRIu64 " (%s, %s)",
             path, sb.pool_name, sb.member_id, sb.mapped_size, sb.generation,
             st->ops->name, st->dfd >= 0 ? "O_DIRECT" : "buffered");
  *out = g_steal_pointer (&st);
  return 0;
}

int
store_write_sb_unlocked (struct store *st)
{
  uint64_t seq = st->sb.seq, t;
  int r;

  assert (st->sb.data_offset == st->data_offset);
  assert (st->sb.mapped_size == st->mapped_size);
  t = store_sync_begin (st);
  r = md_write (st->fd, &st->sb);
  store_sync_end (st, t, r); /* its fdatasync, or the write before it */
  if (r < 0) {
    st->sb.seq = seq;
    rmr_err_prefix ("store %s: writing metadata: ", st->path);
  }
  return r;
}

int
store_wipe (struct store *st)
{
  int r;

  g_mutex_lock (&st->md_lock);
  r = md_wipe (st->fd);
  g_mutex_unlock (&st->md_lock);
  if (r < 0)
    rmr_err_prefix ("store %s: wiping metadata: ", st->path);
  else
    g_message ("store %s: metadata wiped", st->path);
  return r;
}
