//! `rfm.analyze` (one-pass aggregate) and its accessors. The transition function reads its
//! arguments straight from `fcinfo` so that one C function serves every signature
//! (bigint/text keys × numeric/double precision amounts, with or without options) and a
//! row costs a hash lookup, not a conversion.

use crate::errors::{raise, OrRaise};
use crate::text::{self, jsonb_value, varlena_bytes, Jsonb, ServerText};
use pgrx::prelude::*;
use pgrx::{
    direct_function_call, AnyNumeric, GucContext, GucFlags, GucRegistry, GucSetting, Internal,
    IntoDatum, PgMemoryContexts, PgSqlErrorCode,
};
use rfm_core::analysis::{self, Analysis, Config, Days, Key, Method, Money, State};
use rfm_core::clv;
use rfm_core::codec::Reader;
use rfm_core::scheme::Segmenter;
use rfm_core::{abc, numeric, quantile, scheme, ErrorKind, RfmError};
use serde_json::Value;
use std::ffi::CString;

const OPTION_KEYS: [&str; 14] = [
    "as_of",
    "period",
    "year",
    "time_zone",
    "buckets",
    "scheme",
    "method",
    "thresholds",
    "abc_shares",
    "abc_names",
    "abc_min_sales",
    "keep_excluded",
    "metrics",
    "clv",
];

/// The state plus the options it was made with: the raw `jsonb` bytes of the options
/// argument, compared on every row and when partial states are combined, so that options
/// that differ between rows are an error whatever the row order or plan.
pub struct AnalyzeState {
    state: State,
    options_bytes: Vec<u8>,
    /// Whether the options are the same datum on every row (a constant or a query
    /// parameter): then they are compared with the first row's only once.
    options_stable: bool,
    /// The purchase-day summary of the CLV models (SPEC §12), when the rules read `p_alive`
    /// or `clv` (or the option `"clv"` asks for them).
    clv: Option<ClvPart>,
    /// The token under which this state is registered to be handed over whole (see
    /// [`analyze_serialize`]), until it is.
    handed: Option<u64>,
}

impl Drop for AnalyzeState {
    fn drop(&mut self) {
        // a state freed before it was handed over can no longer be found by its token
        if let Some(token) = self.handed.take() {
            // try_with: nothing to unregister once the registry itself is gone (at exit)
            let _ = HANDED.try_with(|h| h.borrow_mut().retain(|&(t, _)| t != token));
        }
    }
}

thread_local! {
    /// The partial states of this backend that were serialized as a token and wait to be
    /// taken by the deserialization in the same process (see [`analyze_serialize`]):
    /// (token, state). A state leaves it when it is taken or freed, so a token finds only
    /// a live state.
    static HANDED: std::cell::RefCell<Vec<(u64, *mut AnalyzeState)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    static NEXT_TOKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
    /// States this backend has taken over whole (for the tests).
    static TAKEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many partial states this backend has taken over whole so far.
#[cfg(any(test, feature = "pg_test"))]
pub fn states_taken_whole() -> u64 {
    TAKEN.with(|t| t.get())
}

/// The first eight bytes of a token: where a serialized state has the length of its
/// options, a length no state has.
const TOKEN_MARK: [u8; 8] = [0xFF; 8];

/// Whether the partial state `fcinfo` serializes may be handed over whole: in the process
/// that also combines it (not a parallel worker), from a plain aggregate (one group, whose
/// state lives until the plan ends or is rescanned, and whose result the combining
/// aggregate above reads at once: a grouped one frees a group's state when it moves to the
/// next, which may come before the result is read).
unsafe fn may_hand_over(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    if pg_sys::ParallelWorkerNumber >= 0 {
        return false;
    }
    let context = (*fcinfo).context;
    !context.is_null()
        && (*context).type_ == pg_sys::NodeTag::T_AggState
        && (*(context as *mut pg_sys::AggState)).aggstrategy == pg_sys::AggStrategy::AGG_PLAIN
}

/// What an analysis keeps for `p_alive` and `clv`: the per-customer purchase days of
/// `rfm.clv_fit`, and the local days of the instants seen.
pub struct ClvPart {
    summary: clv::Summary,
    days: clv::LocalDays,
    /// The time zone of the purchase days (the option `time_zone`; null: the session's).
    zone: *mut pg_sys::pg_tz,
}

impl ClvPart {
    fn new(config: &Config, text_keys: bool) -> Option<ClvPart> {
        let o = config.clv_settings()?;
        let as_of = TimestampWithTimeZone::try_from(config.as_of)
            .unwrap_or_else(|_| raise(RfmError::out_of_range("option \"as_of\" is out of range")));
        let c = clv::ClvConfig {
            as_of: config.as_of,
            as_of_day: Date::from(as_of).to_pg_epoch_days(),
            unit_days: o.unit_days,
            penalizer: o.penalizer,
            spend_model: true,
        };
        c.validate().or_raise();
        let mut summary = clv::Summary::new(c, text_keys);
        summary.max_customers = max_customers();
        Some(ClvPart {
            summary,
            days: clv::LocalDays::new(),
            zone: std::ptr::null_mut(),
        })
    }
}

/// The zone of the option `time_zone` (PostgreSQL's own zone data), null when the option is
/// absent (the session's zone), or 22023.
pub(crate) fn option_zone(obj: &serde_json::Map<String, Value>) -> *mut pg_sys::pg_tz {
    match obj.get("time_zone") {
        None | Some(Value::Null) => std::ptr::null_mut(),
        Some(Value::String(name)) => {
            let unknown = || {
                option_error(
                    "time_zone",
                    &format!("is not a time zone PostgreSQL knows: {}", rfm_core::shown(name)),
                )
                .with_hint("Use an IANA name such as \"Europe/Berlin\" (SELECT name FROM pg_timezone_names lists them).")
            };
            let c = CString::new(text::to_server(name).into_owned())
                .unwrap_or_else(|_| raise(unknown()));
            // SAFETY: pg_tzset reads a NUL-terminated name and returns a zone PostgreSQL
            // keeps for the life of the process, or NULL
            let zone = unsafe { pg_sys::pg_tzset(c.as_ptr()) };
            // what the TimeZone setting accepts too (no leap-second zones), so that a managed
            // segmentation can refresh in any zone this accepts
            if zone.is_null() || !unsafe { pg_sys::pg_tz_acceptable(zone) } {
                raise(unknown());
            }
            zone
        }
        Some(other) => raise(option_error(
            "time_zone",
            &format!("must be a time zone name, got {other}"),
        )),
    }
}

/// The options of a state, read back from their jsonb bytes (empty: no options).
fn options_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Object(Default::default());
    }
    // SAFETY: the bytes are the data of a jsonb datum (varlena_bytes of the options
    // argument); they are copied behind a new 4-byte header into a palloc'd varlena
    unsafe {
        let len = bytes.len() + pg_sys::VARHDRSZ;
        let p = pg_sys::palloc(len) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(pg_sys::VARHDRSZ), bytes.len());
        pgrx::set_varsize_4b(p as *mut pg_sys::varlena, len as i32);
        jsonb_value(pg_sys::Datum::from(p))
    }
}

