#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-metrics.sh: Prometheus metrics (issue 13).  An RF=2 pool with two
# daemons (--metrics) and nbdkit (metrics=), scraped over HTTP with curl:
# before IO, after writes and reads (counters moved by the requests made,
# bytes equal to what was written and read, on the client's legs and on
# each member), and during a resync (node 2 killed by PID, writes, node 2
# back: dirty chunks > 0, the resync's progress moves, then dirty 0).
# rmradm metrics prints the same families from the control sockets; the
# text passes a format check; /other is 404, POST 405; a bad metrics=
# value gets one line naming the field and starts nothing.  Who may
# scrape: a daemon serving HTTPS (a self-signed certificate from
# certtool) with basic authentication answers curl with the right
# password only, not plain HTTP; nbdkit's metrics-auth= the same over
# HTTP; a missing file, a bad line, a certificate without its key or
# with another's are refused, naming the setting.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

requires nbdsh --version
requires curl --version
requires python3 --version
requires_file "$RMR_STORAGED" "$RMRADM" "$RMR_PLUGIN"
make_tmpdir
cluster_init 2

chunk=$((64 << 10))
mport1=$(free_port)
mport2=$(free_port)
mportc=$(free_port)
NODE_ARGS="--metrics tcp:127.0.0.1:$mport1 --enable-fault-injection" \
  node_start 1 p 64M
NODE_ARGS="--metrics tcp:[::1]:$mport2" node_start 2 p 64M
# shellcheck disable=SC2046
nbdkit_start e pool=p $(servers 1 2) chunk-size=64K timeout=3s \
  "metrics=tcp:127.0.0.1:$mportc"
uri=$(nbd_uri e)
url1=http://127.0.0.1:$mport1/metrics
url2="http://[::1]:$mport2/metrics"
urlc=http://127.0.0.1:$mportc/metrics

# scrape URL FILE: GET it (fails on an HTTP error).
scrape ()
{
  curl -fsS --max-time 10 -o "$2" "$1"
}

# value FILE SERIES: the value of one series (name{labels} as printed),
# or nothing.
value ()
{
  awk -v s="$2" 'substr($0, 1, length(s) + 1) == s " " { print $NF }' "$1"
}

# families FILE: the metric families, sorted.
families ()
{
  awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$1" | sort
}

# format_ok FILE: the text format, version 0.0.4: each family's HELP and
# TYPE once, before its samples, samples of one family together, names
# and labels well formed, histogram buckets cumulative ending in +Inf =
# _count.
format_ok ()
{
  python3 - "$1" <<'EOF'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^(%s)(\{%s(?:,%s)*\})? (\S+)$' % (name, label, label))
types, seen_done, cur = {}, set(), None
buckets = {}
counts = {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip('\n')
    def bad(why):
        sys.exit('line %d: %s: %s' % (n, why, line))
    if line.startswith('# HELP ') or line.startswith('# TYPE '):
        f = line.split(' ')[2]
        if line.startswith('# TYPE '):
            if f in types: bad('second TYPE')
            t = line.split(' ')[3]
            if t not in ('counter', 'gauge', 'histogram'): bad('type')
            types[f] = t
        if cur is not None and f != cur: seen_done.add(cur)
        if f in seen_done: bad('family split')
        cur = f
        continue
    m = sample.match(line)
    if not m: bad('not a sample')
    s = m.group(1)
    base = re.sub(r'_(bucket|sum|count)$', '', s) if types.get(cur) == 'histogram' else s
    if base != cur or cur not in types: bad('sample outside its family')
    v = m.group(3)
    if v not in ('+Inf', '-Inf', 'NaN'): float(v)
    if s.endswith('_bucket'):
        labels = m.group(2)
        le = re.search(r'le="([^"]*)"', labels).group(1)
        key = (cur, re.sub(r',?le="[^"]*"', '', labels))
        prev = buckets.get(key, (float('-inf'), 0))
        lev = float('inf') if le == '+Inf' else float(le)
        if lev <= prev[0] or float(v) < prev[1]: bad('buckets not cumulative')
        buckets[key] = (lev, float(v))
    if s.endswith('_count') and types.get(cur) == 'histogram':
        key = (cur, m.group(2) or '{}')
        b = buckets.get((cur, m.group(2).replace('{', '{').rstrip('}') + '}'))
        if not b or b[0] != float('inf') or b[1] != float(v): bad('+Inf != _count')
print('format ok: %d families' % len(types))
EOF
}

# --- before IO --------------------------------------------------------------

scrape "$url1" "$tmpdir/n1.0" && ok "node 1 scraped over HTTP" ||
  not_ok "node 1 scraped over HTTP"
scrape "$url2" "$tmpdir/n2.0" && ok "node 2 scraped over HTTP (IPv6)" ||
  not_ok "node 2 scraped over HTTP (IPv6)"
scrape "$urlc" "$tmpdir/c.0" && ok "the plugin scraped over HTTP" ||
  not_ok "the plugin scraped over HTTP"
for f in n1.0 n2.0 c.0; do
  ok "$f passes the format check" format_ok "$tmpdir/$f"
done
ctype=$(curl -fsS -o /dev/null -w '%{content_type}' "$url1")
is "$ctype" "text/plain; version=0.0.4; charset=utf-8" "Content-Type"
is "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport1/other")" \
  404 "another path: 404"
