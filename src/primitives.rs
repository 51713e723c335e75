//! Scalar primitives: `rfm.score`, `rfm.fm_score`, `rfm.segment`, `rfm.abc_tier` and the
//! function behind the `rfm.schemes` view. Each only converts and validates; the logic is
//! in `rfm_core`.

use crate::errors::OrRaise;
use crate::text::ServerText;
use pgrx::prelude::*;
use rfm_core::{abc, scheme, score as core_score};

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

/// Segment name of scores (r, f, m) in a built-in scheme.
#[pg_extern(immutable, parallel_safe)]
pub(crate) fn segment(
    r: i32,
    f: i32,
    m: i32,
    scheme: default!(ServerText, "'standard'"),
) -> &'static str {
    scheme::segment(r, f, m, &scheme.0).or_raise()
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

/// Every segment of every built-in scheme; read it through the `rfm.schemes` view.
// pgrx reads the column names from the `name!` types, so they must stay in the signature.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn builtin_scheme_segments() -> TableIterator<
    'static,
    (
        name!(scheme, String),
        name!(scheme_description, String),
        name!(position, i32),
        name!(segment, String),
        name!(cells, Vec<String>),
        name!(description, String),
        name!(actions, Vec<String>),
    ),
> {
    let rows: Vec<_> = scheme::BUILTIN
        .iter()
        .flat_map(|s| {
            s.segments.iter().enumerate().map(move |(i, seg)| {
                (
                    s.name.to_string(),
                    s.description.to_string(),
                    i as i32 + 1,
                    seg.name.to_string(),
                    s.cells(seg.name),
                    seg.description.to_string(),
                    seg.actions.iter().map(|a| a.to_string()).collect(),
                )
            })
        })
        .collect();
    TableIterator::new(rows)
}
