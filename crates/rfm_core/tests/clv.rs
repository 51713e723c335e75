//! The CLV summary state (SPEC §12): a state built row by row equals, customer by customer,
//! states built from any split of the rows, serialized and merged (what a parallel plan
//! does); and forged states and model values are rejected without allocating what their
//! bytes claim.

use proptest::prelude::*;
use rfm_core::analysis::Key;
use rfm_core::clv::{ClvConfig, ClvModel, Summary, DAY_MICROS};

mod common;
use common::{largest_allocation, SERIAL};

fn config() -> ClvConfig {
    ClvConfig {
        as_of: 400 * DAY_MICROS - 1,
        as_of_day: 399,
        unit_days: 7,
        penalizer: 0.0,
        spend_model: true,
    }
}

fn text_key(k: u8) -> Vec<u8> {
    format!("c{k}@example.com").into_bytes()
}

fn build(rows: &[(u8, i32, u32)], text: bool) -> Summary {
    let mut s = Summary::new(config(), text);
    for &(k, d, cents) in rows {
        let t = text_key(k);
        let key = if text {
            Key::Text(&t)
        } else {
            Key::Int(k as i64)
        };
        s.add(key, d, cents as f64 / 100.0).unwrap();
    }
    s
}

proptest! {
    #[test]
    fn serial_and_merged_summaries_are_equal(
        rows in prop::collection::vec((0u8..20, 0i32..400, 0u32..100_000), 1..300),
        parts in 1usize..4,
        text in any::<bool>(),
    ) {
        // the allocation tests below measure a global figure: not while this runs
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let serial = build(&rows, text).finish().unwrap();
        // rows dealt round robin to `parts` workers, each serialized, merged in turn
        let mut merged: Option<Summary> = None;
        for p in 0..parts {
            let mine: Vec<_> = rows.iter().copied().skip(p).step_by(parts).collect();
            let s = Summary::deserialize(&build(&mine, text).serialize()).unwrap();
            match merged.as_mut() {
                None => merged = Some(s),
                Some(m) => m.merge(s).unwrap(),
            }
        }
        let merged = merged.unwrap().finish().unwrap();
        prop_assert_eq!(&serial, &merged);
        // and the naive definition: distinct days, first and last, repeat-day totals
        for c in &serial {
            let k = match &c.key {
                rfm_core::clv::KeyValue::Int(v) => *v as u8,
                rfm_core::clv::KeyValue::Text(t) => (0..20).find(|&k| text_key(k) == *t).unwrap(),
            };
            let mut days: Vec<i32> = rows.iter().filter(|r| r.0 == k).map(|r| r.1).collect();
            days.sort_unstable();
            days.dedup();
            prop_assert_eq!(c.x as usize, days.len() - 1);
            prop_assert_eq!(c.t_x as i32, days[days.len() - 1] - days[0]);
            prop_assert_eq!(c.t as i32, 399 - days[0]);
            let repeat_cents: u64 = rows
                .iter()
                .filter(|r| r.0 == k && r.1 != days[0])
                .map(|r| r.2 as u64)
                .sum();
            prop_assert!((c.repeat_total - repeat_cents as f64 / 100.0).abs() < 1e-6);
        }
    }
}

fn bounded<T>(limit: usize, f: impl FnOnce() -> T) -> T {
    let (out, largest) = largest_allocation(f);
    assert!(largest <= limit, "allocated {largest} bytes at once");
    out
}

#[test]
fn forged_states_are_rejected_without_large_allocations() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let good = build(&[(1, 10, 100), (1, 20, 250), (2, 30, 50)], true).serialize();
    assert!(Summary::deserialize(&good).is_some());
    // every truncation, and every single byte changed to 0xFF, is rejected or decodes
    // without allocating more than a few kilobytes
    for cut in 0..good.len() {
        bounded(4096, || {
            assert!(Summary::deserialize(&good[..cut]).is_none())
        });
    }
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] = 0xFF;
        bounded(4096, || Summary::deserialize(&bad).map(|s| s.rows()));
    }
    // a count of 2^60 keys or records in a short value
    let mut bad = good.clone();
    let n_at = good.len() - 3 * 16 - 8 - 2 * 8 - 8;
    bad[n_at..n_at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    bounded(4096, || assert!(Summary::deserialize(&bad).is_none()));
}

#[test]
fn forged_model_values_are_rejected_without_large_allocations() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // a header that claims 2^40 customers and 2^40 triples in a few bytes
    for claim in [1u64 << 40, u64::MAX] {
        let mut v = vec![1u8];
        v.extend_from_slice(&(400 * DAY_MICROS - 1).to_le_bytes());
        v.extend_from_slice(&399u32.to_le_bytes());
        v.extend_from_slice(&7u32.to_le_bytes());
        v.extend_from_slice(&0f64.to_le_bytes());
        v.push(0);
        for p in [0.2f64, 4.0, 0.8, 2.4] {
            v.extend_from_slice(&p.to_le_bytes());
        }
        for _ in 0..5 {
            v.extend_from_slice(&1f64.to_le_bytes());
        }
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&10u64.to_le_bytes());
        v.push(0); // no spend model
        v.extend_from_slice(&claim.to_le_bytes()); // customers
        v.extend_from_slice(&0u64.to_le_bytes());
        v.push(0);
        v.extend_from_slice(&claim.to_le_bytes()); // triples
        bounded(4096, || assert!(ClvModel::read(&v).is_err()));
    }
    // negative or NaN parameters are not a model
    assert!(ClvModel::read(&[1, 0, 0]).is_err());
}
