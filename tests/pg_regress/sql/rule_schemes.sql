-- Customer metrics, rule-based schemes and lifecycle stages (SPEC §9, §10)
SET TimeZone = 'UTC';

-- 1. The metrics of rfm.customers against plain SQL over the same rows: purchases and
-- returns in the window, lifetime figures over every row at or before as_of
CREATE TABLE rs_tx (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO rs_tx
SELECT 1 + (g * 7919) % 900,
       timestamptz '2025-12-31 12:00' - ((g * 104729) % 1100) * interval '1 day' - (g % 24) * interval '1 hour',
       CASE WHEN g % 11 = 0 THEN -round((g % 97)::numeric / 2, 2) ELSE round((5 + (g * 31) % 900)::numeric / 3, 2) END
FROM generate_series(1, 6000) g;
-- rows after as_of are not part of the analysis
INSERT INTO rs_tx SELECT c, '2026-01-05', 1000 FROM generate_series(1, 900, 7) c;
CREATE TABLE rs_expected AS
SELECT customer_id::text AS customer_key,
       count(*) FILTER (WHERE w AND amount >= 0) AS frequency,
       coalesce(sum(amount) FILTER (WHERE w), 0) AS monetary,
       avg(amount) FILTER (WHERE w AND amount >= 0) AS aov,
       count(*) FILTER (WHERE w AND amount < 0) AS returns,
       coalesce(-sum(amount) FILTER (WHERE w AND amount < 0), 0) AS return_amount,
       coalesce(-sum(amount) FILTER (WHERE w AND amount < 0), 0)
         / nullif(sum(amount) FILTER (WHERE w AND amount >= 0), 0) AS return_rate,
       min(ordered_at) FILTER (WHERE amount >= 0) AS first_purchase_at,
       max(ordered_at) FILTER (WHERE amount >= 0) AS last_purchase_at,
       date '2025-12-31' - min(ordered_at) FILTER (WHERE amount >= 0)::date AS tenure_days,
       date '2025-12-31' - max(ordered_at) FILTER (WHERE amount >= 0)::date AS days_since_last,
       count(*) FILTER (WHERE amount >= 0) AS lifetime_orders,
       sum(amount) AS lifetime_value
FROM (SELECT *, ordered_at > timestamptz '2025-12-31 12:00' - interval '12 months' AS w
      FROM rs_tx WHERE ordered_at <= '2025-12-31 12:00') t
GROUP BY customer_id;
CREATE TABLE rs_metrics AS
SELECT * FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "metrics": true}') FROM rs_tx));
-- every active customer, and no difference in any metric
SELECT count(*) AS customers,
       count(*) FILTER (WHERE m.customer_key IS NULL) AS missing,
       count(*) FILTER (WHERE (m.frequency, m.monetary, m.aov, m.returns, m.return_amount,
                               m.first_purchase_at, m.last_purchase_at, m.tenure_days,
                               m.days_since_last, m.lifetime_orders, m.lifetime_value)
                        IS DISTINCT FROM (e.frequency, e.monetary, e.aov, e.returns, e.return_amount,
                               e.first_purchase_at, e.last_purchase_at, e.tenure_days,
                               e.days_since_last, e.lifetime_orders, e.lifetime_value)) AS differences,
       count(*) FILTER (WHERE abs(m.return_rate - coalesce(e.return_rate, 0)::float8) > 1e-12) AS rate_differences,
       count(*) FILTER (WHERE m.days_since_last IS DISTINCT FROM m.recency_days) AS recency_differs,
       bool_and(m.active) AS all_active
FROM rs_expected e LEFT JOIN rs_metrics m USING (customer_key)
WHERE e.frequency > 0;
SELECT count(*) AS extra_rows FROM rs_metrics m WHERE NOT EXISTS (
    SELECT 1 FROM rs_expected e WHERE e.customer_key = m.customer_key AND e.frequency > 0);