/// Runs `f` with PostgreSQL's session time zone set to `zone` (when not null) and restored
/// afterwards, also when `f` fails: every conversion between timestamps and days in `f`
/// (a timestamp's date, a date's midnight, timestamp input) then happens in `zone` (SPEC §2,
/// the option `time_zone`). It sets the process's `session_timezone`, not the TimeZone
/// setting: nothing a parallel worker may not change, and nothing that outlives `f`.
pub(crate) fn in_zone<T>(zone: *mut pg_sys::pg_tz, f: impl FnOnce() -> T) -> T {
    if zone.is_null() {
        return f();
    }
    struct Restore(*mut pg_sys::pg_tz);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the pointer read below (a zone PostgreSQL keeps)
            unsafe { pg_sys::session_timezone = self.0 };
        }
    }
    // SAFETY: a backend-global pointer, read and replaced by a zone from pg_tzset; the
    // guard restores it when `f` returns or unwinds (a PostgreSQL error inside `f` becomes a
    // Rust panic in pgrx, so the guard runs before the error goes on)
    let _restore = unsafe {
        let prev = pg_sys::session_timezone;
        pg_sys::session_timezone = zone;
        Restore(prev)
    };
    f()
}

/// The first instant of local day `d` (days since 2000-01-01) in the session time zone.
pub(crate) fn local_midnight(d: i32) -> Result<i64, RfmError> {
    if !(-2_451_545..=107_000_000).contains(&d) {
        return Err(RfmError::out_of_range("ordered_at is out of range"));
    }
    // SAFETY: `d` is a valid date (checked above); date_timestamptz of it returns a
    // timestamp or raises PostgreSQL's own out-of-range error
    let ts: Option<TimestampWithTimeZone> = unsafe {
        let date = Date::from_pg_epoch_days(d);
        direct_function_call(pg_sys::date_timestamptz, &[date.into_datum()])
    };
    ts.map(|t| t.into_inner())
        .ok_or_else(|| RfmError::out_of_range("ordered_at is out of range"))
}

pub(crate) fn option_error(key: &str, what: &str) -> RfmError {
    RfmError::invalid(format!("option \"{key}\" {what}"))
}

/// PostgreSQL's earliest and latest timestamps (MIN_TIMESTAMP, END_TIMESTAMP), and a day.
const FIRST_TIMESTAMP: i64 = -211_813_488_000_000_000;
const LAST_TIMESTAMP: i64 = 9_223_371_331_200_000_000;
const USECS_PER_DAY: i64 = 86_400_000_000;

/// Runs a conversion of an option's text by PostgreSQL's own input functions; an error they
/// raise (an interval field out of range, a date out of range) becomes 22023 naming the
/// option, with PostgreSQL's message. The statement fails either way: nothing goes on after
/// the caught error but raising another.
fn naming_option<T>(key: &str, f: impl FnOnce() -> T) -> T {
    let key = key.to_string();
    pgrx::PgTryBuilder::new(std::panic::AssertUnwindSafe(f))
        .catch_others(move |e| {
            use pgrx::PgSqlErrorCode::*;
            // only the input functions' data errors: anything else (a cancel) goes on as it is
            let what = match &e {
                pgrx::pg_sys::panic::CaughtError::PostgresError(r)
                    if matches!(
                        r.sql_error_code(),
                        ERRCODE_DATETIME_FIELD_OVERFLOW
                            | ERRCODE_INTERVAL_FIELD_OVERFLOW
                            | ERRCODE_INVALID_DATETIME_FORMAT
                            | ERRCODE_INVALID_TEXT_REPRESENTATION
                            | ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE
                    ) =>
                {
                    Some(r.message().to_string())
                }
                _ => None,
            };
            match what {
                Some(what) => raise(option_error(&key, &format!("is not valid: {what}"))),
                None => e.rethrow(),
            }
        })
        .execute()
}

pub(crate) fn options_differ() -> RfmError {
    RfmError::invalid("options must be the same for every row")
        .with_hint("Pass the options as a constant, or compute them once, for example in a CTE.")
}

/// A JSON number as written, shortened when long (`jsonb` prints `1e400` as 401 digits).
fn number_text(n: &serde_json::Number) -> String {
    let s = n.to_string();
    if s.len() <= 24 {
        return s;
    }
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all: String = int.chars().chain(frac.chars()).collect();
    let Some(first) = all.find(|c| c != '0') else {
        return format!("{sign}0");
    };
    let exp = int.len() as i64 - 1 - first as i64;
    let sig = all[first..].trim_end_matches('0');
    let sig: String = sig.chars().take(7).collect();
    let mantissa = if sig.len() > 1 {
        format!("{}.{}", &sig[..1], &sig[1..])
    } else {
        sig
    };
    format!("{sign}{mantissa}e{exp}")
}

/// A number option: finite, else 22003 naming the key and the number.
pub(crate) fn option_number(key: &str, v: &Value) -> Result<f64, RfmError> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| {
            RfmError::out_of_range(format!(
                "option \"{key}\" is out of range: {}",
                number_text(n)
            ))
        }),
        other => Err(option_error(key, &format!("must be a number, got {other}"))),
    }
}

/// An integer option that fits in `i32`: a fraction is 22023, a too large number 22003.
fn option_i32(key: &str, v: &Value) -> Result<i32, RfmError> {
    let Value::Number(n) = v else {
        return Err(option_error(key, &format!("must be an integer, got {v}")));
    };
    let out_of_range = || {
        RfmError::out_of_range(format!(
            "option \"{key}\" is out of range: {}",
            number_text(n)
        ))
    };
    let f = option_number(key, v)?;
    if f.fract() != 0.0 {
        return Err(option_error(
            key,
            &format!("must be an integer, got {}", number_text(n)),
        ));
    }
    match n.as_i64() {
        Some(i) => i32::try_from(i).map_err(|_| out_of_range()),
        None if f.abs() <= i32::MAX as f64 => Ok(f as i32), // written as 5.0
        None => Err(out_of_range()),
    }
}

fn parse_f64_array(key: &str, v: &Value) -> Result<Vec<f64>, RfmError> {
    let arr = v
        .as_array()
        .ok_or_else(|| option_error(key, &format!("must be an array of numbers, got {v}")))?;
    arr.iter()
        .map(|x| match x {
            Value::Number(_) => option_number(key, x),
            _ => Err(option_error(
                key,
                &format!("must be an array of numbers, got {x}"),
            )),
        })
        .collect()
}

/// Resolves the options of one aggregate call (once per aggregate, not per row).
fn parse_options(options: Value) -> Config {
    let obj = match options.as_object() {
        Some(o) => o,
        None => raise(RfmError::invalid(format!(
            "options must be a JSON object, got {options}"
        ))),
    };
    let zone = option_zone(obj);
    in_zone(zone, || parse_options_in_zone(obj))
}

