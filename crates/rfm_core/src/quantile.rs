//! Exact linear-interpolation quantiles (PostgreSQL `percentile_cont`, numpy's default,
//! R type 7) computed by selection instead of a full sort.
//!
//! For `n` buckets over `N` values the thresholds are `t_k = Q(k/n)`, `k = 1..n-1`, where
//! `Q(p)` interpolates between the order statistics `floor(p(N-1))` and `ceil(p(N-1))`
//! (0-based) exactly as PostgreSQL does, so the results are bit-for-bit the same numbers.

use crate::error::{check_finite, Result, RfmError};

/// Smallest and largest allowed bucket counts.
pub const MIN_BUCKETS: i32 = 2;
pub const MAX_BUCKETS: i32 = 100;
/// The default bucket count (quintiles).
pub const DEFAULT_BUCKETS: i32 = 5;

/// Validates a bucket count (2..=100), naming the bad value.
pub fn check_buckets(buckets: i32) -> Result<usize> {
    if (MIN_BUCKETS..=MAX_BUCKETS).contains(&buckets) {
        Ok(buckets as usize)
    } else {
        Err(RfmError::invalid(format!(
            "buckets must be between {MIN_BUCKETS} and {MAX_BUCKETS}, got {buckets}"
        )))
    }
}

/// Where `Q(p)` reads from a sorted array of `count` values: the two 0-based order
/// statistics and the interpolation weight, computed with PostgreSQL's float operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantilePosition {
    pub lo: usize,
    pub hi: usize,
    pub weight: f64,
}

/// The position of quantile `p` (0..=1) among `count >= 1` values.
pub fn position(p: f64, count: usize) -> QuantilePosition {
    let x = p * (count as f64 - 1.0);
    let lo = x.floor();
    let hi = x.ceil();
    QuantilePosition {
        lo: lo as usize,
        hi: (hi as usize).min(count - 1),
        weight: x - lo,
    }
}

/// PostgreSQL's `float8_lerp`: `lo + weight * (hi - lo)`, and exactly `lo` when the two
/// order statistics coincide.
pub fn lerp(lo: f64, hi: f64, weight: f64) -> f64 {
    if weight == 0.0 {
        lo
    } else {
        lo + weight * (hi - lo)
    }
}

/// Rearranges `values` so that every index in `wanted` (sorted, unique, in range) holds the
/// value it would hold after sorting. Average `O(N log k)` for `k` wanted indices.
pub fn select_many(values: &mut [f64], wanted: &[usize]) {
    if wanted.is_empty() || values.is_empty() {
        return;
    }
    let mid = wanted.len() / 2;
    let k = wanted[mid];
    let (left, _, right) = values.select_nth_unstable_by(k, f64::total_cmp);
    select_many(left, &wanted[..mid]);
    let shifted: Vec<usize> = wanted[mid + 1..].iter().map(|&i| i - k - 1).collect();
    select_many(right, &shifted);
}

/// The `buckets - 1` thresholds of `values` (reordered in place). `None` when there are no
/// values. Values must already be finite (see [`normalize`]).
pub fn thresholds(values: &mut [f64], buckets: usize) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    let count = values.len();
    let positions: Vec<QuantilePosition> = (1..buckets)
        .map(|k| position(k as f64 / buckets as f64, count))
        .collect();
    let mut wanted: Vec<usize> = positions.iter().flat_map(|p| [p.lo, p.hi]).collect();
    wanted.sort_unstable();
    wanted.dedup();
    select_many(values, &wanted);
    Some(
        positions
            .iter()
            .map(|p| lerp(values[p.lo], values[p.hi], p.weight))
            .collect(),
    )
}

/// Rearranges integer `values` like [`select_many`].
pub fn select_many_units(values: &mut [i64], wanted: &[usize]) {
    if wanted.is_empty() || values.is_empty() {
        return;
    }
    let mid = wanted.len() / 2;
    let k = wanted[mid];
    let (left, _, right) = values.select_nth_unstable(k);
    select_many_units(left, &wanted[..mid]);
    let shifted: Vec<usize> = wanted[mid + 1..].iter().map(|&i| i - k - 1).collect();
    select_many_units(right, &shifted);
}

