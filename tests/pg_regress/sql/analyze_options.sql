-- rfm.analyze: edge cases, methods, schemes and bad options
SET TimeZone = 'UTC';
CREATE TABLE ed (c bigint, t timestamptz, a numeric);
INSERT INTO ed VALUES
    (1, '2025-12-30', 100), (1, '2025-06-01', 50), (2, '2025-12-01', 10), (2, '2025-12-02', -10),
    (3, '2025-03-01', 500), (4, '2025-11-15', 20), (4, '2025-11-16', 20), (4, '2025-11-17', 20),
    (5, '2025-07-01', -30), (6, '2024-01-01', 80);
-- empty input: no analysis, and the accessors return no rows
SELECT rfm.analyze(c, t, a) IS NULL AS empty_is_null FROM ed WHERE false;
SELECT count(*) AS rows FROM rfm.summary((SELECT rfm.analyze(c, t, a) FROM ed WHERE false));
-- as_of before all data: rows after as_of are not part of the analysis (nobody is active
-- or excluded), and every segment is listed empty
SELECT * FROM rfm.overview((SELECT rfm.analyze(c, t, a, '{"as_of": "2020-01-01"}') FROM ed));
SELECT segment, customers, revenue, pct_customers FROM rfm.summary((SELECT rfm.analyze(c, t, a, '{"as_of": "2020-01-01"}') FROM ed));
-- returns lower monetary; a customer with only returns is excluded; old rows are ignored
SELECT * FROM rfm.customers((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM ed)) ORDER BY customer_key;
SELECT * FROM rfm.overview((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM ed));
-- a single customer, and all customers tied: equal values, equal scores
SELECT customer_key, r, f, m, segment, abc_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}') FROM ed WHERE c = 1));
SELECT r, f, m, segment, count(*) FROM rfm.customers((
    SELECT rfm.analyze(g, timestamptz '2025-12-01', 10.00, '{"as_of": "2025-12-31"}') FROM generate_series(1, 50) g))
GROUP BY 1, 2, 3, 4;
-- ntile: equal-count buckets, ties broken by customer key, the same on every run
SELECT customer_key, recency_days, frequency, monetary, r, f, m FROM rfm.customers((
    SELECT rfm.analyze(g, timestamptz '2025-12-01', 10.00, '{"as_of": "2025-12-31", "method": "ntile"}')
    FROM generate_series(1, 7) g)) ORDER BY customer_key::int;
