//! The privileged plumbing of managed segmentations (SPEC §11). Everything a DBA has to
//! trust is here and in `sql/managed/`:
//!
//! * [`managed_entry`]: the C entry point of every public management function
//!   (`rfm.create_segmentation`, `rfm.refresh`, …). It reads the role that called it
//!   (`GetUserId()`: exact, also inside other SECURITY DEFINER functions) and calls the
//!   implementation `rfm._do_<name>(caller oid, <the same arguments>)`, a SECURITY DEFINER
//!   function that nobody may execute directly. The implementation can therefore trust its
//!   `caller` argument: it is never something a user wrote.
//! * [`read_source_as`]: the one guarded read of a user's relation. Every refresh, preview
//!   and pg_cron job reads its source through it, the way PostgreSQL's own REFRESH
//!   MATERIALIZED VIEW runs a view's query: as the segmentation's owner, as a
//!   SECURITY_RESTRICTED_OPERATION, in a GUC nest level that is rolled back afterwards, with
//!   the caller's user and security context restored on every path; the source must have
//!   been locked by OID first ([`lock_source`]). Its comment says why each step is there.
//! * [`assigned`] and [`changes`]: decode the stored `rfm.analysis` of a run into the rows
//!   of `rfm.customer_segments`, and compare two runs (`rfm_core::changes`), without a
//!   detour through SQL rows.

#[allow(unused_imports)] // check_options: named in the `requires` of extension_sql_file! below
use crate::analyze::{arg, check_options, money, return_rows};
use crate::errors::{raise, OrRaise};
use crate::text::{varlena_bytes, Jsonb, ServerText};
use pgrx::prelude::*;
use pgrx::{pg_sys, AnyNumeric};
use rfm_core::analysis::Analysis;
use rfm_core::changes::Reading as ChangeReading;
use rfm_core::RfmError;
use std::collections::HashSet;
use std::ffi::CString;

/// What `managed_entry` keeps between calls in `fn_extra`.
struct EntryCache {
    finfo: *mut pg_sys::FmgrInfo,
}

/// Version-1 calling convention record of [`managed_entry`].
#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_managed_entry() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The implementation of an entry function: `rfm._do_<name>` in the same schema, with the
/// same owner (both are created by the extension script; nobody else can create functions
/// in schema `rfm`).
fn implementation_of(entry: pg_sys::Oid) -> pg_sys::Oid {
    let found = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT i.oid FROM pg_catalog.pg_proc p
         JOIN pg_catalog.pg_proc i ON i.pronamespace OPERATOR(pg_catalog.=) p.pronamespace
          AND i.proname OPERATOR(pg_catalog.=) ('_do_' OPERATOR(pg_catalog.||) p.proname)
          AND i.proowner OPERATOR(pg_catalog.=) p.proowner
          AND i.prosecdef
         WHERE p.oid OPERATOR(pg_catalog.=) $1",
        &[entry.into()],
    );
    match found {
        Ok(Some(oid)) => oid,
        _ => raise(RfmError::new(
            rfm_core::ErrorKind::UndefinedObject,
            format!("no implementation for the rfm_segmentation entry function {entry:?}"),
        )),
    }
}

