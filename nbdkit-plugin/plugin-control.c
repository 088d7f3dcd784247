/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The plugin's control socket (DESIGN 8): the admin guide's rmr-client
 * tree for the pool this nbdkit serves, used by rmradm:
 *
 *   rmr-client/pools/NAME/{size,chunk_size,generation,pool_enable}
 *   rmr-client/pools/NAME/sessions/SESS/{state,member_id,path,enable,
 *                                        reconnect,last_error,...}
 *
 * The values come from rmr_pool_leg_info (), which is safe while IO
 * runs; the writes call librmr's admin functions.  One command table
 * (common/ctl.h) serves the socket, the help and the JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "parse.h"
#include "plugin-control.h"
#include "util.h"

static struct rmr_pool *g_pool;
static struct ctl_server *g_srv;

static int
check_pool (char **args, GString *err)
{
  if (strcmp (args[0], rmr_pool_name (g_pool)) == 0)
    return 0;
  g_string_append_printf (err, "no such pool '%s'", args[0]);
  return -1;
}

/* The leg whose session name is args[1]: its index with *info, or -1. */
static int
find_leg (char **args, struct rmr_leg_info *info, GString *err)
{
  unsigned i;

  if (check_pool (args, err) < 0)
    return -1;
  for (i = 0; i < rmr_pool_nlegs (g_pool); i++)
    if (rmr_pool_leg_info (g_pool, i, info) == 0 &&
        strcmp (info->sessname, args[1]) == 0)
      return i;
  g_string_append_printf (err, "no such session '%s'", args[1]);
  return -1;
}

static int
fail (GString *err)
{
  g_string_append (err, rmr_get_error () ? rmr_get_error () : "failed");
  return -1;
}

/* sessions/SESS/enable: 1 or 0 (the admin guide's echo 1 > enable). */
static int
set_enable (void *o, char **args, const char *value, const struct ctl_kv *kv,
            GString *out, GString *err)
{
  struct rmr_leg_info info;
  int i = find_leg (args, &info, err);

  if (i < 0)
    return -1;
  if (strcmp (value, "1") != 0 && strcmp (value, "0") != 0) {
    g_string_append_printf (err, "value: '%s', expected 1 or 0", value);
    return -1;
  }
  return rmr_pool_leg_set_enabled (g_pool, i, value[0] == '1') < 0
           ? fail (err) : 0;
}

/* sessions/SESS/reconnect: 'path=ADDR' (a new address) or '1'. */
static int
set_reconnect (void *o, char **args, const char *value,
               const struct ctl_kv *kv, GString *out, GString *err)
{
  struct rmr_leg_info info;
  struct rmr_addr addr;
  int i = find_leg (args, &info, err);

  if (i < 0)
    return -1;
  if (strcmp (value, "1") == 0)
    return rmr_pool_leg_reconnect (g_pool, i, NULL) < 0 ? fail (err) : 0;
  if (strncmp (value, "path=", 5) != 0 || strchr (value, ' ')) {
    g_string_append_printf (err, "value: '%s', expected path=ADDR or 1",
                            value);
    return -1;
  }
  if (rmr_addr_parse ("path", value + 5, &addr) < 0)
    return fail (err);
  return rmr_pool_leg_reconnect (g_pool, i, &addr) < 0 ? fail (err) : 0;
}

static int
set_pool_enable (void *o, char **args, const char *value,
                 const struct ctl_kv *kv, GString *out, GString *err)
{
  if (check_pool (args, err) < 0)
    return -1;
  if (strcmp (value, "1") != 0) {
    g_string_append_printf (err, "value: '%s', write 1", value);
    return -1;
  }
  return rmr_pool_enable (g_pool) < 0 ? fail (err) : 0;
}

static int
list_pools (void *o, char **args, GPtrArray *names)
{
  g_ptr_array_add (names, g_strdup (rmr_pool_name (g_pool)));
  return 0;
}

static int
list_sessions (void *o, char **args, GPtrArray *names)
{
  struct rmr_leg_info info;
  unsigned i;

  for (i = 0; i < rmr_pool_nlegs (g_pool); i++)
    if (rmr_pool_leg_info (g_pool, i, &info) == 0)
      g_ptr_array_add (names, g_strdup (info.sessname));
  return 0;
}

enum pool_attr { P_SIZE, P_CHUNK_SIZE, P_GENERATION };

static int
pool_attr (char **args, GString *out, GString *err, enum pool_attr a)
{
  if (check_pool (args, err) < 0)
    return -1;
  switch (a) {
  case P_SIZE:
    g_string_append_printf (out, "%" PRIu64 "\n", rmr_pool_size (g_pool));
    break;
  case P_CHUNK_SIZE:
    g_string_append_printf (out, "%" PRIu32 "\n",
                            rmr_pool_chunk_size (g_pool));
    break;
  case P_GENERATION:
    g_string_append_printf (out, "%" PRIu64 "\n",
                            rmr_pool_generation (g_pool));
    break;
  }
  return 0;
}

#define POOL_GETTER(fn, attr)                                                 \
  static int fn (void *o, char **args, GString *out, GString *err)            \
  {                                                                           \
    return pool_attr (args, out, err, attr);                                  \
  }
POOL_GETTER (get_size, P_SIZE)
POOL_GETTER (get_chunk_size, P_CHUNK_SIZE)
POOL_GETTER (get_generation, P_GENERATION)

