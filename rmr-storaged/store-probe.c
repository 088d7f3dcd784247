/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Foreign signatures on a device or file that create_store is about to
 * format (issue 9).  Whatever libblkid recognises there -- a file system,
 * a partition table, a RAID or LVM member, swap, an encrypted volume --
 * belongs to someone, and formatting would destroy it, so store_create
 * refuses unless force=1 was given.  libblkid knows every signature that
 * mount, udev, mdadm and LVM act on; a list of our own would always be
 * short of one.  Our own superblock is not foreign: store.c reads it
 * first, and libblkid does not know it.
 *
 * store_check_foreign describes what it finds in one line;
 * store_wipe_foreign erases every signature, as wipefs -a does, for a
 * forced create, so that a leftover one (an md superblock or a backup GPT
 * at the end of the device, which formatting does not reach) cannot make
 * udev, mdadm or LVM claim the store later.
 *
 * Both probe through st->fd, which holds the device exclusively (O_EXCL,
 * or flock for a file: store.c), so nothing mounts or assembles it between
 * the check and the format.  No state is kept: one probe per call.
 */
#ifndef G_LOG_DOMAIN
#define G_LOG_DOMAIN "rmr-storaged"
#endif

#include <errno.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <blkid.h>

#include "internal.h"
#include "error.h"

static void
free_probep (blkid_probe *pr)
{
  if (*pr)
    blkid_free_probe (*pr);
}
#define CLEANUP_PROBE __attribute__ ((cleanup (free_probep)))

/* A probe of st->fd for superblocks and partition tables.  wipe: with the
 * magic offsets blkid_do_wipe needs, and a GPT found from its backup
 * header too (as wipefs).  NULL with errno set on failure.
 */
