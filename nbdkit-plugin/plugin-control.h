/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The plugin's control socket: the admin guide's rmr-client tree for the
 * pool this nbdkit serves (plugin-control.c).
 */
#ifndef RMR_PLUGIN_CONTROL_H
#define RMR_PLUGIN_CONTROL_H

#include "rmr/rmr.h"

/* Start serving path for pool; -1 with errno and rmr_get_error () set. */
int plugin_control_start (const char *path, struct rmr_pool *pool);
void plugin_control_stop (void);

#endif /* RMR_PLUGIN_CONTROL_H */
