//! Maximum likelihood for BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma).
//!
//! Both log-likelihoods are written as sums of logarithms (ln Γ, ln of sums through
//! log-sum-exp), never as products or powers: a customer with thousands of repeat
//! purchases or a history of decades neither overflows nor loses precision. ln Γ and ψ come
//! from `statrs`, evaluated once per distinct purchase count and not once per customer;
//! customers with the same (x, t_x, T) are one weighted term. The optimiser is `argmin`'s
//! L-BFGS over the logarithms of the parameters (so they stay positive) with the analytic
//! gradient; a few Newton steps on a Hessian from differences of that gradient then settle
//! the estimate to the last digits, and the same Hessian (of the log-likelihood, in the
//! parameters themselves) gives the standard errors.

use crate::error::{Result, RfmError};
use argmin::core::{CostFunction, Executor, Gradient, State as _};
use argmin::solver::linesearch::condition::ArmijoCondition;
use argmin::solver::linesearch::{BacktrackingLineSearch, MoreThuenteLineSearch};
use argmin::solver::quasinewton::LBFGS;
use statrs::function::gamma::{digamma, ln_gamma};

/// Customers with the same BG/NBD inputs: x repeat purchases, t_x and T in time units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triple {
    pub x: u32,
    pub t_x: f64,
    pub t: f64,
    pub weight: f64,
}

/// BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Gamma-Gamma parameters (`gamma` is the paper's γ, lifetimes' v).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// The result of one fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<P> {
    pub params: P,
    /// Standard errors, in the order of the parameters (NaN where the Hessian is not
    /// positive definite).
    pub std_errors: Vec<f64>,
    /// The log-likelihood at the estimate (penalty not included).
    pub log_likelihood: f64,
    pub iterations: u32,
    /// Customers the model was fitted on.
    pub customers: u64,
}

/// Per distinct x: where its values sit in the tables.
fn distinct_x(xs: impl Iterator<Item = u32>) -> (Vec<u32>, Vec<u32>) {
    let all: Vec<u32> = xs.collect();
    let mut uniq = all.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let idx = all
        .iter()
        .map(|x| uniq.binary_search(x).unwrap_or(0) as u32)
        .collect();
    (uniq, idx)
}

/// The BG/NBD data on the fitting time scale. t_x and T take few distinct values (whole
/// days, in practice): ln(alpha + t) and 1/(alpha + t) are computed once per distinct value
/// and evaluation, not once per customer.
struct BgData {
    xs: Vec<u32>,
    xi: Vec<u32>,
    triples: Vec<Triple>,
    weight: f64,
    /// Distinct values of t_x and T, and per triple the index of its t_x and its T.
    times: Vec<f64>,
    ti: Vec<(u32, u32)>,
}

impl BgData {
    fn new(triples: Vec<Triple>) -> BgData {
        let (xs, xi) = distinct_x(triples.iter().map(|t| t.x));
        let weight = triples.iter().map(|t| t.weight).sum();
        let mut times: Vec<f64> = triples.iter().flat_map(|t| [t.t_x, t.t]).collect();
        times.sort_unstable_by(f64::total_cmp);
        times.dedup();
        let at = |v: f64| times.partition_point(|&u| u < v) as u32;
        let ti = triples.iter().map(|t| (at(t.t_x), at(t.t))).collect();
        BgData {
            xs,
            xi,
            triples,
            weight,
            times,
            ti,
        }
    }
}

