#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-ext4.sh: the export as a real block device without the
# kernel NBD driver (nbdfuse + loop): mkfs.ext4, mount, write files,
# unmount, and fsck finds the file system clean; the files read back after
# a second mount.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires_root
requires nbdfuse --version
requires mkfs.ext4 -V
requires losetup --version
requires fusermount3 --version
[[ -e /dev/fuse ]] || skip_all "no /dev/fuse"
[[ -e /dev/loop-control ]] || skip_all "no loop devices"
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

node_start 1 p 128M
node_start 2 p 128M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2)

mkdir "$tmpdir/fuse" "$tmpdir/mnt"
start_bg "$tmpdir/fuse.pid" nbdfuse "$tmpdir/fuse" "$(nbd_uri e)"
cleanup_fn fusermount3 -u "$tmpdir/fuse"
wait_for_file "$tmpdir/fuse/nbd" 10
loop=$(losetup -f --show "$tmpdir/fuse/nbd")
cleanup_fn losetup -d "$loop"
ok "loop device $loop on the export" test -b "$loop"

ok "mkfs.ext4" mkfs.ext4 -q -F "$loop"
mount "$loop" "$tmpdir/mnt"
cleanup_fn umount -l "$tmpdir/mnt"
head -c $((8 << 20)) /dev/urandom >"$tmpdir/blob"
cp "$tmpdir/blob" "$tmpdir/mnt/blob"
mkdir "$tmpdir/mnt/dir"
for f in $(seq 1 200); do echo "file $f" >"$tmpdir/mnt/dir/f$f"; done
sync
umount "$tmpdir/mnt"
ok "fsck finds the file system clean" fsck.ext4 -f -n "$loop"
mount -o ro "$loop" "$tmpdir/mnt"
ok "the files read back after a remount" cmp "$tmpdir/blob" "$tmpdir/mnt/blob"
is "$(cat "$tmpdir/mnt/dir/f123")" "file 123" "a small file reads back"
umount "$tmpdir/mnt"
done_testing
