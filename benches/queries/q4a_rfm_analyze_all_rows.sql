-- (4a) The plain aggregate alone over the same rows as (4l): every row up to as_of. Rows
-- before the window are only seen (their customers counted as excluded), so this is what
-- (4l) costs without the lifecycle scheme and its full customer metrics.
SELECT octet_length(
         rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months"}'))
FROM bench.tx
WHERE ordered_at <= timestamptz '2025-12-31 23:59:59+00';
