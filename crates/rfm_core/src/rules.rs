//! Rule-based segment schemes (SPEC §9): a scheme is a JSON document whose segments are
//! tried in order; the first whose `when` holds wins, and `default` names the segment of
//! everyone else.
//!
//! ```json
//! {"description": "…", "population": "all",
//!  "segments": [
//!    {"name": "VIP", "when": {"lifetime_value": {">": 2000}, "frequency": {">=": 4}},
//!     "description": "…", "actions": ["…"], "visit_every_days": 14, "priority": 1},
//!    {"name": "New", "when": {"any": [{"rfm_code": ["5?1", "511"]}, {"tenure_days": {"<=": 30}}]}}
//!  ],
//!  "default": "Other",
//!  "default_segment": {"description": "…", "actions": ["…"]}}
//! ```
//!
//! The language:
//!
//! - Top-level keys: `description` (string), `population` (`"active"`, the default, or
//!   `"all"`), `segments` (a non-empty array), `default` (the name of the segment of everyone
//!   the rules leave out) and `default_segment` (the metadata of that segment: an object with
//!   `description`, `actions`, `visit_every_days` and `priority`, each optional; only allowed
//!   together with `default`). Any other key is an error.
//! - Segment keys: `name` (non-empty string), `when` (object, required: `{}` matches every
//!   customer left), `description` (string), `actions` (array of strings),
//!   `visit_every_days` (positive integer), `priority` (integer).
//! - `when` is a conjunction. Each entry is either `"any": [when, …]` / `"all": [when, …]`
//!   (non-empty arrays, nesting freely) or `"<metric>": spec`, where spec is an object of
//!   operators that must all hold (`{">=": 2, "<": 5}`), an array (`in`) or a bare value (`=`).
//! - Operators: `>`, `>=`, `<`, `<=`, `=`, `between` (`[low, high]`, inclusive, low <= high)
//!   and `in` (a non-empty list).
//! - Metrics: those of [`Metric`] plus `rfm_code`. Numeric metrics take finite numbers;
//!   scores `r`, `f`, `m`, `fm` take whole numbers 1..5 only; `active` takes `true` / `false`
//!   with `=` and `in` only; `rfm_code` takes patterns of three characters, each `1`..`5` or
//!   `?` (any digit), with `=` and `in` only. Whole numbers may be written `4` or `4.0`.
//! - Every comparison with a NULL metric is false, as in SQL: a customer without scores
//!   (not active) matches no score condition, and its `rfm_code` is NULL.
//!
//! Validation ([`RuleScheme::parse`]) rejects every mistake with SQLSTATE 22023 and a message
//! that names the segment and the condition. It also evaluates each rule in three-valued
//! logic over every score cell (r, f, m in 1..=5, fm = ceil((f + m) / 2), active, every other
//! metric unknown) and, for population `all`, over a customer who is not active: a rule that
//! is false or already matched by an earlier rule on every cell can never match and is an
//! error; `default` is required unless the rules surely match every cell, and an error when
//! they do (it could never be used).
//!
//! Rules are compiled into a flat vector of nodes (metric index, operator, values), so that
//! [`RuleScheme::classify`] does not walk JSON.

use crate::error::{ErrorKind, Result, RfmError};
use crate::scheme::{code_index, Axes, Scheme};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// Metrics a rule can read, in this order (the index is `metric as usize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    RecencyDays,
    Frequency,
    Monetary,
    R,
    F,
    M,
    Fm,
    Aov,
    Returns,
    ReturnAmount,
    ReturnRate,
    TenureDays,
    DaysSinceLast,
    LifetimeOrders,
    LifetimeValue,
    Active,
    /// The BG/NBD probability that the customer is still alive (SPEC §12).
    PAlive,
    /// The customer lifetime value over the analysis' CLV horizon (SPEC §12).
    Clv,
}

/// How many metrics [`Values`] holds.
pub const METRIC_COUNT: usize = 18;

/// Every metric, in index order.
pub const ALL_METRICS: [Metric; METRIC_COUNT] = [
    Metric::RecencyDays,
    Metric::Frequency,
    Metric::Monetary,
    Metric::R,
    Metric::F,
    Metric::M,
    Metric::Fm,
    Metric::Aov,
    Metric::Returns,
    Metric::ReturnAmount,
    Metric::ReturnRate,
    Metric::TenureDays,
    Metric::DaysSinceLast,
    Metric::LifetimeOrders,
    Metric::LifetimeValue,
    Metric::Active,
    Metric::PAlive,
    Metric::Clv,
];

impl Metric {
    /// The name used in rule documents and in `rfm.customers`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RecencyDays => "recency_days",
            Metric::Frequency => "frequency",
            Metric::Monetary => "monetary",
            Metric::R => "r",
            Metric::F => "f",
            Metric::M => "m",
            Metric::Fm => "fm",
            Metric::Aov => "aov",
            Metric::Returns => "returns",
            Metric::ReturnAmount => "return_amount",
            Metric::ReturnRate => "return_rate",
            Metric::TenureDays => "tenure_days",
            Metric::DaysSinceLast => "days_since_last",
            Metric::LifetimeOrders => "lifetime_orders",
            Metric::LifetimeValue => "lifetime_value",
            Metric::Active => "active",
            Metric::PAlive => "p_alive",
            Metric::Clv => "clv",
        }
    }

    /// The metric of a name (`rfm_code` is not a [`Metric`]: it is derived from r, f, m).
    pub fn from_name(s: &str) -> Option<Metric> {
        ALL_METRICS.iter().copied().find(|m| m.name() == s)
    }

    /// Whether it comes from the customer-lifetime-value models (SPEC §12).
    pub fn is_clv(self) -> bool {
        matches!(self, Metric::PAlive | Metric::Clv)
    }

    /// Whether it is one of the scores r, f, m, fm.
    pub fn is_score(self) -> bool {
        matches!(self, Metric::R | Metric::F | Metric::M | Metric::Fm)
    }

    /// Whether the plain analysis (window totals and scores only) already has it:
    /// RecencyDays, Frequency, Monetary, R, F, M, Fm, Active (and rfm_code).
    pub fn is_basic(self) -> bool {
        matches!(
            self,
            Metric::RecencyDays
                | Metric::Frequency
                | Metric::Monetary
                | Metric::R
                | Metric::F
                | Metric::M
                | Metric::Fm
                | Metric::Active
        )
    }
}

/// What the rules read of one customer: `values[metric as usize]`, `None` = SQL NULL
/// (every comparison with NULL is false, as in SQL). `active` is 1.0 / 0.0. Scores r, f, m, fm
/// are 1..=5 or None (a customer who is not active has no scores; then rfm_code is NULL too).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Values(pub [Option<f64>; METRIC_COUNT]);

impl Values {
    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.0[metric as usize]
    }

    /// Sets one metric (builder style).
    pub fn with(mut self, metric: Metric, value: Option<f64>) -> Values {
        self.0[metric as usize] = value;
        self
    }

    /// `code_index` of (r, f, m) when all three are scores 1..=5, else None (rfm_code NULL).
    fn code(&self) -> Option<usize> {
        let s = |m: Metric| -> Option<i32> {
            let x = self.0[m as usize]?;
            if (1.0..=5.0).contains(&x) && x.fract() == 0.0 {
                Some(x as i32)
            } else {
                None
            }
        };
        Some(code_index(s(Metric::R)?, s(Metric::F)?, s(Metric::M)?))
    }
}

/// Which customers a scheme classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Population {
    /// Customers with a purchase in the window (JSON `"active"`, the default).
    Active,
    /// Every customer with a purchase at or before `as_of` (JSON `"all"`).
    All,
}

impl Population {
    fn name(self) -> &'static str {
        match self {
            Population::Active => "active",
            Population::All => "all",
        }
    }
}

/// A segment of a rule scheme with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentDef {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<String>,
    /// Positive integer.
    pub visit_every_days: Option<i32>,
    pub priority: Option<i32>,
}

/// One comparison of a metric's value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    Eq(f64),
    Between(f64, f64),
    /// A range `start..end` of the scheme's value pool.
    In(u32, u32),
}

impl Test {
    #[inline]
    fn holds(self, x: f64, pool: &[f64]) -> bool {
        match self {
            Test::Gt(a) => x > a,
            Test::Ge(a) => x >= a,
            Test::Lt(a) => x < a,
            Test::Le(a) => x <= a,
            Test::Eq(a) => x == a,
            Test::Between(lo, hi) => lo <= x && x <= hi,
            Test::In(s, e) => pool[s as usize..e as usize].contains(&x),
        }
    }
}

/// A node of a compiled rule, in preorder. `All` and `Any` cover the nodes up to `end`
/// (exclusive): their children, each a subtree in turn.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    All {
        end: u32,
    },
    Any {
        end: u32,
    },
    Test {
        metric: u8,
        test: Test,
    },
    /// `rfm_code` is one of the codes whose `code_index` bit is set.
    Code {
        mask: u128,
    },
}

/// A condition tree before it is flattened.
#[derive(Debug, Clone)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Test(Metric, CTest),
    Code(u128),
}

#[derive(Debug, Clone)]
enum CTest {
    Simple(Test),
    In(Vec<f64>),
}

/// Three-valued (Kleene) truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    False,
    Unknown,
    True,
}

impl Tri {
    fn of(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// A metric of a validation cell: known, NULL, or unknown (not decidable from scores).
#[derive(Debug, Clone, Copy)]
enum Known {
    Value(f64),
    Null,
    Unknown,
}

/// One case that validation considers.
struct Cell {
    metrics: [Known; METRIC_COUNT],
    /// `code_index` of the rfm code, None = NULL.
    code: Option<usize>,
}

const SCORE_CELLS: usize = 125;
/// Every rfm code.
const ALL_CODES: u128 = (1u128 << SCORE_CELLS) - 1;
const MAX_SEGMENTS: usize = 255;
const OPERATORS: &str = ">, >=, <, <=, =, between, in";
const TOP_KEYS: &str = "description, population, segments, default, default_segment";
const SEGMENT_KEYS: &str = "name, when, description, actions, visit_every_days, priority";
const META_KEYS: &str = "description, actions, visit_every_days, priority";
const RFM_CODE: &str = "rfm_code";

/// A validated, compiled rule scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleScheme {
    description: Option<String>,
    population: Population,
    /// Rules in order, then the default segment (if any).
    segments: Vec<SegmentDef>,
    /// The `when` of each rule, as written.
    whens: Vec<Value>,
    has_default: bool,
    nodes: Vec<Node>,
    /// Index in `nodes` of each rule's root.
    roots: Vec<u32>,
    pool: Vec<f64>,
    score_only: bool,
    needs_metrics: bool,
    needs_clv: bool,
    /// The metrics the conditions read: bit `metric as u32`, and [`READS_CODE`].
    reads: u32,
    table: Option<[u8; SCORE_CELLS]>,
    /// The rules again, when each is one comparison or all of some (see [`Flat`]).
    flat: Option<Flat>,
}

/// A scheme whose every rule is a conjunction of comparisons, in a form that classifies
/// without walking the rules' trees: each distinct comparison is evaluated once, into a
/// bit, and a rule matches when all its bits are set. Its answer is [`eval`]'s.
#[derive(Debug, Clone, PartialEq)]
struct Flat {
    /// The distinct comparisons (at most 64).
    tests: Vec<(u8, Test)>,
    /// For each rule, the bits of its comparisons.
    needs: Vec<u64>,
}

impl Flat {
    /// The flat form of compiled rules, when they have one.
    fn of(nodes: &[Node], roots: &[u32]) -> Option<Flat> {
        let mut tests: Vec<(u8, Test)> = Vec::new();
        let mut needs = Vec::with_capacity(roots.len());
        for &root in roots {
            let root = root as usize;
            let children = match nodes[root] {
                Node::Test { .. } => root..root + 1,
                Node::All { end } => root + 1..end as usize,
                _ => return None,
            };
            let mut need = 0u64;
            for node in &nodes[children] {
                let Node::Test { metric, test } = *node else {
                    return None; // a nested group
                };
                let bit = match tests.iter().position(|&t| t == (metric, test)) {
                    Some(b) => b,
                    None if tests.len() < 64 => {
                        tests.push((metric, test));
                        tests.len() - 1
                    }
                    None => return None,
                };
                need |= 1 << bit;
            }
            needs.push(need);
        }
        Some(Flat { tests, needs })
    }

