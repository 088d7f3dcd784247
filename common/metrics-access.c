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
 * Everything is read and checked at start: a missing or unreadable
 * file, a certificate and key that do not belong together, a line of the
 * auth file without its colon, are one-line errors naming the setting,
 * and nothing starts.  A daemon reads the same files again on a reload
 * (a renewed certificate, a rotated password): the same checks, and a
 * failure leaves the endpoint as it was.  A password is compared in time
 * independent of where it differs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "error.h"
#include "metrics.h"

struct metrics_creds {
  char *cert_pem, *key_pem; /* NULL: plain HTTP */
  size_t cert_len, key_len;
  GPtrArray *users;     /* char *; empty: no authentication */
  GPtrArray *passwords; /* char *, by users' index */
};

static void wipe_free (char *p, size_t n);

static void
wipe_str (gpointer p)
{
  wipe_free (p, strlen (p));
}

void
metrics_creds_free (struct metrics_creds *c)
{
  if (!c)
    return;
  g_free (c->cert_pem);
  wipe_free (c->key_pem, c->key_len);
  g_ptr_array_unref (c->users);
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

/* Wipe and free a secret's buffer. */
static void
wipe_free (char *p, size_t n)
{
  if (!p)
    return;
  explicit_bzero (p, n);
  g_free (p);
}

/* The whole of the regular file path, in one buffer of its size (no
 * copies left behind by growing or by stdio); *len its length.
 */
static int
read_whole (const char *what, const struct metrics_access *a, const char *key,
            const char *path, char **text, size_t *len)
{
  g_autofree char *name = key_name (a, key);
  const char *why = NULL;
  struct stat st;
  size_t got = 0;
  char *buf = NULL;
  ssize_t n;
  int fd, err = 0;

  fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    err = errno;
  else if (fstat (fd, &st) < 0)
    err = errno;
  else if (!S_ISREG (st.st_mode))
    why = "not a regular file";
  else if (st.st_size > MAX_FILE)
    why = "larger than 1 MiB";
  else {
    buf = g_malloc (st.st_size + 1);
    while (got < (size_t) st.st_size &&
           ((n = read (fd, buf + got, st.st_size - got)) > 0 ||
            (n < 0 && errno == EINTR)))
      if (n > 0)
        got += n;
    if (got < (size_t) st.st_size)
      err = errno ? errno : EIO;
    buf[got] = '\0';
  }
  if (fd >= 0)
    close (fd);
  if (err || why) {
    wipe_free (buf, got + 1);
    return rmr_err (EINVAL, "%s: %s: '%s': %s", what, name, path,
                    why ? why : strerror (err));
  }
  *text = buf;
  *len = got;
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
  if (read_whole (what, a, "tls_cert", a->tls_cert, &c->cert_pem,
                  &c->cert_len) < 0 ||
      read_whole (what, a, "tls_key", a->tls_key, &c->key_pem, &c->key_len) < 0)
    return -EINVAL;
  /* libmicrohttpd would only fail to start: GnuTLS says why. */
  if (gnutls_certificate_allocate_credentials (&cred) < 0)
    return rmr_err (ENOMEM, "%s: %s: no memory", what, cert_name);
  cd = (gnutls_datum_t){.data = (unsigned char *) c->cert_pem,
                        .size = c->cert_len};
  kd =
    (gnutls_datum_t){.data = (unsigned char *) c->key_pem, .size = c->key_len};
  r = gnutls_certificate_set_x509_key_mem (cred, &cd, &kd, GNUTLS_X509_FMT_PEM);
  gnutls_certificate_free_credentials (cred);
  if (r < 0)
    return rmr_err (EINVAL, "%s: %s '%s', %s '%s': %s", what, cert_name,
                    a->tls_cert, key_name_, a->tls_key, gnutls_strerror (r));
  return 0;
}

/* The auth file's lines, parsed where they lie (no copies but the
 * entries): USER:PASSWORD, the password everything after the first
 * colon up to the end of the line (a CR before it dropped); blank lines
 * and lines starting with '#' skipped.
 */
static int
parse_auth (const char *what, const char *name, const char *path, char *text,
            size_t len, struct metrics_creds *c)
{
  char *l = text, *end = text + len;
  unsigned n = 0;

  for (; l < end; l++) {
    char *eol = memchr (l, '\n', end - l), *colon, *p;
    if (!eol)
      eol = end;
    n++;
    if (eol > l && eol[-1] == '\r')
      eol[-1] = '\0';
    *eol = '\0';
    for (p = l; *p == ' ' || *p == '\t'; p++)
      ;
    if (*p && *p != '#') {
      colon = strchr (p, ':');
      if (!colon || colon == p || !colon[1])
        return rmr_err (EINVAL, "%s: %s: '%s' line %u: expected USER:PASSWORD",
                        what, name, path, n);
      g_ptr_array_add (c->users, g_strndup (p, colon - p));
      g_ptr_array_add (c->passwords, g_strdup (colon + 1));
    }
    l = eol;
  }
  if (!c->users->len)
    return rmr_err (EINVAL, "%s: %s: '%s' has no USER:PASSWORD line", what,
                    name, path);
  return 0;
}

static int
load_auth (const char *what, const struct metrics_access *a,
           struct metrics_creds *c)
{
  g_autofree char *name = key_name (a, "auth");
  char *text = NULL;
  size_t len;
  int r;

  if (!a->auth)
    return 0;
  if (read_whole (what, a, "auth", a->auth, &text, &len) < 0)
    return -EINVAL;
  r = parse_auth (what, name, a->auth, text, len, c);
  wipe_free (text, len + 1);
  return r;
}

int
metrics_creds_load (const char *what, const struct metrics_access *a,
                    struct metrics_creds **out)
{
  struct metrics_creds *c = g_new0 (struct metrics_creds, 1);

  c->users = g_ptr_array_new_with_free_func (g_free);
  c->passwords = g_ptr_array_new_with_free_func (wipe_str);
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

static bool
same_bytes (const char *x, size_t n, const char *y, size_t m)
{
  return n == m && (n == 0 || memcmp (x, y, n) == 0);
}

static bool
same_strv (GPtrArray *x, GPtrArray *y)
{
  guint i;

  if (x->len != y->len)
    return false;
  for (i = 0; i < x->len; i++)
    if (strcmp (g_ptr_array_index (x, i), g_ptr_array_index (y, i)) != 0)
      return false;
  return true;
}

bool
metrics_creds_equal (const struct metrics_creds *a,
                     const struct metrics_creds *b)
{
  return same_bytes (a->cert_pem, a->cert_len, b->cert_pem, b->cert_len) &&
         same_bytes (a->key_pem, a->key_len, b->key_pem, b->key_len) &&
         same_strv (a->users, b->users) &&
         same_strv (a->passwords, b->passwords);
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
  /* Every line, user and password compared alike: neither the time nor
   * anything else tells a user that exists from one that does not.
   */
  for (guint i = 0; i < c->users->len; i++) {
    unsigned u = same (user, g_ptr_array_index (c->users, i));
    unsigned p = same (password, g_ptr_array_index (c->passwords, i));
    ok |= (u & p) != 0; /* both compared, whatever the user */
  }
  return ok;
}
