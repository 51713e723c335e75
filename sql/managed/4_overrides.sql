-- Managed segmentations, part 4 of 7: manual overrides.

-- The automatic segment of some customers in the latest run (NULL for a customer the run
-- does not assign).
CREATE FUNCTION _automatic(segmentation_id integer, keys text[])
RETURNS TABLE (customer_key text, segment text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.key, x.segment
    FROM unnest(keys) k(key)
    LEFT JOIN (SELECT y.customer_key, y.segment
               FROM rfm.assignment a,
                    rfm._assigned(a.analysis, a.kind, a.default_segment, keys, NULL) y
               WHERE a.segmentation_id = _automatic.segmentation_id) x ON x.customer_key = k.key
$$;

-- Whether the latest refresh of a segmentation assigns a customer.
CREATE FUNCTION _known(segmentation_id integer, key text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM rfm.assignment a,
                          rfm._assigned(a.analysis, a.kind, a.default_segment, ARRAY[key], NULL) x
                   WHERE a.segmentation_id = _known.segmentation_id)
$$;

CREATE FUNCTION _do_set_override(caller oid, segmentation text, customer_key text, segment text, note text,
                                 pre_assignment boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, 'set_override');
    before text;
BEGIN
    PERFORM rfm._not_null(customer_key, 'customer_key', 'set_override');
    PERFORM rfm._not_null(segment, 'segment', 'set_override');
    PERFORM rfm._require_manager(caller, s, 'set_override');
    IF NOT EXISTS (SELECT 1 FROM rfm._segments(s.kind, s.options) g WHERE g.segment = _do_set_override.segment) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('"%s" is not a segment of segmentation "%s"', segment, s.name),
            HINT = format('Segments are: %s.', (SELECT string_agg(g.segment, ', ' ORDER BY g.ordinal)
                                                 FROM rfm._segments(s.kind, s.options) g));
    END IF;
    PERFORM rfm._not_null(pre_assignment, 'pre_assignment', 'set_override');
    PERFORM 1 FROM rfm.segmentations x WHERE x.id = s.id FOR UPDATE;
    SELECT o.segment INTO before FROM rfm.overrides o
    WHERE o.segmentation_id = s.id AND o.customer_key = _do_set_override.customer_key;
    -- an override names a customer the segmentation knows, unless it is explicitly set in
    -- advance: a typo in a key must not create a customer
    IF before IS NULL AND NOT pre_assignment AND NOT rfm._known(s.id, _do_set_override.customer_key) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('customer "%s" is not in the latest refresh of segmentation "%s"',
                             _do_set_override.customer_key, s.name),
            HINT = 'To set the segment of a customer before its first refresh (a new key account, say), pass pre_assignment => true.';
    END IF;
    IF before IS NULL THEN
        SELECT x.segment INTO before FROM rfm._automatic(s.id, ARRAY[_do_set_override.customer_key]) x;
    END IF;
    INSERT INTO rfm.overrides (segmentation_id, customer_key, segment, note, set_by, pre_assignment)
    VALUES (s.id, _do_set_override.customer_key, _do_set_override.segment, note,
            (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = caller),
            pre_assignment AND NOT rfm._known(s.id, _do_set_override.customer_key))
    ON CONFLICT ON CONSTRAINT overrides_pkey
    DO UPDATE SET segment = EXCLUDED.segment, note = EXCLUDED.note, set_at = now(), set_by = EXCLUDED.set_by;
    IF before IS DISTINCT FROM _do_set_override.segment THEN
        INSERT INTO rfm.history (segmentation_id, customer_key, from_segment, to_segment, reason)
        VALUES (s.id, _do_set_override.customer_key, before, _do_set_override.segment, 'override');
    END IF;
END
$$;

CREATE FUNCTION set_override(segmentation text, customer_key text, segment text, note text DEFAULT NULL,
                             pre_assignment boolean DEFAULT false)
RETURNS void
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION set_override(text, text, text, text, boolean) IS
    'Sets a manual segment for a customer of the latest refresh (or, with pre_assignment, for one not seen yet). Needs the owner''s rights';

-- Clears the overrides of the given customers (all when keys is NULL) and logs every
-- effective change. Returns how many overrides there were.
CREATE FUNCTION _clear(caller oid, segmentation text, keys text[], fn text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, fn);
    n bigint;
BEGIN
    PERFORM rfm._require_manager(caller, s, fn);
    PERFORM 1 FROM rfm.segmentations x WHERE x.id = s.id FOR UPDATE;
    -- one statement, no temporary table: a table in the caller's temporary schema could
    -- carry the caller's triggers, which would run with this function's rights
    WITH d AS (DELETE FROM rfm.overrides o
               WHERE o.segmentation_id = s.id AND (keys IS NULL OR o.customer_key = ANY (keys))
               RETURNING o.customer_key, o.segment),
    logged AS (INSERT INTO rfm.history (segmentation_id, customer_key, from_segment, to_segment, reason)
               SELECT s.id, d.customer_key, d.segment, x.segment, 'override'
               FROM d JOIN rfm._automatic(s.id, ARRAY(SELECT d2.customer_key FROM d d2)) x
                   ON x.customer_key = d.customer_key
               WHERE x.segment IS DISTINCT FROM d.segment
               RETURNING 1)
    SELECT count(*) INTO n FROM d;
    RETURN n;
END
$$;

CREATE FUNCTION _do_clear_override(caller oid, segmentation text, customer_key text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM rfm._not_null(customer_key, 'customer_key', 'clear_override');
    RETURN rfm._clear(caller, segmentation, ARRAY[customer_key], 'clear_override') > 0;
END
$$;

CREATE FUNCTION clear_override(segmentation text, customer_key text) RETURNS boolean
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION clear_override(text, text) IS
    'Clears the manual segment of one customer; returns whether there was one. Needs the owner''s rights';

CREATE FUNCTION _do_clear_overrides(caller oid, segmentation text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN rfm._clear(caller, segmentation, NULL, 'clear_overrides');
END
$$;

CREATE FUNCTION clear_overrides(segmentation text) RETURNS bigint
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION clear_overrides(text) IS
    'Clears every manual segment of a segmentation; returns how many. Needs the owner''s rights';
