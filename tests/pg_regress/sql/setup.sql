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
