//! clerk-webhooks: verify Clerk webhooks (sent through Svix) and keep a DynamoDB table in step.
//!
//! Data flows one way: function-URL event -> [`function_url`] -> [`verify`] -> [`event`] ->
//! [`plan`] -> [`store`] -> response, wired together by [`handler`]. Nothing before `store`
//! does I/O, and no module imports one before it: [`plan`] and [`store`] share [`writes`],
//! the vocabulary of what to write. [`table`] is the table contract every part shares:
//! keys, names, index, TTL, and how values become attributes. [`env`] reads the environment
//! for every function; `backfill` and `notify` are the other two functions.

pub mod backfill;
pub(crate) mod backoff;
pub mod clerk_api;
pub mod config;
pub mod env;
pub mod event;
pub mod function_url;
pub mod get;
pub mod handler;
pub mod http_client;
pub(crate) mod json;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod read;
pub mod store;
pub mod sync;
pub mod table;
pub mod verify;
pub mod writes;