-- the plain analysis leaves the full metrics NULL and keeps days_since_last = recency_days
SELECT count(*) AS customers, count(aov) AS aov, count(lifetime_value) AS lifetime_value,
       count(*) FILTER (WHERE days_since_last = recency_days) AS days_since_last_known
FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 12:00+00"}') FROM rs_tx));
-- the same metrics with double precision amounts and text keys (within float rounding)
SELECT count(*) AS customers,
       count(*) FILTER (WHERE abs(m.lifetime_value - e.lifetime_value) > 1e-6
                          OR abs(m.aov - e.aov) > 1e-6
                          OR (m.tenure_days, m.lifetime_orders) IS DISTINCT FROM (e.tenure_days, e.lifetime_orders)) AS differences
FROM rs_expected e JOIN rfm.customers((SELECT rfm.analyze('c' || customer_id, ordered_at, amount::float8,
    '{"as_of": "2025-12-31 12:00+00", "metrics": true}') FROM rs_tx)) m ON m.customer_key = 'c' || e.customer_key;

-- 2. Lifecycle stages (SPEC §10): each rule a day (or a cent, or an order) either side of
-- its boundary. as_of is 2025-12-31 12:00 UTC.
CREATE TABLE lc_tx (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2), why text);
INSERT INTO lc_tx VALUES
 (1,  timestamptz '2025-12-31 12:00' - interval '730 days', 50, 'days_since_last 730'),
 (2,  timestamptz '2025-12-31 12:00' - interval '731 days', 50, 'days_since_last 731'),
 (3,  timestamptz '2025-12-31 12:00' - interval '365 days', 50, 'days_since_last 365, tenure 365'),
 (4,  timestamptz '2025-12-31 12:00' - interval '366 days', 50, 'days_since_last 366'),
 (11, timestamptz '2025-12-31 12:00' - interval '90 days', 50, 'one order, tenure 90'),
 (12, timestamptz '2025-12-31 12:00' - interval '91 days', 50, 'one order, tenure 91');
-- four orders, the latest 180 / 181 days ago
INSERT INTO lc_tx SELECT 5, timestamptz '2025-12-31 12:00' - (180 + 10 * i) * interval '1 day', 10, 'four orders, latest 180 days ago' FROM generate_series(0, 3) i;
INSERT INTO lc_tx SELECT 6, timestamptz '2025-12-31 12:00' - (181 + 10 * i) * interval '1 day', 10, 'four orders, latest 181 days ago' FROM generate_series(0, 3) i;
-- four orders in the window worth 2000.00 / 1999.99 in all
INSERT INTO lc_tx SELECT 7, timestamptz '2025-12-31 12:00' - (5 + i) * interval '1 day', 500, 'frequency 4, lifetime value 2000.00' FROM generate_series(0, 3) i;
INSERT INTO lc_tx SELECT 8, timestamptz '2025-12-31 12:00' - (5 + i) * interval '1 day', CASE WHEN i = 0 THEN 499.99 ELSE 500 END, 'frequency 4, lifetime value 1999.99' FROM generate_series(0, 3) i;
-- three orders in the window worth 6000, and a fourth before it
INSERT INTO lc_tx SELECT 9, timestamptz '2025-12-31 12:00' - (5 + i) * interval '1 day', 2000, 'frequency 3, lifetime orders 3' FROM generate_series(0, 2) i;
INSERT INTO lc_tx SELECT 13, timestamptz '2025-12-31 12:00' - (5 + i) * interval '1 day', 2000, 'frequency 3, lifetime orders 4' FROM generate_series(0, 2) i;
INSERT INTO lc_tx VALUES (13, '2023-01-01', 10, 'frequency 3, lifetime orders 4');
-- two orders; and a customer with only a return (not in the population)
INSERT INTO lc_tx SELECT 10, timestamptz '2025-12-31 12:00' - (100 + i) * interval '1 day', 10, 'two orders' FROM generate_series(0, 1) i;
INSERT INTO lc_tx VALUES (14, '2025-12-01', -20, 'a return only');
SELECT c.customer_key, c.segment AS stage, c.active, c.frequency, c.days_since_last, c.tenure_days,
       c.lifetime_orders, c.lifetime_value, c.r IS NULL AS no_scores,
       (SELECT min(why) FROM lc_tx t WHERE t.customer_id::text = c.customer_key) AS why
FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "lifecycle"}') FROM lc_tx)) c
ORDER BY c.customer_key::int;
-- every stage in order, empty ones included; the return-only customer is excluded
SELECT segment, customers FROM rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "lifecycle"}') FROM lc_tx));
SELECT active_customers, excluded_customers FROM rfm.overview((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "lifecycle"}') FROM lc_tx));
-- on the larger data set the stages equal the SPEC's table written as a CASE over plain SQL
SELECT count(*) AS customers,
       count(*) FILTER (WHERE c.segment IS DISTINCT FROM
         CASE WHEN e.days_since_last > 730 THEN 'Churned'
              WHEN e.days_since_last > 365 THEN 'Lapsed'
              WHEN e.lifetime_value >= 2000 AND e.frequency >= 4 THEN 'VIP'
              WHEN e.lifetime_orders >= 4 AND e.days_since_last > 180 THEN 'At-Risk'
              WHEN e.lifetime_orders >= 4 THEN 'Loyal'
              WHEN e.lifetime_orders >= 2 THEN 'Repeat Buyer'
              WHEN e.tenure_days <= 90 THEN 'First-Time Buyer'
              ELSE 'One-Time Buyer' END) AS differences
FROM rs_expected e
JOIN rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "lifecycle"}') FROM rs_tx)) c USING (customer_key)
WHERE e.lifetime_orders > 0;
SELECT count(*) AS population_all FROM rs_expected WHERE lifetime_orders > 0;

-- 3. Schemes as data
-- any scheme as a document, built-in ones included; a copy of one segments the same way
SELECT jsonb_array_length(rfm.scheme_definition('standard') -> 'segments') AS standard_segments,
       rfm.scheme_definition('lifecycle') ->> 'population' AS lifecycle_population,
       rfm.scheme_definition('lifecycle') -> 'segments' -> 0 AS lifecycle_first_rule;
SELECT rfm.create_scheme('my_standard', rfm.scheme_definition('standard')) ? 'segments' AS saved;
SELECT rfm.create_scheme('my_codes', rfm.scheme_definition('codes')) ? 'segments' AS saved;
SELECT count(*) AS cells,
       count(*) FILTER (WHERE rfm.segment(r, f, m, 'my_standard') <> rfm.segment(r, f, m, 'standard')) AS standard_differs,
       count(*) FILTER (WHERE rfm.segment(r, f, m, 'my_codes') <> rfm.segment(r, f, m, 'codes')) AS codes_differs
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m;
SELECT count(*) AS customers, count(*) FILTER (WHERE a.segment <> b.segment) AS differences
FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 12:00+00"}') FROM rs_tx)) a
JOIN rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 12:00+00", "scheme": "my_standard"}') FROM rs_tx)) b
USING (customer_key);

-- a user's scheme over metrics: every segment in order in rfm.summary, empty ones too
SELECT rfm.create_scheme('value_tiers', $${
  "description": "By lifetime value and returns",
  "population": "all",
  "segments": [
    {"name": "Big spenders", "when": {"lifetime_value": {">=": 1500}, "return_rate": {"<": 0.05}},
     "description": "High lifetime value, few returns", "actions": ["thank them"], "visit_every_days": 30, "priority": 1},
    {"name": "Returners", "when": {"return_rate": {">=": 0.05}}, "priority": 2},
    {"name": "Gone", "when": {"active": false}},
    {"name": "Never matches", "when": {"all": [{"lifetime_orders": {"between": [1, 1]}}, {"aov": {">": 1e9}}]}}
  ],
  "default": "Everyone else"
}$$) -> 'segments' -> 0 ->> 'name' AS first_segment;
SELECT segment, customers FROM rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "value_tiers"}') FROM rs_tx));
-- the same assignment written as a CASE over plain SQL
SELECT count(*) AS customers,
       count(*) FILTER (WHERE c.segment IS DISTINCT FROM
         CASE WHEN e.lifetime_value >= 1500 AND coalesce(e.return_rate, 0) < 0.05 THEN 'Big spenders'
              WHEN coalesce(e.return_rate, 0) >= 0.05 THEN 'Returners'
              WHEN e.frequency = 0 THEN 'Gone'
              ELSE 'Everyone else' END) AS differences
