-- rfm.clv_fit (SPEC §12): the per-customer inputs on a hand-checked example, both fits and
-- their readers, options and their errors, NULLs, forged values, a fit that does not
-- converge, and the same model under a serial and a parallel plan.
SET TimeZone = 'UTC';
SET max_parallel_workers_per_gather = 0;
-- a simulated shop of 600 customers (rfm_test.simulated_shop: Poisson purchases while
-- alive, drop-out after a purchase; seeded, serial plan)
SELECT setseed(0.42) AS seeded;
CREATE TABLE clv_tx AS
SELECT customer_id::integer AS customer_id, ordered_at, amount FROM rfm_test.simulated_shop(600);
-- hand-made customers: 9001 orders twice on its first day, on 2024-03-01 (twice, one
-- order a return) and on the as_of date itself (a bare date is the end of that day), and
-- once after as_of; 9002 buys once; 9003's repeat purchase is worth 0 (left out of the
-- spend model, flagged); 9004 has only a return; NULL rows are ignored
INSERT INTO clv_tx VALUES
    (9001, '2024-01-10 09:00', 30), (9001, '2024-01-10 18:00', 12.50), (9001, '2024-03-01 10:00', 40),
    (9001, '2024-03-01 11:00', -15), (9001, '2024-03-01 12:00', 20), (9001, '2024-12-31 23:30', 10),
    (9001, '2025-01-05', 99), (9002, '2024-06-30', 25), (9003, '2024-02-01', 10), (9003, '2024-02-08', 0),
    (9004, '2024-05-05', -20), (NULL, '2024-05-05', 20), (9005, NULL, 20), (9005, '2024-05-05', NULL);
CREATE TABLE clv_m AS
SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31"}') AS m FROM clv_tx;

-- x = purchase days - 1, t_x and T in weeks, avg_spend = mean of the repeat days' totals:
-- 9001: days 2024-01-10, 03-01 and 12-31: x = 2, t_x = 356 / 7, T = 356 / 7, repeat days
-- 60 (40 + 20; the return left out) and 10: avg_spend 35
SELECT customer_key, x, round(t_x::numeric, 4) AS t_x, round(t::numeric, 4) AS t, avg_spend,
       round(p_alive::numeric, 6) AS p_alive, round(expected_purchases::numeric, 6) AS expected_purchases,
       round(expected_avg_spend::numeric, 4) AS expected_avg_spend, round(clv::numeric, 4) AS clv, flag
FROM rfm.clv_customers((SELECT m FROM clv_m), 52)
WHERE customer_key IN ('1', '2', '3', '9001', '9002', '9003', '9004', '9005') ORDER BY customer_key;
SELECT model, parameter, round(value::numeric, 4) AS value, round(std_error::numeric, 4) AS std_error
FROM rfm.clv_parameters((SELECT m FROM clv_m));
SELECT model, customers, excluded_customers, round(log_likelihood::numeric, 4) AS log_likelihood,
       converged, as_of, time_unit, penalizer
FROM rfm.clv_fit_info((SELECT m FROM clv_m));
SELECT count(*) AS customers, count(*) FILTER (WHERE x > 0) AS repeat_customers,
       count(*) FILTER (WHERE flag IS NOT NULL) AS flagged,
       bool_and(p_alive BETWEEN 0 AND 1) AS p_alive_is_a_probability,
       bool_and(expected_purchases >= 0) AS expected_purchases_not_negative
FROM rfm.clv_customers((SELECT m FROM clv_m), 52);
-- the CLV without discount is the expected purchases times the expected spend; with a
-- discount it is less; a horizon of 0 predicts nothing
SELECT bool_and(abs(clv - expected_purchases * expected_avg_spend) < 1e-9 * (1 + clv)) AS undiscounted_is_the_product
FROM rfm.clv_customers((SELECT m FROM clv_m), 26) WHERE clv IS NOT NULL;
SELECT bool_and(d.clv < u.clv) AS discounted_is_less
FROM rfm.clv_customers((SELECT m FROM clv_m), 26) u
JOIN rfm.clv_customers((SELECT m FROM clv_m), 26, 0.01) d USING (customer_key) WHERE u.clv > 0;
SELECT max(expected_purchases) AS nothing, max(clv) AS no_value FROM rfm.clv_customers((SELECT m FROM clv_m), 0);

