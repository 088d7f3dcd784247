#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-export-tls.sh: the NBD front of the compute host with TLS and a
# pre-shared key, as nbdkit offers it to every plugin (issue 9, item 5):
# nbdkit --tls=require --tls-psk=FILE rmr ...  Clients with the key
# (nbdsh, nbdcopy, nbdinfo through nbds+unix URIs, qemu-img with a
# tls-creds-psk object) read and write; a client without TLS, and one
# with a wrong key, are refused and change nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nbdcopy --version
requires nbdinfo --version
requires qemu-img --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

# The key file, in nbdkit's and psktool's format (USERNAME:HEXKEY); qemu
# reads keys.psk in a directory.
mkdir "$tmpdir/psk" "$tmpdir/bad"
echo "alice:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  >"$tmpdir/psk/keys.psk"
echo "alice:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  >"$tmpdir/bad/keys.psk"
chmod 600 "$tmpdir/psk/keys.psk" "$tmpdir/bad/keys.psk"

node_start 1 p 32M
node_start 2 p 32M
NBDKIT_OPTS=(--tls=require "--tls-psk=$tmpdir/psk/keys.psk")
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2)
sock=$tmpdir/e.sock
tls_uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$tmpdir/psk/keys.psk"
bad_uri="nbds+unix://alice@/?socket=$sock&tls-psk-file=$tmpdir/bad/keys.psk"

# nbdsh: a URI that names a key file needs allow_local_file.
tls_sh ()
{
  nbdsh -c "h.set_uri_allow_local_file(True)" -c "h.connect_uri('$1')" -c "$2"
}
ok "nbdsh with the key writes and reads back" tls_sh "$tls_uri" '
h.pwrite(b"tls " * 1024, 4096)
h.flush()
assert h.pread(4096, 4096) == b"tls " * 1024
'
head -c $((4 << 20)) /dev/urandom >"$tmpdir/data"
ok "nbdcopy with the key copies 4 MiB in" nbdcopy "$tmpdir/data" "$tls_uri"
ok "nbdcopy with the key copies them out again" \
  nbdcopy "$tls_uri" "$tmpdir/back"
ok "and they are the same bytes" cmp -n $((4 << 20)) "$tmpdir/data" "$tmpdir/back"
is "$(nbdinfo --size "$tls_uri")" $((32 << 20)) "nbdinfo with the key: the size"
ok "qemu-img with a tls-creds-psk object reads the export" \
  qemu-img convert -O raw \
  --object "tls-creds-psk,id=tls0,endpoint=client,dir=$tmpdir/psk,username=alice" \
  --image-opts "driver=nbd,server.type=unix,server.path=$sock,tls-creds=tls0" \
  "$tmpdir/qemu.img"
ok "and it holds the same bytes" cmp -n $((4 << 20)) "$tmpdir/data" "$tmpdir/qemu.img"

sum_sh='import hashlib; print(hashlib.sha256(h.pread(1 << 20, 0)).hexdigest())'
before=$(tls_sh "$tls_uri" "$sum_sh")
rc=0
nbdsh -u "nbd+unix:///?socket=$sock" -c 'h.pwrite(b"x" * 4096, 0)' 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] && ok "a client without TLS is refused" ||
  not_ok "a client without TLS is refused"
rc=0
tls_sh "$bad_uri" 'h.pwrite(b"x" * 4096, 0)' 2>/dev/null || rc=$?
[[ $rc -ne 0 ]] && ok "a client with a wrong key is refused" ||
  not_ok "a client with a wrong key is refused"
is "$(tls_sh "$tls_uri" "$sum_sh")" "$before" "and nothing changed"
kill_pid "$NBDKIT_PID"
ok "the legs are byte-identical" legs_identical 1 2 $((32 << 20))
done_testing
