/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdkit-rmr-plugin: one NBD export per RMR pool.  Only glue: parameters
 * become a struct rmr_pool_config, the NBD callbacks call librmr, and
 * librmr's one-line errors become nbdkit errors with the right errno.
 *
 * The pool is opened in .get_ready, before nbdkit forks into the
 * background, so a bad parameter, an unreachable server or a refused
 * join makes nbdkit exit with the error on the terminal.  librmr's
 * threads are stopped across the fork and started again in .after_fork
 * (threads do not survive fork).
 *
 * Thread model: parallel; librmr is thread-safe and needs no per-handle
 * state, so a handle is the pool itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "rmr/rmr.h"
#include "parse.h"
#include "plugin-control.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* Configuration, from the command line. */
static struct rmr_pool_config cfg;
static const char *control_path;

/* The pool, open from .get_ready to .unload. */
static struct rmr_pool *pool;

static void
rmr_load (void)
{
  rmr_pool_config_init (&cfg);
}

static void
rmr_unload (void)
{
  plugin_control_stop ();
  rmr_pool_close (pool);
  pool = NULL;
}

/* Report librmr's last error as an nbdkit error, prefixed with what. */
static int
fail (const char *what, int r)
{
  const char *msg = rmr_get_error ();

  if (msg)
    nbdkit_error ("%s: %s", what, msg);
  else
    nbdkit_error ("%s: %s", what, strerror (-r));
  nbdkit_set_error (-r);
  return -1;
}

static int
parse_size (const char *key, const char *value, uint64_t *out)
{
  int64_t v = nbdkit_parse_size (value);

  if (v < 0)
    return -1;                  /* nbdkit printed the error */
  if (v == 0) {
    nbdkit_error ("%s: '%s' must be greater than 0", key, value);
    return -1;
  }
  *out = v;
  return 0;
}

static int
rmr_config (const char *key, const char *value)
{
  uint64_t v;

  if (strcmp (key, "pool") == 0) {
    if (rmr_check_pool_name ("pool", value) < 0)
      goto bad;
    snprintf (cfg.pool_name, sizeof cfg.pool_name, "%s", value);
  }
  else if (strcmp (key, "server") == 0) {
    if (cfg.nlegs == RMR_MAX_MEMBERS) {
      nbdkit_error ("server: more than %u servers (one per leg)",
                    RMR_MAX_MEMBERS);
      return -1;
    }
    if (rmr_addr_parse ("server", value, &cfg.legs[cfg.nlegs].addr) < 0)
      goto bad;
    cfg.nlegs++;
  }
  else if (strcmp (key, "chunk-size") == 0) {
    if (parse_size (key, value, &v) < 0)
      return -1;
    if ((v & (v - 1)) != 0 || v < RMR_MIN_CHUNK_SIZE ||
        v > RMR_MAX_CHUNK_SIZE) {
      nbdkit_error ("chunk-size: '%s' is not a power of two from 4K to 64M",
                    value);
      return -1;
    }
    cfg.chunk_size = v;
  }
  else if (strcmp (key, "size") == 0) {
    if (parse_size (key, value, &cfg.size) < 0)
      return -1;
    if (cfg.size % 512) {
      nbdkit_error ("size: '%s' is not a multiple of 512", value);
      return -1;
    }
  }
  else if (strcmp (key, "mode") == 0) {
    if (strcmp (value, "auto") == 0)
      cfg.mode = RMR_MODE_AUTO;
    else if (strcmp (value, "create") == 0)
      cfg.mode = RMR_MODE_CREATE;
    else if (strcmp (value, "assemble") == 0)
      cfg.mode = RMR_MODE_ASSEMBLE;
    else {
      nbdkit_error ("mode: '%s' is not auto, create or assemble", value);
      return -1;
    }
  }
  else if (strcmp (key, "read-policy") == 0) {
    if (strcmp (value, "round-robin") == 0)
      cfg.read_policy = RMR_READ_ROUND_ROBIN;
    else if (strcmp (value, "least-busy") == 0)
      cfg.read_policy = RMR_READ_LEAST_BUSY;
    else if (strncmp (value, "member:", 7) == 0) {
      if (rmr_parse_member_id ("read-policy", value + 7, &cfg.read_member) < 0)
        goto bad;
      cfg.read_policy = RMR_READ_MEMBER;
    }
    else {
      nbdkit_error ("read-policy: '%s' is not round-robin, least-busy or "
                    "member:ID", value);
      return -1;
    }
  }
  else if (strcmp (key, "min-legs") == 0) {
    uint64_t n;
    if (rmr_parse_uint ("min-legs", value, 1, RMR_MAX_MEMBERS, &n) < 0)
      goto bad;
    cfg.min_legs = n;
  }
  else if (strcmp (key, "queue-depth") == 0) {
    uint64_t n;
    if (rmr_parse_uint ("queue-depth", value, 1, RMR_MAX_QUEUE_DEPTH, &n) < 0)
      goto bad;
    cfg.queue_depth = n;
  }
  else if (strcmp (key, "timeout") == 0) {
    if (rmr_parse_duration_ms ("timeout", value, &cfg.timeout_ms) < 0)
      goto bad;
    if (cfg.timeout_ms < 100) {
      nbdkit_error ("timeout: '%s' is shorter than 100ms", value);
      return -1;
    }
  }
  else if (strcmp (key, "control") == 0)
    control_path = value;
  else {
    nbdkit_error ("unknown parameter '%s' (see nbdkit rmr --help)", key);
    return -1;
  }
  return 0;

bad:
  nbdkit_error ("%s", rmr_get_error ());
  return -1;
}

