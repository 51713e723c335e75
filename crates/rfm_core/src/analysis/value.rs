//! The `rfm.analysis` value: what it holds ([`Analysis`] and its row types), how it is
//! written and read, and [`Customers`], its customers decoded one at a time.

use super::options::{Method, METRICS, MICROS};
use super::{read_opt, write_opt, Key};
use crate::codec::{Reader, Writer};
use crate::error::{ErrorKind, Result, RfmError};
use crate::numeric;

/// Version 5: customers encoded compactly (varints, segment and tier as indexes; tier
/// [`NO_TIER`] for a customer below `abc_min_sales`; scores 0 for a customer who is not
/// active, output by a scheme with population `all`), with the full metrics when the
/// analysis computed them (first and latest purchase as seconds and microseconds, the
/// latest after the first), then the keys of the excluded customers (none unless
/// `keep_excluded`).
///
/// Version 6: version 5 followed by the CRC-32C of the value ([`Writer::finish_checked`]),
/// so that a value changed by hand is refused rather than read with changed content.
///
/// [`Writer::finish_checked`]: crate::codec::Writer::finish_checked
pub(super) const ANALYSIS_VERSION: u8 = 6;

/// The tier index of a customer left out of the ABC ranking.
pub(super) const NO_TIER: u8 = u8::MAX;

/// The fewest bytes one encoded customer takes: a key, recency, frequency and money of at
/// least one byte each, and five score bytes.
const MIN_RECORD_BYTES: usize = 9;

/// A money amount as reported: exact units at a scale, or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Money {
    Exact(i128, u32),
    Float(f64),
}

impl Money {
    pub fn to_f64(self) -> f64 {
        match self {
            Money::Exact(u, s) => {
                // the powers of ten up to 10^22 are exact doubles (what powi computes too)
                // and an amount that fits in 64 bits converts in one instruction; both give
                // the same double as the general form
                const POW10: [f64; 23] = [
                    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                    1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
                ];
                let p = POW10
                    .get(s as usize)
                    .copied()
                    .unwrap_or_else(|| 10f64.powi(s as i32));
                match i64::try_from(u) {
                    Ok(i) => i as f64 / p,
                    Err(_) => u as f64 / p,
                }
            }
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

/// What a run says of a customer besides its segment: what explains a move (SPEC §2,
/// `rfm.customer_movement`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// None for a customer without a purchase in the window.
    pub recency_days: Option<i32>,
    pub frequency: i64,
    pub monetary: Money,
    /// r, f, m; None for a customer who is not active.
    pub scores: Option<[u8; 3]>,
}

/// The full metrics of a customer (SPEC §9), when the analysis computed them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// Purchase amounts in the window (returns left out): `aov` = this / `frequency`.
    pub purchases: Money,
    /// Return rows in the window and their amount as a positive number.
    pub returns: i64,
    pub return_amount: Money,
    /// First and latest purchase at or before `as_of` (PostgreSQL microseconds).
    pub first_purchase_at: i64,
    pub last_purchase_at: i64,
    pub tenure_days: i32,
    pub days_since_last: i32,
    /// Purchase rows and the sum of all amounts at or before `as_of`.
    pub lifetime_orders: i64,
    pub lifetime_value: Money,
}

impl Metrics {
    /// `return_amount` / purchase amounts (0 when there are none).
    pub fn return_rate(&self) -> f64 {
        let p = self.purchases.to_f64();
        if p > 0.0 {
            self.return_amount.to_f64() / p
        } else {
            0.0
        }
    }
}

/// One customer in the result: an active one, or (population `all`) one with a purchase
/// at or before `as_of` but none in the window, who has no scores.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub key: String,
    /// Days since the latest purchase in the window (0 and meaningless when not active).
    pub recency_days: i32,
    pub frequency: i64,
    pub monetary: Money,
    /// Scores 1..=buckets, 0 for a customer who is not active.
    pub r: i32,
    pub f: i32,
    pub m: i32,
    pub segment: Option<String>,
    /// `None` for a customer whose monetary is below `abc_min_sales` (or not active).
    pub abc_tier: Option<String>,
    pub metrics: Option<Metrics>,
}

