-- Managed segmentations, part 2 of 7: checks, options and the definition functions.
-- Every function pins search_path; names of the extension are written rfm.*.

-- The C plumbing (src/managed.rs). EXECUTE on these is revoked from PUBLIC in part 7:
-- only the extension's SECURITY DEFINER functions call _lock_source and _read_source_as.
--
-- _read_source_as is the one guarded read of a user's relation (SPEC §11): every refresh,
-- rfm.refresh_all, pg_cron job and preview reads its source through it and nothing else of
-- the extension reads a source with anyone's rights but per-row visibility checks
-- (rfm._visible_keys). It runs the query as the owner inside a security-restricted
-- operation, in a settings nest level that is rolled back afterwards, and restores the
-- caller's user and security context on every path (the comment of read_source_as in
-- src/managed.rs says why each step is there).
CREATE FUNCTION _lock_source(source oid) RETURNS boolean
    LANGUAGE c VOLATILE STRICT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'lock_source_wrapper';
COMMENT ON FUNCTION _lock_source(oid) IS
    'Internal: locks a segmentation''s source by OID (until the end of the transaction) and says whether it still exists';

CREATE FUNCTION _read_source_as(owner oid, source oid, query text, options jsonb, time_zone text)
RETURNS TABLE (analysis analysis, performance jsonb)
    LANGUAGE c VOLATILE STRICT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'read_source_as_wrapper';
COMMENT ON FUNCTION _read_source_as(oid, oid, text, jsonb, text) IS
    'Internal: runs the query of a refresh over its locked source with the rights of the segmentation owner, in its time zone (security-restricted, settings rolled back)';

-- The day of a timestamp written as text (an as_of option; NULL: now) in a time zone, read
-- the way rfm.analyze reads it in that zone. The SET clause confines the zone to this call.
CREATE FUNCTION _day_in_zone(ts text, time_zone text) RETURNS date
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
BEGIN
    PERFORM set_config('TimeZone', time_zone, true);
    RETURN coalesce(ts::timestamptz, now())::date;
END
$$;

-- A time zone, checked as rfm.analyze checks its option time_zone (one checker; a zone it
-- accepts is one the TimeZone setting of the guarded read accepts), or 22023 naming it.
CREATE FUNCTION _check_time_zone(time_zone jsonb) RETURNS void
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT FROM rfm.check_options(pg_catalog.jsonb_build_object('time_zone', time_zone))
$$;

-- A name (or any text from a caller) as error messages show it: quoted, and cut to its
-- first 40 characters, so that a megabyte of name is not echoed back.
CREATE FUNCTION _shown(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN name IS NULL THEN 'NULL'
                WHEN length(name) <= 40 THEN '"' || name || '"'
                ELSE '"' || left(name, 40) || '..." (' || octet_length(name) || ' bytes)' END
$$;

CREATE FUNCTION _assigned(analysis analysis, kind text, default_segment text, only_keys text[], extra_keys text[])
RETURNS TABLE (customer_key text, segment text, r integer, f integer, m integer, fm integer,
               rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text)
    LANGUAGE c IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'assigned_wrapper';
COMMENT ON FUNCTION _assigned(analysis, text, text, text[], text[]) IS
    'Internal: the automatic assignment stored for a run, one row per customer';

CREATE FUNCTION _changes(old analysis, old_kind text, old_default text, new analysis, new_kind text, new_default text)
RETURNS TABLE (customer_key text, from_segment text, to_segment text, monetary numeric,
               from_r smallint, from_f smallint, from_m smallint, from_recency_days integer,
               from_frequency bigint, from_monetary numeric, to_r smallint, to_f smallint,
               to_m smallint, to_recency_days integer, to_frequency bigint)
    LANGUAGE c IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'changes_wrapper';
COMMENT ON FUNCTION _changes(analysis, text, text, analysis, text, text) IS
    'Internal: the customers whose automatic segment differs between two runs';

-- 22004 naming the argument when a required argument is NULL.
CREATE FUNCTION _not_null(value anyelement, argument text, fn text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('argument "%s" of rfm.%s must not be NULL', argument, fn);
    END IF;
END
$$;

-- The definition of a segmentation, or 42704.
CREATE FUNCTION _definition(segmentation text, fn text) RETURNS segmentations
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    PERFORM rfm._not_null(segmentation, 'segmentation', fn);
    SELECT * INTO s FROM rfm.segmentations WHERE name = segmentation;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('segmentation %s does not exist', rfm._shown(segmentation)),
            HINT = 'rfm.segmentation_catalog lists the segmentations you may see.';
    END IF;
    RETURN s;
END
$$;

-- The definition of a segmentation locked FOR UPDATE (one change or refresh at a time), as
-- it is once locked; 42704 when it was dropped meanwhile.
CREATE FUNCTION _lock_definition(id integer, name text) RETURNS segmentations
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    SELECT * INTO s FROM rfm.segmentations x WHERE x.id = _lock_definition.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('segmentation %s does not exist', rfm._shown(_lock_definition.name)),
            HINT = 'It was dropped while this call waited for it.';
    END IF;
    RETURN s;
END
$$;

-- Whether a role may manage (alter, drop, refresh, override, share) a segmentation: its
-- owner, a member of the owner's role, or a superuser.
CREATE FUNCTION _may_manage(caller oid, s segmentations) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = caller), false)
        OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE oid = s.owner)
            AND pg_catalog.pg_has_role(caller, s.owner, 'USAGE'))