/// BG/NBD log-likelihood (summed over customers) and its gradient in (r, alpha, a, b).
fn bg_ll(p: [f64; 4], d: &BgData) -> (f64, [f64; 4]) {
    let [r, alpha, a, b] = p;
    let (lg_r, dg_r) = (ln_gamma(r), digamma(r));
    let (lg_ab, dg_ab) = (ln_gamma(a + b), digamma(a + b));
    let (lg_b, dg_b) = (ln_gamma(b), digamma(b));
    let ln_alpha = alpha.ln();
    let ln_a = a.ln();
    // per distinct x: ln Γ and ψ of r + x, b + x, a + b + x; ln(a / (b + x - 1)) and
    // 1 / (b + x - 1) (used when x > 0)
    let tab: Vec<[f64; 8]> =
        d.xs.iter()
            .map(|&x| {
                let xf = x as f64;
                let bx1 = if x > 0 { b + xf - 1.0 } else { 1.0 };
                [
                    ln_gamma(r + xf),
                    digamma(r + xf),
                    ln_gamma(b + xf),
                    digamma(b + xf),
                    ln_gamma(a + b + xf),
                    digamma(a + b + xf),
                    ln_a - bx1.ln(),
                    1.0 / bx1,
                ]
            })
            .collect();
    // per distinct time: ln(alpha + t) and 1 / (alpha + t)
    let at: Vec<(f64, f64)> = d
        .times
        .iter()
        .map(|&v| ((alpha + v).ln(), 1.0 / (alpha + v)))
        .collect();
    let mut ll = 0.0;
    let mut g = [0.0; 4];
    for ((t, &xi), &(txi, ti)) in d.triples.iter().zip(&d.xi).zip(&d.ti) {
        let [lg_rx, dg_rx, lg_bx, dg_bx, lg_abx, dg_abx, ln_a_bx1, inv_bx1] = tab[xi as usize];
        let (l_t, inv_t) = at[ti as usize];
        let (l_tx, inv_tx) = at[txi as usize];
        let x = t.x as f64;
        let rx = r + x;
        let a1 = lg_rx - lg_r + r * ln_alpha;
        let a2 = lg_ab + lg_bx - lg_b - lg_abx;
        let a3 = -rx * l_t;
        let (lse, w4) = if t.x > 0 {
            // ln(e^a3 + e^a4) and e^a4 / (e^a3 + e^a4) with one exp
            let a4 = ln_a_bx1 - rx * l_tx;
            let e = (-(a3 - a4).abs()).exp();
            let lse = a3.max(a4) + e.ln_1p();
            let w4 = if a4 >= a3 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            (lse, w4)
        } else {
            (a3, 0.0)
        };
        let w3 = 1.0 - w4;
        let w = t.weight;
        ll += w * (a1 + a2 + lse);
        g[0] += w * (dg_rx - dg_r + ln_alpha - w3 * l_t - w4 * l_tx);
        g[1] += w * (r / alpha - w3 * rx * inv_t - w4 * rx * inv_tx);
        g[2] += w * (dg_ab - dg_abx + w4 / a);
        let drop_b = w4 * inv_bx1;
        g[3] += w * (dg_ab + dg_bx - dg_b - dg_abx - drop_b);
    }
    (ll, g)
}

/// Gamma-Gamma data: repeat customers with positive mean spend.
struct GgData {
    xs: Vec<u32>,
    xi: Vec<u32>,
    /// Distinct (x, m) with their count: (x, m, ln m, ln x, weight)
    rows: Vec<GgRow>,
}

#[derive(Debug, Clone, Copy)]
struct GgRow {
    x: f64,
    m: f64,
    ln_m: f64,
    ln_x: f64,
    weight: f64,
}

impl GgData {
    /// Customers with the same x and mean spend are one weighted term (spend in cents
    /// repeats often among one-time repeaters).
    fn new(rows: &[(u32, f64)]) -> GgData {
        let mut sorted: Vec<(u32, f64)> = rows.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut out: Vec<GgRow> = Vec::new();
        let mut xs_of_rows = Vec::new();
        for (x, m) in sorted {
            match out.last_mut() {
                Some(last) if last.x == x as f64 && last.m.to_bits() == m.to_bits() => {
                    last.weight += 1.0
                }
                _ => {
                    out.push(GgRow {
                        x: x as f64,
                        m,
                        ln_m: m.ln(),
                        ln_x: (x as f64).ln(),
                        weight: 1.0,
                    });
                    xs_of_rows.push(x);
                }
            }
        }
        let (xs, xi) = distinct_x(xs_of_rows.into_iter());
        GgData { xs, xi, rows: out }
    }
}