is "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$url1")" 405 \
  "POST: 405"
is "$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$urlc")" 405 \
  "POST to the plugin: 405"

L41='{pool="p",member="41"}'
L42='{pool="p",member="42"}'
is "$(value "$tmpdir/c.0" "rmr_leg_writes_total$L41")" 0 \
  "before IO: no write on leg 41"
is "$(value "$tmpdir/n1.0" "rmr_member_writes_total$L41")" 0 \
  "before IO: no write on member 41"
is "$(value "$tmpdir/c.0" "rmr_leg_state{pool=\"p\",member=\"42\",state=\"normal\"}")" \
  1 "leg 42 is normal"
is "$(value "$tmpdir/n1.0" "rmr_pool_state{pool=\"p\",member=\"41\",state=\"normal\"}")" \
  1 "pool p is normal on node 1"
gen=$(value "$tmpdir/n1.0" 'rmr_pool_generation{pool="p"}')
is "$(value "$tmpdir/c.0" 'rmr_pool_generation{pool="p"}')" "$gen" \
  "the client and node 1 agree on the generation ($gen)"

# rmradm metrics: the same families as /metrics.
rmradm_n 1 metrics >"$tmpdir/n1.ctl"
rmradm_c e metrics >"$tmpdir/c.ctl"
is "$(families "$tmpdir/n1.ctl")" "$(families "$tmpdir/n1.0")" \
  "rmradm metrics (daemon) prints the families of /metrics"
is "$(families "$tmpdir/c.ctl")" "$(families "$tmpdir/c.0")" \
  "rmradm metrics (plugin) prints the families of /metrics"
for f in rmr_member_reads_total rmr_member_written_bytes_total \
  rmr_member_errors_total rmr_member_inflight_requests \
  rmr_member_request_duration_seconds rmr_dirty_chunks \
  rmr_member_data_state rmr_resync_done_chunks rmr_resync_total_chunks \
  rmr_resync_rate_bytes_per_second rmr_resync_state rmr_pool_generation \
  rmr_store_io_errors_total; do
  grep -qx "$f" <(families "$tmpdir/n1.0") && ok "daemon family $f" ||
    not_ok "daemon family $f"
done
for f in rmr_leg_reads_total rmr_leg_writes_total rmr_leg_read_bytes_total \
  rmr_leg_written_bytes_total rmr_leg_errors_total rmr_leg_inflight_requests \
  rmr_leg_request_duration_seconds rmr_leg_state rmr_pool_generation; do
  grep -qx "$f" <(families "$tmpdir/c.0") && ok "plugin family $f" ||
    not_ok "plugin family $f"
done

# --- after IO ---------------------------------------------------------------

# 16 writes of 64K and 8 reads of 32K, then a flush.
nbdsh -u "$uri" -c "
for i in range(16):
    h.pwrite(bytes([i + 1]) * $chunk, i * $chunk)
for i in range(8):
    h.pread(32768, i * 32768)
