//! The aggregate state of `rfm.clv_fit`: every purchase row as (customer, local day, amount)
//! in three columns, mergeable for parallel plans, and its serialized encoding. The final
//! step sorts the rows by customer and reads off the BG/NBD inputs (SPEC §12): purchase days,
//! the first and the last, and the day totals of the repeat days.
//!
//! A row costs an append, not a hash lookup: bigint keys are stored as they are and
//! grouped once at the end by a radix sort (a lookup per row in a table of a million
//! customers costs a cache miss or two, a radix pass a sequential read). Text keys go
//! through a hash table to a customer index first.
//!
//! Amounts of one day are added in a fixed order (by value) when the state is finished, not
//! as rows come, so that a serial and a parallel plan give the same totals to the last bit.

use super::{ClvConfig, DAY_MICROS};
use crate::analysis::Key;
use crate::codec::{Reader, Writer};
use crate::error::{ErrorKind, Result, RfmError};
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Local calendar days of timestamps. `midnights[i]` is the first instant of day
/// `first + i` (days since 2000-01-01, as PostgreSQL's `date`); days are added on demand
/// from a function that knows the session time zone.
#[derive(Debug, Default)]
pub struct LocalDays {
    first: i32,
    midnights: Vec<i64>,
}

impl LocalDays {
    pub fn new() -> Self {
        LocalDays::default()
    }

    /// Makes sure the midnights of days `lo..=hi` are known.
    fn cover<E>(
        &mut self,
        lo: i32,
        hi: i32,
        midnight: &mut impl FnMut(i32) -> std::result::Result<i64, E>,
    ) -> std::result::Result<(), E> {
        if self.midnights.is_empty() {
            self.first = lo;
            for d in lo..=hi {
                self.midnights.push(midnight(d)?);
            }
            return Ok(());
        }
        let last = self.first + self.midnights.len() as i32 - 1;
        if lo < self.first {
            let mut front = Vec::with_capacity((self.first - lo) as usize + self.midnights.len());
            for d in lo..self.first {
                front.push(midnight(d)?);
            }
            front.append(&mut self.midnights);
            self.midnights = front;
            self.first = lo;
        }
        for d in last + 1..=hi {
            self.midnights.push(midnight(d)?);
        }
        Ok(())
    }

    /// The local day of `ts` (PostgreSQL microseconds). `midnight(d)` gives the first
    /// instant of local day `d`; it is called once per day ever needed.
    #[inline]
    pub fn day_of<E>(
        &mut self,
        ts: i64,
        mut midnight: impl FnMut(i32) -> std::result::Result<i64, E>,
    ) -> std::result::Result<i32, E> {
        // a time zone is less than a day away from UTC: the local day is next to the UTC one
        let utc = ts.div_euclid(DAY_MICROS) as i32;
        let (lo, hi) = (utc.saturating_sub(2), utc.saturating_add(2));
        let last = self.first + self.midnights.len() as i32 - 1;
        if self.midnights.is_empty() || lo < self.first || hi > last {
            self.cover(lo, hi, &mut midnight)?;
        }
        let base = (utc - 1 - self.first) as usize;
        for i in base..base + 3 {
            if self.midnights[i] <= ts && ts < self.midnights[i + 1] {
                return Ok(self.first + i as i32);
            }
        }
        // not expected: fall back to a search of every known day
        let i = self.midnights.partition_point(|&m| m <= ts);
        Ok(self.first + i as i32 - 1)
    }
}

/// One customer in the hash table: its key (bigint, or offset << 32 | length of a text key
/// in the arena) and its index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    idx: u32,
}

/// The BG/NBD and Gamma-Gamma inputs of one customer, in days.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    /// The key as UTF-8 text bytes, or the bigint.
    pub key: KeyValue,
    /// Repeat purchases: purchase days - 1.
    pub x: u32,
    /// Days from the first to the last purchase day.
    pub t_x: u32,
    /// Days from the first purchase day to `as_of::date`.
    pub t: u32,
    /// Total of the day totals of the repeat days (every purchase day but the first).
    pub repeat_total: f64,
}

/// A customer key, owned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyValue {
    Int(i64),
    Text(Vec<u8>),
}

impl CustomerSummary {
    /// Mean of the day totals of the repeat days (`None` without repeat purchases).
    pub fn avg_spend(&self) -> Option<f64> {
        (self.x > 0).then(|| self.repeat_total / self.x as f64)
    }
}

