/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* rmr-storaged: the storage daemon.  Options and start-up: read the config
 * file, join its pools and attach their stores, open the control socket,
 * listen, then (unless --foreground) detach, and serve until SIGTERM or
 * SIGINT.  The parent of a detaching daemon exits only when the child is
 * ready (status 0) or has failed (status 1, its error on stderr), so a
 * script that starts it can rely on the exit status.
 *
 * Signals are blocked in every thread and taken by the main thread with
 * sigwait, so a SIGHUP's reload (config.c: new pools added, changes of
 * running ones logged) runs as ordinary code on that thread, never in a
 * handler.  Under systemd (Type=notify) the daemon tells the service
 * manager through sd_notify: READY=1 once it listens with the config's
 * pools in place, RELOADING=1 and READY=1 around a reload, STOPPING=1 on
 * the way out.  Without NOTIFY_SOCKET sd_notify does nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "error.h"
#include "internal.h"
#include "parse.h"
#include "tls.h"

#define DEFAULT_CONTROL "/run/rmr/storaged.sock"

static void
usage (FILE *f)
{
  fprintf (
    f,
    "usage: rmr-storaged [--config FILE] [--listen ADDR]... "
    "[--control PATH]\n"
    "                    [--pidfile PATH] [--foreground] "
    "[--log-level LEVEL]\n"
    "                    [--tls MODE] [--tls-psk FILE] "
    "[--tls-username NAME]\n"
    "                    [--max-connections N] [--max-handshakes N] "
    "[--handshake-timeout T]\n"
    "                    [--metrics tcp:ADDR:PORT] [--metrics-auth FILE]\n"
    "                    [--metrics-tls-cert FILE --metrics-tls-key "
    "FILE]\n"
    "\n"
    "  -c, --config FILE     pools and stores to serve (GLib key "
    "file)\n"
    "  -l, --listen ADDR     tcp:HOST:PORT, ucx:HOST:PORT (RDMA "
    "through UCX), [V6]\n"
    "                        in brackets (repeatable)\n"
    "  -s, --control PATH    control socket for rmradm (default %s)\n"
    "  -p, --pidfile PATH    write the daemon's PID here\n"
    "  -f, --foreground      do not detach\n"
    "      --log-level L     error, warning, info (default) or debug\n"
    "      --tls MODE        off, on or require (default: require "
    "with a key file)\n"
    "      --tls-psk FILE    TLS pre-shared keys, USERNAME:HEXKEY "
    "lines (psktool)\n"
    "      --tls-username N  identity for sync sessions (default: "
    "host name)\n"
    "      --max-connections N  sessions at once (default 256)\n"
    "      --max-handshakes N   hellos and TLS handshakes at once "
    "(default 32)\n"
    "      --handshake-timeout T  to finish one (default 10s)\n"
    "      --metrics ADDR    serve Prometheus metrics on "
    "http://ADDR/metrics\n"
    "                        (tcp:HOST:PORT, tcp:[V6]:PORT)\n"
    "      --metrics-auth FILE  USER:PASSWORD lines: HTTP basic "
    "authentication\n"
    "      --metrics-tls-cert FILE, --metrics-tls-key FILE\n"
    "                        PEM certificate and key: HTTPS only\n"
    "      --enable-fault-injection\n"
    "                        allow brmr-server/stores/NAME/fault (tests "
    "only)\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n",
    DEFAULT_CONTROL);
}

static void
die (const char *what)
{
  fprintf (stderr, "rmr-storaged: %s%s%s\n", what ? what : "",
           what && rmr_get_error () ? ": " : "",
           rmr_get_error () ? rmr_get_error () : "");
  exit (EXIT_FAILURE);
}

/* TLS and the connection limits, from the command line or [storaged]
 * (DESIGN 9).  Before the config is applied: its sync sessions connect
 * with these keys.
 */
