#!/usr/bin/env bash
# Regenerates docs/reference.md from docs/reference.src.md: installs the extension, starts a
# scratch cluster (with pg_cron, as the integration test does), runs every example with
# scripts/docs.py and writes their output into the reference.
#   bash scripts/docs.sh           write docs/reference.md
#   bash scripts/docs.sh --check   fail if docs/reference.md is out of date
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ -z "${SKIP_INSTALL:-}" ]; then
  if [ "$(id -u)" = 0 ]; then
    cargo pgrx install --pg-config "$PG_CONFIG" >&2
  else
    cargo pgrx install --sudo --pg-config "$PG_CONFIG" >&2
  fi
fi
. tests/integration/scratch_cluster.sh
start_scratch_cluster docs 55800 -c shared_preload_libraries=pg_cron -c cron.database_name=rfm_docs \
  -c cron.use_background_workers=on -c max_worker_processes=16 -c cron.timezone=UTC
"${as_pg[@]}" psql -X -q -h "$work" -p "$port" -U postgres -d postgres -c "CREATE DATABASE rfm_docs"
python3 scripts/docs.py "$@" -h "$work" -p "$port" -U postgres -d rfm_docs