h.flush()
"
scrape "$url1" "$tmpdir/n1.1"
scrape "$url2" "$tmpdir/n2.1"
scrape "$urlc" "$tmpdir/c.1"
# delta FILE0 FILE1 SERIES
delta ()
{
  echo $(($(value "$2" "$3") - $(value "$1" "$3")))
}
for m in 41 42; do
  L="{pool=\"p\",member=\"$m\"}"
  is "$(delta "$tmpdir/c.0" "$tmpdir/c.1" "rmr_leg_writes_total$L")" 16 \
    "leg $m: 16 writes"
  is "$(delta "$tmpdir/c.0" "$tmpdir/c.1" "rmr_leg_written_bytes_total$L")" \
    $((16 * chunk)) "leg $m: the bytes written"
  is "$(delta "$tmpdir/c.0" "$tmpdir/c.1" \
    "rmr_leg_request_duration_seconds_count{pool=\"p\",member=\"$m\",op=\"write\"}")" \
    16 "leg $m: 16 write latencies"
  is "$(value "$tmpdir/c.1" "rmr_leg_errors_total$L")" 0 "leg $m: no error"
  is "$(value "$tmpdir/c.1" "rmr_leg_inflight_requests$L")" 0 \
    "leg $m: nothing in flight"
done
for i in 1 2; do
  m=$((40 + i))
  L="{pool=\"p\",member=\"$m\"}"
  is "$(delta "$tmpdir/n$i.0" "$tmpdir/n$i.1" "rmr_member_writes_total$L")" 16 \
    "member $m: 16 writes"
  is "$(delta "$tmpdir/n$i.0" "$tmpdir/n$i.1" \
    "rmr_member_written_bytes_total$L")" $((16 * chunk)) \
    "member $m: the bytes written"
  is "$(delta "$tmpdir/n$i.0" "$tmpdir/n$i.1" \
    "rmr_member_request_duration_seconds_count{pool=\"p\",member=\"$m\",op=\"flush\"}")" \
    1 "member $m: one flush"
done
reads=0 rbytes=0 sreads=0
for i in 1 2; do
  L="{pool=\"p\",member=\"$((40 + i))\"}"
  reads=$((reads + $(delta "$tmpdir/c.0" "$tmpdir/c.1" "rmr_leg_reads_total$L")))
  rbytes=$((rbytes + $(delta "$tmpdir/c.0" "$tmpdir/c.1" "rmr_leg_read_bytes_total$L")))
  sreads=$((sreads + $(delta "$tmpdir/n$i.0" "$tmpdir/n$i.1" "rmr_member_read_bytes_total$L")))
done
is "$reads" 8 "the legs served 8 reads"
is "$rbytes" $((8 * 32768)) "the legs read the bytes asked"
is "$sreads" $((8 * 32768)) "the members served the bytes asked"

# --- during a resync --------------------------------------------------------

node_kill 2 KILL
nbdsh -u "$uri" -c "
for c in range(64):
    h.pwrite(bytes([c + 1]) * 4096, c * 2 * $chunk)
h.flush()
"
scrape "$urlc" "$tmpdir/c.2"
is "$(value "$tmpdir/c.2" "rmr_leg_state{pool=\"p\",member=\"42\",state=\"failed\"}")" \
  1 "leg 42 is failed"
is "$(delta "$tmpdir/c.1" "$tmpdir/c.2" "rmr_leg_failures_total$L42")" 1 \
  "leg 42 failed once"
scrape "$url1" "$tmpdir/n1.2"
is "$(value "$tmpdir/n1.2" "rmr_dirty_chunks$L42")" 64 \
  "node 1 records 64 chunks dirty for member 42"

# Back, with the resync held and then paced, so it can be watched.
NODE_ARGS="--metrics tcp:[::1]:$mport2" node_start 2 p 64M \
  "$(printf 'sync_start=manual\nsync_rate=512K')"
wait_leg_normal e 2 20
_dirty_here ()
{
  scrape "$url2" "$tmpdir/n2.3" &&
    [[ "$(value "$tmpdir/n2.3" "rmr_dirty_chunks$L42")" -gt 0 ]]
}
_wait_until 20 _dirty_here && ok "node 2 has its dirty chunks (handed over)" ||
  not_ok "node 2 has its dirty chunks (handed over)"
is "$(value "$tmpdir/n2.3" "rmr_member_data_state{pool=\"p\",member=\"42\",state=\"inconsistent\"}")" \
  1 "member 42 is inconsistent on node 2"
