#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-ucx.sh: what only the ucx transport has (the rest of the suite runs
# over ucx as ucx-NAME).  Two storage nodes, each listening on tcp: and
# on ucx: (two ports), with pools p and q; their peers are ucx.
#
# - a pool that mixes transports: leg 1 over tcp, leg 2 over ucx; each
#   leg's transport attribute says which (ucx with the lanes UCX chose);
#   8 MiB written land in both stores;
# - zero copy: 16 writes of 1 MiB put exactly 16 MiB on the ucx leg's
#   zcopy_bytes_sent (sent by rendezvous from nbdkit's buffer, never
#   copied by the client), nothing on the tcp leg's;
# - two pools sharing one ucx connection: pool q, opened in the same
#   nbdkit through the control socket, reaches node 2 on the connection
#   pool p uses (the node sees both pools' sessions from one peer
#   address);
# - kill -9 of the ucx node under a writer: its leg fails within seconds,
#   the writes go on, and on its return it resyncs from its peer over ucx
#   until the stores are identical;
# - IPv6: a node and the compute host on a veth pair with IPv6 addresses
#   only (UCX 1.13's tcp needs UCX_TCP_AF_PRIO=inet6,inet: a node without
#   it refuses the connection with that hint and stays up; with it on
#   both sides, IO works).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
RMR_TEST_TRANSPORT=ucx
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires nbdcopy --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir

declare -A TCP_PORT
qconf ()
{
  local i=$1 j=$((3 - $1))
  cat <<EOF

[pool q]
member_id=$((40 + i))
store=$tmpdir/q$i.img
mapped_size=32M
peers=ucx:${NODE_ADDR[$j]}
EOF
}

cluster_init 2
for i in 1 2; do
  TCP_PORT[$i]=$(free_port)
done
start_node ()
{
  NODE_ARGS="--listen tcp:127.0.0.1:${TCP_PORT[$1]} --listen ucx:${NODE_ADDR[$1]}" \
    node_start "$1" p 64M "$(qconf "$1")"
}
start_node 1
start_node 2

T1=tcp:127.0.0.1:${TCP_PORT[1]}
U2=ucx:${NODE_ADDR[2]}
nbdkit_start e pool=p server="$T1" server="$U2"
uri=$(nbd_uri e)
S1=rmr-client/pools/p/sessions/$(hostname)@127.0.0.1:${TCP_PORT[1]}
S2=rmr-client/pools/p/sessions/$(hostname)@${NODE_ADDR[2]}

# 1. Mixed transports.
is "$(rmradm_c e get "$S1/transport")" tcp "leg 1 runs over tcp"
t2=$(rmradm_c e get "$S2/transport")
diag "leg 2: $t2"
ok "leg 2 runs over ucx (lanes UCX chose: ${t2#ucx })" [ "${t2%% *}" = ucx ]
head -c 8M /dev/urandom >"$tmpdir/a.raw"
ok "8 MiB written through a pool of a tcp and a ucx leg" \
  nbdcopy "$tmpdir/a.raw" "$uri"
ok "the tcp node's store holds them" store_cmp 1 "$tmpdir/a.raw"
ok "the ucx node's store holds them" store_cmp 2 "$tmpdir/a.raw"

# 2. Zero copy on the ucx leg.
z1=$(rmradm_c e get "$S1/zcopy_bytes_sent")
z2=$(rmradm_c e get "$S2/zcopy_bytes_sent")
b2=$(rmradm_c e get "$S2/bytes_sent")
nbdsh -u "$uri" -c '
buf = bytearray(b"z" * (1 << 20))
for i in range(16):
    h.pwrite(buf, (32 << 20) + (i << 20))
h.flush()
'
is "$(($(rmradm_c e get "$S2/zcopy_bytes_sent") - z2))" $((16 << 20)) \
  "16 x 1 MiB: 16 MiB went by rendezvous from nbdkit's buffer (ucx leg)"
b=$(($(rmradm_c e get "$S2/bytes_sent") - b2))
ok "and each byte once: $b bytes sent on the ucx leg for 16 MiB" \
  [ "$b" -lt $(((16 << 20) + 65536)) ]
is "$(($(rmradm_c e get "$S1/zcopy_bytes_sent") - z1))" 0 \
  "nothing by rendezvous on the tcp leg"

# 3. Two pools, one ucx connection to node 2.
adm ()
{
  rmradm_c e "$@"
}
ok "join_pool q" adm set rmr-client/ctl/join_pool 'poolname=q'
ok "add_sess q1 over ucx" \
  adm set rmr-client/pools/q/add_sess "sessname=q1 path=ucx:${NODE_ADDR[1]}"
ok "add_sess q2 over ucx" \
  adm set rmr-client/pools/q/add_sess "sessname=q2 path=$U2"
ok "pool_enable q" adm set rmr-client/pools/q/pool_enable 1
ok "map_device q" adm set brmr-client/ctl/map_device 'pool=q size=65536'
nbdsh -u "nbd+unix:///q?socket=$tmpdir/e.sock" -c '
h.pwrite(b"q" * 65536, 0)
assert h.pread(65536, 0) == b"q" * 65536
h.flush()
' && ok "pool q takes IO beside pool p" || not_ok "pool q takes IO beside pool p"
peer_of ()
{
  rmradm_n 2 status "rmr-server/pools/$1/sessions" |
    awk -v s="$2" 'index($0, s) { for (i = 1; i <= NF; i++)
      if ($i ~ /^ucx:/) { print $i; exit } }'
}
pp=$(peer_of p "$(hostname)@${NODE_ADDR[2]}")
pq=$(peer_of q q2)
diag "node 2 sees pool p's session from '$pp', pool q's from '$pq'"
_same () { [ -n "$1" ] && [ "$1" = "$2" ]; }
ok "pools p and q reach node 2 on one ucx connection" _same "$pp" "$pq"

