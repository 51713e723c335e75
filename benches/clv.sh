#!/usr/bin/env bash
# rfm.clv_fit / rfm.clv_customers benchmark (not a test), beside lifetimes fitting the same
# customers from a summary given to it ready-made.
#
#   bash benches/clv.sh                  10M rows (benches/generate.sql), 5 timed runs each
#   ROWS=1000000 RUNS=3 bash benches/clv.sh
#   LIFETIMES_RUNS=1                     timed runs of lifetimes (default 1: it takes minutes)
#   HORIZON=52 DISCOUNT=0.0018           rfm.clv_customers arguments (weeks; 10 % a year)
#   KEEP=1                               leave the scratch cluster running
#   SKIP_SETUP=1 / SKIP_INSTALL=1        do not run scripts/setup.sh / cargo pgrx install
#   LIB=path.so                          benchmark this copy of the library (with SKIP_INSTALL=1:
#                                        install under `flock /tmp/rfm-pg.lock` and copy it first,
#                                        so the lock is not held for the whole benchmark)
#   REPORT=path                          markdown report (default target/bench/clv.md)
#
# Installs the release build, copies the installed library to the scratch directory and
# points the scratch database's functions at the copy (so a concurrent `cargo pgrx install`
# cannot swap the code under the benchmark), starts a scratch PostgreSQL 15 cluster owned by
# postgres under /tmp on a free port >= 56100 with the settings of benches/run.sh, generates
# bench.tx, and times, interleaved:
#   F2 / F0  rfm.clv_fit over all of bench.tx (as_of 2025-12-31, weeks), summary pass
#            included, max_parallel_workers_per_gather 2 and 0;
#   C        rfm.clv_customers for every customer (horizon HORIZON, discount DISCOUNT);
# then exports every customer's (x, t_x, T, avg_spend) and times lifetimes 0.11.3
# (BetaGeoFitter + GammaGammaFitter fits, and its predictions for every customer) on it, in
# the virtualenv of tests/clv/run.sh. Targets: fit <= 5 s, customers <= 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ROWS=${ROWS:-10000000}
RUNS=${RUNS:-5}
LIFETIMES_RUNS=${LIFETIMES_RUNS:-1}
HORIZON=${HORIZON:-52}
DISCOUNT=${DISCOUNT:-0.0018}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
REPORT=${REPORT:-$root/target/bench/clv.md}
for v in ROWS RUNS LIFETIMES_RUNS; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer, got '${!v}'" >&2; exit 2; }
done
if [ "$(id -u)" = 0 ]; then as_pg=(sudo -u postgres); else as_pg=(); fi
say() { printf '==> %s\n' "$*" >&2; }

if [ -z "${SKIP_SETUP:-}" ]; then bash scripts/setup.sh >&2; fi
if [ -z "${SKIP_INSTALL:-}" ]; then
  say "cargo pgrx install --release"
  if [ "$(id -u)" = 0 ]; then
    cargo pgrx install --release --pg-config "$PG_CONFIG" >&2
  else
    cargo pgrx install --release --sudo --pg-config "$PG_CONFIG" >&2
  fi
fi
installed_so="$("$PG_CONFIG" --pkglibdir)/rfm_segmentation.so"
release_so="${CARGO_TARGET_DIR:-$root/target}/release/librfm_segmentation.so"
snapshot=$(mktemp /tmp/rfm-clvbench-lib.XXXXXX)
cp "${LIB:-$installed_so}" "$snapshot"
if cmp -s "$snapshot" "$release_so"; then
  build="release build, library sha256 $(sha256sum "$snapshot" | cut -c1-16)…"
elif [ -z "${SKIP_INSTALL:-}" ]; then
  echo "error: $installed_so is not the release build just installed (another install meanwhile?); run again" >&2
  exit 1
else
  build="library ${LIB:-$installed_so} (not compared with a release build), sha256 $(sha256sum "$snapshot" | cut -c1-16)…"
fi

# the virtualenv with lifetimes (the one tests/clv/run.sh makes)
venv="${CARGO_TARGET_DIR:-$root/target}/clv-venv"
req="$root/tests/clv/requirements.txt"
if [ ! -f "$venv/.requirements" ] || ! cmp -s "$req" "$venv/.requirements"; then
  say "virtualenv $venv (pinned lifetimes from PyPI)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
fi

