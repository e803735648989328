//! `clerk-webhooks-notify`: acting on the table's changes (a welcome email, Slack posts) from
//! its DynamoDB stream, not from webhook deliveries: the table records each change once, in
//! order per object, whatever Svix retried or replayed.
//!
//! - [`change`]: which change, if any, a stream record's old and new images describe (pure);
//! - [`action`]: the actions, which a change needs, and each request's body (pure); each
//!   action is one file implementing [`spec::ActionSpec`]: `welcome_email` (Resend) and
//!   `slack`;
//! - [`template`]: the welcome email's placeholders (pure);
//! - [`answer`]: what a provider's HTTP answer means for the record (pure);
//! - [`config`]: the environment -> [`NotifyConfig`];
//! - [`sender`]: one request to Resend or Slack;
//! - [`notifier`]: the entrypoint: claims, sends, finishes, and answers Lambda with the
//!   records to retry;
//! - [`stream`]: reads a table's stream as Lambda would (the local loop under `make dev`, and
//!   the tests).

pub mod action;
pub mod answer;
pub mod change;
pub mod change_event;
pub mod config;
pub mod event_bus;
pub mod notifier;
pub mod sender;
mod slack;
mod spec;
pub mod stream;
pub mod template;
mod welcome_email;

pub use config::NotifyConfig;
pub use notifier::{BatchResponse, Clock, Notifier, NotifyError};
