//! Text between PostgreSQL and Rust. The convention: everything the extension keeps or
//! computes (options, tier names, customer keys in an `rfm.analysis` value) is UTF-8; text
//! is converted from the server encoding where it comes in and back where it goes out, so a
//! LATIN1 (or any other) database round-trips its characters exactly. In a UTF-8 database
//! both conversions are no-ops. A `SQL_ASCII` database declares no encoding: text that is
//! valid UTF-8 is kept as it is, and every other byte `b` stands for the private-use
//! character U+10FF00 + `b` while the extension holds it (and is that byte again where it
//! goes out), so keys come back byte for byte and two keys never collapse into one.
//!
//! pgrx's own `String`/`&str`/`JsonB` conversions assume a UTF-8 database (they panic on
//! other bytes), so every text argument or result that may hold non-ASCII text goes through
//! [`ServerText`] or [`Jsonb`] instead.

use crate::errors::raise;
use pgrx::prelude::*;
use pgrx::{FromDatum, IntoDatum};
use rfm_core::raw_text::{raw_to_utf8, utf8_to_raw};
use rfm_core::{ErrorKind, RfmError};
use serde_json::Value;
use std::borrow::Cow;
use std::ffi::{c_char, CStr, CString};

const UTF8: i32 = pg_sys::pg_enc::PG_UTF8 as i32;
const SQL_ASCII: i32 = pg_sys::pg_enc::PG_SQL_ASCII as i32;

/// Whether text needs converting between the server encoding and UTF-8.
fn converting() -> bool {
    let e = unsafe { pg_sys::GetDatabaseEncoding() };
    e != UTF8 && e != SQL_ASCII
}

/// Whether the database is SQL_ASCII (bytes of no declared encoding: [`raw_to_utf8`]).
fn sql_ascii() -> bool {
    unsafe { pg_sys::GetDatabaseEncoding() == SQL_ASCII }
}

/// Server-encoded bytes as UTF-8 (borrowed when nothing needs converting). A character
/// UTF-8 cannot hold is an error of PostgreSQL's own (22P05), never a panic.
pub fn to_utf8(bytes: &[u8]) -> Cow<'_, [u8]> {
    if bytes.is_ascii() {
        return Cow::Borrowed(bytes);
    }
    if !converting() {
        return if sql_ascii() {
            raw_to_utf8(bytes)
        } else {
            Cow::Borrowed(bytes)
        };
    }
    // SAFETY: PostgreSQL reads `len` bytes and returns either its argument or a palloc'd,
    // NUL-terminated conversion (an error is raised as a PostgreSQL ERROR).
    unsafe {
        let p = pg_sys::pg_server_to_any(bytes.as_ptr() as *const c_char, bytes.len() as i32, UTF8);
        if p as *const u8 == bytes.as_ptr() {
            Cow::Borrowed(bytes)
        } else {
            let out = CStr::from_ptr(p).to_bytes().to_vec();
            pg_sys::pfree(p.cast());
            Cow::Owned(out)
        }
    }
}

/// UTF-8 text as server-encoded bytes (a character the server encoding cannot hold is
/// PostgreSQL's error 22P05).
pub fn to_server(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if bytes.is_ascii() {
        return Cow::Borrowed(bytes);
    }
    if !converting() {
        return if sql_ascii() {
            utf8_to_raw(s)
        } else {
            Cow::Borrowed(bytes)
        };
    }
    // SAFETY: as in `to_utf8`.
    unsafe {
        let p = pg_sys::pg_any_to_server(bytes.as_ptr() as *const c_char, bytes.len() as i32, UTF8);
        if p as *const u8 == bytes.as_ptr() {
            Cow::Borrowed(bytes)
        } else {
            let out = CStr::from_ptr(p).to_bytes().to_vec();
            pg_sys::pfree(p.cast());
            Cow::Owned(out)
        }
    }
}

/// A `text` datum holding `s` in the server encoding.
pub fn text_datum(s: &str) -> pg_sys::Datum {
    let bytes = to_server(s);
    // SAFETY: copies `len` bytes into a new palloc'd text.
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            bytes.as_ptr() as *const c_char,
            bytes.len() as i32,
        ))
    }
}

/// The bytes of a varlena datum (detoasted when needed; packed headers are fine).
///
/// # Safety
/// `d` must be a non-NULL varlena datum that lives as long as the slice is used.
pub unsafe fn varlena_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    let p: *mut pg_sys::varlena = d.cast_mut_ptr();
    // what pg_detoast_datum_packed does first, without a call into the server for every
    // row: a value stored inline and not compressed is read where it is
    if pgrx::varlena::varatt_is_4b_c(p) || pgrx::varlena::varatt_is_1b_e(p) {
        let p = pg_sys::pg_detoast_datum_packed(p);
        pgrx::varlena::varlena_to_byte_slice(p)
    } else {
        pgrx::varlena::varlena_to_byte_slice(p)
    }
}

