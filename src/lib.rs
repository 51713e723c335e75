//! rfm_segmentation: RFM scoring, quantile thresholds, named segments and ABC tiers inside
//! PostgreSQL. This crate is the SQL layer; the algorithms live in `rfm_core`.

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

mod aggregates;
mod analyze;
mod clv;
mod errors;
mod managed;
mod primitives;
mod schemes;
mod text;

/// Called once when the library is loaded: registers the settings, and the check that the
/// long loops of `rfm_core` call so that cancel and `statement_timeout` stop them.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    analyze::init_gucs();
    rfm_core::interrupt::set_interrupt_check(check_for_interrupts);
}

/// CHECK_FOR_INTERRUPTS(): a pending cancel raises PostgreSQL's error, which pgrx turns into
/// a panic that unwinds through `rfm_core` to the SQL function's boundary and is raised
/// there.
fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

extension_sql_file!(
    "../sql/schemes.sql",
    name = "schemes_view",
    requires = [
        schemes::builtin_scheme_segments,
        schemes::_user_scheme_segments,
        schemes::_validate_scheme,
        schemes::scheme_definition
    ]
);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    include!("pg_tests.rs");
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
