/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS 1.3 with pre-shared keys (tls.h, DESIGN 9) through GnuTLS.
 *
 * Configuration: rmr_tls_setup () reads and checks the whole key file
 * before anything changes, builds the GnuTLS credentials (a client one
 * with our username and key, a server one that looks identities up in
 * the file's table) and the priority (TLS 1.3 only; ECDHE-PSK first for
 * forward secrecy, then DHE-PSK and plain PSK; AES-GCM first), and
 * publishes them as
 * the process's current configuration.  A configuration is never freed:
 * sessions opened with it may live on after a later setup (the old ones
 * stay referenced from `retired`).
 *
 * Handshake: gnutls_handshake () on the blocking socket with GnuTLS's own
 * timeout.  The server's key callback records the identity the peer
 * presented and whether the file knows it, so a refusal can say "unknown
 * identity" or "wrong key" and name it.
 *
 * Records: sends gather a message's pieces into one record's worth of
 * staging (sbuf, the caller's send lock protects it); a payload larger
 * than a record is passed to GnuTLS straight from the caller's buffer.
 * rmr_tls_pending () tells the receive loop that a record is decrypted
 * and waiting, which poll () on the socket cannot see.
 *
 * One session, two threads (a sender under the connection's send lock,
 * the receive thread): GnuTLS keeps some state of both directions
 * together, and a TLS 1.3 key update (GnuTLS starts one by itself before
 * AES-GCM's record limit, and a peer may ask for one) copies the other
 * direction's sequence number; run beside the other thread, it broke
 * the session after 2^24 records and could reuse a nonce.  So after the
 * handshake the socket is non-blocking and every GnuTLS call holds the
 * session's lock, which is never held while waiting: a send that would
 * block returns GNUTLS_E_AGAIN with the record kept, the sender waits
 * for POLLOUT without the lock and calls again; a receive without a
 * whole record returns -EAGAIN and the receive loop polls.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>

#include "error.h"
#include "tls.h"
#include "util.h"

#define SBUF_SIZE 16384 /* one TLS record of plaintext */
#define PSK_MIN_BYTES 16
#define PSK_MAX_BYTES 512
/* AES-GCM first, explicitly: GnuTLS 3.7 otherwise picked ChaCha20 on
 * this machine kind, which has AES-NI and ran AES-128-GCM 11x faster
 * (gnutls-cli --benchmark-ciphers: 4.9 against 0.44 GB/s).
 */
#define PRIORITY                                                               \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"       \
  "+CHACHA20-POLY1305:+ECDHE-PSK:+DHE-PSK:+PSK"

struct rmr_tls {
  enum rmr_tls_mode mode;
  char *file;
  char *username;
  GHashTable *keys; /* username -> GBytes key */
  gnutls_psk_client_credentials_t ccred;
  gnutls_psk_server_credentials_t scred;
  gnutls_priority_t prio;
};

struct rmr_tls_sess {
  const struct rmr_tls *cfg;
  int fd;
  pthread_mutex_t lock; /* protects: gs (every call after the handshake) */
  gnutls_session_t gs;
  char identity[RMR_TLS_ID_MAX + 1];
  bool known; /* server: the file has the identity */
  char desc[96];
  size_t slen;
  uint8_t sbuf[SBUF_SIZE];
};

static struct rmr_tls tls_off = {.mode = RMR_TLS_OFF, .username = (char *) ""};
static _Atomic (const struct rmr_tls *) current = &tls_off;
static GMutex setup_lock;  /* protects: retired, setting current */
static GPtrArray *retired; /* configurations replaced, kept alive */

const struct rmr_tls *
rmr_tls_current (void)
{
  return atomic_load (&current);
}

enum rmr_tls_mode
rmr_tls_mode (const struct rmr_tls *t)
{
  return t->mode;
}

const char *
rmr_tls_username (const struct rmr_tls *t)
{
  return t->username;
}

const char *
rmr_tls_mode_name (enum rmr_tls_mode m)
{
  switch (m) {
  case RMR_TLS_OFF: return "off";
  case RMR_TLS_ON: return "on";
  case RMR_TLS_REQUIRE: return "require";
  }
  return "?";
}

int
rmr_tls_parse_mode (const char *s, const char *what, enum rmr_tls_mode *out)
{
  if (strcmp (s, "off") == 0)
    *out = RMR_TLS_OFF;
  else if (strcmp (s, "on") == 0)
    *out = RMR_TLS_ON;
  else if (strcmp (s, "require") == 0)
    *out = RMR_TLS_REQUIRE;
  else
    return rmr_err (EINVAL, "%s: '%s' is not off, on or require", what, s);
  return 0;
}

/* Identities: printable ASCII without spaces or ':' (the file's
 * separator), so they can be logged as they are.
 */
static bool
good_identity (const char *s, size_t len)
{
  size_t i;

  if (len == 0 || len > RMR_TLS_ID_MAX)
    return false;
  for (i = 0; i < len; i++)
    if (s[i] <= ' ' || s[i] > '~' || s[i] == ':')
      return false;
  return true;
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* One "USERNAME:HEXKEY" line into keys. */
static int
parse_line (const char *file, unsigned lineno, char *line, GHashTable *keys)
{
  char *colon = strchr (line, ':');
  const char *hex;
  size_t hexlen, i, n;
  g_autofree uint8_t *key = NULL;

  if (!colon)
    return rmr_err (EINVAL,
                    "key file %s: line %u: no ':' (expected "
                    "USERNAME:HEXKEY, as psktool writes)",
                    file, lineno);
  *colon = '\0';
  if (!good_identity (line, colon - line))
    return rmr_err (EINVAL,
                    "key file %s: line %u: bad username (1 to %d "
                    "printable characters, no spaces)",
                    file, lineno, RMR_TLS_ID_MAX);
  hex = colon + 1;
  hexlen = strlen (hex);
  if (hexlen % 2 != 0)
    return rmr_err (EINVAL,
                    "key file %s: line %u: key of '%s' has an odd "
                    "number of hex digits",
                    file, lineno, line);
  n = hexlen / 2;
  if (n < PSK_MIN_BYTES || n > PSK_MAX_BYTES)
    return rmr_err (EINVAL,
                    "key file %s: line %u: key of '%s' is %zu bytes; "
                    "%d to %d (psktool makes 32)",
                    file, lineno, line, n, PSK_MIN_BYTES, PSK_MAX_BYTES);
  key = g_malloc (n);
  for (i = 0; i < n; i++) {
    int hi = hexval (hex[2 * i]), lo = hexval (hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return rmr_err (EINVAL, "key file %s: line %u: key of '%s' is not hex",
                      file, lineno, line);
    key[i] = hi << 4 | lo;
  }
  if (g_hash_table_contains (keys, line))
    return rmr_err (EINVAL,
                    "key file %s: line %u: username '%s' appears "
                    "twice",
                    file, lineno, line);
  g_hash_table_insert (keys, g_strdup (line),
                       g_bytes_new_take (g_steal_pointer (&key), n));
  return 0;
}

static int
load_keys (const char *file, GHashTable *keys)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GError) gerr = NULL;
  gsize len;
  unsigned i;
  int r;

  if (!g_file_get_contents (file, &text, &len, &gerr))
    return rmr_err (gerr->code == G_FILE_ERROR_NOENT ? ENOENT : EACCES,
                    "key file %s: %s", file, gerr->message);
  if (memchr (text, '\0', len))
    return rmr_err (EINVAL, "key file %s: not a text file", file);
  lines = g_strsplit (text, "\n", -1);
  for (i = 0; lines[i]; i++) {
    char *line = g_strchomp (lines[i]);
    if (line[0] == '\0' || line[0] == '#')
      continue;
    r = parse_line (file, i + 1, line, keys);
    if (r < 0)
      return r;
  }
  if (g_hash_table_size (keys) == 0)
    return rmr_err (EINVAL, "key file %s: no keys (psktool -u NAME -p %s)",
                    file, file);
  return 0;
}

/* Server: the key of the identity the peer presented. */
static int
server_key (gnutls_session_t gs, const char *username, gnutls_datum_t *key)
{
  struct rmr_tls_sess *s = gnutls_session_get_ptr (gs);
  GBytes *k;
  size_t i, n;

  /* Keep what is printable of it for the log. */
  n = MIN (strlen (username), (size_t) RMR_TLS_ID_MAX);
  for (i = 0; i < n; i++)
    s->identity[i] =
      username[i] > ' ' && username[i] <= '~' ? username[i] : '?';
  s->identity[n] = '\0';
  k = g_hash_table_lookup (s->cfg->keys, username);
  if (!k)
    return -1;
  s->known = true;
  key->size = g_bytes_get_size (k);
  key->data = gnutls_malloc (key->size);
  if (!key->data)
    return -1;
  memcpy (key->data, g_bytes_get_data (k, NULL), key->size);
  return 0;
}

int
rmr_tls_key (const struct rmr_tls *t, const char *identity, const uint8_t **key,
             size_t *len)
{
  GBytes *k = t->keys ? g_hash_table_lookup (t->keys, identity) : NULL;
  gsize n;

  if (!k)
    return -ENOKEY;
  *key = g_bytes_get_data (k, &n);
  *len = n;
  return 0;
}

static void
config_free (struct rmr_tls *t)
{
  if (t->ccred)
    gnutls_psk_free_client_credentials (t->ccred);
  if (t->scred)
    gnutls_psk_free_server_credentials (t->scred);
  if (t->prio)
    gnutls_priority_deinit (t->prio);
  if (t->keys)
    g_hash_table_unref (t->keys);
  g_free (t->file);
  g_free (t->username);
  g_free (t);
}

static int
gnutls_fail (struct rmr_tls *t, const char *what, int r)
{
  config_free (t);
  return rmr_err (ENOMEM, "tls: %s: %s", what, gnutls_strerror (r));
}

/* Make t current; the one it replaces is kept (sessions may use it). */
static void
publish (const struct rmr_tls *t)
{
  g_mutex_lock (&setup_lock);
  if (!retired)
    retired = g_ptr_array_new ();
  if (rmr_tls_current () != &tls_off)
    g_ptr_array_add (retired, (void *) rmr_tls_current ());
  atomic_store (&current, t);
  g_mutex_unlock (&setup_lock);
}

void
rmr_tls_cleanup (void)
{
  const struct rmr_tls *cur;
  unsigned i;

  g_mutex_lock (&setup_lock);
  cur = rmr_tls_current ();
  atomic_store (&current, &tls_off);
  if (cur != &tls_off)
    config_free ((struct rmr_tls *) cur);
  for (i = 0; retired && i < retired->len; i++)
    config_free (g_ptr_array_index (retired, i));
  g_clear_pointer (&retired, g_ptr_array_unref);
  g_mutex_unlock (&setup_lock);
}

int
rmr_tls_setup (enum rmr_tls_mode mode, const char *psk_file,
               const char *username)
{
  struct rmr_tls *t;
  char host[256];
  GBytes *own;
  gnutls_datum_t key;
  int r;

  if (mode != RMR_TLS_OFF && mode != RMR_TLS_ON && mode != RMR_TLS_REQUIRE)
    return rmr_err (EINVAL, "tls: bad mode %d", (int) mode);
  if (mode == RMR_TLS_OFF) {
    publish (&tls_off);
    return 0;
  }
  if (!psk_file || !*psk_file)
    return rmr_err (EINVAL, "tls=%s: needs a key file (tls-psk)",
                    rmr_tls_mode_name (mode));
  if (!username || !*username) {
    if (gethostname (host, sizeof host) < 0)
      return rmr_err (errno, "tls-username: cannot get the host name: %m");
    host[sizeof host - 1] = '\0';
    username = host;
  }
  if (!good_identity (username, strlen (username)))
    return rmr_err (EINVAL,
                    "tls username '%s': 1 to %d printable "
                    "characters, no spaces or ':'",
                    username, RMR_TLS_ID_MAX);

  t = g_new0 (struct rmr_tls, 1);
  t->mode = mode;
  t->file = g_strdup (psk_file);
  t->username = g_strdup (username);
  t->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify) g_bytes_unref);
  r = load_keys (psk_file, t->keys);
  if (r < 0) {
    config_free (t);
    return r;
  }
  own = g_hash_table_lookup (t->keys, username);
  if (!own) {
    rmr_err (ENOKEY,
             "key file %s: no key for username '%s', the identity "
             "this side connects as (tls-username, or psktool -u %s -p %s)",
             psk_file, username, username, psk_file);
    config_free (t);
    return -ENOKEY;
  }
  key.data = (unsigned char *) g_bytes_get_data (own, NULL);
  key.size = g_bytes_get_size (own);
  r = gnutls_psk_allocate_client_credentials (&t->ccred);
  if (r < 0)
    return gnutls_fail (t, "client credentials", r);
  r = gnutls_psk_set_client_credentials (t->ccred, username, &key,
                                         GNUTLS_PSK_KEY_RAW);
  if (r < 0)
    return gnutls_fail (t, "client credentials", r);
  r = gnutls_psk_allocate_server_credentials (&t->scred);
  if (r < 0)
    return gnutls_fail (t, "server credentials", r);
  gnutls_psk_set_server_credentials_function (t->scred, server_key);
  r = gnutls_priority_init (&t->prio, PRIORITY, NULL);
  if (r < 0)
    return gnutls_fail (t, "priority " PRIORITY, r);

  publish (t);
  return 0;
}

