#!/usr/bin/env bash
# Every check, in order, stopping at the first failure:
#   1. scripts/setup.sh
#   2. cargo fmt --all --check
#   3. cargo clippy --workspace --all-targets --features pg15 -- -D warnings
#   4. cargo test -p rfm_core                                  (the pure crate)
#   5. cargo pgrx test pg15 --runas postgres --pgdata /tmp/rfm-test-pgdata   (#[pg_test]s)
#   6. SQL regression tests: tests/pg_regress/sql/NAME.sql must print exactly
#      tests/pg_regress/expected/NAME.out (setup.sql first, then the rest by name)
# and closes with one line "N passed, 0 failed" (unit tests + pg tests + SQL tests).
#   bash scripts/test.sh          (or: make test)
#
# About step 6: `cargo pgrx regress` (0.18.1) cannot run as root: it ignores --runas and
# --pgdata when it starts its server (it runs initdb and pg_ctl as the calling user on
# ~/.pgrx/data-15, port 28815). So this script does what it does, by hand: install the
# extension (debug build), start a scratch cluster as the postgres user in
# /tmp/rfm-regress-pgdata, create a fresh database rfm_segmentation_regress, and run
# PostgreSQL's pg_regress on setup + every test with the same settings cargo pgrx uses
# (psql VERBOSITY=terse, client_min_messages=warning). Unlike cargo pgrx, a test without
# expected output is an error, not silently skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
TEST_PGDATA=/tmp/rfm-test-pgdata
REGRESS_DIR=/tmp/rfm-regress-pgdata
REGRESS_DB=rfm_segmentation_regress
FIRST_PORT=55460

started=$SECONDS
step_start=$SECONDS
step() { echo; echo "==> test: $*"; step_start=$SECONDS; }
took() { echo "    ($1 took $((SECONDS - step_start)) s)"; }
logs=$(mktemp -d /tmp/rfm-test-logs-XXXXXX)

if [ "$(id -u)" -eq 0 ]; then
  as_pg=(sudo -u postgres) # PostgreSQL refuses to run as root
  install_flags=()
else
  as_pg=()
  install_flags=(--sudo) # the extension goes into the system's PostgreSQL directories
fi

regress_up=0
cleanup() {
  local status=$?
  if [ "$regress_up" = 1 ]; then
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ "$status" -eq 0 ]; then
    rm -rf "$REGRESS_DIR" "$TEST_PGDATA" "$logs"
  else
    echo "==> test: FAILED (exit $status); logs kept in $logs" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# An empty directory for a cluster, writable by the user PostgreSQL runs as. A directory
# left behind by an earlier run is removed, unless a server is still running in it.
fresh_pg_dir() {
  local dir=$1 pidfile pid
  if [ -e "$dir" ]; then
    for pidfile in "$dir"/postmaster.pid "$dir"/*/postmaster.pid; do
      [ -f "$pidfile" ] || continue
      pid=$(head -n 1 "$pidfile")
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "test: $dir is in use by a running PostgreSQL (pid $pid); stop it first" >&2
        exit 1
      fi
    done
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  if [ ${#as_pg[@]} -gt 0 ]; then chown postgres:postgres "$dir"; fi
}

# Sum of "N passed" over the `test result:` lines of cargo test output in file $1.
cargo_passed() {
  local n
  n=$(sed -n 's/^test result: ok\. \([0-9][0-9]*\) passed.*/\1/p' "$1" | paste -sd+ - || true)
  echo $((${n:-0}))
}

step "setup (scripts/setup.sh)"
bash scripts/setup.sh
took setup
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

step "cargo fmt --all --check"
cargo fmt --all --check
took fmt

step "cargo clippy --workspace --all-targets --features pg15 -- -D warnings"
cargo clippy --workspace --all-targets --features pg15 -- -D warnings
took clippy

step "cargo test -p rfm_core"
cargo test -p rfm_core 2>&1 | tee "$logs/core.log"
core_passed=$(cargo_passed "$logs/core.log")
took "cargo test"

