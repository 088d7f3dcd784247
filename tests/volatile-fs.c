/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* volatile-fs: a FUSE file system with a volatile write cache, to take a
 * storage node's disk through a power loss for real (tests/power.sh).
 *
 *   volatile-fs BACKING_DIR MOUNTPOINT [FUSE OPTIONS...]
 *
 * The files of BACKING_DIR appear at MOUNTPOINT.  What is written there
 * (write, and fallocate's punch hole and zero range) is held in memory,
 * as a disk's write cache holds it, and reaches BACKING_DIR only when the
 * file is synced (fsync, fdatasync) or the write asked for it (O_DSYNC or
 * O_SYNC: a FUA write; only the pages it wrote).  Reads see the cache
 * over the backing file.  Writing a command to MOUNTPOINT/.power:
 *
 *   cut        the power goes: every cached page of every file is lost
 *   cut SEED   as cut, but about half the cached pages (chosen from SEED)
 *              reached the disk first, as a disk may write its cache in
 *              any order before the power goes
 *   sync       everything cached is written (a clean shutdown)
 *
 * and reading it says how many pages are cached now ("cached N").
 *
 * The caller kills the file system's users first (they would otherwise go
 * on writing through the cut).  Pages are 4 KiB: a cut never tears one.
 * Creating and truncating files are durable at once (a journalling file
 * system's metadata, simplified); a file's size grown by a write is not.
 * Every open is direct IO (no kernel page cache), so after a cut nothing
 * cached by the kernel shows what the disk lost.
 *
 * Data structures: one struct vfile per backing file ever opened, kept
 * until the file system stops (its cached pages outlive the processes
 * that wrote them, as a disk's cache outlives a killed process), with a
 * hash table page number -> 4 KiB page.  Locking: one mutex, `lock`,
 * around every operation (a test helper: simple beats fast).
 */
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse.h>
#include <glib.h>

#define PAGE 4096
#define CTL "/.power"

struct vfile {
  int fd;            /* the backing file, O_RDWR */
  off_t size;        /* as seen through the mount (a write may grow it) */
  GHashTable *pages; /* page number -> PAGE bytes not yet on the backing file */
};

static char *backing;
static GMutex lock;       /* protects files and every vfile */
static GHashTable *files; /* path (relative) -> struct vfile */

static char *
real_path (const char *path)
{
  return g_strconcat (backing, path, NULL);
}

static struct vfile *
vfile_get_unlocked (const char *path, int *err)
{
  struct vfile *v = g_hash_table_lookup (files, path);
  g_autofree char *rp = NULL;
  struct stat st;

  if (v)
    return v;
  rp = real_path (path);
  v = g_new0 (struct vfile, 1);
  v->fd = open (rp, O_RDWR | O_CLOEXEC);
  if (v->fd < 0 || fstat (v->fd, &st) < 0) {
    *err = -errno;
    if (v->fd >= 0)
      close (v->fd);
    g_free (v);
    return NULL;
  }
  v->size = st.st_size;
  v->pages =
    g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  g_hash_table_insert (files, g_strdup (path), v);
  return v;
}

/* The page as the file holds it now: cached, or read from the backing
 * file (zeroes past its end).
 */
static int
page_read_unlocked (struct vfile *v, int64_t pn, uint8_t *out)
{
  uint8_t *p = g_hash_table_lookup (v->pages, &pn);
  ssize_t n;

  if (p) {
    memcpy (out, p, PAGE);
    return 0;
  }
  memset (out, 0, PAGE);
  n = pread (v->fd, out, PAGE, pn * PAGE);
  return n < 0 ? -errno : 0;
}

/* The cached copy of page pn, made from the file's contents if absent. */
static uint8_t *
page_cached_unlocked (struct vfile *v, int64_t pn, int *err)
{
  uint8_t *p = g_hash_table_lookup (v->pages, &pn);
  int64_t *key;

  if (p)
    return p;
  p = g_malloc (PAGE);
  *err = page_read_unlocked (v, pn, p);
  if (*err) {
    g_free (p);
    return NULL;
  }
  key = g_new (int64_t, 1);
  *key = pn;
  g_hash_table_insert (v->pages, key, p);
  return p;
}

static bool
all_zero (const uint8_t *p)
{
  return p[0] == 0 && !memcmp (p, p + 1, PAGE - 1);
}

/* Page pn reaches the backing file (a hole where it is all zero). */
static int
page_store_unlocked (struct vfile *v, int64_t pn, const uint8_t *p)
{
  off_t off = pn * PAGE, len = MIN ((off_t) PAGE, v->size - off);

  if (len <= 0)
    return 0; /* cut off by a truncate since */
  if (all_zero (p) &&
      fallocate (v->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) ==
        0)
    return 0;
  return pwrite (v->fd, p, len, off) == len ? 0 : -EIO;
}

static int
size_store_unlocked (struct vfile *v)
{
  struct stat st;

  if (fstat (v->fd, &st) < 0)
    return -errno;
  if (st.st_size < v->size && ftruncate (v->fd, v->size) < 0)
    return -errno;
  return 0;
}

static int
vfile_sync_unlocked (struct vfile *v)
{
  GHashTableIter it;
  gpointer k, p;
  int r = size_store_unlocked (v);

  g_hash_table_iter_init (&it, v->pages);
  while (r == 0 && g_hash_table_iter_next (&it, &k, &p)) {
    r = page_store_unlocked (v, *(int64_t *) k, p);
    if (r == 0)
      g_hash_table_iter_remove (&it);
  }
  if (r == 0 && fdatasync (v->fd) < 0)
    r = -errno;
  return r;
}

/* The power goes: a cached page reaches the disk only if `some` and the draw
 * says so; the size falls back to the backing file's.
 */
static void
cut_unlocked (bool some, uint64_t seed)
{
  GHashTableIter fi, pi;
  gpointer path, k, p;
  struct vfile *v;
  struct stat st;

  g_hash_table_iter_init (&fi, files);
  while (g_hash_table_iter_next (&fi, &path, (gpointer *) &v)) {
    g_hash_table_iter_init (&pi, v->pages);
    while (g_hash_table_iter_next (&pi, &k, &p)) {
      /* splitmix64 of seed and the page: the same cut for the same seed */
      uint64_t z = seed + *(int64_t *) k * UINT64_C (0x9e3779b97f4a7c15);
      z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
      z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
      z ^= z >> 31;
      if (some && (z & 1))
        page_store_unlocked (v, *(int64_t *) k, p);
      g_hash_table_iter_remove (&pi);
    }
    if (fstat (v->fd, &st) == 0)
      v->size = st.st_size;
    fdatasync (v->fd);
  }
}

static int
ctl_command (const char *buf, size_t len)
{
  g_autofree char *cmd = g_strstrip (g_strndup (buf, len));
  GHashTableIter fi;
  gpointer path, v;
  char *end;
  uint64_t seed;
  int r = 0;

  if (!strcmp (cmd, "cut")) {
    cut_unlocked (false, 0);
  }
  else if (!strncmp (cmd, "cut ", 4)) {
    errno = 0;
    seed = strtoull (cmd + 4, &end, 0);
    if (errno || end == cmd + 4 || *end)
      return -EINVAL;
    cut_unlocked (true, seed);
  }
  else if (!strcmp (cmd, "sync")) {
    g_hash_table_iter_init (&fi, files);
    while (r == 0 && g_hash_table_iter_next (&fi, &path, &v))
      r = vfile_sync_unlocked (v);
  }
  else {
    fprintf (stderr, "volatile-fs: %s: unknown command '%s'\n", CTL, cmd);
    return -EINVAL;
  }
  fprintf (stderr, "volatile-fs: %s\n", cmd);
  return r;
}

static int
ctl_read_unlocked (char *buf, size_t len, off_t off)
{
  g_autofree char *text = NULL;
  GHashTableIter fi;
  gpointer path;
  struct vfile *v;
  guint n = 0;
  size_t tlen;

  g_hash_table_iter_init (&fi, files);
  while (g_hash_table_iter_next (&fi, &path, (gpointer *) &v))
    n += g_hash_table_size (v->pages);
  text = g_strdup_printf ("cached %u\n", n);
  tlen = strlen (text);
  if ((size_t) off >= tlen)
    return 0;
  len = MIN (len, tlen - off);
  memcpy (buf, text + off, len);
  return len;
}

static void *
vfs_init (struct fuse_conn_info *conn, struct fuse_config *cfg)
{
  cfg->direct_io = 1;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->use_ino = 0;
  return NULL;
}

static int
vfs_getattr (const char *path, struct stat *st, struct fuse_file_info *fi)
{
  g_autofree char *rp = real_path (path);
  struct vfile *v;

  if (!strcmp (path, CTL)) {
    memset (st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0600;
    st->st_size = 64;
    st->st_nlink = 1;
    return 0;
  }
  if (lstat (rp, st) < 0)
    return -errno;
  g_mutex_lock (&lock);
  v = g_hash_table_lookup (files, path);
  if (v && S_ISREG (st->st_mode))
    st->st_size = v->size;
  g_mutex_unlock (&lock);
  return 0;
}

static int
vfs_readdir (const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
             struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
  g_autofree char *rp = real_path (path);
  DIR *d = opendir (rp);
  struct dirent *e;

  if (!d)
    return -errno;
  while ((e = readdir (d)))
    fill (buf, e->d_name, NULL, 0, 0);
  closedir (d);
  return 0;
}

static int
vfs_open_common (const char *path, struct fuse_file_info *fi)
{
  int err = 0;

  fi->direct_io = 1;
  if (!strcmp (path, CTL))
    return 0;
  g_mutex_lock (&lock);
  if (!vfile_get_unlocked (path, &err) && !err)
    err = -EIO;
  g_mutex_unlock (&lock);
  return err;
}

static int
vfs_open (const char *path, struct fuse_file_info *fi)
{
  if ((fi->flags & O_TRUNC) && strcmp (path, CTL))
    return -EINVAL; /* not needed by its users */
  return vfs_open_common (path, fi);
}

static int
vfs_create (const char *path, mode_t mode, struct fuse_file_info *fi)
{
  g_autofree char *rp = real_path (path);
  int fd = open (rp, O_RDWR | O_CREAT | O_CLOEXEC, mode);

  if (fd < 0)
    return -errno;
  close (fd);
  return vfs_open_common (path, fi);
}

static int
vfs_read (const char *path, char *buf, size_t len, off_t off,
          struct fuse_file_info *fi)
{
  uint8_t page[PAGE];
  struct vfile *v;
  size_t done = 0;
  int err = 0;

  g_mutex_lock (&lock);
  if (!strcmp (path, CTL)) {
    err = ctl_read_unlocked (buf, len, off);
    g_mutex_unlock (&lock);
    return err;
  }
  v = g_hash_table_lookup (files, path);
  if (!v) {
    err = -EBADF;
    goto out;
  }
  if (off >= v->size)
    goto out;
  len = MIN (len, (size_t) (v->size - off));
  while (done < len) {
    off_t o = off + done;
    size_t in = o % PAGE, n = MIN (len - done, PAGE - in);
    err = page_read_unlocked (v, o / PAGE, page);
    if (err)
      goto out;
    memcpy (buf + done, page + in, n);
    done += n;
  }
out:
  g_mutex_unlock (&lock);
  return err ? err : (int) done;
}

/* Data (or zeroes, buf NULL) into the cache; with dsync straight to the
 * backing file as well.
 */
static int
cache_write_unlocked (struct vfile *v, const char *buf, size_t len, off_t off,
                      bool dsync)
{
  size_t done = 0;
  int err = 0;

  while (done < len) {
    off_t o = off + done;
    size_t in = o % PAGE, n = MIN (len - done, PAGE - in);
    int64_t pn = o / PAGE;
    uint8_t *p = page_cached_unlocked (v, pn, &err);
    if (!p)
      return err;
    if (buf)
      memcpy (p + in, buf + done, n);
    else
      memset (p + in, 0, n);
    done += n;
  }
  v->size = MAX (v->size, (off_t) (off + len));
  if (!dsync)
    return 0;
  err = size_store_unlocked (v);
  for (off_t pn = off / PAGE; err == 0 && pn * PAGE < off + (off_t) len; pn++) {
    int64_t key = pn;
    err = page_store_unlocked (v, pn, g_hash_table_lookup (v->pages, &key));
    if (err == 0)
      g_hash_table_remove (v->pages, &key);
  }
  if (err == 0 && fdatasync (v->fd) < 0)
    err = -errno;
  return err;
}

static int
vfs_write (const char *path, const char *buf, size_t len, off_t off,
           struct fuse_file_info *fi)
{
  struct vfile *v;
  int err;

  g_mutex_lock (&lock);
  if (!strcmp (path, CTL))
    err = ctl_command (buf, len);
  else if (!(v = g_hash_table_lookup (files, path)))
    err = -EBADF;
  else
    err =
      cache_write_unlocked (v, buf, len, off, fi->flags & (O_DSYNC | O_SYNC));
  g_mutex_unlock (&lock);
  return err ? err : (int) len;
}

static int
vfs_fallocate (const char *path, int mode, off_t off, off_t len,
               struct fuse_file_info *fi)
{
  struct vfile *v;
  int err = 0;

  g_mutex_lock (&lock);
  v = g_hash_table_lookup (files, path);
  if (!v)
    err = -EBADF;
  else if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    if (mode & FALLOC_FL_KEEP_SIZE)
      len = MAX ((off_t) 0, MIN (len, v->size - off));
    if (mode &
        ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
      err = -EOPNOTSUPP;
    else if (len > 0)
      err = cache_write_unlocked (v, NULL, len, off, false);
  }
  else if (mode == 0)
    v->size = MAX (v->size, off + len);
  else
    err = -EOPNOTSUPP;
  g_mutex_unlock (&lock);
  return err;
}

static int
vfs_truncate (const char *path, off_t size, struct fuse_file_info *fi)
{
  struct vfile *v;
  int err = 0;

  if (!strcmp (path, CTL))
    return 0; /* echo cut >.power opens it O_TRUNC */
  g_mutex_lock (&lock);
  v = vfile_get_unlocked (path, &err);
  if (v) {
    err = vfile_sync_unlocked (v);
    if (err == 0 && ftruncate (v->fd, size) < 0)
      err = -errno;
    if (err == 0)
      v->size = size;
  }
  g_mutex_unlock (&lock);
  return err;
}

static int
vfs_fsync (const char *path, int datasync, struct fuse_file_info *fi)
{
  struct vfile *v;
  int err = 0;

  g_mutex_lock (&lock);
  v = g_hash_table_lookup (files, path);
  if (v)
    err = vfile_sync_unlocked (v);
  g_mutex_unlock (&lock);
  return err;
}

static int
vfs_statfs (const char *path, struct statvfs *st)
{
  return statvfs (backing, st) < 0 ? -errno : 0;
}

static int
vfs_unlink (const char *path)
{
  g_autofree char *rp = real_path (path);

  g_mutex_lock (&lock);
  g_hash_table_remove (files, path); /* not open: its users are gone */
  g_mutex_unlock (&lock);
  return unlink (rp) < 0 ? -errno : 0;
}

static void
vfile_free (gpointer p)
{
  struct vfile *v = p;

  close (v->fd);
  g_hash_table_destroy (v->pages);
  g_free (v);
}

static const struct fuse_operations ops = {
  .init = vfs_init,
  .getattr = vfs_getattr,
  .readdir = vfs_readdir,
  .open = vfs_open,
  .create = vfs_create,
  .read = vfs_read,
  .write = vfs_write,
  .fallocate = vfs_fallocate,
  .truncate = vfs_truncate,
  .fsync = vfs_fsync,
  .statfs = vfs_statfs,
  .unlink = vfs_unlink,
};

int
main (int argc, char **argv)
{
  int r;

  if (argc < 3) {
    fprintf (stderr, "usage: volatile-fs BACKING_DIR MOUNTPOINT [FUSE "
                     "OPTIONS...]\n");
    return 2;
  }
  backing = g_canonicalize_filename (argv[1], NULL);
  files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, vfile_free);
  argv[1] = argv[0];
  r = fuse_main (argc - 1, argv + 1, &ops, NULL);
  g_hash_table_destroy (files);
  g_free (backing);
  return r;
}
