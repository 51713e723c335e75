-- Correctness guard, part 3: the lifecycle scheme (SPEC §9, §10) against plain SQL. For every
-- customer with a purchase at or before as_of (population `all`), the metrics the stages use
-- are computed here with GROUP BY and the stages with a CASE in the order of SPEC §10, then
-- compared with rfm.customers of the (4l) analysis: the stage and every metric it reads.
-- Any difference raises an error (psql -v ON_ERROR_STOP=1 then exits non-zero).
SET TimeZone = 'UTC';
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench.ref_lifecycle, bench.ext_lifecycle;

CREATE TABLE bench.ref_lifecycle AS
WITH m AS (
  SELECT customer_id,
         count(*) FILTER (WHERE amount >= 0
                            AND ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months') AS frequency,
         count(*) FILTER (WHERE amount >= 0)                                  AS lifetime_orders,
         sum(amount)                                                          AS lifetime_value,
         (timestamptz '2025-12-31 23:59:59+00')::date
           - (min(ordered_at) FILTER (WHERE amount >= 0))::date               AS tenure_days,
         (timestamptz '2025-12-31 23:59:59+00')::date
           - (max(ordered_at) FILTER (WHERE amount >= 0))::date               AS days_since_last
  FROM bench.tx
  WHERE ordered_at <= timestamptz '2025-12-31 23:59:59+00'
  GROUP BY customer_id
  HAVING count(*) FILTER (WHERE amount >= 0) > 0
)
SELECT *,
       CASE WHEN days_since_last > 730                         THEN 'Churned'
            WHEN days_since_last > 365                         THEN 'Lapsed'
            WHEN lifetime_value >= 2000 AND frequency >= 4     THEN 'VIP'
            WHEN lifetime_orders >= 4 AND days_since_last > 180 THEN 'At-Risk'
            WHEN lifetime_orders >= 4                          THEN 'Loyal'
            WHEN lifetime_orders >= 2                          THEN 'Repeat Buyer'
            WHEN tenure_days <= 90                             THEN 'First-Time Buyer'
            ELSE                                                    'One-Time Buyer'
       END AS stage
FROM m;

CREATE TABLE bench.ext_lifecycle AS
SELECT customer_key, segment::text AS stage, frequency, lifetime_orders, lifetime_value::numeric AS lifetime_value,
       tenure_days, days_since_last
FROM rfm.customers((
  SELECT rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months", "scheme": "lifecycle"}')
  FROM bench.tx
  WHERE ordered_at <= timestamptz '2025-12-31 23:59:59+00'
));

\echo 'Lifecycle stages: plain SQL (GROUP BY + CASE) vs rfm.customers with "scheme": "lifecycle"'
SELECT coalesce(r.stage, e.stage) AS stage, coalesce(r.n, 0) AS ref_customers, coalesce(e.n, 0) AS ext_customers,
       CASE WHEN r.n = e.n THEN 'same' ELSE 'DIFFERENT' END AS check
FROM (SELECT stage, count(*) AS n FROM bench.ref_lifecycle GROUP BY stage) r
FULL JOIN (SELECT stage, count(*) AS n FROM bench.ext_lifecycle GROUP BY stage) e USING (stage)
ORDER BY ref_customers DESC;

SELECT count(*) FILTER (WHERE e.customer_key IS NULL) AS lc_missing,
       count(*) FILTER (WHERE c.customer_id IS NULL)  AS lc_extra,
       count(*) FILTER (WHERE c.customer_id IS NOT NULL AND e.customer_key IS NOT NULL
                          AND (e.stage, e.frequency, e.lifetime_orders, e.lifetime_value,
                               e.tenure_days, e.days_since_last)
                              IS DISTINCT FROM
                              (c.stage, c.frequency, c.lifetime_orders, c.lifetime_value,
                               c.tenure_days, c.days_since_last)) AS lc_different,
       count(*) AS lc_customers
FROM bench.ref_lifecycle c
FULL JOIN bench.ext_lifecycle e ON e.customer_key = c.customer_id::text \gset
\echo 'Per customer: plain SQL vs rfm.customers (lifecycle), ' :lc_customers 'customers:' :lc_missing 'missing,' :lc_extra 'extra,' :lc_different 'different'

SELECT (:lc_missing + :lc_extra + :lc_different) = 0 AS lc_ok \gset
\if :lc_ok
\echo 'LIFECYCLE CHECK: PASS'
\else
\echo 'LIFECYCLE CHECK: FAIL'
SELECT c.*, e.*
FROM bench.ref_lifecycle c
FULL JOIN bench.ext_lifecycle e ON e.customer_key = c.customer_id::text
WHERE (e.stage, e.frequency, e.lifetime_orders, e.lifetime_value, e.tenure_days, e.days_since_last)
      IS DISTINCT FROM
      (c.stage, c.frequency, c.lifetime_orders, c.lifetime_value, c.tenure_days, c.days_since_last)
LIMIT 10;
DO $$ BEGIN RAISE EXCEPTION 'rfm.analyze with the lifecycle scheme disagrees with the plain SQL (see above)'; END $$;
\endif
DROP TABLE bench.ref_lifecycle, bench.ext_lifecycle;
