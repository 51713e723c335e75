-- Managed segmentations, part 6 of 7: the views BI tools and analysts read.
--
-- The views read the catalog tables with the extension owner's rights, and decide row by
-- row what the querying role may see: functions in a view run as the querying role, so
-- rfm._access and rfm._visible_keys see its rights, and current_user is that role.

-- What the current role may see of a segmentation: 'all', 'rows' (only the customers whose
-- source rows it may see: it may read the source, which has row-level security for it), or
-- NULL (nothing). Conservatively (SPEC §11): besides its managers and the roles it was
-- granted to, a role sees a segmentation only where its own SELECT on the source provably
-- shows every row the owner read: a plain or partitioned table (not a view, whose code may
-- depend on current_user or read a table with security_invoker; not a foreign table) that
-- it may read, schema included. Nothing here reads the source, and nothing fails for a
-- source the role cannot see (a dropped source, column or schema gives NULL).
CREATE FUNCTION _access(owner regrole, source regclass, customer_column name, time_column name,
                        amount_column name, granted boolean) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c record;
BEGIN
    IF coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false) THEN
        RETURN 'all';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE oid = owner)
       AND pg_catalog.pg_has_role(current_user, owner, 'USAGE') THEN
        RETURN 'all';
    END IF;
    IF granted THEN
        RETURN 'all';
    END IF;
    SELECT k.relkind, k.relnamespace INTO c FROM pg_catalog.pg_class k WHERE k.oid = source;
    IF NOT FOUND OR c.relkind NOT IN ('r', 'p')
       OR NOT pg_catalog.has_schema_privilege(c.relnamespace, 'USAGE') THEN
        RETURN NULL;
    END IF;
    IF (SELECT count(*) FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname IN (customer_column, time_column, amount_column)
          AND pg_catalog.has_column_privilege(source, a.attnum, 'SELECT'))
       < (SELECT count(DISTINCT x) FROM unnest(ARRAY[customer_column, time_column, amount_column]) x) THEN
        RETURN NULL;
    END IF;
    RETURN CASE WHEN pg_catalog.row_security_active(source) THEN 'rows' ELSE 'all' END;
END
$$;

-- The customer keys of the source that the current role can see (row-level security
-- applies: this is a query of the source by that role).
CREATE FUNCTION _visible_keys(source regclass, customer_column name) RETURNS SETOF text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT DISTINCT %I::pg_catalog.text FROM %s WHERE %I IS NOT NULL',
                                customer_column, source, customer_column);
END
$$;

-- The segmentations the current role may see, with how much (internal: the other views
-- are built on it).
CREATE VIEW _visible_segmentations AS
SELECT s.*, ac.access,
       coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false)
       OR (EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = s.owner)
           AND pg_catalog.pg_has_role(current_user, s.owner, 'USAGE')) AS managed
FROM rfm.segmentations s
CROSS JOIN LATERAL rfm._access(
    s.owner, s.source, s.customer_column, s.time_column, s.amount_column,
    EXISTS (SELECT 1 FROM rfm.readers g
            WHERE g.segmentation_id = s.id AND pg_catalog.pg_has_role(current_user, g.reader, 'MEMBER'))) ac(access)
WHERE ac.access IS NOT NULL;

CREATE VIEW customer_segments AS
SELECT v.name AS segmentation, x.customer_key,
       coalesce(o.segment, x.segment) AS segment, x.segment AS automatic_segment,
       o.segment AS manual_segment, x.r, x.f, x.m, x.fm, x.rfm_code, x.recency_days,
       x.frequency, round(x.monetary, 2) AS monetary, x.abc_tier,
       greatest(r.finished_at, o.set_at) AS updated_at
FROM rfm._visible_segmentations v
LEFT JOIN rfm.assignment a ON a.segmentation_id = v.id
LEFT JOIN rfm.runs r ON r.id = a.run_id
CROSS JOIN LATERAL rfm._assigned(
    a.analysis, coalesce(a.kind, v.kind), a.default_segment,
    CASE WHEN v.access = 'rows' THEN ARRAY(SELECT rfm._visible_keys(v.source, v.customer_column)) END,
    ARRAY(SELECT y.customer_key FROM rfm.overrides y WHERE y.segmentation_id = v.id)) x
LEFT JOIN rfm.overrides o ON o.segmentation_id = v.id AND o.customer_key = x.customer_key;
COMMENT ON VIEW customer_segments IS
    'Effective (manual when set, else automatic) segment of every customer of the latest refresh, with scores and metrics';