work=$(mktemp -d /tmp/rfm-clvbench.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then chown postgres: "$work"; fi
port=56100
while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do port=$((port + 1)); done
cleanup() {
  local status=$?
  if [ -n "${KEEP:-}" ]; then
    say "KEEP=1: psql -h $work -p $port -U postgres -d bench; stop: sudo -u postgres $PG_BIN/pg_ctl -D $work/data stop && rm -rf $work"
  else
    "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  rm -f "$snapshot"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$work/lib"
cp "$snapshot" "$work/lib/rfm_segmentation.so"
chmod -R a+rX "$work/lib"

say "scratch cluster in $work on port $port"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$work/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
settings=(
  -p "$port" -k "$work" -c "listen_addresses=''"
  -c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=1GB
  -c effective_cache_size=16GB -c jit=off -c timezone=UTC
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  -c max_wal_size=8GB -c checkpoint_timeout=30min -c autovacuum=off
)
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$work/data" -w -l "$work/server.log" -o "${settings[*]}" start >/dev/null
psql_=("${as_pg[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U postgres)
db=("${psql_[@]}" -d bench)
"${psql_[@]}" -d postgres -c 'CREATE DATABASE bench' >/dev/null
"${db[@]}" -c 'CREATE EXTENSION rfm_segmentation' -c 'CREATE EXTENSION pg_prewarm' >/dev/null
lib="$work/lib/rfm_segmentation"
"${db[@]}" -c "UPDATE pg_catalog.pg_proc SET probin = '$lib' WHERE probin = '\$libdir/rfm_segmentation'" >/dev/null
"${db[@]}" -tA -c "SELECT count(*) FROM pg_proc WHERE proname = 'clv_fit'" | grep -q '^8$' \
  || { echo "error: the installed extension has no rfm.clv_fit" >&2; exit 1; }

say "generating bench.tx: $ROWS rows (benches/generate.sql)"
"${db[@]}" -v ROWS="$ROWS" -f benches/generate.sql
"${db[@]}" -c "SELECT pg_prewarm('bench.tx')" >/dev/null
read -r tx_rows tx_customers < <("${db[@]}" -tA -F ' ' -c "SELECT count(*), count(DISTINCT customer_id) FROM bench.tx")
say "bench.tx: $tx_rows rows, $tx_customers customers"

fit_sql="SELECT length(rfm.clv_fit(customer_id, ordered_at, amount, '{\"as_of\": \"2025-12-31\"}')) FROM bench.tx"
"${db[@]}" -c "CREATE TABLE bench.clv_model AS SELECT rfm.clv_fit(customer_id, ordered_at, amount, '{\"as_of\": \"2025-12-31\"}') AS m FROM bench.tx"
customers_sql="SELECT count(*), sum(clv) FROM rfm.clv_customers((SELECT m FROM bench.clv_model), $HORIZON, $DISCOUNT)"
driver="$work/timings.psql"
{
  echo "SET client_min_messages = warning;"
  echo "LOAD '$lib';"
  echo "\\o /dev/null"
  for run in $(seq 1 "$RUNS"); do
    for w in 2 0; do
      echo "SET max_parallel_workers_per_gather = $w;"
      echo "\\timing on"
      echo "\\echo @@ F$w $run"
      echo "$fit_sql;"
      echo "\\timing off"
    done
    echo "\\timing on"
    echo "\\echo @@ C $run"
    echo "$customers_sql;"
    echo "\\timing off"
  done
} >"$driver"
say "timing: $RUNS runs of F2, F0 and C, interleaved"
"${db[@]}" -f "$driver" >"$work/timings.out" 2>&1
awk '/^@@ / { label=$2; next } /^Time: / { if (label != "") { print label "," $2; label="" } }' \
  "$work/timings.out" >"$work/timings.csv"
[ "$(wc -l <"$work/timings.csv")" = $((3 * RUNS)) ] || { cat "$work/timings.out" >&2; echo "error: could not parse the timings" >&2; exit 1; }

# the model's figures, and every customer's summary for lifetimes
"${db[@]}" -tA -F ',' -c "SELECT model, parameter, value FROM rfm.clv_parameters((SELECT m FROM bench.clv_model))" >"$work/params.csv"
"${db[@]}" -tA -F ',' -c "SELECT model, customers, excluded_customers, log_likelihood, iterations FROM rfm.clv_fit_info((SELECT m FROM bench.clv_model))" >"$work/info.csv"
"${db[@]}" -c "\\copy (SELECT x, t_x, t, avg_spend FROM rfm.clv_customers((SELECT m FROM bench.clv_model), 0)) TO '$work/summary.csv' WITH (FORMAT csv)"

say "lifetimes: $LIFETIMES_RUNS run(s) on the same $tx_customers customers' summary"
"$venv/bin/python" - "$work" "$LIFETIMES_RUNS" "$HORIZON" "$DISCOUNT" >"$work/lifetimes.csv" <<'PY'
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

work, runs, horizon, discount = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
d = pd.read_csv(f"{work}/summary.csv", names=["x", "t_x", "t", "m"])
rep = d[(d.x > 0) & (d.m > 0)]
for run in range(1, runs + 1):
    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(d.x, d.t_x, d.t)
    ggf = GammaGammaFitter().fit(rep.x, rep.m)
    fit_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    x, tx, T = d.x.values, d.t_x.values, d.t.values
    pa = bgf.conditional_probability_alive(x, tx, T)
    ep = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, T)
    spend = ggf.conditional_expected_average_profit(d.x, d.m.fillna(0)).values
    total, prev = np.zeros(len(d)), np.zeros(len(d))
    for k in range(1, int(horizon) + 1):
        e = bgf.conditional_expected_number_of_purchases_up_to_time(k, x, tx, T)
        total += (e - prev) / (1 + discount) ** k
        prev = e
    clv = total * spend
    pred_ms = (time.perf_counter() - t0) * 1000
    print(f"LF,{fit_ms:.1f}")
    print(f"LC,{pred_ms:.1f}")
p = bgf.params_
g = ggf.params_
print(f"P,bg_nbd,r,{p['r']!r}\nP,bg_nbd,alpha,{p['alpha']!r}\nP,bg_nbd,a,{p['a']!r}\nP,bg_nbd,b,{p['b']!r}")
print(f"P,gamma_gamma,p,{g['p']!r}\nP,gamma_gamma,q,{g['q']!r}\nP,gamma_gamma,gamma,{g['v']!r}")
PY

mkdir -p "$(dirname "$REPORT")"
python3 - "$work" "$RUNS" "$tx_rows" "$tx_customers" "$HORIZON" "$DISCOUNT" "$build" >"$REPORT" <<'PY'
import statistics, sys
work, runs, rows, customers, horizon, discount, build = sys.argv[1:8]
t = {}
for line in open(f"{work}/timings.csv"):
    label, ms = line.strip().split(",")
    t.setdefault(label, []).append(float(ms))
lt, lparams = {}, {}
for line in open(f"{work}/lifetimes.csv"):
    parts = line.strip().split(",")
    if parts[0] == "P":
        lparams[(parts[1], parts[2])] = float(parts[3])
    else:
        lt.setdefault(parts[0], []).append(float(parts[1]))
ours = {}
for line in open(f"{work}/params.csv"):
    m, p, v = line.strip().split(",")
    ours[(m, p)] = float(v)
med = lambda v: statistics.median(v)
runs_of = lambda v: " / ".join(f"{x:.0f}" for x in v)
print(f"## CLV: rfm.clv_fit and rfm.clv_customers beside lifetimes\n")
print(f"{int(rows):,} rows, {int(customers):,} customers (benches/generate.sql), as_of 2025-12-31, weeks; {build}.")
print(f"rfm.clv_customers with horizon {horizon} and discount rate {discount} per week; lifetimes 0.11.3 is given the")
print("per-customer summary ready-made (its time does not include reading the transactions).\n")
print("| step | workers | runs (ms) | median (ms) | target | status |")
print("|---|---|---|---|---|---|")
rows_out = [
    ("rfm.clv_fit (summary pass, BG/NBD, Gamma-Gamma, value)", "2", t["F2"], 5000),
    ("rfm.clv_fit (summary pass, BG/NBD, Gamma-Gamma, value)", "0", t["F0"], 5000),
    (f"rfm.clv_customers, every customer", "-", t["C"], 2000),
]
for name, w, v, target in rows_out:
    status = "met" if med(v) <= target else "NOT met"
    print(f"| {name} | {w} | {runs_of(v)} | {med(v):.0f} | <= {target} | {status} |")
print(f"| lifetimes BetaGeoFitter.fit + GammaGammaFitter.fit | - | {runs_of(lt['LF'])} | {med(lt['LF']):.0f} | | |")
print(f"| lifetimes predictions (P(alive), expected purchases, spend, CLV) for every customer | - | {runs_of(lt['LC'])} | {med(lt['LC']):.0f} | | |")
print()
print(f"rfm.clv_fit (workers 2) / lifetimes' fits alone: {med(t['F2']) / med(lt['LF']):.2f}x; "
      f"rfm.clv_customers / lifetimes' predictions: {med(t['C']) / med(lt['LC']):.2f}x\n")
print("| model | parameter | rfm.clv_fit | lifetimes | relative difference |")
print("|---|---|---|---|---|")
for k, v in ours.items():
    l = lparams.get(k)
    if l is None:
        continue
    print(f"| {k[0]} | {k[1]} | {v:.6g} | {l:.6g} | {abs(v - l) / max(abs(v), abs(l)):.1e} |")
PY
cat "$REPORT"
