//! `rfm.clv_fit` (BG/NBD and Gamma-Gamma fitted in one aggregate pass) and its readers
//! `rfm.clv_parameters`, `rfm.clv_fit_info` and `rfm.clv_customers` (SPEC §12). As for
//! `rfm.analyze`, one C transition function serves every signature and reads its
//! arguments straight from `fcinfo`; the models live in `rfm_core::clv`.

use crate::analyze::{
    aggregate_context, arg, is_bare_date, local_midnight, max_customers, option_error,
    option_number, options_differ,
};
use crate::errors::{raise, OrRaise};
use crate::text::{self, jsonb_value, varlena_bytes, ServerText};
use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts};
use rfm_core::analysis::Key;
use rfm_core::clv::{self, ClvConfig, ClvModel, LocalDays, Summary, DAY_MICROS};
use rfm_core::codec::Reader;
use rfm_core::{numeric, ErrorKind, RfmError};
use serde_json::Value;

/// Powers of ten for the scales amounts usually have.
const POW10: [f64; 9] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

const OPTION_KEYS: [&str; 5] = [
    "as_of",
    "time_zone",
    "time_unit",
    "penalizer",
    "spend_model",
];

/// The state plus what the glue needs around it: the raw options (compared on every row
/// and when partial states are combined), the local-day cache, the newest purchase (for
/// the NOTICE of SPEC §2) and whether `as_of` was given.
pub struct ClvState {
    summary: Summary,
    options_bytes: Vec<u8>,
    days: LocalDays,
    newest: i64,
    as_of_given: bool,
    /// Whether the amount argument is `numeric` (else `double precision`).
    numeric_amounts: bool,
    /// The time zone of the purchase days (the option `time_zone`; null: the session's).
    zone: *mut pg_sys::pg_tz,
}

fn local_day(ts: i64) -> i32 {
    let t = TimestampWithTimeZone::try_from(ts)
        .unwrap_or_else(|_| raise(RfmError::out_of_range("timestamp out of range")));
    Date::from(t).to_pg_epoch_days()
}

/// Resolves the options of one `rfm.clv_fit` call (once per aggregate).
fn parse_options(options: &Value) -> (ClvConfig, bool) {
    let obj = match options.as_object() {
        Some(o) => o,
        None => raise(RfmError::invalid(format!(
            "options must be a JSON object, got {options}"
        ))),
    };
    // the purchase days and a bare-date as_of in the option's time zone (SPEC §2)
    let zone = crate::analyze::option_zone(obj);
    crate::analyze::in_zone(zone, || parse_options_in_zone(obj))
}

/// [`parse_options`] in the time zone of the options.
fn parse_options_in_zone(obj: &serde_json::Map<String, Value>) -> (ClvConfig, bool) {
    for k in obj.keys() {
        if !OPTION_KEYS.contains(&k.as_str()) {
            raise(
                RfmError::invalid(format!("unknown option \"{k}\""))
                    .with_hint(format!("Valid options are: {}.", OPTION_KEYS.join(", "))),
            );
        }
    }
    let text_opt = |key: &str| -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => raise(option_error(key, &format!("must be a string, got {other}"))),
        }
    };
    let as_of_text = text_opt("as_of");
    let (as_of, as_of_day) = match &as_of_text {
        // a bare date is the end of that day: orders placed on it count (SPEC §2)
        Some(s) if is_bare_date(s) => {
            let d = s.parse::<Date>().unwrap_or_else(|_| {
                raise(option_error(
                    "as_of",
                    &format!("is not a timestamp: \"{s}\""),
                ))
            });
            if d.is_infinity() || d.is_neg_infinity() {
                raise(RfmError::out_of_range("option \"as_of\" must be finite"));
            }
            let day = d.to_pg_epoch_days();
            (local_midnight(day + 1).or_raise() - 1, day)
        }
        Some(s) => {
            let t = s.parse::<TimestampWithTimeZone>().unwrap_or_else(|_| {
                raise(option_error(
                    "as_of",
                    &format!("is not a timestamp: \"{s}\""),
                ))
            });
            if t.is_infinity() || t.is_neg_infinity() {
                raise(RfmError::out_of_range("option \"as_of\" must be finite"));
            }
            (t.into_inner(), local_day(t.into_inner()))
        }
        None => {
            // SAFETY: reads the current transaction's start time
            let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
            (now, local_day(now))
        }
    };
    let unit_days = match text_opt("time_unit").as_deref() {
        None => 7,
        Some(u) => ClvConfig::unit_days_of(u).unwrap_or_else(|| {
            raise(option_error(
                "time_unit",
                &format!("must be day, week or month, got \"{u}\""),
            ))
        }),
    };
    let penalizer = match obj.get("penalizer") {
        None | Some(Value::Null) => 0.0,
        Some(v) => {
            let p = option_number("penalizer", v).or_raise();
            if p < 0.0 {
                raise(option_error("penalizer", &format!("must be >= 0, got {v}")));
            }
            p
        }
    };
    let spend_model = match obj.get("spend_model") {
        None => true,
        Some(Value::Null) => false,
        Some(Value::String(s)) if s == "gamma_gamma" => true,
        Some(other) => raise(option_error(
            "spend_model",
            &format!("must be \"gamma_gamma\" or null, got {other}"),
        )),
    };
    let config = ClvConfig {
        as_of,
        as_of_day,
        unit_days,
        penalizer,
        spend_model,
    };
    config.validate().or_raise();
    (config, as_of_text.is_some())
}

