/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's control socket (DESIGN 8): the admin guide's client-side
 * tree, used by rmradm:
 *
 *   rmr-client/ctl/join_pool             'poolname=NAME [chunk_size=BYTES]'
 *   rmr-client/pools/NAME/{state,size,chunk_size,generation,last_error,
 *                          connections}
 *   rmr-client/pools/NAME/{add_sess,pool_enable,leave_pool}
 *   rmr-client/pools/NAME/sessions/SESS/{state,member_id,path,mode,enable,
 *                                        reconnect,del_sess,last_error,...}
 *   brmr-client/ctl/map_device           'pool=NAME [size=SECTORS|SIZE]'
 *   brmr-client/ctl/devices/NAME/{state,size,block/size,alias,unmap_device}
 *                                        (NAME: the pool, or its alias brmrN)
 *
 * This file parses and formats; the pools and their states live in
 * admin.c.  Getters read under the registry lock (librmr's
 * rmr_pool_leg_info () is safe while IO runs); setters call the registry,
 * which does slow work without the lock.  One command table
 * (common/ctl.h) serves the socket, the help and the JSON; every set is
 * logged with its outcome.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "parse.h"
#include "admin.h"
#include "client.h"
#include "metrics.h"
#include "util.h"

static struct ctl_server *g_srv;

/* Hold the registry lock until the end of the scope. */
static void
unlock_pools (bool *locked)
{
  if (*locked)
    pools_unlock ();
}
#define SCOPED_POOLS_LOCK                                                      \
  bool pools_locked_ __attribute__ ((cleanup (unlock_pools), unused)) =        \
    (pools_lock (), true)

static int
fail (GString *err)
{
  g_string_append (err, rmr_get_error () ? rmr_get_error () : "failed");
  return -1;
}

static int
need_one (const char *value, GString *err)
{
  if (strcmp (value, "1") == 0)
    return 0;
  g_string_append_printf (err, "value: '%s', write 1", value);
  return -1;
}

/* Called with the registry lock held. */
static struct plugin_pool *
find_pool_unlocked (const char *name, GString *err)
{
  struct plugin_pool *pp = pools_find_unlocked (name);

  if (!pp)
    g_string_append_printf (err, "no such pool '%s'", name);
  return pp;
}

/* rmr-client/ctl/join_pool 'poolname=NAME [chunk_size=BYTES]' */
static int
set_join_pool (void *o, char **args, const char *value, const struct ctl_kv *kv,
               GString *out, GString *err)
{
  const char *name = ctl_kv_get (kv, "poolname");
  const char *cs = ctl_kv_get (kv, "chunk_size");
  uint64_t chunk_size = 0;

  if (rmr_check_pool_name ("poolname", name) < 0)
    return fail (err);
  if (cs) {
    if (rmr_parse_bytes ("chunk_size", cs, &chunk_size) < 0)
      return fail (err);
    if (!is_power_of_2 (chunk_size) || chunk_size < RMR_MIN_CHUNK_SIZE ||
        chunk_size > RMR_MAX_CHUNK_SIZE) {
      g_string_append_printf (err,
                              "chunk_size: '%s' is not a power of two "
                              "from 4K to 64M",
                              cs);
      return -1;
    }
  }
  return pools_join (name, chunk_size, err);
}

/* pools/NAME/add_sess 'sessname=S path=ADDR [mode=create|assemble|auto]' */
static int
set_add_sess (void *o, char **args, const char *value, const struct ctl_kv *kv,
              GString *out, GString *err)
{
  const char *sessname = ctl_kv_get (kv, "sessname");
  const char *mode = ctl_kv_get (kv, "mode");
  const char *member = ctl_kv_get (kv, "member_id");
  uint64_t member_id = 0;
  struct rmr_addr addr;
  int m = -1;

  if (rmr_check_sess_name ("sessname", sessname) < 0 ||
      rmr_addr_parse ("path", ctl_kv_get (kv, "path"), &addr) < 0)
    return fail (err);
  if (mode) {
    for (m = RMR_MODE_AUTO; m <= RMR_MODE_ASSEMBLE; m++)
      if (strcmp (mode, pools_mode_name (m)) == 0)
        break;
    if (m > RMR_MODE_ASSEMBLE) {
      g_string_append_printf (err, "mode: '%s' is not create, assemble or auto",
                              mode);
      return -1;
    }
  }
  if (member && rmr_parse_uint ("member_id", member, 0, RMR_MEMBER_ID_MAX,
                                &member_id) < 0)
    return fail (err);
  if (pools_add_sess (args[0], sessname, &addr, m,
                      member ? (uint32_t) member_id : RMR_MEMBER_NONE, err) < 0)
    return -1;
  /* The session is added whatever the automatic enable does. */
  pools_auto_enable (args[0], out);
  return 0;
}