/// The aggregate state.
pub struct Summary {
    pub config: ClvConfig,
    text_keys: bool,
    /// Text keys only: key to customer index.
    table: HashTable<Slot>,
    /// Text keys only, per customer index: the stored key (as in [`Slot::key`]).
    keys: Vec<u64>,
    arena: Vec<u8>,
    /// Per purchase row: the bigint key (as u64), or the text key's customer index.
    who: Vec<u64>,
    /// Per purchase row: its local day.
    days: Vec<i32>,
    /// Per purchase row: its amount (>= 0, finite).
    amounts: Vec<f64>,
    hasher: foldhash::fast::FixedState,
    /// The most customers the state may hold; a new one beyond it is an error (54000).
    pub max_customers: usize,
}

fn key_of<'a>(arena: &'a [u8], text: bool, stored: u64) -> Key<'a> {
    if text {
        let off = (stored >> 32) as usize;
        let len = (stored & 0xFFFF_FFFF) as usize;
        Key::Text(&arena[off..off + len])
    } else {
        Key::Int(stored as i64)
    }
}

fn hash_key(hasher: &foldhash::fast::FixedState, key: Key) -> u64 {
    match key {
        Key::Int(k) => hasher.hash_one(k),
        Key::Text(t) => hasher.hash_one(t),
    }
}

/// Version 1: config, key kind, arena, keys, then (index, day, amount) records.
const STATE_VERSION: u8 = 1;

