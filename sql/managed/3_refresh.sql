-- Managed segmentations, part 3 of 7: refresh.
--
-- A refresh reads its source once (one rfm.analyze query, run with the owner's rights by
-- rfm._read_source_as), so the run, the assignment, the history and the figures all
-- describe the same rows. The assignment is that analysis value; the history rows are
-- what rfm._changes finds between it and the previous one.

-- The analysis of no rows with these options, as of a bare-date as_of read in a time zone
-- (the SET clause confines the zone to this call).
CREATE FUNCTION _empty_analysis(options jsonb, time_zone text) RETURNS analysis
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' AS $$
DECLARE
    a rfm.analysis;
BEGIN
    PERFORM set_config('TimeZone', time_zone, true);
    SELECT rfm.analyze(NULL::text, NULL::timestamptz, NULL::numeric, options) INTO a;
    RETURN a;
END
$$;

-- What a definition assigns now (the analysis of its source), read with the owner's rights
-- by the one guarded read (rfm._read_source_as), and with performance, the per-customer
-- revenue of the performance report from the same statement.
CREATE FUNCTION _analysis(s segmentations, with_performance boolean,
                          OUT analysis analysis, OUT performance jsonb)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o jsonb := rfm._analyze_options(s);
    as_of_day date;
    tz text;
BEGIN
    -- bound by OID: lock the relation, then check that it is still there; from here on
    -- its name cannot change until the refresh commits
    IF NOT rfm._lock_source(s.source) THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_table',
            MESSAGE = format('the source %s of segmentation "%s" no longer exists', s.source_name, s.name),
            HINT = 'Point it at another table with rfm.alter_segmentation(name, source => ...), or deactivate it with active => false.';
    END IF;
    -- the owner may have lost the right to read the source since it was created
    PERFORM rfm._check_source(s.owner, s.source, s.customer_column, s.time_column, s.amount_column);
    -- the segmentation's own time zone: every day boundary is the same whoever refreshes
    tz := coalesce(s.options ->> 'time_zone', current_setting('TimeZone'));
    s.options := jsonb_set(s.options, '{time_zone}', to_jsonb(tz));
    IF with_performance THEN
        as_of_day := rfm._day_in_zone(coalesce(lpad(o ->> 'year', 4, '0') || '-12-31', o ->> 'as_of'), tz);
    END IF;
    SELECT r.analysis, r.performance INTO analysis, performance
    FROM rfm._read_source_as(s.owner, s.source, rfm._source_query(s, as_of_day), o, tz) r;
    IF analysis IS NULL THEN
        -- no rows at all: an empty analysis as of the resolved options, in the same zone
        analysis := rfm._empty_analysis(o, tz);
    END IF;
END
$$;

-- One refresh of one segmentation; the caller has been checked. Returns the run id.
CREATE FUNCTION _refresh(caller oid, segmentation_id integer, force boolean) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations;
    prev rfm.assignment;
    a rfm.analysis;
    ov record;
    perf jsonb;
    run bigint;
    dflt text;
    n_customers bigint;
    n_changed bigint;
    started timestamptz := clock_timestamp();
