//! Acting on the table's changes (a welcome email, Slack posts) from its DynamoDB stream, not
//! from webhook deliveries: the table records each change once, in order per object, whatever
//! Svix retried or replayed.
//!
//! [`change`] decides, from a stream record's old and new images alone, which change (if any)
//! it is; [`template`] fills the welcome email's subject and body; [`answer`] says what a
//! provider's HTTP answer means for the record. All three are pure. The
//! `clerk-webhooks-notify` function that claims and acts on each change is built on them
//! (issue 13).

pub mod answer;
pub mod change;
pub mod template;
