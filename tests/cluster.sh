#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# cluster.sh: a local rmr cluster for integration tests, on top of
# functions.sh (source that first, then make_tmpdir, then this).
#
#   RMR_TEST_TRANSPORT (environment): tcp (the default) or ucx, the
#       transport of every node address built here (listen=, peers=,
#       server=); anything else fails the test.  Under ucx, UCX_TLS=tcp
#       unless set (every "host" is on this machine: UCX would otherwise
#       take shared memory between namespaces, and a cut link would cut
#       nothing) and UCX_WARN_UNUSED_ENV_VARS=n.
#   cluster_init N [net]
#       addresses for nodes 1..N: free ports on 127.0.0.1, or with "net"
#       each node is a host in its own network namespace (10.199.0.I, port
#       7700) and the compute host is one too (10.199.0.100), so a link
#       can be cut (node_cut I).  Needs root for "net".
#   node_start I [POOL [SIZE [EXTRA_POOL_LINES]]]
#       start rmr-storaged number I (member_id 40+I) with a config file
#       $tmpdir/nI.conf: its address, control socket $tmpdir/ctlI.sock, one
#       pool (default "p") with store $tmpdir/storeI.img of SIZE (default
#       64M) and the other nodes of the cluster as peers.  Sets
#       NODE_CTL[I], NODE_PID[I], NODE_STORE[I].  Starting a node again
#       reuses its store (a restart).  NODE_PREFIX[I], if set: words run
#       before the daemon (a wrapper that execs it, tests/power.sh).  POOL "-": no pool at all (the admin
#       guide's bare node, configured through its control socket).
#   cluster_tls [MODE]
#       TLS with pre-shared keys from here on (DESIGN 9): a key file
#       $tmpdir/keys.psk (psktool) with identities node1..node8 and
#       client; node_start gives node I tls=MODE (default require),
#       tls_psk and tls_username=nodeI, nbdkit_start gives the plugin
#       tls=MODE tls-psk tls-username=client (plugin_tls_args prints
#       those, for tests that start nbdkit themselves; nothing without
#       cluster_tls).  RMR_TEST_TLS=1 in the
#       environment turns it on when this file is sourced (the "tls"
#       test setup).
#   node_kill I [SIG]       stop node I (by PID; KILL for a crash)
#   node_cut I / node_restore I   take node I's links down / up (net)
#   client_block I / peer_block I (and _unblock): node I drops what the
#                  client / its peers send (net, nftables)
#   servers I...            "server=SCHEME:ADDR ..." for those nodes
#   node_url I              node I's address with the scheme: SCHEME:ADDR
#   transport_url ADDR      any HOST:PORT with the scheme: SCHEME:ADDR
#   connect_refused_re ADDR the error (an ERE) of a connect to ADDR where
#                           nothing listens, in the transport under test
#   nbdkit_start NAME ARGS  start nbdkit with our plugin on $tmpdir/NAME.sock
#                           (on the compute host), control socket
#                           $tmpdir/NAME.ctl; sets NBDKIT_PID; nbdkit's own
#                           options (before the plugin) from NBDKIT_OPTS
#   nbd_uri NAME            the NBD URI of that nbdkit
#   store_data_offset I, store_cmp I FILE [LEN], store_extract I LEN OUT
#   rmradm_n I ARGS...      rmradm on node I's control socket
#   rmradm_c NAME ARGS...   rmradm on nbdkit NAME's control socket
#   wait_in_sync I SECS     node I's map of itself clean and its sync idle
#   legs_identical I J LEN  the first LEN data bytes of two stores match

# tmpdir comes from functions.sh; NBDKIT_PID and the NODE_* arrays are
# read by the tests that source this file.
# shellcheck disable=SC2154,SC2034
declare -A NODE_ADDR NODE_CTL NODE_PID NODE_STORE NODE_PREFIX

