-- The security boundary of SPEC §11 as hostile roles try it: one guarded read of every
-- source (owner's rights, restricted, settings rolled back), no query-time reads of a
-- source, readers admitted conservatively, sources bound by OID, and the housekeeping
-- around owners, roles and scheme names. Each block says what the extension did before the
-- boundary was built this way ("before:"); every assertion marked so failed then.
-- Routes that need a second session (a rename or a scheme drop racing a refresh or a
-- definition), pg_cron job owners and a second database: tests/integration/run.sh.
-- The routes of the earlier round (escalation through the source's code, hostile objects
-- on a superuser's search_path, the plumbing called directly) are in security.sql; block 7
-- runs a variant of each that the suites did not have.
SET TimeZone = 'UTC';
CREATE ROLE hs_admin LOGIN IN ROLE rfm_admin;     -- a hostile administrator: owns sources
CREATE ROLE hs_admin2 LOGIN IN ROLE rfm_admin;    -- another administrator
CREATE ROLE hs_reader LOGIN IN ROLE rfm_reader;   -- an analyst
CREATE ROLE hs_bi LOGIN IN ROLE rfm_reader;       -- a BI tool's account
CREATE ROLE hs_plain LOGIN;                       -- no rfm role at all
CREATE SCHEMA hs AUTHORIZATION hs_admin;
GRANT USAGE ON SCHEMA hs TO PUBLIC;
-- what ran as whom: written by the hostile code below
CREATE TABLE hs.trace (who name, what text);
GRANT INSERT ON hs.trace TO PUBLIC;
-- every view of rfm read as the current role: 'no error' for each (or the error)
CREATE FUNCTION rfm_test.read_every_view() RETURNS TABLE (view_name name, result text)
LANGUAGE sql AS $$
    SELECT c.relname, rfm_test.error_of(format('SELECT count(*) FROM rfm.%I', c.relname))
    FROM pg_class c WHERE c.relnamespace = 'rfm'::regnamespace AND c.relkind = 'v'
      AND has_table_privilege(c.oid, 'SELECT')
    ORDER BY 1
$$;
-- the settings a source's code tries to leave behind, as the caller sees them
CREATE FUNCTION rfm_test.settings() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' | ', current_setting('search_path'), current_setting('work_mem'),
                     current_setting('statement_timeout'), current_setting('default_transaction_read_only'),
                     current_setting('application_name'))
$$;

SET ROLE hs_admin;
CREATE TABLE hs.tx (customer_id bigint, region text, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO hs.tx
SELECT 1 + (g * 7919) % 30, CASE WHEN g % 3 = 0 THEN 'south' ELSE 'north' END,
       timestamptz '2025-12-31' - ((g * 104729) % 300) * interval '1 day',
       round((5 + (g * 31) % 300)::numeric / 3, 2)
FROM generate_series(1, 600) g;
GRANT SELECT ON hs.tx TO hs_admin2;
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- 1. Settings do not outlive the source read (before: a plain SET or set_config(..., false)
-- in the source's code stayed in force for the rest of the refresh and in the caller's
-- session: refresh_all, refresh and preview by a superuser)

SET ROLE hs_admin;
CREATE FUNCTION hs.settle() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO hs.trace VALUES (current_user, 'settle');
    PERFORM set_config('search_path', 'hs, pg_catalog', false);
    PERFORM set_config('work_mem', '77kB', false);
    SET statement_timeout = '7777s';
    SET default_transaction_read_only = on;
    SET LOCAL application_name = 'hs was here';
    RETURN true;
END
$$;
CREATE VIEW hs.settle_tx AS SELECT * FROM hs.tx WHERE hs.settle();
SELECT rfm.create_segmentation('hs_settle', 'hs.settle_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
RESET ROLE;
SELECT rfm_test.settings() AS before_any_refresh \gset
SELECT segmentation, status FROM rfm.refresh_all() WHERE segmentation = 'hs_settle';
SELECT rfm_test.settings() = :'before_any_refresh' AS refresh_all_left_settings_alone;
SELECT rfm.refresh('hs_settle') IS NOT NULL AS refreshed;
SELECT rfm_test.settings() = :'before_any_refresh' AS refresh_left_settings_alone;
SELECT count(*) > 0 AS previewed FROM rfm.preview('hs_settle');
SELECT rfm_test.settings() = :'before_any_refresh' AS preview_left_settings_alone;
-- inside one transaction too, and when a later source fails after its SET
BEGIN;
SET ROLE hs_admin;
CREATE FUNCTION hs.settle_then_fail() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('work_mem', '99kB', false);
    RAISE EXCEPTION USING ERRCODE = 'data_exception', MESSAGE = 'the source fails on purpose';
END
$$;
CREATE VIEW hs.failing_tx AS SELECT * FROM hs.tx WHERE hs.settle_then_fail();
SELECT rfm.create_segmentation('hs_failing', 'hs.failing_tx', 'customer_id', 'ordered_at', 'amount') > 0 AS created;
RESET ROLE;
SELECT segmentation, left(status, 40) AS status FROM rfm.refresh_all()
WHERE segmentation IN ('hs_settle', 'hs_failing') ORDER BY 1;
SELECT rfm_test.settings() = :'before_any_refresh' AS settings_unchanged_in_the_transaction;
SELECT rfm_test.error_of($$SELECT rfm.refresh('hs_failing')$$);
SELECT rfm_test.settings() = :'before_any_refresh' AS unchanged_after_a_failed_read;
COMMIT;
SELECT DISTINCT who, what FROM hs.trace ORDER BY 1, 2;
TRUNCATE hs.trace;

-- the restrictions of the read hold whatever the code tries (these were refused before
-- too; set_config('role', ...) and a temporary table are variants the suites did not have)
SET ROLE hs_admin;
CREATE FUNCTION hs.escape() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        PERFORM set_config('role', 'postgres', false);
        INSERT INTO hs.trace VALUES (current_user, 'role changed');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'set role refused: ' || SQLSTATE);
    END;
    BEGIN
        CREATE TEMP TABLE hs_leftover (x int);
        INSERT INTO hs.trace VALUES (current_user, 'temp table created');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'temp table refused: ' || SQLSTATE);
    END;
    BEGIN
        EXECUTE 'ALTER ROLE hs_admin SUPERUSER';
        INSERT INTO hs.trace VALUES (current_user, 'became superuser');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'superuser refused: ' || SQLSTATE);
    END;
    RETURN true;
