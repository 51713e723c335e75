-- Managed segmentations as a hostile role would try them (SPEC §11): owner's rights,
-- readers, no redirectable code, catalog tables closed, failures isolated.
SET TimeZone = 'UTC';
CREATE ROLE sec_admin1 LOGIN IN ROLE rfm_admin;   -- owns segmentations
CREATE ROLE sec_admin2 LOGIN IN ROLE rfm_admin;   -- another administrator, hostile to admin1
CREATE ROLE sec_reader LOGIN IN ROLE rfm_reader;  -- a BI tool
CREATE ROLE sec_plain LOGIN;                      -- no rfm role at all
CREATE ROLE sec_north LOGIN IN ROLE rfm_reader;   -- a reader limited by row-level security
CREATE SCHEMA sec AUTHORIZATION sec_admin1;
GRANT USAGE ON SCHEMA sec TO PUBLIC;
-- PostgreSQL 15 no longer lets everyone create in public; a careless DBA might
GRANT CREATE ON SCHEMA public TO sec_admin2, sec_plain;

CREATE TABLE sec.tx (customer_id bigint, region text, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO sec.tx
SELECT 1 + (g * 7919) % 60, CASE WHEN g % 3 = 0 THEN 'south' ELSE 'north' END,
       timestamptz '2025-12-31' - ((g * 104729) % 300) * interval '1 day',
       round((5 + (g * 31) % 300)::numeric / 3, 2)
FROM generate_series(1, 900) g;
ALTER TABLE sec.tx OWNER TO sec_admin1;
CREATE TABLE sec.secret (customer_id bigint, ordered_at timestamptz, amount numeric);
INSERT INTO sec.secret VALUES (1, '2025-12-01', 10);
-- what code ran as whom: written by the hostile functions below
CREATE TABLE sec.trace (who name, what text);
GRANT INSERT ON sec.trace TO PUBLIC;

-- ---------------------------------------------------------------------------------------
-- 1. Ownership and the owner's rights

SET ROLE sec_admin1;
SELECT rfm.create_segmentation('sec_main', 'sec.tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00", "performance": true}') > 0 AS created;
-- the owner must be able to read the source and its columns
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('sec_secret', 'sec.secret', 'customer_id', 'ordered_at', 'amount')$$);
CREATE TEMP TABLE mytx AS SELECT * FROM sec.tx;
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('sec_temp', 'pg_temp.mytx', 'customer_id', 'ordered_at', 'amount')$$);
DROP TABLE pg_temp.mytx;
RESET ROLE;
SELECT name, owner, source FROM rfm.segmentation_catalog ORDER BY name;

-- a second administrator can neither see, change, refresh, override nor drop it
SET ROLE sec_admin2;
SELECT count(*) AS admin2_sees FROM rfm.segmentation_catalog;
SELECT rfm_test.error_of($$SELECT rfm.refresh('sec_main')$$);
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('sec_main', active => false)$$);
SELECT rfm_test.error_of($$SELECT rfm.set_override('sec_main', '1', 'Lost')$$);
SELECT rfm_test.error_of($$SELECT rfm.drop_segmentation('sec_main')$$);
SELECT rfm_test.error_of($$SELECT rfm.grant_segmentation('sec_main', 'sec_admin2')$$);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.preview('sec_main')$$);
-- nor call the implementations or the plumbing directly, nor write the tables
SELECT rfm_test.error_of($$SELECT rfm._do_refresh('sec_admin1'::regrole::oid, 'sec_main', false)$$);
SELECT rfm_test.error_of($$SELECT rfm._do_create_segmentation(10, 'mine', 'sec.secret', 'customer_id', 'ordered_at', 'amount', '{}', 'rfm', 'dynamic', true)$$);
SELECT rfm_test.error_of($$SELECT rfm._read_source_as(10, 'sec.secret'::regclass, 'SELECT NULL::bytea', '{}', 'UTC')$$);
SELECT rfm_test.error_of($$SELECT rfm._lock_source('sec.secret'::regclass)$$);
SELECT rfm_test.error_of($$INSERT INTO rfm.history (segmentation_id, customer_key, reason) VALUES (1, 'x', 'refresh')$$);
SELECT rfm_test.error_of($$UPDATE rfm.segmentations SET owner = 'sec_admin2'$$);
SELECT rfm_test.error_of($$DELETE FROM rfm.overrides$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.assignment$$);
RESET ROLE;

