//! The `rfm.clv_model` value: the options, both fits and every customer's inputs, so that
//! `rfm.clv_customers` can predict without the transactions. Reading is total: bytes that
//! are not a value of ours are rejected (22P03) before anything their counts claim is
//! allocated.
//!
//! Layout (version 1): config; BG/NBD fit; spend fit (optional); customer counts; key kind;
//! the distinct (x, t_x, T) in days; then per customer its key, the index of its triple and
//! the mean spend of its repeat days (NaN without repeat days).

use super::model::{fit_bgnbd, fit_gamma_gamma, BgNbd, Fit, GammaGamma, Triple};
use super::summary::{CustomerSummary, KeyValue};
use super::ClvConfig;
use crate::codec::{Reader, Writer};
use crate::error::{ErrorKind, Result, RfmError};

const VALUE_VERSION: u8 = 2;

/// The spend model's fit and the repeat customers it left out (mean spend not positive).
#[derive(Debug, Clone, PartialEq)]
pub struct SpendFit {
    pub fit: Fit<GammaGamma>,
    pub excluded: u64,
}

/// Fit information of a model value (without its customers).
#[derive(Debug, Clone, PartialEq)]
pub struct FitInfo {
    pub config: ClvConfig,
    pub bgnbd: Fit<BgNbd>,
    pub spend: Option<SpendFit>,
    /// Customers with a purchase at or before as_of.
    pub customers: u64,
    /// Of them, those with a repeat purchase.
    pub repeat_customers: u64,
}

/// One customer of a model value, in days.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvCustomerRow {
    /// The key as text (a bigint key in decimal).
    pub key: String,
    pub x: u32,
    pub t_x_days: u32,
    pub t_days: u32,
    /// Mean of the day totals of the repeat days; `None` without repeat purchases.
    pub avg_spend: Option<f64>,
    /// Index of the customer's (x, t_x, T) among the value's distinct triples.
    pub triple: usize,
}

/// A model value, read.
pub struct ClvModel {
    pub info: FitInfo,
    /// Distinct (x, t_x days, T days).
    pub triples: Vec<(u32, u32, u32)>,
    text_keys: bool,
    n: usize,
    /// Where the customers start in the value.
    customers_at: usize,
}

/// The customers of a model value, read one at a time from a copy of its bytes.
pub struct ClvRows {
    buf: Vec<u8>,
    pos: usize,
    left: usize,
    text_keys: bool,
    triples: Vec<(u32, u32, u32)>,
    failed: bool,
}

fn write_fit<P>(w: &mut Writer, f: &Fit<P>, params: &[f64]) {
    for v in params {
        w.f64(*v);
    }
    for v in &f.std_errors {
        w.f64(*v);
    }
    w.f64(f.log_likelihood);
    w.u32(f.iterations);
    w.u64(f.customers);
}

fn read_fit<const N: usize>(r: &mut Reader) -> Option<([f64; N], Fit<()>)> {
    let mut p = [0.0; N];
    for v in p.iter_mut() {
        *v = r.f64()?;
        if !(v.is_finite() && *v > 0.0) {
            return None;
        }
    }
    let mut se = Vec::with_capacity(N);
    for _ in 0..N {
        se.push(r.f64()?);
    }
    Some((
        p,
        Fit {
            params: (),
            std_errors: se,
            log_likelihood: r.f64()?,
            iterations: r.u32()?,
            customers: r.u64()?,
        },
    ))
}

fn with<P>(f: Fit<()>, params: P) -> Fit<P> {
    Fit {
        params,
        std_errors: f.std_errors,
        log_likelihood: f.log_likelihood,
        iterations: f.iterations,
        customers: f.customers,
    }
}

