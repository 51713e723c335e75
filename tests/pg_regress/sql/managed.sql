-- Managed segmentations: definitions, refresh with history, overrides, views, roles, RLS
SET TimeZone = 'UTC';
CREATE TABLE mg_tx (customer_id bigint, region text, ordered_at timestamptz, amount numeric(12, 2), note text, flag boolean);
SELECT setseed(0.3);
INSERT INTO mg_tx
SELECT 1 + (g * 7919) % 120, CASE WHEN g % 3 = 0 THEN 'south' ELSE 'north' END,
       timestamptz '2025-12-31' - ((g * 104729) % 400) * interval '1 day',
       round((5 + (g * 31) % 300)::numeric / 3, 2), 'x', true
FROM generate_series(1, 2000) g;

-- definitions that are refused leave the catalog unchanged
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'nope', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'flag', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'note')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'amount', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'no_such_table', 'customer_id', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"colour": "red"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"buckets": 4}')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"year": "last"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x";DROP TABLE mg_tx;--', 'mg_tx', 'customer_id', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x''y', 'mg_tx', 'customer_id', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{}', 'kmeans')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{}', 'rfm', 'sometimes')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"excluded_tiers": ["Z"]}', 'abc')$$);
SELECT count(*) AS definitions FROM rfm.segmentations;
SELECT count(*) AS rows_still_there FROM mg_tx;

-- a dynamic RFM segmentation, refreshed
SELECT rfm.create_segmentation('main', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}') > 0 AS created;
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('main', 'mg_tx', 'customer_id', 'ordered_at', 'amount')$$);
SELECT count(*) AS previewed FROM rfm.preview('main');
SELECT count(*) AS assigned_before_refresh FROM rfm.customer_segments WHERE segmentation = 'main';
SELECT rfm.refresh('main') IS NOT NULL AS refreshed;
-- the stored assignment is what rfm.analyze gives for the same rows and options
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (c.segment, c.r, c.f, c.m, c.monetary, c.abc_tier)
                        IS DISTINCT FROM (x.segment, x.r, x.f, x.m, x.monetary, x.abc_tier)) AS differences
FROM rfm.customer_segments c
FULL JOIN rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00"}') FROM mg_tx)) x
    USING (customer_key)
WHERE c.segmentation = 'main' OR c.segmentation IS NULL;
SELECT s.segment, s.customers, s.revenue, s.customers = x.customers AND s.revenue = x.revenue AS matches_rfm_summary
FROM rfm.segment_summary s
JOIN rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 23:59:59+00"}') FROM mg_tx)) x USING (segment)
WHERE s.segmentation = 'main' ORDER BY s.position;
-- the first run: every customer entered
SELECT from_segment IS NULL AS entered, count(*) FROM rfm.history h JOIN rfm.segmentations s ON s.id = h.segmentation_id
WHERE s.name = 'main' GROUP BY 1;
SELECT active_customers, total_revenue, excluded_customers, transactions, last_refresh IS NOT NULL AS refreshed
FROM rfm.kpi_overview WHERE segmentation = 'main';
SELECT metric, score, lower_bound, upper_bound, customers FROM rfm.segment_thresholds
WHERE segmentation = 'main' ORDER BY metric, score;
SELECT r, string_agg(customers::text, ' ' ORDER BY fm) AS customers_fm1_to_fm5,
       min(recency_lower) AS recency_lower, min(recency_upper) AS recency_upper
FROM rfm.segment_grid WHERE segmentation = 'main' GROUP BY r ORDER BY r DESC;

-- new transactions: history rows for exactly the customers whose segment changed
CREATE TABLE mg_before AS SELECT customer_key, segment FROM rfm.customer_segments WHERE segmentation = 'main';
INSERT INTO mg_tx SELECT c, 'north', '2025-12-30', 900, 'x', true FROM generate_series(1, 120, 10) c;
INSERT INTO mg_tx VALUES (5001, 'north', '2025-12-29', 12.50, 'new customer', true);
SELECT rfm.refresh('main') IS NOT NULL AS refreshed;
CREATE TABLE mg_after AS SELECT customer_key, segment FROM rfm.customer_segments WHERE segmentation = 'main';
WITH moved AS (SELECT coalesce(b.customer_key, a.customer_key) AS customer_key, b.segment AS from_segment, a.segment AS to_segment
               FROM mg_before b FULL JOIN mg_after a USING (customer_key)
               WHERE b.segment IS DISTINCT FROM a.segment),