/// The entry point of every public management function (see the module comment).
///
/// # Safety
/// Called by the PostgreSQL function manager with a valid `fcinfo`.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn managed_entry(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: fcinfo and its flinfo are valid for the duration of the call (fmgr contract)
    unsafe {
        let caller = pg_sys::GetUserId();
        let flinfo = (*fcinfo).flinfo;
        refuse_inside_source_read((*flinfo).fn_oid);
        let mut cache = (*flinfo).fn_extra as *mut EntryCache;
        if cache.is_null() {
            let target = implementation_of((*flinfo).fn_oid);
            let mcxt = (*flinfo).fn_mcxt;
            let finfo =
                pg_sys::MemoryContextAllocZero(mcxt, std::mem::size_of::<pg_sys::FmgrInfo>())
                    as *mut pg_sys::FmgrInfo;
            // fmgr_info wraps a SECURITY DEFINER function in fmgr_security_definer, which
            // switches to its owner and applies its SET search_path
            pg_sys::fmgr_info_cxt(target, finfo, mcxt);
            cache = pg_sys::MemoryContextAlloc(mcxt, std::mem::size_of::<EntryCache>())
                as *mut EntryCache;
            cache.write(EntryCache { finfo });
            (*flinfo).fn_extra = cache.cast();
        }
        let nargs = (*fcinfo).nargs as usize;
        let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>()
            + (nargs + 1) * std::mem::size_of::<pg_sys::NullableDatum>();
        let inner = pg_sys::palloc0(size) as pg_sys::FunctionCallInfo;
        (*inner).flinfo = (*cache).finfo;
        (*inner).context = std::ptr::null_mut();
        // a set-returning implementation fills the caller's ReturnSetInfo directly
        (*inner).resultinfo = (*fcinfo).resultinfo;
        (*inner).fncollation = (*fcinfo).fncollation;
        (*inner).isnull = false;
        (*inner).nargs = (nargs + 1) as i16;
        let args = (*inner).args.as_mut_slice(nargs + 1);
        args[0] = pg_sys::NullableDatum {
            value: pg_sys::Datum::from(caller.to_u32()),
            isnull: false,
        };
        let outer = (*fcinfo).args.as_slice(nargs);
        args[1..].copy_from_slice(outer);
        let call = (*(*cache).finfo).fn_addr.expect("fmgr_info sets fn_addr");
        // a raw function pointer: guarded like every pg_sys call, so that an ERROR raised
        // by the implementation becomes a Rust panic here and is re-raised at our boundary
        let result = pg_sys::ffi::pg_guard_ffi_boundary(|| call(inner));
        (*fcinfo).isnull = (*inner).isnull;
        result
    }
}

