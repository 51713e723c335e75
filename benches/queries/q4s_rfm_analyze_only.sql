-- (4s) The aggregate alone, without an accessor: the size of the rfm.analysis value.
-- Separates the one-pass aggregate (and its final function) from the accessor's work in (4).
SELECT octet_length(
         rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}'))
FROM bench.tx
WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00';
