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
    /// Customers whose monetary is below this are left out of the ABC ranking: they get no
    /// tier and their monetary does not count in the total the shares apply to.
    pub abc_min_sales: Option<f64>,
    /// Whether the value keeps the keys of the excluded customers ([`Analysis::excluded_keys`]).
    pub keep_excluded: bool,
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
        let base = self.window_start.div_euclid(MICROS) * MICROS;
        if (self.as_of - base) / MICROS > MAX_WINDOW_SECONDS {
            return Err(RfmError::invalid(format!(
                "option \"period\" must be at most 136 years, got \"{}\"",
                self.period
            )));
        }
        if let Some(min) = self.abc_min_sales {
            crate::error::check_finite("option \"abc_min_sales\"", min)?;
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
        write_opt(w, self.abc_min_sales);
        w.u8(self.keep_excluded as u8);
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
        let n = r.count_u32(8)?;
        let mut abc_names = Vec::with_capacity(n.min(abc::MAX_TIERS));
        for _ in 0..n {
            abc_names.push(String::from_utf8(r.bytes()?.to_vec()).ok()?);
        }
        let abc_min_sales = read_opt(r)?;
        let keep_excluded = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
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
            abc_min_sales,
            keep_excluded,
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

/// One customer: 24 bytes in the table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The bigint key, or (offset << 32 | length) of a text key in the arena.
    key: u64,
    /// Total of amounts in the window: units at the state's scale, or f64 bits.
    money: i64,
    /// With purchases (`freq > 0`): the latest one as a [`Stamp`]. Without: how many rows
    /// (returns) the customer has in the window, which `transactions` leaves out.
    last: u32,
    /// Purchases in the window.
    freq: u32,
}

/// An instant in the window as whole seconds after the state's base (the window start
/// rounded down to a second), plus one. Local days start at whole seconds, so the second
/// of a purchase tells its day exactly; 32 bits cover 136 years.
type Stamp = u32;

/// The whole second (in microseconds) that a stamp counted from `base` stands for.
fn instant(base: i64, stamp: Stamp) -> i64 {
    base + (stamp as i64 - 1) * MICROS
}

/// The longest window (in whole seconds) that a [`Stamp`] can cover.
const MAX_WINDOW_SECONDS: i64 = u32::MAX as i64 - 2;
const MICROS: i64 = 1_000_000;

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
    /// The window start rounded down to a whole second (microseconds): where stamps count from.
    base: i64,
    /// Rows in the window, of every customer.
    window_rows: u64,
    /// The most memory the state has held: while the table grows, the old and the new
    /// table exist together.
    peak_bytes: usize,
    /// Rows not yet in the table. They are added [`BATCH`] at a time, so that the cache
    /// misses of consecutive rows' lookups overlap instead of each waiting for the last.
    pending: Vec<Row>,
    /// The text keys of the pending rows.
    pending_text: Vec<u8>,
    /// The most customers the table may hold; a new one beyond it is an error (54000).
    pub max_customers: usize,
}

/// How many rows are buffered before they are added to the table.
const BATCH: usize = 64;

/// A row waiting to be added: its key (bigint, or offset << 32 | length in the pending
/// text), its amount (units at the state's scale, or f64 bits) and where it falls.
#[derive(Debug, Clone, Copy)]
struct Row {
    key: u64,
    money: i64,
    kind: RowKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// Outside the window: the customer is only seen (and counted as excluded).
    Outside,
    Purchase(Stamp),
    Return,
}

fn overflow() -> RfmError {
    numeric::too_large()
}

impl State {
    pub fn new(config: Config, text_keys: bool, exact: bool) -> State {
        State {
            base: config.window_start.div_euclid(MICROS) * MICROS,
            window_rows: 0,
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
            peak_bytes: 0,
            pending: Vec::new(),
            pending_text: Vec::new(),
            max_customers: usize::MAX,
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

    /// Customers seen so far (active or not), once [`State::flush`] has run.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty() && self.pending.is_empty()
    }

    /// Bytes the state holds now (hash table and text key arena).
    pub fn memory_bytes(&self) -> usize {
        self.table.allocation_size() + self.arena.capacity()
    }

    /// The most bytes the state has held at once, table growth included.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.max(self.memory_bytes())
    }

    /// Records the memory of a table growth: `before` bytes were held while the new
    /// table was allocated.
    fn note_growth(&mut self, before: usize) {
        let now = self.memory_bytes();
        self.peak_bytes = self.peak_bytes.max(before + now);
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
        if self.table.len() == self.table.capacity() {
            // the table is full and grows now (hashbrown's entry() would grow it too): the
            // old and the new table are held together for a moment
            let before = self.memory_bytes();
            let (arena, hasher, text) = (&self.arena, &self.hasher, self.text_keys);
            self.table
                .reserve(1, |e| Self::hash_key(hasher, Self::key_of(arena, text, e)));
            self.note_growth(before);
        }
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
            max_customers,
            ..
        } = self;
        let text = *text_keys;
        let at_limit = table.len() >= *max_customers;
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
                if at_limit {
                    return Err(customer_limit(*max_customers));
                }
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
                    money: empty_money,
                    last: 0,
                    freq: 0,
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

