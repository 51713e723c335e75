//! Scalar primitives: `rfm.score`, `rfm.fm_score` and `rfm.abc_tier` (`rfm.segment` is in
//! `schemes`). Each only converts and validates; the logic is in `rfm_core`.

use crate::errors::OrRaise;
use crate::text::ServerText;
use pgrx::prelude::*;
use rfm_core::{abc, score as core_score};

/// Score of `value` against ascending `thresholds` (n = thresholds + 1 buckets).
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn score(
    value: f64,
    thresholds: Vec<Option<f64>>,
    higher_is_better: default!(bool, true),
    at_least: default!(bool, false),
) -> i32 {
    core_score::score(value, &thresholds, higher_is_better, at_least).or_raise()
}

/// Combined frequency–monetary score `ceil((f + m) / 2)`.
#[pg_extern(immutable, parallel_safe)]
fn fm_score(f: i32, m: i32) -> i32 {
    core_score::fm_score(f, m).or_raise()
}

/// ABC tier of `value`: the first tier whose threshold it reaches, else the last.
#[pg_extern(immutable, parallel_safe)]
fn abc_tier(
    value: f64,
    thresholds: Vec<Option<f64>>,
    names: default!(Vec<Option<ServerText>>, "'{A,B,C}'"),
) -> ServerText {
    let names: Vec<Option<String>> = names.into_iter().map(|n| n.map(|t| t.0)).collect();
    ServerText(abc::tier(value, &thresholds, &names).or_raise())
}
