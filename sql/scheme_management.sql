-- Saving and dropping segment schemes (SPEC §9). Loaded after the managed layer, whose
-- segmentations a scheme change must not pull the rug from under.

-- The public functions are entry points of rfm.managed_entry (src/managed.rs), which
-- passes the calling role to the SECURITY DEFINER implementation; the implementations are
-- executable by nobody.

-- The managed segmentations that use a scheme, as a list for messages (NULL: none).
CREATE FUNCTION _scheme_users(name text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT string_agg(quote_ident(s.name), ', ' ORDER BY s.name)
    FROM rfm.segmentations s
    WHERE s.kind OPERATOR(pg_catalog.=) 'rfm' AND s.options OPERATOR(pg_catalog.->>) 'scheme' OPERATOR(pg_catalog.=) $1
$$;

CREATE FUNCTION _do_create_scheme(caller oid, name text, definition jsonb, replace boolean)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    saved jsonb;
    old rfm.user_schemes;
    users text;
BEGIN
    IF name IS NULL OR definition IS NULL OR replace IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'rfm.create_scheme: name, definition and replace must not be NULL';
    END IF;
    -- a size limit before the document is read: every reader of rfm.schemes and every
    -- analysis with the scheme reads all of it
    IF pg_catalog.pg_column_size(definition) > current_setting('rfm.max_scheme_bytes')::integer THEN
        RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
            MESSAGE = format('segment scheme document is %s bytes; the limit is rfm.max_scheme_bytes (%s)',
                             pg_catalog.pg_column_size(definition), current_setting('rfm.max_scheme_bytes')),
            HINT = 'Write shorter rules (a long "in" list is usually a table to join instead), or ask a superuser to raise rfm.max_scheme_bytes.';
    END IF;
    saved := rfm._validate_scheme(name, definition);
    -- one name per scheme whatever its case: "Standard" is not another scheme than
    -- "standard" (built-in names are refused by rfm._validate_scheme)
    IF EXISTS (SELECT 1 FROM rfm.user_schemes u
               WHERE lower(u.name) = lower(_do_create_scheme.name) AND u.name <> _do_create_scheme.name) THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('segment scheme "%s" differs only in case from the saved scheme "%s"', name,
                             (SELECT u.name FROM rfm.user_schemes u
                              WHERE lower(u.name) = lower(_do_create_scheme.name) LIMIT 1)),
            HINT = 'Choose another name, or replace that scheme under its own name.';
    END IF;
    -- FOR UPDATE: waits for a transaction that has just started to use the scheme (they lock
    -- it FOR SHARE, rfm._lock_scheme), so that its segmentation is seen below
    SELECT * INTO old FROM rfm.user_schemes u WHERE u.name = _do_create_scheme.name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO rfm.user_schemes (name, definition, owner)
        VALUES (_do_create_scheme.name, saved, caller::regrole);
        PERFORM rfm._mark_owner(caller);
        RETURN saved;
    END IF;
    IF NOT replace THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('segment scheme "%s" exists already', name),
            HINT = 'Pass replace => true to change it, or choose another name.';
    END IF;
    IF NOT pg_has_role(caller, old.owner, 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('segment scheme "%s" belongs to %s', name, old.owner);
    END IF;
    users := rfm._scheme_users(name);
    IF users IS NOT NULL AND old.definition IS DISTINCT FROM saved THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = format('segment scheme "%s" is used by the managed segmentation(s) %s', name, users),
            HINT = 'Save the new rules under another name and switch the segmentations to it with rfm.alter_segmentation; their history then records the change of scheme.';
    END IF;
    UPDATE rfm.user_schemes u SET definition = saved, updated_at = now()
    WHERE u.name = _do_create_scheme.name;
    RETURN saved;
END
$$;

CREATE FUNCTION create_scheme(name text, definition jsonb, replace boolean DEFAULT false)
RETURNS jsonb
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION create_scheme(text, jsonb, boolean) IS
    'Saves a segment scheme (a JSON document of rules, SPEC §9) under a name usable wherever a built-in scheme is; returns the document as saved';

CREATE FUNCTION _do_drop_scheme(caller oid, name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old rfm.user_schemes;
    users text;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'rfm.drop_scheme: name must not be NULL';
    END IF;
    IF EXISTS (SELECT 1 FROM rfm.builtin_scheme_segments() b WHERE b.scheme = name) THEN
        RAISE EXCEPTION USING ERRCODE = 'reserved_name',
            MESSAGE = format('segment scheme "%s" is built in and cannot be dropped', name);
    END IF;
    SELECT * INTO old FROM rfm.user_schemes u WHERE u.name = _do_drop_scheme.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('segment scheme %s does not exist', rfm._shown(name));
    END IF;
    IF NOT pg_has_role(caller, old.owner, 'MEMBER') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('segment scheme "%s" belongs to %s', name, old.owner);
    END IF;
    users := rfm._scheme_users(name);
    IF users IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = format('segment scheme "%s" is used by the managed segmentation(s) %s', name, users),
            HINT = 'Switch them to another scheme with rfm.alter_segmentation, or drop them, first.';
    END IF;
    DELETE FROM rfm.user_schemes u WHERE u.name = _do_drop_scheme.name;
    PERFORM rfm._mark_owner(old.owner);
END
$$;

CREATE FUNCTION drop_scheme(name text) RETURNS void
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION drop_scheme(text) IS
    'Drops a saved segment scheme (refused while a managed segmentation uses it)';

COMMENT ON FUNCTION scheme_definition(text) IS
    'Any segment scheme, built-in ones included, as a JSON document rfm.create_scheme accepts';

REVOKE EXECUTE ON FUNCTION _do_create_scheme(oid, text, jsonb, boolean), _do_drop_scheme(oid, text),
    _scheme_users(text), create_scheme(text, jsonb, boolean), drop_scheme(text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION create_scheme(text, jsonb, boolean), drop_scheme(text) TO rfm_admin;
