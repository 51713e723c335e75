//! The engine (`State`, merge through serialization, `finalize`, the `rfm.analysis` reader)
//! against the SPEC written out naively, on random rows: customers, scores, segments, ABC
//! tiers, transactions and the excluded customers.

use rfm_core::analysis::{
    finalize, Analysis, Config, CustomerRow, Days, Key, Method, Money, State,
};
use rfm_core::numeric::Decimal;
use rfm_core::{abc, scheme};

const DAY: i64 = 86_400_000_000;

fn config(method: Method) -> Config {
    Config {
        as_of: 100 * DAY,
        as_of_default: false,
        window_start: 100 * DAY - 365 * DAY,
        period: "12 months".into(),
        buckets: 5,
        scheme: Some(scheme::Segmenter::builtin("standard").unwrap()),
        metrics: false,
        method,
        fixed: None,
        abc_shares: abc::DEFAULT_SHARES.to_vec(),
        abc_names: vec!["A".into(), "B".into(), "C".into()],
        abc_min_sales: None,
        keep_excluded: false,
        clv: None,
    }
}

/// UTC days: day d starts at d * DAY.
fn days(c: &Config) -> Days {
    let first = (c.window_start / DAY) as i32 - 1500;
    let last = (c.as_of / DAY) as i32 + 1;
    Days {
        first_day: first,
        midnights: (first..=last).map(|d| d as i64 * DAY).collect(),
        as_of_day: (c.as_of / DAY) as i32,
    }
}

fn dec(units: i128, scale: u32) -> Decimal {
    Decimal { units, scale }
}

/// The SPEC written out naively: group the rows, sort everything, count thresholds.
fn reference(rows: &[(i64, i64, i128)], c: &Config, d: &Days, float: bool) -> Vec<CustomerRow> {
    use std::collections::BTreeMap;
    // key -> (latest purchase, purchases, total units, rows in window)
    let mut by_key: BTreeMap<i64, (Option<i64>, i64, i128, f64)> = BTreeMap::new();
    for &(k, t, units) in rows {
        if t <= c.window_start || t > c.as_of {
            continue;
        }
        let e = by_key.entry(k).or_insert((None, 0, 0, 0.0));
        if units >= 0 {
            e.0 = Some(e.0.map_or(t, |x: i64| x.max(t)));
            e.1 += 1;
        }
        e.2 += units;
        e.3 += units as f64 / 100.0; // in row order, as a serial aggregate adds
    }
    let to_money = |u: i128, f: f64| {
        if float {
            Money::Float(f)
        } else {
            Money::Exact(u, 2)
        }
    };
    let active: Vec<(i64, i32, i64, Money)> = by_key
        .into_iter()
        .filter_map(|(k, (last, freq, units, fsum))| {
            last.map(|l| (k, d.as_of_day - d.day_of(l), freq, to_money(units, fsum)))
        })
        .collect();
    let n = c.buckets;
    let score_all = |vals: Vec<f64>, higher: bool| -> Vec<i32> {
        if vals.is_empty() {
            return Vec::new();
        }
        match c.method {
            Method::Quantile => {
                let mut sorted = vals.clone();
                sorted.sort_by(f64::total_cmp);
                let t: Vec<f64> = (1..n)
                    .map(|k| {
                        let x = k as f64 / n as f64 * (sorted.len() as f64 - 1.0);
                        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
                        if hi > lo {
                            sorted[lo] + (x - lo as f64) * (sorted[hi] - sorted[lo])
                        } else {
                            sorted[lo]
                        }
                    })
                    .collect();
                vals.iter()
                    .map(|v| {
                        let c = t.iter().filter(|&&x| *v > x).count() as i32;
                        if higher {
                            1 + c
                        } else {
                            n as i32 - c
                        }
                    })
                    .collect()
            }
            _ => {
                // NTILE(n) OVER (ORDER BY value [DESC for recency], key)
                let mut order: Vec<usize> = (0..vals.len()).collect();
                order.sort_by(|&a, &b| {
                    let o = vals[a].total_cmp(&vals[b]);
                    (if higher { o } else { o.reverse() }).then(active[a].0.cmp(&active[b].0))
                });
                let mut out = vec![0; vals.len()];
                let (small, extra) = (vals.len() / n, vals.len() % n);
                let mut pos = 0;
                for b in 1..=n {
                    let size = small + usize::from(b <= extra);
                    for &i in &order[pos..pos + size] {
                        out[i] = b as i32;
                    }
                    pos += size;
                }
                out
            }
        }
    };
    let r = score_all(active.iter().map(|a| a.1 as f64).collect(), false);
    let f = score_all(active.iter().map(|a| a.2 as f64).collect(), true);
    let m = score_all(active.iter().map(|a| a.3.to_f64()).collect(), true);
    let mut order: Vec<usize> = (0..active.len()).collect();
    order.sort_by(|&a, &b| {
        active[b]
            .3
            .to_f64()
            .total_cmp(&active[a].3.to_f64())
            .then(active[a].0.cmp(&active[b].0))
    });
    // customers below abc_min_sales are left out of the ranking and get no tier
    let ranked = |v: f64| c.abc_min_sales.is_none_or(|min| v >= min);
    let desc: Vec<f64> = order
        .iter()
        .map(|&i| active[i].3.to_f64())
        .filter(|&v| ranked(v))
        .collect();
    let tiers = abc::assign_sorted(&desc, &c.abc_shares);
    let tiers = tiers.into_iter().map(Some).chain(std::iter::repeat(None));
    order
        .iter()
        .zip(tiers)
        .map(|(&i, tier)| CustomerRow {
            key: active[i].0.to_string(),
            recency_days: active[i].1,
            frequency: active[i].2,
            monetary: active[i].3,
            r: r[i],
            f: f[i],
            m: m[i],
            segment: Some(
                scheme::segment(r[i], f[i], m[i], "standard")
                    .unwrap()
                    .to_string(),
            ),
            abc_tier: tier.map(|t| c.abc_names[t].clone()),
            metrics: None,
        })
        .collect()
}