    /// The first rule that matches, if any.
    #[inline]
    fn first_match(&self, pool: &[f64], v: &Values) -> Option<usize> {
        let mut bits = 0u64;
        for (b, &(metric, test)) in self.tests.iter().enumerate() {
            let holds = v.0[metric as usize].is_some_and(|x| test.holds(x, pool));
            bits |= (holds as u64) << b;
        }
        self.needs.iter().position(|&need| bits & need == need)
    }
}

/// Names of the built-in schemes (grid and rule schemes): they cannot be redefined.
const RESERVED: [&str; 4] = ["standard", "rf10", "codes", "lifecycle"];

/// Whether `name` is the name of a built-in scheme.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// Whether `c` is invisible or reorders text: a control character, or a Unicode format
/// character (zero-width spaces and joiners, bidirectional marks and isolates, the byte
/// order mark, the soft hyphen, ...), which would make two names that look the same differ.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}')
}

/// Checks the name of a scheme a user defines: printable (no control or invisible format
/// characters), without leading or trailing white space, not empty and at most 63 bytes
/// (22023), and not a built-in name in any case (42939). Messages show at most a short
/// prefix of the name.
pub fn check_name(name: &str) -> Result<()> {
    if is_reserved(&name.to_lowercase()) {
        return Err(RfmError::new(
            ErrorKind::ReservedName,
            if is_reserved(name) {
                format!("scheme {} is built in; choose another name", crate::shown(name))
            } else {
                format!(
                    "scheme {} differs only in case from the built-in scheme \"{}\"; choose another name",
                    crate::shown(name),
                    name.to_lowercase()
                )
            },
        )
        .with_hint(format!(
            "To start from it, copy rfm.scheme_definition('{}') and save it under a new name.",
            name.to_lowercase()
        )));
    }
    if name.is_empty() {
        return Err(RfmError::invalid("scheme name must not be empty"));
    }
    if name.len() > 63 {
        return Err(RfmError::invalid(format!(
            "scheme name {} is longer than 63 bytes",
            crate::shown(name)
        )));
    }
    if let Some(c) = name.chars().find(|&c| is_invisible(c)) {
        return Err(RfmError::invalid(format!(
            "scheme name {} contains the unprintable character U+{:04X}",
            crate::shown(&name.escape_default().to_string()),
            c as u32
        ))
        .with_hint("Scheme names are what rfm.schemes and the dashboards show: use printable characters only."));
    }
    if name.trim() != name {
        return Err(RfmError::invalid(format!(
            "scheme name {} starts or ends with white space",
            crate::shown(name)
        ))
        .with_hint("Remove the spaces: names are compared exactly."));
    }
    Ok(())
}

/// A JSON value for a message, shortened when long.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let head: String = s.chars().take(57).collect();
        format!("{head}...")
    } else {
        s
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A whole number, written `4` or `4.0`.
fn as_int(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let x = v.as_f64()?;
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
        Some(x as i64)
    } else {
        None
    }
}

/// Parses the metadata keys shared by segments and `default_segment`. `at` names the place.
fn parse_meta(at: &str, key: &str, v: &Value, seg: &mut SegmentDef) -> Result<()> {
    match key {
        "description" => {
            let s = v.as_str().ok_or_else(|| {
                RfmError::invalid(format!(
                    "{at}: \"description\" must be a string, got {}",
                    show(v)
                ))
            })?;
            seg.description = Some(s.to_string());
        }
        "actions" => {
            let bad = || {
                RfmError::invalid(format!(
                    "{at}: \"actions\" must be an array of strings, got {}",
                    show(v)
                ))
            };
            let arr = v.as_array().ok_or_else(bad)?;
            seg.actions = arr
                .iter()
                .map(|a| a.as_str().map(str::to_string).ok_or_else(bad))
                .collect::<Result<_>>()?;
        }
        "visit_every_days" => {
            let n = as_int(v)
                .filter(|&n| n > 0 && n <= i32::MAX as i64)
                .ok_or_else(|| {
                    RfmError::invalid(format!(
                        "{at}: \"visit_every_days\" must be a positive whole number of days, got {}",
                        show(v)
                    ))
                })?;
            seg.visit_every_days = Some(n as i32);
        }
        "priority" => {
            let n = as_int(v)
                .filter(|&n| n >= i32::MIN as i64 && n <= i32::MAX as i64)
                .ok_or_else(|| {
                    RfmError::invalid(format!(
                        "{at}: \"priority\" must be a whole number, got {}",
                        show(v)
                    ))
                })?;
            seg.priority = Some(n as i32);
        }
        _ => unreachable!("parse_meta is called for metadata keys only"),
    }
    Ok(())
}

fn is_meta_key(k: &str) -> bool {
    matches!(
        k,
        "description" | "actions" | "visit_every_days" | "priority"
    )
}

fn meta_json(seg: &SegmentDef, out: &mut Map<String, Value>) {
    if let Some(d) = &seg.description {
        out.insert("description".into(), Value::String(d.clone()));
    }
    if !seg.actions.is_empty() {
        out.insert("actions".into(), json!(seg.actions));
    }
    if let Some(v) = seg.visit_every_days {
        out.insert("visit_every_days".into(), json!(v));
    }
    if let Some(p) = seg.priority {
        out.insert("priority".into(), json!(p));
    }
}

/// Error helper for a condition of a segment.
struct CondCtx<'a> {
    /// `segment "VIP"`.
    seg: &'a str,
}

impl CondCtx<'_> {
    fn err(&self, cond: &str, what: impl std::fmt::Display) -> RfmError {
        RfmError::invalid(format!("{}: condition \"{cond}\": {what}", self.seg))
    }

    /// Parses a `when` object into a conjunction.
    fn when(&self, obj: &Map<String, Value>) -> Result<Cond> {
        let mut items = Vec::with_capacity(obj.len());
        for (key, spec) in obj {
            match key.as_str() {
                "any" | "all" => {
                    let arr = spec.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                        self.err(
                            key,
                            format_args!(
                                "needs a non-empty array of conditions, got {}",
                                show(spec)
                            ),
                        )
                        .with_hint(format!(
                            "Write \"{key}\": [{{\"r\": 5}}, {{\"frequency\": {{\">=\": 4}}}}]."
                        ))
                    })?;
                    let mut subs = Vec::with_capacity(arr.len());
                    for (i, e) in arr.iter().enumerate() {
                        let o = e.as_object().ok_or_else(|| {
                            self.err(
                                key,
                                format_args!(
                                    "element {} must be an object of conditions, got {}",
                                    i + 1,
                                    show(e)
                                ),
                            )
                        })?;
                        subs.push(self.when(o)?);
                    }
                    items.push(if key == "any" {
                        Cond::Any(subs)
                    } else {
                        Cond::All(subs)
                    });
                }
                RFM_CODE => items.push(self.code(spec)?),
                "first_purchase_at" | "last_purchase_at" => {
                    let instead = if key == "first_purchase_at" {
                        "\"tenure_days\" (days since the first purchase)"
                    } else {
                        "\"days_since_last\" (days since the last purchase)"
                    };
                    return Err(self
                        .err(key, "timestamps cannot be used in rules")
                        .with_hint(format!("Use {instead} instead.")));
                }
                _ => match Metric::from_name(key) {
                    Some(m) => items.extend(self.metric(m, spec)?),
                    None => {
                        let names: Vec<&str> = ALL_METRICS.iter().map(|m| m.name()).collect();
                        return Err(self.err(key, "unknown metric").with_hint(format!(
                            "Metrics are: {}, rfm_code; \"any\" and \"all\" combine conditions.",
                            names.join(", ")
                        )));
                    }
                },
            }
        }
        Ok(Cond::All(items))
    }

    /// The operators of a spec: (operator, value) pairs.
    fn operators<'v>(&self, cond: &str, spec: &'v Value) -> Result<Vec<(&'v str, &'v Value)>> {
        match spec {
            Value::Object(o) => {
                if o.is_empty() {
                    return Err(self
                        .err(cond, "needs at least one operator, got {}")
                        .with_hint(format!("Operators are: {OPERATORS}.")));
                }
                let mut ops = Vec::with_capacity(o.len());
                for (op, v) in o {
                    match op.as_str() {
                        ">" | ">=" | "<" | "<=" | "=" | "between" | "in" => {
                            ops.push((op.as_str(), v))
                        }
                        _ => {
                            return Err(self
                                .err(cond, format_args!("operator \"{op}\" is unknown"))
                                .with_hint(format!("Operators are: {OPERATORS}.")))
                        }
                    }
                }
                Ok(ops)
            }
            Value::Array(_) => Ok(vec![("in", spec)]),
            Value::Null => Err(self.err(cond, "null cannot be compared").with_hint(
                "Every comparison with NULL is false; write a value or an object of operators.",
            )),
            _ => Ok(vec![("=", spec)]),
        }
    }

    /// The list of an `in` operator.
    fn list<'v>(&self, cond: &str, v: &'v Value) -> Result<&'v Vec<Value>> {
        v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            self.err(
                cond,
                format_args!("\"in\" needs a non-empty list, got {}", show(v)),
            )
        })
    }

    /// A value of a numeric, score or boolean metric.
    fn value(&self, metric: Metric, op: &str, v: &Value) -> Result<f64> {
        let cond = metric.name();
        if metric == Metric::Active {
            return match v {
                Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
                _ => Err(self.err(
                    cond,
                    format_args!("operator \"{op}\" needs true or false, got {}", show(v)),
                )),
            };
        }
        let x = match v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        let Some(x) = x else {
            let what = if metric.is_score() {
                "a score 1..5"
            } else {
                "a number"
            };
            return Err(self.err(
                cond,
                format_args!("operator \"{op}\" needs {what}, got {}", show(v)),
            ));
        };
        if !x.is_finite() {
            return Err(self.err(
                cond,
                format_args!("operator \"{op}\" needs a finite number, got {}", show(v)),
            ));
        }
        if metric.is_score() && !((1.0..=5.0).contains(&x) && x.fract() == 0.0) {
            return Err(self
                .err(cond, format_args!("score {} is outside 1..5", show(v)))
                .with_hint("Scores r, f, m and fm are whole numbers from 1 to 5."));
        }
        Ok(x)
    }

    /// The conditions of a numeric, score or boolean metric: one per operator.
    fn metric(&self, metric: Metric, spec: &Value) -> Result<Vec<Cond>> {
        let cond = metric.name();
        let mut out = Vec::new();
        for (op, v) in self.operators(cond, spec)? {
            if metric == Metric::Active && !matches!(op, "=" | "in") {
                return Err(self
                    .err(
                        cond,
                        format_args!("operator \"{op}\" does not apply to true/false"),
                    )
                    .with_hint("Use \"active\": true or \"active\": false."));
            }
            let test = match op {
                "in" => {
                    let list = self.list(cond, v)?;
                    let xs = list
                        .iter()
                        .map(|e| self.value(metric, op, e))
                        .collect::<Result<Vec<f64>>>()?;
                    CTest::In(xs)
                }
                "between" => {
                    let bad = |why: &str| {
                        self.err(
                            cond,
                            format_args!("\"between\" needs [low, high]{why}, got {}", show(v)),
                        )
                    };
                    let pair = v
                        .as_array()
                        .filter(|a| a.len() == 2)
                        .ok_or_else(|| bad(""))?;
                    let lo = self.value(metric, op, &pair[0])?;
                    let hi = self.value(metric, op, &pair[1])?;
                    if lo > hi {
                        return Err(bad(" with low <= high"));
                    }
                    CTest::Simple(Test::Between(lo, hi))
                }
                _ => {
                    let x = self.value(metric, op, v)?;
                    CTest::Simple(match op {
                        ">" => Test::Gt(x),
                        ">=" => Test::Ge(x),
                        "<" => Test::Lt(x),
                        "<=" => Test::Le(x),
                        _ => Test::Eq(x),
                    })
                }
            };
            out.push(Cond::Test(metric, test));
        }
        Ok(out)
    }

    /// An `rfm_code` condition: a set of codes as a 125-bit mask.
    fn code(&self, spec: &Value) -> Result<Cond> {
        let mut mask = ALL_CODES;
        for (op, v) in self.operators(RFM_CODE, spec)? {
            let patterns: Vec<&Value> = match op {
                "=" => vec![v],
                "in" => self.list(RFM_CODE, v)?.iter().collect(),
                _ => {
                    return Err(self
                        .err(
                            RFM_CODE,
                            format_args!("operator \"{op}\" does not apply to codes"),
                        )
                        .with_hint(
                            "Use \"=\" or \"in\" with patterns such as \"5?1\", or compare the scores r, f, m.",
                        ))
                }
            };
            let mut m = 0u128;
            for p in patterns {
                m |= self.pattern(p)?;
            }
            // several operators on one metric must all hold
            mask &= m;
        }
        Ok(Cond::Code(mask))
    }

    fn pattern(&self, v: &Value) -> Result<u128> {
        let bad = || {
            self.err(
                RFM_CODE,
                format_args!("pattern {} is not three characters each 1..5 or ?", show(v)),
            )
            .with_hint("For example \"555\", or \"5?1\" where ? stands for any score.")
        };
        let s = v.as_str().ok_or_else(bad)?;
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 3 || !chars.iter().all(|c| matches!(c, '1'..='5' | '?')) {
            return Err(bad());
        }
        let mut mask = 0u128;
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    let ok = [r, f, m]
                        .iter()
                        .zip(&chars)
                        .all(|(d, c)| *c == '?' || c.to_digit(10) == Some(*d as u32));
                    if ok {
                        mask |= 1u128 << code_index(r, f, m);
                    }
                }
            }
        }
        Ok(mask)
    }
}

