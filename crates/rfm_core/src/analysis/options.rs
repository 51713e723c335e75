//! The options of an analysis resolved to numbers ([`Config`]), their validation, and
//! their encoding in the aggregate state.

use super::{read_opt, write_opt};
use crate::abc;
use crate::codec::{Reader, Writer};
use crate::error::{Result, RfmError};
use crate::rules::{Population, RuleScheme};
use crate::scheme::{self, Segmenter};
use crate::score;

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

    pub(super) fn from_u8(v: u8) -> Option<Self> {
        [Method::Quantile, Method::Ntile, Method::Fixed]
            .into_iter()
            .find(|m| *m as u8 == v)
    }
}

/// The customer-lifetime-value settings of an analysis whose rules read `p_alive` or `clv`
/// (or that asks for them with the option `"clv"`): the models of SPEC §12 are fitted on
/// the analysis' own rows up to `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    /// Days in a time unit (1 day, 7 week, 30 month).
    pub unit_days: u32,
    /// Time units ahead that `clv` sums over.
    pub horizon: f64,
    pub discount_rate: f64,
    pub penalizer: f64,
}

impl Default for ClvOptions {
    /// Weeks, a year ahead, no discount, no penalizer.
    fn default() -> Self {
        ClvOptions {
            unit_days: 7,
            horizon: 52.0,
            discount_rate: 0.0,
            penalizer: 0.0,
        }
    }
}

impl ClvOptions {
    /// The most time units `horizon` may be (the CLV sums one term per unit).
    pub const MAX_HORIZON: f64 = crate::clv::MAX_HORIZON;

    pub fn validate(&self) -> Result<()> {
        if !(self.horizon.is_finite() && (0.0..=Self::MAX_HORIZON).contains(&self.horizon)) {
            return Err(RfmError::out_of_range(format!(
                "option \"clv.horizon\" must be between 0 and {} time units, got {}",
                Self::MAX_HORIZON,
                self.horizon
            )));
        }
        if !(self.discount_rate.is_finite() && self.discount_rate > -1.0) {
            return Err(RfmError::invalid(format!(
                "option \"clv.discount_rate\" must be greater than -1, got {}",
                self.discount_rate
            )));
        }
        if !crate::clv::discount_allowed(self.horizon, self.discount_rate) {
            return Err(RfmError::invalid(format!(
                "option \"clv.discount_rate\" is too close to -1 for a horizon of {} time units, got {}",
                self.horizon, self.discount_rate
            ))
            .with_hint(format!(
                "The discount factor (1 + discount_rate)^-horizon may be at most {:e}.",
                crate::clv::MAX_DISCOUNT_FACTOR
            )));
        }
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(RfmError::invalid(format!(
                "option \"clv.penalizer\" must be 0 or more, got {}",
                self.penalizer
            )));
        }
        Ok(())
    }
}

/// The three metrics, in the order they are reported.
pub const METRICS: [&str; 3] = ["recency", "frequency", "monetary"];

/// The longest window (in whole seconds) that a [`Stamp`](super::state::Stamp) can cover.
pub(super) const MAX_WINDOW_SECONDS: i64 = u32::MAX as i64 - 2;
pub(super) const MICROS: i64 = 1_000_000;

/// Everything the options say, resolved to numbers (timestamps are PostgreSQL
/// microseconds since 2000-01-01 UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub as_of: i64,
    /// Whether `as_of` was left to its default (the transaction's start): then old data
    /// gets a NOTICE (SPEC §2).
    pub as_of_default: bool,
    /// Rows count when `window_start < ordered_at <= as_of`.
    pub window_start: i64,
    /// The period as text, for the overview.
    pub period: String,
    pub buckets: usize,
    /// `None` when the user asked for no segments (`"scheme": null`).
    pub scheme: Option<Segmenter>,
    /// The option `"metrics": true`: compute the customer metrics of SPEC §9 even when the
    /// scheme does not need them.
    pub metrics: bool,
    pub method: Method,
    /// Fixed thresholds for recency, frequency, monetary (method `fixed`).
    pub fixed: Option<[Vec<f64>; 3]>,
    pub abc_shares: Vec<f64>,
    pub abc_names: Vec<String>,
    /// Customers whose monetary is below this are left out of the ABC ranking: they get no
    /// tier and their monetary does not count in the total the shares apply to.
    pub abc_min_sales: Option<f64>,
    /// Whether the value keeps the keys of the excluded customers ([`Analysis::excluded_keys`]).
    ///
    /// [`Analysis::excluded_keys`]: super::Analysis::excluded_keys
    pub keep_excluded: bool,
    /// Customer-lifetime-value settings given with the option `"clv"` (None: defaults, used
    /// only when the scheme reads `p_alive` or `clv`).
    pub clv: Option<ClvOptions>,
}

