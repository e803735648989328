//! The Clerk event envelope and the typed payloads we read. The one place that knows
//! Clerk's field names.
//!
//! Routing is on the envelope `type`, never on `data.object`: Clerk's sources disagree on the
//! `object` literals.

mod data;
mod envelope;
mod error;
mod ids;
mod payload;
mod route;
#[cfg(test)]
mod tests;

pub(crate) use crate::json::text_at;
pub use data::Data;
pub use envelope::{family, normalize_millis, Event};
pub use error::DecodeError;
pub use ids::is_key_safe;
pub use payload::*;
