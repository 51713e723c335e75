//! The one-pass analysis engine behind `rfm.analyze`: a compact per-customer hash table
//! filled row by row, mergeable for parallel plans, and a final step that computes
//! thresholds, scores, segments, ABC tiers, the summary and the grid.

use crate::abc;
use crate::codec::{Reader, Writer};
use crate::error::{ErrorKind, Result, RfmError};
use crate::numeric::{self, Decimal};
use crate::quantile;
use crate::scheme::{self, Scheme};
use crate::score;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// How thresholds are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Linear-interpolation quantiles of the active customers (ties never split).
    Quantile,
    /// Equal-count buckets, ties broken by (value, customer key): reproducible NTILE.
    Ntile,
    /// Thresholds given by the user (NetSuite style).
    Fixed,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Quantile => "quantile",
            Method::Ntile => "ntile",
            Method::Fixed => "fixed",
        }
    }

    fn from_u8(v: u8) -> Option<Self> {
        [Method::Quantile, Method::Ntile, Method::Fixed]
            .into_iter()
            .find(|m| *m as u8 == v)
    }
}

/// The three metrics, in the order they are reported.
pub const METRICS: [&str; 3] = ["recency", "frequency", "monetary"];

/// Everything the options say, resolved to numbers (timestamps are PostgreSQL
/// microseconds since 2000-01-01 UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub as_of: i64,
    /// Rows count when `window_start < ordered_at <= as_of`.
    pub window_start: i64,
    /// The period as text, for the overview.
    pub period: String,
    pub buckets: usize,
    /// `None` when the user asked for no segments (`"scheme": null`).
    pub scheme: Option<&'static Scheme>,
    pub method: Method,
    /// Fixed thresholds for recency, frequency, monetary (method `fixed`).
    pub fixed: Option<[Vec<f64>; 3]>,
    pub abc_shares: Vec<f64>,
    pub abc_names: Vec<String>,
}

impl Config {
    /// Checks the combination of settings (schemes need 5 buckets; fixed needs thresholds).
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = self.scheme {
            if self.buckets != scheme::SCHEME_BUCKETS as usize {
                return Err(RfmError::invalid(format!(
                    "scheme \"{}\" is defined on 5 buckets, but buckets is {}",
                    s.name, self.buckets
                ))
                .with_hint(
                    "Use \"buckets\": 5, or \"scheme\": null for scores without segments.",
                ));
            }
        }
        if self.abc_names.len() < self.abc_shares.len() {
            return Err(RfmError::invalid(format!(
                "abc_names has {} names but abc_shares has {} tiers",
                self.abc_names.len(),
                self.abc_shares.len()
            )));
        }
        match (&self.fixed, self.method) {
            (None, Method::Fixed) => Err(RfmError::invalid(
                "method \"fixed\" needs \"thresholds\" for recency, frequency and monetary",
            )
            .with_hint(
                r#"For example "thresholds": {"recency": [30,90,180,365], "frequency": [2,3,5,10], "monetary": [100,500,1000,2000]}"#,
            )),
            (Some(_), Method::Quantile | Method::Ntile) => Err(RfmError::invalid(
                "option \"thresholds\" is only used with \"method\": \"fixed\"",
            )),
            (Some(f), Method::Fixed) => {
                for (metric, t) in METRICS.iter().zip(f) {
                    if t.len() + 1 != self.buckets {
                        return Err(RfmError::invalid(format!(
                            "thresholds.{metric} must have buckets - 1 = {} values, got {}",
                            self.buckets - 1,
                            t.len()
                        )));
                    }
                    let opt: Vec<Option<f64>> = t.iter().copied().map(Some).collect();
                    score::check_thresholds(&opt)
                        .map_err(|e| RfmError::new(e.kind, format!("thresholds.{metric}: {}", e.message)))?;
                }
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }

    fn write(&self, w: &mut Writer) {
        w.i64(self.as_of);
        w.i64(self.window_start);
        w.bytes(self.period.as_bytes());
        w.u32(self.buckets as u32);
        w.bytes(self.scheme.map(|s| s.name).unwrap_or("").as_bytes());
        w.u8(self.method as u8);
        match &self.fixed {
            None => w.u8(0),
            Some(f) => {
                w.u8(1);
                for t in f {
                    w.f64s(t);
                }
            }
        }
        w.f64s(&self.abc_shares);
        w.u32(self.abc_names.len() as u32);
        for n in &self.abc_names {
            w.bytes(n.as_bytes());
        }
    }

    fn read(r: &mut Reader) -> Option<Config> {
        let as_of = r.i64()?;
        let window_start = r.i64()?;
        let period = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let buckets = r.u32()? as usize;
        let scheme_name = std::str::from_utf8(r.bytes()?).ok()?;
        let scheme = if scheme_name.is_empty() {
            None
        } else {
            Some(scheme::builtin(scheme_name).ok()?)
        };
        let method = Method::from_u8(r.u8()?)?;
        let fixed = match r.u8()? {
            0 => None,
            _ => Some([r.f64s()?, r.f64s()?, r.f64s()?]),
        };
        let abc_shares = r.f64s()?;
        let n = r.u32()? as usize;
        let mut abc_names = Vec::with_capacity(n.min(100));
        for _ in 0..n {
            abc_names.push(String::from_utf8(r.bytes()?.to_vec()).ok()?);
        }
        Some(Config {
            as_of,
            window_start,
            period,
            buckets,
            scheme,
            method,
            fixed,
            abc_shares,
            abc_names,
        })
    }
}

/// How amounts are added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyKind {
    /// `numeric`: integer units at a common scale (the largest seen).
    Exact { scale: u32 },
    /// `double precision`.
    Float,
}

