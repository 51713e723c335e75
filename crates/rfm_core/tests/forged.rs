//! Forged `rfm.analysis` values and aggregate states: any role can hand-make one (the type
//! is a domain over bytea), so decoding must reject it without allocating more than the
//! bytes can hold. A counting allocator records the largest single allocation.
//!
//! A value ends with a CRC-32C of its bytes, which catches every accidental change (tested
//! below by flipping every bit of real values); a deliberate forger can compute it, so the
//! forgeries here are sealed with a valid checksum and must be refused by the structure.

use rfm_core::analysis::{finalize, Analysis, Config, Days, Key, Method, State};
use rfm_core::codec::{sealed, verified};
use rfm_core::numeric::Decimal;
use rfm_core::{abc, scheme};
use std::time::{Duration, Instant};

mod common;
use common::{largest_allocation, SERIAL};

/// Runs `f` and asserts that no single allocation exceeded `limit` bytes and that it took
/// less than a second.
fn bounded<T>(limit: usize, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let (out, largest) = largest_allocation(f);
    assert!(largest <= limit, "allocated {largest} bytes at once");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    out
}

const DAY: i64 = 86_400_000_000;

fn config(keep_excluded: bool) -> Config {
    Config {
        as_of: 100 * DAY,
        as_of_default: false,
        window_start: 100 * DAY - 365 * DAY,
        period: "12 months".into(),
        buckets: 5,
        scheme: Some(scheme::Segmenter::builtin("standard").unwrap()),
        metrics: false,
        method: Method::Quantile,
        fixed: None,
        abc_shares: abc::DEFAULT_SHARES.to_vec(),
        abc_names: vec!["A".into(), "B".into(), "C".into()],
        abc_min_sales: None,
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

fn one(units: i128) -> Decimal {
    Decimal { units, scale: 0 }
}

/// An analysis with no active customer and one excluded one (bigint keys).
fn no_active(keep_excluded: bool) -> Vec<u8> {
    let c = config(keep_excluded);
    let d = days(&c);
    let mut s = State::new(c, false, true);
    s.add_exact(Key::Int(7), -300 * DAY, one(5)).unwrap(); // before the window
    finalize(s, &d).unwrap()
}

/// The bytes of a value without its checksum.
fn body(bytes: &[u8]) -> Vec<u8> {
    verified(bytes)
        .expect("a value written by finalize")
        .to_vec()
}

fn rejected(bytes: &[u8]) -> bool {
    let e1 = Analysis::customers(bytes).err();
    let e2 = Analysis::excluded_keys(bytes).err();
    let e3 = Analysis::deserialize(bytes, true).err();
    [e1, e2, e3]
        .iter()
        .all(|e| e.as_ref().is_some_and(|e| e.kind.sqlstate() == "22P03"))
}

#[test]
fn a_customer_count_of_2_pow_40_is_rejected_without_allocating() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut bytes = body(&no_active(false));
    // the value ends with the customer count (u64) and the excluded-key count (varint 0)
    let n = bytes.len();
    assert_eq!(&bytes[n - 9..], &[0, 0, 0, 0, 0, 0, 0, 0, 0]);
    bytes[n - 9..n - 1].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let forged = sealed(bytes.clone());
    assert!(bounded(64 * 1024, || rejected(&forged)));
    // and the same claim with 100 bytes of plausible records behind it
    bytes.extend(std::iter::repeat_n(1u8, 100));
    let forged = sealed(bytes);
    assert!(bounded(64 * 1024, || rejected(&forged)));
}

#[test]
fn an_excluded_key_count_of_2_pow_40_is_rejected() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let value = no_active(true);
    assert_eq!(
        Analysis::excluded_keys(&value).unwrap(),
        vec!["7".to_string()]
    );
    let bytes = body(&value);
    // the tail is: varint 1, zigzag 7 (14); claim 2^40 keys instead
    let n = bytes.len();
    assert_eq!(&bytes[n - 2..], &[1, 14]);
    let mut forged = bytes[..n - 2].to_vec();
    let mut v = 1u64 << 40;
    while v >= 0x80 {
        forged.push(v as u8 | 0x80);
        v >>= 7;
    }
    forged.push(v as u8);
    forged.push(14);
    let forged = sealed(forged);
    assert!(bounded(64 * 1024, || rejected(&forged)));
}

