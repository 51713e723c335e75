//! The aggregate state: a compact per-customer hash table filled row by row (in batches),
//! mergeable for parallel plans, and its serialized encoding.

use super::index::Index;
use super::options::{Config, MICROS};
use super::run::{self, Run};
use super::Key;
use crate::codec::{Reader, Writer};
use crate::error::{ErrorKind, Result, RfmError};
use crate::numeric::{self, Decimal};
use hashbrown::HashTable;
use std::borrow::Cow;
use std::hash::BuildHasher;

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
pub(super) struct Entry {
    /// The bigint key, or (offset << 32 | length) of a text key in the arena.
    pub(super) key: u64,
    /// Total of amounts in the window: units at the state's scale, or f64 bits.
    pub(super) money: i64,
    /// With purchases (`freq > 0`): the latest one as a [`Stamp`]. Without: how many rows
    /// (returns) the customer has in the window, which `transactions` leaves out.
    pub(super) last: u32,
    /// Purchases in the window.
    pub(super) freq: u32,
}

/// What the full customer metrics (SPEC §9) need beyond an [`Entry`]: 40 bytes, kept only
/// when a scheme or the options ask for them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Extra {
    /// Purchase amounts in the window (units at the state's scale, or f64 bits).
    pub(super) purchases: i64,
    /// Amounts of the rows before the window (units or f64 bits).
    pub(super) before: i64,
    /// The first and the latest purchase at or before `as_of` (PostgreSQL microseconds);
    /// meaningful when the customer has a purchase (`freq + orders_before > 0`).
    pub(super) first: i64,
    pub(super) latest: i64,
    /// Return rows in the window.
    pub(super) returns: u32,
    /// Purchases before the window.
    pub(super) orders_before: u32,
}

impl Extra {
    /// The metrics of a customer without rows: what a plain entry has of them.
    pub(super) const EMPTY: Extra = Extra {
        purchases: 0,
        before: 0,
        first: i64::MAX,
        latest: i64::MIN,
        returns: 0,
        orders_before: 0,
    };
}

/// One customer with the full metrics: 64 bytes, one cache line, in a [`WideTable`].
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub(super) struct Wide {
    pub(super) base: Entry,
    pub(super) x: Extra,
}

/// A table slot: an [`Entry`], possibly with [`Extra`].
pub(super) trait Slot: Copy {
    fn fresh(key: u64, money: i64) -> Self;
    fn base(&self) -> &Entry;
    fn extra(&self) -> Option<&Extra>;
}

impl Slot for Entry {
    #[inline]
    fn fresh(key: u64, money: i64) -> Self {
        Entry {
            key,
            money,
            last: 0,
            freq: 0,
        }
    }
    #[inline]
    fn base(&self) -> &Entry {
        self
    }
    #[inline]
    fn extra(&self) -> Option<&Extra> {
        None
    }
}

impl Slot for Wide {
    #[inline]
    fn fresh(key: u64, money: i64) -> Self {
        Wide {
            base: Entry::fresh(key, money),
            x: Extra {
                purchases: money,
                before: money,
                first: i64::MAX,
                latest: i64::MIN,
                returns: 0,
                orders_before: 0,
            },
        }
    }
    #[inline]
    fn base(&self) -> &Entry {
        &self.base
    }
    #[inline]
    fn extra(&self) -> Option<&Extra> {
        Some(&self.x)
    }
}

/// Wide entries per chunk of a [`WideTable`] (1 MiB).
const CHUNK: usize = 1 << 14;

/// The customers of a state with the full metrics. In an open-addressing table of 64-byte
/// entries, the old and the new table exist together while it grows: up to three times the
/// entries' bytes at that moment. Here the entries stay where they were put, in chunks of
/// [`CHUNK`] that never move (only the first one, while it is the only one, grows by
/// doubling), and an [`Index`] of 12.8-byte slots finds them. Only the index is copied when
/// it grows: with its old and new slots together, a large state peaks at about 110 bytes a
/// customer at most, against up to 220 for the entries in the table itself. The index is
/// one that can be asked for a key's slot before it is read, so that the rows of a batch
/// wait for their slots together.
#[derive(Default)]
pub(super) struct WideTable {
    index: Index,
    chunks: Vec<Vec<Wide>>,
    len: usize,
}

fn chunk_bytes(chunks: &Vec<Vec<Wide>>) -> usize {
    chunks.capacity() * std::mem::size_of::<Vec<Wide>>()
        + chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<Wide>())
            .sum::<usize>()
}

/// Appends entry number `idx` to the chunks. `others` is the memory of the rest of the
/// state: while the first chunk grows, the old and the new buffer exist together.
fn push_chunk(chunks: &mut Vec<Vec<Wide>>, idx: usize, w: Wide, others: usize, peak: &mut usize) {
    let c = idx / CHUNK;
    if c == chunks.len() {
        chunks.push(Vec::with_capacity(if c == 0 { 16 } else { CHUNK }));
    }
    if chunks[c].len() == chunks[c].capacity() {
        let before = others + chunk_bytes(chunks);
        let chunk = &mut chunks[c];
        chunk.reserve_exact(chunk.capacity().min(CHUNK - chunk.len()));
        *peak = (*peak).max(before + chunk.capacity() * std::mem::size_of::<Wide>());
    }
    chunks[c].push(w);
}