/// One customer: 32 bytes in the table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The bigint key, or (offset << 32 | length) of a text key in the arena.
    key: u64,
    /// Latest purchase in the window (`i64::MIN` when none).
    last: i64,
    /// Total of amounts in the window: units at the state's scale, or f64 bits.
    money: i64,
    /// Purchases in the window.
    freq: u32,
    /// Rows (purchases and returns) in the window.
    rows: u32,
}

/// A customer key as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Int(i64),
    Text(&'a [u8]),
}

/// The aggregate state.
pub struct State {
    pub config: Config,
    text_keys: bool,
    money: MoneyKind,
    table: HashTable<Entry>,
    arena: Vec<u8>,
    hasher: foldhash::fast::FixedState,
}

fn overflow() -> RfmError {
    numeric::too_large()
}

impl State {
    pub fn new(config: Config, text_keys: bool, exact: bool) -> State {
        State {
            config,
            text_keys,
            money: if exact {
                MoneyKind::Exact { scale: 0 }
            } else {
                MoneyKind::Float
            },
            table: HashTable::new(),
            arena: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x0005_eed0_f2f3),
        }
    }

    /// Whether keys are text (else bigint).
    pub fn text_keys(&self) -> bool {
        self.text_keys
    }

    /// Whether amounts are exact (numeric).
    pub fn exact(&self) -> bool {
        matches!(self.money, MoneyKind::Exact { .. })
    }

    /// Customers seen so far (active or not).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Bytes the state holds (table and key arena), for limits and benchmarks.
    pub fn memory_bytes(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<Entry>() + 1) + self.arena.capacity()
    }

    fn key_of<'a>(arena: &'a [u8], text: bool, e: &Entry) -> Key<'a> {
        if text {
            let off = (e.key >> 32) as usize;
            let len = (e.key & 0xFFFF_FFFF) as usize;
            Key::Text(&arena[off..off + len])
        } else {
            Key::Int(e.key as i64)
        }
    }

    fn hash_key(hasher: &foldhash::fast::FixedState, key: Key) -> u64 {
        match key {
            Key::Int(k) => hasher.hash_one(k),
            Key::Text(t) => hasher.hash_one(t),
        }
    }

    /// The entry of `key`, created empty when new.
    fn entry(&mut self, key: Key) -> Result<&mut Entry> {
        let hash = Self::hash_key(&self.hasher, key);
        let empty_money = match self.money {
            MoneyKind::Exact { .. } => 0,
            MoneyKind::Float => 0f64.to_bits() as i64,
        };
        let State {
            table,
            arena,
            hasher,
            text_keys,
            ..
        } = self;
        let text = *text_keys;
        // one probe: the closures read the arena only while the slot is being found
        let slot = {
            let arena_ref: &Vec<u8> = arena;
            table.entry(
                hash,
                |e| Self::key_of(arena_ref, text, e) == key,
                |e| Self::hash_key(hasher, Self::key_of(arena_ref, text, e)),
            )
        };
        match slot {
            hashbrown::hash_table::Entry::Occupied(o) => Ok(o.into_mut()),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let stored = match key {
                    Key::Int(k) => k as u64,
                    Key::Text(t) => {
                        let off = arena.len();
                        if off + t.len() > u32::MAX as usize {
                            return Err(too_many_customers(v.into_table().len()));
                        }
                        arena.extend_from_slice(t);
                        ((off as u64) << 32) | t.len() as u64
                    }
                };
                Ok(v.insert(Entry {
                    key: stored,
                    last: i64::MIN,
                    money: empty_money,
                    freq: 0,
                    rows: 0,
                })
                .into_mut())
            }
        }
    }

    /// Rescales every exact total to `scale`.
    fn raise_scale(&mut self, scale: u32) -> Result<()> {
        if let MoneyKind::Exact { scale: old } = self.money {
            if scale > old {
                let factor = i64::try_from(numeric::pow10(scale - old).ok_or_else(overflow)?)
                    .map_err(|_| overflow())?;
                for e in self.table.iter_mut() {
                    e.money = e.money.checked_mul(factor).ok_or_else(overflow)?;
                }
                self.money = MoneyKind::Exact { scale };
            }
        }
        Ok(())
    }

    fn in_window(&self, ts: i64) -> bool {
        ts > self.config.window_start && ts <= self.config.as_of
    }

    /// Adds one row with an exact amount.
    pub fn add_exact(&mut self, key: Key, ts: i64, amount: Decimal) -> Result<()> {
        if !self.in_window(ts) {
            self.entry(key)?;
            return Ok(());
        }
        let scale = match self.money {
            MoneyKind::Exact { scale } => scale,
            MoneyKind::Float => return Err(RfmError::invalid("mixed amount types")),
        };
        if amount.scale > scale {
            self.raise_scale(amount.scale)?;
        }
        let scale = scale.max(amount.scale);
        let units = numeric::rescale(amount.units, amount.scale, scale).ok_or_else(overflow)?;
        let units = i64::try_from(units).map_err(|_| overflow())?;
        let e = self.entry(key)?;
        e.money = e.money.checked_add(units).ok_or_else(overflow)?;
        e.rows += 1;
        if units >= 0 {
            e.freq += 1;
            e.last = e.last.max(ts);
        }
        Ok(())
    }

    /// Adds one row with a double precision amount (already checked to be finite).
    pub fn add_float(&mut self, key: Key, ts: i64, amount: f64) -> Result<()> {
        if !self.in_window(ts) {
            self.entry(key)?;
            return Ok(());
        }
        let e = self.entry(key)?;
        e.money = (f64::from_bits(e.money as u64) + amount).to_bits() as i64;
        e.rows += 1;
        if amount >= 0.0 {
            e.freq += 1;
            e.last = e.last.max(ts);
        }
        Ok(())
    }

    /// Merges `other` (a partial state of the same aggregate) into `self`.
    pub fn merge(&mut self, mut other: State) -> Result<()> {
        if other.config != self.config
            || other.text_keys != self.text_keys
            || std::mem::discriminant(&other.money) != std::mem::discriminant(&self.money)
        {
            return Err(RfmError::invalid(
                "options and argument types must be the same for every row",
            ));
        }
        if let (MoneyKind::Exact { scale: a }, MoneyKind::Exact { scale: b }) =
            (self.money, other.money)
        {
            self.raise_scale(b)?;
            other.raise_scale(a)?;
        }
        let exact = matches!(self.money, MoneyKind::Exact { .. });
        let text = other.text_keys;
        for o in other.table.iter() {
            let key = Self::key_of(&other.arena, text, o);
            let e = self.entry(key)?;
            if exact {
                e.money = e.money.checked_add(o.money).ok_or_else(overflow)?;
            } else {
                e.money = (f64::from_bits(e.money as u64) + f64::from_bits(o.money as u64))
                    .to_bits() as i64;
            }
            e.freq += o.freq;
            e.rows += o.rows;
            e.last = e.last.max(o.last);
        }
        Ok(())
    }

    /// Serialized state (version 1).
    pub fn serialize(&self) -> Vec<u8> {
        let mut w = Writer::new(STATE_VERSION, 64 + self.table.len() * 32 + self.arena.len());
        self.config.write(&mut w);
        w.u8(self.text_keys as u8);
        match self.money {
            MoneyKind::Exact { scale } => {
                w.u8(1);
                w.u32(scale);
            }
            MoneyKind::Float => {
                w.u8(0);
                w.u32(0);
            }
        }
        w.bytes(&self.arena);
        w.u64(self.table.len() as u64);
        for e in self.table.iter() {
            w.u64(e.key);
            w.i64(e.last);
            w.i64(e.money);
            w.u32(e.freq);
            w.u32(e.rows);
        }
        w.finish()
    }

    pub fn deserialize(bytes: &[u8]) -> Option<State> {
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let config = Config::read(&mut r)?;
        let text_keys = r.u8()? != 0;
        let exact = r.u8()? != 0;
        let scale = r.u32()?;
        let arena = r.bytes()?.to_vec();
        let n = r.u64()? as usize;
        let mut state = State::new(config, text_keys, exact);
        if exact {
            state.money = MoneyKind::Exact { scale };
        }
        state.arena = arena;
        state.table.reserve(n.min(bytes.len() / 32), |_| 0);
        for _ in 0..n {
            let e = Entry {
                key: r.u64()?,
                last: r.i64()?,
                money: r.i64()?,
                freq: r.u32()?,
                rows: r.u32()?,
            };
            if text_keys {
                let (off, len) = ((e.key >> 32) as usize, (e.key & 0xFFFF_FFFF) as usize);
                if off.checked_add(len)? > state.arena.len() {
                    return None;
                }
            }
            let hash = Self::hash_key(&state.hasher, Self::key_of(&state.arena, text_keys, &e));
            let (arena, hasher) = (&state.arena, &state.hasher);
            state.table.insert_unique(hash, e, |x| {
                Self::hash_key(hasher, Self::key_of(arena, text_keys, x))
            });
        }
        r.end()?;
        Some(state)
    }
}

