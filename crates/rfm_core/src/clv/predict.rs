//! Predictions of a fitted model for one customer (x repeat purchases, t_x and T in time
//! units): P(alive), the conditional expected number of purchases in the next t units, the
//! expected average spend, and the discounted CLV factor. The formulas are the papers' and
//! lifetimes'.
//!
//! The expected purchases need the Gauss hypergeometric function
//! 2F1(r+x, b+x; a+b+x-1; z) with z = t/(alpha+T+t), multiplied by (1-z)^(r+x). Euler's
//! transformation turns the product into (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
//! series has small parameters and terms that shrink from the first (no overflow for
//! customers with thousands of purchases, where the direct series' terms would pass
//! 10^308 before they fall), and whose factor (a-1) cancels the paper's 1/(a-1) exactly,
//! so a = 1 is no singularity. This one series is all that is needed, so it is written
//! here rather than taken from a general special-function library.

use super::{BgNbd, GammaGamma};

/// ln of the odds that a customer with x > 0 has dropped out.
fn log_dropout_odds(p: &BgNbd, x: u32, t_x: f64, t: f64) -> f64 {
    let xf = x as f64;
    (p.r + xf) * ((p.alpha + t) / (p.alpha + t_x)).ln() + (p.a / (p.b + xf - 1.0)).ln()
}

/// The probability that the customer is still alive at T.
pub fn p_alive(p: &BgNbd, x: u32, t_x: f64, t: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    let ld = log_dropout_odds(p, x, t_x, t);
    if ld > 0.0 {
        let e = (-ld).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + ld.exp())
    }
}

/// Σ_{n≥1} (c-A)_n (a)_{n-1} / ((c)_n n!) z^n, for 0 <= z < 1.
fn tail_series(c_minus_a: f64, a: f64, c: f64, z: f64) -> f64 {
    let mut term = c_minus_a / c * z;
    let mut sum = term;
    let mut n = 1.0;
    while n < 1e6 {
        let ratio = (c_minus_a + n) * (a + n - 1.0) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        n += 1.0;
        if term.abs() <= 1e-17 * sum.abs() && ratio.abs() < 1.0 || term == 0.0 {
            break;
        }
    }
    sum
}

/// The expected number of purchases in the next `horizon` time units of a customer who is
/// alive, with x repeat purchases and age T: the conditional expectation without its
/// P(alive) factor. It does not depend on t_x, so customers who differ only in t_x share it.
pub fn alive_purchases(p: &BgNbd, x: u32, t: f64, horizon: f64) -> f64 {
    if horizon <= 0.0 {
        return 0.0;
    }
    let xf = x as f64;
    let big_a = p.r + xf;
    let c = p.a + p.b + xf - 1.0;
    let u = horizon / (p.alpha + t);
    let z = u / (1.0 + u);
    let ln_1mz = -u.ln_1p();
    let am1 = p.a - 1.0;
    // [1 - (1-z)^(a-1)] / (a-1), continuous at a = 1
    let first = if am1.abs() < 1e-12 {
        -ln_1mz
    } else {
        -(am1 * ln_1mz).exp_m1() / am1
    };
    let s = tail_series(c - big_a, p.a, c, z);
    c * (first - (am1 * ln_1mz).exp() * s)
}

/// The expected number of purchases in the next `horizon` time units of a customer with
/// x repeat purchases, t_x and T (conditional expectation, equation 10 of the BG/NBD paper).
pub fn expected_purchases(p: &BgNbd, x: u32, t_x: f64, t: f64, horizon: f64) -> f64 {
    alive_purchases(p, x, t, horizon) * p_alive(p, x, t_x, t)
}

/// The expected average spend per purchase day (Gamma-Gamma conditional mean): the
/// population mean p·γ/(q-1) for a customer without repeat purchases. `None` when q <= 1
/// (the mean does not exist).
pub fn expected_avg_spend(g: &GammaGamma, x: u32, avg_spend: f64) -> Option<f64> {
    if g.q <= 1.0 {
        return None;
    }
    let px = g.p * x as f64;
    let m = if x == 0 { 0.0 } else { avg_spend };
    Some((g.p * g.gamma + px * m) / (px + g.q - 1.0))
}

/// Σ over time units k = 1..horizon of the expected purchases in unit k / (1 + d)^k of a
/// customer who is alive (times P(alive), the customer's; see [`clv_factor`]); a horizon
/// with a fraction ends with the part unit, discounted at (1 + d)^horizon. Like
/// [`alive_purchases`] it does not depend on t_x.
pub fn alive_clv_factor(p: &BgNbd, x: u32, t: f64, horizon: f64, discount: f64) -> f64 {
    let mut total = 0.0;
    let mut prev = 0.0;
    let whole = horizon.floor() as u64;
    let step = 1.0 / (1.0 + discount);
    let mut factor = 1.0;
    for k in 1..=whole {
        let e = alive_purchases(p, x, t, k as f64);
        factor *= step;
        total += (e - prev) * factor;
        prev = e;
    }
    if horizon > whole as f64 {
        let e = alive_purchases(p, x, t, horizon);
        total += (e - prev) / (1.0 + discount).powf(horizon);
    }
    total
}

