#!/usr/bin/env bash
# Every check, in order, stopping at the first failure:
#   1. scripts/setup.sh
#   2. cargo fmt --all --check
#   3. cargo clippy --workspace --all-targets --features pg15 -- -D warnings
#   4. cargo test -p rfm_core                                  (the pure crate)
#   5. cargo pgrx test pg15 --runas postgres --pgdata /tmp/rfm-test-pgdata   (#[pg_test]s)
#   6. SQL regression tests (scripts/regress.sh): tests/pg_regress/sql/NAME.sql must print
#      exactly tests/pg_regress/expected/NAME.out (setup.sql first, then the rest by name)
#   7. integration tests (tests/integration/run.sh): NOTIFY, concurrent refresh and read,
#      pg_cron scheduling, and that docs/reference.md matches what its examples print
#   8. tests/integration/latin1.sh and sql_ascii.sh: everything in a LATIN1 database, and keys
#      byte for byte in a SQL_ASCII one
#   9. tests/clv/run.sh: rfm.clv_fit on the CDNOW data against the published estimates and
#      lifetimes (a virtualenv under target/ with pinned packages from PyPI)
# and closes with one line "N passed, 0 failed" (the sum over every suite).
#   bash scripts/test.sh          (or: make test)
#   TEST_PGDATA=/tmp/a bash scripts/test.sh   (another directory for the pgrx test cluster)
#
# `cargo pgrx regress` (0.18.1) cannot run as root: it ignores --runas and --pgdata when it
# starts its server, so scripts/regress.sh runs pg_regress itself on a scratch cluster owned
# by postgres, with the settings cargo pgrx uses (psql VERBOSITY=terse,
# client_min_messages=warning); a test without expected output is an error there, not
# silently skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# where the pgrx test cluster lives (override to run two checkouts side by side)
TEST_PGDATA=${TEST_PGDATA:-/tmp/rfm-test-pgdata}

started=$SECONDS
step_start=$SECONDS
step() { echo; echo "==> test: $*"; step_start=$SECONDS; }
took() { echo "    ($1 took $((SECONDS - step_start)) s)"; }
logs=$(mktemp -d /tmp/rfm-test-logs-XXXXXX)

if [ "$(id -u)" -eq 0 ]; then
  as_pg=(sudo -u postgres) # PostgreSQL refuses to run as root
else
  as_pg=()
fi

cleanup() {
  local status=$?
  if [ "$status" -eq 0 ]; then
    rm -rf "$TEST_PGDATA" "$logs"
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

step "SQL regression tests (scripts/regress.sh: tests/pg_regress)"
bash scripts/regress.sh 2>&1 | tee "$logs/regress.log"
# pg_regress up to 15 prints "test NAME ... ok", from 16 on "ok N - NAME"
regress_passed=$(grep -cE '^(test .* \.\.\. ok|ok [0-9]+ )' "$logs/regress.log" || true)
expected_sql=$(find tests/pg_regress/sql -name '*.sql' | wc -l)
if [ "$regress_passed" -ne "$expected_sql" ]; then
  echo "test: expected $expected_sql SQL tests to pass, counted $regress_passed" >&2
  exit 1
fi
took "SQL regression tests"

step "integration tests (tests/integration/run.sh: NOTIFY, concurrency, pg_cron, docs)"
bash tests/integration/run.sh 2>&1 | tee "$logs/integration.log"
integration_passed=$(sed -n 's/^\([0-9][0-9]*\) passed, 0 failed$/\1/p' "$logs/integration.log")
[ -n "$integration_passed" ] || { echo "test: integration tests did not report" >&2; exit 1; }
took "integration tests"

step "LATIN1 database (tests/integration/latin1.sh)"
bash tests/integration/latin1.sh 2>&1 | tee "$logs/latin1.log"
latin1_passed=$(sed -n 's/^\([0-9][0-9]*\) passed, 0 failed$/\1/p' "$logs/latin1.log")
[ -n "$latin1_passed" ] || { echo "test: LATIN1 tests did not report" >&2; exit 1; }
took "LATIN1 tests"

step "SQL_ASCII database (tests/integration/sql_ascii.sh)"
bash tests/integration/sql_ascii.sh 2>&1 | tee "$logs/sql_ascii.log"
sql_ascii_passed=$(sed -n 's/^\([0-9][0-9]*\) passed, 0 failed$/\1/p' "$logs/sql_ascii.log")
[ -n "$sql_ascii_passed" ] || { echo "test: SQL_ASCII tests did not report" >&2; exit 1; }
took "SQL_ASCII tests"

step "CLV against the published estimates and lifetimes (tests/clv/run.sh)"
bash tests/clv/run.sh 2>&1 | tee "$logs/clv.log"
clv_passed=$(sed -n 's/^\([0-9][0-9]*\) passed, 0 failed$/\1/p' "$logs/clv.log")
[ -n "$clv_passed" ] || { echo "test: CLV tests did not report" >&2; exit 1; }
took "CLV tests"

echo
echo "==> test: all checks passed in $((SECONDS - started)) s" \
  "(rfm_core: $core_passed, pg tests: $pg_passed, SQL: $regress_passed, integration: $integration_passed, LATIN1: $latin1_passed, SQL_ASCII: $sql_ascii_passed, CLV: $clv_passed)"
echo "$((core_passed + pg_passed + regress_passed + integration_passed + latin1_passed + sql_ascii_passed + clv_passed)) passed, 0 failed"