logged AS (SELECT customer_key, from_segment, to_segment FROM rfm.history
           WHERE run_id = (SELECT max(id) FROM rfm.runs) AND reason = 'refresh')
SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM logged) AS logged,
       (SELECT count(*) FROM (SELECT * FROM moved EXCEPT SELECT * FROM logged) d) AS unlogged,
       (SELECT count(*) FROM (SELECT * FROM logged EXCEPT SELECT * FROM moved) d) AS spurious,
       (SELECT to_segment FROM logged WHERE customer_key = '5001') AS new_customer_entered;
SELECT changed = (SELECT count(*) FROM rfm.history WHERE run_id = runs.id) AS run_counts_changes
FROM rfm.runs WHERE id = (SELECT max(id) FROM rfm.runs);

-- manual overrides win, survive refreshes and are logged
SELECT rfm.set_override('main', '2', 'Champions', 'key account');
-- segment_summary shows effective and automatic counts; the automatic ones are segment_trend's
SELECT s.segment, s.customers, s.automatic_customers,
       (s.automatic_customers, s.automatic_revenue) = (t.customers, t.revenue) AS automatic_matches_trend
FROM rfm.segment_summary s
JOIN rfm.segment_trend t ON t.segmentation = s.segmentation AND t.segment = s.segment
 AND t.run_id = (SELECT max(run_id) FROM rfm.segment_trend WHERE segmentation = 'main')
WHERE s.segmentation = 'main' AND (s.customers <> s.automatic_customers OR s.segment = 'Loyal')
ORDER BY s.position;
SELECT bool_and((s.automatic_customers, s.automatic_revenue) = (t.customers, t.revenue)) AS all_automatic_match_trend
FROM rfm.segment_summary s
JOIN rfm.segment_trend t ON t.segmentation = s.segmentation AND t.segment = s.segment
 AND t.run_id = (SELECT max(run_id) FROM rfm.segment_trend WHERE segmentation = 'main')
WHERE s.segmentation = 'main';
SELECT customer_key, segment, manual_segment, segment = manual_segment AS manual_wins,
       automatic_segment IS NOT NULL AS automatic_visible
FROM rfm.customer_segments WHERE segmentation = 'main' AND customer_key = '2';
SELECT from_segment <> to_segment AS changed, to_segment, run_id IS NULL AS not_a_run
FROM rfm.history WHERE reason = 'override' AND customer_key = '2';
-- a key the latest refresh does not know is refused, unless it is explicitly set in advance
SELECT rfm_test.error_of($$SELECT rfm.set_override('main', 'vip-without-sales', 'Loyal')$$);
SELECT rfm.set_override('main', 'vip-without-sales', 'Loyal', pre_assignment => true);
SELECT rfm_test.error_of($$SELECT rfm.set_override('main', '2', 'Champions', pre_assignment => NULL)$$);
SELECT rfm_test.error_of($$SELECT rfm.set_override('main', '3', 'Gold')$$);
SELECT rfm_test.error_of($$SELECT rfm.set_override('nope', '3', 'Loyal')$$);
SELECT rfm.refresh('main') IS NOT NULL AS third_run;
SELECT customer_key, segment, manual_segment FROM rfm.customer_segments
WHERE segmentation = 'main' AND customer_key IN ('2', 'vip-without-sales') ORDER BY 1;
SELECT count(*) AS override_customers_in_third_run_history FROM rfm.history
WHERE run_id = (SELECT max(id) FROM rfm.runs) AND customer_key IN ('2', 'vip-without-sales');
-- a change of scheme that would strand an override is refused, and nothing changes
SELECT rfm.set_override('main', '5', 'Lost');
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('main', options => '{"as_of": "2025-12-31 23:59:59+00", "scheme": "rf10"}')$$);
SELECT options ->> 'scheme' IS NULL AS scheme_unchanged FROM rfm.segmentations WHERE name = 'main';
SELECT rfm.clear_override('main', '5') AS cleared_lost;
SELECT rfm.clear_override('main', '2') AS cleared, rfm.clear_override('main', '2') AS cleared_again;
SELECT segment = automatic_segment AS back_to_automatic FROM rfm.customer_segments
WHERE segmentation = 'main' AND customer_key = '2';
SELECT count(*) AS override_history FROM rfm.history WHERE reason = 'override';
SELECT rfm.clear_overrides('main') AS cleared_all;
SELECT count(*) AS customers_without_sales FROM rfm.customer_segments WHERE customer_key = 'vip-without-sales';