impl WideTable {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn allocation_size(&self) -> usize {
        self.index.allocation_size() + chunk_bytes(&self.chunks)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Wide> {
        self.chunks.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Wide> {
        self.chunks.iter_mut().flatten()
    }

    fn entry(&self, i: usize) -> &Wide {
        &self.chunks[i / CHUNK][i % CHUNK]
    }

    fn entry_mut(&mut self, i: usize) -> &mut Wide {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    /// Asks the CPU to fetch entry `i` into its cache, without waiting for it.
    #[inline]
    fn prefetch(&self, i: usize) {
        super::prefetch(&self.chunks[i / CHUNK][i % CHUNK]);
    }

    /// The entries by value: the index is freed first, then each chunk once it is read.
    /// The entries by value, each chunk freed once read. The chunks are read newest first:
    /// the allocator can then give a freed chunk back to the system when it is the last
    /// of its heap (measured: the wide_merge example's serial finalize peaked at 138 MB
    /// with the chunks read oldest first and at 121 MB newest first, as the chunks freed
    /// first stayed in the process while the customers were copied out). The final step
    /// sorts the customers, so this order is not seen.
    pub(super) fn into_entries(self) -> impl Iterator<Item = Wide> {
        let WideTable { index, chunks, .. } = self;
        drop(index);
        chunks.into_iter().rev().flatten()
    }
}

/// The customers of a state's table in run order (see [`run`]), as a run reader gives them:
/// what the final merge and a serialization read, without writing the table as a run and
/// reading it back.
pub(super) struct TableReader<'a> {
    src: TableSrc<'a>,
    /// (order prefix, place) of every customer in run order; empty for [`TableSrc::Sorted`].
    order: Cow<'a, [(u64, u32)]>,
    pos: usize,
    text: bool,
    arena: &'a [u8],
}

enum TableSrc<'a> {
    /// Plain entries with bigint keys, sorted themselves.
    Sorted(Cow<'a, [Entry]>),
    /// Plain entries with text keys, read in the order of `order`.
    Narrow(Cow<'a, [Entry]>),
    /// Wide entries, read where they are in the order of `order`.
    Wide(&'a WideTable),
}

/// What a [`TableReader`] works out before it reads: kept by a state whose reading is
/// prepared ahead ([`State::prepare_reading`]).
struct Prepared {
    order: Vec<(u64, u32)>,
    /// Plain entries (copied out of the table): sorted, or in the order of `order`.
    entries: Vec<Entry>,
}

impl<'a> TableReader<'a> {
    pub(super) fn new(state: &'a State) -> TableReader<'a> {
        let text = state.text_keys;
        let arena = &state.arena[..];
        if let Some(p) = &state.prepared {
            let src = match &state.table {
                Tables::Narrow(_) if text => TableSrc::Narrow(Cow::Borrowed(&p.entries)),
                Tables::Narrow(_) => TableSrc::Sorted(Cow::Borrowed(&p.entries)),
                Tables::Wide(t) => TableSrc::Wide(t),
            };
            return TableReader {
                src,
                order: Cow::Borrowed(&p.order),
                pos: 0,
                text,
                arena,
            };
        }
        let (order, entries) = Self::work_out(state);
        let src = match &state.table {
            Tables::Narrow(_) if text => TableSrc::Narrow(Cow::Owned(entries)),
            Tables::Narrow(_) => TableSrc::Sorted(Cow::Owned(entries)),
            Tables::Wide(t) => TableSrc::Wide(t),
        };
        TableReader {
            src,
            order: Cow::Owned(order),
            pos: 0,
            text,
            arena,
        }
    }

    /// The run order of a state's table: (prefix, place) pairs, and for a plain table its
    /// entries copied out (sorted themselves for bigint keys, with no pairs).
    fn work_out(state: &State) -> (Vec<(u64, u32)>, Vec<Entry>) {
        let text = state.text_keys;
        let arena = &state.arena[..];
        let hasher = &state.hasher;
        // text keys by hash, then bytes (equal hashes are rare)
        let text_order = |a: &(u64, u64), b: &(u64, u64)| {
            a.0.cmp(&b.0).then_with(|| {
                let (Key::Text(x), Key::Text(y)) =
                    (stored_key(arena, text, a.1), stored_key(arena, text, b.1))
                else {
                    return std::cmp::Ordering::Equal;
                };
                x.cmp(y)
            })
        };
        match &state.table {
            Tables::Narrow(t) => {
                let mut v: Vec<Entry> = t.iter().copied().collect();
                if text {
                    let mut order: Vec<(u64, u32)> = v
                        .iter()
                        .enumerate()
                        .map(|(i, e)| (run::order_prefix(hasher, key_of(arena, text, e)), i as u32))
                        .collect();
                    order.sort_unstable_by(|a, b| {
                        text_order(&(a.0, v[a.1 as usize].key), &(b.0, v[b.1 as usize].key))
                    });
                    (order, v)
                } else {
                    radsort::sort_by_key(&mut v, |e| run::int_order(e.key));
                    (Vec::new(), v)
                }
            }
            Tables::Wide(t) => {
                let mut order: Vec<(u64, u32)> = t
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let p = run::order_prefix(hasher, key_of(arena, text, &e.base));
                        (p, i as u32)
                    })
                    .collect();
                if text {
                    let key = |i: u32| t.entry(i as usize).base.key;
                    order.sort_unstable_by(|a, b| text_order(&(a.0, key(a.1)), &(b.0, key(b.1))));
                } else {
                    radsort::sort_by_key(&mut order, |a| a.0);
                }
                (order, Vec::new())
            }
        }
    }

    /// The next customer, as [`run::RunReader::next_head`] reads it from the run of this
    /// table; `None` after the last.
    #[inline]
    pub(super) fn next_head(&mut self) -> Option<run::Head<'a>> {
        const AHEAD: usize = 16;
        let (prefix, e, x) = match &self.src {
            TableSrc::Sorted(v) => {
                let e = *v.get(self.pos)?;
                (run::int_order(e.key), e, Extra::EMPTY)
            }
            TableSrc::Narrow(v) => {
                let (p, i) = *self.order.get(self.pos)?;
                (p, v[i as usize], Extra::EMPTY)
            }
            TableSrc::Wide(t) => {
                let (p, i) = *self.order.get(self.pos)?;
                if let Some(&(_, next)) = self.order.get(self.pos + AHEAD) {
                    t.prefetch(next as usize);
                }
                let w = t.entry(i as usize);
                let mut x = w.x;
                if w.base.freq as u64 + x.orders_before as u64 == 0 {
                    // no purchase: a run has no first and latest purchase for it
                    x.first = Extra::EMPTY.first;
                    x.latest = Extra::EMPTY.latest;
                }
                (p, w.base, x)
            }
        };
        self.pos += 1;
        let mut e = e;
        let text = if self.text {
            let (off, len) = ((e.key >> 32) as usize, (e.key & 0xFFFF_FFFF) as usize);
            e.key = 0; // as a run gives it: the key is the text
            &self.arena[off..off + len]
        } else {
            &[][..]
        };
        Some(run::Head { prefix, text, e, x })
    }
}

/// The customers: plain entries, or wide ones with the full metrics.
pub(super) enum Tables {
    Narrow(HashTable<Entry>),
    Wide(WideTable),
}

impl Tables {
    fn len(&self) -> usize {
        match self {
            Tables::Narrow(t) => t.len(),
            Tables::Wide(t) => t.len(),
        }
    }

    fn allocation_size(&self) -> usize {
        match self {
            Tables::Narrow(t) => t.allocation_size(),
            Tables::Wide(t) => t.allocation_size(),
        }
    }
}

/// An instant in the window as whole seconds after the state's base (the window start
/// rounded down to a second), plus one. Local days start at whole seconds, so the second
/// of a purchase tells its day exactly; 32 bits cover 136 years.
pub(super) type Stamp = u32;

/// The whole second (in microseconds) that a stamp counted from `base` stands for.
pub(super) fn instant(base: i64, stamp: Stamp) -> i64 {
    base + (stamp as i64 - 1) * MICROS
}

/// The aggregate state.
pub struct State {
    pub config: Config,
    pub(super) text_keys: bool,
    pub(super) money: MoneyKind,
    pub(super) table: Tables,
    pub(super) arena: Vec<u8>,
    hasher: foldhash::fast::FixedState,
    /// The window start rounded down to a whole second (microseconds): where stamps count from.
    pub(super) base: i64,
    /// Rows in the window, of every customer.
    pub(super) window_rows: u64,
    /// Rows in the window whose customer key is NULL, and their amounts (units at the
    /// state's scale, or f64 bits): accounted for, not analysed (SPEC §2).
    pub(super) unkeyed_rows: u64,
    pub(super) unkeyed_money: i64,
    /// Rows after `as_of` (key or not): not part of the analysis, counted.
    pub(super) rows_after: u64,
    /// The newest `ordered_at` of any row (`i64::MIN` before the first).
    pub(super) newest: i64,
    /// The most memory the state has held: while the table grows, the old and the new
    /// table exist together.
    peak_bytes: usize,
    /// Rows not yet in the table. They are added [`BATCH`] at a time, so that the cache
    /// misses of consecutive rows' lookups overlap instead of each waiting for the last.
    pending: Vec<Row>,
    /// The text keys of the pending rows.
    pending_text: Vec<u8>,
    /// Customers merged from other states, as sorted runs (see [`State::merge`]).
    runs: Vec<Run>,
    /// Other states merged whole, with their tables (see [`State::merge`]): read in run
    /// order by the final merge, never written as runs. Their runs and kept states are
    /// this state's.
    kept: Vec<State>,
    /// The table's run order, worked out ahead by [`State::prepare_reading`] (cleared
    /// whenever the table changes).
    prepared: Option<Prepared>,
    /// The most customers the table may hold; a new one beyond it is an error (54000).
    pub max_customers: usize,
}

/// How many rows are buffered before they are added to the table.
const BATCH: usize = 64;

/// A row waiting to be added: its key (bigint, or offset << 32 | length in the pending
/// text), its amount (units at the state's scale, or f64 bits), where it falls and (for
/// the full metrics) its time.
#[derive(Debug, Clone, Copy)]
struct Row {
    key: u64,
    money: i64,
    ts: i64,
    kind: RowKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    /// At or before the window start: the customer is seen (counted as excluded unless it
    /// buys in the window); with the full metrics, a purchase (true) or a return counts
    /// toward the lifetime figures.
    Outside(bool),
    Purchase(Stamp),
    Return,
}

fn overflow() -> RfmError {
    numeric::too_large()
}

/// Adds two amounts of the state's kind.
#[inline]
pub(super) fn add_money(exact: bool, a: i64, b: i64) -> Result<i64> {
    if exact {
        a.checked_add(b).ok_or_else(overflow)
    } else {
        Ok((f64::from_bits(a as u64) + f64::from_bits(b as u64)).to_bits() as i64)
    }
}

/// Where text keys and the hash come from, borrowed apart from the table.
struct Keys<'a> {
    arena: &'a mut Vec<u8>,
    hasher: &'a foldhash::fast::FixedState,
    text: bool,
}

fn key_of<'a>(arena: &'a [u8], text: bool, e: &Entry) -> Key<'a> {
    stored_key(arena, text, e.key)
}