thread_local! {
    /// How many guarded source reads ([`read_source_as`]) are running in this backend. While
    /// one is, the code that runs is the source's (its owner's views, functions, policies):
    /// [`managed_entry`] then refuses every management function, so that the source cannot
    /// alter, drop, refresh or re-schedule a segmentation in the middle of its own refresh.
    static SOURCE_READS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// 55006 when called from the code of a source being read (see [`SOURCE_READS`]).
fn refuse_inside_source_read(entry: pg_sys::Oid) {
    if SOURCE_READS.with(|n| n.get()) > 0 {
        // SAFETY: a plain catalog lookup by OID; NULL (unknown) is handled
        let name = unsafe {
            let p = pg_sys::get_func_name(entry);
            if p.is_null() {
                String::from("this function")
            } else {
                format!(
                    "rfm.{}",
                    std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
                )
            }
        };
        raise(
            RfmError::new(
                rfm_core::ErrorKind::ObjectInUse,
                format!("{name} cannot run while the source of a segmentation is being read"),
            )
            .with_hint(
                "A refresh (or preview) is reading a source whose code called it; segmentations \
                 are managed outside their sources.",
            ),
        );
    }
}

/// The one guarded read of a user's relation (SPEC §11). Runs `query` — one row of one or
/// two columns: the `rfm.analysis` of the source and, when asked for, the jsonb of its
/// performance figures; `$1` is `options` — over the relation `source` with the rights of
/// `owner`, the way PostgreSQL runs a materialized view's query in REFRESH MATERIALIZED VIEW
/// (`ExecRefreshMatView`), and returns that row. Only the extension's own SECURITY DEFINER
/// functions may call it (EXECUTE is revoked from PUBLIC). Declared in SQL
/// (`rfm._read_source_as`, part 2 of the managed layer) as
/// `(owner oid, source oid, query text, options jsonb, time_zone text)
/// RETURNS TABLE (analysis, performance)`.
///
/// Each step and why it is there:
/// 1. The source must already be locked by this transaction (`rfm._lock_source`, called
///    before the query text was built from the relation's name): the name in the query then
///    names the relation bound by OID, and no rename can happen until the transaction ends.
///    After planning, the plan must read that OID (lock, then verify).
/// 2. `SetUserIdAndSecContext(owner, … | SECURITY_LOCAL_USERID_CHANGE |
///    SECURITY_RESTRICTED_OPERATION)`: permission checks use the owner's rights, and the
///    source's code may not `SET ROLE`, create temporary objects, hold cursors or queue
///    deferred triggers that would outlive the read.
/// 3. `NewGUCNestLevel()` and `search_path = pg_catalog, pg_temp` in it: nothing the caller
///    set reaches the source's names; `TimeZone` the segmentation's own, so that every day
///    boundary is the same whoever refreshes (SPEC §11); `AtEOXact_GUC(false, nest)` afterwards rolls back
///    every setting made at this level or deeper (a plain `SET`, `set_config(…, false)`, a
///    function's own `SET` left behind by an error), so nothing the source's code set
///    outlives the read or reaches the rest of the refresh or the caller.
/// 4. [`SOURCE_READS`]: management functions called by the source's code are refused.
/// 5. Steps 2-4 are undone in a `finally` block, on every path, errors included (a
///    PostgreSQL error inside is caught, the caller's user, security context and settings
///    are restored, and the error is raised again).
#[pg_extern(volatile, sql = false)]
fn read_source_as(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: (oid, oid, text, jsonb, text), all non-NULL
    // (STRICT), returning a set of two columns
    unsafe {
        let get = |i| arg(fcinfo, i).unwrap_or_else(|| raise(RfmError::null("NULL argument")));
        let owner = pg_sys::Oid::from_datum(get(0), false).expect("oid");
        let source = pg_sys::Oid::from_datum(get(1), false).expect("oid");
        // the query text stays in the server encoding: it goes straight back to the server
        let query = CString::new(varlena_bytes(get(2)))
            .unwrap_or_else(|_| raise(RfmError::invalid("query contains NUL")));
        let options = Jsonb::from_datum(get(3), false).expect("jsonb");
        let time_zone = CString::new(varlena_bytes(get(4)))
            .unwrap_or_else(|_| raise(RfmError::invalid("time zone contains NUL")));
        let row = guarded_read(owner, source, &query, options, &time_zone);
        return_rows(fcinfo, std::iter::once(row), |(a, p)| {
            [a.into_datum(), p.into_datum()]
        })
    }
}

/// Steps 1-5 of [`read_source_as`].
///
/// # Safety
/// Must run inside a transaction, in a function call.
unsafe fn guarded_read(
    owner: pg_sys::Oid,
    source: pg_sys::Oid,
    query: &CString,
    options: Jsonb,
    time_zone: &CString,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    unsafe {
        // 1. bound by OID: locked before the query was written, and still there
        if !pg_sys::CheckRelationOidLockedByMe(source, pg_sys::AccessShareLock as _, true) {
            raise(RfmError::new(
                rfm_core::ErrorKind::ObjectInUse,
                "the source of a segmentation must be locked (rfm._lock_source) before it is read",
            ));
        }
        let mut saved_user = pg_sys::InvalidOid;
        let mut saved_context: std::ffi::c_int = 0;
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        // 2. the owner's rights, restricted
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as std::ffi::c_int
                | pg_sys::SECURITY_RESTRICTED_OPERATION as std::ffi::c_int,
        );
        // 3. a settings level of its own, with a search_path nobody can redirect
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        pg_sys::set_config_option(
            c"TimeZone".as_ptr(),
            time_zone.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        // 4. no management function from inside
        SOURCE_READS.with(|n| n.set(n.get() + 1));
        let query = std::panic::AssertUnwindSafe(query);
        let options = std::panic::AssertUnwindSafe(options);
        pgrx::PgTryBuilder::new(move || run_one_row(&query, source, options.0))
            .finally(|| {
                // 5. undone on every path: settings rolled back (not kept: false), then the
                // caller's user and security context
                SOURCE_READS.with(|n| n.set(n.get().saturating_sub(1)));
                pg_sys::AtEOXact_GUC(false, nest);
                pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
            })
            .execute()
    }
}

/// Executes `query` once through SPI, allowing a parallel plan, after checking that its plan
/// reads `source`, and copies out its one row (one or two varlena columns).
///
/// # Safety
/// Must run inside a transaction, in a function call.
unsafe fn run_one_row(
    query: &CString,
    source: pg_sys::Oid,
    options: Jsonb,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            raise(RfmError::invalid("SPI_connect failed"));
        }
        let mut types = [pg_sys::JSONBOID];
        let plan = pg_sys::SPI_prepare_cursor(
            query.as_ptr(),
            1,
            types.as_mut_ptr(),
            pg_sys::CURSOR_OPT_PARALLEL_OK as i32,
        );
        if plan.is_null() {
            raise(RfmError::invalid(
                "could not prepare the query of the source",
            ));
        }
        // the plan reads the relation bound by OID (step 1 of read_source_as)
        let sources = pg_sys::SPI_plan_get_plan_sources(plan);
        let mut reads_source = false;
        if !sources.is_null() {
            for i in 0..(*sources).length {
                let ps = pg_sys::list_nth(sources, i) as *mut pg_sys::CachedPlanSource;
                reads_source |= pg_sys::list_member_oid((*ps).relationOids, source);
            }
        }
        if !reads_source {
            raise(RfmError::new(
                rfm_core::ErrorKind::ObjectInUse,
                "the query of a refresh does not read the relation the segmentation is bound to",
            ));
        }
        let mut values = [options.into_datum().expect("jsonb datum")];
        let nulls = [b' ' as std::ffi::c_char];
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), false, 0);
        if rc != pg_sys::SPI_OK_SELECT as i32 || pg_sys::SPI_processed != 1 {
            raise(RfmError::invalid(
                "the query of the source did not return one row",
            ));
        }
        let table = pg_sys::SPI_tuptable;
        let natts = (*(*table).tupdesc).natts;
        let column = |i: i32| {
            if i > natts {
                return None;
            }
            let mut isnull = false;
            let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, i, &mut isnull);
            if isnull {
                None
            } else {
                let p = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
                Some(pgrx::varlena::varlena_to_byte_slice(p).to_vec())
            }
        };
        let out = (column(1), column(2));
        pg_sys::SPI_finish();
        out
    }
}