static void
describe (struct rmr_tls_sess *s)
{
  int ktls = gnutls_transport_is_ktls_enabled (s->gs);

  snprintf (s->desc, sizeof s->desc, "%s %s %s (%s)",
            gnutls_protocol_get_name (gnutls_protocol_get_version (s->gs)),
            gnutls_kx_get_name (gnutls_kx_get (s->gs)),
            gnutls_cipher_get_name (gnutls_cipher_get (s->gs)),
            ktls == GNUTLS_KTLS_DUPLEX ? "kernel TLS"
            : ktls                     ? "partly kernel TLS"
                                       : "userspace");
}

static int
handshake (const struct rmr_tls *t, int fd, uint64_t timeout_ms, bool server,
           struct rmr_tls_sess **out)
{
  struct rmr_tls_sess *s = g_new0 (struct rmr_tls_sess, 1);
  int r;

  s->cfg = t;
  s->fd = fd;
  pthread_mutex_init (&s->lock, NULL);
  r = gnutls_init (&s->gs, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
                             GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
  if (r < 0) {
    pthread_mutex_destroy (&s->lock);
    g_free (s);
    *out = NULL;
    return r;
  }
  gnutls_session_set_ptr (s->gs, s);
  *out = s;
  r = gnutls_priority_set (s->gs, t->prio);
  if (r >= 0)
    r = gnutls_credentials_set (s->gs, GNUTLS_CRD_PSK,
                                server ? (void *) t->scred : (void *) t->ccred);
  if (r < 0)
    return r;
  if (!server)
    snprintf (s->identity, sizeof s->identity, "%s", t->username);
  gnutls_transport_set_int (s->gs, fd);
  gnutls_handshake_set_timeout (s->gs, MAX (timeout_ms, 1));
  do
    r = gnutls_handshake (s->gs);
  while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
  if (r < 0) {
    /* Tell the peer why (a wrong key, an unknown identity), so that it
     * does not just see the connection close.
     */
    if (gnutls_error_is_fatal (r))
      gnutls_alert_send_appropriate (s->gs, r);
    return r;
  }
  /* From here every GnuTLS call is under lock and never blocks (see the
   * top): the socket turns non-blocking.
   */
  if (fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK) < 0)
    return GNUTLS_E_PUSH_ERROR;
  describe (s);
  return 0;
}

