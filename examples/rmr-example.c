/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmr-example: open a replicated pool with librmr, write a pattern, read
 * it back, flush and close.
 *
 *   rmr-example pool=NAME server=tcp:HOST:PORT [server=...]
 *               [offset=BYTES] [length=BYTES]
 *               [tls-psk=FILE [tls-username=NAME]]
 *
 * Every storage node (rmr-storaged) serves the pool with a store; the
 * pool is created on fresh stores or assembled from stores that know it.
 * With tls-psk, every connection requires TLS with the keys of FILE
 * (psktool's format), as identity NAME (default: the host name).
 * The pattern is written with one vectored write (two segments), read
 * back with a vectored read (three segments, split elsewhere) and with a
 * plain read, and checked both times.  Byte X of the device holds
 * (X ^ X >> 8 ^ X >> 16) & 0xff, so another reader can check it too.
 *
 * Build against an installed librmr:
 *   cc -o rmr-example rmr-example.c $(pkg-config --cflags --libs rmr)
 * Exit status 0 when everything read back as written, 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rmr/rmr.h>

static uint8_t
pattern (uint64_t x)
{
  return (x ^ x >> 8 ^ x >> 16) & 0xff;
}

/* "tcp:HOST:PORT" or "tcp:[V6]:PORT" into addr: 0, or -1. */
static int
parse_addr (const char *s, struct rmr_addr *addr)
{
  const char *host, *colon;
  size_t len;
  char *end;
  unsigned long port;

  memset (addr, 0, sizeof *addr);
  if (strncmp (s, "tcp:", 4) == 0)
    addr->kind = RMR_TRANSPORT_TCP;
  else if (strncmp (s, "ucx:", 4) == 0)
    addr->kind = RMR_TRANSPORT_UCX;
  else
    return -1;
  host = s + 4;
  colon = strrchr (host, ':');
  if (colon == NULL || colon == host)
    return -1;
  len = colon - host;
  if (host[0] == '[') { /* IPv6: the library wants it without brackets */
    if (len < 3 || host[len - 1] != ']')
      return -1;
    host++;
    len -= 2;
  }
  if (len >= sizeof addr->host)
    return -1;
  memcpy (addr->host, host, len);
  errno = 0;
  port = strtoul (colon + 1, &end, 10);
  if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
    return -1;
  addr->port = port;
  return 0;
}

/* A byte count ("65536"): 0, or -1. */
static int
parse_u64 (const char *s, uint64_t *v)
{
  char *end;

  errno = 0;
  *v = strtoull (s, &end, 10);
  return errno || *end || end == s || s[0] == '-' ? -1 : 0;
}

static int
fail (const char *what, int r)
{
  fprintf (stderr, "rmr-example: %s: %s\n", what,
           rmr_get_error () ? rmr_get_error () : strerror (-r));
  return 1;
}

int
main (int argc, char *argv[])
{
  struct rmr_pool_config cfg;
  struct rmr_pool *pool;
  uint64_t offset = 0, length = 1024 * 1024, i;
  const char *psk = NULL, *username = NULL;
  uint8_t *wbuf, *rbuf;
  struct iovec wv[2], rv[3];
  int a, r, status = 1;

  /* The defaults: create on fresh stores, else assemble; the pool's size
   * and chunk size come from the stores.
   */
  rmr_pool_config_init (&cfg);
  for (a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (strncmp (arg, "pool=", 5) == 0 &&
        strlen (arg + 5) < sizeof cfg.pool_name)
      memcpy (cfg.pool_name, arg + 5, strlen (arg + 5) + 1);
    else if (strncmp (arg, "server=", 7) == 0 && cfg.nlegs < RMR_MAX_MEMBERS &&
             parse_addr (arg + 7, &cfg.legs[cfg.nlegs].addr) == 0)
      cfg.nlegs++;
    else if (strncmp (arg, "offset=", 7) == 0 &&
             parse_u64 (arg + 7, &offset) == 0)
      ;
    else if (strncmp (arg, "length=", 7) == 0 &&
             parse_u64 (arg + 7, &length) == 0 && length >= 3 &&
             length <= RMR_MAX_IO_SIZE)
      ;
    else if (strncmp (arg, "tls-psk=", 8) == 0)
      psk = arg + 8;
    else if (strncmp (arg, "tls-username=", 13) == 0)
      username = arg + 13;
    else {
      fprintf (stderr,
               "usage: rmr-example pool=NAME server=tcp:HOST:PORT... "
               "[offset=BYTES] [length=3..%u] "
               "[tls-psk=FILE [tls-username=NAME]]\n"
               "rmr-example: bad argument: %s\n",
               RMR_MAX_IO_SIZE, arg);
      return 1;
    }
  }
  if (cfg.pool_name[0] == '\0' || cfg.nlegs == 0) {
    fprintf (stderr, "rmr-example: pool= and at least one server= needed\n");
    return 1;
  }

  /* TLS is process-wide, for every connection opened from now on. */
  if (psk) {
    r = rmr_tls_setup (RMR_TLS_REQUIRE, psk, username);
    if (r < 0)
      return fail ("tls", r);
  }

  wbuf = malloc (length);
  rbuf = malloc (length);
  if (!wbuf || !rbuf) {
    perror ("rmr-example: malloc");
    return 1;
  }
  for (i = 0; i < length; i++)
    wbuf[i] = pattern (offset + i);

  /* Connects every leg, joins and enables the pool: NULL on failure. */
  pool = rmr_pool_open (&cfg);
  if (pool == NULL)
    return fail ("open", -errno);
  printf ("pool %s: %" PRIu64 " bytes, %u legs, chunk %" PRIu32 "\n",
          rmr_pool_name (pool), rmr_pool_size (pool), rmr_pool_nlegs (pool),
          rmr_pool_chunk_size (pool));

  /* One write from two segments: every leg gets it, with no copy. */
  wv[0] = (struct iovec){.iov_base = wbuf, .iov_len = length / 2};
  wv[1] = (struct iovec){.iov_base = wbuf + length / 2,
                         .iov_len = length - length / 2};
  r = rmr_pool_pwritev (pool, wv, 2, offset, 0);
  if (r < 0) {
    fail ("pwritev", r);
    goto out;
  }

  /* Read it back into three segments split elsewhere... */
  memset (rbuf, 0, length);
  rv[0] = (struct iovec){.iov_base = rbuf, .iov_len = length / 3};
  rv[1] = (struct iovec){.iov_base = rbuf + length / 3, .iov_len = 1};
  rv[2] = (struct iovec){.iov_base = rbuf + length / 3 + 1,
                         .iov_len = length - length / 3 - 1};
  r = rmr_pool_preadv (pool, rv, 3, offset, 0);
  if (r < 0) {
    fail ("preadv", r);
    goto out;
  }
  if (memcmp (rbuf, wbuf, length) != 0) {
    fprintf (stderr, "rmr-example: preadv read other data\n");
    goto out;
  }
  /* ...and into one buffer. */
  memset (rbuf, 0, length);
  r = rmr_pool_pread (pool, rbuf, length, offset, 0);
  if (r < 0) {
    fail ("pread", r);
    goto out;
  }
  if (memcmp (rbuf, wbuf, length) != 0) {
    fprintf (stderr, "rmr-example: pread read other data\n");
    goto out;
  }

  /* A write is durable once flushed (or written with RMR_IO_FUA). */
  r = rmr_pool_flush (pool, 0);
  if (r < 0) {
    fail ("flush", r);
    goto out;
  }
  printf ("wrote, read back and flushed %" PRIu64 " bytes at %" PRIu64 "\n",
          length, offset);
  status = 0;

out:
  /* Leaves the pool gracefully: the stores keep data and metadata. */
  rmr_pool_close (pool);
  free (wbuf);
  free (rbuf);
  return status;
}
