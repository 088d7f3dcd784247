/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A temporary directory holding one store file, for the store tests. */
#ifndef RMR_TEST_TMP_H
#define RMR_TEST_TMP_H

#include <glib.h>
#include <glib/gstdio.h>

struct tmp {
  char *dir;
  char *path; /* dir/store, not created */
};

/* Make a directory under base (e.g. "/tmp", "/dev/shm"). */
static inline void
tmp_init (struct tmp *t, const char *base)
{
  g_autofree char *tmpl = g_build_filename (base, "rmr-store-XXXXXX", NULL);

  t->dir = g_mkdtemp (g_steal_pointer (&tmpl));
  g_assert_nonnull (t->dir);
  t->path = g_build_filename (t->dir, "store", NULL);
}

/* Remove the store file and the directory. */
static inline void
tmp_fini (struct tmp *t)
{
  g_unlink (t->path);
  g_rmdir (t->dir);
  g_free (t->path);
  g_free (t->dir);
}

#endif /* RMR_TEST_TMP_H */