$$;

-- 42501 unless the caller may manage the segmentation. A role that may not even see it
-- gets the same answer as for a segmentation that does not exist.
CREATE FUNCTION _require_manager(caller oid, s segmentations, fn text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT rfm._may_manage(caller, s) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for segmentation "%s"', s.name),
            DETAIL = format('rfm.%s needs the rights of its owner, %s.', fn,
                            coalesce((SELECT rolname FROM pg_catalog.pg_roles WHERE oid = s.owner)::text,
                                     'a dropped role')),
            HINT = 'Run it as the owner (or a member of the owner''s role) or a superuser.';
    END IF;
END
$$;

-- How a column of the source is passed to rfm.analyze: the cast that makes it usable, or
-- 42703/42804.
CREATE FUNCTION _column_cast(source regclass, col name, role text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = source AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('column "%s" does not exist in %s', col, source);
    END IF;
    IF role = 'customer' THEN
        IF typ IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype) THEN RETURN 'pg_catalog.int8'; END IF;
        IF typ IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype,
                   'uuid'::regtype, 'name'::regtype) THEN RETURN 'pg_catalog.text'; END IF;
    ELSIF role = 'time' THEN
        IF typ IN ('timestamp with time zone'::regtype, 'timestamp without time zone'::regtype,
                   'date'::regtype) THEN RETURN 'pg_catalog.timestamptz'; END IF;
    ELSIF role = 'amount' THEN
        IF typ IN ('numeric'::regtype, 'bigint'::regtype, 'integer'::regtype, 'smallint'::regtype,
                   'money'::regtype) THEN RETURN 'pg_catalog.numeric'; END IF;
        IF typ IN ('double precision'::regtype, 'real'::regtype) THEN RETURN 'pg_catalog.float8'; END IF;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
        MESSAGE = format('column "%s" of %s has type %s, which cannot be used as the %s column',
                         col, source, typ, role),
        HINT = CASE role
            WHEN 'customer' THEN 'Customer keys must be integers or text (or uuid, varchar).'
            WHEN 'time' THEN 'Times must be timestamptz, timestamp or date.'
            ELSE 'Amounts must be numeric, integer or double precision.' END;
END
$$;

