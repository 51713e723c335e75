-- Managed segmentations on the benchmark data (benches/run.sh runs this; not a test).
--
--   \i benches/managed.sql      (set-up only: benches/run.sh writes the timed driver)
--
-- bench.orders is bench.tx plus bench.new_orders, the "new orders" of the days after the
-- data set ends: day d (1, 2, ...) is a copy of the orders of 2025-06-d moved to 2026-01-d,
-- about ROWS/730 rows with the usual mix of customers. Per round, timed with \timing:
--   R1  rfm.refresh of a new segmentation (first refresh: every customer enters the history)
--   A1  rfm.analyze over the same rows with the same options, in the same session
--   R2  after day 1's orders and as_of moved one day on: the second refresh
--   A2  rfm.analyze over those rows and options
-- Then 20 refreshes, one per new day, each followed by VACUUM of the managed tables, and the
-- size of every managed table after each (lines starting with @@ size).
\set ON_ERROR_STOP 1
SET TimeZone = 'UTC';
SET client_min_messages = warning;
DROP VIEW IF EXISTS bench.orders;
DROP TABLE IF EXISTS bench.new_orders;
CREATE TABLE bench.new_orders (LIKE bench.tx);
CREATE VIEW bench.orders AS SELECT * FROM bench.tx UNION ALL SELECT * FROM bench.new_orders;
CREATE OR REPLACE FUNCTION pg_temp.add_day(d integer) RETURNS bigint LANGUAGE sql AS $$
    WITH i AS (INSERT INTO bench.new_orders
               SELECT customer_id, ordered_at + (date '2026-01-01' - date '2025-06-01') * interval '1 day', amount
               FROM bench.tx
               WHERE ordered_at >= timestamptz '2025-06-01 00:00+00' + (d - 1) * interval '1 day'
                 AND ordered_at < timestamptz '2025-06-01 00:00+00' + d * interval '1 day'
               RETURNING 1)
    SELECT count(*) FROM i
$$;
CREATE OR REPLACE FUNCTION pg_temp.as_of(d integer) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('as_of', to_char(timestamptz '2025-12-31 23:59:59+00' + d * interval '1 day',
                                                'YYYY-MM-DD HH24:MI:SS+00'))
$$;
CREATE OR REPLACE FUNCTION pg_temp.round_start() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM rfm.drop_segmentation(name) FROM rfm.segmentation_catalog WHERE name = 'bench_refresh';
    TRUNCATE bench.new_orders;
    PERFORM rfm.create_segmentation('bench_refresh', 'bench.orders', 'customer_id', 'ordered_at', 'amount',
                                    pg_temp.as_of(0));
END
$$;
CREATE OR REPLACE FUNCTION pg_temp.sizes() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s=%s', c.relname, pg_total_relation_size(c.oid)), ' ' ORDER BY c.relname)
           || format(' history_rows=%s', (SELECT count(*) FROM rfm.history))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'rfm' AND c.relkind = 'r'
$$;
