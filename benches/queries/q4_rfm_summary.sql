-- (4) The extension: one aggregate pass, then the per-segment summary accessor.
SELECT *
FROM rfm.summary((
  SELECT rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}')
  FROM bench.tx
  WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'
));
