/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may scrape /metrics (metrics-http.c): HTTPS with the operator's
 * certificate and key, and HTTP basic authentication against a file of
 * USER:PASSWORD lines.  Either, both or neither; with neither, anyone who
 * reaches the port reads the pools' names, states and counters (bind it
 * where only the monitoring host reaches it), and a port open beyond
 * loopback is warned about at start.  Basic authentication without TLS
 * sends the password in the clear: it keeps out the curious, not a
 * listener on the path.
 *
 * Everything is read and checked once, at start: a missing or unreadable
 * file, a certificate and key that do not belong together, a line of the
 * auth file without its colon, are one-line errors naming the setting,
 * and nothing starts.  A password is compared in time independent of
 * where it differs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "error.h"
#include "metrics.h"

struct metrics_creds {
  char *cert_pem, *key_pem; /* NULL: plain HTTP */
  GPtrArray *users;         /* char *; empty: no authentication */
  GPtrArray *passwords;     /* char *, by users' index */
};

void
metrics_creds_free (struct metrics_creds *c)
{
  if (!c)
    return;
  g_free (c->cert_pem);
  if (c->key_pem)
    memset (c->key_pem, 0, strlen (c->key_pem));
  g_free (c->key_pem);
  g_ptr_array_unref (c->users);
  for (guint i = 0; i < c->passwords->len; i++) {
    char *p = g_ptr_array_index (c->passwords, i);
    memset (p, 0, strlen (p));
  }
  g_ptr_array_unref (c->passwords);
  g_free (c);
}

/* The setting's name as the caller spells it: "metrics_auth" in a
 * config file, "metrics-auth" as a parameter.
 */
static char *
key_name (const struct metrics_access *a, const char *key)
{
  g_autofree char *k = g_strdup_printf ("metrics_%s", key);

  g_strdelimit (k, "_", a->sep ? a->sep : '_');
  return g_steal_pointer (&k);
}

#define MAX_FILE (1 << 20) /* a certificate chain, a key, an auth file */

static int
read_whole (const char *what, const struct metrics_access *a, const char *key,
            const char *path, char **text)
{
  g_autofree char *name = key_name (a, key);
  GString *g = g_string_new (NULL);
  FILE *f = fopen (path, "re");
  char buf[4096];
  size_t n;
  int err;

  if (!f)
    err = errno;
  else {
    while ((n = fread (buf, 1, sizeof buf, f)) > 0 && g->len <= MAX_FILE)
      g_string_append_len (g, buf, n);
    err = ferror (f) ? EIO : g->len > MAX_FILE ? EFBIG : 0;
    fclose (f);
  }
  if (err) {
    memset (g->str, 0, g->len);
    g_string_free (g, TRUE);
    return rmr_err (EINVAL, "%s: %s: '%s': %s", what, name, path,
                    err == EFBIG ? "larger than 1 MiB" : strerror (err));
  }
  *text = g_string_free (g, FALSE);
  return 0;
}

static int
load_tls (const char *what, const struct metrics_access *a,
          struct metrics_creds *c)
{
  g_autofree char *cert_name = key_name (a, "tls_cert");
  g_autofree char *key_name_ = key_name (a, "tls_key");
  gnutls_certificate_credentials_t cred;
  gnutls_datum_t cd, kd;
  int r;

