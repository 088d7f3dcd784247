/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of create_store's safety checks (store.c, store-probe.c;
 * issue 9): each refusal by its errno and its one-line message, and that
 * a refused store is left byte for byte as it was:
 *   - a symbolic link, on create and on open, dangling or not (a link in
 *     a directory above the store is fine);
 *   - a foreign signature: an ext4 file system (mkfs.ext4), a dos
 *     partition table, two signatures at once, a RAID signature at the
 *     end of the device, beyond what formatting writes; each accepted
 *     with force, which leaves nothing libblkid recognises;
 *   - a file held by another open store, through a hard link, even with
 *     force;
 *   - a store formatted for another pool, even with force;
 * and an existing empty, sparse file is formatted as before.
 * mkfs.ext4 missing: that case is skipped, or fails under CI=true.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blkid.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "error.h"
#include "internal.h"
#include "test-assert.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)

/* SHA-256 of a whole file, to show a refused store is untouched. */
static char *
file_sum (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) data, len);
}

/* A sparse file of the size a store of MAPPED needs. */
static void
make_sparse (const char *path)
{
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  g_assert_cmpint (truncate (path, md_store_bytes (MAPPED)), ==, 0);
}

static void
pwrite_at (const char *path, const void *buf, size_t len, off_t off)
{
  int fd = open (path, O_WRONLY);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, buf, len, off), ==, (ssize_t) len);
  close (fd);
}

/* libblkid, as udev would see it: true if it finds no signature. */
static bool
blank (const char *path)
{
  blkid_probe pr = blkid_new_probe_from_filename (path);
  int r;

  g_assert_nonnull (pr);
  blkid_probe_enable_partitions (pr, 1);
  r = blkid_do_safeprobe (pr);
  blkid_free_probe (pr);
  g_assert_cmpint (r, >=, 0);
  return r == 1;
}

/* Refused without force (EMEDIUMTYPE, naming each of words), untouched;
 * then created with force, and nothing is left for libblkid to find.
 */
static void
refused_then_forced (const char *path, const char *const *words)
{
  g_autofree char *before = file_sum (path);
  g_autofree char *after = NULL;
  struct store *st = NULL;
  int r;

  r = store_create (path, "pool.a", 3, MAPPED, false, &st);
  assert_error (r, EMEDIUMTYPE, path);
  for (; *words; words++)
    assert_error (r, EMEDIUMTYPE, *words);
  g_assert_null (st);
  after = file_sum (path);
  g_assert_cmpstr (after, ==, before);

  g_assert_cmpint (store_create (path, "pool.a", 3, MAPPED, true, &st), ==, 0);
  store_close (st);
  g_assert_true (blank (path));
  g_assert_cmpint (store_open (path, "pool.a", 3, MAPPED, 0, &st), ==, 0);
  store_close (st);
}

static void
test_symlink (void)
{
  g_autofree char *link = NULL, *dirlink = NULL, *via_dir = NULL;
  g_autofree char *before = NULL, *after = NULL;
  struct store *st = NULL;
  struct stat stb;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  link = g_build_filename (t.dir, "link", NULL);
  dirlink = g_build_filename (t.dir, "dirlink", NULL);
  via_dir = g_build_filename (dirlink, "store", NULL);

  /* Dangling: refused, and nothing is created where it points. */
  g_assert_cmpint (symlink (t.path, link), ==, 0);
  assert_error (store_create (link, "pool.a", 3, MAPPED, false, &st), ELOOP,
                "is a symbolic link; give the real path");
  assert_error (store_create (link, "pool.a", 3, MAPPED, true, &st), ELOOP,
                link);
  g_assert_cmpint (lstat (t.path, &stb), ==, -1);

  /* To a file without metadata: refused, the file untouched. */
  make_sparse (t.path);
  before = file_sum (t.path);
  assert_error (store_create (link, "pool.a", 3, MAPPED, false, &st), ELOOP,
                "is a symbolic link; give the real path");
  assert_error (store_create (link, "pool.a", 3, MAPPED, false, &st), ELOOP,
                t.path);
  after = file_sum (t.path);
  g_assert_cmpstr (after, ==, before);

  /* To a store: open refuses the link, the real path works. */
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, false, &st), ==,
                   0);
  store_close (st);
  st = NULL;
  assert_error (store_open (link, "pool.a", 3, 0, 0, &st), ELOOP,
                "is a symbolic link; give the real path");
  g_assert_null (st);

  /* Only the store itself must not be a link: a directory above it may. */
  g_assert_cmpint (symlink (t.dir, dirlink), ==, 0);
  g_assert_cmpint (store_open (via_dir, "pool.a", 3, 0, 0, &st), ==, 0);
  store_close (st);

  g_unlink (link);
  g_unlink (dirlink);
  tmp_fini (&t);
}

/* Find a tool where Debian keeps it even if PATH lacks /usr/sbin. */
static char *
find_tool (const char *name)
{
  static const char *const dirs[] = {"/usr/sbin", "/sbin"};
  char *p = g_find_program_in_path (name);
  unsigned i;

  for (i = 0; !p && i < G_N_ELEMENTS (dirs); i++) {
    p = g_build_filename (dirs[i], name, NULL);
    if (!g_file_test (p, G_FILE_TEST_IS_EXECUTABLE))
      g_clear_pointer (&p, g_free);
  }
  return p;
}