impl Summary {
    pub fn new(config: ClvConfig, text_keys: bool) -> Summary {
        Summary {
            config,
            text_keys,
            table: HashTable::new(),
            keys: Vec::new(),
            arena: Vec::new(),
            who: Vec::new(),
            days: Vec::new(),
            amounts: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x00c1_f5ee_d0f2),
            max_customers: u32::MAX as usize,
        }
    }

    pub fn text_keys(&self) -> bool {
        self.text_keys
    }

    /// Purchase rows held.
    pub fn rows(&self) -> usize {
        self.who.len()
    }

    /// The index of `key`, added when new.
    fn index(&mut self, key: Key) -> Result<u32> {
        let Summary {
            table,
            keys,
            arena,
            hasher,
            text_keys,
            max_customers,
            ..
        } = self;
        let text = *text_keys;
        let hash = hash_key(hasher, key);
        let found = {
            let arena_ref: &Vec<u8> = arena;
            table.entry(
                hash,
                |s| key_of(arena_ref, text, s.key) == key,
                |s| hash_key(hasher, key_of(arena_ref, text, s.key)),
            )
        };
        match found {
            hashbrown::hash_table::Entry::Occupied(o) => Ok(o.get().idx),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let n = keys.len();
                if n >= *max_customers {
                    return Err(customer_limit(*max_customers));
                }
                let stored = match key {
                    Key::Int(k) => k as u64,
                    Key::Text(t) => {
                        let off = arena.len();
                        if off + t.len() > u32::MAX as usize {
                            return Err(too_large(n));
                        }
                        arena.extend_from_slice(t);
                        ((off as u64) << 32) | t.len() as u64
                    }
                };
                v.insert(Slot {
                    key: stored,
                    idx: n as u32,
                });
                keys.push(stored);
                Ok(n as u32)
            }
        }
    }

    /// Adds one purchase (amount >= 0, finite) on local day `day`. The caller leaves out
    /// rows after `as_of` and returns.
    #[inline]
    pub fn add(&mut self, key: Key, day: i32, amount: f64) -> Result<()> {
        if self.who.len() >= MAX_ROWS {
            return Err(too_many_rows());
        }
        let who = match key {
            Key::Int(k) if !self.text_keys => k as u64,
            _ => self.index(key)? as u64,
        };
        self.who.push(who);
        self.days.push(day);
        self.amounts.push(amount);
        Ok(())
    }

    /// Merges `other` (a partial state of the same aggregate) into `self`.
    pub fn merge(&mut self, other: Summary) -> Result<()> {
        if other.config != self.config || other.text_keys != self.text_keys {
            return Err(RfmError::invalid(
                "options and argument types must be the same for every row",
            ));
        }
        if self.who.len() + other.who.len() > MAX_ROWS {
            return Err(too_many_rows());
        }
        if self.text_keys {
            let map: Vec<u64> = other
                .keys
                .iter()
                .map(|&k| self.index(key_of(&other.arena, true, k)).map(u64::from))
                .collect::<Result<_>>()?;
            self.who.extend(other.who.iter().map(|&i| map[i as usize]));
        } else {
            self.who.extend_from_slice(&other.who);
        }
        self.days.extend_from_slice(&other.days);
        self.amounts.extend_from_slice(&other.amounts);
        Ok(())
    }

    /// Serialized state (version [`STATE_VERSION`]): the columns one after the other.
    pub fn serialize(&self) -> Vec<u8> {
        let n = self.who.len();
        let mut w = Writer::new(
            STATE_VERSION,
            64 + self.arena.len() + 8 * self.keys.len() + 20 * n,
        );
        self.config.write(&mut w);
        w.u8(self.text_keys as u8);
        w.bytes(&self.arena);
        w.u64(self.keys.len() as u64);
        for &k in &self.keys {
            w.u64(k);
        }
        w.u64(n as u64);
        for &v in &self.who {
            w.u64(v);
        }
        for &d in &self.days {
            w.u32(d as u32);
        }
        for &a in &self.amounts {
            w.f64(a);
        }
        w.finish()
    }

    /// A state from [`Summary::serialize`]'s bytes; `None` for anything else. Every count
    /// is checked against the bytes there are before anything is allocated for it.
    pub fn deserialize(bytes: &[u8]) -> Option<Summary> {
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let config = ClvConfig::read(&mut r)?;
        let text_keys = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let arena = r.bytes()?.to_vec();
        let n = r.count_u64(8)?;
        if n > u32::MAX as usize || (!text_keys && (n > 0 || !arena.is_empty())) {
            return None;
        }
        let mut s = Summary::new(config, text_keys);
        s.arena = arena;
        s.keys.reserve(n);
        s.table.reserve(n, |_| 0);
        for i in 0..n {
            let stored = r.u64()?;
            let (off, len) = ((stored >> 32) as usize, (stored & 0xFFFF_FFFF) as usize);
            if off.checked_add(len)? > s.arena.len() {
                return None;
            }
            let key = key_of(&s.arena, true, stored);
            let hash = hash_key(&s.hasher, key);
            if s.table
                .find(hash, |x| key_of(&s.arena, true, x.key) == key)
                .is_some()
            {
                return None; // a key twice
            }
            let (arena, hasher) = (&s.arena, &s.hasher);
            s.table.insert_unique(
                hash,
                Slot {
                    key: stored,
                    idx: i as u32,
                },
                |x| hash_key(hasher, key_of(arena, true, x.key)),
            );
            s.keys.push(stored);
        }
        // 20 bytes a row
        let m = r.count_u64(20)?;
        if m > MAX_ROWS {
            return None;
        }
        let who = r.take_bytes(8 * m)?;
        let days = r.take_bytes(4 * m)?;
        let amounts = r.take_bytes(8 * m)?;
        s.who = who
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if text_keys && s.who.iter().any(|&i| i >= n as u64) {
            return None;
        }
        s.days = days
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i32)
            .collect();
        s.amounts = amounts
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        if s.amounts.iter().any(|a| !(a.is_finite() && *a >= 0.0)) {
            return None;
        }
        r.end()?;
        Some(s)
    }

    /// Per text customer index its rank in byte order of the keys, and the stored keys in
    /// that order.
    fn text_ranks(&self) -> (Vec<u64>, Vec<u64>) {
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            let ka = key_of(&self.arena, true, self.keys[a as usize]);
            let kb = key_of(&self.arena, true, self.keys[b as usize]);
            match (ka, kb) {
                (Key::Text(x), Key::Text(y)) => x.cmp(y),
                _ => std::cmp::Ordering::Equal,
            }
        });
        let mut rank = vec![0u64; self.keys.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u64;
        }
        let by_rank = order.iter().map(|&i| self.keys[i as usize]).collect();
        (rank, by_rank)
    }

    /// The per-customer inputs, ordered by key (bigint order, or text bytes), so that the
    /// result does not depend on the order rows came in.
    pub fn finish(self) -> Result<Vec<CustomerSummary>> {
        // each row's order key: unsigned order of these is the customers' order
        let (rank, by_rank) = if self.text_keys {
            self.text_ranks()
        } else {
            (Vec::new(), Vec::new())
        };
        let Summary {
            config,
            text_keys,
            arena,
            who,
            days,
            amounts,
            max_customers,
            ..
        } = self;
        let order_key = |w: u64| -> u64 {
            if text_keys {
                rank[w as usize]
            } else {
                w ^ (1 << 63) // flipping the sign bit makes unsigned order the signed order
            }
        };
        let rows = sorted_rows(who.iter().map(|&w| order_key(w)), days, amounts);
        drop(who);
        let mut out = Vec::new();
        let mut day_amounts: Vec<(i32, f64)> = Vec::new();
        let mut i = 0;
        let n = rows.len();
        while i < n {
            let k = rows.get(i).0;
            let mut j = i;
            day_amounts.clear();
            while j < n {
                let (kj, day, amount) = rows.get(j);
                if kj != k {
                    break;
                }
                day_amounts.push((day, amount));
                j += 1;
            }
            i = j;
            if out.len() >= max_customers {
                return Err(customer_limit(max_customers));
            }
            let key = if text_keys {
                match key_of(&arena, true, by_rank[k as usize]) {
                    Key::Text(t) => KeyValue::Text(t.to_vec()),
                    Key::Int(v) => KeyValue::Int(v),
                }
            } else {
                KeyValue::Int((k ^ (1 << 63)) as i64)
            };
            out.push(summarize(key, &mut day_amounts, config.as_of_day)?);
        }
        Ok(out)
    }
}

