#!/usr/bin/env bash
# rfm.clv_fit against an independent implementation (SPEC §12): the CDNOW transactions that
# the lifetimes package ships, fitted in a scratch PostgreSQL 15 cluster and compared with
# the published estimates and with lifetimes (tests/clv/check_lifetimes.py).
#
# Makes (or reuses) a virtualenv under target/clv-venv with the pinned versions of
# tests/clv/requirements.txt from PyPI, installs the extension (debug build), starts a
# scratch cluster owned by postgres under /tmp on a free port, runs the checks, and ends
# with "N passed, M failed" (exit status non-zero when anything failed).
#   bash tests/clv/run.sh        (under `flock /tmp/rfm-pg.lock` when others share the server)
#   SKIP_INSTALL=1 bash tests/clv/run.sh   (the extension is installed already)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
source tests/integration/scratch_cluster.sh
fail() { echo "clv: $*" >&2; exit 1; }

venv="${CARGO_TARGET_DIR:-$root/target}/clv-venv"
req="$root/tests/clv/requirements.txt"
stamp="$venv/.requirements"
if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
  echo "==> clv: virtualenv $venv with $(grep -c '^[A-Za-z]' "$req") pinned packages from PyPI"
  command -v python3 >/dev/null || fail "python3 not found (scripts/setup.sh installs it)"
  rm -rf "$venv"
  python3 -m venv "$venv" || fail "python3 -m venv failed (on Debian: apt-get install python3-venv; scripts/setup.sh does)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" \
    || fail "pip could not install $req (is PyPI reachable?)"
  cp "$req" "$stamp"
fi
"$venv/bin/python" -c "import lifetimes" || fail "lifetimes does not import in $venv"

if [ -z "${SKIP_INSTALL:-}" ]; then
  echo "==> clv: installing the extension"
  if [ "$(id -u)" = 0 ]; then
    cargo pgrx install --pg-config "$PG_BIN/pg_config" >/dev/null
  else
    cargo pgrx install --sudo --pg-config "$PG_BIN/pg_config" >/dev/null
  fi
fi

start_scratch_cluster clv 55700
psql_=("${as_pg[@]}" "$PG_BIN/psql" -h "$work" -p "$port" -U postgres -d rfm_clv)
"${as_pg[@]}" "$PG_BIN/psql" -X -q -h "$work" -p "$port" -U postgres -d postgres -c "CREATE DATABASE rfm_clv"
"${psql_[@]}" -X -q -c "CREATE EXTENSION rfm_segmentation"

echo "==> clv: CDNOW against the published estimates and lifetimes"
"$venv/bin/python" tests/clv/check_lifetimes.py "${psql_[@]}"