RMR_TEST_TRANSPORT=${RMR_TEST_TRANSPORT:-tcp}
case $RMR_TEST_TRANSPORT in
  tcp) ;;
  ucx)
    # All nodes run on this machine, each in its own network namespace
    # under "net": UCX would pick shared memory (or cma) between them, and
    # node_cut would not cut anything.  Only its tcp transport, then,
    # unless the caller chose otherwise (UCX_TLS=rc on an RDMA host).
    export UCX_TLS=${UCX_TLS:-tcp}
    export UCX_WARN_UNUSED_ENV_VARS=n
    ;;
  *)
    fail_test "RMR_TEST_TRANSPORT='$RMR_TEST_TRANSPORT': expected tcp or ucx"
    ;;
esac
export RMR_TEST_TRANSPORT

transport_url ()
{
  echo "$RMR_TEST_TRANSPORT:$1"
}

node_url ()
{
  transport_url "${NODE_ADDR[$1]}"
}

# tcp says "connect: Connection refused"; ucx reports an unreachable
# listener in its own words (UCS status strings), so only the address is
# pinned there.
connect_refused_re ()
{
  if [[ $RMR_TEST_TRANSPORT == tcp ]]; then
    echo "tcp:$1: connect: Connection refused"
  else
    echo "$RMR_TEST_TRANSPORT:$1: "
  fi
}

CLUSTER_N=0
CLUSTER_NET=false
CLUSTER_TLS=
NBDKIT_OPTS=()

cluster_tls ()
{
  requires psktool --version
  CLUSTER_TLS=${1:-require}
}

plugin_tls_args ()
{
  if [[ -n "$CLUSTER_TLS" ]]; then
    _tls_keys
    echo "tls=$CLUSTER_TLS tls-psk=$tmpdir/keys.psk tls-username=client"
  fi
}

# The key file, made on first use (this file may be sourced before
# make_tmpdir).
_tls_keys ()
{
  local i
  if [[ ! -f "$tmpdir/keys.psk" ]]; then
    for i in client node1 node2 node3 node4 node5 node6 node7 node8; do
      psktool -u "$i" -p "$tmpdir/keys.psk" >/dev/null
    done
  fi
}

cluster_init ()
{
  local i
  CLUSTER_N=$1
  if [[ "${2:-}" == net ]]; then
    requires_root
    CLUSTER_NET=true
    netns_host cli 10.199.0.100
    for ((i = 1; i <= CLUSTER_N; i++)); do
      netns_host "n$i" "10.199.0.$i"
      NODE_ADDR[$i]=10.199.0.$i:7700
    done
  else
    for ((i = 1; i <= CLUSTER_N; i++)); do
      NODE_ADDR[$i]=127.0.0.1:$(free_port)
    done
  fi
}

_peers_of ()
{
  local i out=""
  for ((i = 1; i <= CLUSTER_N; i++)); do
    [[ $i -eq $1 ]] && continue
    out+="${out:+,}$(node_url "$i")"
  done
  echo "$out"
}

