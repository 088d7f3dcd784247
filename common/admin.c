/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's pool registry (librmr's admin side): the admin guide's
 * client-side flow (join_pool, add_sess, enable, pool_enable, map_device,
 * unmap_device, del_sess, leave_pool) over the pool API, and the device
 * side's view of it (which pools are mapped devices, one reference per
 * user of a device).  The nbdkit plugin is one such user: its NBD
 * exports are the devices, one reference per NBD connection.
 *
 * Data: g_pools, an array of struct plugin_pool in join order (the
 * command-line pool first).  A pool's legs are its cfg.legs[0..nlegs) in
 * add_sess order; once open, leg i of the rmr_pool is cfg.legs[i].
 *
 * States (pools_state_unlocked): joined (rp NULL; legs can be added and
 * removed; on an enabled pool they are added and removed live through
 * rmr_pool_leg_add/remove), enabling (rp NULL, busy: rmr_pool_open running), enabled (rp
 * set), closing (rp NULL, busy: rmr_pool_close running).  Mapped is a
 * flag on an enabled pool.
 *
 * At unload, every pool is closed: nbdkit runs .unload with no request
 * in flight, even when connections are still open.
 *
 * Invariants: mapped implies rp; nhandles > 0 implies rp; rp is closed
 * only with !mapped and nhandles == 0, so no IO is in flight (the NBD
 * side takes a reference only on a mapped pool, and drops it in .close
 * after its last request).  All legs of a pool share one mode.
 *
 * Locking: g_lock protects g_pools and every pool's fields but name.  A command that must call librmr without the lock (open,
 * close, enable, reconnect: network round trips and timeouts) sets busy
 * first and clears it after; while busy, rp and cfg change only by that
 * command, other commands that change the pool are refused, and the pool
 * is not freed.  librmr is called with g_lock held only for the quick
 * accessors (rmr_pool_size, rmr_pool_leg_info), never the reverse, so
 * there is no lock-order cycle.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "admin.h"

/* Protects g_pools and the pools' fields (see the header). */
static GMutex g_lock;
static GPtrArray *g_pools;
static struct rmr_pool_config g_template;

void
pools_lock (void)
{
  g_mutex_lock (&g_lock);
}

void
pools_unlock (void)
{
  g_mutex_unlock (&g_lock);
}

const char *
pools_mode_name (enum rmr_pool_mode m)
{
  switch (m) {
  case RMR_MODE_AUTO: return "auto";
  case RMR_MODE_CREATE: return "create";
  case RMR_MODE_ASSEMBLE: return "assemble";
  }
  abort ();
}

void
pools_set_template (const struct rmr_pool_config *tmpl)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);

  g_template = *tmpl;
  g_template.pool_name[0] = '\0';
  g_template.size = 0;
  g_template.nlegs = 0;
  memset (g_template.legs, 0, sizeof g_template.legs);
}

static GPtrArray *
registry_unlocked (void)
{
  if (!g_pools)
    g_pools = g_ptr_array_new ();
  return g_pools;
}

/* Map or unmap pp: a mapped pool takes the lowest device index no other
 * mapped pool has, as the kernel numbers /dev/brmrN.
 */
static void
set_mapped_unlocked (struct plugin_pool *pp, bool mapped)
{
  uint32_t used = 0;
  unsigned i;

  pp->mapped = mapped;
  pp->dev_index = -1;
  if (!mapped)
    return;
  for (i = 0; i < g_pools->len; i++) {
    const struct plugin_pool *p = g_pools->pdata[i];
    if (p != pp && p->mapped && p->dev_index < 32)
      used |= UINT32_C (1) << p->dev_index;
  }
  /* A registry holds far fewer than 32 mapped pools in practice; past
   * that a device has no alias.
   */
  for (i = 0; i < 32; i++)
    if (!(used & (UINT32_C (1) << i))) {
      pp->dev_index = i;
      break;
    }
}

void
pools_add_open (struct rmr_pool *rp, const struct rmr_pool_config *cfg)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = g_new0 (struct plugin_pool, 1);
  struct rmr_leg_info info;
  unsigned i;

  snprintf (pp->name, sizeof pp->name, "%s", rmr_pool_name (rp));
  pp->cfg = *cfg;
  pp->cfg.ndelete = 0; /* done by this open */
  /* Sessions are found by name: keep the names librmr derived. */
  for (i = 0; i < pp->cfg.nlegs; i++) {
    pp->leg_enabled[i] = true;
    if (rmr_pool_leg_info (rp, i, &info) == 0)
      snprintf (pp->cfg.legs[i].sessname, sizeof pp->cfg.legs[i].sessname, "%s",
                info.sessname);
  }
  pp->rp = rp;
  g_ptr_array_add (registry_unlocked (), pp);
  set_mapped_unlocked (pp, true);
}

