#!/usr/bin/env bash
# Runs hookguard with a working demo trigger: installs missing Debian packages, starts
# PostgreSQL and Redis on loopback, builds, generates a master key (once), starts a demo
# upstream on 127.0.0.1:9000, applies deploy/local/demo-triggers.yaml, prints two curl commands
# (one signed, one not) and serves in the foreground until Ctrl-C.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${HOOKGUARD_BUILD_DIR:-$repo/build}"
local_dir="${HOOKGUARD_LOCAL_DIR:-$repo/var/local}"
ingress_port="${HOOKGUARD_DEMO_PORT:-8080}"
admin_port="${HOOKGUARD_DEMO_ADMIN_PORT:-8081}"
upstream_port="${HOOKGUARD_DEMO_UPSTREAM_PORT:-9000}"

"$repo/deploy/local/install-deps.sh"
"$repo/deploy/local/start-services.sh"
"$repo/deploy/local/build.sh" --target hookguard
# shellcheck disable=SC1091
source "$local_dir/env"
hookguard="$build/gateway/hookguard"

umask 077
[[ -s "$local_dir/master.key" ]] || "$hookguard" gen-key > "$local_dir/master.key"
[[ -s "$local_dir/demo.secret" ]] || "$hookguard" gen-key | tr -d '/+=' > "$local_dir/demo.secret"
[[ -s "$local_dir/admin.token" ]] || "$hookguard" gen-key | tr -d '/+=' > "$local_dir/admin.token"
umask 022
export DEMO_WEBHOOK_SECRET="$(cat "$local_dir/demo.secret")"
export HOOKGUARD_ADMIN_TOKEN="$(cat "$local_dir/admin.token")"
export DEMO_UPSTREAM_PORT="$upstream_port"

cat > "$local_dir/gateway.yaml" <<YAML
ingress: {address: 127.0.0.1, port: $ingress_port}
admin: {address: 127.0.0.1, port: $admin_port}
secrets: {master_key_file: $local_dir/master.key}
audit: {spool_dir: $local_dir/spool}
YAML

python3 "$repo/deploy/local/demo-upstream.py" --port "$upstream_port" > "$local_dir/demo-upstream.log" 2>&1 &
upstream_pid=$!
trap 'kill $upstream_pid 2>/dev/null || true' EXIT

"$hookguard" migrate --config "$local_dir/gateway.yaml" >/dev/null
sed "s/@UPSTREAM_PORT@/$upstream_port/" "$repo/deploy/local/demo-triggers.yaml" > "$local_dir/demo-triggers.yaml"
key=$("$hookguard" apply -f "$local_dir/demo-triggers.yaml" --config "$local_dir/gateway.yaml" \
        --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["key"])')

body='{"event":"demo","n":1}'
sig=$(printf %s "$body" | "$hookguard" sign --scheme github --secret "$DEMO_WEBHOOK_SECRET")
url="http://127.0.0.1:$ingress_port/webhooks/$key"
cat <<EOT

hookguard demo: trigger "demo-github" (key $key) forwards to the demo upstream on :$upstream_port.
Paste in another shell:

  # signed: the upstream's 200
  curl -i -X POST '$url' -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \\
       -H '$sig' --data '$body'

  # unsigned: 401 signature_missing
  curl -i -X POST '$url' -H 'Content-Type: application/json' --data '$body'

  # what was logged
  psql "$HOOKGUARD_POSTGRES_DSN" -c 'SELECT created, outcome, status_code, hmac_verified FROM webhook_event_log ORDER BY created DESC LIMIT 5'

Metrics: http://127.0.0.1:$admin_port/metrics   Readiness: http://127.0.0.1:$admin_port/readyz
Ctrl-C stops the gateway (services keep running; deploy/local/stop-services.sh stops them).

EOT
"$hookguard" serve --config "$local_dir/gateway.yaml" --no-migrate