/// The transition function of every `rfm.clv_fit` signature.
#[pg_extern(sql = false)]
fn clv_sfunc(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        let has_options = (*fcinfo).nargs > 4;
        let options = arg(fcinfo, 4);
        if has_options && options.is_none() {
            raise(RfmError::null(
                "argument \"options\" of rfm.clv_fit must not be NULL",
            ));
        }
        let options_bytes = options.map(|d| varlena_bytes(d)).unwrap_or(&[]);
        let mut state = Internal::from(arg(fcinfo, 0));
        if !state.initialized() {
            let flinfo = (*fcinfo).flinfo;
            let key_type = pg_sys::get_fn_expr_argtype(flinfo, 1);
            let amount_type = pg_sys::get_fn_expr_argtype(flinfo, 3);
            let json = options.map_or(Value::Object(Default::default()), |d| jsonb_value(d));
            let (config, as_of_given) = parse_options(&json);
            let zone = json
                .as_object()
                .map_or(std::ptr::null_mut(), crate::analyze::option_zone);
            let mut summary = Summary::new(config, key_type == pg_sys::TEXTOID);
            summary.max_customers = max_customers();
            let s = ClvState {
                summary,
                options_bytes: options_bytes.to_vec(),
                days: LocalDays::new(),
                newest: i64::MIN,
                as_of_given,
                numeric_amounts: amount_type == pg_sys::NUMERICOID,
                zone,
            };
            let ptr = PgMemoryContexts::For(aggregate_context(fcinfo)).leak_and_drop_on_delete(s);
            state = Internal::from(Some(pg_sys::Datum::from(ptr)));
        }
        let s = state.get_mut::<ClvState>().expect("initialized");
        if options_bytes != s.options_bytes.as_slice() {
            raise(options_differ());
        }
        let (Some(key), Some(ts), Some(amount)) = (arg(fcinfo, 1), arg(fcinfo, 2), arg(fcinfo, 3))
        else {
            return state;
        };
        // NaN and ±Infinity are rejected wherever the row falls (SPEC §1)
        let amount = if s.numeric_amounts {
            let decoded = numeric::decode(varlena_bytes(amount))
                .ok_or_else(numeric::too_large)
                .or_raise();
            let d = numeric::check(decoded).or_raise();
            let units = match i64::try_from(d.units) {
                Ok(u) => u as f64,
                Err(_) => d.units as f64,
            };
            match POW10.get(d.scale as usize) {
                Some(p) => units / p,
                None => units / 10f64.powi(d.scale as i32),
            }
        } else {
            rfm_core::error::check_finite("amount", f64::from_bits(amount.value() as u64))
                .or_raise()
        };
        let ts = ts.value() as i64;
        // rows after as_of are not part of the fit; returns are left out (SPEC §12)
        if ts > s.summary.config.as_of || amount < 0.0 {
            return state;
        }
        let zone = s.zone;
        let day = s
            .days
            .day_of(ts, |d| crate::analyze::in_zone(zone, || local_midnight(d)))
            .or_raise();
        let text_key;
        let key = if s.summary.text_keys() {
            crate::analyze::check_key_size(key);
            text_key = text::to_utf8(varlena_bytes(key));
            Key::Text(&text_key)
        } else {
            Key::Int(key.value() as i64)
        };
        s.summary.add(key, day, amount).or_raise();
        s.newest = s.newest.max(ts);
        state
    }
}