    /// The stamp of an instant in the window (checked by [`Config::validate`] to fit).
    fn stamp(&self, ts: i64) -> Stamp {
        ((ts - self.base) / MICROS + 1) as Stamp
    }

    /// Counts one row of `e` in the window: a purchase at `stamp`, or a return.
    fn count_row(e: &mut Entry, purchase: Option<Stamp>) -> Result<()> {
        match purchase {
            Some(s) => {
                e.last = if e.freq == 0 { s } else { e.last.max(s) };
                e.freq = e.freq.checked_add(1).ok_or_else(too_many_rows)?;
            }
            None if e.freq == 0 => e.last = e.last.checked_add(1).ok_or_else(too_many_rows)?,
            None => {}
        }
        Ok(())
    }

    /// Adds one row with an exact amount.
    pub fn add_exact(&mut self, key: Key, ts: i64, amount: Decimal) -> Result<()> {
        if ts > self.config.as_of {
            return Ok(()); // after as_of: not part of the analysis at all (SPEC §2)
        }
        if !self.in_window(ts) {
            return self.push(key, 0, RowKind::Outside);
        }
        let scale = match self.money {
            MoneyKind::Exact { scale } => scale,
            MoneyKind::Float => return Err(RfmError::invalid("mixed amount types")),
        };
        if amount.scale > scale {
            // pending units are at the old scale: add them first
            self.flush()?;
            self.raise_scale(amount.scale)?;
        }
        let scale = scale.max(amount.scale);
        let units = numeric::rescale(amount.units, amount.scale, scale).ok_or_else(overflow)?;
        let units = i64::try_from(units).map_err(|_| overflow())?;
        let kind = if units >= 0 {
            RowKind::Purchase(self.stamp(ts))
        } else {
            RowKind::Return
        };
        self.push(key, units, kind)
    }

    /// Adds one row with a double precision amount (already checked to be finite).
    pub fn add_float(&mut self, key: Key, ts: i64, amount: f64) -> Result<()> {
        if ts > self.config.as_of {
            return Ok(()); // after as_of: not part of the analysis at all (SPEC §2)
        }
        if !self.in_window(ts) {
            return self.push(key, 0, RowKind::Outside);
        }
        let kind = if amount >= 0.0 {
            RowKind::Purchase(self.stamp(ts))
        } else {
            RowKind::Return
        };
        self.push(key, amount.to_bits() as i64, kind)
    }

