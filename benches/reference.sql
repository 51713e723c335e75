-- Correctness guard: an independent pure-SQL computation of the SPEC semantics on bench.tx,
-- compared with the extension's rfm.summary (per segment: customers, revenue) and with the
-- per-customer table written by benchmark query (5a). Any difference raises an error
-- (psql -v ON_ERROR_STOP=1 then exits non-zero).
--
-- SPEC: a row counts when as_of - period < ordered_at <= as_of; active = at least one
-- purchase (amount >= 0) in the window; recency_days = as_of::date - latest purchase::date
-- (session TimeZone, UTC in the benchmark cluster); frequency = purchase rows; monetary =
-- sum of all amounts in the window. Thresholds t_1..t_4 = percentile_cont(0.2, 0.4, 0.6,
-- 0.8) of each metric (as double precision) over active customers; c = #{k : v > t_k};
-- r = 5 - c (lower recency is better), f = 1 + c, m = 1 + c; fm = ceil((f + m) / 2);
-- segment from the 'standard' R x FM grid (written here as a table, not as the CASE of the
-- hand-written queries).
SET TimeZone = 'UTC';
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench.ref_customers, bench.ref_grid;

CREATE TABLE bench.ref_grid (r int, fm int, segment text, PRIMARY KEY (r, fm));
INSERT INTO bench.ref_grid VALUES
  (5,1,'New Customers'),(5,2,'Potential Loyalists'),(5,3,'Loyal'),(5,4,'Champions'),(5,5,'Champions'),
  (4,1,'Promising'),(4,2,'Potential Loyalists'),(4,3,'Potential Loyalists'),(4,4,'Loyal'),(4,5,'Champions'),
  (3,1,'Promising'),(3,2,'Need Attention'),(3,3,'Potential Loyalists'),(3,4,'Loyal'),(3,5,'Loyal'),
  (2,1,'About to Sleep'),(2,2,'Need Attention'),(2,3,'Need Attention'),(2,4,'At Risk'),(2,5,'At Risk'),
  (1,1,'Lost'),(1,2,'Hibernating'),(1,3,'At Risk'),(1,4,'Can''t Lose Them'),(1,5,'Can''t Lose Them');

CREATE TABLE bench.ref_customers AS
WITH w AS (
  SELECT * FROM bench.tx
  WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
), purchases AS (
  SELECT customer_id, max(ordered_at) AS last_purchase, count(*) AS frequency
  FROM w WHERE amount >= 0 GROUP BY customer_id
), totals AS (
  SELECT customer_id, sum(amount) AS monetary FROM w GROUP BY customer_id
), metrics AS (
  SELECT p.customer_id,
         (timestamptz '2025-12-31 23:59:59+00')::date - p.last_purchase::date AS recency_days,
         p.frequency, t.monetary
  FROM purchases p JOIN totals t USING (customer_id)
), thresholds AS (
  SELECT percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY recency_days::float8) AS t_r,
         percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY frequency::float8)    AS t_f,
         percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY monetary::float8)     AS t_m
  FROM metrics
), scored AS (
  SELECT m.*,
         5 - (SELECT count(*) FROM unnest(t.t_r) k WHERE m.recency_days::float8 > k)::int AS r,
         1 + (SELECT count(*) FROM unnest(t.t_f) k WHERE m.frequency::float8 > k)::int    AS f,
         1 + (SELECT count(*) FROM unnest(t.t_m) k WHERE m.monetary::float8 > k)::int     AS m
  FROM metrics m CROSS JOIN thresholds t
)
SELECT s.*, ceil((s.f + s.m) / 2.0)::int AS fm, g.segment
FROM scored s JOIN bench.ref_grid g ON g.r = s.r AND g.fm = ceil((s.f + s.m) / 2.0)::int;

ANALYZE bench.ref_customers;
