-- rfm.quantile_thresholds: the same numbers as percentile_cont, serial and parallel.
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.42);
CREATE TABLE qt_data AS
SELECT g, (random() * 1000)::int AS size_hint, x
FROM generate_series(1, 300) g,
     LATERAL (SELECT round((random() * 1e4)::numeric, 2)::float8 AS x
              FROM generate_series(1, 1 + (g * 37) % 211)) v;
CREATE TABLE qt_ties AS
SELECT g, (random() * (g % 4 + 1))::int::float8 AS x
FROM generate_series(1, 200) g, generate_series(1, 1 + g % 97);

-- quintiles and every other bucket count: identical to percentile_cont, group by group
SELECT count(*) AS groups,
       count(*) FILTER (WHERE ours IS DISTINCT FROM theirs) AS mismatches
FROM (SELECT g, rfm.quantile_thresholds(x) AS ours,
             percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x) AS theirs
      FROM qt_data GROUP BY g) t;
SELECT b AS buckets,
       count(*) FILTER (WHERE ours IS DISTINCT FROM theirs) AS mismatches
FROM generate_series(2, 12) b,
     LATERAL (SELECT g, rfm.quantile_thresholds(x, b) AS ours,
                     percentile_cont((SELECT array_agg(k::float8 / b) FROM generate_series(1, b - 1) k))
                         WITHIN GROUP (ORDER BY x) AS theirs
              FROM qt_data GROUP BY g) t
GROUP BY b ORDER BY b;
SELECT count(*) FILTER (WHERE ours IS DISTINCT FROM theirs) AS mismatches_100_buckets
FROM (SELECT g, rfm.quantile_thresholds(x, 100) AS ours,
             percentile_cont((SELECT array_agg(k::float8 / 100) FROM generate_series(1, 99) k))
                 WITHIN GROUP (ORDER BY x) AS theirs
      FROM qt_data GROUP BY g) t;
-- heavily tied values
SELECT count(*) AS groups,
       count(*) FILTER (WHERE ours IS DISTINCT FROM theirs) AS mismatches
FROM (SELECT g, rfm.quantile_thresholds(x, 5) AS ours,
             percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x) AS theirs
      FROM qt_ties GROUP BY g) t;

-- small hand-checked cases
SELECT rfm.quantile_thresholds(x) FROM generate_series(1, 10) x;
SELECT rfm.quantile_thresholds(x, 4) FROM unnest('{7}'::float8[]) x;
SELECT rfm.quantile_thresholds(x, 2) FROM unnest('{3,NULL,1,NULL,2}'::float8[]) x;
SELECT rfm.quantile_thresholds(x) IS NULL AS no_rows FROM generate_series(1, 3) x WHERE x > 5;
SELECT rfm.quantile_thresholds(x) IS NULL AS only_nulls FROM unnest('{NULL,NULL}'::float8[]) x;

-- bad input
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x, 1) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x, 101) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x, NULL) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x, 2 + (x::int % 2)) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x) FROM unnest('{1,NaN}'::float8[]) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x) FROM unnest('{1,Infinity}'::float8[]) x$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x) FROM unnest('{-Infinity}'::float8[]) x$$);

-- the aggregates are parallel safe, with combine, serialize and deserialize functions
SELECT p.oid::regprocedure AS aggregate, p.proparallel,
       a.aggcombinefn <> 0 AS has_combine,
       a.aggserialfn <> 0 AS has_serialize,
       a.aggdeserialfn <> 0 AS has_deserialize
FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rfm'
ORDER BY 1::text;

-- forced parallel plans give the serial answer
CREATE TABLE qt_big AS
SELECT (random() * 5000)::numeric(10, 2)::float8 AS x FROM generate_series(1, 200000);
ANALYZE qt_big;
CREATE TABLE qt_serial AS
SELECT rfm.quantile_thresholds(x) AS q5, rfm.quantile_thresholds(x, 10) AS q10 FROM qt_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT count(*) AS plan_lines_with_partial_aggregate
FROM rfm_test.plan_of($$SELECT rfm.quantile_thresholds(x) FROM qt_big$$) line
WHERE line LIKE '%Partial Aggregate%';
CREATE TABLE qt_parallel AS
SELECT rfm.quantile_thresholds(x) AS q5, rfm.quantile_thresholds(x, 10) AS q10 FROM qt_big;
RESET ALL;
SELECT p.q5 = s.q5 AS q5_same, p.q10 = s.q10 AS q10_same,
       s.q5 = (SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY x) FROM qt_big)
           AS q5_is_percentile_cont
FROM qt_parallel p, qt_serial s;
DROP TABLE qt_data, qt_ties, qt_big, qt_serial, qt_parallel;