/// Gamma-Gamma log-likelihood (summed) and its gradient in (p, q, gamma).
fn gg_ll(prm: [f64; 3], d: &GgData) -> (f64, [f64; 3]) {
    let [p, q, v] = prm;
    let (lg_q, dg_q) = (ln_gamma(q), digamma(q));
    let ln_v = v.ln();
    let tab: Vec<[f64; 4]> =
        d.xs.iter()
            .map(|&x| {
                let px = p * x as f64;
                [ln_gamma(px + q), ln_gamma(px), digamma(px + q), digamma(px)]
            })
            .collect();
    let mut ll = 0.0;
    let mut g = [0.0; 3];
    for (row, &xi) in d.rows.iter().zip(&d.xi) {
        let GgRow {
            x,
            m,
            ln_m,
            ln_x,
            weight: w,
        } = *row;
        let [lg_pxq, lg_px, dg_pxq, dg_px] = tab[xi as usize];
        let px = p * x;
        let xm_v = x * m + v;
        let l = xm_v.ln();
        ll += w * (lg_pxq - lg_px - lg_q + q * ln_v + (px - 1.0) * ln_m + px * ln_x - (px + q) * l);
        g[0] += w * x * (dg_pxq - dg_px + ln_m + ln_x - l);
        g[1] += w * (dg_pxq - dg_q + ln_v - l);
        g[2] += w * (q / v - (px + q) / xm_v);
    }
    (ll, g)
}

/// A point and the objective's value and gradient there.
type Evaluated<const N: usize> = (Vec<f64>, (f64, [f64; N]));

/// A model's penalized objective over the logarithms of its parameters:
/// -LL / weight + penalizer * Σ param² (as lifetimes defines it).
struct Objective<'a, const N: usize> {
    ll: &'a dyn Fn([f64; N]) -> (f64, [f64; N]),
    weight: f64,
    penalizer: f64,
    /// The last point evaluated: the optimiser asks for the cost and the gradient at the
    /// same point one after the other, and one pass over the customers gives both.
    last: std::cell::RefCell<Option<Evaluated<N>>>,
    /// Passes over the customers so far.
    evals: std::cell::Cell<u32>,
}

impl<'a, const N: usize> Objective<'a, N> {
    fn new(ll: &'a dyn Fn([f64; N]) -> (f64, [f64; N]), weight: f64, penalizer: f64) -> Self {
        Objective {
            ll,
            weight,
            penalizer,
            last: Default::default(),
            evals: Default::default(),
        }
    }

    fn eval(&self, theta: &[f64]) -> (f64, [f64; N]) {
        if let Some((at, v)) = self.last.borrow().as_ref() {
            if at.as_slice() == theta {
                return *v;
            }
        }
        let v = self.eval_uncached(theta);
        *self.last.borrow_mut() = Some((theta.to_vec(), v));
        v
    }

    fn eval_uncached(&self, theta: &[f64]) -> (f64, [f64; N]) {
        // one pass over the customers: a fit makes hundreds, each up to a few hundred ms
        crate::interrupt::check_interrupts();
        self.evals.set(self.evals.get() + 1);
        let mut p = [0.0; N];
        for i in 0..N {
            p[i] = theta[i].exp();
        }
        if p.iter().any(|v| !v.is_finite() || *v <= 0.0) {
            return (f64::INFINITY, [0.0; N]);
        }
        let (ll, g) = (self.ll)(p);
        let mut f = -ll / self.weight;
        let mut grad = [0.0; N];
        for i in 0..N {
            f += self.penalizer * p[i] * p[i];
            grad[i] = p[i] * (-g[i] / self.weight + 2.0 * self.penalizer * p[i]);
        }
        if !f.is_finite() || grad.iter().any(|v| !v.is_finite()) {
            return (f64::INFINITY, [0.0; N]);
        }
        (f, grad)
    }
}

/// The cost the line search sees: a non-finite value is a very large one, so that a step
/// into overflow is rejected like any step that does not decrease the cost.
const HUGE: f64 = 1e300;

impl<const N: usize> CostFunction for &Objective<'_, N> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, theta: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        let f = self.eval(theta).0;
        Ok(if f.is_finite() { f } else { HUGE })
    }
}

impl<const N: usize> Gradient for &Objective<'_, N> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, theta: &Self::Param) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(theta).1.to_vec())
    }
}

