# Sourced by the integration tests: a scratch PostgreSQL 15 cluster owned by the postgres
# user in a fresh directory under /tmp, on the first free port from FIRST_PORT, stopped and
# removed when the sourcing script exits.
#   start_scratch_cluster NAME FIRST_PORT [extra server options, e.g. -c key=value ...]
# sets: as_pg (command prefix to run as postgres), work (the directory; the server log is
# $work/server.log), port.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ "$(id -u)" = 0 ]; then as_pg=(sudo -u postgres); else as_pg=(); fi

start_scratch_cluster() {
  local name=$1 first_port=$2
  shift 2
  work=$(mktemp -d "/tmp/rfm-$name.XXXXXX")
  chmod 755 "$work"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; fi
  port=$first_port
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do port=$((port + 1)); done
  trap stop_scratch_cluster EXIT
  "${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -w -l "$work/server.log" \
    -o "-p $port -k $work -c listen_addresses='' -c fsync=off $*" start >/dev/null
}

stop_scratch_cluster() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