/// The excluded customers, written out naively: a row at or before as_of, no purchase in
/// the window; in key order.
fn reference_excluded(rows: &[(i64, i64, i128)], c: &Config) -> Vec<String> {
    use std::collections::BTreeSet;
    let seen: BTreeSet<i64> = rows
        .iter()
        .filter(|r| r.1 <= c.as_of)
        .map(|r| r.0)
        .collect();
    let active: BTreeSet<i64> = rows
        .iter()
        .filter(|r| r.1 > c.window_start && r.1 <= c.as_of && r.2 >= 0)
        .map(|r| r.0)
        .collect();
    seen.difference(&active).map(|k| k.to_string()).collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
    #[test]
    fn engine_equals_the_naive_reference(
        rows in proptest::collection::vec((0i64..60, -400i64..360, -3000i128..20000), 1..400),
        ntile in proptest::bool::ANY,
        float in proptest::bool::ANY,
        split in 0usize..400,
        min_sales in proptest::option::of(-40i64..160),
        keep_excluded in proptest::bool::ANY,
    ) {
        let mut c = config(if ntile { Method::Ntile } else { Method::Quantile });
        c.abc_min_sales = min_sales.map(|m| m as f64 + 0.5 * (m % 2) as f64);
        c.keep_excluded = keep_excluded;
        let d = days(&c);
        // timestamps a few hours apart around the window, amounts in cents (coarse, so ties)
        let rows: Vec<(i64, i64, i128)> = rows
            .into_iter()
            .map(|(k, t, u)| {
                // some rows a microsecond either side of midnight
                let micros = match u % 5 { 0 => -1, 1 => 0, _ => (u as i64 * 7919) % 1_000_000 };
                (k * 7 - 100, t * DAY / 3 + micros, (u / 250) * 250 + u % 3)
            })
            .collect();
        // key -100 stands for a NULL key: counted with its amount, not analysed
        const NO_KEY: i64 = -100;
        let add = |s: &mut State, &(k, t, u): &(i64, i64, i128)| {
            match (k == NO_KEY, float) {
                (true, true) => s.add_unkeyed_float(t, u as f64 / 100.0).unwrap(),
                (true, false) => s.add_unkeyed_exact(t, dec(u, 2)).unwrap(),
                (false, true) => s.add_float(Key::Int(k), t, u as f64 / 100.0).unwrap(),
                (false, false) => s.add_exact(Key::Int(k), t, dec(u, 2)).unwrap(),
            }
        };
        let all_rows = rows;
        let rows: Vec<(i64, i64, i128)> = all_rows.iter().copied().filter(|r| r.0 != NO_KEY).collect();
        // one state, and two merged halves through serialization (a parallel plan)
        let mut whole = State::new(c.clone(), false, !float);
        let (mut left, mut right) = (State::new(c.clone(), false, !float), State::new(c.clone(), false, !float));
        let mut kept = State::new(c.clone(), false, !float);
        for (i, row) in all_rows.iter().enumerate() {
            add(&mut whole, row);
            add(if i < split { &mut left } else { &mut right }, row);
            if i < split {
                add(&mut kept, row);
            }
        }
        let right_bytes = right.serialize().unwrap();
        left.merge(State::deserialize(&right_bytes).unwrap()).unwrap();
        // the leader's own state handed over whole (its table kept) after a worker's run
        let mut handed = State::deserialize(&right_bytes).unwrap();
        handed.merge(kept).unwrap();
        let expected = reference(&rows, &c, &d, float);
        let bytes = finalize(whole, &d).unwrap();
        let merged = finalize(left, &d).unwrap();
        let handed = finalize(handed, &d).unwrap();
        if !float {
            // exact totals: a parallel plan gives the very same value
            proptest::prop_assert_eq!(&bytes, &merged);
            proptest::prop_assert_eq!(&bytes, &handed);
        } else {
            let h = Analysis::deserialize(&handed, true).unwrap();
            let m = Analysis::deserialize(&merged, true).unwrap();
            proptest::prop_assert_eq!(h.customers.len(), m.customers.len());
        }
        let a = Analysis::deserialize(&bytes, true).unwrap();
        let b = Analysis::deserialize(&merged, true).unwrap();
        proptest::prop_assert_eq!(a.customers.len(), b.customers.len());
        if float {
            // float sums may differ in the last bit by the order of addition
            proptest::prop_assert_eq!(a.customers.len(), expected.len());
            for (x, y) in a.customers.iter().zip(&expected) {
                proptest::prop_assert_eq!(&x.key, &y.key);
                proptest::prop_assert!((x.monetary.to_f64() - y.monetary.to_f64()).abs() < 1e-6);
                proptest::prop_assert_eq!((x.r, x.f, x.m, &x.segment, &x.abc_tier), (y.r, y.f, y.m, &y.segment, &y.abc_tier));
            }
        } else {
            proptest::prop_assert_eq!(&a.customers, &expected);
        }
        let active: std::collections::HashSet<String> =
            expected.iter().map(|c| c.key.clone()).collect();
        let transactions = rows
            .iter()
            .filter(|r| r.1 > c.window_start && r.1 <= c.as_of && active.contains(&r.0.to_string()))
            .count() as i64;
        proptest::prop_assert_eq!(a.overview.transactions, transactions);
        proptest::prop_assert_eq!(b.overview.transactions, transactions);
        let counted: i64 = a.summary.iter().map(|s| s.customers).sum();
        proptest::prop_assert_eq!(counted, expected.len() as i64);
        proptest::prop_assert_eq!(a.overview.active_customers, expected.len() as i64);
        // the excluded customers: counted always, their keys kept when asked for
        let excluded = reference_excluded(&rows, &c);
        proptest::prop_assert_eq!(a.overview.excluded_customers, excluded.len() as i64);
        proptest::prop_assert_eq!(b.overview.excluded_customers, excluded.len() as i64);
        let want = if keep_excluded { excluded } else { Vec::new() };
        proptest::prop_assert_eq!(&Analysis::excluded_keys(&bytes).unwrap(), &want);
        proptest::prop_assert_eq!(&Analysis::excluded_keys(&merged).unwrap(), &want);
        // every row accounted for: rows without a key and after as_of are counted, and the
        // amounts of active, excluded and keyless rows add up to the window's total
        let in_window = |t: i64| t > c.window_start && t <= c.as_of;
        let unkeyed: Vec<i128> = all_rows.iter().filter(|r| r.0 == NO_KEY && in_window(r.1)).map(|r| r.2).collect();
        let window_total: i128 = all_rows.iter().filter(|r| in_window(r.1)).map(|r| r.2).sum();
        let after = all_rows.iter().filter(|r| r.1 > c.as_of).count() as i64;
        for o in [&a.overview, &b.overview] {
            proptest::prop_assert_eq!(o.rows_without_key, unkeyed.len() as i64);
            proptest::prop_assert_eq!(o.rows_after_as_of, after);
            let cents = |m: Money| (m.to_f64() * 100.0).round() as i128;
            proptest::prop_assert_eq!(cents(o.amount_without_key), unkeyed.iter().sum::<i128>());
            proptest::prop_assert_eq!(
                cents(o.total_revenue) + cents(o.excluded_amount) + cents(o.amount_without_key),
                window_total
            );
            if !float {
                proptest::prop_assert_eq!(o.amount_without_key, Money::Exact(unkeyed.iter().sum(), 2));
            }
            let below = expected.iter().filter(|x| x.abc_tier.is_none()).count() as i64;
            proptest::prop_assert_eq!(o.below_min_customers, below);
        }
    }
}