#[pg_extern(sql = false)]
fn clv_combine(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        let a = Internal::from(arg(fcinfo, 0));
        let mut b = Internal::from(arg(fcinfo, 1));
        let Some(other) = b.get_mut::<ClvState>() else {
            return a;
        };
        let mut a = a;
        if let Some(s) = a.get_mut::<ClvState>() {
            if s.options_bytes != other.options_bytes {
                raise(options_differ());
            }
        }
        let empty = Summary::new(other.summary.config.clone(), false);
        let theirs = std::mem::replace(&mut other.summary, empty);
        match a.get_mut::<ClvState>() {
            Some(s) => {
                s.summary.merge(theirs).or_raise();
                s.newest = s.newest.max(other.newest);
                a
            }
            None => {
                let s = ClvState {
                    summary: theirs,
                    options_bytes: std::mem::take(&mut other.options_bytes),
                    days: LocalDays::new(),
                    newest: other.newest,
                    as_of_given: other.as_of_given,
                    numeric_amounts: other.numeric_amounts,
                    // a combined state takes no rows: its zone is never read
                    zone: std::ptr::null_mut(),
                };
                let ptr =
                    PgMemoryContexts::For(aggregate_context(fcinfo)).leak_and_drop_on_delete(s);
                Internal::from(Some(pg_sys::Datum::from(ptr)))
            }
        }
    }
}

#[pg_extern(sql = false)]
fn clv_serialize(fcinfo: pg_sys::FunctionCallInfo) -> Vec<u8> {
    unsafe {
        let mut state = Internal::from(arg(fcinfo, 0));
        let s = state.get_mut::<ClvState>().expect("strict");
        let body = s.summary.serialize();
        let mut out = Vec::with_capacity(body.len() + s.options_bytes.len() + 17);
        out.extend_from_slice(&(s.options_bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.options_bytes);
        out.extend_from_slice(&s.newest.to_le_bytes());
        out.push(s.as_of_given as u8);
        out.extend_from_slice(&body);
        out
    }
}

#[pg_extern(sql = false)]
fn clv_deserialize(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        let bytes = varlena_bytes(arg(fcinfo, 0).expect("strict"));
        let corrupt = || {
            RfmError::new(
                ErrorKind::InvalidBinary,
                "invalid serialized rfm.clv_fit state",
            )
        };
        let mut r = Reader::raw(bytes);
        let (opts, newest, given, rest) = (|| {
            let opts = r.bytes()?;
            let newest = r.i64()?;
            let given = r.u8()? != 0;
            Some((opts, newest, given, r.rest()))
        })()
        .ok_or_else(corrupt)
        .or_raise();
        let mut summary = Summary::deserialize(rest).ok_or_else(corrupt).or_raise();
        summary.max_customers = max_customers();
        Internal::new(ClvState {
            summary,
            options_bytes: opts.to_vec(),
            days: LocalDays::new(),
            newest,
            as_of_given: given,
            // only the transition function reads these, and it never sees this state
            numeric_amounts: false,
            zone: std::ptr::null_mut(),
        })
    }
}