/// Takes `AccessShareLock` on the source of a segmentation by its OID and returns whether
/// it still exists (lock, then verify, as `RangeVarGetRelidExtended` does): from then until
/// the end of the transaction it cannot be renamed, dropped or altered, so the name a query
/// is then written with names this relation. Declared in SQL as `rfm._lock_source(oid)`.
#[pg_extern(volatile, sql = false)]
fn lock_source(source: pg_sys::Oid) -> bool {
    // SAFETY: plain lock manager and syscache calls on an OID
    unsafe {
        pg_sys::LockRelationOid(source, pg_sys::AccessShareLock as _);
        let exists = pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::RELOID as _,
            pg_sys::Datum::from(source),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        );
        if !exists {
            pg_sys::UnlockRelationOid(source, pg_sys::AccessShareLock as _);
        }
        exists
    }
}

type AssignedRow = (
    ServerText,
    Option<ServerText>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<AnyNumeric>,
    Option<ServerText>,
);

/// The automatic assignment of a run: one row per customer of the stored analysis (and per
/// excluded customer when the run has a default segment), restricted to `only_keys` when
/// given, followed by the keys of `extra_keys` that the run does not assign (customers known
/// only through an override).
///
/// Declared in SQL (`rfm._assigned`, part 2 of the managed layer) with its columns; the rows
/// are returned in one call (see [`return_rows`]).
#[pg_extern(sql = false)]
fn assigned(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: (analysis, text, text, text[], text[])
    unsafe {
        let analysis = arg(fcinfo, 0).map(|d| varlena_bytes(d));
        let kind = arg(fcinfo, 1).and_then(|d| ServerText::from_datum(d, false));
        let default_segment = arg(fcinfo, 2).and_then(|d| ServerText::from_datum(d, false));
        let keys = |i| arg(fcinfo, i).and_then(|d| Vec::<Option<ServerText>>::from_datum(d, false));
        let (only_keys, extra_keys) = (keys(3), keys(4));
        let only: Option<HashSet<String>> =
            only_keys.map(|k| k.into_iter().flatten().map(|t| t.0).collect());
        let mut extra: Vec<String> = extra_keys
            .map(|k| k.into_iter().flatten().map(|t| t.0).collect())
            .unwrap_or_default();
        extra.sort();
        extra.dedup();
        let customers = analysis.map(|b| Analysis::customers(b).or_raise());
        let default_segment = default_segment.map(|t| t.0);
        let excluded = match (analysis, &default_segment) {
            (Some(b), Some(_)) => Analysis::excluded_keys(b).or_raise(),
            _ => Vec::new(),
        };
        let rows = AssignedRows {
            abc: kind.is_some_and(|k| k.0 == "abc"),
            default_segment,
            only,
            customers,
            excluded: excluded.into_iter(),
            extra: extra.into_iter(),
            seen: HashSet::new(),
        };
        return_rows(fcinfo, rows, |r: AssignedRow| {
            [
                r.0.into_datum(),
                r.1.into_datum(),
                r.2.into_datum(),
                r.3.into_datum(),
                r.4.into_datum(),
                r.5.into_datum(),
                r.6.into_datum(),
                r.7.into_datum(),
                r.8.into_datum(),
                r.9.into_datum(),
                r.10.into_datum(),
            ]
        })
    }
}