/* Release every held leg of pp (not open; the caller owns pp: busy, or
 * out of the registry).
 */
static void
release_holds (struct plugin_pool *pp)
{
  unsigned i;

  for (i = 0; i < RMR_MAX_MEMBERS; i++) {
    rmr_leg_unhold (pp->hold[i]);
    pp->hold[i] = NULL;
  }
}

void
pools_close_all (void)
{
  GPtrArray *pools;
  unsigned i;

  g_mutex_lock (&g_lock);
  pools = g_pools;
  g_pools = NULL;
  g_mutex_unlock (&g_lock);
  if (!pools)
    return;
  for (i = 0; i < pools->len; i++) {
    struct plugin_pool *pp = pools->pdata[i];
    /* nhandles may be > 0: nbdkit skips .close for connections that end
     * after it started quitting, but it runs .unload only when no request
     * is in flight and sends none after (server/locks.c, the unload
     * lock; free_connection () in server/connections.c).
     */
    assert (!pp->busy);
    release_holds (pp);
    rmr_pool_close (pp->rp);
    g_free (pp);
  }
  g_ptr_array_unref (pools);
}

struct plugin_pool *
pools_find_unlocked (const char *name)
{
  unsigned i;

  for (i = 0; g_pools && i < g_pools->len; i++) {
    struct plugin_pool *pp = g_pools->pdata[i];
    if (strcmp (pp->name, name) == 0)
      return pp;
  }
  return NULL;
}

int
pools_leg_index_unlocked (const struct plugin_pool *pp, const char *sessname)
{
  unsigned i;

  for (i = 0; i < pp->cfg.nlegs; i++)
    if (strcmp (pp->cfg.legs[i].sessname, sessname) == 0)
      return i;
  return -1;
}

/* N of "brmrN" (decimal, no leading zero), or -1. */
static int
parse_brmr_name (const char *name)
{
  const char *d = name + 4;
  size_t len = strlen (d);

  if (strncmp (name, "brmr", 4) != 0 || len == 0 || len > 2 ||
      strspn (d, "0123456789") != len || (d[0] == '0' && len > 1))
    return -1;
  return len == 1 ? d[0] - '0' : (d[0] - '0') * 10 + d[1] - '0';
}

struct plugin_pool *
pools_find_device_unlocked (const char *name)
{
  struct plugin_pool *pp = pools_find_unlocked (name);
  unsigned i;
  int n;

  if (pp)
    return pp->mapped ? pp : NULL;
  if ((n = parse_brmr_name (name)) < 0)
    return NULL;
  for (i = 0; g_pools && i < g_pools->len; i++) {
    pp = g_pools->pdata[i];
    if (pp->mapped && pp->dev_index == n)
      return pp;
  }
  return NULL;
}

const char *
pools_state_unlocked (const struct plugin_pool *pp)
{
  if (pp->rp)
    return "enabled";
  return pp->busy ? pp->busy : "joined";
}

void
pools_names (GPtrArray *names, bool mapped_only)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  unsigned i;

  for (i = 0; g_pools && i < g_pools->len; i++) {
    struct plugin_pool *pp = g_pools->pdata[i];
    if (!mapped_only || pp->mapped)
      g_ptr_array_add (names, g_strdup (pp->name));
  }
}

/* The pool a changing command works on: NULL with a message if there is
 * no such pool or another command is working on it.
 */
static struct plugin_pool *
find_idle_unlocked (const char *name, GString *err)
{
  struct plugin_pool *pp = pools_find_unlocked (name);

  if (!pp)
    g_string_append_printf (err, "no such pool '%s' (join_pool first)", name);
  else if (pp->busy) {
    g_string_append_printf (err,
                            "pool '%s' is busy (%s): try again when "
                            "that is done",
                            name, pp->busy);
    pp = NULL;
  }
  return pp;
}

