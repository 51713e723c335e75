//! `changes::changes` (what a refresh writes to the history) against a naive comparison of
//! the two runs' customer lists, for integer and text keys, RFM and ABC readings, with and
//! without a default segment for the excluded customers.

use proptest::prelude::*;
use rfm_core::analysis::{finalize, Analysis, Config, Days, Key, Method, State};
use rfm_core::changes::{changes, Reading};
use rfm_core::numeric::Decimal;
use rfm_core::{abc, scheme};
use std::collections::{BTreeMap, HashMap};

const DAY: i64 = 86_400_000_000;

fn config(as_of_day: i64, keep_excluded: bool) -> Config {
    Config {
        as_of: as_of_day * DAY,
        as_of_default: false,
        window_start: as_of_day * DAY - 60 * DAY,
        period: "60 days".into(),
        buckets: 5,
        scheme: Some(scheme::Segmenter::builtin("standard").unwrap()),
        metrics: false,
        method: Method::Quantile,
        fixed: None,
        abc_shares: abc::DEFAULT_SHARES.to_vec(),
        abc_names: vec!["A".into(), "B".into(), "C".into()],
        abc_min_sales: Some(20.0),
        keep_excluded,
        clv: None,
    }
}

fn days(c: &Config) -> Days {
    let first = (c.window_start / DAY) as i32 - 1;
    let last = (c.as_of / DAY) as i32 + 1;
    Days {
        first_day: first,
        midnights: (first..=last).map(|d| d as i64 * DAY).collect(),
        as_of_day: (c.as_of / DAY) as i32,
    }
}

/// One run over `rows` (customer, day, amount in cents) as of `as_of_day`.
fn run(rows: &[(u8, i64, i64)], as_of_day: i64, text: bool, keep_excluded: bool) -> Vec<u8> {
    let c = config(as_of_day, keep_excluded);
    let d = days(&c);
    let mut s = State::new(c, text, true);
    let names: Vec<String> = (0..=255u16).map(|i| format!("Kunde-{i}-ü")).collect();
    for &(k, day, cents) in rows {
        let key = if text {
            Key::Text(names[k as usize].as_bytes())
        } else {
            Key::Int(k as i64 * 1_000_003)
        };
        s.add_exact(
            key,
            day * DAY,
            Decimal {
                units: cents as i128,
                scale: 2,
            },
        )
        .unwrap();
    }
    finalize(s, &d).unwrap()
}

/// Every customer's segment in a run, as the accessors show it.
fn segments(bytes: &[u8], rd: Reading) -> HashMap<String, Option<String>> {
    let mut m: HashMap<String, Option<String>> = Analysis::customers(bytes)
        .unwrap()
        .map(|c| {
            let s = if rd.abc { c.abc_tier } else { c.segment };
            (c.key, s)
        })
        .collect();
    if let Some(d) = rd.default_segment {
        for k in Analysis::excluded_keys(bytes).unwrap() {
            m.insert(k, Some(d.to_string()));
        }
    }
    m
}

fn naive(
    old: Option<(&[u8], Reading)>,
    new: &[u8],
    rd: Reading,
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let before = old.map(|(b, r)| segments(b, r)).unwrap_or_default();
    let after = segments(new, rd);
    let mut out = BTreeMap::new();
    for k in before.keys().chain(after.keys()) {
        let from = before.get(k).cloned().flatten();
        let to = after.get(k).cloned().flatten();
        if from != to {
            out.insert(k.clone(), (from, to));
        }
    }
    out
}

fn rows() -> impl Strategy<Value = Vec<(u8, i64, i64)>> {
    prop::collection::vec((0u8..60, 0i64..130, -2_000i64..30_000), 0..300)
}

proptest! {
    #[test]
    fn changes_equal_the_naive_comparison(
        rows1 in rows(), rows2 in rows(), text in any::<bool>(), abc_old in any::<bool>(),
        abc_new in any::<bool>(), default_old in any::<bool>(), default_new in any::<bool>(),
        first in any::<bool>(),
    ) {
        let old = run(&rows1, 100, text, default_old);
        let mut all = rows1.clone();
        all.extend(rows2);
        let new = run(&all, 110, text, default_new);
        let rd_old = Reading { abc: abc_old, default_segment: (abc_old && default_old).then_some("C") };
        let rd_new = Reading { abc: abc_new, default_segment: (abc_new && default_new).then_some("C") };
        let prev = (!first).then_some((old.as_slice(), rd_old));
        let got = changes(prev, &new, rd_new).unwrap();
        let mut keys: Vec<&str> = got.iter().map(|c| c.key.as_str()).collect();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len(), got.len(), "a customer reported twice");
        // the scores and metrics before and after are what each run's customers say
        let snapshot = |bytes: &[u8], key: &str| {
            Analysis::customers(bytes).unwrap().find(|c| c.key == key).map(|c| {
                (c.active().then_some(c.recency_days), c.frequency, c.monetary,
                 (c.r > 0).then_some([c.r as u8, c.f as u8, c.m as u8]))
            })
        };
        let flat = |s: Option<rfm_core::analysis::Snapshot>| {
            s.map(|s| (s.recency_days, s.frequency, s.monetary, s.scores))
        };
        for ch in &got {
            prop_assert_eq!(flat(ch.after), snapshot(&new, &ch.key));
            let want = prev.and_then(|(b, _)| snapshot(b, &ch.key));
            prop_assert_eq!(flat(ch.before), want);
        }
        let got: BTreeMap<String, (Option<String>, Option<String>)> =
            got.into_iter().map(|c| (c.key, (c.from, c.to))).collect();
        prop_assert_eq!(got, naive(prev, &new, rd_new));
    }
}

#[test]
fn the_first_run_enters_everyone_with_their_money() {
    let new = run(
        &[(1, 99, 1000), (2, 98, 500), (2, 97, -100)],
        100,
        false,
        false,
    );
    let got = changes(
        None,
        &new,
        Reading {
            abc: false,
            default_segment: None,
        },
    )
    .unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|c| c.from.is_none() && c.to.is_some()));
    let m: Vec<String> = got.iter().map(|c| c.monetary.unwrap().to_text()).collect();
    assert!(
        m.contains(&"10.00".to_string()) && m.contains(&"4.00".to_string()),
        "{m:?}"
    );
}

#[test]
fn an_unchanged_run_has_no_changes() {
    let a = run(
        &[(1, 99, 1000), (2, 98, 500), (3, 50, 700)],
        100,
        true,
        true,
    );
    let rd = Reading {
        abc: true,
        default_segment: Some("C"),
    };
    assert!(changes(Some((&a, rd)), &a, rd).unwrap().is_empty());
}
