/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's pools (admin.c): every client pool this process knows,
 * opened by the program or configured step by step through the control
 * socket (admin-control.c), and which of them are mapped devices (for
 * the nbdkit plugin: its NBD exports).  The public face is the
 * rmr_admin_* and rmr_device_* functions of rmr/rmr.h.
 *
 * Life of a pool: joined (join_pool, legs added with add_sess) ->
 * enabled (pool_enable or map_device: rmr_pool_open) -> mapped (an NBD
 * export) -> unmapped -> left (leave_pool: rmr_pool_close, forgotten).
 *
 * Locking: one registry lock (pools_lock) guards the list and every field
 * of every pool but name.  Slow work (opening, closing, reconnecting)
 * runs without it: the command marks the pool busy, and a busy pool
 * refuses other commands that change it.  A pool is closed only
 * when it is not mapped and no NBD connection holds it, so IO never
 * races with rmr_pool_close ().
 */
#ifndef RMR_ADMIN_H
#define RMR_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "rmr/rmr.h"

struct plugin_pool {
  /* Constant while the pool is in the registry. */
  char name[RMR_POOL_NAME_MAX + 1];

  /* Protected by the registry lock. */
  struct rmr_pool_config cfg; /* options, chunk size, legs (the sessions) */
  bool leg_enabled[RMR_MAX_MEMBERS]; /* before the pool is enabled */
  /* A create-mode leg enabled before the pool: joined on its member
   * (rmr_leg_hold), released before the pool opens.
   */
  struct rmr_leg_hold *hold[RMR_MAX_MEMBERS];
  struct rmr_pool *rp;  /* NULL until enabled */
  const char *busy;     /* what a command does unlocked, or NULL */
  bool mapped;          /* an NBD export (map_device) */
  int dev_index;        /* while mapped: N of the guide's device name brmrN */
  unsigned nhandles;    /* NBD connections holding rp */
  char last_error[512]; /* why the last pool_enable failed */
};

/* "auto", "create" or "assemble". */
const char *pools_mode_name (enum rmr_pool_mode m);

/* Options of pools configured through the control socket: pool options
 * of the command line without pool= (timeouts, read policy, ...).
 */
void pools_set_template (const struct rmr_pool_config *tmpl);

/* Register the command-line pool, already open, as enabled and mapped.
 * Takes ownership of rp.
 */
void pools_add_open (struct rmr_pool *rp, const struct rmr_pool_config *cfg);

/* Close and forget every pool, at unload: the control thread stopped,
 * and nbdkit has no request in flight and sends none after (connections
 * still open then are never closed through .close).
 */
void pools_close_all (void);

/* The registry lock, for readers (the control socket's getters). */
void pools_lock (void);
void pools_unlock (void);
struct plugin_pool *pools_find_unlocked (const char *name);
/* The mapped pool that is the device name: a pool name, or the guide's
 * kernel-style alias brmrN (the Nth free index when it was mapped; a
 * pool of that name wins).  NULL if none.
 */
struct plugin_pool *pools_find_device_unlocked (const char *name);
/* Index of the leg named sessname, or -1. */
int pools_leg_index_unlocked (const struct plugin_pool *pp,
                              const char *sessname);
/* joined, enabling, enabled or closing. */
const char *pools_state_unlocked (const struct plugin_pool *pp);
/* Append the names (g_strdup) of every pool, or of the mapped ones. */
void pools_names (GPtrArray *names, bool mapped_only);

/* Control commands.  Each returns 0, or -1 with a one-line message
 * appended to err; notes for the administrator go to out.
 */
int pools_join (const char *name, uint32_t chunk_size, GString *err);
/* mode: RMR_MODE_* or -1 for "as the other sessions" (the template's for
 * the first one).
 */
/* member_id: the member the node must be (RMR_MEMBER_NONE: any); only
 * checked on an enabled pool (a live add).
 */
int pools_add_sess (const char *name, const char *sessname,
                    const struct rmr_addr *addr, int mode, uint32_t member_id,
                    GString *err);
/* The admin guide's automatic pool enable after an assemble: when every
 * member of an assembled pool (not enabled yet) has a session, open it.
 * A note for the administrator goes to out (what it waits for, or why
 * the open failed).  Returns 0, or -1 when the open was tried and
 * failed; the session stays added either way.
 */
int pools_auto_enable (const char *name, GString *out);
/* mode: RMR_LEG_DISASSEMBLE or RMR_LEG_DELETE.  On an enabled pool (mapped
 * or not) the leg is removed live (rmr_pool_leg_remove); else only from
 * the configuration.
 */
int pools_del_sess (const char *name, const char *sessname, int mode,
                    GString *out, GString *err);
/* Take member_id out of the pool at its next open (an assemble): the
 * offline del_sess mode=delete.  Only on a pool not enabled.
 */
int pools_delete_member (const char *name, uint32_t member_id, GString *err);
int pools_leg_set_enabled (const char *name, const char *sessname, bool enabled,
                           GString *err);
/* addr NULL: the same address. */
int pools_leg_reconnect (const char *name, const char *sessname,
                         const struct rmr_addr *addr, GString *err);
/* Open the pool with its legs (or, enabled already, reconnect every
 * failed leg now).
 */
int pools_enable (const char *name, GString *err);
/* Make it an export, opening it first if needed; size in bytes, 0 for
 * any.
 */
int pools_map (const char *name, uint64_t size, GString *err);
int pools_unmap (const char *name, GString *out, GString *err);
int pools_leave (const char *name, GString *err);

/* NBD side.  The mapped pool named name ("" for the default export),
 * held until pools_put (); *rp is its open pool.  NULL with a message in
 * err when there is no such export.
 */
struct plugin_pool *pools_get (const char *name, struct rmr_pool **rp,
                               GString *err);
void pools_put (struct plugin_pool *pp);
/* The default export: the first mapped pool (the command-line one when
 * it is mapped), g_strdup'd, or NULL when none is.
 */
char *pools_default_export (void);

/* The metrics of every enabled pool in the Prometheus text format,
 * appended to out (admin-control.c; also served by the plugin's
 * metrics= endpoint).
 */
void pools_metrics (GString *out);

/* admin-control.c: the control socket's tree (see the file); log gets
 * every request with its outcome.  0 or -errno with the error set.
 */
int pools_control_start (const char *path, rmr_admin_log_fn log, void *opaque);
void pools_control_stop (void);

#endif /* RMR_ADMIN_H */
