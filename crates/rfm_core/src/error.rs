//! Domain errors. The pure code never talks to PostgreSQL; the SQL layer maps each
//! [`ErrorKind`] to one SQLSTATE in a single place.

use std::fmt;

/// What class of mistake an error reports. Each maps to exactly one SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 22023 `invalid_parameter_value`: an argument is not acceptable.
    InvalidParameter,
    /// 22003 `numeric_value_out_of_range`: a number is outside its allowed range.
    OutOfRange,
    /// 22004 `null_value_not_allowed`: a NULL where a value is required.
    NullValue,
    /// 22P02 `invalid_text_representation`: text that cannot be parsed.
    InvalidText,
    /// 42704 `undefined_object`: an unknown scheme or other named object.
    UndefinedObject,
    /// 54000 `program_limit_exceeded`: the work would not fit in one value.
    ProgramLimit,
    /// 22P03 `invalid_binary_representation`: bytes that are not a value of ours (an
    /// `rfm.analysis` built by hand, or a damaged serialized state).
    InvalidBinary,
    /// 42710 `duplicate_object`: a scheme of that name exists already.
    DuplicateObject,
    /// 42939 `reserved_name`: a built-in name cannot be redefined.
    ReservedName,
    /// 55006 `object_in_use`: a scheme that a managed segmentation uses.
    ObjectInUse,
    /// 42501 `insufficient_privilege`: the caller may not change this object.
    InsufficientPrivilege,
    /// 22000 `data_exception`: a model fit that does not converge on the data given (the
    /// data do not identify the model's parameters).
    NotConverged,
}

impl ErrorKind {
    /// The five-character SQLSTATE of this kind.
    pub fn sqlstate(self) -> &'static str {
        match self {
            ErrorKind::InvalidParameter => "22023",
            ErrorKind::OutOfRange => "22003",
            ErrorKind::NullValue => "22004",
            ErrorKind::InvalidText => "22P02",
            ErrorKind::UndefinedObject => "42704",
            ErrorKind::ProgramLimit => "54000",
            ErrorKind::InvalidBinary => "22P03",
            ErrorKind::DuplicateObject => "42710",
            ErrorKind::ReservedName => "42939",
            ErrorKind::ObjectInUse => "55006",
            ErrorKind::InsufficientPrivilege => "42501",
            ErrorKind::NotConverged => "22000",
        }
    }
}

/// An error with a message that names what was wrong, and an optional hint.
#[derive(Debug, Clone, PartialEq)]
pub struct RfmError {
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
}

impl RfmError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RfmError {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }

    pub fn out_of_range(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::OutOfRange, message)
    }

    pub fn null(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NullValue, message)
    }
}

impl fmt::Display for RfmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RfmError {}

pub type Result<T> = std::result::Result<T, RfmError>;

/// Rejects NaN (22023) and ±Infinity (22003); `what` names the argument.
pub fn check_finite(what: &str, value: f64) -> Result<f64> {
    if value.is_nan() {
        Err(RfmError::invalid(format!(
            "{what} must be a number, got NaN"
        )))
    } else if value.is_infinite() {
        let v = if value > 0.0 { "Infinity" } else { "-Infinity" };
        Err(RfmError::out_of_range(format!(
            "{what} must be finite, got {v}"
        )))
    } else {
        Ok(value)
    }
}

/// A name (or other caller-supplied text) as messages show it: quoted and, past 40
/// characters, cut with its length in bytes, so that an error never echoes a megabyte of
/// name back.
pub fn shown(name: &str) -> String {
    if name.chars().count() <= 40 {
        format!("\"{name}\"")
    } else {
        let head: String = name.chars().take(40).collect();
        format!("\"{head}...\" ({} bytes)", name.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_values_pass_and_others_are_named() {
        assert_eq!(check_finite("value", 1.5), Ok(1.5));
        let nan = check_finite("value", f64::NAN).unwrap_err();
        assert_eq!(nan.kind.sqlstate(), "22023");
        assert!(nan.message.contains("NaN"));
        let inf = check_finite("amount", f64::NEG_INFINITY).unwrap_err();
        assert_eq!(inf.kind.sqlstate(), "22003");
        assert_eq!(inf.message, "amount must be finite, got -Infinity");
    }
}