/// Puts the order statistics `wanted` of `values` in their places, as
/// [`select_many_units`] does, by the cheapest way the values allow: none when they are
/// sorted already, a reversal when they are sorted from the highest (the monetary values of
/// the final step), a counting sort when they span fewer than 65,536 values (days,
/// purchase counts), else selection.
pub fn order_units(values: &mut [i64], wanted: &[usize]) {
    const SPAN: u64 = 1 << 16;
    if values.len() < 2 || values.is_sorted() {
        return;
    }
    if values.iter().rev().is_sorted() {
        values.reverse();
        return;
    }
    let (lo, hi) = values
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let span = (hi as i128 - lo as i128) as u64;
    if span < SPAN && values.len() as u64 > span {
        let mut counts = vec![0usize; span as usize + 1];
        for &v in values.iter() {
            counts[(v - lo) as usize] += 1;
        }
        let mut at = 0;
        for (d, &c) in counts.iter().enumerate() {
            values[at..at + c].fill(lo + d as i64);
            at += c;
        }
        return;
    }
    select_many_units(values, wanted);
}

/// `num / den` (den > 0) as the double nearest to the exact quotient: its decimal
/// expansion to 30 places, read by Rust's correctly rounding parser.
pub fn ratio_to_f64(num: i128, den: i128) -> f64 {
    let negative = num < 0;
    let n = num.unsigned_abs();
    let d = den.unsigned_abs();
    let mut text = format!("{}{}.", if negative { "-" } else { "" }, n / d);
    let mut rem = n % d;
    for _ in 0..30 {
        rem *= 10;
        text.push(char::from(b'0' + (rem / d) as u8));
        rem %= d;
    }
    text.parse().unwrap_or(f64::NAN)
}

/// The `buckets - 1` thresholds of exact values `units / 10^scale` (reordered in place), the
/// interpolation done in exact arithmetic and rounded once: the same quantiles as
/// [`thresholds`] without the artifacts of float interpolation (`140.688`, not
/// `140.68800000000002`). `None` when there are no values or the scale is too large.
pub fn thresholds_exact(values: &mut [i64], scale: u32, buckets: usize) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    let pow = 10i128.checked_pow(scale)?;
    let count = values.len();
    let n = buckets as i128;
    // Q(k/n) sits at k (count - 1) / n: order statistic lo, plus rem / n of the way to lo + 1
    let positions: Vec<(usize, i128)> = (1..buckets)
        .map(|k| {
            let x = k as i128 * (count as i128 - 1);
            ((x / n) as usize, x % n)
        })
        .collect();
    let mut wanted: Vec<usize> = positions
        .iter()
        .flat_map(|&(lo, rem)| [lo, if rem > 0 { lo + 1 } else { lo }])
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    order_units(values, &wanted);
    Some(
        positions
            .iter()
            .map(|&(lo, rem)| {
                let a = values[lo] as i128;
                let b = if rem > 0 { values[lo + 1] as i128 } else { a };
                ratio_to_f64(a * n + (b - a) * rem, n * pow)
            })
            .collect(),
    )
}