    /// Queues a row; every [`BATCH`] rows, adds them to the table.
    fn push(&mut self, key: Key, money: i64, kind: RowKind) -> Result<()> {
        let key = match key {
            Key::Int(k) => k as u64,
            Key::Text(t) => {
                let off = self.pending_text.len() as u64;
                self.pending_text.extend_from_slice(t);
                (off << 32) | t.len() as u64
            }
        };
        self.pending.push(Row { key, money, kind });
        if self.pending.len() >= BATCH {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Adds the pending rows to the table, in the order they came.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut rows = std::mem::take(&mut self.pending);
        let mut text = std::mem::take(&mut self.pending_text);
        let exact = self.exact();
        let mut result = Ok(());
        for r in &rows {
            let key = if self.text_keys {
                let (off, len) = ((r.key >> 32) as usize, (r.key & 0xFFFF_FFFF) as usize);
                Key::Text(&text[off..off + len])
            } else {
                Key::Int(r.key as i64)
            };
            let step = self.entry(key).and_then(|e| {
                let purchase = match r.kind {
                    RowKind::Outside => return Ok(()),
                    RowKind::Purchase(s) => Some(s),
                    RowKind::Return => None,
                };
                e.money = if exact {
                    e.money.checked_add(r.money).ok_or_else(overflow)?
                } else {
                    (f64::from_bits(e.money as u64) + f64::from_bits(r.money as u64)).to_bits()
                        as i64
                };
                Self::count_row(e, purchase)
            });
            if r.kind != RowKind::Outside {
                self.window_rows += 1;
            }
            if let Err(e) = step {
                result = Err(e);
                break;
            }
        }
        // keep the buffers' memory for the next batch
        rows.clear();
        text.clear();
        self.pending = rows;
        self.pending_text = text;
        result
    }

    /// Merges `other` (a partial state of the same aggregate) into `self`.
    pub fn merge(&mut self, mut other: State) -> Result<()> {
        self.flush()?;
        other.flush()?;
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
        self.window_rows += other.window_rows;
        for o in other.table.iter() {
            let key = Self::key_of(&other.arena, text, o);
            let e = self.entry(key)?;
            if exact {
                e.money = e.money.checked_add(o.money).ok_or_else(overflow)?;
            } else {
                e.money = (f64::from_bits(e.money as u64) + f64::from_bits(o.money as u64))
                    .to_bits() as i64;
            }
            e.last = match (e.freq, o.freq) {
                (0, 0) => e.last.checked_add(o.last).ok_or_else(too_many_rows)?, // return rows
                (0, _) => o.last,
                (_, 0) => e.last,
                _ => e.last.max(o.last),
            };
            e.freq = e.freq.checked_add(o.freq).ok_or_else(too_many_rows)?;
        }
        Ok(())
    }

    /// Serialized state (version [`STATE_VERSION`]); pending rows are added first.
    pub fn serialize(&mut self) -> Result<Vec<u8>> {
        self.flush()?;
        let mut w = Writer::new(STATE_VERSION, 64 + self.table.len() * 24 + self.arena.len());
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
        w.u64(self.window_rows);
        w.u64(self.table.len() as u64);
        for e in self.table.iter() {
            w.u64(e.key);
            w.i64(e.money);
            w.u32(e.last);
            w.u32(e.freq);
        }
        Ok(w.finish())
    }

    pub fn deserialize(bytes: &[u8]) -> Option<State> {
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let config = Config::read(&mut r)?;
        let text_keys = r.u8()? != 0;
        let exact = r.u8()? != 0;
        let scale = r.u32()?;
        let arena = r.bytes()?.to_vec();
        let window_rows = r.u64()?;
        // 24 bytes an entry: a forged count fails here, before the table is allocated
        let n = r.count_u64(24)?;
        let mut state = State::new(config, text_keys, exact);
        if exact {
            state.money = MoneyKind::Exact { scale };
        }
        state.arena = arena;
        state.window_rows = window_rows;
        state.table.reserve(n, |_| 0);
        for _ in 0..n {
            let e = Entry {
                key: r.u64()?,
                money: r.i64()?,
                last: r.u32()?,
                freq: r.u32()?,
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

/// Version 3: 24-byte entries, the latest purchase as a stamp; the options carry
/// `abc_min_sales` and `keep_excluded`.
const STATE_VERSION: u8 = 3;

fn too_many_rows() -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        "a customer has more than 4294967295 rows in the window",
    )
    .with_hint("Pre-aggregate the rows, for example one row per order.")
}
/// Version 3: customers encoded compactly (varints, segment and tier as indexes; tier
/// [`NO_TIER`] for a customer below `abc_min_sales`), then the keys of the excluded
/// customers (none unless `keep_excluded`).
const ANALYSIS_VERSION: u8 = 3;

/// The tier index of a customer left out of the ABC ranking.
const NO_TIER: u8 = u8::MAX;

/// The fewest bytes one encoded customer takes: a key, recency, frequency and money of at
/// least one byte each, and five score bytes.
const MIN_RECORD_BYTES: usize = 9;

/// The error for the customer beyond `max` (the `rfm.max_customers` setting).
fn customer_limit(max: usize) -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!(
            "rfm.analyze saw {} customers; one analysis holds at most {max} (rfm.max_customers)",
            max.saturating_add(1)
        ),
    )
    .with_hint("Filter the rows with WHERE, or partition the work, for example GROUP BY region.")
}

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
    /// `None` for a customer whose monetary is below `abc_min_sales`.
    pub abc_tier: Option<String>,
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

/// One active customer while the analysis is finished: 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Act {
    /// As in [`Entry::key`].
    key: u64,
    /// As in [`Entry::money`].
    money: i64,
    recency: u32,
    freq: u32,
}

fn money_add(a: Money, b: Money) -> Money {
    match (a, b) {
        (Money::Exact(x, s), Money::Exact(y, _)) => Money::Exact(x + y, s),
        (Money::Float(x), Money::Float(y)) => Money::Float(x + y),
        (a, _) => a,
    }
}

