-- Runs once, when the regression database is created.
CREATE EXTENSION rfm_segmentation;
CREATE SCHEMA rfm_test;
GRANT USAGE ON SCHEMA rfm_test TO PUBLIC;
-- error_of(query) runs a statement and returns 'SQLSTATE: message (hint: ...)' of the error
-- it raises, or 'no error'; tests use it to assert the exact SQLSTATE and message.
CREATE FUNCTION rfm_test.error_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    state text;
    msg text;
    hint text;
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN state || ': ' || msg || coalesce(' (hint: ' || nullif(hint, '') || ')', '');
END
$$;
-- plan_of(query) returns the lines of EXPLAIN (COSTS OFF) for a query.
CREATE FUNCTION rfm_test.plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || query;
END
$$;
-- simulated_shop(n) is a shop of n customers as the CLV models assume (SPEC §12): Poisson
-- purchases while alive, drop-out after a purchase, rates, drop-out chances and spend from a
-- few classes, over 2024. Its rows follow random(): call setseed first for the same rows.
CREATE FUNCTION rfm_test.simulated_shop(customers integer)
RETURNS TABLE (customer_id bigint, ordered_at timestamptz, amount numeric) LANGUAGE sql VOLATILE AS $$
WITH cust AS (
    SELECT c, (ARRAY[0.02, 0.05, 0.12, 0.3])[1 + floor(random() * 4)::int] AS lambda,
           (ARRAY[0.05, 0.2, 0.5])[1 + floor(random() * 3)::int] AS p,
           floor(random() * 330)::int AS start, random() AS u_drop,
           (ARRAY[8, 20, 35, 90])[1 + floor(random() * 4)::int] AS spend
    FROM generate_series(1, customers) c),
ev AS (
    SELECT cust.*, k,
           start + sum(CASE WHEN k = 0 THEN 0 ELSE -ln(1 - random()) / lambda END)
                       OVER (PARTITION BY c ORDER BY k) AS day,
           random() AS u_amt
    FROM cust, generate_series(0, 80) k)
SELECT c::bigint, timestamptz '2024-01-01' + day * interval '1 day',
       round((spend * (0.2 + 1.6 * u_amt))::numeric, 2)
FROM ev
WHERE k < 1 + floor(ln(u_drop) / ln(1 - p)) AND day < 366
$$;