-- trend and movement over three runs
SELECT count(DISTINCT run_id) AS runs, count(*) AS rows,
       bool_and(customers >= 0) AS counts FROM rfm.segment_trend WHERE segmentation = 'main';
SELECT run_id = (SELECT min(id) FROM rfm.runs) AS first_run, sum(customers) AS customers
FROM rfm.segment_trend WHERE segmentation = 'main' GROUP BY run_id ORDER BY run_id;
SELECT count(DISTINCT run_id) AS runs_with_movement,
       sum(customers) = (SELECT count(*) FROM rfm.history WHERE reason = 'refresh') AS adds_up
FROM rfm.segment_movement WHERE segmentation = 'main';
SELECT from_segment, to_segment, customers, revenue FROM rfm.segment_movement
WHERE segmentation = 'main' AND run_id = (SELECT min(id) + 1 FROM rfm.runs)
ORDER BY customers DESC, from_segment, to_segment LIMIT 5;

-- static segmentations refuse a second refresh unless forced; inactive ones are skipped
SELECT rfm.create_segmentation('frozen', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-06-30 23:59:59+00", "scheme": "rf10"}', mode => 'static') > 0;
SELECT rfm.refresh('frozen') IS NOT NULL AS first_refresh;
SELECT rfm_test.error_of($$SELECT rfm.refresh('frozen')$$);
SELECT rfm.refresh('frozen', force => true) IS NOT NULL AS forced;
SELECT forced FROM rfm.runs WHERE segmentation_id = (SELECT id FROM rfm.segmentations WHERE name = 'frozen') ORDER BY id;
SELECT rfm.create_segmentation('tiers', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
    '{"year": 2025, "abc_min_sales": 100, "abc_names": ["A", "B", "C", "Blocked"], "excluded_tiers": ["Blocked"]}', 'abc') > 0;
-- one name per concept: the option names of rfm.analyze
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"min_sales": 100}', 'abc')$$);
SELECT rfm.alter_segmentation('main', active => false);
SELECT segmentation, run_id IS NOT NULL AS ran, status FROM rfm.refresh_all();
SELECT segment, customers, pct_customers, revenue, pct_revenue FROM rfm.segment_summary WHERE segmentation = 'tiers' ORDER BY position;
SELECT (SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'tiers')
     = (SELECT count(*) FROM (SELECT customer_id FROM mg_tx WHERE ordered_at >= '2025-01-01' AND ordered_at < '2026-01-01'
                               GROUP BY 1 HAVING sum(amount) >= 100 AND count(*) FILTER (WHERE amount >= 0) > 0) c)
       AS only_customers_with_min_sales;
SELECT name, kind, mode, active, last_as_of, customers FROM rfm.segmentation_catalog ORDER BY name;
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('main', options => '{"scheme": "nope"}')$$);
SELECT options FROM rfm.segmentations WHERE name = 'main';

-- a default tier for customers without sales in the window; "now" as the as_of
SELECT rfm.create_segmentation('june', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
    '{"as_of": "2025-06-30 23:59:59+00", "period": "1 month", "default_tier": "C"}', 'abc') > 0;