/// One customer's inputs from its (day, amount) rows.
fn summarize(key: KeyValue, rows: &mut [(i32, f64)], as_of_day: i32) -> Result<CustomerSummary> {
    // by day, then by amount: day totals are added in one fixed order
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let first = rows[0].0;
    let mut last = first;
    let mut x = 0u32;
    let mut repeat_total = 0.0;
    let mut day_total = 0.0;
    for &(d, amount) in rows.iter() {
        if d != last {
            if last != first {
                repeat_total += day_total;
            }
            x += 1;
            last = d;
            day_total = 0.0;
        }
        day_total += amount;
    }
    if last != first {
        repeat_total += day_total;
    }
    let t = as_of_day.checked_sub(first).filter(|t| *t >= 0);
    Ok(CustomerSummary {
        key,
        x,
        t_x: (last - first) as u32,
        t: t.ok_or_else(|| RfmError::invalid("a purchase after as_of"))? as u32,
        repeat_total,
    })
}

/// The rows (order key, day, amount) sorted by order key. A least-significant-digit radix
/// sort of 16-byte rows over the bits in which the keys differ, 11 bits a pass, when they
/// span at most 32 bits (a million customers numbered densely take two passes of
/// sequential reads); else a comparison sort.
fn sorted_rows(
    keys: impl ExactSizeIterator<Item = u64> + Clone,
    days: Vec<i32>,
    amounts: Vec<f64>,
) -> Sorted {
    let n = keys.len();
    let (lo, hi) = keys
        .clone()
        .fold((u64::MAX, 0u64), |(lo, hi), k| (lo.min(k), hi.max(k)));
    if n == 0 {
        return Sorted::Wide(Vec::new());
    }
    let span = hi - lo;
    if span >> 32 != 0 {
        let mut rows: Vec<(u64, i32, f64)> = keys
            .zip(days)
            .zip(amounts)
            .map(|((k, d), a)| (k, d, a))
            .collect();
        rows.sort_unstable_by_key(|r| r.0);
        return Sorted::Wide(rows);
    }
    let mut a: Vec<Row> = keys
        .zip(days)
        .zip(amounts)
        .map(|((k, day), amount)| Row {
            key: (k - lo) as u32,
            day,
            amount,
        })
        .collect();
    let mut b: Vec<Row> = vec![
        Row {
            key: 0,
            day: 0,
            amount: 0.0
        };
        n
    ];
    const DIGIT: u32 = 11;
    const MASK: u32 = (1 << DIGIT) - 1;
    let bits = 64 - span.leading_zeros();
    let mut shift = 0;
    while shift < bits {
        let mut count = vec![0usize; 1 << DIGIT];
        for r in &a {
            count[((r.key >> shift) & MASK) as usize] += 1;
        }
        let mut sum = 0;
        for c in count.iter_mut() {
            let k = *c;
            *c = sum;
            sum += k;
        }
        for r in &a {
            let d = ((r.key >> shift) & MASK) as usize;
            b[count[d]] = *r;
            count[d] += 1;
        }
        std::mem::swap(&mut a, &mut b);
        shift += DIGIT;
    }
    drop(b);
    Sorted::Narrow(lo, a)
}

/// Rows of 16 bytes, keys relative to `lo`
#[derive(Clone, Copy)]
struct Row {
    key: u32,
    day: i32,
    amount: f64,
}

