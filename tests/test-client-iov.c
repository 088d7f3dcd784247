/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit test of the contracts of rmr_pool_preadv and rmr_pool_pwritev
 * (include/rmr/rmr.h) that need no storage node: every malformed vector
 * is refused with -EINVAL and a message naming the call and the field
 * before anything is sent, and a well-formed one (up to RMR_MAX_IOVCNT
 * segments, empty segments allowed, RMR_MAX_IO_SIZE in all) passes the
 * checks and reaches the legs: on a pool with no leg that is -EIO, "no
 * leg".  Sending the segments and reading them back through real legs is
 * tests/test-librmr-example.sh.
 */
#undef NDEBUG

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "client.h"

#define POOL_SIZE (64ULL << 20)

static struct rmr_pool *
pool_new (void)
{
  struct rmr_pool *pool = clt_pool_alloc ();

  g_strlcpy (pool->cfg.pool_name, "iov", sizeof pool->cfg.pool_name);
  pool->cfg.min_legs = 1;
  pool->cfg.timeout_ms = 1000;
  pool->size = POOL_SIZE;
  pool->nlegs = 0;
  return pool;
}

typedef int (*vec_fn) (struct rmr_pool *, const struct iovec *, int, uint64_t,
                       unsigned);

static const struct {
  const char *name;
  vec_fn fn;
} calls[] = {
  {"preadv", rmr_pool_preadv},
  {"pwritev", rmr_pool_pwritev},
};

/* fn (iov, iovcnt, offset) fails with -err and a message starting with
 * the call's name and containing what.
 */
static void
assert_refused (struct rmr_pool *pool, unsigned c, const struct iovec *iov,
                int iovcnt, uint64_t offset, int err, const char *what)
{
  int r = calls[c].fn (pool, iov, iovcnt, offset, 0);
  const char *msg = rmr_get_error ();

  if (r != -err || !msg || !g_str_has_prefix (msg, calls[c].name) ||
      !strstr (msg, what))
    g_error ("%s (iovcnt %d, offset %" G_GUINT64_FORMAT "): got %d \"%s\", "
             "expected %d with \"%s\"",
             calls[c].name, iovcnt, offset, r, msg ? msg : "(none)", -err,
             what);
  g_assert_cmpint (rmr_get_errno (), ==, err);
}

static char buf[1024];

static void
test_iovcnt (void)
{
  struct rmr_pool *pool = pool_new ();
  struct iovec iov[RMR_MAX_IOVCNT + 1];
  unsigned c;
  int i;

  for (i = 0; i <= RMR_MAX_IOVCNT; i++)
    iov[i] = (struct iovec){.iov_base = buf + i, .iov_len = 1};
  for (c = 0; c < G_N_ELEMENTS (calls); c++) {
    assert_refused (pool, c, iov, 0, 0, EINVAL, "iovcnt 0");
    assert_refused (pool, c, iov, -1, 0, EINVAL, "iovcnt -1");
    assert_refused (pool, c, iov, RMR_MAX_IOVCNT + 1, 0, EINVAL,
                    "iovcnt 65 is not in 1..64");
    assert_refused (pool, c, NULL, 1, 0, EINVAL, "iov is NULL");
  }
  clt_pool_free (pool);
}

static void
test_lengths (void)
{
  struct rmr_pool *pool = pool_new ();
  struct iovec iov[3];
  unsigned c;

  for (c = 0; c < G_N_ELEMENTS (calls); c++) {
    /* Nothing to do. */
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = 0};
    iov[1] = (struct iovec){.iov_base = NULL, .iov_len = 0};
    assert_refused (pool, c, iov, 2, 0, EINVAL, "count 0");

    /* A length with no base. */
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = 4};
    iov[1] = (struct iovec){.iov_base = NULL, .iov_len = 4};
    assert_refused (pool, c, iov, 2, 0, EINVAL,
                    "iov[1] has a length and no base");

    /* One byte more than the largest IO, in two segments; and a sum
     * that wraps size_t (never a small total by accident).  The bases
     * are never touched.
     */
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = RMR_MAX_IO_SIZE / 2};
    iov[1] =
      (struct iovec){.iov_base = buf, .iov_len = RMR_MAX_IO_SIZE / 2 + 1};
    assert_refused (pool, c, iov, 2, 0, EINVAL, "exceed 33554432 bytes");
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = SIZE_MAX};
    iov[1] = (struct iovec){.iov_base = buf, .iov_len = 2};
    assert_refused (pool, c, iov, 2, 0, EINVAL, "exceed");

    /* Past the end of the device, and an offset that wraps. */
    iov[0] = (struct iovec){.iov_base = buf, .iov_len = 512};
    iov[1] = (struct iovec){.iov_base = buf + 512, .iov_len = 512};
    assert_refused (pool, c, iov, 2, POOL_SIZE - 1023, EINVAL,
                    "beyond the device size");
    assert_refused (pool, c, iov, 2, UINT64_MAX - 10, EINVAL,
                    "beyond the device size");
  }
  clt_pool_free (pool);
}

/* Well-formed vectors pass every check and go to the legs. */
static void
test_accepted (void)
{
  static char big[1];
  struct rmr_pool *pool = pool_new ();
  struct iovec iov[RMR_MAX_IOVCNT];
  unsigned c;
  int i;

  for (i = 0; i < RMR_MAX_IOVCNT; i++)
    iov[i] = (struct iovec){.iov_base = buf + 2 * i, .iov_len = i % 3 ? 2 : 0};
  for (c = 0; c < G_N_ELEMENTS (calls); c++) {
    /* The most segments, some empty, ending at the last byte. */
    assert_refused (pool, c, iov, RMR_MAX_IOVCNT, POOL_SIZE - 84, EIO,
                    "no leg");
    /* One segment with a length among empty ones (preadv: received in
     * place), and exactly RMR_MAX_IO_SIZE.
     */
    iov[0].iov_len = 0;
    iov[1] = (struct iovec){.iov_base = big, .iov_len = RMR_MAX_IO_SIZE};
    iov[2].iov_len = 0;
    assert_refused (pool, c, iov, 3, 0, EIO, "no leg");
    for (i = 0; i < 3; i++)
      iov[i] =
        (struct iovec){.iov_base = buf + 2 * i, .iov_len = i % 3 ? 2 : 0};
  }
  clt_pool_free (pool);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/client-iov/iovcnt", test_iovcnt);
  g_test_add_func ("/client-iov/lengths", test_lengths);
  g_test_add_func ("/client-iov/accepted", test_accepted);
  return g_test_run ();
}
