//! The aggregate state of `rfm.clv_fit`: every customer's purchases as (local day, amount)
//! records, mergeable for parallel plans, and its serialized encoding. The final step sorts
//! each customer's records and reads off the BG/NBD inputs (SPEC §12): purchase days, the
//! first and the last, and the day totals of the repeat days.
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

/// One purchase row: the customer's index, its local day, its amount.
#[derive(Debug, Clone, Copy)]
struct Rec {
    idx: u32,
    day: i32,
    amount: f64,
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
    table: HashTable<Slot>,
    /// Per customer index: the stored key (as in [`Slot::key`]).
    keys: Vec<u64>,
    arena: Vec<u8>,
    recs: Vec<Rec>,
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
            recs: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x00c1_f5ee_d0f2),
            max_customers: u32::MAX as usize,
        }
    }

    pub fn text_keys(&self) -> bool {
        self.text_keys
    }

    /// Customers seen so far.
    pub fn customers(&self) -> usize {
        self.keys.len()
    }

    /// Purchase rows held.
    pub fn rows(&self) -> usize {
        self.recs.len()
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
        let idx = self.index(key)?;
        if self.recs.len() >= MAX_ROWS {
            return Err(too_many_rows());
        }
        self.recs.push(Rec { idx, day, amount });
        Ok(())
    }

    /// Merges `other` (a partial state of the same aggregate) into `self`.
    pub fn merge(&mut self, other: Summary) -> Result<()> {
        if other.config != self.config || other.text_keys != self.text_keys {
            return Err(RfmError::invalid(
                "options and argument types must be the same for every row",
            ));
        }
        let map: Vec<u32> = other
            .keys
            .iter()
            .map(|&k| self.index(key_of(&other.arena, other.text_keys, k)))
            .collect::<Result<_>>()?;
        if self.recs.len() + other.recs.len() > MAX_ROWS {
            return Err(too_many_rows());
        }
        self.recs.reserve(other.recs.len());
        self.recs.extend(other.recs.iter().map(|r| Rec {
            idx: map[r.idx as usize],
            ..*r
        }));
        Ok(())
    }

    /// Serialized state (version [`STATE_VERSION`]).
    pub fn serialize(&self) -> Vec<u8> {
        let mut w = Writer::new(
            STATE_VERSION,
            64 + self.arena.len() + 8 * self.keys.len() + 16 * self.recs.len(),
        );
        self.config.write(&mut w);
        w.u8(self.text_keys as u8);
        w.bytes(&self.arena);
        w.u64(self.keys.len() as u64);
        for &k in &self.keys {
            w.u64(k);
        }
        w.u64(self.recs.len() as u64);
        for r in &self.recs {
            w.u32(r.idx);
            w.u32(r.day as u32);
            w.f64(r.amount);
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
        if n > u32::MAX as usize {
            return None;
        }
        let mut s = Summary::new(config, text_keys);
        s.arena = arena;
        s.keys.reserve(n);
        s.table.reserve(n, |_| 0);
        for i in 0..n {
            let stored = r.u64()?;
            if text_keys {
                let (off, len) = ((stored >> 32) as usize, (stored & 0xFFFF_FFFF) as usize);
                if off.checked_add(len)? > s.arena.len() {
                    return None;
                }
            }
            let key = key_of(&s.arena, text_keys, stored);
            let hash = hash_key(&s.hasher, key);
            if s.table
                .find(hash, |x| key_of(&s.arena, text_keys, x.key) == key)
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
                |x| hash_key(hasher, key_of(arena, text_keys, x.key)),
            );
            s.keys.push(stored);
        }
        let m = r.count_u64(16)?;
        if m > MAX_ROWS {
            return None;
        }
        s.recs.reserve(m);
        for _ in 0..m {
            let idx = r.u32()?;
            let day = r.u32()? as i32;
            let amount = r.f64()?;
            if idx as usize >= n || !(amount.is_finite() && amount >= 0.0) {
                return None;
            }
            s.recs.push(Rec { idx, day, amount });
        }
        r.end()?;
        Some(s)
    }

    /// The per-customer inputs, ordered by key (bigint order, or text bytes), so that the
    /// result does not depend on the order rows came in. Customers whose first purchase
    /// is after `as_of::date` cannot occur (the caller leaves those rows out).
    pub fn finish(self) -> Result<Vec<CustomerSummary>> {
        let Summary {
            config,
            text_keys,
            keys,
            arena,
            recs,
            ..
        } = self;
        let n = keys.len();
        // rank of each customer index in key order
        let mut order: Vec<u32> = (0..n as u32).collect();
        if text_keys {
            order.sort_unstable_by(|&a, &b| {
                let ka = key_of(&arena, true, keys[a as usize]);
                let kb = key_of(&arena, true, keys[b as usize]);
                match (ka, kb) {
                    (Key::Text(x), Key::Text(y)) => x.cmp(y),
                    _ => std::cmp::Ordering::Equal,
                }
            });
        } else {
            order.sort_unstable_by_key(|&i| keys[i as usize] as i64);
        }
        let mut rank = vec![0u32; n];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        // counting sort of the records by rank
        let mut start = vec![0usize; n + 1];
        for r in &recs {
            start[rank[r.idx as usize] as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut sorted: Vec<(i32, f64)> = vec![(0, 0.0); recs.len()];
        let mut next = start.clone();
        for r in &recs {
            let k = rank[r.idx as usize] as usize;
            sorted[next[k]] = (r.day, r.amount);
            next[k] += 1;
        }
        drop(recs);
        let mut out = Vec::with_capacity(n);
        for (k, &i) in order.iter().enumerate() {
            let days = &mut sorted[start[k]..start[k + 1]];
            // by day, then by amount: day totals are added in one fixed order
            days.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let first = days[0].0;
            let mut last = first;
            let mut x = 0u32;
            let mut repeat_total = 0.0;
            let mut day_total = 0.0;
            for &(d, amount) in days.iter() {
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
            let key = match key_of(&arena, text_keys, keys[i as usize]) {
                Key::Int(v) => KeyValue::Int(v),
                Key::Text(t) => KeyValue::Text(t.to_vec()),
            };
            let t = config.as_of_day.checked_sub(first).filter(|t| *t >= 0);
            out.push(CustomerSummary {
                key,
                x,
                t_x: (last - first) as u32,
                t: t.ok_or_else(|| RfmError::invalid("a purchase after as_of"))? as u32,
                repeat_total,
            });
        }
        Ok(out)
    }
}

/// Purchase rows one state holds at most (16 bytes each: 1 GB of serialized state).
const MAX_ROWS: usize = 60_000_000;

fn too_many_rows() -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!("rfm.clv_fit holds at most {MAX_ROWS} purchase rows"),
    )
    .with_hint("Pre-aggregate the rows, for example one row per customer and day.")
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
