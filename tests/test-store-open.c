/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of creating, opening and wiping stores (store.c): on a file
 * in /tmp and one in /dev/shm, each refusal by its errno and a word of
 * its one-line message: a store in use (by this process too), metadata
 * of a pool already there (valid or damaged), every mismatch on open
 * (pool, member, mapped_size, chunk_size, a device shorter than its
 * metadata), no metadata, no file, bad arguments, a file that cannot be
 * extended (RLIMIT_FSIZE), which create then removes again.  Block
 * devices (O_EXCL, too small) are in test-store.c's loop-device case.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "error.h"
#include "internal.h"
#include "test-assert.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)

static void
test_create_open (gconstpointer base)
{
  struct store *st = NULL, *st2 = NULL;
  struct tmp t;
  struct stat stb;
  int r;

  tmp_init (&t, base);
  r = store_create (t.path, "pool.a", 3, MAPPED, false, &st);
  g_assert_cmpint (r, ==, 0);
  g_assert_cmpstr (st->bdev_name, ==, "store");
  g_assert_false (st->is_bdev);
  g_assert_cmpint (st->state, ==, STORE_OPEN);
  g_assert_cmpstr (st->sb.pool_name, ==, "pool.a");
  g_assert_cmpuint (st->sb.member_id, ==, 3);
  g_assert_cmpuint (st->sb.mapped_size, ==, MAPPED);
  g_assert_cmpuint (st->data_offset, ==, st->sb.data_offset);
  g_assert_cmpuint (st->data_offset % (1 * MiB), ==, 0);
  g_assert_cmpuint (st->dev_size, ==, md_store_bytes (MAPPED));
  g_assert_cmpint (stat (t.path, &stb), ==, 0);
  g_assert_cmpuint (stb.st_size, ==, md_store_bytes (MAPPED));
  g_assert_cmpuint (stb.st_mode & 0777, ==, 0600);

  /* Held: a second store on the same file is refused. */
  assert_error (store_open (t.path, "pool.a", 3, 0, 0, &st2), EBUSY,
                "in use by another pool or process");
  assert_error (store_create (t.path, "pool.a", 3, MAPPED, false, &st2), EBUSY,
                "in use by another pool or process");
  g_assert_null (st2);
  store_close (st);

  /* Both superblock copies are valid. */
  {
    int fd = open (t.path, O_RDWR);
    struct rmr_sb sb;
    int which;
    uint8_t zero[RMR_SB_SIZE] = {0};

    g_assert_cmpint (md_read (fd, &sb, &which), ==, 0);
    g_assert_cmpint (pwrite (fd, zero, sizeof zero, which * RMR_SB_SIZE), ==,
                     sizeof zero);
    g_assert_cmpint (md_read (fd, &sb, NULL), ==, 0);
    g_assert_cmpstr (sb.pool_name, ==, "pool.a");
    close (fd);
  }

  /* Open: exact, any member, and each mismatch. */
  g_assert_cmpint (store_open (t.path, "pool.a", 3, MAPPED, 0, &st), ==, 0);
  store_close (st);
  g_assert_cmpint (store_open (t.path, "pool.a", RMR_MEMBER_NONE, 0,
                               RMR_DEFAULT_CHUNK_SIZE, &st),
                   ==, 0);
  /* Pool created with a chunk size: from now on it must match. */
  g_mutex_lock (&st->md_lock);
  st->sb.chunk_size = RMR_DEFAULT_CHUNK_SIZE;
  r = store_write_sb_unlocked (st);
  g_mutex_unlock (&st->md_lock);
  g_assert_cmpint (r, ==, 0);
  store_close (st);
  st = NULL;
  assert_error (store_open (t.path, "pool.b", 3, 0, 0, &st), EINVAL,
                "belongs to pool 'pool.a', not 'pool.b'");
  assert_error (store_open (t.path, "pool.a", 4, 0, 0, &st), EINVAL,
                "is member 3 of pool 'pool.a', not member 4");
  assert_error (store_open (t.path, "pool.a", 3, MAPPED * 2, 0, &st), EINVAL,
                "mapped_size is");
  assert_error (store_open (t.path, "pool.a", 3, 0, 65536, &st), EINVAL,
                "chunk_size is 131072, not 65536");
  g_assert_null (st);
  g_assert_cmpint (
    store_open (t.path, "pool.a", 3, MAPPED, RMR_DEFAULT_CHUNK_SIZE, &st), ==,
    0);
  store_close (st);

  /* Refuse to create over it, valid or damaged. */
  assert_error (store_create (t.path, "pool.a", 3, MAPPED, false, &st), EEXIST,
                "has rmr metadata of pool 'pool.a' member 3; use add_store");
  {
    int fd = open (t.path, O_RDWR);
    uint8_t junk = 0xee;

    /* Flip a byte of the pool name in both copies: magic kept. */
    g_assert_cmpint (pwrite (fd, &junk, 1, 30), ==, 1);
    g_assert_cmpint (pwrite (fd, &junk, 1, RMR_SB_SIZE + 30), ==, 1);
    close (fd);
  }
  assert_error (store_create (t.path, "pool.a", 3, MAPPED, false, &st), EEXIST,
                "has damaged rmr metadata");
  assert_error (store_open (t.path, "pool.a", 3, 0, 0, &st), EBADMSG,
                "damaged rmr metadata");

  /* Truncated under its metadata. */
  g_unlink (t.path);
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, false, &st), ==,
                   0);
  store_close (st);
  g_assert_cmpint (truncate (t.path, md_store_bytes (MAPPED) - 4096), ==, 0);
  assert_error (store_open (t.path, "pool.a", 3, 0, 0, &st), EINVAL,
                "device is");

  /* No metadata; no file. */
  g_unlink (t.path);
  g_assert_cmpint (g_file_set_contents (t.path, "", 0, NULL), ==, TRUE);
  g_assert_cmpint (truncate (t.path, 4 * MiB), ==, 0);
  assert_error (store_open (t.path, "pool.a", 3, 0, 0, &st), ENODATA,
                "no rmr metadata; use create_store");
  g_unlink (t.path);
  assert_error (store_open (t.path, "pool.a", 3, 0, 0, &st), ENOENT, t.path);

  /* Bad arguments, and a file this filesystem cannot make large enough:
   * the file create made is removed again.
   */
  assert_error (store_create (t.path, "bad name", 3, MAPPED, false, &st),
                EINVAL, "pool_name");
  assert_error (store_create (t.path, "pool.a", 3, MAPPED + 1, false, &st),
                EINVAL, "mapped_size");
  assert_error (
    store_create (t.path, "pool.a", RMR_MEMBER_NONE, MAPPED, false, &st),
    EINVAL, "member_id");
  {
    struct rlimit old, small = {32 * MiB, 32 * MiB};

    g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old), ==, 0);
    small.rlim_max = old.rlim_max;
    signal (SIGXFSZ, SIG_IGN);
    g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &small), ==, 0);
    r = store_create (t.path, "pool.a", 3, MAPPED, false, &st);
    g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old), ==, 0);
    assert_error (r, EFBIG, "cannot extend the file");
    g_assert_false (g_file_test (t.path, G_FILE_TEST_EXISTS));
  }
  g_assert_null (st2);
  tmp_fini (&t);
}

static void
test_wipe (gconstpointer base)
{
  struct store *st = NULL;
  struct tmp t;

  tmp_init (&t, base);
  g_assert_cmpint (store_create (t.path, "p", 0, MAPPED, false, &st), ==, 0);
  g_assert_cmpint (store_wipe (st), ==, 0);
  store_close (st);
  assert_error (store_open (t.path, "p", 0, 0, 0, &st), ENODATA,
                "no rmr metadata");
  /* A wiped store can be created again. */
  g_assert_cmpint (store_create (t.path, "q", 1, MAPPED, false, &st), ==, 0);
  store_close (st);
  tmp_fini (&t);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/store/create-open/tmp", g_get_tmp_dir (),
                        test_create_open);
  g_test_add_data_func ("/store/create-open/shm", "/dev/shm", test_create_open);
  g_test_add_data_func ("/store/wipe", g_get_tmp_dir (), test_wipe);
  return g_test_run ();
}