/// A row of [`assigned`] for a customer without scores.
fn unscored(key: String, segment: Option<String>, frequency: Option<i64>) -> AssignedRow {
    let scores = (None, None, None, None, None, None); // r, f, m, fm, rfm_code, recency_days
    (
        ServerText(key),
        segment.map(ServerText),
        scores.0,
        scores.1,
        scores.2,
        scores.3,
        scores.4,
        scores.5,
        frequency,
        None, // monetary
        None, // abc_tier
    )
}

/// The rows of [`assigned`], produced one at a time: the customers of the analysis, then
/// the excluded customers (when the run has a default segment), then the extra keys that
/// were not seen.
struct AssignedRows {
    abc: bool,
    default_segment: Option<String>,
    only: Option<HashSet<String>>,
    customers: Option<rfm_core::analysis::Customers>,
    excluded: std::vec::IntoIter<String>,
    extra: std::vec::IntoIter<String>,
    seen: HashSet<String>,
}

impl AssignedRows {
    fn wanted(&self, key: &str) -> bool {
        self.only.as_ref().is_none_or(|s| s.contains(key))
    }

    fn track(&mut self, key: &str) {
        if self.extra.len() > 0 {
            self.seen.insert(key.to_string());
        }
    }
}

impl Iterator for AssignedRows {
    type Item = AssignedRow;

    fn next(&mut self) -> Option<AssignedRow> {
        while let Some(c) = self.customers.as_mut().and_then(|it| it.next()) {
            // an ABC customer below the minimum sales has no tier: not assigned
            if !self.wanted(&c.key) || (self.abc && c.abc_tier.is_none()) {
                continue;
            }
            self.track(&c.key);
            let segment = if self.abc {
                c.abc_tier.clone()
            } else {
                c.segment.clone()
            };
            // a customer without a purchase in the window (a scheme of population all) has
            // no scores and no recency
            let (scored, active) = (c.r > 0, c.active());
            let (fm, code, tier) = (c.fm(), c.rfm_code(), c.abc_tier.clone());
            return Some((
                ServerText(c.key),
                segment.map(ServerText),
                scored.then_some(c.r),
                scored.then_some(c.f),
                scored.then_some(c.m),
                scored.then_some(fm),
                scored.then_some(code),
                active.then_some(c.recency_days),
                Some(c.frequency),
                Some(money(c.monetary)),
                tier.map(ServerText),
            ));
        }
        while let Some(k) = self.excluded.next() {
            if !self.wanted(&k) {
                continue;
            }
            self.track(&k);
            // an excluded customer: the default segment, no purchase in the window
            let d = self.default_segment.clone();
            return Some(unscored(k, d, Some(0)));
        }
        for k in self.extra.by_ref() {
            if !self.seen.contains(&k) && self.only.as_ref().is_none_or(|s| s.contains(&k)) {
                // known only through an override
                return Some(unscored(k, None, None));
            }
        }
        None
    }
}