/// [`parse_options`] in the time zone of the options (a bare-date `as_of` is the end of
/// that day there).
fn parse_options_in_zone(obj: &serde_json::Map<String, Value>) -> Config {
    for k in obj.keys() {
        if !OPTION_KEYS.contains(&k.as_str()) {
            // the nearest valid key, when one is close: a typo or a near-synonym
            let nearest = OPTION_KEYS
                .iter()
                .map(|o| (strsim::damerau_levenshtein(&k.to_lowercase(), o), *o))
                .min()
                .filter(|(d, o)| *d <= 2.max(o.len() / 4));
            let hint = match nearest {
                Some((_, o)) => format!(
                    "Did you mean \"{o}\"? Valid options are: {}.",
                    OPTION_KEYS.join(", ")
                ),
                None => format!("Valid options are: {}.", OPTION_KEYS.join(", ")),
            };
            raise(RfmError::invalid(format!("unknown option \"{k}\"")).with_hint(hint));
        }
    }
    let text_opt = |key: &str| -> Option<String> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => raise(option_error(key, &format!("must be a string, got {other}"))),
        }
    };
    // a calendar year: as_of the end of its December 31, a period of one year (SPEC §2,
    // the option managed segmentations take too)
    let year = match obj.get("year") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(y) if (1..=9999).contains(&y) => Some(y),
            _ => raise(
                option_error("year", &format!("must be a year from 1 to 9999, got {v}"))
                    .with_hint("For example {\"year\": 2025}: the calendar year 2025."),
            ),
        },
    };
    if year.is_some() && (text_opt("as_of").is_some() || text_opt("period").is_some()) {
        raise(RfmError::invalid(
            "option \"year\" cannot be combined with \"as_of\" or \"period\"",
        ));
    }
    let as_of_given = year
        .map(|y| format!("{y:04}-12-31"))
        .or_else(|| text_opt("as_of"));
    let as_of = match &as_of_given {
        // a bare date means the end of that day: orders placed on it count (SPEC §2)
        Some(s) if is_bare_date(s) => end_of_day(s),
        Some(s) => naming_option("as_of", || s.parse::<TimestampWithTimeZone>().ok())
            .unwrap_or_else(|| {
                raise(
                    option_error("as_of", &format!("is not a timestamp: \"{s}\"")).with_hint(
                        "Write an ISO 8601 date or timestamp: \"2025-12-31\" (the end of that day) or \"2025-12-31 18:00+01\".",
                    ),
                )
            }),
        None => unsafe {
            TimestampWithTimeZone::try_from(pg_sys::GetCurrentTransactionStartTimestamp())
                .unwrap_or_else(|_| raise(option_error("as_of", "is out of range")))
        },
    };
    let as_of_raw: i64 = as_of.into_inner();
    if as_of.is_infinity() || as_of.is_neg_infinity() {
        raise(RfmError::out_of_range("option \"as_of\" must be finite"));
    }
    let period_text = if year.is_some() {
        "1 year".to_string()
    } else {
        text_opt("period").unwrap_or_else(|| "12 months".to_string())
    };
    let period =
        naming_option("period", || period_text.parse::<Interval>().ok()).unwrap_or_else(|| {
            raise(
                option_error("period", &format!("is not an interval: \"{period_text}\""))
                    .with_hint("For example \"12 months\", \"90 days\" or \"2 years\"."),
            )
        });
    let start: TimestampWithTimeZone = naming_option("period", || unsafe {
        direct_function_call(
            pg_sys::timestamptz_mi_interval,
            &[as_of.into_datum(), period.into_datum()],
        )
    })
    .unwrap_or_else(|| raise(option_error("period", "is out of range")));
    let window_start: i64 = start.into_inner();
    // the analysis reads the local day before its window and the day after as_of: both must
    // be days PostgreSQL knows (4714-11-24 BC to 5874897 AD, timestamps to 294276 AD)
    if window_start < FIRST_TIMESTAMP + 3 * USECS_PER_DAY {
        raise(
            option_error(
                "as_of",
                "is too early for its period: the window would start before 4714-11-27 BC, three days after the first day PostgreSQL knows",
            )
            .with_hint("Choose a later as_of or a shorter period."),
        );
    }
    if as_of_raw > LAST_TIMESTAMP - 3 * USECS_PER_DAY {
        raise(option_error(
            "as_of",
            "is too late: it must be at most 294276-12-29 AD",
        ));
    }
    if window_start >= as_of_raw {
        raise(option_error(
            "period",
            &format!("must be positive, got \"{period_text}\""),
        ));
    }
    let buckets = match obj.get("buckets") {
        None | Some(Value::Null) => quantile::DEFAULT_BUCKETS as usize,
        Some(v) => quantile::check_buckets(option_i32("buckets", v).or_raise()).or_raise(),
    };
    let scheme = match obj.get("scheme") {
        None => Some(Segmenter::Grid(scheme::builtin("standard").or_raise())),
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(crate::schemes::resolve(s)),
        Some(other) => raise(option_error(
            "scheme",
            &format!("must be a string or null, got {other}"),
        )),
    };
    let method = match text_opt("method").as_deref() {
        None | Some("quantile") => Method::Quantile,
        Some("ntile") => Method::Ntile,
        Some("fixed") => Method::Fixed,
        Some(other) => raise(option_error(
            "method",
            &format!("must be quantile, ntile or fixed, got \"{other}\""),
        )),
    };
    let fixed = match obj.get("thresholds") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            for k in t.keys() {
                if !analysis::METRICS.contains(&k.as_str()) {
                    raise(option_error(
                        "thresholds",
                        &format!(
                            "has an unknown metric \"{k}\" (use recency, frequency, monetary)"
                        ),
                    ));
                }
            }
            let get = |m: &str| -> Vec<f64> {
                let key = format!("thresholds.{m}");
                match t.get(m) {
                    Some(v) => parse_f64_array(&key, v).or_raise(),
                    None => raise(option_error(&key, "is missing")),
                }
            };
            Some([get("recency"), get("frequency"), get("monetary")])
        }
        Some(other) => raise(option_error(
            "thresholds",
            &format!("must be an object, got {other}"),
        )),
    };
    let abc_shares = match obj.get("abc_shares") {
        None | Some(Value::Null) => abc::DEFAULT_SHARES.to_vec(),
        Some(v) => {
            let shares: Vec<Option<f64>> = parse_f64_array("abc_shares", v)
                .or_raise()
                .into_iter()
                .map(Some)
                .collect();
            abc::check_shares(&shares)
                .map_err(|e| RfmError {
                    message: format!("abc_shares: {}", e.message),
                    ..e
                })
                .or_raise()
        }
    };
    let abc_names = match obj.get("abc_names") {
        None | Some(Value::Null) => abc::default_names(abc_shares.len()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => raise(option_error(
                    "abc_names",
                    &format!("must be an array of strings, got {other}"),
                )),
            })
            .collect(),
        Some(other) => raise(option_error(
            "abc_names",
            &format!("must be an array of strings, got {other}"),
        )),
    };
    let abc_min_sales = match obj.get("abc_min_sales") {
        None | Some(Value::Null) => None,
        Some(v) => Some(option_number("abc_min_sales", v).or_raise()),
    };
    let keep_excluded = match obj.get("keep_excluded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => raise(option_error(
            "keep_excluded",
            &format!("must be true or false, got {other}"),
        )),
    };
    let metrics = match obj.get("metrics") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => raise(option_error(
            "metrics",
            &format!("must be true or false, got {other}"),
        )),
    };
    let clv = obj.get("clv").and_then(parse_clv);
    let config = Config {
        as_of: as_of_raw,
        as_of_default: as_of_given.is_none(),
        window_start,
        period: period_text,
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
    };
    config.validate().or_raise();
    config
}

