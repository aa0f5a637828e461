# shellcheck shell=bash
# Shared by the deploy/local scripts: options, paths and the user PostgreSQL runs as.
# Sourced, not executed. Sets LOCAL_DIR, PG_PORT, REDIS_PORT, ONLY, PG_BIN, PG_USER, PG_DATA,
# REDIS_DIR and defines as_pg_user, pg_running, redis_running, log, die.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { echo "[hookguard-local] $*"; }
die() {
  echo "[hookguard-local] ERROR: $*" >&2
  exit 1
}

LOCAL_DIR="${HOOKGUARD_LOCAL_DIR:-$REPO_ROOT/var/local}"
PG_PORT="${HOOKGUARD_PG_PORT:-}"
REDIS_PORT="${HOOKGUARD_REDIS_PORT:-}"
ONLY=""  # empty: both services; "pg" or "redis": just that one

parse_common_args() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --dir) LOCAL_DIR="${2:?--dir needs a value}"; shift 2 ;;
      --dir=*) LOCAL_DIR="${1#*=}"; shift ;;
      --pg-port) PG_PORT="${2:?--pg-port needs a value}"; shift 2 ;;
      --pg-port=*) PG_PORT="${1#*=}"; shift ;;
      --redis-port) REDIS_PORT="${2:?--redis-port needs a value}"; shift 2 ;;
      --redis-port=*) REDIS_PORT="${1#*=}"; shift ;;
      --only) ONLY="${2:?--only needs pg or redis}"; shift 2 ;;
      --only=*) ONLY="${1#*=}"; shift ;;
      -h | --help)
        echo "usage: $(basename "$0") [--dir DIR] [--pg-port N] [--redis-port N] [--only pg|redis]"
        exit 0
        ;;
      *) die "unknown argument: $1" ;;
    esac
  done
  mkdir -p "$LOCAL_DIR"
  LOCAL_DIR="$(cd "$LOCAL_DIR" && pwd)"
  REDIS_DIR="$LOCAL_DIR/redis"
  # Ports not given: those of the last start in this dir, so restarts keep them; else defaults.
  if [[ -f "$LOCAL_DIR/env" ]]; then
    [[ -n "$PG_PORT" ]] || PG_PORT="$(sed -n 's/^export HOOKGUARD_PG_PORT=//p' "$LOCAL_DIR/env")"
    [[ -n "$REDIS_PORT" ]] ||
      REDIS_PORT="$(sed -n 's/^export HOOKGUARD_REDIS_PORT=//p' "$LOCAL_DIR/env")"
  fi
  PG_PORT="${PG_PORT:-55432}"
  REDIS_PORT="${REDIS_PORT:-56379}"
  [[ "$PG_PORT" =~ ^[0-9]+$ ]] || die "--pg-port: not a number: $PG_PORT"
  [[ "$REDIS_PORT" =~ ^[0-9]+$ ]] || die "--redis-port: not a number: $REDIS_PORT"
  [[ -z "$ONLY" || "$ONLY" == pg || "$ONLY" == redis ]] || die "--only: pg or redis, not $ONLY"
}

want() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }

# The newest installed PostgreSQL major version.
find_pg_bin() {
  local dir
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [[ -n "$dir" && -x "$dir/initdb" ]] ||
    die "no PostgreSQL server found under /usr/lib/postgresql (run deploy/local/install-deps.sh)"
  PG_BIN="$dir"
}

# PostgreSQL refuses to run as root, so root runs it as an unprivileged system user.
choose_pg_user() {
  if [[ $(id -u) -ne 0 ]]; then
    PG_USER="$(id -un)"
  elif id -u postgres >/dev/null 2>&1; then
    PG_USER=postgres
  else
    if ! id -u hookguard >/dev/null 2>&1; then
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hookguard
      log "created system user hookguard to run PostgreSQL"
    fi
    PG_USER=hookguard
  fi
}

# Runs a command as PG_USER from /, since the caller's cwd may be unreadable for that user.
as_pg_user() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u "$PG_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

# The data dir lives under LOCAL_DIR unless PG_USER cannot reach it there (e.g. a repo under
# /root); then under /var/tmp, keyed by LOCAL_DIR. The choice is remembered in LOCAL_DIR.
resolve_pg_data() {
  local marker="$LOCAL_DIR/pg-data.path"
  if [[ -f "$marker" ]]; then
    PG_DATA="$(cat "$marker")"
    return
  fi
  PG_DATA="$LOCAL_DIR/pg"
  if [[ $(id -u) -eq 0 ]]; then
    mkdir -p "$PG_DATA"
    chown "$PG_USER": "$PG_DATA"
    chmod 0700 "$PG_DATA"
    if ! as_pg_user test -w "$PG_DATA" -a -x "$PG_DATA"; then
      rmdir "$PG_DATA" 2>/dev/null || true
      local base
      base="/var/tmp/hookguard-pg-$(printf '%s' "$LOCAL_DIR" | sha256sum | cut -c1-12)"
      mkdir -p "$base"
      chmod 0755 "$base"
      PG_DATA="$base/data"
      log "user $PG_USER cannot reach $LOCAL_DIR; PostgreSQL data goes to $PG_DATA"
    fi
  fi
  echo "$PG_DATA" >"$marker"
}

pg_running() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

redis_pid() {
  local pidfile="$REDIS_DIR/redis.pid" pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Only a redis-server we started: a recycled pid of another program must not match.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'redis-server' || return 1
  echo "$pid"
}

redis_running() {
  redis_pid >/dev/null && [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}
