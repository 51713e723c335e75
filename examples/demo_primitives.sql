-- RFM segmentation of the sample shop (examples/sample_data.sql), built from the primitives
-- only: rfm.quantile_thresholds, rfm.score, rfm.fm_score, rfm.segment, rfm.abc_thresholds,
-- rfm.abc_tier and the rfm.schemes view, plus plain SQL. examples/demo.sql does the same
-- with one rfm.analyze pass; the two must agree.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f examples/demo_primitives.sql
--   DEMO_SQL=examples/demo_primitives.sql bash scripts/demo.sh
--
-- Per customer (SPEC section 2), over the window  as_of - period < ordered_at <= as_of:
--   active       = at least one purchase (amount >= 0) in the window
--   recency_days = as_of::date - (latest purchase)::date   (session time zone: UTC here)
--   frequency    = number of purchase rows
--   monetary     = sum of all amounts, returns included

\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
\pset null ''
SET TIME ZONE 'UTC';

\set as_of '2025-12-31 23:59:59+00'
\set period '12 months'
\set buckets 5
\set scheme 'standard'

-- Per-customer metrics of the active customers.
CREATE TEMP TABLE demo_metrics AS
SELECT customer_id,
       :'as_of'::timestamptz::date
           - (max(ordered_at) FILTER (WHERE amount >= 0))::date AS recency_days,
       count(*) FILTER (WHERE amount >= 0) AS frequency,
       sum(amount) AS monetary
FROM sample.transactions
WHERE ordered_at > :'as_of'::timestamptz - :'period'::interval
  AND ordered_at <= :'as_of'::timestamptz
  AND customer_id IS NOT NULL AND amount IS NOT NULL
GROUP BY customer_id
HAVING count(*) FILTER (WHERE amount >= 0) > 0;

-- Quantile thresholds of each metric (buckets - 1 cut points) and the ABC thresholds.
CREATE TEMP TABLE demo_thresholds AS
SELECT rfm.quantile_thresholds(recency_days::float8, :buckets) AS recency,
       rfm.quantile_thresholds(frequency::float8, :buckets) AS frequency,
       rfm.quantile_thresholds(monetary::float8, :buckets) AS monetary,
       rfm.abc_thresholds(monetary::float8) AS abc
FROM demo_metrics;

-- Scores, segment and ABC tier per customer.
CREATE TEMP TABLE demo_customers AS
SELECT s.*,
       rfm.fm_score(s.f, s.m) AS fm,
       rfm.segment(s.r, s.f, s.m, :'scheme') AS segment
FROM (
    SELECT c.*,
           rfm.score(c.recency_days::float8, t.recency, higher_is_better => false) AS r,
           rfm.score(c.frequency::float8, t.frequency) AS f,
           rfm.score(c.monetary::float8, t.monetary) AS m,
           rfm.abc_tier(c.monetary::float8, t.abc) AS abc_tier
    FROM demo_metrics AS c
    CROSS JOIN demo_thresholds AS t
) AS s;

\echo
\echo '=== RFM segmentation of the sample shop (primitives) ==='
\echo
SELECT :'as_of'::timestamptz AS as_of,
       :'period' AS period,
       (SELECT count(*) FROM demo_customers) AS active_customers,
       (SELECT count(DISTINCT customer_id) FROM sample.transactions)
           - (SELECT count(*) FROM demo_customers) AS excluded_customers,
       (SELECT sum(monetary) FROM demo_customers) AS total_revenue,
       (SELECT count(*) FROM sample.transactions
        WHERE ordered_at > :'as_of'::timestamptz - :'period'::interval
          AND ordered_at <= :'as_of'::timestamptz) AS rows_in_window;
\echo 'excluded = customers with transactions but no purchase in the window.'

