-- rfm.analyze: the one-pass segmentation aggregate and its accessors.

-- The result of rfm.analyze: an opaque, versioned binary value. Pass it to rfm.customers,
-- rfm.summary, rfm.thresholds, rfm.grid or rfm.overview.
CREATE DOMAIN analysis AS bytea;
COMMENT ON DOMAIN analysis IS
    'Result of rfm.analyze (opaque, versioned); read it with rfm.customers, rfm.summary, rfm.thresholds, rfm.grid and rfm.overview';

-- The transition functions run once per row: they look up no name a search_path could
-- redirect (the only SQL they run is SELECT rfm._user_scheme($1), schema-qualified, once per
-- aggregate when the options name a saved scheme), and a SET clause would cost a settings
-- save and restore on every row (measured: a pinned analyze_sfunc took 3.9 s instead of
-- 2.2 s for 2M rows, serially), so they alone, with the scalar scoring functions, do not
-- pin search_path (SPEC 11: "or qualifies every name and operator"). The catalog test in
-- tests/pg_regress/sql/security.sql lists them by name, and the same file runs every one of
-- them under a search_path that puts a hostile schema's function and operators first.
-- Everything else pins it, rfm.customers and rfm.excluded_keys included (they return their
-- rows in one call).
CREATE FUNCTION analyze_sfunc(internal, bigint, timestamptz, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, bigint, timestamptz, numeric, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, bigint, timestamptz, double precision) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, bigint, timestamptz, double precision, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, text, timestamptz, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, text, timestamptz, numeric, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, text, timestamptz, double precision) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_sfunc(internal, text, timestamptz, double precision, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'analyze_sfunc_wrapper';
CREATE FUNCTION analyze_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'analyze_combine_wrapper';
CREATE FUNCTION analyze_serialize(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'analyze_serialize_wrapper';
CREATE FUNCTION analyze_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'analyze_deserialize_wrapper';
CREATE FUNCTION analyze_final(internal) RETURNS analysis
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'analyze_final_wrapper';

CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at timestamptz, amount numeric) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at timestamptz, amount numeric, options jsonb) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at timestamptz, amount double precision) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at timestamptz, amount double precision, options jsonb) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at timestamptz, amount numeric) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at timestamptz, amount numeric, options jsonb) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at timestamptz, amount double precision) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at timestamptz, amount double precision, options jsonb) (
    SFUNC = analyze_sfunc, STYPE = internal, FINALFUNC = analyze_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = analyze_combine, SERIALFUNC = analyze_serialize,
    DESERIALFUNC = analyze_deserialize, PARALLEL = SAFE
);
COMMENT ON AGGREGATE "analyze"(bigint, timestamptz, numeric, jsonb) IS
    'One-pass RFM segmentation of transaction rows (customer, ordered_at, amount); options: as_of, period, buckets, scheme, method, thresholds, abc_shares, abc_names, abc_min_sales, keep_excluded, metrics';

CREATE FUNCTION customers(analysis analysis) RETURNS TABLE (
    customer_key text, recency_days integer, frequency bigint, monetary numeric,
    r integer, f integer, m integer, fm integer, rfm_code text, segment text, abc_tier text,
    aov numeric, returns bigint, return_amount numeric, return_rate double precision,
    first_purchase_at timestamptz, last_purchase_at timestamptz, tenure_days integer,
    days_since_last integer, lifetime_orders bigint, lifetime_value numeric, active boolean)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'customers_wrapper';
COMMENT ON FUNCTION customers(analysis) IS
    'One row per customer of the analysis (active ones; with population all also those without a purchase in the window): metrics, scores, segment and ABC tier; the full metrics (aov .. lifetime_value) are NULL unless the analysis computed them';

CREATE FUNCTION summary(analysis analysis) RETURNS TABLE (
    segment text, customers bigint, pct_customers numeric, revenue numeric,
    pct_revenue numeric, avg_revenue numeric, avg_frequency double precision,
    avg_recency_days double precision, avg_monetary double precision)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'summary_wrapper';
COMMENT ON FUNCTION summary(analysis) IS 'One row per segment of the scheme (empty ones included)';