/// SQL `text` as UTF-8 in Rust, converted from and to the server encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerText(pub String);

impl IntoDatum for ServerText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(text_datum(&self.0))
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::TEXTOID
    }
}

impl FromDatum for ServerText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        let utf8 = to_utf8(varlena_bytes(datum));
        // UTF-8 by construction (to_utf8 keeps a SQL_ASCII database's other bytes apart)
        Some(ServerText(String::from_utf8_lossy(&utf8).into_owned()))
    }
}

impl_sql_translatable!(ServerText, "text");

/// A `jsonb` argument or result, read and written through its text form in the server
/// encoding, with numbers kept as written (serde_json's `arbitrary_precision`): a number
/// such as `1e400` that no float holds is then an option error that names its key, not a
/// failed conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Jsonb(pub Value);

impl FromDatum for Jsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        Some(Jsonb(jsonb_value(datum)))
    }
}

impl IntoDatum for Jsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let text = serde_json::to_string(&self.0)
            .unwrap_or_else(|e| raise(RfmError::invalid(format!("cannot write JSON: {e}"))));
        let server = to_server(&text).into_owned();
        let c = CString::new(server)
            .unwrap_or_else(|_| raise(RfmError::invalid("JSON text contains a NUL character")));
        // SAFETY: jsonb_in reads a NUL-terminated string in the server encoding.
        unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(c.as_ptr()))],
            )
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

impl_sql_translatable!(Jsonb, "jsonb");

/// The value of a non-NULL `jsonb` datum.
///
/// # Safety
/// `d` must be a non-NULL jsonb datum.
pub unsafe fn jsonb_value(d: pg_sys::Datum) -> Value {
    let out = pgrx::direct_function_call_as_datum(pg_sys::jsonb_out, &[Some(d)])
        .unwrap_or_else(|| raise(RfmError::invalid("jsonb_out returned NULL")));
    let cstr = CStr::from_ptr(out.cast_mut_ptr::<c_char>());
    let utf8 = to_utf8(cstr.to_bytes());
    let text = std::str::from_utf8(&utf8).unwrap_or_else(|_| {
        raise(RfmError::new(
            ErrorKind::InvalidText,
            "options must be UTF-8 text (the database encoding is SQL_ASCII)",
        ))
    });
    serde_json::from_str(text).unwrap_or_else(|e| {
        if e.to_string().starts_with("recursion limit exceeded") {
            raise(
                RfmError::new(
                    ErrorKind::ProgramLimit,
                    "a JSON document (options or a scheme) is nested more than 128 levels deep",
                )
                .with_hint(
                    "Options and scheme documents need only a few levels; flatten the document.",
                ),
            );
        }
        raise(RfmError::new(
            ErrorKind::InvalidText,
            format!("options are not valid JSON: {e}"),
        ))
    })
}

// The calling-convention glue pgrx needs for a type used as an argument or result.
macro_rules! via_datum {
    ($($ty:ty),*) => {$(
        // SAFETY: the value is converted with its own FromDatum/IntoDatum, which read and
        // build a datum of the SQL type declared by `impl_sql_translatable!` above.
        unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for $ty {
            unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe { arg.unbox_arg_using_from_datum() }
                    .unwrap_or_else(|| panic!("argument {index} must not be null"))
            }

            unsafe fn unbox_nullable_arg(
                arg: pgrx::callconv::Arg<'_, 'fcx>,
            ) -> pgrx::nullable::Nullable<Self> {
                unsafe { arg.unbox_arg_using_from_datum() }.into()
            }
        }

        // SAFETY: as above; the datum returned is the one `into_datum` built.
        unsafe impl pgrx::callconv::BoxRet for $ty {
            unsafe fn box_into<'fcx>(
                self,
                fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
            ) -> pgrx::datum::Datum<'fcx> {
                match self.into_datum() {
                    Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
                    None => fcinfo.return_null(),
                }
            }
        }
    )*};
}

via_datum!(ServerText, Jsonb);

// SAFETY: array elements of type text are non-NULL varlena datums when unboxed (pgrx checks
// NULL before), converted as a scalar argument is.
unsafe impl pgrx::datum::UnboxDatum for ServerText {
    type As<'src> = ServerText;

    unsafe fn unbox<'src>(datum: pgrx::datum::Datum<'src>) -> Self::As<'src>
    where
        Self: 'src,
    {
        let utf8 = to_utf8(unsafe { varlena_bytes(datum.sans_lifetime()) });
        ServerText(String::from_utf8_lossy(&utf8).into_owned())
    }
}