/* A peer that vanished or timed out mid-handshake, not one that said no. */
static bool
closed_during (int r)
{
  return r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR ||
         r == GNUTLS_E_PUSH_ERROR || r == GNUTLS_E_TIMEDOUT;
}

int
rmr_tls_client_handshake (const struct rmr_tls *t, int fd, uint64_t timeout_ms,
                          const char *peer, struct rmr_tls_sess **out)
{
  struct rmr_tls_sess *s;
  int r = handshake (t, fd, timeout_ms, false, &s);
  const char *alert = "";

  if (r >= 0) {
    *out = s;
    return 0;
  }
  if (s && r == GNUTLS_E_FATAL_ALERT_RECEIVED)
    alert = gnutls_alert_get_name (gnutls_alert_get (s->gs));
  rmr_tls_sess_free (s);
  if (r == GNUTLS_E_TIMEDOUT)
    return rmr_err (ETIMEDOUT,
                    "%s: TLS handshake not done within %" PRIu64 " ms", peer,
                    timeout_ms);
  if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
    return rmr_err (EACCES,
                    "%s: the node refused our TLS key (identity '%s': "
                    "unknown to it, or a different key; its alert: %s)",
                    peer, t->username, alert ? alert : "?");
  if (closed_during (r))
    return rmr_err (ECONNRESET,
                    "%s: the connection closed during the TLS handshake (the "
                    "node went away, or its handshake_timeout passed): %s",
                    peer, gnutls_strerror (r));
  return rmr_err (EPROTO, "%s: TLS handshake: %s", peer, gnutls_strerror (r));
}

