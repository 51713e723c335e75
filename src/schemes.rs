//! Segment schemes by name (SPEC §5, §9): the built-in ones (`standard`, `rf10`, `codes`,
//! `lifecycle`) and the ones users saved with `rfm.create_scheme` in `rfm.user_schemes`.
//!
//! A user's scheme is read through `rfm._user_scheme(name)`, a SECURITY DEFINER SQL function
//! (the table itself grants nothing to anybody), once per aggregate and once per statement
//! for `rfm.segment`. The analysis keeps the document it was made with, so a value never
//! depends on the catalog afterwards.

use crate::errors::{raise, OrRaise};
use crate::text::{Jsonb, ServerText};
use pgrx::prelude::*;
use rfm_core::rules::{self, RuleScheme};
use rfm_core::scheme::{self, Segmenter};
use rfm_core::{ErrorKind, RfmError};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// The names of every built-in scheme, for messages.
pub(crate) fn builtin_names() -> String {
    format!("{}, lifecycle", scheme::builtin_names())
}

fn unknown(name: &str) -> RfmError {
    RfmError::new(
        ErrorKind::UndefinedObject,
        format!("segment scheme {} does not exist", rfm_core::shown(name)),
    )
    .with_hint(format!(
        "Built-in schemes are {}; the view rfm.schemes lists every scheme, and rfm.create_scheme saves a new one.",
        builtin_names()
    ))
}

/// The saved document of a user's scheme, if there is one.
fn user_document(name: &str) -> Option<Value> {
    // the name in the server encoding, as the table holds it
    let arg = ServerText(name.to_string());
    // read-only: the aggregates call this in parallel workers and in a leader in parallel
    // mode, where a read-write SPI call (a new command, an XID) is an error
    Spi::connect(|client| {
        client
            .select("SELECT rfm._user_scheme($1)", Some(1), &[arg.into()])?
            .first()
            .get_one::<Jsonb>()
    })
    .unwrap_or_else(|e| {
        raise(RfmError::invalid(format!(
            "cannot read scheme {}: {e}",
            rfm_core::shown(name)
        )))
    })
    .map(|j| j.0)
}

/// A scheme by name: built in, else saved by a user (42704 when neither).
pub(crate) fn resolve(name: &str) -> Segmenter {
    if let Ok(s) = Segmenter::builtin(name) {
        return s;
    }
    let Some(doc) = user_document(name) else {
        raise(unknown(name))
    };
    let rules = RuleScheme::parse(name, &doc).or_raise();
    Segmenter::user(name, rules).or_raise()
}

thread_local! {
    /// Schemes resolved by `rfm.segment` in the current statement and command.
    static CACHE: RefCell<((i64, u32), HashMap<String, Segmenter>)> =
        RefCell::new(((0, 0), HashMap::new()));
}

/// [`resolve`], remembered for the rest of the statement (until the next command in it).
pub(crate) fn resolve_cached(name: &str) -> Segmenter {
    // SAFETY: plain reads of the current statement's start time and command id
    let epoch = unsafe {
        (
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetCurrentCommandId(false),
        )
    };
    if let Some(s) = CACHE.with(|c| {
        let c = c.borrow();
        (c.0 == epoch).then(|| c.1.get(name).cloned()).flatten()
    }) {
        return s;
    }
    let s = resolve(name);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != epoch {
            *c = (epoch, HashMap::new());
        }
        c.1.insert(name.to_string(), s.clone());
    });
    s
}

/// The document of a built-in scheme, or NULL.
fn builtin_document(name: &str) -> Option<Value> {
    if let Some(r) = rules::builtin(name) {
        return Some(r.to_json());
    }
    scheme::builtin(name).ok().map(rules::grid_document)
}

/// Any scheme as a JSON document that `rfm.create_scheme` accepts: built-in ones too, so
/// that a user can copy and edit them.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn scheme_definition(name: ServerText) -> Jsonb {
    match builtin_document(&name.0).or_else(|| user_document(&name.0)) {
        Some(doc) => Jsonb(doc),
        None => raise(unknown(&name.0)),
    }
}