  if (!a->tls_cert != !a->tls_key)
    return rmr_err (EINVAL, "%s: %s: needed with %s", what,
                    a->tls_cert ? key_name_ : cert_name,
                    a->tls_cert ? cert_name : key_name_);
  if (!a->tls_cert)
    return 0;
  if (read_whole (what, a, "tls_cert", a->tls_cert, &c->cert_pem) < 0 ||
      read_whole (what, a, "tls_key", a->tls_key, &c->key_pem) < 0)
    return -EINVAL;
  /* libmicrohttpd would only fail to start: GnuTLS says why. */
  if (gnutls_certificate_allocate_credentials (&cred) < 0)
    return rmr_err (ENOMEM, "%s: %s: no memory", what, cert_name);
  cd = (gnutls_datum_t){.data = (unsigned char *) c->cert_pem,
                        .size = strlen (c->cert_pem)};
  kd = (gnutls_datum_t){.data = (unsigned char *) c->key_pem,
                        .size = strlen (c->key_pem)};
  r = gnutls_certificate_set_x509_key_mem (cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
  gnutls_certificate_free_credentials (cred);
  if (r < 0)
    return rmr_err (EINVAL, "%s: %s '%s', %s '%s': %s", what, cert_name,
                    a->tls_cert, key_name_, a->tls_key, gnutls_strerror (r));
  return 0;
}

static int
load_auth (const char *what, const struct metrics_access *a,
           struct metrics_creds *c)
{
  g_autofree char *name = key_name (a, "auth");
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  unsigned i;

  if (!a->auth)
    return 0;
  if (read_whole (what, a, "auth", a->auth, &text) < 0)
    return -EINVAL;
  lines = g_strsplit (text, "\n", -1);
  memset (text, 0, strlen (text));
  for (i = 0; lines[i]; i++) {
    char *l = g_strstrip (lines[i]), *colon;
    if (!*l || *l == '#')
      continue;
    colon = strchr (l, ':');
    if (!colon || colon == l || !colon[1])
      return rmr_err (EINVAL, "%s: %s: '%s' line %u: expected USER:PASSWORD",
                      what, name, a->auth, i + 1);
    g_ptr_array_add (c->users, g_strndup (l, colon - l));
    g_ptr_array_add (c->passwords, g_strdup (colon + 1));
  }
  for (i = 0; lines[i]; i++)
    memset (lines[i], 0, strlen (lines[i]));
  if (!c->users->len)
    return rmr_err (EINVAL, "%s: %s: '%s' has no USER:PASSWORD line", what,
                    name, a->auth);
  return 0;
}

int
metrics_creds_load (const char *what, const struct metrics_access *a,
                    struct metrics_creds **out)
{
  struct metrics_creds *c = g_new0 (struct metrics_creds, 1);

  c->users = g_ptr_array_new_with_free_func (g_free);
  c->passwords = g_ptr_array_new_with_free_func (g_free);
  *out = NULL;
  if (a && (load_tls (what, a, c) < 0 || load_auth (what, a, c) < 0)) {
    metrics_creds_free (c);
    return -EINVAL;
  }
  *out = c;
  return 0;
}

int
metrics_access_check (const char *what, const struct metrics_access *a)
{
  struct metrics_creds *c;

  if (metrics_creds_load (what, a, &c) < 0)
    return -EINVAL;
  metrics_creds_free (c);
  return 0;
}

const char *
metrics_creds_cert (const struct metrics_creds *c)
{
  return c->cert_pem;
}

const char *
metrics_creds_key (const struct metrics_creds *c)
{
  return c->key_pem;
}

bool
metrics_creds_auth (const struct metrics_creds *c)
{
  return c->users->len > 0;
}

/* Equal, in time that depends on the lengths only. */
static bool
same (const char *x, const char *y)
{
  size_t n = strlen (x), m = strlen (y), i;
  unsigned char d = n != m;

  for (i = 0; i < n; i++)
    d |= (unsigned char) x[i] ^ (unsigned char) y[i % (m ? m : 1)];
  return d == 0 && m > 0;
}

bool
metrics_creds_allow (const struct metrics_creds *c, const char *user,
                     const char *password)
{
  bool ok = false;

  if (!metrics_creds_auth (c))
    return true;
  if (!user || !password)
    return false;
  for (guint i = 0; i < c->users->len; i++)
    ok |= strcmp (user, g_ptr_array_index (c->users, i)) == 0 &&
          same (password, g_ptr_array_index (c->passwords, i));
  return ok;
}
