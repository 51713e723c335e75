//! Sorted runs: the customers of a partial state in key order, in a compact encoding.
//!
//! A parallel plan serializes the state of every worker, moves it through a
//! worker-to-leader queue and deserializes it in the leader, which combines them and runs
//! the final step alone. So each worker sorts its customers and writes them as a *run*:
//! keys as deltas, counts and amounts as varints (about 9 bytes a customer instead of the
//! table's 24, about 18 instead of 64 with the full metrics and timestamps in whole
//! seconds). The leader keeps the runs as they arrive, without building a table, and its
//! own state (handed over whole, not serialized) with its table; the final step reads the
//! runs and the tables (each table in run order, see `state::TableReader`) in one k-way
//! merge that adds up a customer's entries as it meets them and hands the customers over
//! in key order, which is also the tie-break order of the value.
//!
//! Order: a bigint key by its value; a text key by its hash (the state's fixed hasher),
//! then its bytes. Every run is checked while it is read: keys strictly increasing, every
//! field in range, exactly the count of customers it announces, no byte left over. A run
//! that is not is an error (22P03), never a panic.

use super::options::MICROS;
use super::state::{merge_entry, merge_extra, Entry, Extra};
use super::Key;
use crate::error::{ErrorKind, Result, RfmError};
use std::hash::BuildHasher;

/// Maps a bigint key to a `u64` whose order is the key's (the sign bit flipped).
#[inline]
pub(super) fn int_order(key: u64) -> u64 {
    key ^ (1 << 63)
}

/// The first part of a customer's place in a run: see [`int_order`]; for a text key its
/// hash.
#[inline]
pub(super) fn order_prefix(hasher: &foldhash::fast::FixedState, key: Key) -> u64 {
    match key {
        Key::Int(k) => int_order(k as u64),
        Key::Text(t) => hasher.hash_one(t),
    }
}

/// What the entries of a run hold and how: text or bigint keys, exact (`numeric`) or
/// float amounts, with or without the full metrics; `base` is the instant the first
/// purchases are written relative to (short varints for recent instants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Format {
    pub text: bool,
    pub exact: bool,
    pub wide: bool,
    pub base: i64,
}

/// The fewest bytes an entry takes (key, amount, latest purchase and count: a byte each),
/// so that a forged count cannot be larger than the bytes could hold.
pub(super) const MIN_ENTRY_BYTES: usize = 4;

/// A run as a state keeps it.
#[derive(Debug, Clone)]
pub(super) struct Run {
    pub bytes: Vec<u8>,
    /// Customers in it.
    pub n: usize,
    /// The scale of its exact amounts (0 for float ones): a state that merges runs of
    /// different scales rescales them while they are read.
    pub scale: u32,
    /// The earliest first purchase of its customers with the full metrics (`i64::MAX`
    /// when none has one): the final step needs the local days from there on before it
    /// reads the run.
    pub oldest: i64,
}