#[pg_extern(sql = false)]
fn clv_final(fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<u8>> {
    unsafe {
        // FINALFUNC_MODIFY = READ_WRITE: the state is consumed here
        let mut state = Internal::from(arg(fcinfo, 0));
        let s = state.get_mut::<ClvState>()?;
        let config = s.summary.config.clone();
        if !s.as_of_given && s.newest != i64::MIN && s.newest < config.as_of - 30 * DAY_MICROS {
            let newest = TimestampWithTimeZone::try_from(s.newest)
                .map(|t| t.to_iso_string())
                .unwrap_or_default();
            notice!(
                "the newest purchase ({newest}) is more than 30 days before as_of (now); give \"as_of\" to fit as of the end of the data"
            );
        }
        debug1!("rfm.clv_fit: {} purchase rows", s.summary.rows());
        let text_keys = s.summary.text_keys();
        let empty = Summary::new(config.clone(), text_keys);
        let taken = std::mem::replace(&mut s.summary, empty);
        let started = std::time::Instant::now();
        let customers = taken.finish().or_raise();
        let summarized = started.elapsed();
        let value = clv::fit(&config, &customers, text_keys).or_raise();
        debug1!(
            "rfm.clv_fit: {} customers; per-customer summary {:.3} s, fits and value {:.3} s",
            customers.len(),
            summarized.as_secs_f64(),
            (started.elapsed() - summarized).as_secs_f64()
        );
        Some(value)
    }
}

fn nan_to_null(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The parameters of both models with their standard errors.
#[allow(clippy::type_complexity)] // pgrx reads the column names from the signature
#[pg_extern(immutable, parallel_safe, sql = false)]
fn clv_parameters(
    model: &[u8],
) -> TableIterator<
    'static,
    (
        name!(model, String),
        name!(parameter, String),
        name!(value, f64),
        name!(std_error, Option<f64>),
    ),
> {
    let m = ClvModel::read(model).or_raise();
    let bg = &m.info.bgnbd;
    let mut rows = Vec::new();
    let p = &bg.params;
    for (i, (name, v)) in [("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)]
        .into_iter()
        .enumerate()
    {
        rows.push((
            "bg_nbd".to_string(),
            name.to_string(),
            v,
            nan_to_null(bg.std_errors[i]),
        ));
    }
    if let Some(s) = &m.info.spend {
        let g = &s.fit.params;
        for (i, (name, v)) in [("p", g.p), ("q", g.q), ("gamma", g.gamma)]
            .into_iter()
            .enumerate()
        {
            rows.push((
                "gamma_gamma".to_string(),
                name.to_string(),
                v,
                nan_to_null(s.fit.std_errors[i]),
            ));
        }
    }
    TableIterator::new(rows)
}

/// One row per fitted model: the customers it was fitted on, those left out, the
/// log-likelihood at the estimate, the iterations, and the options.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, sql = false)]
fn clv_fit_info(
    model: &[u8],
) -> TableIterator<
    'static,
    (
        name!(model, String),
        name!(customers, i64),
        name!(excluded_customers, i64),
        name!(log_likelihood, f64),
        name!(iterations, i32),
        name!(converged, bool),
        name!(as_of, TimestampWithTimeZone),
        name!(time_unit, String),
        name!(penalizer, f64),
    ),
> {
    let m = ClvModel::read(model).or_raise();
    let c = &m.info.config;
    let as_of = TimestampWithTimeZone::try_from(c.as_of)
        .unwrap_or_else(|_| raise(RfmError::out_of_range("as_of out of range")));
    let unit = c.time_unit().to_string();
    let bg = &m.info.bgnbd;
    let mut rows = vec![(
        "bg_nbd".to_string(),
        bg.customers as i64,
        0,
        bg.log_likelihood,
        bg.iterations as i32,
        true,
        as_of,
        unit.clone(),
        c.penalizer,
    )];
    if let Some(s) = &m.info.spend {
        rows.push((
            "gamma_gamma".to_string(),
            s.fit.customers as i64,
            s.excluded as i64,
            s.fit.log_likelihood,
            s.fit.iterations as i32,
            true,
            as_of,
            unit,
            c.penalizer,
        ));
    }
    TableIterator::new(rows)
}

/// Predictions per customer over the next `horizon` time units: customer_key, x, t_x, t,
/// avg_spend, p_alive, expected_purchases, expected_avg_spend, clv, flag (as declared in
/// SQL); the rows are returned in one call (see [`crate::analyze::return_rows`]).
#[pg_extern(sql = false)]
fn clv_customers(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: STRICT, (clv_model, double precision,
    // double precision)
    let (model, horizon, discount_rate) = unsafe {
        let a = |i| crate::analyze::arg(fcinfo, i).expect("strict");
        (
            crate::text::varlena_bytes(a(0)),
            f64::from_bits(a(1).value() as u64),
            f64::from_bits(a(2).value() as u64),
        )
    };
    if !horizon.is_finite() || horizon < 0.0 {
        raise(RfmError::invalid(format!(
            "horizon must be a finite number >= 0, got {horizon}"
        )));
    }
    if horizon > clv::MAX_HORIZON {
        raise(RfmError::out_of_range(format!(
            "horizon must be at most {} time units, got {horizon}",
            clv::MAX_HORIZON
        )));
    }
    if !discount_rate.is_finite() || discount_rate <= -1.0 {
        raise(RfmError::invalid(format!(
            "discount_rate must be a finite number > -1, got {discount_rate}"
        )));
    }
    if !clv::discount_allowed(horizon, discount_rate) {
        raise(
            RfmError::invalid(format!(
                "discount_rate is too close to -1 for a horizon of {horizon} time units, got {discount_rate}"
            ))
            .with_hint(format!(
                "The discount factor (1 + discount_rate)^-horizon may be at most {:e}.",
                clv::MAX_DISCOUNT_FACTOR
            )),
        );
    }
    let m = ClvModel::read(model).or_raise();
    let unit = m.info.config.unit_days as f64;
    let bg = m.info.bgnbd.params;
    let gg = m.info.spend.as_ref().map(|s| s.fit.params);
    // P(alive) depends on (x, t_x, T): computed once per distinct triple; the expected
    // purchases and the CLV factor of an alive customer on (x, T) only: once per pair
    let mut alive: Vec<Option<f64>> = vec![None; m.triples.len()];
    let mut curves: std::collections::HashMap<(u32, u32), (f64, f64)> = Default::default();
    let rows = m.rows(model).map(move |row| {
        pgrx::check_for_interrupts!();
        let c = row.or_raise();
        let (t_x, t) = (c.t_x_days as f64 / unit, c.t_days as f64 / unit);
        let pa = *alive[c.triple].get_or_insert_with(|| clv::p_alive(&bg, c.x, t_x, t));
        let (g, f) = *curves
            .entry((c.x, c.t_days))
            .or_insert_with(|| clv::alive_forecast(&bg, c.x, t, horizon, discount_rate));
        let (e, factor) = (g * pa, f * pa);
        let bad_spend = c.avg_spend.is_some_and(|m| m <= 0.0);
        let spend = gg
            .filter(|_| !bad_spend)
            .and_then(|g| clv::expected_avg_spend(&g, c.x, c.avg_spend.unwrap_or(0.0)));
        let flag: Option<String> =
            bad_spend.then(|| "repeat spend not positive: left out of the spend model".into());
        let value = spend.map(|s| s * factor);
        if value.is_some_and(|v| !v.is_finite()) {
            raise(clv::clv_out_of_range(&c.key));
        }
        [
            ServerText(c.key).into_datum(),
            (c.x as i64).into_datum(),
            t_x.into_datum(),
            t.into_datum(),
            c.avg_spend.into_datum(),
            pa.into_datum(),
            e.into_datum(),
            spend.into_datum(),
            value.into_datum(),
            flag.into_datum(),
        ]
    });
    // SAFETY: the call of rfm.clv_customers, whose ten result columns are the datums above
    unsafe { crate::analyze::return_rows(fcinfo, rows, |r| r) };
}

extension_sql_file!(
    "../sql/clv.sql",
    name = "clv_sql",
    requires = [
        clv_sfunc,
        clv_combine,
        clv_serialize,
        clv_deserialize,
        clv_final,
        clv_parameters,
        clv_fit_info,
        clv_customers
    ]
);
