-- Sample data for rfm_segmentation: a made-up online shop, generated in plain SQL.
--
--   psql -X -v ON_ERROR_STOP=1 -d DB -f examples/sample_data.sql
--
-- Creates (replacing any earlier copy) schema `sample` with
--   sample.customers(customer_id bigint primary key, email text, region text, signup_date date)
--   sample.transactions(order_id bigint, customer_id bigint, ordered_at timestamptz,
--                       amount numeric(12,2))
-- About 50,000 customers and 500,000 transaction rows over the two years
-- 2024-01-01 00:00:00+00 .. 2025-12-31 23:59:59+00 (fixed dates, so the output never changes;
-- the demo uses as_of = 2025-12-31 23:59:59+00). It looks like a real shop:
--   * a long tail of one-time buyers (about 40% of customers order once in the two years),
--     light, medium and regular buyers, and about 2% heavy buyers with 50+ orders;
--   * customers with different lifetimes: existing customers (signed up 2019-2023) buy from
--     the start, new ones sign up during the two years and start buying then, and churned
--     ones stop buying at some point;
--   * seasonality: November/December peaks (Black Friday to Cyber Monday above all), a
--     summer dip, busier weekends and about 15% growth a year;
--   * basket sizes that are log-normal around a per-customer typical basket, with a few
--     big spenders;
--   * about 3% returns: a row with the same order_id and customer as a purchase, 1-41 days
--     later, whose negative amount is the purchase amount (full refund) or part of it.
--
-- Deterministic: every random draw comes from random() after setseed(), in single-table
-- scans of freshly made temporary tables (no parallel workers), so the numbers are the
-- same on every run. Takes a few seconds.

SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;
SET TIME ZONE 'UTC';

BEGIN;

DROP SCHEMA IF EXISTS sample CASCADE;
CREATE SCHEMA sample;
COMMENT ON SCHEMA sample IS 'Generated sample shop data for the rfm_segmentation demo (examples/sample_data.sql)';

-- setseed() in a DO block so that psql prints nothing for it
DO $$ BEGIN PERFORM setseed(0.2025); END $$;

-- 1. Per-customer random draws, evaluated left to right, row by row.
CREATE TEMP TABLE gen_draws ON COMMIT DROP AS
SELECT g::bigint AS customer_id,
       random() AS u_tier, random() AS u_count, random() AS u_new, random() AS u_signup,
       random() AS u_lag, random() AS u_churn, random() AS u_churn_at, random() AS u_region,
       random() AS u_domain, random() AS u_mu1, random() AS u_mu2, random() AS u_big
FROM generate_series(1, 50000) AS g;