/* sessions/SESS/del_sess '[mode=disassemble|delete]' */
static int
set_del_sess (void *o, char **args, const char *value, const struct ctl_kv *kv,
              GString *out, GString *err)
{
  const char *mode = ctl_kv_get (kv, "mode");

  if (mode && strcmp (mode, "disassemble") != 0 &&
      strcmp (mode, "delete") != 0) {
    g_string_append_printf (err, "mode: '%s' is not disassemble or delete",
                            mode);
    return -1;
  }
  return pools_del_sess (
    args[0], args[1],
    mode && strcmp (mode, "delete") == 0 ? RMR_LEG_DELETE : RMR_LEG_DISASSEMBLE,
    out, err);
}

/* pools/NAME/delete_member 'member_id=N' */
static int
set_delete_member (void *o, char **args, const char *value,
                   const struct ctl_kv *kv, GString *out, GString *err)
{
  uint64_t id;

  if (rmr_parse_uint ("member_id", ctl_kv_get (kv, "member_id"), 0,
                      RMR_MEMBER_ID_MAX, &id) < 0)
    return fail (err);
  return pools_delete_member (args[0], id, err);
}

/* sessions/SESS/enable: 1 or 0 (the admin guide's echo 1 > enable). */
static int
set_enable (void *o, char **args, const char *value, const struct ctl_kv *kv,
            GString *out, GString *err)
{
  if (strcmp (value, "1") != 0 && strcmp (value, "0") != 0) {
    g_string_append_printf (err, "value: '%s', expected 1 or 0", value);
    return -1;
  }
  return pools_leg_set_enabled (args[0], args[1], value[0] == '1', err);
}

/* sessions/SESS/reconnect: 'path=ADDR' (a new address) or '1'. */
static int
set_reconnect (void *o, char **args, const char *value, const struct ctl_kv *kv,
               GString *out, GString *err)
{
  struct rmr_addr addr;

  if (strcmp (value, "1") == 0)
    return pools_leg_reconnect (args[0], args[1], NULL, err);
  if (strncmp (value, "path=", 5) != 0 || strchr (value, ' ')) {
    g_string_append_printf (err, "value: '%s', expected path=ADDR or 1", value);
    return -1;
  }
  if (rmr_addr_parse ("path", value + 5, &addr) < 0)
    return fail (err);
  return pools_leg_reconnect (args[0], args[1], &addr, err);
}

static int
set_pool_enable (void *o, char **args, const char *value,
                 const struct ctl_kv *kv, GString *out, GString *err)
{
  if (need_one (value, err) < 0)
    return -1;
  return pools_enable (args[0], err);
}

static int
set_leave_pool (void *o, char **args, const char *value,
                const struct ctl_kv *kv, GString *out, GString *err)
{
  if (need_one (value, err) < 0)
    return -1;
  return pools_leave (args[0], err);
}

/* brmr-client/ctl/map_device 'pool=NAME [size=SECTORS|SIZE]' */
static int
set_map_device (void *o, char **args, const char *value,
                const struct ctl_kv *kv, GString *out, GString *err)
{
  const char *size = ctl_kv_get (kv, "size");
  uint64_t bytes = 0;

  if (size) {
    if (rmr_parse_sectors_or_bytes ("size", size, &bytes) < 0)
      return fail (err);
    if (bytes == 0) {
      g_string_append_printf (err, "size: '%s' must be greater than 0", size);
      return -1;
    }
  }
  return pools_map (ctl_kv_get (kv, "pool"), bytes, err);
}

static int
set_unmap_device (void *o, char **args, const char *value,
                  const struct ctl_kv *kv, GString *out, GString *err)
{
  if (need_one (value, err) < 0)
    return -1;
  return pools_unmap (args[0], out, err);
}

static int
list_pools (void *o, char **args, GPtrArray *names)
{
  pools_names (names, false);
  return 0;
}

static int
list_devices (void *o, char **args, GPtrArray *names)
{
  pools_names (names, true);
  return 0;
}

static bool
has_device (void *o, char **args)
{
  SCOPED_POOLS_LOCK;

  return pools_find_device_unlocked (args[0]) != NULL;
}