int
rmr_tls_server_handshake (const struct rmr_tls *t, int fd, uint64_t timeout_ms,
                          const char *peer, char *identity,
                          struct rmr_tls_sess **out)
{
  struct rmr_tls_sess *s;
  int r = handshake (t, fd, timeout_ms, true, &s);

  identity[0] = '\0';
  if (s)
    snprintf (identity, RMR_TLS_ID_MAX + 1, "%s", s->identity);
  if (r >= 0) {
    *out = s;
    return 0;
  }
  if (r == GNUTLS_E_TIMEDOUT)
    rmr_err (ETIMEDOUT, "TLS handshake not done within %" PRIu64 " ms",
             timeout_ms);
  else if (closed_during (r))
    rmr_err (ECONNRESET, "closed during the TLS handshake: %s",
             gnutls_strerror (r));
  else if (s && s->identity[0] && !s->known)
    rmr_err (EACCES, "unknown TLS identity '%s'", s->identity);
  else if (s && s->known &&
           (r == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER ||
            r == GNUTLS_E_DECRYPTION_FAILED))
    rmr_err (EACCES, "TLS identity '%s' with a wrong key: %s", s->identity,
             gnutls_strerror (r));
  else
    rmr_err (EPROTO, "TLS handshake: %s", gnutls_strerror (r));
  rmr_tls_sess_free (s);
  (void) peer;
  return -rmr_get_errno ();
}

