-- hookguard schema v3: analytics on the request log (issue #8, docs/analytics.md): hourly and
-- daily rollups with latency histograms, a windowed stats function, rollup-aware retention.
-- Runs inside one transaction (db/migrator.cc); no BEGIN/COMMIT here. Every statement is
-- idempotent (IF NOT EXISTS / OR REPLACE), so running this file twice is harmless.
--
-- How the rollups are kept current: by a maintenance job, not by the audit writer. The
-- maintenance loop (db/maintenance.cc, every ~30 s) calls hookguard_rollup(), which folds every
-- complete log row above an id watermark into the rollup tables. Why not in the writer's COPY
-- transaction: the COPY is the hot path (the writer spools to disk when PostgreSQL is slow), and
-- an upsert on shared rollup rows there would serialise concurrent writers on row locks. Why an
-- id watermark and not time: ids are handed out at insert, so a late row (a spool replayed after
-- an outage, created hours ago) still gets an id above the watermark and is rolled up once.
-- Readers are exact regardless of the lag: webhook_stats() adds the not-yet-rolled-up tail.
--
-- On a large existing database, CREATE INDEX below locks the log against writes while it builds
-- (the audit writer spools meanwhile). To avoid that, build each index first on every partition
-- with CREATE INDEX CONCURRENTLY, using the same columns; the parent's CREATE INDEX then attaches
-- them instead of building (docs/analytics.md, "Upgrading a large database").

-- ---------------------------------------------------------------------------------------------
-- Indexes. id: the rollup reads rows above its watermark, and the stats tail does the same.
-- (trigger_id, outcome, created DESC, id DESC): the events page, keyset-paginated.
CREATE INDEX IF NOT EXISTS webhook_event_log_id_idx ON webhook_event_log (id);
CREATE INDEX IF NOT EXISTS webhook_event_log_trigger_outcome_created_idx
    ON webhook_event_log (trigger_id, outcome, created DESC, id DESC);

-- ---------------------------------------------------------------------------------------------
-- Latency histogram. processing_time_ms is an integer: values 0..19 get a bucket each (exact),
-- above that buckets grow by 5 % (bucket k >= 20 holds [20 * 1.05^(k-20), 20 * 1.05^(k-19))),
-- so any estimate inside a bucket is within 5 % of the true value. 2^31 - 1 ms is bucket 399.
-- A histogram is a bigint[] indexed by bucket number: its lower bound is the lowest bucket in
-- use, so a narrow distribution stays a short array.
CREATE OR REPLACE FUNCTION hookguard_latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ms IS NULL OR ms < 0 THEN 0
                WHEN ms < 20 THEN ms
                -- The epsilon keeps exact bucket edges (21 ms = 20 * 1.05) out of the bucket below.
                ELSE 20 + floor(ln(ms / 20.0) / ln(1.05) + 1e-9)::integer END
$$;

-- The smallest and largest integer millisecond value bucket k can hold.
CREATE OR REPLACE FUNCTION hookguard_latency_bucket_low(k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN k < 20 THEN k::double precision
                ELSE ceil(20 * power(1.05::double precision, k - 20) - 1e-9) END
$$;

CREATE OR REPLACE FUNCTION hookguard_latency_bucket_high(k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN k < 20 THEN k::double precision
                ELSE greatest(ceil(20 * power(1.05::double precision, k - 19) - 1e-9) - 1,
                              hookguard_latency_bucket_low(k)) END
$$;

-- A dense histogram from sparse (bucket, count) pairs; buckets must be distinct.
CREATE OR REPLACE FUNCTION hookguard_hist_from_pairs(buckets integer[], counts bigint[])
RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('[' || lo || ':' || hi || ']=' ||
            array_agg(COALESCE(p.c, 0) ORDER BY g)::text)::bigint[]
      FROM (SELECT min(b) AS lo, max(b) AS hi FROM unnest(buckets) AS b) r
     CROSS JOIN generate_series(r.lo, r.hi) AS g
      LEFT JOIN unnest(buckets, counts) AS p(b, c) ON p.b = g
     GROUP BY r.lo, r.hi
$$;

-- Element-wise sum of two histograms (NULL counts as empty).
CREATE OR REPLACE FUNCTION hookguard_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
           WHEN a IS NULL OR cardinality(a) = 0 THEN b
           WHEN b IS NULL OR cardinality(b) = 0 THEN a
           ELSE (SELECT ('[' || min(i) || ':' || max(i) || ']=' ||
                         array_agg(COALESCE(a[i], 0) + COALESCE(b[i], 0) ORDER BY i)::text)::bigint[]
                   FROM generate_series(least(array_lower(a, 1), array_lower(b, 1)),
                                        greatest(array_upper(a, 1), array_upper(b, 1))) AS i)
           END
$$;

-- hookguard_hist_sum(hist): sums histograms, e.g. over the rollup rows of a day.
CREATE OR REPLACE AGGREGATE hookguard_hist_sum(bigint[]) (
    SFUNC = hookguard_hist_add,
    STYPE = bigint[]
);

-- Percentiles (0..1) from a sparse histogram, with percentile_cont's semantics: the value at
-- fractional rank p * (n - 1), interpolated between the two neighbouring ranks. A rank's value
-- is placed inside its bucket by its position among the bucket's rows, so it is exact below
-- 20 ms and within 5 % above. Returns one value per p; NULLs when the histogram is empty.
CREATE OR REPLACE FUNCTION hookguard_hist_percentiles(buckets integer[], counts bigint[],
                                                      ps double precision[])
RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    total  bigint := 0;
    m      integer := cardinality(ps);
    pos    double precision[];
    ranks  bigint[];     -- 2 per p: floor and ceil of its position, in ascending order
    slots  integer[];    -- where each entry of ranks goes in vals
    vals   double precision[];
    result double precision[];
    j      integer := 1;
    cum    bigint := 0;
    k      integer;
    c      bigint;
    lo     double precision;
    hi     double precision;
BEGIN
    SELECT COALESCE(sum(x), 0) INTO total FROM unnest(counts) AS x WHERE x > 0;
    IF total = 0 OR m = 0 THEN
        RETURN array_fill(NULL::double precision, ARRAY[m]);
    END IF;
    SELECT array_agg(least(greatest(p, 0), 1) * (total - 1) ORDER BY i) INTO pos
      FROM unnest(ps) WITH ORDINALITY AS u(p, i);
    SELECT array_agg(r ORDER BY r, slot), array_agg(slot ORDER BY r, slot) INTO ranks, slots
      FROM (SELECT floor(pos[i])::bigint AS r, 2 * i - 1 AS slot FROM generate_subscripts(pos, 1) i
            UNION ALL
            SELECT ceil(pos[i])::bigint, 2 * i FROM generate_subscripts(pos, 1) i) x;
    vals := array_fill(NULL::double precision, ARRAY[2 * m]);
    -- One pass over the buckets: each rank is placed inside the bucket that holds it.
    FOR i IN 1 .. cardinality(buckets) LOOP
        c := counts[i];
        CONTINUE WHEN c IS NULL OR c <= 0;
        k := buckets[i];
        IF k < 20 THEN
            lo := k;
            hi := k;
        ELSE
            lo := ceil(20 * 1.05::double precision ^ (k - 20) - 1e-9);
            hi := greatest(ceil(20 * 1.05::double precision ^ (k - 19) - 1e-9) - 1, lo);
        END IF;
        WHILE j <= 2 * m AND ranks[j] < cum + c LOOP
            vals[slots[j]] := lo + (hi - lo) * ((ranks[j] - cum) + 0.5) / c;
            j := j + 1;
        END LOOP;
        EXIT WHEN j > 2 * m;
        cum := cum + c;
    END LOOP;
    result := array_fill(NULL::double precision, ARRAY[m]);
    FOR i IN 1 .. m LOOP
        result[i] := vals[2 * i - 1] + (pos[i] - floor(pos[i])) * (vals[2 * i] - vals[2 * i - 1]);
    END LOOP;
    RETURN result;
END;
$$;

-- One percentile (0..1) of a dense histogram, e.g. hookguard_hist_percentile(hookguard_hist_sum(
-- latency_hist), 0.95) over webhook_stats_daily rows.
CREATE OR REPLACE FUNCTION hookguard_hist_percentile(hist bigint[], p double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hookguard_hist_percentiles(
                ARRAY(SELECT generate_series(array_lower(hist, 1), array_upper(hist, 1))),
                ARRAY(SELECT hist[i] FROM generate_series(array_lower(hist, 1),
                                                          array_upper(hist, 1)) AS i),
                ARRAY[p]))[1]
$$;

-- ---------------------------------------------------------------------------------------------
-- Rollups: one row per (trigger, UTC hour or day, outcome). trigger_id NULL = no trigger matched
-- (NULLS NOT DISTINCT makes those one group). They hold exactly the log rows with id <= the
-- watermark, and outlive the raw rows (audit.rollup_retention_days, default 400).
CREATE TABLE IF NOT EXISTS webhook_stats_hourly (
    trigger_id      bigint,
    hour            timestamptz NOT NULL,
    outcome         text NOT NULL,
    requests        bigint NOT NULL,
    requests_2xx    bigint NOT NULL,
    sum_ms          bigint NOT NULL,
    max_ms          integer NOT NULL,
    last_created    timestamptz NOT NULL,
    latency_hist    bigint[] NOT NULL,
    CONSTRAINT webhook_stats_hourly_key UNIQUE NULLS NOT DISTINCT (trigger_id, hour, outcome)
);
CREATE INDEX IF NOT EXISTS webhook_stats_hourly_hour_idx ON webhook_stats_hourly (hour);

-- The same, per UTC day: what an all-time or month-long question reads.
CREATE TABLE IF NOT EXISTS webhook_stats_daily (
    trigger_id      bigint,
    day             timestamptz NOT NULL,
    outcome         text NOT NULL,
    requests        bigint NOT NULL,
    requests_2xx    bigint NOT NULL,
    sum_ms          bigint NOT NULL,
    max_ms          integer NOT NULL,
    last_created    timestamptz NOT NULL,
    latency_hist    bigint[] NOT NULL,
    CONSTRAINT webhook_stats_daily_key UNIQUE NULLS NOT DISTINCT (trigger_id, day, outcome)
);
CREATE INDEX IF NOT EXISTS webhook_stats_daily_day_idx ON webhook_stats_daily (day);

-- The rollup's progress. watermark: every log row with id <= watermark is in the rollups and no
-- other is. pending_hi / pending_vxids: an id bound read while writers were in flight, usable
-- once those transactions (virtual xids) have ended.
CREATE TABLE IF NOT EXISTS webhook_rollup_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watermark       bigint NOT NULL DEFAULT 0,
    pending_hi      bigint,
    pending_vxids   text[],
    rolled_up_at    timestamptz
);
INSERT INTO webhook_rollup_state (singleton) VALUES (true) ON CONFLICT DO NOTHING;

-- Folds complete log rows above the watermark into the rollups, at most max_rows ids per call;
-- returns how many rows it folded (call again while it returns max_rows). Idempotent and safe to
-- run concurrently: an advisory lock serialises callers, and the watermark moves in the same
-- transaction as the rollup rows.
--
-- "Complete": a writer takes its id from the sequence inside its transaction, so an id can be
-- handed out before a smaller one commits. The watermark only moves to an id bound read when no
-- writer was in flight, or once every writer in flight at that moment has ended; writers hold a
-- RowExclusiveLock on the log (or a partition) from before they draw an id until they end.
CREATE OR REPLACE FUNCTION hookguard_rollup(max_rows bigint DEFAULT 1000000) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    st      webhook_rollup_state%ROWTYPE;
    safe_hi bigint;
    seq_hi  bigint;
    busy    text[];
    upto    bigint;
    folded  bigint := 0;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'hookguard_rollup: max_rows must be positive, got %', max_rows;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('hookguard_rollup'));
    SELECT * INTO st FROM webhook_rollup_state FOR UPDATE;
    safe_hi := st.watermark;

    IF st.pending_hi IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_locks
         WHERE locktype = 'virtualxid' AND virtualxid = ANY (st.pending_vxids)) THEN
        safe_hi := greatest(safe_hi, st.pending_hi);
        st.pending_hi := NULL;
        st.pending_vxids := NULL;
    END IF;

    -- The sequence first, then the lock table: a writer that drew an id <= seq_hi and has not
    -- ended yet is then certainly in `busy`.
    EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s',
                   pg_get_serial_sequence('webhook_event_log', 'id')) INTO seq_hi;
    SELECT array_agg(DISTINCT l.virtualtransaction) INTO busy
      FROM pg_locks l
     WHERE l.locktype = 'relation'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.mode = 'RowExclusiveLock'
       AND l.pid IS DISTINCT FROM pg_backend_pid()
       AND (l.relation = 'webhook_event_log'::regclass
            OR l.relation IN (SELECT inhrelid FROM pg_inherits
                               WHERE inhparent = 'webhook_event_log'::regclass));
    IF busy IS NULL THEN
        safe_hi := greatest(safe_hi, seq_hi);
        st.pending_hi := NULL;
        st.pending_vxids := NULL;
    ELSIF st.pending_hi IS NULL AND seq_hi > safe_hi THEN
        st.pending_hi := seq_hi;
        st.pending_vxids := busy;
    END IF;

    upto := least(safe_hi, st.watermark + max_rows);
    IF upto > st.watermark THEN
        WITH fine AS MATERIALIZED (
            SELECT trigger_id,
                   date_trunc('hour', created, 'UTC') AS hour,
                   outcome,
                   hookguard_latency_bucket(processing_time_ms) AS bucket,
                   count(*) AS n,
                   count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS n_2xx,
                   sum(processing_time_ms) AS sum_ms,
                   max(processing_time_ms) AS max_ms,
                   max(created) AS last_created
              FROM webhook_event_log
             WHERE id > st.watermark AND id <= upto
             GROUP BY 1, 2, 3, 4
        ), hourly AS (
            INSERT INTO webhook_stats_hourly AS h
                   (trigger_id, hour, outcome, requests, requests_2xx, sum_ms, max_ms,
                    last_created, latency_hist)
            SELECT trigger_id, hour, outcome, sum(n), sum(n_2xx), sum(sum_ms), max(max_ms),
                   max(last_created), hookguard_hist_from_pairs(array_agg(bucket), array_agg(n))
              FROM fine
             GROUP BY 1, 2, 3
            ON CONFLICT (trigger_id, hour, outcome) DO UPDATE
               SET requests = h.requests + EXCLUDED.requests,
                   requests_2xx = h.requests_2xx + EXCLUDED.requests_2xx,
                   sum_ms = h.sum_ms + EXCLUDED.sum_ms,
                   max_ms = greatest(h.max_ms, EXCLUDED.max_ms),
                   last_created = greatest(h.last_created, EXCLUDED.last_created),
                   latency_hist = hookguard_hist_add(h.latency_hist, EXCLUDED.latency_hist)
            RETURNING 1
        ), per_day AS (
            SELECT trigger_id, date_trunc('day', hour, 'UTC') AS day, outcome, bucket,
                   sum(n)::bigint AS n, sum(n_2xx)::bigint AS n_2xx, sum(sum_ms)::bigint AS sum_ms,
                   max(max_ms) AS max_ms, max(last_created) AS last_created
              FROM fine
             GROUP BY 1, 2, 3, 4
        ), daily AS (
            INSERT INTO webhook_stats_daily AS d
                   (trigger_id, day, outcome, requests, requests_2xx, sum_ms, max_ms,
                    last_created, latency_hist)
            SELECT trigger_id, day, outcome, sum(n), sum(n_2xx), sum(sum_ms), max(max_ms),
                   max(last_created), hookguard_hist_from_pairs(array_agg(bucket), array_agg(n))
              FROM per_day
             GROUP BY 1, 2, 3
            ON CONFLICT (trigger_id, day, outcome) DO UPDATE
               SET requests = d.requests + EXCLUDED.requests,
                   requests_2xx = d.requests_2xx + EXCLUDED.requests_2xx,
                   sum_ms = d.sum_ms + EXCLUDED.sum_ms,
                   max_ms = greatest(d.max_ms, EXCLUDED.max_ms),
                   last_created = greatest(d.last_created, EXCLUDED.last_created),
                   latency_hist = hookguard_hist_add(d.latency_hist, EXCLUDED.latency_hist)
            RETURNING 1
        )
        -- Data-modifying CTEs run to completion whether or not this SELECT reads them.
        SELECT COALESCE((SELECT sum(n) FROM fine), 0) INTO folded;
        st.watermark := upto;
    END IF;

    UPDATE webhook_rollup_state
       SET watermark = st.watermark, pending_hi = st.pending_hi,
           pending_vxids = st.pending_vxids, rolled_up_at = now();
    RETURN folded;
