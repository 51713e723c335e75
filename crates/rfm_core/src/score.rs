//! Scores from thresholds: `c = #{k : value > t_k}` (or `>=` with `at_least`); the score is
//! `1 + c` when higher is better and `n - c` otherwise, `n = thresholds + 1`. Equal values
//! always get equal scores and a value equal to a threshold stays in the lower bucket.

use crate::error::{check_finite, Result, RfmError};
use crate::quantile::{MAX_BUCKETS, MIN_BUCKETS};

/// Validates a threshold array: 1..=99 finite, non-NULL, ascending (ties allowed) values.
/// `None` entries are SQL NULLs.
pub fn check_thresholds(thresholds: &[Option<f64>]) -> Result<Vec<f64>> {
    let n = thresholds.len() + 1;
    if n < MIN_BUCKETS as usize || n > MAX_BUCKETS as usize {
        return Err(RfmError::invalid(format!(
            "thresholds must have between {} and {} elements, got {}",
            MIN_BUCKETS - 1,
            MAX_BUCKETS - 1,
            thresholds.len()
        )));
    }
    let mut out = Vec::with_capacity(thresholds.len());
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
            if t < prev {
                return Err(RfmError::invalid(format!(
                    "thresholds must be in ascending order, but element {} ({}) is less than element {} ({})",
                    i + 1,
                    t,
                    i,
                    prev
                ))
                .with_hint("Sort the thresholds from the lowest value to the highest."));
            }
        }
        out.push(t);
    }
    Ok(out)
}

/// The score of `value` against checked, ascending `thresholds`.
pub fn score_checked(
    value: f64,
    thresholds: &[f64],
    higher_is_better: bool,
    at_least: bool,
) -> i32 {
    let c = if at_least {
        thresholds.partition_point(|&t| t <= value)
    } else {
        thresholds.partition_point(|&t| t < value)
    };
    if higher_is_better {
        1 + c as i32
    } else {
        (thresholds.len() + 1 - c) as i32
    }
}

/// `rfm.score`: validates the value and thresholds, then scores.
pub fn score(
    value: f64,
    thresholds: &[Option<f64>],
    higher_is_better: bool,
    at_least: bool,
) -> Result<i32> {
    let value = check_finite("value", value)?;
    let thresholds = check_thresholds(thresholds)?;
    Ok(score_checked(
        value,
        &thresholds,
        higher_is_better,
        at_least,
    ))
}

/// Checks one score against `1..=max`, naming it.
pub fn check_score(what: &str, score: i32, max: i32) -> Result<i32> {
    if (1..=max).contains(&score) {
        Ok(score)
    } else {
        Err(RfmError::out_of_range(format!(
            "{what} score must be between 1 and {max}, got {score}"
        )))
    }
}

/// `rfm.fm_score`: `ceil((f + m) / 2)`, both scores in `1..=100`.
pub fn fm_score(f: i32, m: i32) -> Result<i32> {
    let f = check_score("f", f, MAX_BUCKETS)?;
    let m = check_score("m", m, MAX_BUCKETS)?;
    Ok((f + m + 1) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().copied().map(Some).collect()
    }

    #[test]
    fn netsuite_recency_days() {
        let th = t(&[30.0, 90.0, 180.0, 365.0]);
        let cases = [
            (0.0, 5),
            (30.0, 5),
            (31.0, 4),
            (90.0, 4),
            (91.0, 3),
            (180.0, 3),
            (181.0, 2),
            (365.0, 2),
            (366.0, 1),
            (5000.0, 1),
        ];
        for (days, expected) in cases {
            assert_eq!(score(days, &th, false, false), Ok(expected), "{days} days");
        }
    }

    #[test]
    fn netsuite_orders_and_ltv() {
        let orders = t(&[2.0, 3.0, 5.0, 10.0]);
        let cases = [
            (1.0, 1),
            (2.0, 2),
            (3.0, 3),
            (4.0, 3),
            (5.0, 4),
            (9.0, 4),
            (10.0, 5),
            (50.0, 5),
        ];
        for (n, expected) in cases {
            assert_eq!(score(n, &orders, true, true), Ok(expected), "{n} orders");
        }
        let ltv = t(&[100.0, 500.0, 1000.0, 2000.0]);
        assert_eq!(score(2000.0, &ltv, true, true), Ok(5));
        assert_eq!(score(1999.99, &ltv, true, true), Ok(4));
        assert_eq!(score(99.0, &ltv, true, true), Ok(1));
    }

    #[test]
    fn value_on_threshold_stays_in_lower_value_bucket() {
        let th = t(&[10.0, 20.0]);
        assert_eq!(score(10.0, &th, true, false), Ok(1));
        assert_eq!(score(10.5, &th, true, false), Ok(2));
        // lower is better: 10 days is in the lower-value bucket, which scores best
        assert_eq!(score(10.0, &th, false, false), Ok(3));
    }

    #[test]
    fn tied_thresholds_skip_scores() {
        let th = t(&[1.0, 1.0, 1.0, 4.0]);
        assert_eq!(score(1.0, &th, true, false), Ok(1));
        assert_eq!(score(2.0, &th, true, false), Ok(4));
        assert_eq!(score(1.0, &th, true, true), Ok(4));
    }

    #[test]
    fn bad_thresholds_are_named() {
        let e = score(1.0, &t(&[3.0, 2.0]), true, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert!(
            e.message
                .contains("element 2 (2) is less than element 1 (3)"),
            "{}",
            e.message
        );
        let e = score(1.0, &[Some(1.0), None], true, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22004");
        let e = score(1.0, &[], true, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        let e = score(1.0, &t(&[f64::NAN]), true, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        let e = score(f64::INFINITY, &t(&[1.0]), true, false).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22003");
        assert!(score(1.0, &t(&[0.0; 100]), true, false).is_err());
        assert!(score(1.0, &t(&[0.0; 99]), true, false).is_ok());
    }

    #[test]
    fn fm_score_rounds_up() {
        assert_eq!(fm_score(1, 1), Ok(1));
        assert_eq!(fm_score(1, 2), Ok(2));
        assert_eq!(fm_score(4, 5), Ok(5));
        assert_eq!(fm_score(5, 5), Ok(5));
        assert_eq!(fm_score(2, 5), Ok(4));
        let e = fm_score(0, 3).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22003");
        assert_eq!(e.message, "f score must be between 1 and 100, got 0");
    }
}
