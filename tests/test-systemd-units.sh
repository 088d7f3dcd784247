#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-systemd-units.sh: 'meson install' puts rmr-storaged.service and
# the socket-activated nbdkit-rmr@.socket/.service in systemd's system
# unit directory under the prefix, and 'systemd-analyze verify' finds
# nothing to say about them (it works without systemd as PID 1).  The
# daemon's unit names the installed binary (verified with ExecStart
# pointed at the copy in DESTDIR, as verify checks it is executable), and
# agrees with the daemon: its runtime directory holds the daemon's
# default control socket, its config path is the one the docs use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"

requires meson --version
requires pkg-config --version
requires systemd-analyze --version
requires_file "$RMR_STORAGED" "$RMR_PLUGIN"
make_tmpdir

root=$tmpdir/root
if DESTDIR=$root meson install -C "$BUILD_DIR" --no-rebuild --quiet \
     >"$tmpdir/install.log" 2>&1; then
  ok "meson install into DESTDIR"
else
  not_ok "meson install into DESTDIR"
  diag "$(tail -n 20 "$tmpdir/install.log")"
fi

read -r pfx sbindir datadir unitdir < <(meson introspect "$BUILD_DIR" \
  --buildoptions | /usr/bin/python3 -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["sbindir"], o["datadir"], o["systemdsystemunitdir"] or "-")')
[[ "$sbindir" == /* ]] || sbindir=$pfx/$sbindir
[[ "$datadir" == /* ]] || datadir=$pfx/$datadir
if [[ "$unitdir" == - ]]; then
  unitdir=$(pkg-config --define-variable=rootprefix="$pfx" \
    --variable=systemdsystemunitdir systemd 2>/dev/null ||
    echo "$pfx/lib/systemd/system")
fi
diag "unit directory: $unitdir"
case "$unitdir" in
  "$pfx"/*) ok "the unit directory is under the prefix ($pfx)" ;;
  *) not_ok "the unit directory is under the prefix ($pfx)" ;;
esac

units=$root$unitdir
for f in rmr-storaged.service nbdkit-rmr@.socket nbdkit-rmr@.service; do
  ok "installed: $unitdir/$f" test -s "$units/$f"
done
ok "installed: the nbdkit-rmr example" \
  test -s "$root$datadir/doc/rmr/nbdkit-rmr-example.conf"

# key UNIT KEY: the values of KEY in UNIT, one a line.
key () { sed -n "s/^$2=//p" "$units/$1"; }

svc=rmr-storaged.service
is "$(key $svc Type)" notify "$svc: Type=notify"
exec_start=$(key $svc ExecStart)
is "${exec_start%% *}" "$sbindir/rmr-storaged" \
  "$svc: ExecStart runs the installed daemon"
ok "$svc: ... which is installed" test -x "$root$sbindir/rmr-storaged"
ok "$svc: ... in the foreground (systemd tracks the main PID)" \
  grep -q -- ' --foreground ' <<<"$exec_start "
is "$(sed -n 's/.* --config \([^ ]*\).*/\1/p' <<<"$exec_start")" \
  /etc/rmr/storaged.conf "$svc: the config file is the documented one"
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
ok "$svc: ExecReload sends SIGHUP" grep -q -- '-HUP \$MAINPID' \
  <<<"$(key $svc ExecReload)"
for kv in ProtectSystem=strict NoNewPrivileges=yes ProtectHome=yes \
          PrivateTmp=yes StateDirectory=rmr; do
  is "$(key $svc "${kv%%=*}")" "${kv#*=}" "$svc: $kv"
done
ok "$svc: no PrivateDevices (stores may be block devices)" \
  bash -c "! grep -q '^PrivateDevices' '$units/$svc'"
ok "$svc: the state directory is writable" \
  grep -qx '/var/lib/rmr' <<<"$(key $svc ReadWritePaths)"
# The daemon's default control socket lies in the unit's runtime dir.
control=$("$RMR_STORAGED" --help | sed -n 's/.*control socket for rmradm (default \(.*\))/\1/p')
is "${control%/*}" "/run/$(key $svc RuntimeDirectory)" \
  "$svc: RuntimeDirectory holds the default control socket ($control)"

# The plugin's parameters in the example are ones it knows.
help=$(nbdkit "$RMR_PLUGIN" --help 2>&1)
_known ()
{
  local args p
  args=$(sed -n 's/^RMR_ARGS="\(.*\)"$/\1/p' "$root$datadir/doc/rmr/nbdkit-rmr-example.conf")
  [[ -n "$args" ]] || return 1
  for p in $args; do
    grep -q "^${p%%=*}=" <<<"$help" || { diag "unknown: $p"; return 1; }
  done
}
ok "the example's parameters are the plugin's" _known
# shellcheck disable=SC2016 # $RMR_ARGS is systemd's, literally
ok "nbdkit-rmr@.service runs the plugin with the example's variable" \
  grep -q '^ExecStart=.*nbdkit rmr \$RMR_ARGS ' "$units/nbdkit-rmr@.service"

# verify FILE...: systemd-analyze has nothing to say.
verify ()
{
  local out rc=0
  out=$(cd "$tmpdir/v" && systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
  [[ $rc -eq 0 && -z "$out" ]] && return 0
  diag "systemd-analyze verify $*: exit $rc"
  diag "$out"
  return 1
}
mkdir "$tmpdir/v"
# verify checks that ExecStart is executable: the installed copy, in DESTDIR.
sed "s|^ExecStart=$sbindir/|ExecStart=$root$sbindir/|" "$units/$svc" \
  >"$tmpdir/v/$svc"
ok "systemd-analyze verify $svc" verify "$svc"
cp "$units/nbdkit-rmr@.socket" "$units/nbdkit-rmr@.service" "$tmpdir/v/"
ok "systemd-analyze verify nbdkit-rmr@vol1.socket nbdkit-rmr@vol1.service" \
  verify nbdkit-rmr@vol1.socket nbdkit-rmr@vol1.service

done_testing
