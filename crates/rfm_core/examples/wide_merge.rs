//! Times what the leader of a parallel `rfm.analyze` does with wide (lifecycle) states:
//! deserialize the partial states, merge them, finalize. Not a test:
//!
//!     cargo run --release --example wide_merge [customers] [rows] [parts]
//!
//! Each of `parts` partial states gets every `parts`-th of `rows` generated rows over
//! `customers` customers (numeric amounts, two years of rows, the lifecycle scheme; with
//! `NARROW=1` in the environment the standard scheme and plain states).

use rfm_core::analysis::{finalize, Config, Days, Key, Method, State};
use rfm_core::numeric::Decimal;
use rfm_core::{abc, scheme};
use std::time::Instant;

const DAY: i64 = 86_400_000_000;

fn config() -> Config {
    let narrow = std::env::var_os("NARROW").is_some();
    Config {
        as_of: 800 * DAY,
        as_of_default: false,
        window_start: 800 * DAY - 365 * DAY,
        period: "12 months".into(),
        buckets: 5,
        scheme: Some(
            scheme::Segmenter::builtin(if narrow { "standard" } else { "lifecycle" }).unwrap(),
        ),
        metrics: !narrow,
        method: Method::Quantile,
        fixed: None,
        abc_shares: abc::DEFAULT_SHARES.to_vec(),
        abc_names: vec!["A".into(), "B".into(), "C".into()],
        abc_min_sales: None,
        keep_excluded: false,
        clv: None,
    }
}

fn days(c: &Config) -> Days {
    let first = (c.window_start / DAY) as i32 - 1000;
    let last = (c.as_of / DAY) as i32 + 1;
    Days {
        first_day: first,
        midnights: (first..=last).map(|d| d as i64 * DAY).collect(),
        as_of_day: (c.as_of / DAY) as i32,
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let customers = args.first().copied().unwrap_or(1_120_000);
    let rows = args.get(1).copied().unwrap_or(10_000_000);
    let parts = args.get(2).copied().unwrap_or(3) as usize;
    let c = config();
    let d = days(&c);
    let mut states: Vec<State> = (0..parts)
        .map(|_| State::new(c.clone(), false, true))
        .collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let t = Instant::now();
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = (x % customers) as i64 * 7 + 1_000;
        let ts = 800 * DAY - ((x >> 20) % (730 * DAY as u64)) as i64;
        let units = ((x >> 40) % 20_000) as i128
            - if (x >> 8).is_multiple_of(33) {
                20_000
            } else {
                0
            };
        states[i as usize % parts]
            .add_exact(Key::Int(key), ts, Decimal { units, scale: 2 })
            .unwrap();
    }
    eprintln!("rows added in {:?}", t.elapsed());
    let t = Instant::now();
    let ser: Vec<Vec<u8>> = states.iter_mut().map(|s| s.serialize().unwrap()).collect();
    eprintln!(
        "serialize: {:?} ({} bytes each)",
        t.elapsed() / parts as u32,
        ser[0].len()
    );
    drop(states);
    let leader = Instant::now();
    let mut merged: Option<State> = None;
    for b in &ser {
        let t = Instant::now();
        let s = State::deserialize(b).unwrap();
        let dt = t.elapsed();
        let t = Instant::now();
        match merged.as_mut() {
            None => merged = Some(s),
            Some(m) => m.merge(s).unwrap(),
        }
        eprintln!("deserialize {dt:?}, merge {:?}", t.elapsed());
    }
    let merged = merged.unwrap();
    eprintln!("{} customers", merged.len());
    let t = Instant::now();
    let out = finalize(merged, &d).unwrap();
    eprintln!("finalize: {:?} ({} bytes)", t.elapsed(), out.len());
    eprintln!("leader total: {:?}", leader.elapsed());
}
