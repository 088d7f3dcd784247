/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The plugin's control socket: the admin guide's rmr-client and
 * brmr-client trees over the plugin's pools (plugin-control.c).
 */
#ifndef RMR_PLUGIN_CONTROL_H
#define RMR_PLUGIN_CONTROL_H

/* Start serving path (a thread answers rmradm); -1 with errno and
 * rmr_get_error () set.
 */
int plugin_control_start (const char *path);
/* Stop the thread and remove the socket; no control command runs after
 * it returns.
 */
void plugin_control_stop (void);

#endif /* RMR_PLUGIN_CONTROL_H */