static void
setup_security (const struct config *cfg)
{
  enum rmr_tls_mode mode = cfg->tls_psk ? RMR_TLS_REQUIRE : RMR_TLS_OFF;
  struct sess_limits lim = {
    .max_connections = SESS_DEFAULT_MAX_CONNECTIONS,
    .max_handshakes = RMR_DEFAULT_MAX_HANDSHAKES,
    .handshake_timeout_ms = RMR_DEFAULT_HANDSHAKE_TIMEOUT_MS,
  };
  uint64_t v;

  if (cfg->tls && rmr_tls_parse_mode (cfg->tls, "tls", &mode) < 0)
    die (NULL);
  if (mode != RMR_TLS_OFF && !cfg->tls_psk) {
    rmr_err (EINVAL,
             "tls=%s: needs tls_psk (a key file: psktool -u NAME "
             "-p FILE)",
             rmr_tls_mode_name (mode));
    die (NULL);
  }
  if (cfg->tls_username && !cfg->tls_psk) {
    rmr_err (EINVAL, "tls_username: needs tls_psk (a key file)");
    die (NULL);
  }
  if (rmr_tls_setup (mode, cfg->tls_psk, cfg->tls_username) < 0)
    die (NULL);
  if (cfg->max_connections) {
    if (rmr_parse_uint ("max_connections", cfg->max_connections, 1, 65536, &v) <
        0)
      die (NULL);
    lim.max_connections = v;
  }
  if (cfg->max_handshakes) {
    if (rmr_parse_uint ("max_handshakes", cfg->max_handshakes, 1, 4096, &v) < 0)
      die (NULL);
    lim.max_handshakes = v;
  }
  if (cfg->handshake_timeout) {
    if (rmr_parse_duration_ms ("handshake_timeout", cfg->handshake_timeout,
                               &v) < 0)
      die (NULL);
    if (v < 100 || v > 600000) {
      rmr_err (EINVAL, "handshake_timeout: %s is not within 100ms..10m",
               cfg->handshake_timeout);
      die (NULL);
    }
    lim.handshake_timeout_ms = v;
  }
  sess_set_limits (&lim);
}

static int
write_pidfile (const char *path)
{
  g_autofree char *text = g_strdup_printf ("%d\n", (int) getpid ());
  g_autofree char *tmp = g_strdup_printf ("%s.tmp", path);
  g_autoptr (GError) gerr = NULL;

  /* Written whole and renamed, so a reader never sees half a PID. */
  if (!g_file_set_contents (tmp, text, -1, &gerr) || rename (tmp, path) < 0)
    return rmr_err (EIO, "pidfile %s: %s", path,
                    gerr ? gerr->message : strerror (errno));
  return 0;
}

/* Detach: the parent waits on a pipe for the child's verdict. */
static int
daemonize (void)
{
  int p[2];
  pid_t pid;
  char c = 1;

  if (pipe2 (p, O_CLOEXEC) < 0)
    return -1;
  pid = fork ();
  if (pid < 0)
    return -1;
  if (pid > 0) {
    close (p[1]);
    if (read (p[0], &c, 1) != 1)
      c = 1; /* the child died before it was ready */
    _exit (c);
  }
  close (p[0]);
  setsid ();
  return p[1];
}

static void
ready (int fd, int status)
{
  char c = status;

  if (fd < 0)
    return;
  if (write (fd, &c, 1) < 0) {
    /* The parent is gone; nothing to tell. */
  }
  close (fd);
}

/* The notify protocol is libsystemd's (the socket's address forms, the
 * credentials, the datagram); systemd 253 wants MONOTONIC_USEC with
 * RELOADING=1 (Type=notify-reload), 252 ignores it.  A failure to tell
 * systemd is not the daemon's failure: logged at debug level.
 */
static void
notify (const char *state)
{
  int r = sd_notify (0, state);

  if (r < 0)
    g_debug ("sd_notify: %s", g_strerror (-r));
}

