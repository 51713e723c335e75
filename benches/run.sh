#!/usr/bin/env bash
# rfm_segmentation benchmark (not a test). See BENCHMARKS.md for the last measured report.
#
#   bash benches/run.sh                  10M rows, 5 timed runs per query
#   ROWS=1000000 bash benches/run.sh     smaller data set
#   RUNS=3 bash benches/run.sh           timed runs per query (median of all of them; at least 3)
#   KEEP=1 bash benches/run.sh           leave the scratch cluster running (prints how to reach it)
#   SKIP_SETUP=1 / SKIP_INSTALL=1        do not run scripts/setup.sh / cargo pgrx install
#   BASELINES_ONLY=1                     time only the pure-SQL queries (no rfm.analyze needed)
#   REPORT=path                          where the markdown report goes (default target/bench/report.md)
#   INSTALL_LOCK=path                    hold flock(path) from the install until the scratch database
#                                        has its private copy of the library (for machines where
#                                        others install into the same PostgreSQL under that lock)
#
# Installs the extension (release build) into the Debian PostgreSQL 15 (the scratch database
# then loads a private copy of that library, so a concurrent `cargo pgrx install` cannot swap
# the code under the benchmark), creates a scratch cluster owned by the postgres OS user
# under /tmp on a free port >= 56000, generates
# bench.tx deterministically (benches/generate.sql), runs benches/queries/*.sql, measures the
# analysis state's memory, checks the extension against an independent SQL computation of the
# SPEC (benches/reference.sql + benches/compare.sql; a difference makes this script fail), and
# prints a markdown report (also written to $REPORT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bench="$root/benches"
q="$bench/queries"

ROWS=${ROWS:-10000000}
RUNS=${RUNS:-5}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
REPORT=${REPORT:-$root/target/bench/report.md}
[[ "$ROWS" =~ ^[1-9][0-9]*$ ]] || { echo "ROWS must be a positive integer, got '$ROWS'" >&2; exit 2; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer, got '$RUNS'" >&2; exit 2; }
[ "$RUNS" -ge 3 ] || echo "warning: RUNS=$RUNS; the report asks for medians of at least 3 runs" >&2

if [ "$(id -u)" = 0 ]; then as_pg=(sudo -u postgres); else as_pg=(); fi
say() { printf '==> %s\n' "$*" >&2; }
now_s() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }
t_start=$(now_s)

# ---------------------------------------------------------------- toolchain and extension
if [ -z "${SKIP_SETUP:-}" ] && [ -f scripts/setup.sh ]; then
  say "scripts/setup.sh"
  bash scripts/setup.sh
fi
install_lock_fd=
if [ -n "${INSTALL_LOCK:-}" ]; then
  exec {install_lock_fd}>>"$INSTALL_LOCK"
  say "waiting for the install lock $INSTALL_LOCK"
  flock "$install_lock_fd"
fi
if [ -z "${SKIP_INSTALL:-}" ]; then
  say "cargo pgrx install --release into $("$PG_CONFIG" --version)"
  if [ "$(id -u)" = 0 ]; then
    cargo pgrx install --release --pg-config "$PG_CONFIG" >&2
  else
    cargo pgrx install --release --sudo --pg-config "$PG_CONFIG" >&2
  fi
fi

# The benchmark must measure the release build, but anything else that runs `cargo pgrx
# install` (the SQL regression tests install a debug build) replaces the same library under
# the system PostgreSQL, and every new backend loads whatever is there. So: check that the
# installed library is the release build now, keep a private copy of it in the scratch
# directory, and after CREATE EXTENSION point the scratch database's C functions at the copy.
installed_so="$("$PG_CONFIG" --pkglibdir)/rfm_segmentation.so"
release_so="${CARGO_TARGET_DIR:-$root/target}/release/librfm_segmentation.so"
snapshot=$(mktemp /tmp/rfm-bench-lib.XXXXXX)
cp "$installed_so" "$snapshot"
so_sha=$(sha256sum "$snapshot" | cut -c1-16)
if cmp -s "$snapshot" "$release_so"; then
  build="release build, library sha256 $so_sha…"
elif [ -n "${SKIP_INSTALL:-}" ]; then
  build="UNKNOWN build (SKIP_INSTALL=1 and $installed_so is not $release_so), library sha256 $so_sha…"
  say "warning: $build"
else
  rm -f "$snapshot"
  echo "error: $installed_so is not the release build that was just installed ($release_so); did another cargo pgrx install run meanwhile? Run again." >&2
  exit 1
fi

# ---------------------------------------------------------------- scratch cluster
work=$(mktemp -d /tmp/rfm-bench.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; fi
port=56000
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ] \
      || [ -e "/var/run/postgresql/.s.PGSQL.$port" ] || [ "$port" = 28815 ]; do
  port=$((port + 1))
