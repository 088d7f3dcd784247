#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-install.sh: what an administrator sees of the plugin and the
# installation: 'nbdkit rmr --help' lists every parameter, '--dump-plugin'
# shows a parallel plugin with every callback the export needs, and
# 'meson install' puts the plugin where nbdkit finds plugins by name, the
# daemon and rmradm in sbin, librmr (shared library with its soname,
# header, pkg-config file) for external programs, and the four man pages.
# (test-librmr-api.sh checks what librmr exports and builds against it.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"

requires nbdkit --version
requires meson --version
requires pkg-config --version
requires readelf --version
requires_file "$RMR_PLUGIN"
make_tmpdir

help=$(nbdkit "$RMR_PLUGIN" --help 2>&1)
missing=()
for p in pool server chunk-size size mode read-policy min-legs queue-depth \
         timeout force control; do
  grep -q "^$p=" <<<"$help" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  ok "nbdkit rmr --help lists every parameter"
else
  not_ok "nbdkit rmr --help lists every parameter"
  diag "missing: ${missing[*]}"
fi

# dump_has TEXT KEY=VALUE...: every line is in the dump.
dump_has ()
{
  local dump=$1 kv
  shift
  for kv in "$@"; do
    grep -qx "$kv" <<<"$dump" || { diag "no line '$kv'"; return 1; }
  done
}

dump=$(nbdkit --dump-plugin "$RMR_PLUGIN" 2>&1)
ok "nbdkit --dump-plugin: a parallel plugin with every export callback" \
  dump_has "$dump" name=rmr thread_model=parallel has_pread=1 has_pwrite=1 \
  has_flush=1 has_trim=1 has_zero=1 has_can_fua=1 has_can_fast_zero=1 \
  has_can_multi_conn=1 has_block_size=1 has_config_help=1

root=$tmpdir/root
if DESTDIR=$root meson install -C "$BUILD_DIR" --no-rebuild --quiet \
     >"$tmpdir/install.log" 2>&1; then
  ok "meson install into DESTDIR"
else
  not_ok "meson install into DESTDIR"
  diag "$(tail -n 20 "$tmpdir/install.log")"
fi

plugindir=$(pkg-config --variable=plugindir nbdkit)
prefix=$(meson introspect "$BUILD_DIR" --buildoptions |
  /usr/bin/python3 -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["sbindir"], o["mandir"], o["libdir"], o["includedir"])')
read -r pfx sbindir mandir libdir includedir <<<"$prefix"
[[ "$sbindir" == /* ]] || sbindir=$pfx/$sbindir
[[ "$mandir" == /* ]] || mandir=$pfx/$mandir
[[ "$libdir" == /* ]] || libdir=$pfx/$libdir
[[ "$includedir" == /* ]] || includedir=$pfx/$includedir

for f in "$plugindir/nbdkit-rmr-plugin.so" "$sbindir/rmr-storaged" \
         "$sbindir/rmradm" "$mandir/man1/nbdkit-rmr-plugin.1" \
         "$mandir/man8/rmr-storaged.8" "$mandir/man8/rmradm.8" \
         "$mandir/man3/librmr.3" "$libdir/librmr.so.0" \
         "$includedir/rmr/rmr.h" "$libdir/pkgconfig/rmr.pc"; do
  ok "installed: $f" test -s "$root$f"
done

# librmr: the file the linker finds for -lrmr leads to the soname, and
# the pkg-config file says where the header and the library are.
is "$(readelf -d "$root$libdir/librmr.so" 2>&1 |
      sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" librmr.so.0 \
  "installed: librmr.so with the soname librmr.so.0"
pc=$root$libdir/pkgconfig/rmr.pc
is "$(PKG_CONFIG_PATH=${pc%/*} PKG_CONFIG_LIBDIR='' pkg-config \
      --variable=includedir rmr) $(PKG_CONFIG_PATH=${pc%/*} \
      PKG_CONFIG_LIBDIR='' pkg-config --variable=libdir rmr)" \
  "$includedir $libdir" "installed: rmr.pc names the include and lib dirs"

# nbdkit loads the installed copy, as it would by name from plugindir.
dump=$(nbdkit --dump-plugin "$root$plugindir/nbdkit-rmr-plugin.so" 2>&1)
ok "the installed plugin loads" dump_has "$dump" name=rmr
ok "the installed rmradm runs" "$root$sbindir/rmradm" --version

done_testing
