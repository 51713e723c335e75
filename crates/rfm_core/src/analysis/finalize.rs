//! The final step: thresholds, scores, segments, ABC tiers, the summary and the grid,
//! computed from a finished state and written as an `rfm.analysis` value.

use super::options::{Config, Method, METRICS};
use super::prefetch;
use super::state::{add_money, instant, Entry, Extra, MoneyKind, Slot, State, Tables};
use super::value::{write_instant, ANALYSIS_VERSION, NO_TIER};
use super::value::{GridRow, Header, Money, Overview, SummaryRow, ThresholdRow};
use crate::abc;
use crate::codec::Writer;
use crate::error::Result;
use crate::quantile;
use crate::rules::{Metric, Population, Values, ALL_METRICS, METRIC_COUNT};
use crate::scheme;
use crate::score;
use hashbrown::HashTable;

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
        // the number of midnights at or before ts: guessed from 24-hour days, then moved
        // to the exact place, as many steps as the zone's offset has moved since the first
        // day in whole days (none or one for summer time)
        const DAY: i64 = 86_400_000_000;
        let m = &self.midnights;
        let Some(&m0) = m.first() else {
            return self.first_day - 1;
        };
        let guess = (ts.saturating_sub(m0)).div_euclid(DAY).saturating_add(1);
        let mut i = guess.clamp(0, m.len() as i64) as usize;
        while i < m.len() && m[i] <= ts {
            i += 1;
        }
        while i > 0 && m[i - 1] > ts {
            i -= 1;
        }
        self.first_day + i as i32 - 1
    }
}

/// One active customer while the analysis is finished: 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Act {
    /// As in [`Entry::key`](super::state::Entry::key).
    key: u64,
    /// As in [`Entry::money`](super::state::Entry::money).
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

/// The metric of a customer as exact units at a scale, when it has them (days, purchases,
/// `numeric` money): its quantile thresholds are then interpolated exactly.
type Units<'a> = Option<(&'a dyn Fn(usize) -> i64, u32)>;

