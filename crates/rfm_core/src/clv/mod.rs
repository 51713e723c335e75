//! Customer lifetime value (SPEC §12): the BG/NBD purchase model (Fader, Hardie & Lee
//! 2005, "Counting your customers the easy way") and the Gamma-Gamma spend model (Fader,
//! Hardie & Lee 2005, "RFM and CLV"), fitted by maximum likelihood where the transactions
//! live.
//!
//! Split by concern: the options ([`ClvConfig`]) here; the aggregate state that collects
//! each customer's purchase days in one pass and its encoding in `summary`; the
//! log-likelihoods, their gradients and the fit in `model`; the predictions (P(alive),
//! conditional expected purchases, expected spend, CLV) in `predict`; and the
//! `rfm.clv_model` value in `value`.

mod model;
mod predict;
mod summary;
mod value;

pub use model::{fit_bgnbd, fit_gamma_gamma, BgNbd, Fit, GammaGamma, Triple};
pub use predict::{
    alive_clv_factor, alive_forecast, alive_purchases, clv_factor, clv_out_of_range,
    discount_allowed, expected_avg_spend, expected_purchases, p_alive, MAX_DISCOUNT_FACTOR,
    MAX_HORIZON,
};
pub use summary::{CustomerSummary, KeyValue, LocalDays, Summary};
pub use value::{fit, ClvCustomerRow, ClvModel, ClvRows, FitInfo, SpendFit};

use crate::codec::{Reader, Writer};
use crate::error::{Result, RfmError};

/// One day in PostgreSQL microseconds.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// The options of `rfm.clv_fit`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvConfig {
    /// End of the calibration period (PostgreSQL microseconds): rows after it are ignored.
    pub as_of: i64,
    /// `as_of::date` in the session time zone (days since 2000-01-01).
    pub as_of_day: i32,
    /// Days in one time unit: 1 (`day`), 7 (`week`) or 30 (`month`).
    pub unit_days: u32,
    /// L2 penalty on the parameters (>= 0).
    pub penalizer: f64,
    /// Whether the Gamma-Gamma spend model is fitted.
    pub spend_model: bool,
}

impl ClvConfig {
    /// The name of the time unit.
    pub fn time_unit(&self) -> &'static str {
        match self.unit_days {
            1 => "day",
            7 => "week",
            _ => "month",
        }
    }

    /// Days in a time unit named `name`.
    pub fn unit_days_of(name: &str) -> Option<u32> {
        match name {
            "day" => Some(1),
            "week" => Some(7),
            "month" => Some(30),
            _ => None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.penalizer.is_finite() && self.penalizer >= 0.0) {
            return Err(RfmError::invalid(format!(
                "option \"penalizer\" must be a finite number >= 0, got {}",
                self.penalizer
            )));
        }
        if ![1, 7, 30].contains(&self.unit_days) {
            return Err(RfmError::invalid(
                "option \"time_unit\" must be day, week or month",
            ));
        }
        Ok(())
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.i64(self.as_of);
        w.u32(self.as_of_day as u32);
        w.u32(self.unit_days);
        w.f64(self.penalizer);
        w.u8(self.spend_model as u8);
    }

    pub(crate) fn read(r: &mut Reader) -> Option<ClvConfig> {
        let c = ClvConfig {
            as_of: r.i64()?,
            as_of_day: r.u32()? as i32,
            unit_days: r.u32()?,
            penalizer: r.f64()?,
            spend_model: r.u8()? != 0,
        };
        c.validate().ok()?;
        Some(c)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A configuration with `as_of` at the end of day `as_of_day` (UTC days).
    pub fn config(as_of_day: i32, unit_days: u32) -> ClvConfig {
        ClvConfig {
            as_of: (as_of_day as i64 + 1) * DAY_MICROS - 1,
            as_of_day,
            unit_days,
            penalizer: 0.0,
            spend_model: true,
        }
    }
}