-- time units: T in days, weeks and months of 30 days (the same customer)
SELECT time_unit, (SELECT t FROM rfm.clv_customers(rfm.clv_fit(customer_id, ordered_at, amount,
           jsonb_build_object('as_of', '2024-12-31', 'time_unit', time_unit)), 1) WHERE customer_key = '9001') AS t
FROM clv_tx, (VALUES ('day'), ('week'), ('month')) u(time_unit) GROUP BY time_unit ORDER BY time_unit;
-- text keys, double precision amounts, dates: the same inputs
SELECT customer_key, x, t_x, t, avg_spend FROM rfm.clv_customers((
    SELECT rfm.clv_fit(customer_id::text, ordered_at, amount::float8, '{"as_of": "2024-12-31"}') FROM clv_tx), 1)
WHERE customer_key IN ('9001', '9003') ORDER BY 1;
-- without the spend model: no spend parameters, no spend predictions
SELECT model, parameter FROM rfm.clv_parameters((
    SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31", "spend_model": null}') FROM clv_tx));
SELECT count(expected_avg_spend) AS spend_predictions, count(clv) AS clv_values FROM rfm.clv_customers((
    SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31", "spend_model": null}') FROM clv_tx), 52);
-- a penalizer shrinks the parameters
SELECT model, parameter, round(value::numeric, 4) AS value FROM rfm.clv_parameters((
    SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31", "penalizer": 0.1}') FROM clv_tx));

-- the same model under a parallel plan, where partial states are serialized and combined
CREATE TABLE clv_big AS SELECT (customer_id * 1000 + g) AS customer_id, ordered_at, amount
FROM clv_tx, generate_series(1, 40) g WHERE customer_id < 9000;
ANALYZE clv_big;
CREATE TABLE clv_serial AS
SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31"}') AS m FROM clv_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET parallel_leader_participation = off;
SELECT count(*) AS plan_lines_with_partial_aggregate
FROM rfm_test.plan_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31"}') FROM clv_big$$) line
WHERE line LIKE '%Partial Aggregate%';
SELECT (SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31"}') FROM clv_big)
       = (SELECT m FROM clv_serial) AS parallel_equals_serial;
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, CASE WHEN customer_id = 1001 THEN '{"as_of": "2024-12-31"}' ELSE '{}' END::jsonb) FROM clv_big$$);
RESET max_parallel_workers_per_gather; RESET parallel_setup_cost; RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size; RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
DROP TABLE clv_big, clv_serial;

-- options: unknown keys and bad values name the key
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"horizon": 5}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"time_unit": "year"}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"penalizer": -1}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"penalizer": "a lot"}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"penalizer": 1e400}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"spend_model": "lognormal"}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "soon"}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "infinity"}') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '[1]') FROM clv_tx$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, NULL) FROM clv_tx$$);
-- NaN and infinite amounts are rejected wherever the row falls
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(c, t, a, '{"as_of": "2024-12-31"}') FROM (VALUES (1, timestamptz '2030-01-01', 'NaN'::numeric)) v(c, t, a)$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(c, t, a, '{"as_of": "2024-12-31"}') FROM (VALUES (1, timestamptz '2024-01-01', '-Infinity'::float8)) v(c, t, a)$$);
-- no rows: NULL; rows but no purchase: an error; nobody buys twice: the fit cannot converge
SELECT rfm.clv_fit(customer_id, ordered_at, amount) IS NULL AS no_rows_no_model FROM clv_tx WHERE false;
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2024-12-31"}') FROM clv_tx WHERE amount < 0$$);
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(g, timestamptz '2024-06-01', 10, '{"as_of": "2024-12-31"}') FROM generate_series(1, 50) g$$);
-- a fit that does not converge is an error with a hint: every customer buys on a fixed
-- schedule up to the end, so nobody ever drops out and a drop-out parameter runs off
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(c, timestamptz '2024-01-01' + (c % 20 + k * (c % 7 + 3)) * interval '1 day', 10, '{"as_of": "2024-12-31"}')
                          FROM generate_series(1, 300) c, generate_series(0, 20) k$$);
