-- Deterministic synthetic transactions for the rfm_segmentation benchmark.
--
--   psql -X -v ON_ERROR_STOP=1 -v ROWS=10000000 -f benches/generate.sql
--
-- Creates bench.tx(customer_id bigint, ordered_at timestamptz, amount numeric(12,2)) with
-- exactly :ROWS rows, no indexes (every benchmark query is a full scan), then VACUUM ANALYZE.
--
-- Shape (all parameters derive from :ROWS):
--   * customers: ids 1..M with M = 0.14 * ROWS. A row's customer follows a Zipf-like law:
--     the share of rows of customer i is proportional to 1/i, flattened to a plateau for the
--     first H = ROWS/20000 ids (the "few heavy buyers"). About ROWS/9 distinct customers,
--     about a third of them buy once in the two years, the top 1 % hold ~45 % of the rows.
--   * ordered_at: uniform over the two years 2024-01-01 00:00:00+00 .. 2025-12-31 23:59:59+00
--     at one-second resolution, so about half the rows fall in the last 12 months.
--   * amount: 5 + exp(U(0, 6.5)) rounded to cents (about 6 .. 670); 3 % of the rows are
--     returns, stored as the negated amount.
-- setseed() plus a serial plan makes the data identical run to run (random() is called in a
-- fixed order); parallel workers would each have their own generator.
\if :{?ROWS}
\else
\set ROWS 10000000
\endif

SET max_parallel_workers_per_gather = 0;
SET TimeZone = 'UTC';
SET client_min_messages = warning;

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.tx (
    customer_id bigint      NOT NULL,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(12,2) NOT NULL
);

SELECT setseed(0.20251231) AS seeded \gset

INSERT INTO bench.tx (customer_id, ordered_at, amount)
SELECT CASE WHEN r.u_cust < p.p0
            THEN 1 + floor(r.u_cust / p.p0 * p.h)
            ELSE 1 + floor(p.h * exp((r.u_cust - p.p0) / (1 - p.p0) * ln(p.m / p.h)))
       END::bigint,
       timestamptz '2024-01-01 00:00:00+00' + floor(r.u_time * 63158400) * interval '1 second',
       CASE WHEN r.u_ret < 0.03 THEN -1 ELSE 1 END
         * round((5 + exp(r.u_amt * 6.5))::numeric, 2)
FROM (SELECT greatest(1, round(:ROWS * 0.14))::float8        AS m,
             greatest(1, round(:ROWS / 20000.0))::float8     AS h,
             1 / (1 + ln(greatest(2, round(:ROWS * 0.14)) / greatest(1, round(:ROWS / 20000.0)))) AS p0
     ) p,
     LATERAL (SELECT random() AS u_cust, random() AS u_time, random() AS u_amt, random() AS u_ret
              FROM generate_series(1, :ROWS) g) r;

VACUUM (ANALYZE) bench.tx;
