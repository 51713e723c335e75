-- Every row accounted for, moves explained, guidance where a setting cannot work (SPEC §2)
SET TimeZone = 'UTC';
CREATE TABLE ac_tx (customer_id bigint, email text, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO ac_tx
SELECT 1 + (g * 7919) % 400,
       CASE WHEN g % 9 = 0 THEN NULL ELSE 'c' || (1 + (g * 7919) % 400) || '@example.com' END,
       timestamptz '2025-12-31 18:00' - ((g * 104729) % 500) * interval '1 day',
       CASE WHEN g % 13 = 0 THEN -round((g % 50)::numeric, 2) ELSE round((5 + (g * 31) % 700)::numeric / 3, 2) END
FROM generate_series(1, 5000) g;
-- orders placed on 31 December itself, and customers seen only after it
INSERT INTO ac_tx VALUES (9001, 'late@example.com', '2025-12-31 23:30', 50),
                         (9002, 'next@example.com', '2026-01-02 09:00', 70),
                         (NULL, NULL, '2026-01-03 09:00', 5),
-- excluded: a purchase before the window only, and only a return in it
                         (9003, 'old@example.com', '2024-06-01 12:00', 80),
                         (9004, 'ret@example.com', '2025-11-11 12:00', -25.50),
                         (9004, 'ret@example.com', '2024-03-01 12:00', 40);

-- 1. A bare date means the end of that day: the 23:30 order counts, with recency 0
SELECT as_of, rows_after_as_of FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31"}') FROM ac_tx));
SELECT customer_key, recency_days, frequency FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31"}') FROM ac_tx)) WHERE customer_key IN ('9001', '9002');
SELECT rfm.check_options('{"as_of": "2025-12-31"}') ->> 'as_of' AS resolved_as_of;

-- 2. Every row accounted for: keyless rows (segmenting by e-mail), rows after as_of,
-- excluded customers and their amounts add up to plain SQL over the input
CREATE TABLE ac_ov AS SELECT * FROM rfm.overview((SELECT rfm.analyze(email, ordered_at, amount,
    '{"as_of": "2025-12-31"}') FROM ac_tx));
SELECT active_customers, excluded_customers, rows_without_key, amount_without_key, rows_after_as_of,
       excluded_amount, total_revenue, transactions FROM ac_ov;
WITH w AS (SELECT * FROM ac_tx WHERE ordered_at > timestamptz '2025-01-01' - interval '1 microsecond'
                                 AND ordered_at < timestamptz '2026-01-01')
SELECT (SELECT count(DISTINCT email) FROM ac_tx WHERE ordered_at < '2026-01-01')
         = o.active_customers + o.excluded_customers AS customers_add_up,
       (SELECT count(*) FROM w WHERE email IS NULL) = o.rows_without_key AS keyless_rows_add_up,
       (SELECT sum(amount) FROM w WHERE email IS NULL) = o.amount_without_key AS keyless_amount_adds_up,
       (SELECT sum(amount) FROM w) = o.total_revenue + o.excluded_amount + o.amount_without_key AS amounts_add_up,
       (SELECT count(*) FROM w WHERE email IS NOT NULL)
         = o.transactions + (SELECT count(*) FROM w WHERE email IN (
               SELECT email FROM w GROUP BY email HAVING count(*) FILTER (WHERE amount >= 0) = 0)) AS rows_add_up,
       (SELECT count(*) FROM ac_tx WHERE ordered_at >= '2026-01-01') = o.rows_after_as_of AS after_as_of_adds_up
FROM ac_ov o;
-- customers below an ABC minimum are counted as such
SELECT below_min_customers,
       below_min_customers = (SELECT count(*) FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
           '{"as_of": "2025-12-31", "abc_min_sales": 1000}') FROM ac_tx)) WHERE abc_tier IS NULL) AS matches_customers
FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31", "abc_min_sales": 1000}') FROM ac_tx));
-- the same figures, serial and with parallel workers
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
SELECT (SELECT row(o.*)::text FROM rfm.overview((SELECT rfm.analyze(email, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM ac_tx)) o)
     = (SELECT row(o.*)::text FROM ac_ov o) AS parallel_equals_serial;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;

-- 3. Guidance: old data with a defaulted as_of, thresholds the window cannot reach,
-- options written the wrong way
SET client_min_messages = notice;
SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at, amount)
    FROM ac_tx WHERE ordered_at < '2025-06-01'));