/// Flattens `All` in `All` and `Any` in `Any`, and unwraps single children.
fn simplify(c: Cond) -> Cond {
    match c {
        Cond::All(cs) => {
            let mut out = Vec::with_capacity(cs.len());
            for c in cs {
                match simplify(c) {
                    Cond::All(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            if out.len() == 1 {
                out.pop().unwrap()
            } else {
                Cond::All(out)
            }
        }
        Cond::Any(cs) => {
            let mut out = Vec::with_capacity(cs.len());
            for c in cs {
                match simplify(c) {
                    Cond::Any(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            if out.len() == 1 {
                out.pop().unwrap()
            } else {
                Cond::Any(out)
            }
        }
        Cond::Test(m, CTest::In(xs)) if xs.len() == 1 => {
            Cond::Test(m, CTest::Simple(Test::Eq(xs[0])))
        }
        other => other,
    }
}

/// Bit of `rfm_code` in the set of metrics a scheme reads.
const READS_CODE: u32 = 1 << METRIC_COUNT;

/// Writes a condition as nodes in preorder; returns the metrics it reads.
fn emit(c: &Cond, nodes: &mut Vec<Node>, pool: &mut Vec<f64>) -> u32 {
    match c {
        Cond::All(cs) | Cond::Any(cs) => {
            let at = nodes.len();
            nodes.push(Node::All { end: 0 });
            let mut reads = 0;
            for c in cs {
                reads |= emit(c, nodes, pool);
            }
            let end = nodes.len() as u32;
            nodes[at] = if matches!(c, Cond::All(_)) {
                Node::All { end }
            } else {
                Node::Any { end }
            };
            reads
        }
        Cond::Test(m, t) => {
            let test = match t {
                CTest::Simple(t) => *t,
                CTest::In(xs) => {
                    let start = pool.len() as u32;
                    pool.extend_from_slice(xs);
                    Test::In(start, pool.len() as u32)
                }
            };
            nodes.push(Node::Test {
                metric: *m as u8,
                test,
            });
            1 << (*m as u32)
        }
        Cond::Code(mask) => {
            nodes.push(Node::Code { mask: *mask });
            READS_CODE
        }
    }
}

/// The index after the subtree at `i`.
#[inline]
fn next(nodes: &[Node], i: usize) -> usize {
    match nodes[i] {
        Node::All { end } | Node::Any { end } => end as usize,
        _ => i + 1,
    }
}

fn eval(nodes: &[Node], pool: &[f64], i: usize, v: &Values) -> bool {
    match nodes[i] {
        Node::Test { metric, test } => match v.0[metric as usize] {
            Some(x) => test.holds(x, pool),
            None => false,
        },
        Node::Code { mask } => v.code().is_some_and(|c| (mask >> c) & 1 == 1),
        Node::All { end } => {
            let mut j = i + 1;
            while j < end as usize {
                if !eval(nodes, pool, j, v) {
                    return false;
                }
                j = next(nodes, j);
            }
            true
        }
        Node::Any { end } => {
            let mut j = i + 1;
            while j < end as usize {
                if eval(nodes, pool, j, v) {
                    return true;
                }
                j = next(nodes, j);
            }
            false
        }
    }
}

/// Kleene evaluation over a validation cell.
fn eval3(nodes: &[Node], pool: &[f64], i: usize, cell: &Cell) -> Tri {
    match nodes[i] {
        Node::Test { metric, test } => match cell.metrics[metric as usize] {
            Known::Value(x) => Tri::of(test.holds(x, pool)),
            Known::Null => Tri::False,
            Known::Unknown => Tri::Unknown,
        },
        Node::Code { mask } => Tri::of(cell.code.is_some_and(|c| (mask >> c) & 1 == 1)),
        Node::All { end } => {
            let mut acc = Tri::True;
            let mut j = i + 1;
            while j < end as usize {
                match eval3(nodes, pool, j, cell) {
                    Tri::False => return Tri::False,
                    Tri::Unknown => acc = Tri::Unknown,
                    Tri::True => {}
                }
                j = next(nodes, j);
            }
            acc
        }
        Node::Any { end } => {
            let mut acc = Tri::False;
            let mut j = i + 1;
            while j < end as usize {
                match eval3(nodes, pool, j, cell) {
                    Tri::True => return Tri::True,
                    Tri::Unknown => acc = Tri::Unknown,
                    Tri::False => {}
                }
                j = next(nodes, j);
            }
            acc
        }
    }
}

/// The cases validation considers: every score cell, then (population all) a customer who
/// is not active.
fn cells(population: Population) -> Vec<Cell> {
    let mut out = Vec::with_capacity(SCORE_CELLS + 1);
    for r in 1..=5 {
        for f in 1..=5 {
            for m in 1..=5 {
                let mut metrics = [Known::Unknown; METRIC_COUNT];
                metrics[Metric::R as usize] = Known::Value(r as f64);
                metrics[Metric::F as usize] = Known::Value(f as f64);
                metrics[Metric::M as usize] = Known::Value(m as f64);
                metrics[Metric::Fm as usize] = Known::Value(((f + m + 1) / 2) as f64);
                metrics[Metric::Active as usize] = Known::Value(1.0);
                out.push(Cell {
                    metrics,
                    code: Some(code_index(r, f, m)),
                });
            }
        }
    }
    debug_assert!((0..SCORE_CELLS).all(|i| out[i].code == Some(i)));
    if population == Population::All {
        let mut metrics = [Known::Unknown; METRIC_COUNT];
        for s in [Metric::R, Metric::F, Metric::M, Metric::Fm] {
            metrics[s as usize] = Known::Null;
        }
        metrics[Metric::Active as usize] = Known::Value(0.0);
        out.push(Cell {
            metrics,
            code: None,
        });
    }
    out
}

/// How a cell is named in messages.
fn cell_name(i: usize) -> String {
    if i < SCORE_CELLS {
        let (r, f, m) = (i / 25 + 1, i / 5 % 5 + 1, i % 5 + 1);
        format!("customers with rfm code {r}{f}{m}")
    } else {
        "customers who are not active".to_string()
    }
}

fn quoted_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

impl RuleScheme {
    /// Parses and validates a document. `name` is only used in messages.
    pub fn parse(name: &str, doc: &Value) -> Result<RuleScheme> {
        let at = format!("scheme \"{name}\"");
        let obj = doc.as_object().ok_or_else(|| {
            RfmError::invalid(format!(
                "{at}: the definition must be a JSON object, got {}",
                kind_of(doc)
            ))
        })?;
        let mut description = None;
        let mut population = Population::Active;
        let mut seg_values = None;
        let mut default: Option<String> = None;
        let mut default_meta: Option<&Map<String, Value>> = None;
        for (k, v) in obj {
            match k.as_str() {
                "description" => {
                    let s = v.as_str().ok_or_else(|| {
                        RfmError::invalid(format!(
                            "{at}: \"description\" must be a string, got {}",
                            show(v)
                        ))
                    })?;
                    description = Some(s.to_string());
                }
                "population" => {
                    population = match v.as_str() {
                        Some("active") => Population::Active,
                        Some("all") => Population::All,
                        _ => {
                            return Err(RfmError::invalid(format!(
                                "{at}: \"population\" must be \"active\" or \"all\", got {}",
                                show(v)
                            ))
                            .with_hint(
                                "\"active\": customers with a purchase in the window; \"all\": every customer with a purchase at or before as_of.",
                            ))
                        }
                    }
                }
                "segments" => {
                    let arr = v.as_array().ok_or_else(|| {
                        RfmError::invalid(format!(
                            "{at}: \"segments\" must be an array of segments, got {}",
                            show(v)
                        ))
                    })?;
                    seg_values = Some(arr);
                }
                "default" => {
                    let s = v.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
                        RfmError::invalid(format!(
                            "{at}: \"default\" must be a segment name (a non-empty string), got {}",
                            show(v)
                        ))
                    })?;
                    default = Some(s.to_string());
                }
                "default_segment" => {
                    default_meta = Some(v.as_object().ok_or_else(|| {
                        RfmError::invalid(format!(
                            "{at}: \"default_segment\" must be an object, got {}",
                            show(v)
                        ))
                        .with_hint(format!("Its keys are: {META_KEYS}."))
                    })?);
                }
                _ => {
                    return Err(RfmError::invalid(format!("{at}: unknown key \"{k}\""))
                        .with_hint(format!("Keys are: {TOP_KEYS}.")))
                }
            }
        }
        let seg_values = seg_values.filter(|a| !a.is_empty()).ok_or_else(|| {
            RfmError::invalid(format!("{at} has no segments")).with_hint(
                "Add \"segments\": [{\"name\": \"...\", \"when\": {...}}, ...], tried in order.",
            )
        })?;
        let total = seg_values.len() + usize::from(default.is_some());
        if total > MAX_SEGMENTS {
            return Err(RfmError::invalid(format!(
                "{at} has {total} segments; at most {MAX_SEGMENTS} are allowed"
            )));
        }

        let mut segments: Vec<SegmentDef> = Vec::with_capacity(total);
        let mut whens = Vec::with_capacity(seg_values.len());
        let mut conds = Vec::with_capacity(seg_values.len());
        for (i, sv) in seg_values.iter().enumerate() {
            let pos = format!("segment {}", i + 1);
            let so = sv.as_object().ok_or_else(|| {
                RfmError::invalid(format!("{at}: {pos} must be an object, got {}", show(sv)))
            })?;
            let seg_name = match so.get("name") {
                None => return Err(RfmError::invalid(format!("{at}: {pos} has no \"name\""))),
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::String(_)) => {
                    return Err(RfmError::invalid(format!(
                        "{at}: {pos}: \"name\" must not be empty"
                    )))
                }
                Some(other) => {
                    return Err(RfmError::invalid(format!(
                        "{at}: {pos}: \"name\" must be a string, got {}",
                        show(other)
                    )))
                }
            };
            let label = format!("segment \"{seg_name}\"");
            if segments.iter().any(|s| s.name == seg_name) {
                return Err(RfmError::invalid(format!(
                    "{label}: the name is used by an earlier segment too"
                ))
                .with_hint("Segment names must be unique."));
            }
            let mut seg = SegmentDef {
                name: seg_name,
                description: None,
                actions: Vec::new(),
                visit_every_days: None,
                priority: None,
            };
            let mut when = None;
            for (k, v) in so {
                match k.as_str() {
                    "name" => {}
                    "when" => {
                        let w = v.as_object().ok_or_else(|| {
                            RfmError::invalid(format!(
                                "{label}: \"when\" must be an object of conditions, got {}",
                                show(v)
                            ))
                        })?;
                        when = Some(w);
                    }
                    k if is_meta_key(k) => parse_meta(&label, k, v, &mut seg)?,
                    _ => {
                        return Err(RfmError::invalid(format!("{label}: unknown key \"{k}\""))
                            .with_hint(format!("Segment keys are: {SEGMENT_KEYS}.")))
                    }
                }
            }
            let when = when.ok_or_else(|| {
                RfmError::invalid(format!("{label} has no \"when\"")).with_hint(
                    "Write its conditions, e.g. \"when\": {\"r\": 5}; \"when\": {} matches every customer left.",
                )
            })?;
            conds.push(CondCtx { seg: &label }.when(when)?);
            whens.push(Value::Object(when.clone()));
            segments.push(seg);
        }
        let rules = segments.len();

        if let Some(d) = &default {
            if segments.iter().any(|s| &s.name == d) {
                return Err(RfmError::invalid(format!(
                    "{at}: \"default\" segment \"{d}\" has the name of a rule segment too"
                ))
                .with_hint("Segment names must be unique."));
            }
            let mut seg = SegmentDef {
                name: d.clone(),
                description: None,
                actions: Vec::new(),
                visit_every_days: None,
                priority: None,
            };
            if let Some(meta) = default_meta {
                let label = format!("{at}: \"default_segment\"");
                for (k, v) in meta {
                    if is_meta_key(k) {
                        parse_meta(&label, k, v, &mut seg)?;
                    } else {
                        return Err(RfmError::invalid(format!("{label}: unknown key \"{k}\""))
                            .with_hint(format!(
                                "Its keys are: {META_KEYS}; the name is \"default\"."
                            )));
                    }
                }
            }
            segments.push(seg);
        } else if default_meta.is_some() {
            return Err(RfmError::invalid(format!(
                "{at}: \"default_segment\" is given without \"default\""
            ))
            .with_hint("Name the default segment with \"default\": \"...\", or remove \"default_segment\"."));
        }

        // compile
        let mut nodes = Vec::new();
        let mut pool = Vec::new();
        let mut roots = Vec::with_capacity(rules);
        let mut reads = 0u32;
        for c in conds {
            roots.push(nodes.len() as u32);
            reads |= emit(&simplify(c), &mut nodes, &mut pool);
        }
        let score_bits = READS_CODE
            | [Metric::R, Metric::F, Metric::M, Metric::Fm]
                .iter()
                .fold(0, |b, m| b | 1 << (*m as u32));
        let basic_bits = ALL_METRICS
            .iter()
            .filter(|m| m.is_basic())
            .fold(READS_CODE, |b, m| b | 1 << (*m as u32));
        let score_only = reads & !score_bits == 0;
        let needs_metrics = reads & !basic_bits != 0 || population == Population::All;
        let clv_bits = (1u32 << Metric::PAlive as u32) | (1u32 << Metric::Clv as u32);
        let needs_clv = reads & clv_bits != 0;

        let mut scheme = RuleScheme {
            description,
            population,
            segments,
            whens,
            has_default: default.is_some(),
            nodes,
            roots,
            pool,
            score_only,
            needs_metrics,
            needs_clv,
            reads,
            table: None,
            flat: None,
        };
        scheme.flat = Flat::of(&scheme.nodes, &scheme.roots);
        scheme.check_coverage(&at)?;
        if score_only {
            let mut table = [0u8; SCORE_CELLS];
            for r in 1..=5 {
                for f in 1..=5 {
                    for m in 1..=5 {
                        let v = Values::default()
                            .with(Metric::R, Some(r as f64))
                            .with(Metric::F, Some(f as f64))
                            .with(Metric::M, Some(m as f64))
                            .with(Metric::Fm, Some(((f + m + 1) / 2) as f64))
                            .with(Metric::Active, Some(1.0));
                        table[code_index(r, f, m)] = scheme.classify(&v) as u8;
                    }
                }
            }
            scheme.table = Some(table);
        }
        Ok(scheme)
    }

    /// Unreachable rules, and a default that is missing or can never be used.
    fn check_coverage(&self, at: &str) -> Result<()> {
        let cells = cells(self.population);
        // the first rule that surely matches each cell
        let mut covered: Vec<Option<usize>> = vec![None; cells.len()];
        for (i, &root) in self.roots.iter().enumerate() {
            let tri: Vec<Tri> = cells
                .iter()
                .map(|c| eval3(&self.nodes, &self.pool, root as usize, c))
                .collect();
            let reachable = tri
                .iter()
                .zip(&covered)
                .any(|(t, cov)| *t != Tri::False && cov.is_none());
            if !reachable {
                let mut earlier: Vec<usize> = tri
                    .iter()
                    .zip(&covered)
                    .filter(|(t, _)| **t != Tri::False)
                    .filter_map(|(_, cov)| *cov)
                    .collect();
                earlier.sort_unstable();
                earlier.dedup();
                let name = &self.segments[i].name;
                return Err(if earlier.is_empty() {
                    RfmError::invalid(format!(
                        "segment \"{name}\" can never match: its conditions contradict each other"
                    ))
                    .with_hint(format!(
                        "No customer of population \"{}\" meets all of them: scores are whole numbers 1..5{}.",
                        self.population.name(),
                        if self.population == Population::Active {
                            " and every customer is active"
                        } else {
                            ", NULL for customers who are not active"
                        }
                    ))
                } else {
                    let names: Vec<&str> = earlier
                        .iter()
                        .map(|&j| self.segments[j].name.as_str())
                        .collect();
                    RfmError::invalid(format!(
                        "segment \"{name}\" can never match: every customer it could match is matched first by {} {}",
                        if names.len() == 1 { "segment" } else { "segments" },
                        quoted_list(&names)
                    ))
                    .with_hint(
                        "Segments are tried in order and the first match wins: move it up, narrow the earlier segments or remove it.",
                    )
                });
            }
            for (t, cov) in tri.iter().zip(covered.iter_mut()) {
                if *t == Tri::True && cov.is_none() {
                    *cov = Some(i);
                }
            }
        }
        let uncovered: Vec<usize> = (0..cells.len()).filter(|&c| covered[c].is_none()).collect();
        match (self.has_default, uncovered.first()) {
            (false, Some(&first)) => {
                let more = match uncovered.len() - 1 {
                    0 => String::new(),
                    1 => " and 1 other case".to_string(),
                    n => format!(" and {n} other cases"),
                };
                Err(RfmError::invalid(format!(
                    "{at} needs a \"default\" segment: no rule surely matches {}{more}",
                    cell_name(first)
                ))
                .with_hint(
                    "Add \"default\": \"Other\" (any name) for everyone the rules leave out; only rules over scores can be proven to cover every customer.",
                ))
            }
            (true, None) => {
                let d = &self.segments[self.segments.len() - 1].name;
                Err(RfmError::invalid(format!(
                    "{at}: \"default\" segment \"{d}\" can never be used: the rules match every customer"
                ))
                .with_hint("Remove \"default\" (and \"default_segment\")."))
            }
            _ => Ok(()),
        }
    }

    /// Parses JSON text (serde_json::from_str, then parse); bad JSON is 22P02.
    pub fn parse_text(name: &str, text: &str) -> Result<RuleScheme> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            RfmError::new(
                ErrorKind::InvalidText,
                format!("scheme \"{name}\": the definition is not valid JSON: {e}"),
            )
        })?;
        Self::parse(name, &doc)
    }

    /// The canonical document: population, description (if any), segments with name, when
    /// and the metadata present, default and default_segment (if any). `parse(to_json(x)) == x`.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        if let Some(d) = &self.description {
            doc.insert("description".into(), Value::String(d.clone()));
        }
        doc.insert("population".into(), json!(self.population.name()));
        let rules: Vec<Value> = self
            .segments
            .iter()
            .zip(&self.whens)
            .map(|(s, w)| {
                let mut o = Map::new();
                o.insert("name".into(), Value::String(s.name.clone()));
                o.insert("when".into(), w.clone());
                meta_json(s, &mut o);
                Value::Object(o)
            })
            .collect();
        doc.insert("segments".into(), Value::Array(rules));
        if self.has_default {
            let d = &self.segments[self.segments.len() - 1];
            doc.insert("default".into(), Value::String(d.name.clone()));
            let mut meta = Map::new();
            meta_json(d, &mut meta);
            if !meta.is_empty() {
                doc.insert("default_segment".into(), Value::Object(meta));
            }
        }
        Value::Object(doc)
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn population(&self) -> Population {
        self.population
    }

    /// Every segment in display order: the rules in order, then the default segment (if the
    /// document has one) last.
    pub fn segments(&self) -> &[SegmentDef] {
        &self.segments
    }

    /// Index into `segments()` of the first rule whose `when` holds, else the default's
    /// index (or, without a default, the last rule: validation proved that this cannot
    /// happen for the customers of the population).
    pub fn classify(&self, v: &Values) -> usize {
        let first = match &self.flat {
            Some(flat) => flat.first_match(&self.pool, v),
            None => self.first_match_walked(v),
        };
        if let Some(i) = first {
            return i;
        }
        if self.has_default {
            self.roots.len()
        } else {
            self.roots.len() - 1
        }
    }

    /// The first rule that matches, each rule's tree walked in turn.
    fn first_match_walked(&self, v: &Values) -> Option<usize> {
        self.roots
            .iter()
            .position(|&root| eval(&self.nodes, &self.pool, root as usize, v))
    }

    /// Whether every condition reads only scores (r, f, m, fm, rfm_code): then the scheme is
    /// a function of (r, f, m) and usable by `rfm.segment(r, f, m, scheme)`.
    pub fn score_only(&self) -> bool {
        self.score_only
    }

    /// For a score-only scheme: the segment index of every (r, f, m) in 1..=5, indexed by
    /// [`code_index`]. None otherwise.
    pub fn score_table(&self) -> Option<[u8; 125]> {
        self.table
    }

    /// Whether any condition reads a metric that is not `is_basic()`, or population is All:
    /// then the analysis must compute the full customer metrics.
    pub fn needs_metrics(&self) -> bool {
        self.needs_metrics
    }

    /// Whether a condition reads `metric` (`rfm_code` counts as reading r, f and m): the
    /// other metrics need not be computed to classify a customer.
    pub fn reads(&self, metric: Metric) -> bool {
        let code =
            [Metric::R, Metric::F, Metric::M].contains(&metric) && self.reads & READS_CODE != 0;
        self.reads & (1 << metric as u32) != 0 || code
    }

    /// Whether any condition reads `p_alive` or `clv`: then the analysis fits the models of
    /// SPEC §12 on its rows.
    pub fn needs_clv(&self) -> bool {
        self.needs_clv
    }
}