FROM rs_expected e
JOIN rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "value_tiers"}') FROM rs_tx)) c USING (customer_key);
SELECT scheme, origin, owner, population, position, segment, rule, description, actions, visit_every_days, priority
FROM rfm.schemes WHERE scheme = 'value_tiers' ORDER BY position;
-- rfm.segment takes a saved scheme of scores only, and refuses one over other metrics
SELECT rfm.create_scheme('two_way', '{"segments": [{"name": "Recent", "when": {"r": {">=": 4}}}], "default": "Older"}') IS NOT NULL AS saved;
SELECT rfm.segment(5, 1, 1, 'two_way') AS r5, rfm.segment(3, 5, 5, 'two_way') AS r3;
SELECT rfm_test.error_of($$SELECT rfm.segment(5, 1, 1, 'value_tiers')$$);
SELECT rfm_test.error_of($$SELECT rfm.segment(6, 1, 1, 'two_way')$$);

-- validation: each error names the segment and the condition, with its SQLSTATE
SELECT rfm_test.error_of(format('SELECT rfm.create_scheme(%L, %L)', n, d)) AS error
FROM (VALUES
  ('bad1', '{"segments": [{"name": "A", "when": {"colour": {"=": 1}}}], "default": "B"}'),
  ('bad2', '{"segments": [{"name": "A", "when": {"aov": {"~": 1}}}], "default": "B"}'),
  ('bad3', '{"segments": [{"name": "A", "when": {"aov": {">": "lots"}}}], "default": "B"}'),
  ('bad4', '{"segments": [{"name": "A", "when": {"r": {">=": 6}}}], "default": "B"}'),
  ('bad5', '{"segments": [{"name": "A", "when": {"r": {">=": 1}}}, {"name": "B", "when": {"r": 5}}]}'),
  ('bad6', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}, {"name": "A", "when": {"aov": {">": 2}}}], "default": "B"}'),
  ('bad7', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}]}'),
  ('bad8', '{"segments": [{"name": "A", "when": {"first_purchase_at": {">": 1}}}], "default": "B"}'),
  ('bad9', '{"segments": [{"name": "A", "when": {"frequency": {"between": [5, 1]}}}], "default": "B"}'),
  ('bad10', '{"segments": [{"name": "A", "when": {"r": {">=": 1}}}], "default": "B"}'),
  ('bad11', '{"segments": [], "default": "B"}'),
  ('bad12', '{"segments": [{"name": "A", "when": {"rfm_code": ["5?6"]}}], "default": "B"}'),
  ('bad13', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}], "default": "B", "colour": "red"}'),
  ('bad14', '{"population": "everybody", "segments": [{"name": "A", "when": {"aov": {">": 1}}}], "default": "B"}'),
  ('standard', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}], "default": "B"}'),
  ('lifecycle', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}], "default": "B"}'),
  ('value_tiers', '{"segments": [{"name": "A", "when": {"aov": {">": 1}}}], "default": "B"}')
) v(n, d);
SELECT count(*) AS bad_schemes_saved FROM rfm.schemes WHERE scheme LIKE 'bad%';
SELECT rfm_test.error_of($$SELECT rfm.drop_scheme('standard')$$);
SELECT rfm_test.error_of($$SELECT rfm.drop_scheme('no_such_scheme')$$);
SELECT rfm_test.error_of($$SELECT rfm.scheme_definition('no_such_scheme')$$);
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"scheme": "no_such_scheme"}') FROM rs_tx$$);
-- lifecycle reads no scores, so it works with any bucket count; score schemes need 5
SELECT count(*) AS customers FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "lifecycle", "buckets": 3}') FROM rs_tx)) WHERE r > 3;
SELECT rfm_test.error_of($$SELECT rfm.analyze(customer_id, ordered_at, amount, '{"scheme": "two_way", "buckets": 3}') FROM rs_tx$$);

