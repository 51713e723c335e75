-- rfm.abc_thresholds and rfm.abc_tier
CREATE TABLE abc_cases (name text, v float8);
INSERT INTO abc_cases VALUES
    ('crossing', 70), ('crossing', 20), ('crossing', 5), ('crossing', 5),
    ('exact bound', 50), ('exact bound', 30), ('exact bound', 15), ('exact bound', 5),
    ('ties', 60), ('ties', 10), ('ties', 10), ('ties', 10), ('ties', 10),
    ('zero and negative', 100), ('zero and negative', 0), ('zero and negative', -5),
    ('all non-positive', 0), ('all non-positive', -1),
    ('one giant', 99), ('one giant', 1),
    ('mixed', 70), ('mixed', 20), ('mixed', 5), ('mixed', 3), ('mixed', 2), ('mixed', 0), ('mixed', -4);
SELECT name, rfm.abc_thresholds(v) AS thresholds
FROM abc_cases GROUP BY name ORDER BY name;
SELECT c.name, c.v, rfm.abc_tier(c.v, t.th) AS tier
FROM abc_cases c
JOIN (SELECT name, rfm.abc_thresholds(v) AS th FROM abc_cases GROUP BY name) t USING (name)
ORDER BY c.name, c.v DESC;
-- custom shares and names
SELECT rfm.abc_thresholds(v, '{0.5,0.3,0.2}') AS th FROM abc_cases WHERE name = 'mixed';
SELECT v, rfm.abc_tier(v, '{70,20}', '{Gold,Silver,Bronze}') AS tier
FROM unnest('{100,70,69,20,1,0}'::float8[]) v;
SELECT rfm.abc_thresholds(v, '{1}') AS single_tier FROM abc_cases WHERE name = 'mixed';
SELECT rfm.abc_thresholds(v) IS NULL AS no_rows FROM abc_cases WHERE false;

-- tier shares on a larger set agree with a pure-SQL formulation of the definition
SELECT setseed(0.7);
CREATE TABLE abc_big AS
SELECT g AS customer, round((exp(random() * 8) - 50)::numeric, 2)::float8 AS v
FROM generate_series(1, 20000) g;
WITH th AS (SELECT rfm.abc_thresholds(v) AS th FROM abc_big),
ours AS (SELECT customer, rfm.abc_tier(v, th) AS tier FROM abc_big, th),
total AS (SELECT sum(v) FILTER (WHERE v > 0) AS total FROM abc_big),
ranked AS (
    SELECT customer, v,
           coalesce(sum(v) FILTER (WHERE v > 0) OVER (ORDER BY v DESC GROUPS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) / total AS ahead
    FROM abc_big, total),
theirs AS (SELECT customer, CASE WHEN v <= 0 THEN 'C'
                                 WHEN 0.8 - ahead > 1e-12 THEN 'A'
                                 WHEN 0.95 - ahead > 1e-12 THEN 'B' ELSE 'C' END AS tier
           FROM ranked)
SELECT count(*) AS customers, count(*) FILTER (WHERE ours.tier <> theirs.tier) AS disagreements,
       count(*) FILTER (WHERE ours.tier = 'A') > 0 AS has_a,
       count(*) FILTER (WHERE ours.tier = 'B') > 0 AS has_b
FROM ours JOIN theirs USING (customer);

-- forced parallel plans give the serial answer
ANALYZE abc_big;
CREATE TABLE abc_serial AS SELECT rfm.abc_thresholds(v) AS th FROM abc_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT count(*) AS plan_lines_with_partial_aggregate
FROM rfm_test.plan_of($$SELECT rfm.abc_thresholds(v) FROM abc_big$$) line
WHERE line LIKE '%Partial Aggregate%';
CREATE TABLE abc_parallel AS SELECT rfm.abc_thresholds(v) AS th FROM abc_big;
RESET ALL;
SELECT p.th = s.th AS same FROM abc_parallel p, abc_serial s;

-- bad input
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v, '{0.8,0.3}') FROM abc_cases$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v, '{0.8,0.25,-0.05}') FROM abc_cases$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v, '{0.8,NULL}') FROM abc_cases$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v, '{}') FROM abc_cases$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v, NULL) FROM abc_cases$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v) FROM unnest('{1,NaN}'::float8[]) v$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_thresholds(v) FROM unnest('{1,-Infinity}'::float8[]) v$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier(5, '{1,10}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier(5, '{10,1}', '{A,B}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier(5, '{10,NULL}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier('NaN', '{10,1}')$$);
SELECT rfm_test.error_of($$SELECT rfm.abc_tier('Infinity', '{10,1}')$$);
DROP TABLE abc_cases, abc_big, abc_serial, abc_parallel;