-- 2. Customer profiles: buyer tier, number of orders, lifetime, typical basket.
CREATE TEMP TABLE gen_profile ON COMMIT DROP AS
WITH tiered AS (
    SELECT d.*,
           CASE WHEN u_tier < 0.40 THEN 'one-time'
                WHEN u_tier < 0.66 THEN 'light'
                WHEN u_tier < 0.86 THEN 'medium'
                WHEN u_tier < 0.98 THEN 'regular'
                ELSE 'heavy' END AS tier
    FROM gen_draws AS d
), lifetimes AS (
    SELECT t.*,
           -- heavy and regular buyers are mostly long-standing customers
           u_new < CASE tier WHEN 'heavy' THEN 0.20 WHEN 'regular' THEN 0.35 ELSE 0.55 END AS is_new,
           u_churn < CASE tier WHEN 'one-time' THEN 0.00 WHEN 'light' THEN 0.50
                               WHEN 'medium' THEN 0.35 WHEN 'regular' THEN 0.20
                               ELSE 0.10 END AS churned
    FROM tiered AS t
), signed_up AS (
    SELECT l.*,
           CASE WHEN is_new THEN
                    -- acquisition grows over time; good customers joined in the first year
                    date '2024-01-01' + floor(CASE WHEN tier IN ('heavy', 'regular')
                                                   THEN 365 * u_signup
                                                   ELSE 730 * power(u_signup, 0.85) END)::int
                ELSE date '2019-01-01' + floor(1826 * u_signup)::int
           END AS signup_date
    FROM lifetimes AS l
), spans AS (
    SELECT s.*,
           CASE WHEN is_new
                THEN least(signup_date + floor(30 * power(u_lag, 3))::int, date '2025-12-31')
                ELSE date '2024-01-01' END AS first_day
    FROM signed_up AS s
)
SELECT customer_id, tier, signup_date, first_day,
       CASE WHEN churned
            -- stops buying somewhere in its span (heavy and regular ones later)
            THEN first_day + floor((date '2025-12-31' - first_day)
                     * CASE WHEN tier IN ('heavy', 'regular') THEN 0.5 + 0.5 * u_churn_at
                            ELSE 0.1 + 0.8 * u_churn_at END)::int
            ELSE date '2025-12-31' END AS last_day,
       CASE tier WHEN 'one-time' THEN 1
                 WHEN 'light' THEN 2 + floor(4 * u_count)
                 WHEN 'medium' THEN 6 + floor(15 * power(u_count, 1.3))
                 WHEN 'regular' THEN 21 + floor(29 * power(u_count, 1.6))
                 ELSE 50 + floor(200 * power(u_count, 2)) END::int AS n_orders,
       CASE WHEN u_region < 0.34 THEN 'North America'
            WHEN u_region < 0.64 THEN 'Europe'
            WHEN u_region < 0.84 THEN 'Asia Pacific'
            WHEN u_region < 0.94 THEN 'Latin America'
            ELSE 'Middle East & Africa' END AS region,
       'customer.' || lpad(customer_id::text, 6, '0') || '@'
           || CASE WHEN u_domain < 0.45 THEN 'example.com'
                   WHEN u_domain < 0.70 THEN 'example.net'
                   WHEN u_domain < 0.90 THEN 'example.org'
                   ELSE 'shop.example' END AS email,
       -- typical basket: log-normal around 45 with a 3% group of big spenders (x3.7)
       ln(45) + 0.5 * sqrt(-2 * ln(1 - u_mu1)) * cos(2 * pi() * u_mu2)
           + CASE WHEN u_big < 0.03 THEN 1.3 ELSE 0 END AS basket_mu
FROM spans;

-- 3. Calendar of the two years with relative order volume per day, and its running total,
--    so a uniform draw picks a day with probability proportional to its weight.
CREATE TEMP TABLE gen_days ON COMMIT DROP AS
WITH days AS (
    SELECT day::date AS day FROM generate_series(date '2024-01-01', date '2025-12-31', interval '1 day') AS day
), black_friday AS (
    -- the day after the fourth Thursday of November
    SELECT y, nov1 + ((4 - extract(dow FROM nov1)::int + 7) % 7) + 21 + 1 AS bf
    FROM (SELECT y, make_date(y, 11, 1) AS nov1 FROM generate_series(2024, 2025) AS y) AS n
), weighted AS (
    SELECT d.day,
           (CASE extract(month FROM d.day)::int
                 WHEN 1 THEN 0.85 WHEN 2 THEN 0.85 WHEN 3 THEN 0.95 WHEN 4 THEN 1.00
                 WHEN 5 THEN 1.00 WHEN 6 THEN 0.80 WHEN 7 THEN 0.72 WHEN 8 THEN 0.78
                 WHEN 9 THEN 1.00 WHEN 10 THEN 1.05 WHEN 11 THEN 1.40 ELSE 1.70 END)
           * CASE extract(isodow FROM d.day)::int WHEN 6 THEN 1.10 WHEN 7 THEN 1.15 ELSE 1.00 END
           * CASE WHEN d.day BETWEEN b.bf AND b.bf + 3 THEN 2.50            -- Black Friday .. Cyber Monday
                  WHEN extract(month FROM d.day) = 12 AND extract(day FROM d.day) >= 25 THEN 0.60
                  ELSE 1.00 END
           * (1 + 0.15 * (d.day - date '2024-01-01') / 365.0)             -- growth
           AS weight
    FROM days AS d
    JOIN black_friday AS b ON b.y = extract(year FROM d.day)
)
SELECT day,
       (sum(weight) OVER (ORDER BY day) - weight)::float8 AS cum_lo,
       (sum(weight) OVER (ORDER BY day))::float8 AS cum_hi
FROM weighted;

-- 4. Per-order random draws: one row per order, customer by customer.
CREATE TEMP TABLE gen_order_draws ON COMMIT DROP AS
SELECT p.customer_id, k, random() AS u_day, random() AS u_sec, random() AS u_a1,
       random() AS u_a2, random() AS u_ret, random() AS u_ret_lag, random() AS u_ret_sec,
       random() AS u_part, random() AS u_frac
