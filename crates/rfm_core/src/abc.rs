//! ABC (Pareto) tiers. Customers are ranked by monetary value, highest first. With `total`
//! the sum of positive values and `S(c)` the share of it held by customers strictly ahead of
//! `c`, a customer is in the first tier whose cumulative share bound exceeds `S(c)` (so the
//! customer that crosses 80 % is still A). Equal values share the tier of the first of them;
//! values `<= 0` are always in the last tier.

use crate::error::{check_finite, Result, RfmError};

/// Default tier shares: 80 / 15 / 5.
pub const DEFAULT_SHARES: [f64; 3] = [0.80, 0.15, 0.05];
/// Default tier names of the default shares: `default_names(3)`.
pub const DEFAULT_NAMES: [&str; 3] = ["A", "B", "C"];

/// The default names of `n` tiers: A, B, C, … Z, then T27, T28, …
pub fn default_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i < 26 {
                ((b'A' + i as u8) as char).to_string()
            } else {
                format!("T{}", i + 1)
            }
        })
        .collect()
}
/// How far the shares may sum from 1.
pub const SHARE_TOLERANCE: f64 = 1e-9;
/// Cumulative share bounds are sums of decimal fractions (`0.8 + 0.15` is
/// `0.9500000000000001` in binary floating point); a share ahead that is within this
/// distance of a bound counts as reaching it, so shares behave as written.
pub const BOUND_EPSILON: f64 = 1e-12;
/// At most this many tiers.
pub const MAX_TIERS: usize = 100;

/// Validates tier shares: 1..=100 positive, finite, non-NULL values that sum to 1.
pub fn check_shares(shares: &[Option<f64>]) -> Result<Vec<f64>> {
    if shares.is_empty() || shares.len() > MAX_TIERS {
        return Err(RfmError::invalid(format!(
            "shares must have between 1 and {MAX_TIERS} elements, got {}",
            shares.len()
        )));
    }
    let mut out = Vec::with_capacity(shares.len());
    for (i, s) in shares.iter().enumerate() {
        let s = s.ok_or_else(|| {
            RfmError::null(format!("shares must not contain NULL (element {})", i + 1))
        })?;
        if !(s.is_finite() && s > 0.0) {
            return Err(RfmError::invalid(format!(
                "shares must be positive numbers, but element {} is {}",
                i + 1,
                fmt_float(s)
            )));
        }
        out.push(s);
    }
    let sum: f64 = out.iter().sum();
    if (sum - 1.0).abs() > SHARE_TOLERANCE {
        return Err(
            RfmError::invalid(format!("shares must sum to 1, but they sum to {sum}")).with_hint(
                if (sum - 100.0).abs() < 1e-6 {
                    "Shares are fractions of 1, not percentages: write '{0.8,0.15,0.05}' (or [0.8, 0.15, 0.05] in options) for 80/15/5."
                } else {
                    "For example '{0.8,0.15,0.05}' for the 80/15/5 Pareto split."
                },
            ),
        );
    }
    Ok(out)
}

fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        v.to_string()
    }
}

/// Assigns a tier index to each value of `sorted_desc` (sorted highest first).
pub fn assign_sorted(sorted_desc: &[f64], shares: &[f64]) -> Vec<usize> {
    let total: f64 = sorted_desc.iter().filter(|&&v| v > 0.0).sum();
    let mut walk = TierWalk::new(shares, total);
    sorted_desc.iter().map(|&v| walk.next(v)).collect()
}

/// Tiers for values that arrive one at a time, highest first, without holding them:
/// `total` is the sum of the positive values. [`assign_sorted`] is this walk over a slice.
#[derive(Debug, Clone)]
pub struct TierWalk {
    /// Cumulative share bounds of every tier but the last.
    bounds: Vec<f64>,
    total: f64,
    /// Sum of the positive values seen so far.
    ahead: f64,
    /// The previous value and its tier: equal values share the tier of the first of them.
    prev: Option<(f64, usize)>,
}

impl TierWalk {
    pub fn new(shares: &[f64], total: f64) -> TierWalk {
        let last = shares.len().saturating_sub(1);
        let bounds = shares[..last]
            .iter()
            .scan(0.0, |acc, s| {
                *acc += s;
                Some(*acc)
            })
            .collect();
        TierWalk {
            bounds,
            total,
            ahead: 0.0,
            prev: None,
        }
    }

