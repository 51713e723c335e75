"""rfm.clv_fit against what nobody here wrote (SPEC §12, issue 10).

On the CDNOW transactions that the `lifetimes` package ships (the 2,357-customer sample of
the BG/NBD and Gamma-Gamma papers, and the full 23,570-customer master file), loaded into
PostgreSQL and fitted there with rfm.clv_fit, this checks:

  1. the per-customer inputs (x, t_x, T, mean repeat spend) against the summary the
     papers' authors published for the sample, and against lifetimes' own
     summary_data_from_transaction_data for the master file;
  2. the parameters against the authors' published estimates, to 3 significant figures
     (BG/NBD r = 0.243, alpha = 4.414, a = 0.793, b = 2.426; Gamma-Gamma p = 6.25,
     q = 3.74, gamma = 15.44, weeks, calibration period ending 1997-09-30);
  3. every customer's P(alive), expected purchases (39 and 52 weeks), expected average
     spend and discounted CLV against lifetimes' functions evaluated with our parameters,
     within 1e-4 relative;
  4. our parameters and log-likelihood against lifetimes' own fit of the same summary
     (BetaGeoFitter, GammaGammaFitter), within 1e-3 relative.

Run by tests/clv/run.sh (which makes the virtualenv, the scratch cluster and the database):
    python check_lifetimes.py PSQL-COMMAND...
Prints "ok - ..." or "FAIL - ..." per check and ends with "N passed, M failed".
"""

import csv
import io
import math
import os
import subprocess
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import lifetimes  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

PSQL = sys.argv[1:]
if not PSQL:
    sys.exit("usage: check_lifetimes.py PSQL-COMMAND...")
DATA = os.path.join(os.path.dirname(lifetimes.__file__), "datasets")
AS_OF = "1997-09-30"
REL = 1e-4

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   - {name}" + (f" ({detail})" if detail else ""))
    else:
        failed += 1
        print(f"FAIL - {name}" + (f": {detail}" if detail else ""))
    sys.stdout.flush()


