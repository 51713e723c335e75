-- (2) Hand-written per-customer metrics, no scoring. The outer aggregate reads every column
-- so the planner cannot drop the inner aggregates (it replaces unreferenced subquery outputs
-- by NULL), while only one row is sent to the client.
SELECT count(*), max(last_purchase), sum(frequency), sum(monetary)
FROM (
  SELECT customer_id,
         max(ordered_at) FILTER (WHERE amount >= 0) AS last_purchase,
         count(*) FILTER (WHERE amount >= 0)        AS frequency,
         sum(amount)                                AS monetary
  FROM bench.tx
  WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
  GROUP BY customer_id
) s;
