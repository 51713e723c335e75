//! Cancel requests for long loops (SPEC §11: cancel and `statement_timeout` work within a
//! second). This crate cannot ask PostgreSQL whether the statement was cancelled, so the
//! host registers a check once (the extension does it when the library is loaded) and the
//! long loops call [`check_interrupts`] every few thousand steps. A check that cancels does
//! so by unwinding (PostgreSQL's error becomes a Rust panic), which these loops allow: they
//! hold nothing that needs more than a drop on the way out.
//!
//! Without a registered check (tests, other hosts) [`check_interrupts`] does nothing.

use std::sync::OnceLock;

static CHECK: OnceLock<fn()> = OnceLock::new();

/// Registers the function that long loops call to let the host cancel them. The first
/// registration stands; later ones are ignored (the host registers once per process).
pub fn set_interrupt_check(check: fn()) {
    let _ = CHECK.set(check);
}

/// Calls the registered check, if any: one atomic load when there is none.
#[inline]
pub fn check_interrupts() {
    if let Some(check) = CHECK.get() {
        check();
    }
}

/// Steps of a cheap loop between two checks (a few microseconds of work).
pub const CHECK_EVERY: u32 = 1024;
