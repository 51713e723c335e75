-- Saved schemes in parallel plans with workers launched, on a table created in an earlier
-- transaction: the aggregates and rfm.segment read a saved scheme in the workers and in a
-- leader in parallel mode. Before: rfm.analyze with a saved scheme failed with XX000
-- "cannot assign XIDs during a parallel operation" (a read-write SPI call), a misspelt
-- scheme name gave the same XX000 instead of 42704, and rfm.segment in a parallel scan gave
-- XX000 "cannot start commands during a parallel operation".
SET TimeZone = 'UTC';
CREATE TABLE par_tx (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO par_tx
SELECT 1 + (g * 7919) % 5000, timestamptz '2025-12-31' - ((g * 104729) % 400) * interval '1 day',
       round((5 + (g * 31) % 300)::numeric / 3, 2)
FROM generate_series(1::bigint, 200000) g;
ANALYZE par_tx;
SELECT rfm.create_scheme('par_rules', '{"segments": [{"name": "Big", "when": {"monetary": {">=": 2500}}},
    {"name": "Recent", "when": {"r": {">=": 4}}}], "default": "Other"}') ? 'segments' AS saved;
SELECT rfm.create_scheme('par_scores', '{"segments": [{"name": "Top", "when": {"r": {">=": 4}, "f": {">=": 3}}}],
    "default": "Rest"}') ? 'segments' AS saved;
-- whether a query ran with parallel workers launched (EXPLAIN ANALYZE)
CREATE FUNCTION rfm_test.workers_launched(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    line text;
    launched boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
        launched := launched OR line ~ 'Workers Launched: [1-9]';
    END LOOP;
    RETURN launched;
END
$$;

SET max_parallel_workers_per_gather = 0;
SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}')::text AS serial_value
FROM par_tx \gset
SELECT count(*) AS serial_top FROM par_tx
WHERE rfm.segment((customer_id % 5 + 1)::int, (customer_id % 3 + 1)::int, (customer_id % 4 + 1)::int, 'par_scores') = 'Top' \gset

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- rfm.analyze with a saved scheme: workers launched, the same value as the serial plan
SELECT rfm_test.workers_launched($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}') FROM par_tx$$)
       AS analyze_workers_launched;
SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}')::text
       = :'serial_value' AS parallel_value_equals_serial
FROM par_tx;
SELECT segment, customers FROM rfm.summary(:'serial_value'::rfm.analysis);
-- text keys and double precision amounts too
SELECT rfm_test.workers_launched($$SELECT rfm.analyze(customer_id::text, ordered_at, amount::float8, '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}') FROM par_tx$$)
       AS text_key_workers_launched;
SELECT (SELECT sum(customers) FROM rfm.summary(a)) AS text_key_customers
FROM (SELECT rfm.analyze(customer_id::text, ordered_at, amount::float8, '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}') AS a
      FROM par_tx) s;
-- rfm.segment with a saved scheme in a parallel scan
SELECT rfm_test.workers_launched($$SELECT count(*) FROM par_tx WHERE rfm.segment((customer_id % 5 + 1)::int, (customer_id % 3 + 1)::int, (customer_id % 4 + 1)::int, 'par_scores') = 'Top'$$)
       AS segment_workers_launched;
SELECT count(*) = :serial_top AS parallel_segment_equals_serial, count(*) > 0 AS some_top FROM par_tx
WHERE rfm.segment((customer_id % 5 + 1)::int, (customer_id % 3 + 1)::int, (customer_id % 4 + 1)::int, 'par_scores') = 'Top';
-- a misspelt scheme name is 42704 in a parallel plan, as in a serial one
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"scheme": "par_rulez"}') FROM par_tx$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM par_tx WHERE rfm.segment((customer_id % 5 + 1)::int, 1, 1, 'par_scorez') = 'Top'$$);
-- a managed segmentation with a saved scheme refreshes with workers too
SELECT rfm.create_segmentation('par_managed', 'par_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00", "scheme": "par_rules"}') > 0 AS created;
SELECT rfm.refresh('par_managed') IS NOT NULL AS refreshed;
SELECT string_agg(segment || '=' || customers, ', ' ORDER BY position)
     = (SELECT string_agg(segment || '=' || customers, ', ' ORDER BY i)
        FROM rfm.summary(:'serial_value'::rfm.analysis) WITH ORDINALITY s(segment, customers, c3, c4, c5, c6, c7, c8, c9, i))
       AS managed_equals_serial
FROM rfm.segment_summary WHERE segmentation = 'par_managed';

RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
SELECT rfm.drop_segmentation('par_managed');
SELECT rfm.drop_scheme('par_rules'), rfm.drop_scheme('par_scores');
DROP FUNCTION rfm_test.workers_launched(text);
DROP TABLE par_tx;
