-- rfm.clv_fit: BG/NBD and Gamma-Gamma fitted in one aggregate pass (SPEC §12), and its
-- readers rfm.clv_parameters, rfm.clv_fit_info and rfm.clv_customers.

-- The result of rfm.clv_fit: an opaque, versioned binary value holding both fits and every
-- customer's inputs.
CREATE DOMAIN clv_model AS bytea;
COMMENT ON DOMAIN clv_model IS
    'Result of rfm.clv_fit (opaque, versioned); read it with rfm.clv_parameters, rfm.clv_fit_info and rfm.clv_customers';

-- The transition functions run once per row: they look up no name a search_path could
-- redirect (they run no SQL), and a SET clause would cost a settings save and restore on
-- every row, so they alone do not pin search_path (SPEC 11: "or qualifies every name and
-- operator"; tests/pg_regress/sql/security.sql lists them by name in its catalog test and
-- runs them under a hostile search_path). Everything else pins it, rfm.clv_customers
-- included (it returns its rows in one call).
CREATE FUNCTION clv_sfunc(internal, bigint, timestamptz, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, bigint, timestamptz, numeric, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, bigint, timestamptz, double precision) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, bigint, timestamptz, double precision, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, text, timestamptz, numeric) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, text, timestamptz, numeric, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, text, timestamptz, double precision) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_sfunc(internal, text, timestamptz, double precision, jsonb) RETURNS internal
    LANGUAGE c PARALLEL SAFE AS 'MODULE_PATHNAME', 'clv_sfunc_wrapper';
CREATE FUNCTION clv_combine(internal, internal) RETURNS internal
    LANGUAGE c PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_combine_wrapper';
CREATE FUNCTION clv_serialize(internal) RETURNS bytea
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_serialize_wrapper';
CREATE FUNCTION clv_deserialize(bytea, internal) RETURNS internal
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_deserialize_wrapper';
CREATE FUNCTION clv_final(internal) RETURNS clv_model
    LANGUAGE c STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_final_wrapper';

CREATE AGGREGATE clv_fit(customer_key bigint, ordered_at timestamptz, amount numeric) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key bigint, ordered_at timestamptz, amount numeric, options jsonb) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key bigint, ordered_at timestamptz, amount double precision) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key bigint, ordered_at timestamptz, amount double precision, options jsonb) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key text, ordered_at timestamptz, amount numeric) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key text, ordered_at timestamptz, amount numeric, options jsonb) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key text, ordered_at timestamptz, amount double precision) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
CREATE AGGREGATE clv_fit(customer_key text, ordered_at timestamptz, amount double precision, options jsonb) (
    SFUNC = clv_sfunc, STYPE = internal, FINALFUNC = clv_final,
    FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = clv_combine, SERIALFUNC = clv_serialize,
    DESERIALFUNC = clv_deserialize, PARALLEL = SAFE
);
COMMENT ON AGGREGATE clv_fit(bigint, timestamptz, numeric, jsonb) IS
    'Fits the BG/NBD purchase model and the Gamma-Gamma spend model to transaction rows (customer, ordered_at, amount); options: as_of, time_unit, penalizer, spend_model';

CREATE FUNCTION clv_parameters(model clv_model) RETURNS TABLE (
    model text, parameter text, value double precision, std_error double precision)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_parameters_wrapper';
COMMENT ON FUNCTION clv_parameters(clv_model) IS
    'The fitted parameters (bg_nbd: r, alpha, a, b; gamma_gamma: p, q, gamma) with standard errors from the Hessian of the log-likelihood';

CREATE FUNCTION clv_fit_info(model clv_model) RETURNS TABLE (
    model text, customers bigint, excluded_customers bigint, log_likelihood double precision,
    iterations integer, converged boolean, as_of timestamptz, time_unit text,
    penalizer double precision)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_fit_info_wrapper';
COMMENT ON FUNCTION clv_fit_info(clv_model) IS
    'One row per fitted model: customers fitted, customers left out (repeat spend not positive), log-likelihood, iterations, and the options';

CREATE FUNCTION clv_customers(model clv_model, horizon double precision,
                              discount_rate double precision DEFAULT 0) RETURNS TABLE (
    customer_key text, x bigint, t_x double precision, t double precision,
    avg_spend double precision, p_alive double precision, expected_purchases double precision,
    expected_avg_spend double precision, clv double precision, flag text)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'clv_customers_wrapper';
COMMENT ON FUNCTION clv_customers(clv_model, double precision, double precision) IS
    'One row per customer of the model: x, t_x, T (time units), mean repeat spend, P(alive), expected purchases and expected mean spend over the horizon, and the CLV discounted per time unit';
