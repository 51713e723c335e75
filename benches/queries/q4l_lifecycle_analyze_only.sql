-- (4l) The aggregate alone with the built-in `lifecycle` scheme (SPEC §10): population `all`,
-- so the state keeps the full customer metrics (SPEC §9) of every customer and also adds the
-- rows before the window (first purchase, lifetime orders and value). It therefore reads every
-- row up to as_of, not only the window's; the filter removes no row of bench.tx and stands
-- where (4s) has the window's, so that both pay for one comparison per row.
SELECT octet_length(
         rfm.analyze(customer_id, ordered_at, amount,
                     '{"as_of": "2025-12-31 23:59:59+00", "period": "12 months", "scheme": "lifecycle"}'))
FROM bench.tx
WHERE ordered_at <= timestamptz '2025-12-31 23:59:59+00';