static int
rmr_config_complete (void)
{
  if (!cfg.pool_name[0]) {
    nbdkit_error ("pool: missing (pool=NAME)");
    return -1;
  }
  if (cfg.nlegs == 0) {
    nbdkit_error ("server: missing (server=tcp:HOST:PORT, one per leg)");
    return -1;
  }
  if (cfg.min_legs > cfg.nlegs) {
    nbdkit_error ("min-legs: %u, but only %u servers", cfg.min_legs,
                  cfg.nlegs);
    return -1;
  }
  return 0;
}

#define rmr_config_help                                                       \
  "pool=NAME                 pool name (required)\n"                          \
  "server=tcp:HOST:PORT      a storage node, one per leg (1-8, required)\n"   \
  "chunk-size=128K           dirty-tracking unit, when creating\n"            \
  "size=SIZE                 expected device size (the stores' mapped_size)\n" \
  "mode=auto|create|assemble create on fresh stores, else assemble\n"         \
  "read-policy=round-robin|least-busy|member:ID\n"                            \
  "min-legs=1                writes fail when fewer legs complete\n"          \
  "queue-depth=128           requests in flight per leg\n"                    \
  "timeout=30s               request deadline; a late leg is failed\n"        \
  "control=PATH              control socket for rmradm"

static int
rmr_get_ready (void)
{
  int r;

  pool = rmr_pool_open (&cfg);
  if (!pool)
    return fail ("pool", -errno);
  nbdkit_debug ("rmr: pool %s: %" PRIu64 " bytes, chunk_size %" PRIu32
                ", generation %" PRIu64 ", %u legs", rmr_pool_name (pool),
                rmr_pool_size (pool), rmr_pool_chunk_size (pool),
                rmr_pool_generation (pool), rmr_pool_nlegs (pool));
  r = rmr_threads_suspend ();
  return r < 0 ? fail ("pool", r) : 0;
}

static int
rmr_after_fork (void)
{
  int r = rmr_threads_resume ();

  if (r < 0)
    return fail ("pool", r);
  if (control_path && plugin_control_start (control_path, pool) < 0)
    return fail ("control", -errno);
  return 0;
}

static const char *
rmr_default_export (int readonly, int is_tls)
{
  return cfg.pool_name;
}

static int
rmr_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  return nbdkit_add_export (exports, cfg.pool_name,
                            "replicated RMR pool");
}

