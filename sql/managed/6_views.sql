-- Managed segmentations, part 6 of 7: the views BI tools and analysts read.
--
-- The views read the catalog tables with the extension owner's rights, and decide row by
-- row what the querying role may see: functions in a view run as the querying role, so
-- rfm._access and rfm._visible_keys see its rights, and current_user is that role.

-- What the current role may see of a segmentation: 'all', 'rows' (only the customers whose
-- source rows it may see: it may read the source, which has row-level security for it), or
-- NULL (nothing).
CREATE FUNCTION _access(owner regrole, source regclass, customer_column name, time_column name,
                        amount_column name, granted boolean) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = source) THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.has_column_privilege(source, customer_column, 'SELECT')
       AND pg_catalog.has_column_privilege(source, time_column, 'SELECT')
       AND pg_catalog.has_column_privilege(source, amount_column, 'SELECT') THEN
        RETURN CASE WHEN pg_catalog.row_security_active(source) THEN 'rows' ELSE 'all' END;
    END IF;
    RETURN NULL;
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
SELECT s.*, ac.access
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
       x.frequency, x.monetary, x.abc_tier,
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
       coalesce(g.revenue, 0) AS revenue,
       round(100.0 * coalesce(g.revenue, 0) / nullif(g.total_revenue, 0), 2) AS pct_revenue,
       round(g.revenue / nullif(g.customers, 0), 2) AS avg_revenue,
       round(g.avg_frequency, 2) AS avg_frequency,
       round(g.avg_recency_days, 2) AS avg_recency_days
FROM rfm._visible_segmentations v
CROSS JOIN LATERAL (
    -- one segmentation at a time, so that a filter on the segmentation decodes only its run
    WITH c AS (SELECT x.segment, count(*) AS customers, coalesce(sum(x.monetary), 0) AS revenue,
                      avg(x.frequency) AS avg_frequency, avg(x.recency_days) AS avg_recency_days
               FROM rfm.customer_segments x WHERE x.segmentation = v.name GROUP BY x.segment),
    t AS (SELECT sum(c.customers) AS customers, sum(c.revenue) AS revenue FROM c)
    SELECT s.ordinal, s.segment, c.customers, c.revenue, c.avg_frequency, c.avg_recency_days,
           t.customers AS total_customers, t.revenue AS total_revenue
    FROM rfm._segments(v.kind, v.options) s
    LEFT JOIN c ON c.segment = s.segment
    CROSS JOIN t) g;
COMMENT ON VIEW segment_summary IS 'Customers and revenue per segment (effective segments), empty segments included';

CREATE VIEW kpi_overview AS
SELECT v.name AS segmentation, r.as_of, r.period, r.customers AS active_customers,
       r.total_revenue, r.excluded_customers, r.transactions, r.finished_at AS last_refresh
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
SELECT v.name AS segmentation, g.r, g.fm, g.segment, g.customers, g.revenue,
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

CREATE VIEW segment_movement AS
SELECT v.name AS segmentation, h.run_id, r.as_of, r.finished_at,
       h.from_segment, h.to_segment, count(*) AS customers, coalesce(sum(h.monetary), 0) AS revenue
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
       g.customers, g.revenue
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
       v.last_error, v.last_error_at, v.access
FROM rfm._visible_segmentations v
LEFT JOIN LATERAL (SELECT * FROM rfm.runs x WHERE x.segmentation_id = v.id AND x.finished_at IS NOT NULL
                   ORDER BY x.id DESC LIMIT 1) r ON true;
COMMENT ON VIEW segmentation_catalog IS
    'Every segmentation the current role may see: kind, mode, owner, source, last refresh, last error, and what it may see (all, or rows: only customers whose source rows it may read)';

CREATE FUNCTION segments_of(segmentation text) RETURNS TABLE (ordinal integer, segment text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.ordinal, g.segment
    FROM rfm.segmentation_catalog c CROSS JOIN LATERAL rfm._segments(c.kind, c.options) g
    WHERE c.name = segmentation
    ORDER BY g.ordinal
$$;
COMMENT ON FUNCTION segments_of(text) IS 'The segments (or ABC tiers) of a segmentation, in display order';
