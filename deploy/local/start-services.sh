#!/usr/bin/env bash
# Starts (initialising on first use) a loopback-only PostgreSQL cluster and Redis for development,
# tests and CI, and writes DIR/env for the test suites. Idempotent: running services are kept.
#
# usage: start-services.sh [--dir DIR] [--pg-port N] [--redis-port N] [--only pg|redis]
# env:   HOOKGUARD_LOCAL_DIR (default <repo>/var/local), HOOKGUARD_PG_PORT (55432),
#        HOOKGUARD_REDIS_PORT (56379)
set -euo pipefail
# shellcheck source=deploy/local/lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_common_args "$@"

WAIT_SECONDS=30

# Two callers at once (parallel test runs, two shells) must not both run initdb. The daemons
# started below must not inherit fd 9, or they would hold the lock for their whole life.
exec 9>"$LOCAL_DIR/.lock"
flock -w 120 9 || die "another start/stop-services holds $LOCAL_DIR/.lock"

find_pg_bin
choose_pg_user
resolve_pg_data

start_postgres() {
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    mkdir -p "$PG_DATA"
    [[ $(id -u) -eq 0 ]] && chown "$PG_USER": "$PG_DATA"
    chmod 0700 "$PG_DATA"
    log "initdb $PG_DATA (PostgreSQL $(basename "$(dirname "$PG_BIN")"), runs as $PG_USER)"
    as_pg_user "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=trust >"$LOCAL_DIR/initdb.log" 2>&1 ||
      die "initdb failed; see $LOCAL_DIR/initdb.log"
    # Trust authentication is acceptable only because this cluster is a development/test cluster
    # that listens on loopback alone. Never copy this file to a real deployment.
    as_pg_user tee "$PG_DATA/pg_hba.conf" >/dev/null <<'HBA'
# hookguard local dev/test cluster ONLY: trust on loopback and the unix socket.
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
host    all   all   ::1/128       trust
HBA
    echo "include_if_exists = 'hookguard.conf'" | as_pg_user tee -a "$PG_DATA/postgresql.conf" \
      >/dev/null
  fi

  # Rewritten on every start so that --pg-port and the socket directory follow the arguments.
  local socket_dir="$PG_DATA"
  # sun_path holds 107 bytes; a deep checkout would overflow it, so fall back to TCP only.
  if [[ $((${#PG_DATA} + 20)) -gt 100 ]]; then socket_dir=""; fi
  as_pg_user tee "$PG_DATA/hookguard.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$socket_dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF

  if pg_running; then
    log "PostgreSQL already running ($PG_DATA)"
  else
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t "$WAIT_SECONDS" \
      start >/dev/null 9>&- || die "PostgreSQL did not start within ${WAIT_SECONDS}s; see $PG_DATA/server.log"
  fi

  local i
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.2
  done
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ||
    die "PostgreSQL ($PG_DATA) is running but 127.0.0.1:$PG_PORT does not accept connections" \
      "within ${WAIT_SECONDS}s (another port in $PG_DATA/hookguard.conf? stop-services.sh first)"

  # pg_signal_backend lets the test suites DROP DATABASE ... WITH (FORCE) their scratch databases
  # while an autovacuum worker is inside (dev/test cluster only, like the trust rules above).
  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
  "${psql[@]}" -d postgres <<'SQL'
SELECT 'CREATE ROLE hookguard LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hookguard')\gexec
SELECT 'CREATE DATABASE hookguard OWNER hookguard'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'hookguard')\gexec
SELECT 'GRANT pg_signal_backend TO hookguard'
 WHERE NOT pg_has_role('hookguard', 'pg_signal_backend', 'MEMBER')\gexec
SQL
  log "PostgreSQL ready: role and database hookguard exist"
}

start_redis() {
  mkdir -p "$REDIS_DIR"
  if redis_running; then
    log "Redis already running (pid $(redis_pid))"
    return
  fi
  if pid="$(redis_pid)"; then
    die "Redis pid $pid from $REDIS_DIR/redis.pid is alive but 127.0.0.1:$REDIS_PORT does not" \
      "answer PING (another port? stop-services.sh first)"
  fi
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  rm -f "$REDIS_DIR/redis.pid"
  # No persistence: the rate-limit counters are disposable and tests want a clean start.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --save '' --appendonly no --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" 9>&- ||
    die "redis-server failed to start; see $REDIS_DIR/redis.log"
  local i
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    redis_running && break
    sleep 0.2
  done
  redis_running || die "Redis did not answer PING on 127.0.0.1:$REDIS_PORT within ${WAIT_SECONDS}s;" \
    "see $REDIS_DIR/redis.log"
  log "Redis ready (pid $(redis_pid))"
}

want pg && start_postgres
want redis && start_redis

ENV_FILE="$LOCAL_DIR/env"
cat >"$ENV_FILE.tmp" <<ENV
# Written by deploy/local/start-services.sh; source it before running integration/e2e tests.
export HOOKGUARD_LOCAL_DIR=$LOCAL_DIR
export HOOKGUARD_POSTGRES_DSN=postgresql://hookguard@127.0.0.1:$PG_PORT/hookguard
export HOOKGUARD_REDIS_HOST=127.0.0.1
export HOOKGUARD_REDIS_PORT=$REDIS_PORT
export HOOKGUARD_PG_PORT=$PG_PORT
export HOOKGUARD_PG_BIN=$PG_BIN
export HOOKGUARD_PG_DATA=$PG_DATA
export HOOKGUARD_PG_USER=$PG_USER
# pg_ctl refuses to run as root; this wrapper runs it as HOOKGUARD_PG_USER: pg-ctl.sh stop|start
export HOOKGUARD_PG_CTL=$REPO_ROOT/deploy/local/pg-ctl.sh
ENV
mv "$ENV_FILE.tmp" "$ENV_FILE"
log "wrote $ENV_FILE (source it: . $ENV_FILE)"
