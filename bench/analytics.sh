#!/usr/bin/env bash
# Scale benchmark of the analytics schema (db/migrations/0003_analytics.sql, docs/analytics.md):
# loads ROWS (default 10 million) log rows spread over the last 30 days and 50 triggers into a
# dedicated database, runs the rollup, then times with EXPLAIN (ANALYZE, BUFFERS):
#   (a) stats for one trigger, last 24 h        target < 100 ms
#   (b) all triggers, all time (the view)       target < 1 s
#   (c) an events page by trigger and outcome, keyset-paginated 20 days deep   target < 50 ms
# Prints the load time (and the CPU time PostgreSQL spent on it), the plans, then one summary
# line per query: "RESULT <name> <ms> target <ms> ok|SLOW", and `uptime` before and after.
# Usage: source var/local/env; bench/analytics.sh [rows]   (KEEP_DB=1 keeps the database)
# Needs psql and the PostgreSQL of deploy/local (HOOKGUARD_POSTGRES_DSN).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ROWS=${1:-10000000}
: "${HOOKGUARD_POSTGRES_DSN:?source var/local/env first}"

db=hookguard_bench_analytics
base=${HOOKGUARD_POSTGRES_DSN%%\?*}
query=""
[[ $HOOKGUARD_POSTGRES_DSN == *\?* ]] && query="?${HOOKGUARD_POSTGRES_DSN#*\?}"
admin_dsn="${base%/*}/postgres${query}"
bench_dsn="${base%/*}/${db}${query}"