/// The key stored as `key` (see [`Entry::key`]).
fn stored_key(arena: &[u8], text: bool, key: u64) -> Key<'_> {
    if text {
        let off = (key >> 32) as usize;
        let len = (key & 0xFFFF_FFFF) as usize;
        Key::Text(&arena[off..off + len])
    } else {
        Key::Int(key as i64)
    }
}

/// Stores `key` for the table: a bigint as it is, a text key appended to the arena.
fn store_key(arena: &mut Vec<u8>, key: Key, customers: usize) -> Result<u64> {
    Ok(match key {
        Key::Int(k) => k as u64,
        Key::Text(t) => {
            let off = arena.len();
            if off + t.len() > u32::MAX as usize {
                return Err(too_many_customers(customers));
            }
            arena.extend_from_slice(t);
            ((off as u64) << 32) | t.len() as u64
        }
    })
}

fn hash_key(hasher: &foldhash::fast::FixedState, key: Key) -> u64 {
    match key {
        Key::Int(k) => hasher.hash_one(k),
        Key::Text(t) => hasher.hash_one(t),
    }
}

/// The slot of `key` in `table`, created empty when new. `peak` records the memory held
/// while the table grows (the old and the new table together).
fn slot<'t, T: Slot>(
    table: &'t mut HashTable<T>,
    keys: Keys<'_>,
    max_customers: usize,
    empty_money: i64,
    peak: &mut usize,
    key: Key,
) -> Result<&'t mut T> {
    let Keys {
        arena,
        hasher,
        text,
    } = keys;
    if table.len() == table.capacity() {
        // the table is full and grows now (hashbrown's entry() would grow it too)
        let before = table.allocation_size() + arena.capacity();
        let arena_ref: &Vec<u8> = arena;
        table.reserve(1, |e| hash_key(hasher, key_of(arena_ref, text, e.base())));
        *peak = (*peak).max(before + table.allocation_size() + arena.capacity());
    }
    let hash = hash_key(hasher, key);
    let at_limit = table.len() >= max_customers;
    // one probe: the closures read the arena only while the slot is being found
    let found = {
        let arena_ref: &Vec<u8> = arena;
        table.entry(
            hash,
            |e| key_of(arena_ref, text, e.base()) == key,
            |e| hash_key(hasher, key_of(arena_ref, text, e.base())),
        )
    };
    match found {
        hashbrown::hash_table::Entry::Occupied(o) => Ok(o.into_mut()),
        hashbrown::hash_table::Entry::Vacant(v) => {
            if at_limit {
                return Err(customer_limit(max_customers));
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
            Ok(v.insert(T::fresh(stored, empty_money)).into_mut())
        }
    }
}

/// [`slot`] for a [`WideTable`]: the number of the entry of `key` (whose hash is `hash`),
/// created empty when new.
fn wide_find(
    table: &mut WideTable,
    keys: Keys<'_>,
    max_customers: usize,
    empty_money: i64,
    peak: &mut usize,
    key: Key,
    hash: u64,
) -> Result<usize> {
    let Keys {
        arena,
        hasher,
        text,
    } = keys;
    let WideTable {
        index, chunks, len, ..
    } = table;
    // A bigint key is its own index key. A text key's index key is its 64-bit hash, so that
    // a lookup reads the arena only for a slot whose whole hash matches (through its entry's
    // stored key), not for every slot of the bucket, and growing needs no rehashing.
    let found = if text {
        index.find(hash, |k, i| {
            k == hash
                && stored_key(
                    arena,
                    text,
                    chunks[i as usize / CHUNK][i as usize % CHUNK].base.key,
                ) == key
        })
    } else {
        index.find(hash, |k, _| stored_key(arena, text, k) == key)
    };
    if let Some(i) = found {
        return Ok(i as usize);
    }
    let customers = index.len();
    if customers >= max_customers {
        return Err(customer_limit(max_customers));
    }
    if index.is_full() {
        // the index grows now; the entries stay where they are
        let before = index.allocation_size() + chunk_bytes(chunks) + arena.capacity();
        if text {
            index.grow(|k| k);
        } else {
            index.grow(|k| hash_key(hasher, Key::Int(k as i64)));
        }
        *peak = (*peak).max(before + index.allocation_size());
    }
    let idx = u32::try_from(customers).map_err(|_| too_many_customers(customers))?;
    let stored = store_key(arena, key, customers)?;
    index.insert(hash, if text { hash } else { stored }, idx);
    let others = index.allocation_size() + arena.capacity();
    push_chunk(
        chunks,
        customers,
        Wide::fresh(stored, empty_money),
        others,
        peak,
    );
    *len += 1;
    Ok(customers)
}

/// Counts one row of `e` in the window: a purchase at `stamp`, or a return.
#[inline]
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

/// Adds one row to a plain entry.
#[inline]
fn add_narrow(e: &mut Entry, exact: bool, r: &Row) -> Result<()> {
    let purchase = match r.kind {
        RowKind::Outside(_) => return Ok(()),
        RowKind::Purchase(s) => Some(s),
        RowKind::Return => None,
    };
    e.money = add_money(exact, e.money, r.money)?;
    count_row(e, purchase)
}

/// Adds one row to a wide entry.
#[inline]
fn add_wide(w: &mut Wide, exact: bool, r: &Row) -> Result<()> {
    let x = &mut w.x;
    match r.kind {
        RowKind::Outside(purchase) => {
            x.before = add_money(exact, x.before, r.money)?;
            if purchase {
                x.orders_before = x.orders_before.checked_add(1).ok_or_else(too_many_rows)?;
            } else {
                return Ok(());
            }
        }
        RowKind::Purchase(_) => x.purchases = add_money(exact, x.purchases, r.money)?,
        RowKind::Return => {
            x.returns = x.returns.checked_add(1).ok_or_else(too_many_rows)?;
        }
    }
    if r.kind != RowKind::Return {
        x.first = x.first.min(r.ts);
        x.latest = x.latest.max(r.ts);
    }
    add_narrow(&mut w.base, exact, r)
}