impl CustomerRow {
    /// A purchase in the window.
    pub fn active(&self) -> bool {
        self.frequency > 0
    }

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
    /// Rows in the window whose key is NULL, and the sum of their amounts.
    pub rows_without_key: i64,
    pub amount_without_key: Money,
    /// Rows after `as_of`: not part of the analysis.
    pub rows_after_as_of: i64,
    /// The window amounts (returns only) of the excluded customers.
    pub excluded_amount: Money,
    /// Active customers whose monetary is below `abc_min_sales` (no ABC tier).
    pub below_min_customers: i64,
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

/// Everything in an `rfm.analysis` value but the customers.
pub(super) struct Header {
    pub(super) overview: Overview,
    pub(super) method: Method,
    pub(super) buckets: i32,
    pub(super) scheme: Option<String>,
    pub(super) thresholds: Vec<ThresholdRow>,
    pub(super) summary: Vec<SummaryRow>,
    pub(super) grid: Vec<GridRow>,
}

impl Header {
    pub(super) fn write(&self, w: &mut Writer) {
        let o = &self.overview;
        w.i64(o.as_of);
        w.bytes(o.period.as_bytes());
        w.i64(o.active_customers);
        w.i64(o.excluded_customers);
        o.total_revenue.write(w);
        w.i64(o.transactions);
        w.i64(o.rows_without_key);
        o.amount_without_key.write(w);
        w.i64(o.rows_after_as_of);
        o.excluded_amount.write(w);
        w.i64(o.below_min_customers);
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
            rows_without_key: r.i64()?,
            amount_without_key: Money::read(r)?,
            rows_after_as_of: r.i64()?,
            excluded_amount: Money::read(r)?,
            below_min_customers: r.i64()?,
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
        let mut r = Reader::checked(bytes, ANALYSIS_VERSION).ok_or_else(invalid_value)?;
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
        let mut r = Reader::checked(bytes, ANALYSIS_VERSION).ok_or_else(invalid_value)?;
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
    /// Whether each record carries the full metrics.
    wide: bool,
}

/// The full metrics of one record as encoded.
struct RawExtra {
    purchases: i64,
    before: i64,
    returns: u64,
    orders_before: u64,
    first: i64,
    latest: i64,
    tenure: i64,
    since: i64,
}

/// An instant relative to `from` as [`write_instant`] wrote it.
fn read_instant(r: &mut Reader, from: i64) -> Option<i64> {
    let secs = r.zigzag()?;
    let micros = r.varint()?;
    if micros >= MICROS as u64 {
        return None;
    }
    let d = secs.checked_mul(MICROS)?.checked_add(micros as i64)?;
    Some(from.wrapping_add(d))
}

/// An instant relative to `from`: whole seconds (zigzag), then the microseconds left (one
/// byte for the whole seconds that timestamps usually are).
pub(super) fn write_instant(w: &mut Writer, t: i64, from: i64) {
    let d = t.wrapping_sub(from);
    w.zigzag(d.div_euclid(MICROS));
    w.varint(d.rem_euclid(MICROS) as u64);
}

fn read_extra(r: &mut Reader, exact: bool) -> Option<RawExtra> {
    let mut money = || -> Option<i64> {
        Some(if exact {
            r.zigzag()?
        } else {
            r.f64()?.to_bits() as i64
        })
    };
    let purchases = money()?;
    let before = money()?;
    let (returns, orders_before) = (r.varint()?, r.varint()?);
    let first = read_instant(r, 0)?;
    let x = RawExtra {
        purchases,
        before,
        returns,
        orders_before,
        first,
        latest: read_instant(r, first)?,
        tenure: r.zigzag()?,
        since: r.zigzag()?,
    };
    (i32::try_from(x.tenure).is_ok() && i32::try_from(x.since).is_ok()).then_some(x)
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
        let wide = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let all = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
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
            // a customer without a purchase in the window has no scores and no tier, and is
            // only output with the full metrics and population all
            let scored = if freq == 0 {
                s[..3] == [0, 0, 0] && s[4] == NO_TIER && wide && all
            } else {
                score_ok(s[0]) && score_ok(s[1]) && score_ok(s[2])
            };
            if !scored
                || s[3] as usize > segments.len()
                || (s[4] != NO_TIER && s[4] as usize >= tiers.len())
                || recency > i32::MAX as u64
                || freq > i64::MAX as u64
            {
                return None;
            }
            if wide {
                let x = read_extra(&mut check, exact)?;
                if x.returns > i64::MAX as u64
                    || x.orders_before.checked_add(freq)? > i64::MAX as u64
                {
                    return None;
                }
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
            wide,
        })
    }

