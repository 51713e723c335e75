-- Managed segmentations, part 7 of 7: privileges, all in one place.
-- tests/pg_regress/sql/privileges.sql prints the privileges of every object of the
-- extension for PUBLIC, rfm_reader and rfm_admin, so that any change shows up there.

-- The tables: nobody. The extension's functions write them; the views read them.
REVOKE ALL ON segmentations, readers, runs, run_segments, run_performance, assignment, overrides, history FROM PUBLIC;
REVOKE ALL ON SEQUENCE segmentations_id_seq, runs_id_seq FROM PUBLIC;
REVOKE ALL ON _visible_segmentations FROM PUBLIC;

-- The views: readers (rfm_admin is a member of rfm_reader). Each row is filtered by what
-- the reading role may see (part 6).
GRANT SELECT ON customer_segments, segment_summary, kpi_overview, segment_thresholds, segment_grid,
    segment_movement, segment_trend, segmentation_catalog, segment_performance_latest, segment_performance_runs,
    customer_movement, threshold_history TO rfm_reader;

-- Functions are executable by PUBLIC when created; take that back from everything of the
-- managed layer, then grant what each role needs.
REVOKE EXECUTE ON FUNCTION
    _lock_source(oid),
    _read_source_as(oid, oid, text, jsonb, text),
    _day_in_zone(text, text),
    _empty_analysis(jsonb, text),
    _check_time_zone(jsonb),
    _midnight(date, segmentations),
    _shown(text),
    _lock_scheme(text, jsonb),
    owned_objects(regrole),
    _do_owned_objects(oid, regrole),
    _mark_owner(oid),
    _existing_role(regrole, text, text),
    _do_reassign_owned(oid, regrole, regrole),
    reassign_owned(regrole, regrole),
    _assigned(analysis, text, text, text[], text[]),
    _changes(analysis, text, text, analysis, text, text),
    _not_null(anyelement, text, text),
    _definition(text, text),
    _lock_definition(integer, text),
    _may_manage(oid, segmentations),
    _require_manager(oid, segmentations, text),
    _column_cast(regclass, name, text),
    _check_source(regrole, regclass, name, name, name),
    _analyze_options(segmentations),
    _segments(text, jsonb),
    _validate(segmentations, boolean),
    _source_query(segmentations, date),
    _do_create_segmentation(oid, text, regclass, name, name, name, jsonb, text, text, boolean),
    create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean),
    _do_alter_segmentation(oid, text, jsonb, text, boolean, regclass, name, name, name),
    alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name),
    _do_drop_segmentation(oid, text),
    drop_segmentation(text),
    _do_grant_segmentation(oid, text, regrole),
    grant_segmentation(text, regrole),
    _do_revoke_segmentation(oid, text, regrole),
    revoke_segmentation(text, regrole),
    _analysis(segmentations, boolean),
    _refresh(oid, integer, boolean),
    _do_refresh(oid, text, boolean),
    refresh(text, boolean),
    _do_refresh_all(oid),
    refresh_all(),
    _do_preview(oid, text),
    preview(text),
    _automatic(integer, text[]),
    _known(integer, text),
    _do_set_override(oid, text, text, text, text, boolean),
    set_override(text, text, text, text, boolean),
    _clear(oid, text, text[], text),
    _do_clear_override(oid, text, text),
    clear_override(text, text),
    _do_clear_overrides(oid, text),
    clear_overrides(text),
    _cron_schema_or_null(),
    _cron_schema(),
    _unschedule(segmentations),
    _do_schedule_refresh(oid, text, text),
    schedule_refresh(text, text),
    _do_unschedule_refresh(oid, text),
    unschedule_refresh(text),
    _access(regrole, regclass, name, name, name, boolean),
    _visible_keys(regclass, name),
    segments_of(text),
    segment_performance(text, bigint)
FROM PUBLIC;

-- Administrators: the public management functions (entry points). The _do_* implementations
-- are executable by nobody: only rfm.managed_entry calls them, through the function manager.
GRANT EXECUTE ON FUNCTION
    create_segmentation(text, regclass, name, name, name, jsonb, text, text, boolean),
    alter_segmentation(text, jsonb, text, boolean, regclass, name, name, name),
    drop_segmentation(text), grant_segmentation(text, regrole), revoke_segmentation(text, regrole),
    refresh(text, boolean), refresh_all(), preview(text),
    set_override(text, text, text, text, boolean), clear_override(text, text), clear_overrides(text),
    schedule_refresh(text, text), unschedule_refresh(text), reassign_owned(regrole, regrole)
TO rfm_admin;

-- Readers: what the views call with the reader's identity, segments_of and
-- segment_performance (and the NULL check the latter uses).
GRANT EXECUTE ON FUNCTION
    _not_null(anyelement, text, text),
    _shown(text),
    _assigned(analysis, text, text, text[], text[]),
    _segments(text, jsonb),
    _access(regrole, regclass, name, name, name, boolean),
    _visible_keys(regclass, name),
    segments_of(text),
    segment_performance(text, bigint)
TO rfm_reader;