-- Checks that a source can be read by a refresh with the owner's rights: it exists, is a
-- table, view, materialized view or foreign table, is not temporary, its three columns have
-- usable types, and the owner may SELECT them.
CREATE FUNCTION _check_source(owner regrole, source regclass, customer_column name, time_column name,
                              amount_column name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c pg_catalog.pg_class;
    col name;
BEGIN
    SELECT * INTO c FROM pg_catalog.pg_class WHERE oid = source;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_table',
            MESSAGE = format('the source (oid %s) does not exist', source::oid);
    END IF;
    IF c.relkind NOT IN ('r', 'v', 'm', 'p', 'f') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('%s is not a table or view', source);
    END IF;
    IF c.relpersistence = 't' THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = format('%s is a temporary table, which cannot be the source of a segmentation', source),
            HINT = 'A refresh runs in other sessions (pg_cron, rfm.refresh_all); use a regular or unlogged table.';
    END IF;
    PERFORM rfm._column_cast(source, customer_column, 'customer');
    PERFORM rfm._column_cast(source, time_column, 'time');
    PERFORM rfm._column_cast(source, amount_column, 'amount');
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE oid = owner) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('the owner (oid %s) of the segmentation no longer exists', owner::oid);
    END IF;
    FOREACH col IN ARRAY ARRAY[customer_column, time_column, amount_column] LOOP
        IF NOT pg_catalog.has_column_privilege(owner, source, col, 'SELECT') THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('role %s may not read column "%s" of %s', owner, col, source),
                HINT = 'A segmentation reads its source with the rights of its owner; grant SELECT on the source (or these columns) to the owner.';
        END IF;
    END LOOP;
END
$$;

-- The options rfm.analyze receives: a definition's options without the managed-only ones,
-- the as_of "now" resolved, and for ABC the tier settings. The options of rfm.analyze keep
-- their names (year, abc_min_sales, ...) and are resolved by rfm.analyze itself, in the
-- guarded read, in the segmentation's time zone. Defaults are never written here:
-- rfm.check_options (Rust) fills them in.
CREATE FUNCTION _analyze_options(s segmentations) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o jsonb := s.options - 'default_tier' - 'excluded_tiers' - 'performance' - 'time_zone';
BEGIN
    IF o ->> 'as_of' = 'now' THEN
        o := o - 'as_of';
    END IF;
    IF s.kind = 'abc' THEN
        o := o || '{"scheme": null, "buckets": 5}';
        IF s.options ? 'excluded_tiers' THEN
            -- the tier names (defaults resolved) without the excluded ones
            o := jsonb_set(o, '{abc_names}', coalesce((
                SELECT jsonb_agg(n ORDER BY i)
                FROM jsonb_array_elements_text(rfm.check_options(o) -> 'abc_names') WITH ORDINALITY t(n, i)
                WHERE NOT (s.options -> 'excluded_tiers') ? n), '[]'));
        END IF;
        IF s.options ? 'default_tier' THEN
            o := o || '{"keep_excluded": true}';
        END IF;
    END IF;
    RETURN o;
END
$$;