    /// Calls `f(key, segment, tier, monetary)` for every customer, in the value's order,
    /// without allocating per customer (the iterator allocates the key and names).
    pub fn for_each_raw(&self, mut f: impl FnMut(Key<'_>, Option<&str>, Option<&str>, Money)) {
        self.for_each_snapshot(|k, s, t, snap| f(k, s, t, snap.monetary));
    }

    /// Like [`Customers::for_each_raw`], with the customer's scores and metrics.
    pub fn for_each_snapshot(
        &self,
        mut f: impl FnMut(Key<'_>, Option<&str>, Option<&str>, Snapshot),
    ) {
        let mut r = Reader::raw(&self.buf[self.pos..]);
        for _ in 0..self.left {
            // the records were checked by parse
            let Some((key, recency, freq, money, s)) =
                read_record(&mut r, self.text_keys, self.scale.is_some())
            else {
                break;
            };
            if self.wide && read_extra(&mut r, self.scale.is_some()).is_none() {
                break;
            }
            let money = match self.scale {
                Some(sc) => Money::Exact(money as i128, sc),
                None => Money::Float(f64::from_bits(money as u64)),
            };
            let segment = (s[3] > 0).then(|| self.segments[s[3] as usize - 1].as_str());
            let tier = (s[4] != NO_TIER).then(|| self.tiers[s[4] as usize].as_str());
            let snap = Snapshot {
                recency_days: (freq > 0).then_some(recency as i32),
                frequency: freq as i64,
                monetary: money,
                scores: (s[0] > 0).then_some([s[0], s[1], s[2]]),
            };
            f(key, segment, tier, snap);
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
        let to_money = |m: i64| match self.scale {
            Some(sc) => Money::Exact(m as i128, sc),
            None => Money::Float(f64::from_bits(m as u64)),
        };
        let metrics = if self.wide {
            let x = read_extra(&mut r, self.scale.is_some())?;
            let (monetary, purchases, before) =
                (to_money(money), to_money(x.purchases), to_money(x.before));
            Some(Metrics {
                purchases,
                returns: x.returns as i64,
                return_amount: match (purchases, monetary) {
                    (Money::Exact(p, sc), Money::Exact(m, _)) => Money::Exact(p - m, sc),
                    (p, m) => Money::Float(p.to_f64() - m.to_f64()),
                },
                first_purchase_at: x.first,
                last_purchase_at: x.latest,
                tenure_days: x.tenure as i32,
                days_since_last: x.since as i32,
                lifetime_orders: (freq + x.orders_before) as i64,
                lifetime_value: match (monetary, before) {
                    (Money::Exact(m, sc), Money::Exact(b, _)) => Money::Exact(m + b, sc),
                    (m, b) => Money::Float(m.to_f64() + b.to_f64()),
                },
            })
        } else {
            None
        };
        let row = CustomerRow {
            key: key_text(key),
            recency_days: recency as i32,
            frequency: freq as i64,
            monetary: to_money(money),
            metrics,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{config, days, dec, DAY};
    use crate::analysis::{finalize, State};

    #[test]
    fn exact_money_as_a_double_is_the_quotient_powi_gives() {
        let mut units: Vec<i128> = vec![0, 1, -1, 999, 10i128.pow(17) + 1, 1 << 53, (1 << 53) + 1];
        units.extend([i64::MAX as i128, i64::MIN as i128, i64::MAX as i128 + 1]);
        units.extend([i128::MAX, i128::MIN, 123_456_789_012_345_678_901_234_567]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            units.push((x as i64 >> (x % 60)) as i128);
        }
        for &u in &units {
            for s in 0..40u32 {
                let general = u as f64 / 10f64.powi(s as i32);
                assert_eq!(
                    Money::Exact(u, s).to_f64().to_bits(),
                    general.to_bits(),
                    "{u} at scale {s}"
                );
            }
        }
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
    fn corrupted_values_are_rejected() {
        assert!(State::deserialize(&[9, 9, 9]).is_none());
        let e = Analysis::deserialize(&[1, 2, 3], true).unwrap_err();
        assert_eq!(e.kind.sqlstate(), "22P03");
    }
}