\echo
\echo '=== Segmentation setup (quantile thresholds, 5 buckets) ==='
\echo 'A customer gets the score when lower_bound < value <= upper_bound (an empty bound is open).'
\echo 'Recency: fewer days is better. Frequency and monetary: more is better. Equal values'
\echo 'always share a score, so a bucket whose bounds are equal is empty (ties at a threshold).'
\echo
WITH metrics(ord, metric, thresholds, higher_is_better) AS (
    SELECT 1, 'recency_days', recency, false FROM demo_thresholds
    UNION ALL SELECT 2, 'frequency', frequency, true FROM demo_thresholds
    UNION ALL SELECT 3, 'monetary', monetary, true FROM demo_thresholds
), buckets AS (
    -- bucket k (1 .. n) holds t[k-1] < value <= t[k]; its score depends on the direction
    SELECT m.ord, m.metric, k,
           CASE WHEN m.higher_is_better THEN k ELSE :buckets + 1 - k END AS score,
           m.thresholds[k - 1] AS lower_bound,
           m.thresholds[k] AS upper_bound
    FROM metrics AS m
    CROSS JOIN generate_series(1, :buckets) AS k
)
SELECT metric, score,
       trim_scale(round(lower_bound::numeric, 2)) AS lower_bound,
       trim_scale(round(upper_bound::numeric, 2)) AS upper_bound
FROM buckets
ORDER BY ord, score DESC;

\echo
\echo '=== Segments (scheme standard) ==='
\echo
WITH segments AS (
    SELECT position, segment FROM rfm.schemes WHERE scheme = :'scheme'
), per_segment AS (
    SELECT segment, count(*) AS customers, sum(monetary) AS revenue
    FROM demo_customers GROUP BY segment
), totals AS (
    SELECT count(*) AS customers, sum(monetary) AS revenue FROM demo_customers
), lines AS (
    SELECT s.position, s.segment,
           coalesce(p.customers, 0) AS customers,
           coalesce(p.revenue, 0) AS revenue
    FROM segments AS s
    LEFT JOIN per_segment AS p USING (segment)
    UNION ALL
    SELECT 1000, 'Total', customers, revenue FROM totals
)
SELECT r.segment,
       r.customers,
       round(100.0 * r.customers / nullif(t.customers, 0), 1) AS pct_customers,
       r.revenue,
       round(100.0 * r.revenue / nullif(t.revenue, 0), 1) AS pct_revenue,
       round(r.revenue / nullif(r.customers, 0), 2) AS avg_revenue
FROM lines AS r
CROSS JOIN totals AS t
ORDER BY r.position;

\echo
\echo '=== R x FM grid (customers; fm = ceil((f + m) / 2)) ==='
\echo
SELECT 'R' || r.r AS "R \ FM",
       count(c.customer_id) FILTER (WHERE c.fm = 1) AS "FM1",
       count(c.customer_id) FILTER (WHERE c.fm = 2) AS "FM2",
       count(c.customer_id) FILTER (WHERE c.fm = 3) AS "FM3",
       count(c.customer_id) FILTER (WHERE c.fm = 4) AS "FM4",
       count(c.customer_id) FILTER (WHERE c.fm = 5) AS "FM5",
       count(c.customer_id) AS total
FROM generate_series(:buckets, 1, -1) AS r(r)
LEFT JOIN demo_customers AS c ON c.r = r.r
GROUP BY r.r
ORDER BY r.r DESC;

\echo
\echo '=== ABC tiers (by monetary; shares 80% / 15% / 5% of positive revenue) ==='
\echo
SELECT 'A: monetary >= ' || round(abc[1]::numeric, 2)
       || ',  B: monetary >= ' || round(abc[2]::numeric, 2)
       || ',  C: the rest' AS abc_thresholds
FROM demo_thresholds;
WITH tiers(ord, tier) AS (
    VALUES (1, 'A'), (2, 'B'), (3, 'C')
), per_tier AS (
    SELECT abc_tier AS tier, count(*) AS customers, sum(monetary) AS revenue
    FROM demo_customers GROUP BY abc_tier
), totals AS (
    SELECT count(*) AS customers, sum(monetary) AS revenue FROM demo_customers
), lines AS (
    SELECT t.ord, t.tier, coalesce(p.customers, 0) AS customers, coalesce(p.revenue, 0) AS revenue
    FROM tiers AS t LEFT JOIN per_tier AS p USING (tier)
    UNION ALL
    SELECT 4, 'Total', customers, revenue FROM totals
)
SELECT r.tier,
       r.customers,
       round(100.0 * r.customers / nullif(t.customers, 0), 1) AS pct_customers,
       r.revenue,
       round(100.0 * r.revenue / nullif(t.revenue, 0), 1) AS pct_revenue
FROM lines AS r
CROSS JOIN totals AS t
ORDER BY r.ord;
\echo 'pct_revenue is of the net total (returns included), so it can differ a little from the'
\echo 'shares, which are of the positive monetary values.'

DROP TABLE demo_customers, demo_thresholds, demo_metrics;
