-- The option time_zone (SPEC §2): every day boundary of rfm.analyze — recency days, a
-- bare-date as_of, the window — is taken in the named zone, so an analysis is the same from
-- a session in any time zone; without the option, the session's zone. Before: there was no
-- such option, and the same query gave other recency days in another session.
SET TimeZone = 'UTC';
CREATE TABLE tzo_tx AS
SELECT 1 + (g * 7919) % 300 AS customer_id,
       timestamptz '2025-12-31' - ((g * 104729) % 300) * interval '1 day' + ((g * 37) % 24) * interval '1 hour'
           AS ordered_at,
       round((5 + (g * 31) % 300)::numeric / 3, 2) AS amount
FROM generate_series(1, 5000) g;
-- the customers of an analysis as one text: key, recency days, scores, segment
CREATE FUNCTION rfm_test.fingerprint(a rfm.analysis) RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(concat_ws(':', customer_key, recency_days, r, f, m, segment), ',' ORDER BY customer_key))
    FROM rfm.customers(a)
$$;
CREATE TEMP TABLE prints (session text, with_option text, without_option text);
SET TimeZone = 'UTC';
INSERT INTO prints SELECT 'UTC',
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31", "time_zone": "America/New_York"}')),
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}')) FROM tzo_tx;
SET TimeZone = 'Asia/Tokyo';
INSERT INTO prints SELECT 'Asia/Tokyo',
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31", "time_zone": "America/New_York"}')),
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}')) FROM tzo_tx;
SET TimeZone = 'America/New_York';
INSERT INTO prints SELECT 'America/New_York',
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31", "time_zone": "America/New_York"}')),
    rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}')) FROM tzo_tx;
-- with the option: one result from every session, the New York session's own; without it,
-- each session its own
SELECT count(DISTINCT with_option) AS results_with_the_option,
       count(DISTINCT without_option) AS results_without_it,
       bool_and(with_option = (SELECT without_option FROM prints WHERE session = 'America/New_York'))
           AS all_equal_the_new_york_session
FROM prints;
-- the session's own zone is untouched afterwards, also after an analysis that failed
SET TimeZone = 'Asia/Tokyo';
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, 'NaN'::numeric, '{"time_zone": "America/New_York"}') FROM tzo_tx$$);
SELECT current_setting('TimeZone') AS session_zone, timestamptz '2025-06-01 12:00+00' AS noon_utc_shown_in_tokyo;
-- in a parallel plan with workers, the same as serially
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT rfm_test.fingerprint(rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31", "time_zone": "America/New_York"}'))
       = (SELECT with_option FROM prints WHERE session = 'UTC') AS parallel_equals_serial
FROM tzo_tx;
RESET max_parallel_workers_per_gather;
RESET min_parallel_table_scan_size;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;
-- rfm.clv_fit takes it too: the purchase days of the models are New York's from any session
-- (a simulated shop that buys at random and drops out, as the models assume)
SELECT setseed(0.17) AS seeded;
CREATE TEMP TABLE tzo_clv AS
SELECT customer_id AS k, ordered_at AS t, amount AS a FROM rfm_test.simulated_shop(400);
SET TimeZone = 'UTC';
SELECT string_agg(parameter || '=' || round(value::numeric, 6), ',' ORDER BY parameter) AS utc_with_option
FROM rfm.clv_parameters((SELECT rfm.clv_fit(k, t, a,
    '{"as_of": "2024-12-31", "time_zone": "America/New_York", "time_unit": "day"}') FROM tzo_clv)) \gset
SET TimeZone = 'America/New_York';
SELECT string_agg(parameter || '=' || round(value::numeric, 6), ',' ORDER BY parameter) = :'utc_with_option'
       AS clv_same_as_a_new_york_session
FROM rfm.clv_parameters((SELECT rfm.clv_fit(k, t, a, '{"as_of": "2024-12-31", "time_unit": "day"}') FROM tzo_clv));
SET TimeZone = 'UTC';
SELECT string_agg(parameter || '=' || round(value::numeric, 6), ',' ORDER BY parameter) <> :'utc_with_option'
       AS clv_differs_in_a_utc_session_without_it
FROM rfm.clv_parameters((SELECT rfm.clv_fit(k, t, a, '{"as_of": "2024-12-31", "time_unit": "day"}') FROM tzo_clv));
SELECT rfm_test.error_of($$SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"time_zone": "Nowhere/Land"}') FROM tzo_tx$$);
SET TimeZone = 'Asia/Tokyo';
-- the option in rfm.check_options, and its errors
SELECT rfm.check_options('{"time_zone": "Europe/Berlin", "as_of": "2025-12-31"}') ->> 'time_zone' AS given,
       rfm.check_options('{"time_zone": "Europe/Berlin", "as_of": "2025-12-31"}') ->> 'as_of' AS end_of_day_in_berlin,
       rfm.check_options('{}') ->> 'time_zone' AS default_is_the_session_zone;
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"time_zone": "Mars/Olympus_Mons"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"time_zone": 7}') FROM tzo_tx$$);
RESET TimeZone;
DROP FUNCTION rfm_test.fingerprint(rfm.analysis);
DROP TABLE tzo_tx;