/// Merges the metrics of one customer of another state.
pub(super) fn merge_extra(x: &mut Extra, o: &Extra, exact: bool) -> Result<()> {
    x.purchases = add_money(exact, x.purchases, o.purchases)?;
    x.before = add_money(exact, x.before, o.before)?;
    x.first = x.first.min(o.first);
    x.latest = x.latest.max(o.latest);
    x.returns = x.returns.checked_add(o.returns).ok_or_else(too_many_rows)?;
    x.orders_before = x
        .orders_before
        .checked_add(o.orders_before)
        .ok_or_else(too_many_rows)?;
    Ok(())
}

/// Merges the window figures of one customer of another state.
pub(super) fn merge_entry(e: &mut Entry, o: &Entry, exact: bool) -> Result<()> {
    e.money = add_money(exact, e.money, o.money)?;
    e.last = match (e.freq, o.freq) {
        (0, 0) => e.last.checked_add(o.last).ok_or_else(too_many_rows)?, // return rows
        (0, _) => o.last,
        (_, 0) => e.last,
        _ => e.last.max(o.last),
    };
    e.freq = e.freq.checked_add(o.freq).ok_or_else(too_many_rows)?;
    Ok(())
}

impl State {
    pub fn new(config: Config, text_keys: bool, exact: bool) -> State {
        let table = if config.wide() {
            Tables::Wide(WideTable::default())
        } else {
            Tables::Narrow(HashTable::new())
        };
        State {
            base: config.window_start.div_euclid(MICROS) * MICROS,
            window_rows: 0,
            unkeyed_rows: 0,
            unkeyed_money: if exact { 0 } else { 0f64.to_bits() as i64 },
            rows_after: 0,
            newest: i64::MIN,
            config,
            text_keys,
            money: if exact {
                MoneyKind::Exact { scale: 0 }
            } else {
                MoneyKind::Float
            },
            table,
            arena: Vec::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x0005_eed0_f2f3),
            peak_bytes: 0,
            pending: Vec::new(),
            pending_text: Vec::new(),
            runs: Vec::new(),
            kept: Vec::new(),
            prepared: None,
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

    /// Whether the state keeps the full customer metrics.
    pub fn wide(&self) -> bool {
        matches!(self.table, Tables::Wide(_))
    }

    /// Customers seen so far (active or not), once [`State::flush`] has run. With runs
    /// merged from other states, an upper bound: a customer in several is counted in each.
    pub fn len(&self) -> usize {
        self.table.len()
            + self.runs.iter().map(|r| r.n).sum::<usize>()
            + self.kept.iter().map(State::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.pending.is_empty()
    }

    /// Bytes the state holds now (hash table, text key arena, runs, states kept whole and
    /// a prepared reading).
    pub fn memory_bytes(&self) -> usize {
        self.table.allocation_size()
            + self.arena.capacity()
            + self.runs.iter().map(|r| r.bytes.capacity()).sum::<usize>()
            + self.kept.iter().map(State::memory_bytes).sum::<usize>()
            + self.prepared.as_ref().map_or(0, |p| {
                p.order.capacity() * std::mem::size_of::<(u64, u32)>()
                    + p.entries.capacity() * std::mem::size_of::<Entry>()
            })
    }

    /// The most bytes the state has held at once, table growth included.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.max(self.memory_bytes())
    }

    /// The earliest purchase at or before `as_of` (PostgreSQL microseconds), when the state
    /// keeps the full metrics: the local days from there on are what the final step needs.
    pub fn oldest_purchase(&self) -> Option<i64> {
        match &self.table {
            Tables::Narrow(_) => None,
            Tables::Wide(t) => t
                .iter()
                .filter(|w| w.base.freq as u64 + w.x.orders_before as u64 > 0)
                .map(|w| w.x.first)
                .chain(self.runs.iter().map(|r| r.oldest))
                .chain(self.kept.iter().filter_map(State::oldest_purchase))
                .min()
                .filter(|&o| o != i64::MAX),
        }
    }

    /// The newest `ordered_at` of any row seen, after `as_of` included.
    pub fn newest_row(&self) -> Option<i64> {
        (self.newest != i64::MIN).then_some(self.newest)
    }

    /// Notes a row's time; whether it is after `as_of` (then it is only counted).
    fn seen(&mut self, ts: i64) -> bool {
        self.newest = self.newest.max(ts);
        if ts > self.config.as_of {
            self.rows_after += 1;
            true
        } else {
            false
        }
    }

    /// A row whose customer key is NULL, with an exact amount: counted with its amount when
    /// it falls in the window (SPEC §2), else only noted.
    pub fn add_unkeyed_exact(&mut self, ts: i64, amount: Decimal) -> Result<()> {
        if self.seen(ts) || !self.in_window(ts) {
            return Ok(());
        }
        let amount = numeric::trim_scale(amount);
        let scale = match self.money {
            MoneyKind::Exact { scale } => scale,
            MoneyKind::Float => return Err(RfmError::invalid("mixed amount types")),
        };
        if amount.scale > scale {
            self.flush()?;
            self.raise_scale(amount.scale)?;
        }
        let scale = scale.max(amount.scale);
        let units = numeric::rescale(amount.units, amount.scale, scale).ok_or_else(overflow)?;
        let units = i64::try_from(units).map_err(|_| overflow())?;
        self.unkeyed_money = add_money(true, self.unkeyed_money, units)?;
        self.unkeyed_rows += 1;
        Ok(())
    }

    /// A row whose customer key is NULL, with a double precision amount.
    pub fn add_unkeyed_float(&mut self, ts: i64, amount: f64) -> Result<()> {
        if self.seen(ts) || !self.in_window(ts) {
            return Ok(());
        }
        self.unkeyed_money = add_money(false, self.unkeyed_money, amount.to_bits() as i64)?;
        self.unkeyed_rows += 1;
        Ok(())
    }

    fn empty_money(&self) -> i64 {
        match self.money {
            MoneyKind::Exact { .. } => 0,
            MoneyKind::Float => 0f64.to_bits() as i64,
        }
    }

    /// Rescales every exact total to `scale`.
    fn raise_scale(&mut self, scale: u32) -> Result<()> {
        if let MoneyKind::Exact { scale: old } = self.money {
            if scale > old {
                self.prepared = None;
                let factor = i64::try_from(numeric::pow10(scale - old).ok_or_else(overflow)?)
                    .map_err(|_| overflow())?;
                let up = |m: &mut i64| -> Result<()> {
                    *m = m.checked_mul(factor).ok_or_else(overflow)?;
                    Ok(())
                };
                match &mut self.table {
                    Tables::Narrow(t) => {
                        for e in t.iter_mut() {
                            up(&mut e.money)?;
                        }
                    }
                    Tables::Wide(t) => {
                        for w in t.iter_mut() {
                            up(&mut w.base.money)?;
                            up(&mut w.x.purchases)?;
                            up(&mut w.x.before)?;
                        }
                    }
                }
                up(&mut self.unkeyed_money)?;
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

    /// Adds one row with an exact amount.
    pub fn add_exact(&mut self, key: Key, ts: i64, amount: Decimal) -> Result<()> {
        if self.seen(ts) {
            return Ok(()); // after as_of: not part of the analysis at all (SPEC §2)
        }
        let inside = self.in_window(ts);
        if !inside && !self.wide() {
            return self.push(key, 0, ts, RowKind::Outside(false));
        }
        let scale = match self.money {
            MoneyKind::Exact { scale } => scale,
            MoneyKind::Float => return Err(RfmError::invalid("mixed amount types")),
        };
        let amount = numeric::trim_scale(amount);
        if amount.scale > scale {
            // pending units are at the old scale: add them first
            self.flush()?;
            self.raise_scale(amount.scale)?;
        }
        let scale = scale.max(amount.scale);
        let units = numeric::rescale(amount.units, amount.scale, scale).ok_or_else(overflow)?;
        let units = i64::try_from(units).map_err(|_| overflow())?;
        let kind = match (inside, units >= 0) {
            (false, purchase) => RowKind::Outside(purchase),
            (true, true) => RowKind::Purchase(self.stamp(ts)),
            (true, false) => RowKind::Return,
        };
        self.push(key, units, ts, kind)
    }

    /// Adds one row with a double precision amount (already checked to be finite).
    pub fn add_float(&mut self, key: Key, ts: i64, amount: f64) -> Result<()> {
        if self.seen(ts) {
            return Ok(()); // after as_of: not part of the analysis at all (SPEC §2)
        }
        let kind = match (self.in_window(ts), amount >= 0.0) {
            (false, purchase) => RowKind::Outside(purchase),
            (true, true) => RowKind::Purchase(self.stamp(ts)),
            (true, false) => RowKind::Return,
        };
        self.push(key, amount.to_bits() as i64, ts, kind)
    }

    /// Queues a row; every [`BATCH`] rows, adds them to the table.
    fn push(&mut self, key: Key, money: i64, ts: i64, kind: RowKind) -> Result<()> {
        let key = match key {
            Key::Int(k) => k as u64,
            Key::Text(t) => {
                let off = self.pending_text.len() as u64;
                self.pending_text.extend_from_slice(t);
                (off << 32) | t.len() as u64
            }
        };
        self.pending.push(Row {
            key,
            money,
            ts,
            kind,
        });
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
        self.prepared = None;
        let mut rows = std::mem::take(&mut self.pending);
        let mut text = std::mem::take(&mut self.pending_text);
        let exact = self.exact();
        let empty = self.empty_money();
        let text_keys = self.text_keys;
        let mut result = Ok(());
        let State {
            table,
            arena,
            hasher,
            max_customers,
            peak_bytes,
            window_rows,
            ..
        } = self;
        let key_at = |r: &Row| -> Key<'_> {
            if text_keys {
                let (off, len) = ((r.key >> 32) as usize, (r.key & 0xFFFF_FFFF) as usize);
                Key::Text(&text[off..off + len])
            } else {
                Key::Int(r.key as i64)
            }
        };
        macro_rules! add_rows {
            ($t:expr, $add:expr) => {
                for r in &rows {
                    let keys = Keys {
                        arena: &mut *arena,
                        hasher: &*hasher,
                        text: text_keys,
                    };
                    let step = slot($t, keys, *max_customers, empty, peak_bytes, key_at(r))
                        .and_then(|e| $add(e, exact, r));
                    if !matches!(r.kind, RowKind::Outside(_)) {
                        *window_rows += 1;
                    }
                    if let Err(e) = step {
                        result = Err(e);
                        break;
                    }
                }
            };
        }
        match table {
            Tables::Narrow(t) => add_rows!(t, add_narrow),
            Tables::Wide(t) => {
                // Two passes over each batch: first the entry of every row is found (or
                // created) and the CPU asked to fetch it, then the rows are added. A wide
                // entry is a cache line of its own beside the index: fetched one row at a
                // time, each row would wait for it; this way the fetches overlap.
                let mut at = [0usize; BATCH];
                let mut hashes = [0u64; BATCH];
                for part in rows.chunks(BATCH) {
                    // the index buckets of every row first (see [`super::index`])
                    for (h, r) in hashes.iter_mut().zip(part) {
                        *h = hash_key(hasher, key_at(r));
                        t.index.prefetch(*h);
                    }
                    let mut found = part.len();
                    for (i, r) in part.iter().enumerate() {
                        let keys = Keys {
                            arena: &mut *arena,
                            hasher: &*hasher,
                            text: text_keys,
                        };
                        let (key, hash) = (key_at(r), hashes[i]);
                        match wide_find(t, keys, *max_customers, empty, peak_bytes, key, hash) {
                            Ok(e) => {
                                at[i] = e;
                                t.prefetch(e);
                            }
                            Err(e) => {
                                result = Err(e);
                                found = i;
                                break;
                            }
                        }
                    }
                    // in the order of the rows, so that the first error is the one reported
                    for (r, &e) in part[..found].iter().zip(&at) {
                        if !matches!(r.kind, RowKind::Outside(_)) {
                            *window_rows += 1;
                        }
                        if let Err(e) = add_wide(t.entry_mut(e), exact, r) {
                            result = Err(e);
                            break;
                        }
                    }
                    if result.is_err() {
                        break;
                    }
                }
            }
        }
        // keep the buffers' memory for the next batch
        rows.clear();
        text.clear();
        self.pending = rows;
        self.pending_text = text;
        result
    }

    /// Merges `other` (a partial state of the same aggregate) into `self`. Nothing is
    /// looked up: `other`'s runs are kept as they are, and `other` itself, when its table
    /// has customers, is kept whole; the final step (or a serialization) reads the table,
    /// every kept table and every run in one merge. A state from another process arrives
    /// as a run; one handed over in the same process keeps its table, which is then never
    /// written as a run and read back.
    pub fn merge(&mut self, mut other: State) -> Result<()> {
        self.flush()?;
        other.flush()?;
        if other.config != self.config
            || other.text_keys != self.text_keys
            || std::mem::discriminant(&other.money) != std::mem::discriminant(&self.money)
            || other.wide() != self.wide()
        {
            return Err(RfmError::invalid(
                "options and argument types must be the same for every row",
            ));
        }
        if let (MoneyKind::Exact { scale: a }, MoneyKind::Exact { scale: b }) =
            (self.money, other.money)
        {
            // the tables and the unkeyed totals at the larger scale; runs keep their own
            // and are rescaled while they are read
            self.raise_scale(b)?;
            other.raise_scale(a)?;
        }
        let exact = self.exact();
        self.window_rows += other.window_rows;
        self.unkeyed_rows += other.unkeyed_rows;
        self.unkeyed_money = add_money(exact, self.unkeyed_money, other.unkeyed_money)?;
        self.rows_after += other.rows_after;
        self.newest = self.newest.max(other.newest);
        self.runs.append(&mut other.runs);
        self.kept.append(&mut other.kept);
        if other.table.len() > 0 {
            self.kept.push(other);
        }
        // every kept table at the scale of this state (runs are rescaled as they are read)
        let scale = self.scale();
        for k in &mut self.kept {
            k.raise_scale(scale)?;
        }
        Ok(())
    }

    /// The scale of exact amounts (0 for float ones).
    fn scale(&self) -> u32 {
        match self.money {
            MoneyKind::Exact { scale } => scale,
            MoneyKind::Float => 0,
        }
    }

    /// How the runs of this state are written.
    pub(super) fn format(&self) -> run::Format {
        run::Format {
            text: self.text_keys,
            exact: self.exact(),
            wide: self.wide(),
            base: self.base,
        }
    }

    /// Whether the state holds runs merged from other states (see [`State::merge`]).
    /// Works out the order in which the final step will read this state's table, ahead:
    /// for a state that is handed over whole and then waits for the other participants
    /// of a parallel plan. Rows added after it clear it.
    pub fn prepare_reading(&mut self) -> Result<()> {
        self.flush()?;
        if self.prepared.is_none() && self.table.len() > 0 {
            let (order, entries) = TableReader::work_out(self);
            self.prepared = Some(Prepared { order, entries });
            self.peak_bytes = self.peak_bytes.max(self.memory_bytes());
        }
        Ok(())
    }

    pub(super) fn has_runs(&self) -> bool {
        !self.runs.is_empty() || !self.kept.is_empty()
    }

    /// The most customers one part of the state holds (its table or one run): at least
    /// that many are in the merged state.
    pub(super) fn largest_part(&self) -> usize {
        self.runs
            .iter()
            .map(|r| r.n)
            .chain(self.kept.iter().map(|k| k.table.len()))
            .fold(self.table.len(), usize::max)
    }

    /// Appends the customers of the table to `buf` as a run; returns it with their count
    /// and earliest purchase. The table is left as it is.
    fn encode_table(&self, buf: Vec<u8>) -> (Vec<u8>, usize, i64) {
        let mut w = run::Writer::new(buf, self.format());
        let mut r = TableReader::new(self);
        while let Some(h) = r.next_head() {
            let key = if self.text_keys {
                Key::Text(h.text)
            } else {
                Key::Int(h.e.key as i64)
            };
            w.push(key, &h.e, Some(&h.x));
        }
        w.finish()
    }

    /// The customers of the table and of every run, merged: `each` is called once per
    /// customer, in run order, with its key and its entries added up.
    pub(super) fn for_each_merged(
        &self,
        mut each: impl FnMut(Key, &Entry, &Extra) -> Result<()>,
    ) -> Result<()> {
        let f = self.format();
        let scale = self.scale();
        let mut readers: Vec<run::Source> = std::iter::once(self)
            .chain(&self.kept)
            .filter(|s| s.table.len() > 0)
            .map(|s| run::Source::Table(TableReader::new(s)))
            .collect();
        for r in &self.runs {
            readers.push(run::Source::Run(run::RunReader::new(
                r,
                f,
                scale,
                &self.hasher,
            )?));
        }
        let mut merge = run::Merge::new(readers, self.exact())?;
        let mut n = 0usize;
        while let Some(h) = merge.next_customer()? {
            if n >= self.max_customers {
                return Err(customer_limit(self.max_customers));
            }
            n += 1;
            let key = if self.text_keys {
                Key::Text(h.text)
            } else {
                Key::Int(h.e.key as i64)
            };
            each(key, &h.e, &h.x)?;
        }
        Ok(())
    }

    /// Serialized state (version [`STATE_VERSION`]); pending rows are added first.
    pub fn serialize(&mut self) -> Result<Vec<u8>> {
        self.serialize_into(Vec::new())
    }

    /// [`State::serialize`], appended to `out`: a large state is written once, not copied
    /// after what goes before it. The customers are one sorted run (see [`run`]): the
    /// table's, merged with the runs the state holds.
    pub fn serialize_into(&mut self, out: Vec<u8>) -> Result<Vec<u8>> {
        self.flush()?;
        let per = if self.wide() { 32 } else { 12 };
        let size = 96 + self.len() * per;
        let mut w = Writer::append_to(out, STATE_VERSION, size);
        self.config.write(&mut w);
        w.u8(self.text_keys as u8);
        w.u8(self.exact() as u8);
        w.u32(self.scale());
        w.u64(self.window_rows);
        w.u64(self.unkeyed_rows);
        w.i64(self.unkeyed_money);
        w.u64(self.rows_after);
        w.i64(self.newest);
        // count, earliest purchase and byte length, filled in once the run is written
        let mut buf = w.finish();
        let at = buf.len();
        buf.extend_from_slice(&[0u8; 24]);
        let (mut buf, n, oldest) = if !self.has_runs() {
            self.encode_table(buf)
        } else {
            let mut w = run::Writer::new(buf, self.format());
            self.for_each_merged(|key, e, x| {
                w.push(key, e, Some(x));
                Ok(())
            })?;
            w.finish()
        };
        let len = (buf.len() - at - 24) as u64;
        buf[at..at + 8].copy_from_slice(&(n as u64).to_le_bytes());
        buf[at + 8..at + 16].copy_from_slice(&oldest.to_le_bytes());
        buf[at + 16..at + 24].copy_from_slice(&len.to_le_bytes());
        Ok(buf)
    }

    /// A state serialized by [`State::serialize`]; `None` for bytes that are not one. The
    /// run is kept as it is and checked entry by entry when it is read.
    pub fn deserialize(bytes: &[u8]) -> Option<State> {
        let mut r = Reader::new(bytes, STATE_VERSION)?;
        let config = Config::read(&mut r)?;
        let text_keys = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let exact = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let scale = r.u32()?;
        let window_rows = r.u64()?;
        let (unkeyed_rows, unkeyed_money) = (r.u64()?, r.i64()?);
        let (rows_after, newest) = (r.u64()?, r.i64()?);
        let n = r.u64()?;
        let oldest = r.i64()?;
        let bytes = r.bytes()?;
        r.end()?;
        // a forged count fails here, before anything is allocated for it
        let n = Reader::raw(bytes).fits(n, run::MIN_ENTRY_BYTES)?;
        if (n == 0) != bytes.is_empty() || (!exact && scale != 0) {
            return None;
        }
        let mut state = State::new(config, text_keys, exact);
        if exact {
            state.money = MoneyKind::Exact { scale };
        }
        state.window_rows = window_rows;
        state.unkeyed_rows = unkeyed_rows;
        state.unkeyed_money = unkeyed_money;
        state.rows_after = rows_after;
        state.newest = newest;
        if n > 0 {
            state.runs.push(Run {
                bytes: bytes.to_vec(),
                n,
                scale,
                oldest,
            });
        }
        Some(state)
    }
}

/// Version 7: the customers as one sorted run (see [`run`]), wide entries without what
/// follows from other fields; the options carry the scheme
/// (a user's with its document).
const STATE_VERSION: u8 = 7;

fn too_many_rows() -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        "a customer has more than 4294967295 rows in the window",
    )
    .with_hint("Pre-aggregate the rows, for example one row per order.")
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{config, days, dec, DAY};
    use crate::analysis::{finalize, Analysis, Method};

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
    fn wide_states_over_many_chunks_merge_and_serialize_alike() {
        // more customers than two chunks hold, text and bigint keys, rows before and in
        // the window: one state, and two halves merged after a serialization round trip
        for text in [false, true] {
            let mut c = config(Method::Quantile);
            c.metrics = true;
            c.scheme = Some(crate::scheme::Segmenter::builtin("lifecycle").unwrap());
            let d = days(&c);
            let n = 2 * CHUNK as i64 + 777;
            let mut whole = State::new(c.clone(), text, true);
            let mut left = State::new(c.clone(), text, true);
            let mut right = State::new(c.clone(), text, true);
            for i in 0..5 * n {
                let k = (i * 7919) % n;
                let t = 100 * DAY - (i * 104729 % 900) * DAY;
                let amount = dec((i * 31 % 200) as i128 - 10, 2);
                let name = format!("c{k}");
                let key = if text {
                    Key::Text(name.as_bytes())
                } else {
                    Key::Int(k)
                };
                whole.add_exact(key, t, amount).unwrap();
                let part = if i % 3 == 0 { &mut left } else { &mut right };
                part.add_exact(key, t, amount).unwrap();
            }
            whole.flush().unwrap();
            assert!(whole.wide());
            assert_eq!(whole.len(), n as usize);
            // the entries do not move when the index grows, so the peak is not the old and
            // the new table of 64-byte entries together (here 6.4 MB, 190 bytes a customer);
            // what it is above 64 bytes a customer is mostly the last chunk's free space
            let per = whole.peak_bytes() as f64 / n as f64;
            assert!(
                per < 128.0 + 16.0 * text as u8 as f64,
                "{per} bytes a customer"
            );
            let right = State::deserialize(&right.serialize().unwrap()).unwrap();
            let left = State::deserialize(&left.serialize().unwrap()).unwrap();
            let mut merged = right;
            merged.merge(left).unwrap();
            // two runs until they are read: serialized, they are one of n customers
            assert_eq!(merged.runs.len(), 2);
            let mut one = State::deserialize(&merged.serialize().unwrap()).unwrap();
            assert_eq!((one.runs.len(), one.len()), (1, n as usize));
            assert_eq!(one.serialize().unwrap(), merged.serialize().unwrap());
            let bytes = finalize(whole, &d).unwrap();
            assert_eq!(bytes, finalize(merged, &d).unwrap());
        }
    }

    /// A lifecycle state of `n` customers from rows `i` with `pick(i)`, text or bigint keys.
    fn lifecycle_rows(text: bool, exact: bool, n: i64, pick: impl Fn(i64) -> bool) -> State {
        let mut c = config(Method::Quantile);
        c.metrics = true;
        c.scheme = Some(crate::scheme::Segmenter::builtin("lifecycle").unwrap());
        let mut s = State::new(c, text, exact);
        for i in (0..4 * n).filter(|&i| pick(i)) {
            let k = (i * 7919) % n;
            let t = 100 * DAY - (i * 104729 % 900) * DAY;
            let units = (i * 31 % 200) as i128 - 10;
            let name = format!("c{k}");
            let key = if text {
                Key::Text(name.as_bytes())
            } else {
                Key::Int(k - n / 2) // negative keys too
            };
            if exact {
                s.add_exact(key, t, dec(units, 2)).unwrap();
            } else {
                s.add_float(key, t, units as f64 / 100.0).unwrap();
            }
        }
        s
    }

    #[test]
    fn sorted_runs_merge_in_any_order_like_one_state() {
        for (text, exact) in [(false, true), (true, true), (false, false), (true, false)] {
            let n = CHUNK as i64 + 333;
            let d = days(&lifecycle_rows(text, exact, 1, |_| false).config);
            let whole = finalize(lifecycle_rows(text, exact, n, |_| true), &d).unwrap();
            // three parts of the rows, read back as sorted runs
            let parts: Vec<Vec<u8>> = (0..3)
                .map(|p| {
                    let mut s = lifecycle_rows(text, exact, n, |i| i % 3 == p);
                    s.serialize().unwrap()
                })
                .collect();
            for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
                let mut merged = State::deserialize(&parts[order[0]]).unwrap();
                for &p in &order[1..] {
                    let run = State::deserialize(&parts[p]).unwrap();
                    assert!(run.has_runs() && run.table.len() == 0);
                    merged.merge(run).unwrap();
                }
                // a merged run serializes as it is, and reads back the same
                let again = State::deserialize(&merged.serialize().unwrap()).unwrap();
                let out = finalize(again, &d).unwrap();
                // the same with the middle part handed over whole, its table kept
                let mut handed = State::deserialize(&parts[order[0]]).unwrap();
                let p = order[1] as i64;
                handed
                    .merge(lifecycle_rows(text, exact, n, |i| i % 3 == p))
                    .unwrap();
                assert_eq!(handed.kept.len(), 1);
                handed
                    .merge(State::deserialize(&parts[order[2]]).unwrap())
                    .unwrap();
                let handed = finalize(handed, &d).unwrap();
                if exact {
                    assert!(handed == whole, "handed: text {text}, order {order:?}");
                }
                if exact {
                    assert!(out == whole, "text {text}, order {order:?}");
                } else {
                    let (a, b) = (
                        Analysis::deserialize(&out, true).unwrap(),
                        Analysis::deserialize(&whole, true).unwrap(),
                    );
                    assert_eq!(a.customers.len(), b.customers.len());
                    assert_eq!(a.overview.active_customers, b.overview.active_customers);
                }
            }
        }
    }

