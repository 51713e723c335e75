-- Correctness guard, part 2: compare the extension with bench.ref_customers (reference.sql).
-- Needs bench.out_rfm_customers, the table written by benchmark query (5a).
SET TimeZone = 'UTC';
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench.cmp_segments;

CREATE TABLE bench.cmp_segments AS
WITH ext AS (
  SELECT segment, customers, revenue
  FROM rfm.summary((
    SELECT rfm.analyze(customer_id, ordered_at, amount,
                       '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}')
    FROM bench.tx
    WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
      AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
  ))
), ref AS (
  SELECT segment, count(*) AS customers, sum(monetary) AS revenue
  FROM bench.ref_customers GROUP BY segment
)
SELECT coalesce(ref.segment, ext.segment)  AS segment,
       coalesce(ref.customers, 0)          AS ref_customers,
       coalesce(ext.customers, 0)          AS ext_customers,
       coalesce(ref.revenue, 0)            AS ref_revenue,
       coalesce(ext.revenue, 0)::numeric   AS ext_revenue,
       pg_typeof(ext.revenue)::text        AS ext_revenue_type
FROM ref FULL JOIN ext ON ext.segment = ref.segment;

\echo 'Per segment: reference SQL vs rfm.summary'
SELECT segment, ref_customers, ext_customers, ref_revenue, ext_revenue,
       CASE WHEN ref_customers = ext_customers
             AND abs(ref_revenue - ext_revenue)
                 <= CASE WHEN ext_revenue_type = 'numeric' THEN 0
                         ELSE 1e-9 * greatest(1, abs(ref_revenue)) END
            THEN 'same' ELSE 'DIFFERENT' END AS check
FROM bench.cmp_segments
ORDER BY ref_customers DESC, segment;

SELECT count(*) AS seg_diff
FROM bench.cmp_segments
WHERE ref_customers <> ext_customers
   OR abs(ref_revenue - ext_revenue)
      > CASE WHEN ext_revenue_type = 'numeric' THEN 0
             ELSE 1e-9 * greatest(1, abs(ref_revenue)) END \gset

-- per customer: every field that both sides define
SELECT count(*) FILTER (WHERE e.customer_key IS NULL) AS missing_in_ext,
       count(*) FILTER (WHERE c.customer_id IS NULL)  AS extra_in_ext,
       count(*) FILTER (WHERE c.customer_id IS NOT NULL AND e.customer_key IS NOT NULL
                          AND (e.recency_days::numeric, e.frequency::numeric, e.monetary::numeric,
                               e.r::int, e.f::int, e.m::int, e.fm::int, e.segment::text)
                              IS DISTINCT FROM
                              (c.recency_days::numeric, c.frequency::numeric, c.monetary,
                               c.r, c.f, c.m, c.fm, c.segment)) AS different
FROM bench.ref_customers c
FULL JOIN bench.out_rfm_customers e ON e.customer_key = c.customer_id::text \gset
\echo 'Per customer: reference SQL vs rfm.customers (table of query 5a):' :missing_in_ext 'missing,' :extra_in_ext 'extra,' :different 'different'

SELECT (:seg_diff + :missing_in_ext + :extra_in_ext + :different) = 0 AS guard_ok \gset
\if :guard_ok
\echo 'CORRECTNESS GUARD: PASS'
\else
\echo 'CORRECTNESS GUARD: FAIL'
SELECT c.customer_id, c.recency_days, c.frequency, c.monetary, c.r, c.f, c.m, c.fm, c.segment,
       e.recency_days AS ext_recency_days, e.frequency AS ext_frequency, e.monetary AS ext_monetary,
       e.r AS ext_r, e.f AS ext_f, e.m AS ext_m, e.fm AS ext_fm, e.segment AS ext_segment
FROM bench.ref_customers c
FULL JOIN bench.out_rfm_customers e ON e.customer_key = c.customer_id::text
WHERE (e.recency_days::numeric, e.frequency::numeric, e.monetary::numeric,
       e.r::int, e.f::int, e.m::int, e.fm::int, e.segment::text)
      IS DISTINCT FROM
      (c.recency_days::numeric, c.frequency::numeric, c.monetary, c.r, c.f, c.m, c.fm, c.segment)
LIMIT 10;
DO $$ BEGIN RAISE EXCEPTION 'rfm.analyze disagrees with the reference SQL (see above)'; END $$;
\endif
