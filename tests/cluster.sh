#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# cluster.sh: a local rmr cluster for integration tests, on top of
# functions.sh (source that first, then make_tmpdir, then this).
#
#   node_start I [POOL [SIZE [EXTRA_POOL_LINES]]]
#       start rmr-storaged number I (member_id 40+I) with a config file
#       $tmpdir/nI.conf: listen on a free port of 127.0.0.1, control socket
#       $tmpdir/ctlI.sock, one pool (default "p") with store
#       $tmpdir/storeI.img of SIZE (default 64M).  Sets NODE_PORT[I],
#       NODE_CTL[I], NODE_PID[I], NODE_STORE[I].
#   node_kill I [SIG]       stop node I (by PID)
#   servers I...            "server=tcp:127.0.0.1:PORT ..." for those nodes
#   nbdkit_start NAME ARGS  start nbdkit with our plugin on $tmpdir/NAME.sock
#                           (foreground process, killed at exit); sets
#                           NBDKIT_PID; fails the test if it does not come up
#   nbd_uri NAME            the NBD URI of that nbdkit
#   store_data I            print the path and data offset of node I's store
#   store_cmp I FILE [LEN]  compare node I's data area with FILE
#   rmradm_n I ARGS...      rmradm on node I's control socket

declare -A NODE_PORT NODE_CTL NODE_PID NODE_STORE

node_start ()
{
  local i=$1 pool=${2:-p} size=${3:-64M} extra=${4:-}
  local port
  port=${NODE_PORT[$i]:-$(free_port)}
  NODE_PORT[$i]=$port
  NODE_CTL[$i]=$tmpdir/ctl$i.sock
  NODE_STORE[$i]=${NODE_STORE[$i]:-$tmpdir/store$i.img}
  cat >"$tmpdir/n$i.conf" <<EOF
[storaged]
listen=tcp:127.0.0.1:$port
control=${NODE_CTL[$i]}

[pool $pool]
member_id=$((40 + i))
store=${NODE_STORE[$i]}
mapped_size=$size
$extra
EOF
  start_bg "$tmpdir/n$i.pid" "$RMR_STORAGED" --config "$tmpdir/n$i.conf" \
    --foreground --log-level "${NODE_LOG_LEVEL:-info}"
  NODE_PID[$i]=$BG_PID
  wait_for_port 127.0.0.1 "$port" 10
  wait_for_socket "${NODE_CTL[$i]}" 10
}

node_kill ()
{
  kill_pid "${NODE_PID[$1]}" "${2:-TERM}"
}

servers ()
{
  local i out=""
  for i in "$@"; do
    out+="server=tcp:127.0.0.1:${NODE_PORT[$i]} "
  done
  echo "$out"
}

nbdkit_start ()
{
  local name=$1
  shift
  rm -f "$tmpdir/$name.sock"
  start_bg "$tmpdir/$name.pid" nbdkit -f -U "$tmpdir/$name.sock" \
    "$RMR_PLUGIN" "$@"
  NBDKIT_PID=$BG_PID
  if ! _wait_until 15 test -S "$tmpdir/$name.sock"; then
    fail_test "nbdkit $name did not start: nbdkit $*"
  fi
}

nbd_uri ()
{
  echo "nbd+unix:///?socket=$tmpdir/$1.sock"
}

rmradm_n ()
{
  local i=$1
  shift
  "$RMRADM" -s "${NODE_CTL[$i]}" "$@"
}

store_data_offset ()
{
  "$RMRADM" store-info "${NODE_STORE[$1]}" | awk '$1 == "data_offset:" { print $2 }'
}

# store_cmp I FILE [LEN]: node I's data area starts with FILE's bytes.
store_cmp ()
{
  local i=$1 file=$2 len=${3:-}
  local off
  off=$(store_data_offset "$i")
  [[ -n "$off" ]] || return 1
  [[ -n "$len" ]] || len=$(stat -c %s "$file")
  cmp -n "$len" "$file" <(dd if="${NODE_STORE[$i]}" iflag=skip_bytes,count_bytes \
    skip="$off" count="$len" status=none)
}

# store_extract I LEN OUT: copy node I's first LEN data bytes to OUT.
store_extract ()
{
  local i=$1 len=$2 out=$3 off
  off=$(store_data_offset "$i")
  dd if="${NODE_STORE[$i]}" of="$out" iflag=skip_bytes,count_bytes \
    skip="$off" count="$len" status=none
}