-- The segments (or ABC tiers) of a definition, in display order.
CREATE FUNCTION _segments(kind text, options jsonb)
RETURNS TABLE (ordinal integer, segment text, description text, actions text[],
               visit_every_days integer, priority integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    resolved jsonb := rfm.check_options(options - 'year' - 'default_tier' - 'excluded_tiers'
                                        - 'as_of' - 'period' - 'performance' - 'time_zone');
BEGIN
    IF kind = 'abc' THEN
        RETURN QUERY SELECT i::integer, n, NULL::text, NULL::text[], NULL::integer, NULL::integer
            FROM jsonb_array_elements_text(resolved -> 'abc_names') WITH ORDINALITY t(n, i);
    ELSE
        RETURN QUERY SELECT sc.position, sc.segment, sc.description, sc.actions, sc.visit_every_days,
                            sc.priority
            FROM rfm.schemes sc
            WHERE sc.scheme = resolved ->> 'scheme' ORDER BY sc.position;
    END IF;
END
$$;

-- Validates the settings of a definition; with check_source also its source and the owner's
-- right to read it. Raises the first problem found.
CREATE FUNCTION _validate(s segmentations, check_source boolean) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    allowed text[];
    names text[];
BEGIN
    IF s.name IS NULL OR s.name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid segmentation name %s', rfm._shown(s.name)),
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
    IF check_source THEN
        PERFORM rfm._check_source(s.owner, s.source, s.customer_column, s.time_column, s.amount_column);
    END IF;
    IF jsonb_typeof(s.options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'options must be a JSON object';
    END IF;
    allowed := CASE s.kind
        WHEN 'rfm' THEN ARRAY['as_of', 'period', 'year', 'buckets', 'scheme', 'method', 'thresholds',
                              'abc_shares', 'abc_names', 'clv', 'performance', 'time_zone']
        ELSE ARRAY['as_of', 'period', 'year', 'abc_shares', 'abc_names', 'abc_min_sales',
                   'default_tier', 'excluded_tiers', 'performance', 'time_zone'] END;
    FOR k IN SELECT jsonb_object_keys(s.options) LOOP
        -- one name per concept, the name rfm.analyze takes
        IF k = 'min_sales' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'option "min_sales" is called "abc_min_sales"',
                HINT = 'Managed segmentations take the option names of rfm.analyze: write {"abc_min_sales": ...}.';
        END IF;
        IF NOT k = ANY (allowed) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('unknown option %s for a segmentation of kind %s', rfm._shown(k), s.kind),
                HINT = format('Valid options are: %s.', array_to_string(allowed, ', '));
        END IF;
    END LOOP;
    IF s.options ? 'time_zone' THEN
        PERFORM rfm._check_time_zone(s.options -> 'time_zone');
    END IF;
    IF s.options ? 'performance' AND jsonb_typeof(s.options -> 'performance') IS DISTINCT FROM 'boolean' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('option "performance" must be true or false, got %s', left((s.options -> 'performance')::text, 40));
    END IF;
    IF s.kind = 'abc' THEN
        names := ARRAY(SELECT g.segment FROM rfm._segments(s.kind, s.options) g ORDER BY g.ordinal);
        IF s.options ? 'default_tier' AND (jsonb_typeof(s.options -> 'default_tier') <> 'string'
                                          OR NOT (s.options ->> 'default_tier') = ANY (names)) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('option "default_tier" must be one of the tier names %s, got %s',
                                 names, s.options -> 'default_tier');
        END IF;
        IF s.options ? 'excluded_tiers' AND (jsonb_typeof(s.options -> 'excluded_tiers') <> 'array'
            OR EXISTS (SELECT 1 FROM jsonb_array_elements(s.options -> 'excluded_tiers') e
                       WHERE jsonb_typeof(e) <> 'string' OR NOT (e #>> '{}') = ANY (names))) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('option "excluded_tiers" must list tier names from %s, got %s',
                                 names, s.options -> 'excluded_tiers');
        END IF;
    END IF;
    -- everything rfm.analyze itself checks (period, buckets, scheme, thresholds, shares,
    -- min_sales as abc_min_sales, numbers out of range, ...)
    PERFORM rfm.check_options(rfm._analyze_options(s));
END
$$;

-- The one query of a refresh. Every name in it is qualified; it runs with search_path
-- pg_catalog, pg_temp (rfm._read_source_as). Written only once the source is locked by OID
-- (rfm._lock_source), so that the name it uses is the bound relation's. With performance
-- bounds (the option "performance"), a second column in the same statement, and so the
-- same snapshot, holds each customer's revenue in the month of as_of up to its end, the
-- same days of the month before (the whole month when as_of is its month's last day) and
-- the year to date: {"key": [this_month, last_month, ytd], ...}.
-- The first instant of a day in a segmentation's time zone, as SQL text that means that
-- instant in any session (seconds since the epoch).
CREATE FUNCTION _midnight(day date, s segmentations) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('pg_catalog.to_timestamp(%s::pg_catalog.float8)',
                  extract(epoch FROM (day::timestamp AT TIME ZONE (s.options ->> 'time_zone'))))
$$;

CREATE FUNCTION _source_query(s segmentations, as_of_day date) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT rfm.analyze(%1$I::%2$s, %3$I::pg_catalog.timestamptz, %4$I::%5$s, $1)', s.customer_column,
                  rfm._column_cast(s.source, s.customer_column, 'customer'), s.time_column, s.amount_column,
                  rfm._column_cast(s.source, s.amount_column, 'amount'))
        || CASE WHEN as_of_day IS NULL THEN '' ELSE format(
           ', (SELECT pg_catalog.jsonb_object_agg(p.k, pg_catalog.jsonb_build_array(p.m, p.l, p.y)) FROM ('
           'SELECT %1$I::pg_catalog.text AS k,'
           ' pg_catalog.sum(%4$I::pg_catalog.numeric) FILTER (WHERE %3$I OPERATOR(pg_catalog.>=) %7$s) AS m,'
           ' pg_catalog.sum(%4$I::pg_catalog.numeric) FILTER (WHERE %3$I OPERATOR(pg_catalog.>=) %8$s'
           ' AND %3$I OPERATOR(pg_catalog.<) %12$s) AS l,'
           ' pg_catalog.sum(%4$I::pg_catalog.numeric) FILTER (WHERE %3$I OPERATOR(pg_catalog.>=) %9$s) AS y'
           ' FROM %6$s WHERE %3$I OPERATOR(pg_catalog.>=) %10$s'
           ' AND %3$I OPERATOR(pg_catalog.<) %11$s AND %1$I IS NOT NULL GROUP BY 1) p)',
           s.customer_column, NULL, s.time_column, s.amount_column, NULL, s.source,
           rfm._midnight(date_trunc('month', as_of_day)::date, s),
           rfm._midnight((date_trunc('month', as_of_day) - interval '1 month')::date, s),
           rfm._midnight(date_trunc('year', as_of_day)::date, s),
           rfm._midnight(least((date_trunc('month', as_of_day) - interval '1 month')::date,
                               date_trunc('year', as_of_day)::date), s),
           rfm._midnight(as_of_day + 1, s),
           -- the end of the same days of the month before: as many days as this month has
           -- had, the whole month when as_of is the last day of its month
           rfm._midnight(CASE WHEN as_of_day + 1 = (date_trunc('month', as_of_day) + interval '1 month')::date
                THEN date_trunc('month', as_of_day)::date
                ELSE least((date_trunc('month', as_of_day) - interval '1 month')::date
                           + (as_of_day - date_trunc('month', as_of_day)::date + 1),
                           date_trunc('month', as_of_day)::date) END, s)) END
        || format(' FROM %s', s.source)
$$;

-- A saved scheme a definition uses stays as it is until the definition's transaction ends:
-- the scheme's row is locked FOR SHARE, so rfm.drop_scheme and rfm.create_scheme(…, replace)
-- (which lock it FOR UPDATE and then look for users) wait for this transaction and then see
-- the segmentation that uses it; if they went first, the scheme is read again after the lock
-- and its absence is reported (SPEC §11, housekeeping).
CREATE FUNCTION _lock_scheme(kind text, options jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF kind = 'rfm' AND jsonb_typeof(options -> 'scheme') = 'string' THEN
        PERFORM 1 FROM rfm.user_schemes u WHERE u.name = options ->> 'scheme' FOR SHARE;
    END IF;
END
$$;

-- The segmentations and saved schemes a role owns. Its EXECUTE privilege is also the mark
-- of an owner: rfm grants it to every role that owns a segmentation or a scheme (and
-- revokes it when the role owns none), so that PostgreSQL itself refuses DROP ROLE of an
-- owner ("privileges for function rfm.owned_objects(regrole)"), in this database and from
-- every other one. Move what a role owns with rfm.reassign_owned before dropping it.
CREATE FUNCTION _do_owned_objects(caller oid, role regrole)
RETURNS TABLE (kind text, name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM rfm._not_null(role, 'role', 'owned_objects');
    IF NOT (coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = caller), false)
            OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE oid = role)
                AND pg_catalog.pg_has_role(caller, role, 'USAGE'))) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to list what role %s owns', role),
            HINT = 'Only the role itself, its members and superusers may.';
    END IF;
    RETURN QUERY
        SELECT 'segmentation'::text, s.name FROM rfm.segmentations s WHERE s.owner = role
        UNION ALL
        SELECT 'scheme'::text, u.name FROM rfm.user_schemes u WHERE u.owner = role
        ORDER BY 1, 2;
END
$$;

CREATE FUNCTION owned_objects(role regrole DEFAULT current_user::regrole)
RETURNS TABLE (kind text, name text)
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION owned_objects(regrole) IS
    'The segmentations and saved schemes a role owns (EXECUTE on it marks an owner, so that DROP ROLE of an owner is refused; see rfm.reassign_owned)';

-- Grants or revokes the owner mark of a role: granted while it owns anything, revoked when
-- it owns nothing (or no longer exists).
CREATE FUNCTION _mark_owner(role oid) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rname name := (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = role);
    owns boolean := EXISTS (SELECT 1 FROM rfm.segmentations s WHERE s.owner = role)
                    OR EXISTS (SELECT 1 FROM rfm.user_schemes u WHERE u.owner = role);
BEGIN
    IF rname IS NULL THEN
        RETURN;
    END IF;
    IF owns THEN
        EXECUTE format('GRANT EXECUTE ON FUNCTION rfm.owned_objects(regrole) TO %I', rname);
    ELSE
        EXECUTE format('REVOKE EXECUTE ON FUNCTION rfm.owned_objects(regrole) FROM %I', rname);
    END IF;
END
$$;

-- The role a caller names, or 42704 when no role has that name or OID ('12345'::regrole
-- accepts any number).
CREATE FUNCTION _existing_role(role regrole, argument text, fn text) RETURNS regrole
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM rfm._not_null(role, argument, fn);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = role) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('role with OID %s does not exist', role::oid),
            HINT = format('Argument "%s" of rfm.%s names a role by name or by OID.', argument, fn);
    END IF;
    RETURN role;
END
$$;

-- The public functions below are entry points in C (rfm.managed_entry): each calls the
-- SECURITY DEFINER implementation rfm._do_<name> with the role that called it first.

CREATE FUNCTION _do_create_segmentation(
    caller oid, name text, source regclass, customer_column name, time_column name, amount_column name,
    options jsonb, kind text, mode text, active boolean)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations;
BEGIN
    PERFORM rfm._not_null(name, 'name', 'create_segmentation');
    PERFORM rfm._not_null(source, 'source', 'create_segmentation');
    PERFORM rfm._not_null(customer_column, 'customer_column', 'create_segmentation');
    PERFORM rfm._not_null(time_column, 'time_column', 'create_segmentation');
    PERFORM rfm._not_null(amount_column, 'amount_column', 'create_segmentation');
    PERFORM rfm._not_null(active, 'active', 'create_segmentation');
    s.name := name; s.owner := caller; s.source := source; s.source_name := source::text;
    s.customer_column := customer_column; s.time_column := time_column; s.amount_column := amount_column;
    s.options := coalesce(options, '{}'); s.kind := kind; s.mode := mode; s.active := active;
    -- a refresh does not depend on who runs it: the creator's time zone unless one is given
    IF jsonb_typeof(s.options) = 'object' AND NOT s.options ? 'time_zone' THEN
        s.options := s.options || jsonb_build_object('time_zone', current_setting('TimeZone'));
    END IF;
    PERFORM rfm._lock_scheme(s.kind, s.options);
    PERFORM rfm._validate(s, true);
    IF EXISTS (SELECT 1 FROM rfm.segmentations x WHERE x.name = s.name) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('segmentation %s already exists', rfm._shown(s.name));
    END IF;
    INSERT INTO rfm.segmentations (name, owner, kind, source, source_name, customer_column, time_column,
                                   amount_column, options, mode, active)
    VALUES (s.name, s.owner, s.kind, s.source, s.source_name, s.customer_column, s.time_column,
            s.amount_column, s.options, s.mode, s.active)
    RETURNING id INTO s.id;
    PERFORM rfm._mark_owner(caller);
    RETURN s.id;
END
$$;

CREATE FUNCTION create_segmentation(
    name text, source regclass, customer_column name, time_column name, amount_column name,
    options jsonb DEFAULT '{}', kind text DEFAULT 'rfm', mode text DEFAULT 'dynamic',
    active boolean DEFAULT true)
RETURNS integer
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean) IS
    'Saves a segmentation owned by the calling role, after checking the source, its columns, the options and the role''s right to read them';