impl Config {
    /// The CLV settings when the analysis computes `p_alive` and `clv`: asked for by the
    /// option `"clv"`, or needed by the scheme (then with the defaults).
    pub fn clv_settings(&self) -> Option<ClvOptions> {
        match (
            &self.clv,
            self.scheme.as_ref().is_some_and(|s| s.needs_clv()),
        ) {
            (Some(c), _) => Some(c.clone()),
            (None, true) => Some(ClvOptions::default()),
            (None, false) => None,
        }
    }

    /// Whether the state keeps the full customer metrics (SPEC §9): asked for by the
    /// options or needed by the scheme.
    pub fn wide(&self) -> bool {
        self.metrics || self.scheme.as_ref().is_some_and(|s| s.needs_metrics())
    }

    /// Who is output: a scheme with population `all` outputs every customer with a purchase
    /// at or before `as_of`; otherwise only the active customers.
    pub fn population(&self) -> Population {
        self.scheme
            .as_ref()
            .map_or(Population::Active, |s| s.population())
    }

    /// Fixed thresholds that leave a score empty whatever the data (SPEC §2, issue: "fixed
    /// thresholds that the window cannot reach"): recency is at most `max_recency` days in
    /// the window and frequency is at least 1. One message per metric, naming the scores.
    pub fn unreachable_fixed(&self, max_recency: i32) -> Vec<String> {
        let Some(f) = &self.fixed else {
            return Vec::new();
        };
        let n = self.buckets;
        let mut out = Vec::new();
        // recency: score s covers days > t[n - 1 - s] (strictly), so scores whose lower
        // bound is at least max_recency are empty
        let empty: Vec<String> = (1..=n)
            .filter(|&s| {
                let c = n - s; // thresholds below the score's range
                c > 0 && f[0][c - 1] >= max_recency as f64
            })
            .map(|s| s.to_string())
            .collect();
        if !empty.is_empty() {
            out.push(format!(
                "fixed recency thresholds leave score {} empty: in a window of {} recency is at most {max_recency} days",
                empty.join(", "),
                self.period
            ));
        }
        // frequency: score s (at least t[s - 2]) covers values below t[s - 1]
        let empty: Vec<String> = (1..n)
            .filter(|&s| f[1][s - 1] <= 1.0)
            .map(|s| s.to_string())
            .collect();
        if !empty.is_empty() {
            out.push(format!(
                "fixed frequency thresholds leave score {} empty: an active customer has at least 1 purchase",
                empty.join(", ")
            ));
        }
        out
    }

