-- rfm.score and rfm.fm_score
-- NetSuite fixed thresholds: recency days, lower is better
SELECT days, rfm.score(days, '{30,90,180,365}', false) AS r
FROM unnest('{0,30,31,90,91,180,181,365,366,1000}'::float8[]) days;
-- orders, at least: 5 for 10+ orders ... 1 for one order
SELECT orders, rfm.score(orders, '{2,3,5,10}', true, true) AS f
FROM generate_series(1, 11) orders;
-- lifetime value, at least: 5 for $2,000+
SELECT ltv, rfm.score(ltv, '{100,500,1000,2000}', true, true) AS m
FROM unnest('{0,99.99,100,499.99,500,999.99,1000,1999.99,2000,25000}'::float8[]) ltv;

-- a value equal to a quantile threshold stays in the lower-value bucket (pandas.qcut)
SELECT v, rfm.score(v, '{2.8,4.6,6.4,8.2}') AS higher_better,
       rfm.score(v, '{2.8,4.6,6.4,8.2}', false) AS lower_better
FROM unnest('{1,2.8,2.9,4.6,8.2,8.3,10}'::float8[]) v;
-- equal values always get equal scores, even with tied thresholds
SELECT v, rfm.score(v, '{1,1,1,4}') AS score, rfm.score(v, '{1,1,1,4}', true, true) AS score_at_least
FROM unnest('{0,1,2,4,5}'::float8[]) v;
-- scores agree with quantile thresholds and never split ties (unlike NTILE)
SELECT count(DISTINCT (x, s)) = count(DISTINCT x) AS one_score_per_value
FROM (SELECT x, rfm.score(x, t) AS s
      FROM (SELECT (g % 7)::float8 AS x FROM generate_series(1, 100) g) d,
           (SELECT rfm.quantile_thresholds((g % 7)::float8) AS t FROM generate_series(1, 100) g) q) s;
-- NULL in, NULL out (strict)
SELECT rfm.score(NULL, '{1,2}') IS NULL AS null_value, rfm.score(1, NULL) IS NULL AS null_thresholds;

-- fm_score = ceil((f + m) / 2)
SELECT f, string_agg(rfm.fm_score(f, m)::text, ' ' ORDER BY m) AS fm_for_m_1_to_5
FROM generate_series(1, 5) f, generate_series(1, 5) m GROUP BY f ORDER BY f;
SELECT bool_and(rfm.fm_score(f, m) = ceil((f + m) / 2.0)) AS matches_formula
FROM generate_series(1, 100) f, generate_series(1, 100) m;

-- bad input
SELECT rfm_test.error_of($$SELECT rfm.score(5, '{30,10,20}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score(5, '{10,NULL,20}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score(5, '{}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score(5, '{NaN}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score(5, (SELECT array_agg(g::float8) FROM generate_series(1, 100) g))$$);
SELECT rfm_test.error_of($$SELECT rfm.score('NaN', '{1,2}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score('Infinity', '{1,2}')$$);
SELECT rfm_test.error_of($$SELECT rfm.score('-Infinity', '{1,2}')$$);
SELECT rfm_test.error_of($$SELECT rfm.fm_score(0, 3)$$);
SELECT rfm_test.error_of($$SELECT rfm.fm_score(3, 101)$$);
