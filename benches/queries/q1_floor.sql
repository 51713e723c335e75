-- (1) Floor: the cheapest possible pass over the 12-month window (a full scan + count).
SELECT count(*)
FROM bench.tx
WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
    AND ordered_at <= timestamptz '2025-12-31 23:59:59+00';