SELECT count(*) AS scored FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31", "method": "fixed", "thresholds": {"recency": [30, 90, 180, 365],
      "frequency": [1, 3, 5, 10], "monetary": [100, 500, 1000, 2000]}}') FROM ac_tx)) WHERE r = 1 OR f = 1;
-- no NOTICE when as_of is given, or when the data is recent
SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-06-01"}')
    FROM ac_tx WHERE ordered_at < '2025-06-01'));
SELECT count(*) > 0 AS analysed FROM rfm.customers((SELECT rfm.analyze(customer_id, now() - interval '1 day', amount) FROM ac_tx));
RESET client_min_messages;
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"preiod": "6 months"}') FROM ac_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"abc_shares": [80, 15, 5]}') FROM ac_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "31/12/2025"}') FROM ac_tx$$);
-- uuid keys: what to write instead, whatever the amount type and whether rows exist
SELECT rfm_test.error_of($$SELECT rfm.analyze(gen_random_uuid(), ordered_at, amount) FROM ac_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(gen_random_uuid(), ordered_at, amount::float8, '{}') FROM ac_tx WHERE false$$);
-- text times (a text or varchar column): what to write instead
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at::text, amount) FROM ac_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(email, ordered_at::varchar, amount::float8, '{}') FROM ac_tx WHERE false$$);
-- timestamp and date columns still resolve to the real aggregate
SELECT (SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at::timestamp, amount, '{"as_of": "2025-12-31"}') FROM ac_tx)))
     = (SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at::date, amount, '{"as_of": "2025-12-31"}') FROM ac_tx))) AS timestamp_and_date_work;