/* The leg a command works on: its index, or -1 with a message. */
static int
find_leg_unlocked (const struct plugin_pool *pp, const char *sessname,
                   GString *err)
{
  int i = pools_leg_index_unlocked (pp, sessname);

  if (i < 0)
    g_string_append_printf (err, "pool '%s': no such session '%s'", pp->name,
                            sessname);
  return i;
}

/* librmr's message for the failure of the last call. */
static int
fail_rmr (GString *err)
{
  const char *msg = rmr_get_error ();

  g_string_append (err, msg ? msg : "failed");
  return -1;
}

int
pools_join (const char *name, uint32_t chunk_size, GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp;

  if (pools_find_unlocked (name)) {
    g_string_append_printf (err, "poolname: pool '%s' exists already", name);
    return -1;
  }
  pp = g_new0 (struct plugin_pool, 1);
  snprintf (pp->name, sizeof pp->name, "%s", name);
  pp->cfg = g_template;
  pp->cfg.ndelete = 0; /* per pool: delete_member */
  snprintf (pp->cfg.pool_name, sizeof pp->cfg.pool_name, "%s", name);
  if (chunk_size)
    pp->cfg.chunk_size = chunk_size;
  g_ptr_array_add (registry_unlocked (), pp);
  return 0;
}

/* add_sess on an enabled pool: a live leg (rmr_pool_leg_add), with the
 * lock dropped around it (busy).  The mode of the other sessions stays.
 */
static int
add_live_unlocked (struct plugin_pool *pp, const char *sessname,
                   const struct rmr_addr *addr, uint32_t member_id,
                   GString *err)
{
  struct rmr_leg_config lc = {.addr = *addr,
                              .check_member = member_id != RMR_MEMBER_NONE,
                              .member_id = member_id};
  int r;

  snprintf (lc.sessname, sizeof lc.sessname, "%s", sessname);
  pp->busy = "adding a session";
  g_mutex_unlock (&g_lock);
  r = rmr_pool_leg_add (pp->rp, &lc);
  g_mutex_lock (&g_lock);
  pp->busy = NULL;
  if (r < 0)
    return fail_rmr (err);
  /* Leg r of the rmr_pool is cfg.legs[r]: the last one. */
  assert ((unsigned) r == pp->cfg.nlegs);
  pp->cfg.legs[r] = lc;
  pp->leg_enabled[r] = true;
  pp->cfg.nlegs++;
  return 0;
}

int
pools_add_sess (const char *name, const char *sessname,
                const struct rmr_addr *addr, int mode, uint32_t member_id,
                GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = find_idle_unlocked (name, err);
  char a[300], b[300];
  unsigned i;

  if (!pp)
    return -1;
  if (pp->cfg.nlegs == RMR_MAX_MEMBERS) {
    g_string_append_printf (err,
                            "pool '%s' has %u sessions already (one per "
                            "storage node, at most %u)",
                            name, RMR_MAX_MEMBERS, RMR_MAX_MEMBERS);
    return -1;
  }
  if (pools_leg_index_unlocked (pp, sessname) >= 0) {
    g_string_append_printf (
      err, "sessname: pool '%s' has a session '%s' already", name, sessname);
    return -1;
  }
  rmr_addr_format (addr, a, sizeof a);
  for (i = 0; i < pp->cfg.nlegs; i++) {
    rmr_addr_format (&pp->cfg.legs[i].addr, b, sizeof b);
    if (strcmp (a, b) == 0) {
      g_string_append_printf (err,
                              "path: session '%s' of pool '%s' goes to "
                              "%s already (one session per storage node)",
                              pp->cfg.legs[i].sessname, name, a);
      return -1;
    }
  }
  if (pp->rp)
    return add_live_unlocked (pp, sessname, addr, member_id, err);
  if (pp->cfg.nlegs == 0)
    pp->cfg.mode = mode >= 0 ? (enum rmr_pool_mode) mode : g_template.mode;
  else if (mode >= 0 && (enum rmr_pool_mode) mode != pp->cfg.mode) {
    g_string_append_printf (err,
                            "mode: '%s', but the other sessions of pool "
                            "'%s' were added with mode=%s",
                            pools_mode_name (mode), name,
                            pools_mode_name (pp->cfg.mode));
    return -1;
  }
  i = pp->cfg.nlegs++;
  memset (&pp->cfg.legs[i], 0, sizeof pp->cfg.legs[i]);
  pp->cfg.legs[i].addr = *addr;
  snprintf (pp->cfg.legs[i].sessname, sizeof pp->cfg.legs[i].sessname, "%s",
            sessname);
  /* The admin guide enables create-mode sessions by hand; assembled ones
   * wait for the pool enable only.
   */
  pp->leg_enabled[i] = pp->cfg.mode != RMR_MODE_CREATE;
  return 0;
}