/// The CLV of a customer is this times the expected average spend: the expected purchases
/// per time unit over the horizon, discounted.
pub fn clv_factor(p: &BgNbd, x: u32, t_x: f64, t: f64, horizon: f64, discount: f64) -> f64 {
    alive_clv_factor(p, x, t, horizon, discount) * p_alive(p, x, t_x, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };

    /// 2F1 by its plain series (fine for moderate parameters and z).
    fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let (mut term, mut sum) = (1.0, 1.0);
        for n in 0..100_000 {
            let n = n as f64;
            term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
            sum += term;
            if term.abs() < 1e-18 * sum.abs() {
                break;
            }
        }
        sum
    }

    /// lifetimes' formula, term by term.
    fn reference(p: &BgNbd, x: u32, t_x: f64, t: f64, h: f64) -> f64 {
        let xf = x as f64;
        let (a_, b_, c_) = (p.r + xf, p.b + xf, p.a + p.b + xf - 1.0);
        let z = h / (p.alpha + t + h);
        let hyp = hyp2f1(a_, b_, c_, z);
        let first = (p.a + p.b + xf - 1.0) / (p.a - 1.0);
        let second = 1.0 - hyp * ((p.alpha + t) / (p.alpha + h + t)).powf(p.r + xf);
        let den = 1.0
            + if x > 0 {
                p.a / (p.b + xf - 1.0) * ((p.alpha + t) / (p.alpha + t_x)).powf(p.r + xf)
            } else {
                0.0
            };
        first * second / den
    }

    #[test]
    fn expected_purchases_match_the_direct_formula() {
        for &(x, t_x, t) in &[
            (0, 0.0, 38.86),
            (2, 30.43, 38.86),
            (1, 1.71, 38.86),
            (7, 29.43, 35.0),
            (3, 1.0, 2.0),
        ] {
            for &h in &[1.0, 10.0, 39.0, 52.0, 200.0] {
                let got = expected_purchases(&P, x, t_x, t, h);
                let want = reference(&P, x, t_x, t, h);
                assert!(
                    (got - want).abs() <= 1e-10 * want.abs(),
                    "x={x} h={h}: {got} vs {want}"
                );
            }
        }
        // the paper's customer 1 (x = 2, t_x = 30.43, T = 38.86) over 39 weeks: 1.226
        assert!((expected_purchases(&P, 2, 30.43, 38.86, 39.0) - 1.226).abs() < 1e-3);
    }

    #[test]
    fn a_equal_to_one_is_no_singularity() {
        let mut p = P;
        p.a = 1.0;
        let at = expected_purchases(&p, 2, 10.0, 20.0, 10.0);
        p.a = 1.0 + 1e-7;
        let near = expected_purchases(&p, 2, 10.0, 20.0, 10.0);
        assert!(at.is_finite() && (at - near).abs() < 1e-5 * at);
    }

    #[test]
    fn heavy_buyers_stay_finite() {
        let e = expected_purchases(&P, 20_000, 700.0, 700.5, 52.0);
        assert!(e.is_finite() && e > 0.0);
        assert!(p_alive(&P, 20_000, 1.0, 700.0) >= 0.0);
    }

    #[test]
    fn p_alive_and_spend() {
        assert_eq!(p_alive(&P, 0, 0.0, 10.0), 1.0);
        let pa = p_alive(&P, 2, 30.43, 38.86);
        assert!(pa > 0.0 && pa < 1.0);
        let g = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let pop = expected_avg_spend(&g, 0, f64::NAN).unwrap();
        assert!((pop - 6.25 * 15.44 / 2.74).abs() < 1e-12);
        let m = expected_avg_spend(&g, 2, 22.35).unwrap();
        assert!(m > 22.35f64.min(pop) && m < 22.35f64.max(pop));
    }

    #[test]
    fn the_clv_factor_without_discount_is_the_expected_purchases() {
        let f = clv_factor(&P, 2, 30.43, 38.86, 52.0, 0.0);
        let e = expected_purchases(&P, 2, 30.43, 38.86, 52.0);
        assert!((f - e).abs() < 1e-12);
        assert!(clv_factor(&P, 2, 30.43, 38.86, 52.0, 0.01) < f);
    }
}