// matrix code: rows and columns by index read like the textbook
#[allow(clippy::needless_range_loop)]
/// Solves `h x = y` (Gauss-Jordan with partial pivoting); `None` when singular.
fn solve<const N: usize>(h: [[f64; N]; N], y: [f64; N]) -> Option<[f64; N]> {
    let mut m = h;
    let mut v = y;
    for c in 0..N {
        let piv = (c..N).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[piv][c].abs() < 1e-300 || !m[piv][c].is_finite() {
            return None;
        }
        m.swap(c, piv);
        v.swap(c, piv);
        for i in 0..N {
            if i != c {
                let f = m[i][c] / m[c][c];
                for j in c..N {
                    m[i][j] -= f * m[c][j];
                }
                v[i] -= f * v[c];
            }
        }
    }
    let mut out = [0.0; N];
    for i in 0..N {
        out[i] = v[i] / m[i][i];
    }
    Some(out)
}

/// The inverse of a symmetric matrix, column by column.
fn inverse<const N: usize>(h: [[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut inv = [[0.0; N]; N];
    for c in 0..N {
        let mut e = [0.0; N];
        e[c] = 1.0;
        let col = solve(h, e)?;
        for r in 0..N {
            inv[r][c] = col[r];
        }
    }
    Some(inv)
}

#[allow(clippy::needless_range_loop)] // as in `solve`
/// The Hessian by forward differences of the gradient `grad` (whose value at `x` is `g`),
/// symmetrized.
fn forward_hessian<const N: usize>(
    x: [f64; N],
    g: [f64; N],
    grad: &dyn Fn([f64; N]) -> [f64; N],
) -> [[f64; N]; N] {
    let mut h = [[0.0; N]; N];
    for j in 0..N {
        let step = 1e-6 * x[j].abs().max(1.0);
        let mut hi = x;
        hi[j] += step;
        let gh = grad(hi);
        for i in 0..N {
            h[i][j] = (gh[i] - g[i]) / step;
        }
    }
    for i in 0..N {
        for j in 0..i {
            let m = 0.5 * (h[i][j] + h[j][i]);
            h[i][j] = m;
            h[j][i] = m;
        }
    }
    h
}

#[allow(clippy::needless_range_loop)] // as in `solve`
/// The Hessian of `f` by central differences of its gradient `g`, symmetrized.
fn hessian<const N: usize>(x: [f64; N], g: &dyn Fn([f64; N]) -> [f64; N]) -> [[f64; N]; N] {
    let mut h = [[0.0; N]; N];
    for j in 0..N {
        let step = 1e-5 * x[j].abs().max(1e-3);
        let (mut lo, mut hi) = (x, x);
        lo[j] -= step;
        hi[j] += step;
        let (gl, gh) = (g(lo), g(hi));
        for i in 0..N {
            h[i][j] = (gh[i] - gl[i]) / (2.0 * step);
        }
    }
    for i in 0..N {
        for j in 0..i {
            let m = 0.5 * (h[i][j] + h[j][i]);
            h[i][j] = m;
            h[j][i] = m;
        }
    }
    h
}

/// How L-BFGS chooses its steps. More-Thuente (strong Wolfe) takes the fewest passes on
/// BG/NBD; on Gamma-Gamma, whose valley is long and narrow when the spend varies little
/// between customers, plain Armijo backtracking takes far fewer (measured on the benchmark
/// and CDNOW data).
#[derive(Clone, Copy)]
enum LineSearch {
    MoreThuente,
    Backtracking,
}

/// Minimizes `obj` from `theta0`; the log-parameters at the minimum and the iterations,
/// or the error of a fit that does not converge.
fn minimize<const N: usize>(
    obj: &Objective<'_, N>,
    theta0: [f64; N],
    model: &str,
    names: [&str; N],
    search: LineSearch,
) -> Result<([f64; N], u32)> {
    let not_converged = |why: &str| {
        RfmError::new(
            crate::error::ErrorKind::NotConverged,
            format!("the {model} fit did not converge: {why}"),
        )
        .with_hint(
            "Try a penalizer, for example '{\"penalizer\": 0.001}', or check that the customers have repeat purchases.",
        )
    };
    // the best point L-BFGS found and its iterations; a line search that fails near the
    // optimum is no error: the Newton steps below take over
    macro_rules! run {
        ($res:expr) => {
            match $res {
                Ok(r) => {
                    let best = r
                        .state
                        .get_best_param()
                        .cloned()
                        .unwrap_or_else(|| theta0.to_vec());
                    let mut t = [0.0; N];
                    t.copy_from_slice(&best);
                    (t, r.state.get_iter() as u32)
                }
                Err(_) => (theta0, 0),
            }
        };
    }
    let (mut theta, mut iterations) = match search {
        LineSearch::MoreThuente => {
            let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
                .with_tolerance_grad(1e-10)
                .and_then(|s| s.with_tolerance_cost(1e-15))
                .map_err(|e| not_converged(&e.to_string()))?;
            run!(Executor::new(obj, solver)
                .configure(|s| s.param(theta0.to_vec()).max_iters(500))
                .run())
        }
        LineSearch::Backtracking => {
            let linesearch = ArmijoCondition::new(1e-4)
                .and_then(|c| BacktrackingLineSearch::new(c).rho(0.5))
                .map_err(|e| not_converged(&e.to_string()))?;
            let solver = LBFGS::new(linesearch, 10)
                .with_tolerance_grad(1e-10)
                .and_then(|s| s.with_tolerance_cost(1e-15))
                .map_err(|e| not_converged(&e.to_string()))?;
            run!(Executor::new(obj, solver)
                .configure(|s| s.param(theta0.to_vec()).max_iters(500))
                .run())
        }
    };
    let grad = |t: [f64; N]| obj.eval(&t).1;
    let mut f = obj.eval(&theta).0;
    for _ in 0..10 {
        let g = grad(theta);
        if g.iter().all(|v| v.abs() < 1e-9) {
            break;
        }
        let h = forward_hessian(theta, g, &grad);
        let Some(step) = solve(h, g) else { break };
        // the decrease a Newton step promises; below rounding of the cost, stop
        let promised: f64 = 0.5 * g.iter().zip(&step).map(|(a, b)| a * b).sum::<f64>();
        if promised.is_nan() || promised <= 1e-15 * f.abs().max(1.0) {
            break;
        }
        let mut t = 1.0;
        let mut moved = false;
        for _ in 0..8 {
            let mut cand = theta;
            for i in 0..N {
                cand[i] -= t * step[i];
            }
            let fc = obj.eval(&cand).0;
            if fc.is_finite() && fc <= f {
                theta = cand;
                f = fc;
                moved = true;
                break;
            }
            t *= 0.5;
        }
        iterations += 1;
        if !moved || step.iter().all(|v| (t * v).abs() < 1e-12) {
            break;
        }
    }
    let g = grad(theta);
    let gmax = g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if !f.is_finite() {
        return Err(not_converged("the likelihood is not finite"));
    }
    // a parameter beyond e^±25, or one beyond e^±8 while the gradient has not vanished:
    // the data do not identify it (it heads to 0 or infinity)
    let far = |limit: f64| theta.iter().position(|t| t.abs() > limit);
    if let Some(i) = far(25.0).or_else(|| far(8.0).filter(|_| gmax > 1e-6)) {
        let to = if theta[i] > 0.0 { "infinity" } else { "0" };
        return Err(not_converged(&format!(
            "parameter {} heads to {to} (the data do not identify it)",
            names[i]
        )));
    }
    if gmax > 1e-6 {
        return Err(not_converged(&format!(
            "the gradient is {gmax:.3e} after {iterations} iterations"
        )));
    }
    Ok((theta, iterations))
}

fn std_errors<const N: usize>(x: [f64; N], neg_grad: &dyn Fn([f64; N]) -> [f64; N]) -> Vec<f64> {
    let h = hessian(x, neg_grad);
    match inverse(h) {
        Some(inv) => (0..N)
            .map(|i| {
                if inv[i][i] > 0.0 {
                    inv[i][i].sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect(),
        None => vec![f64::NAN; N],
    }
}

/// Fits BG/NBD to `triples` (t_x and T in time units).
pub fn fit_bgnbd(triples: &[Triple], penalizer: f64) -> Result<Fit<BgNbd>> {
    let weight: f64 = triples.iter().map(|t| t.weight).sum();
    if triples.is_empty() || weight <= 0.0 {
        return Err(RfmError::invalid("rfm.clv_fit needs at least one customer with a purchase")
            .with_hint("Check the rows and the option \"as_of\": rows after as_of and returns are left out."));
    }
    if triples.iter().all(|t| t.x == 0) {
        return Err(RfmError::new(
            crate::error::ErrorKind::NotConverged,
            "the BG/NBD fit did not converge: no customer has a repeat purchase",
        )
        .with_hint("The model needs customers who bought on more than one day."));
    }
    // time scaled so that the oldest customer's T is 10, as lifetimes does
    let max_t = triples.iter().map(|t| t.t).fold(0.0f64, f64::max);
    let scale = if max_t > 0.0 { 10.0 / max_t } else { 1.0 };
    let data = BgData::new(
        triples
            .iter()
            .map(|t| Triple {
                t_x: t.t_x * scale,
                t: t.t * scale,
                ..*t
            })
            .collect(),
    );
    let ll = |p: [f64; 4]| bg_ll(p, &data);
    let obj = Objective::new(&ll, data.weight, penalizer);
    let (theta, iterations) = minimize(
        &obj,
        [0.0; 4],
        "BG/NBD",
        ["r", "alpha", "a", "b"],
        LineSearch::MoreThuente,
    )?;
    let p = theta.map(f64::exp);
    let neg = |q: [f64; 4]| bg_ll(q, &data).1.map(|v| -v);
    let mut se = std_errors(p, &neg);
    se[1] /= scale;
    // on the scaled time line each customer's density carries a factor s^x: undo it
    let log_likelihood = bg_ll(p, &data).0
        + data
            .triples
            .iter()
            .map(|t| t.weight * t.x as f64)
            .sum::<f64>()
            * scale.ln();
    Ok(Fit {
        params: BgNbd {
            r: p[0],
            alpha: p[1] / scale,
            a: p[2],
            b: p[3],
        },
        std_errors: se,
        log_likelihood,
        iterations,
        customers: weight as u64,
    })
}

/// Fits Gamma-Gamma to (x, mean spend) of repeat customers with positive mean spend.
pub fn fit_gamma_gamma(rows: &[(u32, f64)], penalizer: f64) -> Result<Fit<GammaGamma>> {
    if rows.is_empty() {
        return Err(RfmError::new(
            crate::error::ErrorKind::NotConverged,
            "the Gamma-Gamma fit did not converge: no customer has a repeat purchase with a positive amount",
        )
        .with_hint("Fit without the spend model: '{\"spend_model\": null}'."));
    }
    let data = GgData::new(rows);
    let ll = |p: [f64; 3]| gg_ll(p, &data);
    let obj = Objective::new(&ll, rows.len() as f64, penalizer);
    let (theta, iterations) = minimize(
        &obj,
        [0.0; 3],
        "Gamma-Gamma",
        ["p", "q", "gamma"],
        LineSearch::Backtracking,
    )?;
    let p = theta.map(f64::exp);
    let neg = |q: [f64; 3]| gg_ll(q, &data).1.map(|v| -v);
    Ok(Fit {
        params: GammaGamma {
            p: p[0],
            q: p[1],
            gamma: p[2],
        },
        std_errors: std_errors(p, &neg),
        log_likelihood: gg_ll(p, &data).0,
        iterations,
        customers: rows.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The BG/NBD likelihood of one customer as the paper writes it (equation 6), as a
    /// product of gamma functions and powers: fine for small inputs.
    fn naive_bg(p: BgNbd, x: u32, t_x: f64, t: f64) -> f64 {
        use statrs::function::gamma::gamma;
        let BgNbd { r, alpha, a, b } = p;
        let x = x as f64;
        let beta = |u: f64, v: f64| gamma(u) * gamma(v) / gamma(u + v);
        let common = beta(a, b + x) / beta(a, b) * gamma(r + x) * alpha.powf(r) / gamma(r);
        let mut l = common / (alpha + t).powf(r + x);
        if x > 0.0 {
            l += beta(a + 1.0, b + x - 1.0) / beta(a, b) * gamma(r + x) * alpha.powf(r)
                / gamma(r)
                / (alpha + t_x).powf(r + x);
        }
        l
    }

    fn data(triples: Vec<Triple>) -> BgData {
        BgData::new(triples)
    }

    #[test]
    fn the_log_likelihood_equals_the_naive_product() {
        let p = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let ts = vec![
            Triple {
                x: 0,
                t_x: 0.0,
                t: 38.86,
                weight: 1.0,
            },
            Triple {
                x: 2,
                t_x: 30.43,
                t: 38.86,
                weight: 1.0,
            },
            Triple {
                x: 1,
                t_x: 1.71,
                t: 38.86,
                weight: 2.0,
            },
            Triple {
                x: 7,
                t_x: 29.43,
                t: 35.0,
                weight: 1.0,
            },
        ];
        let want: f64 = ts
            .iter()
            .map(|t| t.weight * naive_bg(p, t.x, t.t_x, t.t).ln())
            .sum();
        let (got, _) = bg_ll([p.r, p.alpha, p.a, p.b], &data(ts));
        assert!((got - want).abs() < 1e-10 * want.abs(), "{got} vs {want}");
    }

    #[test]
    fn the_gradients_match_differences() {
        let d = data(vec![
            Triple {
                x: 0,
                t_x: 0.0,
                t: 38.0,
                weight: 3.0,
            },
            Triple {
                x: 3,
                t_x: 20.0,
                t: 30.0,
                weight: 1.0,
            },
            Triple {
                x: 12,
                t_x: 25.0,
                t: 26.0,
                weight: 2.0,
            },
        ]);
        let p = [0.5, 3.0, 0.9, 2.0];
        let (_, g) = bg_ll(p, &d);
        for i in 0..4 {
            let h = 1e-6;
            let (mut lo, mut hi) = (p, p);
            lo[i] -= h;
            hi[i] += h;
            let num = (bg_ll(hi, &d).0 - bg_ll(lo, &d).0) / (2.0 * h);
            assert!(
                (num - g[i]).abs() < 1e-5 * (1.0 + num.abs()),
                "{i}: {num} vs {}",
                g[i]
            );
        }
        let gd = GgData::new(&[(1, 10.0), (4, 22.5), (4, 3.0), (4, 3.0)]);
        let p = [3.0, 2.5, 12.0];
        let (_, g) = gg_ll(p, &gd);
        for i in 0..3 {
            let h = 1e-6;
            let (mut lo, mut hi) = (p, p);
            lo[i] -= h;
            hi[i] += h;
            let num = (gg_ll(hi, &gd).0 - gg_ll(lo, &gd).0) / (2.0 * h);
            assert!(
                (num - g[i]).abs() < 1e-5 * (1.0 + num.abs()),
                "{i}: {num} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn the_fit_reports_the_log_likelihood_in_time_units() {
        let ts: Vec<Triple> = (0..400u32)
            .map(|i| {
                let x = (i * 7919) % 11 % 5;
                let t = 10.0 + (i * 104_729 % 300) as f64 / 7.0;
                let t_x = if x == 0 {
                    0.0
                } else {
                    t * ((i * 31 % 97) as f64 / 97.0)
                };
                Triple {
                    x,
                    t_x,
                    t,
                    weight: 1.0 + (i % 3) as f64,
                }
            })
            .collect();
        let fit = fit_bgnbd(&ts, 0.01).unwrap();
        let p = fit.params;
        let direct = bg_ll([p.r, p.alpha, p.a, p.b], &data(ts)).0;
        assert!((fit.log_likelihood - direct).abs() < 1e-8 * direct.abs());
    }

    #[test]
    fn thousands_of_purchases_stay_finite() {
        let d = data(vec![
            Triple {
                x: 50_000,
                t_x: 5000.0,
                t: 5000.5,
                weight: 1.0,
            },
            Triple {
                x: 0,
                t_x: 0.0,
                t: 1e6,
                weight: 1.0,
            },
        ]);
        let (ll, g) = bg_ll([0.3, 4.0, 0.8, 2.5], &d);
        assert!(ll.is_finite() && g.iter().all(|v| v.is_finite()));
    }
}
