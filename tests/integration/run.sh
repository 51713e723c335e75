#!/usr/bin/env bash
# Integration tests that need more than one session or a preloaded library: NOTIFY
# received by a listening session, concurrent refreshes and reads, and pg_cron
# scheduling, and that docs/reference.md is what its examples print. Installs the extension
# (debug build) and runs against a scratch PostgreSQL 15 cluster owned by the postgres user
# that preloads pg_cron.
# Ends with "N passed, M failed" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=rfm_it
source tests/integration/scratch_cluster.sh

echo "==> installing the extension"
if [ "$(id -u)" = 0 ]; then
  cargo pgrx install --pg-config "$PG_BIN/pg_config" >/dev/null
else
  cargo pgrx install --sudo --pg-config "$PG_BIN/pg_config" >/dev/null
fi

start_scratch_cluster it 55600 -c shared_preload_libraries=pg_cron -c cron.database_name=$DB \
  -c cron.use_background_workers=on -c max_worker_processes=16 -c cron.timezone=UTC

psql_() { "${as_pg[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE $DB"
psql_ -d "$DB" <<'SQL'
CREATE EXTENSION rfm_segmentation;
SET TimeZone = 'UTC';
CREATE TABLE it_tx (customer_id bigint, ordered_at timestamptz, amount numeric(12, 2));
INSERT INTO it_tx
SELECT 1 + (g * 7919) % 5000, timestamptz '2025-12-31' - ((g * 104729) % 400) * interval '1 day',
       round((5 + (g * 31) % 300)::numeric / 3, 2)
FROM generate_series(1::bigint, 100000) g;
SELECT rfm.create_segmentation('main', 'it_tx', 'customer_id', 'ordered_at', 'amount',
                               '{"as_of": "2025-12-31 23:59:59+00"}');
SELECT rfm.refresh('main');
SQL

# from here on a failed condition is counted, not fatal
set +e
passed=0
failed=0
check() { # check NAME CONDITION-EXIT-STATUS
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok   - $1"; else failed=$((failed + 1)); echo "FAIL - $1"; fi
}
q() { psql_ -d "$DB" -At -c "$1"; }

# 1. NOTIFY: a listening session receives one rfm_segment_changed per refresh
(psql_ -d "$DB" -c "LISTEN rfm_segment_changed" -c "SELECT pg_sleep(4)" -c "SELECT 1" >"$work/listen.out" 2>&1) &
listener=$!
sleep 1
q "SELECT rfm.refresh('main')" >/dev/null
wait "$listener"
grep -q 'Asynchronous notification "rfm_segment_changed" with payload "{"segmentation" : "main", "run_id" : 2}"' "$work/listen.out"
check "NOTIFY rfm_segment_changed received by a listening session (segmentation and run only)" $?

# 2. concurrent refreshes serialize; readers see the old or the new result, never a mix
total_before=$(q "SELECT sum(customers) FROM rfm.segment_summary WHERE segmentation = 'main'")
q "INSERT INTO it_tx SELECT 100000 + g, '2025-12-30', 10 FROM generate_series(1, 700) g" >/dev/null
total_after=$((total_before + 700))
reads="$work/reads.txt"
(
  for _ in $(seq 1 40); do
    q "SELECT count(*) || ' ' || count(*) FILTER (WHERE segment IS NULL) FROM rfm.customer_segments WHERE segmentation = 'main'" || echo "ERROR"
  done
) >"$reads" 2>&1 &
reader=$!
(q "SELECT rfm.refresh('main')" >"$work/r1.out" 2>&1; echo $? >"$work/r1.rc") &
r1=$!
(q "SELECT rfm.refresh('main')" >"$work/r2.out" 2>&1; echo $? >"$work/r2.rc") &
r2=$!
wait "$r1" "$r2" "$reader"
[ "$(cat "$work/r1.rc")" = 0 ] && [ "$(cat "$work/r2.rc")" = 0 ]
check "two concurrent refreshes of one segmentation both succeed" $?
[ "$(q "SELECT count(*) FROM rfm.runs WHERE finished_at IS NOT NULL")" = 4 ]
check "both concurrent refreshes are logged as runs" $?
[ "$(q "SELECT count(*) - count(DISTINCT customer_key) FROM rfm.customer_segments")" = 0 ] \
  && [ "$(q "SELECT count(*) FROM rfm.customer_segments")" = "$total_after" ]
check "no duplicate or missing rows after concurrent refreshes ($total_after customers)" $?
bad=$(grep -vcE "^($total_before|$total_after) 0$" "$reads" || true)
[ "$bad" = 0 ] && [ "$(wc -l <"$reads")" = 40 ]
check "40 concurrent reads all saw a whole result ($total_before or $total_after customers)" $?

# 3. one read per refresh: with rows inserted all the time, the run, its figures, the
# assignment and the history of every refresh describe the same data
q "SELECT rfm.create_segmentation('busy', 'it_tx', 'customer_id', 'ordered_at', 'amount', '{\"as_of\": \"2025-12-31 23:59:59+00\"}')" >/dev/null
(
  for i in $(seq 1 60); do
    q "INSERT INTO it_tx SELECT 200000 + ($i * 1000) + g, '2025-12-20', 5 + g % 7 FROM generate_series(1, 500) g" >/dev/null
  done
) &
inserter=$!
for _ in 1 2 3 4 5; do q "SELECT rfm.refresh('busy')" >/dev/null; done
wait "$inserter"
bad_runs=$(q "
  WITH s AS (SELECT id FROM rfm.segmentations WHERE name = 'busy'),
  r AS (SELECT r.* FROM rfm.runs r, s WHERE r.segmentation_id = s.id)
  SELECT count(*) FROM r
  WHERE r.customers IS DISTINCT FROM (SELECT sum(g.customers) FROM rfm.run_segments g WHERE g.run_id = r.id)
     OR r.total_revenue IS DISTINCT FROM (SELECT sum(g.revenue) FROM rfm.run_segments g WHERE g.run_id = r.id)
     OR r.changed IS DISTINCT FROM (SELECT count(*) FROM rfm.history h WHERE h.run_id = r.id)")
latest_ok=$(q "
  SELECT (SELECT count(*) FROM rfm.customer_segments WHERE segmentation = 'busy')
       = (SELECT active_customers FROM rfm.kpi_overview WHERE segmentation = 'busy')
     AND (SELECT sum(monetary) FROM rfm.customer_segments WHERE segmentation = 'busy')
       = (SELECT total_revenue FROM rfm.kpi_overview WHERE segmentation = 'busy')
     AND (SELECT sum(customers) FROM rfm.segment_thresholds WHERE segmentation = 'busy' AND metric = 'monetary')
       = (SELECT active_customers FROM rfm.kpi_overview WHERE segmentation = 'busy')")
replayed=$(q "
  WITH s AS (SELECT id FROM rfm.segmentations WHERE name = 'busy'),
  replay AS (SELECT DISTINCT ON (h.customer_key) h.customer_key, h.to_segment FROM rfm.history h, s
             WHERE h.segmentation_id = s.id ORDER BY h.customer_key, h.run_id DESC)
  SELECT count(*) FROM replay FULL JOIN (SELECT customer_key, automatic_segment FROM rfm.customer_segments
                                         WHERE segmentation = 'busy') c USING (customer_key)
  WHERE replay.to_segment IS DISTINCT FROM c.automatic_segment")
[ "$bad_runs" = 0 ] && [ "$latest_ok" = t ] && [ "$replayed" = 0 ]
check "5 refreshes under concurrent inserts: every run's totals, segments and history agree (bad runs: $bad_runs, latest consistent: $latest_ok, history replay differences: $replayed)" $?

# 4. pg_cron: the helper schedules a job that really refreshes, as the role that scheduled
# it: a superuser's job and an administrator's job (a pg_cron job owner without superuser)
q "CREATE EXTENSION pg_cron" >/dev/null
q "CREATE ROLE it_cron LOGIN IN ROLE rfm_admin; GRANT SELECT ON it_tx TO it_cron" >/dev/null
cq() { psql_ -d "$DB" -At -c "SET ROLE it_cron" -c "$1" | tail -n 1; }
cq "SELECT rfm.create_segmentation('cron_owned', 'public.it_tx', 'customer_id', 'ordered_at', 'amount')" >/dev/null
job=$(q "SELECT rfm.schedule_refresh('main', '* * * * *')")
[ -n "$job" ] && [ "$(q "SELECT command || ' as ' || username FROM cron.job WHERE jobid = $job")" = "SELECT rfm.refresh('main') as postgres" ]
check "rfm.schedule_refresh creates a pg_cron job run as the superuser that scheduled it" $?
job2=$(cq "SELECT rfm.schedule_refresh('cron_owned', '* * * * *')")
[ -n "$job2" ] && [ "$(q "SELECT command || ' as ' || username FROM cron.job WHERE jobid = $job2")" = "SELECT rfm.refresh('cron_owned') as it_cron" ]
check "an administrator's rfm.schedule_refresh creates a job run as that administrator" $?
runs_before=$(q "SELECT count(*) FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id WHERE s.name = 'main'")
for _ in $(seq 1 80); do
  [ "$(q "SELECT count(*) FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id WHERE s.name = 'main'")" -gt "$runs_before" ] \
    && [ "$(q "SELECT count(*) FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id WHERE s.name = 'cron_owned'")" -gt 0 ] && break
  sleep 1
done
[ "$(q "SELECT count(*) FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id WHERE s.name = 'main'")" -gt "$runs_before" ]
check "the superuser's scheduled job ran rfm.refresh within 80 seconds" $?
[ "$(q "SELECT string_agg(DISTINCT r.started_by::text, ',') FROM rfm.runs r JOIN rfm.segmentations s ON s.id = r.segmentation_id WHERE s.name = 'cron_owned'")" = it_cron ]
check "the administrator's job refreshed as that administrator (runs.started_by)" $?
[ "$(cq "SELECT rfm.unschedule_refresh('cron_owned')")" = t ]
check "the administrator unschedules its own job" $?
[ "$(q "SELECT rfm.unschedule_refresh('main')")" = t ] && [ "$(q "SELECT count(*) FROM cron.job")" = 0 ]
check "rfm.unschedule_refresh removes the job" $?
nightly=$(q "SELECT cron.schedule('rfm-nightly', '0 3 * * *', 'SELECT rfm.refresh_all()')")
[ -n "$nightly" ]
check "refresh_all can be scheduled nightly with cron.schedule" $?

# 5. pg_dump keeps the saved schemes: a dump restored into a new database segments the same
q "SELECT rfm.create_scheme('it_big', '{\"segments\": [{\"name\": \"Big\", \"when\": {\"monetary\": {\">=\": 500}}}], \"default\": \"Small\"}')" >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_dump" -h "$work" -p "$port" -U postgres -d "$DB" -Fc -f "$work/dump.pgc" 2>"$work/dump.err"
psql_ -d postgres -c "CREATE DATABASE it_restored" >/dev/null
# (pg_cron cannot be created outside cron.database_name: that one error is expected)
"${as_pg[@]}" "$PG_BIN/pg_restore" -h "$work" -p "$port" -U postgres -d it_restored "$work/dump.pgc" 2>"$work/restore.err"
summary="SELECT string_agg(segment || '=' || customers, ',') FROM rfm.summary((SELECT rfm.analyze(customer_id, ordered_at, amount, '{\"as_of\": \"2025-12-31 23:59:59+00\", \"scheme\": \"it_big\"}') FROM it_tx))"
before=$(q "$summary")
after=$(psql_ -d it_restored -At -c "$summary" 2>&1)
[ -n "$before" ] && [ "$before" = "$after" ] && [ "$(psql_ -d it_restored -At -c "SELECT owner FROM rfm.schemes WHERE scheme = 'it_big' LIMIT 1")" = postgres ]
check "pg_dump keeps the saved schemes: restored, it_big segments the same ($after)" $?

# 6. the SQL reference shows what its examples really print
psql_ -d postgres -c "CREATE DATABASE rfm_docs"
"${as_pg[@]}" python3 scripts/docs.py --check -h "$work" -p "$port" -U postgres -d rfm_docs
check "docs/reference.md matches the output of its examples" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
