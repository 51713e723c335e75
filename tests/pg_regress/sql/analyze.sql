-- rfm.analyze against an independent pure-SQL formulation of the specification
SET TimeZone = 'UTC';
SET max_parallel_workers_per_gather = 0;
SELECT setseed(0.11);
CREATE TABLE an_tx AS
SELECT CASE WHEN g % 997 = 0 THEN NULL ELSE (1 + floor(power(random(), 2) * 3000))::bigint END AS c,
       timestamptz '2025-12-31 23:00:00+00' - random() * interval '720 days' AS t,
       CASE WHEN random() < 0.04 THEN -round((random() * 80)::numeric, 2)
            ELSE round((exp(random() * 5) + 1)::numeric, 2) END AS a
FROM generate_series(1, 60000) g;
-- a customer with only returns in the window, one with only old rows, NULL amounts and times
INSERT INTO an_tx VALUES (900001, '2025-06-01', -20.00), (900002, '2023-01-01', 50.00),
    (5, NULL, 10.00), (6, '2025-05-05', NULL);

-- the specification, written directly in SQL (quantile method, standard scheme)
CREATE FUNCTION rfm_test.reference(as_of timestamptz, period interval)
RETURNS TABLE (customer_key text, recency_days integer, frequency bigint, monetary numeric,
               r integer, f integer, m integer, fm integer, segment text, abc_tier text)
LANGUAGE sql STABLE AS $$
WITH w AS (SELECT * FROM an_tx
           WHERE c IS NOT NULL AND t IS NOT NULL AND a IS NOT NULL
             AND t > as_of - period AND t <= as_of),
met AS (SELECT c, (as_of::date - (max(t) FILTER (WHERE a >= 0))::date) AS recency_days,
               count(*) FILTER (WHERE a >= 0) AS frequency, sum(a) AS monetary
        FROM w GROUP BY c HAVING count(*) FILTER (WHERE a >= 0) > 0),
th AS (SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY recency_days) AS tr,
              percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY frequency) AS tf,
              percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY monetary::float8) AS tm
       FROM met),
sc AS (SELECT met.*,
              5 - (SELECT count(*) FROM unnest(tr) x WHERE recency_days > x)::int AS r,
              1 + (SELECT count(*) FROM unnest(tf) x WHERE frequency > x)::int AS f,
              1 + (SELECT count(*) FROM unnest(tm) x WHERE monetary::float8 > x)::int AS m
       FROM met, th),