    #[test]
    fn kept_tables_follow_the_largest_scale() {
        // parts at scales 2, 0 and 4, merged as a run and two whole states, in every
        // order: the amounts of every part end at scale 4, as in one state of all rows
        let mut c = config(Method::Quantile);
        c.metrics = true;
        c.scheme = Some(crate::scheme::Segmenter::builtin("lifecycle").unwrap());
        let d = days(&c);
        let part = |p: i64| {
            let mut s = State::new(c.clone(), false, true);
            for i in (0..600).filter(|i| i % 3 == p) {
                let t = 100 * DAY - (i * 104729 % 900) * DAY;
                let units = (i * 31 % 200) as i128 - 10;
                let scale = [2, 0, 4][p as usize];
                s.add_exact(Key::Int(i % 97), t, dec(units, scale)).unwrap();
            }
            s
        };
        let mut whole = part(0);
        whole.merge(part(1)).unwrap();
        whole.merge(part(2)).unwrap();
        let mut one = State::new(c.clone(), false, true);
        for p in 0..3 {
            for i in (0..600).filter(|i| i % 3 == p) {
                let t = 100 * DAY - (i * 104729 % 900) * DAY;
                let units = (i * 31 % 200) as i128 - 10;
                let scale = [2, 0, 4][p as usize];
                one.add_exact(Key::Int(i % 97), t, dec(units, scale))
                    .unwrap();
            }
        }
        let want = finalize(one, &d).unwrap();
        assert_eq!(finalize(whole, &d).unwrap(), want);
        for order in [[0, 1, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let run = State::deserialize(&part(order[0]).serialize().unwrap()).unwrap();
            let mut merged = run;
            merged.merge(part(order[1])).unwrap();
            merged.merge(part(order[2])).unwrap();
            assert_eq!(merged.kept.len(), 2);
            assert!(merged.kept.iter().all(|k| k.scale() == 4), "{order:?}");
            let again = State::deserialize(&merged.serialize().unwrap()).unwrap();
            assert_eq!(finalize(merged, &d).unwrap(), want, "{order:?}");
            assert_eq!(finalize(again, &d).unwrap(), want, "{order:?}");
        }
    }

    #[test]
    fn a_prepared_reading_is_the_reading_and_goes_stale_with_the_table() {
        // plain and wide states, bigint and text keys: prepared ahead, merged whole (also
        // at a larger scale, which rescales the prepared entries), or given more rows
        for (wide, text) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut c = config(Method::Quantile);
            if wide {
                c.metrics = true;
                c.scheme = Some(crate::scheme::Segmenter::builtin("lifecycle").unwrap());
            }
            let d = days(&c);
            let row = |s: &mut State, i: i64, scale: u32| {
                let name = format!("c{}", i % 89);
                let key = if text {
                    Key::Text(name.as_bytes())
                } else {
                    Key::Int(i % 89)
                };
                let t = 100 * DAY - (i * 104729 % 900) * DAY;
                s.add_exact(key, t, dec((i * 31 % 200) as i128 - 10, scale))
                    .unwrap();
            };
            let state = |range: std::ops::Range<i64>, scale: u32| {
                let mut s = State::new(c.clone(), text, true);
                for i in range {
                    row(&mut s, i, scale);
                }
                s
            };
            let mut one = state(0..400, 2);
            for i in 400..600 {
                row(&mut one, i, 3);
            }
            let want = finalize(one, &d).unwrap();
            // prepared, then more rows
            let mut a = state(0..400, 2);
            let before = a.memory_bytes();
            a.prepare_reading().unwrap();
            assert!(a.prepared.is_some());
            // counted: 16 bytes a customer of order, or the plain entries copied out
            assert!(
                a.memory_bytes() >= before + 89 * 16,
                "wide {wide}, text {text}"
            );
            for i in 400..600 {
                row(&mut a, i, 3);
            }
            a.flush().unwrap();
            assert!(a.prepared.is_none());
            let mut b = state(0..0, 2);
            b.merge(a).unwrap();
            assert_eq!(finalize(b, &d).unwrap(), want, "wide {wide}, text {text}");
            // prepared, then merged whole into a state of a larger scale
            let mut a = state(0..400, 2);
            a.prepare_reading().unwrap();
            let mut b = state(400..600, 3);
            b.merge(a).unwrap();
            assert_eq!(finalize(b, &d).unwrap(), want, "wide {wide}, text {text}");
            // prepared and merged as it is (one scale)
            let want = finalize(state(0..600, 3), &d).unwrap();
            let mut a = state(0..400, 3);
            a.prepare_reading().unwrap();
            let mut b = state(400..600, 3);
            b.prepare_reading().unwrap();
            b.merge(a).unwrap();
            assert!(b.prepared.is_some() && b.kept[0].prepared.is_some());
            assert_eq!(finalize(b, &d).unwrap(), want, "wide {wide}, text {text}");
            // prepared, then more rows at its scale
            let mut a = state(0..400, 3);
            a.prepare_reading().unwrap();
            for i in 400..600 {
                row(&mut a, i, 3);
            }
            let mut b = state(0..0, 3);
            b.merge(a).unwrap();
            assert_eq!(finalize(b, &d).unwrap(), want, "wide {wide}, text {text}");
        }
    }