static int
list_sessions (void *o, char **args, GPtrArray *names)
{
  SCOPED_POOLS_LOCK;
  struct plugin_pool *pp = pools_find_unlocked (args[0]);
  unsigned i;

  for (i = 0; pp && i < pp->cfg.nlegs; i++)
    g_ptr_array_add (names, g_strdup (pp->cfg.legs[i].sessname));
  return 0;
}

enum pool_attr {
  P_STATE,
  P_SIZE,
  P_CHUNK_SIZE,
  P_GENERATION,
  P_LAST_ERROR,
  P_CONNECTIONS,
  D_STATE,
  D_SECTORS,
  D_ALIAS
};

static int
pool_attr (char **args, GString *out, GString *err, enum pool_attr a)
{
  SCOPED_POOLS_LOCK;
  bool device = a == D_STATE || a == D_SECTORS || a == D_ALIAS;
  struct plugin_pool *pp = device ? pools_find_device_unlocked (args[0])
                                  : find_pool_unlocked (args[0], err);

  if (!pp) {
    if (device)
      g_string_append_printf (err, "no such device '%s'", args[0]);
    return -1;
  }
  if (!pp->rp && (a == P_SIZE || a == P_GENERATION || a == D_SECTORS ||
                  (a == P_CHUNK_SIZE && !pp->cfg.chunk_size))) {
    g_string_append_printf (err, "pool '%s' is not enabled yet", pp->name);
    return -1;
  }
  switch (a) {
  case P_STATE:
    g_string_append_printf (out, "%s\n", pools_state_unlocked (pp));
    break;
  case P_SIZE:
    g_string_append_printf (out, "%" PRIu64 "\n", rmr_pool_size (pp->rp));
    break;
  case P_CHUNK_SIZE:
    g_string_append_printf (out, "%" PRIu32 "\n",
                            pp->rp ? rmr_pool_chunk_size (pp->rp)
                                   : pp->cfg.chunk_size);
    break;
  case P_GENERATION:
    g_string_append_printf (out, "%" PRIu64 "\n", rmr_pool_generation (pp->rp));
    break;
  case P_LAST_ERROR:
    if (pp->last_error[0])
      g_string_append_printf (out, "%s\n", pp->last_error);
    break;
  case P_CONNECTIONS: g_string_append_printf (out, "%u\n", pp->nhandles); break;
  case D_STATE: g_string_append (out, "ready\n"); break;
  case D_SECTORS:
    g_string_append_printf (out, "%" PRIu64 "\n", rmr_pool_size (pp->rp) / 512);
    break;
  case D_ALIAS:
    if (pp->dev_index >= 0)
      g_string_append_printf (out, "brmr%d\n", pp->dev_index);
    break;
  }
  return 0;
}

#define POOL_GETTER(fn, attr)                                                  \
  static int fn (void *o, char **args, GString *out, GString *err)             \
  {                                                                            \
    return pool_attr (args, out, err, attr);                                   \
  }
POOL_GETTER (get_pool_state, P_STATE)
POOL_GETTER (get_size, P_SIZE)
POOL_GETTER (get_chunk_size, P_CHUNK_SIZE)
POOL_GETTER (get_generation, P_GENERATION)
POOL_GETTER (get_pool_last_error, P_LAST_ERROR)
POOL_GETTER (get_connections, P_CONNECTIONS)
POOL_GETTER (get_dev_state, D_STATE)
POOL_GETTER (get_dev_size, D_SECTORS)
POOL_GETTER (get_dev_alias, D_ALIAS)

enum leg_attr {
  L_STATE,
  L_MEMBER_ID,
  L_PATH,
  L_MODE,
  L_BYTES_SENT,
  L_BYTES_RECEIVED,
  L_READS,
  L_WRITES,
  L_INFLIGHT,
  L_ENABLE,
  L_LAST_ERROR,
  L_DATA_STATE,
  L_RESYNC,
  L_SECURITY,
  L_TRANSPORT,
  L_ZCOPY
};

/* A leg of a pool not enabled yet exists only in the configuration. */
static void
leg_info_unlocked (const struct plugin_pool *pp, unsigned i,
                   struct rmr_leg_info *info)
{
  memset (info, 0, sizeof *info);
  snprintf (info->sessname, sizeof info->sessname, "%s",
            pp->cfg.legs[i].sessname);
  rmr_addr_format (&pp->cfg.legs[i].addr, info->addr, sizeof info->addr);
  info->member_id = RMR_MEMBER_NONE;
  info->state = "created";
  info->enabled = pp->leg_enabled[i];
  info->data_state = "unknown";
}

