#!/usr/bin/env bash
# Reference points for the gateway benchmark, on this machine and in one run:
#   direct       wrk -> upstream (nginx, return 200)
#   nginx-proxy  wrk -> nginx reverse proxy (body limit, CIDR allow/deny, limit_req) -> upstream
#   haproxy-full wrk -> HAProxy (body limit, CIDR acl, stick-table rate, HMAC-SHA256 of the body) -> upstream,
#                tuned as an expert would: buffers that hold the largest allowed body (so the HMAC covers
#                all of it) and glibc malloc tunables that stop those buffers from being trimmed per request
# Usage: anchors.sh [duration_s] [connections]   (HAPROXY_THREADS, NGINX_WORKERS: default 1)
# Prints CSV: anchor,connections,rps,p50,p99,cpu_us_per_req (the tier's own CPU per request,
# children included). Uses ports 18080-18082 on 127.0.0.1.
# Needs the Debian packages nginx, haproxy and wrk (and python3, openssl).
#
# hookguard copy: from the shared reference anchors (shared/bench/anchors.sh), kept here so the
# repository is self-contained; bench/run.sh runs it next to hookguard in the same invocation.
# Changes: set -euo pipefail and shellcheck fixes; ANCHORS selects anchors (default all three);
# each line also gives the whole machine's CPU per request and how busy the machine was.
# The body is the one bench/run.sh sends to hookguard (same generator, same 1 KiB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
D=${1:-10}; C=${2:-64}
run=$(mktemp -d /tmp/anchors.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$run"; }
trap cleanup EXIT
mkdir -p "$run"/{up,px}/logs
cat > "$run/up/nginx.conf" <<CONF
daemon off; worker_processes 1; pid $run/up/nginx.pid; error_log $run/up/logs/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $run/up; proxy_temp_path $run/up; fastcgi_temp_path $run/up; uwsgi_temp_path $run/up; scgi_temp_path $run/up;
  server { listen 127.0.0.1:18080; location / { client_max_body_size 10m; client_body_buffer_size 64k; return 200 '{"ok":true}'; } } }
CONF
cat > "$run/px/nginx.conf" <<CONF
daemon off; worker_processes ${NGINX_WORKERS:-1}; pid $run/px/nginx.pid; error_log $run/px/logs/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $run/px; proxy_temp_path $run/px; fastcgi_temp_path $run/px; uwsgi_temp_path $run/px; scgi_temp_path $run/px;
  limit_req_zone \$binary_remote_addr zone=hooks:10m rate=1000000r/s;
  upstream up { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18081;
    location /webhooks/ { client_max_body_size 1m; client_body_buffer_size 64k;
      allow 127.0.0.0/8; allow 10.0.0.0/8; allow 192.30.252.0/22; deny all;
      limit_req zone=hooks burst=100000 nodelay;
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://up; } } }
CONF
KEY=bench-secret
cat > "$run/haproxy.cfg" <<CONF
global
  nbthread ${HAPROXY_THREADS:-1}
  maxconn 4096
  tune.bufsize 1114112
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
frontend fe
  bind 127.0.0.1:18082
  option http-buffer-request
  option forwardfor
  stick-table type ip size 100k expire 10s store http_req_rate(1s)
  acl allowed_src src 127.0.0.0/8 10.0.0.0/8 192.30.252.0/22
  http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }
  http-request deny deny_status 413 if { req.body_size gt 1048576 }
  http-request deny deny_status 403 unless allowed_src
  http-request track-sc0 src
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100000000 }
  http-request set-var(txn.mac) req.body,hmac(sha256,$(printf %s $KEY | base64 -w0)),hex,lower
  http-request set-var(txn.expected) str(sha256=),concat(,txn.mac,)
  http-request set-var(txn.sig) req.hdr(X-Hub-Signature-256)
  acl sig_ok var(txn.sig),strcmp(txn.expected) eq 0
  http-request deny deny_status 401 unless sig_ok
  default_backend be
backend be
  http-reuse always
  server up 127.0.0.1:18080
CONF
nginx -c "$run/up/nginx.conf" -p "$run/up" & pids+=($!)
nginx -c "$run/px/nginx.conf" -p "$run/px" & pids+=($!)
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456 haproxy -f "$run/haproxy.cfg" & pids+=($!)
sleep 0.5
export BODY_FILE="$run/body.json"
python3 -c 'import sys; sys.stdout.write("{\"event_type\":\"push\",\"ref\":\"refs/heads/main\",\"pad\":\"" + "x"*(1024-60) + "\"}")' > "$BODY_FILE"
SIG="sha256=$(openssl dgst -sha256 -hmac "$KEY" -r < "$BODY_FILE" | cut -d" " -f1)"
export SIG
echo "anchor,connections,rps,p50,p99,cpu_us_per_req,machine_cpu_us_per_req,machine_busy_pct"
# CPU seconds (utime+stime) of a process and its children, in clock ticks: the tier's own cost,
# without wrk's or the upstream's.
ticks() { local t=0 p; for p in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do
  t=$(( t + $(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0) )); done; echo $t; }
# Busy and total ticks of the whole machine (/proc/stat): the tier, wrk and the upstream together.
machine_ticks() {
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat
}
w() { # name url pid
  local t0 m0 m1; t0=$(ticks "$3"); read -r -a m0 < <(machine_ticks)
  out=$(wrk -t2 -c"$C" -d"${D}s" --latency -s "$here/post.lua" "$2" 2>&1) || true
  local t1; read -r -a m1 < <(machine_ticks); t1=$(ticks "$3")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}'); p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errors=$(echo "$out" | awk '/Socket errors/ {print $0}' | tr -d ',' | sed 's/^ *//')
  per_req() { python3 -c "print(round($1 / $(getconf CLK_TCK) * 1e6 / max(1, ${n:-0}), 1))"; }
  cpu=$(per_req $((t1 - t0))); mcpu=$(per_req $((m1[0] - m0[0])))
  busy=$((100 * (m1[0] - m0[0]) / (m1[1] - m0[1])))
  echo "$1,$C,$rps,$p50,$p99,$cpu,$mcpu,$busy${non2xx:+,non2xx=$non2xx}${errors:+,$errors}"
}
for a in ${ANCHORS:-direct nginx-proxy haproxy-full}; do
  case "$a" in
    direct) w direct http://127.0.0.1:18080/webhooks/x "${pids[0]}" ;;
    nginx-proxy) w nginx-proxy http://127.0.0.1:18081/webhooks/x "${pids[1]}" ;;
    haproxy-full) w haproxy-full http://127.0.0.1:18082/webhooks/x "${pids[2]}" ;;
    *) echo "anchors.sh: unknown anchor $a" >&2; exit 2 ;;
  esac
done