-- replacing: only with replace => true, only by the owner's roles
SELECT rfm.create_scheme('two_way', '{"segments": [{"name": "Recent", "when": {"r": {">=": 3}}}], "default": "Older"}', replace => true) IS NOT NULL AS replaced;
SELECT rfm.segment(3, 5, 5, 'two_way') AS r3_after_replace;
CREATE ROLE rs_alice LOGIN IN ROLE rfm_admin;
CREATE ROLE rs_bob LOGIN IN ROLE rfm_admin;
CREATE ROLE rs_nobody LOGIN;
SET ROLE rs_alice;
SELECT rfm.create_scheme('alices', '{"segments": [{"name": "Recent", "when": {"r": {">=": 4}}}], "default": "Older"}') IS NOT NULL AS saved_by_alice;
SET ROLE rs_bob;
SELECT rfm_test.error_of($$SELECT rfm.create_scheme('alices', '{"segments": [{"name": "X", "when": {"r": 5}}], "default": "Y"}', replace => true)$$);
SELECT rfm_test.error_of($$SELECT rfm.drop_scheme('alices')$$);
SELECT rfm.segment(4, 1, 1, 'alices') AS bob_may_use_it;
SET ROLE rs_nobody;
SELECT rfm_test.error_of($$SELECT rfm.create_scheme('mine', '{"segments": [{"name": "X", "when": {"r": 5}}], "default": "Y"}')$$);
SELECT rfm_test.error_of($$INSERT INTO rfm.user_schemes VALUES ('sneaky', '{}', 'rs_nobody')$$);
SELECT rfm_test.error_of($$UPDATE rfm.user_schemes SET definition = '{}'$$);
SELECT count(*) > 0 AS nobody_can_list_schemes FROM rfm.schemes WHERE scheme = 'alices';
RESET ROLE;
SELECT scheme, owner FROM rfm.schemes WHERE scheme = 'alices' AND position = 1;
SET ROLE rs_alice;
SELECT rfm.drop_scheme('alices');
RESET ROLE;
SELECT count(*) AS alices_left FROM rfm.schemes WHERE scheme = 'alices';