enum leg_attr { L_STATE, L_MEMBER_ID, L_PATH, L_BYTES_SENT, L_BYTES_RECEIVED,
                L_READS, L_WRITES, L_INFLIGHT, L_ENABLE, L_LAST_ERROR };

static int
leg_attr (char **args, GString *out, GString *err, enum leg_attr a)
{
  struct rmr_leg_info info;

  if (find_leg (args, &info, err) < 0)
    return -1;
  switch (a) {
  case L_STATE: g_string_append_printf (out, "%s\n", info.state); break;
  case L_MEMBER_ID:
    g_string_append_printf (out, "%" PRIu32 "\n", info.member_id);
    break;
  case L_PATH: g_string_append_printf (out, "%s\n", info.addr); break;
  case L_BYTES_SENT:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_sent);
    break;
  case L_BYTES_RECEIVED:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_received);
    break;
  case L_READS: g_string_append_printf (out, "%" PRIu64 "\n", info.reads);
    break;
  case L_WRITES: g_string_append_printf (out, "%" PRIu64 "\n", info.writes);
    break;
  case L_INFLIGHT: g_string_append_printf (out, "%u\n", info.inflight); break;
  case L_ENABLE: g_string_append_printf (out, "%d\n", info.enabled); break;
  case L_LAST_ERROR:
    if (info.last_error[0])
      g_string_append_printf (out, "%s\n", info.last_error);
    break;
  }
  return 0;
}

#define LEG_GETTER(fn, attr)                                                  \
  static int fn (void *o, char **args, GString *out, GString *err)            \
  {                                                                           \
    return leg_attr (args, out, err, attr);                                   \
  }
LEG_GETTER (get_state, L_STATE)
LEG_GETTER (get_member_id, L_MEMBER_ID)
LEG_GETTER (get_path, L_PATH)
LEG_GETTER (get_bytes_sent, L_BYTES_SENT)
LEG_GETTER (get_bytes_received, L_BYTES_RECEIVED)
LEG_GETTER (get_reads, L_READS)
LEG_GETTER (get_writes, L_WRITES)
LEG_GETTER (get_inflight, L_INFLIGHT)
LEG_GETTER (get_enable, L_ENABLE)
LEG_GETTER (get_last_error, L_LAST_ERROR)

static const struct ctl_cmd table[] = {
  { .path = "rmr-client/pools/*", .list = list_pools,
    .help = "client pools of this nbdkit" },
  { .path = "rmr-client/pools/*/size", .get = get_size,
    .help = "device size in bytes" },
  { .path = "rmr-client/pools/*/chunk_size", .get = get_chunk_size,
    .help = "chunk size in bytes" },
  { .path = "rmr-client/pools/*/generation", .get = get_generation,
    .help = "pool generation this client enabled" },
  { .path = "rmr-client/pools/*/sessions/*", .list = list_sessions,
    .help = "the pool's legs, by session name" },
  { .path = "rmr-client/pools/*/sessions/*/state", .get = get_state,
    .help = "created, normal, failed or reconnecting" },
  { .path = "rmr-client/pools/*/sessions/*/member_id", .get = get_member_id,
    .help = "member id of the storage node" },
  { .path = "rmr-client/pools/*/sessions/*/path", .get = get_path,
    .help = "address of the storage node" },
  { .path = "rmr-client/pools/*/sessions/*/bytes_sent",
    .get = get_bytes_sent,
    .help = "bytes sent on the transport connection (shared by pools)" },
  { .path = "rmr-client/pools/*/sessions/*/bytes_received",
    .get = get_bytes_received,
    .help = "bytes received on the transport connection" },
  { .path = "rmr-client/pools/*/sessions/*/reads", .get = get_reads,
    .help = "reads served by this leg" },
  { .path = "rmr-client/pools/*/sessions/*/writes", .get = get_writes,
    .help = "writes, trims and zeroes completed by this leg" },
  { .path = "rmr-client/pools/*/sessions/*/inflight", .get = get_inflight,
    .help = "requests in flight on this leg" },
  { .path = "rmr-client/pools/*/sessions/*/enable", .get = get_enable,
    .set = set_enable, .flags = CTL_F_RAW_VALUE,
    .help = "1: in use; write 0 to fail the leg by hand, 1 to bring it "
            "back" },
  { .path = "rmr-client/pools/*/sessions/*/reconnect",
    .set = set_reconnect, .flags = CTL_F_RAW_VALUE,
    .help = "write 1, or path=ADDR for a new address: reconnect now and "
            "hand the member its dirty map" },
  { .path = "rmr-client/pools/*/sessions/*/last_error", .get = get_last_error,
    .help = "why the leg last failed or could not reconnect" },
  { .path = "rmr-client/pools/*/pool_enable", .set = set_pool_enable,
    .flags = CTL_F_RAW_VALUE,
    .help = "write 1: reconnect every failed leg now and enable it" },
};

int
plugin_control_start (const char *path, struct rmr_pool *pool)
{
  g_pool = pool;
  g_srv = ctl_server_start (path, table, ARRAY_SIZE (table), NULL);
  return g_srv ? 0 : -1;
}

void
plugin_control_stop (void)
{
  ctl_server_stop (g_srv);
  g_srv = NULL;
}
