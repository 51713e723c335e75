-- Managed segmentations, part 5 of 7: scheduling with pg_cron.
--
-- A job made by rfm.schedule_refresh runs as the role that scheduled it (not as the
-- extension's owner), in this database, and calls rfm.refresh, which checks that role's
-- rights like any other call.

-- The schema of pg_cron's functions in this database (usually cron), found through a
-- function that belongs to the extension pg_cron, so that no other schema can stand in.
CREATE FUNCTION _cron_schema_or_null() RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT n.nspname
    FROM pg_catalog.pg_extension e
    JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
        AND d.refobjid = e.oid AND d.deptype = 'e' AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    JOIN pg_catalog.pg_proc p ON p.oid = d.objid AND p.proname = 'schedule_in_database'
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE e.extname = 'pg_cron'
$$;

-- The schema of pg_cron in this database, or 55000 with what to do.
CREATE FUNCTION _cron_schema() RETURNS name
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    schema name;
BEGIN
    schema := rfm._cron_schema_or_null();
    -- pg_cron runs in one database of the cluster (cron.database_name); from another one a
    -- job is scheduled there, with cron.schedule_in_database naming this database
    IF schema IS NULL AND coalesce(current_setting('cron.database_name', true), '') NOT IN ('', current_database()) THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('pg_cron runs in database %s, not in this one', current_setting('cron.database_name')),
            HINT = format('Schedule the refresh from database %s: SELECT cron.schedule_in_database(''rfm_refresh_<name>'', ''0 3 * * *'', %L, %L);',
                          current_setting('cron.database_name'), 'SELECT rfm.refresh(''<name>'')', current_database());
    END IF;
    IF schema IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = 'pg_cron is not installed in this database',
            HINT = format('Install postgresql-15-cron, set shared_preload_libraries = ''pg_cron'' and cron.database_name = %L in postgresql.conf, restart, then CREATE EXTENSION pg_cron in this database.',
                          current_database());
    END IF;
    RETURN schema;
END
$$;

-- Removes the pg_cron job rfm.schedule_refresh created for a segmentation: the job with the
-- stored jobid, and only while it still runs that segmentation's refresh (a job of the same
-- name made by anybody else, a superuser's own included, is never touched). Whether there
-- was one.
CREATE FUNCTION _unschedule(s segmentations) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    schema name;
    found_one boolean := false;
BEGIN
    schema := rfm._cron_schema_or_null();
    IF schema IS NULL OR s.cron_job IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.job WHERE jobid = $1 AND command = $2)', schema)
        INTO found_one USING s.cron_job, format('SELECT rfm.refresh(%L)', s.name);
    IF found_one THEN
        EXECUTE format('SELECT %I.unschedule($1)', schema) USING s.cron_job;
    END IF;
    UPDATE rfm.segmentations x SET cron_job = NULL WHERE x.id = s.id;
    RETURN found_one;
END
$$;

CREATE FUNCTION _do_schedule_refresh(caller oid, segmentation text, schedule text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, 'schedule_refresh');
    schema name := rfm._cron_schema();
    job bigint;
    taken boolean;
BEGIN
    PERFORM rfm._not_null(schedule, 'schedule', 'schedule_refresh');
    PERFORM rfm._require_manager(caller, s, 'schedule_refresh');
    s := rfm._lock_definition(s.id, s.name);
    PERFORM rfm._unschedule(s);
    -- pg_cron replaces a job of the same name and user: refuse rather than take over a job
    -- this function did not create
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.job WHERE jobname = $1 AND username = $2)', schema)
        INTO taken USING 'rfm_refresh_' || s.name, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = caller)::text;
    IF taken THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_object',
            MESSAGE = format('a pg_cron job named "rfm_refresh_%s" exists already for role %s', s.name,
                             (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = caller)),
            HINT = 'rfm.schedule_refresh names its job rfm_refresh_<segmentation>; rename or unschedule the other job first.';
    END IF;
    EXECUTE format('SELECT %I.schedule_in_database($1, $2, $3, $4, $5)', schema)
        INTO job
        USING 'rfm_refresh_' || s.name, schedule, format('SELECT rfm.refresh(%L)', s.name),
              current_database()::text, (SELECT rolname FROM pg_catalog.pg_roles WHERE oid = caller)::text;
    UPDATE rfm.segmentations x SET cron_job = job WHERE x.id = s.id;
    RETURN job;
END
$$;

CREATE FUNCTION schedule_refresh(segmentation text, schedule text) RETURNS bigint
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION schedule_refresh(text, text) IS
    'Schedules rfm.refresh of one segmentation with pg_cron (job rfm_refresh_<name>, run as the calling role); replaces an earlier job';

CREATE FUNCTION _do_unschedule_refresh(caller oid, segmentation text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s rfm.segmentations := rfm._definition(segmentation, 'unschedule_refresh');
BEGIN
    PERFORM rfm._require_manager(caller, s, 'unschedule_refresh');
    PERFORM rfm._cron_schema();
    s := rfm._lock_definition(s.id, s.name);
    RETURN rfm._unschedule(s);
END
$$;

CREATE FUNCTION unschedule_refresh(segmentation text) RETURNS boolean
LANGUAGE c VOLATILE SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'managed_entry';
COMMENT ON FUNCTION unschedule_refresh(text) IS 'Removes the pg_cron job of rfm.schedule_refresh; returns whether there was one';