CREATE VIEW segment_summary AS
SELECT v.name AS segmentation, g.ordinal AS position, g.segment,
       coalesce(g.customers, 0) AS customers,
       round(100.0 * coalesce(g.customers, 0) / nullif(g.total_customers, 0), 2) AS pct_customers,
       round(coalesce(g.revenue, 0), 2) AS revenue,
       round(100.0 * coalesce(g.revenue, 0) / nullif(g.total_revenue, 0), 2) AS pct_revenue,
       round(g.revenue / nullif(g.customers, 0), 2) AS avg_revenue,
       round(g.avg_frequency, 2) AS avg_frequency,
       round(g.avg_recency_days, 2) AS avg_recency_days,
       coalesce(g.automatic_customers, 0) AS automatic_customers,
       round(coalesce(g.automatic_revenue, 0), 2) AS automatic_revenue,
       g.description, g.actions, g.visit_every_days, g.priority
FROM rfm._visible_segmentations v
CROSS JOIN LATERAL (
    -- one segmentation at a time, so that a filter on the segmentation decodes only its run
    WITH c AS (SELECT x.segment, count(*) AS customers, coalesce(sum(x.monetary), 0) AS revenue,
                      avg(x.frequency) AS avg_frequency, avg(x.recency_days) AS avg_recency_days
               FROM rfm.customer_segments x WHERE x.segmentation = v.name GROUP BY x.segment),
    t AS (SELECT sum(c.customers) AS customers, sum(c.revenue) AS revenue FROM c),
    a AS (SELECT x.automatic_segment AS segment, count(*) AS customers, coalesce(sum(x.monetary), 0) AS revenue
          FROM rfm.customer_segments x WHERE x.segmentation = v.name AND x.automatic_segment IS NOT NULL
          GROUP BY x.automatic_segment)
    SELECT s.ordinal, s.segment, c.customers, c.revenue, c.avg_frequency, c.avg_recency_days,
           t.customers AS total_customers, t.revenue AS total_revenue,
           a.customers AS automatic_customers, a.revenue AS automatic_revenue,
           s.description, s.actions, s.visit_every_days, s.priority
    FROM rfm._segments(v.kind, v.options) s
    LEFT JOIN c ON c.segment = s.segment
    LEFT JOIN a ON a.segment = s.segment
    CROSS JOIN t) g;
COMMENT ON VIEW segment_summary IS
    'Customers and revenue per segment of the latest refresh: effective segments (manual overrides applied), and the automatic counts that segment_trend shows; empty segments included';

CREATE VIEW kpi_overview AS
SELECT v.name AS segmentation, r.as_of, r.period, r.customers AS active_customers,
       round(r.total_revenue, 2) AS total_revenue, r.excluded_customers, r.transactions,
       r.finished_at AS last_refresh, r.rows_without_key,
       round(r.amount_without_key, 2) AS amount_without_key, r.rows_after_as_of,
       round(r.excluded_amount, 2) AS excluded_amount, r.below_min_customers
FROM rfm._visible_segmentations v
LEFT JOIN LATERAL (SELECT * FROM rfm.runs x WHERE x.segmentation_id = v.id AND x.finished_at IS NOT NULL
                   ORDER BY x.id DESC LIMIT 1) r ON true
WHERE v.access = 'all';
COMMENT ON VIEW kpi_overview IS 'Headline figures of the latest refresh of each segmentation';

CREATE VIEW segment_thresholds AS
SELECT v.name AS segmentation, t.metric, t.score, t.lower_bound, t.upper_bound, t.customers
FROM rfm._visible_segmentations v
JOIN rfm.assignment a ON a.segmentation_id = v.id AND a.kind = 'rfm'
CROSS JOIN LATERAL rfm.thresholds(a.analysis) t
WHERE v.access = 'all';
COMMENT ON VIEW segment_thresholds IS 'The score ranges of the latest refresh (segmentation setup)';

-- rfm.grid of the stored analysis, so that the view and the function always agree
CREATE VIEW segment_grid AS
SELECT v.name AS segmentation, g.r, g.fm, g.segment, g.customers, round(g.revenue, 2) AS revenue,
       (b.t -> ('recency ' || g.r) ->> 0)::double precision AS recency_lower,
       (b.t -> ('recency ' || g.r) ->> 1)::double precision AS recency_upper,
       (b.t -> ('frequency ' || g.fm) ->> 0)::double precision AS frequency_lower,
       (b.t -> ('frequency ' || g.fm) ->> 1)::double precision AS frequency_upper,
       (b.t -> ('monetary ' || g.fm) ->> 0)::double precision AS monetary_lower,
       (b.t -> ('monetary ' || g.fm) ->> 1)::double precision AS monetary_upper
