//! `clerk-webhooks-backfill`: copies the users, organizations and memberships that existed
//! before the webhook endpoint, from Clerk's Backend API, through the webhook path's planner
//! and store.
//!
//! Why it is safe next to live webhooks: every object becomes the plan its `*.created`
//! webhook would produce ([`objects::prepare`]), versioned by the object's own `updated_at`,
//! and the store applies it under the same conditions. A copy older than what a webhook wrote
//! is `stale`; a deleted user or organization stays a tombstone; a membership is refused if
//! its organization or user is a tombstone; a later webhook overwrites a copy as it would any
//! older version. Each write is one conditional transaction, so a race with a webhook is
//! decided by DynamoDB, never by timing.
//!
//! The run, per kind: pages are read one after the other (each page's cursor comes from the
//! one before; the next page is fetched while the current one is written), the objects of a
//! page are written with bounded concurrency, then the checkpoint moves past the page.

pub mod checkpoint;
mod counts;
pub mod instance;
mod kind;
mod ledger;
pub mod objects;
pub mod options;
pub mod progress;
pub mod reconcile;
mod run;
mod summary;

pub use counts::{Counts, ReconcileCounts};
pub use kind::Kind;
/// The clock copies are stamped with (the backfill's, the reconcile's and a sync's).
pub(crate) use run::now_ms;
pub use run::{Backfill, BackfillError};
pub use summary::{
    backfill_emf, deletion_bound, BackfillMetric, KindSummary, ReconcileSummary, Summary,
    BOUND_FLOOR, BOUND_PERCENT, MAX_LISTED_SKIPS,
};