    /// The tier index of the next value (values must not increase).
    pub fn next(&mut self, v: f64) -> usize {
        let last = self.bounds.len();
        let tier = match self.prev {
            Some((p, t)) if p == v => t,
            _ if v > 0.0 && self.total > 0.0 => {
                let share_ahead = self.ahead / self.total;
                self.bounds
                    .iter()
                    .position(|&b| b - share_ahead > BOUND_EPSILON)
                    .unwrap_or(last)
            }
            _ => last,
        };
        if v > 0.0 {
            // one addition per customer, in rank order, as a running SQL sum would do
            self.ahead += v;
        }
        self.prev = Some((v, tier));
        tier
    }
}

/// Sorts values highest first (a deterministic order whatever the input order).
pub fn sort_desc(values: &mut [f64]) {
    values.sort_unstable_by(|a, b| b.total_cmp(a));
}

/// `rfm.abc_thresholds`: for each tier but the last, the smallest value in that tier or an
/// earlier one (`Infinity` when none is), so the array never increases. `None` for no values.
pub fn thresholds(values: &mut [f64], shares: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    sort_desc(values);
    let tiers = assign_sorted(values, shares);
    let mut out = vec![f64::INFINITY; shares.len() - 1];
    for (v, t) in values.iter().zip(&tiers) {
        for slot in out.iter_mut().skip(*t) {
            // values arrive highest first, so the last one seen is the smallest
            *slot = *v;
        }
    }
    Some(out)
}

/// Validates `abc_tier` thresholds: no NULL, no NaN, never increasing.
pub fn check_thresholds(thresholds: &[Option<f64>]) -> Result<Vec<f64>> {
    let mut out: Vec<f64> = Vec::with_capacity(thresholds.len());
    for (i, t) in thresholds.iter().enumerate() {
        let t = t.ok_or_else(|| {
            RfmError::null(format!(
                "thresholds must not contain NULL (element {})",
                i + 1
            ))
        })?;
        if t.is_nan() {
            return Err(RfmError::invalid(format!(
                "thresholds must not contain NaN (element {})",
                i + 1
            )));
        }
        if let Some(&prev) = out.last() {
            if t > prev {
                return Err(RfmError::invalid(format!(
                    "ABC thresholds must not increase, but element {} ({}) is greater than element {} ({})",
                    i + 1,
                    fmt_float(t),
                    i,
                    fmt_float(prev)
                ))
                .with_hint("Use the array rfm.abc_thresholds returns: highest tier first."));
            }
        }
        out.push(t);
    }
    Ok(out)
}

/// Index of the tier of `value`: the first tier whose threshold it reaches, else the last.
pub fn tier_index(value: f64, thresholds: &[f64]) -> usize {
    thresholds
        .iter()
        .position(|&t| value >= t)
        .unwrap_or(thresholds.len())
}

