//! The `rfm.quantile_thresholds` and `rfm.abc_thresholds` aggregates. Both keep their
//! values in a Rust state behind an `internal` pointer that lives in the aggregate's memory
//! context, and are parallel safe: states combine, and serialize to a versioned byte format.

use crate::errors::{raise, OrRaise};
use pgrx::prelude::*;
use pgrx::{Internal, PgMemoryContexts};
use rfm_core::codec::{Reader, Writer};
use rfm_core::{abc, quantile, RfmError};

/// The memory context of the aggregate that is calling us.
unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut ctx) == 0 || ctx.is_null() {
        raise(RfmError::invalid(
            "this support function may only be called as part of an aggregate",
        ));
    }
    ctx
}

/// Moves `value` into the aggregate context (dropped when that context is reset).
unsafe fn new_state<T>(value: T, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    let ptr = PgMemoryContexts::For(aggregate_context(fcinfo)).leak_and_drop_on_delete(value);
    Internal::from(Some(pg_sys::Datum::from(ptr)))
}

/// Turns a state that may live in a short-lived context (a deserialized one) into one owned
/// by the aggregate context.
unsafe fn adopt<T: Default>(mut state: Internal, fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    match state.get_mut::<T>() {
        Some(s) => new_state(std::mem::take(s), fcinfo),
        None => state,
    }
}

/// A deserialized state, allocated in the current (short-lived) context.
fn local_state<T>(value: T) -> Internal {
    Internal::new(value)
}

fn corrupted(what: &str) -> RfmError {
    RfmError::new(
        rfm_core::ErrorKind::InvalidBinary,
        format!("invalid serialized {what} state"),
    )
}

// ---------------------------------------------------------------------------------------
// quantile_thresholds

const QUANTILE_STATE_VERSION: u8 = 1;

#[derive(Default)]
pub struct QuantileState {
    buckets: u32,
    values: Vec<f64>,
}

fn quantile_add(state: &mut QuantileState, value: Option<f64>, buckets: Option<i32>) {
    let buckets = match buckets {
        None => raise(RfmError::null(
            "argument \"buckets\" of rfm.quantile_thresholds must not be NULL",
        )),
        Some(b) => quantile::check_buckets(b).or_raise() as u32,
    };
    if state.buckets == 0 {
        state.buckets = buckets;
    } else if state.buckets != buckets {
        raise(RfmError::invalid(format!(
            "buckets must be the same for every row, got {} and {}",
            state.buckets, buckets
        )));
    }
    if let Some(v) = value {
        state
            .values
            .push(quantile::normalize("value", v).or_raise());
    }
}