static void *
rmr_open (int readonly)
{
  const char *name = nbdkit_export_name ();

  if (name && *name && strcmp (name, cfg.pool_name) != 0) {
    nbdkit_error ("no export named '%s' (this server exports pool '%s')",
                  name, cfg.pool_name);
    return NULL;
  }
  return pool;
}

static int64_t
rmr_get_size (void *h)
{
  return rmr_pool_size (h);
}

static int
rmr_block_size (void *h, uint32_t *minimum, uint32_t *preferred,
                uint32_t *maximum)
{
  *minimum = 512;
  *preferred = rmr_pool_block_size (h) > 4096 ? rmr_pool_block_size (h)
                                              : 4096;
  *maximum = RMR_MAX_IO_SIZE;
  return 0;
}

static int
rmr_can_multi_conn (void *h)
{
  return 1;
}

static int
rmr_can_write (void *h)
{
  return 1;
}

static int
rmr_can_flush (void *h)
{
  return 1;
}

static int
rmr_can_fua (void *h)
{
  return NBDKIT_FUA_NATIVE;
}

static int
rmr_can_trim (void *h)
{
  return 1;
}

static int
rmr_can_zero (void *h)
{
  return 1;
}

static int
rmr_can_fast_zero (void *h)
{
  return 1;
}

static unsigned
io_flags (uint32_t flags)
{
  unsigned f = 0;

  if (flags & NBDKIT_FLAG_FUA)
    f |= RMR_IO_FUA;
  if (flags & NBDKIT_FLAG_MAY_TRIM)
    f |= RMR_IO_MAY_TRIM;
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    f |= RMR_IO_FAST_ZERO;
  return f;
}

static int
rmr_pread (void *h, void *buf, uint32_t count, uint64_t offset,
           uint32_t flags)
{
  int r = rmr_pool_pread (h, buf, count, offset, 0);

  return r < 0 ? fail ("pread", r) : 0;
}

static int
rmr_pwrite (void *h, const void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  int r = rmr_pool_pwrite (h, buf, count, offset, io_flags (flags));

  return r < 0 ? fail ("pwrite", r) : 0;
}

static int
rmr_flush (void *h, uint32_t flags)
{
  int r = rmr_pool_flush (h, 0);

  return r < 0 ? fail ("flush", r) : 0;
}

static int
rmr_trim (void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = rmr_pool_trim (h, count, offset, io_flags (flags));

  return r < 0 ? fail ("trim", r) : 0;
}

static int
rmr_zero (void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = rmr_pool_zero (h, count, offset, io_flags (flags));

  if (r == -ENOTSUP && (flags & NBDKIT_FLAG_FAST_ZERO)) {
    /* The client asked to be told, and falls back by itself. */
    nbdkit_set_error (ENOTSUP);
    return -1;
  }
  return r < 0 ? fail ("zero", r) : 0;
}

static struct nbdkit_plugin plugin = {
  .name = "rmr",
  .version = PACKAGE_VERSION,
  .longname = "nbdkit RMR replicated pool plugin",
  .description = "Active-active, single-hop replication to RMR storage "
                 "nodes",
  .load = rmr_load,
  .unload = rmr_unload,
  .config = rmr_config,
  .config_complete = rmr_config_complete,
  .config_help = rmr_config_help,
  .get_ready = rmr_get_ready,
  .after_fork = rmr_after_fork,
  .default_export = rmr_default_export,
  .list_exports = rmr_list_exports,
  .open = rmr_open,
  .get_size = rmr_get_size,
  .block_size = rmr_block_size,
  .can_multi_conn = rmr_can_multi_conn,
  .can_write = rmr_can_write,
  .can_flush = rmr_can_flush,
  .can_fua = rmr_can_fua,
  .can_trim = rmr_can_trim,
  .can_zero = rmr_can_zero,
  .can_fast_zero = rmr_can_fast_zero,
  .pread = rmr_pread,
  .pwrite = rmr_pwrite,
  .flush = rmr_flush,
  .trim = rmr_trim,
  .zero = rmr_zero,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
