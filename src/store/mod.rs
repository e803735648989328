//! Executes the planner's writes on DynamoDB, and every other call the functions make. The
//! only module that knows the SDK, split by concern:
//!
//! - [`client`]: the handle (`Store`), the client with our limits, the errors;
//! - [`transact`]: one event, one `TransactWriteItems` (the webhook, backfill and reconcile);
//! - [`cascade`]: a delete's follow-up deletions;
//! - [`claims`]: the notifier's claims;
//! - [`reads`]: single items, partitions and scans (checkpoints, the reconcile);
//! - [`queries`]: the reader's queries and batched gets (`crate::read`);
//! - [`create`]: the table itself, for local development and tests.

mod cascade;
mod claims;
mod client;
mod create;
mod queries;
mod reads;
mod transact;

pub use claims::{Claim, Finished};
pub(crate) use client::describe;
pub use client::{client_from, client_from_env, shared_config, with_limits, Store, StoreError};
pub use create::{create_table, create_table_without_stream};
pub use queries::KeyCondition;
pub use transact::{Committed, Outcome};