const STATE_VERSION: u8 = 1;
const ANALYSIS_VERSION: u8 = 1;

fn too_many_customers(n: usize) -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!("the analysis of {n} customers does not fit in one value (1 GB)"),
    )
    .with_hint("Filter the rows with WHERE, or partition the work, for example GROUP BY region.")
}

/// Local calendar days of timestamps, as the session time zone sees them: `midnights[i]` is
/// the instant local day `first_day + i` starts.
#[derive(Debug, Clone)]
pub struct Days {
    pub first_day: i32,
    pub midnights: Vec<i64>,
    pub as_of_day: i32,
}

impl Days {
    /// The local day of `ts` (a day number, like PostgreSQL's `date`).
    pub fn day_of(&self, ts: i64) -> i32 {
        let i = self.midnights.partition_point(|&m| m <= ts);
        self.first_day + i as i32 - 1
    }
}

/// A money amount as reported: exact units at a scale, or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Money {
    Exact(i128, u32),
    Float(f64),
}

impl Money {
    pub fn to_f64(self) -> f64 {
        match self {
            Money::Exact(u, s) => u as f64 / 10f64.powi(s as i32),
            Money::Float(f) => f,
        }
    }

    /// Decimal text, suitable for `numeric` input.
    pub fn to_text(self) -> String {
        match self {
            Money::Exact(u, s) => numeric::format(u, s),
            Money::Float(f) => format!("{f}"),
        }
    }