FROM rfm._visible_segmentations v
JOIN rfm.assignment a ON a.segmentation_id = v.id AND a.kind = 'rfm'
CROSS JOIN LATERAL (SELECT jsonb_object_agg(t.metric || ' ' || t.score, jsonb_build_array(t.lower_bound, t.upper_bound)) AS t
                    FROM rfm.thresholds(a.analysis) t) b
CROSS JOIN LATERAL rfm.grid(a.analysis) g
WHERE v.access = 'all';
COMMENT ON VIEW segment_grid IS
    'R x FM cells of the latest refresh (automatic scores; the rows of rfm.grid) with the score ranges of each axis';

-- One row per customer move, with what explains it: the scores and metrics the previous
-- and this run gave the customer (refreshes), for readers under the same rules as
-- segment_movement's (rows access: only the customers the reader may see).
CREATE VIEW customer_movement AS
SELECT v.name AS segmentation, h.run_id, r.as_of, p.as_of AS previous_as_of, h.customer_key,
       h.from_segment, h.to_segment, h.reason, h.changed_at,
       h.from_r, h.to_r, h.from_f, h.to_f, h.from_m, h.to_m,
       h.from_recency_days, h.to_recency_days, h.from_frequency, h.to_frequency,
       round(h.from_monetary, 2) AS from_monetary, round(h.monetary, 2) AS to_monetary
FROM rfm._visible_segmentations v
CROSS JOIN LATERAL (
    SELECT x.* FROM rfm.history x WHERE x.segmentation_id = v.id AND v.access = 'all'
    UNION ALL
    SELECT x.* FROM rfm.history x WHERE x.segmentation_id = v.id AND v.access = 'rows'
      AND x.customer_key IN (SELECT k FROM rfm._visible_keys(v.source, v.customer_column) k)) h
LEFT JOIN rfm.runs r ON r.id = h.run_id
LEFT JOIN LATERAL (SELECT y.as_of FROM rfm.runs y
                   WHERE y.segmentation_id = v.id AND y.id < h.run_id AND y.finished_at IS NOT NULL
                   ORDER BY y.id DESC LIMIT 1) p ON true;
COMMENT ON VIEW customer_movement IS
    'One row per change of a customer''s segment (refresh or override), with the scores and metrics before and after that explain it';

-- The score ranges of every refresh, so that a move caused by others' purchases (a
-- threshold that moved) can be seen: all-customer figures, for readers with full access.
CREATE VIEW threshold_history AS
SELECT v.name AS segmentation, r.id AS run_id, r.as_of, t.metric, t.score, t.lower_bound,
       t.upper_bound, t.customers
FROM rfm._visible_segmentations v
JOIN rfm.runs r ON r.segmentation_id = v.id AND r.finished_at IS NOT NULL
CROSS JOIN LATERAL jsonb_to_recordset(r.thresholds)
    AS t(metric text, score integer, lower_bound double precision, upper_bound double precision, customers bigint)
WHERE v.access = 'all';
COMMENT ON VIEW threshold_history IS 'The score ranges of every refresh of each segmentation (segment_thresholds shows the latest)';

CREATE VIEW segment_movement AS
SELECT v.name AS segmentation, h.run_id, r.as_of, r.finished_at,
       h.from_segment, h.to_segment, count(*) AS customers, round(coalesce(sum(h.monetary), 0), 2) AS revenue
FROM rfm._visible_segmentations v
CROSS JOIN LATERAL (
    SELECT x.run_id, x.from_segment, x.to_segment, x.monetary FROM rfm.history x
    WHERE x.segmentation_id = v.id AND x.reason = 'refresh' AND v.access = 'all'
    UNION ALL
    SELECT x.run_id, x.from_segment, x.to_segment, x.monetary FROM rfm.history x
    WHERE x.segmentation_id = v.id AND x.reason = 'refresh' AND v.access = 'rows'
      AND x.customer_key IN (SELECT k FROM rfm._visible_keys(v.source, v.customer_column) k)) h
JOIN rfm.runs r ON r.id = h.run_id
GROUP BY v.name, h.run_id, r.as_of, r.finished_at, h.from_segment, h.to_segment;
COMMENT ON VIEW segment_movement IS
    'Per refresh, how many customers moved from one segment to another (NULL: entered or left) and their revenue in that run';