# 4. kill -9 of the ucx node under a writer, and its return.
nbdsh -u "$uri" -c '
import time
buf = b"w" * 65536
for i in range(400):
    h.pwrite(buf, (8 << 20) + (i % 256) * 65536)
    time.sleep(0.01)
h.flush()
' &
writer=$!
sleep 1
t0=$(date +%s.%N)
node_kill 2 KILL
_failed () { [ "$(rmradm_c e get "$S2/state")" = failed ]; }
if _wait_until 10 _failed; then
  t1=$(date +%s.%N)
  ok "the ucx leg failed $(echo "$t1 - $t0" | bc) s after kill -9"
else
  not_ok "the ucx leg failed after kill -9"
fi
ok "the writer went on and finished on the tcp leg" wait "$writer"
start_node 2
wait_leg_normal e 2 30
_leg2_normal () { [ "$(rmradm_c e get "$S2/state")" = normal ]; }
ok "the ucx leg is normal again" _wait_until 30 _leg2_normal
ok "node 2 resynced from node 1 over ucx" wait_in_sync 2 60
nbdcopy "$uri" "$tmpdir/b.raw"
head -c 32M "$tmpdir/b.raw" >"$tmpdir/b32.raw"
ok "node 1's store holds the device" store_cmp 1 "$tmpdir/b32.raw"
ok "node 2's store holds the device" store_cmp 2 "$tmpdir/b32.raw"
is "$(rmradm_n 2 get "rmr-client/pools/p/sessions/p@${NODE_ADDR[1]}/transport" 2>/dev/null |
  cut -d' ' -f1)" ucx "node 2's sync session to node 1 runs over ucx"

# 5. IPv6 over ucx, between two network namespaces.
if [[ $(id -u) -ne 0 ]]; then
  skip "IPv6 over ucx" "needs root for network namespaces"
else
  # No duplicate address detection: the addresses are usable at once.
  for ns in s6 c6; do
    netns_add "$ns"
    netns_exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
      net.ipv6.conf.default.accept_dad=0
  done
  netns_link s6 c6 fd99::1/64 fd99::2/64
  V6="ucx:[fd99::1]:7700"
  # The node first without UCX_TCP_AF_PRIO: it refuses every IPv6
  # connection, naming the setting (transport-ucx-listen.c), and stays up.
  start_v6_node ()
  {
    start_bg "$tmpdir/v6.pid" ip netns exec "$(netns_name s6)" env "$@" \
      "${CHECKED[@]}" "$RMR_STORAGED" --foreground --listen "$V6" \
      --control "$tmpdir/v6.sock"
    v6pid=$BG_PID
    wait_for_socket "$tmpdir/v6.sock" 10
  }
  rm -f "$tmpdir/v6.sock"
  start_v6_node UCX_TCP_AF_PRIO=inet,inet6
  "$RMRADM" -s "$tmpdir/v6.sock" set rmr-server/ctl/join_pool \
    'poolname=six member_id=6' >&2
  "$RMRADM" -s "$tmpdir/v6.sock" set brmr-server/ctl/create_store \
    "device=$tmpdir/six.img pool=six mapped_size=16384" >&2
  rc6=0
  netns_exec c6 timeout 60 nbdkit -f -U "$tmpdir/x6.sock" "$RMR_PLUGIN" \
    pool=six "server=$V6" timeout=10s 2>"$tmpdir/x6.err" || rc6=$?
  _refused6 () { [ "$rc6" -ne 0 ] && grep -q "UCX_TCP_AF_PRIO=inet6" "$1"; }
  if _refused6 "$tmpdir/x6.err"; then
    ok "IPv6 without UCX_TCP_AF_PRIO: refused, naming it"
  else
    not_ok "IPv6 without UCX_TCP_AF_PRIO: refused, naming it"
    diag "$(cat "$tmpdir/x6.err")"
  fi
  ok "the node is still up" _is_ours_alive "$v6pid"
  # Then with it, on both sides: IO over IPv6.
  kill_pid "$v6pid"
  rm -f "$tmpdir/v6.sock"
  start_v6_node UCX_TCP_AF_PRIO=inet6,inet
  "$RMRADM" -s "$tmpdir/v6.sock" set rmr-server/ctl/join_pool \
    'poolname=six member_id=6' >&2
  "$RMRADM" -s "$tmpdir/v6.sock" set brmr-server/ctl/add_store \
    "device=$tmpdir/six.img pool=six" >&2
  rm -f "$tmpdir/six6.sock" "$tmpdir/six6.ctl"
  start_bg "$tmpdir/six6.pid" ip netns exec "$(netns_name c6)" env UCX_TCP_AF_PRIO=inet6,inet \
    "${CHECKED[@]}" nbdkit -f -U "$tmpdir/six6.sock" "$RMR_PLUGIN" \
    pool=six "server=$V6" control="$tmpdir/six6.ctl"
  if _wait_until 20 test -S "$tmpdir/six6.ctl"; then
    ok "IO over IPv6 with UCX_TCP_AF_PRIO=inet6,inet" \
      nbdsh -u "nbd+unix:///?socket=$tmpdir/six6.sock" \
      -c 'h.pwrite(b"6" * 65536, 0); assert h.pread(65536, 0) == b"6" * 65536'
    t6=$("$RMRADM" -s "$tmpdir/six6.ctl" get \
      "rmr-client/pools/six/sessions/$(hostname)@fd99::1:7700/transport" || true)
    diag "IPv6 leg: $t6"
  else
    not_ok "IO over IPv6 with UCX_TCP_AF_PRIO=inet6,inet (nbdkit did not start)"
  fi
fi
done_testing