/* Wait until fd can take more (the session's send is half done). */
static void
wait_writable (int fd)
{
  struct pollfd p = {.fd = fd, .events = POLLOUT};

  /* A shut-down or broken socket wakes us with POLLHUP or POLLERR, and
   * the next send reports it.
   */
  while (poll (&p, 1, -1) < 0 && errno == EINTR) {
  }
}

static int
send_out (struct rmr_tls_sess *s, const uint8_t *p, size_t n)
{
  ssize_t r;

  while (n > 0) {
    if (pthread_mutex_lock (&s->lock) != 0)
      abort ();
    r = gnutls_record_send (s->gs, p, n);
    if (pthread_mutex_unlock (&s->lock) != 0)
      abort ();
    if (r == GNUTLS_E_AGAIN) {
      /* GnuTLS keeps the record: the same call again resumes it. */
      wait_writable (s->fd);
      continue;
    }
    if (r == GNUTLS_E_INTERRUPTED)
      continue;
    if (r < 0) {
      /* The session is unusable now: make the receive side see it too. */
      shutdown (s->fd, SHUT_RDWR);
      return rmr_err (EPIPE, "TLS send: %s", gnutls_strerror (r));
    }
    p += r;
    n -= r;
  }
  return 0;
}

int
rmr_tls_send (struct rmr_tls_sess *s, const struct iovec *iov, int iovcnt,
              size_t *sent)
{
  size_t k;
  int i, r;

  for (i = 0; i < iovcnt; i++) {
    const uint8_t *p = iov[i].iov_base;
    size_t n = iov[i].iov_len;

    while (n > 0) {
      if (s->slen == 0 && n >= SBUF_SIZE) {
        k = n - n % SBUF_SIZE; /* whole records, from the caller's buffer */
        r = send_out (s, p, k);
        if (r < 0)
          return r;
        *sent += k;
      }
      else {
        k = MIN (n, SBUF_SIZE - s->slen);
        memcpy (s->sbuf + s->slen, p, k);
        s->slen += k;
        if (s->slen == SBUF_SIZE) {
          s->slen = 0;
          r = send_out (s, s->sbuf, SBUF_SIZE);
          if (r < 0)
            return r;
          *sent += SBUF_SIZE;
        }
      }
      p += k;
      n -= k;
    }
  }
  if (s->slen) {
    k = s->slen;
    s->slen = 0;
    r = send_out (s, s->sbuf, k);
    if (r < 0)
      return r;
    *sent += k;
  }
  return 0;
}

