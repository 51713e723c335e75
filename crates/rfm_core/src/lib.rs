//! Pure segmentation algorithms of rfm_segmentation: quantile thresholds, scores, segment
//! schemes and ABC tiers. Nothing here depends on PostgreSQL; the extension crate validates
//! SQL arguments, converts values and maps [`error::RfmError`] to SQLSTATEs.

pub mod abc;
pub mod analysis;
pub mod changes;
pub mod clv;
pub mod codec;
pub mod error;
pub mod interrupt;
pub mod numeric;
pub mod quantile;
pub mod raw_text;
pub mod rules;
pub mod scheme;
pub mod score;

pub use error::{shown, ErrorKind, Result, RfmError};
