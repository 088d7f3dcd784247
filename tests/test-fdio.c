/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of common/fdio.c: whole-length reads and writes on a real
 * file, zeroes past its end, errors as -errno.
 */
#undef NDEBUG

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib.h>

#include "fdio.h"

static int
memfile (void)
{
  int fd = memfd_create ("test-fdio", MFD_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  return fd;
}

static void
test_round_trip (void)
{
  g_autofree char *out = g_malloc (1 << 20), *in = g_malloc (1 << 20);
  int fd = memfile ();
  size_t i;

  for (i = 0; i < (1 << 20); i++)
    out[i] = (char) (i * 7 + 3);
  g_assert_cmpint (rmr_pwrite_full (fd, out, 1 << 20, 4096, 0), ==, 0);
  g_assert_cmpint (rmr_pread_full (fd, in, 1 << 20, 4096), ==, 0);
  g_assert_cmpmem (in, 1 << 20, out, 1 << 20);
  /* With a pwritev2 flag: durable on return, same bytes. */
  g_assert_cmpint (rmr_pwrite_full (fd, out, 512, 0, RWF_DSYNC), ==, 0);
  g_assert_cmpint (rmr_pread_full (fd, in, 512, 0), ==, 0);
  g_assert_cmpmem (in, 512, out, 512);
  close (fd);
}

/* A read that runs past the end of the file gets zeroes there. */
static void
test_past_end (void)
{
  static char buf[8192];
  int fd = memfile ();

  g_assert_cmpint (rmr_pwrite_full (fd, "abc", 3, 0, 0), ==, 0);
  memset (buf, 'x', sizeof buf);
  g_assert_cmpint (rmr_pread_full (fd, buf, sizeof buf, 0), ==, 0);
  g_assert_cmpmem (buf, 3, "abc", 3);
  for (size_t i = 3; i < sizeof buf; i++)
    g_assert_cmpint (buf[i], ==, 0);
  memset (buf, 'x', sizeof buf);
  g_assert_cmpint (rmr_pread_full (fd, buf, 100, 1 << 30), ==, 0);
  for (size_t i = 0; i < 100; i++)
    g_assert_cmpint (buf[i], ==, 0);
  close (fd);
}

static void
test_errors (void)
{
  char buf[16] = {0};
  int fd = memfile ();
  int ro;
  g_autofree char *path = g_strdup_printf ("/proc/self/fd/%d", fd);

  ro = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (ro, >=, 0);
  g_assert_cmpint (rmr_pwrite_full (ro, buf, sizeof buf, 0, 0), ==, -EBADF);
  g_assert_cmpint (rmr_pread_full (-1, buf, sizeof buf, 0), ==, -EBADF);
  g_assert_cmpint (rmr_pwrite_full (fd, buf, sizeof buf, 0, 0x40000000), ==,
                   -EOPNOTSUPP);
  close (ro);
  close (fd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/fdio/round-trip", test_round_trip);
  g_test_add_func ("/fdio/past-end", test_past_end);
  g_test_add_func ("/fdio/errors", test_errors);
  return g_test_run ();
}