int
rmr_tls_key_update (struct rmr_tls_sess *s)
{
  int r;

  for (;;) {
    if (pthread_mutex_lock (&s->lock) != 0)
      abort ();
    /* Not GNUTLS_KU_PEER: GnuTLS 3.7 failed the session ("illegal
     * parameter") when both sides asked each other at once.
     */
    r = gnutls_session_key_update (s->gs, 0);
    if (pthread_mutex_unlock (&s->lock) != 0)
      abort ();
    if (r == GNUTLS_E_AGAIN)
      wait_writable (s->fd);
    else if (r != GNUTLS_E_INTERRUPTED)
      break;
  }
  if (r < 0)
    return rmr_err (EPROTO, "TLS key update: %s", gnutls_strerror (r));
  return 0;
}

ssize_t
rmr_tls_recv (struct rmr_tls_sess *s, void *buf, size_t len)
{
  ssize_t r;

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  r = gnutls_record_recv (s->gs, buf, len);
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
  if (r >= 0)
    return r;
  switch (r) {
  case GNUTLS_E_AGAIN:
  case GNUTLS_E_INTERRUPTED: return -EAGAIN;
  case GNUTLS_E_PREMATURE_TERMINATION: return 0; /* peer gone, no close */
  case GNUTLS_E_PULL_ERROR:
    return rmr_err (ECONNRESET, "TLS receive: %s", gnutls_strerror (r));
  default: return rmr_err (EPROTO, "TLS receive: %s", gnutls_strerror (r));
  }
}

size_t
rmr_tls_pending (struct rmr_tls_sess *s)
{
  size_t n;

  if (pthread_mutex_lock (&s->lock) != 0)
    abort ();
  n = gnutls_record_check_pending (s->gs);
  if (pthread_mutex_unlock (&s->lock) != 0)
    abort ();
  return n;
}

const char *
rmr_tls_identity (const struct rmr_tls_sess *s)
{
  return s->identity;
}

const char *
rmr_tls_describe (const struct rmr_tls_sess *s)
{
  return s->desc;
}

void
rmr_tls_sess_free (struct rmr_tls_sess *s)
{
  if (!s)
    return;
  gnutls_deinit (s->gs);
  pthread_mutex_destroy (&s->lock);
  g_free (s);
}
