//! The one-pass analysis engine behind `rfm.analyze`: a compact per-customer hash table
//! filled row by row, mergeable for parallel plans, and a final step that computes
//! thresholds, scores, segments, ABC tiers, the summary and the grid.
//!
//! The engine is split by concern: [`Config`] and its validation in `options`, the
//! aggregate [`State`] and its encoding in `state`, the final step [`finalize()`] in
//! `finalize`, and the `rfm.analysis` value with its readers ([`Analysis`], [`Customers`])
//! in `value`. Everything public is re-exported here.

mod finalize;
mod index;
mod options;
mod predict;
mod run;
mod state;
mod value;

pub use finalize::{finalize, finalize_with, Days};
pub use options::{ClvOptions, Config, Method, METRICS};
pub use predict::{clv_metrics, ClvLookup};
pub use state::{MoneyKind, State};
pub use value::{
    Analysis, CustomerRow, Customers, GridRow, Metrics, Money, Overview, Snapshot, SummaryRow,
    ThresholdRow,
};

use crate::codec::{Reader, Writer};

/// Asks the CPU to fetch what `p` points to into its cache, without waiting for it.
#[inline]
fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that reads and writes nothing; it cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast(),
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A customer key as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Int(i64),
    Text(&'a [u8]),
}

fn write_opt(w: &mut Writer, v: Option<f64>) {
    match v {
        None => w.u8(0),
        Some(x) => {
            w.u8(1);
            w.f64(x);
        }
    }
}

fn read_opt(r: &mut Reader) -> Option<Option<f64>> {
    Some(match r.u8()? {
        0 => None,
        _ => Some(r.f64()?),
    })
}

/// Helpers shared by the unit tests of the submodules.
#[cfg(test)]
mod testing {
    use super::{finalize, Analysis, Config, Days, Method, State};
    use crate::abc;
    use crate::numeric::Decimal;
    use crate::scheme;

    pub(super) const DAY: i64 = 86_400_000_000;

    pub(super) fn config(method: Method) -> Config {
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
    pub(super) fn days(c: &Config) -> Days {
        // a thousand days before the window: the full metrics read earlier purchases
        let first = (c.window_start / DAY) as i32 - 1000;
        let last = (c.as_of / DAY) as i32 + 1;
        Days {
            first_day: first,
            midnights: (first..=last).map(|d| d as i64 * DAY).collect(),
            as_of_day: (c.as_of / DAY) as i32,
        }
    }

    pub(super) fn analyze(s: State, d: &Days) -> Analysis {
        Analysis::deserialize(&finalize(s, d).unwrap(), true).unwrap()
    }

    pub(super) fn dec(units: i128, scale: u32) -> Decimal {
        Decimal { units, scale }
    }
}