CREATE VIEW segment_trend AS
SELECT v.name AS segmentation, r.id AS run_id, r.as_of, r.finished_at, g.position, g.segment,
       g.customers, round(g.revenue, 2) AS revenue
FROM rfm._visible_segmentations v
JOIN rfm.runs r ON r.segmentation_id = v.id
JOIN rfm.run_segments g ON g.run_id = r.id
WHERE v.access = 'all';
COMMENT ON VIEW segment_trend IS 'Customers and revenue per automatic segment per refresh';

CREATE VIEW segmentation_catalog AS
SELECT v.name, v.owner, v.kind, v.mode, v.active,
       CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = v.source)
            THEN v.source::text ELSE v.source_name || ' (dropped)' END AS source,
       v.customer_column, v.time_column, v.amount_column, v.options, v.created_at, v.updated_at,
       r.id AS last_run_id, r.as_of AS last_as_of, r.finished_at AS last_refresh,
       CASE WHEN v.access = 'all' THEN r.customers END AS customers,
       CASE WHEN v.managed THEN v.last_error END AS last_error,
       CASE WHEN v.managed THEN v.last_error_at END AS last_error_at, v.access
FROM rfm._visible_segmentations v
LEFT JOIN LATERAL (SELECT * FROM rfm.runs x WHERE x.segmentation_id = v.id AND x.finished_at IS NOT NULL
                   ORDER BY x.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW segmentation_catalog IS
    'Every segmentation the current role may see: kind, mode, owner, source, last refresh, last error, and what it may see (all, or rows: only customers whose source rows it may read)';


-- The segment performance report (the ERP plan's), as a refresh of a segmentation with the
-- option "performance" stored it: for the customers in each effective segment at that run,
-- their revenue in the month of as_of (up to its end), in the same days of the month before
-- (like periods: the 1st to the 7th against the 1st to the 7th), the change in percent (NULL
-- where the month before is not positive: a change from a negative base has no meaning), the
-- year to date and its share of the year to date of all segments. Nothing is
-- read from the source when it is shown: a whole-population figure, shown to roles that see
-- the whole segmentation (access all).
CREATE VIEW segment_performance_runs AS
SELECT v.name AS segmentation, r.id AS run_id, r.as_of::date AS as_of, p.position, p.segment,
       p.customers, round(p.revenue_this_month, 2) AS revenue_this_month,
       round(p.revenue_last_month, 2) AS revenue_last_month,
       CASE WHEN p.revenue_last_month > 0
            THEN round(100 * (p.revenue_this_month - p.revenue_last_month) / p.revenue_last_month, 2) END AS pct_change,
       round(p.revenue_ytd, 2) AS revenue_ytd,
       round(100 * p.revenue_ytd / nullif(sum(p.revenue_ytd) OVER (PARTITION BY r.id), 0), 2) AS pct_of_total_ytd
FROM rfm._visible_segmentations v
JOIN rfm.runs r ON r.segmentation_id = v.id AND r.finished_at IS NOT NULL
JOIN rfm.run_performance p ON p.run_id = r.id
WHERE v.access = 'all';
COMMENT ON VIEW segment_performance_runs IS
    'The segment performance report of every refresh of a segmentation with option performance, for roles that see the segmentation whole';

-- The report of the latest refresh with a report of each segmentation.
CREATE VIEW segment_performance_latest AS
SELECT x.segmentation, x.as_of, x.position, x.segment, x.customers, x.revenue_this_month,
       x.revenue_last_month, x.pct_change, x.revenue_ytd, x.pct_of_total_ytd, x.run_id
FROM rfm.segment_performance_runs x
WHERE x.run_id = (SELECT max(y.run_id) FROM rfm.segment_performance_runs y WHERE y.segmentation = x.segmentation);
COMMENT ON VIEW segment_performance_latest IS
    'rfm.segment_performance of the latest refresh with a performance report of each segmentation the current role sees whole';

CREATE FUNCTION segment_performance(segmentation text, run_id bigint DEFAULT NULL)
RETURNS TABLE (segment text, customers bigint, revenue_this_month numeric, revenue_last_month numeric,
               pct_change numeric, revenue_ytd numeric, pct_of_total_ytd numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c rfm.segmentation_catalog;
    run bigint;
BEGIN
    PERFORM rfm._not_null(segmentation, 'segmentation', 'segment_performance');
    SELECT * INTO c FROM rfm.segmentation_catalog x WHERE x.name = segment_performance.segmentation;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('segmentation %s does not exist', rfm._shown(segment_performance.segmentation)),
            HINT = 'rfm.segmentation_catalog lists the segmentations you may see.';
    END IF;
    IF c.access <> 'all' THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('the performance report of segmentation "%s" covers customers you may not see', c.name),
            HINT = 'Its owner can grant it to you with rfm.grant_segmentation.';
    END IF;
    SELECT max(x.run_id) INTO run FROM rfm.segment_performance_runs x
    WHERE x.segmentation = c.name AND (segment_performance.run_id IS NULL OR x.run_id = segment_performance.run_id);
    IF run IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = CASE WHEN segment_performance.run_id IS NULL
                THEN format('segmentation "%s" has no refresh with a performance report', c.name)
                ELSE format('run %s of segmentation "%s" has no performance report', segment_performance.run_id, c.name) END,
            HINT = CASE WHEN segment_performance.run_id IS NOT NULL
                THEN 'rfm.segment_performance_runs lists the runs with a report.'
                WHEN coalesce((c.options ->> 'performance')::boolean, false)
                THEN 'Refresh it with rfm.refresh.'
                ELSE format('Turn it on with rfm.alter_segmentation(%L, options => <its options> || ''{"performance": true}''), then refresh it.', c.name) END;
    END IF;
    RETURN QUERY
        SELECT x.segment, x.customers, x.revenue_this_month, x.revenue_last_month, x.pct_change,
               x.revenue_ytd, x.pct_of_total_ytd
        FROM rfm.segment_performance_runs x WHERE x.run_id = run
        ORDER BY x.position;
END
$$;
COMMENT ON FUNCTION segment_performance(text, bigint) IS
    'Revenue per effective segment this month (to the end of as_of), last month, % change, year to date and % of the year to date, as stored by a refresh (the latest with a report, or run_id) of a segmentation with option performance';

COMMENT ON COLUMN segment_performance_runs.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_performance_runs.run_id IS 'The refresh that computed the report (rfm.runs)';
COMMENT ON COLUMN segment_performance_runs.as_of IS 'The day of the refresh''s as_of: the report runs to the end of it';
COMMENT ON COLUMN segment_performance_runs.position IS 'Display order of the segment in its scheme (1 first)';
COMMENT ON COLUMN segment_performance_runs.segment IS 'Segment (or ABC tier); every segment of the scheme, empty ones included';
COMMENT ON COLUMN segment_performance_runs.customers IS 'Customers in the segment when the refresh ran (effective segments)';
COMMENT ON COLUMN segment_performance_runs.revenue_this_month IS 'Their revenue from the first of as_of''s month to the end of as_of (returns included, two decimals)';
COMMENT ON COLUMN segment_performance_runs.revenue_last_month IS 'Their revenue in the same days of the month before (the whole month when as_of is the last day of its month; two decimals)';
COMMENT ON COLUMN segment_performance_runs.pct_change IS 'Change from the same days of last month to this month, in percent (0-100 scale, two decimals); NULL when last month''s revenue is not positive';
COMMENT ON COLUMN segment_performance_runs.revenue_ytd IS 'Their revenue from January 1 to the end of as_of';
COMMENT ON COLUMN segment_performance_runs.pct_of_total_ytd IS 'Share of the year-to-date revenue of all segments, in percent (two decimals)';
-- segment_performance_latest has the columns of segment_performance_runs (it is its latest
-- run of each segmentation): the same comments
DO $comments$
DECLARE
    col record;
BEGIN
    FOR col IN SELECT a.attname, pg_catalog.col_description(a.attrelid, a.attnum) AS comment
               FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = 'rfm.segment_performance_runs'::pg_catalog.regclass AND a.attnum > 0
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON COLUMN rfm.segment_performance_latest.%I IS %L', col.attname, col.comment);
    END LOOP;
END
$comments$;

-- Every column of every view has a comment (BI tools show them; a catalog test in
-- tests/pg_regress/sql/privileges.sql fails for a column without one).
COMMENT ON COLUMN customer_segments.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN customer_segments.customer_key IS 'Customer key as text (as in the source column)';
COMMENT ON COLUMN customer_segments.segment IS 'Effective segment: the manual one when set, else the automatic one';
COMMENT ON COLUMN customer_segments.automatic_segment IS 'Segment (or ABC tier) computed by the latest refresh; NULL for a customer known only through an override';
COMMENT ON COLUMN customer_segments.manual_segment IS 'Segment set by rfm.set_override, or NULL';
COMMENT ON COLUMN customer_segments.r IS 'Recency score, 1 (longest ago) .. buckets (most recent)';
COMMENT ON COLUMN customer_segments.f IS 'Frequency score, 1 .. buckets (most purchases)';
COMMENT ON COLUMN customer_segments.m IS 'Monetary score, 1 .. buckets (highest value)';
COMMENT ON COLUMN customer_segments.fm IS 'Combined frequency-monetary score ceil((f + m) / 2)';
COMMENT ON COLUMN customer_segments.rfm_code IS 'The three scores as text, e.g. 545';
COMMENT ON COLUMN customer_segments.recency_days IS 'Days from the latest purchase to as_of, in the session time zone';
COMMENT ON COLUMN customer_segments.frequency IS 'Purchase rows in the window (0 for an excluded customer given a default ABC tier)';
COMMENT ON COLUMN customer_segments.monetary IS 'Sum of all amounts in the window, returns included (exact for numeric amounts)';
COMMENT ON COLUMN customer_segments.abc_tier IS 'ABC tier by cumulative share of positive revenue, or NULL below the minimum sales';
COMMENT ON COLUMN customer_segments.updated_at IS 'When the effective segment was last set: the latest refresh or override';
COMMENT ON COLUMN segment_summary.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_summary.position IS 'Display order of the segment in its scheme (1 first)';
COMMENT ON COLUMN segment_summary.segment IS 'Segment (or ABC tier); every segment of the scheme, empty ones included';
COMMENT ON COLUMN segment_summary.customers IS 'Customers whose effective segment this is (manual overrides applied)';
COMMENT ON COLUMN segment_summary.pct_customers IS 'Share of the segmentation''s customers, in percent (0-100, two decimals)';
COMMENT ON COLUMN segment_summary.revenue IS 'Sum of the monetary values of these customers';
COMMENT ON COLUMN segment_summary.pct_revenue IS 'Share of the segmentation''s revenue, in percent (0-100, two decimals)';
COMMENT ON COLUMN segment_summary.avg_revenue IS 'Revenue per customer (two decimals)';
COMMENT ON COLUMN segment_summary.avg_frequency IS 'Mean purchases per customer in the window (two decimals)';
COMMENT ON COLUMN segment_summary.avg_recency_days IS 'Mean days since the latest purchase (two decimals; with population all, over every customer of the segment)';
COMMENT ON COLUMN segment_summary.automatic_customers IS 'Customers the latest refresh put in this segment, overrides ignored (the customers of segment_trend for that run)';
COMMENT ON COLUMN segment_summary.automatic_revenue IS 'Revenue of those customers (the revenue of segment_trend for that run)';
COMMENT ON COLUMN segment_summary.description IS 'Who the customers of the segment are (from the scheme; NULL for ABC tiers)';
COMMENT ON COLUMN segment_summary.actions IS 'Suggested actions for the segment (from the scheme)';
COMMENT ON COLUMN segment_summary.visit_every_days IS 'How often to contact the segment''s customers, in days (rule schemes that set it; else NULL)';
COMMENT ON COLUMN segment_summary.priority IS 'Follow-up priority of the segment (rule schemes that set it; else NULL)';
COMMENT ON COLUMN kpi_overview.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN kpi_overview.as_of IS 'End of the window of the latest refresh';
COMMENT ON COLUMN kpi_overview.period IS 'Length of the window';
COMMENT ON COLUMN kpi_overview.active_customers IS 'Customers assigned by the latest refresh: with a purchase in the window (a scheme of population all: every customer with a row up to as_of; ABC: with a tier)';
COMMENT ON COLUMN kpi_overview.total_revenue IS 'Sum of the monetary values of the active customers';
COMMENT ON COLUMN kpi_overview.excluded_customers IS 'Customers with a row at or before as_of but no purchase in the window';
COMMENT ON COLUMN kpi_overview.transactions IS 'Rows in the window of the active customers, returns included';
COMMENT ON COLUMN kpi_overview.last_refresh IS 'When the latest refresh finished';
COMMENT ON COLUMN kpi_overview.rows_without_key IS 'Rows in the window whose customer key is NULL: counted, not segmented';
COMMENT ON COLUMN kpi_overview.amount_without_key IS 'Sum of the amounts of those rows (two decimals)';
COMMENT ON COLUMN kpi_overview.rows_after_as_of IS 'Rows after as_of: not part of the refresh';
COMMENT ON COLUMN kpi_overview.excluded_amount IS 'Window amounts (returns) of the excluded customers (two decimals); total_revenue + excluded_amount + amount_without_key is the sum of all amounts in the window';
COMMENT ON COLUMN kpi_overview.below_min_customers IS 'Active customers below the ABC minimum sales (no tier; ABC segmentations do not assign them)';
COMMENT ON COLUMN customer_movement.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN customer_movement.run_id IS 'The refresh that moved the customer (NULL for a manual override)';
COMMENT ON COLUMN customer_movement.as_of IS 'End of the window of that refresh';
COMMENT ON COLUMN customer_movement.previous_as_of IS 'End of the window of the refresh before it (the "before" values)';
COMMENT ON COLUMN customer_movement.customer_key IS 'Customer key as text';
COMMENT ON COLUMN customer_movement.from_segment IS 'Segment before (NULL: the customer entered)';
COMMENT ON COLUMN customer_movement.to_segment IS 'Segment after (NULL: the customer left)';
COMMENT ON COLUMN customer_movement.reason IS 'refresh, or override (a manual segment set or cleared)';
COMMENT ON COLUMN customer_movement.changed_at IS 'When the change was recorded';
COMMENT ON COLUMN customer_movement.from_r IS 'Recency score in the previous refresh';
COMMENT ON COLUMN customer_movement.to_r IS 'Recency score in this refresh';
COMMENT ON COLUMN customer_movement.from_f IS 'Frequency score in the previous refresh';
COMMENT ON COLUMN customer_movement.to_f IS 'Frequency score in this refresh';
COMMENT ON COLUMN customer_movement.from_m IS 'Monetary score in the previous refresh';
COMMENT ON COLUMN customer_movement.to_m IS 'Monetary score in this refresh';
COMMENT ON COLUMN customer_movement.from_recency_days IS 'Days since the latest purchase, previous refresh';
COMMENT ON COLUMN customer_movement.to_recency_days IS 'Days since the latest purchase, this refresh';
COMMENT ON COLUMN customer_movement.from_frequency IS 'Purchases in the window, previous refresh';
COMMENT ON COLUMN customer_movement.to_frequency IS 'Purchases in the window, this refresh';
COMMENT ON COLUMN customer_movement.from_monetary IS 'Monetary value, previous refresh (two decimals)';
COMMENT ON COLUMN customer_movement.to_monetary IS 'Monetary value, this refresh (two decimals)';
COMMENT ON COLUMN threshold_history.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN threshold_history.run_id IS 'The refresh';
COMMENT ON COLUMN threshold_history.as_of IS 'End of the window of the refresh';
COMMENT ON COLUMN threshold_history.metric IS 'recency, frequency or monetary';
COMMENT ON COLUMN threshold_history.score IS 'Score 1..buckets';
COMMENT ON COLUMN threshold_history.lower_bound IS 'Lower bound of the values the score covers (NULL: unbounded)';
COMMENT ON COLUMN threshold_history.upper_bound IS 'Upper bound of the values the score covers (NULL: unbounded)';
COMMENT ON COLUMN threshold_history.customers IS 'Customers with this score in that refresh';
COMMENT ON COLUMN segment_thresholds.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_thresholds.metric IS 'recency, frequency or monetary';
COMMENT ON COLUMN segment_thresholds.score IS 'The score these bounds give';
COMMENT ON COLUMN segment_thresholds.lower_bound IS 'Values above it (at or above it for fixed frequency and monetary thresholds) get this score; NULL: unbounded';
COMMENT ON COLUMN segment_thresholds.upper_bound IS 'Values up to it (below it for fixed frequency and monetary thresholds) get this score; NULL: unbounded';
COMMENT ON COLUMN segment_thresholds.customers IS 'Customers with this score in the latest refresh';
COMMENT ON COLUMN segment_grid.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_grid.r IS 'Recency score of the cell (rows of the grid)';
COMMENT ON COLUMN segment_grid.fm IS 'Combined frequency-monetary score of the cell (columns of the grid)';
COMMENT ON COLUMN segment_grid.segment IS 'Segment of the whole cell, or NULL where the scheme splits the cell';
COMMENT ON COLUMN segment_grid.customers IS 'Customers in the cell (automatic scores of the latest refresh)';
COMMENT ON COLUMN segment_grid.revenue IS 'Sum of the monetary values of those customers';
COMMENT ON COLUMN segment_grid.recency_lower IS 'Lower bound of the recency score r, in days (see segment_thresholds)';
COMMENT ON COLUMN segment_grid.recency_upper IS 'Upper bound of the recency score r, in days';
COMMENT ON COLUMN segment_grid.frequency_lower IS 'Lower bound of the frequency score equal to fm';
COMMENT ON COLUMN segment_grid.frequency_upper IS 'Upper bound of the frequency score equal to fm';
COMMENT ON COLUMN segment_grid.monetary_lower IS 'Lower bound of the monetary score equal to fm';
COMMENT ON COLUMN segment_grid.monetary_upper IS 'Upper bound of the monetary score equal to fm';
COMMENT ON COLUMN segment_movement.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_movement.run_id IS 'The refresh that moved the customers (rfm.runs)';
COMMENT ON COLUMN segment_movement.as_of IS 'as_of of that refresh';
COMMENT ON COLUMN segment_movement.finished_at IS 'When that refresh finished';
COMMENT ON COLUMN segment_movement.from_segment IS 'Segment before the refresh; NULL: the customers entered';
COMMENT ON COLUMN segment_movement.to_segment IS 'Segment after the refresh; NULL: the customers left';
COMMENT ON COLUMN segment_movement.customers IS 'Customers that moved this way';
COMMENT ON COLUMN segment_movement.revenue IS 'Their monetary value in that refresh (0 for customers that left)';
COMMENT ON COLUMN segment_trend.segmentation IS 'Name of the segmentation';
COMMENT ON COLUMN segment_trend.run_id IS 'The refresh (rfm.runs)';
COMMENT ON COLUMN segment_trend.as_of IS 'as_of of that refresh';
COMMENT ON COLUMN segment_trend.finished_at IS 'When that refresh finished';
COMMENT ON COLUMN segment_trend.position IS 'Display order of the segment in its scheme';
COMMENT ON COLUMN segment_trend.segment IS 'Segment (or ABC tier), automatic assignment';
COMMENT ON COLUMN segment_trend.customers IS 'Customers automatically in the segment after that refresh';
COMMENT ON COLUMN segment_trend.revenue IS 'Their monetary value';
COMMENT ON COLUMN segmentation_catalog.name IS 'Name of the segmentation';
COMMENT ON COLUMN segmentation_catalog.owner IS 'Role that owns it; refreshes read the source with its rights';
COMMENT ON COLUMN segmentation_catalog.kind IS 'rfm or abc';
COMMENT ON COLUMN segmentation_catalog.mode IS 'dynamic (recomputed by every refresh) or static (computed once)';
COMMENT ON COLUMN segmentation_catalog.active IS 'Whether rfm.refresh_all refreshes it';
COMMENT ON COLUMN segmentation_catalog.source IS 'Table or view read by a refresh, or its name followed by (dropped)';
COMMENT ON COLUMN segmentation_catalog.customer_column IS 'Column of the source holding the customer key';
COMMENT ON COLUMN segmentation_catalog.time_column IS 'Column of the source holding the time of the order';
COMMENT ON COLUMN segmentation_catalog.amount_column IS 'Column of the source holding the amount (negative: a return)';
COMMENT ON COLUMN segmentation_catalog.options IS 'Options of the definition (rfm.analyze options plus performance, time_zone, and for ABC default_tier and excluded_tiers)';
COMMENT ON COLUMN segmentation_catalog.created_at IS 'When it was created';
COMMENT ON COLUMN segmentation_catalog.updated_at IS 'When its definition last changed';
COMMENT ON COLUMN segmentation_catalog.last_run_id IS 'The latest finished refresh (rfm.runs)';
COMMENT ON COLUMN segmentation_catalog.last_as_of IS 'as_of of the latest refresh';
COMMENT ON COLUMN segmentation_catalog.last_refresh IS 'When the latest refresh finished';
COMMENT ON COLUMN segmentation_catalog.customers IS 'Customers assigned by the latest refresh (NULL for a role that sees only some of them)';
COMMENT ON COLUMN segmentation_catalog.last_error IS 'SQLSTATE and message of the latest failed refresh by rfm.refresh_all; NULL after a successful one';
COMMENT ON COLUMN segmentation_catalog.last_error_at IS 'When that refresh failed';
COMMENT ON COLUMN segmentation_catalog.access IS 'What the current role sees: all, or rows (only customers whose source rows it may read)';

CREATE FUNCTION segments_of(segmentation text) RETURNS TABLE (ordinal integer, segment text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.ordinal, g.segment
    FROM rfm.segmentation_catalog c CROSS JOIN LATERAL rfm._segments(c.kind, c.options) g
    WHERE c.name = segmentation
    ORDER BY g.ordinal
$$;
COMMENT ON FUNCTION segments_of(text) IS 'The segments (or ABC tiers) of a segmentation, in display order';
