//! The one place where domain errors become PostgreSQL errors with a SQLSTATE.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use rfm_core::{ErrorKind, RfmError};

fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    match kind {
        ErrorKind::InvalidParameter => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        ErrorKind::NullValue => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
        ErrorKind::InvalidText => PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
        ErrorKind::UndefinedObject => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        ErrorKind::ProgramLimit => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::InvalidBinary => PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        ErrorKind::DuplicateObject => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
        ErrorKind::ReservedName => PgSqlErrorCode::ERRCODE_RESERVED_NAME,
        ErrorKind::ObjectInUse => PgSqlErrorCode::ERRCODE_OBJECT_IN_USE,
        ErrorKind::InsufficientPrivilege => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        ErrorKind::NotConverged => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
    }
}

/// A message as PostgreSQL can show it. PostgreSQL takes message bytes in the server
/// encoding, and pgrx hands it Rust (UTF-8) strings: in a database of another encoding
/// (LATIN1, say) a non-ASCII character would reach the client as two wrong ones ("stÃ¤ndard").
/// There every non-ASCII character is written as its code point (`st\u00E4ndard`), which
/// reads the same in any encoding; UTF-8 and SQL_ASCII databases get the text as it is.
fn shown_in_server_encoding(text: String) -> String {
    // SAFETY: reads the database encoding
    let encoding = unsafe { pgrx::pg_sys::GetDatabaseEncoding() };
    let plain = encoding == pgrx::pg_sys::pg_enc::PG_UTF8 as i32
        || encoding == pgrx::pg_sys::pg_enc::PG_SQL_ASCII as i32;
    if plain || text.is_ascii() {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c as u32 {
            0..=0x7F => out.push(c),
            u @ 0x80..=0xFFFF => out.push_str(&format!("\\u{u:04X}")),
            u => out.push_str(&format!("\\U{u:08X}")),
        }
    }
    out
}

/// Raises `e` as an ERROR with its SQLSTATE, message and hint. Never returns.
pub fn raise(e: RfmError) -> ! {
    let mut report = ErrorReport::new(
        sqlstate(e.kind),
        shown_in_server_encoding(e.message),
        "rfm_segmentation",
    );
    if let Some(hint) = e.hint {
        report = report.set_hint(shown_in_server_encoding(hint));
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("an ERROR report does not return")
}

/// `Result` to value, raising the error as a PostgreSQL ERROR.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, RfmError> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}