/* A pool is closed only when nothing uses it. */
static int
check_unused_unlocked (const struct plugin_pool *pp, const char *what,
                       GString *err)
{
  if (pp->mapped) {
    g_string_append_printf (err,
                            "pool '%s' is mapped: unmap it first "
                            "(brmr-client/ctl/devices/%s/unmap_device) to %s",
                            pp->name, pp->name, what);
    return -1;
  }
  if (pp->nhandles) {
    g_string_append_printf (err,
                            "pool '%s' still has %u NBD connection%s "
                            "open: disconnect %s to %s",
                            pp->name, pp->nhandles,
                            pp->nhandles == 1 ? "" : "s",
                            pp->nhandles == 1 ? "it" : "them", what);
    return -1;
  }
  return 0;
}

int
pools_del_sess (const char *name, const char *sessname, int mode, GString *out,
                GString *err)
{
  struct rmr_leg_hold *hold;
  struct plugin_pool *pp;
  bool closed = false;
  unsigned n;
  int i, r = 0;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (!pp || (i = find_leg_unlocked (pp, sessname, err)) < 0) {
    g_mutex_unlock (&g_lock);
    return -1;
  }
  if (pp->rp && pp->cfg.nlegs == 1 && !pp->mapped && pp->nhandles == 0) {
    /* The last leg of a pool nobody uses (the guide's disassemble and
     * delete, after unmap_device): the pool closes, its leg leaves
     * gracefully and the store keeps its data and metadata.
     */
    struct rmr_pool *rp = pp->rp;
    pp->rp = NULL;
    pp->busy = "closing";
    g_mutex_unlock (&g_lock);
    rmr_pool_close (rp);
    g_mutex_lock (&g_lock);
    pp->busy = NULL;
    closed = true;
    g_string_append_printf (out,
                            "pool '%s' closed: its last leg left it "
                            "gracefully\n",
                            name);
  }
  else if (pp->rp) {
    /* Live: leg i of the rmr_pool is cfg.legs[i]; both move down. */
    pp->busy = "removing a session";
    g_mutex_unlock (&g_lock);
    r = rmr_pool_leg_remove (pp->rp, i, mode);
    g_mutex_lock (&g_lock);
    pp->busy = NULL;
    if (r < 0) {
      g_mutex_unlock (&g_lock);
      return fail_rmr (err);
    }
  }
  n = pp->cfg.nlegs - i - 1;
  hold = pp->hold[i];
  memmove (&pp->cfg.legs[i], &pp->cfg.legs[i + 1], n * sizeof pp->cfg.legs[0]);
  memmove (&pp->leg_enabled[i], &pp->leg_enabled[i + 1],
           n * sizeof pp->leg_enabled[0]);
  memmove (&pp->hold[i], &pp->hold[i + 1], n * sizeof pp->hold[0]);
  pp->hold[pp->cfg.nlegs - 1] = NULL;
  pp->cfg.nlegs--;
  if (hold) {
    /* Not open: a held create-mode join leaves (unlocked, pool busy). */
    pp->busy = "releasing a session";
    g_mutex_unlock (&g_lock);
    rmr_leg_unhold (hold);
    g_mutex_lock (&g_lock);
    pp->busy = NULL;
  }
  if (!pp->rp && !closed && mode == RMR_LEG_DELETE)
    g_string_append_printf (out,
                            "pool '%s' is not enabled: session '%s' is gone "
                            "from the configuration only, its member stays "
                            "in the members' tables (set delete_member "
                            "member_id=ID before pool_enable, or delete a "
                            "leg while the pool is enabled)",
                            name, sessname);
  if (pp->rp)
    g_string_append_printf (out,
                            "session '%s' removed from pool '%s' (%s); %u "
                            "leg%s left",
                            sessname, name,
                            mode == RMR_LEG_DELETE ? "member deleted"
                                                   : "member disassembled",
                            pp->cfg.nlegs, pp->cfg.nlegs == 1 ? "" : "s");
  g_mutex_unlock (&g_lock);
  return 0;
}

