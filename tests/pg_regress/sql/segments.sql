-- rfm.segment with every built-in scheme, every cell
-- standard: R (rows) x FM (columns); each cell lists the distinct segments of all (f, m)
-- with that fm, so a wrong mapping for any (f, m) shows up as two names in a cell
SELECT r,
       max(CASE WHEN fm = 1 THEN names END) AS fm1,
       max(CASE WHEN fm = 2 THEN names END) AS fm2,
       max(CASE WHEN fm = 3 THEN names END) AS fm3,
       max(CASE WHEN fm = 4 THEN names END) AS fm4,
       max(CASE WHEN fm = 5 THEN names END) AS fm5
FROM (SELECT r, rfm.fm_score(f, m) AS fm, string_agg(DISTINCT rfm.segment(r, f, m), ' | ') AS names
      FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
      GROUP BY 1, 2) c
GROUP BY r ORDER BY r DESC;
-- the default scheme is standard
SELECT bool_and(rfm.segment(r, f, m) = rfm.segment(r, f, m, 'standard')) AS default_is_standard
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m;
-- rf10: R x F; monetary is not used
SELECT r,
       max(CASE WHEN f = 1 THEN names END) AS f1,
       max(CASE WHEN f = 2 THEN names END) AS f2,
       max(CASE WHEN f = 3 THEN names END) AS f3,
       max(CASE WHEN f = 4 THEN names END) AS f4,
       max(CASE WHEN f = 5 THEN names END) AS f5
FROM (SELECT r, f, string_agg(DISTINCT rfm.segment(r, f, m, 'rf10'), ' | ') AS names
      FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
      GROUP BY 1, 2) c
GROUP BY r ORDER BY r DESC;
-- codes: every one of the 125 codes
SELECT rfm.segment(r, f, m, 'codes') AS segment, count(*) AS codes,
       string_agg(format('%s%s%s', r, f, m), ' ' ORDER BY r DESC, f DESC, m DESC)
           FILTER (WHERE rfm.segment(r, f, m, 'codes') <> 'Other') AS listed
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
GROUP BY 1 ORDER BY min(array_position(
    (SELECT array_agg(segment ORDER BY position) FROM rfm.schemes WHERE scheme = 'codes'),
    rfm.segment(r, f, m, 'codes')));

-- the schemes view: every segment with its cells, description and actions
SELECT scheme, position, segment, cells
FROM rfm.schemes ORDER BY scheme, position;
SELECT segment, description, actions FROM rfm.schemes WHERE scheme = 'standard' ORDER BY position;
-- the cells of the view agree with rfm.segment
SELECT s.scheme, count(*) AS cells,
       count(*) FILTER (WHERE rfm.segment(
           substr(c, 2, 1)::int,
           CASE WHEN s.scheme = 'standard' THEN substr(c, 6, 1)::int ELSE substr(c, 5, 1)::int END,
           CASE WHEN s.scheme = 'standard' THEN substr(c, 6, 1)::int ELSE 1 END,
           s.scheme) <> s.segment) AS disagreements
FROM rfm.schemes s, unnest(s.cells) c
WHERE s.scheme IN ('standard', 'rf10')
GROUP BY s.scheme ORDER BY 1;
SELECT count(*) AS codes,
       count(*) FILTER (WHERE rfm.segment(substr(c, 1, 1)::int, substr(c, 2, 1)::int,
                                          substr(c, 3, 1)::int, 'codes') <> s.segment) AS disagreements
FROM rfm.schemes s, unnest(s.cells) c WHERE s.scheme = 'codes';

-- bad input
SELECT rfm_test.error_of($$SELECT rfm.segment(6, 1, 1)$$);
SELECT rfm_test.error_of($$SELECT rfm.segment(1, 0, 1, 'rf10')$$);
SELECT rfm_test.error_of($$SELECT rfm.segment(1, 1, -1, 'codes')$$);
SELECT rfm_test.error_of($$SELECT rfm.segment(1, 1, 1, 'gold')$$);
SELECT rfm.segment(1, 1, 1, NULL) IS NULL AS null_scheme_is_null;