psql_admin() { psql "$admin_dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_bench() { psql "$bench_dsn" -v ON_ERROR_STOP=1 -qAt "$@"; }

cleanup() {
  if [[ ${KEEP_DB:-0} != 1 ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
# The migrations as db/migrator.cc applies them: in name order, each in one transaction.
for sql in "$root"/db/migrations/*.sql; do
  psql_bench -1 -f "$sql" >/dev/null
done
names=()
for sql in "$root"/db/migrations/*.sql; do names+=("$(basename "$sql")"); done
echo "schema: ${names[*]}"
# Other work on the machine skews every time below: say how busy it was, before and after.
echo "before: $(uptime)"

t=$(now_s)
psql_bench <<SQL
SET client_min_messages = warning;
INSERT INTO webhook_trigger (id, key, name, upstream_url)
SELECT g, 'wh_bench_' || g, 'bench ' || g, 'http://127.0.0.1:9/' FROM generate_series(1, 50) g;

CREATE TABLE bench_params AS
SELECT $ROWS::bigint AS n, now() AS t_end, now() - interval '30 days' AS t0,
       extract(epoch FROM interval '30 days') / $ROWS AS step;

-- Loads one UTC day into a plain table and attaches it as that day's partition; one call per
-- day, each committing on its own, so that two sessions load in parallel. What keeps it fast:
--  * rows are made from arithmetic on the row number: hashint8extended() stands in for
--    random() and gen_random_uuid() (a cryptographic random source, costly per row);
--    the same mix of outcomes, triggers and latencies, and reproducible;
--  * the partition's indexes (every index and unique constraint of the parent, read from the
--    catalog) are built after the insert, one sort each, before ATTACH: ATTACH then adopts them
--    instead of building under its lock on the parent, which would serialise the sessions;
--  * a CHECK constraint equal to the partition bound lets ATTACH skip its validating scan
--    (it is dropped again, so the partition ends up exactly as hookguard's own).
-- The result is an ordinary logged partition with the same rows, indexes and statistics as
-- the gateway would leave: what is measured afterwards does not depend on how it was loaded.
CREATE FUNCTION bench_load_day(d date) RETURNS bigint
LANGUAGE plpgsql AS \$\$
DECLARE
    p     bench_params%ROWTYPE;
    lo_ts timestamptz := d::timestamp AT TIME ZONE 'UTC';
    hi_ts timestamptz := (d + 1)::timestamp AT TIME ZONE 'UTC';
    i_lo  bigint;
    i_hi  bigint;
    part  text := 'webhook_event_log_' || to_char(d, 'YYYYMMDD');
    ddl   text;
BEGIN
    SELECT * INTO p FROM bench_params;
    i_lo := greatest(0, ceil(extract(epoch FROM lo_ts - p.t0) / p.step)::bigint);
    i_hi := least(p.n - 1, ceil(extract(epoch FROM hi_ts - p.t0) / p.step)::bigint - 1);
    IF to_regclass(part) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %I', part);  -- an empty one made by the migration
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE webhook_event_log INCLUDING DEFAULTS)', part);
    IF i_hi >= i_lo THEN
        EXECUTE format(\$q\$
            INSERT INTO %I (id, created, trigger_id, webhook_key, request_id, delivery_id,
                            event_type, source_ip, peer_ip, user_agent, method,
                            payload_size_bytes, outcome, status_code, hmac_verified,
                            rate_limited, ip_allowed, upstream_status, upstream_ms,
                            processing_time_ms)
            SELECT i + 1, %L::timestamptz + (i * %s) * interval '1 second', 1 + i %% 50,
                   'wh_bench_' || (1 + i %% 50),
                   (lpad(to_hex(hashint8extended(i, 1)), 16, '0') ||
                    lpad(to_hex(hashint8extended(i, 2)), 16, '0'))::uuid,
                   'dlv-' || (i / 2),
                   (ARRAY['push', 'pull_request', 'issues', 'release'])[1 + (i / 50) %% 4],
                   '10.0.0.0'::inet + (i * 7919) %% 65536, '127.0.0.1'::inet, 'bench/1.0',
                   'POST', 200 + (i %% 4000),
                   o.outcome, o.status, o.outcome NOT IN ('signature_invalid',
                                                          'signature_missing'),
                   o.outcome = 'rate_limited', o.outcome <> 'ip_denied',
                   CASE WHEN o.outcome = 'forwarded' THEN 200 END,
                   CASE WHEN o.outcome = 'forwarded' THEN o.ms - 1 END, o.ms
              FROM generate_series(%s::bigint, %s::bigint) AS i
             CROSS JOIN LATERAL (
                   SELECT CASE WHEN r < 0.880 THEN 'forwarded' WHEN r < 0.920 THEN 'rate_limited'
                               WHEN r < 0.945 THEN 'signature_invalid'
                               WHEN r < 0.955 THEN 'signature_missing'
                               WHEN r < 0.965 THEN 'ip_denied'
                               WHEN r < 0.975 THEN 'payload_too_large'
                               WHEN r < 0.990 THEN 'upstream_error'
                               ELSE 'upstream_timeout' END AS outcome,
                          CASE WHEN r < 0.880 THEN 200 WHEN r < 0.920 THEN 429
                               WHEN r < 0.955 THEN 401 WHEN r < 0.965 THEN 403
                               WHEN r < 0.975 THEN 413 WHEN r < 0.990 THEN 502
                               ELSE 504 END AS status,
                          -- forwarded: log-normal around 40 ms; rejections: 0-3 ms;
                          -- upstream errors: around 8 s (the upstream timeout).
                          CASE WHEN r < 0.880
                               THEN greatest(1, exp(3.7 + 1.2 * (q1 + q2 + q3 - 1.5)))::integer
                               WHEN r < 0.975 THEN floor(q1 * 4)::integer
                               ELSE 8000 + floor(q1 * 200)::integer END AS ms
                     -- Four uniform [0, 1) values: 20-bit slices of two 64-bit hashes of i.
                     FROM (SELECT (h1 & 1048575) / 1048576.0::float8 AS r,
                                  ((h1 >> 20) & 1048575) / 1048576.0::float8 AS q1,
                                  ((h1 >> 40) & 1048575) / 1048576.0::float8 AS q2,
                                  (h2 & 1048575) / 1048576.0::float8 AS q3
                             FROM (SELECT hashint8extended(i, 3) AS h1,
                                          hashint8extended(i, 4) AS h2) h) rnd) o
        \$q\$, part, p.t0, p.step, i_lo, i_hi);
    END IF;
    FOR ddl IN
        SELECT CASE WHEN c.oid IS NOT NULL
                    THEN format('ALTER TABLE %I ADD %s', part, pg_get_constraintdef(c.oid))
                    ELSE regexp_replace(pg_get_indexdef(x.indexrelid),
                                        '^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+ ',
                                        format('CREATE \1INDEX ON %I ', part)) END
          FROM pg_index x
          LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid
                                   AND c.conrelid = x.indrelid
         WHERE x.indrelid = 'webhook_event_log'::regclass
         ORDER BY x.indexrelid
    LOOP
        EXECUTE ddl;
    END LOOP;
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT bench_in_day'
                   ' CHECK (created >= %L AND created < %L)', part, lo_ts, hi_ts);
    EXECUTE format('ALTER TABLE webhook_event_log ATTACH PARTITION %I'
                   ' FOR VALUES FROM (%L) TO (%L)', part, lo_ts, hi_ts);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT bench_in_day', part);
    RETURN greatest(0, i_hi - i_lo + 1);
END;
\$\$;
SQL

days=$(psql_bench -c "SELECT d::date FROM bench_params,
  generate_series((t0 AT TIME ZONE 'UTC')::date, (t_end AT TIME ZONE 'UTC')::date, '1 day') d")
# Two sessions (the machine's two cores), each taking the next day as soon as it is done.
# Session settings for the load only: nothing waits for a WAL flush at commit, each index is
# sorted in memory, and no parallel workers compete with the other session for the two cores.
# Each session then prints the CPU time its server process used (from /proc, when PostgreSQL
# runs on this machine as deploy/local's does): other work on the machine stretches the wall
# time, much less the CPU time.
load_day() {
  psql "$bench_dsn" -v ON_ERROR_STOP=1 -qAt <<SQL
SELECT bench_load_day('$1') \g /dev/null
SELECT pg_backend_pid() AS backend_pid \gset
\setenv BENCH_BACKEND_PID :backend_pid
\! awk '{ print \$14 + \$15 }' /proc/\$BENCH_BACKEND_PID/stat 2>/dev/null || true
SQL
}
export -f load_day
export bench_dsn
# shellcheck disable=SC2016  # $1 is load_day's argument, expanded by the inner bash
cpu_ticks=$(PGOPTIONS="-c synchronous_commit=off -c maintenance_work_mem=256MB \
-c max_parallel_maintenance_workers=0 -c client_min_messages=warning" \
  xargs -P 2 -I '{}' bash -c 'load_day "$1"' _ '{}' <<<"$days" |
  awk -v hz="$(getconf CLK_TCK)" '{ t += $1; n++ } END { if (n) printf "%.1f", t / hz }')
psql_bench >/dev/null <<SQL
SELECT setval(pg_get_serial_sequence('webhook_event_log', 'id'), n) FROM bench_params;
-- The week ahead, as the maintenance loop keeps it.
SELECT hookguard_ensure_partitions((t_end AT TIME ZONE 'UTC')::date, 8) FROM bench_params;
DROP FUNCTION bench_load_day(date);
DROP TABLE bench_params;
SQL
echo "load: $(psql_bench -c 'SELECT count(*) FROM webhook_event_log') rows in $(elapsed "$t") s;" \
  "PostgreSQL CPU ${cpu_ticks:-n/a} s in 2 sessions"

t=$(now_s)
psql_bench -c "ANALYZE webhook_event_log"
echo "analyze: $(elapsed "$t") s"

t=$(now_s)
while :; do
  n=$(psql_bench -c "SELECT hookguard_rollup(2000000)")
  [[ $n -lt 2000000 ]] && break
done
psql_bench -c "ANALYZE webhook_stats_hourly" -c "ANALYZE webhook_stats_daily"
echo "rollup: $(elapsed "$t") s; watermark $(psql_bench -c 'SELECT watermark FROM webhook_rollup_state');" \
  "hourly rows $(psql_bench -c 'SELECT count(*) FROM webhook_stats_hourly')," \
  "daily rows $(psql_bench -c 'SELECT count(*) FROM webhook_stats_daily')," \
  "default partition rows $(psql_bench -c 'SELECT hookguard_default_partition_rows()')"

# A cursor 20 days deep: the newest signature_invalid row of trigger 7 before that instant.
cursor=$(psql_bench -F' ' -c "SELECT created, id FROM webhook_event_log
  WHERE trigger_id = 7 AND outcome = 'signature_invalid' AND created < now() - interval '20 days'
  ORDER BY created DESC, id DESC LIMIT 1")
c_created=${cursor% *}
c_id=${cursor##* }

declare -A sql
sql[a_one_trigger_24h]="SELECT * FROM webhook_stats(now() - interval '24 hours', now(), 7)"
sql[b_all_triggers_all_time]="SELECT * FROM webhook_stats_detailed"
sql[c_events_page_deep]="SELECT id, created, outcome, status_code, source_ip, delivery_id
  FROM webhook_event_log
 WHERE trigger_id = 7 AND outcome = 'signature_invalid'
   AND (created, id) < ('$c_created'::timestamptz, $c_id)
 ORDER BY created DESC, id DESC LIMIT 100"
declare -A inner
inner[a_one_trigger_24h]="SELECT webhook_stats_sql(now() - interval '24 hours', now(), 7)"
inner[b_all_triggers_all_time]="SELECT webhook_stats_sql('-infinity', 'infinity')"
declare -A target=([a_one_trigger_24h]=100 [b_all_triggers_all_time]=1000 [c_events_page_deep]=50)

summary=()
for name in a_one_trigger_24h b_all_triggers_all_time c_events_page_deep; do
  echo
  echo "=== $name: ${sql[$name]}"
  if [[ -n ${inner[$name]:-} ]]; then
    # The function runs one dynamic query; show that query's plan too.
    echo "--- plan of the query inside the function:"
    echo "SELECT 'EXPLAIN (ANALYZE, BUFFERS) ' || (${inner[$name]}) \\gexec" | psql_bench |
      sed 's/^/    /'
  fi
  # One session, warmed by a first run: a pooled connection, as the admin API would use.
  plan=$(psql_bench -c '\o /dev/null' -c "${sql[$name]}" -c '\o' \
    -c "EXPLAIN (ANALYZE, BUFFERS) ${sql[$name]}")
  echo "--- plan:"
  echo "${plan//$'\n'/$'\n'    }" | sed '1s/^/    /'
  ms=$(echo "$plan" | awk '/Execution Time/ { print $3 }')
  verdict=$(awk -v m="$ms" -v t="${target[$name]}" 'BEGIN { print (m < t) ? "ok" : "SLOW" }')
  summary+=("RESULT $name ${ms} ms target ${target[$name]} ms $verdict")
done
echo
printf '%s\n' "${summary[@]}"
echo "after: $(uptime)"
