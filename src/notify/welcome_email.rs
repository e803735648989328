//! The welcome email, through Resend's `POST /emails`: to a new user's primary address, when
//! there is one, with the configured templates; keyed so a resend within Resend's 24 hours is
//! answered without sending again.

use serde_json::{json, Value};

use super::change::{mask_email, Change};
use super::config::{Delivery, NotifyConfig, Secret};
use super::spec::{ActionSpec, Target, TargetUrl, View};
use super::template::Escape;

pub(crate) struct WelcomeEmail;

impl ActionSpec for WelcomeEmail {
    fn name(&self) -> &'static str {
        "welcome_email"
    }

    fn delivery<'c>(&self, config: &'c NotifyConfig) -> Option<&'c Delivery> {
        config.email.as_ref().map(|e| &e.delivery)
    }

    fn wanted(&self, change: &Change, config: &NotifyConfig) -> bool {
        matches!(change, Change::UserCreated(person) if person.email.is_some())
            && config.email.is_some()
    }

    fn body(
        &self,
        change: &Change,
        config: &NotifyConfig,
        view: View,
    ) -> Option<(Value, Option<String>)> {
        let (Change::UserCreated(person), Some(email)) = (change, &config.email) else {
            return None;
        };
        let person = view.person(person);
        let to = person.email.clone()?;
        // The sender is the operator's, not personal, but a preview is a log line, and log
        // lines hold no address at all.
        let from = match view {
            View::Real => email.from.clone(),
            View::Masked => mask_sender(&email.from),
        };
        let body = json!({
            "from": from,
            "to": [to],
            "subject": email.subject.render(&person, Escape::None),
            "html": email.html.render(&person, Escape::Html),
        });
        Some((body, Some(format!("welcome-user/{}", person.user_id))))
    }

    fn target<'c>(&self, config: &'c NotifyConfig, credential: &'c Secret) -> Option<Target<'c>> {
        Some(Target {
            url: TargetUrl::Plain(format!("{}/emails", config.email.as_ref()?.base_url)),
            bearer: Some(credential),
        })
    }
}

/// `Acme <hello@acme.com>` -> `Acme <h***@a***.com>`; a bare address is masked whole.
pub(crate) fn mask_sender(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => format!(
            "{}<{}>{}",
            &from[..open],
            mask_email(&from[open + 1..close]),
            &from[close + 1..]
        ),
        _ => mask_email(from),
    }
}