SELECT rfm.refresh('june') IS NOT NULL AS refreshed;
SELECT segment, count(*) AS customers, count(*) FILTER (WHERE frequency = 0) AS without_sales
FROM rfm.customer_segments WHERE segmentation = 'june' GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE frequency = 0)
     = (SELECT count(DISTINCT customer_id) FROM mg_tx WHERE ordered_at <= '2025-06-30 23:59:59+00')
       - (SELECT count(DISTINCT customer_id) FROM mg_tx
        WHERE amount >= 0 AND ordered_at > '2025-05-30 23:59:59+00' AND ordered_at <= '2025-06-30 23:59:59+00')
       AS default_tier_for_everyone_else
FROM rfm.customer_segments WHERE segmentation = 'june';
SELECT rfm.create_segmentation('rolling', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
    '{"as_of": "now", "period": "100 years"}') > 0;
SELECT rfm.refresh('rolling') IS NOT NULL AS refreshed;
SELECT as_of BETWEEN now() - interval '1 hour' AND now() AS as_of_is_now, active_customers
FROM rfm.kpi_overview WHERE segmentation = 'rolling';
SELECT rfm.drop_segmentation('june'), rfm.drop_segmentation('rolling');

-- pg_cron is not installed here: a clear error
SELECT rfm_test.error_of($$SELECT rfm.schedule_refresh('main', '0 3 * * *')$$);

-- segment performance: computed by a refresh of a segmentation with option performance
-- (never at query time), the revenue of each segment's customers this month, last month
-- and this year, against plain SQL over the source
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance('main')$$);
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('main', options => '{"performance": "yes"}')$$);
SELECT rfm.alter_segmentation('main', options => '{"as_of": "2025-12-31 23:59:59+00", "performance": true}');
SELECT rfm.refresh('main') AS perf_run \gset
WITH per AS (
    SELECT customer_id::text AS customer_key,
           sum(amount) FILTER (WHERE ordered_at >= '2025-12-01' AND ordered_at < '2026-01-01') AS this_month,
           sum(amount) FILTER (WHERE ordered_at >= '2025-11-01' AND ordered_at < '2025-12-01') AS last_month,
           sum(amount) FILTER (WHERE ordered_at >= '2025-01-01' AND ordered_at < '2026-01-01') AS ytd
    FROM mg_tx GROUP BY 1),
ref AS (
    SELECT c.segment, count(*) AS customers, coalesce(sum(p.this_month), 0) AS this_month,
           coalesce(sum(p.last_month), 0) AS last_month, coalesce(sum(p.ytd), 0) AS ytd
    FROM rfm.customer_segments c LEFT JOIN per p USING (customer_key)
    WHERE c.segmentation = 'main' GROUP BY 1)
SELECT f.segment, f.customers, f.revenue_this_month, f.revenue_last_month, f.pct_change, f.revenue_ytd,
       f.pct_of_total_ytd,
       (f.customers, f.revenue_this_month, f.revenue_last_month, f.revenue_ytd)
       = (coalesce(r.customers, 0), coalesce(r.this_month, 0), coalesce(r.last_month, 0), coalesce(r.ytd, 0))
       AS matches_plain_sql
FROM rfm.segment_performance('main') WITH ORDINALITY f
LEFT JOIN ref r USING (segment) ORDER BY f.ordinality;
SELECT round(sum(pct_of_total_ytd)) AS pct_adds_up_to_100 FROM rfm.segment_performance('main');
-- what is shown was stored by the refresh: new orders and a new override do not change it
-- until the next refresh, which stores a report of its own
INSERT INTO mg_tx VALUES (1, 'north', '2025-12-30', 1000, 'x', true);
SELECT rfm.set_override('main', '2', 'Lost', 'performance test');
SELECT sum(revenue_this_month) AS stored_this_month FROM rfm.segment_performance('main', :perf_run);
SELECT rfm.refresh('main') > :perf_run AS refreshed_again;
SELECT (SELECT sum(revenue_this_month) FROM rfm.segment_performance('main'))
     - (SELECT sum(revenue_this_month) FROM rfm.segment_performance('main', :perf_run)) AS new_run_has_the_new_order,
       (SELECT customers FROM rfm.segment_performance('main') WHERE segment = 'Lost')
     - (SELECT customers FROM rfm.segment_performance('main', :perf_run) WHERE segment = 'Lost') AS override_counted;
