#!/usr/bin/env bash
# SQL regression tests: tests/pg_regress/sql/*.sql must print exactly
# tests/pg_regress/expected/*.out. Runs pg_regress against a scratch PostgreSQL 15 cluster
# owned by the postgres user under /tmp, on a free port, removed afterwards.
#   scripts/regress.sh            run every test (setup first)
#   scripts/regress.sh abc score  run setup plus the named tests
#   ACCEPT=1 scripts/regress.sh   copy the actual output over the expected output
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
pg_regress="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
[ -x "$pg_regress" ] || { echo "pg_regress not found at $pg_regress (install postgresql-server-dev-15)" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then as_pg=(sudo -u postgres); else as_pg=(); fi

# every test needs its expected output; pg_regress would fail, but say which one clearly
tests=()
if [ $# -gt 0 ]; then
  tests=("$@")
else
  for f in tests/pg_regress/sql/*.sql; do
    name=$(basename "$f" .sql)
    [ "$name" = setup ] || tests+=("$name")
  done
fi
for t in setup "${tests[@]}"; do
  [ -f "tests/pg_regress/sql/$t.sql" ] || { echo "no such test: tests/pg_regress/sql/$t.sql" >&2; exit 1; }
  if [ ! -f "tests/pg_regress/expected/$t.out" ]; then
    if [ -n "${ACCEPT:-}" ]; then
      : >"tests/pg_regress/expected/$t.out"
    else
      echo "missing tests/pg_regress/expected/$t.out (create it with ACCEPT=1 and review it)" >&2
      exit 1
    fi
  fi
done

echo "==> installing the extension into $("$PG_CONFIG" --version)"
if [ "$(id -u)" = 0 ]; then
  cargo pgrx install --pg-config "$PG_CONFIG" >/dev/null
else
  cargo pgrx install --sudo --pg-config "$PG_CONFIG" >/dev/null
fi

work=$(mktemp -d /tmp/rfm-regress.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres: "$work"
port=55500
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do port=$((port + 1)); done
cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting a scratch cluster on port $port"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -w -l "$work/server.log" \
  -o "-p $port -k $work -c listen_addresses='' -c fsync=off" start >/dev/null

# psql as cargo pgrx regress runs it: terse errors, no NOTICEs
launcher=$work/launcher.sh
printf '#!/bin/bash\n$* -v VERBOSITY=terse\n' >"$launcher"
chmod 755 "$launcher"
echo "==> pg_regress: setup ${tests[*]}"
status=0
"${as_pg[@]}" env -u PGDATABASE -u PGHOST -u PGPORT -u PGUSER PGOPTIONS="-c client_min_messages=warning" \
  "$pg_regress" --host="$work" --port="$port" --user=postgres \
  --dbname=rfm_segmentation_regress --inputdir="$root/tests/pg_regress" \
  --outputdir="$work/out" --launcher="$launcher" \
  setup "${tests[@]}" || status=$?

if [ -n "${ACCEPT:-}" ]; then
  for t in setup "${tests[@]}"; do cp "$work/out/results/$t.out" "tests/pg_regress/expected/$t.out"; done
  echo "==> copied actual output to tests/pg_regress/expected (review it with git diff)"
  exit 0
fi
if [ $status -ne 0 ]; then
  [ -f "$work/out/regression.diffs" ] && cat "$work/out/regression.diffs"
  exit $status
fi
