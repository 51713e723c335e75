-- Managed segmentations: saved definitions, refresh with history, manual overrides, and
-- the views BI tools read. Everything here is plain SQL and PL/pgSQL on top of
-- rfm.analyze; identifiers from definitions are always quoted with format('%I').

-- Roles: rfm_admin defines, refreshes and overrides; rfm_reader reads the views.
-- Roles belong to the cluster, so they are created only when missing and outlive
-- DROP EXTENSION.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rfm_reader') THEN
        CREATE ROLE rfm_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rfm_admin') THEN
        CREATE ROLE rfm_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_auth_members
                   WHERE roleid = 'rfm_reader'::regrole AND member = 'rfm_admin'::regrole) THEN
        GRANT rfm_reader TO rfm_admin;
    END IF;
END
$roles$;

GRANT USAGE ON SCHEMA rfm TO PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Catalog and data tables

CREATE TABLE segmentations (
    id              serial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('rfm', 'abc')),
    source          regclass NOT NULL,
    customer_column name NOT NULL,
    time_column     name NOT NULL,
    amount_column   name NOT NULL,
    options         jsonb NOT NULL DEFAULT '{}',
    mode            text NOT NULL DEFAULT 'dynamic' CHECK (mode IN ('dynamic', 'static')),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE segmentations IS 'Saved segmentation definitions (use rfm.create_segmentation)';

CREATE TABLE runs (
    id                 bigserial PRIMARY KEY,
    segmentation_id    integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    as_of              timestamptz NOT NULL,
    period             interval NOT NULL,
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    customers          bigint,
    excluded_customers bigint,
    total_revenue      numeric,
    transactions       bigint,
    changed            bigint,
    forced             boolean NOT NULL DEFAULT false
);
CREATE INDEX ON runs (segmentation_id, id);
COMMENT ON TABLE runs IS 'One row per refresh of a segmentation';

CREATE TABLE run_segments (
    run_id    bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    position  integer NOT NULL,
    segment   text NOT NULL,
    customers bigint NOT NULL,
    revenue   numeric NOT NULL,
    PRIMARY KEY (run_id, segment)
);

CREATE TABLE run_thresholds (
    run_id      bigint NOT NULL REFERENCES runs ON DELETE CASCADE,
    metric      text NOT NULL,
    score       integer NOT NULL,
    lower_bound double precision,
    upper_bound double precision,
    customers   bigint NOT NULL,
    PRIMARY KEY (run_id, metric, score)
);

CREATE TABLE assignments (
    segmentation_id integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    customer_key    text NOT NULL,
    segment         text,
    r               integer,
    f               integer,
    m               integer,
    fm              integer,
    rfm_code        text,
    recency_days    integer,
    frequency       bigint,
    monetary        numeric,
    abc_tier        text,
    run_id          bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (segmentation_id, customer_key)
);
COMMENT ON TABLE assignments IS 'The automatic assignment of the latest refresh of each segmentation';

CREATE TABLE overrides (
    segmentation_id integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    customer_key    text NOT NULL,
    segment         text NOT NULL,
    note            text,
    set_at          timestamptz NOT NULL DEFAULT now(),
    set_by          name NOT NULL DEFAULT current_user,
    PRIMARY KEY (segmentation_id, customer_key)
);
COMMENT ON TABLE overrides IS 'Manual segments; they win over the automatic one and survive refreshes';