END
$$;
CREATE VIEW hs.escape_tx AS SELECT * FROM hs.tx WHERE hs.escape();
SELECT rfm.create_segmentation('hs_escape', 'hs.escape_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
RESET ROLE;
SELECT rfm.refresh('hs_escape') IS NOT NULL AS superuser_refreshed;
SELECT DISTINCT who, what FROM hs.trace ORDER BY 1, 2;
SELECT rolsuper AS admin_is_superuser FROM pg_roles WHERE rolname = 'hs_admin';
SELECT current_user AS still_the_caller, to_regclass('pg_temp.hs_leftover') AS leftover;
TRUNCATE hs.trace;

-- ---------------------------------------------------------------------------------------
-- 2. No query-time reads (before: rfm.segment_performance_latest and
-- rfm.segment_performance ran the source's code as whoever read them, a superuser's
-- dashboard included; and a reader's query of that view failed with 42501 when another
-- segmentation's source was in a schema the reader had no USAGE on)

SET ROLE hs_admin;
SELECT rfm.alter_segmentation('hs_settle', options => '{"as_of": "2025-12-31 23:59:59+00", "performance": true}');
SELECT rfm.refresh('hs_settle') IS NOT NULL AS refreshed_with_report;
RESET ROLE;
TRUNCATE hs.trace;
-- a superuser reads every view and the report: the source's code does not run
SELECT view_name, result FROM rfm_test.read_every_view();
SELECT count(*) AS report_rows FROM rfm.segment_performance('hs_settle');
SELECT rfm_test.settings() = :'before_any_refresh' AS settings_unchanged;
SELECT count(*) AS source_code_runs FROM hs.trace;
-- another administrator's segmentation over a schema the readers may not even look into
CREATE SCHEMA hs_hidden AUTHORIZATION hs_admin2;
SET ROLE hs_admin2;
CREATE TABLE hs_hidden.tx AS SELECT * FROM hs.tx;
SELECT rfm.create_segmentation('hs_hidden', 'hs_hidden.tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00", "performance": true}') > 0 AS created;
SELECT rfm.refresh('hs_hidden') IS NOT NULL AS refreshed;
RESET ROLE;
SET ROLE hs_reader;
SELECT view_name, result FROM rfm_test.read_every_view() WHERE result <> 'no error';
SELECT count(*) AS reader_views_without_error FROM rfm_test.read_every_view() WHERE result = 'no error';
SELECT count(*) AS hidden_segmentation_seen FROM rfm.segmentation_catalog WHERE name = 'hs_hidden';
SET ROLE hs_bi;
SELECT count(*) AS bi_views_without_error FROM rfm_test.read_every_view() WHERE result = 'no error';
RESET ROLE;
SELECT count(*) AS source_code_runs FROM hs.trace;
TRUNCATE hs.trace;

-- ---------------------------------------------------------------------------------------
-- 3. Readers, conservatively (before: any reader with SELECT on a view source saw the whole
-- segmentation, though the view showed it a part; last_error showed row values to readers)

SET ROLE hs_admin;
-- a view that shows each role its own part: the owner all 30 customers, others 10
CREATE VIEW hs.mine AS SELECT * FROM hs.tx WHERE current_user = 'hs_admin' OR customer_id <= 10;
-- a security_invoker view over a table with row-level security for the reader
CREATE TABLE hs.rls_tx AS SELECT * FROM hs.tx;
ALTER TABLE hs.rls_tx ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_part ON hs.rls_tx FOR SELECT TO hs_reader USING (customer_id <= 10);
CREATE VIEW hs.invoker_tx WITH (security_invoker) AS SELECT * FROM hs.rls_tx;
GRANT SELECT ON hs.tx, hs.mine, hs.rls_tx, hs.invoker_tx TO hs_reader;
SELECT rfm.create_segmentation('hs_mine', 'hs.mine', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.create_segmentation('hs_invoker', 'hs.invoker_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.create_segmentation('hs_rls', 'hs.rls_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.create_segmentation('hs_table', 'hs.tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.refresh(n) IS NOT NULL AS refreshed FROM unnest(ARRAY['hs_mine', 'hs_invoker', 'hs_rls', 'hs_table']) n;
SELECT name, customers FROM rfm.segmentation_catalog WHERE name IN ('hs_mine', 'hs_invoker', 'hs_rls', 'hs_table') ORDER BY 1;
RESET ROLE;
SET ROLE hs_reader;
SELECT (SELECT count(*) FROM hs.mine) > 0 AS reader_reads_the_view,
       (SELECT count(DISTINCT customer_id) FROM hs.invoker_tx) AS reader_sees_through_the_invoker_view;
-- views: only by the owner's grant; the RLS table: per row; a plain table: whole
SELECT s.name, c.access, (SELECT count(*) FROM rfm.customer_segments x WHERE x.segmentation = s.name) AS customers
FROM unnest(ARRAY['hs_mine', 'hs_invoker', 'hs_rls', 'hs_table']) s(name)
LEFT JOIN rfm.segmentation_catalog c ON c.name = s.name ORDER BY 1;
RESET ROLE;
SET ROLE hs_admin;
SELECT rfm.grant_segmentation('hs_mine', 'hs_reader');
RESET ROLE;
SET ROLE hs_reader;
SELECT access, customers FROM rfm.segmentation_catalog WHERE name = 'hs_mine';
RESET ROLE;
-- last_error: to the owner only, though a granted reader sees the segmentation
SET ROLE hs_admin;
CREATE FUNCTION hs.leak(a numeric) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'row value % of the source', a;
END
$$;
CREATE OR REPLACE VIEW hs.mine AS SELECT * FROM hs.tx WHERE hs.leak(amount);
RESET ROLE;
SELECT segmentation, left(status, 40) AS status FROM rfm.refresh_all() WHERE segmentation = 'hs_mine';
SET ROLE hs_admin;
SELECT left(last_error, 30) AS owner_sees_last_error FROM rfm.segmentation_catalog WHERE name = 'hs_mine';
SET ROLE hs_reader;
SELECT name, last_error, last_error_at FROM rfm.segmentation_catalog WHERE name = 'hs_mine';
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- 4. The source is bound by OID, and the owner's code cannot change its segmentation in
-- the middle of the refresh that runs it (before: it altered or dropped it)

TRUNCATE hs.trace;
SET ROLE hs_admin;
CREATE FUNCTION hs.selfish() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        PERFORM rfm.alter_segmentation('hs_self', active => false);
        INSERT INTO hs.trace VALUES (current_user, 'altered itself');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'alter refused: ' || SQLSTATE);
    END;
    BEGIN
        PERFORM rfm.drop_segmentation('hs_self');
        INSERT INTO hs.trace VALUES (current_user, 'dropped itself');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'drop refused: ' || SQLSTATE);
    END;
    BEGIN
        PERFORM rfm.refresh('hs_table');
        INSERT INTO hs.trace VALUES (current_user, 'refreshed another');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'refresh refused: ' || SQLSTATE);
    END;
    RETURN true;
END
$$;
CREATE TABLE hs.self_tx AS SELECT * FROM hs.tx;
CREATE VIEW hs.self_view AS SELECT * FROM hs.self_tx WHERE hs.selfish();
SELECT rfm.create_segmentation('hs_self', 'hs.self_view', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
RESET ROLE;
SELECT rfm.refresh('hs_self') IS NOT NULL AS superuser_refreshed;
SELECT DISTINCT who, what FROM hs.trace ORDER BY 1, 2;
SELECT name, active FROM rfm.segmentations WHERE name = 'hs_self';
-- the error a direct call gets, by name
SET ROLE hs_admin;
CREATE OR REPLACE FUNCTION hs.selfish() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM rfm.drop_segmentation('hs_self');
    RETURN true;
END
$$;
SELECT rfm_test.error_of($$SELECT rfm.refresh('hs_self')$$);
RESET ROLE;
TRUNCATE hs.trace;
-- renamed: the segmentation follows its table; a table that takes the old name is not
-- read (the race with a refresh that waits for the rename: tests/integration/run.sh)
SET ROLE hs_admin;
CREATE TABLE hs.bound_tx AS SELECT * FROM hs.tx;
SELECT rfm.create_segmentation('hs_bound', 'hs.bound_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.refresh('hs_bound') IS NOT NULL AS refreshed;
ALTER TABLE hs.bound_tx RENAME TO bound_tx_renamed;
CREATE TABLE hs.bound_tx (customer_id bigint, region text, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO hs.bound_tx VALUES (999, 'x', '2025-12-30', 1);
SELECT rfm.refresh('hs_bound') IS NOT NULL AS refreshed_again;
SELECT count(*) AS customers_left_by_the_rename FROM rfm.customer_movement
WHERE segmentation = 'hs_bound' AND to_segment IS NULL;
SELECT source FROM rfm.segmentation_catalog WHERE name = 'hs_bound';
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- 5. Owners and roles (before: DROP ROLE of an owner left orphaned segmentations and
-- schemes; grant_segmentation accepted a role OID that matches no role)

CREATE ROLE hs_leaver LOGIN IN ROLE rfm_admin;
GRANT SELECT ON hs.tx TO hs_leaver;
SET ROLE hs_leaver;
SELECT rfm.create_segmentation('hs_left', 'hs.tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm.create_scheme('hs_leaver_rules', '{"segments": [{"name": "Big", "when": {"monetary": {">=": 500}}}], "default": "Small"}') IS NOT NULL AS saved;
SELECT * FROM rfm.owned_objects();
RESET ROLE;
SELECT rfm_test.error_of($$DROP ROLE hs_leaver$$);
SET ROLE hs_admin2;   -- another administrator may neither list nor take them
SELECT rfm_test.error_of($$SELECT * FROM rfm.owned_objects('hs_leaver')$$);
SELECT rfm_test.error_of($$SELECT rfm.reassign_owned('hs_leaver', 'hs_admin2')$$);
RESET ROLE;
SELECT rfm.reassign_owned('hs_leaver', 'hs_admin') AS reassigned;
DROP OWNED BY hs_leaver;
DROP ROLE hs_leaver;
SELECT kind, name FROM rfm.owned_objects('hs_admin') WHERE name LIKE 'hs_le%' ORDER BY 1;
SELECT owner FROM rfm.segmentation_catalog WHERE name = 'hs_left';
-- the mark is taken back when a role owns nothing any more
SELECT has_function_privilege('hs_admin2', 'rfm.owned_objects(regrole)', 'EXECUTE') AS admin2_marked;
SET ROLE hs_admin2;
SELECT rfm.drop_segmentation('hs_hidden');
RESET ROLE;
SELECT has_function_privilege('hs_admin2', 'rfm.owned_objects(regrole)', 'EXECUTE') AS admin2_still_marked;
-- unknown role OIDs are 42704, not a silent grant
SET ROLE hs_admin;
SELECT rfm_test.error_of($$SELECT rfm.grant_segmentation('hs_table', 999999::oid::regrole)$$);
RESET ROLE;
SELECT count(*) AS grants_to_unknown_roles FROM rfm.readers r WHERE NOT EXISTS (SELECT 1 FROM pg_roles x WHERE x.oid = r.reader);

-- ---------------------------------------------------------------------------------------
-- 6. Scheme names (before: control characters, leading and trailing spaces, zero-width
-- characters and case variants of built-in names were accepted, and a long name was echoed
-- in full in errors)

SET ROLE hs_admin;
SELECT i, rfm_test.error_of(format('SELECT rfm.create_scheme(%L, %L)', n,
           '{"segments": [{"name": "Big", "when": {"monetary": {">=": 500}}}], "default": "Small"}')) AS result
FROM unnest(ARRAY['Standard', 'LIFECYCLE', ' vip', 'vip ', E'vip\n', E'tab\there',
                  'zero' || U&'\200B' || 'width', U&'\202E' || 'piv']) WITH ORDINALITY s(n, i);
SELECT rfm.create_scheme('hs_rules', '{"segments": [{"name": "Big", "when": {"monetary": {">=": 500}}}], "default": "Small"}') IS NOT NULL AS saved;
SELECT rfm_test.error_of($$SELECT rfm.create_scheme('HS_Rules', '{"segments": [{"name": "Big", "when": {"monetary": {">=": 500}}}], "default": "Small"}')$$);
-- errors quote at most a short prefix of a name
SELECT f AS call, length(rfm_test.error_of(format(f, repeat('n', 1000000)))) < 300 AS short_error
FROM unnest(ARRAY['SELECT rfm.create_scheme(%L, ''{}'')', 'SELECT rfm.drop_scheme(%L)',
                  'SELECT rfm.scheme_definition(%L)', 'SELECT rfm.refresh(%L)',
                  'SELECT rfm.create_segmentation(%L, ''hs.tx'', ''customer_id'', ''ordered_at'', ''amount'')',
                  'SELECT rfm.segment(5, 5, 5, %L)']) f;
SELECT rfm_test.error_of(format('SELECT rfm.drop_scheme(%L)', repeat('n', 1000000)));
SELECT rfm.drop_scheme('hs_rules');
RESET ROLE;

-- ---------------------------------------------------------------------------------------
-- 7. Variants of the earlier round's routes

-- (a) the owner's code in a row-level security policy of a plain table source (not a view)
-- tries to become superuser during a superuser's refresh and preview
SET ROLE hs_admin;
CREATE FUNCTION hs.policy_spy(r text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE hs_admin SUPERUSER';
        INSERT INTO hs.trace VALUES (current_user, 'policy became superuser');
    EXCEPTION WHEN OTHERS THEN INSERT INTO hs.trace VALUES (current_user, 'policy refused: ' || SQLSTATE);
    END;
    RETURN true;
END
$$;
CREATE TABLE hs.policy_tx AS SELECT * FROM hs.tx;
ALTER TABLE hs.policy_tx ENABLE ROW LEVEL SECURITY;
ALTER TABLE hs.policy_tx FORCE ROW LEVEL SECURITY;
CREATE POLICY spy ON hs.policy_tx FOR SELECT USING (hs.policy_spy(region));
SELECT rfm.create_segmentation('hs_policy', 'hs.policy_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
RESET ROLE;
SELECT rfm.refresh('hs_policy') IS NOT NULL AS superuser_refreshed, count(*) > 0 AS previewed
FROM rfm.preview('hs_policy');
SELECT DISTINCT who, what FROM hs.trace ORDER BY 1, 2;
SELECT rolsuper AS admin_is_superuser FROM pg_roles WHERE rolname = 'hs_admin';
TRUNCATE hs.trace;

-- (b) hostile objects on a superuser's search_path, against the functions and views of
-- this round: an = operator for every type they compare, and lower(text)
GRANT CREATE ON SCHEMA public TO hs_plain;
SET ROLE hs_plain;
CREATE FUNCTION public.hs_trace(what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO hs.trace VALUES (current_user, what);
    BEGIN
        EXECUTE 'ALTER ROLE hs_plain SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
CREATE FUNCTION public.hs_eq_text(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.hs_trace('= text') AND pg_catalog.texteq($1, $2) $$;
CREATE FUNCTION public.hs_eq_oid(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT public.hs_trace('= oid') AND pg_catalog.oideq($1, $2) $$;
CREATE FUNCTION public.hs_eq_regrole(regrole, regrole) RETURNS boolean LANGUAGE sql AS $$ SELECT public.hs_trace('= regrole') AND pg_catalog.oideq($1, $2) $$;
CREATE FUNCTION public.hs_eq_bigint(bigint, bigint) RETURNS boolean LANGUAGE sql AS $$ SELECT public.hs_trace('= bigint') AND pg_catalog.int8eq($1, $2) $$;
CREATE FUNCTION public.hs_eq_name(name, name) RETURNS boolean LANGUAGE sql AS $$ SELECT public.hs_trace('= name') AND pg_catalog.nameeq($1, $2) $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE sql AS $$ SELECT CASE WHEN public.hs_trace('lower') THEN pg_catalog.lower($1) END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hs_eq_text);
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.hs_eq_oid);
CREATE OPERATOR public.= (LEFTARG = regrole, RIGHTARG = regrole, FUNCTION = public.hs_eq_regrole);
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.hs_eq_bigint);
CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = name, FUNCTION = public.hs_eq_name);
RESET ROLE;
TRUNCATE hs.trace;
SET search_path = public, pg_catalog;
SELECT rfm.refresh('hs_settle') IS NOT NULL AS refreshed;
SELECT count(*) > 0 AS report FROM rfm.segment_performance('hs_settle');
SELECT count(*) >= 0 AS listed FROM rfm.owned_objects('hs_admin');
SELECT rfm.reassign_owned('hs_admin2', 'hs_admin2') AS reassigned_nothing;
SELECT rfm.create_scheme('hs_search_path', '{"segments": [{"name": "Big", "when": {"monetary": {">=": 500}}}], "default": "Small"}') IS NOT NULL AS saved;
SELECT rfm.drop_scheme('hs_search_path');
SELECT rfm.grant_segmentation('hs_table', 'hs_bi'), rfm.revoke_segmentation('hs_table', 'hs_bi');
SELECT count(*) AS views_read FROM rfm_test.read_every_view() WHERE result = 'no error';
RESET search_path;
SELECT count(*) AS hostile_code_runs FROM hs.trace;
SELECT rolsuper AS plain_is_superuser FROM pg_roles WHERE rolname = 'hs_plain';
-- (the hostile operator does run where a name is left to the search_path)
SET search_path = public, pg_catalog;
SELECT 'a'::text = 'a'::text AS hostile_operator_found;
RESET search_path;
SELECT count(*) > 0 AS hostile_code_can_run FROM hs.trace;
TRUNCATE hs.trace;
DROP OPERATOR public.= (text, text), public.= (oid, oid), public.= (regrole, regrole), public.= (bigint, bigint),
    public.= (name, name);
DROP FUNCTION public.hs_eq_text(text, text), public.hs_eq_oid(oid, oid), public.hs_eq_regrole(regrole, regrole),
    public.hs_eq_bigint(bigint, bigint), public.hs_eq_name(name, name), public.lower(text), public.hs_trace(text);
REVOKE CREATE ON SCHEMA public FROM hs_plain;

-- (c) the plumbing of this round called directly: nobody but the extension may
SET ROLE hs_admin;
SELECT rfm_test.error_of($$SELECT rfm._lock_source('hs.tx'::regclass)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm._read_source_as('hs_admin'::regrole, 'hs.tx'::regclass, 'SELECT NULL::bytea FROM hs.tx', '{}', 'UTC')$$);
SELECT rfm_test.error_of($$SELECT rfm._mark_owner('hs_plain'::regrole)$$);
SELECT rfm_test.error_of($$SELECT rfm._do_reassign_owned(10, 'hs_admin2', 'hs_admin')$$);
SELECT rfm_test.error_of($$INSERT INTO rfm.run_performance VALUES (1, 1, 'x', 1, 1, 1, 1)$$);
RESET ROLE;
-- a superuser calling _read_source_as without the lock is refused too: the lock comes first
SELECT rfm_test.error_of($$SELECT * FROM rfm._read_source_as('hs_admin'::regrole, 'hs.tx'::regclass, 'SELECT NULL::bytea FROM hs.tx', '{}', 'UTC')$$);

-- ---------------------------------------------------------------------------------------
-- clean up
SELECT rfm.drop_segmentation(name) FROM rfm.segmentations WHERE name LIKE 'hs\_%' ORDER BY name;
SELECT rfm.drop_scheme(name) FROM rfm.user_schemes WHERE name LIKE 'hs\_%' ORDER BY name;
DROP SCHEMA hs, hs_hidden CASCADE;
DROP FUNCTION rfm_test.read_every_view(), rfm_test.settings();
DROP OWNED BY hs_admin, hs_admin2, hs_reader, hs_bi, hs_plain;
DROP ROLE hs_admin, hs_admin2, hs_reader, hs_bi, hs_plain;