/// Fits both models to the customers (ordered by key, from [`Summary::finish`]) and
/// encodes the `rfm.clv_model` value.
///
/// [`Summary::finish`]: super::Summary::finish
pub fn fit(config: &ClvConfig, customers: &[CustomerSummary], text_keys: bool) -> Result<Vec<u8>> {
    let unit = config.unit_days as f64;
    // distinct (x, t_x, T), their counts, and each customer's index among them
    let mut order: Vec<(u32, u32, u32, u32)> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.x, c.t_x, c.t, i as u32))
        .collect();
    order.sort_unstable();
    let mut triples: Vec<(u32, u32, u32)> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    let mut triple_of = vec![0u32; customers.len()];
    for &(x, tx, t, i) in &order {
        if triples.last() != Some(&(x, tx, t)) {
            triples.push((x, tx, t));
            weights.push(0.0);
        }
        if let Some(w) = weights.last_mut() {
            *w += 1.0;
        }
        triple_of[i as usize] = (triples.len() - 1) as u32;
    }
    drop(order);
    let model_triples: Vec<Triple> = triples
        .iter()
        .zip(&weights)
        .map(|(&(x, tx, t), &w)| Triple {
            x,
            t_x: tx as f64 / unit,
            t: t as f64 / unit,
            weight: w,
        })
        .collect();
    let bg = fit_bgnbd(&model_triples, config.penalizer)?;
    let repeat: Vec<(u32, f64)> = customers
        .iter()
        .filter_map(|c| c.avg_spend().map(|m| (c.x, m)))
        .collect();
    let repeat_customers = repeat.len() as u64;
    let spend = if config.spend_model {
        let positive: Vec<(u32, f64)> = repeat.iter().copied().filter(|r| r.1 > 0.0).collect();
        let excluded = repeat_customers - positive.len() as u64;
        Some(SpendFit {
            fit: fit_gamma_gamma(&positive, config.penalizer)?,
            excluded,
        })
    } else {
        None
    };
    let mut w = Writer::new(
        VALUE_VERSION,
        64 + triples.len() * 12 + customers.len() * 24,
    );
    config.write(&mut w);
    let b = &bg.params;
    write_fit(&mut w, &bg, &[b.r, b.alpha, b.a, b.b]);
    match &spend {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            let g = &s.fit.params;
            write_fit(&mut w, &s.fit, &[g.p, g.q, g.gamma]);
            w.u64(s.excluded);
        }
    }
    w.u64(customers.len() as u64);
    w.u64(repeat_customers);
    w.u8(text_keys as u8);
    w.u64(triples.len() as u64);
    for &(x, tx, t) in &triples {
        w.u32(x);
        w.u32(tx);
        w.u32(t);
    }
    for (c, &i) in customers.iter().zip(&triple_of) {
        match &c.key {
            KeyValue::Int(k) => w.zigzag(*k),
            KeyValue::Text(t) => w.short_bytes(t),
        }
        w.varint(i as u64);
        w.f64(c.avg_spend().unwrap_or(f64::NAN));
    }
    let out = w.finish_checked();
    if out.len() >= (1 << 30) - 1024 {
        return Err(RfmError::new(
            ErrorKind::ProgramLimit,
            format!(
                "the model of {} customers does not fit in one value (1 GB)",
                customers.len()
            ),
        )
        .with_hint(
            "Filter the rows with WHERE, or partition the work, for example GROUP BY region.",
        ));
    }
    Ok(out)
}

fn corrupt() -> RfmError {
    RfmError::new(ErrorKind::InvalidBinary, "invalid rfm.clv_model value")
        .with_hint("Pass a value made by rfm.clv_fit.")
}

impl ClvModel {
    /// Reads the header and the triples; the customers are read by [`ClvModel::rows`].
    pub fn read(bytes: &[u8]) -> Result<ClvModel> {
        Self::read_opt(bytes).ok_or_else(corrupt)
    }

    fn read_opt(bytes: &[u8]) -> Option<ClvModel> {
        // the value without its checksum, when the checksum matches
        let bytes = crate::codec::verified(bytes)?;
        let mut r = Reader::new(bytes, VALUE_VERSION)?;
        let config = ClvConfig::read(&mut r)?;
        let (p, f) = read_fit::<4>(&mut r)?;
        let bgnbd = with(
            f,
            BgNbd {
                r: p[0],
                alpha: p[1],
                a: p[2],
                b: p[3],
            },
        );
        let spend = match r.u8()? {
            0 => None,
            1 => {
                let (p, f) = read_fit::<3>(&mut r)?;
                Some(SpendFit {
                    fit: with(
                        f,
                        GammaGamma {
                            p: p[0],
                            q: p[1],
                            gamma: p[2],
                        },
                    ),
                    excluded: r.u64()?,
                })
            }
            _ => return None,
        };
        let customers = r.u64()?;
        let repeat_customers = r.u64()?;
        let text_keys = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let u = r.count_u64(12)?;
        let mut triples = Vec::with_capacity(u);
        for _ in 0..u {
            triples.push((r.u32()?, r.u32()?, r.u32()?));
        }
        // each customer takes at least 10 bytes (a key, an index, a float)
        let n = r.fits(customers, 10)?;
        Some(ClvModel {
            info: FitInfo {
                config,
                bgnbd,
                spend,
                customers,
                repeat_customers,
            },
            triples,
            text_keys,
            n,
            customers_at: bytes.len() - r.rest().len(),
        })
    }

