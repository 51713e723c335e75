-- (5a) The extension's per-customer output (one row per active customer, with scores,
-- RFM code, segment and ABC tier) written to a table.
CREATE TABLE bench.out_rfm_customers AS
SELECT *
FROM rfm.customers((
  SELECT rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}')
  FROM bench.tx
  WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
));