    #[test]
    fn rows_can_be_added_to_a_merged_run() {
        let n = 500;
        let d = days(&lifecycle_rows(false, true, 1, |_| false).config);
        let whole = finalize(lifecycle_rows(false, true, n, |_| true), &d).unwrap();
        let mut a = lifecycle_rows(false, true, n, |i| i % 2 == 0);
        let mut b = lifecycle_rows(false, true, n, |i| i % 2 == 1 && i < 3 * n);
        let mut merged = State::deserialize(&a.serialize().unwrap()).unwrap();
        merged
            .merge(State::deserialize(&b.serialize().unwrap()).unwrap())
            .unwrap();
        // the rows b left out (as lifecycle_rows makes them), added to the merged run: its
        // index is built first
        for i in (3 * n..4 * n).filter(|i| i % 2 == 1) {
            let k = (i * 7919) % n;
            let t = 100 * DAY - (i * 104729 % 900) * DAY;
            let units = (i * 31 % 200) as i128 - 10;
            merged
                .add_exact(Key::Int(k - n / 2), t, dec(units, 2))
                .unwrap();
        }
        merged.flush().unwrap();
        assert!(merged.has_runs() && merged.table.len() > 0);
        assert_eq!(finalize(merged, &d).unwrap(), whole);
    }

