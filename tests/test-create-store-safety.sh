#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-create-store-safety.sh: create_store through the control socket
# (issue 9) refuses, with a one-line error naming the path and what is
# there, and changes nothing:
#   an ext4 image (still e2fsck-clean) unless force=1, which formats it;
#   a symbolic link, force=1 or not (its target untouched), and
#   add_store through one;
#   the store of another pool: by its path, through a hard link (held by
#   the daemon), and a copy of it (rmr metadata), even with force=1;
# and a daemon whose config names an ext4 image does not start, and says
# how to go on (the config never forces).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires mkfs.ext4 -V
requires e2fsck -V
requires_file "$RMR_STORAGED" "$RMRADM"
make_tmpdir

node_start 1 p 16M
rmradm_n 1 set rmr-server/ctl/join_pool 'poolname=other member_id=9' >&2

# set_fails DESC TEXT PATH ARGS: "rmradm set PATH ARGS" fails and its
# message contains TEXT.
set_fails ()
{
  local desc=$1 text=$2 out rc=0
  shift 2
  out=$(rmradm_n 1 set "$@" 2>&1) || rc=$?
  if [[ $rc -ne 0 && "$out" == *"$text"* ]]; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "rmradm set $* -> status $rc: $out"
    diag "expected a failure containing: $text"
  fi
}

fsck_clean ()
{
  e2fsck -fn "$1" >&2
}

img=$tmpdir/ext4.img
truncate -s 32M "$img"
mkfs.ext4 -q -F "$img"
sum=$(md5sum <"$img")

set_fails "create_store refuses an ext4 image" \
  "store $img: holds an ext4 file system; add force=1 to overwrite it" \
  brmr-server/ctl/create_store "device=$img pool=other mapped_size=16M"
is "$(md5sum <"$img")" "$sum" "the refused image is unchanged"
ok "the refused image is still a clean ext4 file system" fsck_clean "$img"
is "$(rmradm_n 1 get rmr-server/pools/other/state)" empty \
  "the pool got no store"

set_fails "force= takes a boolean" "force: 'maybe'" \
  brmr-server/ctl/create_store \
  "device=$img pool=other mapped_size=16M force=maybe"

set_fails "create_store refuses a missing device in /dev (never a file)" \
  "store /dev/disk/by-id/rmr-no-such-disk: no such device" \
  brmr-server/ctl/create_store \
  "device=/dev/disk/by-id/rmr-no-such-disk pool=other mapped_size=16M"
ok "and created nothing there" test ! -e /dev/disk/by-id/rmr-no-such-disk

ln -s "$img" "$tmpdir/link"
set_fails "create_store refuses a symbolic link, even with force=1" \
  "store $tmpdir/link: is a symbolic link; give the real path" \
  brmr-server/ctl/create_store \
  "device=$tmpdir/link pool=other mapped_size=16M force=1"
is "$(md5sum <"$img")" "$sum" "the link's target is unchanged"

# The store of pool p: by its path, by a hard link (the daemon holds it),
# and a copy that carries p's metadata.
store=${NODE_STORE[1]}
info=$("$RMRADM" store-info "$store")
set_fails "create_store refuses the store of another pool by its path" \
  "$store is the store of pool 'p' already" \
  brmr-server/ctl/create_store "device=$store pool=other mapped_size=16M"
ln "$store" "$tmpdir/hard"
set_fails "create_store refuses it through a hard link: it is held" \
  "store $tmpdir/hard: in use by another pool or process" \
  brmr-server/ctl/create_store \
  "device=$tmpdir/hard pool=other mapped_size=16M force=1"
cp "$store" "$tmpdir/copy.img"
copysum=$(md5sum <"$tmpdir/copy.img")
set_fails "create_store refuses a store of another pool, even with force=1" \
  "store $tmpdir/copy.img: has rmr metadata of pool 'p' member 41; use add_store" \
  brmr-server/ctl/create_store \
  "device=$tmpdir/copy.img pool=other mapped_size=16M force=1"
is "$(md5sum <"$tmpdir/copy.img")" "$copysum" "the refused copy is unchanged"
ln -s "$tmpdir/copy.img" "$tmpdir/copylink"
set_fails "add_store refuses a symbolic link" \
  "store $tmpdir/copylink: is a symbolic link; give the real path" \
  brmr-server/ctl/add_store "device=$tmpdir/copylink pool=other"
is "$("$RMRADM" store-info "$store")" "$info" "pool p's store is unchanged"
is "$(rmradm_n 1 get rmr-server/pools/p/state)" registered \
  "pool p still has its store"

# force=1: formatted and attached; the file system is gone.
ok "create_store force=1 formats the ext4 image" \
  rmradm_n 1 set brmr-server/ctl/create_store \
  "device=$img pool=other mapped_size=16M force=1"
is "$(rmradm_n 1 get brmr-server/stores/other/path)" "$img" \
  "the image is pool other's store"
if e2fsck -fn "$img" >/dev/null 2>&1; then
  not_ok "no ext4 file system is left on it"
else
  ok "no ext4 file system is left on it"
fi

# A config naming an ext4 image: the daemon does not start.
img2=$tmpdir/ext4-2.img
truncate -s 32M "$img2"
mkfs.ext4 -q -F "$img2"
sum2=$(md5sum <"$img2")
cat >"$tmpdir/ext4.conf" <<EOF
[storaged]
listen=$(transport_url "127.0.0.1:$(free_port)")
control=$tmpdir/ext4.sock
[pool zzz]
member_id=1
store=$img2
mapped_size=16M
EOF
out=$(timeout 60 "$RMR_STORAGED" --config "$tmpdir/ext4.conf" --foreground \
  2>&1) && rc=0 || rc=$?
[[ $rc -ne 0 && "$out" == *"store $img2: holds an ext4 file system; "*"create_store force=1"* ]] &&
  ok "a daemon configured on an ext4 image does not start, saying how to go on" ||
  { not_ok "a daemon configured on an ext4 image does not start, saying how to go on"
    diag "status $rc: $out"; }
is "$(md5sum <"$img2")" "$sum2" "and leaves the image unchanged"
ok "which is still a clean ext4 file system" fsck_clean "$img2"
done_testing