/// The customers whose automatic segment differs between two runs: entered (`from` NULL),
/// left (`to` NULL) or moved, with the monetary value of the new run (rfm_core::changes).
///
/// Declared in SQL (`rfm._changes`) with its columns: customer_key, from_segment,
/// to_segment, monetary, from_r, from_f, from_m, from_recency_days, from_frequency,
/// from_monetary, to_r, to_f, to_m, to_recency_days, to_frequency. The rows are returned in
/// one call (see [`return_rows`]).
#[pg_extern(sql = false)]
fn changes(fcinfo: pg_sys::FunctionCallInfo) {
    // SAFETY: called by PostgreSQL as declared: (analysis, text, text, analysis, text, text)
    unsafe {
        let bytes = |i| arg(fcinfo, i).map(|d| varlena_bytes(d));
        let text = |i| arg(fcinfo, i).and_then(|d| ServerText::from_datum(d, false));
        let (old, old_kind, old_default) = (bytes(0), text(1), text(2));
        let (new, new_kind, new_default) = (bytes(3), text(4), text(5));
        let (old_default, new_default) = (old_default.map(|t| t.0), new_default.map(|t| t.0));
        let old = old.map(|b| {
            let rd = ChangeReading {
                abc: old_kind.as_ref().is_some_and(|k| k.0 == "abc"),
                default_segment: old_default.as_deref(),
            };
            (b, rd)
        });
        let Some(new) = new else {
            raise(RfmError::null(
                "argument \"new\" of rfm._changes must not be NULL",
            ));
        };
        let rd = ChangeReading {
            abc: new_kind.as_ref().is_some_and(|k| k.0 == "abc"),
            default_segment: new_default.as_deref(),
        };
        let out = rfm_core::changes::changes(old, new, rd).or_raise();
        let score = |s: Option<rfm_core::analysis::Snapshot>, i: usize| {
            s.and_then(|s| s.scores).map(|x| x[i] as i16).into_datum()
        };
        return_rows(fcinfo, out.into_iter(), |c| {
            let (b, a) = (c.before, c.after);
            [
                ServerText(c.key).into_datum(),
                c.from.map(ServerText).into_datum(),
                c.to.map(ServerText).into_datum(),
                c.monetary.map(money).into_datum(),
                score(b, 0),
                score(b, 1),
                score(b, 2),
                b.and_then(|s| s.recency_days).into_datum(),
                b.map(|s| s.frequency).into_datum(),
                b.map(|s| money(s.monetary)).into_datum(),
                score(a, 0),
                score(a, 1),
                score(a, 2),
                a.and_then(|s| s.recency_days).into_datum(),
                a.map(|s| s.frequency).into_datum(),
            ]
        })
    }
}

// The hand-written SQL of the managed layer, in order (see the header of each file).
extension_sql_file!(
    "../sql/managed/1_catalog.sql",
    name = "managed_catalog",
    requires = ["analyze_sql", "schemes_view", check_options]
);
extension_sql_file!(
    "../sql/managed/2_definitions.sql",
    name = "managed_definitions",
    requires = [
        "managed_catalog",
        read_source_as,
        lock_source,
        assigned,
        changes
    ]
);
extension_sql_file!(
    "../sql/managed/3_refresh.sql",
    name = "managed_refresh",
    requires = ["managed_definitions"]
);
extension_sql_file!(
    "../sql/managed/4_overrides.sql",
    name = "managed_overrides",
    requires = ["managed_refresh"]
);
extension_sql_file!(
    "../sql/managed/5_scheduling.sql",
    name = "managed_scheduling",
    requires = ["managed_overrides"]
);
extension_sql_file!(
    "../sql/managed/6_views.sql",
    name = "managed_views",
    requires = ["managed_scheduling"]
);
extension_sql_file!(
    "../sql/scheme_management.sql",
    name = "scheme_management",
    requires = ["managed_views"]
);
extension_sql_file!(
    "../sql/managed/7_privileges.sql",
    name = "managed_privileges",
    requires = ["scheme_management"],
    finalize
);