/// The document of the built-in scheme `lifecycle` (SPEC §10).
pub const LIFECYCLE: &str = r#"{
  "description": "Lifecycle stages: where every customer with a purchase at or before as_of stands, from first order to churn; first match wins.",
  "population": "all",
  "segments": [
    {"name": "Churned",
     "when": {"days_since_last": {">": 730}},
     "description": "No purchase for more than two years.",
     "actions": ["remove from regular campaigns", "one low-cost win-back attempt", "analyse why they left"]},
    {"name": "Lapsed",
     "when": {"days_since_last": {">": 365}},
     "description": "No purchase for more than a year, but less than two.",
     "actions": ["win-back campaign", "ask what would bring them back", "show what is new"]},
    {"name": "VIP",
     "when": {"lifetime_value": {">=": 2000}, "frequency": {">=": 4}},
     "description": "Lifetime value of 2,000 or more and at least four orders in the window.",
     "actions": ["personal account manager", "early access and exclusive offers", "ask for referrals"]},
    {"name": "At-Risk",
     "when": {"lifetime_orders": {">=": 4}, "days_since_last": {">": 180}},
     "description": "Bought at least four times, but not in the last six months.",
     "actions": ["personal outreach", "reactivation offer", "remind them of their favourite products"]},
    {"name": "Loyal",
     "when": {"lifetime_orders": {">=": 4}},
     "description": "At least four orders and bought within the last six months.",
     "actions": ["loyalty programme", "upsell higher-value products", "ask for reviews"]},
    {"name": "Repeat Buyer",
     "when": {"lifetime_orders": {">=": 2}},
     "description": "Two or three orders so far.",
     "actions": ["recommendations based on past purchases", "nudge towards the fourth order"]},
    {"name": "First-Time Buyer",
     "when": {"tenure_days": {"<=": 90}},
     "description": "One order, placed within the last 90 days.",
     "actions": ["onboarding series", "second-purchase offer"]}
  ],
  "default": "One-Time Buyer",
  "default_segment": {
    "description": "One order, placed more than 90 days ago.",
    "actions": ["reminder with related products", "time-limited second-purchase offer"]
  }
}"#;