/// The full metrics of SPEC §9 written out naively, for every customer with a row at or
/// before as_of: (key, active, frequency, monetary, purchases, returns, return amount,
/// first, latest, lifetime orders, lifetime value), amounts in cents.
type Naive = (i64, bool, i64, i128, i128, i64, i128, i64, i64, i64, i128);

fn reference_metrics(rows: &[(i64, i64, i128)], c: &Config) -> Vec<Naive> {
    use std::collections::BTreeMap;
    let mut by_key: BTreeMap<i64, Naive> = BTreeMap::new();
    for &(k, t, u) in rows.iter().filter(|r| r.1 <= c.as_of) {
        let e = by_key
            .entry(k)
            .or_insert((k, false, 0, 0, 0, 0, 0, i64::MAX, i64::MIN, 0, 0));
        let in_window = t > c.window_start;
        if in_window {
            e.3 += u;
            if u >= 0 {
                e.1 = true;
                e.2 += 1;
                e.4 += u;
            } else {
                e.5 += 1;
                e.6 -= u;
            }
        }
        if u >= 0 {
            e.7 = e.7.min(t);
            e.8 = e.8.max(t);
            e.9 += 1;
        }
        e.10 += u;
    }
    by_key.into_values().collect()
}

/// SPEC §10, written out as its table reads.
fn lifecycle_stage(
    days_since_last: i32,
    tenure: i32,
    frequency: i64,
    orders: i64,
    value: f64,
) -> &'static str {
    if days_since_last > 730 {
        "Churned"
    } else if days_since_last > 365 {
        "Lapsed"
    } else if value >= 2000.0 && frequency >= 4 {
        "VIP"
    } else if orders >= 4 && days_since_last > 180 {
        "At-Risk"
    } else if orders >= 4 {
        "Loyal"
    } else if orders >= 2 {
        "Repeat Buyer"
    } else if tenure <= 90 {
        "First-Time Buyer"
    } else {
        "One-Time Buyer"
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]
    #[test]
    fn metrics_equal_the_naive_reference(
        rows in proptest::collection::vec((0i64..60, -2400i64..360, -3000i128..20000), 1..400),
        float in proptest::bool::ANY,
        split in 0usize..400,
        lifecycle in proptest::bool::ANY,
    ) {
        let mut c = config(Method::Quantile);
        c.metrics = true;
        if lifecycle {
            c.scheme = Some(scheme::Segmenter::builtin("lifecycle").unwrap());
        }
        let all = lifecycle;
        let d = days(&c);
        // rows over three years before as_of, some after it
        let rows: Vec<(i64, i64, i128)> = rows
            .into_iter()
            .map(|(k, t, u)| {
                let micros = match u % 5 { 0 => -1, 1 => 0, _ => (u as i64 * 7919) % 1_000_000 };
                (k * 7 - 100, 100 * DAY + t * DAY / 2 + micros, (u / 250) * 250 + u % 3)
            })
            .collect();
        let add = |s: &mut State, &(k, t, u): &(i64, i64, i128)| {
            if float {
                s.add_float(Key::Int(k), t, u as f64 / 100.0).unwrap();
            } else {
                s.add_exact(Key::Int(k), t, dec(u, 2)).unwrap();
            }
        };
        let mut whole = State::new(c.clone(), false, !float);
        let (mut left, mut right) = (State::new(c.clone(), false, !float), State::new(c.clone(), false, !float));
        let mut kept = State::new(c.clone(), false, !float);
        for (i, row) in rows.iter().enumerate() {
            add(&mut whole, row);
            add(if i < split { &mut left } else { &mut right }, row);
            if i < split {
                add(&mut kept, row);
            }
        }
        // a parallel plan: both halves read back (sorted runs, merged in one pass), a half
        // as built merged with one read back (its table read in run order), and a half
        // read back merged with one as built (the leader's own state, handed over whole)
        let right_bytes = right.serialize().unwrap();
        let mut runs = State::deserialize(&left.serialize().unwrap()).unwrap();
        runs.merge(State::deserialize(&right_bytes).unwrap()).unwrap();
        left.merge(State::deserialize(&right_bytes).unwrap()).unwrap();
        let mut handed = State::deserialize(&right_bytes).unwrap();
        handed.merge(kept).unwrap();
        let naive = reference_metrics(&rows, &c);
        let scored = reference(&rows, &c, &d, float);
        let out: Vec<&Naive> = naive.iter().filter(|n| n.1 || (all && n.9 > 0)).collect();
        let excluded = naive.len() - out.len();
        let values = [
            finalize(whole, &d).unwrap(),
            finalize(left, &d).unwrap(),
            finalize(runs, &d).unwrap(),
            finalize(handed, &d).unwrap(),
        ];
        if !float {
            proptest::prop_assert_eq!(&values[0], &values[1]);
            proptest::prop_assert_eq!(&values[0], &values[2]);
            proptest::prop_assert_eq!(&values[0], &values[3]);
        }
        for bytes in values {
            let a = Analysis::deserialize(&bytes, true).unwrap();
            proptest::prop_assert_eq!(a.customers.len(), out.len());
            proptest::prop_assert_eq!(a.overview.excluded_customers, excluded as i64);
            proptest::prop_assert_eq!(a.overview.active_customers, scored.len() as i64);
            let money = |x: Money| (x.to_f64() * 100.0).round() as i128;
            for row in &a.customers {
                let n = out.iter().find(|n| n.0.to_string() == row.key).unwrap();
                let m = row.metrics.unwrap();
                proptest::prop_assert_eq!(row.active(), n.1);
                proptest::prop_assert_eq!(row.frequency, n.2);
                proptest::prop_assert_eq!(money(row.monetary), n.3);
                proptest::prop_assert_eq!(money(m.purchases), n.4);
                proptest::prop_assert_eq!(m.returns, n.5);
                proptest::prop_assert_eq!(money(m.return_amount), n.6);
                proptest::prop_assert_eq!((m.first_purchase_at, m.last_purchase_at), (n.7, n.8));
                let tenure = d.as_of_day - d.day_of(n.7);
                let since = d.as_of_day - d.day_of(n.8);
                proptest::prop_assert_eq!((m.tenure_days, m.days_since_last), (tenure, since));
                proptest::prop_assert_eq!(m.lifetime_orders, n.9);
                proptest::prop_assert_eq!(money(m.lifetime_value), n.10);
                if !float {
                    proptest::prop_assert_eq!(m.lifetime_value, Money::Exact(n.10, 2));
                    proptest::prop_assert_eq!(m.return_amount, Money::Exact(n.6, 2));
                }
                match scored.iter().find(|s| s.key == row.key) {
                    Some(s) => {
                        proptest::prop_assert_eq!(row.recency_days, since);
                        proptest::prop_assert_eq!((row.r, row.f, row.m), (s.r, s.f, s.m));
                        // double precision totals depend on the order of the additions (the
                        // halves of a parallel plan), so a customer whose cumulative share
                        // falls on a tier boundary within rounding may land on either side
                        // (seen: a case of 52 rows); exact amounts must agree exactly
                        if !float {
                            proptest::prop_assert_eq!(&row.abc_tier, &s.abc_tier);
                        }
                        if !lifecycle {
                            proptest::prop_assert_eq!(&row.segment, &s.segment);
                        }
                    }
                    None => proptest::prop_assert_eq!((row.r, row.f, row.m, &row.abc_tier), (0, 0, 0, &None)),
                }
                if lifecycle {
                    let stage = lifecycle_stage(since, tenure, n.2, n.9, n.10 as f64 / 100.0);
                    proptest::prop_assert_eq!(row.segment.as_deref(), Some(stage));
                }
            }
            // active customers first, each group by monetary (highest first), then key
            for w in a.customers.windows(2) {
                let (x, y) = (&w[0], &w[1]);
                let k = |r: &CustomerRow| r.key.parse::<i64>().unwrap();
                let ordered = (!x.active(), y.monetary.to_f64(), k(x))
                    .partial_cmp(&(!y.active(), x.monetary.to_f64(), k(y)));
                proptest::prop_assert_eq!(ordered, Some(std::cmp::Ordering::Less));
            }
            let counted: i64 = a.summary.iter().map(|s| s.customers).sum();
            proptest::prop_assert_eq!(counted, out.len() as i64);
        }
    }
}