CREATE FUNCTION _do_alter_segmentation(
    caller oid, name text, options jsonb, mode text, active boolean,
    source regclass, customer_column name, time_column name, amount_column name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name, 'alter_segmentation');
    source_changed boolean;
BEGIN
    PERFORM rfm._require_manager(caller, s, 'alter_segmentation');
    -- one change of a definition at a time, and not while it is being refreshed: the
    -- definition as it is once locked (a concurrent change committed meanwhile included)
    s := rfm._lock_definition(s.id, s.name);
    source_changed := (source IS NOT NULL AND source IS DISTINCT FROM s.source)
        OR (customer_column IS NOT NULL AND customer_column IS DISTINCT FROM s.customer_column)
        OR (time_column IS NOT NULL AND time_column IS DISTINCT FROM s.time_column)
        OR (amount_column IS NOT NULL AND amount_column IS DISTINCT FROM s.amount_column);
    -- new options without a time zone keep the stored one
    s.options := CASE WHEN options IS NULL THEN s.options
                      WHEN jsonb_typeof(options) = 'object' AND NOT options ? 'time_zone' AND s.options ? 'time_zone'
                      THEN options || jsonb_build_object('time_zone', s.options -> 'time_zone')
                      ELSE options END;
    s.mode := coalesce(mode, s.mode);
    s.active := coalesce(active, s.active);
    s.source := coalesce(source, s.source);
    s.customer_column := coalesce(customer_column, s.customer_column);
    s.time_column := coalesce(time_column, s.time_column);
    s.amount_column := coalesce(amount_column, s.amount_column);
    PERFORM rfm._lock_scheme(s.kind, s.options);
    -- the source is checked only when it changes, so that a segmentation whose source was
    -- dropped (or whose owner lost the right to read it) can still be changed or deactivated
    PERFORM rfm._validate(s, source_changed);
    -- a change of scheme, kind or tier names must not strand overrides in a segment that
    -- no longer exists
    IF EXISTS (SELECT 1 FROM rfm.overrides o WHERE o.segmentation_id = s.id
               AND NOT EXISTS (SELECT 1 FROM rfm._segments(s.kind, s.options) g WHERE g.segment = o.segment)) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('the new options of segmentation "%s" have no segment %s, used by %s override(s)',
                             s.name,
                             (SELECT string_agg(DISTINCT quote_literal(o.segment), ', ') FROM rfm.overrides o
                              WHERE o.segmentation_id = s.id
                                AND NOT EXISTS (SELECT 1 FROM rfm._segments(s.kind, s.options) g WHERE g.segment = o.segment)),
                             (SELECT count(*) FROM rfm.overrides o WHERE o.segmentation_id = s.id
                                AND NOT EXISTS (SELECT 1 FROM rfm._segments(s.kind, s.options) g WHERE g.segment = o.segment))),
            HINT = format('Move those customers to segments of the new scheme with rfm.set_override, or clear them with rfm.clear_override(%L, key) or rfm.clear_overrides(%L), then alter again.', s.name, s.name);
    END IF;
    IF source_changed THEN
        s.source_name := s.source::text;
    END IF;
    UPDATE rfm.segmentations x
    SET options = s.options, mode = s.mode, active = s.active, source = s.source,
        source_name = s.source_name, customer_column = s.customer_column,
        time_column = s.time_column, amount_column = s.amount_column, updated_at = now()
    WHERE x.id = s.id;