CREATE FUNCTION thresholds(analysis analysis) RETURNS TABLE (
    metric text, score integer, lower_bound double precision, upper_bound double precision,
    customers bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'thresholds_wrapper';
COMMENT ON FUNCTION thresholds(analysis) IS 'The value range of each score of each metric (segmentation setup)';

CREATE FUNCTION grid(analysis analysis) RETURNS TABLE (
    r integer, fm integer, segment text, customers bigint, revenue numeric)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'grid_wrapper';
COMMENT ON FUNCTION grid(analysis) IS 'One row per R x FM cell with its segment, customers and revenue';

CREATE FUNCTION overview(analysis analysis) RETURNS TABLE (
    as_of timestamptz, period interval, active_customers bigint, excluded_customers bigint,
    total_revenue numeric, transactions bigint, rows_without_key bigint,
    amount_without_key numeric, rows_after_as_of bigint, excluded_amount numeric,
    below_min_customers bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'overview_wrapper';
COMMENT ON FUNCTION overview(analysis) IS 'Headline figures: as_of, period, active and excluded customers, revenue, transactions, and the rows and amounts the analysis accounts for without analysing them';

CREATE FUNCTION excluded_keys(analysis analysis) RETURNS SETOF text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'excluded_keys_wrapper';
COMMENT ON FUNCTION excluded_keys(analysis) IS
    'Keys of the excluded customers (a row at or before as_of, no purchase in the window), kept when rfm.analyze ran with "keep_excluded": true; else none';

-- uuid customer keys: rfm.analyze takes bigint or text keys. Rather than PostgreSQL's "function
-- does not exist", these overloads (an exact type match, so no other call can pick them) say
-- what to write instead.
CREATE FUNCTION _uuid_key(state integer, customer_key uuid, ordered_at timestamptz, amount anycompatible)
RETURNS integer LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = 'rfm.analyze takes bigint or text customer keys, not uuid',
        HINT = 'Cast the key: rfm.analyze(customer_id::text, ordered_at, amount, ...).';
END
$$;
CREATE FUNCTION _uuid_key(state integer, customer_key uuid, ordered_at timestamptz, amount anycompatible, options jsonb)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT rfm._uuid_key(state, customer_key, ordered_at, amount)
$$;
CREATE FUNCTION _uuid_key_final(state integer) RETURNS analysis
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT rfm._uuid_key(state, NULL::uuid, NULL::timestamptz, NULL::numeric)::text::rfm.analysis
$$;
CREATE AGGREGATE "analyze"(customer_key uuid, ordered_at timestamptz, amount numeric) (
    SFUNC = _uuid_key, STYPE = integer, INITCOND = '0', FINALFUNC = _uuid_key_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key uuid, ordered_at timestamptz, amount numeric, options jsonb) (
    SFUNC = _uuid_key, STYPE = integer, INITCOND = '0', FINALFUNC = _uuid_key_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key uuid, ordered_at timestamptz, amount double precision) (
    SFUNC = _uuid_key, STYPE = integer, INITCOND = '0', FINALFUNC = _uuid_key_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key uuid, ordered_at timestamptz, amount double precision, options jsonb) (
    SFUNC = _uuid_key, STYPE = integer, INITCOND = '0', FINALFUNC = _uuid_key_final, PARALLEL = SAFE);

-- Text times: ordered_at must be a timestamptz (or timestamp, or date). These overloads of
-- a text ordered_at (an exact match for text and varchar columns; no column of another type
-- converts to text implicitly) say what to write instead.
CREATE FUNCTION _text_time(state integer, customer_key anyelement, ordered_at text, amount anycompatible)
RETURNS integer LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = 'rfm.analyze takes ordered_at as timestamptz, timestamp or date, not text',
        HINT = 'Cast the column: rfm.analyze(customer_id, ordered_at::timestamptz, amount, ...); the text must be an ISO 8601 date or timestamp.';
END
$$;
CREATE FUNCTION _text_time(state integer, customer_key anyelement, ordered_at text, amount anycompatible, options jsonb)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT rfm._text_time(state, customer_key, ordered_at, amount)
$$;
CREATE FUNCTION _text_time_final(state integer) RETURNS analysis
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT rfm._text_time(state, NULL::bigint, NULL::text, NULL::numeric)::text::rfm.analysis
$$;
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at text, amount numeric) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at text, amount numeric, options jsonb) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at text, amount double precision) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key bigint, ordered_at text, amount double precision, options jsonb) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at text, amount numeric) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at text, amount numeric, options jsonb) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at text, amount double precision) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
CREATE AGGREGATE "analyze"(customer_key text, ordered_at text, amount double precision, options jsonb) (
    SFUNC = _text_time, STYPE = integer, INITCOND = '0', FINALFUNC = _text_time_final, PARALLEL = SAFE);