SELECT rfm.clear_override('main', '2');
DELETE FROM mg_tx WHERE amount = 1000 AND ordered_at = '2025-12-30';
SELECT rfm.refresh('main') IS NOT NULL AS refreshed_without_it;
SELECT (SELECT count(*) FROM rfm.segment_performance_latest WHERE segmentation = 'main') AS view_rows,
       (SELECT count(DISTINCT run_id) FROM rfm.segment_performance_runs WHERE segmentation = 'main') AS runs_with_report,
       (SELECT count(*) FROM (
           (SELECT segment, customers, revenue_this_month, revenue_last_month, pct_change, revenue_ytd, pct_of_total_ytd
            FROM rfm.segment_performance_latest WHERE segmentation = 'main'
            EXCEPT SELECT * FROM rfm.segment_performance('main'))
           UNION ALL
           (SELECT * FROM rfm.segment_performance('main')
            EXCEPT SELECT segment, customers, revenue_this_month, revenue_last_month, pct_change, revenue_ytd, pct_of_total_ytd
            FROM rfm.segment_performance_latest WHERE segmentation = 'main')) d) AS rows_differing_from_the_function;
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance('nope')$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance('main', -1)$$);
SELECT rfm_test.error_of($$SELECT * FROM rfm.segment_performance(NULL)$$);
-- like periods: as of the 7th, the 1st to the 7th of this month against the 1st to the
-- 7th of the month before (before: the whole month before, about -76 % on the 7th), and no
-- change in percent where the month before is not positive
SELECT rfm.alter_segmentation('main', options => '{"as_of": "2025-12-07 23:59:59+00", "performance": true}');
SELECT rfm.refresh('main') IS NOT NULL AS refreshed_on_the_7th;
WITH per AS (
    SELECT customer_id::text AS customer_key,
           sum(amount) FILTER (WHERE ordered_at >= '2025-12-01' AND ordered_at < '2025-12-08') AS this_month,
           sum(amount) FILTER (WHERE ordered_at >= '2025-11-01' AND ordered_at < '2025-11-08') AS last_month,
           sum(amount) FILTER (WHERE ordered_at >= '2025-01-01' AND ordered_at < '2025-12-08') AS ytd
    FROM mg_tx GROUP BY 1),
ref AS (
    SELECT c.segment, count(*) AS customers, coalesce(sum(p.this_month), 0) AS this_month,
           coalesce(sum(p.last_month), 0) AS last_month, coalesce(sum(p.ytd), 0) AS ytd
    FROM rfm.customer_segments c LEFT JOIN per p USING (customer_key)
    WHERE c.segmentation = 'main' GROUP BY 1)
SELECT count(*) AS segments,
       count(*) FILTER (WHERE (f.customers, f.revenue_this_month, f.revenue_last_month, f.revenue_ytd)
                              = (coalesce(r.customers, 0), coalesce(r.this_month, 0), coalesce(r.last_month, 0),
                                 coalesce(r.ytd, 0))) AS matching_plain_sql,
       sum(f.revenue_this_month) AS first_week, sum(f.revenue_last_month) AS first_week_before,
       bool_and((f.revenue_last_month > 0) = (f.pct_change IS NOT NULL)) AS change_only_from_a_positive_base
FROM rfm.segment_performance('main') f LEFT JOIN ref r USING (segment);
SELECT rfm.alter_segmentation('main', options => '{"as_of": "2025-12-31 23:59:59+00"}');
SELECT rfm.refresh('main') IS NOT NULL AS refreshed_back_to_the_31st;