node_start ()
{
  local i=$1 pool=${2:-p} size=${3:-64M} extra=${4:-}
  if [[ -z "${NODE_ADDR[$i]:-}" ]]; then
    NODE_ADDR[$i]=127.0.0.1:$(free_port)      # without cluster_init
    [[ $i -gt $CLUSTER_N ]] && CLUSTER_N=$i
  fi
  NODE_CTL[$i]=$tmpdir/ctl$i.sock
  NODE_STORE[$i]=${NODE_STORE[$i]:-$tmpdir/store$i.img}
  local tls=""
  if [[ -n "$CLUSTER_TLS" ]]; then
    _tls_keys
    tls="tls=$CLUSTER_TLS
tls_psk=$tmpdir/keys.psk
tls_username=node$i"
  fi
  cat >"$tmpdir/n$i.conf" <<EOF
[storaged]
listen=$(node_url "$i")
control=${NODE_CTL[$i]}
$tls
EOF
  if [[ "$pool" != - ]]; then
    cat >>"$tmpdir/n$i.conf" <<EOF

[pool $pool]
member_id=$((40 + i))
store=${NODE_STORE[$i]}
mapped_size=$size
peers=$(_peers_of "$i")
$extra
EOF
  fi
  rm -f "${NODE_CTL[$i]}"
  if $CLUSTER_NET; then
    # shellcheck disable=SC2086 # NODE_ARGS: words
    start_bg "$tmpdir/n$i.pid" ip netns exec "$(netns_name "n$i")" \
      ${NODE_PREFIX[$i]:-} "${CHECKED[@]}" "$RMR_STORAGED" --config "$tmpdir/n$i.conf" --foreground \
      --log-level "${NODE_LOG_LEVEL:-info}" ${NODE_ARGS:-}
  else
    # shellcheck disable=SC2086 # NODE_ARGS: words
    start_bg "$tmpdir/n$i.pid" ${NODE_PREFIX[$i]:-} "${CHECKED[@]}" "$RMR_STORAGED" \
      --config "$tmpdir/n$i.conf" \
      --foreground --log-level "${NODE_LOG_LEVEL:-info}" ${NODE_ARGS:-}
  fi
  NODE_PID[$i]=$BG_PID
  # The control socket comes first, then the listener: wait for both.  A
  # daemon that exits instead (a listen address it cannot serve, such as
  # a transport this build lacks) fails the test at once, not after the
  # timeout: its reason is on stderr, above.
  wait_for_socket "${NODE_CTL[$i]}" 10
  _wait_until 10 _node_listening_or_gone "$i" ||
    fail_test "timed out after 10 s waiting for node $i's listener $(node_url "$i")"
  _is_ours_alive "${NODE_PID[$i]}" ||
    fail_test "node $i (rmr-storaged) exited instead of listening on $(node_url "$i")"
}

_node_listening_or_gone ()
{
  local i=$1 ns=""
  $CLUSTER_NET && ns=n$i
  ! _is_ours_alive "${NODE_PID[$i]}" ||
    _port_listening "${NODE_ADDR[$i]%:*}" "${NODE_ADDR[$i]##*:}" "$ns"
}

node_kill ()
{
  kill_pid "${NODE_PID[$1]}" "${2:-TERM}"
}

node_cut ()
{
  netns_cut "n$1"
}

node_restore ()
{
  netns_restore "n$1"
}

# client_block I / client_unblock I (cluster_init N net): node I drops
# what the client sends, its links to its peers stay up.
client_block ()
{
  netns_exec "n$1" nft add table inet rmrtest
  netns_exec "n$1" nft add chain inet rmrtest in \
    '{ type filter hook input priority 0; }'
  netns_exec "n$1" nft add rule inet rmrtest in ip saddr 10.199.0.100 drop
}

client_unblock ()
{
  netns_exec "n$1" nft delete table inet rmrtest
}

# peer_block I / peer_unblock I (cluster_init N net): node I drops what
# its peers send, so its links to them break both ways, while the
# client still reaches every node.
peer_block ()
{
  netns_exec "n$1" nft add table inet rmrpeer
  netns_exec "n$1" nft add chain inet rmrpeer in \
    '{ type filter hook input priority 0; }'
  netns_exec "n$1" nft add rule inet rmrpeer in ip saddr 10.199.0.0/24 \
    ip saddr != 10.199.0.100 drop
}

peer_unblock ()
{
  netns_exec "n$1" nft delete table inet rmrpeer
}

servers ()
{
  local i out=""
  for i in "$@"; do
    out+="server=$(node_url "$i") "
  done
  echo "$out"
}