BEGIN
    -- one refresh of a segmentation at a time: the second waits for the first to commit
    s := rfm._lock_definition(_refresh.segmentation_id,
                              (SELECT x.name FROM rfm.segmentations x WHERE x.id = _refresh.segmentation_id));
    IF s.mode = 'static' AND NOT force AND EXISTS (SELECT 1 FROM rfm.runs r WHERE r.segmentation_id = s.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('segmentation "%s" is static and was already computed', s.name),
            HINT = format('Use rfm.refresh(%L, force => true) to compute it again.', s.name);
    END IF;
    SELECT x.analysis, x.performance INTO a, perf
    FROM rfm._analysis(s, coalesce((s.options ->> 'performance')::boolean, false)) x;
    SELECT * INTO STRICT ov FROM rfm.overview(a);
    INSERT INTO rfm.runs (segmentation_id, as_of, period, started_at, started_by, excluded_customers,
                          total_revenue, transactions, forced, rows_without_key, amount_without_key,
                          rows_after_as_of, excluded_amount, below_min_customers, thresholds)
    VALUES (s.id, ov.as_of, ov.period, started, caller, ov.excluded_customers, ov.total_revenue,
            ov.transactions, force AND s.mode = 'static', ov.rows_without_key, ov.amount_without_key,
            ov.rows_after_as_of, ov.excluded_amount, ov.below_min_customers,
            (SELECT jsonb_agg(to_jsonb(t) ORDER BY t.metric, t.score) FROM rfm.thresholds(a) t))
    RETURNING id INTO run;

    dflt := CASE WHEN s.kind = 'abc' THEN s.options ->> 'default_tier' END;
    SELECT * INTO prev FROM rfm.assignment x WHERE x.segmentation_id = s.id;

    -- history: every customer whose effective segment changes; a customer with an override
    -- keeps it, so only customers without one can change here
    INSERT INTO rfm.history (segmentation_id, run_id, customer_key, from_segment, to_segment, monetary,
                             reason, changed_at, from_r, from_f, from_m, from_recency_days,
                             from_frequency, from_monetary, to_r, to_f, to_m, to_recency_days,
                             to_frequency)
    SELECT s.id, run, c.customer_key, c.from_segment, c.to_segment, c.monetary, 'refresh', now(),
           c.from_r, c.from_f, c.from_m, c.from_recency_days, c.from_frequency, c.from_monetary,
           c.to_r, c.to_f, c.to_m, c.to_recency_days, c.to_frequency
    FROM rfm._changes(prev.analysis, prev.kind, prev.default_segment, a, s.kind, dflt) c
    WHERE NOT EXISTS (SELECT 1 FROM rfm.overrides o
                      WHERE o.segmentation_id = s.id AND o.customer_key = c.customer_key);
    GET DIAGNOSTICS n_changed = ROW_COUNT;

    INSERT INTO rfm.assignment (segmentation_id, run_id, kind, default_segment, analysis)
    VALUES (s.id, run, s.kind, dflt, a)
    ON CONFLICT ON CONSTRAINT assignment_pkey DO UPDATE
    SET run_id = EXCLUDED.run_id, kind = EXCLUDED.kind, default_segment = EXCLUDED.default_segment,
        analysis = EXCLUDED.analysis;

    -- customers and revenue per automatic segment
    IF s.kind = 'rfm' THEN
        INSERT INTO rfm.run_segments (run_id, position, segment, customers, revenue)
        SELECT run, g.ordinal, g.segment, coalesce(x.customers, 0), coalesce(x.revenue, 0)
        FROM rfm._segments(s.kind, s.options) g LEFT JOIN rfm.summary(a) x ON x.segment = g.segment;
        -- the customers the run assigns: the active ones, and with a scheme of population
        -- all every customer with a row up to as_of (what the assignment and history hold)
        SELECT coalesce(sum(x.customers), 0) INTO n_customers FROM rfm.run_segments x WHERE x.run_id = run;
    ELSE
        INSERT INTO rfm.run_segments (run_id, position, segment, customers, revenue)
        SELECT run, g.ordinal, g.segment, count(x.customer_key), coalesce(sum(x.monetary), 0)
        FROM rfm._segments(s.kind, s.options) g
        LEFT JOIN rfm._assigned(a, s.kind, dflt, NULL, NULL) x ON x.segment = g.segment
        GROUP BY g.ordinal, g.segment;
        SELECT count(*) INTO n_customers FROM rfm._assigned(a, s.kind, dflt, NULL, NULL) x
        WHERE x.segment IS NOT NULL;
    END IF;

    -- the performance report of this run: the customers of each effective segment (overrides
    -- applied, as rfm.customer_segments shows them) and their revenue read by the same
    -- statement as the analysis
    IF coalesce((s.options ->> 'performance')::boolean, false) THEN
        INSERT INTO rfm.run_performance (run_id, position, segment, customers, revenue_this_month,
                                         revenue_last_month, revenue_ytd)
        WITH e AS (
            SELECT coalesce(o.segment, x.segment) AS segment, x.customer_key
            FROM rfm._assigned(a, s.kind, dflt, NULL,
                               ARRAY(SELECT y.customer_key FROM rfm.overrides y WHERE y.segmentation_id = s.id)) x
            LEFT JOIN rfm.overrides o ON o.segmentation_id = s.id AND o.customer_key = x.customer_key),
        p AS (
            SELECT j.key, (j.value ->> 0)::numeric AS m, (j.value ->> 1)::numeric AS l,
                   (j.value ->> 2)::numeric AS y
            FROM jsonb_each(coalesce(perf, '{}')) j)
        SELECT run, g.ordinal, g.segment, count(e.customer_key), coalesce(sum(p.m), 0),
               coalesce(sum(p.l), 0), coalesce(sum(p.y), 0)
        FROM rfm._segments(s.kind, s.options) g
        LEFT JOIN e ON e.segment = g.segment
        LEFT JOIN p ON p.key = e.customer_key
        GROUP BY g.ordinal, g.segment;
    END IF;

    UPDATE rfm.runs SET finished_at = clock_timestamp(), customers = n_customers, changed = n_changed
    WHERE id = run;
    UPDATE rfm.segmentations SET last_error = NULL, last_error_at = NULL
    WHERE id = s.id AND last_error IS NOT NULL;
    -- listeners learn which segmentation has a new run, nothing more: the figures are in the
    -- views, which show them only to roles that may see them
    PERFORM pg_notify('rfm_segment_changed',
                      json_build_object('segmentation', s.name, 'run_id', run)::text);
    RETURN run;
END
$$;

CREATE FUNCTION _do_refresh(caller oid, segmentation text, force boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, 'refresh');
BEGIN
    PERFORM rfm._not_null(force, 'force', 'refresh');
    PERFORM rfm._require_manager(caller, s, 'refresh');
    RETURN rfm._refresh(caller, s.id, force);
END
$$;

CREATE FUNCTION refresh(segmentation text, force boolean DEFAULT false) RETURNS bigint
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION refresh(text, boolean) IS
    'Recomputes a segmentation (reading its source once, with its owner''s rights) and replaces its assignment; logs the run and the changes';

CREATE FUNCTION _do_refresh_all(caller oid) RETURNS TABLE (segmentation text, run_id bigint, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations;
    msg text;
    state text;
BEGIN
    FOR s IN SELECT * FROM rfm.segmentations x ORDER BY x.name LOOP
        CONTINUE WHEN NOT rfm._may_manage(caller, s);
        segmentation := s.name;
        run_id := NULL;
        IF NOT s.active THEN
            status := 'skipped: inactive';
        ELSIF s.mode = 'static' AND EXISTS (SELECT 1 FROM rfm.runs r WHERE r.segmentation_id = s.id) THEN
            status := 'skipped: static';
        ELSE
            BEGIN
                run_id := rfm._refresh(caller, s.id, false);
                status := 'refreshed';
            EXCEPTION WHEN OTHERS THEN
                -- one broken segmentation does not stop the others: report, log, go on
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                status := 'failed: ' || msg;
                RAISE WARNING USING
                    MESSAGE = format('rfm.refresh_all: segmentation "%s" failed: %s', s.name, msg),
                    DETAIL = format('SQLSTATE %s', state);
                UPDATE rfm.segmentations x SET last_error = format('%s: %s', state, msg), last_error_at = now()
                WHERE x.id = s.id;
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE FUNCTION refresh_all() RETURNS TABLE (segmentation text, run_id bigint, status text)
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION refresh_all() IS
    'Refreshes every active segmentation the calling role may manage (all of them for a superuser); a failure is reported as "failed: <reason>", logged, and does not stop the others';

CREATE FUNCTION _do_preview(caller oid, segmentation text)
RETURNS TABLE (customer_key text, segment text, r integer, f integer, m integer, fm integer,
               rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, 'preview');
BEGIN
    PERFORM rfm._require_manager(caller, s, 'preview');
    RETURN QUERY SELECT x.* FROM rfm._assigned((rfm._analysis(s, false)).analysis, s.kind,
        CASE WHEN s.kind = 'abc' THEN s.options ->> 'default_tier' END, NULL, NULL) x;
END
$$;

CREATE FUNCTION preview(segmentation text)
RETURNS TABLE (customer_key text, segment text, r integer, f integer, m integer, fm integer,
               rfm_code text, recency_days integer, frequency bigint, monetary numeric, abc_tier text)
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION preview(text) IS 'What a refresh would assign now, without saving anything. Needs the owner''s rights';