def psql(sql, stdin=None):
    """Runs SQL through psql; returns its standard output (fails loudly)."""
    r = subprocess.run(
        PSQL + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", "SET TimeZone = 'UTC'", "-c", sql],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.exit(f"psql failed ({r.returncode}) on: {sql}\n{r.stderr}")
    return r.stdout


def query_csv(sql):
    out = psql(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)")
    return pd.read_csv(io.StringIO(out))


def sig3(v):
    """v rounded to 3 significant figures."""
    if v == 0:
        return 0.0
    return round(v, 2 - int(math.floor(math.log10(abs(v)))))


def max_rel(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, diff / scale, 0.0)
    return float(np.nanmax(rel)) if len(rel) else 0.0


def load(table, path, cols):
    """Loads a whitespace-separated CDNOW file (customer, yyyymmdd, cds, amount)."""
    rows = io.StringIO()
    w = csv.writer(rows)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or not parts[0].isdigit():
                continue  # blank lines and the master file's header
            c = parts[cols[0]]
            d = parts[cols[1]]
            w.writerow([int(c), f"{d[:4]}-{d[4:6]}-{d[6:]}", parts[cols[2]]])
    psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (customer_id bigint, ordered_on date, amount numeric)")
    psql(f"\\copy {table} FROM STDIN WITH (FORMAT csv)", stdin=rows.getvalue())
    return pd.read_csv(io.StringIO(rows.getvalue()), names=["customer_id", "date", "amount"], parse_dates=["date"])


def fit(table, options):
    psql(
        f"DROP TABLE IF EXISTS {table}_model; CREATE TABLE {table}_model AS "
        f"SELECT rfm.clv_fit(customer_id, ordered_on, amount, '{options}') AS m FROM {table}"
    )
    params = query_csv(f"SELECT model, parameter, value, std_error FROM rfm.clv_parameters((SELECT m FROM {table}_model))")
    info = query_csv(f"SELECT * FROM rfm.clv_fit_info((SELECT m FROM {table}_model))")
    return {r.parameter: r.value for r in params.itertuples()}, info


def customers(table, horizon, discount=0.0):
    df = query_csv(
        f"SELECT * FROM rfm.clv_customers((SELECT m FROM {table}_model), {horizon}, {discount})"
    )
    df["customer_key"] = df["customer_key"].astype(int)
    return df.set_index("customer_key").sort_index()


def lifetimes_models(p):
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({"r": p["r"], "alpha": p["alpha"], "a": p["a"], "b": p["b"]})
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series({"p": p["p"], "q": p["q"], "v": p["gamma"]})
    return bgf, ggf


def compare_predictions(label, table, p):
    """Every customer's predictions against lifetimes' functions with our parameters."""
    bgf, ggf = lifetimes_models(p)
    for horizon in (39, 52):
        ours = customers(table, horizon)
        x, tx, T = ours["x"].values, ours["t_x"].values, ours["t"].values
        if horizon == 39:
            pa = bgf.conditional_probability_alive(x, tx, T)
            check(
                f"{label}: P(alive) of all {len(ours)} customers equals lifetimes' (rel {REL})",
                max_rel(ours["p_alive"], pa) <= REL,
                f"max relative difference {max_rel(ours['p_alive'], pa):.3e}",
            )
        ep = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, T)
        check(
            f"{label}: expected purchases in {horizon} weeks of all {len(ours)} customers equal lifetimes' (rel {REL})",
            max_rel(ours["expected_purchases"], ep) <= REL,
            f"max relative difference {max_rel(ours['expected_purchases'], ep):.3e}",
        )
    ours = customers(table, 52, 0.01)
    spend_ok = ours["expected_avg_spend"].notna()
    x = ours["x"].values
    m = ours["avg_spend"].fillna(0).values
    es = ggf.conditional_expected_average_profit(pd.Series(x), pd.Series(m)).values
    check(
        f"{label}: expected average spend of the {int(spend_ok.sum())} customers with a spend prediction equals lifetimes' (rel {REL})",
        max_rel(ours["expected_avg_spend"][spend_ok], es[spend_ok.values]) <= REL,
        f"max relative difference {max_rel(ours['expected_avg_spend'][spend_ok], es[spend_ok.values]):.3e}",
    )
    # CLV as SPEC §12 defines it, from lifetimes' expected purchases per week
    tx, T = ours["t_x"].values, ours["t"].values
    total = np.zeros(len(ours))
    prev = np.zeros(len(ours))
    for k in range(1, 53):
        e = bgf.conditional_expected_number_of_purchases_up_to_time(k, x, tx, T)
        total += (e - prev) / 1.01**k
        prev = e
    clv = total * es
    check(
        f"{label}: 52-week CLV at 1 % a week of the {int(spend_ok.sum())} customers with a spend prediction equals lifetimes' (rel {REL})",
        max_rel(ours["clv"][spend_ok], clv[spend_ok.values]) <= REL,
        f"max relative difference {max_rel(ours['clv'][spend_ok], clv[spend_ok.values]):.3e}",
    )
    return customers(table, 39)


def compare_lifetimes_fit(label, ours, p, info):
    """lifetimes' own fit of the same summary (given ready-made)."""
    bgf = BetaGeoFitter()
    bgf.fit(ours["x"], ours["t_x"], ours["t"])
    mine = [p["r"], p["alpha"], p["a"], p["b"]]
    theirs = [bgf.params_[k] for k in ("r", "alpha", "a", "b")]
    check(
        f"{label}: BG/NBD parameters equal lifetimes' fit (rel 1e-3)",
        max_rel(mine, theirs) <= 1e-3,
        f"ours {mine}, lifetimes {theirs}",
    )
    ll_ours = float(info.loc[info.model == "bg_nbd", "log_likelihood"].iloc[0])
    ll_theirs = -bgf._negative_log_likelihood_ * len(ours)
    # lifetimes reports the likelihood on its scaled time line (oldest T = 10): undo it
    ll_theirs += ours["x"].sum() * math.log(bgf._scale)
    check(
        f"{label}: BG/NBD log-likelihood equals lifetimes' ({ll_ours:.4f})",
        abs(ll_ours - ll_theirs) <= 1e-6 * abs(ll_theirs),
        f"ours {ll_ours}, lifetimes {ll_theirs}",
    )
    rep = ours[(ours["x"] > 0) & (ours["avg_spend"] > 0)]
    ggf = GammaGammaFitter()
    ggf.fit(rep["x"], rep["avg_spend"])
    mine = [p["p"], p["q"], p["gamma"]]
    theirs = [ggf.params_[k] for k in ("p", "q", "v")]
    check(
        f"{label}: Gamma-Gamma parameters equal lifetimes' fit (rel 1e-3)",
        max_rel(mine, theirs) <= 1e-3,
        f"ours {mine}, lifetimes {theirs}",
    )