tot AS (SELECT sum(monetary::float8) FILTER (WHERE monetary > 0) AS total FROM met),
ab AS (SELECT c, coalesce(sum(monetary::float8) FILTER (WHERE monetary > 0)
                  OVER (ORDER BY monetary DESC GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                  / total AS ahead, monetary
       FROM met, tot)
SELECT sc.c::text, recency_days, frequency, sc.monetary, r, f, m, ceil((f + m) / 2.0)::int,
       CASE ceil((f + m) / 2.0)::int * 10 + r
            WHEN 15 THEN 'New Customers' WHEN 25 THEN 'Potential Loyalists' WHEN 35 THEN 'Loyal'
            WHEN 45 THEN 'Champions' WHEN 55 THEN 'Champions'
            WHEN 14 THEN 'Promising' WHEN 24 THEN 'Potential Loyalists' WHEN 34 THEN 'Potential Loyalists'
            WHEN 44 THEN 'Loyal' WHEN 54 THEN 'Champions'
            WHEN 13 THEN 'Promising' WHEN 23 THEN 'Need Attention' WHEN 33 THEN 'Potential Loyalists'
            WHEN 43 THEN 'Loyal' WHEN 53 THEN 'Loyal'
            WHEN 12 THEN 'About to Sleep' WHEN 22 THEN 'Need Attention' WHEN 32 THEN 'Need Attention'
            WHEN 42 THEN 'At Risk' WHEN 52 THEN 'At Risk'
            WHEN 11 THEN 'Lost' WHEN 21 THEN 'Hibernating' WHEN 31 THEN 'At Risk'
            WHEN 41 THEN 'Can''t Lose Them' WHEN 51 THEN 'Can''t Lose Them' END,
       CASE WHEN ab.monetary <= 0 THEN 'C' WHEN 0.8 - ahead > 1e-12 THEN 'A'
            WHEN 0.95 - ahead > 1e-12 THEN 'B' ELSE 'C' END
FROM sc JOIN ab USING (c)
$$;

CREATE TABLE an_ref AS SELECT * FROM rfm_test.reference('2025-12-31 23:59:59+00', '12 months');
CREATE TABLE an_result AS SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31 23:59:59+00"}') AS a FROM an_tx;
SELECT count(*) AS reference_customers FROM an_ref;
-- per customer: every column identical (bigint key, numeric amount)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE o IS DISTINCT FROM x) AS differences
FROM (SELECT customer_key, recency_days, frequency, monetary, r, f, m, fm, segment, abc_tier
      FROM rfm.customers((SELECT a FROM an_result))) o
FULL JOIN an_ref x USING (customer_key);
-- the summary equals the reference grouped by segment, every segment listed
SELECT s.segment, s.customers, s.customers = coalesce(x.n, 0) AS customers_ok,
       s.revenue = coalesce(x.revenue, 0) AS revenue_exact
FROM rfm.summary((SELECT a FROM an_result)) s
LEFT JOIN (SELECT segment, count(*) AS n, sum(monetary) AS revenue FROM an_ref GROUP BY 1) x USING (segment);
SELECT sum(customers) AS customers, sum(revenue) AS revenue,
       sum(revenue) = (SELECT sum(monetary) FROM an_ref) AS equals_sum_of_amounts,
       round(sum(pct_customers)) AS pct_customers, round(sum(pct_revenue)) AS pct_revenue
FROM rfm.summary((SELECT a FROM an_result));
SELECT * FROM rfm.overview((SELECT a FROM an_result));
SELECT * FROM rfm.thresholds((SELECT a FROM an_result)) ORDER BY metric, score;
-- the thresholds are the percentile_cont quintiles of the active customers
SELECT t.metric, array_agg(t.upper_bound ORDER BY t.score) FILTER (WHERE t.upper_bound IS NOT NULL) AS ours,
       CASE t.metric
            WHEN 'recency' THEN (SELECT percentile_cont(ARRAY[0.2,0.4,0.6,0.8]) WITHIN GROUP (ORDER BY recency_days) FROM an_ref)
            WHEN 'frequency' THEN (SELECT percentile_cont(ARRAY[0.2,0.4,0.6,0.8]) WITHIN GROUP (ORDER BY frequency) FROM an_ref)
            ELSE (SELECT percentile_cont(ARRAY[0.2,0.4,0.6,0.8]) WITHIN GROUP (ORDER BY monetary::float8) FROM an_ref) END AS percentile_cont
FROM rfm.thresholds((SELECT a FROM an_result)) t WHERE t.metric <> 'recency'
GROUP BY t.metric ORDER BY 1;
-- the grid: 25 cells that add up to the summary
SELECT r, string_agg(customers::text, ' ' ORDER BY fm) AS customers_fm1_to_fm5
FROM rfm.grid((SELECT a FROM an_result)) GROUP BY r ORDER BY r DESC;
SELECT g.segment, sum(g.customers) = s.customers AS customers_match, sum(g.revenue) = s.revenue AS revenue_match
FROM rfm.grid((SELECT a FROM an_result)) g JOIN rfm.summary((SELECT a FROM an_result)) s USING (segment)
GROUP BY g.segment, s.customers, s.revenue ORDER BY 1;

-- text keys and double precision amounts give the same customers
SELECT count(*) AS differences
FROM (SELECT customer_key, recency_days, frequency, monetary, r, f, m, segment, abc_tier
      FROM rfm.customers((SELECT rfm.analyze(c::text, t, a, '{"as_of": "2025-12-31 23:59:59+00"}') FROM an_tx))) o
FULL JOIN an_ref x USING (customer_key)
WHERE o IS DISTINCT FROM (x.customer_key, x.recency_days, x.frequency, x.monetary, x.r, x.f, x.m, x.segment, x.abc_tier);
SELECT count(*) AS differences_float
FROM (SELECT customer_key, recency_days, frequency, r, f, m, segment
      FROM rfm.customers((SELECT rfm.analyze(c, t, a::float8, '{"as_of": "2025-12-31 23:59:59+00"}') FROM an_tx))) o
FULL JOIN an_ref x USING (customer_key)
WHERE o IS DISTINCT FROM (x.customer_key, x.recency_days, x.frequency, x.r, x.f, x.m, x.segment);
-- date times mean midnight in the session time zone
SELECT count(*) AS differences_date
FROM rfm.customers((SELECT rfm.analyze(c, t::date, a, '{"as_of": "2025-12-31 23:59:59+00"}') FROM an_tx)) o
JOIN an_ref x USING (customer_key)
WHERE o.recency_days <> x.recency_days;

-- forced parallel plans give the serial answer
ANALYZE an_tx;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT count(*) AS plan_lines_with_partial_aggregate
FROM rfm_test.plan_of($$SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31 23:59:59+00"}') FROM an_tx$$) line
WHERE line LIKE '%Partial Aggregate%';
CREATE TABLE an_parallel AS SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31 23:59:59+00"}') AS a FROM an_tx;
CREATE TABLE an_parallel_text AS SELECT rfm.analyze(c::text, t, a, '{"as_of": "2025-12-31 23:59:59+00"}') AS a FROM an_tx;
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
SELECT (SELECT a FROM an_parallel) = (SELECT a FROM an_result) AS identical_value;
SELECT count(*) AS differences_text_parallel
FROM rfm.customers((SELECT a FROM an_parallel_text)) o FULL JOIN an_ref x USING (customer_key)
WHERE o.segment IS DISTINCT FROM x.segment OR o.monetary IS DISTINCT FROM x.monetary;

-- another window and time zone
SET TimeZone = 'America/New_York';
SELECT count(*) AS customers, count(*) FILTER (WHERE o IS DISTINCT FROM x) AS differences
FROM (SELECT customer_key, recency_days, frequency, monetary, r, f, m, fm, segment, abc_tier
      FROM rfm.customers((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-09-30 12:00:00", "period": "6 months"}') FROM an_tx))) o
FULL JOIN rfm_test.reference('2025-09-30 12:00:00', '6 months') x USING (customer_key);
SET TimeZone = 'UTC';