fn corrupt() -> RfmError {
    RfmError::new(
        ErrorKind::InvalidBinary,
        "invalid serialized rfm.analyze state",
    )
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes customers, in run order, to the end of a buffer.
pub(super) struct Writer {
    buf: Vec<u8>,
    f: Format,
    prev: u64,
    n: usize,
    oldest: i64,
}

impl Writer {
    pub fn new(buf: Vec<u8>, f: Format) -> Writer {
        Writer {
            buf,
            f,
            prev: 0,
            n: 0,
            oldest: i64::MAX,
        }
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    #[inline]
    fn money(&mut self, m: i64) {
        if self.f.exact {
            self.varint(zigzag(m));
        } else {
            self.buf.extend_from_slice(&m.to_le_bytes());
        }
    }

    /// An instant relative to `from`: whole seconds (zigzag), then the microseconds left
    /// (one byte for the whole seconds that timestamps usually are).
    #[inline]
    fn instant(&mut self, t: i64, from: i64) {
        let d = t.wrapping_sub(from);
        self.varint(zigzag(d.div_euclid(MICROS)));
        self.varint(d.rem_euclid(MICROS) as u64);
    }

    /// Appends one customer; `key` is its key (a bigint's bits, or its text).
    ///
    /// With the full metrics, what follows from other fields is left out: the latest
    /// purchase in the window (`last`) of a customer with one is the latest purchase
    /// (`latest`) in seconds; the purchase amounts are written as what the returns took
    /// off the window's amount (exact amounts: usually nothing); the first and the latest
    /// purchase only for a customer that has one.
    #[inline]
    pub fn push(&mut self, key: Key, e: &Entry, x: Option<&Extra>) {
        match key {
            Key::Int(k) => {
                let o = int_order(k as u64);
                self.varint(o.wrapping_sub(self.prev));
                self.prev = o;
            }
            Key::Text(t) => {
                self.varint(t.len() as u64);
                self.buf.extend_from_slice(t);
            }
        }
        self.money(e.money);
        self.varint(e.freq.into());
        if !self.f.wide {
            self.varint(e.last.into());
            self.n += 1;
            return;
        }
        if e.freq == 0 {
            self.varint(e.last.into());
        }
        let x = x.copied().unwrap_or(Extra::EMPTY);
        if self.f.exact {
            self.varint(zigzag(x.purchases.wrapping_sub(e.money)));
        } else {
            self.money(x.purchases);
        }
        self.money(x.before);
        self.varint(x.orders_before.into());
        if e.freq as u64 + x.orders_before as u64 > 0 {
            self.instant(x.first, self.f.base);
            self.instant(x.latest, x.first);
            self.oldest = self.oldest.min(x.first);
        }
        self.varint(x.returns.into());
        self.n += 1;
    }

    /// The buffer with the customers appended, their count and their earliest purchase.
    pub fn finish(self) -> (Vec<u8>, usize, i64) {
        (self.buf, self.n, self.oldest)
    }
}

/// Reads the customers of one run, checking each.
pub(super) struct RunReader<'a> {
    buf: &'a [u8],
    pos: usize,
    f: Format,
    left: usize,
    /// The run's amounts times this are at the merged state's scale.
    factor: i64,
    oldest: i64,
    hasher: &'a foldhash::fast::FixedState,
    prev: Option<(u64, &'a [u8])>,
}

/// One customer read from a run: its order prefix, its text key (empty for a bigint key),
/// and its entries (the key field holds the bigint; the metrics are empty without them).
#[derive(Clone, Copy)]
pub(super) struct Head<'a> {
    pub prefix: u64,
    pub text: &'a [u8],
    pub e: Entry,
    pub x: Extra,
}

impl Head<'_> {
    /// Compares two customers in run order (text keys compared only on equal hashes).
    #[inline]
    fn cmp_order(&self, o: &Head) -> std::cmp::Ordering {
        match self.prefix.cmp(&o.prefix) {
            std::cmp::Ordering::Equal if !(self.text.is_empty() && o.text.is_empty()) => {
                self.text.cmp(o.text)
            }
            ord => ord,
        }
    }
}

impl<'a> RunReader<'a> {
    /// A reader of `run`, whose amounts are rescaled to `scale`.
    pub fn new(
        run: &'a Run,
        f: Format,
        scale: u32,
        hasher: &'a foldhash::fast::FixedState,
    ) -> Result<RunReader<'a>> {
        let factor = if f.exact {
            let up = scale.checked_sub(run.scale).ok_or_else(corrupt)?;
            crate::numeric::pow10(up)
                .and_then(|p| i64::try_from(p).ok())
                .ok_or_else(crate::numeric::too_large)?
        } else {
            1
        };
        Ok(RunReader {
            buf: &run.bytes,
            pos: 0,
            f,
            left: run.n,
            factor,
            oldest: run.oldest,
            hasher,
            prev: None,
        })
    }

    /// A LEB128 varint (see [`crate::codec::Writer::varint`]); one byte on the fast path.
    #[inline(always)]
    fn varint(&mut self) -> Option<u64> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        if b < 0x80 {
            return Some(b as u64);
        }
        let mut v = (b & 0x7F) as u64;
        let mut shift = 7;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return None; // more than 64 bits
            }
            v |= ((b & 0x7F) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    #[inline(always)]
    fn zigzag(&mut self) -> Option<i64> {
        let v = self.varint()?;
        Some((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    #[inline(always)]
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }

    #[inline(always)]
    fn money(&mut self) -> Option<i64> {
        if self.f.exact {
            let m = self.zigzag()?;
            if self.factor == 1 {
                Some(m)
            } else {
                m.checked_mul(self.factor)
            }
        } else {
            let b = self.buf.get(self.pos..self.pos + 8)?;
            self.pos += 8;
            Some(i64::from_le_bytes(b.try_into().ok()?))
        }
    }

    /// An instant written by [`Writer::instant`] relative to `from`.
    #[inline(always)]
    fn instant(&mut self, from: i64) -> Option<i64> {
        let secs = self.zigzag()?;
        let micros = self.varint()?;
        if micros >= MICROS as u64 {
            return None;
        }
        secs.checked_mul(MICROS)?
            .checked_add(micros as i64)?
            .checked_add(from)
    }

    #[inline]
    fn read(&mut self) -> Option<Head<'a>> {
        let (prefix, text, key) = if self.f.text {
            let len = usize::try_from(self.varint()?).ok()?;
            let t = self.buf.get(self.pos..self.pos.checked_add(len)?)?;
            self.pos += len;
            let p = self.hasher.hash_one(t);
            if let Some((pp, pt)) = self.prev {
                if pp > p || (pp == p && pt >= t) {
                    return None; // out of order, or the same key twice
                }
            }
            (p, t, 0)
        } else {
            let delta = self.varint()?;
            let o = match self.prev {
                None => delta,
                Some((p, _)) if delta > 0 => p.checked_add(delta)?,
                Some(_) => return None, // the same key twice
            };
            (o, &[][..], int_order(o))
        };
        self.prev = Some((prefix, text));
        let money = self.money()?;
        let freq = self.u32()?;
        if !self.f.wide {
            let e = Entry {
                key,
                money,
                last: self.u32()?,
                freq,
            };
            return Some(Head {
                prefix,
                text,
                e,
                x: Extra::EMPTY,
            });
        }
        let last = if freq == 0 { Some(self.u32()?) } else { None };
        let purchases = if self.f.exact {
            money.checked_add(self.zigzag()?.checked_mul(self.factor)?)?
        } else {
            self.money()?
        };
        let before = self.money()?;
        let orders_before = self.u32()?;
        let (first, latest) = if freq as u64 + orders_before as u64 > 0 {
            let first = self.instant(self.f.base)?;
            let latest = self.instant(first)?;
            if first < self.oldest || latest < first {
                return None; // before the run's earliest purchase, or the latest before the first
            }
            (first, latest)
        } else {
            (Extra::EMPTY.first, Extra::EMPTY.latest)
        };
        let last = match last {
            Some(l) => l,
            // the stamp of the latest purchase, which is in the window (see state::Stamp)
            None => u32::try_from(latest.checked_sub(self.f.base)? / MICROS + 1)
                .ok()
                .filter(|&s| s > 0)?,
        };
        let e = Entry {
            key,
            money,
            last,
            freq,
        };
        let x = Extra {
            purchases,
            before,
            first,
            latest,
            returns: self.u32()?,
            orders_before,
        };
        Some(Head { prefix, text, e, x })
    }

    /// The next customer, `None` after the last; an error for a run that is not one.
    #[inline]
    pub fn next_head(&mut self) -> Result<Option<Head<'a>>> {
        if self.left == 0 {
            return match self.pos == self.buf.len() {
                true => Ok(None),
                false => Err(corrupt()),
            };
        }
        self.left -= 1;
        self.read().map(Some).ok_or_else(corrupt)
    }
}