    #[test]
    fn the_customer_limit_holds_when_runs_merge() {
        let n = 300;
        let mut a = lifecycle_rows(false, true, n, |i| i % 2 == 0);
        let mut b = lifecycle_rows(false, true, n, |i| i % 2 == 1);
        let d = days(&a.config);
        let (a, b) = (a.serialize().unwrap(), b.serialize().unwrap());
        let merged = |max: usize| {
            let mut m = State::deserialize(&a).unwrap();
            m.max_customers = max;
            m.merge(State::deserialize(&b).unwrap()).unwrap();
            m
        };
        // the runs are merged when they are read: by the final step, or a serialization
        assert!(finalize(merged(n as usize), &d).is_ok());
        assert!(merged(n as usize).serialize().is_ok());
        let err = finalize(merged(n as usize - 1), &d).unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProgramLimit);
        let err = merged(n as usize - 1).serialize().unwrap_err();
        assert_eq!(err.kind, ErrorKind::ProgramLimit);
    }

    /// A state of `wide`-ness like [`lifecycle_rows`] that holds one run written by hand:
    /// `keys` in the order given, each with one purchase.
    fn with_run(text: bool, keys: &[i64], edit: impl Fn(&mut Vec<u8>)) -> State {
        let mut s = lifecycle_rows(text, true, 1, |_| false);
        let mut w = run::Writer::new(Vec::new(), s.format());
        for &k in keys {
            let name = format!("c{k}");
            let key = if text {
                Key::Text(name.as_bytes())
            } else {
                Key::Int(k)
            };
            let mut x = Wide::fresh(0, 0);
            x.base.freq = 1;
            x.base.last = 5;
            x.x.first = 10 * DAY;
            x.x.latest = 20 * DAY;
            w.push(key, &x.base, Some(&x.x));
        }
        let (mut bytes, n, oldest) = w.finish();
        edit(&mut bytes);
        s.runs.push(Run {
            bytes,
            n,
            scale: 0,
            oldest,
        });
        s
    }

    #[test]
    fn a_run_out_of_order_or_damaged_is_an_error_when_read() {
        let d = days(&lifecycle_rows(false, true, 1, |_| false).config);
        // the run is read by the final step and by a serialization: both fail alike
        let check = |make: &dyn Fn() -> State, what: &str| {
            let err = make().serialize().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidBinary, "{what}");
            let err = finalize(make(), &d).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidBinary, "{what}");
            assert_eq!(err.message, "invalid serialized rfm.analyze state");
        };
        for text in [false, true] {
            // text keys are in hash order: which of two comes first
            let hasher = lifecycle_rows(false, true, 1, |_| false).hasher;
            let h = |k: i64| run::order_prefix(&hasher, Key::Text(format!("c{k}").as_bytes()));
            let (lo, hi) = if text && h(2) < h(1) { (2, 1) } else { (1, 2) };
            // well-formed: read back as written
            let good = with_run(text, &[lo, hi], |_| {});
            let a = Analysis::deserialize(&finalize(good, &d).unwrap(), true).unwrap();
            assert_eq!(a.customers.len(), 2, "text {text}");
            assert!(with_run(text, &[lo, hi], |_| {}).serialize().is_ok());
            check(&|| with_run(text, &[hi, lo], |_| {}), "out of order");
            check(&|| with_run(text, &[lo, lo], |_| {}), "twice");
            check(
                &|| with_run(text, &[lo, hi], |b| b.truncate(b.len() - 1)),
                "cut",
            );
            check(&|| with_run(text, &[lo, hi], |b| b.push(0)), "a byte more");
            // the last entry's count of returns as a varint beyond u32
            check(
                &|| {
                    with_run(text, &[lo], |b| {
                        b.pop();
                        b.extend([0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
                    })
                },
                "a count beyond u32",
            );
            // the entry ends with its latest purchase (seconds after the first, 3 bytes;
            // microseconds, 0) and its returns (0)
            let run = with_run(text, &[lo], |_| {}).runs[0].bytes.clone();
            // zigzag(864,000 seconds) = 1,728,000 as a varint
            assert_eq!(run[run.len() - 5..], [0x80, 0xBC, 0x69, 0, 0]);
            check(
                &|| {
                    with_run(text, &[lo], |b| {
                        b.truncate(b.len() - 2);
                        b.extend([0xC0, 0x84, 0x3D, 0]); // 1,000,000 microseconds
                    })
                },
                "a second of microseconds",
            );
            check(
                &|| {
                    with_run(text, &[lo], |b| {
                        b.truncate(b.len() - 5);
                        b.extend([1, 0, 0]); // a second before the first purchase
                    })
                },
                "the latest purchase before the first",
            );
            // a purchase before the earliest the run announces
            check(
                &|| {
                    let mut s = with_run(text, &[lo, hi], |_| {});
                    s.runs[0].oldest += 1;
                    s
                },
                "earliest purchase",
            );
        }
    }

    #[test]
    fn an_entry_stays_small() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        assert_eq!(std::mem::size_of::<Wide>(), 64);
    }
}
