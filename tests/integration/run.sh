#!/usr/bin/env bash
# Integration tests that need more than one session or a preloaded library: NOTIFY
# received by a listening session, concurrent refreshes and reads, and pg_cron
# scheduling, and that docs/reference.md is what its examples print. Installs the extension
# (debug build) and runs against a scratch PostgreSQL 15 cluster owned by the postgres user
# that preloads pg_cron.
# Ends with "N passed, M failed" and exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB=rfm_it
if [ "$(id -u)" = 0 ]; then as_pg=(sudo -u postgres); else as_pg=(); fi

echo "==> installing the extension"
if [ "$(id -u)" = 0 ]; then
  cargo pgrx install --pg-config "$PG_BIN/pg_config" >/dev/null
else
  cargo pgrx install --sudo --pg-config "$PG_BIN/pg_config" >/dev/null
fi

work=$(mktemp -d /tmp/rfm-it.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
port=55600
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do port=$((port + 1)); done
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -w -l "$work/server.log" -o "-p $port -k $work \
  -c listen_addresses='' -c fsync=off -c shared_preload_libraries=pg_cron \
  -c cron.database_name=$DB -c cron.use_background_workers=on -c max_worker_processes=16 \
  -c cron.timezone=UTC" start >/dev/null

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
grep -q 'Asynchronous notification "rfm_segment_changed" with payload "{"segmentation" : "main", "run_id" : 2, "customers" : 5000' "$work/listen.out"
check "NOTIFY rfm_segment_changed received by a listening session" $?

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
[ "$(q "SELECT count(*) - count(DISTINCT customer_key) FROM rfm.assignments")" = 0 ] \
  && [ "$(q "SELECT count(*) FROM rfm.assignments")" = "$total_after" ]
check "no duplicate or missing rows after concurrent refreshes ($total_after customers)" $?
bad=$(grep -vcE "^($total_before|$total_after) 0$" "$reads" || true)
[ "$bad" = 0 ] && [ "$(wc -l <"$reads")" = 40 ]
check "40 concurrent reads all saw a whole result ($total_before or $total_after customers)" $?

# 3. pg_cron: the helper schedules a job that really refreshes
q "CREATE EXTENSION pg_cron" >/dev/null
job=$(q "SELECT rfm.schedule_refresh('main', '* * * * *')")
[ -n "$job" ] && [ "$(q "SELECT command FROM cron.job WHERE jobid = $job")" = "SELECT rfm.refresh('main')" ]
check "rfm.schedule_refresh creates a pg_cron job" $?
runs_before=$(q "SELECT count(*) FROM rfm.runs")
for _ in $(seq 1 80); do
  [ "$(q "SELECT count(*) FROM rfm.runs")" -gt "$runs_before" ] && break
  sleep 1
done
[ "$(q "SELECT count(*) FROM rfm.runs")" -gt "$runs_before" ]
check "the scheduled job ran rfm.refresh within 80 seconds" $?
[ "$(q "SELECT rfm.unschedule_refresh('main')")" = t ] && [ "$(q "SELECT count(*) FROM cron.job")" = 0 ]
check "rfm.unschedule_refresh removes the job" $?
nightly=$(q "SELECT cron.schedule('rfm-nightly', '0 3 * * *', 'SELECT rfm.refresh_all()')")
[ -n "$nightly" ]
check "refresh_all can be scheduled nightly with cron.schedule" $?

# 4. the SQL reference shows what its examples really print
psql_ -d postgres -c "CREATE DATABASE rfm_docs"
"${as_pg[@]}" python3 scripts/docs.py --check -h "$work" -p "$port" -U postgres -d rfm_docs
check "docs/reference.md matches the output of its examples" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