/* mkfs.ext4 -q -F path, or false (test skipped or failed) if impossible. */
static bool
mkfs_ext4 (const char *path)
{
  g_autofree char *mkfs = find_tool ("mkfs.ext4");
  g_autofree char *err = NULL;
  int status;

  if (!mkfs) {
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_test_fail_printf ("mkfs.ext4 not found under CI=true (e2fsprogs)");
    else
      g_test_skip ("mkfs.ext4 not found (e2fsprogs)");
    return false;
  }
  {
    const char *argv[] = {mkfs, "-q", "-F", path, NULL};
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL,
                                 G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                                 &err, &status, NULL));
  }
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("mkfs.ext4 %s failed: %s", path, err);
  return true;
}

static void
test_ext4 (void)
{
  static const char *const words[] = {"holds an ext4 file system", NULL};
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  make_sparse (t.path);
  if (mkfs_ext4 (t.path)) {
    g_assert_false (blank (t.path));
    refused_then_forced (t.path, words);
  }
  tmp_fini (&t);
}

/* An MBR with one Linux partition, as fdisk would write it. */
static void
test_partition_table (void)
{
  static const char *const words[] = {"holds a dos partition table", NULL};
  uint8_t mbr[512] = {0};
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  make_sparse (t.path);
  mbr[446 + 4] = 0x83;      /* type: Linux */
  mbr[446 + 8 + 1] = 0x08;  /* start LBA 2048 */
  mbr[446 + 12 + 2] = 0x01; /* 65536 sectors */
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  pwrite_at (t.path, mbr, sizeof mbr, 0);
  g_assert_false (blank (t.path));
  refused_then_forced (t.path, words);
  tmp_fini (&t);
}

/* ext4 and a swap header over it: libblkid's safe probe calls that
 * ambivalent; the message names both.
 */
static void
test_two_signatures (void)
{
  static const char *const words[] = {
    "holds a swap signature and an ext4 file system", NULL};
  static const uint8_t version[8] = {1, 0, 0, 0, 0xff, 0, 0, 0};
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  make_sparse (t.path);
  if (mkfs_ext4 (t.path)) {
    pwrite_at (t.path, "SWAPSPACE2", 10, 4096 - 10);
    pwrite_at (t.path, version, sizeof version, 1024);
    refused_then_forced (t.path, words);
  }
  tmp_fini (&t);
}

/* Intel's software RAID keeps its metadata in the second-to-last sector:
 * in a device larger than the pool needs that is past the data area,
 * where formatting neither writes nor punches, so only force's wipe
 * removes it (else udev or mdadm could take the store for theirs later).
 */
static void
test_end_signature (void)
{
  static const char *const words[] = {
    "holds an isw_raid_member signature (a RAID or volume-manager member)",
    NULL};
  static const char sig[] = "Intel Raid ISM Cfg Sig. 1.0.00";
  const off_t size = md_store_bytes (MAPPED) + 1 * MiB;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  make_sparse (t.path);
  g_assert_cmpint (truncate (t.path, size), ==, 0);
  pwrite_at (t.path, sig, strlen (sig), size - 2 * 512);
  g_assert_false (blank (t.path));
  refused_then_forced (t.path, words);
  tmp_fini (&t);
}

/* Held by an open store of another pool: every way in is EBUSY, force or
 * not; once closed, its metadata still refuses a create for another pool.
 */
static void
test_held_and_other_pool (void)
{
  g_autofree char *hard = NULL, *before = NULL, *after = NULL;
  struct store *st = NULL, *st2 = NULL;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  hard = g_build_filename (t.dir, "hard", NULL);
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, false, &st), ==,
                   0);
  g_assert_cmpint (link (t.path, hard), ==, 0);
  assert_error (store_create (hard, "pool.b", 5, MAPPED, false, &st2), EBUSY,
                "in use by another pool or process");
  assert_error (store_create (hard, "pool.b", 5, MAPPED, true, &st2), EBUSY,
                hard);
  assert_error (store_open (hard, "pool.a", 3, 0, 0, &st2), EBUSY,
                "in use by another pool or process");
  g_assert_null (st2);
  store_close (st);

  before = file_sum (t.path);
  assert_error (store_create (hard, "pool.b", 5, MAPPED, false, &st2), EEXIST,
                "has rmr metadata of pool 'pool.a' member 3; use add_store");
  /* force is for foreign signatures, never for a store of ours. */
  assert_error (store_create (hard, "pool.b", 5, MAPPED, true, &st2), EEXIST,
                "has rmr metadata of pool 'pool.a' member 3; use add_store");
  g_assert_null (st2);
  after = file_sum (t.path);
  g_assert_cmpstr (after, ==, before);

  g_unlink (hard);
  tmp_fini (&t);
}

/* Existing files with nothing in them are formatted as before. */
static void
test_blank_files (void)
{
  struct store *st = NULL;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  g_assert_true (g_file_set_contents (t.path, "", 0, NULL));
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, false, &st), ==,
                   0);
  store_close (st);
  g_unlink (t.path);
  make_sparse (t.path);
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, false, &st), ==,
                   0);
  store_close (st);
  tmp_fini (&t);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store-create/symlink", test_symlink);
  g_test_add_func ("/store-create/ext4", test_ext4);
  g_test_add_func ("/store-create/partition-table", test_partition_table);
  g_test_add_func ("/store-create/two-signatures", test_two_signatures);
  g_test_add_func ("/store-create/end-signature", test_end_signature);
  g_test_add_func ("/store-create/held-and-other-pool",
                   test_held_and_other_pool);
  g_test_add_func ("/store-create/blank-files", test_blank_files);
  return g_test_run ();
}