def main():
    print(f"lifetimes {lifetimes.__version__}, numpy {np.__version__}, pandas {pd.__version__}")

    # ---- the papers' sample: 2,357 customers
    tx = load("cdnow_sample", os.path.join(DATA, "CDNOW_sample.txt"), (1, 2, 4))
    p, info = fit("cdnow_sample", f'{{"as_of": "{AS_OF}", "time_unit": "week"}}')
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "gamma": 15.44}
    for k, v in published.items():
        check(
            f"sample: {k} = {sig3(p[k])} to 3 significant figures, as published ({v})",
            sig3(p[k]) == sig3(v),
            f"ours {p[k]}",
        )
    check(
        "sample: 2357 customers fitted",
        int(info.loc[info.model == "bg_nbd", "customers"].iloc[0]) == 2357,
        str(info),
    )
    ours = customers("cdnow_sample", 39)
    pub = pd.read_csv(os.path.join(DATA, "cdnow_customers_summary_with_transactions.csv")).set_index("ID").sort_index()
    check(
        "sample: x equals the published summary for every customer",
        (ours["x"].values == pub["x"].values).all(),
    )
    for col, pcol in (("t_x", "t_x"), ("t", "T")):
        d = float(np.max(np.abs(ours[col].values - pub[pcol].values)))
        check(
            f"sample: {col} equals the published summary (2 decimals) for every customer",
            d <= 0.005 + 1e-9,
            f"max difference {d:.4f}",
        )
    rep = ours["x"] > 0
    d = float(np.max(np.abs(ours["avg_spend"][rep].values - pub["zbar"][rep].values)))
    check(
        "sample: mean repeat spend equals the published zbar (2 decimals) for every repeat customer",
        d <= 0.005 + 1e-9,
        f"max difference {d:.4f}",
    )
    compare_predictions("sample", "cdnow_sample", p)
    compare_lifetimes_fit("sample", ours, p, info)

    # ---- the full master file: 23,570 customers
    tx = load("cdnow_master", os.path.join(DATA, "CDNOW_master.txt"), (0, 1, 3))
    p, info = fit("cdnow_master", f'{{"as_of": "{AS_OF}"}}')
    ours = compare_predictions("master", "cdnow_master", p)
    check(f"master: {len(ours)} customers", len(ours) == tx["customer_id"].nunique(), str(len(ours)))
    # lifetimes' summary in days, computed from the same transactions
    s = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", observation_period_end=AS_OF, freq="D"
    ).sort_index()
    s = s.loc[ours.index]
    check("master: x equals lifetimes' frequency for every customer", (ours["x"].values == s["frequency"].values).all())
    check(
        "master: t_x and T (weeks) equal lifetimes' recency and T (days) / 7 for every customer",
        max_rel(ours["t_x"] * 7, s["recency"]) <= 1e-12 and max_rel(ours["t"] * 7, s["T"]) <= 1e-12,
    )
    rep = ours["x"] > 0
    check(
        "master: mean repeat spend equals lifetimes' monetary_value for every repeat customer",
        max_rel(ours["avg_spend"][rep], s["monetary_value"][rep]) <= 1e-9,
        f"max relative difference {max_rel(ours['avg_spend'][rep], s['monetary_value'][rep]):.3e}",
    )
    compare_lifetimes_fit("master", ours, p, info)

    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
