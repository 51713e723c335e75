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
source tests/integration/checks.sh
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

# 5a. SPEC §11 across sessions and databases (the hostile suite, tests/pg_regress/sql/hostile.sql,
# has the single-session routes)
# pg_cron jobs are identified by the jobid rfm.schedule_refresh created: a superuser's own
# job of the same name is neither replaced, nor removed by unscheduling or dropping
own=$(q "SELECT cron.schedule('rfm_refresh_main', '0 4 * * *', 'SELECT 1')")
err=$(q "SELECT rfm.schedule_refresh('main', '0 3 * * *')" 2>&1)
echo "$err" | grep -q 'pg_cron job named "rfm_refresh_main" exists already'
check "rfm.schedule_refresh does not replace a job of the same name it did not create ($(echo "$err" | head -n 1))" $?
[ "$(q "SELECT rfm.unschedule_refresh('main')")" = f ] && [ "$(q "SELECT command FROM cron.job WHERE jobid = $own")" = "SELECT 1" ]
check "rfm.unschedule_refresh leaves a superuser's own job of the same name alone" $?
own2=$(q "SELECT cron.schedule('rfm_refresh_cron_owned', '0 4 * * *', 'SELECT 2')")
cq "SELECT rfm.drop_segmentation('cron_owned')" >/dev/null
[ "$(q "SELECT count(*) FROM cron.job WHERE jobid IN ($own, $own2)")" = 2 ]
check "rfm.drop_segmentation leaves another role's job of the segmentation's job name alone" $?
q "SELECT cron.unschedule($own), cron.unschedule($own2)" >/dev/null

# waits (at most 20 s) until another session is inside its pg_sleep(3), holding what it
# took before it: the races below start their second session only then
wait_for_sleeper() {
  for _ in $(seq 1 100); do
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(3)'")" -gt 0 ] && return 0
    sleep 0.2
  done
  return 1
}

# the source is bound by OID: a refresh that waits for a rename (and another table taking
# the old name) reads the renamed table, not the new one (before: it read the new table and
# history recorded every customer as having left)
q "CREATE TABLE it_race AS SELECT * FROM it_tx WHERE customer_id <= 300" >/dev/null
q "SELECT rfm.create_segmentation('race', 'it_race', 'customer_id', 'ordered_at', 'amount', '{\"as_of\": \"2025-12-31 23:59:59+00\"}')" >/dev/null
q "SELECT rfm.refresh('race')" >/dev/null
(psql_ -d "$DB" -c "BEGIN" -c "ALTER TABLE it_race RENAME TO it_race_old" \
  -c "CREATE TABLE it_race AS SELECT customer_id + 1000000 AS customer_id, ordered_at, amount FROM it_tx WHERE customer_id <= 50" \
  -c "SELECT pg_sleep(3)" -c "COMMIT" >"$work/race.out" 2>&1) &
renamer=$!
wait_for_sleeper
q "SELECT rfm.refresh('race')" >/dev/null 2>"$work/race_refresh.err"
race_rc=$?
wait "$renamer"
left=$(q "SELECT count(*) FROM rfm.customer_movement WHERE segmentation = 'race' AND run_id = (SELECT max(run_id) FROM rfm.customer_movement WHERE segmentation = 'race') AND to_segment IS NULL")
[ "$race_rc" = 0 ] && [ "$left" = 0 ] && [ "$(q "SELECT source FROM rfm.segmentation_catalog WHERE name = 'race'")" = it_race_old ] \
  && [ "$(q "SELECT max(customer_key::bigint) <= 300 FROM rfm.customer_segments WHERE segmentation = 'race'")" = t ]
check "a refresh waiting for a rename reads the renamed source, not the table that took its name (customers left: $left)" $?

# scheme drop and replace against an uncommitted definition that uses the scheme: the
# second waits and then refuses (before: the segmentation ended on a missing or changed scheme)
q "SELECT rfm.create_scheme('it_race_rules', '{\"segments\": [{\"name\": \"Big\", \"when\": {\"monetary\": {\">=\": 500}}}], \"default\": \"Small\"}')" >/dev/null
(psql_ -d "$DB" -c "BEGIN" \
  -c "SELECT rfm.create_segmentation('race_rules', 'it_tx', 'customer_id', 'ordered_at', 'amount', '{\"scheme\": \"it_race_rules\"}')" \
  -c "SELECT pg_sleep(3)" -c "COMMIT" >"$work/scheme_race.out" 2>&1) &
definer=$!
wait_for_sleeper
drop_err=$(q "SELECT rfm.drop_scheme('it_race_rules')" 2>&1)
replace_err=$(q "SELECT rfm.create_scheme('it_race_rules', '{\"segments\": [{\"name\": \"Huge\", \"when\": {\"monetary\": {\">=\": 5000}}}], \"default\": \"Small\"}', replace => true)" 2>&1)
wait "$definer"
echo "$drop_err" | grep -q 'is used by the managed segmentation(s) race_rules' \
  && echo "$replace_err" | grep -q 'is used by the managed segmentation(s) race_rules' \
  && [ "$(q "SELECT count(*) FROM rfm.schemes WHERE scheme = 'it_race_rules' AND segment = 'Big'")" = 1 ]
check "drop_scheme and create_scheme(replace) wait for an uncommitted segmentation using the scheme, then refuse" $?
(psql_ -d "$DB" -c "BEGIN" -c "SELECT rfm.drop_segmentation('race_rules')" -c "SELECT rfm.drop_scheme('it_race_rules')" \
  -c "SELECT pg_sleep(3)" -c "COMMIT" >"$work/scheme_race2.out" 2>&1) &