END
$$;

CREATE FUNCTION alter_segmentation(
    name text, options jsonb DEFAULT NULL, mode text DEFAULT NULL, active boolean DEFAULT NULL,
    source regclass DEFAULT NULL, customer_column name DEFAULT NULL, time_column name DEFAULT NULL,
    amount_column name DEFAULT NULL)
RETURNS void
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name) IS
    'Changes a definition (NULL keeps a setting); the next refresh uses it. Needs the owner''s rights';

CREATE FUNCTION _do_drop_segmentation(caller oid, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name, 'drop_segmentation');
BEGIN
    PERFORM rfm._require_manager(caller, s, 'drop_segmentation');
    s := rfm._lock_definition(s.id, s.name);
    PERFORM rfm._unschedule(s);
    DELETE FROM rfm.history WHERE segmentation_id = s.id;
    DELETE FROM rfm.segmentations WHERE id = s.id;
    PERFORM rfm._mark_owner(s.owner);
END
$$;

CREATE FUNCTION drop_segmentation(name text) RETURNS void
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION drop_segmentation(text) IS
    'Drops a definition with its runs, assignment, overrides, history and pg_cron job. Needs the owner''s rights';

CREATE FUNCTION _do_grant_segmentation(caller oid, name text, reader regrole) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name, 'grant_segmentation');
BEGIN
    PERFORM rfm._existing_role(reader, 'reader', 'grant_segmentation');
    PERFORM rfm._require_manager(caller, s, 'grant_segmentation');
    INSERT INTO rfm.readers (segmentation_id, reader) VALUES (s.id, reader) ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION grant_segmentation(name text, reader regrole) RETURNS void
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION grant_segmentation(text, regrole) IS
    'Lets a role (and its members) read a segmentation as its owner sees it, whatever its own rights on the source';

