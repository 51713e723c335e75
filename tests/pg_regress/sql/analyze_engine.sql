-- rfm.analyze: abc_min_sales, excluded keys, numbers in options, options that differ
-- between rows, NULL arguments, forged values and where the ABC defaults come from
SET TimeZone = 'UTC';
CREATE TABLE en (c bigint, t timestamptz, a numeric);
INSERT INTO en VALUES
    (1, '2025-12-30', 100), (1, '2025-06-01', 50), (2, '2025-12-01', 10), (2, '2025-12-02', -10),
    (3, '2025-03-01', 500), (4, '2025-11-15', 20), (4, '2025-11-16', 20), (4, '2025-11-17', 20),
    (5, '2025-07-01', -30), (6, '2024-01-01', 80), (7, '2026-02-01', 40), (NULL, '2025-05-05', 5),
    (8, '2025-10-01', 5);
-- 5 has only a return and 6 only rows before the window: excluded; 7 has only a row after
-- as_of: neither active nor excluded

-- abc_min_sales: customers below it get no tier and their monetary does not count in the
-- total the shares apply to (8 and 2 are below 60: no tier)
SELECT customer_key, monetary, abc_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31"}') FROM en)) ORDER BY monetary DESC, customer_key;
SELECT customer_key, monetary, abc_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31", "abc_min_sales": 60}') FROM en)) ORDER BY monetary DESC, customer_key;
-- they are still scored and segmented
SELECT count(*) AS customers, count(segment) AS with_segment, count(abc_tier) AS with_tier
FROM rfm.customers((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "abc_min_sales": 60}') FROM en));
-- the minimum is inclusive, may be negative, and is reported by check_options
SELECT count(abc_tier) AS with_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31", "abc_min_sales": 150}') FROM en));
SELECT count(abc_tier) AS with_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31", "abc_min_sales": -1000}') FROM en));
SELECT rfm.check_options('{"abc_min_sales": 12.5}') -> 'abc_min_sales' AS min_sales,
       rfm.check_options('{}') -> 'abc_min_sales' AS absent,
       rfm.check_options('{}') -> 'keep_excluded' AS keep_excluded;
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"abc_min_sales": "ten"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"abc_min_sales": 1e400}')$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"abc_min_sales": -1e400}') FROM en$$);

-- excluded keys: kept with "keep_excluded": true, in key order; none otherwise
SELECT * FROM rfm.excluded_keys((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "keep_excluded": true}') FROM en));
SELECT * FROM rfm.excluded_keys((SELECT rfm.analyze(c::text || '@example.com', t, a::float8,
    '{"as_of": "2025-12-31", "keep_excluded": true}') FROM en));
SELECT count(*) AS without_the_option FROM rfm.excluded_keys((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM en));
SELECT excluded_customers FROM rfm.overview((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "keep_excluded": true}') FROM en));
SELECT count(*) AS strict FROM rfm.excluded_keys(NULL);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"keep_excluded": "yes"}')$$);

-- numbers in options that no float or integer field holds: 22003 naming the key
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": 1e400}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": -1e400}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": 1e20}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": 2147483648}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": 3.5}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"buckets": -3}')$$);
SELECT rfm.check_options('{"buckets": 4.0, "scheme": null}') -> 'buckets' AS four;
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"abc_shares": [0.5, 1e400]}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"method": "fixed", "thresholds": {"recency": [1, 2, 3, 1e400], "frequency": [1, 2, 3, 4], "monetary": [1, 2, 3, 4]}}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"bogus": 1e400}')$$);
SELECT left(rfm_test.error_of($$SELECT rfm.check_options('{"as_of": {"nested": [1e400]}}')$$), 45) AS nested;
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"buckets": 1e400}') FROM en$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"abc_shares": [1e400]}') FROM en$$);

-- options must be the same for every row, whatever the row order, NULL keys included
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 1 THEN '{}' ELSE '{"buckets": 4, "scheme": null}' END::jsonb) FROM (SELECT * FROM en ORDER BY c) x$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 1 THEN '{}' ELSE '{"buckets": 4, "scheme": null}' END::jsonb) FROM (SELECT * FROM en ORDER BY c DESC) x$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c IS NULL THEN '{"buckets": 5}' ELSE '{}' END::jsonb) FROM (SELECT * FROM en ORDER BY c NULLS LAST) x$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c IS NULL THEN '{"buckets": 5}' ELSE '{}' END::jsonb) FROM (SELECT * FROM en ORDER BY c NULLS FIRST) x$$);
-- NULL options are an error on any row
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 3 THEN NULL ELSE '{}' END::jsonb) FROM (SELECT * FROM en ORDER BY c) x$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 3 THEN NULL ELSE '{}' END::jsonb) FROM (SELECT * FROM en ORDER BY c DESC) x$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, NULL) FROM en$$);
-- options as a constant, a query parameter (generic plan) or a subquery's value give the
-- same analysis: a constant or a parameter is compared with the first row's once, other
-- expressions on every row
SELECT (SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM en)
     = (SELECT rfm.analyze(c, t, a, (SELECT '{"as_of": "2025-12-31"}'::jsonb)) FROM en) AS subquery_same;