int
pools_delete_member (const char *name, uint32_t member_id, GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = find_idle_unlocked (name, err);
  unsigned i;

  if (!pp)
    return -1;
  if (pp->rp) {
    g_string_append_printf (err,
                            "pool '%s' is enabled: delete a member with its "
                            "session's del_sess mode=delete",
                            name);
    return -1;
  }
  for (i = 0; i < pp->cfg.ndelete; i++)
    if (pp->cfg.delete_members[i] == member_id)
      return 0;
  if (pp->cfg.ndelete == RMR_MAX_MEMBERS) {
    g_string_append_printf (err, "member_id: at most %u members to delete",
                            RMR_MAX_MEMBERS);
    return -1;
  }
  pp->cfg.delete_members[pp->cfg.ndelete++] = member_id;
  return 0;
}

/* An enabled pool (and its leg sessname, unless NULL: *leg) marked busy
 * with what, for a command that calls librmr without the lock; end_op ()
 * when done.  NULL with a message in err.
 */
static struct plugin_pool *
begin_op (const char *name, const char *sessname, int *leg, const char *what,
          GString *err)
{
  struct plugin_pool *pp;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (pp && sessname && (*leg = find_leg_unlocked (pp, sessname, err)) < 0)
    pp = NULL;
  if (pp && !pp->rp) {
    g_string_append_printf (err, "pool '%s' is not enabled (pool_enable first)",
                            name);
    pp = NULL;
  }
  if (pp)
    pp->busy = what;
  g_mutex_unlock (&g_lock);
  return pp;
}

static void
end_op (struct plugin_pool *pp)
{
  g_mutex_lock (&g_lock);
  pp->busy = NULL;
  g_mutex_unlock (&g_lock);
}

/* Hold (join) or release create-mode leg i of pp, not open, found idle
 * with the lock held; the lock is dropped on return.
 */
static int
hold_unlocked (struct plugin_pool *pp, unsigned i, bool enabled, GString *err)
{
  struct rmr_pool_config cfg = pp->cfg;
  struct rmr_leg_hold *h = pp->hold[i];
  int r = 0;

  pp->busy = enabled ? "enabling a session" : "disabling a session";
  g_mutex_unlock (&g_lock);
  if (enabled) {
    h = rmr_leg_hold (&cfg, i);
    if (!h)
      r = fail_rmr (err);
  }
  else
    rmr_leg_unhold (h);
  g_mutex_lock (&g_lock);
  pp->busy = NULL;
  if (r == 0) {
    pp->hold[i] = enabled ? h : NULL;
    pp->leg_enabled[i] = enabled;
  }
  g_mutex_unlock (&g_lock);
  return r;
}

int
pools_leg_set_enabled (const char *name, const char *sessname, bool enabled,
                       GString *err)
{
  struct plugin_pool *pp;
  int i, r;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (!pp || (i = find_leg_unlocked (pp, sessname, err)) < 0) {
    g_mutex_unlock (&g_lock);
    return -1;
  }
  if (!pp->rp) {
    /* Not open yet: mark the leg ready (or not) for pool_enable.  A
     * create-mode leg joins now (its member's pool turns created), as
     * the admin guide's session enable does.
     */
    if (pp->cfg.mode == RMR_MODE_CREATE && enabled != !!pp->hold[i])
      return hold_unlocked (pp, i, enabled, err);
    pp->leg_enabled[i] = enabled;
    g_mutex_unlock (&g_lock);
    return 0;
  }
  pp->busy = enabled ? "enabling a session" : "disabling a session";
  g_mutex_unlock (&g_lock);

  r = rmr_pool_leg_set_enabled (pp->rp, i, enabled);
  g_mutex_lock (&g_lock);
  if (r == 0)
    pp->leg_enabled[i] = enabled;
  pp->busy = NULL;
  g_mutex_unlock (&g_lock);
  return r < 0 ? fail_rmr (err) : 0;
}

int
pools_leg_reconnect (const char *name, const char *sessname,
                     const struct rmr_addr *addr, GString *err)
{
  int i = -1, r;
  struct plugin_pool *pp =
    begin_op (name, sessname, &i, "reconnecting a session", err);

  if (!pp)
    return -1;
  r = rmr_pool_leg_reconnect (pp->rp, i, addr);
  g_mutex_lock (&g_lock);
  /* The new address is the leg's from now on (a later open uses it). */
  if (r == 0 && addr)
    pp->cfg.legs[i].addr = *addr;
  pp->busy = NULL;
  g_mutex_unlock (&g_lock);
  return r < 0 ? fail_rmr (err) : 0;
}