/// Checks a scheme's name and document (the errors of SPEC §9) and returns the document
/// as it is saved: every key written out.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _validate_scheme(name: ServerText, definition: Jsonb) -> Jsonb {
    rules::check_name(&name.0).or_raise();
    let rules = RuleScheme::parse(&name.0, &definition.0).or_raise();
    Segmenter::user(&name.0, rules.clone()).or_raise();
    Jsonb(rules.to_json())
}

/// One row per segment of a rule scheme (the `rfm.schemes` view).
type SegmentRow = (
    String,
    Option<ServerText>,
    i32,
    ServerText,
    Option<Vec<String>>,
    Option<Jsonb>,
    Option<ServerText>,
    Vec<ServerText>,
    Option<i32>,
    Option<i32>,
);

fn rule_rows(r: &RuleScheme) -> Vec<SegmentRow> {
    let doc = r.to_json();
    let whens: Vec<Value> = doc
        .get("segments")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().map(|s| s["when"].clone()).collect())
        .unwrap_or_default();
    let population = match r.population() {
        rules::Population::Active => "active",
        rules::Population::All => "all",
    };
    r.segments()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                population.to_string(),
                r.description().map(|d| ServerText(d.to_string())),
                i as i32 + 1,
                ServerText(s.name.clone()),
                None,
                whens.get(i).cloned().map(Jsonb),
                s.description.clone().map(ServerText),
                s.actions.iter().cloned().map(ServerText).collect(),
                s.visit_every_days,
                s.priority,
            )
        })
        .collect()
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
        name!(population, String),
        name!(scheme_description, Option<ServerText>),
        name!(position, i32),
        name!(segment, ServerText),
        name!(cells, Option<Vec<String>>),
        name!(rule, Option<Jsonb>),
        name!(description, Option<ServerText>),
        name!(actions, Vec<ServerText>),
        name!(visit_every_days, Option<i32>),
        name!(priority, Option<i32>),
    ),
> {
    let mut rows = Vec::new();
    for s in scheme::BUILTIN.iter() {
        for (i, seg) in s.segments.iter().enumerate() {
            rows.push((
                s.name.to_string(),
                "active".to_string(),
                Some(ServerText(s.description.to_string())),
                i as i32 + 1,
                ServerText(seg.name.to_string()),
                Some(s.cells(seg.name)),
                None,
                Some(ServerText(seg.description.to_string())),
                seg.actions
                    .iter()
                    .map(|a| ServerText(a.to_string()))
                    .collect(),
                None,
                None,
            ));
        }
    }
    for name in ["lifecycle"] {
        let r = rules::builtin(name).expect("a built-in rule scheme");
        for (p, d, i, seg, c, rule, desc, act, v, pr) in rule_rows(r) {
            rows.push((name.to_string(), p, d, i, seg, c, rule, desc, act, v, pr));
        }
    }
    TableIterator::new(rows)
}

/// The segments of a saved scheme (the `rfm.schemes` view).
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _user_scheme_segments(
    name: ServerText,
    definition: Jsonb,
) -> TableIterator<
    'static,
    (
        name!(population, String),
        name!(scheme_description, Option<ServerText>),
        name!(position, i32),
        name!(segment, ServerText),
        name!(cells, Option<Vec<String>>),
        name!(rule, Option<Jsonb>),
        name!(description, Option<ServerText>),
        name!(actions, Vec<ServerText>),
        name!(visit_every_days, Option<i32>),
        name!(priority, Option<i32>),
    ),
> {
    let r = RuleScheme::parse(&name.0, &definition.0).or_raise();
    TableIterator::new(rule_rows(&r))
}

/// Segment name of scores (r, f, m) in a scheme: a built-in one, or a saved one whose rules
/// read only the scores.
#[pg_extern(stable, parallel_safe)]
pub(crate) fn segment(
    r: i32,
    f: i32,
    m: i32,
    scheme: default!(ServerText, "'standard'"),
) -> ServerText {
    let s = match scheme::builtin(&scheme.0) {
        Ok(grid) => Segmenter::Grid(grid),
        Err(_) => resolve_cached(&scheme.0),
    };
    ServerText(scheme::segment_with(&s, r, f, m).or_raise())
}