SELECT * FROM rfm.thresholds((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "method": "ntile"}') FROM ed)) ORDER BY metric, score;
-- ntile agrees with SQL NTILE ordered by (value, key)
SELECT count(*) FILTER (WHERE o.m <> x.m) AS monetary_differences
FROM rfm.customers((SELECT rfm.analyze(g, timestamptz '2025-12-01', (g % 13)::numeric, '{"as_of": "2025-12-31", "method": "ntile"}')
                    FROM generate_series(1, 503) g)) o
JOIN (SELECT g::text AS customer_key, ntile(5) OVER (ORDER BY g % 13, g) AS m FROM generate_series(1, 503) g) x USING (customer_key);
-- fixed NetSuite thresholds
SELECT customer_key, recency_days, frequency, monetary, r, f, m, rfm_code, segment FROM rfm.customers((
    SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "method": "fixed", "scheme": "codes",
        "thresholds": {"recency": [30,90,180,365], "frequency": [2,3,5,10], "monetary": [100,500,1000,2000]}}') FROM ed))
ORDER BY customer_key;
SELECT * FROM rfm.thresholds((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "method": "fixed",
    "thresholds": {"recency": [30,90,180,365], "frequency": [2,3,5,10], "monetary": [100,500,1000,2000]}}') FROM ed))
WHERE metric = 'recency' ORDER BY score;
-- rf10 scheme, custom ABC shares and names, scores without segments
SELECT segment, customers FROM rfm.summary((SELECT rfm.analyze(c, t, a, '{"as_of": "2025-12-31", "scheme": "rf10"}') FROM ed));
SELECT customer_key, monetary, abc_tier FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31", "abc_shares": [0.5, 0.5], "abc_names": ["top", "rest"]}') FROM ed)) ORDER BY customer_key;
SELECT customer_key, r, f, m, segment FROM rfm.customers((SELECT rfm.analyze(c, t, a,
    '{"as_of": "2025-12-31", "buckets": 3, "scheme": null}') FROM ed)) ORDER BY customer_key;
-- the key can be any text: e-mail addresses
SELECT customer_key, frequency, monetary FROM rfm.customers((SELECT rfm.analyze(e, t, a, '{"as_of": "2025-12-31"}')
    FROM (VALUES ('ann@example.com', timestamptz '2025-12-01', 5.50), ('ann@example.com', '2025-12-02', 4.50),
                 ('bob@example.com', '2025-11-01', 1.25)) v(e, t, a))) ORDER BY 1;
-- bad input
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"bogus": 1}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '[1]') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"as_of": 5}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"as_of": "soon"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"period": "-1 month"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"period": "a while"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"buckets": 1}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"buckets": "five"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"buckets": 4}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"scheme": "gold"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"method": "kmeans"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"method": "fixed"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"method": "fixed", "thresholds": {"recency": [1,2,3,4], "frequency": [1,2,3,4]}}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"method": "fixed", "thresholds": {"recency": [4,3,2,1], "frequency": [1,2,3,4], "monetary": [1,2,3,4]}}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"thresholds": {"recency": [1,2,3,4]}}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"abc_shares": [0.9, 0.2]}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"abc_shares": [0.5, 0.5], "abc_names": ["x"]}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, jsonb_build_object('period', c || ' months')) FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, x) FROM ed, (VALUES ('NaN'::numeric)) v(x)$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, x) FROM ed, (VALUES ('Infinity'::float8)) v(x)$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, x) FROM ed, (VALUES ('-Infinity'::numeric)) v(x)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.summary('\x00'::bytea::rfm.analysis)$$);
-- an analysis too large for one value stops with a clear error, not an out-of-memory kill
SET rfm.max_customers = 3;
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a) FROM ed$$);
RESET rfm.max_customers;
-- the state's size is reported at DEBUG1 (deterministic for given rows)
SET client_min_messages = debug1;
SELECT octet_length(rfm.analyze(c, t, a, '{"as_of": "2025-12-31"}')) AS analysis_bytes FROM ed;
RESET client_min_messages;
-- a window of more than 136 years is refused; the final step consumes the state, so the
-- aggregate is not a window function
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a, '{"period": "137 years"}') FROM ed$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"period": "137 years"}')$$);
SELECT (rfm.check_options('{"period": "136 years"}') ->> 'period') AS longest_period;
SELECT rfm_test.error_of($$SELECT rfm.analyze(c, t, a) OVER () FROM ed$$);
SELECT rfm_test.error_of($$SET rfm.max_customers = 30000000$$);
-- rfm.check_options and rfm.analyze refuse the same documents, with the same SQLSTATE and a
-- message naming the key (before: a far-past as_of passed check_options and failed in
-- rfm.analyze with 22008 naming no option; a date as the period was 22015 without the key;
-- a deeply nested document said "recursion limit exceeded")
SELECT left(d, 50) AS options,
       rfm_test.error_of(format('SELECT rfm.check_options(%L)', d)) AS check_options,
       rfm_test.error_of(format('SELECT rfm.analyze(c, t, a, %L) FROM ed', d))
       = rfm_test.error_of(format('SELECT rfm.check_options(%L)', d)) AS analyze_says_the_same
FROM unnest(ARRAY['{"as_of": "4713-11-24 BC"}', '{"as_of": "4713-12-20 BC", "period": "1 month"}',
                  '{"as_of": "294276-12-30"}', '{"period": "2025-12-31"}', '{"period": "1000000000 years"}',
                  '{"as_of": "2025-02-30"}', '{"as_of": "tomorrow-ish"}', '{"year": 0}', '{"year": 2025, "period": "1 month"}',
                  '{"thresholds": ' || repeat('[', 200) || repeat(']', 200) || '}']) d;