/* Open pp, found idle and not open with the lock held; the lock is
 * dropped around rmr_pool_open () and held again on return.  size: 0 or
 * the size the device must have.  On failure the pool stays joined, with
 * the reason in last_error and err.
 */
static int
open_unlocked (struct plugin_pool *pp, uint64_t size, GString *err)
{
  struct rmr_pool_config cfg;
  struct rmr_pool *rp;
  unsigned i;

  if (pp->cfg.nlegs == 0) {
    g_string_append_printf (err, "pool '%s' has no session (add_sess first)",
                            pp->name);
    return -1;
  }
  for (i = 0; i < pp->cfg.nlegs; i++)
    if (!pp->leg_enabled[i]) {
      g_string_append_printf (err,
                              "session '%s' of pool '%s' is not enabled "
                              "(write 1 to rmr-client/pools/%s/sessions/%s/"
                              "enable)",
                              pp->cfg.legs[i].sessname, pp->name, pp->name,
                              pp->cfg.legs[i].sessname);
      return -1;
    }
  cfg = pp->cfg;
  if (size)
    cfg.size = size;
  pp->busy = "enabling";
  pp->last_error[0] = '\0';
  g_mutex_unlock (&g_lock);

  /* The open joins every leg itself: the held joins go first. */
  release_holds (pp);
  rp = rmr_pool_open (&cfg);

  g_mutex_lock (&g_lock);
  pp->busy = NULL;
  if (!rp) {
    snprintf (pp->last_error, sizeof pp->last_error, "%s",
              rmr_get_error () ? rmr_get_error () : "failed");
    g_string_append (err, pp->last_error);
    return -1;
  }
  pp->rp = rp;
  pp->cfg.ndelete = 0; /* done by this open */
  return 0;
}

int
pools_auto_enable (const char *name, GString *out)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct rmr_pool_config cfg;
  struct plugin_pool *pp;
  int r;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (!pp || pp->rp || pp->cfg.mode != RMR_MODE_ASSEMBLE) {
    g_mutex_unlock (&g_lock);
    return 0;
  }
  cfg = pp->cfg;
  pp->busy = "probing its members";
  g_mutex_unlock (&g_lock);

  r = rmr_pool_probe (&cfg);

  g_mutex_lock (&g_lock);
  pp->busy = NULL;
  if (r == -EAGAIN) {
    g_string_append_printf (out, "pool '%s' waits for more sessions: %s\n",
                            name, rmr_get_error ());
    r = 0;
  }
  else if (r < 0)
    g_string_append_printf (out, "pool '%s' not enabled: %s\n", name,
                            rmr_get_error ());
  else if (pp->cfg.nlegs == cfg.nlegs && (r = open_unlocked (pp, 0, err)) == 0)
    g_string_append_printf (out,
                            "every member has a session: pool '%s' "
                            "enabled\n",
                            name);
  else if (r < 0)
    g_string_append_printf (out,
                            "pool '%s': the automatic pool enable failed "
                            "(%s); write 1 to pool_enable when fixed\n",
                            name, err->str);
  g_mutex_unlock (&g_lock);
  return r;
}

int
pools_enable (const char *name, GString *err)
{
  struct plugin_pool *pp;
  int r;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (!pp) {
    g_mutex_unlock (&g_lock);
    return -1;
  }
  if (!pp->rp) {
    r = open_unlocked (pp, 0, err);
    g_mutex_unlock (&g_lock);
    return r;
  }
  /* Enabled already: the guide's recovery step, every failed leg now. */
  pp->busy = "reconnecting failed sessions";
  g_mutex_unlock (&g_lock);
  r = rmr_pool_enable (pp->rp);
  end_op (pp);
  return r < 0 ? fail_rmr (err) : 0;
}

int
pools_map (const char *name, uint64_t size, GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = find_idle_unlocked (name, err);
  uint64_t have;

  if (!pp)
    return -1;
  if (pp->mapped) {
    g_string_append_printf (err, "pool '%s' is mapped already", name);
    return -1;
  }
  /* The guide's auto pool enable: a pool not enabled yet is opened now,
   * with the size checked by librmr before anything is enabled.
   */
  if (!pp->rp) {
    if (open_unlocked (pp, size, err) < 0)
      return -1;
    set_mapped_unlocked (pp, true);
    return 0;
  }
  have = rmr_pool_size (pp->rp);
  if (size && size != have) {
    g_string_append_printf (err,
                            "size: %" PRIu64 " sectors given, but pool "
                            "'%s' has %" PRIu64 " sectors (%" PRIu64 " bytes)",
                            size / 512, name, have / 512, have);
    return -1;
  }
  set_mapped_unlocked (pp, true);
  return 0;
}

