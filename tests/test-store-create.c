/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the safety checks of creating and opening stores
 * (store.c; issue 9): each refusal by its errno and its one-line
 * message, and that a refused store is left byte for byte as it was:
 *   - a symbolic link, on create and on open, dangling or not (a link in
 *     a directory above the store is fine);
 *   - a file held by another open store, through a hard link;
 *   - a store formatted for another pool.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "error.h"
#include "internal.h"
#include "test-tmp.h"

#define MiB (1024 * 1024)
#define MAPPED (64 * MiB)

static void
assert_error (int r, int errnum, const char *word)
{
  const char *msg = rmr_get_error ();

  g_test_message ("expected error: %s", msg ? msg : "(none)");
  g_assert_cmpint (r, ==, -errnum);
  g_assert_nonnull (msg);
  g_assert_nonnull (strstr (msg, word));
}

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
  assert_error (store_create (link, "pool.a", 3, MAPPED, &st), ELOOP,
                "is a symbolic link; give the real path");
  g_assert_cmpint (lstat (t.path, &stb), ==, -1);

  /* To a file without metadata: refused, the file untouched. */
  make_sparse (t.path);
  before = file_sum (t.path);
  assert_error (store_create (link, "pool.a", 3, MAPPED, &st), ELOOP,
                "is a symbolic link; give the real path");
  assert_error (store_create (link, "pool.a", 3, MAPPED, &st), ELOOP, t.path);
  after = file_sum (t.path);
  g_assert_cmpstr (after, ==, before);

  /* To a store: open refuses the link, the real path works. */
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, &st), ==, 0);
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

/* Held by an open store of another pool: every way in is EBUSY; once
 * closed, its metadata still refuses a create for another pool.
 */
static void
test_held_and_other_pool (void)
{
  g_autofree char *hard = NULL, *before = NULL, *after = NULL;
  struct store *st = NULL, *st2 = NULL;
  struct tmp t;

  tmp_init (&t, g_get_tmp_dir ());
  hard = g_build_filename (t.dir, "hard", NULL);
  g_assert_cmpint (store_create (t.path, "pool.a", 3, MAPPED, &st), ==, 0);
  g_assert_cmpint (link (t.path, hard), ==, 0);
  assert_error (store_create (hard, "pool.b", 5, MAPPED, &st2), EBUSY,
                "in use by another pool or process");
  assert_error (store_open (hard, "pool.a", 3, 0, 0, &st2), EBUSY,
                "in use by another pool or process");
  g_assert_null (st2);
  store_close (st);

  before = file_sum (t.path);
  assert_error (store_create (hard, "pool.b", 5, MAPPED, &st2), EEXIST,
                "has rmr metadata of pool 'pool.a' member 3; use add_store");
  g_assert_null (st2);
  after = file_sum (t.path);
  g_assert_cmpstr (after, ==, before);

  g_unlink (hard);
  tmp_fini (&t);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store-create/symlink", test_symlink);
  g_test_add_func ("/store-create/held-and-other-pool",
                   test_held_and_other_pool);
  return g_test_run ();
}