/// The option `"clv"`: `{"time_unit", "horizon", "discount_rate", "penalizer"}`, every key
/// optional (weeks, 52, 0, 0); `null` is no option.
fn parse_clv(v: &Value) -> Option<analysis::ClvOptions> {
    let obj = match v {
        Value::Null => return None,
        Value::Object(o) => o,
        other => raise(option_error(
            "clv",
            &format!("must be an object, got {other}"),
        )),
    };
    const KEYS: [&str; 4] = ["time_unit", "horizon", "discount_rate", "penalizer"];
    for k in obj.keys() {
        if !KEYS.contains(&k.as_str()) {
            raise(
                RfmError::invalid(format!("unknown option \"clv.{k}\""))
                    .with_hint(format!("Valid keys of \"clv\" are: {}.", KEYS.join(", "))),
            );
        }
    }
    let mut o = analysis::ClvOptions::default();
    if let Some(u) = obj.get("time_unit") {
        o.unit_days = u
            .as_str()
            .and_then(clv::ClvConfig::unit_days_of)
            .unwrap_or_else(|| {
                raise(option_error(
                    "clv.time_unit",
                    &format!("must be \"day\", \"week\" or \"month\", got {u}"),
                ))
            });
    }
    for (key, slot) in [
        ("horizon", &mut o.horizon),
        ("discount_rate", &mut o.discount_rate),
        ("penalizer", &mut o.penalizer),
    ] {
        if let Some(x) = obj.get(key) {
            *slot = option_number(&format!("clv.{key}"), x).or_raise();
        }
    }
    Some(o)
}

/// Whether an `as_of` text is a bare date (`2025-12-31`).
pub(crate) fn is_bare_date(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The last instant of a date in the session time zone: the next midnight less 1 µs.
fn end_of_day(s: &str) -> TimestampWithTimeZone {
    let date = s.trim().parse::<Date>().unwrap_or_else(|_| {
        raise(
            option_error("as_of", &format!("is not a date: \"{s}\""))
                .with_hint("Write an ISO 8601 date such as \"2025-12-31\" (the end of that day)."),
        )
    });
    // SAFETY: the day after a valid date (the parser accepts no date near the end of the
    // range that would overflow), then date_timestamptz of it
    let midnight: TimestampWithTimeZone = unsafe {
        let next = Date::from_pg_epoch_days(date.to_pg_epoch_days().saturating_add(1));
        direct_function_call(pg_sys::date_timestamptz, &[next.into_datum()])
    }
    .unwrap_or_else(|| raise(RfmError::out_of_range("option \"as_of\" is out of range")));
    TimestampWithTimeZone::try_from(midnight.into_inner() - 1)
        .unwrap_or_else(|_| raise(RfmError::out_of_range("option \"as_of\" is out of range")))
}

pub(crate) unsafe fn aggregate_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    let mut ctx = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut ctx) == 0 || ctx.is_null() {
        raise(RfmError::invalid(
            "this support function may only be called as part of an aggregate",
        ));
    }
    ctx
}

pub(crate) unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<pg_sys::Datum> {
    if i >= (*fcinfo).nargs as usize || pgrx::fcinfo::pg_arg_is_null(fcinfo, i) {
        None
    } else {
        Some(pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, i))
    }
}

/// Returns the rows of a set-returning function in one call, in a tuplestore (materialize
/// mode), rather than one call per row: a function that pins `search_path` with a `SET`
/// clause then saves and restores the settings once per call, not once per row (for the
/// 842,621 customers of the benchmark that was half the time), and the set-returning
/// functions of the extension all pin it (SPEC §11). Each row is built in a
/// memory context reset after the tuplestore has copied it.
///
/// # Safety
/// `fcinfo` is the call of a set-returning function whose result columns are the `N`
/// datums `datums` gives (a datum of the column's type, or None for NULL).
pub(crate) unsafe fn return_rows<R, const N: usize>(
    fcinfo: pg_sys::FunctionCallInfo,
    mut rows: impl Iterator<Item = R>,
    datums: impl Fn(R) -> [Option<pg_sys::Datum>; N],
) {
    // the result's descriptor as the caller expects it (a function in FROM, or in a select
    // list): it exists for a SETOF text too, where the function's own type is not a row
    pg_sys::InitMaterializedSRF(fcinfo, pg_sys::MAT_SRF_USE_EXPECTED_DESC);
    let rsinfo = (*fcinfo).resultinfo as *mut pg_sys::ReturnSetInfo;
    let (store, desc) = ((*rsinfo).setResult, (*rsinfo).setDesc);
    if (*desc).natts as usize != N {
        // the SQL declaration and this code disagree: a bug of the extension, never data
        pgrx::error!(
            "rfm: a set-returning function is declared with {} result columns, its code returns {N}",
            (*desc).natts
        );
    }
    let mut row_context = PgMemoryContexts::new("rfm result row");
    loop {
        let more = row_context.switch_to(|_| match rows.next() {
            None => false,
            Some(row) => {
                let mut values = [pg_sys::Datum::from(0usize); N];
                let mut nulls = [true; N];
                for (i, d) in datums(row).into_iter().enumerate() {
                    if let Some(d) = d {
                        values[i] = d;
                        nulls[i] = false;
                    }
                }
                pg_sys::tuplestore_putvalues(store, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
                true
            }
        });
        row_context.reset();
        if !more {
            break;
        }
    }
}

/// How many customers one analysis may hold: its value must fit in 1 GB. The setting
/// `rfm.max_customers` may lower the limit (never raise it).
const MAX_CUSTOMERS_LIMIT: i32 = 20_000_000;
static MAX_CUSTOMERS: GucSetting<i32> = GucSetting::<i32>::new(MAX_CUSTOMERS_LIMIT);

/// The longest text customer key, in bytes. With `rfm.max_customers` it bounds the memory of
/// one analysis (each customer holds its key); checked on the key's stored size before the
/// key is read (detoasted).
const MAX_KEY_BYTES_LIMIT: i32 = 1 << 20;
static MAX_KEY_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1024);

/// The largest saved scheme document, in bytes (its jsonb size), checked before it is read.
const MAX_SCHEME_BYTES_LIMIT: i32 = 16 << 20;
static MAX_SCHEME_BYTES: GucSetting<i32> = GucSetting::<i32>::new(64 * 1024);

pub fn init_gucs() {
    GucRegistry::define_int_guc(
        c"rfm.max_customers",
        c"Largest number of customers one rfm.analyze value may hold.",
        c"An analysis must fit in one value (1 GB); rfm.analyze stops with an error (54000) past this many customers instead of running out of memory.",
        &MAX_CUSTOMERS,
        1,
        MAX_CUSTOMERS_LIMIT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"rfm.max_key_bytes",
        c"Longest text customer key, in bytes, that rfm.analyze and rfm.clv_fit accept.",
        c"Together with rfm.max_customers it bounds the memory of one analysis; a longer key is an error (54000) before it is read.",
        &MAX_KEY_BYTES,
        16,
        MAX_KEY_BYTES_LIMIT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"rfm.max_scheme_bytes",
        c"Largest segment scheme document, in bytes, that rfm.create_scheme saves.",
        c"Every reader of rfm.schemes and every analysis with the scheme reads the whole document; a larger one is refused (54000) before it is read. Only superusers may raise it.",
        &MAX_SCHEME_BYTES,
        1024,
        MAX_SCHEME_BYTES_LIMIT,
        GucContext::Suset,
        GucFlags::default(),
    );
}

/// 54000 when a text key's stored size passes `rfm.max_key_bytes` (read without detoasting).
///
/// # Safety
/// `key` is a text datum.
pub(crate) unsafe fn check_key_size(key: pg_sys::Datum) {
    // SAFETY: a text datum (the caller's contract). A key stored inline and uncompressed
    // (nearly every key) has its size in its header, read without a call into the server on
    // every row; a compressed or external one asks for its raw size, which needs no
    // detoasting either.
    let size = unsafe {
        let p: *mut pg_sys::varlena = key.cast_mut_ptr();
        if pgrx::varlena::varatt_is_4b_c(p) || pgrx::varlena::varatt_is_1b_e(p) {
            pg_sys::toast_raw_datum_size(key).saturating_sub(pg_sys::VARHDRSZ)
        } else {
            pgrx::varlena::varsize_any_exhdr(p)
        }
    };
    let limit = MAX_KEY_BYTES.get().max(16) as usize;
    if size > limit {
        raise(
            RfmError::new(
                rfm_core::ErrorKind::ProgramLimit,
                format!(
                    "a customer key is {size} bytes long; the limit is rfm.max_key_bytes ({limit})"
                ),
            )
            .with_hint(
                "Segment by a shorter key (an id, or md5(key)), or raise rfm.max_key_bytes.",
            ),
        );
    }
}

