-- Amounts of the scales money computed in SQL has: a numeric(30,18) column, a quotient of
-- scale 20, a numeric(60,40). Totals stay exact (equal to SUM(amount)), serially and in a
-- parallel plan. Before: 22003 "amount is too large or has too many decimal places" for
-- all three. (Decimals past the sixth that are zeros are not kept; significant ones are.)
SET TimeZone = 'UTC';
CREATE TABLE ns_tx AS
SELECT 1 + (i * 7919) % 400 AS k, timestamptz '2025-12-31' - ((i * 104729) % 300) * interval '1 day' AS t,
       (i % 1000)::numeric / 100 AS quotient,
       (12.3 + i % 7)::numeric(30, 18) AS wide,
       (1.5 + i % 3)::numeric(60, 40) AS very_wide
FROM generate_series(1, 20000) i;
SELECT scale(quotient) AS quotient_scale, scale(wide) AS wide_scale, scale(very_wide) AS very_wide_scale
FROM ns_tx LIMIT 1;
-- every customer's monetary equals SUM(amount) of its rows, for each column
CREATE FUNCTION rfm_test.differing(a rfm.analysis, col text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM rfm.customers($1) c
                    FULL JOIN (SELECT k::text AS key, sum(%I) AS total FROM ns_tx GROUP BY 1) s ON s.key = c.customer_key
                    WHERE c.monetary IS DISTINCT FROM s.total', col) INTO n USING a;
    RETURN n;
END $$;
SELECT rfm_test.differing(rfm.analyze(k, t, quotient, '{"as_of": "2025-12-31"}'), 'quotient') AS quotient_differing,
       rfm_test.differing(rfm.analyze(k, t, wide, '{"as_of": "2025-12-31"}'), 'wide') AS wide_differing,
       rfm_test.differing(rfm.analyze(k, t, very_wide, '{"as_of": "2025-12-31"}'), 'very_wide') AS very_wide_differing
FROM ns_tx;
SELECT (SELECT total_revenue FROM rfm.overview(rfm.analyze(k, t, wide, '{"as_of": "2025-12-31"}')))
       = sum(wide) AS total_equals_sum, sum(wide) AS sum_of_wide
FROM ns_tx;
-- the same value in a parallel plan with workers as serially
SELECT rfm.analyze(k, t, wide, '{"as_of": "2025-12-31"}')::text AS serial FROM ns_tx \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT rfm.analyze(k, t, wide, '{"as_of": "2025-12-31"}')::text = :'serial' AS parallel_equals_serial FROM ns_tx;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
-- significant decimals past the sixth are kept exactly; so many that the totals cannot hold
-- them is still a clear error
SELECT (SELECT total_revenue FROM rfm.overview(rfm.analyze(k, t, (quotient + 0.0000001)::numeric(20, 7), '{"as_of": "2025-12-31"}')))
       = sum((quotient + 0.0000001)::numeric(20, 7)) AS a_seventh_decimal_counts
FROM ns_tx;
SELECT rfm_test.error_of($$SELECT rfm.analyze(k, t, wide + 1e-30, '{"as_of": "2025-12-31"}') FROM ns_tx$$);
DROP FUNCTION rfm_test.differing(rfm.analysis, text);
DROP TABLE ns_tx;