/// Checks that a value may enter a quantile computation and folds `-0` into `0` (PostgreSQL
/// compares them as equal; folding keeps selection deterministic).
pub fn normalize(what: &str, value: f64) -> Result<f64> {
    Ok(check_finite(what, value)? + 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook definition on a fully sorted copy, as PostgreSQL computes it.
    fn reference(values: &[f64], buckets: usize) -> Option<Vec<f64>> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(
            (1..buckets)
                .map(|k| {
                    let p = k as f64 / buckets as f64;
                    let x = p * (sorted.len() as f64 - 1.0);
                    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
                    if hi > lo {
                        sorted[lo] + (x - lo as f64) * (sorted[hi] - sorted[lo])
                    } else {
                        sorted[lo]
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn quintiles_of_one_to_ten() {
        let mut v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        // percentile_cont(ARRAY[0.2,0.4,0.6,0.8]) over 1..10 = {2.8,4.6,6.4,8.2}
        let t = thresholds(&mut v, 5).unwrap();
        let expected = [2.8, 4.6, 6.4, 8.2];
        for (a, b) in t.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{t:?}");
        }
    }

    #[test]
    fn one_value_gives_that_value_everywhere() {
        assert_eq!(thresholds(&mut [7.0], 4), Some(vec![7.0, 7.0, 7.0]));
    }

    #[test]
    fn no_values_gives_none() {
        assert_eq!(thresholds(&mut [], 5), None);
    }

    #[test]
    fn bucket_bounds() {
        assert_eq!(check_buckets(2), Ok(2));
        assert_eq!(check_buckets(100), Ok(100));
        let e = check_buckets(1).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert_eq!(e.message, "buckets must be between 2 and 100, got 1");
        assert!(check_buckets(101).is_err());
    }

    #[test]
    fn negative_zero_is_folded() {
        assert_eq!(
            normalize("value", -0.0).unwrap().to_bits(),
            0.0f64.to_bits()
        );
        assert!(normalize("value", f64::NAN).is_err());
    }

    #[test]
    fn exact_thresholds_have_no_float_artifacts() {
        // Q(0.2) of seven values sits 1/5 of the way from 140.60 to 140.72: 140.624 exactly,
        // and Q(0.4) 2/5 of the way from 140.72 to 141.00: 140.832
        let mut v = vec![14060i64, 14072, 14000, 14100, 14110, 14200, 14300];
        let t = thresholds_exact(&mut v, 2, 5).unwrap();
        assert_eq!(format!("{} {}", t[0], t[1]), "140.624 140.832");
        // here percentile_cont's float interpolation prints 132.78799999999998
        let cents = [11898i64, 12842, 13934, 14994, 15077, 19102, 19409, 19735];
        let mut f: Vec<f64> = cents.iter().map(|&c| c as f64 / 100.0).collect();
        assert_eq!(
            format!("{}", thresholds(&mut f, 5).unwrap()[0]),
            "132.78799999999998"
        );
        let exact = thresholds_exact(&mut cents.to_vec(), 2, 5).unwrap();
        assert_eq!(format!("{}", exact[0]), "132.788");
        // integers: 0.2 of the way between 2 and 5 is 2.6, and so on
        assert_eq!(
            format!("{:?}", thresholds_exact(&mut [2, 5], 0, 5).unwrap()),
            "[2.6, 3.2, 3.8, 4.4]"
        );
        assert_eq!(thresholds_exact(&mut [], 2, 5), None);
        assert_eq!(ratio_to_f64(-1, 3), -1.0 / 3.0);
        assert_eq!(ratio_to_f64(2, 3), 2.0 / 3.0);
    }

    proptest! {
        #[test]
        fn exact_thresholds_agree_with_float_ones(
            values in proptest::collection::vec(-100_000i64..100_000, 1..300),
            buckets in 2usize..=100,
        ) {
            let floats: Vec<f64> = values.iter().map(|&u| u as f64 / 100.0).collect();
            let want = reference(&floats, buckets).unwrap();
            let got = thresholds_exact(&mut values.clone(), 2, buckets).unwrap();
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{} vs {}", a, b);
            }
        }

        #[test]
        fn order_units_places_order_statistics_whatever_the_shape(
            values in proptest::collection::vec(-50i64..50, 1..400),
            wide in proptest::bool::ANY,
            shape in 0u8..3,
            picks in proptest::collection::vec(0usize..1000, 1..10),
        ) {
            // small spans (counted), a span wider than the count (selected), sorted either way
            let mut values: Vec<i64> = values
                .into_iter()
                .map(|v| if wide { v * 1_000_003 } else { v })
                .collect();
            match shape {
                1 => values.sort_unstable(),
                2 => values.sort_unstable_by(|a, b| b.cmp(a)),
                _ => {}
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let mut wanted: Vec<usize> = picks.iter().map(|p| p % values.len()).collect();
            wanted.sort_unstable();
            wanted.dedup();
            order_units(&mut values, &wanted);
            for &w in &wanted {
                prop_assert_eq!(values[w], sorted[w]);
            }
        }

        #[test]
        fn matches_sorting_reference(
            values in proptest::collection::vec(-1.0e6f64..1.0e6, 0..400),
            buckets in 2usize..=100,
        ) {
            let mut work = values.clone();
            prop_assert_eq!(thresholds(&mut work, buckets), reference(&values, buckets));
        }

        #[test]
        fn matches_reference_on_heavy_ties(
            values in proptest::collection::vec(0u8..4, 1..300),
            buckets in 2usize..=10,
        ) {
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let mut work = values.clone();
            prop_assert_eq!(thresholds(&mut work, buckets), reference(&values, buckets));
        }

        #[test]
        fn select_many_places_order_statistics(
            values in proptest::collection::vec(-100i32..100, 1..200),
            picks in proptest::collection::vec(0usize..1000, 0..20),
        ) {
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let mut wanted: Vec<usize> = picks.into_iter().map(|p| p % values.len()).collect();
            wanted.sort_unstable();
            wanted.dedup();
            let mut work = values.clone();
            select_many(&mut work, &wanted);
            for &i in &wanted {
                prop_assert_eq!(work[i], sorted[i]);
            }
        }
    }
}