pub(crate) fn max_customers() -> usize {
    MAX_CUSTOMERS.get().max(1) as usize
}

/// One row's amount as the transition function read it.
enum Amount {
    Exact(numeric::Decimal),
    Float(f64),
}

/// Whether the options argument of the aggregate call is a constant or a query parameter,
/// the same datum on every row. Read from the `Aggref` itself: the transition function's
/// own expression has placeholder arguments, for which `get_fn_expr_arg_stable` is false.
unsafe fn options_are_constant(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    let aggref = pg_sys::AggGetAggref(fcinfo);
    // the aggregate's fourth argument (the transition function's fifth, after the state)
    if aggref.is_null() || pg_sys::list_length((*aggref).args) < 4 {
        return false;
    }
    let te = pg_sys::list_nth((*aggref).args, 3) as *mut pg_sys::TargetEntry;
    let expr = (*te).expr as *mut pg_sys::Node;
    if expr.is_null() {
        return false;
    }
    match (*expr).type_ {
        pg_sys::NodeTag::T_Const => true,
        pg_sys::NodeTag::T_Param => {
            (*(expr as *mut pg_sys::Param)).paramkind == pg_sys::ParamKind::PARAM_EXTERN
        }
        _ => false,
    }
}

/// The transition function of every `rfm.analyze` signature.
#[pg_extern(sql = false)]
fn analyze_sfunc(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        // the options, on every row (NULL rows included, before anything is skipped): NULL
        // options are an error, and so are options that differ from the first row's
        let has_options = (*fcinfo).nargs > 4;
        let options = arg(fcinfo, 4);
        if has_options && options.is_none() {
            raise(RfmError::null(
                "argument \"options\" of rfm.analyze must not be NULL",
            ));
        }
        let mut state = Internal::from(arg(fcinfo, 0));
        if !state.initialized() {
            let options_bytes = options.map(|d| varlena_bytes(d)).unwrap_or(&[]);
            let flinfo = (*fcinfo).flinfo;
            let key_type = pg_sys::get_fn_expr_argtype(flinfo, 1);
            let amount_type = pg_sys::get_fn_expr_argtype(flinfo, 3);
            let json = options.map_or(Value::Object(Default::default()), |d| jsonb_value(d));
            let zone = json.as_object().map_or(std::ptr::null_mut(), option_zone);
            let config = parse_options(json);
            let mut new_state = State::new(
                config,
                key_type == pg_sys::TEXTOID,
                amount_type == pg_sys::NUMERICOID,
            );
            new_state.max_customers = max_customers();
            let clv = in_zone(zone, || {
                ClvPart::new(&new_state.config, new_state.text_keys())
            })
            .map(|c| ClvPart { zone, ..c });
            let s = AnalyzeState {
                state: new_state,
                options_bytes: options_bytes.to_vec(),
                options_stable: has_options && options_are_constant(fcinfo),
                clv,
                handed: None,
            };
            let ptr = PgMemoryContexts::For(aggregate_context(fcinfo)).leak_and_drop_on_delete(s);
            state = Internal::from(Some(pg_sys::Datum::from(ptr)));
        }
        let s = state.get_mut::<AnalyzeState>().expect("initialized");
        if !s.options_stable {
            let options_bytes = options.map(|d| varlena_bytes(d)).unwrap_or(&[]);
            if options_bytes != s.options_bytes.as_slice() {
                raise(options_differ());
            }
        }
        let (key, Some(ts), Some(amount)) = (arg(fcinfo, 1), arg(fcinfo, 2), arg(fcinfo, 3)) else {
            return state;
        };
        let ts = ts.value() as i64;
        let Some(key) = key else {
            // a row without a customer key: counted with its amount (SPEC §2)
            let result = if s.state_exact() {
                let decoded = numeric::decode(varlena_bytes(amount))
                    .ok_or_else(numeric::too_large)
                    .or_raise();
                s.state
                    .add_unkeyed_exact(ts, numeric::check(decoded).or_raise())
            } else {
                let v = f64::from_bits(amount.value() as u64);
                rfm_core::error::check_finite("amount", v)
                    .and_then(|v| s.state.add_unkeyed_float(ts, v))
            };
            result.or_raise();
            return state;
        };
        let text_key;
        let key = if s.state_text_keys() {
            check_key_size(key);
            text_key = text::to_utf8(varlena_bytes(key));
            Key::Text(&text_key)
        } else {
            Key::Int(key.value() as i64)
        };
        // the amount, kept for the CLV summary (purchases up to as_of only); converted to a
        // number only there, so that the rows of an analysis without it do not pay for that
        let amount = if s.state_exact() {
            let bytes = varlena_bytes(amount);
            let decoded = numeric::decode(bytes)
                .ok_or_else(numeric::too_large)
                .or_raise();
            let d = numeric::check(decoded).or_raise();
            s.state.add_exact(key, ts, d).or_raise();
            Amount::Exact(d)
        } else {
            let v = f64::from_bits(amount.value() as u64);
            rfm_core::error::check_finite("amount", v)
                .and_then(|v| s.state.add_float(key, ts, v))
                .or_raise();
            Amount::Float(v)
        };
        if let Some(c) = s.clv.as_mut() {
            let v = match amount {
                Amount::Exact(d) => Money::Exact(d.units, d.scale).to_f64(),
                Amount::Float(v) => v,
            };
            // returns and rows after as_of are not part of the models (SPEC §12)
            if v >= 0.0 && ts <= c.summary.config.as_of {
                let zone = c.zone;
                let day = c
                    .days
                    .day_of(ts, |d| in_zone(zone, || local_midnight(d)))
                    .or_raise();
                c.summary.add(key, day, v).or_raise();
            }
        }
        state
    }
}

impl AnalyzeState {
    fn state_text_keys(&self) -> bool {
        self.state.text_keys()
    }

    fn state_exact(&self) -> bool {
        self.state.exact()
    }
}

fn too_large(customers: usize) -> RfmError {
    RfmError::new(
        ErrorKind::ProgramLimit,
        format!("the analysis of {customers} customers does not fit in one value (1 GB)"),
    )
    .with_hint("Filter the rows with WHERE, or partition the work, for example GROUP BY region.")
}