CREATE TABLE history (
    id              bigserial PRIMARY KEY,
    segmentation_id integer NOT NULL REFERENCES segmentations ON DELETE CASCADE,
    customer_key    text NOT NULL,
    from_segment    text,
    to_segment      text,
    run_id          bigint REFERENCES runs ON DELETE SET NULL,
    monetary        numeric,
    reason          text NOT NULL CHECK (reason IN ('refresh', 'override')),
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON history (segmentation_id, run_id);
CREATE INDEX ON history (segmentation_id, customer_key, id);
COMMENT ON TABLE history IS
    'One row per change of a customer''s effective segment: entered (from NULL), left (to NULL) or moved';

SELECT pg_catalog.pg_extension_config_dump('segmentations', '');
SELECT pg_catalog.pg_extension_config_dump('segmentations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('runs', '');
SELECT pg_catalog.pg_extension_config_dump('runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('run_segments', '');
SELECT pg_catalog.pg_extension_config_dump('run_thresholds', '');
SELECT pg_catalog.pg_extension_config_dump('assignments', '');
SELECT pg_catalog.pg_extension_config_dump('overrides', '');
SELECT pg_catalog.pg_extension_config_dump('history', '');
SELECT pg_catalog.pg_extension_config_dump('history_id_seq', '');

-- ---------------------------------------------------------------------------------------
-- Internal helpers

-- The definition of a segmentation, or 42704.
CREATE FUNCTION _definition(segmentation text) RETURNS segmentations
LANGUAGE plpgsql STABLE AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    SELECT * INTO s FROM rfm.segmentations WHERE name = segmentation;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('segmentation "%s" does not exist', segmentation),
            HINT = 'rfm.segmentation_catalog lists the segmentations.';
    END IF;
    RETURN s;
END
$$;

-- How a column of the source is passed to rfm.analyze: the cast that makes it usable, or
-- 42804 when its type cannot be used.
CREATE FUNCTION _column_cast(source regclass, col name, role text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
    WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('column "%s" does not exist in %s', col, source);
    END IF;
    IF role = 'customer' THEN
        IF typ IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype) THEN RETURN 'bigint'; END IF;
        IF typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype,
                   'uuid'::regtype, 'name'::regtype) THEN RETURN 'text'; END IF;
    ELSIF role = 'time' THEN
        IF typ IN ('timestamp with time zone'::regtype, 'timestamp without time zone'::regtype,
                   'date'::regtype) THEN RETURN 'timestamptz'; END IF;
    ELSIF role = 'amount' THEN
        IF typ IN ('numeric'::regtype, 'bigint'::regtype, 'integer'::regtype, 'smallint'::regtype,
                   'money'::regtype) THEN RETURN 'numeric'; END IF;
        IF typ IN ('double precision'::regtype, 'real'::regtype) THEN RETURN 'double precision'; END IF;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = format('column "%s" of %s has type %s, which cannot be used as the %s column',
                         col, source, typ, role),
        HINT = CASE role
            WHEN 'customer' THEN 'Customer keys must be integers or text.'
            WHEN 'time' THEN 'Times must be timestamptz, timestamp or date.'
            ELSE 'Amounts must be numeric, integer or double precision.' END;
END
$$;

-- The options rfm.analyze receives: a definition's options with "year" turned into as_of
-- and period, and the as_of of "now" resolved.
CREATE FUNCTION _analyze_options(s segmentations) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o jsonb := s.options - 'year' - 'min_sales' - 'default_tier' - 'excluded_tiers';
    y integer;
BEGIN
    IF s.options ? 'year' THEN
        y := (s.options ->> 'year')::integer;
        o := o || jsonb_build_object(
            'as_of', ((make_date(y + 1, 1, 1)::timestamptz) - interval '1 microsecond')::text,
            'period', '1 year');
    END IF;
    IF o ->> 'as_of' = 'now' THEN
        o := o - 'as_of';
    END IF;
    IF s.kind = 'abc' THEN
        o := o || '{"scheme": null, "buckets": 5}';
        IF s.options ? 'excluded_tiers' THEN
            o := jsonb_set(o, '{abc_names}', coalesce((
                SELECT jsonb_agg(n ORDER BY i) FROM jsonb_array_elements_text(o -> 'abc_names') WITH ORDINALITY t(n, i)
                WHERE NOT (s.options -> 'excluded_tiers') ? n), '[]'));
        END IF;
    END IF;
    RETURN o;
END
$$;

-- Validates everything a definition says; raises the first problem found.
CREATE FUNCTION _validate(s segmentations) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    k text;
    allowed text[];
    names text[];
BEGIN
    IF s.name IS NULL OR s.name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid segmentation name %s', coalesce(quote_literal(s.name), 'NULL')),
            HINT = 'Names start with a lower-case letter and use only a-z, 0-9 and _ (at most 63 characters).';
    END IF;
    IF s.kind IS NULL OR s.kind NOT IN ('rfm', 'abc') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('kind must be rfm or abc, got %s', coalesce(quote_literal(s.kind), 'NULL'));
    END IF;
    IF s.mode IS NULL OR s.mode NOT IN ('dynamic', 'static') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('mode must be dynamic or static, got %s', coalesce(quote_literal(s.mode), 'NULL'));
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = s.source) NOT IN ('r', 'v', 'm', 'p', 'f') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('%s is not a table or view', s.source);
    END IF;
    PERFORM rfm._column_cast(s.source, s.customer_column, 'customer');
    PERFORM rfm._column_cast(s.source, s.time_column, 'time');
    PERFORM rfm._column_cast(s.source, s.amount_column, 'amount');
    IF jsonb_typeof(s.options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'options must be a JSON object';
    END IF;
    allowed := CASE s.kind
        WHEN 'rfm' THEN ARRAY['as_of', 'period', 'year', 'buckets', 'scheme', 'method', 'thresholds',
                              'abc_shares', 'abc_names']
        ELSE ARRAY['as_of', 'period', 'year', 'abc_shares', 'abc_names', 'min_sales',
                   'default_tier', 'excluded_tiers'] END;
    FOR k IN SELECT jsonb_object_keys(s.options) LOOP
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('unknown option "%s" for a segmentation of kind %s', k, s.kind),
                HINT = format('Valid options are: %s.', array_to_string(allowed, ', '));
        END IF;
    END LOOP;
    IF s.options ? 'year' AND (jsonb_typeof(s.options -> 'year') <> 'number'
                               OR (s.options ->> 'year') !~ '^\d{4}$') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('option "year" must be a four-digit year, got %s', s.options -> 'year');
    END IF;
    IF s.options ? 'year' AND (s.options ? 'as_of' OR s.options ? 'period') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'option "year" cannot be combined with "as_of" or "period"';
    END IF;
    IF s.kind = 'abc' THEN
        IF s.options ? 'min_sales' AND jsonb_typeof(s.options -> 'min_sales') <> 'number' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('option "min_sales" must be a number, got %s', s.options -> 'min_sales');
        END IF;
        names := ARRAY(SELECT jsonb_array_elements_text(coalesce(s.options -> 'abc_names', '["A","B","C"]')));
        IF s.options ? 'default_tier' AND NOT (s.options ->> 'default_tier') = ANY (names) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('option "default_tier" must be one of the tier names %s', names);
        END IF;
        IF s.options ? 'excluded_tiers' AND (jsonb_typeof(s.options -> 'excluded_tiers') <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(s.options -> 'excluded_tiers') e
                       WHERE NOT e = ANY (names))) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('option "excluded_tiers" must list tier names from %s', names);
        END IF;
    END IF;
    -- everything rfm.analyze itself checks (period, buckets, scheme, thresholds, shares, ...)
    PERFORM rfm.check_options(rfm._analyze_options(s));
END
$$;

-- The segments of a segmentation in display order.
CREATE FUNCTION segments_of(segmentation text)
RETURNS TABLE (ordinal integer, segment text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
BEGIN
    IF s.kind = 'abc' THEN
        RETURN QUERY SELECT i::integer, n FROM jsonb_array_elements_text(
            coalesce(s.options -> 'abc_names', '["A","B","C"]')) WITH ORDINALITY t(n, i);
    ELSE
        RETURN QUERY SELECT sc.position, sc.segment FROM rfm.schemes sc
            WHERE sc.scheme = CASE WHEN s.options ? 'scheme' THEN s.options ->> 'scheme' ELSE 'standard' END;
    END IF;
END
$$;
COMMENT ON FUNCTION segments_of(text) IS 'The segments (or ABC tiers) of a segmentation, in display order';

-- The rfm.analysis of a definition, read with the caller's rights.
CREATE FUNCTION _analysis(s segmentations) RETURNS analysis
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a rfm.analysis;
BEGIN
    EXECUTE format('SELECT rfm.analyze(%I::%s, %I::timestamptz, %I::%s, $1) FROM %s',
                   s.customer_column, rfm._column_cast(s.source, s.customer_column, 'customer'),
                   s.time_column,
                   s.amount_column, rfm._column_cast(s.source, s.amount_column, 'amount'),
                   s.source)
        INTO a USING rfm._analyze_options(s);
    RETURN a;
END
$$;

-- What a definition assigns now, without saving anything.
CREATE FUNCTION _compute(s segmentations)
RETURNS TABLE (customer_key text, segment text, r integer, f integer, m integer, fm integer,
               rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    a rfm.analysis := rfm._analysis(s);
    o jsonb := rfm._analyze_options(s);
BEGIN
    IF s.kind = 'rfm' THEN
        RETURN QUERY SELECT c.customer_key, c.segment, c.r, c.f, c.m, c.fm, c.rfm_code,
                            c.recency_days, c.frequency, c.monetary, c.abc_tier
                     FROM rfm.customers(a) c;
        RETURN;
    END IF;
    -- ABC: rank the customers at or above min_sales; the others get no tier; customers
    -- seen only outside the window get the default tier, when there is one
    RETURN QUERY
    WITH act AS (SELECT * FROM rfm.customers(a) c
                 WHERE NOT s.options ? 'min_sales' OR c.monetary >= (s.options ->> 'min_sales')::numeric),
    th AS (SELECT rfm.abc_thresholds(act.monetary::float8,
                      ARRAY(SELECT jsonb_array_elements_text(coalesce(o -> 'abc_shares', '[0.8,0.15,0.05]'))::float8)) AS t
           FROM act)
    SELECT act.customer_key,
           rfm.abc_tier(act.monetary::float8, th.t,
                        ARRAY(SELECT jsonb_array_elements_text(coalesce(o -> 'abc_names', '["A","B","C"]')))),
           NULL::integer, NULL::integer, NULL::integer, NULL::integer, NULL::text,
           act.recency_days, act.frequency, act.monetary, NULL::text
    FROM act, th;
    IF s.options ? 'default_tier' THEN
        RETURN QUERY EXECUTE format(
            'SELECT DISTINCT %I::text, $1, NULL::integer, NULL::integer, NULL::integer, NULL::integer,
                    NULL::text, NULL::integer, 0::bigint, 0::numeric, NULL::text
             FROM %s WHERE %I IS NOT NULL AND %I::text NOT IN (SELECT c.customer_key FROM rfm.customers($2) c)',
            s.customer_column, s.source, s.customer_column, s.customer_column)
        USING s.options ->> 'default_tier', a;
    END IF;
END
$$;

-- Effective segment of every customer of a segmentation: the manual one when present.
CREATE FUNCTION _effective(segmentation_id integer)
RETURNS TABLE (customer_key text, segment text)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(a.customer_key, o.customer_key), coalesce(o.segment, a.segment)
    FROM (SELECT * FROM rfm.assignments x WHERE x.segmentation_id = _effective.segmentation_id) a
    FULL JOIN (SELECT * FROM rfm.overrides y WHERE y.segmentation_id = _effective.segmentation_id) o
        ON o.customer_key = a.customer_key
$$;

-- ---------------------------------------------------------------------------------------
-- Definitions

CREATE FUNCTION create_segmentation(
    name text, source regclass, customer_column name, time_column name, amount_column name,
    options jsonb DEFAULT '{}', kind text DEFAULT 'rfm', mode text DEFAULT 'dynamic',
    active boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    s.name := name; s.source := source; s.customer_column := customer_column;
    s.time_column := time_column; s.amount_column := amount_column;
    s.options := coalesce(options, '{}'); s.kind := kind; s.mode := mode; s.active := active;
    PERFORM rfm._validate(s);
    IF EXISTS (SELECT 1 FROM rfm.segmentations x WHERE x.name = create_segmentation.name) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('segmentation "%s" already exists', name);
    END IF;
    INSERT INTO rfm.segmentations (name, kind, source, customer_column, time_column, amount_column,
                                   options, mode, active)
    VALUES (s.name, s.kind, s.source, s.customer_column, s.time_column, s.amount_column,
            s.options, s.mode, s.active)
    RETURNING id INTO s.id;
    RETURN s.id;
END
$$;
COMMENT ON FUNCTION create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean) IS
    'Saves a segmentation definition after checking the source, its columns and the options';

CREATE FUNCTION alter_segmentation(
    name text, options jsonb DEFAULT NULL, mode text DEFAULT NULL, active boolean DEFAULT NULL,
    source regclass DEFAULT NULL, customer_column name DEFAULT NULL, time_column name DEFAULT NULL,
    amount_column name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name);
BEGIN
    s.options := coalesce(options, s.options);
    s.mode := coalesce(mode, s.mode);
    s.active := coalesce(active, s.active);
    s.source := coalesce(source, s.source);
    s.customer_column := coalesce(customer_column, s.customer_column);
    s.time_column := coalesce(time_column, s.time_column);
    s.amount_column := coalesce(amount_column, s.amount_column);
    PERFORM rfm._validate(s);
    UPDATE rfm.segmentations x
    SET options = s.options, mode = s.mode, active = s.active, source = s.source,
        customer_column = s.customer_column, time_column = s.time_column,
        amount_column = s.amount_column, updated_at = now()
    WHERE x.id = s.id;
END
$$;
COMMENT ON FUNCTION alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name) IS
    'Changes a definition (NULL keeps a setting); the next refresh uses it';

CREATE FUNCTION drop_segmentation(name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name);
BEGIN
    DELETE FROM rfm.segmentations WHERE id = s.id;
END
$$;
COMMENT ON FUNCTION drop_segmentation(text) IS 'Drops a definition with its runs, assignment, overrides and history';

-- ---------------------------------------------------------------------------------------
-- Refresh

CREATE FUNCTION refresh(segmentation text, force boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations;
    run bigint;
    a rfm.analysis;
    ov record;
    n_customers bigint;
    n_changed bigint;
    started timestamptz := clock_timestamp();
BEGIN
    -- one refresh of a segmentation at a time: the second waits for the first to commit
    SELECT * INTO s FROM rfm.segmentations WHERE name = segmentation FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM rfm._definition(segmentation);
    END IF;
    IF s.mode = 'static' AND NOT force AND EXISTS (SELECT 1 FROM rfm.runs WHERE segmentation_id = s.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('segmentation "%s" is static and was already computed', s.name),
            HINT = format('Use rfm.refresh(%L, force => true) to compute it again.', s.name);
    END IF;
    a := rfm._analysis(s);
    SELECT * INTO ov FROM rfm.overview(a);
    IF NOT FOUND THEN
        -- no rows at all: an empty segmentation as of the resolved options
        SELECT (o ->> 'as_of')::timestamptz AS as_of, (o ->> 'period')::interval AS period,
               0::bigint AS excluded_customers, 0::numeric AS total_revenue, 0::bigint AS transactions
        INTO ov FROM rfm.check_options(rfm._analyze_options(s)) o;
    END IF;
    INSERT INTO rfm.runs (segmentation_id, as_of, period, started_at, excluded_customers,
                          total_revenue, transactions, forced)
    VALUES (s.id, ov.as_of, ov.period, started, ov.excluded_customers, ov.total_revenue,
            ov.transactions, force AND s.mode = 'static')
    RETURNING id INTO run;

    IF to_regclass('pg_temp.rfm_refresh_new') IS NULL THEN
        CREATE TEMP TABLE rfm_refresh_new (
            customer_key text, segment text, r integer, f integer, m integer, fm integer,
            rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text
        ) ON COMMIT DROP;
    END IF;
    TRUNCATE rfm_refresh_new;
    INSERT INTO rfm_refresh_new SELECT * FROM rfm._compute(s);

    -- history: every customer whose effective segment changes
    INSERT INTO rfm.history (segmentation_id, customer_key, from_segment, to_segment, run_id,
                             monetary, reason)
    SELECT s.id, coalesce(o.customer_key, n.customer_key), o.segment, n.segment, run,
           n.monetary, 'refresh'
    FROM rfm._effective(s.id) o
    FULL JOIN (SELECT coalesce(x.customer_key, y.customer_key) AS customer_key,
                      coalesce(y.segment, x.segment) AS segment, x.monetary
               FROM rfm_refresh_new x
               FULL JOIN (SELECT * FROM rfm.overrides WHERE segmentation_id = s.id) y
                   ON y.customer_key = x.customer_key) n
        ON n.customer_key = o.customer_key
    WHERE o.segment IS DISTINCT FROM n.segment;
    GET DIAGNOSTICS n_changed = ROW_COUNT;

    DELETE FROM rfm.assignments WHERE segmentation_id = s.id;
    INSERT INTO rfm.assignments
    SELECT s.id, n.customer_key, n.segment, n.r, n.f, n.m, n.fm, n.rfm_code, n.recency_days,
           n.frequency, n.monetary, n.abc_tier, run, now()
    FROM rfm_refresh_new n;
    GET DIAGNOSTICS n_customers = ROW_COUNT;

    INSERT INTO rfm.run_segments (run_id, position, segment, customers, revenue)
    SELECT run, g.ordinal, g.segment, count(n.customer_key), coalesce(sum(n.monetary), 0)
    FROM rfm.segments_of(s.name) g LEFT JOIN rfm_refresh_new n ON n.segment = g.segment
    GROUP BY g.ordinal, g.segment;
    IF s.kind = 'rfm' THEN
        INSERT INTO rfm.run_thresholds SELECT run, t.* FROM rfm.thresholds(a) t;
    END IF;
    TRUNCATE rfm_refresh_new;

    UPDATE rfm.runs SET finished_at = clock_timestamp(), customers = n_customers, changed = n_changed
    WHERE id = run;
    PERFORM pg_notify('rfm_segment_changed', json_build_object(
        'segmentation', s.name, 'run_id', run, 'customers', n_customers, 'changed', n_changed)::text);
    RETURN run;
END
$$;
COMMENT ON FUNCTION refresh(text, boolean) IS
    'Recomputes a segmentation and replaces its assignment in one transaction; logs the run and the changes';

CREATE FUNCTION refresh_all() RETURNS TABLE (segmentation text, run_id bigint, status text)
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    FOR s IN SELECT * FROM rfm.segmentations ORDER BY name LOOP
        segmentation := s.name;
        run_id := NULL;
        IF NOT s.active THEN
            status := 'skipped: inactive';
        ELSIF s.mode = 'static' AND EXISTS (SELECT 1 FROM rfm.runs r WHERE r.segmentation_id = s.id) THEN
            status := 'skipped: static';
        ELSE
            run_id := rfm.refresh(s.name);
            status := 'refreshed';
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION refresh_all() IS 'Refreshes every active segmentation (static ones only until their first run)';

CREATE FUNCTION preview(segmentation text)
RETURNS TABLE (customer_key text, segment text, r integer, f integer, m integer, fm integer,
               rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text)
LANGUAGE sql VOLATILE AS $$
    SELECT * FROM rfm._compute(rfm._definition(segmentation))
$$;
COMMENT ON FUNCTION preview(text) IS 'What a refresh would assign now, without saving anything';

-- ---------------------------------------------------------------------------------------
-- Manual overrides

CREATE FUNCTION _log_override(sid integer, key text, before text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO rfm.history (segmentation_id, customer_key, from_segment, to_segment, reason)
    SELECT sid, key, before, e.segment, 'override'
    FROM (SELECT (SELECT segment FROM rfm._effective(sid) x WHERE x.customer_key = key) AS segment) e
    WHERE e.segment IS DISTINCT FROM before
$$;

CREATE FUNCTION set_override(segmentation text, customer_key text, segment text, note text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
    before text;
BEGIN
    IF customer_key IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'customer_key must not be NULL';
    END IF;
    IF segment IS NULL OR NOT EXISTS (SELECT 1 FROM rfm.segments_of(s.name) g WHERE g.segment = set_override.segment) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('"%s" is not a segment of segmentation "%s"', segment, s.name),
            HINT = format('Segments are: %s.', (SELECT string_agg(g.segment, ', ' ORDER BY g.ordinal)
                                                 FROM rfm.segments_of(s.name) g));
    END IF;
    PERFORM 1 FROM rfm.segmentations WHERE id = s.id FOR UPDATE;
    SELECT e.segment INTO before FROM rfm._effective(s.id) e WHERE e.customer_key = set_override.customer_key;
    INSERT INTO rfm.overrides (segmentation_id, customer_key, segment, note)
    VALUES (s.id, customer_key, segment, note)
    ON CONFLICT ON CONSTRAINT overrides_pkey
    DO UPDATE SET segment = EXCLUDED.segment, note = EXCLUDED.note, set_at = now(), set_by = current_user;
    PERFORM rfm._log_override(s.id, customer_key, before);
END
$$;
COMMENT ON FUNCTION set_override(text, text, text, text) IS 'Sets a manual segment for one customer';

CREATE FUNCTION clear_override(segmentation text, customer_key text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
    before text;
BEGIN
    PERFORM 1 FROM rfm.segmentations WHERE id = s.id FOR UPDATE;
    SELECT e.segment INTO before FROM rfm._effective(s.id) e WHERE e.customer_key = clear_override.customer_key;
    DELETE FROM rfm.overrides o WHERE o.segmentation_id = s.id AND o.customer_key = clear_override.customer_key;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM rfm._log_override(s.id, customer_key, before);
    RETURN true;
END
$$;
COMMENT ON FUNCTION clear_override(text, text) IS 'Clears the manual segment of one customer; returns whether there was one';

CREATE FUNCTION clear_overrides(segmentation text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
    k text;
    n bigint := 0;
BEGIN
    FOR k IN SELECT o.customer_key FROM rfm.overrides o WHERE o.segmentation_id = s.id ORDER BY 1 LOOP
        PERFORM rfm.clear_override(s.name, k);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION clear_overrides(text) IS 'Clears every manual segment of a segmentation; returns how many';

-- ---------------------------------------------------------------------------------------
-- Scheduling with pg_cron

CREATE FUNCTION schedule_refresh(segmentation text, schedule text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
    job bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_cron is not installed in this database',
            HINT = 'Install postgresql-15-cron, add pg_cron to shared_preload_libraries, restart, then CREATE EXTENSION pg_cron.';
    END IF;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
        INTO job USING 'rfm_refresh_' || s.name, schedule, format('SELECT rfm.refresh(%L)', s.name);
    RETURN job;
END
$$;
COMMENT ON FUNCTION schedule_refresh(text, text) IS
    'Schedules rfm.refresh of one segmentation with pg_cron (job name rfm_refresh_<name>)';

CREATE FUNCTION unschedule_refresh(segmentation text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation);
    ok boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_cron is not installed in this database';
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO ok USING 'rfm_refresh_' || s.name;
    RETURN ok;
END
$$;
COMMENT ON FUNCTION unschedule_refresh(text) IS 'Removes the pg_cron job of rfm.schedule_refresh';

-- ---------------------------------------------------------------------------------------
-- Views for BI tools and analysts

CREATE VIEW customer_segments AS
SELECT s.name AS segmentation, coalesce(a.customer_key, o.customer_key) AS customer_key,
       coalesce(o.segment, a.segment) AS segment, a.segment AS automatic_segment,
       o.segment AS manual_segment, a.r, a.f, a.m, a.fm, a.rfm_code, a.recency_days,
       a.frequency, a.monetary, a.abc_tier,
       greatest(a.updated_at, o.set_at) AS updated_at
FROM rfm.assignments a
FULL JOIN rfm.overrides o ON o.segmentation_id = a.segmentation_id AND o.customer_key = a.customer_key
JOIN rfm.segmentations s ON s.id = coalesce(a.segmentation_id, o.segmentation_id);
COMMENT ON VIEW customer_segments IS
    'Effective (manual when set, else automatic) segment of every customer, with scores and metrics';

CREATE VIEW segment_summary AS
WITH c AS (SELECT segmentation, segment, count(*) AS customers, coalesce(sum(monetary), 0) AS revenue,
                  avg(frequency) AS avg_frequency, avg(recency_days) AS avg_recency_days
           FROM rfm.customer_segments GROUP BY 1, 2),
t AS (SELECT segmentation, sum(customers) AS customers, sum(revenue) AS revenue FROM c GROUP BY 1)
SELECT s.name AS segmentation, g.ordinal AS position, g.segment,
       coalesce(c.customers, 0) AS customers,
       round(100.0 * coalesce(c.customers, 0) / nullif(t.customers, 0), 2) AS pct_customers,
       coalesce(c.revenue, 0) AS revenue,
       round(100.0 * coalesce(c.revenue, 0) / nullif(t.revenue, 0), 2) AS pct_revenue,
       round(c.revenue / nullif(c.customers, 0), 2) AS avg_revenue,
       round(c.avg_frequency, 2) AS avg_frequency,
       round(c.avg_recency_days, 2) AS avg_recency_days
FROM rfm.segmentations s
CROSS JOIN LATERAL rfm.segments_of(s.name) g
LEFT JOIN c ON c.segmentation = s.name AND c.segment = g.segment
LEFT JOIN t ON t.segmentation = s.name;
COMMENT ON VIEW segment_summary IS 'Customers and revenue per segment (effective segments), empty segments included';

CREATE VIEW kpi_overview AS
SELECT s.name AS segmentation, r.as_of, r.period, r.customers AS active_customers,
       r.total_revenue, r.excluded_customers, r.transactions, r.finished_at AS last_refresh
FROM rfm.segmentations s
LEFT JOIN LATERAL (SELECT * FROM rfm.runs x WHERE x.segmentation_id = s.id AND x.finished_at IS NOT NULL
                   ORDER BY x.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW kpi_overview IS 'Headline figures of the latest refresh of each segmentation';

CREATE VIEW segment_thresholds AS
SELECT s.name AS segmentation, t.metric, t.score, t.lower_bound, t.upper_bound, t.customers
FROM rfm.segmentations s
JOIN LATERAL (SELECT max(x.id) AS id FROM rfm.runs x WHERE x.segmentation_id = s.id) r ON true
JOIN rfm.run_thresholds t ON t.run_id = r.id;
COMMENT ON VIEW segment_thresholds IS 'The score ranges of the latest refresh (segmentation setup)';

CREATE VIEW segment_grid AS
SELECT s.name AS segmentation, rr.r, ff.fm,
       (SELECT sc.segment FROM rfm.schemes sc
        WHERE sc.scheme = coalesce(s.options ->> 'scheme', 'standard')
          AND format('R%s FM%s', rr.r, ff.fm) = ANY (sc.cells)) AS segment,
       count(a.customer_key) AS customers, coalesce(sum(a.monetary), 0) AS revenue,
       rt.lower_bound AS recency_lower, rt.upper_bound AS recency_upper,
       ft.lower_bound AS frequency_lower, ft.upper_bound AS frequency_upper,
       mt.lower_bound AS monetary_lower, mt.upper_bound AS monetary_upper
FROM rfm.segmentations s
CROSS JOIN generate_series(1, 5) rr(r)
CROSS JOIN generate_series(1, 5) ff(fm)
LEFT JOIN rfm.assignments a ON a.segmentation_id = s.id AND a.r = rr.r AND a.fm = ff.fm
LEFT JOIN rfm.segment_thresholds rt ON rt.segmentation = s.name AND rt.metric = 'recency' AND rt.score = rr.r
LEFT JOIN rfm.segment_thresholds ft ON ft.segmentation = s.name AND ft.metric = 'frequency' AND ft.score = ff.fm
LEFT JOIN rfm.segment_thresholds mt ON mt.segmentation = s.name AND mt.metric = 'monetary' AND mt.score = ff.fm
WHERE s.kind = 'rfm'
GROUP BY s.name, s.options, rr.r, ff.fm, rt.lower_bound, rt.upper_bound, ft.lower_bound,
         ft.upper_bound, mt.lower_bound, mt.upper_bound;
COMMENT ON VIEW segment_grid IS
    'R x FM cells (automatic scores) with customers, revenue and the score ranges of each axis';

CREATE VIEW segment_movement AS
SELECT s.name AS segmentation, h.run_id, r.as_of, r.finished_at,
       h.from_segment, h.to_segment, count(*) AS customers, coalesce(sum(h.monetary), 0) AS revenue
FROM rfm.history h
JOIN rfm.segmentations s ON s.id = h.segmentation_id
JOIN rfm.runs r ON r.id = h.run_id
WHERE h.reason = 'refresh'
GROUP BY s.name, h.run_id, r.as_of, r.finished_at, h.from_segment, h.to_segment;
COMMENT ON VIEW segment_movement IS
    'Per refresh, how many customers moved from one segment to another (NULL: entered or left) and their revenue in that run';

CREATE VIEW segment_trend AS
SELECT s.name AS segmentation, r.id AS run_id, r.as_of, r.finished_at, g.position, g.segment,
       g.customers, g.revenue
FROM rfm.run_segments g
JOIN rfm.runs r ON r.id = g.run_id
JOIN rfm.segmentations s ON s.id = r.segmentation_id;
COMMENT ON VIEW segment_trend IS 'Customers and revenue per segment per refresh (automatic segments)';

CREATE VIEW segmentation_catalog AS
SELECT s.name, s.kind, s.mode, s.active, s.source, s.customer_column, s.time_column,
       s.amount_column, s.options, s.created_at, s.updated_at,
       r.id AS last_run_id, r.as_of AS last_as_of, r.finished_at AS last_refresh,
       (SELECT count(*) FROM rfm.customer_segments c WHERE c.segmentation = s.name) AS customers
FROM rfm.segmentations s
LEFT JOIN LATERAL (SELECT * FROM rfm.runs x WHERE x.segmentation_id = s.id
                   ORDER BY x.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW segmentation_catalog IS 'Every segmentation with its kind, mode, last refresh and customer count';

-- ---------------------------------------------------------------------------------------
-- Privileges

REVOKE ALL ON segmentations, runs, run_segments, run_thresholds, assignments, overrides, history FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON segmentations, runs, run_segments, run_thresholds,
    assignments, overrides, history TO rfm_admin;
GRANT USAGE, SELECT ON SEQUENCE segmentations_id_seq, runs_id_seq, history_id_seq TO rfm_admin;
GRANT SELECT ON customer_segments, segment_summary, kpi_overview, segment_thresholds, segment_grid,
    segment_movement, segment_trend, segmentation_catalog TO rfm_reader;

REVOKE EXECUTE ON FUNCTION
    create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean),
    alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name),
    drop_segmentation(text), refresh(text, boolean), refresh_all(), preview(text),
    set_override(text, text, text, text), clear_override(text, text), clear_overrides(text),
    schedule_refresh(text, text), unschedule_refresh(text),
    _definition(text), _column_cast(regclass, name, text), _analyze_options(segmentations),
    _validate(segmentations), _analysis(segmentations), _compute(segmentations),
    _effective(integer), _log_override(integer, text, text), segments_of(text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean),
    alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name),
    drop_segmentation(text), refresh(text, boolean), refresh_all(), preview(text),
    set_override(text, text, text, text), clear_override(text, text), clear_overrides(text),
    schedule_refresh(text, text), unschedule_refresh(text),
    _definition(text), _column_cast(regclass, name, text), _analyze_options(segmentations),
    _validate(segmentations), _analysis(segmentations), _compute(segmentations),
    _effective(integer), _log_override(integer, text, text), segments_of(text)
TO rfm_admin;
-- segments_of runs with its owner's rights (it only reads segment names), so the summary
-- view works for readers, who cannot read the catalog tables themselves
GRANT EXECUTE ON FUNCTION segments_of(text) TO rfm_reader;