-- the owner refreshes; a superuser's refresh reads with the owner's rights too
ALTER TABLE sec.tx ENABLE ROW LEVEL SECURITY;
ALTER TABLE sec.tx FORCE ROW LEVEL SECURITY;     -- applies to its owner, sec_admin1, too
CREATE POLICY admin1_north ON sec.tx FOR SELECT TO sec_admin1 USING (region = 'north');
CREATE POLICY north_reader ON sec.tx FOR SELECT TO sec_north USING (region = 'north' AND customer_id <= 30);
SET ROLE sec_admin1;
SELECT rfm.refresh('sec_main') IS NOT NULL AS owner_refreshed;
RESET ROLE;
SELECT segmentation, status FROM rfm.refresh_all();
SELECT r.started_by, r.customers
     = (SELECT count(DISTINCT customer_id) FROM sec.tx WHERE region = 'north') AS only_rows_the_owner_sees,
       (SELECT count(DISTINCT customer_id) FROM sec.tx WHERE region = 'north')
     < (SELECT count(DISTINCT customer_id) FROM sec.tx) AS superuser_sees_more
FROM rfm.runs r ORDER BY r.id;

-- ---------------------------------------------------------------------------------------
-- 2. Readers

GRANT SELECT ON sec.tx TO sec_north;
SET ROLE sec_reader;   -- may not read the source: sees nothing
SELECT (SELECT count(*) FROM rfm.customer_segments) AS customers, (SELECT count(*) FROM rfm.segment_summary) AS summary,
       (SELECT count(*) FROM rfm.kpi_overview) AS kpi, (SELECT count(*) FROM rfm.segment_movement) AS movement,
       (SELECT count(*) FROM rfm.segment_trend) AS trend, (SELECT count(*) FROM rfm.segment_grid) AS grid,
       (SELECT count(*) FROM rfm.segment_thresholds) AS thresholds, (SELECT count(*) FROM rfm.segmentation_catalog) AS catalog;
-- what the views call is harmless to call directly: no rows for NULL, 22P03 for forged bytes
SELECT count(*) AS assigned_null FROM rfm._assigned(NULL, NULL, NULL, NULL, NULL);
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm._assigned('\x0300ffffffffffff'::bytea, 'rfm', NULL, NULL, NULL)$$);
SET ROLE sec_plain;    -- not even a reader
SELECT rfm_test.error_of($$SELECT count(*) FROM rfm.customer_segments$$);
SELECT rfm_test.error_of($$SELECT rfm.refresh('sec_main')$$);
SET ROLE sec_north;    -- may read the source, through row-level security: its own customers only
SELECT (SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'sec_main') AS customers,
       (SELECT sum(customers) FROM rfm.segment_summary WHERE segmentation = 'sec_main') AS summary_customers,
       (SELECT count(*) FROM rfm.kpi_overview) AS kpi_hidden, (SELECT count(*) FROM rfm.segment_trend) AS trend_hidden,
       (SELECT sum(customers) FROM rfm.segment_movement) AS movement_customers,
       (SELECT access FROM rfm.segmentation_catalog WHERE name = 'sec_main') AS access;