#[test]
fn a_120_byte_forged_value_is_rejected_quickly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for fill in [0x00u8, 0x01, 0x7F, 0x80, 0xFF] {
        // the current version byte (100 zero bytes happen to be a valid empty analysis; 120
        // are not)
        let mut forged = vec![body(&no_active(false))[0]];
        forged.extend(std::iter::repeat_n(fill, 119));
        let forged = sealed(forged);
        assert!(bounded(64 * 1024, || rejected(&forged)), "fill {fill:#x}");
    }
}

#[test]
fn truncated_and_wrong_version_values_are_rejected() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = no_active(true);
    for cut in 0..bytes.len() {
        assert!(rejected(&bytes[..cut]), "cut at {cut}");
    }
    // also when the cut value carries a valid checksum
    let whole = body(&bytes);
    for cut in 0..whole.len() {
        assert!(
            rejected(&sealed(whole[..cut].to_vec())),
            "sealed cut at {cut}"
        );
    }
    let current = bytes[0];
    for version in [0u8, 1, 2, 3, 4, 5, 7, 255] {
        assert_ne!(version, current);
        let mut v = body(&bytes);
        v[0] = version;
        assert!(rejected(&sealed(v)), "version {version}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(rejected(&longer));
    let mut longer = body(&bytes);
    longer.push(0);
    assert!(rejected(&sealed(longer)));
}

#[test]
fn a_state_claiming_2_pow_40_entries_is_rejected_without_allocating() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = State::new(config(false), false, true);
    s.add_exact(Key::Int(1), 90 * DAY, one(5)).unwrap();
    let bytes = s.serialize().unwrap();
    assert!(State::deserialize(&bytes).is_some());
    // the state ends with the customer count (u64), the earliest purchase (i64), the
    // length of the run (u64) and the run: one customer in a few bytes
    let n = bytes.len();
    let run = (1..32)
        .find(|&l| bytes[n - l - 8..n - l] == (l as u64).to_le_bytes())
        .unwrap();
    let count = n - run - 24;
    assert_eq!(bytes[count..count + 8], 1u64.to_le_bytes());
    let mut forged = bytes.clone();
    forged[count..count + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(bounded(64 * 1024, || State::deserialize(&forged).is_none()));
    for cut in 0..bytes.len() {
        assert!(State::deserialize(&bytes[..cut]).is_none(), "cut at {cut}");
    }
    let mut wrong = bytes;
    wrong[0] = 2;
    assert!(State::deserialize(&wrong).is_none());
}

/// Every single-bit change of a real value — an analysis with customers, excluded keys and
/// the full metrics, text keys and numeric money — is refused with 22P03: none is read with
/// changed content. (CRC-32C detects every burst of up to 32 bits.)
#[test]
fn every_bit_flip_of_a_real_value_is_refused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = config(true);
    c.metrics = true;
    let d = days(&c);
    let mut s = State::new(c, true, true);
    for i in 0..40i64 {
        let key = format!("customer-{}", i % 13);
        s.add_exact(
            Key::Text(key.as_bytes()),
            (60 + i) * DAY - i * 3_600_000_000,
            Decimal {
                units: 1234 + 17 * i as i128,
                scale: 2,
            },
        )
        .unwrap();
    }
    s.add_exact(Key::Text(b"gone"), -200 * DAY, one(3)).unwrap();
    let value = finalize(s, &d).unwrap();
    let original = Analysis::deserialize(&value, true).unwrap();
    assert!(original.customers.len() > 10);
    let mut flips = 0;
    for i in 0..value.len() {
        for bit in 0..8 {
            let mut v = value.clone();
            v[i] ^= 1 << bit;
            assert!(rejected(&v), "byte {i} bit {bit}");
            flips += 1;
        }
    }
    assert_eq!(flips, 8 * value.len());
}
