#!/usr/bin/env bash
# The demo ("main job"): builds and installs rfm_segmentation into the Debian PostgreSQL 15,
# starts a scratch cluster in a fresh directory under /tmp on a free port, loads the sample
# shop (examples/sample_data.sql) and prints its RFM segmentation (examples/demo.sql).
# The cluster is stopped and removed at exit, unless KEEP=1: then it is left running and
# the script prints how to connect to it and how to remove it.
#   bash scripts/demo.sh          (or: make demo)
#   KEEP=1 bash scripts/demo.sh
#   DEMO_SQL=examples/demo_primitives.sql bash scripts/demo.sh   (the same from the primitives)
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PG_BIN/pg_config
DB=rfm_demo
FIRST_PORT=55432
KEEP=${KEEP:-0}
DEMO_SQL=${DEMO_SQL:-examples/demo.sql}
[ -f "$DEMO_SQL" ] || { echo "demo: no such file: $DEMO_SQL" >&2; exit 1; }

started=$SECONDS
step_start=$SECONDS
step() { echo; echo "==> demo: $*"; step_start=$SECONDS; }
took() { echo "    ($1 took $((SECONDS - step_start)) s)"; }

step "setup (scripts/setup.sh)"
bash scripts/setup.sh
took setup
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

step "building and installing the extension (release) into $("$PG_CONFIG" --version)"
if [ "$(id -u)" -eq 0 ]; then
  cargo pgrx install --release --pg-config "$PG_CONFIG"
  as_pg=(sudo -u postgres) # PostgreSQL refuses to run as root
else
  cargo pgrx install --release --sudo --pg-config "$PG_CONFIG"
  as_pg=()
fi
took install

# --- scratch cluster ---------------------------------------------------------------
work=$(mktemp -d /tmp/rfm-demo-XXXXXX)
server_up=0
port=
cleanup() {
  local status=$?
  if [ "$KEEP" != 0 ] && [ "$server_up" = 1 ]; then
    local who=""
    [ ${#as_pg[@]} -gt 0 ] && who="${as_pg[*]} "
    echo
    echo "==> demo: KEEP=$KEEP, the cluster is still running:"
    echo "    connect: ${who}$PG_BIN/psql -h $work -p $port -U postgres $DB"
    echo "         or: psql 'host=127.0.0.1 port=$port user=postgres dbname=$DB'"
    echo "    remove:  ${who}$PG_BIN/pg_ctl -D $work/data -m fast stop && rm -rf $work"
    exit "$status"
  fi
  if [ "$server_up" = 1 ]; then
    echo "==> demo: stopping and removing the scratch cluster in $work"
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "creating a scratch cluster in $work"
[ ${#as_pg[@]} -gt 0 ] && chown postgres:postgres "$work"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
  --no-sync >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }

# a TCP port that nothing answers on, from FIRST_PORT up; if another server grabs it
# between the check and our start, try the next one
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$FIRST_PORT
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "    starting PostgreSQL on 127.0.0.1:$port (socket in $work)"
  if "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w -t 60 \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c fsync=off -c timezone=UTC" \
    start >/dev/null; then
    server_up=1
    break
  fi
  if [ "$attempt" -lt 10 ] && grep -q "could not bind\|could not create any TCP/IP sockets" "$work/server.log"; then
    port=$((port + 1))
    continue
  fi
  cat "$work/server.log" >&2
  exit 1
done
[ "$server_up" = 1 ] || { echo "demo: could not start PostgreSQL" >&2; exit 1; }

psql=("$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)
"${psql[@]}" -q -d postgres -c "CREATE DATABASE $DB"
"${psql[@]}" -q -d "$DB" -c "CREATE EXTENSION rfm_segmentation"
echo "    database $DB with extension rfm_segmentation $("${psql[@]}" -At -d "$DB" \
  -c "SELECT extversion FROM pg_extension WHERE extname = 'rfm_segmentation'")"
took cluster

step "loading the sample shop (examples/sample_data.sql)"
"${psql[@]}" -q -d "$DB" -f examples/sample_data.sql
"${psql[@]}" -d "$DB" -c "SELECT (SELECT count(*) FROM sample.customers) AS customers,
  count(*) AS transactions, count(*) FILTER (WHERE amount < 0) AS returns,
  min(ordered_at) AS first_at, max(ordered_at) AS last_at FROM sample.transactions"
took "loading"

step "RFM segmentation ($DEMO_SQL)"
"${psql[@]}" -d "$DB" -f "$DEMO_SQL"
took "$(basename "$DEMO_SQL")"

echo
echo "==> demo: done in $((SECONDS - started)) s"