int
pools_unmap (const char *name, GString *out, GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = pools_find_device_unlocked (name);

  if (!pp) {
    g_string_append_printf (err, "no such device '%s' (not mapped)", name);
    return -1;
  }
  name = pp->name;
  set_mapped_unlocked (pp, false);
  if (pp->nhandles)
    g_string_append_printf (
      out,
      "device '%s' unmapped: no new connection; "
      "%u open connection%s go%s on until %s client%s "
      "disconnect%s",
      name, pp->nhandles, pp->nhandles == 1 ? "" : "s",
      pp->nhandles == 1 ? "es" : "", pp->nhandles == 1 ? "its" : "their",
      pp->nhandles == 1 ? "" : "s", pp->nhandles == 1 ? "s" : "");
  return 0;
}

/* The admin guide's deletion rule 1: a client pool with sessions is not
 * deleted; its sessions are deleted first (del_sess closes an enabled
 * pool when its last leg goes).
 */
static int
check_no_sessions_unlocked (const struct plugin_pool *pp, GString *err)
{
  unsigned i;

  if (pp->cfg.nlegs == 0)
    return 0;
  g_string_append_printf (err, "pool '%s' still has %u session%s (", pp->name,
                          pp->cfg.nlegs, pp->cfg.nlegs == 1 ? "" : "s");
  for (i = 0; i < pp->cfg.nlegs; i++)
    g_string_append_printf (err, "%s%s", i ? " " : "",
                            pp->cfg.legs[i].sessname);
  g_string_append_printf (err,
                          "): delete them first "
                          "(rmr-client/pools/%s/sessions/SESS/del_sess)",
                          pp->name);
  return -1;
}

int
pools_leave (const char *name, GString *err)
{
  struct plugin_pool *pp;

  g_mutex_lock (&g_lock);
  pp = find_idle_unlocked (name, err);
  if (!pp || check_unused_unlocked (pp, "leave it", err) < 0 ||
      check_no_sessions_unlocked (pp, err) < 0) {
    g_mutex_unlock (&g_lock);
    return -1;
  }
  g_ptr_array_remove (g_pools, pp);
  g_mutex_unlock (&g_lock);

  rmr_pool_close (pp->rp);
  g_free (pp);
  return 0;
}

struct plugin_pool *
pools_get (const char *name, struct rmr_pool **rp, GString *err)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  struct plugin_pool *pp = NULL;
  unsigned i;

  if (name[0])
    pp = pools_find_device_unlocked (name);
  for (i = 0; !name[0] && g_pools && i < g_pools->len; i++) {
    struct plugin_pool *p = g_pools->pdata[i];
    if (p->mapped) {
      pp = p;
      break;
    }
  }
  if (!pp && name[0])
    pp = pools_find_unlocked (name);
  if (pp && pp->mapped) {
    assert (pp->rp);
    pp->nhandles++;
    *rp = pp->rp;
    return pp;
  }
  if (!name[0])
    g_string_append (err, "no pool is mapped yet (rmradm set "
                          "brmr-client/ctl/map_device 'pool=NAME')");
  else if (pp)
    g_string_append_printf (err,
                            "pool '%s' is not mapped (rmradm set "
                            "brmr-client/ctl/map_device 'pool=%s')",
                            name, name);
  else {
    g_string_append_printf (err, "no export named '%s' (mapped pools:", name);
    for (i = 0; g_pools && i < g_pools->len; i++) {
      struct plugin_pool *p = g_pools->pdata[i];
      if (p->mapped)
        g_string_append_printf (err, " %s", p->name);
    }
    g_string_append (err, ")");
  }
  return NULL;
}

void
pools_put (struct plugin_pool *pp)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);

  assert (pp->nhandles > 0);
  pp->nhandles--;
}

char *
pools_default_export (void)
{
  G_GNUC_UNUSED g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&g_lock);
  unsigned i;

  for (i = 0; g_pools && i < g_pools->len; i++) {
    struct plugin_pool *pp = g_pools->pdata[i];
    if (pp->mapped)
      return g_strdup (pp->name);
  }
  return NULL;
}
