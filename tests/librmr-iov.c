/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* librmr-iov: vectored IO through a real pool, for
 * tests/test-librmr-iov.sh.  Linked with the shared librmr and the public
 * header only.
 *
 *   librmr-iov pool=NAME server=tcp:HOST:PORT|ucx:HOST:PORT... offset=BYTES
 *              out=FILE
 *              [seed=N] [tls-psk=FILE [tls-username=NAME]]
 *
 * Over LEN bytes at offset: one pwritev of RMR_MAX_IOVCNT segments cut at
 * random points (some empty), read back with a preadv cut elsewhere, a
 * preadv with one segment with a length among empty ones (received in
 * place), and a pread; vectors the library must refuse (too many
 * segments, too long, a NULL base) change nothing; a FUA pwritev over
 * part of it and a flush.  Every read must give what was written.  The
 * final contents go to out=FILE, so the caller can check each leg alone.
 * Prints one line per step; exit status 0 if all passed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rmr/rmr.h>

#define LEN ((8U << 20) + 3 * 4096)
/* The range the FUA write covers (4 KiB aligned, as the others). */
#define FUA_OFF (2U << 20)
#define FUA_LEN ((2U << 20) + 4096)

static uint64_t rng_state;

static uint64_t
rng (void)
{
  /* xorshift64*: reproducible from the seed printed. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static int
cmp_u32 (const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
  return x < y ? -1 : x > y;
}

/* Cut buf[0, len) into n segments at random points (repeats make empty
 * segments).
 */
static void
cut (uint8_t *buf, uint32_t len, struct iovec *iov, int n)
{
  uint32_t pts[RMR_MAX_IOVCNT + 2];
  int i;

  pts[0] = 0;
  pts[n] = len;
  for (i = 1; i < n; i++)
    pts[i] = i % 7 == 3 ? pts[i - 1] : rng () % (len + 1);
  qsort (pts + 1, n - 1, sizeof pts[0], cmp_u32);
  for (i = 0; i < n; i++)
    iov[i] =
      (struct iovec){.iov_base = buf + pts[i], .iov_len = pts[i + 1] - pts[i]};
}

static int failed;

static void
check (const char *step, int r, int expect, const uint8_t *got,
       const uint8_t *want, uint32_t len)
{
  if (r != expect) {
    printf ("FAIL %s: returned %d, expected %d (%s)\n", step, r, expect,
            rmr_get_error () ? rmr_get_error () : "no message");
    failed = 1;
  }
  else if (got && memcmp (got, want, len) != 0) {
    printf ("FAIL %s: read other data\n", step);
    failed = 1;
  }
  else
    printf ("ok %s\n", step);
}

static int
parse_addr (const char *s, struct rmr_addr *addr)
{
  const char *colon;
  char *end;
  unsigned long port;

  memset (addr, 0, sizeof *addr);
  if (strncmp (s, "tcp:", 4) == 0)
    addr->kind = RMR_TRANSPORT_TCP;
  else if (strncmp (s, "ucx:", 4) == 0)
    addr->kind = RMR_TRANSPORT_UCX;
  else
    return -1;
  colon = strrchr (s + 4, ':');
  if (!colon || (size_t) (colon - (s + 4)) >= sizeof addr->host)
    return -1;
  memcpy (addr->host, s + 4, colon - (s + 4));
  port = strtoul (colon + 1, &end, 10);
  if (*end || port == 0 || port > 65535)
    return -1;
  addr->port = port;
  return 0;
}

int
main (int argc, char *argv[])
{
  struct rmr_pool_config cfg;
  struct rmr_pool *pool;
  const char *out = NULL, *psk = NULL, *username = NULL;
  uint64_t offset = 0, seed = 1;
  static struct iovec iov[RMR_MAX_IOVCNT + 1];
  uint8_t *data, *rbuf;
  uint32_t i;
  FILE *f;
  int a, r;

  rmr_pool_config_init (&cfg);
  for (a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!strncmp (arg, "pool=", 5) && strlen (arg + 5) < sizeof cfg.pool_name)
      memcpy (cfg.pool_name, arg + 5, strlen (arg + 5) + 1);
    else if (!strncmp (arg, "server=", 7) && cfg.nlegs < RMR_MAX_MEMBERS &&
             parse_addr (arg + 7, &cfg.legs[cfg.nlegs].addr) == 0)
      cfg.nlegs++;
    else if (!strncmp (arg, "offset=", 7))
      offset = strtoull (arg + 7, NULL, 10);
    else if (!strncmp (arg, "seed=", 5))
      seed = strtoull (arg + 5, NULL, 10);
    else if (!strncmp (arg, "out=", 4))
      out = arg + 4;
    else if (!strncmp (arg, "tls-psk=", 8))
      psk = arg + 8;
    else if (!strncmp (arg, "tls-username=", 13))
      username = arg + 13;
    else {
      fprintf (stderr, "librmr-iov: bad argument: %s\n", arg);
      return 2;
    }
  }
  if (!cfg.pool_name[0] || !cfg.nlegs || !out) {
    fprintf (stderr, "librmr-iov: pool=, server= and out= needed\n");
    return 2;
  }
  rng_state = seed ? seed : 1;
  printf ("seed %" PRIu64 "\n", seed);

  if (psk && rmr_tls_setup (RMR_TLS_REQUIRE, psk, username) < 0) {
    printf ("FAIL tls: %s\n", rmr_get_error ());
    return 1;
  }
  pool = rmr_pool_open (&cfg);
  if (!pool) {
    printf ("FAIL open: %s\n", rmr_get_error ());
    return 1;
  }

  data = malloc (LEN);
  rbuf = malloc (LEN);
  if (!data || !rbuf)
    return 2;
  for (i = 0; i < LEN; i++)
    data[i] = rng () >> 56;

  /* The most segments the library takes, some empty, sent as they are. */
  cut (data, LEN, iov, RMR_MAX_IOVCNT);
  r = rmr_pool_pwritev (pool, iov, RMR_MAX_IOVCNT, offset, 0);
  check ("pwritev of 64 segments", r, 0, NULL, NULL, 0);

  memset (rbuf, 0, LEN);
  cut (rbuf, LEN, iov, RMR_MAX_IOVCNT);
  r = rmr_pool_preadv (pool, iov, RMR_MAX_IOVCNT, offset, 0);
  check ("preadv of 64 other segments", r, 0, rbuf, data, LEN);

  memset (rbuf, 0, LEN);
  iov[0] = (struct iovec){.iov_base = rbuf, .iov_len = 0};
  iov[1] = (struct iovec){.iov_base = rbuf, .iov_len = LEN};
  iov[2] = (struct iovec){.iov_base = NULL, .iov_len = 0};
  r = rmr_pool_preadv (pool, iov, 3, offset, 0);
  check ("preadv of one segment among empty ones", r, 0, rbuf, data, LEN);

  memset (rbuf, 0, LEN);
  r = rmr_pool_pread (pool, rbuf, LEN, offset, 0);
  check ("pread of what pwritev wrote", r, 0, rbuf, data, LEN);

  /* Refused vectors send nothing: the data stays as it was. */
  cut (rbuf, LEN, iov, RMR_MAX_IOVCNT + 1);
  r = rmr_pool_pwritev (pool, iov, RMR_MAX_IOVCNT + 1, offset, 0);
  check ("pwritev of 65 segments refused", r, -EINVAL, NULL, NULL, 0);
  iov[0] = (struct iovec){.iov_base = rbuf, .iov_len = RMR_MAX_IO_SIZE};
  iov[1] = (struct iovec){.iov_base = rbuf, .iov_len = 1};
  r = rmr_pool_pwritev (pool, iov, 2, offset, 0);
  check ("pwritev longer than RMR_MAX_IO_SIZE refused", r, -EINVAL, NULL, NULL,
         0);
  iov[0] = (struct iovec){.iov_base = rbuf, .iov_len = 4096};
  iov[1] = (struct iovec){.iov_base = NULL, .iov_len = 4096};
  r = rmr_pool_pwritev (pool, iov, 2, offset, 0);
  check ("pwritev with a NULL base refused", r, -EINVAL, NULL, NULL, 0);
  memset (rbuf, 0, LEN);
  r = rmr_pool_pread (pool, rbuf, LEN, offset, 0);
  check ("refused pwritevs changed nothing", r, 0, rbuf, data, LEN);

  /* A FUA write of three segments over the middle, then a flush. */
  for (i = FUA_OFF; i < FUA_OFF + FUA_LEN; i++)
    data[i] = ~data[i];
  cut (data + FUA_OFF, FUA_LEN, iov, 3);
  r = rmr_pool_pwritev (pool, iov, 3, offset + FUA_OFF, RMR_IO_FUA);
  check ("pwritev with FUA", r, 0, NULL, NULL, 0);
  r = rmr_pool_flush (pool, 0);
  check ("flush", r, 0, NULL, NULL, 0);
  memset (rbuf, 0, LEN);
  cut (rbuf, LEN, iov, 5);
  r = rmr_pool_preadv (pool, iov, 5, offset, 0);
  check ("preadv after the FUA pwritev", r, 0, rbuf, data, LEN);

  rmr_pool_close (pool);

  f = fopen (out, "wb");
  if (!f || fwrite (data, 1, LEN, f) != LEN || fclose (f) != 0) {
    perror (out);
    failed = 1;
  }
  free (data);
  free (rbuf);
  return failed;
}