-- ... and the hint works: with a penalizer the same rows give a model
SELECT model, parameter, round(value::numeric, 4) AS value FROM rfm.clv_parameters((
    SELECT rfm.clv_fit(c, timestamptz '2024-01-01' + (c % 20 + k * (c % 7 + 3)) * interval '1 day', 10,
                       '{"as_of": "2024-12-31", "penalizer": 0.001, "spend_model": null}')
    FROM generate_series(1, 300) c, generate_series(0, 20) k));
-- the readers: bad horizons and discount rates, forged values (22P03), NULLs
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), -1)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 'NaN')$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 1e9)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 52, -1)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 10000.5)$$);
-- a discount rate so close to -1 that (1 + discount_rate)^-horizon would pass 1e300 within
-- the horizon is refused, never an infinite clv; short of that, the clv is finite
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 10000, -0.5)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_customers((SELECT m FROM clv_m), 52, -0.999999)$$);
SELECT bool_and(clv >= 0 AND clv < 'Infinity') AS finite_with_a_negative_rate
FROM rfm.clv_customers((SELECT m FROM clv_m), 52, -0.5);
-- the longest horizon, every customer in full
SELECT count(*) AS customers, bool_and(clv >= 0 AND clv < 'Infinity') AS clv_finite
FROM rfm.clv_customers((SELECT m FROM clv_m), 10000, 0.001);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_parameters('\x01deadbeef'::rfm.clv_model)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.clv_fit_info(''::rfm.clv_model)$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.clv_customers(substring((SELECT m FROM clv_m) FROM 1 FOR 400)::rfm.clv_model, 52)$$);
SELECT count(*) AS null_model_rows FROM rfm.clv_customers(NULL, 52);
SELECT count(*) AS null_horizon_rows FROM rfm.clv_customers((SELECT m FROM clv_m), NULL);
DROP TABLE clv_m, clv_tx;

-- cancel and statement_timeout stop a long forecast within a second (SPEC §11): 60 000
-- customers, each with its own (x, T), forecast over 10 000 days (several seconds of work
-- in a release build, far more in a debug one)
CREATE TABLE clv_long AS
WITH c AS (
    SELECT c, c % 10000 AS big_t, least((c / 10000) % 6, c % 10000) AS x
    FROM generate_series(0, 59999) c),
cx AS (
    SELECT c, big_t, x, CASE WHEN x = 0 THEN 0 ELSE x + (c * 7919) % (big_t - x + 1) END AS t_x
    FROM c)
SELECT c AS customer_id,
       (date '2024-12-31' - big_t + CASE WHEN k = 0 THEN 0 ELSE (k * t_x) / x END)::timestamptz AS ordered_at,
       10::numeric AS amount
FROM cx, generate_series(0, x) k;
CREATE TABLE clv_long_m AS
SELECT rfm.clv_fit(customer_id, ordered_at, amount,
                   '{"as_of": "2024-12-31", "time_unit": "day", "penalizer": 0.01, "spend_model": null}') AS m
FROM clv_long;
SELECT customers FROM rfm.clv_fit_info((SELECT m FROM clv_long_m));
-- query_canceled is caught only by name (WHEN OTHERS leaves it out)
CREATE FUNCTION rfm_test.cancelled(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM || ', within a second: ' || (clock_timestamp() - started < interval '2 s');
END
$$;
SET statement_timeout = '1s';
SELECT rfm_test.cancelled($$SELECT count(*) FROM rfm.clv_customers((SELECT m FROM clv_long_m), 10000, 0.001)$$) AS cancelled;
RESET statement_timeout;
DROP FUNCTION rfm_test.cancelled(text);
DROP TABLE clv_long, clv_long_m;
