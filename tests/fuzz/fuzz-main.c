/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The standalone driver shared by every fuzz target (fuzz.h): a weak
 * main () for builds without libFuzzer, so any compiler can build the
 * targets and CI can run them as tests.
 *
 *   fuzz-NAME                    run the target's built-in inputs
 *   fuzz-NAME PATH...            run every file named (a directory: every
 *                                file below it, in name order), e.g. to
 *                                replay a crash or a corpus under gcc,
 *                                valgrind or ASan
 *   fuzz-NAME --seed-corpus DIR  write the built-in inputs to DIR (created
 *                                if missing) as files builtin-NNNN, to
 *                                start a libFuzzer corpus from them
 *
 * It prints TAP: "1..1" and "ok 1 - NAME: N inputs"; a broken invariant
 * aborts the program, which the test harness reports.  A file that cannot
 * be read is a failure ("not ok"), exit status 1.
 *
 * Linked into a -fsanitize=fuzzer build too (the targets call
 * fuzz_input () from fuzz_builtin ()), where libFuzzer's strong main ()
 * replaces the weak one.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fuzz.h"

static unsigned ninputs;
static const char *seed_dir; /* --seed-corpus: write, do not run */

void
fuzz_input (const void *data, size_t size)
{
  /* A copy of exactly size bytes: a read past the end is caught by ASan
   * (and valgrind) even for a literal or a slice of a larger buffer.
   */
  uint8_t *copy = malloc (size ? size : 1);

  if (copy == NULL)
    abort ();
  if (size)
    memcpy (copy, data, size);
  if (seed_dir) {
    char path[4096];
    FILE *fp;

    if ((size_t) snprintf (path, sizeof path, "%s/builtin-%04u", seed_dir,
                           ninputs) >= sizeof path) {
      fprintf (stderr, "%s: path too long\n", seed_dir);
      exit (EXIT_FAILURE);
    }
    fp = fopen (path, "wb");
    if (fp == NULL || fwrite (copy, 1, size, fp) != size || fclose (fp) != 0) {
      perror (path);
      exit (EXIT_FAILURE);
    }
  }
  else
    LLVMFuzzerTestOneInput (copy, size);
  free (copy);
  ninputs++;
}

/* Read a whole file; -1 (errno set) on error. */
static int
read_file (const char *path, uint8_t **data, size_t *size)
{
  FILE *fp = fopen (path, "rb");
  size_t len = 0, cap = 4096;
  uint8_t *buf;

  if (fp == NULL)
    return -1;
  buf = malloc (cap);
  if (buf == NULL)
    abort ();
  for (;;) {
    size_t n = fread (buf + len, 1, cap - len, fp);

    len += n;
    if (len < cap) {
      if (ferror (fp)) {
        int e = errno;

        fclose (fp);
        free (buf);
        errno = e;
        return -1;
      }
      break;
    }
    cap *= 2;
    buf = realloc (buf, cap);
    if (buf == NULL)
      abort ();
  }
  fclose (fp);
  *data = buf;
  *size = len;
  return 0;
}

static int run_path (const char *path);

static int
compare_names (const struct dirent **a, const struct dirent **b)
{
  return strcmp ((*a)->d_name, (*b)->d_name);
}

static int
skip_hidden (const struct dirent *d)
{
  return d->d_name[0] != '.';
}

static int
run_dir (const char *path)
{
  struct dirent **names;
  int n, i, r = 0;

  n = scandir (path, &names, skip_hidden, compare_names);
  if (n < 0) {
    printf ("# %s: %s\n", path, strerror (errno));
    return -1;
  }
  for (i = 0; i < n; i++) {
    char *sub;

    if (asprintf (&sub, "%s/%s", path, names[i]->d_name) < 0)
      abort ();
    if (run_path (sub) == -1)
      r = -1;
    free (sub);
    free (names[i]);
  }
  free (names);
  return r;
}

static int
run_path (const char *path)
{
  struct stat st;
  uint8_t *data;
  size_t size;

  if (stat (path, &st) == -1) {
    printf ("# %s: %s\n", path, strerror (errno));
    return -1;
  }
  if (S_ISDIR (st.st_mode))
    return run_dir (path);
  if (read_file (path, &data, &size) == -1) {
    printf ("# %s: %s\n", path, strerror (errno));
    return -1;
  }
  fuzz_input (data, size);
  free (data);
  return 0;
}

__attribute__ ((weak)) int main (int argc, char *argv[]);

__attribute__ ((weak)) int
main (int argc, char *argv[])
{
  const char *name =
    strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
  int i, r = 0;

  /* TAP on stdout in order with the target's own messages. */
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp (argv[1], "--seed-corpus") == 0) {
    seed_dir = argv[2];
    if (mkdir (seed_dir, 0755) == -1 && errno != EEXIST) {
      perror (seed_dir);
      return EXIT_FAILURE;
    }
    fuzz_builtin ();
    printf ("# %s: %u inputs written to %s\n", name, ninputs, seed_dir);
    return EXIT_SUCCESS;
  }
  if (argc > 1 && argv[1][0] == '-') {
    fprintf (stderr,
             "usage: %s [PATH...]\n"
             "       %s --seed-corpus DIR\n",
             name, name);
    return EXIT_FAILURE;
  }

  printf ("1..1\n");
  if (argc <= 1)
    fuzz_builtin ();
  for (i = 1; i < argc; i++)
    if (run_path (argv[i]) == -1)
      r = -1;
  printf ("%s 1 - %s: %u inputs\n", r == 0 ? "ok" : "not ok", name, ninputs);
  return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

void
fuzz_check_message (int r)
{
  const char *msg = rmr_get_error ();

  if (r >= 0 || rmr_get_errno () != -r || msg == NULL || msg[0] == '\0')
    abort ();
  for (const char *p = msg; *p; p++)
    if ((unsigned char) *p < 0x20)
      abort ();
}