done
cleanup() {
  local status=$?
  if [ -n "${KEEP:-}" ]; then
    say "KEEP=1: cluster left running: psql -h $work -p $port -U postgres -d bench"
    say "stop it with: sudo -u postgres $PG_BIN/pg_ctl -D $work/data stop && rm -rf $work"
  else
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  rm -f "$snapshot"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "scratch cluster in $work on port $port"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
# Settings for a 24 GB / 2 core machine. fsync/synchronous_commit/full_page_writes off:
# scratch data, durability does not matter and none of the timed queries is a commit-bound
# write. autovacuum off so that it never runs during a timing (bench.tx is vacuumed and
# analyzed explicitly). max_parallel_workers_per_gather stays at its default, 2.
settings=(
  -p "$port" -k "$work" -c "listen_addresses=''"
  -c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=1GB
  -c effective_cache_size=16GB -c jit=off -c timezone=UTC
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  -c max_wal_size=8GB -c checkpoint_timeout=30min -c autovacuum=off
)
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -w -l "$work/server.log" -o "${settings[*]}" start >/dev/null

psql_=(psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)
db=("${psql_[@]}" -d bench)
"${psql_[@]}" -d postgres -c 'CREATE DATABASE bench' >/dev/null
"${db[@]}" -c 'CREATE EXTENSION rfm_segmentation' -c 'CREATE EXTENSION pg_prewarm' >/dev/null
if ! cmp -s "$installed_so" "$snapshot"; then
  echo "error: $installed_so changed before CREATE EXTENSION (another cargo pgrx install?); run again" >&2
  exit 1
fi
mkdir "$work/lib"
cp "$snapshot" "$work/lib/rfm_segmentation.so"
chmod -R a+rX "$work/lib"
lib="$work/lib/rfm_segmentation"
repointed=$("${db[@]}" -tA -c "WITH u AS (UPDATE pg_catalog.pg_proc SET probin = '$lib'
                                            WHERE probin = '\$libdir/rfm_segmentation' RETURNING 1)
                               SELECT count(*) FROM u")
[ "$repointed" -gt 0 ] || { echo "error: found no function of rfm_segmentation to point at $lib" >&2; exit 1; }
loaded=$("${db[@]}" -tA <<EOF
\\o /dev/null
SELECT rfm.score(1::float8, '{0.5}'::float8[]);
\\o
SELECT pg_backend_pid() AS pid \\gset
\\setenv BENCH_PID :pid
\\! grep -o '/[^ ]*rfm_segmentation[^ ]*' /proc/\$BENCH_PID/maps | sort -u
EOF
)
[ "$loaded" = "$lib.so" ] || { echo "error: backends load '$loaded', expected only $lib.so" >&2; exit 1; }
build="$build, loaded from a private copy"
if [ -n "$install_lock_fd" ]; then
  # the scratch database now loads only its private copy: others may install again
  flock -u "$install_lock_fd"
  exec {install_lock_fd}>&-
  say "released the install lock"
fi

have_ext=$("${db[@]}" -tA -c "SELECT count(DISTINCT p.proname) = 3 FROM pg_proc p
                               JOIN pg_namespace n ON n.oid = p.pronamespace
                               WHERE n.nspname = 'rfm' AND p.proname IN ('analyze', 'summary', 'customers')")
if [ "$have_ext" != t ]; then
  if [ -n "${BASELINES_ONLY:-}" ]; then
    say "rfm.analyze / rfm.summary / rfm.customers not installed: BASELINES_ONLY=1, timing the SQL baselines only"
  else
    echo "error: the installed extension has no rfm.analyze(bigint,timestamptz,numeric,jsonb), rfm.summary(rfm.analysis) or rfm.customers(rfm.analysis); set BASELINES_ONLY=1 to time the SQL baselines alone" >&2
    exit 1
  fi
fi
if [ -n "${BASELINES_ONLY:-}" ]; then have_ext=f; fi

# ---------------------------------------------------------------- data
say "generating bench.tx: $ROWS rows (benches/generate.sql)"
t0=$(now_s)
"${db[@]}" -v ROWS="$ROWS" -f "$bench/generate.sql"
gen_secs=$(secs_since "$t0")
"${db[@]}" -c "SELECT pg_prewarm('bench.tx')" >/dev/null
read -r tx_rows tx_customers tx_size window_rows < <("${db[@]}" -tA -F ' ' -c "
  SELECT count(*), count(DISTINCT customer_id), pg_size_pretty(pg_table_size('bench.tx'))::text,
         count(*) FILTER (WHERE ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months'
                            AND ordered_at <= timestamptz '2025-12-31 23:59:59+00')
  FROM bench.tx" | sed 's/ MB/MB/; s/ GB/GB/; s/ kB/kB/')
say "bench.tx: $tx_rows rows, $tx_customers customers, $tx_size, $window_rows rows in the window (${gen_secs}s)"

say "reference SQL for the correctness guard (benches/reference.sql)"
t0=$(now_s)
"${db[@]}" -f "$bench/reference.sql"
ref_secs=$(secs_since "$t0")
active=$("${db[@]}" -tA -c 'SELECT count(*) FROM bench.ref_customers')
say "active customers: $active (reference built in ${ref_secs}s)"

# ---------------------------------------------------------------- timings
# variant: label|query file|max_parallel_workers_per_gather|table to drop before the run
variants=(
  "1|q1_floor.sql|2|"
  "1|q1_floor.sql|0|"
  "2|q2_groupby.sql|2|"
  "2|q2_groupby.sql|0|"
  "3|q3_ntile_summary.sql|2|"
  "3|q3_ntile_summary.sql|0|"
)
if [ "$have_ext" = t ]; then
  variants+=(
    "4|q4_rfm_summary.sql|2|"
    "4|q4_rfm_summary.sql|0|"
    "4s|q4s_rfm_analyze_only.sql|2|"
    "4s|q4s_rfm_analyze_only.sql|0|"
    "4l|q4l_lifecycle_analyze_only.sql|2|"
    "4l|q4l_lifecycle_analyze_only.sql|0|"
    "4a|q4a_rfm_analyze_all_rows.sql|2|"
    "4a|q4a_rfm_analyze_all_rows.sql|0|"
    "5a|q5a_rfm_customers_table.sql|2|bench.out_rfm_customers"
  )
fi
variants+=("5b|q5b_ntile_customers_table.sql|2|bench.out_ntile_customers")

driver="$work/timings.psql"
{
  echo "SET TimeZone = 'UTC';"
  echo "SET client_min_messages = warning;"
  if [ "$have_ext" = t ]; then echo "LOAD '$lib';"; fi
  echo "\\o /dev/null"
  for run in $(seq 1 "$RUNS"); do
    for v in "${variants[@]}"; do
      IFS='|' read -r label file workers drop <<<"$v"
      echo "SET max_parallel_workers_per_gather = $workers;"
      if [ -n "$drop" ]; then echo "DROP TABLE IF EXISTS $drop;"; fi
      echo "\\timing on"
      echo "\\echo @@ $label $workers $run"
      echo "\\i $q/$file"
      echo "\\timing off"
    done
  done
} >"$driver"

say "timing: $RUNS runs of ${#variants[@]} variants, interleaved (round 1 of every variant, then round 2, ...)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(now_s)
"${db[@]}" -f "$driver" >"$work/timings.out"
timing_secs=$(secs_since "$t0")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
awk '/^@@ / { label=$2; workers=$3; run=$4; next }
     /^Time: / { if (label != "") { print label "," workers "," run "," $2; label="" } }' \
  "$work/timings.out" >"$work/timings.csv"
expected=$(( ${#variants[@]} * RUNS ))
got=$(wc -l <"$work/timings.csv")
[ "$got" = "$expected" ] || { echo "error: parsed $got timings, expected $expected (see $work/timings.out)" >&2; cat "$work/timings.out" >&2; exit 1; }

# ---------------------------------------------------------------- managed refresh
# rfm.refresh against rfm.analyze over the same rows (bench.orders = bench.tx + the new days'
# orders, benches/managed.sql), a first refresh and a refresh after a day of new orders, then
# the size of the managed tables over 20 daily refreshes (each followed by VACUUM).
if [ "$have_ext" = t ]; then
  day_opts() { printf '{"as_of": "%s 23:59:59+00"}' "$(date -u -d "2025-12-31 + $1 day" +%F)"; }
  mdriver="$work/managed.psql"
  {
    echo "\\i $bench/managed.sql"
    echo "SET max_parallel_workers_per_gather = 2;"
    echo "LOAD '$lib';"
    echo "\\o /dev/null"
    for run in $(seq 1 "$RUNS"); do
      echo "SELECT pg_temp.round_start();"
      echo "\\timing on"
      echo "\\echo @@ R1 2 $run"
      echo "SELECT rfm.refresh('bench_refresh');"
      echo "\\echo @@ A1 2 $run"
      echo "SELECT length(rfm.analyze(customer_id, ordered_at, amount, '$(day_opts 0)')) FROM bench.orders;"
      echo "\\timing off"
      echo "SELECT pg_temp.add_day(1);"
      echo "SELECT rfm.alter_segmentation('bench_refresh', options => '$(day_opts 1)');"
      echo "\\timing on"
      echo "\\echo @@ R2 2 $run"
      echo "SELECT rfm.refresh('bench_refresh');"
      echo "\\echo @@ A2 2 $run"
      echo "SELECT length(rfm.analyze(customer_id, ordered_at, amount, '$(day_opts 1)')) FROM bench.orders;"
      echo "\\timing off"
    done
    echo "VACUUM rfm.assignment, rfm.runs, rfm.run_segments, rfm.history, rfm.segmentations;"
    echo "\\o"
    echo "SELECT '@@ size 1 ' || pg_temp.sizes();"
    for d in $(seq 2 21); do
      echo "\\o /dev/null"
      echo "SELECT pg_temp.add_day($d);"
      echo "SELECT rfm.alter_segmentation('bench_refresh', options => '$(day_opts "$d")');"
      echo "SELECT rfm.refresh('bench_refresh');"
      echo "VACUUM rfm.assignment, rfm.runs, rfm.run_segments, rfm.history, rfm.segmentations;"
      echo "\\o"
      echo "SELECT '@@ size $d ' || pg_temp.sizes();"
    done
  } >"$mdriver"
  say "managed refresh: $RUNS rounds of a first refresh and a refresh after a day, then 20 daily refreshes"
  t0=$(now_s)
  "${db[@]}" -tA -f "$mdriver" >"$work/managed.out"
  managed_secs=$(secs_since "$t0")
  awk '/^@@ [RA][12] / { label=$2; workers=$3; run=$4; next }
       /^Time: / { if (label != "") { print label "," workers "," run "," $2; label="" } }' \
    "$work/managed.out" >>"$work/timings.csv"
  sed -n 's/^@@ size //p' "$work/managed.out" >"$work/sizes.txt"
  [ "$(wc -l <"$work/sizes.txt")" = 21 ] || { echo "error: expected 21 size lines (see $work/managed.out)" >&2; exit 1; }
fi

# ---------------------------------------------------------------- memory (peak RSS)
# One fresh connection per query, serial plan (max_parallel_workers_per_gather = 0) so that all
# the work happens in that backend. Before the measured query the backend scans all of
# bench.tx (query 1) and runs the measured query on 10,000 rows: the shared-buffer pages of
# the table and the code of the extension are then already in its RSS. VmHWM (peak resident
# set) is read from /proc/<backend pid>/status before and after the measured query; the
# difference is the peak of everything the query allocates privately (palloc'd memory and
# the Rust heap alike), divided by the number of active customers.
measure_memory() { # label file
  local label=$1 file=$2 small="$work/small-$1.sql"
  sed 's/FROM bench\.tx$/FROM (SELECT * FROM bench.tx LIMIT 10000) tx/' "$q/$file" >"$small"
  grep -q 'LIMIT 10000' "$small" || { echo "error: cannot derive a warm-up query from $file" >&2; exit 1; }
  "${db[@]}" <<EOF
SET TimeZone = 'UTC';
SET max_parallel_workers_per_gather = 0;
\\o /dev/null
\\i $q/q1_floor.sql
\\i $small
\\o
SELECT pg_backend_pid() AS pid \\gset
\\setenv BENCH_PID :pid
\\! awk '/^VmHWM:/ { print "@@ $label before", \$2 }' /proc/\$BENCH_PID/status
\\o /dev/null
\\i $q/$file
\\o
\\! awk '/^VmHWM:/ { print "@@ $label after", \$2 }' /proc/\$BENCH_PID/status
EOF
}
say "memory: peak RSS of a serial backend around queries 2, 3$([ "$have_ext" = t ] && echo ", 4, 4s, 4l")"
{
  measure_memory 2 q2_groupby.sql
  measure_memory 3 q3_ntile_summary.sql
  if [ "$have_ext" = t ]; then
    measure_memory 4 q4_rfm_summary.sql
    measure_memory 4s q4s_rfm_analyze_only.sql
    measure_memory 4l q4l_lifecycle_analyze_only.sql
  fi
} >"$work/memory.out"
analysis_bytes=0
state_bytes=0
state_peak=0
lc_analysis_bytes=0
lc_customers=1
lc_state_bytes=0
lc_state_peak=0
# the aggregate's own account of its state (DEBUG1 from its final function, serial plan):
# prints "customers bytes-at-the-end bytes-at-the-peak" of query file $1
state_report() {
  local line
  line=$("${db[@]}" -tA -c "SET max_parallel_workers_per_gather = 0" \
    -c "SET client_min_messages = debug1" -f "$q/$1" 2>&1 >/dev/null \
    | grep -o 'rfm.analyze: .*' || true)
  [[ "$line" =~ rfm.analyze:\ ([0-9]+)\ customers,\ state\ ([0-9]+)\ bytes.*peak\ ([0-9]+)\ bytes ]] \
    || { echo "error: no state report from rfm.analyze at DEBUG1 for $1 (got '$line')" >&2; return 1; }
  echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
}
if [ "$have_ext" = t ]; then
  analysis_bytes=$("${db[@]}" -tA -c "SET max_parallel_workers_per_gather = 0" -f "$q/q4s_rfm_analyze_only.sql")
  report=$(state_report q4s_rfm_analyze_only.sql) || exit 1
  read -r _ state_bytes state_peak <<<"$report"
  # lifecycle: the state holds every customer seen up to as_of (population all), not only
  # the active ones, so its bytes are divided by the customers it reports
  lc_analysis_bytes=$("${db[@]}" -tA -c "SET max_parallel_workers_per_gather = 0" -f "$q/q4l_lifecycle_analyze_only.sql")
  report=$(state_report q4l_lifecycle_analyze_only.sql) || exit 1
  read -r lc_customers lc_state_bytes lc_state_peak <<<"$report"
fi
awk '/^@@ / { kb[$2 " " $3] = $4; seen[$2] = 1 }
     END { for (l in seen) print l "," kb[l " before"] "," kb[l " after"] }' "$work/memory.out" >"$work/memory.csv"

# ---------------------------------------------------------------- plans
say "plans (EXPLAIN, costs off)"
{
  for v in "${variants[@]}"; do
    IFS='|' read -r label file workers drop <<<"$v"
    echo "@@ ($label) $file, max_parallel_workers_per_gather = $workers"
    { echo "SET max_parallel_workers_per_gather = $workers;"
      echo "EXPLAIN (COSTS OFF)"
      sed '/^--/d; /^CREATE TABLE/d' "$q/$file"; } | "${db[@]}" -tA | grep -Ev '^ *(Sort Key|Group Key|Filter|Output|InitPlan.*returns|Rows Removed):' || true
  done
} >"$work/plans.out"

# ---------------------------------------------------------------- correctness guard
guard="not run (BASELINES_ONLY: rfm.analyze not installed)"
if [ "$have_ext" = t ]; then
  say "correctness guard (benches/compare.sql)"
  if "${db[@]}" -P pager=off -f "$bench/compare.sql" >"$work/guard.out" 2>&1; then
    guard=PASS
    cat "$work/guard.out" >&2
  else
    cat "$work/guard.out" >&2
    echo "CORRECTNESS GUARD FAILED: rfm.summary / rfm.customers differ from the reference SQL" >&2
    exit 1
  fi
  say "lifecycle check (benches/lifecycle_check.sql)"
  if "${db[@]}" -P pager=off -f "$bench/lifecycle_check.sql" >"$work/lifecycle.out" 2>&1; then
    guard="$guard; lifecycle stages: PASS"
    cat "$work/lifecycle.out" >&2
  else
    cat "$work/lifecycle.out" >&2
    echo "LIFECYCLE CHECK FAILED: rfm.customers with the lifecycle scheme differs from the plain SQL" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------- report
say "report"
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
pgver=$("${db[@]}" -tA -c 'SHOW server_version')
extver=$("${db[@]}" -tA -c "SELECT extversion FROM pg_extension WHERE extname = 'rfm_segmentation'")
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$root" diff --quiet HEAD -- src crates Cargo.toml sql 2>/dev/null || commit="$commit + uncommitted changes"
total_secs=$(secs_since "$t_start")

mkdir -p "$(dirname "$REPORT")"
{
  echo "## Run"
  echo
  echo "- command: \`ROWS=$ROWS RUNS=$RUNS bash benches/run.sh\`"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), extension $extver at commit $commit ($build)"
  echo "- machine: $(nproc) CPUs ($cpu), $mem RAM, $(uname -sr); PostgreSQL $pgver"
  echo "- cluster: shared_buffers=2GB, work_mem=256MB, jit=off, max_parallel_workers_per_gather=2 (default) unless a row says 0, TimeZone=UTC, autovacuum=off, fsync=off"
  echo "- data: bench.tx, $tx_rows rows, $tx_customers customers, $tx_size, no indexes (every query is a full scan), in shared buffers (pg_prewarm); $window_rows rows in the 12-month window, $active active customers; generated in ${gen_secs}s"
  echo "- load average (1/5/15 min) before timing: $load_before, after: $load_after"
  echo "- timing: psql \`\\timing\` (client-side elapsed time of the statement) in one session; each statement returns at most a handful of rows or writes a table; $RUNS runs of every variant, interleaved; all runs are listed, none is discarded; ratios use medians and compare the same max_parallel_workers_per_gather"
  echo "- whole run: ${total_secs}s (timed queries ${timing_secs}s)"
  echo "- correctness guard: $guard"
  echo
} >"$REPORT"

"${db[@]}" -tA -v have_ext="$have_ext" >>"$REPORT" <<EOF
CREATE TEMP TABLE t (label text, workers int, run int, ms float8);
\\copy t FROM '$work/timings.csv' WITH (FORMAT csv)
CREATE TEMP TABLE mem (label text, before_kb bigint, after_kb bigint);
\\copy mem FROM '$work/memory.csv' WITH (FORMAT csv)
CREATE TEMP TABLE names (label text PRIMARY KEY, name text);
INSERT INTO names VALUES
  ('1',  '(1) floor: count(*) over the window'),
  ('2',  '(2) hand-written GROUP BY customer_id'),
  ('3',  '(3) hand-written NTILE(5) RFM, per-segment summary'),
  ('4',  '(4) rfm.summary(rfm.analyze(...))'),
  ('4s', '(4s) rfm.analyze(...) alone, no accessor'),
  ('4l', '(4l) rfm.analyze(...) with "scheme": "lifecycle" alone (every row up to as_of)'),
  ('4a', '(4a) rfm.analyze(...) alone over every row up to as_of (the rows of (4l))'),
  ('5a', '(5a) CREATE TABLE AS rfm.customers(rfm.analyze(...))'),
  ('5b', '(5b) CREATE TABLE AS hand-written NTILE per customer'),
  ('A1', '(A1) rfm.analyze over bench.orders (bench.tx and no new day yet)'),
  ('R1', '(R1) rfm.refresh, first refresh (assignment + every customer into the history)'),
  ('A2', '(A2) rfm.analyze over bench.orders after a day of new orders'),
  ('R2', '(R2) rfm.refresh after a day of new orders (history of the changes)');
CREATE TEMP TABLE med AS
  SELECT label, workers, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms,
         string_agg(to_char(ms, 'FM999999990.0'), ' / ' ORDER BY run) AS runs
  FROM t GROUP BY label, workers;

SELECT '### Timings (milliseconds, median of ' || $RUNS || ' runs)';
SELECT '';
SELECT '| query | workers | runs (ms) | median (ms) | vs (1) | vs (2) | vs (3) |';
SELECT '|---|---:|---|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s | %s | %s |', n.name, m.workers, m.runs,
              to_char(m.ms, 'FM999999990.0'),
              coalesce(to_char(m.ms / b1.ms, 'FM9990.00') || '×', ''),
              coalesce(to_char(m.ms / b2.ms, 'FM9990.00') || '×', ''),
              coalesce(to_char(m.ms / b3.ms, 'FM9990.00') || '×', ''))
FROM med m JOIN names n USING (label)
LEFT JOIN med b1 ON b1.label = '1' AND b1.workers = m.workers
LEFT JOIN med b2 ON b2.label = '2' AND b2.workers = m.workers
LEFT JOIN med b3 ON b3.label = '3' AND b3.workers = m.workers
ORDER BY m.label, m.workers DESC;
SELECT '';
SELECT format('(5a) / (5b) = %s (both with workers = 2; (5b) computes no ABC tier)',
              to_char(a.ms / b.ms, 'FM9990.00') || '×')
FROM med a, med b WHERE a.label = '5a' AND b.label = '5b';
SELECT '';

\\if :have_ext
SELECT '### Managed refresh (milliseconds, median of ' || $RUNS || ' rounds, workers = 2)';
SELECT '';
SELECT '| step | runs (ms) | median (ms) | vs rfm.analyze of the same rows | vs (5b) hand-written NTILE table |';
SELECT '|---|---|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s |', n.name, m.runs, to_char(m.ms, 'FM999999990.0'),
              CASE WHEN m.label LIKE 'R%' THEN to_char(m.ms / a.ms, 'FM9990.00') || '×' ELSE '' END,
              to_char(m.ms / b.ms, 'FM9990.00') || '×')
FROM med m JOIN names n USING (label)
LEFT JOIN med a ON a.label = 'A' || substr(m.label, 2) AND a.workers = m.workers
LEFT JOIN med b ON b.label = '5b' AND b.workers = 2
WHERE m.label IN ('A1', 'R1', 'A2', 'R2')
ORDER BY substr(m.label, 2), m.label DESC;
SELECT '';
\\endif
SELECT '### Peak memory (serial backend, VmHWM after − before the query)';
SELECT '';
SELECT '| query | VmHWM before (kB) | after (kB) | growth (MiB) | bytes per active customer |';
SELECT '|---|---:|---:|---:|---:|';
SELECT format('| %s | %s | %s | %s | %s |', n.name, before_kb, after_kb,
              to_char((after_kb - before_kb) / 1024.0, 'FM999990.0'),
              to_char((after_kb - before_kb) * 1024.0 / CASE label WHEN '4l' THEN $lc_customers ELSE $active END, 'FM999990.0')
              || CASE label WHEN '4l' THEN ' (per customer it holds)' ELSE '' END)
FROM mem JOIN names n USING (label) ORDER BY label;
\\if :have_ext
SELECT '| analysis state alone (its hash table and keys, as rfm.analyze reports at DEBUG1; serial) | | | ' ||
       format('%s at the end, %s at its peak | %s at the end, %s at its peak |',
              to_char($state_bytes / 1048576.0, 'FM999990.0'), to_char($state_peak / 1048576.0, 'FM999990.0'),
              to_char($state_bytes::numeric / $active, 'FM999990.0'), to_char($state_peak::numeric / $active, 'FM999990.0'));
SELECT format('| lifecycle analysis state alone ((4l), DEBUG1, serial; per customer it holds: %s, every customer up to as_of) | | | ', $lc_customers) ||
       format('%s at the end, %s at its peak | %s at the end, %s at its peak |',
              to_char($lc_state_bytes / 1048576.0, 'FM999990.0'), to_char($lc_state_peak / 1048576.0, 'FM999990.0'),
              to_char($lc_state_bytes::numeric / $lc_customers, 'FM999990.0'), to_char($lc_state_peak::numeric / $lc_customers, 'FM999990.0'));
\\endif
SELECT '';
\\if :have_ext
SELECT format('The rfm.analysis value itself (the aggregate''s result, read by the accessors) is %s bytes, %s bytes per active customer.',
              $analysis_bytes, to_char($analysis_bytes::numeric / $active, 'FM999990.0'));
SELECT format('With the lifecycle scheme it is %s bytes, %s bytes per customer (%s customers up to as_of).',
              $lc_analysis_bytes, to_char($lc_analysis_bytes::numeric / $lc_customers, 'FM999990.0'), $lc_customers);
SELECT '';
\\endif

\\if :have_ext
SELECT '### Targets';
SELECT '';
SELECT '| target | measured | status |';
SELECT '|---|---|---|';
WITH targets(ord, sub, name, value, limit_, detail) AS (
  SELECT 1, 10 - a.workers, format('(4) ≤ 0.5 × (2), workers = %s', a.workers), a.ms / b.ms, 0.5,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(0.5 * b.ms))
    FROM med a JOIN med b ON b.label = '2' AND b.workers = a.workers WHERE a.label = '4'
  UNION ALL
  SELECT 1, 20, '(4s) ≤ 0.25 × (2), workers = 2 (the plain analysis against the hand-written GROUP BY)', a.ms / b.ms, 0.25,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(0.25 * b.ms))
    FROM med a JOIN med b ON b.label = '2' AND b.workers = a.workers WHERE a.label = '4s' AND a.workers = 2
  UNION ALL
  SELECT 2, 10 - a.workers, format('(4) ≤ 0.35 × (3), workers = %s', a.workers), a.ms / b.ms, 0.35,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(0.35 * b.ms))
    FROM med a JOIN med b ON b.label = '3' AND b.workers = a.workers WHERE a.label = '4'
  UNION ALL
  SELECT 3, 10 - a.workers, format('(4) ≤ 2.5 × (1), workers = %s', a.workers), a.ms / b.ms, 2.5,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(2.5 * b.ms))
    FROM med a JOIN med b ON b.label = '1' AND b.workers = a.workers WHERE a.label = '4'
  UNION ALL
  SELECT 5, substr(r.label, 2)::int, format('(%s) rfm.refresh ≤ 3 × (%s) rfm.analyze of the same rows', r.label, a.label),
         r.ms / a.ms, 3, format('%s ms vs %s ms; limit %s ms', round(r.ms), round(a.ms), round(3 * a.ms))
    FROM med r JOIN med a ON a.label = 'A' || substr(r.label, 2) AND a.workers = r.workers WHERE r.label IN ('R1', 'R2')
  UNION ALL
  SELECT 4, 0, 'analysis state ≤ 64 bytes per active customer (its peak, table growth included)',
         $state_peak::numeric / $active, 64,
         format('%s MiB for %s active customers', to_char($state_peak / 1048576.0, 'FM999990.0'), $active)
  UNION ALL
  SELECT 4, CASE label WHEN '4' THEN 1 ELSE 2 END, format('whole query ≤ 64 bytes per active customer (peak RSS growth of (%s), serial; stricter than the target)', label),
         (after_kb - before_kb) * 1024.0 / $active, 64,
         format('%s MiB for %s active customers', to_char((after_kb - before_kb) / 1024.0, 'FM999990.0'), $active)
    FROM mem WHERE label IN ('4', '4s')
  UNION ALL
  SELECT 6, 10 - a.workers, format('lifecycle time ≤ 1.3 × plain analysis: (4l) vs (4s), workers = %s', a.workers), a.ms / b.ms, 1.3,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(1.3 * b.ms))
    FROM med a JOIN med b ON b.label = '4s' AND b.workers = a.workers WHERE a.label = '4l'
  UNION ALL
  SELECT 6, 20 - a.workers, format('lifecycle time ≤ 1.3 × plain analysis of the same rows: (4l) vs (4a), workers = %s', a.workers), a.ms / b.ms, 1.3,
         format('%s ms vs %s ms; limit %s ms', round(a.ms), round(b.ms), round(1.3 * b.ms))
    FROM med a JOIN med b ON b.label = '4a' AND b.workers = a.workers WHERE a.label = '4l'
  UNION ALL
  SELECT 7, 0, 'lifecycle state peak ≤ 128 B per customer (its peak, table growth included; customers it holds)',
         $lc_state_peak::numeric / $lc_customers, 128,
         format('%s MiB for %s customers', to_char($lc_state_peak / 1048576.0, 'FM999990.0'), $lc_customers)
  UNION ALL
  SELECT 7, 1, 'lifecycle whole query ≤ 128 B per customer (peak RSS growth of (4l), serial; stricter than the target)',
         (after_kb - before_kb) * 1024.0 / $lc_customers, 128,
         format('%s MiB for %s customers', to_char((after_kb - before_kb) / 1024.0, 'FM999990.0'), $lc_customers)
    FROM mem WHERE label = '4l'
)
SELECT format('| %s | %s (%s) | %s |', name,
              to_char(value, 'FM999990.00') || CASE WHEN ord IN (4, 7) THEN ' B' ELSE '×' END, detail,
              CASE WHEN value <= limit_ THEN 'met'
                   ELSE format('**missed**: %s%% over the limit', to_char(100 * (value / limit_ - 1), 'FM999990')) END)