END;
$$;

-- Rollup retention: deletes hourly and daily rollup rows whose period began before `cutoff`;
-- returns how many rows. (Raw log rows are never DELETEd: see hookguard_retention.)
CREATE OR REPLACE FUNCTION hookguard_rollup_retention(cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n_hourly bigint;
    n_daily  bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hookguard_rollup'));
    DELETE FROM webhook_stats_hourly WHERE hour < cutoff;
    GET DIAGNOSTICS n_hourly = ROW_COUNT;
    DELETE FROM webhook_stats_daily WHERE day < cutoff;
    GET DIAGNOSTICS n_daily = ROW_COUNT;
    RETURN n_hourly + n_daily;
END;
$$;

-- Log retention that never loses a row from the statistics: drops every daily partition whose
-- whole day lies before `cutoff` (UTC) and whose rows are all rolled up; a partition holding a
-- row above the watermark is kept for the next run (a NOTICE says which). Returns how many it
-- dropped. Never touches the default partition.
CREATE OR REPLACE FUNCTION hookguard_retention(cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part    text;
    wm      bigint;
    pending boolean;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hookguard_ensure_partitions'));
    SELECT watermark INTO wm FROM webhook_rollup_state;
    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'webhook_event_log'::regclass
           AND c.relname ~ '^webhook_event_log_[0-9]{8}$'
         ORDER BY c.relname
    LOOP
        CONTINUE WHEN to_date(right(part, 8), 'YYYYMMDD') >= cutoff;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE id > %s)', part, COALESCE(wm, 0))
           INTO pending;
        IF pending THEN
            RAISE NOTICE 'hookguard_retention: keeping %: it has rows not rolled up yet', part;
            CONTINUE;
        END IF;
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;

-- Rows in the default partition. Zero in normal operation: maintenance creates daily partitions
-- ahead, so a non-zero count means clock skew or maintenance that has not run.
CREATE OR REPLACE FUNCTION hookguard_default_partition_rows() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM webhook_event_log_default
$$;

-- ---------------------------------------------------------------------------------------------
-- Statistics for any window [since, until), one row per trigger (all triggers, or one), with the
-- columns of webhook_stats_detailed. Whole UTC days come from webhook_stats_daily, whole hours
-- from webhook_stats_hourly, the partial hours at either end and every row not rolled up yet
-- from the log itself; so the answer is exact for counts, and percentiles are within 5 %
-- (exact below 20 ms). '-infinity' and 'infinity' are accepted.
DO $$
BEGIN
    IF to_regtype('webhook_stats_row') IS NULL THEN
        CREATE TYPE webhook_stats_row AS (
            trigger_id                 bigint,
            trigger_name               text,
            webhook_key                text,
            total_requests             bigint,
            successful_requests        bigint,
            failed_requests            bigint,
            rate_limited_requests      bigint,
            signature_failures         bigint,
            ip_denied_requests         bigint,
            payload_too_large_requests bigint,
            upstream_errors            bigint,
            avg_processing_time_ms     double precision,
            p50_processing_time_ms     double precision,
            p95_processing_time_ms     double precision,
            p99_processing_time_ms     double precision,
            last_request_at            timestamptz);
    END IF;
END;
$$;

-- webhook_stats_sql: the query webhook_stats runs, with the window's bounds as literals (so that
-- `EXPLAIN ANALYZE` can show its plan: bench/analytics.sh).
CREATE OR REPLACE FUNCTION webhook_stats_sql(since timestamptz, until timestamptz,
                                             trigger_id bigint DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    wm     bigint;
    h0     timestamptz;  -- whole hours: [h0, h1)
    h1     timestamptz;
    d0     timestamptz;  -- whole days: [d0, d1), inside [h0, h1)
    d1     timestamptz;
    t_log  text := '';
    t_roll text := '';
BEGIN
    IF since IS NULL OR until IS NULL THEN
        RAISE EXCEPTION 'webhook_stats: since and until must not be NULL';
    END IF;
    IF until < since THEN
        until := since;
    END IF;
    SELECT watermark INTO wm FROM webhook_rollup_state;
    wm := COALESCE(wm, 0);

    h0 := date_trunc('hour', since, 'UTC');
    IF h0 < since THEN h0 := h0 + interval '1 hour'; END IF;
    h1 := date_trunc('hour', until, 'UTC');
    IF h0 >= h1 THEN
        h0 := until;
        h1 := until;
    END IF;
    d0 := date_trunc('day', h0, 'UTC');
    IF d0 < h0 THEN d0 := d0 + interval '1 day'; END IF;
    d1 := date_trunc('day', h1, 'UTC');
    IF d0 >= d1 THEN
        d0 := h1;
        d1 := h1;
    END IF;

    IF trigger_id IS NOT NULL THEN
        t_log := format(' AND l.trigger_id = %s', trigger_id);
        t_roll := format(' AND r.trigger_id = %s', trigger_id);
    END IF;

    -- Literal bounds let the planner prune partitions and pick the id index for the tail; the
    -- watermark is read again inside the query so that tail and rollups share one snapshot
    -- (a rollup committing in between moves it only upwards).
    RETURN format($q$
        WITH raw AS MATERIALIZED (
            SELECT l.trigger_id, l.outcome, l.status_code, l.processing_time_ms, l.created
              FROM webhook_event_log l
             WHERE l.created >= %1$L AND l.created < %3$L AND l.trigger_id IS NOT NULL %8$s
            UNION ALL
            SELECT l.trigger_id, l.outcome, l.status_code, l.processing_time_ms, l.created
              FROM webhook_event_log l
             WHERE l.created >= %4$L AND l.created < %2$L AND l.trigger_id IS NOT NULL %8$s
            UNION ALL
            SELECT l.trigger_id, l.outcome, l.status_code, l.processing_time_ms, l.created
              FROM webhook_event_log l
             WHERE l.created >= %3$L AND l.created < %4$L AND l.trigger_id IS NOT NULL %8$s
               AND l.id > %7$s
               AND l.id > (SELECT s.watermark FROM webhook_rollup_state s)
        ), roll AS MATERIALIZED (
            SELECT r.trigger_id, r.outcome, r.requests, r.requests_2xx, r.sum_ms,
                   r.last_created, r.latency_hist
              FROM webhook_stats_daily r
             WHERE r.day >= %5$L AND r.day < %6$L AND r.trigger_id IS NOT NULL %9$s
            UNION ALL
            SELECT r.trigger_id, r.outcome, r.requests, r.requests_2xx, r.sum_ms,
                   r.last_created, r.latency_hist
              FROM webhook_stats_hourly r
             WHERE ((r.hour >= %3$L AND r.hour < %5$L) OR (r.hour >= %6$L AND r.hour < %4$L))
               AND r.trigger_id IS NOT NULL %9$s
        ), per_outcome AS (
            SELECT trigger_id, outcome, sum(n) AS n, sum(n_2xx) AS n_2xx, sum(ms) AS ms,
                   max(last) AS last
              FROM (SELECT trigger_id, outcome, requests AS n, requests_2xx AS n_2xx,
                           sum_ms AS ms, last_created AS last
                      FROM roll
                    UNION ALL
                    SELECT trigger_id, outcome, 1, (status_code BETWEEN 200 AND 299)::int,
                           processing_time_ms, created
                      FROM raw) x
             GROUP BY 1, 2
        ), totals AS (
            SELECT trigger_id,
                   sum(n)::bigint AS total,
                   sum(n_2xx)::bigint AS ok,
                   COALESCE(sum(n) FILTER (WHERE outcome = 'rate_limited'), 0)::bigint AS rl,
                   COALESCE(sum(n) FILTER (WHERE outcome IN ('signature_invalid',
                                                             'signature_missing')), 0)::bigint
                       AS sig,
                   COALESCE(sum(n) FILTER (WHERE outcome = 'ip_denied'), 0)::bigint AS ip,
                   COALESCE(sum(n) FILTER (WHERE outcome = 'payload_too_large'), 0)::bigint
                       AS big,
                   COALESCE(sum(n) FILTER (WHERE outcome IN ('upstream_error', 'upstream_timeout',
                                                             'upstream_denied')), 0)::bigint
                       AS up,
                   sum(ms) AS ms,
                   max(last) AS last
              FROM per_outcome
             GROUP BY 1
        ), buckets AS (
            SELECT trigger_id, b, sum(c) AS c
              FROM (SELECT r.trigger_id, array_lower(r.latency_hist, 1) + u.o::integer - 1 AS b,
                           u.c
                      FROM roll r, unnest(r.latency_hist) WITH ORDINALITY AS u(c, o)
                     WHERE u.c <> 0
                    UNION ALL
                    SELECT trigger_id, hookguard_latency_bucket(processing_time_ms), 1
                      FROM raw) y
             GROUP BY 1, 2
        ), pct AS (
            SELECT trigger_id,
                   hookguard_hist_percentiles(array_agg(b ORDER BY b),
                                              array_agg(c::bigint ORDER BY b),
                                              ARRAY[0.5, 0.95, 0.99]) AS p
              FROM buckets
             GROUP BY 1
        )
        SELECT t.id, t.name, t.key,
               COALESCE(s.total, 0), COALESCE(s.ok, 0), COALESCE(s.total - s.ok, 0),
               COALESCE(s.rl, 0), COALESCE(s.sig, 0), COALESCE(s.ip, 0), COALESCE(s.big, 0),
               COALESCE(s.up, 0),
               COALESCE(s.ms::double precision / nullif(s.total, 0), 0),
               COALESCE(pct.p[1], 0), COALESCE(pct.p[2], 0), COALESCE(pct.p[3], 0),
               s.last
          FROM webhook_trigger t
          LEFT JOIN totals s ON s.trigger_id = t.id
          LEFT JOIN pct ON pct.trigger_id = t.id
         WHERE true %10$s
         ORDER BY t.id
        $q$, since, until, h0, h1, d0, d1, wm, t_log, t_roll,
        CASE WHEN trigger_id IS NULL THEN '' ELSE format(' AND t.id = %s', trigger_id) END);
END;
$$;

CREATE OR REPLACE FUNCTION webhook_stats(since timestamptz, until timestamptz,
                                         trigger_id bigint DEFAULT NULL)
RETURNS SETOF webhook_stats_row
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE webhook_stats_sql(since, until, trigger_id);
END;
$$;

-- Same columns as in 0001; now reads rollups plus the not-yet-rolled-up tail, not the whole log.
-- "All time" is as far back as the rollups go (audit.rollup_retention_days).
CREATE OR REPLACE VIEW webhook_stats_detailed AS
SELECT s.trigger_id, s.trigger_name, s.webhook_key, s.total_requests, s.successful_requests,
       s.failed_requests, s.rate_limited_requests, s.signature_failures, s.ip_denied_requests,
       s.payload_too_large_requests, s.upstream_errors, s.avg_processing_time_ms,
       s.p50_processing_time_ms, s.p95_processing_time_ms, s.p99_processing_time_ms,
       s.last_request_at
  FROM webhook_stats('-infinity', 'infinity') s;