    /// Checks the combination of settings (schemes need 5 buckets; fixed needs thresholds).
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.scheme {
            if self.buckets != scheme::SCHEME_BUCKETS as usize && s.uses_scores() {
                return Err(RfmError::invalid(format!(
                    "scheme \"{}\" is defined on 5 buckets, but buckets is {}",
                    s.name(),
                    self.buckets
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
        if let Some(c) = &self.clv {
            c.validate()?;
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
                        .map_err(|e| RfmError {
                            message: format!("thresholds.{metric}: {}", e.message),
                            ..e
                        })?;
                }
                Ok(())
            }
            (None, _) => Ok(()),
        }
    }

    pub(super) fn write(&self, w: &mut Writer) {
        w.i64(self.as_of);
        w.u8(self.as_of_default as u8);
        w.i64(self.window_start);
        w.bytes(self.period.as_bytes());
        w.u32(self.buckets as u32);
        match &self.scheme {
            None => w.u8(0),
            Some(Segmenter::Rules {
                name,
                rules,
                builtin: false,
            }) => {
                // a user's scheme travels with its document
                w.u8(2);
                w.bytes(name.as_bytes());
                w.bytes(rules.to_json().to_string().as_bytes());
            }
            Some(s) => {
                w.u8(1);
                w.bytes(s.name().as_bytes());
            }
        }
        w.u8(self.metrics as u8);
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
        match &self.clv {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.u32(c.unit_days);
                w.f64(c.horizon);
                w.f64(c.discount_rate);
                w.f64(c.penalizer);
            }
        }
    }

    pub(super) fn read(r: &mut Reader) -> Option<Config> {
        let as_of = r.i64()?;
        let as_of_default = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let window_start = r.i64()?;
        let period = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let buckets = r.u32()? as usize;
        let scheme = match r.u8()? {
            0 => None,
            1 => Some(Segmenter::builtin(std::str::from_utf8(r.bytes()?).ok()?).ok()?),
            2 => {
                let name = std::str::from_utf8(r.bytes()?).ok()?;
                let doc = std::str::from_utf8(r.bytes()?).ok()?;
                let rules = RuleScheme::parse_text(name, doc).ok()?;
                Some(Segmenter::user(name, rules).ok()?)
            }
            _ => return None,
        };
        let metrics = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
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
        let clv = match r.u8()? {
            0 => None,
            1 => Some(ClvOptions {
                unit_days: r.u32()?,
                horizon: r.f64()?,
                discount_rate: r.f64()?,
                penalizer: r.f64()?,
            }),
            _ => return None,
        };
        // the horizon and discount bound the work of the final function: never taken unchecked
        if let Some(c) = &clv {
            c.validate().ok()?;
        }
        Some(Config {
            as_of,
            as_of_default,
            window_start,
            period,
            buckets,
            scheme,
            metrics,
            method,
            fixed,
            abc_shares,
            abc_names,
            abc_min_sales,
            keep_excluded,
            clv,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::testing::config;

    #[test]
    fn clv_horizons_and_discount_rates_are_bounded() {
        let ok = ClvOptions::default();
        assert!(ok.validate().is_ok());
        let at = |horizon: f64, discount_rate: f64| ClvOptions {
            horizon,
            discount_rate,
            ..ClvOptions::default()
        };
        assert!(at(ClvOptions::MAX_HORIZON, 0.001).validate().is_ok());
        let e = at(ClvOptions::MAX_HORIZON + 1.0, 0.0)
            .validate()
            .unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::OutOfRange);
        assert!(e.message.contains("\"clv.horizon\""), "{}", e.message);
        // (1 + d)^-horizon would pass 1e300: refused, naming the option
        let e = at(520.0, -0.9).validate().unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::InvalidParameter);
        assert!(e.message.contains("\"clv.discount_rate\""), "{}", e.message);
        assert!(at(52.0, -0.9).validate().is_ok());
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
    fn fixed_thresholds_the_window_cannot_reach_are_named() {
        let mut c = config(Method::Fixed);
        c.fixed = Some([
            vec![30.0, 90.0, 180.0, 365.0],
            vec![1.0, 3.0, 5.0, 10.0],
            vec![100.0, 500.0, 1000.0, 2000.0],
        ]);
        // a 12-month window: recency is at most 365 days, so score 1 (over 365) is empty;
        // frequency score 1 (below 1 purchase) too
        assert_eq!(
            c.unreachable_fixed(365),
            [
                "fixed recency thresholds leave score 1 empty: in a window of 12 months recency is at most 365 days",
                "fixed frequency thresholds leave score 1 empty: an active customer has at least 1 purchase"
            ]
        );
        assert_eq!(c.unreachable_fixed(366).len(), 1);
        c.fixed.as_mut().unwrap()[0] = vec![30.0, 90.0, 400.0, 500.0];
        assert!(c.unreachable_fixed(365)[0]
            .starts_with("fixed recency thresholds leave score 1, 2 empty"));
        assert!(config(Method::Quantile).unreachable_fixed(10).is_empty());
    }
}