dropper=$!
wait_for_sleeper
use_err=$(q "SELECT rfm.create_segmentation('race_rules2', 'it_tx', 'customer_id', 'ordered_at', 'amount', '{\"scheme\": \"it_race_rules\"}')" 2>&1)
wait "$dropper"
echo "$use_err" | grep -q 'segment scheme "it_race_rules" does not exist' \
  && [ "$(q "SELECT count(*) FROM rfm.segmentations WHERE name = 'race_rules2'")" = 0 ]
check "a definition waiting for a scheme's drop sees it gone and refuses ($(echo "$use_err" | head -n 1))" $?

# rfm_admin and rfm_reader are cluster roles: a member may manage in every database with the
# extension that it may CONNECT to; revoking CONNECT confines it (README, DBA section)
psql_ -d postgres -c "CREATE DATABASE it_other" >/dev/null
psql_ -d it_other -c "CREATE EXTENSION rfm_segmentation" >/dev/null
# pg_cron lives in one database: from another, rfm.schedule_refresh says where and how to
# schedule (cron.schedule_in_database), and the job it shows does refresh there
psql_ -d it_other -c "CREATE TABLE o_tx AS SELECT g::bigint AS customer_id, now() - g * interval '1 day' AS ordered_at, 10::numeric AS amount FROM generate_series(1, 50) g" \
  -c "SELECT rfm.create_segmentation('other_seg', 'o_tx', 'customer_id', 'ordered_at', 'amount')" >/dev/null
other_cron=$(psql_ -d it_other -At -c "SELECT rfm.schedule_refresh('other_seg', '0 3 * * *')" 2>&1)
echo "$other_cron" | grep -q "pg_cron runs in database $DB, not in this one" \
  && echo "$other_cron" | grep -q "SELECT cron.schedule_in_database('rfm_refresh_<name>'"
check "rfm.schedule_refresh in a database without pg_cron names the pg_cron database and the call to make there" $?
other_job=$(q "SELECT cron.schedule_in_database('rfm_refresh_other_seg', '* * * * *', 'SELECT rfm.refresh(''other_seg'')', 'it_other')")
for _ in $(seq 1 80); do
  [ "$(psql_ -d it_other -At -c "SELECT count(*) FROM rfm.runs")" -gt 0 ] && break
  sleep 1
done
[ "$(psql_ -d it_other -At -c "SELECT count(*) FROM rfm.runs")" -gt 0 ]
check "a job made with cron.schedule_in_database refreshes the segmentation of the other database" $?
q "SELECT cron.unschedule($other_job)" >/dev/null
q "CREATE ROLE it_analyst LOGIN IN ROLE rfm_admin" >/dev/null
as_analyst() { "${as_pg[@]}" "$PG_BIN/psql" -X -q -At -h "$work" -p "$port" -U it_analyst "$@"; }
[ "$(as_analyst -d it_other -c "SELECT has_function_privilege('rfm.refresh_all()', 'EXECUTE')" 2>&1)" = t ]
check "without confinement an rfm_admin member manages in another database with the extension" $?
psql_ -d postgres -c "REVOKE CONNECT ON DATABASE it_other FROM PUBLIC" >/dev/null
other_err=$(as_analyst -d it_other -c "SELECT 1" 2>&1)
echo "$other_err" | grep -q 'permission denied for database "it_other"' \
  && [ "$(as_analyst -d "$DB" -c "SELECT has_function_privilege('rfm.refresh_all()', 'EXECUTE')")" = t ]
check "REVOKE CONNECT confines an rfm_admin member to the databases it may connect to" $?

# DROP ROLE of an owner is refused from any database (the owner mark is a privilege, which
# PostgreSQL's own dependency check sees); rfm.reassign_owned moves what it owns
q "GRANT SELECT ON it_tx TO it_analyst" >/dev/null
as_analyst -d "$DB" -c "SELECT rfm.create_segmentation('analyst_owned', 'public.it_tx', 'customer_id', 'ordered_at', 'amount')" >/dev/null
drop_role_err=$(psql_ -d postgres -c "DROP ROLE it_analyst" 2>&1)
echo "$drop_role_err" | grep -q 'role "it_analyst" cannot be dropped because some objects depend on it' \
  && echo "$drop_role_err" | grep -q "privileges for function rfm.owned_objects(regrole)\|objects in database $DB"
check "DROP ROLE of a segmentation owner is refused, also from another database" $?
q "SELECT rfm.reassign_owned('it_analyst', 'postgres')" >/dev/null
q "REVOKE SELECT ON it_tx FROM it_analyst" >/dev/null
psql_ -d postgres -c "DROP ROLE it_analyst" >/dev/null 2>&1
[ $? = 0 ] && [ "$(q "SELECT owner FROM rfm.segmentation_catalog WHERE name = 'analyst_owned'")" = postgres ]
check "after rfm.reassign_owned the role can be dropped and the segmentation has its new owner" $?
q "SELECT rfm.drop_segmentation('analyst_owned'), rfm.drop_segmentation('race')" >/dev/null
psql_ -d postgres -c "DROP DATABASE it_other" >/dev/null

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

# 6. the SQL reference shows what its examples really print, on a cluster of its own set
# up exactly as scripts/docs.sh sets up the one that wrote it (this cluster's pg_cron lives
# in another database, which some examples would show)
SKIP_INSTALL=1 bash scripts/docs.sh --check
check "docs/reference.md matches the output of its examples" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