-- a scheme of population all (lifecycle) assigns every customer with a row up to as_of:
-- the catalog, the KPI view, the trend, the assignment and the history count the same
-- customers (before: the catalog and kpi_overview counted only the active ones)
SELECT rfm.create_segmentation('stages', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-06-30 23:59:59+00", "period": "1 month", "scheme": "lifecycle"}') > 0 AS created;
SELECT rfm.refresh('stages') IS NOT NULL AS refreshed;
SELECT (SELECT customers FROM rfm.segmentation_catalog WHERE name = 'stages') AS catalog,
       (SELECT active_customers FROM rfm.kpi_overview WHERE segmentation = 'stages') AS kpi,
       (SELECT sum(customers) FROM rfm.segment_trend WHERE segmentation = 'stages') AS trend,
       (SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'stages') AS assigned,
       (SELECT count(*) FROM rfm.customer_movement WHERE segmentation = 'stages') AS history,
       (SELECT count(DISTINCT customer_id) FROM mg_tx WHERE ordered_at <= '2025-06-30 23:59:59+00') AS with_a_row;
SELECT rfm.drop_segmentation('stages');

-- grid views agree with rfm.grid, for 5 buckets and for a scheme-less 10-bucket segmentation
SELECT rfm.create_segmentation('deciles', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00", "buckets": 10, "scheme": null}') > 0;
SELECT rfm.refresh('deciles') IS NOT NULL AS refreshed;
SELECT s.name AS segmentation,
       (SELECT count(*) FROM rfm.segment_grid g WHERE g.segmentation = s.name) AS view_cells,
       (SELECT count(*) FROM rfm.grid((SELECT rfm.analyze(customer_id, ordered_at, amount, rfm._analyze_options(s)) FROM mg_tx))) AS function_cells,
       (SELECT count(*) FROM (SELECT r, fm, segment, customers, revenue FROM rfm.segment_grid g WHERE g.segmentation = s.name
                              EXCEPT SELECT * FROM rfm.grid((SELECT rfm.analyze(customer_id, ordered_at, amount, rfm._analyze_options(s)) FROM mg_tx)))
                             d) AS differences
FROM rfm.segmentations s WHERE s.name IN ('main', 'deciles') ORDER BY 1;
SELECT rfm.drop_segmentation('deciles');
-- ABC defaults come from one place: four shares without names get tiers A to D
SELECT rfm.create_segmentation('quad', 'mg_tx', 'customer_id', 'ordered_at', 'amount',
    '{"as_of": "2025-12-31 23:59:59+00", "abc_shares": [0.5, 0.3, 0.15, 0.05]}', 'abc') > 0;
SELECT rfm.refresh('quad') IS NOT NULL AS refreshed;
SELECT segment, customers FROM rfm.segment_summary WHERE segmentation = 'quad' ORDER BY position;
SELECT rfm.drop_segmentation('quad');
-- NULL arguments name the argument
SELECT rfm_test.error_of($$SELECT rfm.refresh(NULL)$$);
SELECT rfm_test.error_of($$SELECT rfm.set_override('main', NULL, 'Loyal')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', NULL, 'customer_id', 'ordered_at', 'amount')$$);
SELECT rfm_test.error_of($$SELECT rfm.refresh('main', NULL)$$);
-- numbers out of range in options name the key
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('x', 'mg_tx', 'customer_id', 'ordered_at', 'amount', '{"buckets": 1e400}')$$);
-- roles, readers, row-level security and hostile roles: security.sql

-- dropping a segmentation removes its runs, assignment, overrides and history
SELECT rfm.set_override('frozen', '7', 'Loyal');
SELECT id AS frozen_id FROM rfm.segmentations WHERE name = 'frozen' \gset
SELECT rfm.drop_segmentation('frozen');
SELECT (SELECT count(*) FROM rfm.segmentations WHERE name = 'frozen') AS definitions,
       (SELECT count(*) FROM rfm.runs WHERE segmentation_id = :frozen_id) AS runs,
       (SELECT count(*) FROM rfm.assignment WHERE segmentation_id = :frozen_id) AS assignment,
       (SELECT count(*) FROM rfm.overrides WHERE segmentation_id = :frozen_id) AS overrides,
       (SELECT count(*) FROM rfm.history WHERE segmentation_id = :frozen_id) AS history;
SELECT rfm_test.error_of($$SELECT rfm.drop_segmentation('frozen')$$);
SELECT rfm.drop_segmentation(name) FROM rfm.segmentations;
DROP TABLE mg_tx, mg_before, mg_after;