#[pg_extern(immutable, parallel_safe)]
fn quantile_thresholds_sfunc(
    state: Internal,
    value: Option<f64>,
    buckets: Option<i32>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    unsafe {
        if !state.initialized() {
            state = new_state(QuantileState::default(), fcinfo);
        }
        let s = state.get_mut::<QuantileState>().expect("initialized above");
        quantile_add(s, value, buckets);
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn quantile_thresholds_sfunc_default(
    state: Internal,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    quantile_thresholds_sfunc(state, value, Some(quantile::DEFAULT_BUCKETS), fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn quantile_thresholds_combine(
    a: Option<Internal>,
    b: Option<Internal>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let a = a.unwrap_or_default();
    let mut b = b.unwrap_or_default();
    unsafe {
        if !a.initialized() {
            return adopt::<QuantileState>(b, fcinfo);
        }
        let mut a = a;
        if let Some(other) = b.get_mut::<QuantileState>() {
            let s = a.get_mut::<QuantileState>().expect("checked above");
            if s.buckets == 0 {
                s.buckets = other.buckets;
            } else if other.buckets != 0 && other.buckets != s.buckets {
                raise(RfmError::invalid(format!(
                    "buckets must be the same for every row, got {} and {}",
                    s.buckets, other.buckets
                )));
            }
            s.values.append(&mut other.values);
        }
        a
    }
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn quantile_thresholds_serialize(state: Internal) -> Vec<u8> {
    let s = unsafe { state.get::<QuantileState>() }.expect("strict");
    let mut w = Writer::new(QUANTILE_STATE_VERSION, 13 + 8 * s.values.len());
    w.u32(s.buckets);
    w.f64s(&s.values);
    w.finish()
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn quantile_thresholds_deserialize(bytes: &[u8], _unused: Internal) -> Internal {
    let mut r = Reader::new(bytes, QUANTILE_STATE_VERSION)
        .ok_or_else(|| corrupted("quantile_thresholds"))
        .or_raise();
    let state = (|| {
        let buckets = r.u32()?;
        let values = r.f64s()?;
        r.end()?;
        Some(QuantileState { buckets, values })
    })()
    .ok_or_else(|| corrupted("quantile_thresholds"))
    .or_raise();
    local_state(state)
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn quantile_thresholds_final(state: Internal) -> Option<Vec<f64>> {
    let mut state = state;
    let s = unsafe { state.get_mut::<QuantileState>() }?;
    let buckets = s.buckets.max(2) as usize;
    quantile::thresholds(&mut s.values, buckets)
}

extension_sql!(
    r#"
CREATE AGGREGATE quantile_thresholds(value double precision, buckets integer) (
    SFUNC = quantile_thresholds_sfunc,
    STYPE = internal,
    FINALFUNC = quantile_thresholds_final,
    COMBINEFUNC = quantile_thresholds_combine,
    SERIALFUNC = quantile_thresholds_serialize,
    DESERIALFUNC = quantile_thresholds_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE quantile_thresholds(double precision, integer) IS
    'Linear-interpolation quantile thresholds t_k = Q(k/buckets), k = 1..buckets-1 (same numbers as percentile_cont)';
CREATE AGGREGATE quantile_thresholds(value double precision) (
    SFUNC = quantile_thresholds_sfunc_default,
    STYPE = internal,
    FINALFUNC = quantile_thresholds_final,
    COMBINEFUNC = quantile_thresholds_combine,
    SERIALFUNC = quantile_thresholds_serialize,
    DESERIALFUNC = quantile_thresholds_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE quantile_thresholds(double precision) IS
    'Quintile thresholds (5 buckets) of the values: the same numbers as percentile_cont(ARRAY[0.2,0.4,0.6,0.8])';
"#,
    name = "quantile_thresholds_aggregates",
    requires = [
        quantile_thresholds_sfunc,
        quantile_thresholds_sfunc_default,
        quantile_thresholds_combine,
        quantile_thresholds_serialize,
        quantile_thresholds_deserialize,
        quantile_thresholds_final,
    ]
);

// ---------------------------------------------------------------------------------------
// abc_thresholds

const ABC_STATE_VERSION: u8 = 1;

#[derive(Default)]
pub struct AbcState {
    shares: Vec<f64>,
    values: Vec<f64>,
}

fn abc_add(state: &mut AbcState, value: Option<f64>, shares: Option<&[Option<f64>]>) {
    let Some(shares) = shares else {
        raise(RfmError::null(
            "argument \"shares\" of rfm.abc_thresholds must not be NULL",
        ));
    };
    if state.shares.is_empty() {
        state.shares = abc::check_shares(shares).or_raise();
    } else if shares.len() != state.shares.len()
        || shares
            .iter()
            .zip(&state.shares)
            .any(|(a, b)| *a != Some(*b))
    {
        raise(RfmError::invalid("shares must be the same for every row"));
    }
    if let Some(v) = value {
        state
            .values
            .push(quantile::normalize("value", v).or_raise());
    }
}

fn abc_sfunc_impl(
    state: Internal,
    value: Option<f64>,
    shares: Option<&[Option<f64>]>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let mut state = state;
    unsafe {
        if !state.initialized() {
            state = new_state(AbcState::default(), fcinfo);
        }
        let s = state.get_mut::<AbcState>().expect("initialized above");
        abc_add(s, value, shares);
    }
    state
}

#[pg_extern(immutable, parallel_safe)]
fn abc_thresholds_sfunc(
    state: Internal,
    value: Option<f64>,
    shares: Option<Vec<Option<f64>>>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    abc_sfunc_impl(state, value, shares.as_deref(), fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
fn abc_thresholds_sfunc_default(
    state: Internal,
    value: Option<f64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    const DEFAULT: [Option<f64>; 3] = [
        Some(abc::DEFAULT_SHARES[0]),
        Some(abc::DEFAULT_SHARES[1]),
        Some(abc::DEFAULT_SHARES[2]),
    ];
    abc_sfunc_impl(state, value, Some(&DEFAULT), fcinfo)
}

#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn abc_thresholds_combine(
    a: Option<Internal>,
    b: Option<Internal>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> Internal {
    let a = a.unwrap_or_default();
    let mut b = b.unwrap_or_default();
    unsafe {
        if !a.initialized() {
            return adopt::<AbcState>(b, fcinfo);
        }
        let mut a = a;
        if let Some(other) = b.get_mut::<AbcState>() {
            let s = a.get_mut::<AbcState>().expect("checked above");
            if s.shares.is_empty() {
                s.shares = std::mem::take(&mut other.shares);
            } else if !other.shares.is_empty() && other.shares != s.shares {
                raise(RfmError::invalid("shares must be the same for every row"));
            }
            s.values.append(&mut other.values);
        }
        a
    }
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn abc_thresholds_serialize(state: Internal) -> Vec<u8> {
    let s = unsafe { state.get::<AbcState>() }.expect("strict");
    let mut w = Writer::new(
        ABC_STATE_VERSION,
        17 + 8 * (s.shares.len() + s.values.len()),
    );
    w.f64s(&s.shares);
    w.f64s(&s.values);
    w.finish()
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn abc_thresholds_deserialize(bytes: &[u8], _unused: Internal) -> Internal {
    let mut r = Reader::new(bytes, ABC_STATE_VERSION)
        .ok_or_else(|| corrupted("abc_thresholds"))
        .or_raise();
    let state = (|| {
        let shares = r.f64s()?;
        let values = r.f64s()?;
        r.end()?;
        Some(AbcState { shares, values })
    })()
    .ok_or_else(|| corrupted("abc_thresholds"))
    .or_raise();
    local_state(state)
}

#[pg_extern(immutable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn abc_thresholds_final(state: Internal) -> Option<Vec<f64>> {
    let mut state = state;
    let s = unsafe { state.get_mut::<AbcState>() }?;
    if s.shares.is_empty() {
        return None;
    }
    abc::thresholds(&mut s.values, &s.shares)
}

extension_sql!(
    r#"
CREATE AGGREGATE abc_thresholds(value double precision, shares double precision[]) (
    SFUNC = abc_thresholds_sfunc,
    STYPE = internal,
    FINALFUNC = abc_thresholds_final,
    COMBINEFUNC = abc_thresholds_combine,
    SERIALFUNC = abc_thresholds_serialize,
    DESERIALFUNC = abc_thresholds_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE abc_thresholds(double precision, double precision[]) IS
    'For each ABC tier but the last, the smallest value still in it (non-increasing)';
CREATE AGGREGATE abc_thresholds(value double precision) (
    SFUNC = abc_thresholds_sfunc_default,
    STYPE = internal,
    FINALFUNC = abc_thresholds_final,
    COMBINEFUNC = abc_thresholds_combine,
    SERIALFUNC = abc_thresholds_serialize,
    DESERIALFUNC = abc_thresholds_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE abc_thresholds(double precision) IS
    'ABC thresholds for the 80/15/5 split: the smallest value still in A, then in B';
"#,
    name = "abc_thresholds_aggregates",
    requires = [
        abc_thresholds_sfunc,
        abc_thresholds_sfunc_default,
        abc_thresholds_combine,
        abc_thresholds_serialize,
        abc_thresholds_deserialize,
        abc_thresholds_final,
    ]
);
