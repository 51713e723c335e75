-- (3) The idiomatic hand-written RFM query: per-customer metrics of active customers
-- (at least one purchase, amount >= 0, in the window), NTILE(5) scores, FM = ceil((F+M)/2),
-- the 'standard' grid of SPEC section 5 as a CASE, then one row per segment.
WITH metrics AS (
  SELECT customer_id,
         (timestamptz '2025-12-31 23:59:59+00')::date
           - (max(ordered_at) FILTER (WHERE amount >= 0))::date AS recency_days,
         count(*) FILTER (WHERE amount >= 0)                    AS frequency,
         sum(amount)                                            AS monetary
  FROM bench.tx
  WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
  GROUP BY customer_id
  HAVING count(*) FILTER (WHERE amount >= 0) > 0
), scored AS (
  SELECT *,
         ntile(5) OVER (ORDER BY recency_days DESC) AS r,
         ntile(5) OVER (ORDER BY frequency)         AS f,
         ntile(5) OVER (ORDER BY monetary)          AS m
  FROM metrics
), graded AS (
  SELECT *, ceil((f + m) / 2.0)::int AS fm FROM scored
)
SELECT segment, count(*) AS customers, sum(monetary) AS revenue
FROM (
  SELECT monetary,
         CASE
           WHEN r = 5 AND fm = 1           THEN 'New Customers'
           WHEN r = 5 AND fm = 2           THEN 'Potential Loyalists'
           WHEN r = 5 AND fm = 3           THEN 'Loyal'
           WHEN r = 5                      THEN 'Champions'
           WHEN r = 4 AND fm = 1           THEN 'Promising'
           WHEN r = 4 AND fm IN (2, 3)     THEN 'Potential Loyalists'
           WHEN r = 4 AND fm = 4           THEN 'Loyal'
           WHEN r = 4                      THEN 'Champions'
           WHEN r = 3 AND fm = 1           THEN 'Promising'
           WHEN r = 3 AND fm = 2           THEN 'Need Attention'
           WHEN r = 3 AND fm = 3           THEN 'Potential Loyalists'
           WHEN r = 3                      THEN 'Loyal'
           WHEN r = 2 AND fm = 1           THEN 'About to Sleep'
           WHEN r = 2 AND fm IN (2, 3)     THEN 'Need Attention'
           WHEN r = 2                      THEN 'At Risk'
           WHEN fm = 1                     THEN 'Lost'
           WHEN fm = 2                     THEN 'Hibernating'
           WHEN fm = 3                     THEN 'At Risk'
           ELSE                                 'Can''t Lose Them'
         END AS segment
  FROM graded
) g
GROUP BY segment
ORDER BY segment;