-- the same, for 400 documents drawn at random from good and bad keys and values: both
-- functions accept or refuse each one alike (seeded, so the drawn documents are the same
-- every run)
SELECT setseed(0.2024);
CREATE TEMP TABLE drawn AS
WITH pool(k, v) AS (VALUES
    ('as_of', '"2025-12-31"'), ('as_of', '"2025-12-31 18:00+01"'), ('as_of', '"never"'), ('as_of', '3'),
    ('as_of', '"4713-11-24 BC"'), ('period', '"12 months"'), ('period', '"90 days"'), ('period', '"-1 day"'),
    ('period', '"2025-12-31"'), ('period', '"137 years"'), ('year', '2024'), ('year', '0'), ('year', '"2024"'),
    ('buckets', '5'), ('buckets', '4'), ('buckets', '1'), ('buckets', '1e400'), ('buckets', '2.5'),
    ('scheme', '"standard"'), ('scheme', 'null'), ('scheme', '"rf10"'), ('scheme', '"nope"'),
    ('method', '"ntile"'), ('method', '"quantile"'), ('method', '"magic"'),
    ('abc_shares', '[0.8, 0.15, 0.05]'), ('abc_shares', '[0.5, 0.6]'), ('abc_shares', '[]'),
    ('abc_names', '["A", "B", "C"]'), ('abc_names', '["A"]'), ('abc_min_sales', '100'), ('abc_min_sales', '-1'),
    ('keep_excluded', 'true'), ('keep_excluded', '"yes"'), ('metrics', 'false'), ('metrics', '1'),
    ('colour', '"red"'), ('preiod', '"1 year"')),
draws AS (
    SELECT d, (SELECT jsonb_object_agg(k, v::jsonb) FROM (
                   SELECT DISTINCT ON (k) k, v FROM pool
                   WHERE random() < 0.12 + 0 * d ORDER BY k, random()) x) AS doc
    FROM generate_series(1, 400) d)
SELECT d, coalesce(doc, '{}') AS doc FROM draws;
SELECT count(*) AS documents,
       count(*) FILTER (WHERE c = 'no error') AS accepted,
       count(*) FILTER (WHERE c <> 'no error') AS refused,
       count(*) FILTER (WHERE c <> a) AS disagreeing,
       count(*) FILTER (WHERE c <> 'no error' AND c !~ '(as_of|period|year|buckets|scheme|method|thresholds|abc_shares|abc_names|abc_min_sales|keep_excluded|metrics|clv|unknown option)') AS refused_without_naming_a_key
FROM (SELECT rfm_test.error_of(format('SELECT rfm.check_options(%L)', doc)) AS c,
             rfm_test.error_of(format('SELECT rfm.analyze(c, t, a, %L) FROM ed', doc)) AS a
      FROM drawn) r;
SELECT doc, c, a FROM (
    SELECT doc, rfm_test.error_of(format('SELECT rfm.check_options(%L)', doc)) AS c,
           rfm_test.error_of(format('SELECT rfm.analyze(c, t, a, %L) FROM ed', doc)) AS a
    FROM drawn) r
WHERE c <> a ORDER BY 1 LIMIT 5;
SELECT DISTINCT left(c, 120) AS refusals_without_a_key_name FROM (
    SELECT rfm_test.error_of(format('SELECT rfm.check_options(%L)', doc)) AS c FROM drawn) r
WHERE c <> 'no error' AND c !~ '(as_of|period|year|buckets|scheme|method|thresholds|abc_shares|abc_names|abc_min_sales|keep_excluded|metrics|clv|unknown option)' ORDER BY 1;
DROP TABLE drawn;
SELECT (rfm.check_options('{"year": 2024}') ->> 'period') AS year_period,
       (rfm.check_options('{"year": 2024}') ->> 'as_of')::timestamptz
     = (SELECT (rfm.check_options('{"as_of": "2024-12-31"}') ->> 'as_of')::timestamptz) AS year_is_the_end_of_december_31;
DROP TABLE ed;
