-- The privileges of every object of the extension for PUBLIC, rfm_reader and rfm_admin.
-- A new object left out of the grants (or granted by accident) shows up as a difference
-- here. (p: PUBLIC, r: rfm_reader, a: rfm_admin; X execute, S select, I insert, U update,
-- D delete, -: nothing)
CREATE FUNCTION pg_temp.flags(role text, obj oid, kind "char") RETURNS text LANGUAGE sql AS $$
    SELECT CASE kind
        WHEN 'f' THEN CASE WHEN has_function_privilege(role, obj, 'EXECUTE') THEN 'X' ELSE '-' END
        WHEN 'S' THEN CASE WHEN has_sequence_privilege(role, obj, 'USAGE') THEN 'U' ELSE '-' END
        ELSE concat(CASE WHEN has_table_privilege(role, obj, 'SELECT') THEN 'S' END,
                    CASE WHEN has_table_privilege(role, obj, 'INSERT') THEN 'I' END,
                    CASE WHEN has_table_privilege(role, obj, 'UPDATE') THEN 'U' END,
                    CASE WHEN has_table_privilege(role, obj, 'DELETE') THEN 'D' END,
                    CASE WHEN NOT has_table_privilege(role, obj, 'SELECT, INSERT, UPDATE, DELETE') THEN '-' END)
    END
$$;
WITH objects AS (
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' END AS kind,
           c.relname::text AS name, c.oid, CASE c.relkind WHEN 'S' THEN 'S' ELSE 't' END::"char" AS k
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'rfm' AND c.relkind IN ('r', 'v', 'S')
    UNION ALL
    SELECT CASE p.prokind WHEN 'a' THEN 'aggregate' ELSE 'function' END, p.oid::regprocedure::text, p.oid, 'f'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'rfm')
SELECT kind, name, pg_temp.flags('public', oid, k) AS p, pg_temp.flags('rfm_reader', oid, k) AS r,
       pg_temp.flags('rfm_admin', oid, k) AS a
FROM objects ORDER BY kind, name;
SELECT has_schema_privilege('public', 'rfm', 'USAGE') AS public_usage,
       has_schema_privilege('public', 'rfm', 'CREATE') AS public_create,
       has_schema_privilege('rfm_admin', 'rfm', 'CREATE') AS admin_create;
-- every column of every view of the extension (but the internal _visible_segmentations,
-- which no role may read) has a comment
SELECT c.relname AS view, a.attname AS column_without_comment
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'rfm' AND c.relkind = 'v' AND c.relname !~ '^_'
  AND col_description(c.oid, a.attnum) IS NULL
ORDER BY 1, 2;
SELECT count(*) AS commented_view_columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = 'rfm' AND c.relkind = 'v' AND col_description(c.oid, a.attnum) IS NOT NULL;