    fn write(self, w: &mut Writer) {
        match self {
            Money::Exact(u, s) => {
                w.u8(1);
                w.u32(s);
                w.i64(u as i64);
                w.i64((u >> 64) as i64);
            }
            Money::Float(f) => {
                w.u8(0);
                w.f64(f);
            }
        }
    }

    fn read(r: &mut Reader) -> Option<Money> {
        Some(match r.u8()? {
            1 => {
                let s = r.u32()?;
                let lo = r.i64()? as u64 as i128;
                let hi = r.i64()? as i128;
                Money::Exact((hi << 64) | lo, s)
            }
            _ => Money::Float(r.f64()?),
        })
    }
}

/// One active customer in the result.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub key: String,
    pub recency_days: i32,
    pub frequency: i64,
    pub monetary: Money,
    pub r: i32,
    pub f: i32,
    pub m: i32,
    pub segment: Option<String>,
    pub abc_tier: String,
}

impl CustomerRow {
    pub fn fm(&self) -> i32 {
        (self.f + self.m + 1) / 2
    }

    pub fn rfm_code(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub segment: String,
    pub customers: i64,
    pub revenue: Money,
    pub frequency_sum: i64,
    pub recency_sum: i64,
}

/// One row of the thresholds table: the values a score covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRow {
    pub metric: &'static str,
    pub score: i32,
    pub lower_bound: Option<f64>,
    pub upper_bound: Option<f64>,
    pub customers: i64,
}

/// One R × FM cell.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    pub r: i32,
    pub fm: i32,
    pub segment: Option<String>,
    pub customers: i64,
    pub revenue: Money,
}

/// The overview figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub as_of: i64,
    pub period: String,
    pub active_customers: i64,
    pub excluded_customers: i64,
    pub total_revenue: Money,
    pub transactions: i64,
}

/// The finished analysis: what the accessors read.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub overview: Overview,
    pub method: Method,
    pub buckets: i32,
    pub scheme: Option<String>,
    pub thresholds: Vec<ThresholdRow>,
    pub summary: Vec<SummaryRow>,
    pub grid: Vec<GridRow>,
    pub customers: Vec<CustomerRow>,
}

struct Active {
    key: u64,
    recency: i32,
    freq: u32,
    money: i64,
    money_f: f64,
}

fn money_add(a: Money, b: Money) -> Money {
    match (a, b) {
        (Money::Exact(x, s), Money::Exact(y, _)) => Money::Exact(x + y, s),
        (Money::Float(x), Money::Float(y)) => Money::Float(x + y),
        (a, _) => a,
    }
}