static int
leg_attr (char **args, GString *out, GString *err, enum leg_attr a)
{
  SCOPED_POOLS_LOCK;
  struct plugin_pool *pp = find_pool_unlocked (args[0], err);
  struct rmr_leg_info info;
  int i;

  if (!pp)
    return -1;
  i = pools_leg_index_unlocked (pp, args[1]);
  if (i < 0) {
    g_string_append_printf (err, "no such session '%s'", args[1]);
    return -1;
  }
  if (!pp->rp)
    leg_info_unlocked (pp, i, &info);
  else if (rmr_pool_leg_info (pp->rp, i, &info) < 0)
    return fail (err);
  switch (a) {
  case L_STATE: g_string_append_printf (out, "%s\n", info.state); break;
  case L_MEMBER_ID:
    if (info.member_id == RMR_MEMBER_NONE) {
      g_string_append_printf (err, "not known before pool '%s' is enabled",
                              pp->name);
      return -1;
    }
    g_string_append_printf (out, "%" PRIu32 "\n", info.member_id);
    break;
  case L_PATH: g_string_append_printf (out, "%s\n", info.addr); break;
  case L_MODE:
    g_string_append_printf (out, "%s\n", pools_mode_name (pp->cfg.mode));
    break;
  case L_BYTES_SENT:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_sent);
    break;
  case L_BYTES_RECEIVED:
    g_string_append_printf (out, "%" PRIu64 "\n", info.bytes_received);
    break;
  case L_READS:
    g_string_append_printf (out, "%" PRIu64 "\n", info.reads);
    break;
  case L_WRITES:
    g_string_append_printf (out, "%" PRIu64 "\n", info.writes);
    break;
  case L_INFLIGHT: g_string_append_printf (out, "%u\n", info.inflight); break;
  case L_ENABLE: g_string_append_printf (out, "%d\n", info.enabled); break;
  case L_DATA_STATE:
    g_string_append_printf (out, "%s\n", info.data_state);
    break;
  case L_RESYNC:
    g_string_append_printf (out, "%" PRIu64 "/%" PRIu64 "\n", info.resync_left,
                            info.resync_total);
    break;
  case L_LAST_ERROR:
    if (info.last_error[0])
      g_string_append_printf (out, "%s\n", info.last_error);
    break;
  case L_SECURITY:
    if (info.security[0])
      g_string_append_printf (out, "%s\n", info.security);
    break;
  case L_TRANSPORT:
    if (info.transport[0])
      g_string_append_printf (out, "%s\n", info.transport);
    break;
  case L_ZCOPY:
    g_string_append_printf (out, "%" PRIu64 "\n", info.zcopy_bytes_sent);
    break;
  }
  return 0;
}

#define LEG_GETTER(fn, attr)                                                   \
  static int fn (void *o, char **args, GString *out, GString *err)             \
  {                                                                            \
    return leg_attr (args, out, err, attr);                                    \
  }
LEG_GETTER (get_state, L_STATE)
LEG_GETTER (get_member_id, L_MEMBER_ID)
LEG_GETTER (get_path, L_PATH)
LEG_GETTER (get_mode, L_MODE)
LEG_GETTER (get_bytes_sent, L_BYTES_SENT)
LEG_GETTER (get_bytes_received, L_BYTES_RECEIVED)
LEG_GETTER (get_reads, L_READS)
LEG_GETTER (get_writes, L_WRITES)
LEG_GETTER (get_inflight, L_INFLIGHT)
LEG_GETTER (get_enable, L_ENABLE)
LEG_GETTER (get_last_error, L_LAST_ERROR)
LEG_GETTER (get_data_state, L_DATA_STATE)
LEG_GETTER (get_resync, L_RESYNC)
LEG_GETTER (get_security, L_SECURITY)
LEG_GETTER (get_transport, L_TRANSPORT)
LEG_GETTER (get_zcopy, L_ZCOPY)

void
pools_metrics (GString *out)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  struct prom *p = prom_new ();
  unsigned i;

  pools_names (names, false);
  {
    SCOPED_POOLS_LOCK;
    for (i = 0; i < names->len; i++) {
      struct plugin_pool *pp =
        pools_find_unlocked (g_ptr_array_index (names, i));
      if (pp && pp->rp)
        clt_pool_metrics (pp->rp, pp->name, p);
    }
  }
  prom_finish (p, out);
}