/// The built-in rule schemes by name (only `lifecycle` now), parsed once.
pub fn builtin(name: &str) -> Option<&'static RuleScheme> {
    static LIFECYCLE_SCHEME: OnceLock<RuleScheme> = OnceLock::new();
    match name {
        "lifecycle" => Some(LIFECYCLE_SCHEME.get_or_init(|| {
            RuleScheme::parse_text("lifecycle", LIFECYCLE)
                .expect("the built-in lifecycle document is valid")
        })),
        _ => None,
    }
}

/// A set of scores 1..=5 as a condition value: `4`, `{"in": [4, 5]}`, `{">=": 3}`,
/// `{"<=": 2}` or `{"between": [2, 4]}`. None when the set is every score.
fn score_set(set: &[i32]) -> Option<Value> {
    let (lo, hi) = (set[0], set[set.len() - 1]);
    let contiguous = (hi - lo + 1) as usize == set.len();
    Some(match set.len() {
        5 => return None,
        1 => json!(lo),
        2 => json!({"in": set}),
        _ if contiguous && lo == 1 => json!({"<=": hi}),
        _ if contiguous && hi == 5 => json!({">=": lo}),
        _ if contiguous => json!({"between": [lo, hi]}),
        _ => json!({"in": set}),
    })
}

/// The `when` of a set of cells of a two-score grid (`cell(a, b)`, rows `a`, columns `b`):
/// rows with the same columns grouped, or columns with the same rows, whichever is shorter.
fn grid_when(a: &str, b: &str, cell: impl Fn(i32, i32) -> bool) -> Value {
    // groups of (rows, columns), rows descending
    let group = |by_rows: bool| -> Vec<(Vec<i32>, Vec<i32>)> {
        let mut groups: Vec<(Vec<i32>, Vec<i32>)> = Vec::new();
        for x in (1..=5).rev() {
            let ys: Vec<i32> = (1..=5)
                .filter(|&y| if by_rows { cell(x, y) } else { cell(y, x) })
                .collect();
            if ys.is_empty() {
                continue;
            }
            match groups.iter_mut().find(|(_, g)| *g == ys) {
                Some((xs, _)) => xs.push(x),
                None => groups.push((vec![x], ys)),
            }
        }
        for (xs, _) in &mut groups {
            xs.sort_unstable();
        }
        groups
    };
    let by_rows = group(true);
    let by_cols = group(false);
    let (groups, row_key, col_key) = if by_cols.len() < by_rows.len() {
        (by_cols, b, a)
    } else {
        (by_rows, a, b)
    };
    let mut alts: Vec<Value> = groups
        .iter()
        .map(|(xs, ys)| {
            let mut o = Map::new();
            if let Some(v) = score_set(xs) {
                o.insert(row_key.into(), v);
            }
            if let Some(v) = score_set(ys) {
                o.insert(col_key.into(), v);
            }
            Value::Object(o)
        })
        .collect();
    if alts.len() == 1 {
        alts.pop().unwrap()
    } else {
        json!({ "any": alts })
    }
}

/// The `when` of a set of rfm codes: patterns with `?` where a digit takes every value,
/// otherwise the codes, best first.
fn codes_when(cells: u128) -> Value {
    if cells == ALL_CODES {
        return json!({});
    }
    let matches = |p: [u8; 3], r: i32, f: i32, m: i32| {
        [r, f, m]
            .iter()
            .zip(p)
            .all(|(d, c)| c == 0 || c as i32 == *d)
    };
    let mask_of = |p: [u8; 3]| {
        let mut mask = 0u128;
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    if matches(p, r, f, m) {
                        mask |= 1u128 << code_index(r, f, m);
                    }
                }
            }
        }
        mask
    };
    // candidate patterns, 0 = '?': most wildcards first, best codes first
    let mut candidates: Vec<[u8; 3]> = Vec::new();
    for r in 0..=5u8 {
        for f in 0..=5u8 {
            for m in 0..=5u8 {
                candidates.push([r, f, m]);
            }
        }
    }
    let wild = |p: &[u8; 3]| p.iter().filter(|&&c| c == 0).count();
    candidates.sort_by_key(|p| (std::cmp::Reverse(wild(p)), std::cmp::Reverse(*p)));
    let mut left = cells;
    let mut chosen: Vec<([u8; 3], u128)> = Vec::new();
    for p in candidates {
        let mask = mask_of(p);
        // take a pattern only when all its codes are wanted and none is taken yet
        if mask & !left == 0 && mask != 0 {
            left &= !mask;
            chosen.push((p, mask));
        }
    }
    debug_assert_eq!(left, 0);
    // best first: by the highest code each pattern covers
    chosen.sort_by_key(|(p, _)| std::cmp::Reverse(p.map(|c| if c == 0 { 5 } else { c })));
    let pats: Vec<String> = chosen
        .iter()
        .map(|(p, _)| {
            p.iter()
                .map(|&c| if c == 0 { '?' } else { (b'0' + c) as char })
                .collect()
        })
        .collect();
    if pats.len() == 1 {
        json!({ RFM_CODE: pats[0] })
    } else {
        json!({ RFM_CODE: pats })
    }
}

