-- A refresh does not depend on who runs it (SPEC §11): a segmentation keeps its creator's
-- time zone (or its option time_zone) and every refresh reads its day boundaries in it.
-- Before: the same segmentation with a fixed as_of, refreshed from a UTC session and then
-- from a New York session, moved customers and back, and wrote both moves to history.
SET TimeZone = 'UTC';
CREATE TABLE tz_tx AS
SELECT 1 + (g * 7919) % 400 AS customer_id,
       timestamptz '2025-12-31' - ((g * 104729) % 300) * interval '1 day' + ((g * 37) % 24) * interval '1 hour'
           AS ordered_at,
       round((5 + (g * 31) % 300)::numeric / 3, 2) AS amount
FROM generate_series(1, 6000) g;
SELECT rfm.create_segmentation('tz_utc', 'tz_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31"}') > 0 AS created;
SET TimeZone = 'America/New_York';
SELECT rfm.create_segmentation('tz_ny', 'tz_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31"}') > 0 AS created;
SELECT rfm.create_segmentation('tz_tokyo', 'tz_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31", "time_zone": "Asia/Tokyo", "performance": true}') > 0 AS created;
SELECT name, options ->> 'time_zone' AS time_zone FROM rfm.segmentation_catalog WHERE name LIKE 'tz\_%' ORDER BY 1;

-- every segmentation refreshed from three sessions' time zones: after the first refresh
-- (every customer enters), nobody moves
SET TimeZone = 'UTC';
SELECT count(rfm.refresh(n)) AS refreshed FROM unnest(ARRAY['tz_utc', 'tz_ny', 'tz_tokyo']) n;
SET TimeZone = 'America/New_York';
SELECT count(rfm.refresh(n)) AS refreshed FROM unnest(ARRAY['tz_utc', 'tz_ny', 'tz_tokyo']) n;
SET TimeZone = 'Asia/Tokyo';
SELECT count(rfm.refresh(n)) AS refreshed FROM unnest(ARRAY['tz_utc', 'tz_ny', 'tz_tokyo']) n;
RESET TimeZone;
SELECT s.name, array_agg(r.changed > 0 ORDER BY r.id) AS customers_moved_per_refresh,
       count(DISTINCT r.as_of) AS distinct_as_of
FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id
WHERE s.name LIKE 'tz\_%' GROUP BY 1 ORDER BY 1;
SELECT s.name, count(*) AS history_rows, count(*) FILTER (WHERE h.from_segment IS NOT NULL) AS moves
FROM rfm.history h JOIN rfm.segmentations s ON s.id = h.segmentation_id
WHERE s.name LIKE 'tz\_%' GROUP BY 1 ORDER BY 1;
-- the zones do matter: a purchase before 05:00 UTC is on the day before in New York
SELECT count(*) > 0 AS some_recency_days_differ_between_utc_and_new_york
FROM rfm.customer_segments a JOIN rfm.customer_segments b USING (customer_key)
WHERE a.segmentation = 'tz_utc' AND b.segmentation = 'tz_ny' AND a.recency_days IS DISTINCT FROM b.recency_days;
-- each is what rfm.analyze says in a session of its zone
SET TimeZone = 'America/New_York';
SELECT (SELECT string_agg(segment || '=' || customers, ', ') FROM rfm.summary(
            (SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM tz_tx)))
     = (SELECT string_agg(segment || '=' || automatic_customers, ', ' ORDER BY position) FROM rfm.segment_summary
        WHERE segmentation = 'tz_ny') AS new_york_equals_an_analysis_in_new_york;
SET TimeZone = 'Asia/Tokyo';
SELECT (SELECT string_agg(segment || '=' || customers, ', ') FROM rfm.summary(
            (SELECT rfm.analyze(customer_id, ordered_at, amount, '{"as_of": "2025-12-31"}') FROM tz_tx)))
     = (SELECT string_agg(segment || '=' || automatic_customers, ', ' ORDER BY position) FROM rfm.segment_summary
        WHERE segmentation = 'tz_tokyo') AS tokyo_equals_an_analysis_in_tokyo;
-- the performance report's months are Tokyo's too
WITH per AS (
    SELECT customer_id::text AS customer_key,
           sum(amount) FILTER (WHERE ordered_at >= '2025-12-01' AND ordered_at < '2026-01-01') AS this_month
    FROM tz_tx GROUP BY 1)
SELECT (SELECT sum(revenue_this_month) FROM rfm.segment_performance('tz_tokyo'))
     = (SELECT sum(p.this_month) FROM rfm.customer_segments c JOIN per p USING (customer_key)
        WHERE c.segmentation = 'tz_tokyo') AS tokyo_december;
RESET TimeZone;
-- altering the options without a time zone keeps the stored one; a bad zone is 22023
SELECT rfm.alter_segmentation('tz_ny', options => '{"as_of": "2025-12-30"}');
SELECT options ->> 'time_zone' AS kept FROM rfm.segmentation_catalog WHERE name = 'tz_ny';
SELECT rfm_test.error_of($$SELECT rfm.create_segmentation('tz_bad', 'tz_tx', 'customer_id', 'ordered_at', 'amount', '{"time_zone": "Mars/Olympus_Mons"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('tz_ny', options => '{"time_zone": 5}')$$);
-- one checker with rfm.analyze: an abbreviation that AT TIME ZONE knows but the TimeZone
-- setting does not is refused when the segmentation is defined, not at its first refresh
SELECT rfm_test.error_of($$SELECT rfm.alter_segmentation('tz_ny', options => '{"time_zone": "PST"}')$$);
SELECT rfm_test.error_of($$SELECT rfm.check_options('{"time_zone": "PST"}')$$);
SELECT rfm.drop_segmentation(n) FROM unnest(ARRAY['tz_utc', 'tz_ny', 'tz_tokyo']) n;
DROP TABLE tz_tx;