static int
get_metrics (void *o, char **args, GString *out, GString *err)
{
  pools_metrics (out);
  return 0;
}

static const struct ctl_cmd table[] = {
  {.path = "rmr-client/metrics",
   .get = get_metrics,
   .flags = CTL_F_NO_STATUS,
   .help = "every metric of the client pools in the Prometheus text "
           "format (rmradm metrics)"},
  {.path = "rmr-client/ctl/join_pool",
   .set = set_join_pool,
   .keys = "poolname! chunk_size",
   .help = "a client pool, state joined, no session yet (chunk_size: "
           "bytes, used when the pool is created)"},
  {.path = "rmr-client/pools/*",
   .list = list_pools,
   .help = "client pools of this nbdkit"},
  {.path = "rmr-client/pools/*/state",
   .get = get_pool_state,
   .help = "joined (configured), enabling, enabled (open) or closing"},
  {.path = "rmr-client/pools/*/size",
   .get = get_size,
   .help = "device size in bytes (once enabled)"},
  {.path = "rmr-client/pools/*/chunk_size",
   .get = get_chunk_size,
   .help = "chunk size in bytes"},
  {.path = "rmr-client/pools/*/generation",
   .get = get_generation,
   .help = "pool generation this client enabled"},
  {.path = "rmr-client/pools/*/last_error",
   .get = get_pool_last_error,
   .help = "why the last pool_enable (or map_device) could not open the "
           "pool"},
  {.path = "rmr-client/pools/*/connections",
   .get = get_connections,
   .help = "NBD connections using the pool"},
  {.path = "rmr-client/pools/*/add_sess",
   .set = set_add_sess,
   .keys = "sessname! path! mode member_id",
   .help = "a session to a storage node (path=tcp:HOST:PORT or "
           "ip:HOST[:PORT]; mode=create|assemble|auto, the same for every "
           "session); on an enabled pool a live leg: a fresh store joins "
           "and resyncs from the others (member_id=N: the node must be "
           "member N)"},
  {.path = "rmr-client/pools/*/delete_member",
   .set = set_delete_member,
   .keys = "member_id!",
   .help = "before pool_enable: take this member (away, its store "
           "deleted) out of the pool when it is assembled, without force "
           "(the offline del_sess mode=delete)"},
  {.path = "rmr-client/pools/*/sessions/*",
   .list = list_sessions,
   .help = "the pool's legs, by session name"},
  {.path = "rmr-client/pools/*/sessions/*/state",
   .get = get_state,
   .help = "created, normal, failed or reconnecting"},
  {.path = "rmr-client/pools/*/sessions/*/member_id",
   .get = get_member_id,
   .help = "member id of the storage node (once enabled)"},
  {.path = "rmr-client/pools/*/sessions/*/path",
   .get = get_path,
   .help = "address of the storage node"},
  {.path = "rmr-client/pools/*/sessions/*/mode",
   .get = get_mode,
   .help = "create, assemble or auto: how the session joins"},
  {.path = "rmr-client/pools/*/sessions/*/bytes_sent",
   .get = get_bytes_sent,
   .help = "bytes sent on the transport connection (shared by pools)"},
  {.path = "rmr-client/pools/*/sessions/*/bytes_received",
   .get = get_bytes_received,
   .help = "bytes received on the transport connection"},
  {.path = "rmr-client/pools/*/sessions/*/reads",
   .get = get_reads,
   .help = "reads served by this leg"},
  {.path = "rmr-client/pools/*/sessions/*/writes",
   .get = get_writes,
   .help = "writes, trims and zeroes completed by this leg"},
  {.path = "rmr-client/pools/*/sessions/*/inflight",
   .get = get_inflight,
   .help = "requests in flight on this leg"},
  {.path = "rmr-client/pools/*/sessions/*/enable",
   .get = get_enable,
   .set = set_enable,
   .flags = CTL_F_RAW_VALUE,
   .help = "1: in use.  Before pool_enable: write 1 to mark the session "
           "ready (create mode needs it).  After: write 0 to fail the leg "
           "by hand, 1 to bring it back"},
  {.path = "rmr-client/pools/*/sessions/*/reconnect",
   .set = set_reconnect,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1, or path=ADDR for a new address: reconnect now and "
           "hand the member its dirty map"},
  {.path = "rmr-client/pools/*/sessions/*/last_error",
   .get = get_last_error,
   .help = "why the leg last failed or could not reconnect"},
  {.path = "rmr-client/pools/*/sessions/*/data_state",
   .get = get_data_state,
   .help = "the member's data as this client knows it: up-to-date, "
           "outdated (it missed acknowledged writes; it comes back only "
           "through a member that has them), or syncing (it was handed "
           "chunks it missed, or added live, and resyncs them: it serves "
           "reads only when no other leg can)"},
  {.path = "rmr-client/pools/*/sessions/*/resync",
   .get = get_resync,
   .help = "LEFT/TOTAL: the chunks a leg added live still misses, of all "
           "(0/0 once it is up to date)"},
  {.path = "rmr-client/pools/*/sessions/*/security",
   .get = get_security,
   .help = "how the leg's connection is protected: plaintext, or its TLS "
           "session (version, key exchange, cipher, kernel or userspace)"},
  {.path = "rmr-client/pools/*/sessions/*/transport",
   .get = get_transport,
   .help = "how the bytes travel: tcp, or ucx and the transports UCX "
           "chose (tcp/eth0; rc_mlx5/mlx5_0:1 on an RDMA host)"},
  {.path = "rmr-client/pools/*/sessions/*/zcopy_bytes_sent",
   .get = get_zcopy,
   .help = "payload bytes sent straight from the caller's buffers by "
           "rendezvous (ucx; 0 on tcp)"},
  {.path = "rmr-client/pools/*/sessions/*/del_sess",
   .set = set_del_sess,
   .keys = "mode",
   .help = "remove the session (mode=disassemble|delete); on an enabled "
           "pool, live (refused for the last leg, below min-legs, or "
           "without an up-to-date leg left); mode=delete takes the member "
           "out of the pool for good"},
  {.path = "rmr-client/pools/*/pool_enable",
   .set = set_pool_enable,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: open the pool with its sessions (connect, join, "
           "create or assemble, enable); once open, reconnect every failed "
           "leg now"},
  {.path = "rmr-client/pools/*/leave_pool",
   .set = set_leave_pool,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: forget the pool; only once its sessions are deleted "
           "(del_sess) and it is not mapped"},
  {.path = "brmr-client/ctl/map_device",
   .set = set_map_device,
   .keys = "pool! size",
   .help = "export the pool over NBD under its name, enabling it first if "
           "needed (size: sectors, or bytes with K/M/G/T; must match)"},
  {.path = "brmr-client/ctl/devices/*",
   .list = list_devices,
   .has = has_device,
   .help = "mapped pools: the NBD exports, named by their pool; each also "
           "answers to its alias brmrN (here and as an NBD export name)"},
  {.path = "brmr-client/ctl/devices/*/alias",
   .get = get_dev_alias,
   .help = "the admin guide's device name, brmrN: the lowest number free "
           "when the pool was mapped"},
  {.path = "brmr-client/ctl/devices/*/state",
   .get = get_dev_state,
   .help = "ready"},
  {.path = "brmr-client/ctl/devices/*/size",
   .get = get_dev_size,
   .help = "device size in 512-byte sectors"},
  {.path = "brmr-client/ctl/devices/*/block/size",
   .get = get_dev_size,
   .help = "device size in 512-byte sectors (the guide's block/size)"},
  {.path = "brmr-client/ctl/devices/*/unmap_device",
   .set = set_unmap_device,
   .flags = CTL_F_RAW_VALUE,
   .help = "write 1: refuse new NBD connections to the device; open ones "
           "go on until their clients disconnect"},
};

/* Every request is logged with its outcome through the program's hook
 * (librmr never prints).
 */
static rmr_admin_log_fn g_log_fn;
static void *g_log_opaque;

static void
log_request (void *opaque, const char *request, int result, const char *reply)
{
  int len;

  if (!g_log_fn)
    return;
  if (g_str_has_prefix (reply, "error: "))
    reply += 7;
  len = strcspn (reply, "\n");
  {
    g_autofree char *line = g_strndup (reply, len);
    g_log_fn (g_log_opaque, result < 0 && g_str_has_prefix (request, "set "),
              request, result == 0 ? "ok" : line);
  }
}

int
pools_control_start (const char *path, rmr_admin_log_fn log, void *opaque)
{
  g_log_fn = log;
  g_log_opaque = opaque;
  g_srv =
    ctl_server_start_full (path, table, ARRAY_SIZE (table), NULL, log_request);
  return g_srv ? 0 : -errno;
}

void
pools_control_stop (void)
{
  ctl_server_stop (g_srv);
  g_srv = NULL;
}