/// Float bits mapped to integers in the order of `f64::total_cmp`.
fn float_order(bits: i64) -> i64 {
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

/// Scores of one metric for every active customer (written to `scores[..][slot]`) and the
/// rows of the thresholds table. `value(i)` is the metric of customer `i`; `key_cmp`
/// orders customers by key (the tie-breaker of the `ntile` method); `work` is scratch space.
#[allow(clippy::too_many_arguments)] // one call per metric, from finalize only
fn score_metric(
    metric: usize,
    n_active: usize,
    value: &dyn Fn(usize) -> f64,
    key_cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering,
    config: &Config,
    scores: &mut [[u8; 4]],
    work: &mut Vec<f64>,
) -> Vec<ThresholdRow> {
    let n = config.buckets;
    let higher_is_better = metric != 0;
    let name = METRICS[metric];
    let mut counts = vec![0i64; n + 1];
    let mut rows = Vec::with_capacity(n);
    match config.method {
        Method::Quantile | Method::Fixed => {
            let (t, at_least) = if let (Method::Fixed, Some(f)) = (config.method, &config.fixed) {
                (f[metric].clone(), metric != 0)
            } else {
                work.clear();
                work.extend((0..n_active).map(value));
                (quantile::thresholds(work, n).unwrap_or_default(), false)
            };
            if !t.is_empty() {
                for (i, s) in scores.iter_mut().enumerate() {
                    let sc = score::score_checked(value(i), &t, higher_is_better, at_least);
                    s[metric] = sc as u8;
                    counts[sc as usize] += 1;
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
                    customers: counts[sc as usize],
                });
            }
        }
        Method::Ntile => {
            // NTILE(n) OVER (ORDER BY value, key); recency is ordered highest first so
            // that the most recent customers get the highest score
            let mut order: Vec<u32> = (0..n_active as u32).collect();
            order.sort_unstable_by(|&a, &b| {
                let (va, vb) = (value(a as usize), value(b as usize));
                let by_value = if higher_is_better {
                    va.total_cmp(&vb)
                } else {
                    vb.total_cmp(&va)
                };
                by_value.then_with(|| key_cmp(a as usize, b as usize))
            });
            let (small, extra) = (n_active / n, n_active % n);
            let mut pos = 0;
            for bucket in 1..=n {
                let size = small + usize::from(bucket <= extra);
                let members = &order[pos..pos + size];
                let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
                for &i in members {
                    scores[i as usize][metric] = bucket as u8;
                    let v = value(i as usize);
                    lo = Some(lo.map_or(v, |x| x.min(v)));
                    hi = Some(hi.map_or(v, |x| x.max(v)));
                }
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
    rows
}

/// Computes the analysis from a finished state and returns the `rfm.analysis` value. The
/// state's table is released as soon as the active customers are copied out of it, so the
/// memory this needs beyond the state is about 28 bytes per active customer plus the value
/// itself (about 15 bytes per customer).
pub fn finalize(mut state: State, days: &Days) -> Result<Vec<u8>> {
    state.flush()?;
    let table = std::mem::take(&mut state.table);
    let (window_rows, base) = (state.window_rows, state.base);
    let State {
        config,
        text_keys: text,
        money: money_kind,
        arena,
        ..
    } = state;
    let exact_scale = match money_kind {
        MoneyKind::Exact { scale } => Some(scale),
        MoneyKind::Float => None,
    };
    let to_money = |m: i64| match exact_scale {
        Some(s) => Money::Exact(m as i128, s),
        None => Money::Float(f64::from_bits(m as u64)),
    };
    let money_f = |m: i64| to_money(m).to_f64();
    let n_active = table.iter().filter(|e| e.freq > 0).count();
    let excluded = (table.len() - n_active) as i64;
    // the rows of customers without purchases are returns only: they are not transactions
    let excluded_rows: u64 = table
        .iter()
        .filter(|e| e.freq == 0)
        .map(|e| e.last as u64)
        .sum();
    let transactions = (window_rows - excluded_rows) as i64;
    // the keys of the excluded customers, in key order, when the options ask for them
    let mut excluded_keys: Vec<u64> = if config.keep_excluded {
        table
            .iter()
            .filter(|e| e.freq == 0)
            .map(|e| e.key)
            .collect()
    } else {
        Vec::new()
    };
    let mut act = Vec::with_capacity(n_active);
    for e in table.iter().filter(|e| e.freq > 0) {
        act.push(Act {
            key: e.key,
            money: e.money,
            recency: (days.as_of_day - days.day_of(instant(base, e.last))).max(0) as u32,
            freq: e.freq,
        });
    }
    drop(table);
    let key_bytes = |k: u64| -> &[u8] {
        let (off, len) = ((k >> 32) as usize, (k & 0xFFFF_FFFF) as usize);
        &arena[off..off + len]
    };
    let key_cmp = |a: &Act, b: &Act| -> std::cmp::Ordering {
        if text {
            key_bytes(a.key).cmp(key_bytes(b.key))
        } else {
            (a.key as i64).cmp(&(b.key as i64))
        }
    };
    // a deterministic order whatever the input order: monetary (highest first), then key
    let ord_money = |m: i64| {
        if exact_scale.is_some() {
            m
        } else {
            float_order(m)
        }
    };
    if text {
        act.sort_unstable_by(|a, b| {
            ord_money(b.money)
                .cmp(&ord_money(a.money))
                .then_with(|| key_cmp(a, b))
        });
    } else {
        act.sort_unstable_by_key(|a| (std::cmp::Reverse(ord_money(a.money)), a.key as i64));
    }

    // scores: r, f, m and the ABC tier of every customer
    let mut scores = vec![[0u8; 4]; n_active];
    let mut work = Vec::new();
    let idx_cmp = |i: usize, j: usize| key_cmp(&act[i], &act[j]);
    let mut thresholds = score_metric(
        0,
        n_active,
        &|i| act[i].recency as f64,
        &idx_cmp,
        &config,
        &mut scores,
        &mut work,
    );
    for (metric, value) in [
        (1, &(|i: usize| act[i].freq as f64) as &dyn Fn(usize) -> f64),
        (2, &|i: usize| money_f(act[i].money)),
    ] {
        let rows = score_metric(
            metric,
            n_active,
            value,
            &idx_cmp,
            &config,
            &mut scores,
            &mut work,
        );
        thresholds.extend(rows);
    }
    drop(work);
    // customers below abc_min_sales get no tier and do not count in the total; they are
    // the tail of `act` (sorted by monetary, highest first)
    let ranked = |m: i64| config.abc_min_sales.is_none_or(|min| money_f(m) >= min);
    let positive: f64 = act
        .iter()
        .filter(|a| ranked(a.money))
        .map(|a| money_f(a.money))
        .filter(|&v| v > 0.0)
        .sum();
    let mut tiers = abc::TierWalk::new(&config.abc_shares, positive);

    // summary and grid
    let seg_table = config.scheme.map(|s| s.table());
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
    let mut total = zero;
    // ABC tiers in monetary order, and the per-segment and per-cell totals (a customer's
    // segment is a lookup in the scheme's table, repeated when the customers are written)
    for (a, s) in act.iter().zip(scores.iter_mut()) {
        let money = to_money(a.money);
        total = money_add(total, money);
        s[3] = if ranked(a.money) {
            tiers.next(money_f(a.money)) as u8
        } else {
            NO_TIER
        };
        if let Some(t) = &seg_table {
            let (ri, fi, mi) = (s[0] as i32, s[1] as i32, s[2] as i32);
            let row = &mut summary[t[scheme::code_index(ri, fi, mi)] as usize];
            row.customers += 1;
            row.revenue = money_add(row.revenue, money);
            row.frequency_sum += a.freq as i64;
            row.recency_sum += a.recency as i64;
            let fm = (fi + mi + 1) / 2;
            let cell = &mut grid[((5 - ri) * 5 + (fm - 1)) as usize];
            cell.customers += 1;
            cell.revenue = money_add(cell.revenue, money);
        }
    }

    let header = Header {
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
        thresholds,
        summary,
        grid,
    };
    let mut w = Writer::new(ANALYSIS_VERSION, 1024 + n_active * 16);
    header.write(&mut w);
    // the customers, highest monetary first
    w.u8(text as u8);
    w.u8(exact_scale.is_some() as u8);
    w.u32(exact_scale.unwrap_or(0));
    w.u32(seg_names.len() as u32);
    for n in &seg_names {
        w.short_bytes(n.as_bytes());
    }
    w.u32(config.abc_names.len() as u32);
    for n in &config.abc_names {
        w.short_bytes(n.as_bytes());
    }
    w.u64(n_active as u64);
    for (a, s) in act.iter().zip(&scores) {
        if text {
            w.short_bytes(key_bytes(a.key));
        } else {
            w.zigzag(a.key as i64);
        }
        w.varint(a.recency as u64);
        w.varint(a.freq as u64);
        if exact_scale.is_some() {
            w.zigzag(a.money);
        } else {
            w.f64(f64::from_bits(a.money as u64));
        }
        w.u8(s[0]);
        w.u8(s[1]);
        w.u8(s[2]);
        let segment = seg_table.as_ref().map_or(0, |t| {
            t[scheme::code_index(s[0] as i32, s[1] as i32, s[2] as i32)] + 1
        });
        w.u8(segment);
        w.u8(s[3]);
    }
    if text {
        excluded_keys.sort_unstable_by(|a, b| key_bytes(*a).cmp(key_bytes(*b)));
    } else {
        excluded_keys.sort_unstable_by_key(|k| *k as i64);
    }
    w.varint(excluded_keys.len() as u64);
    for k in excluded_keys {
        if text {
            w.short_bytes(key_bytes(k));
        } else {
            w.zigzag(k as i64);
        }
    }
    Ok(w.finish())
}

/// Everything in an `rfm.analysis` value but the customers.
struct Header {
    overview: Overview,
    method: Method,
    buckets: i32,
    scheme: Option<String>,
    thresholds: Vec<ThresholdRow>,
    summary: Vec<SummaryRow>,
    grid: Vec<GridRow>,
}

impl Header {
    fn write(&self, w: &mut Writer) {
        let o = &self.overview;
        w.i64(o.as_of);
        w.bytes(o.period.as_bytes());
        w.i64(o.active_customers);
        w.i64(o.excluded_customers);
        o.total_revenue.write(w);
        w.i64(o.transactions);
        w.u8(self.method as u8);
        w.u32(self.buckets as u32);
        w.bytes(self.scheme.as_deref().unwrap_or("").as_bytes());
        w.u32(self.thresholds.len() as u32);
        for t in &self.thresholds {
            w.u8(METRICS.iter().position(|m| *m == t.metric).unwrap_or(0) as u8);
            w.u32(t.score as u32);
            write_opt(w, t.lower_bound);
            write_opt(w, t.upper_bound);
            w.i64(t.customers);
        }
        w.u32(self.summary.len() as u32);
        for s in &self.summary {
            w.bytes(s.segment.as_bytes());
            w.i64(s.customers);
            s.revenue.write(w);
            w.i64(s.frequency_sum);
            w.i64(s.recency_sum);
        }
        w.u32(self.grid.len() as u32);
        for g in &self.grid {
            w.u8(g.r as u8);
            w.u8(g.fm as u8);
            w.bytes(g.segment.as_deref().unwrap_or("").as_bytes());
            w.i64(g.customers);
            g.revenue.write(w);
        }
    }

    fn read(r: &mut Reader) -> Option<Header> {
        let text =
            |r: &mut Reader| -> Option<String> { String::from_utf8(r.bytes()?.to_vec()).ok() };
        let overview = Overview {
            as_of: r.i64()?,
            period: text(r)?,
            active_customers: r.i64()?,
            excluded_customers: r.i64()?,
            total_revenue: Money::read(r)?,
            transactions: r.i64()?,
        };
        let method = Method::from_u8(r.u8()?)?;
        let buckets = r.u32()? as i32;
        let scheme = Some(text(r)?).filter(|s| !s.is_empty());
        // counts are bounded by the bytes left (the fewest bytes an item takes) before any loop
        let mut thresholds = Vec::new();
        for _ in 0..r.count_u32(15)? {
            thresholds.push(ThresholdRow {
                metric: METRICS.get(r.u8()? as usize)?,
                score: r.u32()? as i32,
                lower_bound: read_opt(r)?,
                upper_bound: read_opt(r)?,
                customers: r.i64()?,
            });
        }
        let mut summary = Vec::new();
        for _ in 0..r.count_u32(41)? {
            summary.push(SummaryRow {
                segment: text(r)?,
                customers: r.i64()?,
                revenue: Money::read(r)?,
                frequency_sum: r.i64()?,
                recency_sum: r.i64()?,
            });
        }
        let mut grid = Vec::new();
        for _ in 0..r.count_u32(27)? {
            grid.push(GridRow {
                r: r.u8()? as i32,
                fm: r.u8()? as i32,
                segment: Some(text(r)?).filter(|s| !s.is_empty()),
                customers: r.i64()?,
                revenue: Money::read(r)?,
            });
        }
        Some(Header {
            overview,
            method,
            buckets,
            scheme,
            thresholds,
            summary,
            grid,
        })
    }
}

fn invalid_value() -> RfmError {
    RfmError::new(ErrorKind::InvalidBinary, "invalid rfm.analysis value")
        .with_hint("Pass the result of rfm.analyze(...) unchanged.")
}

impl Analysis {
    /// Reads an `rfm.analysis` value; with `with_customers = false` the customer list is
    /// left unread (and empty).
    pub fn deserialize(bytes: &[u8], with_customers: bool) -> Result<Analysis> {
        let mut r = Reader::new(bytes, ANALYSIS_VERSION).ok_or_else(invalid_value)?;
        let h = Header::read(&mut r).ok_or_else(invalid_value)?;
        let customers = if with_customers {
            Customers::new(r.rest(), h.buckets)?.collect()
        } else {
            Vec::new()
        };
        Ok(Analysis {
            overview: h.overview,
            method: h.method,
            buckets: h.buckets,
            scheme: h.scheme,
            thresholds: h.thresholds,
            summary: h.summary,
            grid: h.grid,
            customers,
        })
    }

    /// The customers of an `rfm.analysis` value, decoded one at a time, highest monetary
    /// first (the value is checked whole first, so the iteration itself cannot fail).
    pub fn customers(bytes: &[u8]) -> Result<Customers> {
        let mut r = Reader::new(bytes, ANALYSIS_VERSION).ok_or_else(invalid_value)?;
        let h = Header::read(&mut r).ok_or_else(invalid_value)?;
        Customers::new(r.rest(), h.buckets)
    }

    /// The keys of the excluded customers (a row at or before `as_of`, no purchase in the
    /// window), in key order (bigint keys as numbers, text keys bytewise), as text. Empty
    /// unless the analysis was made with `"keep_excluded": true`.
    pub fn excluded_keys(bytes: &[u8]) -> Result<Vec<String>> {
        Ok(Self::customers(bytes)?.excluded_keys())
    }
}

/// The encoded customers of an analysis (a private copy of that part of the value).
pub struct Customers {
    buf: Vec<u8>,
    pos: usize,
    left: u64,
    text_keys: bool,
    scale: Option<u32>,
    segments: Vec<String>,
    tiers: Vec<String>,
    /// The encoded keys of the excluded customers: a varint count, then the keys.
    excluded: Vec<u8>,
}

/// One customer as encoded: key, recency, frequency, money units or float bits, r, f, m,
/// segment (0: none, else index + 1), tier index ([`NO_TIER`]: none).
type Record<'a> = (Key<'a>, u64, u64, i64, [u8; 5]);

/// A customer key as text: text keys are UTF-8 (converted from the server encoding when
/// they were read, except in a `SQL_ASCII` database, whose bytes are kept as they are).
fn key_text(key: Key) -> String {
    match key {
        Key::Int(k) => k.to_string(),
        Key::Text(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

fn read_key<'b>(r: &mut Reader<'b>, text_keys: bool) -> Option<Key<'b>> {
    Some(if text_keys {
        Key::Text(r.short_bytes()?)
    } else {
        Key::Int(r.zigzag()?)
    })
}

fn read_record<'b>(r: &mut Reader<'b>, text_keys: bool, exact: bool) -> Option<Record<'b>> {
    let key = read_key(r, text_keys)?;
    let recency = r.varint()?;
    let freq = r.varint()?;
    let money = if exact {
        r.zigzag()?
    } else {
        r.f64()?.to_bits() as i64
    };
    let mut s = [0u8; 5];
    for b in s.iter_mut() {
        *b = r.u8()?;
    }
    Some((key, recency, freq, money, s))
}

impl Customers {
    fn new(section: &[u8], buckets: i32) -> Result<Customers> {
        Self::parse(section, buckets).ok_or_else(invalid_value)
    }

    fn parse(section: &[u8], buckets: i32) -> Option<Customers> {
        let mut r = Reader::raw(section);
        let text_keys = r.u8()? != 0;
        let exact = r.u8()? != 0;
        let scale = r.u32()?;
        let names = |r: &mut Reader| -> Option<Vec<String>> {
            let n = r.count_u32(1)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(String::from_utf8(r.short_bytes()?.to_vec()).ok()?);
            }
            Some(out)
        };
        let segments = names(&mut r)?;
        let tiers = names(&mut r)?;
        if tiers.len() >= NO_TIER as usize {
            return None;
        }
        // a forged count fails here, before anything is read or allocated for it
        let left = r.count_u64(MIN_RECORD_BYTES)? as u64;
        let records = r.rest();
        // check every record once, so that iterating cannot fail
        let mut check = Reader::raw(records);
        let score_ok = |x: u8| (1..=buckets).contains(&(x as i32));
        for _ in 0..left {
            let (_, recency, freq, _, s) = read_record(&mut check, text_keys, exact)?;
            if !(score_ok(s[0]) && score_ok(s[1]) && score_ok(s[2]))
                || s[3] as usize > segments.len()
                || (s[4] != NO_TIER && s[4] as usize >= tiers.len())
                || recency > i32::MAX as u64
                || freq > i64::MAX as u64
            {
                return None;
            }
        }
        let used = records.len() - check.rest().len();
        let excluded = check.rest();
        let n = check.count_varint(1)?;
        for _ in 0..n {
            read_key(&mut check, text_keys)?;
        }
        check.end()?;
        Some(Customers {
            buf: records[..used].to_vec(),
            pos: 0,
            left,
            text_keys,
            scale: exact.then_some(scale),
            segments,
            tiers,
            excluded: excluded.to_vec(),
        })
    }

    /// The keys of the excluded customers (see [`Analysis::excluded_keys`]).
    /// Calls `f(key, segment, tier, monetary)` for every customer, in the value's order,
    /// without allocating per customer (the iterator allocates the key and names).
    pub fn for_each_raw(&self, mut f: impl FnMut(Key<'_>, Option<&str>, Option<&str>, Money)) {
        let mut r = Reader::raw(&self.buf[self.pos..]);
        for _ in 0..self.left {
            // the records were checked by parse
            let Some((key, _, _, money, s)) =
                read_record(&mut r, self.text_keys, self.scale.is_some())
            else {
                break;
            };
            let money = match self.scale {
                Some(sc) => Money::Exact(money as i128, sc),
                None => Money::Float(f64::from_bits(money as u64)),
            };
            let segment = (s[3] > 0).then(|| self.segments[s[3] as usize - 1].as_str());
            let tier = (s[4] != NO_TIER).then(|| self.tiers[s[4] as usize].as_str());
            f(key, segment, tier, money);
        }
    }

    /// Calls `f(key)` for every excluded customer kept in the value.
    pub fn for_each_excluded_raw(&self, mut f: impl FnMut(Key<'_>)) {
        let mut r = Reader::raw(&self.excluded);
        let n = r.count_varint(1).unwrap_or(0);
        for _ in 0..n {
            match read_key(&mut r, self.text_keys) {
                Some(k) => f(k),
                None => break, // checked by parse
            }
        }
    }

    /// A key as text, as the iterator reports it.
    pub fn key_text(key: Key) -> String {
        key_text(key)
    }

    pub fn excluded_keys(&self) -> Vec<String> {
        let mut r = Reader::raw(&self.excluded);
        let n = r.count_varint(1).unwrap_or(0);
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match read_key(&mut r, self.text_keys) {
                Some(k) => out.push(key_text(k)),
                None => break, // checked by parse
            }
        }
        out
    }
}

impl Iterator for Customers {
    type Item = CustomerRow;

    fn next(&mut self) -> Option<CustomerRow> {
        if self.left == 0 {
            return None;
        }
        let mut r = Reader::raw(&self.buf[self.pos..]);
        let before = r.rest().len();
        let (key, recency, freq, money, s) =
            read_record(&mut r, self.text_keys, self.scale.is_some())?;
        let row = CustomerRow {
            key: key_text(key),
            recency_days: recency as i32,
            frequency: freq as i64,
            monetary: match self.scale {
                Some(sc) => Money::Exact(money as i128, sc),
                None => Money::Float(f64::from_bits(money as u64)),
            },
            r: s[0] as i32,
            f: s[1] as i32,
            m: s[2] as i32,
            segment: (s[3] > 0).then(|| self.segments[s[3] as usize - 1].clone()),
            abc_tier: (s[4] != NO_TIER).then(|| self.tiers[s[4] as usize].clone()),
        };
        self.pos += before - r.rest().len();
        self.left -= 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
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
            abc_min_sales: None,
            keep_excluded: false,
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

    fn analyze(s: State, d: &Days) -> Analysis {
        Analysis::deserialize(&finalize(s, d).unwrap(), true).unwrap()
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
        let a = analyze(s, &d);
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
        let right = State::deserialize(&right.serialize().unwrap()).unwrap();
        left.merge(right).unwrap();
        let bytes = finalize(whole, &d).unwrap();
        assert_eq!(bytes, finalize(left, &d).unwrap());
        let a = Analysis::deserialize(&bytes, true).unwrap();
        assert_eq!(
            a.customers,
            Analysis::customers(&bytes).unwrap().collect::<Vec<_>>()
        );
        let small = Analysis::deserialize(&bytes, false).unwrap();
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
        let a = analyze(s, &d);
        let keys: Vec<&str> = a.customers.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["ann", "cy", "bob"]); // monetary 7.5, 7, 1
        assert_eq!(a.customers[0].monetary, Money::Float(7.5));
        assert_eq!(a.customers[0].m, 3); // ntile over 3 customers: 1, 2, 3
        assert_eq!(a.customers[2].m, 1);
    }

    #[test]
    fn damaged_customer_records_are_rejected() {
        let c = config(Method::Quantile);
        let d = days(&c);
        let mut s = State::new(c, true, true);
        s.add_exact(Key::Text(b"ann@example.com"), 90 * DAY, dec(1250, 2))
            .unwrap();
        s.add_exact(Key::Text(b"bob"), 80 * DAY, dec(99, 0))
            .unwrap();
        let bytes = finalize(s, &d).unwrap();
        assert_eq!(Analysis::customers(&bytes).unwrap().count(), 2);
        // every truncation, and a score byte out of range, is refused
        for cut in 1..bytes.len() {
            assert!(Analysis::customers(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 4] = 9; // m of the last customer (before segment, tier, no excluded keys)
        assert!(Analysis::customers(&bad).is_err());
        let mut extra = bytes;
        extra.push(0);
        assert!(Analysis::customers(&extra).is_err());
    }

    #[test]
    fn recency_is_exact_at_midnight_and_windows_are_at_most_136_years() {
        let c = config(Method::Quantile);
        let d = days(&c);
        let mut s = State::new(c.clone(), false, true);
        s.add_exact(Key::Int(1), 100 * DAY - 1, dec(1, 0)).unwrap(); // 23:59:59.999999 the day before
        s.add_exact(Key::Int(2), 100 * DAY, dec(1, 0)).unwrap(); // midnight of the as_of day
        s.add_exact(Key::Int(3), c.window_start + 1, dec(1, 0))
            .unwrap(); // first instant in the window
        let a = analyze(s, &d);
        let recency = |k: &str| {
            a.customers
                .iter()
                .find(|x| x.key == k)
                .unwrap()
                .recency_days
        };
        assert_eq!((recency("1"), recency("2"), recency("3")), (1, 0, 365));
        let mut long = c.clone();
        long.window_start = long.as_of - 137 * 366 * DAY;
        long.period = "137 years".into();
        let e = long.validate().unwrap_err();
        assert_eq!(
            e.message,
            "option \"period\" must be at most 136 years, got \"137 years\""
        );
        long.window_start = long.as_of - 136 * 365 * DAY;
        assert!(long.validate().is_ok());
    }

    #[test]
    fn the_customer_limit_is_exact_whatever_the_batches() {
        let c = config(Method::Quantile);
        let mut s = State::new(c, false, true);
        s.max_customers = 100;
        for i in 0..1000 {
            s.add_exact(Key::Int(i % 100), 90 * DAY, dec(1, 0)).unwrap();
        }
        s.flush().unwrap();
        assert_eq!(s.len(), 100);
        // the 101st customer fails, in whichever call adds its batch
        let err = (0..BATCH)
            .find_map(|_| s.add_exact(Key::Int(100), 90 * DAY, dec(1, 0)).err())
            .or_else(|| s.flush().err())
            .unwrap();
        assert_eq!(err.kind, ErrorKind::ProgramLimit);
        assert_eq!(
            err.message,
            "rfm.analyze saw 101 customers; one analysis holds at most 100 (rfm.max_customers)"
        );
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
        assert_eq!(std::mem::size_of::<Entry>(), 24);
    }
}