FROM gen_profile AS p
CROSS JOIN LATERAL generate_series(1, p.n_orders) AS k;

-- All random draws are made; statistics give the joins below a sane plan (temporary
-- tables are never analyzed automatically).
ANALYZE gen_profile;
ANALYZE gen_days;
ANALYZE gen_order_draws;

-- 5. Purchases: a day drawn from the customer's lifetime by the calendar weights, a time of
--    day, and a log-normal amount around the customer's typical basket (a bit bigger in
--    November and December).
CREATE TEMP TABLE gen_purchases ON COMMIT DROP AS
WITH calendar AS MATERIALIZED (
    -- the running totals as one array (width_bucket() does a binary search in it), built
    -- here rather than read from a table so that it is never a compressed value
    SELECT array_agg(cum_lo ORDER BY day) AS lo FROM gen_days
), lifetime AS (
    SELECT p.customer_id, p.basket_mu, f.cum_lo AS lo, l.cum_hi AS hi
    FROM gen_profile AS p
    JOIN gen_days AS f ON f.day = p.first_day
    JOIN gen_days AS l ON l.day = p.last_day
), placed AS (
    SELECT o.*, s.basket_mu,
           date '2024-01-01' - 1
               + width_bucket(s.lo + o.u_day * (s.hi - s.lo), (SELECT lo FROM calendar)) AS day
    FROM gen_order_draws AS o
    JOIN lifetime AS s USING (customer_id)
)
SELECT row_number() OVER (ORDER BY ordered_at, customer_id, k) + 1000000 AS order_id, *
FROM (
    SELECT customer_id, k,
           (day::timestamp + floor(86400 * u_sec) * interval '1 second') AT TIME ZONE 'UTC' AS ordered_at,
           round(least(9999, greatest(1.5,
               exp(basket_mu + 0.6 * sqrt(-2 * ln(1 - u_a1)) * cos(2 * pi() * u_a2))
               * CASE WHEN extract(month FROM day) IN (11, 12) THEN 1.12 ELSE 1 END))::numeric, 2) AS amount,
           u_ret, u_ret_lag, u_ret_sec, u_part, u_frac
    FROM placed
) AS purchases;

-- 6. The tables.
CREATE TABLE sample.customers (
    customer_id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    region text NOT NULL,
    signup_date date NOT NULL
);
COMMENT ON TABLE sample.customers IS 'Generated shop customers (examples/sample_data.sql)';

INSERT INTO sample.customers (customer_id, email, region, signup_date)
SELECT customer_id, email, region, signup_date FROM gen_profile ORDER BY customer_id;

CREATE TABLE sample.transactions (
    order_id bigint NOT NULL,
    customer_id bigint NOT NULL REFERENCES sample.customers,
    ordered_at timestamptz NOT NULL,
    amount numeric(12,2) NOT NULL
);
COMMENT ON TABLE sample.transactions IS
    'Generated orders (amount >= 0) and returns (amount < 0, same order_id as the purchase they refund)';

INSERT INTO sample.transactions (order_id, customer_id, ordered_at, amount)
SELECT order_id, customer_id, ordered_at, amount
FROM (
    SELECT order_id, customer_id, ordered_at, amount FROM gen_purchases
    UNION ALL
    -- returns: about 3% of purchases, 1-41 days later (only those that happened by the
    -- end of the data), three in four refunded in full, the rest in part
    SELECT order_id, customer_id, returned_at,
           -CASE WHEN u_part < 0.75 THEN amount
                 ELSE greatest(0.01, round(amount * (0.2 + 0.6 * u_frac)::numeric, 2)) END
    FROM (
        SELECT *, ordered_at + (1 + floor(40 * power(u_ret_lag, 2))) * interval '1 day'
                             + floor(43200 * u_ret_sec) * interval '1 second' AS returned_at
        FROM gen_purchases
        WHERE u_ret < 0.031
    ) AS r
    WHERE returned_at <= timestamptz '2025-12-31 23:59:59+00'
) AS t
ORDER BY ordered_at, order_id, amount DESC;

CREATE INDEX transactions_ordered_at_idx ON sample.transactions (ordered_at);
CREATE INDEX transactions_customer_id_idx ON sample.transactions (customer_id);

COMMIT;

ANALYZE sample.customers;
ANALYZE sample.transactions;

RESET max_parallel_workers_per_gather;
RESET client_min_messages;