/// Scores of one metric for every active customer (written to `scores[..][slot]`) and the
/// rows of the thresholds table. `value(i)` is the metric of customer `i`; `key_cmp`
/// orders customers by key (the tie-breaker of the `ntile` method); `work` is scratch space.
#[allow(clippy::too_many_arguments)] // one call per metric, from finalize only
fn score_metric(
    metric: usize,
    n_active: usize,
    value: &dyn Fn(usize) -> f64,
    units: Units,
    key_cmp: &dyn Fn(usize, usize) -> std::cmp::Ordering,
    config: &Config,
    scores: &mut [[u8; 5]],
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
            } else if let Some((unit, scale)) = units {
                let mut exact: Vec<i64> = (0..n_active).map(unit).collect();
                (
                    quantile::thresholds_exact(&mut exact, scale, n).unwrap_or_default(),
                    false,
                )
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

/// Sorts customers with bigint keys in the order of the value: active ones first, then by
/// monetary (`ord_money` of it), highest first, then by key. The active ones are moved to
/// the front first; each part is then sorted on one 128-bit number, (monetary, key) with
/// the monetary inverted, which compares faster than the three fields.
fn sort_int_keys<T>(v: &mut [T], act: impl Fn(&T) -> &Act, ord_money: impl Fn(i64) -> i64) {
    let mut active = 0;
    for i in 0..v.len() {
        if act(&v[i]).freq > 0 {
            v.swap(i, active);
            active += 1;
        }
    }
    let key = |t: &T| {
        let a = act(t);
        ((money_key(ord_money(a.money)) as u128) << 64) | ((a.key ^ SIGN) as u128)
    };
    let (front, back) = v.split_at_mut(active);
    front.sort_unstable_by_key(key);
    back.sort_unstable_by_key(key);
}

const SIGN: u64 = 1 << 63;

/// An amount (as `ord_money` gives it) as a number that sorts the highest first.
#[inline]
fn money_key(m: i64) -> u64 {
    !((m as u64) ^ SIGN)
}

/// The order of the value for customers that are in key order already (read from merged
/// runs): active ones first, then by monetary, highest first; equals keep their order,
/// which is the key's. The places of the customers, sorted by a stable radix sort on
/// (monetary, place) pairs rather than on the customers themselves.
fn money_order(act: &[Act], ord_money: impl Fn(i64) -> i64) -> Vec<u32> {
    let active = act.iter().filter(|a| a.freq > 0).count();
    let mut order: Vec<u32> = Vec::with_capacity(act.len());
    order_part(act, |a| a.freq > 0, active, &ord_money, &mut order);
    order_part(
        act,
        |a| a.freq == 0,
        act.len() - active,
        &ord_money,
        &mut order,
    );
    order
}

/// Appends the places of the `n` customers of `act` that are in `part`, highest monetary
/// first, equals in their order in `act`. The sort key is the distance to the highest
/// monetary of the part: when it fits in 32 bits (amounts within about 42 million of each
/// other at two decimals) each pair is 8 bytes and at most four digits are sorted, not 16
/// bytes and eight (the radix sort skips a digit that is the same in every key).
fn order_part(
    act: &[Act],
    part: impl Fn(&Act) -> bool,
    n: usize,
    ord_money: &impl Fn(i64) -> i64,
    order: &mut Vec<u32>,
) {
    if n == 0 {
        return;
    }
    let members = || act.iter().enumerate().filter(|(_, a)| part(a));
    let (lo, hi) = members().fold((i64::MAX, i64::MIN), |(lo, hi), (_, a)| {
        let m = ord_money(a.money);
        (lo.min(m), hi.max(m))
    });
    if (hi as i128 - lo as i128) <= u32::MAX as i128 {
        // (distance << 32 | place), sorted on the distance alone: stable, so equals keep
        // their place order
        let mut pairs: Vec<u64> = Vec::with_capacity(n);
        pairs.extend(members().map(|(i, a)| {
            let d = (hi - ord_money(a.money)) as u64;
            (d << 32) | i as u64
        }));
        radsort::sort_by_key(&mut pairs, |p| (p >> 32) as u32);
        order.extend(pairs.iter().map(|p| *p as u32));
    } else {
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(n);
        pairs.extend(members().map(|(i, a)| (money_key(ord_money(a.money)), i as u32)));
        radsort::sort_by_key(&mut pairs, |p| p.0);
        order.extend(pairs.iter().map(|p| p.1));
    }
}

/// `v` in the order of `places`; the reads are at random, so fetched a few ahead.
fn gather<T: Copy>(v: &[T], places: &[u32]) -> Vec<T> {
    const AHEAD: usize = 16;
    let mut out = Vec::with_capacity(places.len());
    for (j, &i) in places.iter().enumerate() {
        if let Some(&next) = places.get(j + AHEAD) {
            let t = &v[next as usize];
            prefetch(t);
            if std::mem::size_of::<T>() > 16 {
                // an element may straddle two cache lines: ask for its last byte's too
                // SAFETY: the last byte of `t`, inside the same element
                let last = unsafe {
                    &*(t as *const T)
                        .cast::<u8>()
                        .add(std::mem::size_of::<T>() - 1)
                };
                prefetch(last);
            }
        }
        out.push(v[i as usize]);
    }
    out
}

/// Collects the customers the analysis outputs (active ones, or with population `all` every
/// customer with a purchase) and counts the others.
struct Collected {
    act: Vec<Act>,
    /// The full metrics of the customers in `act` (empty for a plain state).
    xs: Vec<Extra>,
    excluded: i64,
    /// The window amounts (returns) of the excluded customers.
    excluded_money: i64,
    /// Window rows of customers without a purchase in the window (returns only).
    return_only_rows: u64,
    excluded_keys: Vec<u64>,
}

/// Whether a customer is output: active, or (population `all`) with a purchase at or
/// before `as_of`.
fn is_out(e: &Entry, x: Option<&Extra>, all: bool) -> bool {
    e.freq > 0 || (all && x.is_some_and(|x| x.orders_before > 0))
}

/// What [`Collected`] is built with.
struct CollectOptions<R: Fn(&Entry) -> u32> {
    all: bool,
    keep_excluded: bool,
    exact: bool,
    recency: R,
}

impl Collected {
    fn new(exact: bool, capacity: usize, wide: bool) -> Collected {
        Collected {
            act: Vec::with_capacity(capacity),
            xs: Vec::with_capacity(if wide { capacity } else { 0 }),
            excluded: 0,
            excluded_money: if exact { 0 } else { 0f64.to_bits() as i64 },
            return_only_rows: 0,
            excluded_keys: Vec::new(),
        }
    }

    /// Counts one customer, and copies it out when the analysis outputs it.
    #[inline]
    fn add<R: Fn(&Entry) -> u32>(
        &mut self,
        e: &Entry,
        x: Option<&Extra>,
        o: &CollectOptions<R>,
    ) -> Result<()> {
        if e.freq == 0 {
            self.return_only_rows += e.last as u64;
        }
        if !is_out(e, x, o.all) {
            self.excluded += 1;
            self.excluded_money = add_money(o.exact, self.excluded_money, e.money)?;
            if o.keep_excluded {
                self.excluded_keys.push(e.key);
            }
            return Ok(());
        }
        self.act.push(Act {
            key: e.key,
            money: e.money,
            recency: if e.freq > 0 { (o.recency)(e) } else { 0 },
            freq: e.freq,
        });
        if let Some(x) = x {
            self.xs.push(*x);
        }
        Ok(())
    }
}

/// Copies the customers out of the state's table: `n` of them are output (counted
/// beforehand with [`is_out`]); `entries` gives them by value, so that a table can be
/// freed while it is read.
fn collect<T: Slot, R: Fn(&Entry) -> u32>(
    n: usize,
    entries: impl Iterator<Item = T>,
    o: &CollectOptions<R>,
) -> Result<Collected> {
    let wide = T::fresh(0, 0).extra().is_some();
    let mut c = Collected::new(o.exact, n, wide);
    for t in entries {
        c.add(t.base(), t.extra(), o)?;
    }
    Ok(c)
}

/// Copies the customers out of a state that holds runs merged from other states: the
/// table and every run read in one merge (see [`super::run`]), in run order. Text keys
/// are copied to the arena returned.
fn collect_merged<R: Fn(&Entry) -> u32>(
    state: &State,
    o: &CollectOptions<R>,
) -> Result<(Collected, Vec<u8>)> {
    let wide = state.wide();
    let mut c = Collected::new(o.exact, state.largest_part(), wide);
    let mut arena = Vec::new();
    state.for_each_merged(|key, e, x| {
        let mut e = *e;
        if let super::Key::Text(t) = key {
            if !is_out(&e, wide.then_some(x), o.all) && !o.keep_excluded {
                e.key = 0; // not output: its key is not needed
            } else {
                e.key = ((arena.len() as u64) << 32) | t.len() as u64;
                if arena.len() + t.len() > u32::MAX as usize {
                    return Err(crate::error::RfmError::new(
                        crate::error::ErrorKind::ProgramLimit,
                        "the customer keys of the analysis do not fit in one value (1 GB)",
                    ));
                }
                arena.extend_from_slice(t);
            }
        }
        c.add(&e, wide.then_some(x), o)
    })?;
    Ok((c, arena))
}

/// Computes the analysis from a finished state and returns the `rfm.analysis` value. The
/// state's table is released as soon as the customers are copied out of it, so the
/// memory this needs beyond the state is about 28 bytes per active customer plus the value
/// itself (about 15 bytes per customer; with the full metrics about 20 more).
pub fn finalize(state: State, days: &Days) -> Result<Vec<u8>> {
    finalize_with(state, days, None)
}

/// [`finalize`], with each customer's `(p_alive, clv)` for the rules that read them (the
/// models of SPEC §12 fitted on the same rows: [`super::clv_metrics`]).
pub fn finalize_with(
    mut state: State,
    days: &Days,
    clv_lookup: Option<&super::ClvLookup>,
) -> Result<Vec<u8>> {
    state.flush()?;
    let (window_rows, base) = (state.window_rows, state.base);
    let (unkeyed_rows, unkeyed_money, rows_after) =
        (state.unkeyed_rows, state.unkeyed_money, state.rows_after);
    let exact_scale = match state.money {
        MoneyKind::Exact { scale } => Some(scale),
        MoneyKind::Float => None,
    };
    let all = state.config.population() == Population::All;
    let recency = |e: &Entry| (days.as_of_day - days.day_of(instant(base, e.last))).max(0) as u32;
    let exact = exact_scale.is_some();
    let o = CollectOptions {
        all,
        keep_excluded: state.config.keep_excluded,
        exact,
        recency,
    };
    // customers merged from other states (a parallel plan): read in one merge, in key order
    let merged = if state.has_runs() {
        Some(collect_merged(&state, &o)?)
    } else {
        None
    };
    let key_ordered = merged.is_some() && !state.text_keys;
    let table = std::mem::replace(&mut state.table, Tables::Narrow(HashTable::new()));
    let State {
        config,
        text_keys: text,
        arena,
        ..
    } = state;
    let to_money = |m: i64| match exact_scale {
        Some(s) => Money::Exact(m as i128, s),
        None => Money::Float(f64::from_bits(m as u64)),
    };
    let money_f = |m: i64| to_money(m).to_f64();
    let (collected, arena) = match (merged, table) {
        (Some(m), _) => m,
        (None, Tables::Narrow(t)) => {
            let n = t.iter().filter(|e| is_out(e, None, all)).count();
            (collect(n, t.into_iter(), &o)?, arena)
        }
        (None, Tables::Wide(t)) => {
            let n = t
                .iter()
                .filter(|w| is_out(&w.base, Some(&w.x), all))
                .count();
            (collect(n, t.into_entries(), &o)?, arena)
        }
    };
    let Collected {
        mut act,
        mut xs,
        excluded,
        excluded_money,
        return_only_rows,
        mut excluded_keys,
    } = collected;
    let wide = config.wide();
    // the rows of customers without purchases are returns only: they are not transactions
    let transactions = (window_rows - return_only_rows) as i64;
    let n_out = act.len();
    let n_active = act.iter().filter(|a| a.freq > 0).count();
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
    // a deterministic order whatever the input order: active customers first, then
    // monetary (highest first), then key
    let ord_money = |m: i64| {
        if exact_scale.is_some() {
            m
        } else {
            float_order(m)
        }
    };
    let order = |a: &Act, b: &Act| {
        (b.freq > 0)
            .cmp(&(a.freq > 0))
            .then_with(|| ord_money(b.money).cmp(&ord_money(a.money)))
            .then_with(|| key_cmp(a, b))
    };
    if key_ordered {
        let places = money_order(&act, ord_money);
        act = gather(&act, &places);
        if !xs.is_empty() {
            xs = gather(&xs, &places);
        }
    } else if !xs.is_empty() {
        // the customers with their place in `xs` (32 bytes, not 64 with the metrics), in
        // the same order as below; then the metrics follow them
        let mut tagged: Vec<(Act, u32)> = act.drain(..).zip(0u32..).collect();
        if text {
            tagged.sort_unstable_by(|a, b| order(&a.0, &b.0));
        } else {
            sort_int_keys(&mut tagged, |t| &t.0, ord_money);
        }
        act.extend(tagged.iter().map(|t| t.0));
        let places: Vec<u32> = tagged.iter().map(|t| t.1).collect();
        drop(tagged);
        xs = gather(&xs, &places);
    } else if text {
        act.sort_unstable_by(order);
    } else {
        sort_int_keys(&mut act, |a| a, ord_money);
    }

    // scores of the active customers (the first n_active): r, f, m, the ABC tier and the
    // segment (index + 1, 0 for none)
    let mut scores = vec![[0u8; 5]; n_out];
    let mut work = Vec::new();
    let idx_cmp = |i: usize, j: usize| key_cmp(&act[i], &act[j]);
    let recency_units = |i: usize| act[i].recency as i64;
    let mut thresholds = score_metric(
        0,
        n_active,
        &|i| act[i].recency as f64,
        Some((&recency_units, 0)),
        &idx_cmp,
        &config,
        &mut scores[..n_active],
        &mut work,
    );
    let freq_units = |i: usize| act[i].freq as i64;
    let money_units = |i: usize| act[i].money;
    let money_exact: Units = exact_scale.map(|s| (&money_units as &dyn Fn(usize) -> i64, s));
    for (metric, value, units) in [
        (
            1,
            &(|i: usize| act[i].freq as f64) as &dyn Fn(usize) -> f64,
            Some((&freq_units as &dyn Fn(usize) -> i64, 0)),
        ),
        (2, &|i: usize| money_f(act[i].money), money_exact),
    ] {
        let rows = score_metric(
            metric,
            n_active,
            value,
            units,
            &idx_cmp,
            &config,
            &mut scores[..n_active],
            &mut work,
        );
        thresholds.extend(rows);
    }
    drop(work);

    // the days of the full metrics: tenure and days since the last purchase
    let derived: Vec<(i32, i32)> = xs
        .iter()
        .zip(&act)
        .map(|(x, a)| {
            let since = if a.freq > 0 {
                a.recency as i32
            } else {
                days.as_of_day - days.day_of(x.latest)
            };
            (days.as_of_day - days.day_of(x.first), since)
        })
        .collect();

    // customers below abc_min_sales get no tier and do not count in the total
    let ranked = |m: i64| config.abc_min_sales.is_none_or(|min| money_f(m) >= min);
    let positive: f64 = act[..n_active]
        .iter()
        .filter(|a| ranked(a.money))
        .map(|a| money_f(a.money))
        .filter(|&v| v > 0.0)
        .sum();
    let mut tiers = abc::TierWalk::new(&config.abc_shares, positive);
    let below_min = act[..n_active].iter().filter(|a| !ranked(a.money)).count() as i64;

    // summary and grid
    let scheme = config.scheme.as_ref();
    let seg_table = scheme.and_then(|s| s.score_table());
    let seg_names: Vec<&str> = scheme.map(|s| s.segment_names()).unwrap_or_default();
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
    if let Some(s) = scheme {
        for rr in (1..=5).rev() {
            for fm in 1..=5 {
                // the segment of a cell, when every (f, m) of it has the same one
                let segment = seg_table.as_ref().and_then(|t| {
                    let mut idx = (1..=5)
                        .flat_map(|ff| (1..=5).map(move |mm| (ff, mm)))
                        .filter(|(ff, mm)| (ff + mm + 1) / 2 == fm)
                        .map(|(ff, mm)| t[scheme::code_index(rr, ff, mm)]);
                    let first = idx.next()?;
                    idx.all(|i| i == first)
                        .then(|| s.segment_names()[first as usize].to_string())
                });
                grid.push(GridRow {
                    r: rr,
                    fm,
                    segment,
                    customers: 0,
                    revenue: zero,
                });
            }
        }
    }
    // the metrics the scheme reads: only those are computed for each customer
    let reads: [bool; METRIC_COUNT] =
        std::array::from_fn(|m| scheme.is_some_and(|s| s.reads(ALL_METRICS[m])));
    let mut total = zero;
    // what the rules read of a customer: one set of values, filled anew for each (only the
    // metrics in `reads` are ever set)
    let mut values = Values::default();
    let no_values = Values::default();
    // ABC tiers in monetary order, segments, and the per-segment and per-cell totals
    for (i, (a, s)) in act.iter().zip(scores.iter_mut()).enumerate() {
        let money = to_money(a.money);
        total = money_add(total, money);
        let active = i < n_active;
        s[3] = if active && ranked(a.money) {
            tiers.next(money_f(a.money)) as u8
        } else {
            NO_TIER
        };
        let Some(sch) = scheme else { continue };
        let sc = active.then_some([s[0], s[1], s[2]]);
        let values = if seg_table.is_some() && active {
            &no_values // the table answers from the scores alone
        } else {
            let clv = clv_lookup.and_then(|l| {
                let k = if text {
                    String::from_utf8_lossy(key_bytes(a.key)).into_owned()
                } else {
                    (a.key as i64).to_string()
                };
                l.get(&k).copied()
            });
            let d = (xs.get(i), derived.get(i));
            rule_values(&mut values, a, sc, d, clv, &reads, to_money, money_f);
            &values
        };
        let idx = sch.classify(seg_table.as_ref(), sc, values);
        s[4] = idx + 1;
        let row = &mut summary[idx as usize];
        row.customers += 1;
        row.revenue = money_add(row.revenue, money);
        row.frequency_sum += a.freq as i64;
        row.recency_sum += derived.get(i).map_or(a.recency as i64, |d| d.1 as i64);
        if active {
            let (ri, fi, mi) = (s[0] as i32, s[1] as i32, s[2] as i32);
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
            rows_without_key: unkeyed_rows as i64,
            amount_without_key: to_money(unkeyed_money),
            rows_after_as_of: rows_after as i64,
            excluded_amount: to_money(excluded_money),
            below_min_customers: below_min,
        },
        method: config.method,
        buckets: config.buckets as i32,
        scheme: scheme.map(|s| s.name().to_string()),
        thresholds,
        summary,
        grid,
    };
    let per = if wide { 64 } else { 16 };
    let mut w = Writer::new(ANALYSIS_VERSION, 1024 + n_out * per);
    header.write(&mut w);
    // the customers: active ones first, highest monetary first
    w.u8(text as u8);
    w.u8(exact_scale.is_some() as u8);
    w.u32(exact_scale.unwrap_or(0));
    w.u8(wide as u8);
    w.u8(all as u8);
    w.u32(seg_names.len() as u32);
    for n in &seg_names {
        w.short_bytes(n.as_bytes());
    }
    w.u32(config.abc_names.len() as u32);
    for n in &config.abc_names {
        w.short_bytes(n.as_bytes());
    }
    w.u64(n_out as u64);
    let money_out = |w: &mut Writer, m: i64| {
        if exact_scale.is_some() {
            w.zigzag(m);
        } else {
            w.f64(f64::from_bits(m as u64));
        }
    };
    for (i, (a, s)) in act.iter().zip(&scores).enumerate() {
        if text {
            w.short_bytes(key_bytes(a.key));
        } else {
            w.zigzag(a.key as i64);
        }
        w.varint(a.recency as u64);
        w.varint(a.freq as u64);
        money_out(&mut w, a.money);
        w.u8(s[0]);
        w.u8(s[1]);
        w.u8(s[2]);
        w.u8(s[4]);
        w.u8(s[3]);
        if let (Some(x), Some(d)) = (xs.get(i), derived.get(i)) {
            money_out(&mut w, x.purchases);
            money_out(&mut w, x.before);
            w.varint(x.returns as u64);
            w.varint(x.orders_before as u64);
            write_instant(&mut w, x.first, 0);
            write_instant(&mut w, x.latest, x.first);
            w.zigzag(d.0 as i64);
            w.zigzag(d.1 as i64);
        }
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
    Ok(w.finish_checked())
}

/// What the rules read of one customer (SPEC §9): `sc` its scores when active, `x` and `d`
/// (tenure, days since the last purchase) its full metrics when the state kept them. Only
/// the metrics in `reads` are computed, into `v`: the others are left as they are (NULL,
/// when `v` has only ever been filled by this function).
#[allow(clippy::too_many_arguments)] // one call per customer, from finalize only
fn rule_values(
    v: &mut Values,
    a: &Act,
    sc: Option<[u8; 3]>,
    (x, d): (Option<&Extra>, Option<&(i32, i32)>),
    clv: Option<(f64, Option<f64>)>,
    reads: &[bool; METRIC_COUNT],
    to_money: impl Fn(i64) -> Money,
    money_f: impl Fn(i64) -> f64,
) {
    let v = &mut v.0;
    for (slot, &read) in v.iter_mut().zip(reads) {
        if read {
            *slot = None;
        }
    }
    let active = a.freq > 0;
    let mut set = |m: Metric, x: &dyn Fn() -> f64| {
        if reads[m as usize] {
            v[m as usize] = Some(x());
        }
    };
    if active {
        set(Metric::RecencyDays, &|| a.recency as f64);
        set(Metric::DaysSinceLast, &|| a.recency as f64);
    }
    set(Metric::Frequency, &|| a.freq as f64);
    set(Metric::Monetary, &|| money_f(a.money));
    set(Metric::Active, &|| if active { 1.0 } else { 0.0 });
    if let Some((p_alive, value)) = clv {
        set(Metric::PAlive, &|| p_alive);
        if let Some(value) = value {
            set(Metric::Clv, &|| value);
        }
    }
    if let Some(s) = sc {
        set(Metric::R, &|| s[0] as f64);
        set(Metric::F, &|| s[1] as f64);
        set(Metric::M, &|| s[2] as f64);
        set(Metric::Fm, &|| (s[1] + s[2]).div_ceil(2) as f64);
    }
    if let (Some(x), Some(d)) = (x, d) {
        let purchases = || money_f(x.purchases);
        let returned = || money_sub(to_money(x.purchases), to_money(a.money)).to_f64();
        if a.freq > 0 {
            set(Metric::Aov, &|| purchases() / a.freq as f64);
        }
        set(Metric::Returns, &|| x.returns as f64);
        set(Metric::ReturnAmount, &returned);
        set(Metric::ReturnRate, &|| {
            let p = purchases();
            if p > 0.0 {
                returned() / p
            } else {
                0.0
            }
        });
        set(Metric::TenureDays, &|| d.0 as f64);
        set(Metric::DaysSinceLast, &|| d.1 as f64);
        set(Metric::LifetimeOrders, &|| {
            a.freq as f64 + x.orders_before as f64
        });
        set(Metric::LifetimeValue, &|| {
            money_add(to_money(a.money), to_money(x.before)).to_f64()
        });
    }
}

fn money_sub(a: Money, b: Money) -> Money {
    match (a, b) {
        (Money::Exact(x, s), Money::Exact(y, _)) => Money::Exact(x - y, s),
        (Money::Float(x), Money::Float(y)) => Money::Float(x - y),
        (a, _) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::{analyze, config, days, dec, DAY};
    use crate::analysis::Key;

    #[test]
    fn money_order_is_a_stable_sort_by_activity_and_monetary() {
        // amounts within 32 bits of each other (the narrow keys), far apart (the wide
        // ones), negative ones, float bits; equal amounts keep their places
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (case, spread) in [10i64, 5_000_000_000, i64::MAX / 4, -1]
            .into_iter()
            .enumerate()
        {
            let act: Vec<Act> = (0..3_000)
                .map(|i| {
                    let r = next();
                    let money = match spread {
                        -1 => ((r % 2_000) as f64 - 1_000.5).to_bits() as i64,
                        s => (r % (2 * s as u64)) as i64 - s,
                    };
                    Act {
                        key: i,
                        money,
                        recency: 0,
                        freq: (r >> 60) as u32 % 3,
                    }
                })
                .collect();
            let ord = |m: i64| if spread == -1 { float_order(m) } else { m };
            let mut want: Vec<u32> = (0..act.len() as u32).collect();
            want.sort_by_key(|&i| {
                let a = &act[i as usize];
                (a.freq == 0, std::cmp::Reverse(ord(a.money)))
            });
            assert_eq!(money_order(&act, ord), want, "case {case}");
        }
    }

    #[test]
    fn day_of_equals_the_binary_search_on_days_of_any_length() {
        const H: i64 = 3_600_000_000;
        // days of 24 hours with a 23- and a 25-hour day, and a zone that moved by 10 hours
        let mut midnights = vec![0i64];
        for d in 1..400 {
            let len = match d {
                90 => 23 * H,
                300 => 25 * H,
                350 => 14 * H,
                _ => 24 * H,
            };
            midnights.push(midnights[d - 1] + len);
        }
        let days = Days {
            first_day: 1000,
            midnights: midnights.clone(),
            as_of_day: 1398,
        };
        let naive = |ts: i64| 1000 + midnights.partition_point(|&m| m <= ts) as i32 - 1;
        let last = *midnights.last().unwrap();
        let mut ts = -3 * 24 * H - 1;
        while ts < last + 3 * 24 * H {
            for t in [ts - 1, ts, ts + 1] {
                assert_eq!(days.day_of(t), naive(t), "at {t}");
            }
            ts += H / 2;
        }
        for t in [i64::MIN, i64::MAX, 0, last] {
            assert_eq!(days.day_of(t), naive(t), "at {t}");
        }
        let empty = Days {
            first_day: 5,
            midnights: vec![],
            as_of_day: 5,
        };
        assert_eq!(empty.day_of(0), 4);
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
}