nbdkit_start ()
{
  local name=$1
  shift
  # shellcheck disable=SC2046 # words
  set -- "$@" $(plugin_tls_args)
  rm -f "$tmpdir/$name.sock" "$tmpdir/$name.ctl"
  if $CLUSTER_NET; then
    start_bg "$tmpdir/$name.pid" ip netns exec "$(netns_name cli)" \
      "${CHECKED[@]}" nbdkit -f -U "$tmpdir/$name.sock" "${NBDKIT_OPTS[@]}" \
      "$RMR_PLUGIN" "$@" control="$tmpdir/$name.ctl"
  else
    start_bg "$tmpdir/$name.pid" "${CHECKED[@]}" nbdkit -f \
      -U "$tmpdir/$name.sock" "${NBDKIT_OPTS[@]}" "$RMR_PLUGIN" "$@" \
      control="$tmpdir/$name.ctl"
  fi
  NBDKIT_PID=$BG_PID
  # The control socket comes after the NBD one (.after_fork): wait for
  # both, so that a test may talk to either at once (valgrind is slow).
  if ! _wait_until 15 test -S "$tmpdir/$name.sock" ||
    ! _wait_until 15 test -S "$tmpdir/$name.ctl"; then
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

rmradm_c ()
{
  local name=$1
  shift
  "$RMRADM" -s "$tmpdir/$name.ctl" "$@"
}

store_data_offset ()
{
  "$RMRADM" store-info "${NODE_STORE[$1]}" |
    awk '$1 == "data_offset:" { print $2 }'
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

legs_identical ()
{
  local i=$1 j=$2 len=$3
  store_extract "$i" "$len" "$tmpdir/leg$i.cmp"
  store_extract "$j" "$len" "$tmpdir/leg$j.cmp"
  cmp "$tmpdir/leg$i.cmp" "$tmpdir/leg$j.cmp"
  local rc=$?
  rm -f "$tmpdir/leg$i.cmp" "$tmpdir/leg$j.cmp"
  return $rc
}

# Dirty chunks recorded for member M (40+I) on node J's map_summary.
dirty_count ()
{
  local j=$1 member=$2
  rmradm_n "$j" get rmr-server/pools/p/map_summary |
    awk -v m="member $member:" 'index($0, m) == 1 {
      n = $(NF - 1); sub(/\/.*/, "", n); print n }'
}

_in_sync ()
{
  local out
  out=$(rmradm_n "$1" get rmr-server/pools/p/sync 2>/dev/null) || return 1
  grep -q '^dirty: 0$' <<<"$out"
}

# wait_in_sync I SECS: node I's resync of pool p ends; if it does not,
# what it waits for goes to the log (node_diag).
wait_in_sync ()
{
  _wait_until "$2" _in_sync "$1" && return 0
  node_diag "$1"
  return 1
}

# node_diag I [POOL]: why node I's resync of POOL (default p) does not
# end: its sync status (the chunks in hand and what the oldest waits
# for) and every thread's stack.
node_diag ()
{
  diag "node $1: sync status of pool ${2:-p}:"
  diag "$(rmradm_n "$1" get "rmr-server/pools/${2:-p}/sync" 2>&1 || true)"
  _is_ours_alive "${NODE_PID[$1]}" && _stacks "${NODE_PID[$1]}"
  return 0
}

leg_state ()
{
  local name=$1 i=$2 sess
  sess=$(rmradm_c "$name" ls "rmr-client/pools/p/sessions" |
    grep -F "${NODE_ADDR[$i]}/state" | head -1)
  [[ -n "$sess" ]] && rmradm_c "$name" get "${sess% (w)}"
}

# wait_leg_normal NAME I SECS: nbdkit NAME's leg to node I turns normal;
# the client's status goes to the log if it does not.
_leg_is_normal ()
{
  [[ "$(leg_state "$1" "$2")" == normal ]]
}

wait_leg_normal ()
{
  if ! _wait_until "$3" _leg_is_normal "$1" "$2"; then
    diag "leg $2 not normal after $3 s:"
    rmradm_c "$1" status >&2 || true
  fi
}

# The state of pool p on every node, one per line.
rmr_states ()
{
  local i
  for ((i = 1; i <= CLUSTER_N; i++)); do
    rmradm_n "$i" get rmr-server/pools/p/state
  done
}

if [[ "${RMR_TEST_TLS:-}" == 1 ]]; then
  cluster_tls require
fi