/// Rows sorted by order key.
enum Sorted {
    /// Keys relative to a base, in 32 bits.
    Narrow(u64, Vec<Row>),
    Wide(Vec<(u64, i32, f64)>),
}

impl Sorted {
    fn len(&self) -> usize {
        match self {
            Sorted::Narrow(_, r) => r.len(),
            Sorted::Wide(r) => r.len(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> (u64, i32, f64) {
        match self {
            Sorted::Narrow(lo, r) => (lo + r[i].key as u64, r[i].day, r[i].amount),
            Sorted::Wide(r) => r[i],
        }
    }
}

/// Purchase rows one state holds at most: 20 bytes each, so that a serialized state (a
/// parallel worker's) stays below PostgreSQL's 1 GB limit for one value.
const MAX_ROWS: usize = 50_000_000;

fn too_many_rows() -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!("rfm.clv_fit holds at most {MAX_ROWS} purchase rows"),
    )
    .with_hint(
        "Pre-aggregate to one row per customer and day (GROUP BY customer, ordered_at::date with sum(amount) FILTER (WHERE amount >= 0)): the model's inputs are the same.",
    )
}

fn customer_limit(max: usize) -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!(
            "rfm.clv_fit saw {} customers; one model holds at most {max} (rfm.max_customers)",
            max.saturating_add(1)
        ),
    )
    .with_hint("Filter the rows with WHERE, or partition the work, for example GROUP BY region.")
}

fn too_large(n: usize) -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!("the keys of {n} customers do not fit in one value (4 GB of key text)"),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::config;
    use super::*;

    fn utc_midnight(d: i32) -> std::result::Result<i64, ()> {
        Ok(d as i64 * DAY_MICROS)
    }

    #[test]
    fn local_days_follow_the_midnights() {
        let mut days = LocalDays::new();
        assert_eq!(days.day_of(5 * DAY_MICROS, utc_midnight), Ok(5));
        assert_eq!(days.day_of(5 * DAY_MICROS - 1, utc_midnight), Ok(4));
        assert_eq!(days.day_of(-1, utc_midnight), Ok(-1));
        assert_eq!(days.day_of(900 * DAY_MICROS + 7, utc_midnight), Ok(900));
        // a zone 10 hours east: local days start at 14:00 UTC of the day before
        let east = |d: i32| -> std::result::Result<i64, ()> {
            Ok(d as i64 * DAY_MICROS - 10 * 3_600_000_000)
        };
        let mut days = LocalDays::new();
        assert_eq!(
            days.day_of(5 * DAY_MICROS + 13 * 3_600_000_000, east),
            Ok(5)
        );
        assert_eq!(
            days.day_of(5 * DAY_MICROS + 14 * 3_600_000_000, east),
            Ok(6)
        );
        assert_eq!(days.day_of(-3 * DAY_MICROS, east), Ok(-3));
    }

    #[test]
    fn keys_far_apart_are_ordered_too() {
        let mut s = Summary::new(config(100, 1), false);
        for k in [i64::MAX, -5, i64::MIN, 7, -5, i64::MAX] {
            s.add(Key::Int(k), 50, 1.0).unwrap();
        }
        let keys: Vec<KeyValue> = s.finish().unwrap().into_iter().map(|c| c.key).collect();
        let want = [i64::MIN, -5, 7, i64::MAX].map(KeyValue::Int);
        assert_eq!(keys, want);
    }

    #[test]
    fn the_summary_counts_distinct_days_and_repeat_day_totals() {
        let c = config(100, 7);
        let mut s = Summary::new(c, false);
        // customer 1: two orders on day 10, one on day 20, one on day 30
        for (d, a) in [(10, 5.0), (10, 7.0), (20, 3.0), (30, 4.0), (30, 1.0)] {
            s.add(Key::Int(1), d, a).unwrap();
        }
        s.add(Key::Int(2), 50, 9.0).unwrap();
        let out = s.finish().unwrap();
        assert_eq!(
            out[0],
            CustomerSummary {
                key: KeyValue::Int(1),
                x: 2,
                t_x: 20,
                t: 90,
                repeat_total: 8.0
            }
        );
        assert_eq!(out[0].avg_spend(), Some(4.0));
        assert_eq!(out[1].x, 0);
        assert_eq!(out[1].t, 50);
        assert_eq!(out[1].avg_spend(), None);
    }
}