static blkid_probe
new_probe (struct store *st, bool wipe)
{
  blkid_probe pr = blkid_new_probe ();

  if (pr == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (blkid_probe_set_device (pr, st->fd, 0, 0) < 0 ||
      blkid_probe_enable_superblocks (pr, 1) < 0 ||
      /* A damaged file system is still someone's. */
      blkid_probe_set_superblocks_flags (
        pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_BADCSUM |
              BLKID_SUBLKS_MAGIC) < 0 ||
      blkid_probe_enable_partitions (pr, 1) < 0 ||
      blkid_probe_set_partitions_flags (
        pr, BLKID_PARTS_MAGIC | (wipe ? BLKID_PARTS_FORCE_GPT : 0)) < 0) {
    int e = errno ? errno : EIO;
    blkid_free_probe (pr);
    errno = e;
    return NULL;
  }
  return pr;
}

/* "an" or "a", as the name is spoken: "an ext4", "an xfs", "an LVM2_member",
 * "a swap", "a gpt", "a udf".
 */
static const char *
article (const char *name)
{
  static const char *const spoken_an[] = {"x",    "LVM", "ntfs",
                                          "f2fs", "hfs", NULL};
  unsigned i;

  if (name[0] != '\0' && strchr ("aeioAEIO", name[0]))
    return "an";
  for (i = 0; spoken_an[i]; i++)
    if (strncmp (name, spoken_an[i], strlen (spoken_an[i])) == 0)
      return "an";
  return "a";
}

/* What the probe's current result is, added to found: "an ext4 file
 * system", "a dos partition table", "a swap signature".
 */
static void
describe (blkid_probe pr, GPtrArray *found)
{
  const char *type = NULL, *usage = NULL, *noun = "signature";

  if (blkid_probe_lookup_value (pr, "PTTYPE", &type, NULL) == 0 && type) {
    g_ptr_array_add (
      found, g_strdup_printf ("%s %s partition table", article (type), type));
    type = NULL;
  }
  if (blkid_probe_lookup_value (pr, "TYPE", &type, NULL) < 0 || !type)
    return;
  if (blkid_probe_lookup_value (pr, "USAGE", &usage, NULL) == 0 && usage) {
    if (strcmp (usage, "filesystem") == 0)
      noun = "file system";
    else if (strcmp (usage, "raid") == 0)
      noun = "signature (a RAID or volume-manager member)";
    else if (strcmp (usage, "crypto") == 0)
      noun = "encrypted volume";
  }
  g_ptr_array_add (found,
                   g_strdup_printf ("%s %s %s", article (type), type, noun));
}

/* "A", "A and B", "A, B and C". */
static char *
join (GPtrArray *found)
{
  GString *s = g_string_new (NULL);
  unsigned i;

  for (i = 0; i < found->len; i++)
    g_string_append_printf (s, "%s%s",
                            i == 0                ? ""
                            : i + 1 == found->len ? " and "
                                                  : ", ",
                            (char *) g_ptr_array_index (found, i));
  return g_string_free (s, FALSE);
}

int
store_check_foreign (struct store *st)
{
  blkid_probe pr CLEANUP_PROBE = NULL;
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *what = NULL;
  int r, e;

  /* A file just created (or empty) has nothing to recognise. */
  if (st->dev_size == 0)
    return 0;
  pr = new_probe (st, false);
  if (pr == NULL) {
    e = errno;
    return rmr_err (e, "store %s: probing for signatures: %s", st->path,
                    g_strerror (e));
  }
  errno = 0;
  r = blkid_do_safeprobe (pr);
  if (r == 1)
    return 0;
  if (r == 0)
    describe (pr, found);
  else if (r == -2) {
    /* Ambivalent: more than one signature claims the device.  Name each
     * (the loop wipefs uses).
     */
    blkid_reset_probe (pr);
    while (blkid_do_probe (pr) == 0)
      describe (pr, found);
  }
  else {
    e = errno ? errno : EIO;
    return rmr_err (e, "store %s: probing for signatures: %s", st->path,
                    g_strerror (e));
  }
  what = join (found);
  return rmr_err (EMEDIUMTYPE, "store %s: holds %s", st->path,
                  found->len ? what : "an unknown signature");
}

int
store_wipe_foreign (struct store *st)
{
  blkid_probe pr CLEANUP_PROBE = NULL;
  bool wiped_pt = false;
  int n = 0, e;

  if (st->dev_size == 0)
    return 0;
  pr = new_probe (st, true);
  if (pr == NULL) {
    e = errno;
    return rmr_err (e, "store %s: probing for signatures: %s", st->path,
                    g_strerror (e));
  }
  /* blkid_do_wipe steps the probe back after a wipe, so the next
   * blkid_do_probe looks at the same place again (a GPT's backup header
   * after its primary one).
   */
  while (blkid_do_probe (pr) == 0) {
    g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
    g_autofree char *what = NULL;
    const char *off = "?";

    describe (pr, found);
    what = join (found);
    if (blkid_probe_has_value (pr, "PTTYPE")) {
      wiped_pt = true;
      blkid_probe_lookup_value (pr, "PTMAGIC_OFFSET", &off, NULL);
    }
    else
      blkid_probe_lookup_value (pr, "SBMAGIC_OFFSET", &off, NULL);
    if (blkid_do_wipe (pr, 0) < 0) {
      e = errno ? errno : EIO;
      return rmr_err (e, "store %s: wiping %s at offset %s: %s", st->path, what,
                      off, g_strerror (e));
    }
    g_message ("store %s: force: wiped %s (at offset %s)", st->path, what, off);
    if (++n > 100)
      return rmr_err (EIO, "store %s: signatures keep appearing while wiping",
                      st->path);
  }
  e = n > 0 ? -store_fdatasync (st) : 0;
  if (e)
    return rmr_err (e, "store %s: flushing the wiped signatures: %s", st->path,
                    g_strerror (e));
  /* The kernel still lists the partitions of the table just wiped: have it
   * read the device again, so no stale /dev/sdX1 points into the store.
   * EINVAL: a device the kernel does not partition (a partition, a loop
   * device without partscan), so nothing is stale.
   */
  if (wiped_pt && st->is_bdev && ioctl (st->fd, BLKRRPART) < 0 &&
      errno != EINVAL)
    g_warning ("store %s: re-reading the partition table: %s (the kernel "
               "keeps the old partitions until partprobe or a reboot)",
               st->path, g_strerror (errno));
  return 0;
}
