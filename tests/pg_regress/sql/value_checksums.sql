-- The values users hold end with a CRC-32C of their bytes: a real rfm.analysis or
-- rfm.clv_model with any one byte changed is refused (22P03) by every function that reads
-- it, never read with changed content. Before: 4,154 of 34,549 mutated analysis values and
-- 637 of 5,355 mutated models were accepted with changed content. (crates/rfm_core flips
-- every bit of real values; this flips one bit of every byte through SQL.)
SET TimeZone = 'UTC';
CREATE TABLE ck_tx AS
SELECT 'c' || (1 + (g * 7919) % 60) AS customer_id,
       timestamptz '2025-12-31' - ((g * 104729) % 300) * interval '1 day' AS ordered_at,
       round((5 + (g * 31) % 300)::numeric / 3, 2) AS amount
FROM generate_series(1, 900) g;
CREATE TABLE ck_values AS
SELECT (SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31", "metrics": true}') FROM ck_tx)::bytea AS analysis;
SELECT length(analysis) > 600 AS a_real_value, (SELECT count(*) FROM rfm.customers(analysis::rfm.analysis)) AS customers
FROM ck_values;
-- one bit of every byte changed, read by each reader: every one refused with 22P03
SELECT count(*) AS changed_values,
       count(*) FILTER (WHERE rfm_test.error_of(format('SELECT count(*) FROM rfm.summary(%L::bytea::rfm.analysis)', v)) LIKE '22P03:%') AS summary_refused,
       count(*) FILTER (WHERE rfm_test.error_of(format('SELECT count(*) FROM rfm.customers(%L::bytea::rfm.analysis)', v)) LIKE '22P03:%') AS customers_refused,
       count(*) FILTER (WHERE rfm_test.error_of(format('SELECT count(*) FROM rfm.overview(%L::bytea::rfm.analysis)', v)) LIKE '22P03:%') AS overview_refused
FROM ck_values, generate_series(0, length(analysis) - 1) i,
     LATERAL (SELECT set_byte(analysis, i, get_byte(analysis, i) # (1 << (i % 8))) AS v) m;
SELECT rfm_test.error_of(format('SELECT * FROM rfm.overview(%L::bytea::rfm.analysis)',
                                set_byte(analysis, 40, get_byte(analysis, 40) # 4)))
FROM ck_values;

-- a CLV model
SELECT setseed(0.5);
CREATE TABLE ck_clv AS
SELECT c AS k, timestamptz '2024-01-01' + (c * 3 + n * (5 + c % 17)) * interval '1 day' AS t,
       round((10 + random() * 40)::numeric, 2) AS a
FROM generate_series(1, 120) c, generate_series(0, 12) n
WHERE n < 1 + c % 9 AND c * 3 + n * (5 + c % 17) < 360;
CREATE TABLE ck_models AS
SELECT (SELECT rfm.clv_fit(k, t, a, '{"as_of": "2024-12-31", "penalizer": 0.01}') FROM ck_clv)::bytea AS model;
SELECT (SELECT count(*) FROM rfm.clv_customers(model::rfm.clv_model, 10)) AS model_customers FROM ck_models;
SELECT count(*) AS changed_models,
       count(*) FILTER (WHERE rfm_test.error_of(format('SELECT count(*) FROM rfm.clv_parameters(%L::bytea::rfm.clv_model)', v)) LIKE '22P03:%') AS parameters_refused,
       count(*) FILTER (WHERE rfm_test.error_of(format('SELECT count(*) FROM rfm.clv_customers(%L::bytea::rfm.clv_model, 10)', v)) LIKE '22P03:%') AS customers_refused
FROM ck_models, generate_series(0, length(model) - 1) i,
     LATERAL (SELECT set_byte(model, i, get_byte(model, i) # (1 << (i % 8))) AS v) m;
DROP TABLE ck_tx, ck_values, ck_clv, ck_models;