SELECT bool_and(customer_key::bigint <= 30) AS only_visible_keys FROM rfm.customer_segments;
-- the performance report is a figure over all customers, stored by the refresh: a reader
-- who sees only some customers does not see it (nor does anything read the source for it)
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance('sec_main')$$);
SELECT count(DISTINCT segmentation) AS performance_view_segmentations FROM rfm.segment_performance_latest;
RESET ROLE;
SELECT count(DISTINCT customer_id) AS north_customers_up_to_30 FROM sec.tx WHERE region = 'north' AND customer_id <= 30;
-- the owner grants the segmentation: the reader sees it as the owner does
SET ROLE sec_admin1;
SELECT rfm.grant_segmentation('sec_main', 'sec_reader');
SET ROLE sec_reader;
SELECT (SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'sec_main')
     = (SELECT active_customers FROM rfm.kpi_overview WHERE segmentation = 'sec_main') AS granted_reader_sees_all,
       (SELECT access FROM rfm.segmentation_catalog WHERE name = 'sec_main') AS access;
-- and the performance report the refresh stored, which reads nothing of the source
SELECT sum(customers) = (SELECT active_customers FROM rfm.kpi_overview WHERE segmentation = 'sec_main')
       AS performance_customers_are_the_owners FROM rfm.segment_performance('sec_main');
SELECT count(*) AS performance_view_rows FROM rfm.segment_performance_latest;
SET ROLE sec_admin1;
SELECT rfm.revoke_segmentation('sec_main', 'sec_reader') AS revoked, rfm.revoke_segmentation('sec_main', 'sec_reader') AS again;
SET ROLE sec_reader;
SELECT count(*) AS after_revoke FROM rfm.customer_segments;
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance('sec_main')$$);
RESET ROLE;
ALTER TABLE sec.tx NO FORCE ROW LEVEL SECURITY;
ALTER TABLE sec.tx DISABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------
-- 3. Escalation routes that must not work

-- (a) an administrator's own view calls its own function; a superuser refreshes everything
SET ROLE sec_admin1;
CREATE FUNCTION sec.spy() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO sec.trace VALUES (current_user, 'view function');
    BEGIN
        EXECUTE 'ALTER ROLE sec_admin1 SUPERUSER';
        INSERT INTO sec.trace VALUES (current_user, 'became superuser');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO sec.trace VALUES (current_user, 'refused: ' || SQLSTATE);
    END;
    RETURN true;