-- integer, bigint and text keys still resolve to the real aggregate
SELECT (SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id::int, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM ac_tx)))
     = (SELECT active_customers FROM rfm.overview((SELECT rfm.analyze(customer_id::text, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM ac_tx))) AS int_and_text_keys_work;

-- 4. One convention: percentages are numeric 0-100 with two decimals, in functions too
SELECT min(pg_typeof(pct_customers)::text) AS pct_type, sum(pct_customers) BETWEEN 99.9 AND 100.1 AS sums_to_100
FROM rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM ac_tx));
-- thresholds of numeric amounts without float artifacts
SELECT metric, score, lower_bound, upper_bound FROM rfm.thresholds((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31"}') FROM ac_tx)) WHERE metric = 'monetary' ORDER BY score;

-- 5. Moves explained: which customers went from one segment to another last night, and why
SELECT rfm.create_segmentation('ac_main', 'ac_tx', 'customer_id', 'ordered_at', 'amount',
    '{"as_of": "2025-12-30"}') > 0 AS created;
SELECT rfm.refresh('ac_main') IS NOT NULL AS refreshed;
CREATE TABLE ac_before AS SELECT * FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-30"}') FROM ac_tx));
-- a night of orders by a few customers, and the next day's refresh
INSERT INTO ac_tx SELECT c, NULL, '2025-12-31 10:00', 900 FROM generate_series(1, 400, 25) c;
SELECT rfm.alter_segmentation('ac_main', options => '{"as_of": "2025-12-31"}') IS NULL AS altered;
SELECT rfm.refresh('ac_main') IS NOT NULL AS refreshed;
CREATE TABLE ac_after AS SELECT * FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31"}') FROM ac_tx));
-- every move of the second refresh, with before and after equal to what each run said
SELECT count(*) AS moves,
       count(*) FILTER (WHERE (m.from_r, m.from_f, m.from_m, m.from_recency_days, m.from_frequency, m.from_monetary)
                        IS DISTINCT FROM (b.r::smallint, b.f::smallint, b.m::smallint, b.recency_days, b.frequency, round(b.monetary, 2))) AS before_differs,
       count(*) FILTER (WHERE (m.to_r, m.to_f, m.to_m, m.to_recency_days, m.to_frequency, m.to_monetary)
                        IS DISTINCT FROM (a.r::smallint, a.f::smallint, a.m::smallint, a.recency_days, a.frequency, round(a.monetary, 2))) AS after_differs,
       count(*) FILTER (WHERE m.from_segment IS DISTINCT FROM b.segment OR m.to_segment IS DISTINCT FROM a.segment) AS segments_differ,
       count(*) FILTER (WHERE m.previous_as_of <> '2025-12-30 23:59:59.999999+00' OR m.as_of <> '2025-12-31 23:59:59.999999+00') AS wrong_dates
FROM rfm.customer_movement m
LEFT JOIN ac_before b USING (customer_key) LEFT JOIN ac_after a USING (customer_key)
WHERE m.segmentation = 'ac_main' AND m.run_id = (SELECT max(run_id) FROM rfm.customer_movement WHERE segmentation = 'ac_main');
-- exactly the customers whose segment differs between the two runs
SELECT count(*) AS changed_customers FROM ac_before b FULL JOIN ac_after a USING (customer_key)
WHERE b.segment IS DISTINCT FROM a.segment;
-- "who went from Loyal to At Risk, and why": some bought nothing (their recency grew a day),
-- others kept every metric and moved because the thresholds moved
SELECT from_segment, to_segment, count(*) AS customers,
       count(*) FILTER (WHERE from_frequency = to_frequency AND from_monetary = to_monetary) AS bought_nothing,
       count(*) FILTER (WHERE (from_r, from_f, from_m) IS DISTINCT FROM (to_r, to_f, to_m)) AS scores_changed
FROM rfm.customer_movement WHERE segmentation = 'ac_main' AND reason = 'refresh'
  AND run_id = (SELECT max(run_id) FROM rfm.customer_movement WHERE segmentation = 'ac_main')
GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 5;
SELECT h.metric, h.score, h.lower_bound AS before_lower, n.lower_bound AS after_lower
FROM rfm.threshold_history h JOIN rfm.threshold_history n USING (segmentation, metric, score)
WHERE h.segmentation = 'ac_main' AND h.run_id < n.run_id AND h.lower_bound IS DISTINCT FROM n.lower_bound
ORDER BY 1, 2;
-- segment_trend's latest run and segment_summary's automatic counts agree
SELECT count(*) AS segments, count(*) FILTER (WHERE s.automatic_customers <> coalesce(t.customers, 0)) AS disagree
FROM rfm.segment_summary s
LEFT JOIN rfm.segment_trend t ON t.segmentation = s.segmentation AND t.segment = s.segment
  AND t.run_id = (SELECT max(run_id) FROM rfm.segment_trend WHERE segmentation = 'ac_main')
WHERE s.segmentation = 'ac_main';
-- the new figures of kpi_overview, money in cents
SELECT active_customers, rows_without_key, rows_after_as_of, excluded_amount, below_min_customers,
       scale(total_revenue) AS revenue_scale
FROM rfm.kpi_overview WHERE segmentation = 'ac_main';

-- readers: a reader who may read the source sees the moves; one who may not sees nothing;
-- under row-level security only the customers whose rows it may see
CREATE ROLE ac_reader LOGIN IN ROLE rfm_reader;
CREATE ROLE ac_stranger LOGIN IN ROLE rfm_reader;
GRANT SELECT ON ac_tx TO ac_reader;
ALTER TABLE ac_tx ENABLE ROW LEVEL SECURITY;
CREATE POLICY ac_low ON ac_tx FOR SELECT TO ac_reader USING (customer_id <= 100);
SET ROLE ac_reader;
SELECT count(*) > 0 AS sees_moves, bool_and(customer_key::bigint <= 100) AS only_its_customers
FROM rfm.customer_movement WHERE segmentation = 'ac_main';
SELECT count(*) AS all_customer_thresholds FROM rfm.threshold_history WHERE segmentation = 'ac_main';
SET ROLE ac_stranger;
SELECT count(*) AS stranger_sees FROM rfm.customer_movement WHERE segmentation = 'ac_main';
RESET ROLE;
ALTER TABLE ac_tx DISABLE ROW LEVEL SECURITY;
DROP POLICY ac_low ON ac_tx;
REVOKE SELECT ON ac_tx FROM ac_reader;

SELECT rfm.drop_segmentation('ac_main') IS NULL AS dropped;
DROP TABLE ac_tx, ac_ov, ac_before, ac_after;
DROP ROLE ac_reader, ac_stranger;
