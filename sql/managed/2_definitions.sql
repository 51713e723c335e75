-- Managed segmentations, part 2 of 7: checks, options and the definition functions.
-- Every function pins search_path; names of the extension are written rfm.*.

-- The C plumbing (src/managed.rs). EXECUTE on these is revoked from PUBLIC in part 7:
-- only the extension's SECURITY DEFINER functions call _read_source_as.
CREATE FUNCTION _read_source_as(owner oid, query text, options jsonb) RETURNS analysis
    LANGUAGE c VOLATILE STRICT SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'read_source_as_wrapper';
COMMENT ON FUNCTION _read_source_as(oid, text, jsonb) IS
    'Internal: runs the query of a refresh with the rights of the segmentation owner (restricted operation)';

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
            MESSAGE = format('segmentation "%s" does not exist', segmentation),
            HINT = 'rfm.segmentation_catalog lists the segmentations you may see.';
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

-- The options rfm.analyze receives: a definition's options with "year" turned into as_of
-- and period, the as_of "now" resolved, and for ABC the tier settings. Defaults are never
-- written here: rfm.check_options (Rust) fills them in.
CREATE FUNCTION _analyze_options(s segmentations) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
            -- the tier names (defaults resolved) without the excluded ones
            o := jsonb_set(o, '{abc_names}', coalesce((
                SELECT jsonb_agg(n ORDER BY i)
                FROM jsonb_array_elements_text(rfm.check_options(o) -> 'abc_names') WITH ORDINALITY t(n, i)
                WHERE NOT (s.options -> 'excluded_tiers') ? n), '[]'));
        END IF;
        IF s.options ? 'min_sales' THEN
            o := o || jsonb_build_object('abc_min_sales', s.options -> 'min_sales');
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
    resolved jsonb := rfm.check_options(options - 'year' - 'min_sales' - 'default_tier' - 'excluded_tiers'
                                        - 'as_of' - 'period');
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
    IF check_source THEN
        PERFORM rfm._check_source(s.owner, s.source, s.customer_column, s.time_column, s.amount_column);
    END IF;
    IF jsonb_typeof(s.options) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'options must be a JSON object';
    END IF;
    allowed := CASE s.kind
        WHEN 'rfm' THEN ARRAY['as_of', 'period', 'year', 'buckets', 'scheme', 'method', 'thresholds',
                              'abc_shares', 'abc_names', 'clv']
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
-- pg_catalog, pg_temp (rfm._read_source_as).
CREATE FUNCTION _source_query(s segmentations) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('SELECT rfm.analyze(%I::%s, %I::pg_catalog.timestamptz, %I::%s, $1) FROM %s',
                  s.customer_column, rfm._column_cast(s.source, s.customer_column, 'customer'),
                  s.time_column,
                  s.amount_column, rfm._column_cast(s.source, s.amount_column, 'amount'),
                  s.source)
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
    PERFORM rfm._validate(s, true);
    IF EXISTS (SELECT 1 FROM rfm.segmentations x WHERE x.name = s.name) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('segmentation "%s" already exists', s.name);
    END IF;
    INSERT INTO rfm.segmentations (name, owner, kind, source, source_name, customer_column, time_column,
                                   amount_column, options, mode, active)
    VALUES (s.name, s.owner, s.kind, s.source, s.source_name, s.customer_column, s.time_column,
            s.amount_column, s.options, s.mode, s.active)
    RETURNING id INTO s.id;
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
    source_changed := (source IS NOT NULL AND source IS DISTINCT FROM s.source)
        OR (customer_column IS NOT NULL AND customer_column IS DISTINCT FROM s.customer_column)
        OR (time_column IS NOT NULL AND time_column IS DISTINCT FROM s.time_column)
        OR (amount_column IS NOT NULL AND amount_column IS DISTINCT FROM s.amount_column);
    s.options := coalesce(options, s.options);
    s.mode := coalesce(mode, s.mode);
    s.active := coalesce(active, s.active);
    s.source := coalesce(source, s.source);
    s.customer_column := coalesce(customer_column, s.customer_column);
    s.time_column := coalesce(time_column, s.time_column);
    s.amount_column := coalesce(amount_column, s.amount_column);
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
    PERFORM 1 FROM rfm.segmentations WHERE id = s.id FOR UPDATE;
    PERFORM rfm._unschedule(s);
    DELETE FROM rfm.history WHERE segmentation_id = s.id;
    DELETE FROM rfm.segmentations WHERE id = s.id;
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
    PERFORM rfm._not_null(reader, 'reader', 'grant_segmentation');
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