#[pg_extern(sql = false)]
fn analyze_combine(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        let a = Internal::from(arg(fcinfo, 0));
        let mut b = Internal::from(arg(fcinfo, 1));
        let Some(other) = b.get_mut::<AnalyzeState>() else {
            return a;
        };
        let mut a = a;
        if let Some(s) = a.get_mut::<AnalyzeState>() {
            // partial states of rows with different options: the same error as serially
            if s.options_bytes != other.options_bytes {
                raise(options_differ());
            }
        }
        let empty = State::new(other.state.config.clone(), false, false);
        let other_state = std::mem::replace(&mut other.state, empty);
        let other_clv = other.clv.take();
        match a.get_mut::<AnalyzeState>() {
            Some(s) => {
                s.state.merge(other_state).or_raise();
                match (s.clv.as_mut(), other_clv) {
                    (Some(mine), Some(theirs)) => mine.summary.merge(theirs.summary).or_raise(),
                    (None, None) => {}
                    _ => raise(options_differ()),
                }
                a
            }
            None => {
                let s = AnalyzeState {
                    state: other_state,
                    options_bytes: std::mem::take(&mut other.options_bytes),
                    options_stable: false,
                    clv: other_clv,
                    handed: None,
                };
                let ptr =
                    PgMemoryContexts::For(aggregate_context(fcinfo)).leak_and_drop_on_delete(s);
                Internal::from(Some(pg_sys::Datum::from(ptr)))
            }
        }
    }
}