CREATE FUNCTION _do_revoke_segmentation(caller oid, name text, reader regrole) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(name, 'revoke_segmentation');
BEGIN
    PERFORM rfm._not_null(reader, 'reader', 'revoke_segmentation');
    PERFORM rfm._require_manager(caller, s, 'revoke_segmentation');
    DELETE FROM rfm.readers r WHERE r.segmentation_id = s.id AND r.reader = _do_revoke_segmentation.reader;
    RETURN FOUND;
END
$$;

CREATE FUNCTION revoke_segmentation(name text, reader regrole) RETURNS boolean
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION revoke_segmentation(text, regrole) IS
    'Takes back rfm.grant_segmentation; returns whether the role had been granted the segmentation';

CREATE FUNCTION _do_reassign_owned(caller oid, old_owner regrole, new_owner regrole) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    superuser boolean := coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid = caller), false);
    n bigint;
    m bigint;
BEGIN
    PERFORM rfm._not_null(old_owner, 'old_owner', 'reassign_owned');
    PERFORM rfm._existing_role(new_owner, 'new_owner', 'reassign_owned');
    -- as REASSIGN OWNED: the rights of both roles (a dropped old owner: superusers only)
    IF NOT superuser AND NOT (EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE oid = old_owner)
                              AND pg_catalog.pg_has_role(caller, old_owner, 'USAGE')
                              AND pg_catalog.pg_has_role(caller, new_owner, 'USAGE')) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = 'permission denied to reassign segmentations and schemes',
            HINT = 'Only roles with the privileges of both the old and the new owner (or a superuser) may.';
    END IF;
    UPDATE rfm.segmentations s SET owner = new_owner, updated_at = now() WHERE s.owner = old_owner;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE rfm.user_schemes u SET owner = new_owner, updated_at = now() WHERE u.owner = old_owner;
    GET DIAGNOSTICS m = ROW_COUNT;
    PERFORM rfm._mark_owner(new_owner);
    PERFORM rfm._mark_owner(old_owner);
    RETURN n + m;
END
$$;

CREATE FUNCTION reassign_owned(old_owner regrole, new_owner regrole) RETURNS bigint
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION reassign_owned(regrole, regrole) IS
    'Gives every segmentation and saved scheme of one role to another (as REASSIGN OWNED does for PostgreSQL objects); returns how many';