/// Scores for one metric: the score of each active customer (in `order`) and the rows of
/// the thresholds table.
fn score_metric(
    metric: usize,
    values: &[f64],
    keys_cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering,
    config: &Config,
) -> (Vec<i32>, Vec<ThresholdRow>) {
    let n = config.buckets;
    let higher_is_better = metric != 0;
    let name = METRICS[metric];
    let mut scores = vec![0i32; values.len()];
    let mut rows = Vec::with_capacity(n);
    match config.method {
        Method::Quantile | Method::Fixed => {
            let (t, at_least) = if config.method == Method::Fixed {
                let f = config.fixed.as_ref().expect("validated");
                (f[metric].clone(), metric != 0)
            } else {
                let mut work = values.to_vec();
                (
                    quantile::thresholds(&mut work, n).unwrap_or_default(),
                    false,
                )
            };
            if !t.is_empty() {
                for (s, &v) in scores.iter_mut().zip(values) {
                    *s = score::score_checked(v, &t, higher_is_better, at_least);
                }
            }
            for sc in 1..=n as i32 {
                // c thresholds strictly below (or reached): the value range of this score
                let c = if higher_is_better {
                    sc - 1
                } else {
                    n as i32 - sc
                } as usize;
                let lower = if c == 0 { None } else { t.get(c - 1).copied() };
                let upper = if c >= t.len() {
                    None
                } else {
                    t.get(c).copied()
                };
                rows.push(ThresholdRow {
                    metric: name,
                    score: sc,
                    lower_bound: lower,
                    upper_bound: upper,
                    customers: scores.iter().filter(|&&x| x == sc).count() as i64,
                });
            }
        }
        Method::Ntile => {
            // NTILE(n) OVER (ORDER BY value, key); recency is ordered highest first so
            // that the most recent customers get the highest score
            let mut order: Vec<usize> = (0..values.len()).collect();
            order.sort_unstable_by(|&a, &b| {
                let by_value = if higher_is_better {
                    values[a].total_cmp(&values[b])
                } else {
                    values[b].total_cmp(&values[a])
                };
                by_value.then_with(|| keys_cmp(a, b))
            });
            let total = values.len();
            let (small, extra) = (total / n, total % n);
            let mut pos = 0;
            for bucket in 1..=n {
                let size = small + usize::from(bucket <= extra);
                let members = &order[pos..pos + size];
                for &i in members {
                    scores[i] = bucket as i32;
                }
                let vals = members.iter().map(|&i| values[i]);
                let (lo, hi) =
                    vals.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), v| {
                        (
                            Some(lo.map_or(v, |x| x.min(v))),
                            Some(hi.map_or(v, |x| x.max(v))),
                        )
                    });
                rows.push(ThresholdRow {
                    metric: name,
                    score: bucket as i32,
                    lower_bound: lo,
                    upper_bound: hi,
                    customers: size as i64,
                });
                pos += size;
            }
        }
    }
    (scores, rows)
}