/// Where a merge reads customers from: a run, or a state's table read in run order.
pub(super) enum Source<'a> {
    Run(RunReader<'a>),
    Table(super::state::TableReader<'a>),
}

impl<'a> Source<'a> {
    #[inline]
    fn next_head(&mut self) -> Result<Option<Head<'a>>> {
        match self {
            Source::Run(r) => r.next_head(),
            Source::Table(t) => Ok(t.next_head()),
        }
    }
}

/// The customers of several runs (or tables) in run order, each once: the entries of a
/// customer that stands in more than one are added up.
pub(super) struct Merge<'a> {
    readers: Vec<Source<'a>>,
    /// The next customer of each run (meaningful where `live`).
    heads: Vec<Head<'a>>,
    live: Vec<bool>,
    exact: bool,
}

impl<'a> Merge<'a> {
    pub fn new(mut readers: Vec<Source<'a>>, exact: bool) -> Result<Merge<'a>> {
        let empty = Head {
            prefix: 0,
            text: &[],
            e: Entry {
                key: 0,
                money: 0,
                last: 0,
                freq: 0,
            },
            x: Extra::EMPTY,
        };
        let mut heads = Vec::with_capacity(readers.len());
        let mut live = Vec::with_capacity(readers.len());
        for r in readers.iter_mut() {
            let h = r.next_head()?;
            live.push(h.is_some());
            heads.push(h.unwrap_or(empty));
        }
        Ok(Merge {
            readers,
            heads,
            live,
            exact,
        })
    }

    #[inline]
    fn advance(&mut self, i: usize) -> Result<()> {
        match self.readers[i].next_head()? {
            Some(h) => self.heads[i] = h,
            None => self.live[i] = false,
        }
        Ok(())
    }

    /// The next customer in run order, its entries of every run added up.
    #[inline]
    pub fn next_customer(&mut self) -> Result<Option<Head<'a>>> {
        let k = self.heads.len();
        let mut b = usize::MAX;
        for i in 0..k {
            if self.live[i] && (b == usize::MAX || self.heads[i].cmp_order(&self.heads[b]).is_lt())
            {
                b = i;
            }
        }
        if b == usize::MAX {
            return Ok(None);
        }
        let mut out = self.heads[b];
        self.advance(b)?;
        for i in 0..k {
            if i != b && self.live[i] && self.heads[i].cmp_order(&out).is_eq() {
                let h = self.heads[i];
                merge_entry(&mut out.e, &h.e, self.exact)?;
                merge_extra(&mut out.x, &h.x, self.exact)?;
                self.advance(i)?;
            }
        }
        Ok(Some(out))
    }
}