-- 4. A managed lifecycle segmentation records every stage transition
CREATE TABLE lc_shop (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO lc_shop VALUES
  (1, '2025-06-01', 30),                        -- First-Time Buyer in June, One-Time Buyer later
  (2, '2025-07-01', 40), (2, '2025-06-20', 40), -- Repeat Buyer, then Loyal after two more orders
  (3, '2024-01-10', 25),                        -- Lapsed, then Churned
  (4, '2025-05-01', 600), (4, '2025-05-02', 600), (4, '2025-05-03', 600), (4, '2025-05-04', 600), -- VIP both times
  (5, '2025-09-01', 70);                        -- not yet a customer, then One-Time Buyer
SELECT rfm.create_segmentation('stages', 'lc_shop', 'customer_id', 'ordered_at', 'amount',
    '{"scheme": "lifecycle", "as_of": "2025-07-15 12:00+00"}') > 0 AS created;
SELECT rfm.refresh('stages') IS NOT NULL AS refreshed;
SELECT customer_key, segment FROM rfm.customer_segments WHERE segmentation = 'stages' ORDER BY customer_key;
-- scheme in use: changing or dropping it is refused
SELECT rfm.create_scheme('stages_copy', rfm.scheme_definition('lifecycle')) IS NOT NULL AS copied;
SELECT rfm.alter_segmentation('stages', options => '{"scheme": "stages_copy", "as_of": "2025-07-15 12:00+00"}') IS NULL AS altered;
SELECT rfm_test.error_of($$SELECT rfm.drop_scheme('stages_copy')$$);
SELECT rfm_test.error_of($$SELECT rfm.create_scheme('stages_copy', '{"segments": [{"name": "X", "when": {"r": 5}}], "default": "Y"}', replace => true)$$);
-- saving the same document again changes nothing, so it is allowed
SELECT rfm.create_scheme('stages_copy', rfm.scheme_definition('stages_copy'), replace => true) IS NOT NULL AS same_document;
-- half a year later, after new orders
INSERT INTO lc_shop VALUES (2, '2025-12-01', 40), (2, '2025-12-20', 40);
SELECT rfm.alter_segmentation('stages', options => '{"scheme": "stages_copy", "as_of": "2026-01-20 12:00+00"}') IS NULL AS altered;
SELECT rfm.refresh('stages') IS NOT NULL AS refreshed;
-- every customer whose stage changed, and only those, has a history row of the second run
SELECT h.customer_key, h.from_segment, h.to_segment
FROM rfm.history h JOIN rfm.segmentations s ON s.id = h.segmentation_id
WHERE s.name = 'stages' AND h.run_id = (SELECT max(run_id) FROM rfm.history x WHERE x.segmentation_id = s.id)
ORDER BY h.customer_key;
SELECT from_segment, to_segment, customers FROM rfm.segment_movement
WHERE segmentation = 'stages' AND run_id = (SELECT max(run_id) FROM rfm.segment_movement WHERE segmentation = 'stages')
ORDER BY 1, 2;
SELECT segment, customers, description IS NOT NULL AS described, visit_every_days
FROM rfm.segment_summary WHERE segmentation = 'stages' ORDER BY position;
SELECT rfm.drop_segmentation('stages') IS NULL AS dropped;
SELECT rfm.drop_scheme('stages_copy') IS NULL AS dropped_scheme;

DROP TABLE rs_tx, rs_expected, rs_metrics, lc_tx, lc_shop;
SELECT rfm.drop_scheme(s) FROM unnest(ARRAY['my_standard', 'my_codes', 'value_tiers', 'two_way']) s;
DROP ROLE rs_alice, rs_bob, rs_nobody;

-- 5. p_alive and clv in rules (SPEC §12): the models fitted on the analysis' own rows
CREATE TABLE cl_tx (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2));
-- customers as the models see them: each buys at its own rate while alive, then drops out
SELECT setseed(0.42);
CREATE TABLE cl_cust AS
SELECT c, 0.01 + random() * random() * 0.2 AS rate, (random() * 700)::int AS life,
       (random() * 400)::int AS start, 10 + random() * 150 AS spend
FROM generate_series(1, 800) c;
INSERT INTO cl_tx
SELECT c, timestamptz '2024-01-01 10:00' + (start + d) * interval '1 day', round((spend * (0.5 + random()))::numeric, 2)
FROM cl_cust, generate_series(0, 729) d
WHERE start + d <= 729 AND (d = 0 OR (d <= life AND random() < rate));
-- a few heavy buyers who stopped long ago
INSERT INTO cl_tx SELECT 10000 + c, timestamptz '2024-02-01' + d * interval '3 days', 400
FROM generate_series(1, 5) c, generate_series(1, 30) d;
SELECT rfm.create_scheme('churn_watch', $${
  "population": "all",
  "segments": [
    {"name": "Valuable, likely gone", "when": {"lifetime_value": {">=": 1000}, "p_alive": {"<": 0.5}},
     "actions": ["win-back call"], "priority": 1},
    {"name": "Valuable, alive", "when": {"clv": {">=": 500}}},
    {"name": "Likely gone", "when": {"p_alive": {"<": 0.5}}}
  ],
  "default": "Others"
}$$) IS NOT NULL AS saved;
-- the same classification written over rfm.clv_customers of rfm.clv_fit with the same settings
CREATE TABLE cl_model AS SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{"as_of": "2025-12-31 12:00+00"}') AS m FROM cl_tx;
CREATE TABLE cl_pred AS SELECT * FROM rfm.clv_customers((SELECT m FROM cl_model), 52);
SELECT count(*) AS customers,
       count(*) FILTER (WHERE c.segment IS DISTINCT FROM
         CASE WHEN c.lifetime_value >= 1000 AND p.p_alive < 0.5 THEN 'Valuable, likely gone'
              WHEN p.clv >= 500 THEN 'Valuable, alive'
              WHEN p.p_alive < 0.5 THEN 'Likely gone'
              ELSE 'Others' END) AS differences,
       count(*) FILTER (WHERE c.segment = 'Valuable, likely gone') AS likely_gone_valuable
FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "churn_watch"}') FROM cl_tx)) c
JOIN cl_pred p USING (customer_key);
-- the heavy buyers who stopped are the valuable ones likely gone
SELECT customer_key, segment FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "churn_watch"}') FROM cl_tx))
WHERE customer_key::bigint > 10000 ORDER BY 1;
-- other settings: months, two years ahead; serial and parallel agree
SELECT rfm.check_options('{"scheme": "churn_watch", "clv": {"time_unit": "month", "horizon": 24}}') -> 'clv' AS clv_options;
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"clv": {"horizon": -1}}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"clv": {"horizon": 20000}}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"clv": {"horizon": 520, "discount_rate": -0.9}}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"clv": {"unit": "week"}}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"clv": {"time_unit": "year"}}')$$);
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off;
CREATE TABLE cl_par AS SELECT * FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "churn_watch", "clv": {"time_unit": "month", "horizon": 24}}') FROM cl_tx));
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather; RESET parallel_leader_participation;
SELECT count(*) AS customers, count(*) FILTER (WHERE s.segment IS DISTINCT FROM p.segment) AS differences
FROM rfm.customers((SELECT rfm.analyze(customer_id, ordered_at, amount,
    '{"as_of": "2025-12-31 12:00+00", "scheme": "churn_watch", "clv": {"time_unit": "month", "horizon": 24}}') FROM cl_tx)) s
JOIN cl_par p USING (customer_key);
-- a managed segmentation carries them and records moves between the scheme's segments
SELECT rfm.create_segmentation('churn', 'cl_tx', 'customer_id', 'ordered_at', 'amount',
    '{"scheme": "churn_watch", "as_of": "2025-06-30 12:00+00"}') > 0 AS created;
SELECT rfm.refresh('churn') IS NOT NULL AS refreshed;
SELECT rfm.alter_segmentation('churn', options => '{"scheme": "churn_watch", "as_of": "2025-12-31 12:00+00"}') IS NULL AS altered;
SELECT rfm.refresh('churn') IS NOT NULL AS refreshed;
SELECT count(*) FILTER (WHERE from_segment IS NOT NULL AND to_segment IS NOT NULL) > 0 AS moves_recorded,
       count(*) FILTER (WHERE from_segment = 'Valuable, alive' AND to_segment = 'Valuable, likely gone') > 0 AS valuable_customers_slipped
FROM rfm.customer_movement WHERE segmentation = 'churn'
  AND run_id = (SELECT max(run_id) FROM rfm.customer_movement WHERE segmentation = 'churn');
SELECT segment, count(*) AS heavy_buyers FROM rfm.customer_segments
WHERE segmentation = 'churn' AND customer_key::bigint > 10000 GROUP BY 1;
SELECT rfm.drop_segmentation('churn') IS NULL AS dropped;
SELECT rfm.drop_scheme('churn_watch') IS NULL AS dropped_scheme;
DROP TABLE cl_tx, cl_cust, cl_model, cl_pred, cl_par;