static void
notify_reloading (void)
{
  g_autofree char *state = NULL;
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  state = g_strdup_printf ("RELOADING=1\nMONOTONIC_USEC=%" G_GUINT64_FORMAT
                           "\nSTATUS=reloading the config",
                           (guint64) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
  notify (state);
}

/* SIGHUP, the files of /metrics' access (macc, NULL: none) read again: a
 * renewed certificate, a rotated password.  What fails to load changes
 * nothing.
 */
static void
reload_metrics (const struct metrics_access *macc)
{
  struct metrics_creds *c;
  int r;

  if (!macc)
    return;
  if (metrics_creds_load ("metrics", macc, &c) < 0) {
    g_warning ("SIGHUP: %s; /metrics goes on as it was", rmr_get_error ());
    return;
  }
  r = srv_metrics_reload (c);
  if (r < 0)
    g_warning ("SIGHUP: %s; /metrics goes on as it was", rmr_get_error ());
  else if (r > 0)
    g_message ("SIGHUP: metrics: serving with the access files as they are "
               "now");
}

/* SIGHUP: /metrics' access files and the config file again
 * (config_reload), then ready again.
 */
static void
reload (const char *config, const struct metrics_access *macc)
{
  g_autofree char *status = NULL;
  g_autofree char *state = NULL;
  unsigned added, failed;

  notify_reloading ();
  reload_metrics (macc);
  if (!config) {
    g_message ("SIGHUP: no --config to reload");
    status = g_strdup ("serving (no config file)");
  }
  else if (config_reload (config, &added, &failed) < 0) {
    g_warning ("SIGHUP: config refused, nothing changed: %s", rmr_get_error ());
    status = g_strdup_printf ("serving; the last reload was refused: %s",
                              rmr_get_error ());
  }
  else {
    g_message ("SIGHUP: config %s reloaded: %u pools added, %u failed", config,
               added, failed);
    status = g_strdup_printf ("serving; reloaded: %u pools added, %u failed",
                              added, failed);
  }
  state = g_strdup_printf ("READY=1\nSTATUS=%s", status);
  notify (state);
}

int
main (int argc, char **argv)
{
  enum {
    OPT_LOG_LEVEL = 256,
    OPT_FAULTS,
    OPT_TLS,
    OPT_TLS_PSK,
    OPT_TLS_USERNAME,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_HANDSHAKES,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_METRICS,
    OPT_METRICS_CERT,
    OPT_METRICS_KEY,
    OPT_METRICS_AUTH,
  };
  static const struct option opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, 'l'},
    {"control", required_argument, NULL, 's'},
    {"pidfile", required_argument, NULL, 'p'},
    {"foreground", no_argument, NULL, 'f'},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"enable-fault-injection", no_argument, NULL, OPT_FAULTS},
    {"tls", required_argument, NULL, OPT_TLS},
    {"tls-psk", required_argument, NULL, OPT_TLS_PSK},
    {"tls-username", required_argument, NULL, OPT_TLS_USERNAME},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"metrics-tls-cert", required_argument, NULL, OPT_METRICS_CERT},
    {"metrics-tls-key", required_argument, NULL, OPT_METRICS_KEY},
    {"metrics-auth", required_argument, NULL, OPT_METRICS_AUTH},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
  };
  struct config cfg = {.listen = g_ptr_array_new_with_free_func (g_free)};
  g_autoptr (GPtrArray) cli_listen = g_ptr_array_new_with_free_func (g_free);
  struct metrics_creds *mcreds = NULL; /* read before daemonize () */
  g_autofree char *abs_cert = NULL, *abs_key = NULL, *abs_auth = NULL;
  struct metrics_access macc;
  char macc_sep;
  const char *config = NULL;
  bool foreground = false;
  enum log_level level = LOG_INFO;
  int c, sig, readyfd = -1;
  sigset_t set;
  unsigned i;

  while ((c = getopt_long (argc, argv, "c:l:s:p:fhV", opts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'l': g_ptr_array_add (cli_listen, g_strdup (optarg)); break;
    case 's': cfg.control = g_strdup (optarg); break;
    case 'p': cfg.pidfile = g_strdup (optarg); break;
    case 'f': foreground = true; break;
    case OPT_LOG_LEVEL: cfg.log_level = g_strdup (optarg); break;
    case OPT_FAULTS: g_fault_injection = true; break;
    case OPT_TLS: cfg.tls = g_strdup (optarg); break;
    case OPT_TLS_PSK: cfg.tls_psk = g_strdup (optarg); break;
    case OPT_TLS_USERNAME: cfg.tls_username = g_strdup (optarg); break;
    case OPT_MAX_CONNECTIONS: cfg.max_connections = g_strdup (optarg); break;
    case OPT_MAX_HANDSHAKES: cfg.max_handshakes = g_strdup (optarg); break;
    case OPT_HANDSHAKE_TIMEOUT:
      cfg.handshake_timeout = g_strdup (optarg);
      break;
    case OPT_METRICS: cfg.metrics = g_strdup (optarg); break;
    case OPT_METRICS_CERT: cfg.metrics_tls_cert = g_strdup (optarg); break;
    case OPT_METRICS_KEY: cfg.metrics_tls_key = g_strdup (optarg); break;
    case OPT_METRICS_AUTH: cfg.metrics_auth = g_strdup (optarg); break;
    case 'h': usage (stdout); return EXIT_SUCCESS;
    case 'V': printf ("rmr-storaged %s\n", RMR_VERSION); return EXIT_SUCCESS;
    default: usage (stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf (stderr, "rmr-storaged: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }

  /* Errors about /metrics' files spell the settings as they were given:
   * a parameter (metrics-auth) or a config key (metrics_auth).
   */
  macc_sep =
    cfg.metrics_tls_cert || cfg.metrics_tls_key || cfg.metrics_auth ? '-' : '_';
  /* Everything is checked before anything starts. */
  if (config && config_load (config, &cfg) < 0)
    die (NULL);
  if (cli_listen->len) {
    g_ptr_array_set_size (cfg.listen, 0);
    for (i = 0; i < cli_listen->len; i++)
      g_ptr_array_add (cfg.listen, g_strdup (cli_listen->pdata[i]));
  }
  if (cfg.log_level && log_parse_level (cfg.log_level, &level) < 0) {
    fprintf (stderr,
             "rmr-storaged: log-level: '%s' is not error, warning, "
             "info or debug\n",
             cfg.log_level);
    return 2;
  }
  for (i = 0; i < cfg.listen->len; i++) {
    struct rmr_addr a;
    if (rmr_addr_parse ("listen", cfg.listen->pdata[i], &a) < 0)
      die (NULL);
  }
  if (cfg.metrics && metrics_addr_check ("metrics", cfg.metrics) < 0)
    die (NULL);
  macc = (struct metrics_access){.tls_cert = cfg.metrics_tls_cert,
                                 .tls_key = cfg.metrics_tls_key,
                                 .auth = cfg.metrics_auth,
                                 .sep = macc_sep};
  if ((macc.tls_cert || macc.tls_key || macc.auth) && !cfg.metrics) {
    rmr_err (EINVAL, "%s: needs --metrics (or metrics= in [storaged])",
             macc.auth       ? "metrics-auth"
             : macc.tls_cert ? "metrics-tls-cert"
                             : "metrics-tls-key");
    die (NULL);
  }
  /* Read now, before daemonize () changes the directory; a reload reads
   * them again by their absolute paths.
   */
  if (cfg.metrics && metrics_creds_load ("metrics", &macc, &mcreds) < 0)
    die (NULL);
  abs_cert =
    macc.tls_cert ? g_canonicalize_filename (macc.tls_cert, NULL) : NULL;
  abs_key = macc.tls_key ? g_canonicalize_filename (macc.tls_key, NULL) : NULL;
  abs_auth = macc.auth ? g_canonicalize_filename (macc.auth, NULL) : NULL;
  macc.tls_cert = abs_cert;
  macc.tls_key = abs_key;
  macc.auth = abs_auth;
  if (!cfg.control)
    cfg.control = g_strdup (DEFAULT_CONTROL);
  setup_security (&cfg);
  log_init (level);

  /* Signals are taken synchronously by the main thread below; every
   * thread started from here on inherits the mask.
   */
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGHUP);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);

  /* Detach before threads exist; report readiness after start-up. */
  if (!foreground) {
    readyfd = daemonize ();
    if (readyfd < 0) {
      perror ("rmr-storaged: fork");
      return EXIT_FAILURE;
    }
  }
  /* First the endpoint: a port in use stops us before any store opens. */
  if (cfg.metrics && srv_metrics_start (cfg.metrics, mcreds) < 0)
    die (NULL);
  if (config && config_apply (config) < 0)
    die (NULL);
  if (control_start (cfg.control) < 0)
    die (NULL);
  for (i = 0; i < cfg.listen->len; i++) {
    struct rmr_addr a;
    rmr_addr_parse ("listen", cfg.listen->pdata[i], &a);
    if (sess_listen (&a) < 0)
      die (NULL);
  }
  if (cfg.pidfile && write_pidfile (cfg.pidfile) < 0)
    die (NULL);
  g_message ("ready (pid %d)", (int) getpid ());
  ready (readyfd, 0);
  if (!foreground) {
    int null = open ("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2 (null, STDIN_FILENO);
      close (null);
    }
  }

  notify ("READY=1\nSTATUS=serving");

  while (sigwait (&set, &sig) == 0 && sig == SIGHUP)
    reload (config, macc.tls_cert || macc.auth ? &macc : NULL);
  g_message ("signal %d: shutting down", sig);
  notify ("STOPPING=1\nSTATUS=shutting down");
  sess_stop_listeners ();
  srv_metrics_stop ();
  control_stop ();
  pool_shutdown_all ();
  if (cfg.pidfile)
    unlink (cfg.pidfile);
  g_message ("stopped");
  config_clear (&cfg);
  return EXIT_SUCCESS;
}
