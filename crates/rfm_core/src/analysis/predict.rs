//! `p_alive` and `clv` of every customer of an analysis whose rules read them (SPEC §12):
//! the models fitted on the analysis' own rows, evaluated as `rfm.clv_customers` does.

use super::options::ClvOptions;
use crate::clv::{self, ClvModel};
use crate::error::Result;
use std::collections::HashMap;

/// The customers' `(p_alive, clv)` by key text (a bigint key in decimal); `clv` is None where
/// the spend model leaves the customer out (a repeat spend that is not positive).
pub type ClvLookup = HashMap<String, (f64, Option<f64>)>;

/// Evaluates a fitted model (the value of `rfm_core::clv::fit`) for every customer.
pub fn clv_metrics(model: &[u8], o: &ClvOptions) -> Result<ClvLookup> {
    let m = ClvModel::read(model)?;
    let unit = m.info.config.unit_days as f64;
    let bg = m.info.bgnbd.params;
    let gg = m.info.spend.as_ref().map(|s| s.fit.params);
    let mut alive: Vec<Option<f64>> = vec![None; m.triples.len()];
    let mut factors: HashMap<(u32, u32), f64> = HashMap::new();
    let mut out = HashMap::new();
    for row in m.rows(model) {
        crate::interrupt::check_interrupts();
        let c = row?;
        let (t_x, t) = (c.t_x_days as f64 / unit, c.t_days as f64 / unit);
        let pa = *alive[c.triple].get_or_insert_with(|| clv::p_alive(&bg, c.x, t_x, t));
        let factor = *factors
            .entry((c.x, c.t_days))
            .or_insert_with(|| clv::alive_clv_factor(&bg, c.x, t, o.horizon, o.discount_rate))
            * pa;
        let bad_spend = c.avg_spend.is_some_and(|s| s <= 0.0);
        let spend = gg
            .filter(|_| !bad_spend)
            .and_then(|g| clv::expected_avg_spend(&g, c.x, c.avg_spend.unwrap_or(0.0)));
        let clv = spend.map(|s| s * factor);
        if clv.is_some_and(|v| !v.is_finite()) {
            return Err(clv::clv_out_of_range(&c.key));
        }
        out.insert(c.key, (pa, clv));
    }
    Ok(out)
}
