-- CREATE EXTENSION, DROP EXTENSION and CREATE again in a fresh database
CREATE DATABASE rfm_lifecycle;
\c rfm_lifecycle
CREATE EXTENSION rfm_segmentation;
SELECT extname, extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'rfm_segmentation') AS current_version,
       extnamespace::regnamespace AS schema, extrelocatable
FROM pg_extension WHERE extname = 'rfm_segmentation';
SELECT count(*) > 0 AS has_objects FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'rfm_segmentation');
SELECT rfm.segment(5, 5, 5);
DROP EXTENSION rfm_segmentation;
SELECT count(*) AS functions_left FROM pg_proc WHERE pronamespace = 'rfm'::regnamespace;
CREATE EXTENSION rfm_segmentation;
SELECT rfm.segment(1, 1, 1), rfm.quantile_thresholds(x) FROM generate_series(1, 5) x GROUP BY 1;
DROP EXTENSION rfm_segmentation;
DROP SCHEMA rfm;
\c rfm_segmentation_regress
DROP DATABASE rfm_lifecycle;
