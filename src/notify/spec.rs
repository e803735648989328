//! What an action is, for the notifier: the trait every action implements (one file each:
//! `welcome_email.rs`, `slack.rs`), and what its requests look like before they go out.

use serde_json::Value;

use super::change::{Change, Person};
use super::config::{Delivery, NotifyConfig, Secret};

/// One kind of side effect of a change. Its file says, for its provider: when it is wanted,
/// what its request holds, where it goes and with which credential.
pub(crate) trait ActionSpec: Sync {
    /// The name in claims, logs and metrics.
    fn name(&self) -> &'static str;
    /// Where its requests go under `config`; `None` when the action is off.
    fn delivery<'c>(&self, config: &'c NotifyConfig) -> Option<&'c Delivery>;
    /// Whether `change` needs it under `config`.
    fn wanted(&self, change: &Change, config: &NotifyConfig) -> bool;
    /// The body of its request for `change` and its idempotency key, if the provider takes
    /// one; `None` when it does not apply.
    fn body(
        &self,
        change: &Change,
        config: &NotifyConfig,
        view: View,
    ) -> Option<(Value, Option<String>)>;
    /// Where a request is sent when the action sends with `credential`.
    fn target<'c>(&self, config: &'c NotifyConfig, credential: &'c Secret) -> Option<Target<'c>>;
}

/// Whose values a message shows: the real ones (to send) or masked ones (a preview, which
/// is a log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Real,
    Masked,
}

impl View {
    /// `person` as this view shows it.
    pub(crate) fn person(self, person: &Person) -> Person {
        match self {
            Self::Real => person.clone(),
            Self::Masked => person.masked(),
        }
    }
}

/// Where one request goes: the URL (for Slack, the URL *is* the credential) and, for an API
/// that takes one, the bearer key.
pub(crate) struct Target<'a> {
    pub(crate) url: TargetUrl<'a>,
    pub(crate) bearer: Option<&'a Secret>,
}

/// A plain URL, or one that is a secret and must never be shown.
pub(crate) enum TargetUrl<'a> {
    Plain(String),
    Secret(&'a Secret),
}

impl TargetUrl<'_> {
    pub(crate) fn expose(&self) -> &str {
        match self {
            Self::Plain(url) => url,
            Self::Secret(secret) => secret.expose(),
        }
    }
}