/// A built-in grid scheme written as a rule document, so a user can copy and edit it: its
/// description, population active, one segment per scheme segment in the same order with
/// its description and actions, and a `when` that covers exactly its cells. For `codes`,
/// whose last segment ("Other") is everything not listed, that segment is the `default`.
pub fn grid_document(s: &Scheme) -> Value {
    let use_default = s.axes == Axes::Code;
    let n = s.segments.len();
    let rules = if use_default { n - 1 } else { n };
    let segs: Vec<Value> = s.segments[..rules]
        .iter()
        .map(|seg| {
            let when = match s.axes {
                Axes::RecencyFm => grid_when("r", "fm", |r, fm| s.classify(r, fm, fm) == seg.name),
                Axes::RecencyFrequency => {
                    grid_when("r", "f", |r, f| s.classify(r, f, 1) == seg.name)
                }
                Axes::Code => {
                    let mut cells = 0u128;
                    for r in 1..=5 {
                        for f in 1..=5 {
                            for m in 1..=5 {
                                if s.classify(r, f, m) == seg.name {
                                    cells |= 1u128 << code_index(r, f, m);
                                }
                            }
                        }
                    }
                    codes_when(cells)
                }
            };
            json!({
                "name": seg.name,
                "when": when,
                "description": seg.description,
                "actions": seg.actions,
            })
        })
        .collect();
    let mut doc = json!({
        "description": s.description,
        "population": "active",
        "segments": segs,
    });
    if use_default {
        let last = &s.segments[n - 1];
        doc["default"] = json!(last.name);
        doc["default_segment"] = json!({
            "description": last.description,
            "actions": last.actions,
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: Value) -> Result<RuleScheme> {
        RuleScheme::parse("t", &doc)
    }

    /// A scheme with one rule over `when`, and a default "Other".
    fn one(when: Value) -> RuleScheme {
        parse(json!({"population": "all", "segments": [{"name": "A", "when": when}], "default": "Other"}))
            .unwrap_or_else(|e| panic!("{when}: {e:?}"))
    }

    fn err(doc: Value) -> RfmError {
        match parse(doc.clone()) {
            Ok(_) => panic!("accepted: {doc}"),
            Err(e) => e,
        }
    }

    /// The error of a one-rule scheme over `when` (with a default).
    fn when_err(when: Value) -> RfmError {
        err(json!({"segments": [{"name": "S", "when": when}], "default": "Other"}))
    }

    fn vals(pairs: &[(Metric, f64)]) -> Values {
        pairs
            .iter()
            .fold(Values::default(), |v, &(m, x)| v.with(m, Some(x)))
    }

    fn scores(r: i32, f: i32, m: i32) -> Values {
        vals(&[
            (Metric::R, r as f64),
            (Metric::F, f as f64),
            (Metric::M, m as f64),
            (Metric::Fm, ((f + m + 1) / 2) as f64),
            (Metric::Active, 1.0),
        ])
    }

    fn holds(s: &RuleScheme, v: &Values) -> bool {
        s.classify(v) == 0
    }

    #[test]
    fn metric_names_round_trip_in_index_order() {
        for (i, m) in ALL_METRICS.iter().enumerate() {
            assert_eq!(*m as usize, i);
            assert_eq!(Metric::from_name(m.name()), Some(*m));
        }
        assert_eq!(Metric::from_name("rfm_code"), None);
        assert_eq!(Metric::from_name("Recency_days"), None);
        assert_eq!(Metric::ReturnRate.name(), "return_rate");
        let scores: Vec<_> = ALL_METRICS.iter().filter(|m| m.is_score()).collect();
        assert_eq!(scores, [&Metric::R, &Metric::F, &Metric::M, &Metric::Fm]);
        let basic: Vec<&str> = ALL_METRICS
            .iter()
            .filter(|m| m.is_basic())
            .map(|m| m.name())
            .collect();
        assert_eq!(
            basic,
            [
                "recency_days",
                "frequency",
                "monetary",
                "r",
                "f",
                "m",
                "fm",
                "active"
            ]
        );
    }

    #[test]
    fn every_operator_true_false_and_null() {
        let aov = |x: f64| vals(&[(Metric::Aov, x)]);
        let null = Values::default();
        let cases: &[(Value, &[f64], &[f64])] = &[
            (json!({">": 10}), &[10.5, 100.0], &[10.0, 9.0]),
            (json!({">=": 10}), &[10.0, 11.0], &[9.99]),
            (json!({"<": 10}), &[9.99, -5.0], &[10.0, 11.0]),
            (json!({"<=": 10}), &[10.0, 0.0], &[10.01]),
            (json!({"=": 10}), &[10.0], &[10.01, 9.0]),
            (json!(10), &[10.0], &[11.0]),
            (
                json!({"between": [2, 5.5]}),
                &[2.0, 3.0, 5.5],
                &[1.99, 5.51],
            ),
            (json!({"between": [3, 3]}), &[3.0], &[2.0, 4.0]),
            (json!({"in": [1, 2.5, 7]}), &[1.0, 2.5, 7.0], &[2.0, 3.0]),
            (json!({"in": [4]}), &[4.0], &[5.0]),
            (json!([1, 3]), &[1.0, 3.0], &[2.0]),
            (json!({">=": 2, "<": 5}), &[2.0, 4.9], &[1.0, 5.0]),
        ];
        for (spec, yes, no) in cases {
            let s = one(json!({ "aov": spec }));
            for &x in *yes {
                assert!(holds(&s, &aov(x)), "{spec} on {x}");
            }
            for &x in *no {
                assert!(!holds(&s, &aov(x)), "{spec} on {x}");
            }
            assert!(!holds(&s, &null), "{spec} on NULL");
            // another metric set does not help
            assert!(!holds(&s, &vals(&[(Metric::Monetary, yes[0])])), "{spec}");
        }
    }

    #[test]
    fn active_takes_booleans() {
        let s = one(json!({"active": false}));
        assert!(holds(&s, &vals(&[(Metric::Active, 0.0)])));
        assert!(!holds(&s, &vals(&[(Metric::Active, 1.0)])));
        assert!(!holds(&s, &Values::default()));
        let s = one(json!({"active": {"in": [true]}}));
        assert!(holds(&s, &vals(&[(Metric::Active, 1.0)])));
        assert!(!holds(&s, &vals(&[(Metric::Active, 0.0)])));
    }

    #[test]
    fn score_conditions_and_null_scores() {
        let s = one(json!({"r": {"<": 3}}));
        assert!(holds(&s, &scores(2, 5, 5)));
        assert!(!holds(&s, &scores(3, 1, 1)));
        // a customer who is not active has no scores: every comparison is false
        assert!(!holds(&s, &vals(&[(Metric::Active, 0.0)])));
        let s = one(json!({"fm": {"between": [2, 3]}, "f": 3}));
        assert!(holds(&s, &scores(1, 3, 1))); // fm 2
        assert!(!holds(&s, &scores(1, 3, 5))); // fm 4
        assert!(!holds(&s, &scores(1, 2, 2)));
    }

    #[test]
    fn rfm_code_patterns() {
        let s = one(json!({"rfm_code": ["5?1", "511"]}));
        for (r, f, m, want) in [
            (5, 1, 1, true),
            (5, 3, 1, true),
            (5, 5, 1, true),
            (5, 3, 2, false),
            (4, 1, 1, false),
        ] {
            assert_eq!(holds(&s, &scores(r, f, m)), want, "{r}{f}{m}");
        }
        assert!(!holds(&s, &Values::default()));
        // NULL when one score is missing
        assert!(!holds(&s, &scores(5, 1, 1).with(Metric::M, None)));
        let s = one(json!({"rfm_code": "???"}));
        assert!(holds(&s, &scores(1, 2, 3)));
        assert!(!holds(&s, &vals(&[(Metric::Active, 0.0)])));
        let s = one(json!({"rfm_code": {"=": "1?5"}}));
        assert!(holds(&s, &scores(1, 4, 5)));
        assert!(!holds(&s, &scores(1, 4, 4)));
        // several operators must all hold
        let s = one(json!({"rfm_code": {"=": "5??", "in": ["?5?", "?4?"]}}));
        assert!(holds(&s, &scores(5, 4, 1)));
        assert!(!holds(&s, &scores(5, 3, 1)));
        assert!(!holds(&s, &scores(4, 5, 1)));
    }

    #[test]
    fn any_and_all_nest() {
        let s = one(json!({
            "any": [
                {"aov": {">": 100}, "returns": 0},
                {"all": [{"frequency": {">=": 3}}, {"any": [{"r": 5}, {"tenure_days": {"<": 10}}]}]}
            ],
            "monetary": {">": 0}
        }));
        let base = [(Metric::Monetary, 1.0)];
        let with = |extra: &[(Metric, f64)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            vals(&all)
        };
        assert!(holds(
            &s,
            &with(&[(Metric::Aov, 101.0), (Metric::Returns, 0.0)])
        ));
        assert!(!holds(
            &s,
            &with(&[(Metric::Aov, 101.0), (Metric::Returns, 1.0)])
        ));
        assert!(!holds(&s, &with(&[(Metric::Aov, 101.0)])));
        assert!(holds(
            &s,
            &with(&[(Metric::Frequency, 3.0), (Metric::R, 5.0)])
        ));
        assert!(holds(
            &s,
            &with(&[(Metric::Frequency, 3.0), (Metric::TenureDays, 9.0)])
        ));
        assert!(!holds(
            &s,
            &with(&[(Metric::Frequency, 3.0), (Metric::TenureDays, 10.0)])
        ));
        assert!(!holds(
            &s,
            &with(&[(Metric::Frequency, 2.0), (Metric::R, 5.0)])
        ));
        // the outer conjunction
        assert!(!holds(
            &s,
            &vals(&[
                (Metric::Aov, 101.0),
                (Metric::Returns, 0.0),
                (Metric::Monetary, 0.0)
            ])
        ));
        // {} is a catch-all, also inside any
        let s =
            parse(json!({"segments": [{"name": "A", "when": {"any": [{}, {"r": 1}]}}]})).unwrap();
        assert!(holds(&s, &Values::default()));
    }

    #[test]
    fn first_match_wins_and_default_is_last() {
        let s = parse(json!({
            "population": "all",
            "segments": [
                {"name": "Big", "when": {"monetary": {">": 1000}}},
                {"name": "Frequent", "when": {"frequency": {">=": 5}}},
            ],
            "default": "Rest"
        }))
        .unwrap();
        let names: Vec<&str> = s.segments().iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["Big", "Frequent", "Rest"]);
        let v = |mo: f64, fr: f64| vals(&[(Metric::Monetary, mo), (Metric::Frequency, fr)]);
        assert_eq!(s.classify(&v(2000.0, 9.0)), 0);
        assert_eq!(s.classify(&v(10.0, 9.0)), 1);
        assert_eq!(s.classify(&v(10.0, 1.0)), 2);
        assert_eq!(s.classify(&Values::default()), 2);
        assert!(s.needs_metrics());
        assert!(!s.score_only());
        assert_eq!(s.score_table(), None);
    }

    #[track_caller]
    fn check(e: &RfmError, message: &str) {
        assert_eq!(e.kind, ErrorKind::InvalidParameter, "{e:?}");
        assert_eq!(e.kind.sqlstate(), "22023");
        assert_eq!(e.message, message);
    }

    #[test]
    fn condition_errors_name_segment_and_condition() {
        let e = when_err(json!({"aov": {"~": 3}}));
        check(
            &e,
            "segment \"S\": condition \"aov\": operator \"~\" is unknown",
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("Operators are: >, >=, <, <=, =, between, in.")
        );
        check(
            &when_err(json!({"r": 6})),
            "segment \"S\": condition \"r\": score 6 is outside 1..5",
        );
        check(
            &when_err(json!({"f": {">=": 0}})),
            "segment \"S\": condition \"f\": score 0 is outside 1..5",
        );
        check(
            &when_err(json!({"fm": {"in": [2, 2.5]}})),
            "segment \"S\": condition \"fm\": score 2.5 is outside 1..5",
        );
        check(
            &when_err(json!({"m": {"between": [1, 9]}})),
            "segment \"S\": condition \"m\": score 9 is outside 1..5",
        );
        check(
            &when_err(json!({"r": "5"})),
            "segment \"S\": condition \"r\": operator \"=\" needs a score 1..5, got \"5\"",
        );
        check(
            &when_err(json!({"frequency": {"between": 3}})),
            "segment \"S\": condition \"frequency\": \"between\" needs [low, high], got 3",
        );
        check(
            &when_err(json!({"frequency": {"between": [1, 2, 3]}})),
            "segment \"S\": condition \"frequency\": \"between\" needs [low, high], got [1,2,3]",
        );
        check(
            &when_err(json!({"frequency": {"between": [5, 3]}})),
            "segment \"S\": condition \"frequency\": \"between\" needs [low, high] with low <= high, got [5,3]",
        );
        check(
            &when_err(json!({"aov": {"in": []}})),
            "segment \"S\": condition \"aov\": \"in\" needs a non-empty list, got []",
        );
        check(
            &when_err(json!({"aov": []})),
            "segment \"S\": condition \"aov\": \"in\" needs a non-empty list, got []",
        );
        check(
            &when_err(json!({"aov": {"in": 3}})),
            "segment \"S\": condition \"aov\": \"in\" needs a non-empty list, got 3",
        );
        check(
            &when_err(json!({"aov": {">": "100"}})),
            "segment \"S\": condition \"aov\": operator \">\" needs a number, got \"100\"",
        );
        check(
            &when_err(json!({"aov": true})),
            "segment \"S\": condition \"aov\": operator \"=\" needs a number, got true",
        );
        check(
            &when_err(json!({"aov": {}})),
            "segment \"S\": condition \"aov\": needs at least one operator, got {}",
        );
        check(
            &when_err(json!({"aov": null})),
            "segment \"S\": condition \"aov\": null cannot be compared",
        );
        check(
            &when_err(json!({"active": 1})),
            "segment \"S\": condition \"active\": operator \"=\" needs true or false, got 1",
        );
        check(
            &when_err(json!({"active": {">": false}})),
            "segment \"S\": condition \"active\": operator \">\" does not apply to true/false",
        );
        check(
            &when_err(json!({"rfm_code": "5x1"})),
            "segment \"S\": condition \"rfm_code\": pattern \"5x1\" is not three characters each 1..5 or ?",
        );
        check(
            &when_err(json!({"rfm_code": ["511", "5111"]})),
            "segment \"S\": condition \"rfm_code\": pattern \"5111\" is not three characters each 1..5 or ?",
        );
        check(
            &when_err(json!({"rfm_code": ["601"]})),
            "segment \"S\": condition \"rfm_code\": pattern \"601\" is not three characters each 1..5 or ?",
        );
        check(
            &when_err(json!({"rfm_code": 511})),
            "segment \"S\": condition \"rfm_code\": pattern 511 is not three characters each 1..5 or ?",
        );
        check(
            &when_err(json!({"rfm_code": {">": "511"}})),
            "segment \"S\": condition \"rfm_code\": operator \">\" does not apply to codes",
        );
        check(
            &when_err(json!({"any": []})),
            "segment \"S\": condition \"any\": needs a non-empty array of conditions, got []",
        );
        check(
            &when_err(json!({"all": {"r": 1}})),
            "segment \"S\": condition \"all\": needs a non-empty array of conditions, got {\"r\":1}",
        );
        check(
            &when_err(json!({"any": [{"r": 1}, 3]})),
            "segment \"S\": condition \"any\": element 2 must be an object of conditions, got 3",
        );
        // nested conditions are named too
        check(
            &when_err(json!({"any": [{"all": [{"aov": {"gt": 1}}]}]})),
            "segment \"S\": condition \"aov\": operator \"gt\" is unknown",
        );
        let e = when_err(json!({"spend": {">": 1}}));
        check(&e, "segment \"S\": condition \"spend\": unknown metric");
        let hint = e.hint.unwrap();
        for m in ALL_METRICS {
            assert!(hint.contains(m.name()), "{hint}");
        }
        assert!(hint.contains("rfm_code"));
        let e = when_err(json!({"first_purchase_at": {">": 1}}));
        check(
            &e,
            "segment \"S\": condition \"first_purchase_at\": timestamps cannot be used in rules",
        );
        assert!(e.hint.unwrap().contains("tenure_days"));
        let e = when_err(json!({"last_purchase_at": "2024-01-01"}));
        check(
            &e,
            "segment \"S\": condition \"last_purchase_at\": timestamps cannot be used in rules",
        );
        assert!(e.hint.unwrap().contains("days_since_last"));
    }

    #[test]
    fn document_errors() {
        let ok_seg = json!({"name": "A", "when": {"aov": {">": 1}}});
        check(
            &err(json!([1])),
            "scheme \"t\": the definition must be a JSON object, got an array",
        );
        let e = err(json!({"segments": [ok_seg], "default": "O", "colour": "red"}));
        check(&e, "scheme \"t\": unknown key \"colour\"");
        assert!(e.hint.unwrap().contains("population"));
        check(
            &err(json!({"default": "O"})),
            "scheme \"t\" has no segments",
        );
        check(
            &err(json!({"segments": [], "default": "O"})),
            "scheme \"t\" has no segments",
        );
        check(
            &err(json!({"segments": {"name": "A"}})),
            "scheme \"t\": \"segments\" must be an array of segments, got {\"name\":\"A\"}",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": "O", "population": "everyone"})),
            "scheme \"t\": \"population\" must be \"active\" or \"all\", got \"everyone\"",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": "O", "description": 5})),
            "scheme \"t\": \"description\" must be a string, got 5",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": ""})),
            "scheme \"t\": \"default\" must be a segment name (a non-empty string), got \"\"",
        );
        check(
            &err(json!({"segments": [ok_seg, "B"], "default": "O"})),
            "scheme \"t\": segment 2 must be an object, got \"B\"",
        );
        check(
            &err(json!({"segments": [{"when": {}}]})),
            "scheme \"t\": segment 1 has no \"name\"",
        );
        check(
            &err(json!({"segments": [{"name": "", "when": {}}]})),
            "scheme \"t\": segment 1: \"name\" must not be empty",
        );
        check(
            &err(json!({"segments": [{"name": 3, "when": {}}]})),
            "scheme \"t\": segment 1: \"name\" must be a string, got 3",
        );
        check(
            &err(json!({"segments": [{"name": "A"}], "default": "O"})),
            "segment \"A\" has no \"when\"",
        );
        check(
            &err(json!({"segments": [{"name": "A", "when": [1]}], "default": "O"})),
            "segment \"A\": \"when\" must be an object of conditions, got [1]",
        );
        let e = err(json!({"segments": [{"name": "A", "when": {}, "colour": 1}]}));
        check(&e, "segment \"A\": unknown key \"colour\"");
        assert!(e.hint.unwrap().contains("visit_every_days"));
        let seg = |k: &str, v: Value| {
            let mut o = json!({"name": "A", "when": {}});
            o[k] = v;
            err(json!({ "segments": [o] }))
        };
        check(
            &seg("description", json!(["x"])),
            "segment \"A\": \"description\" must be a string, got [\"x\"]",
        );
        check(
            &seg("actions", json!("call")),
            "segment \"A\": \"actions\" must be an array of strings, got \"call\"",
        );
        check(
            &seg("actions", json!(["call", 2])),
            "segment \"A\": \"actions\" must be an array of strings, got [\"call\",2]",
        );
        for bad in [
            json!(0),
            json!(-3),
            json!(1.5),
            json!("7"),
            json!(3_000_000_000i64),
        ] {
            check(
                &seg("visit_every_days", bad.clone()),
                &format!(
                    "segment \"A\": \"visit_every_days\" must be a positive whole number of days, got {bad}"
                ),
            );
        }
        check(
            &seg("priority", json!(0.5)),
            "segment \"A\": \"priority\" must be a whole number, got 0.5",
        );
        // duplicates
        check(
            &err(json!({"segments": [ok_seg, {"name": "A", "when": {"r": 1}}], "default": "O"})),
            "segment \"A\": the name is used by an earlier segment too",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": "A"})),
            "scheme \"t\": \"default\" segment \"A\" has the name of a rule segment too",
        );
        // default_segment
        check(
            &err(json!({"segments": [{"name": "A", "when": {}}], "default_segment": {}})),
            "scheme \"t\": \"default_segment\" is given without \"default\"",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": "O", "default_segment": {"name": "O"}})),
            "scheme \"t\": \"default_segment\": unknown key \"name\"",
        );
        check(
            &err(
                json!({"segments": [ok_seg], "default": "O", "default_segment": {"priority": "high"}}),
            ),
            "scheme \"t\": \"default_segment\": \"priority\" must be a whole number, got \"high\"",
        );
        check(
            &err(json!({"segments": [ok_seg], "default": "O", "default_segment": []})),
            "scheme \"t\": \"default_segment\" must be an object, got []",
        );
        // too many segments
        let many: Vec<Value> = (0..255)
            .map(|i| json!({"name": format!("S{i}"), "when": {"aov": {">": i}}}))
            .collect();
        check(
            &err(json!({"segments": many, "default": "O"})),
            "scheme \"t\" has 256 segments; at most 255 are allowed",
        );
    }

    #[test]
    fn bad_json_text_is_22p02() {
        let e = RuleScheme::parse_text("t", "{\"segments\": [").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidText);
        assert_eq!(e.kind.sqlstate(), "22P02");
        assert!(e
            .message
            .starts_with("scheme \"t\": the definition is not valid JSON"));
        let s = RuleScheme::parse_text("t", r#"{"segments": [{"name": "A", "when": {}}]}"#);
        assert_eq!(s.unwrap().segments().len(), 1);
    }

    #[test]
    fn unreachable_rules() {
        // covered by earlier rules
        let e = err(json!({"segments": [
            {"name": "Top", "when": {"r": {">=": 4}}},
            {"name": "Low", "when": {"r": {"<=": 2}}},
            {"name": "Mid", "when": {"r": {"between": [2, 5]}, "f": {">": 1}}},
            {"name": "Odd", "when": {"any": [{"r": 5}, {"r": 1, "f": 5}]}},
        ], "default": "Other"}));
        check(
            &e,
            "segment \"Odd\" can never match: every customer it could match is matched first by segments \"Top\" and \"Low\"",
        );
        assert!(e.hint.unwrap().contains("first match wins"));
        // one earlier segment
        check(
            &err(json!({"segments": [
                {"name": "Champions", "when": {"rfm_code": "5??"}},
                {"name": "Best", "when": {"r": 5, "fm": 5}},
            ], "default": "Other"})),
            "segment \"Best\" can never match: every customer it could match is matched first by segment \"Champions\"",
        );
        // contradictory
        check(
            &err(
                json!({"segments": [{"name": "X", "when": {"r": {">": 3, "<": 3}}}], "default": "O"}),
            ),
            "segment \"X\" can never match: its conditions contradict each other",
        );
        check(
            &err(json!({"segments": [{"name": "X", "when": {"r": {">": 5}}}], "default": "O"})),
            "segment \"X\" can never match: its conditions contradict each other",
        );
        check(
            &err(
                json!({"segments": [{"name": "X", "when": {"rfm_code": "5??", "r": 4}}], "default": "O"}),
            ),
            "segment \"X\" can never match: its conditions contradict each other",
        );
        // active customers only: active = false never holds; with population all it can
        check(
            &err(
                json!({"segments": [{"name": "Gone", "when": {"active": false}}], "default": "O"}),
            ),
            "segment \"Gone\" can never match: its conditions contradict each other",
        );
        let s = parse(json!({"population": "all", "segments": [{"name": "Gone", "when": {"active": false}}], "default": "O"})).unwrap();
        assert_eq!(s.classify(&vals(&[(Metric::Active, 0.0)])), 0);
        // a mixed rule whose score part is covered: the other conditions do not save it
        check(
            &err(json!({"segments": [
                {"name": "Recent", "when": {"r": 5}},
                {"name": "Recent big", "when": {"r": 5, "aov": {">": 200}}},
            ], "default": "Other"})),
            "segment \"Recent big\" can never match: every customer it could match is matched first by segment \"Recent\"",
        );
        // a mixed rule with an uncovered score part is fine; a non-score rule after a
        // catch-all is not
        assert!(parse(json!({"segments": [
            {"name": "Recent", "when": {"r": 5}},
            {"name": "Big", "when": {"r": 4, "aov": {">": 200}}},
            {"name": "Rich", "when": {"aov": {">": 500}}},
        ], "default": "Other"}))
        .is_ok());
        check(
            &err(json!({"population": "all", "segments": [
                {"name": "All", "when": {}},
                {"name": "Rich", "when": {"aov": {">": 500}}},
            ]})),
            "segment \"Rich\" can never match: every customer it could match is matched first by segment \"All\"",
        );
        // under population all, a score rule does not cover customers who are not active
        assert!(parse(json!({"population": "all", "segments": [
            {"name": "Scored", "when": {"rfm_code": "???"}},
            {"name": "Rest", "when": {}},
        ]}))
        .is_ok());
    }

    #[test]
    fn default_required_or_superfluous() {
        let e = err(json!({"segments": [{"name": "Big", "when": {"aov": {">": 1}}}]}));
        check(
            &e,
            "scheme \"t\" needs a \"default\" segment: no rule surely matches customers with rfm code 111 and 124 other cases",
        );
        assert!(e.hint.unwrap().contains("\"default\""));
        check(
            &err(json!({"segments": [{"name": "Top", "when": {"r": {">": 1}}}]})),
            "scheme \"t\" needs a \"default\" segment: no rule surely matches customers with rfm code 111 and 24 other cases",
        );
        check(
            &err(json!({"segments": [{"name": "Top", "when": {"rfm_code": {"in": ["1??", "2??", "3??", "4??", "5?1", "5?2", "5?3", "5?4", "515", "525", "535", "545"]}}}]})),
            "scheme \"t\" needs a \"default\" segment: no rule surely matches customers with rfm code 555",
        );
        check(
            &err(json!({"population": "all", "segments": [{"name": "Scored", "when": {"r": {">=": 1}}}]})),
            "scheme \"t\" needs a \"default\" segment: no rule surely matches customers who are not active",
        );
        // covering every cell without a default is fine ...
        let s = parse(json!({"segments": [
            {"name": "Hi", "when": {"r": {">=": 3}}},
            {"name": "Lo", "when": {"any": [{"r": 1}, {"r": 2}]}},
        ]}))
        .unwrap();
        assert_eq!(s.segments().len(), 2);
        assert_eq!(s.classify(&scores(1, 1, 1)), 1);
        // values outside validation's cases fall to the last rule
        assert_eq!(s.classify(&Values::default()), 1);
        // ... and a default then can never be used
        let e = err(json!({"segments": [
            {"name": "Hi", "when": {"r": {">=": 3}}},
            {"name": "Lo", "when": {"r": {"<": 3}}},
        ], "default": "Other"}));
        check(
            &e,
            "scheme \"t\": \"default\" segment \"Other\" can never be used: the rules match every customer",
        );
        assert!(e.hint.unwrap().starts_with("Remove \"default\""));
        check(
            &err(json!({"segments": [{"name": "Everyone", "when": {}}], "default": "Other"})),
            "scheme \"t\": \"default\" segment \"Other\" can never be used: the rules match every customer",
        );
    }

    #[test]
    fn score_only_table_and_needs_metrics() {
        let s = parse(json!({"segments": [
            {"name": "Best", "when": {"rfm_code": ["55?"]}},
            {"name": "Recent", "when": {"r": {">=": 4}, "fm": {">=": 2}}},
        ], "default": "Other"}))
        .unwrap();
        assert!(s.score_only());
        assert!(!s.needs_metrics());
        let t = s.score_table().unwrap();
        assert_eq!(t[code_index(5, 5, 1)], 0);
        assert_eq!(t[code_index(4, 1, 2)], 1); // fm 2
        assert_eq!(t[code_index(4, 1, 1)], 2);
        assert_eq!(t[code_index(3, 5, 5)], 2);
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    assert_eq!(
                        t[code_index(r, f, m)] as usize,
                        s.classify(&scores(r, f, m))
                    );
                }
            }
        }
        // basic metrics: not score-only, no extra metrics
        let s = one(json!({"recency_days": {"<": 30}, "active": true}));
        assert!(!s.score_only());
        assert!(s.needs_metrics()); // population all
        let s = parse(json!({"segments": [{"name": "A", "when": {"recency_days": {"<": 30}, "monetary": {">": 0}, "active": true}}], "default": "O"})).unwrap();
        assert!(!s.score_only());
        assert!(!s.needs_metrics());
        assert_eq!(s.population(), Population::Active);
        let s = parse(json!({"segments": [{"name": "A", "when": {"any": [{"r": 5}, {"return_rate": {"<": 0.1}}]}}], "default": "O"})).unwrap();
        assert!(!s.score_only());
        assert!(s.needs_metrics());
        // population all with score rules: score-only but needs the metrics of everyone
        let s = parse(json!({"population": "all", "segments": [{"name": "A", "when": {"r": 5}}], "default": "O"})).unwrap();
        assert!(s.score_only());
        assert!(s.needs_metrics());
        assert_eq!(s.score_table().unwrap()[code_index(5, 1, 1)], 0);
        assert_eq!(s.score_table().unwrap()[code_index(4, 1, 1)], 1);
    }

    #[test]
    fn to_json_round_trips() {
        let docs = [
            json!({"description": "VIPs first", "population": "all",
                "segments": [
                    {"name": "VIP", "when": {"lifetime_value": {">": 2000}, "frequency": {">=": 4},
                        "aov": {">": 200}, "days_since_last": {"<=": 90}, "return_rate": {"<": 0.1}},
                     "description": "Best", "actions": ["call", "gift"], "visit_every_days": 14, "priority": 1},
                    {"name": "New", "when": {"any": [{"rfm_code": ["5?1", "511"]}, {"tenure_days": {"<=": 30}}]}},
                    {"name": "Empty actions", "when": {"aov": 3}, "actions": []}
                ],
                "default": "Other", "default_segment": {"description": "The rest", "priority": 9}}),
            json!({"segments": [{"name": "Hi", "when": {"r": {">=": 3}}}, {"name": "Lo", "when": {}}]}),
        ];
        for d in docs {
            let s = parse(d.clone()).unwrap();
            let canon = s.to_json();
            assert_eq!(parse(canon.clone()).unwrap(), s);
            assert_eq!(
                canon["population"],
                d.get("population").cloned().unwrap_or(json!("active"))
            );
            assert_eq!(canon["segments"][0]["when"], d["segments"][0]["when"]);
        }
        let s = parse(json!({"segments": [{"name": "A", "when": {"aov": 1}, "actions": [], "priority": -2}], "default": "B", "default_segment": {}})).unwrap();
        assert_eq!(
            s.to_json(),
            json!({"population": "active", "segments": [{"name": "A", "when": {"aov": 1}, "priority": -2}], "default": "B"})
        );
        assert_eq!(s.segments()[0].priority, Some(-2));
        let l = builtin("lifecycle").unwrap();
        assert_eq!(&RuleScheme::parse("lifecycle", &l.to_json()).unwrap(), l);
    }

    #[test]
    fn metadata_is_kept() {
        let s = parse(json!({"description": "d", "segments": [
            {"name": "A", "when": {"aov": 1}, "description": "a", "actions": ["x", "y"], "visit_every_days": 7, "priority": 2}
        ], "default": "B", "default_segment": {"description": "b", "actions": ["z"], "visit_every_days": 30.0}})).unwrap();
        assert_eq!(s.description(), Some("d"));
        assert_eq!(
            s.segments(),
            [
                SegmentDef {
                    name: "A".into(),
                    description: Some("a".into()),
                    actions: vec!["x".into(), "y".into()],
                    visit_every_days: Some(7),
                    priority: Some(2),
                },
                SegmentDef {
                    name: "B".into(),
                    description: Some("b".into()),
                    actions: vec!["z".into()],
                    visit_every_days: Some(30),
                    priority: None,
                },
            ]
        );
    }

    #[test]
    fn reserved_and_bad_names() {
        for n in ["standard", "rf10", "codes", "lifecycle"] {
            assert!(is_reserved(n));
            let e = check_name(n).unwrap_err();
            assert_eq!(e.kind, ErrorKind::ReservedName);
            assert_eq!(e.kind.sqlstate(), "42939");
            assert_eq!(
                e.message,
                format!("scheme \"{n}\" is built in; choose another name")
            );
            assert!(e.hint.unwrap().contains("rfm.scheme_definition"));
        }
        // a case variant of a built-in name is the built-in name
        for n in ["Standard", "RF10", "Codes", "LIFECYCLE"] {
            assert!(!is_reserved(n));
            let e = check_name(n).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "42939", "{n}");
            assert!(e.message.contains("differs only in case"), "{}", e.message);
        }
        assert_eq!(check_name("my scheme"), Ok(()));
        assert_eq!(check_name("Saisonkunden Ä-Z"), Ok(()));
        assert_eq!(check_name(&"x".repeat(63)), Ok(()));
        let e = check_name(&"x".repeat(64)).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22023");
        assert!(e.message.contains("longer than 63 bytes"));
        // bytes, not characters
        assert!(check_name(&"é".repeat(32)).is_err());
        assert_eq!(check_name("").unwrap_err().kind.sqlstate(), "22023");
    }

    #[test]
    fn names_are_printable_and_trimmed() {
        for n in [
            "vip\n",
            "a\u{0}b",
            "tab\there",
            "zero\u{200B}width",
            "joiner\u{200D}",
            "bom\u{FEFF}",
            "rtl\u{202E}mark",
            "soft\u{00AD}hyphen",
            "\u{2066}isolate",
        ] {
            let e = check_name(n).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023", "{n:?}");
            assert!(
                e.message.contains("unprintable character U+"),
                "{}",
                e.message
            );
        }
        for n in [" vip", "vip ", "\u{00A0}vip", "vip\u{3000}"] {
            let e = check_name(n).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023", "{n:?}");
            assert!(e.message.contains("white space"), "{}", e.message);
        }
        // inner spaces are fine
        assert_eq!(check_name("key accounts"), Ok(()));
    }

    #[test]
    fn messages_quote_a_short_prefix() {
        let long = "n".repeat(1 << 20);
        let e = check_name(&long).unwrap_err();
        assert!(e.message.len() < 120, "{}", e.message);
        assert!(e.message.contains("(1048576 bytes)"));
        assert_eq!(crate::shown("vip"), "\"vip\"");
        let s = crate::shown(&"ä".repeat(50));
        assert_eq!(s, format!("\"{}...\" (100 bytes)", "ä".repeat(40)));
        assert!(crate::scheme::builtin(&long).unwrap_err().message.len() < 120);
    }

    #[test]
    fn lifecycle_document() {
        let l = builtin("lifecycle").unwrap();
        assert!(builtin("standard").is_none());
        assert_eq!(l.population(), Population::All);
        assert!(l.description().is_some());
        assert!(l.needs_metrics());
        assert!(!l.score_only());
        let names: Vec<&str> = l.segments().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Churned",
                "Lapsed",
                "VIP",
                "At-Risk",
                "Loyal",
                "Repeat Buyer",
                "First-Time Buyer",
                "One-Time Buyer"
            ]
        );
        for s in l.segments() {
            assert!(s.description.is_some(), "{}", s.name);
            assert!(!s.actions.is_empty(), "{}", s.name);
        }
    }

    /// A customer for the lifecycle: active when the last purchase is within a year.
    fn customer(days_since_last: f64, tenure: f64, orders: f64, ltv: f64, freq: f64) -> Values {
        vals(&[
            (Metric::DaysSinceLast, days_since_last),
            (Metric::TenureDays, tenure),
            (Metric::LifetimeOrders, orders),
            (Metric::LifetimeValue, ltv),
            (Metric::Frequency, freq),
            (
                Metric::Active,
                if days_since_last <= 365.0 { 1.0 } else { 0.0 },
            ),
        ])
    }

    #[test]
    fn lifecycle_boundaries() {
        let l = builtin("lifecycle").unwrap();
        let stage = |v: Values| l.segments()[l.classify(&v)].name.as_str();
        // Churned / Lapsed by days since the last purchase
        assert_eq!(stage(customer(731.0, 2000.0, 9.0, 9000.0, 0.0)), "Churned");
        assert_eq!(stage(customer(730.0, 2000.0, 9.0, 9000.0, 0.0)), "Lapsed");
        assert_eq!(stage(customer(366.0, 2000.0, 1.0, 10.0, 0.0)), "Lapsed");
        assert_eq!(
            stage(customer(365.0, 2000.0, 1.0, 10.0, 1.0)),
            "One-Time Buyer"
        );
        // VIP: lifetime value and frequency in the window
        assert_eq!(stage(customer(200.0, 900.0, 8.0, 2000.0, 4.0)), "VIP");
        assert_eq!(stage(customer(200.0, 900.0, 8.0, 1999.99, 4.0)), "At-Risk");
        assert_eq!(stage(customer(200.0, 900.0, 8.0, 2000.0, 3.0)), "At-Risk");
        assert_eq!(stage(customer(365.0, 900.0, 8.0, 5000.0, 4.0)), "VIP");
        // At-Risk / Loyal by days since the last purchase
        assert_eq!(stage(customer(181.0, 900.0, 4.0, 100.0, 1.0)), "At-Risk");
        assert_eq!(stage(customer(180.0, 900.0, 4.0, 100.0, 1.0)), "Loyal");
        // lifetime orders 1 / 2 / 3 / 4
        assert_eq!(stage(customer(10.0, 900.0, 4.0, 100.0, 1.0)), "Loyal");
        assert_eq!(
            stage(customer(10.0, 900.0, 3.0, 100.0, 1.0)),
            "Repeat Buyer"
        );
        assert_eq!(
            stage(customer(10.0, 900.0, 2.0, 100.0, 1.0)),
            "Repeat Buyer"
        );
        assert_eq!(
            stage(customer(10.0, 900.0, 1.0, 100.0, 1.0)),
            "One-Time Buyer"
        );
        assert_eq!(stage(customer(10.0, 90.0, 3.0, 100.0, 2.0)), "Repeat Buyer");
        // First-Time / One-Time Buyer by tenure
        assert_eq!(
            stage(customer(10.0, 90.0, 1.0, 100.0, 1.0)),
            "First-Time Buyer"
        );
        assert_eq!(
            stage(customer(91.0, 91.0, 1.0, 100.0, 1.0)),
            "One-Time Buyer"
        );
        assert_eq!(stage(customer(0.0, 0.0, 1.0, 5.0, 1.0)), "First-Time Buyer");
        // a stage never depends on a NULL metric matching
        assert_eq!(stage(Values::default()), "One-Time Buyer");
    }

    #[test]
    fn the_flat_form_classifies_as_the_rule_trees() {
        // schemes with and without a flat form: conjunctions of comparisons (repeated
        // comparisons share a bit), a single comparison, `in`, and a nested group (none)
        let flat = builtin("lifecycle").unwrap().clone();
        assert!(flat.flat.is_some());
        let mixed = parse(json!({"population": "all", "segments": [
            {"name": "A", "when": {"frequency": {">=": 3}, "monetary": {"between": [10, 500]}}},
            {"name": "B", "when": {"returns": {"in": [1, 2, 5]}}},
            {"name": "C", "when": {"frequency": {">=": 3}}},
            {"name": "D", "when": {"tenure_days": {"<": 30}, "frequency": {"=": 1}}},
            {"name": "E", "when": {}}]}))
        .unwrap();
        assert!(mixed.flat.is_some());
        let nested = parse(json!({"population": "all", "segments": [
            {"name": "A", "when": {"any": [{"frequency": {">=": 3}}, {"returns": {">": 1}}]}},
            {"name": "B", "when": {"monetary": {">": 100}}}], "default": "Z"}))
        .unwrap();
        assert!(nested.flat.is_none());
        let mut x: u64 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for s in [&flat, &mixed, &nested] {
            for _ in 0..20_000 {
                let mut v = Values::default();
                for m in ALL_METRICS {
                    let r = next();
                    // NULL, or a small whole number, or a value around the limits above
                    v.0[m as usize] = match r % 4 {
                        0 => None,
                        1 => Some((r >> 8) as f64 % 8.0),
                        2 => Some(
                            [
                                0.0, 1.0, 2.0, 3.0, 4.0, 10.0, 29.0, 30.0, 90.0, 91.0, 180.0,
                                181.0, 365.0, 366.0, 500.0, 730.0, 731.0, 1999.99, 2000.0,
                            ][(r >> 8) as usize % 19],
                        ),
                        _ => Some(((r >> 8) % 3000) as f64 / 1.5),
                    };
                }
                let walked = s.first_match_walked(&v);
                let flat = s
                    .flat
                    .as_ref()
                    .map_or(walked, |f| f.first_match(&s.pool, &v));
                assert_eq!(flat, walked, "{v:?}");
            }
        }
    }
}