rmradm_n 2 set rmr-server/pools/p/sync start
_moving ()
{
  local d t
  scrape "$url2" "$tmpdir/n2.4" || return 1
  d=$(value "$tmpdir/n2.4" "rmr_resync_done_chunks$L42")
  t=$(value "$tmpdir/n2.4" "rmr_resync_total_chunks$L42")
  [[ $d -gt 0 && $d -lt $t ]]
}
if _wait_until 20 _moving; then
  ok "the resync's progress moves ($(value "$tmpdir/n2.4" "rmr_resync_done_chunks$L42")/$(value "$tmpdir/n2.4" "rmr_resync_total_chunks$L42"))"
  is "$(value "$tmpdir/n2.4" "rmr_resync_state{pool=\"p\",member=\"42\",state=\"running\"}")" \
    1 "the resync runs"
  rate=$(value "$tmpdir/n2.4" "rmr_resync_rate_bytes_per_second$L42")
  [[ $rate -gt 0 ]] && ok "the resync has a rate ($rate bytes/s)" ||
    not_ok "the resync has a rate ($rate)"
else
  not_ok "the resync's progress moves"
fi
wait_in_sync 2 60 && ok "node 2 resynced" || not_ok "node 2 resynced"
scrape "$url2" "$tmpdir/n2.5"
scrape "$url1" "$tmpdir/n1.5"
is "$(value "$tmpdir/n2.5" "rmr_dirty_chunks$L42")" 0 "node 2: dirty 0"
is "$(value "$tmpdir/n1.5" "rmr_dirty_chunks$L42")" 0 "node 1: dirty 0"
is "$(value "$tmpdir/n2.5" "rmr_resync_chunks_total$L42")" 64 \
  "node 2 fetched 64 chunks"
is "$(value "$tmpdir/n2.5" "rmr_resync_bytes_total$L42")" $((64 * chunk)) \
  "node 2 fetched 64 chunks' bytes"