END
$$;
CREATE VIEW sec.spy_tx AS SELECT * FROM sec.tx WHERE sec.spy();
SELECT rfm.create_segmentation('sec_spy', 'sec.spy_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
RESET ROLE;
SELECT segmentation, status FROM rfm.refresh_all() ORDER BY 1;
SELECT DISTINCT who, what FROM sec.trace ORDER BY 1, 2;
SELECT rolsuper AS admin1_is_superuser FROM pg_roles WHERE rolname = 'sec_admin1';
TRUNCATE sec.trace;

-- (b) objects in a schema on the superuser's search_path: an operator, an aggregate and a
-- table with a trigger named like the old refresh's scratch table
SET ROLE sec_plain;
CREATE FUNCTION public.sec_evil_eq(regtype, regtype) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec.trace VALUES (current_user, 'operator =');
    EXECUTE 'ALTER ROLE sec_plain SUPERUSER';
    RETURN $1::oid = $2::oid;
EXCEPTION WHEN OTHERS THEN RETURN $1::oid = $2::oid;
END $$;
CREATE OPERATOR public.= (LEFTARG = regtype, RIGHTARG = regtype, FUNCTION = public.sec_evil_eq);
CREATE FUNCTION public.sec_evil_count_sfunc(bigint, text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec.trace VALUES (current_user, 'aggregate count(text)');
    RETURN coalesce($1, 0) + 1;
END $$;
CREATE AGGREGATE public.count(text) (SFUNC = public.sec_evil_count_sfunc, STYPE = bigint);
CREATE TABLE public.rfm_refresh_new (customer_key text, segment text, r integer, f integer, m integer, fm integer,
    rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text);
CREATE FUNCTION public.sec_evil_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec.trace VALUES (current_user, 'trigger');
    RETURN NEW;
END $$;
CREATE TRIGGER sec_evil BEFORE INSERT ON public.rfm_refresh_new FOR EACH ROW EXECUTE FUNCTION public.sec_evil_trigger();
RESET ROLE;
SET search_path = public, pg_catalog;   -- the hostile objects come first for the superuser
SELECT rfm.refresh('sec_main') IS NOT NULL AS superuser_refreshed;
SELECT rfm.set_override('sec_main', '2', 'Champions');
SELECT rfm.clear_overrides('sec_main') AS cleared;
SELECT count(*) > 0 AS summary_read FROM rfm.segment_summary;
SELECT count(*) > 0 AS customers_read FROM rfm.customer_segments;
SELECT count(*) FROM rfm.preview('sec_main') WHERE segment IS NOT NULL;
RESET search_path;
SELECT count(*) AS hostile_code_runs FROM sec.trace;
SELECT rolsuper AS plain_is_superuser FROM pg_roles WHERE rolname = 'sec_plain';
DROP OPERATOR public.= (regtype, regtype);
DROP AGGREGATE public.count(text);
DROP TABLE public.rfm_refresh_new;
DROP FUNCTION public.sec_evil_eq(regtype, regtype), public.sec_evil_count_sfunc(bigint, text), public.sec_evil_trigger();

-- (c) every function of the extension pins search_path, but the C functions called once per
-- row, which look up no name a search_path could redirect (a SET clause would cost a
-- settings save and restore on every call; the only SQL they run is
-- SELECT rfm._user_scheme($1), schema-qualified with a text parameter, to read a saved
-- scheme); they are listed here by name, so a new one must be added deliberately (the
-- rfm.clv_fit transition function runs no SQL at all). The set-returning functions that
-- return a row per customer (rfm.customers, rfm.excluded_keys, rfm.clv_customers,
-- rfm._assigned, rfm._changes) pin it: they return their rows in one call, so the pin costs
-- one save and restore per call
SELECT p.oid::regprocedure AS function_without_pinned_search_path
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rfm' AND p.prokind IN ('f', 'p')
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
  AND NOT (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
           AND p.prosrc IN ('analyze_sfunc_wrapper',
                            'score_wrapper', 'fm_score_wrapper', 'segment_wrapper', 'abc_tier_wrapper',
                            'quantile_thresholds_sfunc_wrapper', 'quantile_thresholds_sfunc_default_wrapper',
                            'abc_thresholds_sfunc_wrapper', 'abc_thresholds_sfunc_default_wrapper',
                            'clv_sfunc_wrapper'))
ORDER BY 1;
SELECT count(*) AS per_row_c_functions_not_pinned
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rfm' AND p.prokind = 'f' AND p.proconfig IS NULL;
-- ... and that those functions qualify every name and operator, shown by running each of
-- them for a superuser whose search_path puts a hostile role's schema first: it holds an
-- unqualified rfm._user_scheme, = for every type the functions compare, and a function of
-- every name the options and values are cast with; none of it may run. Every signature of
-- the aggregates whose transition functions are listed above, and the scalar ones; the
-- rule scheme is a saved one, so that the scheme is read through SQL.
CREATE SCHEMA sec_hostile AUTHORIZATION sec_plain;
SELECT rfm.create_scheme('sec_scores', '{"segments": [{"name": "Top", "when": {"r": {">=": 4}}}], "default": "Rest"}') ? 'segments' AS saved;
SET ROLE sec_plain;
CREATE FUNCTION sec_hostile.trace(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec.trace VALUES (current_user, what);
    RETURN true;
END $$;
-- (it answers as the real one would, so that a redirected read would go unnoticed but for
-- the trace)
CREATE FUNCTION sec_hostile._user_scheme(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT CASE WHEN sec_hostile.trace('_user_scheme') THEN rfm._user_scheme($1) END $$;
CREATE FUNCTION sec_hostile.jsonb(text) RETURNS jsonb LANGUAGE sql
    AS $$ SELECT CASE WHEN sec_hostile.trace('jsonb(text)') THEN $1::pg_catalog.jsonb END $$;
CREATE FUNCTION sec_hostile.eq_text(text, text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT sec_hostile.trace('= text') AND pg_catalog.texteq($1, $2) $$;
CREATE FUNCTION sec_hostile.eq_jsonb(jsonb, jsonb) RETURNS boolean LANGUAGE sql
    AS $$ SELECT sec_hostile.trace('= jsonb') AND pg_catalog.jsonb_eq($1, $2) $$;
CREATE FUNCTION sec_hostile.eq_float8(float8, float8) RETURNS boolean LANGUAGE sql
    AS $$ SELECT sec_hostile.trace('= float8') AND pg_catalog.float8eq($1, $2) $$;
CREATE FUNCTION sec_hostile.eq_numeric(numeric, numeric) RETURNS boolean LANGUAGE sql
    AS $$ SELECT sec_hostile.trace('= numeric') AND pg_catalog.numeric_eq($1, $2) $$;
CREATE OPERATOR sec_hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sec_hostile.eq_text);
CREATE OPERATOR sec_hostile.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = sec_hostile.eq_jsonb);
CREATE OPERATOR sec_hostile.= (LEFTARG = float8, RIGHTARG = float8, FUNCTION = sec_hostile.eq_float8);
CREATE OPERATOR sec_hostile.= (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = sec_hostile.eq_numeric);
RESET ROLE;
TRUNCATE sec.trace;
-- a small simulated shop (seeded), so that the CLV fits converge
SELECT setseed(0.17) AS seeded;
CREATE TEMP TABLE sec_rows AS
SELECT customer_id AS k, 'c' || customer_id AS kt, ordered_at AS t, amount AS a FROM rfm_test.simulated_shop(300);
SET search_path = sec_hostile, pg_catalog, pg_temp;
SET client_min_messages = warning;  -- without options as_of is now: a NOTICE names the data's age
SELECT count(*) AS analyses,
       count(*) FILTER (WHERE o.active_customers > 0) AS with_customers_in_2024
FROM (SELECT rfm.analyze(k, t, a) AS v FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(k, t, a::float8) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(kt, t, a) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(kt, t, a::float8) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(k, t, a, '{"as_of": "2024-12-31", "scheme": "sec_scores"}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(k, t, a::float8, '{"as_of": "2024-12-31", "scheme": "sec_scores"}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(kt, t, a, '{"as_of": "2024-12-31", "scheme": "sec_scores"}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.analyze(kt, t, a::float8, '{"as_of": "2024-12-31", "scheme": "sec_scores"}') FROM pg_temp.sec_rows) s,
     LATERAL rfm.overview(v) o;
SELECT count(*) AS clv_models
FROM (SELECT rfm.clv_fit(k, t, a) AS m FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(k, t, a::float8) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(kt, t, a) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(kt, t, a::float8) FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(k, t, a, '{"as_of": "2024-12-31", "penalizer": 0.1}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(k, t, a::float8, '{"as_of": "2024-12-31", "penalizer": 0.1}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(kt, t, a, '{"as_of": "2024-12-31", "penalizer": 0.1}') FROM pg_temp.sec_rows
      UNION ALL SELECT rfm.clv_fit(kt, t, a::float8, '{"as_of": "2024-12-31", "penalizer": 0.1}') FROM pg_temp.sec_rows) s
WHERE m IS NOT NULL;
RESET client_min_messages;
SELECT rfm.score(7, '{2,4,6,8}', true, true) AS score, rfm.fm_score(4, 5) AS fm,
       rfm.segment(5, 1, 1, 'sec_scores') AS saved_scheme_segment,
       rfm.abc_tier(5, (SELECT rfm.abc_thresholds(a::float8) FROM pg_temp.sec_rows), '{A,B,C}') AS tier,
       (SELECT rfm.abc_thresholds(a::float8, '{0.5,0.3,0.2}') FROM pg_temp.sec_rows) IS NOT NULL AS abc_shares,
       (SELECT rfm.quantile_thresholds(a::float8) FROM pg_temp.sec_rows) IS NOT NULL AS quintiles,
       (SELECT rfm.quantile_thresholds(a::float8, 4) FROM pg_temp.sec_rows) IS NOT NULL AS quartiles;
RESET search_path;
SELECT count(*) AS hostile_code_runs FROM sec.trace;
-- the hostile objects do run where a name is left to the search_path (so the check above
-- can fail): the unqualified function and the operator
SET search_path = sec_hostile, pg_catalog, pg_temp;
SELECT _user_scheme('sec_scores') ? 'segments' AS hostile_function_found, 'a'::text = 'a'::text AS hostile_operator_found;
RESET search_path;
SELECT DISTINCT what FROM sec.trace ORDER BY 1;
TRUNCATE sec.trace;
DROP SCHEMA sec_hostile CASCADE;
SELECT rfm.drop_scheme('sec_scores');
SELECT count(*) AS sec_scores_left FROM rfm.schemes WHERE scheme = 'sec_scores';

-- SECURITY DEFINER only where a function must write the catalog: the _do_* implementations
SELECT p.proname AS security_definer_function FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'rfm' AND p.prosecdef AND p.proname !~ '^_do_' ORDER BY 1;
SELECT count(*) AS security_definer_implementations,
       count(*) FILTER (WHERE has_function_privilege('public', p.oid, 'EXECUTE')
                           OR has_function_privilege('rfm_admin', p.oid, 'EXECUTE')
                           OR has_function_privilege('rfm_reader', p.oid, 'EXECUTE')) AS executable_by_anyone
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'rfm' AND p.prosecdef;

-- ---------------------------------------------------------------------------------------
-- 4. Failures are isolated: a broken segmentation is reported, logged and can be deactivated

SET ROLE sec_admin1;
CREATE TABLE sec.gone (customer_id bigint, ordered_at timestamptz, amount numeric);
SELECT rfm.create_segmentation('sec_gone', 'sec.gone', 'customer_id', 'ordered_at', 'amount') > 0 AS created;
DROP TABLE sec.gone;
RESET ROLE;
REVOKE SELECT ON sec.tx FROM sec_admin2;
SET ROLE sec_admin2;
CREATE TABLE public.sec_admin2_tx AS SELECT customer_id, ordered_at, amount FROM generate_series(1, 3) customer_id,
    LATERAL (SELECT timestamptz '2025-12-01' AS ordered_at, 10::numeric AS amount) x;
SELECT rfm.create_segmentation('sec_other', 'public.sec_admin2_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31"}') > 0 AS created;
REVOKE SELECT ON public.sec_admin2_tx FROM sec_admin2;   -- the owner loses its right to read
RESET ROLE;
SELECT segmentation, status FROM rfm.refresh_all() ORDER BY 1;
SELECT name, last_error IS NOT NULL AS has_error, left(last_error, 60) AS last_error FROM rfm.segmentation_catalog ORDER BY 1;
SET ROLE sec_admin1;
SELECT rfm.alter_segmentation('sec_gone', active => false);
SELECT rfm.alter_segmentation('sec_gone', options => '{"period": "6 months"}');
RESET ROLE;
SELECT segmentation, status FROM rfm.refresh_all() ORDER BY 1;
SELECT name, active, source FROM rfm.segmentation_catalog WHERE name = 'sec_gone';

-- ---------------------------------------------------------------------------------------
-- clean up
SELECT rfm.drop_segmentation(name) FROM rfm.segmentations ORDER BY name;
DROP TABLE public.sec_admin2_tx;
DROP SCHEMA sec CASCADE;
REVOKE CREATE ON SCHEMA public FROM sec_admin2, sec_plain;
DROP OWNED BY sec_admin1, sec_admin2, sec_reader, sec_plain, sec_north;
DROP ROLE sec_admin1, sec_admin2, sec_reader, sec_plain, sec_north;
