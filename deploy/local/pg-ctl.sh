#!/usr/bin/env bash
# Stops, starts or restarts only the local PostgreSQL of deploy/local (for fault tests), running
# pg_ctl as the cluster's unprivileged user. Start waits until connections are accepted.
#
# usage: pg-ctl.sh stop|start|restart|status [--dir DIR]
set -euo pipefail
# shellcheck source=deploy/local/lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
action="${1:-}"
shift || true
parse_common_args "$@"
find_pg_bin
choose_pg_user
resolve_pg_data
[[ -f "$PG_DATA/PG_VERSION" ]] || die "no cluster in $PG_DATA: run start-services.sh first"

case "$action" in
  stop)
    if pg_running; then
      as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
      log "PostgreSQL stopped"
    else
      log "PostgreSQL was not running"
    fi
    ;;
  start | restart)
    [[ "$action" == restart ]] && pg_running &&
      as_pg_user "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    exec "$(dirname "${BASH_SOURCE[0]}")/start-services.sh" --dir "$LOCAL_DIR" --only pg
    ;;
  status)
    if pg_running; then echo running; else echo stopped; exit 3; fi
    ;;
  *) die "usage: pg-ctl.sh stop|start|restart|status [--dir DIR]" ;;
esac