/// Serializes a partial state. The leader of a parallel plan runs the plan's partial
/// aggregate too, and its state is deserialized and combined in the same process: that
/// state is not written out but registered, and only a token is serialized, by which the
/// deserialization takes the state itself (a table read as it is by the final step, not
/// written as a run and read back). Workers' states, and any state that might be freed
/// before it is read ([`may_hand_over`]), are written out in full.
#[pg_extern(sql = false)]
fn analyze_serialize(fcinfo: pg_sys::FunctionCallInfo) -> Vec<u8> {
    unsafe {
        let mut state = Internal::from(arg(fcinfo, 0));
        let s = state.get_mut::<AnalyzeState>().expect("strict");
        if may_hand_over(fcinfo) {
            // the leader's scan is over; the workers may still be writing their runs:
            // meanwhile, the order in which the final step will read this table
            s.state.prepare_reading().or_raise();
            let token = match s.handed {
                Some(t) => t,
                None => {
                    let t = NEXT_TOKEN.with(|n| n.replace(n.get() + 1));
                    let ptr: *mut AnalyzeState = s;
                    HANDED.with(|h| h.borrow_mut().push((t, ptr)));
                    s.handed = Some(t);
                    t
                }
            };
            let mut out = TOKEN_MARK.to_vec();
            out.extend_from_slice(&token.to_le_bytes());
            return out;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(s.options_bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.options_bytes);
        // the CLV summary, when there is one, goes before the analysis state
        match &s.clv {
            None => out.extend_from_slice(&0u64.to_le_bytes()),
            Some(c) => {
                let body = c.summary.serialize();
                out.extend_from_slice(&(body.len() as u64).to_le_bytes());
                out.extend_from_slice(&body);
            }
        }
        // the state, much the largest part, is written in place
        s.state.serialize_into(out).or_raise()
    }
}

#[pg_extern(sql = false)]
fn analyze_deserialize(fcinfo: pg_sys::FunctionCallInfo) -> Internal {
    unsafe {
        let bytes = varlena_bytes(arg(fcinfo, 0).expect("strict"));
        let corrupt = || {
            RfmError::new(
                ErrorKind::InvalidBinary,
                "invalid serialized rfm.analyze state",
            )
        };
        if bytes.len() == 16 && bytes[..8] == TOKEN_MARK {
            // a state of this process handed over whole: taken from its partial aggregate,
            // which keeps an empty one; a token without a live state is an error
            let token = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
            let ptr = HANDED.with(|h| {
                let mut h = h.borrow_mut();
                let at = h.iter().position(|&(t, _)| t == token)?;
                Some(h.swap_remove(at).1)
            });
            let Some(ptr) = ptr else {
                raise(corrupt());
            };
            // SAFETY: a registered state is alive (it leaves the registry when it is freed)
            // and is not otherwise borrowed while a deserialization runs
            let from = &mut *ptr;
            from.handed = None;
            TAKEN.with(|t| t.set(t.get() + 1));
            let empty = State::new(from.state.config.clone(), false, false);
            return Internal::new(AnalyzeState {
                state: std::mem::replace(&mut from.state, empty),
                options_bytes: std::mem::take(&mut from.options_bytes),
                options_stable: false,
                clv: from.clv.take(),
                handed: None,
            });
        }
        // the options' length is checked against the bytes there are before it is used
        let mut r = Reader::raw(bytes);
        let (opts, clv_bytes, rest) = (|| {
            let opts = r.bytes()?;
            let clv_bytes = r.bytes()?;
            Some((opts, clv_bytes, r.rest()))
        })()
        .ok_or_else(corrupt)
        .or_raise();
        let mut state = State::deserialize(rest).ok_or_else(corrupt).or_raise();
        state.max_customers = max_customers();
        // a CLV summary exactly when the options ask for one
        let clv = match (state.config.clv_settings().is_some(), clv_bytes.is_empty()) {
            (false, true) => None,
            (true, false) => {
                let mut summary = clv::Summary::deserialize(clv_bytes)
                    .ok_or_else(corrupt)
                    .or_raise();
                summary.max_customers = max_customers();
                Some(ClvPart {
                    summary,
                    days: clv::LocalDays::new(),
                    // a deserialized state takes no rows: its zone is never read
                    zone: std::ptr::null_mut(),
                })
            }
            _ => raise(corrupt()),
        };
        Internal::new(AnalyzeState {
            state,
            options_bytes: opts.to_vec(),
            options_stable: false,
            clv,
            handed: None,
        })
    }
}

/// Local days in the session time zone around the window, and from the oldest purchase on
/// when the full metrics read it.
fn days_for(config: &Config, oldest: Option<i64>) -> Days {
    unsafe {
        let to_date = |ts: i64| -> i32 {
            let t = TimestampWithTimeZone::try_from(ts)
                .unwrap_or_else(|_| raise(RfmError::out_of_range("timestamp out of range")));
            Date::from(t).to_pg_epoch_days()
        };
        let first_day =
            to_date(oldest.map_or(config.window_start, |o| o.min(config.window_start))) - 1;
        let as_of_day = to_date(config.as_of);
        let midnights = (first_day..=as_of_day + 1)
            .map(|d| {
                let date = Date::from_pg_epoch_days(d);
                let ts: TimestampWithTimeZone =
                    direct_function_call(pg_sys::date_timestamptz, &[date.into_datum()])
                        .unwrap_or_else(|| raise(RfmError::out_of_range("date out of range")));
                ts.into_inner()
            })
            .collect();
        Days {
            first_day,
            midnights,
            as_of_day,
        }
    }
}

#[pg_extern(sql = false)]
fn analyze_final(fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<u8>> {
    unsafe {
        // FINALFUNC_MODIFY = READ_WRITE: the state is consumed here (its table is freed as
        // soon as the customers are copied out), so it is never finalized twice
        let mut state = Internal::from(arg(fcinfo, 0));
        let s = state.get_mut::<AnalyzeState>()?;
        s.state.flush().or_raise();
        let options = options_value(&s.options_bytes);
        let zone = options
            .as_object()
            .map_or(std::ptr::null_mut(), option_zone);
        let days = in_zone(zone, || {
            days_for(&s.state.config, s.state.oldest_purchase())
        });
        notices(&s.state, &days);
        let customers = s.state.len();
        let (bytes_now, bytes_peak) = (s.state.memory_bytes(), s.state.peak_bytes());
        debug1!(
            "rfm.analyze: {customers} customers, state {bytes_now} bytes ({:.1} per customer), peak {bytes_peak} bytes",
            bytes_now as f64 / customers.max(1) as f64
        );
        let empty = State::new(s.state.config.clone(), false, false);
        let taken = std::mem::replace(&mut s.state, empty);
        // p_alive and clv: the models of SPEC §12 fitted on the same rows (an error when a
        // fit does not converge: never a silent answer)
        let lookup = s.clv.take().map(|c| {
            let text = c.summary.text_keys();
            let config = c.summary.config.clone();
            let customers = c.summary.finish().or_raise();
            let model = clv::fit(&config, &customers, text).or_raise();
            let settings = taken.config.clv_settings().unwrap_or_default();
            analysis::clv_metrics(&model, &settings).or_raise()
        });
        let bytes = analysis::finalize_with(taken, &days, lookup.as_ref()).or_raise();
        if bytes.len() >= (1 << 30) - 1024 {
            raise(too_large(customers));
        }
        Some(bytes)
    }
}

/// NOTICEs for settings that cannot work as meant (SPEC §2; fixed thresholds the window
/// cannot reach).
fn notices(state: &State, days: &Days) {
    let c = &state.config;
    let report = |message: String, hint: &str| {
        let mut r = pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            message,
            "rfm_segmentation",
        );
        if !hint.is_empty() {
            r = r.set_hint(hint);
        }
        r.report(PgLogLevel::NOTICE);
    };
    const MONTH: i64 = 30 * 86_400_000_000;
    if let Some(newest) = state
        .newest_row()
        .filter(|&n| c.as_of_default && n < c.as_of - MONTH)
    {
        let ts = |t: i64| {
            TimestampWithTimeZone::try_from(t)
                .map(|t| t.to_iso_string())
                .unwrap_or_default()
        };
        let date = TimestampWithTimeZone::try_from(newest)
            .map(|t| Date::from(t).to_string())
            .unwrap_or_default();
        report(
            format!(
                "rfm.analyze: the newest row is from {}, more than 30 days before as_of, which was not given (now)",
                ts(newest)
            ),
            &format!("To analyse the data as of its end, pass {{\"as_of\": \"{date}\"}}."),
        );
    }
    // the most days a purchase in the window can be before as_of
    let max_recency = days.as_of_day - days.day_of(c.window_start + 1);
    for m in c.unreachable_fixed(max_recency) {
        report(
            format!("rfm.analyze: {m}"),
            "Choose thresholds the window can produce, or a longer \"period\".",
        );
    }
}

fn read(a: &[u8]) -> Analysis {
    Analysis::deserialize(a, false).or_raise()
}

pub(crate) fn money(m: Money) -> AnyNumeric {
    match m {
        Money::Float(f) if !f.is_finite() => raise(RfmError::out_of_range("total is not finite")),
        // exact amounts: the numeric's bytes directly (numeric::encode writes what
        // PostgreSQL's own numeric code writes), no detour through text
        Money::Exact(units, scale) => match numeric::encode(units, scale) {
            Some(data) => numeric_datum(&data),
            None => raise(RfmError::out_of_range("total out of range")),
        },
        Money::Float(_) => AnyNumeric::try_from(m.to_text().as_str())
            .unwrap_or_else(|_| raise(RfmError::out_of_range("total out of range"))),
    }
}

/// A numeric from the data bytes of its varlena.
fn numeric_datum(data: &[u8]) -> AnyNumeric {
    let len = data.len() + pg_sys::VARHDRSZ;
    // SAFETY: a fresh palloc'd varlena of `len` bytes, its header set, its data copied;
    // `data` is a valid numeric body (numeric::encode)
    unsafe {
        let p = pg_sys::palloc(len) as *mut u8;
        pgrx::set_varsize_4b(p as *mut pg_sys::varlena, len as i32);
        std::ptr::copy_nonoverlapping(data.as_ptr(), p.add(pg_sys::VARHDRSZ), data.len());
        AnyNumeric::from_polymorphic_datum(pg_sys::Datum::from(p), false, pg_sys::NUMERICOID)
            .expect("a non-NULL numeric")
    }
}

/// A percentage 0-100 with two decimals, as `numeric` (the one convention of every
/// function and view).
fn pct(part: f64, whole: f64) -> Option<AnyNumeric> {
    (whole != 0.0).then(|| {
        let v = (part * 10000.0 / whole).round() / 100.0;
        AnyNumeric::try_from(format!("{v:.2}").as_str())
            .unwrap_or_else(|_| raise(RfmError::out_of_range("percentage out of range")))
    })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// One row per customer of the analysis: the active ones, and with a scheme whose
/// population is `all` also those without a purchase in the window (their scores and
/// recency are NULL). The full metrics are NULL unless the analysis computed them (option
/// `"metrics": true`, or a scheme that needs them).
///
/// Declared in SQL (`rfm.customers`) with its 22 columns; the rows are returned in one call
/// (see [`return_rows`]).
#[pg_extern(sql = false)]
fn customers(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: STRICT, (analysis)
    unsafe {
        let analysis = varlena_bytes(arg(fcinfo, 0).expect("strict"));
        let rows = Analysis::customers(analysis).or_raise();
        let ts = |t: i64| {
            TimestampWithTimeZone::try_from(t)
                .unwrap_or_else(|_| raise(RfmError::out_of_range("timestamp out of range")))
        };
        return_rows(fcinfo, rows, |c| {
            let active = c.active();
            let scored = c.r > 0;
            let x = c.metrics;
            let aov = x.filter(|_| c.frequency > 0).map(|x| match x.purchases {
                // numeric division, as avg(amount) over the purchases gives
                Money::Exact(..) => {
                    let total = money(x.purchases);
                    let n = AnyNumeric::from(c.frequency);
                    // SAFETY: numeric_div of two valid numerics; the divisor is not zero
                    direct_function_call::<AnyNumeric>(
                        pg_sys::numeric_div,
                        &[total.into_datum(), n.into_datum()],
                    )
                    .unwrap_or_else(|| raise(RfmError::out_of_range("aov out of range")))
                }
                Money::Float(p) => money(Money::Float(p / c.frequency as f64)),
            });
            [
                ServerText(c.key.clone()).into_datum(),
                active.then_some(c.recency_days).into_datum(),
                c.frequency.into_datum(),
                money(c.monetary).into_datum(),
                scored.then_some(c.r).into_datum(),
                scored.then_some(c.f).into_datum(),
                scored.then_some(c.m).into_datum(),
                scored.then(|| c.fm()).into_datum(),
                scored.then(|| c.rfm_code()).into_datum(),
                c.segment.map(ServerText).into_datum(),
                c.abc_tier.map(ServerText).into_datum(),
                aov.into_datum(),
                x.map(|x| x.returns).into_datum(),
                x.map(|x| money(x.return_amount)).into_datum(),
                x.map(|x| x.return_rate()).into_datum(),
                x.map(|x| ts(x.first_purchase_at)).into_datum(),
                x.map(|x| ts(x.last_purchase_at)).into_datum(),
                x.map(|x| x.tenure_days).into_datum(),
                x.map_or(active.then_some(c.recency_days), |x| {
                    Some(x.days_since_last)
                })
                .into_datum(),
                x.map(|x| x.lifetime_orders).into_datum(),
                x.map(|x| money(x.lifetime_value)).into_datum(),
                active.into_datum(),
            ]
        })
    }
}

/// The keys of the excluded customers, kept when the analysis was made with
/// `"keep_excluded": true` (else none). Rows returned in one call (see [`return_rows`]).
#[pg_extern(sql = false)]
fn excluded_keys(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: STRICT, (analysis) returning SETOF text
    unsafe {
        let analysis = varlena_bytes(arg(fcinfo, 0).expect("strict"));
        let keys = Analysis::excluded_keys(analysis).or_raise();
        return_rows(fcinfo, keys.into_iter(), |k| [ServerText(k).into_datum()]);
    }
}

/// One row per segment of the scheme, empty ones included.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, sql = false)]
fn summary(
    analysis: &[u8],
) -> TableIterator<
    'static,
    (
        name!(segment, ServerText),
        name!(customers, i64),
        name!(pct_customers, Option<AnyNumeric>),
        name!(revenue, AnyNumeric),
        name!(pct_revenue, Option<AnyNumeric>),
        name!(avg_revenue, Option<AnyNumeric>),
        name!(avg_frequency, Option<f64>),
        name!(avg_recency_days, Option<f64>),
        name!(avg_monetary, Option<f64>),
    ),
> {
    let a = read(analysis);
    // every customer the analysis segmented (with population all, inactive ones too)
    let total_customers = a.summary.iter().map(|s| s.customers).sum::<i64>() as f64;
    let total_revenue = a.overview.total_revenue.to_f64();
    TableIterator::new(a.summary.into_iter().map(move |s| {
        let n = s.customers;
        let rev = s.revenue.to_f64();
        let avg_revenue = (n > 0).then(|| {
            let avg = match s.revenue {
                Money::Exact(u, scale) => {
                    // exact division, rounded half away from zero to 2 more places
                    let q = numeric::pow10(2).unwrap_or(100) * u;
                    let (d, r) = (q / n as i128, q % n as i128);
                    let d = if 2 * r.abs() >= n as i128 {
                        d + q.signum()
                    } else {
                        d
                    };
                    Money::Exact(d, scale + 2)
                }
                Money::Float(f) => Money::Float(f / n as f64),
            };
            money(avg)
        });
        (
            ServerText(s.segment),
            n,
            pct(n as f64, total_customers),
            money(s.revenue),
            pct(rev, total_revenue),
            avg_revenue,
            (n > 0).then(|| round2(s.frequency_sum as f64 / n as f64)),
            (n > 0).then(|| round2(s.recency_sum as f64 / n as f64)),
            (n > 0).then(|| round2(rev / n as f64)),
        )
    }))
}

/// The value range each score covers, per metric.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, sql = false)]
fn thresholds(
    analysis: &[u8],
) -> TableIterator<
    'static,
    (
        name!(metric, String),
        name!(score, i32),
        name!(lower_bound, Option<f64>),
        name!(upper_bound, Option<f64>),
        name!(customers, i64),
    ),
> {
    let a = read(analysis);
    TableIterator::new(a.thresholds.into_iter().map(|t| {
        (
            t.metric.to_string(),
            t.score,
            t.lower_bound,
            t.upper_bound,
            t.customers,
        )
    }))
}

/// One row per R × FM cell.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, sql = false)]
fn grid(
    analysis: &[u8],
) -> TableIterator<
    'static,
    (
        name!(r, i32),
        name!(fm, i32),
        name!(segment, Option<ServerText>),
        name!(customers, i64),
        name!(revenue, AnyNumeric),
    ),
> {
    let a = read(analysis);
    TableIterator::new(a.grid.into_iter().map(|g| {
        let segment = g.segment.map(ServerText);
        (g.r, g.fm, segment, g.customers, money(g.revenue))
    }))
}

/// The headline figures.
#[allow(clippy::type_complexity)]
#[pg_extern(immutable, parallel_safe, sql = false)]
fn overview(
    analysis: &[u8],
) -> TableIterator<
    'static,
    (
        name!(as_of, TimestampWithTimeZone),
        name!(period, Interval),
        name!(active_customers, i64),
        name!(excluded_customers, i64),
        name!(total_revenue, AnyNumeric),
        name!(transactions, i64),
        name!(rows_without_key, i64),
        name!(amount_without_key, AnyNumeric),
        name!(rows_after_as_of, i64),
        name!(excluded_amount, AnyNumeric),
        name!(below_min_customers, i64),
    ),
> {
    let a = read(analysis);
    let o = a.overview;
    let as_of = TimestampWithTimeZone::try_from(o.as_of)
        .unwrap_or_else(|_| raise(RfmError::out_of_range("as_of out of range")));
    let period = o
        .period
        .parse::<Interval>()
        .unwrap_or_else(|_| raise(RfmError::invalid("invalid period")));
    TableIterator::once((
        as_of,
        period,
        o.active_customers,
        o.excluded_customers,
        money(o.total_revenue),
        o.transactions,
        o.rows_without_key,
        money(o.amount_without_key),
        o.rows_after_as_of,
        money(o.excluded_amount),
        o.below_min_customers,
    ))
}

extension_sql_file!(
    "../sql/analyze.sql",
    name = "analyze_sql",
    requires = [
        analyze_sfunc,
        analyze_combine,
        analyze_serialize,
        analyze_deserialize,
        analyze_final,
        customers,
        summary,
        thresholds,
        grid,
        overview,
        excluded_keys
    ]
);

/// Checks `rfm.analyze` options without running an analysis: raises the error
/// `rfm.analyze` would raise, else returns the options with every default filled in.
///
/// A NULL argument is an error (22004), as NULL options are for `rfm.analyze`.
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
pub(crate) fn check_options(options: default!(Option<Jsonb>, "'{}'")) -> Jsonb {
    let Some(options) = options else {
        raise(RfmError::null(
            "argument \"options\" of rfm.check_options must not be NULL",
        ));
    };
    let time_zone = match options.0.get("time_zone") {
        Some(Value::String(z)) => z.clone(),
        // SAFETY: GetConfigOption returns the setting's current value as a C string
        _ => unsafe {
            let v = pg_sys::GetConfigOption(c"TimeZone".as_ptr(), false, false);
            std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
        },
    };
    let c = parse_options(options.0);
    let as_of = TimestampWithTimeZone::try_from(c.as_of)
        .unwrap_or_else(|_| raise(RfmError::out_of_range("as_of out of range")));
    let mut out = serde_json::Map::new();
    out.insert("as_of".into(), Value::String(as_of.to_iso_string()));
    out.insert("period".into(), Value::String(c.period.clone()));
    out.insert("time_zone".into(), Value::String(time_zone));
    out.insert("buckets".into(), Value::from(c.buckets));
    out.insert(
        "scheme".into(),
        c.scheme
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.name().into())),
    );
    out.insert("metrics".into(), Value::Bool(c.metrics));
    if let Some(o) = &c.clv {
        let unit = match o.unit_days {
            1 => "day",
            7 => "week",
            _ => "month",
        };
        out.insert(
            "clv".into(),
            serde_json::json!({"time_unit": unit, "horizon": o.horizon,
                               "discount_rate": o.discount_rate, "penalizer": o.penalizer}),
        );
    }
    out.insert("method".into(), Value::String(c.method.name().into()));
    if let Some(f) = &c.fixed {
        let mut t = serde_json::Map::new();
        for (m, v) in analysis::METRICS.iter().zip(f) {
            t.insert((*m).into(), Value::from(v.clone()));
        }
        out.insert("thresholds".into(), Value::Object(t));
    }
    out.insert("abc_shares".into(), Value::from(c.abc_shares.clone()));
    out.insert("abc_names".into(), Value::from(c.abc_names.clone()));
    out.insert(
        "abc_min_sales".into(),
        c.abc_min_sales.map_or(Value::Null, Value::from),
    );
    out.insert("keep_excluded".into(), Value::Bool(c.keep_excluded));
    Jsonb(Value::Object(out))
}
