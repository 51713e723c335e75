-- RFM segmentation of the sample shop (examples/sample_data.sql) with rfm_segmentation:
-- one rfm.analyze pass, then its accessors.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f examples/demo.sql

\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
\pset null ''
SET TIME ZONE 'UTC';

CREATE TEMP TABLE demo AS
SELECT rfm.analyze(customer_id, ordered_at, amount,
                   '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}') AS a
FROM sample.transactions;

\echo
\echo '== Overview'
SELECT * FROM rfm.overview((SELECT a FROM demo));

\echo
\echo '== Segmentation setup (score ranges, lower_bound < value <= upper_bound, shown to 2 decimals; recency in days, lower is better)'
SELECT metric, score, round(lower_bound::numeric, 2) AS lower_bound,
       round(upper_bound::numeric, 2) AS upper_bound, customers
FROM rfm.thresholds((SELECT a FROM demo))
ORDER BY array_position(ARRAY['recency', 'frequency', 'monetary'], metric), score DESC;

\echo
\echo '== Segment summary (standard scheme)'
SELECT segment, customers, pct_customers AS "% customers", revenue, pct_revenue AS "% revenue",
       round(avg_revenue, 2) AS avg_revenue, avg_frequency, avg_recency_days
FROM rfm.summary((SELECT a FROM demo));

\echo
\echo '== R x FM grid (customers)'
SELECT 'R' || r AS "R \ FM",
       max(customers) FILTER (WHERE fm = 1) AS fm1, max(customers) FILTER (WHERE fm = 2) AS fm2,
       max(customers) FILTER (WHERE fm = 3) AS fm3, max(customers) FILTER (WHERE fm = 4) AS fm4,
       max(customers) FILTER (WHERE fm = 5) AS fm5
FROM rfm.grid((SELECT a FROM demo)) GROUP BY r ORDER BY r DESC;

\echo
\echo '== ABC tiers (80/15/5 of revenue)'
SELECT abc_tier AS tier, count(*) AS customers,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS "% customers",
       sum(monetary) AS revenue,
       round(100.0 * sum(monetary) / sum(sum(monetary)) OVER (), 2) AS "% revenue"
FROM rfm.customers((SELECT a FROM demo))
GROUP BY abc_tier ORDER BY abc_tier;

\echo
\echo '== Lifecycle stages (built-in scheme "lifecycle": every customer with a purchase, first match wins)'
SELECT segment AS stage, customers, pct_customers AS "% customers", revenue
FROM rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount,
                                     '{"as_of": "2025-12-31", "scheme": "lifecycle"}')
                  FROM sample.transactions));

\echo
\echo '== A managed segmentation: refreshed as of November, then again with December''s orders'
SELECT rfm.create_segmentation('demo_shop', 'sample.transactions', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-11-30 23:59:59+00"}') AS segmentation_id;
SELECT rfm.refresh('demo_shop') AS first_run;
SELECT rfm.alter_segmentation('demo_shop', options => '{"as_of": "2025-12-31 23:59:59+00"}');
SELECT rfm.refresh('demo_shop') AS second_run;
SELECT name, kind, mode, last_as_of, customers FROM rfm.segmentation_catalog;

\echo
\echo '== Movement between the two runs (largest flows; empty from = new customers, empty to = left)'
SELECT from_segment, to_segment, customers, revenue
FROM rfm.segment_movement
WHERE segmentation = 'demo_shop' AND run_id = (SELECT max(run_id) FROM rfm.segment_movement)
ORDER BY customers DESC LIMIT 12;

\echo
\echo '== Trend: customers per segment in each run'
SELECT segment,
       max(customers) FILTER (WHERE as_of < '2025-12-01') AS november,
       max(customers) FILTER (WHERE as_of >= '2025-12-01') AS december
FROM rfm.segment_trend WHERE segmentation = 'demo_shop'
GROUP BY position, segment ORDER BY position;
