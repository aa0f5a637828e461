#!/usr/bin/env bash
# Stops the PostgreSQL and Redis that start-services.sh started in DIR (nothing else); a service
# that is already stopped is fine.
#
# usage: stop-services.sh [--dir DIR] [--only pg|redis]
set -euo pipefail
# shellcheck source=deploy/local/lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_common_args "$@"

exec 9>"$LOCAL_DIR/.lock"
flock -w 120 9 || die "another start/stop-services holds $LOCAL_DIR/.lock"

if want pg; then
  find_pg_bin
  choose_pg_user
  if [[ -f "$LOCAL_DIR/pg-data.path" ]]; then
    resolve_pg_data
    if pg_running; then
      as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null ||
        die "pg_ctl stop failed for $PG_DATA"
      log "PostgreSQL stopped ($PG_DATA)"
    else
      log "PostgreSQL was not running ($PG_DATA)"
    fi
  else
    log "no PostgreSQL cluster recorded in $LOCAL_DIR"
  fi
fi

if want redis; then
  if pid="$(redis_pid)"; then
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && die "Redis pid $pid did not exit within 30s"
    rm -f "$REDIS_DIR/redis.pid"
    log "Redis stopped (pid $pid)"
  else
    log "Redis was not running ($REDIS_DIR)"
  fi
fi