/// `rfm.abc_tier`: validates and names the tier of `value`.
pub fn tier(value: f64, thresholds: &[Option<f64>], names: &[Option<String>]) -> Result<String> {
    let value = check_finite("value", value)?;
    let thresholds = check_thresholds(thresholds)?;
    if names.len() < thresholds.len() + 1 {
        return Err(RfmError::invalid(format!(
            "{} thresholds make {} tiers, but only {} names were given",
            thresholds.len(),
            thresholds.len() + 1,
            names.len()
        )));
    }
    let i = tier_index(value, &thresholds);
    names[i]
        .clone()
        .ok_or_else(|| RfmError::null(format!("names must not contain NULL (element {})", i + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_names_are_letters_then_numbered() {
        assert_eq!(default_names(3), DEFAULT_NAMES);
        assert_eq!(default_names(4), ["A", "B", "C", "D"]);
        let many = default_names(28);
        assert_eq!((many[25].as_str(), many[26].as_str()), ("Z", "T27"));
    }

    fn names(n: &[&str]) -> Vec<Option<String>> {
        n.iter().map(|s| Some(s.to_string())).collect()
    }

    fn tiers_of(values: &[f64]) -> Vec<usize> {
        let mut v = values.to_vec();
        sort_desc(&mut v);
        assign_sorted(&v, &DEFAULT_SHARES)
    }

    #[test]
    fn crossing_customer_is_still_a() {
        // 70 alone is 70 %; the next one crosses 80 % and is still A; 5 starts at 95 %.
        assert_eq!(tiers_of(&[70.0, 20.0, 5.0, 5.0]), [0, 0, 1, 1]);
        // exactly at the bound: 50 + 30 = 80 % ahead of the third, which is B
        assert_eq!(tiers_of(&[50.0, 30.0, 15.0, 5.0]), [0, 0, 1, 2]);
    }

    #[test]
    fn ties_share_the_tier_of_the_first() {
        assert_eq!(tiers_of(&[10.0; 10]), [0; 10]);
        assert_eq!(tiers_of(&[60.0, 10.0, 10.0, 10.0, 10.0]), [0, 0, 0, 0, 0]);
        assert_eq!(tiers_of(&[85.0, 5.0, 5.0, 5.0]), [0, 1, 1, 1]);
    }

    #[test]
    fn zero_and_negative_values_are_last() {
        assert_eq!(tiers_of(&[100.0, 0.0, -5.0]), [0, 2, 2]);
        assert_eq!(tiers_of(&[0.0, -1.0]), [2, 2]);
        let mut v = vec![0.0, -3.0];
        assert_eq!(
            thresholds(&mut v, &DEFAULT_SHARES),
            Some(vec![f64::INFINITY; 2])
        );
    }

    #[test]
    fn thresholds_round_trip_through_tier() {
        let values = [70.0, 20.0, 5.0, 3.0, 2.0, 0.0, -4.0];
        let mut v = values.to_vec();
        let th = thresholds(&mut v, &DEFAULT_SHARES).unwrap();
        assert_eq!(th, [20.0, 5.0]);
        let th: Vec<Option<f64>> = th.into_iter().map(Some).collect();
        let got: Vec<String> = values
            .iter()
            .map(|&x| tier(x, &th, &names(&["A", "B", "C"])).unwrap())
            .collect();
        assert_eq!(got, ["A", "A", "B", "C", "C", "C", "C"]);
    }

    #[test]
    fn empty_tier_inherits_the_previous_threshold() {
        // the first customer holds 99 %: B is empty
        let mut v = vec![99.0, 1.0];
        assert_eq!(thresholds(&mut v, &DEFAULT_SHARES), Some(vec![99.0, 99.0]));
        assert_eq!(thresholds(&mut [], &DEFAULT_SHARES), None);
    }

    #[test]
    fn bad_shares_and_thresholds() {
        let s = |v: &[f64]| v.iter().copied().map(Some).collect::<Vec<_>>();
        assert!(check_shares(&s(&[0.8, 0.15, 0.05])).is_ok());
        let e = check_shares(&s(&[0.8, 0.3])).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert!(e.message.contains("sum to 1.1"), "{}", e.message);
        let e = check_shares(&s(&[1.2, -0.2])).unwrap_err();
        assert_eq!(
            e.message,
            "shares must be positive numbers, but element 2 is -0.2"
        );
        assert!(check_shares(&s(&[f64::NAN])).is_err());
        assert_eq!(check_shares(&[None]).unwrap_err().kind.sqlstate(), "22004");
        assert!(check_shares(&[]).is_err());

        let th = [Some(5.0), Some(10.0)];
        let e = tier(1.0, &th, &names(&["A", "B", "C"])).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        let e = tier(1.0, &[Some(10.0), Some(5.0)], &names(&["A", "B"])).unwrap_err();
        assert_eq!(
            e.message,
            "2 thresholds make 3 tiers, but only 2 names were given"
        );
        let e = tier(f64::NAN, &[Some(1.0)], &names(&["A", "B"])).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
    }

    /// Brute force straight from the definition, one customer at a time.
    fn reference(values: &[f64], shares: &[f64]) -> Vec<usize> {
        let total: f64 = values.iter().filter(|&&v| v > 0.0).sum();
        let bounds: Vec<f64> = shares
            .iter()
            .scan(0.0, |a, s| {
                *a += s;
                Some(*a)
            })
            .collect();
        values
            .iter()
            .map(|&v| {
                if v <= 0.0 {
                    return shares.len() - 1;
                }
                let ahead: f64 = values.iter().filter(|&&w| w > v).sum();
                let s = ahead / total;
                bounds[..shares.len() - 1]
                    .iter()
                    .position(|&b| b - s > BOUND_EPSILON)
                    .unwrap_or(shares.len() - 1)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn matches_definition(values in proptest::collection::vec(-20i32..200, 1..120)) {
            // integers keep every sum exact, so both computations see the same numbers
            let values: Vec<f64> = values.into_iter().map(f64::from).collect();
            let mut sorted = values.clone();
            sort_desc(&mut sorted);
            let got = assign_sorted(&sorted, &DEFAULT_SHARES);
            let want = reference(&sorted, &DEFAULT_SHARES);
            prop_assert_eq!(&got, &want);
            // and thresholds + tier agree with the assignment
            let th = thresholds(&mut values.clone(), &DEFAULT_SHARES).unwrap();
            for (v, t) in sorted.iter().zip(&got) {
                prop_assert_eq!(tier_index(*v, &th), *t);
            }
        }
    }
}
