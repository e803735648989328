//! The integration suite, one test binary (each binary links the AWS SDK, so one is much
//! quicker to build than one per file). Every module runs against DynamoDB Local and loopback
//! servers; `helpers` holds what they share, [`helpers::TestApp`] first.
//!
//! `cargo test --test it <module>::` runs one module, e.g. `cargo test --test it sync_rules::`.

mod helpers;

mod backfill;
mod backfill_lambda;
mod backfill_logs;
mod bad_input;
mod catalog_rules;
mod chaos;
mod e2e_cargo_lambda;
mod encoding;
mod failures;
mod http_contract;
mod iam;
mod logs;
mod metrics;
mod notify;
mod on_demand;
mod properties;
mod reading;
mod svix_interop;
mod sync_rules;
mod template;