SET plan_cache_mode = force_generic_plan;
PREPARE en_opts(jsonb) AS SELECT rfm.analyze(c, t, a, $1) AS v FROM en;
CREATE TEMP TABLE en_param AS EXECUTE en_opts('{"as_of": "2025-12-31"}');
SELECT (SELECT v FROM en_param) = (SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM en) AS parameter_same;
DEALLOCATE en_opts; RESET plan_cache_mode; DROP TABLE en_param;
-- ... and under a parallel plan, where partial states are combined
CREATE TABLE en_big AS SELECT g AS c, timestamptz '2025-12-01' AS t, 10::numeric AS a FROM generate_series(1, 200000) g;
ANALYZE en_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT count(*) AS plan_lines_with_partial_aggregate
FROM rfm_test.plan_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 150000 THEN '{"buckets": 5}' ELSE '{}' END::jsonb) FROM en_big$$) line
WHERE line LIKE '%Partial Aggregate%';
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 150000 THEN '{"buckets": 5}' ELSE '{}' END::jsonb) FROM en_big$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c > 100000 THEN '{"period": "6 months"}' ELSE '{"period": "6 months", "buckets": 5}' END::jsonb) FROM en_big$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, CASE WHEN c = 7 THEN NULL ELSE '{}' END::jsonb) FROM en_big$$);
SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "keep_excluded": true}') FROM en_big));
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
DROP TABLE en_big;

-- NULL arguments: 22004 naming the argument where NULL is an error ...
SELECT rfm_test.error_of($$SELECT rfm.check_options(NULL)$$);
SELECT rfm_test.error_of($$SELECT rfm.quantile_thresholds(x, NULL) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(x, NULL) FROM generate_series(1, 3) x$$);
SELECT rfm_test.error_of($$SELECT rfm.score(1, '{1,NULL}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier(1, '{2,NULL}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier(0, '{2,1}', '{A,B,NULL}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(x, '{0.5,NULL}') FROM generate_series(1, 3) x$$);
-- ... and NULL in, NULL out for the strict functions
SELECT rfm.score(NULL, '{1}') IS NULL AS score_value, rfm.score(1, NULL) IS NULL AS score_thresholds,
       rfm.score(1, '{1}', NULL) IS NULL AS score_direction, rfm.fm_score(NULL, 1) IS NULL AS fm_score,
       rfm.segment(NULL, 1, 1) IS NULL AS segment, rfm.segment(1, 1, 1, NULL) IS NULL AS segment_scheme,
       rfm.abc_tier(NULL, '{1}') IS NULL AS abc_tier, rfm.abc_tier(1, NULL) IS NULL AS abc_tier_thresholds,
       rfm.abc_tier(1, '{1}', NULL) IS NULL AS abc_tier_names;
SELECT (SELECT count(*) FROM rfm.customers(NULL)) AS customers, (SELECT count(*) FROM rfm.summary(NULL)) AS summary,
       (SELECT count(*) FROM rfm.grid(NULL)) AS grid, (SELECT count(*) FROM rfm.overview(NULL)) AS overview,
       (SELECT count(*) FROM rfm.thresholds(NULL)) AS thresholds;

-- forged values are refused (22P03) without allocating what they claim
CREATE TABLE en_value AS SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "period": "1 day"}') AS v FROM en WHERE c = 6;
SELECT active_customers, excluded_customers FROM rfm.overview((SELECT v FROM en_value));
-- the value ends with the customer count (8 bytes) and the excluded-key count (1 byte)
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customers((SELECT overlay(v placing '\x0000000000010000'::bytea from length(v) - 8 for 8)::rfm.analysis FROM en_value))$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.excluded_keys((SELECT overlay(v placing '\x0000000000010000'::bytea from length(v) - 8 for 8)::rfm.analysis FROM en_value))$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customers((SELECT (substr(v, 1, length(v) - 1) || '\xffffffffff0f'::bytea)::rfm.analysis FROM en_value))$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customers(decode('03' || repeat('ff', 99), 'hex')::rfm.analysis)$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.summary(decode('03' || repeat('7f', 99), 'hex')::rfm.analysis)$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customers((SELECT substr(v, 1, length(v) - 3)::rfm.analysis FROM en_value))$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customers((SELECT overlay(v placing '\x02'::bytea from 1 for 1)::rfm.analysis FROM en_value))$$);
DROP TABLE en_value;

-- the ABC defaults come from one place: check_options resolves them, and the SQL defaults
-- of rfm.abc_tier and rfm.abc_thresholds are the same
SELECT rfm.check_options('{}') -> 'abc_shares' AS shares, rfm.check_options('{}') -> 'abc_names' AS names;
SELECT rfm.check_options('{"abc_shares": [0.4, 0.3, 0.2, 0.1]}') -> 'abc_names' AS four_names;
SELECT ARRAY[rfm.abc_tier(20, '{10,5}'), rfm.abc_tier(7, '{10,5}'), rfm.abc_tier(0, '{10,5}')]
       = ARRAY(SELECT jsonb_array_elements_text(rfm.check_options('{}') -> 'abc_names')) AS abc_tier_default_names_agree;
SELECT (SELECT rfm.abc_thresholds(x) FROM generate_series(1, 100) x)
       = (SELECT rfm.abc_thresholds(x, ARRAY(SELECT jsonb_array_elements_text(rfm.check_options('{}') -> 'abc_shares')::float8))
          FROM generate_series(1, 100) x) AS abc_thresholds_default_shares_agree;
DROP TABLE en;