FROM targets ORDER BY ord, sub;
SELECT '';
\\endif
EOF

if [ "$have_ext" = t ]; then
  {
    echo "### Managed tables over 20 daily refreshes (bytes, pg_total_relation_size after VACUUM)"
    echo
    echo "| refresh | assignment | runs | run_segments | history | history rows | segmentations |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    while read -r d rest; do
      declare -A sz=()
      for kv in $rest; do sz[${kv%%=*}]=${kv#*=}; done
      echo "| $d | ${sz[assignment]} | ${sz[runs]} | ${sz[run_segments]} | ${sz[history]} | ${sz[history_rows]} | ${sz[segmentations]} |"
      unset sz
    done <"$work/sizes.txt"
    echo
    echo "Refresh 1 is the state after the timed rounds (a first refresh and one after a day); refreshes 2 to 21 each add one day of orders and move as_of one day on. The assignment is one rfm.analysis value per segmentation, replaced in place; the history grows by one row per customer whose segment changed."
    echo
  } >>"$REPORT"
fi

{
  echo "### Methods"
  echo
  echo "- Window: \`ordered_at > timestamptz '2025-12-31 23:59:59+00' - interval '12 months' AND ordered_at <= timestamptz '2025-12-31 23:59:59+00'\`; options \`{\"as_of\": \"2025-12-31 23:59:59+00\", \"period\": \"12 months\"}\`. Queries: benches/queries/*.sql."
  echo "- (2) is wrapped as \`SELECT count(*), max(..), sum(..), sum(..) FROM (<GROUP BY>) s\`: the outer aggregate reads every column, because PostgreSQL drops subquery aggregates whose output is unused. (1), (3), (4) return one or a dozen rows; (5a)/(5b) write a table (dropped, untimed, before each run)."
  echo "- Analysis state: rfm.analyze reports at DEBUG1 the bytes of its hash table and key arena at the end of the scan and at their peak (while the table grows, the old and the new table exist together); serial plan, so one state holds every customer."
  echo "- Memory: one fresh connection per query, serial plan; the backend first scans bench.tx (so its shared-buffer pages are already counted) and runs the query on 10,000 rows (code and caches loaded), then VmHWM from /proc/<pid>/status is read before and after the measured query. The growth is the peak of all private memory of the query (palloc and Rust heap, including the final sort/scoring work and the accessor's output), an upper bound of the analysis state alone; divided by the active customers."
  echo "- Lifecycle (4l): the same aggregate with \`\"scheme\": \"lifecycle\"\` (SPEC §10). Its population is \`all\`, so it reads every row up to as_of (the filter \`ordered_at <= as_of\` removes no row of bench.tx) and keeps the full customer metrics (64-byte entries) of every customer it sees; its time is compared with (4s) at the same max_parallel_workers_per_gather, its state (DEBUG1, serial) and peak RSS growth are divided by the customers the state holds (the N of the DEBUG1 line), not by the active ones."
  echo "- Plain analysis of the same rows (4a): (4s) without its window filter, every row up to as_of as (4l) reads them; rows before the window are only seen. (4l) against (4a) is the cost of the lifecycle scheme itself; (4l) against (4s) also counts the rows before the window, which only the lifecycle scheme needs."
  echo "- Correctness guard: benches/reference.sql computes the SPEC semantics in plain SQL (percentile_cont thresholds, score = count of thresholds exceeded, fm = ceil((f+m)/2), the standard grid as a table); benches/compare.sql compares per-segment customers and revenue with rfm.summary and every per-customer field with the (5a) table; benches/lifecycle_check.sql computes the lifecycle metrics of every customer with GROUP BY and the stages with a CASE in SPEC §10's order and compares stage, frequency, lifetime orders and value, tenure and days since the last purchase with rfm.customers of (4l); any difference fails the run."
  echo
  echo "<details><summary>Plan shapes (EXPLAIN, costs off; keys and filters left out)</summary>"
  echo
  echo '```'
  sed 's/^@@ /\n/' "$work/plans.out"
  echo '```'
  echo
  echo "</details>"
} >>"$REPORT"

if [ "$have_ext" = t ]; then
  {
    echo
    echo "<details><summary>Correctness guard output</summary>"
    echo
    echo '```'
    cat "$work/guard.out"
    echo
    cat "$work/lifecycle.out"
    echo '```'
    echo
    echo "</details>"
  } >>"$REPORT"
fi

cat "$REPORT"
say "report written to $REPORT"
