/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Latency histograms and the Prometheus text format (metrics.h).
 *
 * A histogram keeps one relaxed atomic per bucket, not cumulative, and
 * the sum; the count is the sum of the buckets, so a scrape never sees
 * a _count that disagrees with the +Inf bucket.  Rendering makes the
 * buckets cumulative.
 *
 * The writer (struct prom) keeps one GString per family, in the order of
 * their first sample, so the caller may walk pools outside and families
 * inside; prom_finish () joins them.  Format: "Exposition formats", text
 * 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): label
 * values escape backslash, double quote and newline; HELP escapes
 * backslash and newline; values are Go floats ("+Inf", integers exact).
 */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

const uint64_t metrics_bucket_us[METRICS_NBUCKETS - 1] = {
  50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
  50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

void
metrics_hist_observe (struct metrics_hist *h, uint64_t us)
{
  unsigned lo = 0, hi = METRICS_NBUCKETS - 1;

  /* The first bound >= us (le is "less or equal"); hi: +Inf. */
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (us <= metrics_bucket_us[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  atomic_fetch_add_explicit (&h->bucket[lo], 1, memory_order_relaxed);
  atomic_fetch_add_explicit (&h->sum_us, us, memory_order_relaxed);
}

void
metrics_hist_read (const struct metrics_hist *h, struct metrics_hist_snap *dst)
{
  unsigned i;

  for (i = 0; i < METRICS_NBUCKETS; i++)
    dst->bucket[i] +=
      atomic_load_explicit (&h->bucket[i], memory_order_relaxed);
  dst->sum_us += atomic_load_explicit (&h->sum_us, memory_order_relaxed);
}

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_family {
  const char *name;
  enum prom_type type;
  GString *text; /* # HELP, # TYPE and the samples */
};

struct prom {
  GPtrArray *families; /* struct prom_family *, order of first sample */
};

struct prom *
prom_new (void)
{
  struct prom *p = g_new0 (struct prom, 1);

  p->families = g_ptr_array_new ();
  return p;
}

static GString *
family (struct prom *p, const char *name, const char *help, enum prom_type type)
{
  static const char *const tname[] = {"counter", "gauge", "histogram"};
  struct prom_family *f;
  const char *c;
  unsigned i;

  for (i = 0; i < p->families->len; i++) {
    f = g_ptr_array_index (p->families, i);
    if (strcmp (f->name, name) == 0) {
      assert (f->type == type);
      return f->text;
    }
  }
  f = g_new0 (struct prom_family, 1);
  f->name = name;
  f->type = type;
  f->text = g_string_new (NULL);
  g_string_append_printf (f->text, "# HELP %s ", name);
  for (c = help; *c; c++)
    if (*c == '\\')
      g_string_append (f->text, "\\\\");
    else if (*c == '\n')
      g_string_append (f->text, "\\n");
    else
      g_string_append_c (f->text, *c);
  g_string_append_printf (f->text, "\n# TYPE %s %s\n", name, tname[type]);
  g_ptr_array_add (p->families, f);
  return f->text;
}

/* name{labels[,le="..."]} */
static void
series (GString *out, const char *name, const char *suffix,
        const char *const *labels, const char *le)
{
  bool any = false;
  const char *c;

  g_string_append (out, name);
  g_string_append (out, suffix);
  for (; labels && labels[0]; labels += 2) {
    g_string_append_c (out, any ? ',' : '{');
    any = true;
    g_string_append (out, labels[0]);
    g_string_append (out, "=\"");
    for (c = labels[1] ? labels[1] : ""; *c; c++)
      if (*c == '\\')
        g_string_append (out, "\\\\");
      else if (*c == '"')
        g_string_append (out, "\\\"");
      else if (*c == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *c);
    g_string_append_c (out, '"');
  }
  if (le) {
    g_string_append_c (out, any ? ',' : '{');
    any = true;
    g_string_append_printf (out, "le=\"%s\"", le);
  }
  if (any)
    g_string_append_c (out, '}');
}

void
prom_counter (struct prom *p, const char *name, const char *help,
              const char *const *labels, uint64_t v)
{
  GString *out = family (p, name, help, PROM_COUNTER);

  series (out, name, "", labels, NULL);
  g_string_append_printf (out, " %" PRIu64 "\n", v);
}

void
prom_gauge (struct prom *p, const char *name, const char *help,
            const char *const *labels, double v)
{
  GString *out = family (p, name, help, PROM_GAUGE);

  series (out, name, "", labels, NULL);
  if (isnan (v))
    g_string_append (out, " NaN\n");
  else if (isinf (v))
    g_string_append (out, v > 0 ? " +Inf\n" : " -Inf\n");
  else if (v == (double) (int64_t) v && fabs (v) < 1e15)
    g_string_append_printf (out, " %" PRId64 "\n", (int64_t) v);
  else
    g_string_append_printf (out, " %.17g\n", v);
}

void
prom_histogram (struct prom *p, const char *name, const char *help,
                const char *const *labels, const struct metrics_hist_snap *h)
{
  GString *out = family (p, name, help, PROM_HISTOGRAM);
  uint64_t cum = 0;
  char le[32];
  unsigned i;

  for (i = 0; i < METRICS_NBUCKETS; i++) {
    cum += h->bucket[i];
    if (i < METRICS_NBUCKETS - 1)
      snprintf (le, sizeof le, "%g", metrics_bucket_us[i] / 1e6);
    else
      snprintf (le, sizeof le, "+Inf");
    series (out, name, "_bucket", labels, le);
    g_string_append_printf (out, " %" PRIu64 "\n", cum);
  }
  series (out, name, "_sum", labels, NULL);
  g_string_append_printf (out, " %.6f\n", h->sum_us / 1e6);
  series (out, name, "_count", labels, NULL);
  g_string_append_printf (out, " %" PRIu64 "\n", cum);
}

void
prom_finish (struct prom *p, GString *out)
{
  unsigned i;

  for (i = 0; i < p->families->len; i++) {
    struct prom_family *f = g_ptr_array_index (p->families, i);
    g_string_append_len (out, f->text->str, f->text->len);
    g_string_free (f->text, TRUE);
    g_free (f);
  }
  g_ptr_array_free (p->families, TRUE);
  g_free (p);
}
