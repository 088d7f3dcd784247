/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public face of the client's pool registry (rmr/rmr.h, "The admin
 * guide's client side"): thin wrappers over admin.c and admin-control.c
 * that keep GLib out of the public API.  Strings handed to the program
 * are malloc'd (GLib's allocator is the system's, but the program frees
 * with free ()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "error.h"

void
rmr_admin_set_template (const struct rmr_pool_config *tmpl)
{
  pools_set_template (tmpl);
}

int
rmr_admin_start (const char *path, rmr_admin_log_fn log, void *opaque)
{
  return pools_control_start (path, log, opaque);
}

void
rmr_admin_stop (void)
{
  pools_control_stop ();
  pools_close_all ();
}

void
rmr_admin_add_pool (struct rmr_pool *pool, const struct rmr_pool_config *cfg)
{
  pools_add_open (pool, cfg);
}

struct rmr_device *
rmr_device_get (const char *name, struct rmr_pool **pool)
{
  g_autoptr (GString) err = g_string_new (NULL);
  struct plugin_pool *pp = pools_get (name, pool, err);

  if (!pp) {
    rmr_err (ENOENT, "%s", err->str);
    return NULL;
  }
  return (struct rmr_device *) pp;
}

void
rmr_device_put (struct rmr_device *dev)
{
  pools_put ((struct plugin_pool *) dev);
}

static char *
dup_or_null (const char *s)
{
  char *d = s ? strdup (s) : NULL;

  if (s && !d)
    errno = ENOMEM;
  return d;
}

char **
rmr_device_names (void)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  char **v;
  guint i;

  pools_names (names, true);
  v = calloc (names->len + 1, sizeof *v);
  if (!v) {
    errno = ENOMEM;
    return NULL;
  }
  for (i = 0; i < names->len; i++)
    if (!(v[i] = dup_or_null (names->pdata[i]))) {
      rmr_strv_free (v);
      return NULL;
    }
  return v;
}

char *
rmr_device_default (void)
{
  g_autofree char *name = pools_default_export ();

  return dup_or_null (name);
}

void
rmr_strv_free (char **v)
{
  size_t i;

  for (i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}