    /// Every customer, in key order, from a copy of `bytes` (the value this model was read
    /// from); an error at the first damaged one.
    pub fn rows(self, bytes: &[u8]) -> ClvRows {
        ClvRows {
            // the checksum (the last 4 bytes, checked by read) is not a customer
            buf: bytes[..bytes.len().saturating_sub(4)]
                [self.customers_at.min(bytes.len().saturating_sub(4))..]
                .to_vec(),
            pos: 0,
            left: self.n,
            text_keys: self.text_keys,
            triples: self.triples,
            failed: false,
        }
    }
}

impl ClvRows {
    fn read_row(&mut self) -> Option<ClvCustomerRow> {
        let mut r = Reader::raw(&self.buf[self.pos..]);
        let key = if self.text_keys {
            String::from_utf8_lossy(r.short_bytes()?).into_owned()
        } else {
            r.zigzag()?.to_string()
        };
        let i = usize::try_from(r.varint()?).ok()?;
        let &(x, t_x_days, t_days) = self.triples.get(i)?;
        let m = r.f64()?;
        self.pos = self.buf.len() - r.rest().len();
        Some(ClvCustomerRow {
            key,
            x,
            t_x_days,
            t_days,
            avg_spend: (x > 0).then_some(m),
            triple: i,
        })
    }
}

impl Iterator for ClvRows {
    type Item = Result<ClvCustomerRow>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.pos == self.buf.len() {
                return None;
            }
            self.failed = true;
            return Some(Err(corrupt()));
        }
        self.left -= 1;
        match self.read_row() {
            Some(r) => Some(Ok(r)),
            None => {
                self.failed = true;
                Some(Err(corrupt()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::config;
    use super::*;

    /// Customers of a simulated shop: Poisson purchases while alive, drop-out after a
    /// purchase, rates and drop-out chances from a few classes (a seeded generator).
    pub(crate) fn customers() -> Vec<CustomerSummary> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut out = Vec::new();
        for i in 0..2000i64 {
            let lambda = [0.01, 0.03, 0.08, 0.2][(uniform() * 4.0) as usize];
            let p = [0.05, 0.2, 0.5][(uniform() * 3.0) as usize];
            let t = 20 + (uniform() * 300.0) as u32;
            let spend = [8.0, 20.0, 35.0, 90.0][(uniform() * 4.0) as usize];
            let (mut day, mut last, mut x, mut total) = (0.0f64, 0u32, 0u32, 0.0);
            loop {
                if x > 0 && uniform() < p {
                    break; // dropped out after the last purchase
                }
                day += -uniform().max(1e-12).ln() / lambda;
                if day.floor() as u32 > t {
                    break;
                }
                if day.floor() as u32 > last {
                    x += 1;
                    last = day.floor() as u32;
                    total += spend * (0.2 + 1.6 * uniform());
                } else if x == 0 {
                    x = 0;
                }
            }
            out.push(CustomerSummary {
                key: KeyValue::Int(i),
                x,
                t_x: last,
                t,
                repeat_total: total,
            });
        }
        out
    }

    #[test]
    fn a_value_round_trips() {
        let c = config(400, 7);
        let bytes = fit(&c, &customers(), false).unwrap();
        let m = ClvModel::read(&bytes).unwrap();
        assert_eq!(m.info.customers, 2000);
        assert!(m.info.spend.is_some());
        let rows: Vec<_> = m.rows(&bytes).collect::<Result<_>>().unwrap();
        assert_eq!(rows.len(), 2000);
        assert_eq!(rows[5].key, "5");
        // every truncation is rejected, never a panic
        for cut in (0..bytes.len())
            .step_by(61)
            .chain(bytes.len() - 40..bytes.len())
        {
            if let Ok(m) = ClvModel::read(&bytes[..cut]) {
                assert!(m.rows(&bytes[..cut]).any(|r| r.is_err()));
            }
        }
    }

    /// Every single-bit change of a real model is refused (22P03) when the model is read:
    /// none is read with changed parameters or customers.
    #[test]
    fn every_bit_flip_of_a_model_is_refused() {
        let c = config(400, 7);
        let mut few = customers();
        few.truncate(60);
        let bytes = fit(&c, &few, false).unwrap();
        assert!(ClvModel::read(&bytes).is_ok());
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut v = bytes.clone();
                v[i] ^= 1 << bit;
                let e = ClvModel::read(&v)
                    .err()
                    .expect("a changed model is refused");
                assert_eq!(e.kind.sqlstate(), "22P03", "byte {i} bit {bit}");
            }
        }
    }
}