/// Computes the analysis from a finished state.
pub fn finalize(state: &State, days: &Days) -> Result<Analysis> {
    let config = &state.config;
    let text = state.text_keys;
    let exact_scale = match state.money {
        MoneyKind::Exact { scale } => Some(scale),
        MoneyKind::Float => None,
    };
    let to_money = |m: i64| match exact_scale {
        Some(s) => Money::Exact(m as i128, s),
        None => Money::Float(f64::from_bits(m as u64)),
    };
    let mut active = Vec::new();
    let mut excluded = 0i64;
    let mut transactions = 0i64;
    for e in state.table.iter() {
        if e.freq == 0 {
            excluded += 1;
            continue;
        }
        transactions += e.rows as i64;
        active.push(Active {
            key: e.key,
            recency: days.as_of_day - days.day_of(e.last),
            freq: e.freq,
            money: e.money,
            money_f: to_money(e.money).to_f64(),
        });
    }
    // a deterministic order whatever the input order: monetary (highest first), then key
    let key_cmp = |a: &Active, b: &Active| -> std::cmp::Ordering {
        match (
            State::key_of(&state.arena, text, &DummyEntry::of(a.key)),
            State::key_of(&state.arena, text, &DummyEntry::of(b.key)),
        ) {
            (Key::Int(x), Key::Int(y)) => x.cmp(&y),
            (Key::Text(x), Key::Text(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        }
    };
    active.sort_unstable_by(|a, b| {
        let by_money = match exact_scale {
            Some(_) => b.money.cmp(&a.money),
            None => b.money_f.total_cmp(&a.money_f),
        };
        by_money.then_with(|| key_cmp(a, b))
    });
    let n_active = active.len();
    // scores
    let recency: Vec<f64> = active.iter().map(|a| a.recency as f64).collect();
    let frequency: Vec<f64> = active.iter().map(|a| a.freq as f64).collect();
    let monetary: Vec<f64> = active.iter().map(|a| a.money_f).collect();
    let cmp_idx = |i: usize, j: usize| key_cmp(&active[i], &active[j]);
    let (r, mut rows) = score_metric(0, &recency, &cmp_idx, config);
    let (f, rows_f) = score_metric(1, &frequency, &cmp_idx, config);
    let (m, rows_m) = score_metric(2, &monetary, &cmp_idx, config);
    rows.extend(rows_f);
    rows.extend(rows_m);
    // ABC on the monetary order (already highest first)
    let tiers = abc::assign_sorted(&monetary, &config.abc_shares);
    // segments
    let table = config.scheme.map(|s| s.table());
    let seg_names: Vec<&str> = config
        .scheme
        .map(|s| s.segments.iter().map(|x| x.name).collect())
        .unwrap_or_default();
    let zero = match exact_scale {
        Some(s) => Money::Exact(0, s),
        None => Money::Float(0.0),
    };
    let mut summary: Vec<SummaryRow> = seg_names
        .iter()
        .map(|n| SummaryRow {
            segment: n.to_string(),
            customers: 0,
            revenue: zero,
            frequency_sum: 0,
            recency_sum: 0,
        })
        .collect();
    let mut grid: Vec<GridRow> = Vec::new();
    if let Some(s) = config.scheme {
        for rr in (1..=5).rev() {
            for fm in 1..=5 {
                let names: Vec<&str> = (1..=5)
                    .flat_map(|ff| (1..=5).map(move |mm| (ff, mm)))
                    .filter(|(ff, mm)| (ff + mm + 1) / 2 == fm)
                    .map(|(ff, mm)| s.classify(rr, ff, mm))
                    .collect();
                let unique = names.iter().all(|n| *n == names[0]);
                grid.push(GridRow {
                    r: rr,
                    fm,
                    segment: unique.then(|| names[0].to_string()),
                    customers: 0,
                    revenue: zero,
                });
            }
        }
    }
    let mut customers = Vec::with_capacity(n_active);
    let mut total = zero;
    for (i, a) in active.iter().enumerate() {
        let money = to_money(a.money);
        total = money_add(total, money);
        let (ri, fi, mi) = (r[i], f[i], m[i]);
        let segment = table.map(|t| t[scheme::code_index(ri, fi, mi)] as usize);
        if let Some(si) = segment {
            let row = &mut summary[si];
            row.customers += 1;
            row.revenue = money_add(row.revenue, money);
            row.frequency_sum += a.freq as i64;
            row.recency_sum += a.recency as i64;
            let fm = (fi + mi + 1) / 2;
            let cell = &mut grid[((5 - ri) * 5 + (fm - 1)) as usize];
            cell.customers += 1;
            cell.revenue = money_add(cell.revenue, money);
        }
        let key = match State::key_of(&state.arena, text, &DummyEntry::of(a.key)) {
            Key::Int(k) => k.to_string(),
            Key::Text(t) => String::from_utf8_lossy(t).into_owned(),
        };
        customers.push(CustomerRow {
            key,
            recency_days: a.recency,
            frequency: a.freq as i64,
            monetary: money,
            r: ri,
            f: fi,
            m: mi,
            segment: segment.map(|si| seg_names[si].to_string()),
            abc_tier: config.abc_names[tiers[i]].clone(),
        });
    }
    Ok(Analysis {
        overview: Overview {
            as_of: config.as_of,
            period: config.period.clone(),
            active_customers: n_active as i64,
            excluded_customers: excluded,
            total_revenue: total,
            transactions,
        },
        method: config.method,
        buckets: config.buckets as i32,
        scheme: config.scheme.map(|s| s.name.to_string()),
        thresholds: rows,
        summary,
        grid,
        customers,
    })
}

/// Lets `key_of` read a bare key.
struct DummyEntry;

impl DummyEntry {
    fn of(key: u64) -> Entry {
        Entry {
            key,
            last: 0,
            money: 0,
            freq: 0,
            rows: 0,
        }
    }
}

impl Analysis {
    /// The `rfm.analysis` value: version byte, then the small tables, then the customers,
    /// so that accessors of the small tables never read the customers.
    pub fn serialize(&self) -> Vec<u8> {
        let mut w = Writer::new(ANALYSIS_VERSION, 256 + self.customers.len() * 48);
        let o = &self.overview;
        w.i64(o.as_of);
        w.bytes(o.period.as_bytes());
        w.i64(o.active_customers);
        w.i64(o.excluded_customers);
        o.total_revenue.write(&mut w);
        w.i64(o.transactions);
        w.u8(self.method as u8);
        w.u32(self.buckets as u32);
        w.bytes(self.scheme.as_deref().unwrap_or("").as_bytes());
        w.u32(self.thresholds.len() as u32);
        for t in &self.thresholds {
            w.u8(METRICS.iter().position(|m| *m == t.metric).unwrap_or(0) as u8);
            w.u32(t.score as u32);
            write_opt(&mut w, t.lower_bound);
            write_opt(&mut w, t.upper_bound);
            w.i64(t.customers);
        }
        w.u32(self.summary.len() as u32);
        for s in &self.summary {
            w.bytes(s.segment.as_bytes());
            w.i64(s.customers);
            s.revenue.write(&mut w);
            w.i64(s.frequency_sum);
            w.i64(s.recency_sum);
        }
        w.u32(self.grid.len() as u32);
        for g in &self.grid {
            w.u8(g.r as u8);
            w.u8(g.fm as u8);
            w.bytes(g.segment.as_deref().unwrap_or("").as_bytes());
            w.i64(g.customers);
            g.revenue.write(&mut w);
        }
        w.u64(self.customers.len() as u64);
        for c in &self.customers {
            w.bytes(c.key.as_bytes());
            w.u32(c.recency_days as u32);
            w.i64(c.frequency);
            c.monetary.write(&mut w);
            w.u8(c.r as u8);
            w.u8(c.f as u8);
            w.u8(c.m as u8);
            w.bytes(c.segment.as_deref().unwrap_or("").as_bytes());
            w.bytes(c.abc_tier.as_bytes());
        }
        w.finish()
    }

    /// Reads an `rfm.analysis` value; with `with_customers = false` the customer list is
    /// left unread (and empty).
    pub fn deserialize(bytes: &[u8], with_customers: bool) -> Result<Analysis> {
        Self::read(bytes, with_customers).ok_or_else(|| {
            RfmError::new(ErrorKind::InvalidBinary, "invalid rfm.analysis value")
                .with_hint("Pass the result of rfm.analyze(...) unchanged.")
        })
    }

    fn read(bytes: &[u8], with_customers: bool) -> Option<Analysis> {
        let mut r = Reader::new(bytes, ANALYSIS_VERSION)?;
        let text =
            |r: &mut Reader| -> Option<String> { String::from_utf8(r.bytes()?.to_vec()).ok() };
        let overview = Overview {
            as_of: r.i64()?,
            period: text(&mut r)?,
            active_customers: r.i64()?,
            excluded_customers: r.i64()?,
            total_revenue: Money::read(&mut r)?,
            transactions: r.i64()?,
        };
        let method = Method::from_u8(r.u8()?)?;
        let buckets = r.u32()? as i32;
        let scheme = Some(text(&mut r)?).filter(|s| !s.is_empty());
        let mut thresholds = Vec::new();
        for _ in 0..r.u32()? {
            thresholds.push(ThresholdRow {
                metric: METRICS.get(r.u8()? as usize)?,
                score: r.u32()? as i32,
                lower_bound: read_opt(&mut r)?,
                upper_bound: read_opt(&mut r)?,
                customers: r.i64()?,
            });
        }
        let mut summary = Vec::new();
        for _ in 0..r.u32()? {
            summary.push(SummaryRow {
                segment: text(&mut r)?,
                customers: r.i64()?,
                revenue: Money::read(&mut r)?,
                frequency_sum: r.i64()?,
                recency_sum: r.i64()?,
            });
        }
        let mut grid = Vec::new();
        for _ in 0..r.u32()? {
            grid.push(GridRow {
                r: r.u8()? as i32,
                fm: r.u8()? as i32,
                segment: Some(text(&mut r)?).filter(|s| !s.is_empty()),
                customers: r.i64()?,
                revenue: Money::read(&mut r)?,
            });
        }
        let mut customers = Vec::new();
        if with_customers {
            let n = r.u64()? as usize;
            customers.reserve(n.min(bytes.len() / 16));
            for _ in 0..n {
                customers.push(CustomerRow {
                    key: text(&mut r)?,
                    recency_days: r.u32()? as i32,
                    frequency: r.i64()?,
                    monetary: Money::read(&mut r)?,
                    r: r.u8()? as i32,
                    f: r.u8()? as i32,
                    m: r.u8()? as i32,
                    segment: Some(text(&mut r)?).filter(|s| !s.is_empty()),
                    abc_tier: text(&mut r)?,
                });
            }
            r.end()?;
        }
        Some(Analysis {
            overview,
            method,
            buckets,
            scheme,
            thresholds,
            summary,
            grid,
            customers,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn config(method: Method) -> Config {
        Config {
            as_of: 100 * DAY,
            window_start: 100 * DAY - 365 * DAY,
            period: "12 months".into(),
            buckets: 5,
            scheme: Some(scheme::builtin("standard").unwrap()),
            method,
            fixed: None,
            abc_shares: abc::DEFAULT_SHARES.to_vec(),
            abc_names: vec!["A".into(), "B".into(), "C".into()],
        }
    }

    /// UTC days: day d starts at d * DAY.
    fn days(c: &Config) -> Days {
        let first = (c.window_start / DAY) as i32 - 1;
        let last = (c.as_of / DAY) as i32 + 1;
        Days {
            first_day: first,
            midnights: (first..=last).map(|d| d as i64 * DAY).collect(),
            as_of_day: (c.as_of / DAY) as i32,
        }
    }

    fn dec(units: i128, scale: u32) -> Decimal {
        Decimal { units, scale }
    }

    #[test]
    fn metrics_returns_and_exclusions() {
        let c = config(Method::Quantile);
        let d = days(&c);
        let mut s = State::new(c, false, true);
        s.add_exact(Key::Int(1), 99 * DAY + 5, dec(1000, 2))
            .unwrap(); // 10.00, 1 day ago
        s.add_exact(Key::Int(1), 50 * DAY, dec(5, 1)).unwrap(); // 0.5 raises the scale? no: 1 < 2
        s.add_exact(Key::Int(1), 60 * DAY, dec(-250, 3)).unwrap(); // -0.250: scale 3
        s.add_exact(Key::Int(2), 70 * DAY, dec(-100, 2)).unwrap(); // only a return
        s.add_exact(Key::Int(3), -400 * DAY, dec(100, 2)).unwrap(); // outside the window
        let a = finalize(&s, &d).unwrap();
        assert_eq!(a.overview.active_customers, 1);
        assert_eq!(a.overview.excluded_customers, 2);
        assert_eq!(a.overview.transactions, 3);
        let c1 = &a.customers[0];
        assert_eq!(c1.key, "1");
        assert_eq!(c1.recency_days, 1);
        assert_eq!(c1.frequency, 2);
        assert_eq!(c1.monetary, Money::Exact(10250, 3)); // 10.00 + 0.5 - 0.250
        assert_eq!(c1.monetary.to_text(), "10.250");
    }

    #[test]
    fn merge_and_serialize_give_the_same_analysis() {
        let c = config(Method::Quantile);
        let d = days(&c);
        let rows: Vec<(i64, i64, i128)> = (0..500)
            .map(|i| {
                (
                    (i * 7919) % 97,
                    100 * DAY - (i * 104729 % 300) * DAY / 3,
                    (i * 31 % 200) as i128 - 10,
                )
            })
            .collect();
        let mut whole = State::new(c.clone(), false, true);
        let mut left = State::new(c.clone(), false, true);
        let mut right = State::new(c.clone(), false, true);
        for (i, (k, t, a)) in rows.iter().enumerate() {
            let scale = if i % 3 == 0 { 2 } else { 1 };
            let amount = dec(*a * if scale == 2 { 10 } else { 1 }, scale);
            whole.add_exact(Key::Int(*k), *t, amount).unwrap();
            let part = if i % 2 == 0 { &mut left } else { &mut right };
            part.add_exact(Key::Int(*k), *t, amount).unwrap();
        }
        let right = State::deserialize(&right.serialize()).unwrap();
        left.merge(right).unwrap();
        let a = finalize(&whole, &d).unwrap();
        let b = finalize(&left, &d).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.serialize(), b.serialize());
        let back = Analysis::deserialize(&a.serialize(), true).unwrap();
        assert_eq!(back, a);
        let small = Analysis::deserialize(&a.serialize(), false).unwrap();
        assert!(small.customers.is_empty());
        assert_eq!(small.summary, a.summary);
        let total: i64 = a.summary.iter().map(|s| s.customers).sum();
        assert_eq!(total, a.overview.active_customers);
    }

    #[test]
    fn text_keys_and_float_amounts() {
        let c = config(Method::Ntile);
        let d = days(&c);
        let mut s = State::new(c, true, false);
        for (k, a) in [("ann", 5.0), ("bob", 1.0), ("ann", 2.5), ("cy", 7.0)] {
            s.add_float(Key::Text(k.as_bytes()), 90 * DAY, a).unwrap();
        }
        let a = finalize(&s, &d).unwrap();
        let keys: Vec<&str> = a.customers.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["ann", "cy", "bob"]); // monetary 7.5, 7, 1
        assert_eq!(a.customers[0].monetary, Money::Float(7.5));
        assert_eq!(a.customers[0].m, 3); // ntile over 3 customers: 1, 2, 3
        assert_eq!(a.customers[2].m, 1);
    }

    #[test]
    fn corrupted_values_are_rejected() {
        assert!(State::deserialize(&[9, 9, 9]).is_none());
        let e = Analysis::deserialize(&[1, 2, 3], true).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22P03");
    }

    #[test]
    fn schemes_need_five_buckets_and_fixed_needs_thresholds() {
        let mut c = config(Method::Quantile);
        c.buckets = 4;
        assert!(c.validate().unwrap_err().message.contains("5 buckets"));
        c.scheme = None;
        assert!(c.validate().is_ok());
        let c = config(Method::Fixed);
        assert!(c.validate().is_err());
    }

    #[test]
    fn an_entry_stays_small() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }
}