step "cargo pgrx test pg15 --runas postgres --pgdata $TEST_PGDATA"
fresh_pg_dir "$TEST_PGDATA"
if [ ${#as_pg[@]} -gt 0 ]; then
  cargo pgrx test pg15 --runas postgres --pgdata "$TEST_PGDATA" 2>&1 | tee "$logs/pgrx.log"
else
  cargo pgrx test pg15 --pgdata "$TEST_PGDATA" 2>&1 | tee "$logs/pgrx.log"
fi
pg_passed=$(cargo_passed "$logs/pgrx.log")
took "cargo pgrx test"

step "SQL regression tests (tests/pg_regress)"
regress_passed=0
shopt -s nullglob
sql_files=(tests/pg_regress/sql/*.sql)
shopt -u nullglob
if [ ${#sql_files[@]} -eq 0 ]; then
  echo "    no SQL regression tests in tests/pg_regress/sql: 0 tests"
else
  # every test needs its expected output (cargo pgrx regress would silently skip it)
  tests=()
  missing=0
  for f in "${sql_files[@]}"; do
    name=$(basename "$f" .sql)
    if [ ! -f "tests/pg_regress/expected/$name.out" ]; then
      echo "test: $f has no expected output tests/pg_regress/expected/$name.out" >&2
      missing=1
    fi
    [ "$name" = setup ] || tests+=("$name")
  done
  [ "$missing" = 0 ] || exit 1
  mapfile -t tests < <(printf '%s\n' "${tests[@]}" | LC_ALL=C sort)
  if [ -f tests/pg_regress/sql/setup.sql ]; then tests=(setup "${tests[@]}"); fi

  echo "    installing the extension (debug build) into $("$PG_CONFIG" --version)"
  cargo pgrx install "${install_flags[@]}" --pg-config "$PG_CONFIG" >"$logs/install.log" 2>&1 \
    || { cat "$logs/install.log" >&2; exit 1; }

  fresh_pg_dir "$REGRESS_DIR"
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$REGRESS_DIR/data" -U postgres -A trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$logs/initdb.log" 2>&1 || { cat "$logs/initdb.log" >&2; exit 1; }
  port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || [ -e "$REGRESS_DIR/.s.PGSQL.$1" ]; }
  port=$FIRST_PORT
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "    starting a scratch cluster in $REGRESS_DIR (port $port, unix socket only)"
  # the server only listens on its own socket directory, so the port cannot clash
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$REGRESS_DIR/data" -l "$REGRESS_DIR/server.log" -w -t 60 \
    -o "-p $port -k $REGRESS_DIR -c listen_addresses='' -c fsync=off -c client_min_messages=warning" \
    start >/dev/null || { cat "$REGRESS_DIR/server.log" >&2; exit 1; }
  regress_up=1
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$REGRESS_DIR" -p "$port" -U postgres -d postgres \
    -c "CREATE DATABASE $REGRESS_DB"

  # what cargo pgrx regress runs psql through (errors without DETAIL/CONTEXT lines)
  launcher=$REGRESS_DIR/launcher.sh
  printf '#!/bin/bash\n$* -v VERBOSITY=terse\n' >"$launcher"
  chmod 755 "$launcher"
  mkdir -p "$REGRESS_DIR/out"
  pg_regress="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
  echo "    pg_regress: ${tests[*]}"
  status=0
  (cd "$REGRESS_DIR" && env -u PGDATABASE -u PGHOST -u PGPORT -u PGUSER "$pg_regress" \
    --host="$REGRESS_DIR" --port="$port" --user=postgres --use-existing --dbname="$REGRESS_DB" \
    --inputdir="$root/tests/pg_regress" --outputdir="$REGRESS_DIR/out" --launcher="$launcher" \
    "${tests[@]}") >"$logs/regress.log" 2>&1 || status=$?
  cat "$logs/regress.log"
  # pg_regress up to 15 prints "test NAME ... ok", from 16 on "ok N - NAME"
  regress_passed=$(grep -cE '^(test .* \.\.\. ok|ok [0-9]+ )' "$logs/regress.log" || true)
  if [ "$status" -ne 0 ]; then
    [ -f "$REGRESS_DIR/out/regression.diffs" ] && cat "$REGRESS_DIR/out/regression.diffs"
    echo "test: SQL regression tests failed (output in $REGRESS_DIR/out)" >&2
    exit "$status"
  fi
  if [ "$regress_passed" -ne ${#tests[@]} ]; then
    echo "test: expected ${#tests[@]} SQL tests to pass, counted $regress_passed" >&2
    exit 1
  fi
fi
took "SQL regression tests"

echo
echo "==> test: all checks passed in $((SECONDS - started)) s" \
  "(rfm_core: $core_passed, pg tests: $pg_passed, SQL: $regress_passed)"
echo "$((core_passed + pg_passed + regress_passed)) passed, 0 failed"