_up_to_date ()
{
  scrape "$url2" "$tmpdir/n2.6" &&
    [[ "$(value "$tmpdir/n2.6" "rmr_member_data_state{pool=\"p\",member=\"42\",state=\"up-to-date\"}")" == 1 ]]
}
_wait_until 20 _up_to_date && ok "member 42 turns up to date on node 2" ||
  not_ok "member 42 turns up to date on node 2"
is "$(value "$tmpdir/n2.5" "rmr_resync_state{pool=\"p\",member=\"42\",state=\"idle\"}")" \
  1 "the resync is idle"

# --- errors -----------------------------------------------------------------

# Node 1's store fails the next write: the leg, the member and the store
# count it.
rmradm_n 1 set brmr-server/stores/p/fault op=write count=1
nbdsh -u "$uri" -c "h.pwrite(b'x' * 4096, 0)"
scrape "$urlc" "$tmpdir/c.7"
scrape "$url1" "$tmpdir/n1.7"
is "$(delta "$tmpdir/c.2" "$tmpdir/c.7" "rmr_leg_errors_total$L41")" 1 \
  "leg 41 counted the failed write"
is "$(delta "$tmpdir/n1.5" "$tmpdir/n1.7" "rmr_member_errors_total$L41")" 1 \
  "member 41 counted the failed write"
is "$(value "$tmpdir/n1.7" \
  "rmr_store_io_errors_total{pool=\"p\",member=\"41\",device=\"${NODE_STORE[1]}\"}")" \
  1 "node 1's store counted the failed write"

# --- bad values -------------------------------------------------------------

# one_line_error OUT FIELD: one line on stderr, naming the field.
one_line_error ()
{
  [[ $(wc -l <"$1") -eq 1 ]] && grep -q "$2" "$1"
}
rc=0
"$RMR_STORAGED" --foreground --control "$tmpdir/bad.sock" \
  --metrics udp:127.0.0.1:1 2>"$tmpdir/bad1.err" || rc=$?
diag "$(cat "$tmpdir/bad1.err")"
[[ $rc -ne 0 ]] && ok "--metrics udp:...: refused" || not_ok "--metrics udp:...: refused"
ok "--metrics: one line naming metrics" one_line_error "$tmpdir/bad1.err" metrics
[[ ! -e "$tmpdir/bad.sock" ]] && ok "nothing started" || not_ok "nothing started"
printf '[storaged]\ncontrol=%s\nmetrics=tcp:127.0.0.1\n' "$tmpdir/bad.sock" \
  >"$tmpdir/bad.conf"
rc=0
"$RMR_STORAGED" --foreground --config "$tmpdir/bad.conf" \
  2>"$tmpdir/bad2.err" || rc=$?
diag "$(cat "$tmpdir/bad2.err")"
[[ $rc -ne 0 ]] && ok "[storaged] metrics=tcp:127.0.0.1: refused" ||
  not_ok "[storaged] metrics=tcp:127.0.0.1: refused"
ok "[storaged] metrics: one line naming it" one_line_error "$tmpdir/bad2.err" \
  '\[storaged\]: metrics'
rc=0
nbdkit -f -U "$tmpdir/bad.nbd" "$RMR_PLUGIN" pool=p "server=$(node_url 1)" \
  metrics=bogus 2>"$tmpdir/bad3.err" || rc=$?
diag "$(cat "$tmpdir/bad3.err")"
[[ $rc -ne 0 ]] && ok "plugin metrics=bogus: refused" ||
  not_ok "plugin metrics=bogus: refused"
ok "plugin metrics=: one line naming it" one_line_error "$tmpdir/bad3.err" \
  'metrics'
# The config file's key serves the same endpoint.
mport3=$(free_port)
printf '[storaged]\ncontrol=%s\nmetrics=tcp:127.0.0.1:%s\n' \
  "$tmpdir/good.sock" "$mport3" >"$tmpdir/good.conf"
start_bg "$tmpdir/good.pid" "$RMR_STORAGED" --foreground \
  --config "$tmpdir/good.conf"
good_pid=$BG_PID
wait_for_socket "$tmpdir/good.sock" 10
is "$(curl -sS -o /dev/null -w '%{http_code}' \
  "http://127.0.0.1:$mport3/metrics")" 200 \
  "[storaged] metrics= serves /metrics"
kill_pid "$good_pid"

# A port in use (node 1's) is refused at start, naming the field.
rc=0
"$RMR_STORAGED" --foreground --control "$tmpdir/bad.sock" \
  --metrics "tcp:127.0.0.1:$mport1" 2>"$tmpdir/bad4.err" || rc=$?
diag "$(cat "$tmpdir/bad4.err")"
[[ $rc -ne 0 ]] && grep -q "metrics.*in use" "$tmpdir/bad4.err" &&
  ok "a port in use: refused, naming metrics" ||
  not_ok "a port in use: refused, naming metrics"
[[ ! -e "$tmpdir/bad.sock" ]] && ok "nothing started" || not_ok "nothing started"

# --- who may scrape -----------------------------------------------------------

# A self-signed certificate for 127.0.0.1, a key of another one, and an
# auth file; a daemon serving HTTPS with basic authentication.
requires certtool --version
certtool --generate-privkey --key-type=ecdsa --outfile "$tmpdir/m.key" \
  >/dev/null 2>&1
certtool --generate-privkey --key-type=ecdsa --outfile "$tmpdir/other.key" \
  >/dev/null 2>&1
printf 'cn = "127.0.0.1"\nip_address = "127.0.0.1"\nexpiration_days = 2\n%s\n' \
  'tls_www_server' >"$tmpdir/m.tmpl"
certtool --generate-self-signed --load-privkey "$tmpdir/m.key" \
  --template "$tmpdir/m.tmpl" --outfile "$tmpdir/m.crt" >/dev/null 2>&1
printf '# scrapers\nprom:s3cret\n' >"$tmpdir/m.auth"
mport4=$(free_port)
cat >"$tmpdir/sec.conf" <<EOF
[storaged]
control=$tmpdir/sec.sock
metrics=tcp:127.0.0.1:$mport4
metrics_tls_cert=$tmpdir/m.crt
metrics_tls_key=$tmpdir/m.key
metrics_auth=$tmpdir/m.auth

[pool s]
member_id=1
store=$tmpdir/sec.img
mapped_size=16M
EOF
start_bg "$tmpdir/sec.pid" "$RMR_STORAGED" --foreground \
  --config "$tmpdir/sec.conf" 2>"$tmpdir/sec.err"
sec_pid=$BG_PID
wait_for_socket "$tmpdir/sec.sock" 10
urls=https://127.0.0.1:$mport4/metrics
# code [CURL-ARGS...]: the HTTP status of a scrape of urls ("000": none).
code ()
{
  curl -sS --max-time 10 -o "$tmpdir/sec.out" -w '%{http_code}' \
    --cacert "$tmpdir/m.crt" "$@" "$urls" 2>/dev/null || true
}
is "$(code -u prom:s3cret)" 200 "HTTPS with the password: 200"
grep -q '^rmr_pool_state{pool="s"' "$tmpdir/sec.out" &&
  ok "and the metrics" || not_ok "and the metrics"
is "$(code -u prom:s3crex)" 401 "a wrong password: 401"
grep -q rmr_ "$tmpdir/sec.out" && not_ok "and no metrics" || ok "and no metrics"
is "$(code)" 401 "no password: 401"
is "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -u prom:s3cret \
  "http://127.0.0.1:$mport4/metrics" 2>/dev/null || true)" 000 \
  "plain HTTP to the HTTPS port: no answer"

# SIGHUP reads the files again: a renewed certificate (a new key) and a
# rotated password serve at once, on the same port; a broken auth file
# is refused, naming it, and the access before goes on.
cp "$tmpdir/m.crt" "$tmpdir/old.crt"
certtool --generate-privkey --key-type=ecdsa --outfile "$tmpdir/m.key" \
  >/dev/null 2>&1
certtool --generate-self-signed --load-privkey "$tmpdir/m.key" \
  --template "$tmpdir/m.tmpl" --outfile "$tmpdir/m.crt" >/dev/null 2>&1
printf 'prom:n3w\n' >"$tmpdir/m.auth"
kill -HUP "$sec_pid"
_wait_until 10 grep -q "metrics: serving with the access files as they are" \
  "$tmpdir/sec.err" && ok "SIGHUP: the new access files are served" ||
  not_ok "SIGHUP: the new access files are served"
is "$(code -u prom:n3w)" 200 "the new certificate and password: 200"
is "$(code -u prom:s3cret)" 401 "the old password: 401"
is "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
  --cacert "$tmpdir/old.crt" -u prom:n3w "$urls" 2>/dev/null || true)" 000 \
  "the old certificate is served no more"
printf 'nocolon\n' >"$tmpdir/m.auth"
kill -HUP "$sec_pid"
_wait_until 10 grep -q \
  "metrics_auth: '$tmpdir/m.auth' line 1: expected USER:PASSWORD; /metrics goes on as it was" \
  "$tmpdir/sec.err" && ok "SIGHUP with a broken auth file: refused, naming it" ||
  { not_ok "SIGHUP with a broken auth file: refused, naming it"
    diag "$(tail -3 "$tmpdir/sec.err")"; }
grep -q "line 1: expected USER:PASSWORD (the next start would fail on it)" \
  "$tmpdir/sec.err" &&
  ok "the config's reload warns that the next start would fail on it" ||
  not_ok "the config's reload warns that the next start would fail on it"
grep -q "SIGHUP: config refused" "$tmpdir/sec.err" &&
  not_ok "and is not refused for it" || ok "and is not refused for it"
is "$(code -u prom:n3w)" 200 "and the access before goes on"
kill_pid "$sec_pid"
printf '# scrapers\nprom:s3cret\n' >"$tmpdir/m.auth"

# The plugin: basic authentication over HTTP.
mport5=$(free_port)
start_bg "$tmpdir/nbdsec.pid" nbdkit -f -U "$tmpdir/sec.nbd" "$RMR_PLUGIN" \
  "control=$tmpdir/secc.sock" "metrics=tcp:127.0.0.1:$mport5" \
  "metrics-auth=$tmpdir/m.auth"
nbdsec_pid=$BG_PID
wait_for_port 127.0.0.1 "$mport5" 10
is "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -u prom:s3cret \
  "http://127.0.0.1:$mport5/metrics")" 200 "plugin metrics-auth: 200 with it"
is "$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' \
  "http://127.0.0.1:$mport5/metrics")" 401 "and 401 without"
kill_pid "$nbdsec_pid"

# A port beyond loopback without an auth file is warned about; with one
# it is not (in a namespace of its own: 0.0.0.0 there reaches nothing).
requires ip -V
netns_add w
for auth in "" "$tmpdir/m.auth"; do
  start_bg "$tmpdir/w.pid" ip netns exec "$(netns_name w)" "$RMR_STORAGED" \
    --foreground --control "$tmpdir/w.sock" --metrics tcp:0.0.0.0:9750 \
    ${auth:+--metrics-auth "$auth"} 2>"$tmpdir/w.err"
  wait_for_socket "$tmpdir/w.sock" 10
  kill_pid "$BG_PID"
  if [[ -z "$auth" ]]; then
    grep -q "metrics: 'tcp:0.0.0.0:9750' without authentication" \
      "$tmpdir/w.err" && ok "0.0.0.0 without an auth file: warned" ||
      not_ok "0.0.0.0 without an auth file: warned"
  else
    grep -q "without authentication" "$tmpdir/w.err" &&
      not_ok "0.0.0.0 with an auth file: no warning" ||
      ok "0.0.0.0 with an auth file: no warning"
  fi
done

# Bad settings: one line naming the setting, and nothing starts.
# refused_conf DESC PATTERN KEY=VALUE...: a daemon with metrics= and
# these [storaged] keys does not start.
refused_conf ()
{
  local desc=$1 pat=$2 rc=0
  shift 2
  printf '[storaged]\ncontrol=%s\nmetrics=tcp:127.0.0.1:%s\n' \
    "$tmpdir/bad.sock" "$(free_port)" >"$tmpdir/badm.conf"
  printf '%s\n' "$@" >>"$tmpdir/badm.conf"
  "$RMR_STORAGED" --foreground --config "$tmpdir/badm.conf" \
    2>"$tmpdir/badm.err" || rc=$?
  if [[ $rc -ne 0 ]] && one_line_error "$tmpdir/badm.err" "$pat" &&
    [[ ! -e "$tmpdir/bad.sock" ]]; then
    ok "$desc"
  else
    not_ok "$desc"
    diag "status $rc: $(cat "$tmpdir/badm.err")"
  fi
}
printf 'prom:s3cret\nnocolon\n' >"$tmpdir/bad.auth"
refused_conf "metrics_auth: a missing file refused" \
  "metrics_auth: '$tmpdir/none': No such file" "metrics_auth=$tmpdir/none"
refused_conf "metrics_auth: a line without its colon refused" \
  "metrics_auth: .* line 2: expected USER:PASSWORD" \
  "metrics_auth=$tmpdir/bad.auth"
refused_conf "metrics_tls_cert without its key refused" \
  "metrics_tls_key: needed with metrics_tls_cert" \
  "metrics_tls_cert=$tmpdir/m.crt"
refused_conf "metrics_tls_key of another certificate refused" \
  "metrics_tls_cert .*, metrics_tls_key .*other.key" \
  "metrics_tls_cert=$tmpdir/m.crt" "metrics_tls_key=$tmpdir/other.key"
rc=0
"$RMR_STORAGED" --foreground --control "$tmpdir/bad.sock" \
  --metrics-auth "$tmpdir/m.auth" 2>"$tmpdir/badm.err" || rc=$?
[[ $rc -ne 0 ]] && one_line_error "$tmpdir/badm.err" "metrics-auth: needs --metrics" &&
  ok "--metrics-auth without --metrics refused" ||
  not_ok "--metrics-auth without --metrics refused"
rc=0
nbdkit -f -U "$tmpdir/bad.nbd" "$RMR_PLUGIN" pool=p "server=$(node_url 1)" \
  "metrics-auth=$tmpdir/bad.auth" "metrics=tcp:127.0.0.1:$(free_port)" \
  2>"$tmpdir/bad5.err" || rc=$?
[[ $rc -ne 0 ]] && grep -q "metrics-auth: .* line 2" "$tmpdir/bad5.err" &&
  ok "plugin metrics-auth with a bad line refused, naming it" ||
  not_ok "plugin metrics-auth with a bad line refused, naming it"
diag "$(cat "$tmpdir/bad5.err")"

kill_pid "$NBDKIT_PID"
done_testing
